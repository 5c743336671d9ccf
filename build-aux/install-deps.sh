#!/bin/sh
# Installs the Debian 12 packages that building and testing qipc need,
# plus any given as arguments. Run as root; does nothing already done.
# chromium renders the generated reference for the docs-site test;
# dbus-daemon runs the private buses of the D-Bus tests (GTestDBus);
# mosquitto the MQTT tests' broker, and iproute2 (ip netns) their two
# simulated hosts.
# clang's libFuzzer runtime is libclang-rt-14-dev, only recommended by
# clang; llvm brings llvm-symbolizer for readable sanitizer reports.
set -eu

packages="meson ninja-build pkg-config gcc libc6-dev
  libglib2.0-dev libjson-glib-dev gir1.2-json-1.0 gobject-introspection libgirepository1.0-dev gir1.2-glib-2.0
  gjs python3 python3-gi python3-pytest python3-numpy valac gi-docgen chromium
  glib-networking openssl dbus-daemon
  libmosquitto-dev mosquitto mosquitto-clients iproute2
  clang libclang-rt-14-dev llvm $*"

missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done

if [ -n "$missing" ]; then
  echo "Installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing
fi
