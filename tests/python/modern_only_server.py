"""An MCP server that speaks only 2026-07-28, as the newest servers do: the Python
SDK's MCPServer with a middleware that refuses the `initialize` handshake and any
request made at an older revision.

    python3 modern_only_server.py stdio
    python3 modern_only_server.py http PORT     # stateless Streamable HTTP at /mcp

With `--speak-nothing` it refuses `server/discover` too: a server that speaks no
revision a client offers. With `--slow-first-start PATH` its first start (while PATH
does not exist; it then creates it) waits 11 s before it reads anything: a server that
pays for a cold start once (an interpreter compiling its modules on a loaded machine).
"""

import os
import sys
import time
from typing import Annotated

from pydantic import Field

from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError

MODERN = "2026-07-28"


class RefuseOlderRevisions:
    async def __call__(self, ctx, call_next):
        if ctx.method == "server/discover" and "--speak-nothing" in sys.argv:
            raise MCPError(-32601, "server/discover: this server speaks nothing you know")
        if ctx.method == "initialize":
            raise MCPError(-32601, f"initialize: this server speaks only {MODERN}")
        if ctx.request_id is not None and ctx.protocol_version != MODERN:
            raise MCPError(
                -32022,
                f"protocol version {ctx.protocol_version} is not supported",
                {"supported": [MODERN], "requested": ctx.protocol_version},
            )
        return await call_next(ctx)


server = MCPServer("modern-only", middleware=[RefuseOlderRevisions()])


@server.tool()
def echo(text: str) -> str:
    """Returns its text."""
    return f"echo: {text}"


@server.tool()
def route(region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})]) -> str:
    """Routed on its region: a client must mirror it into an Mcp-Param-Region header."""
    return f"routed to {region}"


@server.tool()
async def count(n: int, ctx: Context) -> str:
    """Reports progress 1..n, then returns how far it counted."""
    for i in range(1, n + 1):
        await ctx.report_progress(i, n, f"step {i}")
    return f"counted to {n}"


if __name__ == "__main__":
    if "--slow-first-start" in sys.argv:
        marker = sys.argv[sys.argv.index("--slow-first-start") + 1]
        if not os.path.exists(marker):
            open(marker, "w").close()
            time.sleep(11)
    if len(sys.argv) >= 3 and sys.argv[1] == "http":
        server.run(
            "streamable-http",
            host="127.0.0.1",
            port=int(sys.argv[2]),
            stateless_http=True,
            json_response=True,
        )
    else:
        server.run("stdio")
