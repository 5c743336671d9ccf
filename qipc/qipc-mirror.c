/* qipc-mirror.c: a local instance that follows an exported object
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/**
 * QipcMirror:
 *
 * The handle of a mirror: a local instance of a GObject type that
 * follows an object exported by another process, made by
 * [ctor@Mirror.new].
 *
 * The instance is of the caller's own type (written in C, Python or
 * JavaScript): its signals fire when the remote object emits them, its
 * properties follow the remote ones, setting one of its properties sets
 * the remote one, and emitting one of its action signals calls the
 * remote action. [func@Mirror.get_for_object] finds the #QipcMirror of
 * an instance, which says whether the remote object is there
 * ([property@Mirror:remote-present], [signal@Mirror::vanished],
 * [signal@Mirror::appeared]) and calls actions with their return value
 * ([method@Mirror.call_async]). The handle lives as long as the
 * instance.
 *
 * ```c
 * g_autoptr(GObject) counter = qipc_mirror_new (G_OBJECT (bus), "app/counter",
 *                                               MY_TYPE_COUNTER, &error);
 * g_signal_connect (counter, "value-changed", G_CALLBACK (on_value_changed), NULL);
 * g_signal_connect (qipc_mirror_get_for_object (counter), "vanished",
 *                   G_CALLBACK (on_counter_gone), NULL);
 * g_object_set (counter, "label", "kitchen", NULL);    // sets the remote one
 * g_signal_emit_by_name (counter, "increment", 1, &ignored);  // calls it
 * ```
 *
 * The rules:
 *
 * - Signals and property changes are applied on the thread-default
 *   main context of the call that made the mirror (the bus's, for a
 *   #QipcBus), in the order the remote object emitted them.
 * - The state is read after subscribing to changes, and changes that
 *   arrive before the state are dropped because the state already has
 *   them: nothing is missed between the two, and nothing is applied
 *   twice.
 * - The exported signals fire on the mirror only when the remote
 *   object emits them: a local emission (by a property setter that
 *   emits, for instance) is stopped.
 * - Emitting an action signal on the mirror calls the remote action
 *   without waiting and returns the zero value of the return type; use
 *   [method@Mirror.call_async] for the return value. The mirror's own
 *   class handler does not run.
 * - Setting a property on the mirror sets it locally at once and sends
 *   it to the remote object; changes made while a remote signal or
 *   property change is being applied (in a handler of the mirror's
 *   signals) stay local. A read-only property keeps its default on the
 *   mirror, which GObject cannot set; its remote value is read with
 *   [method@Mirror.get_remote_property].
 * - When the remote object goes away (its process dies, it is
 *   unexported, the bus is lost) the mirror emits
 *   [signal@Mirror::vanished]; when an object is exported at the same
 *   path again, the state is read again and [signal@Mirror::appeared]
 *   follows. Over qipc channels a dead exporter is noticed within a
 *   second (the mirror asks the broker every 500 ms); over D-Bus as
 *   soon as the bus daemon says its name has no owner, or the exporter
 *   announces the end of the export (qipc_dbus_unexport_object() does,
 *   see [Remote objects over D-Bus](remote-objects.html)).
 */

#include "qipc-mirror.h"
#include "qipc-bus.h"
#include "qipc-channel.h"
#include "qipc-remote-private.h"
#include "qipc-value-private.h"

#include <string.h>

#define POLL_INTERVAL_MS 500
#define STATE_TIMEOUT_S 5

typedef struct _Backend Backend;

struct _QipcMirror
{
  GObject parent_instance;

  GObject *instance;            /* not referenced: it holds us */
  GType type;
  char *path;
  gboolean remote_present;
  GTask *init_task;             /* until the first state arrives */
  guint init_timeout;
  guint64 next_request;
  guint64 state_request;        /* changes are dropped until its reply */
  GHashTable *calls;            /* request id -> GTask */
  int applying;                 /* remote changes being applied */
  guint remote_signal;          /* the signal id being applied */

  /* qipc channels */
  QipcBus *bus;
  char *control;
  char *reply_name;
  QipcChannel *signals_channel;
  QipcChannel *reply_channel;
  guint poll_source;
  gboolean polling;
  GCancellable *cancellable;

  /* Property name -> GValue: what the remote object last reported, for
   * the properties the instance cannot take (read-only ones). */
  GHashTable *remote_values;

  GMainContext *context;
  GCancellable *init_cancellable;
  gulong init_cancelled;

  /* D-Bus */
  GDBusConnection *connection;
  char *bus_name;
  char *interface;
  guint watch_id;
  guint signal_subscription;
  guint properties_subscription;
  guint export_subscription;
};

enum {
  VANISHED,
  APPEARED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

enum {
  PROP_0,
  PROP_REMOTE_PRESENT,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (QipcMirror, qipc_mirror, G_TYPE_OBJECT)

static GQuark mirror_quark;


/* A timeout on the context the mirror was made on. */
static guint
add_timeout (QipcMirror  *self,
             guint        interval_ms,
             GSourceFunc  func,
             const char  *name)
{
  GSource *source = g_timeout_source_new (interval_ms);
  guint id;

  g_source_set_callback (source, func, self, NULL);
  g_source_set_static_name (source, name);
  id = g_source_attach (source, self->context);
  g_source_unref (source);
  return id;
}

static void
remove_source (QipcMirror *self,
               guint      *id)
{
  GSource *source = *id != 0 ? g_main_context_find_source_by_id (self->context, *id) : NULL;

  if (source != NULL)
    g_source_destroy (source);
  *id = 0;
}

/* Fails every call waiting for a reply, because of @why. */
static void
fail_calls (QipcMirror *self,
            const char *why)
{
  GList *tasks = g_hash_table_get_values (self->calls);

  /* Taken out first: a callback may start another call. */
  g_list_foreach (tasks, (GFunc) (void (*) (void)) g_object_ref, NULL);
  g_hash_table_remove_all (self->calls);
  for (GList *l = tasks; l != NULL; l = l->next)
    g_task_return_new_error (l->data, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_VANISHED,
                             "The object at %s %s", self->path, why);
  g_list_free_full (tasks, g_object_unref);
}

static void
qipc_mirror_stop (QipcMirror *self)
{
  g_cancellable_cancel (self->cancellable);
  remove_source (self, &self->poll_source);
  remove_source (self, &self->init_timeout);
  if (self->signals_channel != NULL)
    g_signal_handlers_disconnect_by_data (self->signals_channel, self);
  if (self->reply_channel != NULL)
    g_signal_handlers_disconnect_by_data (self->reply_channel, self);
  g_clear_object (&self->signals_channel);
  g_clear_object (&self->reply_channel);
  if (self->bus != NULL)
    g_signal_handlers_disconnect_by_data (self->bus, self);
  if (self->connection != NULL)
    {
      if (self->signal_subscription != 0)
        g_dbus_connection_signal_unsubscribe (self->connection, self->signal_subscription);
      if (self->properties_subscription != 0)
        g_dbus_connection_signal_unsubscribe (self->connection, self->properties_subscription);
      if (self->export_subscription != 0)
        g_dbus_connection_signal_unsubscribe (self->connection, self->export_subscription);
      self->signal_subscription = self->properties_subscription = self->export_subscription = 0;
    }
  g_clear_handle_id (&self->watch_id, g_bus_unwatch_name);
  fail_calls (self, "is no longer mirrored");
}

static void
remote_value_free (gpointer data)
{
  GValue *value = data;

  g_value_unset (value);
  g_free (value);
}

static void
qipc_mirror_dispose (GObject *object)
{
  QipcMirror *self = QIPC_MIRROR (object);

  qipc_mirror_stop (self);
  g_clear_object (&self->bus);
  g_clear_object (&self->connection);
  G_OBJECT_CLASS (qipc_mirror_parent_class)->dispose (object);
}

static void
qipc_mirror_finalize (GObject *object)
{
  QipcMirror *self = QIPC_MIRROR (object);

  g_hash_table_unref (self->calls);
  g_hash_table_unref (self->remote_values);
  g_clear_object (&self->cancellable);
  g_main_context_unref (self->context);
  g_free (self->path);
  g_free (self->control);
  g_free (self->reply_name);
  g_free (self->bus_name);
  g_free (self->interface);
  G_OBJECT_CLASS (qipc_mirror_parent_class)->finalize (object);
}

static void
qipc_mirror_get_property (GObject    *object,
                          guint       prop_id,
                          GValue     *value,
                          GParamSpec *pspec)
{
  QipcMirror *self = QIPC_MIRROR (object);

  switch (prop_id)
    {
    case PROP_REMOTE_PRESENT:
      g_value_set_boolean (value, self->remote_present);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
qipc_mirror_class_init (QipcMirrorClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = qipc_mirror_dispose;
  object_class->finalize = qipc_mirror_finalize;
  object_class->get_property = qipc_mirror_get_property;

  /**
   * QipcMirror:remote-present:
   *
   * Whether the remote object is there: %TRUE from creation until
   * [signal@Mirror::vanished], and again from [signal@Mirror::appeared].
   */
  properties[PROP_REMOTE_PRESENT] =
    g_param_spec_boolean ("remote-present", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * QipcMirror::vanished:
   * @self: the mirror
   *
   * Emitted when the remote object is gone: its process died or lost
   * its connection, it was unexported, or this process lost the bus.
   * The instance keeps its last state.
   */
  signals[VANISHED] =
    g_signal_new ("vanished", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);

  /**
   * QipcMirror::appeared:
   * @self: the mirror
   *
   * Emitted when an object is exported at the mirror's path again after
   * [signal@Mirror::vanished], once its state has been read into the
   * instance.
   */
  signals[APPEARED] =
    g_signal_new ("appeared", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);

  mirror_quark = g_quark_from_static_string ("qipc-mirror");
}

static void
qipc_mirror_init (QipcMirror *self)
{
  self->calls = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, g_object_unref);
  self->remote_values = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, remote_value_free);
  self->cancellable = g_cancellable_new ();
  self->context = g_main_context_ref_thread_default ();
}

/* ------------------------------------------------------------------ */
/* Presence                                                           */

static void
set_present (QipcMirror *self,
             gboolean    present)
{
  if (self->remote_present == present)
    return;
  self->remote_present = present;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_REMOTE_PRESENT]);
  if (!present)
    fail_calls (self, "is gone");
  if (self->init_task == NULL)
    g_signal_emit (self, signals[present ? APPEARED : VANISHED], 0);
}

static void
vanish (QipcMirror *self)
{
  self->state_request = 0;
  set_present (self, FALSE);
}

/* ------------------------------------------------------------------ */
/* Applying remote changes                                            */

/* Whether the mirror's instance can take a value of @pspec: a read-only
 * property cannot be set, not even by us. */
static gboolean
instance_can_take (GParamSpec *pspec)
{
  return (pspec->flags & G_PARAM_WRITABLE) && !(pspec->flags & G_PARAM_CONSTRUCT_ONLY);
}

static void
apply_property (QipcMirror      *self,
                const char      *name,
                GVariant        *variant,
                QipcValueFlavor  flavor)
{
  GParamSpec *pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (self->instance), name);
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(GError) error = NULL;

  if (pspec == NULL)
    return;  /* the remote class is newer than ours */
  g_value_init (&value, pspec->value_type);
  if (!_qipc_value_from_variant (variant, &value, flavor, &error))
    {
      g_warning ("Mirror of %s, property '%s': %s", self->path, name, error->message);
      return;
    }
  if (!instance_can_take (pspec))
    {
      GValue *kept = g_new0 (GValue, 1);

      g_value_init (kept, pspec->value_type);
      g_value_copy (&value, kept);
      /* The pspec's name is interned and outlives the mirror. */
      g_hash_table_replace (self->remote_values, (gpointer) pspec->name, kept);
      /* So that notify::NAME handlers learn of the new remote value. */
      self->applying++;
      g_object_notify_by_pspec (self->instance, pspec);
      self->applying--;
      return;
    }
  self->applying++;
  g_object_set_property (self->instance, name, &value);
  self->applying--;
}

static void
apply_properties (QipcMirror      *self,
                  GVariant        *dict,
                  QipcValueFlavor  flavor)
{
  GVariantIter iter;
  const char *name;
  GVariant *value;

  g_object_freeze_notify (self->instance);
  g_variant_iter_init (&iter, dict);
  while (g_variant_iter_loop (&iter, "{&sv}", &name, &value))
    {
      g_autofree char *gname = flavor == QIPC_VALUE_DBUS ? _qipc_name_from_dbus (name) : g_strdup (name);

      apply_property (self, gname, value, flavor);
    }
  self->applying++;
  g_object_thaw_notify (self->instance);
  self->applying--;
}

static void
apply_signal (QipcMirror      *self,
              const char      *name,
              GVariant        *args,
              QipcValueFlavor  flavor)
{
  guint id = g_signal_lookup (name, self->type);
  g_autofree GValue *params = NULL;
  g_auto(GValue) ret = G_VALUE_INIT;
  g_autoptr(GError) error = NULL;
  GSignalQuery query;

  if (id == 0)
    return;  /* the remote class is newer than ours */
  g_signal_query (id, &query);
  if (_qipc_remote_is_action (&query))
    return;
  params = g_new0 (GValue, query.n_params + 1);
  if (args == NULL || !_qipc_value_args_from_tuple (args, &query, params + 1, flavor, &error))
    {
      g_warning ("Mirror of %s: %s", self->path,
                 error != NULL ? error->message : "a signal without arguments");
      return;
    }
  g_value_init_from_instance (&params[0], self->instance);
  if (query.return_type != G_TYPE_NONE)
    g_value_init (&ret, query.return_type & ~G_SIGNAL_TYPE_STATIC_SCOPE);
  self->applying++;
  self->remote_signal = id;
  g_signal_emitv (params, id, 0, query.return_type != G_TYPE_NONE ? &ret : NULL);
  self->remote_signal = 0;
  self->applying--;
  _qipc_value_args_clear (params, query.n_params + 1);
}

/* Creation is over, one way or the other: the task to complete. */
static GTask *
init_done (QipcMirror *self)
{
  remove_source (self, &self->init_timeout);
  if (self->init_cancelled != 0)
    g_cancellable_disconnect (self->init_cancellable, self->init_cancelled);
  self->init_cancelled = 0;
  g_clear_object (&self->init_cancellable);
  return g_steal_pointer (&self->init_task);
}

/* Before the state, or while the object is away, remote changes are
 * dropped: the state read next has everything they did. */
static gboolean
accepts_changes (QipcMirror *self)
{
  return self->state_request == 0 && self->remote_present && self->instance != NULL;
}

/* The state arrived: apply it, and changes from now on. */
static void
state_received (QipcMirror      *self,
                GVariant        *dict,
                QipcValueFlavor  flavor)
{
  self->state_request = 0;
  apply_properties (self, dict, flavor);
  set_present (self, TRUE);
  if (self->init_task != NULL)
    {
      GTask *task = init_done (self);

      g_task_return_pointer (task, g_object_ref (self->instance), g_object_unref);
      g_object_unref (task);
    }
}

static void
init_failed (QipcMirror *self,
             GError     *error)
{
  GTask *task = init_done (self);

  qipc_mirror_stop (self);
  if (task != NULL)
    {
      g_task_return_error (task, error);
      g_object_unref (task);
    }
  else
    g_error_free (error);
}

static gboolean
init_timed_out (gpointer data)
{
  QipcMirror *self = data;

  self->init_timeout = 0;
  init_failed (self, g_error_new (QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_NOT_FOUND,
                                  "The object at %s did not answer within %d s",
                                  self->path, STATE_TIMEOUT_S));
  return G_SOURCE_REMOVE;
}

/* ------------------------------------------------------------------ */
/* Forwarding local changes                                           */

static void forward_property (QipcMirror *self, GParamSpec *pspec);
static void forward_call     (QipcMirror *self, const char *action, GVariant *args, GTask *task);

static void
on_local_notify (GObject    *instance,
                 GParamSpec *pspec,
                 QipcMirror *self)
{
  if (self->applying > 0 || !self->remote_present || pspec->owner_type == G_TYPE_OBJECT ||
      !(pspec->flags & G_PARAM_WRITABLE) || (pspec->flags & G_PARAM_CONSTRUCT_ONLY) ||
      !(pspec->flags & G_PARAM_READABLE))
    return;
  forward_property (self, pspec);
}

typedef struct
{
  GClosure closure;
  QipcMirror *mirror;
  GSignalQuery query;
} MirrorClosure;

/* Exported signals fire only as the remote object emits them. */
static void
guard_marshal (GClosure     *closure,
               GValue       *return_value,
               guint         n_params,
               const GValue *params,
               gpointer      hint,
               gpointer      marshal_data)
{
  MirrorClosure *mc = (MirrorClosure *) closure;
  GSignalInvocationHint *ihint = hint;

  if (mc->mirror->remote_signal == ihint->signal_id)
    {
      mc->mirror->remote_signal = 0;
      return;
    }
  g_signal_stop_emission (g_value_get_object (&params[0]), ihint->signal_id, ihint->detail);
}

/* Emitting an action calls the remote one instead. */
static void
action_marshal (GClosure     *closure,
                GValue       *return_value,
                guint         n_params,
                const GValue *params,
                gpointer      hint,
                gpointer      marshal_data)
{
  MirrorClosure *mc = (MirrorClosure *) closure;
  GSignalInvocationHint *ihint = hint;
  QipcValueFlavor flavor = mc->mirror->connection != NULL ? QIPC_VALUE_DBUS : QIPC_VALUE_NATIVE;
  g_autoptr(GError) error = NULL;
  GVariant *args;

  g_signal_stop_emission (g_value_get_object (&params[0]), ihint->signal_id, ihint->detail);
  args = _qipc_value_args_to_tuple (params + 1, n_params - 1, flavor, &error);
  if (args == NULL)
    g_warning ("Mirror of %s, action '%s': %s", mc->mirror->path, mc->query.signal_name,
               error->message);
  else if (mc->mirror->remote_present)
    forward_call (mc->mirror, mc->query.signal_name, args, NULL);
  else
    g_variant_unref (g_variant_ref_sink (args));
}

static void
connect_instance (QipcMirror *self)
{
  g_autoptr(GArray) queries = _qipc_remote_list_signals (self->type);

  for (guint i = 0; i < queries->len; i++)
    {
      GSignalQuery *query = &g_array_index (queries, GSignalQuery, i);
      MirrorClosure *mc = (MirrorClosure *) g_closure_new_simple (sizeof (MirrorClosure), NULL);

      mc->mirror = self;
      mc->query = *query;
      g_closure_set_marshal (&mc->closure, _qipc_remote_is_action (query) ? action_marshal : guard_marshal);
      g_signal_connect_closure_by_id (self->instance, query->signal_id, 0, &mc->closure, FALSE);
    }
  g_signal_connect (self->instance, "notify", G_CALLBACK (on_local_notify), self);
}

/* ------------------------------------------------------------------ */
/* Calls                                                              */

static guint64
add_call (QipcMirror *self,
          GTask      *task)
{
  guint64 id = ++self->next_request;

  if (task != NULL)
    g_hash_table_insert (self->calls, g_memdup2 (&id, sizeof id), g_object_ref (task));
  return id;
}

static GTask *
take_call (QipcMirror *self,
           guint64     id)
{
  gpointer key, task;

  if (!g_hash_table_steal_extended (self->calls, &id, &key, &task))
    return NULL;
  g_free (key);
  return task;
}

/* Ends a call: takes @result (transfer full, or floating) and @error. */
static void
call_done (QipcMirror *self,
           GTask      *task,
           GVariant   *result,
           GError     *error)
{
  if (task == NULL)
    {
      /* A forwarded property or action: nobody waits for it. The remote
       * going away meanwhile is told by ::vanished, and is no warning. */
      if (g_error_matches (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_VANISHED))
        g_debug ("Mirror of %s: %s", self->path, error->message);
      else if (error != NULL)
        g_warning ("Mirror of %s: %s", self->path, error->message);
      g_clear_error (&error);
      g_clear_pointer (&result, g_variant_unref);
      return;
    }
  if (error != NULL)
    g_task_return_error (task, error);
  else
    /* @result is ours (a child got from a reply): a floating one is
     * taken, a full one kept as it is; g_variant_ref_sink() added a
     * reference to the latter, which leaked with every call's reply. */
    g_task_return_pointer (task, result != NULL ? g_variant_take_ref (result) : NULL,
                           (GDestroyNotify) g_variant_unref);
  g_object_unref (task);
}

/* ------------------------------------------------------------------ */
/* Over qipc channels                                                 */

static void
native_send (QipcMirror *self,
             const char *message,
             GVariant   *data)
{
  g_autofree char *who = g_strconcat ("Mirror of ", self->path, NULL);

  _qipc_remote_send (self->bus, self->control, message, data, who);
}

static void
native_request_state (QipcMirror *self)
{
  self->state_request = add_call (self, NULL);
  native_send (self, QIPC_REMOTE_GET_ALL,
               g_variant_new ("(st)", self->reply_name, self->state_request));
}

static void
on_remote_message (QipcChannel *channel,
                   const char  *message,
                   GVariant    *data,
                   QipcMirror  *self)
{
  /* What this runs may drop the last reference to the instance. */
  G_GNUC_UNUSED g_autoptr(QipcMirror) hold = g_object_ref (self);
  /* An exporter that has just started, maybe in place of one that died
   * too shortly before for the poll to see it: read its state. */
  if (g_str_equal (message, QIPC_REMOTE_EXPORTED))
    {
      if (self->init_task == NULL && self->state_request == 0)
        {
          vanish (self);
          native_request_state (self);
        }
      return;
    }
  if (!accepts_changes (self))
    return;
  if (g_str_equal (message, QIPC_REMOTE_UNEXPORTED))
    vanish (self);
  else if (g_str_has_prefix (message, QIPC_REMOTE_NOTIFY_PREFIX))
    {
      if (data != NULL && g_variant_is_of_type (data, G_VARIANT_TYPE_VARIANT))
        {
          g_autoptr(GVariant) value = g_variant_get_variant (data);

          apply_property (self, message + strlen (QIPC_REMOTE_NOTIFY_PREFIX), value,
                          QIPC_VALUE_NATIVE);
        }
    }
  else
    apply_signal (self, message, data, QIPC_VALUE_NATIVE);
}

static void
on_reply (QipcChannel *channel,
          const char  *message,
          GVariant    *data,
          QipcMirror  *self)
{
  /* What this runs may drop the last reference to the instance. */
  G_GNUC_UNUSED g_autoptr(QipcMirror) hold = g_object_ref (self);
  guint64 id;

  if (data == NULL || !g_variant_is_container (data) || g_variant_n_children (data) < 2)
    return;
  g_variant_get_child (data, 0, "t", &id);
  if (g_str_equal (message, QIPC_REMOTE_STATE) &&
      g_variant_is_of_type (data, G_VARIANT_TYPE ("(ta{sv})")))
    {
      g_autoptr(GVariant) dict = g_variant_get_child_value (data, 1);

      if (id == self->state_request)
        state_received (self, dict, QIPC_VALUE_NATIVE);
    }
  else if (g_str_equal (message, QIPC_REMOTE_RETURN) &&
           g_variant_is_of_type (data, G_VARIANT_TYPE ("(tmv)")))
    {
      g_autoptr(GVariant) maybe = g_variant_get_child_value (data, 1);
      g_autoptr(GVariant) boxed = g_variant_get_maybe (maybe);

      call_done (self, take_call (self, id),
                 boxed != NULL ? g_variant_get_variant (boxed) : NULL, NULL);
    }
  else if (g_str_equal (message, QIPC_REMOTE_ERROR_REPLY) &&
           g_variant_is_of_type (data, G_VARIANT_TYPE ("(tus)")))
    {
      guint code;
      const char *text;

      g_variant_get (data, "(tu&s)", NULL, &code, &text);
      call_done (self, take_call (self, id),
                 NULL, g_error_new_literal (QIPC_REMOTE_ERROR, code, text));
    }
}

static void
on_registered (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(QipcMirror) self = user_data;
  g_autoptr(GError) error = NULL;
  gboolean registered = qipc_channel_is_registered_finish (result, &error);

  self->polling = FALSE;
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) || self->instance == NULL)
    return;
  if (self->init_task != NULL)
    {
      if (error != NULL)
        init_failed (self, g_steal_pointer (&error));
      else if (!registered)
        init_failed (self, g_error_new (QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_NOT_FOUND,
                                        "No object is exported at %s on %s", self->path,
                                        qipc_bus_get_address (self->bus)));
      else
        native_request_state (self);
      return;
    }
  if (error != NULL || !registered)
    vanish (self);
  else if (!self->remote_present && self->state_request == 0)
    native_request_state (self);
}

static void
native_check (QipcMirror *self)
{
  self->polling = TRUE;
  qipc_channel_is_registered_async (self->bus, self->control, self->cancellable,
                                    on_registered, g_object_ref (self));
}

static gboolean
poll_exporter (gpointer data)
{
  QipcMirror *self = data;

  if (!self->polling)
    native_check (self);
  return G_SOURCE_CONTINUE;
}

static void
on_bus_disconnected (QipcBus    *bus,
                     QipcMirror *self)
{
  /* What this runs may drop the last reference to the instance. */
  G_GNUC_UNUSED g_autoptr(QipcMirror) hold = g_object_ref (self);
  if (self->init_task == NULL)
    vanish (self);
}

/* Messages were dropped by the broker: read the whole state again. */
static void
on_messages_lost (QipcBus    *bus,
                  guint64     count,
                  QipcMirror *self)
{
  /* What this runs may drop the last reference to the instance. */
  G_GNUC_UNUSED g_autoptr(QipcMirror) hold = g_object_ref (self);
  if (self->remote_present && self->state_request == 0)
    native_request_state (self);
}

static gboolean
native_start (QipcMirror  *self,
              QipcBus     *bus,
              GError     **error)
{
  g_autofree char *random = g_uuid_string_random ();

  self->bus = g_object_ref (bus);
  self->control = g_strconcat (self->path, QIPC_REMOTE_CALL_SUFFIX, NULL);
  self->reply_name = g_strconcat (self->path, QIPC_REMOTE_REPLY_INFIX, random, NULL);
  /* Listen first: what the exporter sends after handling our get-all
   * reaches us, and the broker keeps each sender's order. */
  self->signals_channel = qipc_channel_new_for_bus (bus, self->path, error);
  if (self->signals_channel == NULL)
    return FALSE;
  self->reply_channel = qipc_channel_new_for_bus (bus, self->reply_name, error);
  if (self->reply_channel == NULL)
    return FALSE;
  g_signal_connect (self->signals_channel, "received", G_CALLBACK (on_remote_message), self);
  g_signal_connect (self->reply_channel, "received", G_CALLBACK (on_reply), self);
  g_signal_connect (bus, "disconnected", G_CALLBACK (on_bus_disconnected), self);
  g_signal_connect (bus, "messages-lost", G_CALLBACK (on_messages_lost), self);
  self->poll_source = add_timeout (self, POLL_INTERVAL_MS, poll_exporter, "[qipc] mirror presence");
  native_check (self);
  return TRUE;
}

static void
native_forward_property (QipcMirror *self,
                         GParamSpec *pspec,
                         GVariant   *value)
{
  native_send (self, QIPC_REMOTE_SET_PROPERTY,
               g_variant_new ("(stsv)", self->reply_name, add_call (self, NULL),
                              pspec->name, value));
}

static void
native_forward_call (QipcMirror *self,
                     const char *action,
                     GVariant   *args,
                     GTask      *task)
{
  native_send (self, QIPC_REMOTE_CALL_ACTION,
               g_variant_new ("(stsv)", self->reply_name, add_call (self, task), action, args));
}

/* ------------------------------------------------------------------ */
/* Over D-Bus                                                         */

#define DBUS_PROPERTIES "org.freedesktop.DBus.Properties"

typedef struct
{
  QipcMirror *mirror;
  guint64 id;
} StateRequest;

static gboolean
is_not_found (const GError *error)
{
  return g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN) ||
         g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER) ||
         g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_OBJECT) ||
         g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_INTERFACE) ||
         g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD);
}

/* The remote process or object is not there any more. */
static gboolean
is_gone (const GError *error)
{
  return is_not_found (error) ||
         g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_NO_REPLY) ||
         g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_DISCONNECTED) ||
         g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
}

static void
on_get_all (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  StateRequest *request = user_data;
  g_autoptr(QipcMirror) self = request->mirror;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  guint64 id = request->id;

  g_free (request);
  if (self->instance == NULL || id != self->state_request)
    return;
  if (reply != NULL)
    {
      g_autoptr(GVariant) dict = g_variant_get_child_value (reply, 0);

      state_received (self, dict, QIPC_VALUE_DBUS);
    }
  else if (self->init_task != NULL)
    {
      if (is_not_found (error))
        {
          g_autoptr(GError) not_found =
            g_error_new (QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_NOT_FOUND,
                         "No object %s with interface %s at %s: %s", self->path,
                         self->interface, self->bus_name, error->message);
          init_failed (self, g_steal_pointer (&not_found));
        }
      else
        init_failed (self, g_steal_pointer (&error));
    }
  else
    vanish (self);
}

static void
dbus_request_state (QipcMirror *self)
{
  StateRequest *request = g_new0 (StateRequest, 1);

  request->mirror = g_object_ref (self);
  request->id = self->state_request = ++self->next_request;
  g_dbus_connection_call (self->connection, self->bus_name, self->path, DBUS_PROPERTIES,
                          "GetAll", g_variant_new ("(s)", self->interface),
                          G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NONE,
                          STATE_TIMEOUT_S * 1000, self->cancellable, on_get_all, request);
}

static void
on_dbus_signal (GDBusConnection *connection,
                const char      *sender,
                const char      *object_path,
                const char      *interface_name,
                const char      *signal_name,
                GVariant        *parameters,
                gpointer         user_data)
{
  QipcMirror *self = user_data;
  G_GNUC_UNUSED g_autoptr(QipcMirror) hold = g_object_ref (self);
  g_autofree char *name = NULL;

  if (!accepts_changes (self))
    return;
  name = _qipc_name_from_dbus (signal_name);
  apply_signal (self, name, parameters, QIPC_VALUE_DBUS);
}

static void
on_dbus_properties_changed (GDBusConnection *connection,
                            const char      *sender,
                            const char      *object_path,
                            const char      *interface_name,
                            const char      *signal_name,
                            GVariant        *parameters,
                            gpointer         user_data)
{
  QipcMirror *self = user_data;
  G_GNUC_UNUSED g_autoptr(QipcMirror) hold = g_object_ref (self);
  g_autoptr(GVariant) changed = NULL;

  if (!accepts_changes (self) || !g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(sa{sv}as)")))
    return;
  changed = g_variant_get_child_value (parameters, 1);
  apply_properties (self, changed, QIPC_VALUE_DBUS);
}

/* A qipc exporter that keeps its bus name unexports the object, or
 * exports it again. */
static void
on_export_announced (GDBusConnection *connection,
                     const char      *sender,
                     const char      *object_path,
                     const char      *interface_name,
                     const char      *signal_name,
                     GVariant        *parameters,
                     gpointer         user_data)
{
  QipcMirror *self = user_data;
  G_GNUC_UNUSED g_autoptr(QipcMirror) hold = g_object_ref (self);

  if (self->init_task != NULL)
    return;
  if (g_str_equal (signal_name, QIPC_DBUS_UNEXPORTED))
    vanish (self);
  else if (g_str_equal (signal_name, QIPC_DBUS_EXPORTED) && !self->remote_present &&
           self->state_request == 0)
    dbus_request_state (self);
}

static void
on_name_appeared (GDBusConnection *connection,
                  const char      *name,
                  const char      *owner,
                  gpointer         user_data)
{
  QipcMirror *self = user_data;
  G_GNUC_UNUSED g_autoptr(QipcMirror) hold = g_object_ref (self);

  if (self->init_task == NULL && !self->remote_present && self->state_request == 0)
    dbus_request_state (self);
}

static void
on_name_vanished (GDBusConnection *connection,
                  const char      *name,
                  gpointer         user_data)
{
  QipcMirror *self = user_data;
  G_GNUC_UNUSED g_autoptr(QipcMirror) hold = g_object_ref (self);

  if (self->init_task == NULL)
    vanish (self);
}

static gboolean
dbus_start (QipcMirror       *self,
            GDBusConnection  *connection,
            const char       *bus_name,
            const char       *interface_name,
            GError          **error)
{
  if (!g_dbus_is_name (bus_name) || !g_variant_is_object_path (self->path) ||
      (interface_name != NULL && !g_dbus_is_interface_name (interface_name)))
    {
      g_set_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_INVALID_NAME,
                   "Invalid D-Bus name '%s', object path '%s' or interface '%s'",
                   bus_name, self->path, interface_name != NULL ? interface_name : "");
      return FALSE;
    }
  self->connection = g_object_ref (connection);
  self->bus_name = g_strdup (bus_name);
  self->interface = interface_name != NULL ? g_strdup (interface_name)
                                           : _qipc_dbus_interface_for_type (self->type);
  /* Subscribe first, then read the state (see the class comment). */
  self->signal_subscription =
    g_dbus_connection_signal_subscribe (connection, bus_name, self->interface, NULL, self->path,
                                        NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_dbus_signal, self, NULL);
  self->properties_subscription =
    g_dbus_connection_signal_subscribe (connection, bus_name, DBUS_PROPERTIES, "PropertiesChanged",
                                        self->path, self->interface, G_DBUS_SIGNAL_FLAGS_NONE,
                                        on_dbus_properties_changed, self, NULL);
  self->export_subscription =
    g_dbus_connection_signal_subscribe (connection, bus_name, QIPC_DBUS_EXPORT_INTERFACE, NULL,
                                        self->path, self->interface, G_DBUS_SIGNAL_FLAGS_NONE,
                                        on_export_announced, self, NULL);
  self->watch_id = g_bus_watch_name_on_connection (connection, bus_name, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                                   on_name_appeared, on_name_vanished, self, NULL);
  dbus_request_state (self);
  return TRUE;
}

static void
on_dbus_set (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(QipcMirror) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);

  if (reply != NULL || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  /* The remote object went away with the call in flight: the mirror
   * says so with ::vanished, which is no warning either. */
  if (is_gone (error))
    g_debug ("Mirror of %s: a property set was not answered: %s", self->path, error->message);
  else
    g_warning ("Mirror of %s: %s", self->path, error->message);
}

static void
dbus_forward_property (QipcMirror *self,
                       GParamSpec *pspec,
                       GVariant   *value)
{
  g_autofree char *name = _qipc_name_to_dbus (pspec->name);

  g_dbus_connection_call (self->connection, self->bus_name, self->path, DBUS_PROPERTIES, "Set",
                          g_variant_new ("(ssv)", self->interface, name, value), NULL,
                          G_DBUS_CALL_FLAGS_NONE, -1, self->cancellable, on_dbus_set,
                          g_object_ref (self));
}

typedef struct
{
  QipcMirror *mirror;
  GTask *task;
} DBusCall;

static void
on_dbus_call (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  DBusCall *call = user_data;
  g_autoptr(QipcMirror) self = call->mirror;
  GError *error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  GVariant *value = NULL;

  if (reply != NULL && g_variant_n_children (reply) > 0)
    value = g_variant_get_child_value (reply, 0);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) && call->task == NULL)
    g_clear_error (&error);
  call_done (self, call->task, value, error);
  g_free (call);
}

static void
dbus_forward_call (QipcMirror *self,
                   const char *action,
                   GVariant   *args,
                   GTask      *task)
{
  DBusCall *call = g_new0 (DBusCall, 1);
  g_autofree char *method = _qipc_name_to_dbus (action);

  call->mirror = g_object_ref (self);
  call->task = task != NULL ? g_object_ref (task) : NULL;
  g_dbus_connection_call (self->connection, self->bus_name, self->path, self->interface, method,
                          args, NULL, G_DBUS_CALL_FLAGS_NONE, -1,
                          task != NULL ? g_task_get_cancellable (task) : self->cancellable,
                          on_dbus_call, call);
}

/* ------------------------------------------------------------------ */
/* Either transport                                                   */

/* Sends the mirror's value of @pspec to the original. */
static void
forward_property (QipcMirror *self,
                  GParamSpec *pspec)
{
  QipcValueFlavor flavor = self->connection != NULL ? QIPC_VALUE_DBUS : QIPC_VALUE_NATIVE;
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(GError) error = NULL;
  GVariant *variant;

  g_value_init (&value, pspec->value_type);
  g_object_get_property (self->instance, pspec->name, &value);
  variant = _qipc_value_to_variant (&value, flavor, &error);
  if (variant == NULL)
    g_warning ("Mirror of %s, property '%s': %s", self->path, pspec->name, error->message);
  else if (self->connection != NULL)
    dbus_forward_property (self, pspec, variant);
  else
    native_forward_property (self, pspec, variant);
}

static void
forward_call (QipcMirror *self,
              const char *action,
              GVariant   *args,
              GTask      *task)
{
  if (self->connection != NULL)
    dbus_forward_call (self, action, args, task);
  else
    native_forward_call (self, action, args, task);
}

static void
instance_gone (gpointer data)
{
  QipcMirror *self = data;

  self->instance = NULL;
  qipc_mirror_stop (self);
  g_object_unref (self);
}

static gboolean
init_cancelled_idle (gpointer data)
{
  QipcMirror *self = data;

  if (self->init_task != NULL)
    init_failed (self, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                            "The operation was cancelled"));
  return G_SOURCE_REMOVE;
}

static void
on_init_cancelled (GCancellable *cancellable,
                   QipcMirror   *self)
{
  GSource *source = g_idle_source_new ();

  g_source_set_callback (source, init_cancelled_idle, g_object_ref (self), g_object_unref);
  g_source_attach (source, self->context);
  g_source_unref (source);
}

/* A new instance of @type and its mirror, waiting for the state. */
static QipcMirror *
mirror_create (GType         type,
               const char   *path,
               GCancellable *cancellable,
               GTask        *task)
{
  QipcMirror *self = g_object_new (QIPC_TYPE_MIRROR, NULL);
  GObject *instance = g_object_new_with_properties (type, 0, NULL, NULL);

  self->type = type;
  self->path = g_strdup (path);
  self->instance = instance;
  g_object_set_qdata_full (instance, mirror_quark, self, instance_gone);
  g_task_set_task_data (task, instance, g_object_unref);
  self->init_task = g_object_ref (task);
  self->init_timeout = add_timeout (self, STATE_TIMEOUT_S * 1000, init_timed_out,
                                    "[qipc] mirror state timeout");
  if (cancellable != NULL)
    self->init_cancelled = g_cancellable_connect (cancellable, G_CALLBACK (on_init_cancelled),
                                                  self, NULL);
  self->init_cancellable = cancellable != NULL ? g_object_ref (cancellable) : NULL;
  connect_instance (self);
  return self;
}

static gboolean
check_type (GType    type,
            GError **error)
{
  if (G_TYPE_IS_OBJECT (type) && G_TYPE_IS_INSTANTIATABLE (type) && !G_TYPE_IS_ABSTRACT (type))
    return TRUE;
  g_set_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_FAILED,
               "%s is not a GObject type that can be instantiated", g_type_name (type));
  return FALSE;
}

static void
mirror_start (GObject      *bus_or_connection,
              const char   *bus_name,
              const char   *path,
              const char   *interface_name,
              GType         type,
              GCancellable *cancellable,
              GTask        *task)
{
  QipcMirror *self;
  GError *error = NULL;
  gboolean started;

  if (!check_type (type, &error) ||
      (QIPC_IS_BUS (bus_or_connection) && !_qipc_remote_path_validate (path, &error)))
    {
      g_task_return_error (task, error);
      return;
    }
  self = mirror_create (type, path, cancellable, task);
  if (QIPC_IS_BUS (bus_or_connection))
    started = native_start (self, QIPC_BUS (bus_or_connection), &error);
  else
    started = dbus_start (self, G_DBUS_CONNECTION (bus_or_connection), bus_name,
                          interface_name, &error);
  if (!started)
    init_failed (self, error);
}

/* ------------------------------------------------------------------ */
/* Public API                                                         */

/* Runs the thread-default main context until @result is set. */
static void
wait_for (GAsyncResult **result)
{
  GMainContext *context = g_main_context_ref_thread_default ();

  while (*result == NULL)
    g_main_context_iteration (context, TRUE);
  g_main_context_unref (context);
}

static void
store_result (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

/**
 * qipc_mirror_new_async:
 * @bus_or_connection: (nullable): a [class@Bus], a
 *   [class@Gio.DBusConnection], or %NULL for the default bus
 * @path: the object's path: on a #QipcBus, the path it was exported at
 *   with [method@Bus.export_object] (`app/counter`); on a D-Bus
 *   connection, `BUSNAME:/object/path` (`org.example.App:/org/example/Counter`)
 * @type: the local type: a #GObject type that can be instantiated, the
 *   same as the remote object's (or one with the same signals and
 *   properties)
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the mirror is ready
 * @user_data: data for @callback
 *
 * The form of [ctor@Mirror.new] that does not block. On D-Bus, the
 * interface is the one [func@dbus_export_object] uses when it is given
 * none; [func@Mirror.new_for_dbus_async] names another.
 *
 * @callback runs as the state is applied, before any later change:
 * handlers connected there see every change after the state.
 */
void
qipc_mirror_new_async (GObject             *bus_or_connection,
                       const char          *path,
                       GType                type,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(QipcBus) default_bus = NULL;
  g_autofree char *bus_name = NULL;
  const char *object_path = path;
  GError *error = NULL;

  g_return_if_fail (bus_or_connection == NULL || QIPC_IS_BUS (bus_or_connection) ||
                    G_IS_DBUS_CONNECTION (bus_or_connection));
  g_return_if_fail (path != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, qipc_mirror_new_async);
  if (bus_or_connection == NULL)
    {
      default_bus = qipc_bus_get_default (&error);
      if (default_bus == NULL)
        {
          g_task_return_error (task, error);
          return;
        }
      bus_or_connection = G_OBJECT (default_bus);
    }
  if (G_IS_DBUS_CONNECTION (bus_or_connection))
    {
      const char *colon = strchr (path, ':');

      /* Unique names start with ':' too: the path starts at ":/". */
      colon = strstr (path, ":/");
      if (colon == NULL)
        {
          g_task_return_new_error (task, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_INVALID_NAME,
                                   "A D-Bus mirror's path is BUSNAME:/object/path, not '%s'",
                                   path);
          return;
        }
      bus_name = g_strndup (path, colon - path);
      object_path = colon + 1;
    }
  mirror_start (bus_or_connection, bus_name, object_path, NULL, type, cancellable, task);
}

/**
 * qipc_mirror_new_finish:
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes [func@Mirror.new_async].
 *
 * Returns: (transfer full) (type GObject.Object): the mirror instance,
 *   or %NULL with @error set
 */
GObject *
qipc_mirror_new_finish (GAsyncResult  *result,
                        GError       **error)
{
  g_return_val_if_fail (G_IS_TASK (result), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * qipc_mirror_new:
 * @bus_or_connection: (nullable): a [class@Bus], a
 *   [class@Gio.DBusConnection], or %NULL for the default bus
 * @path: the object's path: on a #QipcBus, the path it was exported at
 *   (`app/counter`); on a D-Bus connection, `BUSNAME:/object/path`
 * @type: the local type, the same as the remote object's
 * @error: return location for a #GError
 *
 * Makes a new instance of @type that mirrors the object exported at
 * @path, over qipc channels (see [method@Bus.export_object]) or D-Bus
 * (see [func@dbus_export_object]). When this returns, the instance
 * already has the remote object's properties, and every change after
 * them is applied as it arrives (see [class@Mirror] for the rules).
 *
 * Nobody exporting at @path fails with %QIPC_REMOTE_ERROR_NOT_FOUND,
 * as does an exporter that does not answer within 5 seconds.
 *
 * Blocks, running the thread-default main context (which must be the
 * bus's or the connection's) until the state has arrived. Changes that
 * arrive in that time are applied too, before handlers connected after
 * this returns can see them: a signal that the remote object emits after
 * a property change may then follow a value already read. To see every
 * change from the state on, connect in the callback of
 * [func@Mirror.new_async].
 *
 * Returns: (transfer full) (type GObject.Object): the mirror instance,
 *   or %NULL with @error set
 */
GObject *
qipc_mirror_new (GObject     *bus_or_connection,
                 const char  *path,
                 GType        type,
                 GError     **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  qipc_mirror_new_async (bus_or_connection, path, type, NULL, store_result, &result);
  wait_for (&result);
  return qipc_mirror_new_finish (result, error);
}

/**
 * qipc_mirror_new_for_dbus_async:
 * @connection: a #GDBusConnection
 * @bus_name: the exporter's unique or well-known name
 * @object_path: the object's D-Bus path
 * @interface_name: (nullable): the interface, or %NULL for the one
 *   [func@dbus_export_object] uses when given none
 *   (`org.qipc.Object.` and the type name)
 * @type: the local type, the same as the remote object's
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the mirror is ready
 * @user_data: data for @callback
 *
 * The form of [ctor@Mirror.new_for_dbus] that does not block.
 */
void
qipc_mirror_new_for_dbus_async (GDBusConnection     *connection,
                                const char          *bus_name,
                                const char          *object_path,
                                const char          *interface_name,
                                GType                type,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (G_IS_DBUS_CONNECTION (connection));
  g_return_if_fail (bus_name != NULL);
  g_return_if_fail (object_path != NULL);

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, qipc_mirror_new_for_dbus_async);
  mirror_start (G_OBJECT (connection), bus_name, object_path, interface_name, type,
                cancellable, task);
}

/**
 * qipc_mirror_new_for_dbus_finish:
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes [func@Mirror.new_for_dbus_async].
 *
 * Returns: (transfer full) (type GObject.Object): the mirror instance,
 *   or %NULL with @error set
 */
GObject *
qipc_mirror_new_for_dbus_finish (GAsyncResult  *result,
                                 GError       **error)
{
  return qipc_mirror_new_finish (result, error);
}

/**
 * qipc_mirror_new_for_dbus:
 * @connection: a #GDBusConnection
 * @bus_name: the exporter's unique or well-known name; a well-known
 *   name is followed as its owner changes
 * @object_path: the object's D-Bus path
 * @interface_name: (nullable): the interface, or %NULL for the one
 *   [func@dbus_export_object] uses when given none
 * @type: the local type, the same as the remote object's
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * [ctor@Mirror.new] over D-Bus, naming the peer and the interface.
 * Signals arrive as D-Bus signals, properties through
 * `org.freedesktop.DBus.Properties` (their `PropertiesChanged` signal
 * must carry the new values), actions are methods; names are mapped as
 * `value-changed` to `ValueChanged`. The remote object is gone when
 * @bus_name has no owner.
 *
 * Blocks, running the thread-default main context meanwhile.
 *
 * Returns: (transfer full) (type GObject.Object): the mirror instance,
 *   or %NULL with @error set
 */
GObject *
qipc_mirror_new_for_dbus (GDBusConnection  *connection,
                          const char       *bus_name,
                          const char       *object_path,
                          const char       *interface_name,
                          GType             type,
                          GCancellable     *cancellable,
                          GError          **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  qipc_mirror_new_for_dbus_async (connection, bus_name, object_path, interface_name, type,
                                  cancellable, store_result, &result);
  wait_for (&result);
  return qipc_mirror_new_finish (result, error);
}

/**
 * qipc_mirror_get_for_object:
 * @instance: an object
 *
 * The handle of a mirror instance made by [ctor@Mirror.new].
 *
 * Returns: (transfer none) (nullable): the #QipcMirror of @instance,
 *   or %NULL when it is not a mirror
 */
QipcMirror *
qipc_mirror_get_for_object (GObject *instance)
{
  g_return_val_if_fail (G_IS_OBJECT (instance), NULL);

  return mirror_quark != 0 ? g_object_get_qdata (instance, mirror_quark) : NULL;
}

/**
 * qipc_mirror_get_instance:
 * @self: a #QipcMirror
 *
 * The instance this mirror keeps in sync.
 *
 * Returns: (transfer none) (nullable): the instance, or %NULL once it
 *   has been finalized
 */
GObject *
qipc_mirror_get_instance (QipcMirror *self)
{
  g_return_val_if_fail (QIPC_IS_MIRROR (self), NULL);

  return self->instance;
}

/**
 * qipc_mirror_get_path:
 * @self: a #QipcMirror
 *
 * The path of the remote object: the channel-style path on a
 * #QipcBus, the D-Bus object path on a D-Bus connection.
 *
 * Returns: the path
 */
const char *
qipc_mirror_get_path (QipcMirror *self)
{
  g_return_val_if_fail (QIPC_IS_MIRROR (self), NULL);

  return self->path;
}

/**
 * qipc_mirror_get_remote_present:
 * @self: a #QipcMirror
 *
 * Whether the remote object is there (see
 * [property@Mirror:remote-present]).
 *
 * Returns: %TRUE when the remote object is there
 */
gboolean
qipc_mirror_get_remote_present (QipcMirror *self)
{
  g_return_val_if_fail (QIPC_IS_MIRROR (self), FALSE);

  return self->remote_present;
}

/**
 * qipc_mirror_get_remote_property:
 * @self: a #QipcMirror
 * @name: the name of a read-only property of the mirrored type
 * @value: (out caller-allocates): an uninitialized #GValue, which gets
 *   the property's type and the remote value, or the default value
 *   while none was reported
 *
 * Gets the value that the remote object last reported for a read-only
 * property. The mirror's instance cannot take such a value (GObject
 * refuses to set a read-only property), so it keeps the property's
 * default there; this is how to read the remote one. The instance still
 * emits #GObject::notify for the property when the remote value changes.
 * The value stays after the remote object vanished, and is replaced when
 * its state is read again. Writable properties are read on the instance,
 * as usual.
 *
 * ```c
 * g_auto(GValue) status = G_VALUE_INIT;
 *
 * if (qipc_mirror_get_remote_property (qipc_mirror_get_for_object (printer),
 *                                      "status", &status))
 *   g_print ("%s\n", g_value_get_string (&status));
 * ```
 *
 * Returns: %TRUE when @value holds the remote value, %FALSE when the
 *   remote object has reported none yet (for instance, it did not export
 *   its properties) and @value holds the property's default
 */
gboolean
qipc_mirror_get_remote_property (QipcMirror *self,
                                 const char *name,
                                 GValue     *value)
{
  GParamSpec *pspec;
  GValue *kept;

  g_return_val_if_fail (QIPC_IS_MIRROR (self), FALSE);
  g_return_val_if_fail (name != NULL, FALSE);
  g_return_val_if_fail (value != NULL && G_VALUE_TYPE (value) == G_TYPE_INVALID, FALSE);
  pspec = g_object_class_find_property (g_type_class_peek (self->type), name);
  g_return_val_if_fail (pspec != NULL && (pspec->flags & G_PARAM_READABLE) &&
                        !instance_can_take (pspec), FALSE);

  g_value_init (value, pspec->value_type);
  kept = g_hash_table_lookup (self->remote_values, pspec->name);
  if (kept == NULL)
    {
      g_param_value_set_default (pspec, value);
      return FALSE;
    }
  g_value_copy (kept, value);
  return TRUE;
}

/**
 * qipc_mirror_call_async:
 * @self: a #QipcMirror
 * @action: the name of an action signal of the mirrored type
 *   (`increment`)
 * @args: (nullable): its arguments as a tuple (`(i)`), in the mapping of
 *   the data model; %NULL for none. Floating references are sunk.
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the remote action's result
 * @user_data: data for @callback
 *
 * Calls an action of the remote object and gets its return value:
 * emitting the action on the mirror instance calls it too, but cannot
 * wait for the value.
 */
void
qipc_mirror_call_async (QipcMirror          *self,
                        const char          *action,
                        GVariant            *args,
                        GCancellable        *cancellable,
                        GAsyncReadyCallback  callback,
                        gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (QIPC_IS_MIRROR (self));
  g_return_if_fail (action != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, qipc_mirror_call_async);
  if (args == NULL)
    args = g_variant_new_tuple (NULL, 0);
  g_variant_ref_sink (args);
  if (!self->remote_present || self->instance == NULL)
    g_task_return_new_error (task, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_VANISHED,
                             "The object at %s is gone", self->path);
  else if (!g_variant_is_of_type (args, G_VARIANT_TYPE_TUPLE))
    g_task_return_new_error (task, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_INVALID_ARGUMENTS,
                             "The arguments of '%s' must be a tuple, not '%s'", action,
                             g_variant_get_type_string (args));
  else
    forward_call (self, action, args, task);
  g_variant_unref (args);
}

/**
 * qipc_mirror_call_finish:
 * @self: a #QipcMirror
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Mirror.call_async].
 *
 * Returns: (transfer full) (nullable): the action's return value in the
 *   data model's mapping (an `i` for an int), or %NULL for an action
 *   that returns nothing or with @error set (%QIPC_REMOTE_ERROR_VANISHED
 *   when the remote object went away first)
 */
GVariant *
qipc_mirror_call_finish (QipcMirror    *self,
                         GAsyncResult  *result,
                         GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}
