#!/bin/sh
# Builds qipc and runs the demo: processes sharing memory under a
# crash-safe lock, with change notification and a semaphore; a memfd
# handed over a local socket; and a thermostat process answering messages
# on a channel, through a broker the demo hosts on its main loop.
set -eu
cd "$(dirname "$0")/.."

sh build-aux/install-deps.sh
[ -d _build-demo ] || meson setup _build-demo -Dintrospection=disabled -Dbench=disabled
meson compile -C _build-demo qipc-demo
exec ./_build-demo/examples/qipc-demo
