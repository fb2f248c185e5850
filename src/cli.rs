//! Command-line interface: flags, subcommands and exit codes.
//!
//! Kept apart from `main.rs` so tests and docs can see the whole surface in one place.

use std::path::PathBuf;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

pub const EXIT_CODES: &str = "\
Exit codes:
  0  a profile was produced (also when the OS is unknown); --interval stopped by SIGTERM/SIGINT
  1  the run failed (root missing, not a directory, unreadable, or with none of etc/ usr/ proc/;
     output not writable; a first --interval round)
  2  usage error (also --processes for a root whose processes are not ours to see) or invalid
     fingerprint file";

/// The top-level flags are the probe's; `--root`, `--fingerprints` and `-v` may also be given to
/// the subcommands that use them ([`Cli::parse_strict`] refuses the rest).
#[derive(Debug, Parser)]
#[command(
    name = "hostprint",
    version,
    about = "Tells which container OS a Linux node runs and what it is made of, from its files alone.",
    long_about = "Tells which container OS a Linux node runs and what it is made of, from its files \
                  alone: os-release, PID 1, update tooling, SELinux/AppArmor, runtime sockets, mounts. \
                  Reads only; runs no subprocess; opens no network connection.",
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Root of the host to probe: `/` for this machine, a mounted host (`/host` in a DaemonSet) or a
    /// recorded fixture. Symlinks resolve inside it, as in a chroot.
    #[arg(long, value_name = "DIR", default_value = "/", global = true)]
    pub root: PathBuf,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,

    /// Indent JSON output.
    #[arg(long)]
    pub pretty: bool,

    /// Also load the fingerprint rules in PATH (a *.toml file, or a directory of them); a rule with a
    /// shipped id replaces it.
    #[arg(long, value_name = "PATH", global = true)]
    pub fingerprints: Option<PathBuf>,

    /// Show every rule's signals, held or not, and why (human format).
    #[arg(long)]
    pub explain: bool,

    /// Also tell which known components are running (etcd, kubelet, k3s, containerd, update agents,
    /// …) from this machine's process table. Only for the live root, or a host mounted into a pod
    /// that shares its PID namespace (hostPID: true); refused (exit 2) for any other root.
    #[arg(long)]
    pub processes: bool,

    /// Write to FILE instead of stdout, atomically (temporary file in the same directory, then rename)
    /// and mode 0644: for node_exporter's textfile directory or NFD's features.d.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Probe again every DURATION (30s, 5m, 1h; from 1s to 365d) and rewrite --output, until SIGTERM
    /// or SIGINT (exit 0); SIGHUP probes at once and keeps going. A failed first round exits 1; a
    /// later one is logged and the last good file stays.
    #[arg(long, value_name = "DURATION", requires = "output", value_parser = crate::interval::parse_duration)]
    pub interval: Option<Duration>,

    /// Log each probe and rule decision to stderr (-v debug, -vv trace); RUST_LOG also works.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the fingerprint rules in force, or check rule files.
    Fingerprints {
        /// Validate the rule file PATH, or the *.toml rule files in the directory PATH (every error
        /// is named file:line; exit 2 if any is invalid).
        #[arg(long, value_name = "PATH")]
        check: Option<PathBuf>,
    },
    /// Copy what the probes read from --root into DIR (never secrets), plus a manifest of what git
    /// cannot hold, so that `hostprint --root DIR` replays the same profile. DIR must be new or
    /// empty.
    Record {
        /// Where to write the recorded root.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Print the JSON Schema of `--format json`.
    Schema,
}

impl Cli {
    /// Parses the command line, exiting with a usage error (2) on a bad one: clap accepts the probe's
    /// flags before a subcommand's name, and the global ones after it, so a flag the subcommand does
    /// not use is refused here instead of being silently ignored.
    pub fn parse_strict() -> Cli {
        let mut cmd = Cli::command();
        let matches = cmd.get_matches_mut();
        let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        let Some((sub, uses)) = cli.command.as_ref().map(Command::uses) else {
            return cli;
        };
        let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
        let flags = cmd.get_arguments().map(|a| a.get_id().as_str());
        let unused = flags
            .filter(|id| given(id) && !uses.contains(id))
            .map(str::to_string)
            .next();
        if let Some(id) = unused {
            let help = sub.split(' ').next().unwrap_or(sub);
            let msg = format!("--{id} does not apply to `{sub}` (see `hostprint {help} --help`)");
            cmd.error(ErrorKind::ArgumentConflict, msg).exit();
        }
        cli
    }
}

impl Command {
    /// The subcommand as typed, and the top-level flags it uses.
    fn uses(&self) -> (&'static str, &'static [&'static str]) {
        match self {
            Command::Fingerprints { check: Some(_) } => ("fingerprints --check", &["verbose"]),
            Command::Fingerprints { check: None } => ("fingerprints", &["verbose", "fingerprints"]),
            Command::Record { .. } => ("record", &["verbose", "root", "fingerprints"]),
            Command::Schema => ("schema", &["verbose"]),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A profile for a person.
    Human,
    /// One JSON object (schema_version 1).
    Json,
    /// Prometheus text exposition (hostprint_* gauges) for node_exporter's textfile collector.
    Prometheus,
    /// A Node Feature Discovery feature file (features.d): node labels for scheduling.
    Nfd,
}
