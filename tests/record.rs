//! `hostprint record` round trips: record a root, replay the recording with `--root`, and compare the
//! two `--format json` profiles field by field.
//!
//! - The machine running the tests: its live profile against the replay of its recording. Only two
//!   fields may differ, both facts that do not come from files and so cannot be recorded:
//!   `host.architecture` (from `uname`, asked only of the live `/`) and `environment.virtualization`
//!   when the live run took it from the CPUID hypervisor leaf (an instruction; a replay falls back to
//!   DMI / `proc/cpuinfo` flags and typically says `vm-other`). Everything else must be equal.
//! - Every fixture under `fixtures/*/root`, and a synthetic root built here with what fixtures
//!   exercise (relative and absolute symlinks on the way, a real socket and FIFO, a manifest socket and
//!   unreadable file, a symlink loop, a file longer than the probe's cap): all fields equal.
//! - Secrets planted where the probes (and a user rule) read them are never copied.

use std::collections::BTreeSet;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use serde_json::Value;

mod common;
use common::hostprint;

fn profile(root: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["--root", root.to_str().unwrap(), "--format", "json"];
    args.extend_from_slice(extra);
    let o = hostprint(&args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Records `source` into `out` and returns the printed summary.
fn record(source: &Path, out: &Path, extra: &[&str]) -> String {
    let mut args = vec!["--root", source.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.extend(["record", out.to_str().unwrap()]);
    let o = hostprint(&args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "record {}: {}",
        source.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn write(root: &Path, path: &str, content: &[u8]) {
    let p = root.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

fn link(root: &Path, path: &str, target: &str) {
    let p = root.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    symlink(target, p).unwrap();
}

fn manifest(root: &Path) -> String {
    std::fs::read_to_string(root.join(".hostprint-manifest.toml")).unwrap_or_default()
}

#[test]
fn live_host_replays_its_own_profile() {
    let live = Path::new("/");
    let before = profile(live, &[]);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("node");
    let summary = record(live, &out, &[]);
    assert!(summary.contains("files"), "{summary}");
    let replay = profile(&out, &[]);
    let after = profile(live, &[]);

    // The recording carries the boot id, so replayed on the same running machine it is recognised
    // as that machine (CPUID, uname): the replay is the live profile, every field of it.
    assert_eq!(
        before, after,
        "the live profile changed during the test; rerun"
    );
    assert_eq!(before, replay);

    // The links met on the way are links in the recording, with the same target text.
    for path in ["etc/os-release", "var/run"] {
        if let Ok(target) = std::fs::read_link(live.join(path)) {
            let recorded = std::fs::read_link(out.join(path));
            assert_eq!(
                recorded.ok().map(|t| t != target),
                Some(false),
                "{path} -> {target:?} was not recorded as that link"
            );
        }
    }
    // proc/self names the recording process, whichever it was: a link to a number.
    if let Ok(target) = std::fs::read_link(out.join("proc/self")) {
        assert!(
            target.to_string_lossy().parse::<u32>().is_ok(),
            "{target:?}"
        );
    }
}

#[test]
fn every_fixture_replays_identically() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut roots: Vec<PathBuf> = std::fs::read_dir(&fixtures)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path().join("root"))
        .filter(|p| p.is_dir())
        .collect();
    roots.sort();
    let tmp = tempfile::tempdir().unwrap();
    for (i, root) in roots.iter().enumerate() {
        let out = tmp.path().join(i.to_string());
        record(root, &out, &[]);
        assert_eq!(
            profile(root, &[]),
            profile(&out, &[]),
            "replay of {} differs",
            root.display()
        );
    }
}

/// A root with everything a recording must carry over, in the shapes real hosts have them.
fn synthetic_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(
        r,
        "usr/lib/os-release",
        b"ID=flatcar\nVERSION_ID=3139.2.0\nNAME=\"Flatcar Container Linux by Kinvolk\"\n",
    );
    link(r, "etc/os-release", "../usr/lib/os-release");
    link(r, "etc/flatcar", "/usr/share/flatcar");
    write(r, "usr/share/flatcar/update.conf", b"GROUP=stable\n");
    std::fs::create_dir_all(r.join("run/docker")).unwrap();
    link(r, "var/run", "../run");
    // A real socket reached through a trailing link, a real FIFO where a socket is expected, and a
    // socket and an unreadable file that only the manifest knows.
    let _socket = std::os::unix::net::UnixListener::bind(r.join("run/docker/docker.sock")).unwrap();
    link(r, "run/docker.sock", "docker/docker.sock");
    std::fs::create_dir_all(r.join("run/containerd")).unwrap();
    nix::unistd::mkfifo(
        &r.join("run/containerd/containerd.sock"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    write(
        r,
        ".hostprint-manifest.toml",
        b"[[entry]]\npath = \"run/crio/crio.sock\"\ntype = \"socket\"\n\n\
          [[entry]]\npath = \"etc/selinux/config\"\ntype = \"unreadable\"\nerror = \"EACCES\"\n",
    );
    std::fs::create_dir_all(r.join("run/crio")).unwrap();
    // PID 1 and namespaces as proc shows them; the mount table only through proc/self (PID 1's
    // hidden, as on hosts with hidepid), so the recording must keep the proc/self link.
    write(r, "proc/1/comm", b"systemd\n");
    write(
        r,
        "proc/1/cmdline",
        b"/usr/lib/systemd/systemd\0--switched-root\0",
    );
    link(r, "proc/1/exe", "/usr/lib/systemd/systemd");
    link(r, "proc/1/ns/pid", "pid:[4026531836]");
    link(r, "proc/self", "4242");
    write(
        r,
        "proc/4242/mountinfo",
        b"22 1 253:9 / / rw,relatime - ext4 /dev/vda9 rw\n23 22 253:3 / /usr ro - ext4 /dev/dm-0 ro\n",
    );
    // A loop where a probe reads, and a file far longer than the probe reads.
    link(r, "proc/cmdline", "cmdline.d");
    link(r, "proc/cmdline.d", "cmdline");
    write(r, "proc/sys/kernel/osrelease", &[b'5'; 9000]);
    write(r, ".dockerenv", b"");
    dir
}

#[test]
fn links_sockets_fifos_manifest_loops_and_truncation_replay_identically() {
    let src = synthetic_root();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("rec");
    let summary = record(src.path(), &out, &[]);
    let original = profile(src.path(), &[]);
    let replay = profile(&out, &[]);
    assert_eq!(original, replay);

    // The case is meaningful: the facts that need links, sockets and the manifest were found.
    assert_eq!(original["identity"]["id"], "flatcar");
    let runtimes: BTreeSet<String> = original["runtimes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["socket"].as_str().unwrap().to_string())
        .collect();
    assert!(runtimes.contains("run/docker.sock"), "{runtimes:?}");
    assert!(runtimes.contains("run/crio/crio.sock"), "{runtimes:?}");
    let warnings = original["warnings"].to_string();
    assert!(warnings.contains("symbolic links"), "{warnings}");
    assert!(warnings.contains("larger than 4096 bytes"), "{warnings}");
    assert!(warnings.contains("found a fifo"), "{warnings}");

    // And the recording holds them in the shapes the module docs promise.
    let read_link = |p: &str| std::fs::read_link(out.join(p)).unwrap();
    assert_eq!(
        read_link("etc/os-release"),
        Path::new("../usr/lib/os-release")
    );
    assert_eq!(read_link("var/run"), Path::new("../run"));
    assert_eq!(read_link("proc/self"), Path::new("4242"));
    assert_eq!(original["filesystem"]["usr_read_only"], true);
    assert_eq!(read_link("proc/1/ns/pid"), Path::new("pid:[4026531836]"));
    assert_eq!(read_link("proc/cmdline.d"), Path::new("cmdline"));
    assert_eq!(
        std::fs::metadata(out.join("proc/sys/kernel/osrelease"))
            .unwrap()
            .len(),
        4097,
        "a truncated file keeps the cap plus one byte"
    );
    assert!(
        summary.contains("truncated proc/sys/kernel/osrelease"),
        "{summary}"
    );
    let m = manifest(&out);
    for entry in [
        "path = \"run/docker/docker.sock\"\ntype = \"socket\"",
        "path = \"run/docker.sock\"\ntype = \"socket\"",
        "path = \"run/containerd/containerd.sock\"\ntype = \"fifo\"",
        "path = \"run/crio/crio.sock\"\ntype = \"socket\"",
        "path = \"etc/selinux/config\"\ntype = \"unreadable\"\nerror = \"EACCES\"",
    ] {
        assert!(m.contains(entry), "missing {entry:?} in\n{m}");
    }
    // Nothing was copied that the probes did not read: a stat-only file is empty.
    assert_eq!(std::fs::metadata(out.join(".dockerenv")).unwrap().len(), 0);
}

#[test]
fn secrets_are_never_copied() {
    let src = synthetic_root();
    let r = src.path();
    write(r, "etc/shadow", b"root:$6$SHADOWHASH:19000:0:99999:7:::\n");
    write(
        r,
        "etc/ssh/ssh_host_ed25519_key",
        b"-----BEGIN OPENSSH PRIVATE KEY-----\n",
    );
    // Probes reach them through links, and a user rule asks for them directly.
    std::fs::remove_file(r.join("proc/1/comm")).unwrap();
    link(r, "proc/1/comm", "/etc/ssh/ssh_host_ed25519_key");
    let rules = tempfile::tempdir().unwrap();
    write(
        rules.path(),
        "nosy.toml",
        br#"id = "nosy"
name = "Reads secrets"
kind = "component"
fixtures = []

[[require]]
why = "reads the shadow file"
kv_file = { path = "etc/shadow", key = "root", present = true }

[[support]]
why = "stats the host key"
path = { path = "etc/ssh/ssh_host_ed25519_key", type = "file" }
"#,
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("rec");
    let rules_dir = rules.path().to_str().unwrap();
    let summary = record(r, &out, &["--fingerprints", rules_dir]);

    assert!(!out.join("etc/shadow").exists());
    assert!(!out.join("etc/ssh/ssh_host_ed25519_key").exists());
    for (path, bytes) in all_files(&out) {
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("SHADOWHASH") && !text.contains("PRIVATE KEY"),
            "{} holds a secret",
            path.display()
        );
    }
    assert!(summary.contains("withheld etc/shadow"), "{summary}");
    assert!(
        summary.contains("withheld etc/ssh/ssh_host_ed25519_key"),
        "{summary}"
    );
    let m = manifest(&out);
    assert!(
        m.contains("path = \"etc/shadow\"\ntype = \"unreadable\"\nerror = \"EXCLUDED\""),
        "{m}"
    );
    // The replay says the file was withheld, where the link that reached it was asked.
    let replay = profile(&out, &["--fingerprints", rules_dir]);
    let warnings = replay["warnings"].to_string();
    assert!(
        warnings.contains("withheld by `hostprint record`"),
        "{warnings}"
    );
}

fn all_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            out.extend(all_files(&entry.path()));
        } else if kind.is_file() {
            out.push((entry.path(), std::fs::read(entry.path()).unwrap()));
        }
    }
    out
}

#[test]
fn refuses_a_non_empty_output_and_one_where_the_probes_read() {
    let src = synthetic_root();
    let busy = tempfile::tempdir().unwrap();
    write(busy.path(), "keep", b"");
    let o = hostprint(&[
        "--root",
        src.path().to_str().unwrap(),
        "record",
        busy.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not empty"));

    // Into the source's own (empty) run/crio, where the runtime probe looks for crio.sock.
    let inside = src.path().join("run/crio");
    let o = hostprint(&[
        "--root",
        src.path().to_str().unwrap(),
        "record",
        inside.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("where the probes read"), "{err}");
    assert_eq!(
        std::fs::read_dir(&inside).unwrap().count(),
        0,
        "nothing may be written when refusing"
    );
}

/// With user rules naming them, 17 of 20 secret files were copied verbatim, and every recorded file
/// was written 0644 whatever its source mode. Now: nothing on the secret list and nothing the source
/// does not let every user read is copied, whoever asks; the rest keeps its mode; the summary names
/// what was withheld.
#[test]
fn record_copied_secrets_that_user_rules_named_and_wrote_everything_0644() {
    use std::os::unix::fs::PermissionsExt;
    let src = tempfile::tempdir().unwrap();
    let r = src.path();
    write(r, "etc/os-release", b"ID=k3os\n");
    let secrets = [
        "etc/rancher/k3s/config.yaml",
        "etc/rancher/rke2/config.yaml",
        "etc/rancher/k3s/registries.yaml",
        "etc/kubernetes/bootstrap-kubelet.conf",
        "k3os/system/config.yaml",
        "var/lib/cloud/instance/user-data.txt",
        "run/containers/0/auth.json",
        "var/lib/kubelet/config.json",
        "etc/wireguard/wg0.conf",
        "etc/NetworkManager/system-connections/wifi.nmconnection",
        "etc/ceph/ceph.client.admin.keyring",
        "var/lib/etcd/member/snap/db",
        "etc/shadow",
    ];
    for path in secrets {
        write(r, path, b"password=SECRETVALUE\n");
    }
    // Not on the list, but the source lets only its owner (and group) read it.
    write(r, "etc/private.conf", b"KEY=SECRETVALUE\n");
    write(r, "etc/public.conf", b"KEY=plain\n");
    write(r, "etc/readonly.conf", b"KEY=plain\n");
    let chmod = |p: &str, mode| {
        std::fs::set_permissions(r.join(p), std::fs::Permissions::from_mode(mode)).unwrap()
    };
    chmod("etc/private.conf", 0o640);
    chmod("etc/readonly.conf", 0o444);
    let rules = tempfile::tempdir().unwrap();
    let mut nosy = String::from(
        "id = \"nosy\"\nname = \"Reads everything\"\nkind = \"component\"\nfixtures = []\n\n\
         [[require]]\nwhy = \"w\"\nos_release = { key = \"ID\", equals = \"k3os\" }\n",
    );
    for path in secrets
        .iter()
        .chain(&["etc/private.conf", "etc/public.conf", "etc/readonly.conf"])
    {
        nosy.push_str(&format!(
            "\n[[support]]\nwhy = \"reads it\"\nkv_file = {{ path = \"{path}\", key = \"password\", present = true }}\n"
        ));
    }
    write(rules.path(), "nosy.toml", nosy.as_bytes());
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("rec");
    let summary = record(r, &out, &["--fingerprints", rules.path().to_str().unwrap()]);
    for (path, bytes) in all_files(&out) {
        assert!(
            !String::from_utf8_lossy(&bytes).contains("SECRETVALUE"),
            "{} was copied",
            path.display()
        );
    }
    for path in secrets {
        assert!(
            summary.contains(&format!("withheld {path}: ")),
            "{path}: {summary}"
        );
    }
    assert!(
        summary.contains(
            "withheld etc/private.conf: not readable by every user on the source (mode 0640"
        ),
        "{summary}"
    );
    let mode = |p: &str| std::fs::metadata(out.join(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("etc/public.conf"), 0o644);
    assert_eq!(mode("etc/readonly.conf"), 0o444);
    assert_eq!(
        std::fs::read(out.join("etc/public.conf")).unwrap(),
        b"KEY=plain\n"
    );
}

/// Recording into a directory whose path leaves no room for the recorded paths failed midway and
/// left a partial DIR (its directories, no files) that replayed as "unknown". Now nothing is left.
#[test]
fn record_that_failed_midway_left_a_partial_directory() {
    use nix::fcntl::{openat, OFlag};
    use nix::sys::stat::{mkdirat, Mode};
    let src = tempfile::tempdir().unwrap();
    write(src.path(), "etc/os-release", b"ID=flatcar\n");
    // A parent directory so deep that "<parent>/<24-byte name>/etc" fits in PATH_MAX (4096 with
    // its NUL) and "<parent>/<24-byte name>/etc/os-release" does not. The temporary directory
    // beside DIR has a name of the same length.
    let tmp = tempfile::tempdir().unwrap();
    let name = "recording-of-node-aaaaaa";
    let want = 4095 - "/etc/os-release".len() + 1 - name.len() - 1;
    let mut parent = tmp.path().to_path_buf();
    let mut fd: std::os::fd::OwnedFd = std::fs::File::open(tmp.path()).unwrap().into();
    while parent.as_os_str().len() < want {
        let left = want - parent.as_os_str().len() - 1;
        let component = "d".repeat(left.min(200));
        mkdirat(&fd, component.as_str(), Mode::from_bits_truncate(0o755)).unwrap();
        fd = openat(&fd, component.as_str(), OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        parent.push(component);
    }
    assert_eq!(parent.as_os_str().len(), want);
    let out = parent.join(name);
    let o = hostprint(&[
        "--root",
        src.path().to_str().unwrap(),
        "record",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let left: Vec<_> = std::fs::read_dir(&parent).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// A link whose target is not UTF-8 was recorded with U+FFFD in place of the bytes, and what it led
/// to was lost without a word. Now its bytes are kept and the summary says what was not followed.
#[test]
fn record_mangled_a_link_target_that_is_not_utf8() {
    use std::os::unix::ffi::OsStrExt;
    let src = tempfile::tempdir().unwrap();
    let r = src.path();
    std::fs::create_dir_all(r.join("usr/lib")).unwrap();
    let target = r.join(std::ffi::OsStr::from_bytes(b"usr/lib/os-rel\xffease"));
    std::fs::write(target, b"ID=odd\n").unwrap();
    let odd = std::ffi::OsStr::from_bytes(b"/usr/lib/systemd/sys\xfftemd");
    std::fs::create_dir_all(r.join("proc/1")).unwrap();
    symlink(odd, r.join("proc/1/exe")).unwrap();
    symlink(std::ffi::OsStr::from_bytes(b"../usr/lib/os-rel\xffease"), {
        std::fs::create_dir_all(r.join("etc")).unwrap();
        r.join("etc/os-release")
    })
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("rec");
    let summary = record(r, &out, &[]);
    assert_eq!(
        std::fs::read_link(out.join("proc/1/exe")).unwrap(),
        Path::new(odd)
    );
    assert!(
        summary.contains("symlink etc/os-release: its target is not UTF-8"),
        "{summary}"
    );
    assert!(
        !summary.contains("symlink proc/1/exe"),
        "read as a link: {summary}"
    );
}
