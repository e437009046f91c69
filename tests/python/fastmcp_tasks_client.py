"""FastMCP's tasks client (fastmcp 4.1.4 with fastmcp-tasks 4.1.4), as a user of it would
call a tool: `call_tool_task`, then poll with the task's own `status()` until it ends;
with --cancel-after S, `cancel()` S seconds after it was created. Prints one JSON line
per event: the task created, each status it went through (with its message), and how it
ended. Stock FastMCP: nothing is patched (it sends no Mcp-Name on tasks/*).

    python fastmcp_tasks_client.py URL KEY TOOL ARGS_JSON [--cancel-after S]
"""

import argparse
import asyncio
import json
import time

import fastmcp_tasks
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

ENDED = {"completed", "failed", "cancelled"}


def say(event: str, **fields) -> None:
    print(json.dumps({"event": event, **fields}, default=str), flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("key")
    parser.add_argument("tool")
    parser.add_argument("arguments")
    parser.add_argument("--cancel-after", type=float)
    args = parser.parse_args()

    client = Client(StreamableHttpTransport(args.url, auth=args.key), timeout=120)
    async with client:
        say("connected", protocolVersion=client.protocol_version)
        task = await fastmcp_tasks.call_tool_task(
            client, args.tool, json.loads(args.arguments), raise_on_error=False
        )
        created = task.create_result
        say("created", taskId=task.task_id, status=created.status,
            ttlMs=created.ttl_ms, pollIntervalMs=created.poll_interval_ms)
        cancel_at = None if args.cancel_after is None else time.monotonic() + args.cancel_after
        seen = None
        while True:
            if cancel_at is not None and time.monotonic() >= cancel_at:
                await task.cancel()
                say("cancel sent")
                cancel_at = None
            state = await task.status()
            if (state.status, state.status_message) != seen:
                seen = (state.status, state.status_message)
                say("status", status=state.status, statusMessage=state.status_message)
            if state.status in ENDED:
                say("ended", status=state.status, result=state.result, error=state.error)
                return
            await asyncio.sleep(0.05)


asyncio.run(main())
