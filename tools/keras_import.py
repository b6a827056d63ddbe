"""Keras 3 `.keras` files to lstm-serve tensors (PyTorch names and gate order, one prefix per
Keras layer) and the config `layers` list. Sequential models, and Functional models that are
a chain; anything else is refused naming the layer and its class.

Layouts: a Keras kernel is (in, G*U) and becomes weight_ih (G*U, in); LSTM's i,f,c,o is
PyTorch's i,f,g,o already; GRU z,r,h becomes r,z,n; one bias becomes bias_ih; a GRU
reset_after=True bias (2, 3U) becomes bias_ih / bias_hh. Dense kernels (in, out) become
weight (out, in)."""
import io
import json
import re
import zipfile

import numpy as np


class KerasError(Exception):
    pass


RECURRENT = {"LSTM": ("lstm", [0, 1, 2, 3]), "GRU": ("gru", [1, 0, 2]), "SimpleRNN": ("rnn", [0])}
IDENTITY = {"Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization"}
ACTIVATIONS = {"linear", "relu", "sigmoid", "tanh", "softmax", "hard_sigmoid", "elu", "softsign", "softplus", "silu", "swish"}


def snake_case(name):
    """Keras's key for a class in the weights file (SimpleRNN -> simple_rnn), as
    keras.src.utils.naming.to_snake_case makes it."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def blocks(m, order, gates):
    parts = np.split(m, gates, axis=0)
    return np.concatenate([parts[i] for i in order], axis=0)


def activation(layer, key, default):
    a = layer["config"].get(key, default)
    if isinstance(a, dict):  # a serialized function object
        a = a.get("config", {}).get("name") or a.get("class_name")
    a = "linear" if a in (None, "None") else a
    if a not in ACTIVATIONS:
        raise KerasError(f"Keras layer {layer['config']['name']} ({layer['class_name']}): {key} '{a}' is not supported")
    return "silu" if a == "swish" else a


def chain(config):
    """The model's layers in order, refusing anything that is not one straight line."""
    kind = config["class_name"]
    layers = config["config"]["layers"]
    if kind == "Sequential":
        return layers, [l for l in layers if l["class_name"] != "InputLayer"]
    if kind not in ("Functional", "Model"):
        raise KerasError(f"a {kind} model is not supported (Sequential or Functional)")
    previous = None
    for l in layers:
        inbound = l.get("inbound_nodes") or []
        sources = []
        for node in inbound:
            for arg in json.dumps(node.get("args", node)).split('"keras_history": [')[1:]:
                sources.append(arg.split('"')[1])
        if l["class_name"] != "InputLayer" and sources != [previous]:
            raise KerasError(f"Keras layer {l['config']['name']} ({l['class_name']}) takes {sources or 'nothing'}, "
                             f"not the one layer before it: only a chain of layers is supported")
        previous = l["config"]["name"]
    return layers, layers


def groups(saved, h5):
    """Keras 3 keys each saved layer by its class in snake case, numbered per class in order."""
    counts, out = {}, {}
    for l in saved:
        base = snake_case(l["class_name"])
        n = counts.get(base, 0)
        counts[base] = n + 1
        key = base if n == 0 else f"{base}_{n}"
        out[l["config"]["name"]] = h5["layers"].get(key)
    return out


def recurrent(layer, group, tensors, suffix, prefix):
    """One Keras LSTM/GRU/SimpleRNN's weights under `prefix`."""
    c = layer["config"]
    kind, order = RECURRENT[layer["class_name"]]
    if c.get("stateful"):
        raise KerasError(f"Keras layer {c['name']}: stateful=True is not supported (sessions hold the state)")
    v = group["cell"]["vars"]
    kernel, rec = np.array(v["0"]), np.array(v["1"])
    g = len(order)
    tensors[f"{prefix}.weight_ih{suffix}"] = blocks(kernel.T, order, g).astype(np.float32)
    tensors[f"{prefix}.weight_hh{suffix}"] = blocks(rec.T, order, g).astype(np.float32)
    if c.get("use_bias", True):
        bias = np.array(v["2"])
        if bias.ndim == 2:
            tensors[f"{prefix}.bias_ih{suffix}"] = blocks(bias[0], order, g).astype(np.float32)
            tensors[f"{prefix}.bias_hh{suffix}"] = blocks(bias[1], order, g).astype(np.float32)
        else:
            tensors[f"{prefix}.bias_ih{suffix}"] = blocks(bias, order, g).astype(np.float32)
    spec = {"type": kind, "name": c["name"], "weights": prefix, "activation": activation(layer, "activation", "tanh"),
            "return_sequences": bool(c.get("return_sequences", False))}
    if kind != "rnn":
        spec["recurrent_activation"] = activation(layer, "recurrent_activation", "sigmoid")
    if kind == "gru":
        spec["reset_after"] = bool(c.get("reset_after", True))
    if c.get("go_backwards"):
        spec["go_backwards"] = True
    return spec


def dense(layer, group, tensors, prefix):
    c = layer["config"]
    v = group["vars"]
    tensors[f"{prefix}.weight"] = np.array(v["0"]).T.astype(np.float32)
    if c.get("use_bias", True):
        tensors[f"{prefix}.bias"] = np.array(v["1"]).astype(np.float32)
    return {"type": "dense", "name": c["name"], "weights": prefix, "activation": activation(layer, "activation", "linear")}


def pair(v):
    return [int(v), int(v)] if isinstance(v, int) else [int(x) for x in v]


def single(v):
    return int(v[0]) if isinstance(v, (list, tuple)) else int(v)


def channels_last(layer):
    if layer["config"].get("data_format", "channels_last") != "channels_last":
        raise KerasError(f"Keras layer {layer['config']['name']} ({layer['class_name']}): only data_format channels_last is supported")


def frame_layer(layer, group, tensors, name):
    """Layers that work on one timestep's frame or row (also under TimeDistributed), or None."""
    cls, c = layer["class_name"], layer["config"]
    if cls == "Conv2D":
        channels_last(layer)
        if pair(c.get("dilation_rate", 1)) != [1, 1] or c.get("groups", 1) != 1:
            raise KerasError(f"Keras layer {name} (Conv2D): dilation and groups are not supported")
        v = group["vars"]
        tensors[f"{name}.weight"] = np.transpose(np.array(v["0"]), (3, 2, 0, 1)).astype(np.float32)
        if c.get("use_bias", True):
            tensors[f"{name}.bias"] = np.array(v["1"]).astype(np.float32)
        return {"type": "conv2d", "name": name, "weights": name, "strides": pair(c.get("strides", 1)),
                "padding": c.get("padding", "valid"), "activation": activation(layer, "activation", "linear")}
    if cls in ("MaxPooling2D", "AveragePooling2D"):
        channels_last(layer)
        pool = pair(c.get("pool_size", 2))
        return {"type": "max_pooling2d" if cls.startswith("Max") else "average_pooling2d", "name": name,
                "pool_size": pool, "strides": pair(c.get("strides") or pool), "padding": c.get("padding", "valid")}
    if cls in ("BatchNormalization", "LayerNormalization"):
        axis = c.get("axis", -1)
        if axis not in (-1, [-1]):
            raise KerasError(f"Keras layer {name} ({cls}): only axis -1 is supported")
        v = [np.array(group["vars"][k]) for k in sorted(group["vars"].keys(), key=int)]
        names = (["weight"] if c.get("scale", True) else []) + (["bias"] if c.get("center", True) else [])
        if cls == "BatchNormalization":
            names += ["running_mean", "running_var"]
        for n, value in zip(names, v):
            tensors[f"{name}.{n}"] = value.astype(np.float32)
        return {"type": "batch_normalization" if cls == "BatchNormalization" else "layer_normalization", "name": name,
                "weights": name, "epsilon": float(c.get("epsilon", 1e-3))}
    return None


def convert(layer, group, tensors, sequence):
    """The `layers` entries for one Keras layer; `sequence` says whether its input has time."""
    cls, c = layer["class_name"], layer["config"]
    name = c["name"]
    frame = frame_layer(layer, group, tensors, name)
    if frame:
        return [frame]
    if cls in RECURRENT:
        return [recurrent(layer, group, tensors, "_l0", name)]
    if cls == "Bidirectional":
        inner = c["layer"]
        if inner["class_name"] not in RECURRENT:
            raise KerasError(f"Keras layer {name} (Bidirectional of {inner['class_name']}) is not supported")
        merge = c.get("merge_mode", "concat")
        if merge not in ("concat", "sum", "mul", "ave"):
            raise KerasError(f"Keras layer {name} (Bidirectional): merge_mode {merge!r} is not supported")
        backward = c.get("backward_layer")
        if backward and backward["config"].get("units") != inner["config"].get("units"):
            raise KerasError(f"Keras layer {name} (Bidirectional): a backward layer of another size is not supported")
        spec = recurrent(inner, group["forward_layer"], tensors, "_l0", name)
        recurrent(backward or inner, group["backward_layer"], tensors, "_l0_reverse", name)
        spec.update({"name": name, "bidirectional": True, "merge_mode": merge})
        spec.pop("go_backwards", None)
        return [spec]
    if cls == "Dense":
        return [dense(layer, group, tensors, name)]
    if cls == "TimeDistributed":
        inner = dict(c["layer"])
        inner["config"] = dict(inner["config"], name=name)
        if inner["class_name"] == "Dense":
            return [dense(inner, group["layer"], tensors, name)]
        if inner["class_name"] == "Flatten":
            return [{"type": "flatten", "name": name}]
        if inner["class_name"] == "Reshape":
            return [{"type": "reshape", "name": name, "target_shape": [int(d) for d in inner["config"]["target_shape"]]}]
        if inner["class_name"] == "Activation":
            return [{"type": "activation", "name": name, "activation": activation(inner, "activation", "linear")}]
        if inner["class_name"] == "Permute":
            return [{"type": "permute", "name": name, "dims": [int(d) for d in inner["config"]["dims"]]}]
        if inner["class_name"] in IDENTITY:
            return []
        frame = frame_layer(inner, group["layer"], tensors, name)
        if frame:
            return [frame]
    if cls == "Embedding":
        if c.get("mask_zero"):
            raise KerasError(f"Keras layer {name} (Embedding): mask_zero=True is not supported (it masks the layers after it)")
        tensors[f"{name}.weight"] = np.array(group["vars"]["0"]).astype(np.float32)
        return [{"type": "embedding", "name": name, "weights": name}]
    if cls == "Conv1D":
        channels_last(layer)
        if c.get("groups", 1) != 1:
            raise KerasError(f"Keras layer {name} (Conv1D): groups are not supported")
        v = group["vars"]
        tensors[f"{name}.weight"] = np.transpose(np.array(v["0"]), (2, 1, 0)).astype(np.float32)
        if c.get("use_bias", True):
            tensors[f"{name}.bias"] = np.array(v["1"]).astype(np.float32)
        return [{"type": "conv1d", "name": name, "weights": name, "strides": [single(c.get("strides", 1))],
                 "padding": c.get("padding", "valid"), "dilation_rate": [single(c.get("dilation_rate", 1))],
                 "activation": activation(layer, "activation", "linear")}]
    if cls in ("MaxPooling1D", "AveragePooling1D"):
        channels_last(layer)
        pool = single(c.get("pool_size", 2))
        return [{"type": "max_pooling1d" if cls.startswith("Max") else "average_pooling1d", "name": name,
                 "pool_size": [pool], "strides": [single(c.get("strides") or pool)], "padding": c.get("padding", "valid")}]
    if cls in ("GlobalMaxPooling1D", "GlobalAveragePooling1D"):
        channels_last(layer)
        if c.get("keepdims"):
            raise KerasError(f"Keras layer {name} ({cls}): keepdims=True is not supported")
        return [{"type": "global_max_pooling1d" if cls.startswith("GlobalMax") else "global_average_pooling1d", "name": name}]
    if cls == "Activation":
        return [{"type": "activation", "name": name, "activation": activation(layer, "activation", "linear")}]
    if cls in IDENTITY:
        return []
    if cls == "Flatten":
        return [{"type": "flatten_sequence" if sequence else "flatten", "name": name}]
    if cls == "Reshape" and not sequence:
        return [{"type": "reshape", "name": name, "target_shape": [int(d) for d in c["target_shape"]]}]
    if cls == "Permute":
        dims = [int(d) for d in c["dims"]]
        if not sequence:
            return [{"type": "permute", "name": name, "dims": dims}]
        if dims[0] != 1:
            raise KerasError(f"Keras layer {name} (Permute): dims {dims} move the time axis, which needs the whole window")
        return [{"type": "permute", "name": name, "dims": [d - 1 for d in dims[1:]]}]  # the same axes of each row
    if cls == "RepeatVector":
        return [{"type": "repeat_vector", "name": name, "n": int(c["n"])}]
    inner = f" of {c['layer']['class_name']}" if cls == "TimeDistributed" else ""
    raise KerasError(f"Keras layer {name} ({cls}{inner}) is not supported")


def from_keras(path):
    with zipfile.ZipFile(path) as z:
        config = json.loads(z.read("config.json"))
        import h5py
        h5 = h5py.File(io.BytesIO(z.read("model.weights.h5")), "r")
    saved, layers = chain(config)
    by_name = groups(saved, h5)
    tensors, specs, cfg = {}, [], {"source": {"framework": "keras", "file": path.split("/")[-1]}}
    shape = None
    sequence = True
    for l in layers:
        if l["class_name"] == "InputLayer":
            shape = l["config"].get("batch_shape") or l["config"].get("batch_input_shape")
            continue
        entries = convert(l, by_name.get(l["config"]["name"]), tensors, sequence)
        for e in entries:
            if e["type"] in ("lstm", "gru", "rnn") and not e["return_sequences"] or e["type"] in (
                    "flatten_sequence", "global_max_pooling1d", "global_average_pooling1d"):
                sequence = False
            if e["type"] == "repeat_vector":
                sequence = True
        specs += entries
    if shape is None:
        shape = config["config"].get("build_input_shape")
    if shape and len(shape) >= 2 and shape[1]:
        cfg["inputs"] = {"window": int(shape[1])}
    if shape and len(shape) > 3:
        cfg.setdefault("inputs", {})["shape"] = [int(d) for d in shape[2:]]
    if not any(e.get("weights") for e in specs):
        raise KerasError("the Keras model has no layer with weights")
    cfg["layers"] = specs
    return tensors, cfg
