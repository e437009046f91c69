"""The official Python MCP SDK (2.3) as an MCP host would use it, against a named
server's endpoint (`/servers/{name}/mcp`) in front of server-everything: its own tools
(a call, progress, an upstream error), resources, resource templates, prompts and
completions, in a given connection mode (`2026-07-28`, `auto` or `legacy`).

Usage: named_client.py URL API_KEY MODE. Prints one line per check and exits non-zero
on the first that fails.
"""

import asyncio
import sys

from mcp import Client
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import PromptReference


async def main(url: str, api_key: str, mode: str) -> None:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {api_key}"})
    async with http, Client(streamable_http_client(url, http_client=http), mode=mode) as client:
        print(f"connected: mode {mode}, protocol {client.session.protocol_version}")

        names = sorted(tool.name for tool in (await client.list_tools()).tools)
        assert {"echo", "get-sum", "trigger-long-running-operation"} <= set(names), names
        assert "call_tool" not in names, "the upstream's own tools, not the meta-tools"
        print(f"tools: {len(names)}")

        echoed = await client.call_tool("echo", {"message": "through the gateway"})
        assert not echoed.is_error, echoed
        assert echoed.content[0].text == "Echo: through the gateway", echoed
        print(f"echo: {echoed.content[0].text}")

        updates = []

        async def on_progress(progress, total, message):
            updates.append((progress, total, message))

        long = await client.call_tool(
            "trigger-long-running-operation", {"duration": 1, "steps": 4}, progress_callback=on_progress
        )
        assert not long.is_error, long
        assert [u[0] for u in updates] == [1, 2, 3, 4], updates
        print(f"progress: {len(updates)} updates")

        # Passed on as the upstream answered it (server-everything: an isError result).
        try:
            missing = await client.call_tool("no-such-tool", {})
        except MCPError as e:
            print(f"unknown tool: JSON-RPC error {e.error.code}")
        else:
            assert missing.is_error and "no-such-tool" in missing.content[0].text, missing
            print(f"unknown tool: {missing.content[0].text}")

        resources = (await client.list_resources()).resources
        assert resources, "server-everything has resources"
        read = await client.read_resource(resources[0].uri)
        assert read.contents and str(read.contents[0].uri) == str(resources[0].uri), read
        print(f"resources: {len(resources)}, read {resources[0].uri}")

        templates = (await client.list_resource_templates()).resource_templates
        assert templates, "server-everything has resource templates"
        print(f"resource templates: {len(templates)}")

        prompts = sorted(p.name for p in (await client.list_prompts()).prompts)
        assert "simple-prompt" in prompts, prompts
        simple = await client.get_prompt("simple-prompt")
        assert simple.messages, simple
        print(f"prompts: {prompts}")

        completion = await client.complete(
            PromptReference(type="ref/prompt", name="completable-prompt"),
            {"name": "department", "value": "Eng"},
        )
        assert completion.completion.values == ["Engineering"], completion
        print(f"completion: {completion.completion.values}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
