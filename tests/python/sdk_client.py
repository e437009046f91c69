"""Cross-check: the official Python MCP SDK (2.3) calls mcp-server's tools in a given
connection mode: `2026-07-28` (stateless, no initialize; every result must carry
`resultType`), `auto` (discover, then the best both speak) or `legacy` (initialize at
2025-11-25).

Usage: sdk_client.py URL API_KEY MODE. Prints one line per check and exits non-zero
on the first that fails.
"""

import asyncio
import json
import os
import sys

from mcp import Client
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import PromptReference

TIME_SERVER = {"command": "mcp-server-time", "args": ["--local-timezone", "UTC"]}
# A server that speaks only 2026-07-28 (refuses initialize), reached through mcp-server.
MODERN_SERVER = {
    "command": "python3",
    "args": [os.path.join(os.path.dirname(os.path.abspath(__file__)), "modern_only_server.py"), "stdio"],
}


async def main(url: str, api_key: str, mode: str) -> None:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {api_key}"})
    async with http, Client(streamable_http_client(url, http_client=http), mode=mode) as client:
        print(f"connected: mode {mode}, protocol {client.session.protocol_version}")
        # A pinned client asks no server for its name; the others have it.
        if mode != "2026-07-28":
            assert client.server_info.name == "mcp-jobs", client.server_info
            print(f"server: {client.server_info.name} {client.server_info.version}")

        names = sorted(tool.name for tool in (await client.list_tools()).tools)
        assert {"call_tool", "list_tools", "server_initialize"} <= set(names), names
        print(f"tools: {names}")

        info = await client.call_tool("server_initialize", {"serverName": "time", "config": TIME_SERVER})
        assert not info.is_error, info
        assert info.structured_content["serverInfo"]["name"] == "mcp-time", info.structured_content
        print(f"server_initialize: {info.structured_content['serverInfo']['name']}")

        # Relayed from the upstream (which speaks 2025-11-25 and sends no resultType).
        result = await client.call_tool(
            "call_tool",
            {"serverName": "time", "config": TIME_SERVER, "tool": "get_current_time",
             "arguments": {"timezone": "Asia/Tokyo"}},
        )
        assert not result.is_error, result
        assert result.structured_content["timezone"] == "Asia/Tokyo", result.structured_content
        print(f"call_tool: {json.dumps(result.structured_content)}")

        # Relayed from an upstream that speaks only 2026-07-28, its progress included.
        updates = []

        async def on_progress(progress, total, message):
            updates.append((progress, total, message))

        counted = await client.call_tool(
            "call_tool",
            {"serverName": "modern", "config": MODERN_SERVER, "tool": "count", "arguments": {"n": 3}},
            progress_callback=on_progress,
        )
        assert not counted.is_error, counted
        assert counted.content[0].text == "counted to 3", counted
        assert [u[0] for u in updates] == [1, 2, 3], updates
        assert updates[-1][2] == "step 3", updates
        print(f"relayed progress: {len(updates)} updates from a 2026-07-28 upstream")

        # What the server does not declare, it does not serve: -32601, not an empty list.
        # (A pinned client does not ask: it has no capabilities to compare.)
        if mode != "2026-07-28":
            capabilities = client.server_capabilities
            assert capabilities.tools is not None, capabilities
            assert capabilities.prompts is None and capabilities.resources is None, capabilities
            assert capabilities.completions is None, capabilities
        for what, request in [
            ("prompts/list", client.list_prompts),
            ("resources/list", client.list_resources),
            ("resources/templates/list", client.list_resource_templates),
            ("completion/complete", lambda: client.complete(PromptReference(type="ref/prompt", name="x"), {"name": "a", "value": "b"})),
        ]:
            try:
                await request()
            except MCPError as e:
                assert e.error.code == -32601, (what, e.error)
            else:
                raise AssertionError(f"{what} answered although it is not declared")
        print("undeclared features: -32601")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
