#!/usr/bin/env bash
# Runs every test: unit tests, and end-to-end tests against a real Apache Kafka broker,
# real mcp-server and kafka-worker processes, real Redis servers, real stdio MCP servers
# and real MCP clients.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
# The end-to-end tests start the binaries, so build them first, with the tests in the
# same invocation: one feature set for both, so the test run below rebuilds nothing.
cargo build --workspace --bins --tests
KAFKA_WORKER=target/debug/kafka-worker bash scripts/validate-deploy.sh
# One Apache Kafka broker for the whole run; every test makes topics and groups of its own.
broker_dir="$(mktemp -d)"
trap 'bash scripts/kafka.sh stop "$broker_dir"; rm -rf "$broker_dir"' EXIT
KAFKA_TEST_BROKERS="$(bash scripts/kafka.sh start "$broker_dir")"
export KAFKA_TEST_BROKERS
echo "Apache Kafka for the tests at $KAFKA_TEST_BROKERS (log: $broker_dir/node-1/broker.log)" >&2
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
