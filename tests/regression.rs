//! One test per bug found and fixed, named after the bug, so that it never comes back. Most were found
//! by the hostile-root matrix (tests/hostile.rs) or the fuzzers (fuzz/); each test here is the
//! smallest input that showed it, run in-process against the library, or against the binary where
//! the bug was in what a user sees (exit codes, every output format).

use std::os::unix::fs::{symlink, FileTypeExt};
use std::path::Path;
use std::process::{Command, Output};

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
    assert_eq!(env.container, "container-other");
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

fn hostprint(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hostprint"))
        .env_remove("RUST_LOG")
        .args(args)
        .output()
        .unwrap()
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
