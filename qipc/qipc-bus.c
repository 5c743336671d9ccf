/* qipc-bus.c: a connection to a channel transport
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/**
 * QipcBus:
 *
 * A connection to a channel broker, which [class@Channel] uses to send
 * and receive messages. Most programs use the default bus
 * ([func@Bus.get_default]) through [ctor@Channel.new] and the static
 * calls of [class@Channel], and never touch a bus themselves.
 *
 * ```c
 * g_autoptr(GError) error = NULL;
 * g_autoptr(QipcBus) bus = qipc_bus_new_for_address ("unix:path=/run/app/bus", &error);
 * g_autoptr(QipcChannel) events = NULL;
 *
 * if (bus == NULL)
 *   g_error ("%s", error->message);   // QIPC_BUS_ERROR_BROKER_NOT_FOUND, …
 * g_signal_connect (bus, "disconnected", G_CALLBACK (on_broker_lost), NULL);
 * events = qipc_channel_new_for_bus (bus, "app/events", &error);
 * qipc_channel_send_for_bus (bus, "app/control", "reload", NULL, &error);
 * ```
 *
 * A bus lives on the thread-default [struct@GLib.MainContext] of the
 * thread that created it: messages arrive, and signals are emitted, when
 * that context runs. Sending never blocks: messages are queued and leave
 * once per iteration of the context.
 *
 * Addresses:
 *
 * - `unix:path=/run/user/1000/qipc/bus`: a Unix socket path;
 * - `unix:abstract=name`: a Linux abstract socket;
 * - `tcp:host=broker.example,port=7777,ca=/etc/qipc/ca.pem`: TCP, always
 *   with TLS. The broker's certificate must name the host and come from
 *   an authority in the `ca=` file (PEM), or from the system's when
 *   `ca=` is left out. The broker's policy must admit anonymous clients;
 * - `dbus:session`, `dbus:system`, `dbus:address=unix:path=/tmp/bus`: a
 *   D-Bus daemon instead of a qipc broker, with messages as D-Bus
 *   signals (see [Channels over D-Bus](dbus-transport.html)). Setting
 *   `QIPC_BUS_ADDRESS=dbus:session` puts the default bus there;
 * - `mqtt://host:1883?client-id=…&prefix=qipc&keepalive=30&format=json`
 *   and `mqtts://host:8883?ca=…`: an MQTT 5 broker (mosquitto, EMQX,
 *   HiveMQ, VerneMQ…), channel `a/b` being topic `<prefix>/a/b`; see
 *   [Running qipc across machines](mqtt.html) for the options and for
 *   what MQTT keeps of the semantics below.
 *
 * If the broker (or D-Bus daemon) goes away, the bus emits [signal@Bus::disconnected] and
 * reconnects by itself, with a backoff from 20 ms to 2 s; once connected
 * again it registers its channels again, sends what was sent meanwhile
 * (up to [property@Bus:max-queued] bytes; beyond that sending fails with
 * %QIPC_BUS_ERROR_QUEUE_FULL) and emits [signal@Bus::connected].
 * Messages the dead broker had taken but not yet delivered are lost.
 */

#include "qipc-bus.h"
#include "qipc-address-private.h"
#include "qipc-bus-private.h"
#include "qipc-frame-private.h"
#include "qipc-local-socket-private.h"
#include "qipc-marshal.h"
#include "qipc-socket-private.h"
#include "qipc-tcp-socket-private.h"
#include "qipc-transport-private.h"
#include "qipc-version.h"

#include <gio/gunixsocketaddress.h>
#include <string.h>
#include <unistd.h>

#define CONNECT_TIMEOUT_S 5
#define MIN_RETRY_MS 20
#define MAX_RETRY_MS 2000
/* How long get_default waits for a broker it started. */
#define AUTOSTART_WAIT_MS 5000
#define DEFAULT_MAX_QUEUED (16 * 1024 * 1024)
#define MAX_CHANNELS 1024
/* How long a blocking call (flush, is_registered) waits for a lost
 * broker to come back. */
#define SYNC_CALL_MAX_DISCONNECTED_S 5

/* A frame waiting for the connection, with its payload memfd if any. */
typedef struct
{
  GBytes *frame;
  int fd;
} Outgoing;

typedef struct
{
  guint32 serial;
  QipcFrameType reply_type;
  GBytes *frame;
  GTask *task;
  gulong cancelled_id;
} Call;

typedef struct
{
  QipcChannel *channel;       /* not referenced */
  char *name;
} Registration;

/* An empty value of a container type, and that type's string. */
typedef struct
{
  GVariant *value;
  char *type_string;
} TypeKeeper;

struct _QipcBus
{
  GObject parent_instance;

  char *address_string;
  QipcAddress address;
  gboolean autostart;
  GMainContext *context;

  QipcTransport *transport;   /* NULL: the native protocol, here */
  QipcSocket *socket;
  gboolean connected;
  gboolean closed;
  guint64 client_id;
  guint32 next_serial;
  guint retry_source;
  guint retry_ms;
  gint64 last_spawn;           /* when this bus last started a broker */
  GError *refusal;            /* why the broker refused us, for good */

  GHashTable *registrations;  /* id -> Registration */
  guint32 next_registration;
  GHashTable *exact;          /* name -> GPtrArray of QipcChannel */
  GPtrArray *pattern_regs;    /* Registration with wildcards */

  GQueue outbox;              /* Outgoing */
  gsize outbox_bytes;
  gsize max_queued;
  GQueue calls;               /* Call, in serial order */
  GError *send_error;         /* refused sends, reported by the next flush */

  GQueue fds;                 /* received payload fds, in order */
  gboolean monitoring;
  GByteArray *scratch;        /* the frame being built */
  QipcLastLookup last_exact;  /* in exact */
  QipcValidName last_valid;   /* of the DELIVER frames */
  QipcValidName last_sent;    /* of the sends */
  GTlsDatabase *tls_database; /* a tcp: address's ca= authorities */
  TypeKeeper sent_type;       /* see keep_type() */
  TypeKeeper received_type;
  guint64 messages_lost;
};

enum {
  CONNECTED,
  DISCONNECTED,
  MESSAGES_LOST,
  MONITORED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

enum {
  PROP_0,
  PROP_ADDRESS,
  PROP_MAX_QUEUED,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/**
 * qipc_bus_error_quark:
 *
 * The error domain of [class@Bus], [class@Channel] and [class@Broker].
 *
 * Returns: the quark of %QIPC_BUS_ERROR
 */
G_DEFINE_QUARK (qipc-bus-error-quark, qipc_bus_error)

G_DEFINE_FINAL_TYPE (QipcBus, qipc_bus, G_TYPE_OBJECT)

static void lose_connection (QipcBus *self, const GError *error);
static void write_outgoing (QipcBus *self, GBytes *frame, int fd);

/* Serial 0 is reserved (an ERROR with serial 0 ends the connection), so
 * the counter skips it when it wraps. */
static guint32
next_serial (QipcBus *self)
{
  if (++self->next_serial == 0)
    ++self->next_serial;
  return self->next_serial;
}

static void
type_keeper_clear (TypeKeeper *keeper)
{
  g_clear_pointer (&keeper->value, g_variant_unref);
  g_clear_pointer (&keeper->type_string, g_free);
}

static void
outgoing_free (gpointer data)
{
  Outgoing *outgoing = data;

  g_bytes_unref (outgoing->frame);
  if (outgoing->fd >= 0)
    close (outgoing->fd);
  g_free (outgoing);
}

static void
call_free (Call *call)
{
  g_bytes_unref (call->frame);
  g_clear_object (&call->task);
  g_free (call);
}

static void
registration_free (gpointer data)
{
  Registration *reg = data;

  g_free (reg->name);
  g_free (reg);
}

/* ------------------------------------------------------------------ */
/* Connecting                                                          */

/* A full backlog (EAGAIN) means a live broker that has not accepted
 * yet: try again for a while, as a blocking connect() would wait. */
static GSocketConnection *
connect_local (GSocketClient   *client,
               GSocketAddress  *address,
               GError         **error)
{
  gint64 deadline = g_get_monotonic_time () + CONNECT_TIMEOUT_S * G_USEC_PER_SEC;

  while (TRUE)
    {
      g_autoptr(GError) local_error = NULL;
      GSocketConnection *connection =
        g_socket_client_connect (client, G_SOCKET_CONNECTABLE (address), NULL, &local_error);

      if (connection != NULL)
        return connection;
      if (!g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK) ||
          g_get_monotonic_time () > deadline)
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return NULL;
        }
      g_usleep (1000);
    }
}

static GSocketConnection *
open_connection (QipcBus  *self,
                 GError  **error)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketAddress) address = NULL;
  g_autofree char *name = NULL;

  g_socket_client_set_enable_proxy (client, FALSE);
  g_socket_client_set_timeout (client, CONNECT_TIMEOUT_S);
  if (self->address.kind == QIPC_ADDRESS_TCP)
    return g_socket_client_connect_to_host (client, self->address.host,
                                            self->address.port, NULL, error);

  name = _qipc_address_local_name (&self->address);
  address = _qipc_local_address_new (name, NULL, error);
  if (address == NULL)
    return NULL;
  return connect_local (client, address, error);
}

/* The HELLO goes out first; the broker's WELCOME (or refusal) is read
 * with the other frames. Not waiting for it here is what lets a process
 * use the broker it hosts in its own main loop. */
static void
send_hello (QipcBus *self)
{
  g_autofree char *name = g_strdup_printf ("%s[%d]", g_get_prgname () ? g_get_prgname () : "qipc",
                                           (int) getpid ());
  g_autoptr(GBytes) hello = NULL;

  if (!g_utf8_validate (name, -1, NULL))
    {
      g_free (name);
      name = g_strdup ("qipc");
    }
  if (strlen (name) > QIPC_FRAME_MAX_PEER_NAME)
    *g_utf8_find_prev_char (name, name + QIPC_FRAME_MAX_PEER_NAME + 1) = '\0';
  hello = _qipc_frame_build (QIPC_FRAME_HELLO, 0, next_serial (self),
                             g_variant_new ("(yys)", QIPC_PROTOCOL_VERSION,
                                            QIPC_PROTOCOL_VERSION, name));
  qipc_socket_write (self->socket, hello, NULL);
}

/* A TLS handshake failure is final, as a refusal by the broker is: the
 * next attempt would meet the same certificate. */
static void
on_socket_error (QipcSocket   *socket,
                 const GError *error,
                 gpointer      user_data)
{
  QipcBus *self = user_data;

  if (!g_error_matches (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_TLS_HANDSHAKE_FAILED) ||
      self->refusal != NULL)
    return;
  g_message ("The TLS handshake with the broker at %s failed: %s",
             self->address_string, error->message);
  self->refusal = g_error_new (QIPC_BUS_ERROR, QIPC_BUS_ERROR_TLS_HANDSHAKE_FAILED,
                               "The TLS handshake with the channel broker at %s failed: %s",
                               self->address_string, error->message);
}

/* TCP is always TLS. The handshake runs on the bus's main context, with
 * the HELLO queued behind it, so that a process can reach over TCP a
 * broker it hosts in its own main loop; the broker's certificate must
 * name the address's host and come from its ca= authorities, or else
 * from the system's. */
static QipcSocket *
wrap_tcp_connection (QipcBus            *self,
                     GSocketConnection  *connection,
                     GError            **error)
{
  g_autoptr(QipcTcpSocket) tcp = qipc_tcp_socket_new ();
  g_autoptr(GSocketConnectable) identity = g_network_address_new (self->address.host,
                                                                  self->address.port);

  _qipc_tcp_socket_take_connection (tcp, connection, NULL);
  qipc_tcp_socket_set_no_delay (tcp, TRUE);
  _qipc_tcp_socket_set_tls_peer (tcp, identity, self->tls_database);
  g_signal_connect (tcp, "error-occurred", G_CALLBACK (on_socket_error), self);
  if (!qipc_tcp_socket_start_client_encryption (tcp, error))
    {
      g_signal_handlers_disconnect_by_data (tcp, self);
      return NULL;
    }
  return QIPC_SOCKET (g_steal_pointer (&tcp));
}

static QipcSocket *
wrap_connection (QipcBus            *self,
                 GSocketConnection  *connection,
                 GError            **error)
{
  g_autofree char *name = NULL;

  if (self->address.kind == QIPC_ADDRESS_TCP)
    return wrap_tcp_connection (self, connection, error);
  name = _qipc_address_local_name (&self->address);
  return QIPC_SOCKET (_qipc_local_socket_new_for_connection (connection, name));
}

static void on_ready_read (QipcSocket *socket, gpointer user_data);
static void on_disconnected (QipcSocket *socket, gpointer user_data);

static gboolean
connect_once (QipcBus  *self,
              GError  **error)
{
  g_autoptr(GSocketConnection) connection = open_connection (self, error);

  if (connection == NULL)
    return FALSE;
  self->socket = wrap_connection (self, connection, error);
  if (self->socket == NULL)
    return FALSE;
  _qipc_socket_set_ready_func (self->socket, on_ready_read, self);
  g_signal_connect (self->socket, "disconnected", G_CALLBACK (on_disconnected), self);
  send_hello (self);
  return TRUE;
}

static const char *
broker_program (void)
{
  const char *env = g_getenv ("QIPC_BROKER");

  return env != NULL && *env != '\0' ? env : QIPC_BROKER_PATH;
}

/* Starts a broker for the default address. Several processes may do
 * this at the same moment: the brokers' lock on the socket path lets
 * one of them serve and the others exit. */
static void
spawn_broker (QipcBus *self)
{
  g_autoptr(GError) error = NULL;
  const char *argv[] = { broker_program (), "--autostart", "--address",
                         self->address_string, NULL };

  self->last_spawn = g_get_monotonic_time ();
  /* Without DO_NOT_REAP_CHILD, GLib forks twice: the broker does not
   * stay our child (nor a zombie). Nor does it keep our output open:
   * whoever reads it (a terminal, a test runner) would wait for the
   * broker to end. */
  if (!g_spawn_async (NULL, (char **) argv, NULL,
                      G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                      NULL, NULL, NULL, &error))
    g_message ("Cannot start the channel broker %s: %s", argv[0], error->message);
}

static gboolean
broker_is_absent (const GError *error)
{
  return g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND) ||
         g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED);
}

static gboolean
connect_with_autostart (QipcBus  *self,
                        GError  **error)
{
  g_autoptr(GError) local_error = NULL;
  gint64 deadline;
  guint delay_ms = 5;

  if (connect_once (self, &local_error))
    return TRUE;
  if (broker_is_absent (local_error) && !self->autostart)
    {
      g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_BROKER_NOT_FOUND,
                   "No channel broker answers at %s: %s", self->address_string,
                   local_error->message);
      return FALSE;
    }
  if (!self->autostart)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }

  spawn_broker (self);
  deadline = g_get_monotonic_time () + AUTOSTART_WAIT_MS * 1000;
  while (g_get_monotonic_time () < deadline)
    {
      g_clear_error (&local_error);
      g_usleep (delay_ms * 1000);
      delay_ms = MIN (delay_ms * 2, 100);
      if (connect_once (self, &local_error))
        return TRUE;
      if (!broker_is_absent (local_error))
        break;
    }
  g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_BROKER_NOT_FOUND,
               "No channel broker answers at %s, and starting %s did not help: %s",
               self->address_string, broker_program (), local_error->message);
  return FALSE;
}

/* ------------------------------------------------------------------ */
/* Sending                                                             */

static gboolean
is_local (QipcBus *self)
{
  return self->address.kind != QIPC_ADDRESS_TCP;
}

static void
write_outgoing (QipcBus *self,
                GBytes  *frame,
                int      fd)
{
  g_autoptr(GError) error = NULL;

  if (fd < 0)
    {
      qipc_socket_write (self->socket, frame, NULL);
      return;
    }
  {
    g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();

    if (g_unix_fd_list_append (fds, fd, &error) < 0 ||
        !qipc_local_socket_write_with_fds (QIPC_LOCAL_SOCKET (self->socket), frame, fds, &error))
      g_message ("Cannot pass a payload to the broker: %s", error->message);
  }
}

/* While disconnected, frames wait in the outbox, up to max_queued. */
static gboolean
enqueue (QipcBus  *self,
         GBytes   *frame,
         int       fd,
         GError  **error)
{
  Outgoing *outgoing;

  if (self->outbox_bytes + g_bytes_get_size (frame) > self->max_queued)
    {
      g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_QUEUE_FULL,
                   "The broker at %s has been unreachable while %" G_GSIZE_FORMAT
                   " bytes of messages were queued, the limit", self->address_string,
                   self->outbox_bytes);
      return FALSE;
    }
  outgoing = g_new (Outgoing, 1);
  outgoing->frame = g_bytes_ref (frame);
  outgoing->fd = fd >= 0 ? dup (fd) : -1;
  self->outbox_bytes += g_bytes_get_size (frame);
  g_queue_push_tail (&self->outbox, outgoing);
  return TRUE;
}

static gboolean
check_not_closed (QipcBus  *self,
                  GError  **error)
{
  if (!self->closed)
    return TRUE;
  if (self->refusal != NULL)
    {
      g_propagate_error (error, g_error_copy (self->refusal));
      return FALSE;
    }
  g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_DISCONNECTED,
               "The bus to %s is closed", self->address_string);
  return FALSE;
}

/* A connected socket whose queue is over the limit first pushes what the
 * kernel takes; a broker that still takes nothing gives QUEUE_FULL. */
static gboolean
check_socket_room (QipcBus  *self,
                   GError  **error)
{
  if (qipc_socket_bytes_to_write (self->socket) <= self->max_queued)
    return TRUE;
  qipc_socket_flush (self->socket);
  if (qipc_socket_bytes_to_write (self->socket) <= self->max_queued)
    return TRUE;
  g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_QUEUE_FULL,
               "%" G_GSIZE_FORMAT " bytes are waiting for the broker at %s, the limit",
               qipc_socket_bytes_to_write (self->socket), self->address_string);
  return FALSE;
}

static gboolean
send_frame (QipcBus  *self,
            GBytes   *frame,
            int       fd,
            GError  **error)
{
  if (!check_not_closed (self, error))
    return FALSE;
  if (!self->connected)
    return enqueue (self, frame, fd, error);
  if (!check_socket_room (self, error))
    return FALSE;
  write_outgoing (self, frame, fd);
  return TRUE;
}

/* Data of QIPC_FRAME_MEMFD_THRESHOLD bytes and more, on a Unix socket:
 * the serialized "mv" goes in a sealed memfd passed with the frame. */
static gboolean
send_memfd (QipcBus     *self,
            const char  *channel,
            const char  *message,
            GVariant    *data,
            GError     **error)
{
  g_autoptr(GVariant) payload = g_variant_ref_sink (g_variant_new_maybe (G_VARIANT_TYPE_VARIANT,
                                                                         g_variant_new_variant (data)));
  g_autoptr(GBytes) frame = NULL;
  gboolean ok;
  int fd = _qipc_payload_memfd_new (payload, error);

  if (fd < 0)
    return FALSE;
  frame = _qipc_frame_build (QIPC_FRAME_SEND, QIPC_FRAME_FLAG_MEMFD, next_serial (self),
                             g_variant_new ("(sst)", channel, message,
                                            (guint64) g_variant_get_size (payload)));
  ok = send_frame (self, frame, fd, error);
  close (fd);
  return ok;
}

/* GLib keeps the description of a container type (say "ay") only while
 * some value of that type lives, and builds it again under a global lock
 * for the next one: a stream of messages of one type paid that for each.
 * An empty value of the type last sent (and received) keeps it alive.
 * @type_string is valid; types of one character are always described. */
static void
keep_type (TypeKeeper *keeper,
           const char *type_string)
{
  if (type_string[1] == '\0' ||
      (keeper->type_string != NULL && strcmp (keeper->type_string, type_string) == 0))
    return;
  type_keeper_clear (keeper);
  keeper->type_string = g_strdup (type_string);
  keeper->value = g_variant_ref_sink (g_variant_new_from_data (G_VARIANT_TYPE (type_string),
                                                               NULL, 0, FALSE, NULL, NULL));
}

/* Most messages: the frame is written straight into the socket's
 * queue, with no GVariant container built. */
static gboolean
send_plain (QipcBus     *self,
            const char  *channel,
            const char  *message,
            GVariant    *data,
            GError     **error)
{
  g_autoptr(GBytes) frame = NULL;

  g_byte_array_set_size (self->scratch, 0);
  _qipc_frame_append_send (self->scratch, QIPC_FRAME_SEND, next_serial (self),
                           channel, message, data);
  if (self->connected)
    {
      if (!check_socket_room (self, error))
        return FALSE;
      qipc_socket_write_data (self->socket, self->scratch->data, self->scratch->len, NULL);
      return TRUE;
    }
  frame = g_bytes_new (self->scratch->data, self->scratch->len);
  return enqueue (self, frame, -1, error);
}

gboolean
_qipc_bus_send (QipcBus     *self,
                const char  *channel,
                const char  *message,
                GVariant    *data,
                GError     **error)
{
  gsize size = data != NULL ? g_variant_get_size (data) : 0;
  const char *type_string = data != NULL ? g_variant_get_type_string (data) : NULL;

  if (!_qipc_channel_name_validate_cached (channel, &self->last_sent, error) ||
      !_qipc_message_name_validate (message, error) ||
      (data != NULL && !_qipc_data_check_depth (data, type_string, error)) ||
      !check_not_closed (self, error))
    return FALSE;
  if (self->transport != NULL)
    return QIPC_TRANSPORT_GET_CLASS (self->transport)->send (self->transport, channel, message,
                                                             data, error);
  if (data != NULL)
    keep_type (&self->sent_type, type_string);
  if (size >= QIPC_FRAME_MEMFD_THRESHOLD)
    {
      if (is_local (self))
        return _qipc_data_check_memfd_depth (data, error) &&
               send_memfd (self, channel, message, data, error);
      /* TCP carries no descriptors: large data goes inline, up to the
       * frame limit. */
      if (size + 2 * QIPC_FRAME_MAX_NAME + 64 > QIPC_FRAME_MAX_BODY)
        {
          g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_LIMIT_EXCEEDED,
                       "A message of %" G_GSIZE_FORMAT " bytes is too large for TCP; "
                       "the limit is 1 MiB", size);
          return FALSE;
        }
    }
  return send_plain (self, channel, message, data, error);
}

/* ------------------------------------------------------------------ */
/* Calls                                                               */

static void
call_complete (QipcBus  *self,
               Call     *call,
               GVariant *reply,
               GError   *error)
{
  GCancellable *cancellable = g_task_get_cancellable (call->task);

  g_queue_remove (&self->calls, call);
  if (call->cancelled_id != 0)
    g_signal_handler_disconnect (cancellable, call->cancelled_id);
  if (error != NULL)
    g_task_return_error (call->task, error);
  else
    g_task_return_pointer (call->task, g_variant_ref (reply), (GDestroyNotify) g_variant_unref);
  call_free (call);
}

static Call *
find_call (QipcBus *self,
           guint32  serial)
{
  for (GList *l = self->calls.head; l != NULL; l = l->next)
    {
      Call *call = l->data;

      if (call->serial == serial)
        return call;
    }
  return NULL;
}

static void
on_call_cancelled (GCancellable *cancellable,
                   gpointer      user_data)
{
  GTask *task = user_data;
  QipcBus *self = g_task_get_source_object (task);

  for (GList *l = self->calls.head; l != NULL; l = l->next)
    {
      Call *call = l->data;

      if (call->task == task)
        {
          call_complete (self, call, NULL,
                         g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                              "The operation was cancelled"));
          return;
        }
    }
}

/* A call on another transport: the caller's task, answered by the
 * transport or, at once, by cancellation (whichever comes first). */
typedef struct
{
  GTask *task;
  gulong cancelled_id;
} TransportCall;

static void
transport_call_answer (TransportCall *tc,
                       GVariant      *reply,
                       GError        *error)
{
  g_autoptr(GTask) task = g_steal_pointer (&tc->task);

  if (task == NULL)
    {
      g_clear_pointer (&reply, g_variant_unref);
      g_clear_error (&error);
      return;
    }
  if (tc->cancelled_id != 0)
    g_signal_handler_disconnect (g_task_get_cancellable (task), tc->cancelled_id);
  tc->cancelled_id = 0;
  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, reply, (GDestroyNotify) g_variant_unref);
}

static void
on_transport_call_done (GObject      *source,
                        GAsyncResult *result,
                        gpointer      user_data)
{
  TransportCall *tc = user_data;
  GError *error = NULL;
  GVariant *reply;

  reply = QIPC_TRANSPORT_GET_CLASS (source)->call_finish (QIPC_TRANSPORT (source), result, &error);
  transport_call_answer (tc, reply, error);
  g_free (tc);
}

static void
on_transport_call_cancelled (GCancellable *cancellable,
                             gpointer      user_data)
{
  TransportCall *tc = user_data;
  g_autoptr(GTask) task = g_steal_pointer (&tc->task);

  g_signal_handler_disconnect (cancellable, tc->cancelled_id);
  tc->cancelled_id = 0;
  if (task != NULL)
    g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                             "The operation was cancelled");
}

static void
transport_call (QipcBus       *self,
                QipcFrameType  type,
                GVariant      *body,
                GTask         *task)
{
  GCancellable *cancellable = g_task_get_cancellable (task);
  TransportCall *tc = g_new0 (TransportCall, 1);

  tc->task = task;
  if (cancellable != NULL)
    tc->cancelled_id = g_signal_connect (cancellable, "cancelled",
                                         G_CALLBACK (on_transport_call_cancelled), tc);
  QIPC_TRANSPORT_GET_CLASS (self->transport)->call (self->transport, type, body, cancellable,
                                                    on_transport_call_done, tc);
}

static QipcFrameType
reply_type_of (QipcFrameType type)
{
  switch (type)
    {
    case QIPC_FRAME_QUERY:   return QIPC_FRAME_REPLY;
    case QIPC_FRAME_LIST:    return QIPC_FRAME_CHANNELS;
    case QIPC_FRAME_PING:
    case QIPC_FRAME_MONITOR: return QIPC_FRAME_PONG;
    default:                 g_return_val_if_reached (QIPC_FRAME_PONG);
    }
}

void
_qipc_bus_call_async (QipcBus             *self,
                      QipcFrameType        type,
                      GVariant            *body,
                      GCancellable        *cancellable,
                      gpointer             source_tag,
                      GAsyncReadyCallback  callback,
                      gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  /* Sunk here: a floating body was lost on the early returns. */
  g_autoptr(GVariant) owned = body != NULL ? g_variant_ref_sink (body) : NULL;
  g_autoptr(GError) error = NULL;
  Call *call;

  g_task_set_source_tag (task, source_tag);
  if (g_task_return_error_if_cancelled (task))
    return;
  if (!check_not_closed (self, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  if (self->transport != NULL)
    {
      transport_call (self, type, owned, g_steal_pointer (&task));
      return;
    }

  call = g_new0 (Call, 1);
  call->serial = next_serial (self);
  call->reply_type = reply_type_of (type);
  call->frame = _qipc_frame_build (type, 0, call->serial, owned);
  call->task = g_object_ref (task);
  if (cancellable != NULL)
    call->cancelled_id = g_signal_connect (cancellable, "cancelled",
                                           G_CALLBACK (on_call_cancelled), task);
  g_queue_push_tail (&self->calls, call);
  /* A call waiting for the connection is sent when it is back (with the
   * outbox, in order), not queued twice. */
  if (self->connected)
    write_outgoing (self, call->frame, -1);
}

GVariant *
_qipc_bus_call_finish (GAsyncResult  *result,
                       GError       **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
on_sync_call_done (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

static gboolean
tick (gpointer user_data)
{
  return G_SOURCE_CONTINUE;
}

/* A blocking call waits for the broker through a reconnection, but not
 * forever: after SYNC_CALL_MAX_DISCONNECTED_S without a connection it
 * fails, so a program whose broker is gone does not hang in flush(). */
GVariant *
_qipc_bus_call_sync (QipcBus        *self,
                     QipcFrameType   type,
                     GVariant       *body,
                     GError        **error)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) local_error = NULL;
  GSource *ticker = g_timeout_source_new (100);
  gint64 lost_at = 0;
  GVariant *reply;

  g_source_set_callback (ticker, tick, NULL, NULL);
  g_source_set_static_name (ticker, "[qipc] bus call deadline");
  g_source_attach (ticker, self->context);
  _qipc_bus_call_async (self, type, body, cancellable, _qipc_bus_call_sync,
                        on_sync_call_done, &result);
  while (result == NULL)
    {
      gint64 now;

      g_main_context_iteration (self->context, TRUE);
      now = g_get_monotonic_time ();
      if (self->connected || self->closed)
        lost_at = 0;
      else if (lost_at == 0)
        lost_at = now;
      else if (now - lost_at > SYNC_CALL_MAX_DISCONNECTED_S * G_USEC_PER_SEC)
        g_cancellable_cancel (cancellable);
    }
  g_source_destroy (ticker);
  g_source_unref (ticker);

  reply = _qipc_bus_call_finish (result, &local_error);
  if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_DISCONNECTED,
                   "The broker at %s has been unreachable for %d s",
                   self->address_string, SYNC_CALL_MAX_DISCONNECTED_S);
      return NULL;
    }
  if (local_error != NULL)
    g_propagate_error (error, g_steal_pointer (&local_error));
  return reply;
}

static void
fail_calls (QipcBus      *self,
            const GError *error)
{
  while (!g_queue_is_empty (&self->calls))
    call_complete (self, g_queue_peek_head (&self->calls), NULL, g_error_copy (error));
}

/* ------------------------------------------------------------------ */
/* Receiving                                                           */

static void
collect_channels (QipcBus    *self,
                  const char *channel,
                  GPtrArray  *targets)
{
  GPtrArray *list = g_hash_table_lookup (self->exact, channel);

  if (list != NULL)
    for (guint i = 0; i < list->len; i++)
      g_ptr_array_add (targets, g_object_ref (g_ptr_array_index (list, i)));
  for (guint i = 0; i < self->pattern_regs->len; i++)
    {
      Registration *reg = g_ptr_array_index (self->pattern_regs, i);

      if (_qipc_channel_pattern_match (reg->name, channel))
        g_ptr_array_add (targets, g_object_ref (reg->channel));
    }
}

static GVariant *
payload_data (QipcBus                *self,
              const QipcFrameHeader  *header,
              GVariant               *body,
              GError                **error)
{
  g_autoptr(GVariant) payload = NULL;
  g_autoptr(GVariant) boxed = NULL;

  if (header->flags & QIPC_FRAME_FLAG_MEMFD)
    {
      guint64 size;
      int fd;

      g_variant_get_child (body, 2, "t", &size);
      if (g_queue_is_empty (&self->fds))
        {
          g_set_error_literal (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_PROTOCOL,
                               "A memfd frame came without its file descriptor");
          return NULL;
        }
      fd = GPOINTER_TO_INT (g_queue_pop_head (&self->fds));
      payload = _qipc_payload_memfd_map (fd, size, error);
      close (fd);
      if (payload == NULL)
        return NULL;
    }
  else
    payload = g_variant_get_child_value (body, 2);

  boxed = g_variant_get_maybe (payload);
  return boxed != NULL ? g_variant_get_variant (boxed) : NULL;
}

/* Up to this many channels of one process get a message without an
 * allocation. */
#define TARGETS_ON_STACK 16

static void
dispatch (QipcBus    *self,
          const char *channel,
          const char *message,
          GVariant   *data)
{
  QipcChannel *on_stack[TARGETS_ON_STACK];
  g_autoptr(GPtrArray) on_heap = NULL;
  GPtrArray *list = _qipc_last_lookup (&self->last_exact, self->exact, channel);
  guint n = 0;

  if (self->monitoring)
    g_signal_emit (self, signals[MONITORED], 0, channel, message, data);

  /* References first: a handler may drop any of these channels. */
  if (list != NULL)
    for (guint i = 0; i < list->len && n < TARGETS_ON_STACK; i++)
      on_stack[n++] = g_object_ref (g_ptr_array_index (list, i));
  if ((list != NULL && list->len > TARGETS_ON_STACK) || self->pattern_regs->len > 0)
    {
      on_heap = g_ptr_array_new_with_free_func (g_object_unref);
      collect_channels (self, channel, on_heap);
      for (guint i = 0; i < n; i++)
        g_object_unref (on_stack[i]);
      n = 0;
    }

  if (on_heap != NULL)
    for (guint i = 0; i < on_heap->len; i++)
      _qipc_channel_dispatch (g_ptr_array_index (on_heap, i), channel, message, data);
  for (guint i = 0; i < n; i++)
    {
      _qipc_channel_dispatch (on_stack[i], channel, message, data);
      g_object_unref (on_stack[i]);
    }
}

/* A DELIVER whose data came in a memfd. */
static gboolean
handle_deliver (QipcBus                *self,
                const QipcFrameHeader  *header,
                GVariant               *body,
                GError                **error)
{
  g_autoptr(GVariant) data = NULL;
  g_autoptr(GError) local_error = NULL;
  const char *channel, *message;

  g_variant_get_child (body, 0, "&s", &channel);
  g_variant_get_child (body, 1, "&s", &message);
  data = payload_data (self, header, body, &local_error);
  if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  dispatch (self, channel, message, data);
  return TRUE;
}

static void
handle_error_frame (QipcBus  *self,
                    guint32   serial,
                    GVariant *body)
{
  guint32 code;
  const char *message;
  Call *call;
  GError *error;

  g_variant_get (body, "(u&s)", &code, &message);
  error = g_error_new (QIPC_BUS_ERROR,
                       code <= QIPC_BUS_ERROR_PROTOCOL ? (int) code : QIPC_BUS_ERROR_FAILED,
                       "%s", message);
  if (serial == 0)
    {
      /* The broker ends the connection: a refusal is final. */
      g_message ("The broker at %s closes the connection: %s", self->address_string, message);
      if (code == QIPC_BUS_ERROR_ACCESS_DENIED && self->refusal == NULL)
        self->refusal = error;
      else
        g_error_free (error);
      return;
    }
  call = find_call (self, serial);
  if (call != NULL)
    {
      call_complete (self, call, NULL, error);
      return;
    }
  g_message ("The broker at %s reports: %s", self->address_string, message);
  if (self->send_error == NULL)
    self->send_error = error;
  else
    g_error_free (error);
}

static gboolean
handle_plain_deliver (QipcBus                *self,
                      const QipcFrameHeader  *header,
                      const guint8           *frame,
                      GError                **error)
{
  g_autoptr(GVariant) data = NULL;
  QipcSendBody body;

  if (!_qipc_frame_parse_send_body (frame + QIPC_FRAME_HEADER_SIZE, header->body_length,
                                    &self->last_valid, &body, error))
    return FALSE;
  if (body.has_data)
    {
      char type_buffer[64];
      g_autofree char *type_heap = NULL;
      const char *type = type_buffer;
      g_autoptr(GBytes) value = g_bytes_new (body.value, body.value_size);

      if (body.type_length < sizeof type_buffer)
        {
          memcpy (type_buffer, body.type_string, body.type_length);
          type_buffer[body.type_length] = '\0';
        }
      else
        type = type_heap = g_strndup (body.type_string, body.type_length);
      /* The parser checked that this is one complete type. */
      keep_type (&self->received_type, type);
      /* Not trusted: GVariant reads malformed data as defaults, safely. */
      data = g_variant_ref_sink (g_variant_new_from_bytes ((const GVariantType *) type, value, FALSE));
    }
  dispatch (self, body.channel, body.message, data);
  return TRUE;
}

static gboolean
handle_frame (const QipcFrameHeader  *header,
              const guint8           *frame,
              gpointer                user_data,
              GError                **error)
{
  QipcBus *self = user_data;
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GVariant) body = NULL;
  Call *call;

  if (header->type == QIPC_FRAME_DELIVER && !(header->flags & QIPC_FRAME_FLAG_MEMFD))
    {
      if (!handle_plain_deliver (self, header, frame, error))
        return FALSE;
      return self->socket != NULL && self->connected;
    }

  /* Received data may outlive the read buffer (a handler keeps it). */
  bytes = g_bytes_new (frame + QIPC_FRAME_HEADER_SIZE, header->body_length);
  body = _qipc_frame_parse_body (header, bytes, error);
  if (body == NULL)
    return FALSE;

  switch ((QipcFrameType) header->type)
    {
    case QIPC_FRAME_DELIVER:
      if (!handle_deliver (self, header, body, error))
        return FALSE;
      break;
    case QIPC_FRAME_WELCOME:
      g_variant_get (body, "(yts)", NULL, &self->client_id, NULL);
      break;
    case QIPC_FRAME_ERROR:
      handle_error_frame (self, header->serial, body);
      break;
    case QIPC_FRAME_LOST:
      {
        guint64 lost;
        g_variant_get (body, "(t)", &lost);
        self->messages_lost += lost;
        g_signal_emit (self, signals[MESSAGES_LOST], 0, lost);
      }
      break;
    case QIPC_FRAME_REPLY:
    case QIPC_FRAME_PONG:
    case QIPC_FRAME_CHANNELS:
      call = find_call (self, header->serial);
      if (call == NULL || call->reply_type != header->type)
        {
          g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_PROTOCOL,
                       "The broker sent a reply (type %u) to no request", header->type);
          return FALSE;
        }
      call_complete (self, call, body, NULL);
      break;
    default:
      g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_PROTOCOL,
                   "Unexpected frame type %u from the broker", header->type);
      return FALSE;
    }
  /* A handler may have closed the bus. */
  return self->socket != NULL && self->connected;
}

static void
on_ready_read (QipcSocket *socket,
               gpointer    user_data)
{
  QipcBus *self = user_data;
  g_autoptr(GError) error = NULL;
  G_GNUC_UNUSED g_autoptr(QipcSocket) keep = g_object_ref (socket);
  G_GNUC_UNUSED g_autoptr(QipcBus) keep_self = g_object_ref (self);
  const guint8 *data;
  gsize size, used = 0;

  if (_qipc_payload_fds_take (socket, &self->fds, &error))
    {
      data = _qipc_socket_peek_buffer (socket, &size);
      used = _qipc_frame_split (data, size, QIPC_FRAME_FROM_BROKER, handle_frame, self, &error);
    }
  if (error != NULL)
    {
      g_message ("Dropping the connection to %s: %s", self->address_string, error->message);
      qipc_socket_abort (socket);
      lose_connection (self, error);
      return;
    }
  if (self->socket == socket)
    _qipc_socket_consume (socket, used);
}

/* ------------------------------------------------------------------ */
/* Connection state                                                    */

static void
set_connected (QipcBus  *self,
               gboolean  connected)
{
  if (self->connected == connected)
    return;
  self->connected = connected;
  g_signal_emit (self, signals[connected ? CONNECTED : DISCONNECTED], 0);
}

static void
subscribe (QipcBus      *self,
           guint32       id,
           Registration *reg)
{
  g_autoptr(GBytes) frame = _qipc_frame_build (QIPC_FRAME_SUBSCRIBE, 0, next_serial (self),
                                               g_variant_new ("(us)", id, reg->name));

  write_outgoing (self, frame, -1);
}

/* After a reconnection: the channels, then what waited, in order. */
static void
resume (QipcBus *self)
{
  GHashTableIter iter;
  gpointer id, reg;
  Outgoing *outgoing;

  g_hash_table_iter_init (&iter, self->registrations);
  while (g_hash_table_iter_next (&iter, &id, &reg))
    subscribe (self, GPOINTER_TO_UINT (id), reg);
  while ((outgoing = g_queue_pop_head (&self->outbox)) != NULL)
    {
      write_outgoing (self, outgoing->frame, outgoing->fd);
      outgoing_free (outgoing);
    }
  self->outbox_bytes = 0;
  for (GList *l = self->calls.head; l != NULL; l = l->next)
    write_outgoing (self, ((Call *) l->data)->frame, -1);
  if (self->monitoring)
    _qipc_bus_call_async (self, QIPC_FRAME_MONITOR, NULL, NULL, resume, NULL, NULL);
}

static void schedule_retry (QipcBus *self);

static gboolean
retry_connect (gpointer user_data)
{
  QipcBus *self = user_data;
  g_autoptr(GError) error = NULL;

  self->retry_source = 0;
  if (!connect_once (self, &error))
    {
      g_debug ("Reconnecting to %s: %s", self->address_string, error->message);
      /* A broker that was started but died (or never came) is started
       * again, at most once a second. */
      if (self->autostart && broker_is_absent (error) &&
          g_get_monotonic_time () - self->last_spawn > G_USEC_PER_SEC)
        spawn_broker (self);
      schedule_retry (self);
      return G_SOURCE_REMOVE;
    }
  self->retry_ms = MIN_RETRY_MS;
  resume (self);
  set_connected (self, TRUE);
  return G_SOURCE_REMOVE;
}

static void
schedule_retry (QipcBus *self)
{
  GSource *source = g_timeout_source_new (self->retry_ms);

  g_source_set_callback (source, retry_connect, self, NULL);
  g_source_set_static_name (source, "[qipc] bus reconnect");
  self->retry_source = g_source_attach (source, self->context);
  g_source_unref (source);
  self->retry_ms = MIN (self->retry_ms * 2, MAX_RETRY_MS);
}

static void
drop_socket (QipcBus *self)
{
  if (self->socket == NULL)
    return;
  _qipc_socket_set_ready_func (self->socket, NULL, NULL);
  g_signal_handlers_disconnect_by_data (self->socket, self);
  qipc_socket_abort (self->socket);
  g_clear_object (&self->socket);
  _qipc_payload_fds_clear (&self->fds);
}

static void
lose_connection (QipcBus      *self,
                 const GError *error)
{
  drop_socket (self);
  if (self->closed)
    return;
  if (self->refusal != NULL)
    {
      qipc_bus_close (self);
      return;
    }
  g_debug ("Lost the broker at %s: %s", self->address_string,
           error != NULL ? error->message : "closed");
  set_connected (self, FALSE);
  if (self->retry_source == 0 && !self->closed)
    schedule_retry (self);
}

static void
on_disconnected (QipcSocket *socket,
                 gpointer    user_data)
{
  QipcBus *self = user_data;
  G_GNUC_UNUSED g_autoptr(QipcBus) keep = g_object_ref (self);

  /* Frames that came with the end are still worth reading. */
  on_ready_read (socket, self);
  if (self->socket == socket)
    lose_connection (self, qipc_socket_get_error (socket));
}

/* ------------------------------------------------------------------ */
/* Channels                                                            */

guint32
_qipc_bus_add_channel (QipcBus      *self,
                       QipcChannel  *channel,
                       const char   *name,
                       GError      **error)
{
  Registration *reg;
  guint32 id;

  if (!_qipc_channel_name_validate (name, TRUE, error) || !check_not_closed (self, error))
    return 0;
  if (g_hash_table_size (self->registrations) >= MAX_CHANNELS)
    {
      g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_LIMIT_EXCEEDED,
                   "A bus holds at most %d channels", MAX_CHANNELS);
      return 0;
    }

  reg = g_new0 (Registration, 1);
  reg->channel = channel;
  reg->name = g_strdup (name);
  id = ++self->next_registration;
  g_hash_table_insert (self->registrations, GUINT_TO_POINTER (id), reg);
  _qipc_last_lookup_forget (&self->last_exact);
  if (_qipc_channel_name_is_pattern (name))
    {
      g_ptr_array_add (self->pattern_regs, reg);
    }
  else
    {
      GPtrArray *list = g_hash_table_lookup (self->exact, name);

      if (list == NULL)
        {
          list = g_ptr_array_new ();
          g_hash_table_insert (self->exact, g_strdup (name), list);
        }
      g_ptr_array_add (list, channel);
    }
  if (self->transport != NULL)
    QIPC_TRANSPORT_GET_CLASS (self->transport)->subscribe (self->transport, id, name);
  else if (self->connected)
    subscribe (self, id, reg);
  return id;
}

void
_qipc_bus_remove_channel (QipcBus *self,
                          guint32  id)
{
  Registration *reg = g_hash_table_lookup (self->registrations, GUINT_TO_POINTER (id));

  if (reg == NULL)
    return;
  _qipc_last_lookup_forget (&self->last_exact);
  if (_qipc_channel_name_is_pattern (reg->name))
    {
      g_ptr_array_remove (self->pattern_regs, reg);
    }
  else
    {
      GPtrArray *list = g_hash_table_lookup (self->exact, reg->name);

      g_ptr_array_remove (list, reg->channel);
      if (list->len == 0)
        g_hash_table_remove (self->exact, reg->name);
    }
  if (self->transport != NULL)
    {
      QIPC_TRANSPORT_GET_CLASS (self->transport)->unsubscribe (self->transport, id, reg->name);
    }
  else if (self->connected)
    {
      g_autoptr(GBytes) frame = _qipc_frame_build (QIPC_FRAME_UNSUBSCRIBE, 0, next_serial (self),
                                                   g_variant_new ("(u)", id));
      write_outgoing (self, frame, -1);
    }
  g_hash_table_remove (self->registrations, GUINT_TO_POINTER (id));
}

/* ------------------------------------------------------------------ */
/* GObject                                                             */

/* What is queued leaves before the connection ends, as far as the broker
 * takes it within a second. */
static void
flush_socket (QipcBus *self)
{
  gint64 deadline = g_get_monotonic_time () + G_USEC_PER_SEC;

  if (self->socket == NULL || !self->connected)
    return;
  qipc_socket_flush (self->socket);
  /* Waiting runs the main context: the connection may end meanwhile. */
  while (self->socket != NULL && qipc_socket_bytes_to_write (self->socket) > 0 &&
         g_get_monotonic_time () < deadline &&
         qipc_socket_wait_for_bytes_written (self->socket, 100, NULL))
    ;
}

static void
qipc_bus_dispose (GObject *object)
{
  QipcBus *self = QIPC_BUS (object);

  if (!self->closed)
    qipc_bus_close (self);
  G_OBJECT_CLASS (qipc_bus_parent_class)->dispose (object);
}

static void
qipc_bus_finalize (GObject *object)
{
  QipcBus *self = QIPC_BUS (object);

  g_clear_object (&self->transport);
  g_free (self->address_string);
  _qipc_address_clear (&self->address);
  g_main_context_unref (self->context);
  g_hash_table_unref (self->registrations);
  g_hash_table_unref (self->exact);
  g_ptr_array_unref (self->pattern_regs);
  g_clear_error (&self->send_error);
  g_clear_error (&self->refusal);
  g_byte_array_unref (self->scratch);
  g_clear_object (&self->tls_database);
  type_keeper_clear (&self->sent_type);
  type_keeper_clear (&self->received_type);
  G_OBJECT_CLASS (qipc_bus_parent_class)->finalize (object);
}

static void
qipc_bus_get_property (GObject    *object,
                       guint       prop_id,
                       GValue     *value,
                       GParamSpec *pspec)
{
  QipcBus *self = QIPC_BUS (object);

  switch (prop_id)
    {
    case PROP_ADDRESS:
      g_value_set_string (value, self->address_string);
      break;
    case PROP_MAX_QUEUED:
      g_value_set_uint64 (value, self->max_queued);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
qipc_bus_set_property (GObject      *object,
                       guint         prop_id,
                       const GValue *value,
                       GParamSpec   *pspec)
{
  QipcBus *self = QIPC_BUS (object);

  switch (prop_id)
    {
    case PROP_MAX_QUEUED:
      qipc_bus_set_max_queued (self, g_value_get_uint64 (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
qipc_bus_class_init (QipcBusClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = qipc_bus_dispose;
  object_class->finalize = qipc_bus_finalize;
  object_class->get_property = qipc_bus_get_property;
  object_class->set_property = qipc_bus_set_property;

  /**
   * QipcBus:address:
   *
   * The address of the broker.
   */
  properties[PROP_ADDRESS] =
    g_param_spec_string ("address", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * QipcBus:max-queued:
   *
   * How many bytes of messages the bus holds while the broker does not
   * take them (while it is unreachable, or slower than the sender);
   * sending beyond that fails with %QIPC_BUS_ERROR_QUEUE_FULL. 16 MiB by
   * default.
   */
  properties[PROP_MAX_QUEUED] =
    g_param_spec_uint64 ("max-queued", NULL, NULL, 0, G_MAXSIZE, DEFAULT_MAX_QUEUED,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * QipcBus::connected:
   * @self: the bus
   *
   * Emitted when the bus is connected again after losing its broker,
   * once its channels are registered again.
   */
  signals[CONNECTED] =
    g_signal_new ("connected", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);

  /**
   * QipcBus::disconnected:
   * @self: the bus
   *
   * Emitted when the connection to the broker is lost; the bus tries to
   * reconnect by itself.
   */
  signals[DISCONNECTED] =
    g_signal_new ("disconnected", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);

  /**
   * QipcBus::messages-lost:
   * @self: the bus
   * @count: how many messages were lost
   *
   * Emitted when the broker had to drop messages meant for this bus's
   * channels because the process did not read them fast enough (more
   * than the broker's [property@Broker:max-queued-bytes] waited). The
   * messages before and after the gap arrive as usual.
   */
  signals[MESSAGES_LOST] =
    g_signal_new ("messages-lost", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_UINT64);

  /**
   * QipcBus::monitored:
   * @self: the bus
   * @channel: the channel the message was sent to
   * @message: the message name
   * @data: (nullable): the message's data
   *
   * Emitted, after [method@Bus.start_monitor], for every message the
   * broker routes, whoever it is for.
   */
  signals[MONITORED] =
    g_signal_new ("monitored", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, _qipc_marshal_VOID__STRING_STRING_VARIANT,
                  G_TYPE_NONE, 3,
                  G_TYPE_STRING | G_SIGNAL_TYPE_STATIC_SCOPE,
                  G_TYPE_STRING | G_SIGNAL_TYPE_STATIC_SCOPE,
                  G_TYPE_VARIANT);
  g_signal_set_va_marshaller (signals[MONITORED], G_TYPE_FROM_CLASS (klass),
                              _qipc_marshal_VOID__STRING_STRING_VARIANTv);
}

static void
qipc_bus_init (QipcBus *self)
{
  self->context = g_main_context_ref_thread_default ();
  self->retry_ms = MIN_RETRY_MS;
  self->max_queued = DEFAULT_MAX_QUEUED;
  self->registrations = g_hash_table_new_full (NULL, NULL, NULL, registration_free);
  self->exact = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                       (GDestroyNotify) g_ptr_array_unref);
  self->pattern_regs = g_ptr_array_new ();
  self->scratch = g_byte_array_new ();
}

/* ------------------------------------------------------------------ */
/* Public API                                                          */

/* The authorities of a tcp: address's ca= file. */
static gboolean
load_tls_database (QipcBus  *self,
                   GError  **error)
{
  g_autoptr(GError) local_error = NULL;

  if (self->address.ca_file == NULL)
    return TRUE;
  self->tls_database = g_tls_file_database_new (self->address.ca_file, &local_error);
  if (self->tls_database != NULL)
    return TRUE;
  g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_INVALID_ADDRESS,
               "Cannot read the authorities of %s from %s: %s", self->address_string,
               self->address.ca_file, local_error->message);
  return FALSE;
}

static QipcBus *
bus_new (const char  *address,
         gboolean     autostart,
         GError     **error)
{
  g_autoptr(QipcBus) self = g_object_new (QIPC_TYPE_BUS, NULL);

  g_autoptr(GError) local_error = NULL;

  self->address_string = g_strdup (address);
  self->transport = _qipc_transport_new_for_address (self, address, &local_error);
  if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }
  if (self->transport != NULL)
    {
      if (!QIPC_TRANSPORT_GET_CLASS (self->transport)->open (self->transport, error))
        return NULL;
      self->connected = TRUE;
      return g_steal_pointer (&self);
    }
  if (!_qipc_address_parse (address, &self->address, error) ||
      !load_tls_database (self, error))
    return NULL;
  self->autostart = autostart && self->address.kind == QIPC_ADDRESS_UNIX_PATH;
  if (!connect_with_autostart (self, error))
    return NULL;
  self->connected = TRUE;
  return g_steal_pointer (&self);
}

/**
 * qipc_bus_new_for_address:
 * @address: a bus address (see [class@Bus])
 * @error: return location for a #GError
 *
 * Connects to the broker at @address, blocking the calling thread until
 * the broker has accepted the connection (a few hundred microseconds on
 * a live local broker; at most 5 seconds).
 *
 * The broker's answer is not awaited (so a process can connect to a
 * broker it hosts on the same main loop): a broker whose policy refuses
 * this user closes the bus soon after, and every call then fails with
 * %QIPC_BUS_ERROR_ACCESS_DENIED. On TCP the TLS handshake, too, runs on
 * the main context: a broker whose certificate does not verify closes
 * the bus in the same way, with %QIPC_BUS_ERROR_TLS_HANDSHAKE_FAILED.
 *
 * Returns: (transfer full): a connected bus, or %NULL with @error set
 *   (%QIPC_BUS_ERROR_INVALID_ADDRESS, also for a `ca=` file that cannot be
 *   read, %QIPC_BUS_ERROR_BROKER_NOT_FOUND when
 *   nothing listens at the address, or another %G_IO_ERROR from
 *   connecting)
 */
QipcBus *
qipc_bus_new_for_address (const char  *address,
                          GError     **error)
{
  g_return_val_if_fail (address != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return bus_new (address, FALSE, error);
}

G_LOCK_DEFINE_STATIC (default_bus);
static QipcBus *default_bus;

/**
 * qipc_bus_get_default:
 * @error: return location for a #GError
 *
 * Gets the process's default bus, connecting it on first use: to
 * `$QIPC_BUS_ADDRESS` if set, else to the per-user broker at
 * `$XDG_RUNTIME_DIR/qipc/bus`. When no broker runs there, one is started
 * (`qipc-broker --autostart`, which exits when idle); several processes
 * doing so at the same moment end up with one broker.
 *
 * The default bus lives on the thread-default main context of the first
 * caller, and stays until [method@Bus.close] (after which the next call
 * connects a new one).
 *
 * Returns: (transfer full): the default bus, or %NULL with @error set
 *   (%QIPC_BUS_ERROR_BROKER_NOT_FOUND when no broker could be reached)
 */
QipcBus *
qipc_bus_get_default (GError **error)
{
  QipcBus *bus;

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  G_LOCK (default_bus);
  if (default_bus != NULL && default_bus->closed)
    g_clear_object (&default_bus);
  if (default_bus == NULL)
    {
      g_autofree char *address = _qipc_address_default ();

      default_bus = bus_new (address, TRUE, error);
    }
  bus = default_bus != NULL ? g_object_ref (default_bus) : NULL;
  G_UNLOCK (default_bus);
  return bus;
}

/**
 * qipc_bus_get_address:
 * @self: a #QipcBus
 *
 * Gets the address the bus connects to.
 *
 * Returns: the address
 */
const char *
qipc_bus_get_address (QipcBus *self)
{
  g_return_val_if_fail (QIPC_IS_BUS (self), NULL);

  return self->address_string;
}

/**
 * qipc_bus_is_connected:
 * @self: a #QipcBus
 *
 * Tells whether the bus is connected to its broker now.
 *
 * Returns: %TRUE when connected
 */
gboolean
qipc_bus_is_connected (QipcBus *self)
{
  g_return_val_if_fail (QIPC_IS_BUS (self), FALSE);

  return self->connected;
}

/**
 * qipc_bus_get_messages_lost:
 * @self: a #QipcBus
 *
 * Gets how many messages the broker dropped for this bus in all, the sum
 * of every [signal@Bus::messages-lost].
 *
 * Returns: the number of lost messages
 */
guint64
qipc_bus_get_messages_lost (QipcBus *self)
{
  g_return_val_if_fail (QIPC_IS_BUS (self), 0);

  return self->messages_lost;
}

/**
 * qipc_bus_get_max_queued:
 * @self: a #QipcBus
 *
 * Gets [property@Bus:max-queued].
 *
 * Returns: the most bytes of messages the bus holds for its broker
 */
gsize
qipc_bus_get_max_queued (QipcBus *self)
{
  g_return_val_if_fail (QIPC_IS_BUS (self), 0);

  return self->max_queued;
}

/**
 * qipc_bus_set_max_queued:
 * @self: a #QipcBus
 * @max_queued: bytes
 *
 * Sets [property@Bus:max-queued].
 */
void
qipc_bus_set_max_queued (QipcBus *self,
                         gsize    max_queued)
{
  g_return_if_fail (QIPC_IS_BUS (self));

  if (self->max_queued == max_queued)
    return;
  self->max_queued = max_queued;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MAX_QUEUED]);
}

/**
 * qipc_bus_close:
 * @self: a #QipcBus
 *
 * Sends what is queued (waiting up to a second for the broker to take
 * it), then disconnects for good: pending calls fail with
 * %QIPC_BUS_ERROR_DISCONNECTED, and later calls fail the same way.
 */
void
qipc_bus_close (QipcBus *self)
{
  g_autoptr(GError) error = NULL;
  gboolean was_connected;

  g_return_if_fail (QIPC_IS_BUS (self));

  if (self->closed)
    return;
  if (self->transport != NULL)
    QIPC_TRANSPORT_GET_CLASS (self->transport)->close (self->transport);
  flush_socket (self);
  self->closed = TRUE;
  was_connected = self->connected;
  self->connected = FALSE;
  /* On the bus's context: g_source_remove() looks in the global default
   * one only, and would leave the retry to run on the freed bus. */
  if (self->retry_source != 0)
    g_source_destroy (g_main_context_find_source_by_id (self->context, self->retry_source));
  self->retry_source = 0;
  drop_socket (self);
  g_queue_clear_full (&self->outbox, outgoing_free);
  self->outbox_bytes = 0;
  /* After a refusal, everything fails with the broker's reason. */
  error = self->refusal != NULL ? g_error_copy (self->refusal)
                                : g_error_new (QIPC_BUS_ERROR, QIPC_BUS_ERROR_DISCONNECTED,
                                               "The bus to %s was closed", self->address_string);
  fail_calls (self, error);
  if (was_connected)
    g_signal_emit (self, signals[DISCONNECTED], 0);
}

/**
 * qipc_bus_list_channels:
 * @self: a #QipcBus
 * @error: return location for a #GError
 *
 * Asks the broker which channel names and patterns have listeners, and
 * how many each. Blocks, running the bus's main context meanwhile, as
 * [func@Channel.flush_for_bus] does.
 *
 * Returns: (transfer full): an `a(su)` of names (or patterns) and
 *   listener counts, or %NULL with @error set
 */
GVariant *
qipc_bus_list_channels (QipcBus  *self,
                        GError  **error)
{
  g_return_val_if_fail (QIPC_IS_BUS (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return _qipc_bus_call_sync (self, QIPC_FRAME_LIST, NULL, error);
}

/**
 * qipc_bus_list_channels_async:
 * @self: a #QipcBus
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the answer
 * @user_data: data for @callback
 *
 * The form of [method@Bus.list_channels] that does not block.
 */
void
qipc_bus_list_channels_async (QipcBus             *self,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_return_if_fail (QIPC_IS_BUS (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  _qipc_bus_call_async (self, QIPC_FRAME_LIST, NULL, cancellable,
                        qipc_bus_list_channels_async, callback, user_data);
}

/**
 * qipc_bus_list_channels_finish:
 * @self: a #QipcBus
 * @result: the result given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Bus.list_channels_async].
 *
 * Returns: (transfer full): an `a(su)` of names (or patterns) and
 *   listener counts, or %NULL with @error set
 */
GVariant *
qipc_bus_list_channels_finish (QipcBus       *self,
                               GAsyncResult  *result,
                               GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return _qipc_bus_call_finish (result, error);
}

/**
 * qipc_bus_start_monitor:
 * @self: a #QipcBus
 * @error: return location for a #GError
 *
 * Asks the broker for a copy of every message it routes, which the bus
 * then emits as [signal@Bus::monitored] (what `qipc monitor` prints).
 * The broker's own user may always monitor; others only when the
 * broker's policy says so. Monitoring lasts as long as the bus, across
 * reconnections. Blocks until the broker answers, running the bus's main
 * context meanwhile.
 *
 * Returns: %TRUE if monitoring; %FALSE with @error set
 *   (%QIPC_BUS_ERROR_ACCESS_DENIED when the policy forbids it)
 */
gboolean
qipc_bus_start_monitor (QipcBus  *self,
                        GError  **error)
{
  g_autoptr(GVariant) reply = NULL;

  g_return_val_if_fail (QIPC_IS_BUS (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  /* Set first: copies may come right behind the answer. */
  self->monitoring = TRUE;
  reply = _qipc_bus_call_sync (self, QIPC_FRAME_MONITOR, NULL, error);
  if (reply == NULL)
    self->monitoring = FALSE;
  return reply != NULL;
}

GError *
_qipc_bus_take_send_error (QipcBus *self)
{
  return g_steal_pointer (&self->send_error);
}

/* ------------------------------------------------------------------ */
/* From the other transports                                           */

void
_qipc_bus_transport_deliver (QipcBus    *bus,
                             const char *channel,
                             const char *message,
                             GVariant   *data)
{
  G_GNUC_UNUSED g_autoptr(QipcBus) keep = g_object_ref (bus);

  if (!bus->closed)
    dispatch (bus, channel, message, data);
}

void
_qipc_bus_transport_set_connected (QipcBus  *bus,
                                   gboolean  connected)
{
  if (!bus->closed)
    set_connected (bus, connected);
}

void
_qipc_bus_transport_lost (QipcBus *bus,
                          guint64  count)
{
  bus->messages_lost += count;
  g_signal_emit (bus, signals[MESSAGES_LOST], 0, count);
}

void
_qipc_bus_transport_send_failed (QipcBus *bus,
                                 GError  *error)
{
  if (bus->send_error == NULL)
    bus->send_error = error;
  else
    g_error_free (error);
}
