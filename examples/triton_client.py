"""The example week through tritonclient (pip install "tritonclient[http]"), unchanged Triton
code: server and model checks, one infer (binary tensor data, tritonclient's default), and the
same week as a Triton sequence, one timestep per request.
    python3 examples/triton_client.py [host:port]"""
import json
import sys

import numpy as np
import tritonclient.http as httpclient

client = httpclient.InferenceServerClient(sys.argv[1] if len(sys.argv) > 1 else "localhost:8080")
print("live", client.is_server_live(), "ready", client.is_server_ready(), "model ready", client.is_model_ready("temperature"))
print("inputs", [(i["name"], i["datatype"], i["shape"]) for i in client.get_model_metadata("temperature")["inputs"]])

week = json.load(open("examples/week.json"))["window"]


def inputs(rows):
    tensors = []
    for name in ("temp_max", "temp_min", "precipitation", "wind"):
        t = httpclient.InferInput(name, [1, len(rows)], "FP32")
        t.set_data_from_numpy(np.array([[r[name] for r in rows]], np.float32))
        tensors.append(t)
    dates = httpclient.InferInput("date", [1, len(rows)], "BYTES")
    dates.set_data_from_numpy(np.array([[r["date"] for r in rows]], dtype=object))
    return tensors + [dates]


result = client.infer("temperature", inputs(week))
print("forecast", result.as_numpy("forecast"), "lower", result.as_numpy("lower"), "upper", result.as_numpy("upper"))
for t, row in enumerate(week):  # a Triton sequence: the server keeps the LSTM state between requests
    step = client.infer("temperature", inputs([row]), sequence_id=42, sequence_start=t == 0, sequence_end=t == len(week) - 1)
print("sequence of 7 steps", step.as_numpy("forecast"))
print("stats", {k: v for k, v in client.get_inference_statistics("temperature")["model_stats"][0].items() if k.endswith("count")})
