//! Update posture, pending reboots and support ends as a monitoring system and a scheduler see them:
//! the Prometheus families over the fixtures that exercise them (and `promtool check metrics` on the
//! result), and the NFD labels (versions and channels, never the pending reboot, which flaps).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{hostprint, stderr};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
        .join("root")
}

fn output(name: &str, format: &str) -> String {
    let out = hostprint(&[
        "--root",
        fixture(name).to_str().unwrap(),
        "--format",
        format,
    ]);
    assert!(out.status.success(), "{name}: {}", stderr(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// The sample lines of `family` (name and labels, value), in order.
fn samples<'t>(text: &'t str, family: &str) -> Vec<&'t str> {
    let prefix = format!("hostprint_{family}");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(&prefix)
                .is_some_and(|r| r.starts_with(['{', ' ']))
        })
        .collect()
}

#[test]
fn update_reboot_and_support_metrics_follow_the_files() {
    let flatcar = output("flatcar-lts-updates-off", "prometheus");
    assert_eq!(
        samples(&flatcar, "update_automatic"),
        [
            "hostprint_update_automatic{agent=\"update_engine\"} 0",
            "hostprint_update_automatic{agent=\"locksmithd\"} 0"
        ]
    );
    assert_eq!(
        samples(&flatcar, "reboot_required"),
        ["hostprint_reboot_required 1"]
    );
    assert!(samples(&flatcar, "support_end_timestamp_seconds").is_empty());

    let fcos = output("fedora-coreos-41-fleet-lock", "prometheus");
    assert_eq!(
        samples(&fcos, "update_automatic"),
        [
            "hostprint_update_automatic{agent=\"rpm-ostree\"} 0",
            "hostprint_update_automatic{agent=\"zincati\"} 0"
        ]
    );
    assert_eq!(
        samples(&fcos, "reboot_required"),
        ["hostprint_reboot_required 1"]
    );
    // SUPPORT_END=2025-12-15, 00:00 UTC (`date -u -d 2025-12-15 +%s`).
    assert_eq!(
        samples(&fcos, "support_end_timestamp_seconds"),
        ["hostprint_support_end_timestamp_seconds 1765756800"]
    );

    let silverblue = output("fedora-silverblue-34-auto-stage", "prometheus");
    assert_eq!(
        samples(&silverblue, "update_automatic"),
        ["hostprint_update_automatic{agent=\"rpm-ostree\"} 1"]
    );
    assert_eq!(
        samples(&silverblue, "reboot_required"),
        ["hostprint_reboot_required 0"]
    );

    // Updog says nothing about automation, and Talos has no known reboot signal: absent, not 0.
    let bottlerocket = output("bottlerocket-k8s", "prometheus");
    assert!(samples(&bottlerocket, "update_automatic").is_empty());
    let talos = output("talos-1.9", "prometheus");
    assert!(samples(&talos, "reboot_required").is_empty());

    // The fingerprint's end of life stands in where os-release has no SUPPORT_END (2020-05-26).
    let coreos = output("coreos-1911", "prometheus");
    assert_eq!(
        samples(&coreos, "support_end_timestamp_seconds"),
        ["hostprint_support_end_timestamp_seconds 1590451200"]
    );

    // identity_info's version is the system's own (Kairos' release, not Ubuntu's 24.04).
    let kairos = output("kairos-v3", "prometheus");
    let info = samples(&kairos, "identity_info");
    assert!(info[0].contains("version=\"v3.4.2\""), "{info:?}");
}

/// promtool lints what node_exporter will serve. It ships with Prometheus (`apt-get install
/// prometheus`); without it this test says it is skipped.
#[test]
fn promtool_accepts_the_new_families() {
    let Ok(version) = Command::new("promtool").arg("--version").output() else {
        eprintln!("SKIPPED promtool_accepts_the_new_families: promtool is not on PATH");
        return;
    };
    assert!(version.status.success());
    for name in [
        "flatcar-lts-updates-off",
        "fedora-coreos-41-fleet-lock",
        "particleos-sysupdate",
        "ubuntu-core-24-refresh-hold",
        "centos-bootc-9",
    ] {
        let text = output(name, "prometheus");
        let mut child = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && said.trim().is_empty(),
            "{name}: {said}"
        );
    }
}

#[test]
fn nfd_labels_carry_versions_and_channels_but_no_reboot() {
    const P: &str = "hostprint.feature.node.kubernetes.io/";
    let fcos = output("fedora-coreos-41-fleet-lock", "nfd");
    assert!(
        fcos.contains(&format!("{P}update.zincati.channel=stable\n")),
        "{fcos}"
    );
    assert!(fcos.contains(&format!("{P}os.version=41\n")), "{fcos}");
    assert!(!fcos.contains("reboot"), "{fcos}");
    let kairos = output("kairos-v3", "nfd");
    assert!(
        kairos.contains(&format!("{P}os.version=v3.4.2\n")),
        "{kairos}"
    );
    assert!(
        kairos.contains(&format!("{P}os.version.major=3\n")),
        "{kairos}"
    );
    let core = output("ubuntu-core-24-refresh-hold", "nfd");
    // latest/stable is not a label value; the slash becomes a dash.
    assert!(
        core.contains(&format!("{P}update.snapd.channel=latest-stable\n")),
        "{core}"
    );
}

fn json_of(root: &Path) -> serde_json::Value {
    let out = hostprint(&["--root", root.to_str().unwrap(), "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// os-release always wins when it has an ID: a CentOS 7 host keeps its RHEL-era release files.
#[test]
fn legacy_files_never_override_an_os_release_id() {
    let dir = common::tree(&[
        (
            "etc/os-release",
            "NAME=\"CentOS Linux\"\nID=\"centos\"\nVERSION_ID=\"7\"\nPRETTY_NAME=\"CentOS Linux 7 (Core)\"\n",
        ),
        (
            "etc/redhat-release",
            "Red Hat Enterprise Linux Server release 6.7 (Santiago)\n",
        ),
    ]);
    let p = json_of(dir.path());
    assert_eq!(p["os"]["id"], "centos");
    assert_eq!(p["os"]["source"], "etc/os-release");
    assert!(
        p["warnings"].as_array().unwrap().is_empty(),
        "{}",
        p["warnings"]
    );
}

/// bootc's composefs backend stages in its own run directory; the kernel command line says the host
/// boots that way.
#[test]
fn composefs_staged_deployment_means_a_reboot_is_pending() {
    let dir = common::tree(&[
        ("etc/os-release", "ID=fedora\nVERSION_ID=42\n"),
        ("proc/cmdline", "root=UUID=1 composefs=7a3b rw\n"),
        ("run/composefs/staged-deployment", ""),
    ]);
    let p = json_of(dir.path());
    assert_eq!(p["lifecycle"]["reboot_required"], true);
    assert_eq!(
        p["lifecycle"]["reboot_reason"],
        "run/composefs/staged-deployment"
    );
    std::fs::remove_file(dir.path().join("run/composefs/staged-deployment")).unwrap();
    let p = json_of(dir.path());
    assert_eq!(p["lifecycle"]["reboot_required"], false);
}

/// `systemctl mask` (a link to /dev/null in etc/systemd/system) turns an agent's automatic updates
/// off whatever its configuration says; a timer linked into timers.target.wants turns them on.
#[test]
fn masked_and_enabled_units_decide_automatic() {
    let dir = common::tree(&[
        ("etc/os-release", "ID=flatcar\nVERSION_ID=4230.2.4\n"),
        ("usr/share/flatcar/update.conf", "GROUP=stable\n"),
        ("usr/bin/bootc", ""),
    ]);
    let automatic = |p: &serde_json::Value, agent: &str| {
        p["updates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["agent"] == agent)
            .map(|u| u["automatic"].clone())
    };
    let p = json_of(dir.path());
    assert_eq!(
        automatic(&p, "update_engine"),
        Some(true.into()),
        "as shipped"
    );
    assert_eq!(
        automatic(&p, "bootc"),
        Some(serde_json::Value::Null),
        "no link either way"
    );

    let units = dir.path().join("etc/systemd/system");
    std::fs::create_dir_all(units.join("timers.target.wants")).unwrap();
    std::os::unix::fs::symlink("/dev/null", units.join("update-engine.service")).unwrap();
    std::os::unix::fs::symlink(
        "/usr/lib/systemd/system/bootc-fetch-apply-updates.timer",
        units.join("timers.target.wants/bootc-fetch-apply-updates.timer"),
    )
    .unwrap();
    let p = json_of(dir.path());
    assert_eq!(automatic(&p, "update_engine"), Some(false.into()), "masked");
    assert_eq!(automatic(&p, "bootc"), Some(true.into()), "timer enabled");
}
