//! Update-agent configuration: Snappy's `channel.ini` (INI, `channel: …`) and CoreOS/Flatcar
//! `update.conf` (`GROUP=`, `REBOOT_STRATEGY=`, the os-release syntax). Neither may panic; a channel
//! found is trimmed and single-line.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(channel) = hostprint::facts::update::parse_channel_ini(&text) {
        assert_eq!(channel.trim(), channel);
        assert!(!channel.contains('\n'));
    }
    let conf = hostprint::facts::os_release::parse(&text);
    for key in ["GROUP", "REBOOT_STRATEGY", "SERVER"] {
        let _ = conf.fields.get(key);
    }
});
