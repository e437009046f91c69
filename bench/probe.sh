#!/usr/bin/env bash
# Builds release binaries and runs probe-bench: what finding out an upstream's MCP
# revision costs, on a server's first connection and on later ones, next to a bare
# initialize. Flags go to probe-bench (`--help` lists them).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --release --workspace --bins
exec target/release/probe-bench "$@"
