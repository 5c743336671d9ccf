/* qipc-server-private.h: what subclasses use of QipcServer
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "qipc-server.h"

G_BEGIN_DECLS

/* Starts accepting on @socket, which is bound and listening. The server
 * keeps a reference; qipc_server_close() closes it. */
void _qipc_server_add_listener (QipcServer *self,
                                GSocket    *socket);

/* Called by qipc_server_close() (and at dispose) once the listening
 * sockets are closed, for what a subclass must undo, such as removing a
 * socket file. */
typedef void (* QipcServerClosedFunc) (QipcServer *self);

void _qipc_server_set_closed_func (QipcServer           *self,
                                   QipcServerClosedFunc  func);

G_END_DECLS
