//! Peak memory stays bounded on any root within the read caps: a DaemonSet runs hostprint under a
//! memory limit (64 MiB is common), and a hostile or broken host must not get it OOM-killed.
//!
//! Each root below puts the worst input hostprint accepts at the paths it reads: a mount table of one
//! line with hundreds of thousands of options (it peaked at ~100 MiB), os-release and command lines
//! at their caps, a 4 MiB cpuinfo, directories of tens of thousands of entries, symlink chains as
//! long as resolution allows; and a 50 MiB file at every path a probe reads, which fills every cap
//! in one run. The peak RSS of the (debug) binary is measured with `wait4` and must stay within
//! [`LIMIT_KIB`] ([`ALL_CAPS_LIMIT_KIB`] for the last root); an optimized build needs less.
//!
//! Linux carries a process's high-water mark across `exec`, so a child's peak can be no lower than
//! this test process's: that is why this is a test binary of its own, with one test, that writes the
//! big files in pieces, and checks its own peak first.

mod common;

use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use common::{bin, run, status_kib};
use hostprint::profile;
use hostprint::root::{Op, Root};
use hostprint::rules::RuleSet;

/// The bound: 16 MiB.
const LIMIT_KIB: i64 = 16 * 1024;
/// The bound when every read is at its cap in the same run (two 4 MiB mount tables and a 4 MiB
/// cpuinfo among them): 24 MiB, still well inside a 64 MiB DaemonSet limit.
const ALL_CAPS_LIMIT_KIB: i64 = 24 * 1024;
/// The largest read cap (proc/1/mountinfo, proc/cpuinfo).
const BIG_CAP: usize = 4 << 20;
/// The cap of os-release and the command lines.
const SMALL_CAP: usize = 64 << 10;

fn write(root: &Path, path: &str, content: &[u8]) {
    let p = root.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

/// `proc/1/mountinfo`: one line of as many mount options as fit under the cap.
fn huge_mount_line(root: &Path) {
    std::fs::create_dir_all(root.join("proc/1")).unwrap();
    let mut f = std::fs::File::create(root.join("proc/1/mountinfo")).unwrap();
    let tail = b" - ext4 /dev/sda1 rw\n";
    let mut len = 0;
    let mut piece = String::from("22 1 253:9 / / rw");
    for i in 0.. {
        let option = format!(",o{i}");
        if len + piece.len() + option.len() + tail.len() >= BIG_CAP {
            break;
        }
        piece.push_str(&option);
        if piece.len() > 64 << 10 {
            f.write_all(piece.as_bytes()).unwrap();
            len += piece.len();
            piece.clear();
        }
    }
    f.write_all(piece.as_bytes()).unwrap();
    f.write_all(tail).unwrap();
}

/// os-release, the command lines and cpuinfo at their caps (the command lines full of credentials
/// to mask).
fn everything_at_its_cap(root: &Path) {
    let mut os = String::from("ID=flatcar\nPRETTY_NAME=\"Flatcar\"\n");
    for i in 0.. {
        let line = format!("KEY_{i}=\"{}\"\n", "v".repeat(i % 200));
        if os.len() + line.len() > SMALL_CAP {
            break;
        }
        os.push_str(&line);
    }
    write(root, "etc/os-release", os.as_bytes());
    let args: Vec<String> = (0..SMALL_CAP / 12)
        .map(|i| format!("--token={i}"))
        .collect();
    let pid1 = format!("/sbin/init\0{}", args.join("\0"));
    write(root, "proc/1/cmdline", &pid1.as_bytes()[..SMALL_CAP]);
    write(root, "proc/1/comm", b"systemd\n");
    let words: Vec<String> = (0..SMALL_CAP / 12)
        .map(|i| format!("a.password={i}"))
        .collect();
    write(
        root,
        "proc/cmdline",
        &words.join(" ").as_bytes()[..SMALL_CAP],
    );
    let cpu = "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr pae mce hypervisor\n\n";
    let mut f = std::fs::File::create(root.join("proc/cpuinfo")).unwrap();
    let chunk = cpu.repeat(1000);
    for _ in 0..BIG_CAP / chunk.len() {
        f.write_all(chunk.as_bytes()).unwrap();
    }
}

/// `etc/` and `run/` with tens of thousands of entries, and os-release at the end of the longest
/// symlink chain that resolves.
fn crowded_and_chained(root: &Path) {
    for dir in ["etc", "run", "usr/lib"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    for i in 0..10_000 {
        std::fs::File::create(root.join(format!("etc/f{i:05}"))).unwrap();
        std::fs::File::create(root.join(format!("run/s{i:05}.sock"))).unwrap();
    }
    write(root, "usr/lib/real", b"ID=flatcar\n");
    let mut previous = "real".to_string();
    for i in 0..39 {
        let name = format!("l{i}");
        symlink(&previous, root.join("usr/lib").join(&name)).unwrap();
        previous = name;
    }
    symlink(
        format!("/usr/lib/{previous}"),
        root.join("usr/lib/os-release"),
    )
    .unwrap();
    // And a chain that loops.
    symlink("loop-b", root.join("etc/loop-a")).unwrap();
    symlink("loop-a", root.join("etc/loop-b")).unwrap();
    symlink("loop-a", root.join("etc/os-release")).unwrap();
}

/// One 50 MiB file hard-linked at every path a probe reads, the paths taken from the journal of a
/// small root with the enablers (so that a probe that starts reading a new path is covered).
fn fifty_mib_at_every_read_path(root: &Path) {
    let small = tempfile::tempdir().unwrap();
    common::lay_enablers(small.path(), |_| false);
    let probed = Root::open(small.path()).unwrap();
    profile::build(&probed, &RuleSet::embedded().unwrap());
    let mut reads: Vec<String> = probed
        .journal()
        .into_iter()
        .filter(|a| a.op == Op::Read)
        .map(|a| a.path)
        .collect();
    reads.sort();
    reads.dedup();
    assert!(
        reads.len() > 20,
        "too few reads to mean anything: {reads:?}"
    );
    let big = tempfile::NamedTempFile::new_in(root)
        .unwrap()
        .into_temp_path();
    common::write_big(&big);
    common::lay_enablers(root, |_| false);
    for path in reads {
        let p = root.join(&path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let _ = std::fs::remove_file(&p);
        std::fs::hard_link(&big, &p).unwrap();
    }
}

#[test]
fn peak_memory_stays_within_16_mib_on_hostile_roots() {
    let huge: fn(&Path) = huge_mount_line;
    let roots = [
        ("huge mount line", huge, LIMIT_KIB),
        ("everything at its cap", everything_at_its_cap, LIMIT_KIB),
        ("crowded and chained", crowded_and_chained, LIMIT_KIB),
        (
            "50 MiB at every read",
            fifty_mib_at_every_read_path,
            ALL_CAPS_LIMIT_KIB,
        ),
    ];
    for (name, build, limit) in roots {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path());
        // This process's own peak (`VmHWM`), which `exec` hands on to the child: `getrusage` would also
        // count what this process inherited from cargo.
        let own = status_kib("self", "VmHWM");
        assert!(
            own < LIMIT_KIB / 2,
            "this test process peaked at {own} KiB: a child's peak would be no lower, so the \
             measurement would say nothing"
        );
        for format in [&["--format", "json"][..], &["--explain"]] {
            let mut cmd = bin();
            cmd.arg("--root").arg(dir.path()).args(format);
            let r = run(cmd, Duration::from_secs(30));
            assert_eq!(r.status.code(), Some(0), "{name}: {}", r.stderr);
            println!("{name} {format:?}: peak RSS {} KiB", r.max_rss_kib);
            assert!(
                r.max_rss_kib <= limit,
                "{name} {format:?}: peak RSS {} KiB, over {limit} KiB",
                r.max_rss_kib
            );
        }
    }
}
