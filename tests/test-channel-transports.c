/* test-channel-transports.c: the channel semantics, on every transport
 *
 * One suite of QipcBus/QipcChannel behaviour run against each entry of
 * `transports[]`: a real server the test starts, stops and restarts
 * itself, and the qipc address that reaches it. A new transport is one
 * more row there.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <qipc.h>

#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>

#include "test-utils.h"

#define WAIT_SECONDS 20

typedef struct _Server Server;

typedef struct
{
  const char *name;
  /* The address of a server whose files live in @dir (a temporary
   * directory of the test); it must stay the same across restarts, so
   * a TCP transport picks its free port here, once. */
  char *(*address_for) (const char *dir);
  /* Starts the server at server->address; returns once it accepts
   * clients. Called again after stop() for a restart. */
  void  (*start)       (Server *server);
  /* Kills the server (SIGKILL) and cleans up what it leaves. */
  void  (*stop)        (Server *server);
  /* The largest data (serialized bytes) one message can carry, with a
   * 1-byte channel and message name; 0 when there is no limit short of
   * memory. */
  gsize max_data;
  /* Refused with INVALID_ADDRESS. */
  const char *invalid_address;
} Transport;

struct _Server
{
  const Transport *transport;
  char *dir;
  char *address;
  QipcTestChild *process;
  QipcTestMosquitto *mosquitto;
};

/* ------------------------------------------------------------------ */
/* The servers                                                         */

static char *
native_address_for (const char *dir)
{
  return g_strconcat ("unix:path=", dir, "/bus", NULL);
}

static void
native_start (Server *server)
{
  server->process = qipc_test_child_spawn ("broker", server->address, NULL);
  qipc_test_child_expect (server->process, "listening");
}

static void
unlink_in (Server     *server,
           const char *name)
{
  g_autofree char *path = g_build_filename (server->dir, name, NULL);

  g_unlink (path);
}

static void
native_stop (Server *server)
{
  qipc_test_child_kill (server->process);
  g_clear_pointer (&server->process, qipc_test_child_free);
  unlink_in (server, "bus");
  unlink_in (server, "bus.lock");
}

static char *
dbus_address_for (const char *dir)
{
  return g_strconcat ("dbus:address=unix:path=", dir, "/bus", NULL);
}

/* A session bus of our own at a fixed path (so that a restarted daemon
 * is at the same address), with dbus-daemon's default limits. */
static void
dbus_start (Server *server)
{
  g_autofree char *config = g_build_filename (server->dir, "bus.conf", NULL);
  g_autofree char *text = NULL;
  g_autofree char *line = NULL;
  g_autoptr(GError) error = NULL;

  text = g_strdup_printf ("<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
                          " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
                          "<busconfig>\n"
                          "  <type>session</type>\n"
                          "  <listen>unix:path=%s/bus</listen>\n"
                          "  <auth>EXTERNAL</auth>\n"
                          "  <policy context=\"default\">\n"
                          "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
                          "    <allow eavesdrop=\"true\"/>\n"
                          "    <allow own=\"*\"/>\n"
                          "  </policy>\n"
                          "</busconfig>\n", server->dir);
  g_assert_true (g_file_set_contents (config, text, -1, &error));
  g_assert_no_error (error);
  server->process = qipc_test_child_spawn_program ("dbus-daemon", "--nofork", "--nosyslog",
                                                   "--print-address=1", "--config-file",
                                                   config, NULL);
  /* It prints its address once it listens. */
  line = qipc_test_child_read_line (server->process);
  g_assert_true (g_str_has_prefix (line, "unix:path="));
}

static void
dbus_stop (Server *server)
{
  qipc_test_child_kill (server->process);
  g_clear_pointer (&server->process, qipc_test_child_free);
  unlink_in (server, "bus");
}

/* A port chosen once: a restarted mosquitto is at the same address. */
static char *
mqtt_address_for (const char *dir)
{
  return g_strdup_printf ("mqtt://127.0.0.1:%u", qipc_test_free_loopback_port ());
}

static void
mqtt_start (Server *server)
{
  guint64 port;

  if (server->mosquitto != NULL)
    {
      qipc_test_mosquitto_restart (server->mosquitto);
      return;
    }
  g_assert_true (g_ascii_string_to_unsigned (strrchr (server->address, ':') + 1, 10, 1,
                                             G_MAXUINT16, &port, NULL));
  server->mosquitto = qipc_test_mosquitto_start_at (port);
}

static void
mqtt_stop (Server *server)
{
  qipc_test_mosquitto_stop (server->mosquitto);
}

static const Transport transports[] = {
  {
    .name = "native",
    .address_for = native_address_for,
    .start = native_start,
    .stop = native_stop,
    .max_data = 0,
    .invalid_address = "unix:path=relative",
  },
  {
    .name = "dbus",
    .address_for = dbus_address_for,
    .start = dbus_start,
    .stop = dbus_stop,
    /* QIPC_DBUS_MAX_MESSAGE less the names and the type "ay". */
    .max_data = 32 * 1024 * 1024 - 4096 - 4,
    .invalid_address = "dbus:address=nonsense",
  },
  {
    .name = "mqtt",
    .address_for = mqtt_address_for,
    .start = mqtt_start,
    .stop = mqtt_stop,
    /* MQTT carries 256 MiB; the bus's max-queued (16 MiB) refuses
     * first, with QUEUE_FULL. */
    .max_data = 0,
    .invalid_address = "mqtt://127.0.0.1:1883?bogus=1",
  },
};

static Server *
server_start (const Transport *transport)
{
  Server *server = g_new0 (Server, 1);
  g_autoptr(GError) error = NULL;

  server->transport = transport;
  server->dir = g_dir_make_tmp ("qipc-transports-XXXXXX", &error);
  g_assert_no_error (error);
  server->address = transport->address_for (server->dir);
  transport->start (server);
  return server;
}

static void
server_free (Server *server)
{
  if (server->process != NULL)
    server->transport->stop (server);
  g_clear_pointer (&server->mosquitto, qipc_test_mosquitto_free);
  unlink_in (server, "bus.conf");
  g_rmdir (server->dir);
  g_free (server->dir);
  g_free (server->address);
  g_free (server);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Server, server_free)

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

static void
wait_for_flag (guint      *counter,
               const char *what)
{
  guint timeout = qipc_test_add_deadline (what);

  while (*counter == 0)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (timeout);
}

static QipcBus *
bus_new (Server *server)
{
  g_autoptr(GError) error = NULL;
  QipcBus *bus = qipc_bus_new_for_address (server->address, &error);

  g_assert_no_error (error);
  g_assert_nonnull (bus);
  return bus;
}

static void
count_event (gpointer  instance,
             gpointer  user_data)
{
  (*(guint *) user_data)++;
}

/* ------------------------------------------------------------------ */
/* The tests                                                           */

static void
test_address (gconstpointer data)
{
  const Transport *transport = data;
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("qipc-transports-XXXXXX", NULL);
  g_autofree char *nobody = transport->address_for (dir);
  g_autoptr(QipcBus) bus = qipc_bus_new_for_address (transport->invalid_address, &error);

  g_assert_null (bus);
  g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_INVALID_ADDRESS);
  g_clear_error (&error);

  /* Nothing listens there. */
  bus = qipc_bus_new_for_address (nobody, &error);
  g_assert_null (bus);
  g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_BROKER_NOT_FOUND);
  g_rmdir (dir);
}

static void
test_own_message (gconstpointer data)
{
  g_autoptr(Server) server = server_start (data);
  g_autoptr(QipcBus) bus = bus_new (server);
  g_autoptr(QipcTestInbox) inbox = qipc_test_inbox_new ();
  G_GNUC_UNUSED g_autoptr(QipcChannel) channel = qipc_test_listen (bus, "app/settings", inbox);

  qipc_test_send_ok (bus, "app/settings", "setValue", g_variant_new ("(is)", 42, "x"));
  qipc_test_send_ok (bus, "app/settings", "reset", NULL);
  qipc_test_send_ok (bus, "app/other", "setValue", NULL);
  /* Types D-Bus itself cannot carry travel too. */
  qipc_test_send_ok (bus, "app/settings", "maybe", g_variant_new ("(mimsmv)", TRUE, 5, NULL, NULL));
  qipc_test_flush_ok (bus);
  qipc_test_inbox_wait (inbox, 3);
  qipc_test_settle (50);
  g_assert_cmpuint (inbox->messages->len, ==, 3);
  g_assert_cmpstr (inbox->messages->pdata[0], ==, "app/settings setValue (42, 'x')");
  g_assert_cmpstr (inbox->messages->pdata[1], ==, "app/settings reset none");
  g_assert_cmpstr (inbox->messages->pdata[2], ==, "app/settings maybe (@mi 5, @ms nothing, @mv nothing)");
}

static void
count_detail (QipcChannel *channel,
              const char  *message,
              GVariant    *data,
              gpointer     user_data)
{
  g_assert_cmpstr (message, ==, "setValue");
  (*(guint *) user_data)++;
}

static void
test_detail (gconstpointer data)
{
  g_autoptr(Server) server = server_start (data);
  g_autoptr(QipcBus) bus = bus_new (server);
  g_autoptr(QipcTestInbox) inbox = qipc_test_inbox_new ();
  g_autoptr(QipcChannel) channel = qipc_test_listen (bus, "app/settings", inbox);
  guint detailed = 0;

  g_signal_connect (channel, "received::setValue", G_CALLBACK (count_detail), &detailed);
  qipc_test_send_ok (bus, "app/settings", "other", NULL);
  qipc_test_send_ok (bus, "app/settings", "setValue", g_variant_new_int32 (1));
  qipc_test_send_ok (bus, "app/settings", "never-connected-as-detail", NULL);
  qipc_test_inbox_wait (inbox, 3);
  g_assert_cmpuint (detailed, ==, 1);
  /* A message name nobody used as a detail does not become a quark. */
  g_assert_cmpuint (g_quark_try_string ("never-connected-as-detail"), ==, 0);
}

static void
record_message_channel (QipcChannel *channel,
                        const char  *message,
                        GVariant    *data,
                        gpointer     user_data)
{
  g_ptr_array_add (user_data, g_strdup (qipc_channel_get_message_channel (channel)));
}

static int
compare_strings (gconstpointer a,
                 gconstpointer b)
{
  return g_strcmp0 (*(const char * const *) a, *(const char * const *) b);
}

/* Sent from another connection, so that the server routes by the
 * listener's subscriptions (for D-Bus: its match rules). */
static void
test_patterns (gconstpointer data)
{
  g_autoptr(Server) server = server_start (data);
  g_autoptr(QipcBus) bus = bus_new (server);
  g_autoptr(QipcBus) sender = bus_new (server);
  g_autoptr(QipcTestInbox) inbox = qipc_test_inbox_new ();
  G_GNUC_UNUSED g_autoptr(QipcChannel) one = qipc_test_listen (bus, "a/*", inbox);
  g_autoptr(QipcChannel) deep = qipc_test_listen (bus, "a/**", inbox);
  G_GNUC_UNUSED g_autoptr(QipcChannel) middle = qipc_test_listen (bus, "x/*/z", inbox);
  G_GNUC_UNUSED g_autoptr(QipcChannel) any = qipc_test_listen (bus, "*/q", inbox);
  G_GNUC_UNUSED g_autoptr(QipcChannel) exact = qipc_test_listen (bus, "a/b", inbox);
  g_autoptr(GPtrArray) deep_channels = g_ptr_array_new_with_free_func (g_free);
  GPtrArray *sorted;

  g_signal_connect (deep, "received", G_CALLBACK (record_message_channel), deep_channels);
  g_assert_null (qipc_channel_get_message_channel (deep));
  qipc_test_flush_ok (bus);
  qipc_test_send_ok (sender, "a/b", "m1", NULL);     /* three of them, once each */
  qipc_test_send_ok (sender, "a/b/c", "m2", NULL);   /* the deep one */
  qipc_test_send_ok (sender, "a", "m3", NULL);       /* none: ** needs a segment */
  qipc_test_send_ok (sender, "x/y/z", "m4", NULL);   /* x/ * /z */
  qipc_test_send_ok (sender, "x/y/y/z", "m5", NULL); /* none */
  qipc_test_send_ok (sender, "b/a", "m6", NULL);     /* none */
  qipc_test_send_ok (sender, "p/q", "m7", NULL);     /* * /q */
  qipc_test_flush_ok (sender);
  qipc_test_inbox_wait (inbox, 6);
  qipc_test_settle (100);

  sorted = inbox->messages;
  g_assert_cmpuint (sorted->len, ==, 6);
  g_ptr_array_sort (sorted, compare_strings);
  g_assert_cmpstr (g_ptr_array_index (sorted, 0), ==, "*/q m7 none");
  g_assert_cmpstr (g_ptr_array_index (sorted, 1), ==, "a/* m1 none");
  g_assert_cmpstr (g_ptr_array_index (sorted, 2), ==, "a/** m1 none");
  g_assert_cmpstr (g_ptr_array_index (sorted, 3), ==, "a/** m2 none");
  g_assert_cmpstr (g_ptr_array_index (sorted, 4), ==, "a/b m1 none");
  g_assert_cmpstr (g_ptr_array_index (sorted, 5), ==, "x/*/z m4 none");
  /* A pattern's handlers learn which channel matched, during the
   * emission only. */
  g_assert_cmpuint (deep_channels->len, ==, 2);
  g_assert_cmpstr (deep_channels->pdata[0], ==, "a/b");
  g_assert_cmpstr (deep_channels->pdata[1], ==, "a/b/c");
  g_assert_null (qipc_channel_get_message_channel (deep));
}

static void
test_unregister_on_finalize (gconstpointer data)
{
  g_autoptr(Server) server = server_start (data);
  g_autoptr(QipcBus) bus = bus_new (server);
  g_autoptr(QipcBus) other = bus_new (server);
  g_autoptr(QipcTestInbox) inbox = qipc_test_inbox_new ();
  QipcChannel *channel = qipc_test_listen (bus, "gone/soon", inbox);
  QipcChannel *twin = qipc_test_listen (bus, "gone/soon", inbox);

  qipc_test_flush_ok (bus);
  g_assert_true (qipc_test_is_registered (bus, "gone/soon"));
  g_assert_true (qipc_test_is_registered (other, "gone/soon"));
  g_object_unref (channel);
  /* One of two channels on the name: still registered, still receiving. */
  qipc_test_flush_ok (bus);
  g_assert_true (qipc_test_is_registered (other, "gone/soon"));
  qipc_test_send_ok (other, "gone/soon", "m", NULL);
  qipc_test_inbox_wait (inbox, 1);
  g_object_unref (twin);
  qipc_test_flush_ok (bus);
  g_assert_false (qipc_test_is_registered (bus, "gone/soon"));
  g_assert_false (qipc_test_is_registered (other, "gone/soon"));
  /* And nothing arrives for it any more. */
  qipc_test_send_ok (other, "gone/soon", "m", NULL);
  qipc_test_flush_ok (other);
  qipc_test_settle (100);
  g_assert_cmpuint (inbox->messages->len, ==, 1);
}

/* Everything sent before a flush is in the receivers' queues when it
 * returns: the sender may go away at once without losing any. */
static void
test_flush (gconstpointer data)
{
  g_autoptr(Server) server = server_start (data);
  g_autoptr(QipcTestChild) receiver =
    qipc_test_child_spawn ("channel-count", server->address, "f/x", "2000", "fast", NULL);
  g_autoptr(QipcBus) bus = NULL;
  g_autoptr(GAsyncResult) flushed = NULL;
  g_autoptr(GError) error = NULL;

  qipc_test_child_expect (receiver, "ready");
  bus = bus_new (server);
  for (guint i = 0; i < 1000; i++)
    qipc_test_send_ok (bus, "f/x", "n", g_variant_new_uint32 (i));
  qipc_test_flush_ok (bus);
  for (guint i = 1000; i < 2000; i++)
    qipc_test_send_ok (bus, "f/x", "n", g_variant_new_uint32 (i));
  qipc_channel_flush_async (bus, NULL, qipc_test_store_result, &flushed);
  qipc_test_wait_for_result (&flushed);
  g_assert_true (qipc_channel_flush_finish (flushed, &error));
  g_assert_no_error (error);
  qipc_bus_close (bus);
  qipc_test_child_expect (receiver, "received 2000 lost 0");
  qipc_test_child_expect (receiver, "ordered");
  g_assert_cmpint (qipc_test_child_wait (receiver), ==, 0);
}

static void
test_closed_bus (gconstpointer data)
{
  g_autoptr(Server) server = server_start (data);
  g_autoptr(QipcBus) bus = bus_new (server);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(QipcChannel) channel = NULL;

  qipc_channel_flush_async (bus, NULL, qipc_test_store_result, &result);
  qipc_bus_close (bus);
  qipc_test_wait_for_result (&result);
  g_assert_false (qipc_channel_flush_finish (result, &error));
  g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_DISCONNECTED);
  g_clear_error (&error);

  g_assert_false (qipc_bus_is_connected (bus));
  g_assert_false (qipc_channel_send_for_bus (bus, "a/b", "m", NULL, &error));
  g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_DISCONNECTED);
  g_clear_error (&error);
  g_assert_false (qipc_channel_is_registered_for_bus (bus, "a/b", &error));
  g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_DISCONNECTED);
  g_clear_error (&error);
  channel = qipc_channel_new_for_bus (bus, "a/b", &error);
  g_assert_null (channel);
  g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_DISCONNECTED);
}

/* Channels freed after their bus was closed, as a garbage collector
 * frees them, and the bus itself freed before them: nothing the
 * transport does for them may run once it is gone (over MQTT, a
 * presence update did). */
static void
test_channels_outlive_bus (gconstpointer data)
{
  g_autoptr(Server) server = server_start (data);
  QipcBus *bus = bus_new (server);
  g_autoptr(QipcTestInbox) inbox = qipc_test_inbox_new ();
  QipcChannel *exact = qipc_test_listen (bus, "late/x", inbox);
  QipcChannel *pattern = qipc_test_listen (bus, "late/**", inbox);

  qipc_test_flush_ok (bus);
  qipc_bus_close (bus);
  g_object_unref (exact);
  g_object_unref (bus);
  g_object_unref (pattern);
  /* Whatever was left behind runs now. */
  qipc_test_settle (100);
}

static void
test_is_registered (gconstpointer data)
{
  g_autoptr(Server) server = server_start (data);
  g_autoptr(QipcBus) bus = bus_new (server);
  g_autoptr(QipcTestChild) listener = NULL;
  g_autoptr(QipcTestChild) exact = NULL;
  gint64 deadline;

  g_assert_false (qipc_test_is_registered (bus, "svc/clock"));
  listener = qipc_test_child_spawn ("channel-listen", server->address, "svc/*", NULL);
  exact = qipc_test_child_spawn ("channel-listen", server->address, "svc/exact", NULL);
  qipc_test_child_expect (listener, "ready");
  qipc_test_child_expect (exact, "ready");
  g_assert_true (qipc_test_is_registered (bus, "svc/clock"));
  g_assert_true (qipc_test_is_registered (bus, "svc/exact"));
  g_assert_false (qipc_test_is_registered (bus, "svc/clock/x"));
  g_assert_false (qipc_test_is_registered (bus, "other"));

  qipc_test_child_kill (listener);
  /* The server sees the connection end when its main loop runs next. */
  deadline = g_get_monotonic_time () + WAIT_SECONDS * G_USEC_PER_SEC;
  while (qipc_test_is_registered (bus, "svc/clock"))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_usleep (1000);
    }
  g_assert_true (qipc_test_is_registered (bus, "svc/exact"));
  qipc_test_child_kill (exact);
}

static void
test_fan_out (gconstpointer data)
{
  g_autoptr(Server) server = server_start (data);
  g_autoptr(QipcTestChild) exact = qipc_test_child_spawn ("channel-listen", server->address, "news/sport", NULL);
  g_autoptr(QipcTestChild) pattern = qipc_test_child_spawn ("channel-listen", server->address, "news/*", NULL);
  g_autoptr(QipcTestChild) deep = qipc_test_child_spawn ("channel-listen", server->address, "news/**", NULL);
  g_autoptr(QipcTestChild) other = qipc_test_child_spawn ("channel-listen", server->address, "weather", NULL);
  g_autoptr(QipcBus) bus = bus_new (server);
  g_autoptr(QipcTestInbox) inbox = qipc_test_inbox_new ();
  g_autoptr(QipcChannel) own = NULL;

  qipc_test_child_expect (exact, "ready");
  qipc_test_child_expect (pattern, "ready");
  qipc_test_child_expect (deep, "ready");
  qipc_test_child_expect (other, "ready");
  own = qipc_test_listen (bus, "news/sport", inbox);

  qipc_test_send_ok (bus, "news/sport", "goal", g_variant_new ("(si)", "home", 1));
  qipc_test_send_ok (bus, "weather", "rain", NULL);
  qipc_test_child_expect (exact, "news/sport goal ('home', 1)");
  qipc_test_child_expect (pattern, "news/* goal ('home', 1)");
  qipc_test_child_expect (deep, "news/** goal ('home', 1)");
  qipc_test_child_expect (other, "weather rain none");
  qipc_test_inbox_wait (inbox, 1);
  qipc_test_settle (50);
  g_assert_cmpuint (inbox->messages->len, ==, 1);
  g_assert_cmpstr (inbox->messages->pdata[0], ==, "news/sport goal ('home', 1)");

  qipc_test_child_kill (exact);
  qipc_test_child_kill (pattern);
  qipc_test_child_kill (deep);
  qipc_test_child_kill (other);
}

/* Two senders at once: each one's messages arrive in its order. */
static void
test_order (gconstpointer data)
{
  g_autoptr(Server) server = server_start (data);
  g_autoptr(QipcTestChild) first =
    qipc_test_child_spawn ("channel-count", server->address, "order/a", "10000", "fast", NULL);
  g_autoptr(QipcTestChild) second =
    qipc_test_child_spawn ("channel-count", server->address, "order/b", "10000", "fast", NULL);
  g_autoptr(QipcTestChild) sender_a = NULL;
  g_autoptr(QipcTestChild) sender_b = NULL;

  qipc_test_child_expect (first, "ready");
  qipc_test_child_expect (second, "ready");
  sender_a = qipc_test_child_spawn ("channel-send", server->address, "order/a", "10000", NULL);
  sender_b = qipc_test_child_spawn ("channel-send", server->address, "order/b", "10000", NULL);
  qipc_test_child_expect (sender_a, "sent");
  qipc_test_child_expect (sender_b, "sent");
  qipc_test_child_expect (first, "received 10000 lost 0");
  qipc_test_child_expect (first, "ordered");
  qipc_test_child_expect (second, "received 10000 lost 0");
  qipc_test_child_expect (second, "ordered");
  g_assert_cmpint (qipc_test_child_wait (first), ==, 0);
  g_assert_cmpint (qipc_test_child_wait (second), ==, 0);
  g_assert_cmpint (qipc_test_child_wait (sender_a), ==, 0);
  g_assert_cmpint (qipc_test_child_wait (sender_b), ==, 0);
}

static void
keep_data (QipcChannel *channel,
           const char  *message,
           GVariant    *data,
           gpointer     user_data)
{
  g_clear_pointer ((GVariant **) user_data, g_variant_unref);
  *(GVariant **) user_data = g_variant_ref (data);
}

static GVariant *
pattern_bytes (gsize size)
{
  guint8 *bytes = g_malloc (size);

  for (gsize i = 0; i < size; i++)
    bytes[i] = (i * 7 + i / 4096) & 0xff;
  return g_variant_new_from_data (G_VARIANT_TYPE_BYTESTRING, bytes, size, TRUE, g_free, bytes);
}

/* Sends @size bytes from one bus to a channel on another, and checks
 * what arrives. */
static void
round_trip_bytes (QipcBus *sender,
                  QipcBus *receiver,
                  gsize    size)
{
  g_autoptr(QipcChannel) channel = NULL;
  g_autoptr(GVariant) sent = g_variant_ref_sink (pattern_bytes (size));
  g_autoptr(GVariant) received = NULL;
  g_autoptr(GError) error = NULL;
  guint timeout;

  channel = qipc_channel_new_for_bus (receiver, "b", &error);
  g_assert_no_error (error);
  g_signal_connect (channel, "received", G_CALLBACK (keep_data), &received);
  qipc_test_flush_ok (receiver);
  qipc_test_send_ok (sender, "b", "m", sent);
  timeout = qipc_test_add_deadline ("the payload");
  while (received == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (timeout);
  /* Not g_variant_equal(): on untrusted data it compares printed text. */
  g_assert_cmpuint (g_variant_get_size (received), ==, size);
  g_assert_cmpmem (g_variant_get_data (received), size, g_variant_get_data (sent), size);
}

static void
test_large_payload (gconstpointer data)
{
  const Transport *transport = data;
  g_autoptr(Server) server = server_start (transport);
  g_autoptr(QipcBus) bus = bus_new (server);
  g_autoptr(QipcBus) sender = bus_new (server);
  g_autoptr(GError) error = NULL;

  round_trip_bytes (sender, bus, 1024 * 1024);
  if (transport->max_data == 0)
    return;
  /* The largest message goes through; one byte more is refused at once
   * with a clear error (the server never sees it). */
  round_trip_bytes (sender, bus, transport->max_data);
  g_assert_false (qipc_channel_send_for_bus (sender, "b", "m", pattern_bytes (transport->max_data + 1),
                                             &error));
  g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_LIMIT_EXCEEDED);
  g_assert_nonnull (strstr (error->message, "too large"));
  g_assert_true (qipc_bus_is_connected (sender));
  qipc_test_flush_ok (sender);
}

static void
test_server_restart (gconstpointer data)
{
  g_autoptr(Server) server = server_start (data);
  g_autoptr(QipcTestChild) listener = qipc_test_child_spawn ("channel-listen", server->address, "r/x", NULL);
  g_autoptr(QipcBus) bus = bus_new (server);
  g_autoptr(QipcTestInbox) inbox = qipc_test_inbox_new ();
  g_autoptr(QipcChannel) own = NULL;
  g_autoptr(GError) error = NULL;
  guint disconnects = 0, connects = 0;
  gboolean meanwhile_seen = FALSE;

  qipc_test_child_expect (listener, "ready");
  own = qipc_test_listen (bus, "r/*", inbox);
  g_signal_connect (bus, "disconnected", G_CALLBACK (count_event), &disconnects);
  g_signal_connect (bus, "connected", G_CALLBACK (count_event), &connects);
  qipc_test_send_ok (bus, "r/x", "before", NULL);
  qipc_test_child_expect (listener, "r/x before none");
  qipc_test_inbox_wait (inbox, 1);

  server->transport->stop (server);
  qipc_test_child_expect (listener, "disconnected");
  wait_for_flag (&disconnects, "disconnected");
  g_assert_false (qipc_bus_is_connected (bus));

  /* Sent while no server runs: queued (within max-queued), and
   * delivered after. */
  qipc_bus_set_max_queued (bus, 4096);
  qipc_test_send_ok (bus, "r/x", "meanwhile", g_variant_new_int32 (7));
  g_assert_false (qipc_channel_send_for_bus (bus, "r/x", "big", pattern_bytes (8192), &error));
  g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_QUEUE_FULL);

  server->transport->start (server);
  /* The listener gets our queued message only if it was back first,
   * which may be before it says so (MQTT: subscribed again, its flush
   * not yet answered). */
  qipc_test_child_expect_past (listener, "connected", "r/x meanwhile 7", &meanwhile_seen);
  /* Our queued message reaches our own channel (registered again before
   * the queue is sent). */
  qipc_test_inbox_wait (inbox, 2);
  g_assert_cmpuint (connects, ==, 1);
  g_assert_cmpstr (inbox->messages->pdata[1], ==, "r/* meanwhile 7");

  /* The channels came back: both processes are registered again. */
  qipc_test_send_ok (bus, "r/x", "after", NULL);
  qipc_test_child_expect_past (listener, "r/x after none", "r/x meanwhile 7", &meanwhile_seen);
  qipc_test_inbox_wait (inbox, 3);
  g_assert_true (qipc_test_is_registered (bus, "r/x"));
  qipc_test_child_kill (listener);
}

static void
on_monitored (QipcBus    *bus,
              const char *channel,
              const char *message,
              GVariant   *data,
              gpointer    user_data)
{
  g_ptr_array_add (user_data, g_strdup_printf ("%s %s", channel, message));
}

static void
test_list_and_monitor (gconstpointer data)
{
  g_autoptr(Server) server = server_start (data);
  g_autoptr(QipcTestChild) listener = qipc_test_child_spawn ("channel-listen", server->address, "l/*", NULL);
  g_autoptr(QipcBus) bus = bus_new (server);
  g_autoptr(QipcBus) monitor = bus_new (server);
  g_autoptr(QipcTestInbox) inbox = qipc_test_inbox_new ();
  G_GNUC_UNUSED g_autoptr(QipcChannel) own = qipc_test_listen (bus, "l/*", inbox);
  G_GNUC_UNUSED g_autoptr(QipcChannel) exact = qipc_test_listen (bus, "l/x", inbox);
  g_autoptr(GPtrArray) seen = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GVariant) list = NULL;
  g_autoptr(GError) error = NULL;
  guint count;

  qipc_test_child_expect (listener, "ready");
  qipc_test_flush_ok (bus);
  list = qipc_bus_list_channels (monitor, &error);
  g_assert_no_error (error);
  {
    GVariantIter iter;
    const char *name;
    guint pattern_count = 0, exact_count = 0;

    g_variant_iter_init (&iter, list);
    while (g_variant_iter_next (&iter, "(&su)", &name, &count))
      {
        if (g_str_equal (name, "l/*"))
          pattern_count += count;
        else if (g_str_equal (name, "l/x"))
          exact_count += count;
      }
    g_assert_cmpuint (pattern_count, ==, 2);
    g_assert_cmpuint (exact_count, ==, 1);
  }

  g_signal_connect (monitor, "monitored", G_CALLBACK (on_monitored), seen);
  g_assert_true (qipc_bus_start_monitor (monitor, &error));
  g_assert_no_error (error);
  qipc_test_send_ok (bus, "l/x", "one", NULL);
  qipc_test_send_ok (bus, "nobody/listens", "two", NULL);
  qipc_test_flush_ok (bus);
  qipc_test_child_expect (listener, "l/* one none");
  {
    guint timeout = qipc_test_add_deadline ("monitored");

    while (seen->len < 2)
      g_main_context_iteration (NULL, TRUE);
    g_source_remove (timeout);
  }
  g_assert_cmpstr (seen->pdata[0], ==, "l/x one");
  g_assert_cmpstr (seen->pdata[1], ==, "nobody/listens two");
  qipc_test_inbox_wait (inbox, 2);
  qipc_test_child_kill (listener);
}

/* D-Bus only: `dbus:session` is $DBUS_SESSION_BUS_ADDRESS, and
 * QIPC_BUS_ADDRESS=dbus:session puts the default bus there. */
static void
test_dbus_session (gconstpointer data)
{
  g_autoptr(Server) server = server_start (data);
  const char *dbus_address = server->address + strlen ("dbus:address=");
  g_autofree char *empty_dir = g_dir_make_tmp ("qipc-transports-XXXXXX", NULL);
  g_autoptr(QipcTestChild) child = NULL;
  g_autoptr(QipcBus) bus = NULL;
  g_autoptr(GError) error = NULL;

  g_setenv ("DBUS_SESSION_BUS_ADDRESS", dbus_address, TRUE);
  g_setenv ("QIPC_BUS_ADDRESS", "dbus:session", TRUE);
  child = qipc_test_child_spawn ("channel-default", "session/x", NULL);
  g_unsetenv ("QIPC_BUS_ADDRESS");
  qipc_test_child_expect (child, "ready");
  bus = qipc_bus_new_for_address ("dbus:session", &error);
  g_assert_no_error (error);
  g_assert_true (qipc_test_is_registered (bus, "session/x"));
  qipc_test_child_kill (child);
  g_clear_object (&bus);

  /* No session bus at all: not found (and no autolaunch). */
  g_unsetenv ("DBUS_SESSION_BUS_ADDRESS");
  g_setenv ("XDG_RUNTIME_DIR", empty_dir, TRUE);
  g_unsetenv ("DISPLAY");
  bus = qipc_bus_new_for_address ("dbus:session", &error);
  g_assert_null (bus);
  g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_BROKER_NOT_FOUND);
  g_rmdir (empty_dir);
}

static GDBusConnection *
raw_connection (Server *server)
{
  g_autoptr(GError) error = NULL;
  GDBusConnection *raw;

  raw = g_dbus_connection_new_for_address_sync (server->address + strlen ("dbus:address="),
                                                G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                NULL, NULL, &error);
  g_assert_no_error (error);
  return raw;
}

/* The qipc match rules that the daemon holds, sorted, from its
 * org.freedesktop.DBus.Debug.Stats interface (in Debian's dbus-daemon). */
static GPtrArray *
daemon_match_rules (GDBusConnection *connection)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariantIter) iter = NULL;
  g_autoptr(GError) error = NULL;
  GPtrArray *rules = g_ptr_array_new_with_free_func (g_free);
  GVariantIter *connection_rules;
  const char *rule;

  reply = g_dbus_connection_call_sync (connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus.Debug.Stats", "GetAllMatchRules",
                                       NULL, G_VARIANT_TYPE ("(a{sas})"), G_DBUS_CALL_FLAGS_NONE,
                                       -1, NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(a{sas})", &iter);
  while (g_variant_iter_next (iter, "{&sas}", NULL, &connection_rules))
    {
      while (g_variant_iter_next (connection_rules, "&s", &rule))
        if (strstr (rule, "org.qipc.Channel1") != NULL)
          g_ptr_array_add (rules, g_strdup (strstr (rule, "path='/org/qipc/Channel1'")));
      g_variant_iter_free (connection_rules);
    }
  g_ptr_array_sort (rules, compare_strings);
  return rules;
}

/* D-Bus only: the daemon filters for us. One rule per distinct name or
 * pattern (an exact arg0, or the arg0path prefix of a pattern), counted
 * across channels and removed with the last one. */
static void
test_dbus_match_rules (gconstpointer data)
{
  g_autoptr(Server) server = server_start (data);
  g_autoptr(QipcBus) bus = bus_new (server);
  g_autoptr(GDBusConnection) raw = raw_connection (server);
  g_autoptr(QipcTestInbox) inbox = qipc_test_inbox_new ();
  QipcChannel *first = qipc_test_listen (bus, "a/b", inbox);
  QipcChannel *second = qipc_test_listen (bus, "a/b", inbox);
  QipcChannel *pattern = qipc_test_listen (bus, "x/y/*/z", inbox);
  QipcChannel *everything = qipc_test_listen (bus, "*/q", inbox);
  g_autoptr(GPtrArray) rules = NULL;

  qipc_test_flush_ok (bus);
  rules = daemon_match_rules (raw);
  g_assert_cmpuint (rules->len, ==, 3);
  g_assert_cmpstr (rules->pdata[0], ==, "path='/org/qipc/Channel1'");
  g_assert_cmpstr (rules->pdata[1], ==, "path='/org/qipc/Channel1',arg0='a/b'");
  g_assert_cmpstr (rules->pdata[2], ==, "path='/org/qipc/Channel1',arg0path='x/y/'");
  g_clear_pointer (&rules, g_ptr_array_unref);

  g_object_unref (first);
  g_object_unref (everything);
  qipc_test_flush_ok (bus);
  rules = daemon_match_rules (raw);
  g_assert_cmpuint (rules->len, ==, 2);
  g_assert_cmpstr (rules->pdata[0], ==, "path='/org/qipc/Channel1',arg0='a/b'");
  g_clear_pointer (&rules, g_ptr_array_unref);

  g_object_unref (second);
  g_object_unref (pattern);
  qipc_test_flush_ok (bus);
  rules = daemon_match_rules (raw);
  g_assert_cmpuint (rules->len, ==, 0);
  g_dbus_connection_close_sync (raw, NULL, NULL);
}

static void
emit_raw (GDBusConnection *raw,
          GVariant        *parameters)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (g_dbus_connection_emit_signal (raw, NULL, "/org/qipc/Channel1", "org.qipc.Channel1",
                                                "Message", parameters, &error));
  g_assert_no_error (error);
}

static GVariant *
raw_message (const char   *channel,
             const char   *message,
             const char   *type,
             const guint8 *data,
             gsize         size)
{
  return g_variant_new ("(sss@ay)", channel, message, type,
                        g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, data, size, 1));
}

/* D-Bus only: what a foreign client sends is checked. Malformed
 * messages are dropped; data that does not fit its type is read as
 * GLib reads untrusted data; the bus carries on. */
static void
test_dbus_foreign_messages (gconstpointer data)
{
  static const guint8 five[] = { 5, 0, 0, 0 };
  g_autoptr(Server) server = server_start (data);
  g_autoptr(QipcBus) bus = bus_new (server);
  g_autoptr(GDBusConnection) raw = raw_connection (server);
  g_autoptr(QipcTestInbox) inbox = qipc_test_inbox_new ();
  G_GNUC_UNUSED g_autoptr(QipcChannel) channel = qipc_test_listen (bus, "f/**", inbox);

  qipc_test_flush_ok (bus);
  emit_raw (raw, g_variant_new ("(ss)", "f/x", "short"));
  emit_raw (raw, raw_message ("f/x", "bad-type", "(", five, 4));
  emit_raw (raw, raw_message ("f/x", "indefinite", "a*", five, 4));
  emit_raw (raw, raw_message ("f//x", "bad-channel", "i", five, 4));
  emit_raw (raw, raw_message ("f/x", "", "i", five, 4));
  emit_raw (raw, raw_message ("f/x", "no-type-but-data", "", five, 4));
  /* 127 maybes around an "ai" holding 1: a type of 129 levels, whose
   * untrusted data GLib 2.74 aborts on reading. */
  {
    g_autofree char *maybes = g_strnfill (127, 'm');
    g_autofree char *deep_type = g_strconcat (maybes, "ai", NULL);
    guint8 deep[4 + 127] = { 1 };

    emit_raw (raw, raw_message ("f/x", "too-deep", deep_type, deep, sizeof deep));
  }
  emit_raw (raw, raw_message ("f/x", "too-short", "i", five, 3));
  emit_raw (raw, raw_message ("f/x", "five", "i", five, 4));
  emit_raw (raw, raw_message ("f/x", "none", "", NULL, 0));
  qipc_test_inbox_wait (inbox, 3);
  qipc_test_flush_ok (bus);
  qipc_test_settle (50);
  g_assert_cmpuint (inbox->messages->len, ==, 3);
  g_assert_cmpstr (inbox->messages->pdata[0], ==, "f/** too-short 0");
  g_assert_cmpstr (inbox->messages->pdata[1], ==, "f/** five 5");
  g_assert_cmpstr (inbox->messages->pdata[2], ==, "f/** none none");
  g_assert_true (qipc_bus_is_connected (bus));
  g_dbus_connection_close_sync (raw, NULL, NULL);
}

/* ------------------------------------------------------------------ */

static const struct
{
  const char *name;
  GTestDataFunc func;
} tests[] = {
  { "address", test_address },
  { "own-message", test_own_message },
  { "detail", test_detail },
  { "patterns", test_patterns },
  { "unregister-on-finalize", test_unregister_on_finalize },
  { "flush", test_flush },
  { "closed-bus", test_closed_bus },
  { "channels-outlive-bus", test_channels_outlive_bus },
  { "is-registered", test_is_registered },
  { "fan-out", test_fan_out },
  { "order-10000", test_order },
  { "large-payload", test_large_payload },
  { "server-restart", test_server_restart },
  { "list-and-monitor", test_list_and_monitor },
};

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  /* A bus a test forgot must not reach for a user's session or broker. */
  g_unsetenv ("DBUS_SESSION_BUS_ADDRESS");
  g_unsetenv ("QIPC_BUS_ADDRESS");

  for (gsize t = 0; t < G_N_ELEMENTS (transports); t++)
    for (gsize i = 0; i < G_N_ELEMENTS (tests); i++)
      {
        g_autofree char *path = g_strdup_printf ("/channel-transports/%s/%s",
                                                 transports[t].name, tests[i].name);

        g_test_add_data_func (path, &transports[t], tests[i].func);
      }
  for (gsize t = 0; t < G_N_ELEMENTS (transports); t++)
    if (g_str_equal (transports[t].name, "dbus"))
      {
        g_test_add_data_func ("/channel-transports/dbus/session-address", &transports[t],
                              test_dbus_session);
        g_test_add_data_func ("/channel-transports/dbus/match-rules", &transports[t],
                              test_dbus_match_rules);
        g_test_add_data_func ("/channel-transports/dbus/foreign-messages", &transports[t],
                              test_dbus_foreign_messages);
      }
  return g_test_run ();
}
