#!/usr/bin/env python3
"""Copies the shared golden cases into Tests/Fixtures/golden and exports each one, and each
whole-model case of Tests/Fixtures/pipelines, through
export_model.py, into a model directory under Tests/Fixtures/models/<case>: Keras cases from
their .keras file, ONNX cases from their .onnx file, PyTorch cases from their state_dict.

  python3 tools/make_fixtures.py [--golden ../shared/golden]
"""
import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_model  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def export_case(case_dir, out_dir):
    case = json.load(open(os.path.join(case_dir, "case.json")))
    head = case.get("head") or {}
    acts = [head.get("activation", "none")] if head else None
    if case["name"].startswith("keras_"):
        source = os.path.join(case_dir, case["keras_file"])
        return export_model.export(source, out_dir, name=case["name"])
    if case["name"].startswith("onnx_"):
        return export_model.export(os.path.join(case_dir, case["onnx"]["file"]), out_dir, name=case["name"])
    return export_model.export(os.path.join(case_dir, "model.safetensors"), out_dir, name=case["name"],
                               cell=case["cell"], head_activations=acts)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--golden", default=os.path.join(ROOT, "..", "shared", "golden"))
    p.add_argument("--skip-copy", action="store_true", help="only re-export from Tests/Fixtures/golden")
    a = p.parse_args()
    golden = os.path.join(ROOT, "Tests", "Fixtures", "golden")
    if not a.skip_copy:
        shutil.rmtree(golden, ignore_errors=True)
        shutil.copytree(a.golden, golden)
        for d, _, files in os.walk(golden):
            os.chmod(d, 0o755)
            for f in files:
                os.chmod(os.path.join(d, f), 0o644)
    models = os.path.join(ROOT, "Tests", "Fixtures", "models")
    for name in sorted(os.listdir(golden)):
        case_dir = os.path.join(golden, name)
        if os.path.isdir(case_dir):
            export_case(case_dir, os.path.join(models, name))
            print("exported", name)
    # the project's whole-model cases (tools/generate_golden.py --pipelines), from the user's file
    pipelines = os.path.join(ROOT, "Tests", "Fixtures", "pipelines")
    for name in sorted(os.listdir(pipelines)):
        case = json.load(open(os.path.join(pipelines, name, "case.json")))
        extra = json.load(open(os.path.join(pipelines, name, case["config"]))) if case.get("config") else None
        export_model.export(os.path.join(pipelines, name, case["source"]), os.path.join(models, name), name=name, extra=extra)
        print("exported", name)


if __name__ == "__main__":
    main()
