#!/bin/sh
# Writes the seed corpus with make-corpus, replacing the old one; with
# --check, writes it to WORK-DIR instead and fails if it differs from
# CORPUS-DIR.
#
# Usage: corpus.sh MAKE-CORPUS CORPUS-DIR [--check WORK-DIR]
set -eu

make_corpus=$1
corpus=$2

if [ "${3:-}" = --check ]; then
  rm -rf "$4"
  "$make_corpus" "$4"
  if ! diff -r "$corpus" "$4"; then
    echo "The seed corpus in $corpus is not what make-corpus writes:" >&2
    echo "regenerate it with: meson compile -C BUILD-DIR update-fuzz-corpus" >&2
    exit 1
  fi
  exit 0
fi

rm -rf "$corpus/broker-frames" "$corpus/client-frames" "$corpus/json-messages" "$corpus/json-data"
"$make_corpus" "$corpus"
