//! Synthetic fingerprint rules, for measuring what a large user rule set costs.
//!
//! One generator serves both the in-process benchmarks (`benches/probe.rs`) and the whole-process
//! script (`scripts/bench.sh`, through `examples/synthetic_fingerprints.rs`), so that the two measure
//! the same shape. Each rule looks like a real container-OS file: an os-release `require` and a few
//! `support` paths, every id and path distinct, so that none is shared or cached by another.

use std::fmt::Write;
use std::path::Path;

/// The TOML text of synthetic rule number `i`.
pub fn rule(i: usize) -> String {
    let id = format!("synthetic-{i:04}");
    let mut text = format!(
        "# A generated rule for benchmarks: not a real system.\n\
         id = \"{id}\"\n\
         name = \"Synthetic OS {i}\"\n\
         kind = \"container-os\"\n\
         vendor = \"hostprint benchmarks\"\n\
         lineage = [\"synthetic-base\"]\n\
         \n\
         [[require]]\n\
         weight = 55\n\
         why = \"os-release ID names it\"\n\
         os_release = {{ key = \"ID\", equals = \"{id}\" }}\n"
    );
    let supports = [
        (
            "its release file on the read-only /usr",
            "usr/share/{id}/release",
            "file",
        ),
        (
            "its update agent's configuration",
            "etc/{id}/update.conf",
            "file",
        ),
        ("its state directory", "var/lib/{id}", "dir"),
        ("its agent's socket", "run/{id}/agent.sock", "socket"),
    ];
    for (why, path, kind) in supports {
        let path = path.replace("{id}", &id);
        write!(
            text,
            "\n[[support]]\nweight = 10\nwhy = \"{why}\"\npath = {{ path = \"{path}\", type = \"{kind}\" }}\n"
        )
        .expect("writing to a String cannot fail");
    }
    text
}

/// Writes rules `0..count` as `synthetic-NNNN.toml` files into `dir`.
pub fn write(dir: &Path, count: usize) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for i in 0..count {
        std::fs::write(dir.join(format!("synthetic-{i:04}.toml")), rule(i))?;
    }
    Ok(())
}
