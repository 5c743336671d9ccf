/* qipc-mirror.h: a local instance that follows an exported object
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__QIPC_INSIDE__) && !defined(QIPC_COMPILATION)
#error "Only <qipc.h> can be included directly."
#endif

#include <gio/gio.h>

#include "qipc-remote.h"
#include "qipc-version-macros.h"

G_BEGIN_DECLS

#define QIPC_TYPE_MIRROR (qipc_mirror_get_type ())

QIPC_AVAILABLE_IN_1_0
G_DECLARE_FINAL_TYPE (QipcMirror, qipc_mirror, QIPC, MIRROR, GObject)

QIPC_AVAILABLE_IN_1_0
GObject    *qipc_mirror_new                (GObject              *bus_or_connection,
                                            const char           *path,
                                            GType                 type,
                                            GError              **error);
QIPC_AVAILABLE_IN_1_0
void        qipc_mirror_new_async          (GObject              *bus_or_connection,
                                            const char           *path,
                                            GType                 type,
                                            GCancellable         *cancellable,
                                            GAsyncReadyCallback   callback,
                                            gpointer              user_data);
QIPC_AVAILABLE_IN_1_0
GObject    *qipc_mirror_new_finish         (GAsyncResult         *result,
                                            GError              **error);
QIPC_AVAILABLE_IN_1_0
GObject    *qipc_mirror_new_for_dbus       (GDBusConnection      *connection,
                                            const char           *bus_name,
                                            const char           *object_path,
                                            const char           *interface_name,
                                            GType                 type,
                                            GCancellable         *cancellable,
                                            GError              **error);
QIPC_AVAILABLE_IN_1_0
void        qipc_mirror_new_for_dbus_async (GDBusConnection      *connection,
                                            const char           *bus_name,
                                            const char           *object_path,
                                            const char           *interface_name,
                                            GType                 type,
                                            GCancellable         *cancellable,
                                            GAsyncReadyCallback   callback,
                                            gpointer              user_data);
QIPC_AVAILABLE_IN_1_0
GObject    *qipc_mirror_new_for_dbus_finish (GAsyncResult        *result,
                                             GError             **error);

QIPC_AVAILABLE_IN_1_0
QipcMirror *qipc_mirror_get_for_object     (GObject              *instance);
QIPC_AVAILABLE_IN_1_0
GObject    *qipc_mirror_get_instance       (QipcMirror           *self);
QIPC_AVAILABLE_IN_1_0
const char *qipc_mirror_get_path           (QipcMirror           *self);
QIPC_AVAILABLE_IN_1_0
gboolean    qipc_mirror_get_remote_present (QipcMirror           *self);
QIPC_AVAILABLE_IN_1_0
gboolean    qipc_mirror_get_remote_property (QipcMirror          *self,
                                             const char          *name,
                                             GValue              *value);

QIPC_AVAILABLE_IN_1_0
void        qipc_mirror_call_async         (QipcMirror           *self,
                                            const char           *action,
                                            GVariant             *args,
                                            GCancellable         *cancellable,
                                            GAsyncReadyCallback   callback,
                                            gpointer              user_data);
QIPC_AVAILABLE_IN_1_0
GVariant   *qipc_mirror_call_finish        (QipcMirror           *self,
                                            GAsyncResult         *result,
                                            GError              **error);

G_END_DECLS
