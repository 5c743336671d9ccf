/* fuzz-json-messages.c: MQTT payloads from anyone, read as the transport
 * reads them
 *
 * The input is the payload of an MQTT message in qipc's JSON format,
 * which any MQTT client may publish: _qipc_json_decode_message() must
 * refuse what is not a message with a GError, and what it accepts must
 * write back (_qipc_json_encode_message()) to a payload that reads back
 * as the same message name and the same GVariant.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "fuzz-common.h"
#include "qipc-json-private.h"

static JsonParser *parser;

int
LLVMFuzzerInitialize (int    *argc,
                      char ***argv)
{
  /* Any warning or critical from GLib or json-glib is a finding. */
  fuzz_setup_glib ();
  parser = json_parser_new_immutable ();
  return 0;
}

static void
check_round_trip (const char *message,
                  GVariant   *data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) text = _qipc_json_encode_message (message, data, &error);
  g_autofree char *message_again = NULL;
  g_autoptr(GVariant) data_again = NULL;
  gsize length;
  const char *payload;

  /* What was read from JSON always writes back. */
  g_assert_no_error (error);
  payload = g_bytes_get_data (text, &length);
  if (!_qipc_json_decode_message (parser, payload, length, &message_again, &data_again, &error))
    g_error ("%.*s does not read back: %s", (int) length, payload, error->message);
  g_assert_cmpstr (message_again, ==, message);
  g_assert_true ((data == NULL) == (data_again == NULL));
  if (data != NULL && !g_variant_equal (data, data_again))
    {
      g_autofree char *before = g_variant_print (data, TRUE);
      g_autofree char *after = g_variant_print (data_again, TRUE);

      g_error ("%s came back as %s", before, after);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *message = NULL;
  g_autoptr(GVariant) value = NULL;

  if (!_qipc_json_decode_message (parser, data, size, &message, &value, &error))
    {
      g_assert_nonnull (error);
      g_assert_true (g_utf8_validate (error->message, -1, NULL));
      return 0;
    }
  g_assert_no_error (error);
  g_assert_nonnull (message);
  check_round_trip (message, value);
  return 0;
}
