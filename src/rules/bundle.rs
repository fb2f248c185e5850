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
//! | offset | size | field                                                              |
//! |--------|------|--------------------------------------------------------------------|
//! | 0      | 16   | magic `hostprint rules\n`                                          |
//! | 16     | 8    | layout key: build.rs' checksum of `format.rs` and this file, hex   |
//! | 24     | 16   | version of the hostprint that compiled it, NUL-padded              |
//! | 40     | 8    | length of the compiled rules                                       |
//! | 48     | 4    | checksum of the compiled rules' index (its length and itself)      |
//! | 52     | 8    | length of the sources                                              |
//! | 60     | 4    | CRC-32 of the sources                                              |
//! | 64     | 8    | compiled rules: length of the index                                |
//! | 72     | …    | the index: postcard of [`Index`]                                   |
//! | …      | …    | the rules' bodies: postcard of each [`Fingerprint`], one after another |
//! | …      | …    | sources: postcard of `Vec<(file name, TOML text)>`                  |
//!
//! Decoding 500 rules into their types took ~0.5 ms however they were encoded (postcard builds
//! ~3,000 values a rule), and a probe needs few of them: a rule none of whose require or support
//! signals holds is not a candidate and has no weight, so it changes nothing a profile reports
//! (only `--explain`, which lists every rule). So the index holds what decides whether a rule can
//! hold anything — its *anchors*, computed here from its conditions — and every path and key file
//! the rules name, sorted (the bundle's part of what the probes look at, with nothing to sort at
//! run time). Loading reads the header and the index; a rule's body is read (at its offset, with
//! its own checksum) and decoded only when one of its anchors holds on the host, or when every rule
//! is asked for (`--explain`, `fingerprints`, `--check`). The file stays open for that, so a bundle
//! replaced on disk meanwhile (a ConfigMap update renames a new file in) is still read whole from
//! the one that was opened.
//!
//! Postcard is not self-describing: the compiled rules are only meaningful to a build whose types
//! are the same, which the layout key checks. A bundle from any other build (an upgraded DaemonSet
//! image still mounting last month's bundle) is not refused: its TOML sources, whose encoding never
//! changes, are parsed instead, at the TOML price, with a warning to recompile. A bundle whose index
//! or sources fail their checksum is damaged and refused (exit 2), like a malformed rule file: a rule
//! that silently does nothing is worse than one that does not load. A body that fails its own (the
//! file was overwritten in place) or does not decode (a bundle made by hand) is reported when it is
//! needed: a warning in the profile naming the rule, or exit 2 from `--check` and `fingerprints`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use super::eval::holds;
use super::{
    check_compiled, check_id, duplicate_id, named_paths, open_rule_file, parse_file,
    refused_for_nesting, Condition, Fingerprint, Matcher, RuleError, Str, UserRules, MAX_NESTING,
};
use crate::facts::Facts;
use crate::text::plain_component;

const MAGIC: &[u8; 16] = b"hostprint rules\n";
const HEADER_LEN: usize = 64;
/// A bundle is the rules of one fleet: 500 rules are ~0.7 MiB. 64 MiB is a mistake, not rules.
pub const MAX_LEN: u64 = 64 << 20;
/// The layout key of this build (see build.rs).
const LAYOUT: &str = env!("HOSTPRINT_RULES_LAYOUT");
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Separates the names in the index's path lists. No path holds one: the rule format refuses it,
/// and the kernel could not be asked for it.
const SEP: char = '\0';

/// The index of a bundle's compiled rules.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound(deserialize = "'de: 'static"))]
pub struct Index {
    /// Every path the rules' `path` conditions name, sorted, each once, NUL-separated: one string
    /// to decode and check instead of 2,000.
    paths: Str,
    /// Every file the rules' `kv_file` conditions read, the same way.
    kv_files: Str,
    /// The conditions anchors check as they are.
    conditions: Vec<Condition>,
    /// Every rule's anchors, one rule's after another's (one vector, not one per rule).
    anchors: Vec<Anchor>,
    rules: Vec<Entry>,
}

/// One rule in the index.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound(deserialize = "'de: 'static"))]
struct Entry {
    id: Str,
    /// Where its anchors end in `anchors` (they begin where the previous rule's end). At least one
    /// holds whenever one of the rule's require or support signals holds.
    anchors_end: u32,
    /// Where its body lies among the bodies, and the body's checksum.
    body_at: u32,
    body_len: u32,
    body_crc: u32,
}

/// What a signal needs in order to hold, cheaper to check than decoding its rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Anchor {
    /// Path `i` of the index is there: a `path` condition (a kind, a link target) holds only then.
    Path(u32),
    /// Key file `i` was read: a `kv_file` condition holds only then (but `present = false`).
    KvFile(u32),
    /// `conditions[i]` holds: anything else is checked as it is (os-release, PID 1, … are facts
    /// already gathered).
    Holds(u32),
}

/// Where anchors point: the index's sorted paths and key files, and the conditions checked as they
/// are (collected while anchoring).
struct Anchoring<'a> {
    paths: &'a [&'a str],
    kv_files: &'a [&'a str],
    conditions: Vec<Condition>,
}

impl Anchoring<'_> {
    /// The anchors of a condition: at least one holds whenever it holds.
    fn anchors(&mut self, c: &Condition, out: &mut Vec<Anchor>) {
        let at = |list: &[&str], path: &str| {
            let i = list.binary_search(&path).expect("every path was collected");
            u32::try_from(i).expect("fewer than 2^32 paths")
        };
        let mut holds = |c: &Condition| {
            self.conditions.push(c.clone());
            Anchor::Holds(u32::try_from(self.conditions.len() - 1).expect("fewer than 2^32"))
        };
        match c {
            Condition::Path { path, .. } | Condition::LinkTarget { path, .. } => {
                out.push(Anchor::Path(at(self.paths, path)))
            }
            Condition::KvFile {
                matcher: Matcher::Present(false),
                ..
            } => out.push(holds(c)),
            Condition::KvFile { path, .. } => out.push(Anchor::KvFile(at(self.kv_files, path))),
            // Any holds when one of them does; All only when all do, so the first one's anchors do.
            Condition::Any(cs) => cs.iter().for_each(|c| self.anchors(c, out)),
            Condition::All(cs) => match cs.first() {
                Some(first) => self.anchors(first, out),
                None => out.push(holds(c)),
            },
            _ => out.push(holds(c)),
        }
    }
}

/// The bundle of `rules`, each with the TOML `(file name, text)` it was parsed from.
pub fn compile(rules: &[(Fingerprint, String)]) -> Vec<u8> {
    let (paths, kv_files) = named_paths(rules.iter().map(|(rule, _)| rule));
    let paths: Vec<&str> = paths.into_iter().collect();
    let kv_files: Vec<&str> = kv_files.into_iter().collect();
    let mut anchoring = Anchoring {
        paths: &paths,
        kv_files: &kv_files,
        conditions: Vec::new(),
    };
    let (mut anchors, mut bodies) = (Vec::new(), Vec::new());
    let entries = rules
        .iter()
        .map(|(rule, _)| {
            let start = anchors.len();
            for s in rule.require.iter().chain(&rule.support) {
                anchoring.anchors(&s.condition, &mut anchors);
            }
            let mut own = anchors.split_off(start);
            own.sort_unstable();
            own.dedup();
            anchors.extend(own);
            let body = postcard::to_allocvec(rule).expect("serializing to memory cannot fail");
            let small = |n: usize| u32::try_from(n).expect("a bundle is smaller than 4 GiB");
            let entry = Entry {
                id: rule.id.clone(),
                anchors_end: small(anchors.len()),
                body_at: small(bodies.len()),
                body_len: small(body.len()),
                body_crc: checksum(&body),
            };
            bodies.extend_from_slice(&body);
            entry
        })
        .collect();
    let joined = |list: &[&str]| Str::from(list.join(&SEP.to_string()));
    let index = Index {
        paths: joined(&paths),
        kv_files: joined(&kv_files),
        conditions: anchoring.conditions,
        anchors,
        rules: entries,
    };
    let index = postcard::to_allocvec(&index).expect("serializing to memory cannot fail");
    let mut compiled = (index.len() as u64).to_le_bytes().to_vec();
    compiled.extend_from_slice(&index);
    let index_crc = checksum(&compiled);
    compiled.extend_from_slice(&bodies);
    let sources: Vec<(&str, &str)> = rules
        .iter()
        .map(|(rule, text)| (source_name(&rule.origin), text.as_str()))
        .collect();
    let sources = postcard::to_allocvec(&sources).expect("serializing to memory cannot fail");
    let mut out = Vec::with_capacity(HEADER_LEN + compiled.len() + sources.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&padded::<8>(LAYOUT));
    out.extend_from_slice(&padded::<16>(VERSION));
    out.extend_from_slice(&(compiled.len() as u64).to_le_bytes());
    out.extend_from_slice(&index_crc.to_le_bytes());
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

/// The checksum of a compiled index or body: XXH3-64, its low 32 bits (damage, not tampering, is
/// what it catches). Not CRC-32 as for the sources, whose check every build must keep (it is how a
/// bundle from another build is read); crc32fast detects CPU features at first use, which cost
/// ~70 µs of CPUID exits in a VM on every load.
fn checksum(bytes: &[u8]) -> u32 {
    xxhash_rust::xxh3::xxh3_64(bytes) as u32
}

fn padded<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [0u8; N];
    let n = s.len().min(N);
    out[..n].copy_from_slice(&s.as_bytes()[..n]);
    out
}

/// The names of an index's path list, each checked plain (as `text::is_plain` checks a rule's path) and
/// greater than the one before, in one pass over the bytes: splitting and checking 2,000 names with
/// the general functions was a tenth of a run's instructions.
fn split_checked(list: &'static str) -> Result<Vec<&'static str>, String> {
    let mut out: Vec<&'static str> = Vec::new();
    if list.is_empty() {
        return Ok(out);
    }
    let bytes = list.as_bytes();
    let (mut name_start, mut component_start) = (0, 0);
    // memchr finds the separators 32 bytes at a time; the end of the list ends the last name.
    let ends = memchr::memchr2_iter(b'/', SEP as u8, bytes).chain([bytes.len()]);
    for i in ends {
        // SEP and `/` are ASCII, so every index here is a char boundary.
        if !plain_component(&bytes[component_start..i]) {
            let end = memchr::memchr(SEP as u8, &bytes[name_start..])
                .map_or(list.len(), |n| name_start + n);
            return Err(super::inside_the_root(&list[name_start..end]));
        }
        component_start = i + 1;
        if bytes.get(i).is_none_or(|&b| b == SEP as u8) {
            let name = &list[name_start..i];
            if out.last().is_some_and(|&previous| previous >= name) {
                return Err("the index's paths are not sorted".into());
            }
            out.push(name);
            name_start = i + 1;
        }
    }
    Ok(out)
}

/// Where a bundle's bodies are read from.
#[derive(Clone, Debug)]
enum Bodies {
    /// The bundle file, kept open from loading on; the bodies begin at `start`.
    File { file: Arc<File>, start: u64 },
    /// Bytes in memory (the fuzz target, tests).
    Memory(&'static [u8]),
}

/// A loaded bundle: its index, and its rules as they are decoded.
#[derive(Clone, Debug)]
pub struct Bundle {
    origin: String,
    index: Index,
    bodies: Bodies,
    /// The index's path lists, split once (a name is found by bisection, never by a scan).
    paths: Vec<&'static str>,
    kv_files: Vec<&'static str>,
    /// One per rule, filled when the rule is first needed. Boxed: a slot is a pointer until then,
    /// so 500 untouched slots are 16 KiB, not 500 rules' worth of memory.
    decoded: Vec<OnceLock<Result<Box<Fingerprint>, String>>>,
}

impl Bundle {
    /// The ids of its rules, in order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.index.rules.iter().map(|e| e.id.as_str())
    }

    pub fn len(&self) -> usize {
        self.index.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.rules.is_empty()
    }

    /// Every path its rules name (sorted, each once).
    pub fn paths(&self) -> &[&'static str] {
        &self.paths
    }

    /// Every key file its rules read (sorted, each once).
    pub fn kv_files(&self) -> &[&'static str] {
        &self.kv_files
    }

    /// Rule `i`, read and decoded on first use. An error names the bundle and the rule.
    pub fn rule(&self, i: usize) -> Result<&Fingerprint, String> {
        let entry = &self.index.rules[i];
        self.decoded[i]
            .get_or_init(|| self.decode(entry).map(Box::new))
            .as_deref()
            .map_err(|m| format!("{}: rule {:?} is damaged: {m}", self.origin, entry.id))
    }

    fn decode(&self, entry: &Entry) -> Result<Fingerprint, String> {
        let (at, len) = (entry.body_at as usize, entry.body_len as usize);
        let bytes: &'static [u8] = match &self.bodies {
            Bodies::Memory(bodies) => bodies
                .get(at..at + len)
                .ok_or("its body lies past the bundle's end")?,
            Bodies::File { file, start } => {
                let mut body = vec![0u8; len];
                file.read_exact_at(&mut body, start + at as u64)
                    .map_err(|e| format!("reading its body: {e}"))?;
                // Kept for the life of the process, like the index: the rule borrows from it.
                Box::leak(body.into_boxed_slice())
            }
        };
        if checksum(bytes) != entry.body_crc {
            return Err(
                "its body fails its checksum (was the bundle overwritten in place?)".into(),
            );
        }
        let rule = decode_rule(bytes)?;
        if rule.id != entry.id {
            return Err(format!("its body is rule {:?}", rule.id));
        }
        Ok(rule)
    }

    /// The rule with this id, if the bundle has it.
    pub fn get(&self, id: &str) -> Option<Result<&Fingerprint, String>> {
        let i = self.index.rules.iter().position(|e| e.id == id)?;
        Some(self.rule(i))
    }

    /// Every rule, decoded.
    pub fn all(&self) -> impl Iterator<Item = Result<&Fingerprint, String>> {
        (0..self.len()).map(|i| self.rule(i))
    }

    /// The rules one of whose anchors holds over `facts`: those that can have a signal hold.
    pub fn anchored(&self, facts: &Facts) -> Vec<Result<&Fingerprint, String>> {
        let index = &self.index;
        let there = within(&self.paths, facts.paths.keys());
        let read = within(&self.kv_files, facts.kv_files.keys());
        let held: Vec<bool> = index.conditions.iter().map(|x| holds(x, facts)).collect();
        let holds = |anchor: &Anchor| match *anchor {
            Anchor::Path(i) => there[i as usize],
            Anchor::KvFile(i) => read[i as usize],
            Anchor::Holds(i) => held[i as usize],
        };
        let mut start = 0;
        let mut out = Vec::new();
        for (i, entry) in index.rules.iter().enumerate() {
            let end = entry.anchors_end as usize;
            if index.anchors[start..end].iter().any(holds) {
                out.push(self.rule(i));
            }
            start = end;
        }
        out
    }
}

/// For each of `names` (sorted), whether it is among `keys`: a bisection per key (a few dozen paths
/// are there), not a comparison per name (2,000 are asked about).
fn within<'k>(names: &[&str], keys: impl Iterator<Item = &'k String>) -> Vec<bool> {
    let mut out = vec![false; names.len()];
    for key in keys {
        if let Ok(i) = names.binary_search(&key.as_str()) {
            out[i] = true;
        }
    }
    out
}

/// Why compiled bytes did not decode.
enum Undecoded {
    /// `any`/`all` nested past [`MAX_NESTING`] (refused while decoding, before the stack could run
    /// out; postcard keeps no custom error text, so the reason comes from `refused_for_nesting`).
    TooDeep,
    Bad(postcard::Error),
}

/// Postcard of `T` (a rule or an index), with the nesting refusal told apart from other damage.
fn from_postcard<T: Deserialize<'static>>(bytes: &'static [u8]) -> Result<T, Undecoded> {
    refused_for_nesting();
    postcard::from_bytes(bytes).map_err(|e| match refused_for_nesting() {
        true => Undecoded::TooDeep,
        false => Undecoded::Bad(e),
    })
}

/// One rule's body, decoded and checked as [`check_compiled`] does. Public for the fuzz target.
pub fn decode_rule(bytes: &'static [u8]) -> Result<Fingerprint, String> {
    let rule: Fingerprint = from_postcard(bytes).map_err(|e| match e {
        Undecoded::TooDeep => format!("it nests any/all more than {MAX_NESTING} deep"),
        Undecoded::Bad(e) => format!("it does not decode: {e}"),
    })?;
    check_compiled(&rule)?;
    Ok(rule)
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
    let (compiled_len, index_crc) = (u64_at(40), u32_at(48));
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
        let damaged = || fail("damaged: the compiled rules' index fails its checksum".into());
        let mut index_len = [0u8; 8];
        file.read_exact(&mut index_len).map_err(|_| damaged())?;
        let index_len = u64::from_le_bytes(index_len);
        if index_len > compiled_len.saturating_sub(8) {
            return Err(damaged());
        }
        // Read into reserved room rather than a zeroed buffer (zeroing it was a twentieth of a load).
        let mut index = Vec::with_capacity(index_len as usize);
        (&mut file)
            .take(index_len)
            .read_to_end(&mut index)
            .map_err(|e| fail(format!("reading: {e}")))?;
        if index.len() as u64 != index_len {
            return Err(damaged());
        }
        let mut sum = xxhash_rust::xxh3::Xxh3::new();
        sum.update(&index_len.to_le_bytes());
        sum.update(&index);
        if sum.digest() as u32 != index_crc {
            return Err(damaged());
        }
        // Kept for the life of the process: the index's strings are borrowed from these bytes
        // instead of copied. A process loads its rules once (the CLI keeps them to the end,
        // `--interval` included), so this is never repeated.
        let index: &'static [u8] = Box::leak(index.into_boxed_slice());
        let bodies = Bodies::File {
            file: Arc::new(file),
            start: HEADER_LEN as u64 + 8 + index_len,
        };
        let bodies_len = compiled_len - 8 - index_len;
        let bundle = decode_index(index, bodies, bodies_len, &origin)
            .map_err(|m| fail(format!("damaged: {m}")))?;
        return Ok(UserRules {
            rules: Vec::new(),
            bundle: Some(bundle),
            note: None,
        });
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
        bundle: None,
        note: Some(note),
    })
}

/// A bundle from its compiled rules in memory (index length, index, bodies: the section as a file
/// holds it), the index checked, the bodies checked as they are decoded. Public for the fuzz target:
/// the checksums keep random damage out, not a hand-made section.
pub fn decode_compiled(compiled: &'static [u8], origin: &str) -> Result<Bundle, String> {
    let (len, rest) = compiled.split_at_checked(8).ok_or("too short")?;
    let len = u64::from_le_bytes(len.try_into().expect("8 bytes"));
    let len = usize::try_from(len).map_err(|_| "its index is longer than it")?;
    let (index, bodies) = rest
        .split_at_checked(len)
        .ok_or("its index is longer than it")?;
    decode_index(index, Bodies::Memory(bodies), bodies.len() as u64, origin)
}

/// The index, checked: valid unique ids, plain sorted paths, anchors that point into the index,
/// bodies that lie within the `bodies_len` bytes of bodies.
fn decode_index(
    bytes: &'static [u8],
    bodies: Bodies,
    bodies_len: u64,
    origin: &str,
) -> Result<Bundle, String> {
    let index: Index = from_postcard(bytes).map_err(|e| match e {
        Undecoded::TooDeep => {
            format!("the compiled rules nest any/all more than {MAX_NESTING} deep")
        }
        Undecoded::Bad(e) => format!("the compiled rules do not decode: {e}"),
    })?;
    let split = |list: &Str| -> Result<Vec<&'static str>, String> {
        let list: &'static str = match list {
            Str::Static(list) => list,
            // Decoded from bytes that live for the process, so always borrowed; a copy is kept the
            // same way, should a deserializer ever hand one out.
            Str::Shared(list) => Box::leak(list.to_string().into_boxed_str()),
        };
        split_checked(list)
    };
    let (paths, kv_files) = (split(&index.paths)?, split(&index.kv_files)?);
    let in_range = |anchor: &Anchor| match *anchor {
        Anchor::Path(i) => (i as usize) < paths.len(),
        Anchor::KvFile(i) => (i as usize) < kv_files.len(),
        Anchor::Holds(i) => (i as usize) < index.conditions.len(),
    };
    if !index.anchors.iter().all(in_range) {
        return Err("an anchor points past the index".into());
    }
    let mut start = 0;
    for entry in &index.rules {
        check_id(&entry.id)?;
        let end = entry.anchors_end as usize;
        if end < start || end > index.anchors.len() {
            return Err(format!("rule {:?}'s anchors are out of order", entry.id));
        }
        start = end;
        if u64::from(entry.body_at) + u64::from(entry.body_len) > bodies_len {
            return Err(format!("rule {:?}'s body lies past the end", entry.id));
        }
    }
    if let Some((_, again)) = duplicate_id(index.rules.iter().map(|e| e.id.as_str())) {
        return Err(format!("id {:?} appears twice", index.rules[again].id));
    }
    let decoded = (0..index.rules.len()).map(|_| OnceLock::new()).collect();
    Ok(Bundle {
        origin: origin.to_string(),
        index,
        bodies,
        paths,
        kv_files,
        decoded,
    })
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

    fn bundle_of(loaded: UserRules) -> Bundle {
        assert!(loaded.note.is_none() && loaded.rules.is_empty());
        loaded.bundle.expect("a compiled bundle")
    }

    #[test]
    fn round_trips_the_rules_exactly() {
        let bundle = bundle_of(load_bytes(&bundle()).unwrap());
        let rules: Vec<_> = bundle.all().map(Result::unwrap).collect();
        let parsed = parse_file("/somewhere/mine.toml", RULE).unwrap();
        assert_eq!(format!("{rules:?}"), format!("{:?}", vec![&parsed]));
        assert_eq!(bundle.paths(), ["etc/mine"]);
    }

    /// An index's path list: split, each name plain and after the one before, or refused naming
    /// the name.
    #[test]
    fn path_lists_are_split_and_checked() {
        assert_eq!(split_checked("").unwrap(), Vec::<&str>::new());
        assert_eq!(
            split_checked("etc/a\0etc/b\0usr/share/x").unwrap(),
            ["etc/a", "etc/b", "usr/share/x"]
        );
        for (list, bad) in [
            ("etc/a\0etc/../x", "etc/../x"),
            ("./a", "./a"),
            ("a/\0b", "a/"),
            ("a\0\0b", ""),
            ("/etc", "/etc"),
            ("a//b", "a//b"),
        ] {
            let e = split_checked(list).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{list:?}: {e}");
        }
        for unsorted in ["b\0a", "a\0a"] {
            let e = split_checked(unsorted).unwrap_err();
            assert!(e.contains("not sorted"), "{e}");
        }
    }

    /// The anchors of each kind of condition: a rule is considered exactly when one holds.
    #[test]
    fn anchors_stand_for_the_conditions() {
        use super::super::{FsFlag, PathKind};
        let path = |p: &str| Condition::Path {
            path: p.to_string().into(),
            kind: PathKind::File,
        };
        let kv = |present: bool| Condition::KvFile {
            path: "etc/k".to_string().into(),
            key: "K".into(),
            matcher: Matcher::Present(present),
        };
        let fs = Condition::Fs(FsFlag::RootReadOnly);
        let (paths, kv_files) = (["a", "b", "c"], ["etc/k"]);
        let mut anchoring = Anchoring {
            paths: &paths,
            kv_files: &kv_files,
            conditions: Vec::new(),
        };
        let mut of = |c: &Condition| {
            let mut out = Vec::new();
            anchoring.anchors(c, &mut out);
            out
        };
        assert_eq!(of(&path("b")), [Anchor::Path(1)]);
        assert_eq!(of(&kv(true)), [Anchor::KvFile(0)]);
        assert_eq!(of(&kv(false)), [Anchor::Holds(0)]);
        assert_eq!(of(&fs), [Anchor::Holds(1)]);
        assert_eq!(
            of(&Condition::Any(vec![path("a"), fs.clone()])),
            [Anchor::Path(0), Anchor::Holds(2)]
        );
        assert_eq!(
            of(&Condition::All(vec![path("c"), fs.clone()])),
            [Anchor::Path(2)]
        );
        assert_eq!(anchoring.conditions, [kv(false), fs.clone(), fs]);
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
    /// while evaluating, rendering, dropping). Decoding stops at `MAX_NESTING`, with a reason, in a
    /// rule's body (when it is decoded) and in the index (when the bundle is loaded).
    #[test]
    fn deep_nesting_is_refused_while_decoding() {
        use super::super::{FsFlag, MAX_NESTING};
        let leaf = Condition::Fs(FsFlag::RootReadOnly);
        // Any is variant 13, a one-element vector is length 1, Fs is 12 and RootReadOnly 0.
        let one_level: &[u8] = &[13, 1, 12, 0];
        let nest = |bytes: &[u8], levels: usize| {
            let at = bytes
                .windows(one_level.len())
                .position(|w| w == one_level)
                .expect("the encoding of any = [fs]");
            let mut out = bytes[..at].to_vec();
            out.extend(std::iter::repeat_n([13u8, 1], levels).flatten());
            out.extend_from_slice(&[12, 0]);
            out.extend_from_slice(&bytes[at + one_level.len()..]);
            out
        };

        let mut rule = parse_file("mine.toml", RULE).unwrap();
        rule.require[0].condition = Condition::Any(vec![leaf.clone()]);
        let body = postcard::to_allocvec(&rule).unwrap();
        let ok = decode_rule(leak(nest(&body, MAX_NESTING))).unwrap();
        assert_eq!(ok.require[0].condition.depth(), MAX_NESTING);
        for levels in [MAX_NESTING + 1, 100_000] {
            let e = decode_rule(leak(nest(&body, levels))).unwrap_err();
            assert!(e.contains("more than 8 deep"), "{e}");
        }
        let e = decode_rule(leak(body[..body.len() - 3].to_vec())).unwrap_err();
        assert!(e.contains("does not decode"), "{e}");

        // The same in the index, which is decoded as the bundle loads.
        let index = Index {
            paths: Str::default(),
            kv_files: Str::default(),
            conditions: vec![Condition::Any(vec![leaf])],
            anchors: vec![Anchor::Holds(0)],
            rules: vec![entry("mine", &body, 0, 1)],
        };
        let bytes = postcard::to_allocvec(&index).unwrap();
        let e = decode_compiled(section(&nest(&bytes, 100_000), &body), "b").unwrap_err();
        assert!(e.contains("more than 8 deep"), "{e}");
        let e = decode_compiled(section(&bytes[..bytes.len() - 3], &body), "b").unwrap_err();
        assert!(e.contains("do not decode"), "{e}");
        // The per-thread depth unwinds on every path: a good section decodes after refused ones.
        let bundle = decode_compiled(section(&nest(&bytes, 1), &body), "b").unwrap();
        assert!(bundle.rule(0).is_ok());
    }

    /// An index entry for a body at `at` among the bodies.
    fn entry(id: &str, body: &[u8], at: usize, anchors_end: u32) -> Entry {
        Entry {
            id: id.to_string().into(),
            anchors_end,
            body_at: at as u32,
            body_len: body.len() as u32,
            body_crc: checksum(body),
        }
    }

    /// A compiled section in memory: the index's length, the index, the bodies.
    fn section(index: &[u8], bodies: &[u8]) -> &'static [u8] {
        let mut out = (index.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(index);
        out.extend_from_slice(bodies);
        leak(out)
    }

    /// A body that does not decode (a bundle made by hand: its checksum is right), that fails its
    /// checksum (overwritten in place) or that is another rule is an error naming the bundle and
    /// the rule when that rule is needed, and the other rules still load.
    #[test]
    fn a_damaged_body_names_its_rule() {
        let good = postcard::to_allocvec(&parse_file("mine.toml", RULE).unwrap()).unwrap();
        let broken = [0xffu8, 0xff, 0xff];
        let mut bodies = broken.to_vec();
        bodies.extend_from_slice(&good);
        let mut flipped = entry("flipped", &good, 3, 0);
        flipped.body_crc ^= 1;
        let index = Index {
            paths: Str::default(),
            kv_files: Str::default(),
            conditions: Vec::new(),
            anchors: Vec::new(),
            rules: vec![
                entry("broken", &broken, 0, 0),
                entry("mine", &good, 3, 0),
                entry("other", &good, 3, 0),
                flipped,
            ],
        };
        let index = postcard::to_allocvec(&index).unwrap();
        let bundle = decode_compiled(section(&index, &bodies), "b.rules").unwrap();
        let e = bundle.rule(0).unwrap_err();
        assert!(
            e.starts_with("b.rules: rule \"broken\" is damaged: "),
            "{e}"
        );
        assert_eq!(bundle.rule(1).unwrap().id, "mine");
        let e = bundle.rule(2).unwrap_err();
        assert!(e.contains("its body is rule \"mine\""), "{e}");
        let e = bundle.rule(3).unwrap_err();
        assert!(e.contains("fails its checksum"), "{e}");

        // A body said to lie past the bodies is refused with the index.
        let mut past = entry("mine", &good, 3, 0);
        past.body_len += 1;
        let index = Index {
            paths: Str::default(),
            kv_files: Str::default(),
            conditions: Vec::new(),
            anchors: Vec::new(),
            rules: vec![past],
        };
        let index = postcard::to_allocvec(&index).unwrap();
        let e = decode_compiled(section(&index, &bodies), "b").unwrap_err();
        assert!(e.contains("lies past the end"), "{e}");
    }

    /// A body read from the file checks its CRC there too: the bundle overwritten in place after
    /// loading (not renamed over) gives a warning-worthy error, not a different rule.
    #[test]
    fn a_body_changed_on_disk_after_loading_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.bundle");
        let bytes = bundle();
        std::fs::write(&path, &bytes).unwrap();
        let bundle = bundle_of(load(&path).unwrap());
        let mut changed = bytes.clone();
        let last_body_byte = bytes.len() - 1 - sources_len(&bytes);
        changed[last_body_byte] ^= 0x01;
        std::fs::write(&path, &changed).unwrap();
        let e = bundle.rule(0).unwrap_err();
        assert!(e.contains("fails its checksum"), "{e}");
    }

    fn sources_len(bundle: &[u8]) -> usize {
        u64::from_le_bytes(bundle[52..60].try_into().unwrap()) as usize
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
