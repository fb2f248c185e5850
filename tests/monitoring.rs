//! Monitoring and fleets, as node_exporter, NFD and an init system meet the binary: the Prometheus
//! text parses (with a checker written here from the format's rules, not from our renderer) and escapes
//! hostile labels; NFD values are valid Kubernetes label values; `--output` is atomic and mode 0644;
//! `--interval` rewrites until SIGTERM/SIGINT, keeps the last good file and stays flat in memory.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::{
    bin, entries, hostprint, probe_with_rules, stamp, status_kib, stderr, tree, wait_for,
    wait_for_rewrite,
};

fn prometheus(root: &Path) -> Output {
    hostprint(&["--root", root.to_str().unwrap(), "--format", "prometheus"])
}

/// A Flatcar-like root with the facts every metric family needs: update channel, SELinux config and
/// runtime, AppArmor, and a docker socket (a real one, bound here).
fn flatcar_root() -> (tempfile::TempDir, std::os::unix::net::UnixListener) {
    let dir = tree(&[
        (
            "etc/os-release",
            "NAME=\"Flatcar Container Linux by Kinvolk\"\nID=flatcar\nID_LIKE=coreos\nVERSION=3139.2.0\nVERSION_ID=3139.2.0\nPRETTY_NAME=\"Flatcar Container Linux by Kinvolk 3139.2.0 (Oklo)\"\n",
        ),
        ("usr/share/flatcar/update.conf", "GROUP=stable\n"),
        ("etc/selinux/config", "SELINUX=permissive\nSELINUXTYPE=mcs\n"),
        ("sys/fs/selinux/enforce", "0\n"),
        ("sys/module/apparmor/parameters/enabled", "N\n"),
    ]);
    std::fs::create_dir_all(dir.path().join("run")).unwrap();
    let sock = std::os::unix::net::UnixListener::bind(dir.path().join("run/docker.sock")).unwrap();
    (dir, sock)
}

// ---------------------------------------------------------------------------------------------
// A checker for the Prometheus text format (0.0.4), strict where node_exporter and promtool are.

#[derive(Debug, Default)]
struct Family {
    kind: String,
    help: String,
    samples: Vec<(BTreeMap<String, String>, f64)>,
}

fn valid_metric_name(n: &str) -> bool {
    let mut c = n.chars();
    matches!(c.next(), Some(x) if x.is_ascii_alphabetic() || x == '_' || x == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

fn valid_label_name(n: &str) -> bool {
    let mut c = n.chars();
    matches!(c.next(), Some(x) if x.is_ascii_alphabetic() || x == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// Parses `{k="v",…}` at the start of `s`, unescaping values; returns the labels and the rest.
fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = s.strip_prefix('{').ok_or("no {")?;
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let eq = rest.find('=').ok_or("label without =")?;
        let name = &rest[..eq];
        if !valid_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next().ok_or("unterminated label value")? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().ok_or("dangling backslash")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    other => return Err(format!("bad escape \\{other}")),
                },
                (_, '\n') => return Err("raw newline in a label value".into()),
                (_, c) => value.push(c),
            }
        };
        if labels.insert(name.to_string(), value).is_some() {
            return Err(format!("label {name} twice"));
        }
        rest = &rest[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

fn parse_exposition(text: &str) -> Result<BTreeMap<String, Family>, String> {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut closed: BTreeSet<String> = BTreeSet::new();
    if !text.ends_with('\n') {
        return Err("does not end with a newline".into());
    }
    for (i, line) in text.lines().enumerate() {
        let at = |m: String| format!("line {}: {m}: {line:?}", i + 1);
        if let Some(rest) = line.strip_prefix("# ") {
            let (kw, rest) = rest
                .split_once(' ')
                .ok_or_else(|| at("bare comment".into()))?;
            let (name, arg) = rest.split_once(' ').ok_or_else(|| at("no text".into()))?;
            if !valid_metric_name(name) {
                return Err(at("bad metric name".into()));
            }
            if current.as_deref() != Some(name) {
                if let Some(c) = current.take() {
                    closed.insert(c);
                }
                if closed.contains(name) {
                    return Err(at("family split in two".into()));
                }
                current = Some(name.to_string());
            }
            let f = families.entry(name.to_string()).or_default();
            match kw {
                "HELP" => f.help = arg.to_string(),
                "TYPE" if f.samples.is_empty() => f.kind = arg.to_string(),
                "TYPE" => return Err(at("TYPE after samples".into())),
                _ => return Err(at("unknown comment".into())),
            }
            continue;
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| at("no value".into()))?;
        let name = &line[..name_end];
        if current.as_deref() != Some(name) {
            return Err(at("sample outside its family's HELP/TYPE block".into()));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(at)?
        } else {
            (BTreeMap::new(), &line[name_end..])
        };
        let value = rest
            .strip_prefix(' ')
            .ok_or_else(|| at("no space before value".into()))?;
        if value.contains(' ') {
            return Err(at("a timestamp (or junk) after the value".into()));
        }
        let value: f64 = value
            .parse()
            .map_err(|_| at("value is not a number".into()))?;
        families
            .get_mut(name)
            .unwrap()
            .samples
            .push((labels, value));
    }
    for (name, f) in &families {
        if f.kind != "gauge" || f.help.is_empty() || f.samples.is_empty() {
            return Err(format!(
                "{name}: type {:?}, help {:?}, {} samples",
                f.kind,
                f.help,
                f.samples.len()
            ));
        }
        let names: BTreeSet<Vec<&String>> =
            f.samples.iter().map(|(l, _)| l.keys().collect()).collect();
        if names.len() != 1 {
            return Err(format!("{name}: series disagree on label names: {names:?}"));
        }
        let series: BTreeSet<_> = f.samples.iter().map(|(l, _)| l).collect();
        if series.len() != f.samples.len() {
            return Err(format!("{name}: duplicate series"));
        }
    }
    Ok(families)
}

fn one<'a>(fams: &'a BTreeMap<String, Family>, name: &str) -> &'a (BTreeMap<String, String>, f64) {
    let f = fams
        .get(name)
        .unwrap_or_else(|| panic!("{name} missing: {:?}", fams.keys()));
    assert_eq!(f.samples.len(), 1, "{name}");
    &f.samples[0]
}

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
    let root = tree(&[]);
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

// ---------------------------------------------------------------------------------------------
// NFD

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

// ---------------------------------------------------------------------------------------------
// --output

#[test]
fn output_is_written_whole_with_mode_0644_whatever_the_umask() {
    let (root, _sock) = flatcar_root();
    let out_dir = tempfile::tempdir().unwrap();
    let target = out_dir.path().join("hostprint.prom");
    let mut cmd = bin();
    cmd.args([
        "--root",
        root.path().to_str().unwrap(),
        "--format",
        "prometheus",
        "--output",
    ])
    .arg(&target);
    // SAFETY: umask(2) is async-signal-safe and touches only the child's state.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o077);
            Ok(())
        });
    }
    let o = cmd.output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(o.stdout.is_empty(), "nothing on stdout with --output");
    assert_eq!(std::fs::metadata(&target).unwrap().mode() & 0o777, 0o644);
    assert_eq!(
        entries(out_dir.path()),
        vec!["hostprint.prom"],
        "no temporary files left"
    );
    let stdout = prometheus(root.path());
    assert_eq!(std::fs::read(&target).unwrap(), stdout.stdout);
}

#[test]
fn unwritable_output_is_exit_1_naming_the_path() {
    let root = tree(&[("etc/os-release", "ID=debian\n")]);
    let blocker = tree(&[("file", "x")]);
    let mut targets = vec![
        PathBuf::from("/nonexistent-hostprint/out.prom"),
        // A regular file where the directory should be: ENOTDIR, even for root.
        blocker.path().join("file/out.prom"),
        // An existing directory cannot be replaced by a file.
        blocker.path().to_path_buf(),
    ];
    // Permission bits stop everyone but root (CAP_DAC_OVERRIDE); test them when they can apply.
    let ro = tempfile::tempdir().unwrap();
    if unsafe { libc::geteuid() } != 0 {
        std::fs::set_permissions(
            ro.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o555),
        )
        .unwrap();
        targets.push(ro.path().join("out.prom"));
    }
    for target in targets {
        let o = bin()
            .args([
                "--root",
                root.path().to_str().unwrap(),
                "--format",
                "nfd",
                "--output",
            ])
            .arg(&target)
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(1),
            "{}: {}",
            target.display(),
            stderr(&o)
        );
        let err = stderr(&o);
        assert!(err.contains(&target.display().to_string()), "{err}");
        assert!(err.starts_with("hostprint: cannot write"), "{err}");
    }
    assert_eq!(
        entries(blocker.path()),
        vec!["file"],
        "no temporary file left behind"
    );
}

// ---------------------------------------------------------------------------------------------
// --interval

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

fn interval(root: &Path, target: &Path, every: &str, log: &str) -> Child {
    bin()
        .args([
            "--root",
            root.to_str().unwrap(),
            "--format",
            "prometheus",
            "--interval",
            every,
        ])
        .arg("--output")
        .arg(target)
        .env("RUST_LOG", log)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn interval_rewrites_until_sigterm_and_exits_0() {
    for (sig, name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGINT, "SIGINT")] {
        let (root, _sock) = flatcar_root();
        let out_dir = tempfile::tempdir().unwrap();
        let target = out_dir.path().join("hostprint.prom");
        let child = interval(root.path(), &target, "1s", "hostprint=info");
        wait_for("the first file", Duration::from_secs(20), || {
            target.exists()
        });
        let first = std::fs::metadata(&target).unwrap().modified().unwrap();
        // Rounds go on: the file is replaced.
        wait_for_rewrite(&target);
        signal(&child, sig);
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
        assert!(stderr(&o).contains(name), "{}", stderr(&o));
        let text = std::fs::read_to_string(&target).unwrap();
        parse_exposition(&text).unwrap();
        assert!(std::fs::metadata(&target).unwrap().modified().unwrap() >= first);
        assert_eq!(entries(out_dir.path()), vec!["hostprint.prom"]);
    }
}

/// SIGHUP ended the agent with 129 (the default action). It means "probe now": a round runs at once,
/// long before the next one is due, and the agent goes on until SIGTERM.
#[test]
fn sighup_ended_the_agent_with_129() {
    let (root, _sock) = flatcar_root();
    let out_dir = tempfile::tempdir().unwrap();
    let target = out_dir.path().join("hostprint.prom");
    let mut child = interval(root.path(), &target, "1h", "hostprint=info");
    wait_for("the first file", Duration::from_secs(20), || {
        target.exists()
    });
    for _ in 0..3 {
        signal(&child, libc::SIGHUP);
        wait_for_rewrite(&target);
        assert!(
            child.try_wait().unwrap().is_none(),
            "SIGHUP ended the agent"
        );
    }
    signal(&child, libc::SIGTERM);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("probing now"), "{}", stderr(&o));
    parse_exposition(&std::fs::read_to_string(&target).unwrap()).unwrap();
}

#[test]
fn interval_keeps_the_last_good_file_when_a_round_fails() {
    let root = tree(&[("etc/os-release", "ID=flatcar\nVERSION_ID=1.2.3\n")]);
    let moved = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let target = out_dir.path().join("hostprint.prom");
    // Rounds on demand (SIGHUP), not on the clock.
    let mut child = interval(root.path(), &target, "1h", "hostprint=warn");
    wait_for("the first file", Duration::from_secs(20), || {
        target.exists()
    });
    let good = std::fs::read_to_string(&target).unwrap();
    // The root disappears: rounds now fail, and must say so without touching the file.
    let away = moved.path().join("root");
    std::fs::rename(root.path(), &away).unwrap();
    signal(&child, libc::SIGHUP);
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("round failed"), "{line}");
    assert!(
        line.contains(root.path().to_str().unwrap()),
        "names the root: {line}"
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), good);
    drop(err);
    // It comes back: rounds succeed again.
    std::fs::rename(&away, root.path()).unwrap();
    signal(&child, libc::SIGHUP);
    wait_for_rewrite(&target);
    signal(&child, libc::SIGTERM);
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), good);
}

#[test]
fn interval_first_round_failure_is_exit_1() {
    let out_dir = tempfile::tempdir().unwrap();
    let target = out_dir.path().join("x.prom");
    let o = bin()
        .args([
            "--root",
            "/nonexistent/hostprint-root",
            "--interval",
            "1s",
            "--output",
        ])
        .arg(&target)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("/nonexistent/hostprint-root"),
        "{}",
        stderr(&o)
    );
    assert!(!target.exists());
}

/// `--interval 1ns` busy-looped, and `18446744073709551615s` panicked after the first round (the
/// clock arithmetic overflowed); `garbage` said "expected number at 0". Each is a usage error that
/// says what is expected, before anything is written.
#[test]
fn interval_out_of_range_busy_looped_or_panicked() {
    let out_dir = tempfile::tempdir().unwrap();
    let target = out_dir.path().join("never-written.prom");
    for (every, says) in [
        ("1ns", "shorter than 1s"),
        ("999ms", "shorter than 1s"),
        ("18446744073709551615s", "longer than 365d"),
        ("garbage", "expected a duration such as 30s, 5m or 1h"),
    ] {
        let o = hostprint(&["--interval", every, "--output", target.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{every}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{every}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
        assert!(!target.exists());
    }
}

#[test]
fn interval_without_output_or_zero_is_a_usage_error() {
    let o = hostprint(&["--interval", "60s"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--output"), "{}", stderr(&o));
    let o = hostprint(&["--interval", "0s", "--output", "/tmp/never-written.prom"]);
    assert_eq!(o.status.code(), Some(2));
    let o = hostprint(&["--interval", "soon", "--output", "/tmp/never-written.prom"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!Path::new("/tmp/never-written.prom").exists());
}

/// Readers never see a partial file: a reader hammering the file while rounds replace it every
/// millisecond only ever reads the complete text (written in place, it would catch a truncated one).
#[test]
fn readers_never_see_a_partial_file() {
    let (root, _sock) = flatcar_root();
    let expected = prometheus(root.path()).stdout;
    let out_dir = tempfile::tempdir().unwrap();
    let target = out_dir.path().join("hostprint.prom");
    let mut child = interval(root.path(), &target, "1h", "hostprint=warn");
    wait_for("the first file", Duration::from_secs(20), || {
        target.exists()
    });
    // Rounds back to back: SIGHUPs faster than rounds (those during a round make one more).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hup = {
        let (stop, pid) = (stop.clone(), child.id() as i32);
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // SAFETY: kill(2) on our own child's pid, not yet reaped (joined before the wait).
                unsafe { libc::kill(pid, libc::SIGHUP) };
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    // Read until the file has been replaced many times under the reader. A replacement shows as a new
    // (inode, mtime) pair: inode numbers alone are reused by the filesystem right away.
    let mut versions = BTreeSet::new();
    let start = Instant::now();
    let mut reads = 0u64;
    while versions.len() < 50 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "only {} rewrites seen in {reads} reads",
            versions.len()
        );
        let Ok(f) = std::fs::File::open(&target) else {
            panic!("the file vanished between rounds")
        };
        versions.insert(stamp(&f.metadata().unwrap()));
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut &f, &mut bytes).unwrap();
        assert_eq!(bytes, expected, "read {reads} saw {} bytes", bytes.len());
        reads += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    hup.join().unwrap();
    signal(&child, libc::SIGTERM);
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

/// A directory on tmpfs where there is one: fsync costs nothing there, so thousands of rounds take
/// seconds; what the test measures (memory) does not depend on the disk.
fn fast_tempdir() -> tempfile::TempDir {
    match Path::new("/dev/shm").is_dir() {
        true => tempfile::tempdir_in("/dev/shm").unwrap(),
        false => tempfile::tempdir().unwrap(),
    }
}

/// Thousands of rounds, each asked for with SIGHUP: resident memory after round 2000 is what it was
/// after round 400.
#[test]
fn interval_memory_stays_flat() {
    let (root, _sock) = flatcar_root();
    let out_dir = fast_tempdir();
    let target = out_dir.path().join("hostprint.prom");
    let mut child = interval(root.path(), &target, "1h", "hostprint=info");
    let pid = child.id();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let (mut at_400, mut at_2000) = (0, 0);
    let mut line = String::new();
    let mut rounds = 0u64;
    while err.read_line(&mut line).unwrap() > 0 {
        if line.contains("output written") {
            rounds += 1;
            match rounds {
                400 => at_400 = status_kib(&pid.to_string(), "VmRSS"),
                2000 => {
                    at_2000 = status_kib(&pid.to_string(), "VmRSS");
                    break;
                }
                _ => {}
            }
            signal(&child, libc::SIGHUP);
        }
        assert!(!line.contains("round failed"), "{line}");
        line.clear();
    }
    // Stop reading first: a child blocked on a full stderr pipe could not act on the signal.
    drop(err);
    signal(&child, libc::SIGTERM);
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(rounds, 2000);
    eprintln!("RSS {at_400} KiB at round 400, {at_2000} KiB at round 2000");
    // A leak of even 1 KiB a round would show as 1.6 MiB here.
    assert!(
        at_2000 <= at_400 + 512,
        "RSS grew from {at_400} KiB at round 400 to {at_2000} KiB at round 2000"
    );
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
