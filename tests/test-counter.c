/* test-counter.c: the objects the remote-object tests export and mirror
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "test-counter.h"

struct _QipcTestCounter
{
  GObject parent_instance;
  int value;
  char *label;
};

enum { VALUE_CHANGED, INCREMENT, RESET, N_COUNTER_SIGNALS };
static guint counter_signals[N_COUNTER_SIGNALS];

enum { PROP_0, PROP_VALUE, PROP_LABEL, N_COUNTER_PROPS };
static GParamSpec *counter_props[N_COUNTER_PROPS];

G_DEFINE_FINAL_TYPE (QipcTestCounter, qipc_test_counter, G_TYPE_OBJECT)

static void
qipc_test_counter_finalize (GObject *object)
{
  g_free (QIPC_TEST_COUNTER (object)->label);
  G_OBJECT_CLASS (qipc_test_counter_parent_class)->finalize (object);
}

static void
qipc_test_counter_get_property (GObject    *object,
                                guint       prop_id,
                                GValue     *value,
                                GParamSpec *pspec)
{
  QipcTestCounter *self = QIPC_TEST_COUNTER (object);

  switch (prop_id)
    {
    case PROP_VALUE: g_value_set_int (value, self->value); break;
    case PROP_LABEL: g_value_set_string (value, self->label); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
qipc_test_counter_set_property (GObject      *object,
                                guint         prop_id,
                                const GValue *value,
                                GParamSpec   *pspec)
{
  QipcTestCounter *self = QIPC_TEST_COUNTER (object);

  switch (prop_id)
    {
    case PROP_VALUE:
      qipc_test_counter_set_value (self, g_value_get_int (value));
      break;
    case PROP_LABEL:
      if (g_strcmp0 (self->label, g_value_get_string (value)) != 0)
        {
          g_free (self->label);
          self->label = g_value_dup_string (value);
          g_object_notify_by_pspec (object, counter_props[PROP_LABEL]);
        }
      break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static int
counter_increment (QipcTestCounter *self,
                   int              by)
{
  qipc_test_counter_set_value (self, self->value + by);
  return self->value;
}

static void
counter_reset (QipcTestCounter *self)
{
  qipc_test_counter_set_value (self, 0);
}

static void
qipc_test_counter_class_init (QipcTestCounterClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = qipc_test_counter_finalize;
  object_class->get_property = qipc_test_counter_get_property;
  object_class->set_property = qipc_test_counter_set_property;

  counter_props[PROP_VALUE] =
    g_param_spec_int ("value", NULL, NULL, G_MININT, G_MAXINT, 0,
                      G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  counter_props[PROP_LABEL] =
    g_param_spec_string ("label", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_COUNTER_PROPS, counter_props);

  counter_signals[VALUE_CHANGED] =
    g_signal_new ("value-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_INT, G_TYPE_STRING);
  counter_signals[INCREMENT] =
    g_signal_new_class_handler ("increment", G_TYPE_FROM_CLASS (klass),
                                G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION,
                                G_CALLBACK (counter_increment), NULL, NULL, NULL,
                                G_TYPE_INT, 1, G_TYPE_INT);
  counter_signals[RESET] =
    g_signal_new_class_handler ("reset", G_TYPE_FROM_CLASS (klass),
                                G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION,
                                G_CALLBACK (counter_reset), NULL, NULL, NULL,
                                G_TYPE_NONE, 0);
}

static void
qipc_test_counter_init (QipcTestCounter *self)
{
}

QipcTestCounter *
qipc_test_counter_new (void)
{
  return g_object_new (QIPC_TEST_TYPE_COUNTER, NULL);
}

int
qipc_test_counter_get_value (QipcTestCounter *self)
{
  return self->value;
}

void
qipc_test_counter_set_value (QipcTestCounter *self,
                             int              value)
{
  if (self->value == value)
    return;
  self->value = value;
  g_object_notify_by_pspec (G_OBJECT (self), counter_props[PROP_VALUE]);
  g_signal_emit (self, counter_signals[VALUE_CHANGED], 0, value, self->label);
}

/* ------------------------------------------------------------------ */

struct _QipcTestOddball
{
  GObject parent_instance;
  gpointer handle;
};

enum { PROP_ODD_0, PROP_HANDLE, N_ODDBALL_PROPS };

G_DEFINE_FINAL_TYPE (QipcTestOddball, qipc_test_oddball, G_TYPE_OBJECT)

static void
qipc_test_oddball_get_property (GObject    *object,
                                guint       prop_id,
                                GValue     *value,
                                GParamSpec *pspec)
{
  g_value_set_pointer (value, QIPC_TEST_ODDBALL (object)->handle);
}

static void
qipc_test_oddball_set_property (GObject      *object,
                                guint         prop_id,
                                const GValue *value,
                                GParamSpec   *pspec)
{
  QIPC_TEST_ODDBALL (object)->handle = g_value_get_pointer (value);
}

static void
qipc_test_oddball_class_init (QipcTestOddballClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = qipc_test_oddball_get_property;
  object_class->set_property = qipc_test_oddball_set_property;
  g_object_class_install_property (object_class, PROP_HANDLE,
    g_param_spec_pointer ("handle", NULL, NULL,
                          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));
  g_signal_new ("raw", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_POINTER);
  g_signal_new ("fine", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_INT);
}

static void
qipc_test_oddball_init (QipcTestOddball *self)
{
}
