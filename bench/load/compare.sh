#!/usr/bin/env bash
# Two lstm-serve binaries side by side on loopback (e.g. before and after a change), wrk taking
# turns between them so that both see the same machine minute: predict and step (spread over
# 1,000 sessions) at 1 and 32 connections, ROUNDS rounds each. Prints each binary's median
# req/s with the range, and the server's CPU time per request (user + system, /proc/PID/stat).
#   [ROUNDS=3] [DURABLE=1] bench/load/compare.sh BEFORE_BINARY AFTER_BINARY [seconds per run]
# DURABLE=1: each binary keeps its sessions in a SQLite store of its own (bench/out/compareK.db);
# otherwise in memory.
#   e.g. git worktree add /tmp/before HEAD~3 && (cd /tmp/before && swift build -c release)
#        bench/load/compare.sh /tmp/before/.build/release/lstm-serve .build/install/lstm-serve
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 2 ] || { sed -n 2,10p "$0"; exit 2; }
binaries=("$1" "$2")
secs=${3:-8}
rounds=${ROUNDS:-3}
out=bench/out
mkdir -p "$out"
command -v wrk >/dev/null || scripts/setup.sh --test
tck=$(getconf CLK_TCK)

pids=(); bases=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
for k in 0 1; do
  log="$out/compare$k.log"
  store=memory
  if [ -n "${DURABLE:-}" ]; then store="sqlite:$out/compare$k.db"; rm -f "$out/compare$k.db"*; fi
  LSTM_SERVE_SESSION_STORE=$store "${binaries[$k]}" serve --port 0 --log-level warning --max-sessions 100000 >"$log" 2>&1 &
  pids[$k]=$!
  for _ in $(seq 100); do grep -q "listening on" "$log" && break; sleep 0.1; done
  bases[$k]=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$log" | head -1)
  python3 bench/load/make_sessions.py "${bases[$k]}" "$out/compare_sessions$k.txt"
done

cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
run() {  # k scenario conns -> "rps cpu_us_per_request"
  local t c0 c1 r
  t=$([ "$3" = 1 ] && echo 1 || echo 2)
  c0=$(cpu "${pids[$1]}")
  r=$(SESSIONS="$out/compare_sessions$1.txt" wrk -t"$t" -c"$3" -d"${secs}s" -s "bench/load/$2.lua" "${bases[$1]}")
  c1=$(cpu "${pids[$1]}")
  echo "$r" | awk -v c=$((c1 - c0)) -v tck="$tck" '/requests in/ { n = $1 } /Requests\/sec/ { rps = $2 }
    END { printf "%d %.1f\n", rps, c / tck * 1e6 / n }'
}
summary() {  # file of "rps cpu" lines -> "median_rps (min-max) median_cpu"
  local r c
  r=$(sort -g -k1,1 "$1" | awk '{ v[NR] = $1 } END { printf "%d (%d-%d)", v[int((NR + 1) / 2)], v[1], v[NR] }')
  c=$(sort -g -k2,2 "$1" | awk '{ v[NR] = $2 } END { printf "%.1f", v[int((NR + 1) / 2)] }')
  echo "$r $c"
}
printf '%-8s %-5s | %-28s %-8s | %-28s %-8s\n' scenario conns "before req/s (range)" "µs CPU" "after req/s (range)" "µs CPU"
for scenario in predict step; do
  for c in 1 32; do
    : >"$out/compare0.rounds"; : >"$out/compare1.rounds"
    for _ in $(seq "$rounds"); do
      for k in 0 1; do run "$k" "$scenario" "$c" >>"$out/compare$k.rounds"; done
    done
    read -r b0 b1 b2 <<<"$(summary "$out/compare0.rounds")"
    read -r a0 a1 a2 <<<"$(summary "$out/compare1.rounds")"
    printf '%-8s %-5s | %-28s %-8s | %-28s %-8s\n' "$scenario" "$c" "$b0 $b1" "$b2" "$a0 $a1" "$a2"
  done
done
