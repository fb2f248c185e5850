//! Compiled rule bundles: `hostprint fingerprints --compile DIR --output FILE`, loaded with
//! `--fingerprints FILE`.
//!
//! A fleet's own rules are TOML files, and parsing TOML is the dearest thing hostprint does: 500 rule
//! files cost ~15 ms per run (500 opens and reads, ~18 µs of parsing each), ten times a whole
//! probe, on every node, every minute. The shipped rules avoid it by being compiled into the binary
//! (build.rs); user rules cannot be, so they are compiled once, where they are written, into one file
//! that loads as the rules themselves — the way `file -C` compiles magic(5) and `systemd-hwdb update`
//! compiles hwdb. The TOML stays the source of truth: a bundle is always made from a directory that
//! `fingerprints --check` accepts.
//!
//! Layout (integers little-endian):
//!
//! | offset | size | field                                                          |
//! |--------|------|----------------------------------------------------------------|
//! | 0      | 16   | magic `hostprint rules\n`                                      |
//! | 16     | 8    | layout key: build.rs' checksum of `src/rules/format.rs`, hex   |
//! | 24     | 16   | version of the hostprint that compiled it, NUL-padded          |
//! | 40     | 8    | length of the compiled rules                                   |
//! | 48     | 4    | CRC-32 of the compiled rules                                   |
//! | 52     | 8    | length of the sources                                          |
//! | 60     | 4    | CRC-32 of the sources                                          |
//! | 64     | …    | compiled rules: postcard of `Vec<Fingerprint>`                 |
//! | …      | …    | sources: postcard of `Vec<(file name, TOML text)>`              |
//!
//! Postcard is not self-describing: the compiled section is only meaningful to a build whose rule
//! types are the same, which the layout key checks. A bundle from any other build (an upgraded
//! DaemonSet image still mounting last month's bundle) is not refused: its TOML sources, whose
//! encoding never changes, are parsed instead, at the TOML price, with a warning to recompile. A
//! bundle whose checksums do not match is damaged and refused (exit 2), like a malformed rule file:
//! a rule that silently does nothing is worse than one that does not load.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::{
    check_compiled, duplicate_id, open_rule_file, parse_file, refused_for_nesting, Fingerprint,
    RuleError, UserRules, MAX_NESTING,
};

const MAGIC: &[u8; 16] = b"hostprint rules\n";
const HEADER_LEN: usize = 64;
/// A bundle is the rules of one fleet: 500 rules are ~0.6 MiB. 64 MiB is a mistake, not rules.
pub const MAX_LEN: u64 = 64 << 20;
/// The layout key of this build (see build.rs).
const LAYOUT: &str = env!("HOSTPRINT_RULES_LAYOUT");
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The bundle of `rules`, each with the TOML `(file name, text)` it was parsed from.
pub fn compile(rules: &[(Fingerprint, String)]) -> Vec<u8> {
    let compiled: Vec<&Fingerprint> = rules.iter().map(|(rule, _)| rule).collect();
    let sources: Vec<(&str, &str)> = rules
        .iter()
        .map(|(rule, text)| (source_name(&rule.origin), text.as_str()))
        .collect();
    let compiled = postcard::to_allocvec(&compiled).expect("serializing to memory cannot fail");
    let sources = postcard::to_allocvec(&sources).expect("serializing to memory cannot fail");
    let mut out = Vec::with_capacity(HEADER_LEN + compiled.len() + sources.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&padded::<8>(LAYOUT));
    out.extend_from_slice(&padded::<16>(VERSION));
    out.extend_from_slice(&(compiled.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&compiled).to_le_bytes());
    out.extend_from_slice(&(sources.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&sources).to_le_bytes());
    debug_assert_eq!(out.len(), HEADER_LEN);
    out.extend_from_slice(&compiled);
    out.extend_from_slice(&sources);
    out
}

/// A rule's origin as recorded in the bundle: its file name, not the compiling machine's path.
fn source_name(origin: &str) -> &str {
    origin.rsplit('/').next().unwrap_or(origin)
}

fn padded<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [0u8; N];
    let n = s.len().min(N);
    out[..n].copy_from_slice(&s.as_bytes()[..n]);
    out
}

/// Loads the rules of the bundle at `path`. Errors name the bundle (line 0: a bundle has no lines,
/// except in the sources, whose errors name `bundle:file:line`).
pub fn load(path: &Path) -> Result<UserRules, RuleError> {
    let origin = path.display().to_string();
    let fail = |message: String| RuleError {
        file: origin.clone(),
        line: 0,
        message,
    };
    let (mut file, len) = open_rule_file(path, MAX_LEN).map_err(fail)?;
    let mut header = [0u8; HEADER_LEN];
    file.read_exact(&mut header)
        .map_err(|_| fail("not a hostprint rule bundle (too short)".into()))?;
    if !header.starts_with(MAGIC) {
        return Err(fail(
            "not a hostprint rule bundle (make one with `hostprint fingerprints --compile DIR --output FILE`)".into(),
        ));
    }
    let u64_at = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().expect("8 bytes"));
    let u32_at = |at: usize| u32::from_le_bytes(header[at..at + 4].try_into().expect("4 bytes"));
    let (compiled_len, compiled_crc) = (u64_at(40), u32_at(48));
    let (sources_len, sources_crc) = (u64_at(52), u32_at(60));
    let expected = (HEADER_LEN as u64)
        .checked_add(compiled_len)
        .and_then(|n| n.checked_add(sources_len));
    if expected != Some(len) {
        return Err(fail(format!(
            "damaged: {len} bytes, but its header accounts for {}",
            expected.map_or_else(|| "more than exist".to_string(), |n| n.to_string())
        )));
    }
    let text_of = |bytes: &[u8]| {
        String::from_utf8_lossy(bytes)
            .trim_end_matches('\0')
            .to_string()
    };
    let version = text_of(&header[24..40]);
    if header[16..24] == padded::<8>(LAYOUT) {
        let mut compiled = vec![0u8; compiled_len as usize];
        file.read_exact(&mut compiled)
            .map_err(|e| fail(format!("reading: {e}")))?;
        if crc32fast::hash(&compiled) != compiled_crc {
            return Err(fail(
                "damaged: the compiled rules fail their checksum".into(),
            ));
        }
        // Kept for the life of the process: the rules borrow their ~17,000 strings (for 500 rules)
        // from these bytes instead of copying each into an allocation. A process loads its rules
        // once (the CLI keeps them to the end, `--interval` included), so this is never repeated.
        let compiled: &'static [u8] = Box::leak(compiled.into_boxed_slice());
        let rules = decode_compiled(compiled).map_err(|m| fail(format!("damaged: {m}")))?;
        return Ok(UserRules { rules, note: None });
    }
    // Another build's layout: the sources, whose encoding does not depend on hostprint's types.
    file.seek(SeekFrom::Start(HEADER_LEN as u64 + compiled_len))
        .map_err(|e| fail(format!("reading: {e}")))?;
    let mut sources = vec![0u8; sources_len as usize];
    file.read_exact(&mut sources)
        .map_err(|e| fail(format!("reading: {e}")))?;
    if crc32fast::hash(&sources) != sources_crc {
        return Err(fail("damaged: the rule sources fail their checksum".into()));
    }
    let sources: Vec<(String, String)> = postcard::from_bytes(&sources)
        .map_err(|e| fail(format!("damaged: the rule sources do not decode: {e}")))?;
    let rules = sources
        .iter()
        .map(|(name, text)| parse_file(&format!("{origin}:{name}"), text))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some((_, again)) = duplicate_id(rules.iter().map(|r| r.id.as_str())) {
        return Err(fail(format!(
            "damaged: id {:?} appears twice",
            rules[again].id
        )));
    }
    let note = format!(
        "{origin} was compiled by a hostprint build with another rule layout (hostprint {version}, \
         layout {}; this is hostprint {VERSION}, layout {LAYOUT}); its {} TOML sources were parsed \
         instead, which is slower: recompile it with `hostprint fingerprints --compile`",
        text_of(&header[16..24]),
        rules.len()
    );
    Ok(UserRules {
        rules,
        note: Some(note),
    })
}

/// The compiled section's rules, re-checked as [`check_compiled`] does and with unique ids. Public
/// for the fuzz target: the checksum keeps random damage out, not a hand-made section. The rules
/// borrow their text from `bytes`, which must therefore outlive them: [`load`] keeps them for the
/// life of the process.
pub fn decode_compiled(bytes: &'static [u8]) -> Result<Vec<Fingerprint>, String> {
    refused_for_nesting();
    let rules: Vec<Fingerprint> =
        postcard::from_bytes(bytes).map_err(|e| match refused_for_nesting() {
            true => format!("the compiled rules nest any/all more than {MAX_NESTING} deep"),
            false => format!("the compiled rules do not decode: {e}"),
        })?;
    rules.iter().try_for_each(check_compiled)?;
    if let Some((_, again)) = duplicate_id(rules.iter().map(|r| r.id.as_str())) {
        return Err(format!("id {:?} appears twice", rules[again].id));
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = "id = \"mine\"\nname = \"Mine\"\nkind = \"container-os\"\n\n[[require]]\nwhy = \"w\"\npath = { path = \"etc/mine\", type = \"file\" }\n";

    /// Test inputs to [`decode_compiled`], kept for the life of the test process as `load` keeps a
    /// bundle's.
    fn leak(bytes: Vec<u8>) -> &'static [u8] {
        Box::leak(bytes.into_boxed_slice())
    }

    fn bundle() -> Vec<u8> {
        let rule = parse_file("/somewhere/mine.toml", RULE).unwrap();
        compile(&[(rule, RULE.to_string())])
    }

    fn load_bytes(bytes: &[u8]) -> Result<UserRules, RuleError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.bundle");
        std::fs::write(&path, bytes).unwrap();
        load(&path)
    }

    #[test]
    fn round_trips_the_rules_exactly() {
        let loaded = load_bytes(&bundle()).unwrap();
        assert!(loaded.note.is_none());
        let parsed = parse_file("/somewhere/mine.toml", RULE).unwrap();
        assert_eq!(format!("{:?}", loaded.rules), format!("{:?}", vec![parsed]));
    }

    /// Another build's layout key: the sources are parsed, the rules are the same, the user is told.
    #[test]
    fn another_layout_falls_back_to_the_sources() {
        let mut bytes = bundle();
        bytes[16..24].copy_from_slice(b"00000000");
        let loaded = load_bytes(&bytes).unwrap();
        assert_eq!(loaded.rules.len(), 1);
        assert_eq!(loaded.rules[0].id, "mine");
        assert!(loaded.rules[0].origin.ends_with("rules.bundle:mine.toml"));
        assert!(loaded.note.unwrap().contains("recompile"));
    }

    #[test]
    fn damage_is_refused_with_a_reason() {
        let good = bundle();
        let compiled_at = HEADER_LEN + 10;
        let mut flipped = good.clone();
        flipped[compiled_at] ^= 0x40;
        let e = load_bytes(&flipped).unwrap_err();
        assert!(e.message.contains("checksum"), "{e}");

        let e = load_bytes(&good[..good.len() - 1]).unwrap_err();
        assert!(e.message.contains("damaged"), "{e}");

        let e = load_bytes(b"id = \"x\"\n").unwrap_err();
        assert!(e.message.contains("not a hostprint rule bundle"), "{e}");

        // A header claiming more than exists must not allocate it.
        let mut huge = good.clone();
        huge[40..48].copy_from_slice(&u64::MAX.to_le_bytes());
        let e = load_bytes(&huge).unwrap_err();
        assert!(e.message.contains("more than exist"), "{e}");
    }

    /// A bundle that decodes and passes its checksum but carries a path out of the root (made by
    /// hand, not by `--compile`) is refused before any probe sees it.
    #[test]
    fn a_hand_made_escaping_path_is_refused() {
        let mut rule = parse_file("mine.toml", RULE).unwrap();
        rule.require[0].condition = super::super::Condition::Path {
            path: "../../etc/shadow".into(),
            kind: super::super::PathKind::File,
        };
        let e = load_bytes(&compile(&[(rule, RULE.to_string())])).unwrap_err();
        assert!(e.message.contains("inside the root"), "{e}");
    }

    /// postcard encodes `any = [any = [...]]` in two bytes a level: a compiled section a few hundred
    /// KiB long could nest a condition 100,000 deep and overflow the stack while decoding (then
    /// while evaluating, rendering, dropping). Decoding stops at `MAX_NESTING`, with a reason.
    #[test]
    fn deep_nesting_is_refused_while_decoding() {
        use super::super::{Condition, FsFlag, MAX_NESTING};
        let mut rule = parse_file("mine.toml", RULE).unwrap();
        let leaf = Condition::Fs(FsFlag::RootReadOnly);
        rule.require[0].condition = Condition::Any(vec![leaf.clone()]);
        let bytes = postcard::to_allocvec(&vec![&rule]).unwrap();
        // Any is variant 13, a one-element vector is length 1, Fs is 12 and RootReadOnly 0.
        let one_level: &[u8] = &[13, 1, 12, 0];
        let at = bytes
            .windows(one_level.len())
            .position(|w| w == one_level)
            .expect("the encoding of any = [fs]");
        let nest = |levels: usize| {
            let mut out = bytes[..at].to_vec();
            out.extend(std::iter::repeat_n([13u8, 1], levels).flatten());
            out.extend_from_slice(&[12, 0]);
            out.extend_from_slice(&bytes[at + one_level.len()..]);
            out
        };
        let ok = decode_compiled(leak(nest(MAX_NESTING))).unwrap();
        assert_eq!(ok[0].require[0].condition.depth(), MAX_NESTING);
        let e = decode_compiled(leak(nest(MAX_NESTING + 1))).unwrap_err();
        assert!(e.contains("more than 8 deep"), "{e}");
        let e = decode_compiled(leak(nest(100_000))).unwrap_err();
        assert!(e.contains("more than 8 deep"), "{e}");
        let e = decode_compiled(leak(bytes[..bytes.len() - 3].to_vec())).unwrap_err();
        assert!(e.contains("do not decode"), "{e}");
        // The per-thread depth unwinds on every path: a good section decodes after refused ones.
        assert!(decode_compiled(leak(nest(1))).is_ok());
    }

    /// One id twice is refused from the compiled rules and from the sources alike.
    #[test]
    fn a_duplicate_id_is_refused_on_both_paths() {
        let rule = parse_file("mine.toml", RULE).unwrap();
        let twice = compile(&[(rule.clone(), RULE.into()), (rule, RULE.into())]);
        let e = load_bytes(&twice).unwrap_err();
        assert!(e.message.contains("\"mine\" appears twice"), "{e}");
        let mut other_layout = twice;
        other_layout[16..24].copy_from_slice(b"00000000");
        let e = load_bytes(&other_layout).unwrap_err();
        assert!(e.message.contains("\"mine\" appears twice"), "{e}");
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.bundle");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let e = load(&path).unwrap_err();
        assert!(e.message.contains("not a regular file"), "{e}");
    }
}
