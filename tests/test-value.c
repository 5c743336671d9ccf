/* test-value.c: the GValue <-> GVariant mapping and the D-Bus names
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "qipc-value-private.h"
#include "test-counter.h"

static void
round_trip (const GValue    *in,
            const char      *expected_type,
            QipcValueFlavor  flavor)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) variant = _qipc_value_to_variant (in, flavor, &error);
  g_auto(GValue) out = G_VALUE_INIT;
  g_autofree char *a = NULL, *b = NULL;

  g_assert_no_error (error);
  g_variant_ref_sink (variant);
  g_assert_cmpstr (g_variant_get_type_string (variant), ==, expected_type);
  g_value_init (&out, G_VALUE_TYPE (in));
  g_assert_true (_qipc_value_from_variant (variant, &out, flavor, &error));
  g_assert_no_error (error);
  a = g_strdup_value_contents (in);
  b = g_strdup_value_contents (&out);
  g_assert_cmpstr (a, ==, b);
}

static void
test_scalars (void)
{
  const struct { GType type; const char *native; const char *dbus; } cases[] = {
    { G_TYPE_BOOLEAN, "b", "b" }, { G_TYPE_INT, "i", "i" }, { G_TYPE_UINT, "u", "u" },
    { G_TYPE_INT64, "x", "x" }, { G_TYPE_UINT64, "t", "t" }, { G_TYPE_DOUBLE, "d", "d" },
    { G_TYPE_FLOAT, "d", "d" }, { G_TYPE_UCHAR, "y", "y" }, { G_TYPE_STRING, "ms", "s" },
    { G_TYPE_LONG, "x", "x" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_auto(GValue) value = G_VALUE_INIT;
      g_auto(GValue) one = G_VALUE_INIT;

      g_value_init (&value, cases[i].type);
      g_value_init (&one, G_TYPE_INT);
      g_value_set_int (&one, 7);
      if (g_value_type_transformable (G_TYPE_INT, cases[i].type))
        g_value_transform (&one, &value);
      round_trip (&value, cases[i].native, QIPC_VALUE_NATIVE);
      round_trip (&value, cases[i].dbus, QIPC_VALUE_DBUS);
    }
}

static void
test_null_string (void)
{
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(GVariant) dbus = NULL;
  g_autoptr(GError) error = NULL;

  g_value_init (&value, G_TYPE_STRING);
  round_trip (&value, "ms", QIPC_VALUE_NATIVE);
  dbus = g_variant_ref_sink (_qipc_value_to_variant (&value, QIPC_VALUE_DBUS, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_string (dbus, NULL), ==, "");
}

static void
test_boxed (void)
{
  const char *strv[] = { "a", "b", NULL };
  g_auto(GValue) v_strv = G_VALUE_INIT;
  g_auto(GValue) v_variant = G_VALUE_INIT;
  g_auto(GValue) v_bytes = G_VALUE_INIT;

  g_value_init (&v_strv, G_TYPE_STRV);
  g_value_set_boxed (&v_strv, strv);
  round_trip (&v_strv, "as", QIPC_VALUE_DBUS);
  g_value_init (&v_variant, G_TYPE_VARIANT);
  g_value_set_variant (&v_variant, g_variant_new ("(si)", "x", 3));
  round_trip (&v_variant, "mv", QIPC_VALUE_NATIVE);
  round_trip (&v_variant, "v", QIPC_VALUE_DBUS);
  g_value_init (&v_bytes, G_TYPE_BYTES);
  g_value_take_boxed (&v_bytes, g_bytes_new_static ("abc", 3));
  round_trip (&v_bytes, "may", QIPC_VALUE_NATIVE);
  round_trip (&v_bytes, "ay", QIPC_VALUE_DBUS);
}

static void
test_objects (void)
{
  g_autoptr(QipcTestCounter) counter = qipc_test_counter_new ();
  g_auto(GValue) value = G_VALUE_INIT;
  g_autoptr(GVariant) variant = NULL;

  g_value_init (&value, QIPC_TEST_TYPE_COUNTER);
  g_value_set_object (&value, counter);
  variant = g_variant_ref_sink (_qipc_value_to_variant (&value, QIPC_VALUE_DBUS, NULL));
  g_assert_cmpstr (g_variant_get_string (variant, NULL), ==, "/");
  _qipc_value_register_object (G_OBJECT (counter), "/test/counter");
  round_trip (&value, "o", QIPC_VALUE_DBUS);
  g_assert_true (_qipc_value_lookup_object ("/test/counter") == G_OBJECT (counter));
  _qipc_value_unregister_object (G_OBJECT (counter));
  g_assert_null (_qipc_value_lookup_object ("/test/counter"));
}

static void
test_signal_args (void)
{
  G_GNUC_UNUSED g_autoptr(QipcTestCounter) counter = qipc_test_counter_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) tuple = NULL;
  GSignalQuery query;
  GValue params[2] = { G_VALUE_INIT, G_VALUE_INIT };
  g_autofree char *type = NULL;

  g_signal_query (g_signal_lookup ("value-changed", QIPC_TEST_TYPE_COUNTER), &query);
  type = _qipc_value_signal_args_type (&query, QIPC_VALUE_DBUS, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (type, ==, "(is)");

  tuple = g_variant_ref_sink (g_variant_new ("(is)", 5, "five"));
  g_assert_true (_qipc_value_args_from_tuple (tuple, &query, params, QIPC_VALUE_DBUS, &error));
  g_assert_cmpint (g_value_get_int (&params[0]), ==, 5);
  g_assert_cmpstr (g_value_get_string (&params[1]), ==, "five");
  _qipc_value_args_clear (params, 2);

  g_clear_pointer (&tuple, g_variant_unref);
  tuple = g_variant_ref_sink (g_variant_new ("(ss)", "5", "five"));
  g_assert_false (_qipc_value_args_from_tuple (tuple, &query, params, QIPC_VALUE_DBUS, &error));
  g_assert_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_INVALID_ARGUMENTS);
  g_assert_false (G_IS_VALUE (&params[0]));
}

static void
test_unsupported (void)
{
  g_autoptr(GError) error = NULL;
  G_GNUC_UNUSED g_autoptr(GTypeClass) klass = g_type_class_ref (QIPC_TEST_TYPE_ODDBALL);
  GSignalQuery query;
  char *type;

  g_signal_query (g_signal_lookup ("raw", QIPC_TEST_TYPE_ODDBALL), &query);
  type = _qipc_value_signal_args_type (&query, QIPC_VALUE_NATIVE, &error);
  g_assert_null (type);
  g_assert_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_UNSUPPORTED_TYPE);
  g_assert_cmpstr (error->message, ==,
                   "Signal 'raw' of QipcTestOddball: argument 1 has type gpointer, "
                   "which cannot be carried between processes");
}

static void
test_names (void)
{
  static const struct { const char *gobject; const char *dbus; } cases[] = {
    { "value-changed", "ValueChanged" }, { "reset", "Reset" },
    { "value2-changed", "Value2Changed" }, { "a-b-c", "ABC" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *dbus = _qipc_name_to_dbus (cases[i].gobject);
      g_autofree char *back = _qipc_name_from_dbus (dbus);

      g_assert_cmpstr (dbus, ==, cases[i].dbus);
      g_assert_cmpstr (back, ==, cases[i].gobject);
    }
  {
    g_autofree char *underscore = _qipc_name_to_dbus ("value_changed");
    g_autofree char *iface = _qipc_dbus_interface_for_type (QIPC_TEST_TYPE_COUNTER);

    g_assert_cmpstr (underscore, ==, "ValueChanged");
    g_assert_cmpstr (iface, ==, "org.qipc.Object.QipcTestCounter");
    g_assert_true (g_dbus_is_interface_name (iface));
  }
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/value/scalars", test_scalars);
  g_test_add_func ("/value/null-string", test_null_string);
  g_test_add_func ("/value/boxed", test_boxed);
  g_test_add_func ("/value/objects", test_objects);
  g_test_add_func ("/value/signal-args", test_signal_args);
  g_test_add_func ("/value/unsupported", test_unsupported);
  g_test_add_func ("/value/names", test_names);

  return g_test_run ();
}
