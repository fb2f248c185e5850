//! Path and line text helpers shared by the root and the rule loader.
//!
//! Kept free of any other crate module so that `build.rs` can compile it together with the rule
//! loader (`src/rules/format.rs`) and validate the shipped rules at build time with the same code.
//! `crate::root` re-exports both, where the rest of hostprint finds them.

/// The components of a path, `.` and empty ones dropped (`..` kept: only a walk can place it).
pub fn components(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty() && *c != ".")
}

/// `/etc/os-release`, `etc/os-release` and `./etc//os-release` all name the same place.
pub fn normalize(path: &str) -> std::borrow::Cow<'_, str> {
    // Every read normalizes its path, and the probes' and rules' paths are already in normal form:
    // those are borrowed as they are (no allocation per access; 2,000 with 500 user rules).
    if is_normal(path) {
        return path.into();
    }
    components(path).collect::<Vec<_>>().join("/").into()
}

/// Each directory of a normal path with the name under it: `etc/a/b` gives (`etc`, `a`) and
/// (`etc/a`, `b`). The walk a lookup makes, which `Root::prime` counts names along and answers from.
pub fn parents(path: &str) -> impl Iterator<Item = (&str, &str)> {
    // Bytes, not `match_indices`: its char searcher cost 1% of a run with 500 user rules.
    let bytes = path.as_bytes();
    let slashes = bytes.iter().enumerate().filter(|&(_, &b)| b == b'/');
    slashes.map(move |(i, _)| {
        let rest = &bytes[i + 1..];
        let end = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
        (&path[..i], &path[i + 1..i + 1 + end])
    })
}

/// A normal relative path without `..` (`etc/os-release`): one whose lookup walks down through each
/// of its prefixes and never climbs out of one. Rules may only name such paths, and only over them
/// can a listing of a parent directory stand for a lookup (`Root::prime`).
pub fn is_plain(path: &str) -> bool {
    // Split on the byte: a `str` split by char was an eighth of the instructions of a run with 500
    // user rules, which ask this of 2,000 paths several times each.
    path.as_bytes().split(|&b| b == b'/').all(plain_component)
}

/// One component of a plain path: not empty, not `.`, not `..` ([`is_plain`], and the one-pass
/// check of a compiled bundle's path lists).
pub fn plain_component(c: &[u8]) -> bool {
    !matches!(c, b"" | b"." | b"..")
}

/// No empty and no `.` component: what [`normalize`] would return unchanged. Split on the byte, as
/// `is_plain` does: the fastest of the walks measured (callgrind: ~290 instructions a path; a
/// component-length loop and a memchr scan were no better), and every lookup asks this.
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

    #[test]
    fn parents_walk_down_one_name_at_a_time() {
        let walk: Vec<_> = parents("usr/share/flatcar/release").collect();
        assert_eq!(
            walk,
            [
                ("usr", "share"),
                ("usr/share", "flatcar"),
                ("usr/share/flatcar", "release")
            ]
        );
        assert_eq!(parents("etc").count(), 0);
    }
}
