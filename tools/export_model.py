#!/usr/bin/env python3
"""Turn a Keras `.keras` file, an ONNX file, or a PyTorch state_dict (`.safetensors`) into an
lstm-serve model directory: `model.safetensors` with PyTorch tensor names and gate order, and
`config.json` with what the weights cannot say.

All layout conversion happens here, once:
  Keras  kernels are (in, G*U) -> transposed; LSTM i,f,c,o is already PyTorch's i,f,g,o;
         GRU z,r,h -> r,z,n; a single bias becomes bias_ih; GRU reset_after=True bias (2, 3U)
         becomes bias_ih / bias_hh; reset_after=False sets gru_reset_after=false.
  ONNX   W/R (D, G*H, in) with LSTM i,o,f,c -> i,f,g,o and GRU z,r,h -> r,z,n; B (D, 2GH)
         splits into bias_ih / bias_hh; Gemm nodes after the last recurrent node form the head.

Dependencies: numpy, plus h5py for .keras and onnx for .onnx. No torch, no keras.

Usage:
  export_model.py SOURCE OUT_DIR [--name NAME] [--cell lstm|gru|rnn_tanh|rnn_relu]
                  [--head-activation ACT ...] [--config EXTRA.json]
"""
import argparse
import json
import os
import sys
import zipfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402
import keras_import  # noqa: E402
import onnx_import  # noqa: E402

ACTIVATIONS = {"linear": "linear", "none": "linear", None: "linear", "relu": "relu",
               "sigmoid": "sigmoid", "tanh": "tanh", "softmax": "softmax"}


class ExportError(Exception):
    pass


def blocks(m, order, gates):
    """Reorders the gate blocks along axis 0 of m (G*H, ...)."""
    parts = np.split(m, gates, axis=0)
    return np.concatenate([parts[i] for i in order], axis=0)


# ---------------------------------------------------------------- Keras

def from_keras(path):
    try:
        return keras_import.from_keras(path)
    except keras_import.KerasError as e:
        raise ExportError(str(e))


# ---------------------------------------------------------------- ONNX

def from_onnx(path):
    try:
        return onnx_import.from_onnx(path)
    except onnx_import.OnnxError as e:
        raise ExportError(str(e))


# ---------------------------------------------------------------- PyTorch state_dict

def from_state_dict(path):
    tensors, meta = st_io.read(path)
    return tensors, {"source": {"framework": "pytorch", "file": os.path.basename(path)}}


def export(source, out_dir, name=None, cell=None, head_activations=None, extra=None):
    ext = os.path.splitext(source)[1].lower()
    if ext == ".keras":
        tensors, cfg = from_keras(source)
    elif ext == ".onnx":
        tensors, cfg = from_onnx(source)
    elif ext == ".safetensors":
        tensors, cfg = from_state_dict(source)
    else:
        raise ExportError(f"unknown source type {ext!r}: expected .keras, .onnx or .safetensors")
    if cell:
        cfg["cell"] = cell
    if head_activations:
        cfg["head_activations"] = [ACTIVATIONS[a] for a in head_activations]
    if name:
        cfg["name"] = name
    if extra:
        for key, value in extra.items():
            cfg[key] = value
    os.makedirs(out_dir, exist_ok=True)
    st_io.write(os.path.join(out_dir, "model.safetensors"), tensors)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    return tensors, cfg


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source")
    p.add_argument("out_dir")
    p.add_argument("--name")
    p.add_argument("--cell", choices=["lstm", "gru", "rnn_tanh", "rnn_relu"])
    p.add_argument("--head-activation", action="append", choices=sorted(a for a in ACTIVATIONS if a))
    p.add_argument("--config", help="JSON file whose keys are merged into config.json")
    a = p.parse_args(argv)
    extra = json.load(open(a.config)) if a.config else None
    try:
        tensors, cfg = export(a.source, a.out_dir, a.name, a.cell, a.head_activation, extra)
    except (ExportError, KeyError, OSError) as e:
        print(f"export_model: {e}", file=sys.stderr)
        return 1
    print(f"wrote {a.out_dir}: {len(tensors)} tensors, cell {cfg.get('cell', 'inferred')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
