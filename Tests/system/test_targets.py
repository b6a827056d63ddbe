"""The target graph, read from `swift package dump-package`: arrows point down, C stays behind its
wrapper, the session store knows no HTTP, JSON or C library, and every module a source file
imports is a declared dependency of its target (SwiftPM would let a target import any module
built before it)."""
import json
import re
import subprocess
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@lru_cache
def package():
    out = subprocess.run(["swift", "package", "dump-package"], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@lru_cache
def targets():
    """name -> (type, path, direct dependencies within the package)"""
    result = {}
    for t in package()["targets"]:
        deps = []
        for d in t.get("dependencies", []):
            kind, value = next(iter(d.items()))
            if kind in ("byName", "target"):
                deps.append(value[0])
        result[t["name"]] = (t["type"], t.get("path"), deps)
    return result


def closure(name):
    seen, todo = set(), [name]
    while todo:
        for d in targets()[todo.pop()][2]:
            if d in targets() and d not in seen:
                seen.add(d)
                todo.append(d)
    return seen


SYSTEM = {"CJansson": "JSON", "CMicroHTTPD": "HTTPServer", "CSQLite": "SQLite", "CHiredis": "Redis"}


def test_the_session_store_depends_on_no_http_json_c_library_or_model():
    assert closure("SessionStore") == {"Locking", "Hashing"}
    assert closure("SessionStoreSQLite") == {"SessionStore", "SQLite", "CSQLite", "Locking", "Hashing"}
    assert closure("SessionStoreRedis") == {"SessionStore", "Redis", "CHiredis", "Locking", "Hashing"}


def test_each_c_library_is_reached_through_its_one_wrapper():
    for c, wrapper in SYSTEM.items():
        users = {name for name, (_, _, deps) in targets().items() if c in deps}
        assert users == {wrapper}, f"{c} is used by {users}"


def test_nothing_below_the_service_knows_http():
    below = ["RecurrentCore", "ModelFormat", "ModelRuntime", "SessionStore", "SessionStoreSQLite", "SessionStoreRedis", "JSON", "SQLite", "Redis"]
    for name in below:
        assert "HTTPServer" not in closure(name) and "CMicroHTTPD" not in closure(name), name
    assert "JSON" not in closure("RecurrentCore")
    # the runtime reads model files (ModelFormat parses their JSON) but knows no wire format
    assert "JSON" not in targets()["ModelRuntime"][2]


def test_each_front_end_stands_alone_on_the_runtime_and_the_store():
    for front in ["NativeAPI", "OpenInference"]:
        reach = closure(front)
        assert {"FrontEnd", "ModelRuntime", "SessionStore", "HTTPServer", "JSON"} <= reach, front
        assert not reach & {"NativeAPI", "OpenInference", "LSTMService", "SessionStoreSQLite", "SQLite", "SessionStoreRedis", "Redis"}, front
    assert not closure("FrontEnd") & {"NativeAPI", "OpenInference", "LSTMService"}


def test_the_service_reaches_c_only_through_the_wrappers():
    service = targets()["LSTMService"][2]
    assert not set(service) & set(SYSTEM), service


def test_every_imported_package_module_is_a_declared_dependency():
    names = set(targets())
    problems = []
    for name, (kind, path, deps) in targets().items():
        if kind == "system":
            continue
        folder = ROOT / (path or ("Tests/" + name if kind == "test" else "Sources/" + name))
        for source in folder.rglob("*.swift"):
            for module in re.findall(r"^(?:@testable )?import (\w+)", source.read_text(), re.M):
                if module in names and module != name and module not in deps:
                    problems.append(f"{source.relative_to(ROOT)} imports {module}, not a dependency of {name}")
    assert not problems, "\n".join(problems)
