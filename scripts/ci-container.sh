#!/usr/bin/env bash
# hostprint in a real container runtime: the image from scripts/build-image.sh, run by podman
#   (a) plain: it knows it is in a podman container;
#   (b) as deploy/kubernetes/daemonset.yaml runs it (host PID namespace, host / read-only at /host,
#       read-only image, no capabilities, no-new-privileges, uid 0): identity, os and environment
#       equal a run of the same binary on this machine, and the hostname is the node's, not the
#       container's;
#   (c) --format prometheus --output into a mounted directory every 2 s, then `podman stop`: exit 0
#       within the grace period, and the file is complete.
# Run by .ci/run on a fresh Debian 12 machine; installs podman and runc itself. crun does not work on
# these machines (hybrid cgroup hierarchy, setrlimit refused), so podman is pointed at runc with the
# cgroupfs manager and no default ulimits, in a containers.conf of its own (CONTAINERS_CONF), leaving
# /etc alone. Removes its containers and its image at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

work=$(mktemp -d)
tag=ci-$$
image=localhost/hostprint:$tag
names=()
cleanup() {
  for n in "${names[@]}"; do podman rm -f --ignore --time 0 "$n" >/dev/null 2>&1 || true; done
  podman rmi -f "$image" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- What it needs --------------------------------------------------------------------------------
need=()
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
command -v promtool >/dev/null || need+=(prometheus)
apt_install "${need[@]}"

export CONTAINERS_CONF=$work/containers.conf
cat > "$CONTAINERS_CONF" <<'CONF'
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
runtime=$(podman info --format '{{.Host.OCIRuntime.Name}}')
[ "$runtime" = runc ] || fail "podman uses $runtime, not runc: CONTAINERS_CONF was not read"
say "podman $(podman version --format '{{.Client.Version}}') with runc, cgroupfs"

# Bounded: no podman call may hang the CI run.
pod() { timeout 180 podman "$@"; }

# --- The image --------------------------------------------------------------------------------------
IMAGE=$image bash scripts/build-image.sh > "$work/built"
[ "$(tail -1 "$work/built")" = "$image" ] || fail "build-image.sh did not name $image"
version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)
target=$(rustc -vV | sed -n 's/^host: //p')
binary=target/$target/release/hostprint

# The DaemonSet names the image build-image.sh makes by default.
for want in "image: localhost/hostprint:$version"; do
  n=$(grep -c "^ *$want\$" deploy/kubernetes/daemonset.yaml || true)
  [ "$n" = 2 ] || fail "deploy/kubernetes/daemonset.yaml should say '$want' for both containers"
done

inspect() { podman image inspect --format "$1" "$image"; }
[ "$(inspect '{{.Config.User}}')" = 65534:65534 ] || fail "image user is $(inspect '{{.Config.User}}')"
[ "$(inspect '{{index .Labels "org.opencontainers.image.version"}}')" = "$version" ] \
  || fail "org.opencontainers.image.version label"
[ "$(inspect '{{index .Labels "org.opencontainers.image.revision"}}')" = "$(git rev-parse HEAD)" ] \
  || fail "org.opencontainers.image.revision label"
layers=$(inspect '{{len .RootFS.Layers}}')
[ "$layers" = 1 ] || fail "expected one layer (the binary), found $layers"
say "image $image: $(inspect '{{.Size}}') bytes, user 65534, OCI labels"
out=$(pod run --rm --network=none "$image" --version)
[ "$out" = "hostprint $version" ] || fail "--version said: $out"

# --- (a) plain ---------------------------------------------------------------------------------------
pod run --rm --network=none "$image" --format json > "$work/plain.json"
python3 - "$work/plain.json" <<'PY' || fail "(a) plain run"
import json, sys
p = json.load(open(sys.argv[1]))
c = p["environment"]["container"]
assert c == "podman", f"environment.container is {c!r}"
PY
say "(a) plain: environment.container is podman"

# --- (b) as the DaemonSet runs it ----------------------------------------------------------------------
# Host / at /host (recursive bind, host mounts propagate in: mountPropagation HostToContainer).
daemonset=(--network=none --pid=host --user 0 --read-only --cap-drop=ALL
  --security-opt no-new-privileges -v /:/host:ro,rslave)
"$binary" --format json > "$work/host.json"
# Both cgroup namespace modes: the host's (cgroup v1 and hybrid) and a private one (the default on
# cgroup v2, for podman and for Kubernetes alike).
for cgroupns in host private; do
  pod run --rm --hostname hostprint-pod --cgroupns="$cgroupns" "${daemonset[@]}" "$image" \
    --root /host --format json > "$work/pod.json"
  python3 - "$work/host.json" "$work/pod.json" <<'PY' || fail "(b) DaemonSet-style run, cgroupns=$cgroupns"
import json, sys
host, pod = (json.load(open(f)) for f in sys.argv[1:3])
for block in ("identity", "os", "environment"):
    assert pod[block] == host[block], f"{block}:\n  pod  {pod[block]}\n  host {host[block]}"
try:
    want = open("/etc/hostname").read().strip() or None
except FileNotFoundError:
    want = None
got = pod["host"]["hostname"]
assert got != "hostprint-pod", "the pod's own hostname"
assert got == want, f"hostname {got!r}, the node's /etc/hostname says {want!r}"
print(f"identity {pod['identity']['id']!r}, container {pod['environment']['container']!r}, hostname {got!r}")
PY
done
say "(b) DaemonSet-style, host and private cgroup namespace: identity, os, environment as on the machine; the node's hostname"

# --- (c) textfile every 2 s, stopped by podman stop -----------------------------------------------------
textfile=$work/textfile
mkdir -p "$textfile"
name=hostprint-ci-$$-interval
names+=("$name")
pod run -d --name "$name" "${daemonset[@]}" -v "$textfile:/textfile" "$image" \
  --root /host --format prometheus --output /textfile/hostprint.prom --interval 2s > /dev/null
prom=$textfile/hostprint.prom
for _ in $(seq 150); do [ -s "$prom" ] && break; sleep 0.2; done
[ -s "$prom" ] || { podman logs "$name" >&2 || true; fail "(c) no $prom after 30 s"; }
first=$(stat -c %y "$prom")
for _ in $(seq 50); do [ "$(stat -c %y "$prom")" != "$first" ] && break; sleep 0.2; done
[ "$(stat -c %y "$prom")" != "$first" ] || fail "(c) the file was not rewritten within 10 s"
grace=10
start=$(date +%s.%N)
pod stop --time "$grace" "$name" > /dev/null
took=$(python3 -c "import sys; print(round($(date +%s.%N) - $start, 1))")
code=$(podman inspect --format '{{.State.ExitCode}}' "$name")
[ "$code" = 0 ] || { podman logs "$name" >&2 || true; fail "(c) exit code $code after podman stop (${took}s)"; }
python3 -c "import sys; sys.exit(0 if $took < $grace else 1)" || fail "(c) stop took ${took}s, the grace period is ${grace}s"
[ "$(tail -c1 "$prom" | od -An -c | tr -d ' ')" = '\n' ] || fail "(c) the file does not end with a newline"
leftover=$(ls -A "$textfile" | grep -vx hostprint.prom || true)
[ -z "$leftover" ] || fail "(c) temporary files left behind: $leftover"
lint=$(promtool check metrics < "$prom" 2>&1) || { echo "$lint" >&2; fail "(c) promtool check metrics"; }
[ -z "$lint" ] || { echo "$lint" >&2; fail "(c) promtool check metrics complained"; }
grep -q "^hostprint_build_info{version=\"$version\"} 1\$" "$prom" || fail "(c) no hostprint_build_info"
say "(c) --interval 2s: stopped in ${took}s with exit 0; $(wc -l < "$prom") lines, promtool clean"

say "container: all checks passed"
