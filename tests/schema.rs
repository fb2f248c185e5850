//! `hostprint schema` against what `--format json` really prints, checked by a real validator
//! (the `jsonschema` crate), over every recorded fixture, the live machine and roots built here that
//! fill every list. If the schema and the profile ever disagree, this fails.

mod common;

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// The binary's stdout as JSON; it must succeed.
fn json(args: &[&str]) -> Value {
    let o = common::hostprint(args);
    assert!(
        o.status.success(),
        "hostprint {args:?}: {}",
        common::stderr(&o)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn validator() -> jsonschema::Validator {
    let schema = json(&["schema"]);
    assert!(
        jsonschema::meta::is_valid(&schema),
        "hostprint schema is not itself a valid JSON Schema"
    );
    jsonschema::validator_for(&schema).unwrap()
}

fn check(v: &jsonschema::Validator, what: &str, profile: &Value) {
    let errors: Vec<String> = v
        .iter_errors(profile)
        .map(|e| format!("  at {}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match the schema:\n{}",
        errors.join("\n")
    );
}

/// Every `fixtures/<case>/root`, whatever cases exist now (the corpus grows).
fn fixture_roots() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut roots: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path().join("root"))
        .filter(|p| p.is_dir())
        .collect();
    roots.sort();
    roots
}

#[test]
fn every_fixture_matches_the_schema() {
    let v = validator();
    for root in fixture_roots() {
        let profile = json(&["--root", root.to_str().unwrap(), "--format", "json"]);
        check(&v, &root.display().to_string(), &profile);
    }
}

#[test]
fn the_live_machine_matches_the_schema() {
    check(&validator(), "this machine", &json(&["--format", "json"]));
}

/// `--processes` fills `running` and `pids`: a fake etcd runs meanwhile.
#[test]
fn running_components_match_the_schema() {
    let _etcd = common::FakeEtcd::start();
    let profile = json(&["--processes", "--format", "json"]);
    assert!(
        profile["components"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["running"] == true && !c["pids"].as_array().unwrap().is_empty()),
        "{}",
        profile["components"]
    );
    check(&validator(), "this machine, --processes", &profile);
}

/// Roots that fill what an empty corpus would leave untested: update agents with a channel and a
/// strategy, runtimes, SELinux, a platform with a role, warnings, and nothing at all.
#[test]
fn built_roots_match_the_schema() {
    let v = validator();
    let full = tempfile::tempdir().unwrap();
    for (path, content) in [
        (
            "etc/os-release",
            "ID=coreos\nNAME=\"Container Linux by CoreOS\"\nVERSION_ID=1911.3.0\n",
        ),
        ("usr/share/coreos/update.conf", "GROUP=stable\n"),
        ("etc/coreos/update.conf", "REBOOT_STRATEGY=etcd-lock\n"),
        ("usr/lib/locksmith/locksmithd", ""),
        ("usr/bin/update_engine", ""),
        ("etc/selinux/config", "SELINUX=enforcing\nSELINUXTYPE=mcs\n"),
        ("sys/fs/selinux/enforce", "1\n"),
        ("opt/mesosphere/etc/dcos-version.json", "{}"),
        ("etc/mesosphere/roles/master", ""),
        ("run/crio/crio.sock", "not a socket: a warning"),
    ] {
        let p = full.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    let _sock =
        std::os::unix::net::UnixListener::bind(full.path().join("run/docker.sock")).unwrap();
    let profile = json(&["--root", full.path().to_str().unwrap(), "--format", "json"]);
    assert!(!profile["updates"].as_array().unwrap().is_empty());
    assert!(!profile["runtimes"].as_array().unwrap().is_empty());
    assert_eq!(profile["platforms"][0]["role"], "master", "{profile}");
    assert!(!profile["warnings"].as_array().unwrap().is_empty());
    check(&v, "a CoreOS-like root", &profile);

    let empty = tempfile::tempdir().unwrap();
    std::fs::create_dir(empty.path().join("etc")).unwrap();
    check(
        &v,
        "an empty root",
        &json(&["--root", empty.path().to_str().unwrap(), "--format", "json"]),
    );
}

/// The schema is strict enough to catch a drifting profile: a missing key, an unknown key, a wrong
/// type, an out-of-range confidence and another schema_version all fail.
#[test]
fn the_schema_rejects_what_the_contract_forbids() {
    let v = validator();
    let empty = tempfile::tempdir().unwrap();
    std::fs::create_dir(empty.path().join("etc")).unwrap();
    let good = json(&["--root", empty.path().to_str().unwrap(), "--format", "json"]);
    check(&v, "the unmodified profile", &good);
    // (what, the object to change, the key in it, its new value or None to remove it)
    let mutations: &[(&str, &str, &str, Option<Value>)] = &[
        ("os.variant_id omitted", "/os", "variant_id", None),
        ("an unknown top-level key", "", "extra", Some(json!(1))),
        (
            "an unknown nested key",
            "/security/selinux",
            "extra",
            Some(json!(1)),
        ),
        (
            "confidence as a string",
            "/identity",
            "confidence",
            Some(json!("60")),
        ),
        (
            "confidence over 100",
            "/identity",
            "confidence",
            Some(json!(101)),
        ),
        ("schema_version 2", "", "schema_version", Some(json!(2))),
        (
            "an unknown identity kind",
            "/identity",
            "kind",
            Some(json!("mainframe")),
        ),
        ("warnings as an object", "", "warnings", Some(json!({}))),
    ];
    for (what, pointer, key, value) in mutations {
        let mut p = good.clone();
        let object = p.pointer_mut(pointer).unwrap().as_object_mut().unwrap();
        match value {
            Some(new) => object.insert(key.to_string(), new.clone()),
            None => object.remove(*key),
        };
        assert!(!v.is_valid(&p), "the schema accepted {what}");
    }
}
