//! Token reliability (issue 7): concurrency with a token, a token revoked by unmounting its bpffs,
//! and fault-injected token probes. Every scenario runs `token-reliability` in a real user
//! namespace with a bpffs the privileged parent delegated (see `bpfload_tests::userns`), and the
//! assertions here check the JSON it prints.
//!
//! What the kernel does, as these tests establish:
//! - every `BPF_TOKEN_CREATE` makes a new anonymous inode on the bpffs superblock: tokens from one
//!   bpffs share `st_dev` but never `st_ino`, so the probe crate (keyed by dev+ino) gives each
//!   token its own cache, and a caller-given token fd shares one cache across loads;
//! - a token keeps its bpffs alive: after `umount2(MNT_DETACH)` a held token still loads (maps,
//!   BTF, programs), while creating a token from the now-empty path fails with EINVAL.

use bpfload_tests::require_root;
use bpfload_tests::userns::{Delegation, MountAt, UsernsCommand};
use serde_json::Value;

const HELPER: &str = env!("CARGO_BIN_EXE_userns-helper");
const SCENARIO: &str = env!("CARGO_BIN_EXE_token-reliability");

/// Fixtures the broad delegation covers: XDP program, QUEUE map only, BTF + spin-lock map, and
/// global data (.data/.rodata/.bss maps, frozen and mmapable).
const FIXTURES: [&str; 4] = [
    "token_xdp.bpf.o",
    "token_map.bpf.o",
    "token_btf.bpf.o",
    "globals.bpf.o",
];

fn fixture(name: &str) -> String {
    bpfload_tests::fixture(name).to_string_lossy().into_owned()
}

/// Runs `token-reliability ARGS...` in a namespace with everything delegated; returns its JSON.
fn run(mount: MountAt, args: &[String]) -> Value {
    let out = UsernsCommand::new(HELPER, SCENARIO)
        .delegate(Delegation::any())
        .mount_at(mount)
        .args(args)
        .output()
        .expect("spawn userns-helper");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scenario failed ({:?}): {stderr}{stdout}",
        out.status
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("bad scenario output ({e}): {stdout}\n{stderr}"))
}

/// A private mount point under /tmp, removed on drop (the mount itself lives only in the
/// namespace's mount namespace).
struct MountPoint(std::path::PathBuf);

impl MountPoint {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("bpfload-tokrel-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("mkdir mount point");
        MountPoint(p)
    }
}

impl Drop for MountPoint {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// 64 loads from 8 threads in a namespace: (A) each load creates its own token from the same
/// bpffs, (B) all loads share one caller-given token. Every load succeeds; the process-wide
/// bpf(2) counts equal what serial references predict (A: one cold token cache per load; B: one
/// cold load per fixture, then warm loads only), so no probe ran twice for one cache; nothing
/// leaks once everything is dropped (on other threads).
#[test]
fn concurrent_loads_with_tokens_probe_once_per_token_cache() {
    if !require_root("token concurrency") {
        return;
    }
    let mut args = vec!["concurrent".to_string(), "{bpffs}".to_string()];
    args.extend(FIXTURES.iter().map(|f| fixture(f)));
    let v = run(MountAt::Fd, &args);
    let loads = u(&v["loads"]);
    assert_eq!(loads, 64);

    let a = &v["a"];
    assert_eq!(u(&a["tokens"]), loads, "{a}");
    // Same bpffs, different token objects: one device, 64 distinct inodes, 64 token fds held.
    assert_eq!(u(&a["distinct_devs"]), 1, "{a}");
    assert_eq!(
        u(&a["distinct_tokens"]),
        loads,
        "tokens share an inode: {a}"
    );
    assert_eq!(u(&a["token_fds_held"]), loads, "{a}");
    assert_eq!(u(&a["got"]["BPF_TOKEN_CREATE"]), loads, "{a}");
    assert_eq!(
        a["got"], a["want"],
        "token per load: the counts differ from 64 cold token caches"
    );

    let b = &v["b"];
    assert_eq!(u(&b["same_token"]), loads, "{b}");
    assert_eq!(u(&b["got"]["BPF_TOKEN_CREATE"]), 0, "{b}");
    assert!(u(&b["cached_features"]) > 0, "{b}");
    assert_eq!(
        b["got"], b["want"],
        "shared token: a probe or lookup ran more than once for the one token cache"
    );
    // One shared cache costs fewer calls than a cache per token.
    assert!(u(&b["got"]["total"]) < u(&a["got"]["total"]), "{v}");

    // The Loader holds its caller-given token's cache: a second serial load probes nothing
    // (it costs exactly a warm load), the first one probed (it cost more).
    let serial = &v["serial_calls"];
    assert_eq!(serial[1], v["warm_calls"], "second load probed again: {v}");
    assert!(u(&serial[0]) > u(&serial[1]), "{v}");
    // A loaded object keeps its token's cache alive, and takes it with it when dropped.
    assert!(u(&v["cached_with_object"]) > 0, "{v}");
    assert_eq!(u(&v["cached_after_drop"]), 0, "{v}");

    assert_eq!(v["fds_after"], v["fds_before"], "fds leaked: {v}");
    assert_eq!(u(&v["token_fds_after"]), 0, "{v}");
    eprintln!(
        "64 token loads on 8 threads: token per load {} bpf(2) calls ({} TOKEN_CREATE, 64 distinct \
         inodes on one bpffs); shared token {} calls ({} features cached once); as predicted. \
         Serial loads through one Loader with a token fd: {} then {} calls (warm load: {})",
        a["got"]["total"],
        a["got"]["BPF_TOKEN_CREATE"],
        b["got"]["total"],
        b["cached_features"],
        v["serial_calls"][0],
        v["serial_calls"][1],
        v["warm_calls"]
    );
}

/// The bpffs an explicit token path names is unmounted (MNT_DETACH) between loads:
/// (a) a new load with that path fails on the token, naming the path and the errno, and creates
///     nothing (no fallback to loading without a token);
/// (b) an object loaded before keeps working: its QUEUE map takes a push and a peek, its token fd
///     is still held and goes away with the object;
/// (c) a token created before the unmount still loads a new object: the token holds a
///     reference to its bpffs.
#[test]
fn unmounting_the_bpffs_revokes_the_path_not_the_tokens() {
    if !require_root("token revocation") {
        return;
    }
    let mp = MountPoint::new("revoke");
    let dir = mp.0.display().to_string();
    let v = run(
        MountAt::Dir(mp.0.clone()),
        &[
            "revoke".into(),
            "{bpffs}".into(),
            fixture("token_map.bpf.o"),
        ],
    );
    assert_eq!(v["first_had_token"], true, "{v}");
    assert_eq!(
        v["still_bpffs_after_umount"], false,
        "umount did not take: {v}"
    );

    let second = &v["second"];
    assert_eq!(second["ok"], false, "loaded after the unmount: {second}");
    assert_eq!(second["is_token_error"], true, "{second}");
    assert_eq!(u(&second["objects_created"]), 0, "fell back: {second}");
    let err = second["error"].as_str().unwrap();
    assert!(err.contains(&dir), "error does not name the path: {err}");
    assert!(
        err.contains("EINVAL"),
        "error does not name the errno: {err}"
    );

    let held = &v["held"];
    assert_eq!(held["push"], Value::Null, "{held}");
    assert_eq!(held["peek"], 0x5eed, "{held}");
    assert!(
        held["token_target"].as_str().unwrap().contains("bpf-token"),
        "{held}"
    );
    // The loaded object's token and the caller's own token, then only the caller's.
    assert_eq!(u(&held["token_fds"]), 2, "{held}");
    assert_eq!(u(&held["token_fds_after_drop"]), 1, "{held}");

    let third = &v["third"];
    assert_eq!(third["ok"], true, "a held token stopped working: {third}");
    assert_eq!(third["all_loaded"], true, "{third}");
    assert_eq!(third["same_token"], true, "{third}");
    assert_eq!(v["create_after"], "Create EINVAL", "{v}");

    assert_eq!(v["fds_after"], v["fds_before"], "fds leaked: {v}");
    assert_eq!(u(&v["token_fds_after"]), 0, "{v}");
}

/// Every bpf(2) call of every feature probe of a token cache (a fresh private cache per run)
/// fails once, in turn, with EPERM, EINVAL, ENOMEM and EINTR. A transient failure (EPERM, ENOMEM,
/// EINTR) never leaves a wrong answer: the probe says Unknown and caches nothing, or the token
/// cache's next candidate (libbpf's own probe after the delegated one, then kernel BTF facts)
/// still finds the clean answer; the next check agrees with a
/// clean cache. No run leaks an fd. EINVAL is the kernel's "not supported" and may be cached as
/// Missing (counted, not asserted).
#[test]
fn token_probe_faults_are_unknown_and_not_cached() {
    if !require_root("token probe faults") {
        return;
    }
    let v = run(MountAt::Fd, &["probe-faults".into(), "{bpffs}".into()]);
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(u(&v["faulted_runs"]), rows.len() as u64);
    assert!(u(&v["features"]) > 0);
    assert_eq!(v["leaks"].as_array().unwrap().len(), 0, "{}", v["leaks"]);
    assert_eq!(v["fds_after"], v["fds_before"], "{v}");

    let mut unknown = [0u32; 3];
    let mut clean = [0u32; 3];
    let mut by_kernel_btf = 0;
    let mut einval_missing = 0;
    for r in rows {
        let errno = r["errno"].as_str().unwrap();
        let Some(i) = ["EPERM", "ENOMEM", "EINTR"]
            .iter()
            .position(|e| *e == errno)
        else {
            if r["result"] != r["clean"] {
                einval_missing += 1;
            }
            continue;
        };
        if r["result"] == "unknown" {
            assert_eq!(r["cached"], Value::Null, "Unknown was cached: {r}");
            unknown[i] += 1;
        } else {
            assert_eq!(
                r["result"], r["clean"],
                "a {errno} left a wrong answer: {r}"
            );
            assert_eq!(r["cached"], r["clean"], "{r}");
            clean[i] += 1;
            if r["method"].as_str().unwrap_or("").starts_with("kernel-btf") {
                by_kernel_btf += 1;
            }
        }
        assert_eq!(
            r["again"], r["clean"],
            "the next check after a {errno} disagrees with a clean cache: {r}"
        );
    }
    // The injection reached probes whose only method failed (else the test proves nothing).
    for (i, e) in ["EPERM", "ENOMEM", "EINTR"].iter().enumerate() {
        assert!(unknown[i] > 0, "no {e} fault gave Unknown: {v}");
    }
    eprintln!(
        "token probe faults: {} faulted runs over {} features; EPERM/ENOMEM/EINTR -> Unknown (uncached) \
         {:?}, clean answer via the next probe or kernel BTF {:?} ({by_kernel_btf} by kernel BTF); \
         EINVAL cached as Missing {einval_missing}",
        rows.len(),
        v["features"],
        unknown,
        clean
    );
}
