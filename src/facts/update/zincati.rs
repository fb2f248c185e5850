//! Zincati's configuration: `updates.enabled` and `updates.strategy` from its TOML fragments.
//!
//! Zincati reads `*.toml` fragments from `usr/lib/zincati/config.d/`, `run/zincati/config.d/` and
//! `etc/zincati/config.d/`; a file in a later directory replaces the file of the same name in an
//! earlier one, a link to `/dev/null` drops the earlier same-named fragment, and the fragments are
//! then merged in file-name order, the last setting winning (coreos/zincati `src/config/mod.rs`,
//! `inputs.rs`). The scan is liboverdrop's (coreos/liboverdrop-rs `src/lib.rs`, `scan`): it looks at
//! each entry without following it and keeps only regular files, so any other symlink, a directory
//! or a FIFO is skipped unread, as it is here. Unset, `enabled` is true and the strategy resolves to
//! `immediate` (zincati `inputs.rs`; docs "Updates strategy").

use std::collections::BTreeMap;

use crate::root::{Failure, FileKind, Root};
use crate::warning::{Code, Warning};

/// Later directories replace same-named fragments of earlier ones (zincati's order).
const DIRS: [&str; 3] = [
    "usr/lib/zincati/config.d",
    "run/zincati/config.d",
    "etc/zincati/config.d",
];
const FRAGMENT_CAP: usize = 64 * 1024;
const LIST_MAX: usize = 256;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ZincatiPosture {
    pub enabled: Option<bool>,
    pub strategy: Option<String>,
}

/// Merges fragments (already in file-name order) the way zincati does. `None` in the list stands for
/// a fragment that could not be read or parsed: what it sets is unknown, so the answer is too. Pure.
pub fn merge_fragments(fragments: &[Option<toml::Table>]) -> ZincatiPosture {
    let mut enabled = true;
    let mut strategy = None;
    for fragment in fragments {
        let Some(table) = fragment else {
            return ZincatiPosture::default();
        };
        let Some(updates) = table.get("updates").and_then(|u| u.as_table()) else {
            continue;
        };
        if let Some(e) = updates.get("enabled").and_then(|v| v.as_bool()) {
            enabled = e;
        }
        if let Some(s) = updates.get("strategy").and_then(|v| v.as_str()) {
            strategy = Some(s.to_string());
        }
    }
    ZincatiPosture {
        enabled: Some(enabled),
        strategy: Some(strategy.unwrap_or_else(|| "immediate".to_string())),
    }
}

pub fn probe(root: &Root) -> ZincatiPosture {
    // File name → its path in the latest directory that has it; `None` when that entry could not be
    // looked at, so what it sets is unknown.
    let mut by_name: BTreeMap<String, Option<String>> = BTreeMap::new();
    for dir in DIRS {
        let Ok(names) = root.list(dir, LIST_MAX) else {
            continue;
        };
        for name in names.into_iter().filter(|n| n.ends_with(".toml")) {
            let path = format!("{dir}/{name}");
            match root.lstat(&path) {
                Ok(FileKind::File) => {
                    by_name.insert(name, Some(path));
                }
                Ok(FileKind::Symlink) => {
                    if root.readlink(&path).is_ok_and(|t| t == "/dev/null") {
                        by_name.remove(&name);
                    }
                }
                // A FIFO or directory named like a fragment: zincati skips it, but the admin who put
                // it there likely meant a setting.
                Ok(kind) => root.warn(Warning::at(
                    Code::WrongKind,
                    &path,
                    format!(
                        "is a {}, not a regular file; zincati skips it",
                        kind.as_str()
                    ),
                )),
                Err(Failure::Absent) => {}
                // Not ours to look at (lstat warned).
                Err(_) => {
                    by_name.insert(name, None);
                }
            }
        }
    }
    let fragments: Vec<Option<toml::Table>> = by_name
        .values()
        .map(|path| read_fragment(root, path.as_deref()?))
        .collect();
    merge_fragments(&fragments)
}

fn read_fragment(root: &Root, path: &str) -> Option<toml::Table> {
    let text = root.read_text(path, FRAGMENT_CAP).ok()?;
    match text.text.parse::<toml::Table>() {
        Ok(table) => Some(table),
        Err(e) => {
            root.warn(Warning::at(
                Code::MalformedFile,
                path,
                format!(
                    "not valid TOML ({}); zincati's settings are unknown",
                    e.message().trim()
                ),
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> Option<toml::Table> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let p = merge_fragments(&[t("[cincinnati]\nbase_url = \"https://x\"\n")]);
        assert_eq!(p.enabled, Some(true));
        assert_eq!(p.strategy.as_deref(), Some("immediate"));
        assert_eq!(merge_fragments(&[]), p);
    }

    #[test]
    fn later_fragments_win() {
        let p = merge_fragments(&[
            t("[updates]\nenabled = true\nstrategy = \"immediate\"\n"),
            t("[updates]\nstrategy = \"fleet_lock\"\n[updates.fleet_lock]\nbase_url = \"http://l\"\n"),
            t("[updates]\nenabled = false\n"),
        ]);
        assert_eq!(p.enabled, Some(false));
        assert_eq!(p.strategy.as_deref(), Some("fleet_lock"));
    }

    /// liboverdrop's scan: only regular files count, `/dev/null` drops the earlier same-named one.
    #[test]
    fn only_regular_fragments_are_read() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in DIRS {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let vendor = d.join("usr/lib/zincati/config.d");
        std::fs::write(vendor.join("10-off.toml"), "[updates]\nenabled = false\n").unwrap();
        std::fs::write(
            vendor.join("20-lock.toml"),
            "[updates]\nstrategy = \"fleet_lock\"\n",
        )
        .unwrap();
        let admin = d.join("etc/zincati/config.d");
        symlink("/dev/null", admin.join("10-off.toml")).unwrap();
        // Skipped by zincati: a link to a fragment, and a directory.
        std::fs::write(
            d.join("etc/periodic.toml"),
            "[updates]\nstrategy = \"periodic\"\n",
        )
        .unwrap();
        symlink("/etc/periodic.toml", admin.join("30-linked.toml")).unwrap();
        std::fs::create_dir(admin.join("40-dir.toml")).unwrap();
        let root = Root::open(d).unwrap();
        let p = probe(&root);
        assert_eq!(
            p.enabled,
            Some(true),
            "10-off.toml was dropped by /dev/null"
        );
        assert_eq!(
            p.strategy.as_deref(),
            Some("fleet_lock"),
            "the link is skipped"
        );
        let warnings = root.take_warnings();
        assert!(
            warnings
                .iter()
                .any(|w| w.path.as_deref() == Some("etc/zincati/config.d/40-dir.toml")),
            "{warnings:?}"
        );
    }

    #[test]
    fn an_unreadable_fragment_makes_it_unknown() {
        let p = merge_fragments(&[t("[updates]\nenabled = true\n"), None]);
        assert_eq!(p, ZincatiPosture::default());
    }
}
