//! End-to-end checks through the kernel: values through MAP_LOOKUP_ELEM, the `.rodata` freeze,
//! program behaviour through BPF_PROG_TEST_RUN, static slots, pinning, and no fd leaks.

use std::os::fd::AsFd;

use bpfload_syscall::{fd::count_open_fds, info, map, prog, Errno};

use super::fixtures::{fixture, require_root};
use super::KERNEL_LOCK;
use crate::{LoadError, Loader, Object};

fn lookup_u64(fd: std::os::fd::BorrowedFd<'_>, key: u32) -> Option<u64> {
    let mut v = [0u8; 8];
    map::lookup_elem(fd, &key.to_ne_bytes(), &mut v, 0)
        .ok()
        .map(|_| u64::from_ne_bytes(v))
}

/// A 64-byte packet, enough for socket filters and xdp.
const PACKET: [u8; 64] = [0u8; 64];

#[test]
fn globals_initial_values_set_global_and_rodata_freeze() {
    if !require_root("globals") {
        return;
    }
    let _g = KERNEL_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let obj = Object::open_file(fixture("globals.bpf.o")).unwrap();
    let loaded = Loader::new()
        .set_global("cfg_magic", &0x1234_5678u32.to_ne_bytes())
        .load(&obj)
        .unwrap();
    let p = loaded.program("read_globals").unwrap();
    for _ in 0..2 {
        prog::test_run(p.fd(), &PACKET, 1).unwrap();
    }
    let res = loaded.map("results").unwrap().fd();
    assert_eq!(
        lookup_u64(res, 0),
        Some(0x1234_5678),
        "set_global reached .rodata"
    );
    assert_eq!(
        lookup_u64(res, 1),
        Some(3 * 101),
        ".data initial value 100, incremented once before the 2nd run"
    );
    assert_eq!(lookup_u64(res, 2), Some(2), ".bss starts at zero");
    assert_eq!(lookup_u64(res, 3), Some(7), ".data.custom");
    assert_eq!(lookup_u64(res, 4), Some(9), ".rodata.custom");

    // .rodata is frozen: the syscall side cannot write it any more.
    let ro = loaded.map(".rodata").unwrap();
    assert_eq!(ro.name(), "globals.rodata");
    let mut img = vec![0u8; ro.def().value_size as usize];
    map::lookup_elem(ro.fd(), &0u32.to_ne_bytes(), &mut img, 0).unwrap();
    assert_eq!(&img[..4], &0x1234_5678u32.to_ne_bytes());
    let err = map::update_elem(ro.fd(), &0u32.to_ne_bytes(), &img, 0).unwrap_err();
    assert_eq!(err.errno(), Errno::EPERM);
    // .data is not frozen.
    let d = loaded.map(".data").unwrap();
    let mut dimg = vec![0u8; d.def().value_size as usize];
    map::lookup_elem(d.fd(), &0u32.to_ne_bytes(), &mut dimg, 0).unwrap();
    map::update_elem(d.fd(), &0u32.to_ne_bytes(), &dimg, 0).unwrap();

    // Program and map info as the kernel reports it.
    let pi = info::prog_info(p.fd()).unwrap();
    assert_eq!(
        pi.type_,
        aya_obj::generated::bpf_prog_type::BPF_PROG_TYPE_SOCKET_FILTER as u32
    );
    let name: Vec<u8> = pi
        .name
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    assert_eq!(name, b"read_globals");
    let mi = info::map_info(ro.fd()).unwrap();
    assert_eq!(mi.map_flags & (1 << 7), 1 << 7, "RDONLY_PROG on .rodata");
    assert!(
        mi.btf_id != 0 && mi.btf_value_type_id != 0,
        "created with BTF value type"
    );
    assert!(pi.nr_map_ids >= 1);
}

#[test]
fn wrong_global_size_and_unknown_names_are_option_errors() {
    let obj = Object::open_file(fixture("globals.bpf.o")).unwrap();
    let e = Loader::new()
        .set_global("cfg_magic", &[1, 2])
        .load(&obj)
        .unwrap_err();
    assert!(
        matches!(
            e,
            LoadError::Option {
                option: "set_global",
                ..
            }
        ),
        "{e}"
    );
    let e = Loader::new()
        .set_autoload("nope", false)
        .load(&obj)
        .unwrap_err();
    assert!(e.to_string().contains("nope"), "{e}");
}

#[test]
fn prog_array_static_slots_are_filled() {
    if !require_root("prog array") {
        return;
    }
    let _g = KERNEL_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let obj = Object::open_file(fixture("tailcall.bpf.o")).unwrap();
    let loaded = Loader::new().load(&obj).unwrap();
    let r = prog::test_run(loaded.program("entry").unwrap().fd(), &PACKET, 1).unwrap();
    assert_eq!(r.retval, 42, "entry tail-called tail_0 through slot 0");
    // Loading one program alone leaves slot targets unloaded: libbpf fails with EBADF there too.
    let e = Loader::new()
        .only_programs(["entry"])
        .load(&obj)
        .unwrap_err();
    assert!(matches!(e, LoadError::Slot { .. }), "{e}");
}

#[test]
fn map_in_map_slots_and_perf_event_array_size() {
    if !require_root("map-in-map") {
        return;
    }
    let _g = KERNEL_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let obj = Object::open_file(fixture("mapinmap.bpf.o")).unwrap();
    let loaded = Loader::new().load(&obj).unwrap();
    let outer = loaded.map("outer_arr").unwrap();
    let mut id = [0u8; 4];
    map::lookup_elem(outer.fd(), &0u32.to_ne_bytes(), &mut id, 0).unwrap();
    let inner_a = info::map_info(loaded.map("inner_a").unwrap().fd()).unwrap();
    assert_eq!(u32::from_ne_bytes(id), inner_a.id, "slot 0 holds inner_a");

    let obj = Object::open_file(fixture("maps.bpf.o")).unwrap();
    let root = format!("/sys/fs/bpf/bpfload-loader-test-{}", std::process::id());
    let loaded = Loader::new().pin_root(&root).load(&obj).unwrap();
    let perf = loaded.map("perf_events").unwrap();
    assert_eq!(
        perf.def().max_entries,
        bpfload_syscall::util::possible_cpus().unwrap()
    );
    drop(loaded);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn pinned_map_is_reused_and_incompatible_pin_is_refused() {
    if !require_root("pinning") {
        return;
    }
    let _g = KERNEL_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let root = format!("/sys/fs/bpf/bpfload-pin-test-{}", std::process::id());
    let obj = Object::open_file(fixture("maps.bpf.o")).unwrap();
    let first = Loader::new().pin_root(&root).load(&obj).unwrap();
    let m1 = first.map("pinned_stats").unwrap();
    assert!(!m1.reused());
    let pin = m1.pin_path().unwrap().to_path_buf();
    assert!(pin.exists());
    let id1 = info::map_info(m1.fd()).unwrap().id;
    drop(first);
    assert!(pin.exists(), "pins outlive the loaded object");

    let second = Loader::new().pin_root(&root).load(&obj).unwrap();
    let m2 = second.map("pinned_stats").unwrap();
    assert!(m2.reused());
    assert_eq!(info::map_info(m2.fd()).unwrap().id, id1, "same kernel map");
    drop(second);

    // Different max_entries: the pinned map is incompatible, and the load fails naming it.
    let e = Loader::new()
        .pin_root(&root)
        .set_max_entries("pinned_stats", 7)
        .load(&obj)
        .unwrap_err();
    assert!(matches!(e, LoadError::Pin { .. }), "{e}");
    assert!(e.to_string().contains("pinned_stats"), "{e}");
    let _ = std::fs::remove_dir_all(&root);

    // A pin root outside bpffs is refused with a message that says so.
    let tmp = std::env::temp_dir().join(format!("bpfload-not-bpffs-{}", std::process::id()));
    let e = Loader::new().pin_root(&tmp).load(&obj).unwrap_err();
    assert!(
        matches!(e, LoadError::Pin { .. }) && e.to_string().contains("not on a BPF filesystem"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Counting `/proc/self/fd` is only meaningful with no other test running, so the check runs in
/// a child process of this test binary that runs this one test alone.
#[test]
fn failed_loads_release_everything() {
    if !require_root("fd leaks") {
        return;
    }
    const CHILD: &str = "BPFLOAD_FD_LEAK_CHILD";
    if std::env::var_os(CHILD).is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "tests::kernel::failed_loads_release_everything",
                "--exact",
                "--test-threads=1",
                "--nocapture",
            ])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && text.contains("1 passed"),
            "child run failed:\n{text}"
        );
        return;
    }
    let bad = Object::open_file(fixture("bad_prog.bpf.o")).unwrap();
    let calls = Object::open_file(fixture("calls.bpf.o")).unwrap();
    // Warm up process-wide caches (kernel version, vmlinux, page size) before counting.
    let _ = Loader::new().keep_going(true).load(&bad);
    let before = count_open_fds().unwrap();
    for _ in 0..3 {
        // Fails at the program step, after BTF and maps were created.
        let e = Loader::new().load(&bad).unwrap_err();
        match &e {
            LoadError::Program {
                program, source, ..
            } => {
                assert_eq!(program, "bad");
                assert_eq!(source.errno(), Errno::EACCES);
                assert!(
                    e.to_string().contains("invalid mem access"),
                    "log tail in the error: {e}"
                );
            }
            other => panic!("unexpected {other}"),
        }
        // Fails at map creation (max_entries 0 is refused by the kernel).
        let e = Loader::new()
            .set_max_entries("results", 0)
            .load(&calls)
            .unwrap_err();
        assert!(matches!(e, LoadError::Map { step: "create", .. }), "{e}");
        // Succeeds, then is dropped.
        drop(Loader::new().load(&calls).unwrap());
    }
    assert_eq!(count_open_fds().unwrap(), before, "no fd leaked");
}

#[test]
fn keep_going_reports_each_program() {
    if !require_root("keep_going") {
        return;
    }
    let _g = KERNEL_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let bad = Object::open_file(fixture("bad_prog.bpf.o")).unwrap();
    let l = Loader::new().keep_going(true).load(&bad).unwrap();
    assert!(l.program("good").unwrap().is_loaded());
    let e = l.program("bad").unwrap().result().unwrap_err();
    assert_eq!(e.errno(), Errno::EACCES);
    assert!(!l.all_loaded());
    assert!(l.program("bad").unwrap().insn_count() > 0);
    // The good program is usable.
    prog::test_run(l.program("good").unwrap().fd().as_fd(), &PACKET, 1).unwrap();
}

#[test]
fn autoload_marker_and_only_programs() {
    if !require_root("autoload") {
        return;
    }
    let _g = KERNEL_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let obj = Object::open_file(fixture("autoload.bpf.o")).unwrap();
    assert!(!obj.program("optional").unwrap().autoload());
    let l = Loader::new().load(&obj).unwrap();
    assert!(l.program("always").is_some() && l.program("optional").is_none());
    let l = Loader::new()
        .set_autoload("optional", true)
        .load(&obj)
        .unwrap();
    assert!(l.program("optional").unwrap().is_loaded());
    let l = Loader::new()
        .only_programs(["optional"])
        .load(&obj)
        .unwrap();
    assert_eq!(l.programs().len(), 1);
}

#[test]
fn big_endian_opens_but_is_refused_at_load() {
    let Some(dir) = crate::object::corpus_tests::corpus_dir() else {
        return;
    };
    let obj = Object::open_file(dir.join("cilium-ebpf/testdata/variables-eb.elf")).unwrap();
    assert_eq!(obj.endianness(), crate::Endianness::Big);
    assert!(
        obj.programs().count() > 0,
        "big-endian programs are inspectable"
    );
    let e = Loader::new().load(&obj).unwrap_err();
    assert!(e.to_string().contains("big-endian"), "{e}");
}

#[test]
fn unknown_section_fails_at_load_not_open() {
    if !require_root("unknown section") {
        return;
    }
    let _g = KERNEL_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let Some(dir) = crate::object::corpus_tests::corpus_dir() else {
        return;
    };
    let obj = Object::open_file(dir.join("cilium-ebpf/testdata/btf_map_init-el.elf")).unwrap();
    let p = obj.program("tail_main").unwrap();
    assert_eq!(p.prog_type(), None);
    let e = Loader::new()
        .only_programs(["tail_main"])
        .load(&obj)
        .unwrap_err();
    match e {
        LoadError::Program { source, .. } => {
            assert_eq!(source.errno(), Errno::EINVAL);
            assert!(source.to_string().contains("socket/main"));
        }
        other => panic!("{other}"),
    }
}

/// What libbpf refuses at open but aya and cilium/ebpf accept: legacy `maps` definitions (these
/// objects load here), and static programs (they open; the cilium loader objects that have them
/// also need cilium's `MY_CONST` extern, which fails as in libbpf).
#[test]
fn legacy_maps_load_and_static_programs_open() {
    if !require_root("legacy maps") {
        return;
    }
    let _g = KERNEL_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let Some(dir) = crate::object::corpus_tests::corpus_dir() else {
        return;
    };
    let dir = dir.join("cilium-ebpf/testdata");
    for (name, prog) in [
        ("subprog_reloc-el.elf", "fp_relocation"),
        ("manyprogs-el.elf", "kprobe_execve0"),
    ] {
        let obj = Object::open_file(dir.join(name)).unwrap();
        assert!(
            obj.maps()
                .iter()
                .any(|m| m.kind() == crate::MapKind::Legacy),
            "{name}: legacy maps"
        );
        let l = Loader::new()
            .load(&obj)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(l.program(prog).unwrap().is_loaded(), "{name}: {prog}");
        assert!(l
            .maps()
            .iter()
            .all(|m| m.kind() == crate::MapKind::Legacy || m.kind().is_internal()));
    }
    let obj = Object::open_file(dir.join("loader-clang-22-el.elf")).unwrap();
    let p = obj.programs().find(|p| p.name() == "static_fn").unwrap();
    assert!(p.is_static());
    let e = Loader::new().load(&obj).unwrap_err();
    assert!(e.to_string().contains("MY_CONST"), "{e}");
}

/// `__exception_cb(fn)`: the callback is appended to the tagged program (last, after the
/// subprograms it calls), and to no other program. 10 and 7 instructions are what libbpf 1.7
/// passes to BPF_PROG_LOAD for this object (libbpf-dump).
#[test]
fn exception_callback_is_appended() {
    if !require_root("exception callback") {
        return;
    }
    let _g = KERNEL_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let path =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/tests/bpf/exc_cb.bpf.o");
    let obj = Object::open_file(path).unwrap();
    let l = Loader::new().load(&obj).unwrap();
    assert_eq!(l.program("with_cb").unwrap().insn_count(), 10);
    assert_eq!(l.program("without_cb").unwrap().insn_count(), 7);
    let cb = obj
        .subprograms()
        .find(|p| p.name() == "exception_cb1")
        .unwrap();
    let with = l.program_insns("with_cb").unwrap();
    assert_eq!(
        &with[with.len() - cb.insn_count()..],
        cb.insns(),
        "callback appended last"
    );
}

/// bpf_loop callbacks (`tests/bpf/weak_cb.bpf.c`). A weak, hidden function's address is an
/// ld_imm64 relocated against its STB_WEAK symbol, a subprogram for libbpf 1.7, which appends it
/// and passes 16 instructions to BPF_PROG_LOAD (libbpf-dump); the loop sums 0 + 1 + 2. The static
/// callback beside it (17 instructions, 2 * (0 + 1 + 2)) is the control.
#[test]
fn weak_hidden_callback_is_a_subprogram() {
    if !require_root("weak callback") {
        return;
    }
    let _g = KERNEL_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let obj = Object::open_file(fixture("weak_cb.bpf.o")).unwrap();
    let l = Loader::new().load(&obj).unwrap();
    for (prog, cb, count, retval) in [
        ("uses_weak_cb", "cb_weak", 16, 3),
        ("uses_static_cb", "cb_static", 17, 6),
    ] {
        let cb = obj.subprograms().find(|p| p.name() == cb).unwrap();
        let p = l.program(prog).unwrap();
        assert_eq!(p.insn_count(), count, "{prog}");
        let insns = l.program_insns(prog).unwrap();
        assert_eq!(
            &insns[insns.len() - cb.insn_count()..],
            cb.insns(),
            "{prog}: callback appended"
        );
        let r = prog::test_run(p.fd(), &PACKET, 1).unwrap();
        assert_eq!(r.retval, retval, "{prog}");
    }
}

/// A static function outside `.text` is a program of its own here, and is appended to the
/// programs of its section that call it (`tests/bpf/static_core.bpf.c`). Its CO-RE relocation
/// (the `tgid` offset, local 4) must be in every copy, as libbpf relocates a function's one copy
/// before appending it: `caller`'s appended `helper` equals `helper` as loaded.
#[test]
fn appended_static_program_keeps_its_core_relocation() {
    if !require_root("static program CO-RE") {
        return;
    }
    let _g = KERNEL_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let obj = Object::open_file(fixture("static_core.bpf.o")).unwrap();
    let helper = obj.programs().find(|p| p.name() == "helper").unwrap();
    assert!(helper.is_static());
    let l = Loader::new().load(&obj).unwrap();
    let own = l.program_insns("helper").unwrap();
    // helper's insn 3 is `r1 = 4`, the field offset CO-RE rewrites (tgid is not at 4 in the
    // kernel's task_struct).
    assert_eq!(helper.insns()[3].imm, 4);
    assert_ne!(own[3].imm, 4, "helper's own code is CO-RE-relocated");
    let caller = l.program_insns("caller").unwrap();
    assert_eq!(caller.len(), 4 + own.len());
    assert_eq!(
        &caller[4..],
        own,
        "the appended copy carries the same patches"
    );
    // With `helper`'s own autoload off, its code is still loaded in `caller`: its CO-RE records
    // are applied all the same (libbpf skips only functions that are not loaded at all).
    for (what, loader) in [
        (
            "set_autoload(helper, false)",
            Loader::new().set_autoload("helper", false),
        ),
        (
            "only_programs([caller])",
            Loader::new().only_programs(["caller"]),
        ),
    ] {
        let l = loader.load(&obj).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            !l.program("helper").is_some_and(|p| p.is_loaded()),
            "{what}"
        );
        let caller = l.program_insns("caller").unwrap();
        assert_eq!(&caller[4..], own, "{what}: the appended copy is relocated");
    }
}
