#!/usr/bin/env bash
# Builds release binaries and runs wait-bench: a Redis server of its own, two mcp-server
# replicas, 10,000 concurrent send_message_and_wait calls on one answered from the
# other; prints wake latency, memory per waiter and Redis connections. Flags go to
# wait-bench (`--help` lists them).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --release --workspace --bins
# Each waiting call is a socket on both ends.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
exec target/release/wait-bench "$@"
