#!/usr/bin/env bash
# `make run`: a local broker, the worker, the flash-sale simulator and the report scheduler.
# Ctrl-C stops everything this script started (and the broker only if it started it).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$PWD/.venv/bin"
export PATH="$bin:$PATH"
pids=()
started_kafka=0

stop_all() {
  trap - INT TERM EXIT
  echo
  echo "Stopping ..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$started_kafka" = 1 ]; then clickstream kafka stop; fi
}
trap stop_all INT TERM EXIT

has_command() { clickstream "$@" --help >/dev/null 2>&1; }

if ! clickstream kafka status >/dev/null 2>&1; then
  clickstream kafka start
  started_kafka=1
fi

# One worker process per CPU (at most PARTITIONS), supervised: a process that stops (a crash,
# or its stall watchdog) is restarted, as `restart:` does in the compose stack.
clickstream worker --processes auto &
pids+=($!)
echo "worker: windows, alerts and Parquet, one process per CPU; dashboard at http://${WEB_HOST:-127.0.0.1}:${WEB_PORT:-6066}/"

if has_command simulate; then
  sleep 5
  clickstream simulate --scenario flash-sale &
  pids+=($!)
  echo "simulator: flash-sale scenario at a live pace (an alert within about two minutes)"
fi

if has_command scheduler; then
  clickstream scheduler &
  pids+=($!)
  echo "scheduler: daily report at REPORT_TIME; reports in ${DATA_DIR:-./data}/reports"
fi

echo "Press Ctrl-C to stop."
wait -n "${pids[@]}" || true
