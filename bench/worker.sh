#!/usr/bin/env bash
# Builds release binaries and runs worker-bench: broker, mcp-server and kafka-worker on
# this machine; prints the scenario table and the targets. Flags go to worker-bench
# (`--help` lists them).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --release --workspace --bins
exec target/release/worker-bench "$@"
