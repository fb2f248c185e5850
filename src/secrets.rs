//! The secret list: paths that may hold credentials, whoever asks for them (a probe, a link, a user
//! rule). `hostprint record` never copies their bytes, and a warning never quotes a line of one.
//!
//! Checked on normalized paths, component by component, so `./etc//shadow` and
//! `etc/ssh/ssh_host_ed25519_key` are caught however asked. Over-broad on purpose: a withheld file
//! costs a replay one fact, a leaked key costs a cluster. Where each entry comes from: the projects'
//! own documentation of where they keep credentials (k3s/rke2 `config.yaml` and `registries.yaml`,
//! kubeadm's `bootstrap-kubelet.conf`, k3OS `config.yaml`, cloud-init `user-data`, containers-auth.json(5),
//! the kubelet's `config.json` image credentials, wg-quick(8), NetworkManager keyfiles, Ceph keyrings,
//! etcd's data directory, Talos `system/state`, Kairos/Elemental `oem/` cloud-configs, ECS agent config).

use crate::text::normalize;

/// Whole paths, relative to the root, and anything below them.
const PATHS: &[(&str, &str)] = &[
    ("etc/shadow", "password hashes"),
    ("etc/shadow-", "password hashes (backup)"),
    ("etc/gshadow", "group password hashes"),
    ("etc/gshadow-", "group password hashes (backup)"),
    ("etc/security/opasswd", "old password hashes"),
    ("etc/ssl/private", "TLS private keys"),
    ("etc/kubernetes/admin.conf", "cluster-admin kubeconfig"),
    (
        "etc/kubernetes/super-admin.conf",
        "cluster-admin kubeconfig",
    ),
    ("etc/kubernetes/kubelet.conf", "kubelet credentials"),
    (
        "etc/kubernetes/bootstrap-kubelet.conf",
        "kubelet bootstrap token",
    ),
    (
        "etc/kubernetes/controller-manager.conf",
        "controller credentials",
    ),
    ("etc/kubernetes/scheduler.conf", "scheduler credentials"),
    ("etc/kubernetes/pki", "cluster CA and keys"),
    ("var/lib/kubelet/pki", "kubelet client keys"),
    ("var/lib/kubelet/config.json", "image registry credentials"),
    ("etc/rancher/k3s/k3s.yaml", "k3s admin kubeconfig"),
    (
        "etc/rancher/k3s/config.yaml",
        "k3s configuration (cluster token)",
    ),
    (
        "etc/rancher/k3s/config.yaml.d",
        "k3s configuration (cluster token)",
    ),
    ("etc/rancher/rke2/rke2.yaml", "RKE2 admin kubeconfig"),
    (
        "etc/rancher/rke2/config.yaml",
        "RKE2 configuration (cluster token)",
    ),
    (
        "etc/rancher/rke2/config.yaml.d",
        "RKE2 configuration (cluster token)",
    ),
    (
        "etc/rancher/agent/config.yaml",
        "Rancher agent configuration (token)",
    ),
    (
        "var/lib/rancher/k3s/server",
        "k3s server keys, tokens and datastore",
    ),
    (
        "var/lib/rancher/rke2/server",
        "RKE2 server keys, tokens and datastore",
    ),
    (
        "k3os/system/config.yaml",
        "k3OS configuration (passwords, tokens)",
    ),
    (
        "var/lib/rancher/k3os/config.yaml",
        "k3OS configuration (passwords, tokens)",
    ),
    ("var/lib/etcd", "etcd data (every Kubernetes secret)"),
    ("etc/wireguard", "WireGuard keys"),
    (
        "etc/NetworkManager/system-connections",
        "network passwords and keys",
    ),
    (
        "etc/ecs/ecs.config",
        "ECS agent configuration (registry credentials)",
    ),
    (
        "etc/ecs/ecs.config.json",
        "ECS agent configuration (registry credentials)",
    ),
    (
        "system/state",
        "Talos machine configuration (cluster secrets)",
    ),
    ("oem", "cloud-config (passwords, keys)"),
    ("var/lib/cloud/instance", "cloud-init user data"),
    ("var/lib/cloud/instances", "cloud-init user data"),
    ("var/lib/cloud/seed", "cloud-init user data"),
    ("etc/docker/key.json", "Docker daemon key"),
    ("var/lib/docker/swarm/certificates", "swarm keys"),
    ("proc/kcore", "kernel memory"),
    ("sys/firmware/efi/efivars", "firmware variables"),
];

/// Directory names anywhere in the path.
const DIRS: &[(&str, &str)] = &[
    (".ssh", "SSH keys"),
    (".kube", "kubeconfigs"),
    (".docker", "registry credentials"),
    (".aws", "cloud credentials"),
    (".gnupg", "GPG keys"),
];

/// Why `path` may hold secrets, or `None`.
pub fn secret_reason(path: &str) -> Option<&'static str> {
    let path = normalize(path);
    if let Some((_, why)) = PATHS
        .iter()
        .find(|(p, _)| path == *p || path.starts_with(&format!("{p}/")))
    {
        return Some(why);
    }
    let parts: Vec<&str> = path.split('/').collect();
    // A process's environment often carries tokens; its memory is everything.
    if parts.first() == Some(&"proc") && matches!(parts.last(), Some(&("environ" | "mem"))) {
        return Some("process environment or memory");
    }
    let last = parts.len() - 1;
    parts.iter().enumerate().find_map(|(i, part)| {
        let lower = part.to_ascii_lowercase();
        DIRS.iter()
            .find(|(d, _)| lower == *d)
            .map(|(_, why)| *why)
            .or_else(|| name_reason(&lower, i == last))
    })
}

/// Why a path component with this (lowercased) name may hold secrets; `last` when it is the file's
/// own name.
fn name_reason(name: &str, last: bool) -> Option<&'static str> {
    let has = |words: &[&str]| words.iter().any(|w| name.contains(w));
    let ends = |exts: &[&str]| exts.iter().any(|e| name.ends_with(e));
    let why = if name.starts_with("ssh_host_") && name.ends_with("_key") {
        "SSH host private key"
    } else if ["id_rsa", "id_dsa", "id_ecdsa", "id_ed25519"]
        .iter()
        .any(|k| name.starts_with(k))
    {
        "SSH private key"
    } else if ends(&[".key", ".pem", ".p12", ".pfx", ".jks", ".keytab"]) {
        "key or certificate bundle"
    } else if name.starts_with("sudoers") {
        "privilege rules"
    } else if has(&[
        "secret",
        "token",
        "password",
        "passwd-s3fs",
        "credential",
        "kubeconfig",
        ".netrc",
        ".pgpass",
        ".git-credentials",
        "htpasswd",
    ]) {
        "named as a secret, token, password or kubeconfig"
    } else if name == "auth.json" || name == "registries.yaml" {
        "registry credentials"
    } else if name.ends_with(".keyring") || name == "keyring" {
        "Ceph or other keyring"
    } else if name.starts_with("wg") && name.ends_with(".conf") && last {
        "WireGuard keys"
    } else if name.ends_with(".nmconnection") {
        "network passwords and keys"
    } else if name.ends_with(".ign") || name == "ignition.json" {
        "Ignition config (keys, passwords)"
    } else if name.starts_with("user-data") || name.starts_with("vendor-data") {
        "cloud-init user data"
    } else if name == "ovf-env.xml" {
        "provisioning data (passwords)"
    } else {
        return None;
    };
    Some(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_named_however_asked() {
        for path in [
            "etc/shadow",
            "/etc/shadow",
            "./etc//gshadow",
            "etc/sudoers",
            "etc/sudoers.d/90-cloud",
            "etc/ssh/ssh_host_ed25519_key",
            "root/.ssh/authorized_keys",
            "home/core/.ssh/id_ed25519",
            "etc/kubernetes/admin.conf",
            "etc/kubernetes/pki/ca.crt",
            "var/lib/kubelet/pki/kubelet-client-current.pem",
            "var/lib/kubelet/kubeconfig",
            "var/lib/rancher/k3s/server/token",
            "etc/rancher/k3s/k3s.yaml",
            "run/secrets/kubernetes.io/serviceaccount/ca.crt",
            "etc/pki/tls/private/server.KEY",
            "proc/1/environ",
            "proc/self/task/7/environ",
            // Found by trying `record` with user rules naming them.
            "etc/rancher/k3s/config.yaml",
            "etc/rancher/rke2/config.yaml",
            "etc/rancher/rke2/config.yaml.d/50-token.yaml",
            "etc/rancher/k3s/registries.yaml",
            "etc/rancher/rke2/registries.yaml",
            "etc/kubernetes/bootstrap-kubelet.conf",
            "k3os/system/config.yaml",
            "var/lib/rancher/k3os/config.yaml",
            "var/lib/cloud/instance/user-data.txt",
            "var/lib/cloud/seed/nocloud/user-data",
            "run/containers/0/auth.json",
            "etc/containers/auth.json",
            "var/lib/kubelet/config.json",
            "etc/wireguard/wg0.conf",
            "etc/wg0.conf",
            "etc/NetworkManager/system-connections/home.nmconnection",
            "etc/ceph/ceph.client.admin.keyring",
            "var/lib/etcd/member/snap/db",
            "var/lib/rancher/k3s/server/db/state.db",
            "usr/share/oem/config.ign",
            "oem/90_custom.yaml",
            "system/state/config.yaml",
            "etc/ecs/ecs.config",
        ] {
            assert!(secret_reason(path).is_some(), "{path} must be withheld");
        }
        for path in [
            "etc/os-release",
            "etc/passwd",
            "etc/ssh/ssh_host_ed25519_key.pub",
            "etc/ssh/sshd_config",
            "proc/1/cmdline",
            "proc/1/mountinfo",
            "usr/lib/snapd/snapd",
            "etc/kubernetes/manifests/etcd.yaml",
            "etc/containers/storage.conf",
            "etc/containers/registries.conf",
            "usr/bin/wg",
            "var/lib/kubelet/config.yaml",
            "usr/lib/systemd/system/etcd.service",
            "etc/rancher/k3s",
        ] {
            assert_eq!(secret_reason(path), None, "{path} is not a secret");
        }
    }
}
