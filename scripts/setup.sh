#!/usr/bin/env bash
# Installs what building, serving and testing need, only when missing (Debian).
set -euo pipefail
need=()
for pkg in libmicrohttpd-dev libjansson-dev libsqlite3-dev libhiredis-dev pkg-config curl; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "${1:-}" = "--test" ]; then
  for pkg in wrk gcc openssl redis-server redis-tools nginx-light; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ "${1:-}" = "--test" ]; then
  # The export tool's tests: numpy, h5py (.keras), onnx (.onnx) and onnxruntime, which the
  # exporter compares its .onnx exports with. No torch, no keras.
  python3 - <<'PY' 2>/dev/null || { echo "setup: installing numpy h5py onnx onnxruntime pytest"; python3 -m pip install -q numpy h5py onnx onnxruntime pytest; }
import numpy, h5py, onnx, onnxruntime, pytest
PY
  # The protocol tests: the real Triton client, and schemathesis against /openapi.json.
  python3 - <<'PY' 2>/dev/null || { echo "setup: installing tritonclient[http] schemathesis"; python3 -m pip install -q "tritonclient[http]" schemathesis; }
import tritonclient.http, schemathesis
PY
  # deploy/ checked offline: the Kubernetes API's schemas, and YAML.
  python3 - <<'PY' 2>/dev/null || { echo "setup: installing kubernetes-validate pyyaml"; python3 -m pip install -q kubernetes-validate pyyaml; }
import kubernetes_validate, yaml
PY
fi
