//! Update tooling: what keeps this host's OS current, and on which channel.
//!
//! Image-based OSes each bring their own agent, and the agent is strong evidence of the OS family:
//! update_engine (CoreOS, Flatcar; the channel is the `GROUP=` of `update.conf`, where
//! `/etc/<os>/update.conf` overrides `/usr/share/<os>/update.conf`), rpm-ostree (the ostree family;
//! whether the host is *booted* from ostree is `filesystem.ostree_booted`, which separates Fedora Server
//! with rpm-ostree installed from an Atomic host), zincati (Fedora CoreOS), snapd (Ubuntu Core, but
//! also every Ubuntu Server), transactional-update (MicroOS, SLE Micro), updog (Bottlerocket),
//! system-image (Snappy 15.04), `ros` (RancherOS), kairos-agent (Kairos). Probes only stat; nothing is
//! executed.

use schemars::JsonSchema;
use serde::Serialize;

use crate::facts::os_release::read_env_file;
use crate::root::{Failure, FileKind, Root};
use crate::warning::{Code, Warning};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct UpdateAgent {
    pub agent: &'static str,
    pub channel: Option<String>,
    /// The reboot strategy where the agent's config names one (locksmithd `REBOOT_STRATEGY=`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// The path that showed the agent is there.
    pub source: String,
}

/// Each agent and the paths that show it, in the order they are checked. The first path that exists
/// (as a file or directory) is the evidence.
const AGENTS: &[(&str, &[&str])] = &[
    (
        "update_engine",
        &[
            "usr/sbin/update_engine",
            "usr/bin/update_engine",
            "usr/share/flatcar/update.conf",
            "etc/flatcar/update.conf",
            "usr/share/coreos/update.conf",
            "etc/coreos/update.conf",
        ],
    ),
    (
        "locksmithd",
        &["usr/lib/locksmith/locksmithd", "usr/bin/locksmithctl"],
    ),
    ("rpm-ostree", &["usr/bin/rpm-ostree"]),
    ("zincati", &["usr/libexec/zincati"]),
    ("snapd", &["usr/lib/snapd/snapd", "usr/libexec/snapd/snapd"]),
    (
        "transactional-update",
        &[
            "usr/sbin/transactional-update",
            "usr/bin/transactional-update",
        ],
    ),
    ("updog", &["usr/bin/updog", "etc/updog.toml"]),
    ("system-image", &["etc/system-image/channel.ini"]),
    ("ros", &["usr/bin/ros"]),
    (
        "kairos-agent",
        &["usr/bin/kairos-agent", "usr/local/bin/kairos-agent"],
    ),
];

/// update.conf is a handful of lines.
const CONF_CAP: usize = 16 * 1024;

pub fn probe(root: &Root) -> Vec<UpdateAgent> {
    let mut found = Vec::new();
    for (agent, paths) in AGENTS {
        let Some(source) = paths.iter().find(|p| is_evidence(root, p, agent)) else {
            continue;
        };
        let mut entry = UpdateAgent {
            agent,
            channel: None,
            strategy: None,
            source: source.to_string(),
        };
        match *agent {
            "update_engine" => entry.channel = update_conf_value(root, "GROUP"),
            "locksmithd" => entry.strategy = update_conf_value(root, "REBOOT_STRATEGY"),
            "system-image" => entry.channel = system_image_channel(root),
            _ => {}
        }
        found.push(entry);
    }
    found
}

/// Whether `path` shows the agent: a file or directory. Anything else that is there (a FIFO where a
/// config file belongs) is bad input, warned about rather than silently taken as absent.
fn is_evidence(root: &Root, path: &str, agent: &str) -> bool {
    match root.stat(path) {
        Ok(FileKind::File | FileKind::Dir) => true,
        Ok(other) => {
            root.warn(Warning::at(
                Code::WrongKind,
                path,
                format!(
                    "is a {}, not a file or directory; not taken as evidence of {agent}",
                    other.as_str()
                ),
            ));
            false
        }
        Err(_) => false,
    }
}

/// A key from the CoreOS/Flatcar update.conf chain: the vendor default under `usr/share/<os>/`,
/// overridden by the admin's `etc/<os>/update.conf`. Flatcar is tried before CoreOS because a Flatcar
/// host may carry `etc/coreos -> flatcar` compatibility links.
fn update_conf_value(root: &Root, key: &str) -> Option<String> {
    for os in ["flatcar", "coreos"] {
        let mut value = None;
        let mut seen = false;
        for path in [
            format!("usr/share/{os}/update.conf"),
            format!("etc/{os}/update.conf"),
        ] {
            match read_env_file(root, &path, CONF_CAP) {
                Ok(file) => {
                    seen = true;
                    if let Some(v) = file.fields.get(key).filter(|v| !v.is_empty()) {
                        value = Some(v.clone());
                    }
                }
                Err(Failure::Absent) => {}
                // There but unusable (unreadable, a FIFO, …; the read warned): what it says is
                // unknown, so an earlier file's value must not pass for it. Only absence falls back.
                Err(_) => {
                    seen = true;
                    value = None;
                }
            }
        }
        if seen {
            return value;
        }
    }
    None
}

/// Snappy 15.04's `channel.ini` has `channel: ubuntu-core/15.04/stable` in an INI section.
fn system_image_channel(root: &Root) -> Option<String> {
    let text = root
        .read_text("etc/system-image/channel.ini", CONF_CAP)
        .ok()?;
    parse_channel_ini(&text.text)
}

pub fn parse_channel_ini(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k.trim() == "channel").then(|| v.trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_ini() {
        assert_eq!(
            parse_channel_ini(
                "[service]\nbase: system-image.ubuntu.com\nchannel: ubuntu-core/15.04/edge\n"
            )
            .as_deref(),
            Some("ubuntu-core/15.04/edge")
        );
        assert_eq!(parse_channel_ini("[service]\n"), None);
    }
}
