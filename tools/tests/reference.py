"""A float64 numpy forward pass in PyTorch layout, to check exported model directories."""
import numpy as np


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def forward(tensors, cfg, x, h0=None, c0=None):
    """x: (B, T, I). Returns (sequence of the top layer, head output or None)."""
    cell = cfg["cell"]
    reset_after = cfg.get("gru_reset_after", True)
    seq = x.astype(np.float64)
    B, T, _ = seq.shape
    k = 0
    while f"rnn.weight_ih_l{k}" in tensors:
        outs = []
        dirs = [""] + (["_reverse"] if f"rnn.weight_ih_l{k}_reverse" in tensors else [])
        for d, suffix in enumerate(dirs):
            s = f"_l{k}{suffix}"
            W = tensors["rnn.weight_ih" + s].astype(np.float64)
            U = tensors["rnn.weight_hh" + s].astype(np.float64)
            bi = tensors.get("rnn.bias_ih" + s, np.zeros(W.shape[0])).astype(np.float64)
            bh = tensors.get("rnn.bias_hh" + s, np.zeros(W.shape[0])).astype(np.float64)
            Hh = U.shape[1]
            slot = k * len(dirs) + d
            h = np.zeros((B, Hh)) if h0 is None else h0[slot].astype(np.float64)
            c = np.zeros((B, Hh)) if c0 is None else c0[slot].astype(np.float64)
            out = np.zeros((B, T, Hh))
            order = range(T) if d == 0 else reversed(range(T))
            for t in order:
                xt = seq[:, t]
                if cell == "lstm":
                    g = xt @ W.T + bi + h @ U.T + bh
                    i, f, gg, o = np.split(g, 4, axis=1)
                    c = sigmoid(f) * c + sigmoid(i) * np.tanh(gg)
                    h = sigmoid(o) * np.tanh(c)
                elif cell == "gru":
                    gx = xt @ W.T + bi
                    xr, xz, xn = np.split(gx, 3, axis=1)
                    Ur, Uz, Un = np.split(U, 3, axis=0)
                    br, bz, bn = np.split(bh, 3)
                    r = sigmoid(xr + h @ Ur.T + br)
                    z = sigmoid(xz + h @ Uz.T + bz)
                    n = np.tanh(xn + r * (h @ Un.T + bn)) if reset_after else np.tanh(xn + (r * h) @ Un.T + bn)
                    h = (1 - z) * n + z * h
                else:
                    a = xt @ W.T + bi + h @ U.T + bh
                    h = np.tanh(a) if cell == "rnn_tanh" else np.maximum(a, 0)
                out[:, t] = h
            outs.append(out)
        seq = np.concatenate(outs, axis=2)
        k += 1
    names = ["head"] if "head.weight" in tensors else [f"head.{i}" for i in range(16) if f"head.{i}.weight" in tensors]
    if not names:
        return seq, None
    y = seq[:, -1]
    acts = cfg.get("head_activations", ["linear"] * len(names))
    for name, act in zip(names, acts):
        y = y @ tensors[name + ".weight"].astype(np.float64).T + tensors.get(name + ".bias", 0)
        y = {"linear": y, "relu": np.maximum(y, 0), "sigmoid": sigmoid(y), "tanh": np.tanh(y)}.get(act, y)
        if act == "softmax":
            e = np.exp(y - y.max(axis=1, keepdims=True))
            y = e / e.sum(axis=1, keepdims=True)
    return seq, y
