#!/usr/bin/env bash
# The whole test suite: Swift tests (golden cases, loaders, core, service, live HTTP) and the
# export tool's Python tests. README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
swift build --build-tests
swift test
python3 -m pytest -q tools/tests
