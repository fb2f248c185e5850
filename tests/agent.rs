//! The `--interval` agent: it rewrites `--output` every round until SIGTERM/SIGINT and exits 0,
//! SIGHUP asks for a round at once (most tests use `1h` and drive rounds with it), intervals outside
//! 1s..365d are usage errors, readers never see a partial file, memory stays flat over thousands of
//! rounds; and under faults it logs, keeps the last good output and retries: a root that disappears
//! and comes back, an output directory that becomes unwritable mid-run, SIGTERM in the middle of a
//! probe.
//!
//! An unwritable directory cannot be shown to root (CAP_DAC_OVERRIDE ignores modes), so that test
//! runs the agent as uid 65534 when the tests run as root, and as the current user otherwise.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::exposition::parse_exposition;
use common::{
    bin, chmod, entries, flatcar_root, hostprint, is_root, prometheus, stamp, status_kib, stderr,
    tree, unprivileged_bin, wait_for, wait_for_rewrite, NOBODY,
};

const WAIT: Duration = Duration::from_secs(20);

/// `entries` without the temporary file of a round that the chmod caught between creating it and
/// renaming it: removing it needs the write permission that was just taken away. That race is
/// known (and harmless: a dot-file ending in `.tmp`, which no collector reads; the first successful
/// write a minute later sweeps it, see `atomic_write::sweep_stale`); it is reported, not allowed to
/// make this test flaky.
fn entries_but_a_caught_temp_file(dir: &Path) -> Vec<String> {
    let (temp, rest): (Vec<String>, Vec<String>) = entries(dir)
        .into_iter()
        .partition(|n| n.starts_with(".hostprint.json.") && n.ends_with(".tmp"));
    assert!(temp.len() <= 1, "temporary files left behind: {temp:?}");
    if !temp.is_empty() {
        println!("note: the chmod caught a round mid-write and left {temp:?}");
    }
    rest
}

/// The agent's stderr, line by line, without ever blocking the test on it.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let err = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in err.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn next_line(rx: &mpsc::Receiver<String>, what: &str) -> String {
    rx.recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("no log line saying {what}"))
}

/// The next log line that contains `text`, the ones before it skipped.
fn line_with(rx: &mpsc::Receiver<String>, text: &str) -> String {
    loop {
        let line = next_line(rx, text);
        if line.contains(text) {
            return line;
        }
    }
}

/// Asks the agent for a round now.
fn hup(child: &Child) {
    signal(child, libc::SIGHUP);
}

/// Runs `during` while a thread sends the agent SIGHUP every millisecond, faster than rounds run,
/// so rounds go back to back (a SIGHUP during a round asks for one more).
fn back_to_back<T>(child: &Child, during: impl FnOnce() -> T) -> T {
    struct SetOnDrop<'a>(&'a AtomicBool);
    impl Drop for SetOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                hup(child);
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        // Stops the thread even when `during` panics, so the scope does not wait on it for ever.
        let _stop = SetOnDrop(&done);
        during()
    })
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

/// SIGTERM, then the agent must exit 0 within ten seconds.
fn stop(child: Child) {
    stop_within(child, Duration::from_secs(10));
}

/// SIGTERM, then the agent must exit 0 within `limit`; past it, it is killed and the test fails.
fn stop_within(mut child: Child, limit: Duration) {
    signal(&child, libc::SIGTERM);
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(0), "SIGTERM must end the agent cleanly");
            return;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running {limit:?} after SIGTERM: killed");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn an_output_directory_that_turns_unwritable_keeps_the_last_file_and_recovers() {
    let root = tree(&[("etc/os-release", "ID=flatcar\nVERSION_ID=1.2.3\n")]);
    chmod(root.path(), 0o755);
    let out = tempfile::tempdir().unwrap();
    chmod(out.path(), 0o755);
    if is_root() {
        std::os::unix::fs::chown(out.path(), Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let target = out.path().join("hostprint.json");
    let mut child = unprivileged_bin()
        .args(["--root", root.path().to_str().unwrap(), "--format", "json"])
        // Rounds on demand (SIGHUP), not on the clock.
        .args(["--interval", "1h", "--output"])
        .arg(&target)
        .env("RUST_LOG", "hostprint=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = lines_of(&mut child);
    wait_for("the first file", WAIT, || target.exists());

    chmod(out.path(), 0o555);
    hup(&child);
    let failed = next_line(&log, "a failed round");
    assert!(failed.contains("round failed"), "{failed}");
    assert!(
        failed.to_lowercase().contains("permission denied"),
        "{failed}"
    );
    // From here every round fails; the file written before must stay, untouched and whole.
    let kept = stamp(&std::fs::metadata(&target).unwrap());
    hup(&child);
    next_line(&log, "another failed round");
    hup(&child);
    next_line(&log, "a third failed round");
    assert_eq!(
        stamp(&std::fs::metadata(&target).unwrap()),
        kept,
        "the last good output was replaced"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&target).unwrap()).unwrap();
    assert_eq!(v["os"]["id"], "flatcar");
    assert_eq!(
        entries_but_a_caught_temp_file(out.path()),
        vec!["hostprint.json"]
    );

    // Writable again: the next rounds succeed, without a restart.
    chmod(out.path(), 0o755);
    hup(&child);
    wait_for_rewrite(&target);
    stop(child);
    assert_eq!(
        entries_but_a_caught_temp_file(out.path()),
        vec!["hostprint.json"]
    );
}

/// A round that takes ~0.3 s (4 MiB mount table and cpuinfo, debug build), asked for with SIGHUP, and
/// SIGTERM right after, so it lands inside the probe: the round finishes, the file is whole, nothing
/// is left behind, exit 0.
#[test]
fn sigterm_in_the_middle_of_a_probe_exits_cleanly_with_a_whole_file() {
    let root = tree(&[("etc/os-release", "ID=flatcar\n")]);
    let mut mountinfo = std::fs::File::create(root.path().join("proc/1/mountinfo"))
        .or_else(|_| {
            std::fs::create_dir_all(root.path().join("proc/1"))?;
            std::fs::File::create(root.path().join("proc/1/mountinfo"))
        })
        .unwrap();
    for i in 0..50_000 {
        writeln!(
            mountinfo,
            "{} 1 8:1 / /mnt/p{i} rw,relatime shared:1 - ext4 /dev/sda1 rw",
            i + 20
        )
        .unwrap();
    }
    let cpu = "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr pae mce hypervisor\n\n";
    std::fs::write(root.path().join("proc/cpuinfo"), cpu.repeat(50_000)).unwrap();

    for (attempt, delay_ms) in [0u64, 90, 230].into_iter().enumerate() {
        let out = tempfile::tempdir().unwrap();
        let target = out.path().join("hostprint.json");
        let child = bin()
            .args(["--root", root.path().to_str().unwrap(), "--format", "json"])
            .args(["--interval", "1h", "--output"])
            .arg(&target)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for("the first file", WAIT, || target.exists());
        hup(&child);
        std::thread::sleep(Duration::from_millis(delay_ms));
        let signalled = Instant::now();
        stop(child);
        println!(
            "attempt {attempt}: exited {:?} after SIGTERM",
            signalled.elapsed()
        );
        let text = std::fs::read_to_string(&target).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("attempt {attempt}: a torn file ({e})"));
        assert_eq!(v["os"]["id"], "flatcar");
        assert_eq!(
            entries(out.path()),
            vec!["hostprint.json"],
            "attempt {attempt}"
        );
    }
}

/// The agent writing prometheus text to `target` every `every`, stdout to /dev/null.
fn interval_command(root: &Path, target: &Path, every: &str) -> Command {
    let mut cmd = bin();
    cmd.args(["--root", root.to_str().unwrap(), "--format", "prometheus"])
        .args(["--interval", every, "--output"])
        .arg(target)
        .stdout(Stdio::null());
    cmd
}

/// The agent, started, logging at `log` to a pipe.
fn interval(root: &Path, target: &Path, every: &str, log: &str) -> Child {
    interval_command(root, target, every)
        .env("RUST_LOG", log)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn interval_rewrites_until_sigterm_and_exits_0() {
    for (sig, name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGINT, "SIGINT")] {
        let (root, _sock) = flatcar_root();
        let out_dir = tempfile::tempdir().unwrap();
        let target = out_dir.path().join("hostprint.prom");
        let child = interval(root.path(), &target, "1s", "hostprint=info");
        wait_for("the first file", Duration::from_secs(20), || {
            target.exists()
        });
        let first = std::fs::metadata(&target).unwrap().modified().unwrap();
        // Rounds go on: the file is replaced.
        wait_for_rewrite(&target);
        signal(&child, sig);
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
        assert!(stderr(&o).contains(name), "{}", stderr(&o));
        let text = std::fs::read_to_string(&target).unwrap();
        parse_exposition(&text).unwrap();
        assert!(std::fs::metadata(&target).unwrap().modified().unwrap() >= first);
        assert_eq!(entries(out_dir.path()), vec!["hostprint.prom"]);
    }
}

/// SIGHUP ended the agent with 129 (the default action). It means "probe now": a round runs at once,
/// long before the next one is due, and the agent goes on until SIGTERM.
#[test]
fn sighup_ended_the_agent_with_129() {
    let (root, _sock) = flatcar_root();
    let out_dir = tempfile::tempdir().unwrap();
    let target = out_dir.path().join("hostprint.prom");
    let mut child = interval(root.path(), &target, "1h", "hostprint=info");
    wait_for("the first file", Duration::from_secs(20), || {
        target.exists()
    });
    for _ in 0..3 {
        hup(&child);
        wait_for_rewrite(&target);
        assert!(
            child.try_wait().unwrap().is_none(),
            "SIGHUP ended the agent"
        );
    }
    signal(&child, libc::SIGTERM);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("probing now"), "{}", stderr(&o));
    parse_exposition(&std::fs::read_to_string(&target).unwrap()).unwrap();
}

#[test]
fn interval_keeps_the_last_good_file_when_a_round_fails() {
    let root = tree(&[("etc/os-release", "ID=flatcar\nVERSION_ID=1.2.3\n")]);
    let moved = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let target = out_dir.path().join("hostprint.prom");
    // Rounds on demand (SIGHUP), not on the clock.
    let mut child = interval(root.path(), &target, "1h", "hostprint=info");
    let log = lines_of(&mut child);
    // The start says what the agent does, where it writes and what it reads.
    let start = line_with(&log, "agent started");
    let (out, from) = (target.to_str().unwrap(), root.path().to_str().unwrap());
    assert!(start.contains("agent started: every 1h"), "{start}");
    assert!(start.contains(out) && start.contains(from), "{start}");
    wait_for("the first file", Duration::from_secs(20), || {
        target.exists()
    });
    let good = std::fs::read_to_string(&target).unwrap();
    // The root disappears: rounds now fail, and must say so without touching the file.
    let away = moved.path().join("root");
    std::fs::rename(root.path(), &away).unwrap();
    hup(&child);
    let line = line_with(&log, "round failed");
    assert!(line.contains(from), "names the root: {line}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), good);
    // It comes back: rounds succeed again, and the log says so.
    std::fs::rename(&away, root.path()).unwrap();
    hup(&child);
    wait_for_rewrite(&target);
    line_with(&log, "round 3 ok again after 1 failed");
    stop(child);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), good);
}

#[test]
fn interval_first_round_failure_is_exit_1() {
    let out_dir = tempfile::tempdir().unwrap();
    let target = out_dir.path().join("x.prom");
    let o = bin()
        .args([
            "--root",
            "/nonexistent/hostprint-root",
            "--interval",
            "1s",
            "--output",
        ])
        .arg(&target)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("/nonexistent/hostprint-root"),
        "{}",
        stderr(&o)
    );
    assert!(!target.exists());
}

/// `--interval 1ns` busy-looped, and `18446744073709551615s` panicked after the first round (the
/// clock arithmetic overflowed); `garbage` said "expected number at 0". Each is a usage error that
/// says what is expected, before anything is written.
#[test]
fn interval_out_of_range_busy_looped_or_panicked() {
    let out_dir = tempfile::tempdir().unwrap();
    let target = out_dir.path().join("never-written.prom");
    for (every, says) in [
        ("1ns", "shorter than 1s"),
        ("999ms", "shorter than 1s"),
        ("18446744073709551615s", "longer than 365d"),
        ("garbage", "expected a duration such as 30s, 5m or 1h"),
    ] {
        let o = hostprint(&["--interval", every, "--output", target.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{every}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{every}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
        assert!(!target.exists());
    }
}

#[test]
fn interval_without_output_or_zero_is_a_usage_error() {
    let o = hostprint(&["--interval", "60s"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--output"), "{}", stderr(&o));
    let o = hostprint(&["--interval", "0s", "--output", "/tmp/never-written.prom"]);
    assert_eq!(o.status.code(), Some(2));
    let o = hostprint(&["--interval", "soon", "--output", "/tmp/never-written.prom"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!Path::new("/tmp/never-written.prom").exists());
}

/// Readers never see a partial file: a reader hammering the file while rounds replace it every
/// millisecond only ever reads the complete text (written in place, it would catch a truncated one).
#[test]
fn readers_never_see_a_partial_file() {
    let (root, _sock) = flatcar_root();
    let expected = prometheus(root.path()).stdout;
    let out_dir = tempfile::tempdir().unwrap();
    let target = out_dir.path().join("hostprint.prom");
    let child = interval(root.path(), &target, "1h", "hostprint=warn");
    wait_for("the first file", Duration::from_secs(20), || {
        target.exists()
    });
    back_to_back(&child, || {
        // Read until the file has been replaced many times under the reader. A replacement shows as
        // a new (inode, mtime) pair: inode numbers alone are reused by the filesystem right away.
        let mut versions = BTreeSet::new();
        let start = Instant::now();
        let mut reads = 0u64;
        while versions.len() < 50 {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "only {} rewrites seen in {reads} reads",
                versions.len()
            );
            let Ok(f) = std::fs::File::open(&target) else {
                panic!("the file vanished between rounds")
            };
            versions.insert(stamp(&f.metadata().unwrap()));
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut &f, &mut bytes).unwrap();
            assert_eq!(bytes, expected, "read {reads} saw {} bytes", bytes.len());
            reads += 1;
        }
    });
    stop(child);
}

/// A directory on tmpfs where there is one: fsync costs nothing there, so thousands of rounds take
/// seconds; what the test measures (memory) does not depend on the disk.
fn fast_tempdir() -> tempfile::TempDir {
    match Path::new("/dev/shm").is_dir() {
        true => tempfile::tempdir_in("/dev/shm").unwrap(),
        false => tempfile::tempdir().unwrap(),
    }
}

/// Thousands of rounds, each asked for with SIGHUP: resident memory after round 2000 is what it was
/// after round 400.
#[test]
fn interval_memory_stays_flat() {
    let (root, _sock) = flatcar_root();
    let out_dir = fast_tempdir();
    let target = out_dir.path().join("hostprint.prom");
    // Each written round is logged at debug.
    let log = "hostprint=info,hostprint::interval=debug";
    let mut child = interval(root.path(), &target, "1h", log);
    let pid = child.id();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let (mut at_400, mut at_2000) = (0, 0);
    let mut line = String::new();
    let mut rounds = 0u64;
    while err.read_line(&mut line).unwrap() > 0 {
        if line.contains("output written") {
            rounds += 1;
            match rounds {
                400 => at_400 = status_kib(&pid.to_string(), "VmRSS"),
                2000 => {
                    at_2000 = status_kib(&pid.to_string(), "VmRSS");
                    break;
                }
                _ => {}
            }
            hup(&child);
        }
        assert!(!line.contains("round failed"), "{line}");
        line.clear();
    }
    // Stop reading first: a child blocked on a full stderr pipe could not act on the signal.
    drop(err);
    stop(child);
    assert_eq!(rounds, 2000);
    eprintln!("RSS {at_400} KiB at round 400, {at_2000} KiB at round 2000");
    // A leak of even 1 KiB a round would show as 1.6 MiB here.
    assert!(
        at_2000 <= at_400 + 512,
        "RSS grew from {at_400} KiB at round 400 to {at_2000} KiB at round 2000"
    );
}

/// A daemon started with stderr closed (`hostprint --interval 1h -v … 2>&-`, as some init scripts
/// do): fd 2 must not be handed to whatever the agent opens next (signal-hook's socketpair, the
/// output file) and filled with log lines until a write blocks for ever. Rounds must go on, and
/// SIGTERM must end it within a few seconds.
#[test]
fn an_agent_started_with_stderr_closed_keeps_running_and_stops_on_sigterm() {
    let (root, _sock) = flatcar_root();
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("hostprint.prom");
    let mut cmd = interval_command(root.path(), &target, "1h");
    cmd.arg("-v").stdin(Stdio::null());
    // SAFETY: close(2) is async-signal-safe and touches only the child's descriptor table.
    unsafe {
        cmd.pre_exec(|| {
            libc::close(2);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    // The first file first: a SIGHUP before the agent handles it would end the process.
    wait_for("the first file", Duration::from_secs(20), || {
        target.exists()
    });
    // Two seconds of rounds back to back at -v, far more log than a socket buffer holds; then one
    // more round, asked for with SIGHUP, must still happen.
    back_to_back(&child, || std::thread::sleep(Duration::from_secs(2)));
    // Removed, then asked for again: a rewrite's inode number and coarse mtime can equal the last
    // one's, so only the file coming back proves a round finished.
    std::fs::remove_file(&target).unwrap();
    hup(&child);
    let start = Instant::now();
    let rewritten = loop {
        if target.exists() {
            break true;
        }
        if start.elapsed() > Duration::from_secs(5) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    if !rewritten {
        let _ = child.kill();
        let _ = child.wait();
        panic!("with stderr closed, rounds stopped or never began: the agent is blocked");
    }
    stop_within(child, Duration::from_secs(5));
}
