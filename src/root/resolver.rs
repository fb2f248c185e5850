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
//! - an `O_PATH` handle is reopened for reading through `thread-self/fd/N` of a *private* procfs
//!   instance (`fsopen`/`fsmount`, never attached to any mount tree), so nothing can be mounted over
//!   it: the one property `pathrs` spends its per-call checks to establish on a shared `/proc`.
//!
//! Where `openat2` is missing (kernels before 5.6: CoreOS, RancherOS and Atomic hosts) or filtered by
//! seccomp, every lookup goes through `pathrs`' userspace emulation; where a private procfs cannot be
//! made (no `CAP_SYS_ADMIN`, kernels before 5.2), reopening goes through `pathrs::Handle::reopen`.
//! Both are slower and exactly as safe.

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
    /// A private procfs for reopening handles, made on first use; `None` when it cannot be made.
    procfs: OnceCell<Option<OwnedFd>>,
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
            procfs: OnceCell::new(),
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
        if let Some(procfs) = self.procfs.get_or_init(private_procfs) {
            let path = format!("thread-self/fd/{}", handle.as_raw_fd());
            return nix::fcntl::openat(procfs, path.as_str(), flags, Mode::empty())
                .map(File::from)
                .map_err(failure_of_errno);
        }
        fallback::reopen(handle, flags)
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

/// A procfs instance of our own, visible to no one else (needs `CAP_SYS_ADMIN`; `None` otherwise).
/// `subset=pid` hides everything but the process directories we need (`thread-self` is among them).
fn private_procfs() -> Option<OwnedFd> {
    use rustix::mount::{
        fsconfig_create, fsconfig_set_string, fsmount, fsopen, FsMountFlags, FsOpenFlags,
        MountAttrFlags,
    };
    let context = fsopen("proc", FsOpenFlags::FSOPEN_CLOEXEC).ok()?;
    // Kernels before 5.8 have no subset=pid: the instance is still private, so that is only a loss
    // of tidiness.
    let _ = fsconfig_set_string(&context, "subset", "pid");
    fsconfig_create(&context).ok()?;
    fsmount(
        &context,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_NOEXEC
            | MountAttrFlags::MOUNT_ATTR_NOSUID,
    )
    .ok()
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
            procfs: OnceCell::from(None),
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
