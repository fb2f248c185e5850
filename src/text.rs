//! Path and line text helpers shared by the root and the rule loader.
//!
//! Kept free of any other crate module so that `build.rs` can compile it together with the rule
//! loader (`src/rules/schema.rs`) and validate the shipped rules at build time with the same code.
//! `crate::root` re-exports both, where the rest of hostprint finds them.

/// The components of a path, `.` and empty ones dropped (`..` kept: only a walk can place it).
pub fn components(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty() && *c != ".")
}

/// `/etc/os-release`, `etc/os-release` and `./etc//os-release` all name the same place.
pub fn normalize(path: &str) -> String {
    components(path).collect::<Vec<_>>().join("/")
}

/// 1-based line number of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}
