"""Every documented predict and step option on every whole-model fixture (Tests/Fixtures/pipelines,
made by the real frameworks), against the live release binary: each answer is exact or a 4xx,
never a 5xx, a dropped connection or a dead server.

Exact means: the framework's own answer for the case's windows (and the initial state it used);
for a window of any other valid length, the float64 reference (tools/tests/reference.py), and
for `return_sequences`, the reference's output of the last recurrent layer at every timestep it
saw; batches, split windows with `state`, and session steps equal the single predict bit for bit.
Boundary inputs (an empty, too short or too long window, NaN, a huge value, a state of the wrong
size, an empty `xs`) may be refused, with a 4xx."""
import json
import os
import random
import shutil
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, HERE)
import reference  # noqa: E402
import st_io  # noqa: E402
from live import Server  # noqa: E402

PIPELINES = os.path.join(ROOT, "Tests", "Fixtures", "pipelines")
MODELS = os.path.join(ROOT, "Tests", "Fixtures", "models")
CASES = sorted(os.listdir(PIPELINES))
RECURRENT = ("lstm", "gru", "rnn")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    repo = tmp_path_factory.mktemp("models")
    for name in CASES:
        shutil.copytree(os.path.join(MODELS, name), repo / name)
    with Server(str(repo), "--session-store", "memory", "--require-all-models") as s:
        yield s


def load(name):
    case = json.load(open(os.path.join(PIPELINES, name, "case.json")))
    tensors, _ = st_io.read(os.path.join(MODELS, name, "model.safetensors"))
    config = json.load(open(os.path.join(MODELS, name, "config.json")))
    config["layers"] = reference.layers_of(tensors, config)
    return case, tensors, config


def one(answer):
    return list((answer.get("probabilities") or answer["forecast"]).values())


def numbers(answer):
    """The answer's numbers in output order: probabilities, every timestep, or the forecast."""
    if "forecasts" in answer:
        return [v for step in answer["forecasts"] for v in one(step)]
    return one(answer)


def start_state(case, b):
    """The initial state the framework started sample b from (PyTorch cases), in slot form."""
    if "h0" not in case:
        return None
    state = {"h": [slot[b] for slot in case["h0"]]}
    if "c0" in case:
        state["c"] = [slot[b] for slot in case["c0"]]
    return state


def slot_arrays(case, b):
    if "h0" not in case:
        return None, None
    return np.array(case["h0"])[:, b:b + 1], np.array(case["c0"])[:, b:b + 1] if "c0" in case else None


def tapped(config):
    """The layers up to the last recurrent one, which then returns its sequence."""
    layers = config["layers"]
    last = max(k for k, spec in enumerate(layers) if spec["type"] in RECURRENT)
    cut = json.loads(json.dumps(layers[:last + 1]))
    cut[-1]["return_sequences"] = True
    return dict(config, layers=cut)


def close(got, want, tol):
    got, want = np.asarray(got, np.float64).ravel(), np.asarray(want, np.float64).ravel()
    assert got.shape == want.shape, f"{got.shape} values, expected {want.shape}"
    worst = np.max(np.abs(got - want) / (1 + np.abs(want))) if got.size else 0.0
    assert worst <= tol, f"worst |diff|/(1+|expected|) {worst:.2e} > {tol:.0e}"


def fixed_window(config):
    return config.get("inputs", {}).get("window")


@pytest.mark.parametrize("name", CASES)
def test_every_option_is_exact_or_refused(server, name):
    case, tensors, config = load(name)
    path = f"/v1/models/{name}/predict"
    streamable = case["streamable"]
    rng = random.Random(name)
    for b, window in enumerate(case["x"]):
        state = start_state(case, b)
        h0, c0 = slot_arrays(case, b)
        body = {"window": window} | ({"state": state} if state else {})
        status, single = server.call("POST", path, body)
        assert status == 200, single
        close(numbers(single), case["expected"][b], 1e-5)
        if "probabilities" in single:  # a classifier names its top class, labels configured or not
            probabilities = single["probabilities"]
            assert single["label"] == list(probabilities)[single["class"]] == max(probabilities, key=probabilities.get)

        # return_sequences: the last recurrent layer's every timestep, as long as that layer saw it
        status, answer = server.call("POST", path, body | {"return_sequences": True})
        assert status == 200, answer
        want = reference.forward_layers(tensors, tapped(config), np.array([window], np.float32), h0, c0)[0]
        assert len(answer["sequence"]) == len(want), f"sequence of {len(answer['sequence'])} rows, the layer saw {len(want)}"
        close(answer["sequence"], want, 1e-5)
        assert numbers(answer) == numbers(single)

        # return_state; and for a model that streams, the window split in two with that state
        status, answer = server.call("POST", path, body | {"return_state": True})
        assert status == 200, answer
        assert numbers(answer) == numbers(single)
        if "h_n" in case and "layers" in answer["state"]:
            h = [v for layer in answer["state"]["layers"].values() for k, v in layer.items() if k.startswith("h")]
            close(h, np.array(case["h_n"])[:, b], 1e-5)
        if streamable and len(window) > 1 and not fixed_window(config):
            k = rng.randrange(1, len(window))
            status, first = server.call("POST", path, {"window": window[:k], "return_state": True} | ({"state": state} if state else {}))
            assert status == 200, first
            status, rest = server.call("POST", path, {"window": window[k:], "state": first["state"]})
            assert status == 200, rest
            tail = numbers(rest)
            assert tail == numbers(single)[len(numbers(single)) - len(tail):], f"split at {k}"

        # a session: the whole window at once, and row by row, equal predict to the bit
        if streamable:
            made = server.session(name, state)
            status, answer = server.call("POST", f"/v1/sessions/{made}/step", {"xs": window, "expected_step": 0})
            assert status == 200, answer
            assert one(answer["forecasts"][-1]) == one(single), "the window as xs"
            if "forecasts" in single:
                assert numbers(answer) == numbers(single), "every timestep of the window as xs"
            status, answer = server.call("POST", f"/v1/sessions/{made}/step", {"x": window[0], "expected_step": 0})
            assert status == 409, answer
            status, info = server.call("GET", f"/v1/sessions/{made}")
            assert info["step"] == len(window), info
            again = server.session(name, state)
            for t, row in enumerate(window):
                status, answer = server.call("POST", f"/v1/sessions/{again}/step", {"x": row, "expected_step": t})
                assert status == 200, answer
            assert one(answer) == one(single), "the window row by row"

    # windows: one answer per window, each equal to its own predict
    if "h0" not in case:
        status, answer = server.call("POST", path, {"windows": case["x"], "return_sequences": True})
        assert status == 200, answer
        for b, p in enumerate(answer["predictions"]):
            status, alone = server.call("POST", path, {"window": case["x"][b], "return_sequences": True})
            assert numbers(p) == numbers(alone) and p["sequence"] == alone["sequence"]

    # windows of other lengths: exact against the reference, or refused naming why
    template = np.array(case["x"][0])
    T = len(template)
    for length in sorted({1, 2, T - 1, T + 1, 2 * T, rng.randrange(1, 2 * T + 1)} - {0}):
        x = random_window(case, template, length, rng)
        status, answer = server.call("POST", path, {"window": x.tolist(), "return_sequences": True})
        if fixed_window(config) and length != T:
            assert status == 422, (length, answer)
            continue
        if status == 422:
            assert "timesteps" in answer["error"]["message"], answer  # a layer over time left with no rows
            continue
        assert status == 200, (length, answer)
        h0, c0 = slot_arrays(case, 0)
        h0, c0 = (None if v is None else np.zeros_like(v) for v in (h0, c0))
        want = reference.forward_layers(tensors, config, x[None].astype(np.float32), h0, c0)[0]
        close(numbers(answer), want, 1e-4)
        seq = reference.forward_layers(tensors, tapped(config), x[None].astype(np.float32), h0, c0)[0]
        assert len(answer["sequence"]) == len(seq)
        close(answer["sequence"], seq, 1e-4)

    # boundary inputs: refused with a 4xx, never a 5xx or a dead connection
    bad = [{"window": []}, {"window": [[float("nan")] * 3]}, {"windows": []}, {"window": case["x"][0], "state": {"h": [[1.0]]}},
           {"window": case["x"][0], "return_sequences": "yes"}, {"window": case["x"][0], "state": {"layers": {"nope": {}}}}]
    for body in bad:
        status, answer = server.call("POST", path, body)
        assert 400 <= status < 500, (body, status, answer)
    huge = json.loads(json.dumps(case["x"][0]))
    first_number(huge, 1e30)
    status, answer = server.call("POST", path, {"window": huge})
    assert status in (200, 422), answer
    if streamable:
        made = server.session(name, start_state(case, 0))
        for body in ({"xs": []}, {"x": []}, {"x": case["x"][0][0], "expected_step": -1}, {"xs": [case["x"][0][0]] * 2, "x": case["x"][0][0]}):
            status, answer = server.call("POST", f"/v1/sessions/{made}/step", body)
            assert 400 <= status < 500, (body, status, answer)
        status, info = server.call("GET", f"/v1/sessions/{made}")
        assert info["step"] == 0, "a refused step changed the session"
    assert server.alive()


def random_window(case, template, length, rng):
    """A window of `length` rows like the case's: token ids stay ids, one-hot rows stay rows."""
    shape = (length,) + template.shape[1:]
    gen = np.random.default_rng(rng.randrange(1 << 30))
    if np.all(template == np.round(template)) and template.min() >= 0:
        return gen.integers(0, int(template.max()) + 1, shape).astype(np.float64)
    return gen.standard_normal(shape)


def first_number(x, value):
    while isinstance(x[0], list):
        x = x[0]
    x[0] = value


@pytest.mark.parametrize("name", ["keras_embedding_conv_pool_lstm", "keras_conv1d_pooling"])
def test_the_cli_prints_the_pooled_sequence(name, tmp_path):
    """`lstm-serve predict --sequences` answers what HTTP answers, on a model whose time axis shrinks."""
    import subprocess
    from live import BINARY
    case, tensors, config = load(name)
    x = case["x"][0]
    out = subprocess.run([BINARY, "predict", "--model", os.path.join(MODELS, name), "--input", "-", "--sequences"],
                         input=json.dumps({"window": x}), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    want = reference.forward_layers(tensors, tapped(config), np.array([x], np.float32))[0]
    assert len(answer["sequence"]) == len(want) < len(x)
    close(answer["sequence"], want, 1e-5)
    close(numbers(answer), case["expected"][0], 1e-5)
