#!/usr/bin/env bash
# Runs every cargo-fuzz target under fuzz/ for SECONDS each (default 300), JOBS at a time (default 2),
# and prints the executions per target. Not run by CI (it needs nightly and minutes); run it by hand
# after touching a parser:  bash scripts/fuzz.sh 300
# New inputs go to a scratch corpus under fuzz/target/; the committed seeds in fuzz/corpus/ stay small.
# A crash leaves its input in fuzz/artifacts/<target>/: add it to tests/regression.rs.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${1:-300}"
jobs="${2:-2}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cargo +nightly fuzz build

run() {
  local target="$1" scratch="target/corpus-work/$1"
  mkdir -p "$scratch"
  cargo +nightly fuzz run "$target" "$scratch" "corpus/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 >"target/fuzz-$target.log" 2>&1 \
    && echo "$target: ok" || echo "$target: FAILED (see fuzz/target/fuzz-$target.log)"
}

targets=$(cargo +nightly fuzz list)
running=0
for t in $targets; do
  run "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait

for t in $targets; do
  printf '%-14s %s\n' "$t" "$(grep -E '^Done [0-9]+ runs' "target/fuzz-$t.log" || echo 'no summary')"
done
