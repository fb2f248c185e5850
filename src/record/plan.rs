//! The plan of a recording: from the journal and the captured bytes, every directory, file, link
//! and manifest entry to recreate (withholding secrets), then writing them so no write passes
//! through a link.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::{io_error, Capture, RecordError, Summary};
use crate::root::{
    normalize, Access, Failure, Last, Manifest, ManifestEntry, Op, Outcome, Reason, Root, Step,
    MANIFEST_FILE,
};
use crate::secrets::secret_reason;

/// What to write, keyed by canonical path relative to the root. A file only `stat`ed is written
/// empty (its kind is the fact, not its bytes); names a probe listed become empty placeholders when
/// nothing else put them there.
#[derive(Debug, Default)]
pub(super) struct Plan {
    dirs: BTreeSet<String>,
    links: BTreeMap<String, OsString>,
    /// Bytes (empty for a file only checked for) and the source's permission bits.
    files: BTreeMap<String, (Vec<u8>, u32)>,
    placeholders: BTreeSet<String>,
    manifest: BTreeMap<String, ManifestEntry>,
    withheld: BTreeMap<String, String>,
    truncated: BTreeMap<String, usize>,
    unfollowed: BTreeSet<String>,
    /// The last step of every retraced path (what the probes touched, as resolved).
    pub(super) ends: BTreeSet<String>,
}

impl Plan {
    pub(super) fn new(root: &Root, journal: &[Access], captured: &Capture) -> Plan {
        let mut plan = Plan::default();
        for access in journal {
            let asked = normalize(&access.path);
            // The source's own manifest is not a probed file: the entries it contributed come back
            // through the walk, and `record` writes a manifest of its own.
            if asked == MANIFEST_FILE {
                continue;
            }
            let last = match access.op {
                Op::Read => Last::Open,
                Op::Stat | Op::List => Last::Follow,
                Op::Lstat | Op::Readlink => Last::Keep,
            };
            let steps = root.trace(&access.path, last);
            if let Some(end) = steps.last() {
                // For an absent path the last step is only the deepest directory that exists,
                // which the probe did not touch.
                if access.outcome != Outcome::Failed(Failure::Absent) {
                    plan.ends.insert(step_path(end).to_string());
                }
                // The names a probe listed are part of what it saw.
                if let (Op::List, Step::Dir(dir), Some(names)) =
                    (access.op, end, captured.lists.borrow().get(asked.as_ref()))
                {
                    plan.placeholders
                        .extend(names.iter().map(|n| format!("{dir}/{n}")));
                }
            }
            // The walk stops at a link whose target is not text; unless the link itself was the
            // question, what it leads to is missing from the recording.
            if let (Some(Step::Link { path, target }), Op::Read | Op::Stat | Op::List) =
                (steps.last(), access.op)
            {
                if target.to_str().is_none() {
                    plan.unfollowed.insert(path.clone());
                }
            }
            let has_link = steps.iter().any(|s| matches!(s, Step::Link { .. }));
            let mut stand_in = None;
            for step in steps {
                stand_in = plan.add(step, access, &asked, captured);
            }
            // A socket or a withheld file reached through a trailing link (`run/docker.sock ->
            // docker/docker.sock`) is looked up on replay under the path as asked, with its
            // parent resolved (see `Root::stat`): the entry must be found there too.
            if let (Some(entry), true) = (stand_in, has_link) {
                match lookup_key(root, &asked) {
                    Some(key) if key != entry.path => {
                        plan.manifest
                            .insert(key.clone(), ManifestEntry { path: key, ..entry });
                    }
                    _ => {}
                }
            }
        }
        // A withheld path is withheld however else it was reached.
        for path in plan.withheld.keys() {
            plan.files.remove(path);
            plan.truncated.remove(path);
        }
        plan
    }

    /// Adds one step; returns the manifest entry it stands in with, if any.
    fn add(
        &mut self,
        step: Step,
        access: &Access,
        asked: &str,
        captured: &Capture,
    ) -> Option<ManifestEntry> {
        match step {
            Step::Dir(path) => {
                self.dirs.insert(path);
            }
            Step::Link { path, target } => {
                self.links.insert(path, target);
            }
            Step::File { path, mode, public } => {
                // Only bytes are withheld: a file the probes only checked for is recreated empty,
                // which tells nothing but that it exists.
                let secret = secret_reason(&path).or_else(|| secret_reason(asked));
                let why = match (access.op, secret) {
                    (Op::Read, Some(why)) => Some(why.to_string()),
                    (Op::Read, None) if !public => Some(format!(
                        "not readable by every user on the source (mode {mode:04o}, or a \
                         directory on the way closed to others)"
                    )),
                    _ => None,
                };
                if let Some(why) = why {
                    self.withheld.insert(path.clone(), why);
                    let entry = ManifestEntry::unreadable(path.clone(), Reason::Withheld);
                    self.manifest.insert(path, entry.clone());
                    return Some(entry);
                }
                let bytes = match access.op {
                    Op::Read => captured
                        .reads
                        .borrow()
                        .get(asked)
                        .cloned()
                        .unwrap_or_default(),
                    _ => Vec::new(),
                };
                if access.outcome == Outcome::Truncated {
                    let kept = self.truncated.entry(path.clone()).or_default();
                    *kept = (*kept).max(bytes.len());
                }
                let kept = self.files.entry(path).or_insert((Vec::new(), mode));
                if bytes.len() > kept.0.len() {
                    kept.0 = bytes;
                }
            }
            Step::Entry(entry) => {
                self.manifest.insert(entry.path.clone(), entry.clone());
                return Some(entry);
            }
        }
        None
    }

    /// Writes the plan into `out` (created if missing). Directories, files, placeholders, then
    /// links, so that no write passes through a link; a path whose ancestor is a link or a file in
    /// the plan (the source changed between two walks) is skipped and reported.
    pub(super) fn write(mut self, out: &Path) -> Result<Summary, RecordError> {
        std::fs::create_dir_all(out).map_err(io_error(out))?;
        let mut summary = Summary::default();
        let blocked: BTreeSet<String> = self
            .links
            .keys()
            .chain(self.files.keys())
            .cloned()
            .collect();
        // A proper ancestor of `p` is a link or a file.
        let under_blocked = |p: &str| p.match_indices('/').any(|(i, _)| blocked.contains(&p[..i]));
        for dir in &self.dirs {
            if under_blocked(dir) || blocked.contains(dir) {
                summary.skipped.push(dir.clone());
                continue;
            }
            let at = out.join(dir);
            std::fs::create_dir_all(&at).map_err(io_error(&at))?;
            summary.dirs += 1;
        }
        for (path, (bytes, mode)) in &self.files {
            if under_blocked(path) || self.links.contains_key(path) || self.dirs.contains(path) {
                summary.skipped.push(path.clone());
                continue;
            }
            write_new(&out.join(path), bytes, *mode)?;
            summary.files += 1;
        }
        self.placeholders.retain(|p| {
            !(under_blocked(p)
                || self.dirs.contains(p)
                || self.files.contains_key(p)
                || self.links.contains_key(p)
                || self.manifest.contains_key(p))
        });
        for path in &self.placeholders {
            write_new(&out.join(path), b"", 0o644)?;
        }
        summary.placeholders = self.placeholders.len();
        for (path, target) in &self.links {
            if under_blocked(path) || self.dirs.contains(path) {
                summary.skipped.push(path.clone());
                continue;
            }
            let at = out.join(path);
            std::os::unix::fs::symlink(target, &at).map_err(io_error(&at))?;
            summary.links += 1;
        }
        // A manifest entry stands in only for what the tree lacks; never list what was written.
        self.manifest
            .retain(|p, _| !self.files.contains_key(p) && !self.dirs.contains(p));
        if !self.manifest.is_empty() {
            let manifest = Manifest {
                entries: self.manifest.into_values().collect(),
            };
            let text = toml::to_string(&manifest).map_err(|e| RecordError::Io {
                path: out.join(MANIFEST_FILE),
                reason: e.to_string(),
            })?;
            let header = "# Written by `hostprint record`: what git cannot hold (sockets, FIFOs, \
                          devices, unreadable files;\n# error = \"EXCLUDED\": withheld by the \
                          recorder as a possible secret). See fixtures/README.md.\n\n";
            summary.manifest_entries = manifest.entries.len();
            write_new(
                &out.join(MANIFEST_FILE),
                format!("{header}{text}").as_bytes(),
                0o644,
            )?;
        }
        summary.withheld = self.withheld.into_iter().collect();
        summary.unfollowed = self.unfollowed.into_iter().collect();
        summary.truncated = self.truncated.into_iter().collect();
        Ok(summary)
    }
}

/// The key under which a replay looks `asked` up in the manifest once the tree has failed it: its
/// parent resolved inside the root, plus its own name.
fn lookup_key(root: &Root, asked: &str) -> Option<String> {
    let Some((parent, name)) = asked.rsplit_once('/') else {
        return Some(asked.to_string());
    };
    match root.trace(parent, Last::Follow).last() {
        Some(Step::Dir(dir)) => Some(format!("{dir}/{name}")),
        _ => None,
    }
}

fn step_path(step: &Step) -> &str {
    match step {
        Step::Dir(p) | Step::File { path: p, .. } | Step::Link { path: p, .. } => p,
        Step::Entry(e) => &e.path,
    }
}

/// Creates a new file (never overwrites, never follows a link at the final component) with the
/// permission bits `mode` (set after creation, so the umask does not change them; never set-id).
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), RecordError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_error(parent))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_error(path))?;
    file.write_all(bytes).map_err(io_error(path))?;
    let mode = std::fs::Permissions::from_mode(mode & 0o777);
    file.set_permissions(mode).map_err(io_error(path))
}
