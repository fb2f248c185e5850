//! How a path inside the root becomes a file descriptor: the kernel's `openat2(RESOLVE_IN_ROOT)`
//! directly where it exists, `pathrs` everywhere else.
//!
//! Why not `pathrs` for everything: measured on the live host, its general-purpose safety net cost
//! about 15 syscalls per lookup that failed (every error eagerly describes the directory fd by reading
//! `/proc/thread-self/fd/N`, for the message) and about 40 per `Handle::reopen` (it re-validates its
//! cached procfs handle and walks `thread-self/fd` with mount-id checks on every call). A probe makes
//! ~200 lookups, so that was most of hostprint's run time. The fast path keeps the same guarantees
//! with fewer steps:
//! - resolution is the single `openat2(2)` call that `pathrs`' own openat2 resolver makes (same
//!   `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`, same `EAGAIN` retry), so symlinks, absolute ones and
//!   `..` included, stay inside the root exactly as before;
//! - an `O_PATH` handle is reopened for reading through `/proc/<pid>/fd/N`, with the checks `pathrs`
//!   makes on a shared `/proc`, done once where it repeats them per call: `/proc` is the root of a
//!   procfs (magic number, inode 1), `<pid>/fd` is reached without crossing a mount or a symlink
//!   (`RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS`), and before each open the link `N` itself is checked to
//!   be on that same mount (nothing bind-mounted over it). Then the kernel follows the magic link to
//!   the very inode the handle holds, so a path swapped after the caller checked the handle's type
//!   cannot be opened instead.
//!
//! What that leaves out, on purpose: `pathrs` prefers a private procfs instance (`fsopen`) when it
//! has `CAP_SYS_ADMIN`, which also rules out a mount *racing* between the check and the open in
//! hostprint's own mount namespace. Only a process with mount rights over that namespace could race
//! it, and such a process owns hostprint already; the roots hostprint distrusts are the files it
//! reads, which cannot reach its `/proc`. The private instance cost ~85 µs per run (creating a procfs
//! superblock, and at exit an expedited RCU grace period to dissolve the detached mount) — 6% of a
//! probe, measured with hyperfine; the checks here cost one `statx` per file read.
//!
//! Where `openat2` is missing (kernels before 5.6: CoreOS, RancherOS and Atomic hosts) or filtered by
//! seccomp, every lookup goes through `pathrs`' userspace emulation; where `/proc` is missing, fails
//! a check, or the kernel has no `STATX_MNT_ID` (before 5.8), reopening goes through
//! `pathrs::Handle::reopen`. Both are slower and at least as safe.

use std::cell::OnceCell;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use pathrs::flags::OpenFlags;

use super::{errno_text, Failure};

/// Resolves paths inside one root directory.
pub(super) struct Resolver {
    /// The root, as `pathrs` opened it (an `O_PATH` directory handle); also the `dirfd` of the fast path.
    root: pathrs::Root,
    /// `openat2(2)` with `RESOLVE_IN_ROOT` works here (checked once when the root is opened).
    openat2: bool,
    /// Our own `/proc/<pid>/fd`, checked, for reopening handles; found on first use, `None` when
    /// `/proc` is unusable.
    fd_dir: OnceCell<Option<FdDir>>,
}

/// `pathrs` retries `EAGAIN` (a rename or mount raced the lookup anywhere on the system) 128 times;
/// so do we, so that the two paths fail alike.
const EAGAIN_RETRIES: usize = 128;

impl Resolver {
    pub(super) fn new(root: pathrs::Root) -> Resolver {
        // One trial lookup of the root itself tells whether the kernel (and seccomp) allow openat2.
        let openat2 = lookup(root.as_fd(), ".", OFlag::empty()).is_ok();
        Resolver {
            root,
            openat2,
            fd_dir: OnceCell::new(),
        }
    }

    /// The `pathrs` root itself, for `Root::trace` (`hostprint record`): it walks one component at a
    /// time and records errno names from `pathrs`' errors; it is not on the probing path.
    pub(super) fn pathrs(&self) -> &pathrs::Root {
        &self.root
    }

    /// An `O_PATH` handle to `rel`, following a trailing symlink when `follow` is set.
    pub(super) fn resolve(&self, rel: &str, follow: bool) -> Result<OwnedFd, Failure> {
        if self.openat2 {
            let nofollow = if follow {
                OFlag::empty()
            } else {
                OFlag::O_NOFOLLOW
            };
            return lookup(self.root.as_fd(), rel, nofollow).map_err(failure_of_errno);
        }
        fallback::resolve(&self.root, rel, follow)
    }

    /// Opens the file behind an `O_PATH` handle for reading, without resolving its path again (so a
    /// path swapped after the caller checked the handle's type cannot be opened instead).
    pub(super) fn reopen(&self, handle: &OwnedFd, flags: OFlag) -> Result<File, Failure> {
        // O_CLOEXEC and O_NOCTTY always, as pathrs adds them.
        let flags = flags | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
        match self.fd_dir.get_or_init(FdDir::open) {
            Some(fd_dir) => fd_dir.reopen(handle, flags),
            None => fallback::reopen(handle, flags),
        }
    }

    /// The target text of the symlink at `rel` (`readlinkat` on its `O_PATH|O_NOFOLLOW` handle, as
    /// `pathrs::Root::readlink` does).
    pub(super) fn readlink(&self, rel: &str) -> Result<std::ffi::OsString, Failure> {
        if !self.openat2 {
            return fallback::readlink(&self.root, rel);
        }
        let link = self.resolve(rel, false)?;
        nix::fcntl::readlinkat(&link, "").map_err(|errno| match errno {
            // readlinkat(fd, "") says ENOENT when fd is not a symlink, although it exists (it was
            // just resolved); pathrs reports that as EINVAL, like readlinkat(dir, name), and so do we.
            Errno::ENOENT => failure_of_errno(Errno::EINVAL),
            other => failure_of_errno(other),
        })
    }
}

/// The `pathrs` side, kept out of line: inlined into its callers, `pathrs::Root::readlink`'s 128 KiB
/// stack buffer made every `Root::readlink` frame that large, and the stack probes touched all 32
/// pages of it (a fifth of a probe's page faults) even when this side never ran.
mod fallback {
    use super::*;

    #[cold]
    #[inline(never)]
    pub(super) fn resolve(
        root: &pathrs::Root,
        rel: &str,
        follow: bool,
    ) -> Result<OwnedFd, Failure> {
        let handle = if follow {
            root.resolve(rel)
        } else {
            root.resolve_nofollow(rel)
        };
        handle.map(OwnedFd::from).map_err(|e| failure_of(&e))
    }

    #[cold]
    #[inline(never)]
    pub(super) fn reopen(handle: &OwnedFd, flags: OFlag) -> Result<File, Failure> {
        pathrs::HandleRef::from_fd(handle.as_fd())
            .reopen(OpenFlags::from_bits_retain(flags.bits() as _))
            .map_err(|e| failure_of(&e))
    }

    #[cold]
    #[inline(never)]
    pub(super) fn readlink(root: &pathrs::Root, rel: &str) -> Result<std::ffi::OsString, Failure> {
        root.readlink(rel)
            .map(Into::into)
            .map_err(|e| failure_of(&e))
    }
}

/// One `openat2(O_PATH, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, retried on `EAGAIN`.
fn lookup(root: impl AsFd, rel: &str, extra: OFlag) -> Result<OwnedFd, Errno> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC | extra)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let mut tries = 0;
    loop {
        match nix::fcntl::openat2(root.as_fd(), rel, how) {
            Err(Errno::EAGAIN) if tries < EAGAIN_RETRIES => tries += 1,
            result => return result,
        }
    }
}

/// `/proc/<pid>/fd` of the `/proc` we run under, and the procfs mount it is on.
struct FdDir {
    dir: OwnedFd,
    mount_id: u64,
}

impl FdDir {
    /// Checks `/proc` once (see the module documentation); `None` when any check fails.
    fn open() -> Option<FdDir> {
        use rustix::fs::{fstatfs, statx, AtFlags, StatxFlags, PROC_SUPER_MAGIC};
        let proc = nix::fcntl::open(
            "/proc",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        if fstatfs(&proc).ok()?.f_type != PROC_SUPER_MAGIC {
            return None;
        }
        let top = statx(
            &proc,
            "",
            AtFlags::EMPTY_PATH,
            StatxFlags::INO | StatxFlags::MNT_ID,
        )
        .ok()?;
        // Inode 1 is the root of a procfs (Linux ABI); without STATX_MNT_ID the per-open check
        // cannot be made.
        if top.stx_ino != 1
            || !StatxFlags::from_bits_retain(top.stx_mask).contains(StatxFlags::MNT_ID)
        {
            return None;
        }
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
            .resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_XDEV
                    | ResolveFlag::RESOLVE_NO_SYMLINKS,
            );
        let dir =
            nix::fcntl::openat2(&proc, format!("{}/fd", std::process::id()).as_str(), how).ok()?;
        Some(FdDir {
            dir,
            mount_id: top.stx_mnt_id,
        })
    }

    /// Opens `/proc/<pid>/fd/N` for `handle` = N, after checking that nothing is mounted over it.
    fn reopen(&self, handle: &OwnedFd, flags: OFlag) -> Result<File, Failure> {
        use rustix::fs::{statx, AtFlags, StatxFlags};
        let name = handle.as_raw_fd().to_string();
        let link = statx(
            &self.dir,
            name.as_str(),
            AtFlags::SYMLINK_NOFOLLOW,
            StatxFlags::MNT_ID,
        )
        .map_err(|e| failure_of_errno(Errno::from_raw(e.raw_os_error())))?;
        if link.stx_mnt_id != self.mount_id {
            return Err(Failure::Unreadable(format!(
                "refused to reopen: /proc/self/fd/{name} is covered by another mount"
            )));
        }
        nix::fcntl::openat(&self.dir, name.as_str(), flags, Mode::empty())
            .map(File::from)
            .map_err(failure_of_errno)
    }
}

/// ENOENT and ENOTDIR are "absent"; every other errno is "unreadable" in words.
fn failure_of_errno(errno: Errno) -> Failure {
    match errno {
        Errno::ENOENT | Errno::ENOTDIR => Failure::Absent,
        other => Failure::Unreadable(errno_text(other as i32)),
    }
}

pub(super) fn failure_of(e: &pathrs::error::Error) -> Failure {
    use pathrs::error::ErrorKind;
    match e.kind() {
        ErrorKind::OsError(Some(code)) => failure_of_errno(Errno::from_raw(code)),
        ErrorKind::SafetyViolation => Failure::Unreadable(format!("refused to resolve: {e}")),
        _ => Failure::Unreadable(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::symlink;

    /// Every combination of fast and fallback steps, so that both are held to the same answers.
    fn resolvers(dir: &std::path::Path) -> Vec<(&'static str, Resolver)> {
        let open = || pathrs::Root::open(dir).unwrap();
        let fallback = |openat2: bool| Resolver {
            root: open(),
            openat2,
            fd_dir: OnceCell::from(None),
        };
        vec![
            ("fast", Resolver::new(open())),
            ("openat2 + pathrs reopen", fallback(true)),
            ("pathrs only", fallback(false)),
        ]
    }

    #[test]
    fn fast_and_fallback_paths_agree() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::create_dir_all(p.join("usr/lib")).unwrap();
        std::fs::create_dir_all(p.join("etc")).unwrap();
        std::fs::write(p.join("usr/lib/os-release"), "ID=inside\n").unwrap();
        symlink("/usr/lib/os-release", p.join("etc/os-release")).unwrap();
        symlink("../../../../usr/lib/os-release", p.join("etc/up")).unwrap();
        symlink("loop-b", p.join("etc/loop-a")).unwrap();
        symlink("loop-a", p.join("etc/loop-b")).unwrap();
        for (name, r) in resolvers(p) {
            for path in ["etc/os-release", "etc/up", "../../usr/lib/os-release"] {
                let handle = r.resolve(path, true).unwrap();
                let mut text = String::new();
                r.reopen(&handle, OFlag::O_RDONLY)
                    .unwrap()
                    .read_to_string(&mut text)
                    .unwrap();
                assert_eq!(text, "ID=inside\n", "{name}: {path}");
            }
            assert_eq!(
                r.readlink("etc/os-release").unwrap(),
                "/usr/lib/os-release",
                "{name}"
            );
            assert!(r.resolve("etc/os-release", false).is_ok(), "{name}");
            assert_eq!(r.resolve("etc/missing", true).unwrap_err(), Failure::Absent);
            assert_eq!(
                r.resolve("usr/lib/os-release/x", true).unwrap_err(),
                Failure::Absent,
                "{name}"
            );
            assert!(
                matches!(r.resolve("etc/loop-a", true), Err(Failure::Unreadable(m)) if m.contains("symbolic links")),
                "{name}"
            );
            assert!(
                matches!(r.readlink("usr/lib/os-release"), Err(Failure::Unreadable(m)) if m.contains("invalid argument")),
                "{name}"
            );
        }
    }
}
