/* qipc-mqtt-transport.c: channels over MQTT 5, with libmosquitto
 *
 * Channel `a/b` is topic `<prefix>/a/b`; a pattern's `*` segments are
 * `+` and a trailing `**` is `#`. Messages are QoS 1 (per-sender order,
 * acknowledged by the broker), never retained, JSON by default:
 * {"message": "name", "data": …, "type": "<GVariant type>"}, with
 * variants inside the data written {"type": …, "value": …}. With
 * format=gvariant the payload is the data in GVariant's serialized
 * form, content type "application/x-gvariant", and the message name and
 * type in the user properties "qipc-message" and "qipc-type". Receivers
 * read both formats, whatever their own.
 *
 * libmosquitto runs on the bus's main context with no thread of its
 * own: a GSource watches its socket (for writing only while it has
 * something to write), a one-second timer runs its keep-alive, and the
 * transport reconnects by itself after a loss (20 ms doubling to 2 s).
 *
 * Subscriptions: one per distinct topic filter, each with its own MQTT 5
 * subscription identifier. A broker may deliver a message once per
 * matching subscription (mosquitto does) or once with every identifier;
 * either way the transport takes the copy that carries the smallest
 * identifier of the filters matching the topic, so the bus gets each
 * message once and routes it to its channels itself.
 *
 * Internal topics, under `<prefix>/$qipc/` (no channel can start with
 * the segment `$qipc`):
 * - `presence/<client-id>`: retained, {"channels": {"name": count, …}}
 *   for the names and patterns this client listens on; empty (cleared)
 *   when it has none, by its last will when it dies. is_registered and
 *   list_channels read them.
 * - `echo/<client-id>`: a client's own QoS 1 message to itself; when it
 *   comes back, every presence message the broker had routed to this
 *   client before has arrived.
 *
 * Flush (PING) waits until the broker acknowledged everything sent
 * before it: publishes (PUBACK), subscriptions (SUBACK, UNSUBACK).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "qipc-mqtt-transport-private.h"
#include "qipc-json-private.h"

#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <errno.h>
#include <glib-unix.h>
#include <poll.h>
#include <string.h>

#define DEFAULT_PORT 1883
#define DEFAULT_TLS_PORT 8883
#define DEFAULT_KEEPALIVE_S 30
#define DEFAULT_PREFIX "qipc"
#define OPEN_TIMEOUT_MS 5000
#define CLOSE_TIMEOUT_MS 1000
#define MIN_RETRY_MS 20
#define MAX_RETRY_MS 2000
/* MQTT's own limit on a packet is 256 MiB; the topic and properties
 * take some of it. */
#define MAX_PAYLOAD (256 * 1024 * 1024 - 64 * 1024)
#define GVARIANT_CONTENT_TYPE "application/x-gvariant"
#define PASSWORD_ENV "QIPC_MQTT_PASSWORD"
/* Packets read in one go before the main loop runs again. */
#define READ_BATCH 64

typedef enum
{
  OP_PUBLISH,
  OP_SUBSCRIBE,
} OpKind;

/* Something the broker must acknowledge before a flush returns. */
typedef struct
{
  OpKind kind;
  guint64 seq;
  int mid;                    /* while handed to libmosquitto */
  gsize bytes;                /* counted against max-queued */
  /* A publish waiting for the connection: */
  char *topic;
  GBytes *payload;
  mosquitto_property *props;
  gboolean retain;
} Op;

/* A topic filter, subscribed once whatever the number of users. */
typedef struct
{
  char *topic;
  guint32 sub_id;
  guint refs;
  int options;
} Filter;

/* A call waiting for the broker (see call()). */
typedef struct
{
  QipcFrameType type;
  char *query;                /* QUERY: the channel name */
  guint64 threshold;          /* ops up to this seq must be acknowledged */
  guint remaining;            /* how many of them are not yet */
  guint64 echo;               /* 0, or the echo that must come back */
  GTask *task;
} Waiter;

typedef struct
{
  GSource source;
  QipcMqttTransport *self;
  gpointer tag;
  GIOCondition events;
} SocketSource;

struct _QipcMqttTransport
{
  QipcTransport parent_instance;

  /* From the address */
  char *address;
  char *host;
  int port;
  gboolean tls;
  char *ca_file;
  char *client_id;
  char *user;
  char *password;
  int keepalive;
  char *prefix;
  gboolean gvariant_format;
  gboolean no_local;

  char *presence_topic;       /* ours */
  char *presence_filter;      /* everyone's */
  char *echo_topic;

  GMainContext *context;
  struct mosquitto *mosq;
  gboolean connected;
  gboolean closing;
  int connack;                /* open(): -1 until the CONNACK */
  GSource *socket_source;
  GSource *misc_source;
  GSource *retry_source;
  guint retry_ms;

  GHashTable *filters;        /* topic -> Filter */
  GHashTable *ids;            /* bus id -> channel name */
  GHashTable *own_names;      /* name -> count, what our presence says */
  guint32 next_sub_id;
  gboolean presence_published; /* a non-empty presence is retained */
  gboolean presence_dirty;
  GSource *presence_source;
  GSource *check_source;      /* answers calls from the main loop */

  GHashTable *presence;       /* client id -> GHashTable name -> count */
  JsonParser *parser;         /* for every incoming message */

  GQueue outbox;              /* Op, waiting for the connection */
  GHashTable *inflight;       /* mid -> Op, handed to libmosquitto */
  gsize queued_bytes;
  guint64 next_seq;
  GQueue waiters;             /* Waiter */
  guint64 next_echo;
  guint64 echo_received;

  /* What libmosquitto's callbacks saw, handled once it has returned
   * (see process_events()). */
  GQueue incoming;            /* Incoming */
  gboolean event_connected;
  gboolean event_lost;
  gboolean waiters_dirty;
};

typedef struct
{
  char *channel;
  char *message;
  GVariant *data;
} Incoming;

G_DEFINE_FINAL_TYPE (QipcMqttTransport, _qipc_mqtt_transport, QIPC_TYPE_TRANSPORT)

static void start_socket_watch (QipcMqttTransport *self);
static void schedule_retry (QipcMqttTransport *self);
static void check_waiters (QipcMqttTransport *self);

/* ------------------------------------------------------------------ */
/* Addresses                                                           */

static gboolean
address_error (GError     **error,
               const char  *address,
               const char  *format,
               ...) G_GNUC_PRINTF (3, 4);

static gboolean
address_error (GError     **error,
               const char  *address,
               const char  *format,
               ...)
{
  g_autofree char *reason = NULL;
  va_list args;

  va_start (args, format);
  reason = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_INVALID_ADDRESS,
               "Invalid MQTT address \"%s\": %s", address, reason);
  return FALSE;
}

/* Client ids and prefixes become topic segments: no wildcards, no
 * separators where a segment is meant. */
static gboolean
is_topic_word (const char *text,
               gboolean    allow_slash)
{
  if (*text == '\0' || !g_utf8_validate (text, -1, NULL))
    return FALSE;
  if (allow_slash && (text[0] == '/' || g_str_has_suffix (text, "/") || strstr (text, "//")))
    return FALSE;
  for (const char *p = text; *p != '\0'; p++)
    if (*p == '+' || *p == '#' || (*p == '/' && !allow_slash))
      return FALSE;
  return TRUE;
}

static gboolean
parse_boolean (const char *value,
               gboolean   *out)
{
  if (g_strcmp0 (value, "true") == 0)
    *out = TRUE;
  else if (g_strcmp0 (value, "false") == 0)
    *out = FALSE;
  else
    return FALSE;
  return TRUE;
}

static gboolean
parse_option (QipcMqttTransport  *self,
              const char         *key,
              const char         *value,
              GError            **error)
{
  const char *address = self->address;
  guint64 number;

  if (strcmp (key, "client-id") == 0)
    {
      if (!is_topic_word (value, FALSE) || strlen (value) > 128)
        return address_error (error, address, "client-id \"%s\" must be 1 to 128 bytes "
                              "without '/', '+' or '#'", value);
      g_free (self->client_id);
      self->client_id = g_strdup (value);
    }
  else if (strcmp (key, "user") == 0)
    {
      g_free (self->user);
      self->user = g_strdup (value);
    }
  else if (strcmp (key, "password") == 0)
    {
      g_free (self->password);
      self->password = g_strdup (value);
    }
  else if (strcmp (key, "keepalive") == 0)
    {
      if (!g_ascii_string_to_unsigned (value, 10, 5, 65535, &number, NULL))
        return address_error (error, address, "keepalive \"%s\" is not a number of "
                              "seconds from 5 to 65535", value);
      self->keepalive = number;
    }
  else if (strcmp (key, "prefix") == 0)
    {
      if (!is_topic_word (value, TRUE) || value[0] == '$')
        return address_error (error, address, "prefix \"%s\" must be topic segments "
                              "without '+', '#', empty segments or a leading '$'", value);
      g_free (self->prefix);
      self->prefix = g_strdup (value);
    }
  else if (strcmp (key, "format") == 0)
    {
      if (strcmp (value, "json") != 0 && strcmp (value, "gvariant") != 0)
        return address_error (error, address, "format \"%s\" is neither json nor gvariant", value);
      self->gvariant_format = strcmp (value, "gvariant") == 0;
    }
  else if (strcmp (key, "ca") == 0)
    {
      if (!self->tls)
        return address_error (error, address, "ca is for mqtts:// addresses only");
      g_free (self->ca_file);
      self->ca_file = g_strdup (value);
    }
  else if (strcmp (key, "no-local") == 0)
    {
      if (!parse_boolean (value, &self->no_local))
        return address_error (error, address, "no-local \"%s\" is neither true nor false", value);
    }
  else
    {
      return address_error (error, address, "unknown option \"%s\"", key);
    }
  return TRUE;
}

static gboolean
parse_address (QipcMqttTransport  *self,
               GError            **error)
{
  const char *address = self->address;
  g_autoptr(GUri) uri = NULL;
  g_autoptr(GError) local_error = NULL;
  const char *query;

  uri = g_uri_parse (address, G_URI_FLAGS_ENCODED_QUERY, &local_error);
  if (uri == NULL)
    return address_error (error, address, "%s", local_error->message);
  self->tls = strcmp (g_uri_get_scheme (uri), "mqtts") == 0;
  if (g_uri_get_userinfo (uri) != NULL)
    return address_error (error, address, "give user and password as options "
                          "(?user=…), not before the host");
  if (g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0')
    return address_error (error, address, "no host");
  if (*g_uri_get_path (uri) != '\0' && strcmp (g_uri_get_path (uri), "/") != 0)
    return address_error (error, address, "unexpected path \"%s\"", g_uri_get_path (uri));
  if (g_uri_get_fragment (uri) != NULL)
    return address_error (error, address, "unexpected fragment");
  self->host = g_strdup (g_uri_get_host (uri));
  self->port = g_uri_get_port (uri);
  if (self->port == -1)
    self->port = self->tls ? DEFAULT_TLS_PORT : DEFAULT_PORT;
  if (self->port == 0)
    return address_error (error, address, "port 0");

  query = g_uri_get_query (uri);
  if (query != NULL && *query != '\0')
    {
      g_autoptr(GHashTable) params = NULL;
      g_auto(GStrv) pairs = g_strsplit (query, "&", -1);

      /* Checked one by one (rather than g_uri_parse_params()) to name
       * what is wrong and refuse repeated keys. */
      params = g_hash_table_new (g_str_hash, g_str_equal);
      for (guint i = 0; pairs[i] != NULL; i++)
        {
          const char *equal = strchr (pairs[i], '=');
          g_autofree char *key = NULL;
          g_autofree char *value = NULL;

          if (equal == NULL)
            return address_error (error, address, "option \"%s\" has no value", pairs[i]);
          key = g_uri_unescape_segment (pairs[i], equal, NULL);
          value = g_uri_unescape_string (equal + 1, NULL);
          if (key == NULL || value == NULL)
            return address_error (error, address, "option \"%s\" is badly escaped", pairs[i]);
          if (g_hash_table_contains (params, key))
            return address_error (error, address, "option \"%s\" is given twice", key);
          if (!parse_option (self, key, value, error))
            return FALSE;
          g_hash_table_add (params, (gpointer) g_intern_string (key));
        }
    }
  if (self->password != NULL && self->user == NULL)
    return address_error (error, address, "password without user");
  if (self->user != NULL && self->password == NULL && g_getenv (PASSWORD_ENV) != NULL)
    self->password = g_strdup (g_getenv (PASSWORD_ENV));
  return TRUE;
}

static char *
default_client_id (void)
{
  return g_strdup_printf ("qipc-%s-%d-%08x", g_get_host_name (), (int) getpid (),
                          g_random_int ());
}

/* ------------------------------------------------------------------ */
/* Names and topics                                                    */

static char *
channel_to_topic (QipcMqttTransport *self,
                  const char        *name)
{
  g_auto(GStrv) segments = NULL;
  g_autofree char *joined = NULL;

  /* Every message: names, not patterns. */
  if (strchr (name, '*') == NULL)
    return g_strconcat (self->prefix, "/", name, NULL);
  segments = g_strsplit (name, "/", -1);
  for (guint i = 0; segments[i] != NULL; i++)
    {
      if (strcmp (segments[i], "*") == 0)
        g_free (segments[i]), segments[i] = g_strdup ("+");
      else if (strcmp (segments[i], "**") == 0)
        g_free (segments[i]), segments[i] = g_strdup ("#");
    }
  joined = g_strjoinv ("/", segments);
  return g_strconcat (self->prefix, "/", joined, NULL);
}

/* What a valid qipc name can hold and an MQTT topic cannot. */
static gboolean
check_mqtt_name (const char  *name,
                 GError     **error)
{
  if (strpbrk (name, "+#") != NULL)
    {
      g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_INVALID_NAME,
                   "The channel name \"%s\" cannot travel over MQTT: it has '+' or '#'", name);
      return FALSE;
    }
  if (strcmp (name, "$qipc") == 0 || g_str_has_prefix (name, "$qipc/"))
    {
      g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_INVALID_NAME,
                   "The channel name \"%s\" is reserved on MQTT ($qipc)", name);
      return FALSE;
    }
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* Operations and flush                                                */

static void
op_free (Op *op)
{
  g_free (op->topic);
  g_clear_pointer (&op->payload, g_bytes_unref);
  mosquitto_property_free_all (&op->props);
  g_free (op);
}

static void
waiter_free (Waiter *waiter)
{
  g_free (waiter->query);
  g_clear_object (&waiter->task);
  g_free (waiter);
}

/* A new op: every waiter created before it waits for it only when
 * @barrier (the subscriptions made again after a reconnection). */
static Op *
op_new (QipcMqttTransport *self,
        OpKind             kind,
        gboolean           barrier)
{
  Op *op = g_new0 (Op, 1);

  op->kind = kind;
  op->seq = ++self->next_seq;
  if (barrier)
    for (GList *l = self->waiters.head; l != NULL; l = l->next)
      {
        Waiter *waiter = l->data;

        waiter->threshold = MAX (waiter->threshold, op->seq);
        waiter->remaining++;
      }
  return op;
}

static void
op_done (QipcMqttTransport *self,
         Op                *op)
{
  for (GList *l = self->waiters.head; l != NULL; l = l->next)
    {
      Waiter *waiter = l->data;

      if (op->seq <= waiter->threshold && waiter->remaining > 0)
        waiter->remaining--;
    }
  self->queued_bytes -= op->bytes;
  op_free (op);
}

static void
op_acknowledged (QipcMqttTransport *self,
                 int                mid)
{
  Op *op = g_hash_table_lookup (self->inflight, GINT_TO_POINTER (mid));

  if (op == NULL)
    return;
  g_hash_table_steal (self->inflight, GINT_TO_POINTER (mid));
  op_done (self, op);
  self->waiters_dirty = TRUE;
}

static GError *
mosquitto_error (int         rc,
                 const char *what)
{
  QipcBusError code = QIPC_BUS_ERROR_FAILED;

  switch (rc)
    {
    case MOSQ_ERR_OVERSIZE_PACKET:
    case MOSQ_ERR_PAYLOAD_SIZE:
      code = QIPC_BUS_ERROR_LIMIT_EXCEEDED;
      break;
    case MOSQ_ERR_INVAL:
    case MOSQ_ERR_MALFORMED_UTF8:
      code = QIPC_BUS_ERROR_INVALID_NAME;
      break;
    default:
      break;
    }
  return g_error_new (QIPC_BUS_ERROR, code, "Cannot %s over MQTT: %s", what,
                      rc == MOSQ_ERR_ERRNO ? g_strerror (errno) : mosquitto_strerror (rc));
}

/* Hands a publish to libmosquitto; it keeps QoS 1 messages until they
 * are acknowledged, across reconnections. */
static gboolean
publish_op (QipcMqttTransport  *self,
            Op                 *op,
            GError            **error)
{
  int rc;

  rc = mosquitto_publish_v5 (self->mosq, &op->mid, op->topic,
                             op->payload != NULL ? (int) g_bytes_get_size (op->payload) : 0,
                             op->payload != NULL ? g_bytes_get_data (op->payload, NULL) : NULL,
                             1, op->retain, op->props);
  /* Lost meanwhile: libmosquitto has queued it, and sends it again
   * once reconnected. */
  if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_NO_CONN && rc != MOSQ_ERR_CONN_LOST &&
      rc != MOSQ_ERR_ERRNO)
    {
      g_propagate_error (error, mosquitto_error (rc, "send a message"));
      return FALSE;
    }
  g_clear_pointer (&op->payload, g_bytes_unref);
  mosquitto_property_free_all (&op->props);
  g_clear_pointer (&op->topic, g_free);
  g_hash_table_insert (self->inflight, GINT_TO_POINTER (op->mid), op);
  return TRUE;
}

/* Takes @payload and @props. */
static gboolean
publish (QipcMqttTransport   *self,
         const char          *topic,
         GBytes              *payload,
         mosquitto_property  *props,
         gboolean             retain,
         gboolean             bounded,
         GError             **error)
{
  Op *op;
  gsize bytes = strlen (topic) + (payload != NULL ? g_bytes_get_size (payload) : 0);
  gsize max_queued = bounded ? qipc_bus_get_max_queued (_qipc_transport_get_bus (QIPC_TRANSPORT (self)))
                             : G_MAXSIZE;

  if (self->queued_bytes + bytes > max_queued)
    {
      g_clear_pointer (&payload, g_bytes_unref);
      mosquitto_property_free_all (&props);
      g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_QUEUE_FULL,
                   "%" G_GSIZE_FORMAT " bytes wait for the MQTT broker at %s already "
                   "(the limit is %" G_GSIZE_FORMAT ")", self->queued_bytes, self->address,
                   max_queued);
      return FALSE;
    }
  op = op_new (self, OP_PUBLISH, FALSE);
  op->topic = g_strdup (topic);
  op->payload = payload;
  op->props = props;
  op->retain = retain;
  op->bytes = bytes;
  self->queued_bytes += bytes;
  if (!self->connected)
    {
      g_queue_push_tail (&self->outbox, op);
      return TRUE;
    }
  if (!publish_op (self, op, error))
    {
      op_done (self, op);
      return FALSE;
    }
  return TRUE;
}

static void
subscribe_filter (QipcMqttTransport *self,
                  Filter            *filter,
                  gboolean           barrier)
{
  mosquitto_property *props = NULL;
  Op *op;
  int rc;

  if (!self->connected)
    return;
  mosquitto_property_add_varint (&props, MQTT_PROP_SUBSCRIPTION_IDENTIFIER, filter->sub_id);
  op = op_new (self, OP_SUBSCRIBE, barrier);
  rc = mosquitto_subscribe_v5 (self->mosq, &op->mid, filter->topic, 1, filter->options, props);
  mosquitto_property_free_all (&props);
  if (rc != MOSQ_ERR_SUCCESS)
    {
      g_message ("Cannot subscribe to %s on %s: %s", filter->topic, self->address,
                 mosquitto_strerror (rc));
      op_done (self, op);
      return;
    }
  g_hash_table_insert (self->inflight, GINT_TO_POINTER (op->mid), op);
}

static void
unsubscribe_filter (QipcMqttTransport *self,
                    Filter            *filter)
{
  Op *op;

  if (!self->connected)
    return;
  op = op_new (self, OP_SUBSCRIBE, FALSE);
  if (mosquitto_unsubscribe_v5 (self->mosq, &op->mid, filter->topic, NULL) != MOSQ_ERR_SUCCESS)
    {
      op_done (self, op);
      return;
    }
  g_hash_table_insert (self->inflight, GINT_TO_POINTER (op->mid), op);
}

static void
filter_free (gpointer data)
{
  Filter *filter = data;

  g_free (filter->topic);
  g_free (filter);
}

static void
filter_ref (QipcMqttTransport *self,
            const char        *topic,
            int                options)
{
  Filter *filter = g_hash_table_lookup (self->filters, topic);

  if (filter != NULL)
    {
      filter->refs++;
      return;
    }
  filter = g_new0 (Filter, 1);
  filter->topic = g_strdup (topic);
  filter->sub_id = ++self->next_sub_id;
  filter->refs = 1;
  filter->options = options;
  g_hash_table_insert (self->filters, filter->topic, filter);
  subscribe_filter (self, filter, FALSE);
}

static void
filter_unref (QipcMqttTransport *self,
              const char        *topic)
{
  Filter *filter = g_hash_table_lookup (self->filters, topic);

  if (filter == NULL || --filter->refs > 0)
    return;
  unsubscribe_filter (self, filter);
  g_hash_table_remove (self->filters, topic);
}

/* The internal filters: subscribed once, for good. */
static void
ensure_filter (QipcMqttTransport *self,
               const char        *topic,
               int                options)
{
  if (!g_hash_table_contains (self->filters, topic))
    filter_ref (self, topic, options);
}

/* Channel messages: never the retained ones a foreign client left. */
static int
channel_options (QipcMqttTransport *self)
{
  return MQTT_SUB_OPT_SEND_RETAIN_NEVER | (self->no_local ? MQTT_SUB_OPT_NO_LOCAL : 0);
}

/* ------------------------------------------------------------------ */
/* Presence                                                            */

static GBytes *
presence_payload (QipcMqttTransport *self)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  GHashTableIter iter;
  gpointer name, count;
  gsize length;
  char *text;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "channels");
  json_builder_begin_object (builder);
  g_hash_table_iter_init (&iter, self->own_names);
  while (g_hash_table_iter_next (&iter, &name, &count))
    {
      json_builder_set_member_name (builder, name);
      json_builder_add_int_value (builder, GPOINTER_TO_UINT (count));
    }
  json_builder_end_object (builder);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);
  text = json_generator_to_data (generator, &length);
  return g_bytes_new_take (text, length);
}

static void
publish_presence (QipcMqttTransport *self)
{
  gboolean listening = g_hash_table_size (self->own_names) > 0;

  self->presence_dirty = FALSE;
  g_clear_pointer (&self->presence_source, g_source_destroy);
  if (!listening && !self->presence_published)
    return;
  /* Nothing retained when nobody listens: an empty payload clears. */
  publish (self, self->presence_topic, listening ? presence_payload (self) : NULL, NULL,
           TRUE, FALSE, NULL);
  self->presence_published = listening;
}

static gboolean
on_presence_idle (gpointer user_data)
{
  QipcMqttTransport *self = user_data;

  self->presence_source = NULL;
  publish_presence (self);
  return G_SOURCE_REMOVE;
}

/* Registrations come in bursts: one presence message for a burst, sent
 * before anything that must see it (a call). */
static void
presence_changed (QipcMqttTransport *self)
{
  GSource *source;

  /* A channel may outlive its closed bus: close() said goodbye already,
   * and nothing may run on the transport once it is freed. */
  if (self->closing)
    return;
  self->presence_dirty = TRUE;
  if (self->presence_source != NULL)
    return;
  source = g_idle_source_new ();
  g_source_set_callback (source, on_presence_idle, self, NULL);
  g_source_set_static_name (source, "[qipc] MQTT presence");
  g_source_attach (source, self->context);
  self->presence_source = source;
  g_source_unref (source);
}

static void
receive_presence (QipcMqttTransport             *self,
                  const char                    *client,
                  const struct mosquitto_message *msg)
{
  g_autoptr(JsonParser) parser = NULL;
  g_autoptr(GError) error = NULL;
  GHashTable *names;
  JsonNode *root, *channels;
  g_autoptr(GList) members = NULL;

  if (msg->payloadlen == 0)
    {
      g_hash_table_remove (self->presence, client);
      return;
    }
  parser = json_parser_new_immutable ();
  if (!_qipc_json_load (parser, msg->payload, msg->payloadlen, &error) ||
      !JSON_NODE_HOLDS_OBJECT (root = json_parser_get_root (parser)) ||
      (channels = json_object_get_member (json_node_get_object (root), "channels")) == NULL ||
      !JSON_NODE_HOLDS_OBJECT (channels))
    {
      g_message ("Dropping a malformed presence message of MQTT client %s: %s", client,
                 error != NULL ? error->message : "no \"channels\" object");
      return;
    }
  names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  members = json_object_get_members (json_node_get_object (channels));
  for (GList *l = members; l != NULL; l = l->next)
    {
      JsonNode *count = json_object_get_member (json_node_get_object (channels), l->data);
      gint64 n = JSON_NODE_HOLDS_VALUE (count) &&
                 json_node_get_value_type (count) == G_TYPE_INT64 ? json_node_get_int (count) : 1;

      if (_qipc_channel_name_validate (l->data, TRUE, NULL))
        g_hash_table_insert (names, g_strdup (l->data), GUINT_TO_POINTER (CLAMP (n, 1, G_MAXUINT)));
    }
  g_hash_table_insert (self->presence, g_strdup (client), names);
}

static gboolean
presence_has (QipcMqttTransport *self,
              const char        *channel)
{
  GHashTableIter clients;
  gpointer names;

  g_hash_table_iter_init (&clients, self->presence);
  while (g_hash_table_iter_next (&clients, NULL, &names))
    {
      GHashTableIter iter;
      gpointer name;

      g_hash_table_iter_init (&iter, names);
      while (g_hash_table_iter_next (&iter, &name, NULL))
        if (strcmp (name, channel) == 0 ||
            (_qipc_channel_name_is_pattern (name) && _qipc_channel_pattern_match (name, channel)))
          return TRUE;
    }
  return FALSE;
}

static GVariant *
presence_list (QipcMqttTransport *self)
{
  g_autoptr(GHashTable) totals = g_hash_table_new (g_str_hash, g_str_equal);
  GVariantBuilder builder;
  GHashTableIter clients, iter;
  gpointer names, name, count;

  g_hash_table_iter_init (&clients, self->presence);
  while (g_hash_table_iter_next (&clients, NULL, &names))
    {
      g_hash_table_iter_init (&iter, names);
      while (g_hash_table_iter_next (&iter, &name, &count))
        {
          guint total = GPOINTER_TO_UINT (g_hash_table_lookup (totals, name));

          g_hash_table_insert (totals, name, GUINT_TO_POINTER (total + GPOINTER_TO_UINT (count)));
        }
    }
  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(su)"));
  g_hash_table_iter_init (&iter, totals);
  while (g_hash_table_iter_next (&iter, &name, &count))
    g_variant_builder_add (&builder, "(su)", name, GPOINTER_TO_UINT (count));
  return g_variant_builder_end (&builder);
}

/* ------------------------------------------------------------------ */
/* Calls                                                               */

static void
answer (QipcMqttTransport *self,
        Waiter            *waiter)
{
  GVariant *reply;

  switch (waiter->type)
    {
    case QIPC_FRAME_QUERY:
      reply = g_variant_new ("(b)", presence_has (self, waiter->query));
      break;
    case QIPC_FRAME_LIST:
      reply = presence_list (self);
      break;
    default:
      reply = g_variant_new ("()");
      break;
    }
  g_task_return_pointer (waiter->task, g_variant_ref_sink (reply),
                         (GDestroyNotify) g_variant_unref);
}

static void
check_waiters (QipcMqttTransport *self)
{
  /* An answer may run the caller's callback at once, which may close
   * the transport (emptying the queue) or drop the last reference to
   * the bus: hold on, and look again from the head after each one. */
  G_GNUC_UNUSED g_autoptr(QipcMqttTransport) keep = g_object_ref (self);
  GList *l = self->waiters.head;

  while (l != NULL)
    {
      Waiter *waiter = l->data;

      if (waiter->remaining == 0 && waiter->echo <= self->echo_received)
        {
          g_queue_delete_link (&self->waiters, l);
          answer (self, waiter);
          waiter_free (waiter);
          l = self->waiters.head;
        }
      else
        l = l->next;
    }
}

static gboolean
on_check_idle (gpointer user_data)
{
  QipcMqttTransport *self = user_data;

  self->check_source = NULL;
  check_waiters (self);
  return G_SOURCE_REMOVE;
}

static void
schedule_check (QipcMqttTransport *self)
{
  if (self->check_source != NULL)
    return;
  self->check_source = g_idle_source_new ();
  g_source_set_callback (self->check_source, on_check_idle, self, NULL);
  g_source_set_static_name (self->check_source, "[qipc] MQTT call answer");
  g_source_attach (self->check_source, self->context);
  g_source_unref (self->check_source);
}

static void
send_echo (QipcMqttTransport *self,
           guint64            echo)
{
  g_autofree char *text = g_strdup_printf ("%" G_GUINT64_FORMAT, echo);

  publish (self, self->echo_topic, g_bytes_new (text, strlen (text)), NULL, FALSE, FALSE, NULL);
}

static void
qipc_mqtt_transport_call (QipcTransport       *transport,
                          QipcFrameType        type,
                          GVariant            *body,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  QipcMqttTransport *self = QIPC_MQTT_TRANSPORT (transport);
  Waiter *waiter = g_new0 (Waiter, 1);

  waiter->type = type;
  waiter->task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (waiter->task, qipc_mqtt_transport_call);
  if (self->closing)
    {
      g_task_return_new_error (waiter->task, QIPC_BUS_ERROR, QIPC_BUS_ERROR_DISCONNECTED,
                               "The MQTT connection to %s was closed", self->address);
      waiter_free (waiter);
      return;
    }
  if (self->presence_dirty)
    publish_presence (self);
  switch (type)
    {
    case QIPC_FRAME_QUERY:
    case QIPC_FRAME_LIST:
      if (type == QIPC_FRAME_QUERY)
        g_variant_get (body, "(s)", &waiter->query);
      /* Everyone's presence, then a round trip behind it. */
      ensure_filter (self, self->presence_filter, 0);
      ensure_filter (self, self->echo_topic, 0);
      waiter->echo = ++self->next_echo;
      send_echo (self, waiter->echo);
      break;
    case QIPC_FRAME_MONITOR:
      {
        g_autofree char *everything = g_strconcat (self->prefix, "/#", NULL);

        /* Counted: a "**" channel may share the filter. */
        filter_ref (self, everything, channel_options (self));
      }
      break;
    case QIPC_FRAME_PING:
    default:
      break;
    }
  waiter->threshold = self->next_seq;
  waiter->remaining = g_queue_get_length (&self->outbox) + g_hash_table_size (self->inflight);
  g_queue_push_tail (&self->waiters, waiter);
  /* Answered from the main loop, even when nothing is pending: a close
   * before then fails it, as on the other transports. */
  schedule_check (self);
}

static GVariant *
qipc_mqtt_transport_call_finish (QipcTransport  *transport,
                                 GAsyncResult   *result,
                                 GError        **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ------------------------------------------------------------------ */
/* Payloads                                                            */

static GBytes *
encode_gvariant (const char          *message,
                 GVariant            *data,
                 mosquitto_property **props)
{
  mosquitto_property_add_string (props, MQTT_PROP_CONTENT_TYPE, GVARIANT_CONTENT_TYPE);
  mosquitto_property_add_string_pair (props, MQTT_PROP_USER_PROPERTY, "qipc-message", message);
  if (data == NULL)
    return NULL;
  mosquitto_property_add_string_pair (props, MQTT_PROP_USER_PROPERTY, "qipc-type",
                                      g_variant_get_type_string (data));
  return g_variant_get_data_as_bytes (data);
}

static gboolean
decode_gvariant (const struct mosquitto_message  *msg,
                 const mosquitto_property        *props,
                 char                           **message,
                 GVariant                       **data,
                 GError                         **error)
{
  g_autofree char *type = NULL;
  g_autoptr(GBytes) bytes = NULL;
  const mosquitto_property *p;
  char *key, *value;

  *message = NULL;
  *data = NULL;
  for (p = mosquitto_property_read_string_pair (props, MQTT_PROP_USER_PROPERTY, &key, &value, FALSE);
       p != NULL;
       p = mosquitto_property_read_string_pair (p, MQTT_PROP_USER_PROPERTY, &key, &value, TRUE))
    {
      if (strcmp (key, "qipc-message") == 0 && *message == NULL)
        *message = g_strdup (value);
      else if (strcmp (key, "qipc-type") == 0 && type == NULL)
        type = g_strdup (value);
      free (key);
      free (value);
    }
  if (*message == NULL)
    {
      g_set_error_literal (error, QIPC_JSON_ERROR, 0, "no qipc-message user property");
      return FALSE;
    }
  if (type == NULL)
    return TRUE;
  if (!g_variant_type_string_is_valid (type) || !g_variant_type_is_definite (G_VARIANT_TYPE (type)) ||
      !_qipc_data_type_fits (type, strlen (type)))
    {
      g_set_error (error, QIPC_JSON_ERROR, 0,
                   "qipc-type is not a definite GVariant type of at most %d levels", QIPC_DATA_MAX_DEPTH);
      g_clear_pointer (message, g_free);
      return FALSE;
    }
  /* Untrusted bytes: GVariant reads any bytes safely as @type. */
  bytes = g_bytes_new (msg->payload, msg->payloadlen);
  *data = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE (type), bytes, FALSE));
  return TRUE;
}

static gboolean
is_gvariant_payload (const mosquitto_property *props)
{
  char *content_type = NULL;
  gboolean is;

  if (mosquitto_property_read_string (props, MQTT_PROP_CONTENT_TYPE, &content_type, FALSE) == NULL)
    return FALSE;
  is = strcmp (content_type, GVARIANT_CONTENT_TYPE) == 0;
  free (content_type);
  return is;
}

/* ------------------------------------------------------------------ */
/* Sending and receiving                                               */

static gboolean
qipc_mqtt_transport_send (QipcTransport  *transport,
                          const char     *channel,
                          const char     *message,
                          GVariant       *data,
                          GError        **error)
{
  QipcMqttTransport *self = QIPC_MQTT_TRANSPORT (transport);
  mosquitto_property *props = NULL;
  g_autofree char *topic = NULL;
  GBytes *payload;

  if (!check_mqtt_name (channel, error))
    return FALSE;
  if (self->closing)
    {
      g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_DISCONNECTED,
                   "The MQTT connection to %s was closed", self->address);
      return FALSE;
    }
  if (data != NULL && g_variant_get_size (data) > MAX_PAYLOAD)
    goto too_large;
  if (self->gvariant_format)
    payload = encode_gvariant (message, data, &props);
  else
    {
      g_autoptr(GError) json_error = NULL;

      payload = _qipc_json_encode_message (message, data, &json_error);
      if (payload == NULL)
        {
          g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_UNSUPPORTED_DATA,
                       "Cannot send over MQTT as JSON: %s", json_error->message);
          return FALSE;
        }
    }
  topic = channel_to_topic (self, channel);
  if (payload != NULL && g_bytes_get_size (payload) > MAX_PAYLOAD)
    {
      g_bytes_unref (payload);
      mosquitto_property_free_all (&props);
      goto too_large;
    }
  return publish (self, topic, payload, props, FALSE, TRUE, error);

too_large:
  g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_LIMIT_EXCEEDED,
               "A message is too large for MQTT: the limit is %d bytes of payload", MAX_PAYLOAD);
  return FALSE;
}

/* The copy of a message to take when several subscriptions match (see
 * the top of the file): the one with the smallest identifier among our
 * filters that match @topic. */
static gboolean
is_copy_to_take (QipcMqttTransport        *self,
                 const char               *topic,
                 const mosquitto_property *props)
{
  GHashTableIter iter;
  gpointer value;
  guint32 wanted = 0;
  uint32_t id;
  const mosquitto_property *p;

  p = mosquitto_property_read_varint (props, MQTT_PROP_SUBSCRIPTION_IDENTIFIER, &id, FALSE);
  if (p == NULL)
    return TRUE;  /* a broker without identifiers: nothing to go by */
  g_hash_table_iter_init (&iter, self->filters);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Filter *filter = value;
      bool match = FALSE;

      if (mosquitto_topic_matches_sub (filter->topic, topic, &match) == MOSQ_ERR_SUCCESS && match &&
          (wanted == 0 || filter->sub_id < wanted))
        wanted = filter->sub_id;
    }
  for (; p != NULL; p = mosquitto_property_read_varint (p, MQTT_PROP_SUBSCRIPTION_IDENTIFIER, &id, TRUE))
    if (id == wanted)
      return TRUE;
  return FALSE;
}

static void
receive_channel_message (QipcMqttTransport              *self,
                         const char                     *channel,
                         const struct mosquitto_message *msg,
                         const mosquitto_property       *props)
{
  g_autofree char *message = NULL;
  g_autoptr(GVariant) data = NULL;
  g_autoptr(GError) error = NULL;
  Incoming *incoming;
  gboolean ok;

  if (!is_copy_to_take (self, msg->topic, props))
    return;
  if (!_qipc_channel_name_validate (channel, FALSE, &error))
    {
      g_debug ("Dropping an MQTT message on %s: %s", msg->topic, error->message);
      return;
    }
  if (is_gvariant_payload (props))
    ok = decode_gvariant (msg, props, &message, &data, &error);
  else
    ok = _qipc_json_decode_message (self->parser, msg->payload, msg->payloadlen, &message, &data, &error) &&
         /* JSON objects are three levels of GVariant each: text within
          * the JSON limit may still be too deep for data. */
         (data == NULL || _qipc_data_check_depth (data, g_variant_get_type_string (data), &error));
  if (ok && !_qipc_message_name_validate (message, &error))
    ok = FALSE;
  if (!ok)
    {
      g_message ("Dropping a malformed MQTT message on %s: %s", msg->topic, error->message);
      return;
    }
  incoming = g_new0 (Incoming, 1);
  incoming->channel = g_strdup (channel);
  incoming->message = g_steal_pointer (&message);
  incoming->data = g_steal_pointer (&data);
  g_queue_push_tail (&self->incoming, incoming);
}

static void
on_message (struct mosquitto               *mosq,
            void                           *user_data,
            const struct mosquitto_message *msg,
            const mosquitto_property       *props)
{
  QipcMqttTransport *self = user_data;
  gsize prefix_length = strlen (self->prefix);
  const char *rest;

  if (self->closing || !g_str_has_prefix (msg->topic, self->prefix) ||
      msg->topic[prefix_length] != '/')
    return;
  rest = msg->topic + prefix_length + 1;
  if (strcmp (msg->topic, self->echo_topic) == 0)
    {
      g_autofree char *text = g_strndup (msg->payload, msg->payloadlen);
      guint64 echo;

      if (g_ascii_string_to_unsigned (text, 10, 1, G_MAXUINT64, &echo, NULL))
        self->echo_received = MAX (self->echo_received, echo);
      self->waiters_dirty = TRUE;
    }
  else if (g_str_has_prefix (rest, "$qipc/presence/"))
    {
      receive_presence (self, rest + strlen ("$qipc/presence/"), msg);
    }
  else if (!g_str_has_prefix (rest, "$qipc/"))
    {
      receive_channel_message (self, rest, msg, props);
    }
}

static void
on_publish (struct mosquitto         *mosq,
            void                     *user_data,
            int                       mid,
            int                       reason_code,
            const mosquitto_property *props)
{
  QipcMqttTransport *self = user_data;

  /* No matching subscribers is a success here. */
  if (reason_code >= 0x80)
    _qipc_bus_transport_send_failed (_qipc_transport_get_bus (QIPC_TRANSPORT (self)),
                                     g_error_new (QIPC_BUS_ERROR,
                                                  reason_code == MQTT_RC_NOT_AUTHORIZED
                                                  ? QIPC_BUS_ERROR_ACCESS_DENIED
                                                  : QIPC_BUS_ERROR_FAILED,
                                                  "The MQTT broker at %s refused a message: %s",
                                                  self->address,
                                                  mosquitto_reason_string (reason_code)));
  op_acknowledged (self, mid);
}

static void
on_subscribe (struct mosquitto         *mosq,
              void                     *user_data,
              int                       mid,
              int                       qos_count,
              const int                *granted_qos,
              const mosquitto_property *props)
{
  QipcMqttTransport *self = user_data;

  for (int i = 0; i < qos_count; i++)
    if (granted_qos[i] >= 0x80)
      g_message ("The MQTT broker at %s refused a subscription: %s", self->address,
                 mosquitto_reason_string (granted_qos[i]));
  op_acknowledged (self, mid);
}

static void
on_unsubscribe (struct mosquitto         *mosq,
                void                     *user_data,
                int                       mid,
                const mosquitto_property *props)
{
  op_acknowledged (user_data, mid);
}

/* ------------------------------------------------------------------ */
/* The connection                                                      */

static gboolean
socket_prepare (GSource *source,
                int     *timeout)
{
  SocketSource *ss = (SocketSource *) source;
  GIOCondition events = G_IO_IN | G_IO_ERR | G_IO_HUP;

  if (mosquitto_want_write (ss->self->mosq))
    events |= G_IO_OUT;
  /* Modifying wakes the context up: only on a change. */
  if (events != ss->events)
    {
      g_source_modify_unix_fd (source, ss->tag, events);
      ss->events = events;
    }
  *timeout = -1;
  return FALSE;
}

static void
incoming_free (gpointer data)
{
  Incoming *incoming = data;

  g_free (incoming->channel);
  g_free (incoming->message);
  g_clear_pointer (&incoming->data, g_variant_unref);
  g_free (incoming);
}

/* What the callbacks saw, once libmosquitto has returned: the bus's
 * signals and the messages run application code, which may run the
 * main context again (a blocking flush in a handler), and so come back
 * here or into libmosquitto. */
static void
process_events (QipcMqttTransport *self)
{
  G_GNUC_UNUSED g_autoptr(QipcMqttTransport) keep = g_object_ref (self);
  Incoming *incoming;

  if (self->event_connected && !self->closing)
    {
      self->event_connected = FALSE;
      _qipc_bus_transport_set_connected (_qipc_transport_get_bus (QIPC_TRANSPORT (self)), TRUE);
    }
  while (!self->closing && (incoming = g_queue_pop_head (&self->incoming)) != NULL)
    {
      _qipc_bus_transport_deliver (_qipc_transport_get_bus (QIPC_TRANSPORT (self)),
                                   incoming->channel, incoming->message, incoming->data);
      incoming_free (incoming);
    }
  if (self->event_lost && !self->closing)
    {
      self->event_lost = FALSE;
      _qipc_bus_transport_set_connected (_qipc_transport_get_bus (QIPC_TRANSPORT (self)), FALSE);
    }
  if (self->waiters_dirty)
    {
      self->waiters_dirty = FALSE;
      check_waiters (self);
    }
}

/* libmosquitto reads one packet a call: take what the socket holds
 * (within reason) rather than one packet per main loop iteration. */
static void
read_available (QipcMqttTransport *self,
                GSource           *source)
{
  for (int i = 0; i < READ_BATCH && self->socket_source == source; i++)
    {
      struct pollfd pfd = { mosquitto_socket (self->mosq), POLLIN, 0 };

      if (i > 0 && (pfd.fd < 0 || poll (&pfd, 1, 0) <= 0 || !(pfd.revents & POLLIN)))
        break;
      if (mosquitto_loop_read (self->mosq, 1) != MOSQ_ERR_SUCCESS)
        break;
    }
}

static gboolean
socket_dispatch (GSource     *source,
                 GSourceFunc  callback,
                 gpointer     user_data)
{
  SocketSource *ss = (SocketSource *) source;
  QipcMqttTransport *self = ss->self;
  GIOCondition revents = g_source_query_unix_fd (source, ss->tag);

  /* Either may end the connection, and this source with it. */
  if (revents & (G_IO_IN | G_IO_ERR | G_IO_HUP))
    read_available (self, source);
  if (self->socket_source == source && (revents & G_IO_OUT))
    mosquitto_loop_write (self->mosq, 1);
  /* May end with the last reference to the bus, and to us. */
  if (self->socket_source != source)
    {
      process_events (self);
      return G_SOURCE_REMOVE;
    }
  process_events (self);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs socket_funcs = {
  .prepare = socket_prepare,
  .dispatch = socket_dispatch,
};

static gboolean
on_misc (gpointer user_data)
{
  QipcMqttTransport *self = user_data;

  mosquitto_loop_misc (self->mosq);
  process_events (self);
  return G_SOURCE_CONTINUE;
}

static void
stop_socket_watch (QipcMqttTransport *self)
{
  if (self->socket_source != NULL)
    {
      g_source_destroy (self->socket_source);
      g_clear_pointer (&self->socket_source, g_source_unref);
    }
  if (self->misc_source != NULL)
    {
      g_source_destroy (self->misc_source);
      g_clear_pointer (&self->misc_source, g_source_unref);
    }
}

static void
start_socket_watch (QipcMqttTransport *self)
{
  SocketSource *ss;

  stop_socket_watch (self);
  ss = (SocketSource *) g_source_new (&socket_funcs, sizeof (SocketSource));
  ss->self = self;
  ss->events = G_IO_IN | G_IO_ERR | G_IO_HUP;
  ss->tag = g_source_add_unix_fd (&ss->source, mosquitto_socket (self->mosq), ss->events);
  g_source_set_static_name (&ss->source, "[qipc] MQTT socket");
  /* A handler that blocks in a flush runs the context again: this
   * source must go on reading meanwhile (and not being blocked spares
   * GLib a wake-up on each dispatch). process_events() runs the
   * handlers outside libmosquitto, where coming back is safe. */
  g_source_set_can_recurse (&ss->source, TRUE);
  g_source_attach (&ss->source, self->context);
  self->socket_source = &ss->source;

  self->misc_source = g_timeout_source_new_seconds (1);
  g_source_set_callback (self->misc_source, on_misc, self, NULL);
  g_source_set_static_name (self->misc_source, "[qipc] MQTT keep-alive");
  g_source_attach (self->misc_source, self->context);
}

/* Once connected (again): the subscriptions, our presence, then what
 * waited, in order. */
static void
resume (QipcMqttTransport *self)
{
  GHashTableIter iter;
  gpointer filter;
  Op *op;

  self->connected = TRUE;
  self->retry_ms = MIN_RETRY_MS;
  g_hash_table_iter_init (&iter, self->filters);
  while (g_hash_table_iter_next (&iter, NULL, &filter))
    subscribe_filter (self, filter, TRUE);
  /* A broker without persistence forgot it. */
  if (g_hash_table_size (self->own_names) > 0)
    publish_presence (self);
  while ((op = g_queue_pop_head (&self->outbox)) != NULL)
    {
      g_autoptr(GError) error = NULL;

      if (!publish_op (self, op, &error))
        {
          _qipc_bus_transport_send_failed (_qipc_transport_get_bus (QIPC_TRANSPORT (self)),
                                           g_steal_pointer (&error));
          op_done (self, op);
        }
    }
  /* Echoes sent before the loss may have come back to no subscription. */
  for (GList *l = self->waiters.head; l != NULL; l = l->next)
    {
      Waiter *waiter = l->data;

      if (waiter->echo > self->echo_received)
        send_echo (self, waiter->echo);
    }
  self->waiters_dirty = TRUE;
}

static void
on_connect (struct mosquitto         *mosq,
            void                     *user_data,
            int                       rc,
            int                       flags,
            const mosquitto_property *props)
{
  QipcMqttTransport *self = user_data;

  if (self->connack == -1)
    {
      self->connack = rc;
      return;
    }
  if (rc != 0)
    {
      g_message ("The MQTT broker at %s refused the connection: %s", self->address,
                 mosquitto_reason_string (rc));
      return;  /* it disconnects: on_disconnect retries */
    }
  resume (self);
  self->event_connected = TRUE;
}

static void
on_disconnect (struct mosquitto         *mosq,
               void                     *user_data,
               int                       rc,
               const mosquitto_property *props)
{
  QipcMqttTransport *self = user_data;
  GHashTableIter iter;
  gpointer value;
  gboolean was_connected = self->connected;

  if (self->closing || self->connack == -1)
    return;
  self->connected = FALSE;
  stop_socket_watch (self);
  /* Subscriptions are made again on reconnection: their acknowledgements
   * will not come. Publishes stay with libmosquitto, which sends them
   * again. */
  g_hash_table_iter_init (&iter, self->inflight);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Op *op = value;

      if (op->kind == OP_SUBSCRIBE)
        {
          g_hash_table_iter_steal (&iter);
          op_done (self, op);
        }
    }
  schedule_retry (self);
  if (was_connected)
    self->event_lost = TRUE;
  self->waiters_dirty = TRUE;
}

static gboolean
on_retry (gpointer user_data)
{
  QipcMqttTransport *self = user_data;
  int rc;

  g_clear_pointer (&self->retry_source, g_source_unref);
  rc = mosquitto_reconnect_async (self->mosq);
  if (rc == MOSQ_ERR_SUCCESS && mosquitto_socket (self->mosq) >= 0)
    start_socket_watch (self);
  else
    schedule_retry (self);
  return G_SOURCE_REMOVE;
}

static void
schedule_retry (QipcMqttTransport *self)
{
  if (self->retry_source != NULL || self->closing)
    return;
  self->retry_source = g_timeout_source_new (self->retry_ms);
  g_source_set_callback (self->retry_source, on_retry, self, NULL);
  g_source_set_static_name (self->retry_source, "[qipc] MQTT reconnection");
  g_source_attach (self->retry_source, self->context);
  self->retry_ms = MIN (self->retry_ms * 2, MAX_RETRY_MS);
}

static gboolean
qipc_mqtt_transport_open (QipcTransport  *transport,
                          GError        **error)
{
  QipcMqttTransport *self = QIPC_MQTT_TRANSPORT (transport);
  gint64 deadline = g_get_monotonic_time () + OPEN_TIMEOUT_MS * 1000;
  int rc;

  /* Blocking here, as the native transport does: libmosquitto's own
   * select() loop until the CONNACK. */
  self->connack = -1;
  rc = mosquitto_connect_bind_async (self->mosq, self->host, self->port, self->keepalive, NULL);
  while (rc == MOSQ_ERR_SUCCESS && self->connack == -1 && g_get_monotonic_time () < deadline)
    rc = mosquitto_loop (self->mosq, 50, 1);
  if (self->connack == -1 && (rc == MOSQ_ERR_TLS || rc == MOSQ_ERR_TLS_HANDSHAKE))
    {
      /* A broker answered, with a certificate that does not verify. */
      g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_TLS_HANDSHAKE_FAILED,
                   "The TLS handshake with the MQTT broker at %s failed: %s (is its "
                   "authority in ca=?)", self->address, mosquitto_strerror (rc));
      self->connack = 0;
      return FALSE;
    }
  if (self->connack == -1)
    {
      g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_BROKER_NOT_FOUND,
                   "No MQTT broker answers at %s: %s", self->address,
                   rc == MOSQ_ERR_SUCCESS ? "timed out"
                   : rc == MOSQ_ERR_ERRNO ? g_strerror (errno) : mosquitto_strerror (rc));
      self->connack = 0;
      return FALSE;
    }
  if (self->connack != 0)
    {
      int refusal = self->connack;

      g_set_error (error, QIPC_BUS_ERROR,
                   refusal == MQTT_RC_NOT_AUTHORIZED || refusal == MQTT_RC_BAD_USERNAME_OR_PASSWORD
                   || refusal == 5 || refusal == 4 ? QIPC_BUS_ERROR_ACCESS_DENIED
                                                   : QIPC_BUS_ERROR_FAILED,
                   "The MQTT broker at %s refused the connection: %s", self->address,
                   mosquitto_reason_string (refusal));
      self->connack = 0;
      return FALSE;
    }
  self->connected = TRUE;
  start_socket_watch (self);
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* Subscriptions                                                       */

static void
qipc_mqtt_transport_subscribe (QipcTransport *transport,
                               guint32        id,
                               const char    *name)
{
  QipcMqttTransport *self = QIPC_MQTT_TRANSPORT (transport);
  g_autofree char *topic = NULL;
  guint count;

  if (strpbrk (name, "+#") != NULL)
    {
      g_message ("The channel %s cannot be received over MQTT: it has '+' or '#'", name);
      return;
    }
  topic = channel_to_topic (self, name);
  g_hash_table_insert (self->ids, GUINT_TO_POINTER (id), g_strdup (name));
  filter_ref (self, topic, channel_options (self));
  count = GPOINTER_TO_UINT (g_hash_table_lookup (self->own_names, name));
  g_hash_table_insert (self->own_names, g_strdup (name), GUINT_TO_POINTER (count + 1));
  presence_changed (self);
}

static void
qipc_mqtt_transport_unsubscribe (QipcTransport *transport,
                                 guint32        id,
                                 const char    *name)
{
  QipcMqttTransport *self = QIPC_MQTT_TRANSPORT (transport);
  g_autofree char *topic = NULL;
  guint count;

  if (!g_hash_table_remove (self->ids, GUINT_TO_POINTER (id)))
    return;
  topic = channel_to_topic (self, name);
  filter_unref (self, topic);
  count = GPOINTER_TO_UINT (g_hash_table_lookup (self->own_names, name));
  if (count <= 1)
    g_hash_table_remove (self->own_names, name);
  else
    g_hash_table_insert (self->own_names, g_strdup (name), GUINT_TO_POINTER (count - 1));
  presence_changed (self);
}

/* ------------------------------------------------------------------ */
/* Closing                                                             */

static gboolean
has_publishes_inflight (QipcMqttTransport *self)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->inflight);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (((Op *) value)->kind == OP_PUBLISH)
      return TRUE;
  return FALSE;
}

static void
qipc_mqtt_transport_close (QipcTransport *transport)
{
  QipcMqttTransport *self = QIPC_MQTT_TRANSPORT (transport);
  gint64 deadline = g_get_monotonic_time () + CLOSE_TIMEOUT_MS * 1000;
  g_autoptr(GError) error = NULL;
  Waiter *waiter;

  if (self->closing)
    return;
  if (self->connected)
    {
      /* Our presence goes with us (a will only fires on a loss). */
      g_hash_table_remove_all (self->own_names);
      if (self->presence_published || self->presence_dirty)
        {
          self->presence_published = TRUE;
          publish_presence (self);
        }
    }
  self->closing = TRUE;
  g_clear_pointer (&self->presence_source, g_source_destroy);
  g_clear_pointer (&self->check_source, g_source_destroy);
  if (self->retry_source != NULL)
    {
      /* Ours holds a reference (on_retry() drops it). */
      g_source_destroy (self->retry_source);
      g_clear_pointer (&self->retry_source, g_source_unref);
    }
  stop_socket_watch (self);
  /* What was sent goes before we leave, as far as the broker takes it
   * within a second (libmosquitto's own loop: no reentrance into the
   * bus's context). */
  while (self->connected && has_publishes_inflight (self) && g_get_monotonic_time () < deadline &&
         mosquitto_loop (self->mosq, 50, 1) == MOSQ_ERR_SUCCESS)
    ;
  if (self->connected)
    mosquitto_disconnect_v5 (self->mosq, MQTT_RC_NORMAL_DISCONNECTION, NULL);
  self->connected = FALSE;

  g_queue_clear_full (&self->incoming, incoming_free);
  error = g_error_new (QIPC_BUS_ERROR, QIPC_BUS_ERROR_DISCONNECTED,
                       "The MQTT connection to %s was closed", self->address);
  while ((waiter = g_queue_pop_head (&self->waiters)) != NULL)
    {
      g_task_return_error (waiter->task, g_error_copy (error));
      waiter_free (waiter);
    }
}

/* ------------------------------------------------------------------ */
/* GObject                                                             */

static void
qipc_mqtt_transport_finalize (GObject *object)
{
  QipcMqttTransport *self = QIPC_MQTT_TRANSPORT (object);

  if (!self->closing)
    qipc_mqtt_transport_close (QIPC_TRANSPORT (self));
  /* Their callbacks hold no reference: none may outlive us. */
  g_clear_pointer (&self->presence_source, g_source_destroy);
  g_clear_pointer (&self->check_source, g_source_destroy);
  if (self->mosq != NULL)
    mosquitto_destroy (self->mosq);
  g_queue_clear_full (&self->outbox, (GDestroyNotify) op_free);
  g_queue_clear_full (&self->incoming, incoming_free);
  g_hash_table_unref (self->inflight);
  g_hash_table_unref (self->filters);
  g_hash_table_unref (self->ids);
  g_hash_table_unref (self->own_names);
  g_hash_table_unref (self->presence);
  g_object_unref (self->parser);
  g_main_context_unref (self->context);
  g_free (self->address);
  g_free (self->host);
  g_free (self->ca_file);
  g_free (self->client_id);
  g_free (self->user);
  g_free (self->password);
  g_free (self->prefix);
  g_free (self->presence_topic);
  g_free (self->presence_filter);
  g_free (self->echo_topic);
  G_OBJECT_CLASS (_qipc_mqtt_transport_parent_class)->finalize (object);
}

static void
_qipc_mqtt_transport_class_init (QipcMqttTransportClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  QipcTransportClass *transport_class = QIPC_TRANSPORT_CLASS (klass);

  object_class->finalize = qipc_mqtt_transport_finalize;
  transport_class->open = qipc_mqtt_transport_open;
  transport_class->subscribe = qipc_mqtt_transport_subscribe;
  transport_class->unsubscribe = qipc_mqtt_transport_unsubscribe;
  transport_class->send = qipc_mqtt_transport_send;
  transport_class->call = qipc_mqtt_transport_call;
  transport_class->call_finish = qipc_mqtt_transport_call_finish;
  transport_class->close = qipc_mqtt_transport_close;
}

static void
_qipc_mqtt_transport_init (QipcMqttTransport *self)
{
  self->context = g_main_context_ref_thread_default ();
  self->keepalive = DEFAULT_KEEPALIVE_S;
  self->prefix = g_strdup (DEFAULT_PREFIX);
  self->retry_ms = MIN_RETRY_MS;
  self->filters = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, filter_free);
  self->ids = g_hash_table_new_full (NULL, NULL, NULL, g_free);
  self->own_names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->presence = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                          (GDestroyNotify) g_hash_table_unref);
  self->inflight = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) op_free);
  self->parser = json_parser_new ();
}

static gpointer
init_library (gpointer data)
{
  mosquitto_lib_init ();
  return NULL;
}

static gboolean
setup_client (QipcMqttTransport  *self,
              GError            **error)
{
  static GOnce once = G_ONCE_INIT;
  int rc;

  g_once (&once, init_library, NULL);
  self->mosq = mosquitto_new (self->client_id, TRUE, self);
  if (self->mosq == NULL)
    {
      g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_FAILED,
                   "Cannot create an MQTT client: %s", g_strerror (errno));
      return FALSE;
    }
  mosquitto_int_option (self->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
  mosquitto_int_option (self->mosq, MOSQ_OPT_TCP_NODELAY, 1);
  mosquitto_connect_v5_callback_set (self->mosq, on_connect);
  mosquitto_disconnect_v5_callback_set (self->mosq, on_disconnect);
  mosquitto_publish_v5_callback_set (self->mosq, on_publish);
  mosquitto_message_v5_callback_set (self->mosq, on_message);
  mosquitto_subscribe_v5_callback_set (self->mosq, on_subscribe);
  mosquitto_unsubscribe_v5_callback_set (self->mosq, on_unsubscribe);
  if (self->user != NULL)
    mosquitto_username_pw_set (self->mosq, self->user, self->password);
  /* Our presence is cleared when we go away without a word. */
  rc = mosquitto_will_set_v5 (self->mosq, self->presence_topic, 0, NULL, 1, TRUE, NULL);
  if (rc == MOSQ_ERR_SUCCESS && self->tls)
    rc = mosquitto_tls_set (self->mosq, self->ca_file, self->ca_file == NULL ? "/etc/ssl/certs" : NULL,
                            NULL, NULL, NULL);
  if (rc != MOSQ_ERR_SUCCESS)
    {
      g_propagate_error (error, mosquitto_error (rc, "set up the client"));
      return FALSE;
    }
  return TRUE;
}

QipcTransport *
_qipc_mqtt_transport_new (const char  *address,
                          GError     **error)
{
  g_autoptr(QipcMqttTransport) self = g_object_new (QIPC_TYPE_MQTT_TRANSPORT, NULL);

  self->address = g_strdup (address);
  if (!parse_address (self, error))
    return NULL;
  if (self->client_id == NULL)
    self->client_id = default_client_id ();
  self->presence_topic = g_strdup_printf ("%s/$qipc/presence/%s", self->prefix, self->client_id);
  self->presence_filter = g_strdup_printf ("%s/$qipc/presence/+", self->prefix);
  self->echo_topic = g_strdup_printf ("%s/$qipc/echo/%s", self->prefix, self->client_id);
  if (!setup_client (self, error))
    return NULL;
  return QIPC_TRANSPORT (g_steal_pointer (&self));
}
