#!/usr/bin/env python3
"""A bounded random-request fuzzer against a live lstm-serve (stdlib only).

    python3 Tests/system/fuzz_http.py http://127.0.0.1:PORT [--requests 20000] [--seed 1]

Half the requests are well-framed HTTP with hostile JSON bodies (predict, step, session
create, state import: wrong shapes, NaN, huge numbers, deep nesting, odd types, truncations);
half are hostile raw bytes (methods, paths with escapes and control bytes, header lines,
lengths, encodings, garbage). Every request goes on its own connection, which is half-closed
after sending. Each answer must come within 2 s, parse as HTTP/1.1, carry exactly its
Content-Length, and be below 500; a JSON error must be the error envelope. Answers that
libmicrohttpd writes itself (its HTML pages, e.g. for a Content-Length that is not a number)
are counted apart. Prints the tally and exits non-zero on any failure.
"""
import argparse, json, random, socket, threading, time, urllib.parse
from collections import Counter

ROW = {"date": "2015-02-22", "temp_max": 11.7, "temp_min": 3.3, "precipitation": 0.0, "wind": 4.2}
WEEK = [dict(ROW, date="2015-02-%02d" % d) for d in range(22, 29)]
ODD = [None, True, False, 0, -1, 1e308, -1e308, 1e39, "NaN", "Infinity", "", "x" * 5000, [], {}, [[]], 2**64, -2**63, 0.1]


def mutate(value, rng, depth=0):
    """A random hostile change somewhere inside a JSON value."""
    r = rng.random()
    if depth > 3 or r < 0.15:
        return rng.choice(ODD)
    if isinstance(value, dict) and value:
        v = dict(value)
        k = rng.choice(list(v))
        if r < 0.3:
            del v[k]
        elif r < 0.4:
            v["extra_%d" % rng.randrange(9)] = rng.choice(ODD)
        else:
            v[k] = mutate(v[k], rng, depth + 1)
        return v
    if isinstance(value, list) and value:
        v = list(value)
        i = rng.randrange(len(v))
        if r < 0.3:
            del v[i]
        elif r < 0.4:
            v.append(rng.choice(v))
        else:
            v[i] = mutate(v[i], rng, depth + 1)
        return v
    return rng.choice(ODD)


def json_request(rng, sessions):
    sid = rng.choice(sessions) if sessions and rng.random() < 0.8 else "%032x" % rng.getrandbits(128)
    route = rng.choice(["predict", "predict_named", "step", "steps", "create", "state"])
    if route in ("predict", "predict_named"):
        path = "/v1/predict" if route == "predict" else "/v1/models/temperature/predict"
        doc = {"window": WEEK}
        if rng.random() < 0.2:
            doc = {"windows": [WEEK, WEEK]}
        if rng.random() < 0.2:
            doc["return_state"] = True
    elif route == "step":
        path, doc = "/v1/sessions/%s/step" % sid, {"x": ROW, "expected_step": rng.randrange(3)}
    elif route == "steps":
        path, doc = "/v1/sessions/%s/step" % sid, {"xs": WEEK}
    elif route == "create":
        path, doc = "/v1/sessions", {"model": "temperature"}
    else:
        path, doc = "/v1/sessions/%s/state" % sid, {"state": {"h": [[0.0] * 32], "c": [[0.0] * 32]}, "step": rng.randrange(10)}
    for _ in range(rng.randrange(1, 4)):
        doc = mutate(doc, rng)
    body = json.dumps(doc, allow_nan=True).encode()
    r = rng.random()
    if r < 0.05:
        body = body[: rng.randrange(len(body) + 1)]
    elif r < 0.08:
        body = b"[" * 5000 + b"]" * 5000
    elif r < 0.1:
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(200)))
    method = "PUT" if route == "state" else "POST"
    head = "%s %s HTTP/1.1\r\nHost: fuzz\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (method, path, len(body))
    return head.encode() + body, True


PATH_BITS = ["/", "v1", "models", "temperature", "predict", "sessions", "step", "state", "healthz", "readyz", "metrics",
             "%00", "%2F", "%2e%2e", "..", ".", "%", "%zz", "%41", "\x00", "\x7f", "\xff", "é", "?a=1", "#x", "//", " ", "\t"]
HEADERS = [b"Host: fuzz", b"Host : fuzz", b"Content-Length: 5", b"Content-Length: abc", b"Content-Length: -1",
           b"Content-Length: 99999999999999999999", b"Transfer-Encoding: chunked", b"Transfer-Encoding: xchunked",
           b"Expect: 100-continue", b"Content-Type: application/json", b"Content-Type: text/plain", b"X-A: a\rb",
           b"X-Request-ID: " + b"r" * 200, b"Connection: keep-alive", b"Authorization: Bearer x", b": empty", b"NoColon",
           b"X-Long: " + b"v" * 40000, b"Origin: https://evil.example"]


def raw_request(rng):
    method = rng.choice(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "BREW", "G\x00T", "", "get"])
    path = "".join(rng.choice(PATH_BITS) for _ in range(rng.randrange(1, 8)))
    if rng.random() < 0.9 and not path.startswith("/"):
        path = "/" + path
    version = rng.choice(["HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1 extra", ""])
    lines = [("%s %s %s" % (method, path, version)).encode("utf-8", "surrogateescape")]
    lines += rng.sample(HEADERS, rng.randrange(0, 5))
    body = b""
    if rng.random() < 0.5:
        body = rng.choice([b"{}", b"0\r\n\r\n", b"5\r\n{\"x\":\r\n0\r\n\r\n", json.dumps({"window": WEEK}).encode(),
                           bytes(rng.randrange(256) for _ in range(rng.randrange(64)))])
    data = b"\r\n".join(lines) + b"\r\n\r\n" + body
    if rng.random() < 0.1:
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
    if rng.random() < 0.05:
        data = data.replace(b"\r\n", b"\n")
    return data, False


def complete(out, head_request):
    """Whether `out` holds a whole response (headers, then Content-Length bytes)."""
    head, sep, body = out.partition(b"\r\n\r\n")
    if not sep:
        return False
    if head_request:
        return True
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return len(body) >= int(value)
    return False


def exchange(host, port, data, half_close=True):
    """Sends `data`; returns (what came back, None | 'hang' | 'reset'). A whole response ends
    the read (the server may keep the connection for the next request)."""
    s = socket.create_connection((host, port), timeout=2)
    head_request = data.startswith(b"HEAD ")
    try:
        try:
            s.sendall(data)
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may refuse mid-send (e.g. a huge header); read what it said
        out, start = b"", time.time()
        while not complete(out, head_request):
            if time.time() - start > 2:
                return out, "hang"
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                return out, "hang"
            except ConnectionResetError:
                return out, "reset"
            if not chunk:
                return out, None
            out += chunk
        return out, None
    finally:
        s.close()


def judge(out, head_request, request_line):
    """'ok', 'library' (libmicrohttpd's own page), 'closed' (no answer) or a failure reason."""
    if not out:
        return "closed"
    head, sep, body = out.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if not sep or len(parts) < 2 or parts[0] != b"HTTP/1.1" or not parts[1].isdigit():
        return "unparsable answer: %r" % out[:80]
    status = int(parts[1])
    headers = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            return "bad header line %r" % line[:60]
        headers[name.strip().lower()] = value.strip()
    if body.startswith(b"HTTP/1.1 ") or head.count(b"HTTP/1.1 ") > 1:
        return "doubled"  # libmicrohttpd 0.9.75 writes the status line and headers of its own errors twice
    if b"<html>" in out or (status == 505 and b"HTTP/1.1" not in request_line):
        # libmicrohttpd's own pages; 505 is the right answer to a request line that does not
        # say HTTP/1.0 or HTTP/1.1 (e.g. HTTP/2.0)
        return "library" if status < 500 or status == 505 else "5xx from the library: %r" % out[:80]
    if status >= 500:
        return "5xx: %r" % out[:200]
    length = int(headers.get(b"content-length", b"-1"))
    if status not in (204, 304) and length != len(body) and not (head_request and not body):
        return "body %d bytes, Content-Length %d" % (len(body), length)
    if status >= 400 and body:
        try:
            error = json.loads(body)["error"]
            assert error["code"] == status and error["type"] and error["message"]
        except Exception:
            return "not the error envelope: %r" % body[:120]
    return "ok"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=4)
    args = ap.parse_args()
    u = urllib.parse.urlparse(args.base)
    host, port = u.hostname, u.port
    sessions = []
    for _ in range(8):
        out, _ = exchange(host, port, b"POST /v1/sessions HTTP/1.1\r\nHost: fuzz\r\nContent-Length: 0\r\n\r\n")
        sessions.append(json.loads(out.partition(b"\r\n\r\n")[2])["session_id"])
    tally, failures, lock = Counter(), [], threading.Lock()
    statuses = Counter()

    def worker(k):
        rng = random.Random(args.seed * 1000 + k)
        for i in range(k, args.requests, args.threads):
            data, well_framed = json_request(rng, sessions) if rng.random() < 0.5 else raw_request(rng)
            # a well-framed request is sent as clients send it; raw bytes are followed by a
            # half-close, so that a request claiming more bytes than it has cannot wait
            out, problem = exchange(host, port, data, half_close=not well_framed)
            request_line = data.split(b"\n", 1)[0]
            verdict = problem if problem == "hang" else judge(out, data.startswith(b"HEAD "), request_line)
            if problem == "reset" and not out:
                verdict = "closed"
            if verdict == "closed" and well_framed:
                verdict = "closed without an answer to a well-framed request"
            code = out[9:12].decode("latin-1") if out.startswith(b"HTTP/1.1 ") else "-"
            with lock:
                statuses[code] += 1
                tally[verdict if verdict in ("ok", "library", "doubled", "closed") else "FAIL"] += 1
                if verdict not in ("ok", "library", "doubled", "closed") and len(failures) < 20:
                    failures.append((verdict, data[:200]))

    start = time.time()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(args.threads)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    out, _ = exchange(host, port, b"GET /healthz HTTP/1.1\r\nHost: fuzz\r\n\r\n")
    alive = out.startswith(b"HTTP/1.1 200")
    print("fuzz: %d requests in %.1f s: %d answered well, %d answered by libmicrohttpd itself (%d of them with its status line written twice), "
          "%d closed unanswered (raw garbage), %d failures"
          % (args.requests, time.time() - start, tally["ok"], tally["library"] + tally["doubled"], tally["doubled"], tally["closed"], tally["FAIL"]))
    print("fuzz: statuses " + ", ".join("%s: %d" % kv for kv in sorted(statuses.items())))
    for verdict, data in failures:
        print("FAIL %s\n     request %r" % (verdict, data))
    if not alive:
        print("FAIL /healthz after the run: %r" % out[:100])
    ok = tally["FAIL"] == 0 and alive
    print("fuzz: %d passed, %d failed" % (tally["ok"] + tally["library"] + tally["doubled"] + tally["closed"], tally["FAIL"] + (0 if alive else 1)))
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
