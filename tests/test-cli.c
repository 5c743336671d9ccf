/* test-cli.c: the qipc command-line tool
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Runs the freshly built tool ($QIPC_TOOL) in real processes against a
 * real broker ($QIPC_BROKER, or `qipc broker`), as a script would, and
 * checks its output lines and exit statuses (documented in qipc(1)).
 */
#include "test-utils.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define READY_TIMEOUT_S 20

/* The exit statuses of qipc(1). */
enum {
  EXIT_FALSE = 1,
  EXIT_USAGE = 2,
  EXIT_BAD_DATA = 3,
  EXIT_NO_BROKER = 4,
  EXIT_DENIED = 5,
  EXIT_FAILED = 6,
};

static void
die_with_test (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

/* Starts @argv (NULL-terminated); no child reaches the user's own
 * broker, nor starts one. */
static GSubprocess *
spawn_strv (GSubprocessFlags    flags,
            const char * const *argv)
{
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (flags);
  g_autoptr(GError) error = NULL;
  GSubprocess *process;

  g_subprocess_launcher_set_child_setup (launcher, die_with_test, NULL, NULL);
  g_subprocess_launcher_setenv (launcher, "QIPC_BUS_ADDRESS", "unix:abstract=qipc-test-cli-none", TRUE);
  process = g_subprocess_launcher_spawnv (launcher, argv, &error);
  g_assert_no_error (error);
  return process;
}

static GSubprocess *
spawn_va (GSubprocessFlags  flags,
          const char       *program,
          const char       *first_arg,
          va_list           args)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();

  g_ptr_array_add (argv, (char *) program);
  for (const char *arg = first_arg; arg != NULL; arg = va_arg (args, const char *))
    g_ptr_array_add (argv, (char *) arg);
  g_ptr_array_add (argv, NULL);
  return spawn_strv (flags, (const char * const *) argv->pdata);
}

static const char *
tool (void)
{
  const char *path = g_getenv ("QIPC_TOOL");

  g_assert_nonnull (path);
  return path;
}

/* Starts `qipc ARGS…` with its stdout a pipe to read lines from. */
static GSubprocess *spawn_tool (const char *first_arg,
                                ...) G_GNUC_NULL_TERMINATED;
static GSubprocess *
spawn_tool (const char *first_arg,
            ...)
{
  GSubprocess *process;
  va_list args;

  va_start (args, first_arg);
  process = spawn_va (G_SUBPROCESS_FLAGS_STDOUT_PIPE, tool (), first_arg, args);
  va_end (args);
  return process;
}

/* Runs `qipc ARGS…` to its end; returns its exit status, with its
 * output in @out and @err if not NULL. */
static int run_tool (char       **out,
                     char       **err,
                     const char  *first_arg,
                     ...) G_GNUC_NULL_TERMINATED;
static int
run_tool (char       **out,
          char       **err,
          const char  *first_arg,
          ...)
{
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *out_text = NULL, *err_text = NULL;
  va_list args;

  va_start (args, first_arg);
  process = spawn_va (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                      tool (), first_arg, args);
  va_end (args);
  g_subprocess_communicate_utf8 (process, NULL, NULL, &out_text, &err_text, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (process));
  if (err_text != NULL && *err_text != '\0')
    g_test_message ("qipc %s wrote: %s", first_arg, err_text);
  if (out != NULL)
    *out = g_steal_pointer (&out_text);
  if (err != NULL)
    *err = g_steal_pointer (&err_text);
  return g_subprocess_get_exit_status (process);
}

static int
wait_exit (GSubprocess *process)
{
  g_autoptr(GError) error = NULL;

  g_subprocess_wait (process, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (process));
  return g_subprocess_get_exit_status (process);
}

static char *
read_line (GSubprocess *process)
{
  g_autoptr(GDataInputStream) in = NULL;
  g_autoptr(GError) error = NULL;
  GInputStream *out = g_subprocess_get_stdout_pipe (process);
  char *line;

  /* One data stream per process, kept on it: it buffers. */
  in = g_object_get_data (G_OBJECT (process), "lines");
  if (in == NULL)
    {
      in = g_data_input_stream_new (out);
      g_object_set_data_full (G_OBJECT (process), "lines", g_object_ref (in), g_object_unref);
    }
  else
    g_object_ref (in);
  line = g_data_input_stream_read_line_utf8 (in, NULL, NULL, &error);
  g_assert_no_error (error);
  return line;
}

/* A broker of its own for each test, on an abstract socket. */
typedef struct
{
  GSubprocess *broker;
  char *address;
} Fixture;

static char *
unique_address (const char *what)
{
  static guint counter;

  return g_strdup_printf ("unix:abstract=qipc-test-cli-%d-%s-%u", (int) getpid (), what, counter++);
}

static void
wait_for_broker (const char *address)
{
  gint64 deadline = g_get_monotonic_time () + READY_TIMEOUT_S * G_USEC_PER_SEC;

  while (TRUE)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(QipcBus) bus = qipc_bus_new_for_address (address, &error);

      if (bus != NULL)
        {
          qipc_bus_close (bus);
          return;
        }
      if (g_get_monotonic_time () > deadline)
        g_error ("No broker answered at %s: %s", address, error->message);
      g_usleep (10 * 1000);
    }
}

/* Starts qipc-broker at @address, with @policy (JSON text) if not
 * NULL and the TLS certificate @certificate (PEM with its key) if not
 * NULL, and waits until it answers. */
static GSubprocess *
spawn_broker (const char *address,
              const char *policy,
              const char *certificate)
{
  const char *broker = g_getenv ("QIPC_BROKER");
  g_autofree char *policy_path = NULL;
  const char *argv[] = { broker, "--address", address, NULL, NULL, NULL, NULL, NULL };
  guint n = 3;
  GSubprocess *process;

  g_assert_nonnull (broker);
  if (certificate != NULL)
    {
      argv[n++] = "--tls-certificate";
      argv[n++] = certificate;
    }
  if (policy != NULL)
    {
      g_autoptr(GError) error = NULL;
      int fd = g_file_open_tmp ("qipc-test-cli-policy-XXXXXX.json", &policy_path, &error);

      g_assert_no_error (error);
      close (fd);
      g_file_set_contents (policy_path, policy, -1, &error);
      g_assert_no_error (error);
      argv[n++] = "--policy";
      argv[n++] = policy_path;
    }
  process = spawn_strv (G_SUBPROCESS_FLAGS_NONE, argv);
  wait_for_broker (address);
  /* Read at start: the file can go. */
  if (policy_path != NULL)
    g_unlink (policy_path);
  return process;
}

static void
fixture_set_up (Fixture       *fixture,
                gconstpointer  data)
{
  fixture->address = unique_address ("bus");
  fixture->broker = spawn_broker (fixture->address, NULL, NULL);
}

static void
fixture_tear_down (Fixture       *fixture,
                   gconstpointer  data)
{
  g_subprocess_send_signal (fixture->broker, SIGTERM);
  g_assert_cmpint (wait_exit (fixture->broker), ==, 0);
  g_clear_object (&fixture->broker);
  g_clear_pointer (&fixture->address, g_free);
}

/* Waits until some process listens on @channel, as a script would. */
static void
wait_registered (const char *address,
                 const char *channel)
{
  gint64 deadline = g_get_monotonic_time () + READY_TIMEOUT_S * G_USEC_PER_SEC;

  while (run_tool (NULL, NULL, "is-registered", "--address", address, channel, NULL) != 0)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_usleep (10 * 1000);
    }
}

/* ------------------------------------------------------------------ */

static void
test_usage (void)
{
  static const char * const commands[] = {
    "send", "listen", "monitor", "channels", "is-registered", "broker",
  };
  g_autofree char *out = NULL, *err = NULL;

  g_assert_cmpint (run_tool (NULL, &err, NULL, NULL), ==, EXIT_USAGE);
  g_assert_nonnull (strstr (err, "Usage:"));
  g_clear_pointer (&err, g_free);

  g_assert_cmpint (run_tool (&out, NULL, "--help", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "is-registered"));
  g_clear_pointer (&out, g_free);

  g_assert_cmpint (run_tool (&out, NULL, "--version", NULL), ==, 0);
  g_assert_true (g_str_has_prefix (out, "qipc "));
  g_clear_pointer (&out, g_free);

  g_assert_cmpint (run_tool (NULL, &err, "frobnicate", NULL), ==, EXIT_USAGE);
  g_assert_nonnull (strstr (err, "Unknown command \"frobnicate\""));
  g_clear_pointer (&err, g_free);

  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    {
      g_autofree char *help = NULL;
      g_autofree char *expected = g_strdup_printf ("qipc %s [OPTION", commands[i]);

      g_assert_cmpint (run_tool (&help, NULL, commands[i], "--help", NULL), ==, 0);
      g_assert_nonnull (strstr (help, expected));
      g_clear_pointer (&help, g_free);
      g_assert_cmpint (run_tool (&help, NULL, "help", commands[i], NULL), ==, 0);
      g_assert_nonnull (strstr (help, expected));
    }

  g_assert_cmpint (run_tool (NULL, &err, "send", "only-a-channel", NULL), ==, EXIT_USAGE);
  g_assert_nonnull (strstr (err, "CHANNEL and MESSAGE are needed"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run_tool (NULL, &err, "send", "--bogus", "a", "b", NULL), ==, EXIT_USAGE);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run_tool (NULL, &err, "send", "--type", "a{", "a", "b", "1", NULL), ==, EXIT_USAGE);
  g_assert_nonnull (strstr (err, "not a GVariant type"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run_tool (NULL, NULL, "listen", NULL), ==, EXIT_USAGE);
  g_assert_cmpint (run_tool (NULL, NULL, "listen", "--count", "-1", "a", NULL), ==, EXIT_USAGE);
  g_assert_cmpint (run_tool (NULL, NULL, "is-registered", NULL), ==, EXIT_USAGE);
  g_assert_cmpint (run_tool (NULL, NULL, "channels", "extra", NULL), ==, EXIT_USAGE);
  g_assert_cmpint (run_tool (NULL, NULL, "monitor", "extra", NULL), ==, EXIT_USAGE);
}

static void
test_text_round_trip (Fixture       *fixture,
                      gconstpointer  data)
{
  const char *address = fixture->address;
  g_autoptr(GSubprocess) listener = NULL;
  g_autofree char *line = NULL;

  listener = spawn_tool ("listen", "--address", address, "--count", "4", "text/one", NULL);
  wait_registered (address, "text/one");

  g_assert_cmpint (run_tool (NULL, NULL, "send", "--address", address,
                             "text/one", "tuple", "(1, \"x\")", NULL), ==, 0);
  g_assert_cmpint (run_tool (NULL, NULL, "send", "--address", address,
                             "text/one", "bare", NULL), ==, 0);
  g_assert_cmpint (run_tool (NULL, NULL, "send", "--address", address, "--type", "u",
                             "text/one", "typed", "7", NULL), ==, 0);
  g_assert_cmpint (run_tool (NULL, NULL, "send", "--address", address,
                             "text/one", "dict", "{'k': <[1.5, 2.0]>}", NULL), ==, 0);

  line = read_line (listener);
  g_assert_cmpstr (line, ==, "text/one\ttuple\t(1, 'x')");
  g_free (line);
  line = read_line (listener);
  g_assert_cmpstr (line, ==, "text/one\tbare");
  g_free (line);
  line = read_line (listener);
  g_assert_cmpstr (line, ==, "text/one\ttyped\tuint32 7");
  g_free (line);
  line = read_line (listener);
  g_assert_cmpstr (line, ==, "text/one\tdict\t{'k': <[1.5, 2.0]>}");
  g_assert_cmpint (wait_exit (listener), ==, 0);
}

/* Sends @json (with --type @type if not NULL) and checks what
 * `listen --json` prints: the same JSON, of GVariant type @expected_type. */
static void
check_json (const char  *address,
            GSubprocess *listener,
            const char  *type,
            const char  *json,
            const char  *expected_json,
            const char  *expected_type)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(JsonParser) expected_parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;
  JsonObject *object;
  int status;

  if (type != NULL)
    status = run_tool (NULL, NULL, "send", "--address", address, "--json", "--type", type,
                       "json/one", "m", json, NULL);
  else
    status = run_tool (NULL, NULL, "send", "--address", address, "--json",
                       "json/one", "m", json, NULL);
  g_assert_cmpint (status, ==, 0);

  line = read_line (listener);
  g_test_message ("%s → %s", json, line);
  json_parser_load_from_data (parser, line, -1, &error);
  g_assert_no_error (error);
  object = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpstr (json_object_get_string_member (object, "channel"), ==, "json/one");
  g_assert_cmpstr (json_object_get_string_member (object, "message"), ==, "m");
  g_assert_true (json_object_get_double_member (object, "time") > 1.5e9);
  if (expected_type != NULL)
    g_assert_cmpstr (json_object_get_string_member (object, "type"), ==, expected_type);
  else
    g_assert_true (json_object_get_null_member (object, "type"));
  json_parser_load_from_data (expected_parser, expected_json ? expected_json : json, -1, &error);
  g_assert_no_error (error);
  g_assert_true (json_node_equal (json_parser_get_root (expected_parser),
                                  json_object_get_member (object, "data")));
}

static void
test_json_round_trip (Fixture       *fixture,
                      gconstpointer  data)
{
  const char *address = fixture->address;
  g_autoptr(GSubprocess) listener = NULL;
  g_autofree char *line = NULL;

  listener = spawn_tool ("listen", "--address", address, "--json", "json/*", NULL);
  wait_registered (address, "json/one");

  check_json (address, listener, NULL, "42", NULL, "x");
  check_json (address, listener, NULL, "-1.25", NULL, "d");
  check_json (address, listener, NULL, "\"h\u00e9llo\\n\"", NULL, "s");
  check_json (address, listener, NULL, "true", NULL, "b");
  check_json (address, listener, NULL, "null", NULL, NULL);
  check_json (address, listener, NULL, "[1, 2, 3]", NULL, "ax");
  check_json (address, listener, NULL, "[1, \"two\", 3.5]", NULL, "av");
  check_json (address, listener, NULL, "[[1], [2, 3]]", NULL, "aax");
  check_json (address, listener, NULL,
              "{\"name\": \"x\", \"n\": 1, \"f\": 0.5, \"list\": [\"a\", \"b\"],"
              " \"nested\": {\"deeper\": {\"ok\": true}}, \"none\": null}",
              NULL, "a{sv}");
  /* With --type: sizes, bytes as base64, dictionaries of any key. */
  check_json (address, listener, "i", "-7", NULL, "i");
  check_json (address, listener, "y", "255", NULL, "y");
  check_json (address, listener, "d", "3", "3.0", "d");
  check_json (address, listener, "ay", "\"AAEC/w==\"", NULL, "ay");
  check_json (address, listener, "ay", "[0, 1, 2, 255]", "\"AAEC/w==\"", "ay");
  check_json (address, listener, "(sayd)", "[\"s\", \"\", 1.5]", NULL, "(sayd)");
  check_json (address, listener, "a{sa{si}}", "{\"a\": {\"x\": 1}, \"b\": {}}", NULL, "a{sa{si}}");
  check_json (address, listener, "a{ib}", "{\"1\": true, \"-2\": false}", NULL, "a{ib}");
  /* Byte keys are decimal, as they are read (found by fuzz-json-messages). */
  check_json (address, listener, "a{ys}", "{\"8\": \"x\", \"255\": \"y\"}", NULL, "a{ys}");
  check_json (address, listener, "ms", "null", NULL, "ms");
  check_json (address, listener, "ao", "[\"/org/x\"]", NULL, "ao");
  /* JSON has no NaN nor infinities: they are strings, both ways. */
  check_json (address, listener, "d", "\"NaN\"", NULL, "d");
  check_json (address, listener, "a{dd}", "{\"-Infinity\": \"Infinity\", \"0.5\": 1.5}", NULL, "a{dd}");
  /* A key beyond G_MAXINT64 (did not read back). */
  check_json (address, listener, "a{ts}", "{\"18446744073709551615\": \"big\"}", NULL, "a{ts}");

  /* GVariant text in, JSON out. */
  g_assert_cmpint (run_tool (NULL, NULL, "send", "--address", address,
                             "json/one", "m", "(1, 'x', [byte 0x68, 0x69], {'k': <2.5>})",
                             NULL), ==, 0);
  line = read_line (listener);
  g_assert_nonnull (strstr (line, "\"data\":[1,\"x\",\"aGk=\",{\"k\":2.5}],\"type\":\"(isaya{sv})\""));

  g_subprocess_send_signal (listener, SIGTERM);
  g_assert_cmpint (wait_exit (listener), ==, 0);
}

/* Data that JSON cannot hold (a dictionary with one key twice, which
 * GVariant text can build, and "just nothing" in a maybe of a maybe) is
 * reported on standard error; the next message prints as usual. */
static void
test_json_unsupported (Fixture       *fixture,
                       gconstpointer  data)
{
  const char *address = fixture->address;
  const char *const argv[] = { tool (), "listen", "--address", address, "--json", "--count", "3",
                               "odd/one", NULL };
  g_autoptr(GSubprocess) listener = spawn_strv (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                                G_SUBPROCESS_FLAGS_STDERR_PIPE, argv);
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;

  wait_registered (address, "odd/one");
  g_assert_cmpint (run_tool (NULL, NULL, "send", "--address", address,
                             "odd/one", "twice", "{'k': 1, 'k': 2}", NULL), ==, 0);
  g_assert_cmpint (run_tool (NULL, NULL, "send", "--address", address,
                             "odd/one", "maybe", "@mmi just nothing", NULL), ==, 0);
  g_assert_cmpint (run_tool (NULL, NULL, "send", "--address", address,
                             "odd/one", "after", "1", NULL), ==, 0);
  g_subprocess_communicate_utf8 (listener, NULL, NULL, &out, &err, &error);
  g_assert_no_error (error);
  g_assert_cmpint (wait_exit (listener), ==, 0);
  g_assert_true (g_str_has_prefix (out, "{\"channel\":\"odd/one\",\"message\":\"after\",\"data\":1,"));
  g_assert_cmpint (strlen (strchr (out, '\n')), ==, 1);
  g_assert_nonnull (strstr (err, "qipc listen: A message twice on odd/one cannot be written as JSON: "
                                 "A dictionary holds the key \"k\" twice"));
  g_assert_nonnull (strstr (err, "qipc listen: A message maybe on odd/one cannot be written as JSON: "
                                 "A \"mmi\" holds a maybe holding nothing"));
}

static void
test_listen_stops (Fixture       *fixture,
                   gconstpointer  data)
{
  const char *address = fixture->address;
  g_autofree char *out = NULL;
  gint64 start = g_get_monotonic_time ();
  g_autoptr(GSubprocess) listener = NULL;
  g_autofree char *line = NULL;

  /* Nothing came: status 1. */
  g_assert_cmpint (run_tool (&out, NULL, "listen", "--address", address, "--timeout", "0.2",
                             "quiet/*", NULL), ==, EXIT_FALSE);
  g_assert_cmpstr (out, ==, "");
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 200 * 1000);

  /* Something came before the timeout: status 0. */
  listener = spawn_tool ("listen", "--address", address, "--timeout", "1", "quiet/*", NULL);
  wait_registered (address, "quiet/x");
  g_assert_cmpint (run_tool (NULL, NULL, "send", "--address", address, "quiet/x", "m", NULL), ==, 0);
  line = read_line (listener);
  g_assert_cmpstr (line, ==, "quiet/x\tm");
  g_assert_cmpint (wait_exit (listener), ==, 0);
}

static void
test_is_registered_and_channels (Fixture       *fixture,
                                 gconstpointer  data)
{
  const char *address = fixture->address;
  g_autoptr(GSubprocess) listener1 = NULL;
  g_autoptr(GSubprocess) listener2 = NULL;
  g_autofree char *out = NULL;

  g_assert_cmpint (run_tool (NULL, NULL, "is-registered", "--address", address, "reg/a", NULL), ==, EXIT_FALSE);
  g_assert_cmpint (run_tool (&out, NULL, "channels", "--address", address, NULL), ==, 0);
  g_assert_cmpstr (out, ==, "");
  g_clear_pointer (&out, g_free);

  listener1 = spawn_tool ("listen", "--address", address, "reg/a", "reg/**", NULL);
  listener2 = spawn_tool ("listen", "--address", address, "reg/a", NULL);
  wait_registered (address, "reg/a");
  wait_registered (address, "reg/b/c");
  g_assert_cmpint (run_tool (NULL, NULL, "is-registered", "--address", address, "reg/b", NULL), ==, 0);
  g_assert_cmpint (run_tool (NULL, NULL, "is-registered", "--address", address, "other", NULL), ==, EXIT_FALSE);

  /* listener2 may still be on its way. */
  for (int tries = 0; ; tries++)
    {
      g_clear_pointer (&out, g_free);
      g_assert_cmpint (run_tool (&out, NULL, "channels", "--address", address, NULL), ==, 0);
      if (g_str_equal (out, "reg/**\t1\nreg/a\t2\n") || tries > 1000)
        break;
      g_usleep (10 * 1000);
    }
  g_assert_cmpstr (out, ==, "reg/**\t1\nreg/a\t2\n");
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (run_tool (&out, NULL, "channels", "--address", address, "--json", NULL), ==, 0);
  g_assert_cmpstr (out, ==,
                   "{\"channel\":\"reg/**\",\"listeners\":1}\n"
                   "{\"channel\":\"reg/a\",\"listeners\":2}\n");

  g_subprocess_send_signal (listener1, SIGINT);
  g_subprocess_send_signal (listener2, SIGTERM);
  g_assert_cmpint (wait_exit (listener1), ==, 0);
  g_assert_cmpint (wait_exit (listener2), ==, 0);
}

static gboolean
has_output (GSubprocess *process)
{
  return g_pollable_input_stream_is_readable (G_POLLABLE_INPUT_STREAM (g_subprocess_get_stdout_pipe (process)));
}

/* Skips lines up to @prefix's. */
static void
skip_to (GSubprocess *process,
         const char  *prefix)
{
  while (TRUE)
    {
      g_autofree char *line = read_line (process);

      g_assert_nonnull (line);
      if (g_str_has_prefix (line, prefix))
        return;
    }
}

static void
test_monitor (Fixture       *fixture,
              gconstpointer  data)
{
  const char *address = fixture->address;
  g_autoptr(GSubprocess) monitor = NULL;
  g_autoptr(GSubprocess) json_monitor = NULL;
  g_autofree char *line = NULL;
  gint64 deadline = g_get_monotonic_time () + READY_TIMEOUT_S * G_USEC_PER_SEC;

  monitor = spawn_tool ("monitor", "--address", address, NULL);
  json_monitor = spawn_tool ("monitor", "--address", address, "--json", NULL);
  /* Nothing says when a monitor watches but the first message it
   * prints: ping until both printed one, then send a mark, and what
   * follows the mark is the test's. */
  while (!has_output (monitor) || !has_output (json_monitor))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_assert_cmpint (run_tool (NULL, NULL, "send", "--address", address, "mon/ping", "ping", NULL), ==, 0);
      g_usleep (20 * 1000);
    }
  g_assert_cmpint (run_tool (NULL, NULL, "send", "--address", address, "mon/mark", "mark", NULL), ==, 0);
  skip_to (monitor, "mon/mark\tmark");
  skip_to (json_monitor, "{\"channel\":\"mon/mark\"");

  g_assert_cmpint (run_tool (NULL, NULL, "send", "--address", address,
                             "nobody/listens", "hello", "[1, 2]", NULL), ==, 0);
  g_assert_cmpint (run_tool (NULL, NULL, "send", "--address", address, "--json",
                             "mon/other", "j", "{\"a\": \"b\"}", NULL), ==, 0);
  line = read_line (monitor);
  g_assert_cmpstr (line, ==, "nobody/listens\thello\t[1, 2]");
  g_free (line);
  line = read_line (monitor);
  g_assert_cmpstr (line, ==, "mon/other\tj\t{'a': <'b'>}");
  g_free (line);

  line = read_line (json_monitor);
  g_assert_true (g_str_has_prefix (line, "{\"channel\":\"nobody/listens\",\"message\":\"hello\",\"data\":[1,2],\"type\":\"ai\",\"time\":"));
  g_free (line);
  line = read_line (json_monitor);
  g_assert_true (g_str_has_prefix (line, "{\"channel\":\"mon/other\",\"message\":\"j\",\"data\":{\"a\":\"b\"},\"type\":\"a{sv}\",\"time\":"));

  g_subprocess_send_signal (monitor, SIGTERM);
  g_subprocess_send_signal (json_monitor, SIGINT);
  g_assert_cmpint (wait_exit (monitor), ==, 0);
  g_assert_cmpint (wait_exit (json_monitor), ==, 0);
}

static void
test_malformed_data (Fixture       *fixture,
                     gconstpointer  data)
{
  const char *address = fixture->address;
  g_autofree char *err = NULL;

  /* GVariant text: the message has the byte position, and underlines it. */
  g_assert_cmpint (run_tool (NULL, &err, "send", "--address", address, "a", "m", "(1, \"x\"", NULL),
                   ==, EXIT_BAD_DATA);
  g_assert_nonnull (strstr (err, "Malformed GVariant text: 7:"));
  g_assert_nonnull (strstr (err, "         ^"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run_tool (NULL, &err, "send", "--address", address, "a", "m", "[1, foo]", NULL),
                   ==, EXIT_BAD_DATA);
  g_assert_nonnull (strstr (err, "4-7:unknown keyword"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run_tool (NULL, &err, "send", "--address", address, "--type", "i",
                             "a", "m", "'text'", NULL), ==, EXIT_BAD_DATA);
  g_clear_pointer (&err, g_free);

  /* JSON: line and column. */
  g_assert_cmpint (run_tool (NULL, &err, "send", "--address", address, "--json",
                             "a", "m", "{\"a\": 1,\n \"b\": }", NULL), ==, EXIT_BAD_DATA);
  g_assert_nonnull (strstr (err, "Malformed JSON: <data>:2:"));
  g_clear_pointer (&err, g_free);
  /* JSON that does not fit --type: where, and why. */
  g_assert_cmpint (run_tool (NULL, &err, "send", "--address", address, "--json", "--type", "a{si}",
                             "a", "m", "{\"a\": 1, \"b\": \"x\"}", NULL), ==, EXIT_BAD_DATA);
  g_assert_nonnull (strstr (err, "At data.b: type \"i\" needs an integer, not a string"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run_tool (NULL, &err, "send", "--address", address, "--json", "--type", "y",
                             "a", "m", "256", NULL), ==, EXIT_BAD_DATA);
  g_assert_nonnull (strstr (err, "out of the range"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run_tool (NULL, &err, "send", "--address", address, "--json", "--type", "ay",
                             "a", "m", "\"not base64!\"", NULL), ==, EXIT_BAD_DATA);
  g_assert_nonnull (strstr (err, "base64"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run_tool (NULL, &err, "send", "--address", address, "--json", "--type", "(is)",
                             "a", "m", "[1]", NULL), ==, EXIT_BAD_DATA);
  g_assert_nonnull (strstr (err, "needs an array of 2 items, not 1"));
  g_clear_pointer (&err, g_free);
  /* Two names of one key (found by fuzz-json-messages). */
  g_assert_cmpint (run_tool (NULL, &err, "send", "--address", address, "--json", "--type", "a{ys}",
                             "a", "m", "{\"8\": \"x\", \"08\": \"y\"}", NULL), ==, EXIT_BAD_DATA);
  g_assert_nonnull (strstr (err, "At data.08: a key given twice"));
  g_clear_pointer (&err, g_free);
  /* One name twice: json-glib would keep the last, silently. */
  g_assert_cmpint (run_tool (NULL, &err, "send", "--address", address, "--json",
                             "a", "m", "{\"k\": 1, \"n\": {\"k\": 2, \"k\": 3}}", NULL), ==, EXIT_BAD_DATA);
  g_assert_nonnull (strstr (err, "Malformed JSON: <data>:1:"));
  g_assert_nonnull (strstr (err, ": key \"k\" is given twice"));
  g_clear_pointer (&err, g_free);
  /* json-glib would read on after the first value, and keep it. */
  g_assert_cmpint (run_tool (NULL, &err, "send", "--address", address, "--json",
                             "a", "m", "[1] [2]", NULL), ==, EXIT_BAD_DATA);
  g_assert_nonnull (strstr (err, "Text after the JSON value, at byte 4"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run_tool (NULL, &err, "send", "--address", address, "--json",
                             "a", "m", "var x = [1]", NULL), ==, EXIT_BAD_DATA);
  g_assert_nonnull (strstr (err, "an assignment"));
  g_clear_pointer (&err, g_free);

  /* Names are usage errors. */
  g_assert_cmpint (run_tool (NULL, &err, "send", "--address", address, "a//b", "m", NULL),
                   ==, EXIT_USAGE);
  g_assert_nonnull (strstr (err, "Invalid channel name"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run_tool (NULL, &err, "listen", "--address", address, "a/**/b", NULL),
                   ==, EXIT_USAGE);
}

/* `qipc send --json ADDRESS a m -` with @json on standard input; its
 * exit status, with what it wrote to stderr in @err. */
static int
send_json_on_stdin (const char  *address,
                    const char  *json,
                    char       **err)
{
  const char *argv[] = { tool (), "send", "--address", address, "--json", "a", "m", "-", NULL };
  g_autoptr(GSubprocess) process = spawn_strv (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                                               argv);
  g_autoptr(GError) error = NULL;

  g_subprocess_communicate_utf8 (process, json, NULL, NULL, err, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (process));
  return g_subprocess_get_exit_status (process);
}

/* Data nested deeper than GVariant carries is refused with a message,
 * in every form, and nothing crashes: GVariant text that deep made the
 * tool dereference NULL, and JSON that deep overflowed json-glib's
 * stack, also when json-glib's comments hid a quote from the count. */
static void
test_too_deep (Fixture       *fixture,
               gconstpointer  data)
{
  const char *address = fixture->address;
  g_autofree char *variants = qipc_test_nest ("<", "1", ">", 200);
  g_autofree char *objects = qipc_test_nest ("{\"a\": ", "1", "}", 60);
  g_autofree char *arrays = qipc_test_nest ("[", "", "]", 200000);
  g_autofree char *commented = g_strconcat ("/ \" / ", arrays, NULL);
  g_autofree char *err = NULL;

  g_assert_cmpint (run_tool (NULL, &err, "send", "--address", address, "a", "m", variants, NULL),
                   ==, EXIT_BAD_DATA);
  g_assert_nonnull (strstr (err, "Malformed GVariant text: variant nested too deeply"));
  g_clear_pointer (&err, g_free);
  /* Each JSON object is three levels of GVariant (a{sv}). */
  g_assert_cmpint (run_tool (NULL, &err, "send", "--address", address, "--json", "a", "m", objects, NULL),
                   ==, EXIT_FAILED);
  g_assert_nonnull (strstr (err, "The data nests deeper than GVariant carries (128 levels)"));
  g_clear_pointer (&err, g_free);

  g_assert_cmpint (send_json_on_stdin (address, arrays, &err), ==, EXIT_BAD_DATA);
  g_assert_nonnull (strstr (err, "JSON nested deeper than 128 levels"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (send_json_on_stdin (address, commented, &err), ==, EXIT_BAD_DATA);
  g_assert_nonnull (strstr (err, "A comment or a string in single quotes at byte 0: JSON has neither"));
}

static void
test_no_broker (void)
{
  g_autofree char *err = NULL;
  g_autofree char *nowhere = unique_address ("nowhere");

  g_assert_cmpint (run_tool (NULL, &err, "send", "--address", nowhere, "a", "m", NULL),
                   ==, EXIT_NO_BROKER);
  g_assert_nonnull (strstr (err, "Cannot connect to the broker"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run_tool (NULL, NULL, "send", "--address", "unix:path=/nonexistent/qipc/bus",
                             "a", "m", NULL), ==, EXIT_NO_BROKER);
  g_assert_cmpint (run_tool (NULL, NULL, "listen", "--address", nowhere, "a", NULL), ==, EXIT_NO_BROKER);
  g_assert_cmpint (run_tool (NULL, NULL, "monitor", "--address", nowhere, NULL), ==, EXIT_NO_BROKER);
  g_assert_cmpint (run_tool (NULL, NULL, "channels", "--address", nowhere, NULL), ==, EXIT_NO_BROKER);
  g_assert_cmpint (run_tool (NULL, NULL, "is-registered", "--address", nowhere, "a", NULL), ==, EXIT_NO_BROKER);
  /* The default address is the environment's, here one without a broker. */
  g_assert_cmpint (run_tool (NULL, NULL, "is-registered", "a", NULL), ==, EXIT_NO_BROKER);

  g_assert_cmpint (run_tool (NULL, &err, "send", "--address", "carrier-pigeon:x", "a", "m", NULL),
                   ==, EXIT_USAGE);
  g_assert_nonnull (strstr (err, "Invalid bus address"));
}

/* The same commands on a D-Bus bus: a private dbus-daemon of the test. */
static void
test_dbus (void)
{
  static const char * const daemon_argv[] = {
    "dbus-daemon", "--session", "--nofork", "--nosyslog", "--print-address=1", NULL
  };
  g_autoptr(GSubprocess) daemon = spawn_strv (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                              G_SUBPROCESS_FLAGS_STDERR_SILENCE, daemon_argv);
  g_autofree char *printed = read_line (daemon);
  g_autofree char *address = g_strconcat ("dbus:address=", printed, NULL);
  g_autoptr(GSubprocess) listener = NULL;
  g_autofree char *out = NULL;
  g_autofree char *line = NULL;

  listener = spawn_tool ("listen", "--address", address, "--count", "2", "dbus/*", NULL);
  wait_registered (address, "dbus/x");
  g_assert_cmpint (run_tool (NULL, NULL, "is-registered", "--address", address, "dbus/x/y", NULL),
                   ==, EXIT_FALSE);
  g_assert_cmpint (run_tool (&out, NULL, "channels", "--address", address, NULL), ==, 0);
  g_assert_cmpstr (out, ==, "dbus/*\t1\n");
  g_assert_cmpint (run_tool (NULL, NULL, "send", "--address", address,
                             "dbus/x", "tuple", "(1, \"x\")", NULL), ==, 0);
  g_assert_cmpint (run_tool (NULL, NULL, "send", "--address", address,
                             "dbus/y", "maybe", "@ms nothing", NULL), ==, 0);
  line = read_line (listener);
  g_assert_cmpstr (line, ==, "dbus/x\ttuple\t(1, 'x')");
  g_free (line);
  line = read_line (listener);
  g_assert_cmpstr (line, ==, "dbus/y\tmaybe\t@ms nothing");
  g_assert_cmpint (wait_exit (listener), ==, 0);
  g_assert_cmpint (run_tool (NULL, NULL, "send", "--address", "dbus:address=unix:path=/nonexistent/bus",
                             "a", "m", NULL), ==, EXIT_NO_BROKER);
  g_subprocess_force_exit (daemon);
  g_subprocess_wait (daemon, NULL, NULL);
}

/* Clients on TCP (which is TLS) are anonymous: a policy can let them
 * send on some channels only, and not monitor. */
static void
test_permission_denied (void)
{
  g_autofree char *dir = g_dir_make_tmp ("qipc-test-cli-tls-XXXXXX", NULL);
  g_autofree char *cert = g_build_filename (dir, "cert.pem", NULL);
  g_autofree char *key = g_build_filename (dir, "key.pem", NULL);
  g_autofree char *both = g_build_filename (dir, "both.pem", NULL);
  g_autofree char *cert_text = NULL;
  g_autofree char *key_text = NULL;
  g_autofree char *both_text = NULL;
  g_autofree char *address = NULL;
  g_autofree char *untrusted = NULL;
  g_autoptr(GSubprocess) broker = NULL;
  g_autofree char *err = NULL;
  guint16 port = qipc_test_free_loopback_port ();

  /* One PEM file with the certificate and its key, as --tls-certificate
   * takes it without --tls-key. */
  g_assert_true (qipc_test_make_certificate (cert, key, "IP:127.0.0.1"));
  g_assert_true (g_file_get_contents (cert, &cert_text, NULL, NULL));
  g_assert_true (g_file_get_contents (key, &key_text, NULL, NULL));
  both_text = g_strconcat (cert_text, key_text, NULL);
  g_assert_true (g_file_set_contents (both, both_text, -1, NULL));
  address = g_strdup_printf ("tcp:host=127.0.0.1,port=%u,ca=%s", port, cert);
  untrusted = g_strdup_printf ("tcp:host=127.0.0.1,port=%u", port);
  broker = spawn_broker (address,
                         "{\"allow\": [{\"anonymous\": true, "
                         "\"send\": [\"public/*\"], \"receive\": [\"public/*\"]}]}",
                         both);

  g_assert_cmpint (run_tool (NULL, NULL, "send", "--address", address, "public/a", "m", NULL), ==, 0);
  g_assert_cmpint (run_tool (NULL, &err, "send", "--address", address, "private/a", "m", NULL),
                   ==, EXIT_DENIED);
  g_assert_nonnull (strstr (err, "qipc send: "));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run_tool (NULL, &err, "monitor", "--address", address, NULL), ==, EXIT_DENIED);
  g_assert_nonnull (strstr (err, "qipc monitor: "));
  g_clear_pointer (&err, g_free);
  /* Without ca=, the system's authorities do not vouch for the broker. */
  g_assert_cmpint (run_tool (NULL, &err, "send", "--address", untrusted, "public/a", "m", NULL),
                   ==, EXIT_FAILED);
  g_assert_nonnull (strstr (err, "TLS handshake"));

  g_subprocess_send_signal (broker, SIGTERM);
  g_assert_cmpint (wait_exit (broker), ==, 0);
  g_unlink (cert);
  g_unlink (key);
  g_unlink (both);
  g_rmdir (dir);
}

/* qipc broker serves as qipc-broker does, and stops on SIGTERM. */
static void
test_broker_command (void)
{
  g_autofree char *address = unique_address ("own");
  g_autoptr(GSubprocess) broker = NULL;
  g_autoptr(GSubprocess) listener = NULL;
  g_autofree char *line = NULL;
  const char *argv[] = { tool (), "broker", "--quiet", "--address", address, NULL };

  broker = spawn_strv (G_SUBPROCESS_FLAGS_STDERR_SILENCE, argv);
  wait_for_broker (address);
  listener = spawn_tool ("listen", "--address", address, "--count", "1", "own/*", NULL);
  wait_registered (address, "own/x");
  g_assert_cmpint (run_tool (NULL, NULL, "send", "--address", address, "own/x", "m", "@as []", NULL), ==, 0);
  line = read_line (listener);
  g_assert_cmpstr (line, ==, "own/x\tm\t@as []");
  g_assert_cmpint (wait_exit (listener), ==, 0);

  /* A second broker at the same address is refused. */
  g_assert_cmpint (run_tool (NULL, NULL, "broker", "--quiet", "--address", address, NULL), !=, 0);

  g_subprocess_send_signal (broker, SIGTERM);
  g_assert_cmpint (wait_exit (broker), ==, 0);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/cli/usage", test_usage);
  g_test_add ("/cli/send-listen/text", Fixture, NULL, fixture_set_up, test_text_round_trip, fixture_tear_down);
  g_test_add ("/cli/send-listen/json", Fixture, NULL, fixture_set_up, test_json_round_trip, fixture_tear_down);
  g_test_add ("/cli/send-listen/json-unsupported", Fixture, NULL, fixture_set_up, test_json_unsupported,
              fixture_tear_down);
  g_test_add ("/cli/listen/stops", Fixture, NULL, fixture_set_up, test_listen_stops, fixture_tear_down);
  g_test_add ("/cli/is-registered-and-channels", Fixture, NULL, fixture_set_up,
              test_is_registered_and_channels, fixture_tear_down);
  g_test_add ("/cli/monitor", Fixture, NULL, fixture_set_up, test_monitor, fixture_tear_down);
  g_test_add ("/cli/errors/malformed-data", Fixture, NULL, fixture_set_up, test_malformed_data, fixture_tear_down);
  g_test_add ("/cli/errors/too-deep", Fixture, NULL, fixture_set_up, test_too_deep, fixture_tear_down);
  g_test_add_func ("/cli/errors/no-broker", test_no_broker);
  g_test_add_func ("/cli/errors/permission-denied", test_permission_denied);
  g_test_add_func ("/cli/broker", test_broker_command);
  g_test_add_func ("/cli/dbus", test_dbus);

  return g_test_run ();
}
