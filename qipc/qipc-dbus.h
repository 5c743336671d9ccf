/* qipc-dbus.h: GObjects exported on D-Bus, and remote D-Bus signals
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

QIPC_AVAILABLE_IN_1_0
guint    qipc_dbus_export_object     (GDBusConnection     *connection,
                                      const char          *object_path,
                                      const char          *interface_name,
                                      GObject             *object,
                                      QipcExportFlags      flags,
                                      GError             **error);
QIPC_AVAILABLE_IN_1_0
gboolean qipc_dbus_unexport_object   (GDBusConnection     *connection,
                                      guint                id);

QIPC_AVAILABLE_IN_1_0
guint    qipc_dbus_connect_signal    (GDBusConnection     *connection,
                                      const char          *sender,
                                      const char          *object_path,
                                      const char          *interface_name,
                                      const char          *signal_name,
                                      const char * const  *arg_match,
                                      GClosure            *closure,
                                      GError             **error);
QIPC_AVAILABLE_IN_1_0
gboolean qipc_dbus_disconnect_signal (GDBusConnection     *connection,
                                      guint                id);

G_END_DECLS
