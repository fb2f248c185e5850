//! Mounts: is `/` (and `/usr`) read-only, and which cgroup hierarchy is in use.
//!
//! Image-based OSes mount `/usr` (Flatcar) or `/` (COS, Bottlerocket, MicroOS) read-only: a trait
//! worth reporting, never an identity. The table is `proc/1/mountinfo` (PID 1's view is the host's),
//! else `proc/self/mountinfo` (format: proc(5)). It is summarized line by line, borrowing only the
//! fields needed, so a hostile table costs its text and nothing per mount option; a malformed line
//! costs that line. Mount points are compared as written (octal escapes never occur in those asked).

use serde::Serialize;

use crate::facts::os_release::quote;
use crate::root::Root;
use crate::warning::{Code, Warning};

/// A mount table of thousands of lines (a busy Kubernetes node) stays well under this.
const CAP: usize = 4 << 20;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Mounts {
    pub root_read_only: Option<bool>,
    pub usr_read_only: Option<bool>,
    /// `v1`, `v2` or `hybrid`.
    pub cgroup: Option<&'static str>,
}

/// The fields of one mountinfo line that the summary uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount<'a> {
    pub mount_point: &'a str,
    pub fs_type: &'a str,
    pub read_only: bool,
}

impl<'a> Mount<'a> {
    /// `ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL…] - FSTYPE SOURCE SUPER_OPTIONS`.
    pub fn from_line(line: &'a str) -> Option<Mount<'a>> {
        let mut fields = line.split_ascii_whitespace();
        let number = |f: Option<&str>| f.and_then(|f| f.parse::<u64>().ok());
        number(fields.next())?;
        number(fields.next())?;
        let (major, minor) = fields.next()?.split_once(':')?;
        major.parse::<u64>().ok()?;
        minor.parse::<u64>().ok()?;
        fields.next()?;
        let mount_point = fields.next()?;
        let options = fields.next()?;
        fields.find(|f| *f == "-")?;
        let fs_type = fields.next()?;
        Some(Mount {
            mount_point,
            fs_type,
            read_only: options.split(',').any(|o| o == "ro"),
        })
    }
}

pub fn probe(root: &Root) -> Mounts {
    for path in ["proc/1/mountinfo", "proc/self/mountinfo"] {
        let Ok(text) = root.read_text(path, CAP) else {
            continue;
        };
        let (mounts, bad) = parse(&text.text);
        if let Some((line, text)) = &bad.first {
            root.warn(Warning::at(
                Code::MalformedLine,
                path,
                format!(
                    "{} malformed line(s), first at line {line}: {text:?}",
                    bad.count
                ),
            ));
        }
        match mounts {
            Some(mounts) => return mounts,
            None => continue,
        }
    }
    Mounts::default()
}

/// Malformed lines of a mount table: how many, and the first (1-based line number, quoted text,
/// credentials masked); only the first is kept, so a hostile table costs nothing per bad line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BadLines {
    pub count: usize,
    pub first: Option<(usize, String)>,
}

/// Parses mountinfo text; returns its summary (`None` when no line is a mount) and the bad lines.
pub fn parse(text: &str) -> (Option<Mounts>, BadLines) {
    let mut summary = Summary::default();
    let mut any = false;
    let mut bad = BadLines::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match Mount::from_line(line) {
            Some(m) => {
                any = true;
                summary.add(&m);
            }
            None => {
                bad.count += 1;
                if bad.first.is_none() {
                    bad.first = Some((i + 1, quote(line)));
                }
            }
        }
    }
    (any.then(|| summary.finish()), bad)
}

/// The summary of a mount table, built one mount at a time.
#[derive(Default)]
struct Summary {
    root: Serving,
    usr: Serving,
    cgroup2_root: bool,
    cgroup2_any: bool,
    cgroup1: bool,
}

/// The mount that serves a path so far: the last-listed mount whose mount point is the longest
/// prefix (an overmount hides what it covers), as (mount point length, read-only).
#[derive(Default)]
struct Serving(Option<(usize, bool)>);

impl Serving {
    fn consider(&mut self, path: &str, m: &Mount) {
        let covers = m.mount_point == "/"
            || path == m.mount_point
            || path
                .strip_prefix(m.mount_point)
                .is_some_and(|rest| rest.starts_with('/'));
        let len = m.mount_point.len();
        if covers && self.0.is_none_or(|(best, _)| len >= best) {
            self.0 = Some((len, m.read_only));
        }
    }
}

impl Summary {
    fn add(&mut self, m: &Mount) {
        self.root.consider("/", m);
        self.usr.consider("/usr", m);
        self.cgroup2_root |= m.fs_type == "cgroup2" && m.mount_point == "/sys/fs/cgroup";
        self.cgroup2_any |= m.fs_type == "cgroup2";
        self.cgroup1 |= m.fs_type == "cgroup";
    }

    fn finish(self) -> Mounts {
        let cgroup = if self.cgroup2_root {
            Some("v2")
        } else if self.cgroup1 && self.cgroup2_any {
            Some("hybrid")
        } else if self.cgroup1 {
            Some("v1")
        } else {
            None
        };
        Mounts {
            root_read_only: self.root.0.map(|(_, ro)| ro),
            usr_read_only: self.usr.0.map(|(_, ro)| ro),
            cgroup,
        }
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
            m.unwrap(),
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
        let s = parse(hybrid).0.unwrap();
        assert_eq!(s.cgroup, Some("hybrid"));
        assert_eq!(s.root_read_only, Some(true));
        assert_eq!(s.usr_read_only, Some(true));
        let (m, _) = parse("1 0 8:1 / / rw - ext4 /dev/sda1 rw\n4 1 0:3 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n");
        assert_eq!(m.unwrap().cgroup, Some("v1"));
    }

    #[test]
    fn bad_lines_are_counted_not_fatal() {
        let (m, bad) = parse("garbage line\n1 0 8:1 / / rw - ext4 /dev/sda1 rw\nmore garbage\n");
        assert_eq!(m.unwrap().root_read_only, Some(false));
        assert_eq!(bad.count, 2);
        assert_eq!(bad.first, Some((1, "garbage line".to_string())));
    }

    #[test]
    fn overmount_uses_the_last_entry() {
        let (m, _) = parse("1 0 8:1 / / rw - ext4 a rw\n2 1 8:2 / / ro - overlay b ro\n");
        assert_eq!(m.unwrap().root_read_only, Some(true));
        assert_eq!(parse("").0, None);
    }

    #[test]
    fn options_and_optional_fields() {
        // Optional fields before the separator; `ro` only as a whole option, not inside another.
        let (m, bad) = parse("1 0 8:1 / / rw,errors=ro shared:1 master:2 - ext4 a ro\n2 1 8:2 / /usr ro,nosuid - ext4 b rw\n");
        assert_eq!(bad.count, 0);
        let m = m.unwrap();
        assert_eq!(
            (m.root_read_only, m.usr_read_only),
            (Some(false), Some(true))
        );
        // No separator, no fs type, or numbers that are not: malformed.
        for line in [
            "1 0 8:1 / / rw shared:1",
            "1 0 8:1 / / rw -",
            "x 0 8:1 / / rw - ext4 a rw",
            "1 0 81 / / rw - ext4 a rw",
        ] {
            assert_eq!(parse(line).1.count, 1, "{line}");
        }
    }
}
