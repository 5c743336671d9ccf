/* qipc.c: the qipc command-line tool
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * `qipc COMMAND [OPTION…] [ARG…]`: sends and watches the messages of qipc
 * channels, asks the broker what it knows, and runs a broker; `qipc shm`
 * and `qipc sem` (tools/qipc-shm-sem.c) work on shared memory and
 * semaphores. Every command is a function of qipc-tool.h's shape that
 * returns one of its exit statuses; the table at the end lists them.
 *
 * The line formats and exit statuses are an interface for scripts,
 * documented in docs/qipc.1 and docs/cli.md: change them only there
 * first.
 */

#include <qipc.h>
#include <json-glib/json-glib.h>

#include "broker-tls.h"
#include "qipc-tool.h"
#include "qipc-json-private.h"

#include <glib-unix.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROGRAM "qipc"

/* Errors in the data given on the command line that neither
 * g_variant_parse() nor json-glib report (a JSON value that does not
 * fit the type asked for, say). */
#define DATA_ERROR (data_error_quark ())
static G_DEFINE_QUARK (qipc-tool-data-error, data_error)

/* ------------------------------------------------------------------ */
/* Errors and exit statuses                                            */

static int
exit_status_for (const GError *error)
{
  if (error->domain == G_VARIANT_PARSE_ERROR ||
      error->domain == JSON_PARSER_ERROR ||
      error->domain == DATA_ERROR ||
      error->domain == QIPC_JSON_ERROR)
    return QIPC_EXIT_BAD_DATA;
  if (error->domain == G_OPTION_ERROR)
    return QIPC_EXIT_USAGE;
  if (error->domain == QIPC_BUS_ERROR)
    switch ((QipcBusError) error->code)
      {
      case QIPC_BUS_ERROR_INVALID_ADDRESS:
      case QIPC_BUS_ERROR_INVALID_NAME:
        return QIPC_EXIT_USAGE;
      case QIPC_BUS_ERROR_BROKER_NOT_FOUND:
      case QIPC_BUS_ERROR_DISCONNECTED:
        return QIPC_EXIT_NO_BROKER;
      case QIPC_BUS_ERROR_ACCESS_DENIED:
        return QIPC_EXIT_DENIED;
      default:
        return QIPC_EXIT_FAILED;
      }
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED))
    return QIPC_EXIT_DENIED;
  return QIPC_EXIT_FAILED;
}

int
qipc_tool_failv (const char *command,
                 int         status,
                 const char *format,
                 va_list     args)
{
  g_autofree char *message = g_strdup_vprintf (format, args);

  if (status == QIPC_EXIT_USAGE)
    g_printerr ("%s %s: %s (see %s %s --help)\n", PROGRAM, command, message, PROGRAM, command);
  else
    g_printerr ("%s %s: %s\n", PROGRAM, command, message);
  return status;
}

int
qipc_tool_fail (const char *command,
                int         status,
                const char *format,
                ...)
{
  va_list args;

  va_start (args, format);
  status = qipc_tool_failv (command, status, format, args);
  va_end (args);
  return status;
}

int
qipc_tool_usage_error (const char *command,
                       const char *format,
                       ...)
{
  va_list args;
  int status;

  va_start (args, format);
  status = qipc_tool_failv (command, QIPC_EXIT_USAGE, format, args);
  va_end (args);
  return status;
}

/* Prints "qipc COMMAND: message" and returns the status for @error. */
static int
fail (const char   *command,
      const GError *error)
{
  return qipc_tool_fail (command, exit_status_for (error), "%s", error->message);
}

/* Parses a command's options; argv[0] is the command. --help prints
 * the command's help and exits with 0. */
static gboolean
parse_command_line (const char          *command,
                    const char          *parameters,
                    const char          *summary,
                    const GOptionEntry  *entries,
                    int                 *argc,
                    char              ***argv,
                    int                 *status)
{
  g_autoptr(GOptionContext) context = g_option_context_new (parameters);
  g_autoptr(GError) error = NULL;
  g_autofree char *prgname = g_strdup_printf ("%s %s", PROGRAM, command);

  /* The usage line reads "qipc send [OPTION…] …". */
  g_set_prgname (prgname);
  g_option_context_set_summary (context, summary);
  g_option_context_set_description (context,
                                    "Exit status: 0 success, 1 no (is-registered) or nothing received "
                                    "(listen, monitor), 2 usage error, 3 malformed data, 4 no broker, "
                                    "5 permission refused, 6 other error. See qipc(1).");
  g_option_context_add_main_entries (context, entries, NULL);
  /* A negative number is data, not an unknown option: unknown options
   * are left in place, and told apart below. */
  g_option_context_set_ignore_unknown_options (context, TRUE);
  if (!g_option_context_parse (context, argc, argv, &error))
    {
      *status = qipc_tool_usage_error (command, "%s", error->message);
      return FALSE;
    }

  /* Keep the arguments; drop the first "--", after which anything is
   * an argument. */
  for (int i = 1, after_dashes = FALSE; i < *argc; i++)
    {
      const char *arg = (*argv)[i];

      if (!after_dashes && strcmp (arg, "--") == 0)
        {
          after_dashes = TRUE;
          memmove (*argv + i, *argv + i + 1, (*argc - i) * sizeof (char *));
          (*argc)--;
          i--;
          continue;
        }
      if (!after_dashes && arg[0] == '-' && arg[1] != '\0' &&
          !g_ascii_isdigit (arg[1]) && arg[1] != '.')
        {
          *status = qipc_tool_usage_error (command, "Unknown option %s", arg);
          return FALSE;
        }
    }
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* The bus                                                             */

static char *opt_address;
static gboolean opt_json;
static char *opt_type;

#define ADDRESS_ENTRY \
  { "address", 'a', 0, G_OPTION_ARG_STRING, &opt_address, \
    "Use the broker at ADDR (default: $QIPC_BUS_ADDRESS, else the per-user broker, " \
    "started if none runs)", "ADDR" }

/* Connects to --address, or to the default bus. A failure here is
 * about the broker, not the request: report it as such. */
static QipcBus *
connect_bus (const char *command,
             int        *status)
{
  g_autoptr(GError) error = NULL;
  QipcBus *bus;

  if (opt_address != NULL)
    bus = qipc_bus_new_for_address (opt_address, &error);
  else
    bus = qipc_bus_get_default (&error);
  if (bus != NULL)
    return bus;

  qipc_tool_fail (command, QIPC_EXIT_FAILED, "Cannot connect to the broker: %s", error->message);
  if (g_error_matches (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_INVALID_ADDRESS))
    *status = QIPC_EXIT_USAGE;
  else if (g_error_matches (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_ACCESS_DENIED) ||
           g_error_matches (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED))
    *status = QIPC_EXIT_DENIED;
  else
    *status = QIPC_EXIT_NO_BROKER;
  return NULL;
}

/* --type, checked: NULL when not given. */
static gboolean
get_type_option (const char           *command,
                 const GVariantType  **type,
                 int                  *status)
{
  *type = NULL;
  if (opt_type == NULL)
    return TRUE;
  if (!g_variant_type_string_is_valid (opt_type))
    {
      *status = qipc_tool_usage_error (command, "\"%s\" is not a GVariant type", opt_type);
      return FALSE;
    }
  if (!g_variant_type_is_definite (G_VARIANT_TYPE (opt_type)))
    {
      *status = qipc_tool_usage_error (command, "\"%s\" is not a definite GVariant type "
                                       "(no \"*\", \"?\", \"r\" or \"v\" at the top)", opt_type);
      return FALSE;
    }
  *type = G_VARIANT_TYPE (opt_type);
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* Reading and printing messages                                       */

/* "Malformed GVariant text: " and @parse_error's message, with the
 * text underlined where the position is known. */
static void
set_parse_error (GError       **error,
                 const GError  *parse_error,
                 const char    *text)
{
  g_autofree char *context = g_variant_parse_error_print_context ((GError *) parse_error, text);
  const char *message = parse_error->message;
  const char *colon = strchr (message, ':');

  if (context != NULL)
    {
      /* The message starts with the position ("7:" or "4-7:", in bytes
       * from 0); the context underlines it in the text. */
      g_strchomp (context);
      g_set_error (error, parse_error->domain, parse_error->code,
                   "Malformed GVariant text: %s%s", message,
                   strchr (context, '\n') != NULL ? strchr (context, '\n') : "");
      return;
    }
  /* Some errors (nesting too deep) have no position to show, and GLib
   * 2.74 puts a meaningless one before their message. */
  if (colon != NULL && strspn (message, "0123456789-") == (gsize) (colon - message))
    message = colon + 1;
  g_set_error (error, parse_error->domain, parse_error->code,
               "Malformed GVariant text: %s", message);
}

/* DATA from the command line (or stdin for "-"), as GVariant text or
 * JSON; NULL with no error for JSON null. */
static gboolean
parse_data (const char          *text,
            const GVariantType  *type,
            gboolean             json,
            GVariant           **data,
            GError             **error)
{
  g_autofree char *from_stdin = NULL;

  *data = NULL;
  if (strcmp (text, "-") == 0)
    {
      g_autoptr(GIOChannel) in = g_io_channel_unix_new (0);
      gsize length;

      if (g_io_channel_read_to_end (in, &from_stdin, &length, error) != G_IO_STATUS_NORMAL)
        {
          g_prefix_error (error, "Cannot read the data from standard input: ");
          return FALSE;
        }
      if (strlen (from_stdin) != length)
        {
          g_set_error_literal (error, DATA_ERROR, 0, "The data on standard input has a NUL byte");
          return FALSE;
        }
      text = from_stdin;
    }

  if (json)
    {
      g_autoptr(JsonParser) parser = json_parser_new_immutable ();
      JsonNode *root;

      if (!_qipc_json_load (parser, text, -1, error))
        {
          g_prefix_error (error, "Malformed JSON: ");
          return FALSE;
        }
      root = json_parser_get_root (parser);
      if (root == NULL)
        {
          g_set_error_literal (error, DATA_ERROR, 0, "Malformed JSON: no value");
          return FALSE;
        }
      if (JSON_NODE_HOLDS_NULL (root) && (type == NULL || !g_variant_type_is_maybe (type)))
        return TRUE;
      *data = _qipc_json_to_variant (root, type, "data", error);
      if (*data == NULL)
        {
          g_prefix_error (error, "JSON does not fit: ");
          return FALSE;
        }
      g_variant_ref_sink (*data);
      return TRUE;
    }
  else
    {
      g_autoptr(GError) parse_error = NULL;

      /* A full reference already, not a floating one. */
      *data = g_variant_parse (type, text, NULL, NULL, &parse_error);
      if (*data != NULL)
        return TRUE;
      set_parse_error (error, parse_error, text);
      return FALSE;
    }
}

/* One line per message: "CHANNEL<tab>MESSAGE[<tab>DATA]" with DATA in
 * GVariant text format, types annotated; or a JSON object, or a line on
 * standard error for data that JSON cannot hold. */
static void
print_message (const char *command,
               const char *channel,
               const char *message,
               GVariant   *data,
               gboolean    json)
{
  if (json)
    {
      g_autoptr(JsonBuilder) builder = json_builder_new ();
      g_autoptr(JsonNode) root = NULL;
      g_autoptr(JsonNode) json_data = NULL;
      g_autoptr(GString) line = g_string_new (NULL);
      g_autoptr(GError) error = NULL;

      if (data != NULL && (json_data = _qipc_json_from_variant (data, 0, &error)) == NULL)
        {
          qipc_tool_fail (command, QIPC_EXIT_BAD_DATA, "A message %s on %s cannot be written as JSON: %s",
                          message, channel, error->message);
          return;
        }

      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "channel");
      json_builder_add_string_value (builder, channel);
      json_builder_set_member_name (builder, "message");
      json_builder_add_string_value (builder, message);
      json_builder_set_member_name (builder, "data");
      if (data != NULL)
        json_builder_add_value (builder, g_steal_pointer (&json_data));
      else
        json_builder_add_null_value (builder);
      json_builder_set_member_name (builder, "type");
      if (data != NULL)
        json_builder_add_string_value (builder, g_variant_get_type_string (data));
      else
        json_builder_add_null_value (builder);
      json_builder_set_member_name (builder, "time");
      json_builder_add_double_value (builder, g_get_real_time () / (double) G_USEC_PER_SEC);
      json_builder_end_object (builder);

      root = json_builder_get_root (builder);
      /* Not json-glib's generator: it writes some doubles (1e+40) as
       * text that is not JSON. */
      _qipc_json_write (root, line);
      g_print ("%s\n", line->str);
    }
  else if (data != NULL)
    {
      g_autofree char *text = g_variant_print (data, TRUE);
      g_print ("%s\t%s\t%s\n", channel, message, text);
    }
  else
    g_print ("%s\t%s\n", channel, message);
  fflush (stdout);
}

/* ------------------------------------------------------------------ */
/* qipc send                                                           */

static int
cmd_send (int    argc,
          char **argv)
{
  const GOptionEntry entries[] = {
    ADDRESS_ENTRY,
    { "json", 'j', 0, G_OPTION_ARG_NONE, &opt_json,
      "DATA is JSON, not GVariant text", NULL },
    { "type", 't', 0, G_OPTION_ARG_STRING, &opt_type,
      "DATA has the GVariant type TYPE (\"ay\" takes base64 in JSON)", "TYPE" },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(QipcBus) bus = NULL;
  g_autoptr(GVariant) data = NULL;
  g_autoptr(GError) error = NULL;
  const GVariantType *type;
  int status = QIPC_EXIT_OK;

  if (!parse_command_line ("send", "CHANNEL MESSAGE [DATA]",
                           "Sends MESSAGE to every listener of CHANNEL, with DATA in GVariant "
                           "text format (such as '(1, \"x\")') or, with --json, as JSON. "
                           "DATA \"-\" reads it from standard input.",
                           entries, &argc, &argv, &status))
    return status;
  if (argc < 3)
    return qipc_tool_usage_error ("send", "CHANNEL and MESSAGE are needed");
  if (argc > 4)
    return qipc_tool_usage_error ("send", "Unexpected argument \"%s\"", argv[4]);
  if (!get_type_option ("send", &type, &status))
    return status;
  if (argc == 4 && !parse_data (argv[3], type, opt_json, &data, &error))
    return fail ("send", error);

  bus = connect_bus ("send", &status);
  if (bus == NULL)
    return status;
  /* The flush tells whether the broker took it, or its policy refused. */
  if (!qipc_channel_send_for_bus (bus, argv[1], argv[2], data, &error) ||
      !qipc_channel_flush_for_bus (bus, &error))
    return fail ("send", error);
  qipc_bus_close (bus);
  return QIPC_EXIT_OK;
}

/* ------------------------------------------------------------------ */
/* qipc listen, qipc monitor                                           */

typedef struct
{
  const char *command; /* "listen" or "monitor", for messages */
  GMainLoop *loop;
  gboolean json;
  gint64 count;        /* stop after this many; 0: never */
  gint64 received;
  gboolean timed_out;
  GError *error;       /* why the bus ended */
} Watch;

static gint64 opt_count;
static double opt_timeout;

static void
watch_got (Watch      *watch,
           const char *channel,
           const char *message,
           GVariant   *data)
{
  if (watch->count > 0 && watch->received >= watch->count)
    return;
  print_message (watch->command, channel, message, data, watch->json);
  watch->received++;
  if (watch->count > 0 && watch->received >= watch->count)
    g_main_loop_quit (watch->loop);
}

static void
on_received (QipcChannel *channel,
             const char  *message,
             GVariant    *data,
             gpointer     user_data)
{
  watch_got (user_data, qipc_channel_get_message_channel (channel), message, data);
}

static void
on_monitored (QipcBus    *bus,
              const char *channel,
              const char *message,
              GVariant   *data,
              gpointer    user_data)
{
  watch_got (user_data, channel, message, data);
}

static void
on_messages_lost (QipcBus  *bus,
                  guint64   n_lost,
                  gpointer  user_data)
{
  Watch *watch = user_data;

  qipc_tool_fail (watch->command, QIPC_EXIT_FAILED,
                  "%" G_GUINT64_FORMAT " messages lost: this process did not keep up", n_lost);
}

static gboolean
on_timeout (gpointer user_data)
{
  Watch *watch = user_data;

  watch->timed_out = TRUE;
  g_main_loop_quit (watch->loop);
  return G_SOURCE_REMOVE;
}

static gboolean
on_quit_signal (gpointer user_data)
{
  Watch *watch = user_data;

  g_main_loop_quit (watch->loop);
  return G_SOURCE_CONTINUE;
}

static gboolean
check_watch_options (const char *command,
                     int        *status)
{
  if (opt_count < 0)
    {
      *status = qipc_tool_usage_error (command, "--count needs a number from 0 up, not %" G_GINT64_FORMAT,
                             opt_count);
      return FALSE;
    }
  if (!(opt_timeout >= 0 && opt_timeout <= G_MAXUINT / 1000))
    {
      *status = qipc_tool_usage_error (command, "--timeout needs seconds from 0 up, not %g", opt_timeout);
      return FALSE;
    }
  return TRUE;
}

/* Runs until --count messages, --timeout, SIGINT or SIGTERM. */
static int
watch_run (Watch *watch)
{
  guint timeout_source = 0;
  guint int_source, term_source;

  watch->loop = g_main_loop_new (NULL, FALSE);
  watch->json = opt_json;
  watch->count = opt_count;
  if (opt_timeout > 0)
    timeout_source = g_timeout_add (opt_timeout * 1000, on_timeout, watch);
  int_source = g_unix_signal_add (SIGINT, on_quit_signal, watch);
  term_source = g_unix_signal_add (SIGTERM, on_quit_signal, watch);

  g_main_loop_run (watch->loop);

  if (!watch->timed_out)
    g_clear_handle_id (&timeout_source, g_source_remove);
  g_source_remove (int_source);
  g_source_remove (term_source);
  g_main_loop_unref (watch->loop);
  return watch->timed_out && watch->received == 0 ? QIPC_EXIT_FALSE : QIPC_EXIT_OK;
}

#define WATCH_ENTRIES \
  ADDRESS_ENTRY, \
  { "json", 'j', 0, G_OPTION_ARG_NONE, &opt_json, \
    "Print one JSON object a line: channel, message, data, type, time", NULL }, \
  { "count", 'n', 0, G_OPTION_ARG_INT64, &opt_count, \
    "Exit after N messages", "N" }, \
  { "timeout", 0, 0, G_OPTION_ARG_DOUBLE, &opt_timeout, \
    "Exit after SECONDS (status 1 if nothing came)", "SECONDS" }

static int
cmd_listen (int    argc,
            char **argv)
{
  const GOptionEntry entries[] = { WATCH_ENTRIES, G_OPTION_ENTRY_NULL };
  g_autoptr(QipcBus) bus = NULL;
  g_autoptr(GPtrArray) channels = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GError) error = NULL;
  Watch watch = { .command = "listen" };
  int status = QIPC_EXIT_OK;

  if (!parse_command_line ("listen", "PATTERN…",
                           "Prints each message sent to a channel that a PATTERN matches, "
                           "one line each, as it arrives. In a pattern, \"*\" matches one "
                           "segment of a channel name and a last \"**\" any number.",
                           entries, &argc, &argv, &status))
    return status;
  if (argc < 2)
    return qipc_tool_usage_error ("listen", "A channel name or pattern is needed");
  if (!check_watch_options ("listen", &status))
    return status;

  bus = connect_bus ("listen", &status);
  if (bus == NULL)
    return status;
  g_signal_connect (bus, "messages-lost", G_CALLBACK (on_messages_lost), &watch);
  for (int i = 1; i < argc; i++)
    {
      QipcChannel *channel = qipc_channel_new_for_bus (bus, argv[i], &error);

      if (channel == NULL)
        return fail ("listen", error);
      g_signal_connect (channel, "received", G_CALLBACK (on_received), &watch);
      g_ptr_array_add (channels, channel);
    }
  /* Registered for sure once the broker answers: the broker refusing
   * us shows here. */
  if (!qipc_channel_flush_for_bus (bus, &error))
    return fail ("listen", error);

  status = watch_run (&watch);
  for (guint i = 0; i < channels->len; i++)
    g_signal_handlers_disconnect_by_data (channels->pdata[i], &watch);
  g_signal_handlers_disconnect_by_data (bus, &watch);
  return status;
}

static int
cmd_monitor (int    argc,
             char **argv)
{
  const GOptionEntry entries[] = { WATCH_ENTRIES, G_OPTION_ENTRY_NULL };
  g_autoptr(QipcBus) bus = NULL;
  g_autoptr(GError) error = NULL;
  Watch watch = { .command = "monitor" };
  int status = QIPC_EXIT_OK;

  if (!parse_command_line ("monitor", NULL,
                           "Prints every message the broker routes, one line each, as it "
                           "arrives. The broker's own user may always monitor; others when "
                           "the broker's policy allows them.",
                           entries, &argc, &argv, &status))
    return status;
  if (argc > 1)
    return qipc_tool_usage_error ("monitor", "Unexpected argument \"%s\"", argv[1]);
  if (!check_watch_options ("monitor", &status))
    return status;

  bus = connect_bus ("monitor", &status);
  if (bus == NULL)
    return status;
  g_signal_connect (bus, "monitored", G_CALLBACK (on_monitored), &watch);
  g_signal_connect (bus, "messages-lost", G_CALLBACK (on_messages_lost), &watch);
  if (!qipc_bus_start_monitor (bus, &error))
    return fail ("monitor", error);

  status = watch_run (&watch);
  g_signal_handlers_disconnect_by_data (bus, &watch);
  return status;
}

/* ------------------------------------------------------------------ */
/* qipc channels, qipc is-registered                                   */

static int
compare_entries (gconstpointer a,
                 gconstpointer b)
{
  const char *name_a, *name_b;

  g_variant_get (*(GVariant **) a, "(&su)", &name_a, NULL);
  g_variant_get (*(GVariant **) b, "(&su)", &name_b, NULL);
  return strcmp (name_a, name_b);
}

static int
cmd_channels (int    argc,
              char **argv)
{
  const GOptionEntry entries[] = {
    ADDRESS_ENTRY,
    { "json", 'j', 0, G_OPTION_ARG_NONE, &opt_json,
      "Print one JSON object a line: channel, listeners", NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(QipcBus) bus = NULL;
  g_autoptr(GVariant) list = NULL;
  g_autoptr(GPtrArray) entries_sorted = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
  g_autoptr(GError) error = NULL;
  int status = QIPC_EXIT_OK;

  if (!parse_command_line ("channels", NULL,
                           "Lists the channel names and patterns that have listeners on the "
                           "broker, sorted, one a line with its number of listeners.",
                           entries, &argc, &argv, &status))
    return status;
  if (argc > 1)
    return qipc_tool_usage_error ("channels", "Unexpected argument \"%s\"", argv[1]);

  bus = connect_bus ("channels", &status);
  if (bus == NULL)
    return status;
  list = qipc_bus_list_channels (bus, &error);
  if (list == NULL)
    return fail ("channels", error);

  for (gsize i = 0; i < g_variant_n_children (list); i++)
    g_ptr_array_add (entries_sorted, g_variant_get_child_value (list, i));
  g_ptr_array_sort (entries_sorted, compare_entries);
  for (guint i = 0; i < entries_sorted->len; i++)
    {
      const char *name;
      guint32 n_listeners;

      g_variant_get (entries_sorted->pdata[i], "(&su)", &name, &n_listeners);
      if (opt_json)
        {
          g_autoptr(JsonBuilder) builder = json_builder_new ();
          g_autoptr(JsonGenerator) generator = json_generator_new ();
          g_autoptr(JsonNode) root = NULL;
          g_autofree char *line = NULL;

          json_builder_begin_object (builder);
          json_builder_set_member_name (builder, "channel");
          json_builder_add_string_value (builder, name);
          json_builder_set_member_name (builder, "listeners");
          json_builder_add_int_value (builder, n_listeners);
          json_builder_end_object (builder);
          root = json_builder_get_root (builder);
          json_generator_set_root (generator, root);
          line = json_generator_to_data (generator, NULL);
          g_print ("%s\n", line);
        }
      else
        g_print ("%s\t%u\n", name, n_listeners);
    }
  qipc_bus_close (bus);
  return QIPC_EXIT_OK;
}

static int
cmd_is_registered (int    argc,
                   char **argv)
{
  const GOptionEntry entries[] = { ADDRESS_ENTRY, G_OPTION_ENTRY_NULL };
  g_autoptr(QipcBus) bus = NULL;
  g_autoptr(GError) error = NULL;
  int status = QIPC_EXIT_OK;
  gboolean registered;

  if (!parse_command_line ("is-registered", "CHANNEL",
                           "Exits with status 0 if some process listens on a channel matching "
                           "CHANNEL, 1 if none does. Prints nothing.",
                           entries, &argc, &argv, &status))
    return status;
  if (argc != 2)
    return argc < 2 ? qipc_tool_usage_error ("is-registered", "CHANNEL is needed")
                    : qipc_tool_usage_error ("is-registered", "Unexpected argument \"%s\"", argv[2]);

  bus = connect_bus ("is-registered", &status);
  if (bus == NULL)
    return status;
  registered = qipc_channel_is_registered_for_bus (bus, argv[1], &error);
  if (error != NULL)
    return fail ("is-registered", error);
  qipc_bus_close (bus);
  return registered ? QIPC_EXIT_OK : QIPC_EXIT_FALSE;
}

/* ------------------------------------------------------------------ */
/* qipc broker                                                         */

static char **opt_addresses;
static char *opt_policy;
static char *opt_tls_certificate;
static char *opt_tls_key;
static gboolean opt_quiet;

static gboolean
on_broker_signal (gpointer user_data)
{
  g_message ("Terminated by a signal: exiting");
  g_main_loop_quit (user_data);
  return G_SOURCE_CONTINUE;
}

/* The per-user address, as the library's default bus has it. */
static char *
default_address (void)
{
  const char *env = g_getenv ("QIPC_BUS_ADDRESS");

  if (env != NULL && *env != '\0')
    return g_strdup (env);
  return g_strdup_printf ("unix:path=%s/qipc/bus", g_get_user_runtime_dir ());
}

static int
cmd_broker (int    argc,
            char **argv)
{
  const GOptionEntry entries[] = {
    { "address", 'a', 0, G_OPTION_ARG_STRING_ARRAY, &opt_addresses,
      "Listen at ADDR (repeatable; default: $QIPC_BUS_ADDRESS, else the per-user address)",
      "ADDR" },
    { "policy", 'p', 0, G_OPTION_ARG_FILENAME, &opt_policy,
      "Admit the clients that the JSON policy FILE allows (default: this user only)", "FILE" },
    { "tls-certificate", 0, 0, G_OPTION_ARG_FILENAME, &opt_tls_certificate,
      "Present the PEM certificate in FILE to clients on TCP, which is always TLS", "FILE" },
    { "tls-key", 0, 0, G_OPTION_ARG_FILENAME, &opt_tls_key,
      "The certificate's PEM private key (default: in the --tls-certificate file)", "FILE" },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &opt_quiet,
      "Log only warnings and notable events, not every client", NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(QipcBroker) broker = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *fallback = NULL;
  int status = QIPC_EXIT_OK;
  guint int_source, term_source;

  if (!parse_command_line ("broker", NULL,
                           "Runs a channel broker in the foreground, logging to standard error, "
                           "until SIGINT or SIGTERM. The qipc-broker daemon does the same as a "
                           "service.",
                           entries, &argc, &argv, &status))
    return status;
  if (argc > 1)
    return qipc_tool_usage_error ("broker", "Unexpected argument \"%s\"", argv[1]);
  if (!opt_quiet)
    g_log_set_debug_enabled (TRUE);

  broker = qipc_broker_new ();
  if (opt_policy != NULL && !qipc_broker_set_policy_from_file (broker, opt_policy, &error))
    return fail ("broker", error);
  if (!broker_tls_configure (broker, opt_tls_certificate, opt_tls_key, &error))
    return fail ("broker", error);
  if (opt_addresses == NULL)
    {
      fallback = default_address ();
      opt_addresses = g_new0 (char *, 2);
      opt_addresses[0] = g_strdup (fallback);
    }
  for (char **address = opt_addresses; *address != NULL; address++)
    {
      if (!qipc_broker_listen (broker, *address, &error))
        {
          /* Taken by another broker: that is the "no" of this command. */
          if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE) ||
              g_error_matches (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_ADDRESS_IN_USE))
            return qipc_tool_fail ("broker", QIPC_EXIT_FAILED, "%s", error->message);
          return fail ("broker", error);
        }
      /* Without --quiet the library's debug messages say it. */
      if (opt_quiet)
        g_message ("Listening at %s", *address);
    }

  loop = g_main_loop_new (NULL, FALSE);
  int_source = g_unix_signal_add (SIGINT, on_broker_signal, loop);
  term_source = g_unix_signal_add (SIGTERM, on_broker_signal, loop);
  g_main_loop_run (loop);
  g_source_remove (int_source);
  g_source_remove (term_source);
  qipc_broker_close (broker);
  return QIPC_EXIT_OK;
}

/* ------------------------------------------------------------------ */
/* qipc shm, qipc sem: stand-ins until tools/qipc-shm-sem.c is built   */

static int
missing_command (const char *command)
{
  g_printerr ("%s %s: This qipc was built without the command\n", PROGRAM, command);
  return QIPC_EXIT_USAGE;
}

__attribute__ ((weak)) int
qipc_cmd_shm (int    argc,
              char **argv)
{
  return missing_command ("shm");
}

__attribute__ ((weak)) int
qipc_cmd_sem (int    argc,
              char **argv)
{
  return missing_command ("sem");
}

/* ------------------------------------------------------------------ */
/* Dispatch                                                            */

typedef struct
{
  const char *name;
  int (* run) (int argc, char **argv);
  const char *summary;
} Command;

static const Command commands[] = {
  { "send", cmd_send, "Send a message to a channel" },
  { "listen", cmd_listen, "Print the messages of channels as they arrive" },
  { "monitor", cmd_monitor, "Print every message the broker routes" },
  { "channels", cmd_channels, "List the channels that have listeners" },
  { "is-registered", cmd_is_registered, "Tell by the exit status whether a channel has listeners" },
  { "broker", cmd_broker, "Run a channel broker in the foreground" },
  { "shm", qipc_cmd_shm, "Create, read and write shared memory segments" },
  { "sem", qipc_cmd_sem, "Acquire and release system semaphores" },
};

static void
print_usage (FILE *out)
{
  fprintf (out,
           "Usage:\n"
           "  %s COMMAND [OPTION…] [ARG…]\n"
           "\n"
           "Commands:\n", PROGRAM);
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    fprintf (out, "  %-15s %s\n", commands[i].name, commands[i].summary);
  fprintf (out,
           "\n"
           "Options:\n"
           "  -h, --help      Show this help (COMMAND --help: the command's)\n"
           "  --version       Print the version and exit\n"
           "\n"
           "See qipc(1) for the output formats and the exit statuses.\n");
}

int
main (int    argc,
      char **argv)
{
  const char *name;

  /* Messages, file names included, in the user's charset. */
  setlocale (LC_ALL, "");
  g_set_prgname (PROGRAM);

  if (argc < 2)
    {
      print_usage (stderr);
      return QIPC_EXIT_USAGE;
    }
  name = argv[1];
  if (strcmp (name, "--help") == 0 || strcmp (name, "-h") == 0 || strcmp (name, "help") == 0)
    {
      /* "qipc help send" is "qipc send --help". */
      if (strcmp (name, "help") == 0 && argc > 2)
        {
          char *help_argv[] = { argv[2], (char *) "--help", NULL };

          for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
            if (strcmp (commands[i].name, argv[2]) == 0)
              return commands[i].run (2, help_argv);
          g_printerr ("%s: Unknown command \"%s\" (see %s --help)\n", PROGRAM, argv[2], PROGRAM);
          return QIPC_EXIT_USAGE;
        }
      print_usage (stdout);
      return QIPC_EXIT_OK;
    }
  if (strcmp (name, "--version") == 0)
    {
      g_print ("%s %s\n", PROGRAM, QIPC_VERSION_S);
      return QIPC_EXIT_OK;
    }

  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    if (strcmp (commands[i].name, name) == 0)
      return commands[i].run (argc - 1, argv + 1);

  g_printerr ("%s: Unknown command \"%s\" (see %s --help)\n", PROGRAM, name, PROGRAM);
  return QIPC_EXIT_USAGE;
}
