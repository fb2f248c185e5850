//! Facts: everything the probes observed about a root, typed and serializable.
//!
//! One probe per file, each a pure parser beside a thin reader, listed once in [`collect`]. Probes never
//! decide what the OS is (that is the rules' job) and one failing probe never loses the profile: each
//! runs under `catch_unwind`, and a panic becomes a warning naming the probe.

pub mod environment;
pub mod host;
pub mod kernel;
pub mod legacy_release;
pub mod lifecycle;
pub mod mounts;
pub mod os_release;
pub mod ostree;
pub mod pid1;
pub mod runtimes;
pub mod security;
pub mod units;
pub mod update;

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use serde::Serialize;

use crate::root::{Failure, FileKind, Root};
use crate::warning::{Code, Warning};

/// Everything observed. Rules read this and nothing else.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Facts {
    pub os_release: os_release::OsRelease,
    /// A pre-os-release file naming the distribution, read only when os-release has no `ID`.
    pub legacy_release: Option<legacy_release::LegacyRelease>,
    pub kernel: kernel::Kernel,
    pub pid1: pid1::Pid1,
    pub init: Option<&'static str>,
    pub updates: Vec<update::UpdateAgent>,
    pub ostree: ostree::Ostree,
    pub lifecycle: lifecycle::Lifecycle,
    pub security: security::Security,
    pub runtimes: Vec<runtimes::Runtime>,
    pub mounts: mounts::Mounts,
    /// `run/ostree-booted` is there (`true`), or `run/` is and the marker is not (`false`); `None`
    /// without `run/` (a recording or image without it): unknown is not "no".
    pub ostree_booted: Option<bool>,
    pub environment: environment::Environment,
    pub host: host::Host,
    /// Paths the loaded rules ask about that are there (absent and unresolvable ones are left out:
    /// to a rule both are "not there").
    pub paths: BTreeMap<String, PathFact>,
    /// `KEY=value` files the loaded rules ask about (absent or unreadable files are absent here).
    pub kv_files: BTreeMap<String, BTreeMap<String, String>>,
}

/// What a rule-named path is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PathFact {
    /// The kind with symlinks followed inside the root; `None` when absent or unreadable.
    pub kind: Option<FileKind>,
    /// The symlink's own target text, when the path itself is a symlink.
    pub link_target: Option<String>,
}

/// What the rules need probed beyond the fixed probes, sorted, each once, borrowed from the rules.
#[derive(Clone, Debug, Default)]
pub struct Wanted<'r> {
    pub paths: Vec<&'r str>,
    pub kv_files: Vec<&'r str>,
}

/// `proc/cpuinfo` grows with the CPU count; this covers hundreds of CPUs.
const CPUINFO_CAP: usize = 4 << 20;

/// Runs every probe over `root`.
pub fn collect(root: &Root, wanted: &Wanted) -> Facts {
    let mut facts = Facts {
        os_release: guarded(root, "os-release", || os_release::probe(root)),
        kernel: guarded(root, "kernel", || kernel::probe(root)),
        pid1: guarded(root, "pid1", || pid1::probe(root)),
        ..Facts::default()
    };
    facts.init = pid1::classify(&facts.pid1);
    tracing::debug!("init {}", facts.init.unwrap_or("unknown"));
    if facts.os_release.get("ID").is_none_or(str::is_empty) {
        facts.legacy_release = guarded(root, "legacy-release", || legacy_release::probe(root));
        if let Some(legacy) = &facts.legacy_release {
            root.warn(Warning::at(
                Code::LegacyReleaseFile,
                &legacy.source,
                "no usable os-release (absent, empty or without ID): the distribution is named \
                 by this legacy release file",
            ));
        }
    }
    facts.ostree_booted = match root.stat("run/ostree-booted") {
        Ok(FileKind::File) => Some(true),
        _ if matches!(root.stat("run"), Ok(FileKind::Dir)) => Some(false),
        _ => None,
    };
    // The deployment and its reboot marks are looked for only on a boot known to be from ostree.
    let booted = facts.ostree_booted == Some(true);
    facts.ostree = guarded(root, "ostree", || {
        ostree::probe(root, &facts.kernel, booted)
    });
    facts.updates = guarded(root, "update", || update::probe(root, &facts.ostree));
    facts.security = guarded(root, "security", || security::probe(root, &facts.kernel));
    facts.runtimes = guarded(root, "runtimes", || runtimes::probe(root));
    facts.mounts = guarded(root, "mounts", || mounts::probe(root));
    facts.lifecycle = guarded(root, "lifecycle", || {
        lifecycle::probe(
            root,
            &facts.os_release,
            &facts.kernel,
            &facts.ostree,
            booted,
            &facts.updates,
        )
    });
    let cpuinfo = root
        .read_text("proc/cpuinfo", CPUINFO_CAP)
        .ok()
        .map(|t| t.text);
    facts.environment = guarded(root, "environment", || {
        environment::probe(root, cpuinfo.as_deref(), facts.mounts.cgroup)
    });
    facts.host = guarded(root, "host", || host::probe(root, cpuinfo.as_deref()));
    // One guard for all the paths; they come sorted, so the map is built in one pass.
    facts.paths = guarded(root, "paths", || {
        wanted
            .paths
            .iter()
            .map(|&path| (path, probe_path(root, path)))
            .filter(|(_, fact)| *fact != PathFact::default())
            .map(|(path, fact)| (path.to_string(), fact))
            .collect()
    });
    for &path in &wanted.kv_files {
        if let Ok(file) = os_release::read_env_file(root, path, 64 * 1024) {
            facts.kv_files.insert(path.to_string(), file.fields);
        }
    }
    facts
}

fn probe_path(root: &Root, path: &str) -> PathFact {
    let lstat = root.lstat(path);
    let link_target = match lstat {
        Ok(FileKind::Symlink) => root.readlink(path).ok(),
        _ => None,
    };
    // Only a trailing symlink makes stat differ from lstat (both resolve the parents alike and consult
    // the manifest alike), so only then is the path looked up again. Any other failure is looked up
    // again so that stat warns exactly as it would have. A loop or a permission error on a marker is
    // warned about by `Root::stat`; the rule sees "absent", the profile says why.
    let kind = match lstat {
        Ok(FileKind::Symlink) => root.stat(path).ok(),
        Ok(kind) => Some(kind),
        Err(Failure::Absent) => None,
        Err(_) => root.stat(path).ok(),
    };
    PathFact { kind, link_target }
}

/// Facts as one `key=value …` line: nested keys dotted, nulls and empty lists left out, lists of
/// words joined by `,`, and a string that is not one plain word quoted with escapes (it came from
/// the host, and may hold spaces or control characters).
fn one_line(facts: &impl Serialize) -> String {
    use serde_json::Value;
    fn scalar(v: &Value) -> String {
        let plain = |s: &str| {
            let ok = |c: char| c.is_ascii_alphanumeric() || "-_./:@+".contains(c);
            !s.is_empty() && s.chars().all(ok)
        };
        match v {
            Value::String(s) if plain(s) => s.clone(),
            other => other.to_string(),
        }
    }
    fn walk(key: &str, v: &Value, out: &mut Vec<String>) {
        let sub = |k: &str| match key {
            "" => k.to_string(),
            _ => format!("{key}.{k}"),
        };
        match v {
            Value::Null => {}
            Value::Object(map) => map.iter().for_each(|(k, v)| walk(&sub(k), v, out)),
            Value::Array(items) if items.iter().any(|i| i.is_object() || i.is_array()) => {
                let each = items.iter().enumerate();
                each.for_each(|(i, v)| walk(&sub(&i.to_string()), v, out))
            }
            Value::Array(items) if items.is_empty() => {}
            Value::Array(items) => {
                let words: Vec<String> = items.iter().map(scalar).collect();
                out.push(format!("{key}={}", words.join(",")));
            }
            other => out.push(format!("{key}={}", scalar(other))),
        }
    }
    let mut out = Vec::new();
    walk(
        "",
        &serde_json::to_value(facts).unwrap_or_default(),
        &mut out,
    );
    match out.is_empty() {
        true => "(nothing)".to_string(),
        false => out.join(" "),
    }
}

/// Runs a probe; a panic becomes a warning and the probe's default value. `-v` logs its facts.
fn guarded<T: Default + Serialize>(root: &Root, name: &str, probe: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(probe)) {
        Ok(v) => {
            if tracing::enabled!(tracing::Level::DEBUG) {
                tracing::debug!("{name} {}", one_line(&v));
            }
            v
        }
        Err(_) => {
            root.warn(Warning::general(
                Code::ProbeFailed,
                format!(
                "the {name} probe failed unexpectedly; its facts are missing (please report this)"
            ),
            ));
            T::default()
        }
    }
}
