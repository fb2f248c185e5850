//! Privilege and PID namespaces: what a DaemonSet without root, or a node whose PID 1 is not systemd,
//! looks like to hostprint. These run the real binary without privileges (as uid 65534 when the tests
//! run as root) or inside a fresh PID + mount namespace (`unshare`). The two that need root are
//! `#[ignore = "needs root"]`: `cargo test -- --ignored`, as root, runs them (CI does).
//!
//! Unreadable is not absent: a file we may not read is listed with "permission denied", and it never
//! triggers a fallback (an unreadable `etc/os-release` must not make `usr/lib/os-release` count).

mod common;

use std::process::Command;
use std::time::Duration;

use common::{bin, chmod, probe_json, run, tree, unprivileged_bin, warnings, Run};

const LIMIT: Duration = Duration::from_secs(10);

fn without_privileges(args: &[&str]) -> Run {
    let mut cmd = unprivileged_bin();
    cmd.args(args);
    run(cmd, LIMIT)
}

/// Root's view of this machine against uid 65534's.
#[test]
#[ignore = "needs root"]
fn unprivileged_live_run_lists_what_it_could_not_read() {
    let privileged = run(
        {
            let mut c = bin();
            c.args(["--format", "json"]);
            c
        },
        LIMIT,
    );
    let nobody = without_privileges(&["--format", "json"]);
    assert!(nobody.status.success(), "{}", nobody.stderr);
    let (root_view, nobody_view) = (privileged.json(), nobody.json());
    assert_eq!(nobody_view["os"], root_view["os"]);
    assert_eq!(nobody_view["identity"]["id"], root_view["identity"]["id"]);
    // PID 1's executable needs ptrace rights: recorded as a fact, not lost as "absent".
    if !root_view["init"]["pid1"]["exe"].is_null() {
        assert!(nobody_view["init"]["pid1"]["exe"].is_null());
        let why = nobody_view["init"]["pid1"]["exe_error"]
            .as_str()
            .unwrap_or("");
        assert!(why.contains("permission denied"), "exe_error {why:?}");
    }
    // Anything nobody is warned about that root is not must be a permission problem, said so.
    let root_warnings = warnings(&root_view);
    for w in warnings(&nobody_view) {
        if !root_warnings.contains(&w) {
            assert!(
                w.1.contains("permission denied"),
                "unexpected warning {w:?}"
            );
        }
    }
}

#[test]
fn unreadable_files_are_listed_as_unreadable_never_as_absent() {
    let dir = tree(&[
        ("etc/os-release", "ID=flatcar\nVERSION_ID=3139.2.0\n"),
        ("usr/lib/os-release", "ID=must-not-be-used\n"),
        ("usr/sbin/update_engine", ""),
        ("usr/share/flatcar/update.conf", "GROUP=stable\n"),
        ("etc/flatcar/update.conf", "GROUP=beta\n"),
        ("proc/1/comm", "systemd\n"),
        ("proc/sys/kernel/osrelease", "5.15.0\n"),
    ]);
    chmod(dir.path(), 0o755);
    let root = dir.path();
    std::fs::create_dir_all(root.join("run/containerd")).unwrap();
    std::os::unix::net::UnixListener::bind(root.join("run/containerd/containerd.sock")).unwrap();

    // With every bit readable the tree says what it says (the control).
    let control = probe_json(root, LIMIT);
    assert!(control.status.success(), "{}", control.stderr);
    let v = control.json();
    assert_eq!(v["os"]["id"], "flatcar");
    assert_eq!(v["updates"][0]["channel"], "beta");
    assert_eq!(v["init"]["pid1"]["comm"], "systemd");
    assert_eq!(v["runtimes"][0]["id"], "containerd");

    for file in ["etc/os-release", "etc/flatcar/update.conf", "proc/1/comm"] {
        chmod(&root.join(file), 0o000);
    }
    for dir in ["proc/sys", "run/containerd"] {
        chmod(&root.join(dir), 0o000);
    }
    let denied = without_privileges(&["--root", root.to_str().unwrap(), "--format", "json"]);
    assert!(denied.status.success(), "{}", denied.stderr);
    let v = denied.json();
    // os-release(5): the fallback is for absence only.
    assert_eq!(v["os"]["id"], serde_json::Value::Null, "{v}");
    assert_eq!(v["os"]["source"], serde_json::Value::Null);
    assert!(!denied.stdout.contains("must-not-be-used"));
    // The admin's override is unreadable: its channel is unknown, not the vendor default.
    assert_eq!(v["updates"][0]["agent"], "update_engine");
    assert_eq!(v["updates"][0]["channel"], serde_json::Value::Null);
    assert_eq!(v["init"]["pid1"]["comm"], serde_json::Value::Null);
    assert_eq!(v["kernel"]["release"], serde_json::Value::Null);
    assert_eq!(v["runtimes"], serde_json::json!([]));
    let w = warnings(&v);
    for path in [
        "etc/os-release",
        "etc/flatcar/update.conf",
        "proc/1/comm",
        "proc/sys/kernel/osrelease",
        "run/containerd/containerd.sock",
    ] {
        assert!(
            w.iter()
                .any(|(p, m)| p == path && m.contains("permission denied")),
            "{path} not listed as unreadable: {w:?}"
        );
    }
    assert!(
        w.iter()
            .any(|(p, m)| p == "usr/lib/os-release" && m.contains("not consulted")),
        "{w:?}"
    );
    // Without root the tempdir could not remove what it cannot enter.
    for dir in ["proc/sys", "run/containerd"] {
        chmod(&root.join(dir), 0o755);
    }
}

/// Runs hostprint inside a new PID + mount namespace whose PID 1 is a copy of `sh` named `name`
/// (comm is the executable's basename).
fn probe_under_pid1_named(name: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let init = dir.path().join(name);
    std::fs::copy("/bin/sh", &init).unwrap();
    chmod(&init, 0o755);
    let out = dir.path().join("profile.json");
    let mut cmd = Command::new("unshare");
    // `; exit $?` keeps the shell alive as PID 1 (a lone command could be exec'd in its place).
    cmd.args(["--pid", "--fork", "--mount-proc"])
        .arg(&init)
        .args(["-c", "\"$0\" --format json > \"$1\"; exit $?"])
        .arg(env!("CARGO_BIN_EXE_hostprint"))
        .arg(&out);
    let result = run(cmd, LIMIT);
    assert!(
        result.status.success(),
        "unshare failed (root without CAP_SYS_ADMIN, or a kernel without PID namespaces?): {}",
        result.stderr
    );
    let text = std::fs::read_to_string(&out).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// RancherOS runs System Docker as PID 1; most hosts run systemd. The live probe, inside a PID
/// namespace whose PID 1 carries each name, must say which.
#[test]
#[ignore = "needs root"]
fn live_pid1_names_the_init_system() {
    for (comm, system) in [("system-dockerd", "system-docker"), ("systemd", "systemd")] {
        let v = probe_under_pid1_named(comm);
        assert_eq!(v["init"]["pid1"]["comm"], comm, "{v}");
        assert_eq!(v["init"]["system"], system, "{v}");
        // PID 1 is not in the initial PID namespace: whatever the markers, not "none".
        assert_ne!(v["environment"]["container"], "none", "{v}");
    }
}

/// As uid 65534 against a mode-000 root, a run printed ~150 "permission denied" warnings and exited
/// 0. A root that cannot be looked into at all is one error, exit 1.
#[test]
fn an_unreadable_root_gave_a_profile_of_permission_errors() {
    let dir = tree(&[
        ("etc/os-release", "ID=flatcar\n"),
        ("proc/1/comm", "systemd\n"),
    ]);
    chmod(dir.path(), 0o000);
    let nobody = without_privileges(&["--root", dir.path().to_str().unwrap(), "--format", "json"]);
    chmod(dir.path(), 0o755);
    assert_eq!(nobody.status.code(), Some(1), "{}", nobody.all_output());
    assert_eq!(nobody.stdout, "");
    assert_eq!(nobody.stderr.lines().count(), 1, "{}", nobody.stderr);
    assert!(
        nobody
            .stderr
            .contains("unreadable as a whole (permission denied)"),
        "{}",
        nobody.stderr
    );
}

/// Runs `sh -c script DIR HOSTPRINT` in private mount, UTS and cgroup namespaces; fails on a
/// non-zero exit.
fn in_own_namespaces(script: &str, dir: &std::path::Path) -> std::process::Output {
    let o = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--uts", "--cgroup"])
        .args(["sh", "-c", script])
        .arg(dir)
        .arg(env!("CARGO_BIN_EXE_hostprint"))
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o
}

/// `/` bound elsewhere (`mount --rbind / DIR`) is the same directory, so it is the live root: in a
/// UTS and cgroup namespace of hostprint's own, it must answer what `--root /` answers about what
/// those namespaces decide (`environment.container`, `host.hostname`). Were it taken for a host
/// mounted into a pod, our own namespaces would be discounted and the two would differ.
#[test]
#[ignore = "needs root"]
fn a_bind_mount_of_slash_answers_as_slash() {
    let bound = tempfile::tempdir().unwrap();
    let script = r#"hostname hostprint-test-uts && mount --rbind / "$0" && "$1" --root "$0" --format json && echo && echo SPLIT && exec "$1" --root / --format json"#;
    let o = in_own_namespaces(script, bound.path());
    let out = String::from_utf8(o.stdout).unwrap();
    let (bound_view, slash_view) = out.split_once("\nSPLIT\n").expect("two profiles");
    let parse = |s: &str| -> serde_json::Value {
        serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
    };
    let (bound_view, slash_view) = (parse(bound_view), parse(slash_view));
    for (section, key) in [
        ("environment", "container"),
        ("environment", "virtualization"),
        ("host", "hostname"),
        ("host", "architecture"),
    ] {
        assert_eq!(
            bound_view[section][key], slash_view[section][key],
            "{section}.{key}: bound {bound_view}\n/ {slash_view}"
        );
    }
    println!(
        "container {}, hostname {}",
        slash_view["environment"]["container"], slash_view["host"]["hostname"]
    );
}

/// A DaemonSet's pod: its own `/` (a tmpfs holding the binary and the system's libraries), the
/// machine's `/` bound at `/host`, and UTS and cgroup namespaces of its own. `/host` is then not the
/// live root but runs on our kernel, so our own namespaces must be discounted: the node's hostname,
/// not the pod's, and the container verdict `--root /` gives outside the pod.
#[test]
#[ignore = "needs root"]
fn a_host_mounted_into_a_pod_answers_for_the_host() {
    let pod = tempfile::tempdir().unwrap();
    let script = r#"set -e; hostname hostprint-test-pod; R=$0
        mount -t tmpfs tmpfs "$R"
        for d in usr lib lib64 bin proc; do
            if [ -L /$d ]; then cp -P /$d "$R/$d"
            elif [ -d /$d ]; then mkdir "$R/$d"; mount --rbind /$d "$R/$d"; fi
        done
        mkdir "$R/host"; mount --rbind / "$R/host"
        cp "$1" "$R/hostprint"
        exec chroot "$R" /hostprint --root /host --format json"#;
    let o = in_own_namespaces(script, pod.path());
    let in_pod: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let outside = run(
        {
            let mut c = bin();
            c.args(["--root", "/", "--format", "json"]);
            c
        },
        LIMIT,
    )
    .json();
    assert_ne!(in_pod["host"]["hostname"], "hostprint-test-pod", "{in_pod}");
    for (section, key) in [
        ("environment", "container"),
        ("host", "hostname"),
        ("host", "architecture"),
    ] {
        assert_eq!(
            in_pod[section][key], outside[section][key],
            "{section}.{key}: in the pod {in_pod}\noutside {outside}"
        );
    }
}
