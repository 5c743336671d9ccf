/* qipc-policy-private.h: who may use a broker, and for what
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _QipcPolicy QipcPolicy;
typedef struct _QipcPolicyGrant QipcPolicyGrant;

/* The default: only @owner_uid may connect, and may do everything. */
QipcPolicy      *_qipc_policy_new_default   (uid_t               owner_uid);
/* Parses a JSON policy (format in docs/security.md); the owner keeps
 * every right. QIPC_BUS_ERROR_FAILED with the position on bad JSON. */
QipcPolicy      *_qipc_policy_new_from_data (uid_t               owner_uid,
                                             const char         *data,
                                             gssize              length,
                                             GError            **error);
/* The same from the file @path, whose name starts every message; a file
 * that cannot be read gives its G_FILE_ERROR. */
QipcPolicy      *_qipc_policy_new_from_file (uid_t               owner_uid,
                                             const char         *path,
                                             GError            **error);
void             _qipc_policy_free          (QipcPolicy         *policy);
/* Whether any rule admits peers other than the owner (so the socket
 * must be reachable by others). */
gboolean         _qipc_policy_admits_others (QipcPolicy         *policy);

/* What a peer with @credentials (NULL for a TCP peer, which has none)
 * may do, or NULL if it may not connect. Owned by @policy, and the same
 * grant for every peer with the same uid and gid. Not thread-safe: it
 * fills a cache. */
const QipcPolicyGrant *_qipc_policy_lookup  (QipcPolicy         *policy,
                                             GCredentials       *credentials);
gboolean         _qipc_policy_grant_is_all  (const QipcPolicyGrant *grant);
/* @channel is a valid name or pattern; a pattern is allowed when one
 * granted pattern matches every name it matches (so a SUBSCRIBE can be
 * checked once, not each DELIVER). */
gboolean         _qipc_policy_may_send      (const QipcPolicyGrant *grant,
                                             const char         *channel);
gboolean         _qipc_policy_may_receive   (const QipcPolicyGrant *grant,
                                             const char         *channel);
gboolean         _qipc_policy_may_monitor   (const QipcPolicyGrant *grant);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (QipcPolicy, _qipc_policy_free)

G_END_DECLS
