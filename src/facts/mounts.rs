//! Mounts: is `/` (and `/usr`) read-only, and which cgroup hierarchy is in use.
//!
//! Image-based OSes mount `/usr` (Flatcar, CoreOS) or `/` (COS, Bottlerocket, MicroOS) read-only; that
//! is a characteristic worth reporting, never an identity on its own. The table is the root's
//! `proc/1/mountinfo` (PID 1's view is the host's, even when hostprint runs in a container with
//! `hostPID`), falling back to `proc/self/mountinfo`; lines are parsed one by one with procfs-core's
//! parser so that one odd line costs that line, not the table.

use serde::Serialize;

use procfs_core::process::MountInfo;

use crate::facts::os_release::shorten;
use crate::root::Root;
use crate::warning::Warning;

/// A mount table of thousands of lines (a busy Kubernetes node) stays well under this.
const CAP: usize = 4 << 20;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Mounts {
    pub root_read_only: Option<bool>,
    pub usr_read_only: Option<bool>,
    /// `v1`, `v2` or `hybrid`.
    pub cgroup: Option<&'static str>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub mount_point: String,
    pub fs_type: String,
    pub read_only: bool,
}

pub fn probe(root: &Root) -> Mounts {
    for path in ["proc/1/mountinfo", "proc/self/mountinfo"] {
        let Ok(text) = root.read_text(path, CAP) else {
            continue;
        };
        let (mounts, bad) = parse(&text.text);
        if let Some((line, text)) = &bad.first {
            root.warn(Warning::at(
                path,
                format!(
                    "{} malformed line(s), first at line {line}: {text:?}",
                    bad.count
                ),
            ));
        }
        if mounts.is_empty() {
            continue;
        }
        return summarize(&mounts);
    }
    Mounts::default()
}

/// Malformed lines of a mount table: how many, and the first (1-based line number, shortened text).
///
/// Only the first is kept: a hostile 4 MiB table of garbage is ~100k bad lines, and keeping an error
/// for each cost more memory than the table itself. procfs-core's own error text is not used: it
/// reads `"Internal error: bug at <build path> (please report this procfs bug)"` and can embed the
/// whole line; the line itself, shortened, says more.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BadLines {
    pub count: usize,
    pub first: Option<(usize, String)>,
}

/// Parses mountinfo text; returns the mounts and the bad lines.
pub fn parse(text: &str) -> (Vec<Mount>, BadLines) {
    let mut mounts = Vec::new();
    let mut bad = BadLines::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match MountInfo::from_line(line) {
            Ok(m) => mounts.push(Mount {
                mount_point: m.mount_point.to_string_lossy().into_owned(),
                fs_type: m.fs_type,
                read_only: m.mount_options.contains_key("ro"),
            }),
            Err(_) => {
                bad.count += 1;
                if bad.first.is_none() {
                    bad.first = Some((i + 1, shorten(line)));
                }
            }
        }
    }
    (mounts, bad)
}

/// The mount that serves `path`: the last-listed mount whose mount point is the longest prefix.
fn serving<'a>(mounts: &'a [Mount], path: &str) -> Option<&'a Mount> {
    let covers = |m: &&Mount| {
        m.mount_point == "/"
            || path == m.mount_point
            // `path` lies below the mount point (without formatting "{mount_point}/" for each of
            // the table's thousands of lines on a busy node).
            || path
                .strip_prefix(m.mount_point.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    };
    let longest = mounts
        .iter()
        .filter(covers)
        .map(|m| m.mount_point.len())
        .max()?;
    mounts
        .iter()
        .filter(covers)
        .rfind(|m| m.mount_point.len() == longest)
}

pub fn summarize(mounts: &[Mount]) -> Mounts {
    let cgroup2_root = mounts
        .iter()
        .any(|m| m.fs_type == "cgroup2" && m.mount_point == "/sys/fs/cgroup");
    let cgroup2_any = mounts.iter().any(|m| m.fs_type == "cgroup2");
    let cgroup1 = mounts.iter().any(|m| m.fs_type == "cgroup");
    let cgroup = if cgroup2_root {
        Some("v2")
    } else if cgroup1 && cgroup2_any {
        Some("hybrid")
    } else if cgroup1 {
        Some("v1")
    } else {
        None
    };
    Mounts {
        root_read_only: serving(mounts, "/").map(|m| m.read_only),
        usr_read_only: serving(mounts, "/usr").map(|m| m.read_only),
        cgroup,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLATCAR: &str = "\
22 1 253:9 / / rw,relatime shared:1 - ext4 /dev/vda9 rw
23 22 253:3 / /usr ro,relatime shared:2 - ext4 /dev/mapper/usr ro
30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw
";

    #[test]
    fn flatcar_like_table() {
        let (m, bad) = parse(FLATCAR);
        assert_eq!(bad, BadLines::default());
        assert_eq!(
            summarize(&m),
            Mounts {
                root_read_only: Some(false),
                usr_read_only: Some(true),
                cgroup: Some("v2")
            }
        );
    }

    #[test]
    fn hybrid_and_v1() {
        let hybrid = "\
1 0 8:1 / / ro - ext4 /dev/sda1 ro
2 1 0:1 / /sys/fs/cgroup rw - tmpfs tmpfs rw
3 2 0:2 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
4 2 0:3 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu
";
        let (m, _) = parse(hybrid);
        let s = summarize(&m);
        assert_eq!(s.cgroup, Some("hybrid"));
        assert_eq!(s.root_read_only, Some(true));
        assert_eq!(s.usr_read_only, Some(true));
        let (m, _) = parse("1 0 8:1 / / rw - ext4 /dev/sda1 rw\n4 1 0:3 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n");
        assert_eq!(summarize(&m).cgroup, Some("v1"));
    }

    #[test]
    fn bad_lines_are_counted_not_fatal() {
        let (m, bad) = parse("garbage line\n1 0 8:1 / / rw - ext4 /dev/sda1 rw\nmore garbage\n");
        assert_eq!(m.len(), 1);
        assert_eq!(bad.count, 2);
        assert_eq!(bad.first, Some((1, "garbage line".to_string())));
    }

    #[test]
    fn overmount_uses_the_last_entry() {
        let (m, _) = parse("1 0 8:1 / / rw - ext4 a rw\n2 1 8:2 / / ro - overlay b ro\n");
        assert_eq!(summarize(&m).root_read_only, Some(true));
        assert_eq!(summarize(&[]).root_read_only, None);
    }
}
