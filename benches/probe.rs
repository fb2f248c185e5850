//! In-process benchmarks: what one probe costs once the process is running (`cargo bench`).
//!
//! Whole-process cost (start-up, dynamic loading, peak RSS, the comparison with
//! `systemd-detect-virt`) is `scripts/bench.sh`'s job; this file splits a probe into its parts so a
//! change can be attributed: probing a root (live and every recorded fixture), loading and matching
//! rules (shipped, and with 500 synthetic user rules), parsing host files, and rendering each format.
//! divan's allocation profiler is installed, so every row also says how many allocations it made —
//! the check that reading and matching allocate per line or per rule, never per byte.
//! Numbers and the machine they came from: `benches/README.md`.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use clap::ValueEnum;
use divan::counter::BytesCount;
use divan::{AllocProfiler, Bencher};

use hostprint::cli::Format;
use hostprint::facts::{self, Facts};
use hostprint::output;
use hostprint::profile::{self, Report};
use hostprint::root::Root;
use hostprint::rules::eval::evaluate;
use hostprint::rules::RuleSet;

#[path = "support/synthetic.rs"]
mod synthetic;

#[global_allocator]
static ALLOC: AllocProfiler = AllocProfiler::system();

/// How many synthetic user rules the "large rule set" rows load.
const SYNTHETIC_RULES: usize = 500;

fn main() {
    divan::main();
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Every recorded root under `fixtures/*/root`, found at run time: the corpus grows without this file
/// changing.
fn fixtures() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|e| e.path().join("root").is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn fixture_root(name: &str) -> PathBuf {
    fixtures_dir().join(name).join("root")
}

static SHIPPED: LazyLock<RuleSet> =
    LazyLock::new(|| RuleSet::embedded().expect("shipped rules are valid"));

/// The synthetic rules on disk (written once per bench run), as `--fingerprints DIR` would see them.
static SYNTHETIC_DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("a temporary directory");
    synthetic::write(dir.path(), SYNTHETIC_RULES).expect("writing synthetic rules");
    dir
});

/// Shipped rules plus the synthetic ones, merged as `main.rs` merges `--fingerprints`.
static WITH_SYNTHETIC: LazyLock<RuleSet> = LazyLock::new(|| {
    let mut set = SHIPPED.clone();
    set.extend(RuleSet::load(SYNTHETIC_DIR.path()).expect("synthetic rules are valid"));
    set
});

/// Which rule set a row uses.
#[derive(Clone, Copy, Debug)]
enum Rules {
    Shipped,
    /// 500 synthetic user rules, from TOML files.
    With500Synthetic,
}

impl Rules {
    fn set(self) -> &'static RuleSet {
        match self {
            Rules::Shipped => &SHIPPED,
            Rules::With500Synthetic => &WITH_SYNTHETIC,
        }
    }
}

const RULE_SETS: [Rules; 2] = [Rules::Shipped, Rules::With500Synthetic];

/// A root as the CLI opens it for a probe: without the journal, which only `record`, tests and
/// trace logging read.
fn open(dir: &Path) -> Root {
    Root::open(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .without_journal()
}

/// Probe + identify: open the root, run every probe, match every rule, build the profile — what the
/// binary does between parsing its flags and printing.
mod probe {
    use super::*;

    #[divan::bench(args = RULE_SETS)]
    fn live(bencher: Bencher, rules: Rules) {
        let set = rules.set();
        bencher.bench(|| profile::build(&open(Path::new("/")), set));
    }

    #[divan::bench(args = fixtures())]
    fn fixture(bencher: Bencher, name: &str) {
        let dir = fixture_root(name);
        bencher.bench(|| profile::build(&open(&dir), &SHIPPED));
    }
}

/// The rules alone: loading them, and matching them against facts already gathered.
mod rules {
    use super::*;

    /// The shipped rules, as every run loads them: parse and validate the embedded TOML.
    #[divan::bench]
    fn load_shipped() -> RuleSet {
        RuleSet::embedded().expect("shipped rules are valid")
    }

    /// 500 user rule files from a directory (`--fingerprints DIR`): read, parse, validate.
    #[divan::bench]
    fn load_500_synthetic(bencher: Bencher) {
        let dir = SYNTHETIC_DIR.path();
        bencher.bench(|| RuleSet::load(dir).expect("synthetic rules are valid"));
    }

    /// Facts of the live host, gathered for the paths `rules` asks about.
    fn live_facts(rules: Rules) -> Facts {
        facts::collect(&open(Path::new("/")), &rules.set().wanted())
    }

    /// Matching only: every rule evaluated against the live host's facts.
    #[divan::bench(args = RULE_SETS)]
    fn match_live(bencher: Bencher, rules: Rules) {
        let facts = live_facts(rules);
        let set = rules.set();
        bencher.bench(|| {
            set.rules
                .iter()
                .map(|r| evaluate(r, &facts))
                .filter(|e| e.candidate)
                .count()
        });
    }

    /// Probing only, with the extra paths each rule set asks about.
    #[divan::bench(args = RULE_SETS)]
    fn collect_live(rules: Rules) -> Facts {
        live_facts(rules)
    }
}

/// The pure parsers on realistic host files, with a byte counter: their allocation count per call
/// must follow lines, not bytes.
mod parse {
    use super::*;
    use hostprint::facts::{mounts, os_release};

    /// An os-release with the usual keys, quoting styles and comments, repeated to `lines` lines.
    fn os_release_text(lines: usize) -> String {
        const SAMPLE: &[&str] = &[
            "NAME=\"Flatcar Container Linux by Kinvolk\"",
            "ID=flatcar",
            "ID_LIKE=coreos",
            "VERSION=3139.2.0",
            "VERSION_ID=3139.2.0",
            "BUILD_ID=2022-04-05-1803",
            "SYSEXT_LEVEL=1.0",
            "PRETTY_NAME='Flatcar Container Linux by Kinvolk 3139.2.0 (Oklo)'",
            "# a comment",
            "HOME_URL=\"https://flatcar-linux.org/\"",
        ];
        (0..lines)
            .map(|i| SAMPLE[i % SAMPLE.len()])
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A busy node's mount table: `lines` container overlay mounts under a few system ones.
    fn mountinfo_text(lines: usize) -> String {
        let mut text = String::from(
            "22 1 253:9 / / rw,relatime shared:1 - ext4 /dev/vda9 rw\n\
             23 22 253:3 / /usr ro,relatime shared:2 - ext4 /dev/mapper/usr ro\n\
             30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw\n",
        );
        for i in 0..lines {
            text.push_str(&format!(
                "{} 22 0:{} / /run/containerd/io.containerd.runtime.v2.task/k8s.io/{i:064x}/rootfs \
                 rw,relatime shared:{} - overlay overlay rw,lowerdir=/var/lib/containerd/l/{i},\
                 upperdir=/var/lib/containerd/u/{i},workdir=/var/lib/containerd/w/{i}\n",
                100 + i,
                60 + i,
                100 + i
            ));
        }
        text
    }

    /// One parser over one text, counting its bytes (divan then reports throughput).
    fn bench_parser<T>(bencher: Bencher, text: &str, parse: fn(&str) -> T) {
        bencher
            .counter(BytesCount::of_str(text))
            .bench(|| parse(text));
    }

    #[divan::bench(args = [10, 100, 1000])]
    fn os_release(bencher: Bencher, lines: usize) {
        bench_parser(bencher, &os_release_text(lines), os_release::parse);
    }

    #[divan::bench(args = [10, 100, 1000])]
    fn mountinfo(bencher: Bencher, lines: usize) {
        bench_parser(bencher, &mountinfo_text(lines), mounts::parse);
    }
}

/// Rendering a profile in each output format `hostprint::cli::Format` offers.
mod render {
    use super::*;

    /// The format's text, as `main.rs` renders it to a pipe (no colour). The match is exhaustive on
    /// purpose: a new format fails to compile here until it is benchmarked too.
    fn render(report: &Report, format: Format) -> String {
        match format {
            Format::Human => {
                output::human::render(report, &output::human::Style { color: false }, false)
            }
            Format::Json => output::json::render(&report.profile, false),
            Format::Prometheus => output::prometheus::render(report),
            Format::Nfd => output::nfd::render(&report.profile),
        }
    }

    fn formats() -> impl Iterator<Item = String> {
        Format::value_variants().iter().map(|f| {
            f.to_possible_value()
                .expect("every format has a name")
                .get_name()
                .to_string()
        })
    }

    fn format_named(name: &str) -> Format {
        Format::from_str(name, false).expect("a listed format")
    }

    /// The live host's profile, rendered.
    #[divan::bench(args = formats())]
    fn live(bencher: Bencher, name: &str) {
        let format = format_named(name);
        let profile = profile::build(&open(Path::new("/")), &SHIPPED);
        bencher.bench(|| render(&profile, format));
    }

    /// `--explain` (human), the largest output: every rule, every signal.
    #[divan::bench]
    fn live_human_explain(bencher: Bencher) {
        let profile = profile::build(&open(Path::new("/")), &SHIPPED);
        let style = output::human::Style { color: false };
        bencher.bench(|| output::human::render(&profile, &style, true));
    }
}
