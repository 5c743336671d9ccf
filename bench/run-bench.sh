#!/bin/bash
# run-bench.sh: builds the benchmarks and runs qipc next to its peers
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# usage: bench/run-bench.sh [BUILDDIR]
#
# BUILDDIR defaults to _build-bench in the source tree; it is set up with
# meson when it is not a build directory yet. Only the benchmark targets
# are built. Environment:
#   BENCH_PASSES  times each program runs per measurement (3); the passes of
#                 qipc-bench and qipc-bench-qt alternate
#   BENCH_ROUNDS  rounds per implementation and pass (5)
#   BENCH_TRIPS   ping-pong round trips per round (5000, at most 31500),
#                 for the semaphore and the socket ping-pong
#   BENCH_MESSAGES socket throughput: messages per round (200000)
#   BENCH_PIN_CPU the CPU of the pinned runs (0)
#   BENCH_SUITES  which benchmarks run: "shm" (shared memory lock and
#                 semaphore ping-pong), "socket" (local sockets), "channels"
#                 (qipc channels next to GDBus, ZeroMQ and raw socket
#                 pairs), "signals" (an exported object's signals over
#                 D-Bus next to hand-written emit_signal); all by default
#   BENCH_CHANNEL_ROUNDS   channels: rounds of each measurement (3)
#   BENCH_CHANNEL_MESSAGES channels: messages delivered per fan-out round
#                 (96000)
#   BENCH_CHANNEL_CLIENTS  channels: idle clients of the memory figure (1000)
#   BENCH_SIGNAL_ROUNDS    signals: rounds of each row (9)
#   BENCH_SIGNALS          signals: signals emitted per round (20000)
#
# The channels suite is one program (qipc-bench-channels), run once: it
# measures unpinned and pinned itself and prints its own tables and
# ratios, which come after the others'.
# Prints every round's figure as it comes (lines starting with "ROUND"),
# then the tables, and the ratios as the last lines.
set -euo pipefail

srcdir=$(cd "$(dirname "$0")/.." && pwd)
builddir=${1:-$srcdir/_build-bench}
passes=${BENCH_PASSES:-3}
rounds=${BENCH_ROUNDS:-5}
trips=${BENCH_TRIPS:-5000}
messages=${BENCH_MESSAGES:-200000}
pin_cpu=${BENCH_PIN_CPU:-0}
suites=${BENCH_SUITES:-shm socket channels signals}
chan_rounds=${BENCH_CHANNEL_ROUNDS:-3}
chan_messages=${BENCH_CHANNEL_MESSAGES:-96000}
chan_clients=${BENCH_CHANNEL_CLIENTS:-1000}
sig_rounds=${BENCH_SIGNAL_ROUNDS:-9}
sig_signals=${BENCH_SIGNALS:-20000}
run_shm=0
run_socket=0
run_channels=0
run_signals=0
case " $suites " in *" shm "*) run_shm=1 ;; esac
case " $suites " in *" socket "*) run_socket=1 ;; esac
case " $suites " in *" channels "*) run_channels=1 ;; esac
case " $suites " in *" signals "*) run_signals=1 ;; esac

# The peers: Qt 5 needs a C++ compiler and qtbase5-dev; the channels
# suite ZeroMQ (libzmq3-dev) and dbus-daemon (dbus).
sh "$srcdir/build-aux/install-deps.sh" g++ qtbase5-dev libzmq3-dev dbus

if [ ! -f "$builddir/build.ninja" ]; then
  meson setup "$builddir" "$srcdir" -Dbench=enabled
fi

bench_targets () {
  ninja -C "$builddir" -t targets all 2>/dev/null | sed -n 's/^\(bench\/qipc-bench\(-qt\|-channels\|-signals\)\{0,1\}\): .*/\1/p'
}
targets=$(bench_targets)
# A build directory set up before libzmq was installed has no channel
# benchmark: look for libzmq again.
if [ "$run_channels" = 1 ] && ! grep -qx 'bench/qipc-bench-channels' <<<"$targets"; then
  meson setup --reconfigure "$builddir" "$srcdir" >/dev/null
  targets=$(bench_targets)
fi
if ! grep -qx 'bench/qipc-bench' <<<"$targets"; then
  echo "run-bench.sh: $builddir has no bench/qipc-bench target (configured with -Dbench=disabled?)" >&2
  exit 1
fi
# shellcheck disable=SC2086
ninja -C "$builddir" $targets

c_bench=$builddir/bench/qipc-bench
qt_bench=$builddir/bench/qipc-bench-qt
chan_bench=$builddir/bench/qipc-bench-channels
sig_bench=$builddir/bench/qipc-bench-signals
if ! grep -qx 'bench/qipc-bench-qt' <<<"$targets"; then
  echo "run-bench.sh: no Qt 5 peer (needs a C++ compiler and qtbase5-dev); Qt columns stay empty" >&2
  qt_bench=
fi
if [ "$run_channels" = 1 ] && ! grep -qx 'bench/qipc-bench-channels' <<<"$targets"; then
  echo "run-bench.sh: no bench/qipc-bench-channels (needs libzmq3-dev)" >&2
  exit 1
fi

results=$(mktemp)
chan_out=$(mktemp)
trap 'rm -f "$results" "$chan_out"' EXIT

# run TAG PROGRAM ARGS...: runs one program, shows its output, and keeps
# its ROUND lines prefixed with TAG.
run () {
  local tag=$1
  shift
  "$@" | while IFS= read -r line; do
    printf '%s\n' "$line"
    case $line in
      ROUND\ *) printf '%s %s\n' "$tag" "${line#ROUND }" >>"$results" ;;
    esac
  done
}

if [ "$run_shm" = 1 ]; then
  for pass in $(seq "$passes"); do
    echo "# lock, pass $pass/$passes"
    run none "$c_bench" lock --rounds "$rounds"
    [ -z "$qt_bench" ] || run none "$qt_bench" lock --rounds "$rounds"
  done

  for pass in $(seq "$passes"); do
    echo "# ping-pong unpinned, pass $pass/$passes"
    run unpinned "$c_bench" pingpong --rounds "$rounds" --trips "$trips"
    [ -z "$qt_bench" ] || run unpinned "$qt_bench" pingpong --rounds "$rounds" --trips "$trips"
  done

  for pass in $(seq "$passes"); do
    echo "# ping-pong pinned (taskset -c $pin_cpu), pass $pass/$passes"
    run pinned taskset -c "$pin_cpu" "$c_bench" pingpong --rounds "$rounds" --trips "$trips"
    [ -z "$qt_bench" ] || run pinned taskset -c "$pin_cpu" "$qt_bench" pingpong --rounds "$rounds" --trips "$trips"
  done
fi

if [ "$run_socket" = 1 ]; then
  # Each pass runs the C program (qipc and raw rows) and the Qt one, both
  # benchmarks, unpinned and pinned; the child inherits taskset's mask.
  for pass in $(seq "$passes"); do
    for pin in unpinned pinned; do
      pin_cmd=()
      [ "$pin" = unpinned ] || pin_cmd=(taskset -c "$pin_cpu")
      echo "# socket ping-pong and throughput, $pin, pass $pass/$passes"
      run "$pin" "${pin_cmd[@]}" "$c_bench" socket-pingpong --rounds "$rounds" --trips "$trips"
      [ -z "$qt_bench" ] || run "$pin" "${pin_cmd[@]}" "$qt_bench" socket-pingpong --rounds "$rounds" --trips "$trips"
      run "$pin" "${pin_cmd[@]}" "$c_bench" socket-throughput --rounds "$rounds" --messages "$messages"
      [ -z "$qt_bench" ] || run "$pin" "${pin_cmd[@]}" "$qt_bench" socket-throughput --rounds "$rounds" --messages "$messages"
    done
  done
fi

if [ "$run_channels" = 1 ]; then
  echo "# channels: fan-out, round trip (unpinned and pinned) and broker memory"
  "$chan_bench" --rounds "$chan_rounds" --messages "$chan_messages" --trips "$trips" \
    --clients "$chan_clients" --pin "$pin_cpu" | tee "$chan_out"
fi

echo
summary=
if [ "$run_shm" = 1 ] || [ "$run_socket" = 1 ]; then
# Lines: TAG BENCHMARK IMPL VALUE UNIT. Sorted so that each group's values
# come in increasing order: the first is the best, the middle the median.
summary=$(sort -k1,1 -k2,2 -k3,3 -k4,4g "$results" | awk -v pin_cpu="$pin_cpu" -v cpus="$(nproc)" \
    -v run_shm="$run_shm" -v run_socket="$run_socket" '
  {
    key = $1 " " $2 " " $3
    n[key]++
    v[key, n[key]] = $4
  }
  # For the throughput (messages/s) the best round is the highest.
  function best(key) { return (key in n) ? v[key, (key ~ / socket-throughput /) ? n[key] : 1] : "" }
  function median(key,   m) {
    if (!(key in n)) return ""
    m = n[key]
    return (m % 2) ? v[key, (m + 1) / 2] : (v[key, m / 2] + v[key, m / 2 + 1]) / 2
  }
  function num(x, fmt) { return x == "" ? "-" : sprintf(fmt, x) }
  function ratio(a, b) { return (a == "" || b == "" || b == 0) ? "" : a / b }
  # op is "<=" (the default), "<" or ">=".
  function verdict(r, target, on, op,   ok) {
    if (r == "" || target == "") return ""
    if (op == "") op = "<="
    ok = (op == "<=") ? r <= target : (op == "<") ? r < target : r >= target
    return ok ? "  (" on " " op " " target ": met)" : "  (" on " " op " " target ": MISSED by " sprintf("%.2f", (op == ">=") ? target / r : r / target) "x)"
  }
  # The verdict goes by the best rounds for the lock, and by the medians
  # for the ping-pong: unpinned, a whole round sometimes runs with both
  # processes on one CPU, so its best round measures luck.
  function rline(label, a, b, target, on, op,   rb, rm) {
    rb = ratio(best(a), best(b)); rm = ratio(median(a), median(b))
    printf "%-52s best %7s   median %7s%s\n", label, num(rb, "%.3f"), num(rm, "%.3f"), verdict(on == "median" ? rm : rb, target, on, op)
  }
  # One table: a row per implementation, best and median unpinned and
  # pinned.
  function table(title, bench, impls, names, m, fmt,   i, u, p) {
    print title
    printf "%-44s %21s   %21s\n", "", "unpinned", "pinned (taskset -c " pin_cpu ")"
    printf "%-44s %10s %10s   %10s %10s\n", "implementation", "best", "median", "best", "median"
    for (i = 1; i <= m; i++) {
      u = "unpinned " bench " " impls[i]; p = "pinned " bench " " impls[i]
      printf "%-44s %10s %10s   %10s %10s\n", names[impls[i]], num(best(u), fmt), num(median(u), fmt), num(best(p), fmt), num(median(p), fmt)
    }
    print ""
  }
  END {
    if (run_shm) {
    split("qipc pthread-robust sysv-undo qt5", lock_impls, " ")
    lock_name["qipc"] = "qipc QipcSharedMemory lock/unlock"
    lock_name["pthread-robust"] = "robust pshared pthread mutex (floor)"
    lock_name["sysv-undo"] = "raw SysV semop -1/+1, SEM_UNDO"
    lock_name["qt5"] = "Qt 5 QSharedMemory lock/unlock"
    print "== Uncontended lock+unlock of a shared memory segment, ns per pair =="
    printf "%-40s %10s %10s %7s\n", "implementation", "best", "median", "rounds"
    for (i = 1; i <= 4; i++) {
      k = "none lock " lock_impls[i]
      printf "%-40s %10s %10s %7s\n", lock_name[lock_impls[i]], num(best(k), "%.1f"), num(median(k), "%.1f"), (k in n) ? n[k] : 0
    }
    print ""

    split("qipc sysv-undo sysv-plain qt5", pp_impls, " ")
    pp_name["qipc"] = "qipc QipcSystemSemaphore"
    pp_name["sysv-undo"] = "raw SysV semop, SEM_UNDO (as Qt)"
    pp_name["sysv-plain"] = "raw SysV semop, plain"
    pp_name["qt5"] = "Qt 5 QSystemSemaphore"
    print "== Two-process semaphore ping-pong, us per round trip (" cpus " CPUs) =="
    printf "%-36s %21s   %21s\n", "", "unpinned", "pinned (taskset -c " pin_cpu ")"
    printf "%-36s %10s %10s   %10s %10s\n", "implementation", "best", "median", "best", "median"
    for (i = 1; i <= 4; i++) {
      u = "unpinned pingpong " pp_impls[i]; p = "pinned pingpong " pp_impls[i]
      printf "%-36s %10s %10s   %10s %10s\n", pp_name[pp_impls[i]], num(best(u), "%.2f"), num(median(u), "%.2f"), num(best(p), "%.2f"), num(median(p), "%.2f")
    }
    print ""
    print "== The same ping-pong, CPU time of both processes per round trip, us =="
    print "== (not counting time spent waiting for a CPU that others use)    =="
    printf "%-36s %21s   %21s\n", "", "unpinned", "pinned (taskset -c " pin_cpu ")"
    printf "%-36s %10s %10s   %10s %10s\n", "implementation", "best", "median", "best", "median"
    for (i = 1; i <= 4; i++) {
      u = "unpinned pingpong-cpu " pp_impls[i]; p = "pinned pingpong-cpu " pp_impls[i]
      printf "%-36s %10s %10s   %10s %10s\n", pp_name[pp_impls[i]], num(best(u), "%.2f"), num(median(u), "%.2f"), num(best(p), "%.2f"), num(median(p), "%.2f")
    }
    print ""
    }

    if (run_socket) {
    ns = split("qipc qt5 raw-blocking raw-poll", sk_impls, " ")
    sk_name["qipc"] = "qipc QipcLocalSocket (GMainLoop)"
    sk_name["qt5"] = "Qt 5 QLocalSocket (event loop)"
    sk_name["raw-blocking"] = "raw AF_UNIX, blocking read/write"
    sk_name["raw-poll"] = "raw AF_UNIX, poll() + non-blocking"
    table("== Socket ping-pong, 64-byte frames, us per round trip (" cpus " CPUs) ==", "socket-pingpong", sk_impls, sk_name, ns, "%.2f")
    table("== The same socket ping-pong, CPU time of both processes per round trip, us ==", "socket-pingpong-cpu", sk_impls, sk_name, ns, "%.2f")
    table("== Socket throughput, 64-byte frames one way, messages/s (best = highest) ==", "socket-throughput", sk_impls, sk_name, ns, "%.0f")
    table("== The same throughput, CPU time of both processes per message, ns ==", "socket-throughput-cpu", sk_impls, sk_name, ns, "%.0f")
    }

    print "== Ratios qipc / peer, of the best rounds and of the medians =="
    if (run_shm) {
    rline("lock: qipc / Qt 5 QSharedMemory", "none lock qipc", "none lock qt5", 0.1, "best")
    rline("lock: qipc / raw SysV semop", "none lock qipc", "none lock sysv-undo", "", "best")
    rline("lock: qipc / robust pthread mutex", "none lock qipc", "none lock pthread-robust", "", "best")
    rline("ping-pong unpinned: qipc / raw SysV (SEM_UNDO)", "unpinned pingpong qipc", "unpinned pingpong sysv-undo", 1.2, "median")
    rline("ping-pong unpinned: qipc / raw SysV (plain)", "unpinned pingpong qipc", "unpinned pingpong sysv-plain", 1.2, "median")
    rline("ping-pong unpinned: qipc / Qt 5 QSystemSemaphore", "unpinned pingpong qipc", "unpinned pingpong qt5", "", "median")
    rline("ping-pong pinned: qipc / raw SysV (SEM_UNDO)", "pinned pingpong qipc", "pinned pingpong sysv-undo", 1.2, "median")
    rline("ping-pong pinned: qipc / raw SysV (plain)", "pinned pingpong qipc", "pinned pingpong sysv-plain", 1.2, "median")
    rline("ping-pong pinned: qipc / Qt 5 QSystemSemaphore", "pinned pingpong qipc", "pinned pingpong qt5", "", "median")
    rline("ping-pong CPU unpinned: qipc / raw SysV (SEM_UNDO)", "unpinned pingpong-cpu qipc", "unpinned pingpong-cpu sysv-undo", "", "median")
    rline("ping-pong CPU pinned: qipc / raw SysV (SEM_UNDO)", "pinned pingpong-cpu qipc", "pinned pingpong-cpu sysv-undo", "", "median")
    }
    if (run_socket) {
    for (i = 1; i <= 2; i++) {
      pin = (i == 1) ? "unpinned" : "pinned"
      rline("socket round trip " pin ": qipc / raw blocking", pin " socket-pingpong qipc", pin " socket-pingpong raw-blocking", 1.3, "median")
      rline("socket round trip " pin ": qipc / raw poll", pin " socket-pingpong qipc", pin " socket-pingpong raw-poll", "", "median")
      rline("socket round trip " pin ": qipc / Qt 5", pin " socket-pingpong qipc", pin " socket-pingpong qt5", 1, "median", "<")
    }
    for (i = 1; i <= 2; i++) {
      pin = (i == 1) ? "unpinned" : "pinned"
      rline("socket throughput " pin ": qipc / raw blocking", pin " socket-throughput qipc", pin " socket-throughput raw-blocking", "", "median")
      rline("socket throughput " pin ": qipc / Qt 5", pin " socket-throughput qipc", pin " socket-throughput qt5", 1.5, "median", ">=")
    }
    }
  }
'
)
fi

# The tables first (shm and socket, then channels), the ratios last.
chan_summary=$(sed -n '/^== /,$p' "$chan_out")
[ -z "$summary" ] || printf '%s\n' "$summary" | sed '/^== Ratios/,$d'
[ -z "$chan_summary" ] || printf '%s\n' "$chan_summary" | sed '/^== Ratios/,$d'
[ -z "$summary" ] || printf '%s\n' "$summary" | sed -n '/^== Ratios/,$p'
[ -z "$chan_summary" ] || printf '%s\n' "$chan_summary" | sed -n '/^== Ratios/,$p'

# The signals suite is one program too; its table and ratios come last.
if [ "$run_signals" = 1 ]; then
  echo
  echo "# signals: an exported object's signals over D-Bus, next to hand-written emit_signal"
  "$sig_bench" --rounds "$sig_rounds" --signals "$sig_signals"
fi
