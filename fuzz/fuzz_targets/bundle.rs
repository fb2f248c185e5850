//! The compiled rule bundle decoder (`--fingerprints BUNDLE`). Its checksum only keeps out random
//! damage: a hand-made compiled section is untrusted bytes. It must decode into rules that pass the
//! same checks as parsed ones, or fail with a message; never panic, never allocate what the bytes
//! merely claim.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Decoded rules borrow their text from bytes that live as long as the process (`load` keeps a
    // bundle's); here they live for one input and are freed after the rules are dropped below.
    let bytes: &'static mut [u8] = Box::leak(data.to_vec().into_boxed_slice());
    let ptr: *mut [u8] = bytes;
    check(bytes);
    // SAFETY: `check` dropped everything that borrowed from `bytes`; nothing else refers to them.
    drop(unsafe { Box::from_raw(ptr) });
});

fn check(data: &'static [u8]) {
    match hostprint::rules::bundle::decode_compiled(data) {
        Ok(rules) => {
            for rule in &rules {
                hostprint::rules::check_compiled(rule).expect("decode_compiled checked it");
                // Every decoded rule can be shown and evaluated like a parsed one.
                for s in rule.require.iter().chain(&rule.support).chain(&rule.exclude) {
                    let _ = s.condition.to_string();
                }
            }
        }
        Err(e) => assert!(!e.is_empty()),
    }
}
