/* qipc-bus-export.c: a GObject's signals and properties on qipc channels
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "qipc-bus-export.h"
#include "qipc-channel.h"
#include "qipc-remote-private.h"
#include "qipc-value-private.h"

typedef struct
{
  QipcBus *bus;                 /* not referenced: the bus holds us */
  guint id;
  char *path;
  GObject *object;
  QipcChannel *control;
  GArray *handlers;             /* gulong, on object */
  GHashTable *properties;       /* name -> GParamSpec, exported */
  GHashTable *actions;          /* signal id -> GSignalQuery, exported */
} Export;

typedef struct
{
  GClosure closure;
  Export *export;
  char *name;
} SignalClosure;

static guint last_id;

static GHashTable *
bus_exports (QipcBus *bus)
{
  GHashTable *exports = g_object_get_data (G_OBJECT (bus), "qipc-exports");

  if (exports == NULL)
    {
      exports = g_hash_table_new (NULL, NULL);
      g_object_set_data_full (G_OBJECT (bus), "qipc-exports", exports,
                              (GDestroyNotify) g_hash_table_unref);
    }
  return exports;
}

static Export *
find_path (GHashTable *exports,
           const char *path)
{
  GHashTableIter iter;
  Export *export;

  g_hash_table_iter_init (&iter, exports);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &export))
    if (g_str_equal (export->path, path))
      return export;
  return NULL;
}

static void
send_or_warn (Export     *export,
              const char *channel,
              const char *message,
              GVariant   *data)
{
  g_autofree char *who = g_strconcat ("Object ", export->path, NULL);

  _qipc_remote_send (export->bus, channel, message, data, who);
}

/* ------------------------------------------------------------------ */
/* Signals and properties going out                                   */

static void
signal_closure_finalize (gpointer  data,
                         GClosure *closure)
{
  g_free (((SignalClosure *) closure)->name);
}

static void
signal_marshal (GClosure     *closure,
                GValue       *return_value,
                guint         n_params,
                const GValue *params,
                gpointer      hint,
                gpointer      marshal_data)
{
  SignalClosure *sc = (SignalClosure *) closure;
  g_autoptr(GError) error = NULL;
  GVariant *args = _qipc_value_args_to_tuple (params + 1, n_params - 1, QIPC_VALUE_NATIVE, &error);

  if (args == NULL)
    g_warning ("Object %s, signal '%s': %s", sc->export->path, sc->name, error->message);
  else
    send_or_warn (sc->export, sc->export->path, sc->name, args);
}

static void
on_notify (GObject    *object,
           GParamSpec *pspec,
           Export     *export)
{
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(GError) error = NULL;
  g_autofree char *message = NULL;
  GVariant *variant;

  if (g_hash_table_lookup (export->properties, pspec->name) != pspec)
    return;
  g_value_init (&value, pspec->value_type);
  g_object_get_property (object, pspec->name, &value);
  variant = _qipc_value_to_variant (&value, QIPC_VALUE_NATIVE, &error);
  if (variant == NULL)
    {
      g_warning ("Object %s, property '%s': %s", export->path, pspec->name, error->message);
      return;
    }
  message = g_strconcat (QIPC_REMOTE_NOTIFY_PREFIX, pspec->name, NULL);
  send_or_warn (export, export->path, message, g_variant_new_variant (variant));
}

/* ------------------------------------------------------------------ */
/* Requests coming in                                                 */

static void
reply_error (Export     *export,
             const char *reply,
             guint64     request,
             GError     *error)
{
  guint code = error->domain == QIPC_REMOTE_ERROR ? (guint) error->code : QIPC_REMOTE_ERROR_FAILED;

  send_or_warn (export, reply, QIPC_REMOTE_ERROR_REPLY,
                g_variant_new ("(tus)", request, code, error->message));
}

static GVariant *
get_all (Export  *export)
{
  g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("a{sv}"));
  GHashTableIter iter;
  GParamSpec *pspec;

  g_hash_table_iter_init (&iter, export->properties);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &pspec))
    {
      g_auto(GValue) value = G_VALUE_INIT;
      GVariant *variant;

      g_value_init (&value, pspec->value_type);
      g_object_get_property (export->object, pspec->name, &value);
      /* Only exported properties are here: their types were checked. */
      variant = _qipc_value_to_variant (&value, QIPC_VALUE_NATIVE, NULL);
      if (variant != NULL)
        g_variant_builder_add (&builder, "{sv}", pspec->name, variant);
    }
  return g_variant_builder_end (&builder);
}

static gboolean
set_property (Export      *export,
              const char  *name,
              GVariant    *variant,
              GError     **error)
{
  GParamSpec *pspec = g_hash_table_lookup (export->properties, name);
  g_auto(GValue) value = G_VALUE_INIT;

  if (pspec == NULL || !(pspec->flags & G_PARAM_WRITABLE) ||
      (pspec->flags & G_PARAM_CONSTRUCT_ONLY))
    {
      g_set_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_NOT_FOUND,
                   "Object %s has no exported writable property '%s'", export->path, name);
      return FALSE;
    }
  g_value_init (&value, pspec->value_type);
  if (!_qipc_value_from_variant (variant, &value, QIPC_VALUE_NATIVE, error))
    {
      g_prefix_error (error, "Property '%s': ", name);
      return FALSE;
    }
  g_object_set_property (export->object, name, &value);
  return TRUE;
}

static GVariant *
call_action (Export      *export,
             const char  *name,
             GVariant    *args,
             GError     **error)
{
  guint id = g_signal_lookup (name, G_OBJECT_TYPE (export->object));
  GSignalQuery *query = id != 0 ? g_hash_table_lookup (export->actions, GUINT_TO_POINTER (id)) : NULL;
  g_autofree GValue *params = NULL;
  g_auto(GValue) ret = G_VALUE_INIT;
  GVariant *result = NULL;

  if (query == NULL)
    {
      g_set_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_NOT_FOUND,
                   "Object %s has no exported action '%s'", export->path, name);
      return NULL;
    }
  params = g_new0 (GValue, query->n_params + 1);
  if (!_qipc_value_args_from_tuple (args, query, params + 1, QIPC_VALUE_NATIVE, error))
    return NULL;
  g_value_init_from_instance (&params[0], export->object);
  if (query->return_type != G_TYPE_NONE)
    g_value_init (&ret, query->return_type & ~G_SIGNAL_TYPE_STATIC_SCOPE);
  g_signal_emitv (params, id, 0, query->return_type != G_TYPE_NONE ? &ret : NULL);
  if (query->return_type != G_TYPE_NONE)
    result = _qipc_value_to_variant (&ret, QIPC_VALUE_NATIVE, NULL);
  _qipc_value_args_clear (params, query->n_params + 1);
  return g_variant_new_maybe (G_VARIANT_TYPE_VARIANT,
                              result != NULL ? g_variant_new_variant (result) : NULL);
}

static void
on_request (QipcChannel *channel,
            const char  *message,
            GVariant    *data,
            Export      *export)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) inner = NULL;
  const char *reply, *name;
  guint64 request;

  if (g_str_equal (message, QIPC_REMOTE_GET_ALL) && data != NULL &&
      g_variant_is_of_type (data, G_VARIANT_TYPE ("(st)")))
    {
      g_variant_get (data, "(&st)", &reply, &request);
      send_or_warn (export, reply, QIPC_REMOTE_STATE,
                    g_variant_new ("(t@a{sv})", request, get_all (export)));
      return;
    }
  if (data == NULL || !g_variant_is_of_type (data, G_VARIANT_TYPE ("(stsv)")))
    return;  /* not ours to answer: no reply channel */
  g_variant_get (data, "(&st&sv)", &reply, &request, &name, &inner);
  if (g_str_equal (message, QIPC_REMOTE_SET_PROPERTY))
    {
      if (set_property (export, name, inner, &error))
        send_or_warn (export, reply, QIPC_REMOTE_RETURN,
                      g_variant_new ("(tmv)", request, NULL));
    }
  else if (g_str_equal (message, QIPC_REMOTE_CALL_ACTION))
    {
      GVariant *result = call_action (export, name, inner, &error);

      if (result != NULL)
        send_or_warn (export, reply, QIPC_REMOTE_RETURN,
                      g_variant_new ("(t@mv)", request, result));
    }
  else
    g_set_error (&error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_NOT_FOUND,
                 "Unknown request '%s'", message);
  if (error != NULL)
    reply_error (export, reply, request, error);
}

/* ------------------------------------------------------------------ */
/* Export                                                             */

static void
export_free (Export *export)
{
  for (guint i = 0; i < export->handlers->len; i++)
    g_signal_handler_disconnect (export->object, g_array_index (export->handlers, gulong, i));
  if (export->control != NULL)
    g_signal_handlers_disconnect_by_data (export->control, export);
  g_clear_object (&export->control);
  _qipc_value_unregister_object (export->object);
  g_clear_object (&export->object);
  g_array_unref (export->handlers);
  g_hash_table_unref (export->properties);
  g_hash_table_unref (export->actions);
  g_free (export->path);
  g_free (export);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Export, export_free)

static gboolean
refuse_or_skip (QipcExportFlags   flags,
                GError           *local_error,
                GError          **error)
{
  if (flags & QIPC_EXPORT_FLAGS_SKIP_UNSUPPORTED)
    {
      g_error_free (local_error);
      return TRUE;
    }
  g_propagate_error (error, local_error);
  return FALSE;
}

static gboolean
add_signals (Export           *export,
             QipcExportFlags   flags,
             GError          **error)
{
  g_autoptr(GArray) queries = _qipc_remote_list_signals (G_OBJECT_TYPE (export->object));

  for (guint i = 0; i < queries->len; i++)
    {
      GSignalQuery *query = &g_array_index (queries, GSignalQuery, i);
      gboolean action = _qipc_remote_is_action (query);
      GError *local_error = NULL;
      g_autofree char *type = NULL;

      if (!(flags & (action ? QIPC_EXPORT_FLAGS_ACTIONS : QIPC_EXPORT_FLAGS_SIGNALS)))
        continue;
      type = _qipc_value_signal_args_type (query, QIPC_VALUE_NATIVE, &local_error);
      if (type != NULL && action && query->return_type != G_TYPE_NONE &&
          _qipc_value_type_string (query->return_type & ~G_SIGNAL_TYPE_STATIC_SCOPE,
                                   QIPC_VALUE_NATIVE, &local_error) == NULL)
        g_prefix_error (&local_error, "Action '%s' of %s returns ", query->signal_name,
                        g_type_name (query->itype));
      if (local_error != NULL)
        {
          if (!refuse_or_skip (flags, local_error, error))
            return FALSE;
          continue;
        }
      if (action)
        g_hash_table_insert (export->actions, GUINT_TO_POINTER (query->signal_id),
                             g_memdup2 (query, sizeof *query));
    }
  return TRUE;
}

static void
connect_signals (Export          *export,
                 QipcExportFlags  flags)
{
  g_autoptr(GArray) queries = _qipc_remote_list_signals (G_OBJECT_TYPE (export->object));

  for (guint i = 0; i < queries->len && (flags & QIPC_EXPORT_FLAGS_SIGNALS); i++)
    {
      GSignalQuery *query = &g_array_index (queries, GSignalQuery, i);
      g_autofree char *type = NULL;
      SignalClosure *sc;
      gulong handler;

      if (_qipc_remote_is_action (query))
        continue;
      type = _qipc_value_signal_args_type (query, QIPC_VALUE_NATIVE, NULL);
      if (type == NULL)
        continue;  /* skipped by add_signals */
      sc = (SignalClosure *) g_closure_new_simple (sizeof (SignalClosure), NULL);
      sc->export = export;
      sc->name = g_strdup (query->signal_name);
      g_closure_add_finalize_notifier (&sc->closure, NULL, signal_closure_finalize);
      g_closure_set_marshal (&sc->closure, signal_marshal);
      handler = g_signal_connect_closure_by_id (export->object, query->signal_id, 0,
                                                &sc->closure, FALSE);
      g_array_append_val (export->handlers, handler);
    }
}

static gboolean
add_properties (Export           *export,
                QipcExportFlags   flags,
                GError          **error)
{
  guint n_pspecs;
  g_autofree GParamSpec **pspecs = NULL;

  if (!(flags & QIPC_EXPORT_FLAGS_PROPERTIES))
    return TRUE;
  pspecs = g_object_class_list_properties (G_OBJECT_GET_CLASS (export->object), &n_pspecs);
  for (guint i = 0; i < n_pspecs; i++)
    {
      GError *local_error = NULL;

      if (!(pspecs[i]->flags & G_PARAM_READABLE))
        continue;
      if (_qipc_value_type_string (pspecs[i]->value_type, QIPC_VALUE_NATIVE, &local_error) == NULL)
        {
          g_prefix_error (&local_error, "Property '%s' of %s has ", pspecs[i]->name,
                          G_OBJECT_TYPE_NAME (export->object));
          if (!refuse_or_skip (flags, local_error, error))
            return FALSE;
          continue;
        }
      g_hash_table_insert (export->properties, (gpointer) pspecs[i]->name, pspecs[i]);
    }
  return TRUE;
}

static gboolean
check_not_exported (QipcBus     *bus,
                    const char  *path,
                    const char  *control,
                    GError     **error)
{
  g_autoptr(GError) local_error = NULL;

  if (find_path (bus_exports (bus), path) == NULL &&
      !qipc_channel_is_registered_for_bus (bus, control, &local_error))
    {
      if (local_error == NULL)
        return TRUE;
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  g_set_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_ALREADY_EXPORTED,
               "An object is already exported at %s on %s", path, qipc_bus_get_address (bus));
  return FALSE;
}

/**
 * qipc_bus_export_object:
 * @bus: a #QipcBus
 * @path: the object's path: a channel name such as `app/counter`
 * @object: the object to export
 * @flags: what to export
 * @error: return location for a #GError
 *
 * Makes @object's signals, properties and action signals available to
 * other processes on @bus's channels, where [ctor@Mirror.new] mirrors
 * it. Each signal the object emits is sent on the channel @path, with
 * the signal's name as the message and its arguments as a tuple; each
 * property change as the message `notify::NAME`; requests (read every
 * property, set one, call an action) arrive on the channel `PATH/.call`.
 * The wire contract is in the "Remote objects over channels" guide.
 * This is the native counterpart of exporting over D-Bus, with no
 * daemon in between but qipc's broker.
 *
 * Types are checked now: a signal, action or property whose types
 * cannot be carried (see the data model) fails the export with
 * %QIPC_REMOTE_ERROR_UNSUPPORTED_TYPE naming it, unless @flags has
 * %QIPC_EXPORT_FLAGS_SKIP_UNSUPPORTED, which leaves it out. Action
 * signals (%G_SIGNAL_ACTION) are calls, not signals: they are not sent
 * when emitted. A path already exported on the bus, by this process or
 * another, fails with %QIPC_REMOTE_ERROR_ALREADY_EXPORTED.
 *
 * Blocks until the broker has registered the export (a round trip),
 * running the bus's main context meanwhile, so that mirrors made once
 * this returns find it. The export holds references to @object and
 * @bus until [method@Bus.unexport_object]. Emit the object's signals on
 * the thread of the bus's main context.
 *
 * ```c
 * guint id = qipc_bus_export_object (bus, "app/counter", G_OBJECT (counter),
 *                                    QIPC_EXPORT_FLAGS_ALL, &error);
 * ```
 *
 * Returns: the export's id, greater than 0, or 0 with @error set
 */
guint
qipc_bus_export_object (QipcBus          *bus,
                        const char       *path,
                        GObject          *object,
                        QipcExportFlags   flags,
                        GError          **error)
{
  g_autoptr(Export) export = NULL;
  g_autofree char *control = NULL;

  g_return_val_if_fail (QIPC_IS_BUS (bus), 0);
  g_return_val_if_fail (G_IS_OBJECT (object), 0);
  g_return_val_if_fail (error == NULL || *error == NULL, 0);

  if (!_qipc_remote_path_validate (path, error))
    return 0;
  control = g_strconcat (path, QIPC_REMOTE_CALL_SUFFIX, NULL);

  export = g_new0 (Export, 1);
  export->bus = bus;
  export->path = g_strdup (path);
  export->object = g_object_ref (object);
  export->handlers = g_array_new (FALSE, FALSE, sizeof (gulong));
  export->properties = g_hash_table_new (g_str_hash, g_str_equal);
  export->actions = g_hash_table_new_full (NULL, NULL, NULL, g_free);
  if (!add_signals (export, flags, error) || !add_properties (export, flags, error) ||
      !check_not_exported (bus, path, control, error))
    return 0;

  export->control = qipc_channel_new_for_bus (bus, control, error);
  if (export->control == NULL || !qipc_channel_flush_for_bus (bus, error))
    return 0;
  g_signal_connect (export->control, "received", G_CALLBACK (on_request), export);
  connect_signals (export, flags);
  if (g_hash_table_size (export->properties) > 0)
    {
      gulong handler = g_signal_connect (object, "notify", G_CALLBACK (on_notify), export);

      g_array_append_val (export->handlers, handler);
    }
  _qipc_value_register_object (object, path);
  export->id = g_atomic_int_add (&last_id, 1) + 1;
  g_hash_table_insert (bus_exports (bus), GUINT_TO_POINTER (export->id), export);
  g_object_ref (bus);
  /* Mirrors waiting for this path (its previous exporter died) read
   * the state now rather than at their next check. */
  send_or_warn (export, path, QIPC_REMOTE_EXPORTED, NULL);
  return g_steal_pointer (&export)->id;
}

/**
 * qipc_bus_unexport_object:
 * @bus: a #QipcBus
 * @id: an id from [method@Bus.export_object]
 *
 * Ends an export: mirrors are told (they emit
 * [signal@Mirror::vanished]), and the references to the object and the
 * bus are dropped.
 *
 * Returns: %TRUE when @id was an export of @bus
 */
gboolean
qipc_bus_unexport_object (QipcBus *bus,
                          guint    id)
{
  GHashTable *exports;
  Export *export;

  g_return_val_if_fail (QIPC_IS_BUS (bus), FALSE);

  exports = bus_exports (bus);
  export = g_hash_table_lookup (exports, GUINT_TO_POINTER (id));
  if (export == NULL)
    return FALSE;
  g_hash_table_remove (exports, GUINT_TO_POINTER (id));
  send_or_warn (export, export->path, QIPC_REMOTE_UNEXPORTED, NULL);
  export_free (export);
  g_object_unref (bus);
  return TRUE;
}
