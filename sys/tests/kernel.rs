//! bpf(2) wrappers against the real kernel. Needs root (CAP_BPF + CAP_SYS_ADMIN); skips otherwise, and panics
//! instead of skipping when CI=true.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

mod common;

use bpfload_syscall::syscall::CallSnapshot;
use bpfload_syscall::uapi::{
    bpf_attach_type, bpf_cmd, bpf_insn, bpf_map_type, bpf_prog_type, BPF_ANY, BPF_F_RDONLY_PROG,
};
use bpfload_syscall::{
    btf, fd, info, link, map, obj, prog, token, Errno, LogOptions, MapCreateAttr, ProgLoadAttr,
};
use common::*;

/// Tests in this binary count `/proc/self/fd`, so they run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Returns the serialisation guard if the test should run.
fn setup(what: &str) -> Option<MutexGuard<'static, ()>> {
    if !require_root(what) {
        return None;
    }
    Some(SERIAL.lock().unwrap_or_else(|p| p.into_inner()))
}

fn socket_filter<'a>(insns: &'a [bpf_insn], name: &'a str) -> ProgLoadAttr<'a> {
    ProgLoadAttr {
        prog_type: bpf_prog_type::BPF_PROG_TYPE_SOCKET_FILTER as u32,
        insns,
        license: c"GPL",
        name: Some(name),
        ..Default::default()
    }
}

fn array(value_size: u32, max_entries: u32, flags: u32, name: &str) -> OwnedFd {
    map::create(&MapCreateAttr {
        map_type: bpf_map_type::BPF_MAP_TYPE_ARRAY as u32,
        key_size: 4,
        value_size,
        max_entries,
        map_flags: flags,
        name: Some(name),
        ..Default::default()
    })
    .expect("create ARRAY")
}

fn cstr_field(name: &[core::ffi::c_char]) -> String {
    let bytes: Vec<u8> = name
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8(bytes).unwrap()
}

#[test]
fn array_and_hash_maps_roundtrip() {
    let Some(_serial) = setup("array_and_hash_maps_roundtrip") else {
        return;
    };
    let arr = array(8, 4, 0, "t_array");
    assert!(arr.as_raw_fd() > 2);
    assert!(fd::is_cloexec(arr.as_fd()).unwrap());
    map::update_elem(
        arr.as_fd(),
        &2u32.to_ne_bytes(),
        &0xdead_beef_u64.to_ne_bytes(),
        BPF_ANY as u64,
    )
    .unwrap();
    let mut v = [0u8; 8];
    map::lookup_elem(arr.as_fd(), &2u32.to_ne_bytes(), &mut v, 0).unwrap();
    assert_eq!(u64::from_ne_bytes(v), 0xdead_beef);
    // Wrong-size buffers are refused before the kernel could overrun them.
    let mut small = [0u8; 4];
    let e = map::lookup_elem(arr.as_fd(), &2u32.to_ne_bytes(), &mut small, 0).unwrap_err();
    assert_eq!(e.errno(), Errno::EINVAL);
    assert!(e.detail().is_some());

    let info = info::map_info(arr.as_fd()).unwrap();
    assert_eq!(info.type_, bpf_map_type::BPF_MAP_TYPE_ARRAY as u32);
    assert_eq!(
        (info.key_size, info.value_size, info.max_entries),
        (4, 8, 4)
    );
    assert_eq!(cstr_field(&info.name), "t_array");

    let hash = map::create(&MapCreateAttr {
        map_type: bpf_map_type::BPF_MAP_TYPE_HASH as u32,
        key_size: 8,
        value_size: 4,
        max_entries: 16,
        name: Some("t_hash"),
        ..Default::default()
    })
    .unwrap();
    let k1 = 7u64.to_ne_bytes();
    let mut out = [0u8; 4];
    let e = map::lookup_elem(hash.as_fd(), &k1, &mut out, 0).unwrap_err();
    assert_eq!(e.errno(), Errno::ENOENT);
    map::update_elem(hash.as_fd(), &k1, &5u32.to_ne_bytes(), BPF_ANY as u64).unwrap();
    map::lookup_elem(hash.as_fd(), &k1, &mut out, 0).unwrap();
    assert_eq!(u32::from_ne_bytes(out), 5);
    assert_eq!(
        map::get_next_key(hash.as_fd(), None).unwrap(),
        Some(k1.to_vec())
    );
    assert_eq!(map::get_next_key(hash.as_fd(), Some(&k1)).unwrap(), None);
    map::delete_elem(hash.as_fd(), &k1).unwrap();
    assert_eq!(
        map::lookup_elem(hash.as_fd(), &k1, &mut out, 0)
            .unwrap_err()
            .errno(),
        Errno::ENOENT
    );

    // The id round-trips through GET_FD_BY_ID.
    let again = map::get_fd_by_id(info.id).unwrap();
    assert_eq!(info::map_info(again.as_fd()).unwrap().id, info.id);
}

#[test]
fn queue_push_pop_and_kinds() {
    let Some(_serial) = setup("queue_push_pop_and_kinds") else {
        return;
    };
    let q = map::create(&MapCreateAttr {
        map_type: bpf_map_type::BPF_MAP_TYPE_QUEUE as u32,
        key_size: 0,
        value_size: 4,
        max_entries: 4,
        name: Some("t_queue"),
        ..Default::default()
    })
    .unwrap();
    for v in [1u32, 2] {
        map::update_elem(q.as_fd(), &[], &v.to_ne_bytes(), BPF_ANY as u64).unwrap();
    }
    let mut out = [0u8; 4];
    map::lookup_elem(q.as_fd(), &[], &mut out, 0).unwrap(); // peek
    assert_eq!(u32::from_ne_bytes(out), 1);
    map::lookup_and_delete_elem(q.as_fd(), &[], &mut out).unwrap(); // pop
    assert_eq!(u32::from_ne_bytes(out), 1);
    map::lookup_and_delete_elem(q.as_fd(), &[], &mut out).unwrap();
    assert_eq!(u32::from_ne_bytes(out), 2);
    assert_eq!(
        map::lookup_and_delete_elem(q.as_fd(), &[], &mut out)
            .unwrap_err()
            .errno(),
        Errno::ENOENT
    );

    // fd kinds, and ids enumerate.
    assert_eq!(fd::kind(q.as_fd()).unwrap(), fd::ObjKind::Map);
    let insns = ret_imm(0);
    let p = prog::load(&socket_filter(&insns, "t_kind"), &LogOptions::default()).unwrap();
    assert_eq!(fd::kind(p.as_fd()).unwrap(), fd::ObjKind::Prog);
    let b = btf::load(&int_btf(), None, &LogOptions::default()).unwrap();
    assert_eq!(fd::kind(b.as_fd()).unwrap(), fd::ObjKind::Btf);
    let qid = info::map_info(q.as_fd()).unwrap().id;
    let pid = info::prog_info(p.as_fd()).unwrap().id;
    let mut seen_map = false;
    let mut id = 0;
    while let Some(next) = map::get_next_id(id).unwrap() {
        assert!(next > id);
        seen_map |= next == qid;
        id = next;
    }
    assert!(seen_map);
    let mut seen_prog = false;
    let mut id = 0;
    while let Some(next) = prog::get_next_id(id).unwrap() {
        seen_prog |= next == pid;
        id = next;
    }
    assert!(seen_prog);
}

#[test]
fn placeholder_becomes_the_map() {
    let Some(_serial) = setup("placeholder_becomes_the_map") else {
        return;
    };
    let before = fd::count_open_fds().unwrap();
    let mut ph = fd::placeholder().unwrap();
    let number = ph.as_raw_fd();
    {
        let m = array(4, 1, 0, "t_ph");
        fd::replace(&mut ph, m.as_fd()).unwrap();
    }
    // The map lives on under the placeholder's number after the original fd is closed.
    assert_eq!(ph.as_raw_fd(), number);
    assert_eq!(fd::kind(ph.as_fd()).unwrap(), fd::ObjKind::Map);
    assert_eq!(
        cstr_field(&info::map_info(ph.as_fd()).unwrap().name),
        "t_ph"
    );
    drop(ph);
    assert_eq!(fd::count_open_fds().unwrap(), before);
}

#[test]
fn frozen_map_refuses_user_writes() {
    let Some(_serial) = setup("frozen_map_refuses_user_writes") else {
        return;
    };
    let m = array(4, 1, BPF_F_RDONLY_PROG, "t_rodata");
    map::update_elem(m.as_fd(), &0u32.to_ne_bytes(), &9u32.to_ne_bytes(), 0).unwrap();
    map::freeze(m.as_fd()).unwrap();
    let e = map::update_elem(m.as_fd(), &0u32.to_ne_bytes(), &1u32.to_ne_bytes(), 0).unwrap_err();
    assert_eq!(e.errno(), Errno::EPERM);
    assert_eq!(e.cmd(), "BPF_MAP_UPDATE_ELEM");
    let mut v = [0u8; 4];
    map::lookup_elem(m.as_fd(), &0u32.to_ne_bytes(), &mut v, 0).unwrap();
    assert_eq!(u32::from_ne_bytes(v), 9);
}

#[test]
fn socket_filter_loads_and_reads_back() {
    let Some(_serial) = setup("socket_filter_loads_and_reads_back") else {
        return;
    };
    let insns = ret_imm(0);
    let p = prog::load(&socket_filter(&insns, "t_ret0"), &LogOptions::default()).unwrap();
    assert!(p.as_raw_fd() > 2);
    assert!(fd::is_cloexec(p.as_fd()).unwrap());
    let i = info::prog_info(p.as_fd()).unwrap();
    assert_eq!(i.type_, bpf_prog_type::BPF_PROG_TYPE_SOCKET_FILTER as u32);
    assert_eq!(cstr_field(&i.name), "t_ret0");
    assert_eq!(info::prog_xlated_len(p.as_fd()).unwrap(), 16);
    let x = info::prog_xlated_insns(p.as_fd()).unwrap();
    assert_eq!(x.len(), 2);
    assert_eq!((x[0].code, x[1].code), (MOV64_IMM, EXIT));
    let again = prog::get_fd_by_id(i.id).unwrap();
    assert_eq!(info::prog_info(again.as_fd()).unwrap().id, i.id);
}

#[test]
fn requested_log_comes_back_on_success() {
    let Some(_serial) = setup("requested_log_comes_back_on_success") else {
        return;
    };
    let insns = ret_imm(0);
    let loaded = prog::load_with_log(
        &socket_filter(&insns, "t_log"),
        &LogOptions {
            level: 2,
            ..Default::default()
        },
    )
    .unwrap();
    let log = loaded.log.unwrap();
    assert!(log.contains("processed 2 insns"), "{log}");
}

#[test]
fn bad_program_returns_verifier_log() {
    let Some(_serial) = setup("bad_program_returns_verifier_log") else {
        return;
    };
    // exit without setting r0.
    let insns = vec![insn(EXIT, 0, 0, 0, 0)];
    let before = fd::count_open_fds().unwrap();
    let e = prog::load(&socket_filter(&insns, "t_bad"), &LogOptions::default()).unwrap_err();
    assert!(matches!(e.errno(), Errno::EACCES | Errno::EINVAL), "{e}");
    assert!(e.log().contains("R0 !read_ok"), "log: {}", e.log());
    assert!(!e.log_truncated());
    assert_eq!(fd::count_open_fds().unwrap(), before);

    // A tiny cap: the kernel reports ENOSPC, the error says the log was truncated.
    let e = prog::load(
        &socket_filter(&insns, "t_bad"),
        &LogOptions {
            level: 0,
            size_limit: 128,
        },
    )
    .unwrap_err();
    assert!(e.log_truncated(), "{e}");
    assert_eq!(e.errno(), Errno::ENOSPC);
    assert!(!e.log().is_empty());
}

#[test]
fn big_log_grows_past_initial_buffer() {
    let Some(_serial) = setup("big_log_grows_past_initial_buffer") else {
        return;
    };
    // Many instructions at log level 2 produce far more than 64 KiB of log, then fail at the end.
    let mut insns = vec![insn(MOV64_IMM, 0, 0, 0, 0)];
    for _ in 0..3000 {
        insns.push(insn(ADD64_IMM, 0, 0, 0, 1));
    }
    insns.push(insn(MOV64_IMM, 0, 0, 0, 0));
    insns.push(insn(ADD64_IMM, 1, 0, 0, 0)); // touch r1 (ctx): fine
    insns.push(insn(CALL, 0, 0, 0, 9999)); // unknown helper: fails
    insns.push(insn(EXIT, 0, 0, 0, 0));
    let snap = CallSnapshot::thread();
    let e = prog::load(
        &socket_filter(&insns, "t_biglog"),
        &LogOptions {
            level: 2,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(!e.log_truncated());
    // 64 KiB is too small (ENOSPC); the kernel (6.4+) reports log_true_size, so exactly one more attempt.
    if bpfload_syscall::util::kernel_version().unwrap()
        >= bpfload_syscall::util::kernel_version_code(6, 4, 0)
    {
        assert_eq!(snap.since(bpf_cmd::BPF_PROG_LOAD), 2);
    }
    assert!(
        e.log().len() > 64 * 1024,
        "log only {} bytes",
        e.log().len()
    );
    assert!(
        e.log().contains("invalid func unknown#9999"),
        "{}",
        log_tail_of(&e)
    );
}

fn log_tail_of(e: &bpfload_syscall::ProgLoadError) -> String {
    bpfload_syscall::log_tail(e.log(), 5)
}

/// Program that stores 42 into element 0 of `map_fd`: the usual lookup-then-store pattern.
fn store_42(map_fd: i32) -> Vec<bpf_insn> {
    vec![
        insn(ST_W, 10, 0, -4, 0),                    // *(u32 *)(fp - 4) = 0
        insn(MOV64_REG, 2, 10, 0, 0),                // r2 = fp
        insn(ADD64_IMM, 2, 0, 0, -4),                // r2 -= 4
        insn(LD_IMM64, 1, PSEUDO_MAP_FD, 0, map_fd), // r1 = map
        insn(0, 0, 0, 0, 0),
        insn(CALL, 0, 0, 0, 1),    // bpf_map_lookup_elem
        insn(JEQ_IMM, 0, 0, 2, 0), // if r0 == 0 goto out
        insn(MOV64_IMM, 1, 0, 0, 42),
        insn(STX_W, 0, 1, 0, 0),     // *(u32 *)r0 = 42
        insn(MOV64_IMM, 0, 0, 0, 0), // out: r0 = 0
        insn(EXIT, 0, 0, 0, 0),
    ]
}

#[test]
fn test_run_writes_map_and_bind_map_shows_in_info() {
    let Some(_serial) = setup("test_run_writes_map_and_bind_map_shows_in_info") else {
        return;
    };
    let m = array(4, 1, 0, "t_out");
    let extra = array(4, 1, BPF_F_RDONLY_PROG, "t_bound");
    let insns = store_42(m.as_raw_fd());
    let p = prog::load(&socket_filter(&insns, "t_store"), &LogOptions::default()).unwrap();
    let run = prog::test_run(p.as_fd(), &[0u8; 64], 1).unwrap();
    assert_eq!(run.retval, 0);
    let mut v = [0u8; 4];
    map::lookup_elem(m.as_fd(), &0u32.to_ne_bytes(), &mut v, 0).unwrap();
    assert_eq!(u32::from_ne_bytes(v), 42);

    let m_id = info::map_info(m.as_fd()).unwrap().id;
    let extra_id = info::map_info(extra.as_fd()).unwrap().id;
    assert_eq!(info::prog_map_ids(p.as_fd()).unwrap(), vec![m_id]);
    prog::bind_map(p.as_fd(), extra.as_fd()).unwrap();
    let mut ids = info::prog_map_ids(p.as_fd()).unwrap();
    ids.sort();
    let mut want = vec![m_id, extra_id];
    want.sort();
    assert_eq!(ids, want);
}

#[test]
fn xdp_test_run_returns_verdict() {
    let Some(_serial) = setup("xdp_test_run_returns_verdict") else {
        return;
    };
    let insns = ret_imm(2); // XDP_PASS
    let a = ProgLoadAttr {
        prog_type: bpf_prog_type::BPF_PROG_TYPE_XDP as u32,
        expected_attach_type: bpf_attach_type::BPF_XDP as u32,
        insns: &insns,
        license: c"GPL",
        name: Some("t_xdp"),
        ..Default::default()
    };
    let p = prog::load(&a, &LogOptions::default()).unwrap();
    let pkt = [0xabu8; 64];
    let run = prog::test_run(p.as_fd(), &pkt, 3).unwrap();
    assert_eq!(run.retval, 2);
    assert_eq!(run.data_out, pkt);
}

#[test]
fn btf_load_and_info() {
    let Some(_serial) = setup("btf_load_and_info") else {
        return;
    };
    let blob = int_btf();
    let b = btf::load(&blob, None, &LogOptions::default()).unwrap();
    assert!(b.as_raw_fd() > 2);
    let i = info::btf_info(b.as_fd()).unwrap();
    assert!(!i.kernel_btf);
    assert_eq!(i.size as usize, blob.len());
    assert_eq!(info::btf_data(b.as_fd()).unwrap(), blob);
    let again = btf::get_fd_by_id(i.id, None).unwrap();
    assert_eq!(info::btf_info(again.as_fd()).unwrap().id, i.id);

    // vmlinux BTF is object 1 on every kernel with CONFIG_DEBUG_INFO_BTF.
    let first = btf::get_next_id(0).unwrap().expect("at least vmlinux BTF");
    let v = btf::get_fd_by_id(first, None).unwrap();
    let vi = info::btf_info(v.as_fd()).unwrap();
    assert!(vi.kernel_btf);
    assert_eq!(vi.name, "vmlinux");

    // Broken BTF: the log explains it.
    let mut bad = blob.clone();
    bad[24 + 4..24 + 8].copy_from_slice(&(31u32 << 24).to_ne_bytes()); // unknown kind 31
    let e = btf::load(&bad, None, &LogOptions::default()).unwrap_err();
    assert_eq!(e.errno(), Errno::EINVAL);
    assert!(!e.log().is_empty(), "{e}");
}

struct TempPin(PathBuf);
impl Drop for TempPin {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn pin_and_get_on_bpffs() {
    let Some(_serial) = setup("pin_and_get_on_bpffs") else {
        return;
    };
    let root = Path::new("/sys/fs/bpf");
    if !obj::is_bpffs(root).unwrap_or(false) {
        panic!("/sys/fs/bpf is not a bpffs; mount it with `mount -t bpf bpf /sys/fs/bpf`");
    }
    let m = array(4, 1, 0, "t_pin");
    let path = root.join(format!("bpfload_sys_test_{}", std::process::id()));
    let _cleanup = TempPin(path.clone());
    obj::pin(m.as_fd(), &path).unwrap();
    assert_eq!(
        obj::pin(m.as_fd(), &path).unwrap_err().errno(),
        Errno::EEXIST
    );
    let got = obj::get(&path, 0).unwrap();
    assert_eq!(
        info::map_info(got.as_fd()).unwrap().id,
        info::map_info(m.as_fd()).unwrap().id
    );
    assert!(obj::is_bpffs(&path).unwrap());
    assert_eq!(
        obj::get(&root.join("bpfload_no_such_pin"), 0)
            .unwrap_err()
            .errno(),
        Errno::ENOENT
    );
}

#[test]
fn token_create_in_init_userns_is_refused() {
    let Some(_serial) = setup("token_create_in_init_userns_is_refused") else {
        return;
    };
    let dir = std::fs::File::open("/sys/fs/bpf").unwrap();
    let before = fd::count_open_fds().unwrap();
    let e = token::create(dir.as_fd(), 0).unwrap_err();
    // In the init user namespace the kernel refuses tokens (EOPNOTSUPP, 6.9+); EINVAL on older kernels.
    assert!(
        matches!(e.errno(), Errno::EOPNOTSUPP | Errno::EINVAL),
        "{e}"
    );
    assert_eq!(e.cmd(), "BPF_TOKEN_CREATE");
    assert_eq!(fd::count_open_fds().unwrap(), before);
}

/// libbpf's UPROBE_MULTI_LINK probe: a uprobe_multi link on "/" (a directory) fails with EBADF. The kernel
/// answers EINVAL instead when any attr byte after `uprobe_multi.pid` is not zero, which is what junk in the
/// struct's padding (attr bytes 60..64) caused; the stack is filled with junk to make that show.
#[test]
fn uprobe_multi_link_on_a_directory_is_ebadf() {
    let Some(_serial) = setup("uprobe_multi_link_on_a_directory_is_ebadf") else {
        return;
    };
    let insns = ret_imm(0);
    let prog = prog::load(
        &ProgLoadAttr {
            prog_type: bpf_prog_type::BPF_PROG_TYPE_KPROBE as u32,
            expected_attach_type: bpf_attach_type::BPF_TRACE_UPROBE_MULTI as u32,
            insns: &insns,
            license: c"GPL",
            ..Default::default()
        },
        &LogOptions::default(),
    )
    .expect("load a uprobe_multi kprobe program");
    let before = fd::count_open_fds().unwrap();
    junk_stack(0xAA);
    let e = link::create_uprobe_multi(prog.as_fd(), c"/", &[0], 0).unwrap_err();
    assert_eq!(e.errno(), Errno::EBADF, "{e}");
    assert_eq!(e.cmd(), "BPF_LINK_CREATE");
    assert_eq!(fd::count_open_fds().unwrap(), before);
}

#[test]
fn errors_leak_no_fds() {
    let Some(_serial) = setup("errors_leak_no_fds") else {
        return;
    };
    let before = fd::count_open_fds().unwrap();
    for _ in 0..10 {
        // Map with an invalid size, program that fails, BTF that fails, OBJ_GET of a missing pin.
        let e = map::create(&MapCreateAttr {
            map_type: bpf_map_type::BPF_MAP_TYPE_ARRAY as u32,
            key_size: 3,
            value_size: 4,
            max_entries: 1,
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.errno(), Errno::EINVAL);
        let insns = vec![insn(EXIT, 0, 0, 0, 0)];
        prog::load(&socket_filter(&insns, "t_leak"), &LogOptions::default()).unwrap_err();
        btf::load(&[0u8; 8], None, &LogOptions::default()).unwrap_err();
        obj::get(Path::new("/sys/fs/bpf/bpfload_nope"), 0).unwrap_err();
    }
    assert_eq!(fd::count_open_fds().unwrap(), before);
}

/// Every wrapper, failed by the thread-local fault plan with each errno issue 7 lists: a clean error with
/// that errno, no fd left behind, and the same call works again afterwards.
#[test]
fn injected_faults_give_clean_errors_without_leaks() {
    let Some(_serial) = setup("injected_faults_give_clean_errors_without_leaks") else {
        return;
    };
    use bpfload_syscall::{with_fault_plan, FaultPlan};
    let errnos = [
        Errno::EPERM,
        Errno::EINVAL,
        Errno::ENOMEM,
        Errno::E2BIG,
        Errno::EAGAIN,
        Errno::EINTR,
    ];
    let insns = ret_imm(0);
    let blob = int_btf();
    let m = array(4, 1, 0, "t_fault");
    let before = fd::count_open_fds().unwrap();
    for errno in errnos {
        let all = |cmd| FaultPlan::nth_of(cmd, 1, errno).times(u64::MAX);
        let (r, stats) = with_fault_plan(all(bpf_cmd::BPF_PROG_LOAD), || {
            prog::load(&socket_filter(&insns, "t_fault"), &LogOptions::default())
        });
        let e = r.unwrap_err();
        assert_eq!(e.errno(), errno, "{e}");
        // EAGAIN is retried 5 times per log level; E2BIG without func/line info is not retried.
        let expect = if errno == Errno::EAGAIN { 10 } else { 2 };
        assert_eq!(stats.injected, expect, "{errno}");

        let (r, _) = with_fault_plan(all(bpf_cmd::BPF_MAP_CREATE), || {
            map::create(&MapCreateAttr {
                map_type: bpf_map_type::BPF_MAP_TYPE_ARRAY as u32,
                key_size: 4,
                value_size: 4,
                max_entries: 1,
                ..Default::default()
            })
        });
        assert_eq!(r.unwrap_err().errno(), errno);

        let (r, _) = with_fault_plan(all(bpf_cmd::BPF_BTF_LOAD), || {
            btf::load(&blob, None, &LogOptions::default())
        });
        assert_eq!(r.unwrap_err().errno(), errno);

        // The size check before an element call is a syscall too.
        let (r, _) = with_fault_plan(all(bpf_cmd::BPF_OBJ_GET_INFO_BY_FD), || {
            map::update_elem(m.as_fd(), &0u32.to_ne_bytes(), &1u32.to_ne_bytes(), 0)
        });
        let e = r.unwrap_err();
        assert_eq!((e.errno(), e.cmd()), (errno, "BPF_OBJ_GET_INFO_BY_FD"));
    }
    assert_eq!(fd::count_open_fds().unwrap(), before);
    // And everything works again.
    drop(prog::load(&socket_filter(&insns, "t_fault"), &LogOptions::default()).unwrap());
    drop(btf::load(&blob, None, &LogOptions::default()).unwrap());
    map::update_elem(m.as_fd(), &0u32.to_ne_bytes(), &1u32.to_ne_bytes(), 0).unwrap();
    assert_eq!(fd::count_open_fds().unwrap(), before);
}

/// E2BIG path against the kernel: 12-byte func_info records with non-zero trailing bytes. The kernel knows
/// 8-byte records, refuses the tail with E2BIG and reports 8; the wrapper zeroes the tails and the load succeeds.
#[test]
fn func_info_with_unknown_tail_is_retried_zeroed() {
    let Some(_serial) = setup("func_info_with_unknown_tail_is_retried_zeroed") else {
        return;
    };
    let b = btf::load(&func_btf(), None, &LogOptions::default()).unwrap();
    let insns = ret_imm(0);
    let mut finfo = Vec::new();
    finfo.extend_from_slice(&0u32.to_ne_bytes()); // insn_off
    finfo.extend_from_slice(&3u32.to_ne_bytes()); // type_id: FUNC prog
    finfo.extend_from_slice(&0xffff_ffffu32.to_ne_bytes()); // a field this kernel does not have
    let a = ProgLoadAttr {
        btf_fd: Some(b.as_fd()),
        func_info: &finfo,
        func_info_rec_size: 12,
        ..socket_filter(&insns, "t_finfo")
    };
    let snap = CallSnapshot::thread();
    let p = prog::load(&a, &LogOptions::default()).unwrap();
    assert_eq!(
        snap.since(bpf_cmd::BPF_PROG_LOAD),
        2,
        "one E2BIG, then the zeroed retry"
    );
    let i = info::prog_info(p.as_fd()).unwrap();
    assert_eq!(i.nr_func_info, 1);
    assert_eq!(i.btf_id, info::btf_info(b.as_fd()).unwrap().id);
}

/// `fd_array_cnt` (6.14+, our `uapi_ext` offset): the kernel binds every map in `fd_array` to the program even
/// though no instruction references it.
#[test]
fn fd_array_cnt_binds_maps() {
    let Some(_serial) = setup("fd_array_cnt_binds_maps") else {
        return;
    };
    let m = array(4, 1, 0, "t_fdarr");
    let insns = ret_imm(0);
    let fds = [m.as_raw_fd()];
    let a = ProgLoadAttr {
        fd_array: Some(&fds),
        fd_array_cnt: 1,
        ..socket_filter(&insns, "t_fdarr")
    };
    match prog::load(&a, &LogOptions::default()) {
        Ok(p) => {
            let id = info::map_info(m.as_fd()).unwrap().id;
            assert_eq!(info::prog_map_ids(p.as_fd()).unwrap(), vec![id]);
        }
        Err(e) if e.errno() == Errno::E2BIG => {
            eprintln!("note: kernel predates fd_array_cnt (6.14)")
        }
        Err(e) => panic!("{e}"),
    }
    // Without the count, the array alone binds nothing (pre-6.14 meaning).
    let a = ProgLoadAttr {
        fd_array: Some(&fds),
        ..socket_filter(&insns, "t_fdarr")
    };
    let p = prog::load(&a, &LogOptions::default()).unwrap();
    assert!(info::prog_map_ids(p.as_fd()).unwrap().is_empty());
}
