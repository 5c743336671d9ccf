/* qipc-local-server.c: a server for QipcLocalSocket connections
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/**
 * QipcLocalServer:
 *
 * Accepts [class@LocalSocket] connections on a Unix domain socket, like
 * Qt's `QLocalServer`.
 *
 * ```c
 * g_autoptr(QipcLocalServer) server = qipc_local_server_new ();
 * g_autoptr(GError) error = NULL;
 *
 * g_signal_connect (server, "new-connection", G_CALLBACK (on_new_connection), NULL);
 * if (!qipc_local_server_listen (server, "org.example.service", &error))
 *   g_error ("%s", error->message);
 * ```
 *
 * Server names are those of [class@LocalSocket]: `@name` in the abstract
 * namespace, a path when the name contains a `/`, else a file in
 * g_get_user_runtime_dir().
 *
 * ## The socket file
 *
 * A path-named server creates its socket file when it starts listening,
 * with the mode [property@LocalServer:socket-options] asks for, set
 * before any client can connect, and removes it on
 * [method@Server.close] or when finalized, unless the file was replaced
 * by someone else meanwhile.
 *
 * A server that crashed leaves its socket file behind. When the name is
 * taken, [method@LocalServer.listen] connects to it first: if nobody
 * answers, the file is stale and replaced; if a server answers, listening
 * fails with %QIPC_SOCKET_ERROR_ADDRESS_IN_USE and the live server is
 * left alone. A file that is not a socket is never removed.
 */

#include "qipc-local-server.h"
#include "qipc-local-socket-private.h"
#include "qipc-server-private.h"
#include "qipc-enum-types.h"

#include <errno.h>
#include <gio/gunixsocketaddress.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* How long listen() waits for a server that may hold a socket file. */
#define PROBE_TIMEOUT_S 1

struct _QipcLocalServer
{
  QipcServer parent_instance;

  char *server_name;
  char *full_server_name;
  QipcLocalServerOptions socket_options;

  /* The socket file this server created, removed only while it is
   * still the same file. */
  char *socket_path;
  dev_t socket_dev;
  ino_t socket_ino;
};

enum {
  PROP_0,
  PROP_SERVER_NAME,
  PROP_FULL_SERVER_NAME,
  PROP_SOCKET_OPTIONS,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (QipcLocalServer, qipc_local_server, QIPC_TYPE_SERVER)

static gboolean
is_same_file (const char *path,
              dev_t       dev,
              ino_t       ino)
{
  struct stat st;

  return lstat (path, &st) == 0 && S_ISSOCK (st.st_mode) && st.st_dev == dev && st.st_ino == ino;
}

static void
remove_socket_file (QipcLocalServer *self)
{
  g_autofree char *path = g_steal_pointer (&self->socket_path);

  if (path != NULL && is_same_file (path, self->socket_dev, self->socket_ino))
    unlink (path);
}

static void
qipc_local_server_finalize (GObject *object)
{
  QipcLocalServer *self = QIPC_LOCAL_SERVER (object);

  remove_socket_file (self);
  g_free (self->server_name);
  g_free (self->full_server_name);

  G_OBJECT_CLASS (qipc_local_server_parent_class)->finalize (object);
}

static void
qipc_local_server_get_property (GObject    *object,
                                guint       prop_id,
                                GValue     *value,
                                GParamSpec *pspec)
{
  QipcLocalServer *self = QIPC_LOCAL_SERVER (object);

  switch (prop_id)
    {
    case PROP_SERVER_NAME:
      g_value_set_string (value, self->server_name);
      break;
    case PROP_FULL_SERVER_NAME:
      g_value_set_string (value, self->full_server_name);
      break;
    case PROP_SOCKET_OPTIONS:
      g_value_set_flags (value, self->socket_options);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
qipc_local_server_set_property (GObject      *object,
                                guint         prop_id,
                                const GValue *value,
                                GParamSpec   *pspec)
{
  QipcLocalServer *self = QIPC_LOCAL_SERVER (object);

  switch (prop_id)
    {
    case PROP_SOCKET_OPTIONS:
      qipc_local_server_set_socket_options (self, g_value_get_flags (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
qipc_local_server_closed (QipcServer *server)
{
  remove_socket_file (QIPC_LOCAL_SERVER (server));
}

static QipcSocket *
qipc_local_server_incoming_connection (QipcServer        *server,
                                       GSocketConnection *connection)
{
  QipcLocalServer *self = QIPC_LOCAL_SERVER (server);

  return QIPC_SOCKET (_qipc_local_socket_new_for_connection (connection, self->server_name));
}

static void
qipc_local_server_class_init (QipcLocalServerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  QipcServerClass *server_class = QIPC_SERVER_CLASS (klass);

  object_class->finalize = qipc_local_server_finalize;
  object_class->get_property = qipc_local_server_get_property;
  object_class->set_property = qipc_local_server_set_property;

  server_class->incoming_connection = qipc_local_server_incoming_connection;

  /**
   * QipcLocalServer:server-name: (getter get_server_name)
   *
   * The name given to [method@LocalServer.listen], %NULL before.
   */
  properties[PROP_SERVER_NAME] =
    g_param_spec_string ("server-name", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * QipcLocalServer:full-server-name: (getter get_full_server_name)
   *
   * Where the server listens: the path of its socket file, or `@name`
   * for an abstract name; %NULL before [method@LocalServer.listen].
   */
  properties[PROP_FULL_SERVER_NAME] =
    g_param_spec_string ("full-server-name", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * QipcLocalServer:socket-options: (getter get_socket_options) (setter set_socket_options)
   *
   * Who may connect to the socket file of a path-named server, applied
   * by the next [method@LocalServer.listen]. The default,
   * %QIPC_LOCAL_SERVER_OPTIONS_NONE, keeps the mode the umask gives.
   */
  properties[PROP_SOCKET_OPTIONS] =
    g_param_spec_flags ("socket-options", NULL, NULL,
                        QIPC_TYPE_LOCAL_SERVER_OPTIONS, QIPC_LOCAL_SERVER_OPTIONS_NONE,
                        G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
qipc_local_server_init (QipcLocalServer *self)
{
  _qipc_server_set_closed_func (QIPC_SERVER (self), qipc_local_server_closed);
}

/**
 * qipc_local_server_new:
 *
 * Creates a server that does not listen yet. Its signals are emitted on
 * the thread-default main context of the caller.
 *
 * Returns: (transfer full): a new #QipcLocalServer
 */
QipcLocalServer *
qipc_local_server_new (void)
{
  return g_object_new (QIPC_TYPE_LOCAL_SERVER, NULL);
}

static gboolean
set_listen_error (GError       **error,
                  const GError  *gio_error,
                  const char    *name)
{
  QipcSocketError code;

  if (gio_error->domain != G_IO_ERROR)
    code = QIPC_SOCKET_ERROR_FAILED;
  else if (gio_error->code == G_IO_ERROR_ADDRESS_IN_USE)
    code = QIPC_SOCKET_ERROR_ADDRESS_IN_USE;
  else if (gio_error->code == G_IO_ERROR_PERMISSION_DENIED)
    code = QIPC_SOCKET_ERROR_SOCKET_ACCESS;
  else if (gio_error->code == G_IO_ERROR_NOT_FOUND || gio_error->code == G_IO_ERROR_NOT_DIRECTORY)
    code = QIPC_SOCKET_ERROR_ADDRESS_NOT_AVAILABLE;
  else if (gio_error->code == G_IO_ERROR_TOO_MANY_OPEN_FILES || gio_error->code == G_IO_ERROR_NO_SPACE)
    code = QIPC_SOCKET_ERROR_SOCKET_RESOURCE;
  else
    code = QIPC_SOCKET_ERROR_FAILED;

  g_set_error (error, QIPC_SOCKET_ERROR, code,
               "Cannot listen on local server name “%s”: %s", name, gio_error->message);
  return FALSE;
}

/* Someone holds the socket file at @path. Connect to it: only when the
 * connection is refused is nobody listening, and the file is removed. A
 * full backlog (EAGAIN) or an answer means a live server. */
static gboolean
remove_stale_socket (GSocketAddress  *address,
                     const char      *path,
                     const char      *name,
                     GError         **error)
{
  g_autoptr(GSocket) probe = NULL;
  g_autoptr(GError) probe_error = NULL;
  struct stat st;

  if (lstat (path, &st) < 0)
    return errno == ENOENT;
  if (!S_ISSOCK (st.st_mode))
    {
      g_set_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_ADDRESS_IN_USE,
                   "Cannot listen on local server name “%s”: %s exists and is not a socket",
                   name, path);
      return FALSE;
    }

  probe = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT, &probe_error);
  if (probe == NULL)
    return set_listen_error (error, probe_error, name);
  g_socket_set_timeout (probe, PROBE_TIMEOUT_S);

  if (g_socket_connect (probe, address, NULL, &probe_error))
    {
      g_set_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_ADDRESS_IN_USE,
                   "Cannot listen on local server name “%s”: another server is listening there",
                   name);
      return FALSE;
    }
  if (g_error_matches (probe_error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
    return TRUE;
  if (!g_error_matches (probe_error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED))
    {
      g_set_error (error, QIPC_SOCKET_ERROR,
                   g_error_matches (probe_error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED)
                     ? QIPC_SOCKET_ERROR_SOCKET_ACCESS : QIPC_SOCKET_ERROR_ADDRESS_IN_USE,
                   "Cannot listen on local server name “%s”: it is in use (%s)",
                   name, probe_error->message);
      return FALSE;
    }

  /* Stale. Remove it only if it is still the file that refused, so that
   * a server which has just replaced it is not displaced. */
  if (is_same_file (path, st.st_dev, st.st_ino) && unlink (path) < 0 && errno != ENOENT)
    {
      int errsv = errno;

      g_set_error (error, QIPC_SOCKET_ERROR,
                   errsv == EACCES || errsv == EPERM ? QIPC_SOCKET_ERROR_SOCKET_ACCESS
                                                     : QIPC_SOCKET_ERROR_FAILED,
                   "Cannot remove the stale socket file of local server “%s”: %s",
                   name, g_strerror (errsv));
      return FALSE;
    }
  return TRUE;
}

static gboolean
bind_socket (GSocket         *socket,
             GSocketAddress  *address,
             const char      *path,
             const char      *name,
             GError         **error)
{
  g_autoptr(GError) bind_error = NULL;

  if (g_socket_bind (socket, address, FALSE, &bind_error))
    return TRUE;
  if (path == NULL || !g_error_matches (bind_error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE))
    return set_listen_error (error, bind_error, name);

  if (!remove_stale_socket (address, path, name, error))
    return FALSE;

  g_clear_error (&bind_error);
  if (g_socket_bind (socket, address, FALSE, &bind_error))
    return TRUE;
  return set_listen_error (error, bind_error, name);
}

static guint
options_to_mode (QipcLocalServerOptions options)
{
  guint mode = 0;

  /* Connecting takes write permission on the socket file; read is given
   * along, as Qt does. */
  if (options & QIPC_LOCAL_SERVER_OPTIONS_USER_ACCESS)
    mode |= S_IRUSR | S_IWUSR;
  if (options & QIPC_LOCAL_SERVER_OPTIONS_GROUP_ACCESS)
    mode |= S_IRGRP | S_IWGRP;
  if (options & QIPC_LOCAL_SERVER_OPTIONS_OTHER_ACCESS)
    mode |= S_IROTH | S_IWOTH;
  return mode;
}

/* Sets the mode of the new socket file, and remembers the file so that
 * close() removes this one and no other. */
static gboolean
take_socket_file (QipcLocalServer  *self,
                  const char       *path,
                  const char       *name,
                  GError          **error)
{
  struct stat st;

  if (self->socket_options != QIPC_LOCAL_SERVER_OPTIONS_NONE &&
      chmod (path, options_to_mode (self->socket_options)) < 0)
    {
      int errsv = errno;

      unlink (path);
      g_set_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_SOCKET_ACCESS,
                   "Cannot set the permissions of local server “%s”: %s", name, g_strerror (errsv));
      return FALSE;
    }

  if (lstat (path, &st) == 0)
    {
      self->socket_path = g_strdup (path);
      self->socket_dev = st.st_dev;
      self->socket_ino = st.st_ino;
    }
  return TRUE;
}

static void
set_names (QipcLocalServer *self,
           const char      *name,
           const char      *full_name)
{
  if (g_strcmp0 (self->server_name, name) != 0)
    {
      g_free (self->server_name);
      self->server_name = g_strdup (name);
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SERVER_NAME]);
    }
  if (g_strcmp0 (self->full_server_name, full_name) != 0)
    {
      g_free (self->full_server_name);
      self->full_server_name = g_strdup (full_name);
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_FULL_SERVER_NAME]);
    }
}

/**
 * qipc_local_server_listen:
 * @self: a #QipcLocalServer
 * @name: the server name: a path, `@name` for the abstract namespace, or
 *   a file name in the user's runtime directory
 * @error: return location for a #GError
 *
 * Starts listening on @name. Clients connect with
 * [method@LocalSocket.connect_to_server] and the same name;
 * [signal@Server::new-connection] tells when one did.
 *
 * A socket file left over by a server that is gone is replaced. Fails
 * with %QIPC_SOCKET_ERROR_ADDRESS_IN_USE when a live server listens on
 * @name, or @name is a file that is not a socket;
 * %QIPC_SOCKET_ERROR_SOCKET_ACCESS when the directory or the file is not
 * writable; %QIPC_SOCKET_ERROR_ADDRESS_NOT_AVAILABLE when the name is
 * malformed or its directory does not exist; %QIPC_SOCKET_ERROR_OPERATION
 * when @self already listens.
 *
 * Returns: %TRUE when listening, %FALSE with @error set
 */
gboolean
qipc_local_server_listen (QipcLocalServer  *self,
                          const char       *name,
                          GError          **error)
{
  g_autoptr(GSocketAddress) address = NULL;
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GError) gio_error = NULL;
  g_autofree char *full_name = NULL;
  const char *path;
  guint max_pending;

  g_return_val_if_fail (QIPC_IS_LOCAL_SERVER (self), FALSE);
  g_return_val_if_fail (name != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (qipc_server_is_listening (QIPC_SERVER (self)))
    {
      g_set_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_OPERATION,
                   "Cannot listen on local server name “%s”: the server already listens on “%s”",
                   name, self->server_name);
      return FALSE;
    }

  address = _qipc_local_address_new (name, &full_name, error);
  if (address == NULL)
    return FALSE;
  path = full_name[0] == '@' ? NULL : full_name;

  socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT, &gio_error);
  if (socket == NULL)
    return set_listen_error (error, gio_error, name);

  if (!bind_socket (socket, address, path, name, error))
    return FALSE;
  /* The mode is set before listen(): nobody can connect in between. */
  if (path != NULL && !take_socket_file (self, path, name, error))
    return FALSE;

  max_pending = qipc_server_get_max_pending_connections (QIPC_SERVER (self));
  /* As in Qt, the system's backlog is as long as the server's queue. */
  g_socket_set_listen_backlog (socket, (int) MIN (max_pending, G_MAXINT));
  if (!g_socket_listen (socket, &gio_error))
    {
      remove_socket_file (self);
      return set_listen_error (error, gio_error, name);
    }

  set_names (self, name, full_name);
  _qipc_server_add_listener (QIPC_SERVER (self), socket);
  return TRUE;
}

/**
 * qipc_local_server_get_server_name: (get-property server-name)
 * @self: a #QipcLocalServer
 *
 * Gets the name given to [method@LocalServer.listen].
 *
 * Returns: (nullable): the server name, or %NULL before
 *   [method@LocalServer.listen]
 */
const char *
qipc_local_server_get_server_name (QipcLocalServer *self)
{
  g_return_val_if_fail (QIPC_IS_LOCAL_SERVER (self), NULL);

  return self->server_name;
}

/**
 * qipc_local_server_get_full_server_name: (get-property full-server-name)
 * @self: a #QipcLocalServer
 *
 * Gets where the server listens: the path of its socket file, or `@name`
 * for an abstract name.
 *
 * Returns: (nullable): the full server name, or %NULL before
 *   [method@LocalServer.listen]
 */
const char *
qipc_local_server_get_full_server_name (QipcLocalServer *self)
{
  g_return_val_if_fail (QIPC_IS_LOCAL_SERVER (self), NULL);

  return self->full_server_name;
}

/**
 * qipc_local_server_get_socket_options: (get-property socket-options)
 * @self: a #QipcLocalServer
 *
 * Gets who may connect to the socket file the next
 * [method@LocalServer.listen] creates.
 *
 * Returns: the socket options
 */
QipcLocalServerOptions
qipc_local_server_get_socket_options (QipcLocalServer *self)
{
  g_return_val_if_fail (QIPC_IS_LOCAL_SERVER (self), QIPC_LOCAL_SERVER_OPTIONS_NONE);

  return self->socket_options;
}

/**
 * qipc_local_server_set_socket_options: (set-property socket-options)
 * @self: a #QipcLocalServer
 * @options: who may connect
 *
 * Sets who may connect to the socket file the next
 * [method@LocalServer.listen] creates: the owner, the group and others
 * get read and write permission on it as @options say. Abstract names
 * have no permissions, and a server already listening keeps its mode.
 */
void
qipc_local_server_set_socket_options (QipcLocalServer        *self,
                                      QipcLocalServerOptions  options)
{
  g_return_if_fail (QIPC_IS_LOCAL_SERVER (self));
  g_return_if_fail ((options & ~QIPC_LOCAL_SERVER_OPTIONS_WORLD_ACCESS) == 0);

  if (self->socket_options == options)
    return;
  self->socket_options = options;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SOCKET_OPTIONS]);
}
