/* qipc-dbus-transport.c: QipcBus channels over a D-Bus daemon
 *
 * Each QipcBus on `dbus:…` has its own GDBusConnection (not the shared
 * singleton, so that closing and reconnecting are its own). A message is
 * the broadcast signal org.qipc.Channel1.Message (channel, message,
 * type, data) on /org/qipc/Channel1; the daemon routes it by the match
 * rules each process adds for the names it listens to, and the bus
 * matches patterns exactly on arrival. Each client owns a well-known
 * name under org.qipc.Channel1.Client. and answers Query and
 * ListChannels there, which is how is_registered and list_channels see
 * the other processes. The format is in docs/dbus-transport.md.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "qipc-dbus-transport-private.h"
#include "qipc-frame-private.h"

#include <string.h>

#define OPEN_TIMEOUT_S 5
#define MIN_RETRY_MS 20
#define MAX_RETRY_MS 2000
/* How long one peer may take to answer Query or ListChannels; a peer
 * that does not answer in time counts as not listening. */
#define PEER_TIMEOUT_MS 2000
#define CLOSE_FLUSH_MS 1000

#define DBUS_NAME "org.freedesktop.DBus"
#define DBUS_PATH "/org/freedesktop/DBus"
#define DBUS_REQUEST_NAME_PRIMARY_OWNER 1
#define DBUS_NAME_FLAG_DO_NOT_QUEUE 4

/* A message sent while the daemon is away, waiting for it. */
typedef struct
{
  char *channel;
  char *message;
  GVariant *data;
  gsize size;
} Queued;

struct _QipcDbusTransport
{
  QipcTransport parent_instance;

  GBusType bus_type;            /* G_BUS_TYPE_NONE: an explicit address */
  char *address;                /* the GDBus address, once known */
  GMainContext *context;

  GDBusConnection *connection;  /* NULL while away */
  gboolean ready;               /* name owned, matches added, queue sent */
  gboolean opened;              /* open() succeeded: losses reconnect */
  gboolean closed;
  char *client_name;
  guint signal_id;
  guint object_id;
  gulong closed_id;
  GCancellable *connecting;     /* the connection attempt under way */
  GError *attempt_error;        /* how the attempt open() waits for failed */
  guint retry_source;
  guint retry_ms;

  GHashTable *names;            /* id -> name or pattern */
  GHashTable *rules;            /* match rule -> reference count */
  gboolean monitoring;
  GQueue queue;                 /* Queued */
  gsize queued_bytes;
  GQueue waiting;               /* GTask calls waiting for the daemon */
};

G_DEFINE_FINAL_TYPE (QipcDbusTransport, _qipc_dbus_transport, QIPC_TYPE_TRANSPORT)

static const char introspection_xml[] =
  "<node>"
  "  <interface name='" QIPC_DBUS_INTERFACE "'>"
  "    <signal name='Message'>"
  "      <arg name='channel' type='s'/>"
  "      <arg name='message' type='s'/>"
  "      <arg name='type' type='s'/>"
  "      <arg name='data' type='ay'/>"
  "    </signal>"
  "    <method name='Query'>"
  "      <arg name='channel' type='s' direction='in'/>"
  "      <arg name='listening' type='b' direction='out'/>"
  "    </method>"
  "    <method name='ListChannels'>"
  "      <arg name='channels' type='a(su)' direction='out'/>"
  "    </method>"
  "  </interface>"
  "</node>";

static GDBusInterfaceInfo *interface_info;

static void connect_start (QipcDbusTransport *self);
static void run_call (QipcDbusTransport *self, GTask *task);

static void
queued_free (gpointer data)
{
  Queued *queued = data;

  g_free (queued->channel);
  g_free (queued->message);
  g_clear_pointer (&queued->data, g_variant_unref);
  g_free (queued);
}

static QipcBus *
get_bus (QipcDbusTransport *self)
{
  return _qipc_transport_get_bus (QIPC_TRANSPORT (self));
}

/* ------------------------------------------------------------------ */
/* The wire format                                                     */

/* GVariant's serialized form is in host order; the wire's is
 * little-endian, as GVariant's own file formats are. */
static GVariant *
to_little_endian (GVariant *value)
{
#if G_BYTE_ORDER == G_BIG_ENDIAN
  return g_variant_byteswap (value);
#else
  return g_variant_ref (value);
#endif
}

static GVariant *
message_parameters (const char *channel,
                    const char *message,
                    GVariant   *data)
{
  g_autoptr(GVariant) wire = NULL;
  g_autoptr(GBytes) bytes = NULL;

  if (data == NULL)
    return g_variant_new ("(sss@ay)", channel, message, "",
                          g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, NULL, 0, 1));
  wire = to_little_endian (data);
  bytes = g_variant_get_data_as_bytes (wire);
  return g_variant_new ("(sss@ay)", channel, message, g_variant_get_type_string (data),
                        g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING, bytes, TRUE));
}

/* The data of a received Message, or FALSE when it is malformed (a
 * foreign sender's mistake: dropped, as the broker drops bad frames). */
static gboolean
message_data (const char  *type,
              GVariant    *bytes_value,
              GVariant   **data)
{
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GVariant) wire = NULL;

  *data = NULL;
  if (*type == '\0')
    return g_variant_get_size (bytes_value) == 0;
  if (!g_variant_type_string_is_valid (type) || !g_variant_type_is_definite (G_VARIANT_TYPE (type)) ||
      !_qipc_data_type_fits (type, strlen (type)))
    return FALSE;
  bytes = g_variant_get_data_as_bytes (bytes_value);
  wire = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE (type), bytes, FALSE));
  *data = to_little_endian (wire);
  return TRUE;
}

static void
on_message (GDBusConnection *connection,
            const char      *sender,
            const char      *object_path,
            const char      *interface_name,
            const char      *signal_name,
            GVariant        *parameters,
            gpointer         user_data)
{
  QipcDbusTransport *self = user_data;
  g_autoptr(GVariant) bytes_value = NULL;
  g_autoptr(GVariant) data = NULL;
  const char *channel, *message, *type;

  if (self->closed || !g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(sssay)")))
    return;
  g_variant_get (parameters, "(&s&s&s@ay)", &channel, &message, &type, &bytes_value);
  if (!_qipc_channel_name_validate (channel, FALSE, NULL) ||
      !_qipc_message_name_validate (message, NULL) ||
      !message_data (type, bytes_value, &data))
    {
      g_debug ("Dropping a malformed %s.Message from %s", QIPC_DBUS_INTERFACE, sender);
      return;
    }
  _qipc_bus_transport_deliver (get_bus (self), channel, message, data);
}

/* ------------------------------------------------------------------ */
/* Match rules                                                         */

static void
append_quoted (GString    *rule,
               const char *value)
{
  /* Inside quotes nothing is special but the quote itself, which
   * cannot be escaped there: close, escape, reopen. */
  g_string_append_c (rule, '\'');
  for (const char *p = value; *p != '\0'; p++)
    {
      if (*p == '\'')
        g_string_append (rule, "'\\''");
      else
        g_string_append_c (rule, *p);
    }
  g_string_append_c (rule, '\'');
}

/* The rule for a name (arg0, exact), a pattern (arg0path: the literal
 * segments before its first wildcard, which the daemon compares as a
 * prefix; the bus matches the rest), or, for %NULL, every channel. */
static char *
match_rule_for (const char *name)
{
  GString *rule = g_string_new ("type='signal',interface='" QIPC_DBUS_INTERFACE "',"
                                "member='Message',path='" QIPC_DBUS_PATH "'");
  const char *wildcard;

  if (name == NULL)
    return g_string_free (rule, FALSE);
  wildcard = strchr (name, '*');
  if (wildcard == NULL)
    {
      g_string_append (rule, ",arg0=");
      append_quoted (rule, name);
    }
  else if (wildcard != name)
    {
      /* A wildcard is a whole segment: what comes before ends in '/'. */
      g_autofree char *prefix = g_strndup (name, wildcard - name);

      g_string_append (rule, ",arg0path=");
      append_quoted (rule, prefix);
    }
  return g_string_free (rule, FALSE);
}

static void
on_match_done (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  /* A connection that ends meanwhile is reconnected, with its rules. */
  if (reply == NULL && !g_dbus_connection_is_closed (G_DBUS_CONNECTION (source)) &&
      !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CLOSED))
    g_warning ("qipc: the D-Bus daemon refused a match rule: %s", error->message);
}

static void
call_daemon_match (QipcDbusTransport *self,
                   const char        *method,
                   const char        *rule)
{
  g_dbus_connection_call (self->connection, DBUS_NAME, DBUS_PATH, DBUS_NAME, method,
                          g_variant_new ("(s)", rule), NULL, G_DBUS_CALL_FLAGS_NONE, -1,
                          NULL, on_match_done, NULL);
}

static void
rule_ref (QipcDbusTransport *self,
          const char        *name)
{
  g_autofree char *rule = match_rule_for (name);
  guint count = GPOINTER_TO_UINT (g_hash_table_lookup (self->rules, rule));

  if (count == 0 && self->ready)
    call_daemon_match (self, "AddMatch", rule);
  g_hash_table_insert (self->rules, g_steal_pointer (&rule), GUINT_TO_POINTER (count + 1));
}

static void
rule_unref (QipcDbusTransport *self,
            const char        *name)
{
  g_autofree char *rule = match_rule_for (name);
  guint count = GPOINTER_TO_UINT (g_hash_table_lookup (self->rules, rule));

  g_return_if_fail (count > 0);
  if (count > 1)
    {
      g_hash_table_insert (self->rules, g_steal_pointer (&rule), GUINT_TO_POINTER (count - 1));
      return;
    }
  g_hash_table_remove (self->rules, rule);
  if (self->ready)
    call_daemon_match (self, "RemoveMatch", rule);
}

/* ------------------------------------------------------------------ */
/* What this process listens to, for Query and ListChannels            */

static gboolean
local_match (QipcDbusTransport *self,
             const char        *channel)
{
  GHashTableIter iter;
  gpointer name;

  g_hash_table_iter_init (&iter, self->names);
  while (g_hash_table_iter_next (&iter, NULL, &name))
    if (_qipc_channel_pattern_match (name, channel))
      return TRUE;
  return FALSE;
}

/* name -> count of this process's channels on it, added to @counts. */
static void
add_local_counts (QipcDbusTransport *self,
                  GHashTable        *counts)
{
  GHashTableIter iter;
  gpointer name;

  g_hash_table_iter_init (&iter, self->names);
  while (g_hash_table_iter_next (&iter, NULL, &name))
    {
      guint count = GPOINTER_TO_UINT (g_hash_table_lookup (counts, name));

      g_hash_table_insert (counts, g_strdup (name), GUINT_TO_POINTER (count + 1));
    }
}

static GVariant *
counts_to_variant (GHashTable *counts)
{
  GVariantBuilder builder;
  GHashTableIter iter;
  gpointer name, count;

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(su)"));
  g_hash_table_iter_init (&iter, counts);
  while (g_hash_table_iter_next (&iter, &name, &count))
    g_variant_builder_add (&builder, "(su)", name, GPOINTER_TO_UINT (count));
  return g_variant_builder_end (&builder);
}

static void
handle_method_call (GDBusConnection       *connection,
                    const char            *sender,
                    const char            *object_path,
                    const char            *interface_name,
                    const char            *method_name,
                    GVariant              *parameters,
                    GDBusMethodInvocation *invocation,
                    gpointer               user_data)
{
  QipcDbusTransport *self = user_data;

  if (g_str_equal (method_name, "Query"))
    {
      const char *channel;

      g_variant_get (parameters, "(&s)", &channel);
      g_dbus_method_invocation_return_value (invocation,
                                             g_variant_new ("(b)", local_match (self, channel)));
    }
  else
    {
      g_autoptr(GHashTable) counts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

      add_local_counts (self, counts);
      g_dbus_method_invocation_return_value (invocation,
                                             g_variant_new ("(@a(su))", counts_to_variant (counts)));
    }
}

static const GDBusInterfaceVTable vtable = { handle_method_call, NULL, NULL, { 0 } };

/* ------------------------------------------------------------------ */
/* Sending                                                             */

static gboolean
emit_message (QipcDbusTransport  *self,
              const char         *channel,
              const char         *message,
              GVariant           *data,
              GError            **error)
{
  return g_dbus_connection_emit_signal (self->connection, NULL, QIPC_DBUS_PATH,
                                        QIPC_DBUS_INTERFACE, "Message",
                                        message_parameters (channel, message, data), error);
}

/* Sends what was queued while away; stops at a connection that is
 * already gone again, keeping the rest. */
static void
send_queued (QipcDbusTransport *self)
{
  while (!g_queue_is_empty (&self->queue))
    {
      Queued *queued = g_queue_peek_head (&self->queue);
      g_autoptr(GError) error = NULL;

      if (!emit_message (self, queued->channel, queued->message, queued->data, &error))
        {
          if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CLOSED))
            return;
          _qipc_bus_transport_send_failed (get_bus (self), g_steal_pointer (&error));
        }
      self->queued_bytes -= queued->size;
      queued_free (g_queue_pop_head (&self->queue));
    }
}

static gboolean
enqueue (QipcDbusTransport  *self,
         const char         *channel,
         const char         *message,
         GVariant           *data,
         gsize               size,
         GError            **error)
{
  Queued *queued;

  if (self->queued_bytes + size > qipc_bus_get_max_queued (get_bus (self)))
    {
      g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_QUEUE_FULL,
                   "The D-Bus daemon at %s is away and %" G_GSIZE_FORMAT
                   " bytes are already waiting for it", self->address, self->queued_bytes);
      return FALSE;
    }
  queued = g_new0 (Queued, 1);
  queued->channel = g_strdup (channel);
  queued->message = g_strdup (message);
  queued->data = data != NULL ? g_variant_ref_sink (data) : NULL;
  queued->size = size;
  g_queue_push_tail (&self->queue, queued);
  self->queued_bytes += size;
  return TRUE;
}

static gboolean
qipc_dbus_transport_send (QipcTransport  *transport,
                          const char     *channel,
                          const char     *message,
                          GVariant       *data,
                          GError        **error)
{
  QipcDbusTransport *self = QIPC_DBUS_TRANSPORT (transport);
  g_autoptr(GError) local_error = NULL;
  gsize size = strlen (channel) + strlen (message);

  if (data != NULL)
    size += g_variant_get_size (data) + strlen (g_variant_get_type_string (data));
  if (size > QIPC_DBUS_MAX_MESSAGE)
    {
      g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_LIMIT_EXCEEDED,
                   "A message of %" G_GSIZE_FORMAT " bytes is too large for D-Bus; "
                   "the limit is %d bytes", size, QIPC_DBUS_MAX_MESSAGE);
      return FALSE;
    }
  if (self->ready)
    {
      if (emit_message (self, channel, message, data, &local_error))
        return TRUE;
      /* Gone just now: the "closed" signal is on its way; queue. */
      if (!g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_CLOSED))
        {
          g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_FAILED,
                       "Cannot send on D-Bus: %s", local_error->message);
          return FALSE;
        }
    }
  return enqueue (self, channel, message, data, size, error);
}

/* ------------------------------------------------------------------ */
/* Subscriptions                                                       */

static void
qipc_dbus_transport_subscribe (QipcTransport *transport,
                               guint32        id,
                               const char    *name)
{
  QipcDbusTransport *self = QIPC_DBUS_TRANSPORT (transport);

  g_hash_table_insert (self->names, GUINT_TO_POINTER (id), g_strdup (name));
  rule_ref (self, name);
}

static void
qipc_dbus_transport_unsubscribe (QipcTransport *transport,
                                 guint32        id,
                                 const char    *name)
{
  QipcDbusTransport *self = QIPC_DBUS_TRANSPORT (transport);

  if (g_hash_table_remove (self->names, GUINT_TO_POINTER (id)))
    rule_unref (self, name);
}

/* ------------------------------------------------------------------ */
/* Calls                                                               */

typedef struct
{
  QipcFrameType type;
  GVariant *body;
  /* Asking the other clients (QUERY, LIST) */
  guint pending;
  gboolean found;
  GHashTable *counts;
} CallData;

static void
call_data_free (gpointer data)
{
  CallData *call = data;

  g_clear_pointer (&call->body, g_variant_unref);
  g_clear_pointer (&call->counts, g_hash_table_unref);
  g_free (call);
}

static void
return_disconnected (GTask *task)
{
  g_task_return_new_error (task, QIPC_BUS_ERROR, QIPC_BUS_ERROR_DISCONNECTED,
                           "The bus was closed");
}

/* A call whose connection ended before the answer: it waits for the
 * next one, as a call made while away does. */
static void
call_wait (QipcDbusTransport *self,
           GTask             *task)
{
  if (g_task_return_error_if_cancelled (task))
    {
      g_object_unref (task);
      return;
    }
  if (self->closed)
    {
      return_disconnected (task);
      g_object_unref (task);
      return;
    }
  g_queue_push_tail (&self->waiting, task);
}

/* Answers @task with @reply (floating), or, once the bus is closed,
 * with DISCONNECTED, as the native protocol does. Takes @task. */
static void
call_answer (QipcDbusTransport *self,
             GTask             *task,
             GVariant          *reply)
{
  g_variant_ref_sink (reply);
  if (self->closed)
    {
      return_disconnected (task);
      g_variant_unref (reply);
    }
  else
    g_task_return_pointer (task, reply, (GDestroyNotify) g_variant_unref);
  g_object_unref (task);
}

/* A call to the daemon failed: lost with the connection, it waits for
 * the next one; refused, it fails. Takes @task. */
static void
call_failed (QipcDbusTransport *self,
             GTask             *task,
             GDBusConnection   *connection,
             const GError      *error)
{
  if (g_dbus_connection_is_closed (connection) || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      call_wait (self, task);
      return;
    }
  g_task_return_new_error (task, QIPC_BUS_ERROR, QIPC_BUS_ERROR_FAILED,
                           "The D-Bus daemon refused the request: %s", error->message);
  g_object_unref (task);
}

static void
on_round_trip (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  GTask *task = user_data;
  QipcDbusTransport *self = g_task_get_source_object (task);
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  if (reply == NULL)
    {
      call_failed (self, task, G_DBUS_CONNECTION (source), error);
      return;
    }
  call_answer (self, task, g_variant_new ("()"));
}

/* The daemon handles each connection's messages in order: when it
 * answers GetId, every signal this connection sent before the call has
 * been routed to the receivers' queues, and every AddMatch before it is
 * in force. That is what a flush (PING) and MONITOR promise. */
static void
round_trip (QipcDbusTransport *self,
            GTask             *task)
{
  g_dbus_connection_call (self->connection, DBUS_NAME, DBUS_PATH, DBUS_NAME, "GetId",
                          NULL, G_VARIANT_TYPE ("(s)"), G_DBUS_CALL_FLAGS_NONE, -1,
                          g_task_get_cancellable (task), on_round_trip, task);
}

/* One answer (or the asking itself) is done: each holds a reference to
 * @task, which this takes; the last one answers the call. */
static void
peer_answered (GTask *task)
{
  CallData *call = g_task_get_task_data (task);

  if (--call->pending > 0)
    {
      g_object_unref (task);
      return;
    }
  if (call->type == QIPC_FRAME_QUERY)
    call_answer (g_task_get_source_object (task), task, g_variant_new ("(b)", call->found));
  else
    call_answer (g_task_get_source_object (task), task, counts_to_variant (call->counts));
}

static void
on_peer_reply (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  GTask *task = user_data;
  CallData *call = g_task_get_task_data (task);
  g_autoptr(GVariant) reply = NULL;

  /* A peer that is gone or does not answer listens to nothing. */
  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, NULL);
  if (reply != NULL && call->type == QIPC_FRAME_QUERY)
    {
      gboolean found;

      g_variant_get (reply, "(b)", &found);
      call->found |= found;
    }
  else if (reply != NULL)
    {
      g_autoptr(GVariantIter) iter = NULL;
      const char *name;
      guint32 count;

      g_variant_get (reply, "(a(su))", &iter);
      while (g_variant_iter_next (iter, "(&su)", &name, &count))
        g_hash_table_insert (call->counts, g_strdup (name),
                             GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (call->counts, name)) + count));
    }
  peer_answered (task);
}

static void
ask_peer (QipcDbusTransport *self,
          GTask             *task,
          const char        *peer)
{
  CallData *call = g_task_get_task_data (task);
  gboolean query = call->type == QIPC_FRAME_QUERY;

  call->pending++;
  g_dbus_connection_call (self->connection, peer, QIPC_DBUS_PATH, QIPC_DBUS_INTERFACE,
                          query ? "Query" : "ListChannels",
                          query ? call->body : NULL,
                          query ? G_VARIANT_TYPE ("(b)") : G_VARIANT_TYPE ("(a(su))"),
                          G_DBUS_CALL_FLAGS_NO_AUTO_START, PEER_TIMEOUT_MS,
                          g_task_get_cancellable (task), on_peer_reply, g_object_ref (task));
}

static void
on_list_names (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  GTask *task = user_data;
  QipcDbusTransport *self = g_task_get_source_object (task);
  CallData *call = g_task_get_task_data (task);
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariantIter) iter = NULL;
  g_autoptr(GError) error = NULL;
  const char *name;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  if (reply == NULL)
    {
      call_failed (self, task, G_DBUS_CONNECTION (source), error);
      return;
    }
  /* Counted as one pending answer until every peer has been asked. */
  call->pending = 1;
  g_variant_get (reply, "(as)", &iter);
  while (g_variant_iter_next (iter, "&s", &name))
    if (g_str_has_prefix (name, QIPC_DBUS_CLIENT_PREFIX) &&
        g_strcmp0 (name, self->client_name) != 0 &&
        self->connection == G_DBUS_CONNECTION (source))
      ask_peer (self, task, name);
  peer_answered (task);
}

/* QUERY and LIST: this process's own answer, then every other client's. */
static void
ask_peers (QipcDbusTransport *self,
           GTask             *task)
{
  CallData *call = g_task_get_task_data (task);

  if (call->type == QIPC_FRAME_QUERY)
    {
      const char *channel;

      g_variant_get (call->body, "(&s)", &channel);
      call->found = local_match (self, channel);
      if (call->found)
        {
          call_answer (self, task, g_variant_new ("(b)", TRUE));
          return;
        }
    }
  else
    {
      g_clear_pointer (&call->counts, g_hash_table_unref);
      call->counts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      add_local_counts (self, call->counts);
    }
  g_dbus_connection_call (self->connection, DBUS_NAME, DBUS_PATH, DBUS_NAME, "ListNames",
                          NULL, G_VARIANT_TYPE ("(as)"), G_DBUS_CALL_FLAGS_NONE, -1,
                          g_task_get_cancellable (task), on_list_names, task);
}

/* Takes @task. */
static void
run_call (QipcDbusTransport *self,
          GTask             *task)
{
  CallData *call = g_task_get_task_data (task);

  switch (call->type)
    {
    case QIPC_FRAME_PING:
      round_trip (self, task);
      break;
    case QIPC_FRAME_MONITOR:
      if (!self->monitoring)
        rule_ref (self, NULL);
      self->monitoring = TRUE;
      round_trip (self, task);
      break;
    case QIPC_FRAME_QUERY:
    case QIPC_FRAME_LIST:
      ask_peers (self, task);
      break;
    default:
      g_task_return_new_error (task, QIPC_BUS_ERROR, QIPC_BUS_ERROR_FAILED,
                               "Request %u is not supported on D-Bus", call->type);
      g_object_unref (task);
    }
}

static void
qipc_dbus_transport_call (QipcTransport       *transport,
                          QipcFrameType        type,
                          GVariant            *body,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  QipcDbusTransport *self = QIPC_DBUS_TRANSPORT (transport);
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  CallData *call = g_new0 (CallData, 1);

  g_task_set_source_tag (task, qipc_dbus_transport_call);
  call->type = type;
  call->body = body != NULL ? g_variant_ref_sink (body) : NULL;
  g_task_set_task_data (task, call, call_data_free);
  if (self->ready)
    run_call (self, task);
  else
    call_wait (self, task);
}

static GVariant *
qipc_dbus_transport_call_finish (QipcTransport  *transport,
                                 GAsyncResult   *result,
                                 GError        **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ------------------------------------------------------------------ */
/* The connection                                                      */

static void
teardown (QipcDbusTransport *self)
{
  g_autoptr(GDBusConnection) connection = g_steal_pointer (&self->connection);

  self->ready = FALSE;
  if (connection == NULL)
    return;
  g_clear_signal_handler (&self->closed_id, connection);
  if (self->signal_id != 0)
    g_dbus_connection_signal_unsubscribe (connection, self->signal_id);
  if (self->object_id != 0)
    g_dbus_connection_unregister_object (connection, self->object_id);
  self->signal_id = 0;
  self->object_id = 0;
  g_clear_pointer (&self->client_name, g_free);
  g_dbus_connection_close (connection, NULL, NULL, NULL);
}

static gboolean
retry_connect (gpointer user_data)
{
  QipcDbusTransport *self = user_data;

  self->retry_source = 0;
  connect_start (self);
  return G_SOURCE_REMOVE;
}

static void
schedule_retry (QipcDbusTransport *self)
{
  GSource *source = g_timeout_source_new (self->retry_ms);

  g_source_set_callback (source, retry_connect, self, NULL);
  g_source_set_static_name (source, "[qipc] D-Bus reconnect");
  self->retry_source = g_source_attach (source, self->context);
  g_source_unref (source);
  self->retry_ms = MIN (self->retry_ms * 2, MAX_RETRY_MS);
}

/* An attempt (or a connection still being set up) failed: open()
 * reports it; once open, the transport tries again later. */
static void
attempt_failed (QipcDbusTransport *self,
                const GError      *error)
{
  teardown (self);
  if (self->closed)
    return;
  if (!self->opened)
    {
      if (self->attempt_error == NULL)
        self->attempt_error = g_error_copy (error);
      return;
    }
  g_debug ("qipc: cannot reach the D-Bus daemon at %s: %s", self->address, error->message);
  schedule_retry (self);
}

static void
on_closed (GDBusConnection *connection,
           gboolean         remote_peer_vanished,
           GError          *error,
           gpointer         user_data)
{
  QipcDbusTransport *self = user_data;
  gboolean was_ready = self->ready;
  g_autoptr(GError) reason = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CLOSED,
                                                  "The D-Bus daemon closed the connection");

  attempt_failed (self, error != NULL ? error : reason);
  if (was_ready && !self->closed)
    _qipc_bus_transport_set_connected (get_bus (self), FALSE);
}

static void
become_ready (QipcDbusTransport *self)
{
  GHashTableIter iter;
  gpointer rule;
  GQueue waiting = G_QUEUE_INIT;

  /* Matches first, so that our own queued messages come back to us;
   * calls last, so that a flush covers the queued messages. */
  g_hash_table_iter_init (&iter, self->rules);
  while (g_hash_table_iter_next (&iter, &rule, NULL))
    call_daemon_match (self, "AddMatch", rule);
  self->ready = TRUE;
  self->retry_ms = MIN_RETRY_MS;
  send_queued (self);
  waiting = self->waiting;
  g_queue_init (&self->waiting);
  while (!g_queue_is_empty (&waiting) && self->ready)
    run_call (self, g_queue_pop_head (&waiting));
  /* Whatever a lost connection left behind waits for the next one. */
  while (!g_queue_is_empty (&waiting))
    g_queue_push_tail (&self->waiting, g_queue_pop_head (&waiting));
  if (self->opened && self->ready)
    _qipc_bus_transport_set_connected (get_bus (self), TRUE);
}

static void
on_name_requested (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_autoptr(QipcDbusTransport) self = user_data;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  guint32 answer = 0;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  if (self->closed || self->connection != G_DBUS_CONNECTION (source))
    return;   /* an older connection's answer */
  if (reply != NULL)
    g_variant_get (reply, "(u)", &answer);
  /* Without the name (a system bus whose policy does not allow it),
   * channels still work; other processes' is_registered cannot see
   * this one. */
  if (answer != DBUS_REQUEST_NAME_PRIMARY_OWNER)
    g_warning ("qipc: cannot own %s on D-Bus (%s): other processes will not see this one's "
               "channels as registered", self->client_name,
               error != NULL ? error->message : "the name is taken");
  become_ready (self);
}

/* org.qipc.Channel1.Client. and the unique name, with ':' and '.' as
 * '_' (":1.42" gives "org.qipc.Channel1.Client._1_42"): unique on the
 * bus, and a valid well-known name. */
static char *
client_name_for (const char *unique_name)
{
  g_autofree char *tail = g_strdup (unique_name);

  g_strdelimit (tail, ":.", '_');
  return g_strconcat (QIPC_DBUS_CLIENT_PREFIX, tail, NULL);
}

static void
setup (QipcDbusTransport *self,
       GDBusConnection   *connection)
{
  g_autoptr(GError) error = NULL;

  self->connection = connection;
  g_dbus_connection_set_exit_on_close (connection, FALSE);
  self->closed_id = g_signal_connect (connection, "closed", G_CALLBACK (on_closed), self);
  self->signal_id = g_dbus_connection_signal_subscribe (connection, NULL, QIPC_DBUS_INTERFACE,
                                                        "Message", QIPC_DBUS_PATH, NULL,
                                                        G_DBUS_SIGNAL_FLAGS_NO_MATCH_RULE,
                                                        on_message, g_object_ref (self),
                                                        g_object_unref);
  self->object_id = g_dbus_connection_register_object (connection, QIPC_DBUS_PATH,
                                                       interface_info, &vtable,
                                                       g_object_ref (self), g_object_unref,
                                                       &error);
  if (self->object_id == 0)
    {
      attempt_failed (self, error);
      return;
    }
  self->client_name = client_name_for (g_dbus_connection_get_unique_name (connection));
  g_dbus_connection_call (connection, DBUS_NAME, DBUS_PATH, DBUS_NAME, "RequestName",
                          g_variant_new ("(su)", self->client_name, DBUS_NAME_FLAG_DO_NOT_QUEUE),
                          G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                          on_name_requested, g_object_ref (self));
}

static void
on_connection_new (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_autoptr(QipcDbusTransport) self = user_data;
  g_autoptr(GError) error = NULL;
  GDBusConnection *connection;

  connection = g_dbus_connection_new_for_address_finish (result, &error);
  if (self->closed)
    {
      if (connection != NULL)
        g_dbus_connection_close (connection, NULL, NULL, NULL);
      g_clear_object (&connection);
      return;
    }
  g_clear_object (&self->connecting);
  if (connection == NULL)
    attempt_failed (self, error);
  else
    setup (self, connection);
}

/* Everything GDBus calls back (signals, methods, replies) runs on the
 * thread-default context at the time of the call: the bus's. */
static void
connect_start (QipcDbusTransport *self)
{
  self->connecting = g_cancellable_new ();
  g_main_context_push_thread_default (self->context);
  g_dbus_connection_new_for_address (self->address,
                                     G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                     G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                     NULL, self->connecting, on_connection_new,
                                     g_object_ref (self));
  g_main_context_pop_thread_default (self->context);
}

static gboolean
resolve_address (QipcDbusTransport  *self,
                 GError            **error)
{
  g_autoptr(GError) local_error = NULL;

  if (self->bus_type == G_BUS_TYPE_NONE)
    return TRUE;
  self->address = g_dbus_address_get_for_bus_sync (self->bus_type, NULL, &local_error);
  if (self->address == NULL)
    {
      g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_BROKER_NOT_FOUND,
                   "No D-Bus %s bus: %s",
                   self->bus_type == G_BUS_TYPE_SYSTEM ? "system" : "session",
                   local_error->message);
      return FALSE;
    }
  return TRUE;
}

static gboolean
open_timed_out (gpointer user_data)
{
  QipcDbusTransport *self = user_data;

  if (self->attempt_error == NULL)
    self->attempt_error = g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                                       "no answer within %d s", OPEN_TIMEOUT_S);
  return G_SOURCE_REMOVE;
}

static gboolean
qipc_dbus_transport_open (QipcTransport  *transport,
                          GError        **error)
{
  QipcDbusTransport *self = QIPC_DBUS_TRANSPORT (transport);
  GSource *timeout;

  self->context = g_main_context_ref_thread_default ();
  if (!resolve_address (self, error))
    return FALSE;
  timeout = g_timeout_source_new_seconds (OPEN_TIMEOUT_S);
  g_source_set_callback (timeout, open_timed_out, self, NULL);
  g_source_set_static_name (timeout, "[qipc] D-Bus open deadline");
  g_source_attach (timeout, self->context);
  connect_start (self);
  while (!self->ready && self->attempt_error == NULL)
    g_main_context_iteration (self->context, TRUE);
  g_source_destroy (timeout);
  g_source_unref (timeout);
  if (!self->ready)
    {
      g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_BROKER_NOT_FOUND,
                   "No D-Bus daemon answers at %s: %s", self->address,
                   self->attempt_error->message);
      g_cancellable_cancel (self->connecting);
      teardown (self);
      return FALSE;
    }
  self->opened = TRUE;
  return TRUE;
}

static gboolean
tick (gpointer user_data)
{
  return G_SOURCE_CONTINUE;
}

/* The flag a flush sets, on the heap: a flush that outlives the wait
 * frees it. */
typedef struct
{
  gboolean done;
  gboolean abandoned;
} FlushWait;

static void
on_flushed (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  FlushWait *wait = user_data;

  g_dbus_connection_flush_finish (G_DBUS_CONNECTION (source), result, NULL);
  if (wait->abandoned)
    g_free (wait);
  else
    wait->done = TRUE;
}

/* Waits up to CLOSE_FLUSH_MS for GDBus to write what it holds. */
static void
flush_connection (QipcDbusTransport *self)
{
  gint64 deadline = g_get_monotonic_time () + CLOSE_FLUSH_MS * 1000;
  GSource *ticker = g_timeout_source_new (50);
  FlushWait *wait = g_new0 (FlushWait, 1);

  g_source_set_callback (ticker, tick, NULL, NULL);
  g_source_set_static_name (ticker, "[qipc] D-Bus close deadline");
  g_source_attach (ticker, self->context);
  g_main_context_push_thread_default (self->context);
  g_dbus_connection_flush (self->connection, NULL, on_flushed, wait);
  g_main_context_pop_thread_default (self->context);
  while (!wait->done && g_get_monotonic_time () < deadline)
    g_main_context_iteration (self->context, TRUE);
  g_source_destroy (ticker);
  g_source_unref (ticker);
  if (wait->done)
    g_free (wait);
  else
    wait->abandoned = TRUE;
}

static void
qipc_dbus_transport_close (QipcTransport *transport)
{
  QipcDbusTransport *self = QIPC_DBUS_TRANSPORT (transport);

  if (self->closed)
    return;
  /* Closed first: while GDBus writes out what it holds, nothing is
   * delivered any more and pending calls fail. */
  self->closed = TRUE;
  if (self->connection != NULL && self->ready)
    flush_connection (self);
  g_cancellable_cancel (self->connecting);
  g_clear_object (&self->connecting);
  if (self->retry_source != 0)
    g_source_destroy (g_main_context_find_source_by_id (self->context, self->retry_source));
  self->retry_source = 0;
  teardown (self);
  while (!g_queue_is_empty (&self->waiting))
    {
      GTask *task = g_queue_pop_head (&self->waiting);

      return_disconnected (task);
      g_object_unref (task);
    }
  g_queue_clear_full (&self->queue, queued_free);
  self->queued_bytes = 0;
}

/* ------------------------------------------------------------------ */

static void
qipc_dbus_transport_dispose (GObject *object)
{
  qipc_dbus_transport_close (QIPC_TRANSPORT (object));
  G_OBJECT_CLASS (_qipc_dbus_transport_parent_class)->dispose (object);
}

static void
qipc_dbus_transport_finalize (GObject *object)
{
  QipcDbusTransport *self = QIPC_DBUS_TRANSPORT (object);

  g_free (self->address);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_clear_error (&self->attempt_error);
  g_hash_table_unref (self->names);
  g_hash_table_unref (self->rules);
  G_OBJECT_CLASS (_qipc_dbus_transport_parent_class)->finalize (object);
}

static void
_qipc_dbus_transport_class_init (QipcDbusTransportClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  QipcTransportClass *transport_class = QIPC_TRANSPORT_CLASS (klass);
  GDBusNodeInfo *node = g_dbus_node_info_new_for_xml (introspection_xml, NULL);

  interface_info = g_dbus_interface_info_ref (node->interfaces[0]);
  g_dbus_node_info_unref (node);

  object_class->dispose = qipc_dbus_transport_dispose;
  object_class->finalize = qipc_dbus_transport_finalize;
  transport_class->open = qipc_dbus_transport_open;
  transport_class->subscribe = qipc_dbus_transport_subscribe;
  transport_class->unsubscribe = qipc_dbus_transport_unsubscribe;
  transport_class->send = qipc_dbus_transport_send;
  transport_class->call = qipc_dbus_transport_call;
  transport_class->call_finish = qipc_dbus_transport_call_finish;
  transport_class->close = qipc_dbus_transport_close;
}

static void
_qipc_dbus_transport_init (QipcDbusTransport *self)
{
  self->names = g_hash_table_new_full (NULL, NULL, NULL, g_free);
  self->rules = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->retry_ms = MIN_RETRY_MS;
}

QipcTransport *
_qipc_dbus_transport_new (const char  *address,
                          GError     **error)
{
  g_autoptr(QipcDbusTransport) self = g_object_new (QIPC_TYPE_DBUS_TRANSPORT, NULL);
  const char *rest = address + strlen ("dbus:");
  g_autoptr(GError) local_error = NULL;

  if (g_str_equal (rest, "session"))
    self->bus_type = G_BUS_TYPE_SESSION;
  else if (g_str_equal (rest, "system"))
    self->bus_type = G_BUS_TYPE_SYSTEM;
  else if (g_str_has_prefix (rest, "address="))
    {
      self->bus_type = G_BUS_TYPE_NONE;
      self->address = g_strdup (rest + strlen ("address="));
      if (!g_dbus_is_supported_address (self->address, &local_error))
        {
          g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_INVALID_ADDRESS,
                       "Invalid D-Bus address in %s: %s", address, local_error->message);
          return NULL;
        }
    }
  else
    {
      g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_INVALID_ADDRESS,
                   "Invalid bus address %s: a D-Bus bus is dbus:session, dbus:system "
                   "or dbus:address=ADDRESS", address);
      return NULL;
    }
  return QIPC_TRANSPORT (g_steal_pointer (&self));
}
