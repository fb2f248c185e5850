//! snapd's posture from its state file, `var/lib/snapd/state.json`.
//!
//! The channel is the one the boot base tracks: `data.snaps.<name>.channel`
//! (snapd `overlord/snapstate/snapmgr.go`, `SnapState.TrackingChannel`), for the base named by
//! `var/lib/snapd/modeenv` `base=core24_<rev>.snap` (Ubuntu Core 20+), else for the snap of type `os`
//! (the `core` snap of Ubuntu Core 16). Snaps refresh automatically unless the system-wide
//! `refresh.hold` is `forever` (snapd `overlord/configstate/configcore/refresh.go`); a hold until a
//! date ends by itself and would make the answer depend on the clock, so it does not count. The
//! strategy is `refresh.timer` where the admin set one. Core settings are stored under
//! `data.config.core`, nested by dotted name.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::facts::os_release::read_env_file;
use crate::root::Root;
use crate::warning::{Code, Warning};

const STATE: &str = "var/lib/snapd/state.json";
/// The state grows with installed snaps and pending changes; past the cap other large host files
/// have, the posture is unknown and a truncation warning says why (bounded memory: tests/memory.rs).
const STATE_CAP: usize = 4 << 20;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapdPosture {
    pub channel: Option<String>,
    pub automatic: Option<bool>,
    pub strategy: Option<String>,
}

/// The few parts of state.json read here. Everything else (change logs, sequences, cohorts) is
/// skipped by the parser without being kept, so parsing costs little beyond the text itself.
#[derive(Deserialize)]
struct State {
    data: Data,
}

#[derive(Deserialize)]
struct Data {
    #[serde(default)]
    snaps: Option<BTreeMap<String, Snap>>,
    #[serde(default)]
    config: Option<Config>,
}

#[derive(Deserialize)]
struct Snap {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    channel: Option<String>,
}

#[derive(Deserialize)]
struct Config {
    #[serde(default)]
    core: Option<Core>,
}

#[derive(Deserialize)]
struct Core {
    #[serde(default)]
    refresh: Option<Refresh>,
}

#[derive(Deserialize)]
struct Refresh {
    #[serde(default)]
    hold: Option<String>,
    #[serde(default)]
    timer: Option<String>,
}

/// Reads the posture from state.json's text, for the boot base `base` (from modeenv). `None` when the
/// text is not snapd's state (not JSON, no `data`, a setting of the wrong type). Pure.
pub fn parse_state(text: &str, base: Option<&str>) -> Option<SnapdPosture> {
    let state: State = serde_json::from_str(text).ok()?;
    let snaps = state.data.snaps.unwrap_or_default();
    let os_snap = base.map(str::to_string).or_else(|| {
        snaps
            .iter()
            .find(|(_, s)| s.kind.as_deref() == Some("os"))
            .map(|(name, _)| name.clone())
    });
    let channel = os_snap
        .and_then(|name| snaps.get(&name)?.channel.clone())
        .filter(|c| !c.is_empty());
    let refresh = state.data.config.and_then(|c| c.core?.refresh);
    let hold = refresh.as_ref().and_then(|r| r.hold.as_deref());
    let automatic = Some(hold != Some("forever"));
    let strategy = refresh
        .as_ref()
        .and_then(|r| r.timer.clone())
        .filter(|t| !t.is_empty());
    Some(SnapdPosture {
        channel,
        automatic,
        strategy,
    })
}

/// The boot base's snap name from modeenv's `base=core24_864.snap`. Pure.
pub fn base_of(modeenv_base: &str) -> Option<&str> {
    let stem = modeenv_base.strip_suffix(".snap")?;
    stem.rsplit_once('_').map(|(name, _)| name)
}

pub fn probe(root: &Root) -> SnapdPosture {
    let Ok(text) = root.read_text(STATE, STATE_CAP) else {
        return SnapdPosture::default();
    };
    let modeenv = read_env_file(root, "var/lib/snapd/modeenv", 64 * 1024).ok();
    let base = modeenv
        .as_ref()
        .and_then(|m| m.fields.get("base"))
        .and_then(|b| base_of(b));
    if text.truncated {
        root.warn(Warning::at(
            Code::Truncated,
            STATE,
            "larger than the read limit; snapd's posture is unknown",
        ));
        return SnapdPosture::default();
    }
    parse_state(&text.text, base).unwrap_or_else(|| {
        root.warn(Warning::at(
            Code::MalformedFile,
            STATE,
            "not snapd's JSON state; snapd's posture is unknown",
        ));
        SnapdPosture::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const UC22: &str = r#"{"data":{"snaps":{
        "core22":{"type":"base","channel":"latest/stable","current":"1380"},
        "pc-kernel":{"type":"kernel","channel":"22/stable","current":"1606"},
        "snapd":{"type":"snapd","channel":"latest/stable","current":"21465"}},
        "config":{"core":{"refresh":{"hold":"forever","timer":"fri,23:00-01:00"}}}}}"#;

    #[test]
    fn base_snap_channel_and_hold() {
        let p = parse_state(UC22, Some("core22")).unwrap();
        assert_eq!(p.channel.as_deref(), Some("latest/stable"));
        assert_eq!(p.automatic, Some(false));
        assert_eq!(p.strategy.as_deref(), Some("fri,23:00-01:00"));
    }

    #[test]
    fn os_snap_without_modeenv_and_no_config() {
        let uc16 = r#"{"data":{"snaps":{"core":{"type":"os","channel":"stable"}}}}"#;
        let p = parse_state(uc16, None).unwrap();
        assert_eq!(p.channel.as_deref(), Some("stable"));
        assert_eq!(p.automatic, Some(true), "snaps refresh by default");
        assert_eq!(p.strategy, None);
    }

    #[test]
    fn dated_hold_does_not_count_and_unknown_base_has_no_channel() {
        let s = r#"{"data":{"snaps":{},"config":{"core":{"refresh":{"hold":"2026-12-01T00:00:00Z"}}}}}"#;
        let p = parse_state(s, Some("core24")).unwrap();
        assert_eq!(p.automatic, Some(true));
        assert_eq!(p.channel, None);
    }

    #[test]
    fn not_state() {
        assert_eq!(parse_state("", None), None);
        assert_eq!(parse_state("[]", None), None);
        assert_eq!(parse_state("{\"x\":1}", None), None);
        // A setting of the wrong type makes the state unreadable, not a default.
        let odd = r#"{"data":{"config":{"core":{"refresh":{"hold":true}}}}}"#;
        assert_eq!(parse_state(odd, None), None);
    }

    #[test]
    fn modeenv_base() {
        assert_eq!(base_of("core24_864.snap"), Some("core24"));
        assert_eq!(base_of("core22.snap"), None);
        assert_eq!(base_of("weird"), None);
    }
}
