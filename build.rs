//! Lists `fingerprints/*.toml` (sorted) as `include_str!`s, so the shipped rules travel inside the
//! binary and a new rule file needs no Rust change.

use std::fmt::Write;

fn main() {
    println!("cargo:rerun-if-changed=fingerprints");
    let mut files: Vec<_> = std::fs::read_dir("fingerprints")
        .expect("fingerprints/ exists")
        .map(|e| e.expect("a readable fingerprints/").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut out = String::from("&[\n");
    for path in files {
        let name = path.file_name().unwrap().to_str().unwrap();
        let full = std::fs::canonicalize(&path).unwrap();
        writeln!(out, "    ({name:?}, include_str!({:?})),", full.display()).unwrap();
    }
    out.push_str("]\n");
    let target = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("fingerprints.rs");
    std::fs::write(target, out).unwrap();
}
