#!/usr/bin/env bash
# Builds release binaries and runs scheduler-bench: a broker of its own and `kafka-worker
# scheduler` processes; prints occurrences fired per second against N schedules due
# every second, the price of a transaction, and the memory of 100,000 delayed jobs
# held. Flags go to scheduler-bench (`--help` lists them).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --release --workspace --bins
exec target/release/scheduler-bench "$@"
