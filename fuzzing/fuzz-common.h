/* fuzz-common.h: what the frame fuzz targets share
 *
 * Each target feeds its input to the same codec calls the broker or the
 * client makes on the bytes a peer sends, and checks what the codec
 * promises on top of what the sanitizers check.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <signal.h>
#include <stdint.h>
#include <stdlib.h>

#include "qipc-frame-private.h"

G_BEGIN_DECLS

static inline void
fuzz_abort_on_trap (int signal_number)
{
  abort ();
}

/* Every GLib message is fatal, as a crash. GLib stops on a fatal message
 * (g_error(), a failed g_assert(), a critical) with SIGTRAP, which
 * libFuzzer does not catch, so the input was lost; as SIGABRT, libFuzzer
 * saves it under the run's artifacts. For each LLVMFuzzerInitialize(). */
static inline void
fuzz_setup_glib (void)
{
  g_log_set_always_fatal (G_LOG_FATAL_MASK | G_LOG_LEVEL_WARNING | G_LOG_LEVEL_CRITICAL);
  signal (SIGTRAP, fuzz_abort_on_trap);
}

/* libFuzzer's entry points, defined by the targets. */
int      LLVMFuzzerInitialize   (int            *argc,
                                 char         ***argv);
int      LLVMFuzzerTestOneInput (const uint8_t  *data,
                                 size_t          size);

/* Reads the fields of a frame's parsed @body as the receiving side
 * will; @state lives for one input. */
typedef void (* FuzzReadFunc) (const QipcFrameHeader *header,
                               GVariant              *body,
                               gpointer               state);

/* Reads a plain SEND or DELIVER body as parsed in place by
 * _qipc_frame_parse_send_body(), the path of nearly every message. */
typedef void (* FuzzReadSendFunc) (const QipcFrameHeader *header,
                                   const QipcSendBody    *body,
                                   gpointer               state);

/* Splits @data as a stream from @direction's peer and hands each frame
 * whose body parses to @read, or to @read_send for a plain SEND or
 * DELIVER; checks that reading the stream in pieces gives the same
 * frames. */
void     fuzz_frames            (const guint8        *data,
                                 gsize                size,
                                 QipcFrameDirection   direction,
                                 FuzzReadFunc         read,
                                 FuzzReadSendFunc     read_send,
                                 gpointer             state);

/* Feeds the NUL-terminated string at the start of @data, if there is
 * one, to the address parser and the name validators. */
void     fuzz_names             (const guint8        *data,
                                 gsize                size);

/* Matches the valid pattern @pattern against the valid plain name
 * @name, and checks the result against a plain reimplementation. */
gboolean fuzz_match             (const char          *pattern,
                                 const char          *name);

/* Matches the valid plain name @name against a few patterns, and the
 * valid pattern @pattern against a few names, as receivers will. */
void     fuzz_match_name        (const char          *name);
void     fuzz_match_pattern     (const char          *pattern);

/* Builds the data of a plain SEND or DELIVER from its bytes and type,
 * untrusted, as the receiving client does, and prints it, as user code
 * may. */
void     fuzz_read_send_data    (const QipcSendBody  *body);

/* Errors travel to peers in ERROR frames and into logs: the codec's
 * messages must be UTF-8, in its own domain. */
void     fuzz_check_error       (const GError        *error);

G_END_DECLS
