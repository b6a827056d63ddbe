#!/usr/bin/env bash
# The core benchmark: lstm-serve's Swift core, the same forward pass in C (gcc -O3
# -march=native -ffast-math) and ONNX Runtime (one thread), on one 2-layer LSTM (4 inputs,
# hidden 64 and 256, window 7), one after another. Prints µs and the ratios.
#   bench/run.sh [seconds per measurement]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-2}
out=bench/out
python3 -c 'import numpy, onnx, onnxruntime' 2>/dev/null || python3 -m pip install -q numpy onnx onnxruntime
python3 bench/make_models.py "$out" >/dev/null
swift build -c release --product lstm-bench >/dev/null
gcc -O3 -march=native -ffast-math -o "$out/lstm_bench_c" bench/lstm_bench.c -lm
field() { sed -n "s/.*$1=\([0-9.-]*\).*/\1/p"; }
printf '%-7s %-22s %10s %10s %10s %12s\n' hidden measure swift c onnxrt "swift/c, swift/ort"
for H in 64 256; do
  dir="$out/lstm_h$H"
  s=$(.build/release/lstm-bench "$dir" --window 7 --seconds "$secs")
  c=$("$out/lstm_bench_c" "$dir" 7 "$secs")
  o=$(python3 bench/ort_bench.py "$dir/model.onnx" 7 "$secs")
  for m in window_b1_us step_b1_us per_window_in_b64_us; do
    sv=$(echo "$s" | field $m); cv=$(echo "$c" | field $m); ov=$(echo "$o" | field $m)
    [ -z "$ov" ] && ov="-"
    ratio=$(python3 -c "s,c,o='$sv','$cv','$ov'; print(f'{float(s)/float(c):.2f}, ' + (f'{float(s)/float(o):.3f}' if o!='-' else '-'))")
    printf '%-7s %-22s %10s %10s %10s %12s\n' "$H" "$m" "$sv" "$cv" "$ov" "$ratio"
  done
  echo "        head0 (same model, same input): swift $(echo "$s" | field head0)  c $(echo "$c" | field head0)  ort $(echo "$o" | field head0)"
done
