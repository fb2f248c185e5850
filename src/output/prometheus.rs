//! `--format prometheus`: the profile in the Prometheus text exposition format, for node_exporter's
//! textfile collector (`--collector.textfile.directory`), so a fleet's container OSes show up in the
//! monitoring it already runs instead of in a collector of our own.
//!
//! # Metrics
//!
//! All gauges, all in the `hostprint_` namespace so they never clash with node_exporter's `node_os_*`.
//! Facts hostprint could not establish are *absent* series (absence is how Prometheus says "unknown"),
//! never a made-up 0.
//!
//! ```text
//! hostprint_build_info{version}                                        1    always
//! hostprint_identity_info{id,name,kind,version,variant,container_os}  1    always (version:
//!                                                                      identity.version; container_os
//!                                                                      "" when kind is unknown)
//! hostprint_identity_confidence                                        0..100 (as in the JSON)
//! hostprint_identity_eol_timestamp_seconds{id}                         end of life, 00:00 UTC
//! hostprint_os_info{build_id,id,id_like,image_id,image_version,name,  1    node_exporter's node_os_info
//!   pretty_name,variant,variant_id,version,version_codename,version_id}     labels, from os-release
//! hostprint_selinux_enabled                                            0/1
//! hostprint_selinux_current_mode / hostprint_selinux_config_mode      1 enforcing, 0 permissive, -1 disabled
//! hostprint_apparmor_enabled                                           0/1
//! hostprint_runtime_socket_info{runtime,socket}                        1 per socket found
//! hostprint_update_agent_info{agent,channel,strategy}                  1 per agent
//! hostprint_update_automatic{agent}                                    1/0: the agent updates by itself
//! hostprint_reboot_required                                            1/0: an update waits for a reboot
//! hostprint_support_end_timestamp_seconds                              support end (lifecycle), 00:00 UTC
//! hostprint_platform_info{id,name,role}                                1 per platform (DC/OS …)
//! hostprint_component_info{id,name}                                    1 per component (etcd …)
//! hostprint_platform_eol_timestamp_seconds{id}                          a platform's end of life
//! hostprint_component_eol_timestamp_seconds{id}                         a component's end of life
//! hostprint_component_running{component}                               1/0 per component (--processes)
//! hostprint_warnings{code}                                             warnings of each code (every code)
//! ```
//!
//! The SELinux mode values are node_exporter's (`node_selinux_*_mode`, from go-selinux's
//! Enforcing=1/Permissive=0/Disabled=-1), so one dashboard reads both.
//!
//! # Wire format
//!
//! Text format 0.0.4: `# HELP` and `# TYPE` before each family's samples, one family's samples
//! together, every series of a family with the same label names (a missing value is `""`, which
//! Prometheus treats as an absent label: node_exporter and client libraries reject a family whose series
//! disagree on label names). Label values escape `\`, `"` and newline; HELP escapes `\` and newline.
//! No timestamps: the same root gives the same bytes, and node_exporter stamps the scrape itself.

use std::fmt::Write;

use crate::profile::Report;
use crate::rules::parse_date;
use crate::warning::Code;

/// The namespace of every metric.
pub const NAMESPACE: &str = "hostprint";

/// node_exporter's `node_os_info` labels and the os-release keys they carry, in its order
/// (prometheus/node_exporter, collector/os_release.go); an absent key is `""` there too.
const OS_INFO_LABELS: [(&str, &str); 12] = [
    ("build_id", "BUILD_ID"),
    ("id", "ID"),
    ("id_like", "ID_LIKE"),
    ("image_id", "IMAGE_ID"),
    ("image_version", "IMAGE_VERSION"),
    ("name", "NAME"),
    ("pretty_name", "PRETTY_NAME"),
    ("variant", "VARIANT"),
    ("variant_id", "VARIANT_ID"),
    ("version", "VERSION"),
    ("version_codename", "VERSION_CODENAME"),
    ("version_id", "VERSION_ID"),
];

pub fn render(report: &Report) -> String {
    let p = &report.profile;
    let mut out = Exposition::default();
    let id = &p.identity;
    let os = &p.os;

    out.gauge(
        "build_info",
        "The hostprint release that wrote this file; always 1.",
        [(vec![("version", env!("CARGO_PKG_VERSION"))], 1)],
    );

    out.gauge(
        "identity_info",
        "The OS hostprint identified (a fingerprint id, the os-release ID of a general-purpose host, or \"\" when unknown); always 1.",
        [(
            vec![
                ("id", id.id.as_deref().unwrap_or("")),
                ("name", id.name.as_deref().unwrap_or("")),
                ("kind", id.kind),
                ("version", id.version.as_deref().unwrap_or("")),
                ("variant", os.variant_id.as_deref().unwrap_or("")),
                ("container_os", id.container_os.map_or("", |b| if b { "true" } else { "false" })),
            ],
            1,
        )],
    );
    out.gauge(
        "identity_confidence",
        "How sure hostprint is of the identity, 0 to 100 (the weight of the evidence that held).",
        [(vec![], i64::from(id.confidence))],
    );
    let eol = id.eol.as_deref().and_then(unix_timestamp);
    out.gauge(
        "identity_eol_timestamp_seconds",
        "End of life of the identified OS (vendor support ends), as a Unix timestamp at 00:00 UTC.",
        eol.map(|t| (vec![("id", id.id.as_deref().unwrap_or(""))], t)),
    );

    out.gauge(
        "os_info",
        "The os-release fields of the root, verbatim, with node_exporter's node_os_info labels; always 1.",
        report.facts.os_release.source.as_ref().map(|_| {
            let labels = OS_INFO_LABELS
                .iter()
                .map(|&(label, key)| (label, report.facts.os_release.get(key).unwrap_or("")))
                .collect();
            (labels, 1)
        }),
    );

    let se = &p.security.selinux;
    out.gauge(
        "selinux_enabled",
        "SELinux is enabled in the running kernel, 1 is true, 0 is false.",
        se.enabled.map(|e| (vec![], i64::from(e))),
    );
    out.gauge(
        "selinux_current_mode",
        "Current SELinux enforcement mode: 1 enforcing, 0 permissive, -1 disabled.",
        se.mode
            .as_deref()
            .and_then(selinux_mode)
            .map(|m| (vec![], m)),
    );
    out.gauge(
        "selinux_config_mode",
        "Configured SELinux enforcement mode (SELINUX= in /etc/selinux/config): 1 enforcing, 0 permissive, -1 disabled.",
        se.config_mode
            .as_deref()
            .and_then(selinux_mode)
            .map(|m| (vec![], m)),
    );
    out.gauge(
        "apparmor_enabled",
        "AppArmor is enabled in the running kernel, 1 is true, 0 is false.",
        p.security.apparmor.enabled.map(|e| (vec![], i64::from(e))),
    );

    let sockets: Vec<String> = p
        .runtimes
        .iter()
        .map(|r| format!("/{}", r.socket))
        .collect();
    out.gauge(
        "runtime_socket_info",
        "A container runtime socket found on the root (seen with stat, never connected to); always 1.",
        p.runtimes
            .iter()
            .zip(&sockets)
            .map(|(r, s)| (vec![("runtime", r.id), ("socket", s.as_str())], 1)),
    );
    out.gauge(
        "update_agent_info",
        "An OS update agent found on the root, with its channel and reboot strategy where configured; always 1.",
        p.updates.iter().map(|u| {
            (
                vec![
                    ("agent", u.agent),
                    ("channel", u.channel.as_deref().unwrap_or("")),
                    ("strategy", u.strategy.as_deref().unwrap_or("")),
                ],
                1,
            )
        }),
    );
    out.gauge(
        "update_automatic",
        "Whether an update agent updates the OS by itself, 1 is true, 0 is false (absent when its files do not tell).",
        p.updates
            .iter()
            .filter_map(|u| Some((vec![("agent", u.agent)], i64::from(u.automatic?)))),
    );
    let life = &p.lifecycle;
    out.gauge(
        "reboot_required",
        "An installed update waits for a reboot, 1 is true, 0 is false (absent when no reboot signal is known for this OS).",
        life.reboot_required.map(|r| (vec![], i64::from(r))),
    );
    out.gauge(
        "support_end_timestamp_seconds",
        "First day without vendor support (os-release SUPPORT_END, else the fingerprint's end of life), as a Unix timestamp at 00:00 UTC.",
        life.support_end
            .as_deref()
            .and_then(unix_timestamp)
            .map(|t| (vec![], t)),
    );
    out.gauge(
        "platform_info",
        "A platform found on the root (e.g. dcos) and this node's role in it; always 1.",
        p.platforms.iter().map(|x| {
            (
                vec![
                    ("id", x.id.as_str()),
                    ("name", x.name.as_str()),
                    ("role", x.role.as_deref().unwrap_or("")),
                ],
                1,
            )
        }),
    );
    out.gauge(
        "component_info",
        "A component found installed on the root, or running (--processes): etcd, fleet, kubelet, …; always 1.",
        p.components
            .iter()
            .map(|c| (vec![("id", c.id.as_str()), ("name", c.name.as_str())], 1)),
    );
    out.gauge(
        "platform_eol_timestamp_seconds",
        "End of life of a platform found on the root, as a Unix timestamp (00:00 UTC that day).",
        p.platforms.iter().filter_map(|x| {
            let t = x.eol.as_deref().and_then(unix_timestamp)?;
            Some((vec![("id", x.id.as_str())], t))
        }),
    );
    out.gauge(
        "component_eol_timestamp_seconds",
        "End of life of a component found on the root, as a Unix timestamp (00:00 UTC that day).",
        p.components.iter().filter_map(|c| {
            let t = c.eol.as_deref().and_then(unix_timestamp)?;
            Some((vec![("id", c.id.as_str())], t))
        }),
    );
    out.gauge(
        "component_running",
        "1 when a process of the component runs, 0 when none does (--processes only; absent when not asked or not knowable).",
        p.components.iter().filter_map(|c| {
            Some((vec![("component", c.id.as_str())], i64::from(c.running?)))
        }),
    );
    out.gauge(
        "warnings",
        "Warnings in the profile by code (docs/warnings.md); every code, 0 when it has none.",
        Code::ALL.iter().map(|&code| {
            let count = p.warnings.iter().filter(|w| w.code == code).count();
            (vec![("code", code.as_str())], count as i64)
        }),
    );
    out.text
}

/// node_exporter's (go-selinux's) numbers for an SELinux mode.
fn selinux_mode(mode: &str) -> Option<i64> {
    match mode {
        "enforcing" => Some(1),
        "permissive" => Some(0),
        "disabled" => Some(-1),
        _ => None,
    }
}

/// `YYYY-MM-DD` as seconds since 1970-01-01 00:00 UTC. Rule files are validated with the same
/// `parse_date`, so `None` only for a date that could not have been loaded.
pub fn unix_timestamp(date: &str) -> Option<i64> {
    let (y, m, d) = parse_date(date)?;
    Some(days_from_civil(y, m, d) * 86_400)
}

/// Days since 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's `days_from_civil`):
/// eras of 400 years have a fixed length, and counting years from March puts the leap day last.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Escapes a label value: backslash, double quote and line feed, per the text format.
pub fn escape_label_value(v: &str) -> String {
    escape_help(v).replace('"', "\\\"")
}

/// Escapes HELP text: backslash and line feed (quotes are literal there, unlike in label values).
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// The text being built, one family at a time.
#[derive(Default)]
struct Exposition {
    text: String,
}

type Sample<'a> = (Vec<(&'static str, &'a str)>, i64);

impl Exposition {
    /// One gauge family: HELP, TYPE and its samples. A family without samples is left out entirely, so
    /// an unknown fact is an absent series rather than a header with nothing under it.
    fn gauge<'a>(&mut self, name: &str, help: &str, samples: impl IntoIterator<Item = Sample<'a>>) {
        let mut samples = samples.into_iter().peekable();
        if samples.peek().is_none() {
            return;
        }
        let full = format!("{NAMESPACE}_{name}");
        let _ = writeln!(self.text, "# HELP {full} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {full} gauge");
        for (labels, value) in samples {
            self.text.push_str(&full);
            if !labels.is_empty() {
                self.text.push('{');
                for (i, (k, v)) in labels.iter().enumerate() {
                    if i > 0 {
                        self.text.push(',');
                    }
                    let _ = write!(self.text, "{k}=\"{}\"", escape_label_value(v));
                }
                self.text.push('}');
            }
            let _ = writeln!(self.text, " {value}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_of_known_dates() {
        assert_eq!(unix_timestamp("1970-01-01"), Some(0));
        // CoreOS Container Linux end of life; `date -u -d 2020-05-26 +%s`.
        assert_eq!(unix_timestamp("2020-05-26"), Some(1_590_451_200));
        // Leap day, and the day after it.
        assert_eq!(unix_timestamp("2024-02-29"), Some(1_709_164_800));
        assert_eq!(unix_timestamp("2024-03-01"), Some(1_709_251_200));
        // Century years: 2000 is a leap year, 2100 is not.
        assert_eq!(unix_timestamp("2000-03-01"), Some(951_868_800));
        assert_eq!(unix_timestamp("2100-03-01"), Some(4_107_542_400));
        assert_eq!(unix_timestamp("1969-12-31"), Some(-86_400));
        assert_eq!(unix_timestamp("2020-5-26"), None);
        assert_eq!(unix_timestamp("someday"), None);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label_value(r#"a"b"#), r#"a\"b"#);
        assert_eq!(escape_label_value(r"C:\dir"), r"C:\\dir");
        assert_eq!(escape_label_value("two\nlines"), r"two\nlines");
        assert_eq!(escape_label_value("plain é ✓"), "plain é ✓");
    }

    #[test]
    fn empty_family_is_left_out() {
        let mut out = Exposition::default();
        out.gauge("nothing", "help", std::iter::empty());
        assert_eq!(out.text, "");
        out.gauge("one", "a \\ b\nc", [(vec![("k", "v\"")], 1)]);
        assert_eq!(
            out.text,
            "# HELP hostprint_one a \\\\ b\\nc\n# TYPE hostprint_one gauge\nhostprint_one{k=\"v\\\"\"} 1\n"
        );
    }
}
