#!/usr/bin/env python3
"""Checks the conformance suite itself: breaks each promise of the session drivers on purpose,
one at a time, and shows that the suite then fails (and which of its tests catch it).

    python3 Tests/system/store_sabotage.py [name ...]

Each sabotage is a small edit to the sources; the file is put back after its run whatever
happens. It needs a clean work tree (it refuses otherwise) and takes about a minute per
sabotage (an incremental debug build), so it is run by hand, not in CI.
"""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STORE = "Sources/SessionStore/"
SQLITE = "Sources/SessionStoreSQLite/"

# name: (promise, file, text, replacement)
SABOTAGES = {
    "ordering": ("steps on one session are strictly ordered", STORE + "ShardExecutor.swift",
                 "guard !s.busy else { return false }\n            s.busy = true\n            s.owner",
                 "s.busy = true\n            s.owner"),
    "expected-step": ("expected_step means the same everywhere", STORE + "SessionShard.swift",
                      "if let expected = request.expectedStep, expected != current {",
                      "if let expected = request.expectedStep, expected != current, false {"),
    "step-not-stored": ("an acknowledged step is stored", SQLITE + "SessionJournal.swift",
                        "append(.step(id: id, record: StepLog.stepRecord(id: id, step: step, lastUsed: lastUsed, state: state)), driven: true)",
                        "nil"),
    "delete-not-stored": ("an acknowledged delete is stored", SQLITE + "SessionJournal.swift",
                          "func delete(_ id: String, wait: Bool) -> StoreTicket? { append(.delete(id), wait: wait) }",
                          "func delete(_ id: String, wait: Bool) -> StoreTicket? { nil }"),
    "ttl": ("a session idle longer than the TTL is gone", STORE + "SessionShard.swift",
            "if now - table[slot].lastUsed <= ttl { return .success(slot) }",
            "if now - table[slot].lastUsed <= 2 * ttl { return .success(slot) }"),
    "capacity": ("the store holds at most max_sessions", STORE + "MemoryDriver.swift",
                 "if c >= maxSessions {", "if c > maxSessions {"),
    "eviction": ("a full store evicts the least recently used", STORE + "MemoryDriver.swift",
                 "o.lastUsed < best!.2", "o.lastUsed > best!.2"),
    "refused-changes": ("a refused step changes nothing", STORE + "SessionShard.swift",
                        "        guard let outputs = v.stepper.step(request.rows, state: state) else {\n",
                        "        guard let outputs = v.stepper.step(request.rows, state: state) else {\n            table[i].step = current + count\n"),
    "import": ("an imported state is the session's state", STORE + "SessionShard.swift",
               "version(target).block.pointer(table[slot].row).update(from: state, count: state.count)", "_ = target"),
    "pinning": ("a session steps on its own version", STORE + "SessionShard.swift",
                "guard model === request.readFor || model.readsInput(like: request.readFor) else",
                "guard true else"),
    "layout": ("a session moves only to a version of its layout", STORE + "SessionShard.swift",
               "guard s.stateLayout == model.stateLayout else", "guard s.stateLayout == model.stateLayout || true else"),
    "fingerprint": ("a stored session comes back only onto its very files", STORE + "MemoryDriver.swift",
                    "guard row.fingerprint.isEmpty || row.fingerprint == model.fingerprint else",
                    "guard true else"),
    "closed": ("a closed store takes no change", STORE + "MemoryDriver.swift",
               "if count.closed.load(ordering: .relaxed) { throw Self.closedError }", ""),
}


def run(name):
    promise, path, text, replacement = SABOTAGES[name]
    file = ROOT / path
    original = file.read_text()
    if original.count(text) != 1:
        return f"{name}: the text to break is not in {path} once; update this script"
    try:
        file.write_text(original.replace(text, replacement))
        out = subprocess.run(["swift", "test", "--filter", "ConformanceTests"], cwd=ROOT, capture_output=True, text=True)
    finally:
        file.write_text(original)
    log = out.stdout + out.stderr
    if "error:" in log and "Test run" not in log:
        return f"{name}: did not build:\n{log[-2000:]}"
    failed = sorted(set(re.findall(r"✘ Test (\w+)\(", log)))
    crash = re.search(r"exited with unexpected signal code \d+", log)
    if out.returncode == 0:
        return f"MISSED  {name} ({promise}): every test passed"
    how = ", ".join(failed) if failed else f"the suite stopped ({crash.group(0) if crash else 'exit ' + str(out.returncode)})"
    return f"caught  {name} ({promise}): {how}"


def main():
    if subprocess.run(["git", "diff", "--quiet", "--", "Sources"], cwd=ROOT).returncode != 0:
        sys.exit("sabotage: Sources has uncommitted changes; commit or stash them first")
    names = sys.argv[1:] or list(SABOTAGES)
    results = [run(n) for n in names]
    print("\n".join(results))
    sys.exit(0 if all(r.startswith("caught") for r in results) else 1)


if __name__ == "__main__":
    main()
