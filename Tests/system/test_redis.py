"""Sessions in Redis, shared by replicas: real redis-server processes and release servers on
loopback. Stepping through two replicas in turn equals stepping one memory-store server, bit
for bit; expected_step holds across replicas; every session answer names its replica; Redis
down answers 503 with Retry-After on session routes while predict goes on; a replica that does
not serve a session's version answers 410; a damaged value answers 410, not a crash."""
import http.client
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.parse

import pytest

from live import ROOT, Server

MODELS = os.path.join(ROOT, "models")
ROW = {"temp_max": 21.5, "temp_min": 11.25, "precipitation": 0.5, "wind": 3.0, "date": "2024-05-01"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    def __init__(self, port=None):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="lstm-redis-")
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", self.dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            if self.cli("PING") == "PONG":
                return
            time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def cli(self, *args):
        out = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True)
        return out.stdout.strip()

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"


def call(server, method, path, body=None):
    """(status, headers, parsed body), 5xx included."""
    u = urllib.parse.urlsplit(server.base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    c.request(method, path, body=None if body is None else json.dumps(body), headers={"Content-Type": "application/json"})
    r = c.getresponse()
    text = r.read()
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, json.loads(text) if text else None


@pytest.fixture
def redis():
    r = Redis()
    yield r
    r.kill()


def test_two_replicas_step_one_session_as_one_memory_server_does(redis):
    rows = [dict(ROW, temp_max=ROW["temp_max"] + k, date=f"2024-05-{k + 1:02d}") for k in range(6)]
    with Server(MODELS, "--session-store", redis.url, "--node-name", "a") as a, \
         Server(MODELS, "--session-store", redis.url, "--node-name", "b") as b, \
         Server(MODELS, "--session-store", "memory") as alone:
        status, headers, made = call(a, "POST", "/v1/sessions", {})
        assert status == 201 and headers["x-lstm-serve-node"] == "a"
        sid = made["session_id"]
        reference = alone.session("temperature")
        for k, row in enumerate(rows):
            replica = (a, b)[k % 2]
            status, headers, shared = call(replica, "POST", f"/v1/sessions/{sid}/step", {"x": row, "expected_step": k})
            assert status == 200 and headers["x-lstm-serve-node"] == ("a", "b")[k % 2], shared
            _, one = alone.call("POST", f"/v1/sessions/{reference}/step", {"x": row})
            assert shared["step"] == k + 1 and shared["forecast"] == one["forecast"]
        _, _, state = call(b, "GET", f"/v1/sessions/{sid}/state")
        _, reference_state = alone.call("GET", f"/v1/sessions/{reference}/state")
        assert state["state"] == reference_state["state"] and state["step"] == len(rows)
        # expected_step means the same on every replica
        status, _, refused = call(a, "POST", f"/v1/sessions/{sid}/step", {"x": ROW, "expected_step": 0})
        assert status == 409 and "is at step 6" in refused["error"]["message"]
        # delete on one, gone on the other, with why
        assert call(a, "DELETE", f"/v1/sessions/{sid}")[0] == 204
        status, _, gone = call(b, "GET", f"/v1/sessions/{sid}")
        assert status == 404 and "was deleted" in gone["error"]["message"]


def test_redis_down_is_503_with_retry_after_on_session_routes_and_predict_goes_on(redis):
    window = json.load(open(os.path.join(ROOT, "examples", "week.json")))
    with Server(MODELS, "--session-store", redis.url, "--session-redis-timeout-ms", "300") as s:
        sid = s.session("temperature")
        port = redis.port
        redis.kill()
        started = time.time()
        status, headers, refused = call(s, "POST", f"/v1/sessions/{sid}/step", {"x": ROW})
        assert status == 503 and headers.get("retry-after") == "1" and "Redis" in refused["error"]["message"]
        status, headers, _ = call(s, "POST", "/v1/sessions", {})
        assert status == 503 and headers.get("retry-after") == "1"
        assert time.time() - started < 3
        assert call(s, "POST", "/v1/predict", window)[0] == 200
        # Redis back (empty: this one kept nothing): sessions work again
        back = Redis(port)
        try:
            assert call(s, "POST", f"/v1/sessions/{sid}/step", {"x": ROW})[0] == 404
            status, _, made = call(s, "POST", "/v1/sessions", {})
            assert status == 201
            assert call(s, "POST", f"/v1/sessions/{made['session_id']}/step", {"x": ROW})[0] == 200
        finally:
            back.kill()


def test_a_replica_without_the_sessions_version_answers_410_and_a_damaged_value_410(redis):
    with Server(MODELS, "--session-store", redis.url) as full, \
         Server(MODELS, "--session-store", redis.url, "--model", os.path.join(MODELS, "echo")) as echo_only:
        sid = full.session("temperature")
        status, _, gone = call(echo_only, "POST", f"/v1/sessions/{sid}/step", {"x": ROW})
        assert status == 410 and "model 'temperature' version 1, which is no longer served" in gone["error"]["message"]
        assert call(full, "POST", f"/v1/sessions/{sid}/step", {"x": ROW})[0] == 200
        # another program writes over the value
        key = redis.cli("--scan", "--pattern", f"*:s:{sid}")
        assert key
        redis.cli("SET", key, "not a session")
        status, _, damaged = call(full, "POST", f"/v1/sessions/{sid}/step", {"x": ROW})
        assert status == 410 and "cannot read" in damaged["error"]["message"]
        assert call(full, "DELETE", f"/v1/sessions/{sid}")[0] == 204
        assert full.alive() and echo_only.alive()
