//! Writes synthetic fingerprint rules for `scripts/bench.sh`: `synthetic_fingerprints DIR [COUNT]`.
//!
//! An example rather than a hostprint subcommand, because it is a benchmark fixture, not a feature; the
//! generator itself is shared with the in-process benchmarks.

#[path = "../benches/support/synthetic.rs"]
mod synthetic;

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(dir), count) = (args.next(), args.next()) else {
        eprintln!("usage: synthetic_fingerprints DIR [COUNT]");
        return std::process::ExitCode::from(2);
    };
    let count = match count.as_deref().map(str::parse).unwrap_or(Ok(500)) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("synthetic_fingerprints: COUNT: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match synthetic::write(std::path::Path::new(&dir), count) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("synthetic_fingerprints: {dir}: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
