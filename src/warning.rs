//! A warning about the root's content: one entry of the JSON profile's `warnings[]`, so part of the
//! JSON contract (`hostprint schema` derives its shape from this type).
//!
//! Reads raise warnings (a file unreadable, of the wrong kind, truncated, not UTF-8), probes add what
//! they find malformed, and the profile adds conflicting evidence. `path` is the file it is about,
//! relative to the root, or `null` for a warning about the whole root.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema, Deserialize)]
pub struct Warning {
    pub path: Option<String>,
    pub message: String,
}

impl Warning {
    pub fn at(path: &str, message: impl Into<String>) -> Warning {
        Warning {
            path: Some(path.to_string()),
            message: message.into(),
        }
    }

    pub fn general(message: impl Into<String>) -> Warning {
        Warning {
            path: None,
            message: message.into(),
        }
    }
}
