"""ONNX graphs from torch.onnx.export (the dynamo exporter and the TorchScript one; external
data files load with the graph) to lstm-serve tensors and the config `layers` list.

The graph is walked node by node, each value tracked by what it is: the input sequence
(batch-first or time-first), a recurrent node's Y, a sequence, one value per sample, the
initial state or a final state, or a constant. Every node either becomes a layer, reshapes a
sequence in a way the pipeline already means, or feeds the state; any other node, or a known
one used another way, refuses the export naming the node. Nothing is dropped. Before the walk,
ONNX's checker vets the graph and an unrolled cell loop is folded into one recurrent node
(onnx_cells.py); after it, layers are named after their modules and the import is compared
with onnx's reference evaluator (onnx_check.py).

Layouts: ONNX W/R (D, G*H, in) with LSTM gates i,o,f,c become i,f,g,o and GRU z,r,h become
r,z,n; B (D, 2GH) splits into bias_ih / bias_hh. Frames (a window of (B, T, C, H, W), folded to
(B*T, C, H, W) for Conv2d and pooling, then unfolded) are channels-first in PyTorch and
channels-last in the pipeline: a permute layer turns each row to (H, W, C) after the fold and
back to (C, H, W) before it is flattened, so the values reach the next layer in PyTorch's order."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onnx_cells  # noqa: E402
import onnx_check  # noqa: E402
from onnx_check import RANDOM, OnnxError  # noqa: E402,F401 (callers catch onnx_import.OnnxError)
from onnx_layers import ACTIVATIONS, CELL_ACTIVATIONS, Value, blocks, frames, over_time, row, unfold  # noqa: E402


def swapped(node):
    import onnx
    copy = onnx.NodeProto()
    copy.CopyFrom(node)
    copy.input[:] = [node.input[1], node.input[0]]
    return copy


def attributes(node):
    import onnx
    out = {}
    for a in node.attribute:
        v = onnx.helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else [s.decode() if isinstance(s, bytes) else s for s in v] if isinstance(v, list) else v
    return out


def from_onnx(path, warn=None):
    """(tensors, config) of the graph at `path`, or OnnxError naming the node it cannot take.
    `warn(message)` hears what imports with a caveat (a random initial state)."""
    import onnx
    try:
        model = onnx.load(path)
    except Exception as e:  # a file that is not an ONNX protobuf, or external data that is missing
        raise OnnxError(f"cannot read {os.path.basename(path)} as an ONNX model: {e}".splitlines()[0])
    try:  # a graph ONNX itself finds broken (a value nothing makes, shapes that cannot meet) is not read further
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:
        raise OnnxError(f"not a valid ONNX graph: {e}".replace("\n", " ").strip()[:600])
    try:
        graph_to_read = onnx_cells.fold(model)  # an unrolled nn.*Cell loop becomes one recurrent node
    except onnx_cells.LoopError as e:
        raise OnnxError(str(e))
    # The window's layout is what the first recurrent node proves: PyTorch's batch_first=True
    # exports a Transpose in front of it, batch_first=False (the default) feeds it the input.
    notes = []
    try:
        tensors, cfg = walk(graph_to_read, path, time_major=False, warn=notes.append)
    except OnnxError as batch_first:
        notes.clear()
        try:
            tensors, cfg = walk(graph_to_read, path, time_major=True, warn=notes.append)
        except OnnxError as time_major:
            # the walk that read more of the graph names the node that really stops it
            raise (time_major if getattr(time_major, "progress", 0) > getattr(batch_first, "progress", 0) else batch_first) from None
    onnx_check.check(model, tensors, cfg)
    for note in dict.fromkeys(notes):
        (warn or (lambda m: None))(note)
    return tensors, cfg


def walk(model, path, time_major, warn):
    from onnx import numpy_helper
    graph = model.graph
    Value.depth_now = 0
    values = {t.name: Value("const", array=numpy_helper.to_array(t)) for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in values]
    if not inputs:
        raise OnnxError("the graph has no input")
    # the first input is the window, as the module was called; the others, if any, the initial state
    dims = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim]
    if time_major and len(dims) != 3:
        raise OnnxError("the window is not (time, batch, features)")
    layout = ("T", "B", "F") if time_major else ("B", "T", "F")
    values[inputs[0].name] = Value("seq", layout=layout, chw=tuple(dims[2:]) if len(dims) == 5 else None)
    for i in inputs[1:]:
        values[i.name] = Value("state", slots=None)
    tensors, layers = {}, []
    counts = {}
    slot = 0

    def const(name, node):
        v = values.get(name)
        if v is None or v.kind != "const":
            raise OnnxError(f"{node.op_type} node {node.name or node.output[0]}: input {name} is not a constant")
        return v.array

    def fail(node, why):
        raise OnnxError(f"{node.op_type} node {node.name or node.output[0]}: {why}")

    def prefix(kind):
        n = counts.get(kind, 0)
        counts[kind] = n + 1
        return f"{kind}_{n}"

    Value.depth_now = 0
    node, done = None, 0
    try:
        for done, node in enumerate(graph.node):
            Value.depth_now = len(layers)
            op, a = node.op_type, attributes(node)
            ins = [values.get(i) if i else None for i in node.input]
            if op in ("Add", "Mul") and len(ins) == 2 and ins[0] is not None and ins[1] is not None \
                    and ins[0].kind == "const" and ins[1].kind != "const":
                node = swapped(node)  # bias + x is x + bias: the value first, as the rest expects
                ins.reverse()
            lead = ins[0] if ins else None
            if lead is not None and lead.kind in ("seq", "vec", "y", "frames", "rows") and lead.depth != len(layers) and op != "Shape":
                fail(node, "reads a value from before the last layer: only one chain of layers is supported")
            if any(i and values.get(i) is None for i in node.input):
                missing = [i for i in node.input if i and values.get(i) is None]
                fail(node, f"reads {missing}, which nothing before it makes")
            first = ins[0] if ins else None
            out = node.output[0] if node.output else None
            if op == "Constant":
                values[out] = Value("const", array=numpy_helper.to_array(a["value"]))
            elif op == "Identity":
                values[out] = first
            elif ins and all(v is not None and v.kind == "const" for v in ins) and op in ("Unsqueeze", "Squeeze", "Cast", "Reshape", "Concat", "Mul"):
                # constant folding that an exporter left in the graph
                arrays = [v.array for v in ins if v is not None]
                fn = {"Cast": lambda: arrays[0], "Reshape": lambda: arrays[0].reshape(arrays[1]),
                      "Unsqueeze": lambda: np.expand_dims(arrays[0], tuple(arrays[1]) if len(arrays) > 1 else tuple(a["axes"])),
                      "Squeeze": lambda: np.squeeze(arrays[0], tuple(arrays[1]) if len(arrays) > 1 else tuple(a.get("axes", ()))) ,
                      "Concat": lambda: np.concatenate(arrays, axis=a["axis"]), "Mul": lambda: arrays[0] * arrays[1]}[op]
                values[out] = Value("const", array=fn())
            elif op == "Shape" and first is not None and first.kind in ("y", "seq", "vec", "frames", "rows"):
                values[out] = Value("shape")  # dynamic sizes, used only to rebuild the same shape below
            elif ins and all(v is not None and v.kind in ("shape", "const") for v in ins) and any(v.kind == "shape" for v in ins) \
                    and op in ("Slice", "Gather", "Mul", "Concat", "Reshape", "Unsqueeze", "Squeeze", "Cast"):
                values[out] = Value("shape")
            elif op in RANDOM:
                # torch.rand / randn drawn in forward(): a server cannot repeat the draw
                warn(f"{op} node {node.name or out} draws the initial state at random; the served model starts from "
                     "the request's 'state', or zeros when none is given")
                values[out] = Value("zeros")
            elif op == "ConstantOfShape" and ins and ins[0].kind in ("shape", "const"):
                fill = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1)
                if np.any(fill != 0):
                    fail(node, f"fills a tensor with {fill.ravel()[0]}; only a zero initial state is supported")
                values[out] = Value("zeros")
            elif op in ("Expand", "Cast", "Identity", "Reshape", "Unsqueeze", "Squeeze", "Slice", "Gather", "Transpose") and first is not None \
                and first.kind == "zeros" or op == "Concat" and ins and all(v is not None and v.kind == "zeros" for v in ins) \
                    or op == "Expand" and first is not None and first.kind == "const" and not np.any(first.array):
                values[out] = Value("zeros")  # the zero state, shaped from the window's batch size
            elif first is not None and first.kind == "state":
                if op != "Slice":
                    fail(node, "only Slice may read the initial state")
                start = int(const(node.input[1], node)[0])
                values[out] = Value("state", slots=(start, int(const(node.input[2], node)[0])))
            elif op in ("LSTM", "GRU", "RNN"):
                if first.kind != "seq" or first.layout != ("T", "B", "F"):
                    fail(node, "its input is not the window in (time, batch, features) order")
                if a.get("layout", 0) != 0:
                    fail(node, "layout=1 is not supported")
                for bad in ("clip", "input_forget"):
                    if a.get(bad):
                        fail(node, f"attribute {bad} is not supported")
                if op == "LSTM" and len(node.input) > 7 and node.input[7]:
                    fail(node, "peepholes are not supported")
                if len(node.input) > 4 and node.input[4]:
                    fail(node, "sequence_lens is not supported (windows have one length)")
                direction = a.get("direction", "forward")
                if direction == "reverse":
                    fail(node, "a reverse-only recurrent node is not supported")
                D = 2 if direction == "bidirectional" else 1
                for k in (5, 6):  # initial_h, initial_c: slots slot .. slot+D of the state
                    if len(node.input) > k and node.input[k]:
                        s = ins[k]
                        if s.kind == "zeros" or s.kind == "const" and not np.any(s.array):
                            continue  # a zero initial state: the served model's own default
                        if s.kind == "const":
                            fail(node, "its initial state is a constant that is not zero; lstm-serve starts from the request's "
                                       "'state', or zeros")
                        whole = s.kind == "state" and s.slots is None and slot == 0  # one recurrent node: the input as it is
                        if not whole and (s.kind != "state" or s.slots != (slot, slot + D)):
                            fail(node, f"its initial state is not slots {slot}..{slot + D - 1} of the state input")
                W, R = const(node.input[1], node), const(node.input[2], node)
                B = const(node.input[3], node) if len(node.input) > 3 and node.input[3] else None
                H = int(a["hidden_size"])
                kind, order = {"LSTM": ("lstm", [0, 2, 3, 1]), "GRU": ("gru", [1, 0, 2]), "RNN": ("rnn", [0])}[op]
                g = len(order)
                per = {"LSTM": 3, "GRU": 2, "RNN": 1}[op]
                acts = a.get("activations") or {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"]}[op]
                if len(acts) not in (per, per * D) or acts[per:] not in ([], acts[:per]) or any(x not in CELL_ACTIVATIONS for x in acts):
                    fail(node, f"activations {acts} are not supported")
                if op == "LSTM" and acts[1] != acts[2]:
                    fail(node, f"activations {acts}: the cell and hidden activations must be the same")
                name = prefix(kind)
                for d in range(D):
                    suffix = "_l0" + ("_reverse" if d == 1 else "")
                    tensors[f"{name}.weight_ih{suffix}"] = blocks(W[d], order, g).astype(np.float32)
                    tensors[f"{name}.weight_hh{suffix}"] = blocks(R[d], order, g).astype(np.float32)
                    if B is not None:
                        tensors[f"{name}.bias_ih{suffix}"] = blocks(B[d][:g * H], order, g).astype(np.float32)
                        tensors[f"{name}.bias_hh{suffix}"] = blocks(B[d][g * H:], order, g).astype(np.float32)
                spec = {"type": kind, "name": node.name or name, "weights": name, "return_sequences": True}
                if op == "RNN":
                    spec["activation"] = CELL_ACTIVATIONS[acts[0]]
                else:
                    spec["recurrent_activation"], spec["activation"] = CELL_ACTIVATIONS[acts[0]], CELL_ACTIVATIONS[acts[1]]
                if op == "GRU":
                    spec["reset_after"] = bool(a.get("linear_before_reset", 0))
                if D == 2:
                    spec["bidirectional"] = True
                layers.append(spec)
                slot += D
                Value.depth_now = len(layers)
                values[out] = Value("y", D=D, H=H, order=("T", "D", "B"))
                for o in node.output[1:]:
                    if o:
                        values[o] = Value("final")
            elif first.kind == "final":
                if op not in ("Concat", "Identity"):
                    fail(node, "a final state may only be gathered into the state outputs")
                values[out] = Value("final")
            elif first.kind == "y":
                if op == "Squeeze" and first.D == 1 and first.order == ("T", "D", "B"):
                    axes = list(const(node.input[1], node)) if len(node.input) > 1 else a.get("axes")
                    if [int(x) for x in axes] != [1]:
                        fail(node, "squeezes an axis other than the directions")
                    values[out] = Value("seq", layout=("T", "B", "F"))
                elif op == "Transpose" and list(a["perm"]) == [0, 2, 1, 3]:
                    values[out] = Value("y", D=first.D, H=first.H, order=("T", "B", "D"))
                elif op == "Reshape" and first.order == ("T", "B", "D"):
                    target = values[node.input[1]]
                    if target.kind != "shape":  # a computed shape is the exporter's (time, batch, D * H)
                        shape = [int(x) for x in const(node.input[1], node)]
                        if len(shape) != 3 or shape[2] not in (-1, first.D * first.H):
                            fail(node, f"reshapes Y to {shape}, not (time, batch, directions * hidden)")
                    values[out] = Value("seq", layout=("T", "B", "F"))
                else:
                    fail(node, "uses a recurrent node's Y in a way that is not supported")
            elif first.kind == "seq" and getattr(first, "chw", None) and op == "Reshape":
                target = values[node.input[1]]
                shape = [int(x) for x in const(node.input[1], node)] if target.kind == "const" else None
                if shape is not None and (len(shape) != 4 or tuple(shape[1:]) != first.chw):
                    fail(node, f"reshapes the (batch, time, {', '.join(map(str, first.chw))}) window to {shape}, not (batch * time, channels, height, width)")
                layers.append({"type": "permute", "name": node.name or "frames", "dims": [2, 3, 1]})  # (C, H, W) → (H, W, C)
                Value.depth_now = len(layers)
                values[out] = Value("frames", chw=first.chw)
            elif first.kind == "frames":
                values[out] = frames(node, op, a, first, const, fail, layers, tensors, prefix, values)
                Value.depth_now = len(layers)
                values[out].depth = len(layers)
            elif first.kind == "rows" and op == "Reshape":
                unfold(node, first.width, values, const, fail)
                values[out] = Value("seq", layout=("B", "T", "F"))
            elif first.kind == "rows":
                row(node, op, a, const, fail, layers, tensors, prefix, values, first)
                if layers[-1]["type"] == "dense":
                    values[out].width = tensors[f"{layers[-1]['weights']}.weight"].shape[0]
            elif first.kind == "seq":
                if op == "Transpose":
                    perm = list(a["perm"])
                    if sorted(perm) != [0, 1, 2]:
                        fail(node, f"perm {perm} on a sequence is not supported")
                    values[out] = Value("seq", layout=tuple(first.layout[k] for k in perm))
                elif op in ("Conv", "MaxPool", "AveragePool") and first.layout == ("B", "F", "T"):
                    over_time(node, op, a, const, fail, layers, tensors, prefix)
                    Value.depth_now = len(layers)
                    values[out] = Value("seq", layout=first.layout)
                elif op in ACTIVATIONS or op == "HardSigmoid":
                    row(node, op, a, const, fail, layers, tensors, prefix, values, first)  # elementwise: any layout
                elif op == "Gather":
                    axis = a.get("axis", 0)
                    index = const(node.input[1], node)
                    time_axis = first.layout.index("T")
                    if axis != time_axis or index.ndim != 0 or int(index) != -1:
                        fail(node, "only the last timestep (index -1 on the time axis) may be gathered")
                    layers.append({"type": "last_timestep", "name": node.name or "last timestep"})
                    Value.depth_now = len(layers)
                    values[out] = Value("vec")
                elif op in ("Reshape", "Flatten") and first.layout == ("B", "T", "F"):
                    if op == "Reshape":
                        shape = [int(x) for x in const(node.input[1], node)]
                        if len(shape) != 2:
                            fail(node, f"reshapes the sequence to {shape}, not (batch, time * features)")
                    elif a.get("axis", 1) != 1:
                        fail(node, "flattens from an axis other than 1")
                    layers.append({"type": "flatten_sequence", "name": node.name or "flatten"})
                    Value.depth_now = len(layers)
                    values[out] = Value("vec")
                elif first.layout[2] == "F":
                    row(node, op, a, const, fail, layers, tensors, prefix, values, first)
                else:
                    fail(node, f"works on the last axis, which holds {dict(B='the batch', T='time')[first.layout[2]]} here")
            elif first.kind == "vec":
                if op in ("Flatten",) and a.get("axis", 1) == 1:
                    values[out] = first
                else:
                    row(node, op, a, const, fail, layers, tensors, prefix, values, first)
            else:
                fail(node, "is not supported here")
    except OnnxError as e:
        e.progress = done
        raise
    except Exception as e:  # a graph the walk did not foresee: one line naming the node, never a traceback
        where = f"{node.op_type} node {node.name or (node.output[0] if node.output else '?')}" if node is not None else "the graph"
        raise OnnxError(f"{where}: cannot be read ({type(e).__name__}: {e})".splitlines()[0])
    answers = [(o.name, values.get(o.name)) for o in graph.output]
    answers = [(n, v) for n, v in answers if v is not None and v.kind in ("seq", "vec") and v.depth == len(layers)]
    if not answers:
        raise OnnxError("no output of the graph is the end of its chain of layers")
    if not any(l["type"] in ("lstm", "gru", "rnn", "dense") for l in layers):
        raise OnnxError("no LSTM, GRU, RNN or Gemm node in the ONNX graph")
    onnx_check.name_layers(graph, layers)
    cfg = {"source": {"framework": "onnx", "file": os.path.basename(path)}, "layers": layers}
    if time_major:
        cfg["source"]["layout"] = "time-major"  # the graph's window was (time, batch, features)
    cfg["source"]["output"] = answers[0][0]  # the graph output the served answer is
    T = dims[layout.index("T")] if len(dims) >= 3 else 0
    if T > 0 and any(l["type"] == "flatten_sequence" for l in layers):
        cfg["inputs"] = {"window": int(T)}
    if len(dims) == 5:
        cfg.setdefault("inputs", {})["shape"] = [int(d) for d in dims[2:]]  # each row a frame as PyTorch holds it
    return tensors, cfg
