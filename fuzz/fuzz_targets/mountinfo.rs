//! `proc/<pid>/mountinfo` parsing and summarizing: a recorded or hostile root controls every byte.
//! Bad lines are counted with in-range line numbers; the summary never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (mounts, bad) = hostprint::facts::mounts::parse(&text);
    let lines = text.lines().count();
    if let Some((line, shown)) = &bad.first {
        assert!(*line >= 1 && *line <= lines);
        assert!(shown.chars().count() <= 121);
    }
    assert_eq!(bad.first.is_some(), bad.count > 0);
    assert!(bad.count <= lines);
    assert!(mounts.is_some() || bad.count == text.lines().filter(|l| !l.trim().is_empty()).count());
});
