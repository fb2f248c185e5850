//! Output hygiene for text that came from the host: credentials masked, control characters escaped.
//!
//! Command lines and quoted file lines can carry secrets, and hostprint's output is written 0644 and
//! shipped to monitoring. [`mask`] replaces with `***` the value after a `=` or `:` whose key ends in
//! a credential word (password, token, key, …), a URL's `user:password@` password and a crypt(3) hash
//! field; [`mask_cmdline`] also the argument after such an option (`--password hunter2`). A key that
//! merely looks sensitive costs its value, which is the safe side. [`escape_control`] makes host text
//! safe for a terminal: `ESC[8m` in a `PRETTY_NAME` would hide what follows, OSC could forge a link.

use std::borrow::Cow;

/// What a masked value is replaced with.
pub const MASK: &str = "***";

/// Key endings that name a credential, compared with the key's last alphanumeric run, lowercased
/// (`--auth-token`, `DB_PASSWORD`, `apiKey`, `X-Amz-Signature`, `requirepass`, `Authorization`).
const ENDINGS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "credential",
    "credentials",
    "auth",
    "authorization",
    "cookie",
    "signature",
];
/// Whole keys that name a credential but are too short to match as endings.
const WHOLE: &[&str] = &["psk", "sig"];

/// Whether `key` (an option, a variable, a query parameter) names a credential.
fn sensitive(key: &str) -> bool {
    let Some(last) = key
        .split(|c: char| !c.is_ascii_alphanumeric())
        .rfind(|s| !s.is_empty())
    else {
        return false;
    };
    let last = last.to_ascii_lowercase();
    WHOLE.contains(&last.as_str()) || ENDINGS.iter().any(|e| last.ends_with(e))
}

/// Masks the credentials in one argument or one line: URL passwords, crypt hashes, and the value of
/// the first credential-looking `key=value` or `key: value` (everything after it).
pub fn mask(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    for pass in [mask_userinfo, mask_crypt_hashes] {
        if let Some(masked) = pass(&out) {
            out = Cow::Owned(masked);
        }
    }
    if let Some(at) = secret_value_start(&out) {
        let mut s = out.into_owned();
        s.truncate(at);
        s.push_str(MASK);
        out = Cow::Owned(s);
    }
    out
}

/// Masks a command line: every argument with [`mask`], and the argument after an option that names
/// a credential and has no value of its own (`--password hunter2`).
pub fn mask_cmdline(args: Vec<String>) -> Vec<String> {
    let mut value_next = false;
    args.into_iter()
        .map(|arg| {
            if std::mem::take(&mut value_next) {
                return MASK.to_string();
            }
            value_next = arg.starts_with('-') && !arg.contains(['=', ':']) && sensitive(&arg);
            match mask(&arg) {
                Cow::Borrowed(_) => arg,
                Cow::Owned(masked) => masked,
            }
        })
        .collect()
}

/// Where the value of the first `key=value` or `key: value` with a sensitive key starts (after the
/// separator and any spaces).
fn secret_value_start(text: &str) -> Option<usize> {
    let mut key_start = 0;
    for (i, b) in text.bytes().enumerate() {
        if b != b'=' && b != b':' {
            continue;
        }
        if sensitive(&text[key_start..i]) {
            let value = &text[i + 1..];
            let at = i + 1 + (value.len() - value.trim_start().len());
            // Nothing to hide (`--token=`) or already hidden.
            return (at < text.len() && !text[at..].starts_with(MASK)).then_some(at);
        }
        key_start = i + 1;
    }
    None
}

/// `scheme://user:password@host` with the password masked, for every URL in `text`; `None` when
/// there is none.
fn mask_userinfo(text: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = text;
    let mut changed = false;
    while let Some(scheme_end) = rest.find("://") {
        let authority_start = scheme_end + 3;
        let after = &rest[authority_start..];
        let authority_len = after.find(['/', '?', '#', ' ']).unwrap_or(after.len());
        let authority = &after[..authority_len];
        let password = authority.rfind('@').and_then(|at| {
            let colon = authority[..at].find(':')?;
            Some((colon + 1, at))
        });
        match password {
            Some((from, to)) if from < to => {
                out.push_str(&rest[..authority_start + from]);
                out.push_str(MASK);
                out.push_str(&rest[authority_start + to..authority_start + authority_len]);
                changed = true;
            }
            _ => out.push_str(&rest[..authority_start + authority_len]),
        }
        rest = &rest[authority_start + authority_len..];
    }
    out.push_str(rest);
    changed.then_some(out)
}

/// `:`-separated fields holding a crypt(3) hash (`$id$…`, as in `etc/shadow`) masked; `None` when
/// there is none.
fn mask_crypt_hashes(text: &str) -> Option<String> {
    let is_hash = |field: &str| {
        field.strip_prefix('$').is_some_and(|rest| {
            rest.split_once('$').is_some_and(|(id, _)| {
                !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric())
            })
        })
    };
    if !text.split(':').any(is_hash) {
        return None;
    }
    let fields: Vec<&str> = text
        .split(':')
        .map(|f| if is_hash(f) { MASK } else { f })
        .collect();
    Some(fields.join(":"))
}

/// Host text made safe for a terminal: control characters (C0, DEL, C1: ESC, OSC's ESC ] and BEL,
/// CR, newlines) and the bidirectional overrides that reorder what is shown are written as escapes
/// (`\x1b`, `\u{202e}`); everything else, ordinary Unicode included, is left alone.
pub fn escape_control(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.contains(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if !unsafe_char(c) => out.push(c),
            c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
        }
    }
    Cow::Owned(out)
}

/// [`escape_control`] line by line: newlines are kept, so multi-line text (a report, an error that
/// shows its source line) reads as before.
pub fn escape_lines(text: &str) -> Cow<'_, str> {
    let lines: Vec<_> = text.split('\n').map(escape_control).collect();
    match lines.iter().all(|l| matches!(l, Cow::Borrowed(_))) {
        true => Cow::Borrowed(text),
        false => Cow::Owned(lines.join("\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_each_credential_shape() {
        let cases = [
            // Options with the value attached.
            ("--token=abc123", "--token=***"),
            ("--auth-token=abc", "--auth-token=***"),
            ("--password=hunter2", "--password=***"),
            ("--db-passwd=x", "--db-passwd=***"),
            ("--client-secret=s3", "--client-secret=***"),
            ("--api-key=k", "--api-key=***"),
            ("--apiKey=k", "--apiKey=***"),
            ("--credentials=c", "--credentials=***"),
            ("--auth=user:pw", "--auth=***"),
            ("password=hunter2", "password=***"),
            ("MYSQL_PWD=x", "MYSQL_PWD=***"),
            ("rd.luks.key=/etc/k", "rd.luks.key=***"),
            ("pass:hunter2", "pass:***"),
            // A variable set through another parameter.
            (
                "systemd.setenv=DB_PASSWORD=x",
                "systemd.setenv=DB_PASSWORD=***",
            ),
            // URL passwords, alone and as values.
            ("postgres://u:pw@h/db", "postgres://u:***@h/db"),
            (
                "ignition.config.url=https://user:p4ss@host/config.ign",
                "ignition.config.url=https://user:***@host/config.ign",
            ),
            (
                "a=http://x:1@h b=https://y:2@i/p",
                "a=http://x:***@h b=https://y:***@i/p",
            ),
            // Query parameters that carry a credential (everything after is masked).
            (
                "https://acct.blob.core.windows.net/c/x.ign?sv=2020&sig=abc%3D",
                "https://acct.blob.core.windows.net/c/x.ign?sv=2020&sig=***",
            ),
            (
                "https://h/x?X-Amz-Signature=ff",
                "https://h/x?X-Amz-Signature=***",
            ),
            // Headers.
            ("Authorization: Bearer eyJhbGci", "Authorization: ***"),
            ("Cookie: session=1", "Cookie: ***"),
            // File lines.
            ("password: hunter2", "password: ***"),
            ("  token = abc", "  token = ***"),
            ("\"password\": \"x\"", "\"password\": ***"),
            ("export API_TOKEN=abc", "export API_TOKEN=***"),
            ("psk=wifi-secret", "psk=***"),
            (
                "root:$6$salt$hash:19000:0:99999:7:::",
                "root:***:19000:0:99999:7:::",
            ),
            ("admin:$y$j9T$abc:1::::::", "admin:***:1::::::"),
        ];
        for (text, want) in cases {
            assert_eq!(mask(text), want, "{text:?}");
        }
    }

    #[test]
    fn leaves_what_is_not_a_credential() {
        for text in [
            "/usr/lib/systemd/systemd",
            "--switched-root",
            "--system",
            "--deserialize=31",
            "--token-file=/var/run/token",
            "--authorization-mode=Node,RBAC",
            "ostree=/ostree/boot.1/fedora-coreos/abc/0",
            "selinux=0",
            "ignition.platform.id=qemu",
            "rd.vconsole.keymap=us",
            "root=UUID=0b2c-11",
            "ip=10.0.0.2::10.0.0.1:255.255.255.0:host:eth0:none",
            "https://user@host/path",
            "--token=",
            "",
        ] {
            assert!(
                matches!(mask(text), Cow::Borrowed(_)),
                "{text:?} -> {}",
                mask(text)
            );
        }
    }

    #[test]
    fn masks_the_value_in_the_next_argument() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            mask_cmdline(args(&["app", "--password", "hunter2", "--verbose", "-v"])),
            args(&["app", "--password", "***", "--verbose", "-v"])
        );
        assert_eq!(
            mask_cmdline(args(&[
                "app",
                "--token",
                "t",
                "--db",
                "postgres://u:pw@h",
                "x"
            ])),
            args(&["app", "--token", "***", "--db", "postgres://u:***@h", "x"])
        );
        // `--token=…` has its value: the next argument is its own.
        assert_eq!(
            mask_cmdline(args(&["app", "--token=t", "run"])),
            args(&["app", "--token=***", "run"])
        );
    }

    #[test]
    fn escapes_control_characters_only() {
        let cases = [
            ("Debian\x1b[8m hidden", "Debian\\x1b[8m hidden"),
            ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),
            ("\x1b]8;;http://x\x1b\\link", "\\x1b]8;;http://x\\x1b\\link"),
            ("a\u{9b}31mb", "a\\x9b31mb"),
            ("line\nforged\r", "line\\x0aforged\\x0d"),
            ("tab\there\x7f\0", "tab\\x09here\\x7f\\x00"),
            ("abc\u{202e}fed", "abc\\u{202e}fed"),
        ];
        for (text, want) in cases {
            assert_eq!(escape_control(text), want, "{text:?}");
        }
        for text in [
            "Flatcar Container Linux by Kinvolk 3139.2.0 (Oklo)",
            "Ubuntu Core 22 — ünïcödé 日本",
        ] {
            assert!(matches!(escape_control(text), Cow::Borrowed(_)), "{text:?}");
        }
        assert_eq!(escape_lines("a\x1b[2J\nb\x07\n"), "a\\x1b[2J\nb\\x07\n");
        assert!(matches!(escape_lines("a\nb\n"), Cow::Borrowed(_)));
    }
}
