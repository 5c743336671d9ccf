/* qipc-tcp-server.h: a server for QipcTcpSocket connections
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__QIPC_INSIDE__) && !defined(QIPC_COMPILATION)
#error "Only <qipc.h> can be included directly."
#endif

#include <gio/gio.h>

#include "qipc-server.h"
#include "qipc-version-macros.h"

G_BEGIN_DECLS

#define QIPC_TYPE_TCP_SERVER (qipc_tcp_server_get_type ())

QIPC_AVAILABLE_IN_1_0
G_DECLARE_FINAL_TYPE (QipcTcpServer, qipc_tcp_server, QIPC, TCP_SERVER, QipcServer)

QIPC_AVAILABLE_IN_1_0
QipcTcpServer   *qipc_tcp_server_new                 (void);
QIPC_AVAILABLE_IN_1_0
gboolean         qipc_tcp_server_listen              (QipcTcpServer    *self,
                                                      const char       *address,
                                                      guint16           port,
                                                      GError          **error);
QIPC_AVAILABLE_IN_1_0
char            *qipc_tcp_server_get_server_address  (QipcTcpServer    *self);
QIPC_AVAILABLE_IN_1_0
guint16          qipc_tcp_server_get_server_port     (QipcTcpServer    *self);
QIPC_AVAILABLE_IN_1_0
GTlsCertificate *qipc_tcp_server_get_tls_certificate (QipcTcpServer    *self);
QIPC_AVAILABLE_IN_1_0
void             qipc_tcp_server_set_tls_certificate (QipcTcpServer    *self,
                                                      GTlsCertificate  *certificate);

G_END_DECLS
