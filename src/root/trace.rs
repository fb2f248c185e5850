//! `Root::trace`: a path's resolution walked one component at a time, for `hostprint record`.
//!
//! The kernel resolves a path in one call, which hides the symlinks in between (`var/run -> ../run`);
//! a recording must recreate every one of them, every directory passed, and a manifest entry for
//! what git cannot hold. The walk goes through pathrs one `lstat` at a time; no probe uses it.

use std::collections::VecDeque;
use std::os::fd::AsFd;

use nix::sys::stat::fstat;
use pathrs::flags::OpenFlags;

use super::{normalize, Failure, FileKind, ManifestEntry, ManifestKind, Reason, Root};

/// The kernel's MAXSYMLINKS: more links than this in one resolution is ELOOP.
const MAX_LINKS: usize = 40;

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
    /// file that could not be opened (`unreadable` with its reason); or the manifest entry a
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

impl Root {
    /// Walks `path` one component at a time with chroot semantics (the kernel's: `..` at the top
    /// stays at the top, an absolute target starts again from the top) and reports every directory
    /// passed, every symlink met and what the path ends on. Each lookup is an `lstat` of a path whose
    /// parents are real directories, so nothing is followed behind our back.
    ///
    /// Not journaled: it retraces paths the journal already holds. A walk that meets more links than
    /// the kernel follows stops (its ELOOP); the links are reported, so a replayed loop fails the same
    /// way. An absent path reports the directories that do exist, and the manifest entry a recorded
    /// root has for it under the keys [`Root::stat`] would try.
    pub fn trace(&self, path: &str, last: Last) -> Vec<Step> {
        let pathrs = self.paths.pathrs();
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
            let kind = pathrs
                .resolve_nofollow(&at)
                .map_err(|e| Failure::from(Reason::from(&e)))
                .and_then(|h| Ok(FileKind::from_mode(fstat(h.as_fd())?.st_mode)));
            let kind = match kind {
                Ok(kind) => kind,
                Err(Failure::Unreadable(reason)) => {
                    here.extend(todo);
                    steps.push(Step::Entry(ManifestEntry::unreadable(
                        here.join("/"),
                        reason,
                    )));
                    return steps;
                }
                Err(_) => {
                    // Only the keys a stat tries: the path as asked, and (when the missing component
                    // is the last) the path with its parent resolved.
                    let found = self
                        .manifest
                        .get(&normalize(path))
                        .or_else(|| is_last.then(|| self.manifest.get(&at)).flatten());
                    steps.extend(found.cloned().map(Step::Entry));
                    return steps;
                }
            };
            match kind {
                FileKind::Symlink => {
                    let target = match pathrs.readlink(&at) {
                        Ok(t) => t.to_string_lossy().into_owned(),
                        Err(e) => {
                            steps.push(Step::Entry(ManifestEntry::unreadable(at, (&e).into())));
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
                        let opened = pathrs.resolve_nofollow(&at).and_then(|h| {
                            h.reopen(
                                OpenFlags::O_RDONLY | OpenFlags::O_NONBLOCK | OpenFlags::O_CLOEXEC,
                            )
                        });
                        if let Err(e) = opened {
                            steps.push(Step::Entry(ManifestEntry::unreadable(at, (&e).into())));
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

/// [`crate::text::components`], owned, as the walk in `trace` consumes them.
fn components(path: &str) -> VecDeque<String> {
    crate::text::components(path).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::root::tests::{tree, tree_with_manifest};

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
}
