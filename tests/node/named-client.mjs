// The official TypeScript SDK v2 client (@modelcontextprotocol/client) as an MCP host
// would use it, against a named server's endpoint (`/servers/{name}/mcp`) in front of
// server-everything: its own tools (a call, progress), resources, prompts and
// completions, in a version-negotiation mode (`2026-07-28`, `auto` or `legacy`). Run
// by tests/tests/named.rs.
//
//   node named-client.mjs URL API_KEY MODE
//
// Prints one line per check; exits non-zero on the first that fails.
import { connect, expect } from "./connect.mjs";

const [url, key, mode] = process.argv.slice(2);
const client = await connect(url, key, mode);
const tools = (await client.listTools()).tools.map((t) => t.name);
expect(tools.includes("echo") && !tools.includes("call_tool"), `the upstream's own tools in ${tools}`);
console.log(`tools: ${tools.length}`);
const echoed = await client.callTool({ name: "echo", arguments: { message: "through the gateway" } });
expect(!echoed.isError && echoed.content[0].text === "Echo: through the gateway", `echo: ${JSON.stringify(echoed)}`);
console.log(`echo: ${echoed.content[0].text}`);
const updates = [];
const long = await client.callTool(
  { name: "trigger-long-running-operation", arguments: { duration: 1, steps: 4 } },
  { onprogress: (update) => updates.push(update) },
);
expect(!long.isError && updates.map((u) => u.progress).join() === "1,2,3,4", `progress: ${JSON.stringify(updates)}`);
console.log(`progress: ${updates.length} updates`);
const resources = (await client.listResources()).resources;
const read = await client.readResource({ uri: resources[0].uri });
expect(read.contents[0].uri === resources[0].uri, `read ${resources[0].uri}: ${JSON.stringify(read)}`);
console.log(`resources: ${resources.length}, read ${resources[0].uri}`);
const prompts = (await client.listPrompts()).prompts.map((p) => p.name);
const simple = await client.getPrompt({ name: "simple-prompt" });
expect(simple.messages.length > 0, `simple-prompt: ${JSON.stringify(simple)}`);
console.log(`prompts: ${prompts.sort().join(",")}`);
const completed = await client.complete({
  ref: { type: "ref/prompt", name: "completable-prompt" },
  argument: { name: "department", value: "Eng" },
});
expect(completed.completion.values.join() === "Engineering", `completion: ${JSON.stringify(completed)}`);
console.log(`completion: ${completed.completion.values.join(",")}`);
await client.close();
