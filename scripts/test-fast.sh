#!/usr/bin/env bash
# The fast tier: unit, in-process, snapshot and property tests of every crate (see
# .config/nextest.toml), with no trainer, server or database. Minutes after a build on two
# cores; scripts/test.sh runs everything.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
cargo nextest run --workspace --lib --bins --tests --profile fast "$@"
