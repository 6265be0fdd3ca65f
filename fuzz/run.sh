#!/usr/bin/env bash
# Builds and runs every fuzz target (README "Fuzzing").
#   bash fuzz/run.sh [SECONDS]   run each target for SECONDS (default 30), new inputs kept in
#                                fuzz/corpus/TARGET/ (only the committed seed-* files are tracked)
#   bash fuzz/run.sh 0           replay the committed corpus only (what CI does)
#   bash fuzz/run.sh --replay    the same
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Exits non-zero on the
# first target that crashes; libFuzzer leaves the input in fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-30}"
[ "$seconds" = --replay ] && seconds=0
case "$seconds" in
  '' | *[!0-9]*) echo "usage: $0 [SECONDS | --replay]" >&2; exit 2 ;;
esac

# A replay only checks that no committed input crashes: an unoptimised build without
# AddressSanitizer compiles in a fraction of the time of a fuzzing build.
flags=()
[ "$seconds" = 0 ] && flags=(--dev --sanitizer none)
nice -n 10 cargo +nightly fuzz build "${flags[@]}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
for target in $(cargo +nightly fuzz list); do
  corpus="corpus/$target"
  mkdir -p "$corpus"
  if [ "$seconds" = 0 ]; then
    echo "== $target: replaying $corpus"
    # -runs=0 with inputs given runs each of them once; -timeout: any one input over 10 s hangs.
    args=("$corpus"/seed-* -- -runs=0 -timeout=10)
  else
    echo "== $target: fuzzing for ${seconds}s"
    # -max_len: connection files and keys are a few KB.
    args=("$corpus" -- -max_total_time="$seconds" -max_len=16384 -timeout=10 -rss_limit_mb=1024)
  fi
  if cargo +nightly fuzz run "${flags[@]}" "$target" "${args[@]}" >"$log" 2>&1; then
    grep -E '^(Executed|Done|#[0-9]+ +DONE)' "$log" | tail -n 1 || true
  else
    tail -n 40 "$log"
    echo "fuzz/run.sh: $target failed (the input is in fuzz/artifacts/$target/)" >&2
    exit 1
  fi
done
