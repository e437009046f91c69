"""Two replicas, no stickiness: the official Python MCP SDK talks to mcp-server through
an HTTP transport that sends every request to the next replica in turn, the way a load
balancer without session affinity would.

Usage: alternating_client.py URL_A URL_B API_KEY FIXTURE. Prints how many requests went
to each replica and exits non-zero on the first check that fails.
"""

import asyncio
import sys

import httpx2 as httpx
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client


class Alternating(httpx.AsyncBaseTransport):
    """Sends request N to replica N mod len(replicas)."""

    def __init__(self, replicas: list[httpx.URL]) -> None:
        self.replicas = replicas
        self.sent = [0] * len(replicas)
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = sum(self.sent) % len(self.replicas)
        self.sent[index] += 1
        replica = self.replicas[index]
        request.url = request.url.copy_with(host=replica.host, port=replica.port)
        request.headers["host"] = f"{replica.host}:{replica.port}"
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def main(url_a: str, url_b: str, api_key: str, fixture: str) -> None:
    transport = Alternating([httpx.URL(url_a), httpx.URL(url_b)])
    http = httpx.AsyncClient(transport=transport, headers={"Authorization": f"Bearer {api_key}"})
    async with http, streamable_http_client(url_a, http_client=http) as (read, write, *_):
        async with ClientSession(read, write) as session:
            await session.initialize()
            names = sorted(tool.name for tool in (await session.list_tools()).tools)
            assert {"call_tool", "list_tools", "server_initialize"} <= set(names), names
            config = {"command": fixture}
            for n in range(8):
                result = await session.call_tool(
                    "call_tool",
                    {"serverName": "fixture", "config": config, "tool": "echo", "arguments": {"text": f"call {n}"}},
                )
                assert not result.is_error, result
                assert result.content[0].text == f"call {n}", result
    print(f"sent: {transport.sent}")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
