"""The conformance suite's client under test: mcp-server's upstream client. The suite
starts a scenario's server and runs `conformance_client.py SERVER_URL`; this asks
mcp-server (MCP_JOBS_URL, MCP_JOBS_KEY) to list that server's tools and to call them,
so what the scenario's server sees is mcp-server speaking MCP to it.

The calls come from the scenario's context (MCP_CONFORMANCE_CONTEXT `toolCalls`) or,
when it gives none, every listed tool with arguments made from its input schema.
A call mcp-server reports as failed is printed, not fatal: the suite judges.
"""

import json
import os
import sys
import urllib.request

FILLERS = {"number": 1, "integer": 1, "string": "x", "boolean": True}


def mcp_server(tool: str, arguments: dict) -> dict:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}
    request = urllib.request.Request(
        os.environ["MCP_JOBS_URL"],
        data=json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {os.environ['MCP_JOBS_KEY']}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        },
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def filled(schema: dict) -> dict:
    properties = schema.get("properties", {})
    return {
        name: FILLERS.get(properties.get(name, {}).get("type"), "x")
        for name in schema.get("required", [])
    }


def main(url: str) -> None:
    server = {"serverName": "under-test", "config": {"url": url}}
    listed = mcp_server("list_tools", server)
    tools = listed.get("result", {}).get("structuredContent", {}).get("tools", [])
    print(f"list_tools: {[tool['name'] for tool in tools]} {listed.get('error', '')}")
    context = json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}")
    calls = context.get("toolCalls") or [
        {"name": tool["name"], "arguments": filled(tool.get("inputSchema", {}))} for tool in tools
    ]
    if os.environ.get("MCP_CONFORMANCE_SCENARIO") == "json-schema-2020-12-preservation":
        # The scenario asks the client to echo a tool's inputSchema as it holds it: here,
        # as mcp-server's list_tools relayed it, every 2020-12 keyword intact or not.
        schema = next(t["inputSchema"] for t in tools if t["name"] == "json_schema_2020_12_tool")
        calls = [{"name": "json_schema_echo", "arguments": {"schema": schema}}]
    for call in calls:
        answer = mcp_server("call_tool", {**server, "tool": call["name"], "arguments": call.get("arguments", {})})
        print(f"call_tool {call['name']}: {json.dumps(answer.get('result', answer.get('error')))[:300]}")


if __name__ == "__main__":
    main(sys.argv[-1])
