//! `--output FILE`: written whole and atomically (temp file + rename), mode 0644 whatever the umask,
//! nothing left behind; a path that cannot be written is exit 1 naming it.

mod common;

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use common::{bin, chmod, entries, flatcar_root, prometheus, stderr, tree, unprivileged_bin};

#[test]
fn output_is_written_whole_with_mode_0644_whatever_the_umask() {
    let (root, _sock) = flatcar_root();
    let out_dir = tempfile::tempdir().unwrap();
    let target = out_dir.path().join("hostprint.prom");
    let mut cmd = bin();
    cmd.args([
        "--root",
        root.path().to_str().unwrap(),
        "--format",
        "prometheus",
        "--output",
    ])
    .arg(&target);
    // SAFETY: umask(2) is async-signal-safe and touches only the child's state.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o077);
            Ok(())
        });
    }
    let o = cmd.output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(o.stdout.is_empty(), "nothing on stdout with --output");
    assert_eq!(std::fs::metadata(&target).unwrap().mode() & 0o777, 0o644);
    assert_eq!(
        entries(out_dir.path()),
        vec!["hostprint.prom"],
        "no temporary files left"
    );
    let stdout = prometheus(root.path());
    assert_eq!(std::fs::read(&target).unwrap(), stdout.stdout);
}

#[test]
fn unwritable_output_is_exit_1_naming_the_path() {
    let root = tree(&[("etc/os-release", "ID=debian\n")]);
    chmod(root.path(), 0o755);
    let blocker = tree(&[("file", "x")]);
    // Permission bits stop everyone but root (CAP_DAC_OVERRIDE): that case runs without privileges.
    let ro = tempfile::tempdir().unwrap();
    chmod(ro.path(), 0o555);
    for (target, without_privileges) in [
        (PathBuf::from("/nonexistent-hostprint/out.prom"), false),
        // A regular file where the directory should be: ENOTDIR, even for root.
        (blocker.path().join("file/out.prom"), false),
        // An existing directory cannot be replaced by a file.
        (blocker.path().to_path_buf(), false),
        (ro.path().join("out.prom"), true),
    ] {
        let mut cmd = if without_privileges {
            unprivileged_bin()
        } else {
            bin()
        };
        let o = cmd
            .args([
                "--root",
                root.path().to_str().unwrap(),
                "--format",
                "nfd",
                "--output",
            ])
            .arg(&target)
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(1),
            "{}: {}",
            target.display(),
            stderr(&o)
        );
        let err = stderr(&o);
        assert!(err.contains(&target.display().to_string()), "{err}");
        assert!(err.starts_with("hostprint: cannot write"), "{err}");
    }
    assert_eq!(
        entries(blocker.path()),
        vec!["file"],
        "no temporary file left behind"
    );
    assert_eq!(entries(ro.path()), Vec::<String>::new());
}
