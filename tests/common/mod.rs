//! Helpers the integration tests share: run the real binary, read its stderr, build a root.
//!
//! Each test binary compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::process::{Command, Output};

/// The binary, with RUST_LOG cleared so the caller's environment cannot change what it prints.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hostprint"));
    c.env_remove("RUST_LOG");
    c
}

pub fn hostprint(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A temporary root holding `files` (path relative to the root, content).
pub fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    dir
}

/// Probes `root` with the extra rules in `rules`, printing `format`.
pub fn probe_with_rules(rules: &std::path::Path, root: &std::path::Path, format: &str) -> Output {
    hostprint(&[
        "--fingerprints",
        rules.to_str().unwrap(),
        "--root",
        root.to_str().unwrap(),
        "--format",
        format,
    ])
}
