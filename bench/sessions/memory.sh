#!/usr/bin/env bash
# Memory per idle session, memory store and durable store: RSS of a release server empty and
# holding N sessions of the temperature model, divided by N, beside the bytes of one state.
# Then churn on the full store (N more created, at most 200,000, each evicting the least
# recently used, and deleted) must leave RSS where it was: no tombstones pile up.
#   bench/sessions/memory.sh [N ...]   (default: 100000)
set -euo pipefail
cd "$(dirname "$0")/../.."
sizes=("${@:-100000}")
bin=.build/install/lstm-serve
[ -x "$bin" ] || scripts/build.sh
. Tests/system/lib/server.sh
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
rss() { awk '/VmRSS/ {print $2 * 1024}' "/proc/$pid/status"; }
create=$(mktemp --suffix=.lua)
# each session starts from a state of its own (an imported one), as a stepped session holds
python3 - "$create" <<'PY'
import json, sys
body = json.dumps({"state": {"h": [[0.25] * 32], "c": [[-0.5] * 32]}})
open(sys.argv[1], "w").write(f'wrk.method = "POST"\nwrk.body = [=[{body}]=]\nwrk.headers["Content-Type"] = "application/json"\n')
PY
churn=$work/churn.py
cat >"$churn" <<'PY'
import http.client, json, sys, threading
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def run(k):
    c = http.client.HTTPConnection(host, port)
    for _ in range(n // 8):
        c.request("POST", "/v1/sessions", body=b"")
        r = c.getresponse()
        assert r.status == 201, r.read()
        sid = json.loads(r.read())["session_id"]
        c.request("DELETE", f"/v1/sessions/{sid}")
        c.getresponse().read()
ts = [threading.Thread(target=run, args=(k,)) for k in range(8)]
[t.start() for t in ts]
[t.join() for t in ts]
PY
hidden=$("$bin" inspect models/temperature | awk '$4 == "lstm" {print $5; exit}')
echo "temperature model: one LSTM of $hidden, a state of h and c: $((2 * hidden * 4)) bytes"
printf "%-8s %9s %10s %10s %14s %16s\n" store sessions "RSS empty" "RSS full" "bytes/session" "after churn"
for n in "${sizes[@]}"; do
  for store in memory sqlite; do
    flags=(--session-store memory)
    [ $store = sqlite ] && flags=(--session-store "sqlite:$work/s$n.db")
    # evict: the churn's creates on a full store push out the least recently used
    start_server "$bin" --log-level warning --max-sessions "$n" --session-full-policy evict --per-ip-connection-limit 0 "${flags[@]}"
    empty=$(rss)
    until [ "$(curl -s "$base/metrics" | awk '/^lstm_serve_sessions_active/ {print $2}')" -ge "$n" ]; do
      wrk -t2 -c32 -d2s -s "$create" "$base/v1/sessions" >/dev/null
    done
    held=$(curl -s "$base/metrics" | awk '/^lstm_serve_sessions_active/ {print $2}')
    full=$(rss)
    port=${base##*:}
    python3 "$churn" 127.0.0.1 "$port" "$(( n < 200000 ? n : 200000 ))"
    after=$(rss)
    printf "%-8s %9d %9.1fM %9.1fM %14.0f %15.1fM\n" $store "$held" "$(echo "$empty/1048576" | bc -l)" "$(echo "$full/1048576" | bc -l)" \
      "$(echo "($full - $empty) / $held" | bc -l)" "$(echo "$after/1048576" | bc -l)"
    kill $pid
    wait $pid 2>/dev/null || true
    rm -f "$work"/s$n.db*
  done
done
