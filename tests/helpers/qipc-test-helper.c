/* qipc-test-helper.c: the other process in multi-process tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Each command prints one line when it has reached the state the test
 * waits for, then either exits or waits to be killed. Failures print the
 * error and exit with status 1.
 */
#include <qipc.h>
#include <gio/gunixinputstream.h>

#include "../test-counter.h"

#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

static void
say (const char *line)
{
  printf ("%s\n", line);
  fflush (stdout);
}

static int
fail (GError *error)
{
  say (error->message);
  g_error_free (error);
  return 1;
}

static int
wait_to_be_killed (void)
{
  for (;;)
    pause ();
  return 0;
}

static QipcSystemSemaphore *
open_semaphore (const char *key)
{
  GError *error = NULL;
  QipcSystemSemaphore *sem = qipc_system_semaphore_new (key, 0, QIPC_SYSTEM_SEMAPHORE_ACCESS_OPEN, &error);

  if (sem == NULL)
    exit (fail (error));
  return sem;
}

static QipcSharedMemory *
attach_segment (const char             *key,
                QipcSharedMemoryAccess  access)
{
  GError *error = NULL;
  QipcSharedMemory *shm = qipc_shared_memory_new (key);

  if (!qipc_shared_memory_attach (shm, access, &error))
    exit (fail (error));
  return shm;
}

/* sem-hold KEY N: acquire N units, say "held", wait to be killed. */
static int
sem_hold (char **argv)
{
  QipcSystemSemaphore *sem = open_semaphore (argv[0]);
  GError *error = NULL;

  for (int i = atoi (argv[1]); i > 0; i--)
    if (!qipc_system_semaphore_acquire (sem, &error))
      return fail (error);
  say ("held");
  return wait_to_be_killed ();
}

/* sem-release KEY N: release N units, say "released", exit. */
static int
sem_release (char **argv)
{
  g_autoptr(QipcSystemSemaphore) sem = open_semaphore (argv[0]);
  GError *error = NULL;

  if (!qipc_system_semaphore_release (sem, atoi (argv[1]), &error))
    return fail (error);
  say ("released");
  return 0;
}

/* sem-acquire-release KEY A R: acquire A units, release R, exit. */
static int
sem_acquire_release (char **argv)
{
  g_autoptr(QipcSystemSemaphore) sem = open_semaphore (argv[0]);
  GError *error = NULL;

  for (int i = atoi (argv[1]); i > 0; i--)
    if (!qipc_system_semaphore_acquire (sem, &error))
      return fail (error);
  if (!qipc_system_semaphore_release (sem, atoi (argv[2]), &error))
    return fail (error);
  say ("done");
  return 0;
}

/* sem-create KEY VALUE: create the semaphore, say "created", wait. */
static int
sem_create (char **argv)
{
  GError *error = NULL;
  QipcSystemSemaphore *sem = qipc_system_semaphore_new (argv[0], atoi (argv[1]),
                                                        QIPC_SYSTEM_SEMAPHORE_ACCESS_CREATE, &error);
  if (sem == NULL)
    return fail (error);
  say ("created");
  return wait_to_be_killed ();
}

/* sem-pingpong KEY_PING KEY_PONG ROUNDS: answer each ping with a pong. */
static int
sem_pingpong (char **argv)
{
  g_autoptr(QipcSystemSemaphore) ping = open_semaphore (argv[0]);
  g_autoptr(QipcSystemSemaphore) pong = open_semaphore (argv[1]);
  GError *error = NULL;

  say ("ready");
  for (int i = atoi (argv[2]); i > 0; i--)
    if (!qipc_system_semaphore_acquire (ping, &error) ||
        !qipc_system_semaphore_release (pong, 1, &error))
      return fail (error);
  say ("done");
  return 0;
}

/* shm-create KEY SIZE TEXT: create, write TEXT, say "ready", wait. */
static int
shm_create (char **argv)
{
  QipcSharedMemory *shm = qipc_shared_memory_new (argv[0]);
  g_autoptr(GBytes) text = g_bytes_new (argv[2], strlen (argv[2]));
  GError *error = NULL;

  if (!qipc_shared_memory_create (shm, atoi (argv[1]), QIPC_SHARED_MEMORY_ACCESS_READ_WRITE, &error) ||
      !qipc_shared_memory_write (shm, 0, text, &error))
    return fail (error);
  say ("ready");
  return wait_to_be_killed ();
}

/* shm-read KEY LENGTH: attach read-only and print LENGTH bytes as text. */
static int
shm_read (char **argv)
{
  g_autoptr(QipcSharedMemory) shm = attach_segment (argv[0], QIPC_SHARED_MEMORY_ACCESS_READ_ONLY);
  g_autoptr(GBytes) bytes = NULL;
  g_autofree char *text = NULL;
  GError *error = NULL;
  gsize length;
  const char *data;

  bytes = qipc_shared_memory_read (shm, 0, atoi (argv[1]), &error);
  if (bytes == NULL)
    return fail (error);
  data = g_bytes_get_data (bytes, &length);
  text = g_strndup (data, length);
  say (text);
  return 0;
}

/* shm-lock KEY: attach, lock, say "locked", wait to be killed. */
static int
shm_lock (char **argv)
{
  QipcSharedMemory *shm = attach_segment (argv[0], QIPC_SHARED_MEMORY_ACCESS_READ_WRITE);
  GError *error = NULL;

  if (!qipc_shared_memory_lock (shm, &error))
    return fail (error);
  say ("locked");
  return wait_to_be_killed ();
}

/* shm-lock-until-eof KEY: attach, lock, say "locked", unlock when stdin
 * closes or a line arrives, say "unlocked", wait to be killed. */
static int
shm_lock_until_input (char **argv)
{
  QipcSharedMemory *shm = attach_segment (argv[0], QIPC_SHARED_MEMORY_ACCESS_READ_WRITE);
  GError *error = NULL;
  char line[16];

  if (!qipc_shared_memory_lock (shm, &error))
    return fail (error);
  say ("locked");
  if (fgets (line, sizeof line, stdin) == NULL && ferror (stdin))
    return 1;
  if (!qipc_shared_memory_unlock (shm, &error))
    return fail (error);
  say ("unlocked");
  return wait_to_be_killed ();
}

static void
on_changed (QipcSharedMemory *shm,
            gpointer          user_data)
{
  int *left = user_data;

  say ("changed");
  if (--*left == 0)
    exit (0);
}

static gboolean
give_up (gpointer user_data)
{
  say ("timed out");
  exit (2);
  return G_SOURCE_REMOVE;
}

/* shm-wait-changed KEY N: attach, say "attached", say "changed" on each
 * ::changed and exit after N of them (status 2 after 20 s without). */
static int
shm_wait_changed (char **argv)
{
  QipcSharedMemory *shm = attach_segment (argv[0], QIPC_SHARED_MEMORY_ACCESS_READ_ONLY);
  GMainLoop *loop = g_main_loop_new (NULL, FALSE);
  int left = atoi (argv[1]);

  g_signal_connect (shm, "changed", G_CALLBACK (on_changed), &left);
  g_timeout_add_seconds (20, give_up, NULL);
  say ("attached");
  g_main_loop_run (loop);
  return 1;
}

/* shm-attach KEY: attach read-write, say "attached", wait to be killed. */
static int
shm_attach (char **argv)
{
  attach_segment (argv[0], QIPC_SHARED_MEMORY_ACCESS_READ_WRITE);
  say ("attached");
  return wait_to_be_killed ();
}

/* shm-attach-until-input KEY: attach read-write, say "attached", detach
 * when stdin closes or a line arrives, say "detached" and exit. */
static int
shm_attach_until_input (char **argv)
{
  QipcSharedMemory *shm = attach_segment (argv[0], QIPC_SHARED_MEMORY_ACCESS_READ_WRITE);
  char line[16];

  say ("attached");
  if (fgets (line, sizeof line, stdin) == NULL && ferror (stdin))
    return 1;
  qipc_shared_memory_detach (shm);
  g_object_unref (shm);
  say ("detached");
  return 0;
}

/* shm-churn KEY N: N times, create the segment or attach to it, write
 * our pid and bump a counter under the lock, detach; say "ok" or the
 * first unexpected error. Several of these at once exercise the
 * create/attach/detach protocol under contention. */
static int
shm_churn (char **argv)
{
  int rounds = atoi (argv[1]);
  guint32 me = (guint32) getpid ();

  for (int i = 0; i < rounds; i++)
    {
      g_autoptr(QipcSharedMemory) shm = qipc_shared_memory_new (argv[0]);
      g_autoptr(GError) error = NULL;
      volatile guint32 *data;

      if (!qipc_shared_memory_create (shm, 4096, QIPC_SHARED_MEMORY_ACCESS_READ_WRITE, &error))
        {
          if (!g_error_matches (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_ALREADY_EXISTS))
            return fail (g_steal_pointer (&error));
          g_clear_error (&error);
          if (!qipc_shared_memory_attach (shm, QIPC_SHARED_MEMORY_ACCESS_READ_WRITE, &error))
            {
              /* The last user left between our create and attach. */
              if (g_error_matches (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_NOT_FOUND))
                continue;
              return fail (g_steal_pointer (&error));
            }
        }

      if (qipc_shared_memory_get_size (shm) != 4096)
        {
          say ("wrong size");
          return 1;
        }
      if (!qipc_shared_memory_lock (shm, &error))
        return fail (g_steal_pointer (&error));
      data = qipc_shared_memory_get_data (shm);
      data[0] = me;
      data[1]++;
      if (data[0] != me)
        {
          say ("lost the lock");
          return 1;
        }
      if (!qipc_shared_memory_unlock (shm, &error))
        return fail (g_steal_pointer (&error));
    }
  say ("ok");
  return 0;
}

static const char *
error_code_name (const GError *error)
{
  GType type = error->domain == QIPC_SHARED_MEMORY_ERROR ? QIPC_TYPE_SHARED_MEMORY_ERROR
             : error->domain == QIPC_SYSTEM_SEMAPHORE_ERROR ? QIPC_TYPE_SYSTEM_SEMAPHORE_ERROR
             : error->domain == QIPC_SOCKET_ERROR ? QIPC_TYPE_SOCKET_ERROR
             : error->domain == QIPC_BUS_ERROR ? QIPC_TYPE_BUS_ERROR
             : G_TYPE_INVALID;
  g_autoptr(GEnumClass) klass = NULL;
  GEnumValue *value;

  if (type == G_TYPE_INVALID)
    return "other-domain";
  klass = g_type_class_ref (type);
  value = g_enum_get_value (klass, error->code);
  return value != NULL ? value->value_nick : "unknown-code";
}

/* as-nobody sem|shm KEY: become the user nobody, open the semaphore or
 * attach read-write to the segment, and print the error code's nick, or
 * "ok". Needs root. */
static int
as_nobody (char **argv)
{
  GError *error = NULL;

  if (setgroups (0, NULL) < 0 || setgid (65534) < 0 || setuid (65534) < 0)
    {
      say (g_strerror (errno));
      return 1;
    }

  if (g_str_equal (argv[0], "sem"))
    {
      g_autoptr(QipcSystemSemaphore) sem =
        qipc_system_semaphore_new (argv[1], 0, QIPC_SYSTEM_SEMAPHORE_ACCESS_OPEN, &error);

      if (sem != NULL)
        qipc_system_semaphore_try_acquire (sem, 0, &error);
    }
  else
    {
      g_autoptr(QipcSharedMemory) shm = qipc_shared_memory_new (argv[1]);

      qipc_shared_memory_attach (shm, QIPC_SHARED_MEMORY_ACCESS_READ_WRITE, &error);
    }

  say (error != NULL ? error_code_name (error) : "ok");
  g_clear_error (&error);
  return 0;
}

static QipcLocalServer *
listen_locally (const char *name)
{
  QipcLocalServer *server = qipc_local_server_new ();
  GError *error = NULL;

  if (!qipc_local_server_listen (server, name, &error))
    exit (fail (error));
  return server;
}

/* Connects, or prints the error code's nick and exits with status 1. */
static QipcLocalSocket *
connect_locally (const char *name)
{
  QipcLocalSocket *socket = qipc_local_socket_new ();
  GError *error = NULL;

  qipc_local_socket_connect_to_server (socket, name);
  if (!qipc_socket_wait_for_connected (QIPC_SOCKET (socket), 20000, &error))
    {
      say (error_code_name (error));
      g_error_free (error);
      exit (1);
    }
  return socket;
}

static void
echo_ready_read (QipcSocket *socket,
                 gpointer    user_data)
{
  g_autoptr(GBytes) bytes = qipc_socket_read_all (socket);
  g_autoptr(GUnixFDList) fds = qipc_local_socket_take_fds (QIPC_LOCAL_SOCKET (socket));
  GError *error = NULL;

  if (g_bytes_get_size (bytes) > 0 &&
      !qipc_local_socket_write_with_fds (QIPC_LOCAL_SOCKET (socket), bytes, fds, &error))
    exit (fail (error));
}

static void
echo_new_connection (QipcServer *server,
                     gpointer    user_data)
{
  QipcSocket *socket;

  while ((socket = qipc_server_next_pending_connection (server)) != NULL)
    {
      g_signal_connect (socket, "ready-read", G_CALLBACK (echo_ready_read), NULL);
      /* The socket lives as long as its connection. */
      g_signal_connect (socket, "disconnected", G_CALLBACK (g_object_unref), NULL);
    }
}

/* local-echo-server NAME: listen, say "listening", send every byte (and
 * file descriptor) back to the client it came from, until killed. */
static int
local_echo_server (char **argv)
{
  QipcLocalServer *server = listen_locally (argv[0]);

  g_signal_connect (server, "new-connection", G_CALLBACK (echo_new_connection), NULL);
  say ("listening");
  g_main_loop_run (g_main_loop_new (NULL, FALSE));
  return 1;
}

static void
sink_new_connection (QipcServer *server,
                     gpointer    user_data)
{
  QipcSocket *socket;

  /* Held, and read no further than one byte: the peer's writes fill the
   * kernel's buffers and then wait. */
  while ((socket = qipc_server_next_pending_connection (server)) != NULL)
    qipc_socket_set_read_buffer_size (socket, 1);
}

/* local-sink-server NAME: listen, say "listening", accept connections
 * but never read them, until killed. */
static int
local_sink_server (char **argv)
{
  QipcLocalServer *server = listen_locally (argv[0]);

  g_signal_connect (server, "new-connection", G_CALLBACK (sink_new_connection), NULL);
  say ("listening");
  g_main_loop_run (g_main_loop_new (NULL, FALSE));
  return 1;
}

/* local-connect NAME: connect, say "connected" (or the error code's
 * nick), exit when the server ends the connection. */
static int
local_connect (char **argv)
{
  g_autoptr(QipcLocalSocket) socket = connect_locally (argv[0]);

  say ("connected");
  qipc_socket_wait_for_disconnected (QIPC_SOCKET (socket), -1, NULL);
  return 0;
}

/* local-send-memfd NAME TEXT: connect, send the byte "m" with a memfd
 * holding TEXT, say "sent", exit when the server ends the connection. */
static int
local_send_memfd (char **argv)
{
  g_autoptr(QipcLocalSocket) socket = connect_locally (argv[0]);
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  g_autoptr(GBytes) byte = g_bytes_new_static ("m", 1);
  GError *error = NULL;
  int fd = memfd_create ("qipc-test", MFD_CLOEXEC);

  if (fd < 0 || write (fd, argv[1], strlen (argv[1])) != (gssize) strlen (argv[1]))
    {
      say (g_strerror (errno));
      return 1;
    }
  if (g_unix_fd_list_append (fds, fd, &error) < 0 ||
      !qipc_local_socket_write_with_fds (socket, byte, fds, &error) ||
      !qipc_socket_wait_for_bytes_written (QIPC_SOCKET (socket), 20000, &error))
    return fail (error);
  close (fd);
  say ("sent");
  qipc_socket_wait_for_disconnected (QIPC_SOCKET (socket), -1, NULL);
  return 0;
}

static void
tcp_echo_ready_read (QipcSocket *socket,
                     gpointer    user_data)
{
  g_autoptr(GBytes) bytes = qipc_socket_read_all (socket);
  g_autoptr(GError) error = NULL;

  if (!qipc_socket_write (socket, bytes, &error))
    say (error->message);
}

/* One line per connection that fails, so that a test can see how the
 * server side of a refused TLS handshake ended. */
static void
tcp_echo_error_occurred (QipcSocket   *socket,
                         const GError *error,
                         gpointer      user_data)
{
  g_autofree char *line = g_strdup_printf ("error %s", error_code_name (error));

  say (line);
}

static void
tcp_echo_new_connection (QipcServer *server,
                         gpointer    user_data)
{
  GPtrArray *clients = user_data;
  QipcSocket *socket;

  while ((socket = qipc_server_next_pending_connection (server)) != NULL)
    {
      g_signal_connect (socket, "ready-read", G_CALLBACK (tcp_echo_ready_read), NULL);
      g_signal_connect (socket, "error-occurred", G_CALLBACK (tcp_echo_error_occurred), NULL);
      g_ptr_array_add (clients, socket);
    }
}

/* Echoes every connection on 127.0.0.1 until killed. */
static int
run_tcp_echo_server (GTlsCertificate *certificate)
{
  g_autoptr(QipcTcpServer) server = qipc_tcp_server_new ();
  g_autoptr(GPtrArray) clients = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autofree char *line = NULL;
  GError *error = NULL;

  qipc_tcp_server_set_tls_certificate (server, certificate);
  g_signal_connect (server, "new-connection", G_CALLBACK (tcp_echo_new_connection), clients);
  if (!qipc_tcp_server_listen (server, "127.0.0.1", 0, &error))
    return fail (error);

  line = g_strdup_printf ("port %u", qipc_tcp_server_get_server_port (server));
  say (line);
  g_main_loop_run (loop);
  return 0;
}

/* tcp-echo-server: listen on 127.0.0.1, port 0, say "port N", echo
 * everything every client sends, until killed. */
static int
tcp_echo_server (char **argv)
{
  return run_tcp_echo_server (NULL);
}

/* tcp-tls-echo-server CERT KEY: as tcp-echo-server, with TLS presenting
 * the PEM certificate CERT with the private key KEY; says "error NICK"
 * for each connection that fails, the handshake included. */
static int
tcp_tls_echo_server (char **argv)
{
  g_autoptr(GTlsCertificate) certificate = NULL;
  GError *error = NULL;

  certificate = g_tls_certificate_new_from_files (argv[0], argv[1], &error);
  if (certificate == NULL)
    return fail (error);
  return run_tcp_echo_server (certificate);
}

/* ------------------------------------------------------------------ */
/* Channels                                                            */

static QipcBus *
bus_connect (const char *address)
{
  GError *error = NULL;
  QipcBus *bus = qipc_bus_new_for_address (address, &error);

  if (bus == NULL)
    exit (fail (error));
  return bus;
}

static QipcChannel *
channel_listen (QipcBus    *bus,
                const char *name)
{
  GError *error = NULL;
  QipcChannel *channel = qipc_channel_new_for_bus (bus, name, &error);

  if (channel == NULL)
    exit (fail (error));
  /* Registered once the broker has handled everything sent so far. */
  if (!qipc_channel_flush_for_bus (bus, &error))
    exit (fail (error));
  return channel;
}

/* broker ADDRESS: host a broker, say "listening", run until killed. */
static int
broker (char **argv)
{
  g_autoptr(QipcBroker) broker = qipc_broker_new ();
  GError *error = NULL;

  if (!qipc_broker_listen (broker, argv[0], &error))
    return fail (error);
  say ("listening");
  g_main_loop_run (g_main_loop_new (NULL, FALSE));
  return 1;
}

static void
print_received (QipcChannel *channel,
                const char  *message,
                GVariant    *data,
                gpointer     user_data)
{
  g_autofree char *text = data != NULL ? g_variant_print (data, TRUE) : g_strdup ("none");
  g_autofree char *line = g_strdup_printf ("%s %s %s", qipc_channel_get_name (channel),
                                           message, text);

  say (line);
}

static void
say_event (QipcBus  *bus,
           gpointer  user_data)
{
  say (user_data);
}

static void
say_flushed (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  GError *error = NULL;

  if (!qipc_channel_flush_finish (result, &error))
    exit (fail (error));
  say (user_data);
}

/* Says "connected" once the broker has our channels again. */
static void
say_reconnected (QipcBus  *bus,
                 gpointer  user_data)
{
  qipc_channel_flush_async (bus, NULL, say_flushed, (gpointer) "connected");
}

/* channel-listen ADDRESS NAME: listen on NAME (a pattern too), say
 * "ready", then print "NAME MESSAGE DATA" for each message, and
 * "disconnected"/"connected" as the broker goes and comes back (once
 * the channel is registered again), until killed. */
static int
channel_listen_cmd (char **argv)
{
  g_autoptr(QipcBus) bus = bus_connect (argv[0]);
  g_autoptr(QipcChannel) channel = channel_listen (bus, argv[1]);

  g_signal_connect (channel, "received", G_CALLBACK (print_received), NULL);
  g_signal_connect (bus, "disconnected", G_CALLBACK (say_event), "disconnected");
  g_signal_connect (bus, "connected", G_CALLBACK (say_reconnected), NULL);
  say ("ready");
  g_main_loop_run (g_main_loop_new (NULL, FALSE));
  return 1;
}

typedef struct
{
  guint32 expected;
  guint32 count;
  guint64 lost;
  gboolean done;
  gboolean disorder;
} Counter;

static void
count_received (QipcChannel *channel,
                const char  *message,
                GVariant    *data,
                gpointer     user_data)
{
  Counter *counter = user_data;
  guint32 value;

  if (g_str_equal (message, "end"))
    {
      counter->done = TRUE;
      return;
    }
  value = g_variant_get_uint32 (data);
  /* With losses, values may skip ahead, never go back. */
  if (value < counter->expected || (counter->lost == 0 && value != counter->expected))
    counter->disorder = TRUE;
  counter->expected = value + 1;
  counter->count++;
}

static void
count_lost (QipcBus  *bus,
            guint64   lost,
            gpointer  user_data)
{
  Counter *counter = user_data;

  counter->lost += lost;
}

/* channel-count ADDRESS NAME N fast|slow: listen on NAME, say "ready";
 * with "slow", wait for a line on stdin before reading anything (the
 * broker's queue for us overflows meanwhile). Count the "n" messages
 * (data: a uint32 counting up) and the lost ones until they make N or
 * an "end" comes, then say "received R lost L" and "ordered" or
 * "disorder". */
static int
channel_count (char **argv)
{
  g_autoptr(QipcBus) bus = bus_connect (argv[0]);
  g_autoptr(QipcChannel) channel = channel_listen (bus, argv[1]);
  Counter counter = { 0, };
  guint64 n = g_ascii_strtoull (argv[2], NULL, 10);
  g_autofree char *line = NULL;
  char buffer[64];

  g_signal_connect (channel, "received", G_CALLBACK (count_received), &counter);
  g_signal_connect (bus, "messages-lost", G_CALLBACK (count_lost), &counter);
  say ("ready");
  if (g_str_equal (argv[3], "slow") && fgets (buffer, sizeof buffer, stdin) == NULL)
    return 1;
  while (!counter.done && counter.count + counter.lost < n)
    g_main_context_iteration (NULL, TRUE);
  line = g_strdup_printf ("received %u lost %" G_GUINT64_FORMAT, counter.count, counter.lost);
  say (line);
  say (counter.disorder ? "disorder" : "ordered");
  return 0;
}

/* channel-send ADDRESS NAME N: send N "n" messages (data: 0…N-1 as
 * uint32) and an "end", flush, say "sent". */
static int
channel_send (char **argv)
{
  g_autoptr(QipcBus) bus = bus_connect (argv[0]);
  guint64 n = g_ascii_strtoull (argv[2], NULL, 10);
  GError *error = NULL;

  for (guint64 i = 0; i < n; i++)
    {
      if (!qipc_channel_send_for_bus (bus, argv[1], "n", g_variant_new_uint32 (i), &error))
        return fail (error);
      /* Let the main loop write out now and then, as a real sender's
       * does, instead of queueing everything first. */
      if (i % 256 == 255)
        while (g_main_context_iteration (NULL, FALSE))
          ;
    }
  if (!qipc_channel_send_for_bus (bus, argv[1], "end", NULL, &error) ||
      !qipc_channel_flush_for_bus (bus, &error))
    return fail (error);
  say ("sent");
  return 0;
}

/* channel-as-nobody ADDRESS LISTEN SEND: become the user nobody,
 * connect, listen on LISTEN, send "hello" on SEND and flush; say "ok"
 * or the error code's nick; then print each message received from then
 * on as channel-listen does, until killed. Needs root. */
static int
channel_as_nobody (char **argv)
{
  g_autoptr(QipcBus) bus = NULL;
  g_autoptr(QipcChannel) channel = NULL;
  GError *error = NULL;

  if (setgroups (0, NULL) < 0 || setgid (65534) < 0 || setuid (65534) < 0)
    {
      say (g_strerror (errno));
      return 1;
    }
  /* Changing credentials clears the parent-death signal. */
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  if (getppid () == 1)
    return 70;
  bus = bus_connect (argv[0]);
  channel = qipc_channel_new_for_bus (bus, argv[1], &error);
  if (error == NULL)
    qipc_channel_send_for_bus (bus, argv[2], "hello", NULL, &error);
  if (error == NULL)
    qipc_channel_flush_for_bus (bus, &error);
  say (error != NULL ? error_code_name (error) : "ok");
  g_clear_error (&error);
  /* Only what arrives from now on is printed. */
  if (channel != NULL)
    g_signal_connect (channel, "received", G_CALLBACK (print_received), NULL);
  g_main_loop_run (g_main_loop_new (NULL, FALSE));
  return 1;
}

/* channel-default NAME: on the default bus (started on demand when no
 * broker runs), listen on NAME, say "ready", then wait to be killed. */
static int
channel_default (char **argv)
{
  GError *error = NULL;
  g_autoptr(QipcChannel) channel = qipc_channel_new (argv[0], &error);

  if (channel == NULL || !qipc_channel_flush (&error))
    return fail (error);
  say ("ready");
  g_main_loop_run (g_main_loop_new (NULL, FALSE));
  return 1;
}


/* ------------------------------------------------------------------ */
/* Exported objects                                                    */

typedef struct
{
  QipcBus *bus;
  GDBusConnection *connection;
  QipcTestCounter *counter;
  guint export_id;
  int count_left;
  int wait_value;
  gboolean waiting;
} Exporter;

static void
say_value_if_waited (Exporter *exporter)
{
  g_autofree char *line = NULL;

  if (!exporter->waiting || qipc_test_counter_get_value (exporter->counter) != exporter->wait_value)
    return;
  exporter->waiting = FALSE;
  line = g_strdup_printf ("value %d", exporter->wait_value);
  say (line);
}

static void
on_counter_notify (GObject    *counter,
                   GParamSpec *pspec,
                   Exporter   *exporter)
{
  say_value_if_waited (exporter);
}

static gboolean
count_step (gpointer data)
{
  Exporter *exporter = data;
  int value;

  g_signal_emit_by_name (exporter->counter, "increment", 1, &value);
  if (--exporter->count_left > 0)
    return G_SOURCE_CONTINUE;
  say ("counted");
  return G_SOURCE_REMOVE;
}

/* Commands on stdin, one a line: "set N", "label TEXT", "count N"
 * (increment N times, one each millisecond, then say "counted"),
 * "wait-value N" (say "value N" once the value is N), "unexport"
 * (then say "unexported"). Others say "ok" when done. */
static gboolean
on_exporter_input (GIOChannel   *input,
                   GIOCondition  condition,
                   gpointer      data)
{
  Exporter *exporter = data;
  g_autofree char *line = NULL;
  gsize end;

  if (g_io_channel_read_line (input, &line, NULL, &end, NULL) != G_IO_STATUS_NORMAL)
    exit (0);
  line[end] = '\0';
  if (g_str_has_prefix (line, "set "))
    qipc_test_counter_set_value (exporter->counter, atoi (line + 4));
  else if (g_str_has_prefix (line, "label "))
    g_object_set (exporter->counter, "label", line + 6, NULL);
  else if (g_str_has_prefix (line, "count "))
    {
      exporter->count_left = atoi (line + 6);
      g_timeout_add (1, count_step, exporter);
      return G_SOURCE_CONTINUE;
    }
  else if (g_str_has_prefix (line, "wait-value "))
    {
      exporter->wait_value = atoi (line + 11);
      exporter->waiting = TRUE;
      say_value_if_waited (exporter);
      return G_SOURCE_CONTINUE;
    }
  else if (g_str_equal (line, "unexport"))
    {
      if (exporter->connection != NULL)
        g_dbus_connection_unregister_object (exporter->connection, exporter->export_id);
      else
        {
          qipc_bus_unexport_object (exporter->bus, exporter->export_id);
          qipc_channel_flush_for_bus (exporter->bus, NULL);
        }
      say ("unexported");
      return G_SOURCE_CONTINUE;
    }
  say ("ok");
  return G_SOURCE_CONTINUE;
}

/* counter-export ADDRESS PATH VALUE: export a QipcTestCounter whose
 * value is VALUE at PATH, say "exported", then obey the commands on
 * stdin (see on_exporter_input) until killed. */
static int
counter_export (char **argv)
{
  Exporter exporter = { 0, };
  GError *error = NULL;
  GIOChannel *input = g_io_channel_unix_new (0);

  exporter.bus = bus_connect (argv[0]);
  exporter.counter = qipc_test_counter_new ();
  qipc_test_counter_set_value (exporter.counter, atoi (argv[2]));
  g_object_set (exporter.counter, "label", "start", NULL);
  exporter.export_id = qipc_bus_export_object (exporter.bus, argv[1], G_OBJECT (exporter.counter),
                                               QIPC_EXPORT_FLAGS_ALL, &error);
  if (exporter.export_id == 0)
    return fail (error);
  g_signal_connect (exporter.counter, "notify", G_CALLBACK (on_counter_notify), &exporter);
  g_io_add_watch (input, G_IO_IN | G_IO_HUP, on_exporter_input, &exporter);
  say ("exported");
  g_main_loop_run (g_main_loop_new (NULL, FALSE));
  return 1;
}

/* The D-Bus side of an export, written by hand with GDBus as the
 * contract of qipc_dbus_export_object() says: interface
 * org.qipc.Object.QipcTestCounter, PropertiesChanged with the values. */
static const char counter_xml[] =
  "<node><interface name='org.qipc.Object.QipcTestCounter'>"
  "<property name='Value' type='i' access='readwrite'/>"
  "<property name='Label' type='s' access='readwrite'/>"
  "<signal name='ValueChanged'><arg type='i'/><arg type='s'/></signal>"
  "<method name='Increment'><arg type='i' direction='in'/><arg type='i' direction='out'/></method>"
  "<method name='Reset'/>"
  "</interface></node>";

#define COUNTER_PATH "/org/qipc/test/Counter"
#define COUNTER_INTERFACE "org.qipc.Object.QipcTestCounter"

static void
dbus_counter_call (GDBusConnection       *connection,
                   const char            *sender,
                   const char            *path,
                   const char            *interface,
                   const char            *method,
                   GVariant              *parameters,
                   GDBusMethodInvocation *invocation,
                   gpointer               data)
{
  Exporter *exporter = data;
  int by, value;

  if (g_str_equal (method, "Increment"))
    {
      g_variant_get (parameters, "(i)", &by);
      g_signal_emit_by_name (exporter->counter, "increment", by, &value);
      g_dbus_method_invocation_return_value (invocation, g_variant_new ("(i)", value));
      return;
    }
  g_signal_emit_by_name (exporter->counter, "reset");
  g_dbus_method_invocation_return_value (invocation, NULL);
}

static GVariant *
dbus_counter_get (GDBusConnection  *connection,
                  const char       *sender,
                  const char       *path,
                  const char       *interface,
                  const char       *property,
                  GError          **error,
                  gpointer          data)
{
  Exporter *exporter = data;
  g_autofree char *label = NULL;

  if (g_str_equal (property, "Value"))
    return g_variant_new_int32 (qipc_test_counter_get_value (exporter->counter));
  g_object_get (exporter->counter, "label", &label, NULL);
  return g_variant_new_string (label != NULL ? label : "");
}

static gboolean
dbus_counter_set (GDBusConnection  *connection,
                  const char       *sender,
                  const char       *path,
                  const char       *interface,
                  const char       *property,
                  GVariant         *value,
                  GError          **error,
                  gpointer          data)
{
  Exporter *exporter = data;

  if (g_str_equal (property, "Value"))
    qipc_test_counter_set_value (exporter->counter, g_variant_get_int32 (value));
  else
    g_object_set (exporter->counter, "label", g_variant_get_string (value, NULL), NULL);
  return TRUE;
}

static void
dbus_counter_notify (GObject    *counter,
                     GParamSpec *pspec,
                     Exporter   *exporter)
{
  g_autofree char *name = g_strdup (pspec->name);
  GVariantBuilder changed;

  name[0] = g_ascii_toupper (name[0]);
  g_variant_builder_init (&changed, G_VARIANT_TYPE ("a{sv}"));
  g_variant_builder_add (&changed, "{sv}", name,
                         dbus_counter_get (NULL, NULL, NULL, NULL, name, NULL, exporter));
  g_dbus_connection_emit_signal (exporter->connection, NULL, COUNTER_PATH,
                                 "org.freedesktop.DBus.Properties", "PropertiesChanged",
                                 g_variant_new ("(sa{sv}as)", COUNTER_INTERFACE, &changed, NULL),
                                 NULL);
}

static void
dbus_counter_value_changed (GObject    *counter,
                            int         value,
                            const char *label,
                            Exporter   *exporter)
{
  g_dbus_connection_emit_signal (exporter->connection, NULL, COUNTER_PATH, COUNTER_INTERFACE,
                                 "ValueChanged", g_variant_new ("(is)", value, label ? label : ""),
                                 NULL);
}

/* counter-dbus-export ADDRESS NAME VALUE: on the D-Bus daemon at
 * ADDRESS, own NAME and export a QipcTestCounter whose value is VALUE
 * at /org/qipc/test/Counter, say "exported", then obey the commands on
 * stdin as counter-export does. */
static int
counter_dbus_export (char **argv)
{
  static const GDBusInterfaceVTable vtable = { dbus_counter_call, dbus_counter_get, dbus_counter_set, { 0 } };
  g_autoptr(GDBusNodeInfo) node = NULL;
  Exporter exporter = { 0, };
  GError *error = NULL;
  GIOChannel *input = g_io_channel_unix_new (0);
  g_autoptr(GVariant) reply = NULL;

  exporter.connection = g_dbus_connection_new_for_address_sync (argv[0],
    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
    NULL, NULL, &error);
  if (exporter.connection == NULL)
    return fail (error);
  exporter.counter = qipc_test_counter_new ();
  qipc_test_counter_set_value (exporter.counter, atoi (argv[2]));
  g_object_set (exporter.counter, "label", "start", NULL);
  node = g_dbus_node_info_new_for_xml (counter_xml, &error);
  if (node == NULL)
    return fail (error);
  exporter.export_id = g_dbus_connection_register_object (exporter.connection, COUNTER_PATH,
                                                          node->interfaces[0], &vtable,
                                                          &exporter, NULL, &error);
  if (exporter.export_id == 0)
    return fail (error);
  g_signal_connect (exporter.counter, "notify", G_CALLBACK (dbus_counter_notify), &exporter);
  g_signal_connect (exporter.counter, "notify", G_CALLBACK (on_counter_notify), &exporter);
  g_signal_connect (exporter.counter, "value-changed", G_CALLBACK (dbus_counter_value_changed), &exporter);
  reply = g_dbus_connection_call_sync (exporter.connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "RequestName",
                                       g_variant_new ("(su)", argv[1], 0x4), G_VARIANT_TYPE ("(u)"),
                                       G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  if (reply == NULL)
    return fail (error);
  g_io_add_watch (input, G_IO_IN | G_IO_HUP, on_exporter_input, &exporter);
  say ("exported");
  g_main_loop_run (g_main_loop_new (NULL, FALSE));
  return 1;
}

/* ------------------------------------------------------------------ */
/* D-Bus exports                                                       */

typedef struct
{
  GDBusConnection *connection;
  QipcTestCounter *counter;
  GDataInputStream *input;
  guint export_id;
  const char *path;
  GMainLoop *loop;
} DBusCounter;

static GDBusConnection *
session_bus (void)
{
  GError *error = NULL;
  GDBusConnection *connection = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, &error);

  if (connection == NULL)
    exit (fail (error));
  return connection;
}

/* Calls RequestName or ReleaseName and says @done. */
static void
name_call (GDBusConnection *connection,
           const char      *method,
           const char      *name,
           const char      *done)
{
  GError *error = NULL;
  g_autoptr(GVariant) reply = NULL;
  guint32 result;

  reply = g_dbus_connection_call_sync (connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", method,
                                       g_str_equal (method, "RequestName")
                                         ? g_variant_new ("(su)", name, 4 /* DO_NOT_QUEUE */)
                                         : g_variant_new ("(s)", name),
                                       G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  if (reply == NULL)
    exit (fail (error));
  g_variant_get (reply, "(u)", &result);
  if (result != 1)
    {
      printf ("%s %s: %u\n", method, name, result);
      exit (1);
    }
  say (done);
}

static void dbus_counter_read (DBusCounter *self);

/* Reports after everything sent so far has left the process. */
static void
dbus_counter_flush_and_say (DBusCounter *self,
                            const char  *line)
{
  GError *error = NULL;

  if (!g_dbus_connection_flush_sync (self->connection, NULL, &error))
    exit (fail (error));
  say (line);
}

static void
dbus_counter_command (DBusCounter *self,
                      const char  *line)
{
  g_auto(GStrv) words = g_strsplit (line, " ", 2);

  if (g_str_equal (words[0], "set") && words[1] != NULL)
    {
      qipc_test_counter_set_value (self->counter, atoi (words[1]));
      dbus_counter_flush_and_say (self, "ok");
    }
  else if (g_str_equal (words[0], "label") && words[1] != NULL)
    {
      g_object_set (self->counter, "label", words[1], NULL);
      dbus_counter_flush_and_say (self, "ok");
    }
  else if (g_str_equal (words[0], "get"))
    {
      g_autofree char *value = g_strdup_printf ("%d", qipc_test_counter_get_value (self->counter));

      say (value);
    }
  else if (g_str_equal (words[0], "own") && words[1] != NULL)
    name_call (self->connection, "RequestName", words[1], "owned");
  else if (g_str_equal (words[0], "release") && words[1] != NULL)
    name_call (self->connection, "ReleaseName", words[1], "released");
  else if (g_str_equal (words[0], "unexport"))
    {
      if (!qipc_dbus_unexport_object (self->connection, self->export_id))
        exit (1);
      dbus_counter_flush_and_say (self, "unexported");
    }
  else if (g_str_equal (words[0], "export"))
    {
      GError *error = NULL;

      self->export_id = qipc_dbus_export_object (self->connection, self->path, NULL,
                                                 G_OBJECT (self->counter), QIPC_EXPORT_FLAGS_ALL,
                                                 &error);
      if (self->export_id == 0)
        exit (fail (error));
      dbus_counter_flush_and_say (self, "exported");
    }
  else
    {
      printf ("unknown command: %s\n", line);
      exit (64);
    }
}

static void
dbus_counter_line_read (GObject      *source,
                        GAsyncResult *result,
                        gpointer      user_data)
{
  DBusCounter *self = user_data;
  g_autofree char *line = g_data_input_stream_read_line_finish (self->input, result, NULL, NULL);

  if (line == NULL)
    {
      g_main_loop_quit (self->loop);
      return;
    }
  dbus_counter_command (self, line);
  dbus_counter_read (self);
}

static void
dbus_counter_read (DBusCounter *self)
{
  g_data_input_stream_read_line_async (self->input, G_PRIORITY_DEFAULT, NULL,
                                       dbus_counter_line_read, self);
}

/* dbus-counter PATH NAME: on the session bus, export a QipcTestCounter
 * at PATH (all of it, default interface), own NAME unless it is "-",
 * say "ready", then follow commands on stdin, one a line: "set N",
 * "label TEXT" (each says "ok" once the signals are sent), "get" (says
 * the value), "own NAME" ("owned"), "release NAME" ("released"),
 * "unexport" ("unexported"), "export" (again; "exported"). Exits at the
 * end of stdin. */
static int
dbus_counter (char **argv)
{
  g_autoptr(GInputStream) stdin_stream = g_unix_input_stream_new (0, FALSE);
  DBusCounter self = { 0 };
  GError *error = NULL;

  self.connection = session_bus ();
  self.counter = qipc_test_counter_new ();
  self.input = g_data_input_stream_new (stdin_stream);
  self.loop = g_main_loop_new (NULL, FALSE);
  self.path = argv[0];
  self.export_id = qipc_dbus_export_object (self.connection, argv[0], NULL, G_OBJECT (self.counter),
                                            QIPC_EXPORT_FLAGS_ALL, &error);
  if (self.export_id == 0)
    return fail (error);
  if (!g_str_equal (argv[1], "-"))
    name_call (self.connection, "RequestName", argv[1], "ready");
  else
    say ("ready");
  dbus_counter_read (&self);
  g_main_loop_run (self.loop);
  return 0;
}

static const struct {
  const char *name;
  int n_args;
  int (*run) (char **argv);
} commands[] = {
  { "sem-hold", 2, sem_hold },
  { "sem-release", 2, sem_release },
  { "sem-acquire-release", 3, sem_acquire_release },
  { "sem-create", 2, sem_create },
  { "sem-pingpong", 3, sem_pingpong },
  { "shm-create", 3, shm_create },
  { "shm-read", 2, shm_read },
  { "shm-lock", 1, shm_lock },
  { "shm-lock-until-input", 1, shm_lock_until_input },
  { "shm-wait-changed", 2, shm_wait_changed },
  { "shm-attach", 1, shm_attach },
  { "shm-attach-until-input", 1, shm_attach_until_input },
  { "shm-churn", 2, shm_churn },
  { "as-nobody", 2, as_nobody },
  { "local-echo-server", 1, local_echo_server },
  { "local-sink-server", 1, local_sink_server },
  { "local-connect", 1, local_connect },
  { "local-send-memfd", 2, local_send_memfd },
  { "tcp-echo-server", 0, tcp_echo_server },
  { "broker", 1, broker },
  { "channel-listen", 2, channel_listen_cmd },
  { "channel-count", 4, channel_count },
  { "channel-send", 3, channel_send },
  { "channel-as-nobody", 3, channel_as_nobody },
  { "channel-default", 1, channel_default },
  { "tcp-tls-echo-server", 2, tcp_tls_echo_server },
  { "counter-export", 3, counter_export },
  { "counter-dbus-export", 3, counter_dbus_export },
  { "dbus-counter", 2, dbus_counter },
};

int
main (int    argc,
      char **argv)
{
  /* A test that crashes must not leave its helpers waiting forever. */
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  if (getppid () == 1)
    return 70;

  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    if (argc >= 2 && g_str_equal (argv[1], commands[i].name))
      {
        if (argc - 2 != commands[i].n_args)
          {
            fprintf (stderr, "%s takes %d arguments\n", commands[i].name, commands[i].n_args);
            return 64;
          }
        return commands[i].run (argv + 2);
      }

  fprintf (stderr, "usage: %s COMMAND ARGS… (see the source)\n", argv[0]);
  return 64;
}
