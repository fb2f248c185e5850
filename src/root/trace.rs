//! `Root::trace`: a path's resolution walked one component at a time, for `hostprint record`.
//!
//! The kernel resolves a path in one call, which hides the symlinks in between (`var/run -> ../run`);
//! a recording must recreate every one of them, every directory passed, and a manifest entry for
//! what git cannot hold. The walk goes through pathrs one `lstat` at a time; no probe uses it.

use std::collections::VecDeque;
use std::ffi::OsString;
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
    /// A symlink met on the way (or ended on), with its target as the kernel returns it (not always
    /// UTF-8).
    Link { path: String, target: OsString },
    /// The regular file the path ends on, with its permission bits, and whether every user may read
    /// it: `o+r` on the file and `o+x` on every directory passed on the way.
    File {
        path: String,
        mode: u32,
        public: bool,
    },
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
    /// Walks `path` one `lstat` at a time with the kernel's chroot semantics and reports every
    /// directory passed, every symlink met and what the path ends on. Not journaled. Past the kernel's
    /// link limit the walk stops (a replayed loop fails alike); an absent path reports the directories
    /// that exist and the manifest entry [`Root::stat`] would find; a non-UTF-8 link is not followed.
    pub fn trace(&self, path: &str, last: Last) -> Vec<Step> {
        let pathrs = self.paths.pathrs();
        let mut steps = Vec::new();
        let mut here: Vec<String> = Vec::new();
        let mut todo: VecDeque<String> =
            crate::text::components(path).map(str::to_string).collect();
        let mut links = 0;
        // Every directory passed so far lets every user through (o+x).
        let mut searchable = true;
        while let Some(name) = todo.pop_front() {
            if name == ".." {
                here.pop();
                continue;
            }
            here.push(name);
            let at = here.join("/");
            let is_last = todo.is_empty();
            let mode = pathrs
                .resolve_nofollow(&at)
                .map_err(|e| Failure::from(Reason::from(&e)))
                .and_then(|h| Ok(fstat(h.as_fd())?.st_mode));
            let (kind, mode) = match mode {
                Ok(mode) => (FileKind::from_mode(mode), mode),
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
                    let target: OsString = match pathrs.readlink(&at) {
                        Ok(t) => t.into(),
                        Err(e) => {
                            steps.push(Step::Entry(ManifestEntry::unreadable(at, (&e).into())));
                            return steps;
                        }
                    };
                    let text = target.to_str().map(str::to_string);
                    steps.push(Step::Link { path: at, target });
                    if is_last && last == Last::Keep {
                        return steps;
                    }
                    let Some(target) = text else {
                        return steps;
                    };
                    links += 1;
                    if links > MAX_LINKS {
                        return steps;
                    }
                    here.pop();
                    if target.starts_with('/') {
                        here.clear();
                    }
                    for c in crate::text::components(&target).rev() {
                        todo.push_front(c.to_string());
                    }
                }
                FileKind::Dir => {
                    searchable &= mode & 0o001 != 0;
                    steps.push(Step::Dir(at));
                }
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
                    steps.push(Step::File {
                        path: at,
                        mode: mode & 0o7777,
                        public: searchable && mode & 0o004 != 0,
                    });
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::fs::Permissions;
    use std::os::unix::fs::{symlink, PermissionsExt};

    use super::*;
    use crate::root::tests::{link_loop, tree, tree_with_manifest};

    /// A regular file as a test tree lays it: mode 0644 in directories every user may search.
    fn file(path: &str) -> Step {
        Step::File {
            path: path.into(),
            mode: 0o644,
            public: true,
        }
    }

    #[test]
    fn trace_shows_every_link_on_the_way() {
        let dir = tree();
        std::fs::create_dir_all(dir.path().join("run/crio")).unwrap();
        std::fs::create_dir_all(dir.path().join("var")).unwrap();
        symlink("/run", dir.path().join("var/run")).unwrap();
        symlink("../usr/lib/os-release", dir.path().join("etc/os-release")).unwrap();
        std::fs::write(dir.path().join("run/crio/conf"), "x").unwrap();
        for p in ["run/crio/conf", "usr/lib/os-release"] {
            std::fs::set_permissions(dir.path().join(p), Permissions::from_mode(0o644)).unwrap();
        }
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
                file("run/crio/conf"),
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
            Some(&file("usr/lib/os-release"))
        );
        // `..` at the top stays at the top, as in a chroot.
        assert_eq!(
            root.trace("../../etc/../usr/lib/os-release", Last::Follow)
                .last(),
            Some(&file("usr/lib/os-release"))
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
        link_loop(dir.path(), "a", "b");
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
    fn trace_says_who_may_read_a_file_and_keeps_link_bytes() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tree();
        std::fs::create_dir_all(dir.path().join("etc/private")).unwrap();
        std::fs::write(dir.path().join("etc/private/conf"), "x").unwrap();
        std::fs::write(dir.path().join("etc/mine"), "x").unwrap();
        for (p, mode) in [
            ("etc/private", 0o750),
            ("etc/private/conf", 0o644),
            ("etc/mine", 0o600),
        ] {
            std::fs::set_permissions(dir.path().join(p), Permissions::from_mode(mode)).unwrap();
        }
        let target = std::ffi::OsStr::from_bytes(b"os-rel\xffease");
        symlink(target, dir.path().join("etc/odd")).unwrap();
        let root = Root::open(dir.path()).unwrap();
        let public = |p: &str| match root.trace(p, Last::Open).last() {
            Some(Step::File { public, .. }) => *public,
            other => panic!("{p}: {other:?}"),
        };
        assert!(
            !public("etc/private/conf"),
            "its directory is closed to others"
        );
        assert!(!public("etc/mine"));
        assert!(public("usr/lib/os-release"));
        // Reported with its exact bytes, and not followed.
        assert_eq!(
            root.trace("etc/odd", Last::Follow).last(),
            Some(&Step::Link {
                path: "etc/odd".into(),
                target: target.to_os_string()
            })
        );
    }
}
