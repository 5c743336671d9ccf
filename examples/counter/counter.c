/* counter.c: a counter object whose signals are watched from another
 * process
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Usage: counter serve
 *        counter watch
 *
 * `serve` exports an ExampleCounter at "examples/counter" on the default
 * bus (qipc's native channels) and reads commands from its standard
 * input: "inc" adds one. `watch` makes a mirror of it: a local
 * ExampleCounter whose "value-changed" fires when the served one emits
 * it, and whose "value" property follows the served one. Its commands:
 * "set N" sets the mirror's property, which sets the served counter's.
 * When the server ends, the watcher hears "vanished" and exits.
 * counter.py and counter.js are the same program, with the same class.
 */
#include <qipc.h>

#include <gio/gunixinputstream.h>
#include <stdio.h>
#include <stdlib.h>

#define PATH "examples/counter"

/* ---- the class: property "value", signal "value-changed" (int) ---- */

#define EXAMPLE_TYPE_COUNTER (example_counter_get_type ())
G_DECLARE_FINAL_TYPE (ExampleCounter, example_counter, EXAMPLE, COUNTER, GObject)

struct _ExampleCounter
{
  GObject parent_instance;
  int value;
};

enum { PROP_VALUE = 1, N_PROPS };
static GParamSpec *properties[N_PROPS];
static guint value_changed;

G_DEFINE_FINAL_TYPE (ExampleCounter, example_counter, G_TYPE_OBJECT)

static void
example_counter_set_value (ExampleCounter *self,
                           int             value)
{
  if (self->value == value)
    return;
  self->value = value;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_VALUE]);
  g_signal_emit (self, value_changed, 0, value);
}

static void
example_counter_get_property (GObject    *object,
                              guint       prop_id,
                              GValue     *value,
                              GParamSpec *pspec)
{
  g_value_set_int (value, EXAMPLE_COUNTER (object)->value);
}

static void
example_counter_set_property (GObject      *object,
                              guint         prop_id,
                              const GValue *value,
                              GParamSpec   *pspec)
{
  example_counter_set_value (EXAMPLE_COUNTER (object), g_value_get_int (value));
}

static void
example_counter_class_init (ExampleCounterClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = example_counter_get_property;
  object_class->set_property = example_counter_set_property;
  properties[PROP_VALUE] =
    g_param_spec_int ("value", NULL, NULL, G_MININT, G_MAXINT, 0,
                      G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
  value_changed = g_signal_new ("value-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_INT);
}

static void
example_counter_init (ExampleCounter *self)
{
}

/* ---- the program ---- */

typedef struct
{
  GObject *counter;
  GMainLoop *loop;
  GDataInputStream *input;
  gboolean serving;
} App;

static void
die (GError *error)
{
  g_printerr ("counter: %s\n", error->message);
  exit (1);
}

static void
command (App        *app,
         const char *line)
{
  ExampleCounter *counter = EXAMPLE_COUNTER (app->counter);

  if (app->serving && g_str_equal (line, "inc"))
    example_counter_set_value (counter, counter->value + 1);
  else if (!app->serving && g_str_has_prefix (line, "set "))
    g_object_set (counter, "value", atoi (line + 4), NULL);   /* sets the served one too */
  else
    g_printerr ("counter: unknown command %s\n", line);
}

static void
on_line (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  App *app = user_data;
  g_autofree char *line = g_data_input_stream_read_line_finish (app->input, result, NULL, NULL);

  if (line == NULL)
    {
      g_main_loop_quit (app->loop);
      return;
    }
  command (app, line);
  g_data_input_stream_read_line_async (app->input, G_PRIORITY_DEFAULT, NULL, on_line, app);
}

static void
on_value_changed (GObject  *counter,
                  int       value,
                  gpointer  user_data)
{
  printf ("value %d\n", value);
  fflush (stdout);
}

static void
on_vanished (QipcMirror *mirror,
             App        *app)
{
  printf ("gone\n");
  fflush (stdout);
  g_main_loop_quit (app->loop);
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QipcBus) bus = NULL;
  g_autoptr(GInputStream) stdin_stream = g_unix_input_stream_new (0, FALSE);
  App app = { 0 };
  guint export_id = 0;

  if (argc != 2 || (!g_str_equal (argv[1], "serve") && !g_str_equal (argv[1], "watch")))
    {
      g_printerr ("Usage: counter serve | counter watch\n");
      return 2;
    }
  app.serving = g_str_equal (argv[1], "serve");
  app.loop = g_main_loop_new (NULL, FALSE);
  bus = qipc_bus_get_default (&error);
  if (bus == NULL)
    die (error);

  if (app.serving)
    {
      app.counter = g_object_new (EXAMPLE_TYPE_COUNTER, NULL);
      export_id = qipc_bus_export_object (bus, PATH, app.counter, QIPC_EXPORT_FLAGS_ALL, &error);
      if (export_id == 0)
        die (error);
      printf ("serving\n");
    }
  else
    {
      /* Subscribes, then reads the state: no change is missed between. */
      app.counter = qipc_mirror_new (G_OBJECT (bus), PATH, EXAMPLE_TYPE_COUNTER, &error);
      if (app.counter == NULL)
        die (error);
      g_signal_connect (qipc_mirror_get_for_object (app.counter), "vanished",
                        G_CALLBACK (on_vanished), &app);
      printf ("start %d\n", EXAMPLE_COUNTER (app.counter)->value);
    }
  fflush (stdout);
  g_signal_connect (app.counter, "value-changed", G_CALLBACK (on_value_changed), NULL);

  app.input = g_data_input_stream_new (stdin_stream);
  g_data_input_stream_read_line_async (app.input, G_PRIORITY_DEFAULT, NULL, on_line, &app);
  g_main_loop_run (app.loop);

  if (export_id != 0)
    qipc_bus_unexport_object (bus, export_id);
  g_object_unref (app.input);
  g_object_unref (app.counter);
  g_main_loop_unref (app.loop);
  return 0;
}
