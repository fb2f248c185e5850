//! The rule file format, its validation, and the types a valid file becomes.
//!
//! This is the single place that decides whether a rule is valid, for `--fingerprints`,
//! `fingerprints --check` and the shipped rules: `build.rs` compiles this file (with `src/text.rs`)
//! to validate them at build time, hence the narrow imports (serde, toml, thiserror, strsim,
//! `crate::text`). Every error of a file is reported, each naming `file:line`. A value that only a
//! probe produces (an init system, an update agent, a runtime, an SELinux mode) is checked against
//! the [`Vocabulary`] the probes can report, so a typo is an error, not a rule that never holds;
//! build.rs cannot compile the probes, so the library's tests hold the shipped rules to it.

use std::fmt;

use serde::Deserialize;
use toml::Spanned;

use crate::text::{is_plain, line_of, normalize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    ContainerOs,
    ImmutableDesktop,
    GeneralPurpose,
    Platform,
    Component,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ContainerOs => "container-os",
            Kind::ImmutableDesktop => "immutable-desktop",
            Kind::GeneralPurpose => "general-purpose",
            Kind::Platform => "platform",
            Kind::Component => "component",
        }
    }

    /// Kinds that name the OS itself (as opposed to what runs on it).
    pub fn is_os(self) -> bool {
        matches!(
            self,
            Kind::ContainerOs | Kind::ImmutableDesktop | Kind::GeneralPurpose
        )
    }
}

/// A loaded, validated rule.
#[derive(Clone, Debug)]
pub struct Fingerprint {
    pub id: String,
    pub name: String,
    pub kind: Kind,
    pub vendor: Option<String>,
    pub homepage: Option<String>,
    pub lineage: Vec<String>,
    pub eol: Option<String>,
    pub successor: Option<String>,
    /// The key that holds the system's own version (`identity.version`), when it is not os-release's
    /// `VERSION_ID` (Kairos: `KAIROS_VERSION`).
    pub version_key: Option<String>,
    /// A `KEY=value` file read for `version_key` before os-release (Kairos: `etc/kairos-release`).
    pub version_file: Option<String>,
    pub fixtures: Vec<String>,
    pub near_misses: Vec<String>,
    pub require: Vec<Signal>,
    pub support: Vec<Signal>,
    pub exclude: Vec<Signal>,
    pub roles: Vec<Role>,
    /// Where it came from (`flatcar.toml` for shipped rules, a path for user rules).
    pub origin: String,
}

#[derive(Clone, Debug)]
pub struct Signal {
    pub why: String,
    pub weight: u32,
    /// Rendered (its `Display`) only when shown: evidence and `--explain` show the signals of a
    /// few rules, a run evaluates all of them.
    pub condition: Condition,
}

#[derive(Clone, Debug)]
pub struct Role {
    pub id: String,
    pub why: String,
    pub condition: Condition,
}

/// One condition over the facts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    OsRelease {
        key: String,
        matcher: Matcher,
    },
    Path {
        path: String,
        kind: PathKind,
    },
    LinkTarget {
        path: String,
        target: String,
    },
    KvFile {
        path: String,
        key: String,
        matcher: Matcher,
    },
    Pid1 {
        field: Pid1Field,
        value: String,
    },
    Init(String),
    UpdateAgent(String),
    Runtime(String),
    CmdlineHas(String),
    CmdlineEquals(String),
    SelinuxPolicy(String),
    SelinuxMode(String),
    Fs(FsFlag),
    Any(Vec<Condition>),
    All(Vec<Condition>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Matcher {
    Equals(String),
    OneOf(Vec<String>),
    HasWord(String),
    Present(bool),
    Prefix(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PathKind {
    #[default]
    Any,
    File,
    Dir,
    Symlink,
    Socket,
    Fifo,
    Device,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pid1Field {
    Comm,
    Exe,
    Argv0,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsFlag {
    RootReadOnly,
    UsrReadOnly,
    OstreeBooted,
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lower = |d: &dyn fmt::Debug| format!("{d:?}").to_lowercase();
        match self {
            Condition::OsRelease { key, matcher } => write!(f, "os-release {key} {matcher}"),
            Condition::Path { path, kind } => match kind {
                PathKind::Any => write!(f, "/{path} exists"),
                k => write!(f, "/{path} is a {}", lower(k)),
            },
            Condition::LinkTarget { path, target } => write!(f, "/{path} -> {target}"),
            Condition::KvFile { path, key, matcher } => write!(f, "/{path} {key} {matcher}"),
            Condition::Pid1 { field, value } => write!(f, "PID 1 {} is {value:?}", lower(field)),
            Condition::Init(v) => write!(f, "init system is {v}"),
            Condition::UpdateAgent(v) => write!(f, "update agent {v} present"),
            Condition::Runtime(v) => write!(f, "runtime {v} socket present"),
            Condition::CmdlineHas(v) => write!(f, "kernel command line has {v}"),
            Condition::CmdlineEquals(v) => write!(f, "kernel command line has {v:?}"),
            Condition::SelinuxPolicy(v) => write!(f, "SELinux policy is {v}"),
            Condition::SelinuxMode(v) => write!(f, "SELinux mode is {v}"),
            Condition::Fs(FsFlag::RootReadOnly) => write!(f, "/ is mounted read-only"),
            Condition::Fs(FsFlag::UsrReadOnly) => write!(f, "/usr is mounted read-only"),
            Condition::Fs(FsFlag::OstreeBooted) => write!(f, "booted from an OSTree deployment"),
            Condition::Any(cs) | Condition::All(cs) => {
                let (name, sep) = match self {
                    Condition::Any(_) => ("any", " | "),
                    _ => ("all", " & "),
                };
                let parts: Vec<String> = cs.iter().map(ToString::to_string).collect();
                write!(f, "{name} of ({})", parts.join(sep))
            }
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Matcher::Equals(v) => write!(f, "= {v:?}"),
            Matcher::OneOf(vs) => write!(f, "in {vs:?}"),
            Matcher::HasWord(v) => write!(f, "has word {v:?}"),
            Matcher::Present(true) => write!(f, "is set"),
            Matcher::Present(false) => write!(f, "is not set"),
            Matcher::Prefix(v) => write!(f, "starts with {v:?}"),
        }
    }
}

/// How a condition uses a path it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Named {
    /// Its kind or link target (`path`).
    Path,
    /// Its `KEY=value` content (`kv_file`).
    KvFile,
}

/// How deep `any`/`all` may nest. Real rules use one level, two at most; evaluating and rendering a
/// condition recurse once per level, so [`parse`] refuses deeper ones.
pub const MAX_NESTING: usize = 8;

impl Condition {
    /// Calls `f` with every path the condition names, nested ones included: what the probes must
    /// look at for it.
    pub fn named<'r>(&'r self, f: &mut impl FnMut(Named, &'r str)) {
        match self {
            Condition::Path { path, .. } | Condition::LinkTarget { path, .. } => {
                f(Named::Path, path)
            }
            Condition::KvFile { path, .. } => f(Named::KvFile, path),
            Condition::Any(cs) | Condition::All(cs) => cs.iter().for_each(|c| c.named(f)),
            _ => {}
        }
    }

    /// Levels of `any`/`all` (0 for a plain condition).
    pub fn depth(&self) -> usize {
        match self {
            Condition::Any(cs) | Condition::All(cs) => {
                1 + cs.iter().map(Condition::depth).max().unwrap_or(0)
            }
            _ => 0,
        }
    }
}

impl Fingerprint {
    /// Every condition of the rule: its signals', then its roles'.
    pub fn conditions(&self) -> impl Iterator<Item = &Condition> {
        let signals = self
            .require
            .iter()
            .chain(&self.support)
            .chain(&self.exclude);
        signals
            .map(|s| &s.condition)
            .chain(self.roles.iter().map(|r| &r.condition))
    }
}

/// The values the probes can report where a condition names one (`init`, `update_agent`,
/// `runtime`, `selinux mode`), by field; a rule naming any other could never hold.
#[derive(Clone, Debug, Default)]
pub struct Vocabulary(pub Vec<(&'static str, Vec<&'static str>)>);

/// `value` if `known` holds it, else an error suggesting the closest known value.
fn known(field: &str, value: String, words: &[&str]) -> Result<String, String> {
    if words.contains(&value.as_str()) {
        return Ok(value);
    }
    let distance = |w: &&&str| strsim::damerau_levenshtein(w, &value);
    let hint = match words.iter().min_by_key(distance) {
        Some(w) if distance(&w) <= 3 => format!("did you mean {w:?}? "),
        _ => String::new(),
    };
    Err(format!(
        "{field} {value:?} is never reported; {hint}hostprint reports {}",
        words.join(", ")
    ))
}

/// A rule-file error, located.
/// Line 0 means the error is about the file as a whole (unreadable, too large): no `:0` is shown.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", if *line == 0 { String::new() } else { format!(":{line}") })]
pub struct RuleError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// Every error found in one or more rule files, one per line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct RuleErrors(pub Vec<RuleError>);

// ---- the file format, as serde sees it ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    id: Spanned<String>,
    name: String,
    kind: Kind,
    vendor: Option<String>,
    homepage: Option<String>,
    #[serde(default)]
    lineage: Vec<String>,
    eol: Option<Spanned<String>>,
    successor: Option<String>,
    version_key: Option<String>,
    version_file: Option<Spanned<String>>,
    #[serde(default)]
    fixtures: Vec<String>,
    #[serde(default)]
    near_misses: Vec<String>,
    #[serde(default)]
    require: Vec<Spanned<RawCondition>>,
    #[serde(default)]
    support: Vec<Spanned<RawCondition>>,
    #[serde(default)]
    exclude: Vec<Spanned<RawCondition>>,
    #[serde(default)]
    role: Vec<Spanned<RawCondition>>,
}

/// A signal, a role or a nested condition: one strict shape for all three (serde cannot combine
/// `flatten` with `deny_unknown_fields`), with `why`/`weight`/`id` checked by where it stands.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    why: Option<String>,
    weight: Option<u32>,
    id: Option<String>,
    os_release: Option<RawMatch>,
    path: Option<RawPath>,
    kv_file: Option<RawMatch>,
    pid1: Option<RawPid1>,
    init: Option<String>,
    update_agent: Option<String>,
    runtime: Option<String>,
    cmdline: Option<RawCmdline>,
    selinux: Option<RawSelinux>,
    fs: Option<FsFlag>,
    any: Option<Vec<RawCondition>>,
    all: Option<Vec<RawCondition>>,
}

/// `os_release` (no `path`) and `kv_file` (with one): a key and how its value must match.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    path: Option<String>,
    key: String,
    equals: Option<String>,
    one_of: Option<Vec<String>>,
    has_word: Option<String>,
    present: Option<bool>,
    prefix: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPath {
    path: String,
    #[serde(rename = "type")]
    kind: Option<PathKind>,
    link_target: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPid1 {
    comm: Option<String>,
    exe: Option<String>,
    argv0: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCmdline {
    has: Option<String>,
    equals: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSelinux {
    policy: Option<String>,
    mode: Option<String>,
}

/// The one option that is set, or an error naming the choices (or the ones set, when several are).
fn exactly_one<T, const N: usize>(options: [(&str, Option<T>); N]) -> Result<T, String> {
    let all: Vec<&str> = options.iter().map(|(name, _)| *name).collect();
    let mut set: Vec<(&str, T)> = options
        .into_iter()
        .filter_map(|(name, v)| Some((name, v?)))
        .collect();
    match set.len() {
        1 => Ok(set.remove(0).1),
        0 => Err(format!("needs one of {}", all.join(", "))),
        _ => {
            let set: Vec<&str> = set.iter().map(|(name, _)| *name).collect();
            Err(format!("has more than one of {}", set.join(", ")))
        }
    }
}

fn check_id(id: &str) -> Result<(), String> {
    let allowed = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_';
    match !id.is_empty() && id.bytes().all(allowed) {
        true => Ok(()),
        false => Err(format!(
            "id {id:?} must be lowercase letters, digits, '-' or '_'"
        )),
    }
}

/// A rule's path, normalized, and then plain ([`is_plain`]).
fn relative(path: &str) -> Result<String, String> {
    // No file has one: the kernel takes C strings.
    if path.contains('\0') {
        return Err(format!("path {path:?} contains a NUL byte"));
    }
    let rel = normalize(path);
    match is_plain(&rel) {
        true => Ok(rel.into_owned()),
        false => Err(format!(
            "path {path:?} must name a place inside the root, without '..'"
        )),
    }
}

impl RawMatch {
    fn matcher(self) -> Result<(String, Matcher), String> {
        if self.one_of.as_ref().is_some_and(Vec::is_empty) {
            return Err("one_of = [] never matches: list at least one value".into());
        }
        let matcher = exactly_one([
            ("equals", self.equals.map(Matcher::Equals)),
            ("one_of", self.one_of.map(Matcher::OneOf)),
            ("has_word", self.has_word.map(Matcher::HasWord)),
            ("present", self.present.map(Matcher::Present)),
            ("prefix", self.prefix.map(Matcher::Prefix)),
        ])?;
        Ok((self.key, matcher))
    }
}

impl RawCondition {
    /// The one condition this names, checked against `vocabulary` when there is one.
    fn build(self, vocabulary: Option<&Vocabulary>) -> Result<Condition, String> {
        // A value only a probe produces: one it can report.
        let check = |field: &'static str, value: String| match vocabulary
            .and_then(|v| v.0.iter().find(|(f, _)| *f == field))
        {
            Some((_, words)) => known(field, value, words),
            None => Ok(value),
        };
        let word = |field, value: Option<String>, wrap: fn(String) -> Condition| {
            (field, value.map(|v| check(field, v).map(wrap)))
        };
        let group = |name, list: Option<Vec<RawCondition>>, wrap: fn(Vec<_>) -> Condition| {
            (
                name,
                list.map(|list| group(name, list, vocabulary).map(wrap)),
            )
        };
        let os_release = self.os_release.map(|m| match m.path {
            Some(_) => Err("os_release takes no path (kv_file reads other files)".into()),
            None => m
                .matcher()
                .map(|(key, matcher)| Condition::OsRelease { key, matcher }),
        });
        let path = self.path.map(|p| {
            let path = relative(&p.path)?;
            match (p.link_target, p.kind) {
                (Some(target), None) => Ok(Condition::LinkTarget { path, target }),
                (Some(_), Some(_)) => Err("path: use either type or link_target".into()),
                (None, kind) => Ok(Condition::Path {
                    path,
                    kind: kind.unwrap_or_default(),
                }),
            }
        });
        let kv_file = self.kv_file.map(|m| {
            let path = relative(m.path.as_deref().ok_or("kv_file needs a path")?)?;
            let (key, matcher) = m.matcher()?;
            Ok(Condition::KvFile { path, key, matcher })
        });
        let pid1 = self.pid1.map(|p| {
            exactly_one([
                ("comm", p.comm.map(|v| (Pid1Field::Comm, v))),
                ("exe", p.exe.map(|v| (Pid1Field::Exe, v))),
                ("argv0", p.argv0.map(|v| (Pid1Field::Argv0, v))),
            ])
            .map(|(field, value)| Condition::Pid1 { field, value })
            .map_err(|m| format!("pid1 {m}"))
        });
        let cmdline = self.cmdline.map(|c| {
            exactly_one([
                ("has", c.has.map(Condition::CmdlineHas)),
                ("equals", c.equals.map(Condition::CmdlineEquals)),
            ])
            .map_err(|m| format!("cmdline {m}"))
        });
        let selinux = self.selinux.map(|s| {
            match exactly_one([("policy", s.policy.map(Ok)), ("mode", s.mode.map(Err))]) {
                Ok(Ok(policy)) => Ok(Condition::SelinuxPolicy(policy)),
                Ok(Err(mode)) => check("selinux mode", mode).map(Condition::SelinuxMode),
                Err(m) => Err(format!("selinux {m}")),
            }
        });
        let condition = exactly_one([
            ("os_release", os_release),
            ("path", path),
            ("kv_file", kv_file),
            ("pid1", pid1),
            word("init", self.init, Condition::Init),
            word("update_agent", self.update_agent, Condition::UpdateAgent),
            word("runtime", self.runtime, Condition::Runtime),
            ("cmdline", cmdline),
            ("selinux", selinux),
            ("fs", self.fs.map(|flag| Ok(Condition::Fs(flag)))),
            group("any", self.any, Condition::Any),
            group("all", self.all, Condition::All),
        ]);
        let located = condition.map_err(|m| match m.strip_prefix("has more than one of ") {
            Some(set) => format!("has more than one condition ({set}); combine them with `all`"),
            None => format!(
                "has no condition ({})",
                m.trim_start_matches("needs one of ")
            ),
        });
        located?
    }
}

/// The conditions of an `any` or `all` list, none of them a signal.
fn group(
    name: &str,
    list: Vec<RawCondition>,
    vocabulary: Option<&Vocabulary>,
) -> Result<Vec<Condition>, String> {
    if list.is_empty() {
        return Err(format!("{name} = [] is empty: list at least one condition"));
    }
    let inner =
        list.into_iter().map(
            |c| match c.why.is_some() || c.weight.is_some() || c.id.is_some() {
                true => Err(format!(
                    "an inner condition of {name} takes no why, weight or id"
                )),
                false => c.build(vocabulary),
            },
        );
    inner.collect()
}

/// One `[[section]]` entry, and its id: `why` always; `id` only for a role; `weight` (default
/// `weight`, at most 100) never for a role; a condition within [`MAX_NESTING`].
fn entry(
    section: &str,
    weight: u32,
    mut raw: RawCondition,
    vocabulary: Option<&Vocabulary>,
) -> Result<(String, Signal), String> {
    let role = section == "role";
    let why = raw.why.take().filter(|w| !w.trim().is_empty());
    let why = why.ok_or("needs a `why`")?;
    let id = match (role, raw.id.take()) {
        (true, id) => id.ok_or("needs an `id`")?,
        (false, None) => String::new(),
        (false, Some(_)) => return Err("takes no id (only [[role]] does)".into()),
    };
    let weight = match (role, raw.weight.take()) {
        (true, Some(_)) => return Err("takes no weight".into()),
        (_, w) => w.unwrap_or(weight),
    };
    if weight > 100 {
        return Err(format!("weight {weight} is over 100"));
    }
    let condition = raw.build(vocabulary)?;
    if condition.depth() > MAX_NESTING {
        return Err(format!("nests any/all more than {MAX_NESTING} deep"));
    }
    Ok((
        id,
        Signal {
            why,
            weight,
            condition,
        },
    ))
}

/// Parses one rule file, reporting every error it finds. `origin` names it in errors; `vocabulary`
/// (when given) is what the probes can report.
pub fn parse(
    origin: &str,
    text: &str,
    vocabulary: Option<&Vocabulary>,
) -> Result<Fingerprint, RuleErrors> {
    let mut errors = Vec::new();
    let mut error = |offset: usize, message: String| {
        errors.push(RuleError {
            file: origin.to_string(),
            line: line_of(text, offset),
            message,
        })
    };
    let raw: RawFile = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            error(
                e.span().map_or(0, |s| s.start),
                e.message().trim().to_string(),
            );
            return Err(RuleErrors(errors));
        }
    };
    let id_at = raw.id.span().start;
    let id = raw.id.into_inner();
    if let Err(m) = check_id(&id) {
        error(id_at, m);
    }
    let eol = raw.eol.map(|e| {
        if parse_date(e.get_ref()).is_none() {
            error(
                e.span().start,
                format!("eol {:?} is not a YYYY-MM-DD date", e.get_ref()),
            );
        }
        e.into_inner()
    });
    let version_file = raw.version_file.and_then(|f| {
        let at = f.span().start;
        let checked = match raw.version_key {
            None => Err("version_file needs a version_key to read".into()),
            Some(_) => relative(f.get_ref()).map_err(|m| format!("version_file {m}")),
        };
        checked.map_err(|m| error(at, m)).ok()
    });
    let mut section = |name: &str, weight: u32, list: Vec<Spanned<RawCondition>>| {
        let entries = list.into_iter().map(|s| {
            let at = s.span().start;
            let entry = entry(name, weight, s.into_inner(), vocabulary);
            entry.map_err(|m| error(at, format!("[[{name}]] {m}")))
        });
        entries.flatten().collect::<Vec<_>>().into_iter()
    };
    let (require_count, has_roles) = (raw.require.len(), !raw.role.is_empty());
    let require = section("require", 40, raw.require).map(|e| e.1).collect();
    let support = section("support", 15, raw.support).map(|e| e.1).collect();
    let exclude = section("exclude", 0, raw.exclude).map(|e| e.1).collect();
    let role = |(id, s): (String, Signal)| Role {
        id,
        why: s.why,
        condition: s.condition,
    };
    let roles = section("role", 0, raw.role).map(role).collect();
    if require_count == 0 {
        let m = "needs at least one [[require]]: identity must never rest on support signals alone";
        error(id_at, m.into());
    }
    if has_roles && raw.kind != Kind::Platform {
        error(id_at, "only platforms have roles".into());
    }
    if !errors.is_empty() {
        return Err(RuleErrors(errors));
    }
    Ok(Fingerprint {
        id,
        name: raw.name,
        kind: raw.kind,
        vendor: raw.vendor,
        homepage: raw.homepage,
        lineage: raw.lineage,
        eol,
        successor: raw.successor,
        version_key: raw.version_key,
        version_file,
        fixtures: raw.fixtures,
        near_misses: raw.near_misses,
        require,
        support,
        exclude,
        roles,
        origin: origin.to_string(),
    })
}

/// `YYYY-MM-DD` → (y, m, d), validated.
pub fn parse_date(s: &str) -> Option<(i64, u32, u32)> {
    let mut it = s.split('-');
    let (y, m, d) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i64, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then_some((y, m, d))
}
