#!/usr/bin/env bash
# The static release artifact, built as the README documents and run WITH ARGUMENTS: for a few
# fixtures, `--root fixtures/<case>/root --format json` must print that case's identity (and its
# whole expected.json). Probing `/` instead, as a binary that lost its argv would, gives none of
# them, so this proves the arguments reach the program. Also for musl, whose start-up differs from
# glibc's, when rustup can install the target; otherwise it says so. Run by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

cases=(flatcar-3139 fedora-coreos-41 rancheros-1.5)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# No program interpreter and no shared library: nothing for the node to provide.
check_static() {
  local bin=$1
  [ -x "$bin" ] || fail "$bin was not built"
  if readelf -lW "$bin" | grep -q 'INTERP'; then fail "$bin asks for a program interpreter"; fi
  if readelf -dW "$bin" | grep -q '(NEEDED)'; then
    readelf -dW "$bin" | grep '(NEEDED)' >&2
    fail "$bin needs shared libraries"
  fi
  say "$bin: static (no INTERP, no NEEDED)"
}

check_runs() {
  local bin=$1 case out
  for case in "${cases[@]}"; do
    out="$work/$case.json"
    "$bin" --root "fixtures/$case/root" --format json >"$out" ||
      fail "$bin --root fixtures/$case/root --format json exited $?"
    python3 - "$out" "fixtures/$case/expected.json" "$case" <<'EOF' || fail "$bin on $case"
import json, sys
got, want = (json.load(open(p)) for p in sys.argv[1:3])
gid, wid = got["identity"]["id"], want["identity"]["id"]
if gid != wid:
    sys.exit(f"identity.id {gid!r}, expected.json says {wid!r}")
if got != want:
    sys.exit("identity matches but the profile differs from expected.json")
print(f"== {sys.argv[3]}: identity.id {gid!r}, profile as expected.json")
EOF
  done
  # An unknown flag reaches clap too: a usage error, exit 2.
  local status=0
  "$bin" --no-such-flag >/dev/null 2>&1 || status=$?
  [ "$status" -eq 2 ] || fail "$bin --no-such-flag exited $status, not 2"
}

host=$(rustc -vV | sed -n 's/^host: //p')
say "static glibc build for $host"
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --target "$host"
check_static "target/$host/release/hostprint"
check_runs "target/$host/release/hostprint"

musl=x86_64-unknown-linux-musl
installed=$(rustup target list --installed 2>/dev/null || true)
if [ "${host%%-*}" != x86_64 ]; then
  say "skipped: musl build (this script builds $musl; the host is $host)"
elif ! grep -qx "$musl" <<<"$installed" && ! rustup target add "$musl"; then
  say "skipped: musl target not installable here"
else
  say "musl build"
  cargo build --release --target "$musl"
  check_static "target/$musl/release/hostprint"
  check_runs "target/$musl/release/hostprint"
fi
say "static artifacts run with arguments"
