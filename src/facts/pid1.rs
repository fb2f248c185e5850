//! PID 1: who runs this host.
//!
//! PID 1 separates systems os-release alone cannot: RancherOS runs System Docker, Talos machined as
//! `/sbin/init`, k3OS and Alpine BusyBox init with OpenRC. We read `proc/1/comm`, `proc/1/cmdline`
//! (credential-looking values masked, see `crate::redact`) and the `proc/1/exe` link text, which needs
//! ptrace rights: its failure is a fact (`exe_error`) about the probe's privileges, not a warning.

use serde::Serialize;

use crate::root::{Failure, Root};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Pid1 {
    pub comm: Option<String>,
    pub exe: Option<String>,
    /// Why `exe` is unknown when `proc/1` exists (e.g. "permission denied").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe_error: Option<String>,
    pub cmdline: Vec<String>,
}

impl Pid1 {
    /// The basename of `argv[0]`.
    pub fn argv0(&self) -> Option<&str> {
        self.cmdline.first().map(|a| basename(a))
    }
}

pub fn probe(root: &Root) -> Pid1 {
    let comm = root
        .read_text("proc/1/comm", 256)
        .ok()
        .map(|t| comm_line(&t.text))
        .filter(|s| !s.is_empty());
    let cmdline = root
        .read_text("proc/1/cmdline", 64 * 1024)
        .map(|t| crate::redact::mask_cmdline(parse_cmdline(&t.text)))
        .unwrap_or_default();
    let (exe, exe_error) = match root.readlink("proc/1/exe") {
        Ok(target) => (Some(target), None),
        Err(Failure::Absent) => (None, None),
        Err(Failure::Unreadable(reason)) => (None, Some(reason.to_string())),
        Err(other) => (None, Some(other.to_string())),
    };
    Pid1 {
        comm,
        exe,
        exe_error,
        cmdline,
    }
}

/// `proc/<pid>/comm` is one line; a recorded or edited copy may end it with CRLF, and a stray `\r`
/// would turn `systemd` into an unknown init.
fn comm_line(text: &str) -> String {
    text.trim_end_matches(['\n', '\r']).to_string()
}

/// `proc/<pid>/cmdline` is NUL-separated with a trailing NUL; a process that rewrote its argv may use
/// spaces instead, which we leave as one word.
pub fn parse_cmdline(text: &str) -> Vec<String> {
    text.split('\0')
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect()
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// PID 1's names as `classify` compares them: the executable's basename, comm, argv0's basename.
pub struct Names<'a> {
    exe: &'a str,
    comm: &'a str,
    argv0: &'a str,
    pid1: &'a Pid1,
}

impl Names<'_> {
    fn any(&self, name: &str) -> bool {
        self.exe == name || self.comm == name || self.argv0 == name
    }
}

/// Whether PID 1's names show one init system.
pub type Shows = fn(&Names) -> bool;

/// Each init system and how PID 1 shows it, in order: the first that matches names it. The
/// executable is the strongest evidence (a symlink `/sbin/init -> /bin/busybox` shows up as
/// `busybox` there), then comm, then argv0. Rules may name only these (`init = "…"`).
pub const INITS: &[(&str, Shows)] = &[
    ("systemd", |n| n.any("systemd")),
    // RancherOS execs System Docker as PID 1 with argv0 = basename [S-ROS init.go].
    ("system-docker", |n| {
        n.any("system-dockerd") || n.any("system-docker")
    }),
    // Talos execs /sbin/init, which is the machined binary installed as /usr/bin/init [S-TAL].
    ("talos-machined", |n| {
        n.any("machined")
            || (n.pid1.exe.as_deref() == Some("/usr/bin/init")
                && n.pid1.cmdline.first().map(String::as_str) == Some("/sbin/init"))
    }),
    ("busybox", |n| n.exe == "busybox" || n.argv0 == "busybox"),
    ("openrc", |n| n.any("openrc-init")),
    ("tini", |n| n.any("tini") || n.any("docker-init")),
    ("dumb-init", |n| n.any("dumb-init")),
    ("sysvinit", |n| n.exe == "init" && n.comm == "init"),
    ("other", |_| true),
];

/// Names the init system from PID 1's identity ([`INITS`]); `None` when nothing of PID 1 is known.
pub fn classify(pid1: &Pid1) -> Option<&'static str> {
    if pid1.comm.is_none() && pid1.exe.is_none() && pid1.cmdline.is_empty() {
        return None;
    }
    let names = Names {
        exe: pid1.exe.as_deref().map(basename).unwrap_or(""),
        comm: pid1.comm.as_deref().unwrap_or(""),
        argv0: pid1.argv0().unwrap_or(""),
        pid1,
    };
    INITS
        .iter()
        .find(|(_, shows)| shows(&names))
        .map(|(name, _)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid1(comm: &str, exe: Option<&str>, cmd: &[&str]) -> Pid1 {
        Pid1 {
            comm: Some(comm.to_string()),
            exe: exe.map(str::to_string),
            exe_error: None,
            cmdline: cmd.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn classifies_known_inits() {
        let cases = [
            (
                pid1("systemd", Some("/usr/lib/systemd/systemd"), &["/sbin/init"]),
                "systemd",
            ),
            (pid1("systemd", None, &[]), "systemd"),
            (
                pid1(
                    "system-dockerd",
                    Some("/usr/bin/system-dockerd"),
                    &["system-dockerd"],
                ),
                "system-docker",
            ),
            (
                pid1("init", Some("/usr/bin/init"), &["/sbin/init"]),
                "talos-machined",
            ),
            (
                pid1("init", Some("/bin/busybox"), &["/sbin/init"]),
                "busybox",
            ),
            (
                pid1("init", Some("/sbin/init"), &["/sbin/init"]),
                "sysvinit",
            ),
            (
                pid1("tini", Some("/usr/bin/tini"), &["/tini", "--"]),
                "tini",
            ),
            (pid1("bash", Some("/usr/bin/bash"), &["bash"]), "other"),
        ];
        for (p, want) in cases {
            assert_eq!(classify(&p), Some(want), "{p:?}");
        }
        assert_eq!(classify(&Pid1::default()), None);
    }

    #[test]
    fn comm_with_crlf_is_still_systemd() {
        for text in ["systemd\r\n", "systemd\n", "systemd", "systemd\r"] {
            assert_eq!(comm_line(text), "systemd", "{text:?}");
        }
    }

    #[test]
    fn cmdline_is_nul_separated() {
        assert_eq!(
            parse_cmdline("/usr/lib/systemd/systemd\0--switched-root\0--system\0"),
            vec!["/usr/lib/systemd/systemd", "--switched-root", "--system"]
        );
        assert!(parse_cmdline("").is_empty());
    }
}
