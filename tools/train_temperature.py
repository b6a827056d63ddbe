#!/usr/bin/env python3
"""Trains the temperature forecaster: 7 days of Seattle weather -> tomorrow's temp_max and
temp_min (°C). PyTorch LSTM + dense head, fixed seeds, CPU, a few minutes.

Split by the target day's year: train 2012–2013, validate 2014 (early stopping and the
interval are chosen here), test 2015 (never looked at here; see evaluate_temperature.py).

Writes models/temperature/: model.safetensors (PyTorch state_dict names), config.json
(features, units, normalization, 80% interval) and Tests/Fixtures/temperature_2015.json (the
2015 windows with PyTorch's own predictions, for the Swift test).

  python3 tools/train_temperature.py            # the shipped model (seed 7), bit for bit
  python3 tools/train_temperature.py --no-write # only the 2014 score, for choosing settings
"""
import argparse
import json
import os
import random
import sys

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402
import weather  # noqa: E402



class Forecaster(torch.nn.Module):
    def __init__(self, inputs, hidden, layers, outputs, dropout, skip=None):
        super().__init__()
        self.rnn = torch.nn.LSTM(inputs, hidden, num_layers=layers, batch_first=True)
        self.drop = torch.nn.Dropout(dropout)  # training only; identity when served
        self.head = torch.nn.Linear(hidden, outputs)
        self.skip = skip

    def forward(self, x):
        out, _ = self.rnn(x)
        y = self.head(self.drop(out[:, -1]))
        if self.skip is not None:
            # residual: the head forecasts the change from the last day's observed temp_max and
            # temp_min, which are added back in normalized target units (scale a, shift b)
            a, b = self.skip
            y = y + x[:, -1, :2] * a + b
        return y


def train_one(a, X, Y, xt, yt, xv, yv, y_mean, y_std, val, seed, skip=None):
    """Trains one forecaster; returns it at its best validation epoch."""
    model = Forecaster(X.shape[2], a.hidden, a.layers, 2, a.dropout, skip)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, a.epochs)
    loss_fn = {"mse": torch.nn.functional.mse_loss, "l1": torch.nn.functional.l1_loss,
               "huber": torch.nn.functional.smooth_l1_loss}[a.loss]
    best, best_state, best_epoch = float("inf"), None, -1
    gen = torch.Generator().manual_seed(seed)
    bar = tqdm(range(a.epochs), desc="training", unit="epoch", mininterval=1.0)
    for epoch in bar:
        model.train()
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), 32):
            idx = perm[i:i + 32]
            xb = xt[idx]
            if a.noise > 0:
                xb = xb + a.noise * torch.randn(xb.shape, generator=gen)
            loss = loss_fn(model(xb), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        model.eval()
        with torch.no_grad():
            val_loss = loss_fn(model(xv), yv).item()
            val_mae = (np.abs(model(xv).numpy() * y_std + y_mean - Y[val])).mean(axis=0)
        if val_loss < best:
            best, best_epoch = val_loss, epoch
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        bar.set_postfix(val_loss=f"{val_loss:.4f}", val_mae_max=f"{val_mae[0]:.3f}", best=best_epoch)
        if epoch % 25 == 0 or epoch == a.epochs - 1:
            tqdm.write(f"epoch {epoch:4d}  train_loss {loss.item():.4f}  val_loss {val_loss:.4f}  "
                       f"val MAE temp_max {val_mae[0]:.3f} temp_min {val_mae[1]:.3f}")
    model.load_state_dict(best_state)
    model.eval()
    tqdm.write(f"seed {seed}: best validation loss {best:.4f} at epoch {best_epoch}")
    return model


def merge(members, hidden):
    """K one-layer forecasters as one LSTM of hidden K·H with block-diagonal weights and a head
    that averages theirs: exactly the mean of the members' outputs, served as one network."""
    K = len(members)
    inputs = members[0].rnn.input_size
    m = Forecaster(inputs, K * hidden, 1, 2, 0.0)
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
        for k, member in enumerate(members):
            src = dict(member.rnn.named_parameters())
            for g in range(4):  # gate blocks i, f, g, o
                rows = slice(g * K * hidden + k * hidden, g * K * hidden + (k + 1) * hidden)
                srows = slice(g * hidden, (g + 1) * hidden)
                m.rnn.weight_ih_l0[rows] = src["weight_ih_l0"][srows]
                m.rnn.weight_hh_l0[rows, k * hidden:(k + 1) * hidden] = src["weight_hh_l0"][srows]
                m.rnn.bias_ih_l0[rows] = src["bias_ih_l0"][srows]
                m.rnn.bias_hh_l0[rows] = src["bias_hh_l0"][srows]
            m.head.weight[:, k * hidden:(k + 1) * hidden] = member.head.weight / K
            m.head.bias += member.head.bias / K
    return m


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=150)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--weight-decay", type=float, default=1e-3)
    p.add_argument("--dropout", type=float, default=0.3)
    p.add_argument("--noise", type=float, default=0.1, help="std of Gaussian noise added to normalized inputs while training")
    p.add_argument("--loss", choices=["mse", "l1", "huber"], default="l1")
    p.add_argument("--residual", action=argparse.BooleanOptionalAction, default=True,
                   help="forecast the change from the window's last temp_max / temp_min (config: outputs[].residual_of)")
    p.add_argument("--ensemble", type=int, default=1, help="members averaged into one block-diagonal LSTM (1 layer, with --no-residual)")
    p.add_argument("--no-write", action="store_true", help="only report the validation score (for choosing settings)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", default=os.path.join(weather.ROOT, "models", "temperature"))
    a = p.parse_args()
    random.seed(a.seed)
    np.random.seed(a.seed)
    torch.manual_seed(a.seed)
    torch.set_num_threads(1)

    dates, X, Y = weather.windows()
    train, val, test = weather.split(dates)
    x_mean = X[train].reshape(-1, X.shape[2]).mean(axis=0)
    x_std = X[train].reshape(-1, X.shape[2]).std(axis=0)
    # calendar features are already in [-1, 1]: leave them as they are
    x_mean[4:], x_std[4:] = 0, 1
    y_mean, y_std = Y[train].mean(axis=0), Y[train].std(axis=0)
    norm_x = lambda x: torch.tensor((x - x_mean) / x_std, dtype=torch.float32)
    norm_y = lambda y: torch.tensor((y - y_mean) / y_std, dtype=torch.float32)
    xt, yt, xv, yv = norm_x(X[train]), norm_y(Y[train]), norm_x(X[val]), norm_y(Y[val])

    # y_norm = head + (last observed - y_mean) / y_std, written on the normalized input (which
    # carries the training noise): the served form is y = head · y_std + last observed.
    skip = None
    if a.residual:
        assert a.ensemble == 1, "--residual trains one member"
        skip = (torch.tensor(x_std[:2] / y_std, dtype=torch.float32), torch.tensor((x_mean[:2] - y_mean) / y_std, dtype=torch.float32))
    members = []
    for k in range(a.ensemble):
        torch.manual_seed(a.seed + k)
        members.append(train_one(a, X, Y, xt, yt, xv, yv, y_mean, y_std, val, a.seed + k, skip))
    model = members[0] if a.ensemble == 1 else merge(members, a.hidden)
    model.eval()
    with torch.no_grad():
        best_mae = np.abs(model(xv).numpy() * y_std + y_mean - Y[val]).mean(axis=0)
    print(f"{a.ensemble} member(s); 2014 MAE temp_max {best_mae[0]:.3f} temp_min {best_mae[1]:.3f}")
    if a.no_write:
        return

    with torch.no_grad():
        pred_val = model(xv).numpy() * y_std + y_mean
        pred_test = model(norm_x(X[test])).numpy() * y_std + y_mean
    resid = Y[val] - pred_val
    lower, upper = np.quantile(resid, 0.1, axis=0), np.quantile(resid, 0.9, axis=0)

    os.makedirs(a.out, exist_ok=True)
    tensors = {k: v.numpy().astype(np.float32) for k, v in model.state_dict().items()}
    out_mean = np.zeros_like(y_mean) if a.residual else y_mean  # served: y = head · y_std + last observed
    st_io.write(os.path.join(a.out, "model.safetensors"), tensors)
    units = {"temp_max": "°C", "temp_min": "°C", "precipitation": "mm", "wind": "m/s"}
    config = {
        "name": "temperature",
        "description": "Tomorrow's maximum and minimum temperature in Seattle from the last 7 days of weather.",
        "cell": "lstm",
        "head_activations": ["linear"],
        "inputs": {"window": weather.WINDOW, "features":
                   [{"name": f, "unit": units[f]} for f in weather.OBSERVED] +
                   [{"name": "doy_sin", "derived": "day_of_year_sin"}, {"name": "doy_cos", "derived": "day_of_year_cos"}]},
        "outputs": [{"name": n, "unit": "°C", **({"residual_of": n} if a.residual else {})} for n in ("temp_max", "temp_min")],
        "normalization": {"input_mean": [float(v) for v in x_mean], "input_std": [float(v) for v in x_std],
                          "output_mean": [float(v) for v in out_mean], "output_std": [float(v) for v in y_std]},
        "interval": {"level": 0.8, "lower": [float(v) for v in lower], "upper": [float(v) for v in upper]},
        "source": {"framework": "pytorch", "torch": torch.__version__, "data": "NOAA GHCN daily, Seattle 2012-2015 (vega_datasets seattle-weather.csv)",
                   "train": "2012-2013", "validation": "2014", "test": "2015", "seed": str(a.seed), "ensemble": str(a.ensemble),
                   "settings": f"{'residual, ' if a.residual else ''}loss {a.loss}, hidden {a.hidden}, layers {a.layers}, lr {a.lr}, weight_decay {a.weight_decay}, dropout {a.dropout}, noise {a.noise}, epochs {a.epochs}"},
    }
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2, ensure_ascii=False)
        f.write("\n")

    # The 2015 windows as requests, with PyTorch's predictions, for the Swift reproduction test.
    all_dates, obs = weather.load()
    index = {d: i for i, d in enumerate(all_dates)}
    cases = []
    for d, pred in zip(dates[test], pred_test):
        t = index[d]
        cases.append({"target_date": d.isoformat(),
                      "window": weather.request_rows(all_dates[t - 7:t], obs[t - 7:t]),
                      "pytorch": [float(v) for v in pred]})
    fixture = os.path.join(weather.ROOT, "Tests", "Fixtures", "temperature_2015.json")
    with open(fixture, "w") as f:
        json.dump({"model": "models/temperature", "cases": cases}, f)
    print(f"wrote {a.out} and {fixture} ({len(cases)} windows)")


if __name__ == "__main__":
    main()
