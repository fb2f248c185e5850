//! One test per bug found and fixed, named after the bug, so that it never comes back. Most were found
//! by the hostile-root matrix (tests/hostile.rs) or the fuzzers (fuzz/); each test here is the
//! smallest input that showed it, run in-process against the library.

use std::os::unix::fs::symlink;
use std::path::Path;

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
    assert!(update::probe(&root).is_empty());
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
    assert!(update::probe(&root).is_empty());
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
    assert!(m.is_empty());
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
    let agents = update::probe(&root);
    assert_eq!(agents.len(), 1);
    assert_eq!(agents[0].agent, "update_engine");
    assert_eq!(agents[0].channel, None, "the override's channel is unknown");
    let w = root.take_warnings();
    assert!(warned(&w, "etc/flatcar/update.conf", "is a fifo"), "{w:?}");
}
