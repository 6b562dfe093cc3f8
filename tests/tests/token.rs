//! BPF token scenarios in real user namespaces (libbpf's token selftests, adapted).
//!
//! Each scenario runs through `userns-helper` (see `bpfload_tests::userns`): a fresh user and
//! mount namespace, a bpffs whose `delegate_*` options the privileged parent set, and the
//! scenario command running as uid 0 of the namespace.

use std::path::PathBuf;

use bpfload_tests::require_root;
use bpfload_tests::userns::{Delegation, MountAt, UsernsCommand, HARNESS_FAILURE};

const HELPER: &str = env!("CARGO_BIN_EXE_userns-helper");

fn userns(program: &str) -> UsernsCommand {
    UsernsCommand::new(HELPER, program)
}

fn stdout_of(c: &UsernsCommand) -> String {
    let out = c.output().expect("spawn userns-helper");
    assert!(
        out.status.success(),
        "helper failed ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A private scratch directory under /tmp, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("bpfload-token-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("mkdir temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

// ---------------------------------------------------------------------------------------------
// The harness itself.

#[test]
fn harness_runs_as_namespace_root_with_the_parents_delegation() {
    if !require_root("token harness") {
        return;
    }
    let out = stdout_of(
        &userns("sh")
            .delegate(Delegation::new(
                "map_create:prog_load",
                "queue",
                "xdp",
                "any",
            ))
            .mount_at(MountAt::SysFsBpf)
            .args([
                "-c",
                "cat /proc/self/uid_map; id -u; cat /proc/self/mountinfo",
            ]),
    );
    let mut lines = out.lines();
    let map: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(map[0], "0", "uid 0 inside: {out}");
    assert_eq!(map[2], "1", "a single mapped id: {out}");
    assert_eq!(lines.next(), Some("0"));
    // The kernel shows the options it parsed (names, lower case; `any` for all bits).
    let bpffs = out
        .lines()
        .filter(|l| l.contains(" /sys/fs/bpf ") && l.contains(" - bpf "))
        .last()
        .expect("a bpffs on /sys/fs/bpf");
    assert!(
        bpffs.contains(
            "delegate_cmds=map_create:prog_load,delegate_maps=queue,delegate_progs=xdp,delegate_attachs=any"
        ),
        "{bpffs}"
    );
}

#[test]
fn harness_private_dir_mount_is_invisible_to_the_host() {
    if !require_root("token harness") {
        return;
    }
    let dir = TempDir::new("harness");
    let inside = stdout_of(
        &userns("cat")
            .delegate(Delegation::new("0x1", "", "", ""))
            .mount_at(MountAt::Dir(dir.0.clone()))
            .arg("/proc/self/mountinfo"),
    );
    let needle = format!(" {} ", dir.0.display());
    let line = inside
        .lines()
        .find(|l| l.contains(&needle))
        .unwrap_or_else(|| panic!("no mount at {} inside: {inside}", dir.0.display()));
    // A number assigns the mask; bit 0 is map_create.
    assert!(line.contains("delegate_cmds=map_create"), "{line}");
    let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !host.contains(&needle),
        "the host sees the namespace's mount"
    );
}

#[test]
fn harness_fd_mode_substitutes_the_mount_path() {
    if !require_root("token harness") {
        return;
    }
    let out = stdout_of(
        &userns("sh")
            .delegate(Delegation::any())
            .mount_at(MountAt::Fd)
            .env("SEEN", "{bpffs}")
            .args([
                "-c",
                "echo {bpffs} $SEEN $USERNS_BPFFS; stat -f -c %T {bpffs}/",
            ]),
    );
    let mut it = out.split_whitespace();
    let p = it.next().unwrap();
    assert!(p.starts_with("/proc/self/fd/"), "{out}");
    assert_eq!(it.next(), Some(p));
    assert_eq!(it.next(), Some(p));
    assert_eq!(it.next(), Some("bpf_fs"), "{out}");
}

#[test]
fn harness_reports_its_own_failures() {
    if !require_root("token harness") {
        return;
    }
    let dir = TempDir::new("harness-fail");
    let missing = dir.0.join("missing");
    let out = userns("true")
        .delegate(Delegation::any())
        .mount_at(MountAt::Dir(missing.clone()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(HARNESS_FAILURE));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("move_mount") && err.contains("missing"),
        "{err}"
    );
    // A bad delegation name is refused by the kernel in the parent's fsconfig.
    let out = userns("true")
        .delegate(Delegation::new("no_such_cmd", "", "", ""))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(HARNESS_FAILURE));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("delegate_cmds=no_such_cmd"), "{err}");
}

#[test]
fn harness_propagates_the_scenario_status() {
    if !require_root("token harness") {
        return;
    }
    let out = userns("sh")
        .mount_at(MountAt::NoBpffs)
        .args(["-c", "exit 7"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
}
