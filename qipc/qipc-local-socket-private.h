/* qipc-local-socket-private.h: what QipcLocalServer uses of QipcLocalSocket
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "qipc-local-socket.h"

G_BEGIN_DECLS

/* Turns a local server name into its socket address: "@name" is in the
 * abstract namespace, a name with a '/' is a path, any other name is a
 * file in g_get_user_runtime_dir(). @full_name receives the path, or
 * "@name" for an abstract name. */
GSocketAddress  *_qipc_local_address_new               (const char         *name,
                                                        char              **full_name,
                                                        GError            **error);

/* Wraps an accepted connection into a connected QipcLocalSocket. */
QipcLocalSocket *_qipc_local_socket_new_for_connection (GSocketConnection  *connection,
                                                        const char         *server_name);

G_END_DECLS
