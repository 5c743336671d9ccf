/* test-mqtt.c: channels over MQTT, on a mosquitto of the test's own
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <qipc.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>

#include "test-utils.h"

#define WAIT_SECONDS 20

/* The address of @mosquitto, with @options (NULL: none). */
static char *
bus_address (QipcTestMosquitto *mosquitto,
             const char        *options)
{
  return g_strdup_printf ("%s%s%s", qipc_test_mosquitto_get_address (mosquitto),
                          options != NULL ? "?" : "", options != NULL ? options : "");
}

static QipcBus *
connect_bus (QipcTestMosquitto *mosquitto,
             const char        *options)
{
  g_autofree char *address = bus_address (mosquitto, options);
  g_autoptr(GError) error = NULL;
  QipcBus *bus = qipc_bus_new_for_address (address, &error);

  g_assert_no_error (error);
  return bus;
}

/* ------------------------------------------------------------------ */
/* Addresses                                                           */

static void
test_address_invalid (void)
{
  const struct { const char *address; const char *names; } cases[] = {
    { "mqtt://", "no host" },
    { "mqtt://127.0.0.1:1883?bogus=1", "bogus" },
    { "mqtt://127.0.0.1:1883?keepalive=soon", "keepalive" },
    { "mqtt://127.0.0.1:1883?keepalive=1", "keepalive" },
    { "mqtt://127.0.0.1:1883?format=xml", "format" },
    { "mqtt://127.0.0.1:1883?prefix=a/+", "prefix" },
    { "mqtt://127.0.0.1:1883?prefix=a//b", "prefix" },
    { "mqtt://127.0.0.1:1883?client-id=a/b", "client-id" },
    { "mqtt://127.0.0.1:1883?client-id=", "client-id" },
    { "mqtt://127.0.0.1:1883?password=x", "password" },
    { "mqtt://127.0.0.1:1883?ca=/etc/ca.pem", "ca" },
    { "mqtt://127.0.0.1:1883?no-local=yes", "no-local" },
    { "mqtt://127.0.0.1:1883?format=json&format=json", "twice" },
    { "mqtt://127.0.0.1:1883?format", "format" },
    { "mqtt://user:pw@127.0.0.1:1883", "user" },
    { "mqtt://127.0.0.1:1883/path", "path" },
    { "mqtt://127.0.0.1:99999", "99999" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(QipcBus) bus = qipc_bus_new_for_address (cases[i].address, &error);

      g_test_message ("%s: %s", cases[i].address, error != NULL ? error->message : "accepted");
      g_assert_null (bus);
      g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_INVALID_ADDRESS);
      g_assert_nonnull (strstr (error->message, cases[i].names));
    }
}

static void
test_address_no_broker (void)
{
  g_autoptr(QipcTestMosquitto) mosquitto = qipc_test_mosquitto_start ();
  g_autofree char *address = g_strdup (qipc_test_mosquitto_get_address (mosquitto));
  g_autoptr(GError) error = NULL;
  g_autoptr(QipcBus) bus = NULL;

  qipc_test_mosquitto_stop (mosquitto);
  bus = qipc_bus_new_for_address (address, &error);
  g_assert_null (bus);
  g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_BROKER_NOT_FOUND);
}

/* QIPC_BUS_ADDRESS=mqtt://… puts a process's default bus on MQTT. */
static void
test_address_default_bus (void)
{
  g_autoptr(QipcTestMosquitto) mosquitto = qipc_test_mosquitto_start ();
  const char *address = qipc_test_mosquitto_get_address (mosquitto);
  g_autoptr(QipcTestChild) child = NULL;
  g_autoptr(QipcBus) bus = NULL;
  g_autoptr(GError) error = NULL;

  g_setenv ("QIPC_BUS_ADDRESS", address, TRUE);
  child = qipc_test_child_spawn ("channel-default", "default/x", NULL);
  g_unsetenv ("QIPC_BUS_ADDRESS");
  qipc_test_child_expect (child, "ready");
  bus = qipc_bus_new_for_address (address, &error);
  g_assert_no_error (error);
  g_assert_true (qipc_test_is_registered (bus, "default/x"));
  qipc_test_child_kill (child);
}

/* ------------------------------------------------------------------ */
/* Channel semantics                                                   */

typedef struct
{
  QipcTestMosquitto *mosquitto;
  QipcBus *bus;
} Fixture;

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  data)
{
  fixture->mosquitto = qipc_test_mosquitto_start ();
  fixture->bus = connect_bus (fixture->mosquitto, data);
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  data)
{
  g_clear_object (&fixture->bus);
  qipc_test_mosquitto_free (fixture->mosquitto);
}

static void
test_own_message (Fixture       *fixture,
                  gconstpointer  data)
{
  g_autoptr(QipcTestInbox) inbox = qipc_test_inbox_new ();
  G_GNUC_UNUSED g_autoptr(QipcChannel) channel = qipc_test_listen (fixture->bus, "app/events", inbox);

  qipc_test_flush_ok (fixture->bus);
  qipc_test_send_ok (fixture->bus, "app/events", "hello", NULL);
  qipc_test_send_ok (fixture->bus, "app/events", "value", g_variant_new ("(si)", "x", 42));
  qipc_test_inbox_wait (inbox, 2);
  qipc_test_settle (100);
  g_assert_cmpuint (inbox->messages->len, ==, 2);
  g_assert_cmpstr (inbox->messages->pdata[0], ==, "app/events hello none");
  g_assert_cmpstr (inbox->messages->pdata[1], ==, "app/events value ('x', 42)");
}

/* A channel that outlives its closed bus unsubscribes afterwards: that
 * scheduled a presence update on the closed transport, which ran after
 * the transport was freed (found from Python, where the garbage
 * collector frees the channel late). */
static void
test_channel_outlives_bus (Fixture       *fixture,
                           gconstpointer  data)
{
  g_autoptr(QipcTestInbox) inbox = qipc_test_inbox_new ();
  QipcChannel *channel = qipc_test_listen (fixture->bus, "late/x", inbox);

  qipc_test_flush_ok (fixture->bus);
  qipc_bus_close (fixture->bus);
  g_object_unref (channel);
  g_clear_object (&fixture->bus);
  /* Whatever the transport left behind runs now. */
  qipc_test_settle (100);
}

/* Calls answered in the same round, the first of whose callbacks closes
 * the bus: the close fails the others and takes them out of the
 * transport's queue, which the round was still walking. */
typedef struct
{
  QipcBus *bus;
  gboolean done;
} CloseInCallback;

static void
close_bus_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  CloseInCallback *data = user_data;
  g_autoptr(GError) error = NULL;

  g_assert_true (qipc_channel_flush_finish (result, &error));
  g_assert_no_error (error);
  qipc_bus_close (data->bus);
  data->done = TRUE;
}

static void
test_close_in_call_callback (Fixture       *fixture,
                             gconstpointer  data)
{
  CloseInCallback first = { fixture->bus, FALSE };
  g_autoptr(GAsyncResult) second = NULL;
  g_autoptr(GAsyncResult) third = NULL;

  qipc_test_flush_ok (fixture->bus);
  qipc_channel_flush_async (fixture->bus, NULL, close_bus_cb, &first);
  qipc_channel_flush_async (fixture->bus, NULL, qipc_test_store_result, &second);
  qipc_channel_flush_async (fixture->bus, NULL, qipc_test_store_result, &third);
  qipc_test_wait_for_result (&second);
  qipc_test_wait_for_result (&third);
  g_assert_true (first.done);
  /* Answered or failed by the close, but answered once. */
  qipc_channel_flush_finish (second, NULL);
  qipc_channel_flush_finish (third, NULL);
  qipc_test_settle (50);
}

static void
count_detail (QipcChannel *channel,
              const char  *message,
              GVariant    *data,
              gpointer     user_data)
{
  (*(guint *) user_data)++;
}

static void
test_detail (Fixture       *fixture,
             gconstpointer  data)
{
  g_autoptr(QipcTestInbox) inbox = qipc_test_inbox_new ();
  g_autoptr(QipcChannel) channel = qipc_test_listen (fixture->bus, "app/detail", inbox);
  guint detailed = 0;

  g_signal_connect (channel, "received::setValue", G_CALLBACK (count_detail), &detailed);
  qipc_test_flush_ok (fixture->bus);
  qipc_test_send_ok (fixture->bus, "app/detail", "other", NULL);
  qipc_test_send_ok (fixture->bus, "app/detail", "setValue", g_variant_new_int32 (1));
  qipc_test_inbox_wait (inbox, 2);
  g_assert_cmpuint (detailed, ==, 1);
}

/* Overlapping names and patterns on one bus: each channel gets each
 * message once, although MQTT delivers a copy per subscription. */
static void
test_patterns (Fixture       *fixture,
               gconstpointer  data)
{
  g_autoptr(QipcTestInbox) inbox = qipc_test_inbox_new ();
  G_GNUC_UNUSED g_autoptr(QipcChannel) exact = qipc_test_listen (fixture->bus, "a/b", inbox);
  G_GNUC_UNUSED g_autoptr(QipcChannel) star = qipc_test_listen (fixture->bus, "a/*", inbox);
  G_GNUC_UNUSED g_autoptr(QipcChannel) star_star = qipc_test_listen (fixture->bus, "a/**", inbox);
  G_GNUC_UNUSED g_autoptr(QipcChannel) everything = qipc_test_listen (fixture->bus, "**", inbox);
  G_GNUC_UNUSED g_autoptr(QipcChannel) other = qipc_test_listen (fixture->bus, "x/*/z", inbox);

  qipc_test_flush_ok (fixture->bus);
  qipc_test_send_ok (fixture->bus, "a/b", "m1", NULL);
  qipc_test_send_ok (fixture->bus, "a/b/c", "m2", NULL);
  qipc_test_send_ok (fixture->bus, "x/y/z", "m3", NULL);
  qipc_test_send_ok (fixture->bus, "a", "m4", NULL);
  /* a/b: 4 channels; a/b/c: 2; x/y/z: 2; a: only "**" */
  qipc_test_inbox_wait (inbox, 9);
  qipc_test_settle (300);
  g_assert_cmpuint (inbox->messages->len, ==, 9);
  g_assert_true (qipc_test_inbox_has (inbox, "a/b m1 none"));
  g_assert_true (qipc_test_inbox_has (inbox, "a/* m1 none"));
  g_assert_true (qipc_test_inbox_has (inbox, "a/** m1 none"));
  g_assert_true (qipc_test_inbox_has (inbox, "** m1 none"));
  g_assert_true (qipc_test_inbox_has (inbox, "a/** m2 none"));
  g_assert_true (qipc_test_inbox_has (inbox, "** m2 none"));
  g_assert_true (qipc_test_inbox_has (inbox, "x/*/z m3 none"));
  g_assert_true (qipc_test_inbox_has (inbox, "** m3 none"));
  g_assert_true (qipc_test_inbox_has (inbox, "** m4 none"));
}

static void
test_unregister (Fixture       *fixture,
                 gconstpointer  data)
{
  g_autoptr(QipcTestInbox) inbox = qipc_test_inbox_new ();
  g_autoptr(QipcChannel) kept = qipc_test_listen (fixture->bus, "u/*", inbox);
  QipcChannel *dropped = qipc_test_listen (fixture->bus, "u/x", inbox);

  qipc_test_flush_ok (fixture->bus);
  g_object_unref (dropped);
  qipc_test_flush_ok (fixture->bus);
  qipc_test_send_ok (fixture->bus, "u/x", "after", NULL);
  qipc_test_inbox_wait (inbox, 1);
  qipc_test_settle (300);
  g_assert_cmpuint (inbox->messages->len, ==, 1);
  g_assert_cmpstr (inbox->messages->pdata[0], ==, "u/* after none");

  /* The last one too: nothing matches any more. */
  g_clear_object (&kept);
  qipc_test_flush_ok (fixture->bus);
  g_assert_false (qipc_test_is_registered (fixture->bus, "u/x"));
}

/* A flush returns once the broker has taken everything before it: a
 * receiver that flushes after the sender's flush has it all queued. */
static void
test_flush (Fixture       *fixture,
            gconstpointer  data)
{
  g_autoptr(QipcBus) other = connect_bus (fixture->mosquitto, NULL);
  g_autoptr(QipcTestInbox) inbox = qipc_test_inbox_new ();
  G_GNUC_UNUSED g_autoptr(QipcChannel) channel = qipc_test_listen (other, "f/x", inbox);

  qipc_test_flush_ok (other);
  for (guint i = 0; i < 100; i++)
    qipc_test_send_ok (fixture->bus, "f/x", "n", g_variant_new_uint32 (i));
  qipc_test_flush_ok (fixture->bus);
  g_assert_true (qipc_test_is_registered (fixture->bus, "f/x"));
  qipc_test_inbox_wait (inbox, 100);
}

static void
count_monitored (QipcBus    *bus,
                 const char *channel,
                 const char *message,
                 GVariant   *data,
                 gpointer    user_data)
{
  g_ptr_array_add (user_data, g_strdup_printf ("%s %s", channel, message));
}

/* Monitoring sees every channel under the prefix once, even where a
 * channel of the bus matches too. */
static void
test_monitor (Fixture       *fixture,
              gconstpointer  data)
{
  g_autoptr(QipcBus) other = connect_bus (fixture->mosquitto, NULL);
  g_autoptr(GPtrArray) seen = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(QipcTestInbox) inbox = qipc_test_inbox_new ();
  G_GNUC_UNUSED g_autoptr(QipcChannel) channel = qipc_test_listen (fixture->bus, "mon/**", inbox);
  g_autoptr(GError) error = NULL;
  guint timeout;

  g_signal_connect (fixture->bus, "monitored", G_CALLBACK (count_monitored), seen);
  g_assert_true (qipc_bus_start_monitor (fixture->bus, &error));
  g_assert_no_error (error);
  qipc_test_send_ok (other, "mon/a/b", "one", NULL);
  qipc_test_send_ok (other, "elsewhere", "two", NULL);
  qipc_test_flush_ok (other);
  qipc_test_inbox_wait (inbox, 1);
  timeout = qipc_test_add_deadline ("monitored messages");
  while (seen->len < 2)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (timeout);
  qipc_test_settle (200);
  g_assert_cmpuint (seen->len, ==, 2);
  g_assert_cmpstr (seen->pdata[0], ==, "mon/a/b one");
  g_assert_cmpstr (seen->pdata[1], ==, "elsewhere two");
  g_assert_cmpuint (inbox->messages->len, ==, 1);
}

static void
flush_and_query (QipcChannel *channel,
                 const char  *message,
                 GVariant    *data,
                 gpointer     user_data)
{
  QipcBus *bus = qipc_channel_get_bus (channel);
  g_autoptr(GError) error = NULL;

  /* Blocking calls run the context again, inside this handler. */
  g_assert_true (qipc_channel_flush_for_bus (bus, &error));
  g_assert_no_error (error);
  g_assert_true (qipc_channel_is_registered_for_bus (bus, "h/x", &error));
  g_assert_no_error (error);
  (*(guint *) user_data)++;
}

static void
test_blocking_in_handler (Fixture       *fixture,
                          gconstpointer  data)
{
  g_autoptr(QipcChannel) channel = qipc_test_listen (fixture->bus, "h/x", NULL);
  guint handled = 0;
  guint timeout;

  g_signal_connect (channel, "received", G_CALLBACK (flush_and_query), &handled);
  qipc_test_flush_ok (fixture->bus);
  for (guint i = 0; i < 5; i++)
    qipc_test_send_ok (fixture->bus, "h/x", "m", g_variant_new_uint32 (i));
  timeout = qipc_test_add_deadline ("the handlers");
  while (handled < 5)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (timeout);
}

static void
test_is_registered (Fixture       *fixture,
                    gconstpointer  data)
{
  g_autofree char *address = bus_address (fixture->mosquitto, NULL);
  g_autoptr(QipcTestChild) listener = NULL;
  gint64 deadline;

  g_assert_false (qipc_test_is_registered (fixture->bus, "svc/clock"));
  listener = qipc_test_child_spawn ("channel-listen", address, "svc/*", NULL);
  qipc_test_child_expect (listener, "ready");
  g_assert_true (qipc_test_is_registered (fixture->bus, "svc/clock"));
  g_assert_false (qipc_test_is_registered (fixture->bus, "svc/clock/x"));
  g_assert_false (qipc_test_is_registered (fixture->bus, "other"));

  /* SIGKILL: the broker publishes the listener's last will, which
   * clears its presence. */
  qipc_test_child_kill (listener);
  deadline = g_get_monotonic_time () + WAIT_SECONDS * G_USEC_PER_SEC;
  while (qipc_test_is_registered (fixture->bus, "svc/clock"))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_usleep (10000);
    }
}

static void
test_list (Fixture       *fixture,
           gconstpointer  data)
{
  G_GNUC_UNUSED g_autoptr(QipcChannel) a = qipc_test_listen (fixture->bus, "l/a", NULL);
  G_GNUC_UNUSED g_autoptr(QipcChannel) a2 = qipc_test_listen (fixture->bus, "l/a", NULL);
  G_GNUC_UNUSED g_autoptr(QipcChannel) b = qipc_test_listen (fixture->bus, "l/*", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) list = qipc_bus_list_channels (fixture->bus, &error);
  g_autofree char *text = NULL;

  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (list), ==, "a(su)");
  text = g_variant_print (list, FALSE);
  g_assert_nonnull (strstr (text, "('l/a', 2)"));
  g_assert_nonnull (strstr (text, "('l/*', 1)"));
}

static void
test_order (Fixture       *fixture,
            gconstpointer  data)
{
  g_autofree char *address = bus_address (fixture->mosquitto, NULL);
  g_autoptr(QipcTestChild) counter = qipc_test_child_spawn ("channel-count", address, "o/x",
                                                            "10000", "fast", NULL);
  g_autoptr(QipcTestChild) sender = NULL;

  qipc_test_child_expect (counter, "ready");
  sender = qipc_test_child_spawn ("channel-send", address, "o/x", "10000", NULL);
  qipc_test_child_expect (sender, "sent");
  qipc_test_child_expect (counter, "received 10000 lost 0");
  qipc_test_child_expect (counter, "ordered");
}

static void
keep_data (QipcChannel *channel,
           const char  *message,
           GVariant    *data,
           gpointer     user_data)
{
  *(GVariant **) user_data = g_variant_ref (data);
}

static void
test_large (Fixture       *fixture,
            gconstpointer  data)
{
  g_autoptr(QipcBus) other = connect_bus (fixture->mosquitto, NULL);
  g_autoptr(QipcChannel) channel = qipc_test_listen (other, "big/x", NULL);
  g_autoptr(GVariant) received = NULL;
  gsize size = 1024 * 1024;
  g_autofree guint8 *bytes = g_malloc (size);
  GVariant *sent;
  guint timeout;

  for (gsize i = 0; i < size; i++)
    bytes[i] = (i * 7 + i / 4096) & 0xff;
  sent = g_variant_ref_sink (g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, bytes, size, 1));
  g_signal_connect (channel, "received", G_CALLBACK (keep_data), &received);
  qipc_test_flush_ok (other);
  qipc_test_send_ok (fixture->bus, "big/x", "blob", sent);
  timeout = qipc_test_add_deadline ("the payload");
  while (received == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (timeout);
  g_assert_true (g_variant_equal (received, sent));
  g_variant_unref (sent);
}

/* Every kind of value survives JSON (and the gvariant format). */
static void
test_round_trip (Fixture       *fixture,
                 gconstpointer  data)
{
  static const char *const values[] = {
    "true", "byte 200", "int16 -5", "uint16 65535", "-7", "uint32 4000000000",
    "int64 -9000000000000", "uint64 18446744073709551615", "2.5", "'text'",
    "objectpath '/a/b'", "signature 'a{sv}'", "<int16 3>", "<<'nested'>>",
    "@mi nothing", "@mi 5", "@mas just ['x']", "b'bytes\\x00\\xff'",
    "{'a': <1>, 'b': <(2, 'x')>}", "{1: 'one', 2: 'two'}", "{true: 1.5}",
    "('s', 1, [2, 3], {'k': @ms nothing})", "[(1, <[byte 1, 2]>)]", "@a{sv} {}", "@ay []",
    /* json-glib 1.6's generator wrote these two as "1e+40.0", not JSON
     * (found by fuzz-json-messages). */
    "1e40", "[1e-300, 1e300, -0.0, 3.0]",
    /* JSON has no NaN nor infinities: they used to go as null, which no
     * receiver took as a double, so the message was dropped. */
    "nan", "[inf, -inf, nan]", "{inf: <-inf>, nan: <'x'>}",
    /* A key beyond G_MAXINT64 did not read back. */
    "{uint64 18446744073709551615: 'big', 0: 'small'}",
  };
  g_autoptr(QipcTestInbox) inbox = qipc_test_inbox_new ();
  G_GNUC_UNUSED g_autoptr(QipcChannel) channel = qipc_test_listen (fixture->bus, "rt/x", inbox);

  qipc_test_flush_ok (fixture->bus);
  for (gsize i = 0; i < G_N_ELEMENTS (values); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) value = g_variant_parse (NULL, values[i], NULL, NULL, &error);

      g_assert_no_error (error);
      qipc_test_send_ok (fixture->bus, "rt/x", "v", value);
    }
  qipc_test_inbox_wait (inbox, G_N_ELEMENTS (values));
  for (gsize i = 0; i < G_N_ELEMENTS (values); i++)
    {
      g_autoptr(GVariant) value = g_variant_parse (NULL, values[i], NULL, NULL, NULL);
      g_autofree char *text = g_variant_print (value, TRUE);
      g_autofree char *line = g_strdup_printf ("rt/x v %s", text);

      g_assert_cmpstr (inbox->messages->pdata[i], ==, line);
    }
}

/* Data that JSON cannot hold is refused with an error, not sent to
 * arrive changed: a dictionary with one key twice (one entry would be
 * lost) and "just nothing" in a maybe of a maybe (it would arrive as
 * nothing). The gvariant format carries both whole. */
static void
test_unsupported_data (Fixture       *fixture,
                       gconstpointer  data)
{
  gboolean json = data == NULL;
  GVariant *twice[] = { g_variant_new_dict_entry (g_variant_new_string ("k"), g_variant_new_variant (g_variant_new_int32 (1))),
                        g_variant_new_dict_entry (g_variant_new_string ("k"), g_variant_new_variant (g_variant_new_int32 (2))) };
  g_autoptr(GVariant) dict = g_variant_ref_sink (g_variant_new_array (NULL, twice, G_N_ELEMENTS (twice)));
  g_autoptr(GVariant) just_nothing = g_variant_ref_sink (
    g_variant_new_maybe (NULL, g_variant_new_maybe (G_VARIANT_TYPE_INT32, NULL)));
  /* The same, deep inside other data. */
  g_autoptr(GVariant) inside = g_variant_ref_sink (
    g_variant_new ("(s@av)", "x", g_variant_new_array (G_VARIANT_TYPE_VARIANT,
                                                        (GVariant *[]) { g_variant_new_variant (dict) }, 1)));
  GVariant *values[] = { dict, just_nothing, inside };
  g_autoptr(QipcTestInbox) inbox = qipc_test_inbox_new ();
  G_GNUC_UNUSED g_autoptr(QipcChannel) channel = qipc_test_listen (fixture->bus, "odd/x", inbox);

  qipc_test_flush_ok (fixture->bus);
  for (gsize i = 0; i < G_N_ELEMENTS (values); i++)
    {
      g_autoptr(GError) error = NULL;
      gboolean sent = qipc_channel_send_for_bus (fixture->bus, "odd/x", "v", values[i], &error);

      if (json)
        {
          g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_UNSUPPORTED_DATA);
          g_assert_false (sent);
        }
      else
        g_assert_no_error (error);
    }
  /* The bus goes on: a message after them arrives, and arrives first
   * when nothing was sent. */
  qipc_test_send_ok (fixture->bus, "odd/x", "after", NULL);
  qipc_test_inbox_wait (inbox, json ? 1 : G_N_ELEMENTS (values) + 1);
  if (!json)
    for (gsize i = 0; i < G_N_ELEMENTS (values); i++)
      {
        g_autofree char *text = g_variant_print (values[i], TRUE);
        g_autofree char *line = g_strdup_printf ("odd/x v %s", text);

        g_assert_cmpstr (inbox->messages->pdata[i], ==, line);
      }
  g_assert_cmpstr (inbox->messages->pdata[json ? 0 : G_N_ELEMENTS (values)], ==, "odd/x after none");
}

/* ------------------------------------------------------------------ */
/* Interoperation with other MQTT clients                              */

static char *
run_mosquitto_sub_once (QipcTestMosquitto *mosquitto,
                        QipcBus           *bus)
{
  g_autofree char *port = g_strdup_printf ("%u", qipc_test_mosquitto_get_port (mosquitto));
  g_autoptr(GSubprocess) sub = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  gint64 deadline = g_get_monotonic_time () + WAIT_SECONDS * G_USEC_PER_SEC;
  g_autoptr(GAsyncResult) result = NULL;

  sub = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error,
                          "mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-V", "mqttv5",
                          "-t", "qipc/interop/out", "-C", "1", "-W", "20", NULL);
  g_assert_no_error (error);
  /* mosquitto_sub says nothing once subscribed: send until it prints. */
  g_subprocess_communicate_utf8_async (sub, NULL, NULL, qipc_test_store_result, &result);
  while (result == NULL)
    {
      qipc_test_send_ok (bus, "interop/out", "reading", g_variant_new ("(sa{sv})", "x", NULL));
      qipc_test_flush_ok (bus);
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      for (int i = 0; i < 20 && result == NULL; i++)
        g_main_context_iteration (NULL, FALSE), g_usleep (5000);
    }
  g_assert_true (g_subprocess_communicate_utf8_finish (sub, result, &out, NULL, &error));
  g_assert_no_error (error);
  return g_steal_pointer (&out);
}

static void
test_interop_sub (Fixture       *fixture,
                  gconstpointer  data)
{
  g_autofree char *out = run_mosquitto_sub_once (fixture->mosquitto, fixture->bus);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  JsonObject *object;

  g_test_message ("mosquitto_sub printed: %s", out);
  g_assert_true (json_parser_load_from_data (parser, out, -1, &error));
  g_assert_no_error (error);
  object = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpstr (json_object_get_string_member (object, "message"), ==, "reading");
  g_assert_cmpstr (json_object_get_string_member (object, "type"), ==, "(sa{sv})");
  g_assert_cmpstr (json_array_get_string_element (json_object_get_array_member (object, "data"), 0),
                   ==, "x");
}

/* Publishes @payload on @topic with mosquitto_pub, with @extra_args
 * (NULL-terminated, or NULL) after the usual ones. */
static void
run_mosquitto_pub_bytes (QipcTestMosquitto  *mosquitto,
                         const char         *topic,
                         GBytes             *payload,
                         const char * const *extra_args)
{
  g_autofree char *port = g_strdup_printf ("%u", qipc_test_mosquitto_get_port (mosquitto));
  const char *args[] = { "mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-V", "mqttv5",
                         "-q", "1", "-t", topic, "-s" };
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GSubprocess) pub = NULL;
  g_autoptr(GError) error = NULL;

  for (gsize i = 0; i < G_N_ELEMENTS (args); i++)
    g_ptr_array_add (argv, (char *) args[i]);
  for (gsize i = 0; extra_args != NULL && extra_args[i] != NULL; i++)
    g_ptr_array_add (argv, (char *) extra_args[i]);
  g_ptr_array_add (argv, NULL);
  /* The payload on standard input: it may be longer than an argument. */
  pub = g_subprocess_newv ((const char * const *) argv->pdata, G_SUBPROCESS_FLAGS_STDIN_PIPE, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_communicate (pub, payload, NULL, NULL, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_successful (pub));
}

static void
run_mosquitto_pub (QipcTestMosquitto *mosquitto,
                   const char        *topic,
                   const char        *payload)
{
  g_autoptr(GBytes) bytes = g_bytes_new_static (payload, strlen (payload));

  run_mosquitto_pub_bytes (mosquitto, topic, bytes, NULL);
}

/* A message in the gvariant format, as a foreign client may publish it:
 * the data's bytes, its type in a user property. */
static void
run_mosquitto_pub_gvariant (QipcTestMosquitto *mosquitto,
                            const char        *topic,
                            const char        *message,
                            const char        *type,
                            const guint8      *data,
                            gsize              size)
{
  const char *properties[] = { "-D", "publish", "content-type", "application/x-gvariant",
                               "-D", "publish", "user-property", "qipc-message", message,
                               "-D", "publish", "user-property", "qipc-type", type, NULL };
  g_autoptr(GBytes) payload = g_bytes_new (data, size);

  run_mosquitto_pub_bytes (mosquitto, topic, payload, properties);
}

/* The same for the gvariant format: a type deeper than 128 levels, whose
 * untrusted data GLib 2.74 aborts on reading, is dropped. */
static void
test_interop_pub_gvariant (Fixture       *fixture,
                           gconstpointer  data)
{
  g_autoptr(QipcTestInbox) inbox = qipc_test_inbox_new ();
  G_GNUC_UNUSED g_autoptr(QipcChannel) channel = qipc_test_listen (fixture->bus, "interop/in", inbox);
  g_autofree char *maybes = g_strnfill (127, 'm');
  g_autofree char *deep_type = g_strconcat (maybes, "ai", NULL);
  guint8 deep[4 + 127] = { 1 };
  static const guint8 five[] = { 5, 0, 0, 0 };

  qipc_test_flush_ok (fixture->bus);
  run_mosquitto_pub_gvariant (fixture->mosquitto, "qipc/interop/in", "deep", deep_type, deep, sizeof deep);
  run_mosquitto_pub_gvariant (fixture->mosquitto, "qipc/interop/in", "five", "i", five, sizeof five);
  qipc_test_inbox_wait (inbox, 1);
  qipc_test_settle (200);
  g_assert_cmpuint (inbox->messages->len, ==, 1);
  g_assert_cmpstr (inbox->messages->pdata[0], ==, "interop/in five 5");
}

static void
test_interop_pub (Fixture       *fixture,
                  gconstpointer  data)
{
  g_autoptr(QipcTestInbox) inbox = qipc_test_inbox_new ();
  G_GNUC_UNUSED g_autoptr(QipcChannel) channel = qipc_test_listen (fixture->bus, "interop/in", inbox);

  qipc_test_flush_ok (fixture->bus);
  run_mosquitto_pub (fixture->mosquitto, "qipc/interop/in",
                     "{\"message\": \"set\", \"data\": {\"x\": [1, 2], \"y\": \"z\"}, "
                     "\"type\": \"a{sv}\"}");
  run_mosquitto_pub (fixture->mosquitto, "qipc/interop/in",
                     "{\"message\": \"pair\", \"data\": [\"AAE=\", 7], \"type\": \"(ayq)\"}");
  /* No type: what the JSON itself says. */
  run_mosquitto_pub (fixture->mosquitto, "qipc/interop/in",
                     "{\"message\": \"plain\", \"data\": [1, 2]}");
  /* Garbage from foreign clients is dropped, and what follows it works. */
  run_mosquitto_pub (fixture->mosquitto, "qipc/interop/in", "not json");
  run_mosquitto_pub (fixture->mosquitto, "qipc/interop/in", "{\"data\": 1}");
  run_mosquitto_pub (fixture->mosquitto, "qipc/interop/in",
                     "{\"message\": \"bad\", \"data\": 300, \"type\": \"y\"}");
  run_mosquitto_pub (fixture->mosquitto, "qipc/interop/in",
                     "{\"message\": \"bad\", \"data\": 1, \"type\": \"*\"}");
  /* What fuzz-json-messages found: a lone surrogate (not UTF-8 once
   * json-glib has read it), in the data and in the name; a number
   * beyond a double; a scalar where an array of dictionaries goes. */
  run_mosquitto_pub (fixture->mosquitto, "qipc/interop/in",
                     "{\"message\": \"bad\", \"data\": \"\\ud800\", \"type\": \"s\"}");
  run_mosquitto_pub (fixture->mosquitto, "qipc/interop/in", "{\"message\": \"\\ud800\"}");
  run_mosquitto_pub (fixture->mosquitto, "qipc/interop/in",
                     "{\"message\": \"bad\", \"data\": 1e400, \"type\": \"d\"}");
  run_mosquitto_pub (fixture->mosquitto, "qipc/interop/in",
                     "{\"message\": \"bad\", \"data\": [-1], \"type\": \"(aa{si})\"}");
  /* A name twice: which one counts is up to the reader (RFC 8259), so
   * neither does. */
  run_mosquitto_pub (fixture->mosquitto, "qipc/interop/in",
                     "{\"message\": \"bad\", \"message\": \"set\", \"data\": 1}");
  run_mosquitto_pub (fixture->mosquitto, "qipc/interop/in",
                     "{\"message\": \"bad\", \"data\": {\"x\": 1, \"x\": 2}}");
  /* What json-glib reads besides JSON: a second value after the first
   * (it would keep the first), and JavaScript's assignment. */
  run_mosquitto_pub (fixture->mosquitto, "qipc/interop/in",
                     "{\"message\": \"bad\"} {\"message\": \"set\"}");
  run_mosquitto_pub (fixture->mosquitto, "qipc/interop/in", "var x = {\"message\": \"bad\"};");
  /* Nested deep enough to overflow json-glib's stack, were it read. */
  {
    g_autofree char *brackets = qipc_test_nest ("[", "", "]", 200000);
    g_autofree char *objects = qipc_test_nest ("{\"a\": ", "1", "}", 60);
    g_autofree char *deep = g_strdup_printf ("{\"message\": \"bad\", \"data\": %s}", brackets);
    g_autofree char *too_deep_data = g_strdup_printf ("{\"message\": \"bad\", \"data\": %s}", objects);
    g_autofree char *commented = g_strdup_printf ("{\"message\": \"bad\", \"data\": / \" / %s}", brackets);

    run_mosquitto_pub (fixture->mosquitto, "qipc/interop/in", deep);
    /* json-glib reads "/ \" /" as a comment: the quote in it must not
     * hide the brackets from the count. */
    run_mosquitto_pub (fixture->mosquitto, "qipc/interop/in", commented);
    /* Presence messages are JSON from anyone too; a query subscribes
     * to them. */
    g_assert_true (qipc_test_is_registered (fixture->bus, "interop/in"));
    run_mosquitto_pub (fixture->mosquitto, "qipc/$qipc/presence/intruder", deep);
    /* 60 levels of JSON objects are 180 of GVariant (a{sv}), more
     * than data may have. */
    run_mosquitto_pub (fixture->mosquitto, "qipc/interop/in", too_deep_data);
  }
  run_mosquitto_pub (fixture->mosquitto, "qipc/interop/in", "{\"message\": \"none\"}");
  qipc_test_inbox_wait (inbox, 4);
  qipc_test_settle (200);
  g_assert_cmpuint (inbox->messages->len, ==, 4);
  g_assert_cmpstr (inbox->messages->pdata[0], ==,
                   "interop/in set {'x': <[int64 1, 2]>, 'y': <'z'>}");
  g_assert_cmpstr (inbox->messages->pdata[1], ==, "interop/in pair ([byte 0x00, 0x01], uint16 7)");
  g_assert_cmpstr (inbox->messages->pdata[2], ==, "interop/in plain [int64 1, 2]");
  g_assert_cmpstr (inbox->messages->pdata[3], ==, "interop/in none none");
}

/* ------------------------------------------------------------------ */
/* TLS                                                                 */

static void
run_openssl (const char *directory,
             const char *first_arg,
             ...) G_GNUC_NULL_TERMINATED;

static void
run_openssl (const char *directory,
             const char *first_arg,
             ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE |
                                                                       G_SUBPROCESS_FLAGS_STDERR_SILENCE);
  g_autoptr(GSubprocess) openssl = NULL;
  g_autoptr(GError) error = NULL;
  va_list args;

  g_ptr_array_add (argv, (char *) "openssl");
  va_start (args, first_arg);
  for (const char *arg = first_arg; arg != NULL; arg = va_arg (args, const char *))
    g_ptr_array_add (argv, (char *) arg);
  va_end (args);
  g_ptr_array_add (argv, NULL);
  g_subprocess_launcher_set_cwd (launcher, directory);
  openssl = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_wait_check (openssl, NULL, &error));
  g_assert_no_error (error);
}

/* mqtts:// with the CA given in the address; without it, the broker's
 * certificate (of a private CA) is refused. */
static void
test_tls (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *directory = g_dir_make_tmp ("qipc-test-tls-XXXXXX", &error);
  g_autofree char *ca = g_build_filename (directory, "ca.pem", NULL);
  g_autofree char *cert = g_build_filename (directory, "server.pem", NULL);
  g_autofree char *key = g_build_filename (directory, "server.key", NULL);
  g_autofree char *ext = g_build_filename (directory, "ext.cnf", NULL);
  const char *files[] = { "ca.pem", "ca.key", "ca.srl", "server.pem", "server.key", "server.csr",
                          "ext.cnf" };
  g_autoptr(QipcTestMosquitto) mosquitto = NULL;
  g_autofree char *address = NULL;
  g_autoptr(QipcBus) bus = NULL;
  g_autoptr(QipcBus) untrusting = NULL;
  g_autoptr(QipcTestInbox) inbox = qipc_test_inbox_new ();
  g_autoptr(QipcChannel) channel = NULL;

  g_assert_no_error (error);
  run_openssl (directory, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
               "-out", "ca.pem", "-days", "2", "-subj", "/CN=qipc test CA", NULL);
  run_openssl (directory, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
               "-out", "server.csr", "-subj", "/CN=127.0.0.1", NULL);
  g_assert_true (g_file_set_contents (ext, "subjectAltName=IP:127.0.0.1\n", -1, NULL));
  run_openssl (directory, "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
               "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf", NULL);

  mosquitto = qipc_test_mosquitto_start_tls (ca, cert, key);
  g_assert_true (g_str_has_prefix (qipc_test_mosquitto_get_address (mosquitto), "mqtts://"));
  untrusting = qipc_bus_new_for_address (qipc_test_mosquitto_get_address (mosquitto), &error);
  g_assert_null (untrusting);
  g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_TLS_HANDSHAKE_FAILED);
  g_assert_nonnull (strstr (error->message, "ca="));
  g_clear_error (&error);

  address = g_strdup_printf ("%s?ca=%s", qipc_test_mosquitto_get_address (mosquitto), ca);
  bus = qipc_bus_new_for_address (address, &error);
  g_assert_no_error (error);
  channel = qipc_test_listen (bus, "tls/x", inbox);
  qipc_test_flush_ok (bus);
  qipc_test_send_ok (bus, "tls/x", "secret", g_variant_new_string ("s"));
  qipc_test_inbox_wait (inbox, 1);
  g_assert_cmpstr (inbox->messages->pdata[0], ==, "tls/x secret 's'");

  g_clear_object (&channel);
  g_clear_object (&bus);
  g_clear_pointer (&mosquitto, qipc_test_mosquitto_free);
  for (gsize i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *path = g_build_filename (directory, files[i], NULL);
      g_unlink (path);
    }
  g_rmdir (directory);
}

/* ------------------------------------------------------------------ */
/* Failures                                                            */

static void
test_broker_restart (void)
{
  g_autoptr(QipcTestMosquitto) mosquitto = qipc_test_mosquitto_start ();
  g_autofree char *address = bus_address (mosquitto, NULL);
  g_autoptr(QipcTestChild) listener = qipc_test_child_spawn ("channel-listen", address,
                                                             "r/*", NULL);
  g_autoptr(QipcBus) bus = connect_bus (mosquitto, NULL);
  g_autoptr(QipcTestInbox) inbox = qipc_test_inbox_new ();
  G_GNUC_UNUSED g_autoptr(QipcChannel) channel = qipc_test_listen (bus, "r/x", inbox);
  gboolean meanwhile_seen = FALSE;
  guint timeout;

  qipc_test_child_expect (listener, "ready");
  qipc_test_flush_ok (bus);
  qipc_test_send_ok (bus, "r/x", "before", NULL);
  qipc_test_child_expect (listener, "r/* before none");
  qipc_test_inbox_wait (inbox, 1);

  qipc_test_mosquitto_stop (mosquitto);
  qipc_test_child_expect (listener, "disconnected");
  timeout = qipc_test_add_deadline ("the disconnection");
  while (qipc_bus_is_connected (bus))
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (timeout);
  /* Sent while the broker is away: queued, sent once back. */
  qipc_test_send_ok (bus, "r/x", "meanwhile", g_variant_new_int32 (1));

  qipc_test_mosquitto_restart (mosquitto);
  /* The listener gets "meanwhile" only if it subscribed again before
   * this bus sent it (MQTT keeps nothing for absent clients). */
  qipc_test_child_expect_past (listener, "connected", "r/* meanwhile 1", &meanwhile_seen);
  qipc_test_flush_ok (bus);
  qipc_test_inbox_wait (inbox, 2);
  g_assert_cmpstr (inbox->messages->pdata[1], ==, "r/x meanwhile 1");
  qipc_test_send_ok (bus, "r/x", "after", NULL);
  qipc_test_child_expect_past (listener, "r/* after none", "r/* meanwhile 1", &meanwhile_seen);
  qipc_test_inbox_wait (inbox, 3);
  g_assert_true (qipc_test_is_registered (bus, "r/y"));
}

static void
test_queue_full (void)
{
  g_autoptr(QipcTestMosquitto) mosquitto = qipc_test_mosquitto_start ();
  g_autoptr(QipcBus) bus = connect_bus (mosquitto, NULL);
  g_autoptr(GError) error = NULL;
  guint timeout;
  guint i;

  qipc_bus_set_max_queued (bus, 64 * 1024);
  qipc_test_mosquitto_stop (mosquitto);
  timeout = qipc_test_add_deadline ("the disconnection");
  while (qipc_bus_is_connected (bus))
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (timeout);
  for (i = 0; i < 100000; i++)
    if (!qipc_channel_send_for_bus (bus, "q/x", "n", g_variant_new_uint32 (i), &error))
      break;
  g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_QUEUE_FULL);
  g_assert_cmpuint (i, >, 100);
}

static void
test_bad_names (Fixture       *fixture,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  g_assert_false (qipc_channel_send_for_bus (fixture->bus, "a+b", "m", NULL, &error));
  g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_INVALID_NAME);
  g_clear_error (&error);
  g_assert_false (qipc_channel_send_for_bus (fixture->bus, "$qipc/presence/x", "m", NULL, &error));
  g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_INVALID_NAME);
}

/* ------------------------------------------------------------------ */
/* Bridges                                                             */

/* A qipc-broker process on @address, bridged to @mosquitto, connected
 * to once it serves (its bridges run before it listens). */
static GSubprocess *
spawn_bridged_broker (const char        *address,
                      QipcTestMosquitto *mosquitto)
{
  g_autoptr(GError) error = NULL;
  GSubprocess *broker;
  gint64 deadline = g_get_monotonic_time () + WAIT_SECONDS * G_USEC_PER_SEC;

  broker = g_subprocess_new (G_SUBPROCESS_FLAGS_NONE, &error, g_getenv ("QIPC_BROKER"),
                             "--address", address,
                             "--bridge", qipc_test_mosquitto_get_address (mosquitto),
                             "--bridge-channels", "br/*",
                             "--bridge-channels", "br/**",
                             NULL);
  g_assert_no_error (error);
  for (;;)
    {
      g_autoptr(QipcBus) bus = qipc_bus_new_for_address (address, NULL);

      if (bus != NULL)
        break;
      g_assert_nonnull (g_subprocess_get_identifier (broker));
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_usleep (10000);
    }
  return broker;
}

/* "PREFIX uint32 0", "PREFIX uint32 1"… */
static void
expect_lines (QipcTestChild *child,
              const char    *prefix,
              guint          n)
{
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *line = g_strdup_printf ("%s uint32 %u", prefix, i);

      qipc_test_child_expect (child, line);
    }
}

/* Two native brokers bridged through one mosquitto: each message
 * reaches the other side once, and comes back to neither. */
static void
test_bridge (void)
{
  g_autoptr(QipcTestMosquitto) mosquitto = qipc_test_mosquitto_start ();
  g_autofree char *address_a = g_strdup_printf ("unix:abstract=qipc-test/%d/bridge-a/%u",
                                                (int) getpid (), g_random_int ());
  g_autofree char *address_b = g_strdup_printf ("unix:abstract=qipc-test/%d/bridge-b/%u",
                                                (int) getpid (), g_random_int ());
  g_autoptr(GSubprocess) broker_a = spawn_bridged_broker (address_a, mosquitto);
  g_autoptr(GSubprocess) broker_b = spawn_bridged_broker (address_b, mosquitto);
  g_autoptr(QipcTestChild) listener_a = qipc_test_child_spawn ("channel-listen", address_a,
                                                               "br/*", NULL);
  g_autoptr(QipcTestChild) listener_b = qipc_test_child_spawn ("channel-listen", address_b,
                                                               "br/x", NULL);
  g_autoptr(QipcTestChild) local_only = qipc_test_child_spawn ("channel-listen", address_b,
                                                               "local/x", NULL);
  g_autoptr(QipcBus) bus_a = NULL;
  g_autoptr(QipcBus) bus_b = NULL;
  g_autoptr(QipcBus) mqtt = connect_bus (mosquitto, NULL);
  g_autoptr(QipcTestInbox) inbox = qipc_test_inbox_new ();
  G_GNUC_UNUSED g_autoptr(QipcChannel) channel = qipc_test_listen (mqtt, "br/x", inbox);
  g_autoptr(GError) error = NULL;

  qipc_test_child_expect (listener_a, "ready");
  qipc_test_child_expect (listener_b, "ready");
  qipc_test_child_expect (local_only, "ready");
  bus_a = qipc_bus_new_for_address (address_a, &error);
  g_assert_no_error (error);
  bus_b = qipc_bus_new_for_address (address_b, &error);
  g_assert_no_error (error);
  qipc_test_flush_ok (mqtt);

  /* A to B (and to MQTT), each once. */
  for (guint i = 0; i < 20; i++)
    qipc_test_send_ok (bus_a, "br/x", "m", g_variant_new_uint32 (i));
  qipc_test_send_ok (bus_a, "local/x", "not-bridged", NULL);
  qipc_test_flush_ok (bus_a);
  expect_lines (listener_a, "br/* m", 20);
  expect_lines (listener_b, "br/x m", 20);
  qipc_test_inbox_wait (inbox, 20);

  /* B to A. */
  qipc_test_send_ok (bus_b, "br/x", "back", NULL);
  qipc_test_flush_ok (bus_b);
  qipc_test_child_expect (listener_a, "br/* back none");
  qipc_test_child_expect (listener_b, "br/x back none");
  qipc_test_inbox_wait (inbox, 21);

  /* Anything that bounces has come back by now; the next line each
   * listener prints must be this last message (from MQTT). */
  qipc_test_settle (500);
  qipc_test_send_ok (mqtt, "br/x", "end", NULL);
  qipc_test_flush_ok (mqtt);
  qipc_test_child_expect (listener_a, "br/* end none");
  qipc_test_child_expect (listener_b, "br/x end none");
  qipc_test_inbox_wait (inbox, 22);
  qipc_test_settle (200);
  g_assert_cmpuint (inbox->messages->len, ==, 22);
  /* Not bridged: "not-bridged" from A never reached B. */
  qipc_test_send_ok (bus_b, "local/x", "here", NULL);
  qipc_test_flush_ok (bus_b);
  qipc_test_child_expect (local_only, "local/x here none");

  g_subprocess_force_exit (broker_a);
  g_subprocess_force_exit (broker_b);
  g_assert_true (g_subprocess_wait (broker_a, NULL, NULL));
  g_assert_true (g_subprocess_wait (broker_b, NULL, NULL));
}

static void
test_bridge_invalid (void)
{
  g_autoptr(QipcBroker) broker = qipc_broker_new ();
  const char *patterns[] = { "a/*", NULL };
  const char *bad_patterns[] = { "a/**/b", NULL };
  const char *no_patterns[] = { NULL };
  g_autoptr(GError) error = NULL;

  g_assert_false (qipc_broker_add_bridge (broker, "tcp:host=127.0.0.1,port=1", patterns, &error));
  g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_INVALID_ADDRESS);
  g_clear_error (&error);
  g_assert_false (qipc_broker_add_bridge (broker, "mqtt://127.0.0.1:1", bad_patterns, &error));
  g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_INVALID_NAME);
  g_clear_error (&error);
  g_assert_false (qipc_broker_add_bridge (broker, "mqtt://127.0.0.1:1", no_patterns, &error));
  g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_INVALID_NAME);
}

/* ------------------------------------------------------------------ */
/* Two hosts                                                           */

static void
run_ip (const char *first_arg,
        ...) G_GNUC_NULL_TERMINATED;

static void
run_ip (const char *first_arg,
        ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GSubprocess) ip = NULL;
  g_autoptr(GError) error = NULL;
  va_list args;

  g_ptr_array_add (argv, (char *) "ip");
  va_start (args, first_arg);
  for (const char *arg = first_arg; arg != NULL; arg = va_arg (args, const char *))
    g_ptr_array_add (argv, (char *) arg);
  va_end (args);
  g_ptr_array_add (argv, NULL);
  ip = g_subprocess_newv ((const char * const *) argv->pdata, G_SUBPROCESS_FLAGS_NONE, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_wait_check (ip, NULL, &error));
  g_assert_no_error (error);
}

typedef struct
{
  char *netns[2];
  char *address;              /* the broker, on host 0 */
  char *directory;
  char *config;
  GSubprocess *mosquitto;
} Hosts;

static void
mosquitto_setup (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

/* Two network namespaces joined by a veth pair, 10.213.N.1 and .2, and
 * a mosquitto listening on host 0's address only. */
static Hosts *
hosts_new (void)
{
  Hosts *hosts = g_new0 (Hosts, 1);
  guint subnet = getpid () % 250 + 1;
  g_autofree char *veth0 = g_strdup_printf ("qv%da", (int) getpid () % 100000);
  g_autofree char *veth1 = g_strdup_printf ("qv%db", (int) getpid () % 100000);
  g_autofree char *ip0 = g_strdup_printf ("10.213.%u.1/24", subnet);
  g_autofree char *ip1 = g_strdup_printf ("10.213.%u.2/24", subnet);
  g_autofree char *text = NULL;
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autofree char *host0 = NULL;
  g_autoptr(GError) error = NULL;

  hosts->netns[0] = g_strdup_printf ("qipc-test-%d-host0", (int) getpid ());
  hosts->netns[1] = g_strdup_printf ("qipc-test-%d-host1", (int) getpid ());
  run_ip ("netns", "add", hosts->netns[0], NULL);
  run_ip ("netns", "add", hosts->netns[1], NULL);
  run_ip ("link", "add", veth0, "type", "veth", "peer", "name", veth1, NULL);
  run_ip ("link", "set", veth0, "netns", hosts->netns[0], NULL);
  run_ip ("link", "set", veth1, "netns", hosts->netns[1], NULL);
  run_ip ("-n", hosts->netns[0], "addr", "add", ip0, "dev", veth0, NULL);
  run_ip ("-n", hosts->netns[1], "addr", "add", ip1, "dev", veth1, NULL);
  run_ip ("-n", hosts->netns[0], "link", "set", veth0, "up", NULL);
  run_ip ("-n", hosts->netns[1], "link", "set", veth1, "up", NULL);
  /* A host reaches its own address through lo. */
  run_ip ("-n", hosts->netns[0], "link", "set", "lo", "up", NULL);
  run_ip ("-n", hosts->netns[1], "link", "set", "lo", "up", NULL);

  hosts->directory = g_dir_make_tmp ("qipc-test-netns-XXXXXX", &error);
  g_assert_no_error (error);
  hosts->config = g_build_filename (hosts->directory, "mosquitto.conf", NULL);
  text = g_strdup_printf ("listener 1883 10.213.%u.1\nallow_anonymous true\n"
                          "persistence false\nuser %s\nlog_type error\n",
                          subnet, g_get_user_name ());
  g_assert_true (g_file_set_contents (hosts->config, text, -1, &error));
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE |
                                       G_SUBPROCESS_FLAGS_STDERR_SILENCE);
  g_subprocess_launcher_set_child_setup (launcher, mosquitto_setup, NULL, NULL);
  hosts->mosquitto = g_subprocess_launcher_spawn (launcher, &error, "ip", "netns", "exec",
                                                  hosts->netns[0], "mosquitto", "-c",
                                                  hosts->config, NULL);
  g_assert_no_error (error);
  /* Ready once a client on the other host gets through (nothing here
   * can reach it). */
  host0 = g_strdup_printf ("10.213.%u.1", subnet);
  for (int attempt = 0; ; attempt++)
    {
      g_autoptr(GSubprocess) pub = g_subprocess_new (G_SUBPROCESS_FLAGS_STDERR_SILENCE, &error,
                                                     "ip", "netns", "exec", hosts->netns[1],
                                                     "mosquitto_pub", "-h", host0, "-t", "probe",
                                                     "-m", "x", NULL);

      g_assert_no_error (error);
      g_assert_true (g_subprocess_wait (pub, NULL, NULL));
      if (g_subprocess_get_successful (pub))
        break;
      g_assert_cmpint (attempt, <, 200);
      g_usleep (50000);
    }
  hosts->address = g_strdup_printf ("mqtt://%s:1883", host0);
  return hosts;
}

static void
hosts_free (Hosts *hosts)
{
  g_subprocess_force_exit (hosts->mosquitto);
  g_subprocess_wait (hosts->mosquitto, NULL, NULL);
  g_object_unref (hosts->mosquitto);
  /* The veth pair goes with its namespaces. */
  run_ip ("netns", "delete", hosts->netns[0], NULL);
  run_ip ("netns", "delete", hosts->netns[1], NULL);
  g_unlink (hosts->config);
  g_rmdir (hosts->directory);
  g_free (hosts->config);
  g_free (hosts->directory);
  g_free (hosts->address);
  g_free (hosts->netns[0]);
  g_free (hosts->netns[1]);
  g_free (hosts);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Hosts, hosts_free)

/* Two "machines" (network namespaces) and a broker on one of them: a
 * listener on the other gets the sender's messages, in order, and is
 * registered as seen from the sender's machine. */
static void
test_two_hosts (void)
{
  g_autoptr(Hosts) hosts = NULL;
  const char *helper = g_getenv ("QIPC_TEST_HELPER");
  g_autoptr(QipcTestChild) counter = NULL;
  g_autoptr(QipcTestChild) sender = NULL;

  if (!qipc_test_is_root ())
    {
      g_test_fail_printf ("Needs root to create network namespaces");
      return;
    }
  hosts = hosts_new ();
  counter = qipc_test_child_spawn_program ("ip", "netns", "exec", hosts->netns[1], helper,
                                           "channel-count", hosts->address, "hosts/x", "1000",
                                           "fast", NULL);
  qipc_test_child_expect (counter, "ready");
  sender = qipc_test_child_spawn_program ("ip", "netns", "exec", hosts->netns[0], helper,
                                          "channel-send", hosts->address, "hosts/x", "1000", NULL);
  qipc_test_child_expect (sender, "sent");
  qipc_test_child_expect (counter, "received 1000 lost 0");
  qipc_test_child_expect (counter, "ordered");
  g_assert_cmpint (qipc_test_child_wait (sender), ==, 0);
  g_assert_cmpint (qipc_test_child_wait (counter), ==, 0);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func, options) \
  g_test_add ("/mqtt/" path, Fixture, options, fixture_setup, func, fixture_teardown)

  g_test_add_func ("/mqtt/address/invalid", test_address_invalid);
  g_test_add_func ("/mqtt/address/no-broker", test_address_no_broker);
  g_test_add_func ("/mqtt/address/default-bus", test_address_default_bus);
  ADD ("channel/own-message", test_own_message, NULL);
  ADD ("channel/own-message-gvariant", test_own_message, "format=gvariant");
  ADD ("channel/outlives-bus", test_channel_outlives_bus, NULL);
  ADD ("channel/close-in-call-callback", test_close_in_call_callback, NULL);
  ADD ("channel/detail", test_detail, NULL);
  ADD ("channel/patterns", test_patterns, NULL);
  ADD ("channel/patterns-prefix", test_patterns, "prefix=site/one&keepalive=10");
  ADD ("channel/unregister", test_unregister, NULL);
  ADD ("channel/flush", test_flush, NULL);
  ADD ("channel/list", test_list, NULL);
  ADD ("channel/monitor", test_monitor, NULL);
  ADD ("channel/blocking-in-handler", test_blocking_in_handler, NULL);
  ADD ("channel/bad-names", test_bad_names, NULL);
  ADD ("channel/round-trip-json", test_round_trip, NULL);
  ADD ("channel/round-trip-gvariant", test_round_trip, "format=gvariant");
  ADD ("channel/unsupported-data-json", test_unsupported_data, NULL);
  ADD ("channel/unsupported-data-gvariant", test_unsupported_data, "format=gvariant");
  ADD ("channel/payload-1mib", test_large, NULL);
  ADD ("processes/is-registered-last-will", test_is_registered, NULL);
  ADD ("processes/order-10000", test_order, NULL);
  ADD ("interop/mosquitto-sub", test_interop_sub, NULL);
  ADD ("interop/mosquitto-pub", test_interop_pub, NULL);
  ADD ("interop/mosquitto-pub-gvariant", test_interop_pub_gvariant, NULL);
  g_test_add_func ("/mqtt/processes/broker-restart", test_broker_restart);
  g_test_add_func ("/mqtt/queue-full", test_queue_full);
  g_test_add_func ("/mqtt/bridge/two-brokers", test_bridge);
  g_test_add_func ("/mqtt/bridge/invalid", test_bridge_invalid);
  g_test_add_func ("/mqtt/netns/two-hosts", test_two_hosts);
  g_test_add_func ("/mqtt/tls/private-ca", test_tls);

  return g_test_run ();
}
