//! Fingerprint rules: loading, validating and listing them.
//!
//! Rules are data (`fingerprints/*.toml`, schema in `fingerprints/README.md`), embedded in the binary
//! at build time and extended or overridden by id with `--fingerprints DIR`. Loading is strict — an
//! unknown key, a signal with two conditions or none, a bad kind — because a rule that silently does
//! nothing is worse than one that refuses to load; every error names `file:line`. The format and its
//! validation live in [`format`] (which `build.rs` also compiles, to check and pre-build the shipped
//! rules); matching lives in [`eval`].

pub mod bundle;
pub mod eval;
mod format;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::facts::Wanted;

pub use format::*;

/// The shipped rules, validated by [`parse_file`] at build time and written out by build.rs as Rust
/// code that constructs them: `shipped()` (and, for tests, the TOML `SOURCES` they came from).
mod shipped {
    use super::*;
    include!(concat!(env!("OUT_DIR"), "/fingerprints.rs"));
}

/// The set of rules in force.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    pub rules: Vec<Fingerprint>,
}

impl RuleSet {
    /// The rules shipped in the binary. They were parsed and validated when hostprint was built, so
    /// this only constructs them (it cannot fail; the `Result` keeps callers ready for rules that could).
    pub fn embedded() -> Result<RuleSet, RuleError> {
        let mut set = RuleSet::default();
        set.extend(shipped::shipped());
        Ok(set)
    }

    /// Loads every `*.toml` in `dir` (sorted, so a duplicate id is reported the same way each time).
    pub fn load_dir(dir: &Path) -> Result<Vec<Fingerprint>, RuleError> {
        Ok(Self::load_dir_with_sources(dir)?
            .into_iter()
            .map(|(rule, _)| rule)
            .collect())
    }

    /// [`RuleSet::load_dir`], keeping each rule's TOML text (for `fingerprints --compile`).
    pub fn load_dir_with_sources(dir: &Path) -> Result<Vec<(Fingerprint, String)>, RuleError> {
        let io_err = |e: std::io::Error| RuleError {
            file: dir.display().to_string(),
            line: 0,
            message: e.to_string(),
        };
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(io_err)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        let mut out: Vec<(Fingerprint, String)> = Vec::new();
        for path in files {
            let origin = path.display().to_string();
            let fail = |message: String| RuleError {
                file: origin.clone(),
                line: 0,
                message,
            };
            // Rule files are small; a huge one is a mistake, not a rule.
            let (mut file, len) = open_rule_file(&path, 1 << 20).map_err(fail)?;
            let mut text = String::with_capacity(len as usize);
            file.read_to_string(&mut text)
                .map_err(|e| fail(e.to_string()))?;
            out.push((parse_file(&origin, &text)?, text));
        }
        if let Some((first, again)) = duplicate_id(out.iter().map(|(rule, _)| rule.id.as_str())) {
            return Err(RuleError {
                file: out[again].0.origin.to_string(),
                line: 1,
                message: format!(
                    "id {:?} is already defined in {}",
                    out[again].0.id, out[first].0.origin
                ),
            });
        }
        Ok(out)
    }

    /// The user rules at `path`: a directory of `*.toml` files or a compiled bundle.
    pub fn load_user(path: &Path) -> Result<UserRules, RuleError> {
        if path.is_dir() {
            let rules = Self::load_dir(path)?;
            return Ok(UserRules { rules, note: None });
        }
        bundle::load(path)
    }

    /// Adds rules, each replacing one with the same id. One index for the whole batch: inserting
    /// 500 user rules one by one compared ids ~150,000 times.
    pub fn extend(&mut self, rules: impl IntoIterator<Item = Fingerprint>) {
        let rules = rules.into_iter();
        // Room for all at once: growing by doubling copied 500 rules' worth of memory several times.
        self.rules.reserve(rules.size_hint().0);
        let mut index: HashMap<Str, usize> = self
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.clone(), i))
            .collect();
        for rule in rules {
            match index.get(&rule.id) {
                Some(&i) => self.rules[i] = rule,
                None => {
                    index.insert(rule.id.clone(), self.rules.len());
                    self.rules.push(rule);
                }
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<&Fingerprint> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// Every path and key file the rules ask about, so the probes look at exactly those.
    pub fn wanted(&self) -> Wanted<'_> {
        let mut wanted = Wanted::default();
        fn visit<'r>(c: &'r Condition, w: &mut Wanted<'r>) {
            match c {
                Condition::Path { path, .. } | Condition::LinkTarget { path, .. } => {
                    w.paths.insert(path);
                }
                Condition::KvFile { path, .. } => {
                    w.kv_files.insert(path);
                }
                Condition::Any(cs) | Condition::All(cs) => cs.iter().for_each(|c| visit(c, w)),
                _ => {}
            }
        }
        for rule in &self.rules {
            for s in rule
                .require
                .iter()
                .chain(&rule.support)
                .chain(&rule.exclude)
            {
                visit(&s.condition, &mut wanted);
            }
            for r in &rule.roles {
                visit(&r.condition, &mut wanted);
            }
        }
        wanted
    }

    /// Ids referenced by lineage/successor that no rule defines (for the lint).
    pub fn dangling_references(&self) -> BTreeMap<String, BTreeSet<String>> {
        let ids: BTreeSet<_> = self.rules.iter().map(|r| r.id.as_str()).collect();
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for r in &self.rules {
            for other in r.lineage.iter().chain(r.successor.iter()) {
                if !ids.contains(other.as_str()) {
                    out.entry(r.id.to_string())
                        .or_default()
                        .insert(other.to_string());
                }
            }
        }
        out
    }
}

/// User rules (`--fingerprints`), and what the user should know about how they were read.
#[derive(Debug)]
pub struct UserRules {
    pub rules: Vec<Fingerprint>,
    /// Set when a bundle's compiled section could not be used and its sources were parsed instead.
    pub note: Option<String>,
}

/// The first id given twice, as (first position, second position): one check for rule directories,
/// bundles and bundle sources.
fn duplicate_id<'a>(ids: impl IntoIterator<Item = &'a str>) -> Option<(usize, usize)> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, id) in ids.into_iter().enumerate() {
        if let Some(&first) = seen.get(id) {
            return Some((first, i));
        }
        seen.insert(id, i);
    }
    None
}

/// Opens a rule file or bundle given on the command line, refusing what is not a regular file (a FIFO
/// would block the read forever) or is larger than `cap`. Returns the file and its length.
fn open_rule_file(path: &Path, cap: u64) -> Result<(File, u64), String> {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, before we can fstat.
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > cap {
        return Err(format!("larger than {} MiB; not a rule file", cap >> 20));
    }
    Ok((file, meta.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_rules_load() {
        let set = RuleSet::embedded().expect("shipped rules are valid");
        assert!(set.get("flatcar").is_some());
        let mut ids: Vec<_> = set.rules.iter().map(|r| r.id.clone()).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "ids are unique");
    }

    /// The code build.rs generated is exactly what parsing the TOML at run time gives (Debug shows
    /// every field, in order).
    #[test]
    fn generated_rules_equal_parsed_rules() {
        let generated = shipped::shipped();
        assert_eq!(generated.len(), shipped::SOURCES.len());
        for (rule, (name, text)) in generated.iter().zip(shipped::SOURCES) {
            let parsed = parse_file(name, text).expect("shipped rules are valid");
            assert_eq!(format!("{rule:#?}"), format!("{parsed:#?}"), "{name}");
        }
    }

    fn error_of(text: &str) -> RuleError {
        parse_file("t.toml", text).unwrap_err()
    }

    const HEAD: &str = "id = \"x\"\nname = \"X\"\nkind = \"container-os\"\n";

    #[test]
    fn errors_name_their_line() {
        let e = error_of(&format!(
            "{HEAD}\n[[require]]\nwhy = \"w\"\nos_release = {{ key = \"ID\", equals = \"x\" }}\npath = {{ path = \"etc\" }}\n"
        ));
        assert_eq!(e.line, 5);
        assert!(e.message.contains("more than one condition"), "{e}");

        let e = error_of(&format!(
            "{HEAD}\n[[require]]\nos_release = {{ key = \"ID\", equals = \"x\" }}\n"
        ));
        assert!(e.message.contains("needs a `why`"), "{e}");
        assert_eq!(e.line, 5);

        let e = error_of("id = \"x\"\nname = \"X\"\nkind = \"os\"\n");
        assert_eq!(e.line, 3);

        let e = error_of(&format!("{HEAD}colour = \"red\"\n"));
        assert_eq!(e.line, 4);
        assert!(e.message.contains("colour"), "{e}");

        let e = error_of(&format!(
            "{HEAD}[[require]]\nwhy = \"w\"\npath = {{ path = \"../etc/shadow\" }}\n"
        ));
        assert!(e.message.contains("inside the root"), "{e}");

        let e = error_of(&format!(
            "{HEAD}eol = \"2020-13-01\"\n[[require]]\nwhy=\"w\"\ninit=\"systemd\"\n"
        ));
        assert_eq!(e.line, 4);

        let e = error_of(HEAD);
        assert!(e.message.contains("at least one [[require]]"), "{e}");
    }

    /// What parses must load from a bundle: the TOML side refuses the nesting the decoder refuses.
    #[test]
    fn toml_nesting_is_bounded_like_bundles() {
        let nest = |levels: usize| {
            let mut c = "{ fs = \"root_read_only\" }".to_string();
            for _ in 0..levels {
                c = format!("{{ any = [ {c} ] }}");
            }
            format!("{HEAD}\n[[require]]\nwhy = \"w\"\n{}\n", &c[2..c.len() - 2])
        };
        let ok = parse_file("t.toml", &nest(MAX_NESTING)).unwrap();
        assert_eq!(ok.require[0].condition.depth(), MAX_NESTING);
        let e = parse_file("t.toml", &nest(MAX_NESTING + 1)).unwrap_err();
        assert!(e.message.contains("more than 8 deep"), "{e}");
        assert_eq!(e.line, 5);
    }

    /// Two files with one id: the second is named, at line 1, with where the first one was.
    #[test]
    fn a_duplicate_id_in_a_directory_names_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let rule = format!("{HEAD}[[require]]\nwhy = \"w\"\ninit = \"systemd\"\n");
        std::fs::write(dir.path().join("a.toml"), &rule).unwrap();
        std::fs::write(dir.path().join("b.toml"), &rule).unwrap();
        let e = RuleSet::load_dir(dir.path()).unwrap_err();
        assert!(e.file.ends_with("b.toml"), "{e}");
        assert_eq!(e.line, 1);
        assert!(
            e.message.contains("already defined in") && e.message.ends_with("a.toml"),
            "{e}"
        );
    }

    #[test]
    fn nested_any_all() {
        let r = parse_file(
            "t.toml",
            &format!(
                "{HEAD}[[require]]\nwhy = \"w\"\nany = [ {{ os_release = {{ key = \"ID\", equals = \"a\" }} }}, {{ all = [ {{ init = \"systemd\" }}, {{ fs = \"ostree_booted\" }} ] }} ]\n"
            ),
        )
        .unwrap();
        assert!(
            matches!(&r.require[0].condition, Condition::Any(v) if matches!(&v[1], Condition::All(w) if w.len() == 2))
        );
    }
}
