//! Zincati's configuration: `updates.enabled` and `updates.strategy` from its TOML fragments.
//!
//! Zincati reads `*.toml` fragments from `usr/lib/zincati/config.d/`, `run/zincati/config.d/` and
//! `etc/zincati/config.d/`; a file in a later directory replaces the file of the same name in an
//! earlier one, a fragment linked to `/dev/null` is dropped, and the fragments are then merged in
//! file-name order, the last setting winning (coreos/zincati `src/config/mod.rs`, `inputs.rs`, via
//! liboverdrop). Unset, `enabled` is true and the strategy resolves to `immediate` (zincati
//! `inputs.rs`; docs "Updates strategy").

use std::collections::BTreeMap;

use crate::root::{FileKind, Root};
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
    // File name → its path in the latest directory that has it.
    let mut by_name: BTreeMap<String, String> = BTreeMap::new();
    for dir in DIRS {
        let Ok(names) = root.list(dir, LIST_MAX) else {
            continue;
        };
        for name in names.into_iter().filter(|n| n.ends_with(".toml")) {
            let path = format!("{dir}/{name}");
            by_name.insert(name, path);
        }
    }
    let fragments: Vec<Option<toml::Table>> = by_name
        .values()
        .filter(|path| !masked(root, path))
        .map(|path| read_fragment(root, path))
        .collect();
    merge_fragments(&fragments)
}

fn masked(root: &Root, path: &str) -> bool {
    matches!(root.lstat(path), Ok(FileKind::Symlink))
        && root.readlink(path).is_ok_and(|t| t == "/dev/null")
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

    #[test]
    fn an_unreadable_fragment_makes_it_unknown() {
        let p = merge_fragments(&[t("[updates]\nenabled = true\n"), None]);
        assert_eq!(p, ZincatiPosture::default());
    }
}
