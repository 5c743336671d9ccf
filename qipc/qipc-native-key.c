/* qipc-native-key.c: deriving native names from user keys
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A user key is any non-empty UTF-8 string. It never reaches the system
 * as such: the native name is a SHA-256 digest of the kind of object and
 * the key, so no key can contain a `/`, a `..` or a NUL that escapes the
 * namespace, and two keys collide only if SHA-256 does.
 */
#include "qipc-native-key-private.h"

#include <string.h>

gboolean
qipc_key_is_valid (const char *key)
{
  return key != NULL && key[0] != '\0' && g_utf8_validate (key, -1, NULL);
}

guint8 *
qipc_key_digest (const char *kind,
                 const char *key,
                 gsize      *length)
{
  g_autoptr(GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  static const guint8 version[] = "qipc-1";
  gsize digest_length = g_checksum_type_get_length (G_CHECKSUM_SHA256);
  guint8 *digest = g_malloc (digest_length);

  /* The NULs between the parts keep "a" + "bc" apart from "ab" + "c". */
  g_checksum_update (checksum, version, sizeof version);
  g_checksum_update (checksum, (const guint8 *) kind, strlen (kind) + 1);
  g_checksum_update (checksum, (const guint8 *) key, strlen (key));
  g_checksum_get_digest (checksum, digest, &digest_length);

  *length = digest_length;
  return digest;
}

char *
qipc_key_derive_name (const char *kind,
                      const char *key)
{
  gsize length;
  g_autofree guint8 *digest = qipc_key_digest (kind, key, &length);
  GString *name = g_string_new ("qipc-");

  g_string_append (name, kind);
  g_string_append_c (name, '-');
  /* 128 bits are plenty against accidental collisions. */
  for (gsize i = 0; i < 16; i++)
    g_string_append_printf (name, "%02x", digest[i]);

  return g_string_free (name, FALSE);
}

key_t
qipc_key_derive_sysv_key (const char *kind,
                          const char *key,
                          int        *tag)
{
  gsize length;
  g_autofree guint8 *digest = qipc_key_digest (kind, key, &length);
  guint32 sysv_key = ((guint32) digest[0] << 24 | (guint32) digest[1] << 16 |
                      (guint32) digest[2] << 8 | digest[3]) & 0x7fffffff;

  if (tag != NULL)
    *tag = (((int) digest[4] << 8 | digest[5]) & 0x7fff) | 1;
  /* 0 is IPC_PRIVATE, which would never be found again. */
  return sysv_key != 0 ? (key_t) sysv_key : 1;
}

char *
qipc_key_registry_path (const char *kind,
                        const char *key)
{
  g_autofree char *name = qipc_key_derive_name (kind, key);

  return g_strdup_printf ("/dev/shm/%s.key", name);
}
