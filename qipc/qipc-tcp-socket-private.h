/* qipc-tcp-socket-private.h: what QipcTcpServer uses of QipcTcpSocket
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "qipc-tcp-socket.h"

G_BEGIN_DECLS

/* Takes an accepted @connection. Without @certificate the socket is
 * connected on return; with one it stays CONNECTING while the server side
 * of a TLS handshake runs, and then emits ::connected and ::encrypted, or
 * fails with %QIPC_SOCKET_ERROR_TLS_HANDSHAKE_FAILED. */
void _qipc_tcp_socket_take_connection (QipcTcpSocket     *self,
                                       GSocketConnection *connection,
                                       GTlsCertificate   *certificate);

/* For a client connection that the caller made itself, before
 * qipc_tcp_socket_start_client_encryption(): the name the server's
 * certificate must carry, and the authorities it must come from (%NULL
 * for the system's). */
void _qipc_tcp_socket_set_tls_peer    (QipcTcpSocket      *self,
                                       GSocketConnectable *identity,
                                       GTlsDatabase       *database);

/* The text form of @address, with IPv4-mapped IPv6 addresses (what a
 * dual-stack listener sees of IPv4 peers) given in their IPv4 form. */
char *_qipc_tcp_address_to_string     (GInetAddress      *address);

G_END_DECLS
