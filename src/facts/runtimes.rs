//! Container runtimes, found by their sockets.
//!
//! A socket is looked at with `stat` and never connected to: connecting would be a side effect on the
//! host and could hang on a wedged daemon. The table lists the default endpoints of each runtime and
//! of the container OSes that run their own (RancherOS' System Docker, k3s' embedded containerd,
//! Bottlerocket's host-containerd, Talos' system containerd). A path that exists but is not a socket
//! (a directory left by a bad bind mount is common) is reported as a warning, not a runtime.

use schemars::JsonSchema;
use serde::Serialize;

use crate::root::{FileKind, Root};
use crate::warning::{Code, Warning};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Runtime {
    pub id: &'static str,
    pub socket: String,
}

/// Runtime id and socket paths; `var/run` is usually a link to `../run`, but old hosts (CoreOS,
/// RancherOS) and some containers have it as a directory, so both spellings are listed. Rules may
/// name only these ids (`runtime = "…"`).
pub const SOCKETS: &[(&str, &str)] = &[
    ("docker", "run/docker.sock"),
    ("docker", "var/run/docker.sock"),
    ("containerd", "run/containerd/containerd.sock"),
    ("containerd", "var/run/containerd/containerd.sock"),
    ("cri-o", "run/crio/crio.sock"),
    ("cri-o", "var/run/crio/crio.sock"),
    ("podman", "run/podman/podman.sock"),
    ("system-docker", "var/run/system-docker.sock"),
    ("system-docker", "run/system-docker.sock"),
    ("k3s-containerd", "run/k3s/containerd/containerd.sock"),
    (
        "bottlerocket-host-containerd",
        "run/host-containerd/containerd.sock",
    ),
    (
        "talos-system-containerd",
        "system/run/containerd/containerd.sock",
    ),
    ("cri-dockerd", "run/cri-dockerd.sock"),
];

pub fn probe(root: &Root) -> Vec<Runtime> {
    let mut found: Vec<Runtime> = Vec::new();
    for (id, path) in SOCKETS {
        if found.iter().any(|r| r.id == *id) {
            continue;
        }
        match root.stat(path) {
            Ok(FileKind::Socket) => found.push(Runtime {
                id,
                socket: path.to_string(),
            }),
            Ok(other) => root.warn(Warning::at(
                Code::WrongKind,
                path,
                format!("expected the {id} socket, found a {}", other.as_str()),
            )),
            Err(_) => {}
        }
    }
    found
}
