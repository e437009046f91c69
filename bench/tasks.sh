#!/usr/bin/env bash
# Durable MCP tasks: mcp-jobs against FastMCP + Docket on Redis, side by side in one run,
# both driven by FastMCP's own tasks client; prints a table and the ratios.
# Usage: bash bench/tasks.sh [--tasks N] [--concurrency 20,200] [--waiting N]
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cargo build --release --bin mcp-server --bin kafka-worker --bin mcp-fixture --bin tasks-load
exec tests/python/.venv-fastmcp/bin/python bench/tasks.py "$@"
