//! Which known components are running (`--processes`, opt-in).
//!
//! Files say what is installed; only the process table says what runs. The `sysinfo` crate lists
//! the processes of `/proc` with only their name (`comm`) refreshed, and the command line of the few
//! whose name is not enough — no CPU, memory, disk, users, executable links or threads — and
//! [`component_of`] names the component a process is, from [`KNOWN`]. The one exception to "every
//! read goes through `Root`": sysinfo reads the live machine's `/proc`, so a scan describes a root
//! only when that root is the live machine or a host mounted from it whose PID namespace we share (a
//! DaemonSet pod with `hostPID: true`); [`refusal`] says why otherwise. Nothing else uses sysinfo, and a run without `--processes` never
//! reaches this module.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;

use sysinfo::{Pid, ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, System, UpdateKind};

use crate::facts::environment::ns_inode;
use crate::profile::{Component, Evidence};
use crate::root::{Failure, Root};
use crate::rules::RuleSet;

/// How a process shows itself to be a component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// The program's name: `comm`, or the file name of `argv[0]` where the kernel cut `comm` at 15
    /// bytes (`machine-config-daemon` shows as `machine-config-`).
    Name(&'static str),
    /// A program run with this first argument (`hyperkube kubelet`, `rpm-ostree start-daemon`).
    Sub(&'static str, &'static str),
    /// A JVM (`java`) whose arguments name this main class.
    JavaMain(&'static str),
}

use Pattern::{JavaMain, Name, Sub};

/// A component hostprint can tell running: its id (a component rule's id, a runtime's id as in
/// `runtimes[]`, or an update agent's as in `updates[]`), the name shown when no rule names it, and
/// the processes that are it. Names and arguments are those of the projects' own service units and
/// launchers.
pub struct Known {
    pub id: &'static str,
    pub name: &'static str,
    pub patterns: &'static [Pattern],
}

pub const KNOWN: &[Known] = &[
    // etcd v2 on CoreOS ran as `etcd2` (etcd2.service); v3, from the EL7 RPM, etcd-member's rkt fly
    // or a Kubernetes static pod, as `etcd`.
    known("etcd", "etcd", &[Name("etcd"), Name("etcd2")]),
    // kubeadm and most distributions run `kubelet`; CoreOS's kubelet-wrapper ran `hyperkube kubelet`.
    // k3s runs its kubelet inside the k3s process, not as one of its own.
    known(
        "kubelet",
        "kubelet",
        &[Name("kubelet"), Sub("hyperkube", "kubelet")],
    ),
    // The installer's binary re-executes itself as `k3s-server` or `k3s-agent` (what top shows); a
    // k3s started as plain `k3s` (k3d's image) keeps that name.
    known(
        "k3s",
        "K3s",
        &[Name("k3s-server"), Name("k3s-agent"), Name("k3s")],
    ),
    known("rke2", "RKE2", &[Name("rke2")]),
    known("containerd", "containerd", &[Name("containerd")]),
    // Docker before 1.12 ran its daemon as `docker daemon` (and, earlier still, `docker -d`).
    known(
        "docker",
        "Docker Engine",
        &[
            Name("dockerd"),
            Sub("docker", "daemon"),
            Sub("docker", "-d"),
        ],
    ),
    // `mesos-slave` is the agent's name before Mesos 1.0.
    known(
        "mesos",
        "Apache Mesos",
        &[
            Name("mesos-master"),
            Name("mesos-agent"),
            Name("mesos-slave"),
        ],
    ),
    known(
        "marathon",
        "Marathon",
        &[JavaMain("mesosphere.marathon.Main")],
    ),
    // zkServer.sh's main classes (replicated, standalone); DC/OS's Exhibitor starts it the same way.
    known(
        "zookeeper",
        "Apache ZooKeeper",
        &[
            JavaMain("org.apache.zookeeper.server.quorum.QuorumPeerMain"),
            JavaMain("org.apache.zookeeper.server.ZooKeeperServerMain"),
        ],
    ),
    known("fleet", "fleet", &[Name("fleetd"), Name("fleet")]),
    known("flannel", "flannel", &[Name("flanneld")]),
    // Its daemons, as vmware/photon SPECS/lightwave/lightwave.spec installs them: the directory,
    // certificate and DNS servers (lightwave) and the AFD client daemon (lightwave-client).
    known(
        "lightwave",
        "VMware Lightwave",
        &[
            Name("vmdird"),
            Name("vmcad"),
            Name("vmdnsd"),
            Name("vmafdd"),
        ],
    ),
    // Update agents. Most are daemons; updog runs only while Bottlerocket updates, and
    // transactional-update, bootc and sysupdate run from timers, too briefly to be worth a pattern.
    known("update_engine", "update_engine", &[Name("update_engine")]),
    known("locksmithd", "locksmithd", &[Name("locksmithd")]),
    known("zincati", "zincati", &[Name("zincati")]),
    // rpm-ostreed.service runs `rpm-ostree start-daemon`; every other rpm-ostree is a client.
    known(
        "rpm-ostree",
        "rpm-ostree",
        &[Sub("rpm-ostree", "start-daemon")],
    ),
    known("snapd", "snapd", &[Name("snapd")]),
    known("updog", "updog", &[Name("updog")]),
    known(
        "machine-config-daemon",
        "machine-config-daemon",
        &[Name("machine-config-daemon")],
    ),
];

const fn known(id: &'static str, name: &'static str, patterns: &'static [Pattern]) -> Known {
    Known { id, name, patterns }
}

/// The longest `comm` the kernel keeps (TASK_COMM_LEN 16, with its NUL).
const COMM_MAX: usize = 15;

/// The component `id` as [`KNOWN`] has it, if hostprint can tell it running.
pub fn known_component(id: &str) -> Option<&'static Known> {
    KNOWN.iter().find(|k| k.id == id)
}

/// The component a process is, from its `comm` and command line.
pub fn component_of<S: AsRef<OsStr>>(comm: &str, cmd: &[S]) -> Option<&'static str> {
    let arg = |i: usize| cmd.get(i).and_then(|a| a.as_ref().to_str());
    let name = program_name(comm, arg(0));
    KNOWN
        .iter()
        .find(|k| {
            k.patterns.iter().any(|p| match *p {
                Name(n) => name == n,
                Sub(n, first) => name == n && arg(1) == Some(first),
                JavaMain(class) => {
                    name == "java" && cmd.iter().skip(1).any(|a| a.as_ref() == class)
                }
            })
        })
        .map(|k| k.id)
}

/// `comm`, or `argv[0]`'s file name when `comm` is its cut-short start.
fn program_name<'a>(comm: &'a str, argv0: Option<&'a str>) -> &'a str {
    let base = argv0.and_then(|a| Path::new(a).file_name()?.to_str());
    match base {
        Some(base) if comm.len() == COMM_MAX && base.len() > COMM_MAX && base.starts_with(comm) => {
            base
        }
        _ => comm,
    }
}

/// Why `--processes` cannot describe `root`, or `None` when it can: the live root (unless its `proc`
/// is known to be another PID namespace's), or a host mounted from this running machine (same boot
/// id) whose `proc` is a procfs of our PID namespace.
pub fn refusal(root: &Root) -> Option<String> {
    let dir = root.dir().display();
    const ADVICE: &str = "run with hostPID: true (docker run --pid=host), or drop --processes";
    let other_namespace = || {
        format!(
            "--processes needs the host's PID namespace: {dir}/proc belongs to another PID \
             namespace than ours; {ADVICE}"
        )
    };
    // The live `/` is the directory `/` is, so a bind mount of it counts; its `proc` may still be
    // another namespace's (`mount --rbind / /host` seen from inside `unshare --pid --mount-proc`).
    // Refused only when that is known: an older kernel cannot always tell, and `/` is ours.
    if root.is_live() {
        return matches!(shares_pid_namespace(root), Ok(false)).then(other_namespace);
    }
    if !root.same_kernel() {
        return Some(format!(
            "--processes lists this machine's running processes, and {dir} is not this running \
             machine (its proc/sys/kernel/random/boot_id is missing or not ours: a recorded or \
             offline root); drop --processes"
        ));
    }
    match shares_pid_namespace(root) {
        Ok(true) => None,
        Ok(false) => Some(other_namespace()),
        Err(why) => Some(format!(
            "--processes needs the host's PID namespace, and whether we are in it cannot be told \
             ({why}); {ADVICE}"
        )),
    }
}

/// Whether the root's `proc` is a procfs of our PID namespace. Its `proc/self/status` is our own
/// process as that procfs sees it, and `NSpid` lists our pid in each namespace from the procfs's
/// down to ours: one entry, the same namespace (no privilege needed). Kernels before 4.1 have no
/// `NSpid`; there the root's PID 1 must be in our namespace (its link needs ptrace rights on it).
fn shares_pid_namespace(root: &Root) -> Result<bool, String> {
    let dir = root.dir().display();
    match root.read_text_quiet("proc/self/status", 64 << 10) {
        Ok(status) => {
            if let Some(levels) = nspid_levels(&status.text) {
                return Ok(levels == 1);
            }
        }
        Err(Failure::Absent) => {
            return Err(format!(
                "{dir}/proc/self/status is absent: no procfs there, or one that cannot see us"
            ))
        }
        Err(e) => return Err(format!("{dir}/proc/self/status: {e}")),
    }
    let theirs = root
        .readlink("proc/1/ns/pid")
        .map_err(|e| format!("{dir}/proc/1/ns/pid: {e}"))?;
    let ours = crate::root::own_namespace("pid").map_err(|e| format!("/proc/self/ns/pid: {e}"))?;
    let theirs = ns_inode(&theirs, "pid");
    Ok(theirs.is_some() && theirs == ns_inode(&ours, "pid"))
}

/// The number of PID namespaces in `NSpid:` of a `status` file (`NSpid:\t4242\t1` is 2).
fn nspid_levels(status: &str) -> Option<usize> {
    let line = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    Some(line.split_whitespace().count()).filter(|&n| n > 0)
}

/// The running known components and their pids (sorted), from the live `/proc`.
pub fn scan() -> BTreeMap<&'static str, Vec<u32>> {
    let _span = tracing::debug_span!("processes").entered();
    let mut system = System::new();
    // `nothing()` would still list every thread as a process of its own. `stat` alone gives the
    // name and the state; the command line is read only for the processes whose name is not enough
    // (reading it waits on the process's memory map lock, and most processes are no component).
    let names = ProcessRefreshKind::nothing().without_tasks();
    system.refresh_processes_specifics(ProcessesToUpdate::All, true, names);
    let ask: Vec<Pid> = system
        .processes()
        .iter()
        .filter(|(_, p)| needs_arguments(&p.name().to_string_lossy()))
        .map(|(&pid, _)| pid)
        .collect();
    let arguments = names.with_cmd(UpdateKind::Always);
    system.refresh_processes_specifics(ProcessesToUpdate::Some(&ask), true, arguments);
    let mut running: BTreeMap<&'static str, Vec<u32>> = BTreeMap::new();
    for (pid, process) in system.processes() {
        // Kernel threads can take any name; a zombie has exited.
        if process.thread_kind().is_some() || process.status() == ProcessStatus::Zombie {
            continue;
        }
        let comm = process.name().to_string_lossy();
        if let Some(id) = component_of(&comm, process.cmd()) {
            let comm = crate::redact::escape_control(&comm);
            tracing::debug!(pid = pid.as_u32(), comm = %comm, component = id, "running");
            running.entry(id).or_default().push(pid.as_u32());
        }
    }
    for pids in running.values_mut() {
        pids.sort_unstable();
    }
    running
}

/// Whether [`component_of`] needs a process's arguments besides its `comm`: a name the kernel may
/// have cut, or a program some pattern tells apart by its arguments (`java`, `hyperkube`, …).
fn needs_arguments(comm: &str) -> bool {
    comm.len() == COMM_MAX
        || KNOWN.iter().flat_map(|k| k.patterns).any(|p| match *p {
            Name(_) => false,
            Sub(program, _) => program == comm,
            JavaMain(_) => comm == "java",
        })
}

/// Says which of `components` run, from a [`scan`], and adds the known components that run although
/// no rule found them installed (an etcd started from a path no rule names is still etcd), named and
/// dated by their rule where one has their id. A component no [`KNOWN`] entry describes stays
/// `running: null`: hostprint cannot tell.
pub fn mark(
    components: &mut Vec<Component>,
    running: &BTreeMap<&'static str, Vec<u32>>,
    rules: &RuleSet,
) {
    for c in components.iter_mut() {
        if known_component(&c.id).is_some() {
            c.pids = running.get(c.id.as_str()).cloned().unwrap_or_default();
            c.running = Some(!c.pids.is_empty());
        }
    }
    for (&id, pids) in running {
        if components.iter().any(|c| c.id == id) {
            continue;
        }
        let Some(known) = known_component(id) else {
            continue;
        };
        let rule = rules.get(id);
        components.push(Component {
            id: id.to_string(),
            name: rule.map_or(known.name.to_string(), |r| r.name.to_string()),
            eol: rule.and_then(|r| r.eol.as_deref()).map(str::to_string),
            evidence: vec![Evidence {
                signal: "process",
                why: "found running in the process table; no component rule matched its files"
                    .into(),
                condition: describe(known.patterns),
                weight: 0,
            }],
            running: Some(true),
            pids: pids.clone(),
        });
    }
    components.sort_by(|a, b| a.id.cmp(&b.id));
}

/// `a process: etcd or etcd2`, `a process: java … mesosphere.marathon.Main`.
fn describe(patterns: &[Pattern]) -> String {
    let each: Vec<String> = patterns
        .iter()
        .map(|p| match *p {
            Name(n) => n.to_string(),
            Sub(n, first) => format!("{n} {first}"),
            JavaMain(class) => format!("java … {class}"),
        })
        .collect();
    format!("a process: {}", each.join(" or "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_name_their_components() {
        // (comm, argv, component)
        let table: &[(&str, &[&str], Option<&str>)] = &[
            (
                "etcd",
                &["/usr/local/bin/etcd", "--name", "m1"],
                Some("etcd"),
            ),
            ("etcd2", &["/usr/bin/etcd2"], Some("etcd")),
            (
                "kubelet",
                &["/usr/bin/kubelet", "--config=/x"],
                Some("kubelet"),
            ),
            (
                "hyperkube",
                &["/hyperkube", "kubelet", "--v=2"],
                Some("kubelet"),
            ),
            ("hyperkube", &["/hyperkube", "apiserver"], None),
            ("k3s-server", &["/usr/local/bin/k3s", "server"], Some("k3s")),
            ("k3s-agent", &["/usr/local/bin/k3s", "agent"], Some("k3s")),
            ("k3s", &["/bin/k3s", "server"], Some("k3s")),
            ("rke2", &["/usr/local/bin/rke2", "server"], Some("rke2")),
            ("containerd", &["/usr/bin/containerd"], Some("containerd")),
            // The shims are not the daemon (comm cut at 15 bytes, argv[0] longer).
            (
                "containerd-shim",
                &["/usr/bin/containerd-shim-runc-v2", "-namespace", "k8s.io"],
                None,
            ),
            (
                "dockerd",
                &["/usr/bin/dockerd", "-H", "fd://"],
                Some("docker"),
            ),
            ("docker", &["/usr/bin/docker", "daemon"], Some("docker")),
            ("docker", &["/usr/bin/docker", "-d"], Some("docker")),
            ("docker", &["docker", "ps"], None),
            (
                "mesos-master",
                &["/opt/mesosphere/bin/mesos-master"],
                Some("mesos"),
            ),
            (
                "mesos-agent",
                &["mesos-agent", "--work_dir=/x"],
                Some("mesos"),
            ),
            ("mesos-slave", &["mesos-slave"], Some("mesos")),
            (
                "java",
                &[
                    "java",
                    "-Xmx1g",
                    "-cp",
                    "marathon.jar",
                    "mesosphere.marathon.Main",
                    "--master",
                    "zk://x",
                ],
                Some("marathon"),
            ),
            (
                "java",
                &[
                    "/usr/bin/java",
                    "-cp",
                    "zk.jar",
                    "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                    "/x/zoo.cfg",
                ],
                Some("zookeeper"),
            ),
            (
                "java",
                &[
                    "java",
                    "org.apache.zookeeper.server.ZooKeeperServerMain",
                    "2181",
                    "/data",
                ],
                Some("zookeeper"),
            ),
            // A class name in someone else's arguments is not that JVM.
            ("grep", &["grep", "mesosphere.marathon.Main"], None),
            ("java", &["java", "-jar", "jenkins.war"], None),
            ("fleetd", &["/usr/bin/fleetd"], Some("fleet")),
            (
                "flanneld",
                &["/opt/bin/flanneld", "--ip-masq"],
                Some("flannel"),
            ),
            (
                "update_engine",
                &["/usr/sbin/update_engine", "-foreground"],
                Some("update_engine"),
            ),
            (
                "locksmithd",
                &["/usr/lib/locksmith/locksmithd"],
                Some("locksmithd"),
            ),
            (
                "zincati",
                &["/usr/libexec/zincati", "agent", "-v"],
                Some("zincati"),
            ),
            (
                "rpm-ostree",
                &["rpm-ostree", "start-daemon"],
                Some("rpm-ostree"),
            ),
            ("rpm-ostree", &["rpm-ostree", "status"], None),
            ("snapd", &["/usr/lib/snapd/snapd"], Some("snapd")),
            ("updog", &["/usr/bin/updog", "check-update"], Some("updog")),
            (
                "machine-config-",
                &["/usr/bin/machine-config-daemon", "start"],
                Some("machine-config-daemon"),
            ),
            // Prefixes and lookalikes are not the component.
            ("etcdctl", &["etcdctl", "member", "list"], None),
            ("kubectl", &["kubectl", "get", "nodes"], None),
            (
                "k3s-killall.sh",
                &["/bin/sh", "/usr/local/bin/k3s-killall.sh"],
                None,
            ),
            // A process whose command line is gone (it is exiting, or hidden) still has its name.
            ("etcd", &[], Some("etcd")),
        ];
        for (comm, argv, want) in table {
            assert_eq!(component_of(comm, argv), *want, "{comm} {argv:?}");
            // The scan reads the arguments only where the name is not enough: same answer.
            let seen: &[&str] = if needs_arguments(comm) { argv } else { &[] };
            assert_eq!(
                component_of(comm, seen),
                *want,
                "{comm} without its arguments"
            );
        }
    }

    #[test]
    fn a_cut_comm_takes_argv0s_name_only_when_it_is_its_start() {
        assert_eq!(
            program_name("machine-config-", Some("/usr/bin/machine-config-daemon")),
            "machine-config-daemon"
        );
        // Not cut (shorter than 15 bytes): comm is the name, whatever argv[0] says (a process may
        // rewrite its arguments).
        assert_eq!(program_name("etcd", Some("/usr/bin/etcd-wrapper")), "etcd");
        // 15 bytes but argv[0] is another program: comm stands.
        assert_eq!(
            program_name("abcdefghijklmno", Some("/bin/zzzzzzzzzzzzzzzzzz")),
            "abcdefghijklmno"
        );
        assert_eq!(program_name("abcdefghijklmno", None), "abcdefghijklmno");
    }

    #[test]
    fn every_known_component_has_a_unique_id_and_a_pattern() {
        let mut ids: Vec<_> = KNOWN.iter().map(|k| k.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), KNOWN.len());
        assert!(KNOWN.iter().all(|k| !k.patterns.is_empty()));
        assert_eq!(known_component("etcd").map(|k| k.name), Some("etcd"));
        assert!(known_component("rkt").is_none());
    }

    /// A root that shares our boot id (so: this running machine), with `files` in it.
    fn mounted_host(files: &[(&str, &str)]) -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        let boot_id = crate::root::own_boot_id().unwrap();
        let boot = [("proc/sys/kernel/random/boot_id", boot_id.as_str())];
        for (path, text) in boot.iter().chain(files) {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            match text.strip_prefix("-> ") {
                Some(link) => std::os::unix::fs::symlink(link, path).unwrap(),
                None => std::fs::write(path, text).unwrap(),
            }
        }
        let root = Root::open(dir.path()).unwrap();
        assert!(root.same_kernel());
        (dir, root)
    }

    #[test]
    fn only_a_root_in_our_pid_namespace_is_scanned() {
        assert_eq!(refusal(&Root::open(Path::new("/")).unwrap()), None);

        // NSpid: one level is a procfs of our own namespace; two, of the one above ours.
        let (_dir, same) = mounted_host(&[("proc/self/status", "Name:\tx\nNSpid:\t4242\n")]);
        assert_eq!(refusal(&same), None);
        let (_dir, above) = mounted_host(&[("proc/self/status", "NSpid:\t4242\t7\n")]);
        let why = refusal(&above).unwrap();
        assert!(why.contains("needs the host's PID namespace"), "{why}");
        assert!(why.contains("another PID namespace"), "{why}");
        assert!(why.contains("hostPID: true"), "{why}");

        // Without NSpid (Linux < 4.1), PID 1's namespace link decides.
        let ours = format!("-> {}", crate::root::own_namespace("pid").unwrap());
        let old = [
            ("proc/self/status", "Name:\tx\n"),
            ("proc/1/ns/pid", ours.as_str()),
        ];
        let (_dir, same) = mounted_host(&old);
        assert_eq!(refusal(&same), None);
        let old = [
            ("proc/self/status", "Name:\tx\n"),
            ("proc/1/ns/pid", "-> pid:[4026532999]"),
        ];
        let (_dir, other) = mounted_host(&old);
        assert!(refusal(&other).unwrap().contains("another PID namespace"));
        let (_dir, unknown) = mounted_host(&[("proc/self/status", "Name:\tx\n")]);
        let why = refusal(&unknown).unwrap();
        assert!(why.contains("cannot be told"), "{why}");
        assert!(why.contains("proc/1/ns/pid: absent"), "{why}");

        let (_dir, no_proc) = mounted_host(&[]);
        let why = refusal(&no_proc).unwrap();
        assert!(why.contains("proc/self/status is absent"), "{why}");

        // Not this running machine: no boot id (a root all the same: it has an etc/).
        let recorded = tempfile::tempdir().unwrap();
        std::fs::create_dir(recorded.path().join("etc")).unwrap();
        let why = refusal(&Root::open(recorded.path()).unwrap()).unwrap();
        assert!(why.contains("is not this running machine"), "{why}");
    }

    #[test]
    fn nspid_counts_namespaces() {
        assert_eq!(nspid_levels("Name:\tsh\nNSpid:\t12\n"), Some(1));
        assert_eq!(nspid_levels("NSpid:\t4242\t12\t1\n"), Some(3));
        assert_eq!(nspid_levels("NSpid:\n"), None);
        assert_eq!(nspid_levels("Name:\tsh\n"), None);
    }
}
