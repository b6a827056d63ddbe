#!/usr/bin/env python3
"""Chooses the forecaster's training settings on the 2014 validation year only (2015 is never
read here): trains each setting with three seeds and prints the mean 2014 MAE. The chosen
setting becomes train_temperature.py's defaults.

  python3 tools/search_temperature.py > search.txt
"""
import itertools
import re
import subprocess
import sys

GRID = {
    "--hidden": ["16", "32", "64"],
    "--layers": ["1", "2"],
    "--dropout": ["0.0", "0.3"],
    "--noise": ["0.1", "0.2"],
}
SEEDS = ["1", "2", "3"]


def run(args):
    out = subprocess.run([sys.executable, "tools/train_temperature.py", "--no-write"] + args,
                         capture_output=True, text=True).stdout
    m = re.search(r"2014 MAE temp_max ([\d.]+) temp_min ([\d.]+)", out)
    return float(m.group(1)), float(m.group(2))


def main():
    keys = list(GRID)
    results = []
    for values in itertools.product(*(GRID[k] for k in keys)):
        args = [x for kv in zip(keys, values) for x in kv]
        scores = [run(args + ["--seed", s]) for s in SEEDS]
        tmax = sum(s[0] for s in scores) / len(scores)
        tmin = sum(s[1] for s in scores) / len(scores)
        results.append((tmax + tmin, tmax, tmin, " ".join(args)))
        print(f"{' '.join(args):60s} 2014 MAE temp_max {tmax:.3f} temp_min {tmin:.3f}", flush=True)
    best = min(results)
    print(f"best on 2014: {best[3]} (temp_max {best[1]:.3f}, temp_min {best[2]:.3f})")


if __name__ == "__main__":
    main()
