//! Load each fixture into the running kernel and check the result through the kernel itself:
//! BPF_PROG_TEST_RUN to run programs, MAP_LOOKUP_ELEM to read what they wrote, OBJ_GET_INFO_BY_FD
//! for names, types and bound maps. Expected values come from the fixture sources (tests/bpf/*.c).
//!
//! Every test holds `serial()`: fd counts are process-wide, so no two loads overlap.

use std::os::fd::BorrowedFd;

use bpfload::{LoadError, Loaded, Loader, Object};
use bpfload_syscall::{info, map, prog, uapi};
use bpfload_tests::{
    fixture, open_fd_count, possible_cpus, require_root, serial, FdSnapshot, PinDir,
};

/// A packet long enough for any program type's test run (an Ethernet header and then some).
const PACKET: [u8; 64] = [0u8; 64];

fn open(name: &str) -> Object {
    Object::open_file(fixture(name)).unwrap_or_else(|e| panic!("open {name}: {e}"))
}

fn load(name: &str) -> Loaded {
    Loader::new()
        .load(&open(name))
        .unwrap_or_else(|e| panic!("load {name}: {e}"))
}

fn prog_fd<'a>(l: &'a Loaded, name: &str) -> BorrowedFd<'a> {
    l.program(name)
        .unwrap_or_else(|| panic!("program {name} not loaded"))
        .fd()
}

fn map_fd<'a>(l: &'a Loaded, name: &str) -> BorrowedFd<'a> {
    l.map(name)
        .unwrap_or_else(|| panic!("map {name} not created"))
        .fd()
}

fn run(fd: BorrowedFd<'_>) -> u32 {
    prog::test_run(fd, &PACKET, 1)
        .expect("BPF_PROG_TEST_RUN")
        .retval
}

fn lookup_u64(fd: BorrowedFd<'_>, key: u32) -> Option<u64> {
    let mut v = [0u8; 8];
    match map::lookup_elem(fd, &key.to_ne_bytes(), &mut v, 0) {
        Ok(()) => Some(u64::from_ne_bytes(v)),
        Err(e) if e.errno().raw() == libc::ENOENT => None,
        Err(e) => panic!("lookup {key}: {e}"),
    }
}

fn lookup_u32(fd: BorrowedFd<'_>, key: u32) -> Option<u32> {
    let mut v = [0u8; 4];
    match map::lookup_elem(fd, &key.to_ne_bytes(), &mut v, 0) {
        Ok(()) => Some(u32::from_ne_bytes(v)),
        Err(e) if e.errno().raw() == libc::ENOENT => None,
        Err(e) => panic!("lookup {key}: {e}"),
    }
}

fn c_name(raw: &[std::ffi::c_char]) -> String {
    raw.iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8 as char)
        .collect()
}

#[test]
fn global_data_reaches_the_program() {
    let _g = serial();
    if !require_root("global_data_reaches_the_program") {
        return;
    }
    let l = load("globals");
    let p = prog_fd(&l, "read_globals");
    let results = map_fd(&l, "results");
    run(p);
    // Values from globals.bpf.c's initialisers.
    assert_eq!(
        lookup_u64(results, 0),
        Some(0xC0FFEE),
        "cfg_magic (.rodata)"
    );
    assert_eq!(
        lookup_u64(results, 1),
        Some(3 * 100),
        "cfg_mult * data_counter"
    );
    assert_eq!(
        lookup_u64(results, 2),
        Some(1),
        "bss_counter after one run (.bss)"
    );
    assert_eq!(
        lookup_u64(results, 3),
        Some(7),
        "custom_data (.data.custom)"
    );
    assert_eq!(
        lookup_u64(results, 4),
        Some(9),
        "custom_ro (.rodata.custom)"
    );
    run(p);
    assert_eq!(
        lookup_u64(results, 1),
        Some(3 * 101),
        "data_counter is writable state"
    );
    assert_eq!(lookup_u64(results, 2), Some(2));
    // The program's writes to .data are visible from user space through the map.
    assert_eq!(lookup_u64(map_fd(&l, ".data"), 0), Some(102));
}

#[test]
fn const_volatile_config_is_set_before_load() {
    let _g = serial();
    if !require_root("const_volatile_config_is_set_before_load") {
        return;
    }
    let l = Loader::new()
        .set_global("cfg_magic", &0x1234u32.to_ne_bytes())
        .set_global("cfg_mult", &5u64.to_ne_bytes())
        .set_global("custom_ro", &11u32.to_ne_bytes())
        .load(&open("globals"))
        .expect("load");
    run(prog_fd(&l, "read_globals"));
    let results = map_fd(&l, "results");
    assert_eq!(lookup_u64(results, 0), Some(0x1234));
    assert_eq!(lookup_u64(results, 1), Some(5 * 100));
    assert_eq!(lookup_u64(results, 4), Some(11));
}

#[test]
fn rodata_is_frozen_read_only_and_bound() {
    let _g = serial();
    if !require_root("rodata_is_frozen_read_only_and_bound") {
        return;
    }
    let l = load("globals");
    for name in [".rodata", ".rodata.custom"] {
        let fd = map_fd(&l, name);
        let mi = info::map_info(fd).expect("map info");
        assert_ne!(
            mi.map_flags & uapi::BPF_F_RDONLY_PROG,
            0,
            "{name}: RDONLY_PROG"
        );
        let size = mi.value_size as usize;
        let err = map::update_elem(fd, &0u32.to_ne_bytes(), &vec![0u8; size], 0)
            .expect_err("update of a frozen map must fail");
        assert_eq!(err.errno().raw(), libc::EPERM, "{name}: frozen");
        // A writable data map, for contrast, accepts the update.
    }
    let data = map_fd(&l, ".data");
    map::update_elem(data, &0u32.to_ne_bytes(), &5u64.to_ne_bytes(), 0).expect(".data is writable");
    // .rodata is bound to the program (PROG_BIND_MAP or through its use).
    let ids = info::prog_map_ids(prog_fd(&l, "read_globals")).expect("map ids");
    let rodata_id = info::map_info(map_fd(&l, ".rodata")).unwrap().id;
    assert!(
        ids.contains(&rodata_id),
        "{ids:?} lacks .rodata {rodata_id}"
    );
}

#[test]
fn kernel_info_matches_the_object() {
    let _g = serial();
    if !require_root("kernel_info_matches_the_object") {
        return;
    }
    for name in ["globals", "maps", "calls", "mapinmap", "tailcall", "demo"] {
        let object = open(name);
        let pins = PinDir::new(&format!("info-{name}")).expect("bpffs");
        let l = Loader::new()
            .pin_root(pins.path())
            .load(&object)
            .unwrap_or_else(|e| panic!("load {name}: {e}"));
        for p in object.programs().filter(|p| p.autoload()) {
            let pi = info::prog_info(prog_fd(&l, p.name())).expect("prog info");
            assert_eq!(Some(pi.type_), p.prog_type(), "{name}/{}: type", p.name());
            let expect: String = p.name().chars().take(15).collect();
            assert_eq!(c_name(&pi.name), expect, "{name}/{}: name", p.name());
            assert!(pi.nr_map_ids as usize <= object.maps().len());
        }
        for m in object.maps() {
            let mi = info::map_info(map_fd(&l, m.name())).expect("map info");
            let d = m.def();
            assert_eq!(mi.type_, d.map_type, "{name}/{}: type", m.name());
            assert_eq!(mi.key_size, d.key_size, "{name}/{}: key", m.name());
            assert_eq!(mi.value_size, d.value_size, "{name}/{}: value", m.name());
            if d.max_entries != 0 {
                assert_eq!(mi.max_entries, d.max_entries, "{name}/{}", m.name());
            }
            let expect: String = m.name().chars().take(15).collect();
            assert_eq!(c_name(&mi.name), expect, "{name}/{}: name", m.name());
        }
    }
}

#[test]
fn bpf_to_bpf_calls_and_bpf_loop_callback_run() {
    let _g = serial();
    if !require_root("bpf_to_bpf_calls_and_bpf_loop_callback_run") {
        return;
    }
    let l = load("calls");
    let results = map_fd(&l, "results");
    run(prog_fd(&l, "compute"));
    assert_eq!(lookup_u64(results, 0), Some(42), "global_add(20, 22)");
    assert_eq!(lookup_u64(results, 1), Some(42), "static_mul(6, 7)");
    assert_eq!(lookup_u64(results, 2), Some(55), "bpf_loop sum 1..=10");
    run(prog_fd(&l, "compute_again"));
    assert_eq!(lookup_u64(results, 3), Some(15), "static_mul(3, 5)");
}

#[test]
fn prog_array_slots_are_filled() {
    let _g = serial();
    if !require_root("prog_array_slots_are_filled") {
        return;
    }
    let l = load("tailcall");
    let table = map_fd(&l, "jmp_table");
    let id = |p: &str| info::prog_info(prog_fd(&l, p)).unwrap().id;
    // A prog array lookup from user space returns the program id.
    assert_eq!(lookup_u32(table, 0), Some(id("tail_0")));
    assert_eq!(lookup_u32(table, 1), Some(id("tail_1")));
    assert_eq!(lookup_u32(table, 2), None, "slot 2 has no initialiser");
    // entry tail-calls slot 0: tail_0 returns 42; an empty slot would return 1.
    assert_eq!(run(prog_fd(&l, "entry")), 42);
}

#[test]
fn map_in_map_slots_are_filled() {
    let _g = serial();
    if !require_root("map_in_map_slots_are_filled") {
        return;
    }
    let l = load("mapinmap");
    let id = |m: &str| info::map_info(map_fd(&l, m)).unwrap().id;
    // A map-in-map lookup from user space returns the inner map id.
    assert_eq!(lookup_u32(map_fd(&l, "outer_arr"), 0), Some(id("inner_a")));
    assert_eq!(lookup_u32(map_fd(&l, "outer_arr"), 1), None);
    assert_eq!(lookup_u32(map_fd(&l, "outer_hash"), 5), Some(id("inner_b")));
    // And the program reaches the inner maps through the slots.
    map::update_elem(
        map_fd(&l, "inner_a"),
        &0u32.to_ne_bytes(),
        &77u64.to_ne_bytes(),
        0,
    )
    .unwrap();
    map::update_elem(
        map_fd(&l, "inner_b"),
        &0u32.to_ne_bytes(),
        &88u64.to_ne_bytes(),
        0,
    )
    .unwrap();
    run(prog_fd(&l, "lookup_inner"));
    let results = map_fd(&l, "results");
    assert_eq!(lookup_u64(results, 0), Some(77));
    assert_eq!(lookup_u64(results, 1), Some(88));
}

#[test]
fn map_kinds_are_created_by_libbpf_rules() {
    let _g = serial();
    if !require_root("map_kinds_are_created_by_libbpf_rules") {
        return;
    }
    let pins = PinDir::new("kinds").expect("bpffs");
    let l = Loader::new()
        .pin_root(pins.path())
        .load(&open("maps"))
        .expect("load maps");
    let perf = info::map_info(map_fd(&l, "perf_events")).unwrap();
    assert_eq!(
        Some(perf.max_entries),
        possible_cpus(),
        "PERF_EVENT_ARRAY with max_entries 0 gets the possible CPUs"
    );
    let rb = info::map_info(map_fd(&l, "events")).unwrap();
    assert_eq!(rb.type_, uapi::bpf_map_type::BPF_MAP_TYPE_RINGBUF as u32);
    assert_eq!(rb.max_entries, 4096);
    // The xdp program runs, counts into the hash map and the pinned array.
    assert_eq!(run(prog_fd(&l, "count_packets")), 2 /* XDP_PASS */);
    assert_eq!(lookup_u64(map_fd(&l, "counts"), 1), Some(1));
    assert_eq!(lookup_u64(map_fd(&l, "pinned_stats"), 0), Some(1));
    for (p, t) in [
        ("on_getpid", uapi::bpf_prog_type::BPF_PROG_TYPE_TRACEPOINT),
        ("on_nanosleep", uapi::bpf_prog_type::BPF_PROG_TYPE_KPROBE),
        ("count_packets", uapi::bpf_prog_type::BPF_PROG_TYPE_XDP),
    ] {
        assert_eq!(
            info::prog_info(prog_fd(&l, p)).unwrap().type_,
            t as u32,
            "{p}"
        );
    }
}

#[test]
fn pinned_by_name_map_is_reused() {
    let _g = serial();
    if !require_root("pinned_by_name_map_is_reused") {
        return;
    }
    let pins = PinDir::new("reuse").expect("bpffs");
    let object = open("maps");
    let first = Loader::new()
        .pin_root(pins.path())
        .load(&object)
        .expect("first load");
    let pin = pins.path().join("pinned_stats");
    assert!(pin.exists(), "{} not pinned", pin.display());
    let id1 = info::map_info(map_fd(&first, "pinned_stats")).unwrap().id;
    map::update_elem(
        map_fd(&first, "pinned_stats"),
        &3u32.to_ne_bytes(),
        &99u64.to_ne_bytes(),
        0,
    )
    .unwrap();
    drop(first);
    // The pin keeps the map alive; the second load reuses it, value and all.
    let second = Loader::new()
        .pin_root(pins.path())
        .load(&object)
        .expect("second load");
    let fd = map_fd(&second, "pinned_stats");
    assert_eq!(info::map_info(fd).unwrap().id, id1, "same map");
    assert_eq!(lookup_u64(fd, 3), Some(99));
    // The program of the second load uses the reused map.
    run(prog_fd(&second, "count_packets"));
    assert_eq!(lookup_u64(fd, 0), Some(1));
}

#[test]
fn incompatible_pinned_map_is_refused() {
    let _g = serial();
    if !require_root("incompatible_pinned_map_is_refused") {
        return;
    }
    let pins = PinDir::new("incompat").expect("bpffs");
    let object = open("maps");
    let first = Loader::new()
        .pin_root(pins.path())
        .set_max_entries("pinned_stats", 8)
        .load(&object)
        .expect("first load");
    drop(first);
    let before = FdSnapshot::take();
    let err = Loader::new()
        .pin_root(pins.path())
        .load(&object)
        .expect_err("max_entries 4 vs pinned 8 must be refused");
    assert!(err.to_string().contains("pinned_stats"), "{err}");
    before.assert_none_leaked("a refused pin");
}

#[test]
fn autoload_off_programs_are_not_loaded() {
    let _g = serial();
    if !require_root("autoload_off_programs_are_not_loaded") {
        return;
    }
    let object = open("autoload");
    assert!(!object.program("optional").unwrap().autoload());
    let l = Loader::new().load(&object).expect("load");
    assert_eq!(run(prog_fd(&l, "always")), 1);
    assert!(l.program("optional").is_none(), "SEC(\"?socket\") loaded");
    let l = Loader::new()
        .set_autoload("optional", true)
        .set_autoload("always", false)
        .load(&object)
        .expect("load");
    assert_eq!(run(prog_fd(&l, "optional")), 2);
    assert!(l.program("always").is_none());
}

#[test]
fn failed_load_names_the_program_shows_the_log_and_leaks_nothing() {
    let _g = serial();
    if !require_root("failed_load_names_the_program_shows_the_log_and_leaks_nothing") {
        return;
    }
    let object = open("bad_prog");
    let before = FdSnapshot::take();
    let err = Loader::new()
        .load(&object)
        .expect_err("bad program must fail");
    before.assert_none_leaked("a failed load");
    match &err {
        LoadError::Program {
            program, source, ..
        } => {
            assert_eq!(program, "bad");
            assert_eq!(source.errno().raw(), libc::EACCES, "{err}");
            // The verifier names the problem: a possibly-NULL map value dereference.
            assert!(
                source.log().contains("map_value_or_null"),
                "log: {}",
                source.log()
            );
        }
        other => panic!("expected a program error, got {other}"),
    }
    // Without the bad program, the same object loads.
    let l = Loader::new()
        .set_autoload("bad", false)
        .load(&object)
        .expect("good alone");
    run(prog_fd(&l, "good"));
}

#[test]
fn dropping_a_loaded_object_closes_every_fd() {
    let _g = serial();
    if !require_root("dropping_a_loaded_object_closes_every_fd") {
        return;
    }
    for name in ["globals", "calls", "mapinmap", "tailcall", "demo"] {
        let object = open(name);
        let before = FdSnapshot::take();
        let count = open_fd_count();
        let l = Loader::new().load(&object).expect("load");
        assert!(open_fd_count() > count, "{name}: a load holds fds");
        assert!(!before.leaked().is_empty(), "{name}: a load holds fds");
        drop(l);
        before.assert_none_leaked(format_args!("{name}: after drop"));
    }
}

/// The object's BTF as the kernel holds it: a hidden global subprogram is static (libbpf marks
/// it so the verifier checks it in its caller's context), a plain global subprogram and a
/// hidden *entry* program stay global (libbpf marks only subprograms).
#[test]
fn hidden_subprograms_become_static_entry_programs_do_not() {
    if !require_root("BTF linkage in the kernel") {
        return;
    }
    let _serial = serial();
    let l = load("btf_linkage");
    assert!(l.all_loaded());
    let fd = l.btf_fd().expect("the object's BTF is loaded");
    let bytes = info::btf_data(fd).unwrap();
    let btf = bpfload_btf::Btf::parse(&bytes).unwrap();
    for (func, want) in [
        ("hidden_sub", bpfload_btf::FuncLinkage::Static),
        ("global_sub", bpfload_btf::FuncLinkage::Global),
        ("hidden_main", bpfload_btf::FuncLinkage::Global),
    ] {
        let id = btf
            .find_by_name_kind(func, bpfload_btf::Kind::Func)
            .unwrap_or_else(|| panic!("FUNC {func}"));
        let Ok(bpfload_btf::Type::Func { linkage, .. }) = btf.type_by_id(id) else {
            panic!("{func} is not a FUNC")
        };
        assert_eq!(linkage, want, "{func}");
    }
}

/// A USDT program loads with `BPF_TRACE_UPROBE_MULTI` as its expected attach type where the
/// kernel has multi-uprobe links (libbpf's `libbpf_prepare_prog_load`), so it can be attached
/// through a uprobe_multi link. Found by review: the feature was always taken as missing, so
/// USDT programs loaded with 0. Read from the PROG_LOAD attr itself (the kernel does not report
/// the expected attach type back).
#[test]
fn usdt_programs_load_for_uprobe_multi_links() {
    use std::cell::RefCell;
    use std::rc::Rc;

    use bpfload_syscall::syscall::passthrough;
    use bpfload_syscall::uapi::{bpf_attach_type, bpf_cmd};
    use bpfload_syscall::with_syscall_override;

    if !require_root("USDT program load") {
        return;
    }
    let _g = serial();
    let multi = bpfload_probe::Probes::global().supported(bpfload_probe::Feature::UprobeMultiLink);
    let seen = Rc::new(RefCell::new(Vec::new()));
    let rec = seen.clone();
    let obj = open("usdt");
    let l = with_syscall_override(
        move |cmd, attr, size| {
            if cmd == bpf_cmd::BPF_PROG_LOAD {
                rec.borrow_mut().push(attr.prog_load().expected_attach_type);
            }
            // SAFETY: `attr` was filled by a bpfload_syscall wrapper, whose borrowed buffers
            // outlive this call.
            unsafe { passthrough(cmd, attr, size) }
        },
        || Loader::new().token_path("").load(&obj),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(l.all_loaded());
    let want = if multi {
        bpf_attach_type::BPF_TRACE_UPROBE_MULTI as u32
    } else {
        0
    };
    // The program's own load is the last PROG_LOAD (probes may come first).
    assert_eq!(
        seen.borrow().last(),
        Some(&want),
        "multi-uprobe links: {multi}"
    );
}
