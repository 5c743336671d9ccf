/* fuzz-broker-frames.c: the bytes a client sends, read as the broker will
 *
 * The input is the stream the broker reads from one client socket. The
 * fuzzer has no file descriptors: a SEND with the memfd flag has its
 * (sst) body parsed, and no fd is looked at.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "fuzz-common.h"

#include <string.h>

/* The broker bounds how many subscriptions a client holds; so does the
 * fuzzer, which matches each SEND against those of its input. */
#define MAX_SUBSCRIPTIONS 8

typedef struct {
  GPtrArray *patterns;
} BrokerState;

/* The broker reads only the names of a plain SEND, in place, and routes
 * the frame on as it came: the clients it reaches read the data. */
static void
read_plain_send (const QipcFrameHeader *header,
                 const QipcSendBody    *body,
                 gpointer               user_data)
{
  BrokerState *state = user_data;

  g_assert_true (_qipc_channel_name_validate (body->channel, FALSE, NULL));
  g_assert_true (_qipc_message_name_validate (body->message, NULL));
  fuzz_match_name (body->channel);
  for (guint i = 0; i < state->patterns->len; i++)
    fuzz_match (g_ptr_array_index (state->patterns, i), body->channel);
  fuzz_read_send_data (body);
}

/* A SEND whose data is in a memfd (which the fuzzer has not got) has
 * an "(sst)" body; the broker forwards it as a DELIVER, which clients
 * must then accept. */
static void
read_memfd_send (const QipcFrameHeader *header,
                 GVariant              *body,
                 BrokerState           *state)
{
  QipcFrameHeader deliver = *header;
  g_autoptr(GBytes) bytes = g_variant_get_data_as_bytes (body);
  g_autoptr(GVariant) delivered = NULL;
  g_autoptr(GError) error = NULL;
  const char *channel, *message;
  guint64 size;

  g_variant_get (body, "(&s&st)", &channel, &message, &size);
  g_assert_true (_qipc_channel_name_validate (channel, FALSE, NULL));
  g_assert_true (_qipc_message_name_validate (message, NULL));
  fuzz_match_name (channel);
  for (guint i = 0; i < state->patterns->len; i++)
    fuzz_match (g_ptr_array_index (state->patterns, i), channel);

  deliver.type = QIPC_FRAME_DELIVER;
  delivered = _qipc_frame_parse_body (&deliver, bytes, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_equal (delivered, body));
}

static void
read_subscribe (GVariant    *body,
                BrokerState *state)
{
  guint32 id;
  const char *pattern;

  g_variant_get (body, "(u&s)", &id, &pattern);
  g_assert_true (_qipc_channel_name_validate (pattern, TRUE, NULL));
  fuzz_match_pattern (pattern);
  if (state->patterns->len < MAX_SUBSCRIPTIONS)
    g_ptr_array_add (state->patterns, g_strdup (pattern));
}

static void
read_client_frame (const QipcFrameHeader *header,
                   GVariant              *body,
                   gpointer               user_data)
{
  BrokerState *state = user_data;

  switch ((QipcFrameType) header->type)
    {
    case QIPC_FRAME_HELLO:
      {
        guint8 min_version, max_version;
        const char *client_name;

        g_variant_get (body, "(yy&s)", &min_version, &max_version, &client_name);
        g_assert_cmpuint (strlen (client_name), <=, QIPC_FRAME_MAX_PEER_NAME);
        break;
      }
    case QIPC_FRAME_SUBSCRIBE:
      read_subscribe (body, state);
      break;
    case QIPC_FRAME_UNSUBSCRIBE:
      {
        guint32 id;

        g_variant_get (body, "(u)", &id);
        break;
      }
    case QIPC_FRAME_SEND:
      read_memfd_send (header, body, state);
      break;
    case QIPC_FRAME_QUERY:
      {
        const char *channel;

        g_variant_get (body, "(&s)", &channel);
        g_assert_true (_qipc_channel_name_validate (channel, FALSE, NULL));
        fuzz_match_name (channel);
        break;
      }
    case QIPC_FRAME_PING:
    case QIPC_FRAME_LIST:
    case QIPC_FRAME_MONITOR:
      break;
    default:
      /* _qipc_frame_split() hands on only the types a client may send. */
      g_assert_not_reached ();
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  BrokerState state = { g_ptr_array_new_with_free_func (g_free) };

  fuzz_names (data, size);
  fuzz_frames (data, size, QIPC_FRAME_FROM_CLIENT, read_client_frame, read_plain_send, &state);
  g_ptr_array_unref (state.patterns);
  return 0;
}
