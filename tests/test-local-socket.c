/* test-local-socket.c: QipcLocalSocket and QipcLocalServer, across processes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "test-utils.h"

#include <fcntl.h>
#include <gio/gunixsocketaddress.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* Nothing a test waits for in a loop of its own may take longer. */
#define LOOP_SECONDS 20

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

static void
remove_path (gpointer path)
{
  unlink (path);
  g_free (path);
}

/* A socket path under the temporary directory, unique to this process,
 * removed when the test ends (servers killed in a test leave theirs). */
static char *
socket_path (const char *what)
{
  static guint counter;
  g_autofree char *base = g_strdup_printf ("qipc-test-%d-%u-%s.sock", (int) getpid (), counter++, what);
  char *path = g_build_filename (g_get_tmp_dir (), base, NULL);

  g_test_queue_destroy (remove_path, g_strdup (path));
  return path;
}

static char *
abstract_name (const char *what)
{
  static guint counter;

  return g_strdup_printf ("@qipc-test/%d/%u/%s", (int) getpid (), counter++, what);
}

static gboolean
wake_up (gpointer user_data)
{
  return G_SOURCE_CONTINUE;
}

/* Runs the main context until @check says so, failing the test after
 * LOOP_SECONDS. */
static void
iterate_until (gboolean   (*check) (gpointer data),
               gpointer     data,
               const char  *what)
{
  gint64 deadline = g_get_monotonic_time () + LOOP_SECONDS * G_USEC_PER_SEC;
  guint tick = g_timeout_add (50, wake_up, NULL);

  while (!check (data))
    {
      if (g_get_monotonic_time () > deadline)
        g_error ("Timed out after %d s waiting for %s", LOOP_SECONDS, what);
      g_main_context_iteration (NULL, TRUE);
    }
  g_source_remove (tick);
}

static gboolean
time_is_up (gpointer data)
{
  return g_get_monotonic_time () >= *(gint64 *) data;
}

/* Runs the main context for @ms milliseconds. */
static void
iterate_for (guint ms)
{
  gint64 until = g_get_monotonic_time () + (gint64) ms * 1000;

  iterate_until (time_is_up, &until, "time to pass");
}

static gboolean
uint_is_nonzero (gpointer data)
{
  return *(guint *) data != 0;
}

typedef struct
{
  guint *counter;
  guint target;
} Count;

static gboolean
count_reached (gpointer data)
{
  Count *c = data;

  return *c->counter >= c->target;
}

static void
wait_for_count (guint      *counter,
                guint       target,
                const char *what)
{
  Count c = { counter, target };

  iterate_until (count_reached, &c, what);
}

static void
count (gpointer user_data)
{
  (*(guint *) user_data)++;
}

static void
record_state (QipcSocket      *socket,
              QipcSocketState  state,
              gpointer         user_data)
{
  g_array_append_val ((GArray *) user_data, state);
}

static QipcLocalSocket *
connect_to (const char *name)
{
  g_autoptr(GError) error = NULL;
  QipcLocalSocket *socket = qipc_local_socket_new ();

  qipc_local_socket_connect_to_server (socket, name);
  g_assert_true (qipc_socket_wait_for_connected (QIPC_SOCKET (socket), 20000, &error));
  g_assert_no_error (error);
  return socket;
}

static QipcLocalServer *
listen_on (const char *name)
{
  g_autoptr(GError) error = NULL;
  QipcLocalServer *server = qipc_local_server_new ();

  g_assert_true (qipc_local_server_listen (server, name, &error));
  g_assert_no_error (error);
  return server;
}

static QipcTestChild *
spawn_server (const char *command,
              const char *name)
{
  QipcTestChild *child = qipc_test_child_spawn (command, name, NULL);

  qipc_test_child_expect (child, "listening");
  return child;
}

static void
assert_bytes (GBytes     *bytes,
              const char *text)
{
  g_assert_cmpmem (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes), text, strlen (text));
}

static int
memfd_with_text (const char *text)
{
  int fd = memfd_create ("qipc-test", MFD_CLOEXEC);

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (write (fd, text, strlen (text)), ==, (gssize) strlen (text));
  return fd;
}

/* Maps the whole file @fd refers to and checks its content. */
static void
assert_fd_holds (int         fd,
                 const char *text)
{
  struct stat st;
  void *data;

  g_assert_cmpint (fstat (fd, &st), ==, 0);
  g_assert_cmpint (st.st_size, ==, (off_t) strlen (text));
  data = mmap (NULL, st.st_size, PROT_READ, MAP_SHARED, fd, 0);
  g_assert_true (data != MAP_FAILED);
  g_assert_cmpmem (data, st.st_size, text, strlen (text));
  munmap (data, st.st_size);
}

static guint8
pattern_byte (gsize i)
{
  return (guint8) (i * 7 + (i >> 13));
}

/* ------------------------------------------------------------------ */
/* Echo server in another process                                      */

static void
test_echo_round_trip (void)
{
  g_autofree char *path = socket_path ("echo");
  G_GNUC_UNUSED g_autoptr(QipcTestChild) child = spawn_server ("local-echo-server", path);
  g_autoptr(QipcLocalSocket) socket = qipc_local_socket_new ();
  g_autoptr(GArray) states = g_array_new (FALSE, FALSE, sizeof (QipcSocketState));
  g_autoptr(GBytes) got = NULL;
  g_autoptr(GError) error = NULL;
  guint connected = 0;

  g_signal_connect (socket, "state-changed", G_CALLBACK (record_state), states);
  g_signal_connect_swapped (socket, "connected", G_CALLBACK (count), &connected);
  g_assert_null (qipc_local_socket_get_server_name (socket));

  qipc_local_socket_connect_to_server (socket, path);
  g_assert_cmpint (qipc_socket_get_state (QIPC_SOCKET (socket)), ==, QIPC_SOCKET_STATE_CONNECTING);
  g_assert_cmpstr (qipc_local_socket_get_server_name (socket), ==, path);
  /* Written while connecting: sent once connected. */
  qipc_test_socket_write_text (QIPC_SOCKET (socket), "hello, ");
  g_assert_true (qipc_socket_wait_for_connected (QIPC_SOCKET (socket), -1, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (connected, ==, 1);
  g_assert_cmpuint (states->len, ==, 2);
  g_assert_cmpint (g_array_index (states, QipcSocketState, 0), ==, QIPC_SOCKET_STATE_CONNECTING);
  g_assert_cmpint (g_array_index (states, QipcSocketState, 1), ==, QIPC_SOCKET_STATE_CONNECTED);

  qipc_test_socket_write_text (QIPC_SOCKET (socket), "world");
  got = qipc_test_socket_read_exactly (QIPC_SOCKET (socket), 12);
  assert_bytes (got, "hello, world");
  g_assert_null (qipc_local_socket_take_fds (socket));

  qipc_socket_close (QIPC_SOCKET (socket));
  g_assert_cmpint (qipc_socket_get_state (QIPC_SOCKET (socket)), ==, QIPC_SOCKET_STATE_UNCONNECTED);
  g_assert_cmpint (g_array_index (states, QipcSocketState, states->len - 1), ==, QIPC_SOCKET_STATE_UNCONNECTED);
}

/* Thousands of small writes, each sent on its own, come back in order
 * and intact. */
static void
test_echo_many_small_writes (void)
{
  const guint n = 20000;
  g_autofree char *path = socket_path ("small");
  G_GNUC_UNUSED g_autoptr(QipcTestChild) child = spawn_server ("local-echo-server", path);
  g_autoptr(QipcLocalSocket) socket = connect_to (path);
  g_autoptr(GString) expected = g_string_new (NULL);
  g_autoptr(GByteArray) received = g_byte_array_new ();

  for (guint i = 0; i < n; i++)
    {
      g_autofree char *record = g_strdup_printf ("%u;", i);

      g_string_append (expected, record);
      qipc_test_socket_write_text (QIPC_SOCKET (socket), record);
    }

  while (received->len < expected->len)
    {
      g_autoptr(GBytes) chunk = NULL;
      g_autoptr(GError) error = NULL;

      g_assert_true (qipc_socket_wait_for_ready_read (QIPC_SOCKET (socket), LOOP_SECONDS * 1000, &error));
      g_assert_no_error (error);
      chunk = qipc_socket_read_all (QIPC_SOCKET (socket));
      g_byte_array_append (received, g_bytes_get_data (chunk, NULL), g_bytes_get_size (chunk));
    }
  g_assert_cmpmem (received->data, received->len, expected->str, expected->len);
  g_assert_cmpuint (qipc_socket_bytes_to_write (QIPC_SOCKET (socket)), ==, 0);
}

/* 64 MiB out and back through a 64 KiB read buffer. */
static void
test_echo_large_transfer (void)
{
  const gsize total = 64 << 20;
  const gsize limit = 64 * 1024;
  g_autofree char *path = socket_path ("large");
  G_GNUC_UNUSED g_autoptr(QipcTestChild) child = spawn_server ("local-echo-server", path);
  g_autoptr(QipcLocalSocket) socket = connect_to (path);
  g_autofree guint8 *data = g_malloc (total);
  g_autoptr(GBytes) bytes = NULL;
  gint64 deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  gsize received = 0;

  for (gsize i = 0; i < total; i++)
    data[i] = pattern_byte (i);
  bytes = g_bytes_new_static (data, total);

  qipc_socket_set_read_buffer_size (QIPC_SOCKET (socket), limit);
  g_assert_true (qipc_socket_write (QIPC_SOCKET (socket), bytes, NULL));

  while (received < total)
    {
      g_autoptr(GBytes) chunk = NULL;
      gsize size;

      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_assert_true (qipc_socket_wait_for_ready_read (QIPC_SOCKET (socket), LOOP_SECONDS * 1000, NULL));
      g_assert_cmpuint (qipc_socket_bytes_available (QIPC_SOCKET (socket)), <=, limit);
      chunk = qipc_socket_read_all (QIPC_SOCKET (socket));
      size = g_bytes_get_size (chunk);
      g_assert_cmpuint (received + size, <=, total);
      g_assert_cmpmem (g_bytes_get_data (chunk, NULL), size, data + received, size);
      received += size;
    }
  g_assert_cmpuint (qipc_socket_bytes_to_write (QIPC_SOCKET (socket)), ==, 0);
}

/* A line protocol: lines sent in pieces are read whole. */
static void
test_echo_lines (void)
{
  g_autofree char *path = socket_path ("lines");
  G_GNUC_UNUSED g_autoptr(QipcTestChild) child = spawn_server ("local-echo-server", path);
  g_autoptr(QipcLocalSocket) socket = connect_to (path);
  QipcSocket *s = QIPC_SOCKET (socket);
  g_autoptr(GBytes) line = NULL;
  g_autoptr(GBytes) rest = NULL;

  qipc_test_socket_write_text (s, "HELO qi");
  while (qipc_socket_bytes_available (s) < 7)
    g_assert_true (qipc_socket_wait_for_ready_read (s, LOOP_SECONDS * 1000, NULL));
  g_assert_false (qipc_socket_can_read_line (s));

  qipc_test_socket_write_text (s, "pc\nQUIT\nPART");
  while (qipc_socket_bytes_available (s) < 7 + 12)
    g_assert_true (qipc_socket_wait_for_ready_read (s, LOOP_SECONDS * 1000, NULL));

  g_assert_true (qipc_socket_can_read_line (s));
  line = qipc_socket_read_line (s, 0);
  assert_bytes (line, "HELO qipc\n");
  g_clear_pointer (&line, g_bytes_unref);
  line = qipc_socket_read_line (s, 3);
  assert_bytes (line, "QUI");
  g_clear_pointer (&line, g_bytes_unref);
  line = qipc_socket_read_line (s, 0);
  assert_bytes (line, "T\n");
  g_assert_false (qipc_socket_can_read_line (s));
  rest = qipc_socket_read_all (s);
  assert_bytes (rest, "PART");
}

/* ------------------------------------------------------------------ */
/* Names                                                               */

static void
test_names_abstract (void)
{
  g_autofree char *name = abstract_name ("abstract");
  g_autoptr(QipcTestChild) child = spawn_server ("local-echo-server", name);
  g_autoptr(QipcLocalSocket) socket = connect_to (name);
  g_autoptr(QipcLocalServer) second = qipc_local_server_new ();
  g_autoptr(GBytes) got = NULL;
  g_autoptr(GError) error = NULL;

  qipc_test_socket_write_text (QIPC_SOCKET (socket), "abstract");
  got = qipc_test_socket_read_exactly (QIPC_SOCKET (socket), 8);
  assert_bytes (got, "abstract");

  /* The name is taken while the server lives. */
  g_assert_false (qipc_local_server_listen (second, name, &error));
  g_assert_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_ADDRESS_IN_USE);
  g_assert_nonnull (strstr (error->message, name));
  g_clear_error (&error);

  /* Free again, with nothing to clean up, as soon as it is gone. */
  qipc_test_child_kill (child);
  g_assert_true (qipc_local_server_listen (second, name, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (qipc_local_server_get_server_name (second), ==, name);
  g_assert_cmpstr (qipc_local_server_get_full_server_name (second), ==, name);
}

static gboolean
has_bytes (gpointer socket)
{
  return qipc_socket_bytes_available (socket) > 0;
}

static gboolean
is_unconnected (gpointer socket)
{
  return qipc_socket_get_state (socket) == QIPC_SOCKET_STATE_UNCONNECTED;
}

static void
expect_byte (QipcSocket *socket,
             char        expected)
{
  g_autoptr(GBytes) got = NULL;

  iterate_until (has_bytes, socket, "a byte");
  got = qipc_socket_read (socket, 1);
  g_assert_cmpint (((const char *) g_bytes_get_data (got, NULL))[0], ==, expected);
}

/* Iterations of the main context that find nothing to do (more than a
 * socket stays ready for while idle). */
static void
iterate_idle (void)
{
  for (guint i = 0; i < 1000; i++)
    g_main_context_iteration (NULL, FALSE);
}

/* A socket with nothing to send for a few hundred iterations gives back
 * what it keeps in the main context for sending (a thousand idle clients
 * would cost a broker every iteration), and takes it again for the next
 * write. */
static void
test_idle_then_write (void)
{
  g_autofree char *path = socket_path ("idle");
  g_autoptr(QipcLocalServer) server = listen_on (path);
  g_autoptr(QipcLocalSocket) client = qipc_local_socket_new ();
  g_autoptr(QipcSocket) accepted = NULL;
  guint new_connections = 0, written = 0;

  g_signal_connect_swapped (server, "new-connection", G_CALLBACK (count), &new_connections);
  qipc_local_socket_connect_to_server (client, path);
  iterate_until (uint_is_nonzero, &new_connections, "new-connection");
  accepted = qipc_server_next_pending_connection (QIPC_SERVER (server));
  g_signal_connect_swapped (client, "bytes-written", G_CALLBACK (count), &written);

  qipc_test_socket_write_text (QIPC_SOCKET (client), "a");
  expect_byte (accepted, 'a');
  iterate_idle ();
  g_assert_cmpuint (written, ==, 1);

  qipc_test_socket_write_text (QIPC_SOCKET (client), "b");
  expect_byte (accepted, 'b');
  wait_for_count (&written, 2, "bytes-written after the idle second");

  /* A close after an idle while still sends what was queued first. */
  iterate_idle ();
  qipc_test_socket_write_text (QIPC_SOCKET (client), "c");
  qipc_socket_close (QIPC_SOCKET (client));
  expect_byte (accepted, 'c');
  iterate_until (is_unconnected, client, "the client closed");
}

#define MANY_SOCKETS 40

typedef struct
{
  QipcSocket *accepted[MANY_SOCKETS];
  guint echoed;
  guint dropped;
} Many;

static gboolean
all_handled (gpointer data)
{
  Many *many = data;

  return many->echoed + many->dropped == MANY_SOCKETS;
}

/* Echoes the byte; an even socket also drops the next one, which has
 * data waiting too: in the poller, both may be in one batch. */
static void
echo_and_drop_next (QipcSocket *socket,
                    Many       *many)
{
  g_autoptr(GBytes) got = qipc_socket_read (socket, 1);
  guint i;

  for (i = 0; i < MANY_SOCKETS && many->accepted[i] != socket; i++)
    ;
  g_assert_cmpuint (i, <, MANY_SOCKETS);
  qipc_socket_write (socket, got, NULL);
  many->echoed++;
  if (i % 2 == 0 && i + 1 < MANY_SOCKETS && many->accepted[i + 1] != NULL)
    {
      g_signal_handlers_disconnect_by_data (many->accepted[i + 1], many);
      qipc_socket_abort (many->accepted[i + 1]);
      g_clear_object (&many->accepted[i + 1]);
      many->dropped++;
    }
}

static gboolean
client_has_byte (gpointer socket)
{
  return has_bytes (socket) || is_unconnected (socket);
}

/* More sockets in one context than it watches with sources of their own:
 * the rest go through the context's epoll poller, including a socket
 * dropped by another one's handler in the same batch of ready ones. */
static void
test_many_sockets (void)
{
  g_autofree char *path = socket_path ("many");
  g_autoptr(QipcLocalServer) server = listen_on (path);
  QipcLocalSocket *clients[MANY_SOCKETS];
  Many many = { { NULL }, 0, 0 };
  guint new_connections = 0;

  /* More than the 30 connections that may wait: taken as they come. */
  qipc_server_set_max_pending_connections (QIPC_SERVER (server), MANY_SOCKETS);
  g_signal_connect_swapped (server, "new-connection", G_CALLBACK (count), &new_connections);
  for (guint i = 0; i < MANY_SOCKETS; i++)
    {
      clients[i] = qipc_local_socket_new ();
      qipc_local_socket_connect_to_server (clients[i], path);
    }
  wait_for_count (&new_connections, MANY_SOCKETS, "every connection");
  for (guint i = 0; i < MANY_SOCKETS; i++)
    {
      many.accepted[i] = qipc_server_next_pending_connection (QIPC_SERVER (server));
      g_assert_nonnull (many.accepted[i]);
    }
  /* Which accepted socket is whose does not matter: each echoes. */
  for (guint i = 0; i < MANY_SOCKETS; i++)
    g_signal_connect (many.accepted[i], "ready-read", G_CALLBACK (echo_and_drop_next), &many);
  for (guint i = 0; i < MANY_SOCKETS; i++)
    {
      char byte = 'A' + (i % 26);

      qipc_socket_write_data (QIPC_SOCKET (clients[i]), (const guint8 *) &byte, 1, NULL);
    }
  iterate_until (all_handled, &many, "every accepted socket handled");
  g_assert_cmpuint (many.echoed, >=, MANY_SOCKETS / 2);

  /* Each client hears its echo, or the end of a dropped connection. */
  for (guint i = 0; i < MANY_SOCKETS; i++)
    {
      iterate_until (client_has_byte, clients[i], "an echo or the end");
      g_object_unref (clients[i]);
    }
  for (guint i = 0; i < MANY_SOCKETS; i++)
    g_clear_object (&many.accepted[i]);
}

static void
test_names_runtime_dir (void)
{
  g_autofree char *name = g_strdup_printf ("qipc-test-%d-runtime.sock", (int) getpid ());
  g_autofree char *expected = g_build_filename (g_get_user_runtime_dir (), name, NULL);
  g_autoptr(QipcLocalServer) server = NULL;
  g_autoptr(QipcLocalSocket) client = NULL;
  g_autoptr(QipcSocket) accepted = NULL;
  guint new_connections = 0;

  server = listen_on (name);
  g_assert_cmpstr (qipc_local_server_get_server_name (server), ==, name);
  g_assert_cmpstr (qipc_local_server_get_full_server_name (server), ==, expected);
  g_assert_true (g_file_test (expected, G_FILE_TEST_EXISTS));

  /* Client and server in one thread: everything runs on the main loop. */
  g_signal_connect_swapped (server, "new-connection", G_CALLBACK (count), &new_connections);
  client = qipc_local_socket_new ();
  qipc_local_socket_connect_to_server (client, name);
  iterate_until (uint_is_nonzero, &new_connections, "new-connection");
  accepted = qipc_server_next_pending_connection (QIPC_SERVER (server));
  g_assert_true (QIPC_IS_LOCAL_SOCKET (accepted));
  g_assert_cmpint (qipc_socket_get_state (accepted), ==, QIPC_SOCKET_STATE_CONNECTED);
  g_assert_cmpstr (qipc_local_socket_get_server_name (QIPC_LOCAL_SOCKET (accepted)), ==, name);
  g_assert_cmpint (qipc_socket_get_state (QIPC_SOCKET (client)), ==, QIPC_SOCKET_STATE_CONNECTED);

  qipc_server_close (QIPC_SERVER (server));
  g_assert_false (g_file_test (expected, G_FILE_TEST_EXISTS));
}

static void
assert_connect_fails (const char *name,
                      int         code)
{
  g_autoptr(QipcLocalSocket) socket = qipc_local_socket_new ();
  g_autoptr(GArray) states = g_array_new (FALSE, FALSE, sizeof (QipcSocketState));
  g_autoptr(GError) error = NULL;
  guint errors = 0;
  guint disconnected = 0;

  g_signal_connect (socket, "state-changed", G_CALLBACK (record_state), states);
  g_signal_connect_swapped (socket, "error-occurred", G_CALLBACK (count), &errors);
  g_signal_connect_swapped (socket, "disconnected", G_CALLBACK (count), &disconnected);

  qipc_local_socket_connect_to_server (socket, name);
  if (qipc_socket_get_state (QIPC_SOCKET (socket)) != QIPC_SOCKET_STATE_UNCONNECTED)
    {
      g_assert_false (qipc_socket_wait_for_connected (QIPC_SOCKET (socket), 20000, &error));
      g_assert_error (error, QIPC_SOCKET_ERROR, code);
    }

  g_assert_cmpint (qipc_socket_get_state (QIPC_SOCKET (socket)), ==, QIPC_SOCKET_STATE_UNCONNECTED);
  g_assert_error (qipc_socket_get_error (QIPC_SOCKET (socket)), QIPC_SOCKET_ERROR, code);
  g_assert_nonnull (strstr (qipc_socket_get_error (QIPC_SOCKET (socket))->message, name));
  g_assert_cmpuint (errors, ==, 1);
  g_assert_cmpuint (disconnected, ==, 0);
  g_assert_cmpuint (states->len, ==, 2);
  g_assert_cmpint (g_array_index (states, QipcSocketState, 0), ==, QIPC_SOCKET_STATE_CONNECTING);
  g_assert_cmpint (g_array_index (states, QipcSocketState, 1), ==, QIPC_SOCKET_STATE_UNCONNECTED);
}

static void
test_names_invalid (void)
{
  g_autofree char *too_long = g_strnfill (200, 'x');
  const char *names[] = { "", "@", too_long };

  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autoptr(QipcLocalServer) server = qipc_local_server_new ();
      g_autoptr(GError) error = NULL;

      g_assert_false (qipc_local_server_listen (server, names[i], &error));
      g_assert_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_ADDRESS_NOT_AVAILABLE);
      g_assert_false (qipc_server_is_listening (QIPC_SERVER (server)));
      assert_connect_fails (names[i], QIPC_SOCKET_ERROR_ADDRESS_NOT_AVAILABLE);
    }
}

/* ------------------------------------------------------------------ */
/* Connecting                                                          */

static void
test_connect_server_not_found (void)
{
  g_autofree char *path = socket_path ("missing");
  g_autofree char *abstract = abstract_name ("missing");

  assert_connect_fails (path, QIPC_SOCKET_ERROR_SERVER_NOT_FOUND);
  assert_connect_fails (abstract, QIPC_SOCKET_ERROR_SERVER_NOT_FOUND);
}

/* The socket file of a crashed server refuses connections. */
static void
test_connect_refused_stale (void)
{
  g_autofree char *path = socket_path ("stale");
  g_autoptr(QipcTestChild) child = spawn_server ("local-echo-server", path);

  qipc_test_child_kill (child);
  g_assert_true (g_file_test (path, G_FILE_TEST_EXISTS));
  assert_connect_fails (path, QIPC_SOCKET_ERROR_CONNECTION_REFUSED);
}

static void
test_connect_while_connected (void)
{
  g_autofree char *path = socket_path ("twice");
  G_GNUC_UNUSED g_autoptr(QipcTestChild) child = spawn_server ("local-echo-server", path);
  g_autoptr(QipcLocalSocket) socket = connect_to (path);
  g_autoptr(GBytes) got = NULL;
  guint errors = 0;

  g_signal_connect_swapped (socket, "error-occurred", G_CALLBACK (count), &errors);
  qipc_local_socket_connect_to_server (socket, "elsewhere");
  g_assert_cmpuint (errors, ==, 1);
  g_assert_error (qipc_socket_get_error (QIPC_SOCKET (socket)), QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_OPERATION);

  /* The connection is left alone. */
  g_assert_cmpint (qipc_socket_get_state (QIPC_SOCKET (socket)), ==, QIPC_SOCKET_STATE_CONNECTED);
  g_assert_cmpstr (qipc_local_socket_get_server_name (socket), ==, path);
  qipc_test_socket_write_text (QIPC_SOCKET (socket), "still here");
  got = qipc_test_socket_read_exactly (QIPC_SOCKET (socket), 10);
  assert_bytes (got, "still here");
}

/* Aborting while connecting ends the attempt; the socket connects
 * again later, file descriptors included. */
static void
test_connect_abort_and_reconnect (void)
{
  g_autofree char *path = socket_path ("reconnect");
  G_GNUC_UNUSED g_autoptr(QipcTestChild) child = spawn_server ("local-echo-server", path);
  g_autoptr(QipcLocalSocket) socket = qipc_local_socket_new ();
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  g_autoptr(GUnixFDList) got_fds = NULL;
  g_autoptr(GBytes) byte = g_bytes_new_static ("!", 1);
  g_autoptr(GBytes) got = NULL;
  g_autoptr(GError) error = NULL;
  guint connected = 0;
  int fd = memfd_with_text ("second time");

  g_signal_connect_swapped (socket, "connected", G_CALLBACK (count), &connected);
  qipc_local_socket_connect_to_server (socket, path);
  qipc_socket_abort (QIPC_SOCKET (socket));
  g_assert_cmpint (qipc_socket_get_state (QIPC_SOCKET (socket)), ==, QIPC_SOCKET_STATE_UNCONNECTED);
  iterate_for (100);
  g_assert_cmpuint (connected, ==, 0);
  g_assert_cmpint (qipc_socket_get_state (QIPC_SOCKET (socket)), ==, QIPC_SOCKET_STATE_UNCONNECTED);

  qipc_local_socket_connect_to_server (socket, path);
  g_assert_true (qipc_socket_wait_for_connected (QIPC_SOCKET (socket), 20000, &error));
  g_assert_no_error (error);
  qipc_socket_close (QIPC_SOCKET (socket));

  qipc_local_socket_connect_to_server (socket, path);
  g_assert_true (qipc_socket_wait_for_connected (QIPC_SOCKET (socket), 20000, &error));
  g_assert_cmpuint (connected, ==, 2);

  g_unix_fd_list_append (fds, fd, &error);
  g_assert_no_error (error);
  close (fd);
  g_assert_true (qipc_local_socket_write_with_fds (socket, byte, fds, &error));
  g_assert_no_error (error);
  got = qipc_test_socket_read_exactly (QIPC_SOCKET (socket), 1);
  got_fds = qipc_local_socket_take_fds (socket);
  g_assert_nonnull (got_fds);
  g_assert_cmpint (g_unix_fd_list_get_length (got_fds), ==, 1);
  assert_fd_holds (g_unix_fd_list_peek_fds (got_fds, NULL)[0], "second time");
}

/* Dropping a socket while it connects is safe. */
static void
test_connect_unref_while_connecting (void)
{
  g_autofree char *path = socket_path ("unref");
  G_GNUC_UNUSED g_autoptr(QipcTestChild) child = spawn_server ("local-echo-server", path);
  QipcLocalSocket *socket = qipc_local_socket_new ();

  qipc_local_socket_connect_to_server (socket, path);
  g_object_unref (socket);
  iterate_for (100);
}

/* ------------------------------------------------------------------ */
/* File descriptors                                                    */

static void
test_fds_memfd_from_child (void)
{
  g_autofree char *path = socket_path ("memfd");
  g_autoptr(QipcLocalServer) server = listen_on (path);
  g_autoptr(QipcTestChild) child = NULL;
  g_autoptr(QipcSocket) accepted = NULL;
  g_autoptr(GUnixFDList) fds = NULL;
  g_autoptr(GBytes) got = NULL;
  g_autoptr(GError) error = NULL;

  child = qipc_test_child_spawn ("local-send-memfd", path, "sealed with a memfd", NULL);
  g_assert_true (qipc_server_wait_for_new_connection (QIPC_SERVER (server), 20000, &error));
  g_assert_no_error (error);
  accepted = qipc_server_next_pending_connection (QIPC_SERVER (server));
  qipc_test_child_expect (child, "sent");

  got = qipc_test_socket_read_exactly (accepted, 1);
  assert_bytes (got, "m");
  fds = qipc_local_socket_take_fds (QIPC_LOCAL_SOCKET (accepted));
  g_assert_nonnull (fds);
  g_assert_cmpint (g_unix_fd_list_get_length (fds), ==, 1);
  assert_fd_holds (g_unix_fd_list_peek_fds (fds, NULL)[0], "sealed with a memfd");
  g_assert_null (qipc_local_socket_take_fds (QIPC_LOCAL_SOCKET (accepted)));

  /* Closing our end lets the child exit. */
  qipc_socket_close (accepted);
  g_assert_cmpint (qipc_test_child_wait (child), ==, 0);
}

static void
write_fd_text (QipcLocalSocket *socket,
               const char      *data,
               const char      *fd_text)
{
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  g_autoptr(GBytes) bytes = g_bytes_new (data, strlen (data));
  g_autoptr(GError) error = NULL;
  int fd = memfd_with_text (fd_text);

  g_unix_fd_list_append (fds, fd, &error);
  g_assert_no_error (error);
  close (fd);
  g_assert_true (qipc_local_socket_write_with_fds (socket, bytes, fds, &error));
  g_assert_no_error (error);
}

/* Descriptors sent between plain writes come back in order, to the
 * other process and back. */
static void
test_fds_echo_in_order (void)
{
  g_autofree char *path = socket_path ("fd-echo");
  G_GNUC_UNUSED g_autoptr(QipcTestChild) child = spawn_server ("local-echo-server", path);
  g_autoptr(QipcLocalSocket) socket = connect_to (path);
  g_autoptr(GUnixFDList) fds = NULL;
  g_autoptr(GBytes) got = NULL;
  const int *received;
  int n_received;

  qipc_test_socket_write_text (QIPC_SOCKET (socket), "a");
  write_fd_text (socket, "b", "first");
  qipc_test_socket_write_text (QIPC_SOCKET (socket), "c");
  write_fd_text (socket, "d", "second");
  write_fd_text (socket, "e", "third");

  got = qipc_test_socket_read_exactly (QIPC_SOCKET (socket), 5);
  assert_bytes (got, "abcde");
  fds = qipc_local_socket_take_fds (socket);
  g_assert_nonnull (fds);
  received = g_unix_fd_list_peek_fds (fds, &n_received);
  g_assert_cmpint (n_received, ==, 3);
  assert_fd_holds (received[0], "first");
  assert_fd_holds (received[1], "second");
  assert_fd_holds (received[2], "third");
  /* Received descriptors do not leak into children. */
  g_assert_cmpint (fcntl (received[0], F_GETFD) & FD_CLOEXEC, ==, FD_CLOEXEC);
}

static void
test_fds_need_data (void)
{
  g_autofree char *path = socket_path ("fd-empty");
  G_GNUC_UNUSED g_autoptr(QipcTestChild) child = spawn_server ("local-echo-server", path);
  g_autoptr(QipcLocalSocket) socket = connect_to (path);
  g_autoptr(QipcLocalSocket) unconnected = qipc_local_socket_new ();
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  g_autoptr(GBytes) empty = g_bytes_new (NULL, 0);
  g_autoptr(GBytes) byte = g_bytes_new_static ("x", 1);
  g_autoptr(GError) error = NULL;

  g_unix_fd_list_append (fds, 0, &error);
  g_assert_no_error (error);

  g_assert_false (qipc_local_socket_write_with_fds (socket, empty, fds, &error));
  g_assert_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_OPERATION);
  g_clear_error (&error);
  g_assert_cmpuint (qipc_socket_bytes_to_write (QIPC_SOCKET (socket)), ==, 0);

  g_assert_false (qipc_local_socket_write_with_fds (unconnected, byte, fds, &error));
  g_assert_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_OPERATION);
  g_clear_error (&error);

  /* Without descriptors, it is a plain write. */
  g_assert_true (qipc_local_socket_write_with_fds (socket, byte, NULL, &error));
  g_assert_no_error (error);
}

/* ------------------------------------------------------------------ */
/* Peer credentials                                                    */

static void
test_credentials_of_server (void)
{
  g_autofree char *path = socket_path ("creds-server");
  g_autoptr(QipcTestChild) child = spawn_server ("local-echo-server", path);
  g_autoptr(QipcLocalSocket) socket = connect_to (path);
  g_autoptr(GCredentials) credentials = NULL;
  g_autoptr(GError) error = NULL;

  credentials = qipc_local_socket_get_peer_credentials (socket, &error);
  g_assert_no_error (error);
  g_assert_nonnull (credentials);
  g_assert_cmpint (g_credentials_get_unix_pid (credentials, NULL), ==, qipc_test_child_get_pid (child));
  g_assert_cmpuint (g_credentials_get_unix_user (credentials, NULL), ==, getuid ());
}

static void
test_credentials_of_client (void)
{
  g_autofree char *path = socket_path ("creds-client");
  g_autoptr(QipcLocalServer) server = listen_on (path);
  g_autoptr(QipcTestChild) child = qipc_test_child_spawn ("local-connect", path, NULL);
  g_autoptr(QipcSocket) accepted = NULL;
  g_autoptr(GCredentials) credentials = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (qipc_server_wait_for_new_connection (QIPC_SERVER (server), 20000, &error));
  qipc_test_child_expect (child, "connected");
  accepted = qipc_server_next_pending_connection (QIPC_SERVER (server));
  credentials = qipc_local_socket_get_peer_credentials (QIPC_LOCAL_SOCKET (accepted), &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_credentials_get_unix_pid (credentials, NULL), ==, qipc_test_child_get_pid (child));
  g_assert_cmpuint (g_credentials_get_unix_user (credentials, NULL), ==, getuid ());

  qipc_socket_abort (accepted);
  g_assert_cmpint (qipc_test_child_wait (child), ==, 0);

  /* Not connected any more: no credentials. */
  g_clear_object (&credentials);
  credentials = qipc_local_socket_get_peer_credentials (QIPC_LOCAL_SOCKET (accepted), &error);
  g_assert_null (credentials);
  g_assert_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_OPERATION);
}

/* ------------------------------------------------------------------ */
/* A peer that disappears                                              */

static void
test_peer_killed_mid_write (void)
{
  const gsize total = 64 << 20;
  g_autofree char *path = socket_path ("killed");
  g_autoptr(QipcTestChild) child = spawn_server ("local-sink-server", path);
  g_autoptr(QipcLocalSocket) socket = connect_to (path);
  g_autoptr(GBytes) bytes = g_bytes_new_take (g_malloc0 (total), total);
  g_autoptr(GError) error = NULL;
  guint disconnected = 0;
  guint errors = 0;

  g_signal_connect_swapped (socket, "disconnected", G_CALLBACK (count), &disconnected);
  g_signal_connect_swapped (socket, "error-occurred", G_CALLBACK (count), &errors);
  g_assert_true (qipc_socket_write (QIPC_SOCKET (socket), bytes, NULL));
  g_assert_true (qipc_socket_wait_for_bytes_written (QIPC_SOCKET (socket), 20000, NULL));
  g_assert_cmpuint (qipc_socket_bytes_to_write (QIPC_SOCKET (socket)), >, 0);

  qipc_test_child_kill (child);
  g_assert_true (qipc_socket_wait_for_disconnected (QIPC_SOCKET (socket), 20000, &error));
  g_assert_no_error (error);
  g_assert_cmpint (qipc_socket_get_state (QIPC_SOCKET (socket)), ==, QIPC_SOCKET_STATE_UNCONNECTED);
  g_assert_cmpuint (disconnected, ==, 1);
  g_assert_cmpuint (errors, ==, 1);
  g_assert_error (qipc_socket_get_error (QIPC_SOCKET (socket)), QIPC_SOCKET_ERROR,
                  QIPC_SOCKET_ERROR_REMOTE_HOST_CLOSED);
  g_assert_cmpuint (qipc_socket_bytes_to_write (QIPC_SOCKET (socket)), ==, 0);
}

/* ------------------------------------------------------------------ */
/* Waiting                                                             */

/* A listening socket whose backlog is full: connect() says EAGAIN, and
 * the local socket keeps trying until the server accepts. */
static void
test_wait_connected (void)
{
  g_autofree char *path = socket_path ("backlog");
  g_autoptr(GSocketAddress) address = g_unix_socket_address_new (path);
  g_autoptr(GSocket) listener = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, 0, NULL);
  g_autoptr(GSocket) first = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, 0, NULL);
  g_autoptr(GSocket) accepted = NULL;
  g_autoptr(QipcLocalSocket) socket = qipc_local_socket_new ();
  g_autoptr(GError) error = NULL;

  g_assert_true (g_socket_bind (listener, address, FALSE, &error));
  g_socket_set_listen_backlog (listener, 0);
  g_assert_true (g_socket_listen (listener, &error));
  g_assert_true (g_socket_connect (first, address, NULL, &error));
  g_assert_no_error (error);

  qipc_local_socket_connect_to_server (socket, path);
  g_assert_false (qipc_socket_wait_for_connected (QIPC_SOCKET (socket), 200, &error));
  g_assert_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_SOCKET_TIMEOUT);
  g_clear_error (&error);
  g_assert_cmpint (qipc_socket_get_state (QIPC_SOCKET (socket)), ==, QIPC_SOCKET_STATE_CONNECTING);

  accepted = g_socket_accept (listener, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (qipc_socket_wait_for_connected (QIPC_SOCKET (socket), -1, &error));
  g_assert_no_error (error);
  g_assert_true (qipc_socket_wait_for_connected (QIPC_SOCKET (socket), 0, &error));

  qipc_socket_abort (QIPC_SOCKET (socket));
  g_assert_false (qipc_socket_wait_for_connected (QIPC_SOCKET (socket), -1, &error));
  g_assert_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_OPERATION);
}

static void
test_wait_ready_read (void)
{
  g_autofree char *path = socket_path ("ready-read");
  G_GNUC_UNUSED g_autoptr(QipcTestChild) child = spawn_server ("local-echo-server", path);
  g_autoptr(QipcLocalSocket) socket = connect_to (path);
  QipcSocket *s = QIPC_SOCKET (socket);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) got = NULL;

  g_assert_false (qipc_socket_wait_for_ready_read (s, 100, &error));
  g_assert_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_SOCKET_TIMEOUT);
  g_clear_error (&error);

  qipc_test_socket_write_text (s, "ping");
  while (qipc_socket_bytes_available (s) < 4)
    {
      g_assert_true (qipc_socket_wait_for_ready_read (s, -1, &error));
      g_assert_no_error (error);
    }
  got = qipc_socket_read_all (s);
  assert_bytes (got, "ping");
}

static void
test_wait_bytes_written (void)
{
  const gsize total = 64 << 20;
  g_autofree char *path = socket_path ("bytes-written");
  G_GNUC_UNUSED g_autoptr(QipcTestChild) child = spawn_server ("local-sink-server", path);
  g_autoptr(QipcLocalSocket) socket = connect_to (path);
  QipcSocket *s = QIPC_SOCKET (socket);
  g_autoptr(GBytes) bytes = g_bytes_new_take (g_malloc0 (total), total);
  g_autoptr(GError) error = NULL;
  gboolean timed_out = FALSE;

  /* Nothing queued. */
  g_assert_false (qipc_socket_wait_for_bytes_written (s, 100, &error));
  g_assert_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_OPERATION);
  g_clear_error (&error);

  qipc_test_socket_write_text (s, "x");
  g_assert_true (qipc_socket_wait_for_bytes_written (s, -1, &error));
  g_assert_no_error (error);

  /* The peer reads nothing: once the kernel's buffers are full, waiting
   * times out. */
  g_assert_true (qipc_socket_write (s, bytes, NULL));
  for (guint i = 0; i < 1000 && !timed_out; i++)
    {
      if (!qipc_socket_wait_for_bytes_written (s, 100, &error))
        {
          g_assert_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_SOCKET_TIMEOUT);
          timed_out = TRUE;
        }
    }
  g_assert_true (timed_out);
  g_assert_cmpuint (qipc_socket_bytes_to_write (s), >, 0);
  g_assert_cmpint (qipc_socket_get_state (s), ==, QIPC_SOCKET_STATE_CONNECTED);
  qipc_socket_abort (s);
}

static void
test_wait_disconnected (void)
{
  g_autofree char *path = socket_path ("disconnected");
  g_autoptr(QipcTestChild) child = spawn_server ("local-echo-server", path);
  g_autoptr(QipcLocalSocket) socket = connect_to (path);
  g_autoptr(GError) error = NULL;

  g_assert_false (qipc_socket_wait_for_disconnected (QIPC_SOCKET (socket), 100, &error));
  g_assert_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_SOCKET_TIMEOUT);
  g_clear_error (&error);
  g_assert_cmpint (qipc_socket_get_state (QIPC_SOCKET (socket)), ==, QIPC_SOCKET_STATE_CONNECTED);

  qipc_test_child_kill (child);
  g_assert_true (qipc_socket_wait_for_disconnected (QIPC_SOCKET (socket), -1, &error));
  g_assert_no_error (error);
  g_assert_error (qipc_socket_get_error (QIPC_SOCKET (socket)), QIPC_SOCKET_ERROR,
                  QIPC_SOCKET_ERROR_REMOTE_HOST_CLOSED);
  g_assert_true (qipc_socket_wait_for_disconnected (QIPC_SOCKET (socket), 0, &error));
}

/* ------------------------------------------------------------------ */
/* The server                                                          */

static void
test_server_pending (void)
{
  g_autofree char *path = socket_path ("pending");
  g_autoptr(QipcLocalServer) server = listen_on (path);
  g_autoptr(QipcLocalServer) idle = qipc_local_server_new ();
  g_autoptr(QipcTestChild) child = NULL;
  g_autoptr(QipcSocket) accepted = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (qipc_server_is_listening (QIPC_SERVER (server)));
  g_assert_false (qipc_server_has_pending_connections (QIPC_SERVER (server)));
  g_assert_null (qipc_server_next_pending_connection (QIPC_SERVER (server)));

  g_assert_false (qipc_server_wait_for_new_connection (QIPC_SERVER (server), 100, &error));
  g_assert_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_SOCKET_TIMEOUT);
  g_clear_error (&error);

  child = qipc_test_child_spawn ("local-connect", path, NULL);
  g_assert_true (qipc_server_wait_for_new_connection (QIPC_SERVER (server), -1, &error));
  g_assert_no_error (error);
  g_assert_true (qipc_server_has_pending_connections (QIPC_SERVER (server)));
  accepted = qipc_server_next_pending_connection (QIPC_SERVER (server));
  g_assert_true (QIPC_IS_LOCAL_SOCKET (accepted));
  g_assert_cmpint (qipc_socket_get_state (accepted), ==, QIPC_SOCKET_STATE_CONNECTED);
  g_assert_false (qipc_server_has_pending_connections (QIPC_SERVER (server)));
  qipc_test_child_expect (child, "connected");

  g_assert_false (qipc_server_wait_for_new_connection (QIPC_SERVER (idle), 100, &error));
  g_assert_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_OPERATION);
  g_clear_error (&error);

  /* Listening twice is an error; the first listen stays. */
  g_assert_false (qipc_local_server_listen (server, path, &error));
  g_assert_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_OPERATION);
  g_assert_true (qipc_server_is_listening (QIPC_SERVER (server)));

  qipc_socket_close (accepted);
  g_assert_cmpint (qipc_test_child_wait (child), ==, 0);
}

static void
test_server_pause_resume (void)
{
  g_autofree char *path = socket_path ("pause");
  g_autoptr(QipcLocalServer) server = listen_on (path);
  g_autoptr(QipcTestChild) child = NULL;
  g_autoptr(QipcSocket) accepted = NULL;
  guint new_connections = 0;

  g_signal_connect_swapped (server, "new-connection", G_CALLBACK (count), &new_connections);
  qipc_server_pause_accepting (QIPC_SERVER (server));

  /* The client is connected as far as it can tell: it waits in the
   * system's backlog. */
  child = qipc_test_child_spawn ("local-connect", path, NULL);
  qipc_test_child_expect (child, "connected");
  iterate_for (200);
  g_assert_cmpuint (new_connections, ==, 0);
  g_assert_false (qipc_server_has_pending_connections (QIPC_SERVER (server)));

  qipc_server_resume_accepting (QIPC_SERVER (server));
  iterate_until (uint_is_nonzero, &new_connections, "new-connection");
  g_assert_cmpuint (new_connections, ==, 1);
  accepted = qipc_server_next_pending_connection (QIPC_SERVER (server));
  g_assert_nonnull (accepted);

  qipc_socket_abort (accepted);
  g_assert_cmpint (qipc_test_child_wait (child), ==, 0);
}

static void
test_server_max_pending (void)
{
  g_autofree char *path = socket_path ("max-pending");
  g_autoptr(QipcLocalServer) server = qipc_local_server_new ();
  g_autoptr(QipcTestChild) first = NULL;
  g_autoptr(QipcTestChild) second = NULL;
  g_autoptr(QipcSocket) one = NULL;
  g_autoptr(QipcSocket) two = NULL;
  g_autoptr(GError) error = NULL;
  guint new_connections = 0;

  qipc_server_set_max_pending_connections (QIPC_SERVER (server), 1);
  g_assert_true (qipc_local_server_listen (server, path, &error));
  g_signal_connect_swapped (server, "new-connection", G_CALLBACK (count), &new_connections);

  first = qipc_test_child_spawn ("local-connect", path, NULL);
  second = qipc_test_child_spawn ("local-connect", path, NULL);
  qipc_test_child_expect (first, "connected");
  qipc_test_child_expect (second, "connected");
  wait_for_count (&new_connections, 1, "the first new-connection");
  /* The queue is full: the second client waits in the backlog. */
  iterate_for (200);
  g_assert_cmpuint (new_connections, ==, 1);

  one = qipc_server_next_pending_connection (QIPC_SERVER (server));
  g_assert_nonnull (one);
  g_assert_false (qipc_server_has_pending_connections (QIPC_SERVER (server)));
  wait_for_count (&new_connections, 2, "the second new-connection");
  two = qipc_server_next_pending_connection (QIPC_SERVER (server));
  g_assert_nonnull (two);

  qipc_socket_abort (one);
  qipc_socket_abort (two);
  g_assert_cmpint (qipc_test_child_wait (first), ==, 0);
  g_assert_cmpint (qipc_test_child_wait (second), ==, 0);
}

/* The lowest descriptor free now: with the limit set to it, the process
 * can open nothing more. */
static int
lowest_free_fd (void)
{
  int fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);

  g_assert_cmpint (fd, >=, 0);
  close (fd);
  return fd;
}

/* A server out of descriptors says so and waits before it tries again,
 * instead of spinning on a listener that stays readable; once
 * descriptors are free again, the clients that waited get in. */
static void
test_server_out_of_descriptors (void)
{
  g_autofree char *path = socket_path ("out-of-fds");
  g_autoptr(QipcLocalServer) server = listen_on (path);
  g_autoptr(QipcTestChild) first = NULL;
  g_autoptr(QipcTestChild) second = NULL;
  g_autoptr(GError) error = NULL;
  struct rlimit saved, none_left;
  guint accept_errors = 0, new_connections = 0;

  /* Both wait in the backlog. */
  qipc_server_pause_accepting (QIPC_SERVER (server));
  first = qipc_test_child_spawn ("local-connect", path, NULL);
  second = qipc_test_child_spawn ("local-connect", path, NULL);
  qipc_test_child_expect (first, "connected");
  qipc_test_child_expect (second, "connected");
  g_signal_connect_swapped (server, "accept-error", G_CALLBACK (count), &accept_errors);
  g_signal_connect_swapped (server, "new-connection", G_CALLBACK (count), &new_connections);

  g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &saved), ==, 0);
  none_left = saved;
  none_left.rlim_cur = lowest_free_fd ();
  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &none_left), ==, 0);
  qipc_server_resume_accepting (QIPC_SERVER (server));

  /* The blocking wait ends with the error rather than polling on. */
  g_assert_false (qipc_server_wait_for_new_connection (QIPC_SERVER (server), 20000, &error));
  g_assert_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_SOCKET_RESOURCE);
  g_assert_cmpuint (accept_errors, ==, 1);

  /* A second of the main loop: a few retries (100, 200, 400 ms apart),
   * where a spinning server would fail thousands of times. */
  iterate_for (1000);
  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &saved), ==, 0);
  g_assert_cmpuint (accept_errors, >=, 2);
  g_assert_cmpuint (accept_errors, <=, 10);
  g_assert_cmpuint (new_connections, ==, 0);

  wait_for_count (&new_connections, 2, "the clients that waited");
  g_clear_object (&server);
  g_assert_cmpint (qipc_test_child_wait (first), ==, 0);
  g_assert_cmpint (qipc_test_child_wait (second), ==, 0);
}

/* A server that crashed left its socket file; a new one takes over. */
static void
test_server_stale_recovery (void)
{
  g_autofree char *path = socket_path ("recover");
  g_autoptr(QipcTestChild) crashed = spawn_server ("local-echo-server", path);
  g_autoptr(QipcLocalServer) server = NULL;
  g_autoptr(QipcTestChild) client = NULL;
  g_autoptr(GError) error = NULL;

  qipc_test_child_kill (crashed);
  g_assert_true (g_file_test (path, G_FILE_TEST_EXISTS));

  server = listen_on (path);
  client = qipc_test_child_spawn ("local-connect", path, NULL);
  g_assert_true (qipc_server_wait_for_new_connection (QIPC_SERVER (server), -1, &error));
  g_assert_no_error (error);
  qipc_test_child_expect (client, "connected");
}

/* A live server is never displaced. */
static void
test_server_live_not_displaced (void)
{
  g_autofree char *path = socket_path ("live");
  G_GNUC_UNUSED g_autoptr(QipcTestChild) child = spawn_server ("local-echo-server", path);
  g_autoptr(QipcLocalServer) server = qipc_local_server_new ();
  g_autoptr(QipcLocalSocket) socket = NULL;
  g_autoptr(GBytes) got = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_false (qipc_local_server_listen (server, path, &error));
  g_assert_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_ADDRESS_IN_USE);
  g_assert_nonnull (strstr (error->message, path));
  g_assert_false (qipc_server_is_listening (QIPC_SERVER (server)));

  socket = connect_to (path);
  qipc_test_socket_write_text (QIPC_SOCKET (socket), "alive");
  got = qipc_test_socket_read_exactly (QIPC_SOCKET (socket), 5);
  assert_bytes (got, "alive");
}

/* A file that is not a socket is never removed. */
static void
test_server_not_a_socket (void)
{
  g_autofree char *path = socket_path ("regular");
  g_autoptr(QipcLocalServer) server = qipc_local_server_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *content = NULL;

  g_assert_true (g_file_set_contents (path, "precious", -1, &error));
  g_assert_false (qipc_local_server_listen (server, path, &error));
  g_assert_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_ADDRESS_IN_USE);
  g_clear_error (&error);
  g_assert_true (g_file_get_contents (path, &content, NULL, &error));
  g_assert_cmpstr (content, ==, "precious");
}

/* close() removes the socket file, only if it is still this server's. */
static void
test_server_close_removes_file (void)
{
  g_autofree char *path = socket_path ("close");
  g_autoptr(QipcLocalServer) first = listen_on (path);
  g_autoptr(QipcLocalServer) second = NULL;
  g_autoptr(QipcLocalServer) third = NULL;

  g_assert_true (g_file_test (path, G_FILE_TEST_EXISTS));
  qipc_server_close (QIPC_SERVER (first));
  g_assert_false (qipc_server_is_listening (QIPC_SERVER (first)));
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));

  /* Listening again on the same name works. */
  g_assert_true (qipc_local_server_listen (first, path, NULL));

  /* Someone removes the file and a second server takes the name: the
   * first one, closing, leaves the second one's file alone. */
  unlink (path);
  second = listen_on (path);
  g_clear_object (&first);
  g_assert_true (g_file_test (path, G_FILE_TEST_EXISTS));

  g_clear_object (&second);
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
  third = listen_on (path);
}

static void
test_server_socket_options (void)
{
  static const struct {
    QipcLocalServerOptions options;
    guint mode;
  } cases[] = {
    { QIPC_LOCAL_SERVER_OPTIONS_USER_ACCESS, 0600 },
    { QIPC_LOCAL_SERVER_OPTIONS_USER_ACCESS | QIPC_LOCAL_SERVER_OPTIONS_GROUP_ACCESS, 0660 },
    { QIPC_LOCAL_SERVER_OPTIONS_OTHER_ACCESS, 0006 },
    { QIPC_LOCAL_SERVER_OPTIONS_WORLD_ACCESS, 0666 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = socket_path ("options");
      g_autoptr(QipcLocalServer) server = qipc_local_server_new ();
      g_autoptr(GError) error = NULL;
      struct stat st;

      qipc_local_server_set_socket_options (server, cases[i].options);
      g_assert_cmpint (qipc_local_server_get_socket_options (server), ==, cases[i].options);
      g_assert_true (qipc_local_server_listen (server, path, &error));
      g_assert_no_error (error);
      g_assert_cmpint (lstat (path, &st), ==, 0);
      g_assert_true (S_ISSOCK (st.st_mode));
      g_assert_cmpuint (st.st_mode & 0777, ==, cases[i].mode);
    }
}

/* ------------------------------------------------------------------ */

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/local-socket/echo/round-trip", test_echo_round_trip);
  g_test_add_func ("/local-socket/echo/many-small-writes", test_echo_many_small_writes);
  g_test_add_func ("/local-socket/echo/large-transfer-small-buffer", test_echo_large_transfer);
  g_test_add_func ("/local-socket/echo/lines", test_echo_lines);
  g_test_add_func ("/local-socket/names/abstract", test_names_abstract);
  g_test_add_func ("/local-socket/names/runtime-dir", test_names_runtime_dir);
  g_test_add_func ("/local-socket/idle-then-write", test_idle_then_write);
  g_test_add_func ("/local-socket/many-sockets", test_many_sockets);
  g_test_add_func ("/local-socket/names/invalid", test_names_invalid);
  g_test_add_func ("/local-socket/connect/server-not-found", test_connect_server_not_found);
  g_test_add_func ("/local-socket/connect/refused-stale", test_connect_refused_stale);
  g_test_add_func ("/local-socket/connect/while-connected", test_connect_while_connected);
  g_test_add_func ("/local-socket/connect/abort-and-reconnect", test_connect_abort_and_reconnect);
  g_test_add_func ("/local-socket/connect/unref-while-connecting", test_connect_unref_while_connecting);
  g_test_add_func ("/local-socket/fds/memfd-from-child", test_fds_memfd_from_child);
  g_test_add_func ("/local-socket/fds/echo-in-order", test_fds_echo_in_order);
  g_test_add_func ("/local-socket/fds/need-data", test_fds_need_data);
  g_test_add_func ("/local-socket/credentials/of-server", test_credentials_of_server);
  g_test_add_func ("/local-socket/credentials/of-client", test_credentials_of_client);
  g_test_add_func ("/local-socket/peer/killed-mid-write", test_peer_killed_mid_write);
  g_test_add_func ("/local-socket/wait/connected", test_wait_connected);
  g_test_add_func ("/local-socket/wait/ready-read", test_wait_ready_read);
  g_test_add_func ("/local-socket/wait/bytes-written", test_wait_bytes_written);
  g_test_add_func ("/local-socket/wait/disconnected", test_wait_disconnected);
  g_test_add_func ("/local-server/pending", test_server_pending);
  g_test_add_func ("/local-server/pause-resume", test_server_pause_resume);
  g_test_add_func ("/local-server/max-pending", test_server_max_pending);
  g_test_add_func ("/local-server/out-of-descriptors", test_server_out_of_descriptors);
  g_test_add_func ("/local-server/stale-recovery", test_server_stale_recovery);
  g_test_add_func ("/local-server/live-not-displaced", test_server_live_not_displaced);
  g_test_add_func ("/local-server/not-a-socket", test_server_not_a_socket);
  g_test_add_func ("/local-server/close-removes-file", test_server_close_removes_file);
  g_test_add_func ("/local-server/socket-options", test_server_socket_options);

  return g_test_run ();
}
