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

# The broker listens on the port KAFKA_BOOTSTRAP_SERVERS (.env or the environment) names; one
# already running on another port is a one-line error naming the fix.
if clickstream kafka status >/dev/null 2>&1; then
  clickstream kafka start
else
  clickstream kafka start
  started_kafka=1
fi
# Where to look, as the settings (.env included) say.
read -r dashboard reports < <(python -c '
from app.settings import load_settings
from app.workers.command import dashboard_url
s = load_settings()
print(dashboard_url(s), s.data_dir / "reports")')

# One worker process per CPU (at most PARTITIONS), supervised: a process that stops (a crash,
# or its stall watchdog) is restarted, as `restart:` does in the compose stack.
clickstream worker --processes auto &
worker=$!
pids+=("$worker")
echo "worker: windows, alerts and Parquet, one process per CPU; dashboard at $dashboard"

sleep 5
if ! kill -0 "$worker" 2>/dev/null; then  # refused to start (a port in use, a bad setting)
  status=0
  wait "$worker" || status=$?
  exit "$status"
fi
clickstream simulate --scenario flash-sale &
pids+=($!)
echo "simulator: flash-sale scenario at a live pace (an alert within about two minutes)"

clickstream scheduler &
pids+=($!)
echo "scheduler: daily report at REPORT_TIME; reports in $reports"

echo "Press Ctrl-C to stop."
# The first of them to end stops the others (stop_all); its status is make run's.
status=0
wait -n "${pids[@]}" || status=$?
exit "$status"
