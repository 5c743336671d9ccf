/* board.c: a producer and consumers over shared memory, with change
 * notification
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Usage: board KEY produce COUNT
 *        board KEY consume
 *
 * The producer creates the segment KEY holding one reading: a
 * little-endian int32 sequence number followed by 60 bytes of
 * NUL-padded text. Once a line arrives on its standard input it writes
 * readings 1 .. COUNT, each under the segment's lock and followed by
 * notify_changed(), then sequence -1 ("done"). A consumer attaches
 * read-only and reacts to ::changed on its main loop: notifications may
 * come together, so it prints the latest reading each time, and exits
 * at "done". board.py and board.js are the same program.
 */
#include <qipc.h>

#include <stdio.h>
#include <string.h>

#define READING_SIZE 64
#define TEXT_OFFSET 4

typedef struct
{
  QipcSharedMemory *shm;
  GMainLoop *loop;
  int count;
  int next;
  int last_seen;
} Board;

static void
die (GError *error)
{
  g_printerr ("board: %s\n", error->message);
  exit (1);
}

/* ---- producer ---- */

static void
publish (Board *board,
         int    sequence)
{
  g_autoptr(GError) error = NULL;
  guint8 reading[READING_SIZE] = { 0 };
  gint32 le = GINT32_TO_LE (sequence);
  g_autoptr(GBytes) bytes = NULL;

  memcpy (reading, &le, sizeof le);
  g_snprintf ((char *) reading + TEXT_OFFSET, READING_SIZE - TEXT_OFFSET,
              "temperature %d.%d C", 20 + sequence / 10, sequence % 10);
  bytes = g_bytes_new (reading, sizeof reading);
  if (!qipc_shared_memory_lock (board->shm, &error) ||
      !qipc_shared_memory_write (board->shm, 0, bytes, &error) ||
      !qipc_shared_memory_unlock (board->shm, &error) ||
      !qipc_shared_memory_notify_changed (board->shm, &error))
    die (error);
}

static gboolean
publish_next (gpointer user_data)
{
  Board *board = user_data;

  if (board->next > board->count)
    {
      publish (board, -1);
      g_main_loop_quit (board->loop);
      return G_SOURCE_REMOVE;
    }
  publish (board, board->next++);
  return G_SOURCE_CONTINUE;
}

static int
produce (Board *board)
{
  g_autoptr(GError) error = NULL;
  char line[64];

  if (!qipc_shared_memory_create (board->shm, READING_SIZE, QIPC_SHARED_MEMORY_ACCESS_READ_WRITE,
                                  &error))
    die (error);
  printf ("created %s\n", qipc_shared_memory_get_key (board->shm));
  fflush (stdout);
  if (fgets (line, sizeof line, stdin) == NULL)
    return 1;
  board->next = 1;
  g_timeout_add (10, publish_next, board);
  g_main_loop_run (board->loop);
  printf ("published %d\n", board->count);
  return 0;
}

/* ---- consumer ---- */

static void
on_changed (QipcSharedMemory *shm,
            gpointer          user_data)
{
  Board *board = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = NULL;
  const guint8 *reading;
  gint32 sequence;

  if (!qipc_shared_memory_lock (shm, &error))
    die (error);
  bytes = qipc_shared_memory_read (shm, 0, READING_SIZE, &error);
  if (!qipc_shared_memory_unlock (shm, &error) || bytes == NULL)
    die (error);
  reading = g_bytes_get_data (bytes, NULL);
  memcpy (&sequence, reading, sizeof sequence);
  sequence = GINT32_FROM_LE (sequence);
  if (sequence == -1)
    {
      printf ("done after %d\n", board->last_seen);
      g_main_loop_quit (board->loop);
    }
  else if (sequence > board->last_seen)
    {
      printf ("reading %d: %.60s\n", sequence, (const char *) reading + TEXT_OFFSET);
      board->last_seen = sequence;
    }
  fflush (stdout);
}

static int
consume (Board *board)
{
  g_autoptr(GError) error = NULL;

  if (!qipc_shared_memory_attach (board->shm, QIPC_SHARED_MEMORY_ACCESS_READ_ONLY, &error))
    die (error);
  g_signal_connect (board->shm, "changed", G_CALLBACK (on_changed), board);
  printf ("attached\n");
  fflush (stdout);
  g_main_loop_run (board->loop);
  return 0;
}

int
main (int    argc,
      char **argv)
{
  Board board = { 0 };
  int status;

  if (argc < 3 || (g_str_equal (argv[2], "produce") && argc != 4) ||
      (!g_str_equal (argv[2], "produce") && !g_str_equal (argv[2], "consume")))
    {
      g_printerr ("Usage: board KEY produce COUNT | board KEY consume\n");
      return 2;
    }
  board.shm = qipc_shared_memory_new (argv[1]);
  board.loop = g_main_loop_new (NULL, FALSE);
  if (g_str_equal (argv[2], "produce"))
    {
      board.count = atoi (argv[3]);
      status = produce (&board);
    }
  else
    status = consume (&board);
  g_main_loop_unref (board.loop);
  g_object_unref (board.shm);
  return status;
}
