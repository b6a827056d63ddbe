"""The release server on a free loopback port, serving the shipped models, for the protocol
tests (tritonclient, schemathesis). LSTM_SERVE_BINARY picks the binary (default: the one
scripts/build.sh installs)."""
import os
import re
import subprocess
import tempfile
import time
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def start(*extra):
    binary = os.environ.get("LSTM_SERVE_BINARY", os.path.join(ROOT, ".build", "install", "lstm-serve"))
    log = tempfile.NamedTemporaryFile("w+", delete=False)
    proc = subprocess.Popen([binary, "serve", "--port", "0", "--models-directory", os.path.join(ROOT, "models"),
                             "--log-level", "warning", *extra], stdout=log, stderr=log, cwd=ROOT)
    deadline = time.time() + 60
    while time.time() < deadline:
        m = re.search(r"listening on http://(\S+)", open(log.name).read())
        if m:
            base = m.group(1)
            try:
                if urllib.request.urlopen(f"http://{base}/readyz", timeout=1).status == 200:
                    return proc, base
            except Exception:
                pass
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("server did not start: " + open(log.name).read())


@pytest.fixture(scope="session")
def server():
    proc, base = start("--session-ttl-seconds", "600")
    yield base
    proc.terminate()
    proc.wait(timeout=20)
