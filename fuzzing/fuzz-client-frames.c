/* fuzz-client-frames.c: the bytes a broker sends, read as the client will
 *
 * The input is the stream a QipcBus reads from its broker. The fuzzer
 * has no file descriptors: a DELIVER with the memfd flag has its (sst)
 * body parsed, and no fd is looked at.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "fuzz-common.h"
#include "qipc-bus.h"

#include <string.h>

/* The client reads a plain DELIVER in place, builds its data and hands
 * it to user code. */
static void
read_plain_deliver (const QipcFrameHeader *header,
                    const QipcSendBody    *body,
                    gpointer               state)
{
  g_assert_true (_qipc_channel_name_validate (body->channel, FALSE, NULL));
  g_assert_true (_qipc_message_name_validate (body->message, NULL));
  fuzz_match_name (body->channel);
  fuzz_read_send_data (body);
}

/* A DELIVER whose data is in a memfd (which the fuzzer has not got) has
 * an "(sst)" body. */
static void
read_memfd_deliver (GVariant *body)
{
  const char *channel, *message;
  guint64 size;

  g_variant_get (body, "(&s&st)", &channel, &message, &size);
  g_assert_true (_qipc_channel_name_validate (channel, FALSE, NULL));
  g_assert_true (_qipc_message_name_validate (message, NULL));
  fuzz_match_name (channel);
}

/* An ERROR becomes the GError of the call it answers; a code the client
 * does not know becomes QIPC_BUS_ERROR_FAILED. */
static void
read_error (GVariant *body)
{
  guint32 code;
  const char *text;
  g_autoptr(GError) error = NULL;

  g_variant_get (body, "(u&s)", &code, &text);
  error = g_error_new (QIPC_BUS_ERROR,
                       code <= QIPC_BUS_ERROR_PROTOCOL ? (int) code : QIPC_BUS_ERROR_FAILED,
                       "%s", text);
  fuzz_check_error (error);
}

static void
read_channels (GVariant *body)
{
  GVariantIter iter;
  const char *name;
  guint32 n_listeners;

  g_variant_iter_init (&iter, body);
  while (g_variant_iter_next (&iter, "(&su)", &name, &n_listeners))
    g_assert_nonnull (name);
}

static void
read_broker_frame (const QipcFrameHeader *header,
                   GVariant              *body,
                   gpointer               state)
{
  switch ((QipcFrameType) header->type)
    {
    case QIPC_FRAME_WELCOME:
      {
        guint8 version;
        guint64 client_id;
        const char *broker_name;

        g_variant_get (body, "(yt&s)", &version, &client_id, &broker_name);
        g_assert_cmpuint (strlen (broker_name), <=, QIPC_FRAME_MAX_PEER_NAME);
        break;
      }
    case QIPC_FRAME_ERROR:
      read_error (body);
      break;
    case QIPC_FRAME_DELIVER:
      read_memfd_deliver (body);
      break;
    case QIPC_FRAME_LOST:
      {
        guint64 n_lost;

        g_variant_get (body, "(t)", &n_lost);
        break;
      }
    case QIPC_FRAME_REPLY:
      {
        gboolean listened;

        g_variant_get (body, "(b)", &listened);
        break;
      }
    case QIPC_FRAME_PONG:
      break;
    case QIPC_FRAME_CHANNELS:
      read_channels (body);
      break;
    default:
      /* _qipc_frame_split() hands on only the types a broker may send. */
      g_assert_not_reached ();
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  fuzz_names (data, size);
  fuzz_frames (data, size, QIPC_FRAME_FROM_BROKER, read_broker_frame, read_plain_deliver, NULL);
  return 0;
}
