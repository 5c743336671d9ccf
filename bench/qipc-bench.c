/* qipc-bench.c: qipc's primitives next to raw System V semaphores
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   qipc-bench lock [--rounds N]
 *     uncontended lock+unlock, in ns per pair: QipcSharedMemory, semop()
 *     -1/+1 with SEM_UNDO (what QSharedMemory does), and a robust
 *     process-shared pthread mutex (the floor qipc builds on)
 *
 *   qipc-bench pingpong [--rounds N] [--trips N]
 *     two-process semaphore ping-pong, in µs per round trip:
 *     QipcSystemSemaphore, semop() with SEM_UNDO (what QSystemSemaphore
 *     does) and plain semop()
 *
 *   qipc-bench socket-pingpong [--rounds N] [--trips N]
 *     two-process ping-pong of 64-byte frames over a Unix stream socket,
 *     in µs per round trip
 *
 *   qipc-bench socket-throughput [--rounds N] [--messages N]
 *     one-way stream of 64-byte frames from one process to another, in
 *     messages per second
 *
 *     Both socket benchmarks measure QipcLocalServer/QipcLocalSocket, each
 *     process running a GMainLoop and reading in the ready-read handler
 *     (when libqipc has them: QIPC_BENCH_HAVE_LOCAL_SOCKET), and raw
 *     AF_UNIX sockets, with blocking read()/write() ("raw-blocking") and
 *     non-blocking with a poll() before every read ("raw-poll", the least
 *     an event loop does).
 *
 * qipc-bench-qt measures the Qt 5 peers the same way; run-bench.sh runs
 * both and prints the tables.
 */
#include <qipc.h>

#include <poll.h>
#include <pthread.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/sem.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "bench-util.h"

union semun {
  int val;
  struct semid_ds *buf;
  unsigned short *array;
};

/* ---- lock ---------------------------------------------------------- */

static void
qipc_lock_loop (void *ctx,
                long  n)
{
  QipcSharedMemory *shm = ctx;
  GError *error = NULL;
  long i;

  for (i = 0; i < n; i++)
    {
      if (!qipc_shared_memory_lock (shm, &error) ||
          !qipc_shared_memory_unlock (shm, &error))
        bench_die ("qipc lock: %s", error ? error->message : "busy");
    }
}

static void
semop_lock_loop (void *ctx,
                 long  n)
{
  int semid = *(int *) ctx;
  struct sembuf lock = { 0, -1, SEM_UNDO };
  struct sembuf unlock = { 0, 1, SEM_UNDO };
  long i;

  for (i = 0; i < n; i++)
    {
      if (semop (semid, &lock, 1) < 0 || semop (semid, &unlock, 1) < 0)
        bench_die ("semop lock: %s", strerror (errno));
    }
}

static void
pthread_lock_loop (void *ctx,
                   long  n)
{
  pthread_mutex_t *mutex = ctx;
  long i;

  for (i = 0; i < n; i++)
    {
      if (pthread_mutex_lock (mutex) != 0 || pthread_mutex_unlock (mutex) != 0)
        bench_die ("pthread lock failed");
    }
}

static void
run_lock (int rounds)
{
  g_autofree char *key = g_strdup_printf ("qipc-bench-%d-lock", (int) getpid ());
  g_autoptr(QipcSharedMemory) shm = qipc_shared_memory_new (key);
  g_autoptr(GError) error = NULL;
  union semun arg = { .val = 1 };
  pthread_mutexattr_t attr;
  pthread_mutex_t *mutex;
  int semid;
  BenchLockImpl impls[3];

  if (!qipc_shared_memory_create (shm, 4096, QIPC_SHARED_MEMORY_ACCESS_READ_WRITE, &error))
    bench_die ("%s", error->message);

  semid = semget (IPC_PRIVATE, 1, IPC_CREAT | 0600);
  if (semid < 0 || semctl (semid, 0, SETVAL, arg) < 0)
    bench_die ("semget: %s", strerror (errno));

  /* The same mutex as qipc's: robust, process-shared, error-checking,
   * in a shared mapping. */
  mutex = mmap (NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mutex == MAP_FAILED)
    bench_die ("mmap: %s", strerror (errno));
  pthread_mutexattr_init (&attr);
  pthread_mutexattr_setpshared (&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust (&attr, PTHREAD_MUTEX_ROBUST);
  pthread_mutexattr_settype (&attr, PTHREAD_MUTEX_ERRORCHECK);
  pthread_mutex_init (mutex, &attr);
  pthread_mutexattr_destroy (&attr);

  impls[0] = (BenchLockImpl) { "qipc", qipc_lock_loop, shm, 0 };
  impls[1] = (BenchLockImpl) { "sysv-undo", semop_lock_loop, &semid, 0 };
  impls[2] = (BenchLockImpl) { "pthread-robust", pthread_lock_loop, mutex, 0 };
  bench_run_lock (impls, G_N_ELEMENTS (impls), rounds);

  semctl (semid, 0, IPC_RMID);
  pthread_mutex_destroy (mutex);
  munmap (mutex, 4096);
}

/* ---- ping-pong: qipc ---------------------------------------------- */

static void *
qipc_pp_new (const char                *prefix,
             QipcSystemSemaphoreAccess  access)
{
  QipcSystemSemaphore **sems = g_new0 (QipcSystemSemaphore *, 2);
  int i;

  for (i = 0; i < 2; i++)
    {
      g_autofree char *key = g_strdup_printf ("%s-%c", prefix, 'A' + i);
      g_autoptr(GError) error = NULL;

      sems[i] = qipc_system_semaphore_new (key, 0, access, &error);
      if (sems[i] == NULL)
        bench_die ("%s", error->message);
    }
  return sems;
}

static void *
qipc_pp_create (const char *prefix)
{
  return qipc_pp_new (prefix, QIPC_SYSTEM_SEMAPHORE_ACCESS_CREATE_EXCLUSIVE);
}

static void *
qipc_pp_open (const char *prefix)
{
  return qipc_pp_new (prefix, QIPC_SYSTEM_SEMAPHORE_ACCESS_OPEN);
}

static void
qipc_pp_acquire (void *handle,
                 int   which)
{
  QipcSystemSemaphore **sems = handle;
  GError *error = NULL;

  if (!qipc_system_semaphore_acquire (sems[which], &error))
    bench_die ("qipc acquire: %s", error->message);
}

static void
qipc_pp_release (void *handle,
                 int   which)
{
  QipcSystemSemaphore **sems = handle;
  GError *error = NULL;

  if (!qipc_system_semaphore_release (sems[which], 1, &error))
    bench_die ("qipc release: %s", error->message);
}

static void
qipc_pp_close (void *handle,
               int   creator)
{
  QipcSystemSemaphore **sems = handle;

  /* The creator's objects remove the semaphores when finalized. */
  g_object_unref (sems[0]);
  g_object_unref (sems[1]);
  g_free (sems);
}

/* ---- ping-pong: raw System V -------------------------------------- */

typedef struct
{
  int semid[2];
  short flags;
} RawPair;

/* An IPC key from the prefix (FNV-1a); creation is exclusive, so a
 * collision shows as an error instead of a wrong measurement. */
static key_t
raw_key (const char *prefix,
         int         which)
{
  guint32 h = 2166136261u;
  const char *p;

  for (p = prefix; *p != '\0'; p++)
    h = (h ^ (guchar) *p) * 16777619u;
  h = (h ^ (guint32) ('A' + which)) * 16777619u;
  return (key_t) (h & 0x7fffffff);
}

static RawPair *
raw_pp_new (const char *prefix,
            short       flags,
            gboolean    create)
{
  RawPair *pair = g_new0 (RawPair, 1);
  union semun arg = { .val = 0 };
  int i;

  pair->flags = flags;
  for (i = 0; i < 2; i++)
    {
      pair->semid[i] = semget (raw_key (prefix, i), 1, create ? IPC_CREAT | IPC_EXCL | 0600 : 0);
      if (pair->semid[i] < 0 || (create && semctl (pair->semid[i], 0, SETVAL, arg) < 0))
        bench_die ("semget %s: %s", prefix, strerror (errno));
    }
  return pair;
}

static void *
raw_undo_create (const char *prefix)
{
  return raw_pp_new (prefix, SEM_UNDO, TRUE);
}

static void *
raw_undo_open (const char *prefix)
{
  return raw_pp_new (prefix, SEM_UNDO, FALSE);
}

static void *
raw_plain_create (const char *prefix)
{
  return raw_pp_new (prefix, 0, TRUE);
}

static void *
raw_plain_open (const char *prefix)
{
  return raw_pp_new (prefix, 0, FALSE);
}

static void
raw_pp_op (RawPair *pair,
           int      which,
           short    delta)
{
  struct sembuf op = { 0, delta, pair->flags };

  while (semop (pair->semid[which], &op, 1) < 0)
    if (errno != EINTR)
      bench_die ("semop: %s", strerror (errno));
}

static void
raw_pp_acquire (void *handle,
                int   which)
{
  raw_pp_op (handle, which, -1);
}

static void
raw_pp_release (void *handle,
                int   which)
{
  raw_pp_op (handle, which, 1);
}

static void
raw_pp_close (void *handle,
              int   creator)
{
  RawPair *pair = handle;

  if (creator)
    {
      semctl (pair->semid[0], 0, IPC_RMID);
      semctl (pair->semid[1], 0, IPC_RMID);
    }
  g_free (pair);
}

static const BenchPingPongImpl pingpong_impls[] = {
  { "qipc", qipc_pp_create, qipc_pp_open, qipc_pp_acquire, qipc_pp_release, qipc_pp_close },
  { "sysv-undo", raw_undo_create, raw_undo_open, raw_pp_acquire, raw_pp_release, raw_pp_close },
  { "sysv-plain", raw_plain_create, raw_plain_open, raw_pp_acquire, raw_pp_release, raw_pp_close },
};

/* ---- sockets: raw AF_UNIX ----------------------------------------- */

/* One end of a connection. The raw-poll variant's socket is non-blocking
 * and every read waits in poll() first; a write goes out at once, and
 * waits in poll() only when the socket buffer is full. */
typedef struct
{
  int fd;
  gboolean use_poll;
  size_t len;
  unsigned char buf[64 * 1024];
} RawConn;

static void
raw_wait (int   fd,
          short events)
{
  struct pollfd pfd = { fd, events, 0 };

  while (poll (&pfd, 1, -1) < 0)
    if (errno != EINTR)
      bench_die ("poll: %s", strerror (errno));
}

static void
raw_address (struct sockaddr_un *sun,
             const char         *path)
{
  memset (sun, 0, sizeof *sun);
  sun->sun_family = AF_UNIX;
  g_strlcpy (sun->sun_path, path, sizeof sun->sun_path);
}

static void *
raw_listen (BenchSocketRound *round)
{
  struct sockaddr_un sun;
  int *fd = g_new (int, 1);

  raw_address (&sun, round->address);
  *fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (*fd < 0 || bind (*fd, (struct sockaddr *) &sun, sizeof sun) < 0 || listen (*fd, 1) < 0)
    bench_die ("raw listen %s: %s", round->address, strerror (errno));
  return fd;
}

static RawConn *
raw_accept (void     *listener,
            gboolean  use_poll)
{
  RawConn *conn = g_new0 (RawConn, 1);
  int *lfd = listener;

  conn->use_poll = use_poll;
  while ((conn->fd = accept4 (*lfd, NULL, NULL, SOCK_CLOEXEC | (use_poll ? SOCK_NONBLOCK : 0))) < 0)
    if (errno != EINTR)
      bench_die ("accept: %s", strerror (errno));
  close (*lfd);
  g_free (lfd);
  return conn;
}

static RawConn *
raw_connect (BenchSocketRound *round,
             gboolean          use_poll)
{
  RawConn *conn = g_new0 (RawConn, 1);
  struct sockaddr_un sun;

  raw_address (&sun, round->address);
  conn->use_poll = use_poll;
  conn->fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (conn->fd < 0 || connect (conn->fd, (struct sockaddr *) &sun, sizeof sun) < 0)
    bench_die ("raw connect %s: %s", round->address, strerror (errno));
  if (use_poll && fcntl (conn->fd, F_SETFL, O_NONBLOCK) < 0)
    bench_die ("fcntl: %s", strerror (errno));
  return conn;
}

static void
raw_close (RawConn *conn)
{
  close (conn->fd);
  g_free (conn);
}

/* Reads once, appending to conn->buf. Returns FALSE at end of stream. */
static gboolean
raw_read (RawConn *conn)
{
  for (;;)
    {
      ssize_t n;

      if (conn->use_poll)
        raw_wait (conn->fd, POLLIN);
      n = read (conn->fd, conn->buf + conn->len, sizeof conn->buf - conn->len);
      if (n > 0)
        {
          conn->len += (size_t) n;
          return TRUE;
        }
      if (n == 0)
        return FALSE;
      if (errno != EINTR && errno != EAGAIN)
        bench_die ("read: %s", strerror (errno));
    }
}

/* Drops the first @used bytes of conn->buf. */
static void
raw_consume (RawConn *conn,
             size_t   used)
{
  memmove (conn->buf, conn->buf + used, conn->len - used);
  conn->len -= used;
}

static void
raw_write (RawConn             *conn,
           const unsigned char *data,
           size_t               size)
{
  while (size > 0)
    {
      ssize_t n = write (conn->fd, data, size);

      if (n > 0)
        {
          data += n;
          size -= (size_t) n;
        }
      else if (n < 0 && errno == EAGAIN && conn->use_poll)
        raw_wait (conn->fd, POLLOUT);
      else if (n < 0 && errno != EINTR)
        bench_die ("write: %s", strerror (errno));
    }
}

static void
raw_serve (void             *listener,
           BenchSocketRound *round,
           gboolean          use_poll)
{
  RawConn *conn = raw_accept (listener, use_poll);
  long total = round->warmup + round->count;
  unsigned char frame[BENCH_FRAME_SIZE];
  guint32 next = 0;
  long frames = 0;

  if (round->warmup == 0)
    bench_socket_timer_start (round);

  if (round->mode == BENCH_SOCKET_PINGPONG)
    {
      while (frames < total)
        {
          size_t size;

          bench_frame_fill (frame, (guint32) frames);
          raw_write (conn, frame, sizeof frame);
          while ((size = bench_frame_whole (conn->buf, conn->len)) == 0)
            if (!raw_read (conn))
              bench_die ("raw: the child closed the connection");
          bench_frame_check (conn->buf, &next);
          raw_consume (conn, size);
          if (++frames == round->warmup)
            bench_socket_timer_start (round);
        }
    }
  else
    {
      while (frames < total)
        {
          size_t used = 0, size;

          if (!raw_read (conn))
            bench_die ("raw: the child closed the connection");
          while ((size = bench_frame_whole (conn->buf + used, conn->len - used)) > 0)
            {
              bench_frame_check (conn->buf + used, &next);
              used += size;
              if (++frames == round->warmup)
                bench_socket_timer_start (round);
            }
          raw_consume (conn, used);
        }
    }

  bench_socket_timer_stop (round);
  raw_close (conn);
}

static void
raw_client (BenchSocketRound *round,
            gboolean          use_poll)
{
  RawConn *conn = raw_connect (round, use_poll);
  guint32 next = 0;
  long frames = 0;

  if (round->warmup == 0)
    bench_socket_timer_start (round);

  if (round->mode == BENCH_SOCKET_PINGPONG)
    {
      /* Sends every frame back, until the parent closes. */
      while (raw_read (conn))
        {
          size_t used = 0, size;

          while ((size = bench_frame_whole (conn->buf + used, conn->len - used)) > 0)
            {
              bench_frame_check (conn->buf + used, &next);
              raw_write (conn, conn->buf + used, size);
              used += size;
              if (++frames == round->warmup)
                bench_socket_timer_start (round);
            }
          raw_consume (conn, used);
        }
    }
  else
    {
      unsigned char frame[BENCH_FRAME_SIZE];
      long total = round->warmup + round->count;

      for (frames = 0; frames < total; frames++)
        {
          if (frames == round->warmup)
            bench_socket_timer_start (round);
          bench_frame_fill (frame, (guint32) frames);
          raw_write (conn, frame, sizeof frame);
        }
    }

  bench_socket_timer_stop (round);
  raw_close (conn);
}

static void
raw_blocking_serve (void             *listener,
                    BenchSocketRound *round)
{
  raw_serve (listener, round, FALSE);
}

static void
raw_blocking_client (BenchSocketRound *round)
{
  raw_client (round, FALSE);
}

static void
raw_poll_serve (void             *listener,
                BenchSocketRound *round)
{
  raw_serve (listener, round, TRUE);
}

static void
raw_poll_client (BenchSocketRound *round)
{
  raw_client (round, TRUE);
}

#ifdef QIPC_BENCH_HAVE_LOCAL_SOCKET

/* ---- sockets: qipc ------------------------------------------------- */

/* One process's side, driven by its GMainLoop. */
typedef struct
{
  BenchSocketRound *round;
  gboolean parent;
  GMainLoop *loop;
  QipcSocket *socket;
  guint32 next;
  /* Frames received, and (throughput sender) frames handed to qipc. */
  long frames;
  long sent;
  gboolean done;
  unsigned char frame[BENCH_FRAME_SIZE];
} QipcSide;

static void
qipc_side_send (QipcSide *side,
                guint32   seq)
{
  g_autoptr(GError) error = NULL;

  bench_frame_fill (side->frame, seq);
  if (!qipc_socket_write_data (side->socket, side->frame, sizeof side->frame, &error))
    bench_die ("qipc write: %s", error->message);
}

static void
qipc_side_finish (QipcSide *side)
{
  side->done = TRUE;
  bench_socket_timer_stop (side->round);
  g_main_loop_quit (side->loop);
}

/* One whole frame arrived (and was checked). */
static void
qipc_side_frame (QipcSide            *side,
                 const unsigned char *frame,
                 gsize                size)
{
  BenchSocketRound *round = side->round;
  long total = round->warmup + round->count;
  g_autoptr(GError) error = NULL;

  side->frames++;
  if (!side->parent)
    {
      /* The ping-pong child sends the frame back as it is. */
      if (!qipc_socket_write_data (side->socket, frame, size, &error))
        bench_die ("qipc write: %s", error->message);
      if (side->frames == round->warmup)
        bench_socket_timer_start (round);
      return;
    }

  if (side->frames == total)
    {
      qipc_side_finish (side);
      return;
    }
  if (side->frames == round->warmup)
    bench_socket_timer_start (round);
  if (round->mode == BENCH_SOCKET_PINGPONG)
    qipc_side_send (side, (guint32) side->frames);
}

/* Takes every whole frame out of the read buffer: the header is peeked
 * at, the frame read once it is all there. Like the Qt peer (peek and
 * read into a char buffer), this allocates nothing per frame. */
static void
qipc_on_ready_read (QipcSocket *socket,
                    QipcSide   *side)
{
  unsigned char frame[BENCH_FRAME_SIZE];
  gsize available;

  while (!side->done && (available = qipc_socket_bytes_available (socket)) >= BENCH_FRAME_HEADER)
    {
      gsize size;

      qipc_socket_peek_data (socket, frame, BENCH_FRAME_HEADER);
      size = BENCH_FRAME_HEADER + bench_frame_length (frame);
      if (size > sizeof frame)
        bench_die ("qipc: a frame of %" G_GSIZE_FORMAT " bytes", size);
      if (available < size)
        break;
      qipc_socket_read_data (socket, frame, size);
      bench_frame_check (frame, &side->next);
      qipc_side_frame (side, frame, size);
    }
}

static void
qipc_on_parent_disconnected (QipcSocket *socket,
                             QipcSide   *side)
{
  if (!side->done)
    bench_die ("qipc: the child closed the connection (%s)",
               qipc_socket_get_error (socket) ? qipc_socket_get_error (socket)->message : "no error");
}

static void
qipc_on_new_connection (QipcServer *server,
                        QipcSide   *side)
{
  if (side->socket != NULL)
    bench_die ("qipc: a second connection");
  side->socket = qipc_server_next_pending_connection (server);
  if (side->socket == NULL)
    return;
  g_signal_connect (side->socket, "ready-read", G_CALLBACK (qipc_on_ready_read), side);
  g_signal_connect (side->socket, "disconnected", G_CALLBACK (qipc_on_parent_disconnected), side);

  if (side->round->warmup == 0)
    bench_socket_timer_start (side->round);
  if (side->round->mode == BENCH_SOCKET_PINGPONG)
    qipc_side_send (side, 0);
  /* What arrived before the handler was connected. */
  qipc_on_ready_read (side->socket, side);
}

static void *
qipc_sock_listen (BenchSocketRound *round)
{
  QipcLocalServer *server = qipc_local_server_new ();
  g_autoptr(GError) error = NULL;

  if (!qipc_local_server_listen (server, round->address, &error))
    bench_die ("qipc listen %s: %s", round->address, error->message);
  return server;
}

static void
qipc_sock_serve (void             *listener,
                 BenchSocketRound *round)
{
  QipcLocalServer *server = listener;
  QipcSide side = { 0 };

  side.round = round;
  side.parent = TRUE;
  side.loop = g_main_loop_new (NULL, FALSE);
  g_signal_connect (server, "new-connection", G_CALLBACK (qipc_on_new_connection), &side);

  g_main_loop_run (side.loop);

  g_signal_handlers_disconnect_by_data (side.socket, &side);
  qipc_socket_abort (side.socket);
  g_object_unref (side.socket);
  g_signal_handlers_disconnect_by_data (server, &side);
  qipc_server_close (QIPC_SERVER (server));
  g_object_unref (server);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_main_loop_unref (side.loop);
}

/* Throughput sender: hands frames to qipc while less than
 * BENCH_SEND_WINDOW bytes wait to be sent, then closes, which sends the
 * rest first. */
static void
qipc_side_fill (QipcSide *side)
{
  BenchSocketRound *round = side->round;
  long total = round->warmup + round->count;

  while (side->sent < total && qipc_socket_bytes_to_write (side->socket) < BENCH_SEND_WINDOW)
    {
      if (side->sent == round->warmup)
        bench_socket_timer_start (round);
      qipc_side_send (side, (guint32) side->sent);
      side->sent++;
    }
  if (side->sent == total && !side->done)
    {
      side->done = TRUE;
      qipc_socket_close (side->socket);
    }
}

static void
qipc_on_bytes_written (QipcSocket *socket,
                       gint64      bytes,
                       QipcSide   *side)
{
  qipc_side_fill (side);
}

static void
qipc_on_connected (QipcSocket *socket,
                   QipcSide   *side)
{
  if (side->round->warmup == 0)
    bench_socket_timer_start (side->round);
  if (side->round->mode == BENCH_SOCKET_THROUGHPUT)
    qipc_side_fill (side);
}

static void
qipc_on_child_disconnected (QipcSocket *socket,
                            QipcSide   *side)
{
  bench_socket_timer_stop (side->round);
  g_main_loop_quit (side->loop);
}

static void
qipc_on_error (QipcSocket   *socket,
               const GError *error,
               QipcSide     *side)
{
  /* The ping-pong ends when the parent closes the connection. */
  if (side->round->mode == BENCH_SOCKET_PINGPONG &&
      g_error_matches (error, QIPC_SOCKET_ERROR, QIPC_SOCKET_ERROR_REMOTE_HOST_CLOSED))
    return;
  bench_die ("qipc child: %s", error->message);
}

static void
qipc_sock_client (BenchSocketRound *round)
{
  QipcSide side = { 0 };

  side.round = round;
  side.loop = g_main_loop_new (NULL, FALSE);
  side.socket = QIPC_SOCKET (qipc_local_socket_new ());
  g_signal_connect (side.socket, "connected", G_CALLBACK (qipc_on_connected), &side);
  g_signal_connect (side.socket, "disconnected", G_CALLBACK (qipc_on_child_disconnected), &side);
  g_signal_connect (side.socket, "error-occurred", G_CALLBACK (qipc_on_error), &side);
  if (round->mode == BENCH_SOCKET_PINGPONG)
    g_signal_connect (side.socket, "ready-read", G_CALLBACK (qipc_on_ready_read), &side);
  else
    g_signal_connect (side.socket, "bytes-written", G_CALLBACK (qipc_on_bytes_written), &side);
  qipc_local_socket_connect_to_server (QIPC_LOCAL_SOCKET (side.socket), round->address);

  g_main_loop_run (side.loop);

  g_signal_handlers_disconnect_by_data (side.socket, &side);
  g_object_unref (side.socket);
  g_main_loop_unref (side.loop);
}

#endif /* QIPC_BENCH_HAVE_LOCAL_SOCKET */

static const BenchSocketImpl socket_impls[] = {
#ifdef QIPC_BENCH_HAVE_LOCAL_SOCKET
  { "qipc", qipc_sock_listen, qipc_sock_serve, qipc_sock_client },
#endif
  { "raw-blocking", raw_listen, raw_blocking_serve, raw_blocking_client },
  { "raw-poll", raw_listen, raw_poll_serve, raw_poll_client },
};

int
main (int    argc,
      char **argv)
{
  int rounds = BENCH_ROUNDS;
  int trips = BENCH_PINGPONG_TRIPS;

  if (argc >= 2 && strcmp (argv[1], "socket-child") == 0)
    return bench_socket_child (socket_impls, G_N_ELEMENTS (socket_impls), argc, argv);
  if (argc < 2)
    bench_die ("usage: %s lock|pingpong|socket-pingpong|socket-throughput "
               "[--rounds N] [--trips N] [--messages N] [--only NAME]", argv[0]);
  bench_parse_args (argc, argv, &rounds, &trips);
  bench_print_affinity ("qipc-bench");

  if (strcmp (argv[1], "lock") == 0)
    run_lock (rounds);
  else if (strcmp (argv[1], "pingpong") == 0)
    bench_run_pingpong (pingpong_impls, G_N_ELEMENTS (pingpong_impls), rounds, trips);
  else if (strcmp (argv[1], "socket-pingpong") == 0)
    bench_run_sockets (socket_impls, G_N_ELEMENTS (socket_impls), BENCH_SOCKET_PINGPONG, rounds, trips);
  else if (strcmp (argv[1], "socket-throughput") == 0)
    bench_run_sockets (socket_impls, G_N_ELEMENTS (socket_impls), BENCH_SOCKET_THROUGHPUT, rounds, trips);
  else
    bench_die ("unknown mode %s", argv[1]);

  return 0;
}
