/* qipc-bus.h: a connection to a channel transport
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__QIPC_INSIDE__) && !defined(QIPC_COMPILATION)
#error "Only <qipc.h> can be included directly."
#endif

#include <gio/gio.h>

#include "qipc-version-macros.h"

G_BEGIN_DECLS

/**
 * QipcBusError:
 * @QIPC_BUS_ERROR_FAILED: any other failure
 * @QIPC_BUS_ERROR_INVALID_ADDRESS: the bus address cannot be parsed or
 *   names an unknown transport
 * @QIPC_BUS_ERROR_INVALID_NAME: a channel, pattern or message name breaks
 *   the naming rules (see [class@Channel])
 * @QIPC_BUS_ERROR_BROKER_NOT_FOUND: no broker answers at the address, and
 *   none could be started
 * @QIPC_BUS_ERROR_DISCONNECTED: the bus was closed, or the connection was
 *   lost before the operation completed
 * @QIPC_BUS_ERROR_QUEUE_FULL: the broker has been unreachable for so long
 *   that the bus's queue of unsent messages is full
 * @QIPC_BUS_ERROR_ACCESS_DENIED: the broker's policy refuses the operation
 * @QIPC_BUS_ERROR_LIMIT_EXCEEDED: a documented limit was hit: payload,
 *   name or frame size, channels per connection
 * @QIPC_BUS_ERROR_PROTOCOL: the peer broke the protocol (malformed frame,
 *   unsupported version)
 * @QIPC_BUS_ERROR_TLS_HANDSHAKE_FAILED: the TLS handshake with a broker on
 *   TCP failed, for example because its certificate is not trusted or
 *   does not name the host; never sent in an ERROR frame
 * @QIPC_BUS_ERROR_UNSUPPORTED_DATA: the bus's transport cannot carry the
 *   data as it is: MQTT's JSON format has no way to write a dictionary
 *   that holds one key twice, nor a maybe holding a maybe that holds
 *   nothing (send those with `format=gvariant`); never sent in an ERROR
 *   frame
 *
 * Errors in the %QIPC_BUS_ERROR domain, used by [class@Bus],
 * [class@Channel] and [class@Broker]. The same numbers travel in the
 * native protocol's ERROR frames.
 */
typedef enum {
  QIPC_BUS_ERROR_FAILED,
  QIPC_BUS_ERROR_INVALID_ADDRESS,
  QIPC_BUS_ERROR_INVALID_NAME,
  QIPC_BUS_ERROR_BROKER_NOT_FOUND,
  QIPC_BUS_ERROR_DISCONNECTED,
  QIPC_BUS_ERROR_QUEUE_FULL,
  QIPC_BUS_ERROR_ACCESS_DENIED,
  QIPC_BUS_ERROR_LIMIT_EXCEEDED,
  QIPC_BUS_ERROR_PROTOCOL,
  QIPC_BUS_ERROR_TLS_HANDSHAKE_FAILED,
  QIPC_BUS_ERROR_UNSUPPORTED_DATA,
} QipcBusError;

/**
 * QIPC_BUS_ERROR:
 *
 * The error domain of [class@Bus], [class@Channel] and [class@Broker].
 */
#define QIPC_BUS_ERROR (qipc_bus_error_quark ())

#define QIPC_TYPE_BUS (qipc_bus_get_type ())

QIPC_AVAILABLE_IN_1_0
G_DECLARE_FINAL_TYPE (QipcBus, qipc_bus, QIPC, BUS, GObject)

QIPC_AVAILABLE_IN_1_0
GQuark      qipc_bus_error_quark          (void);

QIPC_AVAILABLE_IN_1_0
QipcBus    *qipc_bus_get_default          (GError       **error);
QIPC_AVAILABLE_IN_1_0
QipcBus    *qipc_bus_new_for_address      (const char    *address,
                                           GError       **error);
QIPC_AVAILABLE_IN_1_0
const char *qipc_bus_get_address          (QipcBus       *self);
QIPC_AVAILABLE_IN_1_0
gboolean    qipc_bus_is_connected         (QipcBus       *self);
QIPC_AVAILABLE_IN_1_0
guint64     qipc_bus_get_messages_lost    (QipcBus       *self);
QIPC_AVAILABLE_IN_1_0
gsize       qipc_bus_get_max_queued       (QipcBus       *self);
QIPC_AVAILABLE_IN_1_0
void        qipc_bus_set_max_queued       (QipcBus       *self,
                                           gsize          max_queued);
QIPC_AVAILABLE_IN_1_0
GVariant   *qipc_bus_list_channels        (QipcBus       *self,
                                           GError       **error);
QIPC_AVAILABLE_IN_1_0
void        qipc_bus_list_channels_async  (QipcBus             *self,
                                           GCancellable        *cancellable,
                                           GAsyncReadyCallback  callback,
                                           gpointer             user_data);
QIPC_AVAILABLE_IN_1_0
GVariant   *qipc_bus_list_channels_finish (QipcBus       *self,
                                           GAsyncResult  *result,
                                           GError       **error);
QIPC_AVAILABLE_IN_1_0
gboolean    qipc_bus_start_monitor        (QipcBus       *self,
                                           GError       **error);
QIPC_AVAILABLE_IN_1_0
void        qipc_bus_close                (QipcBus       *self);

G_END_DECLS
