/* qipc-local-socket.h: a Unix domain stream socket
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__QIPC_INSIDE__) && !defined(QIPC_COMPILATION)
#error "Only <qipc.h> can be included directly."
#endif

#include <gio/gio.h>
#include <gio/gunixfdlist.h>

#include "qipc-socket.h"
#include "qipc-version-macros.h"

G_BEGIN_DECLS

#define QIPC_TYPE_LOCAL_SOCKET (qipc_local_socket_get_type ())

QIPC_AVAILABLE_IN_1_0
G_DECLARE_FINAL_TYPE (QipcLocalSocket, qipc_local_socket, QIPC, LOCAL_SOCKET, QipcSocket)

QIPC_AVAILABLE_IN_1_0
QipcLocalSocket *qipc_local_socket_new                  (void);
QIPC_AVAILABLE_IN_1_0
void             qipc_local_socket_connect_to_server    (QipcLocalSocket  *self,
                                                         const char       *name);
QIPC_AVAILABLE_IN_1_0
const char      *qipc_local_socket_get_server_name      (QipcLocalSocket  *self);
QIPC_AVAILABLE_IN_1_0
GCredentials    *qipc_local_socket_get_peer_credentials (QipcLocalSocket  *self,
                                                         GError          **error);
QIPC_AVAILABLE_IN_1_0
gboolean         qipc_local_socket_write_with_fds       (QipcLocalSocket  *self,
                                                         GBytes           *bytes,
                                                         GUnixFDList      *fds,
                                                         GError          **error);
QIPC_AVAILABLE_IN_1_0
GUnixFDList     *qipc_local_socket_take_fds             (QipcLocalSocket  *self);

G_END_DECLS
