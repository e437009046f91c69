// Shared by the TypeScript SDK client scripts: a v2 client (@modelcontextprotocol/client)
// connected to URL with an API key, negotiating the protocol version in `mode`
// (`2026-07-28` pinned, `auto` or `legacy`), and a check that throws what it expected.
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";

export async function connect(url, key, mode) {
  const negotiation = mode === "legacy" || mode === "auto" ? mode : { pin: mode };
  const client = new Client(
    { name: "mcp-jobs-e2e", version: "1.0.0" },
    { versionNegotiation: { mode: negotiation } },
  );
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${key}` } },
  });
  await client.connect(transport);
  console.log(`connected: mode ${mode}, protocol ${client.getNegotiatedProtocolVersion?.() ?? "?"}`);
  return client;
}

export function expect(condition, what) {
  if (!condition) throw new Error(`expected ${what}`);
}
