//! Manifest replay: what a recorded root carries in `.hostprint-manifest.toml` for what git cannot
//! hold (sockets, FIFOs, devices, files that were unreadable on the recorded host).
//!
//! An entry stands in only for a path the tree lacks: a stat finds its kind, a read fails as the
//! recorded host's did. `error` holds the errno's name as text (`EACCES`), or `EXCLUDED` for a file
//! `hostprint record` withheld as a possible secret; it is parsed into a [`Reason`] when loaded.
//!
//! ```toml
//! [[entry]]
//! path = "run/docker.sock"
//! type = "socket"          # socket, fifo, char-device, block-device or unreadable
//!
//! [[entry]]
//! path = "etc/selinux/config"
//! type = "unreadable"
//! error = "EACCES"         # optional; EACCES when left out
//! ```

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::resolver::Resolver;
use super::{Failure, FileKind, Reason};
use crate::text::{line_of, normalize};

/// Name of the manifest a recorded root carries at its top.
pub const MANIFEST_FILE: &str = ".hostprint-manifest.toml";

/// The `error` of a path `hostprint record` withheld because it may hold secrets.
const EXCLUDED: &str = "EXCLUDED";

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
    pub error: Option<Reason>,
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

impl ManifestKind {
    /// The manifest type standing in for a kind git cannot hold (anything else is `unreadable`).
    pub(super) fn of(kind: FileKind) -> ManifestKind {
        match kind {
            FileKind::Socket => ManifestKind::Socket,
            FileKind::Fifo => ManifestKind::Fifo,
            FileKind::CharDevice => ManifestKind::CharDevice,
            FileKind::BlockDevice => ManifestKind::BlockDevice,
            FileKind::File | FileKind::Dir | FileKind::Symlink => ManifestKind::Unreadable,
        }
    }
}

impl ManifestEntry {
    /// An `unreadable` entry for `path`.
    pub fn unreadable(path: String, reason: Reason) -> ManifestEntry {
        ManifestEntry {
            path,
            kind: ManifestKind::Unreadable,
            error: Some(reason),
        }
    }
}

impl Reason {
    /// As a manifest writes it: the errno's name, `EXCLUDED`, or the text.
    fn name(&self) -> String {
        match self {
            Reason::Errno(errno) => format!("{errno:?}"),
            Reason::Withheld => EXCLUDED.to_string(),
            Reason::Other(text) => text.clone(),
        }
    }

    /// The inverse of [`Reason::name`]; a name no errno has is kept as written.
    fn from_name(name: &str) -> Reason {
        if name == EXCLUDED {
            return Reason::Withheld;
        }
        // Linux errnos are small positive numbers; nix names each as the C constant.
        (1..256)
            .map(Errno::from_raw)
            .find(|errno| *errno != Errno::UnknownErrno && format!("{errno:?}") == name)
            .map_or_else(|| Reason::Other(name.to_string()), Reason::Errno)
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Reason, D::Error> {
        String::deserialize(d).map(|name| Reason::from_name(&name))
    }
}

/// A loaded manifest, keyed by normalized path.
#[derive(Default)]
pub(super) struct Replay {
    entries: BTreeMap<String, ManifestEntry>,
    /// The root directory with symlinks resolved (see `canonical`), found on first use.
    canonical_dir: OnceCell<Option<PathBuf>>,
}

impl Replay {
    /// Parses a manifest's text; an error is its line (1-based, 0 when unknown) and reason.
    pub(super) fn parse(text: &str) -> Result<Replay, (usize, String)> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(0);
            (line, e.message().to_string())
        })?;
        let entries = manifest
            .entries
            .into_iter()
            .map(|entry| (normalize(&entry.path).into_owned(), entry))
            .collect();
        Ok(Replay {
            entries,
            canonical_dir: OnceCell::new(),
        })
    }

    /// The entry recorded under exactly `key`.
    pub(super) fn get(&self, key: &str) -> Option<&ManifestEntry> {
        self.entries.get(key)
    }

    /// What the manifest says of `rel`, which the tree lacks. The literal path is tried first; then
    /// the path with its parent resolved inside the root (so `var/run/docker.sock` finds an entry
    /// recorded as `run/docker.sock` when `var/run -> ../run`).
    pub(super) fn stand_in(
        &self,
        rel: &str,
        paths: &Resolver,
        dir: &Path,
    ) -> Result<FileKind, Failure> {
        if self.entries.is_empty() {
            return Err(Failure::Absent);
        }
        let entry = self.entries.get(rel).or_else(|| {
            let canonical = self.canonical(rel, paths, dir)?;
            self.entries.get(&canonical)
        });
        let Some(entry) = entry else {
            return Err(Failure::Absent);
        };
        match entry.kind {
            ManifestKind::Socket => Ok(FileKind::Socket),
            ManifestKind::Fifo => Ok(FileKind::Fifo),
            ManifestKind::CharDevice => Ok(FileKind::CharDevice),
            ManifestKind::BlockDevice => Ok(FileKind::BlockDevice),
            ManifestKind::Unreadable => Err(Failure::Unreadable(
                entry.error.clone().unwrap_or(Reason::Errno(Errno::EACCES)),
            )),
        }
    }

    /// `rel` with its parent directory resolved inside the root, as a path relative to the root.
    fn canonical(&self, rel: &str, paths: &Resolver, dir: &Path) -> Option<String> {
        let (parent, name) = rel.rsplit_once('/')?;
        let handle = paths.resolve(parent, true).ok()?;
        let host = paths.host_path(&handle)?;
        let top = self
            .canonical_dir
            .get_or_init(|| std::fs::canonicalize(dir).ok())
            .as_deref()?;
        let inner = host.strip_prefix(top).ok()?;
        let mut out = inner.to_string_lossy().into_owned();
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(name);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_round_trip_as_names() {
        let text = "[[entry]]\npath = \"a\"\ntype = \"unreadable\"\nerror = \"ELOOP\"\n\n\
                    [[entry]]\npath = \"b\"\ntype = \"unreadable\"\nerror = \"EXCLUDED\"\n\n\
                    [[entry]]\npath = \"c\"\ntype = \"unreadable\"\nerror = \"EWHATEVER\"\n\n\
                    [[entry]]\npath = \"d\"\ntype = \"socket\"\n";
        let manifest: Manifest = toml::from_str(text).unwrap();
        let errors: Vec<_> = manifest.entries.iter().map(|e| e.error.clone()).collect();
        assert_eq!(
            errors,
            [
                Some(Reason::Errno(Errno::ELOOP)),
                Some(Reason::Withheld),
                Some(Reason::Other("EWHATEVER".into())),
                None
            ]
        );
        assert_eq!(toml::to_string(&manifest).unwrap(), text);
        assert_eq!(
            Reason::Errno(Errno::ELOOP).to_string(),
            "too many levels of symbolic links (a symlink loop?)"
        );
        assert_eq!(
            Reason::Errno(Errno::EACCES).to_string(),
            "permission denied"
        );
    }
}
