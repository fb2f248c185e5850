//! The profile for a person: readable in ten seconds at 3 a.m.
//!
//! Identity and confidence come first (the question asked), then one line per characteristic, then
//! the evidence and the warnings. `--explain` appends every rule's signals, held or not, and why.
//! Colour only when writing to a terminal and `NO_COLOR` is unset (no-color.org). Host text (names,
//! paths, the hostname, rule texts) is never trusted to the terminal: the finished text is escaped
//! as a whole, then `paint`'s colour codes are put in, so they are the only escape sequences.
//!
//! Unlike the machine formats, this one may look at the clock: a support end in the past reads
//! "ended". Today is `SOURCE_DATE_EPOCH` when set (reproducible-builds.org), else the system clock, so
//! that golden files stay stable.

use std::fmt::Write;
use std::sync::OnceLock;

use crate::output::prometheus::unix_timestamp;
use crate::profile::{Lifecycle, Os, Platform, Profile, Report};
use crate::redact::escape_lines;
use crate::rules::eval::Section;

pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            let esc = esc();
            format!("{esc}[{code}m{text}{esc}[0m")
        } else {
            text.to_string()
        }
    }
    fn bold(&self, t: &str) -> String {
        self.paint("1", t)
    }
    fn dim(&self, t: &str) -> String {
        self.paint("2", t)
    }
    fn green(&self, t: &str) -> String {
        self.paint("32", t)
    }
    fn yellow(&self, t: &str) -> String {
        self.paint("33", t)
    }
    fn red(&self, t: &str) -> String {
        self.paint("31", t)
    }
}

/// What `paint` writes for ESC until [`finish`]: random per process, so host text cannot forge it.
fn esc() -> &'static str {
    static ESC: OnceLock<String> = OnceLock::new();
    ESC.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let key = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        format!("\u{e000}{key:016x}\u{e000}")
    })
}

/// Escapes every control character but newlines (all host text is in here), then turns `paint`'s
/// stand-ins into ESC.
fn finish(out: &str) -> String {
    let parts: Vec<_> = out.split(esc()).map(escape_lines).collect();
    parts.join("\x1b")
}

fn or_unknown(v: Option<&str>) -> &str {
    v.unwrap_or("unknown")
}

fn yes_no(v: Option<bool>, yes: &str, no: &str) -> String {
    match v {
        Some(true) => yes.to_string(),
        Some(false) => no.to_string(),
        None => "unknown".to_string(),
    }
}

pub fn render(report: &Report, style: &Style, explain: bool) -> String {
    let p = &report.profile;
    let mut out = String::new();
    identity(&mut out, p, style);
    for platform in &p.platforms {
        line(
            &mut out,
            style,
            "platform",
            &self::platform(platform, style),
        );
    }
    if !p.components.is_empty() {
        line(&mut out, style, "components", &components(p, style));
    }
    line(&mut out, style, "updates", &updates(p));
    if let Some(reboot) = reboot(&p.lifecycle, style) {
        line(&mut out, style, "reboot", &reboot);
    }
    if let Some(image) = image(&p.lifecycle) {
        line(&mut out, style, "image", &image);
    }
    line(&mut out, style, "init", &init(p, style));
    let kernel = or_unknown(p.kernel.release.as_deref());
    line(&mut out, style, "kernel", kernel);
    line(&mut out, style, "security", &security(p));
    line(&mut out, style, "runtimes", &runtimes(p));
    line(&mut out, style, "filesystem", &filesystem(p));
    let environment = format!(
        "container {}, virtualization {}",
        or_unknown(p.environment.container.as_deref()),
        or_unknown(p.environment.virtualization.as_deref())
    );
    line(&mut out, style, "environment", &environment);
    line(&mut out, style, "host", &host(p));
    evidence(&mut out, p, style);
    warnings(&mut out, p, style);
    if explain {
        explanation(&mut out, report, style);
    }
    finish(&out)
}

/// The headline (id, version, name, kind, confidence), lineage, lifecycle and os-release.
fn identity(out: &mut String, p: &Profile, style: &Style) {
    let id = &p.identity;
    let version = id.version.as_deref().unwrap_or("");
    let headline = match &id.id {
        Some(i) => format!("{i} {version}").trim_end().to_string(),
        None => "unknown OS".to_string(),
    };
    let kind = match id.kind {
        "container-os" => "container OS",
        "immutable-desktop" => "immutable desktop OS, not a container OS",
        "general-purpose" => "general-purpose, not a container OS",
        _ if p.os.source.is_some() => "os-release has no ID and no rule matched",
        _ => "no os-release and no rule matched",
    };
    let name = id.name.as_deref().unwrap_or("");
    let _ = writeln!(
        out,
        "{}  {}  ({kind})  confidence {}",
        style.bold(&headline),
        name,
        id.confidence
    );
    if !id.lineage.is_empty() {
        line(out, style, "lineage", &id.lineage.join(" → "));
    }
    let life = &p.lifecycle;
    if life.support_end.is_some() || id.successor.is_some() {
        let mut s = String::new();
        if let Some(end) = &life.support_end {
            let source = style.dim(&format!("[{}]", life.support_end_source.unwrap_or("")));
            match (unix_timestamp(end), today()) {
                (Some(t), Some(now)) if t <= now => {
                    let ended = style.red(&format!("support ended {end}"));
                    let _ = write!(s, "{ended} {source}");
                }
                _ => {
                    let _ = write!(s, "supported until {end} {source}");
                }
            }
        }
        if let Some(succ) = &id.successor {
            if !s.is_empty() {
                s.push_str("; ");
            }
            let _ = write!(s, "succeeded by {succ}");
        }
        line(out, style, "lifecycle", &s);
    }
    let text = match &p.os.source {
        Some(src) => format!("{}  {}", os_release(&p.os), style.dim(&format!("[{src}]"))),
        None => "none found".to_string(),
    };
    line(out, style, "os-release", &text);
}

/// What an os-release that was found says of itself: `PRETTY_NAME`, else `NAME` or `ID` with
/// `VERSION_ID` (what it lacks is in the warnings).
fn os_release(os: &Os) -> String {
    if let Some(pretty) = &os.pretty_name {
        return pretty.clone();
    }
    let name = os.name.as_deref().or(os.id.as_deref());
    match (name, os.version_id.as_deref()) {
        (Some(name), Some(version)) => format!("{name} {version}"),
        (Some(name), None) => name.to_string(),
        (None, _) => "no ID, NAME or PRETTY_NAME".to_string(),
    }
}

fn platform(platform: &Platform, style: &Style) -> String {
    let role = platform
        .role
        .as_deref()
        .map(|r| format!(" (role {r})"))
        .unwrap_or_default();
    let eol = platform
        .eol
        .as_deref()
        .map(|d| format!(", {}", style.red(&format!("end of life {d}"))))
        .unwrap_or_default();
    format!("{}{role} — {}{eol}", platform.id, platform.name)
}

fn components(p: &Profile, style: &Style) -> String {
    let ids: Vec<_> = p
        .components
        .iter()
        .map(|c| {
            let mut s = c.id.clone();
            if let Some(d) = &c.eol {
                let _ = write!(s, " ({})", style.red(&format!("end of life {d}")));
            }
            match (c.running, c.pids.as_slice()) {
                (Some(true), [pid]) => {
                    let _ = write!(s, " {} (pid {pid})", style.green("running"));
                }
                (Some(true), pids) => {
                    let pids: Vec<_> = pids.iter().map(u32::to_string).collect();
                    let _ = write!(s, " {} (pids {})", style.green("running"), pids.join(", "));
                }
                (Some(false), _) => s.push_str(" not running"),
                (None, _) => {}
            }
            s
        })
        .collect();
    ids.join(", ")
}

fn updates(p: &Profile) -> String {
    let updates: Vec<String> = p
        .updates
        .iter()
        .map(|u| {
            let mut detail = Vec::new();
            if let Some(c) = &u.channel {
                detail.push(format!("channel {c}"));
            }
            detail.push(format!("automatic {}", yes_no(u.automatic, "on", "off")));
            if let Some(st) = &u.strategy {
                detail.push(format!("strategy {st}"));
            }
            format!("{} ({})", u.agent, detail.join(", "))
        })
        .collect();
    match updates.is_empty() {
        true => "none found".into(),
        false => updates.join(", "),
    }
}

/// Whether a reboot is pending and the file that says so; nothing when no signal is known.
fn reboot(life: &Lifecycle, style: &Style) -> Option<String> {
    Some(match (life.reboot_required?, &life.reboot_reason) {
        (true, Some(why)) => {
            let why = style.dim(&format!("[/{why}]"));
            format!("{}  {why}", style.yellow("required"))
        }
        (true, None) => style.yellow("required"),
        (false, _) => "not pending".to_string(),
    })
}

/// The image kind, then what it is deployed from and its version, where known.
fn image(life: &Lifecycle) -> Option<String> {
    let mut image = life.image.kind?.to_string();
    for part in [&life.image.reference, &life.image.version]
        .into_iter()
        .flatten()
    {
        let _ = write!(image, " {part}");
    }
    Some(image)
}

/// Today at 00:00 UTC as a Unix timestamp: `SOURCE_DATE_EPOCH` when set, else the clock.
fn today() -> Option<i64> {
    let now = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v.trim().parse::<i64>().ok()?,
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs() as i64,
    };
    Some(now - now.rem_euclid(86_400))
}

fn init(p: &Profile, style: &Style) -> String {
    let pid1 = &p.init.pid1;
    let mut init = or_unknown(p.init.system).to_string();
    if pid1.comm.is_some() || pid1.exe.is_some() {
        let exe = pid1.exe.as_deref().map(|e| format!(" {e}"));
        let comm = pid1.comm.as_deref().unwrap_or("?");
        let detail = format!("(pid 1: {comm}{})", exe.unwrap_or_default());
        let _ = write!(init, "  {}", style.dim(&detail));
    }
    init
}

fn security(p: &Profile) -> String {
    let se = &p.security.selinux;
    let mut selinux = match (se.enabled, se.mode.as_deref()) {
        (Some(true), Some(mode)) => format!("SELinux {mode}"),
        (Some(true), None) => "SELinux on".into(),
        (Some(false), _) => "SELinux off".into(),
        (None, _) => "SELinux unknown".into(),
    };
    let mut detail = Vec::new();
    if let Some(c) = &se.config_mode {
        detail.push(format!("config {c}"));
    }
    if let Some(pol) = &se.policy {
        detail.push(format!("policy {pol}"));
    }
    if !detail.is_empty() {
        let _ = write!(selinux, " ({})", detail.join(", "));
    }
    let apparmor = yes_no(p.security.apparmor.enabled, "on", "off");
    let _ = write!(selinux, "; AppArmor {apparmor}");
    selinux
}

fn runtimes(p: &Profile) -> String {
    let runtimes: Vec<_> = p
        .runtimes
        .iter()
        .map(|r| format!("{} /{}", r.id, r.socket))
        .collect();
    match runtimes.is_empty() {
        true => "no sockets found".into(),
        false => runtimes.join(", "),
    }
}

fn filesystem(p: &Profile) -> String {
    let fs = &p.filesystem;
    let mut line = format!(
        "/ {}, /usr {}",
        yes_no(fs.root_read_only, "read-only", "read-write"),
        yes_no(fs.usr_read_only, "read-only", "read-write")
    );
    if fs.ostree_booted == Some(true) {
        line.push_str(", booted from OSTree");
    }
    if let Some(cg) = p.environment.cgroup {
        let _ = write!(line, ", cgroup {cg}");
    }
    line
}

fn host(p: &Profile) -> String {
    let h = &p.host;
    let mut host = or_unknown(h.hostname.as_deref()).to_string();
    if let Some(a) = &h.architecture {
        let _ = write!(host, ", {a}");
    }
    if let Some(c) = h.cpus {
        let _ = write!(host, ", {c} CPUs");
    }
    if let Some(m) = h.memory_bytes {
        let _ = write!(host, ", {:.1} GiB", m as f64 / (1u64 << 30) as f64);
    }
    host
}

/// The identity's evidence, and the closest rules when it is not a container OS.
fn evidence(out: &mut String, p: &Profile, style: &Style) {
    let id = &p.identity;
    if !id.evidence.is_empty() {
        let _ = writeln!(out, "\n{}", style.bold("evidence"));
        for e in &id.evidence {
            let detail = format!("[{}, {}, +{}]", e.condition, e.signal, e.weight);
            let _ = writeln!(
                out,
                "  {} {}  {}",
                style.green("+"),
                e.why,
                style.dim(&detail)
            );
        }
    }
    if id.kind != "container-os" && !id.closest.is_empty() {
        let closest: Vec<_> = id
            .closest
            .iter()
            .map(|c| format!("{} ({})", c.id, c.confidence))
            .collect();
        let text = format!("closest rules: {}", closest.join(", "));
        let _ = writeln!(out, "  {}", style.dim(&text));
    }
}

fn warnings(out: &mut String, p: &Profile, style: &Style) {
    if p.warnings.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{}", style.bold("warnings"));
    for w in &p.warnings {
        let at = w
            .path
            .as_deref()
            .map(|p| format!("/{p}: "))
            .unwrap_or_default();
        let _ = writeln!(out, "  {} {at}{}", style.yellow("!"), w.message);
    }
}

/// `--explain`: every rule with every signal, held or not, then the environment's evidence.
fn explanation(out: &mut String, report: &Report, style: &Style) {
    let _ = writeln!(out, "\n{}", style.bold("explain: every rule, every signal"));
    let legend = "+ held   - a require that did not hold   · a support or exclude that did not hold   x an exclude that held";
    let _ = writeln!(out, "  {}", style.dim(legend));
    for r in &report.explanation {
        let verdict = match r.candidate {
            true => style.green(&format!("matched, score {}", r.score)),
            false => format!("not matched, weight held {}", r.score),
        };
        let role = r.role.map(|x| format!(", role {x}")).unwrap_or_default();
        let (id, kind) = (style.bold(&r.rule.id), r.rule.kind.as_str());
        let _ = writeln!(out, "  {id} [{kind}] {verdict}{role}");
        for o in r.outcomes() {
            let mark = match (o.section, o.held) {
                (Section::Exclude, true) => style.red("x"),
                (Section::Exclude, false) => style.dim("·"),
                (_, true) => style.green("+"),
                (Section::Require, false) => style.red("-"),
                (Section::Support, false) => style.dim("·"),
            };
            let condition = style.dim(&format!("[{}]", o.condition));
            let section = o.section.as_str();
            let _ = writeln!(out, "      {mark} {section:<7} {}  {condition}", o.why);
        }
    }
    let env = &report.profile.environment.evidence;
    if !env.is_empty() {
        let _ = writeln!(out, "  {} {}", style.bold("environment"), env.join("; "));
    }
}

fn line(out: &mut String, style: &Style, label: &str, value: &str) {
    let _ = writeln!(out, "  {}  {value}", style.dim(&format!("{label:<11}")));
}
