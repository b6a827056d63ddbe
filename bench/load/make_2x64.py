#!/usr/bin/env python3
"""Writes bench/out/lstm2x64: the network size issue 3's load targets name (a 2-layer LSTM of
hidden 64 with a dense head) with random weights, behind the temperature model's config
(the same named inputs, date features, normalization, outputs and interval), so the same
request bodies load it:  MODEL=bench/out/lstm2x64 bench/load/run.sh. Needs numpy only."""
import json
import os
import sys

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "tools"))
import st_io  # noqa: E402

H, L = 64, 2
config = json.load(open(os.path.join(ROOT, "models", "temperature", "config.json")))
inputs, outputs = len(config["inputs"]["features"]), len(config["outputs"])
rng = np.random.default_rng(64)
s = 1 / np.sqrt(H)  # PyTorch's initialization range
t = {}
for k in range(L):
    t[f"rnn.weight_ih_l{k}"] = rng.uniform(-s, s, (4 * H, inputs if k == 0 else H)).astype(np.float32)
    t[f"rnn.weight_hh_l{k}"] = rng.uniform(-s, s, (4 * H, H)).astype(np.float32)
    t[f"rnn.bias_ih_l{k}"] = rng.uniform(-s, s, 4 * H).astype(np.float32)
    t[f"rnn.bias_hh_l{k}"] = rng.uniform(-s, s, 4 * H).astype(np.float32)
t["head.weight"] = rng.uniform(-s, s, (outputs, H)).astype(np.float32)
t["head.bias"] = rng.uniform(-s, s, outputs).astype(np.float32)
out = os.path.join(ROOT, "bench", "out", "lstm2x64")
os.makedirs(out, exist_ok=True)
st_io.write(os.path.join(out, "model.safetensors"), t)
config.update(name="lstm2x64", description="Benchmark network: 2-layer LSTM, hidden 64, random weights.",
              source={"framework": "numpy", "data": "random weights (bench/load/make_2x64.py)"})
with open(os.path.join(out, "config.json"), "w") as f:
    json.dump(config, f, indent=2, ensure_ascii=False)
print("wrote", out, sum(v.size for v in t.values()), "parameters")
