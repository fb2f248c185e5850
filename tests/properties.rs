//! Property tests for every parser of host-controlled or user-controlled text, run by `cargo test`
//! (the cargo-fuzz targets in fuzz/ search the same parsers much longer, on nightly).
//!
//! Two kinds of property: no input panics (a probe runs under `catch_unwind`, but a panic still loses
//! that probe's facts), and what a well-formed file says is what the parser returns (round trips).

use std::collections::BTreeMap;

use hostprint::facts::{kernel, mounts, os_release, pid1, update};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

/// os-release(5) double-quoted form: `"`, `\`, `$` and `` ` `` are escaped with a backslash.
fn quote(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        if matches!(c, '"' | '\\' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

proptest! {
    #[test]
    fn os_release_parse_never_panics(text in any::<String>()) {
        let file = os_release::parse(&text);
        let lines = text.lines().count();
        for e in &file.errors {
            prop_assert!(e.line >= 1 && e.line <= lines);
        }
    }

    /// Any map of valid keys to single-line values, written with quoting, parses back to itself.
    #[test]
    fn os_release_quoted_values_round_trip(
        fields in btree_map("[A-Za-z_][A-Za-z0-9_]{0,15}", "[^\n]{0,40}", 0..20),
        crlf in any::<bool>(),
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let text: String = fields
            .iter()
            .map(|(k, v)| format!("{k}={}{eol}", quote(v)))
            .collect();
        let parsed = os_release::parse(&text);
        prop_assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        prop_assert_eq!(parsed.fields, fields);
    }

    /// Single quotes keep everything but a single quote literally, backslashes included.
    #[test]
    fn os_release_single_quoted_values_round_trip(
        fields in btree_map("[A-Z_][A-Z0-9_]{0,10}", "[^\n']{0,40}", 0..10),
    ) {
        let text: String = fields.iter().map(|(k, v)| format!("{k}='{v}'\n")).collect();
        prop_assert_eq!(os_release::parse(&text).fields, fields);
    }

    #[test]
    fn mountinfo_parse_never_panics(text in any::<String>()) {
        let (_, bad) = mounts::parse(&text);
        prop_assert!(bad.count <= text.lines().count());
    }

    /// Well-formed mountinfo lines give back their mount point, type and read-only flag.
    #[test]
    fn mountinfo_lines_round_trip(
        table in vec(("(/[a-z0-9._-]{1,12}){0,4}", "[a-z0-9]{1,8}", any::<bool>()), 1..20),
    ) {
        let text: String = table
            .iter()
            .enumerate()
            .map(|(i, (point, fs, ro))| {
                let point = if point.is_empty() { "/" } else { point.as_str() };
                let mode = if *ro { "ro" } else { "rw" };
                format!("{} 1 8:{i} / {point} {mode},relatime shared:{i} - {fs} /dev/sda{i} {mode}\n", i + 20)
            })
            .collect();
        let (summary, bad) = mounts::parse(&text);
        prop_assert_eq!(bad, mounts::BadLines::default());
        prop_assert!(summary.is_some());
        prop_assert_eq!(text.lines().count(), table.len());
        for (line, (point, fs, ro)) in text.lines().zip(&table) {
            let point = if point.is_empty() { "/" } else { point.as_str() };
            let m = mounts::Mount::from_line(line).unwrap();
            prop_assert_eq!(m.mount_point, point);
            prop_assert_eq!(m.fs_type, fs.as_str());
            prop_assert_eq!(m.read_only, *ro);
        }
    }

    #[test]
    fn cmdline_split_never_panics(text in any::<String>()) {
        for word in kernel::split_cmdline(&text) {
            prop_assert!(!word.contains('"'));
        }
        for arg in pid1::parse_cmdline(&text) {
            prop_assert!(!arg.is_empty() && !arg.contains('\0'));
        }
    }

    /// Words without spaces or quotes, joined by any run of whitespace, split back to themselves.
    #[test]
    fn cmdline_plain_words_round_trip(
        words in vec("[^\\s\"]{1,20}", 0..20),
        sep in "[ \t]{1,3}",
        trailing in "\n?",
    ) {
        let text = format!("{}{trailing}", words.join(&sep));
        prop_assert_eq!(kernel::split_cmdline(&text), words);
    }

    /// A double-quoted word keeps its spaces (`"dyndbg=file a.c +p"`) and loses its quotes.
    #[test]
    fn cmdline_quoted_words_round_trip(words in vec("[^\"]{0,20}", 0..10)) {
        let text: Vec<String> = words.iter().map(|w| format!("\"{w}\"")).collect();
        prop_assert_eq!(kernel::split_cmdline(&text.join(" ")), words);
    }

    /// PID 1's NUL-separated argv round-trips for non-empty arguments.
    #[test]
    fn pid1_cmdline_round_trips(args in vec("[^\0]{1,20}", 0..10)) {
        let text: String = args.iter().map(|a| format!("{a}\0")).collect();
        prop_assert_eq!(pid1::parse_cmdline(&text), args);
    }

    #[test]
    fn channel_ini_never_panics(text in any::<String>()) {
        if let Some(channel) = update::parse_channel_ini(&text) {
            prop_assert_eq!(channel.trim(), channel.as_str());
        }
    }

    /// The `channel:` line is found among other INI lines, whatever its spacing.
    #[test]
    fn channel_ini_finds_the_channel(
        before in vec("[a-b]{1,8}: [a-z./]{0,12}", 0..5),
        channel in "[a-z0-9][a-z0-9./-]{0,30}",
        pad in "[ \t]{0,2}",
    ) {
        let mut text = String::from("[service]\n");
        for line in &before {
            text.push_str(line);
            text.push('\n');
        }
        text.push_str(&format!("channel{pad}:{pad}{channel}{pad}\n"));
        prop_assert_eq!(update::parse_channel_ini(&text), Some(channel));
    }

    /// A user's rule file is untrusted: it loads or names a line, and never panics.
    #[test]
    fn rule_files_never_panic(text in any::<String>()) {
        if let Err(e) = hostprint::rules::parse_file("prop.toml", &text) {
            prop_assert!(!e.0.is_empty() && e.0.iter().all(|e| e.line >= 1));
        }
    }

    /// Rule-shaped text with arbitrary values (where the loader does real work) never panics.
    #[test]
    fn rule_shaped_files_never_panic(
        id in "[a-z-]{0,12}",
        kind in "(container-os|component|platform|general-purpose|x)",
        key in "[A-Z_]{0,8}",
        value in "[^\"\\\\\n]{0,12}",
        weight in any::<i64>(),
    ) {
        let text = format!(
            "id = \"{id}\"\nname = \"N\"\nkind = \"{kind}\"\neol = \"{value}\"\n\n\
             [[require]]\nwhy = \"w\"\nweight = {weight}\nos_release = {{ key = \"{key}\", equals = \"{value}\" }}\n"
        );
        let _ = hostprint::rules::parse_file("prop.toml", &text);
    }
}

#[test]
fn quoting_helper_matches_the_documented_escapes() {
    // The round-trip property is only as good as its serializer: check it against os-release(5).
    assert_eq!(quote(r#"a"b\c$d`e"#), r#""a\"b\\c\$d\`e""#);
    let parsed = os_release::parse(&format!("K={}\n", quote("x \"y\" $HOME")));
    let expected: BTreeMap<String, String> =
        [("K".to_string(), "x \"y\" $HOME".to_string())].into();
    assert_eq!(parsed.fields, expected);
}
