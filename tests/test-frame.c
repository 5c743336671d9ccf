/* test-frame.c: the native protocol's frame codec
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "qipc-frame-private.h"
#include "qipc.h"

#include <string.h>

/* The hand-written "(ssmv)" codec must produce exactly GLib's bytes. */
static void
check_send_body (const char *channel,
                 const char *message,
                 GVariant   *data)
{
  g_autoptr(GVariant) owned = data != NULL ? g_variant_ref_sink (data) : NULL;
  g_autoptr(GVariant) reference =
    g_variant_ref_sink (g_variant_new ("(ss@mv)", channel, message,
                                       g_variant_new_maybe (G_VARIANT_TYPE_VARIANT,
                                                            owned ? g_variant_new_variant (owned) : NULL)));
  g_autoptr(GByteArray) frame = g_byte_array_new ();
  g_autoptr(GError) error = NULL;
  QipcSendBody body;
  const guint8 *bytes;
  gsize size;

  _qipc_frame_append_send (frame, QIPC_FRAME_SEND, 7, channel, message, owned);
  bytes = frame->data + QIPC_FRAME_HEADER_SIZE;
  size = frame->len - QIPC_FRAME_HEADER_SIZE;
  g_assert_cmpuint (size, ==, g_variant_get_size (reference));
  g_assert_cmpmem (bytes, size, g_variant_get_data (reference), size);

  g_assert_true (_qipc_frame_parse_send_body (bytes, size, NULL, &body, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (body.channel, ==, channel);
  g_assert_cmpstr (body.message, ==, message);
  g_assert_cmpint (body.has_data, ==, owned != NULL);
  if (owned != NULL)
    {
      g_autofree char *type = g_strndup (body.type_string, body.type_length);
      g_autoptr(GBytes) value = g_bytes_new (body.value, body.value_size);
      g_autoptr(GVariant) decoded =
        g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE (type), value, FALSE));

      g_assert_true (g_variant_equal (decoded, owned));
    }
}

static void
test_send_body_matches_glib (void)
{
  g_autofree char *long_name = g_strnfill (250, 'n');
  g_autofree guint8 *blob = g_malloc0 (70000);

  check_send_body ("a", "m", NULL);
  check_send_body ("a/b", "setValue", g_variant_new_int32 (42));
  check_send_body ("a/b/c", "x", g_variant_new ("(sid)", "text", -1, 2.5));
  check_send_body (long_name, long_name, g_variant_new_string (long_name));
  check_send_body ("app", "dict", g_variant_new_parsed ("{'a': <1>, 'b': <[1, 2, 3]>}"));
  check_send_body ("app", "bytes",
                   g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, blob, 300, 1));
  check_send_body ("app", "bytes",
                   g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, blob, 70000, 1));
  check_send_body ("ünï/cødé", "mëssage", g_variant_new ("ms", NULL));
}

static void
check_rejected (const guint8 *body,
                gsize         size)
{
  g_autoptr(GError) error = NULL;
  QipcSendBody parsed;

  g_assert_false (_qipc_frame_parse_send_body (body, size, NULL, &parsed, &error));
  g_assert_nonnull (error);
  g_assert_true (error->domain == QIPC_BUS_ERROR);
}

static void
test_send_body_rejects (void)
{
  g_autoptr(GByteArray) frame = g_byte_array_new ();
  g_autoptr(GVariant) one = g_variant_ref_sink (g_variant_new_int32 (1));
  guint8 *body;
  gsize size;

  check_rejected ((const guint8 *) "", 0);
  check_rejected ((const guint8 *) "a", 1);
  /* ("a", "bc", Nothing) without the padding GLib writes before the
   * empty maybe: 8 bytes instead of 10. */
  check_rejected ((const guint8 *) "a\0bc\0\0\x05\x02", 8);
  /* "a\0b\0" with offsets 2, 4: valid; then break it in each way. */
  _qipc_frame_append_send (frame, QIPC_FRAME_SEND, 1, "a", "b", one);
  body = frame->data + QIPC_FRAME_HEADER_SIZE;
  size = frame->len - QIPC_FRAME_HEADER_SIZE;
  {
    g_autofree guint8 *copy = g_memdup2 (body, size);

    copy[size - 1] = 200;              /* channel end beyond the body */
    check_rejected (copy, size);
  }
  {
    g_autofree guint8 *copy = g_memdup2 (body, size);

    copy[1] = 'x';                     /* channel not NUL-terminated */
    check_rejected (copy, size);
  }
  {
    g_autofree guint8 *copy = g_memdup2 (body, size);

    copy[size - 3] = 'q';              /* type string "iq": two types */
    check_rejected (copy, size);
  }
  {
    g_autofree guint8 *copy = g_memdup2 (body, size);

    copy[0] = '*';                     /* a pattern as the target */
    check_rejected (copy, size);
  }
  for (const char *c = "*?r"; *c != '\0'; c++)
    {
      g_autofree guint8 *copy = g_memdup2 (body, size);

      copy[size - 4] = *c;             /* an indefinite type: no value has it */
      check_rejected (copy, size);
    }
}

/* Data whose type nests @depth levels: @depth - 1 maybes around an
 * array holding the int32 1, each maybe "just" (GVariant marks a just
 * of a value of variable size with a trailing zero byte). Trusted: GLib
 * builds it without reading it. */
static GVariant *
deep_data (gsize depth)
{
  g_autofree char *maybes = g_strnfill (depth - 2, 'm');
  g_autofree char *type = g_strconcat (maybes, "ai", NULL);
  gsize size = 4 + depth - 2;
  guint8 *bytes = g_malloc0 (size);

  bytes[0] = 1;
  return g_variant_ref_sink (g_variant_new_from_data (G_VARIANT_TYPE (type), bytes, size, TRUE,
                                                      g_free, bytes));
}

/* GLib 2.74 aborts reading untrusted data of a type deeper than 128
 * levels (even in g_variant_is_normal_form()): a receiver refuses the
 * frame instead. 128 levels pass. */
static void
test_send_body_deep_type (void)
{
  /* GLib refuses type strings deeper than 129 levels itself. */
  for (gsize depth = 127; depth <= 129; depth++)
    {
      g_autoptr(GVariant) data = deep_data (depth);
      g_autoptr(GByteArray) frame = g_byte_array_new ();
      g_autoptr(GError) error = NULL;
      QipcSendBody body;
      gboolean parsed;

      _qipc_frame_append_send (frame, QIPC_FRAME_SEND, 1, "a", "m", data);
      parsed = _qipc_frame_parse_send_body (frame->data + QIPC_FRAME_HEADER_SIZE,
                                            frame->len - QIPC_FRAME_HEADER_SIZE, NULL, &body, &error);
      g_assert_true (parsed == (depth <= QIPC_DATA_MAX_DEPTH));
      g_assert_true (_qipc_data_type_fits (g_variant_get_type_string (data),
                                           strlen (g_variant_get_type_string (data))) == parsed);
      if (parsed)
        {
          g_autoptr(GBytes) value = g_bytes_new (body.value, body.value_size);
          g_autoptr(GVariant) received =
            g_variant_ref_sink (g_variant_new_from_bytes (g_variant_get_type (data), value, FALSE));

          /* Read whole, as untrusted data. */
          g_assert_true (g_variant_equal (received, data));
        }
      else
        g_assert_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_PROTOCOL);
    }
}

static void
count_received (QipcChannel *channel,
                const char  *message,
                GVariant    *data,
                gpointer     user_data)
{
  g_autofree char *text = data != NULL ? g_variant_print (data, TRUE) : NULL;

  g_ptr_array_add (user_data, g_strdup_printf ("%s %s", message, text ? text : "none"));
}

/* The same data from a hostile client, through a broker: the broker
 * drops that client, and the listener, which would have aborted on
 * printing the data, gets what the others send. */
static void
test_deep_type_through_broker (void)
{
  g_autofree char *address = g_strdup_printf ("unix:abstract=qipc-test-frame-deep-%d", (int) getpid ());
  g_autofree char *name = g_strdup_printf ("@qipc-test-frame-deep-%d", (int) getpid ());
  g_autoptr(QipcBroker) broker = qipc_broker_new ();
  g_autoptr(QipcBus) bus = NULL;
  g_autoptr(QipcChannel) channel = NULL;
  g_autoptr(QipcLocalSocket) hostile = qipc_local_socket_new ();
  g_autoptr(GPtrArray) received = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GVariant) deep = deep_data (129);
  g_autoptr(GByteArray) frames = g_byte_array_new ();
  g_autoptr(GBytes) hello = NULL;
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;
  gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;

  g_assert_true (qipc_broker_listen (broker, address, &error));
  g_assert_no_error (error);
  bus = qipc_bus_new_for_address (address, &error);
  g_assert_no_error (error);
  channel = qipc_channel_new_for_bus (bus, "deep/x", &error);
  g_assert_no_error (error);
  g_signal_connect (channel, "received", G_CALLBACK (count_received), received);
  g_assert_true (qipc_channel_flush_for_bus (bus, &error));

  hello = _qipc_frame_build (QIPC_FRAME_HELLO, 0, 1, g_variant_new ("(yys)", 1, 1, "hostile"));
  g_byte_array_append (frames, g_bytes_get_data (hello, NULL), g_bytes_get_size (hello));
  _qipc_frame_append_send (frames, QIPC_FRAME_SEND, 2, "deep/x", "deep", deep);
  bytes = g_byte_array_free_to_bytes (g_steal_pointer (&frames));
  qipc_local_socket_connect_to_server (hostile, name);
  g_assert_true (qipc_socket_write (QIPC_SOCKET (hostile), bytes, &error));
  g_assert_no_error (error);
  while (qipc_socket_get_state (QIPC_SOCKET (hostile)) != QIPC_SOCKET_STATE_UNCONNECTED)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_main_context_iteration (NULL, TRUE);
    }

  g_assert_true (qipc_channel_send_for_bus (bus, "deep/x", "after", NULL, &error));
  while (received->len == 0)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_main_context_iteration (NULL, TRUE);
    }
  g_assert_true (qipc_channel_flush_for_bus (bus, &error));
  g_assert_cmpuint (received->len, ==, 1);
  g_assert_cmpstr (received->pdata[0], ==, "after none");
}

/* Parses a SEND body made of @channel, "m" and no data through @cache. */
static gboolean
parse_with_cache (const char     *channel,
                  QipcValidName  *cache)
{
  g_autoptr(GByteArray) frame = g_byte_array_new ();
  g_autoptr(GError) error = NULL;
  QipcSendBody body;
  gboolean ok;

  /* The writer copies names as they are, valid or not. */
  _qipc_frame_append_send (frame, QIPC_FRAME_SEND, 1, channel, "m", NULL);
  ok = _qipc_frame_parse_send_body (frame->data + QIPC_FRAME_HEADER_SIZE,
                                    frame->len - QIPC_FRAME_HEADER_SIZE, cache, &body, &error);
  g_assert_true (ok == (error == NULL));
  return ok;
}

/* The last valid channel name is kept; nothing invalid gets in, and the
 * empty cache a parser starts with lets no empty name through. */
static void
test_send_body_name_cache (void)
{
  QipcValidName cache = { { 0 } };

  g_assert_false (parse_with_cache ("", &cache));
  g_assert_cmpstr (cache.name, ==, "");
  g_assert_true (parse_with_cache ("a/b", &cache));
  g_assert_cmpstr (cache.name, ==, "a/b");
  g_assert_true (parse_with_cache ("a/b", &cache));
  g_assert_false (parse_with_cache ("a//b", &cache));
  g_assert_false (parse_with_cache ("a/*", &cache));
  g_assert_cmpstr (cache.name, ==, "a/b");
  g_assert_true (parse_with_cache ("c", &cache));
  g_assert_cmpstr (cache.name, ==, "c");
  g_assert_false (parse_with_cache ("", &cache));
}

static void
test_pattern_match (void)
{
  struct { const char *pattern, *name; gboolean match; } cases[] = {
    { "a/b", "a/b", TRUE }, { "a/b", "a/c", FALSE }, { "a/*", "a/b", TRUE },
    { "a/*", "a/b/c", FALSE }, { "a/**", "a/b/c", TRUE }, { "a/**", "a", FALSE },
    { "*/b", "x/b", TRUE }, { "**", "x", TRUE }, { "a/*/c", "a/b/c", TRUE },
    { "a/*/c", "a/b/d", FALSE }, { "ab", "a", FALSE }, { "a", "ab", FALSE },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    g_assert_cmpint (_qipc_channel_pattern_match (cases[i].pattern, cases[i].name), ==,
                     cases[i].match);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/frame/send-body/matches-glib", test_send_body_matches_glib);
  g_test_add_func ("/frame/send-body/rejects", test_send_body_rejects);
  g_test_add_func ("/frame/send-body/name-cache", test_send_body_name_cache);
  g_test_add_func ("/frame/send-body/deep-type", test_send_body_deep_type);
  g_test_add_func ("/frame/deep-type-through-broker", test_deep_type_through_broker);
  g_test_add_func ("/frame/pattern-match", test_pattern_match);

  return g_test_run ();
}
