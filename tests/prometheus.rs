//! `--format prometheus`, as node_exporter's textfile collector reads it: the text parses (with the
//! checker in tests/common/exposition.rs, itself checked here), carries the profile, leaves unknown
//! facts out rather than writing zeroes, escapes hostile labels, and reports platform end of life.

mod common;

use common::exposition::{one, parse_exposition};
use common::{flatcar_root, hostprint, probe_with_rules, prometheus, stderr, tree};

#[test]
fn the_checker_rejects_what_prometheus_rejects() {
    let ok = "# HELP a_b x\n# TYPE a_b gauge\na_b{k=\"v\\\"\"} 1\n";
    assert!(parse_exposition(ok).is_ok());
    for bad in [
        "# HELP a x\n# TYPE a gauge\na{k=\"v\"\"} 1\n", // unescaped quote
        "# HELP a x\n# TYPE a gauge\na{k=\"v\\x\"} 1\n", // unknown escape
        "# HELP a x\n# TYPE a gauge\na 1 123\n",        // timestamp
        "# HELP a x\n# TYPE a gauge\na{k=\"1\"} 1\na 2\n", // label names disagree
        "# HELP a x\n# TYPE a gauge\nb 1\n",            // sample outside its family
        "# HELP a x\n# TYPE a gauge\na 1",              // no final newline
    ] {
        assert!(parse_exposition(bad).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn prometheus_output_parses_and_carries_the_profile() {
    let (root, _sock) = flatcar_root();
    let o = prometheus(root.path());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    let fams = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(
        fams.keys().all(|k| k.starts_with("hostprint_")),
        "{:?}",
        fams.keys()
    );

    let (info, v) = one(&fams, "hostprint_identity_info");
    assert_eq!(*v, 1.0);
    assert_eq!(info["id"], "flatcar");
    assert_eq!(info["kind"], "container-os");
    assert_eq!(info["container_os"], "true");
    assert_eq!(info["version"], "3139.2.0");
    let (os, _) = one(&fams, "hostprint_os_info");
    assert_eq!(os["id_like"], "coreos");
    assert_eq!(
        os["pretty_name"],
        "Flatcar Container Linux by Kinvolk 3139.2.0 (Oklo)"
    );
    assert_eq!(os["version"], "3139.2.0");
    assert_eq!(one(&fams, "hostprint_selinux_enabled").1, 1.0);
    assert_eq!(
        one(&fams, "hostprint_selinux_current_mode").1,
        0.0,
        "permissive"
    );
    assert_eq!(
        one(&fams, "hostprint_selinux_config_mode").1,
        0.0,
        "permissive"
    );
    assert_eq!(one(&fams, "hostprint_apparmor_enabled").1, 0.0);
    let (rt, _) = one(&fams, "hostprint_runtime_socket_info");
    assert_eq!(
        (rt["runtime"].as_str(), rt["socket"].as_str()),
        ("docker", "/run/docker.sock")
    );
    let (up, _) = one(&fams, "hostprint_update_agent_info");
    assert_eq!(
        (up["agent"].as_str(), up["channel"].as_str()),
        ("update_engine", "stable")
    );
    let conf = one(&fams, "hostprint_identity_confidence").1;
    assert!((1.0..=100.0).contains(&conf), "{conf}");
    assert!(fams.contains_key("hostprint_warnings"));

    // The same root gives the same bytes: no timestamps, no ordering by chance.
    let again = prometheus(root.path());
    assert_eq!(text.as_bytes(), again.stdout.as_slice());
}

#[test]
fn unknown_facts_are_absent_series_not_zeroes() {
    let root = tree(&[("etc/hostname", "node-a\n")]);
    let o = prometheus(root.path());
    let text = String::from_utf8(o.stdout).unwrap();
    let fams = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(one(&fams, "hostprint_identity_info").0["kind"], "unknown");
    for absent in [
        "hostprint_os_info",
        "hostprint_selinux_enabled",
        "hostprint_apparmor_enabled",
        "hostprint_identity_eol_timestamp_seconds",
        "hostprint_runtime_socket_info",
    ] {
        assert!(
            !fams.contains_key(absent),
            "{absent} present for an empty root:\n{text}"
        );
    }
}

/// A user's rule may name its OS anything, newlines and quotes included; the labels must survive.
#[test]
fn hostile_names_are_escaped_and_round_trip() {
    let name = "Acme \"Edge\" OS\\2\nsecond line";
    let rule = format!(
        "id = \"acme-os\"\nname = {}\nkind = \"container-os\"\neol = \"2020-05-26\"\nfixtures = []\n\n[[require]]\nwhy = \"Acme's os-release\"\nweight = 90\nos_release = {{ key = \"ID\", equals = \"acme\" }}\n",
        toml_string(name)
    );
    let rules = tree(&[("acme.toml", &rule)]);
    let host = tree(&[(
        "etc/os-release",
        "ID=acme\nPRETTY_NAME=\"Acme \\\"quoted\\\" \\\\ back\"\nVERSION_ID=1.2\n",
    )]);
    let o = probe_with_rules(rules.path(), host.path(), "prometheus");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains(r#"name="Acme \"Edge\" OS\\2\nsecond line""#),
        "{text}"
    );
    let fams = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(one(&fams, "hostprint_identity_info").0["name"], name);
    assert_eq!(
        one(&fams, "hostprint_os_info").0["pretty_name"],
        "Acme \"quoted\" \\ back"
    );
    let (eol_labels, eol) = one(&fams, "hostprint_identity_eol_timestamp_seconds");
    assert_eq!(*eol, 1_590_451_200.0, "2020-05-26T00:00:00Z");
    assert_eq!(eol_labels["id"], "acme-os");
}

/// A TOML basic string (the rule file is TOML; its escapes are not the exposition format's).
fn toml_string(s: &str) -> String {
    let body = s
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!("\"{body}\"")
}

/// A DC/OS master over CentOS is not an end-of-life OS, but its platform is: both the JSON and the
/// metrics must say so, or the alert on platform end of life never fires.
#[test]
fn platform_end_of_life_reaches_json_and_metrics() {
    let root =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/dcos-centos7-master/root");
    let root = root.to_str().unwrap();
    let o = hostprint(&["--root", root, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["identity"]["eol"], serde_json::Value::Null);
    assert_eq!(v["platforms"][0]["id"], "dcos");
    assert_eq!(v["platforms"][0]["eol"], "2021-10-31");
    let o = hostprint(&["--root", root, "--format", "prometheus"]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.lines()
            .any(|l| l == "hostprint_platform_eol_timestamp_seconds{id=\"dcos\"} 1635638400"),
        "{text}"
    );
}

/// `hostprint_warnings` was one count of every warning, so an alert could not leave out the kinds
/// that are expected on some nodes (a stale `/.dockerenv` on VMs built from Docker images). Now one
/// series per code, every code present, each the count of warnings with that code in the JSON.
#[test]
fn warnings_could_not_be_told_apart_by_kind() {
    let root = tree(&[
        ("etc/os-release", "ID=debian\n"),
        (".dockerenv", ""),
        ("proc/1/comm", "systemd\n"),
    ]);
    for (ns, target) in [
        ("pid", "pid:[4026531836]"),
        ("cgroup", "cgroup:[4026531835]"),
    ] {
        let dir = root.path().join("proc/1/ns");
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(target, dir.join(ns)).unwrap();
    }
    let o = prometheus(root.path());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    let fams = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let by_code: std::collections::BTreeMap<String, f64> = fams["hostprint_warnings"]
        .samples
        .iter()
        .map(|(labels, v)| (labels["code"].clone(), *v))
        .collect();
    let json = hostprint(&["--root", root.path().to_str().unwrap(), "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let mut expected: std::collections::BTreeMap<String, f64> = hostprint::warning::Code::ALL
        .iter()
        .map(|c| (c.as_str().to_string(), 0.0))
        .collect();
    for w in v["warnings"].as_array().unwrap() {
        *expected.get_mut(w["code"].as_str().unwrap()).unwrap() += 1.0;
    }
    assert_eq!(by_code, expected);
    assert_eq!(by_code["stale-container-marker"], 1.0, "{text}");
    assert_eq!(by_code["os-release-incomplete"], 1.0, "{text}");
}
