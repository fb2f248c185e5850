//! How a path inside the root becomes a file descriptor.
//!
//! Lookups are the kernel's `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, the call pathrs' own
//! openat2 resolver makes; where openat2 is missing (kernels before 5.6) or filtered by seccomp,
//! pathrs' userspace emulation serves instead. An `O_PATH` handle is reopened for reading through
//! `/proc/self/fd/N`, so the kernel opens the very inode the handle holds. That directory is found
//! once through pathrs' `ProcfsHandle`, which checks that `/proc` is a real procfs and reaches
//! `self/fd` without crossing a mount; a mount over our own `fd/N` later could only come from a
//! process that already owns us.

use std::cell::OnceCell;
use std::ffi::OsString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use pathrs::flags::OpenFlags;
use pathrs::procfs::{ProcfsBase, ProcfsHandle};

use super::{Failure, Reason};

/// Resolves paths inside one root directory.
pub(super) struct Resolver {
    /// The root, as `pathrs` opened it (an `O_PATH` directory handle); also the `dirfd` of openat2.
    root: pathrs::Root,
    /// `openat2(2)` with `RESOLVE_IN_ROOT` works here (checked once when the root is opened).
    openat2: bool,
    /// Our `/proc/self/fd`, found through a checked `/proc` on first use; `None` when unusable.
    fd_dir: OnceCell<Option<OwnedFd>>,
}

/// As many `EAGAIN` retries (a rename or mount raced the lookup anywhere on the system) as pathrs
/// makes, so that the two paths fail alike.
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

    /// The `pathrs` root itself, for `Root::trace`, which walks one component at a time.
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
            return Ok(lookup(self.root.as_fd(), rel, nofollow)?);
        }
        let handle = if follow {
            self.root.resolve(rel)
        } else {
            self.root.resolve_nofollow(rel)
        };
        handle
            .map(OwnedFd::from)
            .map_err(|e| Reason::from(&e).into())
    }

    /// Opens the file behind an `O_PATH` handle for reading, without resolving its path again (so a
    /// path swapped after the caller checked the handle's type cannot be opened instead).
    pub(super) fn reopen(&self, handle: &OwnedFd, flags: OFlag) -> Result<File, Failure> {
        // O_CLOEXEC and O_NOCTTY always, as pathrs adds them.
        let flags = flags | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
        match self.fd_dir() {
            Some(dir) => {
                Ok(nix::fcntl::openat(dir, fd_name(handle).as_str(), flags, Mode::empty())?.into())
            }
            None => pathrs::HandleRef::from_fd(handle.as_fd())
                .reopen(OpenFlags::from_bits_retain(flags.bits() as _))
                .map_err(|e| Reason::from(&e).into()),
        }
    }

    /// Where a handle's file is on the host (`/proc/self/fd/N`'s target); `None` without `/proc`.
    pub(super) fn host_path(&self, handle: &OwnedFd) -> Option<PathBuf> {
        nix::fcntl::readlinkat(self.fd_dir()?, fd_name(handle).as_str())
            .ok()
            .map(PathBuf::from)
    }

    /// `/proc/self/fd`, found on first use (see the module documentation).
    fn fd_dir(&self) -> Option<&OwnedFd> {
        self.fd_dir
            .get_or_init(|| {
                let procfs = ProcfsHandle::try_from_fd(File::open("/proc").ok()?).ok()?;
                let flags = OpenFlags::O_PATH | OpenFlags::O_DIRECTORY;
                let dir = procfs.open(ProcfsBase::ProcSelf, "fd", flags).ok()?;
                Some(OwnedFd::from(dir))
            })
            .as_ref()
    }

    /// The target text of the symlink at `rel` (`readlinkat` on its `O_PATH|O_NOFOLLOW` handle, as
    /// `pathrs::Root::readlink` does).
    pub(super) fn readlink(&self, rel: &str) -> Result<OsString, Failure> {
        if !self.openat2 {
            return self
                .root
                .readlink(rel)
                .map(Into::into)
                .map_err(|e| Reason::from(&e).into());
        }
        let link = self.resolve(rel, false)?;
        nix::fcntl::readlinkat(&link, "").map_err(|errno| match errno {
            // readlinkat(fd, "") says ENOENT when fd is not a symlink, although it exists (it was
            // just resolved); pathrs reports that as EINVAL, like readlinkat(dir, name), and so do we.
            Errno::ENOENT => Errno::EINVAL.into(),
            other => other.into(),
        })
    }
}

/// `N`, the name of `handle` = N in `/proc/self/fd`.
fn fd_name(handle: &OwnedFd) -> String {
    handle.as_raw_fd().to_string()
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
        let fast = Resolver::new(open());
        assert!(fast.openat2, "openat2 works on the test machine");
        assert!(fast.fd_dir().is_some(), "so does our /proc");
        vec![
            ("fast", fast),
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
            assert_eq!(
                r.resolve("etc/loop-a", true).unwrap_err(),
                Failure::Unreadable(Reason::Errno(Errno::ELOOP)),
                "{name}"
            );
            assert_eq!(
                r.readlink("usr/lib/os-release").unwrap_err(),
                Failure::Unreadable(Reason::Errno(Errno::EINVAL)),
                "{name}"
            );
        }
    }
}
