//! Hostile roots: for every path the probes touch, the things a broken or malicious host can put
//! there. Each case runs the real binary with a hard time limit and asserts: exit 0 with a JSON
//! profile, finished well under a second, nothing from outside the root in the output, and — where
//! the case is bad input rather than absence — a warning naming the path and the reason.
//! Peak memory is tests/memory.rs's to check: a child's `ru_maxrss` starts from this (large,
//! multi-threaded) process's own high-water mark, so here it would not measure hostprint.
//!
//! The paths are not a hand-kept list: they are taken from `Root::journal()` after probing two small
//! roots (one bare, one with the "enablers" that make conditional reads happen: an update_engine
//! binary makes the update.conf chain be read, a PID 1 namespace link makes the cgroup link be read,
//! …), so a probe that starts reading a new path is covered without touching this file.
//!
//! "Nothing from outside the root" is checked two ways, without strace: a decoy tree next to the root
//! holds, at every probed path, content that would change the profile if read (and a unique marker
//! string that must never be printed); and a root whose escape link points at the decoy must give
//! the very same profile as the root without that path — chroot semantics make such a link dangle.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use common::{probe_json, warnings, Run};
use hostprint::profile;
use hostprint::root::{Failure, FileKind, Op, Root, MANIFEST_FILE};
use hostprint::rules::RuleSet;

/// Content of every decoy file; it must never reach stdout or stderr.
const MARKER: &str = "DECOY-7f3a9c-OUTSIDE-THE-ROOT";
/// "Finishes well under a second", per run of the debug binary.
const FAST: Duration = Duration::from_secs(1);
/// Past this a run is a hang and is killed.
const HANG: Duration = Duration::from_secs(10);

/// What a path can be turned into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hostile {
    /// An absolute symlink to the decoy outside the root.
    AbsoluteEscape,
    /// A relative symlink climbing with `..` to the decoy.
    DotDotEscape,
    /// The path's parent directory is an absolute symlink to the decoy's.
    ParentEscape,
    /// Two symlinks pointing at each other.
    Loop,
    Fifo,
    Socket,
    /// A character device (/dev/zero's numbers: reading it would never end).
    CharDevice,
    /// A directory where a file is expected.
    Dir,
    /// 50 MiB of plausible lines.
    Big,
    /// Binary garbage, invalid UTF-8 from the first byte.
    Garbage,
    /// One 5 MiB line without a newline.
    LongLine,
    /// Thousands of `KEY=value` lines, then `ID=many-keys`.
    ManyKeys,
}

impl Hostile {
    /// The words a warning at the path must contain; `None` where the case is absence (an escape
    /// link dangles inside the root) or valid input.
    fn reason(self) -> Option<&'static str> {
        match self {
            Hostile::AbsoluteEscape | Hostile::DotDotEscape | Hostile::ParentEscape => None,
            Hostile::ManyKeys => None,
            Hostile::Loop => Some("symbolic links"),
            Hostile::Fifo => Some("is a fifo"),
            Hostile::Socket => Some("is a socket"),
            Hostile::CharDevice => Some("is a char-device"),
            Hostile::Dir => Some("is a directory"),
            Hostile::Big | Hostile::LongLine => Some("larger than"),
            Hostile::Garbage => Some("not valid UTF-8"),
        }
    }

    fn is_escape(self) -> bool {
        matches!(
            self,
            Hostile::AbsoluteEscape | Hostile::DotDotEscape | Hostile::ParentEscape
        )
    }
}

/// Read by `Root` for its own bookkeeping, never reported: `boot_id` is compared with ours to tell a
/// host mounted at `/host` on our own kernel. Bad input there only means "not our kernel", so no
/// warning is owed; every other guarantee (no hang, no escape, exit 0) still holds and is checked.
const BOOKKEEPING: &[&str] = &["proc/sys/kernel/random/boot_id"];

/// Which base root reaches a path: the bare one reads `proc/self/ns/pid` (no PID 1 link), the
/// enabled one everything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Base {
    Bare,
    Enabled,
}

/// How a probed path is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Use {
    Read,
    Readlink,
    Stat,
}

#[derive(Debug)]
struct Probed {
    path: String,
    used: Use,
    base: Base,
    /// Looked at only because an enabler is there (an agent's unit links and reboot marks, read
    /// once its binary is found): not in the bare root's journal.
    conditional: bool,
}

/// True when `path` is `dir` or lies under it.
fn within(path: &str, dir: &str) -> bool {
    path == dir || path.starts_with(&format!("{dir}/"))
}

/// Lays the base root, leaving out anything at or under the `except` paths.
fn lay_base(root: &Path, base: Base, except: &[String]) {
    std::fs::create_dir_all(root).unwrap();
    if base == Base::Bare {
        // The least a root has: one of etc/, usr/, proc/.
        std::fs::create_dir_all(root.join("etc")).unwrap();
        return;
    }
    common::lay_enablers(root, |path| except.iter().any(|e| within(path, e)));
}

/// Every path the probes read, readlink or stat, from the journal of the two base roots.
fn probed() -> &'static [Probed] {
    static PROBED: OnceLock<Vec<Probed>> = OnceLock::new();
    PROBED.get_or_init(|| {
        let rules = RuleSet::embedded().unwrap();
        let mut out: Vec<Probed> = Vec::new();
        let mut bare = BTreeSet::new();
        for base in [Base::Enabled, Base::Bare] {
            let dir = tempfile::tempdir().unwrap();
            lay_base(dir.path(), base, &[]);
            let root = Root::open(dir.path()).unwrap();
            profile::build(&root, &rules);
            for access in root.journal() {
                if base == Base::Bare {
                    bare.insert(access.path.clone());
                }
                let used = match access.op {
                    Op::Read => Use::Read,
                    Op::Readlink => Use::Readlink,
                    Op::Stat | Op::Lstat => Use::Stat,
                    Op::List => continue,
                };
                match out.iter_mut().find(|p| p.path == access.path) {
                    // A path both stat'ed and read is a read path.
                    Some(p) if p.used == Use::Stat && used != Use::Stat => p.used = used,
                    Some(_) => {}
                    None => out.push(Probed {
                        path: access.path,
                        used,
                        base,
                        conditional: false,
                    }),
                }
            }
        }
        for p in &mut out {
            p.conditional = !bare.contains(&p.path);
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    })
}

/// The scratch directory of one test: the decoy tree (and, when asked, the content files) live here,
/// and every case root is created inside it, so `..` links from a root reach the decoy. Removed when
/// the test ends.
struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    fn new(with_content: bool) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        lay_decoy(&dir.path().join("decoy"));
        if with_content {
            lay_content(dir.path());
        }
        Lab { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn case_root(&self) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("case-")
            .tempdir_in(self.path())
            .unwrap()
    }
}

/// What a probe would turn into a visible difference if it ever read this decoy file.
fn decoy_content(path: &str) -> String {
    if path.starts_with("sys/class/dmi/") {
        return format!("KVM {MARKER}\n");
    }
    match path {
        "sys/hypervisor/type" => "xen\n".into(),
        "sys/fs/selinux/enforce" => "1\n".into(),
        "sys/module/apparmor/parameters/enabled" => "Y\n".into(),
        p if p.ends_with("mountinfo") => format!("1 0 8:1 / / ro - ext4 /dev/{MARKER} ro\n"),
        _ => format!(
            "{MARKER}\nID={MARKER}\nGROUP={MARKER}\nREBOOT_STRATEGY={MARKER}\nSELINUX={MARKER}\n\
             channel: {MARKER}\nprocessor : 0\nflags : hypervisor\nMemTotal: 4242 kB\n"
        ),
    }
}

fn lay_decoy(decoy: &Path) {
    // Deepest first, so a path that is another's parent ends up a directory.
    let mut paths: Vec<&Probed> = probed().iter().collect();
    paths.sort_by_key(|p| std::cmp::Reverse(p.path.matches('/').count()));
    for p in paths {
        let file = decoy.join(&p.path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        if !file.exists() {
            std::fs::write(&file, decoy_content(&p.path)).unwrap();
        }
    }
}

const BIG: &str = "content/big";
const GARBAGE: &str = "content/garbage";
const LONG_LINE: &str = "content/long-line";
const MANY_KEYS: &str = "content/many-keys";

/// Content files are written once and hard-linked into each case root.
fn lay_content(dir: &Path) {
    std::fs::create_dir_all(dir.join("content")).unwrap();
    common::write_big(&dir.join(BIG));
    // xorshift: deterministic garbage, invalid UTF-8 from the first byte.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut garbage = vec![0xff, 0xfe, 0x00];
    garbage.extend((0..8192).map(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 24) as u8
    }));
    std::fs::write(dir.join(GARBAGE), garbage).unwrap();
    let mut long = std::fs::File::create(dir.join(LONG_LINE)).unwrap();
    long.write_all(b"A=").unwrap();
    for _ in 0..5 << 10 {
        long.write_all(&[b'x'; 1024]).unwrap();
    }
    let mut many: String = (0..3000).map(|i| format!("K{i:04}=v{i}\n")).collect();
    many.push_str("ID=many-keys\n");
    std::fs::write(dir.join(MANY_KEYS), many).unwrap();
}

/// Puts `hostile` at `path` inside `root` (for `ParentEscape`, `path` is the directory swapped for a
/// link). `Err` says why the kernel refused to make it: the case fails, it is not skipped.
fn plant(lab: &Lab, root: &Path, path: &str, hostile: Hostile) -> Result<(), String> {
    let target = root.join(path);
    let parent = target.parent().unwrap().to_path_buf();
    std::fs::create_dir_all(&parent).unwrap();
    let name = target.file_name().unwrap().to_string_lossy().into_owned();
    let link_content = |src: &str| std::fs::hard_link(lab.path().join(src), &target).unwrap();
    match hostile {
        Hostile::AbsoluteEscape | Hostile::ParentEscape => {
            symlink(lab.path().join("decoy").join(path), &target).unwrap()
        }
        Hostile::DotDotEscape => {
            // From the link's directory, one `..` per component climbs to the scratch directory.
            let ups = "../".repeat(path.split('/').count());
            symlink(format!("{ups}decoy/{path}"), &target).unwrap();
        }
        Hostile::Loop => {
            symlink(format!("{name}.loop"), &target).unwrap();
            symlink(&name, parent.join(format!("{name}.loop"))).unwrap();
        }
        Hostile::Fifo => {
            nix::unistd::mkfifo(&target, nix::sys::stat::Mode::from_bits_truncate(0o644))
                .map_err(|e| format!("mkfifo refused: {e}"))?
        }
        Hostile::Socket => {
            std::os::unix::net::UnixListener::bind(&target)
                .map_err(|e| format!("bind refused: {e}"))?;
        }
        Hostile::CharDevice => nix::sys::stat::mknod(
            &target,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o644),
            nix::sys::stat::makedev(1, 5),
        )
        .map_err(|e| format!("mknod of a char device refused ({e}); needs CAP_MKNOD"))?,
        Hostile::Dir => std::fs::create_dir_all(target.join("inside")).unwrap(),
        Hostile::Big => link_content(BIG),
        Hostile::Garbage => link_content(GARBAGE),
        Hostile::LongLine => link_content(LONG_LINE),
        Hostile::ManyKeys => link_content(MANY_KEYS),
    }
    Ok(())
}

/// What a case replaces: the path itself, or its parent directory for `ParentEscape`.
fn replaced(path: &str, hostile: Hostile) -> &str {
    match hostile {
        Hostile::ParentEscape => path.rsplit_once('/').map(|(d, _)| d).unwrap_or(path),
        _ => path,
    }
}

/// The profile of `base` without the `gone` paths (and anything under them) but with their parent
/// directories: what an escape must equal.
fn baseline(lab: &Lab, base: Base, gone: &[String]) -> serde_json::Value {
    type Cache = Mutex<HashMap<(Base, Vec<String>), serde_json::Value>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (base, gone.to_vec());
    if let Some(v) = cache.lock().unwrap().get(&key) {
        return v.clone();
    }
    let dir = lab.case_root();
    lay_base(dir.path(), base, gone);
    for g in gone {
        std::fs::create_dir_all(dir.path().join(g).parent().unwrap()).unwrap();
    }
    let run = probe_json(dir.path(), HANG);
    assert!(run.status.success(), "baseline failed: {}", run.stderr);
    let v = run.json();
    cache.lock().unwrap().insert(key, v.clone());
    v
}

/// One run: `hostile` planted at every path of `paths` (one path for reads and links; every
/// stat-only marker at once, since a stat has no conditions and a marker's fate is its own).
struct Case<'a> {
    paths: Vec<&'a Probed>,
    hostile: Hostile,
    base: Base,
}

/// Runs one case; returns what went wrong, if anything.
fn check(lab: &Lab, case: &Case) -> Option<String> {
    let what = match case.paths.as_slice() {
        [p] => format!("{:?} at {} ({:?})", case.hostile, p.path, p.used),
        many => format!(
            "{:?} at {} stat-only markers at once",
            case.hostile,
            many.len()
        ),
    };
    // What is swapped out: each path (or its parent), minus those inside another one.
    let mut gone: Vec<String> = case
        .paths
        .iter()
        .map(|p| replaced(&p.path, case.hostile).to_string())
        .collect();
    gone.sort();
    gone.dedup();
    let gone: Vec<String> = gone
        .iter()
        .filter(|g| !gone.iter().any(|other| other != *g && within(g, other)))
        .cloned()
        .collect();
    let dir = lab.case_root();
    let root = dir.path();
    lay_base(root, case.base, &gone);
    for g in &gone {
        if let Err(reason) = plant(lab, root, g, case.hostile) {
            return Some(format!("{what}: could not be planted: {reason}"));
        }
    }
    let run = probe_json(root, HANG);
    let problems = judge(lab, case, &run, &gone);
    (!problems.is_empty()).then(|| format!("{what}: {}", problems.join("; ")))
}

fn judge(lab: &Lab, case: &Case, run: &Run, gone: &[String]) -> Vec<String> {
    let hostile = case.hostile;
    let mut problems = Vec::new();
    if !run.status.success() {
        problems.push(format!("exit {:?}: {}", run.status.code(), run.stderr));
        return problems;
    }
    if run.elapsed >= FAST {
        problems.push(format!("took {:?}", run.elapsed));
    }
    if run.all_output().contains(MARKER) {
        problems.push("printed the decoy from outside the root".into());
    }
    let profile = run.json();
    for p in &case.paths {
        // Reads owe a warning for bad input; a stat owes one for a loop (the marker could not be
        // checked); a namespace link that is not one is warned about; PID 1's exe is recorded.
        let reason = match p.used {
            _ if BOOKKEEPING.contains(&p.path.as_str()) => None,
            // A zincati fragment that is a symlink (other than to /dev/null) is skipped unread, as
            // zincati's scan skips it (src/facts/update/zincati.rs): a loop there is never followed.
            _ if hostile == Hostile::Loop && p.path.contains("zincati/config.d/") => None,
            Use::Read => hostile.reason(),
            Use::Stat if hostile == Hostile::Loop => hostile.reason(),
            Use::Readlink if p.path.contains("/ns/") && !hostile.is_escape() => {
                Some("namespace link")
            }
            _ => None,
        };
        if p.path == "proc/1/exe"
            && !hostile.is_escape()
            && profile["init"]["pid1"]["exe"].is_null()
            && profile["init"]["pid1"]["exe_error"].is_null()
        {
            problems.push("proc/1/exe neither read nor its failure recorded".into());
        }
        let warned = |reason: &str| {
            warnings(&profile)
                .iter()
                .any(|(path, message)| path == &p.path && message.contains(reason))
        };
        if let Some(reason) = reason.filter(|r| !warned(r)) {
            problems.push(format!("no warning at {} saying {reason:?}", p.path));
        }
        if hostile == Hostile::ManyKeys
            && p.path == "etc/os-release"
            && profile["os"]["id"] != "many-keys"
        {
            problems.push(format!(
                "thousands of keys lost ID: {}",
                profile["os"]["id"]
            ));
        }
    }
    // A readlink reports the link text itself (a fact), and so does an enablement link by being
    // there: systemd wants a unit by the link's name in `<target>.wants/` whatever it points at
    // (systemd `src/core/load-dropin.c`, `process_deps`), and a recorded root's links dangle. So an
    // escape link there counts as that link, dangling inside the root; only a parent escape (no
    // `.wants/` directory at all) must look absent.
    let same_as_absent = hostile.is_escape()
        && case.paths.iter().all(|p| {
            (p.used != Use::Readlink && !unit_link(p)) || hostile == Hostile::ParentEscape
        });
    if same_as_absent {
        let expected = baseline(lab, case.base, gone);
        if profile != expected {
            problems.push(format!(
                "differs from the root without {gone:?}:\n  got      {profile}\n  expected {expected}"
            ));
        }
    }
    if !problems.is_empty() {
        problems.push(format!("warnings: {:?}", warnings(&profile)));
    }
    problems
}

fn applies(p: &Probed, hostile: Hostile) -> bool {
    match hostile {
        // A top-level path has no parent to swap.
        Hostile::ParentEscape => p.path.contains('/'),
        // The manifest is hostprint's own fixture format, not host content: invalid TOML in it is a
        // documented exit 1 naming the line (src/root/tests.rs), so only its kind is hostile here.
        Hostile::Big | Hostile::Garbage | Hostile::LongLine | Hostile::ManyKeys => {
            p.path != MANIFEST_FILE
        }
        _ => true,
    }
}

/// A systemd unit's enablement or mask link.
fn unit_link(p: &Probed) -> bool {
    p.path.contains("systemd/system/")
        && (p.path.ends_with(".service") || p.path.ends_with(".timer"))
}

/// Runs each of `classes` at every probed path used as `uses`, two runs at a time.
fn matrix(classes: &[Hostile], uses: &[Use]) {
    let mut cases = Vec::new();
    for &hostile in classes {
        let wanted = |p: &&Probed| uses.contains(&p.used) && applies(p, hostile);
        // A conditional marker cannot join the markers made hostile all at once: the marker that
        // makes it be looked at (an agent's binary) would be hostile too, and it never looked at.
        for p in probed()
            .iter()
            .filter(wanted)
            .filter(|p| p.used != Use::Stat || p.conditional)
        {
            cases.push(Case {
                paths: vec![p],
                hostile,
                base: p.base,
            });
        }
        for base in [Base::Enabled, Base::Bare] {
            let markers: Vec<&Probed> = probed()
                .iter()
                .filter(wanted)
                .filter(|p| p.used == Use::Stat && p.base == base && !p.conditional)
                .collect();
            if !markers.is_empty() {
                cases.push(Case {
                    paths: markers,
                    hostile,
                    base,
                });
            }
        }
    }
    assert!(!cases.is_empty());
    let content = [
        Hostile::Big,
        Hostile::Garbage,
        Hostile::LongLine,
        Hostile::ManyKeys,
    ];
    let lab = Lab::new(classes.iter().any(|h| content.contains(h)));
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(case) = cases.get(i) else { break };
                if let Some(f) = check(&lab, case) {
                    failures.lock().unwrap().push(f);
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} runs failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn the_probed_paths_are_found() {
    // The enumeration itself must see what the probes are known to read, or the matrix is hollow.
    let paths: BTreeSet<(&str, Use)> = probed().iter().map(|p| (p.path.as_str(), p.used)).collect();
    for (path, used) in [
        ("etc/os-release", Use::Read),
        ("usr/lib/os-release", Use::Read),
        ("usr/share/flatcar/update.conf", Use::Read),
        ("etc/system-image/channel.ini", Use::Read),
        ("proc/1/comm", Use::Read),
        ("proc/1/mountinfo", Use::Read),
        ("proc/1/ns/cgroup", Use::Readlink),
        ("proc/self/ns/pid", Use::Readlink),
        ("proc/cmdline", Use::Read),
        (MANIFEST_FILE, Use::Read),
        ("run/docker.sock", Use::Stat),
    ] {
        assert!(
            paths.contains(&(path, used)),
            "{path} ({used:?}) not probed: {paths:?}"
        );
    }
    assert!(paths.len() > 80, "only {} paths", paths.len());
    let count = |u: Use| probed().iter().filter(|p| p.used == u).count();
    println!(
        "probed: {} read, {} readlink, {} stat-only paths",
        count(Use::Read),
        count(Use::Readlink),
        count(Use::Stat)
    );
}

#[test]
fn escapes_never_leave_the_root() {
    matrix(
        &[
            Hostile::AbsoluteEscape,
            Hostile::DotDotEscape,
            Hostile::ParentEscape,
        ],
        &[Use::Read, Use::Readlink, Use::Stat],
    );
}

#[test]
fn symlink_loops_are_warned_everywhere() {
    matrix(&[Hostile::Loop], &[Use::Read, Use::Stat]);
}

#[test]
fn special_files_and_directories_are_never_opened() {
    matrix(
        &[Hostile::Fifo, Hostile::Socket, Hostile::Dir],
        &[Use::Read],
    );
}

/// mknod(2) of a character device needs CAP_MKNOD.
#[test]
#[ignore = "needs root"]
fn char_devices_are_never_opened() {
    matrix(&[Hostile::CharDevice], &[Use::Read]);
}

#[test]
fn special_files_at_links_and_markers_do_not_hang() {
    // No warning is owed here (a FIFO where a marker is expected is just "not a file"), but nothing
    // may block or misreport: judge() still checks exit 0, time and the decoy.
    matrix(
        &[Hostile::Fifo, Hostile::Loop, Hostile::Dir],
        &[Use::Readlink],
    );
}

#[test]
fn bad_content_is_bounded_and_warned() {
    matrix(
        &[
            Hostile::Big,
            Hostile::Garbage,
            Hostile::LongLine,
            Hostile::ManyKeys,
        ],
        &[Use::Read],
    );
}

/// Links to the probing machine's own directories must dangle (or loop) inside the root: a root
/// with `proc -> /proc` reports nothing about the machine running hostprint.
#[test]
fn links_to_the_live_system_are_not_followed() {
    let lab = Lab::new(false);
    let dir = lab.case_root();
    for top in ["etc", "proc", "sys", "usr", "run", "var"] {
        symlink(format!("/{top}"), dir.path().join(top)).unwrap();
    }
    symlink("/.dockerenv", dir.path().join(".dockerenv")).unwrap();
    let run = probe_json(dir.path(), HANG);
    assert!(run.status.success(), "{}", run.stderr);
    assert!(run.elapsed < FAST, "{:?}", run.elapsed);
    let v = run.json();
    assert_eq!(v["os"]["id"], serde_json::Value::Null, "{v}");
    assert_eq!(v["kernel"]["release"], serde_json::Value::Null, "{v}");
    assert_eq!(v["host"]["memory_bytes"], serde_json::Value::Null, "{v}");
    assert_eq!(v["init"]["pid1"]["comm"], serde_json::Value::Null, "{v}");
    // No namespace link and no marker could be read: no evidence, so unknown.
    assert_eq!(
        v["environment"]["container"],
        serde_json::Value::Null,
        "{v}"
    );
    // `proc -> /proc` resolves to itself inside the root: a loop, and said so.
    assert!(
        warnings(&v)
            .iter()
            .any(|(p, m)| p == "proc/cpuinfo" && m.contains("symbolic links")),
        "{:?}",
        warnings(&v)
    );
}

#[test]
fn a_root_without_proc_is_a_profile_without_warnings() {
    let dir = common::tree(&[(
        "etc/os-release",
        "ID=bare\nNAME=Bare\nPRETTY_NAME=\"Bare 1\"\nVERSION_ID=1\n",
    )]);
    let run = probe_json(dir.path(), HANG);
    assert!(run.status.success(), "{}", run.stderr);
    assert!(run.elapsed < FAST, "{:?}", run.elapsed);
    let v = run.json();
    assert_eq!(v["os"]["id"], "bare");
    assert_eq!(v["kernel"]["release"], serde_json::Value::Null);
    assert_eq!(v["init"]["system"], serde_json::Value::Null);
    assert_eq!(v["host"]["cpus"], serde_json::Value::Null);
    // Absence is not bad input.
    assert_eq!(warnings(&v), Vec::<(String, String)>::new());
}

/// A file that flips between a regular file, nothing, a FIFO, a directory and an escape link while
/// it is read: every read sees one of those states whole, none blocks, the decoy is never read.
#[test]
fn a_file_that_changes_under_the_reader_never_blocks_or_escapes() {
    let lab = Lab::new(false);
    let dir = lab.case_root();
    let root_dir = dir.path().to_path_buf();
    std::fs::create_dir_all(root_dir.join("etc")).unwrap();
    let stop = AtomicBool::new(false);
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| flip(&root_dir, &stop, &lab));
        let reader = s.spawn(|| {
            let root = Root::open(&root_dir).unwrap().without_journal();
            let mut seen = BTreeSet::new();
            // 3,000 reads at least, and on until one landed on the file: on two busy cores the
            // flipper can sit in one state for all of 3,000 quick reads.
            let start = std::time::Instant::now();
            for i in 0.. {
                if i >= 3000 && (seen.contains("file") || start.elapsed() > Duration::from_secs(10))
                {
                    break;
                }
                let state = match root.read_text("etc/os-release", 4096) {
                    Ok(t) => {
                        assert_eq!(t.text, "ID=inside\n", "a torn or foreign read");
                        "file".to_string()
                    }
                    Err(Failure::Absent) => "absent".into(),
                    Err(Failure::WrongKind(k @ (FileKind::Fifo | FileKind::Dir))) => {
                        k.as_str().into()
                    }
                    Err(other) => panic!("unexpected outcome: {other:?}"),
                };
                seen.insert(state);
            }
            done_tx.send(()).unwrap();
            seen
        });
        // A read that blocked on the FIFO would never send; a reader that panicked hangs up.
        let outcome = done_rx.recv_timeout(Duration::from_secs(30));
        stop.store(true, Ordering::SeqCst);
        assert_ne!(
            outcome,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout),
            "a read blocked while the file changed"
        );
        let seen = reader.join().expect("the reader failed");
        println!("states seen by the reader: {seen:?}");
        assert!(
            seen.contains("file"),
            "the race never let a read through: {seen:?}"
        );
    });

    // The binary under the same race: exit 0, fast, no decoy.
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| flip(&root_dir, &stop, &lab));
        for _ in 0..15 {
            let run = probe_json(&root_dir, HANG);
            assert!(run.status.success(), "{}", run.stderr);
            assert!(run.elapsed < FAST, "{:?}", run.elapsed);
            assert!(!run.all_output().contains(MARKER));
            run.json();
        }
        stop.store(true, Ordering::SeqCst);
    });
}

fn flip(root: &Path, stop: &AtomicBool, lab: &Lab) {
    let path = root.join("etc/os-release");
    let staged: PathBuf = root.join("etc/.staged");
    let decoy = lab.path().join("decoy/etc/os-release");
    let clear = |p: &Path| {
        let _ = std::fs::remove_file(p).or_else(|_| std::fs::remove_dir_all(p));
    };
    while !stop.load(Ordering::SeqCst) {
        std::fs::write(&staged, "ID=inside\n").unwrap();
        std::fs::rename(&staged, &path).unwrap();
        std::thread::yield_now();
        clear(&path);
        let _ = nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o644));
        std::thread::yield_now();
        clear(&path);
        let _ = std::fs::create_dir(&path);
        std::thread::yield_now();
        clear(&path);
        let _ = symlink(&decoy, &path);
        std::thread::yield_now();
        clear(&path);
    }
}
