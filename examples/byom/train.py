"""The model of docs/bring-your-own-model.md, trained the way most PyTorch code is written:
an nn.LSTM called as self.lstm(x) and a Linear named fc, tomorrow's high in Seattle from the last
7 days of weather (data/seattle-weather.csv, 2012-2014 to train, 2015 held out).

Writes, beside this file, what a user has after training: forecaster.safetensors (the
state_dict), forecaster.onnx (torch.onnx.export, the dynamo exporter), config.json (feature
names, units and the normalization the training used), check.json (three 2015 windows and
PyTorch's answers), and forecaster_v2.onnx (the same network trained longer: version 2).
    python3 examples/byom/train.py          (needs torch; about 20 s on one core)"""
import json
import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
import weather  # noqa: E402


class Forecaster(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(4, 16, batch_first=True)
        self.fc = torch.nn.Linear(16, 1)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out[:, -1])


def data():
    dates, obs = weather.load()
    X = np.stack([obs[k:k + 7] for k in range(len(obs) - 7)])
    Y = obs[7:, :1]  # tomorrow's temp_max
    years = np.array([d.year for d in dates[7:]])
    return X, Y, years, dates[7:]


def train(epochs, seed):
    X, Y, years, _ = data()
    train_rows = years <= 2014
    mean, std = X[train_rows].reshape(-1, 4).mean(0), X[train_rows].reshape(-1, 4).std(0)
    ymean, ystd = Y[train_rows].mean(0), Y[train_rows].std(0)
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    model = Forecaster()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    x = torch.tensor((X[train_rows] - mean) / std)
    y = torch.tensor((Y[train_rows] - ymean) / ystd)
    for _ in range(epochs):
        for k in torch.randperm(len(x)).split(64):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x[k]), y[k]).backward()
            opt.step()
    model.eval()
    xt = torch.tensor((X[~train_rows] - mean) / std)
    with torch.no_grad():
        pred = model(xt).numpy() * ystd + ymean
    mae = float(np.abs(pred - Y[~train_rows]).mean())
    return model, (mean, std, ymean, ystd), mae


def main():
    X, Y, years, dates = data()
    model, (mean, std, ymean, ystd), mae = train(epochs=8, seed=1)
    print(f"version 1: 2015 mean absolute error {mae:.2f} °C")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(HERE, "forecaster.safetensors"))
    example = torch.zeros(1, 7, 4)
    torch.onnx.export(model, (example,), os.path.join(HERE, "forecaster.onnx"), input_names=["x"], output_names=["y"], dynamo=True)
    names = ["temp_max", "temp_min", "precipitation", "wind"]
    units = ["°C", "°C", "mm", "m/s"]
    config = {"description": "tomorrow's high in Seattle from the last 7 days (examples/byom/train.py)",
              "inputs": {"window": 7, "features": [{"name": n, "unit": u} for n, u in zip(names, units)]},
              "outputs": [{"name": "temp_max_tomorrow", "unit": "°C"}],
              "normalization": {"input_mean": mean.tolist(), "input_std": std.tolist(),
                                "output_mean": ymean.tolist(), "output_std": ystd.tolist()}}
    with open(os.path.join(HERE, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    picks = [k for k, d in enumerate(dates) if d.year == 2015][:365:120]
    with torch.no_grad():
        answers = model(torch.tensor((X[picks] - mean) / std)).numpy() * ystd + ymean
    check = {"windows": [[dict(zip(names, (round(float(v), 3) for v in row))) for row in X[k]] for k in picks],
             "pytorch": [float(a[0]) for a in answers], "dates": [str(dates[k]) for k in picks]}
    with open(os.path.join(HERE, "check.json"), "w") as f:
        json.dump(check, f, indent=1)
        f.write("\n")
    with open(os.path.join(HERE, "week.json"), "w") as f:
        json.dump({"window": check["windows"][0]}, f)
        f.write("\n")
    model2, norm2, mae2 = train(epochs=30, seed=2)
    print(f"version 2: 2015 mean absolute error {mae2:.2f} °C")
    assert np.allclose(norm2[0], mean)  # same data, same normalization: config.json serves both
    torch.onnx.export(model2, (example,), os.path.join(HERE, "forecaster_v2.onnx"), input_names=["x"], output_names=["y"], dynamo=True)


if __name__ == "__main__":
    main()
