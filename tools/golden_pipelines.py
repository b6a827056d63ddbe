"""Pipeline golden cases: whole models from the tutorials (and the layers around them) built
with real Keras, their answer for a random batch computed by the framework. Each case is a
folder with case.json and the user's own file (model.keras); tools/make_fixtures.py exports
it to Tests/Fixtures/models/<name> with tools/export_model.py, and the Swift tests compare the
served answer with the framework's.

case.json: name, framework, framework_version, source (the user's file), x (B, T, ...),
expected (the model's output for x), streamable (whether a session can step it)."""
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
    }


def randomize(model, rng):
    """Every weight uniform in [-0.5, 0.5): biases never zero, so a bias bug cannot hide."""
    for v in model.weights:
        v.assign(rng.uniform(-0.5, 0.5, v.shape).astype(np.float32))


def inputs(kind, shape, batch, rng):
    if kind == "onehot":
        x = np.zeros((batch,) + shape, np.float32)
        for b in range(batch):
            x[b, np.arange(shape[0]), rng.integers(0, shape[1], shape[0])] = 1
        return x
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


def generate(out, only=None):
    for k, (name, spec) in enumerate(keras_models().items()):
        if not only or name in only:
            keras_case(name, spec, os.path.join(out, name), 3000 + k)
            print("generated", name)
