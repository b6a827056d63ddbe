#!/usr/bin/env python3
"""Evaluates the served temperature model on 2015 (the held-out test year) against baselines:
persistence (tomorrow = today), climatology (mean of that calendar day over 2012–2013) and a
ridge regression on the same normalized 7-day window (alpha chosen on 2014). Prints MAE and
RMSE per output, the 80% interval's coverage, and writes the plot for the model card.

Runs the exported model directory through a numpy forward pass (no torch needed).

  python3 tools/evaluate_temperature.py [--model models/temperature] [--year 2015] [--plot PNG]
"""
import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import reference  # noqa: E402
import st_io  # noqa: E402
import weather  # noqa: E402


def model_predict(model_dir, X):
    tensors, _ = st_io.read(os.path.join(model_dir, "model.safetensors"))
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    n = cfg["normalization"]
    x = (X - np.array(n["input_mean"])) / np.array(n["input_std"])
    _, y = reference.forward(tensors, cfg, x.astype(np.float32))
    y = y * np.array(n["output_std"]) + np.array(n["output_mean"])
    # outputs forecast as a change from the last row's value of an input ("residual_of")
    names = [f["name"] for f in cfg["inputs"]["features"]]
    for k, o in enumerate(cfg.get("outputs", [])):
        if "residual_of" in o:
            y[:, k] += X[:, -1, names.index(o["residual_of"])]
    return y, cfg


def ridge_fit(X, Y, alpha):
    A = np.concatenate([X.reshape(len(X), -1), np.ones((len(X), 1))], axis=1)
    reg = alpha * np.eye(A.shape[1])
    reg[-1, -1] = 0
    return np.linalg.solve(A.T @ A + reg, A.T @ Y)


def ridge_predict(W, X):
    return np.concatenate([X.reshape(len(X), -1), np.ones((len(X), 1))], axis=1) @ W


def baselines(dates, X, Y, train, val, eval_mask):
    mu, sd = X[train].reshape(-1, X.shape[2]).mean(0), X[train].reshape(-1, X.shape[2]).std(0)
    Xn = (X - mu) / sd
    best = min((np.abs(ridge_predict(ridge_fit(Xn[train], Y[train], a), Xn[val]) - Y[val]).mean(), a)
               for a in (0.01, 0.1, 1, 3, 10, 30, 100, 300))
    W = ridge_fit(Xn[train], Y[train], best[1])
    clim = {}
    for d, y in zip(dates[train], Y[train]):
        clim.setdefault((d.month, d.day), []).append(y)
    fallback = Y[train].mean(0)
    climatology = np.array([np.mean(clim.get((d.month, d.day), [fallback]), axis=0) for d in dates[eval_mask]])
    return {
        "persistence (tomorrow = today)": X[eval_mask][:, -1, :2],
        "climatology (2012-2013 mean of the calendar day)": climatology,
        f"ridge on the 7-day window (alpha={best[1]:g})": ridge_predict(W, Xn[eval_mask]),
    }


def metrics(pred, truth):
    err = pred - truth
    return np.abs(err).mean(0), np.sqrt((err ** 2).mean(0))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default=os.path.join(weather.ROOT, "models", "temperature"))
    p.add_argument("--year", type=int, default=2015)
    p.add_argument("--plot", default=None, help="PNG path (default: MODEL/forecast_2015.png when --year is 2015)")
    a = p.parse_args()
    dates, X, Y = weather.windows()
    train, val, _ = weather.split(dates)
    mask = np.array([d.year == a.year for d in dates])
    pred, cfg = model_predict(a.model, X[mask])
    truth = Y[mask]
    rows = [("LSTM (models/temperature)", pred)] + list(baselines(dates, X, Y, train, val, mask).items())
    print(f"{a.year}: {mask.sum()} days; MAE / RMSE in °C")
    print(f"{'model':52s} {'temp_max MAE':>12s} {'RMSE':>6s} {'temp_min MAE':>12s} {'RMSE':>6s}")
    results = {}
    for name, y in rows:
        mae, rmse = metrics(y, truth)
        results[name] = (mae, rmse)
        print(f"{name:52s} {mae[0]:12.3f} {rmse[0]:6.3f} {mae[1]:12.3f} {rmse[1]:6.3f}")
    lstm_mae = results[rows[0][0]][0]
    beats = all((lstm_mae < results[n][0]).all() for n, _ in rows[1:])
    print(f"LSTM beats every baseline on both outputs: {'yes' if beats else 'NO'}; temp_max MAE <= 2.0: {'yes' if lstm_mae[0] <= 2.0 else 'NO'}")
    iv = cfg.get("interval")
    if iv:
        lo, hi = pred + np.array(iv["lower"]), pred + np.array(iv["upper"])
        inside = (truth >= lo) & (truth <= hi)
        cov = inside.mean(0)
        print(f"{int(iv['level'] * 100)}% interval coverage: temp_max {cov[0] * 100:.1f}%, temp_min {cov[1] * 100:.1f}% "
              f"(widths {hi[0, 0] - lo[0, 0]:.2f} and {hi[0, 1] - lo[0, 1]:.2f} °C)")
    plot = a.plot or (os.path.join(a.model, "forecast_2015.png") if a.year == 2015 else None)
    if plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        d = dates[mask]
        fig, axes = plt.subplots(2, 1, figsize=(12, 7), sharex=True)
        for k, (ax, name) in enumerate(zip(axes, ["temp_max", "temp_min"])):
            if iv:
                ax.fill_between(d, lo[:, k], hi[:, k], color="tab:blue", alpha=0.2, label=f"{int(iv['level'] * 100)}% interval")
            ax.plot(d, truth[:, k], color="black", lw=1, label="observed")
            ax.plot(d, pred[:, k], color="tab:blue", lw=1, label="LSTM forecast")
            ax.set_ylabel(f"{name} (°C)")
            ax.legend(loc="upper left", fontsize=8)
        axes[0].set_title(f"Seattle {a.year}: next-day forecast vs observed (held-out test year)")
        fig.tight_layout()
        fig.savefig(plot, dpi=90)
        print("plot written to", plot)


if __name__ == "__main__":
    main()
