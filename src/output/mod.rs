//! Output formats: one file per format, each a pure function from a profile to text; and stdout,
//! where the text goes without `--output`.

pub mod human;
pub mod json;
pub mod nfd;
pub mod prometheus;
pub mod stdout;
