#!/usr/bin/env bash
# Benchmarks for issue 6 (not part of CI): builds the release binary, then bench/bench.py runs
# every figure against its baseline on loopback and prints a table + writes bench/results/*.json.
# Needs curl; uses hyperfine when installed (apt-get install hyperfine).
# BENCH_QUICK=1 bench/run.sh: a short smoke run.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
exec python3 bench/bench.py "$@"
