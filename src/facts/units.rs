//! Whether a systemd unit is enabled or masked, from the unit directories alone.
//!
//! systemctl(1) enables a unit by linking it into `<target>.wants/` and masks it by linking it to
//! `/dev/null`; both are plain files in a root, so a recorded root answers as the live one does
//! (systemd.unit(5), "unit file load path"). Presets only ever become such links, at first boot. The
//! answer is three-valued: a unit that is neither linked nor masked is [`UnitState::Unknown`], because
//! a vendor may enable it in ways this does not follow (a generator, a `.wants` link of another
//! target); only callers that know the unit's usual install target may read "no link" as "off".

use crate::root::{Failure, FileKind, Root};

/// The directories that hold admin and runtime links, most specific first (systemd.unit(5)).
const LINK_DIRS: [&str; 3] = [
    "etc/systemd/system",
    "run/systemd/system",
    "usr/lib/systemd/system",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnitState {
    /// Linked to `/dev/null` in `etc/` or `run/`: cannot be started at all.
    Masked,
    /// Linked into `<target>.wants/` in one of the unit directories.
    Enabled,
    /// Neither: the files do not say.
    Unknown,
}

/// The state of `unit` (e.g. `zincati.service`), looking for an enablement link under `target`
/// (e.g. `timers.target` for a timer, `multi-user.target` for a service).
pub fn state(root: &Root, unit: &str, target: &str) -> UnitState {
    // Masks live in etc/ and run/ only: /usr is the vendor's and never masks.
    for dir in &LINK_DIRS[..2] {
        let path = format!("{dir}/{unit}");
        if link(root, &path) == Some(true) && root.readlink(&path).is_ok_and(|t| t == "/dev/null") {
            return UnitState::Masked;
        }
    }
    for dir in LINK_DIRS {
        if link(root, &format!("{dir}/{target}.wants/{unit}")).is_some() {
            return UnitState::Enabled;
        }
    }
    UnitState::Unknown
}

/// Whether `path` is there as a usable entry: `Some(true)` for a symlink, `Some(false)` for anything
/// else, `None` when absent or unusable. An enablement link may point at a unit file the root does not
/// hold (a recorded root keeps only what was read), so a dangling link still counts; a link that loops
/// does not, and following it is what gets it warned about.
fn link(root: &Root, path: &str) -> Option<bool> {
    match root.lstat(path) {
        Ok(FileKind::Symlink) => match root.stat(path) {
            Ok(_) | Err(Failure::Absent) => Some(true),
            Err(_) => None,
        },
        Ok(_) => Some(false),
        Err(_) => None,
    }
}
