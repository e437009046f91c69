"""The durable-tasks peer for bench/tasks.sh: FastMCP 4.1.4 with fastmcp-tasks 4.1.4, its
tools run as tasks by Docket on Redis (its in-process worker), over Streamable HTTP.

    FM_REDIS_URL=redis://127.0.0.1:PORT/0 FM_TOKEN=KEY python fastmcp_tasks_server.py PORT

Tools, each always a task: `echo(text)` (the trivial one) and `sleep(ms)`.
"""

import asyncio
import os
import sys
from datetime import timedelta

from fastmcp import FastMCP
from fastmcp.server.auth.providers.jwt import StaticTokenVerifier
from fastmcp.utilities.tasks import TaskConfig
from fastmcp_tasks import TasksExtension

token = os.environ["FM_TOKEN"]
mcp = FastMCP(
    "fastmcp-tasks-peer",
    auth=StaticTokenVerifier(tokens={token: {"client_id": "bench", "scopes": []}}),
)
mcp.add_extension(TasksExtension(url=os.environ["FM_REDIS_URL"]))
poll = timedelta(milliseconds=int(os.environ.get("FM_POLL_INTERVAL_MS", "1000")))
as_task = TaskConfig(mode="required", poll_interval=poll)


@mcp.tool(task=as_task)
async def echo(text: str) -> str:
    """Return the text it was given."""
    return text


@mcp.tool(task=as_task)
async def sleep(ms: int) -> str:
    """Sleep for `ms` milliseconds, then answer."""
    await asyncio.sleep(ms / 1000)
    return f"slept {ms} ms"


if __name__ == "__main__":
    mcp.run(transport="http", host="127.0.0.1", port=int(sys.argv[1]), path="/mcp",
            show_banner=False, log_level="warning")
