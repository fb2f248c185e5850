//! The rule file format, its validation, and the types a valid file becomes.
//!
//! This is the single place that decides whether a rule is valid, for `--fingerprints DIR`,
//! `fingerprints --check` and the shipped rules: `build.rs` compiles this file (with `src/text.rs`)
//! to validate them at build time, hence the narrow imports (serde, toml, thiserror, `crate::text`).
//! Errors name `file:line`.

use std::fmt;

use serde::Deserialize;
use toml::Spanned;

use crate::text::{is_plain, line_of, normalize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathKind {
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsFlag {
    RootReadOnly,
    UsrReadOnly,
    OstreeBooted,
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::OsRelease { key, matcher } => write!(f, "os-release {key} {matcher}"),
            Condition::Path { path, kind } => match kind {
                PathKind::Any => write!(f, "/{path} exists"),
                k => write!(f, "/{path} is a {}", format!("{k:?}").to_lowercase()),
            },
            Condition::LinkTarget { path, target } => write!(f, "/{path} -> {target}"),
            Condition::KvFile { path, key, matcher } => write!(f, "/{path} {key} {matcher}"),
            Condition::Pid1 { field, value } => {
                write!(
                    f,
                    "PID 1 {} is {value:?}",
                    format!("{field:?}").to_lowercase()
                )
            }
            Condition::Init(v) => write!(f, "init system is {v}"),
            Condition::UpdateAgent(v) => write!(f, "update agent {v} present"),
            Condition::Runtime(v) => write!(f, "runtime {v} socket present"),
            Condition::CmdlineHas(v) => write!(f, "kernel command line has {v}"),
            Condition::CmdlineEquals(v) => write!(f, "kernel command line has {v:?}"),
            Condition::SelinuxPolicy(v) => write!(f, "SELinux policy is {v}"),
            Condition::SelinuxMode(v) => write!(f, "SELinux mode is {v}"),
            Condition::Fs(flag) => write!(
                f,
                "{}",
                match flag {
                    FsFlag::RootReadOnly => "/ is mounted read-only",
                    FsFlag::UsrReadOnly => "/usr is mounted read-only",
                    FsFlag::OstreeBooted => "booted from an OSTree deployment",
                }
            ),
            Condition::Any(cs) => write!(f, "any of ({})", join(cs, " | ")),
            Condition::All(cs) => write!(f, "all of ({})", join(cs, " & ")),
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

/// How deep `any`/`all` may nest. Real rules use one level, two at most; evaluating and rendering a
/// condition recurse once per level, so [`parse_file`] refuses deeper ones.
pub const MAX_NESTING: usize = 8;

impl Condition {
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

fn join(cs: &[Condition], sep: &str) -> String {
    cs.iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(sep)
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

/// A rule-file error, located.
/// Line 0 means the error is about the file as a whole (unreadable, too large): no `:0` is shown.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", if *line == 0 { String::new() } else { format!(":{line}") })]
pub struct RuleError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

// ---- the file format, as serde sees it ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    id: Spanned<String>,
    name: String,
    kind: Spanned<String>,
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
    os_release: Option<RawKeyMatch>,
    path: Option<RawPath>,
    kv_file: Option<RawKvFile>,
    pid1: Option<RawPid1>,
    init: Option<String>,
    update_agent: Option<String>,
    runtime: Option<String>,
    cmdline: Option<RawCmdline>,
    selinux: Option<RawSelinux>,
    fs: Option<String>,
    any: Option<Vec<RawCondition>>,
    all: Option<Vec<RawCondition>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeyMatch {
    key: String,
    equals: Option<String>,
    one_of: Option<Vec<String>>,
    has_word: Option<String>,
    present: Option<bool>,
    prefix: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKvFile {
    path: String,
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
    kind: Option<String>,
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

fn matcher(
    equals: Option<String>,
    one_of: Option<Vec<String>>,
    has_word: Option<String>,
    present: Option<bool>,
    prefix: Option<String>,
) -> Result<Matcher, String> {
    let mut found = Vec::new();
    if let Some(v) = equals {
        found.push(Matcher::Equals(v));
    }
    if let Some(v) = one_of {
        found.push(Matcher::OneOf(v));
    }
    if let Some(v) = has_word {
        found.push(Matcher::HasWord(v));
    }
    if let Some(v) = present {
        found.push(Matcher::Present(v));
    }
    if let Some(v) = prefix {
        found.push(Matcher::Prefix(v));
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err("needs one of equals, one_of, has_word, present, prefix".into()),
        _ => Err("has more than one of equals, one_of, has_word, present, prefix".into()),
    }
}

fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty()
        || !id
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_')
    {
        return Err(format!(
            "id {id:?} must be lowercase letters, digits, '-' or '_'"
        ));
    }
    Ok(())
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
        false => Err(inside_the_root(path)),
    }
}

fn inside_the_root(path: &str) -> String {
    format!("path {path:?} must name a place inside the root, without '..'")
}

impl RawCondition {
    /// A nested condition: only condition keys.
    fn build_nested(self) -> Result<Condition, String> {
        if self.why.is_some() || self.weight.is_some() || self.id.is_some() {
            return Err("an inner condition of any/all takes no why, weight or id".into());
        }
        self.build()
    }

    fn build(self) -> Result<Condition, String> {
        let mut out = Vec::new();
        if let Some(m) = self.os_release {
            out.push(Condition::OsRelease {
                key: m.key,
                matcher: matcher(m.equals, m.one_of, m.has_word, m.present, m.prefix)?,
            });
        }
        if let Some(p) = self.path {
            let path = relative(&p.path)?;
            match (p.link_target, p.kind) {
                (Some(target), None) => out.push(Condition::LinkTarget { path, target }),
                (Some(_), Some(_)) => return Err("path: use either type or link_target".into()),
                (None, kind) => {
                    let kind = match kind.as_deref().unwrap_or("any") {
                        "any" => PathKind::Any,
                        "file" => PathKind::File,
                        "dir" => PathKind::Dir,
                        "symlink" => PathKind::Symlink,
                        "socket" => PathKind::Socket,
                        "fifo" => PathKind::Fifo,
                        "device" => PathKind::Device,
                        other => return Err(format!(
                            "path type {other:?} is not one of any, file, dir, symlink, socket, fifo, device"
                        )),
                    };
                    out.push(Condition::Path { path, kind });
                }
            }
        }
        if let Some(k) = self.kv_file {
            out.push(Condition::KvFile {
                path: relative(&k.path)?,
                key: k.key,
                matcher: matcher(k.equals, k.one_of, k.has_word, k.present, k.prefix)?,
            });
        }
        if let Some(p) = self.pid1 {
            let fields = [
                (Pid1Field::Comm, p.comm),
                (Pid1Field::Exe, p.exe),
                (Pid1Field::Argv0, p.argv0),
            ];
            let set: Vec<_> = fields
                .into_iter()
                .filter_map(|(f, v)| v.map(|v| (f, v)))
                .collect();
            if set.len() != 1 {
                return Err("pid1 needs exactly one of comm, exe, argv0".into());
            }
            let (field, value) = set.into_iter().next().expect("checked above");
            out.push(Condition::Pid1 { field, value });
        }
        if let Some(v) = self.init {
            out.push(Condition::Init(v));
        }
        if let Some(v) = self.update_agent {
            out.push(Condition::UpdateAgent(v));
        }
        if let Some(v) = self.runtime {
            out.push(Condition::Runtime(v));
        }
        if let Some(c) = self.cmdline {
            match (c.has, c.equals) {
                (Some(h), None) => out.push(Condition::CmdlineHas(h)),
                (None, Some(e)) => out.push(Condition::CmdlineEquals(e)),
                _ => return Err("cmdline needs exactly one of has, equals".into()),
            }
        }
        if let Some(s) = self.selinux {
            match (s.policy, s.mode) {
                (Some(p), None) => out.push(Condition::SelinuxPolicy(p)),
                (None, Some(m)) => out.push(Condition::SelinuxMode(m)),
                _ => return Err("selinux needs exactly one of policy, mode".into()),
            }
        }
        if let Some(v) = self.fs {
            let flag = match v.as_str() {
                "root_read_only" => FsFlag::RootReadOnly,
                "usr_read_only" => FsFlag::UsrReadOnly,
                "ostree_booted" => FsFlag::OstreeBooted,
                other => {
                    return Err(format!(
                        "fs {other:?} is not one of root_read_only, usr_read_only, ostree_booted"
                    ))
                }
            };
            out.push(Condition::Fs(flag));
        }
        for (list, wrap) in [
            (self.any, Condition::Any as fn(Vec<Condition>) -> Condition),
            (self.all, Condition::All),
        ] {
            if let Some(inner) = list {
                if inner.is_empty() {
                    return Err("any/all needs at least one condition".into());
                }
                let built = inner
                    .into_iter()
                    .map(RawCondition::build_nested)
                    .collect::<Result<Vec<_>, _>>()?;
                out.push(wrap(built));
            }
        }
        match out.len() {
            1 => Ok(out.remove(0)),
            0 => Err("has no condition (os_release, path, kv_file, pid1, init, update_agent, runtime, cmdline, selinux, fs, any, all)".into()),
            _ => Err("has more than one condition; use `all = [...]` to combine them".into()),
        }
    }
}

/// A condition within [`MAX_NESTING`].
fn shallow(c: Condition) -> Result<Condition, String> {
    match c.depth() > MAX_NESTING {
        true => Err(format!("nests any/all more than {MAX_NESTING} deep")),
        false => Ok(c),
    }
}

/// Parses one rule file. `origin` names it in errors.
pub fn parse_file(origin: &str, text: &str) -> Result<Fingerprint, RuleError> {
    let err = |offset: usize, message: String| RuleError {
        file: origin.to_string(),
        line: line_of(text, offset),
        message,
    };
    let raw: RawFile = toml::from_str(text).map_err(|e| RuleError {
        file: origin.to_string(),
        line: e.span().map(|s| line_of(text, s.start)).unwrap_or(1),
        message: e.message().trim().to_string(),
    })?;
    let id_span = raw.id.span().start;
    let id = raw.id.into_inner();
    check_id(&id).map_err(|m| err(id_span, m))?;
    let kind_span = raw.kind.span().start;
    let kind = match raw.kind.into_inner().as_str() {
        "container-os" => Kind::ContainerOs,
        "immutable-desktop" => Kind::ImmutableDesktop,
        "general-purpose" => Kind::GeneralPurpose,
        "platform" => Kind::Platform,
        "component" => Kind::Component,
        other => {
            return Err(err(
                kind_span,
                format!("kind {other:?} is not one of container-os, immutable-desktop, general-purpose, platform, component"),
            ))
        }
    };
    let eol = match raw.eol {
        Some(e) => {
            let span = e.span().start;
            let date = e.into_inner();
            if parse_date(&date).is_none() {
                return Err(err(span, format!("eol {date:?} is not a YYYY-MM-DD date")));
            }
            Some(date)
        }
        None => None,
    };
    let version_file = match raw.version_file {
        Some(f) => {
            let span = f.span().start;
            if raw.version_key.is_none() {
                return Err(err(span, "version_file needs a version_key to read".into()));
            }
            Some(relative(f.get_ref()).map_err(|m| err(span, format!("version_file {m}")))?)
        }
        None => None,
    };
    let signals = |list: Vec<Spanned<RawCondition>>, default: u32, section: &str| {
        list.into_iter()
            .map(|s| {
                let at = s.span().start;
                let mut raw = s.into_inner();
                let why = raw
                    .why
                    .take()
                    .filter(|w| !w.trim().is_empty())
                    .ok_or_else(|| err(at, format!("[[{section}]] needs a `why`")))?;
                let weight = raw.weight.take().unwrap_or(default);
                if weight > 100 {
                    return Err(err(
                        at,
                        format!("[[{section}]] weight {weight} is over 100"),
                    ));
                }
                if raw.id.is_some() {
                    return Err(err(
                        at,
                        format!("[[{section}]] takes no id (only [[role]] does)"),
                    ));
                }
                let condition = raw
                    .build()
                    .and_then(shallow)
                    .map_err(|m| err(at, format!("[[{section}]] {m}")))?;
                Ok(Signal {
                    why,
                    weight,
                    condition,
                })
            })
            .collect::<Result<Vec<_>, RuleError>>()
    };
    let require = signals(raw.require, 40, "require")?;
    let support = signals(raw.support, 15, "support")?;
    let exclude = signals(raw.exclude, 0, "exclude")?;
    if require.is_empty() {
        return Err(err(
            id_span,
            "needs at least one [[require]]: identity must never rest on support signals alone"
                .into(),
        ));
    }
    let roles = raw
        .role
        .into_iter()
        .map(|r| {
            let at = r.span().start;
            let mut raw = r.into_inner();
            let id = raw
                .id
                .take()
                .ok_or_else(|| err(at, "[[role]] needs an `id`".into()))?;
            let why = raw
                .why
                .take()
                .ok_or_else(|| err(at, "[[role]] needs a `why`".into()))?;
            if raw.weight.is_some() {
                return Err(err(at, "[[role]] takes no weight".into()));
            }
            let condition = raw
                .build()
                .and_then(shallow)
                .map_err(|m| err(at, format!("[[role]] {m}")))?;
            Ok(Role { id, why, condition })
        })
        .collect::<Result<Vec<_>, RuleError>>()?;
    if !roles.is_empty() && kind != Kind::Platform {
        return Err(err(id_span, "only platforms have roles".into()));
    }
    Ok(Fingerprint {
        id,
        name: raw.name,
        kind,
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
