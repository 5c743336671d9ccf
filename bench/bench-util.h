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
 *
 * The socket benchmarks (bench_run_sockets()) run their peer process as
 * "PROGRAM socket-child ...": the program's main() hands those arguments
 * to bench_socket_child().
 */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
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

/* Socket benchmarks: one-way messages per round (timed, "--messages"),
 * and messages before them (untimed). The socket ping-pong uses the
 * semaphore ping-pong's round trips and warm-up. */
#define BENCH_THROUGHPUT_MESSAGES 200000
#define BENCH_THROUGHPUT_WARMUP 20000

/* An event-loop sender stops handing frames to its library while this
 * many bytes are still waiting to be sent, and goes on when the library
 * reports progress (bytes-written). */
#define BENCH_SEND_WINDOW (64 * 1024)

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

/* "--messages N": timed messages per socket throughput round. */
static long bench_messages = BENCH_THROUGHPUT_MESSAGES;

static inline int
bench_selected (const char *name)
{
  return bench_only == NULL || strcmp (bench_only, name) == 0;
}

/* Reads "--rounds N", "--trips N", "--messages N" and "--only NAME"
 * after the mode. */
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
      else if (strcmp (argv[i], "--messages") == 0 && i + 1 < argc)
        bench_messages = atol (argv[++i]);
      else
        bench_die ("unknown argument %s", argv[i]);
    }
  if (*rounds < 1)
    bench_die ("--rounds must be at least 1");
  if (*trips < 1 || *trips + BENCH_PINGPONG_WARMUP > BENCH_PINGPONG_MAX_TRIPS)
    bench_die ("--trips must be between 1 and %d",
               BENCH_PINGPONG_MAX_TRIPS - BENCH_PINGPONG_WARMUP);
  if (bench_messages < 1)
    bench_die ("--messages must be at least 1");
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

/* ---- Sockets ------------------------------------------------------- */

/* Every message on the wire is a frame of 64 bytes: a 4-byte
 * little-endian length, always 60, then a 60-byte payload whose first 4
 * bytes are the frame's sequence number (little-endian, from 0 in each
 * direction). Receivers parse the frames and check both numbers. */
#define BENCH_FRAME_HEADER 4
#define BENCH_FRAME_PAYLOAD 60
#define BENCH_FRAME_SIZE (BENCH_FRAME_HEADER + BENCH_FRAME_PAYLOAD)

static inline void
bench_put_u32le (unsigned char *p,
                 uint32_t       v)
{
  p[0] = (unsigned char) v;
  p[1] = (unsigned char) (v >> 8);
  p[2] = (unsigned char) (v >> 16);
  p[3] = (unsigned char) (v >> 24);
}

static inline uint32_t
bench_get_u32le (const unsigned char *p)
{
  return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

/* Writes frame number @seq into @frame (BENCH_FRAME_SIZE bytes). */
static inline void
bench_frame_fill (unsigned char *frame,
                  uint32_t       seq)
{
  bench_put_u32le (frame, BENCH_FRAME_PAYLOAD);
  bench_put_u32le (frame + BENCH_FRAME_HEADER, seq);
  memset (frame + BENCH_FRAME_HEADER + 4, (int) ('a' + seq % 26), BENCH_FRAME_PAYLOAD - 4);
}

/* The payload length a frame header announces; a wrong one ends the
 * program. */
static inline size_t
bench_frame_length (const unsigned char *header)
{
  uint32_t length = bench_get_u32le (header);

  if (length != BENCH_FRAME_PAYLOAD)
    bench_die ("bad frame length %u", (unsigned) length);
  return length;
}

/* The size of the whole frame at the start of @data, or 0 when not all
 * of it has arrived yet. */
static inline size_t
bench_frame_whole (const unsigned char *data,
                   size_t               len)
{
  size_t size;

  if (len < BENCH_FRAME_HEADER)
    return 0;
  size = BENCH_FRAME_HEADER + bench_frame_length (data);
  return len >= size ? size : 0;
}

/* Checks a whole frame: its sequence number must be *@next, which then
 * advances. */
static inline void
bench_frame_check (const unsigned char *frame,
                   uint32_t            *next)
{
  uint32_t seq = bench_get_u32le (frame + BENCH_FRAME_HEADER);

  if (seq != *next || frame[BENCH_FRAME_SIZE - 1] != (unsigned char) ('a' + seq % 26))
    bench_die ("frame %u out of order or damaged (expected %u)", (unsigned) seq, (unsigned) *next);
  (*next)++;
}

typedef enum
{
  /* The parent sends a frame, the child sends it back; repeat. */
  BENCH_SOCKET_PINGPONG,
  /* The child sends frames as fast as it can; the parent receives. */
  BENCH_SOCKET_THROUGHPUT,
} BenchSocketMode;

/* One round, as each process sees it. */
typedef struct
{
  BenchSocketMode mode;
  /* The path of the Unix socket the parent listens on. */
  const char *address;
  /* Untimed, then timed round trips (ping-pong) or messages (throughput). */
  long warmup;
  long count;
  /* Set by bench_socket_timer_stop(): the wall time of the timed part
   * (the parent's is reported) and this process's CPU time during it. */
  double elapsed_ns;
  double cpu_ns;
  double start_ns;
  double start_cpu_ns;
} BenchSocketRound;

static inline void
bench_socket_timer_start (BenchSocketRound *round)
{
  round->start_cpu_ns = bench_cpu_ns ();
  round->start_ns = bench_now_ns ();
}

static inline void
bench_socket_timer_stop (BenchSocketRound *round)
{
  round->elapsed_ns = bench_now_ns () - round->start_ns;
  round->cpu_ns = bench_cpu_ns () - round->start_cpu_ns;
}

typedef struct
{
  const char *name;
  /* In the parent, before the child starts: listens on round->address. */
  void *(*listen) (BenchSocketRound *round);
  /* In the parent: accepts the child's connection, then either sends
   * warmup + count frames one at a time, each after the previous one came
   * back (ping-pong), or receives warmup + count frames (throughput).
   * Times the part after the warm-up with bench_socket_timer_start() and
   * _stop(), closes the connection and frees @listener. */
  void (*serve) (void *listener, BenchSocketRound *round);
  /* In the child: connects to round->address, then sends every frame
   * back until the parent closes the connection (ping-pong), or sends
   * warmup + count frames and closes (throughput). Times the part after
   * the warm-up the same way. */
  void (*client) (BenchSocketRound *round);
} BenchSocketImpl;

static inline const char *
bench_socket_mode_name (BenchSocketMode mode)
{
  return mode == BENCH_SOCKET_PINGPONG ? "socket-pingpong" : "socket-throughput";
}

/* One round: the parent listens, then starts the child as a new program
 * (fork and exec of this executable, so neither inherits the other's
 * main loop, threads or Qt application), which connects. The child
 * reports its CPU time through a pipe.
 *
 * Reports for the ping-pong the wall time per round trip and the CPU
 * time both processes spent per round trip, in µs; for the throughput
 * the messages per second the parent received, and the CPU time of both
 * processes per message, in ns. */
static inline void
bench_socket_round (const BenchSocketImpl *impl,
                    BenchSocketMode        mode,
                    int                    round_no,
                    long                   warmup,
                    long                   count)
{
  const char *benchmark = bench_socket_mode_name (mode);
  char address[108], warmup_arg[32], count_arg[32], fd_arg[16], result[64], exe[4096];
  BenchSocketRound round;
  void *listener;
  int fds[2];
  size_t got = 0;
  ssize_t n;
  double child_cpu;
  pid_t pid;

  snprintf (address, sizeof address, "/tmp/qipc-bench-%d-%s-%d.sock", (int) getpid (), impl->name, round_no);
  unlink (address);
  memset (&round, 0, sizeof round);
  round.mode = mode;
  round.address = address;
  round.warmup = warmup;
  round.count = count;

  /* The executable's own path rather than /proc/self/exe, so that the
   * child keeps the program's name in ps, perf and strace. */
  n = readlink ("/proc/self/exe", exe, sizeof exe - 1);
  if (n < 0)
    bench_die ("readlink /proc/self/exe: %s", strerror (errno));
  exe[n] = '\0';

  listener = impl->listen (&round);

  /* The read end is closed on exec, the write end is the child's. */
  if (pipe (fds) < 0 || fcntl (fds[0], F_SETFD, FD_CLOEXEC) < 0)
    bench_die ("pipe: %s", strerror (errno));
  snprintf (warmup_arg, sizeof warmup_arg, "%ld", warmup);
  snprintf (count_arg, sizeof count_arg, "%ld", count);
  snprintf (fd_arg, sizeof fd_arg, "%d", fds[1]);
  fflush (stdout);
  fflush (stderr);

  pid = fork ();
  if (pid < 0)
    bench_die ("fork: %s", strerror (errno));
  if (pid == 0)
    {
      execl (exe, exe, "socket-child", impl->name,
             benchmark, address, warmup_arg, count_arg, fd_arg, (char *) NULL);
      fprintf (stderr, "bench: exec %s: %s\n", exe, strerror (errno));
      _exit (127);
    }
  close (fds[1]);

  alarm (BENCH_WATCHDOG_S);
  impl->serve (listener, &round);
  while ((n = read (fds[0], result + got, sizeof result - 1 - got)) != 0)
    {
      if (n < 0 && errno != EINTR)
        bench_die ("%s: reading the child's result: %s", impl->name, strerror (errno));
      if (n > 0)
        got += (size_t) n;
    }
  alarm (0);
  close (fds[0]);
  result[got] = '\0';
  bench_wait_child (pid, impl->name);
  unlink (address);
  if (sscanf (result, "%lf", &child_cpu) != 1)
    bench_die ("%s: the child reported no CPU time", impl->name);

  if (mode == BENCH_SOCKET_PINGPONG)
    {
      bench_report ("socket-pingpong", impl->name, round.elapsed_ns / (double) count / 1000.0, "us");
      bench_report ("socket-pingpong-cpu", impl->name,
                    (round.cpu_ns + child_cpu) / (double) count / 1000.0, "us");
    }
  else
    {
      bench_report ("socket-throughput", impl->name, (double) count / (round.elapsed_ns / 1e9), "msg/s");
      bench_report ("socket-throughput-cpu", impl->name, (round.cpu_ns + child_cpu) / (double) count, "ns");
    }
}

/* Runs @rounds rounds of each implementation, interleaved. */
static inline void
bench_run_sockets (const BenchSocketImpl *impls,
                   int                    n_impls,
                   BenchSocketMode        mode,
                   int                    rounds,
                   int                    trips)
{
  long warmup = mode == BENCH_SOCKET_PINGPONG ? BENCH_PINGPONG_WARMUP : BENCH_THROUGHPUT_WARMUP;
  long count = mode == BENCH_SOCKET_PINGPONG ? trips : bench_messages;
  int i, r;

  printf ("# %s: %ld %s of %d-byte frames per round (after %ld untimed), %d rounds\n",
          bench_socket_mode_name (mode), count,
          mode == BENCH_SOCKET_PINGPONG ? "round trips" : "one-way messages",
          BENCH_FRAME_SIZE, warmup, rounds);
  fflush (stdout);
  for (r = 0; r < rounds; r++)
    for (i = 0; i < n_impls; i++)
      if (bench_selected (impls[i].name))
        bench_socket_round (&impls[i], mode, r, warmup, count);
}

/* The child's side of a round:
 *   PROGRAM socket-child IMPL MODE ADDRESS WARMUP COUNT FD
 * Writes its CPU time (ns) to FD. Returns main()'s exit status. */
static inline int
bench_socket_child (const BenchSocketImpl *impls,
                    int                    n_impls,
                    int                    argc,
                    char                 **argv)
{
  BenchSocketRound round;
  int i, fd;

  if (argc != 8)
    bench_die ("socket-child: wrong arguments");
  memset (&round, 0, sizeof round);
  round.mode = strcmp (argv[3], "socket-pingpong") == 0 ? BENCH_SOCKET_PINGPONG : BENCH_SOCKET_THROUGHPUT;
  round.address = argv[4];
  round.warmup = atol (argv[5]);
  round.count = atol (argv[6]);
  fd = atoi (argv[7]);

  for (i = 0; i < n_impls; i++)
    if (strcmp (impls[i].name, argv[2]) == 0)
      break;
  if (i == n_impls)
    bench_die ("socket-child: no implementation %s", argv[2]);

  alarm (BENCH_WATCHDOG_S);
  impls[i].client (&round);
  if (dprintf (fd, "%.1f\n", round.cpu_ns) < 0)
    bench_die ("socket-child: reporting: %s", strerror (errno));
  close (fd);
  return 0;
}
