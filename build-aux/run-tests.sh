#!/bin/sh
# Builds qipc twice and runs every test: the full suite (C, Python, GJS,
# demo, docs check) in a normal build, and the C suite again under
# AddressSanitizer and UndefinedBehaviorSanitizer. Ends with one line
# "N passed, N failed" counted from meson's test logs.
set -u
cd "$(dirname "$0")/.."

sh build-aux/install-deps.sh || exit 1

status=0

rm -rf _build-ci _build-ci-asan
meson setup _build-ci -Ddocs=enabled -Dbench=disabled >/dev/null || exit 1
meson compile -C _build-ci || exit 1
meson test -C _build-ci --print-errorlogs || status=1

meson setup _build-ci-asan -Db_sanitize=address,undefined -Db_lundef=false \
  -Dintrospection=disabled -Dbench=disabled >/dev/null || exit 1
meson compile -C _build-ci-asan || exit 1
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  meson test -C _build-ci-asan --suite c --suite examples --print-errorlogs || status=1

/usr/bin/python3 build-aux/count-results.py \
  _build-ci/meson-logs/testlog.json _build-ci-asan/meson-logs/testlog.json || status=1
exit $status
