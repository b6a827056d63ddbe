"""ONNX graphs from torch.onnx.export (the dynamo exporter and the TorchScript one; external
data files load with the graph) to lstm-serve tensors and the config `layers` list.

The graph is walked node by node, each value tracked by what it is: the input sequence
(batch-first or time-first), a recurrent node's Y, a sequence, one value per sample, the
initial state or a final state, or a constant. Every node either becomes a layer, reshapes a
sequence in a way the pipeline already means, or feeds the state; any other node, or a known
one used another way, refuses the export naming the node. Nothing is dropped.

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


class OnnxError(Exception):
    pass


ACTIVATIONS = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Softsign": "softsign", "Softplus": "softplus", "Elu": "elu"}
CELL_ACTIVATIONS = {"Sigmoid": "sigmoid", "Tanh": "tanh", "Relu": "relu", "Softsign": "softsign", "Softplus": "softplus", "Elu": "elu"}


def blocks(m, order, gates):
    parts = np.split(m, gates, axis=0)
    return np.concatenate([parts[i] for i in order], axis=0)


class Value:
    """What a graph value is. kind: seq (the window or a layer's sequence), y (a recurrent
    node's Y: T, D, B, H), vec (one value per sample), state (the initial state), final (a
    final state), shape (sizes computed at run time), const. `depth`: how many layers made it."""

    depth_now = 0

    def __init__(self, kind, **kw):
        self.kind = kind
        self.depth = Value.depth_now
        self.__dict__.update(kw)


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


RANDOM = ("RandomUniformLike", "RandomNormalLike", "RandomUniform", "RandomNormal")


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
    # The window's layout is what the first recurrent node proves: PyTorch's batch_first=True
    # exports a Transpose in front of it, batch_first=False (the default) feeds it the input.
    try:
        graph_to_read = onnx_cells.fold(model)  # an unrolled nn.*Cell loop becomes one recurrent node
    except onnx_cells.LoopError as e:
        raise OnnxError(str(e))
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
    check(model, tensors, cfg)
    for note in dict.fromkeys(notes):
        (warn or (lambda m: None))(note)
    return tensors, cfg


def check(model, tensors, cfg, seed=0):
    """The import computes what the graph computes: a probe window through onnx's own reference
    evaluator and through the float64 reference of the exported layers. A graph that does not
    run, or an import that answers otherwise, is refused here rather than served."""
    from onnx.reference import ReferenceEvaluator
    import reference
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    dims = [[d.dim_value or 3 for d in i.type.tensor_type.shape.dim] for i in inputs]
    time_major = cfg["source"].get("layout") == "time-major"
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(dims[0]).astype(np.float32)
    states = [rng.uniform(-0.5, 0.5, d).astype(np.float32) for d in dims[1:]]
    try:
        y = ReferenceEvaluator(model).run([cfg["source"]["output"]], {i.name: v for i, v in zip(inputs, [x] + states)})[0]
    except Exception as e:
        raise OnnxError(f"the graph does not run (onnx reference evaluator: {type(e).__name__}: {e})".replace("\n", " ")[:600])
    if any(n.op_type in RANDOM for n in graph.node):
        return  # a state drawn at random: no one answer to compare with
    xb = x.transpose(1, 0, 2) if time_major else x
    y = np.asarray(y, np.float64)
    if time_major and y.ndim == 3:
        y = y.transpose(1, 0, 2)
    try:
        got = reference.forward_layers(tensors, cfg, xb, *(states + [None, None])[:2])
    except Exception as e:
        raise OnnxError(f"the exported layers do not fit together ({type(e).__name__}: {e})".replace("\n", " ")[:600])
    if np.size(got) != np.size(y):
        raise OnnxError(f"the exported layers answer {np.size(got)} values for the probe window, the graph {np.size(y)}")
    worst = float(np.max(np.abs(np.ravel(got) - np.ravel(y)) / (1 + np.abs(np.ravel(y))))) if y.size else 0.0
    if not worst <= 1e-4:
        raise OnnxError(f"the exported layers do not compute what the graph computes (largest difference {worst:.1e} on a probe window)")


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
    name_layers(graph, layers)
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


def module_path(node):
    """The PyTorch module a node came from ('lstm', 'head.0'), or '' for an op in forward()
    itself: the dynamo exporter's name scopes, or the TorchScript exporter's '/lstm/LSTM'."""
    for p in node.metadata_props:
        if p.key == "pkg.torch.onnx.name_scopes":
            try:
                scopes = [s for s in __import__("ast").literal_eval(p.value) if isinstance(s, str)]
            except (ValueError, SyntaxError):
                break
            return next((s for s in reversed(scopes[1:-1]) if s), "")  # the innermost module, already qualified
    if node.name.startswith("/"):
        return ".".join(node.name.strip("/").split("/")[:-1])
    return ""


def name_layers(graph, layers):
    """Layers named after the module that made them, as state and `inspect` show them: a
    recurrent node 'lstm layer 0', 'lstm layer 1' (as a state_dict's layers are named), others
    by module ('fc', 'head.0'); an op written in forward() by what it does."""
    paths = {n.name: module_path(n) for n in graph.node if n.name}
    recurrent, taken = {}, set()
    for spec in layers:
        path = paths.get(spec.get("name"), "")
        if spec["type"] in ("lstm", "gru", "rnn") and (path or spec.get("name") in paths):
            module = path or spec["type"]
            k = recurrent[module] = recurrent.get(module, -1) + 1
            name = f"{module} layer {k}"
        elif path:
            name = path
        elif spec.get("name") in paths:  # an exporter's own node name: say what the layer does
            name = spec.get("activation") if spec["type"] == "activation" else spec["type"].replace("_", " ")
        else:
            name = spec.get("name") or spec["type"]
        base, n = name, 2
        while name in taken:
            name, n = f"{base} {n}", n + 1
        taken.add(name)
        spec["name"] = name


def over_time(node, op, a, const, fail, layers, tensors, prefix):
    """Conv, MaxPool and AveragePool over time: a sequence in (batch, features, time) order, as
    PyTorch's Conv1d and pooling take it after x.permute(0, 2, 1)."""
    kernel = list(a.get("kernel_shape", []))
    if op == "Conv" and not kernel:
        kernel = [const(node.input[1], node).shape[2]]
    if len(kernel) != 1:
        fail(node, "only 1-D convolution and pooling over time are supported (frames: export from Keras)")
    k, stride = int(kernel[0]), int(a.get("strides", [1])[0])
    d = int(a.get("dilations", [1])[0])
    pads = [int(x) for x in a.get("pads", [0, 0])]
    if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID") or a.get("ceil_mode", 0):
        fail(node, "auto_pad and ceil_mode are not supported")
    total = (k - 1) * d
    if pads == [0, 0]:
        padding = "valid"
    elif stride == 1 and pads == [total // 2, total - total // 2]:
        padding = "same"
    else:
        fail(node, f"pads {pads} are neither none nor 'same'")
    if op == "Conv":
        if a.get("group", 1) != 1:
            fail(node, "grouped convolution is not supported")
        p = prefix("conv1d")
        tensors[f"{p}.weight"] = const(node.input[1], node).astype(np.float32)
        if len(node.input) > 2 and node.input[2]:
            tensors[f"{p}.bias"] = const(node.input[2], node).astype(np.float32)
        layers.append({"type": "conv1d", "name": node.name or p, "weights": p, "strides": [stride], "padding": padding,
                       "dilation_rate": [d], "activation": "linear"})
    else:
        if d != 1:
            fail(node, "dilated pooling is not supported")
        layers.append({"type": "max_pooling1d" if op == "MaxPool" else "average_pooling1d", "name": node.name or op,
                       "pool_size": [k], "strides": [stride], "padding": padding})


def window_layout(node, fail, size, kernel, stride, dilation, pads):
    """The Keras padding ('valid' or 'same') that a node's explicit pads amount to on an axis of
    `size`, or a refusal: 'same' as TensorFlow places it (the odd cell after)."""
    span = (kernel - 1) * dilation + 1
    count = (size + pads[0] + pads[1] - span) // stride + 1
    if pads == [0, 0]:
        return "valid"
    same = (size + stride - 1) // stride
    if count == same and pads[0] == max((same - 1) * stride + span - size, 0) // 2:
        return "same"
    fail(node, f"pads {pads} are neither none nor 'same' on an axis of {size}")


def frames(node, op, a, value, const, fail, layers, tensors, prefix, values):
    """A node on folded frames (batch * time, C, H, W): Conv, MaxPool, AveragePool,
    BatchNormalization and activations become per-row layers; a Reshape or Flatten leaves the
    frames, turning each row back to (C, H, W) first."""
    C, H, W = value.chw
    name = node.name or node.output[0]
    if op in ("Conv", "MaxPool", "AveragePool"):
        kernel = [int(k) for k in (a.get("kernel_shape") or const(node.input[1], node).shape[2:])]
        strides = [int(x) for x in a.get("strides", [1, 1])]
        dilations = [int(x) for x in a.get("dilations", [1, 1])]
        pads = [int(x) for x in a.get("pads", [0, 0, 0, 0])]
        if len(kernel) != 2:
            fail(node, "a frame takes 2-D convolution and pooling")
        if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID") or a.get("ceil_mode", 0) or dilations != [1, 1]:
            fail(node, "auto_pad, ceil_mode and dilation are not supported on frames")
        padding = {window_layout(node, fail, n, k, st, 1, [pads[i], pads[i + 2]]) for i, (n, k, st) in enumerate(zip((H, W), kernel, strides))}
        if len(padding) != 1:
            fail(node, f"pads {pads} are 'same' on one axis and none on the other")
        padding = padding.pop()
        if op == "Conv":
            w = const(node.input[1], node)
            if a.get("group", 1) != 1 or w.shape[1] != C:
                fail(node, f"takes {w.shape[1]} channels in groups of {a.get('group', 1)}; the frames have {C}")
            p = prefix("conv2d")
            tensors[f"{p}.weight"] = w.astype(np.float32)  # (out, in, kh, kw): what the conv2d layer takes
            if len(node.input) > 2 and node.input[2]:
                tensors[f"{p}.bias"] = const(node.input[2], node).astype(np.float32)
            layers.append({"type": "conv2d", "name": name, "weights": p, "strides": strides, "padding": padding, "activation": "linear"})
            C = w.shape[0]
        else:
            if op == "AveragePool" and a.get("count_include_pad", 0) and padding == "same":
                fail(node, "count_include_pad=1 counts the padding in the average (AvgPool2d's default): export with count_include_pad=False, or no padding")
            layers.append({"type": "max_pooling2d" if op == "MaxPool" else "average_pooling2d", "name": name,
                           "pool_size": kernel, "strides": strides, "padding": padding})
        H, W = [(n + st - 1) // st if padding == "same" else (n - k) // st + 1 for n, k, st in zip((H, W), kernel, strides)]
        return Value("frames", chw=(C, H, W))
    if op == "BatchNormalization":
        p = prefix("batch_norm")
        for key, k in (("weight", 1), ("bias", 2), ("running_mean", 3), ("running_var", 4)):
            tensors[f"{p}.{key}"] = const(node.input[k], node).astype(np.float32)
        layers.append({"type": "batch_normalization", "name": name, "weights": p, "epsilon": float(a.get("epsilon", 1e-5))})
        return Value("frames", chw=value.chw)
    if op in ACTIVATIONS or op == "HardSigmoid":
        row(node, op, a, const, fail, layers, tensors, prefix, values, value)
        return values[node.output[0]]
    if op in ("Reshape", "Flatten"):
        layers.append({"type": "permute", "name": "to channels first", "dims": [3, 1, 2]})  # (H, W, C) → (C, H, W)
        layers.append({"type": "flatten", "name": name})
        width = C * H * W
        shape = [int(x) for x in const(node.input[1], node)] if op == "Reshape" and values[node.input[1]].kind == "const" else None
        if op == "Flatten" and a.get("axis", 1) != 1:
            fail(node, "flattens frames from an axis other than 1")
        if op == "Flatten" or (shape is not None and len(shape) == 2 and shape[1] in (-1, width)):
            return Value("rows", width=width)  # still folded: (batch * time, C * H * W)
        unfold(node, width, values, const, fail)
        return Value("seq", layout=("B", "T", "F"))
    fail(node, "is not supported on frames: lstm-serve takes Conv, MaxPool, AveragePool, BatchNormalization, the activations, "
               "and a Reshape or Flatten back to one row per timestep")


def unfold(node, width, values, const, fail):
    """A Reshape of folded rows (batch * time, width) back to (batch, time, width)."""
    if values[node.input[1]].kind == "shape":
        return  # the exporter's (batch, time, -1), computed from the window's own shape
    shape = [int(x) for x in const(node.input[1], node)]
    if len(shape) != 3 or shape[2] not in (-1, width):
        fail(node, f"reshapes rows of {width} values to {shape}, not (batch, time, {width})")


def row(node, op, a, const, fail, layers, tensors, prefix, values, value):
    """Nodes that work on the last axis of every row: Gemm, MatMul (+ Add), activations."""
    out = node.output[0]
    name = node.name or out
    if op == "Gemm":
        if a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0 or a.get("transA", 0):
            fail(node, "only alpha=beta=1, transA=0 is supported")
        w = const(node.input[1], node)
        w = w if a.get("transB", 0) else w.T
        p = prefix("dense")
        tensors[f"{p}.weight"] = w.astype(np.float32)
        if len(node.input) > 2 and node.input[2]:
            tensors[f"{p}.bias"] = const(node.input[2], node).astype(np.float32).reshape(-1)
        layers.append({"type": "dense", "name": name, "weights": p, "activation": "linear"})
    elif op == "MatMul":
        p = prefix("dense")
        tensors[f"{p}.weight"] = const(node.input[1], node).T.astype(np.float32)
        layers.append({"type": "dense", "name": name, "weights": p, "activation": "linear"})
    elif op == "Add" and layers and layers[-1]["type"] == "dense" and f"{layers[-1]['weights']}.bias" not in tensors:
        tensors[f"{layers[-1]['weights']}.bias"] = const(node.input[1], node).astype(np.float32).reshape(-1)
    elif op in ACTIVATIONS:
        if op == "Elu" and a.get("alpha", 1.0) != 1.0:
            fail(node, "only alpha 1 is supported")
        layers.append({"type": "activation", "name": name, "activation": ACTIVATIONS[op]})
    elif op == "HardSigmoid" and abs(a.get("alpha", 0.2) - 1 / 6) < 1e-6 and a.get("beta", 0.5) == 0.5:
        layers.append({"type": "activation", "name": name, "activation": "hard_sigmoid"})
    elif op in ("Softmax", "LogSoftmax") and a.get("axis", -1) == -1 and op == "Softmax":
        layers.append({"type": "activation", "name": name, "activation": "softmax"})
    else:
        fail(node, "is not supported: lstm-serve takes LSTM/GRU/RNN, Gemm, MatMul+Add, the activations, Conv and pooling (over time, or on frames), "
                   "Transpose/Reshape/Flatten/Squeeze/Slice/Gather around recurrent nodes and Concat of their states")
    values[out] = Value(value.kind, **{k: v for k, v in value.__dict__.items() if k not in ("kind", "depth")})
    values[out].depth = len(layers)
