//! The host itself: name, architecture, CPUs and memory — context for a person reading the profile.
//!
//! All from the root's `proc/` so a recorded root replays them; `uname` only for the live root's
//! architecture. `proc/sys/kernel/hostname` names the reader's UTS namespace, not the root's: when our
//! `proc/self/ns/uts` differs from the root's `proc/1/ns/uts` (a pod without `hostNetwork`), the
//! hostname is the root's `etc/hostname` or unknown. Where PID 1's link is not ours to read, a mounted
//! live host's PID 1 is taken to be in the initial UTS namespace (a fixed inode, proc_ns.h).

use schemars::JsonSchema;
use serde::Serialize;

use crate::facts::environment::{ns_link, UTS_INIT_INO};
use crate::root::Root;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Host {
    pub hostname: Option<String>,
    pub architecture: Option<String>,
    pub cpus: Option<usize>,
    pub memory_bytes: Option<u64>,
}

pub fn probe(root: &Root, cpuinfo: Option<&str>) -> Host {
    let paths: &[&str] = if own_uts_namespace(root) {
        &["etc/hostname"]
    } else {
        &["proc/sys/kernel/hostname", "etc/hostname"]
    };
    let hostname = paths.iter().find_map(|p| {
        root.read_text(p, 256)
            .ok()
            .map(|t| t.text.trim().to_string())
            .filter(|s| !s.is_empty())
    });
    let architecture = if root.same_kernel() {
        nix::sys::utsname::uname()
            .ok()
            .map(|u| u.machine().to_string_lossy().into_owned())
    } else {
        None
    };
    let cpus = cpuinfo.map(count_cpus).filter(|n| *n > 0);
    let memory_bytes = root
        .read_text("proc/meminfo", 64 * 1024)
        .ok()
        .and_then(|t| mem_total(&t.text));
    Host {
        hostname,
        architecture,
        cpus,
        memory_bytes,
    }
}

/// True when hostprint reads the root's `proc/` from a UTS namespace that is not the root's.
fn own_uts_namespace(root: &Root) -> bool {
    let Some(ours) = ns_link(root, "self", "uts") else {
        return false;
    };
    match ns_link(root, "1", "uts") {
        Some(roots) => ours != roots,
        None => !root.is_live() && root.same_kernel() && ours != UTS_INIT_INO,
    }
}

pub fn count_cpus(cpuinfo: &str) -> usize {
    cpuinfo
        .lines()
        .filter(|l| l.split(':').next().map(str::trim) == Some("processor"))
        .count()
}

/// `MemTotal:  24592176 kB` → bytes.
pub fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut words = line.split_whitespace().skip(1);
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => value.checked_mul(1024),
        None => Some(value),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A root as a DaemonSet pod sees the node: the kernel file holds the pod's name.
    fn node_root(self_uts: &str, etc_hostname: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in ["proc/4242/ns", "proc/1/ns", "proc/sys/kernel", "etc"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        std::os::unix::fs::symlink("4242", d.join("proc/self")).unwrap();
        std::os::unix::fs::symlink(self_uts, d.join("proc/4242/ns/uts")).unwrap();
        std::os::unix::fs::symlink("uts:[4026531838]", d.join("proc/1/ns/uts")).unwrap();
        std::fs::write(d.join("proc/sys/kernel/hostname"), "3f2a9c1b7d0e\n").unwrap();
        if let Some(name) = etc_hostname {
            std::fs::write(d.join("etc/hostname"), name).unwrap();
        }
        dir
    }

    fn hostname(dir: &Path) -> Option<String> {
        probe(&Root::open(dir).unwrap(), None).hostname
    }

    #[test]
    fn hostname_of_the_root_not_of_our_uts_namespace() {
        let pod = "uts:[4026532301]";
        assert_eq!(
            hostname(node_root(pod, Some("node-7\n")).path()).as_deref(),
            Some("node-7")
        );
        assert_eq!(hostname(node_root(pod, None).path()), None);
        // Sharing the root's namespace (hostNetwork, or no container at all): the kernel's name.
        let shared = node_root("uts:[4026531838]", Some("node-7\n"));
        assert_eq!(hostname(shared.path()).as_deref(), Some("3f2a9c1b7d0e"));
        // No links to compare (a recorded root without them): the kernel file, as recorded.
        let recorded = node_root(pod, Some("node-7\n"));
        std::fs::remove_file(recorded.path().join("proc/1/ns/uts")).unwrap();
        assert_eq!(hostname(recorded.path()).as_deref(), Some("3f2a9c1b7d0e"));
    }

    /// A pod without capabilities cannot read the node's `proc/1/ns/uts`; the node runs our kernel
    /// (same boot id), so its PID 1 is in the initial UTS namespace.
    #[test]
    fn hostname_of_a_mounted_host_whose_pid1_is_unreadable() {
        let Some(boot_id) = crate::root::own_boot_id() else {
            eprintln!("skipped: no /proc/sys/kernel/random/boot_id on this machine");
            return;
        };
        for (ours, want) in [
            ("uts:[4026532301]", Some("node-7")),
            ("uts:[4026531838]", Some("3f2a9c1b7d0e")),
        ] {
            let host = node_root(ours, Some("node-7\n"));
            std::fs::remove_file(host.path().join("proc/1/ns/uts")).unwrap();
            std::fs::create_dir_all(host.path().join("proc/sys/kernel/random")).unwrap();
            std::fs::write(host.path().join("proc/sys/kernel/random/boot_id"), &boot_id).unwrap();
            assert_eq!(hostname(host.path()).as_deref(), want, "{ours}");
        }
    }

    #[test]
    fn cpus_and_memory() {
        assert_eq!(
            count_cpus("processor\t: 0\nflags : x\n\nprocessor\t: 1\n"),
            2
        );
        assert_eq!(count_cpus(""), 0);
        assert_eq!(
            mem_total("MemTotal:       24592176 kB\n"),
            Some(24592176 * 1024)
        );
        assert_eq!(mem_total("MemFree: 1 kB\n"), None);
        assert_eq!(mem_total("MemTotal: lots kB\n"), None);
    }
}
