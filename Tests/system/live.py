"""The release server on a free loopback port, for the system tests. LSTM_SERVE_BINARY picks
the binary (default: the one scripts/build.sh installs)."""
import json
import os
import re
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.path.abspath(os.environ.get("LSTM_SERVE_BINARY", os.path.join(ROOT, ".build", "install", "lstm-serve")))


class Server:
    def __init__(self, models, *extra):
        self.log = tempfile.NamedTemporaryFile("w+", delete=False)
        self.proc = subprocess.Popen([BINARY, "serve", "--port", "0", "--models-directory", models, "--log-level", "warning", *extra],
                                     stdout=self.log, stderr=self.log, cwd=ROOT)
        self.base = None
        deadline = time.time() + 60
        while time.time() < deadline and self.proc.poll() is None:
            m = re.search(r"listening on (http://\S+)", open(self.log.name).read())
            if m:
                self.base = m.group(1)
                if self.alive():
                    return
            time.sleep(0.05)
        self.proc.kill()
        raise RuntimeError("server did not start: " + open(self.log.name).read())

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.proc.terminate()
        self.proc.wait(timeout=20)
        os.unlink(self.log.name)

    def alive(self):
        try:
            return self.proc.poll() is None and urllib.request.urlopen(self.base + "/readyz", timeout=2).status == 200
        except (OSError, urllib.error.URLError):
            return False

    def call(self, method, path, body=None):
        """(status, parsed answer) of one request; a dead server or a 5xx fails here."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, text = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read()
        assert status < 500, f"{method} {path}: {status} {text[:300]!r}\n{open(self.log.name).read()[-2000:]}"
        return status, json.loads(text) if text else None

    def session(self, model, state=None):
        status, made = self.call("POST", "/v1/sessions", {"model": model} | ({"state": state} if state else {}))
        assert status == 201, made
        return made["session_id"]
