//! The booted OSTree deployment: what it was deployed from, and whether bootc installed it.
//!
//! Each deployment has an `.origin` key file (ostree `docs/deployment.md`) whose `[origin]` group has
//! `refspec=remote:ref` or `container-image-reference=<transport>:<image>` (bootc
//! `crates/ostree-ext/src/container/deploy.rs`). The booted one is the target of the kernel's
//! `ostree=` parameter, as the initramfs finds it; without it only a single origin is unambiguous.
//! bootc marks its installs with `sysroot/.bootc-aleph.json` (bootc `crates/lib/src/install/aleph.rs`)
//! or `etc/rhsm/facts/bootc.facts`; an image reference alone is not bootc (Fedora CoreOS).

use crate::facts::kernel::Kernel;
use crate::root::{normalize, Root};

/// Origin files are a few lines.
const ORIGIN_CAP: usize = 64 * 1024;
/// Deployments per stateroot and stateroots per host are a handful; the bound keeps a hostile tree
/// from costing a long listing.
const LIST_MAX: usize = 64;

/// What the booted deployment's origin says.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Ostree {
    /// The origin file read, relative to the root.
    pub origin: Option<String>,
    /// `[origin] refspec=` (or `baserefspec=`, rpm-ostree's when packages are layered).
    pub refspec: Option<String>,
    /// `[origin] container-image-reference=`, verbatim with its transport.
    pub image: Option<String>,
    /// bootc installed this host (`sysroot/.bootc-aleph.json` or `etc/rhsm/facts/bootc.facts`), or
    /// it boots through bootc's composefs backend (`composefs=` on the kernel command line).
    pub bootc: Option<String>,
}

/// The `[origin]` keys of an origin file (`refspec`, else `baserefspec`; the image). Pure.
pub fn parse_origin(text: &str) -> (Option<String>, Option<String>) {
    let get = |key| ini_value(text, "origin", key);
    let refspec = get("refspec").or_else(|| get("baserefspec"));
    (refspec, get("container-image-reference"))
}

/// A key of a GLib/systemd-style INI file (`[Group]` then `Key=value`). Pure.
pub fn ini_value(text: &str, group: &str, key: &str) -> Option<String> {
    let mut current = "";
    let mut value = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.trim();
        } else if current == group {
            if let Some((k, v)) = line.split_once('=') {
                if k.trim() == key {
                    value = Some(v.trim().to_string()).filter(|v| !v.is_empty());
                }
            }
        }
    }
    value
}

/// The path (relative to the root) of the deployment directory that `ostree=` points at, from the
/// boot link's own path and its target text. Pure.
pub fn deployment_of(boot_link: &str, target: &str) -> String {
    let joined = if target.starts_with('/') {
        target.to_string()
    } else {
        let parent = boot_link.rsplit_once('/').map_or("", |(p, _)| p);
        format!("{parent}/{target}")
    };
    // `..` is resolved textually, as the kernel resolves the link from its own directory.
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

pub fn probe(root: &Root, kernel: &Kernel, ostree_booted: bool) -> Ostree {
    let mut out = Ostree::default();
    if kernel.param("composefs").is_some_and(|v| !v.is_empty()) {
        out.bootc = Some("kernel command line composefs=".to_string());
    }
    if !ostree_booted {
        return out;
    }
    // bootc's own installs on the ostree backend (a composefs boot said so above).
    for marker in ["sysroot/.bootc-aleph.json", "etc/rhsm/facts/bootc.facts"] {
        if out.bootc.is_none() && root.stat(marker).is_ok() {
            out.bootc = Some(marker.to_string());
        }
    }
    let Some(origin) = booted_origin(root, kernel) else {
        return out;
    };
    // An unreadable origin has been warned about by the read; absent or not, it says nothing.
    if let Ok(text) = root.read_text(&origin, ORIGIN_CAP) {
        (out.refspec, out.image) = parse_origin(&text.text);
        out.origin = Some(origin);
    }
    out
}

/// The origin file of the booted deployment, or of the only deployment there is.
fn booted_origin(root: &Root, kernel: &Kernel) -> Option<String> {
    if let Some(boot) = kernel.param("ostree").filter(|v| !v.is_empty()) {
        let link = normalize(boot.trim_start_matches('/')).into_owned();
        if let Ok(target) = root.readlink(&link) {
            return Some(format!("{}.origin", deployment_of(&link, &target)));
        }
    }
    let mut found = Vec::new();
    for stateroot in root.list("ostree/deploy", LIST_MAX).ok()? {
        let dir = format!("ostree/deploy/{stateroot}/deploy");
        let Ok(names) = root.list(&dir, LIST_MAX) else {
            continue;
        };
        found.extend(
            names
                .iter()
                .filter(|n| n.ends_with(".origin"))
                .map(|n| format!("{dir}/{n}")),
        );
    }
    match found.len() {
        1 => found.pop(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_keys() {
        let classic = "[origin]\nrefspec=fedora:fedora/x86_64/coreos/stable\n";
        assert_eq!(
            parse_origin(classic),
            (Some("fedora:fedora/x86_64/coreos/stable".into()), None)
        );
        let image = "[origin]\ncontainer-image-reference=ostree-unverified-registry:quay.io/centos-bootc/centos-bootc:stream9\n";
        assert_eq!(
            parse_origin(image),
            (
                None,
                Some("ostree-unverified-registry:quay.io/centos-bootc/centos-bootc:stream9".into())
            )
        );
        let layered = "[origin]\nbaserefspec=fedora:fedora/34/x86_64/silverblue\n\n[packages]\nrequested=vim;\n";
        assert_eq!(
            parse_origin(layered).0.as_deref(),
            Some("fedora:fedora/34/x86_64/silverblue")
        );
        // Keys outside [origin] do not count; an empty file says nothing.
        assert_eq!(parse_origin("[other]\nrefspec=x\n"), (None, None));
        assert_eq!(parse_origin(""), (None, None));
    }

    #[test]
    fn boot_link_resolution() {
        assert_eq!(
            deployment_of(
                "ostree/boot.1/fedora-coreos/abc/0",
                "../../../deploy/fedora-coreos/deploy/123.0"
            ),
            "ostree/deploy/fedora-coreos/deploy/123.0"
        );
        assert_eq!(
            deployment_of(
                "ostree/boot.0/default/abc/0",
                "/ostree/deploy/default/deploy/9.1"
            ),
            "ostree/deploy/default/deploy/9.1"
        );
        // `..` cannot climb above the root.
        assert_eq!(deployment_of("a/b", "../../../../x"), "x");
    }
}
