/* test-utils.c: shared helpers for the C tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "test-utils.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Nothing a test waits for may take longer than this; past it the test
 * fails instead of hanging. */
#define TEST_WAIT_SECONDS 20

struct _QipcTestChild
{
  GSubprocess *process;
  GDataInputStream *output;
};

char *
qipc_test_key (const char *what)
{
  static guint counter;

  return g_strdup_printf ("qipc-test/%d/%u/%s", (int) getpid (), counter++, what);
}

/* A broker address on an abstract Unix socket no other test uses. */
char *
qipc_test_abstract_address (const char *what)
{
  return g_strdup_printf ("unix:abstract=qipc-test/%d/%s/%u", (int) getpid (), what,
                          g_random_int ());
}

/* A child (a daemon especially) must not outlive a test that aborts. */
static void
die_with_parent (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static QipcTestChild *
child_spawnv (const char *program,
              const char *first_arg,
              va_list     args)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDIN_PIPE);
  QipcTestChild *child = g_new0 (QipcTestChild, 1);

  g_ptr_array_add (argv, (char *) program);
  for (const char *arg = first_arg; arg != NULL; arg = va_arg (args, const char *))
    g_ptr_array_add (argv, (char *) arg);
  g_ptr_array_add (argv, NULL);

  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  child->process = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata,
                                                 &error);
  g_assert_no_error (error);
  child->output = g_data_input_stream_new (g_subprocess_get_stdout_pipe (child->process));
  return child;
}

/* Runs tests/helpers/qipc-test-helper with these arguments. */
QipcTestChild *
qipc_test_child_spawn (const char *first_arg,
                       ...)
{
  const char *helper = g_getenv ("QIPC_TEST_HELPER");
  QipcTestChild *child;
  va_list args;

  g_assert_nonnull (helper);
  va_start (args, first_arg);
  child = child_spawnv (helper, first_arg, args);
  va_end (args);
  return child;
}

/* Runs another program (a daemon the test needs) the same way. */
QipcTestChild *
qipc_test_child_spawn_program (const char *program,
                               const char *first_arg,
                               ...)
{
  QipcTestChild *child;
  va_list args;

  va_start (args, first_arg);
  child = child_spawnv (program, first_arg, args);
  va_end (args);
  return child;
}

static gboolean
wait_timed_out (gpointer user_data)
{
  g_error ("Timed out after %d s waiting for %s", TEST_WAIT_SECONDS, (const char *) user_data);
  return G_SOURCE_REMOVE;
}

guint
qipc_test_add_deadline (const char *what)
{
  return g_timeout_add_seconds (TEST_WAIT_SECONDS, wait_timed_out, (gpointer) what);
}

/* A GAsyncReadyCallback that stores the result in *user_data. */
void
qipc_test_store_result (GObject      *source,
                        GAsyncResult *result,
                        gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

/* A GSourceFunc that cancels the GCancellable it is given. */
gboolean
qipc_test_cancel_cb (gpointer cancellable)
{
  g_cancellable_cancel (cancellable);
  return G_SOURCE_REMOVE;
}

/* A ::notify handler that counts the notifications in the guint it is
 * given. */
void
qipc_test_count_notify (GObject    *object,
                        GParamSpec *pspec,
                        guint      *count)
{
  (*count)++;
}

/* Iterates the thread-default main context until *result is set. */
void
qipc_test_wait_for_result (GAsyncResult **result)
{
  guint timeout = qipc_test_add_deadline ("an async result");

  while (*result == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (timeout);
}

/* Reads the next line the child prints (without its newline); fails
 * the test when the child ends instead. */
char *
qipc_test_child_read_line (QipcTestChild *child)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  char *line;

  g_data_input_stream_read_line_async (child->output, G_PRIORITY_DEFAULT, NULL,
                                       qipc_test_store_result, &result);
  qipc_test_wait_for_result (&result);
  line = g_data_input_stream_read_line_finish (child->output, result, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (line);
  return line;
}

void
qipc_test_child_expect (QipcTestChild *child,
                        const char    *line)
{
  g_autofree char *got = qipc_test_child_read_line (child);

  g_assert_cmpstr (got, ==, line);
}

void
qipc_test_wait_until (gboolean      (*done) (gconstpointer data),
                      gconstpointer   data,
                      const char     *what)
{
  guint deadline = qipc_test_add_deadline (what);

  while (!done (data))
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (deadline);
}

void
qipc_test_child_expect_past (QipcTestChild *child,
                             const char    *line,
                             const char    *once,
                             gboolean      *once_seen)
{
  for (;;)
    {
      g_autofree char *got = qipc_test_child_read_line (child);

      if (g_str_equal (got, once) && !*once_seen)
        {
          *once_seen = TRUE;
          continue;
        }
      g_assert_cmpstr (got, ==, line);
      return;
    }
}

void
qipc_test_child_send (QipcTestChild *child,
                      const char    *line)
{
  GOutputStream *input = g_subprocess_get_stdin_pipe (child->process);
  g_autofree char *text = g_strconcat (line, "\n", NULL);
  g_autoptr(GError) error = NULL;

  g_output_stream_write_all (input, text, strlen (text), NULL, NULL, &error);
  g_assert_no_error (error);
}

void
qipc_test_child_kill (QipcTestChild *child)
{
  g_subprocess_send_signal (child->process, SIGKILL);
  qipc_test_child_wait (child);
  g_assert_true (g_subprocess_get_if_signaled (child->process));
  g_assert_cmpint (g_subprocess_get_term_sig (child->process), ==, SIGKILL);
}

/* Waits for the child to exit and returns its exit status (or -1 when a
 * signal ended it). */
int
qipc_test_child_wait (QipcTestChild *child)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  g_subprocess_wait_async (child->process, NULL, qipc_test_store_result, &result);
  qipc_test_wait_for_result (&result);
  g_subprocess_wait_finish (child->process, result, &error);
  g_assert_no_error (error);

  if (g_subprocess_get_if_exited (child->process))
    return g_subprocess_get_exit_status (child->process);
  return -1;
}

/* The process ID of a child that has not exited yet. */
GPid
qipc_test_child_get_pid (QipcTestChild *child)
{
  const char *identifier = g_subprocess_get_identifier (child->process);

  g_assert_nonnull (identifier);
  return (GPid) atoi (identifier);
}

void
qipc_test_child_free (QipcTestChild *child)
{
  if (child == NULL)
    return;
  /* A child a failed test left behind must not outlive it. */
  g_subprocess_force_exit (child->process);
  g_clear_object (&child->output);
  g_clear_object (&child->process);
  g_free (child);
}

char *
qipc_test_nest (const char *open,
                const char *middle,
                const char *close,
                guint       levels)
{
  GString *text = g_string_new (NULL);

  for (guint i = 0; i < levels; i++)
    g_string_append (text, open);
  g_string_append (text, middle);
  for (guint i = 0; i < levels; i++)
    g_string_append (text, close);
  return g_string_free (text, FALSE);
}

gboolean
qipc_test_is_root (void)
{
  return geteuid () == 0;
}

/* Queues @text on @socket; any failure fails the test. */
void
qipc_test_socket_write_text (QipcSocket *socket,
                             const char *text)
{
  g_autoptr(GBytes) bytes = g_bytes_new (text, strlen (text));
  g_autoptr(GError) error = NULL;

  g_assert_true (qipc_socket_write (socket, bytes, &error));
  g_assert_no_error (error);
}

/* Waits until @size bytes are buffered on @socket, and takes them. */
GBytes *
qipc_test_socket_read_exactly (QipcSocket *socket,
                               gsize       size)
{
  while (qipc_socket_bytes_available (socket) < size)
    {
      g_autoptr(GError) error = NULL;

      g_assert_true (qipc_socket_wait_for_ready_read (socket, TEST_WAIT_SECONDS * 1000, &error));
      g_assert_no_error (error);
    }
  return qipc_socket_read (socket, size);
}

/* ------------------------------------------------------------------ */
/* Channels                                                            */

static void
inbox_add (QipcChannel *channel,
           const char  *message,
           GVariant    *data,
           gpointer     user_data)
{
  QipcTestInbox *inbox = user_data;
  g_autofree char *text = data != NULL ? g_variant_print (data, TRUE) : g_strdup ("none");

  g_ptr_array_add (inbox->messages,
                   g_strdup_printf ("%s %s %s", qipc_channel_get_name (channel), message, text));
  /* For a plain name it is the name; for a pattern, a match of it. */
  g_assert_nonnull (qipc_channel_get_message_channel (channel));
  if (!strchr (qipc_channel_get_name (channel), '*'))
    g_assert_cmpstr (qipc_channel_get_message_channel (channel), ==, qipc_channel_get_name (channel));
}

QipcTestInbox *
qipc_test_inbox_new (void)
{
  QipcTestInbox *inbox = g_new0 (QipcTestInbox, 1);

  inbox->messages = g_ptr_array_new_with_free_func (g_free);
  return inbox;
}

void
qipc_test_inbox_free (QipcTestInbox *inbox)
{
  g_ptr_array_unref (inbox->messages);
  g_free (inbox);
}

/* Runs the thread-default main context until @inbox holds @count
 * messages. */
void
qipc_test_inbox_wait (QipcTestInbox *inbox,
                      guint          count)
{
  guint timeout = qipc_test_add_deadline ("messages");

  while (inbox->messages->len < count)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (timeout);
}

/* A channel on @bus whose messages go to @inbox. */
QipcChannel *
qipc_test_listen (QipcBus       *bus,
                  const char    *name,
                  QipcTestInbox *inbox)
{
  g_autoptr(GError) error = NULL;
  QipcChannel *channel = qipc_channel_new_for_bus (bus, name, &error);

  g_assert_no_error (error);
  if (inbox != NULL)
    g_signal_connect (channel, "received", G_CALLBACK (inbox_add), inbox);
  return channel;
}

/* Whether @inbox holds the line @line. */
gboolean
qipc_test_inbox_has (QipcTestInbox *inbox,
                     const char    *line)
{
  for (guint i = 0; i < inbox->messages->len; i++)
    if (g_str_equal (inbox->messages->pdata[i], line))
      return TRUE;
  return FALSE;
}

/* Runs the main context for a while, so that anything unexpected that
 * was going to arrive has arrived. */
void
qipc_test_settle (guint ms)
{
  gint64 end = g_get_monotonic_time () + ms * 1000;

  while (g_get_monotonic_time () < end)
    g_main_context_iteration (NULL, FALSE), g_usleep (1000);
}

void
qipc_test_send_ok (QipcBus    *bus,
                   const char *channel,
                   const char *message,
                   GVariant   *data)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (qipc_channel_send_for_bus (bus, channel, message, data, &error));
  g_assert_no_error (error);
}

void
qipc_test_flush_ok (QipcBus *bus)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (qipc_channel_flush_for_bus (bus, &error));
  g_assert_no_error (error);
}

gboolean
qipc_test_is_registered (QipcBus    *bus,
                         const char *name)
{
  g_autoptr(GError) error = NULL;
  gboolean registered = qipc_channel_is_registered_for_bus (bus, name, &error);

  g_assert_no_error (error);
  return registered;
}

/* ------------------------------------------------------------------ */
/* A mosquitto of the test's own                                       */

struct _QipcTestMosquitto
{
  GSubprocess *process;
  guint16 port;
  char *tls_config;           /* NULL, or the listener's TLS lines */
  char *directory;
  char *config;
  char *address;
};

/* A TCP port of 127.0.0.1 that nothing listens on (at the time). */
guint16
qipc_test_free_loopback_port (void)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GError) error = NULL;

  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_assert_true (g_socket_bind (socket, any, FALSE, &error));
  g_assert_no_error (error);
  bound = g_socket_get_local_address (socket, &error);
  g_assert_no_error (error);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

static gboolean
port_accepts (guint16 port)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) connection = NULL;

  connection = g_socket_client_connect_to_host (client, "127.0.0.1", port, NULL, NULL);
  return connection != NULL;
}

/* Starts mosquitto on the port and config already chosen; FALSE when it
 * exits at once (the port was taken meanwhile). */
static gboolean
mosquitto_launch (QipcTestMosquitto *mosquitto)
{
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
  g_autoptr(GError) error = NULL;
  gint64 deadline = g_get_monotonic_time () + TEST_WAIT_SECONDS * G_USEC_PER_SEC;

  /* A test that crashes or times out must not leave its broker behind. */
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  mosquitto->process = g_subprocess_launcher_spawn (launcher, &error,
                                                    "mosquitto", "-c", mosquitto->config, NULL);
  g_assert_no_error (error);
  while (!port_accepts (mosquitto->port))
    {
      /* No identifier once it has exited. */
      if (g_subprocess_get_identifier (mosquitto->process) == NULL)
        {
          g_clear_object (&mosquitto->process);
          return FALSE;
        }
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_usleep (5000);
    }
  return TRUE;
}

static void
mosquitto_write_config (QipcTestMosquitto *mosquitto)
{
  g_autofree char *text = NULL;
  g_autoptr(GError) error = NULL;

  /* mosquitto drops (silently) the QoS 1 messages beyond
   * max_queued_messages for a slow client, 1000 by default: a receiver
   * under a sanitizer falls that far behind a sender. */
  text = g_strdup_printf ("# A test's own broker: loopback only, no persistence.\n"
                          "listener %u 127.0.0.1\n"
                          "allow_anonymous true\n"
                          "persistence false\n"
                          "max_queued_messages 100000\n"
                          /* Run as root, it would switch to the user
                           * mosquitto, and lose its parent-death signal. */
                          "user %s\n"
                          "log_dest stderr\n"
                          "log_type error\n"
                          "log_type warning\n"
                          "%s",
                          mosquitto->port, g_get_user_name (),
                          mosquitto->tls_config != NULL ? mosquitto->tls_config : "");
  g_assert_true (g_file_set_contents (mosquitto->config, text, -1, &error));
  g_assert_no_error (error);
}

/* A mosquitto on 127.0.0.1 at a free port, with a config of its own
 * (anonymous clients, no persistence); its address is
 * qipc_test_mosquitto_get_address(). */
QipcTestMosquitto *
qipc_test_mosquitto_start (void)
{
  return qipc_test_mosquitto_start_tls (NULL, NULL, NULL);
}

/* The same with TLS (all three PEM files given) at an mqtts:// address. */
static QipcTestMosquitto *
mosquitto_new (const char *ca_file,
               const char *cert_file,
               const char *key_file)
{
  QipcTestMosquitto *mosquitto = g_new0 (QipcTestMosquitto, 1);
  g_autoptr(GError) error = NULL;

  if (ca_file != NULL)
    mosquitto->tls_config = g_strdup_printf ("cafile %s\ncertfile %s\nkeyfile %s\n",
                                             ca_file, cert_file, key_file);
  mosquitto->directory = g_dir_make_tmp ("qipc-test-mosquitto-XXXXXX", &error);
  g_assert_no_error (error);
  mosquitto->config = g_build_filename (mosquitto->directory, "mosquitto.conf", NULL);
  return mosquitto;
}

static void
mosquitto_set_port (QipcTestMosquitto *mosquitto,
                    guint16            port)
{
  mosquitto->port = port;
  g_free (mosquitto->address);
  mosquitto->address = g_strdup_printf ("%s://127.0.0.1:%u",
                                        mosquitto->tls_config != NULL ? "mqtts" : "mqtt", port);
  mosquitto_write_config (mosquitto);
}

QipcTestMosquitto *
qipc_test_mosquitto_start_tls (const char *ca_file,
                               const char *cert_file,
                               const char *key_file)
{
  QipcTestMosquitto *mosquitto = mosquitto_new (ca_file, cert_file, key_file);

  /* Another test may take the port between our look and mosquitto's. */
  for (int attempt = 0; attempt < 10; attempt++)
    {
      mosquitto_set_port (mosquitto, qipc_test_free_loopback_port ());
      if (mosquitto_launch (mosquitto))
        break;
    }
  g_assert_nonnull (mosquitto->process);
  return mosquitto;
}

/* On @port (a fixed address, for a table of servers). */
QipcTestMosquitto *
qipc_test_mosquitto_start_at (guint16 port)
{
  QipcTestMosquitto *mosquitto = mosquitto_new (NULL, NULL, NULL);

  mosquitto_set_port (mosquitto, port);
  g_assert_true (mosquitto_launch (mosquitto));
  return mosquitto;
}

/* "mqtt://127.0.0.1:PORT" */
const char *
qipc_test_mosquitto_get_address (QipcTestMosquitto *mosquitto)
{
  return mosquitto->address;
}

guint16
qipc_test_mosquitto_get_port (QipcTestMosquitto *mosquitto)
{
  return mosquitto->port;
}

/* Kills it (SIGKILL: what it had is lost), waiting for its end. */
void
qipc_test_mosquitto_stop (QipcTestMosquitto *mosquitto)
{
  if (mosquitto->process == NULL)
    return;
  g_subprocess_send_signal (mosquitto->process, SIGKILL);
  g_assert_true (g_subprocess_wait (mosquitto->process, NULL, NULL));
  g_clear_object (&mosquitto->process);
}

/* Starts it again (after a stop, or kills it first) on the same port. */
void
qipc_test_mosquitto_restart (QipcTestMosquitto *mosquitto)
{
  gint64 deadline = g_get_monotonic_time () + TEST_WAIT_SECONDS * G_USEC_PER_SEC;

  qipc_test_mosquitto_stop (mosquitto);
  while (!mosquitto_launch (mosquitto))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_usleep (50000);
    }
}

void
qipc_test_mosquitto_free (QipcTestMosquitto *mosquitto)
{
  qipc_test_mosquitto_stop (mosquitto);
  g_unlink (mosquitto->config);
  g_rmdir (mosquitto->directory);
  g_free (mosquitto->config);
  g_free (mosquitto->directory);
  g_free (mosquitto->address);
  g_free (mosquitto->tls_config);
  g_free (mosquitto);
}

/* A self-signed certificate for CN=localhost and @alt_names (as in
 * "DNS:localhost,IP:127.0.0.1"), made with openssl, valid for a day. */
gboolean
qipc_test_make_certificate (const char *cert,
                            const char *key,
                            const char *alt_names)
{
  g_autofree char *san = g_strconcat ("subjectAltName=", alt_names, NULL);
  const char *argv[] = { "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                         "-subj", "/CN=localhost", "-addext", san, "-days", "1",
                         "-keyout", key, "-out", cert, NULL };
  g_autoptr(GError) error = NULL;
  int status = -1;

  return g_spawn_sync (NULL, (char **) argv, NULL,
                       G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                       NULL, NULL, NULL, NULL, &status, &error) &&
         g_spawn_check_wait_status (status, NULL);
}

GTlsCertificate *
qipc_test_load_certificate (const char *cert,
                            const char *key)
{
  g_autoptr(GError) error = NULL;
  GTlsCertificate *certificate = g_tls_certificate_new_from_files (cert, key, &error);

  g_assert_no_error (error);
  return certificate;
}

QipcTestCertificates *
qipc_test_certificates_new (void)
{
  g_autoptr(QipcTestCertificates) certs = g_new0 (QipcTestCertificates, 1);

  certs->dir = g_dir_make_tmp ("qipc-test-tls-XXXXXX", NULL);
  g_assert_nonnull (certs->dir);
  certs->cert = g_build_filename (certs->dir, "cert.pem", NULL);
  certs->key = g_build_filename (certs->dir, "key.pem", NULL);
  certs->other_cert = g_build_filename (certs->dir, "other-cert.pem", NULL);
  certs->other_key = g_build_filename (certs->dir, "other-key.pem", NULL);
  if (!qipc_test_make_certificate (certs->cert, certs->key, "DNS:localhost,IP:127.0.0.1") ||
      !qipc_test_make_certificate (certs->other_cert, certs->other_key, "DNS:other.example"))
    return NULL;
  return g_steal_pointer (&certs);
}

void
qipc_test_certificates_free (QipcTestCertificates *certs)
{
  const char *files[] = { certs->cert, certs->key, certs->other_cert, certs->other_key };

  for (gsize i = 0; i < G_N_ELEMENTS (files); i++)
    g_unlink (files[i]);
  g_rmdir (certs->dir);
  g_free (certs->dir);
  g_free (certs->cert);
  g_free (certs->key);
  g_free (certs->other_cert);
  g_free (certs->other_key);
  g_free (certs);
}
