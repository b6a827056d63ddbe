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

After writing, it loads the directory as the server will (`lstm-serve inspect`, printed layer
by layer) and, when the source framework is installed (onnxruntime, keras), compares a few
random windows with it (tools/verify_export.py); --no-verify skips the comparison. A state_dict
whose every tensor cannot be placed is refused here, with the fix, not first by the server.

Usage:
  export_model.py SOURCE OUT_DIR [--name NAME] [--cell lstm|gru|rnn_tanh|rnn_relu]
                  [--head-prefix PREFIX] [--head-activation ACT ...] [--config EXTRA.json]
                  [--no-verify]

--config EXTRA.json merges its keys into config.json: a `layers` list for a state_dict whose
module is more than recurrent layers and a Linear head, `inputs`, `outputs`, `labels`,
`normalization` (docs/bring-your-own-model.md, docs/models.md).
"""
import argparse
import json
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402
import keras_import  # noqa: E402
import onnx_import  # noqa: E402
import verify_export  # noqa: E402

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

def from_onnx(path, warn=None):
    try:
        return onnx_import.from_onnx(path, warn=warn)
    except onnx_import.OnnxError as e:
        raise ExportError(str(e))


# ---------------------------------------------------------------- PyTorch state_dict

def from_state_dict(path):
    tensors, meta = st_io.read(path)
    return tensors, {"source": {"framework": "pytorch", "file": os.path.basename(path)}}


RECURRENT = re.compile(r"(weight|bias)_(ih|hh|hr)_l\d+(_reverse)?$")


def modules(names):
    """Module path -> its tensor names, in order: 'head.0.weight' belongs to 'head.0'."""
    out = {}
    for n in sorted(names):
        out.setdefault(n.rsplit(".", 1)[0] if "." in n else "", []).append(n)
    return out


def cell_type(tensors, prefix):
    rows, hidden = tensors[f"{prefix}weight_hh{'_l0' if f'{prefix}weight_hh_l0' in tensors else ''}"].shape
    return {4: "lstm", 3: "gru", 1: "rnn"}.get(rows // hidden, "lstm")


def suggestion(tensors, recurrent, head):
    """The `layers` list to write when the names alone cannot say what the module does."""
    kind = cell_type(tensors, recurrent)
    spec = {"type": kind, "weights": recurrent.rstrip(".")}
    layers = int(max((int(m.group(1)) for n in tensors for m in [re.search(r"weight_ih_l(\d+)", n)] if m and n.startswith(recurrent)), default=0)) + 1
    if layers > 1:
        spec["num_layers"] = layers
    if any(n.startswith(recurrent) and n.endswith("_reverse") for n in tensors):
        spec["bidirectional"] = True
    if any(n == f"{recurrent}weight_ih" for n in tensors):
        spec["return_sequences"] = False  # a cell looped over the rows: its last h
    if kind == "rnn":
        spec["activation"] = "tanh"
    out = [spec] + ([] if spec.get("return_sequences") is False else [{"type": "last_timestep"}])
    previous = None
    for m in head:
        index = m.rsplit(".", 1)[-1]
        if previous is not None and index.isdigit() and previous.isdigit():
            out += [{"type": "activation", "activation": "relu"} for _ in range(int(index) - int(previous) - 1)]
        out.append({"type": "dense", "weights": m})
        previous = index
    return json.dumps({"layers": out})


def check_state_dict(tensors, cfg):
    """Every tensor of a state_dict has its place in what the server will build, or ExportError
    with the config to write: the names alone must say what the module does."""
    names = set(tensors)
    if cfg.get("layers"):
        used = [spec["weights"] + "." for spec in cfg["layers"] if spec.get("weights")]
        for n in sorted(names):
            if not any(n.startswith(u) for u in used):
                raise ExportError(f"tensor '{n}' is used by no entry of the config's layers list: add the layer that owns "
                                  f"it (\"weights\": \"{n.rsplit('.', 1)[0]}\"), or leave it out of the file")
        return
    prefixes = sorted({n[:n.index("weight_ih_l")] for n in names if "weight_ih_l" in n})
    cells = sorted(n[:-len("weight_ih")] for n in names if n.endswith("weight_ih"))
    if not prefixes and cells:
        kind = cell_type(tensors, cells[0])
        rest = [m for m in modules(names) if m != cells[0].rstrip(".")]
        raise ExportError(f"'{cells[0]}weight_ih' is an nn.{dict(lstm='LSTMCell', gru='GRUCell', rnn='RNNCell')[kind]}: how "
                          "forward() loops it is in your code, not in the file. If it runs over the window's rows and the "
                          f"rest reads its last h, write that in a config (--config EXTRA.json): {suggestion(tensors, cells[0], rest)}")
    if not prefixes:
        raise ExportError("no recurrent layer: expected tensors named like 'lstm.weight_ih_l0' (nn.LSTM, nn.GRU, nn.RNN)")
    if len(prefixes) > 1:
        raise ExportError(f"more than one recurrent module ({', '.join(p.rstrip('.') or '(top level)' for p in prefixes)}): "
                          "write a config layers list (--config EXTRA.json) that says how they connect")
    prefix = prefixes[0]
    rest = modules(n for n in names if not (n.startswith(prefix) and RECURRENT.fullmatch(n[len(prefix):])))
    head = cfg.get("head_prefix", "head")
    if f"{head}.weight" in names:
        placed = [head]
    else:
        numbered = sorted(int(m[len(head) + 1:]) for m in rest if m.startswith(head + ".") and m[len(head) + 1:].isdigit())
        placed = [f"{head}.{i}" for i in numbered]
        gaps = [i for i in range(numbered[-1] + 1) if i not in numbered] if numbered else []
        if gaps:
            raise ExportError(f"the head {', '.join(placed)} skips {', '.join(f'{head}.{i}' for i in gaps)}: a layer without "
                              "parameters (nn.ReLU, nn.Tanh, nn.Dropout ...) sat there, and a state_dict cannot say which. "
                              f"Write the layers in a config (--config EXTRA.json), with the activation your module has: "
                              f"{suggestion(tensors, prefix, placed)}")
    loose = [m for m in rest if m not in placed]
    if loose:
        linear = all(len(rest[m]) <= 2 and f"{m}.weight" in names and tensors[f"{m}.weight"].ndim == 2 for m in loose)
        parents = {m.rsplit(".", 1)[0] if m.rsplit(".", 1)[-1].isdigit() else m for m in loose}
        fix = f"if {loose[0]} is the head, export with --head-prefix {parents.pop()}" if not placed and linear and len(parents) == 1 else \
            f"write the layers in a config (--config EXTRA.json), e.g. {suggestion(tensors, prefix, placed + loose)}"
        raise ExportError(f"tensor '{rest[loose[0]][0]}' has no place: it is not part of the recurrent layers ('{prefix}') "
                          f"or of the head ('{head}'); {fix}")


def export(source, out_dir, name=None, cell=None, head_activations=None, extra=None, head_prefix=None, warn=None):
    ext = os.path.splitext(source)[1].lower()
    if ext == ".keras":
        tensors, cfg = from_keras(source)
    elif ext == ".onnx":
        tensors, cfg = from_onnx(source, warn)
    elif ext == ".safetensors":
        tensors, cfg = from_state_dict(source)
    else:
        raise ExportError(f"unknown source type {ext!r}: expected .keras, .onnx or .safetensors")
    if cell:
        cfg["cell"] = cell
    if head_prefix:
        cfg["head_prefix"] = head_prefix
    if head_activations:
        cfg["head_activations"] = [ACTIVATIONS[a] for a in head_activations]
    parent, leaf = os.path.split(os.path.normpath(out_dir))
    if not name and leaf.isdigit() and parent:
        name = os.path.basename(parent)  # models/<name>/<version>: the model's name, not the version's
    if name:
        cfg["name"] = name
    if extra:
        for key, value in extra.items():
            cfg[key] = value
    if ext == ".safetensors":
        check_state_dict(tensors, cfg)
    os.makedirs(out_dir, exist_ok=True)
    st_io.write(os.path.join(out_dir, "model.safetensors"), tensors)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    return tensors, cfg


def prove(source, out_dir, verify=True):
    """Loads the written directory as the server will and compares it with the framework; on a
    refusal, removes what it wrote, so that no server picks up a model that does not load."""
    binary = verify_export.find_binary()
    if binary is None:
        print("note: lstm-serve is not built (scripts/build.sh), so the directory was not loaded as the server will load it")
        return
    try:
        print(verify_export.inspect(binary, out_dir))
        if os.path.splitext(source)[1].lower() == ".safetensors":
            print("a state_dict has no code to run: check the layers above against your module's forward() (the order, "
                  "what reads the recurrent output, activations between Linear layers); a `layers` list in --config says it exactly")
        elif verify:
            line = verify_export.compare(source, out_dir, binary)
            if line:
                print(line)
    except verify_export.VerifyError:
        for f in ("model.safetensors", "config.json"):
            try:
                os.remove(os.path.join(out_dir, f))
            except FileNotFoundError:
                pass
        raise


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source")
    p.add_argument("out_dir")
    p.add_argument("--name")
    p.add_argument("--cell", choices=["lstm", "gru", "rnn_tanh", "rnn_relu"])
    p.add_argument("--head-prefix", help="the state_dict's head module, when it is not named 'head' (e.g. fc)")
    p.add_argument("--head-activation", action="append", choices=sorted(a for a in ACTIVATIONS if a))
    p.add_argument("--config", help="JSON file whose keys are merged into config.json (a layers list, inputs, outputs, labels ...)")
    p.add_argument("--no-verify", action="store_true", help="skip running random windows through the framework and lstm-serve")
    a = p.parse_args(argv)
    warn = lambda message: print(f"warning: {message}", file=sys.stderr)
    try:
        extra = json.load(open(a.config)) if a.config else None
        tensors, cfg = export(a.source, a.out_dir, a.name, a.cell, a.head_activation, extra, a.head_prefix, warn)
        print(f"wrote {a.out_dir}: {len(tensors)} tensors")
        prove(a.source, a.out_dir, verify=not a.no_verify)
    except (ExportError, verify_export.VerifyError, KeyError, OSError, ValueError) as e:
        print(f"export_model: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
