//! Externs (kconfig, ksyms, kfuncs), attach-BTF targets and struct_ops against the running
//! kernel. Expected values come from the kernel itself: /proc/config.gz, /proc/kallsyms, uname
//! and a separate lookup in /sys/kernel/btf/vmlinux.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use bpfload::attach::{self, AttachBtf};
use bpfload::externs::{
    self, BtfSource, ExternTable, ExternValue, KernelBtfs, Resolution, ResolveInputs,
};
use bpfload::{Insn, Object};
use bpfload_btf::{Btf, Kind};
use bpfload_syscall::uapi::{bpf_insn, bpf_map_type};
use bpfload_syscall::{map, prog, Errno, LogOptions, MapCreateAttr, ProgLoadAttr};
use bpfload_tests::{fixture, require_root};

fn open(name: &str) -> Object {
    Object::open_file(fixture(name)).unwrap_or_else(|e| panic!("open {name}: {e}"))
}

fn to_uapi(insns: &[Insn]) -> Vec<bpf_insn> {
    insns
        .iter()
        .map(|i| {
            let mut b = bpf_insn {
                code: i.code,
                _bitfield_align_1: [],
                _bitfield_1: Default::default(),
                off: i.off,
                imm: i.imm,
            };
            b.set_dst_reg(i.dst());
            b.set_src_reg(i.src());
            b
        })
        .collect()
}

fn inputs() -> ResolveInputs<'static> {
    let probes = bpfload_probe::Probes::global();
    ResolveInputs {
        kconfig: None,
        kernel_version: bpfload_syscall::util::kernel_version().unwrap_or(0),
        has_bpf_cookie: probes.supported(bpfload_probe::Feature::BpfCookie),
        has_syscall_wrapper: probes.supported(bpfload_probe::Feature::SyscallWrapper),
    }
}

struct Prepared {
    obj: Object,
    table: ExternTable,
    res: Resolution,
}

fn prepare(
    obj: Object,
    kernel: &KernelBtfs,
    inputs: &ResolveInputs<'_>,
) -> Result<Prepared, externs::ExternError> {
    let btf = obj
        .btf()
        .map(|b| Btf::parse(b).expect("fixture BTF parses"));
    let used = |i: usize| {
        obj.programs().chain(obj.subprograms()).any(|p| p.relocations().iter().any(|r| matches!(r.kind, bpfload::RelocKind::ExternLd64 { ext } | bpfload::RelocKind::ExternCall { ext } if ext == i)))
    };
    let table = externs::classify(obj.externs(), btf.as_ref(), used)?;
    let res = externs::resolve(&table, btf.as_ref(), inputs, Some(kernel))?;
    Ok(Prepared { obj, table, res })
}

/// The `.kconfig` map as libbpf creates it: ARRAY, one value, read-only for programs, frozen.
fn kconfig_map(p: &Prepared) -> Option<OwnedFd> {
    if p.table.kconfig_size == 0 {
        return None;
    }
    let fd = map::create(&MapCreateAttr {
        map_type: bpf_map_type::BPF_MAP_TYPE_ARRAY as u32,
        key_size: 4,
        value_size: p.table.kconfig_size,
        max_entries: 1,
        map_flags: 1 << 7, // BPF_F_RDONLY_PROG
        name: Some("ext.kconfig"),
        ..Default::default()
    })
    .expect("create .kconfig map");
    map::update_elem(fd.as_fd(), &0u32.to_ne_bytes(), &p.res.kconfig_image, 0)
        .expect("fill .kconfig");
    map::freeze(fd.as_fd()).expect("freeze .kconfig");
    Some(fd)
}

/// Relocates the externs of one program (the fixtures have no subprograms and no other maps)
/// and returns its instructions.
fn relocated(
    p: &Prepared,
    prog_name: &str,
    kcfg: Option<&OwnedFd>,
    kernel: &KernelBtfs,
) -> Vec<Insn> {
    let pr = p
        .obj
        .program(prog_name)
        .unwrap_or_else(|| panic!("no program {prog_name}"));
    let mut insns = pr.insns().to_vec();
    let relos = pr.relocations().iter().map(|r| (r.insn_idx, r));
    externs::relocate(
        &mut insns,
        relos,
        &p.table,
        &p.res,
        kcfg.map(|f| f.as_raw_fd()),
        Some(kernel),
    )
    .expect("relocate externs");
    insns
}

fn load(
    p: &Prepared,
    prog_name: &str,
    insns: &[Insn],
    attach: Option<AttachBtf>,
    kernel: &KernelBtfs,
    fd_array: &[i32],
) -> Result<OwnedFd, bpfload_syscall::ProgLoadError> {
    let pr = p.obj.program(prog_name).unwrap();
    let raw = to_uapi(insns);
    let license = CString::new(p.obj.license()).unwrap();
    let attr = ProgLoadAttr {
        prog_type: pr.prog_type().expect("known section"),
        expected_attach_type: pr.expected_attach_type(),
        insns: &raw,
        license: &license,
        name: Some(prog_name),
        attach_btf_id: attach.map_or(0, |a| a.btf_id),
        attach_btf_obj_fd: attach.and_then(|a| a.src).and_then(|s| kernel.fd(s)),
        fd_array: (!fd_array.is_empty()).then_some(fd_array),
        ..Default::default()
    };
    prog::load(&attr, &LogOptions::default())
}

fn test_run(fd: &OwnedFd) -> u32 {
    // A minimal Ethernet frame for socket filters.
    let pkt = [0u8; 64];
    prog::test_run(fd.as_fd(), &pkt, 1)
        .expect("test_run")
        .retval
}

fn system_kconfig() -> String {
    externs::kconfig::read_system_kconfig().expect("system kconfig")
}

fn kconfig_value<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
}

#[test]
fn kconfig_values_match_the_kernels_kconfig() {
    if !require_root("kconfig externs load") {
        return;
    }
    let kernel = KernelBtfs::new().unwrap();
    let inputs = inputs();
    let p = prepare(open("ext_kconfig"), &kernel, &inputs).unwrap();
    let kcfg = kconfig_map(&p);
    let text = system_kconfig();
    let tri = |v: Option<&str>| match v {
        Some("y") => 1,
        Some("m") => 2,
        _ => 0,
    };
    let hz: u32 = kconfig_value(&text, "CONFIG_HZ")
        .expect("CONFIG_HZ")
        .parse()
        .unwrap();
    let expected = [
        ("kconfig_tristate", tri(kconfig_value(&text, "CONFIG_BPF"))),
        ("kconfig_hz", hz),
        (
            "kconfig_bool",
            u32::from(kconfig_value(&text, "CONFIG_BPF_SYSCALL") == Some("y")),
        ),
        ("kconfig_version", inputs.kernel_version),
        (
            "kconfig_virtual",
            u32::from(inputs.has_bpf_cookie) | (u32::from(inputs.has_syscall_wrapper) << 1),
        ),
        ("kconfig_weak_missing", 7),
        (
            "kconfig_string",
            kconfig_value(&text, "CONFIG_LOCALVERSION").map_or(0, |s| {
                s.trim_matches('"').bytes().next().unwrap_or(0) as u32
            }),
        ),
    ];
    for (name, want) in expected {
        let insns = relocated(&p, name, kcfg.as_ref(), &kernel);
        let fd =
            load(&p, name, &insns, None, &kernel, &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(test_run(&fd), want, "{name}");
    }
}

#[test]
fn user_kconfig_text_comes_first_and_strong_missing_is_an_error() {
    let kernel = KernelBtfs::new().unwrap();
    let mut inputs = inputs();
    let user = "CONFIG_BPF=m\nCONFIG_HZ=123\nCONFIG_BPF_SYSCALL=n\nCONFIG_LOCALVERSION=\"-x\"\n";
    inputs.kconfig = Some(user);
    let p = prepare(open("ext_kconfig"), &kernel, &inputs).unwrap();
    // Read back from the image at each extern's offset.
    let val = |name: &str| {
        let i = p.obj.externs().iter().position(|e| e.name == name).unwrap();
        let d = p.table.descs[i].as_ref().unwrap();
        let externs::ExternKind::Kconfig { data_off, size, .. } = d.kind else {
            panic!()
        };
        p.res.kconfig_image[data_off as usize..(data_off + size) as usize].to_vec()
    };
    assert_eq!(val("CONFIG_BPF"), 2u32.to_ne_bytes());
    assert_eq!(val("CONFIG_HZ"), 123u32.to_ne_bytes());
    assert_eq!(val("CONFIG_BPF_SYSCALL"), [0]);
    assert_eq!(&val("CONFIG_LOCALVERSION")[..3], b"-x\0");
    // An out-of-range value names the extern.
    inputs.kconfig = Some("CONFIG_HZ=0x100000000\n");
    let e = prepare(open("ext_kconfig"), &kernel, &inputs)
        .err()
        .expect("range error");
    assert!(
        e.to_string().contains("CONFIG_HZ") && e.to_string().contains("doesn't fit"),
        "{e}"
    );
}

#[test]
fn kconfig_layout_matches_libbpf_sorting() {
    // cmp_externs: alignment descending, then size ascending, then name; offsets aligned.
    let kernel = KernelBtfs::new().unwrap();
    let p = prepare(open("ext_kconfig"), &kernel, &inputs()).unwrap();
    let mut rows: Vec<(usize, String, u32)> = p
        .table
        .descs
        .iter()
        .flatten()
        .filter_map(|d| match d.kind {
            externs::ExternKind::Kconfig { data_off, .. } => {
                Some((d.libbpf_idx, d.name.clone(), data_off))
            }
            _ => None,
        })
        .collect();
    rows.sort();
    let names: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    // 4-byte aligned ints/enums by name, then the bools, then the char array (align 1, size 32).
    assert_eq!(
        names,
        [
            "CONFIG_BPF",
            "CONFIG_BPFLOAD_NO_SUCH_OPTION",
            "CONFIG_HZ",
            "LINUX_KERNEL_VERSION",
            "CONFIG_BPF_SYSCALL",
            "LINUX_HAS_BPF_COOKIE",
            "LINUX_HAS_SYSCALL_WRAPPER",
            "CONFIG_LOCALVERSION",
        ]
    );
    let offs: Vec<u32> = rows.iter().map(|r| r.2).collect();
    assert_eq!(offs, [0, 4, 8, 12, 16, 17, 18, 19]);
    assert_eq!(p.table.kconfig_size, 19 + 32);
}

#[test]
fn ksyms_resolve_through_btf_and_kallsyms() {
    if !require_root("ksym externs load") {
        return;
    }
    let kernel = KernelBtfs::new().unwrap();
    let p = prepare(open("ext_ksym"), &kernel, &inputs()).unwrap();
    // The typed ksym's id is the VAR in vmlinux.
    let idx = |name: &str| p.obj.externs().iter().position(|e| e.name == name).unwrap();
    let want = kernel
        .vmlinux()
        .find_by_name_kind("bpf_prog_active", Kind::Var)
        .unwrap();
    assert_eq!(
        p.res.values[idx("bpf_prog_active")],
        ExternValue::BtfVar {
            btf_id: want,
            src: BtfSource::Vmlinux
        }
    );
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").unwrap();
    let stext = kallsyms
        .lines()
        .find_map(|l| {
            let mut it = l.split_whitespace();
            let (a, _, n) = (it.next()?, it.next()?, it.next()?);
            (n == "_stext")
                .then(|| u64::from_str_radix(a, 16).ok())
                .flatten()
        })
        .expect("_stext in kallsyms");
    assert_eq!(p.res.values[idx("_stext")], ExternValue::Addr(stext));
    assert_eq!(p.res.values[idx("bpfload_no_such_var")], ExternValue::Unset);
    assert_eq!(p.res.values[idx("bpfload_no_such_sym")], ExternValue::Unset);

    // The typed ksym becomes ld_imm64 BPF_PSEUDO_BTF_ID with the vmlinux id.
    let insns = relocated(&p, "ksym_typed", None, &kernel);
    assert!(insns
        .iter()
        .any(|i| i.code == 0x18 && i.src() == externs::PSEUDO_BTF_ID && i.imm == want as i32));
    // The kernel then needs the variable's address from kallsyms: without CONFIG_KALLSYMS_ALL
    // (this machine) it has none for data symbols and answers ENOENT, as it does for libbpf.
    let in_kallsyms = kallsyms
        .lines()
        .any(|l| l.split_whitespace().nth(2) == Some("bpf_prog_active"));
    match load(&p, "ksym_typed", &insns, None, &kernel, &[]) {
        Ok(fd) => {
            assert!(
                in_kallsyms,
                "loaded although the kernel has no address for bpf_prog_active"
            );
            assert_eq!(test_run(&fd), 1);
        }
        Err(e) => {
            assert!(!in_kallsyms, "ksym_typed: {e}");
            assert_eq!(e.errno(), Errno::ENOENT, "{e}");
            assert!(e.log().contains("bpf_prog_active"), "{e}");
        }
    }
    for (name, want) in [("ksym_typeless", stext as u32), ("ksym_weak_missing", 3)] {
        let insns = relocated(&p, name, None, &kernel);
        let fd =
            load(&p, name, &insns, None, &kernel, &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(test_run(&fd), want, "{name}");
    }
}

#[test]
fn kfuncs_tp_btf_and_iter_load() {
    if !require_root("kfunc, tp_btf and iter loads") {
        return;
    }
    let kernel = KernelBtfs::new().unwrap();
    let p = prepare(open("ext_kfunc"), &kernel, &inputs()).unwrap();
    let v = kernel.vmlinux();
    let idx = |name: &str| p.obj.externs().iter().position(|e| e.name == name).unwrap();
    for k in ["bpf_task_acquire", "bpf_task_release"] {
        let id = v.find_by_name_kind(k, Kind::Func).unwrap();
        assert_eq!(
            p.res.values[idx(k)],
            ExternValue::Kfunc {
                btf_id: id,
                fd_idx: 0,
                src: BtfSource::Vmlinux
            }
        );
    }
    assert_eq!(
        p.res.values[idx("bpfload_no_such_kfunc")],
        ExternValue::Unset
    );
    assert!(p.res.fd_array(&kernel).is_empty());

    for name in ["kfunc_acquire", "kfunc_weak_missing", "iter_task"] {
        let pr = p.obj.program(name).unwrap();
        let target = attach::resolve(
            name,
            pr.section(),
            pr.prog_type().unwrap(),
            pr.expected_attach_type(),
            None,
            Some(&kernel),
            None,
        )
        .unwrap();
        let (want_name, want_kind) = match name {
            "iter_task" => ("bpf_iter_task", Kind::Func),
            _ => ("btf_trace_task_newtask", Kind::Typedef),
        };
        assert_eq!(
            target.btf_id,
            v.find_by_name_kind(want_name, want_kind).unwrap(),
            "{name}"
        );
        let insns = relocated(&p, name, None, &kernel);
        if name == "kfunc_weak_missing" {
            // libbpf's poison: call 2002000000 + the extern's index in libbpf's sorted order.
            let ext = p.table.descs[idx("bpfload_no_such_kfunc")]
                .as_ref()
                .unwrap();
            assert!(insns.iter().any(|i| i.code == 0x85
                && i.imm == externs::POISON_CALL_KFUNC_BASE + ext.libbpf_idx as i32));
        }
        load(&p, name, &insns, Some(target), &kernel, &[])
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn trampoline_targets_resolve_and_eperm_is_reported() {
    if !require_root("fentry/fexit/fmod_ret/lsm loads") {
        return;
    }
    let kernel = KernelBtfs::new().unwrap();
    let obj = open("ext_trampoline");
    let v = kernel.vmlinux();
    for (name, want) in [
        ("on_entry", "bpf_fentry_test1"),
        ("on_exit", "bpf_fentry_test1"),
        ("mod_ret", "bpf_modify_return_test"),
        ("lsm_open", "bpf_lsm_file_open"),
    ] {
        let pr = obj.program(name).unwrap();
        let target = attach::resolve(
            name,
            pr.section(),
            pr.prog_type().unwrap(),
            pr.expected_attach_type(),
            None,
            Some(&kernel),
            None,
        )
        .unwrap();
        assert_eq!(
            target.btf_id,
            v.find_by_name_kind(want, Kind::Func).unwrap(),
            "{name}"
        );
        let p = Prepared {
            obj: obj.clone(),
            table: ExternTable::default(),
            res: Resolution::default(),
        };
        match load(&p, name, pr.insns(), Some(target), &kernel, &[]) {
            Ok(_) => eprintln!("{name}: this kernel allows trampolines; loaded"),
            Err(e) => {
                // This kernel refuses trampolines: the error must carry the kernel's EPERM.
                assert_eq!(e.errno(), Errno::EPERM, "{name}: {e}");
                assert!(e.to_string().contains("EPERM"), "{name}: {e}");
            }
        }
    }
    let pr = obj.program("no_target").unwrap();
    let e = attach::resolve(
        "no_target",
        pr.section(),
        pr.prog_type().unwrap(),
        pr.expected_attach_type(),
        None,
        Some(&kernel),
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("set_attach_target"), "{e}");
}

// ---- Through the loader pipeline (Loader::load) ----

use bpfload::Loader;

fn loader_run(l: &bpfload::Loaded, prog: &str) -> u32 {
    let p = l
        .program(prog)
        .unwrap_or_else(|| panic!("no program {prog}"));
    let fd = p.result().unwrap_or_else(|e| panic!("{prog}: {e}"));
    prog::test_run(fd, &[0u8; 64], 1).expect("test_run").retval
}

#[test]
fn loader_fills_kconfig_map_and_patches_externs() {
    if !require_root("Loader kconfig load") {
        return;
    }
    let inputs = inputs();
    let text = system_kconfig();
    let hz: u32 = kconfig_value(&text, "CONFIG_HZ").unwrap().parse().unwrap();
    let l = Loader::new()
        .load(&open("ext_kconfig"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        l.btf_fd().is_some(),
        "object BTF (with .kconfig rewritten) was refused"
    );
    assert_eq!(loader_run(&l, "kconfig_hz"), hz);
    assert_eq!(loader_run(&l, "kconfig_version"), inputs.kernel_version);
    assert_eq!(loader_run(&l, "kconfig_weak_missing"), 7);
    let m = l
        .maps()
        .iter()
        .find(|m| m.real_name() == ".kconfig")
        .expect(".kconfig map");
    assert_eq!(m.kind(), bpfload::MapKind::Kconfig);
    // Created with the .kconfig DATASEC as its BTF value type (the kernel checked the layout).
    let info = bpfload_syscall::info::map_info(m.fd()).unwrap();
    assert_ne!(info.btf_value_type_id, 0, "the .kconfig map lost its BTF");
    assert_eq!(info.map_flags & (1 << 7), 1 << 7, "BPF_F_RDONLY_PROG");
    // User text wins over the system kconfig.
    let l = Loader::new()
        .kconfig("CONFIG_HZ=321\n")
        .load(&open("ext_kconfig"))
        .unwrap();
    assert_eq!(loader_run(&l, "kconfig_hz"), 321);
}

#[test]
fn loader_ksyms_kfuncs_tp_btf_iter() {
    if !require_root("Loader ksym/kfunc loads") {
        return;
    }
    let l = Loader::new()
        .only_programs(["ksym_typeless", "ksym_weak_missing"])
        .load(&open("ext_ksym"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loader_run(&l, "ksym_weak_missing"), 3);
    let l = Loader::new()
        .load(&open("ext_kfunc"))
        .unwrap_or_else(|e| panic!("{e}"));
    // The object's BTF, with .ksyms rewritten as libbpf rewrites it, is accepted by the kernel.
    assert!(l.btf_fd().is_some(), "object BTF was refused");
    for p in ["kfunc_acquire", "kfunc_weak_missing", "iter_task"] {
        assert!(l.program(p).unwrap().is_loaded(), "{p}");
    }
}

#[test]
fn loader_reports_trampoline_eperm_and_missing_target() {
    if !require_root("Loader trampoline loads") {
        return;
    }
    let obj = open("ext_trampoline");
    let l = Loader::new()
        .keep_going(true)
        .load(&obj)
        .unwrap_or_else(|e| panic!("{e}"));
    for p in ["on_entry", "on_exit", "mod_ret", "lsm_open"] {
        match l.program(p).unwrap().result() {
            Ok(_) => eprintln!("{p}: trampolines allowed on this kernel"),
            Err(e) => {
                assert_eq!(e.errno(), Errno::EPERM, "{p}: {e}");
                assert!(e.to_string().contains("EPERM"), "{p}: {e}");
            }
        }
    }
    let e = l.program("no_target").unwrap().result().unwrap_err();
    assert!(e.to_string().contains("set_attach_target"), "{e}");
    // With the API, the same program resolves its target (and then meets the kernel's EPERM).
    let l = Loader::new()
        .only_programs(["no_target"])
        .keep_going(true)
        .set_attach_target("no_target", None, Some("bpf_fentry_test1"))
        .load(&obj)
        .unwrap();
    if let Err(e) = l.program("no_target").unwrap().result() {
        assert_eq!(e.errno(), Errno::EPERM, "{e}");
    }
}

// ---- Corpus: cilium/ebpf test objects, compared with libbpf 1.7's results (corpus README) ----

fn corpus(name: &str) -> Option<Object> {
    let Some(dir) = bpfload_tests::corpus_dir() else {
        bpfload_tests::skip_or_panic("externs corpus", "corpus directory absent");
        return None;
    };
    Some(
        Object::open_file(dir.join("cilium-ebpf/testdata").join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}")),
    )
}

/// Loads one program alone (as the README's libbpf runs did) and returns the per-program result
/// or the object-level error text.
fn load_alone(obj: &Object, prog: &str) -> Result<(), (Option<Errno>, String)> {
    match Loader::new()
        .token_path("")
        .only_programs([prog])
        .keep_going(true)
        .load(obj)
    {
        Ok(l) => match l.program(prog).unwrap().result() {
            Ok(_) => Ok(()),
            Err(e) => Err((Some(e.errno()), e.to_string())),
        },
        Err(e) => Err((None, e.to_string())),
    }
}

#[test]
fn corpus_externs_match_libbpf() {
    if !require_root("externs corpus loads") {
        return;
    }
    // kconfig-el: libbpf loads `kconfig`.
    if let Some(o) = corpus("kconfig-el.elf") {
        load_alone(&o, "kconfig").unwrap_or_else(|e| panic!("kconfig: {e:?}"));
    }
    // kfunc-el: libbpf loads call_kfunc, weak_kfunc_missing, call_weak_kfunc; benchmark
    // (fentry) gets the kernel's EPERM.
    if let Some(o) = corpus("kfunc-el.elf") {
        for p in ["call_kfunc", "weak_kfunc_missing", "call_weak_kfunc"] {
            load_alone(&o, p).unwrap_or_else(|e| panic!("{p}: {e:?}"));
        }
        let e = load_alone(&o, "benchmark").unwrap_err();
        assert_eq!(e.0, Some(Errno::EPERM), "benchmark: {e:?}");
    }
    // fentry_fexit-el: target loads; the trampolines get EPERM.
    if let Some(o) = corpus("fentry_fexit-el.elf") {
        load_alone(&o, "target").unwrap();
        for p in ["trace_on_entry", "trace_on_exit"] {
            assert_eq!(load_alone(&o, p).unwrap_err().0, Some(Errno::EPERM), "{p}");
        }
    }
    // freplace-el: the raw_tracepoint loads; `replacement` has no target program: EINVAL with a
    // message naming the API.
    if let Some(o) = corpus("freplace-el.elf") {
        load_alone(&o, "sched_process_exec").unwrap();
        let e = load_alone(&o, "replacement").unwrap_err();
        assert_eq!(e.0, Some(Errno::EINVAL), "{e:?}");
        assert!(e.1.contains("set_attach_target"), "{e:?}");
    }
    // ksym-el: libbpf resolves every extern of the object and fails every program with EINVAL
    // on the strong typed ksym no kernel has (typed ksyms resolve before the final strong check,
    // whose errno is ESRCH). The default does the same, naming the extern.
    if let Some(o) = corpus("ksym-el.elf") {
        for p in [
            "ksym_test",
            "missing_ksym_test",
            "missing_weak_ksym_test",
            "typed_ksym_test",
            "typed_ksym_mod_var_test",
            "missing_typed_ksym_test",
            "missing_weak_typed_ksym_test",
        ] {
            let e = Loader::new()
                .token_path("")
                .only_programs([p])
                .keep_going(true)
                .load(&o)
                .unwrap_err();
            assert_eq!(e.errno(), Errno::EINVAL, "{p}: {e}");
            assert!(e.to_string().contains("missing_typed_ksym"), "{p}: {e}");
        }
    }
    // With `lenient_externs(true)` only programs using a missing strong extern fail (naming
    // it); the others load, or meet the kernel's own answer (ENOENT for a typed ksym whose
    // variable /proc/kallsyms does not list, as without CONFIG_KALLSYMS_ALL).
    if let Some(o) = corpus("ksym-el.elf") {
        let lenient = |p: &str| -> Result<(), (Option<Errno>, String)> {
            match Loader::new()
                .token_path("")
                .lenient_externs(true)
                .only_programs([p])
                .keep_going(true)
                .load(&o)
            {
                Ok(l) => match l.program(p).unwrap().result() {
                    Ok(_) => Ok(()),
                    Err(e) => Err((Some(e.errno()), e.to_string())),
                },
                Err(e) => Err((None, e.to_string())),
            }
        };
        for (p, missing) in [
            ("missing_ksym_test", "missing_ksym"),
            ("missing_typed_ksym_test", "missing_typed_ksym"),
        ] {
            let e = lenient(p).unwrap_err();
            assert!(e.0.is_none() && e.1.contains(missing), "{p}: {e:?}");
        }
        for p in [
            "ksym_test",
            "missing_weak_ksym_test",
            "typed_ksym_mod_var_test",
            "missing_weak_typed_ksym_test",
        ] {
            lenient(p).unwrap_or_else(|e| panic!("{p}: {e:?}"));
        }
        match lenient("typed_ksym_test") {
            Ok(()) => {}
            Err(e) => assert_eq!(e.0, Some(Errno::ENOENT), "typed_ksym_test: {e:?}"),
        }
    }
    // struct_ops-el: bpf_testmod_ops exists only with the kernel's test module: ESRCH, naming it.
    if let Some(o) = corpus("struct_ops-el.elf") {
        let e = load_alone(&o, "test_1").unwrap_err();
        assert!(
            e.1.contains("bpf_testmod_ops") && e.1.contains("ESRCH"),
            "{e:?}"
        );
    }
    // fwd_decl-el: libbpf fails open: "failed to find BTF for extern 'fwd'". The extern is
    // called, so the load fails with the same reason.
    if let Some(o) = corpus("fwd_decl-el.elf") {
        let p = o.programs().next().unwrap().name().to_string();
        let e = load_alone(&o, &p).unwrap_err();
        assert!(e.1.contains("failed to find BTF for extern 'fwd'"), "{e:?}");
    }
}

// ---- struct_ops ----

#[test]
fn struct_ops_tcp_congestion_ops_loads() {
    if !require_root("struct_ops load") {
        return;
    }
    let obj = open("ext_struct_ops");
    // Open: one STRUCT_OPS map per variable; `?.struct_ops.link` is not autocreated and has BPF_F_LINK.
    let m = obj.map("bpfload_cc").expect("map bpfload_cc");
    assert_eq!(m.map_type(), bpf_map_type::BPF_MAP_TYPE_STRUCT_OPS as u32);
    assert!(m.autocreate());
    let ml = obj.map("bpfload_cc_link").expect("map bpfload_cc_link");
    assert!(!ml.autocreate());
    assert_eq!(
        ml.def().map_flags & bpfload::struct_ops::BPF_F_LINK,
        bpfload::struct_ops::BPF_F_LINK
    );

    let l = Loader::new()
        .keep_going(true)
        .load(&obj)
        .unwrap_or_else(|e| panic!("{e}"));
    let kernel = KernelBtfs::new().unwrap();
    let v = kernel.vmlinux();
    let kt = v
        .find_by_name_kind("tcp_congestion_ops", Kind::Struct)
        .unwrap();
    let kvt = v
        .find_by_name_kind("bpf_struct_ops_tcp_congestion_ops", Kind::Struct)
        .unwrap();
    // Member programs load with attach_btf_id = struct tcp_congestion_ops and expected attach type
    // = the kernel member index (checked through the kernel's prog info).
    let Ok(bpfload_btf::Type::Struct(c)) = v.type_by_id(kt) else {
        panic!()
    };
    for (prog_name, member) in [
        ("bpfload_ssthresh", "ssthresh"),
        ("bpfload_cong_avoid", "cong_avoid"),
        ("bpfload_undo_cwnd", "undo_cwnd"),
    ] {
        let p = l.program(prog_name).unwrap();
        let fd = p.result().unwrap_or_else(|e| panic!("{prog_name}: {e}"));
        let info = bpfload_syscall::info::prog_info(fd).unwrap();
        assert_eq!(info.attach_btf_id, kt, "{prog_name}");
        let idx = c
            .members()
            .position(|m| v.str_at(m.name_off).ok() == Some(member))
            .unwrap();
        let _ = idx; // the kernel does not report expected_attach_type; it accepted the member index
    }
    // Not used by any map: not autoloaded.
    assert!(
        l.program("bpfload_unused").is_none() || !l.program("bpfload_unused").unwrap().is_loaded()
    );
    // The map was created with the kernel's value type.
    let lm = l.map("bpfload_cc").expect("struct_ops map created");
    let mi = bpfload_syscall::info::map_info(lm.fd()).unwrap();
    assert_eq!(mi.btf_vmlinux_value_type_id, kvt);
    let Ok(bpfload_btf::Type::Struct(vt)) = v.type_by_id(kvt) else {
        panic!()
    };
    assert_eq!(mi.value_size, vt.size);
    assert!(l.map("bpfload_cc_link").is_none(), "autocreate off");

    // The registration value: the kernel image with the `name` copied and each member's program fd.
    let value = l.struct_ops_value("bpfload_cc").expect("struct_ops value");
    assert_eq!(value.len(), vt.size as usize);
    let data = vt.members().find(|m| m.type_id == kt).unwrap();
    let data_off = (data.bit_offset / 8) as usize;
    let member_off = |name: &str| {
        let m = c
            .members()
            .find(|m| v.str_at(m.name_off).ok() == Some(name))
            .unwrap();
        data_off + (m.bit_offset / 8) as usize
    };
    let name_off = member_off("name");
    assert_eq!(&value[name_off..name_off + 11], b"bpfload_cc\0");
    for (prog_name, member) in [
        ("bpfload_ssthresh", "ssthresh"),
        ("bpfload_cong_avoid", "cong_avoid"),
        ("bpfload_undo_cwnd", "undo_cwnd"),
    ] {
        let off = member_off(member);
        let fd = u64::from_ne_bytes(value[off..off + 8].try_into().unwrap());
        assert_eq!(
            fd,
            l.program(prog_name).unwrap().fd().as_raw_fd() as u64,
            "{member}"
        );
    }
    // Registering is attach-time work (as in libbpf); the kernel either accepts the value or, on
    // a kernel that refuses trampolines, answers with its own error.
    match map::update_elem(lm.fd(), &0u32.to_ne_bytes(), value, 0) {
        Ok(()) => {
            map::delete_elem(lm.fd(), &0u32.to_ne_bytes()).expect("unregister");
        }
        Err(e) => eprintln!("struct_ops registration refused by this kernel: {e}"),
    }
}

/// Two struct_ops variables in one section: each map's image and member programs come from its
/// own variable (its symbol's offset, as after libbpf's DATASEC fix-up; clang leaves the BTF
/// offsets at 0).
#[test]
fn struct_ops_variables_sharing_a_section_keep_their_own_values() {
    if !require_root("struct_ops load") {
        return;
    }
    let obj = open("struct_ops_pair");
    let l = Loader::new()
        .keep_going(true)
        .load(&obj)
        .unwrap_or_else(|e| panic!("{e}"));
    let member_off = tcp_ops_value_offset;
    let prog_fd = |name: &str| l.program(name).unwrap().fd().as_raw_fd() as u64;
    for (map, name, ssthresh, undo) in [
        ("pair_first", &b"bpfload_pa\0"[..], "pair_a_ssthresh", None),
        (
            "pair_second",
            &b"bpfload_pb\0"[..],
            "pair_b_ssthresh",
            Some("pair_b_undo_cwnd"),
        ),
    ] {
        let value = l
            .struct_ops_value(map)
            .unwrap_or_else(|| panic!("{map} value"));
        let at = |member: &str| {
            let off = member_off(member);
            u64::from_ne_bytes(value[off..off + 8].try_into().unwrap())
        };
        let n = member_off("name");
        assert_eq!(&value[n..n + name.len()], name, "{map}");
        assert_eq!(at("ssthresh"), prog_fd(ssthresh), "{map}");
        assert_eq!(at("cong_avoid"), prog_fd("pair_cong_avoid"), "{map}");
        assert_eq!(at("undo_cwnd"), undo.map_or(0, prog_fd), "{map}");
    }
}

/// Byte offset of a `tcp_congestion_ops` member in the kernel's registration value
/// (`struct bpf_struct_ops_tcp_congestion_ops`).
fn tcp_ops_value_offset(member: &str) -> usize {
    let kernel = KernelBtfs::new().unwrap();
    let v = kernel.vmlinux();
    let kt = v
        .find_by_name_kind("tcp_congestion_ops", Kind::Struct)
        .unwrap();
    let kvt = v
        .find_by_name_kind("bpf_struct_ops_tcp_congestion_ops", Kind::Struct)
        .unwrap();
    let (Ok(bpfload_btf::Type::Struct(c)), Ok(bpfload_btf::Type::Struct(vt))) =
        (v.type_by_id(kt), v.type_by_id(kvt))
    else {
        panic!()
    };
    let data = vt.members().find(|m| m.type_id == kt).unwrap();
    let m = c
        .members()
        .find(|m| v.str_at(m.name_off).ok() == Some(member))
        .unwrap();
    (data.bit_offset / 8 + m.bit_offset / 8) as usize
}

/// libbpf 1.7's `bpf_object_adjust_struct_ops_autoload` decides the autoload of every struct_ops
/// program a struct_ops map references: on iff a map referencing it is created, whatever
/// `set_autoload` or `only_programs` said (bpfload used to leave programs the user touched alone,
/// as an unmerged libbpf patch does). Programs no map references keep their setting.
#[test]
fn struct_ops_autoload_follows_the_maps_whatever_the_user_set() {
    if !require_root("struct_ops load") {
        return;
    }
    let obj = open("struct_ops_pair");
    let loaded = |l: &bpfload::Loaded, p: &str| l.program(p).is_some_and(|p| p.is_loaded());
    let slot = |l: &bpfload::Loaded, map: &str, member: &str| {
        let value = l
            .struct_ops_value(map)
            .unwrap_or_else(|| panic!("{map} value"));
        let off = tcp_ops_value_offset(member);
        u64::from_ne_bytes(value[off..off + 8].try_into().unwrap())
    };
    let fd = |l: &bpfload::Loaded, p: &str| l.program(p).unwrap().fd().as_raw_fd() as u64;

    // (A) Used only by a map that is not created: off, although the user turned it on (it has no
    // attach target: loading it would fail "not referenced by any struct_ops map").
    let l = bpfload::Loader::new()
        .set_autocreate("pair_first", false)
        .set_autoload("pair_a_ssthresh", true)
        .load(&obj)
        .unwrap_or_else(|e| panic!("A: {e}"));
    assert!(!loaded(&l, "pair_a_ssthresh"), "A");
    assert!(l.struct_ops_value("pair_first").is_none(), "A");
    assert_eq!(
        slot(&l, "pair_second", "ssthresh"),
        fd(&l, "pair_b_ssthresh")
    );

    // (B) Used by a created map: on, although the user turned it off, and in the value.
    let l = bpfload::Loader::new()
        .set_autoload("pair_a_ssthresh", false)
        .load(&obj)
        .unwrap_or_else(|e| panic!("B: {e}"));
    assert!(loaded(&l, "pair_a_ssthresh"), "B");
    assert_eq!(
        slot(&l, "pair_first", "ssthresh"),
        fd(&l, "pair_a_ssthresh")
    );

    // (C) `only_programs` is autoload settings applied before the rule: every member of the
    // created maps loads, listed or not.
    let l = bpfload::Loader::new()
        .only_programs(["pair_b_ssthresh"])
        .load(&obj)
        .unwrap_or_else(|e| panic!("C: {e}"));
    for (map, member, p) in [
        ("pair_first", "ssthresh", "pair_a_ssthresh"),
        ("pair_first", "cong_avoid", "pair_cong_avoid"),
        ("pair_second", "ssthresh", "pair_b_ssthresh"),
        ("pair_second", "undo_cwnd", "pair_b_undo_cwnd"),
    ] {
        assert!(loaded(&l, p), "C: {p}");
        assert_eq!(slot(&l, map, member), fd(&l, p), "C: {map}.{member}");
    }

    // (D) Listed, but used only by a map that is not created: off.
    let l = bpfload::Loader::new()
        .only_programs(["pair_a_ssthresh", "pair_b_ssthresh"])
        .set_autocreate("pair_first", false)
        .load(&obj)
        .unwrap_or_else(|e| panic!("D: {e}"));
    assert!(!loaded(&l, "pair_a_ssthresh"), "D");
    assert!(loaded(&l, "pair_b_ssthresh"), "D");

    // A struct_ops program no map references keeps its setting: off, the object loads; on (the
    // default), it fails for lack of an attach target, as in libbpf.
    let obj = open("ext_struct_ops");
    let l = bpfload::Loader::new()
        .set_autoload("bpfload_unused", false)
        .load(&obj)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!loaded(&l, "bpfload_unused"));
    let e = bpfload::Loader::new()
        .only_programs(["bpfload_unused"])
        .load(&obj)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("not referenced by any struct_ops map"),
        "{e}"
    );
}

/// A member program that did not load (refused by the verifier, under `keep_going`) goes into
/// the value as libbpf's `bpf_map_prepare_vdata` writes it: `bpf_program__fd()` = -ENOENT,
/// sign-extended into the 8-byte slot. Registering then fails with EBADF; with 0 there the
/// kernel would take the slot as empty instead.
#[test]
fn struct_ops_member_without_fd_is_enoent_in_the_value() {
    if !require_root("struct_ops load") {
        return;
    }
    let obj = open("struct_ops_bad");
    let l = bpfload::Loader::new()
        .keep_going(true)
        .load(&obj)
        .unwrap_or_else(|e| panic!("{e}"));
    let bad = l.program("bad_cong_avoid").unwrap();
    assert!(!bad.is_loaded(), "the verifier refuses bad_cong_avoid");
    let value = l.struct_ops_value("bad_ops").expect("bad_ops value");
    let slot = |member: &str| {
        let off = tcp_ops_value_offset(member);
        u64::from_ne_bytes(value[off..off + 8].try_into().unwrap())
    };
    assert_eq!(slot("cong_avoid"), -(libc::ENOENT as i64) as u64);
    for (member, p) in [("ssthresh", "bad_ssthresh"), ("undo_cwnd", "bad_undo_cwnd")] {
        assert_eq!(
            slot(member),
            l.program(p).unwrap().fd().as_raw_fd() as u64,
            "{member}"
        );
    }
    let m = l.map("bad_ops").expect("bad_ops created");
    match map::update_elem(m.fd(), &0u32.to_ne_bytes(), value, 0) {
        Ok(()) => {
            map::delete_elem(m.fd(), &0u32.to_ne_bytes()).expect("unregister");
            panic!("registered with a member that did not load");
        }
        Err(e) => assert_eq!(e.errno(), Errno::EBADF, "{e}"),
    }
}

/// `lenient_externs`: externs are resolved before struct_ops are prepared, but a member of a
/// created struct_ops map loads whatever its autoload was (libbpf's struct_ops autoload rule), so
/// an extern it uses must resolve. `bpfload_missing_ksym` exists in no kernel.
#[test]
fn lenient_externs_count_members_of_created_struct_ops_maps() {
    if !require_root("struct_ops load") {
        return;
    }
    let obj = open("lenient/struct_ops_extern.bpf.o");
    let e = bpfload::Loader::new()
        .lenient_externs(true)
        .only_programs(["other"])
        .load(&obj)
        .unwrap_err();
    assert!(e.to_string().contains("bpfload_missing_ksym"), "{e}");
    // Its map not created, the member does not load and the extern is not needed.
    let l = bpfload::Loader::new()
        .lenient_externs(true)
        .only_programs(["other"])
        .set_autocreate("ext_ops", false)
        .load(&obj)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(l.program("other").unwrap().is_loaded());
    assert!(!l.program("ext_ssthresh").is_some_and(|p| p.is_loaded()));
}

/// `lenient_externs` with a static function outside `.text` (a program of its own in bpfload)
/// whose own autoload is off: its code is still loaded, appended to the caller in its section,
/// so the extern it uses must resolve (`tests/bpf/lenient/static_extern.bpf.c`).
#[test]
fn lenient_externs_count_static_functions_appended_to_loaded_programs() {
    if !require_root("extern load") {
        return;
    }
    let obj = open("lenient/static_extern.bpf.o");
    for (what, loader) in [
        (
            "set_autoload(helper, false)",
            bpfload::Loader::new().set_autoload("helper", false),
        ),
        (
            "only_programs([caller])",
            bpfload::Loader::new().only_programs(["caller"]),
        ),
    ] {
        let e = loader.lenient_externs(true).load(&obj).unwrap_err();
        assert!(
            e.to_string().contains("bpfload_missing_ksym"),
            "{what}: {e}"
        );
    }
    // Nothing that uses it loads: lenient externs let it go.
    bpfload::Loader::new()
        .lenient_externs(true)
        .set_autoload("helper", false)
        .set_autoload("caller", false)
        .load(&obj)
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn freplace_resolves_the_function_in_the_target_programs_btf() {
    if !require_root("freplace load") {
        return;
    }
    let Some(obj) = corpus("freplace-el.elf") else {
        return;
    };
    // The target: a program whose BTF has the global function `subprog`.
    let target = Loader::new()
        .token_path("")
        .only_programs(["sched_process_exec"])
        .load(&obj)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(target.btf_fd().is_some(), "target program needs BTF");
    let tfd = target.program("sched_process_exec").unwrap().fd();
    // Resolution: the FUNC id in the target's BTF, i.e. in the object's BTF as loaded.
    let id = attach::find_prog_btf_id("replacement", "subprog", tfd, None).unwrap();
    let local = Btf::parse(obj.btf().unwrap()).unwrap();
    assert_eq!(Some(id), local.find_by_name_kind("subprog", Kind::Func));
    let e = attach::find_prog_btf_id("replacement", "no_such_function", tfd, None).unwrap_err();
    assert!(e.to_string().contains("not found in prog's BTF"), "{e}");
    // Through the loader: the target from the API, the function from the section name.
    let l = Loader::new()
        .token_path("")
        .only_programs(["replacement"])
        .keep_going(true)
        .set_attach_target("replacement", Some(tfd), None)
        .load(&obj)
        .unwrap_or_else(|e| panic!("{e}"));
    match l.program("replacement").unwrap().result() {
        Ok(_) => eprintln!("freplace loaded: this kernel allows trampolines"),
        // This kernel refuses trampolines (libbpf gets the same EPERM).
        Err(e) => assert_eq!(e.errno(), Errno::EPERM, "{e}"),
    }
}

#[test]
fn ksyms_btf_is_rewritten_as_libbpf_does() {
    use bpfload_btf::{BtfModel, FuncLinkage, TypeBody, VarLinkage};
    let obj = open("ext_kfunc");
    let btf = Btf::parse(obj.btf().unwrap()).unwrap();
    let table = externs::classify(obj.externs(), Some(&btf), |_| true).unwrap();
    let mut model = BtfModel::from_btf(&btf).unwrap();
    let before = model.len();
    let dummy =
        externs::btf_fixup::rewrite_extern_btf(&mut model, &table).expect("kfuncs need dummy_ksym");
    assert_eq!(dummy, before, "dummy_ksym is appended");
    let sec = model.find_by_name_kind(".ksyms", Kind::DataSec).unwrap();
    let TypeBody::DataSec { size, vars } = &model.get(sec).unwrap().body else {
        panic!()
    };
    assert_eq!(*size as usize, vars.len() * 4);
    for (i, v) in vars.iter().enumerate() {
        assert_eq!((v.offset, v.size), (4 * i as u32, 4));
        // every entry is now an allocated VAR (FUNCs are replaced by dummy_ksym)
        assert!(matches!(
            model.get(v.type_id).unwrap().body,
            TypeBody::Var {
                linkage: VarLinkage::GlobalAllocated,
                ..
            }
        ));
    }
    for name in [
        "bpf_task_acquire",
        "bpf_task_release",
        "bpfload_no_such_kfunc",
    ] {
        let f = model.find_by_name_kind(name, Kind::Func).unwrap();
        assert!(
            matches!(
                model.get(f).unwrap().body,
                TypeBody::Func {
                    linkage: FuncLinkage::Global,
                    ..
                }
            ),
            "{name}"
        );
    }
    // That the kernel accepts the result (after the loader's DATASEC fix-up) is asserted by
    // loader_ksyms_kfuncs_tp_btf_iter (the object's BTF fd exists).
}

/// A kernel that lists BTF objects but has no module BTF answers E2BIG to the name field of the
/// BTF object info; libbpf then has no module BTFs (FEAT_MODULE_BTF missing) and goes on. Found
/// by review: the load failed with "failed to get BTF object info". Injected on this kernel.
#[test]
fn no_module_btf_support_means_no_module_btfs() {
    use bpfload_syscall::uapi::bpf_cmd;
    use bpfload_syscall::{with_fault_plan, FaultPlan};
    if !require_root("BTF object listing") {
        return;
    }
    let kernel = KernelBtfs::new().unwrap();
    let plan = FaultPlan::nth_of(bpf_cmd::BPF_OBJ_GET_INFO_BY_FD, 1, Errno::E2BIG).times(u64::MAX);
    let (modules, _) = with_fault_plan(plan, || kernel.modules().map(<[_]>::len));
    assert_eq!(modules.unwrap(), 0);
}
