//! Fingerprint rules: loading, validating and listing them.
//!
//! Rules are data (`fingerprints/*.toml`, schema in `fingerprints/README.md`), built into the binary
//! by build.rs and extended or overridden by id with `--fingerprints DIR`. Loading is strict — an unknown key, a
//! signal with two conditions or none, a bad kind — because a rule that silently does nothing is
//! worse than one that refuses to load; every error names `file:line`. The format and its validation
//! live in [`format`]; matching lives in [`eval`].

pub mod eval;
mod format;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::facts::Wanted;

pub use format::*;

/// The shipped rules, validated by [`parse`] at build time and written out by build.rs as Rust
/// code that constructs them: `shipped()` (and, for tests, the TOML `SOURCES` they came from).
mod shipped {
    use super::*;
    include!(concat!(env!("OUT_DIR"), "/fingerprints.rs"));
}

/// The set of rules in force: the shipped rules, then user rules replacing them by id.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    pub rules: Vec<Fingerprint>,
}

impl RuleSet {
    /// The rules shipped in the binary. They were validated when hostprint was built, so this only
    /// constructs them (the `Result` keeps callers ready for rules that could fail).
    pub fn embedded() -> Result<RuleSet, RuleErrors> {
        Ok(RuleSet {
            rules: shipped::shipped(),
        })
    }

    /// Loads the rule file `path`, or every `*.toml` in the directory `path` (sorted, so a duplicate
    /// id is reported the same way each time), reporting every error of every file. A directory
    /// without one is an error: a rule set that silently adds nothing is a mistake.
    pub fn load(path: &Path) -> Result<Vec<Fingerprint>, RuleErrors> {
        let whole = |message: String| {
            let file = path.display().to_string();
            RuleErrors(vec![RuleError {
                file,
                line: 0,
                message,
            }])
        };
        let meta = std::fs::metadata(path).map_err(|e| whole(e.to_string()))?;
        let files = match meta.is_dir() {
            true => rule_files(path).map_err(whole)?,
            false => vec![path.to_path_buf()],
        };
        let vocabulary = vocabulary();
        let (mut out, mut errors) = (Vec::<Fingerprint>::new(), Vec::new());
        for path in files {
            let origin = path.display().to_string();
            // Rule files are small; a huge one is a mistake, not a rule.
            const CAP: u64 = 1 << 20;
            let mut text = String::new();
            // Room for the whole file plus the read that finds its end; `take` bounds the read
            // should the file grow after its size was checked.
            if let Err(message) = open_rule_file(&path, CAP).and_then(|(f, len)| {
                text.reserve(len as usize + 64);
                f.take(CAP + 1)
                    .read_to_string(&mut text)
                    .map_err(|e| e.to_string())
            }) {
                errors.push(RuleError {
                    file: origin,
                    line: 0,
                    message,
                });
                continue;
            }
            let rule = match parse(&origin, &text, Some(&vocabulary)) {
                Ok(rule) => rule,
                Err(e) => {
                    errors.extend(e.0);
                    continue;
                }
            };
            match out.iter().find(|r| r.id == rule.id) {
                Some(first) => errors.push(RuleError {
                    message: format!("id {:?} is already defined in {}", rule.id, first.origin),
                    file: origin,
                    line: 1,
                }),
                None => out.push(rule),
            }
        }
        match errors.is_empty() {
            true => Ok(out),
            false => Err(RuleErrors(errors)),
        }
    }

    /// Adds rules, each replacing one with the same id.
    pub fn extend(&mut self, rules: impl IntoIterator<Item = Fingerprint>) {
        let mut index: HashMap<String, usize> = self
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.clone(), i))
            .collect();
        for rule in rules {
            match index.get(&rule.id) {
                Some(&i) => {
                    let (id, origin, old) = (&rule.id, &rule.origin, &self.rules[i].origin);
                    tracing::debug!("rule {id} from {origin} overrides the one from {old}");
                    self.rules[i] = rule;
                }
                None => {
                    index.insert(rule.id.clone(), self.rules.len());
                    self.rules.push(rule);
                }
            }
        }
    }

    /// The rule with this id.
    pub fn get(&self, id: &str) -> Option<&Fingerprint> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// Every path and key file the rules ask about, sorted, each once, so the probes look at exactly
    /// those.
    pub fn wanted(&self) -> Wanted<'_> {
        let (mut paths, mut kv_files) = (BTreeSet::new(), BTreeSet::new());
        kv_files.extend(self.rules.iter().filter_map(|r| r.version_file.as_deref()));
        for c in self.rules.iter().flat_map(Fingerprint::conditions) {
            c.named(&mut |use_, path| match use_ {
                Named::Path => {
                    paths.insert(path);
                }
                Named::KvFile => {
                    kv_files.insert(path);
                }
            });
        }
        Wanted {
            paths: paths.into_iter().collect(),
            kv_files: kv_files.into_iter().collect(),
        }
    }

    /// Ids referenced by lineage/successor that no rule defines (for the lint).
    pub fn dangling_references(&self) -> BTreeMap<String, BTreeSet<String>> {
        let ids: BTreeSet<_> = self.rules.iter().map(|r| r.id.as_str()).collect();
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for r in &self.rules {
            for other in r.lineage.iter().chain(r.successor.iter()) {
                if !ids.contains(other.as_str()) {
                    out.entry(r.id.clone()).or_default().insert(other.clone());
                }
            }
        }
        out
    }
}

/// Parses one rule file, holding its values to what the probes can report.
pub fn parse_file(origin: &str, text: &str) -> Result<Fingerprint, RuleErrors> {
    parse(origin, text, Some(&vocabulary()))
}

/// What the probes can report, from the tables they work from.
pub fn vocabulary() -> Vocabulary {
    use crate::facts::{pid1, runtimes, security, update};
    let runtimes: BTreeSet<_> = runtimes::SOCKETS.iter().map(|(id, _)| *id).collect();
    Vocabulary(vec![
        ("init", pid1::INITS.iter().map(|(name, _)| *name).collect()),
        (
            "update_agent",
            update::AGENTS.iter().map(|(name, _)| *name).collect(),
        ),
        ("runtime", runtimes.into_iter().collect()),
        ("selinux mode", security::SELINUX_MODES.to_vec()),
    ])
}

/// The `*.toml` files in `dir`, sorted; none is an error that says what is there instead.
fn rule_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let (mut files, mut others) = (Vec::new(), Vec::new());
    for entry in std::fs::read_dir(dir).map_err(|e| e.to_string())? {
        let path = entry.map_err(|e| e.to_string())?.path();
        match path.extension().is_some_and(|x| x == "toml") {
            true => files.push(path),
            false => others.push(path),
        }
    }
    files.sort();
    if !files.is_empty() {
        return Ok(files);
    }
    others.sort();
    let mut hint = String::new();
    let dirs: Vec<_> = others.iter().filter(|p| p.is_dir()).collect();
    let names = |list: &[&PathBuf]| {
        let names: Vec<_> = list
            .iter()
            .filter_map(|p| p.file_name())
            .map(|n| n.to_string_lossy())
            .collect();
        names.join(", ")
    };
    let misnamed: Vec<_> = others.iter().filter(|p| !p.is_dir()).collect();
    if !misnamed.is_empty() {
        hint += &format!(
            "; rule files must end in .toml (found {})",
            names(&misnamed)
        );
    }
    if !dirs.is_empty() {
        hint += &format!("; subdirectories are not searched (found {})", names(&dirs));
    }
    Err(format!("no *.toml rule files here{hint}"))
}

/// Opens a rule file given on the command line, refusing what is not a regular file before opening
/// it (opening a FIFO or a device node can block or act on the device) or is larger than `cap`.
fn open_rule_file(path: &Path, cap: u64) -> Result<(File, u64), String> {
    let kind = |meta: &std::fs::Metadata| match meta.is_file() {
        true => Ok(()),
        false => Err("not a regular file".to_string()),
    };
    let before = std::fs::metadata(path).map_err(|e| e.to_string())?;
    kind(&before)?;
    // O_NONBLOCK | O_NOCTTY: should the path be swapped for a FIFO or a terminal between the stat
    // and the open, the open neither waits for a writer nor takes a controlling terminal, and the
    // fstat below refuses it.
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    kind(&meta)?;
    if (meta.dev(), meta.ino()) != (before.dev(), before.ino()) {
        return Err("changed while being opened".into());
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
    /// every field, in order), and every shipped rule names only values the probes report.
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
        let mut errors = parse_file("t.toml", text).unwrap_err().0;
        assert_eq!(errors.len(), 1, "{errors:?}");
        errors.remove(0)
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

    #[test]
    fn nesting_is_bounded() {
        let nest = |levels: usize| {
            let mut c = "{ fs = \"root_read_only\" }".to_string();
            for _ in 0..levels {
                c = format!("{{ any = [ {c} ] }}");
            }
            format!("{HEAD}\n[[require]]\nwhy = \"w\"\n{}\n", &c[2..c.len() - 2])
        };
        let ok = parse_file("t.toml", &nest(MAX_NESTING)).unwrap();
        assert_eq!(ok.require[0].condition.depth(), MAX_NESTING);
        let e = error_of(&nest(MAX_NESTING + 1));
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
        let e = RuleSet::load(dir.path()).unwrap_err().0.remove(0);
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
