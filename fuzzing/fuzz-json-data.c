/* fuzz-json-data.c: any data a sender may hand the MQTT transport, as
 * JSON and back
 *
 * The input is a GVariant type string, a NUL byte, and serialized data of
 * that type. Data the bus would send (_qipc_data_check_depth()) must
 * either be refused by _qipc_json_encode_message() with a GError, or
 * read back (_qipc_json_decode_message()) as the same GVariant: JSON
 * must never change data silently. fuzz-json-messages goes the other
 * way, from JSON text.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <math.h>
#include <string.h>

#include "fuzz-common.h"
#include "qipc-json-private.h"

static JsonParser *parser;

int
LLVMFuzzerInitialize (int    *argc,
                      char ***argv)
{
  fuzz_setup_glib ();
  parser = json_parser_new_immutable ();
  return 0;
}

/* g_variant_equal(), except that every NaN is equal to every other: JSON
 * keeps that a double is NaN, not its sign and payload bits. */
static gboolean
same_value (GVariant *a,
            GVariant *b)
{
  gsize n;

  if (!g_variant_type_equal (g_variant_get_type (a), g_variant_get_type (b)))
    return FALSE;
  if (g_variant_is_of_type (a, G_VARIANT_TYPE_DOUBLE) &&
      isnan (g_variant_get_double (a)) && isnan (g_variant_get_double (b)))
    return TRUE;
  if (!g_variant_is_container (a))
    return g_variant_equal (a, b);
  n = g_variant_n_children (a);
  if (n != g_variant_n_children (b))
    return FALSE;
  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GVariant) child_a = g_variant_get_child_value (a, i);
      g_autoptr(GVariant) child_b = g_variant_get_child_value (b, i);

      if (!same_value (child_a, child_b))
        return FALSE;
    }
  return TRUE;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  const uint8_t *end = memchr (data, '\0', size);
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GVariant) raw = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GBytes) text = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *message = NULL;
  g_autoptr(GVariant) value_again = NULL;
  const char *type = (const char *) data;
  const char *payload;
  gsize length;

  /* GLib 2.74 aborts reading untrusted data of a type deeper than the
   * bus carries (this target found that): receivers refuse such types
   * before GVariant sees the bytes. */
  if (end == NULL || !g_variant_type_string_is_valid (type) ||
      !g_variant_type_is_definite (G_VARIANT_TYPE (type)) ||
      !_qipc_data_type_fits (type, strlen (type)))
    return 0;
  end++;
  bytes = g_bytes_new (end, size - (gsize) (end - data));
  raw = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE (type), bytes, FALSE));
  /* A sender's data is in normal form: GVariant builds it so. */
  value = g_variant_get_normal_form (raw);
  /* What the bus refuses never reaches the transport. */
  if (!_qipc_data_check_depth (value, type, NULL))
    return 0;

  text = _qipc_json_encode_message ("m", value, &error);
  if (text == NULL)
    {
      g_assert_nonnull (error);
      g_assert_true (g_utf8_validate (error->message, -1, NULL));
      return 0;
    }
  payload = g_bytes_get_data (text, &length);
  if (!_qipc_json_decode_message (parser, payload, length, &message, &value_again, &error))
    g_error ("%.*s does not read back: %s", (int) length, payload, error->message);
  g_assert_cmpstr (message, ==, "m");
  if (!same_value (value, value_again))
    {
      g_autofree char *before = g_variant_print (value, TRUE);
      g_autofree char *after = g_variant_print (value_again, TRUE);

      g_error ("%s came back as %s through %.*s", before, after, (int) length, payload);
    }
  return 0;
}
