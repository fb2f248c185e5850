#!/usr/bin/env bash
# Whole-process benchmark for issue 6: what one `hostprint --format json` costs a node, measured
# against the tools it replaces, in one run on one machine, and checked against the issue's targets.
#
#   scripts/bench.sh [--strict] [--quick]
#
# Measures (hyperfine for time, GNU time for peak RSS):
#   1. hostprint (static release build, and the plain dynamic `cargo build --release` for comparison),
#      systemd-detect-virt and `cat /etc/os-release`, all in ONE hyperfine invocation, so the ratios
#      share the machine's state;
#   2. peak RSS of each;
#   3. hostprint with 500 generated user fingerprints (`--fingerprints DIR`) against none;
#   4. hostprint with 5,000 extra sleeping processes against without (they are started here, and
#      killed by their PIDs on exit, whatever happens).
# Then prints a table and PASS/FAIL per target. Exits non-zero on a failed target only with --strict:
# the development machine is a shared 2-core box, so this is not a CI gate (hence not ci-*.sh).
# Ratios use medians, which a neighbour's burst of work moves less than means.
# Tunables: BENCH_RUNS (default 500), BENCH_WARMUP (50), BENCH_PROCS (5000).
set -euo pipefail
cd "$(dirname "$0")/.."

strict=0
runs=${BENCH_RUNS:-500}
warmup=${BENCH_WARMUP:-50}
procs=${BENCH_PROCS:-5000}
for arg in "$@"; do
  case "$arg" in
    --strict) strict=1 ;;
    --quick) runs=100; warmup=20 ;;
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
  esac
done

# ---- tools ------------------------------------------------------------------------------------------
apt_install() {
  echo "bench.sh: installing $1 with apt-get" >&2
  apt-get install -y -qq "$1" >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq "$1" >/dev/null; }
}
command -v hyperfine >/dev/null || apt_install hyperfine
[ -x /usr/bin/time ] || apt_install time
sdv=$(command -v systemd-detect-virt || true)

# ---- builds -----------------------------------------------------------------------------------------
# The static build is the release artifact (see README "Performance"): glibc linked in, no dynamic
# loader at start-up. crt-static needs an explicit --target, or proc-macro crates would be built
# static too (which rustc refuses), so it gets its own target directory under target/<triple>/.
host=$(rustc -vV | sed -n 's/^host: //p')
echo "bench.sh: building (release, dynamic and static)" >&2
cargo build --release --quiet --bin hostprint --example synthetic_fingerprints
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
  cargo build --release --quiet --bin hostprint --target "$host"
static_bin="target/$host/release/hostprint"
dynamic_bin="target/release/hostprint"

work=$(mktemp -d)
pids=()
cleanup() {
  if [ "${#pids[@]}" -gt 0 ]; then
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# Absolute paths, so that hyperfine's -N (no shell) runs exactly these binaries.
static_bin=$(realpath "$static_bin")
dynamic_bin=$(realpath "$dynamic_bin")
hp="$static_bin --format json"

# hyperfine NAME ARGS... : one hyperfine invocation, results in $work/NAME.csv.
bench() {
  local name=$1
  shift
  # hyperfine's "statistical outliers" warnings are expected on a shared machine (medians are used
  # for that reason); its messages are shown only when it fails.
  hyperfine -N -i --style none --warmup "$warmup" --runs "$runs" \
    --export-csv "$work/$name.csv" "$@" >/dev/null 2>"$work/$name.err" || {
    cat "$work/$name.err" >&2
    exit 1
  }
}
# field CSV ROW COLUMN: a number from hyperfine's CSV (row 1 = first command; seconds).
field() {
  awk -F, -v row="$2" -v col="$3" '
    NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
    NR == row + 1 { print $c }' "$1"
}
ms() { awk -v s="$1" 'BEGIN { printf "%.3f", s * 1000 }'; }
# peak RSS in KiB of a command (GNU time's "maximum resident set size"): the largest of 5 runs.
peak_rss() {
  local max=0 kb
  for _ in 1 2 3 4 5; do
    /usr/bin/time -o "$work/rss" -f '%M' "$@" >/dev/null 2>&1 || true
    kb=$(tail -1 "$work/rss")
    [ "$kb" -gt "$max" ] && max=$kb
  done
  echo "$max"
}

# ---- 1. the comparison, in one run ------------------------------------------------------------------
echo "bench.sh: hostprint vs systemd-detect-virt vs cat ($runs runs each)" >&2
cmds=("$hp" "$dynamic_bin --format json" "cat /etc/os-release")
[ -n "$sdv" ] && cmds+=("$sdv")
bench compare "${cmds[@]}"

# ---- 2. peak RSS ------------------------------------------------------------------------------------
rss_static=$(peak_rss "$static_bin" --format json)
rss_dynamic=$(peak_rss "$dynamic_bin" --format json)
rss_cat=$(peak_rss cat /etc/os-release)
rss_sdv=""
[ -n "$sdv" ] && rss_sdv=$(peak_rss "$sdv")

# ---- 3. 500 user fingerprints -----------------------------------------------------------------------
echo "bench.sh: 500 generated user fingerprints vs none" >&2
target/release/examples/synthetic_fingerprints "$work/fingerprints" 500
bench fingerprints "$hp" "$hp --fingerprints $work/fingerprints"

# ---- 4. 5,000 extra processes -----------------------------------------------------------------------
echo "bench.sh: hostprint without, then with $procs extra sleeping processes" >&2
bench without "$hp"
for ((i = 0; i < procs; i++)); do
  sleep 600 &
  pids+=($!)
done
bench with "$hp"
started=${#pids[@]}
kill "${pids[@]}" 2>/dev/null || true
wait "${pids[@]}" 2>/dev/null || true
pids=()

# ---- report -----------------------------------------------------------------------------------------
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo
echo "hostprint whole-process benchmark — $(date -u +%Y-%m-%d), nproc $(nproc), CPU \"$cpu\", kernel $(uname -r)"
echo "hyperfine: $runs runs after $warmup warm-up runs per command; times are medians; RSS is the peak of 5 runs"
echo
printf '%-44s %10s %10s %9s %9s %10s\n' "command" "median" "mean" "user" "sys" "peak RSS"
row() { # LABEL CSV ROW RSS_KIB
  local rss="-"
  [ -n "$4" ] && rss=$(awk -v k="$4" 'BEGIN { printf "%.2f MiB", k / 1024 }')
  printf '%-44s %7s ms %7s ms %6s ms %6s ms %10s\n' "$1" \
    "$(ms "$(field "$2" "$3" median)")" "$(ms "$(field "$2" "$3" mean)")" \
    "$(ms "$(field "$2" "$3" user)")" "$(ms "$(field "$2" "$3" system)")" "$rss"
}
row "hostprint --format json (static)" "$work/compare.csv" 1 "$rss_static"
row "hostprint --format json (dynamic)" "$work/compare.csv" 2 "$rss_dynamic"
[ -n "$sdv" ] && row "systemd-detect-virt" "$work/compare.csv" 4 "$rss_sdv"
row "cat /etc/os-release" "$work/compare.csv" 3 "$rss_cat"
row "hostprint, no user fingerprints" "$work/fingerprints.csv" 1 ""
row "hostprint --fingerprints (500 files)" "$work/fingerprints.csv" 2 ""
row "hostprint, before extra processes" "$work/without.csv" 1 ""
row "hostprint, with $started extra processes" "$work/with.csv" 1 ""
echo

hp_med=$(field "$work/compare.csv" 1 median)
cat_med=$(field "$work/compare.csv" 3 median)
failed=0
# check LABEL VALUE LIMIT UNIT: PASS when VALUE <= LIMIT.
check() {
  local verdict
  verdict=$(awk -v v="$2" -v l="$3" 'BEGIN { print (v <= l) ? "PASS" : "FAIL" }')
  [ "$verdict" = FAIL ] && failed=1
  printf '%-46s %10s %4s %-8s %s\n' "$1" "$2$4" "≤" "$3$4" "$verdict"
}
printf '%-46s %10s %4s %-8s %s\n' "target (static build)" "measured" "" "limit" "result"
if [ -n "$sdv" ]; then
  check "hostprint / systemd-detect-virt" \
    "$(awk -v a="$hp_med" -v b="$(field "$work/compare.csv" 4 median)" 'BEGIN { printf "%.2f", a / b }')" 0.5 ""
else
  printf '%-46s %10s %4s %-8s %s\n' "hostprint / systemd-detect-virt" "-" "≤" "0.5" "SKIP (no systemd-detect-virt)"
fi
check "hostprint / cat /etc/os-release" \
  "$(awk -v a="$hp_med" -v b="$cat_med" 'BEGIN { printf "%.2f", a / b }')" 2 ""
check "peak RSS" "$(awk -v k="$rss_static" 'BEGIN { printf "%.2f", k / 1024 }')" 4 " MiB"
check "with $started processes / without" \
  "$(awk -v a="$(field "$work/with.csv" 1 median)" -v b="$(field "$work/without.csv" 1 median)" \
    'BEGIN { printf "%.2f", a / b }')" 1.1 ""
check "500 user fingerprints add" \
  "$(awk -v a="$(field "$work/fingerprints.csv" 2 median)" -v b="$(field "$work/fingerprints.csv" 1 median)" \
    'BEGIN { printf "%.2f", (a - b) * 1000 }')" 1 " ms"

if [ "$failed" = 1 ] && [ "$strict" = 1 ]; then
  exit 1
fi
