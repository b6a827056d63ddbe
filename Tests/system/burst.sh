#!/usr/bin/env bash
# Bursts: five rounds of 1,000 connections against predict, then 2,024 connections against a
# limit of 1,024. After each round /healthz must answer within 1 s and the server's open file
# descriptors must return to where they started within 3 s (libmicrohttpd 0.9.75 with epoll
# stops closing a worker's connections once that worker reaches its share of MHD's own limit,
# and stalls after a full batch of 128 events: CI once saw 512 = 4 x 128 left open).
# Usage: Tests/system/burst.sh [BINARY] [SECONDS_PER_ROUND]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-$(swift build --show-bin-path)/lstm-serve}
seconds=${2:-3}
. Tests/system/lib/server.sh
start_server "$bin" --log-level warning --connection-limit 1024 --per-ip-connection-limit 0
lua=$(mktemp --suffix=.lua)
trap 'kill $pid 2>/dev/null || true; rm -f "$log" "$lua"' EXIT
cat >"$lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("examples/week.json"); wrk.body = f:read("*a"); f:close()
EOF
fds() { ls "/proc/$pid/fd" | wc -l; }
baseline=$(fds)
fails=0
passes=0
round() {  # name, connections
  local out answered
  out=$(wrk -t2 -c"$2" -d"${seconds}s" --timeout 2s -s "$lua" "$base/v1/predict" 2>&1)
  answered=$(echo "$out" | sed -n 's/^ *\([0-9]*\) requests in.*/\1/p')
  local t0 health now
  t0=$(date +%s.%N)
  health=$(curl -s -m 1 -o /dev/null -w '%{http_code} %{time_total}' "$base/healthz" || echo "timeout")
  for _ in $(seq 30); do now=$(fds); [ "$now" -le "$baseline" ] && break; sleep 0.1; done
  if [[ "$health" == 200* ]] && [ "$now" -le "$baseline" ] && [ "${answered:-0}" -gt 0 ]; then
    echo "ok   $1: $answered answers, healthz $health s, fds $now (baseline $baseline)"; passes=$((passes + 1))
  else
    echo "FAIL $1: $answered answers, healthz '$health', fds $now (baseline $baseline)"; echo "$out"; fails=$((fails + 1))
  fi
}
for i in 1 2 3 4 5; do round "burst $i (1000 connections)" 1000; done
round "2024 connections against a limit of 1024" 2024
kill -0 $pid || { echo "FAIL server died"; fails=$((fails + 1)); }
echo "burst: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
