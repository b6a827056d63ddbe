# Sourced by the side-by-side load scripts: their arguments ([seconds per run] [connections],
# ROUNDS), wrk, a fresh release build, and the median and field helpers for their tables.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
conns=${2:-32}
rounds=${ROUNDS:-3}
out=bench/out
mkdir -p "$out"
command -v wrk >/dev/null || scripts/setup.sh --test
scripts/build.sh >/dev/null
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
field() { tr ' ' '\n' | grep . | cut -d/ -f"$1" | tr '\n' ' '; }
