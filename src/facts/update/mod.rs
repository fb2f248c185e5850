//! Update tooling: what keeps this host's OS current, on which channel, and whether it does so by itself.
//!
//! Image-based OSes each bring their own agent ([`AGENTS`]), strong evidence of the OS family. Each
//! is reported with its posture as its own files state it: `channel` (the stream or group it
//! follows), `automatic` (`None` when the files cannot tell, never a guess) and `strategy` (the
//! agent's own name for how it reboots). A documented default for a missing setting is reported; a
//! deciding file that is there but unreadable gives `None`. Sources are cited per agent below.

mod snapd;
mod zincati;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use crate::facts::os_release::read_env_file;
use crate::facts::ostree::{ini_value, Ostree};
use crate::facts::units::{self, UnitState};
use crate::root::{Failure, FileKind, Root};
use crate::warning::{Code, Warning};

pub use snapd::{parse_state as parse_snapd_state, SnapdPosture};
pub use zincati::{merge_fragments as merge_zincati_fragments, ZincatiPosture};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct UpdateAgent {
    pub agent: &'static str,
    /// The stream, group or channel the agent follows (Omaha `GROUP`, Fedora CoreOS stream, snap
    /// channel, Bottlerocket version lock, the ostree refspec or image tag).
    pub channel: Option<String>,
    /// Whether the agent updates the host by itself; null when the files cannot tell.
    pub automatic: Option<bool>,
    /// How the agent finalizes or reboots, in its own words (zincati `immediate`/`periodic`/
    /// `fleet_lock`, locksmithd `REBOOT_STRATEGY`, rpm-ostree `AutomaticUpdatePolicy`,
    /// transactional-update `REBOOT_METHOD`, snapd `refresh.timer`).
    pub strategy: Option<String>,
    /// The path that showed the agent is there.
    pub source: String,
}

/// Each agent and the paths that show it, in the order they are checked. The first path that exists
/// (as a file or directory) is the evidence. Rules may name only these (`update_agent = "…"`).
pub const AGENTS: &[(&str, &[&str])] = &[
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
    ("bootc", &["usr/bin/bootc"]),
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
    // The transfer directories, not the binary: systemd ships systemd-sysupdate on hosts that never
    // use it; only an image that defines transfers is updated by it (sysupdate.d(5)).
    (
        "sysupdate",
        &[
            "etc/sysupdate.d",
            "run/sysupdate.d",
            "usr/local/lib/sysupdate.d",
            "usr/lib/sysupdate.d",
        ],
    ),
    ("system-image", &["etc/system-image/channel.ini"]),
    ("ros", &["usr/bin/ros"]),
    (
        "kairos-agent",
        &["usr/bin/kairos-agent", "usr/local/bin/kairos-agent"],
    ),
];

/// update.conf, rpm-ostreed.conf, updog.toml and their kin are a handful of lines.
const CONF_CAP: usize = 16 * 1024;

pub fn probe(root: &Root, ostree: &Ostree) -> Vec<UpdateAgent> {
    let mut found = Vec::new();
    for (agent, paths) in AGENTS {
        let Some(source) = paths.iter().find(|p| is_evidence(root, p, agent)) else {
            continue;
        };
        let mut entry = UpdateAgent {
            agent,
            source: source.to_string(),
            ..UpdateAgent::default()
        };
        match *agent {
            "update_engine" => update_engine(root, &mut entry),
            "locksmithd" => locksmithd(root, &mut entry),
            "rpm-ostree" => rpm_ostree(root, ostree, &mut entry),
            "bootc" => {
                entry.channel = ostree.image.as_deref().and_then(image_tag);
                entry.automatic = timer(root, "bootc-fetch-apply-updates.timer");
            }
            "zincati" => {
                let posture = zincati::probe(root);
                entry.channel = stream_of(ostree);
                entry.automatic = posture.enabled;
                entry.strategy = posture.strategy;
                if units::state(root, "zincati.service", "multi-user.target") == UnitState::Masked {
                    entry.automatic = Some(false);
                }
            }
            "snapd" => {
                let posture = snapd::probe(root);
                entry.channel = posture.channel;
                entry.automatic = posture.automatic;
                entry.strategy = posture.strategy;
            }
            "transactional-update" => {
                entry.automatic = timer(root, "transactional-update.timer");
                entry.strategy = transactional_update_reboot_method(root);
            }
            "updog" => entry.channel = updog_version_lock(root),
            "sysupdate" => entry.automatic = timer(root, "systemd-sysupdate.timer"),
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

/// A timer-driven agent: on when its timer is enabled, off when masked, unknown otherwise (a
/// distribution may enable it by preset, which leaves a link only once the host has booted).
fn timer(root: &Root, unit: &str) -> Option<bool> {
    match units::state(root, unit, "timers.target") {
        UnitState::Enabled => Some(true),
        UnitState::Masked => Some(false),
        UnitState::Unknown => None,
    }
}

/// update_engine (Flatcar `update-conf` docs; flatcar/update_engine `omaha_request_params.cc`): the
/// channel is `GROUP=`; `SERVER=disabled` or a masked `update-engine.service` turns automatic updates
/// off, and they are on otherwise, as shipped. Without a CoreOS/Flatcar update.conf (COS, whose
/// choice lives in instance metadata) whether it updates is unknown.
fn update_engine(root: &Root, entry: &mut UpdateAgent) {
    let conf = update_conf(root);
    entry.channel = conf.as_ref().and_then(|c| c.get("GROUP"));
    entry.strategy = conf.as_ref().and_then(|c| c.get("REBOOT_STRATEGY"));
    entry.automatic = match &conf {
        _ if units::state(root, "update-engine.service", "multi-user.target")
            == UnitState::Masked =>
        {
            Some(false)
        }
        Some(c) if c.complete => Some(c.get("SERVER").as_deref() != Some("disabled")),
        _ => None,
    };
}

/// locksmithd (coreos/locksmith README): `REBOOT_STRATEGY` is `reboot`, `etcd-lock`, `best-effort`
/// or `off`; `off` (or a masked unit) means no automatic reboot.
fn locksmithd(root: &Root, entry: &mut UpdateAgent) {
    let conf = update_conf(root);
    entry.strategy = conf.as_ref().and_then(|c| c.get("REBOOT_STRATEGY"));
    entry.automatic =
        if units::state(root, "locksmithd.service", "multi-user.target") == UnitState::Masked {
            Some(false)
        } else {
            entry.strategy.as_deref().map(|s| s != "off")
        };
}

/// rpm-ostree (rpm-ostreed.conf(5)): `[Daemon] AutomaticUpdatePolicy=` is `none` (the default),
/// `check`, `stage` or `apply`, and acts only while `rpm-ostreed-automatic.timer` is enabled; its
/// channel is the booted deployment's refspec or image.
fn rpm_ostree(root: &Root, ostree: &Ostree, entry: &mut UpdateAgent) {
    entry.channel = ostree.refspec.clone().or_else(|| ostree.image.clone());
    let text = match root.read_text("etc/rpm-ostreed.conf", CONF_CAP) {
        Ok(t) => t.text,
        Err(_) => return,
    };
    let policy = ini_value(&text, "Daemon", "AutomaticUpdatePolicy").unwrap_or("none".into());
    entry.automatic = Some(match policy.as_str() {
        "none" | "check" => false,
        _ => {
            units::state(root, "rpm-ostreed-automatic.timer", "timers.target") == UnitState::Enabled
        }
    });
    entry.strategy = Some(policy);
}

/// transactional-update's `REBOOT_METHOD` (`auto`, `rebootmgr`, `notify`, `systemd`, `kured`, `none`):
/// the vendor file `usr/etc/transactional-update.conf`, overridden by `etc/transactional-update.conf`
/// (openSUSE/transactional-update `etc/transactional-update.conf`).
fn transactional_update_reboot_method(root: &Root) -> Option<String> {
    let mut method = None;
    for path in [
        "usr/etc/transactional-update.conf",
        "etc/transactional-update.conf",
    ] {
        match read_env_file(root, path, CONF_CAP) {
            Ok(file) => {
                if let Some(v) = file.fields.get("REBOOT_METHOD").filter(|v| !v.is_empty()) {
                    method = Some(v.clone());
                }
            }
            Err(Failure::Absent) => {}
            Err(_) => method = None,
        }
    }
    method
}

/// Bottlerocket's `etc/updog.toml` `version_lock` (rendered from `settings.updates.version-lock`,
/// `latest` by default: bottlerocket `sources/shared-defaults/defaults.toml`, `packages/os/updog-toml`).
fn updog_version_lock(root: &Root) -> Option<String> {
    let text = root.read_text("etc/updog.toml", CONF_CAP).ok()?;
    match text.text.parse::<toml::Table>() {
        Ok(table) => table
            .get("version_lock")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        Err(e) => {
            root.warn(Warning::at(
                Code::MalformedFile,
                "etc/updog.toml",
                format!("not valid TOML: {}", e.message()),
            ));
            None
        }
    }
}

/// The CoreOS/Flatcar update.conf chain: the vendor default under `usr/share/<os>/`, overridden key by
/// key by the admin's `etc/<os>/update.conf`. Flatcar is tried before CoreOS because a Flatcar host may
/// carry `etc/coreos -> flatcar` compatibility links. `None` when neither OS's files are there.
struct UpdateConf {
    fields: BTreeMap<String, String>,
    /// False when a file is there but unusable: its keys are unknown, so no value may pass for them.
    complete: bool,
}

impl UpdateConf {
    fn get(&self, key: &str) -> Option<String> {
        if !self.complete {
            return None;
        }
        self.fields.get(key).filter(|v| !v.is_empty()).cloned()
    }
}

fn update_conf(root: &Root) -> Option<UpdateConf> {
    for os in ["flatcar", "coreos"] {
        let mut conf = UpdateConf {
            fields: BTreeMap::new(),
            complete: true,
        };
        let mut seen = false;
        for path in [
            format!("usr/share/{os}/update.conf"),
            format!("etc/{os}/update.conf"),
        ] {
            match read_env_file(root, &path, CONF_CAP) {
                Ok(file) => {
                    seen = true;
                    conf.fields.extend(file.fields);
                }
                Err(Failure::Absent) => {}
                // There but unusable (unreadable, a FIFO, …; the read warned).
                Err(_) => {
                    seen = true;
                    conf.complete = false;
                }
            }
        }
        if seen {
            return Some(conf);
        }
    }
    None
}

/// Fedora CoreOS's stream: the last element of the refspec (`fedora:fedora/x86_64/coreos/stable`) or
/// the tag of the image (`…quay.io/fedora/fedora-coreos:stable`). Zincati reads it from the commit
/// metadata (`fedora-coreos.stream`), which is not a host file; these are its file-level proxies.
fn stream_of(ostree: &Ostree) -> Option<String> {
    if let Some(refspec) = &ostree.refspec {
        return refspec
            .rsplit(['/', ':'])
            .next()
            .filter(|s| !s.is_empty())
            .map(str::to_string);
    }
    ostree.image.as_deref().and_then(image_tag)
}

/// The tag of an image reference (`quay.io/centos-bootc/centos-bootc:stream9` → `stream9`); `None` for
/// a reference pinned by digest or without a tag. Pure.
pub fn image_tag(reference: &str) -> Option<String> {
    if reference.contains('@') {
        return None;
    }
    let last = reference.rsplit('/').next()?;
    let (_, tag) = last.rsplit_once(':')?;
    Some(tag.to_string()).filter(|t| !t.is_empty())
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

    #[test]
    fn ini_values() {
        let conf = "# comment\n[Daemon]\nAutomaticUpdatePolicy=stage\nIdleExitTimeout=60\n";
        assert_eq!(
            ini_value(conf, "Daemon", "AutomaticUpdatePolicy").as_deref(),
            Some("stage")
        );
        assert_eq!(ini_value(conf, "Other", "AutomaticUpdatePolicy"), None);
        assert_eq!(
            ini_value(
                "[Daemon]\n#AutomaticUpdatePolicy=apply\n",
                "Daemon",
                "AutomaticUpdatePolicy"
            ),
            None
        );
        assert_eq!(ini_value("", "Daemon", "AutomaticUpdatePolicy"), None);
        assert_eq!(
            ini_value(
                "[Daemon]\nAutomaticUpdatePolicy=\n",
                "Daemon",
                "AutomaticUpdatePolicy"
            ),
            None
        );
    }

    #[test]
    fn image_tags() {
        for (reference, tag) in [
            (
                "ostree-unverified-registry:quay.io/centos-bootc/centos-bootc:stream9",
                Some("stream9"),
            ),
            (
                "ostree-remote-registry:fedora:quay.io/fedora/fedora-coreos:stable",
                Some("stable"),
            ),
            ("ostree-unverified-registry:localhost:5000/os", None),
            ("ostree-unverified-registry:quay.io/x/y@sha256:abcd", None),
            ("docker://quay.io/x/y:", None),
        ] {
            assert_eq!(image_tag(reference).as_deref(), tag, "{reference}");
        }
    }

    #[test]
    fn streams() {
        let classic = Ostree {
            refspec: Some("fedora:fedora/x86_64/coreos/testing".into()),
            ..Ostree::default()
        };
        assert_eq!(stream_of(&classic).as_deref(), Some("testing"));
        let oci = Ostree {
            image: Some("ostree-remote-registry:fedora:quay.io/fedora/fedora-coreos:next".into()),
            ..Ostree::default()
        };
        assert_eq!(stream_of(&oci).as_deref(), Some("next"));
        assert_eq!(stream_of(&Ostree::default()), None);
    }
}
