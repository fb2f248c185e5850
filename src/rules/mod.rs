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

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
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

/// The set of rules in force: the shipped rules and TOML user rules, decoded, and a compiled user
/// bundle whose rules are decoded as they are needed ([`bundle`]).
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    pub rules: Vec<Fingerprint>,
    bundle: Option<bundle::Bundle>,
}

/// The rules a probe evaluates ([`RuleSet::considered`]), and the bundle rules that could not be
/// decoded (a warning each).
#[derive(Debug, Default)]
pub struct Considered<'r> {
    pub rules: Vec<&'r Fingerprint>,
    pub damaged: Vec<String>,
}

impl RuleSet {
    /// The rules shipped in the binary. They were parsed and validated when hostprint was built, so
    /// this only constructs them (it cannot fail; the `Result` keeps callers ready for rules that could).
    pub fn embedded() -> Result<RuleSet, RuleError> {
        let mut set = RuleSet::default();
        set.extend(shipped::shipped());
        Ok(set)
    }

    /// Adds the rules of a compiled bundle, each replacing the rule with its id.
    pub fn add_bundle(&mut self, bundle: bundle::Bundle) {
        let ids: HashSet<&str> = bundle.ids().collect();
        self.rules.retain(|r| !ids.contains(r.id.as_str()));
        if let Some(old) = self.bundle.take() {
            // One bundle per process (`--fingerprints` takes one path); a second replaces the first's
            // rules by id, as `extend` would, by decoding the first.
            let kept: Vec<Fingerprint> = old
                .all()
                .filter_map(Result::ok)
                .filter(|r| !ids.contains(r.id.as_str()))
                .cloned()
                .collect();
            self.rules.extend(kept);
        }
        self.bundle = Some(bundle);
    }

    /// The rules whose signals can hold over `facts`: every decoded rule, and the bundle's rules one
    /// of whose anchors holds. The others have no signal that holds, so no candidate and no weight
    /// among them: they change nothing in a profile but `--explain`, which asks for [`RuleSet::all`].
    pub fn considered(&self, facts: &crate::facts::Facts) -> Considered<'_> {
        let from_bundle = self.bundle.as_ref().map(|b| b.anchored(facts));
        self.with_bundle_rules(from_bundle.into_iter().flatten())
    }

    /// Every rule, the bundle's decoded (`--explain`, `fingerprints`, `--check`).
    pub fn all(&self) -> Considered<'_> {
        self.with_bundle_rules(self.bundle.iter().flat_map(bundle::Bundle::all))
    }

    /// The decoded rules, then the bundle rules given, each decoded or reported damaged.
    fn with_bundle_rules<'r>(
        &'r self,
        from_bundle: impl Iterator<Item = Result<&'r Fingerprint, String>>,
    ) -> Considered<'r> {
        let mut out = Considered {
            rules: self.rules.iter().collect(),
            damaged: Vec::new(),
        };
        for rule in from_bundle {
            match rule {
                Ok(rule) => out.rules.push(rule),
                Err(e) => out.damaged.push(e),
            }
        }
        out
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
            return Ok(UserRules {
                rules,
                bundle: None,
                note: None,
            });
        }
        bundle::load(path)
    }

    /// Adds user rules: each replaces the rule with its id.
    pub fn add_user(&mut self, user: UserRules) {
        self.extend(user.rules);
        if let Some(bundle) = user.bundle {
            self.add_bundle(bundle);
        }
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

    /// The rule with this id (a bundle's is decoded; a damaged one is not found).
    pub fn get(&self, id: &str) -> Option<&Fingerprint> {
        self.rules
            .iter()
            .find(|r| r.id == id)
            .or_else(|| self.bundle.as_ref()?.get(id)?.ok())
    }

    /// Every path and key file the rules ask about, sorted, each once, so the probes look at exactly
    /// those. A bundle's lists come sorted; they are merged in, not sorted again.
    pub fn wanted(&self) -> Wanted<'_> {
        let (paths, kv_files) = named_paths(&self.rules);
        match &self.bundle {
            None => Wanted {
                paths: paths.into_iter().collect(),
                kv_files: kv_files.into_iter().collect(),
            },
            Some(bundle) => Wanted {
                paths: merged(paths, bundle.paths()),
                kv_files: merged(kv_files, bundle.kv_files()),
            },
        }
    }

    /// Ids referenced by lineage/successor that no rule defines (for the lint).
    pub fn dangling_references(&self) -> BTreeMap<String, BTreeSet<String>> {
        let all = self.all();
        let ids: BTreeSet<_> = all.rules.iter().map(|r| r.id.as_str()).collect();
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for r in &all.rules {
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

/// Every path the rules' conditions name, and every key file they read, sorted, each once: what
/// the probes look at for them ([`RuleSet::wanted`]), and a compiled bundle's index of them.
fn named_paths<'r>(
    rules: impl IntoIterator<Item = &'r Fingerprint>,
) -> (BTreeSet<&'r str>, BTreeSet<&'r str>) {
    let (mut paths, mut kv_files) = (BTreeSet::new(), BTreeSet::new());
    for c in rules.into_iter().flat_map(Fingerprint::conditions) {
        c.named(&mut |use_, path| match use_ {
            Named::Path => {
                paths.insert(path);
            }
            Named::KvFile => {
                kv_files.insert(path);
            }
        });
    }
    (paths, kv_files)
}

/// A few sorted names (the decoded rules') and many (a bundle's), as one sorted list, each once.
/// Each of the few is placed by bisection and the many are copied between them in runs: ~100
/// bisections instead of comparing 2,000 names one by one.
fn merged<'a>(few: BTreeSet<&'a str>, many: &[&'a str]) -> Vec<&'a str> {
    let mut out = Vec::with_capacity(few.len() + many.len());
    let mut rest = many;
    for name in few {
        let at = rest.partition_point(|&m| m < name);
        out.extend_from_slice(&rest[..at]);
        out.push(name);
        rest = &rest[at..];
        if rest.first() == Some(&name) {
            rest = &rest[1..];
        }
    }
    out.extend_from_slice(rest);
    out
}

/// User rules (`--fingerprints`), and what the user should know about how they were read.
#[derive(Debug)]
pub struct UserRules {
    /// Decoded rules: from a directory, or from a bundle's sources.
    pub rules: Vec<Fingerprint>,
    /// A compiled bundle, whose rules are decoded as they are needed.
    pub bundle: Option<bundle::Bundle>,
    /// Set when a bundle's compiled section could not be used and its sources were parsed instead.
    pub note: Option<String>,
}

/// The first id given twice, as (first position, second position): one check for rule directories,
/// bundles and bundle sources.
fn duplicate_id<'a>(ids: impl IntoIterator<Item = &'a str>) -> Option<(usize, usize)> {
    // foldhash, sized once: SipHash and the map's regrowth were a fifth of decoding a bundle's index.
    let ids = ids.into_iter();
    let mut seen: foldhash::HashMap<&str, usize> =
        HashMap::with_capacity_and_hasher(ids.size_hint().0, Default::default());
    for (i, id) in ids.enumerate() {
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
            "{HEAD}[[require]]\nwhy = \"w\"\npath = {{ path = \"etc/a\\u0000b\" }}\n"
        ));
        assert!(e.message.contains("NUL"), "{e}");
        assert_eq!(e.line, 4);

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

    /// A second bundle replaces the first's rules by id, as `extend` replaces decoded ones; the first
    /// bundle's other rules stay.
    #[test]
    fn a_second_bundle_replaces_by_id() {
        let dir = tempfile::tempdir().unwrap();
        let rule = |id: &str, name: &str| {
            let text = format!(
                "id = \"{id}\"\nname = \"{name}\"\nkind = \"container-os\"\n[[require]]\nwhy = \"w\"\ninit = \"systemd\"\n"
            );
            (parse_file(&format!("{id}.toml"), &text).unwrap(), text)
        };
        let load = |file: &str, rules: &[(Fingerprint, String)]| {
            let path = dir.path().join(file);
            std::fs::write(&path, bundle::compile(rules)).unwrap();
            RuleSet::load_user(&path).unwrap()
        };
        let mut set = RuleSet::default();
        set.add_user(load("one", &[rule("a", "A1"), rule("b", "B1")]));
        set.add_user(load("two", &[rule("b", "B2"), rule("c", "C2")]));
        let all = set.all();
        assert!(all.damaged.is_empty());
        let mut names: Vec<String> = all
            .rules
            .iter()
            .map(|r| format!("{}={}", r.id, r.name))
            .collect();
        names.sort();
        assert_eq!(names, ["a=A1", "b=B2", "c=C2"]);
    }

    /// The decoded rules' paths merged into a bundle's: sorted, each once, whichever list had it.
    #[test]
    fn merged_keeps_order_and_drops_repeats() {
        let few: BTreeSet<&str> = ["a", "c", "e", "z"].into();
        assert_eq!(
            merged(few.clone(), &["b", "c", "d", "e", "f"]),
            ["a", "b", "c", "d", "e", "f", "z"]
        );
        assert_eq!(merged(few.clone(), &[]), ["a", "c", "e", "z"]);
        assert_eq!(merged(BTreeSet::new(), &["b", "c"]), ["b", "c"]);
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
