#!/usr/bin/env python3
"""Four times capacity, against a release server on loopback (wrk drives the load):
  1. 1,024 connections against a connection limit of 256, predict, for SECONDS;
  2. session creates at four times the session cap (max 1,000 sessions) while 32 connections
     step sessions that exist.
The server's own /metrics tell what it answered: only 200, 503 (past the connection limit),
201 and 429 (past the session cap) may appear; wrk's socket errors are refused or closed
connections. After each phase: how long until /healthz and a predict answer again, and RSS.
    python3 Tests/system/overload.py [SECONDS]    (builds the release binary if missing; the suite runs 3)
"""
import json, os, re, subprocess, sys, tempfile, time, urllib.request

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.chdir(root)
seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
binary = ".build/install/lstm-serve"
if not os.path.exists(binary):
    subprocess.run(["scripts/build.sh"], check=True)
log = tempfile.NamedTemporaryFile("w+", delete=False)
server = subprocess.Popen([binary, "serve", "--port", "0", "--log-level", "warning", "--connection-limit", "256",
                           "--per-ip-connection-limit", "0", "--max-sessions", "1000"], stdout=log, stderr=log)
for _ in range(100):
    m = re.search(r"listening on (http://\S+)", open(log.name).read())
    if m:
        break
    time.sleep(0.1)
base = m.group(1)
week = open("examples/week.json").read()


def call(method, path, body=None, timeout=2):
    req = urllib.request.Request(base + path, data=body.encode() if body else None, method=method,
                                 headers={"Content-Type": "application/json"} if body else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def statuses():
    text = call("GET", "/metrics")[1].decode()
    out = {}
    for route, status, n in re.findall(r'lstm_serve_requests_total\{route="([^"]+)",method="[A-Z]+",status="(\d+)"\} (\d+)', text):
        if route != "/metrics":
            out[status] = out.get(status, 0) + int(n)
    return out


def rss():
    return int(re.search(r"VmRSS:\s+(\d+)", open("/proc/%d/status" % server.pid).read()).group(1)) / 1024


def recovery():
    start = time.time()
    while time.time() - start < 10:
        try:
            if call("GET", "/healthz", timeout=1)[0] == 200 and call("POST", "/v1/predict", week, timeout=1)[0] == 200:
                return time.time() - start
        except Exception:
            pass
        time.sleep(0.01)
    return float("inf")


def lua(text):
    f = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    f.write(text)
    f.close()
    return f.name


def wrk(connections, path, script, secs):
    out = subprocess.run(["wrk", "-t2", "-c%d" % connections, "-d%ds" % secs, "--timeout", "2s", "-s", script, base + path],
                         capture_output=True, text=True).stdout
    answered = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return answered, tuple(int(x) for x in errors.groups()) if errors else (0, 0, 0, 0)


def diff(after, before):
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


predict = lua('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [[%s]]\n' % week)
create = lua('wrk.method = "POST"\n')
ok = True
rss0 = rss()
print("RSS at start: %.1f MB" % rss0)
for round_ in (1, 2, 3):
    before = statuses()
    answered, errors = wrk(1024, "/v1/predict", predict, seconds)
    seen = diff(statuses(), before)
    rec = recovery()
    bad = {k: v for k, v in seen.items() if k not in ("200", "503")}
    ok = ok and not bad and rec < 1
    print("1,024 connections, limit 256 (round %d): %d answers: %s; socket errors connect/read/write/timeout %s; "
          "recovered in %.3f s; RSS %.1f MB" % (round_, answered, json.dumps(seen), errors, rec, rss()))

# sessions: fill to the cap, then create at 4x while stepping existing ones
ids = []
for _ in range(1000):
    status, body = call("POST", "/v1/sessions")
    if status == 201:
        ids.append(json.loads(body)["session_id"])
step_lua = lua('''wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"x": {"date": "2015-02-22", "temp_max": 11.7, "temp_min": 3.3, "precipitation": 0.0, "wind": 4.2}}'
local ids = {%s}
local n = 0
request = function() n = n + 1; return wrk.format(nil, "/v1/sessions/" .. ids[(n %% #ids) + 1] .. "/step") end
''' % ",".join('"%s"' % i for i in ids[:200]))
before = statuses()
stepper = subprocess.Popen(["wrk", "-t1", "-c32", "-d%ds" % seconds, "-s", step_lua, base + "/"], stdout=subprocess.PIPE, text=True)
answered, errors = wrk(128, "/v1/sessions", create, seconds)
step_out = stepper.communicate()[0]
seen = diff(statuses(), before)
rec = recovery()
bad = {k: v for k, v in seen.items() if k not in ("200", "201", "429")}
ok = ok and not bad and rec < 1 and seen.get("201", 0) == 0
print("creates past a cap of 1,000 (%d held) with steps beside them: %s; recovered in %.3f s; RSS %.1f MB"
      % (len(ids), json.dumps(seen), rec, rss()))
print("overload: %s (RSS %.1f MB at start, %.1f MB at the end)" % ("ok" if ok else "FAIL", rss0, rss()))
server.terminate()
server.wait()
sys.exit(0 if ok else 1)
