/* qipc-dbus-transport-private.h: QipcBus channels over a D-Bus daemon
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "qipc-transport-private.h"

G_BEGIN_DECLS

/* The wire names, documented in docs/dbus-transport.md. */
#define QIPC_DBUS_INTERFACE    "org.qipc.Channel1"
#define QIPC_DBUS_PATH         "/org/qipc/Channel1"
#define QIPC_DBUS_CLIENT_PREFIX "org.qipc.Channel1.Client."
/* The largest message (names, type and data) the transport sends: the
 * default max_message_size of dbus-daemon (32 MiB; a daemon drops a
 * client that sends more) less room for the header. */
#define QIPC_DBUS_MAX_MESSAGE  (32 * 1024 * 1024 - 4096)

#define QIPC_TYPE_DBUS_TRANSPORT (_qipc_dbus_transport_get_type ())
G_DECLARE_FINAL_TYPE (QipcDbusTransport, _qipc_dbus_transport, QIPC, DBUS_TRANSPORT, QipcTransport)

/* For `dbus:session`, `dbus:system` and `dbus:address=ADDRESS`. */
QipcTransport *_qipc_dbus_transport_new (const char  *address,
                                         GError     **error);

G_END_DECLS
