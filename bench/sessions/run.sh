#!/usr/bin/env bash
# The session store at capacity: fills a release server with N sessions (default 100000),
# then measures the 429 answers when full (wrk latency), a bystander's step meanwhile, the
# create rate with session_full_policy=evict, and RSS empty / full / after every session
# expired (TTL 60 s; the sweeper runs every 15 s).
#   bench/sessions/run.sh [N]
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-100000}
bin=.build/install/lstm-serve
[ -x "$bin" ] || scripts/build.sh
. Tests/system/lib/server.sh
rss() { awk '/VmRSS/ {printf "%.1f MB", $2 / 1024}' "/proc/$1/status"; }
lua=$(mktemp --suffix=.lua)
echo 'wrk.method = "POST"' >"$lua"
fill() {  # base: create sessions until the store refuses
  wrk -t2 -c32 -d"$((n / 5000 + 3))s" -s "$lua" "$1/v1/sessions" >/dev/null
  curl -s "$1/metrics" | awk '/^lstm_serve_sessions_active/ {print $2}'
}

for policy in reject evict; do
  start_server "$bin" --log-level warning --max-sessions "$n" --session-ttl-seconds 60 --session-full-policy "$policy" --per-ip-connection-limit 0
  trap 'kill $pid 2>/dev/null || true' EXIT
  echo "== $policy: RSS empty $(rss $pid)"
  sid=$(curl -s -X POST "$base/v1/sessions" | python3 -c 'import json,sys; print(json.load(sys.stdin)["session_id"])')
  t0=$(date +%s.%N); held=$(fill "$base"); t1=$(date +%s.%N)
  echo "filled to $held sessions in $(python3 -c "print(round($t1 - $t0, 1))") s; RSS full $(rss $pid)"
  wrk -t2 -c16 -d3s -s "$lua" "$base/v1/sessions" >/dev/null 2>&1 &
  flood=$!
  sleep 1
  step=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' "$base/v1/sessions/$sid/step" -H 'Content-Type: application/json' \
    -d '{"x": {"date": "2015-02-22", "temp_max": 11.7, "temp_min": 3.3, "precipitation": 0.0, "wind": 4.2}}')
  wait $flood
  out=$(wrk -t2 -c16 -d3s --latency -s "$lua" "$base/v1/sessions" 2>&1)
  echo "creates when full ($policy): $(echo "$out" | awk '/Requests\/sec/ {print $2}') req/s, p50 $(echo "$out" | awk '$1=="50%" {print $2}'), p99 $(echo "$out" | awk '$1=="99%" {print $2}'), $(echo "$out" | awk '/Non-2xx/ {print $5}') non-2xx"
  echo "a bystander's step meanwhile: $step s"
  if [ "$policy" = reject ]; then
    sleep 80
    echo "after every session expired: $(curl -s "$base/metrics" | awk '/^lstm_serve_sessions_active/ {print $2}') sessions, RSS $(rss $pid)"
  fi
  kill $pid; wait $pid 2>/dev/null || true
done
rm -f "$lua"
