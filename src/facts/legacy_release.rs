//! Release files older than os-release(5), for hosts without a usable one (CentOS 6, RHEL 6,
//! Ubuntu 10.04, Amazon Linux 2 images with an empty os-release).
//!
//! The files python-distro and Ansible read, consulted only when os-release has no `ID`, in the
//! order of [`FILES`]; the first that names a distribution wins, with the id that distribution's
//! os-release uses. `etc/lsb-release` comes before `etc/debian_version`, which Ubuntu also carries.

use crate::facts::os_release;
use crate::root::Root;

/// What a legacy release file says, in os-release's terms.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LegacyRelease {
    /// The file it came from, relative to the root.
    pub source: String,
    pub id: String,
    pub version_id: Option<String>,
    pub name: Option<String>,
    pub pretty_name: Option<String>,
}

/// The files, in the order they are consulted.
pub const FILES: [&str; 7] = [
    "etc/centos-release",
    "etc/redhat-release",
    "etc/system-release",
    "etc/SuSE-release",
    "etc/alpine-release",
    "etc/lsb-release",
    "etc/debian_version",
];

/// Release files are a line or three.
const CAP: usize = 16 * 1024;

/// The first legacy file that names a distribution.
pub fn probe(root: &Root) -> Option<LegacyRelease> {
    FILES.iter().find_map(|path| {
        let text = root.read_text(path, CAP).ok()?;
        let mut release = parse(path, &text.text)?;
        release.source = path.to_string();
        Some(release)
    })
}

/// Parses the content of legacy file `path` (one of [`FILES`]). Pure.
pub fn parse(path: &str, text: &str) -> Option<LegacyRelease> {
    match path {
        "etc/SuSE-release" => parse_suse(text),
        "etc/alpine-release" => {
            let version = first_line(text)?;
            Some(release("alpine", Some(version), "Alpine Linux", None))
        }
        "etc/lsb-release" => parse_lsb(text),
        "etc/debian_version" => {
            let line = first_line(text)?;
            // `squeeze/sid` is a codename, not a version.
            let version = line
                .starts_with(|c: char| c.is_ascii_digit())
                .then_some(line);
            Some(release("debian", version, "Debian GNU/Linux", None))
        }
        _ => parse_redhat_style(text),
    }
}

fn release(id: &str, version: Option<&str>, name: &str, pretty: Option<&str>) -> LegacyRelease {
    LegacyRelease {
        source: String::new(),
        id: id.to_string(),
        version_id: version.map(str::to_string),
        name: Some(name.to_string()),
        pretty_name: pretty.map(str::to_string),
    }
}

fn first_line(text: &str) -> Option<&str> {
    text.lines().next().map(str::trim).filter(|l| !l.is_empty())
}

/// `CentOS release 6.7 (Final)`, `CentOS Linux release 7.9.2009 (Core)`,
/// `Red Hat Enterprise Linux Server release 6.7 (Santiago)`, `Amazon Linux release 2 (Karoo)`,
/// `Amazon Linux AMI release 2018.03`, `Fedora release 20 (Heisenbug)`.
fn parse_redhat_style(text: &str) -> Option<LegacyRelease> {
    let line = first_line(text)?;
    let (name, rest) = line.split_once(" release ")?;
    let version = rest
        .split_whitespace()
        .next()
        .filter(|v| !v.starts_with('('));
    let (id, short) = [
        ("CentOS", "centos", "CentOS Linux"),
        (
            "Red Hat Enterprise Linux",
            "rhel",
            "Red Hat Enterprise Linux",
        ),
        ("Amazon Linux", "amzn", "Amazon Linux"),
        ("Fedora", "fedora", "Fedora"),
    ]
    .iter()
    .find(|(prefix, _, _)| name.starts_with(prefix))
    .map(|&(_, id, short)| (id, short))?;
    Some(release(id, version, short, Some(line)))
}

/// `SUSE Linux Enterprise Server 11 (x86_64)` / `openSUSE 13.1 (x86_64)`, then `VERSION = 11` and
/// `PATCHLEVEL = 4` (SLES 11.4 is `VERSION_ID="11.4"` in the os-release of later service packs).
fn parse_suse(text: &str) -> Option<LegacyRelease> {
    let head = first_line(text)?;
    let (id, name) = if head.starts_with("SUSE Linux Enterprise Server") {
        ("sles", "SLES")
    } else if head.starts_with("openSUSE") {
        ("opensuse", "openSUSE")
    } else {
        return None;
    };
    let value = |key: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    let version = match (value("VERSION"), value("PATCHLEVEL")) {
        (Some(v), Some(p)) if p != "0" => Some(format!("{v}.{p}")),
        (v, _) => v,
    };
    Some(release(id, version.as_deref(), name, Some(head)))
}

fn parse_lsb(text: &str) -> Option<LegacyRelease> {
    let fields = os_release::parse(text).fields;
    let distributor = fields.get("DISTRIB_ID")?;
    let id = match distributor.to_ascii_lowercase().as_str() {
        "ubuntu" => "ubuntu",
        "debian" => "debian",
        _ => return None,
    };
    let get = |key| fields.get(key).map(String::as_str);
    let version = get("DISTRIB_RELEASE").filter(|v| !v.is_empty());
    let pretty = get("DISTRIB_DESCRIPTION");
    Some(release(id, version, distributor, pretty))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(path: &str, text: &str) -> Option<(String, Option<String>)> {
        parse(path, text).map(|r| (r.id, r.version_id))
    }

    fn some(id: &str, v: Option<&str>) -> Option<(String, Option<String>)> {
        Some((id.to_string(), v.map(str::to_string)))
    }

    #[test]
    fn redhat_family() {
        // Ansible's distribution fixtures centos_6.7, redhat_6.7, amazon_linux_2_karoo.
        let rh = "etc/redhat-release";
        assert_eq!(
            p(rh, "CentOS release 6.7 (Final)\n"),
            some("centos", Some("6.7"))
        );
        assert_eq!(
            p(
                rh,
                "Red Hat Enterprise Linux Server release 6.7 (Santiago)\n"
            ),
            some("rhel", Some("6.7"))
        );
        assert_eq!(
            p("etc/system-release", "Amazon Linux release 2 (Karoo)"),
            some("amzn", Some("2"))
        );
        assert_eq!(
            p("etc/system-release", "Amazon Linux AMI release 2018.03\n"),
            some("amzn", Some("2018.03"))
        );
        assert_eq!(
            p(
                "etc/centos-release",
                "CentOS Linux release 7.9.2009 (Core)\n"
            ),
            some("centos", Some("7.9.2009"))
        );
        assert_eq!(
            p(rh, "CentOS Stream release 9\n"),
            some("centos", Some("9"))
        );
        let r = parse(rh, "CentOS release 6.7 (Final)\n").unwrap();
        assert_eq!(r.pretty_name.as_deref(), Some("CentOS release 6.7 (Final)"));
        // Unknown names and shapes name nothing.
        assert_eq!(p(rh, "Scientific Linux release 6.4 (Carbon)\n"), None);
        assert_eq!(p(rh, "garbage\n"), None);
        assert_eq!(p(rh, ""), None);
    }

    #[test]
    fn lsb_and_debian() {
        // Ansible's ubuntu_10.04_guess fixture, whose description lost its closing quote.
        let lucid = "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=10.04\nDISTRIB_CODENAME=lucid\nDISTRIB_DESCRIPTION=\"Ubuntu 10.04.4 LTS";
        let r = parse("etc/lsb-release", lucid).unwrap();
        assert_eq!(
            (r.id.as_str(), r.version_id.as_deref()),
            ("ubuntu", Some("10.04"))
        );
        assert_eq!(r.pretty_name, None);
        // CentOS 6's lsb-release has only LSB_VERSION.
        assert_eq!(p("etc/lsb-release", "LSB_VERSION=base-4.0-amd64\n"), None);
        assert_eq!(
            p("etc/debian_version", "6.0.10\n"),
            some("debian", Some("6.0.10"))
        );
        assert_eq!(
            p("etc/debian_version", "squeeze/sid\n"),
            some("debian", None)
        );
        assert_eq!(p("etc/debian_version", "\n"), None);
    }

    #[test]
    fn suse_and_alpine() {
        let sles = "SUSE Linux Enterprise Server 11 (x86_64)\nVERSION = 11\nPATCHLEVEL = 4\n";
        assert_eq!(p("etc/SuSE-release", sles), some("sles", Some("11.4")));
        let sles12 = "SUSE Linux Enterprise Server 12 (x86_64)\nVERSION = 12\nPATCHLEVEL = 0\n";
        assert_eq!(p("etc/SuSE-release", sles12), some("sles", Some("12")));
        let os = "openSUSE 13.1 (x86_64)\nVERSION = 13.1\nCODENAME = Bottle\n";
        assert_eq!(p("etc/SuSE-release", os), some("opensuse", Some("13.1")));
        assert_eq!(p("etc/SuSE-release", "Something 1\n"), None);
        assert_eq!(
            p("etc/alpine-release", "3.2.3\n"),
            some("alpine", Some("3.2.3"))
        );
        assert_eq!(p("etc/alpine-release", ""), None);
    }
}
