//! os-release(5) parser (also lsb-release, update.conf, selinux/config, kairos-release): any bytes a
//! host can put in those files, decoded as `Root::read_text` does, must parse without panicking, and
//! every line either yields a key or is reported with its (1-based, in-range) line number.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let file = hostprint::facts::os_release::parse(&text);
    let lines = text.lines().count();
    for e in &file.errors {
        assert!(e.line >= 1 && e.line <= lines, "line {} of {lines}", e.line);
        assert!(e.text.chars().count() <= 121, "error text not shortened");
    }
    for key in file.fields.keys() {
        assert!(!key.is_empty());
    }
});
