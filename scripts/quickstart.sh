#!/usr/bin/env bash
# The whole thing, locally: installs what it needs, builds, starts a broker,
# mcp-server, kafka-worker and the console, publishes the sample job (server-init of
# mcp-server-time), prints its result record, applies a schedule and shows it fire,
# asks the console for the job, and shuts everything down (KEEP_RUNNING=1: not before
# Ctrl-C, so the console can be looked at).
# Ports: BROKER_PORT (default 9092), PORT (mcp-server, default 8080), CONSOLE_PORT
# (default 8081), METRICS_PORT (the worker's, default 9090; the console's is one above).
set -euo pipefail
cd "$(dirname "$0")/.."

BROKER_PORT=${BROKER_PORT:-9092}
PORT=${PORT:-8080}
CONSOLE_PORT=${CONSOLE_PORT:-8081}
METRICS_PORT=${METRICS_PORT:-9090}
CONSOLE_KEY=quickstart-console
JOB=${1:-examples/server-init-time.json}
RUN_DIR=.run
mkdir -p "$RUN_DIR"

bash scripts/install-deps.sh
echo "==> building" >&2
cargo build --workspace --bins --quiet
BIN=target/debug

pids=()
stop_broker() { :; }
cleanup() {
  echo "==> shutting down" >&2
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  stop_broker
}
trap cleanup EXIT

wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on port $1; see $RUN_DIR/*.log" >&2
  exit 1
}

echo "==> Apache Kafka on 127.0.0.1:$BROKER_PORT" >&2
rm -rf "$RUN_DIR/kafka"
bash scripts/kafka.sh start "$RUN_DIR/kafka" "$BROKER_PORT" >/dev/null
stop_broker() { bash scripts/kafka.sh stop "$RUN_DIR/kafka"; }

export KAFKA_BROKERS=127.0.0.1:$BROKER_PORT KAFKA_TOPIC=mcp-jobs MCP_CONSUMER_GROUP=mcp-workers
export MCP_API_KEY=quickstart-key MCP_SERVER_URL=http://127.0.0.1:$PORT

echo "==> mcp-server on 127.0.0.1:$PORT" >&2
PORT=$PORT MCP_BIND=127.0.0.1 MCP_API_KEYS=$MCP_API_KEY MCP_ALLOWED_COMMANDS=mcp-server-time \
  "$BIN/mcp-server" >"$RUN_DIR/mcp-server.log" 2>&1 &
pids+=($!)
wait_port "$PORT"

"$BIN/kafka-worker" create-topics --partitions 3 2>>"$RUN_DIR/kafka-worker.log"
echo "==> kafka-worker" >&2
METRICS_PORT=$METRICS_PORT "$BIN/kafka-worker" run >>"$RUN_DIR/kafka-worker.log" 2>&1 &
pids+=($!)
echo "==> the console on http://localhost:$CONSOLE_PORT (key: $CONSOLE_KEY)" >&2
CONSOLE_API_KEYS=$CONSOLE_KEY CONSOLE_PORT=$CONSOLE_PORT METRICS_PORT=$((METRICS_PORT + 1)) \
  "$BIN/kafka-worker" console >"$RUN_DIR/console.log" 2>&1 &
pids+=($!)
wait_port "$CONSOLE_PORT"

echo "==> publishing $JOB and waiting for its result" >&2
"$BIN/kafka-worker" publish "$JOB" --wait 120 2>>"$RUN_DIR/publish.log"

echo "==> a schedule (examples/schedules.yaml: the time in Paris every 5 s) until it has fired" >&2
"$BIN/kafka-worker" schedules apply examples/schedules.yaml 2>>"$RUN_DIR/publish.log"
for _ in $(seq 1 60); do
  "$BIN/kafka-worker" schedules list --json 2>>"$RUN_DIR/publish.log" | grep -q '"lastFired": "' && break
  sleep 0.5
done
"$BIN/kafka-worker" schedules list 2>>"$RUN_DIR/publish.log"
"$BIN/kafka-worker" schedules delete paris-time 2>>"$RUN_DIR/publish.log"

job_id=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["jobID"])' "$JOB")
echo "==> the console's view of $job_id (GET /api/jobs/$job_id; the same on its Jobs page)" >&2
python3 - "$CONSOLE_PORT" "$CONSOLE_KEY" "$job_id" <<'PY'
import json, sys, urllib.request
port, key, job_id = sys.argv[1:]
request = urllib.request.Request(f"http://127.0.0.1:{port}/api/jobs/{job_id}", headers={"X-API-Key": key})
found = json.load(urllib.request.urlopen(request, timeout=30))
for outcome in found["outcomes"]:
    print(f"{found['jobID']}: {outcome['status']} after {outcome['attempts']} attempt(s), by {outcome['worker']}")
PY
if [ -n "${KEEP_RUNNING:-}" ]; then
  echo "==> running: the console at http://localhost:$CONSOLE_PORT (key: $CONSOLE_KEY); Ctrl-C stops everything" >&2
  wait
fi
