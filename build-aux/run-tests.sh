#!/bin/sh
# Builds qipc three times and runs every test: the full suite (C,
# Python, GJS, demo, docs check) in a normal build, the C suite again
# under AddressSanitizer and UndefinedBehaviorSanitizer, and the frame
# codec's and the MQTT JSON codec's libFuzzer targets for a bounded time
# each (clang; fuzzing/).
# Ends with one line "N passed, N failed" counted from meson's test logs.
set -u
cd "$(dirname "$0")/.."

sh build-aux/install-deps.sh || exit 1

status=0

rm -rf _build-ci _build-ci-asan _build-ci-fuzz
meson setup _build-ci -Ddocs=enabled -Dbench=disabled >/dev/null || exit 1
meson compile -C _build-ci || exit 1
meson test -C _build-ci --print-errorlogs || status=1

meson setup _build-ci-asan -Db_sanitize=address,undefined -Db_lundef=false \
  -Dintrospection=disabled -Dbench=disabled >/dev/null || exit 1
meson compile -C _build-ci-asan || exit 1
# G_SLICE=always-malloc: GLib 2.74's slice allocator hides its blocks
# (GVariant, GBytes, GList…) from AddressSanitizer, leaked or freed.
G_SLICE=always-malloc \
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  meson test -C _build-ci-asan --suite c --suite examples --print-errorlogs || status=1

# Only the fuzz targets and the corpus generator are built here.
CC=clang meson setup _build-ci-fuzz -Dfuzzing=enabled -Dintrospection=disabled \
  -Ddocs=disabled -Dbench=disabled >/dev/null || exit 1
meson compile -C _build-ci-fuzz fuzz-broker-frames fuzz-client-frames fuzz-json-messages \
  fuzz-json-data make-corpus || exit 1
meson test -C _build-ci-fuzz --suite fuzz --print-errorlogs || status=1

/usr/bin/python3 build-aux/count-results.py \
  _build-ci/meson-logs/testlog.json _build-ci-asan/meson-logs/testlog.json \
  _build-ci-fuzz/meson-logs/testlog.json || status=1
exit $status
