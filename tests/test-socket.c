/* test-socket.c: the QipcSocket base class over a socketpair
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Linked with the library's objects, so that a minimal subclass can hand
 * a connected stream to the base class, as the real subclasses do.
 */
#include "test-utils.h"
#include "qipc-socket-private.h"

#include <sys/socket.h>

#define TEST_TYPE_PAIR_SOCKET (test_pair_socket_get_type ())
G_DECLARE_FINAL_TYPE (TestPairSocket, test_pair_socket, TEST, PAIR_SOCKET, QipcSocket)

struct _TestPairSocket
{
  QipcSocket parent_instance;
};

G_DEFINE_FINAL_TYPE (TestPairSocket, test_pair_socket, QIPC_TYPE_SOCKET)

static void
test_pair_socket_class_init (TestPairSocketClass *klass)
{
}

static void
test_pair_socket_init (TestPairSocket *self)
{
}

static QipcSocket *
socket_for_fd (int fd)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) gsocket = g_socket_new_from_fd (fd, &error);
  g_autoptr(GSocketConnection) connection = NULL;
  QipcSocket *socket = g_object_new (TEST_TYPE_PAIR_SOCKET, NULL);

  g_assert_no_error (error);
  connection = g_socket_connection_factory_create_connection (gsocket);
  _qipc_socket_attach_stream (socket, G_IO_STREAM (connection), gsocket);
  return socket;
}

static void
make_pair (QipcSocket **a,
           QipcSocket **b)
{
  int fds[2];

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
  *a = socket_for_fd (fds[0]);
  *b = socket_for_fd (fds[1]);
}

static void
test_round_trip (void)
{
  g_autoptr(QipcSocket) a = NULL;
  g_autoptr(QipcSocket) b = NULL;
  g_autoptr(GBytes) got = NULL;
  g_autoptr(GError) error = NULL;

  make_pair (&a, &b);
  g_assert_cmpint (qipc_socket_get_state (a), ==, QIPC_SOCKET_STATE_CONNECTED);

  qipc_test_socket_write_text (a, "hello\nworld");
  g_assert_true (qipc_socket_wait_for_ready_read (b, 5000, &error));
  g_assert_no_error (error);
  while (qipc_socket_bytes_available (b) < 11)
    g_assert_true (qipc_socket_wait_for_ready_read (b, 5000, NULL));

  g_assert_true (qipc_socket_can_read_line (b));
  got = qipc_socket_peek (b, 3);
  g_assert_cmpmem (g_bytes_get_data (got, NULL), g_bytes_get_size (got), "hel", 3);
  g_clear_pointer (&got, g_bytes_unref);
  got = qipc_socket_read_line (b, 0);
  g_assert_cmpmem (g_bytes_get_data (got, NULL), g_bytes_get_size (got), "hello\n", 6);
  g_assert_false (qipc_socket_can_read_line (b));
  g_clear_pointer (&got, g_bytes_unref);
  got = qipc_socket_read_all (b);
  g_assert_cmpmem (g_bytes_get_data (got, NULL), g_bytes_get_size (got), "world", 5);
  g_assert_cmpuint (qipc_socket_bytes_available (b), ==, 0);
}

static void
count_bytes_written (QipcSocket *socket,
                     gint64      bytes,
                     gpointer    user_data)
{
  *(gint64 *) user_data += bytes;
}

/* 64 MiB through a 64 KiB read buffer: the writer is held back by the
 * reader, and every byte arrives in order. */
static void
test_large_transfer_small_buffer (void)
{
  const gsize total = 64 << 20;
  g_autoptr(QipcSocket) a = NULL;
  g_autoptr(QipcSocket) b = NULL;
  g_autofree guint8 *data = g_malloc (total);
  g_autoptr(GBytes) bytes = NULL;
  gsize received = 0;
  gint64 written = 0;

  for (gsize i = 0; i < total; i++)
    data[i] = (guint8) (i * 7 + (i >> 13));
  bytes = g_bytes_new_static (data, total);

  make_pair (&a, &b);
  qipc_socket_set_read_buffer_size (b, 64 * 1024);
  g_signal_connect (a, "bytes-written", G_CALLBACK (count_bytes_written), &written);
  g_assert_true (qipc_socket_write (a, bytes, NULL));
  g_assert_cmpuint (qipc_socket_bytes_to_write (a), >, 0);

  while (received < total)
    {
      g_autoptr(GBytes) chunk = NULL;
      gsize size;
      const guint8 *got;

      g_main_context_iteration (NULL, TRUE);
      g_assert_cmpuint (qipc_socket_bytes_available (b), <=, 64 * 1024);
      chunk = qipc_socket_read (b, 100000);
      got = g_bytes_get_data (chunk, &size);
      if (size > 0)
        g_assert_cmpmem (got, size, data + received, size);
      received += size;
    }

  while (written < (gint64) total)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpuint (qipc_socket_bytes_to_write (a), ==, 0);
}

static void
count (gpointer user_data)
{
  (*(guint *) user_data)++;
}

/* A large read buffer that a burst left is kept by a sweep that saw the
 * peer receive, and freed by the next one if the peer stayed quiet; a
 * small read lets release free it at once. */
static void
test_read_buffer_trim (void)
{
  const gsize burst = 1024 * 1024;
  g_autoptr(QipcSocket) a = NULL;
  g_autoptr(QipcSocket) b = NULL;
  g_autoptr(GBytes) bytes = g_bytes_new_take (g_malloc0 (burst), burst);

  make_pair (&a, &b);
  g_assert_true (qipc_socket_write (a, bytes, NULL));
  g_bytes_unref (qipc_test_socket_read_exactly (b, burst));
  g_assert_cmpuint (_qipc_socket_get_read_allocated (b), >, 16 * 1024);

  g_assert_true (_qipc_socket_trim_read_buffer (b));
  g_assert_cmpuint (_qipc_socket_get_read_allocated (b), >, 16 * 1024);
  g_assert_false (_qipc_socket_trim_read_buffer (b));
  g_assert_cmpuint (_qipc_socket_get_read_allocated (b), ==, 0);
  g_assert_false (_qipc_socket_trim_read_buffer (b));

  /* The socket reads on as before. */
  qipc_test_socket_write_text (a, "after");
  g_bytes_unref (qipc_test_socket_read_exactly (b, 5));

  /* Another burst, then a small read: freed by release itself. */
  g_assert_true (qipc_socket_write (a, bytes, NULL));
  g_bytes_unref (qipc_test_socket_read_exactly (b, burst));
  qipc_test_socket_write_text (a, "x");
  g_bytes_unref (qipc_test_socket_read_exactly (b, 1));
  g_assert_false (_qipc_socket_release_read_buffer (b));
  g_assert_cmpuint (_qipc_socket_get_read_allocated (b), ==, 0);
}

static void
test_peer_close (void)
{
  g_autoptr(QipcSocket) a = NULL;
  g_autoptr(QipcSocket) b = NULL;
  g_autoptr(GBytes) got = NULL;
  g_autoptr(GError) error = NULL;
  guint disconnected = 0;

  make_pair (&a, &b);
  g_signal_connect_swapped (b, "disconnected", G_CALLBACK (count), &disconnected);
  qipc_test_socket_write_text (a, "last words");
  qipc_socket_close (a);
  g_assert_cmpint (qipc_socket_get_state (a), ==, QIPC_SOCKET_STATE_UNCONNECTED);

  g_assert_true (qipc_socket_wait_for_disconnected (b, 5000, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (disconnected, ==, 1);
  g_assert_error (qipc_socket_get_error (b), QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_REMOTE_HOST_CLOSED);

  /* What arrived before the end stays readable. */
  got = qipc_socket_read_all (b);
  g_assert_cmpmem (g_bytes_get_data (got, NULL), g_bytes_get_size (got), "last words", 10);

  g_assert_false (qipc_socket_write (b, got, &error));
  g_assert_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_OPERATION);
}

typedef struct
{
  QipcSocket *socket;
  gsize read;
  gsize read_when_disconnected;
  gboolean disconnected;
} Drain;

static void
drain_ready_read (QipcSocket *socket,
                  Drain      *drain)
{
  g_autoptr(GBytes) bytes = qipc_socket_read_all (socket);

  drain->read += g_bytes_get_size (bytes);
}

static void
drain_disconnected (QipcSocket *socket,
                    Drain      *drain)
{
  drain->disconnected = TRUE;
  drain->read_when_disconnected = drain->read;
}

/* The peer writes a lot and closes: every byte is announced by
 * ready-read before disconnected, even when the data and the end of the
 * stream are read in one go. */
static void
test_data_before_disconnect (void)
{
  const gsize total = 1 << 20;
  g_autoptr(QipcSocket) a = NULL;
  g_autoptr(QipcSocket) b = NULL;
  g_autofree guint8 *data = g_malloc0 (total);
  Drain drain = { 0 };

  make_pair (&a, &b);
  g_signal_connect (b, "ready-read", G_CALLBACK (drain_ready_read), &drain);
  g_signal_connect (b, "disconnected", G_CALLBACK (drain_disconnected), &drain);

  for (gsize offset = 0; offset < total; offset += 64)
    g_assert_true (qipc_socket_write_data (a, data + offset, 64, NULL));
  qipc_socket_close (a);
  while (!drain.disconnected)
    g_main_context_iteration (NULL, TRUE);

  g_assert_cmpuint (drain.read_when_disconnected, ==, total);
  g_assert_cmpint (qipc_socket_get_state (a), ==, QIPC_SOCKET_STATE_UNCONNECTED);
}

/* The allocation-free calls see the same stream as the GBytes ones. */
static void
test_data_calls (void)
{
  g_autoptr(QipcSocket) a = NULL;
  g_autoptr(QipcSocket) b = NULL;
  guint8 buffer[16];

  make_pair (&a, &b);
  g_assert_true (qipc_socket_write_data (a, (const guint8 *) "0123456789", 10, NULL));
  g_assert_cmpuint (qipc_socket_bytes_to_write (a), ==, 10);
  g_assert_true (qipc_socket_flush (a));
  while (qipc_socket_bytes_available (b) < 10)
    g_assert_true (qipc_socket_wait_for_ready_read (b, 5000, NULL));

  g_assert_cmpuint (qipc_socket_peek_data (b, buffer, 4), ==, 4);
  g_assert_cmpmem (buffer, 4, "0123", 4);
  g_assert_cmpuint (qipc_socket_read_data (b, buffer, 3), ==, 3);
  g_assert_cmpmem (buffer, 3, "012", 3);
  g_assert_cmpuint (qipc_socket_read_data (b, buffer, sizeof buffer), ==, 7);
  g_assert_cmpmem (buffer, 7, "3456789", 7);
  g_assert_cmpuint (qipc_socket_read_data (b, buffer, sizeof buffer), ==, 0);
}

static void
test_waits (void)
{
  g_autoptr(QipcSocket) a = NULL;
  g_autoptr(QipcSocket) b = NULL;
  g_autoptr(GError) error = NULL;

  make_pair (&a, &b);
  g_assert_true (qipc_socket_wait_for_connected (a, 0, &error));
  g_assert_false (qipc_socket_wait_for_ready_read (b, 20, &error));
  g_assert_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_SOCKET_TIMEOUT);
  g_clear_error (&error);
  g_assert_false (qipc_socket_wait_for_bytes_written (a, 20, &error));
  g_assert_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_OPERATION);
  g_clear_error (&error);
  g_assert_false (qipc_socket_wait_for_disconnected (b, 20, &error));
  g_assert_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_SOCKET_TIMEOUT);
  g_clear_error (&error);

  qipc_test_socket_write_text (a, "x");
  g_assert_true (qipc_socket_wait_for_bytes_written (a, 5000, &error));
  g_assert_no_error (error);

  qipc_socket_abort (a);
  g_assert_true (qipc_socket_wait_for_disconnected (b, -1, &error));
  g_assert_false (qipc_socket_wait_for_ready_read (b, -1, &error));
  g_assert_error (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_OPERATION);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/socket/round-trip", test_round_trip);
  g_test_add_func ("/socket/large-transfer-small-buffer", test_large_transfer_small_buffer);
  g_test_add_func ("/socket/peer-close", test_peer_close);
  g_test_add_func ("/socket/read-buffer-trim", test_read_buffer_trim);
  g_test_add_func ("/socket/waits", test_waits);
  g_test_add_func ("/socket/data-before-disconnect", test_data_before_disconnect);
  g_test_add_func ("/socket/data-calls", test_data_calls);

  return g_test_run ();
}
