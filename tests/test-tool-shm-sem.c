/* test-tool-shm-sem.c: the `qipc shm` and `qipc sem` commands, run as
 * programs against segments and semaphores that other processes hold
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * $QIPC_TOOL is the qipc program to run.
 */
#include "test-utils.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <json-glib/json-glib.h>
#include <signal.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct
{
  int status;
  char *out;
  char *err;
} Run;

static void
run_free (Run *run)
{
  g_free (run->out);
  g_free (run->err);
  g_free (run);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Run, run_free)

static gboolean as_nobody;

static void
become_nobody (gpointer user_data)
{
  if (setgroups (0, NULL) < 0 || setgid (65534) < 0 || setuid (65534) < 0)
    _exit (99);
}

static GSubprocessLauncher *
new_launcher (GSubprocessFlags flags)
{
  GSubprocessLauncher *launcher = g_subprocess_launcher_new (flags);

  if (as_nobody)
    g_subprocess_launcher_set_child_setup (launcher, become_nobody, NULL, NULL);
  return launcher;
}

static GPtrArray *
tool_argv (const char *first_arg,
           va_list     args)
{
  GPtrArray *argv = g_ptr_array_new ();
  const char *tool = g_getenv ("QIPC_TOOL");

  g_assert_nonnull (tool);
  g_ptr_array_add (argv, (char *) tool);
  for (const char *arg = first_arg; arg != NULL; arg = va_arg (args, const char *))
    g_ptr_array_add (argv, (char *) arg);
  g_ptr_array_add (argv, NULL);
  return argv;
}

/* Runs the tool to its end with @input on its standard input. */
static Run * G_GNUC_NULL_TERMINATED
run_with_input (const char *input,
                const char *first_arg,
                ...)
{
  g_autoptr(GSubprocessLauncher) launcher =
    new_launcher (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                  G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GPtrArray) argv = NULL;
  g_autoptr(GError) error = NULL;
  Run *run = g_new0 (Run, 1);
  va_list args;

  va_start (args, first_arg);
  argv = tool_argv (first_arg, args);
  va_end (args);

  process = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (process, input != NULL ? input : "", NULL,
                                 &run->out, &run->err, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (process));
  run->status = g_subprocess_get_exit_status (process);
  g_test_message ("exit %d, stdout: %s, stderr: %s", run->status, run->out, run->err);
  return run;
}

#define run_tool(...) run_with_input (NULL, __VA_ARGS__)

/* Checks the exit status, and that a failure says why on stderr only. */
static void
assert_status (Run *run,
               int  status)
{
  g_assert_cmpint (run->status, ==, status);
  if (status >= 2)
    {
      g_assert_true (g_str_has_prefix (run->err, "qipc"));
      g_assert_cmpstr (run->out, ==, "");
    }
}

static void
expect_status (int status,
               const char *first_arg,
               ...)
{
  g_autoptr(GPtrArray) argv = NULL;
  g_autoptr(GString) line = g_string_new (NULL);
  va_list args;

  va_start (args, first_arg);
  argv = tool_argv (first_arg, args);
  va_end (args);
  for (guint i = 1; i + 1 < argv->len; i++)
    g_string_append_printf (line, "%s ", (char *) argv->pdata[i]);

  {
    g_autoptr(GSubprocessLauncher) launcher =
      new_launcher (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
    g_autoptr(GSubprocess) process = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *out = NULL, *err = NULL;

    process = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
    g_assert_no_error (error);
    g_subprocess_communicate_utf8 (process, NULL, NULL, &out, &err, &error);
    g_assert_no_error (error);
    g_test_message ("%s→ exit %d, stderr: %s", line->str, g_subprocess_get_exit_status (process), err);
    g_assert_true (g_subprocess_get_if_exited (process));
    g_assert_cmpint (g_subprocess_get_exit_status (process), ==, status);
    if (status >= 2)
      {
        /* "qipc shm create: …", as every command of the tool says it;
         * a usage error also says where the help is. */
        g_autofree char *prefix = g_strdup_printf ("qipc %s", (char *) argv->pdata[1]);

        g_assert_true (g_str_has_prefix (err, prefix));
        g_assert_nonnull (strstr (err, ": "));
        if (status == 2)
          g_assert_true (g_str_has_suffix (err, " --help)\n"));
        g_assert_cmpstr (out, ==, "");
      }
  }
}

/* A tool command that stays running (create): started with its stdout
 * readable line by line. */
typedef struct
{
  GSubprocess *process;
  GDataInputStream *output;
} Background;

static void
background_free (Background *background)
{
  g_clear_object (&background->output);
  g_clear_object (&background->process);
  g_free (background);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Background, background_free)

static Background * G_GNUC_NULL_TERMINATED
start_tool (const char *first_arg,
            ...)
{
  g_autoptr(GSubprocessLauncher) launcher =
    new_launcher (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDIN_PIPE);
  g_autoptr(GPtrArray) argv = NULL;
  g_autoptr(GError) error = NULL;
  Background *background = g_new0 (Background, 1);
  va_list args;

  va_start (args, first_arg);
  argv = tool_argv (first_arg, args);
  va_end (args);
  background->process = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  g_assert_no_error (error);
  background->output = g_data_input_stream_new (g_subprocess_get_stdout_pipe (background->process));
  return background;
}

static char *
background_read_line (Background *background)
{
  g_autoptr(GError) error = NULL;
  char *line = g_data_input_stream_read_line (background->output, NULL, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (line);
  return line;
}

static int
background_stop (Background *background,
                 int         signum)
{
  g_autoptr(GError) error = NULL;

  g_subprocess_send_signal (background->process, signum);
  g_subprocess_wait (background->process, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (background->process));
  return g_subprocess_get_exit_status (background->process);
}

static JsonNode *
parse_json (const char *text)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;

  json_parser_load_from_data (parser, text, -1, &error);
  g_assert_no_error (error);
  return json_node_copy (json_parser_get_root (parser));
}

/* The object of a `list --json` array whose "key" is @key, or NULL. */
static JsonObject *
find_in_list (JsonNode   *root,
              const char *key)
{
  JsonArray *array;

  g_assert_true (JSON_NODE_HOLDS_ARRAY (root));
  array = json_node_get_array (root);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonObject *object = json_array_get_object_element (array, i);

      if (!json_object_get_null_member (object, "key") &&
          g_strcmp0 (json_object_get_string_member (object, "key"), key) == 0)
        return object;
    }
  return NULL;
}

/* ---- shm --------------------------------------------------------------- */

/* A segment whose users all died is freed by the next create anywhere on
 * the machine (another test, another program), so it may go before the
 * test removes or lists it. */
static gboolean
segment_file_exists (const char *key)
{
  g_autoptr(QipcSharedMemory) shm = qipc_shared_memory_new (key);

  return g_file_test (qipc_shared_memory_get_native_key (shm), G_FILE_TEST_EXISTS);
}

static void
remove_stale (const char *key)
{
  g_autoptr(Run) run = run_tool ("shm", "rm", key, NULL);

  if (run->status == 6 && !segment_file_exists (key))
    g_test_message ("%s was swept before rm", key);
  else
    assert_status (run, 0);
  g_assert_false (segment_file_exists (key));
}

static void
test_shm_help_and_usage (void)
{
  const char *commands[] = { "create", "info", "read", "write", "rm", "list" };

  {
    g_autoptr(Run) run = run_tool ("shm", "--help", NULL);

    assert_status (run, 0);
    for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
      g_assert_nonnull (strstr (run->out, commands[i]));
    g_assert_nonnull (strstr (run->out, "Exit status"));
  }
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    {
      g_autoptr(Run) run = run_tool ("shm", commands[i], "--help", NULL);
      g_autofree char *usage = g_strdup_printf ("qipc shm %s", commands[i]);

      assert_status (run, 0);
      g_assert_nonnull (strstr (run->out, usage));
      g_assert_nonnull (strstr (run->out, "Exit status"));
    }

  expect_status (2, "shm", NULL);
  expect_status (2, "shm", "frobnicate", NULL);
  expect_status (2, "shm", "create", "only-a-key", NULL);
  expect_status (2, "shm", "info", NULL);
  expect_status (2, "shm", "info", "a", "b", NULL);
  expect_status (2, "shm", "read", "--no-such-option", "k", NULL);
  expect_status (2, "shm", "list", "extra", NULL);
}

static void
test_shm_create (void)
{
  g_autofree char *key = qipc_test_key ("tool-create");
  g_autofree char *native = NULL;
  g_autoptr(Background) creator = start_tool ("shm", "create", key, "8K", "--mode=0640", NULL);
  g_autoptr(Run) zeroes = NULL;
  g_autoptr(Run) info = NULL;
  struct stat st;

  native = background_read_line (creator);
  g_assert_true (g_str_has_prefix (native, "/dev/shm/qipc-shm-"));
  g_assert_cmpint (stat (native, &st), ==, 0);
  g_assert_cmpuint (st.st_mode & 0777, ==, 0640);

  /* Another program sees it, zeroed, of the size asked for. */
  zeroes = run_tool ("shm", "read", key, "--hex", "--offset=8189", NULL);
  assert_status (zeroes, 0);
  g_assert_cmpstr (zeroes->out, ==, "000000\n");
  info = run_tool ("shm", "info", key, NULL);
  assert_status (info, 0);
  g_assert_nonnull (strstr (info->out, "\nsize: 8192\n"));

  /* Taken while the creator holds it. */
  expect_status (6, "shm", "create", key, "4096", NULL);

  /* The creator stays attached until told to stop, and then it is gone. */
  g_assert_cmpint (background_stop (creator, SIGTERM), ==, 0);
  expect_status (6, "shm", "info", key, NULL);

  /* Bad input. */
  expect_status (3, "shm", "create", key, "0", NULL);
  expect_status (3, "shm", "create", key, "12Q", NULL);
  expect_status (3, "shm", "create", key, "2T", NULL);
  expect_status (3, "shm", "create", key, "4096", "--mode=999", NULL);
  expect_status (3, "shm", "create", "", "4096", NULL);
  expect_status (3, "shm", "create", key, "4096", "--file=/nonexistent/file", NULL);
  expect_status (3, "shm", "create", key, "4", "--file=/etc/passwd", NULL);
}

static void
test_shm_create_from_file (void)
{
  g_autofree char *key = qipc_test_key ("tool-create-file");
  g_autofree char *path = NULL;
  g_autofree char *native = NULL;
  g_autoptr(Background) creator = NULL;
  g_autoptr(Run) read = NULL;
  g_autoptr(GError) error = NULL;
  int fd = g_file_open_tmp ("qipc-tool-XXXXXX", &path, &error);

  g_assert_no_error (error);
  g_assert_cmpint (write (fd, "from a file", 11), ==, 11);
  close (fd);

  creator = start_tool ("shm", "create", key, "100", "--file", path, "--prefault", NULL);
  native = background_read_line (creator);
  read = run_tool ("shm", "read", key, "--length=11", NULL);
  assert_status (read, 0);
  g_assert_cmpstr (read->out, ==, "from a file");
  g_assert_cmpint (background_stop (creator, SIGINT), ==, 0);
  unlink (path);
}

static void
test_shm_info (void)
{
  g_autofree char *key = qipc_test_key ("tool-info");
  g_autoptr(QipcTestChild) holder = qipc_test_child_spawn ("shm-create", key, "4096", "hello", NULL);
  g_autoptr(QipcTestChild) attached = NULL;
  g_autoptr(Run) info = NULL;
  g_autoptr(Run) json = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *expected_key = NULL;
  JsonObject *object;

  qipc_test_child_expect (holder, "ready");
  attached = qipc_test_child_spawn ("shm-attach", key, NULL);
  qipc_test_child_expect (attached, "attached");

  info = run_tool ("shm", "info", key, NULL);
  assert_status (info, 0);
  expected_key = g_strdup_printf ("key: %s\n", key);
  g_assert_true (g_str_has_prefix (info->out, expected_key));
  g_assert_nonnull (strstr (info->out, "\nfile: /dev/shm/qipc-shm-"));
  g_assert_nonnull (strstr (info->out, "\nsize: 4096\n"));
  g_assert_nonnull (strstr (info->out, "\nmode: 0600\n"));
  g_assert_nonnull (strstr (info->out, "\nusers: 2\n"));
  g_assert_nonnull (strstr (info->out, "\nstate: live\n"));

  json = run_tool ("shm", "info", "--json", key, NULL);
  assert_status (json, 0);
  root = parse_json (json->out);
  object = json_node_get_object (root);
  g_assert_cmpstr (json_object_get_string_member (object, "key"), ==, key);
  g_assert_cmpint (json_object_get_int_member (object, "size"), ==, 4096);
  g_assert_cmpint (json_object_get_int_member (object, "users"), ==, 2);
  g_assert_cmpstr (json_object_get_string_member (object, "mode"), ==, "0600");
  g_assert_cmpstr (json_object_get_string_member (object, "state"), ==, "live");

  /* Users that die stop counting. */
  qipc_test_child_kill (attached);
  {
    g_autoptr(Run) again = run_tool ("shm", "info", key, NULL);

    g_assert_nonnull (strstr (again->out, "\nusers: 1\n"));
  }

  /* Once the last user is dead, there is nothing to describe. */
  qipc_test_child_kill (holder);
  expect_status (6, "shm", "info", key, NULL);
  remove_stale (key);
  expect_status (6, "shm", "info", "qipc-test/never-created", NULL);
  expect_status (3, "shm", "info", "", NULL);
}

static void
test_shm_read_write (void)
{
  g_autofree char *key = qipc_test_key ("tool-rw");
  g_autoptr(QipcTestChild) holder = qipc_test_child_spawn ("shm-create", key, "16", "hello", NULL);
  g_autoptr(QipcTestChild) watcher = NULL;

  qipc_test_child_expect (holder, "ready");

  {
    g_autoptr(Run) run = run_tool ("shm", "read", key, "-l", "5", NULL);

    assert_status (run, 0);
    g_assert_cmpstr (run->out, ==, "hello");
  }
  {
    g_autoptr(Run) run = run_tool ("shm", "read", key, "--hex", NULL);

    assert_status (run, 0);
    g_assert_cmpstr (run->out, ==, "68656c6c6f0000000000000000000000\n");
  }

  /* A write wakes the other users. */
  watcher = qipc_test_child_spawn ("shm-wait-changed", key, "1", NULL);
  qipc_test_child_expect (watcher, "attached");
  expect_status (0, "shm", "write", key, "HE", NULL);
  qipc_test_child_expect (watcher, "changed");
  g_assert_cmpint (qipc_test_child_wait (watcher), ==, 0);

  expect_status (0, "shm", "write", key, "--offset=2", "--hex", "4c4C", "--no-notify", NULL);
  {
    g_autoptr(Run) run = run_with_input ("o!", "shm", "write", key, "--offset", "4", NULL);

    assert_status (run, 0);
  }
  {
    g_autoptr(Run) run = run_with_input ("2121\n", "shm", "write", key, "-o", "6", "-x", "--no-lock", NULL);

    assert_status (run, 0);
  }
  {
    g_autoptr(Run) run = run_tool ("shm", "read", key, "--offset=1", "--length=7", NULL);

    assert_status (run, 0);
    g_assert_cmpstr (run->out, ==, "ELLo!!!");
  }

  /* Ranges and data that do not fit. */
  expect_status (3, "shm", "read", key, "--offset=10", "--length=7", NULL);
  expect_status (3, "shm", "read", key, "--offset=x", NULL);
  expect_status (3, "shm", "write", key, "--offset=10", "more than six bytes", NULL);
  expect_status (3, "shm", "write", key, "--hex", "abc", NULL);
  expect_status (3, "shm", "write", key, "--hex", "zz", NULL);
  expect_status (3, "shm", "write", key, "--file=/nonexistent/file", NULL);
  expect_status (2, "shm", "write", key, "data", "--file=/etc/hostname", NULL);
  expect_status (6, "shm", "read", "qipc-test/never-created", NULL);
  expect_status (6, "shm", "write", "qipc-test/never-created", "x", NULL);

  /* A lock that stays taken: a timed-out wait is a false answer. */
  {
    g_autoptr(QipcTestChild) locker = qipc_test_child_spawn ("shm-lock", key, NULL);

    qipc_test_child_expect (locker, "locked");
    expect_status (1, "shm", "write", key, "--timeout=50", "x", NULL);
    qipc_test_child_kill (locker);
  }
  /* The lock of a dead holder is recovered. */
  expect_status (0, "shm", "write", key, "--timeout=5000", "x", NULL);

  qipc_test_child_kill (holder);
  remove_stale (key);
}

static void
test_shm_rm (void)
{
  g_autofree char *key = qipc_test_key ("tool-rm");
  g_autofree char *stale_key = qipc_test_key ("tool-rm-stale");
  g_autoptr(QipcTestChild) holder = qipc_test_child_spawn ("shm-create", key, "4096", "x", NULL);
  g_autoptr(QipcTestChild) crashed = qipc_test_child_spawn ("shm-create", stale_key, "4096", "x", NULL);
  g_autoptr(QipcSharedMemory) shm = qipc_shared_memory_new (key);
  g_autoptr(GError) error = NULL;

  qipc_test_child_expect (holder, "ready");
  qipc_test_child_expect (crashed, "ready");

  /* A live segment stays unless forced. */
  {
    g_autoptr(Run) run = run_tool ("shm", "rm", key, NULL);

    assert_status (run, 6);
    g_assert_nonnull (strstr (run->err, "1 process(es) use it"));
  }
  g_assert_true (g_file_test (qipc_shared_memory_get_native_key (shm), G_FILE_TEST_EXISTS));
  expect_status (0, "shm", "rm", "--force", key, NULL);
  g_assert_false (g_file_test (qipc_shared_memory_get_native_key (shm), G_FILE_TEST_EXISTS));
  g_assert_false (qipc_shared_memory_attach (shm, QIPC_SHARED_MEMORY_ACCESS_READ_ONLY, &error));
  g_assert_error (error, QIPC_SHARED_MEMORY_ERROR, QIPC_SHARED_MEMORY_ERROR_NOT_FOUND);
  qipc_test_child_kill (holder);

  /* A segment whose users all died goes without --force. */
  qipc_test_child_kill (crashed);
  remove_stale (stale_key);
  expect_status (6, "shm", "rm", stale_key, NULL);
  expect_status (3, "shm", "rm", "", NULL);
}

static void
test_shm_list (void)
{
  g_autofree char *key = qipc_test_key ("tool-list");
  g_autofree char *odd_key = qipc_test_key ("tool-list\tline\nbreak");
  g_autofree char *stale_key = qipc_test_key ("tool-list-stale");
  g_autofree char *old_key = qipc_test_key ("tool-list-old");
  g_autoptr(QipcTestChild) holder = qipc_test_child_spawn ("shm-create", key, "4096", "x", NULL);
  g_autoptr(QipcTestChild) odd = qipc_test_child_spawn ("shm-create", odd_key, "100", "x", NULL);
  g_autoptr(QipcTestChild) crashed = qipc_test_child_spawn ("shm-create", stale_key, "4096", "x", NULL);
  g_autoptr(QipcTestChild) old = qipc_test_child_spawn ("shm-create", old_key, "4096", "x", NULL);
  g_autoptr(QipcTestChild) attached = NULL;
  g_autoptr(QipcSharedMemory) old_shm = qipc_shared_memory_new (old_key);
  g_autoptr(Run) table = NULL;
  g_autoptr(Run) json = NULL;
  g_autoptr(Run) json_all = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(JsonNode) root_all = NULL;
  g_autofree char *escaped = NULL;
  g_autofree char *row = NULL;
  JsonObject *object;
  gboolean found_old = FALSE;
  int fd;

  qipc_test_child_expect (holder, "ready");
  qipc_test_child_expect (odd, "ready");
  qipc_test_child_expect (crashed, "ready");
  qipc_test_child_expect (old, "ready");
  attached = qipc_test_child_spawn ("shm-attach", key, NULL);
  qipc_test_child_expect (attached, "attached");
  qipc_test_child_kill (crashed);

  /* A segment made before keys were recorded: no record in its header. */
  fd = open (qipc_shared_memory_get_native_key (old_shm), O_RDWR);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (pwrite (fd, "\0\0\0\0\0\0\0\0", 8, 1024), ==, 8);
  close (fd);

  table = run_tool ("shm", "list", NULL);
  assert_status (table, 0);
  g_assert_true (g_str_has_prefix (table->out, "SIZE "));
  row = g_strdup_printf ("4096         2      0600  ");
  g_assert_nonnull (strstr (table->out, row));
  g_assert_nonnull (strstr (table->out, key));
  escaped = g_strescape (odd_key, NULL);
  g_assert_nonnull (strstr (table->out, escaped));
  g_assert_null (strstr (table->out, stale_key));
  g_assert_nonnull (strstr (table->out, "(unknown key)"));

  json = run_tool ("shm", "list", "--json", NULL);
  assert_status (json, 0);
  root = parse_json (json->out);
  object = find_in_list (root, key);
  g_assert_nonnull (object);
  g_assert_cmpint (json_object_get_int_member (object, "size"), ==, 4096);
  g_assert_cmpint (json_object_get_int_member (object, "users"), ==, 2);
  g_assert_cmpstr (json_object_get_string_member (object, "state"), ==, "live");
  g_assert_true (g_str_has_prefix (json_object_get_string_member (object, "file"), "/dev/shm/qipc-shm-"));
  object = find_in_list (root, odd_key);
  g_assert_nonnull (object);
  g_assert_cmpint (json_object_get_int_member (object, "size"), ==, 100);
  g_assert_null (find_in_list (root, stale_key));
  {
    JsonArray *array = json_node_get_array (root);

    for (guint i = 0; i < json_array_get_length (array); i++)
      {
        JsonObject *entry = json_array_get_object_element (array, i);

        if (g_strcmp0 (json_object_get_string_member (entry, "file"),
                       qipc_shared_memory_get_native_key (old_shm)) == 0)
          {
            g_assert_true (json_object_get_null_member (entry, "key"));
            g_assert_cmpint (json_object_get_int_member (entry, "users"), ==, 1);
            found_old = TRUE;
          }
      }
    g_assert_true (found_old);
  }

  /* --all shows the stale one too. */
  json_all = run_tool ("shm", "list", "--json", "--all", NULL);
  assert_status (json_all, 0);
  root_all = parse_json (json_all->out);
  object = find_in_list (root_all, stale_key);
  if (object != NULL)
    {
      g_assert_cmpint (json_object_get_int_member (object, "users"), ==, 0);
      g_assert_cmpstr (json_object_get_string_member (object, "state"), ==, "stale");
    }
  else
    {
      g_assert_false (segment_file_exists (stale_key));
      g_test_message ("%s was swept before list --all", stale_key);
    }

  qipc_test_child_kill (attached);
  qipc_test_child_kill (holder);
  qipc_test_child_kill (odd);
  qipc_test_child_kill (old);
  remove_stale (key);
  remove_stale (odd_key);
  remove_stale (stale_key);
  remove_stale (old_key);
}

static void
test_shm_permission_denied (void)
{
  g_autofree char *key = qipc_test_key ("tool-private");
  g_autoptr(Background) creator = NULL;
  g_autofree char *native = NULL;

  /* The creator of a segment needs read and write access to it (and to
   * its notification FIFOs), so the tool must run as another user: as
   * nobody, which needs root. */
  if (!qipc_test_is_root ())
    {
      g_test_skip ("needs root, to run the tool as nobody");
      return;
    }
  creator = start_tool ("shm", "create", key, "4096", NULL);
  native = background_read_line (creator);
  as_nobody = TRUE;

  expect_status (5, "shm", "read", key, NULL);
  expect_status (5, "shm", "write", key, "x", NULL);
  expect_status (5, "shm", "rm", "--force", key, NULL);
  as_nobody = FALSE;

  g_assert_cmpint (background_stop (creator, SIGTERM), ==, 0);
}

/* ---- sem --------------------------------------------------------------- */

static void
test_sem_help_and_usage (void)
{
  const char *commands[] = { "create", "acquire", "release", "rm", "list" };

  {
    g_autoptr(Run) run = run_tool ("sem", "--help", NULL);

    assert_status (run, 0);
    for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
      g_assert_nonnull (strstr (run->out, commands[i]));
  }
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    {
      g_autoptr(Run) run = run_tool ("sem", commands[i], "--help", NULL);
      g_autofree char *usage = g_strdup_printf ("qipc sem %s", commands[i]);

      assert_status (run, 0);
      g_assert_nonnull (strstr (run->out, usage));
      g_assert_nonnull (strstr (run->out, "Exit status"));
    }

  expect_status (2, "sem", NULL);
  expect_status (2, "sem", "frobnicate", NULL);
  expect_status (2, "sem", "acquire", NULL);
  expect_status (2, "sem", "release", "k", "1", "2", NULL);
  expect_status (2, "sem", "create", "--bogus", "k", NULL);
}

static void
test_sem_create_rm (void)
{
  g_autofree char *key = qipc_test_key ("tool-sem-create");
  g_autoptr(QipcSystemSemaphore) sem = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(Run) created = run_tool ("sem", "create", key, "--value=3", "--mode=0640", NULL);
  struct semid_ds ds;
  int semid;

  /* It outlives the command that created it. */
  assert_status (created, 0);
  g_assert_true (g_str_has_prefix (created->out, "0x"));
  semid = semget ((key_t) g_ascii_strtoull (created->out, NULL, 16), 0, 0);
  g_assert_cmpint (semid, >=, 0);
  g_assert_cmpint (semctl (semid, 0, IPC_STAT, &ds), ==, 0);
  g_assert_cmpuint (ds.sem_perm.mode & 0777, ==, 0640);

  sem = qipc_system_semaphore_new (key, 0, QIPC_SYSTEM_SEMAPHORE_ACCESS_OPEN, &error);
  g_assert_no_error (error);
  g_assert_cmpint (qipc_system_semaphore_get_value (sem, &error), ==, 3);

  expect_status (6, "sem", "create", key, NULL);
  expect_status (0, "sem", "rm", key, NULL);
  g_assert_cmpint (qipc_system_semaphore_get_value (sem, &error), ==, -1);
  g_assert_error (error, QIPC_SYSTEM_SEMAPHORE_ERROR, QIPC_SYSTEM_SEMAPHORE_ERROR_NOT_FOUND);
  expect_status (6, "sem", "rm", key, NULL);

  /* With --hold the command is the creator, and removes it when stopped. */
  {
    g_autoptr(Background) holder = start_tool ("sem", "create", "--hold", key, NULL);
    g_autofree char *native = background_read_line (holder);

    g_assert_cmpint (semget ((key_t) g_ascii_strtoull (native, NULL, 16), 0, 0), >=, 0);
    g_assert_cmpint (background_stop (holder, SIGTERM), ==, 0);
    g_assert_cmpint (semget ((key_t) g_ascii_strtoull (native, NULL, 16), 0, 0), <, 0);
    g_assert_cmpint (errno, ==, ENOENT);
  }

  expect_status (3, "sem", "create", key, "--value=32768", NULL);
  expect_status (3, "sem", "create", key, "--value=-1", NULL);
  expect_status (3, "sem", "create", key, "--mode=8", NULL);
  expect_status (3, "sem", "create", "", NULL);
  expect_status (3, "sem", "rm", "", NULL);
}

static void
test_sem_acquire_release (void)
{
  g_autofree char *key = qipc_test_key ("tool-sem-ops");
  g_autoptr(QipcTestChild) creator = qipc_test_child_spawn ("sem-create", key, "1", NULL);
  g_autoptr(QipcSystemSemaphore) sem = NULL;
  g_autoptr(GError) error = NULL;

  qipc_test_child_expect (creator, "created");
  sem = qipc_system_semaphore_new (key, 0, QIPC_SYSTEM_SEMAPHORE_ACCESS_OPEN, &error);
  g_assert_no_error (error);

  /* What the command acquires it has consumed when it exits. */
  expect_status (0, "sem", "acquire", key, NULL);
  g_assert_cmpint (qipc_system_semaphore_get_value (sem, NULL), ==, 0);
  expect_status (1, "sem", "acquire", key, "--timeout=50", NULL);

  expect_status (0, "sem", "release", key, "3", NULL);
  g_assert_cmpint (qipc_system_semaphore_get_value (sem, NULL), ==, 3);
  expect_status (0, "sem", "release", key, NULL);
  g_assert_cmpint (qipc_system_semaphore_get_value (sem, NULL), ==, 4);

  /* A partial acquisition that times out gives back what it took. */
  expect_status (1, "sem", "acquire", key, "--count=5", "--timeout=50", NULL);
  g_assert_cmpint (qipc_system_semaphore_get_value (sem, NULL), ==, 4);
  expect_status (0, "sem", "acquire", key, "-n", "3", "-t", "1000", NULL);
  g_assert_cmpint (qipc_system_semaphore_get_value (sem, NULL), ==, 1);

  /* A waiting acquire is woken by a release from elsewhere. */
  {
    g_autoptr(Background) waiter = start_tool ("sem", "acquire", key, "-n", "2", NULL);
    g_autoptr(GError) wait_error = NULL;

    while (semctl (semget ((key_t) g_ascii_strtoull (qipc_system_semaphore_get_native_key (sem), NULL, 16), 0, 0),
                   0, GETNCNT) < 1)
      g_usleep (1000);
    expect_status (0, "sem", "release", key, NULL);
    g_subprocess_wait_check (waiter->process, NULL, &wait_error);
    g_assert_no_error (wait_error);
    g_assert_cmpint (qipc_system_semaphore_get_value (sem, NULL), ==, 0);
  }

  expect_status (3, "sem", "acquire", key, "--count=0", NULL);
  expect_status (3, "sem", "acquire", key, "--timeout=soon", NULL);
  expect_status (3, "sem", "release", key, "x", NULL);
  expect_status (3, "sem", "release", key, "0", NULL);
  expect_status (0, "sem", "release", key, "32767", NULL);
  expect_status (6, "sem", "release", key, NULL);
  expect_status (6, "sem", "acquire", "qipc-test/never-created", NULL);
  expect_status (6, "sem", "release", "qipc-test/never-created", NULL);
  expect_status (3, "sem", "acquire", "", NULL);

  qipc_test_child_kill (creator);
  expect_status (0, "sem", "rm", key, NULL);
}

static void
test_sem_list (void)
{
  g_autofree char *key = qipc_test_key ("tool-sem-list");
  g_autofree char *left_key = qipc_test_key ("tool-sem-list-left");
  g_autoptr(QipcTestChild) creator = qipc_test_child_spawn ("sem-create", key, "3", NULL);
  g_autoptr(QipcTestChild) crashed = qipc_test_child_spawn ("sem-create", left_key, "0", NULL);
  g_autoptr(Run) table = NULL;
  g_autoptr(Run) json = NULL;
  g_autoptr(JsonNode) root = NULL;
  JsonObject *object;

  qipc_test_child_expect (creator, "created");
  qipc_test_child_expect (crashed, "created");
  qipc_test_child_kill (crashed);

  table = run_tool ("sem", "list", NULL);
  assert_status (table, 0);
  g_assert_true (g_str_has_prefix (table->out, "NATIVE "));
  g_assert_nonnull (strstr (table->out, key));
  g_assert_nonnull (strstr (table->out, "(alive)"));
  g_assert_nonnull (strstr (table->out, "(gone)"));

  json = run_tool ("sem", "list", "--json", NULL);
  assert_status (json, 0);
  root = parse_json (json->out);
  object = find_in_list (root, key);
  g_assert_nonnull (object);
  g_assert_cmpint (json_object_get_int_member (object, "value"), ==, 3);
  g_assert_cmpint (json_object_get_int_member (object, "waiters"), ==, 0);
  g_assert_cmpstr (json_object_get_string_member (object, "mode"), ==, "0600");
  g_assert_cmpint (json_object_get_int_member (object, "creator_pid"), ==,
                   qipc_test_child_get_pid (creator));
  g_assert_true (json_object_get_boolean_member (object, "creator_alive"));
  g_assert_true (g_str_has_prefix (json_object_get_string_member (object, "native_key"), "0x"));
  object = find_in_list (root, left_key);
  g_assert_nonnull (object);
  g_assert_false (json_object_get_boolean_member (object, "creator_alive"));

  /* Removed semaphores are not listed. */
  expect_status (0, "sem", "rm", left_key, NULL);
  {
    g_autoptr(Run) again = run_tool ("sem", "list", "--json", NULL);
    g_autoptr(JsonNode) again_root = parse_json (again->out);

    g_assert_nonnull (find_in_list (again_root, key));
    g_assert_null (find_in_list (again_root, left_key));
  }
  expect_status (0, "sem", "list", "--all", NULL);
  expect_status (2, "sem", "list", "extra", NULL);

  qipc_test_child_kill (creator);
  expect_status (0, "sem", "rm", key, NULL);
}

static void
test_sem_permission_denied (void)
{
  g_autofree char *key = qipc_test_key ("tool-sem-private");
  g_autoptr(Run) created = NULL;
  int semid;

  /* root passes every permission check: then the tool runs as nobody. */
  if (qipc_test_is_root ())
    created = run_tool ("sem", "create", key, "--value=1", NULL);
  else
    created = run_tool ("sem", "create", key, "--value=1", "--mode=0", NULL);
  assert_status (created, 0);
  as_nobody = qipc_test_is_root ();

  expect_status (5, "sem", "acquire", key, NULL);
  expect_status (5, "sem", "release", key, NULL);
  expect_status (5, "sem", "rm", key, NULL);
  as_nobody = FALSE;

  /* The creator may always remove it, whatever its mode. */
  semid = semget ((key_t) g_ascii_strtoull (created->out, NULL, 16), 0, 0);
  g_assert_cmpint (semid, >=, 0);
  g_assert_cmpint (semctl (semid, 0, IPC_RMID), ==, 0);
  /* A registration whose semaphore is gone is cleaned up on sight. */
  expect_status (6, "sem", "rm", key, NULL);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/tool/shm/help-and-usage", test_shm_help_and_usage);
  g_test_add_func ("/tool/shm/create", test_shm_create);
  g_test_add_func ("/tool/shm/create-from-file", test_shm_create_from_file);
  g_test_add_func ("/tool/shm/info", test_shm_info);
  g_test_add_func ("/tool/shm/read-write", test_shm_read_write);
  g_test_add_func ("/tool/shm/rm", test_shm_rm);
  g_test_add_func ("/tool/shm/list", test_shm_list);
  g_test_add_func ("/tool/shm/permission-denied", test_shm_permission_denied);
  g_test_add_func ("/tool/sem/help-and-usage", test_sem_help_and_usage);
  g_test_add_func ("/tool/sem/create-rm", test_sem_create_rm);
  g_test_add_func ("/tool/sem/acquire-release", test_sem_acquire_release);
  g_test_add_func ("/tool/sem/list", test_sem_list);
  g_test_add_func ("/tool/sem/permission-denied", test_sem_permission_denied);

  return g_test_run ();
}
