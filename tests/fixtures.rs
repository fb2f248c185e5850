//! The fixture corpus: golden outputs, and the rule lint (every fingerprint × every fixture).
//!
//! Golden: the real binary runs over each `fixtures/<case>/root` and its JSON and human output are
//! diffed against `expected.json` / `expected.txt` (node_exporter's end-to-end model).
//! `HOSTPRINT_UPDATE=1 cargo test` rewrites them; review the diff before committing.
//!
//! Lint (linguist's heuristics test): each case says in `case.toml` what it must be identified as;
//! every rule is evaluated against every case, and a rule that claims a case it does not own fails,
//! as does a rule without a positive fixture or a case without sources.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use hostprint::profile;
use hostprint::root::Root;
use hostprint::rules::{Kind, RuleSet};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    description: String,
    kind: String,
    sources: Vec<String>,
    #[serde(default)]
    #[allow(dead_code)]
    notes: Option<String>,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    identity: String,
    /// Absent for an unknown identity: the profile's `container_os` is then null.
    container_os: Option<bool>,
    #[serde(default)]
    platforms: Vec<String>,
    #[serde(default)]
    components: Vec<String>,
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn cases() -> Vec<(String, Case)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(fixtures_dir()).unwrap() {
        let dir = entry.unwrap().path();
        let case_file = dir.join("case.toml");
        if !case_file.is_file() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&case_file).unwrap();
        let case: Case =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", case_file.display()));
        out.push((name, case));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn run(root: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_hostprint"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        // The human profile says "ended" against today; goldens fix today at 2026-01-01.
        .env("SOURCE_DATE_EPOCH", "1767225600")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hostprint --root {} {args:?} failed: {}",
        root.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Compares (or with HOSTPRINT_UPDATE=1 rewrites) one golden file; returns a failure message holding
/// a unified diff from the golden file to the actual output.
fn golden(path: &Path, actual: &str) -> Option<String> {
    if std::env::var_os("HOSTPRINT_UPDATE").is_some() {
        std::fs::write(path, actual).unwrap();
        return None;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    if expected == actual {
        return None;
    }
    let diff = similar::TextDiff::from_lines(expected.as_str(), actual)
        .unified_diff()
        .header(&path.display().to_string(), "actual output")
        .to_string();
    Some(format!(
        "{} differs (run HOSTPRINT_UPDATE=1 cargo test and review the diff):\n{diff}",
        path.display()
    ))
}

#[test]
fn golden_outputs_match() {
    let mut failures = Vec::new();
    let cases = cases();
    assert!(!cases.is_empty(), "no fixtures found");
    for (name, _) in &cases {
        let dir = fixtures_dir().join(name);
        let root = dir.join("root");
        let json = run(&root, &["--format", "json", "--pretty"]);
        // The same root gives the same bytes.
        assert_eq!(
            json,
            run(&root, &["--format", "json", "--pretty"]),
            "{name}: not deterministic"
        );
        failures.extend(golden(&dir.join("expected.json"), &json));
        let text = run(&root, &["--format", "human"]);
        failures.extend(golden(&dir.join("expected.txt"), &text));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_fixture_is_identified_as_its_case_says() {
    let rules = RuleSet::embedded().unwrap();
    let mut failures = Vec::new();
    for (name, case) in cases() {
        let root = Root::open(&fixtures_dir().join(&name).join("root")).unwrap();
        let report = profile::build(&root, &rules);
        let p = &report.profile;
        let got = p.identity.id.clone().unwrap_or_default();
        if got != case.expect.identity {
            failures.push(format!(
                "{name}: identified as {got:?}, case.toml expects {:?}",
                case.expect.identity
            ));
        }
        if p.identity.container_os != case.expect.container_os {
            failures.push(format!(
                "{name}: container_os {:?}, expected {:?}",
                p.identity.container_os, case.expect.container_os
            ));
        }
        if case.expect.container_os == Some(true) && p.identity.evidence.is_empty() {
            failures.push(format!("{name}: identified without evidence"));
        }
        let platforms: BTreeSet<_> = p.platforms.iter().map(|x| x.id.clone()).collect();
        let want: BTreeSet<_> = case.expect.platforms.iter().cloned().collect();
        if platforms != want {
            failures.push(format!(
                "{name}: platforms {platforms:?}, expected {want:?}"
            ));
        }
        let components: BTreeSet<_> = p.components.iter().map(|x| x.id.clone()).collect();
        let want: BTreeSet<_> = case.expect.components.iter().cloned().collect();
        if components != want {
            failures.push(format!(
                "{name}: components {components:?}, expected {want:?}"
            ));
        }
        // Every rule × this fixture: no OS rule other than the expected one may claim it.
        for r in &report.explanation {
            if r.candidate && r.rule.kind.is_os() && r.rule.id != case.expect.identity {
                failures.push(format!(
                    "{name}: rule {} also matches (score {}), but the case is {:?}",
                    r.rule.id, r.score, case.expect.identity
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn every_rule_has_a_positive_fixture_and_its_near_misses_hold() {
    let rules = RuleSet::embedded().unwrap();
    let cases = cases();
    let find = |n: &str| cases.iter().find(|(name, _)| name == n).map(|(_, c)| c);
    let mut failures = Vec::new();
    for r in &rules.rules {
        if r.fixtures.is_empty() {
            failures.push(format!("{}: no positive fixture", r.id));
        }
        for f in &r.fixtures {
            let owns = |c: &Case| match r.kind {
                Kind::Platform => c.expect.platforms.contains(&r.id),
                Kind::Component => c.expect.components.contains(&r.id),
                _ => c.expect.identity == r.id,
            };
            match find(f) {
                None => failures.push(format!("{}: fixture {f} does not exist", r.id)),
                Some(c) if !owns(c) => {
                    failures.push(format!("{}: fixture {f} does not expect {}", r.id, r.id))
                }
                Some(_) => {}
            }
        }
        for f in &r.near_misses {
            match find(f) {
                None => failures.push(format!("{}: near miss {f} does not exist", r.id)),
                Some(c) if c.expect.identity == r.id => {
                    failures.push(format!("{}: near miss {f} expects {} itself", r.id, r.id))
                }
                Some(_) => {}
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn every_fixture_names_its_sources() {
    for (name, case) in cases() {
        assert!(
            !case.description.trim().is_empty(),
            "{name}: no description"
        );
        assert!(
            ["positive", "near-miss", "edge"].contains(&case.kind.as_str()),
            "{name}: kind {:?}",
            case.kind
        );
        assert!(
            case.sources.iter().any(|s| !s.trim().is_empty()),
            "{name}: no sources"
        );
    }
}
