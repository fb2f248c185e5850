//! What a path is (`FileKind`) and why it could not be used (`Failure`, `Reason`).
//!
//! Absent, unreadable (with its errno) and wrong-kind stay distinct because only "absent" may
//! trigger a fallback; each failure maps to the warning code the profile reports.

use std::fmt;

use nix::errno::Errno;
use nix::sys::stat::SFlag;

use crate::warning::Code;

/// What a path is, as `lstat`/`stat` would say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
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
    pub(super) fn from_mode(mode: u32) -> FileKind {
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
    /// It exists but could not be resolved or read.
    Unreadable(Reason),
    /// It exists but is not what the caller needs (a FIFO where a file was expected, …).
    WrongKind(FileKind),
}

/// Why a path that exists could not be resolved or read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// What the kernel said.
    Errno(Errno),
    /// `hostprint record` withheld the file as a possible secret (manifest `error = "EXCLUDED"`).
    Withheld,
    /// A refusal that has no errno (pathrs' safety checks), or a manifest error that names no errno.
    Other(String),
}

impl From<Reason> for Failure {
    /// ENOENT and ENOTDIR are "absent"; anything else is "unreadable".
    fn from(reason: Reason) -> Failure {
        match reason {
            Reason::Errno(Errno::ENOENT | Errno::ENOTDIR) => Failure::Absent,
            other => Failure::Unreadable(other),
        }
    }
}

impl From<Errno> for Failure {
    fn from(errno: Errno) -> Failure {
        Reason::Errno(errno).into()
    }
}

impl From<&std::io::Error> for Reason {
    fn from(e: &std::io::Error) -> Reason {
        match e.raw_os_error() {
            Some(code) => Reason::Errno(Errno::from_raw(code)),
            None => Reason::Other(e.to_string()),
        }
    }
}

impl From<&pathrs::error::Error> for Reason {
    fn from(e: &pathrs::error::Error) -> Reason {
        use pathrs::error::ErrorKind;
        match e.kind() {
            ErrorKind::OsError(Some(code)) => Reason::Errno(Errno::from_raw(code)),
            ErrorKind::SafetyViolation => Reason::Other(format!("refused to resolve: {e}")),
            _ => Reason::Other(e.to_string()),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Errno(Errno::ELOOP) => {
                f.write_str("too many levels of symbolic links (a symlink loop?)")
            }
            Reason::Errno(errno) => f.write_str(&errno.desc().to_lowercase()),
            Reason::Withheld => f.write_str("withheld by `hostprint record` (may hold secrets)"),
            Reason::Other(text) => f.write_str(text),
        }
    }
}

impl Failure {
    /// The warning code of a read that failed this way (absence is no warning at all).
    pub fn code(&self) -> Code {
        match self {
            Failure::Unreadable(Reason::Withheld) => Code::Withheld,
            Failure::Absent | Failure::Unreadable(_) => Code::Unreadable,
            Failure::WrongKind(_) => Code::WrongKind,
        }
    }
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
