/* fuzz-common.c: what the frame fuzz targets share
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "fuzz-common.h"
#include "qipc-address-private.h"
#include "qipc-bus.h"

#include <string.h>

/* Plain names and patterns that the names taken from the input are
 * matched against, as a receiver matches them against its own. */
static const char * const sample_names[] = {
  "QPE/System", "QPE/Application/qpe", "org.example/app/events",
  "a", "a/b", "a/b/c", "é/ü",
};
static const char * const sample_patterns[] = {
  "QPE/*", "QPE/**", "*", "**", "*/app/*", "a/*/c", "org.example/app/events",
};

int
LLVMFuzzerInitialize (int    *argc,
                      char ***argv)
{
  /* A codec that trips a GLib precondition (a g_return_if_fail()) is as
   * wrong as one that crashes: make libFuzzer see it as a crash. */
  fuzz_setup_glib ();
  return 0;
}

void
fuzz_check_error (const GError *error)
{
  g_assert_nonnull (error);
  g_assert_true (error->domain == QIPC_BUS_ERROR);
  g_assert_true (g_utf8_validate (error->message, -1, NULL));
}

/* The naming rules of qipc-frame-private.h, written as plainly as
 * possible: UTF-8, 1 to 255 bytes, segments separated by single '/',
 * none empty; in a pattern a segment may be "*", and the last "**". */
static gboolean
reference_validate (const char *name,
                    gboolean    allow_pattern)
{
  gsize length = strlen (name);
  g_auto(GStrv) segments = NULL;

  if (length == 0 || length > QIPC_FRAME_MAX_NAME || !g_utf8_validate (name, length, NULL))
    return FALSE;
  segments = g_strsplit (name, "/", -1);
  for (gsize i = 0; segments[i] != NULL; i++)
    {
      const char *segment = segments[i];
      gboolean last = segments[i + 1] == NULL;

      if (*segment == '\0')
        return FALSE;
      if (strchr (segment, '*') != NULL &&
          !(allow_pattern && (g_str_equal (segment, "*") ||
                              (last && g_str_equal (segment, "**")))))
        return FALSE;
    }
  return TRUE;
}

/* The matching rules of DESIGN.md, written as plainly as possible:
 * "*" matches one segment, a trailing "**" one or more. */
static gboolean
reference_match (const char *pattern,
                 const char *name)
{
  g_auto(GStrv) p = g_strsplit (pattern, "/", -1);
  g_auto(GStrv) n = g_strsplit (name, "/", -1);
  gsize i;

  for (i = 0; p[i] != NULL; i++)
    {
      if (p[i + 1] == NULL && g_str_equal (p[i], "**"))
        return n[i] != NULL;
      if (n[i] == NULL || !(g_str_equal (p[i], "*") || g_str_equal (p[i], n[i])))
        return FALSE;
    }
  return n[i] == NULL;
}

gboolean
fuzz_match (const char *pattern,
            const char *name)
{
  gboolean matched = _qipc_channel_pattern_match (pattern, name);

  g_assert_cmpint (matched, ==, reference_match (pattern, name));
  return matched;
}

void
fuzz_match_name (const char *name)
{
  for (gsize i = 0; i < G_N_ELEMENTS (sample_patterns); i++)
    fuzz_match (sample_patterns[i], name);
}

void
fuzz_match_pattern (const char *pattern)
{
  for (gsize i = 0; i < G_N_ELEMENTS (sample_names); i++)
    fuzz_match (pattern, sample_names[i]);
}

/* Validates @name as a plain name, a pattern and a message name, as
 * the reference rules do; a valid one is matched against the samples. */
static void
check_name (const char *name)
{
  g_autoptr(GError) plain_error = NULL;
  g_autoptr(GError) pattern_error = NULL;
  g_autoptr(GError) message_error = NULL;
  gboolean plain = _qipc_channel_name_validate (name, FALSE, &plain_error);
  gboolean pattern = _qipc_channel_name_validate (name, TRUE, &pattern_error);
  gboolean message = _qipc_message_name_validate (name, &message_error);
  gsize length = strlen (name);

  g_assert_cmpint (plain, ==, reference_validate (name, FALSE));
  g_assert_cmpint (pattern, ==, reference_validate (name, TRUE));
  g_assert_cmpint (message, ==, length > 0 && length <= QIPC_FRAME_MAX_NAME &&
                                g_utf8_validate (name, length, NULL));
  if (!plain)
    fuzz_check_error (plain_error);
  if (!pattern)
    fuzz_check_error (pattern_error);
  if (!message)
    fuzz_check_error (message_error);

  if (plain)
    {
      /* A plain name is a valid pattern too, one that matches itself. */
      g_assert_true (pattern);
      g_assert_false (_qipc_channel_name_is_pattern (name));
      g_assert_true (fuzz_match (name, name));
      fuzz_match_name (name);
    }
  if (pattern)
    fuzz_match_pattern (name);
}

void
fuzz_names (const guint8 *data,
            gsize         size)
{
  const char *string = (const char *) data;
  g_autoptr(GError) error = NULL;
  QipcAddress address;

  if (memchr (data, '\0', size) == NULL)
    return;

  if (_qipc_address_parse (string, &address, &error))
    {
      g_autofree char *local_name = _qipc_address_local_name (&address);

      if (address.kind == QIPC_ADDRESS_TCP)
        g_assert_nonnull (address.host);
      else
        g_assert_true (strlen (local_name) <= 108);
    }
  else
    fuzz_check_error (error);
  _qipc_address_clear (&address);

  check_name (string);
}

typedef struct {
  FuzzReadFunc     read;
  FuzzReadSendFunc read_send;
  gpointer         state;
  guint            n_frames;
} FrameRun;

/* A body in normal form has one serialization: building the frame again
 * from the parsed value must give back the very same bytes. */
static void
check_rebuild (const QipcFrameHeader *header,
               const guint8          *frame,
               GVariant              *body)
{
  g_autoptr(GBytes) built = _qipc_frame_build (header->type, header->flags,
                                               header->serial, body);
  gsize size;
  const guint8 *data = g_bytes_get_data (built, &size);

  g_assert_cmpmem (data, size, frame, QIPC_FRAME_HEADER_SIZE + header->body_length);
}

void
fuzz_read_send_data (const QipcSendBody *body)
{
  g_autofree char *type = NULL;
  g_autoptr(GBytes) value = NULL;
  g_autoptr(GVariant) data = NULL;
  g_autofree char *text = NULL;

  if (!body->has_data)
    return;
  type = g_strndup (body->type_string, body->type_length);
  value = g_bytes_new (body->value, body->value_size);
  data = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE (type), value, FALSE));
  text = g_variant_print (data, TRUE);
}

/* Whatever _qipc_frame_parse_send_body() accepts, GVariant must read as
 * the same names and the same data type from the same bytes; except
 * that GVariant reads a variant whose value cannot be of its type as
 * (), where the fast path leaves the value to an untrusted read. */
static void
check_send_like_gvariant (const QipcSendBody *send,
                          GBytes             *bytes)
{
  g_autoptr(GVariant) loose = g_variant_ref_sink (
    g_variant_new_from_bytes (G_VARIANT_TYPE ("(ssmv)"), bytes, FALSE));
  g_autoptr(GVariant) maybe = g_variant_get_child_value (loose, 2);
  g_autoptr(GVariant) boxed = g_variant_get_maybe (maybe);
  const char *channel, *message;

  g_variant_get_child (loose, 0, "&s", &channel);
  g_variant_get_child (loose, 1, "&s", &message);
  g_assert_cmpstr (send->channel, ==, channel);
  g_assert_cmpstr (send->message, ==, message);
  g_assert_cmpint (send->has_data, ==, boxed != NULL);
  if (boxed != NULL)
    {
      g_autoptr(GVariant) value = g_variant_get_variant (boxed);
      const char *type = g_variant_get_type_string (value);

      if (!g_str_equal (type, "()"))
        g_assert_cmpmem (send->type_string, send->type_length, type, strlen (type));
    }
}

/* A body GVariant reads in normal form has the same data, and
 * _qipc_frame_append_send() must build the very same frame from it. */
static void
check_send_rebuild (const QipcFrameHeader *header,
                    const guint8          *frame,
                    const QipcSendBody    *send,
                    GVariant              *body)
{
  g_autoptr(GByteArray) built = g_byte_array_new ();
  g_autoptr(GVariant) maybe = g_variant_get_child_value (body, 2);
  g_autoptr(GVariant) boxed = g_variant_get_maybe (maybe);
  g_autoptr(GVariant) data = boxed != NULL ? g_variant_get_variant (boxed) : NULL;

  if (data != NULL)
    g_assert_cmpmem (send->value, send->value_size,
                     g_variant_get_data (data), g_variant_get_size (data));
  _qipc_frame_append_send (built, header->type, header->serial,
                           send->channel, send->message, data);
  g_assert_cmpmem (built->data, built->len, frame, QIPC_FRAME_HEADER_SIZE + header->body_length);
}

/* The broker and the client read a plain SEND or DELIVER body in place
 * (GVariant's reading of it, @body, may be NULL). What GVariant accepts
 * in normal form, this path must accept too. */
static void
parse_send (FrameRun              *run,
            const QipcFrameHeader *header,
            const guint8          *frame,
            GBytes                *bytes,
            GVariant              *body)
{
  g_autoptr(GError) error = NULL;
  QipcSendBody send;
  gsize size;
  const guint8 *data = g_bytes_get_data (bytes, &size);

  /* One cache for the whole run, as a broker has: the names it skips
   * must be those that validating would pass. */
  static QipcValidName last_valid;

  if (!_qipc_frame_parse_send_body (data, size, &last_valid, &send, &error))
    {
      fuzz_check_error (error);
      g_assert_null (body);
      return;
    }
  check_send_like_gvariant (&send, bytes);
  if (body != NULL)
    check_send_rebuild (header, frame, &send, body);
  run->read_send (header, &send, run->state);
}

static gboolean
is_plain_send (const QipcFrameHeader *header)
{
  return (header->type == QIPC_FRAME_SEND || header->type == QIPC_FRAME_DELIVER) &&
         !(header->flags & QIPC_FRAME_FLAG_MEMFD);
}

static gboolean
parse_frame (const QipcFrameHeader  *header,
             const guint8           *frame,
             gpointer                user_data,
             GError                **error)
{
  FrameRun *run = user_data;
  /* A copy of exactly the body, as the client makes (the broker points
   * into its read buffer): AddressSanitizer then sees any read past it. */
  g_autoptr(GBytes) bytes = g_bytes_new (frame + QIPC_FRAME_HEADER_SIZE,
                                         header->body_length);
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GVariant) body = NULL;

  /* Where a body does not parse, the broker or client drops the peer;
   * going on lets one input reach the frames after a broken one. */
  run->n_frames++;
  body = _qipc_frame_parse_body (header, bytes, &local_error);
  if (body == NULL)
    fuzz_check_error (local_error);
  else
    check_rebuild (header, frame, body);

  if (is_plain_send (header))
    parse_send (run, header, frame, bytes, body);
  else if (body != NULL)
    run->read (header, body, run->state);
  return TRUE;
}

static gboolean
count_frame (const QipcFrameHeader  *header,
             const guint8           *frame,
             gpointer                user_data,
             GError                **error)
{
  guint *n_frames = user_data;

  (*n_frames)++;
  return TRUE;
}

/* The broker and the client split whatever a read returned: a frame may
 * arrive in pieces, and what is left is split again once more bytes
 * came. That must give the same frames and the same verdict as one
 * read of everything. */
static void
check_split_in_pieces (const guint8       *data,
                       gsize               size,
                       QipcFrameDirection  direction,
                       guint               n_frames,
                       gsize               consumed,
                       gboolean            failed)
{
  g_autoptr(GByteArray) buffer = g_byte_array_new ();
  gsize piece = 1 + size % 29; /* varies with the input */
  gsize total = 0;
  guint n = 0;
  gboolean piece_failed = FALSE;

  for (gsize offset = 0; offset < size && !piece_failed; offset += piece)
    {
      g_autoptr(GError) error = NULL;
      gsize used;

      g_byte_array_append (buffer, data + offset, MIN (piece, size - offset));
      used = _qipc_frame_split (buffer->data, buffer->len, direction,
                                count_frame, &n, &error);
      g_assert_cmpuint (used, <=, buffer->len);
      piece_failed = error != NULL;
      total += used;
      g_byte_array_remove_range (buffer, 0, used);
    }
  g_assert_cmpuint (n, ==, n_frames);
  g_assert_cmpuint (total, ==, consumed);
  g_assert_cmpint (piece_failed, ==, failed);
}

void
fuzz_frames (const guint8        *data,
             gsize                size,
             QipcFrameDirection   direction,
             FuzzReadFunc         read,
             FuzzReadSendFunc     read_send,
             gpointer             state)
{
  FrameRun run = { read, read_send, state, 0 };
  g_autoptr(GError) error = NULL;
  gsize consumed;

  consumed = _qipc_frame_split (data, size, direction, parse_frame, &run, &error);
  g_assert_cmpuint (consumed, <=, size);
  if (error != NULL)
    fuzz_check_error (error);
  check_split_in_pieces (data, size, direction, run.n_frames, consumed, error != NULL);
}
