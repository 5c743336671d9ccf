/* qipc-value-private.h: GValue <-> GVariant, and GObject <-> D-Bus names
 *
 * The one mapping used to carry signal arguments, return values and
 * properties between processes (DESIGN.md, "Data model"):
 *
 *   gboolean b · gchar, gint i · guchar y · guint u · glong, gint64 x ·
 *   gulong, guint64 t · gfloat, gdouble d · gchararray s (native: ms) ·
 *   GStrv as · GVariant v (native: mv) · GBytes ay · enums i · flags u ·
 *   GObject o (its path, see _qipc_value_register_object)
 *
 * D-Bus has no maybe types: there a NULL string travels as "", a NULL
 * GVariant as an empty tuple "()", NULL GBytes as an empty array. The
 * native flavour keeps NULL.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "qipc-remote.h"

G_BEGIN_DECLS

typedef enum {
  QIPC_VALUE_NATIVE,          /* qipc channels: any GVariant */
  QIPC_VALUE_DBUS,            /* D-Bus: no maybe types */
} QipcValueFlavor;

/* The GVariant type string for values of @gtype (static), or NULL with
 * %QIPC_REMOTE_ERROR_UNSUPPORTED_TYPE whose message, "type gpointer, which
 * cannot be carried between processes", reads well after a prefix such as
 * "Property 'handle' of Foo has ". */
const char *_qipc_value_type_string      (GType                 gtype,
                                          QipcValueFlavor       flavor,
                                          GError              **error);
/* @value as a floating GVariant of _qipc_value_type_string's type, or
 * NULL with an error (only for unsupported types). */
GVariant   *_qipc_value_to_variant       (const GValue         *value,
                                          QipcValueFlavor       flavor,
                                          GError              **error);
/* Sets @value (already initialised to its target type) from @variant;
 * %QIPC_REMOTE_ERROR_INVALID_ARGUMENTS when the types do not match. */
gboolean    _qipc_value_from_variant     (GVariant             *variant,
                                          GValue               *value,
                                          QipcValueFlavor       flavor,
                                          GError              **error);

/* The tuple type of @query's parameters, e.g. "(is)", or NULL with an
 * error naming the signal and the parameter. */
char       *_qipc_value_signal_args_type (const GSignalQuery   *query,
                                          QipcValueFlavor       flavor,
                                          GError              **error);
/* @n_params values (the instance not included) as a floating tuple. */
GVariant   *_qipc_value_args_to_tuple    (const GValue         *params,
                                          guint                 n_params,
                                          QipcValueFlavor       flavor,
                                          GError              **error);
/* Fills @params[0 .. query->n_params) (uninitialised on entry; unset
 * them with _qipc_value_args_clear) from @tuple. */
gboolean    _qipc_value_args_from_tuple  (GVariant             *tuple,
                                          const GSignalQuery   *query,
                                          GValue               *params,
                                          QipcValueFlavor       flavor,
                                          GError              **error);
void        _qipc_value_args_clear       (GValue               *params,
                                          guint                 n_params);

/* Objects travel as their path: the exporter registers each exported
 * (or mirrored) object here; an unregistered object, or NULL, is "/". */
void        _qipc_value_register_object   (GObject             *object,
                                           const char          *path);
void        _qipc_value_unregister_object (GObject             *object);
/* (transfer none) (nullable) */
GObject    *_qipc_value_lookup_object     (const char          *path);

/* GObject names to D-Bus member names: "value-changed" (or
 * "value_changed") -> "ValueChanged"; and back: "ValueChanged" ->
 * "value-changed". Each result is newly allocated. */
char       *_qipc_name_to_dbus           (const char           *name);
char       *_qipc_name_from_dbus         (const char           *member);
/* The interface an object of @type is exported as when the caller
 * names none: "org.qipc.Object." and the type name, every character
 * D-Bus does not allow turned into '_' (Python's "__main__+Counter"
 * gives "org.qipc.Object.__main___Counter"). */
char       *_qipc_dbus_interface_for_type (GType                gtype);

G_END_DECLS
