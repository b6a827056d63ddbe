#!/usr/bin/env bash
# V2 infer against the native predict on the same model (temperature, the example week),
# side by side in one run: wrk takes turns on one release server, ROUNDS rounds, the median
# req/s of each and its ratio to native, and the server's CPU time per request (user + system,
# from /proc: steadier than req/s on a noisy machine). V2 in JSON, and with binary tensor data
# as tritonclient sends it by default.
#   [ROUNDS=3] bench/load/v2.sh [seconds per run] [connections]
source "$(dirname "$0")/rounds.sh"
header=$(python3 bench/load/v2_bodies.py "$out")
.build/install/lstm-serve serve --port 0 --log-level warning >"$out/v2.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
for _ in $(seq 100); do grep -q "listening on" "$out/v2.log" && break; sleep 0.1; done
base=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$out/v2.log" | head -1)
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }  # clock ticks
rps() {  # name -> "req/s server-us-per-request" of one wrk run
  local r c0 c1 n
  c0=$(cpu)
  case $1 in
    native) r=$(BODY="$out/native.json" URLPATH=/v1/predict wrk -t2 -c"$conns" -d"${secs}s" -s bench/load/v2.lua "$base" 2>&1) ;;
    json) r=$(BODY="$out/v2_json.body" wrk -t2 -c"$conns" -d"${secs}s" -s bench/load/v2.lua "$base" 2>&1) ;;
    binary) r=$(BODY="$out/v2_binary.body" HEADER_LENGTH=$header wrk -t2 -c"$conns" -d"${secs}s" -s bench/load/v2.lua "$base" 2>&1) ;;
  esac
  if echo "$r" | grep -q "Non-2xx"; then echo "v2.sh: $1 got non-2xx answers" >&2; exit 1; fi
  c1=$(cpu)
  n=$(echo "$r" | awk '/requests in/ {print $1}')
  echo "$r" | awk -v n="$n" -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" '/Requests\/sec/ {printf "%s/%.1f", $2, t / hz * 1e6 / n}'
}
declare -A all
for round in $(seq "$rounds"); do
  for name in native json binary; do all[$name]+="$(rps $name) "; done
done
n=$(echo "${all[native]}" | field 1 | median)
nc=$(echo "${all[native]}" | field 2 | median)
echo "median of $rounds runs of ${secs}s at $conns connections; server CPU: user + system µs per request"
printf "%-8s %10s %6s %10s %6s  %s\n" scenario "req/s" ratio "server µs" ratio "runs (req/s)"
for name in native json binary; do
  m=$(echo "${all[$name]}" | field 1 | median)
  c=$(echo "${all[$name]}" | field 2 | median)
  printf "%-8s %10s %6.3f %10s %6.3f  %s\n" "$name" "$m" "$(awk -v a="$m" -v b="$n" 'BEGIN {print a / b}')" "$c" \
    "$(awk -v a="$c" -v b="$nc" 'BEGIN {print a / b}')" "$(echo "${all[$name]}" | field 1)"
done
