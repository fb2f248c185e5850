//! `--output FILE`: the one file hostprint ever writes, replaced atomically.
//!
//! node_exporter's textfile collector and NFD's `local` source may read the file at any moment, so
//! the text goes to a temporary file in the same directory (rename is atomic only within one
//! filesystem), is fsynced and renamed over the target, and the directory is fsynced. The temporary
//! name (`.NAME.*.tmp`) is one neither reader looks at; one a failed write could not remove is swept
//! by the next write once a minute old. The mode is 0644 whatever the umask: the readers often run
//! as other users, and the content is not secret. Only a regular file is replaced: a device, FIFO,
//! socket, directory or symlink (which could lead to `/dev/null` or `/proc/self/fd/1`) is refused
//! before anything is written.

use std::fs::{File, Permissions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The mode of the written file.
pub const MODE: u32 = 0o644;

/// Writing `--output` failed; names the target and says what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {reason}", path.display())]
pub struct WriteError {
    pub path: PathBuf,
    pub reason: String,
    #[source]
    pub source: Option<std::io::Error>,
}

/// Replaces `path` with `contents`, atomically, mode 0644; refuses a target that is not a regular
/// file.
pub fn write(path: &Path, contents: &[u8]) -> Result<(), WriteError> {
    let refuse = |reason: String| WriteError {
        path: path.to_path_buf(),
        reason,
        source: None,
    };
    let fail = |reason: &str| {
        let (path, reason) = (path.to_path_buf(), reason.to_string());
        move |source| WriteError {
            path,
            reason,
            source: Some(source),
        }
    };
    check_target(path).map_err(refuse)?;
    let Some(name) = path.file_name() else {
        return Err(refuse("it names no file".into()));
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(refuse(format!("not a directory: {}", dir.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(refuse(format!("no such directory: {}", dir.display())))
        }
        Err(e) => return Err(fail(&format!("cannot use directory {}", dir.display()))(e)),
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", name.to_string_lossy()))
        .suffix(".tmp")
        .permissions(Permissions::from_mode(MODE))
        .tempfile_in(dir)
        .map_err(fail(&format!("cannot create a file in {}", dir.display())))?;
    // The mode given at creation is filtered by the umask; fchmod is not.
    tmp.as_file()
        .set_permissions(Permissions::from_mode(MODE))
        .map_err(fail("setting its mode"))?;
    tmp.write_all(contents)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(fail("writing"))?;
    // On failure the temporary file comes back inside the error and is deleted when it drops.
    tmp.persist(path)
        .map_err(|e| fail("replacing it")(e.error))?;
    // Persist the rename itself. A directory that cannot be opened for fsync (rare: permissions allow
    // creating files in it) does not undo a write that has already happened.
    if let Ok(d) = File::open(dir) {
        if let Err(e) = d.sync_all() {
            tracing::debug!(dir = %dir.display(), error = %e, "fsync of the output directory failed");
        }
    }
    sweep_stale(dir, &name.to_string_lossy());
    Ok(())
}

/// Refuses a `path` that exists and is not a regular file, saying what it is.
fn check_target(path: &Path) -> Result<(), String> {
    // Absent (a new file), or its directory is missing or not one: the checks on the directory say
    // which.
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if meta.is_file() {
        return Ok(());
    }
    if meta.file_type().is_symlink() {
        let to = std::fs::read_link(path).unwrap_or_default();
        return Err(format!(
            "is a symlink (to {}); --output replaces only a regular file, name it directly",
            to.display()
        ));
    }
    Err(format!(
        "is {}; --output replaces only a regular file",
        kind(&meta)
    ))
}

/// What a non-regular file is, for a message.
fn kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Removes temporary files an earlier failed write of the same target could not remove.
fn sweep_stale(dir: &Path, name: &str) {
    const STALE: std::time::Duration = std::time::Duration::from_secs(60);
    let prefix = format!(".{name}.");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let file = file.to_string_lossy();
        if !(file.starts_with(&prefix) && file.ends_with(".tmp")) {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE);
        if old {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {
                    tracing::info!(path = %entry.path().display(), "removed a stale temporary file")
                }
                Err(e) => {
                    tracing::debug!(path = %entry.path().display(), error = %e, "could not remove a stale temporary file")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn replaces_the_file_with_mode_0644_and_leaves_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("hostprint.prom");
        std::fs::write(&target, "old\n").unwrap();
        std::fs::set_permissions(&target, Permissions::from_mode(0o600)).unwrap();
        write(&target, b"new\n").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new\n");
        assert_eq!(std::fs::metadata(&target).unwrap().mode() & 0o777, MODE);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("hostprint.prom")]);
    }

    #[test]
    fn stale_temporaries_of_this_target_are_swept_fresh_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("hostprint.prom");
        let stale = dir.path().join(".hostprint.prom.abc123.tmp");
        let fresh = dir.path().join(".hostprint.prom.def456.tmp");
        let other = dir.path().join(".node.prom.abc123.tmp");
        for p in [&stale, &fresh, &other] {
            std::fs::write(p, "x").unwrap();
        }
        let two_minutes_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(120);
        for p in [&stale, &other] {
            File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_modified(two_minutes_ago)
                .unwrap();
        }
        write(&target, b"new\n").unwrap();
        assert!(
            !stale.exists(),
            "a stale temporary of this target is removed"
        );
        assert!(
            fresh.exists(),
            "a temporary younger than a minute may be a writer in flight"
        );
        assert!(other.exists(), "another target's files are not ours");
    }

    #[test]
    fn a_missing_directory_is_named_and_no_temporary_file_is() {
        let err = write(Path::new("/nonexistent-hostprint-dir/x.prom"), b"x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot write /nonexistent-hostprint-dir/x.prom: no such directory: /nonexistent-hostprint-dir"
        );
    }

    #[test]
    fn a_directory_as_target_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("taken")).unwrap();
        let err = write(&dir.path().join("taken"), b"x").unwrap_err();
        assert!(
            err.to_string()
                .ends_with(": is a directory; --output replaces only a regular file"),
            "{err}"
        );
        assert!(dir.path().join("taken").is_dir());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_symlink_is_refused_even_to_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.prom");
        std::fs::write(&real, "old\n").unwrap();
        let link = dir.path().join("link.prom");
        std::os::unix::fs::symlink("real.prom", &link).unwrap();
        let err = write(&link, b"new\n").unwrap_err();
        assert!(
            err.to_string().contains("is a symlink (to real.prom)"),
            "{err}"
        );
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "old\n");
    }
}
