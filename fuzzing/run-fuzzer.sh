#!/bin/sh
# Runs a libFuzzer target for a bounded time, as `meson test --suite fuzz`
# does, on a copy of its seed corpus: the fuzzer adds the inputs it finds
# to the corpus it runs on, and the checked-in one must not change.
# Crash inputs go to WORK-DIR/artifacts. Exits 1 on any crash, sanitizer
# report, leak or slow input: libFuzzer's own status for those is 77,
# which meson would take for a skipped test.
#
# Usage: run-fuzzer.sh FUZZER SEED-DIR WORK-DIR SECONDS [DICT]
set -eu

fuzzer=$1
seeds=$2
work=$3
seconds=$4
dict=${5:-}

export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

mkdir -p "$work/corpus" "$work/artifacts"
cp "$seeds"/* "$work/corpus/"

status=0
"$fuzzer" -max_total_time="$seconds" -timeout=10 -max_len=4096 \
  -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
  ${dict:+"-dict=$dict"} "$work/corpus" || status=$?

if [ "$status" -ne 0 ]; then
  echo "$fuzzer failed with status $status; the input is in $work/artifacts/," >&2
  echo "run it again with: $fuzzer $work/artifacts/FILE" >&2
  exit 1
fi
