#!/usr/bin/env bash
# Set-up time from cold, as a newcomer meets it: a fresh clone, an empty CARGO_HOME (every crate
# downloaded from crates.io and built) and an empty target/, timing
#   1. `cargo run --release -- --format json >/dev/null`, then
#   2. `cargo test`, in a second fresh clone with its own empty CARGO_HOME (cold too, not warmed by 1).
# Only the Rust toolchain itself (RUSTUP_HOME) is shared. Not run by CI: it downloads and builds
# everything twice. Run it on an idle machine; it prints the core count and load it ran under.
#
#   bash scripts/setup-times.sh [COMMIT]     # default HEAD; measures the commit, not the work tree
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
commit=$(git -C "$repo" rev-parse "${1:-HEAD}")
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
  echo "note: uncommitted changes are not measured (commit $commit is)" >&2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A fresh clone at $commit with an empty CARGO_HOME, in $work/$1.
fresh() {
  git clone -q --no-local "$repo" "$work/$1"
  git -C "$work/$1" checkout -q --detach "$commit"
  mkdir "$work/$1.cargo-home"
}

# Runs "$@" in the clone $1 with its own CARGO_HOME and target/, and no compiler cache; prints the
# wall time in seconds on fd 3.
timed() {
  local dir=$work/$1
  shift
  local start end status=0
  start=$(date +%s.%N)
  (
    cd "$dir"
    env -u RUSTC_WRAPPER -u CARGO_BUILD_RUSTC_WRAPPER -u CARGO_TARGET_DIR \
      -u CARGO_BUILD_TARGET_DIR -u RUSTFLAGS CARGO_HOME="$dir.cargo-home" "$@"
  ) || status=$?
  end=$(date +%s.%N)
  awk -v s="$start" -v e="$end" -v st="$status" \
    'BEGIN { printf "%.1f s%s\n", e - s, (st == 0 ? "" : " (FAILED, exit " st ")") }' >&3
}

printf 'commit %s, %s cores, load average before: %s\n' \
  "$commit" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"

fresh run
run_time=$(timed run sh -c 'cargo run --release -- --format json >/dev/null' 3>&1 >&2)
fresh test
test_time=$(timed test cargo test 3>&1 >&2)

printf '\ncold (fresh clone, empty CARGO_HOME, empty target/), commit %s:\n' "$commit"
printf '  cargo run --release -- --format json   %s\n' "$run_time"
printf '  cargo test                              %s\n' "$test_time"
