/* qipc-broker.c: the channel broker, as an object
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/**
 * QipcBroker:
 *
 * The broker of qipc's native channel protocol, as an object that runs
 * on the thread-default [struct@GLib.MainContext] of the thread that
 * created it, so an application can host the channels of its clients in
 * its own main loop, as the QWS server of Qt for Embedded Linux hosted
 * QCOP. The `qipc-broker` daemon is a thin program around it.
 *
 * ```c
 * g_autoptr(QipcBroker) broker = qipc_broker_new ();
 *
 * if (!qipc_broker_listen (broker, "unix:path=/run/user/1000/qipc/bus", &error))
 *   g_error ("%s", error->message);
 * g_main_loop_run (loop);
 * ```
 *
 * Every client that registered a channel matching a message's channel
 * name gets the message once, in the order each sender sent it. The
 * broker never waits for a slow receiver: it queues up to
 * [property@Broker:max-queued-bytes] for each one, drops what comes
 * beyond that, and tells the receiver how many messages it missed once
 * its queue has drained (the client's [signal@Bus::messages-lost]).
 *
 * Peers are checked against the policy (see the security guide): by
 * default only the broker's own user may connect. A peer that breaks the
 * protocol is disconnected with a logged reason; the others go on.
 */

#include "qipc-broker.h"
#include "qipc-address-private.h"
#include "qipc-bus.h"
#include "qipc-channel.h"
#include "qipc-frame-private.h"
#include "qipc-local-server.h"
#include "qipc-local-socket.h"
#include "qipc-policy-private.h"
#include "qipc-server-private.h"
#include "qipc-socket-private.h"
#include "qipc-tcp-server.h"
#include "qipc-version.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* Subscriptions one client may hold. */
#define MAX_SUBSCRIPTIONS 1024
#define DEFAULT_MAX_QUEUED_BYTES (8 * 1024 * 1024)
#define MAX_BACKLOG 4096
#define DEFAULT_HANDSHAKE_TIMEOUT_MS 10000
/* Payload memfds queued for one receiver before more are dropped. */
#define MAX_QUEUED_MEMFDS 64

typedef struct _Peer Peer;

typedef struct
{
  const guint8 *frame;
  gsize size;
  int fd;                     /* the payload memfd, or -1 */
} Message;

typedef struct
{
  Peer *peer;
  guint32 id;
  char *pattern;
} Subscription;

struct _Peer
{
  QipcBroker *broker;
  QipcSocket *socket;
  guint64 id;
  pid_t pid;
  char *name;
  gboolean welcomed;
  gboolean dropped;
  gboolean monitor;
  const QipcPolicyGrant *grant;
  GHashTable *subscriptions;  /* id -> Subscription */
  GQueue fds;                 /* received fds (GINT_TO_POINTER) */
  guint64 lost;
  guint queued_memfds;        /* memfd payloads queued since the queue was empty */
  guint64 generation;         /* the last message delivered to it */
  gulong bytes_written_id;
  GSource *hello_timer;       /* until HELLO comes */
};

typedef struct
{
  QipcServer *server;
  char *lock_path;
  int lock_fd;
} Listener;

/* A bridge to MQTT: an internal client of the broker, never given back
 * what it injected itself. */
typedef struct
{
  QipcBroker *broker;
  char *address;
  char **patterns;
  QipcBus *bus;               /* the MQTT side */
  GPtrArray *channels;        /* QipcChannel, one a pattern */
} Bridge;

struct _QipcBroker
{
  GObject parent_instance;

  QipcPolicy *policy;
  GPtrArray *listeners;       /* Listener */
  GHashTable *peers;          /* Peer * -> Peer * */
  guint64 next_peer_id;
  guint64 generation;
  gsize max_queued_bytes;
  guint handshake_timeout_ms;
  GTlsCertificate *tls_certificate;
  GMainContext *context;
  GSource *trim_timer;        /* while a client keeps a large read buffer */

  GHashTable *exact;          /* name -> GPtrArray of Subscription */
  QipcLastLookup last_exact;  /* in exact */
  QipcValidName last_valid;   /* of the SEND frames */
  GPtrArray *patterns;        /* Subscription with wildcards */
  GHashTable *listener_counts;/* name or pattern -> count */
  GPtrArray *monitors;        /* Peer */
  GPtrArray *bridges;         /* Bridge */
  GByteArray *scratch;        /* a frame being built for a bridge */
};

enum {
  CHANNEL_ADDED,
  CHANNEL_REMOVED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

enum {
  PROP_0,
  PROP_N_CLIENTS,
  PROP_MAX_QUEUED_BYTES,
  PROP_HANDSHAKE_TIMEOUT,
  PROP_TLS_CERTIFICATE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (QipcBroker, qipc_broker, G_TYPE_OBJECT)

static void peer_drop (Peer *peer, const char *reason);
static void bridge_forward (Bridge *bridge, const char *channel, const Message *message);

/* ------------------------------------------------------------------ */
/* Listeners                                                           */

static void
listener_free (gpointer data)
{
  Listener *listener = data;

  qipc_server_close (listener->server);
  g_object_unref (listener->server);
  if (listener->lock_fd >= 0)
    close (listener->lock_fd);
  g_free (listener->lock_path);
  g_free (listener);
}

/* ------------------------------------------------------------------ */
/* Subscriptions                                                       */

static void
count_listener (QipcBroker *self,
                const char *pattern,
                int         delta)
{
  guint count = GPOINTER_TO_UINT (g_hash_table_lookup (self->listener_counts, pattern));

  if (delta > 0 && count++ == 0)
    {
      g_hash_table_insert (self->listener_counts, g_strdup (pattern), GUINT_TO_POINTER (count));
      g_signal_emit (self, signals[CHANNEL_ADDED], 0, pattern);
      return;
    }
  if (delta < 0 && --count == 0)
    {
      g_autofree char *name = g_strdup (pattern);

      g_hash_table_remove (self->listener_counts, pattern);
      g_signal_emit (self, signals[CHANNEL_REMOVED], 0, name);
      return;
    }
  g_hash_table_insert (self->listener_counts, g_strdup (pattern), GUINT_TO_POINTER (count));
}

static void
subscription_add (QipcBroker   *self,
                  Subscription *sub)
{
  _qipc_last_lookup_forget (&self->last_exact);
  if (_qipc_channel_name_is_pattern (sub->pattern))
    {
      g_ptr_array_add (self->patterns, sub);
    }
  else
    {
      GPtrArray *list = g_hash_table_lookup (self->exact, sub->pattern);

      if (list == NULL)
        {
          list = g_ptr_array_new ();
          g_hash_table_insert (self->exact, g_strdup (sub->pattern), list);
        }
      g_ptr_array_add (list, sub);
    }
  count_listener (self, sub->pattern, +1);
}

static void
subscription_remove (QipcBroker   *self,
                     Subscription *sub)
{
  _qipc_last_lookup_forget (&self->last_exact);
  if (_qipc_channel_name_is_pattern (sub->pattern))
    {
      g_ptr_array_remove_fast (self->patterns, sub);
    }
  else
    {
      GPtrArray *list = g_hash_table_lookup (self->exact, sub->pattern);

      g_ptr_array_remove_fast (list, sub);
      if (list->len == 0)
        g_hash_table_remove (self->exact, sub->pattern);
    }
  count_listener (self, sub->pattern, -1);
}

/* Called by the peer's subscription table as entries go. */
static void
subscription_free (gpointer data)
{
  Subscription *sub = data;

  if (sub->peer->broker != NULL)
    subscription_remove (sub->peer->broker, sub);
  g_free (sub->pattern);
  g_free (sub);
}

static gboolean
name_is_registered (QipcBroker *self,
                    const char *name)
{
  if (g_hash_table_contains (self->exact, name))
    return TRUE;
  for (guint i = 0; i < self->patterns->len; i++)
    {
      Subscription *sub = g_ptr_array_index (self->patterns, i);

      if (_qipc_channel_pattern_match (sub->pattern, name))
        return TRUE;
    }
  return FALSE;
}

/* ------------------------------------------------------------------ */
/* Writing to peers                                                    */

static void
peer_write_frame (Peer          *peer,
                  QipcFrameType  type,
                  guint32        serial,
                  GVariant      *body)
{
  g_autoptr(GBytes) frame = _qipc_frame_build (type, 0, serial, body);

  qipc_socket_write (peer->socket, frame, NULL);
}

static void
peer_write_error (Peer       *peer,
                  guint32     serial,
                  int         code,
                  const char *message)
{
  peer_write_frame (peer, QIPC_FRAME_ERROR, serial,
                    g_variant_new ("(us)", (guint32) code, message));
}

static void
send_lost (Peer *peer)
{
  g_debug ("Client %" G_GUINT64_FORMAT " lost %" G_GUINT64_FORMAT " messages",
           peer->id, peer->lost);
  peer_write_frame (peer, QIPC_FRAME_LOST, 0, g_variant_new ("(t)", peer->lost));
  peer->lost = 0;
  g_clear_signal_handler (&peer->bytes_written_id, peer->socket);
}

static gboolean
queue_has_drained (Peer *peer)
{
  return qipc_socket_bytes_to_write (peer->socket) <= peer->broker->max_queued_bytes / 2;
}

static void
on_bytes_written (QipcSocket *socket,
                  gint64      bytes,
                  gpointer    user_data)
{
  Peer *peer = user_data;

  if (queue_has_drained (peer))
    send_lost (peer);
}

/* Counts a message the peer cannot take. The count goes out in a LOST
 * frame once the peer's queue has drained to half, or at once when the
 * loss had another cause (an unpassable payload) and the queue is short:
 * until then, later messages are dropped too, so that the gap the
 * receiver is told about is one gap. */
static void
peer_lose (Peer *peer)
{
  peer->lost++;
  if (queue_has_drained (peer))
    send_lost (peer);
  else if (peer->bytes_written_id == 0)
    peer->bytes_written_id = g_signal_connect (peer->socket, "bytes-written",
                                               G_CALLBACK (on_bytes_written), peer);
}


static void
peer_deliver (Peer          *peer,
              const Message *message)
{
  guint8 header[QIPC_FRAME_HEADER_SIZE];
  g_autoptr(GError) error = NULL;
  gsize queued;

  if (peer->dropped || peer->generation == peer->broker->generation)
    return;
  peer->generation = peer->broker->generation;

  queued = qipc_socket_bytes_to_write (peer->socket);
  if (queued == 0)
    peer->queued_memfds = 0;
  if (peer->lost > 0 || queued >= peer->broker->max_queued_bytes)
    {
      peer_lose (peer);
      return;
    }

  memcpy (header, message->frame, QIPC_FRAME_HEADER_SIZE);
  header[3] = QIPC_FRAME_DELIVER;

  if (message->fd >= 0)
    {
      g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
      g_autoptr(GByteArray) frame = g_byte_array_sized_new (message->size);
      g_autoptr(GBytes) bytes = NULL;

      if (!QIPC_IS_LOCAL_SOCKET (peer->socket))
        {
          g_message ("Client %" G_GUINT64_FORMAT " is on TCP and cannot take a memfd payload; "
                     "counted as lost", peer->id);
          peer_lose (peer);
          return;
        }
      /* Each queued payload holds a descriptor: a receiver that does not
       * read must not exhaust the broker's. */
      if (peer->queued_memfds >= MAX_QUEUED_MEMFDS)
        {
          peer_lose (peer);
          return;
        }
      peer->queued_memfds++;
      g_byte_array_append (frame, header, sizeof header);
      g_byte_array_append (frame, message->frame + sizeof header, message->size - sizeof header);
      bytes = g_byte_array_free_to_bytes (g_steal_pointer (&frame));
      if (g_unix_fd_list_append (fds, message->fd, &error) < 0 ||
          !qipc_local_socket_write_with_fds (QIPC_LOCAL_SOCKET (peer->socket), bytes, fds, &error))
        {
          g_message ("Cannot pass a payload to client %" G_GUINT64_FORMAT ": %s",
                     peer->id, error->message);
          peer_lose (peer);
        }
      return;
    }

  if (message->size <= QIPC_SOCKET_RESERVE_MAX)
    {
      guint8 *out = _qipc_socket_write_reserve (peer->socket, message->size);

      /* A peer on its way out takes nothing more. */
      if (out == NULL)
        return;
      memcpy (out, header, sizeof header);
      memcpy (out + sizeof header, message->frame + sizeof header, message->size - sizeof header);
      return;
    }
  qipc_socket_write_data (peer->socket, header, sizeof header, NULL);
  qipc_socket_write_data (peer->socket, message->frame + sizeof header,
                          message->size - sizeof header, NULL);
}

/* @origin: the bridge that injected the message, which does not get
 * it back (NULL for a client's). */
static void
route (QipcBroker    *self,
       const char    *channel,
       const Message *message,
       Bridge        *origin)
{
  GPtrArray *list = _qipc_last_lookup (&self->last_exact, self->exact, channel);

  self->generation++;
  if (list != NULL)
    for (guint i = 0; i < list->len; i++)
      {
        Subscription *sub = g_ptr_array_index (list, i);

        if (_qipc_policy_may_receive (sub->peer->grant, channel))
          peer_deliver (sub->peer, message);
      }
  for (guint i = 0; i < self->patterns->len; i++)
    {
      Subscription *sub = g_ptr_array_index (self->patterns, i);

      if (_qipc_channel_pattern_match (sub->pattern, channel) &&
          _qipc_policy_may_receive (sub->peer->grant, channel))
        peer_deliver (sub->peer, message);
    }
  for (guint i = 0; i < self->monitors->len; i++)
    peer_deliver (g_ptr_array_index (self->monitors, i), message);
  for (guint i = 0; i < self->bridges->len; i++)
    if (g_ptr_array_index (self->bridges, i) != origin)
      bridge_forward (g_ptr_array_index (self->bridges, i), channel, message);
}

/* ------------------------------------------------------------------ */
/* Bridges to MQTT                                                     */

static void
bridge_free (gpointer data)
{
  Bridge *bridge = data;

  g_ptr_array_unref (bridge->channels);
  if (bridge->bus != NULL)
    qipc_bus_close (bridge->bus);
  g_clear_object (&bridge->bus);
  g_strfreev (bridge->patterns);
  g_free (bridge->address);
  g_free (bridge);
}

/* The index of the first of @bridge's patterns that matches @channel,
 * or -1. */
static int
bridge_match (Bridge     *bridge,
              const char *channel)
{
  for (int i = 0; bridge->patterns[i] != NULL; i++)
    if (g_str_equal (bridge->patterns[i], channel) ||
        _qipc_channel_pattern_match (bridge->patterns[i], channel))
      return i;
  return -1;
}

/* The data of a SEND frame, from the frame or its memfd. */
static gboolean
message_decode (const Message  *message,
                char          **name,
                GVariant      **data,
                GError        **error)
{
  const guint8 *body = message->frame + QIPC_FRAME_HEADER_SIZE;
  gsize body_size = message->size - QIPC_FRAME_HEADER_SIZE;

  *data = NULL;
  if (message->fd >= 0)
    {
      g_autoptr(GVariant) head = g_variant_new_from_data (G_VARIANT_TYPE ("(sst)"), body, body_size,
                                                          FALSE, NULL, NULL);
      g_autoptr(GVariant) payload = NULL;
      g_autoptr(GVariant) boxed = NULL;
      guint64 size;

      g_variant_ref_sink (head);
      g_variant_get (head, "(sst)", NULL, name, &size);
      payload = _qipc_payload_memfd_map (message->fd, size, error);
      if (payload == NULL)
        return FALSE;
      boxed = g_variant_get_maybe (payload);
      if (boxed != NULL)
        *data = g_variant_get_variant (boxed);
      return TRUE;
    }
  else
    {
      QipcSendBody parts;
      g_autofree char *type = NULL;
      g_autoptr(GBytes) value = NULL;

      if (!_qipc_frame_parse_send_body (body, body_size, NULL, &parts, error))
        return FALSE;
      *name = g_strdup (parts.message);
      if (!parts.has_data)
        return TRUE;
      type = g_strndup (parts.type_string, parts.type_length);
      value = g_bytes_new (parts.value, parts.value_size);
      *data = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE (type), value, FALSE));
      return TRUE;
    }
}

/* Native to MQTT: a message routed here that the bridge's patterns
 * take. */
static void
bridge_forward (Bridge        *bridge,
                const char    *channel,
                const Message *message)
{
  g_autofree char *name = NULL;
  g_autoptr(GVariant) data = NULL;
  g_autoptr(GError) error = NULL;

  if (bridge_match (bridge, channel) < 0)
    return;
  if (!message_decode (message, &name, &data, &error) ||
      !qipc_channel_send_for_bus (bridge->bus, channel, name, data, &error))
    g_message ("The bridge to %s drops a message on %s: %s", bridge->address, channel,
               error->message);
}

/* MQTT to native: injected as a client's message would be, except that
 * it does not go back to this bridge. */
static void
on_bridge_received (QipcChannel *channel,
                    const char  *name,
                    GVariant    *data,
                    gpointer     user_data)
{
  Bridge *bridge = user_data;
  QipcBroker *self = bridge->broker;
  const char *channel_name = qipc_channel_get_message_channel (channel);
  Message message = { NULL, 0, -1 };
  g_autoptr(GBytes) frame = NULL;
  g_autoptr(GError) error = NULL;

  /* Patterns may overlap: the first one that matches forwards. */
  if (bridge_match (bridge, channel_name) != GPOINTER_TO_INT (g_object_get_data (G_OBJECT (channel),
                                                                                  "qipc-bridge-index")))
    return;
  if (data != NULL && g_variant_get_size (data) >= QIPC_FRAME_MEMFD_THRESHOLD)
    {
      g_autoptr(GVariant) payload = g_variant_ref_sink (g_variant_new_maybe (G_VARIANT_TYPE_VARIANT,
                                                                             g_variant_new_variant (data)));

      if (_qipc_data_check_memfd_depth (data, &error))
        message.fd = _qipc_payload_memfd_new (payload, &error);
      if (message.fd < 0)
        {
          g_message ("The bridge from %s drops a message on %s: %s", bridge->address,
                     channel_name, error->message);
          return;
        }
      frame = _qipc_frame_build (QIPC_FRAME_SEND, QIPC_FRAME_FLAG_MEMFD, 0,
                                 g_variant_new ("(sst)", channel_name, name,
                                                (guint64) g_variant_get_size (payload)));
    }
  else
    {
      g_byte_array_set_size (self->scratch, 0);
      _qipc_frame_append_send (self->scratch, QIPC_FRAME_SEND, 0, channel_name, name, data);
      frame = g_bytes_new (self->scratch->data, self->scratch->len);
    }
  message.frame = g_bytes_get_data (frame, &message.size);
  route (self, channel_name, &message, bridge);
  if (message.fd >= 0)
    close (message.fd);
}

/* ------------------------------------------------------------------ */
/* Frames from clients                                                 */

static gboolean
protocol_error (GError    **error,
                const char *format,
                ...) G_GNUC_PRINTF (2, 3);

static gboolean
protocol_error (GError    **error,
                const char *format,
                ...)
{
  va_list args;

  va_start (args, format);
  *error = g_error_new_valist (QIPC_BUS_ERROR, QIPC_BUS_ERROR_PROTOCOL, format, args);
  va_end (args);
  return FALSE;
}

static void
stop_hello_timer (Peer *peer)
{
  if (peer->hello_timer == NULL)
    return;
  g_source_destroy (peer->hello_timer);
  g_clear_pointer (&peer->hello_timer, g_source_unref);
}

static gboolean
handle_hello (Peer                   *peer,
              const QipcFrameHeader  *header,
              GVariant               *body,
              GError                **error)
{
  guint8 min_version, max_version;
  const char *name;

  g_variant_get (body, "(yy&s)", &min_version, &max_version, &name);
  if (peer->welcomed)
    return protocol_error (error, "HELLO sent twice");
  if (min_version > QIPC_PROTOCOL_VERSION || max_version < QIPC_PROTOCOL_VERSION)
    {
      *error = g_error_new (QIPC_BUS_ERROR, QIPC_BUS_ERROR_PROTOCOL,
                            "Client speaks protocol versions %u to %u; this broker speaks %u",
                            min_version, max_version, QIPC_PROTOCOL_VERSION);
      return FALSE;
    }
  peer->welcomed = TRUE;
  stop_hello_timer (peer);
  peer->name = g_strdup (name);
  peer_write_frame (peer, QIPC_FRAME_WELCOME, header->serial,
                    g_variant_new ("(yts)", QIPC_PROTOCOL_VERSION, peer->id,
                                   "qipc-broker " QIPC_VERSION_S));
  g_debug ("Client %" G_GUINT64_FORMAT " (pid %d) is \"%s\"", peer->id, (int) peer->pid, name);
  return TRUE;
}

static gboolean
handle_subscribe (Peer                   *peer,
                  const QipcFrameHeader  *header,
                  GVariant               *body)
{
  Subscription *sub;
  guint32 id;
  const char *pattern;

  g_variant_get (body, "(u&s)", &id, &pattern);
  if (g_hash_table_size (peer->subscriptions) >= MAX_SUBSCRIPTIONS)
    {
      peer_write_error (peer, header->serial, QIPC_BUS_ERROR_LIMIT_EXCEEDED,
                        "A client may hold at most 1024 channels");
      return TRUE;
    }
  if (g_hash_table_contains (peer->subscriptions, GUINT_TO_POINTER (id)))
    {
      peer_write_error (peer, header->serial, QIPC_BUS_ERROR_FAILED,
                        "The subscription id is in use");
      return TRUE;
    }
  sub = g_new0 (Subscription, 1);
  sub->peer = peer;
  sub->id = id;
  sub->pattern = g_strdup (pattern);
  g_hash_table_insert (peer->subscriptions, GUINT_TO_POINTER (id), sub);
  subscription_add (peer->broker, sub);
  return TRUE;
}

/* A refused send is answered with an ERROR for its serial, which the
 * sender's next flush reports. */
static void
route_if_allowed (Peer                  *peer,
                  const QipcFrameHeader *header,
                  const char            *channel,
                  const Message         *message)
{
  if (!_qipc_policy_may_send (peer->grant, channel))
    peer_write_error (peer, header->serial, QIPC_BUS_ERROR_ACCESS_DENIED,
                      "The broker's policy does not allow this client to send on this channel");
  else
    route (peer->broker, channel, message, NULL);
}

/* A SEND frame: route it as it is, with its memfd if it has one. */
static gboolean
handle_send (Peer                   *peer,
             const QipcFrameHeader  *header,
             const guint8           *frame,
             GVariant               *body,
             GError                **error)
{
  Message message = { frame, QIPC_FRAME_HEADER_SIZE + header->body_length, -1 };
  const char *channel;

  g_variant_get_child (body, 0, "&s", &channel);
  if (header->flags & QIPC_FRAME_FLAG_MEMFD)
    {
      guint64 size;

      g_variant_get_child (body, 2, "t", &size);
      if (g_queue_is_empty (&peer->fds))
        return protocol_error (error, "A memfd frame came without its file descriptor");
      message.fd = GPOINTER_TO_INT (g_queue_pop_head (&peer->fds));
      if (!_qipc_payload_memfd_check (message.fd, size, error))
        {
          close (message.fd);
          return FALSE;
        }
    }

  route_if_allowed (peer, header, channel, &message);
  if (message.fd >= 0)
    close (message.fd);
  return TRUE;
}

/* The path of nearly every frame: only the names are read, and the
 * frame goes on as it came. */
static gboolean
handle_plain_send (Peer                   *peer,
                   const QipcFrameHeader  *header,
                   const guint8           *frame,
                   GError                **error)
{
  Message message = { frame, QIPC_FRAME_HEADER_SIZE + header->body_length, -1 };
  QipcSendBody body;

  if (!_qipc_frame_parse_send_body (frame + QIPC_FRAME_HEADER_SIZE, header->body_length,
                                    &peer->broker->last_valid, &body, error))
    return FALSE;
  route_if_allowed (peer, header, body.channel, &message);
  return TRUE;
}

static GVariant *
list_channels (QipcBroker *self)
{
  GVariantBuilder builder;
  GHashTableIter iter;
  gpointer key, value;

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(su)"));
  g_hash_table_iter_init (&iter, self->listener_counts);
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_variant_builder_add (&builder, "(su)", key, GPOINTER_TO_UINT (value));
  return g_variant_builder_end (&builder);
}

static gboolean
handle_monitor (Peer                   *peer,
                const QipcFrameHeader  *header)
{
  if (!_qipc_policy_may_monitor (peer->grant))
    {
      peer_write_error (peer, header->serial, QIPC_BUS_ERROR_ACCESS_DENIED,
                        "The broker's policy does not allow this client to monitor");
      return TRUE;
    }
  if (!peer->monitor)
    {
      peer->monitor = TRUE;
      g_ptr_array_add (peer->broker->monitors, peer);
    }
  peer_write_frame (peer, QIPC_FRAME_PONG, header->serial, NULL);
  return TRUE;
}

static gboolean
handle_frame (const QipcFrameHeader  *header,
              const guint8           *frame,
              gpointer                user_data,
              GError                **error)
{
  Peer *peer = user_data;
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GVariant) body = NULL;

  if (peer->dropped)
    return FALSE;
  if (!peer->welcomed && header->type != QIPC_FRAME_HELLO)
    return protocol_error (error, "The first frame must be HELLO, not type %u", header->type);
  if (header->type == QIPC_FRAME_SEND && !(header->flags & QIPC_FRAME_FLAG_MEMFD))
    return handle_plain_send (peer, header, frame, error);

  bytes = g_bytes_new_static (frame + QIPC_FRAME_HEADER_SIZE, header->body_length);
  body = _qipc_frame_parse_body (header, bytes, error);
  if (body == NULL)
    return FALSE;

  switch ((QipcFrameType) header->type)
    {
    case QIPC_FRAME_HELLO:
      return handle_hello (peer, header, body, error);
    case QIPC_FRAME_SUBSCRIBE:
      return handle_subscribe (peer, header, body);
    case QIPC_FRAME_UNSUBSCRIBE:
      {
        guint32 id;
        g_variant_get (body, "(u)", &id);
        g_hash_table_remove (peer->subscriptions, GUINT_TO_POINTER (id));
        return TRUE;
      }
    case QIPC_FRAME_SEND:
      return handle_send (peer, header, frame, body, error);
    case QIPC_FRAME_QUERY:
      {
        const char *channel;
        g_variant_get (body, "(&s)", &channel);
        peer_write_frame (peer, QIPC_FRAME_REPLY, header->serial,
                          g_variant_new ("(b)", name_is_registered (peer->broker, channel)));
        return TRUE;
      }
    case QIPC_FRAME_PING:
      peer_write_frame (peer, QIPC_FRAME_PONG, header->serial, NULL);
      return TRUE;
    case QIPC_FRAME_LIST:
      peer_write_frame (peer, QIPC_FRAME_CHANNELS, header->serial,
                        list_channels (peer->broker));
      return TRUE;
    case QIPC_FRAME_MONITOR:
      return handle_monitor (peer, header);
    default:
      /* _qipc_frame_header_parse() lets only client frames through. */
      g_assert_not_reached ();
    }
}


/* How often the read buffers of clients that went quiet after a burst
 * are looked at: such a buffer is freed 1 to 2 periods after the burst. */
#define TRIM_PERIOD_S 5

static gboolean
trim_read_buffers (gpointer user_data)
{
  QipcBroker *self = user_data;
  GHashTableIter iter;
  Peer *peer;
  gboolean kept = FALSE;

  g_hash_table_iter_init (&iter, self->peers);
  while (g_hash_table_iter_next (&iter, (gpointer *) &peer, NULL))
    kept |= _qipc_socket_trim_read_buffer (peer->socket);
  if (kept)
    return G_SOURCE_CONTINUE;
  g_clear_pointer (&self->trim_timer, g_source_unref);
  return G_SOURCE_REMOVE;
}

/* Only while some client keeps a large buffer: an idle broker does not
 * wake up for this. */
static void
start_trimming (QipcBroker *self)
{
  if (self->trim_timer != NULL)
    return;
  self->trim_timer = g_timeout_source_new_seconds (TRIM_PERIOD_S);
  g_source_set_callback (self->trim_timer, trim_read_buffers, self, NULL);
  g_source_set_static_name (self->trim_timer, "[qipc] broker read buffers");
  g_source_attach (self->trim_timer, self->context);
}

static void
on_ready_read (QipcSocket *socket,
               gpointer    user_data)
{
  Peer *peer = user_data;
  g_autoptr(GError) error = NULL;
  const guint8 *data;
  gsize size, used;

  if (peer->dropped)
    return;
  if (!_qipc_payload_fds_take (peer->socket, &peer->fds, &error))
    {
      peer_drop (peer, error->message);
      return;
    }
  data = _qipc_socket_peek_buffer (socket, &size);
  used = _qipc_frame_split (data, size, QIPC_FRAME_FROM_CLIENT, handle_frame, peer, &error);
  if (error != NULL)
    {
      peer_drop (peer, error->message);
      return;
    }
  _qipc_socket_consume (socket, used);
  /* Most clients are idle most of the time: what they sent last need
   * not hold 64 KiB each. One that is streaming keeps its buffer until
   * the sweep finds it quiet. */
  if (_qipc_socket_release_read_buffer (socket) && peer->broker != NULL)
    start_trimming (peer->broker);
}

/* ------------------------------------------------------------------ */
/* Peers                                                               */

static void
peer_free (Peer *peer)
{
  stop_hello_timer (peer);
  _qipc_socket_set_ready_func (peer->socket, NULL, NULL);
  g_signal_handlers_disconnect_by_data (peer->socket, peer);
  g_clear_pointer (&peer->subscriptions, g_hash_table_unref);
  _qipc_payload_fds_clear (&peer->fds);
  g_object_unref (peer->socket);
  g_free (peer->name);
  g_free (peer);
}

/* Takes @peer out of the routing tables at once; the object goes when
 * its connection has ended. */
static void
peer_detach (Peer *peer)
{
  QipcBroker *self = peer->broker;

  stop_hello_timer (peer);
  peer->dropped = TRUE;
  g_hash_table_remove_all (peer->subscriptions);
  if (peer->monitor)
    g_ptr_array_remove_fast (self->monitors, peer);
  peer->monitor = FALSE;
}

static void
on_disconnected (QipcSocket *socket,
                 gpointer    user_data)
{
  Peer *peer = user_data;
  QipcBroker *self = peer->broker;

  g_debug ("Client %" G_GUINT64_FORMAT " disconnected", peer->id);
  peer_detach (peer);
  g_hash_table_remove (self->peers, peer);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_CLIENTS]);
}

static void
peer_drop (Peer       *peer,
           const char *reason)
{
  g_message ("Disconnecting client %" G_GUINT64_FORMAT " (pid %d): %s",
             peer->id, (int) peer->pid, reason);
  peer_detach (peer);
  peer_write_error (peer, 0, QIPC_BUS_ERROR_PROTOCOL, reason);
  qipc_socket_close (peer->socket);
}

static gboolean
on_hello_timeout (gpointer user_data)
{
  Peer *peer = user_data;
  g_autofree char *reason = g_strdup_printf ("it sent no HELLO within %u ms",
                                             peer->broker->handshake_timeout_ms);

  g_clear_pointer (&peer->hello_timer, g_source_unref);
  peer_drop (peer, reason);
  return G_SOURCE_REMOVE;
}

static GCredentials *
peer_credentials (QipcSocket *socket)
{
  if (!QIPC_IS_LOCAL_SOCKET (socket))
    return NULL;
  return qipc_local_socket_get_peer_credentials (QIPC_LOCAL_SOCKET (socket), NULL);
}

/* Applies the policy to a connected client. */
static void
admit_peer (Peer *peer)
{
  QipcBroker *self = peer->broker;
  QipcSocket *socket = peer->socket;
  g_autoptr(GCredentials) credentials = peer_credentials (socket);

  peer->pid = credentials != NULL ? g_credentials_get_unix_pid (credentials, NULL) : -1;
  if (QIPC_IS_LOCAL_SOCKET (socket) && credentials == NULL)
    {
      peer_drop (peer, "its credentials cannot be read");
      return;
    }
  peer->grant = _qipc_policy_lookup (self->policy, credentials);
  if (peer->grant == NULL)
    {
      g_message ("Refusing client %" G_GUINT64_FORMAT " (pid %d, uid %d): not allowed by the policy",
                 peer->id, (int) peer->pid,
                 credentials != NULL ? (int) g_credentials_get_unix_user (credentials, NULL) : -1);
      peer_detach (peer);
      peer_write_error (peer, 0, QIPC_BUS_ERROR_ACCESS_DENIED,
                        "The broker's policy does not allow this user to connect");
      qipc_socket_close (socket);
      return;
    }
  /* Frames may already wait behind the connection. */
  if (qipc_socket_bytes_available (socket) > 0)
    on_ready_read (socket, peer);
}

/* A client on TLS is admitted once its handshake is over, so that a
 * refusal reaches it; a socket that never connected ends without
 * ::disconnected, so a failed handshake ends the client here. */
static void
on_handshake_state (QipcSocket      *socket,
                    QipcSocketState  state,
                    gpointer         user_data)
{
  Peer *peer = user_data;

  if (state == QIPC_SOCKET_STATE_CONNECTED)
    {
      g_signal_handlers_disconnect_by_func (socket, on_handshake_state, peer);
      admit_peer (peer);
    }
  else if (state == QIPC_SOCKET_STATE_UNCONNECTED)
    {
      const GError *error = qipc_socket_get_error (socket);

      g_message ("Client %" G_GUINT64_FORMAT " failed the TLS handshake: %s", peer->id,
                 error != NULL ? error->message : "closed");
      on_disconnected (socket, peer);
    }
}

static void
add_peer (QipcBroker *self,
          QipcSocket *socket)
{
  Peer *peer = g_new0 (Peer, 1);

  peer->broker = self;
  peer->socket = socket;
  peer->id = ++self->next_peer_id;
  peer->pid = -1;
  peer->subscriptions = g_hash_table_new_full (NULL, NULL, NULL, subscription_free);
  g_hash_table_add (self->peers, peer);
  _qipc_socket_set_ready_func (socket, on_ready_read, peer);
  g_signal_connect (socket, "disconnected", G_CALLBACK (on_disconnected), peer);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_CLIENTS]);

  /* A connection that never says HELLO (or never ends its TLS
   * handshake) would hold its descriptor and memory for good. */
  peer->hello_timer = g_timeout_source_new (self->handshake_timeout_ms);
  g_source_set_callback (peer->hello_timer, on_hello_timeout, peer, NULL);
  g_source_set_static_name (peer->hello_timer, "[qipc] broker handshake timeout");
  g_source_attach (peer->hello_timer, self->context);

  if (qipc_socket_get_state (socket) == QIPC_SOCKET_STATE_CONNECTING)
    g_signal_connect (socket, "state-changed", G_CALLBACK (on_handshake_state), peer);
  else
    admit_peer (peer);
}

/* The server waits before it tries again, so this comes at most ten
 * times a second. */
static void
on_accept_error (QipcServer   *server,
                 const GError *error,
                 gpointer      user_data)
{
  g_message ("The broker pauses accepting clients: %s", error->message);
}

static void
on_new_connection (QipcServer *server,
                   gpointer    user_data)
{
  QipcBroker *self = user_data;
  QipcSocket *socket;

  while ((socket = qipc_server_next_pending_connection (server)) != NULL)
    add_peer (self, socket);
}

/* ------------------------------------------------------------------ */
/* GObject                                                             */

static void
qipc_broker_dispose (GObject *object)
{
  QipcBroker *self = QIPC_BROKER (object);

  qipc_broker_close (self);
  G_OBJECT_CLASS (qipc_broker_parent_class)->dispose (object);
}

static void
qipc_broker_finalize (GObject *object)
{
  QipcBroker *self = QIPC_BROKER (object);

  g_ptr_array_unref (self->listeners);
  g_hash_table_unref (self->peers);
  g_hash_table_unref (self->exact);
  g_ptr_array_unref (self->patterns);
  g_hash_table_unref (self->listener_counts);
  g_ptr_array_unref (self->monitors);
  g_ptr_array_unref (self->bridges);
  g_byte_array_unref (self->scratch);
  _qipc_policy_free (self->policy);
  g_clear_object (&self->tls_certificate);
  g_main_context_unref (self->context);
  G_OBJECT_CLASS (qipc_broker_parent_class)->finalize (object);
}

static void
qipc_broker_get_property (GObject    *object,
                          guint       prop_id,
                          GValue     *value,
                          GParamSpec *pspec)
{
  QipcBroker *self = QIPC_BROKER (object);

  switch (prop_id)
    {
    case PROP_N_CLIENTS:
      g_value_set_uint (value, qipc_broker_get_n_clients (self));
      break;
    case PROP_MAX_QUEUED_BYTES:
      g_value_set_uint64 (value, self->max_queued_bytes);
      break;
    case PROP_HANDSHAKE_TIMEOUT:
      g_value_set_uint (value, self->handshake_timeout_ms);
      break;
    case PROP_TLS_CERTIFICATE:
      g_value_set_object (value, self->tls_certificate);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
qipc_broker_set_property (GObject      *object,
                          guint         prop_id,
                          const GValue *value,
                          GParamSpec   *pspec)
{
  QipcBroker *self = QIPC_BROKER (object);

  switch (prop_id)
    {
    case PROP_MAX_QUEUED_BYTES:
      qipc_broker_set_max_queued_bytes (self, g_value_get_uint64 (value));
      break;
    case PROP_HANDSHAKE_TIMEOUT:
      qipc_broker_set_handshake_timeout (self, g_value_get_uint (value));
      break;
    case PROP_TLS_CERTIFICATE:
      qipc_broker_set_tls_certificate (self, g_value_get_object (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
qipc_broker_class_init (QipcBrokerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = qipc_broker_dispose;
  object_class->finalize = qipc_broker_finalize;
  object_class->get_property = qipc_broker_get_property;
  object_class->set_property = qipc_broker_set_property;

  /**
   * QipcBroker:n-clients:
   *
   * How many clients are connected.
   */
  properties[PROP_N_CLIENTS] =
    g_param_spec_uint ("n-clients", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * QipcBroker:max-queued-bytes:
   *
   * How many bytes the broker queues for one receiver before it drops
   * the messages that follow (and counts them, see
   * [signal@Bus::messages-lost]). 8 MiB by default.
   */
  properties[PROP_MAX_QUEUED_BYTES] =
    g_param_spec_uint64 ("max-queued-bytes", NULL, NULL, 4096, G_MAXSIZE,
                         DEFAULT_MAX_QUEUED_BYTES,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * QipcBroker:handshake-timeout:
   *
   * How long, in milliseconds, a new client may take to send its HELLO
   * before the broker drops it. 10 seconds by default.
   */
  properties[PROP_HANDSHAKE_TIMEOUT] =
    g_param_spec_uint ("handshake-timeout", NULL, NULL, 1, G_MAXUINT,
                       DEFAULT_HANDSHAKE_TIMEOUT_MS,
                       G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * QipcBroker:tls-certificate: (getter get_tls_certificate) (setter set_tls_certificate)
   *
   * The certificate, with its private key, that the broker presents to
   * clients on TCP: TCP is always TLS, so listening on a `tcp:` address
   * needs one. %NULL by default.
   */
  properties[PROP_TLS_CERTIFICATE] =
    g_param_spec_object ("tls-certificate", NULL, NULL, G_TYPE_TLS_CERTIFICATE,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * QipcBroker::channel-added:
   * @self: the broker
   * @name: the channel name or pattern
   *
   * Emitted when a channel name or pattern gets its first listener.
   */
  signals[CHANNEL_ADDED] =
    g_signal_new ("channel-added", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);

  /**
   * QipcBroker::channel-removed:
   * @self: the broker
   * @name: the channel name or pattern
   *
   * Emitted when a channel name or pattern loses its last listener.
   */
  signals[CHANNEL_REMOVED] =
    g_signal_new ("channel-removed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
qipc_broker_init (QipcBroker *self)
{
  self->policy = _qipc_policy_new_default (getuid ());
  self->listeners = g_ptr_array_new_with_free_func (listener_free);
  self->peers = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) peer_free);
  self->max_queued_bytes = DEFAULT_MAX_QUEUED_BYTES;
  self->handshake_timeout_ms = DEFAULT_HANDSHAKE_TIMEOUT_MS;
  self->context = g_main_context_ref_thread_default ();
  self->exact = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                       (GDestroyNotify) g_ptr_array_unref);
  self->patterns = g_ptr_array_new ();
  self->listener_counts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->monitors = g_ptr_array_new ();
  self->bridges = g_ptr_array_new_with_free_func (bridge_free);
  self->scratch = g_byte_array_new ();
}

/* ------------------------------------------------------------------ */
/* Public API                                                          */

/**
 * qipc_broker_new:
 *
 * Creates a broker with the default policy (only this process's user may
 * connect). It accepts clients once [method@Broker.listen] succeeds.
 *
 * Returns: (transfer full): a new #QipcBroker
 */
QipcBroker *
qipc_broker_new (void)
{
  return g_object_new (QIPC_TYPE_BROKER, NULL);
}

static void
add_server (QipcBroker *self,
            QipcServer *server,
            char       *lock_path,
            int         lock_fd)
{
  Listener *listener = g_new0 (Listener, 1);

  listener->server = server;
  listener->lock_path = lock_path;
  listener->lock_fd = lock_fd;
  g_signal_connect (server, "new-connection", G_CALLBACK (on_new_connection), self);
  g_signal_connect (server, "accept-error", G_CALLBACK (on_accept_error), self);
  g_ptr_array_add (self->listeners, listener);
}

/* One broker per socket path: whoever holds "<path>.lock" owns the path,
 * so a stale socket file can be replaced without racing another broker
 * that is starting at the same moment. */
static int
lock_path (const char  *path,
           gboolean     others,
           char       **lock_name,
           GError     **error)
{
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *name = g_strconcat (path, ".lock", NULL);
  gboolean created = !g_file_test (dir, G_FILE_TEST_EXISTS);
  int fd;

  if (g_mkdir_with_parents (dir, 0700) < 0 ||
      (created && others && g_chmod (dir, 0711) < 0))
    {
      int saved_errno = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                   "Cannot create the broker's directory %s: %s", dir, g_strerror (saved_errno));
      return -1;
    }
  fd = open (name, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    {
      int saved_errno = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                   "Cannot open the lock file %s: %s", name, g_strerror (saved_errno));
      return -1;
    }
  if (flock (fd, LOCK_EX | LOCK_NB) < 0)
    {
      close (fd);
      g_set_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_ADDRESS_IN_USE,
                   "Another broker serves %s", path);
      return -1;
    }
  *lock_name = g_steal_pointer (&name);
  return fd;
}

static gboolean
listen_local (QipcBroker         *self,
              const QipcAddress  *address,
              GError            **error)
{
  g_autoptr(QipcLocalServer) server = qipc_local_server_new ();
  g_autofree char *name = _qipc_address_local_name (address);
  char *lock_name = NULL;
  int lock_fd = -1;

  if (address->kind == QIPC_ADDRESS_UNIX_PATH)
    {
      lock_fd = lock_path (address->path, _qipc_policy_admits_others (self->policy),
                           &lock_name, error);
      if (lock_fd < 0)
        return FALSE;
    }
  /* The broker takes every connection as it comes; a long system
   * backlog lets a thousand clients start at once. */
  qipc_server_set_max_pending_connections (QIPC_SERVER (server), MAX_BACKLOG);
  qipc_local_server_set_socket_options (server,
                                        _qipc_policy_admits_others (self->policy)
                                        ? QIPC_LOCAL_SERVER_OPTIONS_WORLD_ACCESS
                                        : QIPC_LOCAL_SERVER_OPTIONS_USER_ACCESS);
  if (!qipc_local_server_listen (server, name, error))
    {
      if (lock_fd >= 0)
        close (lock_fd);
      g_free (lock_name);
      return FALSE;
    }
  add_server (self, QIPC_SERVER (g_steal_pointer (&server)), lock_name, lock_fd);
  return TRUE;
}

static gboolean
listen_tcp (QipcBroker         *self,
            const QipcAddress  *address,
            GError            **error)
{
  g_autoptr(QipcTcpServer) server = NULL;

  if (self->tls_certificate == NULL)
    {
      g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_FAILED,
                   "Listening on TCP (%s) needs a TLS certificate: TCP is always TLS",
                   address->host);
      return FALSE;
    }
  server = qipc_tcp_server_new ();
  qipc_tcp_server_set_tls_certificate (server, self->tls_certificate);
  qipc_server_set_max_pending_connections (QIPC_SERVER (server), MAX_BACKLOG);

  if (!qipc_tcp_server_listen (server, address->host, address->port, error))
    return FALSE;
  add_server (self, QIPC_SERVER (g_steal_pointer (&server)), NULL, -1);
  return TRUE;
}

/**
 * qipc_broker_listen:
 * @self: a #QipcBroker
 * @address: where to listen: `unix:path=…`, `unix:abstract=…` or
 *   `tcp:host=…,port=…`
 * @error: return location for a #GError
 *
 * Starts accepting clients at @address; a broker may listen at several.
 *
 * A socket path's directory is created when missing, with mode 0700, or
 * 0711 when the policy admits other users (who then reach the socket,
 * whose credentials the broker checks). Only
 * one broker serves a path at a time: it holds a lock on `<path>.lock`,
 * so a stale socket left by a crashed broker is replaced safely, and a
 * second broker fails with %QIPC_SOCKET_ERROR_ADDRESS_IN_USE while the
 * first runs (which lets several processes start a broker on demand at
 * the same moment). Set the policy before listening: it decides who may
 * reach the socket.
 *
 * TCP is always TLS: listening on a `tcp:` address needs
 * [property@Broker:tls-certificate], and fails with %QIPC_BUS_ERROR_FAILED
 * without one. TCP clients have no credentials: the default policy
 * refuses them, and a policy rule with `"anonymous": true` admits them.
 *
 * Returns: %TRUE when listening
 */
gboolean
qipc_broker_listen (QipcBroker  *self,
                    const char  *address,
                    GError     **error)
{
  QipcAddress parsed;
  gboolean ok;

  g_return_val_if_fail (QIPC_IS_BROKER (self), FALSE);
  g_return_val_if_fail (address != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!_qipc_address_parse (address, &parsed, error))
    return FALSE;
  if (parsed.kind == QIPC_ADDRESS_TCP)
    ok = listen_tcp (self, &parsed, error);
  else
    ok = listen_local (self, &parsed, error);
  _qipc_address_clear (&parsed);
  if (ok)
    g_debug ("Listening at %s", address);
  return ok;
}

/**
 * qipc_broker_listen_socket:
 * @self: a #QipcBroker
 * @socket: a bound, listening Unix stream socket
 * @error: return location for a #GError
 *
 * Accepts clients on a socket made by someone else, such as systemd's
 * socket activation.
 *
 * Returns: %TRUE on success
 */
gboolean
qipc_broker_listen_socket (QipcBroker  *self,
                           GSocket     *socket,
                           GError     **error)
{
  g_return_val_if_fail (QIPC_IS_BROKER (self), FALSE);
  g_return_val_if_fail (G_IS_SOCKET (socket), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (g_socket_get_family (socket) != G_SOCKET_FAMILY_UNIX)
    {
      g_set_error_literal (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_INVALID_ADDRESS,
                           "Only Unix domain sockets can be handed to the broker");
      return FALSE;
    }
  {
    QipcLocalServer *server = qipc_local_server_new ();

    _qipc_server_add_listener (QIPC_SERVER (server), socket);
    add_server (self, QIPC_SERVER (server), NULL, -1);
  }
  return TRUE;
}

/* Takes @policy, which is NULL when it could not be read. */
static gboolean
set_policy (QipcBroker  *self,
            QipcPolicy  *policy,
            GError     **error)
{
  if (policy == NULL)
    return FALSE;
  if (g_hash_table_size (self->peers) > 0)
    {
      _qipc_policy_free (policy);
      g_set_error_literal (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_FAILED,
                           "The policy cannot change while clients are connected");
      return FALSE;
    }
  _qipc_policy_free (self->policy);
  self->policy = policy;
  return TRUE;
}

/**
 * qipc_broker_set_policy_from_data:
 * @self: a #QipcBroker
 * @data: the policy, as JSON
 * @length: the length of @data, or -1 if it is NUL-terminated
 * @error: return location for a #GError
 *
 * Replaces the default policy (only this user may connect) with one that
 * also admits other users, groups or TCP clients, for sending or
 * receiving on channel patterns. The format is in the
 * [security guide](security.html).
 * Set it before [method@Broker.listen].
 *
 * Returns: %TRUE if the policy was valid and is now in force
 */
gboolean
qipc_broker_set_policy_from_data (QipcBroker  *self,
                                  const char  *data,
                                  gssize       length,
                                  GError     **error)
{
  g_return_val_if_fail (QIPC_IS_BROKER (self), FALSE);
  g_return_val_if_fail (data != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return set_policy (self, _qipc_policy_new_from_data (getuid (), data, length, error), error);
}

/**
 * qipc_broker_set_policy_from_file:
 * @self: a #QipcBroker
 * @path: (type filename): a JSON policy file
 * @error: return location for a #GError
 *
 * Reads the policy from @path, as [method@Broker.set_policy_from_data].
 * Error messages name the file, and the line and column or the rule and
 * key that are wrong; a file that cannot be read gives a %G_FILE_ERROR.
 *
 * Returns: %TRUE if the policy was valid and is now in force
 */
gboolean
qipc_broker_set_policy_from_file (QipcBroker  *self,
                                  const char  *path,
                                  GError     **error)
{
  g_return_val_if_fail (QIPC_IS_BROKER (self), FALSE);
  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  /* Read by the policy itself, so that its messages name the file. */
  return set_policy (self, _qipc_policy_new_from_file (getuid (), path, error), error);
}

/**
 * qipc_broker_get_n_clients:
 * @self: a #QipcBroker
 *
 * Gets how many clients are connected.
 *
 * Returns: the number of connected clients
 */
guint
qipc_broker_get_n_clients (QipcBroker *self)
{
  g_return_val_if_fail (QIPC_IS_BROKER (self), 0);

  return g_hash_table_size (self->peers);
}

/**
 * qipc_broker_get_max_queued_bytes:
 * @self: a #QipcBroker
 *
 * Gets [property@Broker:max-queued-bytes].
 *
 * Returns: the bytes queued for one receiver before messages are dropped
 */
gsize
qipc_broker_get_max_queued_bytes (QipcBroker *self)
{
  g_return_val_if_fail (QIPC_IS_BROKER (self), 0);

  return self->max_queued_bytes;
}

/**
 * qipc_broker_set_max_queued_bytes:
 * @self: a #QipcBroker
 * @max_queued_bytes: bytes, at least 4096
 *
 * Sets [property@Broker:max-queued-bytes].
 */
void
qipc_broker_set_max_queued_bytes (QipcBroker *self,
                                  gsize       max_queued_bytes)
{
  g_return_if_fail (QIPC_IS_BROKER (self));
  g_return_if_fail (max_queued_bytes >= 4096);

  if (self->max_queued_bytes == max_queued_bytes)
    return;
  self->max_queued_bytes = max_queued_bytes;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MAX_QUEUED_BYTES]);
}

/**
 * qipc_broker_get_handshake_timeout:
 * @self: a #QipcBroker
 *
 * Gets [property@Broker:handshake-timeout].
 *
 * Returns: the milliseconds a new client has to send its HELLO
 */
guint
qipc_broker_get_handshake_timeout (QipcBroker *self)
{
  g_return_val_if_fail (QIPC_IS_BROKER (self), 0);

  return self->handshake_timeout_ms;
}

/**
 * qipc_broker_set_handshake_timeout:
 * @self: a #QipcBroker
 * @timeout_ms: milliseconds, at least 1
 *
 * Sets [property@Broker:handshake-timeout], for clients that connect
 * from now on.
 */
void
qipc_broker_set_handshake_timeout (QipcBroker *self,
                                   guint       timeout_ms)
{
  g_return_if_fail (QIPC_IS_BROKER (self));
  g_return_if_fail (timeout_ms >= 1);

  if (self->handshake_timeout_ms == timeout_ms)
    return;
  self->handshake_timeout_ms = timeout_ms;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_HANDSHAKE_TIMEOUT]);
}

/**
 * qipc_broker_get_tls_certificate: (get-property tls-certificate)
 * @self: a #QipcBroker
 *
 * Gets the certificate the broker presents to clients on TCP.
 *
 * Returns: (transfer none) (nullable): the certificate, or %NULL
 */
GTlsCertificate *
qipc_broker_get_tls_certificate (QipcBroker *self)
{
  g_return_val_if_fail (QIPC_IS_BROKER (self), NULL);

  return self->tls_certificate;
}

/**
 * qipc_broker_set_tls_certificate: (set-property tls-certificate)
 * @self: a #QipcBroker
 * @certificate: (nullable): a certificate with its private key, or %NULL
 *
 * Sets [property@Broker:tls-certificate]. Set it before listening on
 * TCP; addresses the broker listens at already keep the certificate they
 * started with.
 */
void
qipc_broker_set_tls_certificate (QipcBroker      *self,
                                 GTlsCertificate *certificate)
{
  g_return_if_fail (QIPC_IS_BROKER (self));
  g_return_if_fail (certificate == NULL || G_IS_TLS_CERTIFICATE (certificate));

  if (g_set_object (&self->tls_certificate, certificate))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TLS_CERTIFICATE]);
}

/**
 * qipc_broker_close:
 * @self: a #QipcBroker
 *
 * Stops listening (removing socket files and releasing their locks; the
 * empty `<path>.lock` files stay) and disconnects every
 * client. The clients' buses will reconnect to the next broker at the
 * same address.
 */
void
qipc_broker_close (QipcBroker *self)
{
  GHashTableIter iter;
  Peer *peer;

  g_return_if_fail (QIPC_IS_BROKER (self));

  g_ptr_array_set_size (self->listeners, 0);
  g_ptr_array_set_size (self->bridges, 0);
  if (self->trim_timer != NULL)
    {
      g_source_destroy (self->trim_timer);
      g_clear_pointer (&self->trim_timer, g_source_unref);
    }
  g_hash_table_iter_init (&iter, self->peers);
  while (g_hash_table_iter_next (&iter, (gpointer *) &peer, NULL))
    {
      peer_detach (peer);
      peer->broker = NULL;
      _qipc_socket_set_ready_func (peer->socket, NULL, NULL);
      g_signal_handlers_disconnect_by_data (peer->socket, peer);
      qipc_socket_abort (peer->socket);
    }
  if (g_hash_table_size (self->peers) > 0)
    {
      g_hash_table_remove_all (self->peers);
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_CLIENTS]);
    }
}

/**
 * qipc_broker_add_bridge:
 * @self: a #QipcBroker
 * @address: the MQTT broker, an `mqtt://` or `mqtts://` address (see
 *   [class@Bus])
 * @patterns: (array zero-terminated=1): the channel names and patterns to
 *   forward
 * @error: return location for a #GError
 *
 * Forwards the channels matching @patterns both ways between this broker
 * and the MQTT broker at @address: a message a client of this broker
 * sends goes to MQTT, and a message another MQTT client (another
 * machine's bridge, say) publishes is routed to this broker's clients.
 * Local applications keep the native transport; only the bridged
 * channels cross machines.
 *
 * A message crosses each bridge once: the bridge's MQTT subscriptions
 * are no-local (MQTT 5), and the broker never routes a message a bridge
 * injected back to that bridge. Overlapping patterns forward a message
 * once. [method@Bus.list_channels] and [func@Channel.is_registered] on
 * this broker's clients still see only this broker's listeners.
 *
 * Connects at once, blocking the calling thread as
 * [ctor@Bus.new_for_address] does; afterwards the bridge reconnects by
 * itself, queueing what it forwards meanwhile (up to the bus's
 * [property@Bus:max-queued]; beyond that messages are dropped and
 * logged).
 *
 * Returns: %TRUE if the bridge runs; %FALSE with @error set
 *   (%QIPC_BUS_ERROR_INVALID_ADDRESS for an address that is not MQTT,
 *   %QIPC_BUS_ERROR_INVALID_NAME for a bad pattern,
 *   %QIPC_BUS_ERROR_BROKER_NOT_FOUND when no MQTT broker answers)
 */
gboolean
qipc_broker_add_bridge (QipcBroker          *self,
                        const char          *address,
                        const char * const  *patterns,
                        GError             **error)
{
  g_autofree char *bus_address = NULL;
  Bridge *bridge;

  g_return_val_if_fail (QIPC_IS_BROKER (self), FALSE);
  g_return_val_if_fail (address != NULL, FALSE);
  g_return_val_if_fail (patterns != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!g_str_has_prefix (address, "mqtt://") && !g_str_has_prefix (address, "mqtts://"))
    {
      g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_INVALID_ADDRESS,
                   "A bridge needs an mqtt:// or mqtts:// address, not \"%s\"", address);
      return FALSE;
    }
  if (patterns[0] == NULL)
    {
      g_set_error_literal (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_INVALID_NAME,
                           "A bridge needs at least one channel pattern");
      return FALSE;
    }
  for (guint i = 0; patterns[i] != NULL; i++)
    if (!_qipc_channel_name_validate (patterns[i], TRUE, error))
      return FALSE;

  /* Its own messages do not come back to it from MQTT. */
  bus_address = g_strconcat (address, strchr (address, '?') != NULL ? "&" : "?",
                             "no-local=true", NULL);
  bridge = g_new0 (Bridge, 1);
  bridge->broker = self;
  bridge->address = g_strdup (address);
  bridge->patterns = g_strdupv ((char **) patterns);
  bridge->channels = g_ptr_array_new_with_free_func (g_object_unref);
  bridge->bus = qipc_bus_new_for_address (bus_address, error);
  if (bridge->bus == NULL)
    {
      bridge_free (bridge);
      return FALSE;
    }
  for (guint i = 0; patterns[i] != NULL; i++)
    {
      QipcChannel *channel = qipc_channel_new_for_bus (bridge->bus, patterns[i], error);

      if (channel == NULL)
        {
          bridge_free (bridge);
          return FALSE;
        }
      g_object_set_data (G_OBJECT (channel), "qipc-bridge-index", GINT_TO_POINTER (i));
      g_signal_connect (channel, "received", G_CALLBACK (on_bridge_received), bridge);
      g_ptr_array_add (bridge->channels, channel);
    }
  /* Subscribed once this returns. */
  if (!qipc_channel_flush_for_bus (bridge->bus, error))
    {
      bridge_free (bridge);
      return FALSE;
    }
  g_ptr_array_add (self->bridges, bridge);
  return TRUE;
}
