#!/usr/bin/env bash
# Installs what is missing, builds the release binary and serves the models in models/
# (the temperature forecaster is the default). Extra arguments go to `lstm-serve serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
exec .build/install/lstm-serve serve "$@"
