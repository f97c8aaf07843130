#!/usr/bin/env bash
# docs/PERFORMANCE.md and docs/perf/*.png from bench/results/ (bench/report.py).
#
#   bench/report.sh [--results DIR] [--out DIR]
#
# Run the benchmarks first (bench/README.md, "Regenerating docs/PERFORMANCE.md");
# a benchmark with no result file gets a "not measured yet" section.  Needs
# Debian's python3-matplotlib (bench/run.sh installs it).
set -euo pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
exec "$PY" "$BENCH/report.py" "$@"
