/* qipc-server.c: a listening socket that hands out QipcSockets
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/**
 * QipcServer:
 *
 * The base of [class@TcpServer] and [class@LocalServer], as Qt's
 * `QTcpServer` and `QLocalServer`: it accepts connections on the
 * thread-default [struct@GLib.MainContext] of the thread that called
 * listen, queues them, and emits [signal@Server::new-connection] for each.
 *
 * ```c
 * static void
 * on_new_connection (QipcServer *server, gpointer user_data)
 * {
 *   QipcSocket *socket;
 *
 *   while ((socket = qipc_server_next_pending_connection (server)) != NULL)
 *     g_signal_connect (socket, "ready-read", G_CALLBACK (on_ready_read), NULL);
 * }
 * ```
 *
 * At most [property@Server:max-pending-connections] connections wait in
 * the queue; past that the server stops accepting (the system's backlog
 * holds further clients) until [method@Server.next_pending_connection]
 * takes one.
 */

#include "qipc-server.h"
#include "qipc-server-private.h"
#include "qipc-socket-private.h"


/* After a failed accept the server waits this long before it accepts
 * again, doubling up to ACCEPT_RETRY_MAX_MS while accepting keeps
 * failing: a process out of file descriptors would otherwise find the
 * listener readable, fail and try again, at full speed, until one is
 * free. */
#define ACCEPT_RETRY_MS 100
#define ACCEPT_RETRY_MAX_MS 1600

typedef struct
{
  GPtrArray *listeners;
  GPtrArray *sources;
  GSource *retry_source;      /* waiting after a failed accept */
  guint retry_ms;             /* the next wait; 0 after a success */
  GQueue pending;
  guint max_pending;
  gboolean paused;
  GMainContext *context;
  QipcServerClosedFunc closed_func;
} QipcServerPrivate;

enum {
  NEW_CONNECTION,
  ACCEPT_ERROR,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

enum {
  PROP_0,
  PROP_LISTENING,
  PROP_MAX_PENDING_CONNECTIONS,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE (QipcServer, qipc_server, G_TYPE_OBJECT)

static void update_accepting (QipcServer *self);

static void
qipc_server_dispose (GObject *object)
{
  QipcServer *self = QIPC_SERVER (object);
  QipcServerPrivate *priv = qipc_server_get_instance_private (self);

  qipc_server_close (self);
  g_queue_clear_full (&priv->pending, g_object_unref);

  G_OBJECT_CLASS (qipc_server_parent_class)->dispose (object);
}

static void
qipc_server_finalize (GObject *object)
{
  QipcServer *self = QIPC_SERVER (object);
  QipcServerPrivate *priv = qipc_server_get_instance_private (self);

  g_clear_pointer (&priv->listeners, g_ptr_array_unref);
  g_clear_pointer (&priv->sources, g_ptr_array_unref);
  g_clear_pointer (&priv->context, g_main_context_unref);

  G_OBJECT_CLASS (qipc_server_parent_class)->finalize (object);
}

static void
qipc_server_get_property (GObject    *object,
                          guint       prop_id,
                          GValue     *value,
                          GParamSpec *pspec)
{
  QipcServer *self = QIPC_SERVER (object);

  switch (prop_id)
    {
    case PROP_LISTENING:
      g_value_set_boolean (value, qipc_server_is_listening (self));
      break;
    case PROP_MAX_PENDING_CONNECTIONS:
      g_value_set_uint (value, qipc_server_get_max_pending_connections (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
qipc_server_set_property (GObject      *object,
                          guint         prop_id,
                          const GValue *value,
                          GParamSpec   *pspec)
{
  QipcServer *self = QIPC_SERVER (object);

  switch (prop_id)
    {
    case PROP_MAX_PENDING_CONNECTIONS:
      qipc_server_set_max_pending_connections (self, g_value_get_uint (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
qipc_server_class_init (QipcServerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = qipc_server_dispose;
  object_class->finalize = qipc_server_finalize;
  object_class->get_property = qipc_server_get_property;
  object_class->set_property = qipc_server_set_property;

  /**
   * QipcServer:listening: (getter is_listening)
   *
   * Whether the server listens.
   */
  properties[PROP_LISTENING] =
    g_param_spec_boolean ("listening", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * QipcServer:max-pending-connections: (getter get_max_pending_connections) (setter set_max_pending_connections)
   *
   * How many accepted connections may wait for
   * [method@Server.next_pending_connection]; 30 by default, as in Qt.
   */
  properties[PROP_MAX_PENDING_CONNECTIONS] =
    g_param_spec_uint ("max-pending-connections", NULL, NULL, 1, G_MAXUINT, 30,
                       G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * QipcServer::new-connection:
   * @self: the server
   *
   * A connection was accepted and waits in the queue: take it with
   * [method@Server.next_pending_connection]. Emitted once per connection.
   */
  signals[NEW_CONNECTION] =
    g_signal_new ("new-connection", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  G_STRUCT_OFFSET (QipcServerClass, new_connection),
                  NULL, NULL, NULL, G_TYPE_NONE, 0);

  /**
   * QipcServer::accept-error:
   * @self: the server
   * @error: what went wrong, in the %QIPC_SOCKET_ERROR domain
   *
   * Accepting a connection failed, for example because the process ran
   * out of file descriptors (%QIPC_SOCKET_ERROR_SOCKET_RESOURCE).
   *
   * The server keeps listening, but accepts nothing for 100 ms, then
   * twice as long after each further failure up to 1.6 s, and back to
   * 100 ms after a success; clients wait in the system's backlog
   * meanwhile. So a process out of descriptors does not spin on a
   * listener that stays readable, and this signal comes at most ten
   * times a second.
   */
  signals[ACCEPT_ERROR] =
    g_signal_new ("accept-error", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  G_STRUCT_OFFSET (QipcServerClass, accept_error),
                  NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_ERROR);
}

static void
qipc_server_init (QipcServer *self)
{
  QipcServerPrivate *priv = qipc_server_get_instance_private (self);

  priv->listeners = g_ptr_array_new_with_free_func (g_object_unref);
  priv->sources = g_ptr_array_new ();
  priv->max_pending = 30;
  g_queue_init (&priv->pending);
}

static gboolean
retry_accepting (gpointer user_data)
{
  QipcServer *self = user_data;
  QipcServerPrivate *priv = qipc_server_get_instance_private (self);

  g_clear_pointer (&priv->retry_source, g_source_unref);
  update_accepting (self);
  return G_SOURCE_REMOVE;
}

static void
stop_retrying (QipcServerPrivate *priv)
{
  if (priv->retry_source == NULL)
    return;
  g_source_destroy (priv->retry_source);
  g_clear_pointer (&priv->retry_source, g_source_unref);
}

/* Reports a failed accept and stops accepting for a while. */
static void
accept_failed (QipcServer   *self,
               const GError *error,
               GError      **accept_error)
{
  QipcServerPrivate *priv = qipc_server_get_instance_private (self);
  g_autoptr(GError) reported = NULL;

  _qipc_socket_set_error_from_gio (&reported, error, "Cannot accept a connection");
  g_signal_emit (self, signals[ACCEPT_ERROR], 0, reported);
  if (accept_error != NULL)
    *accept_error = g_steal_pointer (&reported);
  /* A handler may have closed the server. */
  if (priv->listeners->len == 0 || priv->retry_source != NULL)
    return;
  priv->retry_ms = priv->retry_ms == 0 ? ACCEPT_RETRY_MS
                                       : MIN (priv->retry_ms * 2, ACCEPT_RETRY_MAX_MS);
  priv->retry_source = g_timeout_source_new (priv->retry_ms);
  g_source_set_callback (priv->retry_source, retry_accepting, self, NULL);
  g_source_set_static_name (priv->retry_source, "[qipc] server accept retry");
  g_source_attach (priv->retry_source, priv->context);
  update_accepting (self);
}

/* Accepts one connection from @listener. Returns FALSE when none waits,
 * or with @accept_error set when accepting failed. */
static gboolean
accept_one (QipcServer  *self,
            GSocket     *listener,
            GError     **accept_error)
{
  QipcServerPrivate *priv = qipc_server_get_instance_private (self);
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) accepted = g_socket_accept (listener, NULL, &error);
  g_autoptr(GSocketConnection) connection = NULL;
  QipcSocket *socket;

  if (accepted == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        accept_failed (self, error, accept_error);
      return FALSE;
    }
  priv->retry_ms = 0;

  /* The new socket lives on the server's context, whatever context is
   * the thread default where this runs (wait_for_new_connection). */
  connection = g_socket_connection_factory_create_connection (accepted);
  g_main_context_push_thread_default (priv->context);
  socket = QIPC_SERVER_GET_CLASS (self)->incoming_connection (self, connection);
  g_main_context_pop_thread_default (priv->context);
  if (socket == NULL)
    return TRUE;

  g_queue_push_tail (&priv->pending, socket);
  g_signal_emit (self, signals[NEW_CONNECTION], 0);
  return TRUE;
}

static gboolean
queue_full (QipcServerPrivate *priv)
{
  return g_queue_get_length (&priv->pending) >= priv->max_pending;
}

static gboolean
acceptable_cb (GSocket      *listener,
               GIOCondition  condition,
               gpointer      user_data)
{
  QipcServer *self = user_data;
  QipcServerPrivate *priv = qipc_server_get_instance_private (self);

  g_object_ref (self);
  while (priv->sources->len > 0 && !queue_full (priv) && accept_one (self, listener, NULL))
    ;
  update_accepting (self);
  g_object_unref (self);
  return G_SOURCE_CONTINUE;
}

static void
stop_accepting (QipcServerPrivate *priv)
{
  for (guint i = 0; i < priv->sources->len; i++)
    {
      g_source_destroy (priv->sources->pdata[i]);
      g_source_unref (priv->sources->pdata[i]);
    }
  g_ptr_array_set_size (priv->sources, 0);
}

/* Accepts while listening, not paused, not waiting after a failure,
 * and the queue has room. */
static void
update_accepting (QipcServer *self)
{
  QipcServerPrivate *priv = qipc_server_get_instance_private (self);
  gboolean want = priv->listeners->len > 0 && !priv->paused && priv->retry_source == NULL &&
                  !queue_full (priv);

  if (!want)
    {
      stop_accepting (priv);
      return;
    }
  if (priv->sources->len > 0)
    return;

  for (guint i = 0; i < priv->listeners->len; i++)
    {
      GSource *source = g_socket_create_source (priv->listeners->pdata[i], G_IO_IN, NULL);

      g_source_set_callback (source, G_SOURCE_FUNC (acceptable_cb), self, NULL);
      g_source_set_static_name (source, "[qipc] server accept");
      g_source_attach (source, priv->context);
      g_ptr_array_add (priv->sources, source);
    }
}

void
_qipc_server_add_listener (QipcServer *self,
                           GSocket    *socket)
{
  QipcServerPrivate *priv = qipc_server_get_instance_private (self);
  gboolean was_listening = priv->listeners->len > 0;

  if (priv->context == NULL)
    priv->context = g_main_context_ref_thread_default ();
  g_socket_set_blocking (socket, FALSE);
  g_ptr_array_add (priv->listeners, g_object_ref (socket));
  stop_accepting (priv);
  update_accepting (self);
  if (!was_listening)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_LISTENING]);
}

/**
 * qipc_server_is_listening: (get-property listening)
 * @self: a #QipcServer
 *
 * Tells whether the server listens.
 *
 * Returns: %TRUE when listening
 */
gboolean
qipc_server_is_listening (QipcServer *self)
{
  QipcServerPrivate *priv = qipc_server_get_instance_private (self);

  g_return_val_if_fail (QIPC_IS_SERVER (self), FALSE);

  return priv->listeners->len > 0;
}

/**
 * qipc_server_close:
 * @self: a #QipcServer
 *
 * Stops listening and closes the listening sockets. Connections already
 * accepted, handed out or pending, stay open.
 */
void
qipc_server_close (QipcServer *self)
{
  QipcServerPrivate *priv = qipc_server_get_instance_private (self);

  g_return_if_fail (QIPC_IS_SERVER (self));

  if (priv->listeners == NULL || priv->listeners->len == 0)
    return;
  stop_accepting (priv);
  stop_retrying (priv);
  priv->retry_ms = 0;
  for (guint i = 0; i < priv->listeners->len; i++)
    g_socket_close (priv->listeners->pdata[i], NULL);
  g_ptr_array_set_size (priv->listeners, 0);
  if (priv->closed_func != NULL)
    priv->closed_func (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_LISTENING]);
}

void
_qipc_server_set_closed_func (QipcServer           *self,
                              QipcServerClosedFunc  func)
{
  QipcServerPrivate *priv = qipc_server_get_instance_private (self);

  priv->closed_func = func;
}

/**
 * qipc_server_has_pending_connections:
 * @self: a #QipcServer
 *
 * Tells whether accepted connections wait in the queue.
 *
 * Returns: %TRUE when [method@Server.next_pending_connection] has one
 */
gboolean
qipc_server_has_pending_connections (QipcServer *self)
{
  QipcServerPrivate *priv = qipc_server_get_instance_private (self);

  g_return_val_if_fail (QIPC_IS_SERVER (self), FALSE);

  return !g_queue_is_empty (&priv->pending);
}

/**
 * qipc_server_next_pending_connection:
 * @self: a #QipcServer
 *
 * Takes the oldest accepted connection out of the queue. The socket is
 * connected and belongs to the caller.
 *
 * Returns: (transfer full) (nullable): the connection, or %NULL when none waits
 */
QipcSocket *
qipc_server_next_pending_connection (QipcServer *self)
{
  QipcServerPrivate *priv = qipc_server_get_instance_private (self);
  QipcSocket *socket;

  g_return_val_if_fail (QIPC_IS_SERVER (self), NULL);

  socket = g_queue_pop_head (&priv->pending);
  update_accepting (self);
  return socket;
}

/**
 * qipc_server_get_max_pending_connections: (get-property max-pending-connections)
 * @self: a #QipcServer
 *
 * Gets how many connections may wait in the queue.
 *
 * Returns: the limit of the queue
 */
guint
qipc_server_get_max_pending_connections (QipcServer *self)
{
  QipcServerPrivate *priv = qipc_server_get_instance_private (self);

  g_return_val_if_fail (QIPC_IS_SERVER (self), 0);

  return priv->max_pending;
}

/**
 * qipc_server_set_max_pending_connections: (set-property max-pending-connections)
 * @self: a #QipcServer
 * @max: how many connections may wait, at least 1
 *
 * Sets how many accepted connections may wait in the queue.
 */
void
qipc_server_set_max_pending_connections (QipcServer *self,
                                         guint       max)
{
  QipcServerPrivate *priv = qipc_server_get_instance_private (self);

  g_return_if_fail (QIPC_IS_SERVER (self));
  g_return_if_fail (max >= 1);

  if (priv->max_pending == max)
    return;
  priv->max_pending = max;
  update_accepting (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MAX_PENDING_CONNECTIONS]);
}

/**
 * qipc_server_pause_accepting:
 * @self: a #QipcServer
 *
 * Stops accepting connections; clients wait in the system's backlog.
 */
void
qipc_server_pause_accepting (QipcServer *self)
{
  QipcServerPrivate *priv = qipc_server_get_instance_private (self);

  g_return_if_fail (QIPC_IS_SERVER (self));

  priv->paused = TRUE;
  update_accepting (self);
}

/**
 * qipc_server_resume_accepting:
 * @self: a #QipcServer
 *
 * Accepts connections again after [method@Server.pause_accepting].
 */
void
qipc_server_resume_accepting (QipcServer *self)
{
  QipcServerPrivate *priv = qipc_server_get_instance_private (self);

  g_return_if_fail (QIPC_IS_SERVER (self));

  priv->paused = FALSE;
  update_accepting (self);
}

/**
 * qipc_server_wait_for_new_connection:
 * @self: a #QipcServer
 * @timeout_ms: how long to wait in milliseconds, -1 for ever
 * @error: return location for a #GError
 *
 * Blocks the calling thread until a connection is pending, without
 * running any main context: it waits on the listening sockets themselves,
 * as Qt's `waitForNewConnection()` does. A connection accepted here is
 * announced by [signal@Server::new-connection] before this returns.
 *
 * Returns: %TRUE when a connection is pending; %FALSE with @error set on
 *   timeout (%QIPC_SOCKET_ERROR_SOCKET_TIMEOUT), when not listening, or
 *   when accepting failed (the error [signal@Server::accept-error]
 *   reported, such as %QIPC_SOCKET_ERROR_SOCKET_RESOURCE)
 */
gboolean
qipc_server_wait_for_new_connection (QipcServer  *self,
                                     int          timeout_ms,
                                     GError     **error)
{
  QipcServerPrivate *priv = qipc_server_get_instance_private (self);
  gint64 deadline = timeout_ms < 0 ? -1 : g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  g_autofree GPollFD *fds = NULL;

  g_return_val_if_fail (QIPC_IS_SERVER (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!g_queue_is_empty (&priv->pending))
    return TRUE;
  if (priv->listeners->len == 0)
    {
      g_set_error_literal (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_OPERATION,
                           "Cannot wait for a connection: the server is not listening");
      return FALSE;
    }

  fds = g_new0 (GPollFD, priv->listeners->len);
  while (g_queue_is_empty (&priv->pending))
    {
      g_autoptr(GError) accept_error = NULL;
      int wait_ms = -1;

      /* A handler may have closed the server. */
      if (priv->listeners->len == 0)
        {
          g_set_error_literal (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_OPERATION,
                               "Stopped waiting for a connection: the server was closed");
          return FALSE;
        }

      if (deadline >= 0)
        {
          gint64 left = deadline - g_get_monotonic_time ();

          if (left <= 0)
            {
              g_set_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_SOCKET_TIMEOUT,
                           "Timed out after %d ms waiting for a connection", timeout_ms);
              return FALSE;
            }
          wait_ms = (int) ((left + 999) / 1000);
        }

      for (guint i = 0; i < priv->listeners->len; i++)
        {
          fds[i].fd = g_socket_get_fd (priv->listeners->pdata[i]);
          fds[i].events = G_IO_IN;
          fds[i].revents = 0;
        }
      if (g_poll (fds, priv->listeners->len, wait_ms) <= 0)
        continue;

      g_object_ref (self);
      for (guint i = 0; i < priv->listeners->len && !queue_full (priv) && accept_error == NULL; i++)
        if (fds[i].revents & G_IO_IN)
          accept_one (self, priv->listeners->pdata[i], &accept_error);
      update_accepting (self);
      g_object_unref (self);
      /* As in Qt: a failure ends the wait, rather than polling a
       * listener that stays readable. */
      if (accept_error != NULL && g_queue_is_empty (&priv->pending))
        {
          g_propagate_error (error, g_steal_pointer (&accept_error));
          return FALSE;
        }
    }

  return TRUE;
}
