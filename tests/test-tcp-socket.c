/* test-tcp-socket.c: QipcTcpSocket and QipcTcpServer, plain and TLS
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Everything runs on 127.0.0.1. Echo servers run in a child process
 * (qipc-test-helper tcp-echo-server, tcp-tls-echo-server); tests that
 * need to drive both ends, such as STARTTLS, run a QipcTcpServer in the
 * test itself. TLS tests use a self-signed certificate made with openssl
 * when the test starts, and are skipped when openssl or a TLS backend
 * (glib-networking) is missing.
 */
#include "test-utils.h"

#include <glib/gstdio.h>
#include <string.h>

/* How long any single wait may take before the test fails. */
#define WAIT_MS 10000

/* The test certificates; NULL when TLS cannot be tested. */
static QipcTestCertificates *certs;

/* What a socket emitted, in order. */
typedef struct
{
  QipcTcpSocket *socket;
  GString *log;
  GArray *states;
  GError *error;
  guint errors;
  gboolean accept_certificate;
  guint tls_errors;
  GTlsCertificateFlags tls_flags;
  GTlsCertificate *tls_certificate;
  gint64 bytes_written;
} Events;

static void
events_clear (Events *events)
{
  g_signal_handlers_disconnect_by_data (events->socket, events);
  g_string_free (events->log, TRUE);
  g_array_unref (events->states);
  g_clear_error (&events->error);
  g_clear_object (&events->tls_certificate);
}

static void
on_state_changed (QipcSocket      *socket,
                  QipcSocketState  state,
                  Events          *events)
{
  g_array_append_val (events->states, state);
}

static void
on_connected (QipcSocket *socket,
              Events     *events)
{
  g_string_append (events->log, "connected ");
}

static void
on_encrypted (QipcTcpSocket *socket,
              Events        *events)
{
  g_string_append (events->log, "encrypted ");
}

static void
on_disconnected (QipcSocket *socket,
                 Events     *events)
{
  g_string_append (events->log, "disconnected ");
}

static void
on_error_occurred (QipcSocket   *socket,
                   const GError *error,
                   Events       *events)
{
  g_string_append (events->log, "error ");
  g_clear_error (&events->error);
  events->error = g_error_copy (error);
  events->errors++;
}

static void
on_bytes_written (QipcSocket *socket,
                  gint64      bytes,
                  Events     *events)
{
  events->bytes_written += bytes;
}

static gboolean
on_tls_errors (QipcTcpSocket        *socket,
               GTlsCertificate      *certificate,
               GTlsCertificateFlags  flags,
               Events               *events)
{
  g_string_append (events->log, "tls-errors ");
  events->tls_errors++;
  events->tls_flags = flags;
  g_set_object (&events->tls_certificate, certificate);
  return events->accept_certificate;
}

static void
watch (QipcTcpSocket *socket,
       Events        *events)
{
  events->socket = socket;
  events->log = g_string_new (NULL);
  events->states = g_array_new (FALSE, FALSE, sizeof (QipcSocketState));
  g_signal_connect (socket, "state-changed", G_CALLBACK (on_state_changed), events);
  g_signal_connect (socket, "connected", G_CALLBACK (on_connected), events);
  g_signal_connect (socket, "encrypted", G_CALLBACK (on_encrypted), events);
  g_signal_connect (socket, "disconnected", G_CALLBACK (on_disconnected), events);
  g_signal_connect (socket, "error-occurred", G_CALLBACK (on_error_occurred), events);
  g_signal_connect (socket, "bytes-written", G_CALLBACK (on_bytes_written), events);
}

/* Adds a ::tls-errors handler that records what it sees and returns
 * @accept. */
static void
watch_tls_errors (QipcTcpSocket *socket,
                  Events        *events,
                  gboolean       accept)
{
  events->accept_certificate = accept;
  g_signal_connect (socket, "tls-errors", G_CALLBACK (on_tls_errors), events);
}

static void
assert_states (Events *events,
               ...)
{
  va_list args;
  guint i = 0;
  int state;

  va_start (args, events);
  while ((state = va_arg (args, int)) >= 0)
    {
      g_assert_cmpuint (i, <, events->states->len);
      g_assert_cmpint (g_array_index (events->states, QipcSocketState, i), ==, state);
      i++;
    }
  va_end (args);
  g_assert_cmpuint (i, ==, events->states->len);
}

static gboolean
have_tls (void)
{
  if (certs == NULL)
    {
      g_test_skip ("No test certificate (openssl missing?)");
      return FALSE;
    }
  if (!g_tls_backend_supports_tls (g_tls_backend_get_default ()))
    {
      g_test_skip ("No GIO TLS backend (install glib-networking)");
      return FALSE;
    }
  return TRUE;
}

/* Starts a helper echo server and returns its port. */
static QipcTestChild *
spawn_server (guint16    *port,
              const char *command,
              const char *cert,
              const char *key)
{
  QipcTestChild *child = qipc_test_child_spawn (command, cert, key, NULL);
  g_autofree char *line = qipc_test_child_read_line (child);

  g_assert_true (g_str_has_prefix (line, "port "));
  *port = (guint16) g_ascii_strtoull (line + 5, NULL, 10);
  g_assert_cmpuint (*port, >, 0);
  return child;
}

/* A port on 127.0.0.1 that nobody listens on: bound, read, closed. */
static guint16
unused_port (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                            G_SOCKET_PROTOCOL_TCP, &error);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  guint16 port;

  g_assert_no_error (error);
  g_socket_bind (socket, address, FALSE, &error);
  g_assert_no_error (error);
  bound = g_socket_get_local_address (socket, &error);
  g_assert_no_error (error);
  port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  g_socket_close (socket, NULL);
  return port;
}

static char *
read_line (QipcSocket *socket)
{
  g_autoptr(GBytes) bytes = NULL;

  while (!qipc_socket_can_read_line (socket))
    {
      g_autoptr(GError) error = NULL;

      qipc_socket_wait_for_ready_read (socket, WAIT_MS, &error);
      g_assert_no_error (error);
    }
  bytes = qipc_socket_read_line (socket, 0);
  return g_strndup (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
}

static void
assert_echo (QipcSocket *socket,
             const char *text)
{
  g_autoptr(GBytes) got = NULL;

  qipc_test_socket_write_text (socket, text);
  got = qipc_test_socket_read_exactly (socket, strlen (text));
  g_assert_cmpmem (g_bytes_get_data (got, NULL), g_bytes_get_size (got), text, strlen (text));
}

static void
connect_and_wait (QipcTcpSocket *socket,
                  const char    *host,
                  guint16        port)
{
  g_autoptr(GError) error = NULL;

  qipc_tcp_socket_connect_to_host (socket, host, port);
  qipc_socket_wait_for_connected (QIPC_SOCKET (socket), WAIT_MS, &error);
  g_assert_no_error (error);
}

static gboolean
timeout_cb (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Runs the main context for @ms, to show that nothing (more) happens. */
static void
run_for (guint ms)
{
  gboolean done = FALSE;

  g_timeout_add (ms, timeout_cb, &done);
  while (!done)
    g_main_context_iteration (NULL, TRUE);
}

/* Runs the main context until *@flag is TRUE, failing after WAIT_MS. */
static void
run_until (const gboolean *flag)
{
  gboolean timed_out = FALSE;
  guint timeout = g_timeout_add (WAIT_MS, timeout_cb, &timed_out);

  while (!*flag && !timed_out)
    g_main_context_iteration (NULL, TRUE);
  g_assert_false (timed_out);
  g_source_remove (timeout);
}

static void
set_flag_cb (gpointer flag)
{
  *(gboolean *) flag = TRUE;
}

/* An in-process server on 127.0.0.1 and a connection to it: @client is
 * connected (or connecting, for @encrypted), @accepted the server's end. */
typedef struct
{
  QipcTcpServer *server;
  QipcTcpSocket *client;
  QipcTcpSocket *accepted;
  guint16 port;
} Pair;

static void
pair_listen (Pair            *pair,
             GTlsCertificate *certificate)
{
  g_autoptr(GError) error = NULL;

  pair->server = qipc_tcp_server_new ();
  qipc_tcp_server_set_tls_certificate (pair->server, certificate);
  qipc_tcp_server_listen (pair->server, "127.0.0.1", 0, &error);
  g_assert_no_error (error);
  pair->port = qipc_tcp_server_get_server_port (pair->server);
  pair->client = qipc_tcp_socket_new ();
}

/* Runs the main context (not wait_for_new_connection(), which only
 * polls the listening socket) because the client may still be connecting
 * on that same context. */
static void
pair_accept (Pair *pair)
{
  gboolean timed_out = FALSE;
  guint timeout = g_timeout_add (WAIT_MS, timeout_cb, &timed_out);

  while (!qipc_server_has_pending_connections (QIPC_SERVER (pair->server)) && !timed_out)
    g_main_context_iteration (NULL, TRUE);
  g_assert_false (timed_out);
  g_source_remove (timeout);
  pair->accepted = QIPC_TCP_SOCKET (qipc_server_next_pending_connection (QIPC_SERVER (pair->server)));
  g_assert_nonnull (pair->accepted);
}

static void
pair_clear (Pair *pair)
{
  g_clear_object (&pair->client);
  g_clear_object (&pair->accepted);
  g_clear_object (&pair->server);
}

/* ------------------------------------------------------------------ */

static void
test_echo_round_trip (void)
{
  g_autoptr(QipcTestChild) child = NULL;
  g_autoptr(QipcTcpSocket) socket = qipc_tcp_socket_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *peer = NULL;
  Events events = { 0 };
  guint16 port;

  child = spawn_server (&port, "tcp-echo-server", NULL, NULL);
  watch (socket, &events);

  qipc_tcp_socket_connect_to_host (socket, "127.0.0.1", port);
  g_assert_cmpint (qipc_socket_get_state (QIPC_SOCKET (socket)), ==, QIPC_SOCKET_STATE_HOST_LOOKUP);
  qipc_socket_wait_for_connected (QIPC_SOCKET (socket), WAIT_MS, &error);
  g_assert_no_error (error);
  assert_states (&events, QIPC_SOCKET_STATE_HOST_LOOKUP, QIPC_SOCKET_STATE_CONNECTING,
                 QIPC_SOCKET_STATE_CONNECTED, -1);
  g_assert_cmpstr (events.log->str, ==, "connected ");
  g_assert_false (qipc_tcp_socket_is_encrypted (socket));

  peer = qipc_tcp_socket_get_peer_address (socket);
  g_assert_cmpstr (peer, ==, "127.0.0.1");
  g_assert_cmpuint (qipc_tcp_socket_get_peer_port (socket), ==, port);

  assert_echo (QIPC_SOCKET (socket), "hello, world");
  assert_echo (QIPC_SOCKET (socket), "and again");

  qipc_socket_close (QIPC_SOCKET (socket));
  qipc_socket_wait_for_disconnected (QIPC_SOCKET (socket), WAIT_MS, &error);
  g_assert_no_error (error);
  g_assert_cmpint (qipc_socket_get_state (QIPC_SOCKET (socket)), ==, QIPC_SOCKET_STATE_UNCONNECTED);
  g_assert_cmpstr (events.log->str, ==, "connected disconnected ");
  g_assert_null (qipc_tcp_socket_get_peer_address (socket));
  g_assert_cmpuint (qipc_tcp_socket_get_peer_port (socket), ==, 0);

  events_clear (&events);
}

static void
test_echo_many_small_writes (void)
{
  g_autoptr(QipcTestChild) child = NULL;
  g_autoptr(QipcTcpSocket) socket = qipc_tcp_socket_new ();
  g_autoptr(GString) sent = g_string_new (NULL);
  g_autoptr(GBytes) got = NULL;
  Events events = { 0 };
  guint16 port;

  child = spawn_server (&port, "tcp-echo-server", NULL, NULL);
  watch (socket, &events);
  connect_and_wait (socket, "127.0.0.1", port);

  for (guint i = 0; i < 10000; i++)
    {
      g_autofree char *token = g_strdup_printf ("%u,", i);

      g_string_append (sent, token);
      qipc_test_socket_write_text (QIPC_SOCKET (socket), token);
    }

  got = qipc_test_socket_read_exactly (QIPC_SOCKET (socket), sent->len);
  g_assert_cmpmem (g_bytes_get_data (got, NULL), g_bytes_get_size (got), sent->str, sent->len);
  g_assert_cmpuint (qipc_socket_bytes_to_write (QIPC_SOCKET (socket)), ==, 0);

  /* Every byte is reported written, once. */
  while (events.bytes_written < (gint64) sent->len)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpint (events.bytes_written, ==, sent->len);
  g_assert_cmpuint (events.errors, ==, 0);

  events_clear (&events);
}

static void
test_echo_lines (void)
{
  g_autoptr(QipcTestChild) child = NULL;
  g_autoptr(QipcTcpSocket) socket = qipc_tcp_socket_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *first = NULL;
  g_autofree char *second = NULL;
  g_autofree char *third = NULL;
  guint16 port;

  child = spawn_server (&port, "tcp-echo-server", NULL, NULL);
  connect_and_wait (socket, "127.0.0.1", port);

  qipc_test_socket_write_text (QIPC_SOCKET (socket), "par");
  qipc_socket_wait_for_ready_read (QIPC_SOCKET (socket), WAIT_MS, &error);
  g_assert_no_error (error);
  g_assert_false (qipc_socket_can_read_line (QIPC_SOCKET (socket)));

  qipc_test_socket_write_text (QIPC_SOCKET (socket), "tial\nnext line\n");
  qipc_test_socket_write_text (QIPC_SOCKET (socket), "last\n");
  first = read_line (QIPC_SOCKET (socket));
  second = read_line (QIPC_SOCKET (socket));
  third = read_line (QIPC_SOCKET (socket));
  g_assert_cmpstr (first, ==, "partial\n");
  g_assert_cmpstr (second, ==, "next line\n");
  g_assert_cmpstr (third, ==, "last\n");
  g_assert_cmpuint (qipc_socket_bytes_available (QIPC_SOCKET (socket)), ==, 0);
}

static void
test_echo_remote_closed (void)
{
  g_autoptr(QipcTestChild) child = NULL;
  g_autoptr(QipcTcpSocket) socket = qipc_tcp_socket_new ();
  g_autoptr(GError) error = NULL;
  Events events = { 0 };
  guint16 port;

  child = spawn_server (&port, "tcp-echo-server", NULL, NULL);
  watch (socket, &events);
  connect_and_wait (socket, "127.0.0.1", port);
  assert_echo (QIPC_SOCKET (socket), "ping");

  qipc_test_child_kill (child);
  qipc_socket_wait_for_disconnected (QIPC_SOCKET (socket), WAIT_MS, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (events.log->str, ==, "connected error disconnected ");
  g_assert_error (events.error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_REMOTE_HOST_CLOSED);

  events_clear (&events);
}

/* More sockets than a context watches with sources of their own, so
 * most of them go through the context's poller; one of them carries
 * more than the kernel buffers, so it also waits there to write. */
#define MANY_SOCKETS 40
#define MANY_BIG_SIZE (4 * 1024 * 1024)

typedef struct
{
  QipcTcpSocket *clients[MANY_SOCKETS];
  GBytes *sent[MANY_SOCKETS];
  GByteArray *received[MANY_SOCKETS];
  QipcServer *server;
} ManyTcp;

static void
echo_all (QipcSocket *socket,
          gpointer    user_data)
{
  g_autoptr(GBytes) data = qipc_socket_read_all (socket);

  qipc_socket_write (socket, data, NULL);
}

static void
collect (QipcSocket *socket,
         GByteArray *received)
{
  g_autoptr(GBytes) data = qipc_socket_read_all (socket);

  g_byte_array_append (received, g_bytes_get_data (data, NULL), g_bytes_get_size (data));
}

static gboolean
many_tcp_accepted (gconstpointer data)
{
  const ManyTcp *many = data;

  return qipc_server_has_pending_connections (many->server) &&
         qipc_socket_get_state (QIPC_SOCKET (many->clients[MANY_SOCKETS - 1])) == QIPC_SOCKET_STATE_CONNECTED;
}

static gboolean
many_tcp_echoed (gconstpointer data)
{
  const ManyTcp *many = data;

  for (guint i = 0; i < MANY_SOCKETS; i++)
    if (many->received[i]->len < g_bytes_get_size (many->sent[i]))
      return FALSE;
  return TRUE;
}

static void
test_many_sockets (void)
{
  g_autoptr(QipcTcpServer) server = qipc_tcp_server_new ();
  g_autoptr(GPtrArray) accepted = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GError) error = NULL;
  ManyTcp many = { { NULL }, { NULL }, { NULL }, QIPC_SERVER (server) };
  QipcSocket *next;
  guint16 port;

  qipc_tcp_server_listen (server, "127.0.0.1", 0, &error);
  g_assert_no_error (error);
  qipc_server_set_max_pending_connections (QIPC_SERVER (server), MANY_SOCKETS);
  port = qipc_tcp_server_get_server_port (server);
  for (guint i = 0; i < MANY_SOCKETS; i++)
    {
      many.clients[i] = qipc_tcp_socket_new ();
      many.received[i] = g_byte_array_new ();
      g_signal_connect (many.clients[i], "ready-read", G_CALLBACK (collect), many.received[i]);
      qipc_tcp_socket_connect_to_host (many.clients[i], "127.0.0.1", port);
    }

  /* Connections are accepted and connected in turn; take them all. */
  while (accepted->len < MANY_SOCKETS)
    {
      qipc_test_wait_until (many_tcp_accepted, &many, "the connections");
      while ((next = qipc_server_next_pending_connection (QIPC_SERVER (server))) != NULL)
        {
          g_signal_connect (next, "ready-read", G_CALLBACK (echo_all), NULL);
          g_ptr_array_add (accepted, next);
        }
    }

  for (guint i = 0; i < MANY_SOCKETS; i++)
    {
      gsize size = i == 0 ? MANY_BIG_SIZE : 100 + i;
      g_autofree guint8 *data = g_malloc (size);

      for (gsize j = 0; j < size; j++)
        data[j] = (guint8) (i * 7 + j);
      many.sent[i] = g_bytes_new_take (g_steal_pointer (&data), size);
      qipc_socket_write (QIPC_SOCKET (many.clients[i]), many.sent[i], NULL);
    }
  qipc_test_wait_until (many_tcp_echoed, &many, "every echo");

  for (guint i = 0; i < MANY_SOCKETS; i++)
    {
      g_assert_cmpmem (many.received[i]->data, many.received[i]->len,
                       g_bytes_get_data (many.sent[i], NULL), g_bytes_get_size (many.sent[i]));
      g_object_unref (many.clients[i]);
      g_bytes_unref (many.sent[i]);
      g_byte_array_unref (many.received[i]);
    }
}

static void
test_connect_refused (void)
{
  g_autoptr(QipcTcpSocket) socket = qipc_tcp_socket_new ();
  g_autoptr(GError) error = NULL;
  Events events = { 0 };

  watch (socket, &events);
  qipc_tcp_socket_connect_to_host (socket, "127.0.0.1", unused_port ());
  g_assert_false (qipc_socket_wait_for_connected (QIPC_SOCKET (socket), WAIT_MS, &error));
  g_assert_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_CONNECTION_REFUSED);

  g_assert_cmpstr (events.log->str, ==, "error ");
  g_assert_error (events.error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_CONNECTION_REFUSED);
  g_assert_error ((GError *) qipc_socket_get_error (QIPC_SOCKET (socket)),
                  QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_CONNECTION_REFUSED);
  assert_states (&events, QIPC_SOCKET_STATE_HOST_LOOKUP, QIPC_SOCKET_STATE_CONNECTING,
                 QIPC_SOCKET_STATE_UNCONNECTED, -1);

  events_clear (&events);
}

static void
test_connect_host_not_found (void)
{
  g_autoptr(QipcTcpSocket) socket = qipc_tcp_socket_new ();
  g_autoptr(GError) error = NULL;
  Events events = { 0 };

  watch (socket, &events);
  qipc_tcp_socket_connect_to_host (socket, "nonexistent.invalid", 4242);
  g_assert_false (qipc_socket_wait_for_connected (QIPC_SOCKET (socket), WAIT_MS, &error));
  g_assert_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_HOST_NOT_FOUND);
  g_assert_cmpstr (events.log->str, ==, "error ");
  assert_states (&events, QIPC_SOCKET_STATE_HOST_LOOKUP, QIPC_SOCKET_STATE_UNCONNECTED, -1);

  events_clear (&events);
}

static void
retry_on_unconnected (QipcSocket      *socket,
                      QipcSocketState  state,
                      guint16         *port)
{
  if (state == QIPC_SOCKET_STATE_UNCONNECTED && *port != 0)
    {
      qipc_tcp_socket_connect_to_host (QIPC_TCP_SOCKET (socket), "127.0.0.1", *port);
      *port = 0;
    }
}

/* A ::state-changed handler may connect again at once, after a failure. */
static void
test_connect_retry_from_handler (void)
{
  g_autoptr(QipcTestChild) child = NULL;
  g_autoptr(QipcTcpSocket) socket = qipc_tcp_socket_new ();
  g_autoptr(GError) error = NULL;
  guint16 port, retry_port;

  child = spawn_server (&port, "tcp-echo-server", NULL, NULL);
  retry_port = port;
  g_signal_connect (socket, "state-changed", G_CALLBACK (retry_on_unconnected), &retry_port);

  /* The first attempt is refused, the handler's succeeds. */
  qipc_tcp_socket_connect_to_host (socket, "127.0.0.1", unused_port ());
  qipc_socket_wait_for_connected (QIPC_SOCKET (socket), WAIT_MS, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (retry_port, ==, 0);
  g_assert_error ((GError *) qipc_socket_get_error (QIPC_SOCKET (socket)),
                  QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_CONNECTION_REFUSED);
  assert_echo (QIPC_SOCKET (socket), "second try");
}

/* Connecting twice reports OPERATION and leaves the connection alone. */
static void
test_connect_twice (void)
{
  g_autoptr(QipcTestChild) child = NULL;
  g_autoptr(QipcTcpSocket) socket = qipc_tcp_socket_new ();
  Events events = { 0 };
  guint16 port;

  child = spawn_server (&port, "tcp-echo-server", NULL, NULL);
  watch (socket, &events);
  connect_and_wait (socket, "127.0.0.1", port);

  qipc_tcp_socket_connect_to_host (socket, "127.0.0.1", port);
  g_assert_cmpstr (events.log->str, ==, "connected error ");
  g_assert_error (events.error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_OPERATION);
  qipc_tcp_socket_connect_to_host_encrypted (socket, "127.0.0.1", port);
  g_assert_cmpuint (events.errors, ==, 2);

  g_assert_cmpint (qipc_socket_get_state (QIPC_SOCKET (socket)), ==, QIPC_SOCKET_STATE_CONNECTED);
  assert_echo (QIPC_SOCKET (socket), "still here");

  events_clear (&events);
}

/* abort() while connecting ends the attempt: nothing is reported later,
 * and the socket can connect again. */
static void
test_connect_abort (void)
{
  g_autoptr(QipcTestChild) child = NULL;
  g_autoptr(QipcTcpSocket) socket = qipc_tcp_socket_new ();
  Events events = { 0 };
  guint16 port;

  child = spawn_server (&port, "tcp-echo-server", NULL, NULL);
  watch (socket, &events);

  qipc_tcp_socket_connect_to_host (socket, "127.0.0.1", port);
  qipc_socket_abort (QIPC_SOCKET (socket));
  g_assert_cmpint (qipc_socket_get_state (QIPC_SOCKET (socket)), ==, QIPC_SOCKET_STATE_UNCONNECTED);
  run_for (200);
  g_assert_cmpstr (events.log->str, ==, "");
  assert_states (&events, QIPC_SOCKET_STATE_HOST_LOOKUP, QIPC_SOCKET_STATE_UNCONNECTED, -1);

  connect_and_wait (socket, "127.0.0.1", port);
  assert_echo (QIPC_SOCKET (socket), "after abort");

  events_clear (&events);
}

/* Dropping the last reference to a connecting socket cancels it. */
static void
test_connect_unref (void)
{
  g_autoptr(QipcTestChild) child = NULL;
  QipcTcpSocket *socket = qipc_tcp_socket_new ();
  guint16 port;

  child = spawn_server (&port, "tcp-echo-server", NULL, NULL);
  g_object_add_weak_pointer (G_OBJECT (socket), (gpointer *) &socket);
  qipc_tcp_socket_connect_to_host (socket, "127.0.0.1", port);
  g_object_unref (socket);
  g_assert_null (socket);
  run_for (200);
}

/* ------------------------------------------------------------------ */

static void
test_tls_rejected_by_default (void)
{
  g_autoptr(QipcTestChild) child = NULL;
  g_autoptr(QipcTcpSocket) socket = NULL;
  g_autoptr(GError) error = NULL;
  Events events = { 0 };
  guint16 port;

  if (!have_tls ())
    return;

  child = spawn_server (&port, "tcp-tls-echo-server", certs->cert, certs->key);
  socket = qipc_tcp_socket_new ();
  /* No ::tls-errors handler: verification alone decides. */
  watch (socket, &events);

  qipc_tcp_socket_connect_to_host_encrypted (socket, "127.0.0.1", port);
  g_assert_false (qipc_socket_wait_for_connected (QIPC_SOCKET (socket), WAIT_MS, &error));
  g_assert_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_TLS_HANDSHAKE_FAILED);

  g_assert_cmpstr (events.log->str, ==, "error ");
  g_assert_error (events.error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_TLS_HANDSHAKE_FAILED);
  assert_states (&events, QIPC_SOCKET_STATE_HOST_LOOKUP, QIPC_SOCKET_STATE_CONNECTING,
                 QIPC_SOCKET_STATE_UNCONNECTED, -1);
  g_assert_false (qipc_tcp_socket_is_encrypted (socket));
  g_assert_null (qipc_tcp_socket_get_peer_certificate (socket));

  /* The server's end of the handshake failed too. */
  qipc_test_child_expect (child, "error tls-handshake-failed");

  events_clear (&events);
}

static void
test_tls_accepted_by_handler (void)
{
  g_autoptr(QipcTestChild) child = NULL;
  g_autoptr(QipcTcpSocket) socket = NULL;
  g_autoptr(GTlsCertificate) certificate = NULL;
  g_autoptr(GError) error = NULL;
  Events events = { 0 };
  guint16 port;

  if (!have_tls ())
    return;

  certificate = qipc_test_load_certificate (certs->cert, certs->key);
  child = spawn_server (&port, "tcp-tls-echo-server", certs->cert, certs->key);
  socket = qipc_tcp_socket_new ();
  watch (socket, &events);
  watch_tls_errors (socket, &events, TRUE);

  qipc_tcp_socket_connect_to_host_encrypted (socket, "127.0.0.1", port);
  qipc_socket_wait_for_connected (QIPC_SOCKET (socket), WAIT_MS, &error);
  g_assert_no_error (error);

  /* CONNECTING lasts until the handshake is over. */
  assert_states (&events, QIPC_SOCKET_STATE_HOST_LOOKUP, QIPC_SOCKET_STATE_CONNECTING,
                 QIPC_SOCKET_STATE_CONNECTED, -1);
  g_assert_cmpstr (events.log->str, ==, "tls-errors connected encrypted ");
  /* Self-signed, but issued for 127.0.0.1: only the authority is unknown. */
  g_assert_cmpint (events.tls_flags, ==, G_TLS_CERTIFICATE_UNKNOWN_CA);
  g_assert_true (g_tls_certificate_is_same (events.tls_certificate, certificate));
  g_assert_true (qipc_tcp_socket_is_encrypted (socket));
  g_assert_nonnull (qipc_tcp_socket_get_peer_certificate (socket));
  g_assert_true (g_tls_certificate_is_same (qipc_tcp_socket_get_peer_certificate (socket), certificate));

  assert_echo (QIPC_SOCKET (socket), "secret");
  assert_echo (QIPC_SOCKET (socket), "more secrets\n");

  /* A TLS peer that dies is a closed connection, as with plain TCP. */
  qipc_test_child_kill (child);
  qipc_socket_wait_for_disconnected (QIPC_SOCKET (socket), WAIT_MS, &error);
  g_assert_no_error (error);
  g_assert_error (events.error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_REMOTE_HOST_CLOSED);
  g_assert_false (qipc_tcp_socket_is_encrypted (socket));
  g_assert_nonnull (qipc_tcp_socket_get_peer_certificate (socket));

  events_clear (&events);
}

/* The host name is verified too: a handler sees a certificate issued for
 * another name as such, and may still refuse it. */
static void
test_tls_wrong_host (void)
{
  g_autoptr(QipcTestChild) child = NULL;
  g_autoptr(QipcTcpSocket) socket = NULL;
  g_autoptr(GError) error = NULL;
  Events events = { 0 };
  guint16 port;

  if (!have_tls ())
    return;

  child = spawn_server (&port, "tcp-tls-echo-server", certs->other_cert, certs->other_key);
  socket = qipc_tcp_socket_new ();
  watch (socket, &events);
  watch_tls_errors (socket, &events, FALSE);

  qipc_tcp_socket_connect_to_host_encrypted (socket, "127.0.0.1", port);
  g_assert_false (qipc_socket_wait_for_connected (QIPC_SOCKET (socket), WAIT_MS, &error));
  g_assert_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_TLS_HANDSHAKE_FAILED);
  g_assert_cmpuint (events.tls_errors, ==, 1);
  g_assert_true (events.tls_flags & G_TLS_CERTIFICATE_BAD_IDENTITY);
  g_assert_true (events.tls_flags & G_TLS_CERTIFICATE_UNKNOWN_CA);

  events_clear (&events);
}

/* A plain server talking to a TLS client ends the handshake in failure
 * on the client's side, never in a stall. */
static void
test_tls_server_not_tls (void)
{
  g_autoptr(QipcTestChild) child = NULL;
  g_autoptr(QipcTcpSocket) socket = NULL;
  g_autoptr(GError) error = NULL;
  guint16 port;

  if (!have_tls ())
    return;

  child = spawn_server (&port, "tcp-echo-server", NULL, NULL);
  socket = qipc_tcp_socket_new ();
  qipc_tcp_socket_connect_to_host_encrypted (socket, "127.0.0.1", port);
  g_assert_false (qipc_socket_wait_for_connected (QIPC_SOCKET (socket), WAIT_MS, &error));
  g_assert_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_TLS_HANDSHAKE_FAILED);
  g_assert_cmpint (qipc_socket_get_state (QIPC_SOCKET (socket)), ==, QIPC_SOCKET_STATE_UNCONNECTED);
}

/* A TLS server hands sockets out while they handshake; what is written
 * to them meanwhile goes out encrypted once the handshake is over. */
static void
test_tls_server_connecting (void)
{
  g_autoptr(GTlsCertificate) certificate = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *got = NULL;
  Events client_events = { 0 };
  Events accepted_events = { 0 };
  Pair pair = { 0 };

  if (!have_tls ())
    return;

  certificate = qipc_test_load_certificate (certs->cert, certs->key);
  pair_listen (&pair, certificate);
  g_assert_true (qipc_tcp_server_get_tls_certificate (pair.server) == certificate);
  watch (pair.client, &client_events);
  watch_tls_errors (pair.client, &client_events, TRUE);

  qipc_tcp_socket_connect_to_host_encrypted (pair.client, "127.0.0.1", pair.port);
  pair_accept (&pair);
  watch (pair.accepted, &accepted_events);
  g_assert_cmpint (qipc_socket_get_state (QIPC_SOCKET (pair.accepted)), ==, QIPC_SOCKET_STATE_CONNECTING);
  qipc_test_socket_write_text (QIPC_SOCKET (pair.accepted), "welcome\n");

  qipc_socket_wait_for_connected (QIPC_SOCKET (pair.accepted), WAIT_MS, &error);
  g_assert_no_error (error);
  qipc_socket_wait_for_connected (QIPC_SOCKET (pair.client), WAIT_MS, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (accepted_events.log->str, ==, "connected encrypted ");
  g_assert_true (qipc_tcp_socket_is_encrypted (pair.accepted));
  /* No client certificate is asked for. */
  g_assert_null (qipc_tcp_socket_get_peer_certificate (pair.accepted));

  got = read_line (QIPC_SOCKET (pair.client));
  g_assert_cmpstr (got, ==, "welcome\n");

  events_clear (&client_events);
  events_clear (&accepted_events);
  pair_clear (&pair);
}

/* Waits until both ends emitted ::encrypted. */
static void
wait_encrypted (QipcTcpSocket *a,
                QipcTcpSocket *b)
{
  gboolean a_done = qipc_tcp_socket_is_encrypted (a);
  gboolean b_done = qipc_tcp_socket_is_encrypted (b);
  gulong a_handler = g_signal_connect_swapped (a, "encrypted", G_CALLBACK (set_flag_cb), &a_done);
  gulong b_handler = g_signal_connect_swapped (b, "encrypted", G_CALLBACK (set_flag_cb), &b_done);

  run_until (&a_done);
  run_until (&b_done);
  g_signal_handler_disconnect (a, a_handler);
  g_signal_handler_disconnect (b, b_handler);
}

/* STARTTLS: a plain connection upgraded by start_client_encryption() on
 * one end and start_server_encryption() on the other. */
static void
test_tls_start_encryption (void)
{
  g_autoptr(GTlsCertificate) certificate = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *command = NULL;
  g_autofree char *reply = NULL;
  g_autofree char *ping = NULL;
  g_autofree char *pong = NULL;
  Events client_events = { 0 };
  Pair pair = { 0 };

  if (!have_tls ())
    return;

  certificate = qipc_test_load_certificate (certs->cert, certs->key);
  pair_listen (&pair, NULL);
  watch (pair.client, &client_events);
  watch_tls_errors (pair.client, &client_events, TRUE);

  g_assert_false (qipc_tcp_socket_start_client_encryption (pair.client, &error));
  g_assert_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_OPERATION);
  g_clear_error (&error);

  connect_and_wait (pair.client, "127.0.0.1", pair.port);
  pair_accept (&pair);

  qipc_test_socket_write_text (QIPC_SOCKET (pair.client), "STARTTLS\n");
  command = read_line (QIPC_SOCKET (pair.accepted));
  g_assert_cmpstr (command, ==, "STARTTLS\n");
  qipc_test_socket_write_text (QIPC_SOCKET (pair.accepted), "OK\n");
  g_assert_true (qipc_tcp_socket_start_server_encryption (pair.accepted, certificate, &error));
  g_assert_no_error (error);

  reply = read_line (QIPC_SOCKET (pair.client));
  g_assert_cmpstr (reply, ==, "OK\n");
  g_assert_true (qipc_tcp_socket_start_client_encryption (pair.client, &error));
  g_assert_no_error (error);

  /* Only one handshake at a time. */
  g_assert_false (qipc_tcp_socket_start_client_encryption (pair.client, &error));
  g_assert_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_OPERATION);
  g_clear_error (&error);

  wait_encrypted (pair.client, pair.accepted);
  g_assert_cmpstr (client_events.log->str, ==, "connected tls-errors encrypted ");
  g_assert_cmpint (qipc_socket_get_state (QIPC_SOCKET (pair.client)), ==, QIPC_SOCKET_STATE_CONNECTED);
  g_assert_true (g_tls_certificate_is_same (qipc_tcp_socket_get_peer_certificate (pair.client), certificate));

  qipc_test_socket_write_text (QIPC_SOCKET (pair.client), "ping\n");
  ping = read_line (QIPC_SOCKET (pair.accepted));
  g_assert_cmpstr (ping, ==, "ping\n");
  qipc_test_socket_write_text (QIPC_SOCKET (pair.accepted), "pong\n");
  pong = read_line (QIPC_SOCKET (pair.client));
  g_assert_cmpstr (pong, ==, "pong\n");

  events_clear (&client_events);
  pair_clear (&pair);
}

/* close() during a handshake waits for it: what was written after
 * start_client_encryption() goes out encrypted, then the connection
 * closes; nothing reaches the handshake in clear. */
static void
test_tls_close_while_handshaking (void)
{
  g_autoptr(GTlsCertificate) certificate = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *got = NULL;
  Events client_events = { 0 };
  Events accepted_events = { 0 };
  Pair pair = { 0 };

  if (!have_tls ())
    return;

  certificate = qipc_test_load_certificate (certs->cert, certs->key);
  pair_listen (&pair, NULL);
  watch (pair.client, &client_events);
  watch_tls_errors (pair.client, &client_events, TRUE);
  connect_and_wait (pair.client, "127.0.0.1", pair.port);
  pair_accept (&pair);
  watch (pair.accepted, &accepted_events);

  g_assert_true (qipc_tcp_socket_start_server_encryption (pair.accepted, certificate, &error));
  g_assert_no_error (error);
  g_assert_true (qipc_tcp_socket_start_client_encryption (pair.client, &error));
  g_assert_no_error (error);
  qipc_test_socket_write_text (QIPC_SOCKET (pair.client), "bye\n");
  qipc_socket_close (QIPC_SOCKET (pair.client));
  g_assert_cmpint (qipc_socket_get_state (QIPC_SOCKET (pair.client)), ==, QIPC_SOCKET_STATE_CLOSING);

  qipc_socket_wait_for_disconnected (QIPC_SOCKET (pair.client), WAIT_MS, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (client_events.log->str, ==, "connected tls-errors encrypted disconnected ");

  got = read_line (QIPC_SOCKET (pair.accepted));
  g_assert_cmpstr (got, ==, "bye\n");
  qipc_socket_wait_for_disconnected (QIPC_SOCKET (pair.accepted), WAIT_MS, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (accepted_events.log->str, ==, "encrypted error disconnected ");
  g_assert_error (accepted_events.error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_REMOTE_HOST_CLOSED);

  events_clear (&client_events);
  events_clear (&accepted_events);
  pair_clear (&pair);
}

/* Data queued in clear before start_server_encryption() still goes out
 * in clear, all of it and nothing more; what is written after the call
 * waits for the handshake and arrives encrypted. */
static void
test_tls_start_encryption_after_queued_data (void)
{
  const gsize bulk_size = 8 * 1024 * 1024;
  g_autoptr(GTlsCertificate) certificate = NULL;
  g_autoptr(GBytes) bulk = NULL;
  g_autoptr(GByteArray) received = g_byte_array_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *after = NULL;
  Events client_events = { 0 };
  Pair pair = { 0 };

  if (!have_tls ())
    return;

  certificate = qipc_test_load_certificate (certs->cert, certs->key);
  pair_listen (&pair, NULL);
  watch (pair.client, &client_events);
  watch_tls_errors (pair.client, &client_events, TRUE);
  /* So that the client holds back the server's writes. */
  qipc_socket_set_read_buffer_size (QIPC_SOCKET (pair.client), 64 * 1024);
  connect_and_wait (pair.client, "127.0.0.1", pair.port);
  pair_accept (&pair);

  bulk = g_bytes_new_take (g_malloc0 (bulk_size), bulk_size);
  qipc_socket_write (QIPC_SOCKET (pair.accepted), bulk, &error);
  g_assert_no_error (error);
  qipc_test_socket_write_text (QIPC_SOCKET (pair.accepted), "OK\n");
  g_assert_cmpuint (qipc_socket_bytes_to_write (QIPC_SOCKET (pair.accepted)), >, 0);
  g_assert_true (qipc_tcp_socket_start_server_encryption (pair.accepted, certificate, &error));
  g_assert_no_error (error);
  qipc_test_socket_write_text (QIPC_SOCKET (pair.accepted), "after\n");

  while (received->len < bulk_size + 3)
    {
      g_autoptr(GBytes) bytes = NULL;

      qipc_socket_wait_for_ready_read (QIPC_SOCKET (pair.client), WAIT_MS, &error);
      g_assert_no_error (error);
      bytes = qipc_socket_read_all (QIPC_SOCKET (pair.client));
      g_byte_array_append (received, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
    }
  g_assert_cmpuint (received->len, ==, bulk_size + 3);
  g_assert_true (memcmp (received->data + bulk_size, "OK\n", 3) == 0);
  /* Nothing follows in clear. */
  run_for (100);
  g_assert_cmpuint (qipc_socket_bytes_available (QIPC_SOCKET (pair.client)), ==, 0);

  g_assert_true (qipc_tcp_socket_start_client_encryption (pair.client, &error));
  g_assert_no_error (error);
  wait_encrypted (pair.client, pair.accepted);
  after = read_line (QIPC_SOCKET (pair.client));
  g_assert_cmpstr (after, ==, "after\n");

  events_clear (&client_events);
  pair_clear (&pair);
}

/* ------------------------------------------------------------------ */

static void
test_server_port_zero (void)
{
  g_autoptr(QipcTcpServer) server = qipc_tcp_server_new ();
  g_autoptr(QipcTcpSocket) client = qipc_tcp_socket_new ();
  g_autoptr(QipcSocket) accepted = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *address = NULL;
  g_autofree char *any = NULL;
  g_autofree char *peer = NULL;
  guint16 port;

  g_assert_cmpuint (qipc_tcp_server_get_server_port (server), ==, 0);
  g_assert_null (qipc_tcp_server_get_server_address (server));

  g_assert_true (qipc_tcp_server_listen (server, "127.0.0.1", 0, &error));
  g_assert_no_error (error);
  g_assert_true (qipc_server_is_listening (QIPC_SERVER (server)));
  port = qipc_tcp_server_get_server_port (server);
  g_assert_cmpuint (port, >, 0);
  address = qipc_tcp_server_get_server_address (server);
  g_assert_cmpstr (address, ==, "127.0.0.1");

  g_assert_false (qipc_tcp_server_listen (server, "127.0.0.1", 0, &error));
  g_assert_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_OPERATION);
  g_clear_error (&error);

  qipc_server_close (QIPC_SERVER (server));
  g_assert_cmpuint (qipc_tcp_server_get_server_port (server), ==, 0);
  g_assert_null (qipc_tcp_server_get_server_address (server));

  /* Every address: IPv4 clients reach it, and are seen as IPv4. */
  g_assert_true (qipc_tcp_server_listen (server, NULL, 0, &error));
  g_assert_no_error (error);
  any = qipc_tcp_server_get_server_address (server);
  g_assert_true (g_strcmp0 (any, "::") == 0 || g_strcmp0 (any, "0.0.0.0") == 0);
  connect_and_wait (client, "127.0.0.1", qipc_tcp_server_get_server_port (server));
  qipc_server_wait_for_new_connection (QIPC_SERVER (server), WAIT_MS, &error);
  g_assert_no_error (error);
  accepted = qipc_server_next_pending_connection (QIPC_SERVER (server));
  g_assert_true (QIPC_IS_TCP_SOCKET (accepted));
  peer = qipc_tcp_socket_get_peer_address (QIPC_TCP_SOCKET (accepted));
  g_assert_cmpstr (peer, ==, "127.0.0.1");
}

static void
test_server_address_in_use (void)
{
  g_autoptr(QipcTcpServer) first = qipc_tcp_server_new ();
  g_autoptr(QipcTcpServer) second = qipc_tcp_server_new ();
  g_autoptr(GError) error = NULL;
  guint16 port;

  qipc_tcp_server_listen (first, "127.0.0.1", 0, &error);
  g_assert_no_error (error);
  port = qipc_tcp_server_get_server_port (first);

  g_assert_false (qipc_tcp_server_listen (second, "127.0.0.1", port, &error));
  g_assert_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_ADDRESS_IN_USE);
  g_assert_false (qipc_server_is_listening (QIPC_SERVER (second)));
  g_clear_error (&error);

  /* Once the first one closes, the port is free again. */
  qipc_server_close (QIPC_SERVER (first));
  qipc_tcp_server_listen (second, "127.0.0.1", port, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (qipc_tcp_server_get_server_port (second), ==, port);
}

static void
test_server_address_not_available (void)
{
  g_autoptr(QipcTcpServer) server = qipc_tcp_server_new ();
  g_autoptr(GError) error = NULL;

  /* TEST-NET-1: never one of this machine's addresses. */
  g_assert_false (qipc_tcp_server_listen (server, "192.0.2.1", 0, &error));
  g_assert_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_ADDRESS_NOT_AVAILABLE);
  g_clear_error (&error);

  g_assert_false (qipc_tcp_server_listen (server, "not an address", 0, &error));
  g_assert_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_ADDRESS_NOT_AVAILABLE);
  g_assert_false (qipc_server_is_listening (QIPC_SERVER (server)));
}

/* ------------------------------------------------------------------ */

static void
test_options (void)
{
  Pair pair = { 0 };
  guint notifications = 0;
  gboolean no_delay, keep_alive;

  pair_listen (&pair, NULL);
  g_signal_connect (pair.client, "notify::no-delay", G_CALLBACK (qipc_test_count_notify), &notifications);
  g_signal_connect (pair.client, "notify::keep-alive", G_CALLBACK (qipc_test_count_notify), &notifications);
  g_assert_false (qipc_tcp_socket_get_no_delay (pair.client));
  g_assert_false (qipc_tcp_socket_get_keep_alive (pair.client));

  /* Set before connecting, applied once connected. */
  qipc_tcp_socket_set_no_delay (pair.client, TRUE);
  qipc_tcp_socket_set_keep_alive (pair.client, TRUE);
  qipc_tcp_socket_set_keep_alive (pair.client, TRUE);
  g_assert_cmpuint (notifications, ==, 2);
  g_assert_true (qipc_tcp_socket_get_no_delay (pair.client));

  connect_and_wait (pair.client, "127.0.0.1", pair.port);
  pair_accept (&pair);
  g_object_get (pair.client, "no-delay", &no_delay, "keep-alive", &keep_alive, NULL);
  g_assert_true (no_delay);
  g_assert_true (keep_alive);
  g_assert_false (qipc_tcp_socket_get_no_delay (pair.accepted));
  g_assert_false (qipc_tcp_socket_get_keep_alive (pair.accepted));

  /* Set while connected, applied at once. */
  g_object_set (pair.client, "no-delay", FALSE, NULL);
  qipc_tcp_socket_set_keep_alive (pair.client, FALSE);
  qipc_tcp_socket_set_no_delay (pair.accepted, TRUE);
  g_assert_false (qipc_tcp_socket_get_no_delay (pair.client));
  g_assert_false (qipc_tcp_socket_get_keep_alive (pair.client));
  g_assert_true (qipc_tcp_socket_get_no_delay (pair.accepted));
  g_assert_cmpuint (notifications, ==, 4);

  pair_clear (&pair);
}

static void
test_addresses (void)
{
  Pair pair = { 0 };
  g_autofree char *client_peer = NULL;
  g_autofree char *client_local = NULL;
  g_autofree char *accepted_peer = NULL;
  g_autofree char *accepted_local = NULL;

  pair_listen (&pair, NULL);
  g_assert_null (qipc_tcp_socket_get_peer_address (pair.client));
  g_assert_null (qipc_tcp_socket_get_local_address (pair.client));
  g_assert_cmpuint (qipc_tcp_socket_get_peer_port (pair.client), ==, 0);
  g_assert_cmpuint (qipc_tcp_socket_get_local_port (pair.client), ==, 0);

  connect_and_wait (pair.client, "127.0.0.1", pair.port);
  pair_accept (&pair);

  client_peer = qipc_tcp_socket_get_peer_address (pair.client);
  client_local = qipc_tcp_socket_get_local_address (pair.client);
  accepted_peer = qipc_tcp_socket_get_peer_address (pair.accepted);
  accepted_local = qipc_tcp_socket_get_local_address (pair.accepted);
  g_assert_cmpstr (client_peer, ==, "127.0.0.1");
  g_assert_cmpstr (client_local, ==, "127.0.0.1");
  g_assert_cmpstr (accepted_peer, ==, "127.0.0.1");
  g_assert_cmpstr (accepted_local, ==, "127.0.0.1");
  g_assert_cmpuint (qipc_tcp_socket_get_peer_port (pair.client), ==, pair.port);
  g_assert_cmpuint (qipc_tcp_socket_get_local_port (pair.accepted), ==, pair.port);
  g_assert_cmpuint (qipc_tcp_socket_get_local_port (pair.client), >, 0);
  g_assert_cmpuint (qipc_tcp_socket_get_local_port (pair.client), ==,
                    qipc_tcp_socket_get_peer_port (pair.accepted));

  pair_clear (&pair);
}

int
main (int    argc,
      char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);
  certs = qipc_test_certificates_new ();

  g_test_add_func ("/tcp-socket/echo/round-trip", test_echo_round_trip);
  g_test_add_func ("/tcp-socket/echo/many-small-writes", test_echo_many_small_writes);
  g_test_add_func ("/tcp-socket/echo/lines", test_echo_lines);
  g_test_add_func ("/tcp-socket/echo/remote-closed", test_echo_remote_closed);
  g_test_add_func ("/tcp-socket/echo/many-sockets", test_many_sockets);
  g_test_add_func ("/tcp-socket/connect/refused", test_connect_refused);
  g_test_add_func ("/tcp-socket/connect/host-not-found", test_connect_host_not_found);
  g_test_add_func ("/tcp-socket/connect/retry-from-handler", test_connect_retry_from_handler);
  g_test_add_func ("/tcp-socket/connect/twice", test_connect_twice);
  g_test_add_func ("/tcp-socket/connect/abort", test_connect_abort);
  g_test_add_func ("/tcp-socket/connect/unref", test_connect_unref);
  g_test_add_func ("/tcp-socket/tls/rejected-by-default", test_tls_rejected_by_default);
  g_test_add_func ("/tcp-socket/tls/accepted-by-handler", test_tls_accepted_by_handler);
  g_test_add_func ("/tcp-socket/tls/wrong-host", test_tls_wrong_host);
  g_test_add_func ("/tcp-socket/tls/server-not-tls", test_tls_server_not_tls);
  g_test_add_func ("/tcp-socket/tls/server-hands-out-connecting", test_tls_server_connecting);
  g_test_add_func ("/tcp-socket/tls/start-encryption", test_tls_start_encryption);
  g_test_add_func ("/tcp-socket/tls/close-while-handshaking", test_tls_close_while_handshaking);
  g_test_add_func ("/tcp-socket/tls/start-encryption-after-queued-data",
                   test_tls_start_encryption_after_queued_data);
  g_test_add_func ("/tcp-socket/server/port-zero", test_server_port_zero);
  g_test_add_func ("/tcp-socket/server/address-in-use", test_server_address_in_use);
  g_test_add_func ("/tcp-socket/server/address-not-available", test_server_address_not_available);
  g_test_add_func ("/tcp-socket/options/no-delay-keep-alive", test_options);
  g_test_add_func ("/tcp-socket/addresses", test_addresses);

  status = g_test_run ();
  g_clear_pointer (&certs, qipc_test_certificates_free);
  return status;
}
