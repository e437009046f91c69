"""The official Python MCP SDK (2.3) as a host that answers what a tool asks (sampling
and elicitation callbacks), against a named endpoint in front of
tests/python/reference_server.py, whose test_sampling and test_elicitation ask their
caller.

Usage: asking_client.py URL API_KEY MODE EXPECT, with EXPECT `answered` (both tools
complete with what the callbacks gave) or `refused` (each call fails at once with an
error that names the servers file's `sessions` option). Prints one line per call and
exits non-zero on the first that is not as expected.
"""

import asyncio
import sys
import time

from mcp import Client
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import CreateMessageResult, ElicitResult, TextContent


async def sample(context, params):
    return CreateMessageResult(
        role="assistant", content=TextContent(type="text", text="sampled by the host"), model="host-model"
    )


async def elicit(context, params):
    return ElicitResult(action="accept", content={"username": "ada", "email": "ada@example.com"})


CALLS = [
    ("test_sampling", {"prompt": "say something"}, "LLM response: sampled by the host"),
    ("test_elicitation", {"message": "who are you?"}, "User response: action=accept, content={"),
]


async def main(url: str, api_key: str, mode: str, expect: str) -> None:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {api_key}"})
    client = Client(
        streamable_http_client(url, http_client=http), mode=mode, sampling_callback=sample, elicitation_callback=elicit
    )
    async with http, client:
        print(f"connected: mode {mode}, protocol {client.session.protocol_version}")
        for tool, arguments, answer in CALLS:
            started = time.monotonic()
            try:
                result = await client.call_tool(tool, arguments)
            except MCPError as e:
                took = time.monotonic() - started
                assert expect == "refused", f"{tool}: {e.error.message}"
                assert "sessions" in e.error.message, e.error.message
                assert took < 5, f"{tool} took {took:.1f}s to be refused"
                print(f"{tool}: refused in {took:.2f}s: {e.error.message}")
                continue
            assert expect == "answered", f"{tool} answered: {result}"
            assert not result.is_error, result
            assert result.content[0].text.startswith(answer), result
            assert tool != "test_elicitation" or '"username": "ada"' in result.content[0].text, result
            print(f"{tool}: {result.content[0].text}")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
