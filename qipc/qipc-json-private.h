/* qipc-json-private.h: GVariant <-> JSON, for the tool and MQTT
 *
 * A value of a known type converts to JSON and back to the same value,
 * with these exceptions: NaN and infinities become null, and a maybe
 * of a maybe cannot tell "nothing" from "just nothing". Variants keep
 * their type only with QIPC_JSON_TYPED_VARIANTS.
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

/* @node as a value of @type (floating), or of the type a JSON value has
 * by itself when @type is NULL (see "JSON" in qipc(1)); @path names
 * @node in error messages ("data[2].name"). */
GVariant *_qipc_json_to_variant   (JsonNode            *node,
                                   const GVariantType  *type,
                                   const char          *path,
                                   GError             **error);
/* @value as JSON (transfer full): bytes as base64, dictionaries as
 * objects, tuples and other arrays as arrays, maybe as null or the value. */
JsonNode *_qipc_json_from_variant (GVariant            *value,
                                   QipcJsonFlags        flags);

G_END_DECLS
