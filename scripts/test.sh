#!/usr/bin/env bash
# The whole test suite: Swift tests (golden cases, loaders, core, live HTTP service), the
# export tool's and evaluation's Python tests, and the end-to-end curl session against the
# built binary. README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
# Servers started below keep sessions in memory unless a suite names a store: the durable
# store's own suites give each server a database of its own.
export LSTM_SERVE_SESSION_STORE=memory
swift build --build-tests
swift test
python3 -m pytest -q tools/tests
Tests/system/e2e.sh
Tests/system/doors.sh
scripts/build.sh
python3 -m pytest -q Tests/system
python3 Tests/system/models_e2e.py .build/install/lstm-serve
python3 Tests/system/crash.py .build/install/lstm-serve
python3 Tests/system/reload.py .build/install/lstm-serve
python3 Tests/system/hostile_store.py .build/install/lstm-serve
python3 Tests/system/cluster.py 20
LSTM_SERVE_BINARY=.build/install/lstm-serve python3 -m pytest -q Tests/protocol
Tests/system/burst.sh .build/install/lstm-serve
python3 Tests/system/stall.py .build/install/lstm-serve
Tests/system/fuzz.sh .build/install/lstm-serve
python3 Tests/system/overload.py 3
LIMITS="predict=11 step=19 v2json=17 v2binary=27" bench/alloc/run.sh 2
Tests/system/fuzz-targets.sh 60
