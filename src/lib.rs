//! hostprint: which container OS is this node, and what is it made of?
//!
//! The library is the whole tool; `main.rs` only parses flags and prints. The flow is
//! [`root::Root`] (every read) → [`facts`] (typed observations) → [`rules`] (declarative
//! fingerprints) → [`profile`] (identity, platforms, components, warnings) → [`output`].

pub mod atomic_write;
pub mod cli;
pub mod facts;
pub mod interval;
pub mod output;
pub mod processes;
pub mod profile;
pub mod record;
pub mod redact;
pub mod root;
pub mod rules;
pub mod schema;
pub mod secrets;
mod text;
pub mod warning;
