/* qipc-channel.h: a named channel, as Qt's QCopChannel
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__QIPC_INSIDE__) && !defined(QIPC_COMPILATION)
#error "Only <qipc.h> can be included directly."
#endif

#include <gio/gio.h>

#include "qipc-bus.h"
#include "qipc-version-macros.h"

G_BEGIN_DECLS

#define QIPC_TYPE_CHANNEL (qipc_channel_get_type ())

QIPC_AVAILABLE_IN_1_0
G_DECLARE_DERIVABLE_TYPE (QipcChannel, qipc_channel, QIPC, CHANNEL, GObject)

/**
 * QipcChannelClass:
 * @parent_class: the parent class
 * @receive: the class handler of [signal@Channel::received]: called for
 *   every message on a matching channel, as `QCopChannel::receive()`
 *
 * The class of [class@Channel]; subclasses override @receive.
 */

/**
 * QipcChannelClass::receive:
 * @self: the channel
 * @message: the message name
 * @data: (nullable): the message's data
 *
 * Called for every message on a matching channel, after the handlers of
 * [signal@Channel::received] connected before it. #QipcChannel has no
 * default, so overrides do not chain up.
 */
struct _QipcChannelClass
{
  GObjectClass parent_class;

  void (* receive) (QipcChannel *self,
                    const char  *message,
                    GVariant    *data);

  /*< private >*/
  gpointer padding[8];
};

QIPC_AVAILABLE_IN_1_0
QipcChannel *qipc_channel_new                    (const char          *name,
                                                  GError             **error);
QIPC_AVAILABLE_IN_1_0
QipcChannel *qipc_channel_new_for_bus            (QipcBus             *bus,
                                                  const char          *name,
                                                  GError             **error);
QIPC_AVAILABLE_IN_1_0
const char  *qipc_channel_get_name               (QipcChannel         *self);
QIPC_AVAILABLE_IN_1_0
QipcBus     *qipc_channel_get_bus                (QipcChannel         *self);
QIPC_AVAILABLE_IN_1_0
const char  *qipc_channel_get_message_channel    (QipcChannel         *self);

QIPC_AVAILABLE_IN_1_0
gboolean     qipc_channel_send                   (const char          *channel,
                                                  const char          *message,
                                                  GVariant            *data,
                                                  GError             **error);
QIPC_AVAILABLE_IN_1_0
gboolean     qipc_channel_send_for_bus           (QipcBus             *bus,
                                                  const char          *channel,
                                                  const char          *message,
                                                  GVariant            *data,
                                                  GError             **error);

QIPC_AVAILABLE_IN_1_0
gboolean     qipc_channel_is_registered          (const char          *channel,
                                                  GError             **error);
QIPC_AVAILABLE_IN_1_0
gboolean     qipc_channel_is_registered_for_bus  (QipcBus             *bus,
                                                  const char          *channel,
                                                  GError             **error);
QIPC_AVAILABLE_IN_1_0
void         qipc_channel_is_registered_async    (QipcBus             *bus,
                                                  const char          *channel,
                                                  GCancellable        *cancellable,
                                                  GAsyncReadyCallback  callback,
                                                  gpointer             user_data);
QIPC_AVAILABLE_IN_1_0
gboolean     qipc_channel_is_registered_finish   (GAsyncResult        *result,
                                                  GError             **error);

QIPC_AVAILABLE_IN_1_0
gboolean     qipc_channel_flush                  (GError             **error);
QIPC_AVAILABLE_IN_1_0
gboolean     qipc_channel_flush_for_bus          (QipcBus             *bus,
                                                  GError             **error);
QIPC_AVAILABLE_IN_1_0
void         qipc_channel_flush_async            (QipcBus             *bus,
                                                  GCancellable        *cancellable,
                                                  GAsyncReadyCallback  callback,
                                                  gpointer             user_data);
QIPC_AVAILABLE_IN_1_0
gboolean     qipc_channel_flush_finish           (GAsyncResult        *result,
                                                  GError             **error);

G_END_DECLS
