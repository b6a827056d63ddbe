"""A float64 numpy forward pass over exported model directories (PyTorch layout), independent
of the Swift core: the legacy layout (recurrent stack under `rnn.`, head under `head`) and
config.json's `layers` list. The ONNX importer checks its work with it, and the tests check
export_model.py and the server against it."""
import numpy as np


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


ACT = {
    "linear": lambda x: x, "relu": lambda x: np.maximum(x, 0), "sigmoid": sigmoid, "tanh": np.tanh,
    "hard_sigmoid": lambda x: np.clip(x + 3, 0, 6) / 6, "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
    "softsign": lambda x: x / (1 + np.abs(x)), "softplus": lambda x: np.logaddexp(0, x), "silu": lambda x: x * sigmoid(x),
}


def activate(y, act):
    if act == "softmax":
        e = np.exp(y - y.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    return ACT[act](y)


def run_cell(tensors, prefix, suffix, kind, seq, h, c, act="tanh", rec="sigmoid", reset_after=True, backwards=False):
    """One direction over seq (B, T, I); returns outputs (B, T, H) aligned with t, and h."""
    W = tensors[f"{prefix}weight_ih{suffix}"].astype(np.float64)
    U = tensors[f"{prefix}weight_hh{suffix}"].astype(np.float64)
    bi = tensors.get(f"{prefix}bias_ih{suffix}", np.zeros(W.shape[0])).astype(np.float64)
    bh = tensors.get(f"{prefix}bias_hh{suffix}", np.zeros(W.shape[0])).astype(np.float64)
    B, T, _ = seq.shape
    Hh = U.shape[1]
    h = np.zeros((B, Hh)) if h is None else h
    c = np.zeros((B, Hh)) if c is None else c
    out = np.zeros((B, T, Hh))
    f_act, f_rec = ACT[act], ACT[rec]
    for t in (reversed(range(T)) if backwards else range(T)):
        xt = seq[:, t]
        if kind == "lstm":
            i, f, g, o = np.split(xt @ W.T + bi + h @ U.T + bh, 4, axis=1)
            c = f_rec(f) * c + f_rec(i) * f_act(g)
            h = f_rec(o) * f_act(c)
        elif kind == "gru":
            xr, xz, xn = np.split(xt @ W.T + bi, 3, axis=1)
            Ur, Uz, Un = np.split(U, 3, axis=0)
            br, bz, bn = np.split(bh, 3)
            r = f_rec(xr + h @ Ur.T + br)
            z = f_rec(xz + h @ Uz.T + bz)
            n = f_act(xn + r * (h @ Un.T + bn)) if reset_after else f_act(xn + (r * h) @ Un.T + bn)
            h = (1 - z) * n + z * h
        else:
            h = f_act(xt @ W.T + bi + h @ U.T + bh)
        out[:, t] = h
    return out, h


def pads(n, k, s, padding, d=1):
    """(output length, padding before) as TensorFlow lays a window of k (dilation d) over n."""
    span = (k - 1) * d + 1
    if padding == "valid":
        return (n - span) // s + 1, 0
    if padding == "causal":
        return n, span - 1
    out = -(-n // s)
    return out, max((out - 1) * s + span - n, 0) // 2


def conv1d(y, w, b, stride, padding, d):
    """y (B, T, cin), w (cout, cin, k) -> (B, T', cout)."""
    B, T, _ = y.shape
    cout, _, k = w.shape
    n, before = pads(T, k, stride, padding, d)
    out = np.zeros((B, n, cout)) + (0 if b is None else b)
    for o in range(n):
        for j in range(k):
            i = o * stride + j * d - before
            if 0 <= i < T:
                out[:, o] += y[:, i] @ w[:, :, j].T
    return out


def pool(y, axes, size, strides, padding, reduce):
    """Max or mean pooling of y over `axes` (windows of `size`); padding cells are left out."""
    out = y
    for axis, k, s in zip(axes, size, strides):
        n, before = pads(out.shape[axis], k, s, padding)
        parts = []
        for o in range(n):
            lo, hi = max(o * s - before, 0), min(o * s - before + k, out.shape[axis])
            parts.append(reduce(np.take(out, range(lo, hi), axis=axis), axis=axis))
        out = np.stack(parts, axis=axis)
    return out


def frames(y, fn):
    """fn applied to every frame of y (B, T, H, W, C) or of a single value (B, H, W, C)."""
    if y.ndim == 5:
        return np.stack([fn(y[:, t]) for t in range(y.shape[1])], axis=1)
    return fn(y)


def conv2d(f, w, b, strides, padding):
    """f (B, H, W, C), w (cout, cin, kh, kw)."""
    B, H, W, _ = f.shape
    cout, _, kh, kw = w.shape
    (oh, top), (ow, left) = pads(H, kh, strides[0], padding), pads(W, kw, strides[1], padding)
    out = np.zeros((B, oh, ow, cout)) + (0 if b is None else b)
    for oy in range(oh):
        for ox in range(ow):
            for ky in range(kh):
                for kx in range(kw):
                    iy, ix = oy * strides[0] + ky - top, ox * strides[1] + kx - left
                    if 0 <= iy < H and 0 <= ix < W:
                        out[:, oy, ox] += f[:, iy, ix] @ w[:, :, ky, kx].T
    return out


def layers_of(tensors, cfg):
    """The config's layers list, or for a plain state_dict the one the server infers from its
    names: recurrent layers, the last timestep, the Linear head under head_prefix."""
    if cfg.get("layers"):
        return cfg["layers"]
    head = cfg.get("head_prefix", "head")
    prefix = next(n[:n.index("weight_ih_l0")] for n in tensors if n.endswith("weight_ih_l0"))
    rows, hidden = tensors[prefix + "weight_hh_l0"].shape
    spec = {"type": {4: "lstm", 3: "gru", 1: "rnn"}[rows // hidden], "weights": prefix.rstrip("."),
            "num_layers": sum(n.startswith(prefix + "weight_ih_l") and not n.endswith("_reverse") for n in tensors),
            "bidirectional": prefix + "weight_ih_l0_reverse" in tensors}
    dense = [head] if head + ".weight" in tensors else sorted({n.rsplit(".", 1)[0] for n in tensors if n.startswith(head + ".")},
                                                                  key=lambda m: int(m.rsplit(".", 1)[1]))
    return [spec, {"type": "last_timestep"}] + [{"type": "dense", "weights": m} for m in dense]


def forward_layers(tensors, cfg, x, h0=None, c0=None):
    """The `layers` list on x (B, T, ...) from the state h0, c0 ((L*D, B, H) per slot, in
    layer order); returns the model's output."""
    y = x.astype(np.float64)
    shape = cfg.get("inputs", {}).get("shape")
    if shape:
        y = y.reshape(y.shape[:2] + tuple(shape))
    slot = 0
    get = lambda name: None if name not in tensors else tensors[name].astype(np.float64)
    sequence = [True]  # whether y still has its time axis
    lead = lambda: 2 if sequence[0] else 1

    def start(k):
        pick = lambda s: None if s is None else np.asarray(s[k], np.float64)
        return pick(h0), pick(c0)

    for spec in layers_of(tensors, cfg):
        kind = spec["type"]
        prefix = spec.get("weights", spec.get("name", "")) + "."
        if kind in ("lstm", "gru", "rnn"):
            for l in range(spec.get("num_layers", 1)):
                suffix = f"_l{l}" if f"{prefix}weight_ih_l{l}" in tensors else ""
                kw = dict(act=spec.get("activation", "tanh"), rec=spec.get("recurrent_activation", "sigmoid"),
                          reset_after=spec.get("reset_after", True))
                back = spec.get("go_backwards", False)
                fwd, hf = run_cell(tensors, prefix, suffix, kind, y, *start(slot), backwards=back, **kw)
                slot += 1
                if back:
                    fwd = fwd[:, ::-1]  # Keras keeps the processing order
                last = l == spec.get("num_layers", 1) - 1
                sequences = spec.get("return_sequences", True) or not last
                if spec.get("bidirectional"):
                    bwd, hb = run_cell(tensors, prefix, suffix + "_reverse", kind, y, *start(slot), backwards=True, **kw)
                    slot += 1
                    a, b = (fwd, bwd) if sequences else (hf, hb)
                    merge = spec.get("merge_mode", "concat")
                    y = {"concat": lambda: np.concatenate([a, b], axis=-1), "sum": lambda: a + b,
                         "mul": lambda: a * b, "ave": lambda: (a + b) / 2}[merge]()
                else:
                    y = fwd if sequences else hf
                sequence[0] = sequences
        elif kind == "dense":
            y = activate(y @ tensors[prefix + "weight"].astype(np.float64).T + tensors.get(prefix + "bias", 0),
                         spec.get("activation", "linear"))
        elif kind == "activation":
            y = activate(y, spec["activation"])
        elif kind == "last_timestep":
            y = y[:, -1]
            sequence[0] = False
        elif kind == "flatten_sequence":
            y = y.reshape(y.shape[0], -1)
            sequence[0] = False
        elif kind == "repeat_vector":
            y = np.repeat(y[:, None], spec["n"], axis=1)
            sequence[0] = True
        elif kind == "conv2d":
            w, b = get(prefix + "weight"), get(prefix + "bias")
            y = activate(frames(y, lambda f: conv2d(f, w, b, spec.get("strides", [1, 1]), spec.get("padding", "valid"))),
                         spec.get("activation", "linear"))
        elif kind in ("max_pooling2d", "average_pooling2d"):
            size = spec.get("pool_size", [2, 2])
            red = np.max if kind.startswith("max") else np.mean
            y = frames(y, lambda f: pool(f, (1, 2), size, spec.get("strides", size), spec.get("padding", "valid"), red))
        elif kind == "flatten":
            y = y.reshape(y.shape[:lead()] + (-1,))
        elif kind == "reshape":
            y = y.reshape(y.shape[:lead()] + tuple(spec["target_shape"]))
        elif kind == "permute":
            y = y.transpose(tuple(range(lead())) + tuple(lead() - 1 + d for d in spec["dims"]))
        elif kind == "batch_normalization":
            g, b = get(prefix + "weight"), get(prefix + "bias")
            y = (y - get(prefix + "running_mean")) / np.sqrt(get(prefix + "running_var") + spec.get("epsilon", 1e-3))
            y = y * (1 if g is None else g) + (0 if b is None else b)
        elif kind == "layer_normalization":
            g, b = get(prefix + "weight"), get(prefix + "bias")
            m, v = y.mean(axis=-1, keepdims=True), y.var(axis=-1, keepdims=True)
            y = (y - m) / np.sqrt(v + spec.get("epsilon", 1e-3)) * (1 if g is None else g) + (0 if b is None else b)
        elif kind == "embedding":
            y = get(prefix + "weight")[y.reshape(y.shape[0], y.shape[1]).astype(int)]
        elif kind == "conv1d":
            y = activate(conv1d(y, get(prefix + "weight"), get(prefix + "bias"), spec.get("strides", [1])[0],
                                spec.get("padding", "valid"), spec.get("dilation_rate", [1])[0]), spec.get("activation", "linear"))
        elif kind in ("max_pooling1d", "average_pooling1d"):
            size = spec.get("pool_size", [2])
            y = pool(y, (1,), size, spec.get("strides", size), spec.get("padding", "valid"), np.max if kind.startswith("max") else np.mean)
        elif kind in ("global_max_pooling1d", "global_average_pooling1d"):
            y = y.max(axis=1) if kind.startswith("global_max") else y.mean(axis=1)
            sequence[0] = False
    return y


def forward(tensors, cfg, x, h0=None, c0=None):
    """Legacy layout, x: (B, T, I). Returns (sequence of the top layer, head output or None)."""
    cell = cfg["cell"]
    kind = cell[:3] if cell.startswith("rnn") else cell
    act = {"rnn_tanh": "tanh", "rnn_relu": "relu"}.get(cell, "tanh")
    seq = x.astype(np.float64)
    k = 0
    while f"rnn.weight_ih_l{k}" in tensors:
        outs = []
        dirs = [""] + (["_reverse"] if f"rnn.weight_ih_l{k}_reverse" in tensors else [])
        for d, suffix in enumerate(dirs):
            slot = k * len(dirs) + d
            h = None if h0 is None else h0[slot].astype(np.float64)
            c = None if c0 is None else c0[slot].astype(np.float64)
            out, _ = run_cell(tensors, "rnn.", f"_l{k}{suffix}", kind, seq, h, c, act=act,
                              reset_after=cfg.get("gru_reset_after", True), backwards=d == 1)
            outs.append(out)
        seq = np.concatenate(outs, axis=2)
        k += 1
    names = ["head"] if "head.weight" in tensors else [f"head.{i}" for i in range(16) if f"head.{i}.weight" in tensors]
    if not names:
        return seq, None
    y = seq[:, -1]
    for name, a in zip(names, cfg.get("head_activations", ["linear"] * len(names))):
        y = activate(y @ tensors[name + ".weight"].astype(np.float64).T + tensors.get(name + ".bias", 0), a)
    return seq, y
