//! `--processes`: a real process named like a component is found running with its pid, in JSON,
//! Prometheus (with the exposition checker; scripts/ci-monitoring.sh lints it with promtool) and the
//! human profile; a root whose processes are not ours to see is refused with exit 2. The mounted-host
//! case binds this machine's `/` elsewhere in a private mount namespace, as a DaemonSet's
//! `-v /:/host` does, so it needs root: `#[ignore = "needs root"]`, run by `cargo test -- --ignored`.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

use common::exposition::parse_exposition;
use common::{bin, hostprint, stderr, tree, FakeEtcd};

/// The tests that start an etcd or expect none run one at a time (the test harness runs them in
/// parallel threads).
fn one_etcd_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn json(args: &[&str]) -> serde_json::Value {
    let o = hostprint(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn etcd_of(profile: &serde_json::Value) -> Option<&serde_json::Value> {
    profile["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "etcd")
}

fn assert_running(profile: &serde_json::Value, pid: u32) {
    let etcd = etcd_of(profile).unwrap_or_else(|| panic!("no etcd in {}", profile["components"]));
    assert_eq!(etcd["running"], true, "{etcd}");
    let pids: Vec<u64> = etcd["pids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    assert!(pids.contains(&u64::from(pid)), "pid {pid} not in {pids:?}");
    assert!(pids.is_sorted(), "{pids:?}");
}

#[test]
fn a_running_component_shows_with_its_pid() {
    let _one = one_etcd_at_a_time();
    let etcd = FakeEtcd::start();
    let pid = etcd.pid();

    let v = json(&["--processes", "--format", "json"]);
    assert_running(&v, pid);
    // Nothing installed it: its evidence is the process, and the rule still names it.
    assert_eq!(etcd_of(&v).unwrap()["evidence"][0]["signal"], "process");

    let human = String::from_utf8(hostprint(&["--processes"]).stdout).unwrap();
    let line = human
        .lines()
        .find(|l| l.trim_start().starts_with("components"))
        .unwrap_or_else(|| panic!("no components line:\n{human}"));
    assert!(line.contains("etcd running (pid"), "{line}");
    assert!(line.contains(&pid.to_string()), "{line}");

    let prom = hostprint(&["--processes", "--format", "prometheus"]);
    let text = String::from_utf8(prom.stdout).unwrap();
    let fams = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let running = &fams["hostprint_component_running"].samples;
    let etcd = running
        .iter()
        .find(|(labels, _)| labels["component"] == "etcd")
        .unwrap_or_else(|| panic!("{running:?}"));
    assert_eq!(etcd.1, 1.0);

    // Without the flag nothing is scanned: the same host has no running etcd to tell of, and every
    // component says "not asked".
    let v = json(&["--format", "json"]);
    assert!(etcd_of(&v).is_none(), "{}", v["components"]);
    for c in v["components"].as_array().unwrap() {
        assert_eq!(c["running"], serde_json::Value::Null, "{c}");
        assert_eq!(c["pids"], serde_json::json!([]), "{c}");
    }
    let prom = String::from_utf8(hostprint(&["--format", "prometheus"]).stdout).unwrap();
    assert!(!prom.contains("component_running"), "{prom}");
}

/// A host "mounted" from this machine as far as --processes can tell (our boot id, and a
/// `proc/self/status` whose NSpid has one level), with etcd installed: its rule finds it, and the
/// scan says whether it runs.
#[test]
fn an_installed_component_is_running_or_not() {
    let _one = one_etcd_at_a_time();
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let host = tree(&[
        ("etc/os-release", "ID=centos\nVERSION_ID=7\n"),
        ("usr/bin/etcd", ""),
        ("proc/sys/kernel/random/boot_id", &boot_id),
        ("proc/self/status", "Name:\thostprint\nNSpid:\t4242\n"),
    ]);
    let root = host.path().to_str().unwrap();
    let args = ["--root", root, "--processes", "--format", "json"];

    let v = json(&args);
    let etcd = etcd_of(&v).unwrap_or_else(|| panic!("{}", v["components"]));
    assert_eq!(etcd["running"], false, "{etcd}");
    assert_eq!(etcd["pids"], serde_json::json!([]), "{etcd}");
    assert_eq!(etcd["evidence"][0]["signal"], "require", "{etcd}");
    let human = String::from_utf8(hostprint(&args[..3]).stdout).unwrap();
    assert!(human.contains("etcd not running"), "{human}");

    let running = FakeEtcd::start();
    let v = json(&args);
    assert_running(&v, running.pid());
    // Installed and running: the rule's evidence, not the process's.
    assert_eq!(etcd_of(&v).unwrap()["evidence"][0]["signal"], "require");
}

#[test]
fn a_recorded_root_is_refused() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/coreos-976/root");
    let o = hostprint(&["--processes", "--root", fixture.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    let why = stderr(&o);
    assert!(why.contains("is not this running machine"), "{why}");
    assert!(why.contains("drop --processes"), "{why}");
    // The same root without the flag is fine.
    let o = hostprint(&["--root", fixture.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Runs `hostprint --root <this machine's / bound at a new place> --processes --format json` in a
/// private mount namespace; `pid_namespace` runs hostprint in a PID namespace of its own, as a pod
/// without `hostPID` is.
fn on_mounted_host(pid_namespace: bool) -> std::process::Output {
    let host = tempfile::tempdir().unwrap();
    let hostprint = match pid_namespace {
        false => r#"exec "$1""#,
        true => r#"exec unshare --pid --fork --mount-proc "$1""#,
    };
    let script =
        format!(r#"mount --rbind / "$0" && {hostprint} --root "$0" --processes --format json"#);
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .arg(host.path())
        .arg(env!("CARGO_BIN_EXE_hostprint"))
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

#[test]
#[ignore = "needs root"]
fn a_mounted_host_is_scanned_only_from_its_pid_namespace() {
    let _one = one_etcd_at_a_time();
    let etcd = FakeEtcd::start();
    let o = on_mounted_host(false);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_running(&serde_json::from_slice(&o.stdout).unwrap(), etcd.pid());

    let o = on_mounted_host(true);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let why = stderr(&o);
    assert!(why.contains("belongs to another PID namespace"), "{why}");
    assert!(why.contains("hostPID: true"), "{why}");
}

#[test]
fn processes_is_a_probe_flag() {
    let o = bin().args(["schema", "--processes"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}
