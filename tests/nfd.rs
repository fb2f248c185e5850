//! `--format nfd`, as Node Feature Discovery's local source reads it: every line a valid Kubernetes
//! label (checked by rules written out here), whatever os-release holds.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{flatcar_root, hostprint, stderr, tree};

/// Kubernetes' rules for a label key (`prefix/name`) and value, written out here.
fn valid_label(line: &str) -> Result<(), String> {
    let is_name = |s: &str| {
        let b = s.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c))
    };
    let (key, value) = line.split_once('=').ok_or("no =")?;
    let (prefix, name) = key.split_once('/').ok_or("no namespace")?;
    if prefix.len() > 253 || !prefix.split('.').all(|l| is_name(l) && !l.contains('_')) {
        return Err(format!("bad prefix {prefix:?}"));
    }
    if !is_name(name) {
        return Err(format!("bad name {name:?}"));
    }
    if !is_name(value) {
        return Err(format!("bad value {value:?}"));
    }
    Ok(())
}

fn nfd(root: &Path) -> BTreeMap<String, String> {
    let o = hostprint(&["--root", root.to_str().unwrap(), "--format", "nfd"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        valid_label(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        let (k, v) = line.split_once('=').unwrap();
        let k = k
            .strip_prefix("hostprint.feature.node.kubernetes.io/")
            .unwrap();
        assert!(
            out.insert(k.to_string(), v.to_string()).is_none(),
            "{k} twice"
        );
    }
    out
}

#[test]
fn nfd_labels_for_a_container_os() {
    let (root, _sock) = flatcar_root();
    let l = nfd(root.path());
    assert_eq!(l["os.id"], "flatcar");
    assert_eq!(l["os.container-os"], "true");
    assert_eq!(l["os.version"], "3139.2.0");
    assert_eq!(l["os.version.major"], "3139");
    assert_eq!(l["os.version.minor"], "2");
    assert_eq!(l["selinux.mode"], "permissive");
    assert_eq!(l["runtime.docker"], "true");
}

#[test]
fn nfd_values_from_hostile_os_release_are_valid_label_values() {
    let long = "9".repeat(200);
    let table: &[(&str, Option<&str>)] = &[
        (long.as_str(), Some(&long[..63])),
        ("\"1.2 beta (with spaces)\"", Some("1.2-beta-with-spaces")),
        ("\"Ünïcödé✓\"", Some("n-c-d")),
        ("'\"quoted\"'", Some("quoted")),
        ("\"✓✓✓\"", None),
        ("\"\"", None),
    ];
    for (raw, want) in table {
        let root = tree(&[("etc/os-release", &format!("ID=debian\nVERSION_ID={raw}\n"))]);
        let l = nfd(root.path());
        assert_eq!(
            l.get("os.version").map(String::as_str),
            *want,
            "VERSION_ID={raw}"
        );
        assert_eq!(l["os.id"], "debian");
    }
    // An ID that sanitizes to nothing is left out, not written empty.
    let root = tree(&[("etc/os-release", "ID=\"✓\"\n")]);
    assert!(!nfd(root.path()).contains_key("os.id"));
}
