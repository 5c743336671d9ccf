/* qipc-demo.c: two processes sharing memory under a crash-safe lock
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The producer creates a segment and a semaphore, starts a consumer (this
 * same program, run with --consumer), and publishes readings: it writes
 * each one under the lock and calls notify_changed(). The consumer reacts
 * to ::changed on its main loop, reads under the lock, and acknowledges
 * through the semaphore. Then a third process takes the lock and is
 * killed with SIGKILL while holding it; the producer still gets the lock
 * and is told by ::lock-recovered. Last, a client connects to the
 * producer's local server, learns who it talks to from the kernel, and
 * receives a memfd over the socket.
 */
#include <qipc.h>

#include <signal.h>
#include <sys/mman.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define BOARD_SIZE 4096

/* What the producer publishes, at the start of the segment. */
typedef struct
{
  gint32 sequence;   /* 0: nothing yet, -1: the producer is done */
  char text[60];
} Reading;

static const char *role = "producer";

static void G_GNUC_PRINTF (1, 2)
say (const char *format,
     ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  printf ("[%-8s %6d] %s\n", role, (int) getpid (), message);
  fflush (stdout);
}

static void
check (gboolean  ok,
       GError   *error)
{
  if (ok)
    return;
  say ("error: %s", error != NULL ? error->message : "unexpected answer from a child process");
  exit (1);
}

/* ------------------------------------------------------------------ */
/* The consumer                                                        */

typedef struct
{
  QipcSharedMemory *board;
  QipcSystemSemaphore *ack;
  GMainLoop *loop;
} Consumer;

static void
on_changed (QipcSharedMemory *board,
            gpointer          user_data)
{
  Consumer *consumer = user_data;
  GError *error = NULL;
  Reading reading;

  check (qipc_shared_memory_lock (board, &error), error);
  memcpy (&reading, qipc_shared_memory_get_data (board), sizeof reading);
  check (qipc_shared_memory_unlock (board, &error), error);

  if (reading.sequence < 0)
    {
      say ("changed: the producer is done, leaving");
      g_main_loop_quit (consumer->loop);
    }
  else
    say ("changed: reading #%d \"%s\"", reading.sequence, reading.text);

  check (qipc_system_semaphore_release (consumer->ack, 1, &error), error);
}

static int
run_consumer (const char *board_key,
              const char *ack_key)
{
  Consumer consumer = { 0 };
  GError *error = NULL;

  role = "consumer";
  consumer.board = qipc_shared_memory_new (board_key);
  check (qipc_shared_memory_attach (consumer.board, QIPC_SHARED_MEMORY_ACCESS_READ_ONLY, &error), error);
  consumer.ack = qipc_system_semaphore_new (ack_key, 0, QIPC_SYSTEM_SEMAPHORE_ACCESS_OPEN, &error);
  check (consumer.ack != NULL, error);
  consumer.loop = g_main_loop_new (NULL, FALSE);

  g_signal_connect (consumer.board, "changed", G_CALLBACK (on_changed), &consumer);
  say ("attached read-only to \"%s\"; waiting for ::changed (no polling)", board_key);
  check (qipc_system_semaphore_release (consumer.ack, 1, &error), error);

  g_main_loop_run (consumer.loop);

  g_main_loop_unref (consumer.loop);
  g_object_unref (consumer.ack);
  g_object_unref (consumer.board);
  return 0;
}

/* ------------------------------------------------------------------ */
/* The lock holder that gets killed                                    */

static int
run_holder (const char *board_key)
{
  QipcSharedMemory *board = qipc_shared_memory_new (board_key);
  GError *error = NULL;

  role = "holder";
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  check (qipc_shared_memory_attach (board, QIPC_SHARED_MEMORY_ACCESS_READ_WRITE, &error), error);
  check (qipc_shared_memory_lock (board, &error), error);
  say ("took the lock, and will never release it");
  printf ("locked\n");
  fflush (stdout);
  for (;;)
    pause ();
  return 0;
}

/* ------------------------------------------------------------------ */
/* The socket client                                                   */

static void
check_socket (QipcSocket *socket,
              gboolean    ok,
              GError     *error)
{
  check (ok || error != NULL, (GError *) qipc_socket_get_error (socket));
  check (ok, error);
}

static int
run_socket_client (const char *name)
{
  g_autoptr(QipcLocalSocket) local = qipc_local_socket_new ();
  QipcSocket *socket = QIPC_SOCKET (local);
  g_autoptr(GCredentials) peer = NULL;
  g_autoptr(GUnixFDList) fds = NULL;
  g_autoptr(GBytes) line = NULL;
  g_autoptr(GBytes) thanks = g_bytes_new_static ("thanks\n", 7);
  g_autofree char *text = NULL;
  GError *error = NULL;
  char buffer[128] = "";
  int fd;

  role = "client";
  qipc_local_socket_connect_to_server (local, name);
  check_socket (socket, qipc_socket_wait_for_connected (socket, 10000, &error), error);
  peer = qipc_local_socket_get_peer_credentials (local, &error);
  check (peer != NULL, error);
  say ("connected to \"%s\"; the kernel says the server is pid %d, uid %d",
       name, (int) g_credentials_get_unix_pid (peer, NULL), (int) g_credentials_get_unix_user (peer, NULL));

  while (!qipc_socket_can_read_line (socket))
    check_socket (socket, qipc_socket_wait_for_ready_read (socket, 10000, &error), error);
  line = qipc_socket_read_line (socket, 0);
  fds = qipc_local_socket_take_fds (local);
  check (fds != NULL && g_unix_fd_list_get_length (fds) == 1, NULL);
  fd = g_unix_fd_list_get (fds, 0, &error);
  check (fd >= 0, error);
  check (pread (fd, buffer, sizeof buffer - 1, 0) >= 0, NULL);
  close (fd);
  text = g_strndup (g_bytes_get_data (line, NULL), g_bytes_get_size (line) - 1);
  say ("got the line \"%s\" and a memfd that holds \"%s\"", text, buffer);

  check_socket (socket, qipc_socket_write (socket, thanks, &error), error);
  check_socket (socket, qipc_socket_wait_for_bytes_written (socket, 10000, &error), error);
  qipc_socket_close (socket);
  return 0;
}

/* ------------------------------------------------------------------ */
/* The producer                                                        */

static GSubprocess *
spawn_self (const char *self,
            const char *first_arg,
            ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  GError *error = NULL;
  GSubprocess *child;
  va_list args;

  g_ptr_array_add (argv, (char *) self);
  va_start (args, first_arg);
  for (const char *arg = first_arg; arg != NULL; arg = va_arg (args, const char *))
    g_ptr_array_add (argv, (char *) arg);
  va_end (args);
  g_ptr_array_add (argv, NULL);

  child = g_subprocess_newv ((const char * const *) argv->pdata, G_SUBPROCESS_FLAGS_NONE, &error);
  check (child != NULL, error);
  return child;
}

static void
publish (QipcSharedMemory *board,
         gint32            sequence,
         const char       *text)
{
  Reading *reading = qipc_shared_memory_get_data (board);
  GError *error = NULL;

  check (qipc_shared_memory_lock (board, &error), error);
  reading->sequence = sequence;
  g_strlcpy (reading->text, text, sizeof reading->text);
  check (qipc_shared_memory_unlock (board, &error), error);
  check (qipc_shared_memory_notify_changed (board, &error), error);
}

static void
wait_for_ack (QipcSystemSemaphore *ack)
{
  GError *error = NULL;

  if (qipc_system_semaphore_try_acquire (ack, 10000, &error))
    return;
  check (error == NULL, error);
  say ("error: no acknowledgement from the consumer within 10 s");
  exit (1);
}

static void
on_lock_recovered (QipcSharedMemory *board,
                   gpointer          user_data)
{
  say ("::lock-recovered: the previous holder died holding the lock; "
       "the data it guarded may need repair");
}

static void
show_recovery (const char       *self,
               QipcSharedMemory *board,
               const char       *board_key)
{
  g_autoptr(GSubprocess) holder = NULL;
  g_autoptr(GDataInputStream) output = NULL;
  g_autofree char *line = NULL;
  GError *error = NULL;
  char *argv[] = { (char *) self, (char *) "--holder", (char *) board_key, NULL };

  holder = g_subprocess_newv ((const char * const *) argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
  check (holder != NULL, error);
  output = g_data_input_stream_new (g_subprocess_get_stdout_pipe (holder));
  /* Pass on what the holder says until it reports the lock taken. */
  while ((line = g_data_input_stream_read_line (output, NULL, NULL, &error)) != NULL &&
         !g_str_equal (line, "locked"))
    {
      printf ("%s\n", line);
      g_clear_pointer (&line, g_free);
    }
  check (line != NULL, error);

  say ("try_lock with 100 ms timeout: %s",
       qipc_shared_memory_try_lock (board, 100, NULL) ? "got it (unexpected)" : "busy, as expected");
  say ("sending SIGKILL to the holder (pid %s)", g_subprocess_get_identifier (holder));
  g_subprocess_send_signal (holder, SIGKILL);
  check (g_subprocess_wait (holder, NULL, &error), error);

  g_signal_connect (board, "lock-recovered", G_CALLBACK (on_lock_recovered), NULL);
  check (qipc_shared_memory_lock (board, &error), error);
  say ("lock() returned: this process holds the lock now, no deadlock");
  check (qipc_shared_memory_unlock (board, &error), error);
}

static void
show_fd_passing (const char *self)
{
  g_autofree char *name = g_strdup_printf ("@qipc-demo-%d", (int) getpid ());
  g_autoptr(QipcLocalServer) server = qipc_local_server_new ();
  g_autoptr(QipcSocket) socket = NULL;
  g_autoptr(GSubprocess) client = NULL;
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  g_autoptr(GBytes) line = g_bytes_new_static ("here is a memfd\n", 16);
  g_autoptr(GBytes) reply = NULL;
  static const char note[] = "a whole buffer, handed over without a copy";
  GError *error = NULL;
  int memfd;

  check (qipc_local_server_listen (server, name, &error), error);
  say ("listening on the local socket \"%s\" (abstract namespace)", name);
  client = spawn_self (self, "--socket-client", name, NULL);
  check (qipc_server_wait_for_new_connection (QIPC_SERVER (server), 10000, &error), error);
  socket = qipc_server_next_pending_connection (QIPC_SERVER (server));

  memfd = memfd_create ("qipc-demo", MFD_CLOEXEC);
  check (memfd >= 0 && write (memfd, note, sizeof note) == sizeof note, NULL);
  check (g_unix_fd_list_append (fds, memfd, &error) >= 0, error);
  close (memfd);
  check (qipc_local_socket_write_with_fds (QIPC_LOCAL_SOCKET (socket), line, fds, &error), error);
  say ("sent a line with a memfd attached");

  while (!qipc_socket_can_read_line (socket))
    check_socket (socket, qipc_socket_wait_for_ready_read (socket, 10000, &error), error);
  reply = qipc_socket_read_line (socket, 0);
  say ("the client answered: %.*s", (int) g_bytes_get_size (reply) - 1,
       (const char *) g_bytes_get_data (reply, NULL));
  check (g_subprocess_wait_check (client, NULL, &error), error);
}

static int
run_producer (const char *self)
{
  static const char *readings[] = {
    "temperature 21.5 C", "temperature 21.7 C", "humidity 40 %",
    "pressure 1013 hPa", "temperature 22.0 C",
  };
  g_autofree char *board_key = g_strdup_printf ("qipc-demo/%d/board", (int) getpid ());
  g_autofree char *ack_key = g_strdup_printf ("qipc-demo/%d/ack", (int) getpid ());
  g_autoptr(QipcSharedMemory) board = qipc_shared_memory_new (board_key);
  g_autoptr(QipcSystemSemaphore) ack = NULL;
  g_autoptr(GSubprocess) consumer = NULL;
  GError *error = NULL;

  check (qipc_shared_memory_create (board, BOARD_SIZE, QIPC_SHARED_MEMORY_ACCESS_READ_WRITE, &error), error);
  say ("created shared memory \"%s\" (%d bytes) at %s", board_key, BOARD_SIZE,
       qipc_shared_memory_get_native_key (board));
  ack = qipc_system_semaphore_new (ack_key, 0, QIPC_SYSTEM_SEMAPHORE_ACCESS_CREATE, &error);
  check (ack != NULL, error);
  say ("created semaphore \"%s\" (System V key %s) for acknowledgements", ack_key,
       qipc_system_semaphore_get_native_key (ack));

  consumer = spawn_self (self, "--consumer", board_key, ack_key, NULL);
  wait_for_ack (ack);

  for (gsize i = 0; i < G_N_ELEMENTS (readings); i++)
    {
      publish (board, i + 1, readings[i]);
      say ("wrote reading #%" G_GSIZE_FORMAT " under the lock and notified", i + 1);
      wait_for_ack (ack);
    }
  publish (board, -1, "");
  wait_for_ack (ack);
  check (g_subprocess_wait_check (consumer, NULL, &error), error);
  say ("the consumer exited cleanly");

  show_recovery (self, board, board_key);
  show_fd_passing (self);

  say ("done; the segment and the semaphore go away with this process");
  return 0;
}

int
main (int    argc,
      char **argv)
{
  if (argc == 4 && g_str_equal (argv[1], "--consumer"))
    return run_consumer (argv[2], argv[3]);
  if (argc == 3 && g_str_equal (argv[1], "--holder"))
    return run_holder (argv[2]);
  if (argc == 3 && g_str_equal (argv[1], "--socket-client"))
    return run_socket_client (argv[2]);
  if (argc == 1)
    {
      /* The consumer and the holder are this same program. */
      g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);

      return run_producer (self != NULL ? self : argv[0]);
    }

  fprintf (stderr, "usage: %s\n", argv[0]);
  return 64;
}
