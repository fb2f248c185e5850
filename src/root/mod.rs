//! The root being probed, and the only door through which hostprint reads anything.
//!
//! Probes name paths relative to the root (`etc/os-release`), and resolution has chroot semantics:
//! symlinks, absolute ones and `..` included, stay inside the root (see `resolver`). Only regular
//! files are opened for reading, after an `fstat` of an `O_PATH` handle, so a FIFO or a device cannot
//! block; reads are capped; and absent, unreadable (with its errno) and wrong-kind stay distinct,
//! because only "absent" may trigger a fallback. Reads warn about bad input for the profile and are
//! journaled for `hostprint record`, tests and trace logging. A recorded root's manifest stands in
//! for what git cannot hold (see `manifest`); it is honoured only in a recording, never in a running
//! host. Opening refuses what is not a root at all (missing, unreadable, none of `etc/ usr/ proc/`):
//! answering "unknown" for an empty mount point would mislabel a node.

use std::cell::RefCell;
use std::fmt;
use std::io::Read;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{fstat, FileStat, Mode};
use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC};

mod failure;
mod manifest;
mod resolver;
mod trace;

pub use failure::{Failure, FileKind, Reason};
use manifest::Replay;
pub use manifest::{Manifest, ManifestEntry, ManifestKind, MANIFEST_FILE};
use resolver::Resolver;
pub use trace::{Last, Step};

pub use crate::text::normalize;
use crate::warning::{Code, Warning};

/// The running kernel's boot id: equal in two roots means one running machine.
const BOOT_ID: &str = "proc/sys/kernel/random/boot_id";

/// The bytes of a file, capped.
#[derive(Clone, Debug)]
pub struct Content {
    pub bytes: Vec<u8>,
    /// The file held more than the cap; `bytes` is its beginning.
    pub truncated: bool,
}

/// The text of a file: lossily decoded, with a note of what was lost.
#[derive(Clone, Debug)]
pub struct Text {
    pub text: String,
    pub truncated: bool,
    /// Some bytes were not UTF-8 and were replaced by U+FFFD.
    pub invalid_utf8: bool,
}

/// One access, as journaled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    pub path: String,
    pub op: Op,
    pub outcome: Outcome,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    Read,
    Stat,
    Lstat,
    Readlink,
    List,
}

/// How a journaled access ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A read, readlink or listing that succeeded.
    Ok,
    /// A read of a file longer than its cap.
    Truncated,
    /// What a stat or lstat found.
    Found(FileKind),
    Failed(Failure),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok => f.write_str("ok"),
            Outcome::Truncated => f.write_str("ok (truncated)"),
            Outcome::Found(kind) => f.write_str(kind.as_str()),
            Outcome::Failed(failure) => failure.fmt(f),
        }
    }
}

/// Errors opening the root itself: these end the run (exit 1), before anything is written. Each says
/// what to check.
#[derive(Debug, thiserror::Error)]
pub enum RootError {
    #[error(
        "root {path}: no such directory; is the host mounted there? (in a container: -v /:/host:ro, \
         then --root /host)"
    )]
    Missing { path: PathBuf },
    #[error("root {path}: not a directory; --root names the directory that is the host's /")]
    NotADirectory { path: PathBuf },
    #[error(
        "root {path}: unreadable as a whole ({reason}); run hostprint as root, or check the \
         permissions of {path}"
    )]
    Unreadable { path: PathBuf, reason: Reason },
    #[error(
        "root {path}: does not look like a root filesystem (none of etc/, usr/, proc/ in it); is the \
         host mounted there (in a container: -v /:/host:ro), and is it the root itself rather than \
         its parent (a recording's root/ directory)?"
    )]
    NotARoot { path: PathBuf },
    #[error("root {path}: {reason}")]
    Open { path: PathBuf, reason: Reason },
}

/// A root has at least one of these directories; a root with none is a mistake (a missing mount, a
/// path one level too high) that must fail loudly rather than label a host "unknown".
const ROOT_DIRS: [&str; 3] = ["etc", "usr", "proc"];

/// Sees what successful reads and listings return, for `hostprint record` (which must copy the bytes
/// the probes saw, not a second read that a changing `proc/` would answer differently).
pub trait Tap {
    /// `bytes` as read: at most the cap plus one byte, so a file longer than the cap shows as such.
    fn read(&self, path: &str, bytes: &[u8]);
    /// The names a listing returned, sorted.
    fn list(&self, path: &str, names: &[String]);
}

/// A directory treated as `/`.
pub struct Root {
    dir: PathBuf,
    paths: Resolver,
    live: bool,
    same_kernel: bool,
    manifest: Replay,
    journal: RefCell<Vec<Access>>,
    /// On unless [`Root::without_journal`]: `record`, tests and `-v` tracing read the journal.
    journaling: bool,
    warnings: RefCell<Vec<Warning>>,
    /// `Some` only for `hostprint record`.
    tap: Option<Rc<dyn Tap>>,
}

impl fmt::Debug for Root {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Root")
            .field("dir", &self.dir)
            .field("live", &self.live)
            .finish()
    }
}

impl Root {
    /// Opens `dir` as the root. `/` (after resolving symlinks) is the live host, which enables the
    /// few facts that do not come from files (uname, CPUID).
    pub fn open(dir: &Path) -> Result<Root, RootError> {
        Root::open_tapped(dir, None)
    }

    /// Like [`Root::open`], with `tap` seeing every read and listing from the first on.
    pub fn open_tapped(dir: &Path, tap: Option<Rc<dyn Tap>>) -> Result<Root, RootError> {
        let path = dir.to_path_buf();
        // The path the user names is followed as any path is (`./link`, `/proc/<pid>/root`, the
        // usual way to a container's root from the host); confinement starts inside it.
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let fd = match nix::fcntl::open(dir, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Err(RootError::Missing { path }),
            Err(Errno::ENOTDIR) => return Err(RootError::NotADirectory { path }),
            Err(errno) => {
                return Err(RootError::Open {
                    path,
                    reason: Reason::Errno(errno),
                })
            }
        };
        // The live host is the directory `/` is, whatever path names it.
        let same_inode = |a: &FileStat, b: &FileStat| (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino);
        let live = match (fstat(&fd), nix::sys::stat::stat("/")) {
            (Ok(ours), Ok(slash)) => same_inode(&ours, &slash),
            _ => false,
        };
        let mut root = Root {
            dir: path,
            paths: Resolver::new(pathrs::Root::from_fd(fd)),
            live,
            same_kernel: live,
            manifest: Replay::default(),
            journal: RefCell::new(Vec::new()),
            journaling: true,
            warnings: RefCell::new(Vec::new()),
            tap,
        };
        root.looks_like_a_root()?;
        root.load_manifest();
        // Read on the live root too, so that `hostprint record` captures it and a replay on the same
        // running machine knows it is one.
        root.same_kernel = root.shares_our_kernel() || live;
        Ok(root)
    }

    /// Refuses a root with none of [`ROOT_DIRS`] (as a directory, or a symlink, which the probes
    /// then follow inside the root like any other), and one whose names cannot be looked up at all.
    /// Not journaled: this is about the root, not a fact a probe reads.
    fn looks_like_a_root(&self) -> Result<(), RootError> {
        let mut refused = None;
        for name in ROOT_DIRS {
            match self.kind_of(name, false) {
                Ok(FileKind::Dir | FileKind::Symlink) => return Ok(()),
                Err(Failure::Unreadable(reason)) => refused = refused.or(Some(reason)),
                _ => {}
            }
        }
        let path = self.dir.clone();
        Err(match refused {
            Some(reason) => RootError::Unreadable { path, reason },
            None => RootError::NotARoot { path },
        })
    }

    /// Honours a manifest only in a recording (not the live `/`, no live procfs at `proc/`): anywhere
    /// else it could claim sockets that do not exist. Ignored or malformed, it is a warning.
    fn load_manifest(&mut self) {
        if self.live {
            return;
        }
        let Ok(text) = self.read_text(MANIFEST_FILE, 1 << 20) else {
            return;
        };
        if self.has_live_procfs() {
            self.warn(Warning::at(
                Code::ManifestIgnored,
                MANIFEST_FILE,
                "ignored: this root is a running host (proc/ is a live procfs), not a recording",
            ));
            return;
        }
        match Replay::parse(&text.text) {
            Ok(replay) => self.manifest = replay,
            Err((line, reason)) => self.warn(Warning::at(
                Code::BadManifest,
                MANIFEST_FILE,
                format!("line {line}: {reason}; the manifest was ignored"),
            )),
        }
    }

    /// True when the root's `proc` is a procfs mount: a running host's, not a recorded tree.
    fn has_live_procfs(&self) -> bool {
        self.paths
            .resolve("proc", true)
            .ok()
            .and_then(|proc| fstatfs(&proc).ok())
            .is_some_and(|fs| fs.filesystem_type() == PROC_SUPER_MAGIC)
    }

    /// Whether the root's boot id is ours (a host mounted at `/host`), so CPUID and `uname` describe
    /// it too. Our own is read directly: it is about the probing process, and never reported.
    fn shares_our_kernel(&self) -> bool {
        let Ok(theirs) = self.read_text_quiet(BOOT_ID, 64) else {
            return false;
        };
        own_boot_id().is_some_and(|ours| ours == theirs.text.trim())
    }

    /// The directory as given on the command line.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// True when the root is the live `/` of the machine running hostprint.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// True when the root runs on the same kernel as hostprint (`/`, or a mounted live host), so
    /// CPUID and `uname` describe it.
    pub fn same_kernel(&self) -> bool {
        self.same_kernel
    }

    /// Stops journaling accesses, for a normal probe whose journal nobody reads.
    /// [`Root::journal`] is then empty.
    pub fn without_journal(mut self) -> Root {
        self.journaling = false;
        self
    }

    /// Everything read so far, in order (unless [`Root::without_journal`]).
    pub fn journal(&self) -> Vec<Access> {
        self.journal.borrow().clone()
    }

    /// Warnings about the root's content gathered by reads (unreadable, wrong kind, truncated, …).
    pub fn take_warnings(&self) -> Vec<Warning> {
        std::mem::take(&mut *self.warnings.borrow_mut())
    }

    /// Adds a warning found by a probe (a malformed line, a conflict).
    pub fn warn(&self, warning: Warning) {
        let mut warnings = self.warnings.borrow_mut();
        if !warnings.contains(&warning) {
            warnings.push(warning);
        }
    }

    /// Journals one access; `ok` says how a success is journaled.
    fn log<T>(&self, path: &str, op: Op, result: &Result<T, Failure>, ok: fn(&T) -> Outcome) {
        if !self.journaling {
            return;
        }
        let outcome = match result {
            Ok(value) => ok(value),
            Err(failure) => Outcome::Failed(failure.clone()),
        };
        self.journal.borrow_mut().push(Access {
            path: path.to_string(),
            op,
            outcome,
        });
    }

    /// The kind of `path`, following symlinks inside the root. A path that exists but cannot be
    /// resolved (a symlink loop, a directory we may not search) is warned about: it is not absent,
    /// and a marker that could not be checked must not silently count as missing.
    pub fn stat(&self, path: &str) -> Result<FileKind, Failure> {
        self.stat_as(path, Op::Stat)
    }

    /// The kind of `path` itself (a trailing symlink is reported as a symlink). Warns like
    /// [`Root::stat`].
    pub fn lstat(&self, path: &str) -> Result<FileKind, Failure> {
        self.stat_as(path, Op::Lstat)
    }

    fn stat_as(&self, path: &str, op: Op) -> Result<FileKind, Failure> {
        let result = self.kind_of(&normalize(path), op == Op::Stat);
        self.log(path, op, &result, |&kind| Outcome::Found(kind));
        if let Err(f @ Failure::Unreadable(_)) = &result {
            self.warn(Warning::at(f.code(), path, f.to_string()));
        }
        result
    }

    fn kind_of(&self, rel: &str, follow: bool) -> Result<FileKind, Failure> {
        match self.paths.resolve(rel, follow) {
            Ok(handle) => Ok(FileKind::from_mode(fstat(handle.as_fd())?.st_mode)),
            Err(Failure::Absent) => self.manifest.stand_in(rel, &self.paths, &self.dir),
            Err(other) => Err(other),
        }
    }

    /// How a path the tree lacks fails to be read: absent, or as its manifest entry says (a socket
    /// is the wrong kind, an unreadable file unreadable).
    fn missing(&self, rel: &str) -> Failure {
        match self.manifest.stand_in(rel, &self.paths, &self.dir) {
            Ok(kind) => Failure::WrongKind(kind),
            Err(failure) => failure,
        }
    }

    /// Reads a regular file, at most `cap` bytes. Warns about anything but success or absence (a FIFO,
    /// a loop, a truncated file), so every probe reports bad input alike; unreadable is never absent.
    pub fn read(&self, path: &str, cap: usize) -> Result<Content, Failure> {
        let result = self.read_inner(path, cap);
        self.log(path, Op::Read, &result, read_outcome);
        match &result {
            Ok(c) if c.truncated => self.warn(Warning::at(
                Code::Truncated,
                path,
                format!("larger than {cap} bytes; only the first {cap} were read"),
            )),
            Err(Failure::Absent) | Ok(_) => {}
            Err(f) => self.warn(Warning::at(f.code(), path, f.to_string())),
        }
        result
    }

    /// Like [`Root::read`], decoded as text. Invalid UTF-8 is replaced and warned about.
    pub fn read_text(&self, path: &str, cap: usize) -> Result<Text, Failure> {
        let content = self.read(path, cap)?;
        let text = decode(content);
        if text.invalid_utf8 {
            self.warn(Warning::at(
                Code::NotUtf8,
                path,
                "not valid UTF-8; invalid bytes were replaced",
            ));
        }
        Ok(text)
    }

    /// Reads text without warnings, for hostprint's own bookkeeping (comparing `boot_id` with ours);
    /// probes use [`Root::read_text`], so bad input they read is always warned about.
    pub fn read_text_quiet(&self, path: &str, cap: usize) -> Result<Text, Failure> {
        let result = self.read_inner(path, cap);
        self.log(path, Op::Read, &result, read_outcome);
        result.map(decode)
    }

    fn read_inner(&self, path: &str, cap: usize) -> Result<Content, Failure> {
        let rel = normalize(path);
        let handle = match self.paths.resolve(&rel, true) {
            Ok(handle) => handle,
            Err(Failure::Absent) => return Err(self.missing(&rel)),
            Err(other) => return Err(other),
        };
        let st = fstat(handle.as_fd())?;
        let kind = FileKind::from_mode(st.st_mode);
        if kind != FileKind::File {
            return Err(Failure::WrongKind(kind));
        }
        // O_NONBLOCK is belt and braces: the fstat above already refused FIFOs, and reopening goes
        // through the same inode, so a swap between the two cannot hand us a FIFO.
        let file = self
            .paths
            .reopen(&handle, OFlag::O_RDONLY | OFlag::O_NONBLOCK)?;
        // Sized by what fstat reports (+1, so reading to the end needs no growth); proc and sys
        // files report 0 and mostly fit in a page.
        let hint = usize::try_from(st.st_size).unwrap_or(usize::MAX);
        let initial = if hint > 0 {
            hint.saturating_add(1)
        } else {
            4096
        };
        let mut bytes = Vec::with_capacity(initial.min(cap.saturating_add(1)));
        let limit = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
        file.take(limit)
            .read_to_end(&mut bytes)
            .map_err(|e| Failure::Unreadable(Reason::from(&e)))?;
        if let Some(tap) = &self.tap {
            tap.read(&rel, &bytes);
        }
        let truncated = bytes.len() > cap;
        bytes.truncate(cap);
        Ok(Content { bytes, truncated })
    }

    /// The target text of a symlink (not resolved; it is a fact, not a path to follow).
    pub fn readlink(&self, path: &str) -> Result<String, Failure> {
        let rel = normalize(path);
        let result = match self.paths.readlink(&rel) {
            Ok(target) => Ok(target.to_string_lossy().into_owned()),
            Err(Failure::Absent) => Err(self.missing(&rel)),
            // readlinkat on a non-symlink is EINVAL: say what it is instead.
            Err(Failure::Unreadable(Reason::Errno(Errno::EINVAL))) => {
                match self.kind_of(&rel, false) {
                    Ok(kind) => Err(Failure::WrongKind(kind)),
                    Err(f) => Err(f),
                }
            }
            Err(other) => Err(other),
        };
        self.log(path, Op::Readlink, &result, |_| Outcome::Ok);
        result
    }

    /// Names in a directory, sorted, at most `max` (more are dropped with a warning).
    pub fn list(&self, path: &str, max: usize) -> Result<Vec<String>, Failure> {
        let result = self.list_inner(path, max);
        self.log(path, Op::List, &result, |_| Outcome::Ok);
        result
    }

    fn list_inner(&self, path: &str, max: usize) -> Result<Vec<String>, Failure> {
        let rel = normalize(path);
        let handle = self.paths.resolve(&rel, true)?;
        match FileKind::from_mode(fstat(handle.as_fd())?.st_mode) {
            FileKind::Dir => {}
            kind => return Err(Failure::WrongKind(kind)),
        }
        let dir = self
            .paths
            .reopen(&handle, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
        let mut dir = nix::dir::Dir::from_fd(dir.into())?;
        let mut names = Vec::new();
        for entry in dir.iter() {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name == "." || name == ".." {
                continue;
            }
            if names.len() == max {
                self.warn(Warning::at(
                    Code::TooManyEntries,
                    path,
                    format!("more than {max} entries; the rest were not looked at"),
                ));
                break;
            }
            names.push(name);
        }
        names.sort();
        if let Some(tap) = &self.tap {
            tap.list(&rel, &names);
        }
        Ok(names)
    }
}

fn read_outcome(content: &Content) -> Outcome {
    match content.truncated {
        true => Outcome::Truncated,
        false => Outcome::Ok,
    }
}

fn decode(content: Content) -> Text {
    let (text, invalid_utf8) = match String::from_utf8(content.bytes) {
        Ok(text) => (text, false),
        Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), true),
    };
    let truncated = content.truncated;
    Text {
        text,
        truncated,
        invalid_utf8,
    }
}

/// This machine's boot id, as the kernel hostprint runs on gives it: what a root is compared with
/// to tell whether it is this running machine. Like [`own_namespace`], a read of hostprint's own
/// state, never of the root's files.
pub fn own_boot_id() -> Option<String> {
    let text = std::fs::read_to_string(Path::new("/").join(BOOT_ID)).ok()?;
    Some(text.trim().to_string()).filter(|t| !t.is_empty())
}

/// The target of hostprint's own `/proc/self/ns/<kind>` link (`pid:[4026531836]`).
pub fn own_namespace(kind: &str) -> std::io::Result<String> {
    let link = std::fs::read_link(Path::new("/proc/self/ns").join(kind))?;
    Ok(link.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests;
