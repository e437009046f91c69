#!/usr/bin/env bash
# Builds release binaries and runs console-bench: a broker of its own, topics of
# real size and a `kafka-worker console`; prints each page's time per view (one request
# at a time) and the records it read. Flags go to console-bench (`--help` lists them).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --release --workspace --bins
exec target/release/console-bench "$@"
