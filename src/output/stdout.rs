//! Standard output, where a run without `--output` prints, written so that a lost output fails.
//!
//! A closed file descriptor 1 (`hostprint >&-`) must not pass for success. std's start-up reopens a
//! closed descriptor 0-2 on `/dev/null`, read-write, before `main` (a shell's `>/dev/null` opens it
//! write-only), so descriptor 1 is checked first: it must be open for writing and must not be that
//! stand-in. A reader that closes the pipe early (`hostprint | head`) is not a failure.

use std::io::Write;
use std::os::fd::AsFd;

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::stat::{fstat, major, minor, SFlag};

/// Writes `text` to stdout and flushes it; an error says why stdout could not take it.
pub fn write(text: &str) -> std::io::Result<()> {
    let out = std::io::stdout();
    let mode = fcntl(out.as_fd(), FcntlArg::F_GETFL)
        .map_err(|e| std::io::Error::new(std::io::Error::from(e).kind(), "stdout is closed"))?;
    let access = OFlag::from_bits_truncate(mode) & OFlag::O_ACCMODE;
    if access != OFlag::O_WRONLY && access != OFlag::O_RDWR {
        return Err(std::io::Error::other("stdout is not open for writing"));
    }
    if access == OFlag::O_RDWR && is_dev_null(out.as_fd()) {
        return Err(std::io::Error::other("stdout is closed"));
    }
    let mut out = out.lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Whether `fd` is `/dev/null` (character device 1:3).
fn is_dev_null(fd: std::os::fd::BorrowedFd) -> bool {
    fstat(fd).is_ok_and(|st| {
        SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR
            && major(st.st_rdev) == 1
            && minor(st.st_rdev) == 3
    })
}
