/* qipc-bench-qt.cpp: the Qt 5 peers of qipc-bench
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   qipc-bench-qt lock [--rounds N]
 *     QSharedMemory::lock()+unlock() on a created (attached) segment
 *
 *   qipc-bench-qt pingpong [--rounds N] [--trips N]
 *     two-process QSystemSemaphore ping-pong
 *
 *   qipc-bench-qt socket-pingpong [--rounds N] [--trips N]
 *   qipc-bench-qt socket-throughput [--rounds N] [--messages N]
 *     QLocalServer/QLocalSocket, each process running its
 *     QCoreApplication's event loop and reading in the readyRead handler
 *     (no waitForReadyRead), writing with plain write() (Qt sends from
 *     its write buffer when the event loop finds the socket writable)
 *
 * Output and method are the same as qipc-bench's (bench-util.h).
 */
#include <QtCore/QCoreApplication>
#include <QtCore/QEventLoop>
#include <QtCore/QSharedMemory>
#include <QtCore/QString>
#include <QtCore/QSystemSemaphore>
#include <QtNetwork/QLocalServer>
#include <QtNetwork/QLocalSocket>

#include "bench-util.h"

namespace {

void
qt_lock_loop (void *ctx,
              long  n)
{
  QSharedMemory *shm = static_cast<QSharedMemory *> (ctx);

  for (long i = 0; i < n; i++)
    {
      if (!shm->lock () || !shm->unlock ())
        bench_die ("QSharedMemory lock: %s", qPrintable (shm->errorString ()));
    }
}

void
run_lock (int rounds)
{
  QSharedMemory shm (QStringLiteral ("qipc-bench-%1-lock").arg (getpid ()));

  if (!shm.create (4096))
    bench_die ("QSharedMemory::create: %s", qPrintable (shm.errorString ()));

  BenchLockImpl impls[] = { { "qt5", qt_lock_loop, &shm, 0 } };
  bench_run_lock (impls, 1, rounds);
}

struct QtPair
{
  QSystemSemaphore *sems[2];
};

void *
qt_pp_new (const char                 *prefix,
           QSystemSemaphore::AccessMode mode)
{
  QtPair *pair = new QtPair;

  for (int i = 0; i < 2; i++)
    {
      QString key = QString::fromUtf8 (prefix) + QLatin1Char ('-') + QLatin1Char ('A' + i);

      pair->sems[i] = new QSystemSemaphore (key, 0, mode);
      if (pair->sems[i]->error () != QSystemSemaphore::NoError)
        bench_die ("QSystemSemaphore %s: %s", qPrintable (key),
                   qPrintable (pair->sems[i]->errorString ()));
    }
  return pair;
}

void *
qt_pp_create (const char *prefix)
{
  return qt_pp_new (prefix, QSystemSemaphore::Create);
}

void *
qt_pp_open (const char *prefix)
{
  return qt_pp_new (prefix, QSystemSemaphore::Open);
}

void
qt_pp_acquire (void *handle,
               int   which)
{
  QSystemSemaphore *sem = static_cast<QtPair *> (handle)->sems[which];

  if (!sem->acquire ())
    bench_die ("QSystemSemaphore::acquire: %s", qPrintable (sem->errorString ()));
}

void
qt_pp_release (void *handle,
               int   which)
{
  QSystemSemaphore *sem = static_cast<QtPair *> (handle)->sems[which];

  if (!sem->release ())
    bench_die ("QSystemSemaphore::release: %s", qPrintable (sem->errorString ()));
}

void
qt_pp_close (void *handle,
             int   /* creator */)
{
  QtPair *pair = static_cast<QtPair *> (handle);

  /* The creator's objects remove the semaphores and their key files. */
  delete pair->sems[0];
  delete pair->sems[1];
  delete pair;
}

const BenchPingPongImpl pingpong_impls[] = {
  { "qt5", qt_pp_create, qt_pp_open, qt_pp_acquire, qt_pp_release, qt_pp_close },
};


/* ---- sockets ------------------------------------------------------- */

/* One process's side, driven by the event loop. */
struct QtSide
{
  BenchSocketRound *round;
  bool parent;
  QEventLoop *loop;
  QLocalSocket *socket;
  uint32_t next;
  long frames;
  long sent;
  bool done;
  bool disconnected;
  unsigned char frame[BENCH_FRAME_SIZE];
};

void
qt_side_send (QtSide  *side,
              uint32_t seq)
{
  bench_frame_fill (side->frame, seq);
  if (side->socket->write (reinterpret_cast<const char *> (side->frame), sizeof side->frame) != BENCH_FRAME_SIZE)
    bench_die ("QLocalSocket::write: %s", qPrintable (side->socket->errorString ()));
}

/* One whole frame arrived (and was checked). */
void
qt_side_frame (QtSide              *side,
               const unsigned char *frame)
{
  BenchSocketRound *round = side->round;
  long total = round->warmup + round->count;

  side->frames++;
  if (!side->parent)
    {
      /* The ping-pong child sends the frame back as it is. */
      if (side->socket->write (reinterpret_cast<const char *> (frame), BENCH_FRAME_SIZE) != BENCH_FRAME_SIZE)
        bench_die ("QLocalSocket::write: %s", qPrintable (side->socket->errorString ()));
      if (side->frames == round->warmup)
        bench_socket_timer_start (round);
      return;
    }

  if (side->frames == total)
    {
      side->done = true;
      bench_socket_timer_stop (round);
      side->loop->quit ();
      return;
    }
  if (side->frames == round->warmup)
    bench_socket_timer_start (round);
  if (round->mode == BENCH_SOCKET_PINGPONG)
    qt_side_send (side, (uint32_t) side->frames);
}

/* Takes every whole frame out of the socket's buffer: the header is
 * peeked at, the frame read once it is all there. */
void
qt_on_ready_read (QtSide *side)
{
  QLocalSocket *socket = side->socket;
  unsigned char frame[BENCH_FRAME_SIZE];
  qint64 available;

  while (!side->done && (available = socket->bytesAvailable ()) >= BENCH_FRAME_HEADER)
    {
      qint64 size;

      if (socket->peek (reinterpret_cast<char *> (frame), BENCH_FRAME_HEADER) != BENCH_FRAME_HEADER)
        bench_die ("QLocalSocket::peek failed");
      size = BENCH_FRAME_HEADER + (qint64) bench_frame_length (frame);
      if (available < size)
        break;
      if (socket->read (reinterpret_cast<char *> (frame), size) != size)
        bench_die ("QLocalSocket::read failed");
      bench_frame_check (frame, &side->next);
      qt_side_frame (side, frame);
    }
}

void *
qt_sock_listen (BenchSocketRound *round)
{
  QLocalServer *server = new QLocalServer;

  if (!server->listen (QString::fromUtf8 (round->address)))
    bench_die ("QLocalServer::listen %s: %s", round->address, qPrintable (server->errorString ()));
  return server;
}

void
qt_sock_serve (void             *listener,
               BenchSocketRound *round)
{
  QLocalServer *server = static_cast<QLocalServer *> (listener);
  QEventLoop loop;
  QtSide side = {};

  side.round = round;
  side.parent = true;
  side.loop = &loop;
  QObject::connect (server, &QLocalServer::newConnection, [&side, server] () {
    if (side.socket != nullptr)
      bench_die ("Qt: a second connection");
    side.socket = server->nextPendingConnection ();
    if (side.socket == nullptr)
      return;
    QObject::connect (side.socket, &QLocalSocket::readyRead, [&side] () { qt_on_ready_read (&side); });
    QObject::connect (side.socket, &QLocalSocket::disconnected, [&side] () {
      if (!side.done)
        bench_die ("Qt: the child closed the connection");
    });
    if (side.round->warmup == 0)
      bench_socket_timer_start (side.round);
    if (side.round->mode == BENCH_SOCKET_PINGPONG)
      qt_side_send (&side, 0);
    /* What arrived before the handler was connected. */
    qt_on_ready_read (&side);
  });

  loop.exec ();

  QObject::disconnect (side.socket, nullptr, nullptr, nullptr);
  side.socket->abort ();
  delete side.socket;
  QObject::disconnect (server, nullptr, nullptr, nullptr);
  server->close ();
  delete server;
}

/* Throughput sender: hands frames to Qt while less than
 * BENCH_SEND_WINDOW bytes wait to be sent, then disconnects, which
 * sends the rest first. */
void
qt_side_fill (QtSide *side)
{
  BenchSocketRound *round = side->round;
  long total = round->warmup + round->count;

  while (side->sent < total && side->socket->bytesToWrite () < BENCH_SEND_WINDOW)
    {
      if (side->sent == round->warmup)
        bench_socket_timer_start (round);
      qt_side_send (side, (uint32_t) side->sent);
      side->sent++;
    }
  if (side->sent == total && !side->done)
    {
      side->done = true;
      side->socket->disconnectFromServer ();
    }
}

void
qt_sock_client (BenchSocketRound *round)
{
  QEventLoop loop;
  QLocalSocket socket;
  QtSide side = {};

  side.round = round;
  side.loop = &loop;
  side.socket = &socket;
  QObject::connect (&socket, &QLocalSocket::connected, [&side] () {
    if (side.round->warmup == 0)
      bench_socket_timer_start (side.round);
    if (side.round->mode == BENCH_SOCKET_THROUGHPUT)
      qt_side_fill (&side);
  });
  QObject::connect (&socket, &QLocalSocket::disconnected, [&side] () {
    bench_socket_timer_stop (side.round);
    side.disconnected = true;
    side.loop->quit ();
  });
  QObject::connect (&socket, &QLocalSocket::errorOccurred, [&side] (QLocalSocket::LocalSocketError error) {
    /* The ping-pong ends when the parent closes the connection. */
    if (side.round->mode == BENCH_SOCKET_PINGPONG && error == QLocalSocket::PeerClosedError)
      return;
    bench_die ("Qt child: %s", qPrintable (side.socket->errorString ()));
  });
  if (round->mode == BENCH_SOCKET_PINGPONG)
    QObject::connect (&socket, &QLocalSocket::readyRead, [&side] () { qt_on_ready_read (&side); });
  else
    QObject::connect (&socket, &QLocalSocket::bytesWritten, [&side] (qint64) { qt_side_fill (&side); });
  socket.connectToServer (QString::fromUtf8 (round->address));

  /* A quit() before exec() would be lost. */
  if (!side.disconnected)
    loop.exec ();

  QObject::disconnect (&socket, nullptr, nullptr, nullptr);
}

const BenchSocketImpl socket_impls[] = {
  { "qt5", qt_sock_listen, qt_sock_serve, qt_sock_client },
};

} // namespace

int
main (int    argc,
      char **argv)
{
  int rounds = BENCH_ROUNDS;
  int trips = BENCH_PINGPONG_TRIPS;

  if (argc >= 2 && strcmp (argv[1], "socket-child") == 0)
    {
      QCoreApplication app (argc, argv);

      return bench_socket_child (socket_impls, 1, argc, argv);
    }
  if (argc < 2)
    bench_die ("usage: %s lock|pingpong|socket-pingpong|socket-throughput "
               "[--rounds N] [--trips N] [--messages N] [--only NAME]", argv[0]);
  bench_parse_args (argc, argv, &rounds, &trips);
  bench_print_affinity ("qipc-bench-qt");

  if (strcmp (argv[1], "lock") == 0)
    run_lock (rounds);
  else if (strcmp (argv[1], "pingpong") == 0)
    bench_run_pingpong (pingpong_impls, 1, rounds, trips);
  else if (strcmp (argv[1], "socket-pingpong") == 0 || strcmp (argv[1], "socket-throughput") == 0)
    {
      QCoreApplication app (argc, argv);

      bench_run_sockets (socket_impls, 1,
                         strcmp (argv[1], "socket-pingpong") == 0 ? BENCH_SOCKET_PINGPONG : BENCH_SOCKET_THROUGHPUT,
                         rounds, trips);
    }
  else
    bench_die ("unknown mode %s", argv[1]);

  return 0;
}
