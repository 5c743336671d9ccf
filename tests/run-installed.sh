#!/bin/sh
# run-installed.sh BUILDDIR TEST: installs the build into a scratch
# DESTDIR and runs TEST (a TAP test program taking --tap) against the
# installed qipc, qipc-broker and library, as a user of the package
# would run them.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -eu

builddir=$1
test=$2
destdir=$builddir/installed-for-tests
rm -rf "$destdir"
meson install -C "$builddir" --destdir "$destdir" --quiet >/dev/null

bindir=$(find "$destdir" -type f -name qipc -path '*/bin/*' | head -n 1)
libdir=$(dirname "$(find "$destdir" -name 'libqipc-1.0.so*' | head -n 1)")
[ -x "$bindir" ] || { echo "Bail out! qipc was not installed"; exit 1; }
[ -f "$destdir$(dirname "$(dirname "$bindir" | sed "s|^$destdir||")")/share/man/man1/qipc.1" ] ||
  { echo "Bail out! qipc.1 was not installed"; exit 1; }

export QIPC_TOOL="$bindir"
export QIPC_BROKER="$(dirname "$bindir")/qipc-broker"
export LD_LIBRARY_PATH="$libdir"
exec "$test" --tap
