"""Beyond one machine, under faults: a Redis Cluster (3 primaries, a replica each), three
lstm-serve replicas on it and nginx in front (deploy/nginx/lstm-serve.conf), all on loopback.
16 client threads step 2,000 sessions through nginx, every step with expected_step, resending
a failed one as it was. Mid-run one replica is killed (kill -9) and later restarted, and one
Redis primary is killed and the cluster fails over. At the end every session must be at the
step its client last saw acknowledged (none lost; a resend that had already run answers 409
and is not applied twice), and its state must equal, bit for bit, a replay of its steps on a
memory-store server. Prints failed requests and the longest unavailability per fault.
    python3 Tests/system/cluster.py [seconds of load, default 20]"""
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from live import BINARY, ROOT, Server  # noqa: E402

SESSIONS, THREADS = 2000, 16
SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
MODELS = os.path.join(ROOT, "models")


def free_port(bus=False):
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 10000 > 65535 and bus:
            continue
        if not bus:
            return port
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
                return port
            except OSError:
                continue


def cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True).stdout


def row(i, k):
    """Step k of session i: a day of weather, different for every (i, k)."""
    return {"temp_max": float((i * 7 + k * 3) % 40 - 5), "temp_min": float((i * 5 + k * 2) % 25 - 8),
            "precipitation": float((i + k) % 9) / 2, "wind": float((i * 3 + k) % 11),
            "date": f"2024-{1 + k // 28 % 12:02d}-{1 + k % 28:02d}"}


class Cluster:
    def __init__(self, work):
        self.ports, self.procs = [], {}
        for _ in range(6):
            port = free_port(bus=True)
            self.procs[port] = subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf", "--cluster-node-timeout", "2000",
                 "--repl-diskless-sync-delay", "0", "--dir", work, "--logfile", f"{work}/redis-{port}.log"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.ports.append(port)
        for port in self.ports:
            while "PONG" not in cli(port, "PING"):
                time.sleep(0.02)
        out = subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in self.ports],
                              "--cluster-replicas", "1", "--cluster-yes"], capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr
        self.wait_ok()

    def wait_ok(self, seconds=30):
        deadline = time.time() + seconds
        while time.time() < deadline:
            live = [p for p, proc in self.procs.items() if proc.poll() is None]
            if all("cluster_state:ok" in cli(p, "CLUSTER", "INFO") for p in live) and \
               all("role:master" in cli(p, "INFO", "replication") or "master_link_status:up" in cli(p, "INFO", "replication") for p in live):
                return
            time.sleep(0.1)
        raise RuntimeError("the cluster did not settle")

    def primaries(self):
        return [p for p, proc in self.procs.items() if proc.poll() is None and "role:master" in cli(p, "INFO", "replication")]

    def kill(self, port):
        self.procs[port].kill()
        self.procs[port].wait()

    def stop(self):
        for proc in self.procs.values():
            proc.kill()


class Replica:
    def __init__(self, name, port, seeds):
        self.name, self.port, self.seeds = name, port, seeds
        self.start()

    def start(self):
        self.log = open(f"{WORK}/{self.name}.log", "a")
        self.proc = subprocess.Popen([BINARY, "serve", "--port", str(self.port), "--models-directory", MODELS, "--log-level", "warning",
                                      "--session-store", self.seeds, "--node-name", self.name, "--max-sessions", "1000000"],
                                     stdout=self.log, stderr=self.log, cwd=ROOT)
        for _ in range(600):
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"replica {self.name} did not start: " + open(f"{WORK}/{self.name}.log").read()[-2000:])

    def kill(self):
        self.proc.kill()
        self.proc.wait()


def nginx(work, listen, upstreams):
    conf = open(os.path.join(ROOT, "deploy", "nginx", "lstm-serve.conf")).read()
    servers = "".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;\n" for p in upstreams)
    conf = re.sub(r"(    server 127\.0\.0\.1:\d+ [^\n]*\n)+", servers, conf)
    conf = conf.replace("listen 8080;", f"listen 127.0.0.1:{listen};")
    main = f"""worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {work}/body; proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi; uwsgi_temp_path {work}/uwsgi; scgi_temp_path {work}/scgi;
{conf}
}}
"""
    path = os.path.join(work, "nginx.conf")
    open(path, "w").write(main)
    proc = subprocess.Popen(["nginx", "-p", work, "-c", path, "-g", "daemon off; user root;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            c = http.client.HTTPConnection("127.0.0.1", listen, timeout=1)
            c.request("GET", "/nginx-health")
            if c.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nginx did not start: " + open(f"{work}/nginx-error.log").read())


class Client(threading.Thread):
    """Steps its sessions in turn; a failed step is sent again as it was (same expected_step)."""

    def __init__(self, port, sessions, stop):
        super().__init__(daemon=True)
        self.port, self.sessions, self.stop = port, sessions, stop
        self.acked = {sid: 0 for _, sid in sessions}
        self.events = []  # (time, ok)
        self.failed = 0
        self.failures = []  # (time, status, start of the answer)
        self.resent_and_found_applied = 0
        self.conn = None

    def post(self, path, body):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            self.conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            r = self.conn.getresponse()
            return r.status, r.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = None
            return 0, b""

    def run(self):
        while not self.stop.is_set():
            for i, sid in self.sessions:
                if self.stop.is_set():
                    return
                k = self.acked[sid]
                retried = False
                while True:
                    status, text = self.post(f"/v1/sessions/{sid}/step", {"x": row(i, k), "expected_step": k})
                    now = time.time()
                    if status == 200:
                        self.acked[sid] = k + 1
                        self.events.append((now, True))
                        break
                    if status == 409 and retried and f"is at step {k + 1} " in text.decode():
                        # the earlier try ran but its answer was lost: applied once
                        self.acked[sid] = k + 1
                        self.resent_and_found_applied += 1
                        self.events.append((now, True))
                        break
                    self.failed += 1
                    self.events.append((now, False))
                    self.failures.append((now, status, text[:160]))
                    retried = True
                    time.sleep(0.05)


def longest_outage(clients, start, end):
    """The longest time one client spent between a failure and its next success, for the
    failures that began in [start, end) (an outage may end after `end`)."""
    worst = 0.0
    for c in clients:
        down = None
        for t, ok in c.events:
            if not ok and down is None:
                down = t
            elif ok and down is not None:
                if start <= down < end:
                    worst = max(worst, t - down)
                down = None
    return worst


WORK = tempfile.mkdtemp(prefix="lstm-cluster-")


def main():
    cluster = Cluster(WORK)
    seeds = "redis://" + ",".join(f"127.0.0.1:{p}" for p in cluster.ports[:3])
    replicas = [Replica(f"r{k}", free_port(), seeds) for k in range(1, 4)]
    listen = free_port()
    proxy = nginx(WORK, listen, [r.port for r in replicas])
    try:
        # sessions made through nginx (spread by request id)
        conn = http.client.HTTPConnection("127.0.0.1", listen, timeout=10)
        ids = []
        for _ in range(SESSIONS):
            conn.request("POST", "/v1/sessions", "{}", {"Content-Type": "application/json"})
            r = conn.getresponse()
            made = json.loads(r.read())
            assert r.status == 201, made
            ids.append(made["session_id"])
        stop = threading.Event()
        clients = [Client(listen, [(i, ids[i]) for i in range(t, SESSIONS, THREADS)], stop) for t in range(THREADS)]
        began = time.time()
        for c in clients:
            c.start()
        faults = []
        time.sleep(SECONDS * 0.25)
        replicas[1].kill()
        faults.append(("kill -9 lstm-serve replica r2", time.time()))
        time.sleep(SECONDS * 0.25)
        victim = cluster.primaries()[0]
        heir = int(re.search(r"slave0:ip=[^,]*,port=(\d+)", cli(victim, "INFO", "replication")).group(1))
        cluster.kill(victim)
        killed = time.time()
        faults.append((f"kill -9 Redis primary :{victim}", killed))
        # how long Redis itself takes to fail over: until the victim's replica is a primary
        failover = None
        while time.time() - killed < SECONDS * 0.25 or failover is None and time.time() - killed < 60:
            if failover is None and "role:master" in cli(heir, "INFO", "replication"):
                failover = time.time() - killed
            time.sleep(0.1)
        replicas[1].start()
        faults.append(("restart r2", time.time()))
        time.sleep(SECONDS * 0.25)
        stop.set()
        for c in clients:
            c.join(timeout=30)
        ended = time.time()
        steps = sum(sum(c.acked.values()) for c in clients)
        failed = sum(c.failed for c in clients)
        found = sum(c.resent_and_found_applied for c in clients)
        print(f"load: {steps} steps acknowledged over {SESSIONS} sessions in {ended - began:.1f} s from {THREADS} threads, "
              f"{failed} failed requests (resent), {found} resends found already applied (409, counted once)")
        bounds = [t for _, t in faults] + [ended]
        print(f"Redis failover: {failover:.2f} s from kill -9 until its replica :{heir} was a primary")
        for (what, t), nxt in zip(faults, bounds[1:]):
            kinds = {}
            for c in clients:
                for when, status, _ in c.failures:
                    if t <= when < nxt:
                        kinds[status] = kinds.get(status, 0) + 1
            print(f"fault: {what}: longest unavailability {longest_outage(clients, t, nxt):.2f} s; failed answers by status {kinds}")
        if os.environ.get("CLUSTER_DEBUG"):
            for c in clients:
                for when, status, text in c.failures[:3]:
                    print(f"  {when - began:6.2f} s {status} {text!r}")
        cluster.wait_ok()

        # every session at its acknowledged step, its state a bit-exact replay
        acked = {sid: n for c in clients for sid, n in c.acked.items()}
        bad = 0
        with Server(MODELS, "--session-store", "memory", "--max-sessions", "1000000") as alone:
            for i, sid in enumerate(ids):
                conn.request("GET", f"/v1/sessions/{sid}/state")
                r = conn.getresponse()
                stored = json.loads(r.read())
                assert r.status == 200, stored
                n = acked[sid]
                ref = alone.session("temperature")
                if n:
                    status, _ = alone.call("POST", f"/v1/sessions/{ref}/step", {"xs": [row(i, k) for k in range(n)]})
                    assert status == 200
                _, replay = alone.call("GET", f"/v1/sessions/{ref}/state")
                if stored["step"] != n or stored["state"] != replay["state"]:
                    bad += 1
                    if bad <= 3:
                        print(f"FAIL session {sid}: stored step {stored['step']}, acknowledged {n}; states equal: {stored['state'] == replay['state']}")
        if bad:
            print(f"cluster: FAIL, {bad} of {SESSIONS} sessions differ from their acknowledged steps")
            sys.exit(1)
        print(f"ok   every one of the {steps} acknowledged steps is in Redis once: all {SESSIONS} sessions at their step, "
              f"bit-equal to a replay on a memory-store server")
        print("cluster: ok")
    finally:
        proxy.kill()
        for r in replicas:
            r.kill()
        cluster.stop()


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
