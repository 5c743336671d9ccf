/* qipc-bench-mqtt.c: qipc channels over MQTT next to raw libmosquitto,
 * on the same mosquitto
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   qipc-bench-mqtt [--rounds N] [--messages N] [--trips N]
 *
 * Starts a mosquitto of its own on 127.0.0.1 (a free port, no
 * persistence), then measures for each implementation, in one run:
 *
 *   throughput   one sender process, one receiver process, --messages
 *                64-byte messages at QoS 1, as fast as the sender can:
 *                messages per second, from the sender's first send to
 *                the receiver's last message
 *   round trip   a message to an echo process and its answer on another
 *                topic: median and 99th percentile of --trips, in µs
 *
 * Implementations: "raw" (libmosquitto itself: mosquitto_publish_v5 and
 * mosquitto_loop, QoS 1, the 64 bytes as the payload), "qipc-json"
 * (QipcChannel on mqtt://, the 64 bytes as "ay" data, which JSON carries
 * as base64 in {"message", "data", "type"}) and "qipc-gvariant" (the
 * same with format=gvariant: the 64 bytes as they are, the message name
 * and type in MQTT 5 properties). Every process is this program run
 * again ("qipc-bench-mqtt child ROLE IMPL ADDRESS ..."), talking to the
 * parent line by line on its stdin and stdout.
 *
 * Prints every figure as a ROUND line (see bench-util.h), then a table
 * and the ratios to raw libmosquitto as the last lines.
 */
#include <qipc.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <math.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define PAYLOAD_SIZE 64
#define DEFAULT_ROUNDS 3
#define DEFAULT_MESSAGES 50000
#define DEFAULT_TRIPS 2000
#define WARMUP_TRIPS 200
/* The qipc sender lets its main loop run once per this many messages,
 * and raw libmosquitto its loop. */
#define BATCH 64

static const char *const impls[] = { "raw", "qipc-json", "qipc-gvariant" };

static gint64
now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (gint64) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
say (const char *format,
     ...) G_GNUC_PRINTF (1, 2);

static void
say (const char *format,
     ...)
{
  va_list args;

  va_start (args, format);
  vprintf (format, args);
  va_end (args);
  putchar ('\n');
  fflush (stdout);
}

static void
wait_for_go (void)
{
  char line[64];

  if (fgets (line, sizeof line, stdin) == NULL)
    exit (1);
}

static int
compare_doubles (const void *a,
                 const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------------ */
/* Raw libmosquitto                                                    */

typedef struct
{
  struct mosquitto *mosq;
  gboolean connected;
  guint64 received;
  guint64 acked;
  gint64 first_ns, last_ns;
  const char *reply_topic;    /* echo: answer here */
} Raw;

static void
raw_on_connect (struct mosquitto *mosq, void *data, int rc, int flags, const mosquitto_property *p)
{
  ((Raw *) data)->connected = rc == 0;
}

static void
raw_on_publish (struct mosquitto *mosq, void *data, int mid, int rc, const mosquitto_property *p)
{
  ((Raw *) data)->acked++;
}

static void
raw_on_message (struct mosquitto *mosq, void *data, const struct mosquitto_message *msg,
                const mosquitto_property *p)
{
  Raw *raw = data;

  if (raw->received++ == 0)
    raw->first_ns = now_ns ();
  raw->last_ns = now_ns ();
  if (raw->reply_topic != NULL)
    mosquitto_publish_v5 (mosq, NULL, raw->reply_topic, msg->payloadlen, msg->payload, 1, FALSE, NULL);
}

static void
raw_connect (Raw        *raw,
             const char *address)
{
  g_autoptr(GUri) uri = g_uri_parse (address, G_URI_FLAGS_NONE, NULL);
  int mid;

  mosquitto_lib_init ();
  raw->mosq = mosquitto_new (NULL, TRUE, raw);
  mosquitto_int_option (raw->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
  mosquitto_int_option (raw->mosq, MOSQ_OPT_TCP_NODELAY, 1);
  mosquitto_connect_v5_callback_set (raw->mosq, raw_on_connect);
  mosquitto_publish_v5_callback_set (raw->mosq, raw_on_publish);
  mosquitto_message_v5_callback_set (raw->mosq, raw_on_message);
  if (mosquitto_connect (raw->mosq, g_uri_get_host (uri), g_uri_get_port (uri), 60) != MOSQ_ERR_SUCCESS)
    exit (2);
  while (!raw->connected)
    if (mosquitto_loop (raw->mosq, 100, 1) != MOSQ_ERR_SUCCESS)
      exit (2);
  (void) mid;
}

static void
raw_subscribe (Raw        *raw,
               const char *topic)
{
  /* A QoS 1 publish to ourselves would do as a barrier; the SUBACK is
   * enough for a single subscription. */
  mosquitto_subscribe_v5 (raw->mosq, NULL, topic, 1, 0, NULL);
  for (int i = 0; i < 20; i++)
    mosquitto_loop (raw->mosq, 10, 1);
}

/* ------------------------------------------------------------------ */
/* qipc                                                                */

typedef struct
{
  QipcBus *bus;
  QipcChannel *channel;
  guint64 received;
  gint64 first_ns, last_ns;
  const char *reply_channel;
} Qipc;

static void
qipc_on_received (QipcChannel *channel,
                  const char  *message,
                  GVariant    *data,
                  gpointer     user_data)
{
  Qipc *q = user_data;

  if (q->received++ == 0)
    q->first_ns = now_ns ();
  q->last_ns = now_ns ();
  if (q->reply_channel != NULL)
    qipc_channel_send_for_bus (q->bus, q->reply_channel, "pong", data, NULL);
}

static void
qipc_connect (Qipc       *q,
              const char *impl,
              const char *address,
              const char *listen)
{
  g_autofree char *full = g_strdup_printf ("%s?format=%s", address,
                                           g_str_equal (impl, "qipc-json") ? "json" : "gvariant");
  GError *error = NULL;

  q->bus = qipc_bus_new_for_address (full, &error);
  if (q->bus == NULL)
    g_error ("%s", error->message);
  if (listen != NULL)
    {
      q->channel = qipc_channel_new_for_bus (q->bus, listen, &error);
      g_signal_connect (q->channel, "received", G_CALLBACK (qipc_on_received), q);
      if (!qipc_channel_flush_for_bus (q->bus, &error))
        g_error ("%s", error->message);
    }
}

static GVariant *
payload_variant (void)
{
  static guint8 bytes[PAYLOAD_SIZE];

  memset (bytes, 'x', sizeof bytes);
  return g_variant_ref_sink (g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, bytes, sizeof bytes, 1));
}

/* ------------------------------------------------------------------ */
/* Child roles                                                         */

/* recv IMPL ADDR N: says "ready", then "done FIRST LAST" (ns). */
static int
child_recv (const char *impl,
            const char *address,
            guint64     n)
{
  if (g_str_equal (impl, "raw"))
    {
      Raw raw = { 0, };

      raw_connect (&raw, address);
      raw_subscribe (&raw, "qipc/bench/t");
      say ("ready");
      while (raw.received < n)
        mosquitto_loop (raw.mosq, 100, 1);
      say ("done %" G_GINT64_FORMAT " %" G_GINT64_FORMAT, raw.first_ns, raw.last_ns);
    }
  else
    {
      Qipc q = { 0, };

      qipc_connect (&q, impl, address, "bench/t");
      say ("ready");
      while (q.received < n)
        g_main_context_iteration (NULL, TRUE);
      say ("done %" G_GINT64_FORMAT " %" G_GINT64_FORMAT, q.first_ns, q.last_ns);
    }
  return 0;
}

/* send IMPL ADDR N: says "ready", waits for "go", sends, waits for the
 * broker's acknowledgements, says "sent START" (ns). */
static int
child_send (const char *impl,
            const char *address,
            guint64     n)
{
  gint64 start;

  if (g_str_equal (impl, "raw"))
    {
      Raw raw = { 0, };
      guint8 payload[PAYLOAD_SIZE];

      memset (payload, 'x', sizeof payload);
      raw_connect (&raw, address);
      say ("ready");
      wait_for_go ();
      start = now_ns ();
      for (guint64 i = 0; i < n; i++)
        {
          mosquitto_publish_v5 (raw.mosq, NULL, "qipc/bench/t", sizeof payload, payload, 1, FALSE, NULL);
          if (i % BATCH == BATCH - 1)
            mosquitto_loop (raw.mosq, 0, 1);
        }
      while (raw.acked < n)
        mosquitto_loop (raw.mosq, 100, 1);
    }
  else
    {
      Qipc q = { 0, };
      g_autoptr(GVariant) data = payload_variant ();
      GError *error = NULL;

      qipc_connect (&q, impl, address, NULL);
      qipc_bus_set_max_queued (q.bus, 256 * 1024 * 1024);
      say ("ready");
      wait_for_go ();
      start = now_ns ();
      for (guint64 i = 0; i < n; i++)
        {
          if (!qipc_channel_send_for_bus (q.bus, "bench/t", "m", data, &error))
            g_error ("%s", error->message);
          if (i % BATCH == BATCH - 1)
            while (g_main_context_iteration (NULL, FALSE))
              ;
        }
      if (!qipc_channel_flush_for_bus (q.bus, &error))
        g_error ("%s", error->message);
    }
  say ("sent %" G_GINT64_FORMAT, start);
  return 0;
}

/* echo IMPL ADDR: answers every message on .../ping on .../pong. */
static int
child_echo (const char *impl,
            const char *address)
{
  if (g_str_equal (impl, "raw"))
    {
      Raw raw = { .reply_topic = "qipc/bench/pong" };

      raw_connect (&raw, address);
      raw_subscribe (&raw, "qipc/bench/ping");
      say ("ready");
      for (;;)
        mosquitto_loop (raw.mosq, 1000, 1);
    }
  else
    {
      Qipc q = { .reply_channel = "bench/pong" };

      qipc_connect (&q, impl, address, "bench/ping");
      say ("ready");
      for (;;)
        g_main_context_iteration (NULL, TRUE);
    }
  return 0;
}

/* ping IMPL ADDR TRIPS: says "ready", waits for "go", then "rtt MEDIAN
 * P99" (µs). */
static int
child_ping (const char *impl,
            const char *address,
            guint       trips)
{
  g_autofree double *times = g_new (double, trips);
  guint8 payload[PAYLOAD_SIZE];
  Raw raw = { 0, };
  Qipc q = { 0, };
  g_autoptr(GVariant) data = payload_variant ();
  gboolean is_raw = g_str_equal (impl, "raw");

  memset (payload, 'x', sizeof payload);
  if (is_raw)
    {
      raw_connect (&raw, address);
      raw_subscribe (&raw, "qipc/bench/pong");
    }
  else
    {
      qipc_connect (&q, impl, address, "bench/pong");
    }
  say ("ready");
  wait_for_go ();
  for (guint i = 0; i < WARMUP_TRIPS + trips; i++)
    {
      gint64 start = now_ns ();

      if (is_raw)
        {
          guint64 before = raw.received;

          mosquitto_publish_v5 (raw.mosq, NULL, "qipc/bench/ping", sizeof payload, payload, 1, FALSE, NULL);
          while (raw.received == before)
            mosquitto_loop (raw.mosq, 100, 1);
        }
      else
        {
          guint64 before = q.received;

          qipc_channel_send_for_bus (q.bus, "bench/ping", "ping", data, NULL);
          while (q.received == before)
            g_main_context_iteration (NULL, TRUE);
        }
      if (i >= WARMUP_TRIPS)
        times[i - WARMUP_TRIPS] = (now_ns () - start) / 1000.0;
    }
  qsort (times, trips, sizeof *times, compare_doubles);
  say ("rtt %.1f %.1f", times[trips / 2], times[(guint) (trips * 0.99)]);
  return 0;
}

/* ------------------------------------------------------------------ */
/* The parent                                                          */

typedef struct
{
  GSubprocess *process;
  GDataInputStream *out;
} Child;

static void
child_setup (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static Child *
child_spawn (const char *const *argv)
{
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  Child *child = g_new0 (Child, 1);
  GError *error = NULL;

  g_subprocess_launcher_set_child_setup (launcher, child_setup, NULL, NULL);
  child->process = g_subprocess_launcher_spawnv (launcher, argv, &error);
  if (child->process == NULL)
    g_error ("%s", error->message);
  child->out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (child->process));
  return child;
}

static char *
child_line (Child *child)
{
  char *line = g_data_input_stream_read_line (child->out, NULL, NULL, NULL);

  if (line == NULL)
    g_error ("A child ended early");
  return line;
}

static void
child_go (Child *child)
{
  g_output_stream_write_all (g_subprocess_get_stdin_pipe (child->process), "go\n", 3,
                             NULL, NULL, NULL);
}

static void
child_free (Child *child)
{
  g_subprocess_force_exit (child->process);
  g_subprocess_wait (child->process, NULL, NULL);
  g_object_unref (child->out);
  g_object_unref (child->process);
  g_free (child);
}

static const char *self_path;

static double
measure_throughput (const char *impl,
                    const char *address,
                    guint64     n)
{
  g_autofree char *count = g_strdup_printf ("%" G_GUINT64_FORMAT, n);
  const char *recv_argv[] = { self_path, "child", "recv", impl, address, count, NULL };
  const char *send_argv[] = { self_path, "child", "send", impl, address, count, NULL };
  Child *receiver = child_spawn (recv_argv);
  Child *sender = child_spawn (send_argv);
  g_autofree char *ready_r = child_line (receiver);
  g_autofree char *ready_s = child_line (sender);
  g_autofree char *sent = NULL;
  g_autofree char *done = NULL;
  gint64 start, first, last;

  child_go (sender);
  sent = child_line (sender);
  done = child_line (receiver);
  if (sscanf (sent, "sent %" G_GINT64_FORMAT, &start) != 1 ||
      sscanf (done, "done %" G_GINT64_FORMAT " %" G_GINT64_FORMAT, &first, &last) != 2)
    g_error ("Unexpected lines: %s / %s", sent, done);
  child_free (sender);
  child_free (receiver);
  return n / ((last - start) / 1e9);
}

static void
measure_round_trip (const char *impl,
                    const char *address,
                    guint       trips,
                    double     *median,
                    double     *p99)
{
  g_autofree char *count = g_strdup_printf ("%u", trips);
  const char *echo_argv[] = { self_path, "child", "echo", impl, address, NULL };
  const char *ping_argv[] = { self_path, "child", "ping", impl, address, count, NULL };
  Child *echo = child_spawn (echo_argv);
  g_autofree char *ready_e = child_line (echo);
  Child *ping = child_spawn (ping_argv);
  g_autofree char *ready_p = child_line (ping);
  g_autofree char *result = NULL;

  child_go (ping);
  result = child_line (ping);
  if (sscanf (result, "rtt %lf %lf", median, p99) != 2)
    g_error ("Unexpected line: %s", result);
  child_free (ping);
  child_free (echo);
}

/* mosquitto on a free port of 127.0.0.1; its address in @address. */
static GSubprocess *
start_mosquitto (char **address,
                 char **directory)
{
  g_autoptr(GSocket) probe = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                           G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
  g_autofree char *config = NULL;
  g_autofree char *text = NULL;
  GSubprocess *process;
  guint16 port;

  g_socket_bind (probe, any, FALSE, NULL);
  bound = g_socket_get_local_address (probe, NULL);
  port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  g_socket_close (probe, NULL);
  *directory = g_dir_make_tmp ("qipc-bench-mosquitto-XXXXXX", NULL);
  config = g_build_filename (*directory, "mosquitto.conf", NULL);
  /* Both sides get the same broker: the default in-flight window (20),
   * and room for the whole burst of a round. */
  text = g_strdup_printf ("listener %u 127.0.0.1\nallow_anonymous true\npersistence false\n"
                          "max_queued_messages 0\nset_tcp_nodelay true\nlog_type error\n"
                          /* As root it would become the user mosquitto, and
                           * lose its parent-death signal. */
                          "user %s\n", port, g_get_user_name ());
  g_file_set_contents (config, text, -1, NULL);
  g_subprocess_launcher_set_child_setup (launcher, child_setup, NULL, NULL);
  process = g_subprocess_launcher_spawn (launcher, NULL, "mosquitto", "-c", config, NULL);
  for (int i = 0; i < 500; i++)
    {
      g_autoptr(GSocketClient) client = g_socket_client_new ();
      g_autoptr(GSocketConnection) connection =
        g_socket_client_connect_to_host (client, "127.0.0.1", port, NULL, NULL);

      if (connection != NULL)
        break;
      g_usleep (10000);
    }
  *address = g_strdup_printf ("mqtt://127.0.0.1:%u", port);
  return process;
}

static double
median_of (double *values,
           guint   n)
{
  qsort (values, n, sizeof *values, compare_doubles);
  return values[n / 2];
}

int
main (int    argc,
      char **argv)
{
  guint rounds = DEFAULT_ROUNDS, trips = DEFAULT_TRIPS;
  guint64 messages = DEFAULT_MESSAGES;
  g_autofree char *address = NULL;
  g_autofree char *directory = NULL;
  g_autoptr(GSubprocess) mosquitto = NULL;
  double throughput[G_N_ELEMENTS (impls)], rtt[G_N_ELEMENTS (impls)], rtt99[G_N_ELEMENTS (impls)];

  self_path = argv[0];
  if (argc >= 5 && g_str_equal (argv[1], "child"))
    {
      if (g_str_equal (argv[2], "recv") && argc == 6)
        return child_recv (argv[3], argv[4], g_ascii_strtoull (argv[5], NULL, 10));
      if (g_str_equal (argv[2], "send") && argc == 6)
        return child_send (argv[3], argv[4], g_ascii_strtoull (argv[5], NULL, 10));
      if (g_str_equal (argv[2], "echo") && argc == 5)
        return child_echo (argv[3], argv[4]);
      if (g_str_equal (argv[2], "ping") && argc == 6)
        return child_ping (argv[3], argv[4], atoi (argv[5]));
      return 64;
    }
  for (int i = 1; i + 1 < argc; i += 2)
    {
      if (g_str_equal (argv[i], "--rounds"))
        rounds = MAX (1, atoi (argv[i + 1]));
      else if (g_str_equal (argv[i], "--messages"))
        messages = MAX (1, g_ascii_strtoull (argv[i + 1], NULL, 10));
      else if (g_str_equal (argv[i], "--trips"))
        trips = CLAMP (atoi (argv[i + 1]), 10, 1000000);
      else
        {
          fprintf (stderr, "usage: %s [--rounds N] [--messages N] [--trips N]\n", argv[0]);
          return 64;
        }
    }

  mosquitto = start_mosquitto (&address, &directory);
  printf ("# mosquitto at %s; %" G_GUINT64_FORMAT " messages of %d bytes, %u trips, %u rounds\n",
          address, messages, PAYLOAD_SIZE, trips, rounds);
  for (gsize k = 0; k < G_N_ELEMENTS (impls); k++)
    {
      g_autofree double *tp = g_new (double, rounds);
      g_autofree double *med = g_new (double, rounds);
      g_autofree double *p99 = g_new (double, rounds);

      for (guint r = 0; r < rounds; r++)
        {
          tp[r] = measure_throughput (impls[k], address, messages);
          printf ("ROUND mqtt-throughput %s %.0f msg/s\n", impls[k], tp[r]);
          measure_round_trip (impls[k], address, trips, &med[r], &p99[r]);
          printf ("ROUND mqtt-rtt-median %s %.1f us\n", impls[k], med[r]);
          printf ("ROUND mqtt-rtt-p99 %s %.1f us\n", impls[k], p99[r]);
          fflush (stdout);
        }
      throughput[k] = median_of (tp, rounds);
      rtt[k] = median_of (med, rounds);
      rtt99[k] = median_of (p99, rounds);
    }
  g_subprocess_force_exit (mosquitto);
  g_subprocess_wait (mosquitto, NULL, NULL);
  {
    g_autofree char *config = g_build_filename (directory, "mosquitto.conf", NULL);

    g_unlink (config);
    g_rmdir (directory);
  }

  printf ("\n%-15s %14s %14s %14s\n", "(medians)", "msg/s", "rtt µs", "rtt p99 µs");
  for (gsize k = 0; k < G_N_ELEMENTS (impls); k++)
    printf ("%-15s %14.0f %14.1f %14.1f\n", impls[k], throughput[k], rtt[k], rtt99[k]);
  printf ("\n");
  for (gsize k = 1; k < G_N_ELEMENTS (impls); k++)
    printf ("RATIO %s/raw throughput %.2fx, round trip %.2fx as fast\n", impls[k],
            throughput[k] / throughput[0], rtt[0] / rtt[k]);
  return 0;
}
