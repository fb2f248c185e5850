//! os-release(5), and every other shell-style `KEY=value` file hostprint meets (lsb-release,
//! `update.conf`, `etc/selinux/config`, `kairos-release`): one syntax, one parser.
//!
//! Quotes, backslash escapes and `#` comments as os-release(5) says, no variable expansion. What real
//! files bend (a space after a closing quote, no final newline, CRLF) is accepted; a broken line (no
//! `=`, an unterminated quote, a bad key) is skipped and reported with its line number. The reader
//! takes `etc/os-release`, and `usr/lib/os-release` only when the first is absent — never merged,
//! never a fallback when the first exists but cannot be read.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::root::{Failure, Last, Root, Step};
use crate::secrets::secret_reason;
use crate::warning::{Code, Warning};

/// Bounds a hostile os-release; real ones are a few lines.
pub const CAP: usize = 64 * 1024;

/// The two places os-release(5) allows, in order.
pub const PATHS: [&str; 2] = ["etc/os-release", "usr/lib/os-release"];

/// A parsed `KEY=value` file: its keys (last assignment wins, as in a shell) and its bad lines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvFile {
    pub fields: BTreeMap<String, String>,
    pub errors: Vec<LineError>,
}

/// A line that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub text: String,
    pub reason: &'static str,
}

/// Parses shell-style assignments. Pure: no I/O, never fails as a whole.
pub fn parse(text: &str) -> EnvFile {
    let mut out = EnvFile::default();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let error = |reason| LineError {
            line: index + 1,
            text: quote(line),
            reason,
        };
        let Some((key, value)) = trimmed.split_once('=') else {
            out.errors.push(error("no '=' in the line"));
            continue;
        };
        let key = key.trim_end();
        if !is_identifier(key) {
            out.errors.push(error("the key is not a shell identifier"));
            continue;
        }
        match unquote(value) {
            Ok(v) => {
                out.fields.insert(key.to_string(), v);
            }
            Err(reason) => out.errors.push(error(reason)),
        }
    }
    out
}

fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Shell word semantics for one value: quoted runs and bare runs may be concatenated
/// (`a"b c"'d'`), whitespace ends the word, and trailing whitespace is ignored.
fn unquote(value: &str) -> Result<String, &'static str> {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.trim_end().chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => loop {
                match chars.next() {
                    None => return Err("unterminated double quote"),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(e @ ('"' | '\\' | '$' | '`')) => out.push(e),
                        // A backslash before anything else is kept, as the shell does.
                        Some(other) => {
                            out.push('\\');
                            out.push(other);
                        }
                        None => return Err("unterminated double quote"),
                    },
                    Some(other) => out.push(other),
                }
            },
            '\'' => loop {
                match chars.next() {
                    None => return Err("unterminated single quote"),
                    Some('\'') => break,
                    Some(other) => out.push(other),
                }
            },
            '\\' => match chars.next() {
                Some(e) => out.push(e),
                None => return Err("a backslash ends the line"),
            },
            // An unquoted space ends the value in a shell; os-release files in the wild
            // sometimes forget the quotes (`NAME=Fedora Linux`), and the intent is plain.
            other => out.push(other),
        }
    }
    Ok(out)
}

/// A line for a warning: credential-looking values masked ([`crate::redact::mask`]), then at most
/// 120 characters and an ellipsis, so that a hostile megabyte-long line does not end up whole in the
/// profile. The mask sees the line's first 4096 characters, not only what is shown, so that a cut
/// cannot reveal a URL password whose `@` lies past it, nor cost memory on a huge line.
pub fn quote(line: &str) -> String {
    const MAX: usize = 120;
    const MASKED: usize = 4096;
    let head = line
        .char_indices()
        .nth(MASKED)
        .map_or(line, |(i, _)| &line[..i]);
    let masked = crate::redact::mask(head);
    if masked.chars().count() <= MAX {
        masked.into_owned()
    } else {
        let head: String = masked.chars().take(MAX).collect();
        format!("{head}…")
    }
}

/// The os-release of a root, with the file it came from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OsRelease {
    /// Which file won (`etc/os-release` or `usr/lib/os-release`), or none.
    pub source: Option<String>,
    pub fields: BTreeMap<String, String>,
}

impl OsRelease {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }

    /// `ID_LIKE` as a list of ids.
    pub fn id_like(&self) -> Vec<String> {
        self.get("ID_LIKE")
            .map(|v| v.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    }
}

/// The keys every os-release has, as os-release(5) says (with defaults for when they are missing:
/// `ID=linux`, `NAME=Linux`, `PRETTY_NAME="Linux"`).
const EXPECTED: [&str; 3] = ["ID", "NAME", "PRETTY_NAME"];

/// Reads os-release per os-release(5). A file without `ID`, `NAME` or `PRETTY_NAME` is used as it is
/// and warned about: hostprint does not fill in the manual's defaults, which would pass a guess off
/// as what the file says.
pub fn probe(root: &Root) -> OsRelease {
    let [etc, usr_lib] = PATHS;
    let (path, file) = match read_env_file(root, etc, CAP) {
        Ok(file) => (etc, file),
        Err(Failure::Absent) => match read_env_file(root, usr_lib, CAP) {
            Ok(file) => (usr_lib, file),
            Err(_) => return OsRelease::default(),
        },
        // The first file exists but is unusable (the read warned why): os-release(5) falls back
        // only when it is absent, so the second, if there, is not used, and is told so.
        Err(failure) => {
            if root.stat(usr_lib).is_ok() {
                root.warn(Warning::at(
                    Code::OsReleaseUnusable,
                    usr_lib,
                    format!(
                        "not consulted: {etc} exists but cannot be used ({failure}), and \
                         os-release(5) falls back to this file only when {etc} is absent"
                    ),
                ));
            }
            return OsRelease::default();
        }
    };
    let missing: Vec<&str> = EXPECTED
        .into_iter()
        .filter(|key| file.fields.get(*key).is_none_or(|v| v.is_empty()))
        .collect();
    if !missing.is_empty() {
        root.warn(Warning::at(
            Code::OsReleaseIncomplete,
            path,
            format!("has no {}", missing.join(", ")),
        ));
    }
    OsRelease {
        source: Some(path.to_string()),
        fields: file.fields,
    }
}

/// Reads and parses a `KEY=value` file, warning about each malformed line with its number.
pub fn read_env_file(root: &Root, path: &str, cap: usize) -> Result<EnvFile, Failure> {
    let text = root.read_text(path, cap)?;
    let file = parse(&text.text);
    // Report a handful of bad lines, then a count: a file of garbage must not turn into a
    // warning per line. A line of a file on the secret list (asked for by that name or reached
    // through a link) is never quoted, masked or not.
    const SHOWN: usize = 5;
    let secret = !file.errors.is_empty() && is_secret(root, path);
    for e in file.errors.iter().take(SHOWN) {
        let message = match secret {
            true => format!(
                "line {}: {} (not quoted: the file may hold secrets)",
                e.line, e.reason
            ),
            false => format!("line {}: {}: {:?}", e.line, e.reason, e.text),
        };
        root.warn(Warning::at(Code::MalformedLine, path, message));
    }
    if file.errors.len() > SHOWN {
        root.warn(Warning::at(
            Code::MalformedLine,
            path,
            format!(
                "{} more malformed lines not shown",
                file.errors.len() - SHOWN
            ),
        ));
    }
    Ok(file)
}

/// Whether `path`, or the file it resolves to inside the root, is on the secret list.
fn is_secret(root: &Root, path: &str) -> bool {
    secret_reason(path).is_some()
        || matches!(root.trace(path, Last::Follow).last(),
            Some(Step::File { path, .. }) if secret_reason(path).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(text: &str, key: &str) -> Option<String> {
        parse(text).fields.get(key).cloned()
    }

    #[test]
    fn empty_file_has_no_fields() {
        assert_eq!(parse(""), EnvFile::default());
        assert_eq!(parse("\n\n# only a comment\n"), EnvFile::default());
    }

    #[test]
    fn missing_id_is_just_absent() {
        let f = parse("NAME=\"Foo\"\n");
        assert_eq!(f.fields.get("ID"), None);
        assert!(f.errors.is_empty());
    }

    #[test]
    fn quoting_styles() {
        assert_eq!(get("ID=flatcar\n", "ID").as_deref(), Some("flatcar"));
        assert_eq!(get("ID=\"flatcar\"\n", "ID").as_deref(), Some("flatcar"));
        assert_eq!(
            get("OSTREE_VERSION='37.20230126.20.0'\n", "OSTREE_VERSION").as_deref(),
            Some("37.20230126.20.0")
        );
        assert_eq!(get("ID_LIKE=\n", "ID_LIKE").as_deref(), Some(""));
        assert_eq!(get("A=\"x\"'y'z\n", "A").as_deref(), Some("xyz"));
    }

    #[test]
    fn escapes() {
        assert_eq!(
            get(
                r#"PRETTY_NAME="say \"hi\" \\ \$HOME \`x\` \n""#,
                "PRETTY_NAME"
            )
            .as_deref(),
            Some(r#"say "hi" \ $HOME `x` \n"#)
        );
        assert_eq!(get(r"A=a\ b", "A").as_deref(), Some("a b"));
        assert_eq!(
            get(r"A='no \escapes'", "A").as_deref(),
            Some(r"no \escapes")
        );
    }

    #[test]
    fn unterminated_quote_is_reported_and_the_rest_survives() {
        let f = parse("ID=ok\nNAME=\"broken\nVERSION_ID=1\n");
        assert_eq!(f.fields.get("ID").map(String::as_str), Some("ok"));
        assert_eq!(f.fields.get("VERSION_ID").map(String::as_str), Some("1"));
        assert_eq!(f.errors.len(), 1);
        assert_eq!(f.errors[0].line, 2);
        assert_eq!(f.errors[0].reason, "unterminated double quote");
        assert_eq!(f.errors[0].text, "NAME=\"broken");
    }

    #[test]
    fn bad_lines() {
        let f = parse("just words\n1KEY=x\nKEY-DASH=y\n=z\n");
        assert_eq!(f.errors.len(), 4);
        assert!(f.fields.is_empty());
    }

    #[test]
    fn crlf_is_tolerated() {
        let f = parse("ID=alpine\r\nVERSION_ID=\"3.23.2\"\r\n# c\r\n\r\n");
        assert_eq!(f.fields.get("ID").map(String::as_str), Some("alpine"));
        assert_eq!(
            f.fields.get("VERSION_ID").map(String::as_str),
            Some("3.23.2")
        );
        assert!(f.errors.is_empty());
    }

    #[test]
    fn real_world_quirks() {
        // Photon 2.0: trailing space after the last closing quote.
        assert_eq!(
            get("BUG_REPORT_URL=\"https://x\" \n", "BUG_REPORT_URL").as_deref(),
            Some("https://x")
        );
        // CoreOS 899: no trailing newline.
        assert_eq!(get("ID=coreos", "ID").as_deref(), Some("coreos"));
        // MicroOS: a commented key is not a key.
        assert_eq!(get("# VERSION=\"20241205\"\nID=x\n", "VERSION"), None);
        // Last assignment wins.
        assert_eq!(get("ID=a\nID=b\n", "ID").as_deref(), Some("b"));
        // Leading whitespace before a key.
        assert_eq!(get("  ID=x\n", "ID").as_deref(), Some("x"));
    }

    #[test]
    fn non_utf8_arrives_replaced_and_still_parses() {
        let bytes = b"ID=debian\nNAME=\"\xff\xfe\"\n";
        let text = String::from_utf8_lossy(bytes);
        let f = parse(&text);
        assert_eq!(f.fields.get("ID").map(String::as_str), Some("debian"));
        assert_eq!(
            f.fields.get("NAME").map(String::as_str),
            Some("\u{fffd}\u{fffd}")
        );
    }

    #[test]
    fn long_lines_are_shortened_in_errors() {
        let line = "x".repeat(10_000);
        let f = parse(&line);
        assert_eq!(f.errors.len(), 1);
        assert!(f.errors[0].text.chars().count() <= 121);
    }
}
