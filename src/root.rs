//! The root being probed, and the only door through which hostprint reads anything.
//!
//! Every probe asks `Root` for a path relative to the root (`etc/os-release`, never `/etc/os-release`).
//! Resolution has chroot semantics: symlinks, absolute ones and `..` included, resolve inside the root,
//! so a recorded RancherOS tree whose `etc/os-release` points at `/usr/share/ros/os-release` reads the
//! tree's own file and never the probing machine's. The kernel enforces this (`openat2` with
//! `RESOLVE_IN_ROOT`); the `pathrs` crate emulates it safely on kernels older than 5.6, which CoreOS,
//! RancherOS and Atomic hosts still run. Which of the two serves a lookup is decided in
//! `root/resolver.rs` (the kernel's call directly where it exists, because `pathrs`' checks per call were
//! most of a probe's cost).
//!
//! Other guarantees, all here so that no probe can forget them:
//! - a path is resolved to an `O_PATH` handle and `fstat`ed first; only regular files are ever opened
//!   for reading, so a FIFO, socket or device where a file was expected cannot block or misbehave;
//! - reads are capped (the caller says how much a file may sensibly hold) and a longer file is reported
//!   as truncated instead of being slurped;
//! - absent (ENOENT/ENOTDIR), unreadable (EACCES, ELOOP, … with the reason) and wrong-kind stay distinct
//!   outcomes, because only "absent" may trigger a fallback;
//! - a recorded root may carry `.hostprint-manifest.toml` for what git cannot hold (sockets, FIFOs,
//!   devices, files that were unreadable on the recorded host); it stands in for missing files only;
//! - every access is journaled (path and outcome) for `hostprint record`, tests and trace logging, unless
//!   the caller opts out (a normal probe does: nobody reads it there);
//! - [`Root::prime`] lists the directories under which many asked-about paths lie, once each, so
//!   that a path whose parent's listing lacks it is answered "absent" without a lookup of its own
//!   (2,000 rule paths under `etc/`, `run/`, `var/lib/` cost a few listings, not 2,000 `openat2`);
//! - for `hostprint record`, a root opened with [`Root::capture`] also keeps the bytes each read
//!   returned and the names each listing returned, and [`Root::trace`] walks a path one component
//!   at a time to show the symlinks a single kernel resolution hides.

use std::cell::{OnceCell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io::Read;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::{fstat, SFlag};
use pathrs::flags::OpenFlags;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod resolver;
use resolver::Resolver;

use crate::text::{is_plain, parents};
pub use crate::text::{line_of, normalize};

/// The running kernel's boot id: equal in two roots means one running machine.
const BOOT_ID: &str = "proc/sys/kernel/random/boot_id";

/// Name of the manifest a recorded root carries at its top.
pub const MANIFEST_FILE: &str = ".hostprint-manifest.toml";

/// What a path is, as `lstat`/`stat` would say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Socket,
    Fifo,
    CharDevice,
    BlockDevice,
}

impl FileKind {
    fn from_mode(mode: u32) -> FileKind {
        match SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()) {
            SFlag::S_IFDIR => FileKind::Dir,
            SFlag::S_IFLNK => FileKind::Symlink,
            SFlag::S_IFSOCK => FileKind::Socket,
            SFlag::S_IFIFO => FileKind::Fifo,
            SFlag::S_IFCHR => FileKind::CharDevice,
            SFlag::S_IFBLK => FileKind::BlockDevice,
            _ => FileKind::File,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::File => "file",
            FileKind::Dir => "directory",
            FileKind::Symlink => "symlink",
            FileKind::Socket => "socket",
            FileKind::Fifo => "fifo",
            FileKind::CharDevice => "char-device",
            FileKind::BlockDevice => "block-device",
        }
    }
}

/// Why a path could not be used. `Absent` is the only outcome that justifies a fallback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// ENOENT, or a path component that is not a directory (ENOTDIR).
    Absent,
    /// It exists but could not be resolved or read; the reason names the errno in words.
    Unreadable(String),
    /// It exists but is not what the caller needs (a FIFO where a file was expected, …).
    WrongKind(FileKind),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Absent => f.write_str("absent"),
            Failure::Unreadable(reason) => write!(f, "unreadable: {reason}"),
            Failure::WrongKind(kind) => write!(f, "is a {}, not a regular file", kind.as_str()),
        }
    }
}

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
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Access {
    pub path: String,
    pub op: Op,
    /// `ok`, `absent`, `unreadable: …`, `is a fifo, …`, or the kind found by a stat.
    pub outcome: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Read,
    Stat,
    Lstat,
    Readlink,
    List,
}

/// A warning about the root's content, for the profile.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema, Deserialize)]
pub struct Warning {
    pub path: Option<String>,
    pub message: String,
}

impl Warning {
    pub fn at(path: &str, message: impl Into<String>) -> Warning {
        Warning {
            path: Some(path.to_string()),
            message: message.into(),
        }
    }

    pub fn general(message: impl Into<String>) -> Warning {
        Warning {
            path: None,
            message: message.into(),
        }
    }
}

/// Errors opening the root itself: these end the run (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum RootError {
    #[error("root {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("root {path}: not a directory")]
    NotADirectory { path: PathBuf },
    #[error("{path}:{line}: malformed manifest: {reason}")]
    Manifest {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// What git cannot hold, recorded next to a tree.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(default, rename = "entry")]
    pub entries: Vec<ManifestEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: ManifestKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ManifestKind {
    Socket,
    Fifo,
    CharDevice,
    BlockDevice,
    Unreadable,
}

/// What the probes saw, kept for `hostprint record` (see [`Root::capture`]).
#[derive(Clone, Debug, Default)]
pub struct Captured {
    /// Normalized path as read → the bytes the read returned, up to the cap plus one byte: a file
    /// longer than the cap keeps that extra byte, so a replay finds it too long exactly as the probe
    /// did. A path read with several caps keeps the longest read.
    pub reads: BTreeMap<String, Vec<u8>>,
    /// Normalized path as listed → the names the listing returned.
    pub lists: BTreeMap<String, Vec<String>>,
}

/// One step of a path's resolution, as [`Root::trace`] reports it. Paths are relative to the root
/// and canonical: every directory above them is a real directory, never a symlink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// A directory passed through or ended on.
    Dir(String),
    /// A symlink met on the way (or ended on), with its target text.
    Link { path: String, target: String },
    /// The regular file the path ends on.
    File(String),
    /// What git cannot hold: a socket, FIFO or device; a component that could not be resolved or a
    /// file that could not be opened (`unreadable` with the errno's name); or the manifest entry a
    /// recorded root has for the path.
    Entry(ManifestEntry),
}

/// What [`Root::trace`] does with the last component, matching the operation being retraced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Last {
    /// `lstat`, `readlink`: a trailing symlink is the answer.
    Keep,
    /// `stat`, `list`: a trailing symlink is followed.
    Follow,
    /// `read`: followed, and a regular file is opened too, so a permission error shows.
    Open,
}

/// The kernel's MAXSYMLINKS: more links than this in one resolution is ELOOP.
const MAX_LINKS: usize = 40;

/// [`Root::prime`] considers a directory only when at least this many distinct names are asked about
/// under it. Even an empty ext4 directory is 4 KiB, which [`DIRENT_BYTES`] and
/// [`PRIME_ENTRIES_PER_NAME`] only find worth listing for 32 names; below that, sizing it up (a
/// resolve and an `fstat`) would be wasted. The shipped rules name fewer than that under any one
/// directory, so the default probe never lists.
const PRIME_MIN_NAMES: usize = 32;

/// A directory with more entries than this is not kept for [`Root::prime`]: reading it costs more
/// than the lookups it would save, and a huge directory is not what rules name markers in.
const PRIME_MAX_ENTRIES: usize = 4096;

/// [`Root::prime`] lists a directory only when its estimated entries are at most this many times the
/// names asked about under it. Measured on ext4 (the development VM): `getdents` costs ~0.4 µs per
/// entry, an `openat2` of an absent name ~2 µs, so a listing pays off below ~5 entries per name.
/// Listing `usr/bin` (1,070 entries) for the ten names the shipped rules ask there had made the
/// default probe 0.45 ms slower.
const PRIME_ENTRIES_PER_NAME: u64 = 4;

/// The entries a directory of `st_size` bytes holds, roughly: ext4 and xfs report the bytes of their
/// entry blocks (~30 bytes an entry), tmpfs 20 bytes an entry, btrfs twice the names' length. procfs
/// and sysfs report 0: unknown, so not listed.
const DIRENT_BYTES: u64 = 32;

/// A directory treated as `/`.
pub struct Root {
    dir: PathBuf,
    paths: Resolver,
    live: bool,
    same_kernel: bool,
    manifest: BTreeMap<String, ManifestEntry>,
    /// `dir` with symlinks resolved, computed once for manifest lookups (see `canonical_rel`).
    canonical_dir: OnceCell<Option<PathBuf>>,
    journal: RefCell<Vec<Access>>,
    /// On unless [`Root::without_journal`]: `record`, tests and `-v` tracing read the journal.
    journaling: bool,
    warnings: RefCell<Vec<Warning>>,
    /// The directories [`Root::prime`] listed (as asked) with their names. A few at most (one per
    /// crowded directory), so a vector; the names are hashed with foldhash, seeded per process,
    /// and a listing holds at most [`PRIME_MAX_ENTRIES`] of them, so a root whose names were chosen
    /// to collide costs milliseconds, not a hang.
    listed: RefCell<Vec<(String, foldhash::HashSet<String>)>>,
    /// `Some` only for `hostprint record`: a normal run keeps no file contents.
    captured: Option<RefCell<Captured>>,
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
        let meta = std::fs::metadata(dir).map_err(|e| RootError::Open {
            path: dir.to_path_buf(),
            reason: describe_io(&e),
        })?;
        if !meta.is_dir() {
            return Err(RootError::NotADirectory {
                path: dir.to_path_buf(),
            });
        }
        let handle = pathrs::Root::open(dir).map_err(|e| RootError::Open {
            path: dir.to_path_buf(),
            reason: e.to_string(),
        })?;
        let live = std::fs::canonicalize(dir)
            .map(|p| p == Path::new("/"))
            .unwrap_or(false);
        let mut root = Root {
            dir: dir.to_path_buf(),
            paths: Resolver::new(handle),
            live,
            same_kernel: live,
            manifest: BTreeMap::new(),
            canonical_dir: OnceCell::new(),
            journal: RefCell::new(Vec::new()),
            journaling: true,
            warnings: RefCell::new(Vec::new()),
            listed: RefCell::new(Vec::new()),
            captured: None,
        };
        // A live host has no manifest: only recorded trees are allowed to claim sockets that git
        // could not hold.
        if !live {
            root.load_manifest(dir)?;
        }
        // Read on the live root too, so that `hostprint record` captures it and a replay on the same
        // running machine knows it is one.
        root.same_kernel = root.shares_our_kernel() || live;
        Ok(root)
    }

    /// A host mounted at `/host` (a DaemonSet) runs on the kernel and hardware hostprint runs on: its
    /// `proc/sys/kernel/random/boot_id` is ours. Then machine-level facts that come from an instruction
    /// or a syscall (CPUID, `uname`) describe it too. Our own boot id is read directly: it is a fact
    /// about the probing process, not about the root, and it is never reported.
    fn shares_our_kernel(&self) -> bool {
        let Ok(theirs) = self.read_text_quiet(BOOT_ID, 64) else {
            return false;
        };
        let ours = std::fs::read_to_string(Path::new("/").join(BOOT_ID)).unwrap_or_default();
        !ours.trim().is_empty() && ours.trim() == theirs.text.trim()
    }

    fn load_manifest(&mut self, dir: &Path) -> Result<(), RootError> {
        // A manifest that is there but unusable (a FIFO, a loop, unreadable) is warned about by the
        // read and then ignored: the tree is still probed.
        let text = match self.read_text(MANIFEST_FILE, 1 << 20) {
            Ok(t) => t.text,
            Err(_) => return Ok(()),
        };
        let manifest: Manifest = toml::from_str(&text).map_err(|e| RootError::Manifest {
            path: dir.join(MANIFEST_FILE),
            line: e.span().map(|s| line_of(&text, s.start)).unwrap_or(0),
            reason: e.message().to_string(),
        })?;
        for entry in manifest.entries {
            let key = normalize(&entry.path).into_owned();
            self.manifest.insert(key, entry);
        }
        Ok(())
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

    /// Stops journaling accesses (a normal probe, whose journal nobody reads: with 500 user rules it
    /// held 2,000 entries, two allocations each). [`Root::journal`] is then empty.
    pub fn without_journal(mut self) -> Root {
        self.journaling = false;
        self
    }

    /// Everything read so far, in order (unless [`Root::without_journal`]).
    pub fn journal(&self) -> Vec<Access> {
        self.journal.borrow().clone()
    }

    /// From now on, keeps what reads and listings return (for `hostprint record`, which must copy
    /// the bytes the probes saw, not a second read that a changing `proc/` would answer differently).
    pub fn capture(mut self) -> Root {
        self.captured = Some(RefCell::new(Captured::default()));
        // Opening read the boot id before capture began; read it again so the recording carries it
        // and a replay on the same running machine is recognised as such.
        let _ = self.read_text_quiet(BOOT_ID, 64);
        self
    }

    /// What was captured since [`Root::capture`] (empty when it was not called).
    pub fn captured(&self) -> Captured {
        self.captured
            .as_ref()
            .map(|c| c.borrow().clone())
            .unwrap_or_default()
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

    fn log<T: OutcomeKind>(&self, path: &str, op: Op, result: &Result<T, Failure>) {
        if !self.journaling {
            return;
        }
        self.journal.borrow_mut().push(Access {
            path: path.to_string(),
            op,
            outcome: outcome_of(result),
        });
    }

    /// The kind of `path`, following symlinks inside the root. A path that exists but cannot be
    /// resolved (a symlink loop, a directory we may not search) is warned about: it is not absent,
    /// and a marker that could not be checked must not silently count as missing.
    pub fn stat(&self, path: &str) -> Result<FileKind, Failure> {
        let result = self.kind_of(path, true);
        self.log(path, Op::Stat, &result);
        self.warn_unreadable(path, &result);
        result
    }

    /// The kind of `path` itself (a trailing symlink is reported as a symlink). Warns like
    /// [`Root::stat`].
    pub fn lstat(&self, path: &str) -> Result<FileKind, Failure> {
        let result = self.kind_of(path, false);
        self.log(path, Op::Lstat, &result);
        self.warn_unreadable(path, &result);
        result
    }

    fn warn_unreadable<T>(&self, path: &str, result: &Result<T, Failure>) {
        if let Err(f @ Failure::Unreadable(_)) = result {
            self.warn(Warning::at(path, f.to_string()));
        }
    }

    fn kind_of(&self, path: &str, follow: bool) -> Result<FileKind, Failure> {
        let rel = normalize(path);
        if self.listing_rules_out(&rel) {
            return self.manifest_entry(&rel);
        }
        match self.paths.resolve(&rel, follow) {
            Ok(handle) => match fstat(handle.as_fd()) {
                Ok(st) => Ok(FileKind::from_mode(st.st_mode)),
                Err(errno) => Err(Failure::Unreadable(errno.desc().to_lowercase())),
            },
            Err(Failure::Absent) => self.manifest_entry(&rel),
            Err(other) => Err(other),
        }
    }

    /// A manifest entry standing in for an absent path. The literal path is tried first; then the
    /// path with its parent resolved inside the root (so `var/run/docker.sock` finds an entry recorded
    /// as `run/docker.sock` when `var/run -> ../run`).
    fn manifest_entry(&self, rel: &str) -> Result<FileKind, Failure> {
        if self.manifest.is_empty() {
            return Err(Failure::Absent);
        }
        let entry = self.manifest.get(rel).or_else(|| {
            let canonical = self.canonical_rel(rel)?;
            self.manifest.get(&canonical)
        });
        match entry {
            None => Err(Failure::Absent),
            Some(e) => match e.kind {
                ManifestKind::Socket => Ok(FileKind::Socket),
                ManifestKind::Fifo => Ok(FileKind::Fifo),
                ManifestKind::CharDevice => Ok(FileKind::CharDevice),
                ManifestKind::BlockDevice => Ok(FileKind::BlockDevice),
                ManifestKind::Unreadable => Err(Failure::Unreadable(
                    e.error
                        .as_deref()
                        .map(errno_words)
                        .unwrap_or_else(|| "permission denied".to_string()),
                )),
            },
        }
    }

    /// `rel` with its parent directory resolved inside the root, as a path relative to the root.
    fn canonical_rel(&self, rel: &str) -> Option<String> {
        let (parent, name) = match rel.rsplit_once('/') {
            Some((p, n)) => (p, n),
            None => return None,
        };
        let handle = self.paths.resolve(parent, true).ok()?;
        let host = std::fs::read_link(format!("/proc/self/fd/{}", fd_number(&handle))).ok()?;
        let top = self
            .canonical_dir
            .get_or_init(|| std::fs::canonicalize(&self.dir).ok())
            .as_deref()?;
        let inner = host.strip_prefix(top).ok()?;
        let mut out = inner.to_string_lossy().into_owned();
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(name);
        Some(out)
    }

    /// Reads a regular file, at most `cap` bytes. Warns (in the profile) about anything but success
    /// or absence, so that every probe reports bad input the same way: a FIFO, a loop, a device, a
    /// truncated or non-UTF-8 file is bad input wherever it is (PID 1's files and DMI strings
    /// included), and an unreadable file is "unreadable", never absent.
    pub fn read(&self, path: &str, cap: usize) -> Result<Content, Failure> {
        let result = self.read_inner(path, cap);
        self.log(path, Op::Read, &result);
        match &result {
            Ok(c) if c.truncated => self.warn(Warning::at(
                path,
                format!("larger than {cap} bytes; only the first {cap} were read"),
            )),
            Err(Failure::Absent) | Ok(_) => {}
            Err(f) => self.warn(Warning::at(path, f.to_string())),
        }
        result
    }

    /// Like [`Root::read`], decoded as text. Invalid UTF-8 is replaced and warned about.
    pub fn read_text(&self, path: &str, cap: usize) -> Result<Text, Failure> {
        let content = self.read(path, cap)?;
        let text = decode(content);
        if text.invalid_utf8 {
            self.warn(Warning::at(
                path,
                "not valid UTF-8; invalid bytes were replaced",
            ));
        }
        Ok(text)
    }

    /// Reads text without warnings. Only for hostprint's own bookkeeping (comparing `boot_id` with
    /// ours), never for a fact a probe reports: probes use [`Root::read_text`], so that bad input
    /// at any path they read is warned about (tests/hostile.rs checks every one).
    pub fn read_text_quiet(&self, path: &str, cap: usize) -> Result<Text, Failure> {
        let result = self.read_inner(path, cap);
        self.log(path, Op::Read, &result);
        result.map(decode)
    }

    fn read_inner(&self, path: &str, cap: usize) -> Result<Content, Failure> {
        let rel = normalize(path);
        let handle = match self.paths.resolve(&rel, true) {
            Ok(h) => h,
            Err(failure) => {
                return match failure {
                    // A manifest entry for a missing file says what it was on the recorded host.
                    Failure::Absent => match self.manifest_entry(&rel) {
                        Ok(kind) => Err(Failure::WrongKind(kind)),
                        Err(f) => Err(f),
                    },
                    other => Err(other),
                };
            }
        };
        let st = match fstat(handle.as_fd()) {
            Ok(st) => st,
            Err(errno) => return Err(Failure::Unreadable(errno.desc().to_lowercase())),
        };
        let kind = FileKind::from_mode(st.st_mode);
        if kind != FileKind::File {
            return Err(Failure::WrongKind(kind));
        }
        // O_NONBLOCK is belt and braces: the fstat above already refused FIFOs, and reopening goes
        // through the same inode, so a swap between the two cannot hand us a FIFO.
        let file = self
            .paths
            .reopen(&handle, OFlag::O_RDONLY | OFlag::O_NONBLOCK)?;
        // The buffer starts at the size fstat reported (+1 so that reading to the end needs no
        // growth); proc and sys files report 0, and most of them fit in 4 KiB. A fixed 16 KiB for
        // every file was wasted memory kept alive by every Text.
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
            .map_err(|e| Failure::Unreadable(describe_io(&e)))?;
        if let Some(captured) = &self.captured {
            let mut captured = captured.borrow_mut();
            let kept = captured.reads.entry(rel.into_owned()).or_default();
            if bytes.len() > kept.len() {
                kept.clone_from(&bytes);
            }
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
            Err(failure) => match failure {
                Failure::Absent => match self.manifest_entry(&rel) {
                    Ok(kind) => Err(Failure::WrongKind(kind)),
                    Err(f) => Err(f),
                },
                // readlinkat on a non-symlink is EINVAL: say what it is instead.
                Failure::Unreadable(reason) if reason.contains("invalid argument") => {
                    match self.kind_of(&rel, false) {
                        Ok(kind) => Err(Failure::WrongKind(kind)),
                        Err(f) => Err(f),
                    }
                }
                other => Err(other),
            },
        };
        self.log(path, Op::Readlink, &result);
        result
    }

    /// Names in a directory, sorted, at most `max` (more are dropped with a warning).
    pub fn list(&self, path: &str, max: usize) -> Result<Vec<String>, Failure> {
        let result = self.list_inner(path, max);
        self.log(path, Op::List, &result);
        result
    }

    fn list_inner(&self, path: &str, max: usize) -> Result<Vec<String>, Failure> {
        let rel = normalize(path);
        let (handle, _) = self.open_dir(&rel)?;
        let (mut names, more) = self.read_names(&handle, max)?;
        if more {
            self.warn(Warning::at(
                path,
                format!("more than {max} entries; the rest were not looked at"),
            ));
        }
        names.sort();
        if let Some(captured) = &self.captured {
            captured
                .borrow_mut()
                .lists
                .insert(rel.into_owned(), names.clone());
        }
        Ok(names)
    }

    /// Resolves directory `rel` to a handle, with its `st_size` (what [`Root::prime`] sizes it by).
    fn open_dir(&self, rel: &str) -> Result<(std::os::fd::OwnedFd, u64), Failure> {
        let handle = self.paths.resolve(rel, true)?;
        let st = fstat(handle.as_fd())
            .map_err(|errno| Failure::Unreadable(errno.desc().to_lowercase()))?;
        match FileKind::from_mode(st.st_mode) {
            FileKind::Dir => Ok((handle, u64::try_from(st.st_size).unwrap_or(0))),
            kind => Err(Failure::WrongKind(kind)),
        }
    }

    /// The names in an opened directory (unsorted, `.` and `..` left out), at most `max`, and
    /// whether there were more. Neither journaled nor warned about: [`Root::list`] and
    /// [`Root::prime`] decide.
    fn read_names(
        &self,
        handle: &std::os::fd::OwnedFd,
        max: usize,
    ) -> Result<(Vec<String>, bool), Failure> {
        let dir = self
            .paths
            .reopen(handle, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
        let mut dir = nix::dir::Dir::from_fd(dir.into())
            .map_err(|errno| Failure::Unreadable(errno.desc().to_lowercase()))?;
        let mut names = Vec::new();
        for entry in dir.iter() {
            let entry = entry.map_err(|errno| Failure::Unreadable(errno.desc().to_lowercase()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "." || name == ".." {
                continue;
            }
            if names.len() == max {
                return Ok((names, true));
            }
            names.push(name);
        }
        Ok((names, false))
    }

    /// Lists, once each, the directories under which at least `PRIME_MIN_NAMES` (32) distinct names of
    /// `paths` lie (and whose size says they hold at most `PRIME_ENTRIES_PER_NAME` (4) entries per
    /// name: a listing must cost less than the lookups it saves), so that [`Root::stat`] and [`Root::lstat`] answer "absent" from the listing for a
    /// name it lacks instead of looking the path up. Outcomes and the journal are exactly what the
    /// lookups would have given: a listing is taken through the same in-root resolution (so `etc`
    /// as a symlink lists its target, as a lookup of `etc/x` would pass through it), a name absent
    /// from it is absent to a lookup too, a manifest entry still stands in for it, and any path the
    /// listing shows, or cannot speak for, is looked up as before. A directory that cannot be
    /// listed (unreadable, not a directory, more than `PRIME_MAX_ENTRIES` (4,096)) is silently left to
    /// the lookups, which warn as they always did. Nothing under `proc/` is listed: that would be
    /// the full process scan the default path must never do.
    pub fn prime<'p>(&self, paths: impl IntoIterator<Item = &'p str>) {
        for (dir, asked) in crowded_dirs(paths) {
            if self.listing_rules_out(dir) {
                continue;
            }
            let Ok((handle, size)) = self.open_dir(dir) else {
                continue;
            };
            if size == 0 || size / DIRENT_BYTES > PRIME_ENTRIES_PER_NAME * asked as u64 {
                continue;
            }
            if let Ok((entries, false)) = self.read_names(&handle, PRIME_MAX_ENTRIES) {
                tracing::trace!(dir, entries = entries.len(), "listed for absent markers");
                let names = entries.into_iter().collect();
                self.listed.borrow_mut().push((dir.to_string(), names));
            }
        }
    }

    #[cfg(test)]
    fn is_listed(&self, dir: &str) -> bool {
        self.listed.borrow().iter().any(|(listed, _)| listed == dir)
    }

    /// Whether a [`Root::prime`] listing of one of `rel`'s directories lacks the next name (`rel`
    /// is normal: no empty or `.` component).
    fn listing_rules_out(&self, rel: &str) -> bool {
        let listed = self.listed.borrow();
        if listed.is_empty() {
            return false;
        }
        // A lookup walks down to the first `..` and no further than a listing can speak for it: a
        // `..` is in no listing, yet not absent. Listings are keyed by plain directories, so only
        // those that end before it count.
        // (memchr for a dot, not `str::contains`: that builds a substring searcher on every call.)
        let dots = memchr::memchr_iter(b'.', rel.as_bytes())
            .any(|i| rel.as_bytes().get(i + 1) == Some(&b'.'));
        let limit = match dots {
            false => rel.len(),
            true => parents(rel)
                .find(|&(_, name)| name == "..")
                .map_or(rel.len(), |(dir, _)| dir.len() + 1),
        };
        // Each listed directory `rel` passes through (it goes on with a `/` after it), and the name
        // it looks up there: a few prefix checks, not a comparison per directory per component.
        listed.iter().any(|(dir, names)| {
            let n = dir.len();
            if n + 1 >= limit || rel.as_bytes()[n] != b'/' || !rel.starts_with(dir.as_str()) {
                return false;
            }
            let rest = &rel[n + 1..];
            let name = &rest[..rest.bytes().position(|b| b == b'/').unwrap_or(rest.len())];
            !names.contains(name)
        })
    }

    /// Walks `path` one component at a time with chroot semantics (the kernel's: `..` at the top
    /// stays at the top, an absolute target starts again from the top) and reports every directory
    /// passed, every symlink met and what the path ends on. The other methods let the kernel resolve
    /// a path in one call, which hides the links in between (`var/run -> ../run`); `record` needs
    /// them all to rebuild the tree. Each lookup is an `lstat` of a path whose parents are real
    /// directories, so nothing is followed behind our back.
    ///
    /// Not journaled: it retraces paths the journal already holds, it is not a probe. A walk that
    /// meets more than 40 links stops (the kernel's ELOOP); its links are reported, so a replayed
    /// loop fails the same way. An absent path reports the directories that do exist, and the
    /// manifest entry a recorded root has for it under the keys [`Root::stat`] would try.
    pub fn trace(&self, path: &str, last: Last) -> Vec<Step> {
        let mut steps = Vec::new();
        let mut here: Vec<String> = Vec::new();
        let mut todo: VecDeque<String> = components(path);
        let mut links = 0;
        while let Some(name) = todo.pop_front() {
            if name == ".." {
                here.pop();
                continue;
            }
            here.push(name);
            let at = here.join("/");
            let is_last = todo.is_empty();
            let kind = self
                .paths
                .pathrs()
                .resolve_nofollow(&at)
                .map_err(|e| errno_name(&e))
                .and_then(|h| {
                    fstat(h.as_fd())
                        .map(|st| FileKind::from_mode(st.st_mode))
                        .map_err(|errno| format!("{errno:?}"))
                });
            let kind = match kind {
                Ok(kind) => kind,
                Err(errno) if errno == "ENOENT" || errno == "ENOTDIR" => {
                    // Only the keys `manifest_entry` tries: the path as asked, and (when the missing
                    // component is the last) the path with its parent resolved.
                    let literal = normalize(path);
                    let found = self
                        .manifest
                        .get(literal.as_ref())
                        .or_else(|| is_last.then(|| self.manifest.get(&at)).flatten());
                    steps.extend(found.cloned().map(Step::Entry));
                    return steps;
                }
                Err(errno) => {
                    here.extend(todo);
                    steps.push(Step::Entry(unreadable_entry(here.join("/"), errno)));
                    return steps;
                }
            };
            match kind {
                FileKind::Symlink => {
                    let target = match self.paths.pathrs().readlink(&at) {
                        Ok(t) => t.to_string_lossy().into_owned(),
                        Err(e) => {
                            steps.push(Step::Entry(unreadable_entry(at, errno_name(&e))));
                            return steps;
                        }
                    };
                    steps.push(Step::Link {
                        path: at,
                        target: target.clone(),
                    });
                    if is_last && last == Last::Keep {
                        return steps;
                    }
                    links += 1;
                    if links > MAX_LINKS {
                        return steps;
                    }
                    here.pop();
                    if target.starts_with('/') {
                        here.clear();
                    }
                    for c in components(&target).into_iter().rev() {
                        todo.push_front(c);
                    }
                }
                FileKind::Dir => steps.push(Step::Dir(at)),
                FileKind::File if is_last => {
                    if last == Last::Open {
                        let opened = self.paths.pathrs().resolve_nofollow(&at).and_then(|h| {
                            h.reopen(
                                OpenFlags::O_RDONLY | OpenFlags::O_NONBLOCK | OpenFlags::O_CLOEXEC,
                            )
                        });
                        if let Err(e) = opened {
                            steps.push(Step::Entry(unreadable_entry(at, errno_name(&e))));
                            return steps;
                        }
                    }
                    steps.push(Step::File(at));
                }
                special if is_last => {
                    steps.push(Step::Entry(ManifestEntry {
                        path: at,
                        kind: ManifestKind::of(special),
                        error: None,
                    }));
                }
                // A file in the middle of a path: the probe saw ENOTDIR (absent); so will a replay
                // without it.
                _ => return steps,
            }
        }
        steps
    }
}

impl ManifestKind {
    /// The manifest type standing in for a kind git cannot hold (anything else is `unreadable`).
    fn of(kind: FileKind) -> ManifestKind {
        match kind {
            FileKind::Socket => ManifestKind::Socket,
            FileKind::Fifo => ManifestKind::Fifo,
            FileKind::CharDevice => ManifestKind::CharDevice,
            FileKind::BlockDevice => ManifestKind::BlockDevice,
            FileKind::File | FileKind::Dir | FileKind::Symlink => ManifestKind::Unreadable,
        }
    }
}

fn unreadable_entry(path: String, errno: String) -> ManifestEntry {
    ManifestEntry {
        path,
        kind: ManifestKind::Unreadable,
        error: Some(errno),
    }
}

/// [`crate::text::components`], owned, as the walk in `trace` consumes them.
fn components(path: &str) -> VecDeque<String> {
    crate::text::components(path).map(str::to_string).collect()
}

/// The errno's symbolic name (`EACCES`), as a manifest records it; other failures in words.
fn errno_name(e: &pathrs::error::Error) -> String {
    match e.kind() {
        pathrs::error::ErrorKind::OsError(Some(code)) => {
            format!("{:?}", nix::errno::Errno::from_raw(code))
        }
        _ => e.to_string(),
    }
}

fn fd_number(handle: &impl AsFd) -> i32 {
    use std::os::fd::AsRawFd;
    handle.as_fd().as_raw_fd()
}

fn decode(content: Content) -> Text {
    match String::from_utf8(content.bytes) {
        Ok(text) => Text {
            text,
            truncated: content.truncated,
            invalid_utf8: false,
        },
        Err(e) => Text {
            text: String::from_utf8_lossy(e.as_bytes()).into_owned(),
            truncated: content.truncated,
            invalid_utf8: true,
        },
    }
}

fn errno_text(code: i32) -> String {
    let words = nix::errno::Errno::from_raw(code).desc().to_lowercase();
    match code {
        libc::ELOOP => "too many levels of symbolic links (a symlink loop?)".to_string(),
        _ => words,
    }
}

/// Manifest `error` of a path `hostprint record` withheld because it may hold secrets.
pub const EXCLUDED: &str = "EXCLUDED";

/// `EACCES` (as written in a manifest) in words, as a live read would have said it, so a replay
/// warns with the same text as the recorded host did. The errnos are those a read or a path lookup
/// can give; an unknown name is shown as written.
fn errno_words(name: &str) -> String {
    use nix::errno::Errno;
    if name == EXCLUDED {
        return "withheld by `hostprint record` (may hold secrets)".to_string();
    }
    const KNOWN: [Errno; 12] = [
        Errno::EACCES,
        Errno::EPERM,
        Errno::ELOOP,
        Errno::EIO,
        Errno::ENXIO,
        Errno::ENODEV,
        Errno::EINVAL,
        Errno::EBUSY,
        Errno::EAGAIN,
        Errno::ENAMETOOLONG,
        Errno::EOVERFLOW,
        Errno::EXDEV,
    ];
    KNOWN
        .iter()
        .find(|e| format!("{e:?}") == name)
        .map(|e| errno_text(*e as i32))
        .unwrap_or_else(|| name.to_string())
}

fn describe_io(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => errno_text(code),
        None => e.to_string(),
    }
}

fn outcome_of<T: OutcomeKind>(result: &Result<T, Failure>) -> String {
    match result {
        Ok(v) => v.describe(),
        Err(f) => f.to_string(),
    }
}

trait OutcomeKind {
    fn describe(&self) -> String;
}

impl OutcomeKind for FileKind {
    fn describe(&self) -> String {
        self.as_str().to_string()
    }
}

impl OutcomeKind for Content {
    fn describe(&self) -> String {
        if self.truncated {
            "ok (truncated)".to_string()
        } else {
            "ok".to_string()
        }
    }
}

impl OutcomeKind for String {
    fn describe(&self) -> String {
        "ok".to_string()
    }
}

impl OutcomeKind for Vec<String> {
    fn describe(&self) -> String {
        "ok".to_string()
    }
}

/// The directories [`Root::prime`] considers, parents first, with the names asked under each:
/// those with at least [`PRIME_MIN_NAMES`], never `proc/` or below. One pass, no hashing: in sorted
/// paths (the rules' `Wanted` set is sorted) everything under a directory is contiguous, so each
/// directory's names are counted while it is open on a stack of the current path's directories and
/// it is done when another takes its place. Names are counted as changes of name (exact but for a
/// name that is the prefix of a sibling's, which only costs a listing); unsorted paths split a
/// directory's count and only cost lookups. (Hashing each of the ~6,000 directories 500 user
/// rules' paths pass through was a tenth of their cost.)
fn crowded_dirs<'p>(paths: impl IntoIterator<Item = &'p str>) -> Vec<(&'p str, usize)> {
    // The current path's directories, outermost first: (directory, names counted, last name).
    let mut open: Vec<(&str, usize, &str)> = Vec::new();
    let mut dirs: Vec<(&str, usize)> = Vec::new();
    let mut close = |(dir, count, _): (&'p str, usize, &'p str)| {
        if count >= PRIME_MIN_NAMES {
            dirs.push((dir, count));
        }
    };
    // The previous path and where its slashes are: the directories it shares with the next path
    // are found among those, not by walking the next path from its start.
    let (mut previous, mut slashes): (&str, Vec<usize>) = ("", Vec::new());
    for path in paths.into_iter().filter(|p| is_plain(p)) {
        if path == "proc" || path.starts_with("proc/") {
            continue;
        }
        let shared = common_prefix(path.as_bytes(), previous.as_bytes());
        // Directories that end, with their slash, within the shared bytes are the previous path's
        // (the same bytes, and the previous path has its slash there too): still open, and only
        // the deepest of them can have a new name under it.
        let kept = slashes.iter().take_while(|&&at| at < shared).count();
        slashes.truncate(kept);
        let mut at = slashes.last().map_or(0, |&slash| slash + 1);
        let bytes = path.as_bytes();
        loop {
            let end = bytes[at..]
                .iter()
                .position(|&b| b == b'/')
                .map_or(bytes.len(), |i| at + i);
            if at > 0 {
                // The name from `at` to `end`, under the directory that ends just before `at`.
                let (depth, dir, name) = (slashes.len() - 1, &path[..at - 1], &path[at..end]);
                match open.get_mut(depth) {
                    Some((open_dir, count, last))
                        if open_dir.len() == dir.len() && at - 1 < shared =>
                    {
                        if !(last.len() == name.len() && end <= shared) {
                            *count += 1;
                            *last = name;
                        }
                    }
                    _ => {
                        open.drain(depth..).for_each(&mut close);
                        open.push((dir, 1, name));
                    }
                }
            }
            if end == bytes.len() {
                break;
            }
            slashes.push(end);
            at = end + 1;
        }
        previous = path;
    }
    open.drain(..).for_each(&mut close);
    // A parent sorts before its descendants, so a directory a listing already rules out is never
    // listed itself; a directory split by unsorted input is considered once, with its larger count.
    dirs.sort_unstable_by(|a, b| a.0.cmp(b.0).then(b.1.cmp(&a.1)));
    dirs.dedup_by_key(|(dir, _)| *dir);
    dirs
}

/// How many leading bytes `a` and `b` share, eight at a time while they can.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let whole = a
        .chunks_exact(8)
        .zip(b.chunks_exact(8))
        .take_while(|(x, y)| x == y)
        .count()
        * 8;
    whole
        + a[whole..]
            .iter()
            .zip(&b[whole..])
            .take_while(|(x, y)| x == y)
            .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("usr/lib")).unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("usr/lib/os-release"), "ID=inside\n").unwrap();
        dir
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
        symlink("loop-b", dir.path().join("etc/loop-a")).unwrap();
        symlink("loop-a", dir.path().join("etc/loop-b")).unwrap();
        let root = Root::open(dir.path()).unwrap();
        assert_eq!(root.read("etc/missing", 10).unwrap_err(), Failure::Absent);
        assert_eq!(
            root.read("etc/os-release/x", 10).unwrap_err(),
            Failure::Absent
        );
        assert!(matches!(
            root.read("etc/loop-a", 10).unwrap_err(),
            Failure::Unreadable(r) if r.contains("symbolic links")
        ));
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

    /// `prime` must never change an answer: over a tree with present, absent, linked, escaping and
    /// manifest-backed names under listed directories, every stat and lstat (and the journal) of a
    /// primed root equals an unprimed one's.
    #[test]
    fn primed_lookups_answer_as_unprimed_ones() {
        let dir = tree_with_manifest();
        let p = dir.path();
        std::fs::create_dir_all(p.join("usr/etc/app")).unwrap();
        std::fs::write(p.join("usr/etc/app/conf"), "x").unwrap();
        symlink("/usr/etc", p.join("etc/linked")).unwrap();
        symlink("../../../../outside", p.join("etc/escape")).unwrap();
        std::fs::write(p.join("run/present"), "").unwrap();
        // Enough names that even a 4 KiB ext4 directory block is worth listing.
        let mut paths: Vec<String> = (0..40).map(|i| format!("etc/absent-{i}/x")).collect();
        paths.extend((0..40).map(|i| format!("run/absent-{i}.sock")));
        paths.extend(
            [
                "etc/os-release",
                "etc/linked/app/conf",
                "etc/linked/app/missing",
                "etc/escape",
                "etc/shadow",
                "run/docker.sock",
                "run/present",
                "var/run/docker.sock",
                "var/run/absent-1.sock",
                "etc/absent-1/../os-release",
                "proc/1/comm",
            ]
            .map(String::from),
        );
        let plain = Root::open(p).unwrap();
        let primed = Root::open(p).unwrap();
        primed.prime(paths.iter().map(String::as_str));
        assert!(primed.is_listed("etc"), "etc was listed");
        assert!(primed.is_listed("run"), "run was listed");
        for path in &paths {
            assert_eq!(primed.stat(path), plain.stat(path), "stat {path}");
            assert_eq!(primed.lstat(path), plain.lstat(path), "lstat {path}");
        }
        assert_eq!(primed.journal(), plain.journal());
        assert_eq!(
            format!("{:?}", primed.take_warnings()),
            format!("{:?}", plain.take_warnings())
        );
    }

    /// The listing is what answers: a name created after it stays absent to the primed root (a
    /// race a probe of a live host always has), which only holds if no lookup was made. A `..`
    /// path, a directory with too few names asked, and `proc/` are never answered from a listing.
    #[test]
    fn prime_answers_from_the_listing_only_where_it_speaks() {
        let dir = tree();
        let p = dir.path();
        std::fs::create_dir_all(p.join("proc/1")).unwrap();
        std::fs::create_dir_all(p.join("opt")).unwrap();
        let mut paths: Vec<String> = (0..40).map(|i| format!("etc/m{i}")).collect();
        paths.extend((0..40).map(|i| format!("proc/{i}/comm")));
        paths.push("opt/late".into());
        let root = Root::open(p).unwrap();
        root.prime(paths.iter().map(String::as_str));
        assert!(!root.is_listed("proc"), "proc is never listed");
        assert!(!root.is_listed("opt"), "one name is looked up");
        std::fs::create_dir(p.join("etc/m3")).unwrap();
        std::fs::write(p.join("opt/late"), "").unwrap();
        std::fs::write(p.join("proc/1/comm"), "").unwrap();
        assert_eq!(root.stat("etc/m3"), Err(Failure::Absent));
        // `..` is in no listing, yet `etc/..` is not absent.
        assert_eq!(root.stat("etc/../usr/lib/os-release"), Ok(FileKind::File));
        assert_eq!(root.stat("../etc/m3"), Ok(FileKind::Dir));
        assert_eq!(root.stat("opt/late"), Ok(FileKind::File));
        assert_eq!(root.stat("proc/1/comm"), Ok(FileKind::File));
    }

    /// The default probe pays nothing for `prime`: no directory holds enough of the shipped rules'
    /// names to be even sized up. (When one does, measure the default probe before raising it.)
    #[test]
    fn shipped_rules_never_prime() {
        let rules = crate::rules::RuleSet::embedded().unwrap();
        let wanted = rules.wanted();
        let crowded = crowded_dirs(wanted.paths.iter().copied());
        assert!(crowded.is_empty(), "{crowded:?}");
    }

    /// A directory whose size says it holds far more entries than names are asked about is left to
    /// the lookups: reading `usr/bin` for a few names costs more than the lookups.
    /// The one-pass count gives what counting each directory's changes of name in a map gives (the
    /// way it was counted before), on sorted paths with shared prefixes, nested directories, names
    /// that are prefixes of siblings' and a `proc/` that is never counted.
    #[test]
    fn crowded_dirs_counts_as_a_map_would() {
        let mut paths: Vec<String> = Vec::new();
        for i in 0..40 {
            paths.push(format!("usr/share/tool-{i}/release"));
            paths.push(format!("usr/share/tool-{i}/extra"));
            paths.push(format!("usr/share/tool-{i}-x/release"));
            paths.push(format!("var/lib/deep/er/{i}"));
            paths.push(format!("proc/{i}/comm"));
        }
        paths.extend((0..33).map(|i| format!("etc/marker-{i}")));
        paths.extend(["etc".into(), "etc/marker-1/sub".into()]);
        paths.sort();
        paths.dedup();
        let by_map = {
            let mut children: std::collections::HashMap<&str, (usize, &str)> = Default::default();
            for path in &paths {
                for (dir, name) in parents(path) {
                    if dir == "proc" || dir.starts_with("proc/") {
                        break;
                    }
                    let (count, last) = children.entry(dir).or_insert((0, ""));
                    if *last != name {
                        *count += 1;
                        *last = name;
                    }
                }
            }
            let mut dirs: Vec<(&str, usize)> = children
                .into_iter()
                .filter(|&(_, (count, _))| count >= PRIME_MIN_NAMES)
                .map(|(dir, (count, _))| (dir, count))
                .collect();
            dirs.sort_unstable();
            dirs
        };
        let counted = crowded_dirs(paths.iter().map(String::as_str));
        assert_eq!(counted, by_map);
        let dirs: Vec<&str> = counted.iter().map(|&(dir, _)| dir).collect();
        assert_eq!(dirs, ["etc", "usr/share", "var/lib/deep/er"]);
    }

    #[test]
    fn prime_leaves_big_directories_to_lookups() {
        let dir = tree();
        let bin = dir.path().join("usr/bin");
        std::fs::create_dir_all(&bin).unwrap();
        for i in 0..2000 {
            std::fs::write(bin.join(format!("tool-with-a-long-name-{i}")), "").unwrap();
        }
        let paths: Vec<String> = (0..40).map(|i| format!("usr/bin/want-{i}")).collect();
        let root = Root::open(dir.path()).unwrap();
        root.prime(paths.iter().map(String::as_str));
        assert!(!root.is_listed("usr/bin"));
        let many: Vec<String> = (0..2000).map(|i| format!("usr/bin/want-{i}")).collect();
        root.prime(many.iter().map(String::as_str));
        assert!(root.is_listed("usr/bin"));
    }

    /// `var/run -> ../run`, and a manifest with a socket under `run/` and an unreadable file.
    fn tree_with_manifest() -> tempfile::TempDir {
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
        assert!(matches!(
            root.read("etc/shadow", 10),
            Err(Failure::Unreadable(r)) if r.contains("permission")
        ));
    }

    #[test]
    fn bad_manifest_names_its_line() {
        let dir = tree();
        std::fs::write(
            dir.path().join(MANIFEST_FILE),
            "[[entry]]\npath = \"x\"\ntype = \"teapot\"\n",
        )
        .unwrap();
        match Root::open(dir.path()) {
            Err(RootError::Manifest { line, .. }) => assert_eq!(line, 3),
            other => panic!("expected a manifest error, got {other:?}"),
        }
    }

    #[test]
    fn missing_root_and_file_root_are_errors() {
        let dir = tree();
        assert!(matches!(
            Root::open(&dir.path().join("nope")),
            Err(RootError::Open { .. })
        ));
        assert!(matches!(
            Root::open(&dir.path().join("usr/lib/os-release")),
            Err(RootError::NotADirectory { .. })
        ));
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

    #[test]
    fn trace_shows_every_link_on_the_way() {
        let dir = tree();
        std::fs::create_dir_all(dir.path().join("run/crio")).unwrap();
        std::fs::create_dir_all(dir.path().join("var")).unwrap();
        symlink("/run", dir.path().join("var/run")).unwrap();
        symlink("../usr/lib/os-release", dir.path().join("etc/os-release")).unwrap();
        std::fs::write(dir.path().join("run/crio/conf"), "x").unwrap();
        let root = Root::open(dir.path()).unwrap();
        let opened = root.journal().len();
        assert_eq!(
            root.trace("var/run/crio/conf", Last::Open),
            vec![
                Step::Dir("var".into()),
                Step::Link {
                    path: "var/run".into(),
                    target: "/run".into()
                },
                Step::Dir("run".into()),
                Step::Dir("run/crio".into()),
                Step::File("run/crio/conf".into()),
            ]
        );
        // lstat and readlink stop at a trailing link; stat follows it.
        assert_eq!(
            root.trace("etc/os-release", Last::Keep).last(),
            Some(&Step::Link {
                path: "etc/os-release".into(),
                target: "../usr/lib/os-release".into()
            })
        );
        assert_eq!(
            root.trace("etc/os-release", Last::Follow).last(),
            Some(&Step::File("usr/lib/os-release".into()))
        );
        // `..` at the top stays at the top, as in a chroot.
        assert_eq!(
            root.trace("../../etc/../usr/lib/os-release", Last::Follow)
                .last(),
            Some(&Step::File("usr/lib/os-release".into()))
        );
        // Absent: the directories that exist, nothing more.
        assert_eq!(
            root.trace("var/run/docker.sock", Last::Follow).last(),
            Some(&Step::Dir("run".into()))
        );
        assert_eq!(
            root.journal().len(),
            opened,
            "trace is not journaled (only what opening the root read is)"
        );
    }

    #[test]
    fn trace_stops_in_a_loop_with_its_links_and_reports_special_files() {
        let dir = tree();
        symlink("b", dir.path().join("etc/a")).unwrap();
        symlink("a", dir.path().join("etc/b")).unwrap();
        nix::unistd::mkfifo(
            &dir.path().join("etc/fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        let root = Root::open(dir.path()).unwrap();
        let steps = root.trace("etc/a", Last::Follow);
        let links: BTreeMap<_, _> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Link { path, target } => Some((path.clone(), target.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(links.len(), 2, "{steps:?}");
        assert_eq!(links["etc/a"], "b");
        assert_eq!(links["etc/b"], "a");
        assert_eq!(
            root.trace("etc/fifo", Last::Open).last(),
            Some(&Step::Entry(ManifestEntry {
                path: "etc/fifo".into(),
                kind: ManifestKind::Fifo,
                error: None
            }))
        );
    }

    #[test]
    fn trace_finds_manifest_entries_under_the_keys_stat_tries() {
        let dir = tree_with_manifest();
        let root = Root::open(dir.path()).unwrap();
        let socket = Step::Entry(ManifestEntry {
            path: "run/docker.sock".into(),
            kind: ManifestKind::Socket,
            error: None,
        });
        assert_eq!(
            root.trace("var/run/docker.sock", Last::Follow).last(),
            Some(&socket)
        );
        assert_eq!(
            root.trace("run/docker.sock", Last::Follow).last(),
            Some(&socket)
        );
    }

    #[test]
    fn captured_reads_keep_one_byte_past_the_cap() {
        let dir = tree();
        std::fs::write(dir.path().join("etc/big"), vec![b'a'; 5000]).unwrap();
        let root = Root::open(dir.path()).unwrap().capture();
        root.read("etc/big", 100).unwrap();
        root.read("./etc//big", 10).unwrap();
        root.list("etc", 10).unwrap();
        let captured = root.captured();
        assert_eq!(captured.reads["etc/big"].len(), 101);
        assert_eq!(captured.lists["etc"], vec!["big".to_string()]);
        assert!(Root::open(dir.path()).unwrap().captured().reads.is_empty());
    }

    #[test]
    fn manifest_errno_names_replay_as_words() {
        assert_eq!(errno_words("EACCES"), "permission denied");
        assert!(errno_words("ELOOP").contains("symbolic links"));
        assert!(errno_words(EXCLUDED).contains("withheld"));
        assert_eq!(errno_words("EWHATEVER"), "EWHATEVER");
    }
}
