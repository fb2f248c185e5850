//! The kernel: its release and its command line.
//!
//! Both come from the root's `proc/` so that a recorded root replays them; `uname(2)` is asked only for
//! the live root and only when `proc/sys/kernel/osrelease` is missing (a chroot without /proc).
//! The command line matters to identity and security: `ostree=` marks an OSTree boot, `selinux=0` and
//! `enforcing=0` override the SELinux config, `snapd_recovery_mode=` marks Ubuntu Core 20+.
//! Credential-looking values (`ignition.config.url=https://user:***@…`, `rd.luks.key=***`) are masked
//! as the line is read (`crate::redact`), so that no output can show them; keys stay.

use schemars::JsonSchema;
use serde::Serialize;

use crate::root::Root;

const CAP: usize = 64 * 1024;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Kernel {
    pub release: Option<String>,
    /// The command line, split into words (double quotes group, as the kernel does).
    pub cmdline: Vec<String>,
}

impl Kernel {
    /// The value of `key=value` on the command line (the last one wins, as for the kernel); `Some("")`
    /// for a bare `key`.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.cmdline
            .iter()
            .rev()
            .find_map(|word| match word.split_once('=') {
                Some((k, v)) if k == key => Some(v),
                None if word == key => Some(""),
                _ => None,
            })
    }
}

pub fn probe(root: &Root) -> Kernel {
    let release = match root.read_text("proc/sys/kernel/osrelease", 4096) {
        Ok(t) => Some(t.text.trim().to_string()).filter(|s| !s.is_empty()),
        Err(_) if root.same_kernel() => nix::sys::utsname::uname()
            .ok()
            .map(|u| u.release().to_string_lossy().into_owned()),
        Err(_) => None,
    };
    let cmdline = root
        .read_text("proc/cmdline", CAP)
        .map(|t| crate::redact::mask_cmdline(split_cmdline(&t.text)))
        .unwrap_or_default();
    Kernel { release, cmdline }
}

/// Splits a kernel command line into words; double quotes group words and are removed.
pub fn split_cmdline(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut in_word = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            c => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(current);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_words_and_params() {
        let k = Kernel {
            release: None,
            cmdline: split_cmdline(
                "BOOT_IMAGE=(hd0,gpt3)/vmlinuz ostree=/ostree/boot.0/fedora-coreos/x/0 rw quiet \"dyndbg=file a.c +p\" selinux=1 selinux=0\n",
            ),
        };
        assert_eq!(k.cmdline.len(), 7);
        assert_eq!(k.param("ostree"), Some("/ostree/boot.0/fedora-coreos/x/0"));
        assert_eq!(k.param("quiet"), Some(""));
        assert_eq!(k.param("selinux"), Some("0"));
        assert_eq!(k.param("dyndbg"), Some("file a.c +p"));
        assert_eq!(k.param("missing"), None);
    }

    #[test]
    fn empty_cmdline() {
        assert!(split_cmdline("").is_empty());
        assert!(split_cmdline(" \n").is_empty());
    }
}
