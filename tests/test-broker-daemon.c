/* test-broker-daemon.c: the qipc-broker program
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Runs the freshly built daemon ($QIPC_BROKER) as a child and talks to it
 * with the library's QipcBus and QipcChannel, as any client would.
 */
#include "test-utils.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <errno.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <unistd.h>

/* How long a test waits for a broker to answer, at most. */
#define READY_TIMEOUT_S 20

/* If this test dies, so do its brokers: one with --autostart and no
 * idle timeout would otherwise stay forever. */
static void
die_with_test (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static GSubprocessLauncher *
launcher_new (void)
{
  GSubprocessLauncher *launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_PIPE);

  g_subprocess_launcher_set_child_setup (launcher, die_with_test, NULL, NULL);
  return launcher;
}

static GSubprocess *
spawn_argv (GPtrArray *argv)
{
  g_autoptr(GSubprocessLauncher) launcher = launcher_new ();
  g_autoptr(GError) error = NULL;
  GSubprocess *process;

  g_ptr_array_add (argv, NULL);
  process = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  g_assert_no_error (error);
  return process;
}

static GSubprocess *
spawn_broker_va (const char *first_arg,
                 va_list     args)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  const char *broker = g_getenv ("QIPC_BROKER");

  g_assert_nonnull (broker);
  g_ptr_array_add (argv, (char *) broker);
  for (const char *arg = first_arg; arg != NULL; arg = va_arg (args, const char *))
    g_ptr_array_add (argv, (char *) arg);
  return spawn_argv (argv);
}

static GSubprocess *spawn_broker (const char *first_arg,
                                  ...) G_GNUC_NULL_TERMINATED;
static int run_broker (char       **stderr_text,
                       const char  *first_arg,
                       ...) G_GNUC_NULL_TERMINATED;

/* Starts qipc-broker with the arguments up to NULL; its stderr is kept
 * for wait_exit(). */
static GSubprocess *
spawn_broker (const char *first_arg,
              ...)
{
  GSubprocess *process;
  va_list args;

  va_start (args, first_arg);
  process = spawn_broker_va (first_arg, args);
  va_end (args);
  return process;
}

/* Waits for @process to exit by itself, and returns its exit status;
 * its stderr goes to @stderr_text if not NULL. */
static int
wait_exit (GSubprocess  *process,
           char        **stderr_text)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *err = NULL;

  g_subprocess_communicate_utf8_async (process, NULL, NULL, qipc_test_store_result, &result);
  qipc_test_wait_for_result (&result);
  g_subprocess_communicate_utf8_finish (process, result, NULL, &err, &error);
  g_assert_no_error (error);
  if (!g_subprocess_get_if_exited (process))
    g_error ("qipc-broker was killed by signal %d; it wrote: %s",
             g_subprocess_get_term_sig (process), err);
  if (stderr_text != NULL)
    *stderr_text = g_steal_pointer (&err);
  else if (err != NULL && *err != '\0')
    g_test_message ("qipc-broker wrote: %s", err);
  return g_subprocess_get_exit_status (process);
}

/* Runs the broker to its end: for the cases where it must not start. */
static int
run_broker (char       **stderr_text,
            const char  *first_arg,
            ...)
{
  g_autoptr(GSubprocess) process = NULL;
  va_list args;

  va_start (args, first_arg);
  process = spawn_broker_va (first_arg, args);
  va_end (args);
  return wait_exit (process, stderr_text);
}

static void
terminate (GSubprocess *process,
           int          signal_number)
{
  g_subprocess_send_signal (process, signal_number);
  g_assert_cmpint (wait_exit (process, NULL), ==, 0);
}

/* Connects to the broker at @address, waiting for it to listen. */
static QipcBus *
connect_bus (const char *address)
{
  gint64 deadline = g_get_monotonic_time () + READY_TIMEOUT_S * G_USEC_PER_SEC;

  while (TRUE)
    {
      g_autoptr(GError) error = NULL;
      QipcBus *bus = qipc_bus_new_for_address (address, &error);

      if (bus != NULL)
        return bus;
      if (g_get_monotonic_time () > deadline)
        g_error ("No broker answered at %s: %s", address, error->message);
      g_usleep (10 * 1000);
    }
}

static void
on_received (QipcChannel *channel,
             const char  *message,
             GVariant    *data,
             gpointer     user_data)
{
  char **got = user_data;

  g_free (*got);
  *got = g_strdup_printf ("%s %s", message, g_variant_get_string (data, NULL));
}

static gboolean
round_trip_timed_out (gpointer user_data)
{
  g_error ("No message came back through the broker at %s", (const char *) user_data);
  return G_SOURCE_REMOVE;
}

/* A message sent on one connection reaches a channel on another, so it
 * went through the broker. */
static void
assert_round_trip (const char *send_address,
                   const char *receive_address)
{
  g_autoptr(QipcBus) sender = connect_bus (send_address);
  g_autoptr(QipcBus) receiver = connect_bus (receive_address);
  g_autoptr(GError) error = NULL;
  g_autoptr(QipcChannel) channel = qipc_channel_new_for_bus (receiver, "test/daemon", &error);
  g_autofree char *got = NULL;
  guint timeout;

  g_assert_no_error (error);
  g_signal_connect (channel, "received", G_CALLBACK (on_received), &got);
  /* The registration must reach the broker before the message does. */
  g_assert_true (qipc_channel_flush_for_bus (receiver, &error));
  g_assert_no_error (error);
  g_assert_true (qipc_channel_send_for_bus (sender, "test/daemon", "ping",
                                            g_variant_new_string ("hello"), &error));
  g_assert_no_error (error);

  timeout = g_timeout_add_seconds (READY_TIMEOUT_S, round_trip_timed_out, (gpointer) send_address);
  while (got == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (timeout);
  g_assert_cmpstr (got, ==, "ping hello");
}

static char *
make_dir (void)
{
  g_autoptr(GError) error = NULL;
  char *dir = g_dir_make_tmp ("qipc-broker-daemon-XXXXXX", &error);

  g_assert_no_error (error);
  return dir;
}

/* Removes @dir and what a broker may have left in it, one level deep. */
static void
remove_dir (const char *dir)
{
  g_autoptr(GDir) listing = g_dir_open (dir, 0, NULL);
  const char *name;

  while (listing != NULL && (name = g_dir_read_name (listing)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);

      if (g_rmdir (path) < 0)
        g_unlink (path);
    }
  g_rmdir (dir);
}

static char *
abstract_address (const char *what)
{
  static guint counter;

  return g_strdup_printf ("unix:abstract=qipc-test-broker-daemon/%d/%u/%s",
                          (int) getpid (), counter++, what);
}

static void
assert_failed_with (int         status,
                    const char *err,
                    const char *expected)
{
  g_assert_cmpint (status, ==, 1);
  g_assert_true (g_str_has_prefix (err, "qipc-broker: "));
  if (strstr (err, expected) == NULL)
    g_error ("Expected \"%s\" in: %s", expected, err);
}

static void
test_version (void)
{
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  g_autofree char *expected = g_strdup_printf ("qipc-broker %s\n", QIPC_VERSION_S);

  process = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error,
                              g_getenv ("QIPC_BROKER"), "--version", NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (process, NULL, NULL, &out, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (out, ==, expected);
  g_assert_true (g_subprocess_get_successful (process));
}

static void
test_bad_options (void)
{
  struct {
    const char *args[3];
    const char *expected;
  } cases[] = {
    { { "--bogus" }, "Unknown option --bogus" },
    { { "--idle-timeout", "-1" }, "--idle-timeout expects a whole number" },
    { { "--max-queued-bytes", "lots" }, "--max-queued-bytes expects a whole number" },
    { { "extra" }, "Unexpected argument \"extra\"" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *err = NULL;
      int status = run_broker (&err, cases[i].args[0], cases[i].args[1], NULL);

      assert_failed_with (status, err, cases[i].expected);
    }
}

static void
test_bad_address (void)
{
  g_autofree char *err = NULL;
  int status;

  status = run_broker (&err, "--address", "nowhere", NULL);
  assert_failed_with (status, err, "Invalid bus address \"nowhere\"");
  g_clear_pointer (&err, g_free);

  status = run_broker (&err, "--address", "unix:path=/proc/nonexistent/qipc/bus", NULL);
  assert_failed_with (status, err, "/proc/nonexistent/qipc");
}

/* TCP is TLS: no listening on it without a certificate, nor with one
 * that cannot be read. */
static void
test_tcp_needs_certificate (void)
{
  g_autofree char *err = NULL;
  int status;

  status = run_broker (&err, "--address", "tcp:host=127.0.0.1,port=0", NULL);
  assert_failed_with (status, err, "needs a TLS certificate");
  g_clear_pointer (&err, g_free);

  status = run_broker (&err, "--address", "tcp:host=127.0.0.1,port=0",
                       "--tls-certificate", "/proc/nonexistent.pem", NULL);
  assert_failed_with (status, err, "Cannot load the TLS certificate /proc/nonexistent.pem");
}

static void
test_bad_policy (void)
{
  g_autofree char *dir = make_dir ();
  g_autofree char *path = g_build_filename (dir, "policy.json", NULL);
  g_autofree char *address = abstract_address ("bad-policy");
  g_autoptr(GError) error = NULL;
  g_autofree char *expected = NULL;
  g_autofree char *err = NULL;
  int status;

  g_file_set_contents (path, "{\n  \"allow\": [\n    { \"uid\": 10x }\n  ]\n}\n", -1, &error);
  g_assert_no_error (error);
  /* The file, then line 3, where the bad value is. */
  expected = g_strdup_printf ("Invalid policy: %s:3:", path);
  status = run_broker (&err, "--policy", path, "--address", address, NULL);
  assert_failed_with (status, err, expected);
  g_clear_pointer (&err, g_free);
  g_clear_pointer (&expected, g_free);

  g_file_set_contents (path, "{ \"allow\": [ { \"uid\": 1000, \"sned\": [\"a\"] } ] }", -1, &error);
  g_assert_no_error (error);
  expected = g_strdup_printf ("Invalid policy: %s: allow[0]: unknown key \"sned\"", path);
  status = run_broker (&err, "--policy", path, "--address", address, NULL);
  assert_failed_with (status, err, expected);
  g_clear_pointer (&err, g_free);

  g_unlink (path);
  status = run_broker (&err, "--policy", path, "--address", address, NULL);
  assert_failed_with (status, err, path);

  remove_dir (dir);
}

static void
test_unix_path (void)
{
  g_autofree char *dir = make_dir ();
  g_autofree char *address = g_strdup_printf ("unix:path=%s/bus", dir);
  g_autoptr(GSubprocess) broker = spawn_broker ("--address", address,
                                                "--max-queued-bytes", "65536", NULL);

  assert_round_trip (address, address);
  terminate (broker, SIGTERM);
  remove_dir (dir);
}

/* The broker's stderr as lines, until one holds @expected; fails the
 * test (after the deadline) when none does. */
static void
expect_stderr (GSubprocess *process,
               const char  *expected)
{
  g_autoptr(GDataInputStream) lines = g_data_input_stream_new (g_subprocess_get_stderr_pipe (process));

  g_filter_input_stream_set_close_base_stream (G_FILTER_INPUT_STREAM (lines), FALSE);
  while (TRUE)
    {
      g_autoptr(GAsyncResult) result = NULL;
      g_autoptr(GError) error = NULL;
      g_autofree char *line = NULL;

      g_data_input_stream_read_line_async (lines, G_PRIORITY_DEFAULT, NULL,
                                           qipc_test_store_result, &result);
      qipc_test_wait_for_result (&result);
      line = g_data_input_stream_read_line_finish (lines, result, NULL, &error);
      g_assert_no_error (error);
      if (line == NULL)
        g_error ("qipc-broker ended its stderr without \"%s\"", expected);
      if (strstr (line, expected) != NULL)
        return;
    }
}

#define FEW_DESCRIPTORS 24

static void
limit_descriptors (gpointer user_data)
{
  struct rlimit few = { FEW_DESCRIPTORS, FEW_DESCRIPTORS };

  die_with_test (NULL);
  setrlimit (RLIMIT_NOFILE, &few);
}

/* A connection that never says HELLO, left waiting; -1 once the
 * listening socket's backlog is full. */
static int
connect_silently (const char *path)
{
  struct sockaddr_un address = { .sun_family = AF_UNIX };
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

  g_assert_cmpint (fd, >=, 0);
  g_strlcpy (address.sun_path, path, sizeof address.sun_path);
  if (connect (fd, (struct sockaddr *) &address, sizeof address) < 0)
    {
      g_assert_cmpint (errno, ==, EAGAIN);
      close (fd);
      return -1;
    }
  return fd;
}

/* Clients that take every descriptor the broker may open: the broker
 * says it pauses accepting (rather than spinning on accept(), which the
 * sockets tests check), and takes clients again once some leave. */
static void
test_out_of_descriptors (void)
{
  g_autofree char *dir = make_dir ();
  g_autofree char *path = g_build_filename (dir, "bus", NULL);
  g_autofree char *address = g_strdup_printf ("unix:path=%s", path);
  g_autoptr(GSubprocessLauncher) launcher = launcher_new ();
  g_autoptr(GSubprocess) broker = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) silent = g_array_new (FALSE, FALSE, sizeof (int));

  /* In place of launcher_new()'s setup, which it calls. */
  g_subprocess_launcher_set_child_setup (launcher, limit_descriptors, NULL, NULL);
  broker = g_subprocess_launcher_spawn (launcher, &error, g_getenv ("QIPC_BROKER"),
                                        "--address", address, NULL);
  g_assert_no_error (error);
  assert_round_trip (address, address);

  for (int i = 0; i < 2 * FEW_DESCRIPTORS; i++)
    {
      int fd = connect_silently (path);

      if (fd < 0)
        break;
      g_array_append_val (silent, fd);
    }
  expect_stderr (broker, "pauses accepting clients");

  for (guint i = 0; i < silent->len; i++)
    close (g_array_index (silent, int, i));
  assert_round_trip (address, address);
  terminate (broker, SIGTERM);
  remove_dir (dir);
}

static void
test_unix_abstract (void)
{
  g_autofree char *address = abstract_address ("abstract");
  g_autoptr(GSubprocess) broker = spawn_broker ("--address", address, NULL);

  assert_round_trip (address, address);
  terminate (broker, SIGTERM);
}

/* One broker, two addresses: a message crosses from one to the other. */
static void
test_two_addresses (void)
{
  g_autofree char *dir = make_dir ();
  g_autofree char *path_address = g_strdup_printf ("unix:path=%s/bus", dir);
  g_autofree char *abstract = abstract_address ("two");
  g_autoptr(GSubprocess) broker = spawn_broker ("--address", path_address,
                                                "--address", abstract, NULL);

  assert_round_trip (path_address, abstract);
  assert_round_trip (abstract, path_address);
  terminate (broker, SIGTERM);
  remove_dir (dir);
}

static GSubprocess *
spawn_broker_with_env (const char *variable,
                       const char *value,
                       const char *unset)
{
  g_autoptr(GSubprocessLauncher) launcher = launcher_new ();
  g_autoptr(GError) error = NULL;
  GSubprocess *process;

  g_subprocess_launcher_setenv (launcher, variable, value, TRUE);
  g_subprocess_launcher_unsetenv (launcher, unset);
  process = g_subprocess_launcher_spawn (launcher, &error, g_getenv ("QIPC_BROKER"), NULL);
  g_assert_no_error (error);
  return process;
}

/* Without --address: $QIPC_BUS_ADDRESS, else $XDG_RUNTIME_DIR/qipc/bus
 * in a directory only the user can enter. */
static void
test_default_address (void)
{
  g_autofree char *dir = make_dir ();
  g_autofree char *qipc_dir = g_build_filename (dir, "qipc", NULL);
  g_autofree char *path_address = g_strdup_printf ("unix:path=%s/bus", qipc_dir);
  g_autofree char *abstract = abstract_address ("default");
  g_autoptr(GSubprocess) broker = NULL;
  GStatBuf st;

  broker = spawn_broker_with_env ("QIPC_BUS_ADDRESS", abstract, "XDG_RUNTIME_DIR");
  assert_round_trip (abstract, abstract);
  terminate (broker, SIGTERM);
  g_clear_object (&broker);

  broker = spawn_broker_with_env ("XDG_RUNTIME_DIR", dir, "QIPC_BUS_ADDRESS");
  assert_round_trip (path_address, path_address);
  g_assert_cmpint (g_stat (qipc_dir, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0700);
  terminate (broker, SIGTERM);

  remove_dir (qipc_dir);
  remove_dir (dir);
}

static gboolean
set_flag (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Whether @process is still running after @seconds of the main loop. */
static gboolean
still_running_after (GSubprocess *process,
                     guint        seconds)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  gboolean elapsed = FALSE;
  gboolean exited;

  g_subprocess_wait_async (process, cancellable, qipc_test_store_result, &result);
  g_timeout_add_seconds (seconds, set_flag, &elapsed);
  while (!elapsed)
    g_main_context_iteration (NULL, TRUE);
  exited = result != NULL && g_subprocess_wait_finish (process, result, NULL);
  g_cancellable_cancel (cancellable);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  return !exited;
}

/* --autostart exits once it has had no client for --idle-timeout, and
 * not while one is connected. */
static void
test_autostart_idle (void)
{
  g_autofree char *address = abstract_address ("idle");
  g_autoptr(GSubprocess) broker = spawn_broker ("--autostart", "--idle-timeout", "1",
                                                "--address", address, NULL);
  g_autoptr(QipcBus) bus = connect_bus (address);
  g_autofree char *err = NULL;

  g_assert_true (still_running_after (broker, 3));
  qipc_bus_close (bus);
  g_assert_cmpint (wait_exit (broker, &err), ==, 0);
  g_assert_cmpstr (err, ==, "");
}

/* Two clients may start a broker for one address at the same moment:
 * the second broker sees the first and exits, successfully and quietly. */
static void
test_autostart_twice (gconstpointer data)
{
  gboolean abstract = GPOINTER_TO_INT (data);
  g_autofree char *dir = make_dir ();
  g_autofree char *address = abstract ? abstract_address ("twice")
                                       : g_strdup_printf ("unix:path=%s/bus", dir);
  g_autoptr(GSubprocess) first = spawn_broker ("--autostart", "--idle-timeout", "0",
                                               "--address", address, NULL);
  g_autoptr(QipcBus) bus = connect_bus (address);
  g_autoptr(GSubprocess) second = NULL;
  g_autofree char *err = NULL;

  second = spawn_broker ("--autostart", "--address", address, NULL);
  g_assert_cmpint (wait_exit (second, &err), ==, 0);
  g_assert_cmpstr (err, ==, "");

  assert_round_trip (address, address);
  qipc_bus_close (bus);
  terminate (first, SIGTERM);
  remove_dir (dir);
}

/* Without --autostart, a taken address is an error. */
static void
test_address_in_use (void)
{
  g_autofree char *dir = make_dir ();
  g_autofree char *address = g_strdup_printf ("unix:path=%s/bus", dir);
  g_autoptr(GSubprocess) first = spawn_broker ("--address", address, NULL);
  g_autoptr(QipcBus) bus = connect_bus (address);
  g_autofree char *err = NULL;
  int status;

  status = run_broker (&err, "--address", address, NULL);
  g_assert_cmpint (status, ==, 1);
  g_assert_true (g_str_has_prefix (err, "qipc-broker: "));

  qipc_bus_close (bus);
  terminate (first, SIGTERM);
  remove_dir (dir);
}

/* systemd-socket-activate listens, and starts the broker with the socket
 * when the first client connects. */
static void
test_socket_activation (void)
{
  const char *activate = "/usr/bin/systemd-socket-activate";
  g_autofree char *dir = NULL;
  g_autofree char *path = NULL;
  g_autofree char *address = NULL;
  g_autoptr(GPtrArray) argv = NULL;
  g_autoptr(GSubprocess) broker = NULL;

  if (!g_file_test (activate, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_test_skip ("systemd-socket-activate is not installed");
      return;
    }

  dir = make_dir ();
  path = g_build_filename (dir, "bus", NULL);
  address = g_strdup_printf ("unix:path=%s", path);
  argv = g_ptr_array_new ();
  g_ptr_array_add (argv, (char *) activate);
  g_ptr_array_add (argv, (char *) "-l");
  g_ptr_array_add (argv, path);
  /* It gives the broker no environment but what -E names. */
  g_ptr_array_add (argv, (char *) "-E");
  g_ptr_array_add (argv, (char *) "G_DEBUG");
  g_ptr_array_add (argv, (char *) "-E");
  g_ptr_array_add (argv, (char *) "ASAN_OPTIONS");
  g_ptr_array_add (argv, (char *) "-E");
  g_ptr_array_add (argv, (char *) "LD_LIBRARY_PATH");
  g_ptr_array_add (argv, (char *) g_getenv ("QIPC_BROKER"));
  broker = spawn_argv (argv);

  assert_round_trip (address, address);
  terminate (broker, SIGTERM);
  remove_dir (dir);
}

/* SIGTERM and SIGINT close the broker: exit 0, and no socket file left
 * for the next broker to find. */
static void
test_signals (void)
{
  int signals[] = { SIGTERM, SIGINT };

  for (gsize i = 0; i < G_N_ELEMENTS (signals); i++)
    {
      g_autofree char *dir = make_dir ();
      g_autofree char *path = g_build_filename (dir, "bus", NULL);
      g_autofree char *address = g_strdup_printf ("unix:path=%s", path);
      g_autoptr(GSubprocess) broker = spawn_broker ("--address", address, NULL);
      g_autoptr(QipcBus) bus = connect_bus (address);

      g_assert_true (g_file_test (path, G_FILE_TEST_EXISTS));
      terminate (broker, signals[i]);
      g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
      qipc_bus_close (bus);
      remove_dir (dir);
    }
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/broker-daemon/version", test_version);
  g_test_add_func ("/broker-daemon/bad-options", test_bad_options);
  g_test_add_func ("/broker-daemon/bad-address", test_bad_address);
  g_test_add_func ("/broker-daemon/tcp-needs-certificate", test_tcp_needs_certificate);
  g_test_add_func ("/broker-daemon/bad-policy", test_bad_policy);
  g_test_add_func ("/broker-daemon/unix-path", test_unix_path);
  g_test_add_func ("/broker-daemon/out-of-descriptors", test_out_of_descriptors);
  g_test_add_func ("/broker-daemon/unix-abstract", test_unix_abstract);
  g_test_add_func ("/broker-daemon/two-addresses", test_two_addresses);
  g_test_add_func ("/broker-daemon/default-address", test_default_address);
  g_test_add_func ("/broker-daemon/autostart/idle-exit", test_autostart_idle);
  g_test_add_data_func ("/broker-daemon/autostart/twice-path", GINT_TO_POINTER (FALSE),
                        test_autostart_twice);
  g_test_add_data_func ("/broker-daemon/autostart/twice-abstract", GINT_TO_POINTER (TRUE),
                        test_autostart_twice);
  g_test_add_func ("/broker-daemon/address-in-use", test_address_in_use);
  g_test_add_func ("/broker-daemon/socket-activation", test_socket_activation);
  g_test_add_func ("/broker-daemon/signals", test_signals);

  return g_test_run ();
}
