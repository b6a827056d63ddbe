"""The per-layer nodes of an ONNX graph, for onnx_import.walk: convolution and pooling over
time, a CNN front end on folded frames, and the row-wise Gemm, MatMul(+Add) and activations.
Each takes the node, records its layer and tensors, and returns (or stores) what the node's
output is; `fail(node, why)` refuses the export naming the node."""
import numpy as np


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
