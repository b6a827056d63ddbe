#!/usr/bin/env bash
# libFuzzer targets (fuzz/): safetensors and the model loader, the server's config file, and
# request decoding (predict, step, state import, session create), built with
# -sanitize=fuzzer,address. First every committed crash input (fuzz/regressions/TARGET) is run
# again; then each target fuzzes from the committed corpus (fuzz/corpus/TARGET) for SECONDS, or
# for RUNS executions with --runs. New inputs go to a scratch directory, not the repository; a
# crash fails the script and names the input to commit under fuzz/regressions.
#   Tests/system/fuzz-targets.sh [SECONDS]          # CI: 60
#   Tests/system/fuzz-targets.sh --runs 10000000    # the long run
set -euo pipefail
cd "$(dirname "$0")/../.."
limit="-max_total_time=${1:-60}"
[ "${1:-}" = "--runs" ] && limit="-runs=$2"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# lld: gold fails with an internal error linking the sanitizer runtimes
swift build -c release --package-path fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld \
  >"$scratch/build.log" 2>&1 || { cat "$scratch/build.log"; echo "fuzz-targets: the build failed"; exit 1; }
bin=fuzz/.build/release
# The service keeps pools and arenas on purpose, so LeakSanitizer's per-input check is off.
# A fixed seed and Swift's deterministic hashing make a run repeat the inputs of the last one
# on the same machine (FUZZ_SEED=0 picks a new seed each time).
export LSTM_SERVE_FUZZ_MODELS=models ASAN_OPTIONS=detect_leaks=0 SWIFT_DETERMINISTIC_HASHING=1
fails=0
passes=0
for target in safetensors config request; do
  regressions=(fuzz/regressions/$target/*)
  if [ -e "${regressions[0]}" ]; then
    if "$bin/fuzz-$target" "${regressions[@]}" >"$scratch/$target.replay" 2>&1; then
      echo "ok   fuzz-$target replays ${#regressions[@]} committed crash inputs"; passes=$((passes + 1))
    else
      echo "FAIL fuzz-$target on a committed crash input"; tail -30 "$scratch/$target.replay"; fails=$((fails + 1))
    fi
  fi
  mkdir -p "$scratch/$target"
  if "$bin/fuzz-$target" "$limit" -seed="${FUZZ_SEED:-1}" -detect_leaks=0 -artifact_prefix="$scratch/$target-" -print_final_stats=1 \
      "$scratch/$target" "fuzz/corpus/$target" >"$scratch/$target.log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$scratch/$target.log")
    cov=$(grep -o 'cov: [0-9]*' "$scratch/$target.log" | tail -1)
    echo "ok   fuzz-$target: $runs executions, $cov, no crash"; passes=$((passes + 1))
  else
    echo "FAIL fuzz-$target found a crash:"; grep -E 'ERROR|Fatal|Precondition|SUMMARY|Test unit written' "$scratch/$target.log" | head -10
    for crash in "$scratch/$target"-*; do [ -e "$crash" ] && cp "$crash" "fuzz/regressions/$target/" && echo "     kept as fuzz/regressions/$target/$(basename "$crash")"; done
    fails=$((fails + 1))
  fi
done
echo "fuzz-targets: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
