/* qipc-channel.c: a named channel, as Qt's QCopChannel
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/**
 * QipcChannel:
 *
 * A named channel that carries messages between processes, as Qt for
 * Embedded Linux's `QCopChannel`: creating a channel registers the
 * process as a listener on its name, and every message sent to that name
 * by any process (this one included) arrives as
 * [signal@Channel::received], with the message name as the signal's
 * detail and an optional [struct@GLib.Variant] as data.
 *
 * ```c
 * static void
 * on_set_value (QipcChannel *channel, const char *message, GVariant *data,
 *               gpointer user_data)
 * {
 *   g_print ("value: %d\n", g_variant_get_int32 (data));
 * }
 *
 * g_autoptr(QipcChannel) channel = qipc_channel_new ("org.example/settings", &error);
 * g_signal_connect (channel, "received::setValue", G_CALLBACK (on_set_value), NULL);
 *
 * qipc_channel_send ("org.example/settings", "setValue", g_variant_new_int32 (42), &error);
 * ```
 *
 * Channel names are `/`-separated paths of at most 255 bytes of UTF-8,
 * with no empty segment. A channel object may listen on a pattern: a
 * segment `*` matches any one segment, and a last segment `**` matches
 * one or more. Message names are non-empty UTF-8 of at most 255 bytes.
 *
 * Every matching channel object in every process receives each message
 * exactly once while its bus is connected, in the order each sender sent
 * them. Sending never blocks; [func@Channel.flush] waits until what was
 * sent has reached the receivers' queues in the broker. On a Unix socket
 * bus, data of 64 KiB and more travels in a sealed memfd, not through
 * the broker's memory; on TCP it travels inline, up to 1 MiB.
 *
 * A channel made with g_object_new() (as a subclass written in Python or
 * JavaScript is) registers too; if that fails (an invalid name, no
 * broker), a warning says why, since there is no GError to return.
 *
 * The registration ends when the object is finalized. Signals are
 * emitted on the main context of the channel's [class@Bus].
 */

#include "qipc-channel.h"
#include "qipc-bus-private.h"
#include "qipc-marshal.h"

enum {
  RECEIVED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

enum {
  PROP_0,
  PROP_NAME,
  PROP_BUS,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

typedef struct
{
  char *name;
  QipcBus *bus;
  guint32 registration;
  GError *construct_error;
  const char *message_channel; /* during received */
  GQuark last_detail;          /* the last message name that had a quark */
} QipcChannelPrivate;

G_DEFINE_TYPE_WITH_PRIVATE (QipcChannel, qipc_channel, G_TYPE_OBJECT)

/* Set while channel_new() runs g_object_new(), which then reports a
 * failure to register as a GError instead of a warning. */
static GPrivate in_constructor;

/* Registering here lets g_object_new() (and so subclasses written in
 * Python or JavaScript) make working channels; the constructors turn a
 * failure into a GError. */
static void
qipc_channel_constructed (GObject *object)
{
  QipcChannel *self = QIPC_CHANNEL (object);
  QipcChannelPrivate *priv = qipc_channel_get_instance_private (self);

  G_OBJECT_CLASS (qipc_channel_parent_class)->constructed (object);

  if (priv->bus == NULL)
    priv->bus = qipc_bus_get_default (&priv->construct_error);
  if (priv->bus != NULL)
    priv->registration = _qipc_bus_add_channel (priv->bus, self, priv->name,
                                                &priv->construct_error);
  /* The constructors turn the failure into a GError; made with
   * g_object_new() (a subclass in Python or JavaScript), the object has
   * no other way to tell. */
  if (priv->construct_error != NULL && !g_private_get (&in_constructor))
    g_warning ("QipcChannel \"%s\" is not registered: %s",
               priv->name != NULL ? priv->name : "(null)", priv->construct_error->message);
}

static void
qipc_channel_dispose (GObject *object)
{
  QipcChannel *self = QIPC_CHANNEL (object);
  QipcChannelPrivate *priv = qipc_channel_get_instance_private (self);

  if (priv->registration != 0)
    _qipc_bus_remove_channel (priv->bus, priv->registration);
  priv->registration = 0;
  g_clear_object (&priv->bus);
  G_OBJECT_CLASS (qipc_channel_parent_class)->dispose (object);
}

static void
qipc_channel_finalize (GObject *object)
{
  QipcChannel *self = QIPC_CHANNEL (object);
  QipcChannelPrivate *priv = qipc_channel_get_instance_private (self);

  g_free (priv->name);
  g_clear_error (&priv->construct_error);
  G_OBJECT_CLASS (qipc_channel_parent_class)->finalize (object);
}

static void
qipc_channel_get_property (GObject    *object,
                           guint       prop_id,
                           GValue     *value,
                           GParamSpec *pspec)
{
  QipcChannel *self = QIPC_CHANNEL (object);
  QipcChannelPrivate *priv = qipc_channel_get_instance_private (self);

  switch (prop_id)
    {
    case PROP_NAME:
      g_value_set_string (value, priv->name);
      break;
    case PROP_BUS:
      g_value_set_object (value, priv->bus);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
qipc_channel_set_property (GObject      *object,
                           guint         prop_id,
                           const GValue *value,
                           GParamSpec   *pspec)
{
  QipcChannel *self = QIPC_CHANNEL (object);
  QipcChannelPrivate *priv = qipc_channel_get_instance_private (self);

  switch (prop_id)
    {
    case PROP_NAME:
      priv->name = g_value_dup_string (value);
      break;
    case PROP_BUS:
      priv->bus = g_value_dup_object (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
qipc_channel_class_init (QipcChannelClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  /* No default receive: with the class closure empty, a channel with a
   * single handler takes GSignal's fast path (its va_list marshaller),
   * which is measurable at a million messages a second. */
  object_class->constructed = qipc_channel_constructed;
  object_class->dispose = qipc_channel_dispose;
  object_class->finalize = qipc_channel_finalize;
  object_class->get_property = qipc_channel_get_property;
  object_class->set_property = qipc_channel_set_property;

  /**
   * QipcChannel:name:
   *
   * The channel name or pattern the object listens on.
   */
  properties[PROP_NAME] =
    g_param_spec_string ("name", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * QipcChannel:bus:
   *
   * The bus the channel is registered on.
   */
  properties[PROP_BUS] =
    g_param_spec_object ("bus", NULL, NULL, QIPC_TYPE_BUS,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * QipcChannel::received:
   * @self: the channel
   * @message: the message name
   * @data: (nullable): the message's data
   *
   * Emitted for every message sent to a channel name this object
   * matches. The signal is detailed by the message name, so
   * `received::setValue` sees only `setValue` messages.
   */
  signals[RECEIVED] =
    g_signal_new ("received", G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST | G_SIGNAL_DETAILED,
                  G_STRUCT_OFFSET (QipcChannelClass, receive),
                  NULL, NULL, _qipc_marshal_VOID__STRING_VARIANT, G_TYPE_NONE, 2,
                  G_TYPE_STRING | G_SIGNAL_TYPE_STATIC_SCOPE,
                  G_TYPE_VARIANT);
  g_signal_set_va_marshaller (signals[RECEIVED], G_TYPE_FROM_CLASS (klass),
                              _qipc_marshal_VOID__STRING_VARIANTv);
}

static void
qipc_channel_init (QipcChannel *self)
{
}

void
_qipc_channel_dispatch (QipcChannel *self,
                        const char  *channel,
                        const char  *message,
                        GVariant    *data)
{
  QipcChannelPrivate *priv = qipc_channel_get_instance_private (self);
  const char *outer = priv->message_channel;
  GQuark detail = priv->last_detail;

  /* Only an existing quark can have handlers connected with it as the
   * detail; looking it up instead of creating it keeps the names that
   * peers send out of the process-wide quark table. The lookup takes a
   * global lock, and quarks live for ever, so the last one is kept. */
  if (detail == 0 || strcmp (g_quark_to_string (detail), message) != 0)
    {
      detail = g_quark_try_string (message);
      if (detail != 0)
        priv->last_detail = detail;
    }
  priv->message_channel = channel;
  g_signal_emit (self, signals[RECEIVED], detail, message, data);
  priv->message_channel = outer;
}

static QipcChannel *
channel_new (QipcBus     *bus,
             const char  *name,
             GError     **error)
{
  g_autoptr(QipcChannel) self = NULL;
  QipcChannelPrivate *priv;

  g_private_set (&in_constructor, GINT_TO_POINTER (TRUE));
  self = g_object_new (QIPC_TYPE_CHANNEL, "bus", bus, "name", name, NULL);
  g_private_set (&in_constructor, NULL);
  priv = qipc_channel_get_instance_private (self);

  if (priv->construct_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&priv->construct_error));
      return NULL;
    }
  return g_steal_pointer (&self);
}

static QipcBus *
default_bus_or_ref (QipcBus  *bus,
                    GError  **error)
{
  return bus != NULL ? g_object_ref (bus) : qipc_bus_get_default (error);
}

/**
 * qipc_channel_new_for_bus:
 * @bus: the bus to listen on
 * @name: a channel name or pattern
 * @error: return location for a #GError
 *
 * Creates a channel object listening on @name through @bus.
 *
 * Returns: (transfer full): a new #QipcChannel, or %NULL with @error set
 *   (%QIPC_BUS_ERROR_INVALID_NAME, %QIPC_BUS_ERROR_LIMIT_EXCEEDED after
 *   1024 channels on one bus, %QIPC_BUS_ERROR_DISCONNECTED)
 */
QipcChannel *
qipc_channel_new_for_bus (QipcBus     *bus,
                          const char  *name,
                          GError     **error)
{
  g_return_val_if_fail (QIPC_IS_BUS (bus), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return channel_new (bus, name, error);
}

/**
 * qipc_channel_new:
 * @name: a channel name or pattern
 * @error: return location for a #GError
 *
 * Creates a channel object listening on @name through the default bus
 * ([func@Bus.get_default]).
 *
 * Returns: (transfer full): a new #QipcChannel, or %NULL with @error set
 */
QipcChannel *
qipc_channel_new (const char  *name,
                  GError     **error)
{
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return channel_new (NULL, name, error);
}

/**
 * qipc_channel_get_name:
 * @self: a #QipcChannel
 *
 * Gets [property@Channel:name].
 *
 * Returns: the channel name or pattern
 */
const char *
qipc_channel_get_name (QipcChannel *self)
{
  QipcChannelPrivate *priv = qipc_channel_get_instance_private (self);

  g_return_val_if_fail (QIPC_IS_CHANNEL (self), NULL);

  return priv->name;
}

/**
 * qipc_channel_get_message_channel:
 * @self: a #QipcChannel
 *
 * Gets the channel name the message being received was sent to: the
 * same as [property@Channel:name] for a plain name, and the matching
 * name for a pattern. Only valid in handlers of
 * [signal@Channel::received] (and in the `receive` vfunc).
 *
 * Returns: (nullable): the channel name of the message being received,
 *   or %NULL outside a [signal@Channel::received] emission
 */
const char *
qipc_channel_get_message_channel (QipcChannel *self)
{
  QipcChannelPrivate *priv = qipc_channel_get_instance_private (self);

  g_return_val_if_fail (QIPC_IS_CHANNEL (self), NULL);

  return priv->message_channel;
}

/**
 * qipc_channel_get_bus:
 * @self: a #QipcChannel
 *
 * Gets [property@Channel:bus].
 *
 * Returns: (transfer none): the bus
 */
QipcBus *
qipc_channel_get_bus (QipcChannel *self)
{
  QipcChannelPrivate *priv = qipc_channel_get_instance_private (self);

  g_return_val_if_fail (QIPC_IS_CHANNEL (self), NULL);

  return priv->bus;
}

/**
 * qipc_channel_send_for_bus:
 * @bus: a #QipcBus
 * @channel: a channel name (not a pattern)
 * @message: the message name
 * @data: (nullable): the message's data; a floating reference is sunk
 * @error: return location for a #GError
 *
 * Sends @message to every channel object that matches @channel, in
 * every process connected to @bus's broker, this one included. Never
 * blocks: the message is queued and leaves when the bus's main context
 * runs.
 *
 * @data may nest at most 128 levels, as GVariant counts them (each
 * array, maybe, tuple, dictionary entry or variant is a level, and so is
 * the basic value inside): GVariant reads deeper data as `()`, so deeper
 * data is refused with %QIPC_BUS_ERROR_LIMIT_EXCEEDED rather than sent.
 * Data of 64 KiB or more, which travels in a memfd two levels down,
 * nests at most 126 levels.
 * Over MQTT's JSON format, data that JSON cannot hold is refused with
 * %QIPC_BUS_ERROR_UNSUPPORTED_DATA (see the MQTT guide).
 *
 * Returns: %TRUE if the message was queued; %FALSE with @error set
 *   (%QIPC_BUS_ERROR_INVALID_NAME, %QIPC_BUS_ERROR_QUEUE_FULL,
 *   %QIPC_BUS_ERROR_LIMIT_EXCEEDED, %QIPC_BUS_ERROR_UNSUPPORTED_DATA,
 *   %QIPC_BUS_ERROR_DISCONNECTED)
 */
gboolean
qipc_channel_send_for_bus (QipcBus     *bus,
                           const char  *channel,
                           const char  *message,
                           GVariant    *data,
                           GError     **error)
{
  g_autoptr(GVariant) owned = data != NULL ? g_variant_ref_sink (data) : NULL;

  g_return_val_if_fail (QIPC_IS_BUS (bus), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return _qipc_bus_send (bus, channel, message, owned, error);
}

/**
 * qipc_channel_send:
 * @channel: a channel name (not a pattern)
 * @message: the message name
 * @data: (nullable): the message's data; a floating reference is sunk
 * @error: return location for a #GError
 *
 * Sends @message on the default bus, as `QCopChannel::send()`; see
 * [func@Channel.send_for_bus].
 *
 * Returns: %TRUE if the message was queued
 */
gboolean
qipc_channel_send (const char  *channel,
                   const char  *message,
                   GVariant    *data,
                   GError     **error)
{
  g_autoptr(GVariant) owned = data != NULL ? g_variant_ref_sink (data) : NULL;
  g_autoptr(QipcBus) bus = NULL;

  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  bus = qipc_bus_get_default (error);
  if (bus == NULL)
    return FALSE;
  return _qipc_bus_send (bus, channel, message, owned, error);
}

static gboolean
reply_to_boolean (GVariant *reply)
{
  gboolean registered;

  g_variant_get (reply, "(b)", &registered);
  g_variant_unref (reply);
  return registered;
}

/**
 * qipc_channel_is_registered_for_bus:
 * @bus: a #QipcBus
 * @channel: a channel name (not a pattern)
 * @error: return location for a #GError
 *
 * Asks the broker whether some process listens on a channel matching
 * @channel, as `QCopChannel::isRegistered()`. Blocks until the answer,
 * running the bus's main context meanwhile (as the `wait_for_*` calls of
 * [class@Socket] do); call it from the bus's thread.
 *
 * Returns: %TRUE if some channel object matches; %FALSE if none does, or
 *   with @error set
 */
gboolean
qipc_channel_is_registered_for_bus (QipcBus     *bus,
                                    const char  *channel,
                                    GError     **error)
{
  GVariant *reply;

  g_return_val_if_fail (QIPC_IS_BUS (bus), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!_qipc_channel_name_validate (channel, FALSE, error))
    return FALSE;
  reply = _qipc_bus_call_sync (bus, QIPC_FRAME_QUERY, g_variant_new ("(s)", channel), error);
  return reply != NULL && reply_to_boolean (reply);
}

/**
 * qipc_channel_is_registered:
 * @channel: a channel name (not a pattern)
 * @error: return location for a #GError
 *
 * [func@Channel.is_registered_for_bus] on the default bus.
 *
 * Returns: %TRUE if some channel object matches
 */
gboolean
qipc_channel_is_registered (const char  *channel,
                            GError     **error)
{
  g_autoptr(QipcBus) bus = NULL;

  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  bus = qipc_bus_get_default (error);
  return bus != NULL && qipc_channel_is_registered_for_bus (bus, channel, error);
}

/**
 * qipc_channel_is_registered_async:
 * @bus: (nullable): a #QipcBus, or %NULL for the default bus
 * @channel: a channel name (not a pattern)
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the answer
 * @user_data: data for @callback
 *
 * Asks the broker whether some process listens on a channel matching
 * @channel, without blocking.
 */
void
qipc_channel_is_registered_async (QipcBus             *bus,
                                  const char          *channel,
                                  GCancellable        *cancellable,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  g_autoptr(QipcBus) owned = NULL;
  g_autoptr(GError) error = NULL;

  g_return_if_fail (bus == NULL || QIPC_IS_BUS (bus));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  owned = default_bus_or_ref (bus, &error);
  if (owned == NULL || !_qipc_channel_name_validate (channel, FALSE, &error))
    {
      g_task_report_error (owned, callback, user_data, qipc_channel_is_registered_async,
                           g_steal_pointer (&error));
      return;
    }
  _qipc_bus_call_async (owned, QIPC_FRAME_QUERY, g_variant_new ("(s)", channel), cancellable,
                        qipc_channel_is_registered_async, callback, user_data);
}

/**
 * qipc_channel_is_registered_finish:
 * @result: the result given to the callback
 * @error: return location for a #GError
 *
 * Finishes [func@Channel.is_registered_async].
 *
 * Returns: %TRUE if some channel object matches
 */
gboolean
qipc_channel_is_registered_finish (GAsyncResult  *result,
                                   GError       **error)
{
  GVariant *reply;

  g_return_val_if_fail (G_IS_TASK (result), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  reply = _qipc_bus_call_finish (result, error);
  return reply != NULL && reply_to_boolean (reply);
}

/* The first send the broker refused since the last flush fails it. */
static gboolean
flush_result (QipcBus   *bus,
              GVariant  *reply,
              GError   **error)
{
  GError *send_error;

  if (reply == NULL)
    return FALSE;
  g_variant_unref (reply);
  send_error = _qipc_bus_take_send_error (bus);
  if (send_error != NULL)
    {
      g_propagate_error (error, send_error);
      return FALSE;
    }
  return TRUE;
}

/**
 * qipc_channel_flush_for_bus:
 * @bus: a #QipcBus
 * @error: return location for a #GError
 *
 * Waits until every message sent on @bus before this call has been
 * queued by the broker for its receivers, as `QCopChannel::flush()`.
 * Blocks, running the bus's main context meanwhile; call it from the
 * bus's thread. It waits through a reconnection, but fails with
 * %QIPC_BUS_ERROR_DISCONNECTED once the broker has been unreachable for
 * 5 seconds (the async form waits until cancelled). A message the broker refused since the last flush (its
 * policy forbade it) makes the flush fail with that error.
 *
 * Returns: %TRUE when everything was delivered to the broker's queues
 */
gboolean
qipc_channel_flush_for_bus (QipcBus  *bus,
                            GError  **error)
{
  GVariant *reply;

  g_return_val_if_fail (QIPC_IS_BUS (bus), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  reply = _qipc_bus_call_sync (bus, QIPC_FRAME_PING, NULL, error);
  return flush_result (bus, reply, error);
}

/**
 * qipc_channel_flush:
 * @error: return location for a #GError
 *
 * [func@Channel.flush_for_bus] on the default bus.
 *
 * Returns: %TRUE when everything was delivered to the broker's queues
 */
gboolean
qipc_channel_flush (GError **error)
{
  g_autoptr(QipcBus) bus = NULL;

  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  bus = qipc_bus_get_default (error);
  return bus != NULL && qipc_channel_flush_for_bus (bus, error);
}

/**
 * qipc_channel_flush_async:
 * @bus: (nullable): a #QipcBus, or %NULL for the default bus
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called once everything sent before has been
 *   queued by the broker for its receivers
 * @user_data: data for @callback
 *
 * The form of [func@Channel.flush_for_bus] that does not block.
 */
void
qipc_channel_flush_async (QipcBus             *bus,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  g_autoptr(QipcBus) owned = NULL;
  g_autoptr(GError) error = NULL;

  g_return_if_fail (bus == NULL || QIPC_IS_BUS (bus));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  owned = default_bus_or_ref (bus, &error);
  if (owned == NULL)
    {
      g_task_report_error (NULL, callback, user_data, qipc_channel_flush_async,
                           g_steal_pointer (&error));
      return;
    }
  _qipc_bus_call_async (owned, QIPC_FRAME_PING, NULL, cancellable,
                        qipc_channel_flush_async, callback, user_data);
}

/**
 * qipc_channel_flush_finish:
 * @result: the result given to the callback
 * @error: return location for a #GError
 *
 * Finishes [func@Channel.flush_async].
 *
 * Returns: %TRUE when everything was delivered to the broker's queues
 */
gboolean
qipc_channel_flush_finish (GAsyncResult  *result,
                           GError       **error)
{
  QipcBus *bus;

  g_return_val_if_fail (G_IS_TASK (result), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  bus = g_task_get_source_object (G_TASK (result));
  return flush_result (bus, _qipc_bus_call_finish (result, error), error);
}
