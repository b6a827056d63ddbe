#!/usr/bin/env bash
# Installs what is missing, builds the release binary and serves the models in models/.
# Extra arguments go to `lstm-serve serve` (e.g. --port 9000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --product lstm-serve
exec .build/release/lstm-serve serve "$@"
