//! The binary as a user meets it: exit codes, error messages, formats, rule loading, and a live run on
//! the machine running the tests, checked against what this test reads independently.

mod common;

use std::path::Path;

use common::{hostprint, probe_with_rules, stderr, tree};

#[test]
fn missing_root_is_exit_1_and_names_the_path() {
    let o = hostprint(&["--root", "/nonexistent/hostprint-root"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("/nonexistent/hostprint-root"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("no such directory"), "{}", stderr(&o));
}

#[test]
fn file_as_root_is_exit_1() {
    let dir = tree(&[("f", "x")]);
    let o = hostprint(&["--root", dir.path().join("f").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not a directory"), "{}", stderr(&o));
}

#[test]
fn usage_error_is_exit_2() {
    let o = hostprint(&["--format", "yaml"]);
    assert_eq!(o.status.code(), Some(2));
    let o = hostprint(&["--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn unknown_os_is_still_exit_0() {
    let dir = tree(&[("etc/hostname", "node-a\n")]);
    let o = hostprint(&["--root", dir.path().to_str().unwrap(), "--format", "json"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["identity"]["id"], serde_json::Value::Null);
    assert_eq!(v["identity"]["kind"], "unknown");
}

#[test]
fn json_is_one_line_and_pretty_is_not() {
    let dir = tree(&[("etc/os-release", "ID=debian\nVERSION_ID=\"13\"\n")]);
    let root = dir.path().to_str().unwrap();
    let one = hostprint(&["--root", root, "--format", "json"]);
    let text = String::from_utf8(one.stdout).unwrap();
    assert_eq!(text.lines().count(), 1);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["identity"]["id"], "debian");
    assert_eq!(v["identity"]["container_os"], false);
    assert_eq!(v["os"]["version_id"], "13");
    // Unknown values are null, never omitted.
    assert!(v["os"].as_object().unwrap().contains_key("variant_id"));
    assert!(v["identity"].as_object().unwrap().contains_key("eol"));
    let pretty = hostprint(&["--root", root, "--format", "json", "--pretty"]);
    assert!(String::from_utf8(pretty.stdout).unwrap().lines().count() > 10);
}

#[test]
fn bad_user_rule_is_exit_2_with_file_and_line() {
    let rules = tree(&[(
        "mine.toml",
        "id = \"mine\"\nname = \"Mine\"\nkind = \"container-os\"\n\n[[require]]\nwhy = \"x\"\nos_release = { key = \"ID\", equls = \"mine\" }\n",
    )]);
    let o = hostprint(&["fingerprints", "--check", rules.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("mine.toml:7"), "{err}");
    assert!(err.contains("equls"), "{err}");
    // The same file passed with --fingerprints refuses to probe.
    let o = hostprint(&[
        "--fingerprints",
        rules.path().to_str().unwrap(),
        "--root",
        "/",
    ]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn user_rule_adds_a_system_without_rust() {
    let rules = tree(&[(
        "acme.toml",
        "id = \"acme-os\"\nname = \"Acme OS\"\nkind = \"container-os\"\nfixtures = []\n\n[[require]]\nwhy = \"Acme's os-release\"\nweight = 60\nos_release = { key = \"ID\", equals = \"acme\" }\n\n[[support]]\nwhy = \"Acme's agent\"\nweight = 30\npath = { path = \"usr/libexec/acme-updater\", type = \"file\" }\n",
    )]);
    let host = tree(&[
        ("etc/os-release", "ID=acme\n"),
        ("usr/libexec/acme-updater", ""),
    ]);
    let o = probe_with_rules(rules.path(), host.path(), "json");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["identity"]["id"], "acme-os");
    assert_eq!(v["identity"]["confidence"], 90);
    assert_eq!(v["identity"]["evidence"].as_array().unwrap().len(), 2);
    let o = hostprint(&["fingerprints", "--check", rules.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn fingerprints_lists_the_shipped_rules() {
    let o = hostprint(&["fingerprints"]);
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8(o.stdout).unwrap();
    for id in [
        "coreos",
        "flatcar",
        "fedora-coreos",
        "rancheros",
        "ubuntu-core",
        "photon",
        "dcos",
    ] {
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().next() == Some(id)),
            "{id} missing:\n{text}"
        );
    }
    assert!(text.contains("2020-05-26"), "CoreOS end of life shown");
}

#[test]
fn absolute_os_release_link_is_read_inside_the_root() {
    // The probing machine's /usr/lib/os-release must never be read for a root that links to it.
    let dir = tree(&[("usr/lib/os-release", "ID=inside-the-root\n")]);
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    std::os::unix::fs::symlink("/usr/lib/os-release", dir.path().join("etc/os-release")).unwrap();
    let o = hostprint(&["--root", dir.path().to_str().unwrap(), "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["os"]["id"], "inside-the-root");
    assert_eq!(v["os"]["source"], "etc/os-release");
}

#[test]
fn no_color_when_piped_or_asked() {
    let o = hostprint(&["--root", "/"]);
    assert!(!String::from_utf8_lossy(&o.stdout).contains('\x1b'));
}

#[test]
fn verbose_logs_probe_and_rule_decisions_to_stderr() {
    let dir = tree(&[("etc/os-release", "ID=flatcar\n")]);
    let o = hostprint(&[
        "-vv",
        "--root",
        dir.path().to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let err = stderr(&o);
    assert!(err.contains("rule evaluated"), "{err}");
    assert!(err.contains("etc/os-release"), "{err}");
    // stdout stays clean JSON.
    serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap();
}

/// The live machine, checked against what this test reads itself — never a hard-coded distro.
#[test]
fn live_profile_agrees_with_an_independent_read() {
    let o = hostprint(&["--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let os_release = ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok());
    // What we cannot read, hostprint (same user, same machine) must not claim to know.
    let id = os_release.and_then(|text| {
        text.lines()
            .find_map(|l| l.strip_prefix("ID="))
            .map(|v| v.trim().trim_matches('"').trim_matches('\'').to_string())
    });
    assert_eq!(v["os"]["id"].as_str().map(str::to_string), id);
    let comm = std::fs::read_to_string("/proc/1/comm").ok();
    assert_eq!(
        v["init"]["pid1"]["comm"].as_str(),
        comm.as_deref().map(str::trim_end)
    );
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok();
    assert_eq!(
        v["kernel"]["release"].as_str(),
        release.as_deref().map(str::trim)
    );
    // Namespaces: if we can read our own, the container verdict must agree with them.
    let ns = |k: &str| std::fs::read_link(format!("/proc/self/ns/{k}")).ok();
    let pid1_ns = std::fs::read_link("/proc/1/ns/pid").ok();
    if let (None, Some(pid)) = (pid1_ns, ns("pid")) {
        if pid.to_string_lossy() == "pid:[4026531836]"
            && ns("cgroup").is_none_or(|c| c.to_string_lossy() == "cgroup:[4026531835]")
        {
            assert_eq!(v["environment"]["container"], "none");
        }
    }
    assert!(Path::new("/").is_dir());
}

/// A host mounted elsewhere (as in a DaemonSet) that shares our kernel gets the machine-level facts
/// (CPUID virtualization, architecture) a live run gets.
#[test]
fn mounted_live_host_gets_machine_facts() {
    let live = hostprint(&["--format", "json"]);
    let live: serde_json::Value = serde_json::from_slice(&live.stdout).unwrap();
    // Linux has had it since 2.6; without it the test has nothing to compare.
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let host = tree(&[
        ("etc/os-release", "ID=debian\n"),
        ("proc/sys/kernel/random/boot_id", &boot_id),
    ]);
    let o = hostprint(&["--root", host.path().to_str().unwrap(), "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["host"]["architecture"], live["host"]["architecture"]);
    // A different boot id is a recording of some other machine: no CPUID, no uname.
    let other = tree(&[
        ("etc/os-release", "ID=debian\n"),
        (
            "proc/sys/kernel/random/boot_id",
            "00000000-0000-0000-0000-000000000000\n",
        ),
    ]);
    let o = hostprint(&["--root", other.path().to_str().unwrap(), "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["host"]["architecture"], serde_json::Value::Null);
    assert_eq!(v["environment"]["virtualization"], serde_json::Value::Null);
}

/// A user rule directory adds rules and replaces shipped ones by id; `--check` counts its files.
#[test]
fn user_rules_add_and_replace_by_id() {
    let rules = tree(&[
        (
            "acme.toml",
            "id = \"acme-os\"\nname = \"Acme OS\"\nkind = \"container-os\"\n\n[[require]]\nwhy = \"Acme's os-release\"\nweight = 60\nos_release = { key = \"ID\", equals = \"acme\" }\n",
        ),
        (
            "etcd.toml",
            "id = \"etcd\"\nname = \"etcd (Acme build)\"\nkind = \"component\"\n\n[[require]]\nwhy = \"Acme ships etcd here\"\npath = { path = \"opt/acme/etcd\", type = \"file\" }\n",
        ),
        ("README.md", "not a rule"),
    ]);
    let host = tree(&[("etc/os-release", "ID=acme\n"), ("opt/acme/etcd", "")]);
    let o = hostprint(&["fingerprints", "--check", rules.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("2 rule file(s) valid"));
    let o = probe_with_rules(rules.path(), host.path(), "json");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["identity"]["id"], "acme-os");
    assert_eq!(v["components"][0]["name"], "etcd (Acme build)");
}

/// A single rule file is accepted where a directory is: by `--fingerprints` and by `--check`.
#[test]
fn a_single_rule_file_is_accepted() {
    let rules = tree(&[(
        "mine.toml",
        "id = \"mine\"\nname = \"Mine\"\nkind = \"container-os\"\n\n[[require]]\nwhy = \"x\"\nos_release = { key = \"ID\", equals = \"mine\" }\n",
    )]);
    let file = rules.path().join("mine.toml");
    let o = hostprint(&["fingerprints", "--check", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let host = tree(&[("etc/os-release", "ID=mine\n")]);
    let o = probe_with_rules(&file, host.path(), "json");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["identity"]["id"], "mine");
}

/// A FIFO named like a rule file would block a read forever: it is refused, by name, at once.
#[test]
fn a_fifo_among_rule_files_is_refused_not_waited_on() {
    let rules = tree(&[]);
    nix::unistd::mkfifo(
        &rules.path().join("stuck.toml"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let o = hostprint(&["fingerprints", "--check", rules.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("stuck.toml"), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));
}
