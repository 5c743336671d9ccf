/* qipc-json.c: GVariant <-> JSON, for the command-line tool and MQTT
 *
 * The mapping is documented in qipc(1) ("JSON") and in the guide
 * "Running qipc across machines". The tool builds this file again (it
 * is GLib and json-glib only), since the library keeps its copy hidden.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "qipc-json-private.h"

#include <math.h>
#include <string.h>

G_DEFINE_QUARK (qipc-json-error-quark, _qipc_json_error)

/* ------------------------------------------------------------------ */
/* JSON → GVariant                                                     */


static const char *
json_kind (JsonNode *node)
{
  switch (JSON_NODE_TYPE (node))
    {
    case JSON_NODE_OBJECT:
      return "an object";
    case JSON_NODE_ARRAY:
      return "an array";
    case JSON_NODE_NULL:
      return "null";
    case JSON_NODE_VALUE:
    default:
      switch (json_node_get_value_type (node))
        {
        case G_TYPE_BOOLEAN:
          return "a boolean";
        case G_TYPE_INT64:
          return "an integer";
        case G_TYPE_DOUBLE:
          return "a number with a fraction";
        default:
          return "a string";
        }
    }
}

static gboolean
json_is (JsonNode *node,
         GType     value_type)
{
  return JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == value_type;
}

static GVariant *
mismatch (JsonNode            *node,
          const GVariantType  *type,
          const char          *path,
          const char          *expected,
          GError             **error)
{
  g_set_error (error, QIPC_JSON_ERROR, 0, "At %s: type \"%.*s\" needs %s, not %s",
               path, (int) g_variant_type_get_string_length (type),
               g_variant_type_peek_string (type), expected, json_kind (node));
  return NULL;
}

/* Strict base64: what g_base64_decode() does not check. */
static gboolean
is_base64 (const char *text)
{
  gsize length = strlen (text);

  if (length % 4 != 0)
    return FALSE;
  for (gsize i = 0; i < length; i++)
    {
      char c = text[i];

      if (g_ascii_isalnum (c) || c == '+' || c == '/')
        continue;
      /* Padding: only at the end, at most two. */
      if (c == '=' && i + 2 >= length &&
          (i + 1 == length || text[i + 1] == '='))
        continue;
      return FALSE;
    }
  return TRUE;
}

static GVariant *
integer_to_variant (JsonNode            *node,
                    const GVariantType  *type,
                    const char          *path,
                    GError             **error)
{
  gint64 value;
  gint64 min, max;
  char kind = *g_variant_type_peek_string (type);

  if (kind == 't' && json_is (node, G_TYPE_STRING))
    {
      guint64 big;

      /* What _qipc_json_from_variant() writes beyond G_MAXINT64. */
      if (!g_ascii_string_to_unsigned (json_node_get_string (node), 10, 0, G_MAXUINT64, &big, NULL))
        return mismatch (node, type, path, "an integer or a decimal string", error);
      return g_variant_new_uint64 (big);
    }
  if (!json_is (node, G_TYPE_INT64))
    return mismatch (node, type, path, "an integer", error);
  value = json_node_get_int (node);
  switch (kind)
    {
    case 'y': min = 0; max = G_MAXUINT8; break;
    case 'n': min = G_MININT16; max = G_MAXINT16; break;
    case 'q': min = 0; max = G_MAXUINT16; break;
    case 'i': case 'h': min = G_MININT32; max = G_MAXINT32; break;
    case 'u': min = 0; max = G_MAXUINT32; break;
    case 't': min = 0; max = G_MAXINT64; break;
    case 'x': default: min = G_MININT64; max = G_MAXINT64; break;
    }
  if (value < min || value > max)
    {
      g_set_error (error, QIPC_JSON_ERROR, 0,
                   "At %s: %" G_GINT64_FORMAT " is out of the range of type \"%c\" "
                   "(%" G_GINT64_FORMAT " to %" G_GINT64_FORMAT ")",
                   path, value, kind, min, max);
      return NULL;
    }
  switch (kind)
    {
    case 'y': return g_variant_new_byte (value);
    case 'n': return g_variant_new_int16 (value);
    case 'q': return g_variant_new_uint16 (value);
    case 'i': return g_variant_new_int32 (value);
    case 'h': return g_variant_new_handle (value);
    case 'u': return g_variant_new_uint32 (value);
    case 't': return g_variant_new_uint64 (value);
    case 'x': default: return g_variant_new_int64 (value);
    }
}

/* JSON has no NaN nor infinities: they travel as the strings that
 * protobuf's JSON mapping uses too. NaN comes back as the one quiet NaN
 * (its sign and payload bits are not kept). */
static const char *
nonfinite_to_name (double value)
{
  if (isnan (value))
    return "NaN";
  return value > 0 ? "Infinity" : "-Infinity";
}

static gboolean
nonfinite_from_name (const char *name,
                     double     *value)
{
  if (strcmp (name, "NaN") == 0)
    *value = NAN;
  else if (strcmp (name, "Infinity") == 0)
    *value = INFINITY;
  else if (strcmp (name, "-Infinity") == 0)
    *value = -INFINITY;
  else
    return FALSE;
  return TRUE;
}

/* A number too large for a double ("1e400") is refused rather than
 * read as infinity, which would not write back as the same text. */
static GVariant *
double_to_variant (JsonNode            *node,
                   const GVariantType  *type,
                   const char          *path,
                   GError             **error)
{
  double value;

  if (json_is (node, G_TYPE_INT64))
    return g_variant_new_double (json_node_get_int (node));
  if (json_is (node, G_TYPE_STRING) && nonfinite_from_name (json_node_get_string (node), &value))
    return g_variant_new_double (value);
  if (!json_is (node, G_TYPE_DOUBLE))
    return mismatch (node, type, path, "a number, \"NaN\", \"Infinity\" or \"-Infinity\"", error);
  value = json_node_get_double (node);
  if (!isfinite (value))
    return mismatch (node, type, path, "a number within the range of a double", error);
  return g_variant_new_double (value);
}

static GVariant *
string_to_variant (JsonNode            *node,
                   const GVariantType  *type,
                   const char          *path,
                   GError             **error)
{
  const char *text;

  if (!json_is (node, G_TYPE_STRING))
    return mismatch (node, type, path, "a string", error);
  text = json_node_get_string (node);
  /* json-glib lets a lone UTF-16 surrogate ("\ud800") through as bytes
   * that are not UTF-8, which GVariant must never get. */
  if (!g_utf8_validate (text, -1, NULL))
    return mismatch (node, type, path, "a string of valid UTF-8", error);
  if (g_variant_type_equal (type, G_VARIANT_TYPE_OBJECT_PATH))
    {
      if (!g_variant_is_object_path (text))
        return mismatch (node, type, path, "an object path", error);
      return g_variant_new_object_path (text);
    }
  if (g_variant_type_equal (type, G_VARIANT_TYPE_SIGNATURE))
    {
      if (!g_variant_is_signature (text))
        return mismatch (node, type, path, "a signature", error);
      return g_variant_new_signature (text);
    }
  return g_variant_new_string (text);
}

/* A dictionary key comes as a JSON member name: a string of any key
 * type's value. */
static GVariant *
key_to_variant (const char          *key,
                const GVariantType  *type,
                const char          *path,
                GError             **error)
{
  g_autoptr(JsonNode) node = json_node_new (JSON_NODE_VALUE);
  char kind = *g_variant_type_peek_string (type);

  if (kind == 's' || kind == 'o' || kind == 'g')
    {
      json_node_set_string (node, key);
      return string_to_variant (node, type, path, error);
    }
  if (kind == 'b' && (strcmp (key, "true") == 0 || strcmp (key, "false") == 0))
    return g_variant_new_boolean (key[0] == 't');
  if (kind == 'd')
    {
      char *end;
      double value = g_ascii_strtod (key, &end);

      if ((*key != '\0' && *end == '\0' && isfinite (value)) || nonfinite_from_name (key, &value))
        return g_variant_new_double (value);
    }
  else if (kind != 'b')
    {
      gint64 value;
      guint64 big;

      /* A "t" may be beyond G_MAXINT64. */
      if (kind == 't' && g_ascii_string_to_unsigned (key, 10, 0, G_MAXUINT64, &big, NULL))
        return g_variant_new_uint64 (big);
      if (g_ascii_string_to_signed (key, 10, G_MININT64, G_MAXINT64, &value, NULL))
        {
          json_node_set_int (node, value);
          return integer_to_variant (node, type, path, error);
        }
    }
  g_set_error (error, QIPC_JSON_ERROR, 0, "At %s: the key \"%s\" is not of type \"%c\"",
               path, key, kind);
  return NULL;
}

/* The type a JSON value has when nothing says otherwise (see "JSON" in
 * qipc(1)): null is "mv" nothing, true/false "b", integers "x", other
 * numbers "d", strings "s", objects "a{sv}", arrays "aT" when every
 * element has the type T, else "av". */
static GVariant *
json_infer (JsonNode    *node,
            const char  *path,
            GError     **error)
{
  switch (JSON_NODE_TYPE (node))
    {
    case JSON_NODE_NULL:
      return g_variant_new_maybe (G_VARIANT_TYPE_VARIANT, NULL);

    case JSON_NODE_VALUE:
      switch (json_node_get_value_type (node))
        {
        case G_TYPE_BOOLEAN:
          return g_variant_new_boolean (json_node_get_boolean (node));
        case G_TYPE_INT64:
          return g_variant_new_int64 (json_node_get_int (node));
        case G_TYPE_DOUBLE:
          return double_to_variant (node, G_VARIANT_TYPE_DOUBLE, path, error);
        default:
          return string_to_variant (node, G_VARIANT_TYPE_STRING, path, error);
        }

    case JSON_NODE_OBJECT:
      {
        JsonObject *object = json_node_get_object (node);
        g_autoptr(GList) members = json_object_get_members (object);
        GVariantBuilder builder;

        g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
        for (GList *l = members; l != NULL; l = l->next)
          {
            const char *member = l->data;
            JsonNode *value = json_object_get_member (object, member);
            g_autofree char *child_path = g_strdup_printf ("%s.%s", path, member);
            GVariant *child = NULL;

            /* A member name becomes an "s" key: UTF-8 only (see
             * string_to_variant). */
            if (!g_utf8_validate (member, -1, NULL))
              g_set_error (error, QIPC_JSON_ERROR, 0, "At %s: a key that is not valid UTF-8", path);
            else
              child = json_infer (value, child_path, error);
            if (child == NULL)
              {
                g_variant_builder_clear (&builder);
                return NULL;
              }
            g_variant_builder_add (&builder, "{sv}", member, child);
          }
        return g_variant_builder_end (&builder);
      }

    case JSON_NODE_ARRAY:
    default:
      {
        JsonArray *array = json_node_get_array (node);
        guint n = json_array_get_length (array);
        g_autoptr(GPtrArray) children = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
        gboolean same = n > 0;

        for (guint i = 0; i < n; i++)
          {
            g_autofree char *child_path = g_strdup_printf ("%s[%u]", path, i);
            GVariant *child = json_infer (json_array_get_element (array, i), child_path, error);

            if (child == NULL)
              return NULL;
            g_ptr_array_add (children, g_variant_ref_sink (child));
            if (i > 0 && !g_variant_type_equal (g_variant_get_type (child),
                                                g_variant_get_type (children->pdata[0])))
              same = FALSE;
          }
        if (same)
          return g_variant_new_array (NULL, (GVariant **) children->pdata, n);
        for (guint i = 0; i < n; i++)
          {
            GVariant *boxed = g_variant_ref_sink (g_variant_new_variant (children->pdata[i]));

            g_variant_unref (children->pdata[i]);
            children->pdata[i] = boxed;
          }
        return g_variant_new_array (G_VARIANT_TYPE_VARIANT, (GVariant **) children->pdata, n);
      }
    }
}

/* The members of @object as entries of type @entry_type in @builder.
 * Two member names may read as one key ("8" and "08" as a byte): a
 * dictionary with the key twice would lose one entry in JSON, so that is
 * an error. */
static gboolean
add_dict_entries (GVariantBuilder     *builder,
                  JsonObject          *object,
                  const GVariantType  *entry_type,
                  const char          *path,
                  GError             **error)
{
  g_autoptr(GHashTable) keys = g_hash_table_new_full (g_variant_hash, g_variant_equal,
                                                      (GDestroyNotify) g_variant_unref, NULL);
  g_autoptr(GList) members = json_object_get_members (object);

  for (GList *l = members; l != NULL; l = l->next)
    {
      const char *member = l->data;
      g_autofree char *child_path = g_strdup_printf ("%s.%s", path, member);
      g_autoptr(GVariant) key = key_to_variant (member, g_variant_type_key (entry_type), child_path, error);
      GVariant *child;

      if (key == NULL)
        return FALSE;
      g_variant_ref_sink (key);
      if (!g_hash_table_add (keys, g_variant_ref (key)))
        {
          g_set_error (error, QIPC_JSON_ERROR, 0, "At %s: a key given twice", child_path);
          return FALSE;
        }
      child = _qipc_json_to_variant (json_object_get_member (object, member),
                                     g_variant_type_value (entry_type), child_path, error);
      if (child == NULL)
        return FALSE;
      g_variant_builder_add_value (builder, g_variant_new_dict_entry (key, child));
    }
  return TRUE;
}

static GVariant *
json_to_array (JsonNode            *node,
               const GVariantType  *type,
               const char          *path,
               GError             **error)
{
  const GVariantType *element = g_variant_type_element (type);
  GVariantBuilder builder;

  /* Bytes are a base64 string (an array of numbers works too). */
  if (g_variant_type_equal (type, G_VARIANT_TYPE_BYTESTRING) && json_is (node, G_TYPE_STRING))
    {
      const char *text = json_node_get_string (node);
      g_autoptr(GBytes) bytes = NULL;
      guchar *decoded;
      gsize length;

      if (!is_base64 (text))
        return mismatch (node, type, path, "a base64 string", error);
      decoded = g_base64_decode (text, &length);
      bytes = g_bytes_new_take (decoded, length);
      return g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING, bytes, TRUE);
    }

  g_variant_builder_init (&builder, type);
  if (g_variant_type_is_dict_entry (element))
    {
      if (!JSON_NODE_HOLDS_OBJECT (node))
        {
          g_variant_builder_clear (&builder);
          return mismatch (node, type, path, "an object", error);
        }
      if (!add_dict_entries (&builder, json_node_get_object (node), element, path, error))
        {
          g_variant_builder_clear (&builder);
          return NULL;
        }
    }
  else
    {
      JsonArray *array;

      if (!JSON_NODE_HOLDS_ARRAY (node))
        {
          g_variant_builder_clear (&builder);
          return mismatch (node, type, path,
                           g_variant_type_equal (type, G_VARIANT_TYPE_BYTESTRING)
                           ? "an array or a base64 string" : "an array", error);
        }
      array = json_node_get_array (node);
      for (guint i = 0; i < json_array_get_length (array); i++)
        {
          g_autofree char *child_path = g_strdup_printf ("%s[%u]", path, i);
          GVariant *child = _qipc_json_to_variant (json_array_get_element (array, i), element,
                                             child_path, error);

          if (child == NULL)
            {
              g_variant_builder_clear (&builder);
              return NULL;
            }
          g_variant_builder_add_value (&builder, child);
        }
    }
  return g_variant_builder_end (&builder);
}

/* A tuple or a dict entry is a JSON array of as many items. */
static GVariant *
json_to_tuple (JsonNode            *node,
               const GVariantType  *type,
               const char          *path,
               GError             **error)
{
  g_autoptr(GPtrArray) children = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
  gsize n_items = g_variant_type_n_items (type);
  const GVariantType *item = g_variant_type_first (type);
  JsonArray *array;

  if (!JSON_NODE_HOLDS_ARRAY (node))
    return mismatch (node, type, path, "an array", error);
  array = json_node_get_array (node);
  if (json_array_get_length (array) != n_items)
    {
      g_set_error (error, QIPC_JSON_ERROR, 0, "At %s: type \"%.*s\" needs an array of %" G_GSIZE_FORMAT
                   " items, not %u", path, (int) g_variant_type_get_string_length (type),
                   g_variant_type_peek_string (type), n_items, json_array_get_length (array));
      return NULL;
    }
  for (guint i = 0; item != NULL; i++, item = g_variant_type_next (item))
    {
      g_autofree char *child_path = g_strdup_printf ("%s[%u]", path, i);
      GVariant *child = _qipc_json_to_variant (json_array_get_element (array, i), item, child_path, error);

      if (child == NULL)
        return NULL;
      g_ptr_array_add (children, g_variant_ref_sink (child));
    }
  if (g_variant_type_is_dict_entry (type))
    return g_variant_new_dict_entry (children->pdata[0], children->pdata[1]);
  return g_variant_new_tuple ((GVariant **) children->pdata, n_items);
}

/* A variant is {"type": T, "value": V} when written with
 * QIPC_JSON_TYPED_VARIANTS (so that it reads back with its type), else
 * any JSON value, of the type json_infer() gives it. */
static GVariant *
variant_from_json (JsonNode    *node,
                   const char  *path,
                   GError     **error)
{
  GVariant *child;

  if (JSON_NODE_HOLDS_OBJECT (node) && json_object_get_size (json_node_get_object (node)) == 2)
    {
      JsonObject *object = json_node_get_object (node);
      JsonNode *type = json_object_get_member (object, "type");
      JsonNode *value = json_object_get_member (object, "value");

      if (type != NULL && value != NULL && json_is (type, G_TYPE_STRING) &&
          g_variant_type_string_is_valid (json_node_get_string (type)) &&
          g_variant_type_is_definite (G_VARIANT_TYPE (json_node_get_string (type))))
        {
          g_autofree char *child_path = g_strdup_printf ("%s.value", path);

          child = _qipc_json_to_variant (value, G_VARIANT_TYPE (json_node_get_string (type)),
                                         child_path, error);
          return child != NULL ? g_variant_new_variant (child) : NULL;
        }
    }
  child = json_infer (node, path, error);
  return child != NULL ? g_variant_new_variant (child) : NULL;
}

GVariant *
_qipc_json_to_variant (JsonNode            *node,
                       const GVariantType  *type,
                       const char          *path,
                       GError             **error)
{
  if (type == NULL)
    return json_infer (node, path, error);

  switch (*g_variant_type_peek_string (type))
    {
    case 'b':
      if (!json_is (node, G_TYPE_BOOLEAN))
        return mismatch (node, type, path, "true or false", error);
      return g_variant_new_boolean (json_node_get_boolean (node));
    case 'y': case 'n': case 'q': case 'i': case 'u': case 'x': case 't': case 'h':
      return integer_to_variant (node, type, path, error);
    case 'd':
      return double_to_variant (node, type, path, error);
    case 's': case 'o': case 'g':
      return string_to_variant (node, type, path, error);
    case 'v':
      return variant_from_json (node, path, error);
    case 'm':
      {
        GVariant *child = NULL;

        if (!JSON_NODE_HOLDS_NULL (node))
          {
            child = _qipc_json_to_variant (node, g_variant_type_element (type), path, error);
            if (child == NULL)
              return NULL;
          }
        return g_variant_new_maybe (g_variant_type_element (type), child);
      }
    case 'a':
      return json_to_array (node, type, path, error);
    case '(': case '{':
      return json_to_tuple (node, type, path, error);
    default:
      return mismatch (node, type, path, "nothing JSON has", error);
    }
}

/* ------------------------------------------------------------------ */
/* GVariant → JSON                                                     */

/* A dictionary key as a JSON member name, which key_to_variant() reads
 * back: the key's own string (most keys: no copy), else text kept in
 * *@printed for the caller to free. */
static const char *
key_to_name (GVariant  *key,
             char     **printed)
{
  switch (g_variant_classify (key))
    {
    case G_VARIANT_CLASS_STRING:
    case G_VARIANT_CLASS_OBJECT_PATH:
    case G_VARIANT_CLASS_SIGNATURE:
      return g_variant_get_string (key, NULL);
    /* GVariant prints bytes in hexadecimal ("0x08"); the reader, like
     * every other integer key, wants decimal. */
    case G_VARIANT_CLASS_BYTE:
      return *printed = g_strdup_printf ("%u", g_variant_get_byte (key));
    case G_VARIANT_CLASS_DOUBLE:
      if (!isfinite (g_variant_get_double (key)))
        return nonfinite_to_name (g_variant_get_double (key));
      G_GNUC_FALLTHROUGH;
    default:
      return *printed = g_variant_print (key, FALSE);
    }
}

/* Two keys of one dictionary would be one member of a JSON object (only
 * a sender can build such a dictionary: GVariant does not check), so
 * that is an error rather than a lost entry. */
static JsonNode *
dict_to_json (GVariant       *value,
              QipcJsonFlags   flags,
              GError        **error)
{
  g_autoptr(JsonObject) object = json_object_new ();
  gsize n = g_variant_n_children (value);

  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GVariant) entry = g_variant_get_child_value (value, i);
      g_autoptr(GVariant) key = g_variant_get_child_value (entry, 0);
      g_autoptr(GVariant) child = g_variant_get_child_value (entry, 1);
      g_autofree char *printed = NULL;
      const char *name = key_to_name (key, &printed);
      JsonNode *member;

      if (json_object_has_member (object, name))
        {
          g_set_error (error, QIPC_JSON_ERROR, 0,
                       "A dictionary holds the key \"%s\" twice, which JSON cannot", name);
          return NULL;
        }
      member = _qipc_json_from_variant (child, flags, error);
      if (member == NULL)
        return NULL;
      json_object_set_member (object, name, member);
    }
  return json_node_init_object (json_node_alloc (), object);
}

/* Tuples, dict entries and arrays other than bytes and dictionaries. */
static JsonNode *
items_to_json (GVariant       *value,
               QipcJsonFlags   flags,
               GError        **error)
{
  g_autoptr(JsonArray) array = json_array_new ();
  gsize n = g_variant_n_children (value);

  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GVariant) child = g_variant_get_child_value (value, i);
      JsonNode *item = _qipc_json_from_variant (child, flags, error);

      if (item == NULL)
        return NULL;
      json_array_add_element (array, item);
    }
  return json_node_init_array (json_node_alloc (), array);
}

/* Nothing is null, and "just" a value is the value: so the value must
 * not be null itself, as a maybe holding nothing is. */
static JsonNode *
maybe_to_json (GVariant       *value,
               QipcJsonFlags   flags,
               GError        **error)
{
  g_autoptr(GVariant) child = g_variant_get_maybe (value);

  if (child == NULL)
    return json_node_init_null (json_node_alloc ());
  if (g_variant_is_of_type (child, G_VARIANT_TYPE_MAYBE) && g_variant_n_children (child) == 0)
    {
      g_set_error (error, QIPC_JSON_ERROR, 0,
                   "A \"%s\" holds a maybe holding nothing, which JSON cannot tell from nothing",
                   g_variant_get_type_string (value));
      return NULL;
    }
  return _qipc_json_from_variant (child, flags, error);
}

static JsonNode *
variant_to_json (GVariant       *value,
                 QipcJsonFlags   flags,
                 GError        **error)
{
  g_autoptr(GVariant) child = g_variant_get_variant (value);
  g_autoptr(JsonObject) object = NULL;
  JsonNode *member;

  if (!(flags & QIPC_JSON_TYPED_VARIANTS))
    return _qipc_json_from_variant (child, flags, error);
  member = _qipc_json_from_variant (child, flags, error);
  if (member == NULL)
    return NULL;
  object = json_object_new ();
  json_object_set_string_member (object, "type", g_variant_get_type_string (child));
  json_object_set_member (object, "value", member);
  return json_node_init_object (json_node_alloc (), object);
}

JsonNode *
_qipc_json_from_variant (GVariant       *value,
                         QipcJsonFlags   flags,
                         GError        **error)
{
  switch (g_variant_classify (value))
    {
    case G_VARIANT_CLASS_BOOLEAN:
      return json_node_init_boolean (json_node_alloc (), g_variant_get_boolean (value));
    case G_VARIANT_CLASS_BYTE:
      return json_node_init_int (json_node_alloc (), g_variant_get_byte (value));
    case G_VARIANT_CLASS_INT16:
      return json_node_init_int (json_node_alloc (), g_variant_get_int16 (value));
    case G_VARIANT_CLASS_UINT16:
      return json_node_init_int (json_node_alloc (), g_variant_get_uint16 (value));
    case G_VARIANT_CLASS_INT32:
      return json_node_init_int (json_node_alloc (), g_variant_get_int32 (value));
    case G_VARIANT_CLASS_HANDLE:
      return json_node_init_int (json_node_alloc (), g_variant_get_handle (value));
    case G_VARIANT_CLASS_UINT32:
      return json_node_init_int (json_node_alloc (), g_variant_get_uint32 (value));
    case G_VARIANT_CLASS_INT64:
      return json_node_init_int (json_node_alloc (), g_variant_get_int64 (value));
    case G_VARIANT_CLASS_UINT64:
      {
        guint64 number = g_variant_get_uint64 (value);

        /* Beyond json-glib's integers: a decimal string, which reads
         * back as the same "t". */
        if (number > G_MAXINT64)
          {
            char text[24];

            g_snprintf (text, sizeof text, "%" G_GUINT64_FORMAT, number);
            return json_node_init_string (json_node_alloc (), text);
          }
        return json_node_init_int (json_node_alloc (), number);
      }
    case G_VARIANT_CLASS_DOUBLE:
      {
        double number = g_variant_get_double (value);

        if (!isfinite (number))
          return json_node_init_string (json_node_alloc (), nonfinite_to_name (number));
        return json_node_init_double (json_node_alloc (), number);
      }
    case G_VARIANT_CLASS_STRING:
    case G_VARIANT_CLASS_OBJECT_PATH:
    case G_VARIANT_CLASS_SIGNATURE:
      return json_node_init_string (json_node_alloc (), g_variant_get_string (value, NULL));
    case G_VARIANT_CLASS_VARIANT:
      return variant_to_json (value, flags, error);
    case G_VARIANT_CLASS_MAYBE:
      return maybe_to_json (value, flags, error);
    case G_VARIANT_CLASS_ARRAY:
      if (g_variant_is_of_type (value, G_VARIANT_TYPE_BYTESTRING))
        {
          gsize length;
          const guchar *bytes = g_variant_get_fixed_array (value, &length, 1);
          g_autofree char *text = g_base64_encode (bytes, length);

          return json_node_init_string (json_node_alloc (), text);
        }
      if (g_variant_type_is_dict_entry (g_variant_type_element (g_variant_get_type (value))))
        return dict_to_json (value, flags, error);
      G_GNUC_FALLTHROUGH;
    case G_VARIANT_CLASS_TUPLE:
    case G_VARIANT_CLASS_DICT_ENTRY:
    default:
      return items_to_json (value, flags, error);
    }
}

/* ------------------------------------------------------------------ */
/* Messages: the MQTT transport's JSON payloads                        */

static void
write_string (const char *text,
              GString    *out)
{
  g_string_append_c (out, '"');
  for (const char *p = text; *p != '\0'; p++)
    {
      switch (*p)
        {
        case '"':  g_string_append (out, "\\\""); break;
        case '\\': g_string_append (out, "\\\\"); break;
        case '\b': g_string_append (out, "\\b"); break;
        case '\f': g_string_append (out, "\\f"); break;
        case '\n': g_string_append (out, "\\n"); break;
        case '\r': g_string_append (out, "\\r"); break;
        case '\t': g_string_append (out, "\\t"); break;
        default:
          if ((guchar) *p < 0x20)
            g_string_append_printf (out, "\\u%04x", (guint) (guchar) *p);
          else
            g_string_append_c (out, *p);
        }
    }
  g_string_append_c (out, '"');
}

/* JSON has no NaN or infinity: _qipc_json_from_variant() wrote those as
 * strings already. "%.17g" gives the shortest text that reads back as the
 * same double; a ".0" keeps an integral value a floating-point number
 * for readers that care. */
static void
write_double (double   value,
              GString *out)
{
  char buffer[G_ASCII_DTOSTR_BUF_SIZE];

  g_ascii_formatd (buffer, sizeof buffer, "%.17g", value);
  g_string_append (out, buffer);
  if (strpbrk (buffer, ".eE") == NULL)
    g_string_append (out, ".0");
}

void
_qipc_json_write (JsonNode *node,
                  GString  *out)
{
  switch (JSON_NODE_TYPE (node))
    {
    case JSON_NODE_NULL:
      g_string_append (out, "null");
      break;
    case JSON_NODE_VALUE:
      switch (json_node_get_value_type (node))
        {
        case G_TYPE_INT64:
          g_string_append_printf (out, "%" G_GINT64_FORMAT, json_node_get_int (node));
          break;
        case G_TYPE_DOUBLE:
          write_double (json_node_get_double (node), out);
          break;
        case G_TYPE_BOOLEAN:
          g_string_append (out, json_node_get_boolean (node) ? "true" : "false");
          break;
        default:
          write_string (json_node_get_string (node), out);
        }
      break;
    case JSON_NODE_ARRAY:
      {
        JsonArray *array = json_node_get_array (node);

        g_string_append_c (out, '[');
        for (guint i = 0; i < json_array_get_length (array); i++)
          {
            if (i > 0)
              g_string_append_c (out, ',');
            _qipc_json_write (json_array_get_element (array, i), out);
          }
        g_string_append_c (out, ']');
      }
      break;
    case JSON_NODE_OBJECT:
      {
        JsonObject *object = json_node_get_object (node);
        g_autoptr(GList) members = json_object_get_members (object);

        g_string_append_c (out, '{');
        for (GList *l = members; l != NULL; l = l->next)
          {
            if (l != members)
              g_string_append_c (out, ',');
            write_string (l->data, out);
            g_string_append_c (out, ':');
            _qipc_json_write (json_object_get_member (object, l->data), out);
          }
        g_string_append_c (out, '}');
      }
      break;
    default:
      g_assert_not_reached ();
    }
}

/* Written by hand: this runs for every message, and json-glib 1.6's
 * generator writes 1e+40 as "1e+40.0", which no JSON reader (json-glib
 * included) accepts. */
GBytes *
_qipc_json_encode_message (const char  *message,
                           GVariant    *data,
                           GError     **error)
{
  g_autoptr(JsonNode) node = NULL;
  GString *text;
  gsize length;

  if (data != NULL)
    {
      node = _qipc_json_from_variant (data, QIPC_JSON_TYPED_VARIANTS, error);
      if (node == NULL)
        return NULL;
    }
  text = g_string_sized_new (128);
  g_string_append (text, "{\"message\":");
  write_string (message, text);
  if (data != NULL)
    {
      g_string_append (text, ",\"data\":");
      _qipc_json_write (node, text);
      /* Type strings need no escaping. */
      g_string_append_printf (text, ",\"type\":\"%s\"", g_variant_get_type_string (data));
    }
  g_string_append_c (text, '}');
  length = text->len;
  return g_bytes_new_take (g_string_free (text, FALSE), length);
}

/* json-glib's parser recurses once per level of nesting, with no limit
 * of its own: text from anyone could overflow the stack. So the nesting
 * is counted first, outside strings. json-glib 1.6's lexer also takes
 * comments (from a '/' to the next '/') and strings in single quotes,
 * which JSON has not; a quote inside one of those would make the count
 * skip brackets the parser reads, so text with either is refused. */
gboolean
_qipc_json_check_depth (const char  *text,
                        gssize       length,
                        GError     **error)
{
  gsize size = length < 0 ? strlen (text) : (gsize) length;
  gsize depth = 0;
  gboolean ended = FALSE;

  for (gsize i = 0; i < size; i++)
    {
      /* json-glib reads on after the first value ("{} {}") and keeps
       * that one: anything after a closed object or array is refused. */
      if (ended && !g_ascii_isspace (text[i]))
        {
          g_set_error (error, QIPC_JSON_ERROR, 0, "Text after the JSON value, at byte %" G_GSIZE_FORMAT, i);
          return FALSE;
        }
      switch (text[i])
        {
        case '"':
          for (i++; i < size && text[i] != '"'; i++)
            if (text[i] == '\\')
              i++;
          break;
        case '/': case '\'':
          g_set_error (error, QIPC_JSON_ERROR, 0,
                       "A comment or a string in single quotes at byte %" G_GSIZE_FORMAT
                       ": JSON has neither", i);
          return FALSE;
        case '[': case '{':
          if (++depth > QIPC_JSON_MAX_DEPTH)
            {
              g_set_error (error, QIPC_JSON_ERROR, 0, "JSON nested deeper than %d levels",
                           QIPC_JSON_MAX_DEPTH);
              return FALSE;
            }
          break;
        case ']': case '}':
          if (depth > 0 && --depth == 0)
            ended = TRUE;
          break;
        default:
          break;
        }
    }
  return TRUE;
}

/* Counts the members json-glib has parsed into each object: fewer in
 * the object than parsed means a name came twice. */
static void
on_object_member (JsonParser *parser,
                  JsonObject *object,
                  const char *name,
                  gpointer    user_data)
{
  QipcJsonStrict *check = user_data;
  guint parsed = GPOINTER_TO_UINT (g_hash_table_lookup (check->parsed, object)) + 1;

  g_hash_table_insert (check->parsed, object, GUINT_TO_POINTER (parsed));
  if (parsed > json_object_get_size (object) && check->duplicate == NULL)
    /* The position is that of the end of the second value, as json-glib's
     * own messages give the position where it stopped. */
    check->duplicate = g_error_new (QIPC_JSON_ERROR, 0, "%s:%u:%u: key \"%s\" is given twice",
                                    check->source, json_parser_get_current_line (parser),
                                    json_parser_get_current_pos (parser), name);
}

void
_qipc_json_strict_start (QipcJsonStrict *check,
                         JsonParser     *parser,
                         const char     *source)
{
  check->parser = parser;
  check->source = source;
  check->duplicate = NULL;
  /* Objects live as long as the parse: their addresses are not reused. */
  check->parsed = g_hash_table_new (NULL, NULL);
  check->handler = g_signal_connect (parser, "object-member", G_CALLBACK (on_object_member), check);
}

gboolean
_qipc_json_strict_finish (QipcJsonStrict  *check,
                          gboolean         loaded,
                          GError         **error)
{
  g_signal_handler_disconnect (check->parser, check->handler);
  g_hash_table_unref (check->parsed);
  if (loaded && check->duplicate != NULL)
    {
      g_propagate_error (error, check->duplicate);
      return FALSE;
    }
  g_clear_error (&check->duplicate);
  /* json-glib also takes JavaScript's "var name = VALUE;". */
  if (loaded && json_parser_has_assignment (check->parser, NULL))
    {
      g_set_error (error, QIPC_JSON_ERROR, 0, "%s: an assignment (\"var … =\"), not JSON", check->source);
      return FALSE;
    }
  return loaded;
}

gboolean
_qipc_json_load (JsonParser  *parser,
                 const char  *text,
                 gssize       length,
                 GError     **error)
{
  QipcJsonStrict check;
  gboolean loaded;

  if (!_qipc_json_check_depth (text, length, error))
    return FALSE;
  /* json-glib's own messages name data "<data>". */
  _qipc_json_strict_start (&check, parser, "<data>");
  loaded = json_parser_load_from_data (parser, text, length, error);
  return _qipc_json_strict_finish (&check, loaded, error);
}

static gboolean
decode_message (JsonParser  *parser,
                const void  *payload,
                gsize        length,
                char       **message,
                GVariant   **data,
                GError     **error)
{
  JsonObject *object;
  JsonNode *root, *name, *value, *type;
  const GVariantType *variant_type = NULL;

  if (!_qipc_json_load (parser, payload, (gssize) length, error))
    return FALSE;
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error_literal (error, QIPC_JSON_ERROR, 0, "not a JSON object");
      return FALSE;
    }
  object = json_node_get_object (root);
  name = json_object_get_member (object, "message");
  value = json_object_get_member (object, "data");
  type = json_object_get_member (object, "type");
  if (name == NULL || !JSON_NODE_HOLDS_VALUE (name) ||
      json_node_get_value_type (name) != G_TYPE_STRING ||
      !g_utf8_validate (json_node_get_string (name), -1, NULL))
    {
      g_set_error_literal (error, QIPC_JSON_ERROR, 0, "no \"message\" string of valid UTF-8");
      return FALSE;
    }
  if (type != NULL && !JSON_NODE_HOLDS_NULL (type))
    {
      const char *text = JSON_NODE_HOLDS_VALUE (type) &&
                         json_node_get_value_type (type) == G_TYPE_STRING
                         ? json_node_get_string (type) : NULL;

      if (text == NULL || !g_variant_type_string_is_valid (text) ||
          !g_variant_type_is_definite (G_VARIANT_TYPE (text)))
        {
          g_set_error_literal (error, QIPC_JSON_ERROR, 0, "\"type\" is not a definite GVariant type");
          return FALSE;
        }
      variant_type = G_VARIANT_TYPE (text);
    }
  *data = NULL;
  if (value != NULL && (!JSON_NODE_HOLDS_NULL (value) ||
                        (variant_type != NULL && g_variant_type_is_maybe (variant_type))))
    {
      *data = _qipc_json_to_variant (value, variant_type, "data", error);
      if (*data == NULL)
        return FALSE;
      g_variant_ref_sink (*data);
    }
  *message = g_strdup (json_node_get_string (name));
  return TRUE;
}

gboolean
_qipc_json_decode_message (JsonParser  *parser,
                           const void  *payload,
                           gsize        length,
                           char       **message,
                           GVariant   **data,
                           GError     **error)
{
  g_autoptr(GError) local_error = NULL;
  g_autofree char *text = NULL;

  *message = NULL;
  *data = NULL;
  if (decode_message (parser, payload, length, message, data, &local_error))
    return TRUE;
  /* Messages quote the bad input (json-glib's, and the member names in
   * qipc's paths), which need not be UTF-8. */
  text = g_utf8_make_valid (local_error->message, -1);
  g_set_error (error, local_error->domain, local_error->code, "%s", text);
  g_clear_pointer (data, g_variant_unref);
  return FALSE;
}
