"""The ONNX importer on graphs nobody exported: every committed ONNX fixture, mutated at random
(a node dropped, duplicated or rewired, an attribute or a weight's shape changed, the window's
shape changed). Each import ends in a one-line refusal (OnnxError) or in a model that computes
what the mutated graph computes (onnx's own reference evaluator on the case's window): never a
traceback, never a wrong number. The seed is fixed so that a failure repeats;
MUTATIONS=n runs more."""
import copy
import json
import os
import random
import sys

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from onnx.reference import ReferenceEvaluator

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
import onnx_import  # noqa: E402
import reference  # noqa: E402

PIPELINES = os.path.join(ROOT, "Tests", "Fixtures", "pipelines")
CASES = sorted(c for c in os.listdir(PIPELINES) if c.startswith("onnx_"))
PER_CASE = int(os.environ.get("MUTATIONS", "12"))


def mutate(model, rng):
    """A copy of `model` with one random change, and what the change was."""
    m = copy.deepcopy(model)
    g = m.graph
    nodes = list(g.node)
    k = rng.randrange(len(nodes))
    node = g.node[k]
    kind = rng.choice(["drop", "duplicate", "rewire", "attribute", "weight", "window"])
    if kind == "drop":
        del g.node[k]
    elif kind == "duplicate":
        twin = copy.deepcopy(node)
        twin.name = node.name + "_twin"
        g.node.insert(k + 1, twin)
    elif kind == "rewire" and len(node.input):
        made = [i.name for i in g.input] + [t.name for t in g.initializer] + [o for n in nodes[:k] for o in n.output]
        node.input[rng.randrange(len(node.input))] = rng.choice(made)
    elif kind == "attribute" and len(node.attribute):
        a = rng.choice(list(node.attribute))
        if a.type == onnx.AttributeProto.INT:
            a.i = a.i + rng.choice([-1, 1, 2])
        elif a.type == onnx.AttributeProto.FLOAT:
            a.f = a.f * rng.choice([0.5, 2.0, -1.0])
        elif a.type == onnx.AttributeProto.INTS and len(a.ints):
            a.ints[rng.randrange(len(a.ints))] += rng.choice([-1, 1])
        elif a.type == onnx.AttributeProto.STRING:
            a.s = rng.choice([b"reverse", b"bidirectional", b"forward", b"Relu"])
        else:
            kind = "attribute (none changed)"
    elif kind == "weight" and len(g.initializer):
        t = rng.choice(list(g.initializer))
        arr = numpy_helper.to_array(t)
        if arr.ndim >= 1 and arr.shape[0] > 1:
            t.CopyFrom(numpy_helper.from_array(arr[:-1], t.name))  # one row or value short
        else:
            kind = "weight (none changed)"
    elif kind == "window":
        dims = g.input[0].type.tensor_type.shape.dim
        if len(dims):
            dims[-1].dim_value = max(1, dims[-1].dim_value + rng.choice([-1, 1]))
    return m, f"{kind} at node {k} ({node.op_type} {node.name})"


def run_graph(model, case):
    """What the graph answers for the case's windows (batch-first), or None where onnx's own
    evaluator cannot run it."""
    x = np.array(case["x"], np.float32)
    inputs = [i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    dims = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim]
    time_major = len(dims) == 3 and dims[:2] == [x.shape[1], x.shape[0]] and x.shape[0] != x.shape[1]
    feeds = {inputs[0].name: x.transpose(1, 0, 2) if time_major else x}
    for i, key in zip(inputs[1:], ("h0", "c0")):
        feeds[i.name] = np.array(case[key], np.float32)
    if any(n.op_type.startswith("Random") for n in model.graph.node):
        return "random"
    try:
        y = ReferenceEvaluator(model).run(None, feeds)[0]
    except Exception:
        return None
    y = np.asarray(y)
    if time_major and y.ndim == 3 and y.shape[1] == x.shape[0]:
        y = y.transpose(1, 0, 2)
    return y


@pytest.mark.parametrize("name", CASES)
def test_a_mutated_graph_is_refused_in_one_line_or_served_exactly(name, tmp_path):
    case = json.load(open(os.path.join(PIPELINES, name, "case.json")))
    model = onnx.load(os.path.join(PIPELINES, name, "model.onnx"))
    rng = random.Random(name)
    served = 0
    for n in range(PER_CASE):
        mutated, what = mutate(model, rng)
        path = str(tmp_path / f"m{n}.onnx")
        onnx.save(mutated, path)
        try:
            tensors, cfg = onnx_import.from_onnx(path)
        except onnx_import.OnnxError as e:
            text = str(e)
            assert text and "\n" not in text, f"{what}: a refusal of more than one line: {text!r}"
            continue
        except Exception as e:  # noqa: BLE001 - the point of the test
            pytest.fail(f"{what}: a traceback instead of a refusal: {type(e).__name__}: {e}")
        want = run_graph(mutated, case)
        assert want is not None, f"{what}: imported a graph that onnx's own evaluator cannot run"
        if isinstance(want, str):
            continue  # a state drawn at random: there is no one answer to compare with
        got = reference.forward_layers(tensors, cfg, np.array(case["x"], np.float32), case.get("h0"), case.get("c0"))
        assert np.shape(got) == np.shape(want) or np.size(got) == np.size(want), f"{what}: {np.shape(got)} values, the graph {np.shape(want)}"
        np.testing.assert_allclose(np.ravel(got), np.ravel(want), rtol=1e-4, atol=1e-4, err_msg=what)
        served += 1
