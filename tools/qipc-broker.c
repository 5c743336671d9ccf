/* qipc-broker.c: the channel broker daemon
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A thin program around QipcBroker. It is started in one of three ways:
 * by hand or by a service manager with --address; by systemd socket
 * activation, which hands it listening sockets; or on demand by a client
 * that found no broker (--autostart), in which case it steps aside when
 * another broker already serves the address, and exits by itself once
 * no client has been connected for a while.
 */

#include <qipc.h>

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <locale.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "broker-tls.h"

#define PROGRAM "qipc-broker"
#define DEFAULT_IDLE_TIMEOUT_S 10
/* sd_listen_fds(3): passed sockets start at this descriptor. */
#define SD_LISTEN_FDS_START 3

typedef struct
{
  QipcBroker *broker;
  GMainLoop  *loop;
  guint       idle_timeout_s;  /* 0: stay while there are no clients */
  guint       idle_source;
} Daemon;

static char **opt_addresses;
static char **opt_bridges;
static char **opt_bridge_channels;
static char *opt_policy;
static char *opt_tls_certificate;
static char *opt_tls_key;
static gboolean opt_autostart;
static gint64 opt_idle_timeout = -1;  /* -1: the default for the mode */
static gint64 opt_max_queued_bytes = -1;
static gboolean opt_verbose;
static gboolean opt_version;

/* GOption's integers are signed and unchecked; these options need a
 * count, and a clear message when they do not get one. */
static gboolean
parse_count (const char  *option_name,
             const char  *value,
             guint64      max,
             gint64      *out,
             GError     **error)
{
  guint64 number;

  if (!g_ascii_string_to_unsigned (value, 10, 0, max, &number, NULL))
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "%s expects a whole number from 0 to %" G_GUINT64_FORMAT ", not \"%s\"",
                   option_name, max, value);
      return FALSE;
    }
  *out = number;
  return TRUE;
}

static gboolean
parse_idle_timeout (const char  *option_name,
                    const char  *value,
                    gpointer     data,
                    GError     **error)
{
  return parse_count (option_name, value, G_MAXUINT / 1000, &opt_idle_timeout, error);
}

static gboolean
parse_max_queued_bytes (const char  *option_name,
                        const char  *value,
                        gpointer     data,
                        GError     **error)
{
  return parse_count (option_name, value, G_MAXINT64, &opt_max_queued_bytes, error);
}

static const GOptionEntry entries[] = {
  { "address", 'a', 0, G_OPTION_ARG_STRING_ARRAY, &opt_addresses,
    "Listen at ADDR: unix:path=…, unix:abstract=… or tcp:host=…,port=… "
    "(repeatable; default: $QIPC_BUS_ADDRESS, else unix:path=$XDG_RUNTIME_DIR/qipc/bus)",
    "ADDR" },
  { "policy", 'p', 0, G_OPTION_ARG_FILENAME, &opt_policy,
    "Admit the clients that the JSON policy FILE allows (default: this user only)",
    "FILE" },
  { "tls-certificate", 0, 0, G_OPTION_ARG_FILENAME, &opt_tls_certificate,
    "Present the PEM certificate in FILE to clients on TCP, which is always TLS "
    "(needed to listen on tcp:)", "FILE" },
  { "tls-key", 0, 0, G_OPTION_ARG_FILENAME, &opt_tls_key,
    "The certificate's PEM private key (default: in the --tls-certificate file)", "FILE" },
  { "autostart", 0, 0, G_OPTION_ARG_NONE, &opt_autostart,
    "Started on demand: exit quietly if another broker serves the address, "
    "and exit when idle", NULL },
  { "idle-timeout", 0, 0, G_OPTION_ARG_CALLBACK, parse_idle_timeout,
    "Exit after SECONDS without clients (default: 10 with --autostart, else never; 0: never)",
    "SECONDS" },
  { "bridge", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opt_bridges,
    "Forward the --bridge-channels both ways between this broker and the MQTT broker "
    "at ADDR: mqtt://host:port[?options] or mqtts://… (repeatable)", "ADDR" },
  { "bridge-channels", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opt_bridge_channels,
    "A channel name or pattern that the bridges forward (repeatable)", "PATTERN" },
  { "max-queued-bytes", 0, 0, G_OPTION_ARG_CALLBACK, parse_max_queued_bytes,
    "Drop messages for a client once N bytes wait for it (default: 8 MiB)", "N" },
  { "verbose", 'v', 0, G_OPTION_ARG_NONE, &opt_verbose,
    "Log debug messages too", NULL },
  { "version", 0, 0, G_OPTION_ARG_NONE, &opt_version,
    "Print the version and exit", NULL },
  G_OPTION_ENTRY_NULL
};

static int
fail (const GError *error)
{
  g_printerr ("%s: %s\n", PROGRAM, error->message);
  return EXIT_FAILURE;
}

/* The library's default bus address, as _qipc_address_default() has it:
 * the daemon links only the public API. */
static char *
default_address (void)
{
  const char *env = g_getenv ("QIPC_BUS_ADDRESS");

  if (env != NULL && *env != '\0')
    return g_strdup (env);
  return g_strdup_printf ("unix:path=%s/qipc/bus", g_get_user_runtime_dir ());
}

/* The broker reports a socket path that another broker owns through
 * its lock file, and a taken name or port as the server found it. */
static gboolean
is_address_in_use (const GError *error)
{
  return g_error_matches (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE) ||
         g_error_matches (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_ADDRESS_IN_USE);
}

/* How many sockets systemd passed to this process (sd_listen_fds(3),
 * without libsystemd). The variables are removed either way, so that
 * no child of ours takes the sockets for its own. */
static int
listen_fds (void)
{
  const char *pid_string = g_getenv ("LISTEN_PID");
  const char *fds_string = g_getenv ("LISTEN_FDS");
  guint64 pid, n_fds = 0;

  if (pid_string == NULL || fds_string == NULL ||
      !g_ascii_string_to_unsigned (pid_string, 10, 1, G_MAXINT, &pid, NULL) ||
      (pid_t) pid != getpid () ||
      !g_ascii_string_to_unsigned (fds_string, 10, 0, G_MAXINT - SD_LISTEN_FDS_START, &n_fds, NULL))
    n_fds = 0;
  g_unsetenv ("LISTEN_PID");
  g_unsetenv ("LISTEN_FDS");
  g_unsetenv ("LISTEN_FDNAMES");
  return n_fds;
}

static gboolean
listen_activated (QipcBroker  *broker,
                  int          n_fds,
                  GError     **error)
{
  for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n_fds; fd++)
    {
      g_autoptr(GSocket) socket = NULL;

      /* Ours alone from now on: no child should inherit a listener. */
      if (fcntl (fd, F_SETFD, FD_CLOEXEC) < 0)
        {
          int saved_errno = errno;
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                       "Cannot use socket %d from socket activation: %s",
                       fd, g_strerror (saved_errno));
          return FALSE;
        }
      socket = g_socket_new_from_fd (fd, error);
      if (socket == NULL)
        {
          g_prefix_error (error, "Cannot use socket %d from socket activation: ", fd);
          return FALSE;
        }
      if (!qipc_broker_listen_socket (broker, socket, error))
        return FALSE;
    }
  return TRUE;
}

/* Returns FALSE with @error set on failure, and FALSE without it when
 * another broker serves an address and --autostart says to step aside. */
static gboolean
listen_all (QipcBroker  *broker,
            GError     **error)
{
  g_autofree char *fallback = NULL;
  char *defaults[] = { NULL, NULL };
  char **addresses = opt_addresses;
  int n_fds = listen_fds ();

  if (n_fds > 0 && !listen_activated (broker, n_fds, error))
    return FALSE;
  /* With sockets from systemd, they are the addresses unless more are
   * asked for. */
  if (addresses == NULL && n_fds == 0)
    {
      defaults[0] = fallback = default_address ();
      addresses = defaults;
    }

  for (gsize i = 0; addresses != NULL && addresses[i] != NULL; i++)
    {
      g_autoptr(GError) listen_error = NULL;

      if (qipc_broker_listen (broker, addresses[i], &listen_error))
        continue;
      if (opt_autostart && is_address_in_use (listen_error))
        {
          g_debug ("Not starting: %s", listen_error->message);
          return FALSE;
        }
      g_propagate_error (error, g_steal_pointer (&listen_error));
      return FALSE;
    }
  return TRUE;
}

static gboolean
on_idle_timeout (gpointer user_data)
{
  Daemon *daemon = user_data;

  g_debug ("No client for %u s: exiting", daemon->idle_timeout_s);
  daemon->idle_source = 0;
  g_main_loop_quit (daemon->loop);
  return G_SOURCE_REMOVE;
}

/* The idle clock runs while no client is connected, and starts over
 * each time the last one leaves. */
static void
update_idle_timer (Daemon *daemon)
{
  guint n_clients = qipc_broker_get_n_clients (daemon->broker);

  if (daemon->idle_timeout_s == 0)
    return;
  if (n_clients > 0)
    g_clear_handle_id (&daemon->idle_source, g_source_remove);
  else if (daemon->idle_source == 0)
    daemon->idle_source = g_timeout_add_seconds (daemon->idle_timeout_s, on_idle_timeout, daemon);
}

static void
on_n_clients (GObject    *object,
              GParamSpec *pspec,
              gpointer    user_data)
{
  update_idle_timer (user_data);
}

static gboolean
on_signal (gpointer user_data)
{
  Daemon *daemon = user_data;

  g_debug ("Terminated by a signal: exiting");
  g_main_loop_quit (daemon->loop);
  return G_SOURCE_CONTINUE;
}

static gboolean
parse_options (int      *argc,
               char   ***argv,
               GError  **error)
{
  g_autoptr(GOptionContext) context = g_option_context_new (NULL);

  g_option_context_set_summary (context,
                                "Routes the messages of qipc channels between the processes "
                                "that connect to it.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, argc, argv, error))
    return FALSE;
  if ((opt_bridges == NULL) != (opt_bridge_channels == NULL))
    {
      g_set_error_literal (error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                           "--bridge and --bridge-channels go together");
      return FALSE;
    }
  if (*argc > 1)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                   "Unexpected argument \"%s\" (see --help)", (*argv)[1]);
      return FALSE;
    }
  return TRUE;
}

static gboolean
configure (QipcBroker  *broker,
           GError     **error)
{
  if (opt_max_queued_bytes >= 0)
    qipc_broker_set_max_queued_bytes (broker, opt_max_queued_bytes);
  if (opt_policy != NULL && !qipc_broker_set_policy_from_file (broker, opt_policy, error))
    return FALSE;
  if (!broker_tls_configure (broker, opt_tls_certificate, opt_tls_key, error))
    return FALSE;
  /* Before listening: a client that can connect finds them running. */
  for (gsize i = 0; opt_bridges != NULL && opt_bridges[i] != NULL; i++)
    if (!qipc_broker_add_bridge (broker, opt_bridges[i],
                                 (const char * const *) opt_bridge_channels, error))
      {
        g_prefix_error (error, "Cannot bridge to %s: ", opt_bridges[i]);
        return FALSE;
      }
  return TRUE;
}

/* Every client is a descriptor, and so is every payload memfd on its
 * way: take all the descriptors the hard limit allows (the soft limit
 * is often 1024). */
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

int
main (int    argc,
      char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QipcBroker) broker = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  Daemon daemon = { 0, };

  /* Messages, file names included, in the user's charset. */
  setlocale (LC_ALL, "");
  g_set_prgname (PROGRAM);
  if (!parse_options (&argc, &argv, &error))
    return fail (error);
  if (opt_version)
    {
      g_print ("%s %s\n", PROGRAM, QIPC_VERSION_S);
      return EXIT_SUCCESS;
    }
  if (opt_verbose)
    g_log_set_debug_enabled (TRUE);

  raise_fd_limit ();
  broker = qipc_broker_new ();
  loop = g_main_loop_new (NULL, FALSE);
  daemon.broker = broker;
  daemon.loop = loop;
  /* Before listening: a client may make a service manager stop us as
   * soon as it can connect, and that must be a clean exit. */
  g_unix_signal_add (SIGTERM, on_signal, &daemon);
  g_unix_signal_add (SIGINT, on_signal, &daemon);

  if (!configure (broker, &error))
    return fail (error);
  if (!listen_all (broker, &error))
    return error != NULL ? fail (error) : EXIT_SUCCESS;

  if (opt_autostart)
    {
      /* A broker started from a client's terminal must outlive a Ctrl-C
       * there: it serves every client of the user. It should not keep
       * the client's working directory busy either. */
      setsid ();
      if (g_chdir ("/") < 0)
        g_debug ("Cannot change to /: %s", g_strerror (errno));
    }

  daemon.idle_timeout_s = opt_idle_timeout >= 0 ? opt_idle_timeout
                          : opt_autostart ? DEFAULT_IDLE_TIMEOUT_S : 0;
  g_signal_connect (broker, "notify::n-clients", G_CALLBACK (on_n_clients), &daemon);
  update_idle_timer (&daemon);

  g_main_loop_run (loop);

  g_signal_handlers_disconnect_by_data (broker, &daemon);
  g_clear_handle_id (&daemon.idle_source, g_source_remove);
  qipc_broker_close (broker);
  return EXIT_SUCCESS;
}
