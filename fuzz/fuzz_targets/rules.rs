//! The fingerprint rule loader (`--fingerprints DIR`, `fingerprints --check`): a user's rule file is
//! untrusted text; it must load or fail with a file:line error, never panic, and the line must exist.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(errors) = hostprint::rules::parse_file("fuzz.toml", text) {
        assert!(!errors.0.is_empty());
        for e in &errors.0 {
            assert!(e.line >= 1 && e.line <= text.lines().count().max(1) + 1, "{e}");
        }
        let _ = errors.to_string();
    }
});
