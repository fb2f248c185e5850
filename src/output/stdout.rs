//! Standard output, where a run without `--output` prints, written so that a lost output fails.
//!
//! std's stdout treats a closed file descriptor 1 (`hostprint >&-`) as a sink that accepts
//! everything: the run would exit 0 having printed nothing, and a script would take that for
//! success. So descriptor 1 is checked first: it must be open for writing. (Once closed, the number
//! may also have been reused by a directory handle that the probe opened read-only; the same check
//! refuses it.) A reader that closes the pipe early (`hostprint | head`) is not a failure.

use std::io::Write;
use std::os::fd::AsFd;

use nix::fcntl::{fcntl, FcntlArg, OFlag};

/// Writes `text` to stdout and flushes it; an error says why stdout could not take it.
pub fn write(text: &str) -> std::io::Result<()> {
    let out = std::io::stdout();
    let mode = fcntl(out.as_fd(), FcntlArg::F_GETFL)
        .map_err(|e| std::io::Error::new(std::io::Error::from(e).kind(), "stdout is closed"))?;
    let access = OFlag::from_bits_truncate(mode) & OFlag::O_ACCMODE;
    if access != OFlag::O_WRONLY && access != OFlag::O_RDWR {
        return Err(std::io::Error::other("stdout is not open for writing"));
    }
    let mut out = out.lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
