#!/usr/bin/env bash
# Time to first demo (issue 16): a cold `cargo build --release` of a baseline commit and of the
# working tree, one after the other in this one run, each in a fresh target directory with the
# crates already downloaded (`cargo fetch`), so that only compilation is timed. Prints wall time,
# CPU-seconds (user + sys), units, the slowest units, and the ratios HEAD / baseline.
#
#   bench/build_time.sh [BASELINE_REV]     (default: 4fa8f90, the last commit before the cuts)
#
# Run it on an idle machine: wall time on a busy one measures the neighbours. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
baseline=${1:-4fa8f90}
work=$(mktemp -d)
trap 'git worktree remove --force "$work/baseline" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git worktree add -q --detach "$work/baseline" "$baseline"

measure() { # NAME DIR
  local name=$1 dir=$2
  (cd "$dir" && cargo fetch --locked -q)
  local start end
  start=$(date +%s.%N)
  /usr/bin/time -f '%U %S' -o "$work/$name.cpu" \
    env CARGO_TARGET_DIR="$work/$name-target" cargo build --release --locked -q --timings \
    --manifest-path "$dir/Cargo.toml"
  end=$(date +%s.%N)
  echo "$start $end" >"$work/$name.wall"
  cp "$work/$name-target/cargo-timings/cargo-timing.html" "$work/$name.html"
  rm -rf "$work/$name-target"
}

measure baseline "$work/baseline"
measure head "$PWD"

python3 - "$work" "$baseline" <<'EOF'
import json, re, sys
work, baseline = sys.argv[1], sys.argv[2]
fig = {}
for name in ("baseline", "head"):
    start, end = map(float, open(f"{work}/{name}.wall").read().split())
    user, sys_ = map(float, open(f"{work}/{name}.cpu").read().split())
    html = open(f"{work}/{name}.html").read()
    units = json.loads(re.search(r"UNIT_DATA = (\[.*?\]);", html, re.S).group(1))
    fig[name] = dict(wall=end - start, cpu=user + sys_, units=len(units),
                     top=sorted(units, key=lambda u: -u["duration"])[:8])
b, h = fig["baseline"], fig["head"]
print(f"| figure | baseline {baseline} | HEAD | HEAD / baseline |")
print("|---|---|---|---|")
print(f"| wall time, cold release build | {b['wall']:.0f} s | {h['wall']:.0f} s | {h['wall']/b['wall']:.2f} |")
print(f"| CPU-seconds (user + sys) | {b['cpu']:.0f} | {h['cpu']:.0f} | {h['cpu']/b['cpu']:.2f} |")
print(f"| compilation units | {b['units']} | {h['units']} | {h['units']/b['units']:.2f} |")
for name in ("baseline", "head"):
    print(f"\nslowest units ({name}): " + ", ".join(
        f"{u['name']} {u['duration']:.0f} s" for u in fig[name]["top"]))
EOF
