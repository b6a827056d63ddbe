# Sourced by the test scripts. start_server BINARY ARGS...: runs `BINARY serve --port 0 ARGS...`
# in the background, waits until it listens and is ready, and sets pid, base (http://host:port)
# and log. The caller's EXIT trap should kill $pid.
start_server() {
  local bin=$1; shift
  log=$(mktemp)
  "$bin" serve --port 0 "$@" >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do grep -q "listening on" "$log" && break; sleep 0.1; done
  base=$(sed -n 's/.*listening on \(https\{0,1\}:[^ ]*\).*/\1/p' "$log")
  [ -n "$base" ] || { cat "$log"; echo "$(basename "$0"): server did not start"; exit 1; }
  for _ in $(seq 100); do curl -skf "$base/readyz" >/dev/null && break; sleep 0.1; done
}
