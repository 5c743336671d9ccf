/* qipc-dbus-signal.c: a remote D-Bus signal calls a local closure
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * As QtDBus's QDBusConnection::connect(): argN matches go into the bus's
 * match rule (so the bus only sends what matches) and are checked again
 * here, since other subscriptions on the same connection may bring in
 * messages this one did not ask for; a well-known sender name is
 * watched, and only its current owner's signals are delivered.
 */

#include "qipc-dbus.h"
#include "qipc-value-private.h"

#include <string.h>

typedef struct
{
  GDBusConnection *connection;
  GClosure *closure;
  char *rule;
  char **arg_match;
  char *sender;             /* unique name, or NULL for anyone */
  char *well_known;         /* the name followed, or NULL */
  char *owner;              /* its current owner */
  gboolean owner_known;     /* the watch has reported once */
  GPtrArray *pending;       /* GDBusMessage, before owner_known */
  guint subscription;
  guint watch;
  guint id;
} Subscription;

G_LOCK_DEFINE_STATIC (subscriptions);
static GHashTable *subscriptions;  /* id -> Subscription */
static guint last_id;

/* ------------------------------------------------------------------ */
/* The match rule                                                      */

static void
append_match (GString    *rule,
              const char *key,
              const char *value)
{
  g_auto(GStrv) parts = NULL;
  g_autofree char *escaped = NULL;

  if (value == NULL)
    return;
  /* Inside single quotes nothing is special but the quote itself,
   * which is written as '\'' (the D-Bus specification's escape). */
  parts = g_strsplit (value, "'", -1);
  escaped = g_strjoinv ("'\\''", parts);
  g_string_append_printf (rule, ",%s='%s'", key, escaped);
}

static char *
match_rule (const char         *sender,
            const char         *object_path,
            const char         *interface_name,
            const char         *signal_name,
            const char * const *arg_match)
{
  GString *rule = g_string_new ("type='signal'");

  append_match (rule, "sender", sender);
  append_match (rule, "path", object_path);
  append_match (rule, "interface", interface_name);
  append_match (rule, "member", signal_name);
  for (guint i = 0; arg_match != NULL && arg_match[i] != NULL; i++)
    if (arg_match[i][0] != '\0')
      {
        g_autofree char *key = g_strdup_printf ("arg%u", i);

        append_match (rule, key, arg_match[i]);
      }
  return g_string_free (rule, FALSE);
}

static gboolean
args_match (GVariant           *parameters,
            const char * const *arg_match)
{
  for (guint i = 0; arg_match != NULL && arg_match[i] != NULL; i++)
    {
      g_autoptr(GVariant) arg = NULL;

      if (arg_match[i][0] == '\0')
        continue;
      if (i >= g_variant_n_children (parameters))
        return FALSE;
      arg = g_variant_get_child_value (parameters, i);
      if (!g_variant_is_of_type (arg, G_VARIANT_TYPE_STRING) &&
          !g_variant_is_of_type (arg, G_VARIANT_TYPE_OBJECT_PATH))
        return FALSE;
      if (strcmp (g_variant_get_string (arg, NULL), arg_match[i]) != 0)
        return FALSE;
    }
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* Delivery                                                            */

/* The natural GValue of a D-Bus value: numbers, booleans, strings and
 * string arrays as themselves, byte arrays as GBytes, anything else as
 * a GVariant. */
static void
arg_to_value (GVariant *arg,
              GValue   *value)
{
  if (g_variant_is_of_type (arg, G_VARIANT_TYPE_BYTESTRING))
    {
      g_value_init (value, G_TYPE_BYTES);
      g_value_take_boxed (value, g_variant_get_data_as_bytes (arg));
    }
  else if (g_variant_is_of_type (arg, G_VARIANT_TYPE_BYTE))
    {
      g_value_init (value, G_TYPE_UCHAR);
      g_value_set_uchar (value, g_variant_get_byte (arg));
    }
  else
    g_dbus_gvariant_to_gvalue (arg, value);
}

static void
deliver (Subscription *subscription,
         GVariant     *parameters)
{
  gsize n_args = g_variant_n_children (parameters);
  g_autofree GValue *values = g_new0 (GValue, n_args);

  if (!args_match (parameters, (const char * const *) subscription->arg_match))
    return;
  for (gsize i = 0; i < n_args; i++)
    {
      g_autoptr(GVariant) arg = g_variant_get_child_value (parameters, i);

      arg_to_value (arg, &values[i]);
    }
  g_closure_invoke (subscription->closure, NULL, n_args, values, NULL);
  for (gsize i = 0; i < n_args; i++)
    g_value_unset (&values[i]);
}

static gboolean
sender_matches (Subscription *subscription,
                const char   *sender)
{
  if (subscription->well_known != NULL)
    return subscription->owner != NULL && g_strcmp0 (sender, subscription->owner) == 0;
  return subscription->sender == NULL || g_strcmp0 (sender, subscription->sender) == 0;
}

static void
on_signal (GDBusConnection *connection,
           const char      *sender,
           const char      *object_path,
           const char      *interface_name,
           const char      *signal_name,
           GVariant        *parameters,
           gpointer         user_data)
{
  Subscription *subscription = user_data;

  if (subscription->well_known != NULL && !subscription->owner_known)
    {
      /* Until the name's owner is known, keep what came; the bus only
       * routes it here when it matches the rule's sender. */
      g_ptr_array_add (subscription->pending,
                       g_variant_new ("(s@*)", sender != NULL ? sender : "", parameters));
      g_variant_ref_sink (g_ptr_array_index (subscription->pending, subscription->pending->len - 1));
      return;
    }
  if (sender_matches (subscription, sender))
    deliver (subscription, parameters);
}

static void
set_owner (Subscription *subscription,
           const char   *owner)
{
  gboolean first = !subscription->owner_known;

  g_free (subscription->owner);
  subscription->owner = g_strdup (owner);
  subscription->owner_known = TRUE;
  if (!first)
    return;
  for (guint i = 0; i < subscription->pending->len; i++)
    {
      GVariant *pending = g_ptr_array_index (subscription->pending, i);
      const char *sender;
      g_autoptr(GVariant) parameters = NULL;

      g_variant_get (pending, "(&s@*)", &sender, &parameters);
      if (sender_matches (subscription, sender))
        deliver (subscription, parameters);
    }
  g_ptr_array_set_size (subscription->pending, 0);
}

static void
on_name_appeared (GDBusConnection *connection,
                  const char      *name,
                  const char      *name_owner,
                  gpointer         user_data)
{
  set_owner (user_data, name_owner);
}

static void
on_name_vanished (GDBusConnection *connection,
                  const char      *name,
                  gpointer         user_data)
{
  set_owner (user_data, NULL);
}

/* ------------------------------------------------------------------ */
/* Subscriptions                                                       */

static void
subscription_free (gpointer data)
{
  Subscription *subscription = data;

  g_closure_invalidate (subscription->closure);
  g_closure_unref (subscription->closure);
  g_ptr_array_unref (subscription->pending);
  g_strfreev (subscription->arg_match);
  g_free (subscription->rule);
  g_free (subscription->sender);
  g_free (subscription->well_known);
  g_free (subscription->owner);
  g_object_unref (subscription->connection);
  g_free (subscription);
}

static gboolean
check_arguments (const char          *sender,
                 const char          *object_path,
                 const char          *interface_name,
                 const char          *signal_name,
                 GError             **error)
{
  const char *invalid = NULL;

  if (sender != NULL && !g_dbus_is_name (sender))
    invalid = sender;
  else if (object_path != NULL && !g_variant_is_object_path (object_path))
    invalid = object_path;
  else if (interface_name != NULL && !g_dbus_is_interface_name (interface_name))
    invalid = interface_name;
  else if (signal_name != NULL && !g_dbus_is_member_name (signal_name))
    invalid = signal_name;
  if (invalid == NULL)
    return TRUE;
  g_set_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_INVALID_NAME,
               "'%s' is not a valid D-Bus name here", invalid);
  return FALSE;
}

static gboolean
call_bus (GDBusConnection  *connection,
          const char       *method,
          const char       *rule,
          GError          **error)
{
  g_autoptr(GVariant) reply =
    g_dbus_connection_call_sync (connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                 "org.freedesktop.DBus", method, g_variant_new ("(s)", rule),
                                 NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, error);

  return reply != NULL;
}

/**
 * qipc_dbus_connect_signal:
 * @connection: a D-Bus connection to a message bus
 * @sender: (nullable): the unique or well-known name of the sender, or
 *   %NULL for any sender
 * @object_path: (nullable): the object path the signal is emitted on,
 *   or %NULL for any
 * @interface_name: (nullable): its interface, or %NULL for any
 * @signal_name: (nullable): its name (a D-Bus member name such as
 *   `ValueChanged`), or %NULL for any
 * @arg_match: (nullable) (array zero-terminated=1): strings that the
 *   signal's first string arguments must equal, in order (`arg0`,
 *   `arg1`…); an empty string matches any value of that argument
 * @closure: the closure to invoke for each matching signal
 * @error: return location for a #GError
 *
 * Calls @closure for each D-Bus signal that matches, as QtDBus's
 * `QDBusConnection::connect()` does: the closure receives the signal's
 * arguments, each converted to its natural #GValue (`i` as `int`, `s`
 * and `o` as strings, `as` as a string array, `ay` as #GBytes, other
 * numbers and booleans as themselves, anything else as a #GVariant).
 *
 * The @arg_match strings go into the bus's match rule, so the bus only
 * sends the signals that match. When @sender is a well-known name, the
 * subscription follows whichever process owns it: only signals from its
 * current owner arrive, also after the name has moved to another
 * process.
 *
 * @closure is invoked on the thread-default main context of the thread
 * that calls this function. In C, g_cclosure_new() makes one from a
 * callback whose arguments are the signal's, followed by the user data
 * (closures without a marshaller get g_cclosure_marshal_generic()).
 *
 * ```c
 * static void
 * on_value_changed (int value, const char *label, gpointer user_data)
 * {
 *   g_print ("%s: %d\n", label, value);
 * }
 *
 * id = qipc_dbus_connect_signal (connection, "org.example.Counter", "/org/example/Counter",
 *                                "org.example.Counter", "ValueChanged", NULL,
 *                                g_cclosure_new (G_CALLBACK (on_value_changed), NULL, NULL),
 *                                &error);
 * ```
 *
 * Returns: the connection's id (never 0), for
 *   [func@dbus_disconnect_signal], or 0 with @error set
 */
guint
qipc_dbus_connect_signal (GDBusConnection     *connection,
                          const char          *sender,
                          const char          *object_path,
                          const char          *interface_name,
                          const char          *signal_name,
                          const char * const  *arg_match,
                          GClosure            *closure,
                          GError             **error)
{
  Subscription *subscription;
  gboolean unique;

  g_return_val_if_fail (G_IS_DBUS_CONNECTION (connection), 0);
  g_return_val_if_fail (closure != NULL, 0);
  g_return_val_if_fail (error == NULL || *error == NULL, 0);

  g_closure_ref (closure);
  g_closure_sink (closure);
  if (!check_arguments (sender, object_path, interface_name, signal_name, error))
    {
      g_closure_unref (closure);
      return 0;
    }
  if (G_CLOSURE_NEEDS_MARSHAL (closure))
    g_closure_set_marshal (closure, g_cclosure_marshal_generic);

  unique = sender != NULL && (g_dbus_is_unique_name (sender) ||
                              g_str_equal (sender, "org.freedesktop.DBus"));
  subscription = g_new0 (Subscription, 1);
  subscription->connection = g_object_ref (connection);
  subscription->closure = closure;
  subscription->arg_match = g_strdupv ((char **) arg_match);
  subscription->sender = unique ? g_strdup (sender) : NULL;
  subscription->well_known = sender != NULL && !unique ? g_strdup (sender) : NULL;
  subscription->pending = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
  subscription->rule = match_rule (sender, object_path, interface_name, signal_name, arg_match);

  if (!call_bus (connection, "AddMatch", subscription->rule, error))
    {
      subscription_free (subscription);
      return 0;
    }
  /* Watching after AddMatch: once the watch knows the owner, every
   * signal of that owner matching the rule reaches this process. */
  if (subscription->well_known != NULL)
    subscription->watch =
      g_bus_watch_name_on_connection (connection, subscription->well_known,
                                      G_BUS_NAME_WATCHER_FLAGS_NONE,
                                      on_name_appeared, on_name_vanished,
                                      subscription, NULL);
  subscription->subscription =
    g_dbus_connection_signal_subscribe (connection, subscription->sender, interface_name,
                                        signal_name, object_path, NULL,
                                        G_DBUS_SIGNAL_FLAGS_NO_MATCH_RULE,
                                        on_signal, subscription, subscription_free);

  G_LOCK (subscriptions);
  if (subscriptions == NULL)
    subscriptions = g_hash_table_new (NULL, NULL);
  subscription->id = ++last_id;
  g_hash_table_insert (subscriptions, GUINT_TO_POINTER (subscription->id), subscription);
  G_UNLOCK (subscriptions);
  return subscription->id;
}

/**
 * qipc_dbus_disconnect_signal:
 * @connection: the connection given to [func@dbus_connect_signal]
 * @id: the id it returned
 *
 * Stops calling the closure of [func@dbus_connect_signal] and removes
 * its match rule from the bus.
 *
 * Returns: %TRUE if @id was a connection on @connection
 */
gboolean
qipc_dbus_disconnect_signal (GDBusConnection *connection,
                             guint            id)
{
  Subscription *subscription = NULL;

  g_return_val_if_fail (G_IS_DBUS_CONNECTION (connection), FALSE);

  G_LOCK (subscriptions);
  if (subscriptions != NULL)
    subscription = g_hash_table_lookup (subscriptions, GUINT_TO_POINTER (id));
  if (subscription != NULL && subscription->connection == connection)
    g_hash_table_remove (subscriptions, GUINT_TO_POINTER (id));
  else
    subscription = NULL;
  G_UNLOCK (subscriptions);

  if (subscription == NULL)
    return FALSE;
  g_dbus_connection_signal_unsubscribe (connection, subscription->subscription);
  if (subscription->watch != 0)
    g_bus_unwatch_name (subscription->watch);
  g_dbus_connection_call (connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                          "org.freedesktop.DBus", "RemoveMatch",
                          g_variant_new ("(s)", subscription->rule),
                          NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL, NULL);
  /* GDBus frees the subscription once no callback can run any more. */
  return TRUE;
}
