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
 * qipc-bench-qt measures the Qt 5 peers the same way; run-bench.sh runs
 * both and prints the tables.
 */
#include <qipc.h>

#include <pthread.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/sem.h>

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

int
main (int    argc,
      char **argv)
{
  int rounds = BENCH_ROUNDS;
  int trips = BENCH_PINGPONG_TRIPS;

  if (argc < 2)
    bench_die ("usage: %s lock|pingpong [--rounds N] [--trips N] [--only NAME]", argv[0]);
  bench_parse_args (argc, argv, &rounds, &trips);
  bench_print_affinity ("qipc-bench");

  if (strcmp (argv[1], "lock") == 0)
    run_lock (rounds);
  else if (strcmp (argv[1], "pingpong") == 0)
    bench_run_pingpong (pingpong_impls, G_N_ELEMENTS (pingpong_impls), rounds, trips);
  else
    bench_die ("unknown mode %s", argv[1]);

  return 0;
}
