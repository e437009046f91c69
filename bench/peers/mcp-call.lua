-- wrk script: POST one JSON-RPC `tools/call` per request to the URL's path and
-- count failures, so a benchmark can tell errors from successes.
--
--   BENCH_TOOL=add BENCH_ARGS='{"a":1,"b":2}' \
--     wrk -t1 -c50 -d10s --latency -s bench/peers/mcp-call.lua http://127.0.0.1:8101/mcp
--
-- Environment:
--   BENCH_TOOL      tool name (default "echo")
--   BENCH_ARGS      the tool's arguments as a JSON object (default '{"message":"hi"}'),
--                   pasted into the body as is, so it must be valid JSON
--   BENCH_AUTH      optional: the whole Authorization header value, e.g. "Bearer abc"
--   BENCH_SESSION   optional: Mcp-Session-Id for a stateful server (initialize first)
--   BENCH_PROTOCOL  optional: MCP-Protocol-Version header value, e.g. 2025-06-18
--
-- Every request gets its own JSON-RPC id (thread number * 1e9 + counter): a
-- stateful server keys in-flight requests of one session by id, so a shared
-- constant id would cross responses between concurrent connections.
--
-- done() prints wrk's usual summary plus one line to grep:
--   mcp-call: requests=N ok=N non200=N error_body=N tool_error=N rps=R p50_ms=X p90_ms=X p99_ms=X
-- non200: HTTP status other than 200. error_body: a 200 whose body contains
-- "error" (a JSON-RPC error object, or an error text). tool_error: a 200 whose
-- body has "isError":true (the tool failed). ok: the rest. wrk's own socket
-- errors and timeouts are in its "Socket errors" line.

local tool = os.getenv("BENCH_TOOL") or "echo"
local args = os.getenv("BENCH_ARGS") or '{"message":"hi"}'
local auth = os.getenv("BENCH_AUTH")
local session = os.getenv("BENCH_SESSION")
local protocol = os.getenv("BENCH_PROTOCOL")

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == '\\' then return '\\\\' end
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end

local body_head = '{"jsonrpc":"2.0","id":'
local body_tail = ',"method":"tools/call","params":{"name":' .. json_string(tool)
  .. ',"arguments":' .. args .. '}}'

local threads = {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_no", thread_count)
  table.insert(threads, thread)
end

-- Runs in each thread's own Lua state; these globals are read back in done().
function init(_)
  counter = 0
  ok = 0
  non200 = 0
  error_body = 0
  tool_error = 0
  first_failure = nil
  id_base = (thread_no or 1) * 1000000000
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Accept"] = "application/json, text/event-stream"
  if auth and auth ~= "" then wrk.headers["Authorization"] = auth end
  if session and session ~= "" then wrk.headers["Mcp-Session-Id"] = session end
  if protocol and protocol ~= "" then wrk.headers["MCP-Protocol-Version"] = protocol end
end

function request()
  counter = counter + 1
  return wrk.format(nil, nil, nil, body_head .. (id_base + counter) .. body_tail)
end

function response(status, _, body)
  local failed = false
  if status ~= 200 then
    non200 = non200 + 1
    failed = true
  elseif body and body:find("error", 1, true) then
    error_body = error_body + 1
    failed = true
  elseif body and body:find('"isError":true', 1, true) then
    tool_error = tool_error + 1
    failed = true
  else
    ok = ok + 1
  end
  if failed and first_failure == nil then
    first_failure = "HTTP " .. status .. ": " .. string.sub(body or "", 1, 300):gsub("%s+", " ")
  end
end

function done(summary, latency, _)
  local t = { ok = 0, non200 = 0, error_body = 0, tool_error = 0 }
  local sample = nil
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + (thread:get(k) or 0) end
    sample = sample or thread:get("first_failure")
  end
  local secs = summary.duration / 1e6
  io.write(string.format(
    "mcp-call: requests=%d ok=%d non200=%d error_body=%d tool_error=%d rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f\n",
    summary.requests, t.ok, t.non200, t.error_body, t.tool_error, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000))
  if sample then io.write("mcp-call: first failure: " .. sample .. "\n") end
end
