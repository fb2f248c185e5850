//! Unit tests of the root: opening, chroot resolution, capped reads, failure kinds, the manifest.

use super::*;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::symlink;

pub(super) fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("usr/lib")).unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    std::fs::write(dir.path().join("usr/lib/os-release"), "ID=inside\n").unwrap();
    dir
}

/// Links `etc/<a>` and `etc/<b>` to each other: a loop no resolution may follow forever.
pub(super) fn link_loop(dir: &Path, a: &str, b: &str) {
    symlink(b, dir.join("etc").join(a)).unwrap();
    symlink(a, dir.join("etc").join(b)).unwrap();
}

#[test]
fn absolute_symlink_resolves_inside_the_root() {
    let dir = tree();
    symlink("/usr/lib/os-release", dir.path().join("etc/os-release")).unwrap();
    let root = Root::open(dir.path()).unwrap();
    let text = root.read_text("etc/os-release", 1024).unwrap();
    assert_eq!(text.text, "ID=inside\n");
}

#[test]
fn dotdot_cannot_climb_out() {
    let dir = tree();
    symlink(
        "../../../../../../../usr/lib/os-release",
        dir.path().join("etc/os-release"),
    )
    .unwrap();
    let root = Root::open(dir.path()).unwrap();
    assert_eq!(
        root.read_text("etc/os-release", 1024).unwrap().text,
        "ID=inside\n"
    );
    assert_eq!(
        root.read_text("../../../usr/lib/os-release", 1024)
            .unwrap()
            .text,
        "ID=inside\n"
    );
}

#[test]
fn absent_unreadable_and_wrong_kind_stay_apart() {
    let dir = tree();
    link_loop(dir.path(), "loop-a", "loop-b");
    let root = Root::open(dir.path()).unwrap();
    assert_eq!(root.read("etc/missing", 10).unwrap_err(), Failure::Absent);
    assert_eq!(
        root.read("etc/os-release/x", 10).unwrap_err(),
        Failure::Absent
    );
    assert_eq!(
        root.read("etc/loop-a", 10).unwrap_err(),
        Failure::Unreadable(Reason::Errno(Errno::ELOOP))
    );
    assert_eq!(
        root.read("etc", 10).unwrap_err(),
        Failure::WrongKind(FileKind::Dir)
    );
}

#[test]
fn fifo_is_never_opened() {
    let dir = tree();
    nix::unistd::mkfifo(
        &dir.path().join("etc/os-release"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let root = Root::open(dir.path()).unwrap();
    assert_eq!(
        root.read("etc/os-release", 10).unwrap_err(),
        Failure::WrongKind(FileKind::Fifo)
    );
    assert_eq!(root.take_warnings().len(), 1);
}

#[test]
fn reads_are_capped() {
    let dir = tree();
    std::fs::write(dir.path().join("etc/big"), vec![b'a'; 5000]).unwrap();
    let root = Root::open(dir.path()).unwrap();
    let c = root.read("etc/big", 100).unwrap();
    assert_eq!(c.bytes.len(), 100);
    assert!(c.truncated);
}

/// `var/run -> ../run`, and a manifest with a socket under `run/` and an unreadable file.
pub(super) fn tree_with_manifest() -> tempfile::TempDir {
    let dir = tree();
    std::fs::create_dir_all(dir.path().join("run")).unwrap();
    std::fs::create_dir_all(dir.path().join("var")).unwrap();
    symlink("../run", dir.path().join("var/run")).unwrap();
    std::fs::write(
        dir.path().join(MANIFEST_FILE),
        "[[entry]]\npath = \"run/docker.sock\"\ntype = \"socket\"\n\n[[entry]]\npath = \"etc/shadow\"\ntype = \"unreadable\"\nerror = \"EACCES\"\n",
    )
    .unwrap();
    dir
}

#[test]
fn manifest_stands_in_for_sockets_through_symlinked_parents() {
    let dir = tree_with_manifest();
    let root = Root::open(dir.path()).unwrap();
    assert_eq!(root.stat("run/docker.sock"), Ok(FileKind::Socket));
    assert_eq!(root.stat("var/run/docker.sock"), Ok(FileKind::Socket));
    assert_eq!(
        root.read("etc/shadow", 10).unwrap_err(),
        Failure::Unreadable(Reason::Errno(Errno::EACCES))
    );
}

#[test]
fn bad_manifest_is_a_warning_naming_its_line() {
    let dir = tree();
    std::fs::write(
        dir.path().join(MANIFEST_FILE),
        "[[entry]]\npath = \"x\"\ntype = \"teapot\"\n",
    )
    .unwrap();
    let root = Root::open(dir.path()).unwrap();
    let w = root.take_warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].code, Code::BadManifest);
    assert!(w[0].message.starts_with("line 3: "), "{w:?}");
    assert_eq!(root.stat("x"), Err(Failure::Absent));
}

#[test]
fn missing_file_and_non_roots_are_errors() {
    let dir = tree();
    assert!(matches!(
        Root::open(&dir.path().join("nope")),
        Err(RootError::Missing { .. })
    ));
    assert!(matches!(
        Root::open(&dir.path().join("usr/lib/os-release")),
        Err(RootError::NotADirectory { .. })
    ));
    // A directory with none of etc/, usr/, proc/: an empty mount point, or a parent of the root.
    std::fs::create_dir_all(dir.path().join("empty")).unwrap();
    std::fs::write(dir.path().join("empty/etc"), "a file, not a directory").unwrap();
    for not_a_root in [dir.path().join("empty"), dir.path().join("usr")] {
        match Root::open(&not_a_root) {
            Err(e @ RootError::NotARoot { .. }) => {
                assert!(e.to_string().contains("-v /:/host:ro"), "{e}")
            }
            other => panic!("{}: {other:?}", not_a_root.display()),
        }
    }
}

/// `--root ./link` and `--root /proc/<pid>/root` (a magic link) name the directory they lead
/// to; confinement starts inside it.
#[test]
fn the_root_path_itself_may_be_a_link() {
    let dir = tree();
    let parent = tempfile::tempdir().unwrap();
    let link = parent.path().join("link");
    symlink(dir.path(), &link).unwrap();
    let held = std::fs::File::open(dir.path()).unwrap();
    let magic = PathBuf::from(format!("/proc/self/fd/{}", held.as_raw_fd()));
    for path in [link, magic] {
        let root = Root::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!root.is_live());
        symlink("/usr/lib/os-release", dir.path().join("etc/os-release")).ok();
        assert_eq!(
            root.read_text("etc/os-release", 64).unwrap().text,
            "ID=inside\n"
        );
    }
    let slash = Root::open(Path::new("/proc/self/root")).unwrap();
    assert!(slash.is_live(), "/proc/self/root is this machine's /");
}

#[test]
fn a_manifest_is_honoured_only_in_a_recording() {
    let dir = tree_with_manifest();
    // A recording: proc/ is a plain directory (or absent).
    std::fs::create_dir_all(dir.path().join("proc")).unwrap();
    let recorded = Root::open(dir.path()).unwrap();
    assert_eq!(recorded.stat("run/docker.sock"), Ok(FileKind::Socket));
    assert!(recorded.take_warnings().is_empty());
    // A mounted host: proc/ is a live procfs (bind-mounted here, as `-v /:/host` brings it).
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped the mounted-host half: it needs root to bind-mount /proc");
        return;
    }
    let proc = std::ffi::CString::new(dir.path().join("proc").into_os_string().into_vec()).unwrap();
    // SAFETY: both paths are NUL-terminated strings that outlive the calls.
    let bound = unsafe {
        libc::mount(
            c"/proc".as_ptr(),
            proc.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    assert_eq!(bound, 0, "{}", std::io::Error::last_os_error());
    let mounted = Root::open(dir.path());
    // SAFETY: as above.
    assert_eq!(unsafe { libc::umount(proc.as_ptr()) }, 0);
    let mounted = mounted.unwrap();
    assert_eq!(mounted.stat("run/docker.sock"), Err(Failure::Absent));
    let w = mounted.take_warnings();
    assert!(w.iter().any(|w| w.code == Code::ManifestIgnored), "{w:?}");
}

#[test]
fn readlink_reports_targets_and_non_links() {
    let dir = tree();
    symlink("pid:[4026531836]", dir.path().join("etc/ns")).unwrap();
    let root = Root::open(dir.path()).unwrap();
    assert_eq!(root.readlink("etc/ns").unwrap(), "pid:[4026531836]");
    assert_eq!(
        root.readlink("usr/lib/os-release").unwrap_err(),
        Failure::WrongKind(FileKind::File)
    );
    assert_eq!(root.readlink("etc/nope").unwrap_err(), Failure::Absent);
}
