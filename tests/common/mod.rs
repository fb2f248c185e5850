//! Helpers shared by the integration tests: running the built binary the way a user does (no
//! `RUST_LOG` leaking in from the developer's shell, so stderr is only what hostprint says).

use std::process::{Command, Output};

/// Runs the `hostprint` binary built for this test run with `args`.
pub fn hostprint(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hostprint"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}
