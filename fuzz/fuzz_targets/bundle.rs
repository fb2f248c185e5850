//! The compiled rule bundle decoder (`--fingerprints BUNDLE`). Its checksums only keep out random
//! damage: a hand-made compiled section is untrusted bytes. Its index must decode into a bundle
//! whose rules decode into rules that pass the same checks as parsed ones, or fail with a message;
//! never panic, never allocate what the bytes merely claim. The input is tried both as a compiled
//! section (index length, index, bodies) and as one rule's body (which a section's checksums would
//! otherwise keep the fuzzer from reaching).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Decoded rules borrow from bytes that live as long as the process (`load` keeps a bundle's);
    // here they live for one input and are freed once everything that borrowed them is dropped.
    let bytes: &'static mut [u8] = Box::leak(data.to_vec().into_boxed_slice());
    let ptr: *mut [u8] = bytes;
    check(bytes);
    // SAFETY: `check` dropped everything that borrowed from `bytes`; nothing else refers to them.
    drop(unsafe { Box::from_raw(ptr) });
});

fn check(data: &'static [u8]) {
    match hostprint::rules::bundle::decode_compiled(data, "fuzz") {
        Ok(bundle) => {
            for rule in bundle.all() {
                match rule {
                    Ok(rule) => shown(rule),
                    Err(e) => assert!(e.starts_with("fuzz: rule ")),
                }
            }
        }
        Err(e) => assert!(!e.is_empty()),
    }
    match hostprint::rules::bundle::decode_rule(data) {
        Ok(rule) => shown(&rule),
        Err(e) => assert!(!e.is_empty()),
    }
}

/// A decoded rule passes the parsed rules' checks and can be shown like one.
fn shown(rule: &hostprint::rules::Fingerprint) {
    hostprint::rules::check_compiled(rule).expect("decoding checked it");
    for c in rule.conditions() {
        let _ = c.to_string();
    }
}
