//! Output formats: one file per format, each a pure function from a profile to text.

pub mod human;
pub mod json;
pub mod nfd;
pub mod prometheus;
