"""Benchmark peer: the official Python MCP SDK (mcp 2.x) serving one tool, `add`.

mcp 2.x renamed FastMCP to `mcp.server.mcpserver.MCPServer`. In 2.x the
transport options are arguments of `streamable_http_app()` (not of the
constructor): stateless_http=True (no Mcp-Session-Id, a fresh transport per
request) and json_response=True (one application/json body, no SSE). The
Starlette app it returns carries the session manager's lifespan, so uvicorn
must run it with lifespan on (its default). `host` turns on the SDK's
loopback Host-header check, like rmcp's default host allowlist.

Run:  PORT=8102 python3 bench/peers/py_add_server.py   (HOST defaults to 127.0.0.1)
Call: POST http://127.0.0.1:$PORT/mcp  (no initialize needed)
Uvicorn's access log is off so per-request logging does not skew a benchmark.
"""

import os

import uvicorn
from mcp.server.mcpserver import MCPServer

mcp = MCPServer("bench-py-add")


@mcp.tool()
def add(a: int, b: int) -> int:
    """Add two numbers"""
    return a + b


def main() -> None:
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8102"))
    app = mcp.streamable_http_app(
        streamable_http_path="/mcp",
        stateless_http=True,
        json_response=True,
        host=host,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
