/* qipc-bench-channels.c: qipc channels next to GDBus signals, ZeroMQ
 * PUB/SUB and raw AF_UNIX socket pairs
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   qipc-bench-channels [--rounds N] [--messages N] [--trips N]
 *                       [--clients N] [--pin CPU] [--phase both|unpinned|pinned]
 *                       [--part LIST] [--only IMPL]
 *
 * One run measures, for each implementation side by side:
 *
 *   fan-out      one sender, 1, 4 and 16 receivers (1 receiver is the
 *                one-way throughput), 64-byte messages: the sender sends
 *                --messages / receivers, so that every round delivers
 *                --messages in all; in messages per second each receiver
 *                gets, and the CPU time of every process involved (broker
 *                included) per delivered message
 *   round trip   a message on one channel, answered by another process on
 *                another channel: median and 99th percentile of --trips
 *                round trips, in µs; plus a GDBus method call
 *   memory       the broker's memory idle and with --clients connected
 *                idle clients, each with one channel (one match rule for
 *                dbus-daemon)
 *
 * fan-out and round trip run twice: as they come, and with every process
 * (broker and dbus-daemon included) pinned to one CPU (--pin, 0).
 *
 * Implementations (--only): "qipc" (QipcChannel through a QipcBroker
 * hosted in a child process), "gdbus" (GDBus signals through a private
 * dbus-daemon), "gdbus-method" (round trip only: a GDBus method call),
 * "zeromq" (PUB/SUB over ipc://), "raw" (AF_UNIX socket pairs between the
 * processes, no broker: the limit), "raw-relay" (round trip only: the
 * same through a process that forwards, the floor of any broker).
 *
 * Every message carries the same 64 bytes (a bench-util.h frame: length,
 * sequence number, fill), which receivers check for order and content.
 * Every process is a fresh program (fork and exec of this executable as
 * "qipc-bench-channels child ROLE IMPL ..."), which talks to the parent
 * over a socket pair: "ready" once set up, "go" to start, "result ..." at
 * the end.
 *
 * Prints every figure as a ROUND line, then the tables, then the ratios
 * as the last lines.
 */
#ifdef QIPC_BENCH_HAVE_CHANNELS
#include <qipc.h>
#endif

#include <dirent.h>
#include <ftw.h>
#include <math.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <zmq.h>

#include "bench-util.h"

#define CHAN_ROUNDS 3
/* Messages delivered per fan-out round, all receivers together: 1->1
 * sends them all, 1->16 a sixteenth of them. */
#define CHAN_MESSAGES 96000
#define CHAN_CLIENTS 1000
/* Idle clients are spread over this many processes. */
#define CHAN_IDLE_PROCESSES 4
#define CHAN_MAX_RECEIVERS 16
/* The qipc sender lets its main loop run once per this many messages. */
#define CHAN_QIPC_BATCH 64
/* The sequence number of the frame that ends a round trip benchmark. */
#define CHAN_STOP 0xffffffffu

#define DBUS_NAME "org.qipc.Bench"
#define DBUS_PATH "/org/qipc/Bench"
#define DBUS_IFACE "org.qipc.Bench"

static const int fanouts[] = { 1, 4, CHAN_MAX_RECEIVERS };

/* ---- Both sides --------------------------------------------------- */

/* What the parent hands a child on its command line:
 *   child ROLE IMPL CTL ADDRESS COUNT ARG FDS
 * CTL is the control socket; FDS a comma-separated list of socket pair
 * ends (raw), or "-". */
typedef struct
{
  const char *role;
  const char *impl;
  int ctl;
  const char *address;
  long count;
  long arg;
  int fds[CHAN_MAX_RECEIVERS];
  int n_fds;
} ChildArgs;

static void
write_all (int         fd,
           const char *data,
           size_t      size)
{
  while (size > 0)
    {
      ssize_t n = write (fd, data, size);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        bench_die ("write: %s", strerror (errno));
      data += n;
      size -= (size_t) n;
    }
}

/* Reads one line (without its '\n') from @fd; FALSE at end of file. */
static gboolean
read_line (int     fd,
           char   *line,
           size_t  size)
{
  size_t len = 0;

  for (;;)
    {
      char c;
      ssize_t n = read (fd, &c, 1);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        bench_die ("read: %s", strerror (errno));
      if (n == 0)
        return FALSE;
      if (c == '\n')
        break;
      if (len + 1 < size)
        line[len++] = c;
    }
  line[len] = '\0';
  return TRUE;
}

static void G_GNUC_PRINTF (2, 3)
ctl_printf (int         fd,
            const char *fmt,
            ...)
{
  va_list ap;
  char *line;

  va_start (ap, fmt);
  line = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  write_all (fd, line, strlen (line));
  g_free (line);
}

/* The value of "KEY=value" in a result line. */
static double
result_get (const char *line,
            const char *key)
{
  g_autofree char *needle = g_strdup_printf (" %s=", key);
  const char *p = strstr (line, needle);

  if (p == NULL)
    bench_die ("no %s in result \"%s\"", key, line);
  return g_ascii_strtod (p + strlen (needle), NULL);
}

/* ---- Child: frames ------------------------------------------------ */

static gboolean
frame_is_stop (const guint8 *frame)
{
  return bench_get_u32le (frame + BENCH_FRAME_HEADER) == CHAN_STOP;
}

/* The bytes of an "ay" (or a variant holding one) as a frame: copied to
 * @frame, which holds BENCH_FRAME_SIZE bytes. One type check and a
 * copy, as a receiver that cares for speed writes it:
 * g_variant_get_fixed_array() would check the type again. */
static void
frame_from_variant (GVariant *value,
                    guint8   *frame)
{
  g_autoptr(GVariant) inner = NULL;

  if (value == NULL)
    bench_die ("a message without data");
  if (!g_variant_is_of_type (value, G_VARIANT_TYPE_BYTESTRING))
    {
      if (g_variant_is_of_type (value, G_VARIANT_TYPE_VARIANT))
        value = inner = g_variant_get_variant (value);
      if (!g_variant_is_of_type (value, G_VARIANT_TYPE_BYTESTRING))
        bench_die ("a message of type %s", g_variant_get_type_string (value));
    }
  if (g_variant_get_size (value) != BENCH_FRAME_SIZE)
    bench_die ("a message of %" G_GSIZE_FORMAT " bytes", g_variant_get_size (value));
  memcpy (frame, g_variant_get_data (value), BENCH_FRAME_SIZE);
}

/* A new "ay" holding a copy of @frame. From a GBytes, as a sender that
 * cares for speed makes it: g_variant_new_fixed_array() builds and looks
 * up the array type twice, which costs twice the rest of this. */
static GVariant *
frame_to_variant (const guint8 *frame)
{
  g_autoptr(GBytes) bytes = g_bytes_new (frame, BENCH_FRAME_SIZE);

  return g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING, bytes, TRUE);
}

/* A receiver's count: messages expected and received, and the time the
 * last one came. */
typedef struct
{
  long count;
  long got;
  guint32 next;
  double end_ns;
  double cpu_start_ns;
  GMainLoop *loop;
} RecvCount;

static void
recv_count_init (RecvCount *rc,
                 long       count)
{
  memset (rc, 0, sizeof *rc);
  rc->count = count;
}

/* Checks a received frame; TRUE when it was the last one. */
static gboolean
recv_count_frame (RecvCount    *rc,
                  const guint8 *frame)
{
  bench_frame_length (frame);
  bench_frame_check (frame, &rc->next);
  if (++rc->got < rc->count)
    return FALSE;
  rc->end_ns = bench_now_ns ();
  return TRUE;
}

static void
recv_ready (const ChildArgs *a,
            RecvCount       *rc)
{
  ctl_printf (a->ctl, "ready\n");
  rc->cpu_start_ns = bench_cpu_ns ();
}

static void
recv_report (const ChildArgs *a,
             RecvCount       *rc)
{
  ctl_printf (a->ctl, "result end=%.0f cpu=%.0f\n",
              rc->end_ns, bench_cpu_ns () - rc->cpu_start_ns);
}

/* The sender's side: "ready", wait for "go", then send. */
static void
send_wait_go (const ChildArgs *a)
{
  char line[64];

  ctl_printf (a->ctl, "ready\n");
  if (!read_line (a->ctl, line, sizeof line) || strcmp (line, "go") != 0)
    bench_die ("%s sender: no go", a->impl);
}

static void
send_report (const ChildArgs *a,
             double           start_ns,
             double           cpu_start_ns)
{
  ctl_printf (a->ctl, "result start=%.0f cpu=%.0f\n", start_ns, bench_cpu_ns () - cpu_start_ns);
}

/* A round trip benchmark's measuring side: one round trip per call of
 * @trip, which sends @frame and returns once the answer (checked) came. */
typedef void (*TripFunc) (gpointer      ctx,
                          const guint8 *frame);

static int
compare_doubles (const void *a,
                 const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return x < y ? -1 : x > y;
}

static void
ping_run (const ChildArgs *a,
          TripFunc         trip,
          gpointer         ctx)
{
  long warmup = a->arg, trips = a->count, i;
  double *times = g_new (double, trips);
  double sum = 0;
  guint8 frame[BENCH_FRAME_SIZE];

  send_wait_go (a);
  for (i = 0; i < warmup + trips; i++)
    {
      double start;

      bench_frame_fill (frame, (guint32) i);
      start = bench_now_ns ();
      trip (ctx, frame);
      if (i >= warmup)
        times[i - warmup] = bench_now_ns () - start;
    }
  for (i = 0; i < trips; i++)
    sum += times[i];
  qsort (times, (size_t) trips, sizeof *times, compare_doubles);
  ctl_printf (a->ctl, "result median=%.1f p99=%.1f mean=%.1f\n",
              times[trips / 2], times[(trips * 99) / 100], sum / (double) trips);
  g_free (times);
}

/* Checks that @reply is the answer to @sent. */
static void
ping_check (const guint8 *sent,
            const guint8 *reply)
{
  if (memcmp (sent, reply, BENCH_FRAME_SIZE) != 0)
    bench_die ("round trip: the answer to frame %u is frame %u",
               (unsigned) bench_get_u32le (sent + BENCH_FRAME_HEADER),
               (unsigned) bench_get_u32le (reply + BENCH_FRAME_HEADER));
}

static gboolean
on_ctl_closed (int          fd,
               GIOCondition condition,
               gpointer     user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_CONTINUE;
}

/* Reports "ready" and runs @loop until the parent closes the control
 * socket (the broker and the idle clients). */
static void
run_until_ctl_closed (const ChildArgs *a,
                      GMainLoop       *loop)
{
  guint id = g_unix_fd_add (a->ctl, G_IO_IN | G_IO_HUP | G_IO_ERR, on_ctl_closed, loop);

  ctl_printf (a->ctl, "ready\n");
  g_main_loop_run (loop);
  g_source_remove (id);
}

#ifdef QIPC_BENCH_HAVE_CHANNELS

/* ---- Child: qipc ---------------------------------------------------- */

/* How many bytes the broker may hold for one receiver, and a bus for
 * the broker: as much as dbus-daemon's session limits, so that no
 * implementation drops (or refuses) a message of a fan-out whose sender
 * runs ahead. */
#define CHAN_QIPC_MAX_QUEUED (1024u * 1024u * 1024u)

static void
qipc_child_broker (const ChildArgs *a)
{
  g_autoptr(QipcBroker) broker = qipc_broker_new ();
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(GError) error = NULL;

  qipc_broker_set_max_queued_bytes (broker, CHAN_QIPC_MAX_QUEUED);
  if (!qipc_broker_listen (broker, a->address, &error))
    bench_die ("broker: listen %s: %s", a->address, error->message);
  run_until_ctl_closed (a, loop);
  qipc_broker_close (broker);
}

static QipcBus *
qipc_child_bus (const ChildArgs *a)
{
  g_autoptr(GError) error = NULL;
  QipcBus *bus = qipc_bus_new_for_address (a->address, &error);

  if (bus == NULL)
    bench_die ("qipc: connecting to %s: %s", a->address, error->message);
  return bus;
}

static QipcChannel *
qipc_child_channel (QipcBus    *bus,
                    const char *name)
{
  g_autoptr(GError) error = NULL;
  QipcChannel *channel = qipc_channel_new_for_bus (bus, name, &error);

  if (channel == NULL)
    bench_die ("qipc: channel %s: %s", name, error->message);
  return channel;
}

static void
qipc_child_flush (QipcBus *bus)
{
  g_autoptr(GError) error = NULL;

  if (!qipc_channel_flush_for_bus (bus, &error))
    bench_die ("qipc: flush: %s", error->message);
}

static void
qipc_child_send (QipcBus      *bus,
                 const char   *channel,
                 const char   *message,
                 const guint8 *frame)
{
  g_autoptr(GError) error = NULL;

  if (!qipc_channel_send_for_bus (bus, channel, message, frame_to_variant (frame), &error))
    bench_die ("qipc: send on %s: %s", channel, error->message);
}

static void
qipc_recv_received (QipcChannel *channel,
                    const char  *message,
                    GVariant    *data,
                    RecvCount   *rc)
{
  guint8 frame[BENCH_FRAME_SIZE];

  frame_from_variant (data, frame);
  if (recv_count_frame (rc, frame))
    g_main_loop_quit (rc->loop);
}

static void
qipc_child_recv (const ChildArgs *a)
{
  g_autoptr(QipcBus) bus = qipc_child_bus (a);
  g_autoptr(QipcChannel) channel = qipc_child_channel (bus, "bench/data");
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  RecvCount rc;

  recv_count_init (&rc, a->count);
  rc.loop = loop;
  g_signal_connect (channel, "received", G_CALLBACK (qipc_recv_received), &rc);
  /* The broker has the subscription once it answered the flush. */
  qipc_child_flush (bus);
  recv_ready (a, &rc);
  g_main_loop_run (loop);
  if (qipc_bus_get_messages_lost (bus) != 0)
    bench_die ("qipc receiver: %" G_GUINT64_FORMAT " messages lost",
               qipc_bus_get_messages_lost (bus));
  recv_report (a, &rc);
}

/* Queues every message, letting the main loop run (which writes what is
 * queued) once per CHAN_QIPC_BATCH messages, as a program sending from
 * its main loop does; then waits until the broker has passed everything
 * on. */
static void
qipc_child_send_all (const ChildArgs *a)
{
  g_autoptr(QipcBus) bus = qipc_child_bus (a);
  guint8 frame[BENCH_FRAME_SIZE];
  double start, cpu_start;
  long i;

  qipc_bus_set_max_queued (bus, CHAN_QIPC_MAX_QUEUED);
  send_wait_go (a);
  cpu_start = bench_cpu_ns ();
  start = bench_now_ns ();
  for (i = 0; i < a->count; i++)
    {
      bench_frame_fill (frame, (guint32) i);
      qipc_child_send (bus, "bench/data", "msg", frame);
      if ((i + 1) % CHAN_QIPC_BATCH == 0)
        g_main_context_iteration (NULL, FALSE);
    }
  qipc_child_flush (bus);
  send_report (a, start, cpu_start);
}

typedef struct
{
  QipcBus *bus;
  gboolean answered;
  guint8 reply[BENCH_FRAME_SIZE];
  GMainLoop *loop;
} QipcTrip;

static void
qipc_ping_received (QipcChannel *channel,
                    const char  *message,
                    GVariant    *data,
                    QipcTrip    *t)
{
  frame_from_variant (data, t->reply);
  t->answered = TRUE;
}

static void
qipc_trip (gpointer      ctx,
           const guint8 *frame)
{
  QipcTrip *t = ctx;

  t->answered = FALSE;
  qipc_child_send (t->bus, "bench/ping", "ping", frame);
  while (!t->answered)
    g_main_context_iteration (NULL, TRUE);
  ping_check (frame, t->reply);
}

static void
qipc_child_ping (const ChildArgs *a)
{
  g_autoptr(QipcBus) bus = qipc_child_bus (a);
  g_autoptr(QipcChannel) channel = qipc_child_channel (bus, "bench/pong");
  QipcTrip t = { bus, FALSE, { 0 }, NULL };
  guint8 stop[BENCH_FRAME_SIZE];

  g_signal_connect (channel, "received", G_CALLBACK (qipc_ping_received), &t);
  qipc_child_flush (bus);
  ping_run (a, qipc_trip, &t);
  bench_frame_fill (stop, CHAN_STOP);
  qipc_child_send (bus, "bench/ping", "stop", stop);
  qipc_child_flush (bus);
}

static void
qipc_echo_received (QipcChannel *channel,
                    const char  *message,
                    GVariant    *data,
                    QipcTrip    *t)
{
  guint8 frame[BENCH_FRAME_SIZE];

  frame_from_variant (data, frame);
  if (frame_is_stop (frame))
    {
      g_main_loop_quit (t->loop);
      return;
    }
  qipc_child_send (t->bus, "bench/pong", "pong", frame);
}

static void
qipc_child_echo (const ChildArgs *a)
{
  g_autoptr(QipcBus) bus = qipc_child_bus (a);
  g_autoptr(QipcChannel) channel = qipc_child_channel (bus, "bench/ping");
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  QipcTrip t = { bus, FALSE, { 0 }, loop };

  g_signal_connect (channel, "received", G_CALLBACK (qipc_echo_received), &t);
  qipc_child_flush (bus);
  ctl_printf (a->ctl, "ready\n");
  g_main_loop_run (loop);
}

/* a->count connections, each with a channel of its own, then nothing.
 * Each connection is flushed (a round trip to the broker) before the
 * next one opens, as a GDBus connection waits for the answer to its
 * Hello, so that both peers' clients come up the same way. */
static void
qipc_child_idle (const ChildArgs *a)
{
  g_autoptr(GPtrArray) objects = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  long i;

  for (i = 0; i < a->count; i++)
    {
      g_autofree char *name = g_strdup_printf ("bench/idle/%d/%ld", (int) getpid (), i);
      QipcBus *bus = qipc_child_bus (a);

      g_ptr_array_add (objects, qipc_child_channel (bus, name));
      g_ptr_array_add (objects, bus);
      qipc_child_flush (bus);
    }
  run_until_ctl_closed (a, loop);
}

#endif /* QIPC_BENCH_HAVE_CHANNELS */

/* ---- Child: GDBus --------------------------------------------------- */

static GDBusConnection *
gdbus_child_connect (const ChildArgs *a)
{
  g_autoptr(GError) error = NULL;
  GDBusConnection *conn;

  conn = g_dbus_connection_new_for_address_sync (a->address,
                                                 G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                 G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                 NULL, NULL, &error);
  if (conn == NULL)
    bench_die ("gdbus: connecting to %s: %s", a->address, error->message);
  return conn;
}

/* A round trip to the bus: everything sent before (AddMatch, RequestName)
 * has been handled once it returns. */
static void
gdbus_sync (GDBusConnection *conn)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  reply = g_dbus_connection_call_sync (conn, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "GetId", NULL, G_VARIANT_TYPE ("(s)"),
                                       G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  if (reply == NULL)
    bench_die ("gdbus: GetId: %s", error->message);
}

static guint
gdbus_subscribe (GDBusConnection     *conn,
                 const char          *member,
                 const char          *path,
                 GDBusSignalCallback  callback,
                 gpointer             user_data)
{
  return g_dbus_connection_signal_subscribe (conn, NULL, DBUS_IFACE, member, path, NULL,
                                             G_DBUS_SIGNAL_FLAGS_NONE, callback, user_data, NULL);
}

static void
gdbus_emit (GDBusConnection *conn,
            const char      *member,
            const guint8    *frame)
{
  g_autoptr(GError) error = NULL;

  if (!g_dbus_connection_emit_signal (conn, NULL, DBUS_PATH, DBUS_IFACE, member,
                                      g_variant_new ("(@ay)", frame_to_variant (frame)), &error))
    bench_die ("gdbus: emitting %s: %s", member, error->message);
}

static void
gdbus_flush (GDBusConnection *conn)
{
  g_autoptr(GError) error = NULL;

  if (!g_dbus_connection_flush_sync (conn, NULL, &error))
    bench_die ("gdbus: flush: %s", error->message);
}

/* The frame in a signal's or a call's "(ay)" parameters. */
static void
gdbus_frame (GVariant *parameters,
             guint8   *frame)
{
  g_autoptr(GVariant) bytes = NULL;

  if (!g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(ay)")))
    bench_die ("gdbus: parameters of type %s", g_variant_get_type_string (parameters));
  bytes = g_variant_get_child_value (parameters, 0);
  frame_from_variant (bytes, frame);
}

static void
gdbus_recv_signal (GDBusConnection *conn,
                   const char      *sender,
                   const char      *path,
                   const char      *iface,
                   const char      *member,
                   GVariant        *parameters,
                   gpointer         user_data)
{
  RecvCount *rc = user_data;
  guint8 frame[BENCH_FRAME_SIZE];

  gdbus_frame (parameters, frame);
  if (recv_count_frame (rc, frame))
    g_main_loop_quit (rc->loop);
}

static void
gdbus_child_recv (const ChildArgs *a)
{
  g_autoptr(GDBusConnection) conn = gdbus_child_connect (a);
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  RecvCount rc;
  guint id;

  recv_count_init (&rc, a->count);
  rc.loop = loop;
  id = gdbus_subscribe (conn, "Data", DBUS_PATH, gdbus_recv_signal, &rc);
  gdbus_sync (conn);
  recv_ready (a, &rc);
  g_main_loop_run (loop);
  g_dbus_connection_signal_unsubscribe (conn, id);
  recv_report (a, &rc);
}

static void
gdbus_child_send (const ChildArgs *a)
{
  g_autoptr(GDBusConnection) conn = gdbus_child_connect (a);
  guint8 frame[BENCH_FRAME_SIZE];
  double start, cpu_start;
  long i;

  send_wait_go (a);
  cpu_start = bench_cpu_ns ();
  start = bench_now_ns ();
  for (i = 0; i < a->count; i++)
    {
      bench_frame_fill (frame, (guint32) i);
      gdbus_emit (conn, "Data", frame);
    }
  gdbus_flush (conn);
  send_report (a, start, cpu_start);
}

typedef struct
{
  GDBusConnection *conn;
  gboolean answered;
  guint8 reply[BENCH_FRAME_SIZE];
  GMainLoop *loop;
} GDBusTrip;

static void
gdbus_ping_signal (GDBusConnection *conn,
                   const char      *sender,
                   const char      *path,
                   const char      *iface,
                   const char      *member,
                   GVariant        *parameters,
                   gpointer         user_data)
{
  GDBusTrip *t = user_data;

  gdbus_frame (parameters, t->reply);
  t->answered = TRUE;
}

static void
gdbus_signal_trip (gpointer      ctx,
                   const guint8 *frame)
{
  GDBusTrip *t = ctx;

  t->answered = FALSE;
  gdbus_emit (t->conn, "Ping", frame);
  while (!t->answered)
    g_main_context_iteration (NULL, TRUE);
  ping_check (frame, t->reply);
}

static void
gdbus_child_ping (const ChildArgs *a)
{
  g_autoptr(GDBusConnection) conn = gdbus_child_connect (a);
  GDBusTrip t = { conn, FALSE, { 0 }, NULL };
  guint8 stop[BENCH_FRAME_SIZE];
  guint id;

  id = gdbus_subscribe (conn, "Pong", DBUS_PATH, gdbus_ping_signal, &t);
  gdbus_sync (conn);
  ping_run (a, gdbus_signal_trip, &t);
  bench_frame_fill (stop, CHAN_STOP);
  gdbus_emit (conn, "Ping", stop);
  gdbus_flush (conn);
  g_dbus_connection_signal_unsubscribe (conn, id);
}

static void
gdbus_echo_signal (GDBusConnection *conn,
                   const char      *sender,
                   const char      *path,
                   const char      *iface,
                   const char      *member,
                   GVariant        *parameters,
                   gpointer         user_data)
{
  GDBusTrip *t = user_data;
  g_autoptr(GError) error = NULL;
  guint8 frame[BENCH_FRAME_SIZE];

  gdbus_frame (parameters, frame);
  if (frame_is_stop (frame))
    {
      g_main_loop_quit (t->loop);
      return;
    }
  if (!g_dbus_connection_emit_signal (conn, NULL, DBUS_PATH, DBUS_IFACE, "Pong", parameters, &error))
    bench_die ("gdbus echo: %s", error->message);
}

static void
gdbus_child_echo (const ChildArgs *a)
{
  g_autoptr(GDBusConnection) conn = gdbus_child_connect (a);
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  GDBusTrip t = { conn, FALSE, { 0 }, loop };
  guint id;

  id = gdbus_subscribe (conn, "Ping", DBUS_PATH, gdbus_echo_signal, &t);
  gdbus_sync (conn);
  ctl_printf (a->ctl, "ready\n");
  g_main_loop_run (loop);
  g_dbus_connection_signal_unsubscribe (conn, id);
}

/* The method call: Echo(ay) -> (ay) on DBUS_NAME. */
static const char method_xml[] =
  "<node><interface name='" DBUS_IFACE "'>"
  "<method name='Echo'><arg type='ay' direction='in'/><arg type='ay' direction='out'/></method>"
  "</interface></node>";

static void
gdbus_method_trip (gpointer      ctx,
                   const guint8 *frame)
{
  GDBusTrip *t = ctx;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  reply = g_dbus_connection_call_sync (t->conn, DBUS_NAME, DBUS_PATH, DBUS_IFACE, "Echo",
                                       g_variant_new ("(@ay)", frame_to_variant (frame)),
                                       G_VARIANT_TYPE ("(ay)"), G_DBUS_CALL_FLAGS_NONE, -1,
                                       NULL, &error);
  if (reply == NULL)
    bench_die ("gdbus: Echo: %s", error->message);
  gdbus_frame (reply, t->reply);
  if (!frame_is_stop (frame))
    ping_check (frame, t->reply);
}

static void
gdbus_method_child_ping (const ChildArgs *a)
{
  g_autoptr(GDBusConnection) conn = gdbus_child_connect (a);
  GDBusTrip t = { conn, FALSE, { 0 }, NULL };
  guint8 stop[BENCH_FRAME_SIZE];

  ping_run (a, gdbus_method_trip, &t);
  bench_frame_fill (stop, CHAN_STOP);
  gdbus_method_trip (&t, stop);
}

static void
gdbus_method_call (GDBusConnection       *conn,
                   const char            *sender,
                   const char            *path,
                   const char            *iface,
                   const char            *method,
                   GVariant              *parameters,
                   GDBusMethodInvocation *invocation,
                   gpointer               user_data)
{
  GDBusTrip *t = user_data;
  guint8 frame[BENCH_FRAME_SIZE];

  gdbus_frame (parameters, frame);
  g_dbus_method_invocation_return_value (invocation, parameters);
  if (frame_is_stop (frame))
    g_main_loop_quit (t->loop);
}

static const GDBusInterfaceVTable method_vtable = { gdbus_method_call, NULL, NULL, { 0 } };

static void
gdbus_own_name (GDBusConnection *conn)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  guint32 result;

  reply = g_dbus_connection_call_sync (conn, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "RequestName",
                                       g_variant_new ("(su)", DBUS_NAME, 4 /* DO_NOT_QUEUE */),
                                       G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NONE, -1,
                                       NULL, &error);
  if (reply == NULL)
    bench_die ("gdbus: RequestName: %s", error->message);
  g_variant_get (reply, "(u)", &result);
  if (result != 1 /* PRIMARY_OWNER */)
    bench_die ("gdbus: %s is taken (%u)", DBUS_NAME, result);
}

static void
gdbus_method_child_echo (const ChildArgs *a)
{
  g_autoptr(GDBusConnection) conn = gdbus_child_connect (a);
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(GDBusNodeInfo) info = NULL;
  g_autoptr(GError) error = NULL;
  GDBusTrip t = { conn, FALSE, { 0 }, loop };
  guint id;

  info = g_dbus_node_info_new_for_xml (method_xml, &error);
  if (info == NULL)
    bench_die ("gdbus: %s", error->message);
  id = g_dbus_connection_register_object (conn, DBUS_PATH, info->interfaces[0], &method_vtable,
                                          &t, NULL, &error);
  if (id == 0)
    bench_die ("gdbus: registering %s: %s", DBUS_PATH, error->message);
  gdbus_own_name (conn);
  ctl_printf (a->ctl, "ready\n");
  g_main_loop_run (loop);
  gdbus_flush (conn);
  g_dbus_connection_unregister_object (conn, id);
}

static void
gdbus_idle_signal (GDBusConnection *conn,
                   const char      *sender,
                   const char      *path,
                   const char      *iface,
                   const char      *member,
                   GVariant        *parameters,
                   gpointer         user_data)
{
}

/* a->count connections, each with one match rule of its own. */
static void
gdbus_child_idle (const ChildArgs *a)
{
  g_autoptr(GPtrArray) conns = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  long i;

  for (i = 0; i < a->count; i++)
    {
      g_autofree char *path = g_strdup_printf (DBUS_PATH "/idle/p%d/c%ld", (int) getpid (), i);
      GDBusConnection *conn = gdbus_child_connect (a);

      gdbus_subscribe (conn, "Idle", path, gdbus_idle_signal, NULL);
      g_ptr_array_add (conns, conn);
    }
  for (i = 0; i < a->count; i++)
    gdbus_sync (g_ptr_array_index (conns, i));
  run_until_ctl_closed (a, loop);
}

/* ---- Child: ZeroMQ -------------------------------------------------- */

static void *
zmq_child_socket (void *ctx,
                  int   type)
{
  void *socket = zmq_socket (ctx, type);
  int zero = 0, linger = -1, ivl = 10;

  if (socket == NULL)
    bench_die ("zmq_socket: %s", zmq_strerror (zmq_errno ()));
  /* No high-water mark: PUB drops what goes beyond it, and the other
   * implementations drop nothing either. */
  if (zmq_setsockopt (socket, ZMQ_SNDHWM, &zero, sizeof zero) < 0 ||
      zmq_setsockopt (socket, ZMQ_RCVHWM, &zero, sizeof zero) < 0 ||
      zmq_setsockopt (socket, ZMQ_LINGER, &linger, sizeof linger) < 0 ||
      zmq_setsockopt (socket, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl) < 0)
    bench_die ("zmq_setsockopt: %s", zmq_strerror (zmq_errno ()));
  return socket;
}

/* A publisher bound to @endpoint. It is an XPUB, which sends exactly as
 * PUB does and also shows each subscription, so that the benchmark knows
 * when every subscriber is in (a PUB drops what it sends before). */
static void *
zmq_child_pub (void       *ctx,
               const char *endpoint)
{
  void *pub = zmq_child_socket (ctx, ZMQ_XPUB);
  int one = 1;

  if (zmq_setsockopt (pub, ZMQ_XPUB_VERBOSE, &one, sizeof one) < 0)
    bench_die ("zmq_setsockopt: %s", zmq_strerror (zmq_errno ()));
  if (zmq_bind (pub, endpoint) < 0)
    bench_die ("zmq_bind %s: %s", endpoint, zmq_strerror (zmq_errno ()));
  return pub;
}

static void *
zmq_child_sub (void       *ctx,
               const char *endpoint)
{
  void *sub = zmq_child_socket (ctx, ZMQ_SUB);
  int linger = 0;

  /* Closing must not wait to send the subscription again to a publisher
   * that is gone. */
  if (zmq_setsockopt (sub, ZMQ_LINGER, &linger, sizeof linger) < 0 ||
      zmq_setsockopt (sub, ZMQ_SUBSCRIBE, "", 0) < 0)
    bench_die ("zmq_setsockopt: %s", zmq_strerror (zmq_errno ()));
  if (zmq_connect (sub, endpoint) < 0)
    bench_die ("zmq_connect %s: %s", endpoint, zmq_strerror (zmq_errno ()));
  return sub;
}

/* Waits until @n subscribers have subscribed to @pub. */
static void
zmq_wait_subscribers (void *pub,
                      long  n)
{
  long i;

  for (i = 0; i < n; i++)
    {
      guint8 sub[16];
      int size = zmq_recv (pub, sub, sizeof sub, 0);

      if (size < 0)
        bench_die ("zmq_recv (subscription): %s", zmq_strerror (zmq_errno ()));
      if (size < 1 || sub[0] != 1)
        i--;
    }
}

static void
zmq_send_frame (void         *pub,
                const guint8 *frame)
{
  while (zmq_send (pub, frame, BENCH_FRAME_SIZE, 0) < 0)
    if (zmq_errno () != EINTR)
      bench_die ("zmq_send: %s", zmq_strerror (zmq_errno ()));
}

static void
zmq_recv_frame (void   *sub,
                guint8 *frame)
{
  int size;

  while ((size = zmq_recv (sub, frame, BENCH_FRAME_SIZE, 0)) < 0)
    if (zmq_errno () != EINTR)
      bench_die ("zmq_recv: %s", zmq_strerror (zmq_errno ()));
  if (size != BENCH_FRAME_SIZE)
    bench_die ("zmq: a message of %d bytes", size);
}

static void
zmq_close_all (void *ctx,
               void *a,
               void *b)
{
  if (a != NULL)
    zmq_close (a);
  if (b != NULL)
    zmq_close (b);
  zmq_ctx_term (ctx);
}

static void
zmq_child_recv (const ChildArgs *a)
{
  void *ctx = zmq_ctx_new ();
  void *sub = zmq_child_sub (ctx, a->address);
  guint8 frame[BENCH_FRAME_SIZE];
  RecvCount rc;

  recv_count_init (&rc, a->count);
  recv_ready (a, &rc);
  do
    zmq_recv_frame (sub, frame);
  while (!recv_count_frame (&rc, frame));
  recv_report (a, &rc);
  zmq_close_all (ctx, sub, NULL);
}

static void
zmq_child_send (const ChildArgs *a)
{
  void *ctx = zmq_ctx_new ();
  void *pub = zmq_child_pub (ctx, a->address);
  guint8 frame[BENCH_FRAME_SIZE];
  double start, cpu_start;
  long i;

  zmq_wait_subscribers (pub, a->arg);
  send_wait_go (a);
  cpu_start = bench_cpu_ns ();
  start = bench_now_ns ();
  for (i = 0; i < a->count; i++)
    {
      bench_frame_fill (frame, (guint32) i);
      zmq_send_frame (pub, frame);
    }
  /* Closing waits (linger -1) until everything is handed to the kernel. */
  zmq_close_all (ctx, pub, NULL);
  send_report (a, start, cpu_start);
}

/* Round trip: each side publishes on ADDRESS-ping or ADDRESS-pong and
 * subscribes to the other. */
typedef struct
{
  void *ctx;
  void *pub;
  void *sub;
  guint8 reply[BENCH_FRAME_SIZE];
} ZmqTrip;

static void
zmq_trip_open (ZmqTrip    *t,
               const char *address,
               gboolean    ping)
{
  g_autofree char *ping_ep = g_strdup_printf ("%s-ping", address);
  g_autofree char *pong_ep = g_strdup_printf ("%s-pong", address);

  t->ctx = zmq_ctx_new ();
  t->pub = zmq_child_pub (t->ctx, ping ? ping_ep : pong_ep);
  t->sub = zmq_child_sub (t->ctx, ping ? pong_ep : ping_ep);
  zmq_wait_subscribers (t->pub, 1);
}

static void
zmq_trip (gpointer      ctx,
          const guint8 *frame)
{
  ZmqTrip *t = ctx;

  zmq_send_frame (t->pub, frame);
  zmq_recv_frame (t->sub, t->reply);
  ping_check (frame, t->reply);
}

static void
zmq_child_ping (const ChildArgs *a)
{
  ZmqTrip t;
  guint8 stop[BENCH_FRAME_SIZE];

  zmq_trip_open (&t, a->address, TRUE);
  ping_run (a, zmq_trip, &t);
  bench_frame_fill (stop, CHAN_STOP);
  zmq_send_frame (t.pub, stop);
  zmq_close_all (t.ctx, t.pub, t.sub);
}

static void
zmq_child_echo (const ChildArgs *a)
{
  ZmqTrip t;
  guint8 frame[BENCH_FRAME_SIZE];

  zmq_trip_open (&t, a->address, FALSE);
  ctl_printf (a->ctl, "ready\n");
  for (;;)
    {
      zmq_recv_frame (t.sub, frame);
      if (frame_is_stop (frame))
        break;
      zmq_send_frame (t.pub, frame);
    }
  zmq_close_all (t.ctx, t.pub, t.sub);
}

/* ---- Child: raw socket pairs ---------------------------------------- */

/* One receiving end, blocking reads into a buffer. */
typedef struct
{
  int fd;
  size_t len;
  guint8 buf[64 * 1024];
} RawIn;

static void
raw_write_frame (int           fd,
                 const guint8 *frame)
{
  write_all (fd, (const char *) frame, BENCH_FRAME_SIZE);
}

/* Reads until at least one whole frame is buffered. */
static void
raw_fill (RawIn *in)
{
  while (bench_frame_whole (in->buf, in->len) == 0)
    {
      ssize_t n = read (in->fd, in->buf + in->len, sizeof in->buf - in->len);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        bench_die ("raw read: %s", n == 0 ? "end of stream" : strerror (errno));
      in->len += (size_t) n;
    }
}

static void
raw_child_recv (const ChildArgs *a)
{
  RawIn *in = g_new0 (RawIn, 1);
  RecvCount rc;
  gboolean done = FALSE;

  in->fd = a->fds[0];
  recv_count_init (&rc, a->count);
  recv_ready (a, &rc);
  while (!done)
    {
      size_t used = 0, size;

      raw_fill (in);
      while (!done && (size = bench_frame_whole (in->buf + used, in->len - used)) > 0)
        {
          done = recv_count_frame (&rc, in->buf + used);
          used += size;
        }
      memmove (in->buf, in->buf + used, in->len - used);
      in->len -= used;
    }
  recv_report (a, &rc);
  g_free (in);
}

/* Writes the messages CHAN_QIPC_BATCH at a time (as the qipc sender
 * hands that many to one main loop iteration, which sends them with one
 * write) to every receiver's socket pair in turn. */
static void
raw_child_send (const ChildArgs *a)
{
  guint8 batch[CHAN_QIPC_BATCH * BENCH_FRAME_SIZE];
  double start, cpu_start;
  long i;
  int r;

  send_wait_go (a);
  cpu_start = bench_cpu_ns ();
  start = bench_now_ns ();
  for (i = 0; i < a->count; )
    {
      size_t size = 0;

      for (; i < a->count && size < sizeof batch; i++, size += BENCH_FRAME_SIZE)
        bench_frame_fill (batch + size, (guint32) i);
      for (r = 0; r < a->n_fds; r++)
        write_all (a->fds[r], (const char *) batch, size);
    }
  send_report (a, start, cpu_start);
}

/* Round trip: fds[0] sends, fds[1] receives (two socket pairs, one per
 * direction, as two channels). */
typedef struct
{
  int out;
  RawIn in;
} RawTrip;

static void
raw_take_frame (RawIn  *in,
                guint8 *frame)
{
  raw_fill (in);
  memcpy (frame, in->buf, BENCH_FRAME_SIZE);
  memmove (in->buf, in->buf + BENCH_FRAME_SIZE, in->len - BENCH_FRAME_SIZE);
  in->len -= BENCH_FRAME_SIZE;
}

static void
raw_trip (gpointer      ctx,
          const guint8 *frame)
{
  RawTrip *t = ctx;
  guint8 reply[BENCH_FRAME_SIZE];

  raw_write_frame (t->out, frame);
  raw_take_frame (&t->in, reply);
  ping_check (frame, reply);
}

static void
raw_child_ping (const ChildArgs *a)
{
  RawTrip *t = g_new0 (RawTrip, 1);
  guint8 stop[BENCH_FRAME_SIZE];

  t->out = a->fds[0];
  t->in.fd = a->fds[1];
  ping_run (a, raw_trip, t);
  bench_frame_fill (stop, CHAN_STOP);
  raw_write_frame (t->out, stop);
  g_free (t);
}

static void
raw_child_echo (const ChildArgs *a)
{
  RawTrip *t = g_new0 (RawTrip, 1);
  guint8 frame[BENCH_FRAME_SIZE];

  t->out = a->fds[0];
  t->in.fd = a->fds[1];
  ctl_printf (a->ctl, "ready\n");
  for (;;)
    {
      raw_take_frame (&t->in, frame);
      if (frame_is_stop (frame))
        break;
      raw_write_frame (t->out, frame);
    }
  g_free (t);
}

/* Between the two sides of a round trip through a relay: fds are in 1,
 * out 1, in 2, out 2. Forwards what comes on each input to its output,
 * with a poll() before each read, until both inputs end: the least a
 * broker does for each message. */
static void
raw_child_relay (const ChildArgs *a)
{
  struct pollfd pfds[2] = { { a->fds[0], POLLIN, 0 }, { a->fds[2], POLLIN, 0 } };
  char *buf = g_malloc (64 * 1024);
  int open_inputs = 2, i;

  ctl_printf (a->ctl, "ready\n");
  while (open_inputs > 0)
    {
      if (poll (pfds, 2, -1) < 0)
        {
          if (errno != EINTR)
            bench_die ("relay: poll: %s", strerror (errno));
          continue;
        }
      for (i = 0; i < 2; i++)
        {
          ssize_t n;

          if (pfds[i].fd < 0 || pfds[i].revents == 0)
            continue;
          n = read (pfds[i].fd, buf, 64 * 1024);
          if (n < 0 && errno == EINTR)
            continue;
          if (n <= 0)
            {
              pfds[i].fd = -1;
              open_inputs--;
              continue;
            }
          write_all (a->fds[2 * i + 1], buf, (size_t) n);
        }
    }
  g_free (buf);
}

/* ---- Child: dispatch ------------------------------------------------ */

typedef void (*ChildFunc) (const ChildArgs *a);

typedef struct
{
  const char *name;
  /* The rows' names in the tables. */
  const char *label;
  ChildFunc send;
  ChildFunc recv;
  ChildFunc ping;
  ChildFunc echo;
  ChildFunc idle;
  ChildFunc relay;
} ChanImpl;

static const ChanImpl impls[] = {
#ifdef QIPC_BENCH_HAVE_CHANNELS
  { "qipc", "qipc channels (QipcBroker)", qipc_child_send_all, qipc_child_recv,
    qipc_child_ping, qipc_child_echo, qipc_child_idle },
#endif
  { "gdbus", "GDBus signals (dbus-daemon)", gdbus_child_send, gdbus_child_recv,
    gdbus_child_ping, gdbus_child_echo, gdbus_child_idle },
  { "gdbus-method", "GDBus method call (dbus-daemon)", NULL, NULL,
    gdbus_method_child_ping, gdbus_method_child_echo, NULL },
  { "zeromq", "ZeroMQ PUB/SUB (ipc://)", zmq_child_send, zmq_child_recv,
    zmq_child_ping, zmq_child_echo, NULL },
  { "raw", "raw AF_UNIX socket pairs (limit)", raw_child_send, raw_child_recv,
    raw_child_ping, raw_child_echo, NULL },
  { "raw-relay", "raw AF_UNIX through a relay process", NULL, NULL,
    raw_child_ping, raw_child_echo, NULL, raw_child_relay },
};

static const ChanImpl *
impl_find (const char *name)
{
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (impls); i++)
    if (strcmp (impls[i].name, name) == 0)
      return &impls[i];
  return NULL;
}

static void
parse_fds (ChildArgs  *a,
           const char *list)
{
  g_auto(GStrv) parts = NULL;
  int i;

  if (strcmp (list, "-") == 0)
    return;
  parts = g_strsplit (list, ",", -1);
  for (i = 0; parts[i] != NULL && i < CHAN_MAX_RECEIVERS; i++)
    a->fds[a->n_fds++] = atoi (parts[i]);
}

/* child ROLE IMPL CTL ADDRESS COUNT ARG FDS */
static int
child_main (int    argc,
            char **argv)
{
  ChildArgs a = { 0 };
  const ChanImpl *impl;
  ChildFunc func = NULL;

  if (argc != 9)
    bench_die ("child: wrong arguments");
  a.role = argv[2];
  a.impl = argv[3];
  a.ctl = atoi (argv[4]);
  a.address = argv[5];
  a.count = atol (argv[6]);
  a.arg = atol (argv[7]);
  parse_fds (&a, argv[8]);

  /* The broker and the idle clients live as long as the parent wants
   * them (and die with it); the others have a watchdog. */
#ifdef QIPC_BENCH_HAVE_CHANNELS
  if (strcmp (a.role, "broker") == 0)
    {
      qipc_child_broker (&a);
      return 0;
    }
#endif
  if (strcmp (a.role, "idle") != 0)
    alarm (BENCH_WATCHDOG_S);
  impl = impl_find (a.impl);
  if (impl == NULL)
    bench_die ("child: no implementation %s", a.impl);
  if (strcmp (a.role, "send") == 0)
    func = impl->send;
  else if (strcmp (a.role, "recv") == 0)
    func = impl->recv;
  else if (strcmp (a.role, "ping") == 0)
    func = impl->ping;
  else if (strcmp (a.role, "echo") == 0)
    func = impl->echo;
  else if (strcmp (a.role, "idle") == 0)
    func = impl->idle;
  else if (strcmp (a.role, "relay") == 0)
    func = impl->relay;
  if (func == NULL)
    bench_die ("child: %s has no role %s", a.impl, a.role);
  func (&a);
  return 0;
}

/* ---- Parent: children ----------------------------------------------- */

typedef struct
{
  pid_t pid;
  int ctl;
  char name[64];
} Child;

static char exe_path[4096];
static char *tmp_dir;
static pid_t dbus_pid;

static void
child_exec (const char *role,
            const char *impl,
            int         ctl,
            const char *address,
            long        count,
            long        arg,
            const int  *fds,
            int         n_fds)
{
  GString *fd_list = g_string_new (NULL);
  char ctl_arg[16], count_arg[32], arg_arg[32];
  int i;

  /* Whatever happens to the parent, no child outlives it. */
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  for (i = 0; i < n_fds; i++)
    {
      fcntl (fds[i], F_SETFD, 0);
      g_string_append_printf (fd_list, "%s%d", i ? "," : "", fds[i]);
    }
  fcntl (ctl, F_SETFD, 0);
  snprintf (ctl_arg, sizeof ctl_arg, "%d", ctl);
  snprintf (count_arg, sizeof count_arg, "%ld", count);
  snprintf (arg_arg, sizeof arg_arg, "%ld", arg);
  execl (exe_path, exe_path, "child", role, impl, ctl_arg, address ? address : "-",
         count_arg, arg_arg, n_fds ? fd_list->str : "-", (char *) NULL);
  fprintf (stderr, "bench: exec %s: %s\n", exe_path, strerror (errno));
  _exit (127);
}

/* Starts "child ROLE IMPL ...", handing it @fds (which stay open in the
 * parent; the caller closes them). */
static Child
child_spawn (const char *role,
             const char *impl,
             const char *address,
             long        count,
             long        arg,
             const int  *fds,
             int         n_fds)
{
  Child child = { 0 };
  int sv[2];

  snprintf (child.name, sizeof child.name, "%s %s", impl, role);
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    bench_die ("socketpair: %s", strerror (errno));
  fflush (stdout);
  fflush (stderr);
  child.pid = fork ();
  if (child.pid < 0)
    bench_die ("fork: %s", strerror (errno));
  if (child.pid == 0)
    child_exec (role, impl, sv[1], address, count, arg, fds, n_fds);
  close (sv[1]);
  child.ctl = sv[0];
  return child;
}

static void
child_expect (Child      *child,
              const char *what,
              char       *line,
              size_t      size)
{
  if (!read_line (child->ctl, line, size))
    bench_die ("%s: exited before \"%s\"", child->name, what);
  if (strncmp (line, what, strlen (what)) != 0)
    bench_die ("%s: \"%s\" instead of \"%s\"", child->name, line, what);
}

static void
child_wait_ready (Child *child)
{
  char line[64];

  child_expect (child, "ready", line, sizeof line);
}

static void
child_go (Child *child)
{
  ctl_printf (child->ctl, "go\n");
}

/* The child's result line, with a space in front so that result_get()
 * finds its first key too. */
static void
child_result (Child *child,
              char  *line,
              size_t size)
{
  line[0] = ' ';
  child_expect (child, "result", line + 1, size - 1);
}

/* Closes the control socket (which ends a broker or idle child) and
 * waits for the child, which must exit cleanly. */
static void
child_finish (Child *child)
{
  close (child->ctl);
  bench_wait_child (child->pid, child->name);
}

/* CPU time, in ns, of all threads of process @pid so far. */
static double
proc_cpu_ns (pid_t pid)
{
  g_autofree char *dir_path = g_strdup_printf ("/proc/%d/task", (int) pid);
  DIR *dir = opendir (dir_path);
  struct dirent *entry;
  double total = 0;

  if (dir == NULL)
    return 0;
  while ((entry = readdir (dir)) != NULL)
    {
      g_autofree char *path = NULL;
      g_autofree char *text = NULL;

      if (entry->d_name[0] == '.')
        continue;
      path = g_strdup_printf ("%s/%s/schedstat", dir_path, entry->d_name);
      if (g_file_get_contents (path, &text, NULL, NULL))
        total += g_ascii_strtod (text, NULL);
    }
  closedir (dir);
  return total;
}

/* ---- Parent: the environment of a phase ----------------------------- */

typedef struct
{
  const char *phase;
  char *qipc_address;
  Child broker;
  gboolean have_broker;
  char *dbus_address;
  pid_t dbus_pid;
} Env;

static int
remove_entry (const char        *path,
              const struct stat *st,
              int                flag,
              struct FTW        *ftw)
{
  remove (path);
  return 0;
}

static void
cleanup (void)
{
  if (dbus_pid > 0)
    {
      kill (dbus_pid, SIGTERM);
      dbus_pid = 0;
    }
  if (tmp_dir != NULL)
    nftw (tmp_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void
on_fatal_signal (int sig)
{
  if (dbus_pid > 0)
    kill (dbus_pid, SIGTERM);
  signal (sig, SIG_DFL);
  raise (sig);
}

/* A configuration of our own, with the session bus's policy and limits,
 * so that nothing installed on the machine changes the daemon. */
static char *
dbus_write_config (void)
{
  g_autoptr(GError) error = NULL;
  char *path = g_strdup_printf ("%s/dbus.conf", tmp_dir);
  g_autofree char *config = g_strdup_printf (
    "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
    " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
    "<busconfig>\n"
    "  <type>session</type>\n"
    "  <listen>unix:dir=%s</listen>\n"
    "  <auth>EXTERNAL</auth>\n"
    "  <policy context=\"default\">\n"
    "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
    "    <allow eavesdrop=\"true\"/>\n"
    "    <allow own=\"*\"/>\n"
    "  </policy>\n"
    "  <limit name=\"max_incoming_bytes\">1000000000</limit>\n"
    "  <limit name=\"max_outgoing_bytes\">1000000000</limit>\n"
    "  <limit name=\"max_message_size\">1000000000</limit>\n"
    "  <limit name=\"max_completed_connections\">100000</limit>\n"
    "  <limit name=\"max_incomplete_connections\">10000</limit>\n"
    "  <limit name=\"max_connections_per_user\">100000</limit>\n"
    "  <limit name=\"max_match_rules_per_connection\">50000</limit>\n"
    "</busconfig>\n", tmp_dir);

  if (!g_file_set_contents (path, config, -1, &error))
    bench_die ("%s", error->message);
  return path;
}

/* Starts a private dbus-daemon as a child of ours (--nofork, so that it
 * dies with us) and reads its address. */
static void
dbus_start (Env *env)
{
  g_autofree char *config = dbus_write_config ();
  g_autofree char *config_arg = g_strdup_printf ("--config-file=%s", config);
  g_autofree char *log_path = g_strdup_printf ("%s/dbus.log", tmp_dir);
  int log_fd = open (log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  char address[512], fd_arg[32];
  int fds[2];

  if (pipe2 (fds, O_CLOEXEC) < 0)
    bench_die ("pipe: %s", strerror (errno));
  fflush (stdout);
  fflush (stderr);
  env->dbus_pid = fork ();
  if (env->dbus_pid < 0)
    bench_die ("fork: %s", strerror (errno));
  if (env->dbus_pid == 0)
    {
      prctl (PR_SET_PDEATHSIG, SIGKILL);
      fcntl (fds[1], F_SETFD, 0);
      snprintf (fd_arg, sizeof fd_arg, "--print-address=%d", fds[1]);
      /* Its complaints (it cannot raise its descriptor limit) go to
       * dbus.log in the temporary directory. */
      if (log_fd >= 0)
        dup2 (log_fd, STDERR_FILENO);
      execlp ("dbus-daemon", "dbus-daemon", config_arg, "--nofork", "--nopidfile",
              fd_arg, (char *) NULL);
      fprintf (stderr, "bench: exec dbus-daemon: %s\n", strerror (errno));
      _exit (127);
    }
  dbus_pid = env->dbus_pid;
  close (fds[1]);
  if (log_fd >= 0)
    close (log_fd);
  if (!read_line (fds[0], address, sizeof address))
    bench_die ("dbus-daemon printed no address");
  close (fds[0]);
  env->dbus_address = g_strdup (address);
}

static void
dbus_stop (Env *env)
{
  int status;

  kill (env->dbus_pid, SIGTERM);
  waitpid (env->dbus_pid, &status, 0);
  dbus_pid = 0;
  g_clear_pointer (&env->dbus_address, g_free);
}

static void
env_start (Env        *env,
           const char *phase)
{
#ifdef QIPC_BENCH_HAVE_CHANNELS
  static int serial;
#endif

  memset (env, 0, sizeof *env);
  env->phase = phase;
#ifdef QIPC_BENCH_HAVE_CHANNELS
  env->qipc_address = g_strdup_printf ("unix:path=%s/qipc-bus-%d", tmp_dir, serial++);
  env->broker = child_spawn ("broker", "qipc", env->qipc_address, 0, 0, NULL, 0);
  env->have_broker = TRUE;
  child_wait_ready (&env->broker);
#endif
  dbus_start (env);
  printf ("# %s: qipc broker pid %d at %s, dbus-daemon pid %d at %s\n", phase,
          env->have_broker ? (int) env->broker.pid : 0,
          env->qipc_address ? env->qipc_address : "-", (int) env->dbus_pid, env->dbus_address);
  fflush (stdout);
}

static void
env_stop (Env *env)
{
  if (env->have_broker)
    child_finish (&env->broker);
  dbus_stop (env);
  g_clear_pointer (&env->qipc_address, g_free);
}

/* The broker process of @impl, 0 when it has none. */
static pid_t
env_broker_pid (Env        *env,
                const char *impl)
{
  if (strcmp (impl, "qipc") == 0)
    return env->have_broker ? env->broker.pid : 0;
  if (g_str_has_prefix (impl, "gdbus"))
    return env->dbus_pid;
  return 0;
}

/* The address children of @impl are given; @what names a ZeroMQ
 * endpoint. */
static char *
env_address (Env        *env,
             const char *impl,
             const char *what)
{
  static int serial;

  if (strcmp (impl, "qipc") == 0)
    return g_strdup (env->qipc_address);
  if (g_str_has_prefix (impl, "gdbus"))
    return g_strdup (env->dbus_address);
  if (strcmp (impl, "zeromq") == 0)
    return g_strdup_printf ("ipc://%s/zmq-%s-%d", tmp_dir, what, serial++);
  return NULL;
}

/* ---- Parent: results ------------------------------------------------ */

/* "PHASE BENCHMARK IMPL" -> GArray of doubles. */
static GHashTable *results;

static void
record (const char *phase,
        const char *benchmark,
        const char *impl,
        double      value,
        const char *unit)
{
  g_autofree char *bench_name = g_strdup_printf ("%s:%s", phase, benchmark);
  char *key = g_strdup_printf ("%s %s %s", phase, benchmark, impl);
  GArray *values = g_hash_table_lookup (results, key);

  if (values == NULL)
    {
      values = g_array_new (FALSE, FALSE, sizeof (double));
      g_hash_table_insert (results, key, values);
    }
  else
    g_free (key);
  g_array_append_val (values, value);
  bench_report (bench_name, impl, value, unit);
}

/* The median of the rounds, or NAN when there is none. */
static double
median (const char *phase,
        const char *benchmark,
        const char *impl)
{
  g_autofree char *key = g_strdup_printf ("%s %s %s", phase, benchmark, impl);
  GArray *values = g_hash_table_lookup (results, key);
  g_autofree double *sorted = NULL;
  guint n;

  if (values == NULL || values->len == 0)
    return NAN;
  n = values->len;
  sorted = g_memdup2 (values->data, n * sizeof (double));
  qsort (sorted, n, sizeof (double), compare_doubles);
  return (n % 2) ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

/* ---- Parent: measurements ------------------------------------------- */

static const char *only;
static int pin_cpu;

static gboolean
selected (const char *impl)
{
  return only == NULL || strcmp (only, impl) == 0;
}

/* One sender, @n receivers, @messages messages. Reports the messages per
 * second each receiver got (from the sender's first send to the last
 * receiver's last message), and the CPU time of the sender, the
 * receivers and the broker per delivered message. */
static void
fanout_round (Env        *env,
              const char *impl,
              int         n,
              long        messages)
{
  g_autofree char *address = env_address (env, impl, "fanout");
  g_autofree char *bench_name = g_strdup_printf ("fanout-%d", n);
  g_autofree char *cpu_name = g_strdup_printf ("fanout-%d-cpu", n);
  gboolean raw = strcmp (impl, "raw") == 0;
  int pairs[CHAN_MAX_RECEIVERS][2], send_fds[CHAN_MAX_RECEIVERS];
  Child sender, receivers[CHAN_MAX_RECEIVERS];
  pid_t broker = env_broker_pid (env, impl);
  double start, end = 0, cpu = 0, sender_cpu, broker_cpu = 0;
  char line[256];
  int i;

  for (i = 0; raw && i < n; i++)
    {
      if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pairs[i]) < 0)
        bench_die ("socketpair: %s", strerror (errno));
      send_fds[i] = pairs[i][0];
    }
  sender = child_spawn ("send", impl, address, messages, n, send_fds, raw ? n : 0);
  for (i = 0; i < n; i++)
    receivers[i] = child_spawn ("recv", impl, address, messages, 0, &pairs[i][1], raw ? 1 : 0);
  for (i = 0; raw && i < n; i++)
    {
      close (pairs[i][0]);
      close (pairs[i][1]);
    }
  for (i = 0; i < n; i++)
    child_wait_ready (&receivers[i]);
  child_wait_ready (&sender);

  alarm (BENCH_WATCHDOG_S);
  if (broker)
    broker_cpu = proc_cpu_ns (broker);
  child_go (&sender);
  child_result (&sender, line, sizeof line);
  start = result_get (line, "start");
  sender_cpu = result_get (line, "cpu");
  cpu += sender_cpu;
  for (i = 0; i < n; i++)
    {
      child_result (&receivers[i], line, sizeof line);
      end = MAX (end, result_get (line, "end"));
      cpu += result_get (line, "cpu");
    }
  if (broker)
    broker_cpu = proc_cpu_ns (broker) - broker_cpu;
  alarm (0);

  child_finish (&sender);
  for (i = 0; i < n; i++)
    child_finish (&receivers[i]);

  printf ("# %s %s 1->%d: %.0f ms; CPU ns per delivered message: sender %.0f, "
          "receivers %.0f, broker %.0f\n", env->phase, impl, n, (end - start) / 1e6,
          sender_cpu / ((double) messages * n), (cpu - sender_cpu) / ((double) messages * n),
          broker_cpu / ((double) messages * n));
  record (env->phase, bench_name, impl, (double) messages / ((end - start) / 1e9), "msg/s");
  record (env->phase, cpu_name, impl, (cpu + broker_cpu) / ((double) messages * n), "ns");
}

/* One round of @trips round trips (after @warmup). */
/* Records under @name ("roundtrip"), @name-p99 and @name-mean. */
static void
roundtrip_round (Env        *env,
                 const char *impl,
                 long        trips,
                 long        warmup,
                 const char *name)
{
  g_autofree char *p99_name = g_strconcat (name, "-p99", NULL);
  g_autofree char *mean_name = g_strconcat (name, "-mean", NULL);
  g_autofree char *address = env_address (env, impl, "rt");
  gboolean raw = g_str_has_prefix (impl, "raw");
  gboolean relay = strcmp (impl, "raw-relay") == 0;
  int pairs[4][2], ping_fds[2] = { -1, -1 }, echo_fds[2] = { -1, -1 }, relay_fds[4];
  int n_pairs = relay ? 4 : raw ? 2 : 0, i;
  Child ping, echo, relay_child = { 0 };
  char line[256];

  for (i = 0; i < n_pairs; i++)
    if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pairs[i]) < 0)
      bench_die ("socketpair: %s", strerror (errno));
  if (relay)
    {
      /* ping -0-> relay -1-> echo -2-> relay -3-> ping */
      ping_fds[0] = pairs[0][0];
      ping_fds[1] = pairs[3][1];
      relay_fds[0] = pairs[0][1];
      relay_fds[1] = pairs[1][0];
      relay_fds[2] = pairs[2][1];
      relay_fds[3] = pairs[3][0];
      echo_fds[0] = pairs[2][0];
      echo_fds[1] = pairs[1][1];
      relay_child = child_spawn ("relay", impl, NULL, 0, 0, relay_fds, 4);
    }
  else if (raw)
    {
      /* ping -0-> echo -1-> ping */
      ping_fds[0] = pairs[0][0];
      ping_fds[1] = pairs[1][1];
      echo_fds[0] = pairs[1][0];
      echo_fds[1] = pairs[0][1];
    }
  echo = child_spawn ("echo", impl, address, 0, 0, echo_fds, raw ? 2 : 0);
  ping = child_spawn ("ping", impl, address, trips, warmup, ping_fds, raw ? 2 : 0);
  for (i = 0; i < n_pairs; i++)
    {
      close (pairs[i][0]);
      close (pairs[i][1]);
    }
  if (relay)
    child_wait_ready (&relay_child);
  child_wait_ready (&echo);
  child_wait_ready (&ping);

  alarm (BENCH_WATCHDOG_S);
  child_go (&ping);
  child_result (&ping, line, sizeof line);
  alarm (0);
  child_finish (&ping);
  child_finish (&echo);
  if (relay)
    child_finish (&relay_child);

  record (env->phase, name, impl, result_get (line, "median") / 1000.0, "us");
  record (env->phase, p99_name, impl, result_get (line, "p99") / 1000.0, "us");
  record (env->phase, mean_name, impl, result_get (line, "mean") / 1000.0, "us");
}

static double
proc_kib (pid_t       pid,
          const char *file,
          const char *field)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/%s", (int) pid, file);
  g_autofree char *text = NULL;
  const char *p;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    bench_die ("reading %s", path);
  p = strstr (text, field);
  if (p == NULL)
    bench_die ("no %s in %s", field, path);
  return g_ascii_strtod (p + strlen (field), NULL);
}

static int
proc_n_fds (pid_t pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/fd", (int) pid);
  DIR *dir = opendir (path);
  int n = 0;

  if (dir == NULL)
    return -1;
  while (readdir (dir) != NULL)
    n++;
  closedir (dir);
  return n - 2;
}

/* Records the broker's memory, as @when ("idle" or "clients"). RSS counts
 * every resident page; Pss shares the library pages among the processes
 * that map them, so it falls as more (client) processes start, and USS
 * (private pages) misses the heap pages still shared with the parent
 * since fork. The per-client figure is taken from RSS. */
static double
record_memory (Env        *env,
               const char *impl,
               pid_t       pid,
               const char *when)
{
  g_autofree char *rss = g_strdup_printf ("memory-%s-rss", when);
  g_autofree char *pss = g_strdup_printf ("memory-%s-pss", when);
  g_autofree char *uss = g_strdup_printf ("memory-%s-uss", when);
  double rss_kib = proc_kib (pid, "status", "VmRSS:");

  record (env->phase, rss, impl, rss_kib, "KiB");
  record (env->phase, pss, impl, proc_kib (pid, "smaps_rollup", "Pss:"), "KiB");
  record (env->phase, uss, impl,
          proc_kib (pid, "smaps_rollup", "Private_Clean:") +
          proc_kib (pid, "smaps_rollup", "Private_Dirty:"), "KiB");
  return rss_kib;
}

/* The broker's memory idle, then with @clients idle clients connected
 * (spread over CHAN_IDLE_PROCESSES processes); and, with them still
 * connected, a round trip through the broker (@round_trip_impl, NULL for
 * none): a broker's cost per message must not grow with its clients. */
static void
memory_run (Env        *env,
            const char *impl,
            const char *round_trip_impl,
            long        clients,
            long        trips)
{
  g_autofree char *address = env_address (env, impl, "idle");
  pid_t broker = env_broker_pid (env, impl);
  Child idle[CHAN_IDLE_PROCESSES];
  double before, after;
  int i, fds_before;

  if (broker == 0)
    return;
  fds_before = proc_n_fds (broker);
  before = record_memory (env, impl, broker, "idle");
  for (i = 0; i < CHAN_IDLE_PROCESSES; i++)
    {
      long share = clients / CHAN_IDLE_PROCESSES + (i < clients % CHAN_IDLE_PROCESSES);

      idle[i] = child_spawn ("idle", impl, address, share, 0, NULL, 0);
    }
  alarm (BENCH_WATCHDOG_S);
  for (i = 0; i < CHAN_IDLE_PROCESSES; i++)
    child_wait_ready (&idle[i]);
  alarm (0);
  /* Let the broker finish whatever the last connections started. */
  g_usleep (300 * 1000);
  printf ("# memory %s: the broker has %d descriptors open, %d before the clients\n",
          impl, proc_n_fds (broker), fds_before);
  after = record_memory (env, impl, broker, "clients");
  record (env->phase, "memory-per-client", impl, (after - before) / (double) clients, "KiB");
  if (round_trip_impl != NULL)
    roundtrip_round (env, round_trip_impl, trips, BENCH_PINGPONG_WARMUP, "roundtrip-idle-clients");
  for (i = 0; i < CHAN_IDLE_PROCESSES; i++)
    child_finish (&idle[i]);
}

/* ---- Parent: the run ------------------------------------------------ */

typedef struct
{
  int rounds;
  long messages;
  long trips;
  long clients;
  gboolean unpinned;
  gboolean pinned;
  gboolean fanout;
  gboolean roundtrip;
  gboolean memory;
} Options;

static gboolean
has_role (const ChanImpl *impl,
          gboolean        roundtrip)
{
  return roundtrip ? impl->ping != NULL : impl->send != NULL;
}

static void
run_phase (const Options *o,
           const char    *phase)
{
  cpu_set_t saved, one;
  Env env;
  int r;
  gsize i, f;

  sched_getaffinity (0, sizeof saved, &saved);
  if (strcmp (phase, "pinned") == 0)
    {
      CPU_ZERO (&one);
      CPU_SET (pin_cpu, &one);
      if (sched_setaffinity (0, sizeof one, &one) < 0)
        bench_die ("sched_setaffinity %d: %s", pin_cpu, strerror (errno));
    }
  bench_print_affinity (phase);
  env_start (&env, phase);

  for (r = 0; r < o->rounds && o->fanout; r++)
    for (f = 0; f < G_N_ELEMENTS (fanouts); f++)
      for (i = 0; i < G_N_ELEMENTS (impls); i++)
        if (selected (impls[i].name) && has_role (&impls[i], FALSE))
          fanout_round (&env, impls[i].name, fanouts[f], o->messages / fanouts[f]);

  for (r = 0; r < o->rounds && o->roundtrip; r++)
    for (i = 0; i < G_N_ELEMENTS (impls); i++)
      if (selected (impls[i].name) && has_role (&impls[i], TRUE))
        roundtrip_round (&env, impls[i].name, o->trips, BENCH_PINGPONG_WARMUP, "roundtrip");

  env_stop (&env);
  sched_setaffinity (0, sizeof saved, &saved);
}

static void
run_memory (const Options *o)
{
  Env env;
  gsize i;

  env_start (&env, "memory");
  for (i = 0; i < G_N_ELEMENTS (impls); i++)
    if (selected (impls[i].name) && impls[i].idle != NULL)
      {
        /* dbus-daemon's round trip is the method call, as in the
         * round trip part. */
        const char *round_trip = strcmp (impls[i].name, "gdbus") == 0 ? "gdbus-method" : impls[i].name;

        memory_run (&env, impls[i].name, round_trip, o->clients, o->trips);
      }
  env_stop (&env);
}

/* ---- Parent: tables and ratios ---------------------------------------- */

static void
fmt_value (char       *buf,
           size_t      size,
           double      value,
           int         decimals)
{
  if (isnan (value))
    g_strlcpy (buf, "-", size);
  else
    snprintf (buf, size, "%.*f", decimals, value);
}

static void
print_fanout_table (const char *title,
                    const char *suffix)
{
  static const char *const phases[] = { "unpinned", "pinned" };
  gsize i, p, f;

  printf ("%s\n", title);
  printf ("%-34s %-31s   pinned (taskset -c %d)\n", "", "unpinned", pin_cpu);
  printf ("%-34s %9s %10s %10s   %9s %10s %10s\n", "implementation",
          "1->1", "1->4", "1->16", "1->1", "1->4", "1->16");
  for (i = 0; i < G_N_ELEMENTS (impls); i++)
    {
      if (impls[i].send == NULL)
        continue;
      printf ("%-34s", impls[i].label);
      for (p = 0; p < G_N_ELEMENTS (phases); p++)
        for (f = 0; f < G_N_ELEMENTS (fanouts); f++)
          {
            g_autofree char *bench_name = g_strdup_printf ("fanout-%d%s", fanouts[f], suffix);
            char buf[32];

            fmt_value (buf, sizeof buf, median (phases[p], bench_name, impls[i].name), 0);
            if (f == 0)
              printf ("%s%9s", p == 1 ? "   " : " ", buf);
            else
              printf (" %10s", buf);
          }
      printf ("\n");
    }
  printf ("\n");
}

static void
print_roundtrip_table (void)
{
  static const char *const cols[][2] = {
    { "unpinned", "roundtrip" }, { "unpinned", "roundtrip-p99" },
    { "pinned", "roundtrip" }, { "pinned", "roundtrip-p99" },
  };
  gsize i, c;

  printf ("== Round trip: a 64-byte message there on one channel, back on another, us ==\n");
  printf ("== (median over the rounds of each round's median and 99th percentile)      ==\n");
  printf ("%-34s %-21s   pinned (taskset -c %d)\n", "", "unpinned", pin_cpu);
  printf ("%-34s %10s %10s   %10s %10s\n", "implementation", "median", "p99", "median", "p99");
  for (i = 0; i < G_N_ELEMENTS (impls); i++)
    {
      printf ("%-34s", impls[i].label);
      for (c = 0; c < G_N_ELEMENTS (cols); c++)
        {
          char buf[32];

          fmt_value (buf, sizeof buf, median (cols[c][0], cols[c][1], impls[i].name), 1);
          printf ("%s%10s", c == 2 ? "   " : " ", buf);
        }
      printf ("\n");
    }
  printf ("\n");
}

static void
print_memory_table (long clients)
{
  static const char *const cols[] = {
    "memory-idle-rss", "memory-clients-rss", "memory-idle-pss", "memory-clients-pss",
    "memory-idle-uss", "memory-clients-uss", "memory-per-client",
  };
  gsize i, c;

  printf ("== Broker memory, KiB: idle, and with %ld idle clients (one channel or match rule each) ==\n",
          clients);
  printf ("%-34s %9s %9s %9s %9s %9s %9s %10s\n", "", "RSS", "", "Pss", "", "USS", "", "RSS per");
  printf ("%-34s %9s %9s %9s %9s %9s %9s %10s\n", "broker", "idle", "clients",
          "idle", "clients", "idle", "clients", "client");
  for (i = 0; i < G_N_ELEMENTS (impls); i++)
    {
      if (impls[i].idle == NULL)
        continue;
      printf ("%-34s", strcmp (impls[i].name, "qipc") == 0 ? "QipcBroker" : "dbus-daemon");
      for (c = 0; c < G_N_ELEMENTS (cols); c++)
        {
          char buf[32];

          fmt_value (buf, sizeof buf, median ("memory", cols[c], impls[i].name),
                     c + 1 == G_N_ELEMENTS (cols) ? 1 : 0);
          printf (" %*s", c + 1 == G_N_ELEMENTS (cols) ? 10 : 9, buf);
        }
      printf ("\n");
    }
  printf ("\n");
  printf ("== Round trip median with the %ld idle clients connected, us (unpinned) ==\n", clients);
  for (i = 0; i < G_N_ELEMENTS (impls); i++)
    {
      const char *name = strcmp (impls[i].name, "gdbus") == 0 ? "gdbus-method" : impls[i].name;
      char buf[32];

      if (impls[i].idle == NULL)
        continue;
      fmt_value (buf, sizeof buf, median ("memory", "roundtrip-idle-clients", name), 1);
      printf ("%-34s %9s\n", strcmp (impls[i].name, "qipc") == 0 ? "QipcBroker" : "dbus-daemon (method call)",
              buf);
    }
  printf ("\n");
}

/* One ratio line; @op is ">=", "<=" or "<", @target 0 for none. */
static void
print_ratio (const char *label,
             double      ratio,
             int         decimals,
             const char *unit,
             const char *op,
             double      target)
{
  char value[32];

  fmt_value (value, sizeof value, ratio, decimals);
  printf ("%-56s %8s%s", label, value, isnan (ratio) ? "" : unit);
  if (target > 0 && !isnan (ratio))
    {
      gboolean met = strcmp (op, ">=") == 0 ? ratio >= target :
                     strcmp (op, "<=") == 0 ? ratio <= target : ratio < target;

      printf ("  (target %s %.3g: %s", op, target, met ? "met" : "MISSED");
      if (!met)
        printf (" by %.2fx", strcmp (op, ">=") == 0 ? target / ratio : ratio / target);
      printf (")");
    }
  printf ("\n");
}

static void
print_ratios (void)
{
  static const char *const phases[] = { "unpinned", "pinned" };
  gsize p, f;

  printf ("== Ratios qipc / peer, channels (medians of the rounds) ==\n");
  for (p = 0; p < G_N_ELEMENTS (phases); p++)
    for (f = 0; f < G_N_ELEMENTS (fanouts); f++)
      {
        g_autofree char *bench_name = g_strdup_printf ("fanout-%d", fanouts[f]);
        double q = median (phases[p], bench_name, "qipc");
        g_autofree char *l1 = g_strdup_printf ("qipc/gdbus throughput 1->%d %s:", fanouts[f], phases[p]);
        g_autofree char *l2 = g_strdup_printf ("qipc/zeromq throughput 1->%d %s:", fanouts[f], phases[p]);
        g_autofree char *l3 = g_strdup_printf ("qipc/raw throughput 1->%d %s:", fanouts[f], phases[p]);

        print_ratio (l1, q / median (phases[p], bench_name, "gdbus"), 1, "x", ">=", 20);
        print_ratio (l2, q / median (phases[p], bench_name, "zeromq"), 2, "x", ">=", 1);
        print_ratio (l3, q / median (phases[p], bench_name, "raw"), 2, "x", "", 0);
      }
  /* CPU time per message, which other load on the machine disturbs
   * less than the rates. */
  for (p = 0; p < G_N_ELEMENTS (phases); p++)
    for (f = 0; f < G_N_ELEMENTS (fanouts); f++)
      {
        g_autofree char *bench_name = g_strdup_printf ("fanout-%d-cpu", fanouts[f]);
        double q = median (phases[p], bench_name, "qipc");
        g_autofree char *l1 = g_strdup_printf ("CPU per message 1->%d %s: qipc/gdbus", fanouts[f], phases[p]);
        g_autofree char *l2 = g_strdup_printf ("CPU per message 1->%d %s: qipc/zeromq", fanouts[f], phases[p]);

        print_ratio (l1, q / median (phases[p], bench_name, "gdbus"), 3, "", "", 0);
        print_ratio (l2, q / median (phases[p], bench_name, "zeromq"), 2, "", "", 0);
      }
  for (p = 0; p < G_N_ELEMENTS (phases); p++)
    {
      double q = median (phases[p], "roundtrip", "qipc");
      double q99 = median (phases[p], "roundtrip-p99", "qipc");
      g_autofree char *l1 = g_strdup_printf ("qipc round trip / gdbus method call %s:", phases[p]);
      g_autofree char *l2 = g_strdup_printf ("qipc round trip / gdbus signals %s:", phases[p]);
      g_autofree char *l3 = g_strdup_printf ("qipc round trip / zeromq %s:", phases[p]);
      g_autofree char *l4 = g_strdup_printf ("qipc round trip / raw %s:", phases[p]);
      g_autofree char *l6 = g_strdup_printf ("qipc round trip / raw relay %s:", phases[p]);
      g_autofree char *l5 = g_strdup_printf ("qipc p99 round trip / gdbus method p99 %s:", phases[p]);

      print_ratio (l1, q / median (phases[p], "roundtrip", "gdbus-method"), 2, "", "<=", 1.0 / 3);
      print_ratio (l2, q / median (phases[p], "roundtrip", "gdbus"), 2, "", "", 0);
      print_ratio (l3, q / median (phases[p], "roundtrip", "zeromq"), 2, "", "", 0);
      print_ratio (l4, q / median (phases[p], "roundtrip", "raw"), 2, "", "", 0);
      print_ratio (l6, q / median (phases[p], "roundtrip", "raw-relay"), 2, "", "", 0);
      print_ratio (l5, q99 / median (phases[p], "roundtrip-p99", "gdbus-method"), 2, "", "", 0);
    }
  print_ratio ("dbus-daemon KiB per idle client:",
               median ("memory", "memory-per-client", "gdbus"), 1, "", "", 0);
  print_ratio ("broker KiB per idle client:",
               median ("memory", "memory-per-client", "qipc"), 1, "", "<", 64);
  print_ratio ("qipc round trip with idle clients / without, unpinned:",
               median ("memory", "roundtrip-idle-clients", "qipc") /
               median ("unpinned", "roundtrip", "qipc"), 2, "", "", 0);
  print_ratio ("gdbus method with idle clients / without, unpinned:",
               median ("memory", "roundtrip-idle-clients", "gdbus-method") /
               median ("unpinned", "roundtrip", "gdbus-method"), 2, "", "", 0);
  print_ratio ("qipc / gdbus method round trip, idle clients connected:",
               median ("memory", "roundtrip-idle-clients", "qipc") /
               median ("memory", "roundtrip-idle-clients", "gdbus-method"), 2, "", "", 0);
}

static void
print_summary (const Options *o)
{
  printf ("\n");
  if (o->fanout)
    {
      printf ("# %ld deliveries of 64-byte messages per round (1->R sends %ld / R), %d rounds; "
              "figures are medians of the rounds\n", o->messages, o->messages, o->rounds);
      print_fanout_table ("== Fan-out: messages/s each receiver gets (1->1 is the one-way throughput) ==",
                          "");
      print_fanout_table ("== The same fan-out, CPU time of all processes (broker too) per delivered message, ns ==",
                          "-cpu");
    }
  if (o->roundtrip)
    print_roundtrip_table ();
  if (o->memory)
    print_memory_table (o->clients);
  print_ratios ();
}

static void
usage (void)
{
  bench_die ("usage: qipc-bench-channels [--rounds N] [--messages N] [--trips N] [--clients N] "
             "[--pin CPU] [--phase both|unpinned|pinned] [--part fanout,roundtrip,memory] "
             "[--only IMPL]");
}

static void
parse_options (Options  *o,
               int       argc,
               char    **argv)
{
  const char *phase = "both", *parts = "fanout,roundtrip,memory";
  int i;

  *o = (Options) { CHAN_ROUNDS, CHAN_MESSAGES, BENCH_PINGPONG_TRIPS, CHAN_CLIENTS, 0 };
  for (i = 1; i < argc; i++)
    {
      const char *value = i + 1 < argc ? argv[i + 1] : NULL;

      if (value == NULL)
        usage ();
      if (strcmp (argv[i], "--rounds") == 0)
        o->rounds = atoi (value);
      else if (strcmp (argv[i], "--messages") == 0)
        o->messages = atol (value);
      else if (strcmp (argv[i], "--trips") == 0)
        o->trips = atol (value);
      else if (strcmp (argv[i], "--clients") == 0)
        o->clients = atol (value);
      else if (strcmp (argv[i], "--pin") == 0)
        pin_cpu = atoi (value);
      else if (strcmp (argv[i], "--phase") == 0)
        phase = value;
      else if (strcmp (argv[i], "--part") == 0)
        parts = value;
      else if (strcmp (argv[i], "--only") == 0)
        only = value;
      else
        usage ();
      i++;
    }
  if (o->rounds < 1 || o->messages < CHAN_MAX_RECEIVERS || o->trips < 1 ||
      o->clients < CHAN_IDLE_PROCESSES ||
      pin_cpu < 0 || pin_cpu >= CPU_SETSIZE)
    usage ();
  if (only != NULL && impl_find (only) == NULL)
    bench_die ("no implementation %s", only);
  o->unpinned = strcmp (phase, "both") == 0 || strcmp (phase, "unpinned") == 0;
  o->pinned = strcmp (phase, "both") == 0 || strcmp (phase, "pinned") == 0;
  o->fanout = strstr (parts, "fanout") != NULL;
  o->roundtrip = strstr (parts, "roundtrip") != NULL;
  o->memory = strstr (parts, "memory") != NULL;
}

/* Room for the broker's and the idle clients' connections. */
static void
raise_fd_limit (void)
{
  struct rlimit limit;

  if (getrlimit (RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max)
    {
      limit.rlim_cur = limit.rlim_max;
      setrlimit (RLIMIT_NOFILE, &limit);
    }
}

static void
setup (void)
{
  ssize_t n = readlink ("/proc/self/exe", exe_path, sizeof exe_path - 1);

  if (n < 0)
    bench_die ("readlink /proc/self/exe: %s", strerror (errno));
  exe_path[n] = '\0';
  tmp_dir = g_dir_make_tmp ("qipc-bench-channels-XXXXXX", NULL);
  if (tmp_dir == NULL)
    bench_die ("no temporary directory");
  results = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_array_unref);
  raise_fd_limit ();
  atexit (cleanup);
  signal (SIGALRM, on_fatal_signal);
  signal (SIGINT, on_fatal_signal);
  signal (SIGTERM, on_fatal_signal);
  signal (SIGPIPE, SIG_IGN);
}

int
main (int    argc,
      char **argv)
{
  Options o;

  if (argc >= 2 && strcmp (argv[1], "child") == 0)
    return child_main (argc, argv);
  parse_options (&o, argc, argv);
  setup ();
  bench_print_affinity ("qipc-bench-channels");
#ifndef QIPC_BENCH_HAVE_CHANNELS
  printf ("# no QipcChannel in this build: the qipc rows stay empty\n");
#endif
  printf ("# %d rounds; fan-out: %ld deliveries; round trip: %ld timed (after %d untimed); "
          "memory: %ld clients\n", o.rounds, o.messages, o.trips, BENCH_PINGPONG_WARMUP, o.clients);
  fflush (stdout);

  if (o.memory)
    run_memory (&o);
  if (o.unpinned && (o.fanout || o.roundtrip))
    run_phase (&o, "unpinned");
  if (o.pinned && (o.fanout || o.roundtrip))
    run_phase (&o, "pinned");
  print_summary (&o);
  return 0;
}
