#!/usr/bin/env python3
"""Sessions survive kill -9 (the durable store, session_sync process).

Round after round on one store: threads step SESSIONS sessions as fast as they go, each step
with its expected_step; at a random moment the server gets SIGKILL; it is started again on the
same file (in every other round with an 8 KiB session_checkpoint_bytes, so that the step log
is moved into the database every few dozen steps and the restart meets both). Then every
session must stand at its last acknowledged step (or one past it, when a step was written but
its answer was cut off), and its state must equal, bit for bit, a replay of exactly those steps
on a second server that keeps sessions in memory. The next round goes on from there.

    python3 Tests/system/crash.py BINARY [--rounds 20] [--sessions 1000] [--threads 16] [--sync process]
"""
import argparse
import atexit
import http.client
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time


children = []


def stop_children():
    for p in children:
        if p.poll() is None:
            p.kill()


atexit.register(stop_children)


def start(binary, *flags):
    p = subprocess.Popen([binary, "serve", "--port", "0", "--log-level", "warning", *flags],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    children.append(p)
    lines = []
    for line in p.stdout:
        lines.append(line)
        m = re.search(r"listening on http://([^:]+):(\d+)", line)
        if m:
            threading.Thread(target=lambda: [None for _ in p.stdout], daemon=True).start()
            return p, int(m.group(2))
        if p.poll() is not None:
            break
    sys.exit(f"crash: the server did not start: {''.join(lines)}{p.stdout.read() if p.stdout else ''}")


class Client:
    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body)
        self.conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        r = self.conn.getresponse()
        payload = r.read()
        return r.status, json.loads(payload) if payload else None


def row(i, t):
    """Session i's input at step t: the same on every run, different per session and step."""
    r = random.Random(i * 1_000_003 + t)
    day = 1 + (t % 365)
    return {"date": time.strftime("%Y-%m-%d", time.gmtime((day - 1) * 86400 + 1420070400)),
            "temp_max": round(r.uniform(-5, 35), 1), "temp_min": round(r.uniform(-10, 20), 1),
            "precipitation": round(r.uniform(0, 30), 1), "wind": round(r.uniform(0, 10), 1)}


def parallel(items, threads, port, work):
    """Runs work(client, item) over items on `threads` keep-alive connections."""
    errors, lock, it = [], threading.Lock(), iter(items)

    def run():
        c = Client(port)
        while True:
            with lock:
                item = next(it, None)
            if item is None:
                return
            try:
                work(c, item)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(f"{item}: {e}")
    ts = [threading.Thread(target=run) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        sys.exit(f"crash: {len(errors)} failures, first: {errors[0]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--sync", default="process")
    ap.add_argument("--seed", type=int, default=int(os.environ.get("CRASH_SEED", "1")))
    a = ap.parse_args()
    rng = random.Random(a.seed)
    work = tempfile.mkdtemp(prefix="lstm-crash-")
    store = ["--session-store", f"sqlite:{work}/sessions.db", "--session-sync", a.sync, "--max-sessions", str(2 * a.sessions)]

    def store_for(round_):
        return store + (["--session-checkpoint-bytes", "8192"] if round_ % 2 == 0 else [])
    reference, ref_port = start(a.binary, "--session-store", "memory", "--max-sessions", str(2 * a.sessions))
    server, port = start(a.binary, *store)
    ids, refs = [None] * a.sessions, [None] * a.sessions

    def create(c, i):
        s, body = c.call("POST", "/v1/sessions", {})
        assert s == 201, body
        ids[i] = body["session_id"]
    parallel(range(a.sessions), a.threads, port, create)

    def create_ref(c, i):
        s, body = c.call("POST", "/v1/sessions", {})
        assert s == 201, body
        refs[i] = body["session_id"]
    parallel(range(a.sessions), a.threads, ref_port, create_ref)

    acked = [0] * a.sessions      # steps answered 200
    in_flight = [False] * a.sessions
    replayed = [0] * a.sessions   # steps the reference session has taken
    totals = {"acked": 0, "written_unanswered": 0, "steps": 0}
    for round_ in range(1, a.rounds + 1):
        stop = threading.Event()
        failures = []

        def drive(k):
            c = Client(port)
            mine = list(range(k, a.sessions, a.threads))
            while not stop.is_set():
                i = rng.choice(mine)
                in_flight[i] = True
                try:
                    s, body = c.call("POST", f"/v1/sessions/{ids[i]}/step", {"x": row(i, acked[i]), "expected_step": acked[i]})
                except (OSError, http.client.HTTPException):
                    return  # killed: this step may or may not have been written
                if s != 200 or body["step"] != acked[i] + 1:
                    failures.append((s, body))
                    return
                acked[i] += 1
                in_flight[i] = False
        drivers = [threading.Thread(target=drive, args=(k,)) for k in range(a.threads)]
        for t in drivers:
            t.start()
        time.sleep(rng.uniform(0.3, 1.5))
        server.send_signal(signal.SIGKILL)
        server.wait()
        stop.set()
        for t in drivers:
            t.join()
        if failures:
            sys.exit(f"crash: round {round_}: a step was refused before the kill: {failures[0]}")
        server, port = start(a.binary, *store_for(round_ + 1))
        stored = [0] * a.sessions

        def check(c, i):
            s, body = c.call("GET", f"/v1/sessions/{ids[i]}")
            assert s == 200, (s, body)
            n = body["step"]
            if not (n == acked[i] or (in_flight[i] and n == acked[i] + 1)):
                raise AssertionError(f"session {i} ({ids[i]}) stands at step {n}; {acked[i]} were acknowledged{' and one was in flight' if in_flight[i] else ''}; store {work}")
            stored[i] = n
        parallel(range(a.sessions), a.threads, port, check)

        def replay(c, i):
            if stored[i] > replayed[i]:
                s, body = c.call("POST", f"/v1/sessions/{refs[i]}/step",
                                 {"xs": [row(i, t) for t in range(replayed[i], stored[i])], "expected_step": replayed[i]})
                assert s == 200, body
                replayed[i] = stored[i]
        parallel(range(a.sessions), a.threads, ref_port, replay)

        durable_states = [None] * a.sessions

        def state(c, i):
            s, body = c.call("GET", f"/v1/sessions/{ids[i]}/state")
            assert s == 200, body
            durable_states[i] = body["state"]
        parallel(range(a.sessions), a.threads, port, state)

        def compare(c, i):
            s, body = c.call("GET", f"/v1/sessions/{refs[i]}/state")
            assert s == 200, body
            if body["state"] != durable_states[i]:
                raise AssertionError(f"session {i} at step {stored[i]}: the state after the restart differs from the replay of its steps")
        parallel(range(a.sessions), a.threads, ref_port, compare)
        unanswered = sum(1 for i in range(a.sessions) if stored[i] == acked[i] + 1)
        round_acked = sum(stored) - totals["steps"] - unanswered
        totals["steps"] = sum(stored)
        totals["acked"] += round_acked
        totals["written_unanswered"] += unanswered
        print(f"round {round_:2d}: {round_acked:5d} steps acknowledged before kill -9, {unanswered} written but unanswered; "
              f"all {a.sessions} sessions at their step and bit-equal to the replay", flush=True)
        for i in range(a.sessions):
            acked[i] = stored[i]
            in_flight[i] = False
    server.send_signal(signal.SIGTERM)
    reference.send_signal(signal.SIGTERM)
    code = server.wait()
    reference.wait()
    shutil.rmtree(work, ignore_errors=True)
    if code != 0:
        sys.exit(f"crash: the server exited {code} on SIGTERM")
    print(f"crash: ok: {a.rounds} kill -9 rounds, {totals['acked']} acknowledged steps over {a.sessions} sessions, "
          f"none lost, every state bit-equal to its replay ({totals['written_unanswered']} steps written but cut off before the answer)")


if __name__ == "__main__":
    main()
