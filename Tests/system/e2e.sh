#!/usr/bin/env bash
# End to end: starts the built binary on a free port, waits for /readyz, runs README's curl
# session, checks each answer, then stops the server with SIGTERM and expects exit 0.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-$(swift build --show-bin-path)/lstm-serve}
. Tests/system/lib/server.sh
start_server "$bin" --log-level warning
trap 'kill $pid 2>/dev/null || true' EXIT
fails=0
passes=0
check() {  # name, expected status, curl args...
  local name=$1 want=$2; shift 2
  local out status
  out=$(curl -s -w '\n%{http_code}' "$@")
  status=${out##*$'\n'}
  if [ "$status" = "$want" ]; then echo "ok   $name ($status)"; passes=$((passes + 1)); else echo "FAIL $name: got $status, want $want: ${out%$'\n'*}"; fails=$((fails + 1)); fi
  body=${out%$'\n'*}
}
check healthz 200 "$base/healthz"
check readyz 200 "$base/readyz"
check models 200 "$base/v1/models"
check model-info 200 "$base/v1/models/temperature"
check predict 200 "$base/v1/predict" --json @examples/week.json
forecast=$(echo "$body" | python3 -c 'import json,sys; print(json.load(sys.stdin)["forecast"]["temp_max"])')
check session-create 201 -X POST "$base/v1/sessions"
sid=$(echo "$body" | python3 -c 'import json,sys; print(json.load(sys.stdin)["session_id"])')
xs=$(python3 -c 'import json; print(json.dumps({"xs": json.load(open("examples/week.json"))["window"]}))')
check session-step 200 "$base/v1/sessions/$sid/step" --json "$xs"
stepped=$(echo "$body" | python3 -c 'import json,sys; print(json.load(sys.stdin)["forecast"]["temp_max"])')
# a reload with nothing new changes nothing; the session steps on
check reload 200 -X POST "$base/v1/models/temperature/reload"
echo "$body" | grep -q '"changed":false' || { echo "FAIL reload: $body"; fails=$((fails + 1)); }
check session-after-reload 200 "$base/v1/sessions/$sid"
if [ "$stepped" = "$forecast" ]; then echo "ok   step equals predict ($stepped)"; passes=$((passes + 1)); else echo "FAIL step $stepped != predict $forecast"; fails=$((fails + 1)); fi
check session-info 200 "$base/v1/sessions/$sid"
check session-state 200 "$base/v1/sessions/$sid/state"
check session-retry-conflict 409 "$base/v1/sessions/$sid/step" --json '{"x": {"date": "2015-03-01", "temp_max": 11, "temp_min": 4, "precipitation": 0, "wind": 2}, "expected_step": 3}'
check session-delete 204 -X DELETE "$base/v1/sessions/$sid"
check session-gone 404 "$base/v1/sessions/$sid"
check malformed 400 "$base/v1/predict" --json '{"window": ['
check wrong-shape 422 "$base/v1/predict" --json '{"window": [[1, 2, 3, 4]]}'
check not-json 415 "$base/v1/predict" -H 'Content-Type: text/plain' -d 'hello'
check form-post 415 "$base/v1/predict" -d @examples/week.json
check wrong-method 405 -X DELETE "$base/v1/predict"
check metrics 200 "$base/metrics"
# The offline CLI: inspect, predict, and a one-line error with exit 1 for hostile weights.
if "$bin" inspect models/temperature | grep -q "parameters: recurrent 5120, other 66, total 5186"; then
  echo "ok   cli inspect"; passes=$((passes + 1)); else echo "FAIL cli inspect"; fails=$((fails + 1)); fi
cli=$("$bin" predict --model models/temperature --input examples/week.json | python3 -c 'import json,sys; print(json.load(sys.stdin)["forecast"]["temp_max"])')
if [ "$cli" = "$forecast" ]; then echo "ok   cli predict equals the server ($cli)"; passes=$((passes + 1)); else echo "FAIL cli predict $cli != $forecast"; fails=$((fails + 1)); fi
bad=$(mktemp -d)
head -c 300 models/temperature/model.safetensors >"$bad/model.safetensors"
set +e; msg=$("$bin" inspect "$bad" 2>&1); code=$?; set -e
if [ "$code" = 1 ] && [ "$(echo "$msg" | wc -l)" = 1 ] && echo "$msg" | grep -q "data_offsets\|runs past\|header"; then
  echo "ok   cli hostile weights: exit 1, one line"; passes=$((passes + 1)); else echo "FAIL cli hostile weights: exit $code: $msg"; fails=$((fails + 1)); fi
# a tensor name with a newline and an ESC in it: still one line, the bytes escaped
python3 - "$bad/model.safetensors" <<'PY'
import json, struct, sys
header = json.dumps({"rnn.weight_ih_l0\n\u001b[2Jx": {"dtype": "F32", "shape": [4, 1], "data_offsets": [0, 8]}}).encode()
open(sys.argv[1], "wb").write(struct.pack("<Q", len(header)) + header + bytes(16))
PY
set +e; msg=$("$bin" inspect "$bad" 2>&1); code=$?; set -e
if [ "$code" = 1 ] && [ "$(echo "$msg" | wc -l)" = 1 ] && echo "$msg" | grep -qF 'weight_ih_l0\n\x1B[2Jx'; then
  echo "ok   cli control bytes in a tensor name: escaped, one line"; passes=$((passes + 1)); else echo "FAIL cli control bytes: exit $code: $msg"; fails=$((fails + 1)); fi
rm -rf "$bad"
# SIGHUP reloads the models (nothing changed here), and the server serves on
kill -HUP $pid
sleep 0.2
check sighup-survived 200 "$base/healthz"
# SIGTERM drains: /readyz answers 503 while the listener is still open, then exit 0
kill -TERM $pid
sleep 0.3
drain=$(curl -s -o /dev/null -w '%{http_code}' "$base/readyz" || true)
if [ "$drain" = 503 ]; then echo "ok   SIGTERM: readyz 503 while draining"; passes=$((passes + 1)); else echo "FAIL SIGTERM: readyz $drain while draining"; fails=$((fails + 1)); fi
wait $pid && { echo "ok   SIGTERM: exit 0"; passes=$((passes + 1)); } || { echo "FAIL SIGTERM: exit $?"; fails=$((fails + 1)); }
# Logs: JSON lines with the request id; a session id appears only as its short hash
start_server "$bin" --log-level info --log-format json
trap 'kill $pid 2>/dev/null || true' EXIT
sid=$(curl -s -X POST "$base/v1/sessions" | python3 -c 'import json,sys; print(json.load(sys.stdin)["session_id"])')
curl -s -o /dev/null "$base/v1/sessions/$sid/step" -H 'X-Request-ID: e2e-42' --json '{"x": {"date": "2015-02-22", "temp_max": 11.7, "temp_min": 3.3, "precipitation": 0.0, "wind": 4.2}}'
curl -s -o /dev/null "$base/v1/models/%0Aforged"
kill -TERM $pid; wait $pid || true
if python3 - "$log" "$sid" <<'PY'
import json, re, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
records = [json.loads(l) for l in lines]  # every line, start-up and drain too, is one JSON record
assert any(r["message"].startswith("lstm-serve listening on") for r in records)
assert any(r["message"].startswith("signal 15, draining") for r in records)
step = [r for r in records if r.get("request_id") == "e2e-42"]
assert step and step[0]["message"].startswith("POST /v1/sessions/{id}/step 200"), step
assert re.fullmatch(r"[0-9a-f]{8}", step[0]["session"]), step
assert not any(sys.argv[2] in l for l in open(sys.argv[1])), "full session id in the log"
assert all(r["request_id"] for r in records if r["message"].startswith(("GET", "POST")))
PY
then echo "ok   json logs: every line JSON, request id, session hashed"; passes=$((passes + 1)); else echo "FAIL json logs"; cat "$log"; fails=$((fails + 1)); fi
trap - EXIT
echo "e2e: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
