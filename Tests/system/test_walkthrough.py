"""docs/bring-your-own-model.md runs as written: every `$ ` line of its console blocks, in order,
in a fresh directory holding tools/ and examples/, with the release lstm-serve on the PATH, and
each prints what the page shows under it. In the page, `…` stands for any text within a line;
a command ending in `&` is a server, started in the background and waited for; port 8080 is
replaced by a free one."""
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request

from live import BINARY, ROOT

PAGE = os.path.join(ROOT, "docs", "bring-your-own-model.md")


def steps(text):
    """(command, expected output lines) for each `$ ` line of the page's console blocks."""
    out, block = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            block = line.strip() == "```console"
            continue
        if not block:
            continue
        if line.startswith("$ "):
            out.append((line[2:], []))
        elif out:
            out[-1][1].append(line)
    return out


def matches(expected, got):
    pattern = "\n".join(re.escape(line.rstrip()).replace(re.escape("…"), ".*?") for line in expected)
    return re.fullmatch(pattern, "\n".join(line.rstrip() for line in got)) is not None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_walkthrough_prints_what_the_page_shows(tmp_path):
    for d in ("tools", "examples"):
        os.symlink(os.path.join(ROOT, d), tmp_path / d)
    env = dict(os.environ, PATH=os.path.dirname(BINARY) + os.pathsep + os.environ["PATH"], LSTM_SERVE_BINARY=BINARY)
    port = str(free_port())
    servers = []
    try:
        todo = steps(open(PAGE).read())
        assert len(todo) >= 8, "the page lost its commands"
        for command, expected in todo:
            command = command.replace("8080", port)
            if command.endswith("&"):
                servers.append(subprocess.Popen(command[:-1], shell=True, cwd=tmp_path, env=env,
                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
                wait_ready(port, servers[-1])
                continue
            run = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
            got = (run.stdout + run.stderr).rstrip("\n").splitlines()
            expected = [line.replace("8080", port) for line in expected]
            assert matches(expected, got), f"$ {command}\nexpected:\n" + "\n".join(expected) + "\ngot:\n" + "\n".join(got)
    finally:
        for s in servers:
            if s.poll() is None:
                os.killpg(s.pid, 15)
            s.wait(timeout=20)
        shutil.rmtree(tmp_path / "models", ignore_errors=True)


def wait_ready(port, proc):
    deadline = time.time() + 30
    while time.time() < deadline and proc.poll() is None:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1).status == 200:
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"the server of the walkthrough did not become ready (exit {proc.poll()})")
