/* test-channel.c: QipcBroker, QipcBus and QipcChannel across processes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <qipc.h>

#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>

#include "test-utils.h"

/* The documented limit of channel and message names, in bytes. */
#define QIPC_TEST_MAX_NAME 255


static char *
abstract_address (const char *what)
{
  return g_strdup_printf ("unix:abstract=qipc-test/%d/%s/%u", (int) getpid (), what,
                          g_random_int ());
}

/* A broker in this process, and a bus connected to it. */
typedef struct
{
  char *address;
  QipcBroker *broker;
  QipcBus *bus;
} Fixture;

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  fixture->address = abstract_address ("fixture");
  fixture->broker = qipc_broker_new ();
  g_assert_true (qipc_broker_listen (fixture->broker, fixture->address, &error));
  g_assert_no_error (error);
  fixture->bus = qipc_bus_new_for_address (fixture->address, &error);
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  data)
{
  g_clear_object (&fixture->bus);
  g_clear_object (&fixture->broker);
  g_free (fixture->address);
}

/* ------------------------------------------------------------------ */

static void
test_names_invalid (Fixture       *fixture,
                    gconstpointer  data)
{
  const char *bad_names[] = { "", "/a", "a/", "a//b", "a/b*", "a/**/b", "**x", "a\xff",
                              "a/***", "**/a", "a/*b", "caf\xc3\xa9/", "caf\xc3" };
  const char *bad_targets[] = { "a/*", "a/**", "" };
  g_autofree char *long_name = g_strnfill (QIPC_TEST_MAX_NAME + 1, 'x');

  for (gsize i = 0; i < G_N_ELEMENTS (bad_names); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(QipcChannel) channel = qipc_channel_new_for_bus (fixture->bus, bad_names[i], &error);

      g_assert_null (channel);
      g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_INVALID_NAME);
      g_assert_nonnull (strstr (error->message, "Invalid channel pattern"));
    }
  for (gsize i = 0; i < G_N_ELEMENTS (bad_targets); i++)
    {
      g_autoptr(GError) error = NULL;

      g_assert_false (qipc_channel_send_for_bus (fixture->bus, bad_targets[i], "m", NULL, &error));
      g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_INVALID_NAME);
    }
  {
    g_autoptr(GError) error = NULL;

    g_assert_false (qipc_channel_send_for_bus (fixture->bus, long_name, "m", NULL, &error));
    g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_INVALID_NAME);
    g_assert_nonnull (strstr (error->message, "255 bytes"));
  }
  {
    g_autoptr(GError) error = NULL;

    g_assert_false (qipc_channel_send_for_bus (fixture->bus, "a/b", "", NULL, &error));
    g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_INVALID_NAME);
    g_assert_nonnull (strstr (error->message, "message name"));
  }
  {
    g_autoptr(GError) error = NULL;

    g_assert_false (qipc_channel_is_registered_for_bus (fixture->bus, "a/*", &error));
    g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_INVALID_NAME);
  }
}

/* Names at the limits, and beyond ASCII, pass (the checks take a fast
 * path for ASCII and a full one for the rest). */
static void
test_names_valid (Fixture       *fixture,
                  gconstpointer  data)
{
  const char *patterns[] = { "*", "**", "a/*", "a/**", "*/b/*", "caf\xc3\xa9/**", "x" };
  const char *names[] = { "a", "a/b/c", "caf\xc3\xa9/\xc3\xbc", "a b/c-d.e" };
  g_autofree char *longest = g_strnfill (QIPC_TEST_MAX_NAME, 'x');

  for (gsize i = 0; i < G_N_ELEMENTS (patterns); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(QipcChannel) channel = qipc_channel_new_for_bus (fixture->bus, patterns[i], &error);

      g_assert_no_error (error);
      g_assert_nonnull (channel);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autoptr(GError) error = NULL;

      g_assert_true (qipc_channel_send_for_bus (fixture->bus, names[i], names[i], NULL, &error));
      g_assert_no_error (error);
    }
  {
    g_autoptr(GError) error = NULL;

    g_assert_true (qipc_channel_send_for_bus (fixture->bus, longest, longest, NULL, &error));
    g_assert_no_error (error);
    g_assert_true (qipc_channel_flush_for_bus (fixture->bus, &error));
    g_assert_no_error (error);
  }
}

/* @levels variants around @inner. */
static GVariant *
nested_variants (guint     levels,
                 GVariant *inner)
{
  for (guint i = 0; i < levels; i++)
    inner = g_variant_new_variant (inner);
  return inner;
}

/* @levels one-item tuples around @inner. */
static GVariant *
nested_tuples (guint     levels,
               GVariant *inner)
{
  for (guint i = 0; i < levels; i++)
    inner = g_variant_new_tuple (&inner, 1);
  return inner;
}

/* @levels one-item arrays around @inner: GLib builds the value in memory
 * whatever the depth of its type. */
static GVariant *
arrays_around (guint     levels,
               GVariant *inner)
{
  for (guint i = 0; i < levels; i++)
    inner = g_variant_new_array (NULL, &inner, 1);
  return inner;
}

/* @levels one-item arrays around a byte. */
static GVariant *
nested_arrays (guint levels)
{
  return arrays_around (levels, g_variant_new_byte (7));
}

/* GVariant reads data at most 128 levels deep (a variant at depth D may
 * hold a type of depth T while D + T < 128): data that deep arrives
 * whole, and deeper data is refused before it is sent, instead of
 * arriving as "()" or making the broker drop the connection; the bus goes
 * on. */
static void
test_data_depth (Fixture       *fixture,
                 gconstpointer  data)
{
  g_autoptr(QipcTestInbox) inbox = qipc_test_inbox_new ();
  G_GNUC_UNUSED g_autoptr(QipcChannel) channel = qipc_test_listen (fixture->bus, "deep/x", inbox);
  GVariant *fits[] = {
    nested_variants (127, g_variant_new_int32 (1)),
    nested_arrays (127),
    nested_tuples (126, g_variant_new_variant (g_variant_new_int32 (2))),
    g_variant_new_variant (nested_arrays (126)),
    nested_tuples (100, nested_variants (20, g_variant_new_string ("x"))),
  };
  GVariant *too_deep[] = {
    nested_variants (128, g_variant_new_int32 (1)),
    nested_arrays (128),
    nested_tuples (126, g_variant_new_variant (nested_arrays (1))),
    g_variant_new_variant (nested_arrays (127)),
    nested_arrays (5000),
  };

  for (gsize i = 0; i < G_N_ELEMENTS (too_deep); i++)
    {
      g_autoptr(GError) error = NULL;

      g_assert_false (qipc_channel_send_for_bus (fixture->bus, "deep/x", "too-deep", too_deep[i], &error));
      g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_LIMIT_EXCEEDED);
      g_assert_nonnull (strstr (error->message, "128 levels"));
    }
  for (gsize i = 0; i < G_N_ELEMENTS (fits); i++)
    {
      g_autoptr(GVariant) value = g_variant_ref_sink (fits[i]);
      g_autofree char *text = g_variant_print (value, TRUE);
      g_autofree char *line = g_strdup_printf ("deep/x fits %s", text);

      qipc_test_send_ok (fixture->bus, "deep/x", "fits", value);
      qipc_test_inbox_wait (inbox, i + 1);
      g_assert_cmpstr (inbox->messages->pdata[i], ==, line);
    }
  qipc_test_flush_ok (fixture->bus);
  g_assert_cmpuint (inbox->messages->len, ==, G_N_ELEMENTS (fits));
}

static void
test_address_invalid (void)
{
  const char *bad[] = { "", "unix", "unix:", "unix:path=relative", "unix:path=/a,abstract=b",
                        "tcp:host=127.0.0.1", "tcp:host=x,port=99999", "dbus:foo=bar",
                        "unix:path=/a,path=/b" };

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(QipcBus) bus = qipc_bus_new_for_address (bad[i], &error);

      g_assert_null (bus);
      g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_INVALID_ADDRESS);
      g_assert_nonnull (strstr (error->message, "Invalid bus address"));
    }
}

static void
test_address_no_broker (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *address = abstract_address ("nobody");
  g_autoptr(QipcBus) bus = qipc_bus_new_for_address (address, &error);

  g_assert_null (bus);
  g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_BROKER_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, address));
}

static void
test_unregister_on_finalize (Fixture       *fixture,
                             gconstpointer  data)
{
  g_autoptr(QipcTestInbox) inbox = qipc_test_inbox_new ();
  QipcChannel *channel = qipc_test_listen (fixture->bus, "gone/soon", inbox);
  g_autoptr(GError) error = NULL;

  g_assert_true (qipc_channel_is_registered_for_bus (fixture->bus, "gone/soon", &error));
  g_object_unref (channel);
  g_assert_false (qipc_channel_is_registered_for_bus (fixture->bus, "gone/soon", &error));
  g_assert_no_error (error);
}

static void
on_channel_event (QipcBroker *broker,
                  const char *name,
                  gpointer    user_data)
{
  g_ptr_array_add (user_data, g_strdup (name));
}

static void
test_broker_signals (Fixture       *fixture,
                     gconstpointer  data)
{
  g_autoptr(GPtrArray) added = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) removed = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(QipcTestInbox) inbox = qipc_test_inbox_new ();
  QipcChannel *first, *second;

  g_signal_connect (fixture->broker, "channel-added", G_CALLBACK (on_channel_event), added);
  g_signal_connect (fixture->broker, "channel-removed", G_CALLBACK (on_channel_event), removed);
  first = qipc_test_listen (fixture->bus, "s/x", inbox);
  second = qipc_test_listen (fixture->bus, "s/x", inbox);
  qipc_test_flush_ok (fixture->bus);
  g_assert_cmpuint (added->len, ==, 1);
  g_assert_cmpstr (added->pdata[0], ==, "s/x");
  g_object_unref (first);
  qipc_test_flush_ok (fixture->bus);
  g_assert_cmpuint (removed->len, ==, 0);
  g_object_unref (second);
  qipc_test_flush_ok (fixture->bus);
  g_assert_cmpuint (removed->len, ==, 1);
  g_assert_cmpstr (removed->pdata[0], ==, "s/x");
  g_assert_cmpuint (qipc_broker_get_n_clients (fixture->broker), ==, 1);
}

static void
test_flush_async (Fixture       *fixture,
                  gconstpointer  data)
{
  g_autoptr(GAsyncResult) flushed = NULL;
  g_autoptr(GAsyncResult) registered = NULL;
  g_autoptr(QipcTestInbox) inbox = qipc_test_inbox_new ();
  G_GNUC_UNUSED g_autoptr(QipcChannel) channel = qipc_test_listen (fixture->bus, "f/x", inbox);
  g_autoptr(GError) error = NULL;

  for (guint i = 0; i < 1000; i++)
    qipc_test_send_ok (fixture->bus, "f/x", "m", g_variant_new_uint32 (i));
  qipc_channel_flush_async (fixture->bus, NULL, qipc_test_store_result, &flushed);
  qipc_channel_is_registered_async (fixture->bus, "f/x", NULL, qipc_test_store_result, &registered);
  qipc_test_wait_for_result (&flushed);
  g_assert_true (qipc_channel_flush_finish (flushed, &error));
  g_assert_no_error (error);
  qipc_test_wait_for_result (&registered);
  g_assert_true (qipc_channel_is_registered_finish (registered, &error));
  g_assert_no_error (error);
  /* The broker queued the deliveries to us before it answered. */
  qipc_test_inbox_wait (inbox, 1000);
}

static void
test_cancelled_call (Fixture       *fixture,
                     gconstpointer  data)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  g_cancellable_cancel (cancellable);
  qipc_channel_flush_async (fixture->bus, cancellable, qipc_test_store_result, &result);
  qipc_test_wait_for_result (&result);
  g_assert_false (qipc_channel_flush_finish (result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

static void
test_channel_limit (Fixture       *fixture,
                    gconstpointer  data)
{
  g_autoptr(GPtrArray) channels = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GError) error = NULL;
  g_autoptr(QipcChannel) one_too_many = NULL;

  for (guint i = 0; i < 1024; i++)
    {
      g_autofree char *name = g_strdup_printf ("limit/%u", i);
      QipcChannel *channel = qipc_channel_new_for_bus (fixture->bus, name, &error);

      g_assert_no_error (error);
      g_ptr_array_add (channels, channel);
    }
  one_too_many = qipc_channel_new_for_bus (fixture->bus, "limit/x", &error);
  g_assert_null (one_too_many);
  g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_LIMIT_EXCEEDED);
  g_clear_error (&error);
  qipc_test_flush_ok (fixture->bus);
}

/* ------------------------------------------------------------------ */
/* Across processes                                                    */

static QipcTestChild *
spawn_broker (const char *address)
{
  QipcTestChild *child = qipc_test_child_spawn ("broker", address, NULL);

  qipc_test_child_expect (child, "listening");
  return child;
}

static void
test_order (void)
{
  g_autofree char *address = abstract_address ("order");
  g_autoptr(QipcTestChild) broker = spawn_broker (address);
  g_autoptr(QipcTestChild) receiver =
    qipc_test_child_spawn ("channel-count", address, "order/x", "100000", "fast", NULL);
  g_autoptr(QipcTestChild) sender = NULL;

  qipc_test_child_expect (receiver, "ready");
  sender = qipc_test_child_spawn ("channel-send", address, "order/x", "100000", NULL);
  qipc_test_child_expect (sender, "sent");
  qipc_test_child_expect (receiver, "received 100000 lost 0");
  qipc_test_child_expect (receiver, "ordered");
  g_assert_cmpint (qipc_test_child_wait (receiver), ==, 0);
  g_assert_cmpint (qipc_test_child_wait (sender), ==, 0);
  qipc_test_child_kill (broker);
}

static void
keep_data (QipcChannel *channel,
           const char  *message,
           GVariant    *data,
           gpointer     user_data)
{
  *(GVariant **) user_data = g_variant_ref (data);
}

/* @levels one-item arrays around @size zero bytes. */
static GVariant *
arrays_around_bytes (guint levels,
                     gsize size)
{
  g_autofree guint8 *bytes = g_malloc0 (size);

  return arrays_around (levels, g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, bytes, size, 1));
}

/* Data of 64 KiB or more travels in a memfd, as "mv": two levels down,
 * where GLib reads it only if it nests two levels less. 126 levels
 * arrive whole; 127 are refused, instead of arriving as "()". */
static void
test_data_depth_memfd (Fixture       *fixture,
                       gconstpointer  data)
{
  g_autoptr(QipcChannel) channel = qipc_channel_new_for_bus (fixture->bus, "deep/big", NULL);
  g_autoptr(GVariant) fits = g_variant_ref_sink (arrays_around_bytes (124, 70000));
  g_autoptr(GVariant) too_deep = g_variant_ref_sink (arrays_around_bytes (125, 70000));
  g_autoptr(GVariant) received = NULL;
  g_autoptr(GError) error = NULL;
  guint timeout;

  g_assert_cmpuint (g_variant_get_size (fits), >=, 64 * 1024);
  g_signal_connect (channel, "received", G_CALLBACK (keep_data), &received);
  qipc_test_flush_ok (fixture->bus);
  g_assert_false (qipc_channel_send_for_bus (fixture->bus, "deep/big", "too-deep", too_deep, &error));
  g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_LIMIT_EXCEEDED);
  g_assert_nonnull (strstr (error->message, "126 levels"));

  qipc_test_send_ok (fixture->bus, "deep/big", "fits", fits);
  timeout = qipc_test_add_deadline ("the payload");
  while (received == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (timeout);
  g_assert_cmpstr (g_variant_get_type_string (received), ==, g_variant_get_type_string (fits));
  g_assert_true (g_variant_equal (received, fits));
}

static void
test_large_payload (void)
{
  g_autofree char *address = abstract_address ("large");
  g_autoptr(QipcTestChild) broker = spawn_broker (address);
  g_autoptr(GError) error = NULL;
  g_autoptr(QipcBus) bus = qipc_bus_new_for_address (address, &error);
  g_autoptr(QipcChannel) channel = NULL;
  g_autoptr(GVariant) received = NULL;
  gsize size = 64 * 1024 * 1024;
  g_autofree guint8 *data = g_malloc (size);
  g_autofree char *sent_sum = NULL;
  g_autofree char *received_sum = NULL;
  gconstpointer received_data;
  gsize received_size;
  guint timeout;

  g_assert_no_error (error);
  for (gsize i = 0; i < size; i++)
    data[i] = (i * 7 + i / 4096) & 0xff;
  sent_sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256, data, size);
  channel = qipc_channel_new_for_bus (bus, "big/x", &error);
  g_assert_no_error (error);
  g_signal_connect (channel, "received", G_CALLBACK (keep_data), &received);

  /* Sent to ourselves through the broker's process: the payload goes
   * out and comes back as a sealed memfd. */
  qipc_test_send_ok (bus, "big/x", "blob", g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, data, size, 1));
  g_clear_pointer (&data, g_free);
  timeout = qipc_test_add_deadline ("the payload");
  while (received == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (timeout);

  received_data = g_variant_get_fixed_array (received, &received_size, 1);
  g_assert_cmpuint (received_size, ==, size);
  received_sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256, received_data, received_size);
  g_assert_cmpstr (received_sum, ==, sent_sum);
  qipc_test_child_kill (broker);
}

static void
test_slow_receiver (Fixture       *fixture,
                    gconstpointer  data)
{
  g_autoptr(QipcTestChild) receiver =
    qipc_test_child_spawn ("channel-count", fixture->address, "slow/x", "20000", "slow", NULL);
  g_autofree char *line = NULL;
  guint received, lost;

  qipc_broker_set_max_queued_bytes (fixture->broker, 64 * 1024);
  qipc_test_child_expect (receiver, "ready");
  for (guint i = 0; i < 20000; i++)
    {
      qipc_test_send_ok (fixture->bus, "slow/x", "n", g_variant_new_uint32 (i));
      if (i % 256 == 255)
        while (g_main_context_iteration (NULL, FALSE))
          ;
    }
  qipc_test_flush_ok (fixture->bus);
  qipc_test_child_send (receiver, "go");
  line = qipc_test_child_read_line (receiver);
  g_assert_cmpint (sscanf (line, "received %u lost %u", &received, &lost), ==, 2);
  g_test_message ("slow receiver: %u received, %u lost", received, lost);
  g_assert_cmpuint (received + lost, ==, 20000);
  g_assert_cmpuint (lost, >, 0);
  g_assert_cmpuint (received, >, 0);
  qipc_test_child_expect (receiver, "ordered");
  g_assert_cmpint (qipc_test_child_wait (receiver), ==, 0);
}

static void
on_bus_event (QipcBus  *bus,
              gpointer  user_data)
{
  (*(guint *) user_data)++;
}

static void
test_queue_full (void)
{
  g_autofree char *address = abstract_address ("queue-full");
  g_autoptr(QipcTestChild) broker = spawn_broker (address);
  g_autoptr(GError) error = NULL;
  g_autoptr(QipcBus) bus = qipc_bus_new_for_address (address, &error);
  guint disconnects = 0;
  guint sent = 0;
  guint timeout;

  g_assert_no_error (error);
  g_signal_connect (bus, "disconnected", G_CALLBACK (on_bus_event), &disconnects);
  qipc_bus_set_max_queued (bus, 4096);
  qipc_test_child_kill (broker);
  timeout = qipc_test_add_deadline ("disconnected");
  while (disconnects == 0)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (timeout);

  while (qipc_channel_send_for_bus (bus, "q/x", "m", g_variant_new_uint32 (sent), &error))
    sent++;
  g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_QUEUE_FULL);
  g_assert_cmpuint (sent, >, 10);
  g_assert_cmpuint (sent, <, 4096);
  g_clear_error (&error);

  /* A blocking flush does not wait forever for a broker that is gone. */
  g_assert_false (qipc_channel_flush_for_bus (bus, &error));
  g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_DISCONNECTED);
  g_assert_nonnull (strstr (error->message, "unreachable"));
}

/* Raw bytes to the broker, as a broken or hostile client would send. */
static void
send_raw (const char *address,
          const void *data,
          gsize       size,
          gboolean    expect_close)
{
  g_autoptr(QipcLocalSocket) socket = qipc_local_socket_new ();
  g_autoptr(GBytes) bytes = g_bytes_new (data, size);
  g_autoptr(GError) error = NULL;
  const char *name = address + strlen ("unix:abstract=");
  g_autofree char *local_name = g_strconcat ("@", name, NULL);

  qipc_local_socket_connect_to_server (socket, local_name);
  g_assert_true (qipc_socket_wait_for_connected (QIPC_SOCKET (socket), 5000, &error));
  g_assert_true (qipc_socket_write (QIPC_SOCKET (socket), bytes, &error));
  g_assert_no_error (error);
  if (expect_close)
    g_assert_true (qipc_socket_wait_for_disconnected (QIPC_SOCKET (socket), 5000, NULL));
  else
    qipc_socket_close (QIPC_SOCKET (socket));
}

static void
test_garbage (void)
{
  g_autofree char *address = abstract_address ("garbage");
  g_autoptr(QipcTestChild) broker = spawn_broker (address);
  g_autoptr(QipcTestChild) listener = qipc_test_child_spawn ("channel-listen", address, "g/x", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(QipcBus) bus = qipc_bus_new_for_address (address, &error);
  /* A HELLO of protocol version 1, then frames with faults. */
  static const guint8 hello[] = { 'Q', 'C', 1, 1, 0, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0,
                                  1, 1, 't', 0 };
  guint8 frame[64];
  char junk[4096];
  guint8 huge[16] = { 'Q', 'C', 1, 6, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 2, 0, 0, 0 };
  guint8 bad_version[16] = { 'Q', 'C', 9, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0 };
  guint8 broker_frame[16] = { 'Q', 'C', 1, 7, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0 };

  g_assert_no_error (error);
  qipc_test_child_expect (listener, "ready");

  for (gsize i = 0; i < sizeof junk; i++)
    junk[i] = (char) g_random_int ();
  send_raw (address, junk, sizeof junk, TRUE);
  send_raw (address, "QC", 2, FALSE);                    /* truncated header */
  send_raw (address, hello, 10, FALSE);                  /* truncated body */
  send_raw (address, huge, sizeof huge, TRUE);           /* body over the limit */
  send_raw (address, bad_version, sizeof bad_version, TRUE);
  send_raw (address, broker_frame, sizeof broker_frame, TRUE); /* DELIVER from a client */
  /* A valid HELLO, then a SEND whose body is not (ssmv). */
  memcpy (frame, hello, sizeof hello);
  memcpy (frame + sizeof hello, (guint8[]) { 'Q', 'C', 1, 6, 0, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0,
                                             'a', 'b', 'c' }, 19);
  send_raw (address, frame, sizeof hello + 19, TRUE);
  /* A SEND before HELLO. */
  send_raw (address, frame + sizeof hello, 19, TRUE);

  /* Everyone else goes on. */
  qipc_test_send_ok (bus, "g/x", "still-here", NULL);
  qipc_test_child_expect (listener, "g/x still-here none");
  g_assert_true (qipc_test_is_registered (bus, "g/x"));
  qipc_test_child_kill (listener);
  qipc_test_child_kill (broker);
}

static const char policy_json[] =
  "{ \"allow\": [ { \"uid\": 65534, \"send\": [\"pub/**\"], \"receive\": [\"pub/**\"] } ] }";

/* The policy admits nobody to pub/…: its sends elsewhere are refused,
 * and it receives only from pub/…, whatever it listens on. */
static void
test_policy_allows (Fixture       *fixture,
                    gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QipcBroker) broker = qipc_broker_new ();
  g_autofree char *address = abstract_address ("policy");
  g_autoptr(QipcBus) bus = NULL;
  g_autoptr(QipcTestChild) allowed = NULL;
  g_autoptr(QipcTestChild) refused = NULL;
  g_autoptr(QipcTestInbox) inbox = qipc_test_inbox_new ();
  g_autoptr(QipcChannel) channel = NULL;

  if (!qipc_test_is_root ())
    {
      g_test_fail_printf ("Needs root to run a client as another user");
      return;
    }
  g_assert_true (qipc_broker_set_policy_from_data (broker, policy_json, -1, &error));
  g_assert_no_error (error);
  g_assert_true (qipc_broker_listen (broker, address, &error));
  bus = qipc_bus_new_for_address (address, &error);
  g_assert_no_error (error);
  channel = qipc_test_listen (bus, "pub/x", inbox);
  qipc_test_flush_ok (bus);

  allowed = qipc_test_child_spawn ("channel-as-nobody", address, "**", "pub/x", NULL);
  qipc_test_child_expect (allowed, "ok");
  qipc_test_inbox_wait (inbox, 1);
  g_assert_cmpstr (inbox->messages->pdata[0], ==, "pub/x hello none");

  refused = qipc_test_child_spawn ("channel-as-nobody", address, "**", "priv/x", NULL);
  qipc_test_child_expect (refused, "access-denied");

  /* Listening on "**", nobody gets pub/x (sent by the owner and by the
   * other nobody client) but not priv/x. */
  qipc_test_send_ok (bus, "priv/x", "secret", NULL);
  qipc_test_send_ok (bus, "pub/x", "news", NULL);
  qipc_test_child_expect (allowed, "** news none");
  qipc_test_child_expect (refused, "** news none");
  qipc_test_child_kill (allowed);
  qipc_test_child_kill (refused);
}

/* Without a policy only the broker's user may connect. */
static void
test_policy_refuses (Fixture       *fixture,
                     gconstpointer  data)
{
  g_autoptr(QipcTestChild) stranger = NULL;

  if (!qipc_test_is_root ())
    {
      g_test_fail_printf ("Needs root to run a client as another user");
      return;
    }
  stranger = qipc_test_child_spawn ("channel-as-nobody", fixture->address, "a/b", "a/b", NULL);
  qipc_test_child_expect (stranger, "access-denied");
  qipc_test_child_kill (stranger);
  g_assert_true (qipc_test_is_registered (fixture->bus, "x/y") == FALSE);
}

static void
test_policy_invalid (void)
{
  const char *bad[] = { "", "{", "[]", "{\"allow\": 1}", "{\"deny\": []}",
                        "{\"allow\": [{\"uid\": 1, \"send\": [\"a//b\"]}]}" };

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(QipcBroker) broker = qipc_broker_new ();
      g_autoptr(GError) error = NULL;

      g_assert_false (qipc_broker_set_policy_from_data (broker, bad[i], -1, &error));
      g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_FAILED);
    }
}

/* A broker on a free loopback port with @certs' first certificate (the
 * test fails without certificates: openssl is a test dependency) and
 * @policy (NULL for the default); its address goes to @address, its port
 * to @port. */
static QipcBroker *
tls_broker_new (QipcTestCertificates  *certs,
                const char            *policy,
                char                 **address,
                guint16               *port_out)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GTlsCertificate) certificate = NULL;
  QipcBroker *broker = qipc_broker_new ();
  guint16 port = qipc_test_free_loopback_port ();

  g_assert_nonnull (certs);
  certificate = qipc_test_load_certificate (certs->cert, certs->key);
  qipc_broker_set_tls_certificate (broker, certificate);
  g_assert_true (qipc_broker_get_tls_certificate (broker) == certificate);
  if (policy != NULL)
    g_assert_true (qipc_broker_set_policy_from_data (broker, policy, -1, &error));
  *address = g_strdup_printf ("tcp:host=127.0.0.1,port=%u", port);
  g_assert_true (qipc_broker_listen (broker, *address, &error));
  g_assert_no_error (error);
  if (port_out != NULL)
    *port_out = port;
  return broker;
}

/* TCP is TLS. Its clients have no credentials: refused by default,
 * admitted by an "anonymous" rule. */
static void
test_tcp (void)
{
  g_autoptr(QipcTestCertificates) certs = qipc_test_certificates_new ();
  g_autofree char *closed_address = NULL;
  g_autofree char *open_address = NULL;
  G_GNUC_UNUSED g_autoptr(QipcBroker) closed = tls_broker_new (certs, NULL, &closed_address, NULL);
  G_GNUC_UNUSED g_autoptr(QipcBroker) open = tls_broker_new (certs,
      "{\"allow\": [{\"anonymous\": true, \"send\": [\"t/**\"], \"receive\": [\"t/**\"]}]}",
      &open_address, NULL);
  g_autofree char *address_closed = g_strdup_printf ("%s,ca=%s", closed_address, certs->cert);
  g_autofree char *address_open = g_strdup_printf ("%s,ca=%s", open_address, certs->cert);
  g_autoptr(GError) error = NULL;
  g_autoptr(QipcBus) bus = NULL;
  g_autoptr(QipcBus) refused = NULL;
  g_autoptr(QipcTestInbox) inbox = qipc_test_inbox_new ();
  g_autoptr(QipcChannel) channel = NULL;

  refused = qipc_bus_new_for_address (address_closed, &error);
  g_assert_no_error (error);
  g_assert_false (qipc_channel_flush_for_bus (refused, &error));
  g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_ACCESS_DENIED);
  g_clear_error (&error);

  bus = qipc_bus_new_for_address (address_open, &error);
  g_assert_no_error (error);
  channel = qipc_test_listen (bus, "t/*", inbox);
  qipc_test_send_ok (bus, "t/x", "over-tcp", g_variant_new_string ("hi"));
  qipc_test_inbox_wait (inbox, 1);
  g_assert_cmpstr (inbox->messages->pdata[0], ==, "t/* over-tcp 'hi'");
  /* Payloads past the memfd threshold travel inline on TCP, up to 1 MiB. */
  {
    g_autofree guint8 *blob = g_malloc0 (2 * 1024 * 1024);

    g_assert_false (qipc_channel_send_for_bus (bus, "t/x", "too-big",
                                               g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, blob,
                                                                          2 * 1024 * 1024, 1),
                                               &error));
    g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_LIMIT_EXCEEDED);
    g_clear_error (&error);
    qipc_test_send_ok (bus, "t/x", "medium",
                       g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, blob, 200 * 1024, 1));
    qipc_test_inbox_wait (inbox, 2);
  }
}

/* The handshake runs on the main loop, so the failure comes with the
 * first call that waits for the broker, and stays. */
static void
assert_tls_refused (const char *address)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QipcBus) bus = qipc_bus_new_for_address (address, &error);

  g_assert_no_error (error);
  g_assert_false (qipc_channel_flush_for_bus (bus, &error));
  g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_TLS_HANDSHAKE_FAILED);
  g_assert_nonnull (strstr (error->message, address));
  g_clear_error (&error);
  g_assert_false (qipc_channel_send_for_bus (bus, "t/x", "m", NULL, &error));
  g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_TLS_HANDSHAKE_FAILED);
  g_assert_false (qipc_bus_is_connected (bus));
}

static gboolean
broker_has_one_client (gconstpointer broker)
{
  return qipc_broker_get_n_clients ((QipcBroker *) broker) == 1;
}

/* A client refuses a broker it cannot verify; a broker refuses to listen
 * on TCP without a certificate, and drops a client that does not speak
 * TLS while serving the others. */
static void
test_tcp_tls_refusals (void)
{
  g_autoptr(QipcTestCertificates) certs = qipc_test_certificates_new ();
  g_autofree char *address = NULL;
  guint16 port = 0;
  g_autoptr(QipcBroker) broker = tls_broker_new (certs,
      "{\"allow\": [{\"anonymous\": true, \"send\": [\"t/**\"], \"receive\": [\"t/**\"]}]}",
      &address, &port);
  g_autofree char *trusted = g_strdup_printf ("%s,ca=%s", address, certs->cert);
  g_autofree char *other_ca = g_strdup_printf ("%s,ca=%s", address, certs->other_cert);
  g_autofree char *missing_ca = g_strdup_printf ("%s,ca=%s/none.pem", address, certs->dir);
  g_autoptr(QipcBroker) plain = qipc_broker_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(QipcBus) bus = NULL;
  g_autoptr(QipcTestInbox) inbox = qipc_test_inbox_new ();
  g_autoptr(QipcChannel) channel = NULL;

  /* The system's authorities do not know a self-signed certificate, and
   * another authority did not sign it. */
  assert_tls_refused (address);
  assert_tls_refused (other_ca);
  g_assert_null (qipc_bus_new_for_address (missing_ca, &error));
  g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_INVALID_ADDRESS);
  g_assert_nonnull (strstr (error->message, "none.pem"));
  g_clear_error (&error);

  g_assert_false (qipc_broker_listen (plain, "tcp:host=127.0.0.1,port=0", &error));
  g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "TLS certificate"));
  g_clear_error (&error);

  /* A client that talks in clear gets nowhere, and the broker goes on. */
  bus = qipc_bus_new_for_address (trusted, &error);
  g_assert_no_error (error);
  channel = qipc_test_listen (bus, "t/*", inbox);
  qipc_test_flush_ok (bus);
  {
    static const char text[] = "HELLO in clear, not a TLS record\n";
    g_autoptr(GSocketClient) client = g_socket_client_new ();
    g_autoptr(GSocketConnection) clear =
      g_socket_client_connect_to_host (client, "127.0.0.1", port, NULL, &error);

    g_assert_no_error (error);
    g_assert_true (g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (clear)),
                                              text, sizeof text - 1, NULL, NULL, &error));
    g_assert_no_error (error);
  }
  qipc_test_send_ok (bus, "t/x", "still-served", NULL);
  qipc_test_inbox_wait (inbox, 1);
  g_assert_cmpstr (inbox->messages->pdata[0], ==, "t/* still-served none");
  /* The clear client is gone from the broker, not kept. */
  qipc_test_wait_until (broker_has_one_client, broker, "the clear client to go");
}

/* Several processes find no broker at the same moment: each starts one,
 * one of those serves, and every process ends up on it. */
static void
test_autostart_race (void)
{
  g_autofree char *dir = g_dir_make_tmp ("qipc-test-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "qipc", "bus", NULL);
  g_autofree char *address = g_strconcat ("unix:path=", path, NULL);
  g_autoptr(GPtrArray) children = g_ptr_array_new_with_free_func ((GDestroyNotify) qipc_test_child_free);
  g_autoptr(QipcBus) bus = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *lock = g_strconcat (path, ".lock", NULL);
  g_autofree char *qipc_dir = g_path_get_dirname (path);

  g_assert_nonnull (g_getenv ("QIPC_BROKER"));
  g_setenv ("QIPC_BUS_ADDRESS", address, TRUE);
  for (guint i = 0; i < 6; i++)
    {
      g_autofree char *name = g_strdup_printf ("race/%u", i);

      g_ptr_array_add (children, qipc_test_child_spawn ("channel-default", name, NULL));
    }
  for (guint i = 0; i < children->len; i++)
    qipc_test_child_expect (children->pdata[i], "ready");

  bus = qipc_bus_new_for_address (address, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < children->len; i++)
    {
      g_autofree char *name = g_strdup_printf ("race/%u", i);

      g_assert_true (qipc_test_is_registered (bus, name));
    }
  g_unsetenv ("QIPC_BUS_ADDRESS");
  for (guint i = 0; i < children->len; i++)
    qipc_test_child_kill (children->pdata[i]);
  g_clear_object (&bus);
  /* The broker exits by itself when idle; its files may stay a moment,
   * and go with the directory now. */
  g_unlink (lock);
  g_unlink (path);
  g_rmdir (qipc_dir);
  g_rmdir (dir);
}

static void
test_list_channels (Fixture       *fixture,
                    gconstpointer  data)
{
  g_autoptr(QipcTestInbox) inbox = qipc_test_inbox_new ();
  G_GNUC_UNUSED g_autoptr(QipcChannel) one = qipc_test_listen (fixture->bus, "l/a", inbox);
  G_GNUC_UNUSED g_autoptr(QipcChannel) two = qipc_test_listen (fixture->bus, "l/a", inbox);
  G_GNUC_UNUSED g_autoptr(QipcChannel) pattern = qipc_test_listen (fixture->bus, "l/**", inbox);
  g_autoptr(GVariant) list = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) again = NULL;
  guint count = 0;

  list = qipc_bus_list_channels (fixture->bus, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (list), ==, "a(su)");
  g_assert_cmpuint (g_variant_n_children (list), ==, 2);
  for (gsize i = 0; i < g_variant_n_children (list); i++)
    {
      const char *name;
      guint32 listeners;

      g_variant_get_child (list, i, "(&su)", &name, &listeners);
      if (g_str_equal (name, "l/a") || g_str_equal (name, "l/**"))
        {
          g_assert_cmpuint (listeners, ==, g_str_equal (name, "l/a") ? 2 : 1);
          count++;
        }
    }
  g_assert_cmpuint (count, ==, 2);

  qipc_bus_list_channels_async (fixture->bus, NULL, qipc_test_store_result, &result);
  qipc_test_wait_for_result (&result);
  again = qipc_bus_list_channels_finish (fixture->bus, result, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_equal (again, list));
}

static void
on_monitored (QipcBus    *bus,
              const char *channel,
              const char *message,
              GVariant   *data,
              gpointer    user_data)
{
  g_autofree char *text = data != NULL ? g_variant_print (data, TRUE) : g_strdup ("none");

  g_ptr_array_add (user_data, g_strdup_printf ("%s %s %s", channel, message, text));
}

/* A monitor sees every message, whether anyone listens or not, once. */
static void
test_monitor (Fixture       *fixture,
              gconstpointer  data)
{
  g_autoptr(GPtrArray) seen = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  g_autoptr(QipcBus) watcher = qipc_bus_new_for_address (fixture->address, &error);
  g_autoptr(QipcTestInbox) inbox = qipc_test_inbox_new ();
  g_autoptr(QipcChannel) channel = NULL;
  guint timeout;

  g_assert_no_error (error);
  g_signal_connect (watcher, "monitored", G_CALLBACK (on_monitored), seen);
  g_assert_true (qipc_bus_start_monitor (watcher, &error));
  g_assert_no_error (error);
  channel = qipc_test_listen (watcher, "m/*", inbox);
  qipc_test_flush_ok (watcher);

  qipc_test_send_ok (fixture->bus, "nobody/listens", "a", NULL);
  qipc_test_send_ok (fixture->bus, "m/x", "b", g_variant_new_int32 (3));
  qipc_test_flush_ok (fixture->bus);
  timeout = qipc_test_add_deadline ("monitored messages");
  while (seen->len < 2 || inbox->messages->len < 1)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (timeout);
  qipc_test_settle (50);
  g_assert_cmpuint (seen->len, ==, 2);
  g_assert_cmpstr (seen->pdata[0], ==, "nobody/listens a none");
  g_assert_cmpstr (seen->pdata[1], ==, "m/x b 3");
  g_assert_cmpuint (inbox->messages->len, ==, 1);
  g_assert_cmpstr (inbox->messages->pdata[0], ==, "m/* b 3");
}

/* A client that connects and never says HELLO is dropped, with an
 * ERROR frame that says why; others are not affected. */
static void
test_handshake_timeout (Fixture       *fixture,
                        gconstpointer  data)
{
  g_autoptr(QipcLocalSocket) silent = qipc_local_socket_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *name = g_strconcat ("@", fixture->address + strlen ("unix:abstract="), NULL);
  guint8 header[16];

  g_object_set (fixture->broker, "handshake-timeout", 200, NULL);
  g_assert_cmpuint (qipc_broker_get_handshake_timeout (fixture->broker), ==, 200);
  qipc_local_socket_connect_to_server (silent, name);
  g_assert_true (qipc_socket_wait_for_connected (QIPC_SOCKET (silent), 5000, &error));
  g_assert_true (qipc_socket_wait_for_disconnected (QIPC_SOCKET (silent), 10000, NULL));
  g_assert_cmpuint (qipc_socket_read_data (QIPC_SOCKET (silent), header, sizeof header), ==, 16);
  g_assert_cmpuint (header[3], ==, 3);   /* ERROR */
  g_assert_cmpuint (header[12], ==, 0);  /* serial 0: the end */
  /* The fixture's bus said HELLO long ago and goes on. */
  g_assert_false (qipc_test_is_registered (fixture->bus, "x/y"));
}

/* A bus made on a main context of its own (a worker thread's), closed
 * while it waits to reconnect: the reconnection was on that context, not
 * the global default one, and must not run on the freed bus. */
static void
test_close_while_reconnecting_own_context (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autofree char *address = abstract_address ("own-context");
  g_autoptr(GError) error = NULL;
  QipcBroker *broker;
  QipcBus *bus;
  gint64 end;

  g_main_context_push_thread_default (context);
  broker = qipc_broker_new ();
  g_assert_true (qipc_broker_listen (broker, address, &error));
  g_assert_no_error (error);
  bus = qipc_bus_new_for_address (address, &error);
  g_assert_no_error (error);
  g_assert_true (qipc_bus_is_connected (bus));

  g_object_unref (broker);
  end = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
  while (qipc_bus_is_connected (bus) && g_get_monotonic_time () < end)
    g_main_context_iteration (context, FALSE);
  g_assert_false (qipc_bus_is_connected (bus));

  qipc_bus_close (bus);
  g_object_unref (bus);
  /* The first reconnection was due 20 ms after the loss. */
  end = g_get_monotonic_time () + 200 * 1000;
  while (g_get_monotonic_time () < end)
    g_main_context_iteration (context, FALSE), g_usleep (1000);
  g_main_context_pop_thread_default (context);
}

/* Own messages, details, patterns, closed buses, fan-out, is_registered across processes and broker
 * restarts are in test-channel-transports.c, which runs them on every
 * transport, the native one included. */

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add ("/channel/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("names/invalid", test_names_invalid);
  ADD ("names/valid", test_names_valid);
  ADD ("data/depth", test_data_depth);
  ADD ("data/depth-memfd", test_data_depth_memfd);
  ADD ("register/unregister-on-finalize", test_unregister_on_finalize);
  ADD ("register/limit", test_channel_limit);
  ADD ("broker/channel-signals", test_broker_signals);
  ADD ("flush/async", test_flush_async);
  ADD ("flush/cancelled", test_cancelled_call);
  ADD ("slow-receiver/loses-and-is-told", test_slow_receiver);
  ADD ("policy/allows", test_policy_allows);
  ADD ("broker/list-channels", test_list_channels);
  ADD ("broker/monitor", test_monitor);
  ADD ("broker/handshake-timeout", test_handshake_timeout);
  ADD ("policy/refuses-other-users", test_policy_refuses);
#undef ADD
  g_test_add_func ("/channel/address/invalid", test_address_invalid);
  g_test_add_func ("/channel/address/no-broker", test_address_no_broker);
  g_test_add_func ("/channel/reconnect/close-on-own-context",
                   test_close_while_reconnecting_own_context);
  g_test_add_func ("/channel/processes/order-100000", test_order);
  g_test_add_func ("/channel/processes/payload-64mib", test_large_payload);
  g_test_add_func ("/channel/processes/queue-full", test_queue_full);
  g_test_add_func ("/channel/processes/garbage", test_garbage);
  g_test_add_func ("/channel/policy/invalid", test_policy_invalid);
  g_test_add_func ("/channel/tcp", test_tcp);
  g_test_add_func ("/channel/tcp-tls-refusals", test_tcp_tls_refusals);
  g_test_add_func ("/channel/autostart/race", test_autostart_race);

  return g_test_run ();
}
