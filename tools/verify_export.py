"""What export_model.py does after it writes a model directory: it loads the directory the way
the server will (`lstm-serve inspect`), and, when the source framework is installed, runs a few
random windows through the framework and through lstm-serve and compares them within the golden
tolerance (|got - expected| <= 1e-5 * (1 + |expected|), scaled up past 100 timesteps).

The framework's side: onnxruntime for an .onnx file, Keras for a .keras file. A state_dict has
no code to run, so there the inferred layers are all there is to check."""
import json
import os
import shutil
import subprocess

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


class VerifyError(Exception):
    pass


def find_binary():
    """LSTM_SERVE_BINARY, the project's own builds (release first), or lstm-serve on PATH."""
    candidates = [os.environ.get("LSTM_SERVE_BINARY")] + [os.path.join(ROOT, ".build", d, "lstm-serve") for d in ("install", "release", "debug")]
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return shutil.which("lstm-serve")


def inspect(binary, out_dir):
    """The architecture as the server infers it, or VerifyError with the server's refusal."""
    run = subprocess.run([binary, "inspect", out_dir], capture_output=True, text=True, timeout=120)
    if run.returncode != 0:
        raise VerifyError(run.stderr.strip().removeprefix("lstm-serve: ") or f"lstm-serve inspect exited {run.returncode}")
    return run.stdout.rstrip()


def served(binary, out_dir, window, state):
    """lstm-serve's answer for one window as a flat list: probabilities, every timestep, or the forecast."""
    body = {"window": window.tolist()}
    if state is not None:
        body["state"] = state
    run = subprocess.run([binary, "predict", "--model", out_dir, "--input", "-"], input=json.dumps(body),
                         capture_output=True, text=True, timeout=120)
    if run.returncode != 0:
        raise VerifyError(f"lstm-serve predict refused a window the framework ran: {run.stderr.strip()}")
    answer = json.loads(run.stdout)
    one = lambda a: list((a.get("probabilities") or a["forecast"]).values())
    if "forecasts" in answer:
        return [v for step in answer["forecasts"] for v in one(step)]
    return one(answer)


def onnx_runs(source, rng, time_major, output):
    """(per-sample windows, per-sample states, per-sample framework answers), or a reason to skip."""
    try:
        import onnxruntime
    except ImportError:
        return "onnxruntime is not installed (pip install onnxruntime)"
    import onnx
    graph = onnx.load(source, load_external_data=False).graph
    if any(n.op_type.startswith("Random") for n in graph.node):
        return "the graph draws its initial state at random, so its answers cannot be repeated"
    initializers = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    dims = [[d.dim_value or None for d in i.type.tensor_type.shape.dim] for i in inputs]
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    shape = [d or 3 for d in dims[0]]
    B = shape[1] if time_major else shape[0]
    windows, per_state, answers = [], [], []
    for _ in range(3 if B == 1 else 1):  # a graph exported for one window: three runs
        x = rng.standard_normal(shape).astype(np.float32)
        states = [rng.uniform(-0.5, 0.5, [d or 3 for d in ds]).astype(np.float32) for ds in dims[1:]]
        y = session.run([output], {inputs[0].name: x} | {i.name: s for i, s in zip(inputs[1:], states)})[0]
        if y.ndim == 3 and y.shape[1] == B and y.shape[0] != B:
            y = y.transpose(1, 0, 2)
        windows += [x[:, b] if time_major else x[b] for b in range(B)]
        per_state += [{"h": [s[b].tolist() for s in states[0]]} | ({"c": [s[b].tolist() for s in states[1]]} if len(states) > 1 else {})
                      if states else None for b in range(B)]
        answers += [y[b] for b in range(B)]
    return windows, per_state, answers


def keras_runs(source, rng):
    try:
        os.environ.setdefault("KERAS_BACKEND", "jax")
        import keras
    except ImportError:
        return "keras is not installed (pip install keras jax)"
    model = keras.saving.load_model(source, compile=False)
    shape = [3] + [d or 8 for d in model.inputs[0].shape[1:]]
    first = model.layers[0] if model.layers else None
    if first is not None and first.__class__.__name__ == "Embedding":
        x = rng.integers(0, first.input_dim, shape).astype(np.float32)
    else:
        x = rng.standard_normal(shape).astype(np.float32)
    y = np.asarray(model.predict(x, verbose=0))
    return [x[b] for b in range(3)], [None] * 3, [y[b] for b in range(3)]


def compare(source, out_dir, binary, seed=0):
    """A line saying how far lstm-serve is from the framework on random windows, or why it was
    not compared; VerifyError when it is beyond the golden tolerance."""
    rng = np.random.default_rng(seed)
    ext = os.path.splitext(source)[1].lower()
    config = json.load(open(os.path.join(out_dir, "config.json")))
    src = config.get("source", {})
    runs = onnx_runs(source, rng, src.get("layout") == "time-major", src.get("output")) if ext == ".onnx" \
        else keras_runs(source, rng) if ext == ".keras" else None
    if runs is None:
        return None
    if isinstance(runs, str):
        return f"not compared with the framework: {runs}"
    windows, states, expected = runs
    features, outputs = config.get("inputs", {}).get("features", []), config.get("outputs", [])
    if any(f.get("derived") for f in features) or any(o.get("residual_of") for o in outputs):
        return "not compared with the framework: the config derives inputs or adds residuals the framework's file does not"
    # the framework's file takes and answers normalized values; the served model, real units
    norm = config.get("normalization", {})
    scale = lambda v, mean, std: v * np.asarray(norm.get(std, 1.0), np.float32) + np.asarray(norm.get(mean, 0.0), np.float32)
    windows = [scale(w, "input_mean", "input_std") for w in windows]
    expected = [scale(np.asarray(y, np.float64), "output_mean", "output_std") for y in expected]
    worst, T = 0.0, len(windows[0])
    for window, state, want in zip(windows, states, expected):
        got = np.asarray(served(binary, out_dir, window, state), np.float64)
        want = np.asarray(want, np.float64).ravel()
        if got.shape != want.shape:
            raise VerifyError(f"lstm-serve answers {got.size} values for a window, the framework {want.size}")
        worst = max(worst, float(np.max(np.abs(got - want) / (1 + np.abs(want)))))
    tol = 1e-5 * max(1.0, T / 100)
    line = f"{len(windows)} random windows of {T} timesteps: largest |lstm-serve - framework| / (1 + |framework|) = {worst:.1e} (tolerance {tol:.0e})"
    if not worst <= tol:
        raise VerifyError(line + ": the exported model does not compute what the framework computes")
    return line
