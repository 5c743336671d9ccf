/* qipc-frame-private.h: the frames of qipc's native channel protocol
 *
 * The format is specified in docs/protocol.md; this is the one codec
 * that the broker and the client share (and that fuzzing/ feeds).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "qipc-socket.h"

G_BEGIN_DECLS

#define QIPC_FRAME_MAGIC_0          0x51 /* 'Q' */
#define QIPC_FRAME_MAGIC_1          0x43 /* 'C' */
#define QIPC_PROTOCOL_VERSION       1
#define QIPC_FRAME_HEADER_SIZE      16

/* Largest body carried inline; larger payloads travel in a memfd. */
#define QIPC_FRAME_MAX_BODY         (1024 * 1024)
/* Serialized payload data from this size on is sent in a sealed memfd. */
#define QIPC_FRAME_MEMFD_THRESHOLD  (64 * 1024)
/* Largest payload a memfd may carry. */
#define QIPC_FRAME_MAX_MEMFD_DATA   (G_GUINT64_CONSTANT (1) << 32)
/* Longest channel name or pattern, and longest message name, in bytes. */
#define QIPC_FRAME_MAX_NAME         255
/* Payload fds a peer may send ahead of the frames that use them. */
#define QIPC_FRAME_MAX_PENDING_FDS  16
/* Longest client name in HELLO and broker name in WELCOME. */
#define QIPC_FRAME_MAX_PEER_NAME    255
/* Deepest payload data: GLib's G_VARIANT_MAX_RECURSION_DEPTH. A receiver
 * reads a deeper value inside a variant as "()", and refuses a deeper
 * type string, so no deeper data is sent. */
#define QIPC_DATA_MAX_DEPTH         128

typedef enum {
  QIPC_FRAME_HELLO       = 1,  /* client -> broker (yys) */
  QIPC_FRAME_WELCOME     = 2,  /* broker -> client (yts) */
  QIPC_FRAME_ERROR       = 3,  /* broker -> client (us)  */
  QIPC_FRAME_SUBSCRIBE   = 4,  /* client -> broker (us)  */
  QIPC_FRAME_UNSUBSCRIBE = 5,  /* client -> broker (u)   */
  QIPC_FRAME_SEND        = 6,  /* client -> broker (ssmv), or (sst) + memfd */
  QIPC_FRAME_DELIVER     = 7,  /* broker -> client, the body of a SEND */
  QIPC_FRAME_LOST        = 8,  /* broker -> client (t)   */
  QIPC_FRAME_QUERY       = 9,  /* client -> broker (s)   */
  QIPC_FRAME_REPLY       = 10, /* broker -> client (b)   */
  QIPC_FRAME_PING        = 11, /* client -> broker ()    */
  QIPC_FRAME_PONG        = 12, /* broker -> client ()    */
  QIPC_FRAME_LIST        = 13, /* client -> broker ()    */
  QIPC_FRAME_CHANNELS    = 14, /* broker -> client (a(su)) */
  QIPC_FRAME_MONITOR     = 15, /* client -> broker ()    */
  QIPC_FRAME_LAST_TYPE   = QIPC_FRAME_MONITOR,
} QipcFrameType;

typedef enum {
  /* The payload data is in the memfd passed with this frame. */
  QIPC_FRAME_FLAG_MEMFD = 1 << 0,
} QipcFrameFlags;

#define QIPC_FRAME_KNOWN_FLAGS QIPC_FRAME_FLAG_MEMFD

typedef enum {
  QIPC_FRAME_FROM_CLIENT,
  QIPC_FRAME_FROM_BROKER,
} QipcFrameDirection;

typedef struct {
  guint8  type;
  guint16 flags;
  guint32 body_length;
  guint32 serial;
} QipcFrameHeader;

/* Checks magic, version, type for @direction, flags and the length
 * limit; fills @header. @data holds QIPC_FRAME_HEADER_SIZE bytes. */
gboolean  _qipc_frame_header_parse   (const guint8         *data,
                                      QipcFrameDirection    direction,
                                      QipcFrameHeader      *header,
                                      GError              **error);
void      _qipc_frame_header_write   (guint8               *data,
                                      QipcFrameType         type,
                                      guint16               flags,
                                      guint32               body_length,
                                      guint32               serial);
/* Header and body in one buffer, ready to write. @body may be NULL for
 * the unit body "()"; it is consumed if floating. */
GBytes   *_qipc_frame_build          (QipcFrameType         type,
                                      guint16               flags,
                                      guint32               serial,
                                      GVariant             *body);
/* The body's GVariant type for @type and @flags, or NULL if unknown. */
const GVariantType *_qipc_frame_body_type (QipcFrameType    type,
                                           guint16          flags);
/* Turns @body (the bytes after a header) into the frame's GVariant,
 * checking that it is in normal form and that every name in it is
 * valid. Returns a new reference, or NULL with @error. */
GVariant *_qipc_frame_parse_body     (const QipcFrameHeader *header,
                                      GBytes               *body,
                                      GError              **error);

/* Called for each complete frame by _qipc_frame_split(): @frame points
 * at its header, followed by its body, valid during the call only.
 * Returns FALSE to stop splitting: with @error set when the peer broke
 * the protocol, without when the caller simply stops (it went away). */
typedef gboolean (* QipcFrameFunc) (const QipcFrameHeader  *header,
                                    const guint8           *frame,
                                    gpointer                user_data,
                                    GError                **error);

/* Hands each complete frame at the front of @data to @func, and returns
 * how many bytes they took. A bad header sets @error; an incomplete
 * frame at the end is left for later. */
gsize     _qipc_frame_split          (const guint8         *data,
                                      gsize                 size,
                                      QipcFrameDirection    direction,
                                      QipcFrameFunc         func,
                                      gpointer              user_data,
                                      GError              **error);

/* The fast path for the body of SEND and DELIVER frames without a memfd,
 * the "(ssmv)" of every message: encoded and decoded in place. */
typedef struct {
  const char   *channel;
  const char   *message;
  gboolean      has_data;
  const guint8 *value;        /* the data's serialized value */
  gsize         value_size;
  const char   *type_string;  /* the data's type, not NUL-terminated */
  gsize         type_length;
} QipcSendBody;

/* Appends a whole frame (header and "(ssmv)" body) to @out. The names
 * must be valid; @data may be NULL. */
void      _qipc_frame_append_send    (GByteArray           *out,
                                      QipcFrameType         type,
                                      guint32               serial,
                                      const char           *channel,
                                      const char           *message,
                                      GVariant             *data);
/* The channel name that last passed validation: a stream mostly comes
 * on one channel, and comparing costs a fraction of validating. */
typedef struct
{
  char name[QIPC_FRAME_MAX_NAME + 1];
} QipcValidName;

/* Splits a "(ssmv)" body into its parts (pointing into @body), checking
 * the framing, the names and the data's type string, not the data. A
 * channel name equal to @last_valid's is not validated again; one that
 * passes is kept there. */
gboolean  _qipc_frame_parse_send_body (const guint8        *body,
                                       gsize                size,
                                       QipcValidName       *last_valid,
                                       QipcSendBody        *out,
                                       GError             **error);

/* Checks that @data, of type @type_string (which the caller has at hand),
 * nests at most QIPC_DATA_MAX_DEPTH levels as GVariant counts them (each
 * container, variant included, is a level; a basic value is one), so
 * that a receiver reads it whole; %QIPC_BUS_ERROR_LIMIT_EXCEEDED
 * otherwise. Costs a scan of the type string, and a walk over the value
 * only for types with a "v" in them. */
gboolean  _qipc_data_check_depth (GVariant    *data,
                                  const char  *type_string,
                                  GError     **error);

/* _qipc_data_check_depth() for data sent in a memfd (of
 * QIPC_FRAME_MEMFD_THRESHOLD bytes or more), whose "mv" envelope puts it
 * two levels down: it may nest two levels less. Costs a scan of the type
 * string, and a walk for types with a "v"; large data only. */
gboolean  _qipc_data_check_memfd_depth (GVariant  *data,
                                        GError   **error);

/* Whether data of the valid, complete type @type_string (@length bytes,
 * then a NUL) may be read from untrusted bytes: its type nests at most
 * QIPC_DATA_MAX_DEPTH levels. GLib 2.74 aborts on reading untrusted data
 * of a deeper type (an assertion in g_variant_get_child_value(), even
 * from g_variant_is_normal_form()), so every receiver checks this before
 * g_variant_new_from_bytes(). One comparison for types of at most
 * QIPC_DATA_MAX_DEPTH characters. */
gboolean  _qipc_data_type_fits   (const char  *type_string,
                                  gsize        length);

/* Channel names: UTF-8, at most QIPC_FRAME_MAX_NAME bytes, segments
 * separated by single '/', none empty; with @allow_pattern a segment may
 * be "*" and the last one "**". */
gboolean  _qipc_channel_name_validate (const char          *name,
                                       gboolean             allow_pattern,
                                       GError             **error);
/* _qipc_channel_name_validate() of a plain name, skipped when @channel
 * equals @last_valid's (may be %NULL); one that passes is kept there. */
gboolean  _qipc_channel_name_validate_cached (const char    *channel,
                                              QipcValidName *last_valid,
                                              GError       **error);
gboolean  _qipc_message_name_validate (const char          *message,
                                       GError             **error);
gboolean  _qipc_channel_name_is_pattern (const char        *name);
/* Whether the valid pattern @pattern matches the valid plain name @name. */
gboolean  _qipc_channel_pattern_match (const char          *pattern,
                                       const char          *name);

/* The channel name last looked up in a table keyed by names, and what
 * it found there: a stream mostly comes on one channel, so the name is
 * hashed once. Whoever changes the table forgets the last lookup. */
typedef struct
{
  char name[QIPC_FRAME_MAX_NAME + 1];
  gpointer value;
} QipcLastLookup;

gpointer  _qipc_last_lookup           (QipcLastLookup      *last,
                                       GHashTable          *table,
                                       const char          *name);
void      _qipc_last_lookup_forget    (QipcLastLookup      *last);

/* Creates a sealed memfd holding @data's serialized form. Returns the
 * fd or -1 with @error. */
int       _qipc_payload_memfd_new     (GVariant            *data,
                                       GError             **error);
/* Checks that @fd is a memfd sealed against writing and resizing, of
 * at least @size bytes. */
gboolean  _qipc_payload_memfd_check   (int                  fd,
                                       guint64              size,
                                       GError             **error);
/* Maps the sealed @fd and returns the payload (type "mv") it holds,
 * without copying. Takes ownership of nothing; @fd may be closed after. */
GVariant *_qipc_payload_memfd_map     (int                  fd,
                                       guint64              size,
                                       GError             **error);

/* Payload fds arrive with the first byte of their frame: this moves the
 * ones @socket received into @queue, where the memfd frames take them in
 * order. Fails when more than QIPC_FRAME_MAX_PENDING_FDS wait there. */
gboolean  _qipc_payload_fds_take      (QipcSocket          *socket,
                                       GQueue              *queue,
                                       GError             **error);
/* Closes the fds left in @queue. */
void      _qipc_payload_fds_clear     (GQueue              *queue);

G_END_DECLS
