#!/usr/bin/env python3
"""The durable session store against hostile files and a full disk.

- A truncated, a corrupted, a foreign SQLite and a non-database file each stop start-up with
  one clear line (exit 1), and the file is left as it was: never a silent wipe. So do a step
  log beside the store with a damaged record, and a file there that is no step log.
- A step log whose last record was cut short (a write the kill interrupted): the record is
  dropped with a warning and every acknowledged step is back.
- A second server on a store another one holds is refused the same way.
- A session whose model is not served after a restart answers 410 saying so.
- A full disk (a small tmpfs): steps answer 503 with the reason, the session stays at its last
  stored step, and after the server is killed every acknowledged step is on the medium.

    python3 Tests/system/hostile_store.py BINARY
"""
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

BINARY = sys.argv[1] if len(sys.argv) > 1 else ".build/install/lstm-serve"
MODELS = os.path.join(os.path.dirname(__file__), "..", "..", "models")
checks = 0


def ok(what):
    global checks
    checks += 1
    print(f"ok   {what}", flush=True)


def fail(what):
    sys.exit(f"FAIL {what}")


def start(store, *flags, expect_failure=False, output=None):
    p = subprocess.Popen([BINARY, "serve", "--port", "0", "--log-level", "warning", "--session-store", f"sqlite:{store}", *flags],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in p.stdout:
        lines.append(line)
        m = re.search(r"listening on http://[^:]+:(\d+)", line)
        if m:
            if output is not None:
                output.extend(lines)
            if expect_failure:
                p.kill()
                fail(f"a server started on {store}: {''.join(lines)}")
            return p, int(m.group(1))
    code = p.wait()
    if not expect_failure:
        fail(f"the server did not start on {store} (exit {code}): {''.join(lines)}")
    return code, "".join(lines)


def call(port, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(method, path, body=None if body is None else json.dumps(body), headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, json.loads(data) if data else None


def day(t):
    return {"date": "2015-03-%02d" % (1 + t % 28), "temp_max": 10.0 + t % 7, "temp_min": 2.5, "precipitation": 0.5, "wind": 3.0}


def make_store(path, sessions=20, steps=5, *flags):
    p, port = start(path, *flags)
    ids = []
    for _ in range(sessions):
        s, body = call(port, "POST", "/v1/sessions", {})
        assert s == 201, body
        ids.append(body["session_id"])
        for t in range(steps):
            s, body = call(port, "POST", f"/v1/sessions/{ids[-1]}/step", {"x": day(t)})
            assert s == 200, body
    p.send_signal(signal.SIGTERM)
    assert p.wait() == 0
    return ids


def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def refused(path, text, what, log=None):
    before = digest(path), log and digest(log)
    code, out = start(path, expect_failure=True)
    # the refusal, and nothing but start-up's own records (time, level, message) before it
    lines = [l for l in out.splitlines() if l.strip() and not re.match(r"\S+ (info|warning) ", l)]
    if code != 1 or len(lines) != 1 or text not in lines[0]:
        fail(f"{what}: expected exit 1 and one line with '{text}', got exit {code}: {out!r}")
    if (digest(path), log and digest(log)) != before:
        fail(f"{what}: the refused files were changed")
    ok(f"{what}: exit 1, one line: {lines[0][:150]}")


def at_step(p, port, sid, n, what):
    """Checks that session sid stands at step n, then stops the server."""
    s, body = call(port, "GET", f"/v1/sessions/{sid}")
    if s != 200 or body["step"] != n:
        fail(f"{what}: got {s} {body}")
    ok(what)
    p.send_signal(signal.SIGTERM)
    p.wait()


def main():
    work = tempfile.mkdtemp(prefix="lstm-hostile-")
    good = os.path.join(work, "good.db")
    ids = make_store(good)

    # damaged copies of a real store
    truncated = os.path.join(work, "truncated.db")
    shutil.copy(good, truncated)
    with open(truncated, "r+b") as f:
        f.truncate(os.path.getsize(truncated) // 2)
    refused(truncated, "damaged", "a truncated store")

    corrupted = os.path.join(work, "corrupted.db")
    data = bytearray(open(good, "rb").read())
    # scribble on every page's b-tree header and cell pointers but the first page's (the
    # middle of a page may be free space, which no check reads)
    for k in range(4096, len(data), 4096):
        data[k:k + 64] = os.urandom(64)
    open(corrupted, "wb").write(data)
    refused(corrupted, "damaged", "a corrupted store")

    foreign = os.path.join(work, "foreign.db")
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    db.execute("INSERT INTO invoices VALUES (1, 9.5)")
    db.commit()
    db.close()
    refused(foreign, "an SQLite database of something else", "a foreign SQLite database")

    text = os.path.join(work, "notes.db")
    open(text, "w").write("these are my notes, not a database\n" * 200)
    refused(text, "is not an lstm-serve session store", "a file that is not a database")

    step_logs(work, good)

    # one store, one server
    p, port = start(good)
    refused(good, "held by another process", "a second server on a store in use")
    at_step(p, port, ids[3], 5, "the first server keeps serving its 20 sessions at step 5")

    # a session whose model is gone after a restart
    only_airline = ["--model", os.path.join(MODELS, "airline")]
    p, port = start(good, *only_airline)
    s, body = call(port, "POST", f"/v1/sessions/{ids[0]}/step", {"x": day(5)})
    if s != 410 or "temperature" not in body["error"]["message"] or "no longer served" not in body["error"]["message"]:
        fail(f"a session of a model not served: {s} {body}")
    ok(f"a session of a model not served answers 410: {body['error']['message']}")
    p.send_signal(signal.SIGTERM)
    p.wait()
    p, port = start(good)
    at_step(p, port, ids[0], 5, "with its model served again, the session is back at step 5")

    full_disk(work)
    shutil.rmtree(work, ignore_errors=True)
    print(f"hostile_store: {checks} checks passed")


def step_logs(work, good):
    """The step log beside a store: damaged, foreign, and cut short by a kill."""
    header = b"LSTMSTEP\x01" + b"\x00" * 7
    damaged = os.path.join(work, "damaged-log.db")
    shutil.copy(good, damaged)
    record = b"\x10\x00\x00\x00" + os.urandom(8) + os.urandom(16)  # a checksum that fails
    open(damaged + "-steps", "wb").write(header + record + record)
    refused(damaged, "step log", "a step log with a damaged record", log=damaged + "-steps")
    foreign = os.path.join(work, "foreign-log.db")
    shutil.copy(good, foreign)
    open(foreign + "-steps", "wb").write(b"my own notes, not a step log\n" * 10)
    refused(foreign, "is not an lstm-serve step log", "a file in the step log's place that is no step log", log=foreign + "-steps")

    torn = os.path.join(work, "torn.db")
    p, port = start(torn)
    sids = []
    for _ in range(3):
        s, body = call(port, "POST", "/v1/sessions", {})
        sids.append(body["session_id"])
        for t in range(4):
            s, body = call(port, "POST", f"/v1/sessions/{sids[-1]}/step", {"x": day(t)})
            assert s == 200, body
    p.send_signal(signal.SIGKILL)
    p.wait()
    data = bytearray(open(torn + "-steps", "rb").read())
    end = len(header)  # the records end where a length of 0 stands (zeros fill the rest)
    while end + 4 <= len(data) and int.from_bytes(data[end:end + 4], "little"):
        end += 12 + int.from_bytes(data[end:end + 4], "little")
    if end == len(header):
        fail(f"the killed server left no steps in its log ({len(data)} bytes)")
    data[end:end + 40] = data[len(header):len(header) + 40]  # the start of a record, no more, as a power cut leaves it
    open(torn + "-steps", "wb").write(data)
    lines = []
    p, port = start(torn, output=lines)
    warned = [l for l in lines if "cut short" in l]
    if not warned:
        fail(f"a step log cut short: no warning in {lines}")
    for sid in sids:
        s, body = call(port, "GET", f"/v1/sessions/{sid}")
        if s != 200 or body["step"] != 4:
            fail(f"a step log cut short: session {sid} is {s} {body}")
    ok(f"a step log cut short: its last 40 bytes dropped ({warned[0].strip()[:120]}), all 12 steps back")
    p.send_signal(signal.SIGTERM)
    p.wait()


def full_disk(work):
    mount = os.path.join(work, "small")
    os.makedirs(mount)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", mount], capture_output=True).returncode != 0:
        fail("cannot mount a small tmpfs (the full-disk check needs root or CAP_SYS_ADMIN)")
    try:
        store = os.path.join(mount, "sessions.db")
        p, port = start(store)
        ids, acked, refusals = [], {}, 0
        message = ""
        for k in range(400):
            s, body = call(port, "POST", "/v1/sessions", {})
            if s == 201:
                ids.append(body["session_id"])
                acked[body["session_id"]] = 0
            elif s == 503:
                refusals += 1
                message = body["error"]["message"]
            else:
                fail(f"creating on a full disk: {s} {body}")
            for sid in ids[-8:]:
                s, body = call(port, "POST", f"/v1/sessions/{sid}/step", {"x": day(acked[sid]), "expected_step": acked[sid]})
                if s == 200:
                    acked[sid] += 1
                elif s == 503:
                    refusals += 1
                    message = body["error"]["message"]
                    time.sleep(0.005)  # the shard puts the stored state back
                    s2, info = call(port, "GET", f"/v1/sessions/{sid}")
                    if s2 == 200 and info["step"] != acked[sid]:
                        fail(f"after a refused step the session stands at {info['step']}, not its stored {acked[sid]}")
                else:
                    fail(f"stepping on a full disk: {s} {body}")
            if refusals >= 40:
                break
        if refusals == 0:
            fail("the small tmpfs never filled up")
        if "could not write" not in message and "put back" not in message:
            fail(f"the 503's message does not say why: {message}")
        ok(f"a full disk: {refusals} changes refused with 503 ({message[:110]}...), {sum(acked.values())} steps acknowledged")
        p.send_signal(signal.SIGKILL)
        p.wait()
        moved = os.path.join(work, "moved")
        os.makedirs(moved)
        for name in os.listdir(mount):
            shutil.copy(os.path.join(mount, name), moved)
        p, port = start(os.path.join(moved, "sessions.db"))
        for sid, n in acked.items():
            s, body = call(port, "GET", f"/v1/sessions/{sid}")
            if s != 200 or body["step"] != n:
                fail(f"after the full disk, session {sid} is {s} {body}; {n} steps were acknowledged")
        ok(f"every one of the {sum(acked.values())} acknowledged steps of {len(acked)} sessions is on the medium")
        p.send_signal(signal.SIGTERM)
        p.wait()
    finally:
        subprocess.run(["umount", mount])


if __name__ == "__main__":
    main()
