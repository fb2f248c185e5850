//! `--interval DURATION`: run a round (probe, render, write `--output`) again and again until SIGTERM
//! or SIGINT, the way a DaemonSet container or a long-running unit is stopped.
//!
//! The interval is 1s to 365d. SIGHUP means "probe now" (systemd's reload convention); several during
//! a round make one more round. The first round's failure ends the run (a deployment mistake should
//! crash-loop visibly); later failures are logged and the last good file stays. Signals arrive from
//! signal-hook's thread over a channel the loop waits on, so a round is never cut short. Rounds keep
//! a fixed grid (start + n × interval) without catch-up bursts, and nothing is carried between
//! rounds, so memory stays flat.

use std::fmt::Display;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// The shortest `--interval`.
pub const MIN: Duration = Duration::from_secs(1);
/// The longest `--interval`.
pub const MAX: Duration = Duration::from_secs(365 * 24 * 3600);

/// Parses `--interval`: humantime's syntax (`30s`, `5m`, `1h 30m`), from [`MIN`] to [`MAX`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let expected = "expected a duration such as 30s, 5m or 1h, from 1s to 365d";
    let d = humantime::parse_duration(text).map_err(|e| match e {
        humantime::DurationError::NumberOverflow => format!("too long; {expected}"),
        humantime::DurationError::UnknownUnit { unit, .. } => {
            format!("unknown unit {unit:?}; {expected}")
        }
        _ => expected.to_string(),
    })?;
    if d < MIN {
        return Err(format!("shorter than 1s; {expected}"));
    }
    if d > MAX {
        return Err(format!("longer than 365d; {expected}"));
    }
    Ok(d)
}

/// Runs `round` now, then every `every` and at each SIGHUP, until SIGTERM or SIGINT; returns the
/// stopping signal's name.
pub fn repeat<E>(
    every: Duration,
    mut round: impl FnMut() -> Result<(), E>,
) -> Result<&'static str, E>
where
    E: Display + From<std::io::Error>,
{
    // Handlers go in before the first round, so a stop request is never lost to the default action.
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for signal in signals.forever() {
            if tx.send(signal).is_err() {
                break;
            }
        }
    });

    round()?;
    let (mut rounds, mut failed): (u64, u64) = (1, 0);
    tracing::debug!(round = rounds, "output written");
    let mut next = Instant::now() + every;
    // A SIGHUP that came during a round: one more round, however many came.
    let mut probe_now = false;
    loop {
        let woken = match std::mem::take(&mut probe_now) {
            true => Ok(SIGHUP),
            false => rx.recv_timeout(next.saturating_duration_since(Instant::now())),
        };
        match woken {
            Ok(SIGHUP) => tracing::info!(signal = "SIGHUP", "probing now"),
            Ok(signal) => return Ok(stopping(signal, rounds)),
            Err(RecvTimeoutError::Timeout) => next += every,
            Err(RecvTimeoutError::Disconnected) => {
                return Err(std::io::Error::other("the signal thread ended").into());
            }
        }
        rounds += 1;
        match round() {
            Ok(()) if failed > 0 => {
                tracing::info!("round {rounds} ok again after {failed} failed");
                failed = 0;
            }
            Ok(()) => tracing::debug!(round = rounds, "output written"),
            Err(e) => {
                failed += 1;
                tracing::warn!(
                    round = rounds,
                    "round failed, the last good output stays: {e:#}"
                );
            }
        }
        for signal in rx.try_iter() {
            match signal {
                SIGHUP => probe_now = true,
                signal => return Ok(stopping(signal, rounds)),
            }
        }
        // A round that overran its slot is followed by the next one at once, not by catch-up rounds.
        next = next.max(Instant::now());
    }
}

/// The name of a stopping signal (SIGTERM or SIGINT), logged.
fn stopping(signal: i32, rounds: u64) -> &'static str {
    let name = if signal == SIGTERM {
        "SIGTERM"
    } else {
        "SIGINT"
    };
    tracing::info!(signal = name, rounds, "stopping");
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1s"), Ok(MIN));
        assert_eq!(parse_duration("365d"), Ok(MAX));
        let expected = "expected a duration such as 30s, 5m or 1h, from 1s to 365d";
        for (text, error) in [
            ("0s", "shorter than 1s"),
            ("1ns", "shorter than 1s"),
            ("100ms", "shorter than 1s"),
            ("366d", "longer than 365d"),
            ("18446744073709551615s", "longer than 365d"),
            ("99999999999999999999999s", "too long"),
            ("5 fortnights", "unknown unit \"fortnights\""),
            ("garbage", ""),
            ("60", ""),
            ("", ""),
        ] {
            let got = parse_duration(text).unwrap_err();
            assert!(
                got.starts_with(error) && got.ends_with(expected),
                "{text:?}: {got}"
            );
        }
    }
}
