//! A warning about the root's content: one entry of the JSON profile's `warnings[]`, so part of the
//! JSON contract (`hostprint schema` derives its shape from this type).
//!
//! Reads raise warnings (a file unreadable, of the wrong kind, truncated, not UTF-8), probes add what
//! they find malformed, and the profile adds conflicting evidence. `code` says which kind of warning it
//! is, stable and kebab-case, so that monitoring can filter on it (`hostprint_warnings{code=…}`); the
//! codes are documented in one table, docs/warnings.md, which a test keeps in step with [`Code`].
//! `path` is the file it is about, relative to the root, or `null` for a warning about the whole root.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema, Deserialize)]
pub struct Warning {
    pub code: Code,
    pub path: Option<String>,
    pub message: String,
}

/// The kind of a warning. A code, once shipped, is never renamed: alerts name it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    /// A path exists but could not be resolved or read (permission denied, a symlink loop, …).
    Unreadable,
    /// A path is not of the kind expected (a FIFO, device or directory where a file belongs, a file
    /// where a socket belongs).
    WrongKind,
    /// `hostprint record` withheld the file as a possible secret.
    Withheld,
    /// A file is longer than hostprint reads of it; only its beginning was used.
    Truncated,
    /// A file is not valid UTF-8; the invalid bytes were replaced.
    NotUtf8,
    /// A directory holds more entries than hostprint looks at.
    TooManyEntries,
    /// A line of a `KEY=value` file or of a mount table could not be parsed.
    MalformedLine,
    /// A file read as a whole (TOML, JSON) could not be parsed; what it would tell is unknown.
    MalformedFile,
    /// A value is not in its documented form (os-release `SUPPORT_END` not a date); it was ignored.
    MalformedValue,
    /// os-release has no `ID`, `NAME` or `PRETTY_NAME`.
    OsReleaseIncomplete,
    /// `usr/lib/os-release` was not consulted: `etc/os-release` exists but cannot be used.
    OsReleaseUnusable,
    /// No usable os-release: the distribution is named by a legacy release file.
    LegacyReleaseFile,
    /// A `proc/*/ns/*` entry is not a namespace link.
    NotANamespaceLink,
    /// A container marker (`/.dockerenv`, …) on a host whose PID 1 is in the initial namespaces.
    StaleContainerMarker,
    /// The root's `.hostprint-manifest.toml` is malformed and was ignored.
    BadManifest,
    /// The root carries a `.hostprint-manifest.toml` but is a running host, not a recording.
    ManifestIgnored,
    /// A probe failed unexpectedly; its facts are missing.
    ProbeFailed,
    /// More than one OS rule matched.
    AmbiguousIdentity,
    /// Markers of one container OS are present although os-release names another.
    ConflictingEvidence,
}

impl Code {
    /// Every code, in the order of the table in docs/warnings.md.
    pub const ALL: [Code; 19] = [
        Code::Unreadable,
        Code::WrongKind,
        Code::Withheld,
        Code::Truncated,
        Code::NotUtf8,
        Code::TooManyEntries,
        Code::MalformedLine,
        Code::MalformedFile,
        Code::MalformedValue,
        Code::OsReleaseIncomplete,
        Code::OsReleaseUnusable,
        Code::LegacyReleaseFile,
        Code::NotANamespaceLink,
        Code::StaleContainerMarker,
        Code::BadManifest,
        Code::ManifestIgnored,
        Code::ProbeFailed,
        Code::AmbiguousIdentity,
        Code::ConflictingEvidence,
    ];

    /// The code as the JSON and Prometheus outputs write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Unreadable => "unreadable",
            Code::WrongKind => "wrong-kind",
            Code::Withheld => "withheld",
            Code::Truncated => "truncated",
            Code::NotUtf8 => "not-utf8",
            Code::TooManyEntries => "too-many-entries",
            Code::MalformedLine => "malformed-line",
            Code::MalformedFile => "malformed-file",
            Code::MalformedValue => "malformed-value",
            Code::OsReleaseIncomplete => "os-release-incomplete",
            Code::OsReleaseUnusable => "os-release-unusable",
            Code::LegacyReleaseFile => "legacy-release-file",
            Code::NotANamespaceLink => "not-a-namespace-link",
            Code::StaleContainerMarker => "stale-container-marker",
            Code::BadManifest => "bad-manifest",
            Code::ManifestIgnored => "manifest-ignored",
            Code::ProbeFailed => "probe-failed",
            Code::AmbiguousIdentity => "ambiguous-identity",
            Code::ConflictingEvidence => "conflicting-evidence",
        }
    }
}

impl Warning {
    pub fn at(code: Code, path: &str, message: impl Into<String>) -> Warning {
        Warning {
            code,
            path: Some(path.to_string()),
            message: message.into(),
        }
    }

    pub fn general(code: Code, message: impl Into<String>) -> Warning {
        Warning {
            code,
            path: None,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_listed_once_and_spelled_as_serde_writes_it() {
        let mut seen = std::collections::BTreeSet::new();
        for code in Code::ALL {
            assert!(seen.insert(code), "{code:?} listed twice");
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::Value::from(code.as_str())
            );
        }
    }

    /// The one table of codes (docs/warnings.md) names every code, in order, and nothing else.
    #[test]
    fn the_documented_table_matches_the_codes() {
        let doc = include_str!("../docs/warnings.md");
        let documented: Vec<&str> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split_once('`').map(|(code, _)| code))
            .collect();
        let codes: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(documented, codes);
    }
}
