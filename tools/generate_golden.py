#!/usr/bin/env python3
"""Generates golden cases in the layout of ../shared/golden (case.json + model.safetensors,
plus model.keras / model.onnx) from real PyTorch, Keras (JAX backend) and torch.onnx.export.
Needs torch, keras, jax, onnx, onnxruntime: a developer tool, never run by CI.

  KERAS_BACKEND=jax python3 tools/generate_golden.py OUT_DIR [--only NAME ...]
  KERAS_BACKEND=jax python3 tools/generate_golden.py Tests/Fixtures/pipelines --pipelines

Each case: random weights (biases never zero), random input, the framework's per-timestep
output, final states, head output, and a step-by-step run with LSTMCell/GRUCell/RNNCell
(PyTorch) or layer.cell (Keras). Check the result with tools/tests/reference.py or by copying
the cases into Tests/Fixtures/golden and running tools/make_fixtures.py --skip-copy + swift test.
"""
import argparse
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402

# name: (cell, input_size, hidden, layers, bidirectional, proj, bias, batch, seq_len, h0, head_act, seed, extra)
PT_CASES = {
    "pt_lstm_h1": ("lstm", 3, 1, 1, False, 0, True, 1, 7, False, "none", 1001, {}),
    "pt_lstm_h8_h0": ("lstm", 4, 8, 1, False, 0, True, 5, 7, True, "none", 1002, {}),
    "pt_lstm_2layer": ("lstm", 4, 16, 2, False, 0, True, 5, 7, True, "none", 1004, {}),
    "pt_bilstm_2layer": ("lstm", 6, 10, 2, True, 0, True, 5, 7, True, "tanh", 1006, {}),
    "pt_lstm_nobias": ("lstm", 4, 8, 1, False, 0, False, 5, 7, False, "none", 1007, {}),
    "pt_lstm_proj": ("lstm", 5, 16, 2, False, 4, True, 5, 7, True, "none", 1008, {}),
    "pt_gru_1layer": ("gru", 4, 12, 1, False, 0, True, 5, 7, True, "none", 1009, {}),
    "pt_rnn_tanh": ("rnn_tanh", 4, 8, 2, False, 0, True, 5, 7, False, "none", 1011, {}),
    "pt_rnn_relu": ("rnn_relu", 4, 8, 2, False, 0, True, 5, 7, False, "none", 1012, {}),
    "pt_lstm_f16": ("lstm", 4, 8, 1, False, 0, True, 5, 7, False, "none", 1015, {"f16": True}),
    "pt_lstm_len1000_longmem": ("lstm", 4, 16, 1, False, 0, True, 2, 1000, False, "none", 1014, {"forget_bias": 3.0}),
}
KERAS_CASES = {
    "keras_lstm128": ("LSTM", 1, [128], 5, 7, "linear", 2001, {}),
    "keras_lstm_stacked": ("LSTM", 3, [32, 16], 5, 20, "linear", 2002, {}),
    "keras_gru_reset_after": ("GRU", 4, [16], 5, 7, "linear", 2003, {"reset_after": True, "out": 2}),
    "keras_gru_reset_before": ("GRU", 4, [16], 1, 7, "sigmoid", 2004, {"reset_after": False}),
    "keras_simplernn": ("SimpleRNN", 3, [8], 5, 7, "linear", 2005, {}),
}


def arr(a):
    return np.asarray(a, dtype=np.float32).tolist()


def pytorch_case(name, spec, out):
    import torch
    cell, I, H, L, bi, P, bias, B, T, h0, act, seed, extra = spec
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}.get(cell, torch.nn.RNN)
    kw = {"nonlinearity": cell[4:]} if cell.startswith("rnn") else {}
    if P:
        kw["proj_size"] = P
    D = 2 if bi else 1
    Hout = P or H

    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = cls(I, H, num_layers=L, bias=bias, batch_first=True, bidirectional=bi, **kw)
            self.head = torch.nn.Linear(D * Hout, 1)

        def forward(self, x, state=None):
            y, s = self.rnn(x, state)
            z = self.head(y[:, -1])
            return y, s, {"none": z, "tanh": torch.tanh(z), "sigmoid": torch.sigmoid(z)}[act]

    m = M().eval()
    with torch.no_grad():
        for n, p in m.named_parameters():
            if "bias" in n:
                p.uniform_(-0.5, 0.5)
            if "bias_ih" in n and extra.get("forget_bias") and cell == "lstm":
                p[H:2 * H] += extra["forget_bias"]
        if extra.get("f16"):
            for p in m.parameters():
                p.copy_(p.half().float())
    x = torch.randn(B, T, I)
    state = None
    if h0:
        hh = torch.randn(L * D, B, Hout) * 0.5
        state = (hh, torch.randn(L * D, B, H) * 0.5) if cell == "lstm" else hh
    with torch.no_grad():
        y, s, head = m(x, state)
    hn, cn = (s if cell == "lstm" else (s, None))
    step = None
    if not bi:
        with torch.no_grad():
            st = state
            outs = []
            for t in range(T):
                o, st, hz = m(x[:, t:t + 1], st)
                outs.append(o[:, 0])
            shn, scn = (st if cell == "lstm" else (st, None))
            step = {"method": "the same module called with sequence length 1, carrying state",
                    "outputs": arr(torch.stack(outs, 1)), "h_n": arr(shn), "c_n": arr(scn) if scn is not None else None,
                    "head": arr(hz)}
    os.makedirs(out, exist_ok=True)
    tensors = {k: v.detach().numpy().astype(np.float16 if extra.get("f16") else np.float32) for k, v in m.state_dict().items()}
    st_io.write(os.path.join(out, "model.safetensors"), tensors)
    per_layer = [sum(p.numel() for n, p in m.rnn.named_parameters() if f"_l{k}" in n) for k in range(L)]
    case = {"format_version": 1, "name": name, "set": "generated", "framework": "pytorch", "framework_version": torch.__version__,
            "seed": seed, "cell": cell, "input_size": I, "hidden_size": H, "proj_size": P, "num_layers": L,
            "bidirectional": bi, "num_directions": D, "batch_first": True, "bias": bias,
            "head": {"type": "linear", "in_features": D * Hout, "out_features": 1, "bias": True, "activation": act},
            "param_count": {"per_layer": per_layer, "rnn_total": sum(per_layer), "head": D * Hout + 1, "total": sum(per_layer) + D * Hout + 1},
            "batch": B, "seq_len": T, "x": arr(x), "h0": arr(state[0] if cell == "lstm" else state) if state is not None else None,
            "c0": arr(state[1]) if state is not None and cell == "lstm" else None,
            "expected": {"output": arr(y), "h_n": arr(hn), "c_n": arr(cn) if cn is not None else None, "head": arr(head)},
            "step": step or {}, "weights_file": "model.safetensors"}
    json.dump(case, open(os.path.join(out, "case.json"), "w"))
    if name.startswith("pt_lstm_2layer"):
        export_onnx(m, x, state, out)


def export_onnx(m, x, state, out):
    """torch.onnx.export of the module with h0/c0 as graph inputs (LSTM with state only)."""
    import torch

    class WithState(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x, h0, c0):
            y, (hn, cn), head = self.inner(x, (h0, c0))
            return y, hn, cn, head

    torch.onnx.export(WithState(m), (x, state[0], state[1]), os.path.join(out, "model.onnx"),
                      input_names=["x", "h0", "c0"], output_names=["output", "h_n", "c_n", "head"], dynamo=True)


def keras_case(name, spec, out):
    import keras
    kind, I, units, B, T, act, seed, extra = spec
    keras.utils.set_random_seed(seed)
    inp = keras.Input((None, I)) if name != "keras_lstm128" else keras.Input((T, I))
    h = inp
    layers = []
    for k, u in enumerate(units):
        kw = {"reset_after": extra["reset_after"]} if kind == "GRU" else {}
        layer = getattr(keras.layers, kind)(u, return_sequences=k < len(units) - 1, **kw)
        layers.append(layer)
        h = layer(h)
    dense = keras.layers.Dense(extra.get("out", 1), activation=act)
    model = keras.Model(inp, dense(h))
    rng = np.random.default_rng(seed)
    for layer in layers + [dense]:
        ws = layer.get_weights()
        ws[-1] = rng.uniform(-0.5, 0.5, ws[-1].shape).astype(np.float32)  # biases never zero
        layer.set_weights(ws)
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    os.makedirs(out, exist_ok=True)
    model.save(os.path.join(out, "model.keras"))
    # per-timestep output of the top layer: the same stack with return_sequences on top
    seq_in = keras.Input((None, I))
    s = seq_in
    for k, layer in enumerate(layers):
        cfg = layer.get_config()
        cfg["return_sequences"] = True
        clone = layer.__class__.from_config(cfg)
        s = clone(s)
        clone.set_weights(layer.get_weights())
    seq_model = keras.Model(seq_in, s)
    tensors = {}
    for layer in layers:
        for v, label in zip(layer.weights, ["kernel", "recurrent_kernel", "bias"]):
            tensors[f"{layer.name}/{label}"] = np.asarray(v.numpy(), dtype=np.float32)
    tensors["dense/kernel"], tensors["dense/bias"] = [np.asarray(w, np.float32) for w in dense.get_weights()]
    st_io.write(os.path.join(out, "model.safetensors"), tensors)
    case = {"format_version": 1, "name": name, "set": "generated", "framework": "keras", "framework_version": keras.__version__,
            "seed": seed, "keras_class": kind, "input_size": I, "hidden_sizes": units, "batch": B, "seq_len": T,
            "x": arr(x), "h0": None, "c0": None, "keras_file": "model.keras",
            "param_count": {"per_layer": [l.count_params() for l in layers], "rnn_total": sum(l.count_params() for l in layers),
                            "head": dense.count_params(), "total": model.count_params()},
            "expected": {"output": arr(seq_model.predict(x, verbose=0)), "head": arr(model.predict(x, verbose=0))},
            "step": {}}
    json.dump(case, open(os.path.join(out, "case.json"), "w"))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--only", nargs="*")
    p.add_argument("--pipelines", action="store_true", help="the whole-model cases (tools/golden_pipelines.py) instead")
    a = p.parse_args()
    if a.pipelines:
        import golden_pipelines
        golden_pipelines.generate(a.out, a.only)
        return
    for name, spec in PT_CASES.items():
        if not a.only or name in a.only:
            pytorch_case(name, spec, os.path.join(a.out, name))
            print("generated", name)
    for name, spec in KERAS_CASES.items():
        if not a.only or name in a.only:
            keras_case(name, spec, os.path.join(a.out, name))
            print("generated", name)


if __name__ == "__main__":
    main()
