/* qipc-bus-export.h: a GObject's signals and properties on qipc channels
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__QIPC_INSIDE__) && !defined(QIPC_COMPILATION)
#error "Only <qipc.h> can be included directly."
#endif

#include <gio/gio.h>

#include "qipc-bus.h"
#include "qipc-remote.h"
#include "qipc-version-macros.h"

G_BEGIN_DECLS

QIPC_AVAILABLE_IN_1_0
guint    qipc_bus_export_object   (QipcBus          *bus,
                                   const char       *path,
                                   GObject          *object,
                                   QipcExportFlags   flags,
                                   GError          **error);
QIPC_AVAILABLE_IN_1_0
gboolean qipc_bus_unexport_object (QipcBus          *bus,
                                   guint             id);

G_END_DECLS
