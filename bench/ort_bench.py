#!/usr/bin/env python3
"""ONNX Runtime (one thread) on the same model and inputs: µs per window at batch 1 and 64."""
import sys
import time

import numpy as np
import onnxruntime as ort


def inputs(n):
    s, out = 42, []
    for _ in range(n):
        s = (s * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        out.append((s >> 40) / float(1 << 24) * 2 - 1)
    return np.array(out, dtype=np.float32)


def measure(fn, seconds):
    for _ in range(50):
        fn()
    calls = 1
    while True:
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        if time.perf_counter() - t > seconds / 5:
            break
        calls *= 2
    rounds = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        rounds.append((time.perf_counter() - t) * 1e6 / calls)
    return sorted(rounds)[2]


def main():
    path, T = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 7
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 2
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    x64 = inputs(64 * T * 4).reshape(64, T, 4)
    x1 = x64[:1].copy()
    head0 = sess.run(None, {"x": x1})[0][0, 0]
    w = measure(lambda: sess.run(None, {"x": x1}), seconds)
    b = measure(lambda: sess.run(None, {"x": x64}), seconds)
    print(f"ort window_b1_us={w:.2f} window_b64_us={b:.2f} per_window_in_b64_us={b / 64:.3f} head0={head0:.7f}")


if __name__ == "__main__":
    main()
