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
    import onnx
    from onnx import numpy_helper
    model = onnx.load(path)
    graph = model.graph
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    tensors, cfg = {}, {"source": {"framework": "onnx", "file": os.path.basename(path)}}
    k = 0
    head_nodes = []
    seen_rnn = False
    for node in graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type in ("LSTM", "GRU", "RNN"):
            seen_rnn = True
            if head_nodes:
                raise ExportError("a Gemm between recurrent nodes is not supported")
            for bad in ("clip", "input_forget"):
                if attrs.get(bad):
                    raise ExportError(f"{node.op_type} node {node.name}: attribute {bad} is not supported")
            if node.op_type == "LSTM" and len(node.input) > 7 and node.input[7]:
                raise ExportError(f"LSTM node {node.name}: peepholes are not supported")
            if attrs.get("layout", 0) != 0:
                raise ExportError(f"{node.op_type} node {node.name}: layout=1 is not supported")
            W, R = init[node.input[1]], init[node.input[2]]
            B = init[node.input[3]] if len(node.input) > 3 and node.input[3] else None
            direction = attrs.get("direction", b"forward")
            direction = direction.decode() if isinstance(direction, bytes) else direction
            if direction == "reverse":
                raise ExportError("a reverse-only recurrent node is not supported")
            if node.op_type == "LSTM":
                cfg["cell"], order = "lstm", [0, 2, 3, 1]  # i,o,f,c -> i,f,g,o
                acts = [a.decode() if isinstance(a, bytes) else a for a in attrs.get("activations", [])]
                if acts and acts[:3] != ["Sigmoid", "Tanh", "Tanh"]:
                    raise ExportError(f"LSTM activations {acts} are not supported")
            elif node.op_type == "GRU":
                cfg["cell"], order = "gru", [1, 0, 2]  # z,r,h -> r,z,n
                cfg["gru_reset_after"] = bool(attrs.get("linear_before_reset", 0))
            else:
                acts = [a.decode() if isinstance(a, bytes) else a for a in attrs.get("activations", [b"Tanh"])]
                if acts[0] not in ("Tanh", "Relu"):
                    raise ExportError(f"RNN activation {acts[0]} is not supported")
                cfg["cell"], order = "rnn_" + acts[0].lower(), [0]
            g = len(order)
            gh = W.shape[1]
            for d in range(W.shape[0]):
                suffix = f"_l{k}" + ("_reverse" if d == 1 else "")
                tensors[f"rnn.weight_ih{suffix}"] = blocks(W[d], order, g).astype(np.float32)
                tensors[f"rnn.weight_hh{suffix}"] = blocks(R[d], order, g).astype(np.float32)
                if B is not None:
                    tensors[f"rnn.bias_ih{suffix}"] = blocks(B[d][:gh], order, g).astype(np.float32)
                    tensors[f"rnn.bias_hh{suffix}"] = blocks(B[d][gh:], order, g).astype(np.float32)
            k += 1
        elif node.op_type == "Gemm" and seen_rnn:
            w = init[node.input[1]]
            if not attrs.get("transB", 0):
                w = w.T
            if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 or attrs.get("transA", 0):
                raise ExportError(f"Gemm node {node.name}: only alpha=beta=1, transA=0 is supported")
            b = init[node.input[2]] if len(node.input) > 2 and node.input[2] else None
            head_nodes.append([w, b, "linear"])
        elif node.op_type in ("Sigmoid", "Tanh", "Relu", "Softmax") and head_nodes:
            head_nodes[-1][2] = node.op_type.lower()
    if k == 0:
        raise ExportError("no LSTM, GRU or RNN node in the ONNX graph")
    for i, (w, b, _) in enumerate(head_nodes):
        name = "head" if len(head_nodes) == 1 else f"head.{i}"
        tensors[f"{name}.weight"] = w.astype(np.float32)
        if b is not None:
            tensors[f"{name}.bias"] = b.astype(np.float32)
    if head_nodes:
        cfg["head_activations"] = [h[2] for h in head_nodes]
    return tensors, cfg


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
