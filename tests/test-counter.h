/* test-counter.h: the objects the remote-object tests export and mirror
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/* A counter: property "value" (int, read-write) and "label" (string,
 * read-write); signal "value-changed" (int new_value, string label),
 * emitted whenever value changes; action signals "increment" (int by)
 * -> int (the new value) and "reset" (). */
#define QIPC_TEST_TYPE_COUNTER (qipc_test_counter_get_type ())
G_DECLARE_FINAL_TYPE (QipcTestCounter, qipc_test_counter, QIPC_TEST, COUNTER, GObject)

QipcTestCounter *qipc_test_counter_new       (void);
int              qipc_test_counter_get_value (QipcTestCounter *self);
void             qipc_test_counter_set_value (QipcTestCounter *self,
                                              int              value);

/* A class that cannot be carried as it is: signal "raw" has a gpointer
 * argument, and property "handle" is a gpointer. Its signal "fine"
 * (int) can. */
#define QIPC_TEST_TYPE_ODDBALL (qipc_test_oddball_get_type ())
G_DECLARE_FINAL_TYPE (QipcTestOddball, qipc_test_oddball, QIPC_TEST, ODDBALL, GObject)

G_END_DECLS
