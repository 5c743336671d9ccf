/* qipc-json-private.h: GVariant <-> JSON, for the tool and MQTT
 *
 * A value of a known type converts to JSON and back to the same value.
 * NaN and infinities are the strings "NaN", "Infinity" and "-Infinity"
 * (as in protobuf's JSON mapping; NaN reads back as the one quiet NaN).
 * What JSON cannot hold is an error when writing: a dictionary with one
 * key twice, and a maybe holding a maybe that holds nothing (JSON cannot
 * tell it from nothing). Variants keep their type only with
 * QIPC_JSON_TYPED_VARIANTS.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Values that do not fit the type asked for; the message names where. */
#define QIPC_JSON_ERROR (_qipc_json_error_quark ())
GQuark _qipc_json_error_quark (void);

typedef enum
{
  /* A "v" is written {"type": "<type string>", "value": …} rather than
   * as its bare value, so that it reads back with its type. */
  QIPC_JSON_TYPED_VARIANTS = 1 << 0,
} QipcJsonFlags;

/* Deepest JSON text read: as deep as payload data may be
 * (QIPC_DATA_MAX_DEPTH), since each level of JSON is at least one of
 * GVariant. */
#define QIPC_JSON_MAX_DEPTH 128

/* Refuses with %QIPC_JSON_ERROR @text (@length bytes, or -1 for
 * NUL-terminated) nested deeper than QIPC_JSON_MAX_DEPTH, with a comment
 * or a single-quoted string (json-glib's extensions to JSON), or with
 * text after a top-level object or array (json-glib reads on and keeps
 * the first value): json-glib's parser recurses once per level, with no
 * limit of its own, so text from anyone could overflow the stack. */
gboolean  _qipc_json_check_depth  (const char          *text,
                                   gssize               length,
                                   GError             **error);
/* What json-glib reads that JSON is not, refused: a load between start
 * and finish fails with %QIPC_JSON_ERROR for a member name given twice
 * in one object ("SOURCE:LINE:POS: key "NAME" is given twice"; json-glib
 * would keep the last, and JSON leaves that to the reader) or for
 * JavaScript's "var name = VALUE;". @loaded is what the load returned;
 * finish returns whether the load succeeded and was JSON. */
typedef struct
{
  JsonParser *parser;
  const char *source;
  gulong handler;
  GHashTable *parsed;         /* JsonObject * → members parsed into it */
  GError *duplicate;
} QipcJsonStrict;

void      _qipc_json_strict_start  (QipcJsonStrict  *check,
                                    JsonParser      *parser,
                                    const char      *source);
gboolean  _qipc_json_strict_finish (QipcJsonStrict  *check,
                                    gboolean         loaded,
                                    GError         **error);

/* _qipc_json_check_depth(), then json_parser_load_from_data() refusing
 * a member name given twice, as above: for JSON text from anyone. */
gboolean  _qipc_json_load         (JsonParser          *parser,
                                   const char          *text,
                                   gssize               length,
                                   GError             **error);

/* @node as a value of @type (floating), or of the type a JSON value has
 * by itself when @type is NULL (see "JSON" in qipc(1)); @path names
 * @node in error messages ("data[2].name"). */
GVariant *_qipc_json_to_variant   (JsonNode            *node,
                                   const GVariantType  *type,
                                   const char          *path,
                                   GError             **error);
/* @value as JSON (transfer full): bytes as base64, dictionaries as
 * objects, tuples and other arrays as arrays, maybe as null or the
 * value; or %NULL and %QIPC_JSON_ERROR for what JSON cannot hold. */
JsonNode *_qipc_json_from_variant (GVariant            *value,
                                   QipcJsonFlags        flags,
                                   GError             **error);

/* @node as compact JSON text, appended to @out (json-glib 1.6's
 * generator writes some doubles as text that is not JSON). */
void      _qipc_json_write          (JsonNode            *node,
                                     GString             *out);
/* A channel message as JSON text, {"message": …, "data": …, "type": …}
 * (data and type left out when @data is NULL); %NULL and
 * %QIPC_JSON_ERROR when JSON cannot hold @data. */
GBytes   *_qipc_json_encode_message (const char          *message,
                                     GVariant            *data,
                                     GError             **error);
/* The reverse, with @parser, for text from anyone: %QIPC_JSON_ERROR (or
 * %JSON_PARSER_ERROR) for anything that is not such an object, or whose
 * data does not fit its type. *@data is %NULL for no data. The message
 * name is not checked against the channel rules. */
gboolean  _qipc_json_decode_message (JsonParser          *parser,
                                     const void          *payload,
                                     gsize                length,
                                     char               **message,
                                     GVariant           **data,
                                     GError             **error);

G_END_DECLS
