"""deploy/ checked offline: the Kubernetes manifests against the API's schemas
(kubernetes-validate, strict), the settings they and the compose file give lstm-serve against
the keys it declares, and the compose file's nginx config against the shared one."""
import json
import os
import re
import subprocess

import yaml

from live import BINARY, ROOT

DEPLOY = os.path.join(ROOT, "deploy")


def declared():
    out = subprocess.run([BINARY, "settings", "--json"], capture_output=True, text=True, check=True).stdout
    return {s["key"]: s for s in json.loads(out)}


def test_the_kubernetes_manifests_are_valid_resources():
    files = [os.path.join(DEPLOY, "kubernetes", f) for f in sorted(os.listdir(os.path.join(DEPLOY, "kubernetes")))]
    out = subprocess.run(["kubernetes-validate", "--strict", *files], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    kinds = {d["kind"] for f in files for d in yaml.safe_load_all(open(f)) if d}
    assert {"Deployment", "Service", "ConfigMap", "HorizontalPodAutoscaler", "PodDisruptionBudget", "StatefulSet"} <= kinds


def test_the_settings_deploy_gives_are_ones_lstm_serve_takes():
    keys = declared()
    manifests = list(yaml.safe_load_all(open(os.path.join(DEPLOY, "kubernetes", "lstm-serve.yaml"))))
    config = json.loads(next(d for d in manifests if d["kind"] == "ConfigMap")["data"]["lstm-serve.json"])
    assert set(config) <= set(keys), set(config) - set(keys)
    assert config["session_store"].startswith("redis://")
    deployment = next(d for d in manifests if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert {e["name"] for e in container["env"]} <= {s["env"] for s in keys.values()}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz" and container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    compose = yaml.safe_load(open(os.path.join(DEPLOY, "compose.yaml")))
    flags = {s["flag"] for s in keys.values()}
    for name, service in compose["services"].items():
        for dep in service.get("depends_on", []):
            assert dep in compose["services"], (name, dep)
        command = service.get("command", [])
        if command[:2] == ["lstm-serve", "serve"]:
            assert {a for a in command if a.startswith("--")} <= flags, command
            assert {e for e in service.get("environment", {})} <= {s["env"] for s in keys.values()}


def test_the_compose_nginx_config_is_the_shared_one_with_its_replicas():
    shared = open(os.path.join(DEPLOY, "nginx", "lstm-serve.conf")).read()
    compose = open(os.path.join(DEPLOY, "nginx", "compose.conf")).read()
    strip = lambda text: re.sub(r"    server \S+ [^\n]*\n", "", re.sub(r"^# [^\n]*\n", "", text, count=1) if text.startswith("# deploy") else text)
    assert strip(shared) == strip(compose)
    assert re.findall(r"server (lstm-\d):8080", compose) == ["lstm-1", "lstm-2", "lstm-3"]
