/* qipc-transport-private.h: the channel transports behind QipcBus
 *
 * QipcBus speaks qipc's native protocol itself (qipc-bus.c). Every other
 * transport (D-Bus, MQTT) is a subclass of QipcTransport that the bus
 * creates from its address and drives through these virtual functions;
 * the transport reports back through the _qipc_bus_transport_*()
 * functions. The bus keeps the channel registrations, routes delivered
 * messages to its QipcChannels (patterns included), emits the bus's
 * signals and runs the blocking forms of the calls, so a transport only
 * moves messages.
 *
 * Everything runs on the bus's main context (the thread-default context
 * of the thread that created the bus); a transport that must use a
 * thread marshals its events back to that context first.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "qipc-bus.h"
#include "qipc-frame-private.h"

G_BEGIN_DECLS

#define QIPC_TYPE_TRANSPORT (_qipc_transport_get_type ())
G_DECLARE_DERIVABLE_TYPE (QipcTransport, _qipc_transport, QIPC, TRANSPORT, GObject)

struct _QipcTransportClass
{
  GObjectClass parent_class;

  /* Connects, blocking the calling thread for at most a few seconds.
   * %QIPC_BUS_ERROR_BROKER_NOT_FOUND when nothing answers. Once open, the
   * transport reconnects by itself after a loss, subscribes its names
   * again, and reports each change with _qipc_bus_transport_set_connected(). */
  gboolean (*open)        (QipcTransport  *self,
                           GError        **error);
  /* Starts delivering the channel name or pattern @name (already
   * validated) under @id, unique on this bus. Names stay subscribed
   * across reconnections until unsubscribe. */
  void     (*subscribe)   (QipcTransport  *self,
                           guint32         id,
                           const char     *name);
  void     (*unsubscribe) (QipcTransport  *self,
                           guint32         id,
                           const char     *name);
  /* Sends one message (names already validated); never blocks. Fails
   * with %QIPC_BUS_ERROR_QUEUE_FULL past qipc_bus_get_max_queued() bytes
   * waiting, or %QIPC_BUS_ERROR_LIMIT_EXCEEDED for what the transport
   * cannot carry. */
  gboolean (*send)        (QipcTransport  *self,
                           const char     *channel,
                           const char     *message,
                           GVariant       *data,
                           GError        **error);
  /* A request with the native protocol's meaning and body types:
   * QUERY (s) -> (b), PING () -> () once everything sent before it has
   * reached the receivers' queues, LIST () -> a(su), MONITOR () -> ()
   * and from then on every message is delivered with
   * _qipc_bus_transport_deliver(). The usual async pair: call_finish
   * gives the reply (transfer full) or an error; a transport that cannot
   * answer fails with %QIPC_BUS_ERROR_FAILED and a message saying so.
   * The bus answers its own caller at once when @cancellable fires and
   * drops whatever the transport answers later. */
  void      (*call)        (QipcTransport        *self,
                            QipcFrameType         type,
                            GVariant             *body,
                            GCancellable         *cancellable,
                            GAsyncReadyCallback   callback,
                            gpointer              user_data);
  GVariant *(*call_finish) (QipcTransport        *self,
                            GAsyncResult         *result,
                            GError              **error);
  /* Disconnects for good, after trying for up to a second to send what
   * is queued; pending calls fail with %QIPC_BUS_ERROR_DISCONNECTED. */
  void     (*close)       (QipcTransport  *self);
};

/* The transport for @address, or %NULL without an error when the
 * address is a native one (unix:, tcp:), which the bus handles itself. */
QipcTransport *_qipc_transport_new_for_address (QipcBus        *bus,
                                                const char     *address,
                                                GError        **error);
/* The bus that owns @self (not referenced: the bus outlives it). */
QipcBus       *_qipc_transport_get_bus         (QipcTransport  *self);

/* From a transport to its bus, on the bus's main context. */
void      _qipc_bus_transport_deliver       (QipcBus        *bus,
                                             const char     *channel,
                                             const char     *message,
                                             GVariant       *data);
void      _qipc_bus_transport_set_connected (QipcBus        *bus,
                                             gboolean        connected);
void      _qipc_bus_transport_lost          (QipcBus        *bus,
                                             guint64         count);
/* A send the transport accepted and then could not complete: the next
 * flush reports it (the first one since the last flush is kept). */
void      _qipc_bus_transport_send_failed   (QipcBus        *bus,
                                             GError         *error);

G_END_DECLS
