/* test-mirror.c: exported objects and their mirrors, across processes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <qipc.h>

#include <string.h>
#include <unistd.h>

#include "test-counter.h"
#include "test-utils.h"


static gboolean
flag_is_set (gconstpointer flag)
{
  return *(const gboolean *) flag;
}

static void
wait_for_flag (gboolean   *flag,
               const char *what)
{
  qipc_test_wait_until (flag_is_set, flag, what);
}

static gboolean
pointer_is_null (gconstpointer pointer)
{
  return *(gconstpointer const *) pointer == NULL;
}

static void
wait_for_flag_cleared (gpointer   *pointer,
                       const char *what)
{
  qipc_test_wait_until (pointer_is_null, pointer, what);
}

typedef struct
{
  GObject *object;
  int value;
} ValueWait;

static gboolean
value_reached (gconstpointer data)
{
  const ValueWait *wait = data;

  return qipc_test_counter_get_value (QIPC_TEST_COUNTER (wait->object)) == wait->value;
}

static void
wait_for_value (GObject    *object,
                int         value,
                const char *what)
{
  ValueWait wait = { object, value };

  qipc_test_wait_until (value_reached, &wait, what);
}

/* A broker and an exporting child (counter-export) on it. The broker
 * is qipc's own, or (the same tests on the other channel transports) a
 * mosquitto or a dbus-daemon. */
typedef struct
{
  char *address;
  QipcTestChild *broker;
  QipcTestMosquitto *mosquitto;
  GTestDBus *dbus;
  QipcTestChild *exporter;
  QipcBus *bus;
} Fixture;

static QipcTestChild *
spawn_exporter (const char *address,
                const char *path,
                const char *value)
{
  QipcTestChild *child = qipc_test_child_spawn ("counter-export", address, path, value, NULL);

  qipc_test_child_expect (child, "exported");
  return child;
}

static void
fixture_connect (Fixture *fixture)
{
  g_autoptr(GError) error = NULL;

  fixture->exporter = spawn_exporter (fixture->address, "app/counter", "41");
  fixture->bus = qipc_bus_new_for_address (fixture->address, &error);
  g_assert_no_error (error);
}

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  data)
{
  fixture->address = qipc_test_abstract_address ("mirror");
  fixture->broker = qipc_test_child_spawn ("broker", fixture->address, NULL);
  qipc_test_child_expect (fixture->broker, "listening");
  fixture_connect (fixture);
}

static void
fixture_setup_mqtt (Fixture       *fixture,
                    gconstpointer  data)
{
  fixture->mosquitto = qipc_test_mosquitto_start ();
  fixture->address = g_strdup (qipc_test_mosquitto_get_address (fixture->mosquitto));
  fixture_connect (fixture);
}

static void
fixture_setup_dbus (Fixture       *fixture,
                    gconstpointer  data)
{
  fixture->dbus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (fixture->dbus);
  fixture->address = g_strconcat ("dbus:address=", g_test_dbus_get_bus_address (fixture->dbus),
                                  NULL);
  fixture_connect (fixture);
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  data)
{
  g_clear_object (&fixture->bus);
  if (fixture->exporter != NULL)
    qipc_test_child_kill (fixture->exporter);
  g_clear_pointer (&fixture->exporter, qipc_test_child_free);
  if (fixture->broker != NULL)
    qipc_test_child_kill (fixture->broker);
  g_clear_pointer (&fixture->broker, qipc_test_child_free);
  g_clear_pointer (&fixture->mosquitto, qipc_test_mosquitto_free);
  if (fixture->dbus != NULL)
    g_test_dbus_down (fixture->dbus);
  g_clear_object (&fixture->dbus);
  g_free (fixture->address);
}

static GObject *
mirror_counter (QipcBus    *bus,
                const char *path)
{
  g_autoptr(GError) error = NULL;
  GObject *mirror = qipc_mirror_new (G_OBJECT (bus), path, QIPC_TEST_TYPE_COUNTER, &error);

  g_assert_no_error (error);
  g_assert_true (QIPC_TEST_IS_COUNTER (mirror));
  return mirror;
}

static char *
get_label (GObject *object)
{
  char *label = NULL;

  g_object_get (object, "label", &label, NULL);
  return label;
}

/* ------------------------------------------------------------------ */

/* NULL stands for the default bus ($QIPC_BUS_ADDRESS here). */
static void
test_default_bus (Fixture       *fixture,
                  gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GObject) mirror = NULL;
  g_autoptr(QipcBus) default_bus = NULL;

  g_setenv ("QIPC_BUS_ADDRESS", fixture->address, TRUE);
  mirror = qipc_mirror_new (NULL, "app/counter", QIPC_TEST_TYPE_COUNTER, &error);
  g_unsetenv ("QIPC_BUS_ADDRESS");
  g_assert_no_error (error);
  g_assert_cmpint (qipc_test_counter_get_value (QIPC_TEST_COUNTER (mirror)), ==, 41);
  qipc_test_child_send (fixture->exporter, "set 7");
  qipc_test_child_expect (fixture->exporter, "ok");
  wait_for_value (mirror, 7, "a change through the default bus");

  g_clear_object (&mirror);
  default_bus = qipc_bus_get_default (&error);
  g_assert_no_error (error);
  g_assert_cmpstr (qipc_bus_get_address (default_bus), ==, fixture->address);
  qipc_bus_close (default_bus);
}

static void
test_initial_state (Fixture       *fixture,
                    gconstpointer  data)
{
  g_autoptr(GObject) mirror = mirror_counter (fixture->bus, "app/counter");
  g_autofree char *label = get_label (mirror);
  QipcMirror *handle = qipc_mirror_get_for_object (mirror);

  g_assert_cmpint (qipc_test_counter_get_value (QIPC_TEST_COUNTER (mirror)), ==, 41);
  g_assert_cmpstr (label, ==, "start");
  g_assert_nonnull (handle);
  g_assert_true (qipc_mirror_get_remote_present (handle));
  g_assert_cmpstr (qipc_mirror_get_path (handle), ==, "app/counter");
  g_assert_true (qipc_mirror_get_instance (handle) == mirror);
  g_assert_null (qipc_mirror_get_for_object (G_OBJECT (fixture->bus)));
}

typedef struct
{
  GPtrArray *events;          /* "value-changed 5 start", "notify value" */
  GArray *values;             /* value-changed's values */
} Events;

static void
on_value_changed (GObject    *mirror,
                  int         value,
                  const char *label,
                  Events     *events)
{
  g_ptr_array_add (events->events, g_strdup_printf ("value-changed %d %s", value, label));
  g_array_append_val (events->values, value);
}

static void
on_notify (GObject    *mirror,
           GParamSpec *pspec,
           Events     *events)
{
  g_ptr_array_add (events->events, g_strdup_printf ("notify %s", pspec->name));
}

static Events *
events_watch (GObject *mirror)
{
  Events *events = g_new0 (Events, 1);

  events->events = g_ptr_array_new_with_free_func (g_free);
  events->values = g_array_new (FALSE, FALSE, sizeof (int));
  g_signal_connect (mirror, "value-changed", G_CALLBACK (on_value_changed), events);
  g_signal_connect (mirror, "notify", G_CALLBACK (on_notify), events);
  return events;
}

static void
events_free (Events *events)
{
  g_ptr_array_unref (events->events);
  g_array_unref (events->values);
  g_free (events);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Events, events_free)

typedef struct
{
  Events *events;
  guint count;
} EventsWait;

static gboolean
events_reached (gconstpointer data)
{
  const EventsWait *wait = data;

  return wait->events->events->len >= wait->count;
}

static void
wait_for_events (Events     *events,
                 guint       count,
                 const char *what)
{
  EventsWait wait = { events, count };

  qipc_test_wait_until (events_reached, &wait, what);
}

static void
test_remote_changes (Fixture       *fixture,
                     gconstpointer  data)
{
  g_autoptr(GObject) mirror = mirror_counter (fixture->bus, "app/counter");
  g_autoptr(Events) events = events_watch (mirror);
  g_autofree char *label = NULL;

  qipc_test_child_send (fixture->exporter, "set 5");
  qipc_test_child_expect (fixture->exporter, "ok");
  wait_for_events (events, 2, "the remote value");
  g_assert_cmpstr (events->events->pdata[0], ==, "notify value");
  g_assert_cmpstr (events->events->pdata[1], ==, "value-changed 5 start");
  g_assert_cmpint (qipc_test_counter_get_value (QIPC_TEST_COUNTER (mirror)), ==, 5);

  qipc_test_child_send (fixture->exporter, "label kitchen");
  qipc_test_child_expect (fixture->exporter, "ok");
  wait_for_events (events, 3, "the remote label");
  g_assert_cmpstr (events->events->pdata[2], ==, "notify label");
  label = get_label (mirror);
  g_assert_cmpstr (label, ==, "kitchen");
}

static void
test_set_property (Fixture       *fixture,
                   gconstpointer  data)
{
  g_autoptr(GObject) mirror = mirror_counter (fixture->bus, "app/counter");
  g_autoptr(Events) events = events_watch (mirror);

  qipc_test_counter_set_value (QIPC_TEST_COUNTER (mirror), 7);
  /* The local value is set at once; its value-changed is the remote's. */
  g_assert_cmpint (qipc_test_counter_get_value (QIPC_TEST_COUNTER (mirror)), ==, 7);
  g_assert_cmpuint (events->values->len, ==, 0);
  qipc_test_child_send (fixture->exporter, "wait-value 7");
  qipc_test_child_expect (fixture->exporter, "value 7");
  wait_for_events (events, 2, "the remote's value-changed");
  g_assert_cmpstr (events->events->pdata[0], ==, "notify value");
  g_assert_cmpstr (events->events->pdata[1], ==, "value-changed 7 start");
  /* Once, and no echo back and forth. */
  qipc_test_child_send (fixture->exporter, "set 8");
  qipc_test_child_expect (fixture->exporter, "ok");
  wait_for_value (mirror, 8, "the next remote value");
  wait_for_events (events, 4, "the next value-changed");
  g_assert_cmpuint (events->events->len, ==, 4);
  g_assert_cmpuint (events->values->len, ==, 2);
}

static void
test_action (Fixture       *fixture,
             gconstpointer  data)
{
  g_autoptr(GObject) mirror = mirror_counter (fixture->bus, "app/counter");
  QipcMirror *handle = qipc_mirror_get_for_object (mirror);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GVariant) ret = NULL;
  g_autoptr(GError) error = NULL;
  int local_ret = -1;

  /* Emitting forwards without waiting: the zero value comes back. */
  g_signal_emit_by_name (mirror, "increment", 5, &local_ret);
  g_assert_cmpint (local_ret, ==, 0);
  g_assert_cmpint (qipc_test_counter_get_value (QIPC_TEST_COUNTER (mirror)), ==, 41);
  qipc_test_child_send (fixture->exporter, "wait-value 46");
  qipc_test_child_expect (fixture->exporter, "value 46");
  wait_for_value (mirror, 46, "the incremented value");

  qipc_mirror_call_async (handle, "increment", g_variant_new ("(i)", 4), NULL,
                          qipc_test_store_result, &result);
  qipc_test_wait_for_result (&result);
  ret = qipc_mirror_call_finish (handle, result, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (ret), ==, "i");
  g_assert_cmpint (g_variant_get_int32 (ret), ==, 50);
  wait_for_value (mirror, 50, "the value after the call");
  g_clear_object (&result);

  /* An action without return value, then a missing one. */
  qipc_mirror_call_async (handle, "reset", NULL, NULL, qipc_test_store_result, &result);
  qipc_test_wait_for_result (&result);
  g_assert_null (qipc_mirror_call_finish (handle, result, &error));
  g_assert_no_error (error);
  wait_for_value (mirror, 0, "the reset value");
  g_clear_object (&result);
  qipc_mirror_call_async (handle, "explode", NULL, NULL, qipc_test_store_result, &result);
  qipc_test_wait_for_result (&result);
  g_assert_null (qipc_mirror_call_finish (handle, result, &error));
  g_assert_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "explode"));
}

static gboolean
last_signal_reached (gconstpointer data)
{
  const EventsWait *wait = data;
  GArray *values = wait->events->values;

  return values->len > 0 && g_array_index (values, int, values->len - 1) == (int) wait->count;
}

static void
wait_for_last_signal (Events *events,
                      int     value)
{
  EventsWait wait = { events, value };

  qipc_test_wait_until (last_signal_reached, &wait, "the last value-changed");
}

typedef struct
{
  GObject *mirror;
  Events *events;
  int initial;
} GapWatch;

/* Runs where the state is applied: what the mirror holds now is the
 * state, and everything after it comes to the handlers. */
static void
on_gap_mirror (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  GapWatch *watch = user_data;
  g_autoptr(GError) error = NULL;

  watch->mirror = qipc_mirror_new_finish (result, &error);
  g_assert_no_error (error);
  watch->initial = qipc_test_counter_get_value (QIPC_TEST_COUNTER (watch->mirror));
  watch->events = events_watch (watch->mirror);
}

static gboolean
gap_mirror_made (gconstpointer data)
{
  const GapWatch *watch = data;

  return watch->mirror != NULL;
}

/* The exporter counts up while the mirror is made: from the state on,
 * every value arrives, in order, once. The handlers are connected in
 * qipc_mirror_new_async()'s callback: qipc_mirror_new() runs the main
 * context until it returns, so by then the mirror may have applied a
 * property change whose signal (the counter notifies first) is still to
 * come, and the first signal would repeat the value already read. */
static void
check_no_gap (QipcTestChild *exporter,
              GObject       *bus_or_connection,
              const char    *path)
{
  const int n = 400;
  g_autofree char *command = g_strdup_printf ("count %d", n);
  GapWatch watch = { NULL, NULL, 0 };
  g_autoptr(GObject) mirror = NULL;
  g_autoptr(Events) events = NULL;

  qipc_test_child_send (exporter, command);
  g_usleep (20 * 1000);
  qipc_mirror_new_async (bus_or_connection, path, QIPC_TEST_TYPE_COUNTER, NULL, on_gap_mirror, &watch);
  qipc_test_wait_until (gap_mirror_made, &watch, "the mirror");
  mirror = watch.mirror;
  events = watch.events;
  qipc_test_child_expect (exporter, "counted");
  /* The last signal, not the last property change, which comes first. */
  wait_for_last_signal (events, 41 + n);
  g_test_message ("state at %d, then %u signals", watch.initial, events->values->len);
  g_assert_cmpint (watch.initial, >=, 41);
  g_assert_cmpuint (events->values->len, ==, 41 + n - watch.initial);
  for (guint i = 0; i < events->values->len; i++)
    g_assert_cmpint (g_array_index (events->values, int, i), ==, watch.initial + 1 + (int) i);
}

static void
test_no_gap (Fixture       *fixture,
             gconstpointer  data)
{
  check_no_gap (fixture->exporter, G_OBJECT (fixture->bus), "app/counter");
}

static void
on_mirror_event (QipcMirror *handle,
                 gboolean   *flag)
{
  *flag = TRUE;
}

typedef struct
{
  gboolean vanished;
  gboolean appeared;
} Presence;

static QipcMirror *
watch_presence (GObject  *mirror,
                Presence *presence)
{
  QipcMirror *handle = qipc_mirror_get_for_object (mirror);

  g_signal_connect (handle, "vanished", G_CALLBACK (on_mirror_event), &presence->vanished);
  g_signal_connect (handle, "appeared", G_CALLBACK (on_mirror_event), &presence->appeared);
  return handle;
}

static void
test_vanished_on_kill (Fixture       *fixture,
                       gconstpointer  data)
{
  g_autoptr(GObject) mirror = mirror_counter (fixture->bus, "app/counter");
  Presence presence = { FALSE, FALSE };
  QipcMirror *handle = watch_presence (mirror, &presence);
  qipc_test_child_kill (fixture->exporter);
  g_clear_pointer (&fixture->exporter, qipc_test_child_free);
  wait_for_flag (&presence.vanished, "vanished");
  g_assert_false (qipc_mirror_get_remote_present (handle));
  g_assert_false (presence.appeared);
  g_assert_cmpint (qipc_test_counter_get_value (QIPC_TEST_COUNTER (mirror)), ==, 41);

  /* Another process exports at the same path: state read again. */
  fixture->exporter = spawn_exporter (fixture->address, "app/counter", "99");
  wait_for_flag (&presence.appeared, "appeared");
  g_assert_true (qipc_mirror_get_remote_present (handle));
  g_assert_cmpint (qipc_test_counter_get_value (QIPC_TEST_COUNTER (mirror)), ==, 99);
  qipc_test_child_send (fixture->exporter, "set 100");
  wait_for_value (mirror, 100, "a value from the new exporter");
}

static void
count_event (QipcMirror *handle,
             guint      *count)
{
  (*count)++;
}

/* A new exporter in place of a killed one, maybe before the mirror's
 * next check: its state is read either way. */
static void
test_replaced_quickly (Fixture       *fixture,
                       gconstpointer  data)
{
  g_autoptr(GObject) mirror = mirror_counter (fixture->bus, "app/counter");
  QipcMirror *handle = qipc_mirror_get_for_object (mirror);
  guint vanished = 0, appeared = 0;

  g_signal_connect (handle, "vanished", G_CALLBACK (count_event), &vanished);
  g_signal_connect (handle, "appeared", G_CALLBACK (count_event), &appeared);
  qipc_test_child_kill (fixture->exporter);
  g_clear_pointer (&fixture->exporter, qipc_test_child_free);
  fixture->exporter = spawn_exporter (fixture->address, "app/counter", "99");
  wait_for_value (mirror, 99, "the new exporter's state");
  g_assert_true (qipc_mirror_get_remote_present (handle));
  g_assert_cmpuint (vanished, >=, 1);
  g_assert_cmpuint (appeared, ==, vanished);
}

static void
test_vanished_on_unexport (Fixture       *fixture,
                           gconstpointer  data)
{
  g_autoptr(GObject) mirror = mirror_counter (fixture->bus, "app/counter");
  Presence presence = { FALSE, FALSE };
  QipcMirror *handle = watch_presence (mirror, &presence);

  qipc_test_child_send (fixture->exporter, "unexport");
  qipc_test_child_expect (fixture->exporter, "unexported");
  wait_for_flag (&presence.vanished, "vanished");
  g_assert_false (qipc_mirror_get_remote_present (handle));
}

static void
drop_mirror (GObject     *instance,
             int          value,
             const char  *label,
             GObject    **mirror)
{
  g_assert_true (instance == *mirror);
  g_clear_object (mirror);
}

/* This process loses its broker: the remote is gone for it too, and
 * back with the broker. */
static void
test_broker_lost_and_back (Fixture       *fixture,
                              gconstpointer  data)
{
  g_autoptr(GObject) mirror = mirror_counter (fixture->bus, "app/counter");
  Presence presence = { FALSE, FALSE };
  QipcMirror *handle = watch_presence (mirror, &presence);
  qipc_test_child_kill (fixture->broker);
  g_clear_pointer (&fixture->broker, qipc_test_child_free);
  wait_for_flag (&presence.vanished, "vanished");
  g_assert_false (qipc_mirror_get_remote_present (handle));

  /* A broker again: both buses reconnect, and the state is read again. */
  fixture->broker = qipc_test_child_spawn ("broker", fixture->address, NULL);
  qipc_test_child_expect (fixture->broker, "listening");
  wait_for_flag (&presence.appeared, "appeared");
  g_assert_true (qipc_mirror_get_remote_present (handle));
  qipc_test_child_send (fixture->exporter, "set 12");
  wait_for_value (mirror, 12, "a value after the reconnection");
}

/* A handler of the mirror's own signal drops the last reference. */
static void
test_dropped_in_handler (Fixture       *fixture,
                         gconstpointer  data)
{
  GObject *mirror = mirror_counter (fixture->bus, "app/counter");
  QipcMirror *handle = qipc_mirror_get_for_object (mirror);
  g_autoptr(GError) error = NULL;

  g_object_add_weak_pointer (G_OBJECT (handle), (gpointer *) &handle);
  g_signal_connect (mirror, "value-changed", G_CALLBACK (drop_mirror), &mirror);
  qipc_test_child_send (fixture->exporter, "set 5");
  qipc_test_child_expect (fixture->exporter, "ok");
  wait_for_flag_cleared ((gpointer *) &handle, "the mirror's handle to go");
  g_assert_null (mirror);
  /* What the exporter sends next goes nowhere. */
  qipc_test_child_send (fixture->exporter, "set 6");
  qipc_test_child_expect (fixture->exporter, "ok");
  g_assert_true (qipc_channel_flush_for_bus (fixture->bus, &error));
  g_assert_no_error (error);
}

static void
test_not_found (Fixture       *fixture,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GObject) mirror = qipc_mirror_new (G_OBJECT (fixture->bus), "app/nobody",
                                               QIPC_TEST_TYPE_COUNTER, &error);

  g_assert_null (mirror);
  g_assert_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "app/nobody"));
}

static void
test_async_and_cancel (Fixture       *fixture,
                       gconstpointer  data)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GObject) mirror = NULL;

  qipc_mirror_new_async (G_OBJECT (fixture->bus), "app/counter", QIPC_TEST_TYPE_COUNTER, NULL,
                         qipc_test_store_result, &result);
  qipc_test_wait_for_result (&result);
  mirror = qipc_mirror_new_finish (result, &error);
  g_assert_no_error (error);
  g_assert_cmpint (qipc_test_counter_get_value (QIPC_TEST_COUNTER (mirror)), ==, 41);
  g_clear_object (&result);

  qipc_mirror_new_async (G_OBJECT (fixture->bus), "app/counter", QIPC_TEST_TYPE_COUNTER,
                         cancellable, qipc_test_store_result, &result);
  g_cancellable_cancel (cancellable);
  qipc_test_wait_for_result (&result);
  g_assert_null (qipc_mirror_new_finish (result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

/* ------------------------------------------------------------------ */
/* In one process                                                      */

typedef struct
{
  char *address;
  QipcBroker *broker;
  QipcBus *bus;
} Local;

static void
local_setup (Local         *local,
             gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  local->address = qipc_test_abstract_address ("local");
  local->broker = qipc_broker_new ();
  g_assert_true (qipc_broker_listen (local->broker, local->address, &error));
  g_assert_no_error (error);
  local->bus = qipc_bus_new_for_address (local->address, &error);
  g_assert_no_error (error);
}

static void
local_teardown (Local         *local,
                gconstpointer  data)
{
  g_clear_object (&local->bus);
  g_clear_object (&local->broker);
  g_free (local->address);
}

static void
test_unsupported (Local         *local,
                  gconstpointer  data)
{
  g_autoptr(GObject) oddball = g_object_new (QIPC_TEST_TYPE_ODDBALL, NULL);
  g_autoptr(GError) error = NULL;
  guint id;

  id = qipc_bus_export_object (local->bus, "app/oddball", oddball, QIPC_EXPORT_FLAGS_ALL, &error);
  g_assert_cmpuint (id, ==, 0);
  g_assert_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_UNSUPPORTED_TYPE);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "'raw'"));
  g_assert_nonnull (strstr (error->message, "gpointer"));
  g_clear_error (&error);

  id = qipc_bus_export_object (local->bus, "app/oddball", oddball, QIPC_EXPORT_FLAGS_PROPERTIES, &error);
  g_assert_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_UNSUPPORTED_TYPE);
  g_assert_nonnull (strstr (error->message, "'handle'"));
  g_clear_error (&error);

  id = qipc_bus_export_object (local->bus, "app/oddball", oddball,
                               QIPC_EXPORT_FLAGS_ALL | QIPC_EXPORT_FLAGS_SKIP_UNSUPPORTED, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (id, >, 0);
  g_assert_true (qipc_bus_unexport_object (local->bus, id));
  g_assert_false (qipc_bus_unexport_object (local->bus, id));
}

static void
on_fine (GObject  *mirror,
         int       value,
         gboolean *fine)
{
  *fine = value == 7;
}

/* What is left after skipping still works, in the same process. */
static void
test_skipped_still_work (Local         *local,
                         gconstpointer  data)
{
  g_autoptr(GObject) oddball = g_object_new (QIPC_TEST_TYPE_ODDBALL, NULL);
  g_autoptr(GObject) mirror = NULL;
  g_autoptr(GError) error = NULL;
  gboolean fine = FALSE;
  guint id;

  id = qipc_bus_export_object (local->bus, "app/oddball", oddball,
                               QIPC_EXPORT_FLAGS_ALL | QIPC_EXPORT_FLAGS_SKIP_UNSUPPORTED, &error);
  g_assert_no_error (error);
  mirror = qipc_mirror_new (G_OBJECT (local->bus), "app/oddball", QIPC_TEST_TYPE_ODDBALL, &error);
  g_assert_no_error (error);
  g_signal_connect (mirror, "fine", G_CALLBACK (on_fine), &fine);
  g_signal_emit_by_name (oddball, "fine", 7);
  g_signal_emit_by_name (oddball, "raw", NULL);
  wait_for_flag (&fine, "the signal that can be carried");
  qipc_bus_unexport_object (local->bus, id);
}

static void
test_already_exported (Local         *local,
                       gconstpointer  data)
{
  g_autoptr(QipcTestCounter) counter = qipc_test_counter_new ();
  g_autoptr(GError) error = NULL;
  guint id, again;

  id = qipc_bus_export_object (local->bus, "app/counter", G_OBJECT (counter), QIPC_EXPORT_FLAGS_ALL, &error);
  g_assert_no_error (error);
  again = qipc_bus_export_object (local->bus, "app/counter", G_OBJECT (counter), QIPC_EXPORT_FLAGS_ALL, &error);
  g_assert_cmpuint (again, ==, 0);
  g_assert_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_ALREADY_EXPORTED);
  g_assert_true (qipc_bus_unexport_object (local->bus, id));
}

/* An exported object that changes after its bus was closed: nothing to
 * send to, and nothing to warn about (warnings are fatal here). */
static void
test_closed_bus (Local         *local,
                 gconstpointer  data)
{
  g_autoptr(QipcTestCounter) counter = qipc_test_counter_new ();
  g_autoptr(GError) error = NULL;
  guint id;

  id = qipc_bus_export_object (local->bus, "app/counter", G_OBJECT (counter), QIPC_EXPORT_FLAGS_ALL, &error);
  g_assert_no_error (error);
  qipc_bus_close (local->bus);
  qipc_test_counter_set_value (counter, 3);
  g_assert_true (qipc_bus_unexport_object (local->bus, id));
}

static void
test_invalid_path (Local         *local,
                   gconstpointer  data)
{
  const char *paths[] = { "", "app/*", "app//counter", "app/counter/.call", "app/.reply/x" };
  g_autoptr(QipcTestCounter) counter = qipc_test_counter_new ();

  for (gsize i = 0; i < G_N_ELEMENTS (paths); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GObject) mirror = NULL;

      g_assert_cmpuint (qipc_bus_export_object (local->bus, paths[i], G_OBJECT (counter),
                                                QIPC_EXPORT_FLAGS_ALL, &error), ==, 0);
      g_assert_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_INVALID_NAME);
      g_clear_error (&error);
      mirror = qipc_mirror_new (G_OBJECT (local->bus), paths[i], QIPC_TEST_TYPE_COUNTER, &error);
      g_assert_null (mirror);
      g_assert_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_INVALID_NAME);
    }
}

/* The mirror's handle goes with its instance. */
static void
test_lifetime (Local         *local,
               gconstpointer  data)
{
  g_autoptr(QipcTestCounter) counter = qipc_test_counter_new ();
  g_autoptr(GError) error = NULL;
  GObject *mirror;
  QipcMirror *handle;
  guint id;

  id = qipc_bus_export_object (local->bus, "app/counter", G_OBJECT (counter), QIPC_EXPORT_FLAGS_ALL, &error);
  g_assert_no_error (error);
  mirror = qipc_mirror_new (G_OBJECT (local->bus), "app/counter", QIPC_TEST_TYPE_COUNTER, &error);
  g_assert_no_error (error);
  handle = qipc_mirror_get_for_object (mirror);
  g_object_add_weak_pointer (G_OBJECT (handle), (gpointer *) &handle);
  g_object_unref (mirror);
  g_assert_null (handle);
  /* Changes after the mirror is gone go nowhere. */
  qipc_test_counter_set_value (counter, 3);
  g_assert_true (qipc_bus_unexport_object (local->bus, id));
}

/* A type with a read-only property, "level", which only the original
 * can change, and a writable one, "unit". */
#define TEST_TYPE_GAUGE (test_gauge_get_type ())
G_DECLARE_FINAL_TYPE (TestGauge, test_gauge, TEST, GAUGE, GObject)

struct _TestGauge
{
  GObject parent_instance;
  int level;
  char *unit;
};

enum { GAUGE_PROP_0, GAUGE_PROP_LEVEL, GAUGE_PROP_UNIT, GAUGE_N_PROPS };
static GParamSpec *gauge_properties[GAUGE_N_PROPS];

G_DEFINE_FINAL_TYPE (TestGauge, test_gauge, G_TYPE_OBJECT)

static void
test_gauge_get_property (GObject    *object,
                         guint       prop_id,
                         GValue     *value,
                         GParamSpec *pspec)
{
  TestGauge *self = TEST_GAUGE (object);

  if (prop_id == GAUGE_PROP_LEVEL)
    g_value_set_int (value, self->level);
  else
    g_value_set_string (value, self->unit);
}

static void
test_gauge_set_property (GObject      *object,
                         guint         prop_id,
                         const GValue *value,
                         GParamSpec   *pspec)
{
  TestGauge *self = TEST_GAUGE (object);

  g_free (self->unit);
  self->unit = g_value_dup_string (value);
}

static void
test_gauge_finalize (GObject *object)
{
  g_free (TEST_GAUGE (object)->unit);
  G_OBJECT_CLASS (test_gauge_parent_class)->finalize (object);
}

static void
test_gauge_class_init (TestGaugeClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = test_gauge_get_property;
  object_class->set_property = test_gauge_set_property;
  object_class->finalize = test_gauge_finalize;
  gauge_properties[GAUGE_PROP_LEVEL] =
    g_param_spec_int ("level", NULL, NULL, 0, 100, 0, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  gauge_properties[GAUGE_PROP_UNIT] =
    g_param_spec_string ("unit", NULL, NULL, NULL, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, GAUGE_N_PROPS, gauge_properties);
}

static void
test_gauge_init (TestGauge *self)
{
}

static void
test_gauge_set_level (TestGauge *self,
                      int        level)
{
  self->level = level;
  g_object_notify_by_pspec (G_OBJECT (self), gauge_properties[GAUGE_PROP_LEVEL]);
}

/* The level a mirror last heard of, -1 for none. */
static int
remote_level (GObject *mirror)
{
  g_auto(GValue) value = G_VALUE_INIT;

  if (!qipc_mirror_get_remote_property (qipc_mirror_get_for_object (mirror), "level", &value))
    return -1;
  return g_value_get_int (&value);
}

typedef struct
{
  GObject *mirror;
  int level;
} LevelWait;

static gboolean
remote_level_is (gconstpointer data)
{
  const LevelWait *wait = data;

  return remote_level (wait->mirror) == wait->level;
}

/* A read-only property keeps its default on the mirror's instance, which
 * notifies it all the same, and the remote value is read with
 * qipc_mirror_get_remote_property(). */
static void
check_read_only_property (TestGauge *gauge,
                          GObject   *mirror)
{
  LevelWait wait = { mirror, 9 };
  int local_level = -1;
  guint notified = 0;

  g_assert_cmpint (remote_level (mirror), ==, 5);
  g_object_get (mirror, "level", &local_level, NULL);
  g_assert_cmpint (local_level, ==, 0);
  g_signal_connect (mirror, "notify::level", G_CALLBACK (qipc_test_count_notify), &notified);
  test_gauge_set_level (gauge, 9);
  qipc_test_wait_until (remote_level_is, &wait, "the new remote level");
  g_assert_cmpuint (notified, ==, 1);
  g_signal_handlers_disconnect_by_func (mirror, qipc_test_count_notify, &notified);
}

static void
test_read_only_property (Local         *local,
                         gconstpointer  data)
{
  g_autoptr(TestGauge) gauge = g_object_new (TEST_TYPE_GAUGE, "unit", "bar", NULL);
  g_autoptr(GObject) mirror = NULL;
  g_autoptr(GError) error = NULL;
  guint id;

  test_gauge_set_level (gauge, 5);
  id = qipc_bus_export_object (local->bus, "app/gauge", G_OBJECT (gauge), QIPC_EXPORT_FLAGS_ALL, &error);
  g_assert_no_error (error);
  mirror = qipc_mirror_new (G_OBJECT (local->bus), "app/gauge", TEST_TYPE_GAUGE, &error);
  g_assert_no_error (error);
  check_read_only_property (gauge, mirror);
  g_assert_true (qipc_bus_unexport_object (local->bus, id));
}

/* ------------------------------------------------------------------ */
/* Over D-Bus, on a private bus                                        */

typedef struct
{
  GTestDBus *dbus;
  char *name;
  QipcTestChild *exporter;
  GDBusConnection *connection;
} DBusFixture;

static QipcTestChild *
spawn_dbus_exporter (DBusFixture *fixture,
                     const char  *value)
{
  QipcTestChild *child = qipc_test_child_spawn ("counter-dbus-export",
                                                g_test_dbus_get_bus_address (fixture->dbus),
                                                fixture->name, value, NULL);

  qipc_test_child_expect (child, "exported");
  return child;
}

static void
dbus_setup (DBusFixture   *fixture,
            gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  fixture->dbus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (fixture->dbus);
  fixture->name = g_strdup_printf ("org.qipc.Test.Counter%d", (int) getpid ());
  fixture->exporter = spawn_dbus_exporter (fixture, "41");
  fixture->connection = g_dbus_connection_new_for_address_sync (
    g_test_dbus_get_bus_address (fixture->dbus),
    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
    NULL, NULL, &error);
  g_assert_no_error (error);
}

static void
dbus_teardown (DBusFixture   *fixture,
               gconstpointer  data)
{
  g_dbus_connection_close_sync (fixture->connection, NULL, NULL);
  g_clear_object (&fixture->connection);
  if (fixture->exporter != NULL)
    qipc_test_child_kill (fixture->exporter);
  g_clear_pointer (&fixture->exporter, qipc_test_child_free);
  g_test_dbus_down (fixture->dbus);
  g_clear_object (&fixture->dbus);
  g_free (fixture->name);
}

static GObject *
mirror_dbus_counter (DBusFixture *fixture)
{
  g_autofree char *path = g_strconcat (fixture->name, ":/org/qipc/test/Counter", NULL);
  g_autoptr(GError) error = NULL;
  GObject *mirror = qipc_mirror_new (G_OBJECT (fixture->connection), path,
                                     QIPC_TEST_TYPE_COUNTER, &error);

  g_assert_no_error (error);
  g_assert_true (QIPC_TEST_IS_COUNTER (mirror));
  return mirror;
}

static void
test_dbus_counter (DBusFixture   *fixture,
                   gconstpointer  data)
{
  g_autoptr(GObject) mirror = mirror_dbus_counter (fixture);
  g_autoptr(Events) events = events_watch (mirror);
  QipcMirror *handle = qipc_mirror_get_for_object (mirror);
  g_autofree char *label = get_label (mirror);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GVariant) ret = NULL;
  g_autoptr(GError) error = NULL;
  int local_ret = -1;

  g_assert_cmpint (qipc_test_counter_get_value (QIPC_TEST_COUNTER (mirror)), ==, 41);
  g_assert_cmpstr (label, ==, "start");
  g_assert_cmpstr (qipc_mirror_get_path (handle), ==, "/org/qipc/test/Counter");

  /* Remote change: notify, then the signal, as emitted. */
  qipc_test_child_send (fixture->exporter, "set 5");
  qipc_test_child_expect (fixture->exporter, "ok");
  wait_for_events (events, 2, "the remote value");
  g_assert_cmpstr (events->events->pdata[0], ==, "notify value");
  g_assert_cmpstr (events->events->pdata[1], ==, "value-changed 5 start");

  /* Local set reaches the original. */
  qipc_test_counter_set_value (QIPC_TEST_COUNTER (mirror), 7);
  qipc_test_child_send (fixture->exporter, "wait-value 7");
  qipc_test_child_expect (fixture->exporter, "value 7");
  wait_for_events (events, 4, "value-changed 7");
  g_assert_cmpstr (events->events->pdata[3], ==, "value-changed 7 start");

  /* Actions: emitted, and called for the return value. */
  g_signal_emit_by_name (mirror, "increment", 3, &local_ret);
  g_assert_cmpint (local_ret, ==, 0);
  qipc_test_child_send (fixture->exporter, "wait-value 10");
  qipc_test_child_expect (fixture->exporter, "value 10");
  qipc_mirror_call_async (handle, "increment", g_variant_new ("(i)", 4), NULL,
                          qipc_test_store_result, &result);
  qipc_test_wait_for_result (&result);
  ret = qipc_mirror_call_finish (handle, result, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_variant_get_int32 (ret), ==, 14);
  wait_for_value (mirror, 14, "the value after the call");
}

static void
test_dbus_vanished (DBusFixture   *fixture,
                    gconstpointer  data)
{
  g_autoptr(GObject) mirror = mirror_dbus_counter (fixture);
  Presence presence = { FALSE, FALSE };
  QipcMirror *handle = watch_presence (mirror, &presence);

  qipc_test_child_kill (fixture->exporter);
  g_clear_pointer (&fixture->exporter, qipc_test_child_free);
  wait_for_flag (&presence.vanished, "vanished");
  g_assert_false (qipc_mirror_get_remote_present (handle));

  /* Another process takes the name: followed, state read again. */
  fixture->exporter = spawn_dbus_exporter (fixture, "99");
  wait_for_flag (&presence.appeared, "appeared");
  g_assert_cmpint (qipc_test_counter_get_value (QIPC_TEST_COUNTER (mirror)), ==, 99);
  qipc_test_child_send (fixture->exporter, "set 100");
  wait_for_value (mirror, 100, "a value from the new owner");
}

static void
test_dbus_no_gap (DBusFixture   *fixture,
                  gconstpointer  data)
{
  g_autofree char *path = g_strconcat (fixture->name, ":/org/qipc/test/Counter", NULL);

  check_no_gap (fixture->exporter, G_OBJECT (fixture->connection), path);
}

/* The exporter is qipc_dbus_export_object() itself, in a child. */
static void
test_dbus_real_exporter (DBusFixture   *fixture,
                         gconstpointer  data)
{
  g_autofree char *name = g_strconcat (fixture->name, ".Real", NULL);
  g_autofree char *path = g_strconcat (name, ":/org/qipc/test/Real", NULL);
  g_autoptr(QipcTestChild) exporter = qipc_test_child_spawn ("dbus-counter", "/org/qipc/test/Real",
                                                             name, NULL);
  g_autoptr(GObject) mirror = NULL;
  g_autoptr(Events) events = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GVariant) ret = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *label = NULL;
  Presence presence = { FALSE, FALSE };
  QipcMirror *handle;

  qipc_test_child_expect (exporter, "ready");
  mirror = qipc_mirror_new (G_OBJECT (fixture->connection), path, QIPC_TEST_TYPE_COUNTER, &error);
  g_assert_no_error (error);
  handle = watch_presence (mirror, &presence);
  events = events_watch (mirror);
  g_assert_cmpint (qipc_test_counter_get_value (QIPC_TEST_COUNTER (mirror)), ==, 0);

  qipc_test_child_send (exporter, "label kitchen");
  qipc_test_child_expect (exporter, "ok");
  qipc_test_child_send (exporter, "set 5");
  qipc_test_child_expect (exporter, "ok");
  wait_for_last_signal (events, 5);
  g_assert_cmpstr (events->events->pdata[events->events->len - 1], ==, "value-changed 5 kitchen");
  label = get_label (mirror);
  g_assert_cmpstr (label, ==, "kitchen");

  /* The original's own value-changed comes back: it has the new value. */
  qipc_test_counter_set_value (QIPC_TEST_COUNTER (mirror), 9);
  wait_for_last_signal (events, 9);
  qipc_mirror_call_async (handle, "increment", g_variant_new ("(i)", 2), NULL,
                          qipc_test_store_result, &result);
  qipc_test_wait_for_result (&result);
  ret = qipc_mirror_call_finish (handle, result, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_variant_get_int32 (ret), ==, 11);
  wait_for_last_signal (events, 11);

  qipc_test_child_kill (exporter);
  wait_for_flag (&presence.vanished, "vanished");
  g_assert_false (qipc_mirror_get_remote_present (handle));
}

/* A qipc exporter that keeps its bus name unexports the object: the
 * mirror sees it go, and come back with its state when exported again. */
static void
test_dbus_unexported_and_back (DBusFixture   *fixture,
                               gconstpointer  data)
{
  g_autofree char *name = g_strconcat (fixture->name, ".Again", NULL);
  g_autofree char *path = g_strconcat (name, ":/org/qipc/test/Again", NULL);
  g_autoptr(QipcTestChild) exporter = qipc_test_child_spawn ("dbus-counter", "/org/qipc/test/Again",
                                                             name, NULL);
  g_autoptr(GObject) mirror = NULL;
  g_autoptr(GError) error = NULL;
  Presence presence = { FALSE, FALSE };
  QipcMirror *handle;

  qipc_test_child_expect (exporter, "ready");
  mirror = qipc_mirror_new (G_OBJECT (fixture->connection), path, QIPC_TEST_TYPE_COUNTER, &error);
  g_assert_no_error (error);
  handle = watch_presence (mirror, &presence);

  qipc_test_child_send (exporter, "unexport");
  qipc_test_child_expect (exporter, "unexported");
  wait_for_flag (&presence.vanished, "vanished");
  g_assert_false (qipc_mirror_get_remote_present (handle));

  /* Changed while not exported: the mirror reads the state again. */
  qipc_test_child_send (exporter, "set 33");
  qipc_test_child_expect (exporter, "ok");
  qipc_test_child_send (exporter, "export");
  qipc_test_child_expect (exporter, "exported");
  wait_for_flag (&presence.appeared, "appeared");
  g_assert_true (qipc_mirror_get_remote_present (handle));
  g_assert_cmpint (qipc_test_counter_get_value (QIPC_TEST_COUNTER (mirror)), ==, 33);
  qipc_test_child_send (exporter, "set 34");
  qipc_test_child_expect (exporter, "ok");
  wait_for_value (mirror, 34, "a value after the new export");
}

/* The same as test_read_only_property(), exported on one connection and
 * mirrored on another. */
static void
test_dbus_read_only_property (DBusFixture   *fixture,
                              gconstpointer  data)
{
  g_autoptr(TestGauge) gauge = g_object_new (TEST_TYPE_GAUGE, NULL);
  g_autoptr(GDBusConnection) exporter = NULL;
  g_autoptr(GObject) mirror = NULL;
  g_autoptr(GError) error = NULL;
  guint id;

  exporter = g_dbus_connection_new_for_address_sync (
    g_test_dbus_get_bus_address (fixture->dbus),
    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
    NULL, NULL, &error);
  g_assert_no_error (error);
  test_gauge_set_level (gauge, 5);
  id = qipc_dbus_export_object (exporter, "/org/qipc/test/Gauge", NULL, G_OBJECT (gauge),
                                QIPC_EXPORT_FLAGS_ALL, &error);
  g_assert_no_error (error);
  mirror = qipc_mirror_new_for_dbus (fixture->connection, g_dbus_connection_get_unique_name (exporter),
                                     "/org/qipc/test/Gauge", NULL, TEST_TYPE_GAUGE, NULL, &error);
  g_assert_no_error (error);
  check_read_only_property (gauge, mirror);
  g_assert_true (qipc_dbus_unexport_object (exporter, id));
  g_dbus_connection_close_sync (exporter, NULL, NULL);
}

static void
test_dbus_explicit (DBusFixture   *fixture,
                    gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GObject) mirror = NULL;

  mirror = qipc_mirror_new_for_dbus (fixture->connection, fixture->name, "/org/qipc/test/Counter",
                                     "org.qipc.Object.QipcTestCounter", QIPC_TEST_TYPE_COUNTER,
                                     NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (qipc_test_counter_get_value (QIPC_TEST_COUNTER (mirror)), ==, 41);
  g_clear_object (&mirror);

  mirror = qipc_mirror_new_for_dbus (fixture->connection, "org.qipc.Test.Nobody", "/org/qipc/test/Counter",
                                     NULL, QIPC_TEST_TYPE_COUNTER, NULL, &error);
  g_assert_null (mirror);
  g_assert_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_NOT_FOUND);
  g_clear_error (&error);

  mirror = qipc_mirror_new_for_dbus (fixture->connection, fixture->name, "/org/qipc/test/Nothing",
                                     NULL, QIPC_TEST_TYPE_COUNTER, NULL, &error);
  g_assert_null (mirror);
  g_assert_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_NOT_FOUND);
  g_clear_error (&error);

  mirror = qipc_mirror_new (G_OBJECT (fixture->connection), "/org/qipc/test/Counter",
                            QIPC_TEST_TYPE_COUNTER, &error);
  g_assert_null (mirror);
  g_assert_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_INVALID_NAME);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add ("/mirror/native/initial-state", Fixture, NULL, fixture_setup, test_initial_state, fixture_teardown);
  g_test_add ("/mirror/native/default-bus", Fixture, NULL, fixture_setup, test_default_bus, fixture_teardown);
  g_test_add ("/mirror/native/remote-changes", Fixture, NULL, fixture_setup, test_remote_changes, fixture_teardown);
  g_test_add ("/mirror/native/set-property", Fixture, NULL, fixture_setup, test_set_property, fixture_teardown);
  g_test_add ("/mirror/native/action", Fixture, NULL, fixture_setup, test_action, fixture_teardown);
  g_test_add ("/mirror/native/no-gap", Fixture, NULL, fixture_setup, test_no_gap, fixture_teardown);
  g_test_add ("/mirror/native/vanished-on-kill", Fixture, NULL, fixture_setup, test_vanished_on_kill, fixture_teardown);
  g_test_add ("/mirror/native/replaced-quickly", Fixture, NULL, fixture_setup, test_replaced_quickly, fixture_teardown);
  g_test_add ("/mirror/native/vanished-on-unexport", Fixture, NULL, fixture_setup, test_vanished_on_unexport, fixture_teardown);
  g_test_add ("/mirror/native/broker-lost-and-back", Fixture, NULL, fixture_setup, test_broker_lost_and_back, fixture_teardown);
  g_test_add ("/mirror/native/dropped-in-handler", Fixture, NULL, fixture_setup, test_dropped_in_handler, fixture_teardown);
  g_test_add ("/mirror/native/not-found", Fixture, NULL, fixture_setup, test_not_found, fixture_teardown);
  g_test_add ("/mirror/native/async-and-cancel", Fixture, NULL, fixture_setup, test_async_and_cancel, fixture_teardown);
  /* Mirrors on any channel transport: the same flows over MQTT and over
   * channels carried by D-Bus. */
  g_test_add ("/mirror/mqtt/initial-state", Fixture, NULL, fixture_setup_mqtt, test_initial_state, fixture_teardown);
  g_test_add ("/mirror/mqtt/remote-changes", Fixture, NULL, fixture_setup_mqtt, test_remote_changes, fixture_teardown);
  g_test_add ("/mirror/mqtt/set-property", Fixture, NULL, fixture_setup_mqtt, test_set_property, fixture_teardown);
  g_test_add ("/mirror/mqtt/action", Fixture, NULL, fixture_setup_mqtt, test_action, fixture_teardown);
  g_test_add ("/mirror/mqtt/vanished-on-kill", Fixture, NULL, fixture_setup_mqtt, test_vanished_on_kill, fixture_teardown);
  g_test_add ("/mirror/dbus-channels/initial-state", Fixture, NULL, fixture_setup_dbus, test_initial_state, fixture_teardown);
  g_test_add ("/mirror/dbus-channels/remote-changes", Fixture, NULL, fixture_setup_dbus, test_remote_changes, fixture_teardown);
  g_test_add ("/mirror/dbus-channels/set-property", Fixture, NULL, fixture_setup_dbus, test_set_property, fixture_teardown);
  g_test_add ("/mirror/dbus-channels/action", Fixture, NULL, fixture_setup_dbus, test_action, fixture_teardown);
  g_test_add ("/mirror/dbus-channels/vanished-on-kill", Fixture, NULL, fixture_setup_dbus, test_vanished_on_kill, fixture_teardown);
  g_test_add ("/mirror/export/unsupported", Local, NULL, local_setup, test_unsupported, local_teardown);
  g_test_add ("/mirror/export/skipped-still-work", Local, NULL, local_setup, test_skipped_still_work, local_teardown);
  g_test_add ("/mirror/export/already-exported", Local, NULL, local_setup, test_already_exported, local_teardown);
  g_test_add ("/mirror/export/closed-bus", Local, NULL, local_setup, test_closed_bus, local_teardown);
  g_test_add ("/mirror/export/invalid-path", Local, NULL, local_setup, test_invalid_path, local_teardown);
  g_test_add ("/mirror/native/lifetime", Local, NULL, local_setup, test_lifetime, local_teardown);
  g_test_add ("/mirror/native/read-only-property", Local, NULL, local_setup, test_read_only_property,
              local_teardown);

  g_test_add ("/mirror/dbus/counter", DBusFixture, NULL, dbus_setup, test_dbus_counter, dbus_teardown);
  g_test_add ("/mirror/dbus/vanished", DBusFixture, NULL, dbus_setup, test_dbus_vanished, dbus_teardown);
  g_test_add ("/mirror/dbus/no-gap", DBusFixture, NULL, dbus_setup, test_dbus_no_gap, dbus_teardown);
  g_test_add ("/mirror/dbus/real-exporter", DBusFixture, NULL, dbus_setup, test_dbus_real_exporter, dbus_teardown);
  g_test_add ("/mirror/dbus/explicit", DBusFixture, NULL, dbus_setup, test_dbus_explicit, dbus_teardown);
  g_test_add ("/mirror/dbus/unexported-and-back", DBusFixture, NULL, dbus_setup,
              test_dbus_unexported_and_back, dbus_teardown);
  g_test_add ("/mirror/dbus/read-only-property", DBusFixture, NULL, dbus_setup,
              test_dbus_read_only_property, dbus_teardown);

  return g_test_run ();
}
