/* qipc-socket.c: a buffered, signal-driven stream socket
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/**
 * QipcSocket:
 *
 * The base of qipc's stream sockets, as Qt's `QAbstractSocket` is the
 * base of `QTcpSocket` and `QLocalSocket`: buffered reading and writing
 * driven by the thread-default [struct@GLib.MainContext] of the thread
 * that connected (or, for sockets a [class@Server] hands out, of the
 * thread that called listen), with Qt's signals.
 *
 * ```c
 * static void
 * on_ready_read (QipcSocket *socket, gpointer user_data)
 * {
 *   while (qipc_socket_can_read_line (socket))
 *     {
 *       g_autoptr(GBytes) line = qipc_socket_read_line (socket, 1024);
 *       handle_line (line);
 *     }
 * }
 *
 * g_signal_connect (socket, "ready-read", G_CALLBACK (on_ready_read), NULL);
 * ```
 *
 * [method@Socket.write] never blocks: it queues, sends what the kernel
 * takes at once, and sends the rest as the peer reads;
 * [signal@Socket::bytes-written] reports progress. Incoming data is
 * buffered up to [property@Socket:read-buffer-size] bytes; when the
 * buffer is full the socket stops reading, so a slow reader holds back a
 * fast writer instead of growing without bound.
 *
 * The `wait_for_*` calls block the calling thread, as Qt users expect,
 * by running the socket's main context until the awaited event, the
 * timeout or an error; other sources attached to that context may run
 * meanwhile.
 *
 * When the peer closes the connection, [signal@Socket::error-occurred]
 * reports %QIPC_SOCKET_ERROR_REMOTE_HOST_CLOSED, the state becomes
 * %QIPC_SOCKET_STATE_UNCONNECTED and [signal@Socket::disconnected] is
 * emitted; data already received stays readable.
 *
 * Many sockets in one main context cost little while idle: GLib's main
 * loop polls every descriptor of a context on each iteration, so the
 * local sockets of a context beyond the first 16 are watched through one
 * epoll descriptor for all of them, and a socket that has nothing to send
 * keeps no source of its own in the context for long.
 */

#include "qipc-socket.h"
#include "qipc-enum-types.h"
#include "qipc-socket-private.h"
#include "qipc-poller-private.h"

#include <errno.h>
#include <glib-unix.h>
#include <string.h>
#include <sys/socket.h>

/* How much one read takes from the kernel at most. */
#define READ_CHUNK_SIZE (64 * 1024)
/* An empty read buffer larger than this is freed. */
#define READ_KEEP_SIZE (16 * 1024)

/* Writes smaller than this are copied into a shared buffer, so that many
 * small messages leave in one system call; larger ones are sent from the
 * caller's GBytes without a copy. */
#define COALESCE_MAX_WRITE QIPC_SOCKET_RESERVE_MAX
#define COALESCE_BUFFER_SIZE (64 * 1024)

/* Queued data: either the caller's bytes, or small writes gathered into
 * one buffer (@gathered, of @allocated bytes, @length used; plain memory
 * rather than a GByteArray, whose bookkeeping showed in the profile of
 * every small write). File descriptors go with the first byte of their
 * chunk. */
typedef struct
{
  GList link;                 /* in write_queue: queueing allocates nothing */
  GBytes *bytes;
  guint8 *gathered;
  gsize length;
  gsize allocated;
  gsize offset;
  GUnixFDList *fds;
} WriteChunk;

typedef struct
{
  QipcSocketState state;
  GError *error;

  GIOStream *stream;
  GSocket *socket;
  int fd; /* the socket's, -1 without one */
  GCancellable *cancellable;
  GMainContext *context;
  QipcSocketReadFunc read_func;
  QipcSocketWriteFunc write_func;

  /* Received bytes: read_data holds read_allocated bytes, of which
   * read_length are filled and those from read_start on unread. Plain
   * memory, as the write chunks: a GByteArray's bookkeeping showed on
   * every read of a ping-pong. */
  guint8 *read_data;
  gsize read_length;
  gsize read_allocated;
  /* What the last readable dispatch took from the system. */
  gsize last_received;
  gsize read_start;
  gsize read_buffer_size;
  /* Watches: sources (a stream's, or a descriptor's own), or the
   * descriptor's registration in the context's poller. A *_direct flag
   * says the source holds one of the context's direct places. */
  GSource *read_source;
  gboolean read_direct;
  QipcPollerFd *polled;
  gboolean reading_paused;

  GQueue write_queue;
  gsize bytes_to_write;
  /* A sent small-write chunk kept for the next one: a message at a time
   * (a ping-pong) then costs no allocation. */
  WriteChunk *spare_chunk;
  GSource *write_source;
  gboolean write_direct;

  /* Runs in every iteration of the context: it sends what was queued
   * since the last one (in prepare, before the context polls), and emits
   * bytes-written and deferred write errors (in dispatch). */
  GSource *pending_source;    /* while there was something to do lately */
  guint pending_idle;         /* iterations it found nothing to do */
  gint64 written_unreported;
  GError *pending_error;

  /* Counts received bytes, for wait_for_ready_read. */
  guint64 total_received;
  guint64 received_at_trim;   /* total_received at the last trim */
  gboolean emitting_ready_read;
  /* Called instead of ::ready-read; see _qipc_socket_set_ready_func(). */
  QipcSocketReadyFunc ready_func;
  gpointer ready_data;
} QipcSocketPrivate;

enum {
  CONNECTED,
  DISCONNECTED,
  READY_READ,
  BYTES_WRITTEN,
  STATE_CHANGED,
  ERROR_OCCURRED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

enum {
  PROP_0,
  PROP_STATE,
  PROP_READ_BUFFER_SIZE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/**
 * qipc_socket_error_quark:
 *
 * Gets the error domain of [class@Socket] and [class@Server].
 *
 * Returns: the error quark
 */
G_DEFINE_QUARK (qipc-socket-error-quark, qipc_socket_error)

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE (QipcSocket, qipc_socket, G_TYPE_OBJECT)

static void write_chunk_free (WriteChunk *chunk);
static void write_queue_clear (GQueue *queue);
static void start_reading (QipcSocket *self);
static void stop_reading (QipcSocket *self);
static void stop_writing (QipcSocket *self);
static void write_queued (QipcSocket *self);
static void need_pending_source (QipcSocket *self);
static gboolean pending_needs_dispatch (QipcSocketPrivate *priv);

/* The argument check of every public call. g_type_check_instance_is_a()
 * is fast only for an instance of exactly the checked type, and every
 * socket is of a subclass: per message, the checks cost more than the
 * calls. So the classes found to be sockets are remembered (classes of
 * static types live as long as the process), the last one seen first:
 * a process mostly uses one kind of socket. */
static GTypeClass *known_socket_classes[8];
static GTypeClass *last_socket_class;

static gboolean
is_socket_slow (gpointer    instance,
                GTypeClass *klass)
{
  for (guint i = 0; i < G_N_ELEMENTS (known_socket_classes); i++)
    {
      GTypeClass *seen = g_atomic_pointer_get (&known_socket_classes[i]);

      if (seen == NULL)
        break;
      if (seen == klass)
        {
          g_atomic_pointer_set (&last_socket_class, klass);
          return TRUE;
        }
    }

  if (!g_type_check_instance_is_a (instance, QIPC_TYPE_SOCKET))
    return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (known_socket_classes); i++)
    if (g_atomic_pointer_compare_and_exchange (&known_socket_classes[i], NULL, klass) ||
        g_atomic_pointer_get (&known_socket_classes[i]) == klass)
      break;
  g_atomic_pointer_set (&last_socket_class, klass);
  return TRUE;
}

static inline gboolean
is_socket (gpointer instance)
{
  GTypeClass *klass;

  if (G_UNLIKELY (instance == NULL))
    return FALSE;
  klass = ((GTypeInstance *) instance)->g_class;
  if (G_LIKELY (klass != NULL && klass == g_atomic_pointer_get (&last_socket_class)))
    return TRUE;
  return klass != NULL && is_socket_slow (instance, klass);
}

static void
qipc_socket_dispose (GObject *object)
{
  QipcSocket *self = QIPC_SOCKET (object);
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  if (priv->stream != NULL)
    qipc_socket_abort (self);
  /* Whatever still watches the descriptor must not outlive the object. */
  stop_reading (self);
  stop_writing (self);
  if (priv->pending_source != NULL)
    {
      g_source_destroy (priv->pending_source);
      g_clear_pointer (&priv->pending_source, g_source_unref);
    }

  G_OBJECT_CLASS (qipc_socket_parent_class)->dispose (object);
}

static void
qipc_socket_finalize (GObject *object)
{
  QipcSocket *self = QIPC_SOCKET (object);
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  write_queue_clear (&priv->write_queue);
  g_clear_pointer (&priv->spare_chunk, write_chunk_free);
  g_clear_pointer (&priv->read_data, g_free);
  g_clear_pointer (&priv->context, g_main_context_unref);
  g_clear_object (&priv->cancellable);
  g_clear_error (&priv->error);
  g_clear_error (&priv->pending_error);

  G_OBJECT_CLASS (qipc_socket_parent_class)->finalize (object);
}

static void
qipc_socket_get_property (GObject    *object,
                          guint       prop_id,
                          GValue     *value,
                          GParamSpec *pspec)
{
  QipcSocket *self = QIPC_SOCKET (object);

  switch (prop_id)
    {
    case PROP_STATE:
      g_value_set_enum (value, qipc_socket_get_state (self));
      break;
    case PROP_READ_BUFFER_SIZE:
      g_value_set_uint64 (value, qipc_socket_get_read_buffer_size (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
qipc_socket_set_property (GObject      *object,
                          guint         prop_id,
                          const GValue *value,
                          GParamSpec   *pspec)
{
  QipcSocket *self = QIPC_SOCKET (object);

  switch (prop_id)
    {
    case PROP_READ_BUFFER_SIZE:
      qipc_socket_set_read_buffer_size (self, g_value_get_uint64 (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
qipc_socket_class_init (QipcSocketClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = qipc_socket_dispose;
  object_class->finalize = qipc_socket_finalize;
  object_class->get_property = qipc_socket_get_property;
  object_class->set_property = qipc_socket_set_property;

  /**
   * QipcSocket:state: (getter get_state)
   *
   * The state of the connection.
   */
  properties[PROP_STATE] =
    g_param_spec_enum ("state", NULL, NULL,
                       QIPC_TYPE_SOCKET_STATE, QIPC_SOCKET_STATE_UNCONNECTED,
                       G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * QipcSocket:read-buffer-size: (getter get_read_buffer_size) (setter set_read_buffer_size)
   *
   * How many received bytes the socket holds for the application at
   * most; 0 (the default) means no limit. When the buffer is full the
   * socket stops reading until the application reads, and the peer's
   * writes wait in the kernel.
   */
  properties[PROP_READ_BUFFER_SIZE] =
    g_param_spec_uint64 ("read-buffer-size", NULL, NULL, 0, G_MAXSIZE, 0,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * QipcSocket::connected:
   * @self: the socket
   *
   * The connection is established (and, for TLS, encrypted).
   */
  signals[CONNECTED] =
    g_signal_new ("connected", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  G_STRUCT_OFFSET (QipcSocketClass, connected),
                  NULL, NULL, NULL, G_TYPE_NONE, 0);

  /**
   * QipcSocket::disconnected:
   * @self: the socket
   *
   * The connection is closed, by either side; the state is
   * %QIPC_SOCKET_STATE_UNCONNECTED.
   */
  signals[DISCONNECTED] =
    g_signal_new ("disconnected", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  G_STRUCT_OFFSET (QipcSocketClass, disconnected),
                  NULL, NULL, NULL, G_TYPE_NONE, 0);

  /**
   * QipcSocket::ready-read:
   * @self: the socket
   *
   * New data arrived. Emitted once per arrival, not again from inside a
   * handler; read what is there with [method@Socket.read] or
   * [method@Socket.read_all].
   */
  signals[READY_READ] =
    g_signal_new ("ready-read", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  G_STRUCT_OFFSET (QipcSocketClass, ready_read),
                  NULL, NULL, NULL, G_TYPE_NONE, 0);

  /**
   * QipcSocket::bytes-written:
   * @self: the socket
   * @bytes: how many bytes were handed to the system since the last emission
   *
   * Queued data was written. Emitted from the main context, never from
   * inside [method@Socket.write].
   */
  signals[BYTES_WRITTEN] =
    g_signal_new ("bytes-written", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  G_STRUCT_OFFSET (QipcSocketClass, bytes_written),
                  NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_INT64);

  /**
   * QipcSocket::state-changed:
   * @self: the socket
   * @state: the new state
   *
   * The state changed.
   */
  signals[STATE_CHANGED] =
    g_signal_new ("state-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  G_STRUCT_OFFSET (QipcSocketClass, state_changed),
                  NULL, NULL, NULL, G_TYPE_NONE, 1, QIPC_TYPE_SOCKET_STATE);

  /**
   * QipcSocket::error-occurred:
   * @self: the socket
   * @error: what went wrong, in the %QIPC_SOCKET_ERROR domain
   *
   * An error occurred; [method@Socket.get_error] returns it afterwards.
   * As in Qt, the socket may not be unconnected yet when this is emitted:
   * reconnect from [signal@Socket::state-changed] or later, not from here.
   */
  signals[ERROR_OCCURRED] =
    g_signal_new ("error-occurred", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  G_STRUCT_OFFSET (QipcSocketClass, error_occurred),
                  NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_ERROR);
}

static void
qipc_socket_init (QipcSocket *self)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  priv->context = g_main_context_ref_thread_default ();
  priv->cancellable = g_cancellable_new ();
  priv->fd = -1;
  g_queue_init (&priv->write_queue);
}

static WriteChunk *
write_chunk_new (void)
{
  WriteChunk *chunk = g_new0 (WriteChunk, 1);

  chunk->link.data = chunk;
  return chunk;
}

/* The chunks hold their own links: g_queue_clear_full() would free
 * them as separate allocations. */
static void
write_queue_clear (GQueue *queue)
{
  GList *link;

  while ((link = g_queue_pop_head_link (queue)) != NULL)
    write_chunk_free (link->data);
}

static void
write_chunk_free (WriteChunk *chunk)
{
  g_clear_pointer (&chunk->bytes, g_bytes_unref);
  g_clear_pointer (&chunk->gathered, g_free);
  g_clear_object (&chunk->fds);
  g_free (chunk);
}

static const guint8 *
write_chunk_get_data (WriteChunk *chunk,
                      gsize      *size)
{
  if (chunk->gathered != NULL)
    {
      *size = chunk->length;
      return chunk->gathered;
    }
  return g_bytes_get_data (chunk->bytes, size);
}

static GSource *
attach_source (QipcSocket  *self,
               GSource     *source,
               GSourceFunc  func,
               const char  *name)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  g_source_set_callback (source, func, self, NULL);
  g_source_set_static_name (source, name);
  /* Otherwise GLib blocks the source around each dispatch, taking its fd
   * out of the poll set and putting it back: two wake-ups of the
   * context, two system calls, per message. */
  g_source_set_can_recurse (source, TRUE);
  g_source_attach (source, priv->context);
  return source;
}

static void
clear_source (GSource **source)
{
  if (*source == NULL)
    return;
  g_source_destroy (*source);
  g_clear_pointer (source, g_source_unref);
}

static gboolean fd_readable_cb (int fd, GIOCondition condition, gpointer user_data);
static gboolean stream_readable_cb (GObject *stream, gpointer user_data);
static gboolean fd_writable_cb (int fd, GIOCondition condition, gpointer user_data);
static gboolean stream_writable_cb (GObject *stream, gpointer user_data);
static void polled_readable (GIOCondition condition, gpointer user_data);
static void polled_writable (GIOCondition condition, gpointer user_data);

/* Watches for @condition (G_IO_IN or G_IO_OUT). With @on_fd (a subclass
 * does its own I/O on the GSocket) the descriptor gets a source of its
 * own while the context has few, else goes into the context's poller,
 * which polls one epoll descriptor however many sockets there are (and
 * NULL is returned). Without, the pollable stream is watched, which also
 * sees what a TLS layer buffers. *@direct says whether the source took
 * one of the context's direct places. */
static GSource *
watch (QipcSocket   *self,
       GIOCondition  condition,
       gboolean      on_fd,
       gboolean     *direct)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);
  gboolean in = condition == G_IO_IN;
  GSourceFunc callback;
  GSource *source;

  *direct = on_fd && _qipc_poller_take_direct (priv->context);
  if (on_fd && !*direct &&
      _qipc_poller_fd_watch (&priv->polled, priv->context, priv->fd, condition,
                             in ? polled_readable : polled_writable, self))
    return NULL;
  if (on_fd)
    {
      /* A bare fd source (GSocket's own adds timeout handling that a
       * socket without timeout never uses). */
      source = g_unix_fd_source_new (priv->fd, condition);
      callback = in ? G_SOURCE_FUNC (fd_readable_cb) : G_SOURCE_FUNC (fd_writable_cb);
    }
  else if (in)
    {
      source = g_pollable_input_stream_create_source (
                 G_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (priv->stream)), NULL);
      callback = G_SOURCE_FUNC (stream_readable_cb);
    }
  else
    {
      source = g_pollable_output_stream_create_source (
                 G_POLLABLE_OUTPUT_STREAM (g_io_stream_get_output_stream (priv->stream)), NULL);
      callback = G_SOURCE_FUNC (stream_writable_cb);
    }
  return attach_source (self, source, callback, in ? "[qipc] socket read" : "[qipc] socket write");
}

/* ------------------------------------------------------------------ */
/* State and errors                                                    */

void
_qipc_socket_set_state (QipcSocket      *self,
                        QipcSocketState  state)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  if (priv->state == state)
    return;
  priv->state = state;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
  g_signal_emit (self, signals[STATE_CHANGED], 0, state);
}

void
_qipc_socket_set_error_from_gio (GError       **error,
                                 const GError  *gio_error,
                                 const char    *what)
{
  QipcSocketError code = QIPC_SOCKET_ERROR_FAILED;

  if (gio_error->domain == G_IO_ERROR)
    {
      switch (gio_error->code)
        {
        case G_IO_ERROR_CONNECTION_REFUSED:
          code = QIPC_SOCKET_ERROR_CONNECTION_REFUSED;
          break;
        case G_IO_ERROR_NOT_FOUND:
          code = QIPC_SOCKET_ERROR_SERVER_NOT_FOUND;
          break;
        case G_IO_ERROR_HOST_NOT_FOUND:
          code = QIPC_SOCKET_ERROR_HOST_NOT_FOUND;
          break;
        case G_IO_ERROR_PERMISSION_DENIED:
          code = QIPC_SOCKET_ERROR_SOCKET_ACCESS;
          break;
        case G_IO_ERROR_TIMED_OUT:
          code = QIPC_SOCKET_ERROR_SOCKET_TIMEOUT;
          break;
        case G_IO_ERROR_ADDRESS_IN_USE:
          code = QIPC_SOCKET_ERROR_ADDRESS_IN_USE;
          break;
        case G_IO_ERROR_CONNECTION_CLOSED:
        case G_IO_ERROR_NOT_CONNECTED:
          code = QIPC_SOCKET_ERROR_REMOTE_HOST_CLOSED;
          break;
        case G_IO_ERROR_NETWORK_UNREACHABLE:
        case G_IO_ERROR_HOST_UNREACHABLE:
          code = QIPC_SOCKET_ERROR_NETWORK;
          break;
        case G_IO_ERROR_NO_SPACE:
        case G_IO_ERROR_TOO_MANY_OPEN_FILES:
        case G_IO_ERROR_MESSAGE_TOO_LARGE:
          code = QIPC_SOCKET_ERROR_SOCKET_RESOURCE;
          break;
        case G_IO_ERROR_INVALID_ARGUMENT:
          code = QIPC_SOCKET_ERROR_ADDRESS_NOT_AVAILABLE;
          break;
        case G_IO_ERROR_CANCELLED:
        case G_IO_ERROR_CLOSED:
          code = QIPC_SOCKET_ERROR_OPERATION;
          break;
        default:
          break;
        }
    }
  else if (gio_error->domain == G_RESOLVER_ERROR)
    code = QIPC_SOCKET_ERROR_HOST_NOT_FOUND;
  else if (gio_error->domain == G_TLS_ERROR)
    code = QIPC_SOCKET_ERROR_TLS_HANDSHAKE_FAILED;
  else if (gio_error->domain == QIPC_SOCKET_ERROR)
    code = gio_error->code;

  g_set_error (error, QIPC_SOCKET_ERROR, code, "%s: %s", what, gio_error->message);
}

static void
record_error (QipcSocket   *self,
              const GError *error)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  g_clear_error (&priv->error);
  priv->error = g_error_copy (error);
  g_signal_emit (self, signals[ERROR_OCCURRED], 0, priv->error);
}

/* Drops the stream and everything waiting to be written; the read
 * buffer stays readable. Emits disconnected if there was a connection. */
static void
drop_connection (QipcSocket *self)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);
  gboolean was_connected = priv->stream != NULL;

  stop_reading (self);
  stop_writing (self);
  write_queue_clear (&priv->write_queue);
  priv->bytes_to_write = 0;
  priv->written_unreported = 0;
  g_clear_error (&priv->pending_error);

  g_cancellable_cancel (priv->cancellable);
  g_clear_object (&priv->cancellable);
  priv->cancellable = g_cancellable_new ();

  if (priv->stream != NULL)
    g_io_stream_close_async (priv->stream, G_PRIORITY_DEFAULT, NULL, NULL, NULL);
  g_clear_object (&priv->stream);
  g_clear_object (&priv->socket);
  priv->fd = -1;
  priv->read_func = NULL;
  priv->write_func = NULL;
  priv->reading_paused = FALSE;

  g_object_ref (self);
  _qipc_socket_set_state (self, QIPC_SOCKET_STATE_UNCONNECTED);
  if (was_connected)
    g_signal_emit (self, signals[DISCONNECTED], 0);
  g_object_unref (self);
}

void
_qipc_socket_fail (QipcSocket   *self,
                   const GError *error)
{
  g_object_ref (self);
  record_error (self, error);
  drop_connection (self);
  g_object_unref (self);
}

void
_qipc_socket_report_error (QipcSocket   *self,
                           const GError *error)
{
  g_object_ref (self);
  record_error (self, error);
  g_object_unref (self);
}

static void
fail_from_gio (QipcSocket   *self,
               const GError *gio_error,
               const char   *what)
{
  g_autoptr(GError) error = NULL;

  _qipc_socket_set_error_from_gio (&error, gio_error, what);
  _qipc_socket_fail (self, error);
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */

static gsize
buffered (QipcSocketPrivate *priv)
{
  return priv->read_length - priv->read_start;
}

static gboolean
read_buffer_full (QipcSocketPrivate *priv)
{
  return priv->read_buffer_size > 0 && buffered (priv) >= priv->read_buffer_size;
}

static gssize
read_from_stream (QipcSocket  *self,
                  guint8      *buffer,
                  gsize        size,
                  GError     **error)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);
  GInputStream *input = g_io_stream_get_input_stream (priv->stream);

  return g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (input),
                                                   buffer, size, NULL, error);
}

static void
handle_end_of_stream (QipcSocket *self)
{
  g_autoptr(GError) error = g_error_new_literal (QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_REMOTE_HOST_CLOSED,
                                                 "The remote host closed the connection");

  _qipc_socket_fail (self, error);
}

/* Reads what the system has, up to the buffer limit. Returns how many
 * bytes arrived; the end of the stream or a read error is returned in
 * @end or @error, to be handled only after the application has been told
 * about the data that came before it. */
static gsize
read_available (QipcSocket  *self,
                gboolean    *end,
                GError     **error)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);
  gsize received = 0;

  while (priv->stream != NULL && !read_buffer_full (priv))
    {
      g_autoptr(GError) local_error = NULL;
      gsize room = READ_CHUNK_SIZE;
      gssize n;

      if (priv->read_buffer_size > 0)
        room = MIN (room, priv->read_buffer_size - buffered (priv));

      /* Unread bytes move to the front only when that is cheap. */
      if (priv->read_start > 0 && priv->read_start >= buffered (priv))
        {
          memmove (priv->read_data, priv->read_data + priv->read_start, buffered (priv));
          priv->read_length = buffered (priv);
          priv->read_start = 0;
        }
      if (priv->read_length + room > priv->read_allocated)
        {
          priv->read_allocated = MAX (priv->read_length + room, 2 * priv->read_allocated);
          priv->read_data = g_realloc (priv->read_data, priv->read_allocated);
        }

      n = priv->read_func (self, priv->read_data + priv->read_length, room, &local_error);
      priv->read_length += MAX (n, 0);

      if (n > 0)
        {
          received += n;
          if ((gsize) n < room)
            break;
          continue;
        }
      if (n == 0)
        *end = TRUE;
      else if (!g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        g_propagate_error (error, g_steal_pointer (&local_error));
      break;
    }

  return received;
}

static gboolean
readable (QipcSocket *self)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);
  g_autoptr(GError) error = NULL;
  gboolean end = FALSE;
  gsize received;

  g_object_ref (self);
  received = read_available (self, &end, &error);
  priv->total_received += received;
  priv->last_received = received;
  if (read_buffer_full (priv))
    stop_reading (self);
  /* As in Qt, not emitted again from inside a handler that runs the
   * context (a wait_for_ready_read() there sees the data arrive). */
  if (received > 0 && !priv->emitting_ready_read)
    {
      priv->emitting_ready_read = TRUE;
      if (priv->ready_func != NULL)
        priv->ready_func (self, priv->ready_data);
      else
        g_signal_emit (self, signals[READY_READ], 0);
      priv->emitting_ready_read = FALSE;
    }
  /* A handler may have closed the socket meanwhile. */
  if (priv->stream != NULL && end)
    handle_end_of_stream (self);
  else if (priv->stream != NULL && error != NULL)
    fail_from_gio (self, error, "Cannot read");
  g_object_unref (self);

  return G_SOURCE_CONTINUE;
}

/* Fd and pollable-stream sources call back with different signatures;
 * both end up in readable() and writable(). */
static gboolean
fd_readable_cb (int           fd,
                GIOCondition  condition,
                gpointer      user_data)
{
  return readable (user_data);
}

static gboolean
stream_readable_cb (GObject  *stream,
                    gpointer  user_data)
{
  return readable (user_data);
}

static void
polled_readable (GIOCondition condition,
                 gpointer     user_data)
{
  readable (user_data);
}

static gboolean
watching (QipcSocketPrivate *priv,
          GIOCondition       condition)
{
  return (condition == G_IO_IN ? priv->read_source : priv->write_source) != NULL ||
         _qipc_poller_fd_watches (priv->polled, condition);
}

static void
start_reading (QipcSocket *self)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  if (watching (priv, G_IO_IN) || priv->stream == NULL || priv->reading_paused ||
      read_buffer_full (priv))
    return;

  priv->read_source = watch (self, G_IO_IN, priv->read_func != read_from_stream, &priv->read_direct);
}

static void
stop_reading (QipcSocket *self)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  clear_source (&priv->read_source);
  if (priv->read_direct)
    _qipc_poller_give_direct (priv->context);
  priv->read_direct = FALSE;
  priv->polled = _qipc_poller_fd_unwatch (priv->polled, G_IO_IN);
}

/* After the application took data out of a full buffer. */
static void
consumed (QipcSocket *self)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  if (buffered (priv) == 0)
    priv->read_length = priv->read_start = 0;
  if (!watching (priv, G_IO_IN) && priv->stream != NULL)
    start_reading (self);
}

/* Frees the read buffer if it is large, empty and not @in_use; TRUE
 * when a large buffer stays. */
static gboolean
free_large_read_buffer (QipcSocketPrivate *priv,
                        gboolean           in_use)
{
  if (priv->read_allocated <= READ_KEEP_SIZE)
    return FALSE;
  if (in_use || buffered (priv) > 0)
    return TRUE;
  g_clear_pointer (&priv->read_data, g_free);
  priv->read_allocated = priv->read_length = priv->read_start = 0;
  return FALSE;
}

gboolean
_qipc_socket_release_read_buffer (QipcSocket *self)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  /* A peer whose last read was large is streaming: freeing its buffer
   * now would cost an mmap and fresh pages on every read. Its buffer goes
   * with a later, smaller read, or with _qipc_socket_trim_read_buffer()
   * once the peer is quiet. */
  return free_large_read_buffer (priv, priv->last_received >= READ_KEEP_SIZE);
}

gboolean
_qipc_socket_trim_read_buffer (QipcSocket *self)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);
  gboolean quiet = priv->total_received == priv->received_at_trim;

  priv->received_at_trim = priv->total_received;
  return free_large_read_buffer (priv, !quiet);
}

gsize
_qipc_socket_get_read_allocated (QipcSocket *self)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  return priv->read_allocated;
}

const guint8 *
_qipc_socket_peek_buffer (QipcSocket *self,
                          gsize      *size)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  *size = buffered (priv);
  return *size > 0 ? priv->read_data + priv->read_start : NULL;
}

void
_qipc_socket_consume (QipcSocket *self,
                      gsize       size)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  g_return_if_fail (size <= buffered (priv));
  priv->read_start += size;
  consumed (self);
}

void
_qipc_socket_pause_reading (QipcSocket *self,
                            gboolean    paused)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  /* Paused means no I/O at all: a TLS handshake owns the stream, and
   * neither plain reads nor plain writes may reach it meanwhile. */
  priv->reading_paused = paused;
  if (paused)
    {
      stop_reading (self);
      stop_writing (self);
      return;
    }
  start_reading (self);
  if (priv->stream != NULL && !g_queue_is_empty (&priv->write_queue))
    write_queued (self);
}

/* ------------------------------------------------------------------ */
/* Writing                                                             */

static gssize
write_to_stream (QipcSocket    *self,
                 const guint8  *data,
                 gsize          size,
                 GUnixFDList   *fds,
                 GError       **error)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);
  GOutputStream *output = g_io_stream_get_output_stream (priv->stream);

  return g_pollable_output_stream_write_nonblocking (G_POLLABLE_OUTPUT_STREAM (output),
                                                     data, size, NULL, error);
}

static gboolean
writable (QipcSocket *self)
{
  g_object_ref (self);
  write_queued (self);
  g_object_unref (self);
  return G_SOURCE_CONTINUE;
}

static gboolean
fd_writable_cb (int           fd,
                GIOCondition  condition,
                gpointer      user_data)
{
  return writable (user_data);
}

static void
polled_writable (GIOCondition condition,
                 gpointer     user_data)
{
  writable (user_data);
}

static gboolean
stream_writable_cb (GObject  *stream,
                    gpointer  user_data)
{
  return writable (user_data);
}

static void
retire_chunk (QipcSocketPrivate *priv,
              WriteChunk        *chunk)
{
  if (chunk->gathered == NULL || chunk->fds != NULL || priv->spare_chunk != NULL)
    {
      write_chunk_free (chunk);
      return;
    }
  chunk->length = 0;
  chunk->offset = 0;
  priv->spare_chunk = chunk;
}

static void
wait_until_writable (QipcSocket *self)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  if (watching (priv, G_IO_OUT))
    return;

  priv->write_source = watch (self, G_IO_OUT, priv->write_func != write_to_stream,
                              &priv->write_direct);
}

static void
stop_writing (QipcSocket *self)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  clear_source (&priv->write_source);
  if (priv->write_direct)
    _qipc_poller_give_direct (priv->context);
  priv->write_direct = FALSE;
  priv->polled = _qipc_poller_fd_unwatch (priv->polled, G_IO_OUT);
}

static gboolean
wants_bytes_written (QipcSocket *self)
{
  return QIPC_SOCKET_GET_CLASS (self)->bytes_written != NULL ||
         g_signal_has_handler_pending (self, signals[BYTES_WRITTEN], 0, TRUE);
}

/* Counts written bytes for the next bytes-written, which the pending
 * source emits; nothing is counted when nobody listens. */
static void
report_written (QipcSocket *self,
                gsize       written)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  if (written > 0 && wants_bytes_written (self))
    priv->written_unreported += written;
}

static void finish_closing (QipcSocket *self);

/* Writes queued chunks until the system would block. Returns how many
 * bytes went out. A write error fails the socket at once, or, with
 * @defer_errors (from the pending source's prepare, where no signal may
 * run), when the pending source dispatches. */
static gsize
write_some (QipcSocket *self,
            gboolean    defer_errors)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);
  gsize written = 0;
  WriteChunk *chunk;

  while (priv->stream != NULL && priv->pending_error == NULL &&
         (chunk = g_queue_peek_head (&priv->write_queue)) != NULL)
    {
      g_autoptr(GError) error = NULL;
      gsize size;
      const guint8 *data = write_chunk_get_data (chunk, &size);
      gssize n = priv->write_func (self, data + chunk->offset, size - chunk->offset,
                                   chunk->offset == 0 ? chunk->fds : NULL, &error);

      if (n < 0)
        {
          if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            break;
          report_written (self, written);
          if (defer_errors)
            {
              priv->pending_error = g_steal_pointer (&error);
              need_pending_source (self);
            }
          else
            fail_from_gio (self, error, "Cannot write");
          return written;
        }

      chunk->offset += n;
      written += n;
      priv->bytes_to_write -= n;
      if (chunk->offset == size)
        retire_chunk (priv, g_queue_pop_head_link (&priv->write_queue)->data);
    }

  report_written (self, written);
  /* bytes-written to emit, or a close to finish. */
  if (pending_needs_dispatch (priv))
    need_pending_source (self);
  return written;
}

static void
write_queued (QipcSocket *self)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  if (priv->reading_paused)
    return;
  write_some (self, FALSE);
  if (priv->stream == NULL || priv->reading_paused)
    return;

  if (g_queue_is_empty (&priv->write_queue))
    {
      stop_writing (self);
      if (priv->state == QIPC_SOCKET_STATE_CLOSING)
        finish_closing (self);
    }
  else
    wait_until_writable (self);
}

/* ------------------------------------------------------------------ */
/* The pending source                                                  */

typedef struct
{
  GSource source;
  QipcSocket *self;
} PendingSource;

static gboolean
pending_needs_dispatch (QipcSocketPrivate *priv)
{
  return priv->pending_error != NULL || priv->written_unreported > 0 ||
         (priv->state == QIPC_SOCKET_STATE_CLOSING && g_queue_is_empty (&priv->write_queue));
}

/* GLib walks every source of a context on each iteration, so a broker
 * with a thousand idle clients would pay for a thousand pending sources
 * on every message: a socket that had nothing to send for this many
 * iterations of its context lets its source go, and
 * need_pending_source() makes it again. Making one costs about what a
 * few dozen walks over it do; counting iterations, not time, drops the
 * sources soonest in the busiest contexts, where they cost the most. */
#define PENDING_SOURCE_IDLE_ITERATIONS 256

static void
forget_pending_source_when_idle (QipcSocket *self,
                                 GSource    *source)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  if (++priv->pending_idle < PENDING_SOURCE_IDLE_ITERATIONS)
    return;
  /* GLib holds the source while this runs, and skips it once destroyed. */
  g_source_destroy (source);
  g_clear_pointer (&priv->pending_source, g_source_unref);
  priv->pending_idle = 0;
}

/* Sends what was queued since the last iteration, once, just before the
 * context polls: many writes leave in one system call, and nothing needs
 * waking up. Only plain I/O happens here; anything that may run a
 * handler waits for dispatch. */
static gboolean
pending_prepare (GSource *source,
                 int     *timeout)
{
  QipcSocket *self = ((PendingSource *) source)->self;
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  *timeout = -1;
  if (priv->stream != NULL && !watching (priv, G_IO_OUT) && !priv->reading_paused &&
      priv->state == QIPC_SOCKET_STATE_CONNECTED && !g_queue_is_empty (&priv->write_queue))
    {
      write_some (self, TRUE);
      if (priv->stream != NULL && priv->pending_error == NULL && !priv->reading_paused &&
          !g_queue_is_empty (&priv->write_queue))
        wait_until_writable (self);
    }
  if (pending_needs_dispatch (priv))
    return TRUE;
  if (g_queue_is_empty (&priv->write_queue))
    forget_pending_source_when_idle (self, source);
  return FALSE;
}

static gboolean
pending_check (GSource *source)
{
  QipcSocket *self = ((PendingSource *) source)->self;

  return pending_needs_dispatch (qipc_socket_get_instance_private (self));
}

static gboolean
pending_dispatch (GSource     *source,
                  GSourceFunc  callback,
                  gpointer     user_data)
{
  QipcSocket *self = ((PendingSource *) source)->self;
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);
  gint64 written = priv->written_unreported;

  g_object_ref (self);
  priv->written_unreported = 0;
  if (written > 0)
    g_signal_emit (self, signals[BYTES_WRITTEN], 0, written);
  if (priv->pending_error != NULL)
    {
      g_autoptr(GError) error = g_steal_pointer (&priv->pending_error);

      fail_from_gio (self, error, "Cannot write");
    }
  else if (priv->state == QIPC_SOCKET_STATE_CLOSING && g_queue_is_empty (&priv->write_queue))
    finish_closing (self);
  g_object_unref (self);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs pending_source_funcs = {
  .prepare = pending_prepare,
  .check = pending_check,
  .dispatch = pending_dispatch,
};

/* Every write, and every write_some() that leaves something to report,
 * comes here: the pending source is made again if it was dropped. */
static void
need_pending_source (QipcSocket *self)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);
  GSource *source;

  priv->pending_idle = 0;
  if (priv->pending_source != NULL)
    return;
  source = g_source_new (&pending_source_funcs, sizeof (PendingSource));
  ((PendingSource *) source)->self = self;
  g_source_set_static_name (source, "[qipc] socket pending writes");
  g_source_set_can_recurse (source, TRUE);
  g_source_attach (source, priv->context);
  priv->pending_source = source;
}

static gboolean
check_writable (QipcSocket  *self,
                GError     **error)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  if (priv->state == QIPC_SOCKET_STATE_CONNECTED ||
      priv->state == QIPC_SOCKET_STATE_CONNECTING ||
      priv->state == QIPC_SOCKET_STATE_HOST_LOOKUP)
    return TRUE;
  g_set_error_literal (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_OPERATION,
                       "Cannot write: the socket is not connected");
  return FALSE;
}

/* Room for @size (at most COALESCE_MAX_WRITE) bytes at the end of the
 * queue, in the chunk that gathers small writes.
 *
 * Nothing is sent here: the pending source sends everything queued in
 * this iteration of the context together, before the context polls
 * again, as Qt sends when its event loop runs. */
static guint8 *
reserve_coalesced (QipcSocket *self,
                   gsize       size)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);
  WriteChunk *chunk = g_queue_peek_tail (&priv->write_queue);
  guint8 *room;

  need_pending_source (self);
  if (chunk == NULL || chunk->gathered == NULL || chunk->length + size > COALESCE_BUFFER_SIZE)
    {
      chunk = g_steal_pointer (&priv->spare_chunk);
      if (chunk == NULL)
        {
          chunk = write_chunk_new ();
          chunk->allocated = COALESCE_MAX_WRITE;
          chunk->gathered = g_malloc (chunk->allocated);
        }
      g_queue_push_tail_link (&priv->write_queue, &chunk->link);
    }
  if (chunk->length + size > chunk->allocated)
    {
      /* Doubling from 4 KiB, so an idle connection keeps a small one. */
      chunk->allocated = MIN (MAX (chunk->allocated * 2, chunk->length + size),
                              COALESCE_BUFFER_SIZE);
      chunk->gathered = g_realloc (chunk->gathered, chunk->allocated);
    }
  room = chunk->gathered + chunk->length;
  chunk->length += size;
  priv->bytes_to_write += size;
  return room;
}

/* Queues @size bytes at @data; @bytes, when given, holds them and is
 * kept instead of copying a large write. */
static gboolean
queue_write (QipcSocket    *self,
             const guint8  *data,
             gsize          size,
             GBytes        *bytes,
             GUnixFDList   *fds,
             GError       **error)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);
  WriteChunk *chunk;

  if (!check_writable (self, error))
    return FALSE;
  if (size == 0)
    return TRUE;
  if (fds == NULL && size <= COALESCE_MAX_WRITE)
    {
      memcpy (reserve_coalesced (self, size), data, size);
      return TRUE;
    }

  priv->bytes_to_write += size;
  chunk = write_chunk_new ();
  chunk->bytes = bytes != NULL ? g_bytes_ref (bytes) : g_bytes_new (data, size);
  chunk->fds = fds != NULL ? g_object_ref (fds) : NULL;
  g_queue_push_tail_link (&priv->write_queue, &chunk->link);
  need_pending_source (self);
  return TRUE;
}

guint8 *
_qipc_socket_write_reserve (QipcSocket *self,
                            gsize       size)
{
  g_return_val_if_fail (size > 0 && size <= COALESCE_MAX_WRITE, NULL);

  if (!check_writable (self, NULL))
    return NULL;
  return reserve_coalesced (self, size);
}

gboolean
_qipc_socket_queue_write (QipcSocket   *self,
                          GBytes       *bytes,
                          GUnixFDList  *fds,
                          GError      **error)
{
  gsize size;
  const guint8 *data = g_bytes_get_data (bytes, &size);

  return queue_write (self, data, size, bytes, fds, error);
}

/* ------------------------------------------------------------------ */
/* For subclasses and servers                                          */

/* A socket that only the library reads (the bus's, the broker's
 * clients') is told of new data by a plain call: emitting ::ready-read
 * cost about 700 instructions, a tenth of a broker's work per message
 * in a round trip. NULL goes back to the signal. */
void
_qipc_socket_set_ready_func (QipcSocket          *self,
                             QipcSocketReadyFunc  func,
                             gpointer             user_data)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  priv->ready_func = func;
  priv->ready_data = user_data;
}

void
_qipc_socket_set_io_error (GError     **error,
                           int          errsv,
                           const char  *what)
{
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv), "%s: %s", what, g_strerror (errsv));
}

/* GSocket's wrappers (type checks, the closed and timeout checks that a
 * non-blocking socket never needs) cost about as much as the system call
 * in a ping-pong of small messages: with nothing between the socket and
 * the stream, the calls are made on the descriptor. */
gssize
_qipc_socket_fd_read (QipcSocket  *self,
                      guint8      *buffer,
                      gsize        size,
                      GError     **error)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);
  gssize n;

  do
    n = recv (priv->fd, buffer, size, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    _qipc_socket_set_io_error (error, errno, "Error receiving data");
  return n;
}

gssize
_qipc_socket_fd_write (QipcSocket    *self,
                       const guint8  *data,
                       gsize          size,
                       GUnixFDList   *fds,
                       GError       **error)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);
  gssize n;

  g_return_val_if_fail (fds == NULL, -1);

  do
    n = send (priv->fd, data, size, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    _qipc_socket_set_io_error (error, errno, "Error sending data");
  return n;
}

void
_qipc_socket_set_io_funcs (QipcSocket          *self,
                           QipcSocketReadFunc   read_func,
                           QipcSocketWriteFunc  write_func)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);
  gboolean was_reading = watching (priv, G_IO_IN);

  stop_reading (self);
  priv->read_func = read_func != NULL ? read_func : read_from_stream;
  priv->write_func = write_func != NULL ? write_func : write_to_stream;
  if (was_reading)
    start_reading (self);
}

void
_qipc_socket_attach_stream (QipcSocket *self,
                            GIOStream  *stream,
                            GSocket    *socket)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  g_return_if_fail (priv->stream == NULL);

  priv->stream = g_object_ref (stream);
  priv->socket = socket != NULL ? g_object_ref (socket) : NULL;
  if (priv->socket != NULL)
    {
      g_socket_set_blocking (priv->socket, FALSE);
      priv->fd = g_socket_get_fd (priv->socket);
    }
  if (priv->read_func == NULL)
    priv->read_func = read_from_stream;
  if (priv->write_func == NULL)
    priv->write_func = write_to_stream;

  g_object_ref (self);
  _qipc_socket_set_state (self, QIPC_SOCKET_STATE_CONNECTED);
  start_reading (self);
  g_signal_emit (self, signals[CONNECTED], 0);
  /* What was written while connecting goes out now. */
  if (priv->stream != NULL && !g_queue_is_empty (&priv->write_queue))
    write_queued (self);
  g_object_unref (self);
}

void
_qipc_socket_replace_stream (QipcSocket *self,
                             GIOStream  *stream)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  g_return_if_fail (priv->stream != NULL);

  stop_reading (self);
  stop_writing (self);
  g_set_object (&priv->stream, stream);
  priv->read_func = read_from_stream;
  priv->write_func = write_to_stream;
  start_reading (self);
  if (!g_queue_is_empty (&priv->write_queue))
    write_queued (self);
}

GIOStream *
_qipc_socket_get_stream (QipcSocket *self)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  return priv->stream;
}

GSocket *
_qipc_socket_get_gsocket (QipcSocket *self)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  return priv->socket;
}

/* The descriptor of the GSocket, for system calls made directly; -1
 * when there is none. */
int
_qipc_socket_get_fd (QipcSocket *self)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  return priv->fd;
}

GCancellable *
_qipc_socket_get_cancellable (QipcSocket *self)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  return priv->cancellable;
}

GMainContext *
_qipc_socket_get_context (QipcSocket *self)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  return priv->context;
}

/* ------------------------------------------------------------------ */
/* Public API                                                          */

/**
 * qipc_socket_get_state: (get-property state)
 * @self: a #QipcSocket
 *
 * Gets the state of the connection.
 *
 * Returns: the state
 */
QipcSocketState
qipc_socket_get_state (QipcSocket *self)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  g_return_val_if_fail (is_socket (self), QIPC_SOCKET_STATE_UNCONNECTED);

  return priv->state;
}

/**
 * qipc_socket_get_error:
 * @self: a #QipcSocket
 *
 * Gets the last error [signal@Socket::error-occurred] reported.
 *
 * Returns: (nullable) (transfer none): the last error, or %NULL
 */
const GError *
qipc_socket_get_error (QipcSocket *self)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  g_return_val_if_fail (is_socket (self), NULL);

  return priv->error;
}

/**
 * qipc_socket_get_read_buffer_size: (get-property read-buffer-size)
 * @self: a #QipcSocket
 *
 * Gets the limit of the read buffer.
 *
 * Returns: the most bytes held for the application, 0 for no limit
 */
gsize
qipc_socket_get_read_buffer_size (QipcSocket *self)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  g_return_val_if_fail (is_socket (self), 0);

  return priv->read_buffer_size;
}

/**
 * qipc_socket_set_read_buffer_size: (set-property read-buffer-size)
 * @self: a #QipcSocket
 * @size: the most bytes to hold for the application, 0 for no limit
 *
 * Limits the read buffer. A buffer that already holds more keeps its
 * data, and the socket reads again once the application took enough.
 */
void
qipc_socket_set_read_buffer_size (QipcSocket *self,
                                  gsize       size)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  g_return_if_fail (is_socket (self));

  if (priv->read_buffer_size == size)
    return;
  priv->read_buffer_size = size;
  if (read_buffer_full (priv))
    stop_reading (self);
  else
    start_reading (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_READ_BUFFER_SIZE]);
}

/**
 * qipc_socket_bytes_available:
 * @self: a #QipcSocket
 *
 * Gets how many received bytes wait to be read.
 *
 * Returns: the number of bytes in the read buffer
 */
gsize
qipc_socket_bytes_available (QipcSocket *self)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  g_return_val_if_fail (is_socket (self), 0);

  return buffered (priv);
}

/* Copies up to @size buffered bytes to @buffer, and with @remove takes
 * them out of the read buffer. Returns how many. */
static gsize
copy_out (QipcSocket *self,
          guint8     *buffer,
          gsize       size,
          gboolean    remove)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  size = MIN (size, buffered (priv));
  if (size == 0)
    return 0;
  memcpy (buffer, priv->read_data + priv->read_start, size);
  if (remove)
    {
      priv->read_start += size;
      consumed (self);
    }
  return size;
}

static GBytes *
take (QipcSocket *self,
      gsize       size,
      gboolean    remove)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);
  guint8 *data;

  size = MIN (size, buffered (priv));
  data = g_malloc (size);
  copy_out (self, data, size, remove);
  return g_bytes_new_take (data, size);
}

/**
 * qipc_socket_read:
 * @self: a #QipcSocket
 * @max_size: the most bytes to read
 *
 * Takes up to @max_size bytes out of the read buffer. Never blocks.
 *
 * Returns: (transfer full): the bytes read, empty when none are there
 */
GBytes *
qipc_socket_read (QipcSocket *self,
                  gsize       max_size)
{
  g_return_val_if_fail (is_socket (self), NULL);

  return take (self, max_size, TRUE);
}

/**
 * qipc_socket_read_all:
 * @self: a #QipcSocket
 *
 * Takes everything out of the read buffer. Never blocks.
 *
 * Returns: (transfer full): the bytes read, empty when none are there
 */
GBytes *
qipc_socket_read_all (QipcSocket *self)
{
  g_return_val_if_fail (is_socket (self), NULL);

  return take (self, G_MAXSIZE, TRUE);
}

/**
 * qipc_socket_peek:
 * @self: a #QipcSocket
 * @max_size: the most bytes to look at
 *
 * Copies up to @max_size bytes from the read buffer without taking them.
 *
 * Returns: (transfer full): the bytes, empty when none are there
 */
GBytes *
qipc_socket_peek (QipcSocket *self,
                  gsize       max_size)
{
  g_return_val_if_fail (is_socket (self), NULL);

  return take (self, max_size, FALSE);
}

/**
 * qipc_socket_read_data: (skip)
 * @self: a #QipcSocket
 * @buffer: where to copy the bytes
 * @size: the size of @buffer
 *
 * Takes up to @size bytes out of the read buffer into @buffer, as Qt's
 * `read(char *, qint64)`: the form of [method@Socket.read] that allocates
 * nothing, for code that reads many small messages. Bindings use
 * [method@Socket.read].
 *
 * Returns: how many bytes were copied, 0 when none are there
 */
gsize
qipc_socket_read_data (QipcSocket *self,
                       guint8     *buffer,
                       gsize       size)
{
  g_return_val_if_fail (is_socket (self), 0);
  g_return_val_if_fail (buffer != NULL || size == 0, 0);

  return copy_out (self, buffer, size, TRUE);
}

/**
 * qipc_socket_peek_data: (skip)
 * @self: a #QipcSocket
 * @buffer: where to copy the bytes
 * @size: the size of @buffer
 *
 * Copies up to @size bytes from the read buffer into @buffer without
 * taking them: the form of [method@Socket.peek] that allocates nothing.
 * Bindings use [method@Socket.peek].
 *
 * Returns: how many bytes were copied, 0 when none are there
 */
gsize
qipc_socket_peek_data (QipcSocket *self,
                       guint8     *buffer,
                       gsize       size)
{
  g_return_val_if_fail (is_socket (self), 0);
  g_return_val_if_fail (buffer != NULL || size == 0, 0);

  return copy_out (self, buffer, size, FALSE);
}

static gsize
line_length (QipcSocketPrivate *priv)
{
  const guint8 *start;
  const guint8 *newline;

  /* An empty buffer may have no memory at all: memchr (NULL, …), and
   * even NULL + 0, are undefined. */
  if (buffered (priv) == 0)
    return 0;
  start = priv->read_data + priv->read_start;
  newline = memchr (start, '\n', buffered (priv));
  return newline != NULL ? (gsize) (newline - start) + 1 : 0;
}

/**
 * qipc_socket_can_read_line:
 * @self: a #QipcSocket
 *
 * Tells whether a whole line (ending in `\n`) waits in the read buffer.
 *
 * Returns: %TRUE when [method@Socket.read_line] would return a whole line
 */
gboolean
qipc_socket_can_read_line (QipcSocket *self)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  g_return_val_if_fail (is_socket (self), FALSE);

  return line_length (priv) > 0;
}

/**
 * qipc_socket_read_line:
 * @self: a #QipcSocket
 * @max_size: the most bytes to return, 0 for no limit
 *
 * Takes one line out of the read buffer, with its `\n`: as Qt's
 * `readLine()`, it stops after the first `\n`, after @max_size bytes, or
 * at the end of what is buffered, whichever comes first.
 *
 * Returns: (transfer full): the line, empty when nothing is buffered
 */
GBytes *
qipc_socket_read_line (QipcSocket *self,
                       gsize       max_size)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);
  gsize length;

  g_return_val_if_fail (is_socket (self), NULL);

  length = line_length (priv);
  if (length == 0)
    length = buffered (priv);
  if (max_size > 0)
    length = MIN (length, max_size);
  return take (self, length, TRUE);
}

/**
 * qipc_socket_write:
 * @self: a #QipcSocket
 * @bytes: the data to send
 * @error: return location for a #GError
 *
 * Queues @bytes for sending and never blocks. Everything queued is sent
 * when the socket's main context next runs (small writes together, in one
 * system call), or by [method@Socket.flush], [method@Socket.close] or a
 * `wait_for_*` call, as in Qt; what the system does not take at once goes
 * out as the peer reads. Writing while the socket connects queues the
 * data until it is connected.
 *
 * Returns: %TRUE when queued, %FALSE with %QIPC_SOCKET_ERROR_OPERATION
 *   when the socket is not connected or connecting
 */
gboolean
qipc_socket_write (QipcSocket  *self,
                   GBytes      *bytes,
                   GError     **error)
{
  g_return_val_if_fail (is_socket (self), FALSE);
  g_return_val_if_fail (bytes != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return _qipc_socket_queue_write (self, bytes, NULL, error);
}

/**
 * qipc_socket_write_data:
 * @self: a #QipcSocket
 * @data: (array length=size): the bytes to send
 * @size: how many bytes @data holds
 * @error: return location for a #GError
 *
 * Queues a copy of @data for sending, as Qt's `write(const char *,
 * qint64)`: like [method@Socket.write], for callers that have no
 * #GBytes at hand. Small writes are gathered and sent together when the
 * main context next runs.
 *
 * Returns: %TRUE when queued, %FALSE with %QIPC_SOCKET_ERROR_OPERATION
 *   when the socket is not connected or connecting
 */
gboolean
qipc_socket_write_data (QipcSocket    *self,
                        const guint8  *data,
                        gsize          size,
                        GError       **error)
{
  g_return_val_if_fail (is_socket (self), FALSE);
  g_return_val_if_fail (data != NULL || size == 0, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return queue_write (self, data, size, NULL, NULL, error);
}

/**
 * qipc_socket_bytes_to_write:
 * @self: a #QipcSocket
 *
 * Gets how many queued bytes the system has not taken yet.
 *
 * Returns: the number of bytes waiting to be written
 */
gsize
qipc_socket_bytes_to_write (QipcSocket *self)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  g_return_val_if_fail (is_socket (self), 0);

  return priv->bytes_to_write;
}

/**
 * qipc_socket_flush:
 * @self: a #QipcSocket
 *
 * Writes as much of the queue as the system takes now, without blocking.
 *
 * Returns: %TRUE if any byte was written
 */
gboolean
qipc_socket_flush (QipcSocket *self)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);
  gsize written;

  g_return_val_if_fail (is_socket (self), FALSE);

  if (priv->stream == NULL || priv->reading_paused)
    return FALSE;
  written = write_some (self, FALSE);
  if (priv->stream != NULL && !g_queue_is_empty (&priv->write_queue))
    wait_until_writable (self);
  return written > 0;
}

static void
finish_closing (QipcSocket *self)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  priv->read_length = priv->read_start = 0;
  drop_connection (self);
}

/**
 * qipc_socket_close:
 * @self: a #QipcSocket
 *
 * Closes the connection once everything queued is written (the state is
 * %QIPC_SOCKET_STATE_CLOSING meanwhile), then emits
 * [signal@Socket::disconnected]. Unread received data is dropped.
 */
void
qipc_socket_close (QipcSocket *self)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  g_return_if_fail (is_socket (self));

  if (priv->state == QIPC_SOCKET_STATE_UNCONNECTED || priv->state == QIPC_SOCKET_STATE_CLOSING)
    return;
  if (priv->stream != NULL && !g_queue_is_empty (&priv->write_queue))
    {
      stop_reading (self);
      _qipc_socket_set_state (self, QIPC_SOCKET_STATE_CLOSING);
      write_queued (self);
      return;
    }
  finish_closing (self);
}

/**
 * qipc_socket_abort:
 * @self: a #QipcSocket
 *
 * Closes the connection at once, dropping what is queued for writing,
 * and cancels a connection attempt in progress.
 */
void
qipc_socket_abort (QipcSocket *self)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  g_return_if_fail (is_socket (self));

  if (priv->state == QIPC_SOCKET_STATE_UNCONNECTED && priv->stream == NULL)
    return;
  finish_closing (self);
}

/* ------------------------------------------------------------------ */
/* Blocking waits                                                      */

typedef enum {
  WAIT_CONNECTED,
  WAIT_READY_READ,
  WAIT_BYTES_WRITTEN,
  WAIT_DISCONNECTED,
} WaitFor;

typedef struct
{
  gboolean happened;
  gboolean timed_out;
} Wait;

/* Connected swapped, so the signals' differing arguments do not matter. */
static void
wait_happened (gpointer user_data)
{
  ((Wait *) user_data)->happened = TRUE;
}

static gboolean
wait_timed_out (gpointer user_data)
{
  ((Wait *) user_data)->timed_out = TRUE;
  return G_SOURCE_REMOVE;
}

static gboolean
wait_for (QipcSocket  *self,
          WaitFor      what,
          int          timeout_ms,
          GError     **error)
{
  static const char *names[] = { "connected", "ready-read", "bytes-written", "disconnected" };
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);
  Wait wait = { FALSE, FALSE };
  guint64 received_before = priv->total_received;
  GSource *timeout = NULL;
  gulong handler;

  g_object_ref (self);
  handler = g_signal_connect_swapped (self, names[what], G_CALLBACK (wait_happened), &wait);
  if (timeout_ms >= 0)
    {
      timeout = g_timeout_source_new (timeout_ms);
      g_source_set_callback (timeout, wait_timed_out, &wait, NULL);
      g_source_attach (timeout, priv->context);
    }

  /* Every wait ends with the connection (or the attempt at one). */
  while (!wait.happened && !wait.timed_out && priv->state != QIPC_SOCKET_STATE_UNCONNECTED)
    {
      g_main_context_iteration (priv->context, TRUE);
      /* Inside a ready-read handler the signal is not emitted again. */
      if (what == WAIT_READY_READ && priv->total_received > received_before)
        wait.happened = TRUE;
    }
  if (what == WAIT_DISCONNECTED && priv->state == QIPC_SOCKET_STATE_UNCONNECTED)
    wait.happened = TRUE;

  g_signal_handler_disconnect (self, handler);
  if (timeout != NULL)
    {
      g_source_destroy (timeout);
      g_source_unref (timeout);
    }

  if (!wait.happened && wait.timed_out)
    g_set_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_SOCKET_TIMEOUT,
                 "Timed out after %d ms waiting for %s", timeout_ms, names[what]);
  else if (!wait.happened)
    g_set_error (error, QIPC_SOCKET_ERROR,
                 priv->error != NULL ? (QipcSocketError) priv->error->code : QIPC_SOCKET_ERROR_OPERATION,
                 "Stopped waiting for %s: %s", names[what],
                 priv->error != NULL ? priv->error->message : "the socket is not connected");
  g_object_unref (self);
  return wait.happened;
}

static gboolean
not_connected (GError     **error,
               const char  *what)
{
  g_set_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_OPERATION,
               "Cannot wait for %s: the socket is not connected", what);
  return FALSE;
}

/**
 * qipc_socket_wait_for_connected:
 * @self: a #QipcSocket
 * @timeout_ms: how long to wait in milliseconds, -1 for ever
 * @error: return location for a #GError
 *
 * Blocks until the connection attempt in progress succeeds, running the
 * socket's main context meanwhile.
 *
 * Returns: %TRUE when connected; %FALSE with @error set on timeout
 *   (%QIPC_SOCKET_ERROR_SOCKET_TIMEOUT), on failure (the error of the
 *   attempt), or when no attempt is in progress
 */
gboolean
qipc_socket_wait_for_connected (QipcSocket  *self,
                                int          timeout_ms,
                                GError     **error)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  g_return_val_if_fail (is_socket (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (priv->state == QIPC_SOCKET_STATE_CONNECTED)
    return TRUE;
  if (priv->state == QIPC_SOCKET_STATE_UNCONNECTED)
    return not_connected (error, "connected");
  return wait_for (self, WAIT_CONNECTED, timeout_ms, error);
}

/**
 * qipc_socket_wait_for_ready_read:
 * @self: a #QipcSocket
 * @timeout_ms: how long to wait in milliseconds, -1 for ever
 * @error: return location for a #GError
 *
 * Blocks until new data arrives and [signal@Socket::ready-read] has been
 * emitted, running the socket's main context meanwhile.
 *
 * Returns: %TRUE when data arrived; %FALSE with @error set on timeout, when
 *   the connection ends, or when the socket is not connected
 */
gboolean
qipc_socket_wait_for_ready_read (QipcSocket  *self,
                                 int          timeout_ms,
                                 GError     **error)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  g_return_val_if_fail (is_socket (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (priv->state == QIPC_SOCKET_STATE_UNCONNECTED)
    return not_connected (error, "ready-read");
  return wait_for (self, WAIT_READY_READ, timeout_ms, error);
}

/**
 * qipc_socket_wait_for_bytes_written:
 * @self: a #QipcSocket
 * @timeout_ms: how long to wait in milliseconds, -1 for ever
 * @error: return location for a #GError
 *
 * Blocks until queued data is written and [signal@Socket::bytes-written]
 * has been emitted, running the socket's main context meanwhile.
 *
 * Returns: %TRUE when data was written; %FALSE with @error set on timeout,
 *   when the connection ends, or when nothing is queued
 */
gboolean
qipc_socket_wait_for_bytes_written (QipcSocket  *self,
                                    int          timeout_ms,
                                    GError     **error)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  g_return_val_if_fail (is_socket (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (priv->state == QIPC_SOCKET_STATE_UNCONNECTED)
    return not_connected (error, "bytes-written");
  if (priv->bytes_to_write == 0 && priv->written_unreported == 0)
    {
      g_set_error_literal (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_OPERATION,
                           "Cannot wait for bytes-written: nothing is queued");
      return FALSE;
    }
  return wait_for (self, WAIT_BYTES_WRITTEN, timeout_ms, error);
}

/**
 * qipc_socket_wait_for_disconnected:
 * @self: a #QipcSocket
 * @timeout_ms: how long to wait in milliseconds, -1 for ever
 * @error: return location for a #GError
 *
 * Blocks until the connection ends, running the socket's main context
 * meanwhile.
 *
 * Returns: %TRUE when the socket is (or became) unconnected; %FALSE with
 *   @error set on timeout
 */
gboolean
qipc_socket_wait_for_disconnected (QipcSocket  *self,
                                   int          timeout_ms,
                                   GError     **error)
{
  QipcSocketPrivate *priv = qipc_socket_get_instance_private (self);

  g_return_val_if_fail (is_socket (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (priv->state == QIPC_SOCKET_STATE_UNCONNECTED)
    return TRUE;
  return wait_for (self, WAIT_DISCONNECTED, timeout_ms, error);
}
