/* qipc-dbus-export.c: a GObject's signals, properties and actions on D-Bus
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The class is the interface description: its signals, GParamSpecs and
 * action signals are turned into a GDBusInterfaceInfo when the object is
 * exported, so no XML or code generation step is needed and classes
 * written in Python or JavaScript export the same way as C ones. The
 * wire format (member names, argument types) is the contract mirrors
 * rely on; see docs/remote-objects.md.
 */

#include "qipc-dbus.h"
#include "qipc-remote-private.h"
#include "qipc-value-private.h"

typedef struct _Export Export;

/* One signal of the class, as a D-Bus signal and/or method. */
typedef struct
{
  Export *export;
  GSignalQuery query;
  char *member;
  gboolean as_signal;
  gboolean as_method;
} ExportedSignal;

/* One property of the class. */
typedef struct
{
  GParamSpec *pspec;
  char *member;
} ExportedProperty;

struct _Export
{
  GDBusConnection *connection;
  GObject *object;
  char *object_path;
  char *interface_name;
  guint id;
  GPtrArray *signals;                 /* ExportedSignal */
  GPtrArray *properties;              /* ExportedProperty */
  GHashTable *methods;                /* member -> ExportedSignal */
  GHashTable *properties_by_member;   /* member -> ExportedProperty */
  GHashTable *properties_by_pspec;    /* GParamSpec -> ExportedProperty */
  GArray *handler_ids;                /* gulong, on object */
  gboolean connected;                 /* handlers still connected */
  gboolean registered;                /* GDBus holds its reference */
  gatomicrefcount ref_count;          /* the table's and GDBus's */
};

/* Every live export, by registration id. */
G_LOCK_DEFINE_STATIC (exports);
static GHashTable *exports;

/* ------------------------------------------------------------------ */
/* The class as members                                               */

static void
exported_signal_free (gpointer data)
{
  ExportedSignal *signal = data;

  g_free (signal->member);
  g_free (signal);
}

static void
exported_property_free (gpointer data)
{
  ExportedProperty *property = data;

  g_param_spec_unref (property->pspec);
  g_free (property->member);
  g_free (property);
}

static gboolean
check_member_name (const char  *member,
                   const char  *what,
                   const char  *name,
                   GType        gtype,
                   GError     **error)
{
  if (g_dbus_is_member_name (member))
    return TRUE;
  g_set_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_INVALID_NAME,
               "%s '%s' of %s maps to '%s', which is not a D-Bus member name",
               what, name, g_type_name (gtype), member);
  return FALSE;
}

/* Whether @query's argument and return types can be carried; with
 * @skip, an unsupported signal is left out (FALSE, no error). */
static gboolean
signal_is_supported (const GSignalQuery  *query,
                     gboolean             needs_return,
                     GError             **error)
{
  g_autofree char *args = _qipc_value_signal_args_type (query, QIPC_VALUE_DBUS, error);
  GType return_type = query->return_type & ~G_SIGNAL_TYPE_STATIC_SCOPE;
  g_autoptr(GError) local_error = NULL;

  if (args == NULL)
    return FALSE;
  if (!needs_return || return_type == G_TYPE_NONE ||
      _qipc_value_type_string (return_type, QIPC_VALUE_DBUS, &local_error) != NULL)
    return TRUE;
  g_set_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_UNSUPPORTED_TYPE,
               "Signal '%s' of %s: the return value has %s", query->signal_name,
               g_type_name (query->itype), local_error->message);
  return FALSE;
}

/* Adds the signals that @gtype itself declares. */
static gboolean
collect_signals_of_type (Export           *export,
                         GType             gtype,
                         QipcExportFlags   flags,
                         GError          **error)
{
  gboolean skip = (flags & QIPC_EXPORT_FLAGS_SKIP_UNSUPPORTED) != 0;
  guint n_ids;
  g_autofree guint *ids = g_signal_list_ids (gtype, &n_ids);

  for (guint i = 0; i < n_ids; i++)
    {
      g_autoptr(GError) local_error = NULL;
      ExportedSignal *signal = g_new0 (ExportedSignal, 1);

      signal->export = export;
      g_signal_query (ids[i], &signal->query);
      signal->as_signal = (flags & QIPC_EXPORT_FLAGS_SIGNALS) != 0;
      signal->as_method = (flags & QIPC_EXPORT_FLAGS_ACTIONS) != 0 &&
                          (signal->query.signal_flags & G_SIGNAL_ACTION) != 0;
      signal->member = _qipc_name_to_dbus (signal->query.signal_name);
      if ((!signal->as_signal && !signal->as_method) ||
          (!signal_is_supported (&signal->query, signal->as_method, &local_error) && skip))
        {
          exported_signal_free (signal);
          continue;
        }
      g_ptr_array_add (export->signals, signal);
      if (local_error != NULL)
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return FALSE;
        }
      if (!check_member_name (signal->member, "Signal", signal->query.signal_name, gtype, error))
        return FALSE;
      if (signal->as_method)
        g_hash_table_insert (export->methods, signal->member, signal);
    }
  return TRUE;
}

/* The signals of the object's class, its ancestors below GObject (whose
 * "notify" is what PropertiesChanged is for) and its interfaces. */
static gboolean
collect_signals (Export           *export,
                 QipcExportFlags   flags,
                 GError          **error)
{
  GType gtype = G_OBJECT_TYPE (export->object);
  guint n_interfaces;
  g_autofree GType *interfaces = g_type_interfaces (gtype, &n_interfaces);

  for (GType type = gtype; type != G_TYPE_OBJECT; type = g_type_parent (type))
    if (!collect_signals_of_type (export, type, flags, error))
      return FALSE;
  for (guint i = 0; i < n_interfaces; i++)
    if (!collect_signals_of_type (export, interfaces[i], flags, error))
      return FALSE;
  return TRUE;
}

static gboolean
collect_properties (Export           *export,
                    QipcExportFlags   flags,
                    GError          **error)
{
  gboolean skip = (flags & QIPC_EXPORT_FLAGS_SKIP_UNSUPPORTED) != 0;
  guint n_pspecs;
  g_autofree GParamSpec **pspecs =
    g_object_class_list_properties (G_OBJECT_GET_CLASS (export->object), &n_pspecs);

  if ((flags & QIPC_EXPORT_FLAGS_PROPERTIES) == 0)
    return TRUE;

  for (guint i = 0; i < n_pspecs; i++)
    {
      GParamSpec *pspec = pspecs[i];
      g_autoptr(GError) local_error = NULL;
      ExportedProperty *property;

      if (pspec->owner_type == G_TYPE_OBJECT || (pspec->flags & G_PARAM_READWRITE) == 0)
        continue;
      if (_qipc_value_type_string (pspec->value_type, QIPC_VALUE_DBUS, &local_error) == NULL)
        {
          if (skip)
            continue;
          g_set_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_UNSUPPORTED_TYPE,
                       "Property '%s' of %s has %s", pspec->name,
                       G_OBJECT_TYPE_NAME (export->object), local_error->message);
          return FALSE;
        }
      property = g_new0 (ExportedProperty, 1);
      property->pspec = g_param_spec_ref (pspec);
      property->member = _qipc_name_to_dbus (pspec->name);
      g_ptr_array_add (export->properties, property);
      if (!check_member_name (property->member, "Property", pspec->name,
                              G_OBJECT_TYPE (export->object), error))
        return FALSE;
      g_hash_table_insert (export->properties_by_member, property->member, property);
      g_hash_table_insert (export->properties_by_pspec, pspec, property);
    }
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* Introspection data                                                  */

static GDBusArgInfo *
arg_info_new (const char         *name,
              const GVariantType *type)
{
  GDBusArgInfo *arg = g_new0 (GDBusArgInfo, 1);

  arg->ref_count = 1;
  arg->name = g_strdup (name);
  arg->signature = g_variant_type_dup_string (type);
  return arg;
}

/* One GDBusArgInfo per member of the tuple type @signature, named
 * arg0, arg1…, NULL-terminated. */
static GDBusArgInfo **
arg_infos_new (const char *signature)
{
  g_autoptr(GPtrArray) args = g_ptr_array_new ();
  guint n = 0;

  for (const GVariantType *type = g_variant_type_first (G_VARIANT_TYPE (signature));
       type != NULL; type = g_variant_type_next (type))
    {
      g_autofree char *name = g_strdup_printf ("arg%u", n++);

      g_ptr_array_add (args, arg_info_new (name, type));
    }
  g_ptr_array_add (args, NULL);
  return (GDBusArgInfo **) g_ptr_array_free (g_steal_pointer (&args), FALSE);
}

static GDBusArgInfo **
no_args (void)
{
  return g_new0 (GDBusArgInfo *, 1);
}

static GDBusAnnotationInfo **
no_annotations (void)
{
  return g_new0 (GDBusAnnotationInfo *, 1);
}

static GDBusSignalInfo *
signal_info_new (const ExportedSignal *signal)
{
  GDBusSignalInfo *info = g_new0 (GDBusSignalInfo, 1);
  g_autofree char *args = _qipc_value_signal_args_type (&signal->query, QIPC_VALUE_DBUS, NULL);

  info->ref_count = 1;
  info->name = g_strdup (signal->member);
  info->args = arg_infos_new (args);
  info->annotations = no_annotations ();
  return info;
}

static GDBusMethodInfo *
method_info_new (const ExportedSignal *signal)
{
  GDBusMethodInfo *info = g_new0 (GDBusMethodInfo, 1);
  g_autofree char *args = _qipc_value_signal_args_type (&signal->query, QIPC_VALUE_DBUS, NULL);
  GType return_type = signal->query.return_type & ~G_SIGNAL_TYPE_STATIC_SCOPE;

  info->ref_count = 1;
  info->name = g_strdup (signal->member);
  info->in_args = arg_infos_new (args);
  if (return_type == G_TYPE_NONE)
    info->out_args = no_args ();
  else
    {
      const char *type = _qipc_value_type_string (return_type, QIPC_VALUE_DBUS, NULL);

      info->out_args = g_new0 (GDBusArgInfo *, 2);
      info->out_args[0] = arg_info_new ("result", G_VARIANT_TYPE (type));
    }
  info->annotations = no_annotations ();
  return info;
}

static gboolean
property_is_writable (GParamSpec *pspec)
{
  return (pspec->flags & G_PARAM_WRITABLE) != 0 && (pspec->flags & G_PARAM_CONSTRUCT_ONLY) == 0;
}

static GDBusPropertyInfo *
property_info_new (const ExportedProperty *property)
{
  GDBusPropertyInfo *info = g_new0 (GDBusPropertyInfo, 1);
  GParamSpec *pspec = property->pspec;

  info->ref_count = 1;
  info->name = g_strdup (property->member);
  info->signature = g_strdup (_qipc_value_type_string (pspec->value_type, QIPC_VALUE_DBUS, NULL));
  if (pspec->flags & G_PARAM_READABLE)
    info->flags |= G_DBUS_PROPERTY_INFO_FLAGS_READABLE;
  if (property_is_writable (pspec))
    info->flags |= G_DBUS_PROPERTY_INFO_FLAGS_WRITABLE;
  info->annotations = no_annotations ();
  return info;
}

static GDBusInterfaceInfo *
interface_info_new (const Export *export)
{
  GDBusInterfaceInfo *info = g_new0 (GDBusInterfaceInfo, 1);
  g_autoptr(GPtrArray) signals = g_ptr_array_new ();
  g_autoptr(GPtrArray) methods = g_ptr_array_new ();
  g_autoptr(GPtrArray) properties = g_ptr_array_new ();

  for (guint i = 0; i < export->signals->len; i++)
    {
      const ExportedSignal *signal = g_ptr_array_index (export->signals, i);

      if (signal->as_signal)
        g_ptr_array_add (signals, signal_info_new (signal));
      if (signal->as_method)
        g_ptr_array_add (methods, method_info_new (signal));
    }
  for (guint i = 0; i < export->properties->len; i++)
    g_ptr_array_add (properties, property_info_new (g_ptr_array_index (export->properties, i)));
  g_ptr_array_add (signals, NULL);
  g_ptr_array_add (methods, NULL);
  g_ptr_array_add (properties, NULL);

  info->ref_count = 1;
  info->name = g_strdup (export->interface_name);
  info->signals = (GDBusSignalInfo **) g_ptr_array_free (g_steal_pointer (&signals), FALSE);
  info->methods = (GDBusMethodInfo **) g_ptr_array_free (g_steal_pointer (&methods), FALSE);
  info->properties = (GDBusPropertyInfo **) g_ptr_array_free (g_steal_pointer (&properties), FALSE);
  info->annotations = no_annotations ();
  return info;
}

/* ------------------------------------------------------------------ */
/* From the object to the bus                                          */

/* The marshaller of the closure connected to each exported signal:
 * param_values[0] is the object, the rest are the arguments. */
static void
signal_marshal (GClosure     *closure,
                GValue       *return_value,
                guint         n_param_values,
                const GValue *param_values,
                gpointer      invocation_hint,
                gpointer      marshal_data)
{
  ExportedSignal *signal = closure->data;
  Export *export = signal->export;
  g_autoptr(GError) error = NULL;
  GVariant *args = _qipc_value_args_to_tuple (param_values + 1, n_param_values - 1,
                                              QIPC_VALUE_DBUS, &error);

  /* Types were checked at export time: this cannot fail. */
  g_return_if_fail (args != NULL);
  g_dbus_connection_emit_signal (export->connection, NULL, export->object_path,
                                 export->interface_name, signal->member, args, NULL);
}

static GVariant *
property_to_variant (Export           *export,
                     ExportedProperty *property,
                     GError          **error)
{
  g_auto(GValue) value = G_VALUE_INIT;

  g_value_init (&value, property->pspec->value_type);
  g_object_get_property (export->object, property->pspec->name, &value);
  return _qipc_value_to_variant (&value, QIPC_VALUE_DBUS, error);
}

static void
on_notify (GObject    *object,
           GParamSpec *pspec,
           gpointer    user_data)
{
  Export *export = user_data;
  ExportedProperty *property = g_hash_table_lookup (export->properties_by_pspec, pspec);
  GVariantBuilder changed;
  GVariant *value;

  if (property == NULL || (pspec->flags & G_PARAM_READABLE) == 0)
    return;
  value = property_to_variant (export, property, NULL);
  g_return_if_fail (value != NULL);
  g_variant_builder_init (&changed, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&changed, "{sv}", property->member, value);
  g_dbus_connection_emit_signal (export->connection, NULL, export->object_path,
                                 "org.freedesktop.DBus.Properties", "PropertiesChanged",
                                 g_variant_new ("(sa{sv}as)", export->interface_name, &changed, NULL),
                                 NULL);
}

static void
connect_handlers (Export *export)
{
  for (guint i = 0; i < export->signals->len; i++)
    {
      ExportedSignal *signal = g_ptr_array_index (export->signals, i);
      GClosure *closure;
      gulong handler_id;

      if (!signal->as_signal)
        continue;
      closure = g_closure_new_simple (sizeof (GClosure), signal);
      g_closure_set_marshal (closure, signal_marshal);
      handler_id = g_signal_connect_closure_by_id (export->object, signal->query.signal_id,
                                                   0, closure, FALSE);
      g_array_append_val (export->handler_ids, handler_id);
    }
  if (export->properties->len > 0)
    {
      gulong handler_id = g_signal_connect (export->object, "notify", G_CALLBACK (on_notify), export);

      g_array_append_val (export->handler_ids, handler_id);
    }
  export->connected = TRUE;
}

/* Once the export is gone, nothing the object emits reaches the bus. */
static void
disconnect_handlers (Export *export)
{
  if (!g_atomic_int_compare_and_exchange (&export->connected, TRUE, FALSE))
    return;
  for (guint i = 0; i < export->handler_ids->len; i++)
    g_signal_handler_disconnect (export->object, g_array_index (export->handler_ids, gulong, i));
}

/* ------------------------------------------------------------------ */
/* From the bus to the object                                          */

static GVariant *
emit_action (Export         *export,
             ExportedSignal *action,
             GVariant       *parameters,
             GError        **error)
{
  guint n_params = action->query.n_params;
  GType return_type = action->query.return_type & ~G_SIGNAL_TYPE_STATIC_SCOPE;
  g_autofree GValue *values = g_new0 (GValue, n_params + 1);
  g_auto(GValue) result = G_VALUE_INIT;
  GVariant *reply;

  if (!_qipc_value_args_from_tuple (parameters, &action->query, values + 1, QIPC_VALUE_DBUS, error))
    return NULL;
  g_value_init (&values[0], G_OBJECT_TYPE (export->object));
  g_value_set_object (&values[0], export->object);
  if (return_type != G_TYPE_NONE)
    g_value_init (&result, return_type);

  g_signal_emitv (values, action->query.signal_id, 0, &result);

  if (return_type == G_TYPE_NONE)
    reply = g_variant_new_tuple (NULL, 0);
  else
    {
      GVariant *value = _qipc_value_to_variant (&result, QIPC_VALUE_DBUS, error);

      reply = value != NULL ? g_variant_new_tuple (&value, 1) : NULL;
    }
  g_value_unset (&values[0]);
  _qipc_value_args_clear (values + 1, n_params);
  return reply;
}

static void
method_call (GDBusConnection       *connection,
             const char            *sender,
             const char            *object_path,
             const char            *interface_name,
             const char            *method_name,
             GVariant              *parameters,
             GDBusMethodInvocation *invocation,
             gpointer               user_data)
{
  Export *export = user_data;
  ExportedSignal *action = g_hash_table_lookup (export->methods, method_name);
  g_autoptr(GError) error = NULL;
  GVariant *reply;

  /* GDBus checked the name and the argument types against the
   * introspection data. */
  g_assert (action != NULL);
  reply = emit_action (export, action, parameters, &error);
  if (reply == NULL)
    g_dbus_method_invocation_return_error_literal (invocation, G_DBUS_ERROR,
                                                   G_DBUS_ERROR_INVALID_ARGS, error->message);
  else
    g_dbus_method_invocation_return_value (invocation, reply);
}

static GVariant *
vtable_get_property (GDBusConnection  *connection,
                     const char       *sender,
                     const char       *object_path,
                     const char       *interface_name,
                     const char       *property_name,
                     GError          **error,
                     gpointer          user_data)
{
  Export *export = user_data;
  ExportedProperty *property = g_hash_table_lookup (export->properties_by_member, property_name);

  g_assert (property != NULL);
  return property_to_variant (export, property, error);
}

static gboolean
vtable_set_property (GDBusConnection  *connection,
                     const char       *sender,
                     const char       *object_path,
                     const char       *interface_name,
                     const char       *property_name,
                     GVariant         *variant,
                     GError          **error,
                     gpointer          user_data)
{
  Export *export = user_data;
  ExportedProperty *property = g_hash_table_lookup (export->properties_by_member, property_name);
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(GError) local_error = NULL;

  g_assert (property != NULL);
  g_value_init (&value, property->pspec->value_type);
  if (!_qipc_value_from_variant (variant, &value, QIPC_VALUE_DBUS, &local_error))
    {
      g_set_error (error, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS,
                   "Cannot set property %s of %s: %s", property_name,
                   export->interface_name, local_error->message);
      return FALSE;
    }
  /* GObject would only warn (fatal with G_DEBUG=fatal-warnings) and
   * keep the old value: the caller gets an error instead. */
  if (g_param_value_validate (property->pspec, &value))
    {
      g_set_error (error, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS,
                   "Cannot set property %s of %s: the value is out of its range",
                   property_name, export->interface_name);
      return FALSE;
    }
  g_object_set_property (export->object, property->pspec->name, &value);
  return TRUE;
}

static const GDBusInterfaceVTable vtable = {
  .method_call = method_call,
  .get_property = vtable_get_property,
  .set_property = vtable_set_property,
};

/* ------------------------------------------------------------------ */
/* Exports                                                             */

static Export *
export_new (GDBusConnection *connection,
            const char      *object_path,
            const char      *interface_name,
            GObject         *object)
{
  Export *export = g_new0 (Export, 1);

  g_atomic_ref_count_init (&export->ref_count);
  export->connection = g_object_ref (connection);
  export->object = g_object_ref (object);
  export->object_path = g_strdup (object_path);
  export->interface_name = interface_name != NULL
    ? g_strdup (interface_name)
    : _qipc_dbus_interface_for_type (G_OBJECT_TYPE (object));
  export->signals = g_ptr_array_new_with_free_func (exported_signal_free);
  export->properties = g_ptr_array_new_with_free_func (exported_property_free);
  export->methods = g_hash_table_new (g_str_hash, g_str_equal);
  export->properties_by_member = g_hash_table_new (g_str_hash, g_str_equal);
  export->properties_by_pspec = g_hash_table_new (NULL, NULL);
  export->handler_ids = g_array_new (FALSE, FALSE, sizeof (gulong));
  return export;
}

/* Lets the object go. */
static void
release_object (Export *export)
{
  if (export->object == NULL)
    return;
  disconnect_handlers (export);
  if (_qipc_value_lookup_object (export->object_path) == export->object)
    _qipc_value_unregister_object (export->object);
  g_clear_object (&export->object);
}

static Export *
export_ref (Export *export)
{
  g_atomic_ref_count_inc (&export->ref_count);
  return export;
}

static void
export_unref (gpointer data)
{
  Export *export = data;

  if (!g_atomic_ref_count_dec (&export->ref_count))
    return;
  release_object (export);
  g_array_unref (export->handler_ids);
  g_hash_table_unref (export->properties_by_pspec);
  g_hash_table_unref (export->properties_by_member);
  g_hash_table_unref (export->methods);
  g_ptr_array_unref (export->properties);
  g_ptr_array_unref (export->signals);
  g_free (export->interface_name);
  g_free (export->object_path);
  g_object_unref (export->connection);
  g_free (export);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Export, export_unref)

/* GDBus's reference: dropped when the object is unregistered, or (since
 * GLib 2.80, not before) when registering fails. */
static void
registration_released (gpointer data)
{
  Export *export = data;

  export->registered = FALSE;
  export_unref (export);
}

static gboolean
check_names (const char  *object_path,
             const char  *interface_name,
             GError     **error)
{
  if (!g_variant_is_object_path (object_path))
    {
      g_set_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_INVALID_NAME,
                   "'%s' is not a valid D-Bus object path", object_path);
      return FALSE;
    }
  if (interface_name != NULL && !g_dbus_is_interface_name (interface_name))
    {
      g_set_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_INVALID_NAME,
                   "'%s' is not a valid D-Bus interface name", interface_name);
      return FALSE;
    }
  return TRUE;
}

/* See QIPC_DBUS_EXPORT_INTERFACE. A connection that is closed sends
 * nothing, and has no one to tell. */
static void
announce (Export     *export,
          const char *signal_name)
{
  g_dbus_connection_emit_signal (export->connection, NULL, export->object_path,
                                 QIPC_DBUS_EXPORT_INTERFACE, signal_name,
                                 g_variant_new ("(s)", export->interface_name), NULL);
}

static gboolean
register_export (Export  *export,
                 GError **error)
{
  GDBusInterfaceInfo *info = interface_info_new (export);
  g_autoptr(GError) local_error = NULL;

  export->registered = TRUE;
  export->id = g_dbus_connection_register_object (export->connection, export->object_path, info,
                                                  &vtable, export_ref (export),
                                                  registration_released, &local_error);
  g_dbus_interface_info_unref (info);
  if (export->id != 0)
    return TRUE;
  if (export->registered)
    registration_released (export);
  if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_EXISTS))
    g_set_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_ALREADY_EXPORTED,
                 "An object is already exported at %s with interface %s",
                 export->object_path, export->interface_name);
  else
    g_propagate_error (error, g_steal_pointer (&local_error));
  return FALSE;
}

/**
 * qipc_dbus_export_object:
 * @connection: a D-Bus connection
 * @object_path: the object path to export @object at
 * @interface_name: (nullable): the D-Bus interface to export it as, or
 *   %NULL for `org.qipc.Object.` followed by the type name
 * @object: the object to export
 * @flags: what to export
 * @error: return location for a #GError
 *
 * Exports @object on @connection, as QtDBus's
 * `QDBusConnection::registerObject()` does, with no XML or code
 * generation: the object's class is the interface description.
 *
 * - With %QIPC_EXPORT_FLAGS_SIGNALS, every signal of the class and its
 *   ancestors up to (not including) #GObject, and of its interfaces, is a
 *   D-Bus signal: emitting `value-changed` on @object sends `ValueChanged`
 *   with the arguments converted as docs/remote-objects.md says.
 * - With %QIPC_EXPORT_FLAGS_PROPERTIES, the class's properties are D-Bus
 *   properties (`org.freedesktop.DBus.Properties`), readable and
 *   writable as their #GParamSpec says; when @object notifies one,
 *   `PropertiesChanged` carries its new value.
 * - With %QIPC_EXPORT_FLAGS_ACTIONS, every action signal
 *   (%G_SIGNAL_ACTION) is a D-Bus method: a call emits the signal on
 *   @object and returns the signal's return value as `result`.
 *
 * GObject names map to D-Bus names by capitalising each word and
 * dropping the dashes: `value-changed` becomes `ValueChanged`.
 *
 * A signal, action or property whose types D-Bus cannot carry fails the
 * export with %QIPC_REMOTE_ERROR_UNSUPPORTED_TYPE, naming it, its
 * argument and the type; with %QIPC_EXPORT_FLAGS_SKIP_UNSUPPORTED it is
 * left out instead.
 *
 * Method calls and property accesses are handled on the thread-default
 * main context of the calling thread; signals are sent from whichever
 * thread @object emits them in. The export keeps a reference on @object
 * and on @connection until [func@dbus_unexport_object], and makes
 * @object_path the path that other exported objects travel as when
 * they are `o` arguments.
 *
 * ```c
 * guint id = qipc_dbus_export_object (connection, "/org/example/Counter",
 *                                     "org.example.Counter", G_OBJECT (counter),
 *                                     QIPC_EXPORT_FLAGS_ALL, &error);
 * ```
 *
 * Returns: the export's id (never 0), or 0 with @error set; the
 *   errors are %QIPC_REMOTE_ERROR_INVALID_NAME for an invalid path or
 *   interface name, %QIPC_REMOTE_ERROR_ALREADY_EXPORTED when that path
 *   already has that interface, and %QIPC_REMOTE_ERROR_UNSUPPORTED_TYPE
 */
guint
qipc_dbus_export_object (GDBusConnection  *connection,
                         const char       *object_path,
                         const char       *interface_name,
                         GObject          *object,
                         QipcExportFlags   flags,
                         GError          **error)
{
  g_autoptr(Export) export = NULL;

  g_return_val_if_fail (G_IS_DBUS_CONNECTION (connection), 0);
  g_return_val_if_fail (object_path != NULL, 0);
  g_return_val_if_fail (G_IS_OBJECT (object), 0);
  g_return_val_if_fail (error == NULL || *error == NULL, 0);

  if (!check_names (object_path, interface_name, error))
    return 0;
  export = export_new (connection, object_path, interface_name, object);
  if (!collect_signals (export, flags, error) ||
      !collect_properties (export, flags, error) ||
      !register_export (export, error))
    return 0;
  announce (export, QIPC_DBUS_EXPORTED);

  _qipc_value_register_object (object, object_path);
  connect_handlers (export);
  G_LOCK (exports);
  if (exports == NULL)
    exports = g_hash_table_new (NULL, NULL);
  g_hash_table_insert (exports, GUINT_TO_POINTER (export->id), export);
  G_UNLOCK (exports);
  return g_steal_pointer (&export)->id;
}

/**
 * qipc_dbus_unexport_object:
 * @connection: the connection given to [func@dbus_export_object]
 * @id: the id it returned
 *
 * Ends an export: from now on nothing @object emits is sent, and the
 * object path no longer has the interface. The references on the object
 * and the connection are dropped.
 *
 * Returns: %TRUE if @id was an export on @connection
 */
gboolean
qipc_dbus_unexport_object (GDBusConnection *connection,
                           guint            id)
{
  Export *export = NULL;

  g_return_val_if_fail (G_IS_DBUS_CONNECTION (connection), FALSE);

  G_LOCK (exports);
  if (exports != NULL)
    export = g_hash_table_lookup (exports, GUINT_TO_POINTER (id));
  if (export != NULL && export->connection == connection)
    g_hash_table_remove (exports, GUINT_TO_POINTER (id));
  else
    export = NULL;
  G_UNLOCK (exports);

  if (export == NULL)
    return FALSE;
  disconnect_handlers (export);
  announce (export, QIPC_DBUS_UNEXPORTED);
  g_dbus_connection_unregister_object (connection, id);
  /* GDBus drops its reference later, from an idle callback; the object
   * goes now, as the caller expects. No call can reach it any more. */
  release_object (export);
  export_unref (export);
  return TRUE;
}
