/* qipc-broker.h: the channel broker, as an object
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__QIPC_INSIDE__) && !defined(QIPC_COMPILATION)
#error "Only <qipc.h> can be included directly."
#endif

#include <gio/gio.h>

#include "qipc-version-macros.h"

G_BEGIN_DECLS

#define QIPC_TYPE_BROKER (qipc_broker_get_type ())

QIPC_AVAILABLE_IN_1_0
G_DECLARE_FINAL_TYPE (QipcBroker, qipc_broker, QIPC, BROKER, GObject)

QIPC_AVAILABLE_IN_1_0
QipcBroker *qipc_broker_new                  (void);
QIPC_AVAILABLE_IN_1_0
gboolean    qipc_broker_listen               (QipcBroker   *self,
                                              const char   *address,
                                              GError      **error);
QIPC_AVAILABLE_IN_1_0
gboolean    qipc_broker_listen_socket        (QipcBroker   *self,
                                              GSocket      *socket,
                                              GError      **error);
QIPC_AVAILABLE_IN_1_0
gboolean    qipc_broker_set_policy_from_file (QipcBroker   *self,
                                              const char   *path,
                                              GError      **error);
QIPC_AVAILABLE_IN_1_0
gboolean    qipc_broker_set_policy_from_data (QipcBroker   *self,
                                              const char   *data,
                                              gssize        length,
                                              GError      **error);
QIPC_AVAILABLE_IN_1_0
guint       qipc_broker_get_n_clients        (QipcBroker   *self);
QIPC_AVAILABLE_IN_1_0
gsize       qipc_broker_get_max_queued_bytes (QipcBroker   *self);
QIPC_AVAILABLE_IN_1_0
void        qipc_broker_set_max_queued_bytes (QipcBroker   *self,
                                              gsize         max_queued_bytes);
QIPC_AVAILABLE_IN_1_0
guint       qipc_broker_get_handshake_timeout (QipcBroker  *self);
QIPC_AVAILABLE_IN_1_0
void        qipc_broker_set_handshake_timeout (QipcBroker  *self,
                                               guint        timeout_ms);
QIPC_AVAILABLE_IN_1_0
GTlsCertificate *qipc_broker_get_tls_certificate (QipcBroker      *self);
QIPC_AVAILABLE_IN_1_0
void        qipc_broker_set_tls_certificate  (QipcBroker      *self,
                                              GTlsCertificate *certificate);
QIPC_AVAILABLE_IN_1_0
gboolean    qipc_broker_add_bridge           (QipcBroker          *self,
                                              const char          *address,
                                              const char * const  *patterns,
                                              GError             **error);
QIPC_AVAILABLE_IN_1_0
void        qipc_broker_close                (QipcBroker   *self);

G_END_DECLS
