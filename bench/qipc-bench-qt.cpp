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
 * Output and method are the same as qipc-bench's (bench-util.h).
 */
#include <QtCore/QSharedMemory>
#include <QtCore/QString>
#include <QtCore/QSystemSemaphore>

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

} // namespace

int
main (int    argc,
      char **argv)
{
  int rounds = BENCH_ROUNDS;
  int trips = BENCH_PINGPONG_TRIPS;

  if (argc < 2)
    bench_die ("usage: %s lock|pingpong [--rounds N] [--trips N] [--only NAME]", argv[0]);
  bench_parse_args (argc, argv, &rounds, &trips);
  bench_print_affinity ("qipc-bench-qt");

  if (strcmp (argv[1], "lock") == 0)
    run_lock (rounds);
  else if (strcmp (argv[1], "pingpong") == 0)
    bench_run_pingpong (pingpong_impls, 1, rounds, trips);
  else
    bench_die ("unknown mode %s", argv[1]);

  return 0;
}
