/* qipc-remote.c: what the native export and the mirror share
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "qipc-remote-private.h"
#include "qipc-channel.h"
#include "qipc-frame-private.h"

#include <string.h>

gboolean
_qipc_remote_path_validate (const char  *path,
                            GError     **error)
{
  g_autoptr(GError) local_error = NULL;

  if (!_qipc_channel_name_validate (path, FALSE, &local_error))
    {
      g_set_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_INVALID_NAME,
                   "Invalid object path: %s", local_error->message);
      return FALSE;
    }
  /* The control and reply channels are PATH/.call and PATH/.reply/…:
   * a path inside another object's would mix their traffic up. */
  if (strstr (path, "/.call") != NULL || strstr (path, "/.reply") != NULL ||
      strlen (path) > 255 - strlen (QIPC_REMOTE_REPLY_INFIX) - 32)
    {
      g_set_error (error, QIPC_REMOTE_ERROR, QIPC_REMOTE_ERROR_INVALID_NAME,
                   "Invalid object path '%s': it has a '.call' or '.reply' segment, "
                   "or is longer than %u bytes", path,
                   (guint) (255 - strlen (QIPC_REMOTE_REPLY_INFIX) - 32));
      return FALSE;
    }
  return TRUE;
}

GArray *
_qipc_remote_list_signals (GType type)
{
  GArray *queries = g_array_new (FALSE, TRUE, sizeof (GSignalQuery));
  g_autoptr(GArray) types = g_array_new (FALSE, FALSE, sizeof (GType));

  /* Ancestors first, GObject's own (notify) left out. */
  for (GType t = type; t != 0 && t != G_TYPE_OBJECT; t = g_type_parent (t))
    g_array_prepend_val (types, t);
  for (guint i = 0; i < types->len; i++)
    {
      guint n_ids;
      g_autofree guint *ids = g_signal_list_ids (g_array_index (types, GType, i), &n_ids);

      for (guint j = 0; j < n_ids; j++)
        {
          GSignalQuery query;

          g_signal_query (ids[j], &query);
          g_array_append_val (queries, query);
        }
    }
  return queries;
}

gboolean
_qipc_remote_is_action (const GSignalQuery *query)
{
  return (query->signal_flags & G_SIGNAL_ACTION) != 0;
}

void
_qipc_remote_send (QipcBus    *bus,
                   const char *channel,
                   const char *message,
                   GVariant   *data,
                   const char *who)
{
  g_autoptr(GError) error = NULL;

  if (qipc_channel_send_for_bus (bus, channel, message, data, &error))
    return;
  if (g_error_matches (error, QIPC_BUS_ERROR, QIPC_BUS_ERROR_DISCONNECTED))
    g_debug ("%s: '%s' not sent on %s: %s", who, message, channel, error->message);
  else
    g_warning ("%s: could not send '%s' on %s: %s", who, message, channel, error->message);
}
