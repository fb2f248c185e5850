//! Container or VM, in systemd-detect-virt's vocabulary.
//!
//! Marker files (`/.dockerenv`, `/run/.containerenv`) end up in images later booted as VMs, so the
//! kernel decides first: a PID 1 in the initial PID and cgroup namespaces (fixed inode numbers,
//! include/linux/proc_ns.h) is no container, and a marker found anyway is a warning. PID 1's links
//! are read first (they describe the root), then our own. Without namespace evidence the markers
//! decide in systemd's order (virt.c: `/.dockerenv` last). Virtualization: the CPUID hypervisor leaf
//! on the live host, then DMI strings, `sys/hypervisor/type`, and the `hypervisor` CPU flag.

use schemars::JsonSchema;
use serde::Serialize;

use crate::root::{Failure, Root};
use crate::warning::{Code, Warning};

pub const PID_INIT_INO: u64 = 4026531836;
pub const CGROUP_INIT_INO: u64 = 4026531835;
/// PROC_UTS_INIT_INO 0xEFFFFFFE (include/linux/proc_ns.h), the initial UTS namespace's inode.
pub const UTS_INIT_INO: u64 = 4026531838;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Environment {
    /// null when the root holds no evidence either way (no namespace links, no marker): unknown
    /// is not "none".
    pub container: Option<String>,
    /// null when the root holds no evidence either way (a recorded tree without `proc/cpuinfo`,
    /// DMI or `sys/hypervisor`): unknown is not "none".
    pub virtualization: Option<String>,
    /// `v1`, `v2` or `hybrid` (from the mount table).
    pub cgroup: Option<&'static str>,
    /// What decided `container` and `virtualization`, for --explain.
    #[serde(skip)]
    pub evidence: Vec<String>,
}

/// Namespace evidence: `Some((true, what))` initial, `Some((false, what))` not, `None` unknown.
/// `what` says which links decided and which of their namespaces are the initial ones, for the
/// stale-marker warning: "PID 1 is in the initial PID and cgroup namespaces", or proc/self's when
/// PID 1's links could not be read.
fn namespace_is_initial(root: &Root, evidence: &mut Vec<String>) -> Option<(bool, String)> {
    for pid in ["1", "self"] {
        let Some(pid_ino) = ns_link(root, pid, "pid") else {
            continue;
        };
        let cgroup_ino = ns_link(root, pid, "cgroup");
        evidence.push(format!(
            "proc/{pid}/ns/pid is pid:[{pid_ino}]{}",
            cgroup_ino
                .map(|c| format!(", proc/{pid}/ns/cgroup is cgroup:[{c}]"))
                .unwrap_or_default()
        ));
        // Kernels before 4.6 have no cgroup namespace: the PID namespace alone decides there. So it
        // does for our own links read through a mounted live host (a pod with hostPID): our PID
        // namespace is then the host's, but our cgroup namespace is the pod's, not the host's.
        let own_cgroup = pid == "self" && root.same_kernel() && !root.is_live();
        let initial = pid_ino == PID_INIT_INO
            && (own_cgroup || cgroup_ino.is_none_or(|c| c == CGROUP_INIT_INO));
        // The words name the namespaces the links show initial, so a recording replayed on its own
        // machine (where our cgroup link is not consulted) says what the live root says.
        let who = match pid {
            "1" => "PID 1",
            _ if root.same_kernel() => {
                "PID 1's namespace links could not be read and proc/self (hostprint's own process)"
            }
            _ => "PID 1's namespace links could not be read and proc/self",
        };
        let namespaces = match cgroup_ino {
            Some(CGROUP_INIT_INO) => "PID and cgroup namespaces",
            _ => "PID namespace",
        };
        return Some((initial, format!("{who} is in the initial {namespaces}")));
    }
    None
}

/// The inode of `proc/<pid>/ns/<kind>`. Absent, or not ours to read (EACCES on PID 1's links without
/// ptrace rights, a fact about privileges; `self` is tried next), is quiet. Anything else there — a
/// file, a FIFO, a link whose text is not `kind:[N]` — is bad input, warned about, and not evidence.
pub fn ns_link(root: &Root, pid: &str, kind: &str) -> Option<u64> {
    let path = format!("proc/{pid}/ns/{kind}");
    match root.readlink(&path) {
        Ok(text) => {
            let inode = ns_inode(&text, kind);
            if inode.is_none() {
                let shown = crate::facts::os_release::quote(&text);
                root.warn(Warning::at(
                    Code::NotANamespaceLink,
                    &path,
                    format!("not a namespace link: points at {shown:?}"),
                ));
            }
            inode
        }
        Err(Failure::WrongKind(k)) => {
            root.warn(Warning::at(
                Code::NotANamespaceLink,
                &path,
                format!("is a {}, not a namespace link", k.as_str()),
            ));
            None
        }
        Err(_) => None,
    }
}

/// `pid:[4026531836]` → 4026531836.
pub fn ns_inode(link: &str, kind: &str) -> Option<u64> {
    link.strip_prefix(kind)?
        .strip_prefix(":[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// A container marker, in systemd's order: what it names, the path it is at, and what it says.
fn container_marker(root: &Root) -> Option<(String, &'static str, String)> {
    if root.stat("proc/vz").is_ok() && root.stat("proc/bc").is_err() {
        return Some(("openvz".into(), "proc/vz", "proc/vz without proc/bc".into()));
    }
    const OSRELEASE: &str = "proc/sys/kernel/osrelease";
    if let Ok(t) = root.read_text(OSRELEASE, 4096) {
        if t.text.contains("Microsoft") || t.text.contains("WSL") {
            return Some(("wsl".into(), OSRELEASE, "kernel release names WSL".into()));
        }
    }
    for path in ["run/host/container-manager", "run/systemd/container"] {
        if let Ok(t) = root.read_text(path, 256) {
            let name = t.text.trim();
            if !name.is_empty() {
                return Some((container_id(name), path, format!("{path} says {name:?}")));
            }
        }
    }
    for (path, name) in [("run/.containerenv", "podman"), (".dockerenv", "docker")] {
        if root.stat(path).is_ok() {
            return Some((name.into(), path, format!("{path} exists")));
        }
    }
    None
}

/// systemd's ids for the names container managers write.
fn container_id(name: &str) -> String {
    match name {
        "lxc-libvirt" | "lxc" | "systemd-nspawn" | "docker" | "podman" | "rkt" | "wsl"
        | "proot" | "pouch" | "openvz" => name.into(),
        _ => "container-other".into(),
    }
}

pub fn probe(root: &Root, cpuinfo: Option<&str>, cgroup: Option<&'static str>) -> Environment {
    let mut evidence = Vec::new();
    let initial = namespace_is_initial(root, &mut evidence);
    let marker = container_marker(root);
    // No namespace evidence and no marker is no evidence: unknown, never a confident "none".
    let container = match (initial, marker) {
        (Some((true, decided)), Some((name, path, why))) => {
            root.warn(Warning::at(
                Code::StaleContainerMarker,
                path,
                format!(
                    "container marker ignored: {why} (suggests {name}), but {decided}, so this is \
                     not a container; the marker is stale (copied into the image?)"
                ),
            ));
            evidence.push(format!("ignored stale marker: {why}"));
            Some("none".to_string())
        }
        (Some((true, _)), None) => Some("none".to_string()),
        (_, Some((name, _, why))) => {
            evidence.push(why);
            Some(name)
        }
        (Some((false, _)), None) => Some("container-other".to_string()),
        (None, None) => None,
    };
    let (virtualization, why) = virtualization(root, cpuinfo);
    evidence.push(why);
    Environment {
        container,
        virtualization,
        cgroup,
        evidence,
    }
}

fn virtualization(root: &Root, cpuinfo: Option<&str>) -> (Option<String>, String) {
    if root.same_kernel() {
        if let Some((id, vendor)) = cpuid_hypervisor() {
            return (Some(id), format!("CPUID hypervisor leaf: {vendor:?}"));
        }
    }
    for path in [
        "sys/class/dmi/id/product_name",
        "sys/class/dmi/id/sys_vendor",
        "sys/class/dmi/id/board_vendor",
        "sys/class/dmi/id/bios_vendor",
    ] {
        if let Ok(t) = root.read_text(path, 256) {
            if let Some(id) = dmi_vendor(t.text.trim()) {
                return (Some(id.into()), format!("{path} is {:?}", t.text.trim()));
            }
        }
    }
    if let Ok(t) = root.read_text("sys/hypervisor/type", 64) {
        if t.text.trim() == "xen" {
            return (Some("xen".into()), "sys/hypervisor/type is xen".into());
        }
    }
    if let Some(text) = cpuinfo {
        if has_hypervisor_flag(text) {
            return (
                Some("vm-other".into()),
                "proc/cpuinfo has the hypervisor flag".into(),
            );
        }
        return (
            Some("none".into()),
            "no hypervisor evidence in proc/cpuinfo".into(),
        );
    }
    (
        None,
        "virtualization unknown: no proc/cpuinfo, DMI or sys/hypervisor in the root".into(),
    )
}

/// systemd virt.c's DMI table, the vendors that matter for container hosts.
pub fn dmi_vendor(s: &str) -> Option<&'static str> {
    const TABLE: &[(&str, &str)] = &[
        ("KVM", "kvm"),
        ("OpenStack", "kvm"),
        ("KubeVirt", "kvm"),
        ("Amazon EC2", "amazon"),
        ("QEMU", "qemu"),
        ("VMware", "vmware"),
        ("VMW", "vmware"),
        ("innotek GmbH", "oracle"),
        ("VirtualBox", "oracle"),
        ("Oracle Corporation", "oracle"),
        ("Xen", "xen"),
        ("Bochs", "bochs"),
        ("Parallels", "parallels"),
        ("BHYVE", "bhyve"),
        ("Hyper-V", "microsoft"),
        ("Apple Virtualization", "apple"),
        ("Google Compute Engine", "google"),
    ];
    TABLE
        .iter()
        .find(|(prefix, _)| s.starts_with(prefix))
        .map(|(_, id)| *id)
}

fn has_hypervisor_flag(cpuinfo: &str) -> bool {
    cpuinfo.lines().any(|l| {
        (l.starts_with("flags") || l.starts_with("Features"))
            && l.split_whitespace().any(|w| w == "hypervisor")
    })
}

/// CPUID leaf 0x40000000 names the hypervisor when leaf 1 ECX bit 31 says there is one.
#[cfg(target_arch = "x86_64")]
fn cpuid_hypervisor() -> Option<(String, String)> {
    use std::arch::x86_64::__cpuid;
    // CPUID is available on every x86_64 CPU (safe to call since Rust 1.87).
    let leaf1 = __cpuid(1);
    if leaf1.ecx & (1 << 31) == 0 {
        return None;
    }
    // The hypervisor leaves are defined when bit 31 is set.
    let leaf = __cpuid(0x4000_0000);
    let mut sig = Vec::with_capacity(12);
    for reg in [leaf.ebx, leaf.ecx, leaf.edx] {
        sig.extend_from_slice(&reg.to_le_bytes());
    }
    let vendor = String::from_utf8_lossy(&sig)
        .trim_end_matches('\0')
        .to_string();
    let id = match vendor.as_str() {
        "KVMKVMKVM" | "Linux KVM Hv" => "kvm",
        "Microsoft Hv" => "microsoft",
        "VMwareVMware" => "vmware",
        "XenVMMXenVMM" => "xen",
        "TCGTCGTCGTCG" => "qemu",
        "bhyve bhyve " => "bhyve",
        "ACRNACRNACRN" => "acrn",
        "QNXQVMBSQG" => "qnx",
        " lrpepyh  vr" => "parallels",
        "SRESRESRESRE" => "sre",
        "Apple VZ" => "apple",
        _ => "vm-other",
    };
    Some((id.to_string(), vendor))
}

#[cfg(not(target_arch = "x86_64"))]
fn cpuid_hypervisor() -> Option<(String, String)> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ns_links() {
        assert_eq!(ns_inode("pid:[4026531836]", "pid"), Some(PID_INIT_INO));
        assert_eq!(
            ns_inode("cgroup:[4026531835]", "cgroup"),
            Some(CGROUP_INIT_INO)
        );
        assert_eq!(ns_inode("pid:[x]", "pid"), None);
        assert_eq!(ns_inode("net:[1]", "pid"), None);
    }

    /// A pod with hostPID but a cgroup namespace of its own (the default on cgroup v2), reading the
    /// node at /host without the rights to PID 1's links: the node is not a container, whatever
    /// stale marker it carries.
    #[test]
    fn a_mounted_host_read_from_a_pod_with_its_own_cgroup_namespace() {
        let Some(boot_id) = crate::root::own_boot_id() else {
            eprintln!("skipped: no /proc/sys/kernel/random/boot_id on this machine");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("proc/4242/ns")).unwrap();
        std::fs::create_dir_all(d.join("proc/sys/kernel/random")).unwrap();
        std::fs::write(d.join("proc/sys/kernel/random/boot_id"), boot_id).unwrap();
        std::os::unix::fs::symlink("4242", d.join("proc/self")).unwrap();
        let ns = d.join("proc/4242/ns");
        std::os::unix::fs::symlink("pid:[4026531836]", ns.join("pid")).unwrap();
        std::os::unix::fs::symlink("cgroup:[4026532400]", ns.join("cgroup")).unwrap();
        std::fs::write(d.join(".dockerenv"), "").unwrap();
        let root = Root::open(d).unwrap();
        assert!(root.same_kernel() && !root.is_live());
        assert_eq!(probe(&root, None, None).container.as_deref(), Some("none"));
        // The warning names what decided: our own PID namespace, not PID 1's namespaces.
        let message = stale_marker_message(&root);
        assert!(
            message.contains(
                "but PID 1's namespace links could not be read and proc/self (hostprint's own \
                 process) is in the initial PID namespace, so"
            ),
            "{message}"
        );

        // Our PID namespace is not the host's either: a container after all.
        std::fs::remove_file(ns.join("pid")).unwrap();
        std::os::unix::fs::symlink("pid:[4026532401]", ns.join("pid")).unwrap();
        let root = Root::open(d).unwrap();
        assert_eq!(
            probe(&root, None, None).container.as_deref(),
            Some("docker")
        );
    }

    fn stale_marker_message(root: &Root) -> String {
        let warnings = root.take_warnings();
        let stale: Vec<_> = warnings
            .iter()
            .filter(|w| w.code == Code::StaleContainerMarker)
            .collect();
        assert_eq!(stale.len(), 1, "{warnings:?}");
        stale[0].message.clone()
    }

    /// A VM image with a stale `/.dockerenv` whose PID 1 links are readable: they decide.
    #[test]
    fn a_stale_marker_ignored_because_of_pid_1s_namespaces() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ns = d.join("proc/1/ns");
        std::fs::create_dir_all(&ns).unwrap();
        std::os::unix::fs::symlink("pid:[4026531836]", ns.join("pid")).unwrap();
        std::os::unix::fs::symlink("cgroup:[4026531835]", ns.join("cgroup")).unwrap();
        std::fs::write(d.join(".dockerenv"), "").unwrap();
        let root = Root::open(d).unwrap();
        assert_eq!(probe(&root, None, None).container.as_deref(), Some("none"));
        let message = stale_marker_message(&root);
        assert!(
            message.contains("but PID 1 is in the initial PID and cgroup namespaces, so"),
            "{message}"
        );
    }

    #[test]
    fn dmi_and_flags() {
        assert_eq!(dmi_vendor("Amazon EC2"), Some("amazon"));
        assert_eq!(dmi_vendor("Standard PC (Q35 + ICH9, 2009)"), None);
        assert!(has_hypervisor_flag(
            "flags\t\t: fpu vme hypervisor lahf_lm\n"
        ));
        assert!(!has_hypervisor_flag("flags\t\t: fpu vme\n"));
    }
}
