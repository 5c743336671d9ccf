/* qipc-local-socket.c: a Unix domain stream socket
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/**
 * QipcLocalSocket:
 *
 * A connection to a [class@LocalServer] over a Unix domain socket, like
 * Qt's `QLocalSocket`, that can also pass file descriptors and tell who
 * the peer is.
 *
 * ```c
 * g_autoptr(QipcLocalSocket) socket = qipc_local_socket_new ();
 *
 * g_signal_connect (socket, "connected", G_CALLBACK (on_connected), NULL);
 * g_signal_connect (socket, "ready-read", G_CALLBACK (on_ready_read), NULL);
 * g_signal_connect (socket, "error-occurred", G_CALLBACK (on_error), NULL);
 * qipc_local_socket_connect_to_server (socket, "@org.example.service");
 * ```
 *
 * ## Server names
 *
 * - A name that starts with `@` is in Linux's abstract namespace (without
 *   the `@`): there is no file, nothing to clean up, and no permissions;
 *   any process in the same network namespace can connect.
 * - A name that contains a `/` is the path of the socket file.
 * - Any other name is a file of that name in the user's runtime
 *   directory, as g_get_user_runtime_dir() returns it (normally
 *   `$XDG_RUNTIME_DIR`).
 *
 * ## Connecting
 *
 * [method@LocalSocket.connect_to_server] never blocks: the socket goes
 * from %QIPC_SOCKET_STATE_UNCONNECTED to %QIPC_SOCKET_STATE_CONNECTING,
 * then to %QIPC_SOCKET_STATE_CONNECTED with [signal@Socket::connected],
 * or back to %QIPC_SOCKET_STATE_UNCONNECTED with
 * [signal@Socket::error-occurred]: %QIPC_SOCKET_ERROR_SERVER_NOT_FOUND
 * when there is no such socket file or abstract name,
 * %QIPC_SOCKET_ERROR_CONNECTION_REFUSED when the socket file is left over
 * from a server that is gone,
 * %QIPC_SOCKET_ERROR_SOCKET_ACCESS when its permissions keep this process
 * out. While the server's backlog is full, the socket stays connecting and
 * tries again, for up to 30 seconds. Signals are emitted on the main
 * context that was the thread-default one when the socket was created.
 *
 * ## File descriptors
 *
 * [method@LocalSocket.write_with_fds] sends file descriptors (a memfd, a
 * shared memory segment, a pipe) along with data; they travel with the
 * first byte of that data, in order with plain writes. Received
 * descriptors are collected as they arrive, at the latest when the first
 * byte sent with them becomes readable, and
 * [method@LocalSocket.take_fds] hands them over. Descriptors nobody takes
 * stay open until the socket is finalized.
 *
 * ## Peer credentials
 *
 * [method@LocalSocket.get_peer_credentials] tells the process ID, user ID
 * and group ID of the peer, as the kernel recorded them when the
 * connection was made (`SO_PEERCRED`); the peer cannot forge them.
 */

#include "qipc-local-socket.h"
#include "qipc-local-socket-private.h"
#include "qipc-socket-private.h"

#include <gio/gunixfdmessage.h>
#include <gio/gunixsocketaddress.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* While the server's backlog is full, connecting is tried again with a
 * delay that doubles up to the maximum, until the deadline. */
#define RETRY_FIRST_DELAY_MS 1
#define RETRY_MAX_DELAY_MS 64
#define RETRY_DEADLINE_US (30 * G_USEC_PER_SEC)

/* The kernel refuses more descriptors than this in one message. */
#define MAX_FDS_PER_MESSAGE 253

/* One call of connect_to_server(). It lives until its asynchronous
 * operation returns, even if the socket abandons it (sets @self to
 * NULL) or is finalized before that. */
typedef struct
{
  QipcLocalSocket *self;
  GSocketClient *client;
  GSocketAddress *address;
  GCancellable *cancellable;
  gint64 deadline;
  guint delay_ms;
  GSource *retry;
  gboolean in_flight;
} ConnectAttempt;

struct _QipcLocalSocket
{
  QipcSocket parent_instance;

  char *server_name;
  ConnectAttempt *attempt;

  /* Received descriptors that nobody has taken yet. */
  GArray *received_fds;
};

enum {
  PROP_0,
  PROP_SERVER_NAME,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (QipcLocalSocket, qipc_local_socket, QIPC_TYPE_SOCKET)

static void
attempt_free (ConnectAttempt *attempt)
{
  if (attempt->retry != NULL)
    {
      g_source_destroy (attempt->retry);
      g_source_unref (attempt->retry);
    }
  g_clear_object (&attempt->client);
  g_clear_object (&attempt->address);
  g_clear_object (&attempt->cancellable);
  g_free (attempt);
}

/* Forgets the current connection attempt; its callback, if one is still
 * to come, only cleans up. */
static void
abandon_attempt (QipcLocalSocket *self)
{
  ConnectAttempt *attempt = g_steal_pointer (&self->attempt);

  if (attempt == NULL)
    return;

  attempt->self = NULL;
  g_cancellable_cancel (attempt->cancellable);
  if (!attempt->in_flight)
    attempt_free (attempt);
}

static void
close_received_fds (QipcLocalSocket *self)
{
  for (guint i = 0; i < self->received_fds->len; i++)
    close (g_array_index (self->received_fds, int, i));
  g_array_set_size (self->received_fds, 0);
}

static void
qipc_local_socket_dispose (GObject *object)
{
  QipcLocalSocket *self = QIPC_LOCAL_SOCKET (object);

  abandon_attempt (self);

  G_OBJECT_CLASS (qipc_local_socket_parent_class)->dispose (object);
}

static void
qipc_local_socket_finalize (GObject *object)
{
  QipcLocalSocket *self = QIPC_LOCAL_SOCKET (object);

  close_received_fds (self);
  g_array_unref (self->received_fds);
  g_free (self->server_name);

  G_OBJECT_CLASS (qipc_local_socket_parent_class)->finalize (object);
}

static void
qipc_local_socket_get_property (GObject    *object,
                                guint       prop_id,
                                GValue     *value,
                                GParamSpec *pspec)
{
  QipcLocalSocket *self = QIPC_LOCAL_SOCKET (object);

  switch (prop_id)
    {
    case PROP_SERVER_NAME:
      g_value_set_string (value, self->server_name);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
qipc_local_socket_state_changed (QipcSocket      *socket,
                                 QipcSocketState  state)
{
  QipcLocalSocket *self = QIPC_LOCAL_SOCKET (socket);

  /* abort() or close() while connecting: the attempt must not attach a
   * connection afterwards. */
  if (state == QIPC_SOCKET_STATE_UNCONNECTED)
    abandon_attempt (self);

  if (QIPC_SOCKET_CLASS (qipc_local_socket_parent_class)->state_changed != NULL)
    QIPC_SOCKET_CLASS (qipc_local_socket_parent_class)->state_changed (socket, state);
}

static void
qipc_local_socket_class_init (QipcLocalSocketClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  QipcSocketClass *socket_class = QIPC_SOCKET_CLASS (klass);

  object_class->dispose = qipc_local_socket_dispose;
  object_class->finalize = qipc_local_socket_finalize;
  object_class->get_property = qipc_local_socket_get_property;

  socket_class->state_changed = qipc_local_socket_state_changed;

  /**
   * QipcLocalSocket:server-name: (getter get_server_name)
   *
   * The name given to [method@LocalSocket.connect_to_server], or for a
   * socket a [class@LocalServer] accepted, the name the server listens on.
   */
  properties[PROP_SERVER_NAME] =
    g_param_spec_string ("server-name", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
qipc_local_socket_init (QipcLocalSocket *self)
{
  self->received_fds = g_array_new (FALSE, FALSE, sizeof (int));
}

/* At most SCM_MAX_FD (253) descriptors come with one message. */
#define MAX_FDS_PER_MESSAGE 253

static void
keep_received_fds (QipcLocalSocket *self,
                   struct msghdr   *msg)
{
  for (struct cmsghdr *cmsg = CMSG_FIRSTHDR (msg); cmsg != NULL; cmsg = CMSG_NXTHDR (msg, cmsg))
    {
      if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS)
        continue;
      g_array_append_vals (self->received_fds, CMSG_DATA (cmsg),
                           (cmsg->cmsg_len - CMSG_LEN (0)) / sizeof (int));
    }
}

/* Reads with recvmsg(), so that descriptors sent with the data are
 * received with it. The socket is non-blocking; as for
 * _qipc_socket_fd_read(), the system call is made directly. */
static gssize
local_read (QipcSocket  *socket,
            guint8      *buffer,
            gsize        size,
            GError     **error)
{
  union {
    struct cmsghdr header;
    char data[CMSG_SPACE (sizeof (int) * MAX_FDS_PER_MESSAGE)];
  } control;
  struct iovec vector = { buffer, size };
  struct msghdr msg = {
    .msg_iov = &vector,
    .msg_iovlen = 1,
    .msg_control = &control,
    .msg_controllen = sizeof control,
  };
  gssize n;

  do
    n = recvmsg (_qipc_socket_get_fd (socket), &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);

  if (n < 0)
    {
      _qipc_socket_set_io_error (error, errno, "Error receiving message");
      return -1;
    }
  if (msg.msg_controllen > 0)
    keep_received_fds (QIPC_LOCAL_SOCKET (socket), &msg);

  /* The kernel dropped descriptors (this process is out of them): what
   * follows in the stream no longer matches what the peer meant. */
  if ((msg.msg_flags & MSG_CTRUNC) != 0)
    {
      g_set_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_SOCKET_RESOURCE,
                   "File descriptors from local server “%s” were lost: "
                   "this process has too many open files", QIPC_LOCAL_SOCKET (socket)->server_name);
      return -1;
    }

  return n;
}

static gssize
local_write (QipcSocket    *socket,
             const guint8  *data,
             gsize          size,
             GUnixFDList   *fds,
             GError       **error)
{
  GOutputVector vector = { data, size };
  g_autoptr(GSocketControlMessage) message = NULL;

  if (fds == NULL)
    return _qipc_socket_fd_write (socket, data, size, NULL, error);

  message = g_unix_fd_message_new_with_fd_list (fds);
  return g_socket_send_message (_qipc_socket_get_gsocket (socket), NULL, &vector, 1, &message, 1,
                                G_SOCKET_MSG_NONE, NULL, error);
}

/* Hands a connected GSocketConnection over to QipcSocket, reading and
 * writing through local_read() and local_write(). They are installed
 * for each connection: QipcSocket forgets them when one ends. Both
 * expect a non-blocking GSocket, which attaching makes it. */
static void
attach_connection (QipcLocalSocket   *self,
                   GSocketConnection *connection)
{
  GSocket *gsocket = g_socket_connection_get_socket (connection);

  _qipc_socket_set_io_funcs (QIPC_SOCKET (self), local_read, local_write);
  _qipc_socket_attach_stream (QIPC_SOCKET (self), G_IO_STREAM (connection), gsocket);
}

static void
set_server_name (QipcLocalSocket *self,
                 const char      *name)
{
  if (g_strcmp0 (self->server_name, name) == 0)
    return;

  g_free (self->server_name);
  self->server_name = g_strdup (name);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SERVER_NAME]);
}

QipcLocalSocket *
_qipc_local_socket_new_for_connection (GSocketConnection *connection,
                                       const char        *server_name)
{
  QipcLocalSocket *self = qipc_local_socket_new ();

  self->server_name = g_strdup (server_name);
  attach_connection (self, connection);
  return self;
}

GSocketAddress *
_qipc_local_address_new (const char  *name,
                         char       **full_name,
                         GError     **error)
{
  g_autofree char *path = NULL;
  gboolean abstract = name[0] == '@';
  const char *native = abstract ? name + 1 : name;

  if (native[0] != '\0' && !abstract && strchr (name, '/') == NULL)
    native = path = g_build_filename (g_get_user_runtime_dir (), name, NULL);

  /* sun_path must hold the terminating NUL of a path, and the leading
   * NUL of an abstract name. */
  if (native[0] == '\0' || strlen (native) >= sizeof (((struct sockaddr_un *) NULL)->sun_path))
    {
      g_set_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_ADDRESS_NOT_AVAILABLE,
                   "Invalid local server name “%s”: it must be a non-empty name, path or "
                   "@abstract-name of at most %d bytes", name,
                   (int) sizeof (((struct sockaddr_un *) NULL)->sun_path) - 1);
      return NULL;
    }

  if (full_name != NULL)
    *full_name = abstract ? g_strdup (name) : g_strdup (native);

  return g_unix_socket_address_new_with_type (native, -1,
                                              abstract ? G_UNIX_SOCKET_ADDRESS_ABSTRACT
                                                       : G_UNIX_SOCKET_ADDRESS_PATH);
}

static void
fail_connect (QipcLocalSocket *self,
              const GError    *gio_error)
{
  g_autoptr(GError) error = NULL;
  QipcSocketError code;

  if (gio_error->domain != G_IO_ERROR)
    code = QIPC_SOCKET_ERROR_FAILED;
  else if (gio_error->code == G_IO_ERROR_NOT_FOUND || gio_error->code == G_IO_ERROR_NOT_DIRECTORY)
    code = QIPC_SOCKET_ERROR_SERVER_NOT_FOUND;
  else if (gio_error->code == G_IO_ERROR_CONNECTION_REFUSED && self->server_name[0] == '@')
    code = QIPC_SOCKET_ERROR_SERVER_NOT_FOUND; /* no file: nobody has the name */
  else if (gio_error->code == G_IO_ERROR_CONNECTION_REFUSED || gio_error->code == G_IO_ERROR_WOULD_BLOCK)
    code = QIPC_SOCKET_ERROR_CONNECTION_REFUSED;
  else if (gio_error->code == G_IO_ERROR_PERMISSION_DENIED)
    code = QIPC_SOCKET_ERROR_SOCKET_ACCESS;
  else if (gio_error->code == G_IO_ERROR_TOO_MANY_OPEN_FILES || gio_error->code == G_IO_ERROR_NO_SPACE)
    code = QIPC_SOCKET_ERROR_SOCKET_RESOURCE;
  else
    code = QIPC_SOCKET_ERROR_FAILED;

  if (gio_error->domain == G_IO_ERROR && gio_error->code == G_IO_ERROR_WOULD_BLOCK)
    g_set_error (&error, QIPC_SOCKET_ERROR, code,
                 "Cannot connect to local server “%s”: it has not accepted connections "
                 "for %d seconds", self->server_name, (int) (RETRY_DEADLINE_US / G_USEC_PER_SEC));
  else
    g_set_error (&error, QIPC_SOCKET_ERROR, code,
                 "Cannot connect to local server “%s”: %s", self->server_name, gio_error->message);
  _qipc_socket_fail (QIPC_SOCKET (self), error);
}

static void start_attempt (ConnectAttempt *attempt);

static gboolean
retry_cb (gpointer user_data)
{
  ConnectAttempt *attempt = user_data;

  g_clear_pointer (&attempt->retry, g_source_unref);
  start_attempt (attempt);
  return G_SOURCE_REMOVE;
}

/* A full backlog (EAGAIN from connect()) means the server is alive but
 * busy: try again a little later, as a TCP SYN would be retried. */
static gboolean
schedule_retry (ConnectAttempt *attempt)
{
  if (g_get_monotonic_time () >= attempt->deadline)
    return FALSE;

  attempt->retry = g_timeout_source_new (attempt->delay_ms);
  g_source_set_callback (attempt->retry, retry_cb, attempt, NULL);
  g_source_set_static_name (attempt->retry, "[qipc] local socket connect retry");
  g_source_attach (attempt->retry, _qipc_socket_get_context (QIPC_SOCKET (attempt->self)));
  attempt->delay_ms = MIN (attempt->delay_ms * 2, RETRY_MAX_DELAY_MS);
  return TRUE;
}

static void
connect_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  ConnectAttempt *attempt = user_data;
  QipcLocalSocket *self = attempt->self;
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;

  attempt->in_flight = FALSE;
  connection = g_socket_client_connect_finish (G_SOCKET_CLIENT (source), result, &error);

  if (self == NULL)
    {
      /* Abandoned: the socket was aborted, closed or finalized. */
      if (connection != NULL)
        g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
      attempt_free (attempt);
      return;
    }

  if (connection == NULL &&
      g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK) &&
      schedule_retry (attempt))
    return;

  /* A handler of the signals below may drop the last reference. */
  g_object_ref (self);
  self->attempt = NULL;
  attempt_free (attempt);

  if (connection == NULL)
    fail_connect (self, error);
  else
    attach_connection (self, connection);
  g_object_unref (self);
}

static void
start_attempt (ConnectAttempt *attempt)
{
  GMainContext *context = _qipc_socket_get_context (QIPC_SOCKET (attempt->self));

  /* GSocketClient completes on the thread-default context: make it the
   * socket's, where its signals are emitted and wait_for_*() iterates. */
  g_main_context_push_thread_default (context);
  attempt->in_flight = TRUE;
  g_socket_client_connect_async (attempt->client, G_SOCKET_CONNECTABLE (attempt->address),
                                 attempt->cancellable, connect_cb, attempt);
  g_main_context_pop_thread_default (context);
}

/**
 * qipc_local_socket_new:
 *
 * Creates an unconnected local socket. Its signals are emitted on the
 * thread-default main context of the caller.
 *
 * Returns: (transfer full): a new #QipcLocalSocket
 */
QipcLocalSocket *
qipc_local_socket_new (void)
{
  return g_object_new (QIPC_TYPE_LOCAL_SOCKET, NULL);
}

/**
 * qipc_local_socket_connect_to_server:
 * @self: a #QipcLocalSocket
 * @name: the server name: a path, `@name` for the abstract namespace, or
 *   a file name in the user's runtime directory
 *
 * Starts connecting to the [class@LocalServer] listening on @name, and
 * returns at once. [signal@Socket::connected] tells when the connection
 * is made, [signal@Socket::error-occurred] when it failed;
 * [method@Socket.wait_for_connected] waits for either.
 *
 * The socket must be %QIPC_SOCKET_STATE_UNCONNECTED; otherwise
 * [signal@Socket::error-occurred] reports %QIPC_SOCKET_ERROR_OPERATION and
 * the current connection is left alone.
 */
void
qipc_local_socket_connect_to_server (QipcLocalSocket *self,
                                     const char      *name)
{
  g_autoptr(GError) error = NULL;
  ConnectAttempt *attempt;
  GSocketAddress *address;

  g_return_if_fail (QIPC_IS_LOCAL_SOCKET (self));
  g_return_if_fail (name != NULL);

  if (qipc_socket_get_state (QIPC_SOCKET (self)) != QIPC_SOCKET_STATE_UNCONNECTED)
    {
      g_set_error (&error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_OPERATION,
                   "Cannot connect to local server “%s”: the socket is already connected "
                   "or connecting to “%s”", name, self->server_name);
      _qipc_socket_report_error (QIPC_SOCKET (self), error);
      return;
    }

  set_server_name (self, name);
  _qipc_socket_set_state (QIPC_SOCKET (self), QIPC_SOCKET_STATE_CONNECTING);

  address = _qipc_local_address_new (name, NULL, &error);
  if (address == NULL)
    {
      _qipc_socket_fail (QIPC_SOCKET (self), error);
      return;
    }

  attempt = g_new0 (ConnectAttempt, 1);
  attempt->self = self;
  attempt->client = g_socket_client_new ();
  attempt->address = address;
  attempt->cancellable = g_cancellable_new ();
  attempt->deadline = g_get_monotonic_time () + RETRY_DEADLINE_US;
  attempt->delay_ms = RETRY_FIRST_DELAY_MS;
  self->attempt = attempt;
  start_attempt (attempt);
}

/**
 * qipc_local_socket_get_server_name: (get-property server-name)
 * @self: a #QipcLocalSocket
 *
 * Gets the name of the server this socket connects or is connected to.
 *
 * Returns: (nullable): the server name, or %NULL before the first
 *   [method@LocalSocket.connect_to_server]
 */
const char *
qipc_local_socket_get_server_name (QipcLocalSocket *self)
{
  g_return_val_if_fail (QIPC_IS_LOCAL_SOCKET (self), NULL);

  return self->server_name;
}

/**
 * qipc_local_socket_get_peer_credentials:
 * @self: a #QipcLocalSocket
 * @error: return location for a #GError
 *
 * Gets the credentials of the process at the other end: its process ID,
 * user ID and group ID (g_credentials_get_unix_pid(),
 * g_credentials_get_unix_user()), as the kernel recorded them when the
 * connection was made. The socket must be connected.
 *
 * Returns: (transfer full): the peer's credentials, or %NULL with @error
 *   set
 */
GCredentials *
qipc_local_socket_get_peer_credentials (QipcLocalSocket  *self,
                                        GError          **error)
{
  g_autoptr(GError) gio_error = NULL;
  GCredentials *credentials;
  GSocket *gsocket;

  g_return_val_if_fail (QIPC_IS_LOCAL_SOCKET (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  gsocket = _qipc_socket_get_gsocket (QIPC_SOCKET (self));
  if (gsocket == NULL || qipc_socket_get_state (QIPC_SOCKET (self)) != QIPC_SOCKET_STATE_CONNECTED)
    {
      g_set_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_OPERATION,
                   "Cannot get the peer credentials of local server “%s”: the socket is not connected",
                   self->server_name != NULL ? self->server_name : "");
      return NULL;
    }

  credentials = g_socket_get_credentials (gsocket, &gio_error);
  if (credentials == NULL)
    _qipc_socket_set_error_from_gio (error, gio_error, "get the peer credentials of");
  return credentials;
}

/**
 * qipc_local_socket_write_with_fds:
 * @self: a #QipcLocalSocket
 * @bytes: the data to send, at least one byte
 * @fds: (nullable): file descriptors to send with the first byte of
 *   @bytes, at most 253
 * @error: return location for a #GError
 *
 * Queues @bytes, like [method@Socket.write], with @fds. The peer receives
 * duplicates of the descriptors with the data, in order with everything
 * else written to the socket, and gets them with
 * [method@LocalSocket.take_fds]. @self keeps a reference to @fds until
 * they are sent; the caller may close its own descriptors afterwards.
 *
 * A message with descriptors must carry at least one byte: an empty
 * @bytes with descriptors fails with %QIPC_SOCKET_ERROR_OPERATION.
 *
 * Returns: %TRUE when queued, %FALSE with @error set
 */
gboolean
qipc_local_socket_write_with_fds (QipcLocalSocket  *self,
                                  GBytes           *bytes,
                                  GUnixFDList      *fds,
                                  GError          **error)
{
  int n_fds;

  g_return_val_if_fail (QIPC_IS_LOCAL_SOCKET (self), FALSE);
  g_return_val_if_fail (bytes != NULL, FALSE);
  g_return_val_if_fail (fds == NULL || G_IS_UNIX_FD_LIST (fds), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  n_fds = fds != NULL ? g_unix_fd_list_get_length (fds) : 0;
  if (n_fds > 0 && g_bytes_get_size (bytes) == 0)
    {
      g_set_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_OPERATION,
                   "Cannot send file descriptors to local server “%s” without data: "
                   "they travel with at least one byte", self->server_name != NULL ? self->server_name : "");
      return FALSE;
    }
  if (n_fds > MAX_FDS_PER_MESSAGE)
    {
      g_set_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_OPERATION,
                   "Cannot send %d file descriptors to local server “%s” at once: "
                   "the limit is %d", n_fds, self->server_name != NULL ? self->server_name : "",
                   MAX_FDS_PER_MESSAGE);
      return FALSE;
    }

  return _qipc_socket_queue_write (QIPC_SOCKET (self), bytes, n_fds > 0 ? fds : NULL, error);
}

/**
 * qipc_local_socket_take_fds:
 * @self: a #QipcLocalSocket
 *
 * Takes the file descriptors received so far, in the order they were
 * sent. Descriptors arrive, at the latest, when the first byte sent with
 * them becomes readable: after reading that byte, they are here. Each
 * descriptor is returned once; the caller owns them.
 *
 * Returns: (transfer full) (nullable): the received descriptors, or
 *   %NULL when none are waiting
 */
GUnixFDList *
qipc_local_socket_take_fds (QipcLocalSocket *self)
{
  GUnixFDList *list;

  g_return_val_if_fail (QIPC_IS_LOCAL_SOCKET (self), NULL);

  if (self->received_fds->len == 0)
    return NULL;

  /* The list takes over the descriptors themselves, without dup(). */
  list = g_unix_fd_list_new_from_array ((int *) (gpointer) self->received_fds->data,
                                        self->received_fds->len);
  g_array_set_size (self->received_fds, 0);
  return list;
}
