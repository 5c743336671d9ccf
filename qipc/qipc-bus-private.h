/* qipc-bus-private.h: what QipcChannel (and the tools) use of QipcBus
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "qipc-bus.h"
#include "qipc-channel.h"
#include "qipc-frame-private.h"

G_BEGIN_DECLS

/* Registers @channel (not referenced: it removes itself) under @name;
 * returns the subscription id, or 0 with @error. */
guint32   _qipc_bus_add_channel     (QipcBus              *self,
                                     QipcChannel          *channel,
                                     const char           *name,
                                     GError              **error);
void      _qipc_bus_remove_channel  (QipcBus              *self,
                                     guint32               id);
gboolean  _qipc_bus_send            (QipcBus              *self,
                                     const char           *channel,
                                     const char           *message,
                                     GVariant             *data,
                                     GError              **error);
/* Sends a request frame (QUERY, PING, LIST, MONITOR) and completes with
 * the reply's body, surviving a reconnection. */
void      _qipc_bus_call_async      (QipcBus              *self,
                                     QipcFrameType         type,
                                     GVariant             *body,
                                     GCancellable         *cancellable,
                                     gpointer              source_tag,
                                     GAsyncReadyCallback   callback,
                                     gpointer              user_data);
GVariant *_qipc_bus_call_finish     (GAsyncResult         *result,
                                     GError              **error);
/* Runs the bus's main context until the call completes. */
GVariant *_qipc_bus_call_sync       (QipcBus              *self,
                                     QipcFrameType         type,
                                     GVariant             *body,
                                     GError              **error);

/* The first refusal of a send since the last call, for flush. */
GError   *_qipc_bus_take_send_error (QipcBus              *self);

/* In qipc-channel.c: emits received on @self. */
void      _qipc_channel_dispatch    (QipcChannel          *self,
                                     const char           *channel,
                                     const char           *message,
                                     GVariant             *data);

G_END_DECLS
