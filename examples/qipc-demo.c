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
 * and is told by ::lock-recovered. Then a client connects to the
 * producer's local server, learns who it talks to from the kernel, and
 * receives a memfd over the socket. Finally the producer hosts a channel
 * broker on its main loop and starts a thermostat (--thermostat) that
 * listens on the channel "demo/thermostat": each setTarget message sent
 * there is answered with a targetChanged message on "demo/events".
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
  printf ("[%-10s %6d] %s\n", role, (int) getpid (), message);
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
/* The thermostat, on a channel                                        */

typedef struct
{
  QipcBus *bus;
  GMainLoop *loop;
  double target;
} Thermostat;

static void
on_set_target (QipcChannel *channel,
               const char  *message,
               GVariant    *data,
               gpointer     user_data)
{
  Thermostat *thermostat = user_data;
  GVariantBuilder reply;
  GError *error = NULL;
  double target;

  if (data == NULL || !g_variant_is_of_type (data, G_VARIANT_TYPE_DOUBLE))
    {
      say ("ignoring a setTarget without a double");
      return;
    }
  target = g_variant_get_double (data);
  say ("received setTarget %.1f on \"%s\"; the target was %.1f",
       target, qipc_channel_get_name (channel), thermostat->target);

  g_variant_builder_init (&reply, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&reply, "{sv}", "target", g_variant_new_double (target));
  g_variant_builder_add (&reply, "{sv}", "previous", g_variant_new_double (thermostat->target));
  g_variant_builder_add (&reply, "{sv}", "heating", g_variant_new_boolean (target > thermostat->target));
  thermostat->target = target;
  /* Said first: once sent, the answer may be printed by the other side. */
  say ("answering with targetChanged on \"demo/events\"");
  check (qipc_channel_send_for_bus (thermostat->bus, "demo/events", "targetChanged",
                                    g_variant_builder_end (&reply), &error), error);
}

static void
on_quit (QipcChannel *channel,
         const char  *message,
         GVariant    *data,
         gpointer     user_data)
{
  Thermostat *thermostat = user_data;

  say ("received quit; leaving");
  g_main_loop_quit (thermostat->loop);
}

static gboolean
on_thermostat_patience (gpointer user_data)
{
  say ("error: nobody told the thermostat to quit within 10 s");
  exit (1);
  return G_SOURCE_REMOVE;
}

static int
run_thermostat (const char *address)
{
  Thermostat thermostat = { .target = 19.0 };
  g_autoptr(QipcChannel) channel = NULL;
  GError *error = NULL;

  role = "thermostat";
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  thermostat.bus = qipc_bus_new_for_address (address, &error);
  check (thermostat.bus != NULL, error);
  say ("listening on \"demo/thermostat\" for setTarget and quit; the target is %.1f",
       thermostat.target);
  channel = qipc_channel_new_for_bus (thermostat.bus, "demo/thermostat", &error);
  check (channel != NULL, error);
  g_signal_connect (channel, "received::setTarget", G_CALLBACK (on_set_target), &thermostat);
  g_signal_connect (channel, "received::quit", G_CALLBACK (on_quit), &thermostat);

  thermostat.loop = g_main_loop_new (NULL, FALSE);
  g_timeout_add_seconds (10, on_thermostat_patience, NULL);
  g_main_loop_run (thermostat.loop);

  g_main_loop_unref (thermostat.loop);
  g_clear_object (&channel);
  qipc_bus_close (thermostat.bus);
  g_object_unref (thermostat.bus);
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

typedef struct
{
  gboolean thermostat_listening;
  gboolean thermostat_gone;
  gboolean answered;
  GVariant *answer;
} ChannelDemo;

static gboolean
on_wait_timeout (gpointer user_data)
{
  gboolean *timed_out = user_data;

  *timed_out = TRUE;
  return G_SOURCE_REMOVE;
}

/* Runs the main context (and so the broker it hosts) until *DONE, for at
 * most 10 s. */
static void
run_until (const gboolean *done,
           const char     *what)
{
  gboolean timed_out = FALSE;
  guint source = g_timeout_add_seconds (10, on_wait_timeout, &timed_out);

  while (!*done && !timed_out)
    g_main_context_iteration (NULL, TRUE);
  if (timed_out)
    {
      say ("error: %s did not happen within 10 s", what);
      exit (1);
    }
  g_source_remove (source);
}

static void
on_channel_added (QipcBroker *broker,
                  const char *name,
                  gpointer    user_data)
{
  ChannelDemo *demo = user_data;

  say ("broker: \"%s\" has its first listener", name);
  if (g_str_equal (name, "demo/thermostat"))
    demo->thermostat_listening = TRUE;
}

static void
on_channel_removed (QipcBroker *broker,
                    const char *name,
                    gpointer    user_data)
{
  ChannelDemo *demo = user_data;

  say ("broker: \"%s\" has no listener any more", name);
  if (g_str_equal (name, "demo/thermostat"))
    demo->thermostat_gone = TRUE;
}

static void
on_target_changed (QipcChannel *channel,
                   const char  *message,
                   GVariant    *data,
                   gpointer     user_data)
{
  ChannelDemo *demo = user_data;

  g_clear_pointer (&demo->answer, g_variant_unref);
  demo->answer = g_variant_ref_sink (data != NULL ? data : g_variant_new ("a{sv}", NULL));
  demo->answered = TRUE;
}

static void
set_target (QipcBus     *bus,
            ChannelDemo *demo,
            double       target)
{
  GError *error = NULL;
  double previous = 0;
  gboolean heating = FALSE;

  demo->answered = FALSE;
  say ("sending setTarget %.1f on \"demo/thermostat\"", target);
  check (qipc_channel_send_for_bus (bus, "demo/thermostat", "setTarget",
                                    g_variant_new_double (target), &error), error);
  run_until (&demo->answered, "the answer to setTarget");
  check (g_variant_lookup (demo->answer, "target", "d", &target) &&
         g_variant_lookup (demo->answer, "previous", "d", &previous) &&
         g_variant_lookup (demo->answer, "heating", "b", &heating), NULL);
  say ("received targetChanged on \"demo/events\": %.1f, was %.1f, %s",
       target, previous, heating ? "heating" : "not heating");
}

static void
show_channels (const char *self)
{
  g_autofree char *address = g_strdup_printf ("unix:abstract=qipc-demo-%d-bus", (int) getpid ());
  g_autoptr(QipcBroker) broker = qipc_broker_new ();
  g_autoptr(QipcBus) bus = NULL;
  g_autoptr(QipcChannel) events = NULL;
  g_autoptr(GSubprocess) thermostat = NULL;
  ChannelDemo demo = { 0 };
  GError *error = NULL;
  gboolean registered;

  /* The broker serves its clients whenever this process runs its main
   * context, as the QWS server of Qt for Embedded Linux hosted QCOP. */
  check (qipc_broker_listen (broker, address, &error), error);
  g_signal_connect (broker, "channel-added", G_CALLBACK (on_channel_added), &demo);
  g_signal_connect (broker, "channel-removed", G_CALLBACK (on_channel_removed), &demo);
  say ("hosting a channel broker at \"%s\" on this process's main loop", address);

  bus = qipc_bus_new_for_address (address, &error);
  check (bus != NULL, error);
  events = qipc_channel_new_for_bus (bus, "demo/events", &error);
  check (events != NULL, error);
  g_signal_connect (events, "received::targetChanged", G_CALLBACK (on_target_changed), &demo);
  /* Once flushed, the broker has the registration. */
  check (qipc_channel_flush_for_bus (bus, &error), error);

  thermostat = spawn_self (self, "--thermostat", address, NULL);
  run_until (&demo.thermostat_listening, "the thermostat's registration");
  registered = qipc_channel_is_registered_for_bus (bus, "demo/thermostat", &error);
  check (registered || error == NULL, error);
  say ("is_registered (\"demo/thermostat\"): %s", registered ? "yes" : "no");

  set_target (bus, &demo, 21.5);
  set_target (bus, &demo, 18.0);

  say ("sending quit on \"demo/thermostat\"");
  check (qipc_channel_send_for_bus (bus, "demo/thermostat", "quit", NULL, &error), error);
  run_until (&demo.thermostat_gone, "the thermostat's departure");
  check (g_subprocess_wait_check (thermostat, NULL, &error), error);
  say ("the thermostat exited cleanly");

  g_clear_pointer (&demo.answer, g_variant_unref);
  g_clear_object (&events);
  qipc_bus_close (bus);
  qipc_broker_close (broker);
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
  show_channels (self);

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
  if (argc == 3 && g_str_equal (argv[1], "--thermostat"))
    return run_thermostat (argv[2]);
  if (argc == 1)
    {
      /* The other processes are this same program. */
      g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);

      return run_producer (self != NULL ? self : argv[0]);
    }

  fprintf (stderr, "usage: %s\n", argv[0]);
  return 64;
}
