#!/usr/bin/env python3
"""The eight tutorial models end to end, each from the user's own file (.keras, or a PyTorch
state_dict with its layers config) through the README's commands (tools/export_model.py, then
lstm-serve serve) to an HTTP answer, compared with what the framework answered for the same
input (Tests/Fixtures/pipelines/<case>, made by tools/generate_golden.py --pipelines) within
the golden tolerance, 1e-5 (|got - expected| <= 1e-5 * (1 + |expected|)).
    python3 Tests/system/models_e2e.py [BINARY]     (the suite runs it on the release build)
"""
import json, os, re, shutil, subprocess, sys, tempfile, time, urllib.request

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.chdir(root)
binary = sys.argv[1] if len(sys.argv) > 1 else ".build/install/lstm-serve"
cases = os.path.join("Tests", "Fixtures", "pipelines")
MODELS = [  # the eight, in its order
    ("keras_tutorial_temperature", "predict"), ("pt_tutorial_stacked", "predict"), ("keras_echo_classifier", "predict"),
    ("keras_stacked_regressor", "predict"), ("keras_cnn_lstm", "predict"), ("pt_bidirectional_flatten", "predict"),
    ("pt_lstmcell_loop", "session"), ("keras_airline", "predict"),
]
work = tempfile.mkdtemp(prefix="lstm-serve-models-")
for name, _ in MODELS:
    case = json.load(open(os.path.join(cases, name, "case.json")))
    command = [sys.executable, "tools/export_model.py", os.path.join(cases, name, case["source"]), os.path.join(work, name)]
    if case.get("config"):
        command += ["--config", os.path.join(cases, name, case["config"])]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)

log = tempfile.NamedTemporaryFile("w+", delete=False)
server = subprocess.Popen([binary, "serve", "--port", "0", "--models-directory", work, "--log-level", "warning",
                           "--require-all-models"], stdout=log, stderr=log)
base = None
for _ in range(200):
    m = re.search(r"listening on (http://\S+)", open(log.name).read())
    if m and base is None:
        base = m.group(1)
    if base:
        try:
            if urllib.request.urlopen(base + "/readyz", timeout=1).status == 200:
                break
        except Exception:
            pass
    time.sleep(0.1)


def call(method, path, body=None):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode() if body is not None else None, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read()
            return r.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def values(answer):
    """The answer's numbers in output order: probabilities, every timestep, or the forecast."""
    if "probabilities" in answer:
        return list(answer["probabilities"].values())
    if "forecasts" in answer:
        return [v for step in answer["forecasts"] for v in step["forecast"].values()]
    return list(answer["forecast"].values())


def flat(x):
    return [v for e in x for v in flat(e)] if isinstance(x, list) else [x]


def state(case, b):
    return {"h": [layer[b] for layer in case["h0"]], "c": [layer[b] for layer in case["c0"]]}


fails = passes = 0
try:
    for name, how in MODELS:
        case = json.load(open(os.path.join(cases, name, "case.json")))
        worst = 0.0
        ok = True
        for b, window in enumerate(case["x"]):
            if how == "session":
                status, made = call("POST", "/v1/sessions", {"model": name, "state": state(case, b)})
                ok = ok and status == 201
                for row in window:
                    status, answer = call("POST", f"/v1/sessions/{made['session_id']}/step", {"x": row})
                    ok = ok and status == 200
                call("DELETE", f"/v1/sessions/{made['session_id']}")
            else:
                body = {"window": window}
                if "h0" in case:
                    body["state"] = state(case, b)
                status, answer = call("POST", f"/v1/models/{name}/predict", body)
                ok = ok and status == 200
            if not ok:
                print(f"     {name}: {status} {answer}")
                break
            got, want = values(answer), flat(case["expected"][b])
            ok = ok and len(got) == len(want)
            for g, w in zip(got, want):
                worst = max(worst, abs(g - w) / (1 + abs(w)))
        ok = ok and worst <= 1e-5
        source = case["source"] + (" + " + case["config"] if case.get("config") else "")
        print(f"{'ok  ' if ok else 'FAIL'} {name} ({case['framework']} {source}, {how}): {len(case['x'])} samples, "
              f"worst |diff|/(1+|expected|) {worst:.1e}")
        passes, fails = passes + ok, fails + (not ok)
finally:
    server.terminate()
    server.wait()
    shutil.rmtree(work, ignore_errors=True)
print(f"models-e2e: {passes} passed, {fails} failed")
sys.exit(1 if fails else 0)
