/* qipc-server.h: a listening socket that hands out QipcSockets
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

#define QIPC_TYPE_SERVER (qipc_server_get_type ())

QIPC_AVAILABLE_IN_1_0
G_DECLARE_DERIVABLE_TYPE (QipcServer, qipc_server, QIPC, SERVER, GObject)

/**
 * QipcServerClass:
 * @parent_class: the parent class
 * @new_connection: default handler of [signal@Server::new-connection]
 * @accept_error: default handler of [signal@Server::accept-error]
 * @incoming_connection: wraps an accepted connection into the socket type
 *   of the server (as Qt's `incomingConnection()`); returns a new
 *   [class@Socket] in the connected state
 *
 * The class of [class@Server]; subclasses say how to listen and which
 * socket type accepted connections become.
 */
struct _QipcServerClass
{
  GObjectClass parent_class;

  void         (* new_connection)      (QipcServer        *self);
  void         (* accept_error)        (QipcServer        *self,
                                        const GError      *error);
  QipcSocket * (* incoming_connection) (QipcServer        *self,
                                        GSocketConnection *connection);

  /*< private >*/
  gpointer padding[12];
};

QIPC_AVAILABLE_IN_1_0
gboolean    qipc_server_is_listening             (QipcServer  *self);
QIPC_AVAILABLE_IN_1_0
void        qipc_server_close                    (QipcServer  *self);
QIPC_AVAILABLE_IN_1_0
gboolean    qipc_server_has_pending_connections  (QipcServer  *self);
QIPC_AVAILABLE_IN_1_0
QipcSocket *qipc_server_next_pending_connection  (QipcServer  *self);
QIPC_AVAILABLE_IN_1_0
guint       qipc_server_get_max_pending_connections (QipcServer *self);
QIPC_AVAILABLE_IN_1_0
void        qipc_server_set_max_pending_connections (QipcServer *self,
                                                     guint       max);
QIPC_AVAILABLE_IN_1_0
void        qipc_server_pause_accepting          (QipcServer  *self);
QIPC_AVAILABLE_IN_1_0
void        qipc_server_resume_accepting         (QipcServer  *self);
QIPC_AVAILABLE_IN_1_0
gboolean    qipc_server_wait_for_new_connection  (QipcServer  *self,
                                                  int          timeout_ms,
                                                  GError     **error);

G_END_DECLS
