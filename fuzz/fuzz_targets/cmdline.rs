//! Kernel and PID 1 command lines: `proc/cmdline` is split shell-like (double quotes group),
//! `proc/1/cmdline` on NULs. Neither may panic, and no word may contain a double quote or be empty
//! unless it was quoted.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let words = hostprint::facts::kernel::split_cmdline(&text);
    for w in &words {
        assert!(!w.contains('"'), "quote kept in {w:?}");
    }
    let kernel = hostprint::facts::kernel::Kernel {
        release: None,
        cmdline: words,
    };
    let _ = kernel.param("selinux");
    let _ = kernel.param("ostree");
    for arg in hostprint::facts::pid1::parse_cmdline(&text) {
        assert!(!arg.is_empty() && !arg.contains('\0'));
    }
});
