#!/usr/bin/env bash
# Side effects of a whole run, seen by the kernel: hostprint runs no subprocess (no execve after its
# own), opens no connection (no connect), and opens nothing for writing (no open/openat/openat2/creat
# with O_WRONLY, O_RDWR, O_CREAT or O_TRUNC) — except, when the binary has `--output FILE`, inside
# that file's directory (its temporary file and the rename target).
#
# Checked on the live machine, on a small hostile root made here (a FIFO, a symlink loop, an
# absolute link out of the root, a socket), and on every recorded root under fixtures/.
# CI runs every scripts/ci-*.sh from .ci/run; this one installs strace if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v strace >/dev/null || (apt-get update && apt-get install -y strace)

cargo build --release --quiet
bin="$PWD/target/release/hostprint"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# A small hostile root.
hostile="$work/hostile"
mkdir -p "$hostile/etc" "$hostile/proc/1" "$hostile/run" "$hostile/usr/lib"
printf 'ID=hostile\n' >"$hostile/usr/lib/os-release"
ln -s /etc/shadow "$hostile/etc/os-release"
mkfifo "$hostile/proc/1/comm"
ln -s loop-b "$hostile/proc/1/cmdline" && ln -s cmdline "$hostile/proc/1/loop-b"
python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$hostile/run/docker.sock" \
  || echo "note: no python3, the socket case is left out"

# --output appears with the monitoring work; when it exists, writes are allowed in its directory.
output_args=()
allowed_dir=""
if "$bin" --help | grep -q -- '--output'; then
  allowed_dir="$work/out"
  mkdir -p "$allowed_dir"
fi

failures=0
check() {
  local label="$1"
  shift
  local log="$work/strace.log" extra=()
  if [ -n "$allowed_dir" ]; then
    extra=(--output "$allowed_dir/profile")
  fi
  if ! timeout 20 strace -f -qq -e trace=execve,execveat,connect,open,openat,openat2,creat \
      -o "$log" "$bin" "$@" "${extra[@]}" >/dev/null 2>"$work/stderr"; then
    echo "FAIL $label: hostprint $* did not exit 0:"; cat "$work/stderr"; failures=$((failures + 1)); return
  fi
  local execs connects writes
  execs=$(grep -cE '(^|[[:space:]])execve(at)?\(' "$log" || true)
  connects=$(grep -E '(^|[[:space:]])connect\(' "$log" || true)
  writes=$(grep -E '(^|[[:space:]])(open|openat|openat2|creat)\(' "$log" \
    | grep -E 'O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|(^|[[:space:]])creat\(' || true)
  local to_output=0
  if [ -n "$allowed_dir" ] && [ -n "$writes" ]; then
    to_output=$(grep -cF "\"$allowed_dir/" <<<"$writes" || true)
    writes=$(grep -vF "\"$allowed_dir/" <<<"$writes" || true)
  fi
  local bad=0
  if [ "$execs" -ne 1 ]; then
    echo "FAIL $label: $execs execve calls (only hostprint's own is allowed):"
    grep -E 'execve(at)?\(' "$log"; bad=1
  fi
  if [ -n "$connects" ]; then
    echo "FAIL $label: connect calls:"; echo "$connects"; bad=1
  fi
  if [ -n "$writes" ]; then
    echo "FAIL $label: opened for writing:"; echo "$writes"; bad=1
  fi
  # With --output the run must be seen writing there: proof that the trace catches writes at all.
  if [ -n "$allowed_dir" ] && [ "$to_output" -eq 0 ]; then
    echo "FAIL $label: no open for writing under $allowed_dir although --output was given"; bad=1
  fi
  local opens
  opens=$(grep -cE '(open|openat|openat2)\(' "$log" || true)
  if [ "$bad" -eq 0 ]; then
    echo "ok   $label: 1 execve, 0 connect, $opens opens, $to_output for writing (all --output's)"
  else
    failures=$((failures + 1))
  fi
}

check "live machine" --format json
check "live machine, human" --format human --explain
check "hostile root" --root "$hostile" --format json
for root in fixtures/*/root; do
  [ -d "$root" ] || continue
  check "$root" --root "$root" --format json
done

if [ "$failures" -ne 0 ]; then
  echo "ci-strace: $failures run(s) had side effects"
  exit 1
fi
echo "ci-strace: no side effects"
