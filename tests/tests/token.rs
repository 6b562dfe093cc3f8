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
        .rfind(|l| l.contains(" /sys/fs/bpf ") && l.contains(" - bpf "))
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

// ---------------------------------------------------------------------------------------------
// Object-level scenarios (libbpf's obj_priv_* selftests, adapted), through `token-scenario`.

const SCENARIO: &str = env!("CARGO_BIN_EXE_token-scenario");

fn fixture(name: &str) -> String {
    bpfload_tests::fixture(name).to_string_lossy().into_owned()
}

/// Runs `token-scenario OBJECT ARGS...` in a namespace and returns its JSON, after checking the
/// invariants every scenario shares: nothing leaked, no token fd left after drop, and a held
/// token is a close-on-exec `bpf-token` fd above 2.
fn run_scenario(cmd: UsernsCommand) -> serde_json::Value {
    let out = cmd.output().expect("spawn userns-helper");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scenario failed to run ({:?}): {stderr}{stdout}",
        out.status
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("bad scenario output ({e}): {stdout}\n{stderr}"));
    check_hygiene(&v);
    v
}

fn check_hygiene(v: &serde_json::Value) {
    assert_eq!(v["leaked"], serde_json::json!([]), "fds leaked: {v}");
    assert_eq!(v["fds_after"], v["fds_before"], "{v}");
    assert_eq!(v["token_fds_after"], 0, "token fd not closed on drop: {v}");
    // Created at load, never at open (when the scenario got as far as opening).
    if !v["token_fds_after_open"].is_null() {
        assert_eq!(
            v["token_fds_after_open"], v["token_fds_before_open"],
            "token created at open: {v}"
        );
    }
    if v["ok"] == true {
        // The loaded object holds exactly one token fd (its own), or none.
        let held = v["token_fds_loaded"].as_u64().unwrap();
        assert_eq!(held, v["token_fd"].is_object() as u64, "{v}");
    }
    if let Some(t) = v["token_fd"].as_object() {
        assert!(t["fd"].as_i64().unwrap() > 2, "{v}");
        assert_eq!(t["cloexec"], true, "{v}");
        let target = t["target"].as_str().unwrap_or("");
        assert!(target.contains("bpf-token"), "not a token: {target}");
    }
}

fn scenario(d: Delegation, mount: MountAt, object: &str) -> UsernsCommand {
    userns(SCENARIO)
        .delegate(d)
        .mount_at(mount)
        .arg(fixture(object))
}

fn assert_loaded_with_token(v: &serde_json::Value, mode: &str) {
    assert_eq!(v["ok"], true, "load failed: {v}");
    assert_eq!(v["token"]["mode"], mode, "{v}");
    assert_eq!(v["token"]["created"], true, "{v}");
    assert!(
        v["token_fd"].is_object(),
        "no token held by the loaded object: {v}"
    );
    for p in v["programs"].as_array().unwrap() {
        assert_eq!(p["loaded"], true, "{v}");
    }
}

fn assert_failed_with(v: &serde_json::Value, needles: &[&str]) {
    assert_eq!(v["ok"], false, "load succeeded unexpectedly: {v}");
    let e = v["error"].as_str().unwrap_or("");
    for n in needles {
        assert!(e.contains(n), "error lacks {n:?}: {e}");
    }
}

#[test]
fn obj_priv_map_needs_map_create_and_queue() {
    if !require_root("token scenario") {
        return;
    }
    let d = Delegation::new("map_create", "queue", "", "");
    let v = run_scenario(
        scenario(d.clone(), MountAt::Fd, "token_map").args(["--token-path", "{bpffs}"]),
    );
    assert_loaded_with_token(&v, "explicit");
    assert_eq!(v["maps"], serde_json::json!(["priv_map"]), "{v}");
    // Without the token the namespace has no privilege at all.
    let v = run_scenario(scenario(d, MountAt::Fd, "token_map").args(["--token-path", ""]));
    assert_failed_with(&v, &["EPERM", "no BPF token was used"]);
}

#[test]
fn obj_priv_prog_xdp_with_prog_load_xdp_and_any_attach() {
    if !require_root("token scenario") {
        return;
    }
    let d = Delegation::new("prog_load", "", "xdp", "any");
    let v = run_scenario(
        scenario(d.clone(), MountAt::Fd, "token_xdp").args(["--token-path", "{bpffs}"]),
    );
    assert_loaded_with_token(&v, "explicit");
    assert_eq!(v["programs"][0]["name"], "xdp_prog1");
    let v = run_scenario(scenario(d, MountAt::Fd, "token_xdp").args(["--token-path", ""]));
    assert_failed_with(&v, &["EPERM", "no BPF token was used"]);
}

#[test]
fn caller_token_fd_is_duplicated_and_outlives_the_callers_copy() {
    if !require_root("token scenario") {
        return;
    }
    let d = Delegation::new("prog_load", "", "xdp", "any");
    let v =
        run_scenario(scenario(d, MountAt::Fd, "token_xdp").args(["--token-fd-from", "{bpffs}"]));
    assert_loaded_with_token(&v, "explicit");
    assert_eq!(v["token"]["path"], serde_json::Value::Null, "{v}");
}

#[test]
fn btf_load_delegated_vs_not_for_an_object_that_needs_btf() {
    if !require_root("token scenario") {
        return;
    }
    let with = Delegation::new("map_create:prog_load:btf_load", "array", "xdp", "any");
    let v =
        run_scenario(scenario(with, MountAt::Fd, "token_btf").args(["--token-path", "{bpffs}"]));
    assert_loaded_with_token(&v, "explicit");
    // Without btf_load the map loses its BTF and the verifier refuses bpf_spin_lock.
    let without = Delegation::new("map_create:prog_load", "array", "xdp", "any");
    let v =
        run_scenario(scenario(without, MountAt::Fd, "token_btf").args(["--token-path", "{bpffs}"]));
    assert_failed_with(
        &v,
        &[
            "xdp_locked",
            "has to have BTF in order to use bpf_spin_lock",
            "the object's BTF was not loaded because the token does not delegate btf_load: add btf_load to delegate_cmds",
        ],
    );
}

#[test]
fn implicit_token_from_sys_fs_bpf_and_the_empty_path_overrides() {
    if !require_root("token scenario") {
        return;
    }
    let d = Delegation::new("map_create:prog_load:btf_load", "queue", "xdp", "any");
    // Neither option nor variable: implicit mode finds the delegated /sys/fs/bpf.
    let v = run_scenario(scenario(d.clone(), MountAt::SysFsBpf, "token_map"));
    assert_loaded_with_token(&v, "implicit");
    assert_eq!(v["token"]["path"], "/sys/fs/bpf");
    // LIBBPF_BPF_TOKEN_PATH="" disables tokens: the load fails for lack of privilege.
    let v = run_scenario(
        scenario(d.clone(), MountAt::SysFsBpf, "token_map").env("LIBBPF_BPF_TOKEN_PATH", ""),
    );
    assert_failed_with(&v, &["EPERM"]);
    // --token-path "" beats a variable that names a good bpffs.
    let v = run_scenario(
        scenario(d.clone(), MountAt::SysFsBpf, "token_map")
            .env("LIBBPF_BPF_TOKEN_PATH", "/sys/fs/bpf")
            .args(["--token-path", ""]),
    );
    assert_failed_with(&v, &["EPERM"]);
    // And the variable alone (explicit mode) works.
    let v = run_scenario(
        scenario(d, MountAt::SysFsBpf, "token_map").env("LIBBPF_BPF_TOKEN_PATH", "/sys/fs/bpf"),
    );
    assert_loaded_with_token(&v, "explicit");
}

#[test]
fn envvar_pointing_at_a_custom_directory() {
    if !require_root("token scenario") {
        return;
    }
    let dir = TempDir::new("envvar");
    let dirs = dir.0.to_string_lossy().into_owned();
    let d = Delegation::new("map_create", "queue", "", "");
    // The delegated bpffs is not at /sys/fs/bpf: implicit mode silently finds no token there.
    let v = run_scenario(scenario(
        d.clone(),
        MountAt::Dir(dir.0.clone()),
        "token_map",
    ));
    assert_failed_with(&v, &["EPERM"]);
    let v = run_scenario(
        scenario(d.clone(), MountAt::Dir(dir.0.clone()), "token_map")
            .env("LIBBPF_BPF_TOKEN_PATH", &dirs),
    );
    assert_loaded_with_token(&v, "explicit");
    assert_eq!(v["token"]["path"], dirs.as_str());
    // The empty option beats the variable.
    let v = run_scenario(
        scenario(d, MountAt::Dir(dir.0.clone()), "token_map")
            .env("LIBBPF_BPF_TOKEN_PATH", &dirs)
            .args(["--token-path", ""]),
    );
    assert_failed_with(&v, &["EPERM"]);
}

#[test]
fn explicit_path_missing_or_not_delegated_fails_naming_path_and_errno() {
    if !require_root("token scenario") {
        return;
    }
    let d = Delegation::new("map_create", "queue", "", "");
    let v = run_scenario(
        scenario(d, MountAt::SysFsBpf, "token_map").args(["--token-path", "/nonexistent/bpffs"]),
    );
    assert_failed_with(&v, &["/nonexistent/bpffs", "ENOENT", "does not exist"]);
    assert_eq!(v["token"]["mode"], "explicit", "{v}");
    assert_eq!(v["token"]["created"], false, "{v}");
    // A bpffs with no delegation at all: BPF_TOKEN_CREATE says ENOENT.
    let v = run_scenario(
        scenario(Delegation::none(), MountAt::Fd, "token_map").args(["--token-path", "{bpffs}"]),
    );
    assert_failed_with(&v, &["/proc/self/fd/", "ENOENT", "delegates nothing"]);
    // Through the variable, a directory that is not a bpffs: EINVAL.
    let v = run_scenario(
        scenario(Delegation::none(), MountAt::NoBpffs, "token_map")
            .env("LIBBPF_BPF_TOKEN_PATH", "/tmp"),
    );
    assert_failed_with(&v, &["/tmp", "EINVAL", "LIBBPF_BPF_TOKEN_PATH"]);
    // The host's bpffs belongs to the initial user namespace: EPERM from inside ours.
    let v = run_scenario(
        scenario(Delegation::none(), MountAt::NoBpffs, "token_map")
            .args(["--token-path", "/sys/fs/bpf"]),
    );
    assert_failed_with(&v, &["/sys/fs/bpf", "EPERM", "different user namespace"]);
}

#[test]
fn implicit_mode_as_root_in_the_initial_namespace_still_loads_quietly() {
    if !require_root("token scenario") {
        return;
    }
    let out = std::process::Command::new(SCENARIO)
        .arg(fixture("token_narrow"))
        .env_remove("LIBBPF_BPF_TOKEN_PATH")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    check_hygiene(&v);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["token"]["mode"], "implicit");
    assert_eq!(v["token"]["created"], false);
    assert!(v["token_fd"].is_null());
    // The report says why (EOPNOTSUPP in the initial namespace), nothing is printed.
    assert!(
        v["token"]["error"]
            .as_str()
            .unwrap_or("")
            .contains("EOPNOTSUPP"),
        "{v}"
    );
    assert!(!stderr.to_lowercase().contains("token"), "{stderr}");
    // Explicitly asking for a token here is an error (EOPNOTSUPP), never a silent fallback.
    let out = std::process::Command::new(SCENARIO)
        .arg(fixture("token_narrow"))
        .args(["--token-path", "/sys/fs/bpf"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    check_hygiene(&v);
    assert_failed_with(&v, &["/sys/fs/bpf", "EOPNOTSUPP", "initial user namespace"]);
}

#[test]
fn narrow_delegation_covering_exactly_global_data_hash_and_xdp_loads() {
    if !require_root("token scenario") {
        return;
    }
    // Exactly what token_narrow.bpf.o needs: no socket_filter program type, so libbpf's
    // probes (socket_filter + array) cannot run under this token; libbpf 1.7 fails here in
    // bpf_object__probe_loading() with EPERM.
    let d = Delegation::new("map_create:prog_load:btf_load", "array:hash", "xdp", "xdp");
    let v = run_scenario(scenario(d, MountAt::SysFsBpf, "token_narrow"));
    assert_loaded_with_token(&v, "implicit");
    let maps = v["maps"].as_array().unwrap();
    assert!(maps.iter().any(|m| m == "by_len"), "{v}");
    assert!(
        maps.iter()
            .any(|m| m.as_str().unwrap().ends_with(".rodata")),
        "{v}"
    );
    assert!(
        maps.iter().any(|m| m.as_str().unwrap().ends_with(".data")),
        "{v}"
    );
    assert!(
        maps.iter().any(|m| m.as_str().unwrap().ends_with(".bss")),
        "{v}"
    );
}

#[test]
fn delegation_missing_one_program_type_names_it() {
    if !require_root("token scenario") {
        return;
    }
    let d = Delegation::new(
        "map_create:prog_load:btf_load",
        "array:hash",
        "socket_filter",
        "xdp",
    );
    let v = run_scenario(scenario(d, MountAt::SysFsBpf, "token_narrow"));
    assert_failed_with(
        &v,
        &["program 'handle_xdp' needs prog type xdp: add xdp to delegate_progs"],
    );
    // Missing the attach type instead.
    let d = Delegation::new(
        "map_create:prog_load:btf_load",
        "array:hash",
        "xdp",
        "cgroup_inet_ingress",
    );
    let v = run_scenario(scenario(d, MountAt::SysFsBpf, "token_narrow"));
    assert_failed_with(
        &v,
        &["program 'handle_xdp' needs attach type xdp: add xdp to delegate_attachs"],
    );
    // Missing a map type.
    let d = Delegation::new("map_create:prog_load:btf_load", "array", "xdp", "xdp");
    let v = run_scenario(scenario(d, MountAt::SysFsBpf, "token_narrow"));
    assert_failed_with(
        &v,
        &["map 'by_len' needs map type hash: add hash to delegate_maps"],
    );
}

#[test]
fn eperm_despite_a_token_names_the_missing_delegation() {
    if !require_root("token scenario") {
        return;
    }
    // The pinned map might be reused from its pin, so the pre-load check only warns; no pin
    // exists in the fresh bpffs, MAP_CREATE gets EPERM, and the error says what was missing.
    let d = Delegation::new("map_create:prog_load:btf_load", "array", "xdp", "xdp");
    let out = scenario(d, MountAt::SysFsBpf, "token_pinned")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    check_hygiene(&v);
    assert_failed_with(
        &v,
        &[
            "token_pinned_counts",
            "EPERM",
            "the token does not delegate map type hash: add hash to delegate_maps",
        ],
    );
    // The warning came first, at load time.
    assert!(
        stderr.contains("map 'token_pinned_counts' needs map type hash"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// Conformance with libbpf 1.7 in the same namespaces, through compat's `libbpf-dump` (outside
// the default build: it links C). Set BPFLOAD_LIBBPF_DUMP to its path to run this, e.g.
// `BPFLOAD_LIBBPF_DUMP=$CARGO_TARGET_DIR/debug/libbpf-dump` after
// `cd compat && cargo build --bin libbpf-dump`.

/// One object, one namespace setup: whether libbpf loads it, and whether bpfload does.
struct Case {
    what: &'static str,
    delegation: Delegation,
    mount: MountAt,
    env: Option<&'static str>,
    object: &'static str,
    /// libbpf's answer is the right one (bpfload must agree); false where libbpf fails only
    /// because of its own limitation (bpfload must load, libbpf must fail).
    libbpf_right: bool,
}

fn libbpf_loads(dump: &str, c: &Case) -> bool {
    let out_dir = std::env::temp_dir().join(format!(
        "bpfload-libbpf-{}-{}",
        c.object,
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&out_dir);
    let mut cmd = userns(dump)
        .delegate(c.delegation.clone())
        .mount_at(c.mount.clone())
        .arg(fixture(c.object))
        .arg(&out_dir);
    if let Some(e) = c.env {
        cmd = cmd.env("LIBBPF_BPF_TOKEN_PATH", e);
    }
    let out = cmd.output().unwrap();
    assert_ne!(
        out.status.code(),
        Some(HARNESS_FAILURE),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = std::fs::read_to_string(out_dir.join("summary.json"))
        .unwrap_or_else(|e| panic!("{}: no libbpf summary ({e})", c.what));
    let _ = std::fs::remove_dir_all(&out_dir);
    let v: serde_json::Value = serde_json::from_str(&summary).unwrap();
    let progs = v["programs"].as_array().unwrap();
    !progs.is_empty() && progs.iter().all(|p| p["result"] == "ok")
}

/// The same case through the command line: `bpfload load OBJECT --json`.
fn cli_loads(bin: &str, c: &Case) -> bool {
    let mut cmd = userns(bin)
        .delegate(c.delegation.clone())
        .mount_at(c.mount.clone())
        .args(["load", &fixture(c.object), "--json"]);
    if let Some(e) = c.env {
        cmd = cmd.env("LIBBPF_BPF_TOKEN_PATH", e);
    }
    let (code, v, text) = cli_json(cmd);
    assert_eq!(v["ok"] == true, code == Some(0), "{}: {text}", c.what);
    code == Some(0)
}

fn bpfload_loads(c: &Case) -> bool {
    let mut cmd = scenario(c.delegation.clone(), c.mount.clone(), c.object);
    if let Some(e) = c.env {
        cmd = cmd.env("LIBBPF_BPF_TOKEN_PATH", e);
    }
    run_scenario(cmd)["ok"] == true
}

#[test]
fn libbpf_agrees_where_it_is_right() {
    let Ok(dump) = std::env::var("BPFLOAD_LIBBPF_DUMP") else {
        eprintln!("SKIP libbpf conformance: BPFLOAD_LIBBPF_DUMP is not set (compat's libbpf-dump)");
        return;
    };
    if !require_root("libbpf token conformance") {
        return;
    }
    let dir = TempDir::new("libbpf");
    let dir_s: &'static str = Box::leak(dir.0.to_string_lossy().into_owned().into_boxed_str());
    let any = Delegation::any;
    let cases = [
        Case {
            what: "implicit token, broad delegation",
            delegation: any(),
            mount: MountAt::SysFsBpf,
            env: None,
            object: "token_narrow",
            libbpf_right: true,
        },
        Case {
            what: "implicit token, object needing BTF",
            delegation: any(),
            mount: MountAt::SysFsBpf,
            env: None,
            object: "token_btf",
            libbpf_right: true,
        },
        Case {
            what: "BTF load not delegated",
            delegation: Delegation::new("map_create:prog_load", "any", "any", "any"),
            mount: MountAt::SysFsBpf,
            env: None,
            object: "token_btf",
            libbpf_right: true,
        },
        Case {
            what: "xdp not delegated",
            delegation: Delegation::new("any", "any", "socket_filter", "any"),
            mount: MountAt::SysFsBpf,
            env: None,
            object: "token_narrow",
            libbpf_right: true,
        },
        Case {
            what: "LIBBPF_BPF_TOKEN_PATH=\"\"",
            delegation: any(),
            mount: MountAt::SysFsBpf,
            env: Some(""),
            object: "token_narrow",
            libbpf_right: true,
        },
        Case {
            what: "LIBBPF_BPF_TOKEN_PATH missing",
            delegation: any(),
            mount: MountAt::SysFsBpf,
            env: Some("/nonexistent"),
            object: "token_narrow",
            libbpf_right: true,
        },
        Case {
            what: "custom dir, no variable",
            delegation: any(),
            mount: MountAt::Dir(dir.0.clone()),
            env: None,
            object: "token_narrow",
            libbpf_right: true,
        },
        Case {
            what: "custom dir through the variable",
            delegation: any(),
            mount: MountAt::Dir(dir.0.clone()),
            env: Some(dir_s),
            object: "token_narrow",
            libbpf_right: true,
        },
        Case {
            what: "no bpffs, not a bpffs in the variable",
            delegation: Delegation::none(),
            mount: MountAt::NoBpffs,
            env: Some("/tmp"),
            object: "token_narrow",
            libbpf_right: true,
        },
        Case {
            what: "struct_ops with the member indexes' attach bits",
            delegation: Delegation::new("any", "any", "any", "0x103"),
            mount: MountAt::SysFsBpf,
            env: None,
            object: "token_struct_ops",
            libbpf_right: true,
        },
        Case {
            what: "struct_ops lacking two member indexes' attach bits",
            delegation: Delegation::new("any", "any", "any", "0x1"),
            mount: MountAt::SysFsBpf,
            env: None,
            object: "token_struct_ops",
            libbpf_right: true,
        },
        // libbpf 1.7 runs bpf_object__probe_loading() (a socket_filter program) under the
        // token and fails with EPERM when the token delegates only what the object needs.
        Case {
            what: "narrow delegation",
            delegation: Delegation::new(
                "map_create:prog_load:btf_load",
                "array:hash",
                "xdp",
                "xdp",
            ),
            mount: MountAt::SysFsBpf,
            env: None,
            object: "token_narrow",
            libbpf_right: false,
        },
        Case {
            what: "xdp-only token",
            delegation: Delegation::new("prog_load", "", "xdp", "xdp"),
            mount: MountAt::SysFsBpf,
            env: None,
            object: "token_xdp",
            libbpf_right: false,
        },
    ];
    let bin = bpfload_bin();
    let bin = bin.to_str().unwrap();
    for c in &cases {
        let l = libbpf_loads(&dump, c);
        let b = bpfload_loads(c);
        assert_eq!(
            cli_loads(bin, c),
            b,
            "{}: `bpfload load` and the library disagree",
            c.what
        );
        if c.libbpf_right {
            assert_eq!(b, l, "{}: bpfload loads={b}, libbpf loads={l}", c.what);
        } else {
            assert!(
                b && !l,
                "{}: expected bpfload to load (got {b}) where libbpf fails (libbpf loads={l})",
                c.what
            );
        }
        eprintln!(
            "{}: libbpf {l}, bpfload (library and `bpfload load`) {b}",
            c.what
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The `bpfload` command in the same namespaces: `load --token-path`, LIBBPF_BPF_TOKEN_PATH,
// `--json`'s token report, and `bpfload token`.

/// The `bpfload` binary of this build (target/<profile>/bpfload, next to our helper). It is
/// built by `cargo test --workspace`; when only this crate's tests were built, build it now.
fn bpfload_bin() -> PathBuf {
    let dir = std::path::Path::new(HELPER).parent().unwrap().to_path_buf();
    let bin = dir.join("bpfload");
    let target_dir = dir.parent().unwrap();
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--quiet", "-p", "bpfload", "--bin", "bpfload"])
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build for the bpfload binary");
    assert!(status.success(), "building the bpfload binary failed");
    assert!(bin.is_file(), "no bpfload binary at {}", bin.display());
    bin
}

/// Exit status, stdout as JSON (Null if it is not), and stdout + stderr as text.
fn cli_json(cmd: UsernsCommand) -> (Option<i32>, serde_json::Value, String) {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_ne!(out.status.code(), Some(HARNESS_FAILURE), "{stderr}");
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    // Without --json the command reports a failed load on stdout: return both streams.
    let text = format!("{}{stderr}", String::from_utf8_lossy(&out.stdout));
    (out.status.code(), v, text)
}

#[test]
fn cli_load_with_token_path_env_and_json_report() {
    if !require_root("token CLI scenario") {
        return;
    }
    let bin = bpfload_bin();
    let bin = bin.to_str().unwrap();
    let d = Delegation::new("map_create:prog_load:btf_load", "array:hash", "xdp", "xdp");
    let obj = fixture("token_narrow");
    // Implicit mode from the delegated /sys/fs/bpf.
    let (code, v, err) = cli_json(
        userns(bin)
            .delegate(d.clone())
            .mount_at(MountAt::SysFsBpf)
            .args(["load", &obj, "--json"]),
    );
    assert_eq!(code, Some(0), "{err}{v}");
    assert_eq!(v["token"]["mode"], "implicit", "{v}");
    assert_eq!(v["token"]["created"], true, "{v}");
    assert_eq!(v["token"]["path"], "/sys/fs/bpf", "{v}");
    // Explicit --token-path to the fd mount.
    let (code, v, err) = cli_json(userns(bin).delegate(d.clone()).mount_at(MountAt::Fd).args([
        "load",
        &obj,
        "--json",
        "--token-path",
        "{bpffs}",
    ]));
    assert_eq!(code, Some(0), "{err}{v}");
    assert_eq!(v["token"]["mode"], "explicit", "{v}");
    // The variable, and --token-path "" beating it.
    let (code, v, err) = cli_json(
        userns(bin)
            .delegate(d.clone())
            .mount_at(MountAt::SysFsBpf)
            .env("LIBBPF_BPF_TOKEN_PATH", "/sys/fs/bpf")
            .args(["load", &obj, "--json"]),
    );
    assert_eq!(code, Some(0), "{err}{v}");
    assert_eq!(v["token"]["mode"], "explicit", "{v}");
    let (code, v, err) = cli_json(
        userns(bin)
            .delegate(d.clone())
            .mount_at(MountAt::SysFsBpf)
            .env("LIBBPF_BPF_TOKEN_PATH", "/sys/fs/bpf")
            .args(["load", &obj, "--json", "--token-path", ""]),
    );
    assert_ne!(
        code,
        Some(0),
        "loaded without a token in a user namespace: {err}{v}"
    );
    assert_eq!(v["ok"], false, "{v}");
    assert!(v["error"].as_str().unwrap_or("").contains("EPERM"), "{v}");
    // A missing explicit path fails and says which path and errno; --json keeps the report.
    let (code, v, _) = cli_json(
        userns(bin)
            .delegate(d.clone())
            .mount_at(MountAt::SysFsBpf)
            .args(["load", &obj, "--json", "--token-path", "/nonexistent/bpffs"]),
    );
    assert_ne!(code, Some(0));
    assert_eq!(v["token"]["mode"], "explicit", "{v}");
    assert_eq!(v["token"]["created"], false, "{v}");
    assert_eq!(v["token"]["path"], "/nonexistent/bpffs", "{v}");
    assert!(
        v["token"]["error"].as_str().unwrap().contains("ENOENT"),
        "{v}"
    );
    let (code, _, err) = cli_json(
        userns(bin)
            .delegate(d.clone())
            .mount_at(MountAt::SysFsBpf)
            .args(["load", &obj, "--token-path", "/nonexistent/bpffs"]),
    );
    assert_ne!(code, Some(0));
    assert!(
        err.contains("/nonexistent/bpffs") && err.contains("ENOENT"),
        "{err}"
    );
    // A missing program type is named before anything is loaded.
    let (code, _, err) = cli_json(
        userns(bin)
            .delegate(Delegation::new("any", "any", "socket_filter", "any"))
            .mount_at(MountAt::SysFsBpf)
            .args(["load", &obj]),
    );
    assert_ne!(code, Some(0));
    assert!(
        err.contains("program 'handle_xdp' needs prog type xdp: add xdp to delegate_progs"),
        "{err}"
    );
}

#[test]
fn cli_load_as_root_in_the_initial_namespace_prints_nothing_about_tokens() {
    if !require_root("token CLI scenario") {
        return;
    }
    let out = std::process::Command::new(bpfload_bin())
        .args(["load", &fixture("token_narrow"), "--json"])
        .env_remove("LIBBPF_BPF_TOKEN_PATH")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["token"]["mode"], "implicit", "{v}");
    assert_eq!(v["token"]["created"], false, "{v}");
    // libbpf prints "failed (-95) to create BPF token ... skipping optional step"; we do not.
    assert!(!stderr.to_lowercase().contains("token"), "{stderr}");
    // The text report's token line does not show the implicit attempt's errno either.
    let out = std::process::Command::new(bpfload_bin())
        .args(["load", &fixture("token_narrow")])
        .env_remove("LIBBPF_BPF_TOKEN_PATH")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        !text.contains("EOPNOTSUPP") && !text.contains("errno"),
        "{text}"
    );
}

#[test]
fn cli_token_command_reports_delegation_by_name() {
    if !require_root("token CLI scenario") {
        return;
    }
    let bin = bpfload_bin();
    let d = Delegation::new("map_create:prog_load", "hash:queue", "xdp", "any");
    let (code, v, err) = cli_json(
        userns(bin.to_str().unwrap())
            .delegate(d)
            .mount_at(MountAt::SysFsBpf)
            .args(["token", "--json"]),
    );
    assert_eq!(code, Some(0), "{err}{v}");
    assert_eq!(v["created"], true, "{v}");
    for src in [&v["mount"]["delegation"], &v["token"]["delegation"]] {
        assert_eq!(
            src["cmds"]["names"],
            serde_json::json!(["map_create", "prog_load"]),
            "{v}"
        );
        assert_eq!(
            src["maps"]["names"],
            serde_json::json!(["hash", "queue"]),
            "{v}"
        );
        assert_eq!(src["progs"]["names"], serde_json::json!(["xdp"]), "{v}");
        assert_eq!(src["attachs"]["names"], serde_json::json!(["any"]), "{v}");
    }
    assert_eq!(v["token"]["source"], "bpf_token_info", "{v}");
    // Not delegated: exit status 1 and the reason.
    let (code, v, _) = cli_json(
        userns(bin.to_str().unwrap())
            .delegate(Delegation::none())
            .mount_at(MountAt::SysFsBpf)
            .args(["token", "--json"]),
    );
    assert_eq!(code, Some(1));
    assert_eq!(v["errno"], "ENOENT", "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("delegates nothing"),
        "{v}"
    );
    // Root in the initial namespace: EOPNOTSUPP, explained.
    let out = std::process::Command::new(&bin)
        .args(["token", "/sys/fs/bpf"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("EOPNOTSUPP") && text.contains("initial user namespace"),
        "{text}"
    );
}

#[test]
fn freplace_target_btf_is_read_through_the_token() {
    if !require_root("token scenario") {
        return;
    }
    // libbpf's obj_priv_freplace_prog: the target program's BTF is read with
    // BPF_BTF_GET_FD_BY_ID, which under a token needs btf_get_fd_by_id (kernel 6.15+). bpfload
    // resolves the target at load time, after the token exists, so libbpf's "set the target
    // before prepare" failure (obj_priv_freplace_prog_fail) cannot happen.
    //
    // This machine's kernel refuses trampoline programs (fentry/fexit/freplace) with EPERM even
    // to root, so with the command delegated the load gets as far as BPF_PROG_LOAD's EPERM,
    // and the error says the token is not the reason.
    let freplace = "token_xdp.bpf.o:xdp_prog1:new_xdp_prog2";
    let root = std::process::Command::new(SCENARIO)
        .arg(fixture("token_freplace"))
        .args([
            "--freplace",
            &fixture("token_xdp").replace("token_xdp.bpf.o", freplace),
        ])
        .env_remove("LIBBPF_BPF_TOKEN_PATH")
        .output()
        .unwrap();
    let root: serde_json::Value = serde_json::from_slice(&root.stdout).unwrap();
    check_hygiene(&root);
    let root_ok = root["ok"] == true;

    let with = Delegation::new("btf_load:prog_load:btf_get_fd_by_id", "", "ext:xdp", "any");
    let v = run_scenario(scenario(with, MountAt::Fd, "token_freplace").args([
        "--token-path",
        "{bpffs}",
        "--freplace",
        &fixture("token_xdp").replace("token_xdp.bpf.o", freplace),
    ]));
    if root_ok {
        assert_loaded_with_token(&v, "explicit");
    } else {
        assert_failed_with(
            &v,
            &[
                "new_xdp_prog2",
                "BPF_PROG_LOAD failed: EPERM",
                "comes from elsewhere",
            ],
        );
    }
    let without = Delegation::new("btf_load:prog_load", "", "ext:xdp", "any");
    let v = run_scenario(scenario(without, MountAt::Fd, "token_freplace").args([
        "--token-path",
        "{bpffs}",
        "--freplace",
        &fixture("token_xdp").replace("token_xdp.bpf.o", freplace),
    ]));
    assert_failed_with(
        &v,
        &[
            "BPF_BTF_GET_FD_BY_ID failed: EPERM",
            "add btf_get_fd_by_id to delegate_cmds",
        ],
    );
}

#[test]
fn struct_ops_needs_btf_load_and_the_member_index_attach_bits() {
    if !require_root("token scenario") {
        return;
    }
    // libbpf's obj_priv_btf_success / obj_priv_btf_fail with a struct_ops object.
    let obj = "token_struct_ops";
    let all = Delegation::new(
        "map_create:prog_load:btf_load",
        "struct_ops",
        "struct_ops",
        "any",
    );
    let v = run_scenario(scenario(all, MountAt::SysFsBpf, obj));
    assert_loaded_with_token(&v, "implicit");
    assert_eq!(v["maps"], serde_json::json!(["tok_cc"]), "{v}");
    // A struct_ops map cannot exist without BTF: stopped before anything is created.
    let no_btf = Delegation::new("map_create:prog_load", "struct_ops", "struct_ops", "any");
    let v = run_scenario(scenario(no_btf, MountAt::SysFsBpf, obj));
    assert_failed_with(
        &v,
        &[
            "map 'tok_cc' of a type that needs BTF",
            "add btf_load to delegate_cmds",
        ],
    );
    // The kernel checks each member program's member index as its expected attach type:
    // tcp_congestion_ops' ssthresh, cong_avoid and undo_cwnd are members 0, 1 and 8, so
    // exactly bits 0, 1 and 8 load (libbpf 1.7 agrees, see libbpf_agrees_where_it_is_right).
    let exact = Delegation::new(
        "map_create:prog_load:btf_load",
        "struct_ops",
        "struct_ops",
        "0x103",
    );
    let v = run_scenario(scenario(exact, MountAt::SysFsBpf, obj));
    assert_loaded_with_token(&v, "implicit");
    let short = Delegation::new(
        "map_create:prog_load:btf_load",
        "struct_ops",
        "struct_ops",
        "0x1",
    );
    let v = run_scenario(scenario(short, MountAt::SysFsBpf, obj));
    assert_failed_with(
        &v,
        &[
            "struct_ops program 'tok_cong_avoid' (member 'cong_avoid', index 1) needs delegate_attachs bit 1",
            "struct_ops program 'tok_undo_cwnd' (member 'undo_cwnd', index 8) needs delegate_attachs bit 8",
        ],
    );
}
