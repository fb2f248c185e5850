//! Matching rules against facts.
//!
//! Pure: a rule and the facts in, an [`Evaluation`] out (which signals held, which failed, the score).
//! The semantics are those documented in `fingerprints/README.md`: all `require` hold and no `exclude`
//! holds → candidate; score = weights of held require + support, capped at 100.

use crate::facts::Facts;
use crate::root::FileKind;

use super::{Condition, Fingerprint, FsFlag, Matcher, PathKind, Pid1Field, Signal};

/// One signal's outcome, for showing: [`Evaluation::outcomes`] makes them when they are shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub section: Section,
    pub why: String,
    /// The condition, rendered (`/etc/flatcar exists`).
    pub condition: String,
    pub weight: u32,
    pub held: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    Require,
    Support,
    Exclude,
}

impl Section {
    pub fn as_str(self) -> &'static str {
        match self {
            Section::Require => "require",
            Section::Support => "support",
            Section::Exclude => "exclude",
        }
    }
}

/// A rule evaluated against the facts.
///
/// It keeps one bit per signal and borrows the rule: the texts of the few signals shown are looked
/// up when shown ([`Evaluation::outcomes`]).
#[derive(Clone, Debug)]
pub struct Evaluation<'r> {
    pub rule: &'r Fingerprint,
    /// Whether each signal held, in the rule's order: require, then support, then exclude.
    pub held: Vec<bool>,
    pub candidate: bool,
    /// Weight held by require + support, capped at 100.
    pub score: u32,
    /// Weight held by support signals alone (for conflict reporting).
    pub support_score: u32,
    /// The first role whose condition holds (platforms).
    pub role: Option<&'r str>,
}

impl<'r> Evaluation<'r> {
    /// Every signal with whether it held, in the rule's order.
    pub fn signals(&self) -> impl Iterator<Item = (Section, &'r Signal, bool)> + '_ {
        let rule = self.rule;
        let sections = [
            (Section::Require, &rule.require),
            (Section::Support, &rule.support),
            (Section::Exclude, &rule.exclude),
        ];
        sections
            .into_iter()
            .flat_map(|(section, signals)| signals.iter().map(move |s| (section, s)))
            .zip(self.held.iter())
            .map(|((section, s), &held)| (section, s, held))
    }

    /// Every signal's outcome, rendered (for `--explain`).
    pub fn outcomes(&self) -> impl Iterator<Item = Outcome> + '_ {
        self.signals().map(|(section, s, held)| Outcome {
            section,
            why: s.why.clone(),
            condition: s.condition.to_string(),
            weight: s.weight,
            held,
        })
    }

    /// The require and support signals that held (the evidence for a match).
    pub fn held(&self) -> impl Iterator<Item = (Section, &'r Signal)> + '_ {
        self.signals()
            .filter(|&(section, _, held)| held && section != Section::Exclude)
            .map(|(section, s, _)| (section, s))
    }

    pub fn require_count(&self) -> usize {
        self.rule.require.len()
    }
}

pub fn evaluate<'r>(rule: &'r Fingerprint, facts: &Facts) -> Evaluation<'r> {
    let mut held = Vec::with_capacity(rule.require.len() + rule.support.len() + rule.exclude.len());
    let mut run = |signals: &[Signal]| {
        let mut all = true;
        let mut any = false;
        let mut weight = 0u32;
        for s in signals {
            let h = holds(&s.condition, facts);
            all &= h;
            any |= h;
            if h {
                weight += s.weight;
            }
            held.push(h);
        }
        (all, any, weight)
    };
    let (required, _, require_weight) = run(&rule.require);
    let (_, _, support_weight) = run(&rule.support);
    let (_, excluded, _) = run(&rule.exclude);
    let candidate = required && !excluded;
    let role = if candidate {
        rule.roles
            .iter()
            .find(|r| holds(&r.condition, facts))
            .map(|r| r.id.as_str())
    } else {
        None
    };
    Evaluation {
        rule,
        held,
        candidate,
        score: (require_weight + support_weight).min(100),
        support_score: support_weight,
        role,
    }
}

/// Whether a condition holds over the facts.
pub fn holds(c: &Condition, facts: &Facts) -> bool {
    match c {
        Condition::OsRelease { key, matcher } => value_matches(
            facts
                .os_release
                .fields
                .get(key.as_str())
                .map(String::as_str),
            matcher,
        ),
        Condition::KvFile { path, key, matcher } => value_matches(
            facts
                .kv_files
                .get(path.as_str())
                .and_then(|f| f.get(key.as_str()))
                .map(String::as_str),
            matcher,
        ),
        Condition::Path { path, kind } => {
            let Some(fact) = facts.paths.get(path.as_str()) else {
                return false;
            };
            match kind {
                PathKind::Symlink => fact.link_target.is_some(),
                _ => match fact.kind {
                    None => false,
                    Some(k) => match kind {
                        PathKind::Any => true,
                        PathKind::File => k == FileKind::File,
                        PathKind::Dir => k == FileKind::Dir,
                        PathKind::Socket => k == FileKind::Socket,
                        PathKind::Fifo => k == FileKind::Fifo,
                        PathKind::Device => {
                            matches!(k, FileKind::CharDevice | FileKind::BlockDevice)
                        }
                        PathKind::Symlink => unreachable!("handled above"),
                    },
                },
            }
        }
        Condition::LinkTarget { path, target } => {
            facts
                .paths
                .get(path.as_str())
                .and_then(|f| f.link_target.as_deref())
                == Some(target.as_str())
        }
        Condition::Pid1 { field, value } => {
            let actual = match field {
                Pid1Field::Comm => facts.pid1.comm.as_deref(),
                Pid1Field::Exe => facts.pid1.exe.as_deref(),
                Pid1Field::Argv0 => facts.pid1.argv0(),
            };
            actual == Some(value.as_str())
        }
        Condition::Init(v) => facts.init == Some(v.as_str()),
        Condition::UpdateAgent(v) => facts.updates.iter().any(|u| u.agent == v.as_str()),
        Condition::Runtime(v) => facts.runtimes.iter().any(|r| r.id == v.as_str()),
        Condition::CmdlineHas(k) => facts.kernel.param(k).is_some(),
        Condition::CmdlineEquals(w) => facts.kernel.cmdline.iter().any(|x| x == w.as_str()),
        Condition::SelinuxPolicy(p) => facts.security.selinux.policy.as_deref() == Some(p),
        Condition::SelinuxMode(m) => facts.security.selinux.mode.as_deref() == Some(m),
        Condition::Fs(flag) => match flag {
            FsFlag::RootReadOnly => facts.mounts.root_read_only == Some(true),
            FsFlag::UsrReadOnly => facts.mounts.usr_read_only == Some(true),
            FsFlag::OstreeBooted => facts.ostree_booted == Some(true),
        },
        Condition::Any(cs) => cs.iter().any(|c| holds(c, facts)),
        Condition::All(cs) => cs.iter().all(|c| holds(c, facts)),
    }
}

fn value_matches(value: Option<&str>, matcher: &Matcher) -> bool {
    match (matcher, value) {
        (Matcher::Present(want), v) => v.is_some() == *want,
        (_, None) => false,
        (Matcher::Equals(x), Some(v)) => v == x.as_str(),
        (Matcher::OneOf(xs), Some(v)) => xs.iter().any(|x| x == v),
        (Matcher::HasWord(x), Some(v)) => v.split_whitespace().any(|w| w == x.as_str()),
        (Matcher::Prefix(x), Some(v)) => v.starts_with(x.as_str()),
    }
}

/// The system's own version (`identity.version`) for a host identified by `rule`: the rule's
/// `version_key` in its `version_file`, then in os-release; else, or when neither has the key,
/// os-release's `VERSION_ID`.
pub fn version_of(rule: &Fingerprint, facts: &Facts) -> Option<String> {
    let os_release = |key: &str| facts.os_release.get(key).filter(|v| !v.is_empty());
    let own = rule.version_key.as_deref().and_then(|key| {
        let file = rule
            .version_file
            .as_deref()
            .and_then(|f| facts.kv_files.get(f))
            .and_then(|fields| fields.get(key))
            .filter(|v| !v.is_empty());
        file.map(String::as_str).or_else(|| os_release(key))
    });
    own.or_else(|| os_release("VERSION_ID")).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers() {
        assert!(value_matches(
            Some("rhel fedora"),
            &Matcher::HasWord("fedora".into())
        ));
        assert!(!value_matches(
            Some("rhelfedora"),
            &Matcher::HasWord("fedora".into())
        ));
        assert!(value_matches(None, &Matcher::Present(false)));
        assert!(!value_matches(None, &Matcher::Equals("".into())));
        assert!(value_matches(Some(""), &Matcher::Equals("".into())));
        assert!(value_matches(Some("v1.5.8"), &Matcher::Prefix("v".into())));
        assert!(value_matches(
            Some("scos"),
            &Matcher::OneOf(vec!["rhcos".into(), "scos".into()])
        ));
    }
}
