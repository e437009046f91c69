#!/usr/bin/env bash
# Runs every test: unit tests, and end-to-end tests against a real broker, real
# mcp-server and kafka-worker processes, a real stdio MCP server and the Python SDK.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
bash scripts/validate-deploy.sh
# The end-to-end tests start the binaries, so build them first.
cargo build --workspace --bins
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
