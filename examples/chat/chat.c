/* chat.c: a chat room over a QCOP channel
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Usage: chat NAME
 *
 * Every line typed is sent to the channel "chat/room" as a "say" message
 * carrying (NAME, line); everything said in the room is printed, this
 * process's own lines included (a channel hears its own messages, as
 * QCopChannel does). At the end of input, "leave" is sent and flushed.
 * The same program exists as chat.py and chat.js; they talk together.
 */
#include <qipc.h>

#include <gio/gunixinputstream.h>
#include <stdio.h>

typedef struct
{
  const char *name;
  GMainLoop *loop;
  GDataInputStream *input;
} Chat;

static void
on_received (QipcChannel *channel,
             const char  *message,
             GVariant    *data,
             gpointer     user_data)
{
  const char *who, *text;

  if (data == NULL || !g_variant_is_of_type (data, G_VARIANT_TYPE ("(ss)")))
    return;
  g_variant_get (data, "(&s&s)", &who, &text);
  if (g_str_equal (message, "join"))
    printf ("* %s joined\n", who);
  else if (g_str_equal (message, "leave"))
    printf ("* %s left\n", who);
  else if (g_str_equal (message, "say"))
    printf ("<%s> %s\n", who, text);
  fflush (stdout);
}

static void
say (Chat       *chat,
     const char *message,
     const char *text)
{
  g_autoptr(GError) error = NULL;

  if (!qipc_channel_send ("chat/room", message, g_variant_new ("(ss)", chat->name, text), &error))
    g_printerr ("chat: %s\n", error->message);
}

static void on_line (GObject *source, GAsyncResult *result, gpointer user_data);

static void
read_next_line (Chat *chat)
{
  g_data_input_stream_read_line_async (chat->input, G_PRIORITY_DEFAULT, NULL, on_line, chat);
}

static void
on_line (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  Chat *chat = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = g_data_input_stream_read_line_finish (chat->input, result, NULL, &error);

  if (line != NULL)
    {
      say (chat, "say", line);
      read_next_line (chat);
      return;
    }
  /* End of input: say goodbye, and make sure it left before exiting. */
  say (chat, "leave", "");
  if (!qipc_channel_flush (&error))
    g_printerr ("chat: %s\n", error->message);
  g_main_loop_quit (chat->loop);
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(QipcChannel) room = NULL;
  g_autoptr(GInputStream) stdin_stream = NULL;
  Chat chat = { 0 };

  if (argc != 2)
    {
      g_printerr ("Usage: chat NAME\n");
      return 2;
    }
  chat.name = argv[1];

  /* On the default bus: $QIPC_BUS_ADDRESS, else the per-user broker. */
  room = qipc_channel_new ("chat/room", &error);
  if (room == NULL)
    {
      g_printerr ("chat: %s\n", error->message);
      return 1;
    }
  g_signal_connect (room, "received", G_CALLBACK (on_received), NULL);
  say (&chat, "join", "");

  chat.loop = g_main_loop_new (NULL, FALSE);
  stdin_stream = g_unix_input_stream_new (0, FALSE);
  chat.input = g_data_input_stream_new (stdin_stream);
  read_next_line (&chat);
  g_main_loop_run (chat.loop);

  g_object_unref (chat.input);
  g_main_loop_unref (chat.loop);
  return 0;
}
