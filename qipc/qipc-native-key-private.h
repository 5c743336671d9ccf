/* qipc-native-key-private.h: deriving native names from user keys
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <sys/types.h>

G_BEGIN_DECLS

gboolean qipc_key_is_valid       (const char *key);
char    *qipc_key_derive_name    (const char *kind,
                                  const char *key);
guint8  *qipc_key_digest         (const char *kind,
                                  const char *key,
                                  gsize      *length);
/* A System V IPC key for @key, and a second number from the same digest
 * that tells qipc's objects from foreign ones on the same IPC key. */
key_t    qipc_key_derive_sysv_key (const char *kind,
                                   const char *key,
                                   int        *tag);
/* Where the key of an object without room for its own name (a System V
 * semaphore) is kept, so that `qipc sem list` can show it. */
char    *qipc_key_registry_path  (const char *kind,
                                  const char *key);

G_END_DECLS
