//! Kernel feature probes against the real kernel: answers, laziness (syscall counters),
//! concurrency, and token scenarios in real user namespaces (through `userns-helper`).
//!
//! Userns scenarios re-execute this test binary inside the namespace: the ignored test
//! `userns_child_entry` is the child side; it reads the scenario from `BPFLOAD_PROBE_CHILD`,
//! runs it and prints one `PROBE-RESULT <json>` line for the parent to check.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::AsFd;
use std::sync::{Arc, Barrier};

use aya_obj::generated::{bpf_cmd, bpf_map_type, bpf_prog_type};
use bpfload_probe::{Evidence, Feature, FeatureResult, Method, Probes, Support};
use bpfload_syscall::syscall::{thread_calls, thread_calls_total};
use bpfload_tests::require_root;
use bpfload_tests::userns::{Delegation, MountAt, UsernsCommand};

const HELPER: &str = env!("CARGO_BIN_EXE_userns-helper");

/// The answers on the kernel these tests were written against (6.18): LDIMM64_FULL_RANGE_OFF
/// is Missing (libbpf's probe fails with "direct value offset of 1073741824 is not allowed": the
/// limit removed by kernel commit 12a1fe6e12db is still in 6.18; checked with libbpf's exact
/// probe through libbpf 1.1's bpf_prog_load), every other feature is Supported. `None` on any
/// other kernel: there the tests check how each answer was reached, and compare a token's
/// answers with root's, but do not know the answers.
fn expected_on_this_kernel(f: Feature) -> Option<Support> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    if !release.starts_with("6.18") {
        return None;
    }
    Some(if f == Feature::Ldimm64FullRangeOff {
        Support::Missing
    } else {
        Support::Supported
    })
}

fn by_feature(results: &[FeatureResult]) -> BTreeMap<Feature, &FeatureResult> {
    results.iter().map(|r| (r.feature, r)).collect()
}

#[test]
fn every_feature_is_decided_by_its_probe_as_root_without_token() {
    if !require_root("feature probes") {
        return;
    }
    let probes = Probes::private(None).unwrap();
    let results = probes.check_all();
    assert_eq!(results.len(), Feature::ALL.len());
    for r in &results {
        println!("{r}");
        match expected_on_this_kernel(r.feature) {
            Some(want) => assert_eq!(r.support, want, "{r}"),
            None => println!(
                "  (not a 6.18 kernel: the answer is not checked, only how it was reached)"
            ),
        }
        match r.feature {
            Feature::SyscallWrapper => assert!(
                matches!(&r.method, Method::KernelBtf(Evidence::Func(n) | Evidence::Kallsym(n)) if n == "__x64_sys_bpf"),
                "{r}"
            ),
            _ => assert!(
                matches!(r.method, Method::Probe { token: false, .. }),
                "decided by libbpf's probe without a token: {r}"
            ),
        }
    }
    let r = by_feature(&results);
    // libbpf's program and map types, without a token.
    assert_eq!(
        r[&Feature::GlobalData].method,
        Method::Probe {
            prog_type: Some(bpf_prog_type::BPF_PROG_TYPE_SOCKET_FILTER),
            map_type: Some(bpf_map_type::BPF_MAP_TYPE_ARRAY),
            btf: false,
            token: false
        }
    );
    assert_eq!(
        r[&Feature::ProbeReadKern].method,
        Method::Probe {
            prog_type: Some(bpf_prog_type::BPF_PROG_TYPE_TRACEPOINT),
            map_type: None,
            btf: false,
            token: false
        }
    );
    let ld = r[&Feature::Ldimm64FullRangeOff];
    assert!(
        ld.note
            .as_deref()
            .is_some_and(|n| n.contains("direct value offset of")),
        "decided from the verifier message: {ld}"
    );
}

#[test]
fn the_global_cache_is_one_per_process() {
    assert!(Arc::ptr_eq(&Probes::global(), &Probes::global()));
    assert!(Probes::global().token().is_none());
    assert!(Probes::global().token_key().is_none());
}

/// bpf(2) calls made on this thread while checking `f`.
fn calls_for(probes: &Probes, f: Feature) -> u64 {
    let before = thread_calls_total();
    probes.check(f);
    thread_calls_total() - before
}

/// The features the combined BTF probe decides together.
const BTF_KINDS: [Feature; 9] = [
    Feature::Btf,
    Feature::BtfFunc,
    Feature::BtfGlobalFunc,
    Feature::BtfDatasec,
    Feature::BtfQmarkDatasec,
    Feature::BtfFloat,
    Feature::BtfDeclTag,
    Feature::BtfTypeTag,
    Feature::BtfEnum64,
];

#[test]
fn libbpfs_per_kind_btf_probes_decide_when_the_combined_blob_is_refused() {
    use bpfload_syscall::{with_fault_plan, Errno, FaultPlan};
    if !require_root("per-kind BTF probes") {
        return;
    }
    let p = Probes::private(None).unwrap();
    // Only the first BTF_LOAD (the combined blob) fails, as on a kernel lacking one kind.
    let plan = FaultPlan::nth_of(bpf_cmd::BPF_BTF_LOAD, 1, Errno::EINVAL);
    let (r, stats) = with_fault_plan(plan, || p.check(Feature::BtfFloat));
    assert_eq!(stats.injected, 1);
    assert_eq!(stats.matched, 2, "combined blob, then libbpf's FLOAT blob");
    assert_eq!(r.support, Support::Supported, "{r}");
    assert!(r.note.is_none(), "decided by the per-kind probe: {r}");
    // Every other kind now needs its own probe: one BTF_LOAD each.
    for f in BTF_KINDS.into_iter().filter(|&f| f != Feature::BtfFloat) {
        let before = thread_calls(bpf_cmd::BPF_BTF_LOAD);
        assert!(p.supported(f), "{f}");
        assert_eq!(thread_calls(bpf_cmd::BPF_BTF_LOAD) - before, 1, "{f}");
    }
}

#[test]
fn each_probe_runs_at_most_once_per_cache() {
    if !require_root("feature probe counting") {
        return;
    }
    let probes = Probes::private(None).unwrap();
    let mut btf_kinds_probed = 0;
    for f in Feature::ALL {
        let first = calls_for(&probes, f);
        if f == Feature::SyscallWrapper {
            assert_eq!(first, 0, "{f} is decided without bpf(2)");
        } else if BTF_KINDS.contains(&f) {
            // The first BTF kind checked runs the combined BTF probe, which answers them all.
            btf_kinds_probed += first;
        } else {
            // libbpf's probe for each: its map(s), program, BTF and extra commands, once.
            let expected = match f {
                Feature::GlobalData | Feature::Ldimm64FullRangeOff => 2, // map + prog
                Feature::ProgBindMap => 3,                               // map + prog + bind
                Feature::ModuleBtf => 2,                                 // BTF + get_info
                Feature::UprobeMultiLink => 3,                           // prog + two link creates
                Feature::ArgCtxTag => 2,                                 // BTF + prog
                _ => 1,
            };
            assert_eq!(first, expected, "{f}: bpf(2) calls of its probe");
        }
        assert!(
            probes.cached(f).is_some(),
            "{f}: conclusive answers are cached"
        );
        for _ in 0..3 {
            assert_eq!(calls_for(&probes, f), 0, "{f}: answered from the cache");
        }
    }
    assert_eq!(btf_kinds_probed, 1, "one BTF_LOAD for all BTF kinds");
    // A different cache probes again: caches do not share answers.
    let other = Probes::private(None).unwrap();
    let before = thread_calls(bpf_cmd::BPF_BTF_LOAD);
    other.check(Feature::BtfFloat);
    assert_eq!(thread_calls(bpf_cmd::BPF_BTF_LOAD) - before, 1);
}

#[test]
fn concurrent_checks_run_each_probe_once() {
    if !require_root("concurrent feature probes") {
        return;
    }
    // Reference: what one cold cache costs when checked sequentially.
    let reference = {
        let p = Probes::private(None).unwrap();
        let before = thread_calls_total();
        p.check_all();
        thread_calls_total() - before
    };
    assert!(reference > 0);
    let probes = Arc::new(Probes::private(None).unwrap());
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let probes = probes.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let before = thread_calls_total();
                barrier.wait();
                // Different threads walk the features in different orders.
                let mut fs = Feature::ALL.to_vec();
                fs.rotate_left(i * 3 % Feature::ALL.len());
                for _ in 0..3 {
                    for &f in &fs {
                        probes.check(f);
                    }
                }
                thread_calls_total() - before
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(
        total, reference,
        "8 threads together made exactly the calls of one sequential cold cache"
    );
}

// ---------------------------------------------------------------------------------------------
// User-namespace scenarios.

/// The child side: runs inside the namespace as uid 0. Not a test on its own.
#[test]
#[ignore = "child entry of the userns scenarios, run by them through userns-helper"]
fn userns_child_entry() {
    let Ok(scenario) = std::env::var("BPFLOAD_PROBE_CHILD") else {
        panic!("run only through the userns scenarios (BPFLOAD_PROBE_CHILD unset)");
    };
    let out = match scenario.as_str() {
        "token" => {
            let bpffs = std::env::var("BPFLOAD_PROBE_BPFFS").expect("bpffs path");
            let dir = File::open(&bpffs).expect("open bpffs");
            let token = bpfload_syscall::token::create(dir.as_fd(), 0).expect("token");
            let probes = Probes::for_token(token.as_fd()).expect("token cache");
            let results = probes.check_all();
            serde_json::json!({
                "delegation": probes.delegation().map(|(d, src)| format!("{d} from {src}")),
                "features": results.iter().map(result_json).collect::<Vec<_>>(),
            })
        }
        "no-token" => {
            let results = Probes::global().check_all();
            serde_json::json!({ "features": results.iter().map(result_json).collect::<Vec<_>>() })
        }
        "isolation" => isolation_child(),
        "sources" => sources_child(),
        other => panic!("unknown scenario {other}"),
    };
    println!("PROBE-RESULT {out}");
}

fn result_json(r: &FeatureResult) -> serde_json::Value {
    let mut v = r.to_json();
    v["display"] = serde_json::Value::String(r.to_string());
    v["cached"] = serde_json::Value::Bool(r.support.is_conclusive());
    v
}

/// Tokens from one bpffs: two tokens (two inodes) get two caches, dups of one token share
/// one, and nothing a token cache learns shows up in another cache or the global one.
fn isolation_child() -> serde_json::Value {
    let bpffs = std::env::var("BPFLOAD_PROBE_BPFFS").expect("bpffs path");
    let dir = File::open(&bpffs).expect("open bpffs");
    let t1 = bpfload_syscall::token::create(dir.as_fd(), 0).expect("token 1");
    let t2 = bpfload_syscall::token::create(dir.as_fd(), 0).expect("token 2");
    let p1 = Probes::for_token(t1.as_fd()).unwrap();
    let p1_again = Probes::for_token(t1.try_clone().unwrap().as_fd()).unwrap();
    let p2 = Probes::for_token(t2.as_fd()).unwrap();
    let global = Probes::global();

    let before = thread_calls_total();
    let r1 = p1.check(Feature::ProgName);
    let p1_calls = thread_calls_total() - before;
    let p2_cached_before = p2.cached(Feature::ProgName).is_some();
    let global_cached_before = global.cached(Feature::ProgName).is_some();
    let before = thread_calls_total();
    let r2 = p2.check(Feature::ProgName);
    let p2_calls = thread_calls_total() - before;
    let before = thread_calls_total();
    p1_again.check(Feature::ProgName);
    let p1_again_calls = thread_calls_total() - before;

    // Close token 1 (p1 still holds its own dup) and make another: the new token may get the
    // same fd number, but it is a different token and must get a different cache.
    let t1_raw = std::os::fd::AsRawFd::as_raw_fd(&t1);
    drop(t1);
    let t3 = bpfload_syscall::token::create(dir.as_fd(), 0).expect("token 3");
    let t3_raw = std::os::fd::AsRawFd::as_raw_fd(&t3);
    let p3 = Probes::for_token(t3.as_fd()).unwrap();

    serde_json::json!({
        "same_token_same_cache": Arc::ptr_eq(&p1, &p1_again),
        "two_tokens_two_caches": !Arc::ptr_eq(&p1, &p2),
        "keys_differ": p1.token_key() != p2.token_key(),
        "p1": r1.to_string(),
        "p2": r2.to_string(),
        "p1_calls": p1_calls,
        "p2_calls": p2_calls,
        "p1_again_calls": p1_again_calls,
        "p2_cached_before": p2_cached_before,
        "global_cached_before": global_cached_before,
        "global_cached_after": global.cached(Feature::ProgName).is_some(),
        "reused_fd_number": t1_raw == t3_raw,
        "new_token_new_cache": !Arc::ptr_eq(&p1, &p3) && p3.cached(Feature::ProgName).is_none(),
    })
}

/// The three delegation sources must agree on a real token: `bpf_token_info`, the token's
/// fdinfo, and the bpffs mount options (parsed with name tables from kernel BTF).
fn sources_child() -> serde_json::Value {
    use bpfload_probe::delegation::parse_mountinfo;
    let bpffs = std::env::var("BPFLOAD_PROBE_BPFFS").expect("bpffs path");
    let dir = File::open(&bpffs).expect("open bpffs");
    let token = bpfload_syscall::token::create(dir.as_fd(), 0).expect("token");
    let (info, src) = bpfload_probe::token_delegation(token.as_fd()).expect("token delegation");
    let fdinfo = bpfload_probe::Delegation::read_token_fdinfo(token.as_fd()).expect("fdinfo");
    // A kernel without bpf_token_info (6.9 - 6.16) answers EINVAL: the fdinfo fallback decides.
    let plan = bpfload_syscall::FaultPlan::nth_of(
        bpf_cmd::BPF_OBJ_GET_INFO_BY_FD,
        1,
        bpfload_syscall::Errno::EINVAL,
    )
    .times(u64::MAX);
    let (old_kernel, _) = bpfload_syscall::with_fault_plan(plan, || {
        bpfload_probe::token_delegation(token.as_fd()).expect("fdinfo fallback")
    });
    let names = bpfload_probe::kernel_facts::name_tables();
    let mount = bpfload_probe::Delegation::read_mountinfo(std::path::Path::new(&bpffs), names)
        .expect("mountinfo");
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let kernel_opts = parse_mountinfo(&mi)
        .filter(|e| e.fs_type == "bpf" && e.mount_point == bpffs)
        .last()
        .map(|e| e.super_options)
        .unwrap_or_default();
    serde_json::json!({
        "info_source": src.to_string(),
        "info": [info.cmds, info.maps, info.progs, info.attachs],
        "fdinfo": [fdinfo.cmds, fdinfo.maps, fdinfo.progs, fdinfo.attachs],
        "fallback_source": old_kernel.1.to_string(),
        "fallback": [old_kernel.0.cmds, old_kernel.0.maps, old_kernel.0.progs, old_kernel.0.attachs],
        "mountinfo": [mount.cmds, mount.maps, mount.progs, mount.attachs],
        "rendered": info.to_mount_options(names),
        "kernel_options": kernel_opts,
    })
}

fn run_child(scenario: &str, delegation: Delegation, mount: MountAt) -> serde_json::Value {
    let exe = std::env::current_exe().expect("test binary path");
    let cmd = UsernsCommand::new(HELPER, exe)
        .delegate(delegation)
        .mount_at(mount)
        .env("BPFLOAD_PROBE_CHILD", scenario)
        .env("BPFLOAD_PROBE_BPFFS", "{bpffs}")
        .args([
            "--ignored",
            "--exact",
            "userns_child_entry",
            "--nocapture",
            "--test-threads=1",
        ]);
    let out = cmd.output().expect("spawn userns-helper");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scenario {scenario} failed ({:?})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    let line = stdout
        .lines()
        // libtest prints "test userns_child_entry ... " on the same line first.
        .find_map(|l| {
            l.find("PROBE-RESULT ")
                .map(|i| &l[i + "PROBE-RESULT ".len()..])
        })
        .unwrap_or_else(|| panic!("no PROBE-RESULT line in:\n{stdout}\n{stderr}"));
    serde_json::from_str(line).expect("child JSON")
}

fn features(v: &serde_json::Value) -> BTreeMap<String, serde_json::Value> {
    v["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| (f["feature"].as_str().unwrap().to_string(), f.clone()))
        .collect()
}

fn print_features(title: &str, v: &serde_json::Value) {
    println!("{title}");
    for f in features(v).values() {
        println!("  {}", f["display"].as_str().unwrap_or(""));
    }
}

#[test]
fn userns_broad_token_supports_everything() {
    if !require_root("userns probe scenario (broad token)") {
        return;
    }
    let v = run_child("token", Delegation::any(), MountAt::Fd);
    print_features("broad token:", &v);
    assert!(v["delegation"].as_str().is_some(), "delegation learnt: {v}");
    // Everything delegated: the token's answers are root's (asserted against 6.18's table in
    // every_feature_is_decided_by_its_probe_as_root_without_token).
    let root = Probes::private(None).unwrap().check_all();
    for f in Feature::ALL {
        let r = &features(&v)[f.name()];
        let want = root.iter().find(|r| r.feature == f).unwrap().support;
        if let Some(table) = expected_on_this_kernel(f) {
            assert_eq!(want, table, "{f} as root");
        }
        assert_eq!(r["support"], want.as_str(), "{f}: {r}");
        if f != Feature::SyscallWrapper {
            assert_eq!(r["method"]["kind"], "probe", "{f}: {r}");
            assert_eq!(r["method"]["token"], true, "{f} probed with the token: {r}");
        }
    }
}

#[test]
fn userns_narrow_token_still_decides_global_data_and_btf() {
    if !require_root("userns probe scenario (narrow token)") {
        return;
    }
    let v = run_child(
        "token",
        Delegation::new("map_create:prog_load:btf_load", "hash", "xdp", "xdp"),
        MountAt::Fd,
    );
    print_features("narrow token (xdp progs, hash maps, BTF load):", &v);
    let fs = features(&v);
    let gd = &fs["GLOBAL_DATA"];
    assert_eq!(gd["support"], "supported", "{gd}");
    // ARRAY maps are not delegated, so no global-data probe is permitted: kernel BTF decides.
    assert_eq!(gd["method"]["kind"], "kernel_btf", "{gd}");
    assert_eq!(gd["errno"]["name"], "EPERM", "{gd}");
    let btf = &fs["BTF"];
    assert_eq!(btf["support"], "supported", "{btf}");
    assert_eq!(btf["method"]["kind"], "probe", "{btf}");
    assert_eq!(btf["method"]["btf"], true, "{btf}");
    assert_eq!(btf["method"]["token"], true, "{btf}");
    // Programs are probed as XDP, the delegated type, instead of libbpf's SOCKET_FILTER.
    let name = &fs["PROG_NAME"];
    assert_eq!(name["support"], "supported", "{name}");
    assert_eq!(name["method"]["prog_type"], "xdp", "{name}");
    for (n, r) in &fs {
        assert_ne!(
            r["support"], "missing",
            "{n} must not be Missing under a narrow token unless the kernel says so: {r}"
        );
    }
}

#[test]
fn userns_without_token_is_unknown_never_missing() {
    if !require_root("userns probe scenario (no token)") {
        return;
    }
    let v = run_child("no-token", Delegation::none(), MountAt::NoBpffs);
    print_features("uid 0 in a user namespace, no token:", &v);
    for (n, r) in &features(&v) {
        if n == "SYSCALL_WRAPPER" {
            // Decided from kernel BTF, which needs no privilege.
            assert_eq!(r["support"], "supported", "{r}");
            continue;
        }
        assert_eq!(r["support"], "unknown", "{n}: {r}");
        assert_eq!(r["errno"]["name"], "EPERM", "{n}: {r}");
        assert_eq!(r["cached"], false, "{n}: {r}");
    }
}

#[test]
fn userns_token_caches_are_isolated() {
    if !require_root("userns probe scenario (cache isolation)") {
        return;
    }
    let v = run_child("isolation", Delegation::any(), MountAt::Fd);
    println!("{v:#}");
    assert_eq!(v["same_token_same_cache"], true, "{v}");
    assert_eq!(v["two_tokens_two_caches"], true, "{v}");
    assert_eq!(v["keys_differ"], true, "{v}");
    assert!(v["p1_calls"].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(
        v["p2_cached_before"], false,
        "token 1's answer is not token 2's: {v}"
    );
    assert!(
        v["p2_calls"].as_u64().unwrap() >= 1,
        "token 2 probes itself: {v}"
    );
    assert_eq!(
        v["p1_again_calls"], 0,
        "a dup of token 1 shares its cache: {v}"
    );
    assert_eq!(v["global_cached_before"], false, "{v}");
    assert_eq!(
        v["global_cached_after"], false,
        "token probes never fill the global cache: {v}"
    );
    assert_eq!(v["new_token_new_cache"], true, "{v}");
}

#[test]
fn userns_delegation_sources_agree() {
    if !require_root("userns probe scenario (delegation sources)") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("bpfload-probe-sources-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let v = run_child(
        "sources",
        Delegation::new(
            "map_create:prog_load:btf_load",
            "hash:array",
            "xdp:kprobe",
            "xdp:0x1",
        ),
        MountAt::Dir(dir.clone()),
    );
    let _ = std::fs::remove_dir(&dir);
    println!("{v:#}");
    // BPF_OBJ_GET_INFO_BY_FD on a token exists since 6.17; before, the fdinfo is read.
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut ver = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let (major, minor) = (ver.next().unwrap_or(0), ver.next().unwrap_or(0));
    let want = if (major, minor) >= (6, 17) {
        "bpf_token_info"
    } else {
        "token fdinfo"
    };
    assert_eq!(v["info_source"], want, "kernel {}: {v}", release.trim());
    assert_eq!(
        v["info"], v["fdinfo"],
        "token fdinfo parses to the same masks: {v}"
    );
    assert_eq!(
        v["info"], v["mountinfo"],
        "mount options parse to the same masks: {v}"
    );
    let info = v["info"].as_array().unwrap();
    let bit = |n: u32| 1u64 << n;
    assert_eq!(
        info[0].as_u64().unwrap(),
        bit(bpf_cmd::BPF_MAP_CREATE as u32)
            | bit(bpf_cmd::BPF_PROG_LOAD as u32)
            | bit(bpf_cmd::BPF_BTF_LOAD as u32)
    );
    assert_eq!(
        info[1].as_u64().unwrap(),
        bit(bpf_map_type::BPF_MAP_TYPE_HASH as u32) | bit(bpf_map_type::BPF_MAP_TYPE_ARRAY as u32)
    );
    // "xdp:0x1": the number *assigns*, as the kernel's parser does, so only bit 0 remains.
    assert_eq!(info[3].as_u64().unwrap(), 1);
    // Our rendering matches what the kernel shows for the same masks.
    let kernel = v["kernel_options"].as_str().unwrap();
    let rendered = v["rendered"].as_str().unwrap();
    for opt in rendered.split(',') {
        assert!(
            kernel.split(',').any(|k| k == opt),
            "{opt} not in kernel options {kernel}"
        );
    }
}

#[test]
fn kernel_btf_evidence_agrees_with_the_probes() {
    if !require_root("kernel BTF evidence vs probes") {
        return;
    }
    if bpfload_probe::kernel_facts::vmlinux().is_none() {
        assert!(
            !bpfload_tests::in_ci(),
            "CI kernels have /sys/kernel/btf/vmlinux"
        );
        eprintln!("SKIP kernel BTF evidence: no vmlinux BTF");
        return;
    }
    let probes = Probes::private(None).unwrap();
    let mut decided = 0;
    for f in Feature::ALL {
        let Some((support, evidence)) = bpfload_probe::kernel_facts::decide(f) else {
            assert!(
                bpfload_probe::kernel_facts::evidence_for(f).is_none(),
                "{f}: evidence exists but could not be evaluated"
            );
            continue;
        };
        decided += 1;
        let probed = probes.check(f);
        println!(
            "{f}: kernel BTF says {support} ({evidence}); probe says {}",
            probed.support
        );
        assert_eq!(support, probed.support, "{f}: {evidence} vs {probed}");
    }
    // All but BTF_QMARK_DATASEC, LDIMM64_FULL_RANGE_OFF and UPROBE_MULTI_LINK have a marker.
    assert_eq!(decided, Feature::ALL.len() - 3);
}

#[test]
fn delegation_names_come_from_kernel_btf() {
    use aya_obj::generated::bpf_attach_type;
    if bpfload_probe::kernel_facts::vmlinux().is_none() {
        assert!(
            !bpfload_tests::in_ci(),
            "CI kernels have /sys/kernel/btf/vmlinux"
        );
        eprintln!("SKIP delegation names: no vmlinux BTF");
        return;
    }
    let names = bpfload_probe::kernel_facts::name_tables();
    // Spot checks against aya-obj's UAPI enums.
    assert_eq!(
        names.cmds.value("prog_load"),
        Some(bpf_cmd::BPF_PROG_LOAD as u32)
    );
    assert_eq!(
        names.cmds.value("TOKEN_CREATE"),
        Some(bpf_cmd::BPF_TOKEN_CREATE as u32)
    );
    assert_eq!(
        names.maps.value("hash"),
        Some(bpf_map_type::BPF_MAP_TYPE_HASH as u32)
    );
    assert_eq!(
        names.maps.value("arena"),
        Some(bpf_map_type::BPF_MAP_TYPE_ARENA as u32)
    );
    assert_eq!(
        names.progs.value("xdp"),
        Some(bpf_prog_type::BPF_PROG_TYPE_XDP as u32)
    );
    assert_eq!(
        names.attachs.value("xdp"),
        Some(bpf_attach_type::BPF_XDP as u32)
    );
    assert_eq!(names.attachs.value("cgroup_inet_ingress"), Some(0));
    // Every name aya-obj knows resolves to the same value in the kernel's table, and the
    // kernel table has at least as many entries (it may know newer types).
    for (table, n) in [
        (&names.cmds, bpf_cmd::__MAX_BPF_CMD as u32),
        (&names.maps, bpf_map_type::__MAX_BPF_MAP_TYPE as u32),
        (&names.progs, bpf_prog_type::__MAX_BPF_PROG_TYPE as u32),
        (
            &names.attachs,
            bpf_attach_type::__MAX_BPF_ATTACH_TYPE as u32,
        ),
    ] {
        for v in 0..n {
            assert!(table.name(v).is_some(), "value {v} has a kernel name");
        }
        for (v, name) in table.entries() {
            assert!(v < 64 && !name.is_empty() && name == name.to_ascii_lowercase());
        }
    }
}

#[test]
fn only_conclusive_answers_are_cached() {
    use bpfload_syscall::{with_fault_plan, Errno, FaultPlan};
    if !require_root("probe caching of failures") {
        return;
    }
    let p = Probes::private(None).unwrap();
    // Not permitted or a failure unrelated to the feature: Unknown, not cached, probed again.
    for errno in [Errno::EPERM, Errno::EACCES, Errno::ENOMEM, Errno::EFAULT] {
        let plan = FaultPlan::nth_of(bpf_cmd::BPF_BTF_LOAD, 1, errno).times(u64::MAX);
        let (r, stats) = with_fault_plan(plan, || p.check(Feature::BtfFloat));
        assert!(stats.injected >= 1, "{errno:?} injected");
        assert_eq!(r.support, Support::Unknown, "{errno:?}: {r}");
        assert_eq!(r.errno, Some(errno), "{r}");
        assert_eq!(
            r.method,
            Method::Undecided,
            "no token: no kernel-BTF fallback: {r}"
        );
        assert!(
            p.cached(Feature::BtfFloat).is_none(),
            "{errno:?} must not be cached"
        );
    }
    // The real kernel then answers, and that is cached.
    assert_eq!(p.check(Feature::BtfFloat).support, Support::Supported);
    assert!(p.cached(Feature::BtfFloat).is_some());
    // The kernel rejecting the probe (EINVAL) is conclusive: Missing, cached.
    let q = Probes::private(None).unwrap();
    let plan = FaultPlan::nth_of(bpf_cmd::BPF_BTF_LOAD, 1, Errno::EINVAL).times(u64::MAX);
    let (r, _) = with_fault_plan(plan, || q.check(Feature::BtfFloat));
    assert_eq!(r.support, Support::Missing, "{r}");
    assert_eq!(
        q.cached(Feature::BtfFloat).map(|c| c.support),
        Some(Support::Missing)
    );
    let before = thread_calls_total();
    assert!(!q.supported(Feature::BtfFloat));
    assert_eq!(thread_calls_total(), before, "answered from the cache");
}
