#!/usr/bin/env bash
# mcp-server against bare rmcp, the official TypeScript and Python SDKs, supergateway
# and mcp-proxy, side by side in one run; prints two tables and the targets.
# Usage: bash bench/server.sh [--seconds N] [--connections N]
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
bash scripts/install-bench-deps.sh
cargo build --release --bin mcp-server --bin our-add-server --bin bare-rmcp-add --bin stdio-direct
exec python3 bench/server.py "$@"
