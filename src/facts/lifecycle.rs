//! Where the host stands in its OS's life: a pending reboot and the image it runs.
//!
//! **Reboot.** Each OS family leaves its own mark when an installed update waits for a reboot
//! (sources in [`reboot`]). A mark is looked for only where the host runs what writes it
//! (`run/reboot-required` everywhere: kured's sentinel may come from anything), and only there does
//! its absence answer `false`; for an OS with no known mark (Talos, RHEL-like hosts) it stays `None`.
//!
//! **Image.** `ostree` for an OSTree-booted host, `bootc` where bootc installed it, `sysupdate` for an
//! image with `IMAGE_ID`/`IMAGE_VERSION` and sysupdate transfers, `a-b` for the partition-swapping
//! updaters (update_engine, updog, Kairos' active/passive).

use std::cmp::Ordering;

use schemars::JsonSchema;
use serde::Serialize;

use crate::facts::kernel::Kernel;
use crate::facts::os_release::OsRelease;
use crate::facts::ostree::Ostree;
use crate::facts::update::UpdateAgent;
use crate::root::{FileKind, Root};

/// Whether a reboot is pending, and the file that says so.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Reboot {
    pub required: Option<bool>,
    pub reason: Option<String>,
}

/// The OS image the host runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Image {
    /// `ostree`, `bootc`, `a-b`, `sysupdate`, or null.
    #[schemars(extend("enum" = ["ostree", "bootc", "a-b", "sysupdate", null]))]
    pub kind: Option<&'static str>,
    /// What the image is deployed from: the ostree refspec or container image reference (verbatim,
    /// with its transport), or the sysupdate `IMAGE_ID`.
    pub reference: Option<String>,
    /// The image's version: `OSTREE_VERSION`, `IMAGE_VERSION`, or for an A/B system the OS version.
    pub version: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Lifecycle {
    pub reboot: Reboot,
    pub image: Image,
}

/// Where an EFI system partition (or XBOOTLDR) holds unified kernel images (systemd's
/// Boot Loader Specification: `/efi`, `/boot`, `/boot/efi`).
const UKI_DIRS: [&str; 3] = ["efi/EFI/Linux", "boot/EFI/Linux", "boot/efi/EFI/Linux"];
const LIST_MAX: usize = 256;
const STATUS_CAP: usize = 64 * 1024;

pub fn probe(
    root: &Root,
    os: &OsRelease,
    kernel: &Kernel,
    ostree: &Ostree,
    ostree_booted: bool,
    updates: &[UpdateAgent],
) -> Lifecycle {
    let has = |agent: &str| updates.iter().any(|u| u.agent == agent);
    let sysupdate = sysupdate_image(os).filter(|_| has("sysupdate"));
    let image = if ostree.bootc.is_some() && (ostree_booted || kernel.param("composefs").is_some())
    {
        Image {
            kind: Some("bootc"),
            reference: ostree.image.clone().or_else(|| ostree.refspec.clone()),
            version: os
                .get("OSTREE_VERSION")
                .or(os.get("IMAGE_VERSION"))
                .map(str::to_string),
        }
    } else if ostree_booted {
        Image {
            kind: Some("ostree"),
            reference: ostree.refspec.clone().or_else(|| ostree.image.clone()),
            version: os.get("OSTREE_VERSION").map(str::to_string),
        }
    } else if let Some((id, version)) = sysupdate.clone() {
        Image {
            kind: Some("sysupdate"),
            reference: Some(id),
            version: Some(version),
        }
    } else if has("update_engine")
        || has("updog")
        || [
            "run/cos/active_mode",
            "run/cos/passive_mode",
            "run/elemental/active_mode",
        ]
        .iter()
        .any(|p| root.stat(p).is_ok())
    {
        // The image is the whole OS: its version is the system's own (`identity.version`), which
        // the profile fills in from the rule.
        Image {
            kind: Some("a-b"),
            ..Image::default()
        }
    } else {
        Image::default()
    };
    let reboot = reboot(
        root,
        os,
        kernel,
        ostree_booted,
        &image,
        sysupdate.as_ref(),
        &has,
    );
    Lifecycle { reboot, image }
}

/// The reboot marks, first found wins: `run/reboot-required` (Debian/Ubuntu update-notifier, kured,
/// transactional-update with `REBOOT_METHOD=kured`), `run/ostree/staged-deployment` (ostree
/// `ostree-sysroot-private.h`), `run/composefs/staged-deployment` (bootc `composefs_consts.rs`),
/// `run/reboot-needed` (transactional-update `NEEDS_RESTARTING_FILE`),
/// `run/update_engine_autoupdate_completed` (update_engine `update_attempter.cc`), Bottlerocket's
/// `update_state` `Ready` (thar-be-updates `status.rs`), and a systemd-sysupdate UKI newer than
/// `IMAGE_VERSION`. A signal is `None` where it does not apply, else the mark's path if present.
fn reboot(
    root: &Root,
    os: &OsRelease,
    kernel: &Kernel,
    ostree_booted: bool,
    image: &Image,
    sysupdate: Option<&(String, String)>,
    has: &dyn Fn(&str) -> bool,
) -> Reboot {
    let family = |id: &str| os.get("ID") == Some(id) || os.id_like().iter().any(|l| l == id);
    let omaha = || {
        [
            "usr/share/flatcar/update.conf",
            "usr/share/coreos/update.conf",
        ]
        .iter()
        .any(|p| root.stat(p).is_ok())
    };
    let marks = [
        (
            "run/reboot-required",
            // Package-managed Debian/Ubuntu hosts only: an image-based derivative (Kairos) never runs
            // the package hooks that write it.
            (image.kind.is_none() && (family("debian") || family("ubuntu")))
                || has("transactional-update"),
        ),
        ("run/ostree/staged-deployment", ostree_booted),
        (
            "run/composefs/staged-deployment",
            kernel.param("composefs").is_some(),
        ),
        ("run/reboot-needed", has("transactional-update")),
        (
            "run/update_engine_autoupdate_completed",
            has("update_engine") && omaha(),
        ),
    ];
    // Marks are looked for only where something writes them, but for kured's sentinel: whatever
    // wrote it (kured's own reboot scripts, transactional-update in kured mode), it asks for a reboot.
    let mut signals: Vec<Option<Option<String>>> = marks
        .iter()
        .filter(|&&(path, known)| known || path == "run/reboot-required")
        .map(|&(path, known)| {
            let there = matches!(root.stat(path), Ok(FileKind::File)).then(|| path.to_string());
            (known || there.is_some()).then_some(there)
        })
        .collect();
    if has("updog") {
        signals.push(
            bottlerocket_ready(root).map(|ready| ready.then(|| BOTTLEROCKET_STATUS.to_string())),
        );
    }
    signals.push(sysupdate.and_then(|(id, version)| newer_uki(root, id, version)));
    match signals.iter().flatten().find_map(Clone::clone) {
        Some(path) => Reboot {
            required: Some(true),
            reason: Some(path),
        },
        None => Reboot {
            required: signals.iter().any(Option::is_some).then_some(false),
            reason: None,
        },
    }
}

const BOTTLEROCKET_STATUS: &str = "run/cache/thar-be-updates/status.json";

/// Bottlerocket's update status: `Some(true)` when an update is staged for the next boot.
fn bottlerocket_ready(root: &Root) -> Option<bool> {
    let text = root.read_text(BOTTLEROCKET_STATUS, STATUS_CAP).ok()?;
    parse_bottlerocket_status(&text.text)
}

/// `update_state` of thar-be-updates' status file is `Idle`, `Available`, `Staged` or `Ready`; `Ready`
/// means the staged image will boot next. Pure.
pub fn parse_bottlerocket_status(text: &str) -> Option<bool> {
    let status: serde_json::Value = serde_json::from_str(text).ok()?;
    let state = status.get("update_state")?.as_str()?;
    Some(state == "Ready")
}

/// `IMAGE_ID` and `IMAGE_VERSION` of a sysupdate image (os-release(5)).
fn sysupdate_image(os: &OsRelease) -> Option<(String, String)> {
    let id = os.get("IMAGE_ID").filter(|v| !v.is_empty())?;
    let version = os.get("IMAGE_VERSION").filter(|v| !v.is_empty())?;
    Some((id.to_string(), version.to_string()))
}

/// Looks for a UKI of image `id` newer than `booted` in the ESP directories: `None` when none of
/// them could be listed, else the newer image's path if there is one.
fn newer_uki(root: &Root, id: &str, booted: &str) -> Option<Option<String>> {
    let mut listed = false;
    for dir in UKI_DIRS {
        let Ok(names) = root.list(dir, LIST_MAX) else {
            continue;
        };
        listed = true;
        let newest = names
            .iter()
            .filter_map(|n| uki_version(n, id).map(|v| (v, n)))
            .max_by(|a, b| version_cmp(a.0, b.0));
        if let Some((version, name)) = newest {
            if version_cmp(version, booted) == Ordering::Greater {
                return Some(Some(format!("{dir}/{name}")));
            }
        }
    }
    listed.then_some(None)
}

/// The version in a UKI file name `<id>_<version>[+<tries>][_<arch>].efi` (the ParticleOS
/// `MatchPattern=` forms `@v+@l-@d.efi`, `@v+@l.efi`, `@v.efi`). Pure.
pub fn uki_version<'n>(name: &'n str, id: &str) -> Option<&'n str> {
    let rest = name
        .strip_prefix(id)?
        .strip_prefix('_')?
        .strip_suffix(".efi")?;
    let end = rest.find(['+', '_']).unwrap_or(rest.len());
    Some(&rest[..end]).filter(|v| !v.is_empty())
}

/// Version order as systemd's `strverscmp_improved` gives it for the versions images carry: runs of
/// digits compare by value, runs of letters by bytes, `~` sorts before anything (a pre-release), and
/// a version that goes on is newer than its prefix. Pure.
pub fn version_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    let run = |s: &[u8], f: fn(&u8) -> bool| s.iter().take_while(|c| f(c)).count();
    // Separators other than `~` carry no order of their own.
    let separator: fn(&u8) -> bool = |c| !c.is_ascii_alphanumeric() && *c != b'~';
    loop {
        a = &a[run(a, separator)..];
        b = &b[run(b, separator)..];
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (Some(b'~'), Some(b'~')) => {
                a = &a[1..];
                b = &b[1..];
                continue;
            }
            (Some(b'~'), _) => return Ordering::Less,
            (_, Some(b'~')) => return Ordering::Greater,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            _ => {}
        }
        let (da, db) = (run(a, u8::is_ascii_digit), run(b, u8::is_ascii_digit));
        let (n, m, order) = if da > 0 && db > 0 {
            let (na, nb) = (trim_zeros(&a[..da]), trim_zeros(&b[..db]));
            (da, db, na.len().cmp(&nb.len()).then(na.cmp(nb)))
        } else if da > 0 || db > 0 {
            // A number sorts after letters.
            return da.cmp(&db);
        } else {
            let (la, lb) = (
                run(a, u8::is_ascii_alphabetic),
                run(b, u8::is_ascii_alphabetic),
            );
            (la, lb, a[..la].cmp(&b[..lb]))
        };
        if order != Ordering::Equal {
            return order;
        }
        a = &a[n..];
        b = &b[m..];
    }
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let n = digits.iter().take_while(|c| **c == b'0').count();
    &digits[n..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order() {
        use Ordering::*;
        for (a, b, o) in [
            ("1.2", "1.10", Less),
            ("257.1", "257.1", Equal),
            ("20250101", "20241231", Greater),
            ("1.0~rc1", "1.0", Less),
            ("1.0", "1.0.1", Less),
            ("1.0a", "1.0b", Less),
            ("1.0.0", "1.00.0", Equal),
            ("2", "1a", Greater),
        ] {
            assert_eq!(version_cmp(a, b), o, "{a} vs {b}");
            assert_eq!(version_cmp(b, a), o.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn uki_names() {
        assert_eq!(
            uki_version("ParticleOS_202501.2.efi", "ParticleOS"),
            Some("202501.2")
        );
        assert_eq!(uki_version("ParticleOS_7+3-0.efi", "ParticleOS"), Some("7"));
        assert_eq!(
            uki_version("ParticleOS_7_x86-64.efi", "ParticleOS"),
            Some("7")
        );
        assert_eq!(uki_version("Other_7.efi", "ParticleOS"), None);
        assert_eq!(uki_version("ParticleOS_.efi", "ParticleOS"), None);
        assert_eq!(uki_version("ParticleOS_7.conf", "ParticleOS"), None);
    }

    #[test]
    fn bottlerocket_status() {
        assert_eq!(
            parse_bottlerocket_status(r#"{"update_state":"Ready"}"#),
            Some(true)
        );
        assert_eq!(
            parse_bottlerocket_status(r#"{"update_state":"Staged"}"#),
            Some(false)
        );
        assert_eq!(parse_bottlerocket_status(r#"{"update_state":1}"#), None);
        assert_eq!(parse_bottlerocket_status(""), None);
    }
}
