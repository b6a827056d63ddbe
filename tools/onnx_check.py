"""What the ONNX importer does once the walk has made the layers: names them as the PyTorch
modules that made them, and proves the import computes what the graph computes."""
import ast

import numpy as np

import reference

RANDOM = ("RandomUniformLike", "RandomNormalLike", "RandomUniform", "RandomNormal")


class OnnxError(Exception):
    """A graph the importer cannot take: one line, naming the node and what it expected."""


def module_path(node):
    """The PyTorch module a node came from ('lstm', 'head.0'), or '' for an op in forward()
    itself: the dynamo exporter's name scopes, or the TorchScript exporter's '/lstm/LSTM'."""
    for p in node.metadata_props:
        if p.key == "pkg.torch.onnx.name_scopes":
            try:
                scopes = [s for s in ast.literal_eval(p.value) if isinstance(s, str)]
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


def check(model, tensors, cfg, seed=0):
    """The import computes what the graph computes: a probe window through onnx's own reference
    evaluator and through the float64 reference of the exported layers. A graph that does not
    run, or an import that answers otherwise, is refused here rather than served."""
    from onnx.reference import ReferenceEvaluator
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
