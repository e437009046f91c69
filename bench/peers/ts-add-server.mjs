// Benchmark peer: the official TypeScript MCP SDK (v1.x) serving one tool, `add`,
// over stateless Streamable HTTP with plain JSON responses, on Express.
//
// Shaped after the SDK's own examples/server/simpleStatelessStreamableHttp.js:
// a new McpServer and a new transport for every POST (sessionIdGenerator:
// undefined), closed when the response closes. enableJsonResponse: true makes
// the answer a single application/json body instead of an SSE stream.
// createMcpExpressApp() is express() + express.json() + the SDK's loopback
// Host-header check (like rmcp's default host allowlist).
//
// Run: PORT=8101 node bench/peers/ts-add-server.mjs   (HOST defaults to 127.0.0.1)
// Call: POST http://127.0.0.1:$PORT/mcp  (no initialize needed)
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import * as z from 'zod/v4';

const PORT = Number.parseInt(process.env.PORT ?? '8101', 10);
const HOST = process.env.HOST ?? '127.0.0.1';

function getServer() {
  const server = new McpServer({ name: 'bench-ts-add', version: '1.0.0' });
  server.registerTool(
    'add',
    {
      description: 'Add two numbers',
      inputSchema: { a: z.number(), b: z.number() },
    },
    async ({ a, b }) => ({ content: [{ type: 'text', text: String(a + b) }] }),
  );
  return server;
}

const app = createMcpExpressApp({ host: HOST });

app.post('/mcp', async (req, res) => {
  const server = getServer();
  try {
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: true,
    });
    res.on('close', () => {
      transport.close();
      server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  } catch (error) {
    console.error('Error handling MCP request:', error);
    if (!res.headersSent) {
      res.status(500).json({
        jsonrpc: '2.0',
        error: { code: -32603, message: 'Internal server error' },
        id: null,
      });
    }
  }
});

const methodNotAllowed = (_req, res) => {
  res.status(405).json({
    jsonrpc: '2.0',
    error: { code: -32000, message: 'Method not allowed.' },
    id: null,
  });
};
app.get('/mcp', methodNotAllowed);
app.delete('/mcp', methodNotAllowed);

app.listen(PORT, HOST, (error) => {
  if (error) {
    console.error('Failed to start server:', error);
    process.exit(1);
  }
  console.error(`ts-add-server listening on http://${HOST}:${PORT}/mcp`);
});

for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
