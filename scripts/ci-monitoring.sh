#!/usr/bin/env bash
# Proof with the real components, not our reading of their docs: a real node_exporter serves
# hostprint's textfile (for this machine, then for a recorded container-OS root), curl scrapes it,
# promtool lints the scrape, and kubernetes-validate checks the DaemonSet against the Kubernetes API
# schema. Run by .ci/run on a fresh Debian 12 machine that has only the Rust toolchain, so it installs
# what it needs itself. Fails loudly on any missing series or label.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

work=$(mktemp -d)
exporter_pid=""
etcd_pid=""
created_policy=""
cleanup() {
  if [ -n "$exporter_pid" ]; then kill "$exporter_pid" 2>/dev/null || true; wait "$exporter_pid" 2>/dev/null || true; fi
  if [ -n "$etcd_pid" ]; then kill "$etcd_pid" 2>/dev/null || true; wait "$etcd_pid" 2>/dev/null || true; fi
  if [ -n "$created_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
  rm -rf "$work"
}
trap cleanup EXIT

# --- What it needs ------------------------------------------------------------------------------
# Debian 12: node_exporter is prometheus-node-exporter, promtool ships in prometheus. Their
# postinst scripts would start both daemons; a policy-rc.d that says 101 ("not allowed") stops that
# (Debian's documented way), and is removed again unless the machine already had one.
need=()
command -v prometheus-node-exporter >/dev/null || need+=(prometheus-node-exporter)
command -v promtool >/dev/null || need+=(prometheus)
command -v curl >/dev/null || need+=(curl)
python3 -m venv --help >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${need[@]}"
fi

# kubernetes-validate bundles the API schemas of every Kubernetes release it knows: validation itself
# needs no network. Kept in a venv under target/ so a second run reuses it.
venv=target/ci-monitoring-venv
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
  say "installing kubernetes-validate into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q kubernetes-validate
fi

say "building hostprint --release"
cargo build --release --quiet
hostprint=$PWD/target/release/hostprint

# --- node_exporter on loopback, textfile collector only ------------------------------------------
# Only the textfile collector: the others read this sandbox's /proc and /sys, which say nothing about
# hostprint, and some of them need more than a sandbox gives.
textfile=$work/textfile
mkdir -p "$textfile"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
prometheus-node-exporter \
  --web.listen-address="127.0.0.1:$port" \
  --collector.disable-defaults --collector.textfile \
  --collector.textfile.directory="$textfile" \
  --log.level=warn > "$work/node_exporter.log" 2>&1 &
exporter_pid=$!
url="http://127.0.0.1:$port/metrics"
for _ in $(seq 100); do
  curl -sf -o /dev/null "$url" && break
  kill -0 "$exporter_pid" 2>/dev/null || { cat "$work/node_exporter.log" >&2; fail "node_exporter exited"; }
  sleep 0.1
done
curl -sf -o /dev/null "$url" || fail "node_exporter is not answering on $url"
say "node_exporter $(prometheus-node-exporter --version 2>&1 | head -1 | cut -d' ' -f3) on 127.0.0.1:$port (pid $exporter_pid)"

scrape=$work/scrape.txt

# expect SERIES_REGEX [WHAT]: the scrape must hold a line matching it.
expect() {
  grep -Eq -- "$1" "$scrape" || {
    echo "--- hostprint lines in the scrape:" >&2
    grep '^hostprint_' "$scrape" >&2 || true
    fail "${2:-missing} in the scrape: $1"
  }
}

# scrape_and_check NAME: scrape, check node_exporter parsed our file, lint everything with promtool.
scrape_and_check() {
  curl -sf "$url" > "$scrape" || fail "scrape of $url failed"
  # node_exporter reports a textfile it could not parse here (and then serves none of it).
  expect '^node_textfile_scrape_error 0$' "node_exporter could not parse the textfile ($1)"
  expect '^node_textfile_mtime_seconds\{file="[^"]*hostprint.prom"\}' "node_exporter did not read hostprint.prom ($1)"
  for family in identity_info identity_confidence os_info warnings; do
    expect "^hostprint_${family}[{ ]" "hostprint_${family} ($1)"
  done
  say "$1: scraped hostprint_* lines"
  grep '^hostprint_' "$scrape"
  local lint
  lint=$(promtool check metrics < "$scrape" 2>&1) || { echo "$lint" >&2; fail "promtool check metrics ($1)"; }
  [ -z "$lint" ] || { echo "$lint" >&2; fail "promtool check metrics complained ($1)"; }
  say "$1: promtool check metrics: no complaints"
}

# A value as the label wants it in a regex: dots and the like literal.
re() { printf '%s' "$1" | sed 's/[][\.*^$+?(){}|/]/\\&/g'; }

# --- 1. This machine ------------------------------------------------------------------------------
"$hostprint" --format prometheus --output "$textfile/hostprint.prom"
mode=$(stat -c %a "$textfile/hostprint.prom")
[ "$mode" = 644 ] || fail "textfile mode is $mode, not 644"
[ "$(ls -A "$textfile")" = hostprint.prom ] || fail "stray files in the textfile directory: $(ls -A "$textfile")"
scrape_and_check "this machine"
live_id=$(sed -n 's/^ID=//p' /etc/os-release 2>/dev/null | tr -d '"'"'" | head -1)
if [ -n "$live_id" ]; then
  expect "^hostprint_identity_info\{.*id=\"$(re "$live_id")\"" "identity id=$live_id for this machine"
  expect "^hostprint_os_info\{.*id=\"$(re "$live_id")\"" "os_info id=$live_id for this machine"
fi

# --- 1b. This machine with --processes: a running component ---------------------------------------
# A copy of sleep named etcd is a running etcd to hostprint: hostprint_component_running must say so.
cp /bin/sleep "$work/etcd"
"$work/etcd" 300 &
etcd_pid=$!
"$hostprint" --processes --format prometheus --output "$textfile/hostprint.prom"
scrape_and_check "this machine, --processes"
expect '^hostprint_component_running\{component="etcd"\} 1$' "hostprint_component_running for the running etcd"
kill "$etcd_pid"; wait "$etcd_pid" 2>/dev/null || true; etcd_pid=""

# --- 2. A recorded container-OS root --------------------------------------------------------------
# The CoreOS fixture if the corpus has it, else any fixture (expectation from its case.toml), else a
# CoreOS-like root built here from the facts in its fingerprint (update.conf channel, SELinux, docker).
fixture=""
if [ -d fixtures/coreos-1911/root ]; then
  fixture=fixtures/coreos-1911
else
  for c in fixtures/*/; do
    if [ -d "$c/root" ] && [ -f "$c/case.toml" ]; then fixture=${c%/}; break; fi
  done
fi
if [ -n "$fixture" ]; then
  root=$fixture/root
  want_id=$(sed -n 's/^identity *= *"\(.*\)".*/\1/p' "$fixture/case.toml" | head -1)
  want_cos=$(sed -n 's/^container_os *= *\(true\|false\).*/\1/p' "$fixture/case.toml" | head -1)
  built=""
else
  root=$work/coreos-root
  mkdir -p "$root/etc" "$root/usr/share/coreos" "$root/etc/selinux" "$root/run"
  cat > "$root/etc/os-release" <<'EOF'
NAME="Container Linux by CoreOS"
ID=coreos
VERSION=1911.3.0
VERSION_ID=1911.3.0
BUILD_ID=2018-11-05-1815
PRETTY_NAME="Container Linux by CoreOS 1911.3.0 (Rhyolite)"
ANSI_COLOR="38;5;75"
HOME_URL="https://coreos.com/"
EOF
  printf 'SERVER=https://public.update.core-os.net/v1/update/\nGROUP=stable\n' > "$root/usr/share/coreos/update.conf"
  printf 'SELINUX=permissive\nSELINUXTYPE=mcs\n' > "$root/etc/selinux/config"
  printf 'COREOS_RELEASE_BOARD=amd64-usr\nCOREOS_RELEASE_VERSION=1911.3.0\n' > "$root/usr/share/coreos/release"
  python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$root/run/docker.sock"
  want_id=coreos
  want_cos=true
  built=1
fi
say "fixture root: $root (expect identity ${want_id:-unknown}, container_os ${want_cos:-?})"
rm -f "$textfile/hostprint.prom"   # one host per textfile directory, as on a real node
"$hostprint" --root "$root" --format prometheus --output "$textfile/hostprint.prom"
scrape_and_check "fixture $root"
[ -n "$want_id" ] && expect "^hostprint_identity_info\{.*id=\"$(re "$want_id")\"" "identity id=$want_id for $root"
[ -n "$want_cos" ] && expect "^hostprint_identity_info\{.*container_os=\"$want_cos\"" "container_os=$want_cos for $root"
if [ "$want_id" = coreos ]; then
  # Container Linux reached end of life on 2020-05-26 (00:00 UTC = 1590451200).
  expect '^hostprint_identity_eol_timestamp_seconds\{id="coreos"\} 1\.5904512e\+09$' "CoreOS end of life"
  expect '^hostprint_update_agent_info\{agent="update_engine",channel="[a-z]+"' "update_engine with its channel"
fi
if [ -n "$built" ]; then
  expect '^hostprint_runtime_socket_info\{runtime="docker",socket="/run/docker.sock"\} 1$' "docker socket"
  expect '^hostprint_selinux_config_mode 0$' "SELinux config mode permissive"
  expect '^hostprint_update_agent_info\{agent="update_engine",channel="stable",strategy=""\} 1$' "stable channel"
fi

# --- 3. NFD feature file for the same root: every line a valid label ----------------------------
"$hostprint" --root "$root" --format nfd --output "$work/features"
grep -q "^hostprint.feature.node.kubernetes.io/os.id=" "$work/features" || fail "no os.id in the NFD file"
bad=$(grep -Ev '^hostprint\.feature\.node\.kubernetes\.io/[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?=[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$' "$work/features" || true)
[ -z "$bad" ] || fail "NFD lines that are not valid labels: $bad"
say "NFD feature file for $root"
cat "$work/features"

# --- 4. Deploy manifests ---------------------------------------------------------------------------
"$venv/bin/kubernetes-validate" --strict deploy/kubernetes/daemonset.yaml \
  || fail "deploy/kubernetes/daemonset.yaml does not validate"
if command -v systemd-analyze >/dev/null; then
  # verify wants ExecStart's binary to exist: point a copy of the units at the one just built.
  mkdir -p "$work/units"
  cp deploy/systemd/hostprint.service deploy/systemd/hostprint.timer "$work/units/"
  sed -i "s#/usr/local/bin/hostprint#$hostprint#" "$work/units/hostprint.service"
  out=$(cd "$work/units" && systemd-analyze verify ./hostprint.service ./hostprint.timer 2>&1) \
    || { echo "$out" >&2; fail "systemd-analyze verify"; }
  [ -z "$out" ] || { echo "$out" >&2; fail "systemd-analyze verify complained"; }
  say "systemd units: systemd-analyze verify clean"
fi

kill "$exporter_pid"
wait "$exporter_pid" 2>/dev/null || true
exporter_pid=""
say "monitoring: all checks passed"
