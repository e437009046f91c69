// Cross-check: the official TypeScript SDK v2 client (@modelcontextprotocol/client)
// calls mcp-server's tools in a given version-negotiation mode: `2026-07-28` (pinned:
// stateless, every result must carry `resultType`), `auto` (probe with server/discover)
// or `legacy` (initialize at 2025-11-25). Run by tests/tests/clients.rs.
//
//   node sdk-client.mjs URL API_KEY MODE
//
// Prints one line per check; exits non-zero on the first that fails.
import { connect, expect } from "./connect.mjs";

const [url, key, mode] = process.argv.slice(2);
const client = await connect(url, key, mode);
const tools = (await client.listTools()).tools.map((t) => t.name).sort();
expect(["call_tool", "list_tools", "server_initialize"].every((t) => tools.includes(t)), `the job tools in ${tools}`);
console.log(`tools: ${tools.join(",")}`);
const server = { command: "mcp-server-time", args: ["--local-timezone", "UTC"] };
const info = await client.callTool({ name: "server_initialize", arguments: { serverName: "time", config: server } });
expect(!info.isError && info.structuredContent.serverInfo.name === "mcp-time", `server_initialize: ${JSON.stringify(info)}`);
console.log(`server_initialize: ${info.structuredContent.serverInfo.name}`);
// Relayed from mcp-server-time, which speaks 2025-11-25 and sends no resultType.
const result = await client.callTool({
  name: "call_tool",
  arguments: { serverName: "time", config: server, tool: "get_current_time", arguments: { timezone: "Asia/Tokyo" } },
});
expect(!result.isError && result.structuredContent.timezone === "Asia/Tokyo", `call_tool: ${JSON.stringify(result)}`);
console.log(`call_tool: ${JSON.stringify(result.structuredContent)}`);
// Relayed from a server that speaks only 2026-07-28, its progress included.
const modern = { command: "python3", args: [new URL("../python/modern_only_server.py", import.meta.url).pathname, "stdio"] };
const updates = [];
const counted = await client.callTool(
  { name: "call_tool", arguments: { serverName: "modern", config: modern, tool: "count", arguments: { n: 3 } } },
  { onprogress: (update) => updates.push(update) },
);
expect(!counted.isError && counted.content[0].text === "counted to 3", `count: ${JSON.stringify(counted)}`);
expect(updates.map((u) => u.progress).join() === "1,2,3", `progress 1,2,3: ${JSON.stringify(updates)}`);
console.log(`relayed progress: ${updates.length} updates from a 2026-07-28 upstream`);
await client.close();
