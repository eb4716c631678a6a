#!/usr/bin/env bash
# Installs (once per machine) the S3-compatible test server s3s-fs 0.14.1 (newer releases need
# a newer rustc) into ${BRIGHTRUN_CACHE_DIR:-$XDG_CACHE_HOME/brightrun}/s3s-fs-0.14.1 and
# prints the binary's path on the last line. The tests start it themselves, on loopback.
set -euo pipefail
cache="${BRIGHTRUN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/brightrun}"
root="$cache/s3s-fs-0.14.1"
bin="$root/bin/s3s-fs"
if [ ! -x "$bin" ]; then
  echo "installing s3s-fs 0.14.1 in $root (once)" >&2
  mkdir -p "$cache"
  cargo install s3s-fs@0.14.1 --locked --features binary --root "$root" --quiet >&2
fi
echo "$bin"
