#!/usr/bin/env bash
# The monitoring pipeline end to end, with the real components:
#   1. promtool checks deploy/prometheus/hostprint-alerts.yaml and runs its unit tests;
#   2. hostprint writes a textfile for each "node": this machine, and fixture roots chosen for what the
#      alerts must see (a CoreOS past its end of life, an unknown OS, Fedora CoreOS enforcing and
#      permissive, a stale file, a support end 10 days away, a root with warnings, a Flatcar waiting
#      for a reboot, automatic updates off), each served by its own node_exporter (its own
#      `instance`);
#   3. a Prometheus server scrapes them every second and evaluates the alert rules every second;
#   4. its HTTP API must show hostprint_os_info with the labels of each root's os-release, every alert
#      pending or firing exactly for the nodes it is about, and data for every PromQL query of
#      deploy/grafana/hostprint-dashboard.json.
# Every process is started on 127.0.0.1 with a free port and stopped by its PID at exit. Run by
# .ci/run on a fresh Debian 12 machine; installs Debian's prometheus and prometheus-node-exporter.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

work=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

need=()
command -v prometheus >/dev/null && command -v promtool >/dev/null || need+=(prometheus)
command -v prometheus-node-exporter >/dev/null || need+=(prometheus-node-exporter)
apt_install "${need[@]}"

# --- 1. The rules on their own ------------------------------------------------------------------------
rules=$PWD/deploy/prometheus/hostprint-alerts.yaml
promtool check rules "$rules" || fail "promtool check rules"
(cd deploy/prometheus && promtool test rules hostprint-alerts.test.yaml) || fail "promtool test rules"
say "alert rules: promtool check and unit tests pass"

# --- 2. One textfile directory and one node_exporter per node ---------------------------------------------
say "building hostprint --release"
cargo build --release --quiet
hostprint=$PWD/target/release/hostprint

# The first fixture whose golden profile satisfies a Python condition on `p` (the profile), or nothing.
fixture_where() {
  python3 - "$1" fixtures/*/expected.json <<'PY'
import json, os, sys
cond = sys.argv[1]
for path in sorted(sys.argv[2:], key=lambda f: ("flatcar" not in f, f)):
    p = json.load(open(path))
    root = os.path.join(os.path.dirname(path), "root")
    if os.path.isdir(root) and eval(cond, {"p": p}):
        print(root)
        break
PY
}

roots=$work/roots
mkdir -p "$roots/unknown/etc" "$roots/soon/etc"   # unknown: a root with nothing to tell by
# Fedora CoreOS as it ships, and the same host booted permissive (selinuxfs says 0).
cp -a fixtures/fedora-coreos-41/root "$roots/fcos-permissive"
printf '0' > "$roots/fcos-permissive/sys/fs/selinux/enforce"
# A release whose os-release says its support ends in 10 days (os-release(5) SUPPORT_END).
cat > "$roots/soon/etc/os-release" <<OS
NAME="Fedora Linux"
ID=fedora
VERSION_ID=99
PRETTY_NAME="Fedora Linux 99"
SUPPORT_END=$(date -u -d '+10 days' +%Y-%m-%d)
OS

declare -A root_of=(
  [this]=/
  [coreos]=fixtures/coreos-1911/root
  [unknown]=$roots/unknown
  [fcos]=fixtures/fedora-coreos-41/root
  [fcos-permissive]=$roots/fcos-permissive
  [stale]=fixtures/flatcar-3139/root
  [soon]=$roots/soon
  [warned]=fixtures/edge-symlink-loop/root
)
reboot=$(fixture_where 'p.get("lifecycle", {}).get("reboot_required") is True')
[ -n "$reboot" ] && root_of[reboot]=$reboot
autooff=$(fixture_where 'p["identity"]["container_os"] is True and any(u.get("automatic") is False for u in p["updates"])')
[ -n "$autooff" ] && root_of[autooff]=$autooff

nodes=$work/nodes
targets=""
for node in "${!root_of[@]}"; do
  dir=$nodes/$node
  mkdir -p "$dir/textfile"
  root=${root_of[$node]}
  "$hostprint" --root "$root" --format prometheus --output "$dir/textfile/hostprint.prom"
  "$hostprint" --root "$root" --format json > "$dir/profile.json"
  printf '%s\n' "$root" > "$dir/root"
  port=$(free_port)
  prometheus-node-exporter --web.listen-address="127.0.0.1:$port" \
    --collector.disable-defaults --collector.textfile \
    --collector.textfile.directory="$dir/textfile" \
    --log.level=warn > "$dir/node_exporter.log" 2>&1 &
  pids+=($!)
  printf '127.0.0.1:%s\n' "$port" > "$dir/instance"
  targets+="      - targets: ['127.0.0.1:$port']
        labels: {node: '$node'}
"
  say "node $node: $root on 127.0.0.1:$port (pid $!)"
done
# Written a while ago and not since: what a node whose hostprint stopped looks like.
touch -d '1 hour ago' "$nodes/stale/textfile/hostprint.prom"
[ -n "$reboot" ] || fail "no fixture root with a pending reboot (lifecycle.reboot_required)"
[ -n "$autooff" ] || fail "no fixture root of a container OS with automatic updates off"

# --- 3. Prometheus ----------------------------------------------------------------------------------------
pport=$(free_port)
cat > "$work/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $rules
scrape_configs:
  - job_name: node
    static_configs:
$targets
YML
promtool check config "$work/prometheus.yml" > /dev/null || fail "promtool check config"
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$pport" --log.level=warn > "$work/prometheus.log" 2>&1 &
ppid=$!
pids+=($ppid)
say "prometheus $(prometheus --version 2>&1 | head -1 | cut -d' ' -f3) on 127.0.0.1:$pport (pid $ppid)"

# --- 4. What Prometheus knows -------------------------------------------------------------------------------
version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)
timeout 300 python3 - "http://127.0.0.1:$pport" "$nodes" "$rules" deploy/grafana/hostprint-dashboard.json "$version" "$ppid" <<'PY' \
  || { tail -20 "$work/prometheus.log" >&2; fail "pipeline checks"; }
import datetime, json, os, re, shlex, sys, time, urllib.parse, urllib.request

url, nodes_dir, rules_path, dashboard_path, version, ppid = sys.argv[1:7]
failures = []

def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    failures.append(msg)

def api(path, **params):
    q = urllib.parse.urlencode(params)
    with urllib.request.urlopen(f"{url}/api/v1/{path}?{q}", timeout=10) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(f"{path} {params}: {body}")
    return body["data"]

def query(expr):
    return api("query", query=expr)["result"]

def wait(what, check, seconds=60):
    end = time.time() + seconds
    while True:
        try:
            if check():
                return True
        except (OSError, RuntimeError):
            pass
        if time.time() > end:
            return False
        os.kill(int(ppid), 0)  # Prometheus still there, or the loop ends in an error
        time.sleep(0.5)

nodes = {}
for name in sorted(os.listdir(nodes_dir)):
    d = os.path.join(nodes_dir, name)
    nodes[name] = {
        "instance": open(os.path.join(d, "instance")).read().strip(),
        "root": open(os.path.join(d, "root")).read().strip(),
        "profile": json.load(open(os.path.join(d, "profile.json"))),
        "prom": open(os.path.join(d, "textfile", "hostprint.prom")).read(),
    }
node_of = {n["instance"]: name for name, n in nodes.items()}

if not wait("scrapes", lambda: len(query('hostprint_build_info')) == len(nodes)
            and all(float(r["value"][1]) == 1 for r in query('up{job="node"}'))
            and len(query('up{job="node"}')) == len(nodes)):
    sys.exit(f"FAIL: Prometheus did not scrape all {len(nodes)} node_exporters within 60 s")
print(f"== Prometheus scrapes {len(nodes)} node_exporters")

# hostprint_build_info: this release.
for r in query("hostprint_build_info"):
    if r["metric"].get("version") != version:
        fail(f"hostprint_build_info of {r['metric']['node']}: {r['metric']}")

# hostprint_os_info: the labels node_exporter's node_os_info would give for the root's os-release,
# read here with shlex (os-release(5) is shell syntax), not with hostprint's parser.
LABELS = {"build_id": "BUILD_ID", "id": "ID", "id_like": "ID_LIKE", "image_id": "IMAGE_ID",
          "image_version": "IMAGE_VERSION", "name": "NAME", "pretty_name": "PRETTY_NAME",
          "variant": "VARIANT", "variant_id": "VARIANT_ID", "version": "VERSION",
          "version_codename": "VERSION_CODENAME", "version_id": "VERSION_ID"}

def in_root(root, path, hops=0):
    """A path inside the root, its symlinks resolved inside it too (as in a chroot)."""
    full = os.path.join(root, path)
    if os.path.islink(full) and hops < 40:
        target = os.readlink(full)
        inner = target.lstrip("/") if target.startswith("/") else os.path.normpath(
            os.path.join(os.path.dirname(path), target))
        return in_root(root, inner, hops + 1)
    return full

def os_release(root):
    for path in ("etc/os-release", "usr/lib/os-release"):
        full = in_root(root, path)
        if os.path.exists(full):
            fields = {}
            for line in open(full, encoding="utf-8", errors="replace"):
                words = shlex.split(line, comments=True)
                if words and "=" in words[0]:
                    k, v = words[0].split("=", 1)
                    fields[k] = " ".join([v] + words[1:])
            return fields
    return None

got_os = {r["metric"]["node"]: r["metric"] for r in query("hostprint_os_info")}
for name, n in nodes.items():
    want = os_release(n["root"])
    got = got_os.get(name)
    if want is None:
        if got is not None:
            fail(f"hostprint_os_info for {name}, whose root has no os-release: {got}")
        continue
    if got is None:
        fail(f"no hostprint_os_info for {name}")
        continue
    for label, key in LABELS.items():
        w = " ".join(want.get(key, "").split()) if key == "ID_LIKE" else want.get(key, "")
        if got.get(label, "") != w:
            fail(f"hostprint_os_info{{node={name!r}}} {label}={got.get(label, '')!r}, os-release says {w!r}")
print(f"== hostprint_os_info: node_os_info's labels, as in each root's os-release ({len(got_os)} nodes)")

# --- Alerts: which node each one must be pending or firing for, from the rules file and the profiles.
rules_text = open(rules_path).read()
selinux_ids = re.search(r'id=~"([^"]+)"', rules_text).group(1)
expected_codes = re.search(r'code!~"([^"]*)"', rules_text).group(1)

def produced(metric, label=None):
    pat = re.compile(rf"^{re.escape(metric)}\{{[^}}]*\b{label}=" if label else rf"^{re.escape(metric)}[{{ ]", re.M)
    return any(pat.search(n["prom"]) for n in nodes.values())

def day(date):
    return datetime.datetime.strptime(date, "%Y-%m-%d").replace(tzinfo=datetime.timezone.utc).timestamp()

now = time.time()
def support_end(p):
    d = (p.get("lifecycle") or {}).get("support_end")
    return day(d) if d else None

ALERTS = {
    "HostprintOSPastSupportEnd": (("hostprint_support_end_timestamp_seconds", None),
        lambda name, p: support_end(p) is not None and support_end(p) < now),
    "HostprintOSSupportEndingSoon": (("hostprint_support_end_timestamp_seconds", None),
        lambda name, p: support_end(p) is not None and now <= support_end(p) < now + 30 * 86400),
    "HostprintRebootPending": (("hostprint_reboot_required", None),
        lambda name, p: (p.get("lifecycle") or {}).get("reboot_required") is True),
    "HostprintAutomaticUpdatesOff": (("hostprint_update_automatic", None),
        lambda name, p: p["identity"]["container_os"] is True and any(u.get("automatic") is False for u in p["updates"])),
    "HostprintUnknownOS": (None, lambda name, p: p["identity"]["kind"] == "unknown"),
    "HostprintSELinuxNotEnforcing": (None,
        lambda name, p: re.fullmatch(selinux_ids, p["identity"]["id"] or "") is not None
        and p["security"]["selinux"]["mode"] in ("permissive", "disabled")),
    "HostprintTextfileStale": (None, lambda name, p: name == "stale"),
    "HostprintWarnings": (("hostprint_warnings", "code"),
        lambda name, p: any(re.fullmatch(expected_codes, w.get("code") or "") is None for w in p["warnings"])),
}
# The nodes that were set up for an alert: each must really be there, or the check proves nothing.
MUST = {"HostprintOSPastSupportEnd": "coreos", "HostprintOSSupportEndingSoon": "soon",
        "HostprintRebootPending": "reboot", "HostprintAutomaticUpdatesOff": "autooff",
        "HostprintUnknownOS": "unknown", "HostprintSELinuxNotEnforcing": "fcos-permissive",
        "HostprintTextfileStale": "stale", "HostprintWarnings": "warned"}

rule_names = set(re.findall(r"^\s*- alert: (\S+)", rules_text, re.M))
if rule_names != set(ALERTS):
    fail(f"alerts in the rules file {sorted(rule_names)} and checked here {sorted(ALERTS)} differ")

checked, want = {}, {}
for alert, (needs, cond) in ALERTS.items():
    metric, label = needs or (None, None)
    if metric and not produced(metric, label):
        fail(f"{alert}: hostprint wrote no {metric}{'{' + label + '}' if label else ''} for any node")
    checked[alert] = True
    want[alert] = {name for name, n in nodes.items() if cond(name, n["profile"])}
    must = MUST.get(alert)
    if must and must in nodes and must not in want[alert]:
        fail(f"{alert}: node {must} was set up to trigger it, but its profile does not say so")

def actual():
    out = {a: set() for a in checked}
    for a in api("alerts")["alerts"]:
        name = a["labels"]["alertname"]
        if name in out and a["state"] in ("pending", "firing"):
            out[name].add(a["labels"].get("node") or node_of.get(a["labels"].get("instance"), "?"))
    return out

if not wait("alerts", lambda: actual() == want, 45):
    got = actual()
    for a in checked:
        if got[a] != want[a]:
            fail(f"{a}: pending/firing for {sorted(got[a])}, expected {sorted(want[a])}")
for a in checked:
    silent = sorted(set(nodes) - want[a])
    print(f"== {a}: active for {sorted(want[a])}; silent for {silent}")

# --- The dashboard: every query returns data.
dash = json.load(open(dashboard_path))
def panels(ps):
    for p in ps:
        yield p
        yield from panels(p.get("panels", []))
n_queries = 0
for p in panels(dash["panels"]):
    for t in p.get("targets", []):
        expr = t["expr"]
        n_queries += 1
        result = query(expr)
        if not result:
            fail(f"dashboard panel {p['title']!r} returns no data: {expr}")
print(f"== dashboard: {n_queries} panel queries return data")

if failures:
    sys.exit(f"{len(failures)} check(s) failed")
PY
say "prometheus: all checks passed"
