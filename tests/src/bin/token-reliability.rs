//! Token reliability scenarios (issue 7), run inside a user namespace with a delegated bpffs by
//! `tests/tests/token_reliability.rs`. Each mode prints one JSON line on stdout; the test decides.
//!
//! Usage:
//! - `token-reliability concurrent BPFFS FIXTURE...`: 64 loads from 8 threads, once with a token per
//!   load (`token_path`) and once with one caller-given token (`token_fd`), with serial references
//!   measured in this process to predict the process-wide bpf(2) counts;
//! - `token-reliability revoke BPFFS_DIR OBJECT`: the bpffs the token comes from is unmounted
//!   (`umount2(MNT_DETACH)`) between loads;
//! - `token-reliability probe-faults BPFFS`: every bpf(2) call of every feature probe of a token
//!   cache fails once, in turn, with EPERM, EINVAL, ENOMEM and EINTR.
//!
//! Exit status 0 when the JSON was printed, 2 on usage errors.

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::{Arc, Barrier};

use bpfload::{Loaded, Loader, Object};
use bpfload_probe::{Feature, Probes, TokenKey};
use bpfload_syscall::syscall::{cmd_name, process_calls, process_calls_total, CallSnapshot};
use bpfload_syscall::uapi::bpf_cmd;
use bpfload_syscall::{with_fault_plan, Errno, FaultPlan};
use bpfload_tests::userns::{fd_target, open_fds, umount_detach};
use serde_json::{json, Value};

const THREADS: usize = 8;
const PER_THREAD: usize = 8;

fn usage(msg: &str) -> ! {
    eprintln!("token-reliability: {msg}");
    eprintln!(
        "usage: token-reliability concurrent BPFFS FIXTURE... | revoke BPFFS_DIR OBJECT | probe-faults BPFFS"
    );
    std::process::exit(2);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = match args.first().map(String::as_str) {
        Some("concurrent") if args.len() >= 3 => concurrent(Path::new(&args[1]), &args[2..]),
        Some("revoke") if args.len() == 3 => revoke(Path::new(&args[1]), Path::new(&args[2])),
        Some("probe-faults") if args.len() == 2 => probe_faults(Path::new(&args[1])),
        _ => usage("bad arguments"),
    };
    println!("{out}");
}

fn token_fd_count() -> usize {
    open_fds()
        .expect("list /proc/self/fd")
        .iter()
        .filter(|(_, t)| t.contains("bpf-token"))
        .count()
}

fn fd_count() -> usize {
    open_fds().expect("list /proc/self/fd").len()
}

type Counts = BTreeMap<&'static str, u64>;

fn counts() -> Counts {
    use bpf_cmd::*;
    let mut m = BTreeMap::new();
    for cmd in [
        BPF_PROG_LOAD,
        BPF_MAP_CREATE,
        BPF_BTF_LOAD,
        BPF_MAP_UPDATE_ELEM,
        BPF_MAP_FREEZE,
        BPF_OBJ_GET_INFO_BY_FD,
        BPF_BTF_GET_NEXT_ID,
        BPF_BTF_GET_FD_BY_ID,
        BPF_TOKEN_CREATE,
    ] {
        m.insert(cmd_name(cmd), process_calls(cmd));
    }
    m.insert("total", process_calls_total());
    m
}

fn diff(a: &Counts, b: &Counts) -> Counts {
    b.iter().map(|(k, v)| (*k, v - a[k])).collect()
}

fn add(acc: &mut Counts, c: &Counts, times: u64) {
    for (k, v) in c {
        *acc.entry(k).or_insert(0) += v * times;
    }
}

fn load_checked(loader: &Loader, obj: &Object, what: &str) -> Loaded {
    let l = loader
        .load(obj)
        .unwrap_or_else(|e| panic!("{what}: load {}: {e}", obj.name()));
    assert!(l.all_loaded(), "{what}: {} not fully loaded", obj.name());
    l
}

/// 64 loads from 8 threads, thread `t` loading fixture `(t + i) % n`, all released by one barrier.
/// Returns the loaded objects and the process-wide counts the loads made.
fn run_concurrent(objs: &Arc<Vec<Object>>, loader: &Arc<Loader>) -> (Vec<Vec<Loaded>>, Counts) {
    let barrier = Arc::new(Barrier::new(THREADS));
    let before = counts();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (objs, loader, barrier) = (objs.clone(), loader.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                (0..PER_THREAD)
                    .map(|i| load_checked(&loader, &objs[(t + i) % objs.len()], "concurrent"))
                    .collect::<Vec<Loaded>>()
            })
        })
        .collect();
    let loaded: Vec<Vec<Loaded>> = handles
        .into_iter()
        .map(|h| h.join().expect("a loader thread panicked"))
        .collect();
    let c = diff(&before, &counts());
    (loaded, c)
}

fn token_keys(loaded: &[Vec<Loaded>]) -> Vec<TokenKey> {
    loaded
        .iter()
        .flatten()
        .map(|l| TokenKey::of(l.token_fd().expect("a loaded object holds its token")).unwrap())
        .collect()
}

/// Drops every object on a thread other than the one that loaded it.
fn drop_elsewhere(mut loaded: Vec<Vec<Loaded>>) {
    loaded.rotate_left(1);
    let ds: Vec<_> = loaded
        .into_iter()
        .map(|v| std::thread::spawn(move || drop(v)))
        .collect();
    for d in ds {
        d.join().unwrap();
    }
}

fn concurrent(bpffs: &Path, fixtures: &[String]) -> Value {
    let objs: Arc<Vec<Object>> = Arc::new(
        fixtures
            .iter()
            .map(|f| Object::open_file(f).unwrap_or_else(|e| panic!("open {f}: {e}")))
            .collect(),
    );
    let n = objs.len() as u64;
    let loads_per_fixture = (THREADS * PER_THREAD) as u64 / n;
    let fds0 = fd_count();
    let per_load = Loader::new().token_path(bpffs);

    // Warm-up: the process-wide caches that do not depend on the token (kernel BTF, kallsyms...).
    for o in objs.iter() {
        drop(load_checked(&per_load, o, "warm-up"));
    }

    // Reference A: a token per load, so every load has a fresh (cold) token cache.
    let mut want_a = Counts::new();
    for o in objs.iter() {
        let c0 = counts();
        drop(load_checked(&per_load, o, "reference A"));
        add(&mut want_a, &diff(&c0, &counts()), loads_per_fixture);
    }

    // Reference B: one token for every load; the caller keeps its cache alive (see the test).
    let t0 = bpfload::token::create_at(bpffs).expect("create the reference token");
    let cache0 = Probes::for_token(t0.as_fd()).expect("token cache");
    let shared0 = Loader::new().token_fd(t0.as_fd());
    let c0 = counts();
    let mut held: Vec<Loaded> = objs
        .iter()
        .map(|o| load_checked(&shared0, o, "reference B cold"))
        .collect();
    let c1 = counts();
    // The warm cost of the last fixture: what a load costs when no feature needs a probe.
    let mut warm_last = 0;
    for o in objs.iter() {
        let w0 = counts();
        held.push(load_checked(&shared0, o, "reference B warm"));
        warm_last = diff(&w0, &counts())["total"];
    }
    let c2 = counts();
    let mut want_b = diff(&c0, &c1);
    add(&mut want_b, &diff(&c1, &c2), loads_per_fixture - 1);
    drop(held);
    drop((shared0, cache0, t0));

    // Two serial loads through one Loader with a caller-given token, each object dropped at
    // once and nobody else holding the token's cache: the Loader holds it, so the second load
    // probes nothing (it costs `warm_last`).
    let last = objs.last().unwrap();
    let t2 = bpfload::token::create_at(bpffs).expect("create a token");
    let serial = Loader::new().token_fd(t2.as_fd());
    let u0 = counts();
    drop(load_checked(&serial, last, "serial 1"));
    let u1 = counts();
    drop(load_checked(&serial, last, "serial 2"));
    let u2 = counts();
    let serial_calls = [diff(&u0, &u1)["total"], diff(&u1, &u2)["total"]];
    drop((serial, t2));

    // A loaded object alone keeps its token's cache alive (the Loader is gone): a new cache
    // lookup for that token finds it warm; once the object is dropped, the cache is gone too.
    let t3 = bpfload::token::create_at(bpffs).expect("create a token");
    let l3 = Loader::new().token_fd(t3.as_fd());
    let kept = load_checked(&l3, last, "kept");
    drop(l3);
    let cached_count = |t: &OwnedFd| {
        let c = Probes::for_token(t.as_fd()).expect("token cache");
        Feature::ALL
            .iter()
            .filter(|&&f| c.cached(f).is_some())
            .count()
    };
    let cached_with_object = cached_count(&t3);
    drop(kept);
    let cached_after_drop = cached_count(&t3);
    drop(t3);

    // Phase A: 64 concurrent loads, each creating its own token from the same bpffs.
    let token_fds_before = token_fd_count();
    let (loaded_a, got_a) = run_concurrent(&objs, &Arc::new(per_load));
    let keys_a = token_keys(&loaded_a);
    let distinct_a: BTreeSet<TokenKey> = keys_a.iter().copied().collect();
    let devs_a: BTreeSet<u64> = keys_a.iter().map(|k| k.dev).collect();
    let token_fds_a = token_fd_count() - token_fds_before;
    drop_elsewhere(loaded_a);
    let fds_after_a = fd_count();

    // Phase B: 64 concurrent loads sharing one caller-given token and its cache.
    let t1 = bpfload::token::create_at(bpffs).expect("create the shared token");
    let key1 = TokenKey::of(t1.as_fd()).unwrap();
    let cache1 = Probes::for_token(t1.as_fd()).expect("token cache");
    let shared = Arc::new(Loader::new().token_fd(t1.as_fd()));
    let (loaded_b, got_b) = run_concurrent(&objs, &shared);
    let keys_b = token_keys(&loaded_b);
    let same_b = keys_b.iter().filter(|k| **k == key1).count();
    let cached_b = Feature::ALL
        .iter()
        .filter(|&&f| cache1.cached(f).is_some())
        .count();
    drop_elsewhere(loaded_b);
    drop((shared, cache1, t1));
    let fds_end = fd_count();

    json!({
        "loads": THREADS * PER_THREAD,
        "a": {"got": got_a, "want": want_a, "tokens": keys_a.len(), "distinct_tokens": distinct_a.len(),
              "distinct_devs": devs_a.len(), "token_fds_held": token_fds_a, "fds_after_drop": fds_after_a},
        "b": {"got": got_b, "want": want_b, "same_token": same_b, "cached_features": cached_b},
        "serial_calls": serial_calls,
        "warm_calls": warm_last,
        "cached_with_object": cached_with_object,
        "cached_after_drop": cached_after_drop,
        "fds_before": fds0,
        "fds_after": fds_end,
        "token_fds_after": token_fd_count(),
    })
}

fn revoke(dir: &Path, object: &Path) -> Value {
    let obj =
        Object::open_file(object).unwrap_or_else(|e| panic!("open {}: {e}", object.display()));
    let fds0 = fd_count();
    let map = obj
        .maps()
        .first()
        .map(|m| m.name().to_string())
        .expect("an object with a map");

    // Before the unmount: one object loaded through the path, and a token of our own.
    let first = Loader::new()
        .token_path(dir)
        .load(&obj)
        .expect("load with the explicit path before the unmount");
    let first_token = first.token_fd().map(|t| TokenKey::of(t).unwrap());
    let caller_token = bpfload::token::create_at(dir).expect("caller's own token");

    umount_detach(dir).expect("umount2(MNT_DETACH) the delegated bpffs");
    let still_bpffs = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.contains(&format!(" {} ", dir.display())) && l.contains(" - bpf "));

    // (a) A new load with the same explicit path: must fail on the token, issue nothing else.
    let snap = CallSnapshot::thread();
    let second = Loader::new().token_path(dir).load(&obj);
    let issued_after: u64 = [
        bpf_cmd::BPF_MAP_CREATE,
        bpf_cmd::BPF_BTF_LOAD,
        bpf_cmd::BPF_PROG_LOAD,
    ]
    .iter()
    .map(|&c| snap.since(c))
    .sum();
    let (second_ok, second_err, second_is_token) = match &second {
        Ok(_) => (true, Value::Null, false),
        Err(e) => (
            false,
            json!(e.to_string()),
            matches!(e, bpfload::LoadError::Token(_)),
        ),
    };
    drop(second);

    // (b) The object loaded before the unmount: its map works, its token is still held.
    let m = first.map(&map).expect("the loaded map");
    let value = 0x5eed_u32.to_ne_bytes();
    let push = bpfload_syscall::map::update_elem(m.fd(), &[], &value, 0).map_err(|e| e.to_string());
    let mut peek = [0u8; 4];
    let peeked = bpfload_syscall::map::lookup_elem(m.fd(), &[], &mut peek, 0)
        .map(|()| u32::from_ne_bytes(peek))
        .map_err(|e| e.to_string());
    let held_target = first
        .token_fd()
        .and_then(|t| fd_target(t.as_raw_fd()))
        .unwrap_or_default();
    let token_fds_held = token_fd_count();
    drop(first);
    let token_fds_after_drop_first = token_fd_count();

    // (c) The caller's token, created before the unmount, for a new load.
    let third = Loader::new().token_fd(caller_token.as_fd()).load(&obj);
    let third_json = match &third {
        Ok(l) => json!({"ok": true, "all_loaded": l.all_loaded(),
            "same_token": l.token_fd().map(|t| TokenKey::of(t).unwrap()) == TokenKey::of(caller_token.as_fd()).ok()}),
        Err(e) => json!({"ok": false, "error": e.to_string()}),
    };
    drop(third);
    drop(caller_token);
    // A token can no longer be created from the path at all.
    let create_after = match bpfload::token::create_at(dir) {
        Ok(_) => "created".to_string(),
        Err((step, errno)) => format!("{step:?} {}", errno.name()),
    };

    json!({
        "dir": dir.display().to_string(),
        "first_had_token": first_token.is_some(),
        "still_bpffs_after_umount": still_bpffs,
        "second": {"ok": second_ok, "error": second_err, "is_token_error": second_is_token,
                   "objects_created": issued_after},
        "held": {"push": push.err(), "peek": peeked.as_ref().ok(), "peek_error": peeked.err(),
                 "token_target": held_target, "token_fds": token_fds_held,
                 "token_fds_after_drop": token_fds_after_drop_first},
        "third": third_json,
        "create_after": create_after,
        "fds_before": fds0,
        "fds_after": fd_count(),
        "token_fds_after": token_fd_count(),
    })
}

fn probe_faults(bpffs: &Path) -> Value {
    let fds0 = fd_count();
    let token = bpfload::token::create_at(bpffs).expect("create a token");
    let clean = Probes::private(Some(token.as_fd())).unwrap();
    let baseline: Vec<_> = Feature::ALL
        .iter()
        .map(|&f| (f, clean.check(f).support))
        .collect();
    drop(clean);
    let errnos = [Errno::EPERM, Errno::EINVAL, Errno::ENOMEM, Errno::EINTR];
    let mut rows = Vec::new();
    let mut faulted_runs = 0u64;
    let mut leaks = Vec::new();
    for &(feature, want) in &baseline {
        // The calls this feature's probe makes in a cold cache (it may ask other features first).
        let probes = Probes::private(Some(token.as_fd())).unwrap();
        let snap = CallSnapshot::thread();
        probes.check(feature);
        let calls = snap.total_since();
        drop(probes);
        for n in 1..=calls {
            for errno in errnos {
                let fds = fd_count();
                let probes = Probes::private(Some(token.as_fd())).unwrap();
                let (r, stats) =
                    with_fault_plan(FaultPlan::nth_call(n, errno), || probes.check(feature));
                if stats.injected == 0 {
                    continue;
                }
                faulted_runs += 1;
                let cached = probes.cached(feature).map(|c| c.support);
                let again = probes.check(feature).support;
                drop(probes);
                if fd_count() != fds {
                    leaks.push(format!("{} call #{n} {}", feature.name(), errno.name()));
                }
                rows.push(json!({
                    "feature": feature.name(), "call": n, "errno": errno.name(),
                    "result": r.support.as_str(), "method": r.method.to_string(), "cached": cached.map(|s| s.as_str()),
                    "clean": want.as_str(), "again": again.as_str(),
                }));
            }
        }
    }
    drop(token);
    json!({
        "features": baseline.len(),
        "faulted_runs": faulted_runs,
        "rows": rows,
        "leaks": leaks,
        "fds_before": fds0,
        "fds_after": fd_count(),
    })
}
