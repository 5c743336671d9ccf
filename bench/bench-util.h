/* bench-util.h: timing and reporting shared by qipc-bench (C) and
 * qipc-bench-qt (C++)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every measured round prints one line
 *
 *   ROUND <benchmark> <implementation> <value> <unit>
 *
 * which run-bench.sh collects and turns into tables; everything else a
 * program prints starts with '#'.
 */
#pragma once

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A lock round lasts about this long, after calibration. */
#define BENCH_LOCK_ROUND_NS 100000000.0

/* Defaults of the ping-pong: round trips per round (timed), round trips
 * before them (untimed), rounds per implementation. Plain SEM_UNDO (Qt)
 * fails once a process has released one semaphore 32767 times more than
 * it acquired it, so a round stays below that, on fresh semaphores. */
#define BENCH_PINGPONG_TRIPS 5000
#define BENCH_PINGPONG_WARMUP 500
#define BENCH_PINGPONG_MAX_TRIPS 32000
#define BENCH_ROUNDS 5

/* A stuck ping-pong (a side died) ends the program instead of hanging. */
#define BENCH_WATCHDOG_S 120

static inline double
bench_now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec * 1e9 + (double) ts.tv_nsec;
}

/* CPU time of this process, which excludes time spent waiting for a CPU
 * that other programs on the machine use. */
static inline double
bench_cpu_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double) ts.tv_sec * 1e9 + (double) ts.tv_nsec;
}

static inline void
bench_die (const char *fmt, ...)
{
  va_list ap;

  fprintf (stderr, "bench: ");
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fprintf (stderr, "\n");
  exit (1);
}

static inline void
bench_report (const char *benchmark,
              const char *impl,
              double      value,
              const char *unit)
{
  printf ("ROUND %s %s %.4f %s\n", benchmark, impl, value, unit);
  fflush (stdout);
}

/* Prints which CPUs the program may run on, so a log shows whether it
 * ran pinned (taskset -c 0) or not. */
static inline void
bench_print_affinity (const char *program)
{
  cpu_set_t set;
  int cpu;

  if (sched_getaffinity (0, sizeof set, &set) < 0)
    return;
  printf ("# %s: pid %d, %d CPU(s) allowed:", program, (int) getpid (), CPU_COUNT (&set));
  for (cpu = 0; cpu < CPU_SETSIZE; cpu++)
    if (CPU_ISSET (cpu, &set))
      printf (" %d", cpu);
  printf ("\n");
  fflush (stdout);
}

/* "--only NAME" runs one implementation (for profiling). */
static const char *bench_only = NULL;

static inline int
bench_selected (const char *name)
{
  return bench_only == NULL || strcmp (bench_only, name) == 0;
}

/* Reads "--rounds N", "--trips N" and "--only NAME" after the mode. */
static inline void
bench_parse_args (int   argc,
                  char **argv,
                  int  *rounds,
                  int  *trips)
{
  int i;

  for (i = 2; i < argc; i++)
    {
      if (strcmp (argv[i], "--rounds") == 0 && i + 1 < argc)
        *rounds = atoi (argv[++i]);
      else if (strcmp (argv[i], "--trips") == 0 && i + 1 < argc)
        *trips = atoi (argv[++i]);
      else if (strcmp (argv[i], "--only") == 0 && i + 1 < argc)
        bench_only = argv[++i];
      else
        bench_die ("unknown argument %s", argv[i]);
    }
  if (*rounds < 1)
    bench_die ("--rounds must be at least 1");
  if (*trips < 1 || *trips + BENCH_PINGPONG_WARMUP > BENCH_PINGPONG_MAX_TRIPS)
    bench_die ("--trips must be between 1 and %d",
               BENCH_PINGPONG_MAX_TRIPS - BENCH_PINGPONG_WARMUP);
}

/* Waits for a ping-pong child and fails if it did not exit cleanly. */
static inline void
bench_wait_child (pid_t       pid,
                  const char *impl)
{
  int status;

  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      bench_die ("%s: waitpid: %s", impl, strerror (errno));
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    bench_die ("%s: the ping-pong child failed", impl);
}

/* Runs a lock+unlock loop @n times. */
typedef void (*BenchLoop) (void *ctx, long n);

typedef struct
{
  const char *name;
  BenchLoop loop;
  void *ctx;
  long n;
} BenchLockImpl;

/* Finds how many iterations of @impl last about BENCH_LOCK_ROUND_NS. */
static inline void
bench_calibrate (BenchLockImpl *impl)
{
  long n = 1000;

  for (;;)
    {
      double start = bench_now_ns ();
      double elapsed;

      impl->loop (impl->ctx, n);
      elapsed = bench_now_ns () - start;
      if (elapsed > BENCH_LOCK_ROUND_NS / 5)
        {
          impl->n = (long) ((double) n * BENCH_LOCK_ROUND_NS / elapsed) + 1;
          return;
        }
      n *= 4;
    }
}

/* Calibrates every implementation, then runs @rounds rounds of each,
 * interleaved so that all of them see the same machine. */
static inline void
bench_run_lock (BenchLockImpl *impls,
                int            n_impls,
                int            rounds)
{
  int i, r;

  for (i = 0; i < n_impls; i++)
    {
      if (!bench_selected (impls[i].name))
        continue;
      bench_calibrate (&impls[i]);
      printf ("# lock %s: %ld lock+unlock pairs per round\n", impls[i].name, impls[i].n);
    }
  fflush (stdout);

  for (r = 0; r < rounds; r++)
    for (i = 0; i < n_impls; i++)
      {
        double start, elapsed;

        if (!bench_selected (impls[i].name))
          continue;
        start = bench_now_ns ();
        impls[i].loop (impls[i].ctx, impls[i].n);
        elapsed = bench_now_ns () - start;
        bench_report ("lock", impls[i].name, elapsed / (double) impls[i].n, "ns");
      }
}

/* Two semaphores, A (0) and B (1), both starting at 0. */
typedef struct
{
  const char *name;
  /* In the parent, before fork(): makes A and B. */
  void *(*create) (const char *prefix);
  /* In the child, after fork(): opens A and B by their keys. */
  void *(*open) (const char *prefix);
  void (*acquire) (void *handle, int which);
  void (*release) (void *handle, int which);
  /* Drops the handle; the creator removes the semaphores. */
  void (*close) (void *handle, int creator);
} BenchPingPongImpl;

/* One round on fresh semaphores: the parent releases A and acquires B,
 * the child acquires A and releases B; the parent times @trips round
 * trips after BENCH_PINGPONG_WARMUP untimed ones. A last release of A
 * tells the child it may exit.
 *
 * Reports the wall time per round trip ("pingpong") and the CPU time both
 * processes spent per round trip ("pingpong-cpu"), which a busy machine
 * disturbs less. */
static inline void
bench_pingpong_round (const BenchPingPongImpl *impl,
                      int                      round,
                      int                      trips)
{
  char prefix[128];
  void *handle;
  pid_t pid;
  double start, elapsed, cpu_start, cpu;
  double *child_cpu;
  int i;

  child_cpu = (double *) mmap (NULL, sizeof (double), PROT_READ | PROT_WRITE,
                               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (child_cpu == MAP_FAILED)
    bench_die ("mmap: %s", strerror (errno));
  *child_cpu = 0;

  snprintf (prefix, sizeof prefix, "qipc-bench-%d-%s-%d", (int) getpid (), impl->name, round);
  handle = impl->create (prefix);
  fflush (stdout);
  fflush (stderr);

  pid = fork ();
  if (pid < 0)
    bench_die ("fork: %s", strerror (errno));
  if (pid == 0)
    {
      void *child = impl->open (prefix);
      double child_start = 0;

      for (i = 0; i < BENCH_PINGPONG_WARMUP + trips; i++)
        {
          if (i == BENCH_PINGPONG_WARMUP)
            child_start = bench_cpu_ns ();
          impl->acquire (child, 0);
          impl->release (child, 1);
        }
      *child_cpu = bench_cpu_ns () - child_start;
      /* Exit only once the parent has taken the last release of B: with
       * SEM_UNDO on releases (Qt), exiting takes them back. */
      impl->acquire (child, 0);
      impl->close (child, 0);
      _exit (0);
    }

  alarm (BENCH_WATCHDOG_S);
  for (i = 0; i < BENCH_PINGPONG_WARMUP; i++)
    {
      impl->release (handle, 0);
      impl->acquire (handle, 1);
    }
  cpu_start = bench_cpu_ns ();
  start = bench_now_ns ();
  for (i = 0; i < trips; i++)
    {
      impl->release (handle, 0);
      impl->acquire (handle, 1);
    }
  elapsed = bench_now_ns () - start;
  cpu = bench_cpu_ns () - cpu_start;
  impl->release (handle, 0);
  alarm (0);

  bench_wait_child (pid, impl->name);
  impl->close (handle, 1);
  cpu += *child_cpu;
  munmap (child_cpu, sizeof (double));
  bench_report ("pingpong", impl->name, elapsed / trips / 1000.0, "us");
  bench_report ("pingpong-cpu", impl->name, cpu / trips / 1000.0, "us");
}

static inline void
bench_run_pingpong (const BenchPingPongImpl *impls,
                    int                      n_impls,
                    int                      rounds,
                    int                      trips)
{
  int i, r;

  printf ("# pingpong: %d round trips per round (after %d untimed), %d rounds\n",
          trips, BENCH_PINGPONG_WARMUP, rounds);
  fflush (stdout);
  for (r = 0; r < rounds; r++)
    for (i = 0; i < n_impls; i++)
      if (bench_selected (impls[i].name))
        bench_pingpong_round (&impls[i], r, trips);
}
