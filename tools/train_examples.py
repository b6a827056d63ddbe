#!/usr/bin/env python3
"""Trains the worked examples the tutorials build (../shared/seeds), with real Keras 3 on the
JAX backend, saves each as the user would (model.keras), and exports it with
tools/export_model.py into models/<name> with the names, labels and scaling it is served with.
Prints each model's score beside the tutorial's where the tutorial gives one. Needs keras and
jax: a developer tool, never run by CI (the trained models are committed).

  KERAS_BACKEND=jax python3 tools/train_examples.py [echo] [stacked] [cnn_lstm] [airline]
"""
import json
import math
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import export_model  # noqa: E402


def save(model, name, config, example, notes):
    """model.keras as the user saves it, exported into models/<name>; a request body; the score."""
    import tempfile
    import keras
    out = os.path.join(ROOT, "models", name)
    source = os.path.join(tempfile.mkdtemp(), "model.keras")
    model.save(source)
    config = dict(config, source=dict(config.get("source", {}), framework="keras", keras=keras.__version__,
                                      trained_by="tools/train_examples.py " + name, **notes))
    export_model.export(source, out, name=name, extra=config)
    with open(os.path.join(ROOT, "examples", f"{name}.json"), "w") as f:
        json.dump(example, f)
        f.write("\n")
    print(name, json.dumps(notes))


def echo():
    """Vanilla LSTM: remember the value at a fixed position of 5 random digits, one-hot."""
    import keras
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    length, n_features, out_index = 5, 10, 2

    def data(n):
        seq = rng.integers(0, n_features, (n, length))
        return np.eye(n_features, dtype=np.float32)[seq], np.eye(n_features, dtype=np.float32)[seq[:, out_index]]

    model = keras.Sequential([keras.Input((length, n_features)), keras.layers.LSTM(25),
                              keras.layers.Dense(n_features, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    x, y = data(5000)
    model.fit(x, y, epochs=10, batch_size=32, verbose=0)
    tx, ty = data(1000)
    accuracy = float(np.mean(model.predict(tx, verbose=0).argmax(1) == ty.argmax(1)))
    example = {"window": [[int(v) for v in row] for row in data(1)[0][0]]}
    config = {"description": f"Echo: the digit at position {out_index} (0-based) of a sequence of 5 one-hot digits.",
              "labels": [str(d) for d in range(n_features)]}
    save(model, "echo", config, example, {"data": "generated: 5000 random sequences, seed 1",
                                           "test_accuracy": f"{accuracy:.4f} on 1000 fresh sequences"})


def damped_sine(rng, n, length, output):
    """0.5 + 0.5 sin(2 pi i / period) e^(-decay i), period 10..20, decay 0.01..0.1 (the tutorial's)."""
    x, y = [], []
    for _ in range(n):
        period, decay = rng.integers(10, 21), rng.uniform(0.01, 0.1)
        s = [0.5 + 0.5 * math.sin(2 * math.pi * i / period) * math.exp(-decay * i) for i in range(length + output)]
        x.append(s[:length])
        y.append(s[length:])
    return np.array(x, np.float32)[:, :, None], np.array(y, np.float32)


def stacked():
    """Stacked LSTM: the next 5 samples of a damped sine from the last 50."""
    import keras
    keras.utils.set_random_seed(2)
    rng = np.random.default_rng(2)
    length, output = 50, 5
    model = keras.Sequential([keras.Input((length, 1)), keras.layers.LSTM(20, return_sequences=True),
                              keras.layers.LSTM(20), keras.layers.Dense(output)])
    model.compile(loss="mae", optimizer="adam")
    x, y = damped_sine(rng, 10000, length, output)
    model.fit(x, y, epochs=1, batch_size=10, verbose=0)  # the tutorial's one pass, batches of ten
    tx, ty = damped_sine(rng, 1000, length, output)
    mae = float(np.mean(np.abs(model.predict(tx, verbose=0) - ty)))
    ex, _ = damped_sine(rng, 1, length, output)
    config = {"description": "The next 5 samples of a damped sine wave from the last 50.",
              "inputs": {"window": length, "features": [{"name": "value"}]},
              "outputs": [{"name": f"t+{k + 1}"} for k in range(output)]}
    save(model, "damped_sine", config, {"window": [[round(float(v), 6)] for v in ex[0, :, 0]]},
         {"data": "generated: 10000 damped sines, seed 2", "test_mae": f"{mae:.4f} on 1000 fresh sines"})


def frames(rng, n, size, count):
    """A square (one pixel on a 50x50 frame, as the tutorial) crossing left to right or right to left."""
    x = np.zeros((n, count, size, size, 1), np.float32)
    y = np.zeros((n, 1), np.float32)
    for k in range(n):
        right = rng.integers(0, 2)
        row = rng.integers(0, size)
        for t in range(count):
            col = int(t * (size - 1) / (count - 1))
            x[k, t, row, col if right else size - 1 - col, 0] = 1
        y[k, 0] = right
    return x, y


def cnn_lstm():
    """CNN-LSTM: which way the square moves across 10 frames of 50x50."""
    import keras
    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    size, count = 50, 10
    L = keras.layers
    model = keras.Sequential([keras.Input((count, size, size, 1)),
                              L.TimeDistributed(L.Conv2D(2, (2, 2), activation="relu")),
                              L.TimeDistributed(L.MaxPooling2D((2, 2))), L.TimeDistributed(L.Flatten()),
                              L.LSTM(70), L.Dense(1, activation="sigmoid")])
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    x, y = frames(rng, 2000, size, count)
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    tx, ty = frames(rng, 500, size, count)
    accuracy = float(np.mean((model.predict(tx, verbose=0) > 0.5) == ty))
    ex, ey = frames(rng, 1, size, count)
    config = {"description": "Which way a square moves across 10 frames of 50x50 pixels: the probability that it moves right.",
              "outputs": [{"name": "p_right"}]}
    save(model, "moving_square", config, {"window": ex[0].astype(int).tolist()},
         {"data": "generated: 2000 frame sequences, seed 3", "test_accuracy": f"{accuracy:.4f} on 500 fresh sequences",
          "example_moves": "right" if ey[0, 0] else "left"})


def airline(look_back=1):
    """The airline model: LSTM(4) on (1, look_back) of MinMax-scaled monthly passengers, as the
    tutorial trains it (67% train, batch 1, 100 epochs); the scaling is built into the served model."""
    import keras
    keras.utils.set_random_seed(7)
    rows = open(os.path.join(ROOT, "models", "airline", "data", "airline-passengers.csv")).read().split("\n")[1:]
    series = np.array([float(r.split(",")[1]) for r in rows if r], np.float32)
    low, high = float(series.min()), float(series.max())
    scaled = (series - low) / (high - low)
    train_size = int(len(series) * 0.67)

    def dataset(s):
        return (np.array([s[i:i + look_back] for i in range(len(s) - look_back - 1)], np.float32)[:, None, :],
                np.array([s[i + look_back] for i in range(len(s) - look_back - 1)], np.float32))

    trainX, trainY = dataset(scaled[:train_size])
    testX, testY = dataset(scaled[train_size:])
    model = keras.Sequential([keras.Input((1, look_back)), keras.layers.LSTM(4), keras.layers.Dense(1)])
    model.compile(loss="mean_squared_error", optimizer="adam")
    model.fit(trainX, trainY, epochs=100, batch_size=1, verbose=0)

    def rmse(x, y):
        p = model.predict(x, verbose=0)[:, 0] * (high - low) + low
        return float(np.sqrt(np.mean((p - (y * (high - low) + low)) ** 2)))

    scores = {"train_rmse": f"{rmse(trainX, trainY):.2f}", "test_rmse": f"{rmse(testX, testY):.2f}",
              "tutorial_rmse": "train 23.52, test 49.96 (look_back 1)"}
    names = [f"passengers_t-{look_back - 1 - k}" if k < look_back - 1 else "passengers" for k in range(look_back)]
    config = {"description": f"Next month's international airline passengers (thousands) from the last {look_back} month(s).",
              "inputs": {"window": 1, "features": [{"name": n, "unit": "thousands"} for n in names]},
              "outputs": [{"name": "passengers_next_month", "unit": "thousands"}],
              "normalization": {"input_mean": [low] * look_back, "input_std": [high - low] * look_back,
                                "output_mean": [low], "output_std": [high - low]}}
    last = [float(v) for v in series[-look_back:]]
    save(model, "airline", config, {"window": [dict(zip(names, last))]},
         dict(scores, data="Box & Jenkins airline passengers 1949-1960 (models/airline/data)", look_back=str(look_back)))


if __name__ == "__main__":
    jobs = {"echo": echo, "stacked": stacked, "cnn_lstm": cnn_lstm, "airline": airline}
    for name in sys.argv[1:] or list(jobs):
        jobs[name]()
