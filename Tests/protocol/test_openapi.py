"""schemathesis (PyPI) against the served /openapi.json: generated requests on every
operation, and no answer may be a 5xx, carry an undocumented status or content type, or break
its schema. Bounded for CI; run longer with SCHEMATHESIS_SECONDS=600 (README)."""
import json
import os
import shutil
import subprocess
import sys
import urllib.request

from conftest import ROOT


def test_the_served_document_is_the_checked_in_one(server):
    with urllib.request.urlopen(f"http://{server}/openapi.json") as r:
        served = json.loads(r.read())
    assert served == json.load(open(os.path.join(ROOT, "Sources", "LSTMService", "openapi.json")))


def test_schemathesis_finds_no_server_error_and_no_answer_off_the_schema(server):
    seconds = os.environ.get("SCHEMATHESIS_SECONDS", "75")
    st = shutil.which("schemathesis") or shutil.which("st")
    command = [st] if st else [sys.executable, "-m", "schemathesis.cli"]
    run = subprocess.run(command + ["run", f"http://{server}/openapi.json",
                                    "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
                                    "--max-time", seconds, "--max-examples", "40", "--seed", "1"],
                         capture_output=True, text=True, timeout=int(seconds) + 240)
    summary = run.stdout[run.stdout.rfind("SUMMARY"):]
    print(summary)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "generated" in summary and "failed" not in summary.split("Test cases:")[-1].split("\n")[1]
