#!/usr/bin/env bash
# The release build of the server: the serve command and the Dockerfile both run this.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product lstm-serve
mkdir -p .build/install
cp "$(swift build -c release --show-bin-path)/lstm-serve" .build/install/lstm-serve
