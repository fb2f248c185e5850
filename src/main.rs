//! The `hostprint` binary: parse flags, run the library, print, and map failures to exit codes.
//!
//! Errors go to stderr and name the path and the offending input; the exit codes are documented in
//! `--help` and the README (0 profile produced, 1 run failed, 2 usage or rule error).

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use hostprint::cli::{Cli, Command, Format};
use hostprint::output;
use hostprint::processes;
use hostprint::profile;
use hostprint::redact::{escape_control, escape_lines};
use hostprint::root::Root;
use hostprint::rules::RuleSet;
use hostprint::{atomic_write, interval, schema};

/// What went wrong, and so which exit code.
enum Failure {
    Run(anyhow::Error),
    Rules(anyhow::Error),
    Usage(String),
}

fn main() -> ExitCode {
    let cli = Cli::parse_strict();
    init_logging(cli.verbose, cli.interval.is_some());
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Run(e)) => fail(1, &format!("{e:#}")),
        Err(Failure::Rules(e)) => fail(2, &format!("{e:#}")),
        Err(Failure::Usage(why)) => fail(2, &why),
    }
}

/// Prints an error: it may quote host paths and rule files, so control characters are escaped.
fn fail(code: u8, why: &str) -> ExitCode {
    // One line per error: every error of every rule file is reported.
    for line in why.lines() {
        eprintln!("hostprint: {}", escape_lines(line));
    }
    ExitCode::from(code)
}

/// Logging costs nothing unless asked for: the subscriber (and its filter parser) is only built with
/// `-v` or `RUST_LOG` — or for `--interval`, whose start, failed rounds, recovery and signals are
/// logged (at `info`) to be seen.
fn init_logging(verbose: u8, daemon: bool) {
    let env = std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty());
    if verbose == 0 && env.is_none() && !daemon {
        return;
    }
    let filter = env.unwrap_or_else(|| {
        match verbose {
            0 => "hostprint=info",
            1 => "hostprint=debug",
            _ => "hostprint=trace",
        }
        .to_string()
    });
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        // Escape codes only for a person at a terminal, not in kubectl logs or the journal.
        .with_ansi(std::io::stderr().is_terminal())
        // On a failed write the subscriber would report it with eprintln!, which panics when stderr
        // itself is gone (a closed pipe, a restarted journald): an --interval daemon must outlive its
        // log reader, so a lost log line stays lost.
        .log_internal_errors(false)
        .with_target(false)
        .without_time()
        .init();
}

fn rules(cli: &Cli) -> Result<RuleSet, Failure> {
    let mut set = RuleSet::embedded()
        .context("shipped fingerprint rules are invalid")
        .map_err(Failure::Rules)?;
    if let Some(path) = &cli.fingerprints {
        let extra = user_rules(path)?;
        tracing::debug!(rules = extra.len(), from = %path.display(), "user rules loaded");
        set.extend(extra);
    }
    Ok(set)
}

fn user_rules(path: &Path) -> Result<Vec<hostprint::rules::Fingerprint>, Failure> {
    RuleSet::load(path).map_err(|e| Failure::Rules(e.into()))
}

fn run(cli: &Cli) -> Result<(), Failure> {
    match &cli.command {
        Some(Command::Fingerprints { check: Some(dir) }) => check_rules(dir),
        Some(Command::Fingerprints { check: None }) => fingerprints(cli),
        Some(Command::Record { dir }) => record(cli, dir),
        Some(Command::Schema) => write_stdout(&schema::render()).map_err(Failure::Run),
        None => probe(cli),
    }
}

fn probe(cli: &Cli) -> Result<(), Failure> {
    let set = &rules(cli)?;
    if cli.processes {
        let root = Root::open(&cli.root).map_err(|e| Failure::Run(e.into()))?;
        if let Some(why) = processes::refusal(&root) {
            return Err(Failure::Usage(why));
        }
    }
    let Some(path) = &cli.output else {
        let text = render(cli, set).map_err(Failure::Run)?;
        return write_stdout(&text).map_err(Failure::Run);
    };
    // One round: a fresh Root every time, so nothing read in one round lingers into the next.
    let round = || -> anyhow::Result<()> {
        let text = render(cli, set)?;
        Ok(atomic_write::write(path, text.as_bytes())?)
    };
    match cli.interval {
        None => round().map_err(Failure::Run),
        Some(every) => {
            let every_text = humantime::format_duration(every);
            let (out, root) = (path.display(), cli.root.display());
            tracing::info!("agent started: every {every_text}, output {out}, root {root}");
            interval::repeat(every, round)
                .map(|_signal| ())
                .map_err(Failure::Run)
        }
    }
}

/// Probes the root and renders the profile in the chosen format.
fn render(cli: &Cli, set: &RuleSet) -> anyhow::Result<String> {
    // The journal is kept only for a trace subscriber, the one reader it has in a probe.
    let root = match tracing::enabled!(tracing::Level::TRACE) {
        true => Root::open(&cli.root)?,
        false => Root::open(&cli.root)?.without_journal(),
    };
    let mut report = {
        let _span = tracing::debug_span!("probe", root = %cli.root.display()).entered();
        profile::build(&root, set)
    };
    // `probe` refused a root whose processes are not ours to see.
    if cli.processes {
        processes::mark(&mut report.profile.components, &processes::scan(), set);
    }
    if tracing::enabled!(tracing::Level::TRACE) {
        for access in root.journal() {
            // tracing escapes ESC, BEL and C1 itself, not CR or newlines: a file name may hold them.
            let path = escape_control(&access.path);
            tracing::trace!(path = %path, op = ?access.op, outcome = %access.outcome, "read");
        }
    }
    Ok(match cli.format {
        Format::Human => {
            let color = cli.output.is_none()
                && std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none();
            output::human::render(&report, &output::human::Style { color }, cli.explain)
        }
        Format::Json => output::json::render(&report.profile, cli.pretty),
        Format::Prometheus => output::prometheus::render(&report),
        Format::Nfd => output::nfd::render(&report.profile),
    })
}

fn write_stdout(text: &str) -> anyhow::Result<()> {
    output::stdout::write(text).context("writing to stdout")
}

/// `hostprint record DIR`: probe --root as a normal run does and copy what was read into DIR.
fn record(cli: &Cli, dir: &Path) -> Result<(), Failure> {
    let set = rules(cli)?;
    let summary = hostprint::record::record(&cli.root, &set, dir)
        .with_context(|| format!("record {} into {}", cli.root.display(), dir.display()))
        .map_err(Failure::Run)?;
    let text = format!(
        "recorded {} into {}\n{summary}replay: hostprint --root {}\n",
        cli.root.display(),
        dir.display(),
        dir.display()
    );
    write_stdout(&escape_lines(&text)).map_err(Failure::Run)
}

/// `fingerprints --check PATH`.
fn check_rules(path: &Path) -> Result<(), Failure> {
    let count = user_rules(path)?.len();
    let text = format!("{}: {count} rule file(s) valid\n", path.display());
    write_stdout(&escape_lines(&text)).map_err(Failure::Run)
}

fn fingerprints(cli: &Cli) -> Result<(), Failure> {
    let set = rules(cli)?;
    let mut rows: Vec<_> = set.rules.iter().collect();
    rows.sort_by(|a, b| a.kind.cmp(&b.kind).then(a.id.cmp(&b.id)));
    let table: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.id.clone(),
                r.kind.as_str().to_string(),
                r.name.clone(),
                if r.lineage.is_empty() {
                    "-".to_string()
                } else {
                    r.lineage.join(",")
                },
                r.eol.as_deref().unwrap_or("-").to_string(),
                r.successor.as_deref().unwrap_or("-").to_string(),
            ]
        })
        .collect();
    let out = columns(
        ["ID", "KIND", "NAME", "LINEAGE", "EOL", "SUCCESSOR"].map(String::from),
        &table,
    );
    write_stdout(&escape_lines(&out)).map_err(Failure::Run)
}

/// Left-aligned columns, each as wide as its widest cell (names such as "Red Hat Enterprise Linux
/// Atomic Host" would break fixed widths).
fn columns<const N: usize>(header: [String; N], rows: &[[String; N]]) -> String {
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
