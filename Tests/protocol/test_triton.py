"""The Open Inference Protocol V2 through the real tritonclient (PyPI tritonclient[http]):
health, metadata and config of every shipped model, infer in JSON and binary equal to the
native predict bit for bit, Triton sequences equal to one predict of the same window, and
the errors a client gets for what it sends wrong."""
import json
import os
import urllib.error
import urllib.request

import numpy as np
import pytest
import tritonclient.http as http
from tritonclient.utils import InferenceServerException

from conftest import ROOT

MODELS = ["airline", "damped_sine", "echo", "moving_square", "temperature"]
WEEK = json.load(open(os.path.join(ROOT, "examples", "week.json")))["window"]


@pytest.fixture(scope="module")
def client(server):
    return http.InferenceServerClient(server)


def post(base, path, body, headers=None):
    req = urllib.request.Request(f"http://{base}{path}", data=body if isinstance(body, bytes) else json.dumps(body).encode(),
                                 headers=headers or {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def windows(meta, batch, rng):
    """A batch for the model: {input name: array}, and the same windows as the native API's rows."""
    names = [i["name"] for i in meta["inputs"]]
    T = meta["inputs"][0]["shape"][1]
    if "date" in names:  # the temperature model: the example week, then the same week shifted
        data = {f: np.array([[r[f] + b for r in WEEK] for b in range(batch)], np.float32) for f in names if f != "date"}
        data["date"] = np.array([[r["date"] for r in WEEK]] * batch, dtype=object)
        rows = [[{**{f: float(data[f][b, t]) for f in names if f != "date"}, "date": WEEK[t]["date"]} for t in range(T)] for b in range(batch)]
        return data, rows
    spec = meta["inputs"][0]
    shape = [batch, T] + spec["shape"][2:]
    if meta["name"] == "echo":
        x = np.eye(10, dtype=np.float32)[rng.integers(0, 10, (batch, T))]
    else:
        x = rng.uniform(0, 1, shape).astype(np.float32)
    return {spec["name"]: x}, x.tolist()


def infer_inputs(meta, data, binary):
    out = []
    for spec in meta["inputs"]:
        v = data[spec["name"]]
        i = http.InferInput(spec["name"], list(v.shape), spec["datatype"])
        i.set_data_from_numpy(v, binary_data=binary)
        out.append(i)
    return out


def native_values(answer, name):
    """The native predict's answers for `name` (forecast or probabilities), (batch, n)."""
    return np.array([list(p[name].values()) for p in answer["predictions"]], np.float32)


def test_server_health_and_metadata(client):
    assert client.is_server_live() and client.is_server_ready()
    meta = client.get_server_metadata()
    assert meta["name"] == "lstm-serve"
    assert {"binary_tensor_data", "sequence", "statistics", "model_configuration"} <= set(meta["extensions"])


@pytest.mark.parametrize("model", MODELS)
def test_every_shipped_model_is_ready_with_metadata_and_config(client, model):
    assert client.is_model_ready(model) and client.is_model_ready(model, "1")
    assert not client.is_model_ready(model, "2")
    meta = client.get_model_metadata(model)
    config = client.get_model_config(model)
    assert meta["name"] == model and meta["versions"] == ["1"]
    assert [i["name"] for i in config["input"]] == [i["name"] for i in meta["inputs"]]
    assert all(i["shape"][0] == -1 for i in meta["inputs"] + meta["outputs"])
    assert config["max_batch_size"] > 0 and all(c["dims"] == m["shape"][1:] for c, m in zip(config["input"], meta["inputs"]))
    expected = {
        "temperature": ([("temp_max", "FP32", [-1, 7]), ("temp_min", "FP32", [-1, 7]), ("precipitation", "FP32", [-1, 7]),
                         ("wind", "FP32", [-1, 7]), ("date", "BYTES", [-1, 7])], ["forecast", "lower", "upper"]),
        "echo": ([("input", "FP32", [-1, 5, 10])], ["probabilities", "class", "label"]),
        "moving_square": ([("input", "FP32", [-1, 10, 50, 50, 1])], ["forecast"]),
        "damped_sine": ([("value", "FP32", [-1, 50])], ["forecast"]),
        "airline": ([("passengers", "FP32", [-1, 1])], ["forecast"]),
    }[model]
    assert [(i["name"], i["datatype"], i["shape"]) for i in meta["inputs"]] == expected[0]
    assert [o["name"] for o in meta["outputs"]] == expected[1]


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
@pytest.mark.parametrize("model", MODELS)
def test_infer_equals_the_native_predict_to_the_bit(client, server, model, binary):
    meta = client.get_model_metadata(model)
    batch = 1 if model == "moving_square" else 3  # frames: 25,000 values a window, within the 1 MB body limit as JSON
    data, rows = windows(meta, batch, np.random.default_rng(len(model)))
    result = client.infer(model, infer_inputs(meta, data, binary),
                          outputs=[http.InferRequestedOutput(o["name"], binary_data=binary) for o in meta["outputs"]])
    status, native = post(server, f"/v1/models/{model}/predict", {"windows": rows})
    assert status == 200, native
    key = "probabilities" if model == "echo" else "forecast"
    got = result.as_numpy(key)
    assert got.dtype == np.float32 and got.shape == (batch, len(native["predictions"][0][key]))
    assert np.array_equal(got, native_values(native, key))
    if model == "echo":
        assert result.as_numpy("class").tolist() == [p["class"] for p in native["predictions"]]
        assert [s.decode() if isinstance(s, bytes) else s for s in result.as_numpy("label").tolist()] == [p["label"] for p in native["predictions"]]
    if model == "temperature":
        lower = np.array([list(p["interval"]["lower"].values()) for p in native["predictions"]], np.float32)
        assert np.array_equal(result.as_numpy("lower"), lower)


def test_default_outputs_come_back_binary_and_a_selected_one_alone(client):
    meta = client.get_model_metadata("temperature")
    data, _ = windows(meta, 1, None)
    everything = client.infer("temperature", infer_inputs(meta, data, True))  # tritonclient asks binary_data_output
    assert {o["name"] for o in everything.get_response()["outputs"]} == {"forecast", "lower", "upper"}
    assert all("binary_data_size" in o["parameters"] for o in everything.get_response()["outputs"])
    one = client.infer("temperature", infer_inputs(meta, data, False), outputs=[http.InferRequestedOutput("upper", binary_data=False)])
    assert [o["name"] for o in one.get_response()["outputs"]] == ["upper"]
    assert np.array_equal(one.as_numpy("upper"), everything.as_numpy("upper"))


def test_fp64_and_fp16_inputs_are_accepted(client):
    meta = client.get_model_metadata("damped_sine")
    data, _ = windows(meta, 2, np.random.default_rng(5))
    x = data["value"]
    want = client.infer("damped_sine", infer_inputs(meta, data, True)).as_numpy("forecast")
    for dtype, name in ((np.float64, "FP64"), (np.float16, "FP16")):
        i = http.InferInput("value", list(x.shape), name)
        i.set_data_from_numpy(x.astype(dtype), binary_data=True)
        got = client.infer("damped_sine", [i]).as_numpy("forecast")
        exact = client.infer("damped_sine", [fp32(x.astype(dtype).astype(np.float32))]).as_numpy("forecast")
        assert np.array_equal(got, exact)  # the same values as FP32 give the same answer
    assert np.allclose(got, want, atol=1e-2)


def fp32(x):
    i = http.InferInput("value", list(x.shape), "FP32")
    i.set_data_from_numpy(x, binary_data=True)
    return i


def step_inputs(t, sequence_row):
    ins = []
    for f in ["temp_max", "temp_min", "precipitation", "wind"]:
        i = http.InferInput(f, [1, 1], "FP32")
        i.set_data_from_numpy(np.array([[sequence_row[f]]], np.float32))
        ins.append(i)
    d = http.InferInput("date", [1, 1], "BYTES")
    d.set_data_from_numpy(np.array([[sequence_row["date"]]], dtype=object))
    return ins + [d]


def test_a_seven_step_sequence_equals_one_predict_of_the_window(client, server):
    meta = client.get_model_metadata("temperature")
    data, _ = windows(meta, 1, None)
    whole = client.infer("temperature", infer_inputs(meta, data, True)).as_numpy("forecast")
    for t, row in enumerate(WEEK):
        r = client.infer("temperature", step_inputs(t, row), sequence_id=4242, sequence_start=t == 0, sequence_end=t == 6)
    assert np.array_equal(r.as_numpy("forecast"), whole)
    with pytest.raises(InferenceServerException) as e:  # ended: the id is free again
        client.infer("temperature", step_inputs(0, WEEK[0]), sequence_id=4242)
    assert e.value.status() == "400" and "not active" in e.value.message()


def test_two_interleaved_sequences_keep_their_own_state(client, server):
    meta = client.get_model_metadata("temperature")
    data, _ = windows(meta, 2, None)
    whole = client.infer("temperature", infer_inputs(meta, data, True)).as_numpy("forecast")
    shifted = [{**r, **{f: r[f] + 1 for f in ("temp_max", "temp_min", "precipitation", "wind")}} for r in WEEK]
    answers = {}
    for t in range(7):
        for sid, rows in ((7, WEEK), ("walk-2", shifted)):
            answers[sid] = client.infer("temperature", step_inputs(t, rows[t]), sequence_id=sid, sequence_start=t == 0).as_numpy("forecast")
    assert np.array_equal(answers[7][0], whole[0]) and np.array_equal(answers["walk-2"][0], whole[1])
    # a sequence is a session of the store: the native API exports its state
    with urllib.request.urlopen(f"http://{server}/v1/sessions/seq:11:temperature:swalk-2/state") as r:
        state = json.loads(r.read())
    assert state["step"] == 7 and state["model"] == "temperature"
    # sequence_start on a live id starts it over
    again = None
    for t in range(7):
        again = client.infer("temperature", step_inputs(t, WEEK[t]), sequence_id="walk-2", sequence_start=t == 0, sequence_end=t == 6)
    assert np.array_equal(again.as_numpy("forecast")[0], whole[0])
    client.infer("temperature", step_inputs(0, WEEK[0]), sequence_id=7, sequence_end=True)


def test_a_sequence_request_carries_one_sample(client):
    meta = client.get_model_metadata("temperature")
    data, _ = windows(meta, 2, None)
    expect_400(lambda: client.infer("temperature", infer_inputs(meta, data, True), sequence_id=31, sequence_start=True), "batch size 1")


def expect_400(fn, text):
    with pytest.raises(InferenceServerException) as e:
        fn()
    assert e.value.status() == "400" and text in e.value.message(), e.value.message()


def test_what_a_client_sends_wrong_gets_a_clear_400(client, server):
    meta = client.get_model_metadata("damped_sine")
    x = np.zeros((1, 50), np.float32)

    def one(shape, datatype, value):
        i = http.InferInput("value", shape, datatype)
        i.set_data_from_numpy(value, binary_data=True)
        return [i]
    expect_400(lambda: client.infer("damped_sine", one([1, 49], "FP32", np.zeros((1, 49), np.float32))), "takes [-1, 50]")
    expect_400(lambda: client.infer("damped_sine", one([1, 50, 1], "FP32", np.zeros((1, 50, 1), np.float32))), "shape [1, 50, 1]")
    expect_400(lambda: client.infer("damped_sine", one([1, 50], "INT32", x.astype(np.int32))), "is INT32")
    expect_400(lambda: client.infer("damped_sine", one([1, 50], "FP32", x), sequence_id=987654), "not active")
    bad = http.InferInput("nope", [1, 50], "FP32")
    bad.set_data_from_numpy(x)
    expect_400(lambda: client.infer("damped_sine", [bad]), "no input 'nope'")
    with pytest.raises(InferenceServerException) as e:
        client.infer("no_such_model", one([1, 50], "FP32", x))
    assert e.value.status() == "404"
    # a byte count that does not match the shape, and bytes no input claims, as raw HTTP
    header = json.dumps({"inputs": [{"name": "value", "datatype": "FP32", "shape": [1, 50], "parameters": {"binary_data_size": 196}}]}).encode()
    for body, text in ((header + x.tobytes()[:196], "takes 200"), (header.replace(b"196", b"200") + x.tobytes() + b"\0\0\0\0", "4 bytes")):
        status, answer = post(server, "/v2/models/damped_sine/infer", body, {"Inference-Header-Content-Length": str(len(header)),
                                                                             "Content-Type": "application/octet-stream"})
        assert status == 400 and isinstance(answer["error"], str) and text in answer["error"], answer
    status, answer = post(server, "/v2/models/damped_sine/infer", b"{not json", {"Content-Type": "application/json"})
    assert status == 400 and answer["error"].startswith("malformed JSON")
    x[0, 3] = np.nan
    expect_400(lambda: client.infer("damped_sine", one([1, 50], "FP32", x)), "not a finite number")


def test_dates_and_shapes_that_do_not_fit_get_a_clear_400(server):
    features = ("temp_max", "temp_min", "precipitation", "wind")
    def body(dates, shape=(1, 7), date_shape=(1, 7)):
        inputs = [{"name": f, "datatype": "FP32", "shape": list(shape), "data": [1.0] * 7} for f in features]
        inputs.append({"name": "date", "datatype": "BYTES", "shape": list(date_shape), "data": dates})
        return json.dumps({"inputs": inputs}).encode()
    week = ["2015-02-%02d" % d for d in range(22, 29)]
    for data, text in ((week + ["2015-03-01"], "has 8 elements"), (week[:6], "has 6 elements"),
                       (week[:6] + ["22/02/2015"], "'22/02/2015' is not an ISO 8601 date"), (week[:6] + [7], "a number where a BYTES")):
        status, answer = post(server, "/v2/models/temperature/infer", body(data), {"Content-Type": "application/json"})
        assert status == 400 and text in answer["error"], (data, answer)
    status, answer = post(server, "/v2/models/temperature/infer", body(week, shape=(1, 7, 1, 1, 1, 1, 1, 1, 1)), {"Content-Type": "application/json"})
    assert status == 400 and "9 dimensions; at most 8" in answer["error"], answer
    status, answer = post(server, "/v2/models/temperature/infer", body(week), {"Content-Type": "application/json"})
    assert status == 200 and [o["name"] for o in answer["outputs"]] == ["forecast", "lower", "upper"], answer


def test_statistics_count_each_inference(client):
    meta = client.get_model_metadata("airline")
    before = client.get_inference_statistics("airline")["model_stats"][0]
    data, _ = windows(meta, 4, np.random.default_rng(2))
    client.infer("airline", infer_inputs(meta, data, True))
    after = client.get_inference_statistics("airline", "1")["model_stats"][0]
    assert after["inference_count"] == before["inference_count"] + 4
    assert after["execution_count"] == before["execution_count"] + 1
    s = after["inference_stats"]
    assert s["success"]["count"] == before["inference_stats"]["success"]["count"] + 1
    assert s["compute_infer"]["ns"] > 0 and s["success"]["ns"] >= s["compute_infer"]["ns"] and after["last_inference"] > 0


def test_errors_are_the_v2_envelope_and_v1_keeps_its_own(server):
    for path in ("/v2/models/nope", "/v2/nothing/here", "/v2/models/temperature/versions/9/ready"):
        try:
            urllib.request.urlopen(f"http://{server}{path}")
            raise AssertionError(path)
        except urllib.error.HTTPError as e:
            body = json.loads(e.read())
            assert e.code == 404 and isinstance(body["error"], str), (path, body)
    status, body = post(server, "/v1/predict", {"window": []})
    assert status == 422 and body["error"]["type"] == "unprocessable_entity"
