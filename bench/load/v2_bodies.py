"""The bodies bench/load/v2.sh sends: the example week as the native predict takes it, and as
tritonclient sends a V2 infer, in JSON and with binary tensor data (built by tritonclient's
own request code, so the bytes are the client's). Prints the binary body's JSON length."""
import json
import sys

import numpy as np
import tritonclient.http as http
from tritonclient.http._utils import _get_inference_request

out = sys.argv[1]
week = json.load(open("examples/week.json"))["window"]
json.dump({"window": week}, open(f"{out}/native.json", "w"))
for binary in (False, True):
    inputs = []
    for f in ("temp_max", "temp_min", "precipitation", "wind"):
        i = http.InferInput(f, [1, 7], "FP32")
        i.set_data_from_numpy(np.array([[r[f] for r in week]], np.float32), binary_data=binary)
        inputs.append(i)
    d = http.InferInput("date", [1, 7], "BYTES")
    d.set_data_from_numpy(np.array([[r["date"] for r in week]], dtype=object), binary_data=binary)
    inputs.append(d)
    outputs = [http.InferRequestedOutput(n, binary_data=binary) for n in ("forecast", "lower", "upper")]
    body, header = _get_inference_request(inputs, "", outputs, 0, False, False, 0, None, None)
    open(f"{out}/v2_{'binary' if binary else 'json'}.body", "wb").write(body)
    if binary:
        print(header)
