"""Pipeline golden cases: whole models from the tutorials (and the layers around them) built
with real Keras and PyTorch, their answer for a random batch computed by the framework. Each
case is a folder with case.json and the user's own file (model.keras, or a state_dict's
model.safetensors with the config.json its user writes); tools/make_fixtures.py exports
it to Tests/Fixtures/models/<name> with tools/export_model.py, and the Swift tests compare the
served answer with the framework's.

The ONNX matrix (onnx_matrix) is what torch.onnx.export writes for the modules most code has:
`self.rnn(x)` with no initial state, batch_first true and false, one and two directions, a
state drawn with torch.rand in forward(), through both exporters (dynamo, and TorchScript).

case.json: name, framework, framework_version, source (the user's file), config (PyTorch: the
layers config beside it), x (B, T, ...; batch-first even for a time-major module), h0/c0 (the
initial state, (L*D, B, H), when the module had one; c0 for LSTM only), expected (the model's
output for x, batch-first), h_n/c_n, streamable (whether a session can step it)."""
import json
import os

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")


def arr(a):
    return np.asarray(a, dtype=np.float32).tolist()


def keras_models():
    """name: (build() -> model, input shape (T, ...), batch, streamable, input kind)."""
    import keras
    L = keras.layers

    def seq(shape, *layers):
        return lambda: keras.Sequential([keras.Input(shape)] + list(layers))

    def functional(shape, *layers):
        def build():
            x = inp = keras.Input(shape)
            for layer in layers:
                x = layer()(x)
            return keras.Model(inp, x)
        return build

    return {
        # the tutorial's temperature model: 7 days of one feature in, tomorrow out
        "keras_tutorial_temperature": (seq((7, 1), L.LSTM(128, activation="relu"), L.Dense(1), L.Activation("relu")),
                                       (7, 1), 5, True, "normal"),
        # vanilla LSTM: the echo classifier on one-hot rows
        "keras_echo_classifier": (seq((5, 10), L.LSTM(25), L.Dense(10, activation="softmax")), (5, 10), 4, True, "onehot"),
        # stacked LSTM: five steps ahead of a damped sine from 50 samples
        "keras_stacked_regressor": (seq((50, 1), L.LSTM(20, return_sequences=True), L.LSTM(20), L.Dense(5)),
                                    (50, 1), 3, True, "normal"),
        # the airline model: look_back 3 as three features of one timestep
        "keras_airline": (seq((1, 3), L.LSTM(4), L.Dense(1)), (1, 3), 6, True, "unit"),
        # Functional, bidirectional averaged, TimeDistributed dense, reset-before GRU, softmax
        "keras_functional_bidirectional": (functional((6, 4), lambda: L.Bidirectional(L.LSTM(8, return_sequences=True), merge_mode="ave"),
                                                      lambda: L.TimeDistributed(L.Dense(6, activation="tanh")),
                                                      lambda: L.GRU(5, reset_after=False), lambda: L.Dense(3, activation="softmax")),
                                           (6, 4), 3, False, "normal"),
        # every other activation, and go_backwards
        "keras_activations": (seq((8, 3), L.SimpleRNN(6, activation="softsign", return_sequences=True),
                                  L.GRU(7, activation="elu", recurrent_activation="hard_sigmoid", return_sequences=True),
                                  L.LSTM(5, activation="softplus", recurrent_activation="silu", go_backwards=True), L.Dense(2)),
                              (8, 3), 3, False, "normal"),
        # bidirectional final states (concat, mul), dropout as identity
        "keras_bidirectional_final": (seq((5, 3), L.Bidirectional(L.GRU(4, return_sequences=True), merge_mode="mul"), L.Dropout(0.3),
                                          L.Bidirectional(L.LSTM(6)), L.Dense(1, activation="sigmoid")),
                                      (5, 3), 4, False, "normal"),
        # encoder-decoder: RepeatVector and a sequence answer
        "keras_encoder_decoder": (seq((6, 2), L.LSTM(8), L.RepeatVector(3), L.LSTM(6, return_sequences=True),
                                      L.TimeDistributed(L.Dense(2))), (6, 2), 2, False, "normal"),
        # Flatten over the whole (fixed-length) sequence
        "keras_flatten_sequence": (seq((6, 3), L.LSTM(4, return_sequences=True), L.Flatten(), L.Dense(2)), (6, 3), 3, False, "normal"),
        # CNN-LSTM: frames through TimeDistributed Conv2D, pooling and Flatten, then LSTM(70)
        "keras_cnn_lstm": (seq((4, 50, 50, 1), L.TimeDistributed(L.Conv2D(2, (2, 2), activation="relu")),
                               L.TimeDistributed(L.MaxPooling2D((2, 2))), L.TimeDistributed(L.Flatten()), L.LSTM(70),
                               L.Dense(1, activation="sigmoid")), (4, 50, 50, 1), 2, True, "unit"),
        # strided same-padded Conv2D, average pooling over the edge, batch norm on frames
        "keras_frames_strided": (seq((3, 8, 7, 2), L.TimeDistributed(L.Conv2D(3, (3, 3), strides=2, padding="same", activation="tanh")),
                                     L.TimeDistributed(L.AveragePooling2D((2, 2), padding="same")), L.TimeDistributed(L.BatchNormalization()),
                                     L.TimeDistributed(L.Flatten()), L.TimeDistributed(L.Dense(4)), L.GRU(4), L.Dense(1)),
                                 (3, 8, 7, 2), 2, True, "normal"),
        # a causal, dilated Conv1D in front of an LSTM: still streamable
        "keras_conv1d_causal": (seq((9, 3), L.Conv1D(4, 3, padding="causal", dilation_rate=2, activation="relu"), L.LSTM(5), L.Dense(2)),
                                (9, 3), 3, True, "normal"),
        # Conv1D same and strided valid, pooling over time, global average pooling
        "keras_conv1d_pooling": (seq((12, 3), L.Conv1D(6, 3, padding="same", activation="tanh"), L.MaxPooling1D(2),
                                     L.Conv1D(4, 2, strides=2), L.AveragePooling1D(2, padding="same"), L.GRU(5, return_sequences=True),
                                     L.GlobalAveragePooling1D(), L.Dense(2)), (12, 3), 3, False, "normal"),
        # token ids through an Embedding, layer and batch normalization, global max pooling
        "keras_embedding_norm": (seq((6,), L.Embedding(20, 8), L.LSTM(7, return_sequences=True), L.LayerNormalization(),
                                     L.BatchNormalization(), L.GlobalMaxPooling1D(), L.Dense(3, activation="softmax")),
                                 (6,), 3, False, "ids"),
        # Permute on the sequence (time kept first) and under TimeDistributed, around a Conv2D
        "keras_permute_frames": (seq((3, 6, 5, 2), L.Permute((1, 3, 2, 4)), L.TimeDistributed(L.Conv2D(3, (2, 2), activation="relu")),
                                     L.TimeDistributed(L.Permute((3, 1, 2))), L.TimeDistributed(L.Flatten()), L.LSTM(4), L.Dense(1)),
                                 (3, 6, 5, 2), 2, True, "normal"),
        # the text classifier: token ids, an Embedding, Conv1D and pooling that halve the time axis, an LSTM, a softmax
        "keras_embedding_conv_pool_lstm": (seq((20,), L.Embedding(20, 8), L.Conv1D(6, 3, padding="same", activation="relu"),
                                               L.MaxPooling1D(2), L.LSTM(5), L.Dense(3, activation="softmax")),
                                           (20,), 3, False, "ids"),
    }


def randomize(model, rng):
    """Every weight uniform in [-0.5, 0.5): biases never zero, so a bias bug cannot hide."""
    for v in model.weights:
        low = 0.5 if "variance" in v.path else -0.5  # a variance must be positive
        v.assign(rng.uniform(low, low + 1 if low > 0 else 0.5, v.shape).astype(np.float32))


def inputs(kind, shape, batch, rng):
    if kind == "onehot":
        x = np.zeros((batch,) + shape, np.float32)
        for b in range(batch):
            x[b, np.arange(shape[0]), rng.integers(0, shape[1], shape[0])] = 1
        return x
    if kind == "ids":
        return rng.integers(0, 20, (batch,) + shape).astype(np.float32)
    if kind == "unit":
        return rng.uniform(0, 1, (batch,) + shape).astype(np.float32)
    return rng.standard_normal((batch,) + shape).astype(np.float32)


def keras_case(name, spec, out, seed):
    import keras
    build, shape, batch, streamable, kind = spec
    keras.utils.set_random_seed(seed)
    model = build()
    rng = np.random.default_rng(seed)
    randomize(model, rng)
    x = inputs(kind, shape, batch, rng)
    os.makedirs(out, exist_ok=True)
    model.save(os.path.join(out, "model.keras"))
    case = {"format_version": 1, "name": name, "set": "pipeline", "framework": "keras", "framework_version": keras.__version__,
            "keras_model": model.__class__.__name__, "seed": seed, "source": "model.keras", "x": arr(x),
            "expected": arr(model.predict(x, verbose=0)), "streamable": streamable,
            "parameters": int(model.count_params())}
    with open(os.path.join(out, "case.json"), "w") as f:
        json.dump(case, f)


def torch_models():
    """name: (module class, layers config, x shape (B, T, I), initial state shape or None, streamable).
    Each module's forward(x, state) takes x batch-first and returns (answer, h_n, c_n)."""
    import torch
    nn = torch.nn

    class Stacked(nn.Module):  # the tutorial's 3-layer nn.LSTM, run from a given random state
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(12, 10, num_layers=3, batch_first=True)

        def forward(self, x, state):
            out, (h, c) = self.lstm(x, state)
            return out, h, c

    class BiFlatten(nn.Module):  # sequence-first bidirectional, permuted and flattened into a Linear
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(10, 20, num_layers=2, bidirectional=True)
            self.fully_connected = nn.Linear(200, 2)

        def forward(self, x, state):
            out, (h, c) = self.lstm(x.permute(1, 0, 2), state)
            out = out.permute(1, 0, 2).reshape(x.shape[0], -1)
            return self.fully_connected(out), h, c

    class SoftmaxHead(nn.Module):  # the common form: a 2-layer LSTM, the last timestep, a softmax head
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(4, 8, num_layers=2, batch_first=True)
            self.fc = nn.Linear(8, 3)

        def forward(self, x, state):
            out, (h, c) = self.rnn(x, state)
            return torch.softmax(self.fc(out[:, -1]), -1), h, c

    class ConvLSTM(nn.Module):  # Conv1d and pooling over time in front of an LSTM, channels first as torch has them
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(3, 6, 3, padding=1)
            self.pool = nn.MaxPool1d(2)
            self.lstm = nn.LSTM(6, 5, batch_first=True)
            self.fc = nn.Linear(5, 2)

        def forward(self, x, state):
            y = self.pool(torch.relu(self.conv(x.permute(0, 2, 1)))).permute(0, 2, 1)
            out, (h, c) = self.lstm(y, state)
            return self.fc(out[:, -1]), h, c

    class FramesLSTM(nn.Module):  # a CNN front end on channels-first frames, folded over batch and time
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(2, 3, 3, padding=1)
            self.pool = nn.MaxPool2d(2)
            self.bn = nn.BatchNorm2d(3)
            self.conv2 = nn.Conv2d(3, 2, 2, stride=2)
            self.lstm = nn.LSTM(2 * 2 * 2, 6, batch_first=True)
            self.fc = nn.Linear(6, 2)
            with torch.no_grad():
                self.bn.weight.uniform_(0.5, 1.5)
                self.bn.running_mean.uniform_(-0.5, 0.5)
                self.bn.running_var.uniform_(0.5, 1.5)

        def forward(self, x, state):
            b, t = x.shape[0], x.shape[1]
            y = self.conv2(self.bn(self.pool(torch.relu(self.conv1(x.reshape(b * t, *x.shape[2:]))))))
            out, (h, c) = self.lstm(y.reshape(b, t, -1), state)
            return self.fc(out[:, -1]), h, c

    class CellLoop(nn.Module):  # nn.LSTMCell looped over the rows, then a Linear on the last h
        def __init__(self):
            super().__init__()
            self.cell = nn.LSTMCell(5, 10)
            self.linear = nn.Linear(10, 2)

        def forward(self, x, state):
            h, c = state[0][0], state[1][0]
            for t in range(x.shape[1]):
                h, c = self.cell(x[:, t], (h, c))
            return self.linear(h), h[None], c[None]

    class MLPHead(nn.Module):  # nn.Sequential(Linear, ReLU, Linear) on the last timestep: head.1 has no tensors
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(4, 8, batch_first=True)
            self.head = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 2))

        def forward(self, x, state):
            out, (h, c) = self.lstm(x, state)
            return self.head(out[:, -1]), h, c

    class FcHead(nn.Module):  # a 2-layer GRU and a Linear named fc: --head-prefix fc
        hidden_only = True  # a GRU: its state is h alone

        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(3, 6, num_layers=2, batch_first=True)
            self.fc = nn.Linear(6, 2)

        def forward(self, x, state):
            out, h = self.gru(x, state[0])
            return self.fc(out[:, -1]), h, None

    class GRUCellLoop(nn.Module):  # nn.GRUCell looped over the rows, then a Linear on the last h
        hidden_only = True  # a GRU: its state is h alone

        def __init__(self):
            super().__init__()
            self.cell = nn.GRUCell(4, 7)
            self.linear = nn.Linear(7, 3)

        def forward(self, x, state):
            h = state[0][0]
            for t in range(x.shape[1]):
                h = self.cell(x[:, t], h)
            return self.linear(h), h[None], None

    return {
        "pt_tutorial_stacked": (Stacked, [{"type": "lstm", "weights": "lstm", "num_layers": 3}], (2, 4, 12), (3, 2, 10), True),
        "pt_bidirectional_flatten": (BiFlatten, [{"type": "lstm", "weights": "lstm", "num_layers": 2, "bidirectional": True},
                                                 {"type": "flatten_sequence", "name": "flatten"},
                                                 {"type": "dense", "weights": "fully_connected"}], (3, 5, 10), (4, 3, 20), False),
        "pt_softmax_head": (SoftmaxHead, [{"type": "lstm", "weights": "rnn", "num_layers": 2}, {"type": "last_timestep"},
                                          {"type": "dense", "weights": "fc", "activation": "softmax"}], (3, 5, 4), (2, 3, 8), True),
        "pt_lstmcell_loop": (CellLoop, [{"type": "lstm", "weights": "cell", "return_sequences": False},
                                        {"type": "dense", "weights": "linear"}], (2, 6, 5), (1, 2, 10), True),
        "pt_conv1d_lstm": (ConvLSTM, [{"type": "conv1d", "weights": "conv", "padding": "same", "activation": "relu"},
                                      {"type": "max_pooling1d", "pool_size": [2]}, {"type": "lstm", "weights": "lstm"},
                                      {"type": "last_timestep"}, {"type": "dense", "weights": "fc"}], (2, 8, 3), (1, 2, 5), False),
        "pt_frames_lstm": (FramesLSTM, [{"type": "permute", "name": "to channels last", "dims": [2, 3, 1]},
                                        {"type": "conv2d", "weights": "conv1", "padding": "same", "activation": "relu"},
                                        {"type": "max_pooling2d", "pool_size": [2, 2]}, {"type": "batch_normalization", "weights": "bn", "epsilon": 1e-5},
                                        {"type": "conv2d", "weights": "conv2", "strides": [2, 2]},
                                        {"type": "permute", "name": "to channels first", "dims": [3, 1, 2]}, {"type": "flatten"},
                                        {"type": "lstm", "weights": "lstm"}, {"type": "last_timestep"}, {"type": "dense", "weights": "fc"}],
                           (2, 3, 2, 9, 8), (1, 2, 6), True),
        "pt_mlp_head": (MLPHead, [{"type": "lstm", "weights": "lstm"}, {"type": "last_timestep"},
                                  {"type": "dense", "weights": "head.0"}, {"type": "activation", "activation": "relu"},
                                  {"type": "dense", "weights": "head.2"}], (3, 6, 4), (1, 3, 8), True),
        "pt_fc_head": (FcHead, {"head_prefix": "fc"}, (3, 5, 3), (2, 3, 6), True),
        "pt_grucell_loop": (GRUCellLoop, [{"type": "gru", "weights": "cell", "return_sequences": False},
                                          {"type": "dense", "weights": "linear"}], (2, 5, 4), (1, 2, 7), True),
    }


def seeded(cls, seed):
    """The module built under `seed`, in eval mode, its biases random (never zero)."""
    import torch
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    m = cls().eval()
    with torch.no_grad():
        for n, p in m.named_parameters():
            if "bias" in n:
                p.uniform_(-0.5, 0.5)
    return m


def torch_case(name, spec, out, seed):
    import torch
    from safetensors.torch import save_file
    cls, layers, shape, state_shape, streamable = spec
    gru = getattr(cls, "hidden_only", False)
    m = seeded(cls, seed)
    x = torch.randn(*shape)
    state = (torch.rand(*state_shape),) if gru else (torch.rand(*state_shape), torch.rand(*state_shape))  # the tutorial's torch.rand state
    with torch.no_grad():
        y, hn, cn = m(x, state)
    os.makedirs(out, exist_ok=True)
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, os.path.join(out, "model.safetensors"))
    config = dict(layers) if isinstance(layers, dict) else {"layers": layers, "inputs": {"window": shape[1]}}
    if len(shape) > 3:
        config["inputs"]["shape"] = list(shape[2:])  # each row a frame, channels first as the module takes it
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    case = {"format_version": 1, "name": name, "set": "pipeline", "framework": "pytorch", "framework_version": torch.__version__,
            "module": cls.__name__, "seed": seed, "source": "model.safetensors", "config": "config.json", "x": arr(x),
            "h0": arr(state[0]), "expected": arr(y), "h_n": arr(hn), "streamable": streamable,
            # counted as Keras and `inspect` count them: BatchNorm's running statistics too
            "parameters": int(sum(p.numel() for p in m.parameters()) + sum(b.numel() for b in m.buffers() if b.is_floating_point()))}
    if not gru:
        case["c0"], case["c_n"] = arr(state[1]), arr(cn)
    with open(os.path.join(out, "case.json"), "w") as f:
        json.dump(case, f)
    # the same module through both torch.onnx.export paths, as the user's own .onnx file
    names = (["x", "h0"], ["y", "h_n"]) if gru else (["x", "h0", "c0"], ["y", "h_n", "c_n"])
    for exporter, dynamo in (("dynamo", True), ("torchscript", False)):
        d = os.path.join(os.path.dirname(out), name.replace("pt_", f"onnx_{exporter}_"))
        os.makedirs(d, exist_ok=True)
        torch.onnx.export(m, (x, state), os.path.join(d, "model.onnx"), input_names=names[0], output_names=names[1], dynamo=dynamo)
        onnx_case = dict(case, name=os.path.basename(d), framework="onnx", exporter=f"torch.onnx.export(dynamo={dynamo})",
                         source="model.onnx")
        onnx_case.pop("config")
        with open(os.path.join(d, "case.json"), "w") as f:
            json.dump(onnx_case, f)


def onnx_matrix():
    """name: (cell, bidirectional, batch_first, head, seed, layers). Modules as most PyTorch code writes
    them: `self.rnn(x)` with no initial state (the exporters build zeros from x's shape), in
    either layout; `random` draws h0/c0 with torch.rand in forward(); `sequence` answers every
    timestep through the Linear."""
    cases = {}
    k = 0
    for cell in ("lstm", "gru"):
        for bi in (False, True):
            for bf in (True, False):
                cases[f"{cell}_{'bi' if bi else 'uni'}_{'bf' if bf else 'tm'}"] = (cell, bi, bf, "last", 5000 + k, 2)
                k += 1
    cases["rnn_uni_tm"] = ("rnn", False, False, "last", 5100, 1)
    cases["lstm_random_state"] = ("lstm", False, True, "random", 5101, 2)
    cases["gru_tm_sequence"] = ("gru", False, False, "sequence", 5102, 2)
    cases["rnn_bi_bf"] = ("rnn", True, True, "last", 5103, 2)  # the dynamo exporter writes nn.RNN out step by step
    return cases


def onnx_matrix_case(name, spec, root):
    """One module through both exporters: case.json holds x and the answer batch-first, whatever
    the module's layout, and h0/c0 when the module drew them."""
    import torch
    nn = torch.nn
    cell, bi, bf, head, seed, layers = spec

    class Module(nn.Module):
        def __init__(self):
            super().__init__()
            cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell]
            self.rnn = cls(3, 6, num_layers=layers, bidirectional=bi, batch_first=bf)
            self.fc = nn.Linear(6 * (2 if bi else 1), 2)
            self.drawn = None

        def forward(self, x):
            if head == "random":
                batch = x.shape[0] if bf else x.shape[1]
                self.drawn = (torch.rand(2, batch, 6), torch.rand(2, batch, 6))
                out, _ = self.rnn(x, self.drawn)
            else:
                out, _ = self.rnn(x)
            if head == "sequence":
                return self.fc(out)
            return self.fc(out[:, -1] if bf else out[-1])

    m = seeded(Module, seed)
    x = torch.randn(3, 5, 3)  # (B, T, F); a time-major module takes its transpose
    xin = x if bf else x.transpose(0, 1).contiguous()
    with torch.no_grad():
        y = m(xin)
    drawn = m.drawn  # export traces forward() again, which draws anew
    if head == "sequence" and not bf:
        y = y.transpose(0, 1)
    for exporter, dynamo in (("dynamo", True), ("torchscript", False)):
        d = os.path.join(root, f"onnx_{exporter}_{name}")
        os.makedirs(d, exist_ok=True)
        torch.onnx.export(m, (xin,), os.path.join(d, "model.onnx"), input_names=["x"], output_names=["y"], dynamo=dynamo)
        case = {"format_version": 1, "name": os.path.basename(d), "set": "pipeline", "framework": "onnx",
                "framework_version": torch.__version__, "exporter": f"torch.onnx.export(dynamo={dynamo})",
                "module": f"nn.{cell.upper()}(batch_first={bf}, bidirectional={bi}) without h0" + (", h0/c0 drawn by torch.rand" if head == "random" else ""),
                "seed": seed, "source": "model.onnx", "x": arr(x), "expected": arr(y), "streamable": not bi,
                "parameters": int(sum(p.numel() for p in m.parameters()))}
        if drawn is not None:
            case["h0"], case["c0"] = arr(drawn[0]), arr(drawn[1])
        with open(os.path.join(d, "case.json"), "w") as f:
            json.dump(case, f)


def generate(out, only=None):
    for k, (name, spec) in enumerate(keras_models().items()):
        if not only or name in only:
            keras_case(name, spec, os.path.join(out, name), 3000 + k)
            print("generated", name)
    for k, (name, spec) in enumerate(torch_models().items()):
        if not only or name in only:
            torch_case(name, spec, os.path.join(out, name), 4000 + k)
            print("generated", name)
    for name, spec in onnx_matrix().items():
        if not only or name in only:
            onnx_matrix_case(name, spec, out)
            print("generated onnx_*_" + name)
