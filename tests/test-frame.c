/* test-frame.c: the native protocol's frame codec
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "qipc-frame-private.h"
#include "qipc-bus.h"

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
  guint8 *body;
  gsize size;

  check_rejected ((const guint8 *) "", 0);
  check_rejected ((const guint8 *) "a", 1);
  /* ("a", "bc", Nothing) without the padding GLib writes before the
   * empty maybe: 8 bytes instead of 10. */
  check_rejected ((const guint8 *) "a\0bc\0\0\x05\x02", 8);
  /* "a\0b\0" with offsets 2, 4: valid; then break it in each way. */
  _qipc_frame_append_send (frame, QIPC_FRAME_SEND, 1, "a", "b", g_variant_new_int32 (1));
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
  g_test_add_func ("/frame/pattern-match", test_pattern_match);

  return g_test_run ();
}
