//! The `hostprint` binary: parse flags, run the library, print, and map failures to exit codes.
//!
//! Errors go to stderr and name the path and the offending input; the exit codes are documented in
//! `--help` and the README (0 profile produced, 1 run failed, 2 usage or rule error).
//!
//! The entry point is a plain C `main` (`#![no_main]`) rather than std's runtime start: see
//! [`main`] for why and for what it does in std's place.

#![no_main]

use std::io::{IsTerminal, Write};

use anyhow::Context;
use clap::Parser;

use hostprint::cli::{Cli, Command, Format};
use hostprint::output;
use hostprint::profile;
use hostprint::root::Root;
use hostprint::rules::{RuleError, RuleSet, UserRules};
use hostprint::{atomic_write, interval, schema};

/// What went wrong, and so which exit code.
enum Failure {
    Run(anyhow::Error),
    Rules(anyhow::Error),
}

/// The process entry point. std's runtime start (`lang_start`) would first install a stack-overflow
/// handler, which asks glibc for the main thread's stack: glibc opens and scans `/proc/self/maps`
/// with sscanf, ~180K instructions and four syscalls, an eighth of a whole probe (measured: 55 µs per
/// run, static build). hostprint does without that handler — a stack overflow still stops at the
/// kernel's guard page, as a SIGSEGV instead of a message — and does here the two things of the
/// runtime start it relies on: SIGPIPE ignored, so that a closed stdout is an EPIPE error
/// (`hostprint | head` exits 0, see `write_stdout`), and a panic that escapes `run` ends with exit
/// code 101 after the panic hook's message, as std's start would (unwinding out of an `extern "C"`
/// function would abort). Arguments and the environment are read by std as usual (glibc passes them
/// to std's init hook before `main`).
#[unsafe(no_mangle)]
extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions; no handler is involved.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let code = std::panic::catch_unwind(run_cli).unwrap_or(101);
    // std's runtime flushes stdout after main; output is flushed where it is written, this is the
    // same guarantee for anything printed without a newline.
    let _ = std::io::stdout().flush();
    code
}

/// Parses the flags, runs, and maps the outcome to the documented exit code.
fn run_cli() -> std::ffi::c_int {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.interval.is_some());
    match run(&cli) {
        Ok(()) => 0,
        Err(Failure::Run(e)) => {
            eprintln!("hostprint: {e:#}");
            1
        }
        Err(Failure::Rules(e)) => {
            eprintln!("hostprint: {e:#}");
            2
        }
    }
}

/// Logging costs nothing unless asked for: the subscriber (and its filter parser) is only built with
/// `-v` or `RUST_LOG` — or for `--interval`, whose failed rounds must be logged (at `warn`) to be seen.
fn init_logging(verbose: u8, daemon: bool) {
    let env = std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty());
    if verbose == 0 && env.is_none() && !daemon {
        return;
    }
    let filter = env.unwrap_or_else(|| {
        match verbose {
            0 => "hostprint=warn",
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
        tracing::debug!(
            rules = extra.rules.len() + extra.bundle.as_ref().map_or(0, |b| b.len()),
            from = %path.display(),
            "user rules loaded"
        );
        set.add_user(extra);
    }
    Ok(set)
}

/// `--fingerprints` or `fingerprints --check` PATH (a directory or a bundle), with the loader's note
/// (a bundle from another build, read from its sources) on stderr.
fn user_rules(path: &std::path::Path) -> Result<UserRules, Failure> {
    let mut loaded = RuleSet::load_user(path).map_err(|e: RuleError| Failure::Rules(e.into()))?;
    if let Some(note) = loaded.note.take() {
        eprintln!("hostprint: warning: {note}");
    }
    Ok(loaded)
}

/// Every rule of `set`, a compiled bundle's decoded; a bundle rule that does not decode is an error
/// here (listing and checking rules), where a probe only warns about it.
fn every_rule(set: &RuleSet) -> Result<Vec<&hostprint::rules::Fingerprint>, Failure> {
    let all = set.all();
    match all.damaged.is_empty() {
        true => Ok(all.rules),
        false => Err(Failure::Rules(anyhow::anyhow!(all.damaged.join("\n")))),
    }
}

fn run(cli: &Cli) -> Result<(), Failure> {
    match &cli.command {
        Some(Command::Fingerprints {
            check: Some(path), ..
        }) => check_rules(path),
        Some(Command::Fingerprints {
            compile: Some(dir),
            output: Some(out),
            ..
        }) => compile_rules(dir, out),
        Some(Command::Fingerprints { .. }) => fingerprints(cli),
        Some(Command::Record { dir }) => record(cli, dir),
        Some(Command::Schema) => write_stdout(&schema::render()).map_err(Failure::Run),
        None => probe(cli),
    }
}

fn probe(cli: &Cli) -> Result<(), Failure> {
    // The rules live until the process exits (one set per process, shared by every --interval
    // round), so they are never freed: dropping ~1,500 strings one by one cost ~120K instructions
    // (callgrind), a tenth of a probe.
    let set: &'static RuleSet = Box::leak(Box::new(rules(cli)?));
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
        Some(every) => interval::repeat(every, round)
            .map(|_signal| ())
            .map_err(Failure::Run),
    }
}

/// Probes the root and renders the profile in the chosen format.
fn render(cli: &Cli, set: &RuleSet) -> anyhow::Result<String> {
    // The journal is kept only for a trace subscriber, the one reader it has in a probe.
    let root = match tracing::enabled!(tracing::Level::TRACE) {
        true => Root::open(&cli.root)?,
        false => Root::open(&cli.root)?.without_journal(),
    };
    let profile = {
        let _span = tracing::debug_span!("probe", root = %cli.root.display()).entered();
        match cli.explain {
            true => profile::build_explained(&root, set),
            false => profile::build(&root, set),
        }
    };
    if tracing::enabled!(tracing::Level::TRACE) {
        for access in root.journal() {
            tracing::trace!(path = %access.path, op = ?access.op, outcome = %access.outcome, "read");
        }
    }
    Ok(match cli.format {
        Format::Human => {
            let color = cli.output.is_none()
                && std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none();
            output::human::render(&profile, &output::human::Style { color }, cli.explain)
        }
        Format::Json => output::json::render(&profile, cli.pretty),
        Format::Prometheus => output::prometheus::render(&profile),
        Format::Nfd => output::nfd::render(&profile),
    })
}

fn write_stdout(text: &str) -> anyhow::Result<()> {
    output::stdout::write(text).context("writing to stdout")
}

/// `hostprint record DIR`: probe --root as a normal run does and copy what was read into DIR.
fn record(cli: &Cli, dir: &std::path::Path) -> Result<(), Failure> {
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
    write_stdout(&text).map_err(Failure::Run)
}

/// `fingerprints --check PATH`: a rule directory or a compiled bundle.
fn check_rules(path: &std::path::Path) -> Result<(), Failure> {
    let mut set = RuleSet::default();
    set.add_user(user_rules(path)?);
    let count = every_rule(&set)?.len();
    let what = if path.is_dir() {
        "rule file(s)"
    } else {
        "compiled rule(s)"
    };
    let text = format!("{}: {count} {what} valid\n", path.display());
    write_stdout(&text).map_err(Failure::Run)
}

/// `fingerprints --compile DIR --output FILE`: the rules in DIR, validated exactly as `--check` does,
/// written as one bundle that `--fingerprints FILE` loads without parsing TOML.
fn compile_rules(dir: &std::path::Path, out: &std::path::Path) -> Result<(), Failure> {
    let rules =
        RuleSet::load_dir_with_sources(dir).map_err(|e: RuleError| Failure::Rules(e.into()))?;
    let bytes = hostprint::rules::bundle::compile(&rules);
    atomic_write::write(out, &bytes).map_err(|e| Failure::Run(e.into()))?;
    let text = format!(
        "compiled {} rule(s) from {} into {} ({} bytes); load it with --fingerprints {}\n",
        rules.len(),
        dir.display(),
        out.display(),
        bytes.len(),
        out.display()
    );
    write_stdout(&text).map_err(Failure::Run)
}

fn fingerprints(cli: &Cli) -> Result<(), Failure> {
    let set = rules(cli)?;
    let mut rows = every_rule(&set)?;
    rows.sort_by(|a, b| a.kind.cmp(&b.kind).then(a.id.cmp(&b.id)));
    let table: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.id.to_string(),
                r.kind.as_str().to_string(),
                r.name.to_string(),
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
    write_stdout(&out).map_err(Failure::Run)
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
