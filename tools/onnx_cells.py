"""Unrolled recurrent cells in ONNX graphs: an nn.LSTMCell / nn.GRUCell / nn.RNNCell looped over
the window in forward(), or an nn.RNN that the dynamo exporter writes out step by step. The
exporters leave one block of Gemm/MatMul, Split, activations and Mul/Add per timestep, all
reading the same recurrent weights; how they spell a step differs between exporters and
versions, so the blocks are not matched node by node.

Instead: the weights a loop reuses at every step name a hypothesis (an LSTM, GRU or RNN cell of
those weights and biases, from zeros or from the graph's state inputs, over the window's time
axis), and onnx's reference evaluator runs the graph on a probe window. Where one of its values
equals the hypothesis's final h (float64 reference, 1e-5), the nodes that made that value are
the loop: they are replaced by one ONNX recurrent node that returns the same h, and the rest
of the graph is read as usual. A loop may also match the cell's whole output sequence, over
the window or over another loop's sequence (a stacked nn.RNN), in either direction; the
forward and reverse loops whose sequences one Concat joins become one bidirectional node.
onnx_check.check() then compares the whole import with the original graph, so a wrong
hypothesis can only end in a refusal."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402

GATES = {4: ["lstm"], 3: ["gru"], 1: ["rnn_tanh", "rnn_relu"]}
ONNX_ORDER = {"lstm": [0, 3, 1, 2], "gru": [1, 0, 2], "rnn_tanh": [0], "rnn_relu": [0]}  # PyTorch blocks in ONNX order


RESHAPES = ("Unsqueeze", "Squeeze", "Identity", "Reshape", "Concat")


class LoopError(Exception):
    pass


def constants(graph):
    from onnx import numpy_helper
    out = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    out[n.output[0]] = numpy_helper.to_array(a.t)
    return out


def weight_uses(graph, consts):
    """Per 2-D constant used as a Gemm/MatMul weight: its uses, and the matrix as (out, in)."""
    uses = {}
    for n in graph.node:
        if n.op_type not in ("Gemm", "MatMul") or len(n.input) < 2 or n.input[1] not in consts:
            continue
        w = consts[n.input[1]]
        if w.ndim != 2:
            continue
        trans = n.op_type == "Gemm" and any(a.name == "transB" and a.i for a in n.attribute)
        uses.setdefault(n.input[1], (w if trans else w.T, []))[1].append(n)
    return uses


def bias_of(graph, consts, node, rows):
    """The bias a weight's product gets: Gemm's C, or a 1-D constant Add right after a MatMul."""
    if node.op_type == "Gemm" and len(node.input) > 2 and node.input[2] in consts and consts[node.input[2]].size == rows:
        return consts[node.input[2]].reshape(-1)
    for n in graph.node:
        if n.op_type == "Add" and node.output[0] in n.input:
            other = [i for i in n.input if i != node.output[0]]
            if other and other[0] in consts and consts[other[0]].size == rows:
                return consts[other[0]].reshape(-1)
    return None


def hypotheses(graph, consts):
    """(kind, W_ih, W_hh, b_ih, b_hh, W_hh's name, its first use) for each pair of weights a cell
    loop could be: a recurrent weight (gates x hidden, hidden) used at two steps or more, and an
    input weight with as many rows."""
    uses = weight_uses(graph, consts)
    out = []
    for rname, (R, rnodes) in uses.items():
        rows, hidden = R.shape
        if len(rnodes) < 2 or rows % hidden or rows // hidden not in GATES:
            continue
        for iname, (W, inodes) in uses.items():
            if iname == rname or W.shape[0] != rows:
                continue
            for kind in GATES[rows // hidden]:
                out.append((kind, W, R, bias_of(graph, consts, inodes[0], rows), bias_of(graph, consts, rnodes[0], rows), rname, rnodes[0]))
    return out


def fold(model):
    """The model with every unrolled cell loop replaced by a recurrent node (the two directions
    of a bidirectional layer by one), or the model itself when it has none. LoopError when a
    loop's reused weights compute no cell it can match."""
    for _ in range(64):
        folded = fold_one(model)
        if folded is None:
            return model
        model = merge_directions(folded)
    raise LoopError("the graph has more unrolled cell loops than lstm-serve folds (64)")


def bias_names(graph, node):
    return [i for n in graph.node if n.op_type == "Add" and node.output[0] in n.input for i in n.input if i != node.output[0]]


def module_of(names):
    """The PyTorch module a loop's tensors belong to ('rnn' of rnn.bias_hh_l0), or 'cell'."""
    for n in names:
        if n and "." in n:
            return n.split(".")[0]
    return "cell"


def fold_one(model):
    from onnx.reference import ReferenceEvaluator
    graph = model.graph
    consts = constants(graph)
    inputs = [i for i in graph.input if i.name not in consts]
    if not inputs:
        return None
    candidates = hypotheses(graph, consts)
    if not candidates:
        return None
    dims = [[d.dim_value or 3 for d in i.type.tensor_type.shape.dim] for i in inputs]
    rng = np.random.default_rng(7)
    feeds = {i.name: (rng.standard_normal(d) if k == 0 else rng.uniform(-0.5, 0.5, d)).astype(np.float32)
             for k, (i, d) in enumerate(zip(inputs, dims))}
    made = [o for n in graph.node for o in n.output if o]
    try:
        values = dict(zip(made, ReferenceEvaluator(model).run(made, feeds)))
    except Exception as e:
        raise LoopError(f"the graph reuses the weights {candidates[0][5]} like an unrolled cell loop, but does not run "
                        f"(onnx reference evaluator: {type(e).__name__}: {e})".replace("\n", " ")[:600])
    values.update(feeds)
    by_shape = {}
    for name, v in values.items():
        if isinstance(v, np.ndarray) and v.dtype.kind == "f":
            by_shape.setdefault(v.shape, []).append(name)
    state_inputs = [i.name for i in inputs[1:]]
    for kind, W, R, bi, bh, rname, first_use in candidates:
        hidden = R.shape[1]
        tensors = {"c.weight_ih": W, "c.weight_hh": R}
        if bi is not None:
            tensors["c.bias_ih"] = bi
        if bh is not None:
            tensors["c.bias_hh"] = bh
        sequences = [n for shape, names in by_shape.items() if len(shape) == 3 and shape[2] == W.shape[1] for n in names]
        for source in sequences:
            for time_major in (True, False):
                seq = values[source].transpose(1, 0, 2) if time_major else values[source]  # (B, T, F)
                B = seq.shape[0]
                for start in starts(by_shape, values, state_inputs, B, hidden, kind):
                    for backwards in (False, True):
                        out, h = reference.run_cell(tensors, "c.", "", kind[:3] if kind != "lstm" else kind, seq.astype(np.float64),
                                                    start.h, start.c, act="relu" if kind == "rnn_relu" else "tanh", backwards=backwards)
                        found = match(by_shape, values, out, h, backwards)
                        if found:
                            name, layout = found
                            loop = Loop(kind, tensors, hidden, source, time_major, start.names, backwards,
                                        module_of([rname, first_use.input[2] if len(first_use.input) > 2 else ""] + bias_names(graph, first_use)))
                            return rewrite(model, name, layout, loop)
    use = candidates[0][6]
    raise LoopError(f"{use.op_type} node {use.name or use.output[0]} and the others reading {candidates[0][5]} reuse it at "
                    "every timestep like an unrolled nn.LSTMCell, nn.GRUCell or nn.RNNCell loop, but no value of the graph is "
                    "the output of such a cell over a sequence of the graph from a zero or given state; a cell loop of "
                    "another shape serves from its state_dict with a config layers list (docs/bring-your-own-model.md)")


class Start:
    """An initial state a loop may start from: zeros, or values the graph's state inputs make."""

    def __init__(self, h=None, c=None, names=()):
        self.h, self.c, self.names = h, c, list(names)


def starts(by_shape, values, state_inputs, B, hidden, kind):
    out = [Start()]
    if not state_inputs:
        return out
    # a (1, B, H) value: the state input itself, or its slice for this layer and direction
    own = by_shape.get((1, B, hidden), [])
    for hn in own:
        if kind != "lstm":
            out.append(Start(values[hn][0].astype(np.float64), None, [hn]))
            continue
        for cn in own:
            if cn != hn:
                out.append(Start(values[hn][0].astype(np.float64), values[cn][0].astype(np.float64), [hn, cn]))
    return out


def match(by_shape, values, out, h, backwards):
    """The graph value that is this cell's output: its whole sequence, (T, B, H) or (B, T, H), or
    (forward only) its last h, (B, H). (name, layout) or None."""
    B, T, H = out.shape
    for layout, want in (("TBH", out.transpose(1, 0, 2)), ("BTH", out)):
        for name in by_shape.get(want.shape, []):
            if np.allclose(values[name], want, rtol=1e-5, atol=1e-5):
                return name, layout
    if not backwards:
        for name in by_shape.get(h.shape, []):
            if np.allclose(values[name], h, rtol=1e-5, atol=1e-5):
                return name, "last"
    return None


class Loop:
    def __init__(self, kind, tensors, hidden, source, time_major, state_names, backwards, module):
        self.kind, self.tensors, self.hidden, self.source = kind, tensors, hidden, source
        self.time_major, self.state_names, self.backwards, self.module = time_major, state_names, backwards, module


def ancestors(nodes, name, stop):
    """Indices of the nodes that make `name`, back to `stop`, the graph's inputs and constants."""
    maker = {o: k for k, n in enumerate(nodes) for o in n.output}
    seen, todo = set(), [name]
    while todo:
        v = todo.pop()
        k = maker.get(v)
        if k is None or k in seen or v in stop:
            continue
        seen.add(k)
        todo.extend(i for i in nodes[k].input if i)
    return seen


def onnx_weights(loop):
    """W (1, G*H, in), R (1, G*H, H), B (1, 2*G*H) in ONNX's gate order."""
    G = {"lstm": 4, "gru": 3}.get(loop.kind, 1)

    def blocks(a):
        parts = np.split(np.asarray(a, np.float32), G, axis=0)
        return np.concatenate([parts[k] for k in ONNX_ORDER[loop.kind]], axis=0)

    zeros = np.zeros(G * loop.hidden, np.float32)
    t = loop.tensors
    return (blocks(t["c.weight_ih"])[None], blocks(t["c.weight_hh"])[None],
            np.concatenate([blocks(t.get("c.bias_ih", zeros)), blocks(t.get("c.bias_hh", zeros))])[None])


def recurrent_node(loop, inputs, output, name, direction):
    from onnx import helper
    op = {"lstm": "LSTM", "gru": "GRU"}.get(loop.kind, "RNN")
    attrs = {"hidden_size": loop.hidden, "direction": direction}
    if loop.kind == "gru":
        attrs["linear_before_reset"] = 1
    if loop.kind.startswith("rnn"):
        attrs["activations"] = ["Relu" if loop.kind == "rnn_relu" else "Tanh"] * (2 if direction == "bidirectional" else 1)
    node = helper.make_node(op, inputs, [output], name=name, **attrs)
    scopes = node.metadata_props.add()  # the module it stands for, as the dynamo exporter records it
    scopes.key, scopes.value = "pkg.torch.onnx.name_scopes", repr(["", loop.module, op.lower()])
    return node


def rewrite(model, value, layout, loop):
    """The model with the nodes that make `value` replaced by one recurrent node over
    `loop.source` that makes it: its sequence in `layout` (TBH or BTH), or its last h."""
    import onnx
    from onnx import helper, numpy_helper
    m = onnx.ModelProto()
    m.CopyFrom(model)
    graph = m.graph
    nodes = list(graph.node)
    stop = {loop.source, *loop.state_names}
    inside = {k for k in ancestors(nodes, value, stop) if nodes[k].op_type != "Constant"}  # constants may serve others too
    made_here = {o for k in inside for o in nodes[k].output}
    graph_outputs = {g.name for g in graph.output}
    dropped = set()
    for k, n in enumerate(nodes):
        if k in inside or not any(i in made_here for i in n.input):
            continue
        if n.op_type in RESHAPES and all(o in graph_outputs for o in n.output):
            dropped.add(k)  # a final state handed out as a graph output (h[None], c[None]): not the answer
        elif any(i in made_here and i != value for i in n.input):
            raise LoopError(f"{n.op_type} node {n.name or n.output[0]} reads a value inside an unrolled cell loop: only the "
                            "loop's outputs (its sequence, or its last h) can be served")
    gone = {o for k in inside | dropped for o in nodes[k].output} - {value}
    p = f"{loop.module}_folded{sum(n.op_type in ('LSTM', 'GRU', 'RNN') for n in nodes)}"
    W, R, B = onnx_weights(loop)
    for name, arr in ((f"{p}_W", W), (f"{p}_R", R), (f"{p}_B", B), (f"{p}_axes", np.array([1], np.int64)),
                      (f"{p}_last", np.array(-1, np.int64))):
        graph.initializer.append(numpy_helper.from_array(arr, name))
    made, seq = [], loop.source
    if not loop.time_major:
        made.append(helper.make_node("Transpose", [seq], [f"{p}_x"], name=f"{p} time first", perm=[1, 0, 2]))
        seq = f"{p}_x"
    direction = "reverse" if loop.backwards else "forward"
    rnn = recurrent_node(loop, [seq, f"{p}_W", f"{p}_R", f"{p}_B", ""] + loop.state_names, f"{p}_Y", loop.module, direction)
    rnn.doc_string = repr({"fold": p, "source": seq, "out": value, "direction": direction, "layout": layout,
                           "states": bool(loop.state_names)})
    made.append(rnn)
    squeezed = value if layout == "TBH" else f"{p}_seq"
    made.append(helper.make_node("Squeeze", [f"{p}_Y", f"{p}_axes"], [squeezed], name=f"{p} directions"))
    if layout == "BTH":
        made.append(helper.make_node("Transpose", [squeezed], [value], name=f"{p} batch first", perm=[1, 0, 2]))
    elif layout == "last":
        made[-1].output[0] = f"{p}_seq"
        made.append(helper.make_node("Gather", [f"{p}_seq", f"{p}_last"], [value], name=f"{p} last h", axis=0))
    # after what the new node reads is made, before anything reads what it makes
    maker = {o: k for k, n in enumerate(nodes) for o in n.output}
    at = max([maker[i] + 1 for i in stop if i in maker] + [0])
    kept = [(k, n) for k, n in enumerate(nodes) if k not in inside and k not in dropped]
    order = [n for k, n in kept if k < at] + made + [n for k, n in kept if k >= at]
    del graph.node[:]
    graph.node.extend(order)
    outputs = [o for o in graph.output if o.name not in gone]
    del graph.output[:]
    graph.output.extend(outputs)
    return m


def merge_directions(model):
    """Two folded loops over one sequence, forward and reverse, whose sequences a Concat joins
    on the feature axis: one bidirectional node, as nn.RNN(bidirectional=True) is."""
    import ast
    import onnx
    from onnx import helper, numpy_helper
    graph = model.graph
    folded = {}
    for n in graph.node:
        if n.doc_string.startswith("{'fold'"):
            info = ast.literal_eval(n.doc_string)
            folded[info["out"]] = (n, info)
    for k, cat in enumerate(graph.node):
        if cat.op_type != "Concat" or len(cat.input) != 2 or not all(i in folded for i in cat.input):
            continue
        (fwd, f), (bwd, b) = (folded[i] for i in cat.input)
        axis = next((a.i for a in cat.attribute if a.name == "axis"), 0)
        if (f["direction"], b["direction"]) != ("forward", "reverse") or axis not in (2, -1) or f["layout"] != "TBH" \
                or b["layout"] != "TBH" or f["states"] != b["states"] or fwd.op_type != bwd.op_type:
            continue
        state = joined_slices(graph, fwd.input[5:], bwd.input[5:]) if f["states"] else []
        if state is None:
            continue
        sources = {f["source"], b["source"]}
        consts = constants(graph)
        m = onnx.ModelProto()
        m.CopyFrom(model)
        g = m.graph
        p = f["fold"] + "_bi"
        for name, j in ((f"{p}_W", 1), (f"{p}_R", 2), (f"{p}_B", 3)):
            g.initializer.append(numpy_helper.from_array(np.concatenate([consts[fwd.input[j]], consts[bwd.input[j]]]), name))
        g.initializer.append(numpy_helper.from_array(np.array([0, 0, -1], np.int64), f"{p}_shape"))
        made = []
        for j, (source, start, stop) in enumerate(state):  # h (and c): slots start..start+1 of the state input
            for name, v in ((f"{p}_s{j}", start), (f"{p}_e{j}", stop), (f"{p}_a{j}", 0)):
                g.initializer.append(numpy_helper.from_array(np.array([v], np.int64), name))
            made.append(helper.make_node("Slice", [source, f"{p}_s{j}", f"{p}_e{j}", f"{p}_a{j}"], [f"{p}_state{j}"], name=f"{p} state {j}"))
        both = helper.make_node(fwd.op_type, [f["source"], f"{p}_W", f"{p}_R", f"{p}_B", ""] + [f"{p}_state{j}" for j in range(len(state))],
                                [f"{p}_Y"], name=fwd.name)
        both.attribute.extend(a for a in fwd.attribute if a.name != "direction")
        both.attribute.append(helper.make_attribute("direction", "bidirectional"))
        for a in both.attribute:
            if a.name == "activations":
                a.strings[:] = list(a.strings) * 2
        both.metadata_props.extend(fwd.metadata_props)
        made += [both, helper.make_node("Transpose", [f"{p}_Y"], [f"{p}_TBDH"], name=f"{p} directions last", perm=[0, 2, 1, 3]),
                 helper.make_node("Reshape", [f"{p}_TBDH", f"{p}_shape"], [cat.output[0]], name=f"{p} join")]
        group = {f["fold"], b["fold"]}
        keep = [n for n in g.node if n.output[0] in sources or not (any(n.output[0].startswith(q + "_") for q in group)
                                                                      or n.output[0] in (f["out"], b["out"]) or n.output[0] == cat.output[0])]
        at = next(j for j, n in enumerate(keep) if any(i == cat.output[0] for i in n.input)) if any(cat.output[0] in n.input for n in keep) else len(keep)
        del g.node[:]
        g.node.extend(keep[:at] + made + keep[at:])
        return merge_directions(m)
    return model


def joined_slices(graph, forward, reverse):
    """The two directions' initial states as one slice of the state input: [(input, start, stop)]
    per state (h, c) when each direction's is the Slice of it at consecutive slots, else None."""
    consts = constants(graph)
    maker = {o: n for n in graph.node for o in n.output}
    out = []
    for f, b in zip(forward, reverse):
        pair = [maker.get(f), maker.get(b)]
        if any(n is None or n.op_type != "Slice" or len(n.input) < 3 for n in pair) or pair[0].input[0] != pair[1].input[0]:
            return None
        (fs, fe), (bs, be) = ((int(consts[n.input[1]][0]), int(consts[n.input[2]][0])) for n in pair)
        if (fe, bs, be) != (fs + 1, fs + 1, fs + 2):
            return None
        out.append((pair[0].input[0], fs, fs + 2))
    return out
