//! Guarantees about the shipped rules as a whole: the stable ids exist (users put them in alert rules
//! and node selectors — a rename must fail here), identity never rests on weak signals alone, and
//! conflicting evidence is reported instead of hidden.

mod common;

use common::tree;
use hostprint::profile;
use hostprint::root::Root;
use hostprint::rules::{Kind, RuleSet};

/// The stable ids users put in alert rules and node selectors. Never remove one from this list.
const STABLE: &[(&str, Kind)] = &[
    ("coreos", Kind::ContainerOs),
    ("flatcar", Kind::ContainerOs),
    ("fedora-coreos", Kind::ContainerOs),
    ("rhcos", Kind::ContainerOs),
    ("fedora-atomic-host", Kind::ContainerOs),
    ("centos-atomic-host", Kind::ContainerOs),
    ("rhel-atomic-host", Kind::ContainerOs),
    ("rancheros", Kind::ContainerOs),
    ("k3os", Kind::ContainerOs),
    ("ubuntu-core", Kind::ContainerOs),
    ("photon", Kind::ContainerOs),
    ("bottlerocket", Kind::ContainerOs),
    ("talos", Kind::ContainerOs),
    ("cos", Kind::ContainerOs),
    ("opensuse-microos", Kind::ContainerOs),
    ("sle-micro", Kind::ContainerOs),
    ("sl-micro", Kind::ContainerOs),
    ("kairos", Kind::ContainerOs),
    ("scos", Kind::ContainerOs),
    ("opensuse-leap-micro", Kind::ContainerOs),
    ("azurelinux", Kind::ContainerOs),
    ("mariner", Kind::ContainerOs),
    ("gardenlinux", Kind::ContainerOs),
    ("fedora-silverblue", Kind::ImmutableDesktop),
    ("fedora-kinoite", Kind::ImmutableDesktop),
    ("fedora-sway-atomic", Kind::ImmutableDesktop),
    ("fedora-budgie-atomic", Kind::ImmutableDesktop),
    ("bluefin", Kind::ImmutableDesktop),
    ("aurora", Kind::ImmutableDesktop),
    ("dcos", Kind::Platform),
    ("tectonic", Kind::Platform),
    ("rancher", Kind::Platform),
    ("ecs", Kind::Platform),
    ("eks", Kind::Platform),
    ("aks", Kind::Platform),
    ("elemental", Kind::Platform),
    ("etcd", Kind::Component),
    ("fleet", Kind::Component),
    ("flannel", Kind::Component),
    ("rkt", Kind::Component),
    ("kubelet", Kind::Component),
    ("k3s", Kind::Component),
    ("rke2", Kind::Component),
    ("mesos", Kind::Component),
    ("marathon", Kind::Component),
    ("zookeeper", Kind::Component),
    ("lightwave", Kind::Component),
];

#[test]
fn stable_ids_exist_with_their_kind() {
    let rules = RuleSet::embedded().unwrap();
    for (id, kind) in STABLE {
        let rule = rules
            .get(id)
            .unwrap_or_else(|| panic!("stable id {id} has no rule"));
        assert_eq!(rule.kind, *kind, "{id}");
    }
}

#[test]
fn lineage_and_successors_name_known_ids() {
    let rules = RuleSet::embedded().unwrap();
    let dangling = rules.dangling_references();
    assert!(dangling.is_empty(), "unknown ids referenced: {dangling:?}");
}

#[test]
fn retired_systems_say_so() {
    let rules = RuleSet::embedded().unwrap();
    for id in [
        "coreos",
        "rancheros",
        "k3os",
        "fedora-atomic-host",
        "rhel-atomic-host",
    ] {
        assert!(
            rules.get(id).unwrap().eol.is_some(),
            "{id} has no end of life"
        );
    }
    assert_eq!(
        rules.get("coreos").unwrap().successor.as_deref(),
        Some("fedora-coreos")
    );
}

fn profile_of(files: &[(&str, &str)]) -> profile::Profile {
    let dir = tree(files);
    let root = Root::open(dir.path()).unwrap();
    profile::build(&root, &RuleSet::embedded().unwrap()).profile
}

/// Every marker of several container OSes, but no os-release: the markers are support signals and
/// must not name the OS on their own.
#[test]
fn markers_without_os_release_do_not_decide() {
    let p = profile_of(&[
        ("run/ostree-booted", ""),
        ("usr/bin/rpm-ostree", ""),
        ("usr/libexec/zincati", ""),
        (
            "usr/share/flatcar/release",
            "FLATCAR_RELEASE_VERSION=3139.2.0\n",
        ),
        ("usr/share/flatcar/update.conf", "GROUP=stable\n"),
        ("usr/lib/locksmith/locksmithd", ""),
        ("usr/lib/snapd/snapd", ""),
        ("var/lib/snapd/.keep", ""),
        (".dockerenv", ""),
    ]);
    assert_eq!(p.identity.id, None, "{:?}", p.identity);
    assert_eq!(p.identity.kind, "unknown");
    assert!(
        !p.identity.closest.is_empty(),
        "closest candidates are still shown"
    );
}

/// os-release says Ubuntu, but CoreOS's own files are all there: that is reported, not hidden.
#[test]
fn conflicting_markers_are_a_warning() {
    let p = profile_of(&[
        (
            "etc/os-release",
            "ID=ubuntu\nVERSION_ID=\"24.04\"\nCOREOS_BOARD=amd64-usr\n",
        ),
        (
            "usr/share/coreos/release",
            "COREOS_RELEASE_VERSION=1911.5.0\n",
        ),
        ("usr/share/coreos/update.conf", "GROUP=stable\n"),
        ("etc/coreos/update.conf", "GROUP=stable\n"),
        ("usr/lib/locksmith/locksmithd", ""),
        (
            "etc/selinux/config",
            "SELINUX=permissive\nSELINUXTYPE=mcs\n",
        ),
    ]);
    assert_eq!(p.identity.id.as_deref(), Some("ubuntu"));
    assert!(
        p.warnings
            .iter()
            .any(|w| w.message.contains("conflicting evidence") && w.message.contains("coreos")),
        "{:?}",
        p.warnings
    );
}

/// A Flatcar host keeps CoreOS compatibility links; its lineage explains them, so no conflict.
#[test]
fn lineage_traces_are_not_conflicts() {
    let p = profile_of(&[
        (
            "etc/os-release",
            "ID=flatcar\nID_LIKE=coreos\nVERSION_ID=3139.2.0\n",
        ),
        ("usr/share/flatcar/release", ""),
        ("usr/share/coreos/release", ""),
        ("usr/share/coreos/update.conf", "GROUP=stable\n"),
        ("etc/coreos/update.conf", "GROUP=stable\n"),
        ("usr/lib/locksmith/locksmithd", ""),
    ]);
    assert_eq!(p.identity.id.as_deref(), Some("flatcar"));
    assert!(
        !p.warnings.iter().any(|w| w.message.contains("conflicting")),
        "{:?}",
        p.warnings
    );
}
