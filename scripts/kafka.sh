#!/usr/bin/env bash
# Apache Kafka (4.1, KRaft) for tests and benchmarks, from its Maven Central jars: no
# download of a distribution, no Docker.
#
#   scripts/kafka.sh install              copy the jars (once; idempotent), print their folder
#   scripts/kafka.sh start DIR [PORT]     format and start a single-node broker+controller
#                                         with its data and log in DIR, wait until it
#                                         answers, print its address; its pid is DIR/pid
#   scripts/kafka.sh stop DIR             stop the broker started in DIR
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

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start() {
  local dir="$1" port="${2:-$(free_port)}" controller
  controller="$(free_port)"
  install >/dev/null
  mkdir -p "$dir/data"
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$controller
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller
advertised.listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
group.consumer.min.session.timeout.ms=3000
group.consumer.session.timeout.ms=6000
PROPS
  cat >"$dir/log4j2.properties" <<LOG
rootLogger.level=WARN
rootLogger.appenderRef.file.ref=file
appender.file.type=File
appender.file.name=file
appender.file.fileName=$dir/broker.log
appender.file.layout.type=PatternLayout
appender.file.layout.pattern=[%d] %p %m (%c)%n
logger.groups.name=org.apache.kafka.coordinator.group
logger.groups.level=INFO
LOG
  local cid
  cid="$(java -cp "$libs/*" kafka.tools.StorageTool random-uuid)"
  java -cp "$libs/*" -Dlog4j2.configurationFile="$dir/log4j2.properties" kafka.tools.StorageTool \
    format --standalone -t "$cid" -c "$dir/server.properties" --ignore-formatted >/dev/null
  nohup java -Xms256m -Xmx512m -XX:+UseSerialGC \
    -Dlog4j2.configurationFile="$dir/log4j2.properties" \
    -cp "$libs/*" kafka.Kafka "$dir/server.properties" >"$dir/stdout.log" 2>&1 &
  echo $! >"$dir/pid"
  local deadline=$((SECONDS + 60))
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
      echo "the Kafka broker exited during start-up; its log:" >&2
      cat "$dir/stdout.log" "$dir/broker.log" >&2 2>/dev/null || true
      exit 1
    fi
    ((SECONDS < deadline)) || { echo "the Kafka broker did not listen on $port within 60 s" >&2; exit 1; }
    sleep 0.2
  done
  echo "127.0.0.1:$port"
}

stop() {
  local dir="$1" pid
  pid="$(cat "$dir/pid" 2>/dev/null)" || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

case "${1:-}" in
  install) install ;;
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) echo "usage: $0 install | start DIR [PORT] | stop DIR" >&2; exit 2 ;;
esac
