//! Helpers the integration tests share: run the real binary, read its stderr, build a root; and,
//! for the hostile and privileged tests, run a command under a hard time limit while measuring it
//! (wall time, the child's peak RSS), or without privileges so that permission bits apply.
//!
//! Each test binary compiles this module on its own and uses only part of it.
//!
//! `run` sends output to anonymous temp files, not pipes: a run that prints more than a pipe holds
//! must not look like a hang. The child is reaped with `wait4` so its `ru_maxrss` is its own, not the
//! maximum over every child this test process ever had.
#![allow(dead_code)]

pub mod exposition;

use std::io::{Read, Seek};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary, with RUST_LOG cleared so the caller's environment cannot change what it prints.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hostprint"));
    c.env_remove("RUST_LOG");
    c
}

pub fn hostprint(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `hostprint --root ROOT --format prometheus`.
pub fn prometheus(root: &Path) -> Output {
    hostprint(&["--root", root.to_str().unwrap(), "--format", "prometheus"])
}

/// A Flatcar-like root with the facts every metric family needs: update channel, SELinux config and
/// runtime, AppArmor, and a docker socket (a real one, bound here).
pub fn flatcar_root() -> (tempfile::TempDir, std::os::unix::net::UnixListener) {
    let dir = tree(&[
        (
            "etc/os-release",
            "NAME=\"Flatcar Container Linux by Kinvolk\"\nID=flatcar\nID_LIKE=coreos\nVERSION=3139.2.0\nVERSION_ID=3139.2.0\nPRETTY_NAME=\"Flatcar Container Linux by Kinvolk 3139.2.0 (Oklo)\"\n",
        ),
        ("usr/share/flatcar/update.conf", "GROUP=stable\n"),
        ("etc/selinux/config", "SELINUX=permissive\nSELINUXTYPE=mcs\n"),
        ("sys/fs/selinux/enforce", "0\n"),
        ("sys/module/apparmor/parameters/enabled", "N\n"),
    ]);
    std::fs::create_dir_all(dir.path().join("run")).unwrap();
    let sock = std::os::unix::net::UnixListener::bind(dir.path().join("run/docker.sock")).unwrap();
    (dir, sock)
}

/// A temporary root holding `files` (path relative to the root, content).
pub fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    dir
}

/// Probes `root` with the extra rules in `rules`, printing `format`.
pub fn probe_with_rules(rules: &std::path::Path, root: &std::path::Path, format: &str) -> Output {
    hostprint(&[
        "--fingerprints",
        rules.to_str().unwrap(),
        "--root",
        root.to_str().unwrap(),
        "--format",
        format,
    ])
}

/// A finished run of a command.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    /// Peak resident set size of the child, in KiB (`getrusage`'s `ru_maxrss`). Linux carries the
    /// spawning process's high-water mark across `exec`, so this is an upper bound: keep the test
    /// process itself small where it matters.
    pub max_rss_kib: i64,
}

impl Run {
    /// The JSON profile on stdout; panics with the run's stderr if there is none.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not a JSON profile ({e}): {:?}\nstderr: {}",
                self.stdout.chars().take(500).collect::<String>(),
                self.stderr
            )
        })
    }

    /// Everything the run printed.
    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Runs `cmd`, killing it (and failing) if it is still running after `limit`.
pub fn run(mut cmd: Command, limit: Duration) -> Run {
    let mut out = tempfile::tempfile().unwrap();
    let mut err = tempfile::tempfile().unwrap();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(err.try_clone().unwrap()));
    let start = Instant::now();
    // Reaped below with wait4 (for its rusage), or killed and waited for on a hang.
    #[allow(clippy::zombie_processes)]
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    let pid = child.id() as libc::pid_t;
    let (raw_status, rusage) = loop {
        let mut status = 0;
        // SAFETY: rusage is plain data that wait4 fills in; all-zero is a valid value for it.
        let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: pid is our own unreaped child; the pointers are to live locals.
        let got = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut rusage) };
        assert!(got >= 0, "wait4: {}", std::io::Error::last_os_error());
        if got == pid {
            break (status, rusage);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} still running after {limit:?}: it hangs");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let elapsed = start.elapsed();
    let read_back = |f: &mut std::fs::File| {
        let mut buf = Vec::new();
        f.rewind().unwrap();
        f.read_to_end(&mut buf).unwrap();
        String::from_utf8_lossy(&buf).into_owned()
    };
    Run {
        status: ExitStatus::from_raw(raw_status),
        stdout: read_back(&mut out),
        stderr: read_back(&mut err),
        elapsed,
        max_rss_kib: rusage.ru_maxrss,
    }
}

/// `hostprint --root DIR --format json`, limited to `limit`.
pub fn probe_json(root: &Path, limit: Duration) -> Run {
    let mut cmd = bin();
    cmd.arg("--root").arg(root).args(["--format", "json"]);
    run(cmd, limit)
}

/// The warnings of a JSON profile as (path, message) pairs.
pub fn warnings(profile: &serde_json::Value) -> Vec<(String, String)> {
    profile["warnings"]
        .as_array()
        .map(|ws| {
            ws.iter()
                .map(|w| {
                    (
                        w["path"].as_str().unwrap_or("").to_string(),
                        w["message"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A memory figure of `/proc/<pid>/status` in KiB: `VmRSS` (resident now), `VmHWM` (peak). `pid`
/// is a number or `self`.
pub fn status_kib(pid: &str, field: &str) -> i64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Files that make a probe's conditional reads happen: an agent's binary makes its configuration and
/// unit links be looked at, a PID 1 namespace link makes the cgroup link be read, an ostree boot its
/// deployment, … (the hostile and memory tests take
/// the paths read from the journal of a root that has these).
pub const ENABLERS: &[(&str, Enabler)] = &[
    ("usr/sbin/update_engine", Enabler::File("")),
    ("usr/lib/locksmith/locksmithd", Enabler::File("")),
    (
        "etc/system-image/channel.ini",
        Enabler::File("[service]\nchannel: seed\n"),
    ),
    ("proc/1/ns/pid", Enabler::Link("pid:[4026531836]")),
    ("usr/bin/rpm-ostree", Enabler::File("")),
    ("usr/libexec/zincati", Enabler::File("")),
    ("usr/lib/snapd/snapd", Enabler::File("")),
    ("usr/sbin/transactional-update", Enabler::File("")),
    ("usr/bin/updog", Enabler::File("")),
    ("usr/bin/bootc", Enabler::File("")),
    // A policy that acts only with its timer enabled: makes the timer's links be looked at.
    (
        "etc/rpm-ostreed.conf",
        Enabler::File("[Daemon]\nAutomaticUpdatePolicy=stage\n"),
    ),
    (
        "etc/zincati/config.d/90-updates.toml",
        Enabler::File("[updates]\nstrategy = \"fleet_lock\"\n"),
    ),
    // An ostree boot: its deployment's origin and reboot marks are looked for.
    ("run/ostree-booted", Enabler::File("")),
    (
        "ostree/deploy/fedora-coreos/deploy/0123abcd.0.origin",
        Enabler::File("[origin]\nrefspec=fedora:fedora/x86_64/coreos/stable\n"),
    ),
];

#[derive(Clone, Copy, Debug)]
pub enum Enabler {
    File(&'static str),
    Link(&'static str),
}

/// Lays the [`ENABLERS`] in `root`, but those `skip` names.
pub fn lay_enablers(root: &Path, skip: impl Fn(&str) -> bool) {
    for (path, enabler) in ENABLERS {
        if skip(path) {
            continue;
        }
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        match enabler {
            Enabler::File(text) => std::fs::write(&p, text).unwrap(),
            Enabler::Link(target) => std::os::unix::fs::symlink(target, &p).unwrap(),
        }
    }
}

/// Writes 50 MiB of plausible `KEY=value` lines at `path`, in chunks: a child's `ru_maxrss` starts
/// from this process's high-water mark (Linux carries it across exec), so the test process must never
/// hold the file itself.
pub fn write_big(path: &Path) {
    use std::io::Write;
    let chunk = "BIG_KEY=\"a plausible value that repeats\"\n".repeat(1 << 14);
    let mut big = std::fs::File::create(path).unwrap();
    while big.metadata().unwrap().len() < 50 << 20 {
        big.write_all(chunk.as_bytes()).unwrap();
    }
}

pub fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The user an unprivileged run switches to when the tests run as root.
pub const NOBODY: u32 = 65534;

/// True when this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The binary, run without privileges so that permission bits apply to it: as uid/gid 65534 when
/// the tests run as root (root's CAP_DAC_OVERRIDE ignores modes), as the current user otherwise.
/// uid 65534 may not reach the build directory (a checkout under a 0700 directory), so it runs the
/// binary through a link (or a copy, across filesystems) in a directory open to everyone. What it
/// must reach must then be open to others too (mode 0755), as a tempdir is not.
pub fn unprivileged_bin() -> Command {
    if !is_root() {
        return bin();
    }
    static REACHABLE: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let dir = REACHABLE.get_or_init(|| {
        let dir = tempfile::Builder::new().tempdir_in("/tmp").unwrap();
        chmod(dir.path(), 0o755);
        let exe = dir.path().join("hostprint");
        let built = env!("CARGO_BIN_EXE_hostprint");
        if std::fs::hard_link(built, &exe).is_err() {
            std::fs::copy(built, &exe).unwrap();
            chmod(&exe, 0o755);
        }
        dir
    });
    let mut c = Command::new(dir.path().join("hostprint"));
    c.env_remove("RUST_LOG");
    std::os::unix::process::CommandExt::uid(&mut c, NOBODY);
    std::os::unix::process::CommandExt::gid(&mut c, NOBODY);
    c
}

/// The names in `dir`, sorted (an output directory must hold only the output after any round).
pub fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Polls `ready` until it holds; fails the test after `limit`.
pub fn wait_for(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What tells one written version of the file from the next.
pub fn stamp(m: &std::fs::Metadata) -> (u64, i64, i64) {
    use std::os::unix::fs::MetadataExt;
    (m.ino(), m.mtime(), m.mtime_nsec())
}

/// Waits until `target` is replaced by a newer version than the one there now.
pub fn wait_for_rewrite(target: &Path) {
    let before = stamp(&std::fs::metadata(target).unwrap());
    wait_for("a rewrite", Duration::from_secs(20), || {
        std::fs::metadata(target).is_ok_and(|m| stamp(&m) != before)
    });
}

/// `sleep` run through a link named `etcd`: a running etcd to `--processes`, until dropped. A link,
/// not a copy: exec of a file just written can fail with ETXTBSY while another test thread forks.
pub struct FakeEtcd {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl FakeEtcd {
    pub fn start() -> FakeEtcd {
        let dir = tempfile::tempdir().unwrap();
        let etcd = dir.path().join("etcd");
        std::os::unix::fs::symlink("/bin/sleep", &etcd).unwrap();
        // spawn returns once the exec has happened, so the process already has its name.
        let child = Command::new(&etcd).arg("60").spawn().unwrap();
        FakeEtcd { child, _dir: dir }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for FakeEtcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
