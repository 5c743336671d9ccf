/* qipc-tcp-socket.h: a TCP socket, with TLS as QSslSocket does it
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__QIPC_INSIDE__) && !defined(QIPC_COMPILATION)
#error "Only <qipc.h> can be included directly."
#endif

#include <gio/gio.h>

#include "qipc-socket.h"
#include "qipc-version-macros.h"

G_BEGIN_DECLS

#define QIPC_TYPE_TCP_SOCKET (qipc_tcp_socket_get_type ())

QIPC_AVAILABLE_IN_1_0
G_DECLARE_FINAL_TYPE (QipcTcpSocket, qipc_tcp_socket, QIPC, TCP_SOCKET, QipcSocket)

QIPC_AVAILABLE_IN_1_0
QipcTcpSocket *qipc_tcp_socket_new                       (void);
QIPC_AVAILABLE_IN_1_0
void           qipc_tcp_socket_connect_to_host           (QipcTcpSocket    *self,
                                                          const char       *host,
                                                          guint16           port);
QIPC_AVAILABLE_IN_1_0
void           qipc_tcp_socket_connect_to_host_encrypted (QipcTcpSocket    *self,
                                                          const char       *host,
                                                          guint16           port);
QIPC_AVAILABLE_IN_1_0
gboolean       qipc_tcp_socket_start_client_encryption   (QipcTcpSocket    *self,
                                                          GError          **error);
QIPC_AVAILABLE_IN_1_0
gboolean       qipc_tcp_socket_start_server_encryption   (QipcTcpSocket    *self,
                                                          GTlsCertificate  *certificate,
                                                          GError          **error);
QIPC_AVAILABLE_IN_1_0
gboolean       qipc_tcp_socket_is_encrypted              (QipcTcpSocket    *self);
QIPC_AVAILABLE_IN_1_0
GTlsCertificate *qipc_tcp_socket_get_peer_certificate    (QipcTcpSocket    *self);
QIPC_AVAILABLE_IN_1_0
char          *qipc_tcp_socket_get_peer_address          (QipcTcpSocket    *self);
QIPC_AVAILABLE_IN_1_0
guint16        qipc_tcp_socket_get_peer_port             (QipcTcpSocket    *self);
QIPC_AVAILABLE_IN_1_0
char          *qipc_tcp_socket_get_local_address         (QipcTcpSocket    *self);
QIPC_AVAILABLE_IN_1_0
guint16        qipc_tcp_socket_get_local_port            (QipcTcpSocket    *self);
QIPC_AVAILABLE_IN_1_0
void           qipc_tcp_socket_set_no_delay              (QipcTcpSocket    *self,
                                                          gboolean          no_delay);
QIPC_AVAILABLE_IN_1_0
gboolean       qipc_tcp_socket_get_no_delay              (QipcTcpSocket    *self);
QIPC_AVAILABLE_IN_1_0
void           qipc_tcp_socket_set_keep_alive            (QipcTcpSocket    *self,
                                                          gboolean          keep_alive);
QIPC_AVAILABLE_IN_1_0
gboolean       qipc_tcp_socket_get_keep_alive            (QipcTcpSocket    *self);

G_END_DECLS
