//! SELinux and AppArmor, read from files the way `sestatus` and `aa-enabled` would decide.
//!
//! SELinux: the kernel's truth is selinuxfs (`sys/fs/selinux/enforce`: 1 enforcing, 0 permissive);
//! the admin's intent is `etc/selinux/config` (`SELINUX=`, `SELINUXTYPE=`); the boot can override both
//! (`selinux=0`, `enforcing=0`). Reporting `mode` and `config_mode` side by side is what catches a
//! node booted with `enforcing=0`. When the root has no `sys/` at all (a recorded tree without it)
//! the runtime state is unknown (`null`), not "disabled".
//! AppArmor: `sys/module/apparmor/parameters/enabled` is `Y` when the LSM is active.

use schemars::JsonSchema;
use serde::Serialize;

use crate::facts::kernel::Kernel;
use crate::facts::os_release::read_env_file;
use crate::root::{FileKind, Root};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Security {
    pub selinux: SeLinux,
    pub apparmor: AppArmor,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct SeLinux {
    pub enabled: Option<bool>,
    /// `enforcing`, `permissive` or `disabled`, as running.
    pub mode: Option<String>,
    /// `SELINUX=` in etc/selinux/config.
    pub config_mode: Option<String>,
    /// `SELINUXTYPE=` in etc/selinux/config (targeted, mcs, fortified, …).
    pub policy: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct AppArmor {
    pub enabled: Option<bool>,
}

pub fn probe(root: &Root, kernel: &Kernel) -> Security {
    let sysfs = matches!(root.stat("sys/fs"), Ok(FileKind::Dir));
    let (config_mode, policy) = match read_env_file(root, "etc/selinux/config", 64 * 1024) {
        Ok(f) => (
            f.fields.get("SELINUX").map(|v| v.to_lowercase()),
            f.fields.get("SELINUXTYPE").cloned(),
        ),
        Err(_) => (None, None),
    };
    let enforce = root
        .read_text("sys/fs/selinux/enforce", 16)
        .ok()
        .map(|t| t.text.trim().to_string());
    let (enabled, mode) = selinux_state(enforce.as_deref(), sysfs, kernel);
    let apparmor = match root.read_text("sys/module/apparmor/parameters/enabled", 16) {
        Ok(t) => Some(t.text.trim() == "Y"),
        Err(_) if kernel.param("apparmor") == Some("0") => Some(false),
        Err(_) if matches!(root.stat("sys/module"), Ok(FileKind::Dir)) => Some(false),
        Err(_) => None,
    };
    Security {
        selinux: SeLinux {
            enabled,
            mode,
            config_mode,
            policy,
        },
        apparmor: AppArmor { enabled: apparmor },
    }
}

/// The running SELinux modes, as reported; rules may name only these (`selinux = { mode = "…" }`).
pub const SELINUX_MODES: [&str; 3] = ["enforcing", "permissive", "disabled"];

/// Decides the running SELinux state. Pure, for the table test.
pub fn selinux_state(
    enforce: Option<&str>,
    sysfs: bool,
    kernel: &Kernel,
) -> (Option<bool>, Option<String>) {
    let [enforcing, permissive, disabled] = SELINUX_MODES.map(|m| Some(m.to_string()));
    match enforce {
        Some("1") => (Some(true), enforcing),
        Some("0") => (Some(true), permissive),
        Some(_) => (Some(true), None),
        None if kernel.param("selinux") == Some("0") || sysfs => (Some(false), disabled),
        None => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(cmd: &str) -> Kernel {
        Kernel {
            release: None,
            cmdline: crate::facts::kernel::split_cmdline(cmd),
        }
    }

    #[test]
    fn selinux_table() {
        let on = (Some(true), Some("enforcing".to_string()));
        assert_eq!(selinux_state(Some("1"), true, &k("")), on);
        assert_eq!(
            selinux_state(Some("0"), true, &k("")),
            (Some(true), Some("permissive".into()))
        );
        assert_eq!(
            selinux_state(None, true, &k("")),
            (Some(false), Some("disabled".into()))
        );
        assert_eq!(
            selinux_state(None, false, &k("selinux=0")),
            (Some(false), Some("disabled".into()))
        );
        assert_eq!(selinux_state(None, false, &k("")), (None, None));
    }
}
