#!/usr/bin/env bash
# Runs a command against a throwaway Kafka broker on a free port, and always stops the broker.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
data_dir=$(mktemp -d "${TMPDIR:-/tmp}/clickstream-test-kafka.XXXXXX")
port=$($bin/python -c 'from app.kafka.broker import free_port; print(free_port())')
cleanup() {
  $bin/clickstream kafka stop --data-dir "$data_dir" >/dev/null || true
  rm -rf "$data_dir"
}
trap cleanup EXIT INT TERM
$bin/clickstream kafka start --port "$port" --data-dir "$data_dir"
export TEST_KAFKA_BOOTSTRAP="127.0.0.1:$port"
"$@"
