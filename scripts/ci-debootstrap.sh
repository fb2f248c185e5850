#!/usr/bin/env bash
# A real root nobody here wrote: debootstrap a minimal Debian 12 and check hostprint names it, then
# install snapd and ostree into it and check it is still a general-purpose Debian (snapd reported as
# its update agent), not Ubuntu Core or an ostree OS. Tools installed on a distro do not make it a
# container OS; this is the near miss the fingerprints must survive on a tree no fixture author wrote.
#
# Run by .ci/run on a fresh Debian 12 machine, as root, with network only to the Debian mirrors named
# in /etc/apt: the mirror is taken from there. apt and debootstrap are retried once, because a mirror
# hiccup is not a hostprint failure. Finally the root is recorded with `hostprint record` and the
# recording must replay the same profile. Takes a few minutes; the time is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)
SUITE=bookworm
export DEBIAN_FRONTEND=noninteractive

say() { echo "ci-debootstrap: $*"; }
fail() { echo "ci-debootstrap: FAIL: $*" >&2; exit 1; }

# Runs a command; on failure waits and runs it once more (mirror or network hiccups).
retry() {
  "$@" && return 0
  say "retrying after a failure: $*"
  sleep 10
  "$@"
}

[ "$(id -u)" -eq 0 ] || fail "must run as root (debootstrap and chroot need it)"

# debootstrap, and python3 to read the JSON (Debian 12 images ship it; a minimal one may not).
need=()
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v python3 >/dev/null 2>&1 || need+=(python3-minimal)
if [ ${#need[@]} -gt 0 ]; then
  retry apt-get update -q
  retry apt-get install -y -q --no-install-recommends "${need[@]}"
fi

# The mirror this machine's apt already uses for Debian itself (not -security, not third-party
# repositories): deb822 `URIs:` in sources.list.d/*.sources first (Debian 12's default), then
# classic `deb URI SUITE` lines. Only that mirror is reachable from CI.
mirror_from_apt() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    awk -v suite="$SUITE" '
      /^[[:space:]]*$/ { if (uri != "" && ok) { print uri; exit } uri=""; ok=0; next }
      /^URIs:/ { uri=$2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) ok=1 }
      END { if (uri != "" && ok) print uri }
    ' "$f" | grep -v -- '-security' | head -n1
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -e "$f" ] || continue
    awk -v suite="$SUITE" '$1 == "deb" {
        i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
        if ($(i + 1) == suite) print $i
      }' "$f" | grep -v -- '-security' | head -n1
  done
}
MIRROR=$(mirror_from_apt | head -n1)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
say "mirror: $MIRROR"

say "building the release binary"
cargo build --release --quiet
HOSTPRINT=$PWD/target/release/hostprint

WORK=$(mktemp -d /var/tmp/hostprint-debootstrap.XXXXXX)
ROOT=$WORK/root
# Whatever happens, nothing stays mounted and the tree goes away (--one-file-system: never follow a
# mount that a failed unmount left behind into the host).
cleanup() {
  local m
  for m in "$ROOT/proc" "$ROOT/sys" "$ROOT/dev/pts"; do
    if mountpoint -q "$m" 2>/dev/null; then umount -l "$m" || true; fi
  done
  rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

# Clears a half-written root before the second attempt: debootstrap does not resume cleanly.
bootstrap() {
  rm -rf --one-file-system "$ROOT"
  debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
    tail -n 20 "$WORK/debootstrap.log" >&2
    return 1
  }
}
say "debootstrap --variant=minbase $SUITE (a few minutes)"
retry bootstrap
say "root ready after $(($(date +%s) - started)) s"

# Checks one profile with python3 (always present on Debian 12; jq may not be). Each check is
# "dotted.path == value" or "dotted.path != value" or "agent in updates".
check() {
  local label=$1
  shift
  "$HOSTPRINT" --root "$ROOT" --format json >"$WORK/$label.json"
  python3 - "$WORK/$label.json" "$label" "$@" <<'PY'
import json, sys
path, label, checks = sys.argv[1], sys.argv[2], sys.argv[3:]
profile = json.load(open(path))
def get(dotted):
    v = profile
    for k in dotted.split("."):
        v = v[k]
    return v
failed = []
for c in checks:
    if " in updates" in c:
        agent = c.split(" in ")[0]
        ok = agent in [u["agent"] for u in profile["updates"]]
    elif " not-in " in c:
        key, values = c.split(" not-in ")
        ok = get(key) not in values.split(",")
    else:
        key, op, want = c.split(" ", 2)
        want = json.loads(want)
        ok = (get(key) == want) if op == "==" else (get(key) != want)
    print(f"  [{label}] {'ok  ' if ok else 'FAIL'} {c}")
    if not ok:
        failed.append(c)
ident = profile["identity"]
print(f"  [{label}] identity={ident['id']} kind={ident['kind']} container_os={ident['container_os']} "
      f"version={profile['os']['version_id']} updates={[u['agent'] for u in profile['updates']]} "
      f"warnings={len(profile['warnings'])}")
sys.exit(1 if failed else 0)
PY
}

say "probing the bare root"
check bare \
  'identity.id == "debian"' \
  'identity.container_os == false' \
  'identity.kind == "general-purpose"' \
  'os.version_id == "12"' \
  'os.source == "etc/os-release"' \
  || fail "the bare debootstrap root was not identified as Debian 12"

# Install snapd and ostree into the root. policy-rc.d keeps maintainer scripts from starting
# services; proc is mounted because some postinst scripts read it; DNS comes from this machine.
say "installing snapd and ostree into the root"
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
mount -t proc proc "$ROOT/proc"
in_root() { chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive "$@"; }
retry in_root apt-get update -q >"$WORK/apt.log" 2>&1 || { tail -n 20 "$WORK/apt.log" >&2; fail "apt-get update in the root"; }
retry in_root apt-get install -y -q --no-install-recommends snapd ostree >>"$WORK/apt.log" 2>&1 \
  || { tail -n 30 "$WORK/apt.log" >&2; fail "apt-get install snapd ostree in the root"; }
umount "$ROOT/proc"
rm -f "$ROOT/usr/sbin/policy-rc.d"
[ -e "$ROOT/usr/lib/snapd/snapd" ] || fail "snapd did not install usr/lib/snapd/snapd"
[ -x "$ROOT/usr/bin/ostree" ] || fail "ostree did not install usr/bin/ostree"

# An ostree-capable host is not an ostree-booted host; snapd on Debian is not Ubuntu Core.
say "probing the root with snapd and ostree installed"
check tooled \
  'identity.id == "debian"' \
  'identity.container_os == false' \
  'identity.kind == "general-purpose"' \
  'os.version_id == "12"' \
  'filesystem.ostree_booted == false' \
  'identity.id not-in ubuntu-core,fedora-coreos,rhcos,fedora-atomic-host,centos-atomic-host,rhel-atomic-host,fedora-silverblue,fedora-iot,coreos,flatcar' \
  'snapd in updates' \
  || fail "Debian with snapd and ostree installed was not reported as a general-purpose Debian with snapd"

# The same tree through `hostprint record`: a root nobody here wrote must replay byte for byte.
say "recording the root and replaying the recording"
"$HOSTPRINT" --root "$ROOT" record "$WORK/recorded" | sed 's/^/  /'
"$HOSTPRINT" --root "$WORK/recorded" --format json >"$WORK/replay.json"
cmp -s "$WORK/tooled.json" "$WORK/replay.json" \
  || { diff "$WORK/tooled.json" "$WORK/replay.json" >&2 || true; fail "the recording does not replay the same profile"; }
say "replay identical ($(find "$WORK/recorded" -type f | wc -l) files recorded from $(find "$ROOT" -xdev | wc -l) paths in the root)"

say "passed in $(($(date +%s) - started)) s"
