/* qipc-native-key-private.h: deriving native names from user keys
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

gboolean qipc_key_is_valid       (const char *key);
char    *qipc_key_derive_name    (const char *kind,
                                  const char *key);
guint8  *qipc_key_digest         (const char *kind,
                                  const char *key,
                                  gsize      *length);

G_END_DECLS
