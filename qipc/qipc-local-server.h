/* qipc-local-server.h: a server for QipcLocalSocket connections
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

/**
 * QipcLocalServerOptions:
 * @QIPC_LOCAL_SERVER_OPTIONS_NONE: the mode the umask gives
 * @QIPC_LOCAL_SERVER_OPTIONS_USER_ACCESS: the owner may connect
 * @QIPC_LOCAL_SERVER_OPTIONS_GROUP_ACCESS: the group may connect
 * @QIPC_LOCAL_SERVER_OPTIONS_OTHER_ACCESS: others may connect
 * @QIPC_LOCAL_SERVER_OPTIONS_WORLD_ACCESS: everyone may connect
 *
 * Who may connect to a path-named [class@LocalServer], as Qt's
 * `QLocalServer::SocketOption`. Abstract names have no permissions.
 */
typedef enum /*< flags,prefix=QIPC_LOCAL_SERVER_OPTIONS >*/ {
  QIPC_LOCAL_SERVER_OPTIONS_NONE = 0,
  QIPC_LOCAL_SERVER_OPTIONS_USER_ACCESS = 1 << 0,
  QIPC_LOCAL_SERVER_OPTIONS_GROUP_ACCESS = 1 << 1,
  QIPC_LOCAL_SERVER_OPTIONS_OTHER_ACCESS = 1 << 2,
  QIPC_LOCAL_SERVER_OPTIONS_WORLD_ACCESS = 0x7,
} QipcLocalServerOptions;

#define QIPC_TYPE_LOCAL_SERVER (qipc_local_server_get_type ())

QIPC_AVAILABLE_IN_1_0
G_DECLARE_FINAL_TYPE (QipcLocalServer, qipc_local_server, QIPC, LOCAL_SERVER, QipcServer)

QIPC_AVAILABLE_IN_1_0
QipcLocalServer       *qipc_local_server_new                (void);
QIPC_AVAILABLE_IN_1_0
gboolean               qipc_local_server_listen             (QipcLocalServer        *self,
                                                             const char             *name,
                                                             GError                **error);
QIPC_AVAILABLE_IN_1_0
const char            *qipc_local_server_get_server_name    (QipcLocalServer        *self);
QIPC_AVAILABLE_IN_1_0
const char            *qipc_local_server_get_full_server_name (QipcLocalServer      *self);
QIPC_AVAILABLE_IN_1_0
QipcLocalServerOptions qipc_local_server_get_socket_options (QipcLocalServer        *self);
QIPC_AVAILABLE_IN_1_0
void                   qipc_local_server_set_socket_options (QipcLocalServer        *self,
                                                             QipcLocalServerOptions  options);

G_END_DECLS
