#!/usr/bin/env bash
# Apache Kafka (4.1, KRaft) for tests and benchmarks, from its Maven Central jars: no
# download of a distribution, no Docker. Every node is a combined broker+controller.
#
#   scripts/kafka.sh install              copy the jars (once; idempotent), print their folder
#   scripts/kafka.sh start DIR [PORT]     format and start a single node with its data and
#                                         log in DIR, wait until it answers, print its address
#   scripts/kafka.sh cluster DIR          the same for three nodes on loopback (internal
#                                         topics replicated 3 times, min.insync.replicas=2);
#                                         prints the three addresses, comma-separated
#   scripts/kafka.sh node-start DIR N     start node N of the cluster in DIR again
#   scripts/kafka.sh node-kill DIR N      SIGKILL node N, as a crash would
#   scripts/kafka.sh stop DIR             stop every node started in DIR
# Node N lives in DIR/node-N (a single node is node 1): server.properties, data/, pid,
# broker.log (WARN and above, and the group coordinator's INFO).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
KAFKA_VERSION=4.1.1
libs="${KAFKA_LIBS:-$HOME/.cache/mcp-jobs/kafka-$KAFKA_VERSION/libs}"

install() {
  if [ ! -f "$libs/kafka_2.13-$KAFKA_VERSION.jar" ]; then
    echo "installing Apache Kafka $KAFKA_VERSION jars into $libs" >&2
    (cd "$here/kafka" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$libs" >&2)
  fi
  echo "$libs"
}

# free_ports N: N distinct free loopback ports (all bound at once, so none repeats).
free_ports() {
  python3 -c 'import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}
storage() { java -cp "$libs/*" -Dlog4j2.configurationFile="$1/log4j2.properties" kafka.tools.StorageTool "${@:2}"; }

# write_node NODE_DIR ID PORT CONTROLLER_PORT QUORUM REPLICAS MIN_ISR
write_node() {
  local node="$1" id="$2" port="$3" controller="$4" quorum="$5" replicas="$6" min_isr="$7"
  mkdir -p "$node/data"
  cat >"$node/server.properties" <<PROPS
process.roles=broker,controller
node.id=$id
controller.quorum.bootstrap.servers=$quorum
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller
advertised.listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$node/data
num.partitions=1
default.replication.factor=$replicas
min.insync.replicas=$min_isr
offsets.topic.replication.factor=$replicas
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=$replicas
transaction.state.log.min.isr=$min_isr
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=$replicas
share.coordinator.state.topic.min.isr=$min_isr
group.initial.rebalance.delay.ms=0
group.consumer.min.session.timeout.ms=3000
group.consumer.session.timeout.ms=6000
# A node that stops heartbeating is fenced (its partitions move) after this.
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=6000
PROPS
  cat >"$node/log4j2.properties" <<LOG
rootLogger.level=WARN
rootLogger.appenderRef.file.ref=file
appender.file.type=File
appender.file.name=file
appender.file.fileName=$node/broker.log
appender.file.layout.type=PatternLayout
appender.file.layout.pattern=[%d] %p %m (%c)%n
logger.groups.name=org.apache.kafka.coordinator.group
logger.groups.level=INFO
LOG
}

# node_start NODE_DIR: starts the node in the background and waits until it listens.
node_start() {
  local node="$1" port
  port="$(sed -n 's|^listeners=PLAINTEXT://127.0.0.1:\([0-9]*\),.*|\1|p' "$node/server.properties")"
  nohup java -Xms256m -Xmx512m -XX:+UseSerialGC \
    -Dlog4j2.configurationFile="$node/log4j2.properties" \
    -cp "$libs/*" kafka.Kafka "$node/server.properties" >>"$node/stdout.log" 2>&1 &
  echo $! >"$node/pid"
  local deadline=$((SECONDS + 90))
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    if ! kill -0 "$(cat "$node/pid")" 2>/dev/null; then
      echo "the Kafka node in $node exited during start-up; its log:" >&2
      cat "$node/stdout.log" "$node/broker.log" >&2 2>/dev/null || true
      exit 1
    fi
    ((SECONDS < deadline)) || { echo "the Kafka node in $node did not listen on $port within 90 s" >&2; exit 1; }
    sleep 0.2
  done
  echo "127.0.0.1:$port"
}

start() {
  local dir="$1" port controller cid
  read -r port controller <<<"$(free_ports 2)"
  port="${2:-$port}"
  install >/dev/null
  write_node "$dir/node-1" 1 "$port" "$controller" "127.0.0.1:$controller" 1 1
  cid="$(storage "$dir/node-1" random-uuid)"
  storage "$dir/node-1" format --standalone -t "$cid" -c "$dir/node-1/server.properties" --ignore-formatted >/dev/null
  node_start "$dir/node-1"
}

cluster() {
  local dir="$1" cid free quorum="" initial="" n
  install >/dev/null
  read -r -a free <<<"$(free_ports 6)"
  local ports=("" "${free[0]}" "${free[1]}" "${free[2]}") controllers=("" "${free[3]}" "${free[4]}" "${free[5]}")
  for n in 1 2 3; do
    quorum+="${quorum:+,}127.0.0.1:${controllers[n]}"
  done
  for n in 1 2 3; do
    write_node "$dir/node-$n" "$n" "${ports[n]}" "${controllers[n]}" "$quorum" 3 2
    initial+="${initial:+,}$n@127.0.0.1:${controllers[n]}:$(storage "$dir/node-$n" random-uuid)"
  done
  cid="$(storage "$dir/node-1" random-uuid)"
  for n in 1 2 3; do
    storage "$dir/node-$n" format -t "$cid" -c "$dir/node-$n/server.properties" \
      --initial-controllers "$initial" --ignore-formatted >/dev/null
  done
  # All three start together: a quorum of controllers must be up before any serves.
  local addresses=() pids=()
  for n in 1 2 3; do
    node_start "$dir/node-$n" >"$dir/node-$n/address" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
  for n in 1 2 3; do addresses+=("$(cat "$dir/node-$n/address")"); done
  (IFS=,; echo "${addresses[*]}")
}

stop_node() {
  local node="$1" pid
  pid="$(cat "$node/pid" 2>/dev/null)" || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

stop() {
  local node
  for node in "$1"/node-*; do
    [ -d "$node" ] && stop_node "$node" &
  done
  wait
}

case "${1:-}" in
  install) install ;;
  start) shift; start "$@" ;;
  cluster) shift; cluster "$@" ;;
  node-start) node_start "$2/node-$3" >/dev/null ;;
  node-kill) kill -9 "$(cat "$2/node-$3/pid")" ;;
  stop) shift; stop "$@" ;;
  *) echo "usage: $0 install | start DIR [PORT] | cluster DIR | node-start DIR N | node-kill DIR N | stop DIR" >&2; exit 2 ;;
esac
