//! `--format json`: the profile as one JSON object (the contract is documented in `profile.rs`).
//!
//! One line by default, so it can be appended to logs and piped through `jq -c`; `--pretty` indents.
//! serde_json's `preserve_order` keeps keys in the documented order.

use crate::profile::Profile;

pub fn render(profile: &Profile, pretty: bool) -> String {
    let mut out = if pretty {
        serde_json::to_string_pretty(profile)
    } else {
        serde_json::to_string(profile)
    }
    .expect("a profile is always serializable");
    out.push('\n');
    out
}
