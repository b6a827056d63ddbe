#!/usr/bin/env python3
"""Writes the benchmark models: a 2-layer LSTM, 4 inputs, hidden H, Linear(H, 1) head, with
random weights, in three forms holding the same numbers:
  out/lstm_h{H}/model.safetensors   PyTorch names, for lstm-serve
  out/lstm_h{H}/weights.bin         raw float32 for the C version (layout in lstm_bench.c)
  out/lstm_h{H}/model.onnx          ONNX LSTM nodes + Gemm, for ONNX Runtime
Needs numpy and onnx only."""
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import st_io  # noqa: E402

I, L, O = 4, 2, 1


def make(H, out):
    rng = np.random.default_rng(H)
    t = {}
    for k in range(L):
        inp = I if k == 0 else H
        s = 1 / np.sqrt(H)
        t[f"rnn.weight_ih_l{k}"] = rng.uniform(-s, s, (4 * H, inp)).astype(np.float32)
        t[f"rnn.weight_hh_l{k}"] = rng.uniform(-s, s, (4 * H, H)).astype(np.float32)
        t[f"rnn.bias_ih_l{k}"] = rng.uniform(-s, s, 4 * H).astype(np.float32)
        t[f"rnn.bias_hh_l{k}"] = rng.uniform(-s, s, 4 * H).astype(np.float32)
    t["head.weight"] = rng.uniform(-0.3, 0.3, (O, H)).astype(np.float32)
    t["head.bias"] = rng.uniform(-0.3, 0.3, O).astype(np.float32)
    os.makedirs(out, exist_ok=True)
    st_io.write(os.path.join(out, "model.safetensors"), t)
    with open(os.path.join(out, "weights.bin"), "wb") as f:
        f.write(struct.pack("<4i", I, H, L, O))
        for k in range(L):
            for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                f.write(t[f"rnn.{n}_l{k}"].tobytes())
        f.write(t["head.weight"].tobytes())
        f.write(t["head.bias"].tobytes())
    write_onnx(t, H, os.path.join(out, "model.onnx"))


def write_onnx(t, H, path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def iofc(m):  # PyTorch i,f,g,o -> ONNX i,o,f,c
        i, f, g, o = np.split(m, 4, axis=0)
        return np.concatenate([i, o, f, g], axis=0)

    nodes, inits = [], []
    nodes.append(helper.make_node("Transpose", ["x"], ["x_tbi"], perm=[1, 0, 2]))
    prev = "x_tbi"
    for k in range(L):
        W = iofc(t[f"rnn.weight_ih_l{k}"])[None]
        R = iofc(t[f"rnn.weight_hh_l{k}"])[None]
        B = np.concatenate([iofc(t[f"rnn.bias_ih_l{k}"]), iofc(t[f"rnn.bias_hh_l{k}"])])[None]
        for name, arr in (("W", W), ("R", R), ("B", B)):
            inits.append(numpy_helper.from_array(arr.astype(np.float32), f"{name}{k}"))
        nodes.append(helper.make_node("LSTM", [prev, f"W{k}", f"R{k}", f"B{k}"], [f"Y{k}"], hidden_size=H))
        # Y (T, 1, B, H) -> (T, B, H)
        inits.append(numpy_helper.from_array(np.array([1], dtype=np.int64), f"axis{k}"))
        nodes.append(helper.make_node("Squeeze", [f"Y{k}", f"axis{k}"], [f"S{k}"]))
        prev = f"S{k}"
    inits.append(numpy_helper.from_array(np.array([-1], dtype=np.int64), "last"))
    nodes.append(helper.make_node("Gather", [prev, "last"], ["last_g"], axis=0))  # (1, B, H)
    inits.append(numpy_helper.from_array(np.array([0], dtype=np.int64), "axis_t"))
    nodes.append(helper.make_node("Squeeze", ["last_g", "axis_t"], ["last_h"]))
    inits.append(numpy_helper.from_array(t["head.weight"], "head_w"))
    inits.append(numpy_helper.from_array(t["head.bias"], "head_b"))
    nodes.append(helper.make_node("Gemm", ["last_h", "head_w", "head_b"], ["y"], transB=1))
    graph = helper.make_graph(nodes, "lstm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", "T", I])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", O])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")
    for H in (64, 256):
        make(H, os.path.join(out, f"lstm_h{H}"))
    print("models written to", out)
