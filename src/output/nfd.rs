//! `--format nfd`: a Node Feature Discovery feature file, so nodes get labels a scheduler can use
//! ("run this only on Flatcar 3600 or newer") from NFD's `local` source, without a labeller of our own.
//!
//! # Wire format
//!
//! NFD's `features.d` format: one `name=value` per line, nothing else (no comments: NFD before v0.12
//! would take a `#` line for a label). Written to
//! `/etc/kubernetes/node-feature-discovery/features.d/hostprint` (with `--output`, atomically; NFD
//! skips the dot-named temporary file).
//!
//! Names live in the `hostprint.feature.node.kubernetes.io/` namespace: a sub-namespace of
//! `feature.node.kubernetes.io`, which nfd-master always allows (a vendor namespace such as
//! `hostprint.io/` needs `extraLabelNs` on NFD before v0.13). The labels:
//!
//! ```text
//! os.id                  identity id (flatcar, fedora-coreos, …; the os-release ID of other hosts)
//! os.kind                container-os | immutable-desktop | general-purpose | unknown
//! os.container-os        true | false (none when the identity is unknown)
//! os.version             identity.version: the system's own version (Kairos' KAIROS_VERSION,
//!                        else os-release VERSION_ID)
//! os.version.major       its first numeric part (3139 of 3139.2.0; a leading "v" is skipped)
//! os.version.minor       its second numeric part, when there is one
//! selinux.mode           enforcing | permissive | disabled (when known)
//! apparmor.enabled       true | false (when known)
//! runtime.<id>           true, one per runtime socket found (docker, containerd, cri-o, …)
//! update.<agent>.channel the channel an update agent follows (stable, lts, latest/stable, …)
//! platform.<id>          true, one per platform found (dcos)
//! platform.<id>.role     the node's role in it (master, agent, public-agent)
//! ```
//!
//! `major`/`minor` are plain integers so node affinity can compare them with `Gt`/`Lt`. Nothing that
//! changes while a node runs (a pending reboot) is a label: a label that flaps reschedules pods.
//!
//! Every value is a valid Kubernetes label value: at most 63 characters of `[A-Za-z0-9-_.]`, starting
//! and ending with an alphanumeric. Anything else is replaced by `-` (one per run), the ends are trimmed,
//! and the result is cut to 63; a value that is empty after that is left out, because an empty label
//! would claim a fact hostprint does not have.

use crate::profile::Profile;

/// The label namespace, with its slash.
pub const PREFIX: &str = "hostprint.feature.node.kubernetes.io/";

/// Kubernetes' limit for a label value and for the name part of a label key.
pub const MAX_LEN: usize = 63;

pub fn render(p: &Profile) -> String {
    let mut labels: Vec<(String, Option<String>)> = Vec::new();
    let mut put = |name: Option<String>, value: Option<&str>| {
        if let Some(name) = name {
            labels.push((name, value.and_then(label_value)));
        }
    };
    let key = |s: &str| Some(s.to_string());
    let id = &p.identity;
    put(key("os.id"), id.id.as_deref());
    put(key("os.kind"), Some(id.kind));
    put(key("os.container-os"), id.container_os.map(bool_str));
    let version = id.version.as_deref();
    put(key("os.version"), version);
    let (major, minor) = version.map(numeric_parts).unwrap_or_default();
    for (name, n) in [("os.version.major", major), ("os.version.minor", minor)] {
        put(key(name), n.map(|n| n.to_string()).as_deref());
    }
    put(key("selinux.mode"), p.security.selinux.mode.as_deref());
    put(
        key("apparmor.enabled"),
        p.security.apparmor.enabled.map(bool_str),
    );
    for r in &p.runtimes {
        put(name_with_id("runtime.", r.id, ""), Some("true"));
    }
    for u in &p.updates {
        put(
            name_with_id("update.", u.agent, ".channel"),
            u.channel.as_deref(),
        );
    }
    for x in &p.platforms {
        put(name_with_id("platform.", &x.id, ""), Some("true"));
        put(name_with_id("platform.", &x.id, ".role"), x.role.as_deref());
    }

    let mut out = String::new();
    for (name, value) in labels {
        if let Some(value) = value {
            out.push_str(PREFIX);
            out.push_str(&name);
            out.push('=');
            out.push_str(&value);
            out.push('\n');
        }
    }
    out
}

fn bool_str(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// `text` made into a valid label value, or `None` when nothing valid is left.
pub fn label_value(text: &str) -> Option<String> {
    sanitize(text, MAX_LEN)
}

/// A label name `<head><id><tail>` whose id part is sanitized and shortened so the whole name fits in
/// 63 characters: the fixed parts are never cut, so `platform.<long id>` and `platform.<long id>.role`
/// cannot collapse into one name.
fn name_with_id(head: &str, id: &str, tail: &str) -> Option<String> {
    let budget = MAX_LEN.checked_sub(head.len() + tail.len())?;
    let id = sanitize(id, budget)?;
    Some(format!("{head}{id}{tail}"))
}

/// Replaces every run of characters outside `[A-Za-z0-9-_.]` by one `-`, trims anything but
/// alphanumerics from both ends, and cuts to `max` (then trims the new end again).
fn sanitize(text: &str, max: usize) -> Option<String> {
    let mut out = String::with_capacity(text.len().min(max));
    let mut replaced = false;
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
            out.push(c);
            replaced = false;
        } else if !replaced {
            out.push('-');
            replaced = true;
        }
    }
    // All ASCII from here, so byte slicing cannot split a character.
    let trim = |s: &str| {
        s.trim_matches(|c: char| !c.is_ascii_alphanumeric())
            .to_string()
    };
    let mut out = trim(&out);
    if out.len() > max {
        out = trim(&out[..max]);
    }
    (!out.is_empty()).then_some(out)
}

/// The first two dot-separated numeric parts of a version: `3139.2.0` → (3139, 2), `39` → (39, none),
/// `v1.9.5` → (1, 9). A part counts from its leading digits (`2b` → 2); a part without any ends the
/// parse, so `rolling` has none.
pub fn numeric_parts(version: &str) -> (Option<i64>, Option<i64>) {
    let v = version.trim();
    let v = v.strip_prefix(['v', 'V']).unwrap_or(v);
    let mut parts = v.split('.').map(|part| {
        let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
        // i64: node affinity's Gt/Lt parse label values as int64.
        digits.parse::<i64>().ok()
    });
    let major = parts.next().flatten();
    let minor = major.and(parts.next().flatten());
    (major, minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kubernetes' rule for a label value, written out independently of `sanitize`.
    fn is_valid_label_value(v: &str) -> bool {
        let b = v.as_bytes();
        let ok = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.');
        !b.is_empty()
            && b.len() <= MAX_LEN
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(ok)
    }

    #[test]
    fn hostile_values_become_valid_or_are_left_out() {
        let long = "a".repeat(200);
        let long_dash = format!("{}-{}", "b".repeat(62), "c".repeat(10));
        let cases: &[(&str, Option<&str>)] = &[
            ("3139.2.0", Some("3139.2.0")),
            ("enforcing", Some("enforcing")),
            (&long, Some(&long[..63])),
            // Cut at 63 lands right after a dash: the dash is trimmed, not kept at the end.
            (&long_dash, Some(&long_dash[..62])),
            ("Fedora CoreOS 39", Some("Fedora-CoreOS-39")),
            ("  padded  ", Some("padded")),
            ("\"quoted\"", Some("quoted")),
            ("it's \"x\"", Some("it-s-x")),
            ("Ünïcödé", Some("n-c-d")),
            ("✓✓✓", None),
            ("", None),
            ("---", None),
            ("_a_", Some("a")),
            ("a\nb", Some("a-b")),
            ("a=b", Some("a-b")),
            ("7.9 (Final)", Some("7.9-Final")),
        ];
        for (input, want) in cases {
            let got = label_value(input);
            assert_eq!(got.as_deref(), *want, "input {input:?}");
            if let Some(v) = &got {
                assert!(
                    is_valid_label_value(v),
                    "{v:?} from {input:?} is not a label value"
                );
            }
        }
    }

    #[test]
    fn names_keep_their_fixed_parts() {
        let id = "x".repeat(200);
        let plain = name_with_id("platform.", &id, "").unwrap();
        let role = name_with_id("platform.", &id, ".role").unwrap();
        assert!(plain.len() <= MAX_LEN && role.len() <= MAX_LEN);
        assert!(role.ends_with(".role"));
        assert_ne!(plain, role);
        assert_eq!(name_with_id("runtime.", "✓", ""), None);
    }

    #[test]
    fn version_parts() {
        assert_eq!(numeric_parts("3139.2.0"), (Some(3139), Some(2)));
        assert_eq!(numeric_parts("39"), (Some(39), None));
        assert_eq!(numeric_parts("24.04"), (Some(24), Some(4)));
        assert_eq!(numeric_parts("v1.9.5"), (Some(1), Some(9)));
        assert_eq!(numeric_parts("4.14"), (Some(4), Some(14)));
        assert_eq!(numeric_parts("20240101"), (Some(20_240_101), None));
        assert_eq!(numeric_parts("2b.1"), (Some(2), Some(1)));
        assert_eq!(numeric_parts("rolling"), (None, None));
        assert_eq!(numeric_parts(""), (None, None));
        assert_eq!(numeric_parts("1.x"), (Some(1), None));
        // Too large for a number is not a number (affinity compares int64).
        assert_eq!(numeric_parts("99999999999999999999999"), (None, None));
    }
}
