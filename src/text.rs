//! Path and line text helpers shared by the root and the rule loader.
//!
//! Kept free of any other crate module so that `build.rs` can compile it together with the rule
//! loader (`src/rules/format.rs`) and validate the shipped rules at build time with the same code.
//! `crate::root` re-exports `normalize`, where the rest of hostprint finds it.

/// The components of a path, `.` and empty ones dropped (`..` kept: only a walk can place it).
pub fn components(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty() && *c != ".")
}

/// `/etc/os-release`, `etc/os-release` and `./etc//os-release` all name the same place.
pub fn normalize(path: &str) -> std::borrow::Cow<'_, str> {
    // Every read normalizes its path, and the probes' and rules' paths are already in normal form:
    // those are borrowed as they are.
    if is_normal(path) {
        return path.into();
    }
    components(path).collect::<Vec<_>>().join("/").into()
}

/// A normal relative path without `..` (`etc/os-release`): one whose lookup walks down through each
/// of its prefixes and never climbs out of one. Rules may only name such paths.
pub fn is_plain(path: &str) -> bool {
    path.as_bytes().split(|&b| b == b'/').all(plain_component)
}

/// One component of a plain path: not empty, not `.`, not `..`.
fn plain_component(c: &[u8]) -> bool {
    !matches!(c, b"" | b"." | b"..")
}

/// No empty and no `.` component: what [`normalize`] would return unchanged.
fn is_normal(path: &str) -> bool {
    path.as_bytes()
        .split(|&b| b == b'/')
        .all(|c| !matches!(c, b"" | b"."))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_drops_empty_and_dot_components() {
        for (input, want) in [
            ("etc/os-release", "etc/os-release"),
            ("/etc/os-release", "etc/os-release"),
            ("./etc//os-release/", "etc/os-release"),
            ("etc/./os-release", "etc/os-release"),
            ("../etc", "../etc"),
            ("", ""),
            ("/", ""),
            (".", ""),
        ] {
            assert_eq!(normalize(input), want, "{input:?}");
        }
    }

    /// The one-pass check says what the definition says: no empty and no `.` component.
    #[test]
    fn is_normal_is_no_empty_and_no_dot_component() {
        let by_definition = |p: &str| p.split('/').all(|c| !c.is_empty() && c != ".");
        for p in [
            "",
            ".",
            "..",
            "/",
            "a",
            "a/b",
            "a//b",
            "/a",
            "a/",
            "./a",
            "a/.",
            "a/./b",
            "a/../b",
            ".a",
            "a/.b",
            "a./b",
            "..a",
            "a/..",
            "etc/os-release",
            "usr/share/x.y/z",
        ] {
            assert_eq!(is_normal(p), by_definition(p), "{p:?}");
        }
    }

    #[test]
    fn plain_paths_are_normal_relative_and_never_climb() {
        for ok in ["etc", "etc/os-release", "usr/share/..x/y", "a/.hidden"] {
            assert!(is_plain(ok), "{ok:?}");
        }
        for bad in [
            "", "/etc", "etc/", "etc//x", "./etc", "etc/./x", "..", "etc/../x", "a/..",
        ] {
            assert!(!is_plain(bad), "{bad:?}");
        }
    }
}
