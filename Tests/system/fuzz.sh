#!/usr/bin/env bash
# The bounded random-request fuzzer (Tests/system/fuzz_http.py) against a fresh server: 20,000
# requests by default; then the server must still answer and hold no more descriptors than
# before. Usage: Tests/system/fuzz.sh [BINARY] [REQUESTS] [SEED]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-$(swift build --show-bin-path)/lstm-serve}
. Tests/system/lib/server.sh
start_server "$bin" --log-level warning
trap 'kill $pid 2>/dev/null || true' EXIT
before=$(ls "/proc/$pid/fd" | wc -l)
python3 Tests/system/fuzz_http.py "$base" --requests "${2:-20000}" --seed "${3:-1}"
for _ in $(seq 30); do after=$(ls "/proc/$pid/fd" | wc -l); [ "$after" -le "$before" ] && break; sleep 0.1; done
[ "$after" -le "$before" ] || { echo "FAIL fuzz: $after descriptors open after the run, $before before"; exit 1; }
echo "fuzz: descriptors $before before, $after after"
