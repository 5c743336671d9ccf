/* qipc-policy.c: placeholder (owner only) until the JSON policy lands
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "qipc-policy-private.h"
#include "qipc-bus.h"

struct _QipcPolicy { uid_t owner; };
struct _QipcPolicyGrant { gboolean all; };

static const QipcPolicyGrant all_grant = { TRUE };

QipcPolicy *
_qipc_policy_new_default (uid_t owner_uid)
{
  QipcPolicy *policy = g_new0 (QipcPolicy, 1);
  policy->owner = owner_uid;
  return policy;
}

QipcPolicy *
_qipc_policy_new_from_data (uid_t owner_uid, const char *data, gssize length, GError **error)
{
  (void) owner_uid; (void) data; (void) length;
  g_set_error_literal (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_FAILED, "Policies are not supported yet");
  return NULL;
}

void _qipc_policy_free (QipcPolicy *policy) { g_free (policy); }
gboolean _qipc_policy_admits_others (QipcPolicy *policy) { (void) policy; return FALSE; }

const QipcPolicyGrant *
_qipc_policy_lookup (QipcPolicy *policy, GCredentials *credentials)
{
  if (credentials == NULL || g_credentials_get_unix_user (credentials, NULL) != policy->owner)
    return NULL;
  return &all_grant;
}

gboolean _qipc_policy_grant_is_all (const QipcPolicyGrant *grant) { return grant->all; }
gboolean _qipc_policy_may_send (const QipcPolicyGrant *grant, const char *channel) { (void) channel; return grant->all; }
gboolean _qipc_policy_may_receive (const QipcPolicyGrant *grant, const char *channel) { (void) channel; return grant->all; }
gboolean _qipc_policy_may_monitor (const QipcPolicyGrant *grant) { return grant->all; }
