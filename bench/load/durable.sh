#!/usr/bin/env bash
# Step throughput of the durable session store against the memory store, side by side in one
# run: release servers (memory; sqlite with session_sync process; full when FULL=1; process
# with each commit window of WINDOWS, in µs) with 1,000 sessions each, wrk taking turns on them
# for ROUNDS rounds. Prints the median req/s, its ratio to memory, the median p99 latency, the
# server CPU per step and the changes per transaction.
#   [ROUNDS=3] [FULL=1] [WINDOWS="250 1000"] bench/load/durable.sh [seconds per run] [connections]
source "$(dirname "$0")/rounds.sh"
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
names=(memory process)
[ "${FULL:-}" = 1 ] && names+=(full)
for w in ${WINDOWS:-}; do names+=("w$w"); done
declare -A base pid
for name in "${names[@]}"; do
  case $name in
    memory) store=(--session-store memory) ;;
    w*) store=(--session-store "sqlite:$work/$name.db" --session-commit-window-us "${name#w}") ;;
    *) store=(--session-store "sqlite:$work/$name.db" --session-sync "$name") ;;
  esac
  .build/install/lstm-serve serve --port 0 --log-level warning "${store[@]}" >"$work/$name.log" 2>&1 &
  pid[$name]=$!
  pids+=($!)
  for _ in $(seq 100); do grep -q "listening on" "$work/$name.log" && break; sleep 0.1; done
  base[$name]=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$work/$name.log" | head -1)
  python3 bench/load/make_sessions.py "${base[$name]}" "$work/$name.sessions"
done
run() {  # name -> "req/s p99-ms server-us-per-step"
  local name=$1 r c0 c1 n
  c0=$(awk '{print $14 + $15}' "/proc/${pid[$name]}/stat")
  local m0 m1
  m0=$(curl -s "${base[$name]}/metrics" | awk '/^lstm_serve_session_store_(commits|changes)_total/ {printf "%s ", $2}')
  r=$(SESSIONS="$work/$name.sessions" wrk -t2 -c"$conns" -d"${secs}s" --latency -s bench/load/step.lua "${base[$name]}" 2>&1)
  c1=$(awk '{print $14 + $15}' "/proc/${pid[$name]}/stat")
  m1=$(curl -s "${base[$name]}/metrics" | awk '/^lstm_serve_session_store_(commits|changes)_total/ {printf "%s ", $2}')
  if echo "$r" | grep -q "Non-2xx"; then echo "durable.sh: $name got non-2xx answers" >&2; exit 1; fi
  n=$(echo "$r" | awk '/requests in/ {print $1}')
  echo "$r" | awk -v n="$n" -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v m0="$m0" -v m1="$m1" '
    /Requests\/sec/ {rps = $2}
    / 99%/ {v = $2; if (v ~ /us$/) p = v / 1000; else if (v ~ /ms$/) p = v + 0; else p = v * 1000}
    END {split(m0, a, " "); split(m1, b, " "); per = (b[1] > a[1]) ? (b[2] - a[2]) / (b[1] - a[1]) : 0
         printf "%s/%.2f/%.1f/%.1f", rps, p, t / hz * 1e6 / n, per}'
}
declare -A all
for _ in $(seq "$rounds"); do
  for name in "${names[@]}"; do all[$name]+="$(run "$name") "; done
done
m0=$(echo "${all[memory]}" | field 1 | median)
echo "step, 1,000 sessions, median of $rounds runs of ${secs}s at $conns connections"
printf "%-8s %10s %6s %8s %10s %12s  %s\n" store "req/s" ratio "p99 ms" "server µs" "per commit" "runs (req/s)"
for name in "${names[@]}"; do
  m=$(echo "${all[$name]}" | field 1 | median)
  printf "%-8s %10s %6.3f %8s %10s %12s  %s\n" "$name" "$m" "$(awk -v a="$m" -v b="$m0" 'BEGIN {print a / b}')" \
    "$(echo "${all[$name]}" | field 2 | median)" "$(echo "${all[$name]}" | field 3 | median)" \
    "$(echo "${all[$name]}" | field 4 | median)" "$(echo "${all[$name]}" | field 1)"
done
