//! The host itself: name, architecture, CPUs and memory — context for a person reading the profile.
//!
//! All from the root's `proc/` so a recorded root replays them; `uname` only for the live root's
//! architecture (no proc file states it on every kernel).

use schemars::JsonSchema;
use serde::Serialize;

use crate::root::Root;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Host {
    pub hostname: Option<String>,
    pub architecture: Option<String>,
    pub cpus: Option<usize>,
    pub memory_bytes: Option<u64>,
}

pub fn probe(root: &Root, cpuinfo: Option<&str>) -> Host {
    let hostname = ["proc/sys/kernel/hostname", "etc/hostname"]
        .iter()
        .find_map(|p| {
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
