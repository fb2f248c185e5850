//! One test per bug found and fixed, named after the bug, so that it never comes back. Most were found
//! by the hostile-root matrix (tests/hostile.rs) or the fuzzers (fuzz/); each test here is the
//! smallest input that showed it, run in-process against the library, or against the binary where
//! the bug was in what a user sees (exit codes, every output format).

mod common;

use std::os::unix::fs::{symlink, FileTypeExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::hostprint;
use hostprint::atomic_write;
use hostprint::facts::{environment, mounts, pid1, update};
use hostprint::root::{Root, MANIFEST_FILE};
use hostprint::warning::Warning;

fn fifo(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
}

fn warned(warnings: &[Warning], path: &str, words: &str) -> bool {
    warnings
        .iter()
        .any(|w| w.path.as_deref() == Some(path) && w.message.contains(words))
}

/// PID 1's files, the mount tables and the DMI strings were read "quietly": a FIFO, a loop, a device,
/// a truncated or non-UTF-8 file there produced no warning at all, and init came out null unexplained.
#[test]
fn bad_input_at_pid1_comm_was_silently_ignored() {
    let dir = tempfile::tempdir().unwrap();
    fifo(&dir.path().join("proc/1/comm"));
    std::fs::write(dir.path().join("proc/1/cmdline"), b"/sbin/\xffinit\0").unwrap();
    let root = Root::open(dir.path()).unwrap();
    let p = pid1::probe(&root);
    assert_eq!(p.comm, None);
    let w = root.take_warnings();
    assert!(warned(&w, "proc/1/comm", "is a fifo"), "{w:?}");
    assert!(warned(&w, "proc/1/cmdline", "not valid UTF-8"), "{w:?}");
}

/// A symlink loop (or a directory we may not search) at a marker that is only stat'ed counted as
/// "absent" without a word: an update agent or runtime could vanish from the profile unexplained.
#[test]
fn symlink_loop_at_a_marker_was_silently_absent() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("usr/bin")).unwrap();
    symlink("rpm-ostree", dir.path().join("usr/bin/rpm-ostree")).unwrap();
    let root = Root::open(dir.path()).unwrap();
    assert!(update::probe(&root, &Default::default()).is_empty());
    let w = root.take_warnings();
    assert!(warned(&w, "usr/bin/rpm-ostree", "symbolic links"), "{w:?}");
}

/// `etc/system-image/channel.ini` is both the evidence of Snappy's updater and the file read for
/// its channel; a FIFO there failed the "file or directory" test and was never read, so no warning.
#[test]
fn fifo_at_channel_ini_hid_the_update_agent_silently() {
    let dir = tempfile::tempdir().unwrap();
    fifo(&dir.path().join("etc/system-image/channel.ini"));
    let root = Root::open(dir.path()).unwrap();
    assert!(update::probe(&root, &Default::default()).is_empty());
    let w = root.take_warnings();
    assert!(
        warned(&w, "etc/system-image/channel.ini", "is a fifo"),
        "{w:?}"
    );
}

/// A namespace "link" that was a file, a FIFO, or a link with foreign text was dropped silently and
/// the container verdict fell to marker files with nothing said.
#[test]
fn namespace_link_that_is_not_one_was_silently_ignored() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("proc/1/ns")).unwrap();
    std::fs::write(dir.path().join("proc/1/ns/pid"), "pid:[4026531836]").unwrap();
    symlink("not-a-namespace", dir.path().join("proc/1/ns/cgroup")).unwrap();
    std::fs::create_dir_all(dir.path().join("proc/self/ns")).unwrap();
    symlink("pid:[4026531836]", dir.path().join("proc/self/ns/pid")).unwrap();
    symlink("cgroup:[1]", dir.path().join("proc/self/ns/cgroup")).unwrap();
    let root = Root::open(dir.path()).unwrap();
    let env = environment::probe(&root, None, None);
    // PID 1's bad link is not evidence; our own (a non-initial cgroup namespace) decides.
    assert_eq!(env.container.as_deref(), Some("container-other"));
    let w = root.take_warnings();
    assert!(
        warned(&w, "proc/1/ns/pid", "is a file, not a namespace link"),
        "{w:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("proc/1/ns")).unwrap();
    symlink("pid:[4026531836]", dir.path().join("proc/1/ns/pid")).unwrap();
    symlink("elsewhere", dir.path().join("proc/1/ns/cgroup")).unwrap();
    let root = Root::open(dir.path()).unwrap();
    environment::probe(&root, None, None);
    let w = root.take_warnings();
    assert!(
        warned(&w, "proc/1/ns/cgroup", "not a namespace link"),
        "{w:?}"
    );
}

/// A 4 MiB mount table of garbage kept one error string per line (~60 MiB peak for a 50 MiB file
/// capped at 4 MiB), and each error was procfs-core's "Internal error: bug at /root/.cargo/registry/…
/// (please report this procfs bug)", which for a long line embedded the whole line: a 4 MB warning.
#[test]
fn mountinfo_garbage_kept_every_error_and_leaked_procfs_internals() {
    let garbage = "not a mount line\n".repeat(10_000);
    let (m, bad) = mounts::parse(&garbage);
    assert_eq!(m, None);
    assert_eq!(bad.count, 10_000);
    assert_eq!(bad.first, Some((1, "not a mount line".to_string())));

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("proc/self")).unwrap();
    std::fs::write(
        dir.path().join("proc/self/mountinfo"),
        format!("A={}", "x".repeat(1 << 20)),
    )
    .unwrap();
    let root = Root::open(dir.path()).unwrap();
    mounts::probe(&root);
    let w = root.take_warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0]
        .message
        .starts_with("1 malformed line(s), first at line 1"));
    assert!(w[0].message.len() < 200, "{} bytes", w[0].message.len());
    assert!(!w[0].message.contains("procfs bug"), "{}", w[0].message);
}

/// A manifest that was there but unusable (a FIFO, a loop) was ignored without a word, so a recorded
/// root silently lost its sockets and unreadable entries.
#[test]
fn unusable_manifest_was_silently_ignored() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    fifo(&dir.path().join(MANIFEST_FILE));
    let root = Root::open(dir.path()).unwrap();
    let w = root.take_warnings();
    assert!(warned(&w, MANIFEST_FILE, "is a fifo"), "{w:?}");
}

/// An unreadable admin override (`etc/flatcar/update.conf`, mode 000 or a FIFO) was treated as absent,
/// so the vendor default's channel was reported as if it were the host's. Only absence falls back.
#[test]
fn unusable_update_conf_override_passed_off_the_vendor_default() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("usr/share/flatcar")).unwrap();
    std::fs::write(
        dir.path().join("usr/share/flatcar/update.conf"),
        "GROUP=stable\n",
    )
    .unwrap();
    fifo(&dir.path().join("etc/flatcar/update.conf"));
    let root = Root::open(dir.path()).unwrap();
    let agents = update::probe(&root, &Default::default());
    assert_eq!(agents.len(), 1);
    assert_eq!(agents[0].agent, "update_engine");
    assert_eq!(agents[0].channel, None, "the override's channel is unknown");
    let w = root.take_warnings();
    assert!(warned(&w, "etc/flatcar/update.conf", "is a fifo"), "{w:?}");
}

/// `--output` renamed a regular file over whatever was there: as root, `--output /dev/null` replaced
/// the device node (every other program then wrote to a file), and a FIFO or a symlink to a device
/// went the same way. A target that exists and is not a regular file is refused, untouched.
#[test]
fn output_replaced_device_nodes_fifos_and_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    let fifo_path = dir.path().join("fifo");
    fifo(&fifo_path);
    let to_null = dir.path().join("null-link");
    symlink("/dev/null", &to_null).unwrap();
    let to_stdout = dir.path().join("stdout-link");
    symlink("/proc/self/fd/1", &to_stdout).unwrap();
    for (target, says) in [
        (&fifo_path, "is a FIFO"),
        (&to_null, "is a symlink (to /dev/null)"),
        (&to_stdout, "is a symlink (to /proc/self/fd/1)"),
    ] {
        let err = atomic_write::write(target, b"x").unwrap_err();
        assert!(err.to_string().contains(says), "{err}");
    }
    assert!(std::fs::symlink_metadata(&fifo_path)
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(
        std::fs::read_link(&to_null).unwrap(),
        Path::new("/dev/null")
    );
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        3,
        "nothing else written"
    );

    // Through the binary: exit 1, the reason, and no temporary file named.
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("etc")).unwrap();
    for target in [fifo_path.to_str().unwrap(), "/dev/null"] {
        let o = hostprint(&["--root", root.path().to_str().unwrap(), "--output", target]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{target}: {err}");
        assert!(err.contains("replaces only a regular file"), "{err}");
        assert!(
            !err.contains("temporary") && !err.contains("/.fifo."),
            "{err}"
        );
    }
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
}

/// With stdout closed (`hostprint >&-`) a run printed nothing and exited 0: std takes writes to a
/// closed descriptor as done. It is exit 1 with a message on stderr.
#[test]
fn closed_stdout_exited_0_with_no_output() {
    use std::os::unix::process::CommandExt;
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("etc")).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hostprint"));
    cmd.env_remove("RUST_LOG")
        .args(["--root", root.path().to_str().unwrap()])
        .stdout(std::process::Stdio::null());
    // SAFETY: close(2) in the child between fork and exec touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::close(1);
            Ok(())
        })
    };
    let o = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("stdout"), "{err}");
}

/// `proc/1/comm` ending in CRLF (a recorded root edited on another system) made init "other" on a
/// systemd host: the `\r` stayed in the name.
#[test]
fn crlf_in_pid1_comm_turned_systemd_into_other() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("proc/1")).unwrap();
    std::fs::write(dir.path().join("proc/1/comm"), "systemd\r\n").unwrap();
    let root = Root::open(dir.path()).unwrap();
    let p = pid1::probe(&root);
    assert_eq!(p.comm.as_deref(), Some("systemd"));
    assert_eq!(pid1::classify(&p), Some("systemd"));
}

/// PID 1's and the kernel's command lines were printed verbatim in every format: tokens, database
/// passwords and Ignition URLs with credentials, in a file written 0644. Their values are masked
/// where the facts are read, so no output shows them; the keys stay.
#[test]
fn command_lines_printed_credentials_verbatim() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::create_dir_all(p.join("etc")).unwrap();
    std::fs::create_dir_all(p.join("proc/1")).unwrap();
    std::fs::write(
        p.join("etc/os-release"),
        "ID=flatcar\nVERSION_ID=3139.2.0\n",
    )
    .unwrap();
    std::fs::write(p.join("proc/1/comm"), "agent\n").unwrap();
    std::fs::write(
        p.join("proc/1/cmdline"),
        "/usr/bin/agent\0--token=tok-SECRET-1\0--password\0pw-SECRET-2\0\
         --db=postgres://u:pg-SECRET-3@db/x\0",
    )
    .unwrap();
    std::fs::write(
        p.join("proc/cmdline"),
        "ro ignition.config.url=https://user:p4ss@host/config.ign rd.luks.key=luks-SECRET-4 \
         ignition.platform.id=qemu\n",
    )
    .unwrap();
    let root = p.to_str().unwrap();
    for args in [
        &["--format", "json"][..],
        &["--format", "human"],
        &["--explain"],
        &["--format", "prometheus"],
        &["--format", "nfd"],
    ] {
        let o = hostprint(&[&["--root", root][..], args].concat());
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        for secret in ["SECRET", "p4ss"] {
            assert!(!all.contains(secret), "{args:?} shows {secret}: {all}");
        }
    }
    let o = hostprint(&["--root", root, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["init"]["pid1"]["cmdline"],
        serde_json::json!([
            "/usr/bin/agent",
            "--token=***",
            "--password",
            "***",
            "--db=postgres://u:***@db/x"
        ])
    );
    assert_eq!(
        v["kernel"]["cmdline"],
        serde_json::json!([
            "ro",
            "ignition.config.url=https://user:***@host/config.ign",
            "rd.luks.key=***",
            "ignition.platform.id=qemu"
        ])
    );
}

/// An empty directory (a DaemonSet whose `/host` mount is missing) or a path one level too high
/// (`fixtures/flatcar-3139` instead of `.../root`) printed "unknown OS", exited 0 and wrote
/// `os.kind=unknown` labels. Now: exit 1, a message naming the path and what to check, no output file
/// written or replaced, and an `--interval` agent's first round fails.
#[test]
fn a_missing_host_mount_labelled_the_node_unknown() {
    let empty = tempfile::tempdir().unwrap();
    let above = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/flatcar-3139");
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("features");
    std::fs::write(&target, "os.id=flatcar\n").unwrap();
    for root in [empty.path(), above.as_path()] {
        let root_arg = root.to_str().unwrap();
        for extra in [
            &[][..],
            &["--format", "nfd", "--output", target.to_str().unwrap()],
        ] {
            let mut cmd = common::bin();
            cmd.args(["--root", root_arg]).args(extra);
            let run = common::run(cmd, Duration::from_secs(10));
            assert_eq!(
                run.status.code(),
                Some(1),
                "{extra:?}: {}",
                run.all_output()
            );
            assert!(run.stderr.contains(root_arg), "{}", run.stderr);
            assert!(run.stderr.contains("-v /:/host:ro"), "{}", run.stderr);
            assert_eq!(run.stdout, "");
        }
        let mut agent = common::bin();
        agent.args([
            "--root",
            root_arg,
            "--format",
            "nfd",
            "--interval",
            "1s",
            "--output",
        ]);
        agent.arg(&target);
        let run = common::run(agent, Duration::from_secs(10));
        assert_eq!(run.status.code(), Some(1), "{}", run.all_output());
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            "os.id=flatcar\n",
            "the last good file stays"
        );
    }
}

/// `--root ./link` and `--root /proc/<pid>/root` failed with "open root handle failed": the path the
/// user names must be followed, and confinement start inside it.
#[test]
fn a_root_path_that_is_a_link_could_not_be_opened() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("real/etc")).unwrap();
    std::fs::write(dir.path().join("real/etc/os-release"), "ID=inside\n").unwrap();
    symlink("real", dir.path().join("link")).unwrap();
    let mut cmd = common::bin();
    cmd.current_dir(dir.path())
        .args(["--root", "./link", "--format", "json"]);
    let run = common::run(cmd, Duration::from_secs(10));
    assert!(run.status.success(), "{}", run.all_output());
    assert_eq!(run.json()["os"]["id"], "inside");
    let run = common::run(
        {
            let mut c = common::bin();
            c.args(["--root", "/proc/self/root", "--format", "json"]);
            c
        },
        Duration::from_secs(10),
    );
    assert!(run.status.success(), "{}", run.all_output());
}

/// A root with no evidence (no namespace links, no marker, no `run/`) reported
/// `environment.container: "none"` and `filesystem.ostree_booted: false`, confident answers from
/// nothing. Unknown is null; `run/` without the marker is a real "no".
#[test]
fn a_root_without_evidence_said_it_was_no_container_and_not_ostree_booted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    let root = Root::open(dir.path()).unwrap();
    assert_eq!(environment::probe(&root, None, None).container, None);
    let json = |root: &Path| -> serde_json::Value {
        let o = hostprint(&["--root", root.to_str().unwrap(), "--format", "json"]);
        assert!(o.status.success(), "{}", common::stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let booted = |v: serde_json::Value| v["filesystem"]["ostree_booted"].clone();
    assert_eq!(
        json(dir.path())["environment"]["container"],
        serde_json::Value::Null
    );
    assert_eq!(booted(json(dir.path())), serde_json::Value::Null);
    std::fs::create_dir_all(dir.path().join("run")).unwrap();
    assert_eq!(booted(json(dir.path())), false);
    std::fs::write(dir.path().join("run/ostree-booted"), "").unwrap();
    assert_eq!(booted(json(dir.path())), true);
}

/// A malformed `.hostprint-manifest.toml` in a scanned root aborted the run (exit 1: an agent
/// crash-looped on it). It is a warning now, and the tree is probed as it is.
#[test]
fn a_malformed_manifest_aborted_the_run() {
    let dir = common::tree(&[
        (
            "etc/os-release",
            "ID=flatcar\nNAME=Flatcar\nPRETTY_NAME=\"Flatcar 1\"\n",
        ),
        (MANIFEST_FILE, "[[entry]]\npath = 3\n"),
    ]);
    let run = common::probe_json(dir.path(), Duration::from_secs(10));
    assert!(run.status.success(), "{}", run.all_output());
    let v = run.json();
    assert_eq!(v["os"]["id"], "flatcar");
    let codes: Vec<&str> = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["code"].as_str())
        .collect();
    assert_eq!(codes, ["bad-manifest"], "{v}");
}

/// A rule naming `etc/shadow` as a key-value file made the malformed-line warning print
/// `root:$6$…`; `registries.yaml` printed its `password:` line the same way. A line of a file on the
/// secret list is never quoted (also when reached through a link), and quoted lines of other files
/// have credential-looking values masked, in every output.
#[test]
fn malformed_line_warnings_quoted_secret_files() {
    let dir = common::tree(&[
        ("etc/os-release", "ID=k3os\n"),
        ("etc/shadow", "root:$6$SALT$SHADOWHASH:19000:0:99999:7:::\n"),
        (
            "etc/rancher/k3s/registries.yaml",
            "configs:\n  registry.example:\n    auth:\n      password: REGISTRYPASS\n",
        ),
        (
            "etc/app.conf",
            "password: APPPASS\nurl postgres://u:URLPASS@db/x\n",
        ),
    ]);
    symlink("shadow", dir.path().join("etc/innocent.conf")).unwrap();
    let rules = common::tree(&[(
        "nosy.toml",
        "id = \"nosy\"\nname = \"Nosy\"\nkind = \"component\"\nfixtures = []\n\n\
         [[require]]\nwhy = \"w\"\nos_release = { key = \"ID\", equals = \"k3os\" }\n\n\
         [[support]]\nwhy = \"w\"\nkv_file = { path = \"etc/shadow\", key = \"root\", present = true }\n\n\
         [[support]]\nwhy = \"w\"\nkv_file = { path = \"etc/innocent.conf\", key = \"root\", present = true }\n\n\
         [[support]]\nwhy = \"w\"\nkv_file = { path = \"etc/rancher/k3s/registries.yaml\", key = \"x\", present = true }\n\n\
         [[support]]\nwhy = \"w\"\nkv_file = { path = \"etc/app.conf\", key = \"x\", present = true }\n",
    )]);
    for format in ["json", "human", "prometheus", "nfd"] {
        let o = common::probe_with_rules(rules.path(), dir.path(), format);
        assert!(o.status.success(), "{}", common::stderr(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        for secret in ["SHADOWHASH", "SALT", "REGISTRYPASS", "APPPASS", "URLPASS"] {
            assert!(!out.contains(secret), "{format} shows {secret}:\n{out}");
        }
        if format == "json" {
            assert!(
                out.contains("line 1: no '=' in the line (not quoted"),
                "{out}"
            );
            assert!(out.contains(r#"\"password: ***\""#), "{out}");
            assert!(out.contains("postgres://u:***@db/x"), "{out}");
        }
    }
    let (_, bad) = mounts::parse("not a mount line, password=MOUNTPASS\n");
    assert!(!bad.first.unwrap().1.contains("MOUNTPASS"));
}

/// "etc/os-release: not used; usr/lib/os-release is consulted only when this file is absent" was
/// attached to the unusable file, and to usr/lib/os-release itself when that one failed. The warning
/// belongs to the file that was not consulted, and only when it is there.
#[test]
fn os_release_fallback_warning_was_attached_to_the_wrong_file() {
    let codes = |w: &[Warning]| -> Vec<(String, &'static str)> {
        w.iter()
            .map(|w| (w.path.clone().unwrap_or_default(), w.code.as_str()))
            .collect()
    };
    let dir = common::tree(&[("usr/lib/os-release", "ID=fallback\n")]);
    fifo(&dir.path().join("etc/os-release"));
    let root = Root::open(dir.path()).unwrap();
    assert_eq!(hostprint::facts::os_release::probe(&root).source, None);
    assert_eq!(
        codes(&root.take_warnings()),
        [
            ("etc/os-release".to_string(), "wrong-kind"),
            ("usr/lib/os-release".to_string(), "os-release-unusable")
        ]
    );

    let dir = common::tree(&[("etc/motd", "")]);
    fifo(&dir.path().join("usr/lib/os-release"));
    let root = Root::open(dir.path()).unwrap();
    hostprint::facts::os_release::probe(&root);
    assert_eq!(
        codes(&root.take_warnings()),
        [("usr/lib/os-release".to_string(), "wrong-kind")]
    );
}

/// An os-release with ID and NAME but no PRETTY_NAME, or with no ID, was used silently (and shown as
/// "none found"). It is used as it is, and what it lacks is warned about.
#[test]
fn os_release_without_pretty_name_or_id_was_not_warned_about() {
    for (text, lacks) in [
        (
            "ID=centos\nNAME=\"CentOS Stream CoreOS\"\n",
            "has no PRETTY_NAME",
        ),
        ("NAME=\"openSUSE Leap Micro\"\n", "has no ID, PRETTY_NAME"),
    ] {
        let dir = common::tree(&[("etc/os-release", text)]);
        let root = Root::open(dir.path()).unwrap();
        let os = hostprint::facts::os_release::probe(&root);
        assert_eq!(os.source.as_deref(), Some("etc/os-release"));
        let w = root.take_warnings();
        assert!(warned(&w, "etc/os-release", lacks), "{w:?}");
        assert_eq!(w[0].code.as_str(), "os-release-incomplete");
    }
}

/// Human output said "os-release   none found" for an os-release with ID and NAME but no
/// PRETTY_NAME (scos-10), or with no ID: it was found, so it says what it has, and the warnings say
/// what it lacks.
#[test]
fn human_output_said_none_found_for_an_os_release_without_pretty_name() {
    for (text, shown, headline) in [
        (
            "ID=centos\nNAME=\"CentOS Stream CoreOS\"\nVERSION_ID=10\n",
            "os-release   CentOS Stream CoreOS 10  [etc/os-release]",
            "centos 10",
        ),
        (
            "NAME=\"Leap Micro\"\n",
            "os-release   Leap Micro  [etc/os-release]",
            "os-release has no ID and no rule matched",
        ),
    ] {
        let dir = common::tree(&[("etc/os-release", text)]);
        let o = hostprint(&["--root", dir.path().to_str().unwrap()]);
        assert!(o.status.success(), "{}", common::stderr(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains(shown), "{out}");
        assert!(out.contains(headline), "{out}");
        assert!(!out.contains("os-release   none found"), "{out}");
        assert!(out.contains("! /etc/os-release: has no "), "{out}");
    }
}

/// ESC/OSC sequences in host text (os-release `NAME`/`PRETTY_NAME`, PID 1's comm and exe, the
/// hostname, the kernel release, the update channel, a malformed os-release line, user rule texts)
/// reached the terminal raw: `PRETTY_NAME="Debian\033[8m"` hid everything after it. Human output,
/// `--explain`, `fingerprints`, errors and `-v` logs now show them escaped; JSON, NFD and Prometheus
/// stay valid and keep the value.
#[test]
fn host_text_injected_terminal_escape_sequences() {
    const RAW: [char; 2] = ['\x1b', '\x07'];
    let root = common::tree(&[
        (
            "etc/os-release",
            "ID=debian\nVERSION_ID=12\nNAME=\"Flat\x1b]8;;http://x\x07car\"\n\
             PRETTY_NAME=\"Debian\x1b[8m\"\n\x1b[8mnot a key-value line\n",
        ),
        ("etc/flatcar/update.conf", "GROUP=sta\x1b[8mble\n"),
        ("etc/hostname", "evil\x1b[2Jhost\n"),
        ("proc/1/comm", "sys\x1b[5mtemd\n"),
        ("proc/sys/kernel/osrelease", "6.1\x1b[8m\n"),
    ]);
    symlink("/usr/lib/\x1b[8msystemd", root.path().join("proc/1/exe")).unwrap();
    let rules = common::tree(&[(
        "acme.toml",
        "id = \"acme-os\"\nname = \"\\u001b[8mAcme\"\nkind = \"container-os\"\nfixtures = []\n\n\
         [[require]]\nwhy = \"\\u001b]8;;http://x\\u0007os-release\"\nweight = 90\n\
         os_release = { key = \"ID\", equals = \"acme\" }\n",
    )]);
    let (r, dir) = (
        root.path().to_str().unwrap(),
        rules.path().to_str().unwrap(),
    );
    let run = |args: &[&str]| {
        let o = common::bin()
            .env_remove("NO_COLOR")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", common::stderr(&o));
        (
            String::from_utf8(o.stdout.clone()).unwrap(),
            common::stderr(&o),
        )
    };
    for args in [
        &["--root", r][..],
        &["--root", r, "--explain", "--fingerprints", dir],
        &["--root", r, "-vv"],
        &["--root", r, "--format", "json", "-v"],
        &["--root", r, "--format", "nfd"],
        &["fingerprints", "--fingerprints", dir],
    ] {
        let (out, err) = run(args);
        assert!(!out.contains(RAW), "{args:?} stdout: {out:?}");
        assert!(!err.contains(RAW), "{args:?} stderr: {err:?}");
    }
    // The host text is shown, escaped, in each place it is printed.
    let (human, _) = run(&["--root", r, "--explain", "--fingerprints", dir]);
    for shown in [
        "Debian\\x1b[8m",
        "Flat\\x1b]8;;http://x\\x07car",
        "sta\\x1b[8mble",
        "evil\\x1b[2Jhost",
        "sys\\x1b[5mtemd /usr/lib/\\x1b[8msystemd",
        "6.1\\x1b[8m",
        "\\x1b]8;;http://x\\x07os-release",
    ] {
        assert!(human.contains(shown), "{shown:?} not in {human}");
    }
    // Errors quote what they could not parse.
    let bad = common::tree(&[("bad.toml", "id = \"\x1b[8m\n")]);
    let o = hostprint(&["--root", r, "--fingerprints", bad.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!common::stderr(&o).contains(RAW), "{}", common::stderr(&o));

    // With colour (a terminal), the only escape sequences are the renderer's own.
    let set = hostprint::rules::RuleSet::embedded().unwrap();
    let report = hostprint::profile::build(&Root::open(root.path()).unwrap(), &set);
    let style = hostprint::output::human::Style { color: true };
    let mut painted = hostprint::output::human::render(&report, &style, true);
    assert!(painted.contains("\x1b[1m") && painted.contains("Debian\\x1b[8m"));
    for ours in [
        "\x1b[0m", "\x1b[1m", "\x1b[2m", "\x1b[31m", "\x1b[32m", "\x1b[33m",
    ] {
        painted = painted.replace(ours, "");
    }
    assert!(!painted.contains(RAW), "{painted:?}");

    // The machine formats keep the value and stay parseable.
    let (json, _) = run(&["--root", r, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["os"]["pretty_name"], "Debian\x1b[8m");
    assert_eq!(v["host"]["hostname"], "evil\x1b[2Jhost");
    let (prom, _) = run(&["--root", r, "--format", "prometheus"]);
    let fams = common::exposition::parse_exposition(&prom).unwrap();
    let (labels, _) = common::exposition::one(&fams, "hostprint_update_agent_info");
    assert_eq!(labels["channel"], "sta\x1b[8mble");
    let (nfd, _) = run(&["--root", r, "--format", "nfd"]);
    for line in nfd.lines().filter(|l| !l.starts_with('#')) {
        let (key, value) = line.split_once('=').unwrap();
        let ok = |s: &str| s.chars().all(|c| c.is_ascii_graphic());
        assert!(ok(key) && ok(value), "{line:?}");
    }
}

/// A directory holding `files` (name, content): a rule directory.
fn rule_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

/// The stderr of `fingerprints --check PATH` and of `--fingerprints PATH`, each asserted to be exit 2.
fn rules_refused(path: &Path) -> [String; 2] {
    let path = path.to_str().unwrap();
    [
        &["fingerprints", "--check", path][..],
        &["--fingerprints", path],
    ]
    .map(|args| {
        let o = hostprint(args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        err
    })
}

const RULE_HEAD: &str = "id = \"mine\"\nname = \"Mine\"\nkind = \"container-os\"\n";

/// A value no probe reports (a typo), or an empty group, made a rule that loaded and could never
/// match. Each is refused at its line, with the closest value the probes do report.
#[test]
fn rules_that_could_never_match_were_accepted() {
    for (condition, words) in [
        ("init = \"system-d\"", "did you mean \"systemd\""),
        ("update_agent = \"zincatti\"", "did you mean \"zincati\""),
        ("runtime = \"dokcer\"", "did you mean \"docker\""),
        (
            "selinux = { mode = \"enforcin\" }",
            "did you mean \"enforcing\"",
        ),
        (
            "os_release = { key = \"ID\", one_of = [] }",
            "one_of = [] never matches",
        ),
        ("any = []", "any = [] is empty"),
        ("all = []", "all = [] is empty"),
    ] {
        let text = format!("{RULE_HEAD}\n[[require]]\nwhy = \"w\"\n{condition}\n");
        let dir = rule_dir(&[("mine.toml", &text)]);
        for err in rules_refused(dir.path()) {
            assert!(
                err.contains("mine.toml:5: [[require]]"),
                "{condition}: {err}"
            );
            assert!(err.contains(words), "{condition}: {err}");
        }
    }
    // What the probes report is accepted, nested too.
    let text = format!("{RULE_HEAD}\n[[require]]\nwhy = \"w\"\nany = [{{ init = \"systemd\" }}, {{ runtime = \"cri-o\" }}]\n");
    let dir = rule_dir(&[("mine.toml", &text)]);
    let o = hostprint(&["fingerprints", "--check", dir.path().to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A rule directory with no `*.toml` was "0 rule file(s) valid", exit 0, and `--fingerprints` added
/// nothing without a word. It is exit 2, saying what is there instead.
#[test]
fn a_directory_without_rule_files_added_nothing_silently() {
    let dir = rule_dir(&[("mine.yaml", ""), ("other.TOML", "")]);
    std::fs::create_dir(dir.path().join("nested")).unwrap();
    for err in rules_refused(dir.path()) {
        assert!(err.contains("no *.toml rule files"), "{err}");
        assert!(err.contains("mine.yaml, other.TOML"), "{err}");
        assert!(
            err.contains("subdirectories are not searched (found nested)"),
            "{err}"
        );
    }
    rules_refused(rule_dir(&[]).path());
}

/// `fingerprints --check` stopped at the first error of the first bad file: fixing a directory took
/// one run per error. Every error of every file is reported, each at its line.
#[test]
fn check_reported_only_the_first_error() {
    let two = format!(
        "{RULE_HEAD}eol = \"someday\"\n\n[[require]]\nwhy = \"w\"\ninit = \"sytemd\"\n\n[[support]]\nwhy = \"w\"\nruntime = \"podmna\"\n"
    );
    let dir = rule_dir(&[
        ("a.toml", &two),
        ("b.toml", "id = \"b\"\nname = \"B\"\nkind = \"os\"\n"),
    ]);
    let [err, _] = rules_refused(dir.path());
    for at in [
        "a.toml:4: eol",
        "a.toml:6: [[require]] init",
        "a.toml:10: [[support]] runtime",
        "b.toml:3:",
    ] {
        assert!(err.contains(at), "{at}: {err}");
    }
    assert_eq!(err.lines().count(), 4, "{err}");
}

/// The rule loader opened a path and only then looked at what it was: a `*.toml` that is a FIFO was
/// opened (a device node would have been, too). Its type is checked first; it is never opened.
#[test]
fn rule_loader_opened_a_fifo_before_checking_its_type() {
    let dir = rule_dir(&[]);
    let fifo_path = dir.path().join("stuck.toml");
    fifo(&fifo_path);
    symlink("/dev/null", dir.path().join("device.toml")).unwrap();
    // inotify reports every open of the FIFO, whoever opens it.
    let watch = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
    assert!(watch >= 0);
    let c_path = std::ffi::CString::new(fifo_path.to_str().unwrap()).unwrap();
    assert!(unsafe { libc::inotify_add_watch(watch, c_path.as_ptr(), libc::IN_OPEN) } >= 0);
    for err in rules_refused(dir.path()) {
        assert!(err.contains("stuck.toml: not a regular file"), "{err}");
        assert!(err.contains("device.toml: not a regular file"), "{err}");
    }
    let mut events = [0u8; 4096];
    let n = unsafe { libc::read(watch, events.as_mut_ptr().cast(), events.len()) };
    unsafe { libc::close(watch) };
    assert_eq!(n, -1, "the FIFO was opened ({n} bytes of inotify events)");
}

/// `schema --format prometheus`, `record --format json` and the probe's flags before a subcommand
/// were accepted and ignored. A flag the subcommand does not use is a usage error (exit 2).
#[test]
fn flags_a_subcommand_does_not_use_were_silently_ignored() {
    let rules = rule_dir(&[]);
    let dir = rules.path().to_str().unwrap();
    for (args, says) in [
        (&["schema", "--format", "prometheus"][..], "--format"),
        (&["record", "--format", "json", dir], "--format"),
        (
            &["--format", "json", "schema"],
            "--format does not apply to `schema`",
        ),
        (&["--pretty", "fingerprints"], "--pretty does not apply"),
        (&["-o", dir, "fingerprints"], "--output does not apply"),
        (
            &["schema", "--root", "/"],
            "--root does not apply to `schema`",
        ),
        (
            &["fingerprints", "--check", dir, "--fingerprints", dir],
            "--fingerprints does not apply to `fingerprints --check`",
        ),
    ] {
        let o = hostprint(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}");
    }
    // What a subcommand uses is taken on either side of its name, and -v anywhere.
    for args in [&["-v", "schema"][..], &["schema", "-v"]] {
        assert_eq!(hostprint(args).status.code(), Some(0), "{args:?}");
    }
}

/// `-v` said "done" for each probe, not what it found, and a user rule replacing a shipped one did
/// so without a word. Each probe's facts are one line; an override names both files.
#[test]
fn verbose_showed_neither_facts_nor_overrides() {
    let host = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(host.path().join("etc")).unwrap();
    std::fs::create_dir_all(host.path().join("proc/1")).unwrap();
    std::fs::write(
        host.path().join("etc/os-release"),
        "ID=acme\nNAME=\"Acme OS\"\n",
    )
    .unwrap();
    std::fs::write(host.path().join("proc/1/comm"), "systemd\n").unwrap();
    let flatcar =
        RULE_HEAD.replace("mine", "flatcar") + "[[require]]\nwhy = \"w\"\ninit = \"systemd\"\n";
    let rules = rule_dir(&[("flatcar.toml", &flatcar)]);
    let o = hostprint(&[
        "-v",
        "--root",
        host.path().to_str().unwrap(),
        "--fingerprints",
        rules.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let err = String::from_utf8_lossy(&o.stderr);
    let line = |words: &str| err.lines().any(|l| l.contains(words));
    assert!(
        line("os-release source=etc/os-release fields.ID=acme fields.NAME=\"Acme OS\""),
        "{err}"
    );
    assert!(line("pid1 comm=systemd"), "{err}");
    assert!(line("init systemd"), "{err}");
    let user = rules.path().join("flatcar.toml");
    let overrides = format!(
        "rule flatcar from {} overrides the one from flatcar.toml",
        user.display()
    );
    assert!(line(&overrides), "{err}");
}

/// `--explain` marked each signal `+`, `-`, `·` or `x` and said nowhere what they mean.
#[test]
fn explain_had_no_legend_for_its_marks() {
    let o = hostprint(&["--root", "fixtures/flatcar-2079/root", "--explain"]);
    let out = String::from_utf8_lossy(&o.stdout);
    let legend = out
        .lines()
        .skip_while(|l| !l.starts_with("explain:"))
        .nth(1)
        .unwrap_or_default();
    for mark in [
        "+ held",
        "- a require",
        "· a support or exclude",
        "x an exclude",
    ] {
        assert!(legend.contains(mark), "{mark}: {legend}");
    }
}

/// An unknown identity (no rule matched, no os-release ID) said `container_os: false`: a confident
/// "no" without evidence. It is null in JSON (and nullable in the schema), `""` in Prometheus, no
/// label in NFD; a known general-purpose host stays `false`.
#[test]
fn unknown_identity_claimed_container_os_false() {
    let empty = common::tree(&[("etc/hostname", "node\n")]);
    let debian = common::tree(&[("etc/os-release", "ID=debian\nVERSION_ID=13\n")]);
    for (root, want) in [(&empty, None), (&debian, Some(false))] {
        let root = root.path().to_str().unwrap();
        let o = hostprint(&["--root", root, "--format", "json"]);
        assert!(o.status.success(), "{}", common::stderr(&o));
        let p: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let known = p["identity"]["kind"] != "unknown";
        assert_eq!(known, want.is_some(), "{}", p["identity"]);
        assert_eq!(p["identity"]["container_os"], serde_json::json!(want));

        let o = common::prometheus(Path::new(root));
        let text = String::from_utf8(o.stdout).unwrap();
        let fams = common::exposition::parse_exposition(&text).unwrap();
        let (info, _) = common::exposition::one(&fams, "hostprint_identity_info");
        let label = info.get("container_os").map_or("", String::as_str);
        assert_eq!(label, want.map_or("", |b| if b { "true" } else { "false" }));

        let o = hostprint(&["--root", root, "--format", "nfd"]);
        let text = String::from_utf8(o.stdout).unwrap();
        let label = text
            .lines()
            .find_map(|l| l.strip_prefix("hostprint.feature.node.kubernetes.io/os.container-os="));
        assert_eq!(
            label,
            want.map(|b| if b { "true" } else { "false" }),
            "{text}"
        );
    }
    let o = hostprint(&["schema"]);
    let schema: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let defs = schema.get("$defs").unwrap_or(&schema["definitions"]);
    let ty = &defs["Identity"]["properties"]["container_os"]["type"];
    assert_eq!(*ty, serde_json::json!(["boolean", "null"]));
}
