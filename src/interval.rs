//! `--interval DURATION`: run a round (probe, render, write `--output`) again and again until SIGTERM
//! or SIGINT, the way a DaemonSet container or a long-running unit is stopped.
//!
//! Decisions:
//! - The first round's failure ends the run (exit 1): a root that does not exist or an output directory
//!   that is not writable is a deployment mistake, and a crash-looping pod shows it. Later failures
//!   (the host's files changing under us, a full disk) are logged at `warn` and the next round tries
//!   again; the last good file stays, since `--output` is only ever replaced whole.
//! - Signals are received by signal-hook on its own thread and handed over a channel; the loop waits
//!   on that channel with a timeout, so a signal ends the wait at once, and a signal during a round is
//!   acted on right after it (a round is never cut short, so the file is never left behind half-done).
//! - Rounds are scheduled on a fixed grid (start + n × interval) so they do not drift; a round that
//!   overruns its slot is followed by the next one at once, without a burst of catch-up rounds.
//! - Nothing is carried from one round to the next (the caller re-opens the root each time), so memory
//!   stays flat however long it runs.

use std::fmt::Display;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Parses `--interval`: humantime's syntax (`100ms`, `60s`, `5m`, `1h 30m`), and never zero, which
/// would spin.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| format!("{text:?}: {e}"))?;
    if d.is_zero() {
        return Err(format!("{text:?}: the interval must be longer than zero"));
    }
    Ok(d)
}

/// Runs `round` now and then every `every` until SIGTERM or SIGINT; returns the signal's name.
pub fn repeat<E>(
    every: Duration,
    mut round: impl FnMut() -> Result<(), E>,
) -> Result<&'static str, E>
where
    E: Display + From<std::io::Error>,
{
    // Handlers go in before the first round, so a stop request is never lost to the default action.
    let mut signals = Signals::new([SIGTERM, SIGINT])?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for signal in signals.forever() {
            if tx.send(signal).is_err() {
                break;
            }
        }
    });

    round()?;
    let mut rounds: u64 = 1;
    tracing::info!(round = rounds, "output written");
    let mut next = Instant::now() + every;
    loop {
        match rx.recv_timeout(next.saturating_duration_since(Instant::now())) {
            Ok(signal) => {
                let name = if signal == SIGTERM {
                    "SIGTERM"
                } else {
                    "SIGINT"
                };
                tracing::info!(signal = name, rounds, "stopping");
                return Ok(name);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return Err(std::io::Error::other("the signal thread ended").into());
            }
        }
        rounds += 1;
        match round() {
            Ok(()) => tracing::info!(round = rounds, "output written"),
            Err(e) => tracing::warn!(
                round = rounds,
                "round failed, the last good output stays: {e:#}"
            ),
        }
        next = (next + every).max(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert!(parse_duration("0s")
            .unwrap_err()
            .contains("longer than zero"));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("60").is_err(), "a unit is required");
    }
}
