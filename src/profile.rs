//! The profile: what hostprint concludes about a root, and the JSON contract (`schema_version` 1).
//!
//! # Wire format (`--format json`)
//!
//! One JSON object. Keys are snake_case and always present in this order; an unknown value is `null`
//! (never omitted); lists may be empty. A change to a key or its meaning bumps `schema_version`.
//! `hostprint schema` prints the JSON Schema.
//!
//! ```text
//! schema_version  1
//! os              { id, version_id, name, pretty_name, variant_id, id_like[], source }
//!                   verbatim os-release values; source is the file that won (etc/os-release or
//!                   usr/lib/os-release) or null. Without a usable os-release (absent, empty, no ID) a
//!                   legacy release file fills it with the ids os-release would use (centos, rhel, amzn,
//!                   ubuntu, debian, alpine, sles, …); source names that file and a warning says so
//! identity        { id, name, kind, container_os, version, confidence, evidence[], lineage[], eol,
//!                   successor, closest[] }
//!                   id: a stable fingerprint id, or the os-release ID for a general-purpose host, or
//!                   null (unknown). kind: container-os | immutable-desktop | general-purpose | unknown.
//!                   container_os: true / false, null when kind is unknown (no evidence either way).
//!                   confidence 0..100. evidence[]: { signal, why, condition, weight } that held.
//!                   eol: YYYY-MM-DD or null. closest[]: { id, confidence } of the best other rules.
//!                   version: the system's own version: the rule's version_key (Kairos'
//!                   KAIROS_VERSION), else os-release VERSION_ID (Talos v1.9.0), else the legacy file's
//! platforms[]     { id, name, role, eol, evidence[] }      e.g. dcos with role master/agent/public-agent
//! components[]    { id, name, eol, evidence[], running, pids[] }   etcd, fleet, flannel, rkt, kubelet, …
//!                   installed per the rules, or running (--processes); running null unless asked
//! init            { pid1 { comm, exe, exe_error, cmdline[] }, system }
//! updates[]       { agent, channel, automatic, strategy, source }
//!                   channel: the stream or group the agent follows (Omaha GROUP, Fedora CoreOS stream,
//!                   snap channel, Bottlerocket version_lock, ostree refspec or image tag) or null.
//!                   automatic: true / false / null (null = its files cannot tell; never guessed).
//!                   strategy: in the agent's words (zincati immediate | periodic | fleet_lock,
//!                   REBOOT_STRATEGY, AutomaticUpdatePolicy, REBOOT_METHOD, refresh.timer) or null.
//!                   source: the path that showed the agent
//! lifecycle       { support_end, support_end_source, reboot_required, reboot_reason,
//!                   image { kind, reference, version } }
//!                   support_end: YYYY-MM-DD, the first day without support; support_end_source:
//!                   "os-release SUPPORT_END" or "fingerprint eol" (the identified rule's eol) or null.
//!                   reboot_required: true / false / null (null = no reboot signal is known for this
//!                   OS); reboot_reason: the file that says a reboot is required.
//!                   image.kind: ostree | bootc | a-b | sysupdate | null; reference: the ostree refspec
//!                   or image reference (with its transport) or sysupdate IMAGE_ID; version:
//!                   OSTREE_VERSION, IMAGE_VERSION, or for an A/B system identity.version
//! filesystem      { root_read_only, usr_read_only, ostree_booted }   each null when unknown
//! security        { selinux { enabled, mode, config_mode, policy }, apparmor { enabled } }
//! runtimes[]      { id, socket }
//! environment     { container, virtualization, cgroup }    systemd-detect-virt vocabulary;
//!                   container and virtualization null when the root holds no evidence: a tri-state
//!                   fact is never a confident "none" or false from an empty root
//! kernel          { release, cmdline[] }
//! host            { hostname, architecture, cpus, memory_bytes }
//! warnings[]      { code, path, message }   code: stable, kebab-case, one per kind (docs/warnings.md)
//! ```
//!
//! Nothing depends on the clock or on timing, so the same root gives the same bytes: whether
//! support_end has passed is the reader's question (PromQL `time()`).

use schemars::JsonSchema;
use serde::Serialize;

use crate::facts::os_release::OsRelease;
use crate::facts::{self, Facts};
use crate::root::Root;
use crate::rules::eval::{evaluate, version_of, Evaluation, Section};
use crate::rules::{parse_date, Kind, RuleSet};
use crate::warning::{Code, Warning};

pub const SCHEMA_VERSION: u32 = 1;

/// A support total at or above this, from a container OS that is not the identity (nor in its
/// lineage), is reported as conflicting evidence.
pub const CONFLICT_THRESHOLD: u32 = 50;

/// Confidence of the general-purpose fallback: the os-release `ID` says what it is, and no
/// container-OS rule claimed it.
pub const FALLBACK_CONFIDENCE: u32 = 60;

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Profile {
    pub schema_version: u32,
    pub os: Os,
    pub identity: Identity,
    pub platforms: Vec<Platform>,
    pub components: Vec<Component>,
    pub init: Init,
    pub updates: Vec<facts::update::UpdateAgent>,
    pub lifecycle: Lifecycle,
    pub filesystem: Filesystem,
    pub security: facts::security::Security,
    pub runtimes: Vec<facts::runtimes::Runtime>,
    pub environment: facts::environment::Environment,
    pub kernel: facts::kernel::Kernel,
    pub host: facts::host::Host,
    pub warnings: Vec<Warning>,
}

#[derive(Clone, Debug, Default, Serialize, JsonSchema)]
pub struct Os {
    pub id: Option<String>,
    pub version_id: Option<String>,
    pub name: Option<String>,
    pub pretty_name: Option<String>,
    pub variant_id: Option<String>,
    pub id_like: Vec<String>,
    pub source: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, JsonSchema)]
pub struct Identity {
    pub id: Option<String>,
    pub name: Option<String>,
    #[schemars(extend("enum" = ["container-os", "immutable-desktop", "general-purpose", "unknown"]))]
    pub kind: &'static str,
    /// Whether the identity is a container OS; null when the identity is unknown.
    pub container_os: Option<bool>,
    /// The system's own version: the rule's `version_key` (Kairos `KAIROS_VERSION`), else os-release
    /// `VERSION_ID` (Talos `v1.9.0`), else the legacy release file's version.
    pub version: Option<String>,
    #[schemars(range(max = 100))]
    pub confidence: u32,
    pub evidence: Vec<Evidence>,
    pub lineage: Vec<String>,
    pub eol: Option<String>,
    pub successor: Option<String>,
    pub closest: Vec<Candidate>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Evidence {
    pub signal: &'static str,
    pub why: String,
    pub condition: String,
    pub weight: u32,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Candidate {
    pub id: String,
    pub confidence: u32,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Platform {
    pub id: String,
    pub name: String,
    pub role: Option<String>,
    /// End of life of the platform itself (DC/OS: 2021-10-31), YYYY-MM-DD.
    pub eol: Option<String>,
    pub evidence: Vec<Evidence>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Component {
    pub id: String,
    pub name: String,
    /// End of life of the component (fleet: 2018-02-01), YYYY-MM-DD.
    pub eol: Option<String>,
    pub evidence: Vec<Evidence>,
    /// Whether a process of it runs (`--processes`); null when not asked, or for a component whose
    /// processes hostprint cannot recognise (rkt, which runs no daemon).
    pub running: Option<bool>,
    /// The ids of its processes, sorted; empty when it is not running or nobody asked.
    pub pids: Vec<u32>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Init {
    pub pid1: Pid1,
    pub system: Option<&'static str>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Pid1 {
    pub comm: Option<String>,
    pub exe: Option<String>,
    /// Why `exe` is null although PID 1 exists (reading it needs ptrace rights; EACCES is common).
    pub exe_error: Option<String>,
    pub cmdline: Vec<String>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Lifecycle {
    /// The first day without support, YYYY-MM-DD: os-release `SUPPORT_END`, else the rule's `eol`.
    pub support_end: Option<String>,
    /// Where `support_end` comes from.
    #[schemars(extend("enum" = ["os-release SUPPORT_END", "fingerprint eol", null]))]
    pub support_end_source: Option<&'static str>,
    /// Whether an installed update waits for a reboot; null when no reboot signal is known for this OS.
    pub reboot_required: Option<bool>,
    /// The file that says a reboot is required.
    pub reboot_reason: Option<String>,
    pub image: facts::lifecycle::Image,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Filesystem {
    pub root_read_only: Option<bool>,
    pub usr_read_only: Option<bool>,
    /// `null` when the root has no `run/` to tell by.
    pub ostree_booted: Option<bool>,
}

fn evidence_of(e: &Evaluation) -> Vec<Evidence> {
    e.held()
        .map(|(section, s)| Evidence {
            signal: section.as_str(),
            why: s.why.to_string(),
            condition: s.condition.to_string(),
            weight: s.weight,
        })
        .collect()
}

/// What a probe concludes: the profile (the JSON contract) and, beside it, the rules' evaluations
/// for `--explain` and the facts behind both, for formats that show more than the contract.
#[derive(Clone, Debug)]
pub struct Report<'r> {
    pub profile: Profile,
    /// Every rule's evaluation, matched first, then by weight held and id.
    pub explanation: Vec<Evaluation<'r>>,
    pub facts: Facts,
}

/// Probes `root`, matches `rules`, and builds the report.
pub fn build<'r>(root: &Root, rules: &'r RuleSet) -> Report<'r> {
    let facts = facts::collect(root, &rules.wanted());
    let _span = tracing::debug_span!("match").entered();
    let evaluations: Vec<Evaluation> = rules.rules.iter().map(|r| evaluate(r, &facts)).collect();
    for e in &evaluations {
        tracing::debug!(
            rule = %e.rule.id,
            candidate = e.candidate,
            score = e.score,
            "rule evaluated"
        );
    }
    let mut warnings = root.take_warnings();
    let (winner, mut found) = winner(&evaluations);
    let os = os(&facts);
    let mut identity = identity(winner, &os, &facts);
    identity.closest = closest(&evaluations, identity.id.as_deref());
    found.extend(conflicts(&evaluations, winner, identity.id.as_deref()));
    found.extend(bad_support_end(&facts.os_release));
    for w in found {
        if !warnings.contains(&w) {
            warnings.push(w);
        }
    }
    let profile = Profile {
        schema_version: SCHEMA_VERSION,
        lifecycle: lifecycle(&facts, &identity),
        os,
        identity,
        platforms: platforms(&evaluations),
        components: components(&evaluations),
        init: init(&facts),
        updates: facts.updates.clone(),
        filesystem: filesystem(&facts),
        security: facts.security.clone(),
        runtimes: facts.runtimes.clone(),
        environment: facts.environment.clone(),
        kernel: facts.kernel.clone(),
        host: facts.host.clone(),
        warnings,
    };
    Report {
        profile,
        explanation: explanation(evaluations),
        facts,
    }
}

fn init(facts: &Facts) -> Init {
    Init {
        pid1: Pid1 {
            comm: facts.pid1.comm.clone(),
            exe: facts.pid1.exe.clone(),
            exe_error: facts.pid1.exe_error.clone(),
            cmdline: facts.pid1.cmdline.clone(),
        },
        system: facts.init,
    }
}

fn filesystem(facts: &Facts) -> Filesystem {
    Filesystem {
        root_read_only: facts.mounts.root_read_only,
        usr_read_only: facts.mounts.usr_read_only,
        ostree_booted: facts.ostree_booted,
    }
}

/// The `os` block: os-release's values, or where it has no `ID`, a legacy release file's.
fn os(facts: &Facts) -> Os {
    if let Some(legacy) = &facts.legacy_release {
        return Os {
            id: Some(legacy.id.clone()),
            version_id: legacy.version_id.clone(),
            name: legacy.name.clone(),
            pretty_name: legacy.pretty_name.clone(),
            source: Some(legacy.source.clone()),
            ..Os::default()
        };
    }
    let os_release = &facts.os_release;
    let get = |key| os_release.get(key).map(str::to_string);
    Os {
        id: get("ID"),
        version_id: get("VERSION_ID"),
        name: get("NAME"),
        pretty_name: get("PRETTY_NAME"),
        variant_id: get("VARIANT_ID"),
        id_like: os_release.id_like(),
        source: os_release.source.clone(),
    }
}

/// The best OS candidate, and a warning when there were several. Ties go to the rule with more
/// require signals (the more specific claim), then to the id, so the answer never depends on file
/// order.
fn winner<'e, 'r>(evaluations: &'e [Evaluation<'r>]) -> (Option<&'e Evaluation<'r>>, Vec<Warning>) {
    let mut candidates: Vec<&Evaluation> = evaluations
        .iter()
        .filter(|e| e.candidate && e.rule.kind.is_os())
        .collect();
    candidates.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then(b.require_count().cmp(&a.require_count()))
            .then(a.rule.id.cmp(&b.rule.id))
    });
    let mut warnings = Vec::new();
    if let [first, others @ ..] = candidates.as_slice() {
        if !others.is_empty() {
            let others: Vec<_> = others
                .iter()
                .map(|e| format!("{} ({})", e.rule.id, e.score))
                .collect();
            let (id, score) = (&first.rule.id, first.score);
            warnings.push(Warning::general(
                Code::AmbiguousIdentity,
                format!(
                    "more than one OS rule matched: chose {id} ({score}) over {}",
                    others.join(", ")
                ),
            ));
        }
    }
    (candidates.first().copied(), warnings)
}

/// The winning rule's identity; without one, the general-purpose fallback on the `os` block's `ID`
/// (os-release's, or a legacy release file's), or unknown. `closest` is left empty.
fn identity(winner: Option<&Evaluation>, os: &Os, facts: &Facts) -> Identity {
    if let Some(e) = winner {
        return Identity {
            id: Some(e.rule.id.clone()),
            name: Some(e.rule.name.clone()),
            kind: e.rule.kind.as_str(),
            container_os: Some(e.rule.kind == Kind::ContainerOs),
            version: version_of(e.rule, facts),
            confidence: e.score,
            evidence: evidence_of(e),
            lineage: e.rule.lineage.clone(),
            eol: e.rule.eol.clone(),
            successor: e.rule.successor.clone(),
            closest: Vec::new(),
        };
    }
    let Some(id) = os.id.as_deref().filter(|id| !id.is_empty()) else {
        return Identity {
            kind: "unknown",
            ..Identity::default()
        };
    };
    let why = match facts.legacy_release {
        None => "no container-OS rule matched; the os-release ID names the distribution",
        Some(_) => "no container-OS rule matched and there is no usable os-release; a legacy release file names the distribution",
    };
    Identity {
        id: Some(id.to_string()),
        name: os.name.clone().or(os.pretty_name.clone()),
        kind: Kind::GeneralPurpose.as_str(),
        container_os: Some(false),
        version: os.version_id.clone(),
        confidence: FALLBACK_CONFIDENCE,
        evidence: vec![Evidence {
            signal: "fallback",
            why: why.into(),
            condition: format!(
                "{} ID = {id:?}",
                os.source.as_deref().unwrap_or("os-release")
            ),
            weight: FALLBACK_CONFIDENCE,
        }],
        lineage: os.id_like.clone(),
        ..Identity::default()
    }
}

/// `lifecycle`: the support end (os-release `SUPPORT_END`, else the identity's `eol`), the reboot
/// signal, and the image, whose version on an A/B system is the system's own.
fn lifecycle(facts: &Facts, identity: &Identity) -> Lifecycle {
    let os_release = &facts.os_release;
    let (support_end, support_end_source) = match os_release
        .get("SUPPORT_END")
        .filter(|d| parse_date(d).is_some())
    {
        Some(date) => (Some(date.to_string()), Some(SUPPORT_END_OS_RELEASE)),
        None => (
            identity.eol.clone(),
            identity.eol.as_ref().map(|_| SUPPORT_END_FINGERPRINT),
        ),
    };
    let found = &facts.lifecycle;
    let mut image = found.image.clone();
    if image.kind == Some("a-b") {
        image.version = identity.version.clone();
    }
    Lifecycle {
        support_end,
        support_end_source,
        reboot_required: found.reboot.required,
        reboot_reason: found.reboot.reason.clone(),
        image,
    }
}

/// `lifecycle.support_end_source` when the date is os-release's `SUPPORT_END`.
pub const SUPPORT_END_OS_RELEASE: &str = "os-release SUPPORT_END";
/// `lifecycle.support_end_source` when the date is the identified rule's `eol`.
pub const SUPPORT_END_FINGERPRINT: &str = "fingerprint eol";

/// A `SUPPORT_END` that is not a date is ignored, and said so.
fn bad_support_end(os_release: &OsRelease) -> Option<Warning> {
    let bad = os_release
        .get("SUPPORT_END")
        .filter(|d| parse_date(d).is_none())?;
    Some(Warning::at(
        Code::MalformedValue,
        os_release.source.as_deref().unwrap_or("os-release"),
        format!("SUPPORT_END {bad:?} is not a YYYY-MM-DD date; ignored"),
    ))
}

/// Conflicting evidence: a container OS whose markers are strongly present although os-release (its
/// require) says otherwise. Relatives in the identity's lineage are expected to leave traces (a
/// Flatcar host keeps CoreOS compatibility links), so they are not conflicts.
fn conflicts(
    evaluations: &[Evaluation],
    winner: Option<&Evaluation>,
    identity: Option<&str>,
) -> Vec<Warning> {
    let lineage: &[String] = winner.map_or(&[], |w| &w.rule.lineage);
    evaluations
        .iter()
        .filter(|e| {
            !e.candidate
                && e.rule.kind == Kind::ContainerOs
                && e.support_score >= CONFLICT_THRESHOLD
                && Some(e.rule.id.as_str()) != identity
                && !lineage.contains(&e.rule.id)
                && !e.rule.lineage.iter().any(|l| Some(l.as_str()) == identity)
        })
        .map(|e| {
            let held: Vec<_> = e
                .held()
                .filter(|&(section, _)| section == Section::Support)
                .map(|(_, s)| s.condition.to_string())
                .collect();
            Warning::general(
                Code::ConflictingEvidence,
                format!(
                    "conflicting evidence: os-release says {}, but markers of {} are present ({})",
                    identity.unwrap_or("nothing"),
                    e.rule.id,
                    held.join("; ")
                ),
            )
        })
        .collect()
}

fn platforms(evaluations: &[Evaluation]) -> Vec<Platform> {
    evaluations
        .iter()
        .filter(|e| e.candidate && e.rule.kind == Kind::Platform)
        .map(|e| Platform {
            id: e.rule.id.clone(),
            name: e.rule.name.clone(),
            role: e.role.map(str::to_string),
            eol: e.rule.eol.clone(),
            evidence: evidence_of(e),
        })
        .collect()
}

fn components(evaluations: &[Evaluation]) -> Vec<Component> {
    let mut components: Vec<Component> = evaluations
        .iter()
        .filter(|e| e.candidate && e.rule.kind == Kind::Component)
        .map(|e| Component {
            id: e.rule.id.clone(),
            name: e.rule.name.clone(),
            eol: e.rule.eol.clone(),
            evidence: evidence_of(e),
            running: None,
            pids: Vec::new(),
        })
        .collect();
    components.sort_by(|a, b| a.id.cmp(&b.id));
    components
}

/// Matched rules first, then the nearest misses: the first screen of `--explain` is the useful one.
fn explanation(mut evaluations: Vec<Evaluation>) -> Vec<Evaluation> {
    evaluations.sort_by(|a, b| {
        b.candidate
            .cmp(&a.candidate)
            .then(b.score.cmp(&a.score))
            .then(a.rule.id.cmp(&b.rule.id))
    });
    evaluations
}

/// The best OS rules other than the identity, by weight held, for "what was closest".
fn closest(evaluations: &[Evaluation], identity: Option<&str>) -> Vec<Candidate> {
    let mut others: Vec<_> = evaluations
        .iter()
        .filter(|e| e.rule.kind.is_os() && Some(e.rule.id.as_str()) != identity && e.score > 0)
        .collect();
    others.sort_by(|a, b| b.score.cmp(&a.score).then(a.rule.id.cmp(&b.rule.id)));
    others
        .into_iter()
        .take(3)
        .map(|e| Candidate {
            id: e.rule.id.to_string(),
            confidence: e.score,
        })
        .collect()
}
