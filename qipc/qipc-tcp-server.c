/* qipc-tcp-server.c: a server for QipcTcpSocket connections
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/**
 * QipcTcpServer:
 *
 * Accepts TCP connections and hands them out as [class@TcpSocket]s, like
 * Qt's `QTcpServer` (and, with a certificate, `QSslServer`).
 *
 * ```c
 * static void
 * on_new_connection (QipcServer *server, gpointer user_data)
 * {
 *   QipcSocket *client;
 *
 *   while ((client = qipc_server_next_pending_connection (server)) != NULL)
 *     serve (client);   // takes the reference
 * }
 *
 * g_autoptr(QipcTcpServer) server = qipc_tcp_server_new ();
 * g_autoptr(GError) error = NULL;
 *
 * g_signal_connect (server, "new-connection", G_CALLBACK (on_new_connection), NULL);
 * if (!qipc_tcp_server_listen (server, "127.0.0.1", 0, &error))
 *   g_error ("%s", error->message);
 * g_print ("listening on port %u\n", qipc_tcp_server_get_server_port (server));
 * ```
 *
 * ## TLS
 *
 * With a certificate set by [method@TcpServer.set_tls_certificate], every
 * accepted connection runs the server side of a TLS handshake before
 * anything is read or written in clear. Such a socket is handed out at
 * once, in state %QIPC_SOCKET_STATE_CONNECTING, so that the
 * [property@Server:max-pending-connections] limit also bounds connections
 * that are still handshaking. Data written to it meanwhile is sent
 * encrypted after the handshake. When the handshake succeeds the socket
 * emits [signal@Socket::connected] and [signal@TcpSocket::encrypted];
 * when it fails (the client refused the certificate, or is not speaking
 * TLS) it emits [signal@Socket::error-occurred] with
 * %QIPC_SOCKET_ERROR_TLS_HANDSHAKE_FAILED and ends
 * %QIPC_SOCKET_STATE_UNCONNECTED.
 */

#include "qipc-tcp-server.h"
#include "qipc-tcp-socket.h"
#include "qipc-tcp-socket-private.h"
#include "qipc-server-private.h"
#include "qipc-socket-private.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* The kernel's queue of connections not accepted yet, as Qt's default. */
#define LISTEN_BACKLOG 50

struct _QipcTcpServer
{
  QipcServer parent_instance;

  /* The sockets this server made listen, first the one whose address
   * get_server_address() gives; QipcServer owns and closes them too. */
  GPtrArray *listeners;
  GTlsCertificate *tls_certificate;
};

enum {
  PROP_0,
  PROP_TLS_CERTIFICATE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (QipcTcpServer, qipc_tcp_server, QIPC_TYPE_SERVER)

static void
qipc_tcp_server_finalize (GObject *object)
{
  QipcTcpServer *self = QIPC_TCP_SERVER (object);

  g_clear_pointer (&self->listeners, g_ptr_array_unref);
  g_clear_object (&self->tls_certificate);

  G_OBJECT_CLASS (qipc_tcp_server_parent_class)->finalize (object);
}

static void
qipc_tcp_server_get_property (GObject    *object,
                              guint       prop_id,
                              GValue     *value,
                              GParamSpec *pspec)
{
  QipcTcpServer *self = QIPC_TCP_SERVER (object);

  switch (prop_id)
    {
    case PROP_TLS_CERTIFICATE:
      g_value_set_object (value, self->tls_certificate);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
qipc_tcp_server_set_property (GObject      *object,
                              guint         prop_id,
                              const GValue *value,
                              GParamSpec   *pspec)
{
  QipcTcpServer *self = QIPC_TCP_SERVER (object);

  switch (prop_id)
    {
    case PROP_TLS_CERTIFICATE:
      qipc_tcp_server_set_tls_certificate (self, g_value_get_object (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static QipcSocket *
qipc_tcp_server_incoming_connection (QipcServer        *server,
                                     GSocketConnection *connection)
{
  QipcTcpServer *self = QIPC_TCP_SERVER (server);
  QipcTcpSocket *socket = qipc_tcp_socket_new ();

  _qipc_tcp_socket_take_connection (socket, connection, self->tls_certificate);
  return QIPC_SOCKET (socket);
}

static void
qipc_tcp_server_class_init (QipcTcpServerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  QipcServerClass *server_class = QIPC_SERVER_CLASS (klass);

  object_class->finalize = qipc_tcp_server_finalize;
  object_class->get_property = qipc_tcp_server_get_property;
  object_class->set_property = qipc_tcp_server_set_property;

  server_class->incoming_connection = qipc_tcp_server_incoming_connection;

  /**
   * QipcTcpServer:tls-certificate: (getter get_tls_certificate) (setter set_tls_certificate)
   *
   * The certificate, with its private key, that connections accepted
   * from now on present in a TLS handshake; %NULL (the default) for
   * plain TCP. See "TLS" in the class documentation.
   */
  properties[PROP_TLS_CERTIFICATE] =
    g_param_spec_object ("tls-certificate", NULL, NULL, G_TYPE_TLS_CERTIFICATE,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
qipc_tcp_server_init (QipcTcpServer *self)
{
  self->listeners = g_ptr_array_new_with_free_func (g_object_unref);
}

/**
 * qipc_tcp_server_new:
 *
 * Creates a TCP server that is not listening yet. The sockets it hands
 * out belong to the main context that is the thread-default one when
 * connections are accepted, the one of the thread that called
 * [method@TcpServer.listen].
 *
 * Returns: (transfer full): a new #QipcTcpServer
 */
QipcTcpServer *
qipc_tcp_server_new (void)
{
  return g_object_new (QIPC_TYPE_TCP_SERVER, NULL);
}

static void
set_listen_error (GError        **error,
                  int             errsv,
                  GSocketAddress *address)
{
  g_autofree char *text = g_socket_connectable_to_string (G_SOCKET_CONNECTABLE (address));
  QipcSocketError code;

  switch (errsv)
    {
    case EADDRINUSE:
      code = QIPC_SOCKET_ERROR_ADDRESS_IN_USE;
      break;
    case EADDRNOTAVAIL:
    case EAFNOSUPPORT:
      code = QIPC_SOCKET_ERROR_ADDRESS_NOT_AVAILABLE;
      break;
    case EACCES:
    case EPERM:
      code = QIPC_SOCKET_ERROR_SOCKET_ACCESS;
      break;
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
      code = QIPC_SOCKET_ERROR_SOCKET_RESOURCE;
      break;
    default:
      code = QIPC_SOCKET_ERROR_FAILED;
      break;
    }

  g_set_error (error, QIPC_SOCKET_ERROR, code, "Cannot listen on %s: %s", text, g_strerror (errsv));
}

/* Binds with bind(2) itself, because GIO reports EADDRNOTAVAIL (an
 * address that is not this machine's) as a generic failure. */
static gboolean
bind_socket (GSocket        *socket,
             GSocketAddress *address,
             GError        **error)
{
  struct sockaddr_storage native;
  gsize length = g_socket_address_get_native_size (address);

  if (!g_socket_address_to_native (address, &native, sizeof native, NULL))
    return set_listen_error (error, EAFNOSUPPORT, address), FALSE;
  if (bind (g_socket_get_fd (socket), (struct sockaddr *) &native, length) < 0)
    return set_listen_error (error, errno, address), FALSE;
  return TRUE;
}

/* A bound, listening socket on @port of @inet (0 for any free port),
 * or NULL with @error set. */
static GSocket *
open_listener (GInetAddress  *inet,
               guint16        port,
               GError       **error)
{
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (inet, port);
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GError) gio_error = NULL;

  socket = g_socket_new (g_inet_address_get_family (inet), G_SOCKET_TYPE_STREAM,
                         G_SOCKET_PROTOCOL_TCP, &gio_error);
  if (socket == NULL)
    {
      _qipc_socket_set_error_from_gio (error, gio_error, "Cannot create a TCP socket");
      return NULL;
    }

  /* A restarted server can take its port again while connections of its
   * previous run linger in TIME_WAIT; a live listener still keeps it. */
  g_socket_set_option (socket, SOL_SOCKET, SO_REUSEADDR, 1, NULL);
  if (!bind_socket (socket, address, error))
    return NULL;

  g_socket_set_listen_backlog (socket, LISTEN_BACKLOG);
  if (!g_socket_listen (socket, &gio_error))
    {
      _qipc_socket_set_error_from_gio (error, gio_error, "Cannot listen");
      return NULL;
    }
  return g_steal_pointer (&socket);
}

static guint16
local_port (GSocket *socket)
{
  g_autoptr(GSocketAddress) address = g_socket_get_local_address (socket, NULL);

  if (address == NULL || !G_IS_INET_SOCKET_ADDRESS (address))
    return 0;
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (address));
}

/* Any address: one dual-stack IPv6 socket where the system has IPv6,
 * which takes IPv4 connections too; an IPv4 one besides, on the same
 * port, where IPv6 sockets are IPv6-only; IPv4 alone without IPv6. */
static gboolean
open_any_listeners (QipcTcpServer  *self,
                    guint16         port,
                    GError        **error)
{
  g_autoptr(GInetAddress) any6 = g_inet_address_new_any (G_SOCKET_FAMILY_IPV6);
  g_autoptr(GInetAddress) any4 = g_inet_address_new_any (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GError) v6_error = NULL;
  GSocket *v6 = open_listener (any6, port, &v6_error);
  GSocket *v4;
  int v6_only = 0;

  if (v6 != NULL)
    {
      g_ptr_array_add (self->listeners, v6);
      g_socket_get_option (v6, IPPROTO_IPV6, IPV6_V6ONLY, &v6_only, NULL);
      if (!v6_only)
        return TRUE;
      port = local_port (v6);
    }
  else if (!g_error_matches (v6_error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_ADDRESS_NOT_AVAILABLE) &&
           !g_error_matches (v6_error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_FAILED))
    {
      g_propagate_error (error, g_steal_pointer (&v6_error));
      return FALSE;
    }

  v4 = open_listener (any4, port, error);
  if (v4 == NULL)
    return FALSE;
  g_ptr_array_add (self->listeners, v4);
  return TRUE;
}

static gboolean
open_listeners (QipcTcpServer  *self,
                const char     *address,
                guint16         port,
                GError        **error)
{
  g_autoptr(GInetAddress) inet = NULL;
  GSocket *socket;

  if (address == NULL)
    return open_any_listeners (self, port, error);

  inet = g_inet_address_new_from_string (address);
  if (inet == NULL)
    {
      g_set_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_ADDRESS_NOT_AVAILABLE,
                   "Cannot listen on “%s”: not an IPv4 or IPv6 address", address);
      return FALSE;
    }

  socket = open_listener (inet, port, error);
  if (socket == NULL)
    return FALSE;
  g_ptr_array_add (self->listeners, socket);
  return TRUE;
}

/**
 * qipc_tcp_server_listen:
 * @self: a #QipcTcpServer
 * @address: (nullable): the IPv4 or IPv6 address to listen on, such as
 *   `127.0.0.1` or `::1`, or %NULL for every address of the machine, in
 *   IPv6 and IPv4
 * @port: the port to listen on, or 0 for one the system picks
 * @error: return location for a #GError
 *
 * Starts listening; [signal@Server::new-connection] announces each
 * connection accepted. With @port 0, [method@TcpServer.get_server_port]
 * tells the port the system picked.
 *
 * Returns: %TRUE when listening; %FALSE with @error set:
 *   %QIPC_SOCKET_ERROR_ADDRESS_IN_USE when another socket listens on that
 *   port, %QIPC_SOCKET_ERROR_ADDRESS_NOT_AVAILABLE when @address is not an
 *   IP address or not one of this machine's,
 *   %QIPC_SOCKET_ERROR_SOCKET_ACCESS for a privileged port,
 *   %QIPC_SOCKET_ERROR_OPERATION when already listening
 */
gboolean
qipc_tcp_server_listen (QipcTcpServer  *self,
                        const char     *address,
                        guint16         port,
                        GError        **error)
{
  g_return_val_if_fail (QIPC_IS_TCP_SERVER (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (qipc_server_is_listening (QIPC_SERVER (self)))
    {
      g_set_error_literal (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_OPERATION,
                           "Cannot listen: the server is listening already");
      return FALSE;
    }

  g_ptr_array_set_size (self->listeners, 0);
  if (!open_listeners (self, address, port, error))
    {
      g_ptr_array_set_size (self->listeners, 0);
      return FALSE;
    }

  for (guint i = 0; i < self->listeners->len; i++)
    _qipc_server_add_listener (QIPC_SERVER (self), self->listeners->pdata[i]);
  return TRUE;
}

/**
 * qipc_tcp_server_get_server_address:
 * @self: a #QipcTcpServer
 *
 * Gets the address the server listens on: the one given to
 * [method@TcpServer.listen], or `::` (or `0.0.0.0` without IPv6) when
 * it listens on every address.
 *
 * Returns: (transfer full) (nullable): the address, or %NULL when the
 *   server is not listening
 */
char *
qipc_tcp_server_get_server_address (QipcTcpServer *self)
{
  g_autoptr(GSocketAddress) address = NULL;

  g_return_val_if_fail (QIPC_IS_TCP_SERVER (self), NULL);

  if (!qipc_server_is_listening (QIPC_SERVER (self)) || self->listeners->len == 0)
    return NULL;

  address = g_socket_get_local_address (self->listeners->pdata[0], NULL);
  if (address == NULL || !G_IS_INET_SOCKET_ADDRESS (address))
    return NULL;
  return g_inet_address_to_string (g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (address)));
}

/**
 * qipc_tcp_server_get_server_port:
 * @self: a #QipcTcpServer
 *
 * Gets the port the server listens on, the one the system picked when
 * [method@TcpServer.listen] was given 0.
 *
 * Returns: the port, or 0 when the server is not listening
 */
guint16
qipc_tcp_server_get_server_port (QipcTcpServer *self)
{
  g_return_val_if_fail (QIPC_IS_TCP_SERVER (self), 0);

  if (!qipc_server_is_listening (QIPC_SERVER (self)) || self->listeners->len == 0)
    return 0;
  return local_port (self->listeners->pdata[0]);
}

/**
 * qipc_tcp_server_get_tls_certificate: (get-property tls-certificate)
 * @self: a #QipcTcpServer
 *
 * Gets the certificate accepted connections present in a TLS handshake.
 *
 * Returns: (transfer none) (nullable): the certificate, or %NULL when
 *   the server accepts plain TCP connections
 */
GTlsCertificate *
qipc_tcp_server_get_tls_certificate (QipcTcpServer *self)
{
  g_return_val_if_fail (QIPC_IS_TCP_SERVER (self), NULL);

  return self->tls_certificate;
}

/**
 * qipc_tcp_server_set_tls_certificate: (set-property tls-certificate)
 * @self: a #QipcTcpServer
 * @certificate: (nullable): a certificate with its private key, or %NULL
 *   for plain TCP
 *
 * Makes connections accepted from now on run the server side of a TLS
 * handshake presenting @certificate, before anything else; see "TLS" in
 * the class documentation. Connections accepted already are not
 * affected.
 */
void
qipc_tcp_server_set_tls_certificate (QipcTcpServer   *self,
                                     GTlsCertificate *certificate)
{
  g_return_if_fail (QIPC_IS_TCP_SERVER (self));
  g_return_if_fail (certificate == NULL || G_IS_TLS_CERTIFICATE (certificate));

  if (g_set_object (&self->tls_certificate, certificate))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TLS_CERTIFICATE]);
}
