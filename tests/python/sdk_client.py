"""Cross-check: the official Python MCP SDK lists and calls mcp-server's tools.

Usage: sdk_client.py URL API_KEY. Prints one line per check and exits non-zero on
the first that fails.
"""

import asyncio
import json
import sys

from mcp import ClientSession
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

TIME_SERVER = {"command": "mcp-server-time", "args": ["--local-timezone", "UTC"]}


async def main(url: str, api_key: str) -> None:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {api_key}"})
    async with http, streamable_http_client(url, http_client=http) as (read, write, *_):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            assert init.server_info.name == "mcp-jobs", init.server_info
            print(f"initialized: {init.server_info.name} {init.server_info.version}")

            names = sorted(tool.name for tool in (await session.list_tools()).tools)
            assert {"call_tool", "list_tools", "server_initialize"} <= set(names), names
            print(f"tools: {names}")

            info = await session.call_tool("server_initialize", {"serverName": "time", "config": TIME_SERVER})
            assert not info.is_error, info
            assert info.structured_content["serverInfo"]["name"] == "mcp-time", info.structured_content
            print(f"server_initialize: {info.structured_content['serverInfo']}")

            result = await session.call_tool(
                "call_tool",
                {"serverName": "time", "config": TIME_SERVER, "tool": "get_current_time",
                 "arguments": {"timezone": "Asia/Tokyo"}},
            )
            assert not result.is_error, result
            assert result.structured_content["timezone"] == "Asia/Tokyo", result.structured_content
            print(f"call_tool: {json.dumps(result.structured_content)}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
