/* qipc-address.c: channel bus addresses
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "qipc-address-private.h"
#include "qipc-bus.h"

#include <stdlib.h>
#include <string.h>

static gboolean
address_error (GError     **error,
               const char  *address,
               const char  *reason)
{
  g_set_error (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_INVALID_ADDRESS,
               "Invalid bus address \"%s\": %s", address, reason);
  return FALSE;
}

/* "key=value,key=value" after the transport prefix, into @table. */
static gboolean
parse_pairs (const char  *address,
             const char  *pairs,
             GHashTable  *table,
             GError     **error)
{
  g_auto(GStrv) items = g_strsplit (pairs, ",", -1);

  for (gsize i = 0; items[i] != NULL; i++)
    {
      char *equal = strchr (items[i], '=');

      if (equal == NULL || equal == items[i] || equal[1] == '\0')
        return address_error (error, address, "expected key=value pairs separated by ','");
      *equal = '\0';
      if (g_hash_table_contains (table, items[i]))
        return address_error (error, address, "a key is given twice");
      g_hash_table_insert (table, g_strdup (items[i]), g_strdup (equal + 1));
    }
  return TRUE;
}

static gboolean
parse_unix (const char   *address,
            GHashTable   *table,
            QipcAddress  *out,
            GError      **error)
{
  const char *path = g_hash_table_lookup (table, "path");
  const char *abstract = g_hash_table_lookup (table, "abstract");

  if (g_hash_table_size (table) != 1 || (path == NULL && abstract == NULL))
    return address_error (error, address, "a unix address takes exactly one of path= or abstract=");
  if (path != NULL && !g_path_is_absolute (path))
    return address_error (error, address, "the path must be absolute");
  if (strlen (path != NULL ? path : abstract) > 107)
    return address_error (error, address, "the socket name is longer than 107 bytes");
  out->kind = path != NULL ? QIPC_ADDRESS_UNIX_PATH : QIPC_ADDRESS_UNIX_ABSTRACT;
  out->path = g_strdup (path != NULL ? path : abstract);
  return TRUE;
}

static gboolean
parse_tcp (const char   *address,
           GHashTable   *table,
           QipcAddress  *out,
           GError      **error)
{
  const char *host = g_hash_table_lookup (table, "host");
  const char *port = g_hash_table_lookup (table, "port");
  const char *ca = g_hash_table_lookup (table, "ca");
  guint64 number;

  if (host == NULL || port == NULL || g_hash_table_size (table) != (ca != NULL ? 3 : 2))
    return address_error (error, address, "a tcp address takes host=, port= and optionally ca=");
  if (!g_ascii_string_to_unsigned (port, 10, 0, G_MAXUINT16, &number, NULL))
    return address_error (error, address, "the port is not a number from 0 to 65535");
  if (ca != NULL && !g_path_is_absolute (ca))
    return address_error (error, address, "the ca= file must be an absolute path");
  out->kind = QIPC_ADDRESS_TCP;
  out->host = g_strdup (host);
  out->port = number;
  out->ca_file = g_strdup (ca);
  return TRUE;
}

gboolean
_qipc_address_parse (const char   *address,
                     QipcAddress  *out,
                     GError      **error)
{
  g_autoptr(GHashTable) table = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  const char *colon;

  memset (out, 0, sizeof *out);
  if (address == NULL || !g_utf8_validate (address, -1, NULL))
    return address_error (error, "", "it is not UTF-8");
  colon = strchr (address, ':');
  if (colon == NULL)
    return address_error (error, address, "expected transport:key=value,… (unix:path=…, unix:abstract=…, tcp:host=…,port=…)");
  if (!parse_pairs (address, colon + 1, table, error))
    return FALSE;

  if (g_str_has_prefix (address, "unix:"))
    return parse_unix (address, table, out, error);
  if (g_str_has_prefix (address, "tcp:"))
    return parse_tcp (address, table, out, error);
  return address_error (error, address, "unknown transport (known: unix, tcp)");
}

void
_qipc_address_clear (QipcAddress *address)
{
  g_clear_pointer (&address->path, g_free);
  g_clear_pointer (&address->host, g_free);
  g_clear_pointer (&address->ca_file, g_free);
}

char *
_qipc_address_local_name (const QipcAddress *address)
{
  if (address->kind == QIPC_ADDRESS_UNIX_ABSTRACT)
    return g_strconcat ("@", address->path, NULL);
  return g_strdup (address->path);
}

char *
_qipc_address_default (void)
{
  const char *env = g_getenv ("QIPC_BUS_ADDRESS");

  if (env != NULL && *env != '\0')
    return g_strdup (env);
  return g_strdup_printf ("unix:path=%s/qipc/bus", g_get_user_runtime_dir ());
}
