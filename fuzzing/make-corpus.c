/* make-corpus.c: writes the seed corpus of the frame fuzz targets
 *
 * Usage: make-corpus DIR
 * writes DIR/broker-frames/ and DIR/client-frames/: one valid frame of
 * every type and flag each peer sends, a few streams of several frames,
 * and a few address and name strings. Every frame is built with the
 * codec itself and must parse back, so the seeds follow the protocol
 * as the codec has it. DIR/json-messages/ gets MQTT payloads in qipc's
 * JSON format, written by the JSON codec, one for each kind of data;
 * DIR/json-data/ the same data serialized (type string, NUL, data), and
 * data JSON cannot hold.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "qipc-frame-private.h"
#include "qipc-json-private.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char    *name;
  QipcFrameType  type;
  guint16        flags;
  /* GVariant text of the frame type's body type, where @LONG@ stands
   * for a name of the longest length allowed; NULL for the unit body
   * (), which is how senders build it */
  const char    *body;
} Frame;

typedef struct {
  const char *name;
  const char *frames[8];
} Stream;

/* Names and payloads as applications use them, a few with non-ASCII
 * names and long ones, so that mutations start from real shapes. */
static const Frame client_frames[] = {
  { "hello", QIPC_FRAME_HELLO, 0, "(byte 1, byte 1, 'qipc-demo')" },
  { "hello-long-name", QIPC_FRAME_HELLO, 0, "(byte 1, byte 1, '@LONG@')" },
  { "subscribe", QIPC_FRAME_SUBSCRIBE, 0, "(uint32 1, 'QPE/*')" },
  { "subscribe-rest", QIPC_FRAME_SUBSCRIBE, 0, "(uint32 2, 'org.example/*/events/**')" },
  { "unsubscribe", QIPC_FRAME_UNSUBSCRIBE, 0, "(uint32 1,)" },
  { "send", QIPC_FRAME_SEND, 0, "('QPE/System', 'setBacklight(int)', just <100>)" },
  { "send-nothing", QIPC_FRAME_SEND, 0, "('QPE/System', 'shutdown()', @mv nothing)" },
  { "send-dict", QIPC_FRAME_SEND, 0,
    "('org.example/app/events', 'changed', just <{'name': <'Ada'>, 'id': <uint64 7>, "
    "'tags': <['a', 'b']>, 'ok': <true>}>)" },
  { "send-nested", QIPC_FRAME_SEND, 0,
    "('org.example/app/events', 'nested', just <(byte 0x7f, int16 -2, 2.5, "
    "[@ay [0x01, 0x02], b'\\x03'], @ms nothing, <<int64 -9>>, {uint32 1: 'x'})>)" },
  { "send-unicode", QIPC_FRAME_SEND, 0,
    "('org.example/événements/ünïcödé/a-long-segment-of-unicode-text-ééééééééé', "
    "'größe', just <'Grüße'>)" },
  { "send-long-names", QIPC_FRAME_SEND, 0, "('@LONG@', '@LONG@', just <'x'>)" },
  { "send-memfd", QIPC_FRAME_SEND, QIPC_FRAME_FLAG_MEMFD,
    "('QPE/System', 'bigPayload', uint64 1048576)" },
  { "query", QIPC_FRAME_QUERY, 0, "('QPE/System',)" },
  { "ping", QIPC_FRAME_PING, 0, NULL },
  { "list", QIPC_FRAME_LIST, 0, NULL },
  { "monitor", QIPC_FRAME_MONITOR, 0, NULL },
};

static const Stream client_streams[] = {
  { "stream-session", { "hello", "subscribe", "send", "query", "ping", "unsubscribe" } },
  { "stream-sends", { "send-unicode", "send-memfd", "send-nothing", "send-dict", "send-nested" } },
  { "stream-subscribe-send", { "subscribe-rest", "subscribe", "send-dict", "list", "monitor" } },
};

static const Frame broker_frames[] = {
  { "welcome", QIPC_FRAME_WELCOME, 0, "(byte 1, uint64 42, 'qipc-broker')" },
  { "welcome-long-name", QIPC_FRAME_WELCOME, 0, "(byte 1, uint64 42, '@LONG@')" },
  { "error", QIPC_FRAME_ERROR, 0, "(uint32 6, 'Not allowed to send on QPE/System')" },
  { "deliver", QIPC_FRAME_DELIVER, 0, "('QPE/System', 'setBacklight(int)', just <100>)" },
  { "deliver-nothing", QIPC_FRAME_DELIVER, 0, "('QPE/System', 'shutdown()', @mv nothing)" },
  { "deliver-dict", QIPC_FRAME_DELIVER, 0,
    "('org.example/app/events', 'changed', just <{'name': <'Ada'>, 'id': <uint64 7>, "
    "'tags': <['a', 'b']>, 'ok': <true>}>)" },
  { "deliver-nested", QIPC_FRAME_DELIVER, 0,
    "('org.example/app/events', 'nested', just <(byte 0x7f, int16 -2, 2.5, "
    "[@ay [0x01, 0x02], b'\\x03'], @ms nothing, <<int64 -9>>, {uint32 1: 'x'})>)" },
  { "deliver-unicode", QIPC_FRAME_DELIVER, 0,
    "('org.example/événements/ünïcödé/a-long-segment-of-unicode-text-ééééééééé', "
    "'größe', just <'Grüße'>)" },
  { "deliver-long-names", QIPC_FRAME_DELIVER, 0, "('@LONG@', '@LONG@', just <'x'>)" },
  { "deliver-memfd", QIPC_FRAME_DELIVER, QIPC_FRAME_FLAG_MEMFD,
    "('QPE/System', 'bigPayload', uint64 1048576)" },
  { "lost", QIPC_FRAME_LOST, 0, "(uint64 17,)" },
  { "reply", QIPC_FRAME_REPLY, 0, "(true,)" },
  { "pong", QIPC_FRAME_PONG, 0, NULL },
  { "channels", QIPC_FRAME_CHANNELS, 0,
    "[('QPE/System', uint32 2), ('org.example/app/events', 1), ('org.example/**', 3)]" },
  { "channels-none", QIPC_FRAME_CHANNELS, 0, "@a(su) []" },
};

static const Stream broker_streams[] = {
  { "stream-session", { "welcome", "deliver", "lost", "deliver-dict", "reply", "pong", "channels" } },
  { "stream-delivers", { "deliver-unicode", "deliver-memfd", "deliver-nothing", "deliver-nested", "error" } },
};

/* The start of each input is also fed to the address parser and the
 * name validators. */
static const char * const strings[] = {
  "address-unix", "unix:path=/run/user/1000/qipc/bus",
  "address-abstract", "unix:abstract=qipc-test",
  "address-tcp", "tcp:host=127.0.0.1,port=7777",
  "name", "org.example/app/events",
  "pattern", "QPE/*/x/**",
};

static void
write_seed (const char *dir,
            const char *name,
            const void *data,
            gsize       size)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr(GError) error = NULL;

  if (!g_file_set_contents (path, data, size, &error))
    g_error ("%s", error->message);
}

/* @text with each @LONG@ replaced by a channel, message and peer name
 * of the longest length allowed, so that a mutation that adds a byte
 * reaches the length checks. */
static char *
expand_long_names (const char *text)
{
  g_autofree char *padding = g_strnfill (QIPC_FRAME_MAX_NAME - strlen ("long/"), 'n');
  g_autofree char *name = g_strconcat ("long/", padding, NULL);
  g_auto(GStrv) parts = g_strsplit (text, "@LONG@", -1);

  G_STATIC_ASSERT (QIPC_FRAME_MAX_NAME == QIPC_FRAME_MAX_PEER_NAME);
  return g_strjoinv (name, parts);
}

/* Builds @frame's bytes and checks that the codec reads them back. */
static GBytes *
build_frame (const Frame        *frame,
             QipcFrameDirection  direction,
             guint32             serial)
{
  const GVariantType *type = _qipc_frame_body_type (frame->type, frame->flags);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) body = NULL;
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GBytes) bytes_body = NULL;
  g_autoptr(GVariant) parsed = NULL;
  QipcFrameHeader header;

  if (frame->body != NULL)
    {
      g_autofree char *text = expand_long_names (frame->body);

      body = g_variant_parse (type, text, NULL, NULL, &error);
      if (body == NULL)
        g_error ("%s: %s", frame->name, error->message);
    }
  /* g_variant_parse() gives a full reference, which stays ours. */
  bytes = _qipc_frame_build (frame->type, frame->flags, serial, body);
  if (!_qipc_frame_header_parse (g_bytes_get_data (bytes, NULL), direction, &header, &error))
    g_error ("%s: %s", frame->name, error->message);
  bytes_body = g_bytes_new_from_bytes (bytes, QIPC_FRAME_HEADER_SIZE, header.body_length);
  parsed = _qipc_frame_parse_body (&header, bytes_body, &error);
  if (parsed == NULL)
    g_error ("%s: %s", frame->name, error->message);
  return g_steal_pointer (&bytes);
}

static const Frame *
find_frame (const Frame *frames,
            gsize        n_frames,
            const char  *name)
{
  for (gsize i = 0; i < n_frames; i++)
    if (g_str_equal (frames[i].name, name))
      return &frames[i];
  g_error ("No frame called %s", name);
}

static void
write_corpus (const char         *dir,
              QipcFrameDirection  direction,
              const Frame        *frames,
              gsize               n_frames,
              const Stream       *streams,
              gsize               n_streams)
{
  if (g_mkdir_with_parents (dir, 0755) < 0)
    g_error ("Cannot create %s: %s", dir, g_strerror (errno));

  for (gsize i = 0; i < n_frames; i++)
    {
      g_autoptr(GBytes) bytes = build_frame (&frames[i], direction, 1);

      write_seed (dir, frames[i].name, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
    }

  for (gsize i = 0; i < n_streams; i++)
    {
      g_autoptr(GByteArray) stream = g_byte_array_new ();

      for (guint32 j = 0; j < G_N_ELEMENTS (streams[i].frames) && streams[i].frames[j] != NULL; j++)
        {
          const Frame *frame = find_frame (frames, n_frames, streams[i].frames[j]);
          g_autoptr(GBytes) bytes = build_frame (frame, direction, j + 1);

          g_byte_array_append (stream, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
        }
      write_seed (dir, streams[i].name, stream->data, stream->len);
    }

  for (gsize i = 0; i < G_N_ELEMENTS (strings); i += 2)
    write_seed (dir, strings[i], strings[i + 1], strlen (strings[i + 1]) + 1);
}

/* Data of every kind the JSON codec writes in its own way. */
static const char *const json_seeds[] = {
  "no-data", NULL,
  "int32", "42",
  "string", "'a \"quoted\" text\\n'",
  "bytes", "b'\\x00\\x01binary'",
  "dict-sv", "{'x': <1>, 'name': <'n'>}",
  "tuple", "(int32 -1, ['a', 'b'], true)",
  "maybe-nothing", "@mi nothing",
  "maybe-just", "@mi 5",
  "variant", "<@(ud) (7, 1.5)>",
  "dict-si", "{'a': 1, 'b': 2}",
  "uint64-big", "uint64 18446744073709551615",
  "double", "-0.25",
  "nested", "[[byte 1], @ay []]",
  "objectpath", "objectpath '/org/qipc/x'",
  /* Keys written as decimal (fuzz-json-messages found them in hex). */
  "byte-keys", "{byte 8: <'x'>, 255: <'y'>}",
  /* Strings in JSON, as JSON has neither. */
  "nonfinite", "[nan, inf, -inf, 0.5]",
  "double-keys", "{-inf: 'a', 0.5: 'b', nan: 'c'}",
  "uint64-keys", "{uint64 18446744073709551615: 'big', 1: 'small'}",
};

/* Data that JSON cannot hold, which the encoder must refuse: only for
 * fuzz-json-data, whose input is data. */
static const char *const json_data_seeds[] = {
  "key-twice", "{'k': <1>, 'k': <2>}",
  "just-nothing", "@mmi just nothing",
  "deep", "[[[[[[[[(1, [<@mmi just just 1>])]]]]]]]]",
};

/* fuzz-json-data's input: the type string, a NUL, the data. */
static void
write_data_seed (const char *dir,
                 const char *name,
                 GVariant   *data)
{
  g_autoptr(GByteArray) seed = g_byte_array_new ();
  const char *type = g_variant_get_type_string (data);

  g_byte_array_append (seed, (const guint8 *) type, strlen (type) + 1);
  g_byte_array_append (seed, g_variant_get_data (data), g_variant_get_size (data));
  write_seed (dir, name, seed->data, seed->len);
}

static GVariant *
parse_seed (const char *name,
            const char *text)
{
  g_autoptr(GError) error = NULL;
  GVariant *data = g_variant_parse (NULL, text, NULL, NULL, &error);

  if (data == NULL)
    g_error ("%s: %s", name, error->message);
  /* Not floating: g_variant_parse() returns a full reference. */
  return data;
}

static void
write_json_corpus (const char *dir,
                   const char *data_dir)
{
  if (g_mkdir_with_parents (dir, 0755) < 0 || g_mkdir_with_parents (data_dir, 0755) < 0)
    g_error ("Cannot create %s and %s: %s", dir, data_dir, g_strerror (errno));
  for (gsize i = 0; i < G_N_ELEMENTS (json_seeds); i += 2)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) data = NULL;
      g_autoptr(GBytes) text = NULL;

      if (json_seeds[i + 1] != NULL)
        {
          data = parse_seed (json_seeds[i], json_seeds[i + 1]);
          write_data_seed (data_dir, json_seeds[i], data);
        }
      text = _qipc_json_encode_message ("setValue", data, &error);
      if (text == NULL)
        g_error ("%s: %s", json_seeds[i], error->message);
      write_seed (dir, json_seeds[i], g_bytes_get_data (text, NULL), g_bytes_get_size (text));
    }
  for (gsize i = 0; i < G_N_ELEMENTS (json_data_seeds); i += 2)
    {
      g_autoptr(GVariant) data = parse_seed (json_data_seeds[i], json_data_seeds[i + 1]);

      write_data_seed (data_dir, json_data_seeds[i], data);
    }
}

int
main (int    argc,
      char **argv)
{
  g_autofree char *broker_dir = NULL;
  g_autofree char *client_dir = NULL;

  if (argc != 2)
    {
      g_printerr ("Usage: %s DIR\n", argv[0]);
      return EXIT_FAILURE;
    }
  /* Named after the side that reads them. */
  broker_dir = g_build_filename (argv[1], "broker-frames", NULL);
  client_dir = g_build_filename (argv[1], "client-frames", NULL);
  write_corpus (broker_dir, QIPC_FRAME_FROM_CLIENT, client_frames,
                G_N_ELEMENTS (client_frames), client_streams, G_N_ELEMENTS (client_streams));
  write_corpus (client_dir, QIPC_FRAME_FROM_BROKER, broker_frames,
                G_N_ELEMENTS (broker_frames), broker_streams, G_N_ELEMENTS (broker_streams));
  {
    g_autofree char *json_dir = g_build_filename (argv[1], "json-messages", NULL);
    g_autofree char *data_dir = g_build_filename (argv[1], "json-data", NULL);

    write_json_corpus (json_dir, data_dir);
  }
  return EXIT_SUCCESS;
}
