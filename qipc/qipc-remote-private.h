/* qipc-remote-private.h: the native wire contract of exported objects
 *
 * An object exported at PATH (a channel name) over a QipcBus
 * (docs/remote-objects-native.md has the whole contract):
 *
 *   PATH          the exporter sends each signal (message: the signal's
 *                 GObject name, data: its arguments as a tuple), each
 *                 property change (message "notify::NAME", data: the
 *                 new value as "v"), "exported" once it is ready and
 *                 "unexported" at the end (no data)
 *   PATH/.call    the exporter listens for requests, each naming a
 *                 reply channel and a request id:
 *                   "get-all"      (st)
 *                   "set-property" (stsv)   name, value
 *                   "call-action"  (stsv)   action name, arguments tuple
 *   REPLY         each mirror's own channel, PATH/.reply/RANDOM:
 *                   "state"  (ta{sv})  every exported property
 *                   "return" (tmv)     the action's return value, if any
 *                   "error"  (tus)     a QipcRemoteError code, message
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "qipc-bus.h"
#include "qipc-remote.h"

G_BEGIN_DECLS

#define QIPC_REMOTE_CALL_SUFFIX   "/.call"
#define QIPC_REMOTE_REPLY_INFIX   "/.reply/"
#define QIPC_REMOTE_NOTIFY_PREFIX "notify::"

#define QIPC_REMOTE_GET_ALL       "get-all"
#define QIPC_REMOTE_SET_PROPERTY  "set-property"
#define QIPC_REMOTE_CALL_ACTION   "call-action"
#define QIPC_REMOTE_EXPORTED      "exported"
#define QIPC_REMOTE_UNEXPORTED    "unexported"
/* Over D-Bus, qipc_dbus_export_object() announces an export and its end
 * with these signals (argument: the exported interface) on the object
 * path, so that a mirror notices an object unexported, and exported
 * again, while its process keeps the bus name. */
#define QIPC_DBUS_EXPORT_INTERFACE  "org.qipc.Export1"
#define QIPC_DBUS_EXPORTED          "Exported"
#define QIPC_DBUS_UNEXPORTED        "Unexported"
#define QIPC_REMOTE_STATE         "state"
#define QIPC_REMOTE_RETURN        "return"
#define QIPC_REMOTE_ERROR_REPLY   "error"

/* Checks that @path is a channel name that an object can be exported at
 * (no pattern, no ".call"/".reply" segment of ours);
 * %QIPC_REMOTE_ERROR_INVALID_NAME otherwise. */
gboolean  _qipc_remote_path_validate     (const char        *path,
                                          GError           **error);

/* The signals of @type (and its parents below GObject) in the order
 * they were defined, as queries; actions (%G_SIGNAL_ACTION) too. */
GArray   *_qipc_remote_list_signals      (GType              type);

/* Whether a signal travels as a signal (not an action, which is a
 * call). */
gboolean  _qipc_remote_is_action         (const GSignalQuery *query);

/* Sends, or says why not: a warning, or only a debug message when the
 * bus is closed (everything sent after that fails alike). @who names
 * the object in the message ("Object app/counter"). */
void      _qipc_remote_send              (QipcBus           *bus,
                                          const char        *channel,
                                          const char        *message,
                                          GVariant          *data,
                                          const char        *who);

G_END_DECLS
