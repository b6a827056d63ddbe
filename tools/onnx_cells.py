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
of the graph is read as usual. onnx_import.check() then compares the whole import with the
original graph, so a wrong hypothesis can only end in a refusal."""
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


def hypotheses(graph, consts, features):
    """(kind, W_ih, W_hh, b_ih, b_hh, W_hh's name) for each pair of weights a cell loop could be."""
    uses = weight_uses(graph, consts)
    out = []
    for rname, (R, rnodes) in uses.items():
        rows, hidden = R.shape
        if len(rnodes) < 2 or rows % hidden or rows // hidden not in GATES:
            continue
        for iname, (W, inodes) in uses.items():
            if iname == rname or W.shape != (rows, features):
                continue
            for kind in GATES[rows // hidden]:
                out.append((kind, W, R, bias_of(graph, consts, inodes[0], rows), bias_of(graph, consts, rnodes[0], rows), rname, rnodes[0]))
    return out


def fold(model):
    """The model with its unrolled cell loop replaced by one recurrent node, or the model itself
    when it has no loop. LoopError when a loop's reused weights compute no cell it can match."""
    from onnx.reference import ReferenceEvaluator
    graph = model.graph
    if any(n.op_type in ("LSTM", "GRU", "RNN") for n in graph.node):
        return model
    consts = constants(graph)
    inputs = [i for i in graph.input if i.name not in consts]
    if not inputs:
        return model
    dims = [[d.dim_value or 3 for d in i.type.tensor_type.shape.dim] for i in inputs]
    if len(dims[0]) != 3:
        return model
    candidates = hypotheses(graph, consts, dims[0][2])
    if not candidates:
        return model
    rng = np.random.default_rng(7)
    x = rng.standard_normal(dims[0]).astype(np.float32)
    states = [rng.uniform(-0.5, 0.5, d).astype(np.float32) for d in dims[1:]]
    made = [o for n in graph.node for o in n.output if o]
    try:
        values = dict(zip(made, ReferenceEvaluator(model).run(made, {i.name: v for i, v in zip(inputs, [x] + states)})))
    except Exception as e:
        raise LoopError(f"the graph reuses the weights {candidates[0][5]} like an unrolled cell loop, but does not run "
                        f"(onnx reference evaluator: {type(e).__name__}: {e})".replace("\n", " ")[:600])
    for kind, W, R, bi, bh, rname, first_use in candidates:
        hidden = R.shape[1]
        tensors = {"c.weight_ih": W, "c.weight_hh": R}
        if bi is not None:
            tensors["c.bias_ih"] = bi
        if bh is not None:
            tensors["c.bias_hh"] = bh
        for time_major in (False, True):
            seq = x.transpose(1, 0, 2) if time_major else x
            B = seq.shape[0]
            starts = [(None, None, [])]
            if states and all(s.shape == (1, B, hidden) for s in states[:2]):
                starts.append((states[0][0], states[1][0] if len(states) > 1 and kind == "lstm" else None, [i.name for i in inputs[1:3]]))
            for h0, c0, state_names in starts:
                _, h = reference.run_cell(tensors, "c.", "", kind[:3] if kind != "lstm" else kind, seq.astype(np.float64),
                                          None if h0 is None else h0.astype(np.float64), None if c0 is None else c0.astype(np.float64),
                                          act="relu" if kind == "rnn_relu" else "tanh")
                for name in made:
                    v = values[name]
                    if isinstance(v, np.ndarray) and v.shape == h.shape and np.allclose(v, h, rtol=1e-5, atol=1e-5):
                        return rewrite(model, name, kind, tensors, hidden, time_major, state_names[: 2 if kind == "lstm" else 1], rname)
    use = candidates[0][6]
    raise LoopError(f"{use.op_type} node {use.name or use.output[0]} and the others reading {candidates[0][5]} reuse it at "
                    "every timestep like an unrolled nn.LSTMCell, nn.GRUCell or nn.RNNCell loop, but no value of the graph is "
                    "the last h of such a cell over the window's rows from a zero or given state. An nn.RNN of several "
                    "layers or two directions exports whole with dynamo=False; a cell loop of another shape serves "
                    "from its state_dict with a config layers list (README: Bring your own model)")


def ancestors(nodes, name, stop):
    """Indices of the nodes that make `name`, back to the graph's inputs and constants."""
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


def rewrite(model, h_name, kind, tensors, hidden, time_major, state_names, rname):
    import onnx
    from onnx import helper, numpy_helper
    m = onnx.ModelProto()
    m.CopyFrom(model)
    graph = m.graph
    x = [i for i in graph.input if i.name not in {t.name for t in graph.initializer}][0].name
    nodes = list(graph.node)
    loop = ancestors(nodes, h_name, stop={x, *state_names})
    loop_outputs = {o for k in loop for o in nodes[k].output}
    graph_outputs = {g.name for g in graph.output}
    # what else reads the loop: only nodes that end in graph outputs (final states) may, and they are dropped
    dropped = set()
    for k, n in enumerate(nodes):
        if k in loop or not any(i in loop_outputs for i in n.input):
            continue
        if n.op_type in RESHAPES and all(o in graph_outputs for o in n.output):
            dropped.add(k)  # a final state handed out as a graph output (h[None], c[None]): not the answer
            continue
        if not any(i in loop_outputs and i != h_name for i in n.input):
            continue
        if not all(o in graph_outputs for o in n.output):
            raise LoopError(f"{n.op_type} node {n.name or n.output[0]} reads a value inside the unrolled cell loop: only the "
                            "loop's last h can be served (return the last h, or export a state_dict)")
        dropped.add(k)
    gone = {o for k in loop | dropped for o in nodes[k].output} - {h_name} | {o for k in dropped for o in nodes[k].output}
    module = rname.rsplit(".", 1)[0] if "." in rname else "cell"
    G = {"lstm": 4, "gru": 3}.get(kind, 1)
    order = ONNX_ORDER[kind]

    def onnx_blocks(a):
        parts = np.split(a, G, axis=0)
        return np.concatenate([parts[k] for k in order], axis=0)

    W = onnx_blocks(tensors["c.weight_ih"])[None].astype(np.float32)
    R = onnx_blocks(tensors["c.weight_hh"])[None].astype(np.float32)
    zeros = np.zeros(G * hidden, np.float32)
    B = np.concatenate([onnx_blocks(tensors.get("c.bias_ih", zeros)), onnx_blocks(tensors.get("c.bias_hh", zeros))])[None].astype(np.float32)
    p = f"{module}_folded"
    for name, arr in ((f"{p}_W", W), (f"{p}_R", R), (f"{p}_B", B), (f"{p}_axes", np.array([1], np.int64)),
                      (f"{p}_last", np.array(-1, np.int64))):
        graph.initializer.append(numpy_helper.from_array(arr, name))
    made = []
    seq = x
    if not time_major:
        made.append(helper.make_node("Transpose", [x], [f"{p}_x"], name=f"{module} (time first)", perm=[1, 0, 2]))
        seq = f"{p}_x"
    op = {"lstm": "LSTM", "gru": "GRU"}.get(kind, "RNN")
    attrs = {"hidden_size": hidden}
    if kind == "gru":
        attrs["linear_before_reset"] = 1
    if kind.startswith("rnn"):
        attrs["activations"] = ["Relu" if kind == "rnn_relu" else "Tanh"]
    made.append(helper.make_node(op, [seq, f"{p}_W", f"{p}_R", f"{p}_B", ""] + state_names, [f"{p}_Y"], name=module, **attrs))
    made.append(helper.make_node("Squeeze", [f"{p}_Y", f"{p}_axes"], [f"{p}_seq"], name=f"{module} (directions)"))
    made.append(helper.make_node("Gather", [f"{p}_seq", f"{p}_last"], [h_name], name=f"{module} (last h)", axis=0))
    first = min(loop)
    before = [n for k, n in enumerate(nodes[:first]) if k not in loop and k not in dropped]
    after = [n for k, n in enumerate(nodes) if k >= first and k not in loop and k not in dropped]
    del graph.node[:]
    graph.node.extend(before + made + after)
    outputs = [o for o in graph.output if o.name not in gone]
    del graph.output[:]
    graph.output.extend(outputs)
    return m
