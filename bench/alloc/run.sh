#!/usr/bin/env bash
# Heap calls per request of the running server (release build), predict, step and V2 infer (JSON
# and binary tensors, the bodies tritonclient sends: bench/load/v2_bodies.py), over HTTP on
# loopback: lstm-serve runs under bench/alloc/count.c (an LD_PRELOAD shim counting malloc,
# calloc, realloc, the aligned allocators and free); after a warm-up, the counts before and
# after a wrk run of one connection, divided by the requests wrk completed.
#   bench/alloc/run.sh [seconds per run] [MODEL=models/temperature]
# With LIMITS="predict=11 step=19" it fails when a scenario makes more heap calls (malloc,
# calloc, realloc and aligned together) per request than its limit: the suite runs it so, and
# a regression on the hot path fails the build instead of waiting for a benchmark.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-3}
out=bench/out
mkdir -p "$out"
command -v wrk >/dev/null || scripts/setup.sh --test
gcc -O2 -shared -fPIC -o "$out/alloc_count.so" bench/alloc/count.c -ldl
scripts/build.sh >/dev/null
log="$out/alloc.log"
LD_PRELOAD="$PWD/$out/alloc_count.so" .build/install/lstm-serve serve --port 0 --log-level warning \
    --model "${MODEL:-models/temperature}" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q "listening on" "$log" && break; sleep 0.1; done
base=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$log" | head -1)

python3 bench/load/make_sessions.py "$base" "$out/alloc_sessions.txt"
header=$(python3 bench/load/v2_bodies.py "$out")

counts() {  # -> "malloc calloc realloc aligned free" so far
  local before
  before=$(grep -c alloc_count "$log" || true)
  kill -USR2 $pid
  for _ in $(seq 50); do [ "$(grep -c alloc_count "$log")" -gt "$before" ] && break; sleep 0.02; done
  grep alloc_count "$log" | tail -1 | sed 's/[a-z_]*=//g; s/alloc_count //'
}

fails=0
printf "%-8s %9s %8s %8s %8s %8s %8s   (heap calls per request)\n" scenario requests malloc calloc realloc aligned free
for scenario in predict step v2json v2binary; do
  export SESSIONS="$out/alloc_sessions.txt"
  script="bench/load/$scenario.lua"
  unset BODY HEADER_LENGTH
  case $scenario in
    v2json) script=bench/load/v2.lua; export BODY="$out/v2_json.body" ;;
    v2binary) script=bench/load/v2.lua; export BODY="$out/v2_binary.body" HEADER_LENGTH=$header ;;
  esac
  wrk -t1 -c1 -d1s -s "$script" "$base" >/dev/null  # warm-up: pools, templates
  read -r m0 c0 r0 a0 f0 < <(counts)
  n=$(wrk -t1 -c1 -d"${secs}s" -s "$script" "$base" | awk '/requests in/ {print $1}')
  read -r m1 c1 r1 a1 f1 < <(counts)
  awk -v s="$scenario" -v n="$n" -v m=$((m1 - m0)) -v c=$((c1 - c0)) -v r=$((r1 - r0)) -v a=$((a1 - a0)) -v f=$((f1 - f0)) \
    'BEGIN { printf "%-8s %9d %8.2f %8.2f %8.2f %8.2f %8.2f\n", s, n, m / n, c / n, r / n, a / n, f / n }'
  limit=$(echo "${LIMITS:-}" | tr ' ' '\n' | sed -n "s/^$scenario=//p")
  if [ -n "$limit" ]; then
    if awk -v n="$n" -v t=$((m1 - m0 + c1 - c0 + r1 - r0 + a1 - a0)) -v l="$limit" 'BEGIN { exit !(n > 0 && t / n <= l + 0.05) }'; then
      echo "ok   $scenario: at most $limit heap calls per request"
    else
      echo "FAIL $scenario: more than $limit heap calls per request"; fails=$((fails + 1))
    fi
  fi
done
[ "$fails" -eq 0 ]
