/* qipc-frame.c: the frame codec of the native channel protocol
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "qipc-frame-private.h"
#include "qipc-bus.h"
#include "qipc-json-private.h"
#include "qipc-local-socket.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define REQUIRED_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

static gboolean
frame_type_allowed (guint8             type,
                    QipcFrameDirection direction)
{
  switch ((QipcFrameType) type)
    {
    case QIPC_FRAME_HELLO:
    case QIPC_FRAME_SUBSCRIBE:
    case QIPC_FRAME_UNSUBSCRIBE:
    case QIPC_FRAME_SEND:
    case QIPC_FRAME_QUERY:
    case QIPC_FRAME_PING:
    case QIPC_FRAME_LIST:
    case QIPC_FRAME_MONITOR:
      return direction == QIPC_FRAME_FROM_CLIENT;
    case QIPC_FRAME_WELCOME:
    case QIPC_FRAME_ERROR:
    case QIPC_FRAME_DELIVER:
    case QIPC_FRAME_LOST:
    case QIPC_FRAME_REPLY:
    case QIPC_FRAME_PONG:
    case QIPC_FRAME_CHANNELS:
      return direction == QIPC_FRAME_FROM_BROKER;
    default:
      return FALSE;
    }
}

static gboolean
frame_type_takes_memfd (guint8 type)
{
  return type == QIPC_FRAME_SEND || type == QIPC_FRAME_DELIVER;
}

gboolean
_qipc_frame_header_parse (const guint8        *data,
                          QipcFrameDirection   direction,
                          QipcFrameHeader     *header,
                          GError             **error)
{
  guint16 reserved;

  if (data[0] != QIPC_FRAME_MAGIC_0 || data[1] != QIPC_FRAME_MAGIC_1)
    {
      g_set_error_literal (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_PROTOCOL,
                           "Frame does not start with the magic bytes \"QC\"");
      return FALSE;
    }
  if (data[2] != QIPC_PROTOCOL_VERSION)
    {
      g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_PROTOCOL,
                   "Frame has protocol version %u; only %u is known",
                   data[2], QIPC_PROTOCOL_VERSION);
      return FALSE;
    }
  if (!frame_type_allowed (data[3], direction))
    {
      g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_PROTOCOL,
                   "Frame type %u is not valid from the %s", data[3],
                   direction == QIPC_FRAME_FROM_CLIENT ? "client" : "broker");
      return FALSE;
    }

  /* Frames follow each other at any offset: no aligned loads. */
  header->type = data[3];
  memcpy (&header->flags, data + 4, 2);
  header->flags = GUINT16_FROM_LE (header->flags);
  memcpy (&reserved, data + 6, 2);
  reserved = GUINT16_FROM_LE (reserved);
  memcpy (&header->body_length, data + 8, 4);
  header->body_length = GUINT32_FROM_LE (header->body_length);
  memcpy (&header->serial, data + 12, 4);
  header->serial = GUINT32_FROM_LE (header->serial);

  if ((header->flags & ~QIPC_FRAME_KNOWN_FLAGS) != 0 || reserved != 0)
    {
      g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_PROTOCOL,
                   "Frame has unknown flags 0x%x or reserved bits 0x%x set",
                   header->flags, reserved);
      return FALSE;
    }
  if ((header->flags & QIPC_FRAME_FLAG_MEMFD) && !frame_type_takes_memfd (header->type))
    {
      g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_PROTOCOL,
                   "Frame type %u cannot carry a memfd", header->type);
      return FALSE;
    }
  if (header->body_length > QIPC_FRAME_MAX_BODY)
    {
      g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_LIMIT_EXCEEDED,
                   "Frame body of %u bytes exceeds the limit of %u bytes",
                   header->body_length, (guint) QIPC_FRAME_MAX_BODY);
      return FALSE;
    }
  return TRUE;
}

void
_qipc_frame_header_write (guint8        *data,
                          QipcFrameType  type,
                          guint16        flags,
                          guint32        body_length,
                          guint32        serial)
{
  guint16 le16;
  guint32 le32;

  data[0] = QIPC_FRAME_MAGIC_0;
  data[1] = QIPC_FRAME_MAGIC_1;
  data[2] = QIPC_PROTOCOL_VERSION;
  data[3] = type;
  le16 = GUINT16_TO_LE (flags);
  memcpy (data + 4, &le16, 2);
  memset (data + 6, 0, 2);
  le32 = GUINT32_TO_LE (body_length);
  memcpy (data + 8, &le32, 4);
  le32 = GUINT32_TO_LE (serial);
  memcpy (data + 12, &le32, 4);
}

GBytes *
_qipc_frame_build (QipcFrameType  type,
                   guint16        flags,
                   guint32        serial,
                   GVariant      *body)
{
  /* An empty body is the unit "()", whose normal form is one zero byte. */
  g_autoptr(GVariant) owned = g_variant_ref_sink (body != NULL ? body : g_variant_new ("()"));
  gsize body_size = g_variant_get_size (owned);
  guint8 *data;

  g_return_val_if_fail (body_size <= QIPC_FRAME_MAX_BODY, NULL);

  data = g_malloc (QIPC_FRAME_HEADER_SIZE + body_size);
  _qipc_frame_header_write (data, type, flags, body_size, serial);
  g_variant_store (owned, data + QIPC_FRAME_HEADER_SIZE);
  return g_bytes_new_take (data, QIPC_FRAME_HEADER_SIZE + body_size);
}

const GVariantType *
_qipc_frame_body_type (QipcFrameType type,
                       guint16       flags)
{
  switch (type)
    {
    case QIPC_FRAME_HELLO:       return G_VARIANT_TYPE ("(yys)");
    case QIPC_FRAME_WELCOME:     return G_VARIANT_TYPE ("(yts)");
    case QIPC_FRAME_ERROR:       return G_VARIANT_TYPE ("(us)");
    case QIPC_FRAME_SUBSCRIBE:   return G_VARIANT_TYPE ("(us)");
    case QIPC_FRAME_UNSUBSCRIBE: return G_VARIANT_TYPE ("(u)");
    case QIPC_FRAME_SEND:
    case QIPC_FRAME_DELIVER:
      return (flags & QIPC_FRAME_FLAG_MEMFD) ? G_VARIANT_TYPE ("(sst)")
                                             : G_VARIANT_TYPE ("(ssmv)");
    case QIPC_FRAME_LOST:        return G_VARIANT_TYPE ("(t)");
    case QIPC_FRAME_QUERY:       return G_VARIANT_TYPE ("(s)");
    case QIPC_FRAME_REPLY:       return G_VARIANT_TYPE ("(b)");
    case QIPC_FRAME_PING:
    case QIPC_FRAME_PONG:
    case QIPC_FRAME_LIST:
    case QIPC_FRAME_MONITOR:     return G_VARIANT_TYPE_UNIT;
    case QIPC_FRAME_CHANNELS:    return G_VARIANT_TYPE ("a(su)");
    default:                     return NULL;
    }
}

static gboolean
check_string_child (GVariant    *body,
                    gsize        index,
                    gsize        max_length,
                    const char  *what,
                    GError     **error)
{
  g_autoptr(GVariant) child = g_variant_get_child_value (body, index);
  gsize length;

  g_variant_get_string (child, &length);
  if (length > max_length)
    {
      g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_LIMIT_EXCEEDED,
                   "The %s is %" G_GSIZE_FORMAT " bytes long; the limit is %"
                   G_GSIZE_FORMAT, what, length, max_length);
      return FALSE;
    }
  return TRUE;
}

/* The names inside a parsed body, checked before anyone acts on them. */
static gboolean
check_body_names (const QipcFrameHeader  *header,
                  GVariant               *body,
                  GError                **error)
{
  switch (header->type)
    {
    case QIPC_FRAME_HELLO:
      return check_string_child (body, 2, QIPC_FRAME_MAX_PEER_NAME, "client name", error);
    case QIPC_FRAME_WELCOME:
      return check_string_child (body, 2, QIPC_FRAME_MAX_PEER_NAME, "broker name", error);
    case QIPC_FRAME_SUBSCRIBE:
      {
        const char *pattern;
        g_variant_get_child (body, 1, "&s", &pattern);
        return _qipc_channel_name_validate (pattern, TRUE, error);
      }
    case QIPC_FRAME_SEND:
    case QIPC_FRAME_DELIVER:
      {
        const char *channel, *message;
        g_variant_get_child (body, 0, "&s", &channel);
        g_variant_get_child (body, 1, "&s", &message);
        return _qipc_channel_name_validate (channel, FALSE, error) &&
               _qipc_message_name_validate (message, error);
      }
    case QIPC_FRAME_QUERY:
      {
        const char *channel;
        g_variant_get_child (body, 0, "&s", &channel);
        return _qipc_channel_name_validate (channel, FALSE, error);
      }
    default:
      return TRUE;
    }
}

GVariant *
_qipc_frame_parse_body (const QipcFrameHeader  *header,
                        GBytes                 *body,
                        GError                **error)
{
  const GVariantType *type = _qipc_frame_body_type (header->type, header->flags);
  g_autoptr(GVariant) value = NULL;

  g_return_val_if_fail (type != NULL, NULL);

  value = g_variant_ref_sink (g_variant_new_from_bytes (type, body, FALSE));
  if (!g_variant_is_normal_form (value))
    {
      g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_PROTOCOL,
                   "Body of frame type %u is not a %s in normal form",
                   header->type, g_variant_type_peek_string (type));
      return NULL;
    }
  if (!check_body_names (header, value, error))
    return NULL;
  return g_steal_pointer (&value);
}

static gboolean
name_error (GError     **error,
            const char  *what,
            const char  *name,
            const char  *reason)
{
  /* The message may travel to a peer as an ERROR frame's string: cut a
   * long name after 64 characters, not bytes, to keep it UTF-8. (Not
   * g_utf8_substring(), which reads past the end of a shorter name.) */
  char shown[64 * 4 + 1] = "(not UTF-8)";

  if (g_utf8_validate (name, -1, NULL))
    g_utf8_strncpy (shown, name, 64);
  g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_INVALID_NAME,
               "Invalid %s \"%s\": %s", what, shown, reason);
  return FALSE;
}

/* One pass over a name that is all ASCII: TRUE when it is valid. Every
 * message's names are checked by the sender, the broker and each
 * receiver, so this is on the path of every message. Anything else (a
 * wrong name, or UTF-8 beyond ASCII) takes the full check below, which
 * also words the error. */
static gboolean
ascii_channel_name_is_valid (const char *name,
                             gboolean    allow_pattern)
{
  gsize i, segment_start = 0, stars = 0;

  for (i = 0; i <= QIPC_FRAME_MAX_NAME; i++)
    {
      guchar c = (guchar) name[i];

      if (c == '/' || c == '\0')
        {
          gsize segment_length = i - segment_start;

          if (segment_length == 0)
            return FALSE;
          if (stars > 0 &&
              !(allow_pattern && stars == segment_length &&
                (stars == 1 || (stars == 2 && c == '\0'))))
            return FALSE;
          if (c == '\0')
            return TRUE;
          segment_start = i + 1;
          stars = 0;
        }
      else if (c == '*')
        stars++;
      else if (c >= 0x80)
        return FALSE;
    }
  return FALSE;
}

static gboolean
ascii_message_name_is_valid (const char *message)
{
  for (gsize i = 0; i <= QIPC_FRAME_MAX_NAME; i++)
    {
      guchar c = (guchar) message[i];

      if (c == '\0')
        return i > 0;
      if (c >= 0x80)
        return FALSE;
    }
  return FALSE;
}

gboolean
_qipc_channel_name_validate (const char  *name,
                             gboolean     allow_pattern,
                             GError     **error)
{
  const char *what = allow_pattern ? "channel pattern" : "channel name";
  gsize length;
  const char *segment;

  if (name != NULL && ascii_channel_name_is_valid (name, allow_pattern))
    return TRUE;
  if (name == NULL || *name == '\0')
    return name_error (error, what, "", "it is empty");
  length = strlen (name);
  if (length > QIPC_FRAME_MAX_NAME)
    return name_error (error, what, name, "it is longer than 255 bytes");
  if (!g_utf8_validate (name, length, NULL))
    return name_error (error, what, name, "it is not UTF-8");

  segment = name;
  while (TRUE)
    {
      const char *end = strchr (segment, '/');
      gsize seg_length = end != NULL ? (gsize) (end - segment) : strlen (segment);

      if (seg_length == 0)
        return name_error (error, what, name, "it has an empty segment");
      if (memchr (segment, '*', seg_length) != NULL)
        {
          gboolean is_star = seg_length == 1;
          gboolean is_star_star = seg_length == 2 && segment[0] == '*' && segment[1] == '*';

          if (!allow_pattern)
            return name_error (error, what, name, "'*' is only allowed in patterns");
          if (!is_star && !(is_star_star && end == NULL))
            return name_error (error, what, name,
                               "'*' must be a whole segment, and '**' the last one");
        }
      if (end == NULL)
        break;
      segment = end + 1;
    }
  return TRUE;
}

gboolean
_qipc_message_name_validate (const char  *message,
                             GError     **error)
{
  gsize length;

  if (message != NULL && ascii_message_name_is_valid (message))
    return TRUE;
  if (message == NULL || *message == '\0')
    return name_error (error, "message name", "", "it is empty");
  length = strlen (message);
  if (length > QIPC_FRAME_MAX_NAME)
    return name_error (error, "message name", message, "it is longer than 255 bytes");
  if (!g_utf8_validate (message, length, NULL))
    return name_error (error, "message name", message, "it is not UTF-8");
  return TRUE;
}

gboolean
_qipc_channel_name_is_pattern (const char *name)
{
  return strchr (name, '*') != NULL;
}

gboolean
_qipc_channel_pattern_match (const char *pattern,
                             const char *name)
{
  while (TRUE)
    {
      const char *p_end = strchr (pattern, '/');
      const char *n_end = strchr (name, '/');
      gsize p_length = p_end ? (gsize) (p_end - pattern) : strlen (pattern);
      gsize n_length = n_end ? (gsize) (n_end - name) : strlen (name);

      if (p_length == 2 && pattern[0] == '*' && pattern[1] == '*')
        return TRUE; /* the last segment, matching one or more */
      if (!(p_length == 1 && pattern[0] == '*') &&
          (p_length != n_length || memcmp (pattern, name, p_length) != 0))
        return FALSE;
      if (p_end == NULL || n_end == NULL)
        return p_end == NULL && n_end == NULL;
      pattern = p_end + 1;
      name = n_end + 1;
    }
}

gpointer
_qipc_last_lookup (QipcLastLookup *last,
                   GHashTable     *table,
                   const char     *name)
{
  if (strcmp (last->name, name) != 0)
    {
      /* A longer name is cut here, and then simply never matches. */
      g_strlcpy (last->name, name, sizeof last->name);
      last->value = g_hash_table_lookup (table, name);
    }
  return last->value;
}

void
_qipc_last_lookup_forget (QipcLastLookup *last)
{
  last->name[0] = '\0';
  last->value = NULL;
}

int
_qipc_payload_memfd_new (GVariant  *data,
                         GError   **error)
{
  gsize size = g_variant_get_size (data);
  int fd;
  gpointer map;

  fd = memfd_create ("qipc-payload", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0 || ftruncate (fd, size) < 0)
    {
      int saved_errno = errno;
      if (fd >= 0)
        close (fd);
      g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_FAILED,
                   "Cannot create a memfd of %" G_GSIZE_FORMAT " bytes for the payload: %s",
                   size, g_strerror (saved_errno));
      return -1;
    }
  if (size > 0)
    {
      map = mmap (NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      if (map == MAP_FAILED)
        {
          int saved_errno = errno;
          close (fd);
          g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_FAILED,
                       "Cannot map the payload memfd: %s", g_strerror (saved_errno));
          return -1;
        }
      g_variant_store (data, map);
      munmap (map, size);
    }
  if (fcntl (fd, F_ADD_SEALS, REQUIRED_SEALS) < 0)
    {
      int saved_errno = errno;
      close (fd);
      g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_FAILED,
                   "Cannot seal the payload memfd: %s", g_strerror (saved_errno));
      return -1;
    }
  return fd;
}

gboolean
_qipc_payload_memfd_check (int       fd,
                           guint64   size,
                           GError  **error)
{
  int seals = fcntl (fd, F_GET_SEALS);
  struct stat st;

  if (seals < 0 || (seals & REQUIRED_SEALS) != REQUIRED_SEALS)
    {
      g_set_error_literal (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_PROTOCOL,
                           "The payload fd is not a memfd sealed against writing and resizing");
      return FALSE;
    }
  if (size > QIPC_FRAME_MAX_MEMFD_DATA)
    {
      g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_LIMIT_EXCEEDED,
                   "Payload of %" G_GUINT64_FORMAT " bytes exceeds the limit of %"
                   G_GUINT64_FORMAT " bytes", size, QIPC_FRAME_MAX_MEMFD_DATA);
      return FALSE;
    }
  if (fstat (fd, &st) < 0 || (guint64) st.st_size < size)
    {
      g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_PROTOCOL,
                   "The payload memfd is smaller than the %" G_GUINT64_FORMAT
                   " bytes its frame announces", size);
      return FALSE;
    }
  return TRUE;
}

typedef struct {
  gpointer map;
  gsize    size;
} Mapping;

static void
mapping_free (gpointer data)
{
  Mapping *mapping = data;

  munmap (mapping->map, mapping->size);
  g_free (mapping);
}

GVariant *
_qipc_payload_memfd_map (int       fd,
                         guint64   size,
                         GError  **error)
{
  Mapping *mapping;
  g_autoptr(GBytes) bytes = NULL;

  if (!_qipc_payload_memfd_check (fd, size, error))
    return NULL;
  if (size == 0)
    return g_variant_ref_sink (g_variant_new_maybe (G_VARIANT_TYPE_VARIANT, NULL));

  mapping = g_new (Mapping, 1);
  mapping->size = size;
  mapping->map = mmap (NULL, size, PROT_READ, MAP_SHARED, fd, 0);
  if (mapping->map == MAP_FAILED)
    {
      int saved_errno = errno;
      g_free (mapping);
      g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_FAILED,
                   "Cannot map the payload memfd: %s", g_strerror (saved_errno));
      return NULL;
    }
  bytes = g_bytes_new_with_free_func (mapping->map, size, mapping_free, mapping);
  return g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE ("mv"), bytes, FALSE));
}

gsize
_qipc_frame_split (const guint8        *data,
                   gsize                size,
                   QipcFrameDirection   direction,
                   QipcFrameFunc        func,
                   gpointer             user_data,
                   GError             **error)
{
  gsize offset = 0;

  while (size - offset >= QIPC_FRAME_HEADER_SIZE)
    {
      QipcFrameHeader header;
      const guint8 *frame = data + offset;
      gboolean go_on;

      if (!_qipc_frame_header_parse (frame, direction, &header, error))
        break;
      if (size - offset - QIPC_FRAME_HEADER_SIZE < header.body_length)
        break;
      offset += QIPC_FRAME_HEADER_SIZE + header.body_length;
      go_on = func (&header, frame, user_data, error);
      if (!go_on)
        break;
    }
  return offset;
}

/* ------------------------------------------------------------------ */
/* The SEND/DELIVER body "(ssmv)", by hand                             */
/*
 * Every message goes through this codec three times (sender, broker,
 * receiver), so it does not build GVariant containers: it writes and
 * reads GVariant's serialization of "(ssmv)" directly. The layout is
 * the channel and message strings (NUL-terminated), zero padding to a
 * multiple of 8, then the maybe: empty for Nothing, or the variant's
 * value, a zero byte, its type string and the maybe's zero byte; last,
 * the end offsets of the two strings, in reverse order, each 1, 2, 4 or
 * 8 bytes wide, the smallest width that can address the whole body.
 * tests/test-frame.c checks it against g_variant_store().
 */

static gsize
offset_size_for (gsize content_size)
{
  if (content_size + 2 <= G_MAXUINT8)
    return 1;
  if (content_size + 4 <= G_MAXUINT16)
    return 2;
  if (content_size + 8 <= G_MAXUINT32)
    return 4;
  return 8;
}

static void
write_offset (guint8 *out,
              gsize   value,
              gsize   width)
{
  guint64 le = GUINT64_TO_LE (value);

  memcpy (out, &le, width);
}

static gsize
read_offset (const guint8 *in,
             gsize         width)
{
  guint64 le = 0;

  memcpy (&le, in, width);
  return GUINT64_FROM_LE (le);
}

void
_qipc_frame_append_send (GByteArray    *out,
                         QipcFrameType  type,
                         guint32        serial,
                         const char    *channel,
                         const char    *message,
                         GVariant      *data)
{
  gsize channel_end = strlen (channel) + 1;
  gsize message_end = channel_end + strlen (message) + 1;
  gsize maybe_start = (message_end + 7) & ~(gsize) 7;
  gsize value_size = data != NULL ? g_variant_get_size (data) : 0;
  const char *type_string = data != NULL ? g_variant_get_type_string (data) : "";
  gsize type_length = strlen (type_string);
  gsize maybe_size = data != NULL ? value_size + 1 + type_length + 1 : 0;
  gsize content = maybe_start + maybe_size;
  gsize width = offset_size_for (content);
  gsize body_size = content + 2 * width;
  guint origin = out->len;
  guint8 *p;

  g_byte_array_set_size (out, origin + QIPC_FRAME_HEADER_SIZE + body_size);
  p = out->data + origin;
  _qipc_frame_header_write (p, type, 0, body_size, serial);
  p += QIPC_FRAME_HEADER_SIZE;

  memcpy (p, channel, channel_end);
  memcpy (p + channel_end, message, message_end - channel_end);
  memset (p + message_end, 0, maybe_start - message_end);
  if (data != NULL)
    {
      guint8 *v = p + maybe_start;

      g_variant_store (data, v);
      v[value_size] = 0;
      memcpy (v + value_size + 1, type_string, type_length);
      v[value_size + 1 + type_length] = 0;
    }
  write_offset (p + content, message_end, width);
  write_offset (p + content + width, channel_end, width);
}

/* The depth of the complete type @type as GVariant counts it: 1 for a
 * basic type or "v", 1 more for each array, maybe, tuple or dict entry
 * around it. Past QIPC_DATA_MAX_DEPTH it returns QIPC_DATA_MAX_DEPTH + 1.
 * No recursion: GLib builds values of any depth in memory. */
static gsize
type_depth (const GVariantType *type)
{
  const char *p = g_variant_type_peek_string (type);
  const char *end = p + g_variant_type_get_string_length (type);
  /* The depth of the brackets open around p, each with its prefixes. */
  gsize open[QIPC_DATA_MAX_DEPTH + 1];
  gsize n_open = 0, base = 0, prefixes = 0, deepest = 0;

  for (; p < end; p++)
    {
      switch (*p)
        {
        case 'a': case 'm':
          prefixes++;
          continue;
        case '(': case '{':
          if (base + prefixes + 1 > QIPC_DATA_MAX_DEPTH)
            return QIPC_DATA_MAX_DEPTH + 1;
          open[n_open++] = base;
          base += prefixes + 1;
          deepest = MAX (deepest, base);
          break;
        case ')': case '}':
          base = open[--n_open];
          break;
        default:
          deepest = MAX (deepest, base + prefixes + 1);
          break;
        }
      prefixes = 0;
      if (deepest > QIPC_DATA_MAX_DEPTH)
        return QIPC_DATA_MAX_DEPTH + 1;
    }
  return deepest;
}

/* Whether every variant in @value, which sits @depth levels below the
 * top (0 for the top), holds a value that fits GLib's depth limit there:
 * GLib reads a variant at depth D holding a type of depth T only while
 * D + T < QIPC_DATA_MAX_DEPTH. Only parts whose type has a "v" are
 * visited; the recursion stops at the limit. */
static gboolean
variants_fit (GVariant *value,
              gsize     depth)
{
  if (strchr (g_variant_get_type_string (value), 'v') == NULL)
    return TRUE;
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_VARIANT))
    {
      g_autoptr(GVariant) child = g_variant_get_variant (value);

      return depth + type_depth (g_variant_get_type (child)) < QIPC_DATA_MAX_DEPTH &&
             variants_fit (child, depth + 1);
    }
  for (gsize i = 0, n = g_variant_n_children (value); i < n; i++)
    {
      g_autoptr(GVariant) child = g_variant_get_child_value (value, i);

      if (!variants_fit (child, depth + 1))
        return FALSE;
    }
  return TRUE;
}

G_STATIC_ASSERT (QIPC_JSON_MAX_DEPTH == QIPC_DATA_MAX_DEPTH);

gboolean
_qipc_data_type_fits (const char *type_string,
                      gsize       length)
{
  /* A type string is at least as long as its depth. */
  return length <= QIPC_DATA_MAX_DEPTH ||
         type_depth ((const GVariantType *) type_string) <= QIPC_DATA_MAX_DEPTH;
}

/* Whether @data, sitting @depth levels below the top of what GLib reads,
 * is read whole: its type and every variant in it fit GLib's limit. */
static gboolean
fits_at (GVariant *data,
         gsize     depth)
{
  return depth + type_depth (g_variant_get_type (data)) <= QIPC_DATA_MAX_DEPTH &&
         variants_fit (data, depth);
}

gboolean
_qipc_data_check_depth (GVariant    *data,
                        const char  *type_string,
                        GError     **error)
{
  const char *p = type_string;

  /* Most data: a type without "v" is as deep as its type string, and a
   * type string is at least as long as its depth. Types are short: a
   * loop costs less here than strcspn()'s setup. */
  while (*p != '\0' && *p != 'v')
    p++;
  if (*p == '\0' && (gsize) (p - type_string) <= QIPC_DATA_MAX_DEPTH)
    return TRUE;
  if (fits_at (data, 0))
    return TRUE;
  g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_LIMIT_EXCEEDED,
               "The data nests deeper than GVariant carries (%d levels)", QIPC_DATA_MAX_DEPTH);
  return FALSE;
}

gboolean
_qipc_data_check_memfd_depth (GVariant  *data,
                              GError   **error)
{
  /* The payload is "mv": the data sits two levels down, where GLib reads
   * it only if it nests two levels less (else as "()"). */
  if (fits_at (data, 2))
    return TRUE;
  g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_LIMIT_EXCEEDED,
               "Data of %d KiB or more nests at most %d levels (GVariant's %d, less the two "
               "around it in its memfd)", QIPC_FRAME_MEMFD_THRESHOLD / 1024,
               QIPC_DATA_MAX_DEPTH - 2, QIPC_DATA_MAX_DEPTH);
  return FALSE;
}

gboolean
_qipc_channel_name_validate_cached (const char     *channel,
                                    QipcValidName  *last_valid,
                                    GError        **error)
{
  /* Empty, as it starts, it matches nothing: "" is no valid name. */
  if (last_valid != NULL && last_valid->name[0] != '\0' && strcmp (last_valid->name, channel) == 0)
    return TRUE;
  if (!_qipc_channel_name_validate (channel, FALSE, error))
    return FALSE;
  /* A valid name fits. */
  if (last_valid != NULL)
    g_strlcpy (last_valid->name, channel, sizeof last_valid->name);
  return TRUE;
}

static gboolean
send_body_error (GError     **error,
                 const char  *reason)
{
  g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_PROTOCOL,
               "Malformed message frame: %s", reason);
  return FALSE;
}

/* A string of the tuple: from @start to @end, NUL-terminated, with no
 * NUL before (GVariant's normal form). */
static gboolean
check_string (const guint8 *body,
              gsize         start,
              gsize         end)
{
  return end > start && body[end - 1] == '\0' &&
         memchr (body + start, '\0', end - start - 1) == NULL;
}

/* Whether the valid type string @type is that of a value: '*', '?' and
 * 'r' make a type indefinite, and only there. The receiver builds the
 * data with g_variant_new_from_bytes(), which aborts on such a type
 * (GVariant's own reading of "(ssmv)" takes the data as () instead). */
static gboolean
type_is_definite (const char *type,
                  gsize       length)
{
  for (gsize i = 0; i < length; i++)
    if (type[i] == '*' || type[i] == '?' || type[i] == 'r')
      return FALSE;
  return TRUE;
}

/* Whether @type is a basic type or an array of one ("s", "ay", "aas"):
 * most data is, and such a type is complete and definite at a glance. */
static gboolean
type_is_simple (const char *type,
                gsize       length)
{
  static const char basic[] = "bynqiuxtdhsogv";
  gsize i = 0;

  while (i < length && type[i] == 'a')
    i++;
  return i + 1 == length && memchr (basic, type[i], sizeof basic - 1) != NULL;
}

gboolean
_qipc_frame_parse_send_body (const guint8   *body,
                             gsize           size,
                             QipcValidName  *last_valid,
                             QipcSendBody   *out,
                             GError        **error)
{
  gsize width, content, channel_end, message_end, maybe_start;
  const guint8 *v, *zero;
  gsize maybe_size;

  memset (out, 0, sizeof *out);
  if (size == 0)
    return send_body_error (error, "empty body");
  /* As GLib reads it: the width follows from the total size. */
  width = size <= G_MAXUINT8 ? 1 : size <= G_MAXUINT16 ? 2 : size <= G_MAXUINT32 ? 4 : 8;
  if (size < 2 * width)
    return send_body_error (error, "too short");
  content = size - 2 * width;
  channel_end = read_offset (body + size - width, width);
  message_end = read_offset (body + content, width);
  if (channel_end > message_end || message_end > content)
    return send_body_error (error, "string offsets out of range");
  if (!check_string (body, 0, channel_end) || !check_string (body, channel_end, message_end))
    return send_body_error (error, "a name is not a NUL-terminated string");

  maybe_start = (message_end + 7) & ~(gsize) 7;
  /* GLib pads to the maybe's alignment even when it is empty. */
  if (maybe_start > content)
    return send_body_error (error, "missing padding");
  for (gsize i = message_end; i < maybe_start; i++)
    if (body[i] != 0)
      return send_body_error (error, "non-zero padding");

  out->channel = (const char *) body;
  out->message = (const char *) body + channel_end;
  if (!_qipc_channel_name_validate_cached (out->channel, last_valid, error) ||
      !_qipc_message_name_validate (out->message, error))
    return FALSE;

  maybe_size = content > maybe_start ? content - maybe_start : 0;
  if (maybe_size == 0)
    return TRUE;
  v = body + maybe_start;
  if (v[maybe_size - 1] != 0)
    return send_body_error (error, "the data is not a maybe");
  /* The variant: value, a zero byte, the type string. */
  zero = memrchr (v, '\0', maybe_size - 1);
  if (zero == NULL)
    return send_body_error (error, "the data has no type");
  out->value = v;
  out->value_size = zero - v;
  out->type_string = (const char *) zero + 1;
  out->type_length = maybe_size - 1 - (out->value_size + 1);
  if (!type_is_simple (out->type_string, out->type_length))
    {
      const char *end = NULL;

      if (out->type_length == 0 ||
          !g_variant_type_string_scan (out->type_string, out->type_string + out->type_length, &end) ||
          end != out->type_string + out->type_length)
        return send_body_error (error, "the data's type is not one complete type");
      if (!type_is_definite (out->type_string, out->type_length))
        return send_body_error (error, "the data's type is not definite");
    }
  /* Senders refuse such data (_qipc_data_check_depth()); received, it
   * would abort GLib in whoever reads it. */
  if (!_qipc_data_type_fits (out->type_string, out->type_length))
    return send_body_error (error, "the data's type nests deeper than GVariant reads");
  out->has_data = TRUE;
  return TRUE;
}

gboolean
_qipc_payload_fds_take (QipcSocket  *socket,
                        GQueue      *queue,
                        GError     **error)
{
  g_autoptr(GUnixFDList) list = NULL;
  g_autofree int *fds = NULL;
  int n_fds;

  if (!QIPC_IS_LOCAL_SOCKET (socket))
    return TRUE;
  list = qipc_local_socket_take_fds (QIPC_LOCAL_SOCKET (socket));
  if (list == NULL)
    return TRUE;
  fds = g_unix_fd_list_steal_fds (list, &n_fds);
  for (int i = 0; i < n_fds; i++)
    g_queue_push_tail (queue, GINT_TO_POINTER (fds[i]));
  if (g_queue_get_length (queue) > QIPC_FRAME_MAX_PENDING_FDS)
    {
      g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_PROTOCOL,
                   "More than %d file descriptors sent ahead of their frames",
                   QIPC_FRAME_MAX_PENDING_FDS);
      return FALSE;
    }
  return TRUE;
}

void
_qipc_payload_fds_clear (GQueue *queue)
{
  while (!g_queue_is_empty (queue))
    close (GPOINTER_TO_INT (g_queue_pop_head (queue)));
}
