//! `hostprint record DIR`: copy from a root exactly what the probes read, so that
//! `hostprint --root DIR` replays the same profile and a user can send us their node as a fixture.
//!
//! The source is probed once with a [`Capture`] keeping the bytes each read returned (a second read of
//! a changing `proc/` would differ). Each journaled path is retraced ([`Root::trace`]) so every symlink
//! and directory on the way is recreated; what git cannot hold becomes a manifest entry. DIR must be
//! new or empty and not where the probes read; it is built in a temporary directory beside it, links
//! last. Secrets are never copied: a file [`secret_reason`](crate::secrets::secret_reason) names,
//! or that not every user may read, is listed as `unreadable` with `error = "EXCLUDED"`. Files keep
//! their permission bits. What to write, and writing it, is the [`plan`].

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::profile;
use crate::root::{normalize, Access, Root, RootError, Tap};
use crate::rules::RuleSet;

mod plan;

use plan::Plan;

/// Why a recording was refused or failed (all exit 1).
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Root(#[from] RootError),
    #[error("{path}: not empty; record writes only into a new or empty directory")]
    NotEmpty { path: PathBuf },
    #[error(
        "{path}: lies where the probes read ({probed} in the source root {root}); recording there \
         would change the host being recorded"
    )]
    InsideProbed {
        path: PathBuf,
        probed: String,
        root: PathBuf,
    },
    #[error("{path}: {reason}")]
    Io { path: PathBuf, reason: String },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> RecordError + '_ {
    move |e| RecordError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// What a recording wrote, for the summary `record` prints.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// The identity the probes found (what the replay must find too).
    pub identity: String,
    pub files: usize,
    pub links: usize,
    pub dirs: usize,
    pub manifest_entries: usize,
    /// Listed names recreated as empty files.
    pub placeholders: usize,
    /// Files whose bytes were withheld (on the secret list, or not readable by every user on the
    /// source), with the reason.
    pub withheld: Vec<(String, String)>,
    /// Symlinks whose target is not UTF-8: recorded byte for byte, but what they lead to was not
    /// followed, so not recorded.
    pub unfollowed: Vec<String>,
    /// Files longer than a probe's cap, with the bytes kept.
    pub truncated: Vec<(String, usize)>,
    /// Paths not written because the source changed under the walk (a file where a link was, …).
    pub skipped: Vec<String>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "identity as probed: {}", self.identity)?;
        writeln!(
            f,
            "{} files, {} symlinks, {} directories, {} manifest entries, {} listed-name placeholders",
            self.files, self.links, self.dirs, self.manifest_entries, self.placeholders
        )?;
        writeln!(f, "{} withheld (possible secrets)", self.withheld.len())?;
        for (path, why) in &self.withheld {
            writeln!(f, "  withheld {path}: {why}")?;
        }
        for path in &self.unfollowed {
            writeln!(
                f,
                "  symlink {path}: its target is not UTF-8; recorded as is, what it leads to was not"
            )?;
        }
        for (path, kept) in &self.truncated {
            writeln!(
                f,
                "  truncated {path}: longer than the probe reads; kept the first {kept} bytes"
            )?;
        }
        for path in &self.skipped {
            writeln!(f, "  skipped {path}: changed while recording")?;
        }
        Ok(())
    }
}

/// What the probes saw: the bytes each read returned and the names each listing returned, by
/// normalized path.
#[derive(Debug, Default)]
struct Capture {
    /// Up to the cap plus one byte: a file longer than the cap keeps that extra byte, so a replay
    /// finds it too long exactly as the probe did. A path read with several caps keeps the longest
    /// read.
    pub(super) reads: RefCell<BTreeMap<String, Vec<u8>>>,
    pub(super) lists: RefCell<BTreeMap<String, Vec<String>>>,
}

impl Tap for Capture {
    fn read(&self, path: &str, bytes: &[u8]) {
        let mut reads = self.reads.borrow_mut();
        let kept = reads.entry(path.to_string()).or_default();
        if bytes.len() > kept.len() {
            *kept = bytes.to_vec();
        }
    }

    fn list(&self, path: &str, names: &[String]) {
        self.lists
            .borrow_mut()
            .insert(path.to_string(), names.to_vec());
    }
}

/// Records `source` into `out` (see the module docs).
pub fn record(source: &Path, rules: &RuleSet, out: &Path) -> Result<Summary, RecordError> {
    // Refuse early, before probing, so a mistaken DIR costs nothing.
    ensure_empty(out)?;
    let capture = Rc::new(Capture::default());
    let root = Root::open_tapped(source, Some(capture.clone()))?;
    let profile = profile::build(&root, rules).profile;
    let journal = root.journal();
    let plan = Plan::new(&root, &journal, &capture);
    ensure_not_probed(source, out, &journal, &plan)?;
    let mut summary = write_whole(plan, out)?;
    summary.identity = match &profile.identity.id {
        Some(id) => format!("{id} ({})", profile.identity.kind),
        None => "unknown".to_string(),
    };
    Ok(summary)
}

/// Writes the plan into a temporary directory beside `out` and renames it to `out` once whole (over
/// the empty directory [`ensure_empty`] allowed, if any): a recording that fails midway (a path too
/// long for the kernel, a full disk) leaves nothing behind that a replay could take for the host.
fn write_whole(plan: Plan, out: &Path) -> Result<Summary, RecordError> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(parent).map_err(io_error(parent))?;
    let tmp = tempfile::Builder::new()
        .prefix(".hostprint-record-")
        .tempdir_in(parent)
        .map_err(io_error(parent))?;
    let summary = plan.write(tmp.path())?;
    let whole = tmp.path();
    std::fs::set_permissions(whole, std::fs::Permissions::from_mode(0o755))
        .and_then(|()| std::fs::rename(whole, out))
        .map_err(io_error(out))?;
    // Renamed: nothing is left for the guard to remove.
    let _ = tmp.keep();
    Ok(summary)
}

fn ensure_empty(out: &Path) -> Result<(), RecordError> {
    match std::fs::read_dir(out) {
        Ok(mut entries) => match entries.next() {
            None => Ok(()),
            Some(_) => Err(RecordError::NotEmpty {
                path: out.to_path_buf(),
            }),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(out)(e)),
    }
}

/// `out` as an absolute path without symlinks, also when it does not exist yet (its nearest
/// existing ancestor is resolved and the rest appended).
fn canonical_output(out: &Path) -> Result<PathBuf, RecordError> {
    let absolute = std::path::absolute(out).map_err(io_error(out))?;
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        match std::fs::canonicalize(existing) {
            Ok(mut base) => {
                base.extend(rest.iter().rev());
                return Ok(base);
            }
            Err(_) => match (existing.parent(), existing.file_name()) {
                (Some(parent), Some(name)) => {
                    rest.push(name.to_os_string());
                    existing = parent;
                }
                _ => return Err(io_error(out)(std::io::ErrorKind::NotFound.into())),
            },
        }
    }
}

/// Refuses an output inside the source root at, above or below a path the probes touched (as asked
/// or as resolved): `hostprint record /run/crio` on a live host would create the very paths the
/// runtime probe looks for. Directories only passed through (`etc`, `var`) do not count, so
/// recording `/` into `/var/tmp/x` is fine.
fn ensure_not_probed(
    source: &Path,
    out: &Path,
    journal: &[Access],
    plan: &Plan,
) -> Result<(), RecordError> {
    let source = std::fs::canonicalize(source).map_err(io_error(source))?;
    let target = canonical_output(out)?;
    let Ok(inside) = target.strip_prefix(&source) else {
        return Ok(());
    };
    let inside = normalize(&inside.to_string_lossy()).into_owned();
    let mut probed = journal
        .iter()
        .map(|a| normalize(&a.path).into_owned())
        .chain(plan.ends.iter().cloned())
        .filter(|p| !p.is_empty());
    let overlaps = |p: &String| {
        *p == inside || p.starts_with(&format!("{inside}/")) || inside.starts_with(&format!("{p}/"))
    };
    let found = match inside.is_empty() {
        true => Some("the root itself".to_string()),
        false => probed.find(overlaps),
    };
    match found {
        None => Ok(()),
        Some(probed) => Err(RecordError::InsideProbed {
            path: out.to_path_buf(),
            probed,
            root: source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_captured(source: &Path) -> Result<(Root, Rc<Capture>), RootError> {
        let capture = Rc::new(Capture::default());
        let root = Root::open_tapped(source, Some(capture.clone()))?;
        Ok((root, capture))
    }

    #[test]
    fn output_must_be_new_or_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert!(ensure_empty(&dir.path().join("new")).is_ok());
        assert!(ensure_empty(dir.path()).is_ok());
        std::fs::write(dir.path().join("x"), "").unwrap();
        assert!(matches!(
            ensure_empty(dir.path()),
            Err(RecordError::NotEmpty { .. })
        ));
    }

    #[test]
    fn canonical_output_resolves_the_existing_part() {
        let dir = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(dir.path()).unwrap();
        std::os::unix::fs::symlink(&real, dir.path().join("alias")).unwrap();
        assert_eq!(
            canonical_output(&dir.path().join("alias/a/b")).unwrap(),
            real.join("a/b")
        );
    }

    #[test]
    fn listed_names_become_placeholders_and_stat_only_files_stay_empty() {
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("etc/units")).unwrap();
        for (name, body) in [
            ("a.service", "x"),
            ("b.service", "y"),
            ("read.conf", "kept"),
        ] {
            std::fs::write(src.path().join("etc/units").join(name), body).unwrap();
        }
        let (root, capture) = open_captured(src.path()).unwrap();
        root.list("etc/units", 10).unwrap();
        root.stat("etc/units/a.service").unwrap();
        root.read("etc/units/read.conf", 100).unwrap();
        let plan = Plan::new(&root, &root.journal(), &capture);
        let out = tempfile::tempdir().unwrap();
        let summary = plan.write(&out.path().join("rec")).unwrap();
        let units = out.path().join("rec/etc/units");
        assert_eq!(
            std::fs::read_to_string(units.join("read.conf")).unwrap(),
            "kept"
        );
        assert_eq!(
            std::fs::read_to_string(units.join("a.service")).unwrap(),
            ""
        );
        assert_eq!(
            std::fs::read_to_string(units.join("b.service")).unwrap(),
            ""
        );
        assert_eq!(
            summary.placeholders, 1,
            "b.service only; the others were written as files"
        );
        assert_eq!(summary.files, 2);
    }

    #[test]
    fn captured_reads_keep_one_byte_past_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/big"), vec![b'a'; 5000]).unwrap();
        let (root, capture) = open_captured(dir.path()).unwrap();
        root.read("etc/big", 100).unwrap();
        root.read("./etc//big", 10).unwrap();
        root.list("etc", 10).unwrap();
        assert_eq!(capture.reads.borrow()["etc/big"].len(), 101);
        assert_eq!(capture.lists.borrow()["etc"], ["big"]);
    }
}
