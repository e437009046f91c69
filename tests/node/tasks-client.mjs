// The TypeScript Tasks client (@modelcontextprotocol/ext-tasks) on the SDK v2 client, as
// a user of it would call a tool as a task at 2026-07-28: the session calls the tool,
// then settles the task by polling tasks/get (and by pushed notifications/tasks, with
// --listen); with --cancel-after-ms N it cancels N ms after the task was created. Prints
// one JSON line per event: created, each status, and how it ended (the default result
// codec: a completed result must carry resultType, as 2026-07-28 results do).
//
//   node tasks-client.mjs URL KEY TOOL ARGS_JSON [--listen] [--cancel-after-ms N]
//
// ext-tasks builds a 2026-07-28 session only on a request coordinator the host owns
// (rawDispatch): here a second SDK transport, one POST per request, answers matched by id.
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { createTaskSessionFromClient, DispatchError } from "@modelcontextprotocol/ext-tasks/client";

const PROTOCOL = "2026-07-28";
const TASKS = "io.modelcontextprotocol/tasks";
const say = (event, fields = {}) => console.log(JSON.stringify({ event, ...fields }));

const [url, key, tool, argumentsJson, ...flags] = process.argv.slice(2);
const listen = flags.includes("--listen");
const cancelAt = flags.indexOf("--cancel-after-ms");
const cancelAfterMs = cancelAt >= 0 ? Number(flags[cancelAt + 1]) : undefined;
const requestInit = { headers: { Authorization: `Bearer ${key}` } };
const clientInfo = { name: "mcp-jobs-e2e-tasks", version: "1.0.0" };
const clientCapabilities = { extensions: { [TASKS]: {} } };

async function coordinator() {
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit });
  const pending = new Map();
  let next = 0;
  transport.onmessage = (message) => {
    if ("id" in message && pending.has(message.id)) {
      pending.get(message.id).resolve(message);
      pending.delete(message.id);
    }
  };
  await transport.start();
  const dispatch = async (request, options = {}) => {
    const id = `task-${++next}`;
    const answered = new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
    const fail = (why) => {
      pending.get(id)?.reject(new DispatchError(why, request.method === "tasks/get"));
      pending.delete(id);
    };
    await transport
      .send({ jsonrpc: "2.0", id, ...request }, {
        headers: options.context?.headers,
        requestSignal: options.signal,
        onRequestStreamEnd: () => fail(`${request.method}: the stream ended without an answer`),
      })
      .catch((error) => fail(`${request.method}: ${error.message}`));
    const message = await answered;
    return "error" in message
      ? { kind: "error", error: message.error }
      : { kind: "result", result: message.result };
  };
  return { dispatch, close: () => transport.close() };
}

const client = new Client(clientInfo, {
  capabilities: clientCapabilities,
  versionNegotiation: { mode: { pin: PROTOCOL } },
});
await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit }));
say("connected", {
  protocolVersion: client.getNegotiatedProtocolVersion(),
  tasks: client.getServerCapabilities()?.extensions?.[TASKS],
});
const raw = await coordinator();
const session = createTaskSessionFromClient(client, {
  endpointId: url,
  rawDispatch: raw.dispatch,
  v2RequestFraming: { protocolVersion: PROTOCOL, clientInfo, clientCapabilities },
});
let subscription;
let code = 1;
try {
  const execution = await session.callTool(tool, JSON.parse(argumentsJson), {
    task: { preference: "prefer" },
  });
  if (execution.kind !== "task") throw new Error("the call was answered without a task");
  say("created", { taskId: execution.handle.taskId });
  if (listen) {
    subscription = await client.listen({ taskIds: [execution.handle.taskId] });
    say("listening");
  }
  if (cancelAfterMs !== undefined) {
    setTimeout(() => execution.cancel().then(() => say("cancel sent")), cancelAfterMs);
  }
  const { outcome } = await execution.settle({
    onEvent: (event) => {
      if (event.type === "task") {
        say("status", { status: event.task.status, statusMessage: event.task.statusMessage });
      }
    },
  });
  say("ended", { status: outcome.status, result: outcome.result, error: outcome.error });
  code = 0;
} catch (error) {
  say("error", { error: `${error?.stack ?? error}` });
} finally {
  await subscription?.close().catch(() => {});
  await session.close().catch(() => {});
  await raw.close().catch(() => {});
  await client.close().catch(() => {});
}
process.exit(code);
