/* test-dbus-export.c: GObjects exported on D-Bus, remote D-Bus signals
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Everything runs on a private bus (GTestDBus) that the children and the
 * D-Bus tools (gdbus, dbus-send) reach through DBUS_SESSION_BUS_ADDRESS.
 */
#include "test-utils.h"
#include "test-counter.h"

#include <string.h>

#define COUNTER_INTERFACE "org.qipc.Object.QipcTestCounter"
#define WAIT_SECONDS 20

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

static GDBusConnection *
new_connection (void)
{
  g_autoptr(GError) error = NULL;
  GDBusConnection *connection =
    g_dbus_connection_new_for_address_sync (g_getenv ("DBUS_SESSION_BUS_ADDRESS"),
                                            G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                            G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                            NULL, NULL, &error);

  g_assert_no_error (error);
  return connection;
}

static char *
unique_path (const char *what)
{
  static guint counter;

  return g_strdup_printf ("/org/qipc/test/p%d/%s%u", (int) getpid (), what, counter++);
}

static char *
unique_bus_name (void)
{
  static guint counter;

  return g_strdup_printf ("org.qipc.Test.P%d.N%u", (int) getpid (), counter++);
}

/* Iterates the main context until @cond holds; fails the test after
 * qipc_test_add_deadline()'s 20 s instead of hanging. */
#define WAIT_UNTIL(cond) G_STMT_START {                                   \
    guint wait_deadline_ = qipc_test_add_deadline (#cond);                \
    while (!(cond))                                                       \
      g_main_context_iteration (NULL, TRUE);                              \
    g_source_remove (wait_deadline_);                                     \
  } G_STMT_END

/* Runs what is already queued on the main context. */
static void
drain_main_context (void)
{
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

/* Signals seen by a plain GDBus subscription. */
typedef struct
{
  GDBusConnection *connection;
  guint id;
  GPtrArray *received;   /* GVariant (sender, member, parameters) */
} Recorder;

static void
record_signal (GDBusConnection *connection,
               const char      *sender,
               const char      *object_path,
               const char      *interface_name,
               const char      *signal_name,
               GVariant        *parameters,
               gpointer         user_data)
{
  Recorder *recorder = user_data;

  g_ptr_array_add (recorder->received,
                   g_variant_ref_sink (g_variant_new ("(ss@*)", sender, signal_name, parameters)));
}

static Recorder *
recorder_new (GDBusConnection *connection,
              const char      *interface_name,
              const char      *object_path)
{
  Recorder *recorder = g_new0 (Recorder, 1);

  recorder->connection = g_object_ref (connection);
  recorder->received = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
  recorder->id = g_dbus_connection_signal_subscribe (connection, NULL, interface_name, NULL,
                                                     object_path, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                                     record_signal, recorder, NULL);
  return recorder;
}

static void
recorder_free (Recorder *recorder)
{
  g_dbus_connection_signal_unsubscribe (recorder->connection, recorder->id);
  g_ptr_array_unref (recorder->received);
  g_object_unref (recorder->connection);
  g_free (recorder);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Recorder, recorder_free)

/* The text of what @recorder received, "Member(args); …". */
static char *
recorder_text (Recorder *recorder)
{
  GString *text = g_string_new ("");

  for (guint i = 0; i < recorder->received->len; i++)
    {
      const char *member;
      g_autoptr(GVariant) parameters = NULL;
      g_autofree char *args = NULL;

      g_variant_get (g_ptr_array_index (recorder->received, i), "(&s&s@*)", NULL, &member, &parameters);
      args = g_variant_print (parameters, FALSE);
      g_string_append_printf (text, "%s%s%s", i > 0 ? "; " : "", member, args);
    }
  return g_string_free (text, FALSE);
}

/* Makes sure that whatever the bus routes to @connection's match rules
 * so far has been added: a round trip to the bus. */
static void
sync_with_bus (GDBusConnection *connection)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  g_dbus_connection_call (connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                          "org.freedesktop.DBus", "GetId", NULL, NULL, G_DBUS_CALL_FLAGS_NONE,
                          -1, NULL, qipc_test_store_result, &result);
  qipc_test_wait_for_result (&result);
  reply = g_dbus_connection_call_finish (connection, result, &error);
  g_assert_no_error (error);
}

static GVariant *
call (GDBusConnection *connection,
      const char      *destination,
      const char      *path,
      const char      *interface_name,
      const char      *method,
      GVariant        *parameters,
      GError         **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  g_dbus_connection_call (connection, destination, path, interface_name, method, parameters,
                          NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, qipc_test_store_result, &result);
  qipc_test_wait_for_result (&result);
  return g_dbus_connection_call_finish (connection, result, error);
}

static char *
introspect (GDBusConnection *connection,
            const char      *destination,
            const char      *path)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = call (connection, destination, path,
                                    "org.freedesktop.DBus.Introspectable", "Introspect",
                                    NULL, &error);
  char *xml;

  g_assert_no_error (error);
  g_variant_get (reply, "(s)", &xml);
  return xml;
}

/* Runs a command to its end, while this process's main context keeps
 * running (an object exported here may be what it talks to), and
 * returns its standard output; it must succeed. */
static char *
run_tool (const char * const *argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) process = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
  g_autoptr(GAsyncResult) result = NULL;
  char *out = NULL;

  g_assert_no_error (error);
  g_subprocess_communicate_utf8_async (process, NULL, NULL, qipc_test_store_result, &result);
  qipc_test_wait_for_result (&result);
  g_subprocess_communicate_utf8_finish (process, result, &out, NULL, &error);
  g_assert_no_error (error);
  g_test_message ("%s: %s", argv[0], out);
  g_assert_true (g_subprocess_get_if_exited (process));
  g_assert_cmpint (g_subprocess_get_exit_status (process), ==, 0);
  return out;
}

/* A QipcTestCounter exported by a helper process. */
static QipcTestChild *
spawn_counter (const char *path,
               const char *name)
{
  QipcTestChild *child = qipc_test_child_spawn ("dbus-counter", path, name != NULL ? name : "-", NULL);

  qipc_test_child_expect (child, "ready");
  return child;
}

static void
child_command (QipcTestChild *child,
               const char    *command,
               const char    *reply)
{
  qipc_test_child_send (child, command);
  qipc_test_child_expect (child, reply);
}

/* ------------------------------------------------------------------ */
/* Signals                                                             */

static void
test_signals_in_process (void)
{
  g_autoptr(GDBusConnection) exporter = new_connection ();
  g_autoptr(GDBusConnection) client = new_connection ();
  g_autoptr(QipcTestCounter) counter = qipc_test_counter_new ();
  g_autofree char *path = unique_path ("counter");
  g_autoptr(Recorder) recorder = recorder_new (client, COUNTER_INTERFACE, path);
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  guint id;

  id = qipc_dbus_export_object (exporter, path, NULL, G_OBJECT (counter),
                                QIPC_EXPORT_FLAGS_SIGNALS, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (id, !=, 0);
  sync_with_bus (client);

  g_object_set (counter, "label", "first", NULL);   /* notify only: not a signal */
  qipc_test_counter_set_value (counter, 7);
  g_signal_emit_by_name (counter, "value-changed", -3, NULL);  /* NULL string: "" */
  WAIT_UNTIL (recorder->received->len == 2);

  text = recorder_text (recorder);
  g_assert_cmpstr (text, ==, "ValueChanged(7, 'first'); ValueChanged(-3, '')");
  g_assert_true (qipc_dbus_unexport_object (exporter, id));
}

static void
test_signals_actions_are_signals (void)
{
  g_autoptr(GDBusConnection) exporter = new_connection ();
  g_autoptr(GDBusConnection) client = new_connection ();
  g_autoptr(QipcTestCounter) counter = qipc_test_counter_new ();
  g_autofree char *path = unique_path ("counter");
  g_autoptr(Recorder) recorder = recorder_new (client, COUNTER_INTERFACE, path);
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  int result = 0;
  guint id;

  id = qipc_dbus_export_object (exporter, path, NULL, G_OBJECT (counter),
                                QIPC_EXPORT_FLAGS_SIGNALS, &error);
  g_assert_no_error (error);
  sync_with_bus (client);

  g_signal_emit_by_name (counter, "increment", 2, &result);
  g_assert_cmpint (result, ==, 2);
  WAIT_UNTIL (recorder->received->len == 2);
  text = recorder_text (recorder);
  g_assert_cmpstr (text, ==, "Increment(2,); ValueChanged(2, '')");
  qipc_dbus_unexport_object (exporter, id);
}

/* gdbus monitor, a foreign client, sees the signal of an object that
 * another process exports. */
static void
test_signals_gdbus_monitor (void)
{
  g_autofree char *path = unique_path ("counter");
  g_autofree char *name = unique_bus_name ();
  g_autoptr(QipcTestChild) child = spawn_counter (path, name);
  g_autoptr(GError) error = NULL;
  const char *argv[] = { "gdbus", "monitor", "--session", "--dest", name, "--object-path", path, NULL };
  g_autoptr(GSubprocess) monitor = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
  g_autoptr(GDataInputStream) output = NULL;
  g_autofree char *expected = g_strdup_printf ("%s: " COUNTER_INTERFACE ".ValueChanged (", path);
  GAsyncResult *result = NULL;
  gboolean reading = FALSE;
  gboolean seen = FALSE;

  g_assert_no_error (error);
  output = g_data_input_stream_new (g_subprocess_get_stdout_pipe (monitor));

  /* First it looks for the name's owner. */
  for (;;)
    {
      g_autoptr(GAsyncResult) owner_result = NULL;
      g_autofree char *line = NULL;

      g_data_input_stream_read_line_async (output, G_PRIORITY_DEFAULT, NULL, qipc_test_store_result,
                                           &owner_result);
      qipc_test_wait_for_result (&owner_result);
      line = g_data_input_stream_read_line_finish (output, owner_result, NULL, &error);
      g_assert_no_error (error);
      g_assert_nonnull (line);
      g_test_message ("gdbus monitor: %s", line);
      if (strstr (line, "is owned by") != NULL)
        break;
    }

  /* gdbus adds its match rule only after printing the owner: emit
   * until it sees one (each emission a new value). */
  child_command (child, "label hello", "ok");
  for (int value = 1; !seen; value++)
    {
      g_autofree char *command = g_strdup_printf ("set %d", value);
      gint64 next = g_get_monotonic_time () + G_USEC_PER_SEC / 5;

      g_assert_cmpint (value, <, 5 * WAIT_SECONDS);
      child_command (child, command, "ok");
      while (!seen && g_get_monotonic_time () < next)
        {
          g_autofree char *line = NULL;

          if (result == NULL)
            {
              if (!reading)
                g_data_input_stream_read_line_async (output, G_PRIORITY_DEFAULT, NULL,
                                                     qipc_test_store_result, &result);
              reading = TRUE;
              /* Not blocking: nothing else wakes the context when this
               * emission went unseen, and the next one is due. */
              if (!g_main_context_iteration (NULL, FALSE))
                g_usleep (1000);
              continue;
            }
          line = g_data_input_stream_read_line_finish (output, result, NULL, &error);
          g_clear_object (&result);
          reading = FALSE;
          g_assert_no_error (error);
          g_assert_nonnull (line);
          g_test_message ("gdbus monitor: %s", line);
          seen = g_str_has_prefix (line, expected) && g_str_has_suffix (line, ", 'hello')");
        }
    }
  /* The pending read must end before its result pointer goes. */
  if (reading)
    {
      g_subprocess_force_exit (monitor);
      qipc_test_wait_for_result (&result);
      g_clear_object (&result);
    }
  g_subprocess_force_exit (monitor);
}

/* ------------------------------------------------------------------ */
/* Introspection                                                       */

static void
test_introspect_gdbus (void)
{
  g_autofree char *path = unique_path ("counter");
  g_autofree char *name = unique_bus_name ();
  G_GNUC_UNUSED g_autoptr(QipcTestChild) child = spawn_counter (path, name);
  const char *argv[] = { "gdbus", "introspect", "--session", "--dest", name, "--object-path", path, NULL };
  g_autofree char *out = run_tool (argv);

  g_assert_nonnull (strstr (out, "interface " COUNTER_INTERFACE " {"));
  g_assert_nonnull (strstr (out, "signals:\n      ValueChanged(i arg0,\n"));
  g_assert_nonnull (strstr (out, "Increment(in  i arg0,\n"));
  g_assert_nonnull (strstr (out, "out i result);"));
  g_assert_nonnull (strstr (out, "Reset();"));
  g_assert_nonnull (strstr (out, "readwrite i Value = 0;"));
  g_assert_nonnull (strstr (out, "readwrite s Label = '';"));
  /* GObject's own notify is what PropertiesChanged is for. */
  g_assert_null (strstr (out, "Notify"));
}

/* ------------------------------------------------------------------ */
/* Actions                                                             */

static void
test_actions_in_process (void)
{
  g_autoptr(GDBusConnection) exporter = new_connection ();
  g_autoptr(GDBusConnection) client = new_connection ();
  g_autoptr(QipcTestCounter) counter = qipc_test_counter_new ();
  g_autofree char *path = unique_path ("counter");
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) reset = NULL;
  g_autoptr(GVariant) wrong = NULL;
  guint id;

  id = qipc_dbus_export_object (exporter, path, "org.qipc.Test.Counter", G_OBJECT (counter),
                                QIPC_EXPORT_FLAGS_ACTIONS, &error);
  g_assert_no_error (error);

  reply = call (client, g_dbus_connection_get_unique_name (exporter), path,
                "org.qipc.Test.Counter", "Increment", g_variant_new ("(i)", 5), &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (reply), ==, "(i)");
  {
    gint32 value;

    g_variant_get (reply, "(i)", &value);
    g_assert_cmpint (value, ==, 5);
  }
  g_assert_cmpint (qipc_test_counter_get_value (counter), ==, 5);

  reset = call (client, g_dbus_connection_get_unique_name (exporter), path,
                "org.qipc.Test.Counter", "Reset", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (reset), ==, "()");
  g_assert_cmpint (qipc_test_counter_get_value (counter), ==, 0);

  wrong = call (client, g_dbus_connection_get_unique_name (exporter), path,
                "org.qipc.Test.Counter", "Increment", g_variant_new ("(s)", "five"), &error);
  g_assert_error (error, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS);
  g_assert_null (wrong);
  qipc_dbus_unexport_object (exporter, id);
}

static void
test_actions_gdbus_call (void)
{
  g_autofree char *path = unique_path ("counter");
  g_autofree char *name = unique_bus_name ();
  g_autoptr(QipcTestChild) child = spawn_counter (path, name);
  const char *increment[] = { "gdbus", "call", "--session", "--dest", name, "--object-path", path,
                              "--method", COUNTER_INTERFACE ".Increment", "5", NULL };
  const char *reset[] = { "gdbus", "call", "--session", "--dest", name, "--object-path", path,
                          "--method", COUNTER_INTERFACE ".Reset", NULL };
  g_autofree char *out = run_tool (increment);
  g_autofree char *out2 = NULL;

  g_assert_cmpstr (out, ==, "(5,)\n");
  child_command (child, "get", "5");
  out2 = run_tool (reset);
  g_assert_cmpstr (out2, ==, "()\n");
  child_command (child, "get", "0");
}

static void
test_actions_dbus_send (void)
{
  g_autofree char *path = unique_path ("counter");
  g_autofree char *name = unique_bus_name ();
  g_autoptr(QipcTestChild) child = spawn_counter (path, name);
  g_autofree char *dest = g_strdup_printf ("--dest=%s", name);
  const char *increment[] = { "dbus-send", "--session", "--print-reply", dest, path,
                              COUNTER_INTERFACE ".Increment", "int32:3", NULL };
  const char *get[] = { "dbus-send", "--session", "--print-reply", dest, path,
                        "org.freedesktop.DBus.Properties.Get", "string:" COUNTER_INTERFACE,
                        "string:Value", NULL };
  const char *set[] = { "dbus-send", "--session", "--print-reply", dest, path,
                        "org.freedesktop.DBus.Properties.Set", "string:" COUNTER_INTERFACE,
                        "string:Value", "variant:int32:11", NULL };
  g_autofree char *out = run_tool (increment);
  g_autofree char *out2 = NULL;
  g_autofree char *out3 = NULL;

  g_assert_nonnull (strstr (out, "   int32 3\n"));
  child_command (child, "get", "3");
  out2 = run_tool (get);
  g_assert_nonnull (strstr (out2, "variant       int32 3\n"));
  out3 = run_tool (set);
  child_command (child, "get", "11");
}

/* ------------------------------------------------------------------ */
/* Properties                                                          */

static GVariant *
get_property (GDBusConnection *client,
              const char      *destination,
              const char      *path,
              const char      *property)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = call (client, destination, path, "org.freedesktop.DBus.Properties", "Get",
                                    g_variant_new ("(ss)", COUNTER_INTERFACE, property), &error);
  GVariant *value;

  g_assert_no_error (error);
  g_variant_get (reply, "(v)", &value);
  return value;
}

static void
set_property (GDBusConnection  *client,
              const char       *destination,
              const char       *path,
              const char       *property,
              GVariant         *value,
              GError          **error)
{
  G_GNUC_UNUSED g_autoptr(GVariant) reply = call (client, destination, path, "org.freedesktop.DBus.Properties", "Set",
                                    g_variant_new ("(ssv)", COUNTER_INTERFACE, property, value), error);
}

static void
test_properties_in_process (void)
{
  g_autoptr(GDBusConnection) exporter = new_connection ();
  g_autoptr(GDBusConnection) client = new_connection ();
  g_autoptr(QipcTestCounter) counter = qipc_test_counter_new ();
  g_autofree char *path = unique_path ("counter");
  const char *dest = g_dbus_connection_get_unique_name (exporter);
  g_autoptr(Recorder) recorder = recorder_new (client, "org.freedesktop.DBus.Properties", path);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GVariant) label = NULL;
  g_autoptr(GVariant) all = NULL;
  g_autofree char *all_text = NULL;
  g_autofree char *text = NULL;
  guint id;

  id = qipc_dbus_export_object (exporter, path, NULL, G_OBJECT (counter),
                                QIPC_EXPORT_FLAGS_PROPERTIES, &error);
  g_assert_no_error (error);
  sync_with_bus (client);

  /* Get, and the NULL string read as "". */
  qipc_test_counter_set_value (counter, 4);
  value = get_property (client, dest, path, "Value");
  g_assert_cmpint (g_variant_get_int32 (value), ==, 4);
  label = get_property (client, dest, path, "Label");
  g_assert_cmpstr (g_variant_get_string (label, NULL), ==, "");
  all = call (client, dest, path, "org.freedesktop.DBus.Properties", "GetAll",
              g_variant_new ("(s)", COUNTER_INTERFACE), &error);
  g_assert_no_error (error);
  all_text = g_variant_print (all, FALSE);
  g_assert_cmpstr (all_text, ==, "({'Value': <4>, 'Label': <''>},)");

  /* Set from the bus: the object changes, and says so. */
  set_property (client, dest, path, "Value", g_variant_new_int32 (9), &error);
  g_assert_no_error (error);
  g_assert_cmpint (qipc_test_counter_get_value (counter), ==, 9);
  set_property (client, dest, path, "Label", g_variant_new_string ("nine"), &error);
  g_assert_no_error (error);

  /* A wrong type is refused, clearly. */
  set_property (client, dest, path, "Value", g_variant_new_string ("ten"), &error);
  g_assert_error (error, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "Value"));
  g_assert_nonnull (strstr (error->message, "Expected type"));
  g_clear_error (&error);
  g_assert_cmpint (qipc_test_counter_get_value (counter), ==, 9);

  /* Changes made here reach the bus with their new value. */
  qipc_test_counter_set_value (counter, 12);
  WAIT_UNTIL (recorder->received->len == 4);
  text = recorder_text (recorder);
  g_assert_cmpstr (text, ==,
                   "PropertiesChanged('" COUNTER_INTERFACE "', {'Value': <4>}, []); "
                   "PropertiesChanged('" COUNTER_INTERFACE "', {'Value': <9>}, []); "
                   "PropertiesChanged('" COUNTER_INTERFACE "', {'Label': <'nine'>}, []); "
                   "PropertiesChanged('" COUNTER_INTERFACE "', {'Value': <12>}, [])");
  qipc_dbus_unexport_object (exporter, id);
}

/* Properties both ways against another process. */
static void
test_properties_remote (void)
{
  g_autoptr(GDBusConnection) client = new_connection ();
  g_autofree char *path = unique_path ("counter");
  g_autofree char *name = unique_bus_name ();
  g_autoptr(Recorder) recorder = recorder_new (client, "org.freedesktop.DBus.Properties", path);
  g_autoptr(QipcTestChild) child = spawn_counter (path, name);
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;

  sync_with_bus (client);
  child_command (child, "set 8", "ok");
  value = get_property (client, name, path, "Value");
  g_assert_cmpint (g_variant_get_int32 (value), ==, 8);
  set_property (client, name, path, "Value", g_variant_new_int32 (21), &error);
  g_assert_no_error (error);
  child_command (child, "get", "21");
  WAIT_UNTIL (recorder->received->len == 2);
  text = recorder_text (recorder);
  g_assert_cmpstr (text, ==,
                   "PropertiesChanged('" COUNTER_INTERFACE "', {'Value': <8>}, []); "
                   "PropertiesChanged('" COUNTER_INTERFACE "', {'Value': <21>}, [])");
}

/* ------------------------------------------------------------------ */
/* What cannot be exported                                             */

static void
test_unsupported_refused (void)
{
  g_autoptr(GDBusConnection) exporter = new_connection ();
  g_autoptr(GObject) oddball = g_object_new (QIPC_TEST_TYPE_ODDBALL, NULL);
  g_autofree char *path = unique_path ("oddball");
  g_autoptr(GError) error = NULL;
  guint id;

  id = qipc_dbus_export_object (exporter, path, NULL, oddball, QIPC_EXPORT_FLAGS_SIGNALS, &error);
  g_assert_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_UNSUPPORTED_TYPE);
  g_assert_cmpstr (error->message, ==,
                   "Signal 'raw' of QipcTestOddball: argument 1 has type gpointer, "
                   "which cannot be carried between processes");
  g_assert_cmpuint (id, ==, 0);
  g_clear_error (&error);

  id = qipc_dbus_export_object (exporter, path, NULL, oddball, QIPC_EXPORT_FLAGS_PROPERTIES, &error);
  g_assert_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_UNSUPPORTED_TYPE);
  g_assert_cmpstr (error->message, ==,
                   "Property 'handle' of QipcTestOddball has type gpointer, "
                   "which cannot be carried between processes");
  g_assert_cmpuint (id, ==, 0);
  g_clear_error (&error);

  /* Nothing was left behind: the path is free. */
  id = qipc_dbus_export_object (exporter, path, NULL, oddball,
                                QIPC_EXPORT_FLAGS_ALL | QIPC_EXPORT_FLAGS_SKIP_UNSUPPORTED, &error);
  g_assert_no_error (error);
  g_assert_true (qipc_dbus_unexport_object (exporter, id));
}

static void
test_unsupported_skipped (void)
{
  g_autoptr(GDBusConnection) exporter = new_connection ();
  g_autoptr(GDBusConnection) client = new_connection ();
  g_autoptr(GObject) oddball = g_object_new (QIPC_TEST_TYPE_ODDBALL, NULL);
  g_autofree char *path = unique_path ("oddball");
  g_autoptr(Recorder) recorder = recorder_new (client, "org.qipc.Object.QipcTestOddball", path);
  g_autoptr(GError) error = NULL;
  g_autofree char *xml = NULL;
  g_autofree char *text = NULL;
  guint id;

  id = qipc_dbus_export_object (exporter, path, NULL, oddball,
                                QIPC_EXPORT_FLAGS_ALL | QIPC_EXPORT_FLAGS_SKIP_UNSUPPORTED, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (id, !=, 0);
  sync_with_bus (client);

  xml = introspect (client, g_dbus_connection_get_unique_name (exporter), path);
  g_assert_nonnull (strstr (xml, "<signal name=\"Fine\">"));
  g_assert_null (strstr (xml, "Raw"));
  g_assert_null (strstr (xml, "Handle"));

  g_signal_emit_by_name (oddball, "raw", (gpointer) path);   /* not sent, no crash */
  g_signal_emit_by_name (oddball, "fine", 3);
  WAIT_UNTIL (recorder->received->len == 1);
  text = recorder_text (recorder);
  g_assert_cmpstr (text, ==, "Fine(3,)");
  qipc_dbus_unexport_object (exporter, id);
}

/* ------------------------------------------------------------------ */
/* Names and lifetime                                                  */

static void
test_export_errors (void)
{
  g_autoptr(GDBusConnection) exporter = new_connection ();
  g_autoptr(QipcTestCounter) counter = qipc_test_counter_new ();
  g_autoptr(QipcTestCounter) other = qipc_test_counter_new ();
  g_autofree char *path = unique_path ("counter");
  g_autoptr(GError) error = NULL;
  guint id, id2;

  g_assert_cmpuint (qipc_dbus_export_object (exporter, "not/a/path", NULL, G_OBJECT (counter),
                                             QIPC_EXPORT_FLAGS_ALL, &error), ==, 0);
  g_assert_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_INVALID_NAME);
  g_assert_nonnull (strstr (error->message, "not/a/path"));
  g_clear_error (&error);

  g_assert_cmpuint (qipc_dbus_export_object (exporter, path, "no-dots", G_OBJECT (counter),
                                             QIPC_EXPORT_FLAGS_ALL, &error), ==, 0);
  g_assert_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_INVALID_NAME);
  g_assert_nonnull (strstr (error->message, "no-dots"));
  g_clear_error (&error);

  id = qipc_dbus_export_object (exporter, path, NULL, G_OBJECT (counter), QIPC_EXPORT_FLAGS_ALL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (qipc_dbus_export_object (exporter, path, NULL, G_OBJECT (other),
                                             QIPC_EXPORT_FLAGS_ALL, &error), ==, 0);
  g_assert_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_ALREADY_EXPORTED);
  g_clear_error (&error);

  /* Another interface at the same path is fine. */
  id2 = qipc_dbus_export_object (exporter, path, "org.qipc.Test.Other", G_OBJECT (other),
                                 QIPC_EXPORT_FLAGS_ALL, &error);
  g_assert_no_error (error);

  g_assert_true (qipc_dbus_unexport_object (exporter, id));
  g_assert_false (qipc_dbus_unexport_object (exporter, id));
  g_assert_true (qipc_dbus_unexport_object (exporter, id2));
}

static void
test_unexport (void)
{
  g_autoptr(GDBusConnection) exporter = new_connection ();
  g_autoptr(GDBusConnection) client = new_connection ();
  QipcTestCounter *counter = qipc_test_counter_new ();
  g_autoptr(QipcTestCounter) marker = qipc_test_counter_new ();
  g_autofree char *path = unique_path ("counter");
  g_autofree char *marker_path = unique_path ("marker");
  g_autoptr(Recorder) recorder = recorder_new (client, COUNTER_INTERFACE, NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  g_autofree char *text = NULL;
  guint id, marker_id;

  id = qipc_dbus_export_object (exporter, path, NULL, G_OBJECT (counter), QIPC_EXPORT_FLAGS_ALL, &error);
  g_assert_no_error (error);
  marker_id = qipc_dbus_export_object (exporter, marker_path, NULL, G_OBJECT (marker),
                                       QIPC_EXPORT_FLAGS_ALL, &error);
  g_assert_no_error (error);
  sync_with_bus (client);

  /* The export keeps the object alive. */
  g_object_add_weak_pointer (G_OBJECT (counter), (gpointer *) &counter);
  g_object_unref (counter);
  g_assert_nonnull (counter);

  before = introspect (client, g_dbus_connection_get_unique_name (exporter), path);
  g_assert_nonnull (strstr (before, COUNTER_INTERFACE));
  g_assert_true (qipc_dbus_unexport_object (exporter, id));
  g_assert_null (counter);
  after = introspect (client, g_dbus_connection_get_unique_name (exporter), path);
  g_assert_null (strstr (after, COUNTER_INTERFACE));

  /* Nothing of an unexported object reaches the bus. */
  qipc_test_counter_set_value (marker, 1);
  WAIT_UNTIL (recorder->received->len == 1);
  text = recorder_text (recorder);
  g_assert_cmpstr (text, ==, "ValueChanged(1, '')");
  qipc_dbus_unexport_object (exporter, marker_id);
}

static void
test_unexport_remote (void)
{
  g_autofree char *path = unique_path ("counter");
  g_autofree char *name = unique_bus_name ();
  g_autoptr(QipcTestChild) child = spawn_counter (path, name);
  const char *argv[] = { "gdbus", "introspect", "--session", "--dest", name, "--object-path", path, NULL };
  g_autofree char *before = run_tool (argv);
  g_autofree char *after = NULL;

  g_assert_nonnull (strstr (before, COUNTER_INTERFACE));
  child_command (child, "unexport", "unexported");
  after = run_tool (argv);
  g_assert_null (strstr (after, COUNTER_INTERFACE));
}

/* ------------------------------------------------------------------ */
/* qipc_dbus_connect_signal                                            */

typedef struct
{
  GArray *values;     /* int */
  GPtrArray *labels;  /* char * */
} Received;

static void
on_value_changed (int         value,
                  const char *label,
                  Received   *received)
{
  g_array_append_val (received->values, value);
  g_ptr_array_add (received->labels, g_strdup (label));
}

static Received *
received_new (void)
{
  Received *received = g_new0 (Received, 1);

  received->values = g_array_new (FALSE, FALSE, sizeof (int));
  received->labels = g_ptr_array_new_with_free_func (g_free);
  return received;
}

static void
received_free (gpointer data)
{
  Received *received = data;

  g_array_unref (received->values);
  g_ptr_array_unref (received->labels);
  g_free (received);
}

static char *
received_text (Received *received)
{
  GString *text = g_string_new ("");

  for (guint i = 0; i < received->values->len; i++)
    g_string_append_printf (text, "%s%d %s", i > 0 ? ", " : "",
                            g_array_index (received->values, int, i),
                            (const char *) g_ptr_array_index (received->labels, i));
  return g_string_free (text, FALSE);
}

static guint
connect_value_changed (GDBusConnection    *client,
                       const char         *sender,
                       const char         *path,
                       const char * const *arg_match,
                       Received           *received)
{
  g_autoptr(GError) error = NULL;
  guint id = qipc_dbus_connect_signal (client, sender, path, COUNTER_INTERFACE, "ValueChanged",
                                       arg_match,
                                       g_cclosure_new (G_CALLBACK (on_value_changed), received, NULL),
                                       &error);

  g_assert_no_error (error);
  g_assert_cmpuint (id, !=, 0);
  return id;
}

static void
test_connect_signal_args (void)
{
  g_autoptr(GDBusConnection) client = new_connection ();
  g_autofree char *path = unique_path ("counter");
  Received *received = received_new ();
  g_autoptr(QipcTestChild) child = spawn_counter (path, NULL);
  g_autofree char *text = NULL;
  guint id;

  id = connect_value_changed (client, NULL, path, NULL, received);
  child_command (child, "label one", "ok");
  child_command (child, "set 1", "ok");
  child_command (child, "label two words", "ok");
  child_command (child, "set -2", "ok");
  WAIT_UNTIL (received->values->len >= 2);
  text = received_text (received);
  g_assert_cmpstr (text, ==, "1 one, -2 two words");

  g_assert_true (qipc_dbus_disconnect_signal (client, id));
  g_assert_false (qipc_dbus_disconnect_signal (client, id));
  child_command (child, "set 3", "ok");
  sync_with_bus (client);
  drain_main_context ();
  g_assert_cmpuint (received->values->len, ==, 2);
  received_free (received);
}

/* Only the emissions whose arguments match arrive, also when another
 * subscription on the same connection brings every emission in. */
static void
test_connect_signal_arg_match (void)
{
  g_autoptr(GDBusConnection) client = new_connection ();
  g_autofree char *path = unique_path ("counter");
  Received *received = received_new ();
  g_autoptr(Recorder) everything = recorder_new (client, COUNTER_INTERFACE, path);
  g_autoptr(QipcTestChild) child = spawn_counter (path, NULL);
  const char * const arg_match[] = { "", "yes", NULL };
  g_autofree char *text = NULL;
  guint id;

  id = connect_value_changed (client, NULL, path, arg_match, received);
  child_command (child, "label no", "ok");
  child_command (child, "set 1", "ok");
  child_command (child, "label yes", "ok");
  child_command (child, "set 2", "ok");
  child_command (child, "label no", "ok");
  child_command (child, "set 3", "ok");
  child_command (child, "label yes", "ok");
  child_command (child, "set 4", "ok");
  WAIT_UNTIL (everything->received->len == 4);
  WAIT_UNTIL (received->values->len >= 2);
  drain_main_context ();
  text = received_text (received);
  g_assert_cmpstr (text, ==, "2 yes, 4 yes");
  qipc_dbus_disconnect_signal (client, id);
  received_free (received);
}

static void
test_connect_signal_invalid (void)
{
  g_autoptr(GDBusConnection) client = new_connection ();
  g_autoptr(GError) error = NULL;
  GClosure *closure = g_cclosure_new (G_CALLBACK (on_value_changed), NULL, NULL);

  g_closure_ref (closure);
  g_closure_sink (closure);
  g_assert_cmpuint (qipc_dbus_connect_signal (client, NULL, "bad path", NULL, "ValueChanged",
                                              NULL, closure, &error), ==, 0);
  g_assert_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_INVALID_NAME);
  g_clear_error (&error);
  g_assert_cmpuint (qipc_dbus_connect_signal (client, NULL, "/", NULL, "value-changed",
                                              NULL, closure, &error), ==, 0);
  g_assert_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_INVALID_NAME);
  g_closure_unref (closure);
}

static gboolean
name_has_owner (GDBusConnection *connection,
                const char      *name)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = call (connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                    "org.freedesktop.DBus", "NameHasOwner",
                                    g_variant_new ("(s)", name), &error);
  gboolean has_owner;

  g_assert_no_error (error);
  g_variant_get (reply, "(b)", &has_owner);
  return has_owner;
}

/* A well-known name moves from one process to another (released, then
 * its owner killed): the subscription follows it, and never delivers
 * what a process that does not own the name sends. */
static void
test_connect_signal_follows_owner (void)
{
  g_autoptr(GDBusConnection) client = new_connection ();
  g_autofree char *path = unique_path ("counter");
  g_autofree char *name = unique_bus_name ();
  g_autofree char *own = g_strdup_printf ("own %s", name);
  g_autofree char *release = g_strdup_printf ("release %s", name);
  Received *received = received_new ();
  g_autoptr(Recorder) everything = recorder_new (client, COUNTER_INTERFACE, path);
  g_autoptr(QipcTestChild) first = spawn_counter (path, name);
  g_autoptr(QipcTestChild) second = spawn_counter (path, NULL);
  g_autofree char *text = NULL;
  guint id;

  id = connect_value_changed (client, name, path, NULL, received);
  sync_with_bus (client);
  child_command (first, "set 1", "ok");
  WAIT_UNTIL (received->values->len >= 1);

  /* The second process does not own the name (yet). */
  child_command (second, "set 100", "ok");
  child_command (first, "set 2", "ok");
  WAIT_UNTIL (everything->received->len == 3);
  WAIT_UNTIL (received->values->len >= 2);
  drain_main_context ();
  g_clear_pointer (&text, g_free);
  text = received_text (received);
  g_assert_cmpstr (text, ==, "1 , 2 ");

  /* The first owner lets the name go; the second takes it. */
  child_command (first, release, "released");
  child_command (second, own, "owned");
  child_command (first, "set 3", "ok");
  child_command (second, "set 101", "ok");
  WAIT_UNTIL (received->values->len >= 3);
  WAIT_UNTIL (everything->received->len == 5);
  drain_main_context ();
  g_clear_pointer (&text, g_free);
  text = received_text (received);
  g_assert_cmpstr (text, ==, "1 , 2 , 101 ");

  /* The second owner dies; the first takes the name back. */
  qipc_test_child_kill (second);
  WAIT_UNTIL (!name_has_owner (client, name));
  child_command (first, own, "owned");
  child_command (first, "set 4", "ok");
  WAIT_UNTIL (received->values->len >= 4);
  g_clear_pointer (&text, g_free);
  text = received_text (received);
  g_assert_cmpstr (text, ==, "1 , 2 , 101 , 4 ");
  qipc_dbus_disconnect_signal (client, id);
  received_free (received);
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GTestDBus) bus = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);

  bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (bus);

  g_test_add_func ("/dbus-export/signals/in-process", test_signals_in_process);
  g_test_add_func ("/dbus-export/signals/actions-are-signals", test_signals_actions_are_signals);
  g_test_add_func ("/dbus-export/signals/gdbus-monitor", test_signals_gdbus_monitor);
  g_test_add_func ("/dbus-export/introspect/gdbus", test_introspect_gdbus);
  g_test_add_func ("/dbus-export/actions/in-process", test_actions_in_process);
  g_test_add_func ("/dbus-export/actions/gdbus-call", test_actions_gdbus_call);
  g_test_add_func ("/dbus-export/actions/dbus-send", test_actions_dbus_send);
  g_test_add_func ("/dbus-export/properties/in-process", test_properties_in_process);
  g_test_add_func ("/dbus-export/properties/remote", test_properties_remote);
  g_test_add_func ("/dbus-export/unsupported/refused", test_unsupported_refused);
  g_test_add_func ("/dbus-export/unsupported/skipped", test_unsupported_skipped);
  g_test_add_func ("/dbus-export/errors", test_export_errors);
  g_test_add_func ("/dbus-export/unexport/in-process", test_unexport);
  g_test_add_func ("/dbus-export/unexport/remote", test_unexport_remote);
  g_test_add_func ("/dbus-export/connect-signal/args", test_connect_signal_args);
  g_test_add_func ("/dbus-export/connect-signal/arg-match", test_connect_signal_arg_match);
  g_test_add_func ("/dbus-export/connect-signal/invalid", test_connect_signal_invalid);
  g_test_add_func ("/dbus-export/connect-signal/follows-owner", test_connect_signal_follows_owner);

  status = g_test_run ();
  g_test_dbus_down (bus);
  return status;
}
