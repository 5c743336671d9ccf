/* qipc-value.c: GValue <-> GVariant, and GObject <-> D-Bus names
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "qipc-value-private.h"

#include <string.h>

/**
 * qipc_remote_error_quark:
 *
 * The error domain of exported and mirrored objects.
 *
 * Returns: the quark of %QIPC_REMOTE_ERROR
 */
G_DEFINE_QUARK (qipc-remote-error-quark, qipc_remote_error)

/* ------------------------------------------------------------------ */
/* Types                                                               */

const char *
_qipc_value_type_string (GType            gtype,
                         QipcValueFlavor  flavor,
                         GError         **error)
{
  gboolean native = flavor == QIPC_VALUE_NATIVE;

  if (gtype == G_TYPE_STRV)
    return "as";
  if (gtype == G_TYPE_VARIANT)
    return native ? "mv" : "v";
  if (gtype == G_TYPE_BYTES)
    return native ? "may" : "ay";
  if (g_type_is_a (gtype, G_TYPE_OBJECT) || g_type_is_a (gtype, G_TYPE_INTERFACE))
    return "o";

  switch (G_TYPE_FUNDAMENTAL (gtype))
    {
    case G_TYPE_BOOLEAN: return "b";
    case G_TYPE_CHAR:
    case G_TYPE_INT:     return "i";
    case G_TYPE_UCHAR:   return "y";
    case G_TYPE_UINT:    return "u";
    case G_TYPE_LONG:
    case G_TYPE_INT64:   return "x";
    case G_TYPE_ULONG:
    case G_TYPE_UINT64:  return "t";
    case G_TYPE_FLOAT:
    case G_TYPE_DOUBLE:  return "d";
    case G_TYPE_STRING:  return native ? "ms" : "s";
    case G_TYPE_ENUM:    return "i";
    case G_TYPE_FLAGS:   return "u";
    default:
      g_set_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_UNSUPPORTED_TYPE,
                   "type %s, which cannot be carried between processes", g_type_name (gtype));
      return NULL;
    }
}

/* ------------------------------------------------------------------ */
/* Objects by path                                                     */

G_LOCK_DEFINE_STATIC (objects);
static GHashTable *objects_by_path;  /* path -> GObject (weak) */
static GQuark path_quark;

void
_qipc_value_register_object (GObject    *object,
                             const char *path)
{
  G_LOCK (objects);
  if (objects_by_path == NULL)
    {
      objects_by_path = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      path_quark = g_quark_from_static_string ("qipc-value-object-path");
    }
  g_hash_table_insert (objects_by_path, g_strdup (path), object);
  g_object_set_qdata_full (object, path_quark, g_strdup (path), g_free);
  G_UNLOCK (objects);
}

void
_qipc_value_unregister_object (GObject *object)
{
  const char *path;

  G_LOCK (objects);
  path = objects_by_path != NULL ? g_object_get_qdata (object, path_quark) : NULL;
  if (path != NULL && g_hash_table_lookup (objects_by_path, path) == object)
    g_hash_table_remove (objects_by_path, path);
  if (path != NULL)
    g_object_set_qdata (object, path_quark, NULL);
  G_UNLOCK (objects);
}

GObject *
_qipc_value_lookup_object (const char *path)
{
  GObject *object;

  G_LOCK (objects);
  object = objects_by_path != NULL ? g_hash_table_lookup (objects_by_path, path) : NULL;
  G_UNLOCK (objects);
  return object;
}

static const char *
object_path (GObject *object)
{
  const char *path = NULL;

  G_LOCK (objects);
  if (object != NULL && objects_by_path != NULL)
    path = g_object_get_qdata (object, path_quark);
  G_UNLOCK (objects);
  return path != NULL ? path : "/";
}

/* ------------------------------------------------------------------ */
/* Values                                                              */

static GVariant *
maybe_of (GVariant        *value,
          const char      *type,
          QipcValueFlavor  flavor)
{
  if (flavor == QIPC_VALUE_DBUS)
    return value;
  return g_variant_new_maybe (G_VARIANT_TYPE (type), value);
}

static GVariant *
bytes_to_variant (GBytes          *bytes,
                  QipcValueFlavor  flavor)
{
  if (bytes == NULL)
    return flavor == QIPC_VALUE_DBUS
      ? g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, NULL, 0, 1)
      : g_variant_new_maybe (G_VARIANT_TYPE_BYTESTRING, NULL);
  return maybe_of (g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING, bytes, TRUE),
                   "ay", flavor);
}

static GVariant *
variant_to_variant (GVariant        *inner,
                    QipcValueFlavor  flavor)
{
  if (inner == NULL)
    return flavor == QIPC_VALUE_DBUS
      ? g_variant_new_variant (g_variant_new_tuple (NULL, 0))
      : g_variant_new_maybe (G_VARIANT_TYPE_VARIANT, NULL);
  return maybe_of (g_variant_new_variant (inner), "v", flavor);
}

static GVariant *
string_to_variant (const char      *string,
                   QipcValueFlavor  flavor)
{
  if (flavor == QIPC_VALUE_DBUS)
    return g_variant_new_string (string != NULL ? string : "");
  return g_variant_new_maybe (G_VARIANT_TYPE_STRING,
                              string != NULL ? g_variant_new_string (string) : NULL);
}

GVariant *
_qipc_value_to_variant (const GValue     *value,
                        QipcValueFlavor   flavor,
                        GError          **error)
{
  GType gtype = G_VALUE_TYPE (value);

  if (_qipc_value_type_string (gtype, flavor, error) == NULL)
    return NULL;
  if (gtype == G_TYPE_STRV)
    {
      const char * const *strv = g_value_get_boxed (value);

      return g_variant_new_strv (strv, strv != NULL ? -1 : 0);
    }
  if (gtype == G_TYPE_VARIANT)
    return variant_to_variant (g_value_get_variant (value), flavor);
  if (gtype == G_TYPE_BYTES)
    return bytes_to_variant (g_value_get_boxed (value), flavor);
  if (G_VALUE_HOLDS_OBJECT (value))
    return g_variant_new_object_path (object_path (g_value_get_object (value)));

  switch (G_TYPE_FUNDAMENTAL (gtype))
    {
    case G_TYPE_BOOLEAN: return g_variant_new_boolean (g_value_get_boolean (value));
    case G_TYPE_CHAR:    return g_variant_new_int32 (g_value_get_schar (value));
    case G_TYPE_INT:     return g_variant_new_int32 (g_value_get_int (value));
    case G_TYPE_UCHAR:   return g_variant_new_byte (g_value_get_uchar (value));
    case G_TYPE_UINT:    return g_variant_new_uint32 (g_value_get_uint (value));
    case G_TYPE_LONG:    return g_variant_new_int64 (g_value_get_long (value));
    case G_TYPE_INT64:   return g_variant_new_int64 (g_value_get_int64 (value));
    case G_TYPE_ULONG:   return g_variant_new_uint64 (g_value_get_ulong (value));
    case G_TYPE_UINT64:  return g_variant_new_uint64 (g_value_get_uint64 (value));
    case G_TYPE_FLOAT:   return g_variant_new_double (g_value_get_float (value));
    case G_TYPE_DOUBLE:  return g_variant_new_double (g_value_get_double (value));
    case G_TYPE_STRING:  return string_to_variant (g_value_get_string (value), flavor);
    case G_TYPE_ENUM:    return g_variant_new_int32 (g_value_get_enum (value));
    case G_TYPE_FLAGS:   return g_variant_new_uint32 (g_value_get_flags (value));
    default:             g_assert_not_reached ();
    }
}

/* Unwraps the native flavour's maybe; NULL for "nothing". */
static GVariant *
unwrap (GVariant        *variant,
        QipcValueFlavor  flavor)
{
  if (flavor == QIPC_VALUE_DBUS)
    return g_variant_ref (variant);
  return g_variant_get_maybe (variant);
}

static gboolean
object_from_variant (GVariant  *variant,
                     GValue    *value,
                     GError   **error)
{
  GObject *object = _qipc_value_lookup_object (g_variant_get_string (variant, NULL));

  if (object != NULL && !g_type_is_a (G_OBJECT_TYPE (object), G_VALUE_TYPE (value)))
    {
      g_set_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_INVALID_ARGUMENTS,
                   "the object at %s is a %s, not a %s", g_variant_get_string (variant, NULL),
                   G_OBJECT_TYPE_NAME (object), g_type_name (G_VALUE_TYPE (value)));
      return FALSE;
    }
  g_value_set_object (value, object);
  return TRUE;
}

static void
boxed_from_variant (GVariant        *variant,
                    GValue          *value,
                    QipcValueFlavor  flavor)
{
  GType gtype = G_VALUE_TYPE (value);
  g_autoptr(GVariant) inner = unwrap (variant, flavor);

  if (gtype == G_TYPE_STRV)
    g_value_take_boxed (value, g_variant_dup_strv (variant, NULL));
  else if (gtype == G_TYPE_VARIANT && inner != NULL)
    g_value_take_variant (value, g_variant_get_variant (inner));
  else if (gtype == G_TYPE_BYTES && inner != NULL)
    g_value_take_boxed (value, g_variant_get_data_as_bytes (inner));
}

gboolean
_qipc_value_from_variant (GVariant         *variant,
                          GValue           *value,
                          QipcValueFlavor   flavor,
                          GError          **error)
{
  GType gtype = G_VALUE_TYPE (value);
  const char *type = _qipc_value_type_string (gtype, flavor, error);

  if (type == NULL)
    return FALSE;
  if (!g_variant_is_of_type (variant, G_VARIANT_TYPE (type)))
    {
      g_set_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_INVALID_ARGUMENTS,
                   "expected a value of type '%s' for %s, got '%s'", type,
                   g_type_name (gtype), g_variant_get_type_string (variant));
      return FALSE;
    }
  if (gtype == G_TYPE_STRV || gtype == G_TYPE_VARIANT || gtype == G_TYPE_BYTES)
    {
      boxed_from_variant (variant, value, flavor);
      return TRUE;
    }
  if (G_VALUE_HOLDS_OBJECT (value))
    return object_from_variant (variant, value, error);

  switch (G_TYPE_FUNDAMENTAL (gtype))
    {
    case G_TYPE_BOOLEAN: g_value_set_boolean (value, g_variant_get_boolean (variant)); break;
    case G_TYPE_CHAR:    g_value_set_schar (value, (gint8) g_variant_get_int32 (variant)); break;
    case G_TYPE_INT:     g_value_set_int (value, g_variant_get_int32 (variant)); break;
    case G_TYPE_UCHAR:   g_value_set_uchar (value, g_variant_get_byte (variant)); break;
    case G_TYPE_UINT:    g_value_set_uint (value, g_variant_get_uint32 (variant)); break;
    case G_TYPE_LONG:    g_value_set_long (value, (glong) g_variant_get_int64 (variant)); break;
    case G_TYPE_INT64:   g_value_set_int64 (value, g_variant_get_int64 (variant)); break;
    case G_TYPE_ULONG:   g_value_set_ulong (value, (gulong) g_variant_get_uint64 (variant)); break;
    case G_TYPE_UINT64:  g_value_set_uint64 (value, g_variant_get_uint64 (variant)); break;
    case G_TYPE_FLOAT:   g_value_set_float (value, (float) g_variant_get_double (variant)); break;
    case G_TYPE_DOUBLE:  g_value_set_double (value, g_variant_get_double (variant)); break;
    case G_TYPE_ENUM:    g_value_set_enum (value, g_variant_get_int32 (variant)); break;
    case G_TYPE_FLAGS:   g_value_set_flags (value, g_variant_get_uint32 (variant)); break;
    case G_TYPE_STRING:
      {
        g_autoptr(GVariant) inner = unwrap (variant, flavor);

        g_value_set_string (value, inner != NULL ? g_variant_get_string (inner, NULL) : NULL);
      }
      break;
    default:
      g_assert_not_reached ();
    }
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* Signal arguments                                                    */

static GType
param_type (const GSignalQuery *query,
            guint               i)
{
  return query->param_types[i] & ~G_SIGNAL_TYPE_STATIC_SCOPE;
}

char *
_qipc_value_signal_args_type (const GSignalQuery  *query,
                              QipcValueFlavor      flavor,
                              GError             **error)
{
  g_autoptr(GString) type = g_string_new ("(");

  for (guint i = 0; i < query->n_params; i++)
    {
      g_autoptr(GError) local_error = NULL;
      const char *arg = _qipc_value_type_string (param_type (query, i), flavor, &local_error);

      if (arg == NULL)
        {
          g_set_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_UNSUPPORTED_TYPE,
                       "Signal '%s' of %s: argument %u has %s", query->signal_name,
                       g_type_name (query->itype), i + 1, local_error->message);
          return NULL;
        }
      g_string_append (type, arg);
    }
  g_string_append_c (type, ')');
  return g_string_free (g_steal_pointer (&type), FALSE);
}

GVariant *
_qipc_value_args_to_tuple (const GValue     *params,
                           guint             n_params,
                           QipcValueFlavor   flavor,
                           GError          **error)
{
  g_autofree GVariant **children = g_new0 (GVariant *, n_params + 1);

  for (guint i = 0; i < n_params; i++)
    {
      children[i] = _qipc_value_to_variant (&params[i], flavor, error);
      if (children[i] == NULL)
        {
          for (guint j = 0; j < i; j++)
            g_variant_unref (g_variant_ref_sink (children[j]));
          return NULL;
        }
    }
  return g_variant_new_tuple (children, n_params);
}

gboolean
_qipc_value_args_from_tuple (GVariant            *tuple,
                             const GSignalQuery  *query,
                             GValue              *params,
                             QipcValueFlavor      flavor,
                             GError             **error)
{
  if (!g_variant_is_of_type (tuple, G_VARIANT_TYPE_TUPLE) ||
      g_variant_n_children (tuple) != query->n_params)
    {
      g_set_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_INVALID_ARGUMENTS,
                   "Signal '%s' takes %u arguments, got '%s'", query->signal_name,
                   query->n_params, g_variant_get_type_string (tuple));
      return FALSE;
    }
  memset (params, 0, sizeof (GValue) * query->n_params);
  for (guint i = 0; i < query->n_params; i++)
    {
      g_autoptr(GVariant) child = g_variant_get_child_value (tuple, i);

      g_value_init (&params[i], param_type (query, i));
      if (!_qipc_value_from_variant (child, &params[i], flavor, error))
        {
          g_prefix_error (error, "Signal '%s', argument %u: ", query->signal_name, i + 1);
          _qipc_value_args_clear (params, query->n_params);
          return FALSE;
        }
    }
  return TRUE;
}

void
_qipc_value_args_clear (GValue *params,
                        guint   n_params)
{
  for (guint i = 0; i < n_params; i++)
    if (G_IS_VALUE (&params[i]))
      g_value_unset (&params[i]);
}

/* ------------------------------------------------------------------ */
/* Names                                                               */

char *
_qipc_name_to_dbus (const char *name)
{
  GString *member = g_string_sized_new (strlen (name));
  gboolean upper = TRUE;

  for (const char *p = name; *p != '\0'; p++)
    {
      if (*p == '-' || *p == '_')
        {
          upper = TRUE;
          continue;
        }
      g_string_append_c (member, upper ? g_ascii_toupper (*p) : *p);
      upper = FALSE;
    }
  return g_string_free (member, FALSE);
}

char *
_qipc_name_from_dbus (const char *member)
{
  GString *name = g_string_sized_new (strlen (member) + 4);

  for (const char *p = member; *p != '\0'; p++)
    {
      if (g_ascii_isupper (*p) && p != member)
        g_string_append_c (name, '-');
      g_string_append_c (name, g_ascii_tolower (*p));
    }
  return g_string_free (name, FALSE);
}

char *
_qipc_dbus_interface_for_type (GType gtype)
{
  GString *name = g_string_new ("org.qipc.Object.");

  for (const char *p = g_type_name (gtype); *p != '\0'; p++)
    g_string_append_c (name, g_ascii_isalnum (*p) || *p == '_' ? *p : '_');
  return g_string_free (name, FALSE);
}
