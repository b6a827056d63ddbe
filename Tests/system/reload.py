#!/usr/bin/env python3
"""New model versions reload under load, and no request or stream is dropped.

The shipped temperature model is served as version 1 of a repository (durable sessions,
polling the repository every 0.2 s). wrk drives predict and steps on 64 sessions for the whole
run. Meanwhile version 2 is copied in, a file at a time and slowly (the poll may meet a partial
copy: that load fails and version 1 keeps serving), then reloaded by POST; version 3 is put in
place and reloaded by SIGHUP. Three groups of sessions step through it all: A made on version 1
before anything changed, B on version 2, C on version 3.

It passes when:
- wrk saw no failed request (no non-2xx answer, no socket error);
- every answer of every session equals, bit for bit, a replay of its steps on a separate server
  serving all three versions (A on 1, B on 2, C on 3), and predict ends on version 3;
- the retired versions are listed as retiring while sessions run on them, and each leaves
  memory once its last session is deleted.

    python3 Tests/system/reload.py BINARY [--seconds 14] [--connections 16]
"""
import argparse
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crash import Client, parallel, row, start  # noqa: E402

MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models", "temperature")


def fail(message):
    sys.exit(f"reload: {message}")


def perturbed(weights, shift):
    """The safetensors bytes with `shift` added to head.bias: another model of one layout."""
    n = struct.unpack("<Q", weights[:8])[0]
    header = json.loads(weights[8:8 + n])
    start_, end = header["head.bias"]["data_offsets"]
    data = bytearray(weights)
    base = 8 + n
    for k in range(base + start_, base + end, 4):
        v = struct.unpack("<f", data[k:k + 4])[0]
        data[k:k + 4] = struct.pack("<f", v + shift)
    return bytes(data)


def info(c):
    s, body = c.call("GET", "/v1/models/temperature")
    assert s == 200, body
    return body


def wait_for(c, what, test, seconds=10):
    deadline = time.time() + seconds
    while time.time() < deadline:
        body = info(c)
        if test(body):
            return body
        time.sleep(0.05)
    fail(f"{what} did not happen within {seconds} s: {json.dumps(info(c)['versions'])}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--seconds", type=int, default=14)
    ap.add_argument("--connections", type=int, default=16)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="lstm-reload-")
    repo = f"{work}/models"
    versions = f"{repo}/temperature"
    os.makedirs(f"{versions}/1")
    weights = open(f"{MODEL}/model.safetensors", "rb").read()
    config = open(f"{MODEL}/config.json", "rb").read()
    for name in ("model.safetensors", "config.json"):
        shutil.copy(f"{MODEL}/{name}", f"{versions}/1/{name}")

    server, port = start(a.binary, "--models-directory", repo, "--session-store", f"sqlite:{work}/sessions.db",
                         "--model-poll-seconds", "0.2", "--max-sessions", "5000")
    c = Client(port)
    if info(c)["version"] != 1:
        fail("the repository should serve version 1 first")

    def create(version=None):
        s, body = c.call("POST", "/v1/sessions", {} if version is None else {"version": version})
        assert s == 201, body
        return body["session_id"], body["version"]

    pool = [create()[0] for _ in range(64)]
    with open(f"{work}/sessions.txt", "w") as f:
        f.write("\n".join(pool) + "\n")
    with open(f"{work}/week.json", "w") as f:
        f.write(json.dumps({"window": [row(0, t) for t in range(7)]}))
    groups = {"A": [create() for _ in range(16)]}
    answers = {}  # session id -> forecasts of its steps, in order

    def step(group, upto):
        for sid, _ in groups[group]:
            done = answers.setdefault(sid, [])
            while len(done) < upto:
                s, body = c.call("POST", f"/v1/sessions/{sid}/step", {"x": row(hash(sid) % 1000, len(done)), "expected_step": len(done)})
                assert s == 200, body
                done.append(body["forecast"])

    env = dict(os.environ, SESSIONS=f"{work}/sessions.txt", BODY=f"{work}/week.json")
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib", "mixed.lua")
    wrk = subprocess.Popen(["wrk", "-t2", f"-c{a.connections}", f"-d{a.seconds}s", "-s", script, f"http://127.0.0.1:{port}"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                           cwd=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    started = time.time()
    time.sleep(1)
    step("A", 3)

    # version 2: copied in slowly, a file at a time; the poll may find it half written
    os.makedirs(f"{versions}/2")
    with open(f"{versions}/2/config.json", "wb") as f:
        f.write(config)
    v2 = perturbed(weights, 0.25)
    with open(f"{versions}/2/model.safetensors", "wb") as f:
        for k in range(4):
            f.write(v2[k * len(v2) // 4:(k + 1) * len(v2) // 4])
            f.flush()
            time.sleep(0.15)
    s, body = c.call("POST", "/v1/models/temperature/reload")
    if s != 200 or 2 not in body["versions"]:
        fail(f"POST reload after version 2 was copied in answered {s}: {body}")
    wait_for(c, "version 2 as the default", lambda b: b["version"] == 2)
    groups["B"] = [create() for _ in range(16)]
    step("A", 5)
    step("B", 3)

    # version 3: made beside the repository's versions, moved in, reloaded by SIGHUP
    os.makedirs(f"{versions}/.incoming")
    with open(f"{versions}/.incoming/config.json", "wb") as f:
        f.write(config)
    with open(f"{versions}/.incoming/model.safetensors", "wb") as f:
        f.write(perturbed(weights, -0.4))
    os.rename(f"{versions}/.incoming", f"{versions}/3")
    server.send_signal(signal.SIGHUP)
    during = wait_for(c, "version 3 as the default", lambda b: b["version"] == 3)
    groups["C"] = [create() for _ in range(16)]
    step("A", 8)
    step("B", 6)
    step("C", 6)
    listed = {v["version"]: (v["status"], v["sessions"]) for v in info(c)["versions"]}
    expected = {3: ("serving", 16), 2: ("retiring", 16), 1: ("retiring", 64 + 16)}
    if listed != expected:
        fail(f"versions listed {listed}, expected {expected}")
    out, _ = wrk.communicate(timeout=a.seconds + 30)
    if wrk.returncode != 0 or "Non-2xx" in out or "Socket errors" in out or "Requests/sec" not in out:
        fail(f"wrk saw failures while reloading:\n{out}")
    rate = float(out.split("Requests/sec:")[1].split()[0])
    print(f"reload: wrk {a.seconds} s, {a.connections} connections, predict + steps on 64 version-1 sessions: "
          f"{rate:,.0f} req/s, none failed, through a slow copy + POST reload (v2) and SIGHUP (v3), "
          f"{time.time() - started:.1f} s in all")
    for sid, version in groups["A"] + groups["B"] + groups["C"]:
        s, body = c.call("GET", f"/v1/sessions/{sid}")
        assert s == 200 and body["version"] == version, body

    # the replay: a server that serves every version, in memory
    ref, ref_port = start(a.binary, "--models-directory", repo, "--model-version-policy", "all", "--session-store", "memory")
    rc = Client(ref_port)
    checked = 0
    for group, pinned in (("A", 1), ("B", 2), ("C", 3)):
        for sid, version in groups[group]:
            if version != pinned:
                fail(f"a group {group} session was made on version {version}, not {pinned}")
            s, body = rc.call("POST", "/v1/sessions", {"version": version})
            assert s == 201, body
            twin = body["session_id"]
            for t, forecast in enumerate(answers[sid]):
                s, body = rc.call("POST", f"/v1/sessions/{twin}/step", {"x": row(hash(sid) % 1000, t)})
                assert s == 200, body
                if body["forecast"] != forecast:
                    fail(f"group {group} session {sid} step {t + 1} answered {forecast} under reloads; version {version} gives {body['forecast']}")
                checked += 1
    week = {"window": [row(0, t) for t in range(7)]}
    per_version = [rc.call("POST", f"/v1/models/temperature/versions/{v}/predict", week)[1]["forecast"] for v in (1, 2, 3)]
    if len({json.dumps(f, sort_keys=True) for f in per_version}) != 3:
        fail(f"the three versions should answer differently: {per_version}")
    if c.call("POST", "/v1/predict", week)[1]["forecast"] != per_version[2]:
        fail("predict does not answer as version 3 after the reloads")
    print(f"reload: {checked} session answers bit-equal to a replay on their own version (48 sessions on versions 1, 2, 3); predict on 3")

    # retired versions leave memory with their last session
    for sid in pool + [sid for sid, _ in groups["A"]]:
        assert c.call("DELETE", f"/v1/sessions/{sid}")[0] == 204
    wait_for(c, "version 1 leaving memory", lambda b: [v["version"] for v in b["versions"]] == [3, 2])
    for sid, _ in groups["B"]:
        assert c.call("DELETE", f"/v1/sessions/{sid}")[0] == 204
    wait_for(c, "version 2 leaving memory", lambda b: [v["version"] for v in b["versions"]] == [3])
    s, text = 0, ""
    c.conn.request("GET", "/metrics")
    r = c.conn.getresponse()
    text = r.read().decode()
    if "lstm_serve_model_versions_unloaded_total 2" not in text:
        fail("the metrics should count two versions unloaded")
    loads = [line for line in text.splitlines() if line.startswith("lstm_serve_model_reloads_total")]
    print(f"reload: versions 1 and 2 left memory after their last sessions; {', '.join(loads)}; "
          f"while retiring: {json.dumps({v['version']: v['status'] for v in during['versions']})}")
    server.send_signal(signal.SIGTERM)
    if server.wait(timeout=30) != 0:
        fail("the server did not drain with exit 0")
    ref.kill()
    shutil.rmtree(work, ignore_errors=True)
    print("reload: ok")


if __name__ == "__main__":
    main()
