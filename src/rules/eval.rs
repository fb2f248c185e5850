//! Matching rules against facts.
//!
//! Pure: a rule and the facts in, an [`Evaluation`] out (which signals held, which failed, the score).
//! The semantics are those documented in `fingerprints/README.md`: all `require` hold and no `exclude`
//! holds → candidate; score = weights of held require + support, capped at 100.

use std::sync::Arc;

use crate::facts::Facts;
use crate::root::FileKind;

use super::{Condition, Fingerprint, FsFlag, Matcher, PathKind, Pid1Field, Signal};

/// One signal's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub section: Section,
    pub why: Arc<str>,
    pub condition: Arc<str>,
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
#[derive(Clone, Debug)]
pub struct Evaluation<'r> {
    pub rule: &'r Fingerprint,
    pub outcomes: Vec<Outcome>,
    pub candidate: bool,
    /// Weight held by require + support, capped at 100.
    pub score: u32,
    /// Weight held by support signals alone (for conflict reporting).
    pub support_score: u32,
    /// The first role whose condition holds (platforms).
    pub role: Option<&'r str>,
}

impl Evaluation<'_> {
    pub fn held(&self) -> impl Iterator<Item = &Outcome> {
        self.outcomes
            .iter()
            .filter(|o| o.held && o.section != Section::Exclude)
    }

    pub fn require_count(&self) -> usize {
        self.rule.require.len()
    }
}

pub fn evaluate<'r>(rule: &'r Fingerprint, facts: &Facts) -> Evaluation<'r> {
    let mut outcomes = Vec::new();
    let mut run = |section: Section, signals: &[Signal]| {
        let mut all = true;
        let mut any = false;
        let mut weight = 0u32;
        for s in signals {
            let held = holds(&s.condition, facts);
            all &= held;
            any |= held;
            if held {
                weight += s.weight;
            }
            outcomes.push(Outcome {
                section,
                why: s.why.clone(),
                condition: s.condition_text.clone(),
                weight: s.weight,
                held,
            });
        }
        (all, any, weight)
    };
    let (required, _, require_weight) = run(Section::Require, &rule.require);
    let (_, _, support_weight) = run(Section::Support, &rule.support);
    let (_, excluded, _) = run(Section::Exclude, &rule.exclude);
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
        outcomes,
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
            facts.os_release.fields.get(key).map(String::as_str),
            matcher,
        ),
        Condition::KvFile { path, key, matcher } => value_matches(
            facts
                .kv_files
                .get(path)
                .and_then(|f| f.get(key))
                .map(String::as_str),
            matcher,
        ),
        Condition::Path { path, kind } => {
            let Some(fact) = facts.paths.get(path) else {
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
            facts.paths.get(path).and_then(|f| f.link_target.as_deref()) == Some(target.as_str())
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
        Condition::UpdateAgent(v) => facts.updates.iter().any(|u| u.agent == v),
        Condition::Runtime(v) => facts.runtimes.iter().any(|r| r.id == v),
        Condition::CmdlineHas(k) => facts.kernel.param(k).is_some(),
        Condition::CmdlineEquals(w) => facts.kernel.cmdline.iter().any(|x| x == w),
        Condition::SelinuxPolicy(p) => facts.security.selinux.policy.as_deref() == Some(p),
        Condition::SelinuxMode(m) => facts.security.selinux.mode.as_deref() == Some(m),
        Condition::Fs(flag) => match flag {
            FsFlag::RootReadOnly => facts.mounts.root_read_only == Some(true),
            FsFlag::UsrReadOnly => facts.mounts.usr_read_only == Some(true),
            FsFlag::OstreeBooted => facts.ostree_booted,
        },
        Condition::Any(cs) => cs.iter().any(|c| holds(c, facts)),
        Condition::All(cs) => cs.iter().all(|c| holds(c, facts)),
    }
}

fn value_matches(value: Option<&str>, matcher: &Matcher) -> bool {
    match (matcher, value) {
        (Matcher::Present(want), v) => v.is_some() == *want,
        (_, None) => false,
        (Matcher::Equals(x), Some(v)) => v == x,
        (Matcher::OneOf(xs), Some(v)) => xs.iter().any(|x| x == v),
        (Matcher::HasWord(x), Some(v)) => v.split_whitespace().any(|w| w == x),
        (Matcher::Prefix(x), Some(v)) => v.starts_with(x.as_str()),
    }
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
