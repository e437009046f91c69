#!/usr/bin/env bash
# Installs the peers that mcp-server is benchmarked against, none of them part of
# the product: wrk (Debian package) as the load generator; in bench/peers/ the
# official TypeScript MCP SDK with express, supergateway and the reference stdio
# server @modelcontextprotocol/server-everything (npm ci from the committed
# package-lock.json); mcp-proxy in its own venv bench/peers/.venv-mcp-proxy (it
# pins mcp<2 and would downgrade the global mcp 2.x that mcp-server-time and
# the Python peer need); and the global Python SDK mcp>=2 (MCPServer) for
# bench/peers/py_add_server.py.
# Idempotent: whatever is already installed at the wanted version is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

MCP_PROXY_VERSION=0.13.0
peers=bench/peers
venv=$peers/.venv-mcp-proxy

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# wrk: the HTTP load generator (LuaJIT scripting, --latency percentiles).
if ! command -v wrk >/dev/null 2>&1; then
  echo "installing: wrk" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi

# Node peers, at the exact versions of bench/peers/package-lock.json. Node 20+.
command -v node >/dev/null || { echo "node (20 or newer) is not on PATH" >&2; exit 1; }
node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' \
  || { echo "node $(node --version) is too old: bench peers need 20 or newer" >&2; exit 1; }
if [ ! -f "$peers/node_modules/.package-lock.json" ] \
   || [ "$peers/package-lock.json" -nt "$peers/node_modules/.package-lock.json" ] \
   || ! (cd "$peers" && npm ls --depth=0 >/dev/null 2>&1); then
  echo "installing: npm ci in $peers" >&2
  (cd "$peers" && npm ci --no-audit --no-fund --loglevel=error)
fi

# mcp-proxy in its own venv.
if [ "$("$venv/bin/mcp-proxy" --version 2>/dev/null | grep -Eo '[0-9]+\.[0-9]+\.[0-9]+' | head -n1)" != "$MCP_PROXY_VERSION" ]; then
  echo "installing: mcp-proxy==$MCP_PROXY_VERSION in $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "mcp-proxy==$MCP_PROXY_VERSION"
fi

# The Python SDK 2.x (mcp.server.mcpserver.MCPServer) for py_add_server.py.
if ! python3 -c 'import mcp.server.mcpserver, uvicorn' 2>/dev/null; then
  echo "installing: mcp>=2.3" >&2
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "mcp>=2.3"
fi

test -x "$venv/bin/mcp-proxy"
test -f "$peers/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
test -x "$peers/node_modules/.bin/supergateway"
