#!/usr/bin/env python3
"""libmicrohttpd's epoll loop waits again, with its full timeout, after an epoll_wait that filled
its 128 event slots: a worker handed exactly 128 * k events at once sits on them until something
else happens. The server's reaper sees that and wakes the workers. This script makes it happen on
purpose: it stops the server, lets n clients send a request (or hang up) together, resumes it, and
requires every answer (or every close) within 2 s. n = 127 is the control.

Usage: Tests/system/stall.py BINARY"""
import os, re, signal, socket, subprocess, sys, time

binary = sys.argv[1]
body = open(os.path.join(os.path.dirname(__file__), "..", "..", "examples", "week.json"), "rb").read()
request = (b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\n\r\n" % len(body)) + body


def start():
    p = subprocess.Popen([binary, "serve", "--port", "0", "--threads", "1", "--log-level", "warning"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in p.stdout:
        m = re.search(r"listening on https?://[^ ]*:(\d+)", line)
        if m:
            return p, int(m.group(1))
    sys.exit("stall: the server did not start")


def fds(p):
    return len(os.listdir(f"/proc/{p.pid}/fd"))


def round_(n, mode):
    p, port = start()
    try:
        time.sleep(0.3)
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
        time.sleep(0.3)
        before = fds(p)
        os.kill(p.pid, signal.SIGSTOP)
        time.sleep(0.2)
        for s in socks:
            s.close() if mode == "hang up" else s.sendall(request)
        time.sleep(0.2)
        os.kill(p.pid, signal.SIGCONT)
        t0 = time.time()
        if mode == "hang up":
            while fds(p) > before - n and time.time() - t0 < 2:
                time.sleep(0.01)
            ok, what = fds(p) <= before - n, f"fds {before} -> {fds(p)}"
        else:
            answered = 0
            for s in socks:
                s.settimeout(max(0.01, 2 - (time.time() - t0)))
                try:
                    answered += s.recv(64).startswith(b"HTTP/1.1 200")
                except OSError:
                    pass
            ok, what = answered == n, f"{answered}/{n} answered"
        print(f"{'ok  ' if ok else 'FAIL'} {n} clients {mode} together: {what} in {time.time() - t0:.2f} s")
        return ok
    finally:
        p.kill()
        p.wait()


results = [round_(n, mode) for n in (127, 128, 256) for mode in ("send a request", "hang up")]
print(f"stall: {sum(results)} passed, {len(results) - sum(results)} failed")
sys.exit(0 if all(results) else 1)
