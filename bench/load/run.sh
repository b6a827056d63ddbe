#!/usr/bin/env bash
# HTTP load on loopback: lstm-serve (release build, the shipped temperature model), the C
# floor (libmicrohttpd + jansson parsing the same body, fixed answer) and the floor writing
# lstm-serve's answer through jansson per request ("floor+answer": what a real answer costs
# with no model at all), predict and step (spread over 1,000 sessions), at 1 and 32
# connections; then resident memory over a soak.
#   [ROUNDS=3] [MODEL=models/temperature] bench/load/run.sh [seconds per run] [soak seconds]
# MODEL=bench/out/lstm2x64 runs the 2-layer hidden-64 network issue 3 sets its targets with
# (random weights behind the temperature config; made by bench/load/make_2x64.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
soak=${2:-60}
out=bench/out
mkdir -p "$out"
command -v wrk >/dev/null || scripts/setup.sh --test
gcc -O2 -o "$out/floor" bench/load/floor.c -lmicrohttpd -ljansson
scripts/build.sh >/dev/null
model=${MODEL:-models/temperature}
[ "$model" != bench/out/lstm2x64 ] || [ -f "$model/model.safetensors" ] || python3 bench/load/make_2x64.py

start() {  # name, command... -> sets pid, base
  local log="$out/$1.log"; shift
  "$@" >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do grep -q "listening on" "$log" && break; sleep 0.1; done
  base=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$log" | head -1)
}

run_wrk() {  # base, script, connections, threads -> "rps p50 p99 errors"
  local r
  r=$(wrk -t"$4" -c"$3" -d"${secs}s" --latency -s "$2" "$1" 2>&1)
  local rps p50 p99 non2xx sockerr
  rps=$(echo "$r" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$r" | awk '$1=="50%" {print $2}')
  p99=$(echo "$r" | awk '$1=="99%" {print $2}')
  non2xx=$(echo "$r" | awk '/Non-2xx/ {print $5}')
  sockerr=$(echo "$r" | awk '/Socket errors/ {s=0; for (i=3;i<=NF;i++) if ($i ~ /^[0-9]+,?$/) s+=$i; print s}')
  echo "$rps ${p50:-?} ${p99:-?} $(( ${non2xx:-0} + ${sockerr:-0} ))"
}

declare -A result
start floor "$out/floor" 8091 2
floor_pid=$pid; floor_base=$base
start answer "$out/floor" 8093 2 --answer
answer_pid=$pid; answer_base=$base
start lstm .build/install/lstm-serve serve --port 8092 --log-level warning --model "$model" --max-sessions 100000
serve_pid=$pid; serve_base=$base
trap 'kill $floor_pid $answer_pid $serve_pid 2>/dev/null || true' EXIT

python3 bench/load/make_sessions.py "$serve_base" "$out/sessions.txt"
# The floors answer any path, so the same step script runs against them. Loopback numbers on
# a shared 2-core VM swing by 20% from minute to minute, so each scenario runs ROUNDS times,
# the servers taking turns, and each server's median round is reported.
rounds=${ROUNDS:-3}
median_round() {  # "rps p50 p99 errors" lines on stdin, one per round -> the median one
  sort -g -k1,1 | awk '{ line[NR] = $0 } END { print line[int((NR + 1) / 2)] }'
}
for scenario in predict step; do
  for c in 1 32; do
    t=$([ "$c" = 1 ] && echo 1 || echo 2)
    : >"$out/floor.rounds"; : >"$out/answer.rounds"; : >"$out/lstm.rounds"
    for _ in $(seq "$rounds"); do
      SESSIONS="$out/sessions.txt" run_wrk "$floor_base" bench/load/$scenario.lua "$c" "$t" >>"$out/floor.rounds"
      SESSIONS="$out/sessions.txt" run_wrk "$answer_base" bench/load/$scenario.lua "$c" "$t" >>"$out/answer.rounds"
      SESSIONS="$out/sessions.txt" run_wrk "$serve_base" bench/load/$scenario.lua "$c" "$t" >>"$out/lstm.rounds"
    done
    for server in floor answer lstm; do result[$server,$scenario,$c]=$(median_round <"$out/$server.rounds"); done
    errors=$(awk '{ s += $4 } END { print s }' "$out/floor.rounds" "$out/answer.rounds" "$out/lstm.rounds")
    [ "$errors" = 0 ] || echo "errors in some round of $scenario at $c connections: $errors" >&2
  done
done
printf '%-8s %-5s | %-34s | %-34s | %-5s | %-22s\n' scenario conns "lstm-serve req/s  p50  p99  errors" "floor req/s  p50  p99  errors" ratio "floor+answer req/s (ratio)"
for scenario in predict step; do
  for c in 1 32; do
    read -r lr lp50 lp99 lerr <<<"${result[lstm,$scenario,$c]}"
    read -r fr fp50 fp99 ferr <<<"${result[floor,$scenario,$c]}"
    read -r ar _ _ aerr <<<"${result[answer,$scenario,$c]}"
    ratio=$(python3 -c "print(f'{float(\"$lr\")/float(\"$fr\"):.2f}')")
    aratio=$(python3 -c "print(f'{float(\"$ar\")/float(\"$fr\"):.2f}')")
    printf '%-8s %-5s | %10s %8s %8s %6s | %10s %8s %8s %6s | %-5s | %10s (%s)\n' "$scenario" "$c" "$lr" "$lp50" "$lp99" "$lerr" "$fr" "$fp50" "$fp99" "$ferr" "$ratio" "$ar" "$aratio"
  done
done
rss() { awk '/VmRSS/ {print $2}' /proc/"$1"/status; }
before=$(rss "$serve_pid")
secs=$soak run_wrk "$serve_base" bench/load/predict.lua 32 2 >/dev/null &
w=$!
samples=""
for _ in $(seq 6); do sleep "$(( soak / 6 ))"; samples="$samples $(rss "$serve_pid")"; done
wait $w || true
after=$(rss "$serve_pid")
echo "resident memory (KiB) over a ${soak}s predict soak at 32 connections: before $before, during$samples, after $after"
