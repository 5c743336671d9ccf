/* qipc-tcp-socket.c: a TCP socket, with TLS as QSslSocket does it
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/**
 * QipcTcpSocket:
 *
 * A TCP connection with the buffered, signal-driven I/O of [class@Socket],
 * like Qt's `QTcpSocket`, and TLS like Qt's `QSslSocket`.
 *
 * ```c
 * static void
 * on_ready_read (QipcSocket *socket, gpointer user_data)
 * {
 *   while (qipc_socket_can_read_line (socket))
 *     {
 *       g_autoptr(GBytes) line = qipc_socket_read_line (socket, 0);
 *       handle_line (line);
 *     }
 * }
 *
 * g_autoptr(QipcTcpSocket) socket = qipc_tcp_socket_new ();
 *
 * g_signal_connect (socket, "ready-read", G_CALLBACK (on_ready_read), NULL);
 * g_signal_connect (socket, "error-occurred", G_CALLBACK (on_error), NULL);
 * qipc_tcp_socket_connect_to_host (socket, "example.org", 4242);
 * ```
 *
 * ## Connecting
 *
 * [method@TcpSocket.connect_to_host] returns at once. The socket goes
 * from %QIPC_SOCKET_STATE_HOST_LOOKUP to %QIPC_SOCKET_STATE_CONNECTING
 * and, once connected, %QIPC_SOCKET_STATE_CONNECTED with
 * [signal@Socket::connected]; or it reports the failure with
 * [signal@Socket::error-occurred] (%QIPC_SOCKET_ERROR_HOST_NOT_FOUND,
 * %QIPC_SOCKET_ERROR_CONNECTION_REFUSED, %QIPC_SOCKET_ERROR_NETWORK…)
 * and is %QIPC_SOCKET_STATE_UNCONNECTED again. All of it happens on the
 * main context the socket belongs to, which is the one that was the
 * thread-default context when it was created. Connections are always
 * direct, never through a proxy, as `QTcpSocket` makes them by default.
 *
 * Dropping the last reference to a socket that is still connecting
 * cancels the connection.
 *
 * ## TLS
 *
 * [method@TcpSocket.connect_to_host_encrypted] connects, then runs the
 * client side of a TLS handshake; the socket stays
 * %QIPC_SOCKET_STATE_CONNECTING until the handshake is over, then emits
 * [signal@Socket::connected] and [signal@TcpSocket::encrypted].
 * [method@TcpSocket.start_client_encryption] and
 * [method@TcpSocket.start_server_encryption] upgrade a connected plain
 * socket instead (STARTTLS): the socket stays connected, reads nothing
 * until the handshake is over, and emits [signal@TcpSocket::encrypted];
 * what was written before the call goes out in clear, what is written
 * after it goes out encrypted.
 *
 * The peer's certificate is verified against the system's trusted
 * authorities and the host name (or address) connected to. A certificate
 * that fails verification is refused unless a handler of
 * [signal@TcpSocket::tls-errors] accepts it, which is how a client pins
 * a self-signed certificate. A refused or failed handshake ends with
 * %QIPC_SOCKET_ERROR_TLS_HANDSHAKE_FAILED, [signal@Socket::error-occurred]
 * and %QIPC_SOCKET_STATE_UNCONNECTED.
 *
 * A peer may close the connection without a TLS close-notify alert, as
 * `QSslSocket` allows: it reads as the end of the stream
 * (%QIPC_SOCKET_ERROR_REMOTE_HOST_CLOSED), exactly as with plain TCP.
 * Protocols that must detect truncation frame their messages.
 *
 * TLS needs a GIO TLS backend at run time (glib-networking).
 */

#include "qipc-tcp-socket.h"
#include "qipc-tcp-socket-private.h"
#include "qipc-socket-private.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <string.h>

struct _QipcTcpSocket
{
  QipcSocket parent_instance;

  gboolean no_delay;
  gboolean keep_alive;

  /* Whom connect_to_host() connected to: the identity TLS verifies. */
  GSocketConnectable *peer_identity;
  gboolean encrypt_on_connect;

  /* Cancels the connection or handshake in progress; NULL when none is. */
  GCancellable *pending;
  /* A TCP connection not handed to the parent class yet, because its TLS
   * handshake runs first (the socket is CONNECTING meanwhile). */
  GSocketConnection *connection;

  /* The connection that is handshaking or encrypted. */
  GTlsConnection *tls;
  /* Bytes queued in clear before an upgrade that have yet to go out. */
  gsize clear_left;
  gboolean encrypted;
  GTlsCertificate *peer_certificate;
  /* The authorities a client trusts; NULL for the system's. */
  GTlsDatabase *tls_database;
};

enum {
  ENCRYPTED,
  TLS_ERRORS,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

enum {
  PROP_0,
  PROP_NO_DELAY,
  PROP_KEEP_ALIVE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (QipcTcpSocket, qipc_tcp_socket, QIPC_TYPE_SOCKET)

/* Asynchronous steps hold the socket only weakly, so that dropping the
 * last reference to a connecting socket cancels the connection (dispose
 * cancels it) instead of keeping the socket alive until it connects. */
static gpointer
weak_ref_new (QipcTcpSocket *self)
{
  GWeakRef *ref = g_new0 (GWeakRef, 1);

  g_weak_ref_init (ref, self);
  return ref;
}

static QipcTcpSocket *
weak_ref_take (gpointer user_data)
{
  GWeakRef *ref = user_data;
  QipcTcpSocket *self = g_weak_ref_get (ref);

  g_weak_ref_clear (ref);
  g_free (ref);
  return self;
}

/* The socket to query and configure: the parent class's once it has a
 * stream, before that the one whose TLS handshake runs. */
static GSocket *
get_gsocket (QipcTcpSocket *self)
{
  if (self->connection != NULL)
    return g_socket_connection_get_socket (self->connection);
  return _qipc_socket_get_gsocket (QIPC_SOCKET (self));
}

static void
apply_no_delay (QipcTcpSocket *self,
                GSocket       *socket)
{
  g_autoptr(GError) error = NULL;

  if (!g_socket_set_option (socket, IPPROTO_TCP, TCP_NODELAY, self->no_delay, &error))
    g_debug ("Cannot set TCP_NODELAY: %s", error->message);
}

static void
apply_options (QipcTcpSocket *self,
               GSocket       *socket)
{
  apply_no_delay (self, socket);
  g_socket_set_keepalive (socket, self->keep_alive);
}

/* Ends the connection step or handshake in progress and forgets the
 * connection's TLS state; what the parent class holds it closes itself. */
static void
forget_connection (QipcTcpSocket *self)
{
  if (self->pending != NULL)
    g_cancellable_cancel (self->pending);
  g_clear_object (&self->pending);
  /* Not closed here: a cancelled handshake may still be using it in a
   * TLS worker thread; it closes when that lets go of it. */
  g_clear_object (&self->connection);
  g_clear_object (&self->tls);
  self->encrypted = FALSE;
  self->clear_left = 0;
}

/* Reports @gio_error as the failure of the current step. The parent
 * class maps resolver errors to HOST_NOT_FOUND and TLS errors (a refused
 * certificate among them) to TLS_HANDSHAKE_FAILED. */
static void
fail_from_gio (QipcTcpSocket *self,
               const GError  *gio_error,
               const char    *what)
{
  g_autoptr(GError) error = NULL;

  _qipc_socket_set_error_from_gio (&error, gio_error, what);
  _qipc_socket_fail (QIPC_SOCKET (self), error);
}

static void
attach_connection (QipcTcpSocket     *self,
                   GIOStream         *stream,
                   GSocketConnection *connection)
{
  GSocket *socket = g_socket_connection_get_socket (connection);

  /* Before ::connected, so that its handlers see the options in force. */
  apply_options (self, socket);
  /* In clear, the stream is the socket's; a TLS stream buffers. */
  if (stream == G_IO_STREAM (connection))
    _qipc_socket_set_io_funcs (QIPC_SOCKET (self), _qipc_socket_fd_read, _qipc_socket_fd_write);
  _qipc_socket_attach_stream (QIPC_SOCKET (self), stream, socket);
}

static gboolean
accept_certificate_cb (GTlsConnection       *tls,
                       GTlsCertificate      *peer_certificate,
                       GTlsCertificateFlags  errors,
                       gpointer              user_data)
{
  QipcTcpSocket *self = user_data;
  gboolean accepted = FALSE;

  g_signal_emit (self, signals[TLS_ERRORS], 0, peer_certificate, errors, &accepted);
  return accepted;
}

static void
finish_encryption (QipcTcpSocket *self)
{
  g_autoptr(GTlsConnection) tls = g_object_ref (self->tls);

  g_set_object (&self->peer_certificate, g_tls_connection_get_peer_certificate (tls));
  self->encrypted = TRUE;

  if (self->connection != NULL)
    {
      g_autoptr(GSocketConnection) connection = g_steal_pointer (&self->connection);

      attach_connection (self, G_IO_STREAM (tls), connection);
      /* A ::connected handler may have aborted the connection already. */
      if (self->tls == tls)
        g_signal_emit (self, signals[ENCRYPTED], 0);
      return;
    }

  /* An upgrade: ::encrypted comes before the I/O held during the
   * handshake resumes, because that may finish a pending close(). */
  _qipc_socket_replace_stream (QIPC_SOCKET (self), G_IO_STREAM (tls));
  g_signal_emit (self, signals[ENCRYPTED], 0);
  if (self->tls == tls)
    _qipc_socket_pause_reading (QIPC_SOCKET (self), FALSE);
}

static void
handshake_done_cb (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_autoptr(QipcTcpSocket) self = weak_ref_take (user_data);
  g_autoptr(GError) error = NULL;
  gboolean done;

  done = g_tls_connection_handshake_finish (G_TLS_CONNECTION (source), result, &error);
  /* Cancelled: abort(), close() or dispose already dealt with the socket. */
  if (self == NULL || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;

  g_clear_object (&self->pending);
  if (!done)
    fail_from_gio (self, error, "TLS handshake failed");
  else
    finish_encryption (self);
}

/* Makes @tls (taken over) the connection to handshake on. */
static void
set_tls (QipcTcpSocket *self,
         GIOStream     *tls)
{
  self->tls = G_TLS_CONNECTION (tls);
  /* See "TLS" in the class documentation. */
  g_tls_connection_set_require_close_notify (self->tls, FALSE);
  g_signal_connect_object (self->tls, "accept-certificate",
                           G_CALLBACK (accept_certificate_cb), self, 0);
}

/* Runs the handshake on the socket's main context, where ::tls-errors is
 * emitted too. */
static void
start_handshake (QipcTcpSocket *self)
{
  GMainContext *context = _qipc_socket_get_context (QIPC_SOCKET (self));

  self->pending = g_cancellable_new ();
  g_main_context_push_thread_default (context);
  g_tls_connection_handshake_async (self->tls, G_PRIORITY_DEFAULT, self->pending,
                                    handshake_done_cb, weak_ref_new (self));
  g_main_context_pop_thread_default (context);
}

static GIOStream *
new_client_tls (QipcTcpSocket  *self,
                GIOStream      *base,
                GError        **error)
{
  g_autoptr(GSocketAddress) remote = NULL;
  GSocketConnectable *identity = self->peer_identity;
  GIOStream *tls;

  /* A socket that a server accepted has no host name: verify the
   * certificate against the peer's address. */
  if (identity == NULL)
    {
      remote = g_socket_get_remote_address (get_gsocket (self), error);
      if (remote == NULL)
        return NULL;
      identity = G_SOCKET_CONNECTABLE (remote);
    }

  tls = g_tls_client_connection_new (base, identity, error);
  if (tls != NULL && self->tls_database != NULL)
    g_tls_connection_set_database (G_TLS_CONNECTION (tls), self->tls_database);
  return tls;
}

static void
client_event_cb (GSocketClient      *client,
                 GSocketClientEvent  event,
                 GSocketConnectable *connectable,
                 GIOStream          *connection,
                 gpointer            user_data)
{
  QipcSocket *socket = user_data;

  if (event == G_SOCKET_CLIENT_CONNECTING &&
      qipc_socket_get_state (socket) == QIPC_SOCKET_STATE_HOST_LOOKUP)
    _qipc_socket_set_state (socket, QIPC_SOCKET_STATE_CONNECTING);
}

static void
connect_done_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(QipcTcpSocket) self = weak_ref_take (user_data);
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) gio_error = NULL;
  GIOStream *tls;

  connection = g_socket_client_connect_finish (G_SOCKET_CLIENT (source), result, &gio_error);
  if (self == NULL || g_error_matches (gio_error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;

  g_clear_object (&self->pending);
  if (connection == NULL)
    {
      g_autofree char *what = g_strdup_printf ("Cannot connect to %s",
                                               g_network_address_get_hostname (G_NETWORK_ADDRESS (self->peer_identity)));
      fail_from_gio (self, gio_error, what);
      return;
    }

  if (!self->encrypt_on_connect)
    {
      attach_connection (self, G_IO_STREAM (connection), connection);
      return;
    }

  self->connection = g_steal_pointer (&connection);
  tls = new_client_tls (self, G_IO_STREAM (self->connection), &gio_error);
  if (tls == NULL)
    {
      fail_from_gio (self, gio_error, "Cannot start TLS");
      return;
    }
  set_tls (self, tls);
  start_handshake (self);
}

/* Connecting twice is reported as Qt does, without touching the
 * connection there is. */
static gboolean
check_unconnected (QipcTcpSocket *self,
                   const char    *host,
                   guint16        port)
{
  g_autoptr(GError) error = NULL;

  if (qipc_socket_get_state (QIPC_SOCKET (self)) == QIPC_SOCKET_STATE_UNCONNECTED)
    return TRUE;

  g_set_error (&error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_OPERATION,
               "Cannot connect to %s port %u: the socket is already connected or connecting",
               host, port);
  _qipc_socket_report_error (QIPC_SOCKET (self), error);
  return FALSE;
}

static void
begin_connect (QipcTcpSocket *self,
               const char    *host,
               guint16        port,
               gboolean       encrypted)
{
  QipcSocket *socket = QIPC_SOCKET (self);
  GMainContext *context = _qipc_socket_get_context (socket);
  g_autoptr(GSocketClient) client = NULL;

  forget_connection (self);
  g_clear_object (&self->peer_certificate);
  g_clear_object (&self->peer_identity);
  self->peer_identity = g_network_address_new (host, port);
  self->encrypt_on_connect = encrypted;

  _qipc_socket_set_state (socket, QIPC_SOCKET_STATE_HOST_LOOKUP);
  /* A ::state-changed handler may have aborted already. */
  if (qipc_socket_get_state (socket) != QIPC_SOCKET_STATE_HOST_LOOKUP)
    return;

  client = g_socket_client_new ();
  g_socket_client_set_enable_proxy (client, FALSE);
  g_signal_connect_object (client, "event", G_CALLBACK (client_event_cb), self, 0);

  self->pending = g_cancellable_new ();
  g_main_context_push_thread_default (context);
  g_socket_client_connect_async (client, self->peer_identity, self->pending,
                                 connect_done_cb, weak_ref_new (self));
  g_main_context_pop_thread_default (context);
}

static gboolean
check_can_start_encryption (QipcTcpSocket  *self,
                            GError        **error)
{
  if (qipc_socket_get_state (QIPC_SOCKET (self)) != QIPC_SOCKET_STATE_CONNECTED)
    {
      g_set_error_literal (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_OPERATION,
                           "Cannot start TLS: the socket is not connected");
      return FALSE;
    }
  if (self->tls != NULL)
    {
      g_set_error_literal (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_OPERATION,
                           "Cannot start TLS: the socket is already encrypted or handshaking");
      return FALSE;
    }
  return TRUE;
}

static void
hold_plain_io_and_handshake (QipcTcpSocket *self)
{
  /* What arrives from now on is the peer's handshake, for the TLS
   * connection to read, not plain data for the read buffer; and what is
   * written waits to be encrypted. */
  _qipc_socket_pause_reading (QIPC_SOCKET (self), TRUE);
  start_handshake (self);
}

/* The write function while data queued in clear before an upgrade goes
 * out: it writes exactly that much, then holds the rest for the TLS
 * connection and starts the handshake. */
static gssize
write_clear_remainder (QipcSocket    *socket,
                       const guint8  *data,
                       gsize          size,
                       GUnixFDList   *fds,
                       GError       **error)
{
  QipcTcpSocket *self = QIPC_TCP_SOCKET (socket);
  gssize n;

  if (self->clear_left == 0)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK, "Waiting for the TLS handshake");
      return -1;
    }

  n = _qipc_socket_fd_write (socket, data, MIN (size, self->clear_left), NULL, error);
  if (n > 0)
    {
      self->clear_left -= n;
      if (self->clear_left == 0)
        hold_plain_io_and_handshake (self);
    }
  return n;
}

static void
begin_upgrade (QipcTcpSocket *self,
               GIOStream     *tls)
{
  QipcSocket *socket = QIPC_SOCKET (self);

  set_tls (self, tls);
  /* Data written in clear before the call still goes out in clear, as a
   * STARTTLS reply must; what is written afterwards waits for the
   * handshake, to be encrypted. */
  self->clear_left = qipc_socket_bytes_to_write (socket);
  if (self->clear_left == 0)
    hold_plain_io_and_handshake (self);
  else
    _qipc_socket_set_io_funcs (socket, NULL, write_clear_remainder);
}

static void
qipc_tcp_socket_dispose (GObject *object)
{
  QipcTcpSocket *self = QIPC_TCP_SOCKET (object);

  forget_connection (self);
  g_clear_object (&self->tls_database);
  g_clear_object (&self->peer_identity);
  g_clear_object (&self->peer_certificate);

  G_OBJECT_CLASS (qipc_tcp_socket_parent_class)->dispose (object);
}

static void
qipc_tcp_socket_get_property (GObject    *object,
                              guint       prop_id,
                              GValue     *value,
                              GParamSpec *pspec)
{
  QipcTcpSocket *self = QIPC_TCP_SOCKET (object);

  switch (prop_id)
    {
    case PROP_NO_DELAY:
      g_value_set_boolean (value, qipc_tcp_socket_get_no_delay (self));
      break;
    case PROP_KEEP_ALIVE:
      g_value_set_boolean (value, qipc_tcp_socket_get_keep_alive (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
qipc_tcp_socket_set_property (GObject      *object,
                              guint         prop_id,
                              const GValue *value,
                              GParamSpec   *pspec)
{
  QipcTcpSocket *self = QIPC_TCP_SOCKET (object);

  switch (prop_id)
    {
    case PROP_NO_DELAY:
      qipc_tcp_socket_set_no_delay (self, g_value_get_boolean (value));
      break;
    case PROP_KEEP_ALIVE:
      qipc_tcp_socket_set_keep_alive (self, g_value_get_boolean (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
qipc_tcp_socket_state_changed (QipcSocket      *socket,
                               QipcSocketState  state)
{
  QipcTcpSocket *self = QIPC_TCP_SOCKET (socket);

  /* abort() or close() while looking up, connecting or handshaking ends
   * that step too, and whatever comes next starts unencrypted; unless a
   * handler, which runs before this one, connected again already. */
  if (state == QIPC_SOCKET_STATE_UNCONNECTED &&
      qipc_socket_get_state (socket) == QIPC_SOCKET_STATE_UNCONNECTED)
    forget_connection (self);

  if (QIPC_SOCKET_CLASS (qipc_tcp_socket_parent_class)->state_changed != NULL)
    QIPC_SOCKET_CLASS (qipc_tcp_socket_parent_class)->state_changed (socket, state);
}

static void
qipc_tcp_socket_class_init (QipcTcpSocketClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  QipcSocketClass *socket_class = QIPC_SOCKET_CLASS (klass);

  object_class->dispose = qipc_tcp_socket_dispose;
  object_class->get_property = qipc_tcp_socket_get_property;
  object_class->set_property = qipc_tcp_socket_set_property;

  socket_class->state_changed = qipc_tcp_socket_state_changed;

  /**
   * QipcTcpSocket:no-delay: (getter get_no_delay) (setter set_no_delay)
   *
   * Whether small writes are sent at once instead of being held back to
   * coalesce with later ones (`TCP_NODELAY`, Nagle's algorithm off).
   * Can be set before connecting; it applies once connected.
   */
  properties[PROP_NO_DELAY] =
    g_param_spec_boolean ("no-delay", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * QipcTcpSocket:keep-alive: (getter get_keep_alive) (setter set_keep_alive)
   *
   * Whether the system probes an idle connection to find out that the
   * peer is gone (`SO_KEEPALIVE`). Can be set before connecting; it
   * applies once connected.
   */
  properties[PROP_KEEP_ALIVE] =
    g_param_spec_boolean ("keep-alive", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * QipcTcpSocket::encrypted:
   * @self: the socket
   *
   * The TLS handshake succeeded: from now on everything read and written
   * is encrypted, and [method@TcpSocket.get_peer_certificate] gives the
   * peer's certificate. After [method@TcpSocket.connect_to_host_encrypted]
   * it follows [signal@Socket::connected].
   */
  signals[ENCRYPTED] =
    g_signal_new ("encrypted", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);

  /**
   * QipcTcpSocket::tls-errors:
   * @self: the socket
   * @peer_certificate: the certificate the peer presented
   * @errors: what verification found wrong with it
   *
   * The peer's certificate failed verification during the handshake, for
   * example because it is self-signed (%G_TLS_CERTIFICATE_UNKNOWN_CA) or
   * names another host (%G_TLS_CERTIFICATE_BAD_IDENTITY). The handshake
   * waits for the handlers, which run on the socket's main context.
   *
   * A handler that returns %TRUE accepts the certificate and stops the
   * emission. Accept only a certificate you recognize (compare it with a
   * known one with g_tls_certificate_is_same()), never any certificate.
   * Without a handler that accepts it, the handshake fails with
   * %QIPC_SOCKET_ERROR_TLS_HANDSHAKE_FAILED.
   *
   * Returns: %TRUE to accept @peer_certificate despite @errors, %FALSE to
   *   let other handlers decide, and the handshake fail if none accepts
   */
  signals[TLS_ERRORS] =
    g_signal_new ("tls-errors", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, g_signal_accumulator_true_handled, NULL, NULL,
                  G_TYPE_BOOLEAN, 2, G_TYPE_TLS_CERTIFICATE, G_TYPE_TLS_CERTIFICATE_FLAGS);
}

static void
qipc_tcp_socket_init (QipcTcpSocket *self)
{
}

/**
 * qipc_tcp_socket_new:
 *
 * Creates an unconnected TCP socket that belongs to the thread-default
 * main context of the caller.
 *
 * Returns: (transfer full): a new #QipcTcpSocket
 */
QipcTcpSocket *
qipc_tcp_socket_new (void)
{
  return g_object_new (QIPC_TYPE_TCP_SOCKET, NULL);
}

/**
 * qipc_tcp_socket_connect_to_host:
 * @self: a #QipcTcpSocket
 * @host: a host name or an IPv4 or IPv6 address
 * @port: the TCP port to connect to
 *
 * Starts connecting to @port of @host and returns at once. When the
 * connection is made the socket is %QIPC_SOCKET_STATE_CONNECTED and emits
 * [signal@Socket::connected]; when it cannot be made it emits
 * [signal@Socket::error-occurred] and is %QIPC_SOCKET_STATE_UNCONNECTED
 * again. When @host has several addresses, each is tried in turn.
 *
 * [method@Socket.wait_for_connected] waits for the outcome;
 * [method@Socket.abort] gives up.
 *
 * The socket must be %QIPC_SOCKET_STATE_UNCONNECTED; otherwise
 * [signal@Socket::error-occurred] reports %QIPC_SOCKET_ERROR_OPERATION and
 * the current connection is left alone.
 */
void
qipc_tcp_socket_connect_to_host (QipcTcpSocket *self,
                                 const char    *host,
                                 guint16        port)
{
  g_return_if_fail (QIPC_IS_TCP_SOCKET (self));
  g_return_if_fail (host != NULL);

  if (check_unconnected (self, host, port))
    begin_connect (self, host, port, FALSE);
}

/**
 * qipc_tcp_socket_connect_to_host_encrypted:
 * @self: a #QipcTcpSocket
 * @host: a host name or an IPv4 or IPv6 address
 * @port: the TCP port to connect to
 *
 * Connects as [method@TcpSocket.connect_to_host] does, then runs the
 * client side of a TLS handshake, verifying the server's certificate
 * against the system's trusted authorities and @host. The socket stays
 * %QIPC_SOCKET_STATE_CONNECTING during the handshake; when it succeeds
 * it emits [signal@Socket::connected], then [signal@TcpSocket::encrypted].
 * A certificate that fails verification is refused unless a handler of
 * [signal@TcpSocket::tls-errors] accepts it.
 *
 * As with [method@TcpSocket.connect_to_host], the socket must be
 * %QIPC_SOCKET_STATE_UNCONNECTED.
 */
void
qipc_tcp_socket_connect_to_host_encrypted (QipcTcpSocket *self,
                                           const char    *host,
                                           guint16        port)
{
  g_return_if_fail (QIPC_IS_TCP_SOCKET (self));
  g_return_if_fail (host != NULL);

  if (check_unconnected (self, host, port))
    begin_connect (self, host, port, TRUE);
}

/**
 * qipc_tcp_socket_start_client_encryption:
 * @self: a connected, unencrypted #QipcTcpSocket
 * @error: return location for a #GError
 *
 * Starts the client side of a TLS handshake on a plain connection (as
 * after a STARTTLS command), and returns at once. The server's
 * certificate is verified against the host name given to
 * [method@TcpSocket.connect_to_host], or the peer's address for a socket
 * a server accepted. From now on nothing more is read until the
 * handshake is over; then the socket emits [signal@TcpSocket::encrypted],
 * or fails with %QIPC_SOCKET_ERROR_TLS_HANDSHAKE_FAILED.
 *
 * Data written before this call that the system has not taken yet still
 * goes out in clear, ahead of the handshake; data written after it waits
 * for the handshake and goes out encrypted. A [method@Socket.close]
 * meanwhile closes the connection after both.
 *
 * Returns: %TRUE if the handshake started, %FALSE with @error set when
 *   the socket is not connected, is already encrypted, or TLS is not
 *   available
 */
gboolean
qipc_tcp_socket_start_client_encryption (QipcTcpSocket  *self,
                                         GError        **error)
{
  g_autoptr(GError) gio_error = NULL;
  GIOStream *tls;

  g_return_val_if_fail (QIPC_IS_TCP_SOCKET (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!check_can_start_encryption (self, error))
    return FALSE;

  tls = new_client_tls (self, _qipc_socket_get_stream (QIPC_SOCKET (self)), &gio_error);
  if (tls == NULL)
    {
      _qipc_socket_set_error_from_gio (error, gio_error, "Cannot start TLS");
      return FALSE;
    }

  begin_upgrade (self, tls);
  return TRUE;
}

/**
 * qipc_tcp_socket_start_server_encryption:
 * @self: a connected, unencrypted #QipcTcpSocket
 * @certificate: the server's certificate, with its private key
 * @error: return location for a #GError
 *
 * Starts the server side of a TLS handshake on a plain connection,
 * presenting @certificate, and returns at once. From now on nothing more
 * is read until the handshake is over; then the socket emits
 * [signal@TcpSocket::encrypted], or fails with
 * %QIPC_SOCKET_ERROR_TLS_HANDSHAKE_FAILED. No client certificate is
 * asked for.
 *
 * As with [method@TcpSocket.start_client_encryption], data written before
 * the call goes out in clear (so a STARTTLS reply can be written just
 * before it), and data written after it goes out encrypted.
 *
 * Returns: %TRUE if the handshake started, %FALSE with @error set when
 *   the socket is not connected, is already encrypted, or TLS is not
 *   available
 */
gboolean
qipc_tcp_socket_start_server_encryption (QipcTcpSocket    *self,
                                         GTlsCertificate  *certificate,
                                         GError          **error)
{
  g_autoptr(GError) gio_error = NULL;
  GIOStream *tls;

  g_return_val_if_fail (QIPC_IS_TCP_SOCKET (self), FALSE);
  g_return_val_if_fail (G_IS_TLS_CERTIFICATE (certificate), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!check_can_start_encryption (self, error))
    return FALSE;

  tls = g_tls_server_connection_new (_qipc_socket_get_stream (QIPC_SOCKET (self)), certificate, &gio_error);
  if (tls == NULL)
    {
      _qipc_socket_set_error_from_gio (error, gio_error, "Cannot start TLS");
      return FALSE;
    }

  begin_upgrade (self, tls);
  return TRUE;
}

/**
 * qipc_tcp_socket_is_encrypted:
 * @self: a #QipcTcpSocket
 *
 * Tells whether the connection is encrypted: a TLS handshake succeeded
 * and the socket has not been disconnected since.
 *
 * Returns: %TRUE if the connection is encrypted
 */
gboolean
qipc_tcp_socket_is_encrypted (QipcTcpSocket *self)
{
  g_return_val_if_fail (QIPC_IS_TCP_SOCKET (self), FALSE);

  return self->encrypted;
}

/**
 * qipc_tcp_socket_get_peer_certificate:
 * @self: a #QipcTcpSocket
 *
 * Gets the certificate the peer presented in the last successful TLS
 * handshake. It stays available after disconnecting, until the next
 * connection starts.
 *
 * Returns: (transfer none) (nullable): the peer's certificate, or %NULL
 *   when no handshake succeeded or the peer presented none
 */
GTlsCertificate *
qipc_tcp_socket_get_peer_certificate (QipcTcpSocket *self)
{
  g_return_val_if_fail (QIPC_IS_TCP_SOCKET (self), NULL);

  return self->peer_certificate;
}

char *
_qipc_tcp_address_to_string (GInetAddress *address)
{
  static const guint8 v4_mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
  const guint8 *bytes = g_inet_address_to_bytes (address);

  if (g_inet_address_get_family (address) == G_SOCKET_FAMILY_IPV6 &&
      memcmp (bytes, v4_mapped_prefix, sizeof v4_mapped_prefix) == 0)
    {
      g_autoptr(GInetAddress) v4 = g_inet_address_new_from_bytes (bytes + 12, G_SOCKET_FAMILY_IPV4);

      return g_inet_address_to_string (v4);
    }
  return g_inet_address_to_string (address);
}

static GInetSocketAddress *
get_address (QipcTcpSocket *self,
             gboolean       remote)
{
  GSocket *socket = get_gsocket (self);
  GSocketAddress *address = NULL;

  if (socket != NULL && !g_socket_is_closed (socket))
    address = remote ? g_socket_get_remote_address (socket, NULL)
                     : g_socket_get_local_address (socket, NULL);
  if (address != NULL && !G_IS_INET_SOCKET_ADDRESS (address))
    g_clear_object (&address);
  return (GInetSocketAddress *) address;
}

static char *
get_address_string (QipcTcpSocket *self,
                    gboolean       remote)
{
  g_autoptr(GInetSocketAddress) address = get_address (self, remote);

  if (address == NULL)
    return NULL;
  return _qipc_tcp_address_to_string (g_inet_socket_address_get_address (address));
}

static guint16
get_port (QipcTcpSocket *self,
          gboolean       remote)
{
  g_autoptr(GInetSocketAddress) address = get_address (self, remote);

  if (address == NULL)
    return 0;
  return g_inet_socket_address_get_port (address);
}

/**
 * qipc_tcp_socket_get_peer_address:
 * @self: a #QipcTcpSocket
 *
 * Gets the IP address of the peer, such as `192.0.2.7` or `2001:db8::7`.
 * An IPv4 peer of a server listening on both IPv6 and IPv4 is given in
 * its IPv4 form.
 *
 * Returns: (transfer full) (nullable): the peer's address, or %NULL when
 *   the socket is not connected
 */
char *
qipc_tcp_socket_get_peer_address (QipcTcpSocket *self)
{
  g_return_val_if_fail (QIPC_IS_TCP_SOCKET (self), NULL);

  return get_address_string (self, TRUE);
}

/**
 * qipc_tcp_socket_get_peer_port:
 * @self: a #QipcTcpSocket
 *
 * Gets the peer's TCP port.
 *
 * Returns: the peer's port, or 0 when the socket is not connected
 */
guint16
qipc_tcp_socket_get_peer_port (QipcTcpSocket *self)
{
  g_return_val_if_fail (QIPC_IS_TCP_SOCKET (self), 0);

  return get_port (self, TRUE);
}

/**
 * qipc_tcp_socket_get_local_address:
 * @self: a #QipcTcpSocket
 *
 * Gets the IP address of this end of the connection.
 *
 * Returns: (transfer full) (nullable): the local address, or %NULL when
 *   the socket is not connected
 */
char *
qipc_tcp_socket_get_local_address (QipcTcpSocket *self)
{
  g_return_val_if_fail (QIPC_IS_TCP_SOCKET (self), NULL);

  return get_address_string (self, FALSE);
}

/**
 * qipc_tcp_socket_get_local_port:
 * @self: a #QipcTcpSocket
 *
 * Gets the TCP port of this end of the connection.
 *
 * Returns: the local port, or 0 when the socket is not connected
 */
guint16
qipc_tcp_socket_get_local_port (QipcTcpSocket *self)
{
  g_return_val_if_fail (QIPC_IS_TCP_SOCKET (self), 0);

  return get_port (self, FALSE);
}

/**
 * qipc_tcp_socket_set_no_delay: (set-property no-delay)
 * @self: a #QipcTcpSocket
 * @no_delay: %TRUE to send small writes at once
 *
 * Turns Nagle's algorithm off (`TCP_NODELAY`) or back on, now if
 * connected, else once connected. Request-response protocols with small
 * messages want it off.
 */
void
qipc_tcp_socket_set_no_delay (QipcTcpSocket *self,
                              gboolean       no_delay)
{
  GSocket *socket;

  g_return_if_fail (QIPC_IS_TCP_SOCKET (self));

  no_delay = !!no_delay;
  if (self->no_delay == no_delay)
    return;

  self->no_delay = no_delay;
  socket = get_gsocket (self);
  if (socket != NULL)
    apply_no_delay (self, socket);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_NO_DELAY]);
}

/**
 * qipc_tcp_socket_get_no_delay: (get-property no-delay)
 * @self: a #QipcTcpSocket
 *
 * Tells whether Nagle's algorithm is off. On a connected socket, this is
 * what the system says of the connection.
 *
 * Returns: %TRUE if small writes are sent at once
 */
gboolean
qipc_tcp_socket_get_no_delay (QipcTcpSocket *self)
{
  GSocket *socket;
  int value;

  g_return_val_if_fail (QIPC_IS_TCP_SOCKET (self), FALSE);

  socket = get_gsocket (self);
  if (socket != NULL && !g_socket_is_closed (socket) &&
      g_socket_get_option (socket, IPPROTO_TCP, TCP_NODELAY, &value, NULL))
    return value != 0;
  return self->no_delay;
}

/**
 * qipc_tcp_socket_set_keep_alive: (set-property keep-alive)
 * @self: a #QipcTcpSocket
 * @keep_alive: %TRUE to probe idle connections
 *
 * Turns TCP keep-alive probes (`SO_KEEPALIVE`) on or off, now if
 * connected, else once connected.
 */
void
qipc_tcp_socket_set_keep_alive (QipcTcpSocket *self,
                                gboolean       keep_alive)
{
  GSocket *socket;

  g_return_if_fail (QIPC_IS_TCP_SOCKET (self));

  keep_alive = !!keep_alive;
  if (self->keep_alive == keep_alive)
    return;

  self->keep_alive = keep_alive;
  socket = get_gsocket (self);
  if (socket != NULL && !g_socket_is_closed (socket))
    g_socket_set_keepalive (socket, keep_alive);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_KEEP_ALIVE]);
}

/**
 * qipc_tcp_socket_get_keep_alive: (get-property keep-alive)
 * @self: a #QipcTcpSocket
 *
 * Tells whether TCP keep-alive probes are on. On a connected socket, this
 * is what the system says of the connection.
 *
 * Returns: %TRUE if idle connections are probed
 */
gboolean
qipc_tcp_socket_get_keep_alive (QipcTcpSocket *self)
{
  GSocket *socket;
  int value;

  g_return_val_if_fail (QIPC_IS_TCP_SOCKET (self), FALSE);

  socket = get_gsocket (self);
  if (socket != NULL && !g_socket_is_closed (socket) &&
      g_socket_get_option (socket, SOL_SOCKET, SO_KEEPALIVE, &value, NULL))
    return value != 0;
  return self->keep_alive;
}

void
_qipc_tcp_socket_take_connection (QipcTcpSocket     *self,
                                  GSocketConnection *connection,
                                  GTlsCertificate   *certificate)
{
  g_autoptr(GError) gio_error = NULL;
  GIOStream *tls;

  if (certificate == NULL)
    {
      attach_connection (self, G_IO_STREAM (connection), connection);
      return;
    }

  _qipc_socket_set_state (QIPC_SOCKET (self), QIPC_SOCKET_STATE_CONNECTING);
  self->connection = g_object_ref (connection);
  tls = g_tls_server_connection_new (G_IO_STREAM (connection), certificate, &gio_error);
  if (tls == NULL)
    {
      fail_from_gio (self, gio_error, "Cannot start TLS");
      return;
    }
  set_tls (self, tls);
  start_handshake (self);
}

void
_qipc_tcp_socket_set_tls_peer (QipcTcpSocket      *self,
                               GSocketConnectable *identity,
                               GTlsDatabase       *database)
{
  g_set_object (&self->peer_identity, identity);
  g_set_object (&self->tls_database, database);
}
