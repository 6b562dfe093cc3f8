//! Behaviours where the libbpf 1.7 comparison (compat/) found bpfload different, each checked
//! against what libbpf does.

use bpfload_syscall::Errno;

use super::fixtures::{fixture, require_root};
use super::KERNEL_LOCK;
use crate::object::corpus_tests::corpus_dir;
use crate::object::maps::MapKind;
use crate::{Loader, Object};

/// An object of the corpus, or `None` (with a note) when the corpus is absent.
fn corpus_object(rel: &str) -> Option<Object> {
    let Some(dir) = corpus_dir() else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("the corpus is absent");
        }
        eprintln!("skipping: the corpus is absent");
        return None;
    };
    Some(Object::open_file(dir.join(rel)).unwrap())
}

/// libbpf relocates programs of unknown sections (CO-RE included) during prepare and fails
/// them only at load ("missing BPF prog type"): the relocated instructions exist, errno EINVAL.
#[test]
fn unknown_section_programs_are_relocated_then_fail_with_einval() {
    if !require_root("unknown-section loads") {
        return;
    }
    let _g = KERNEL_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let Some(obj) = corpus_object("cilium-ebpf/btf/testdata/relocs-el.elf") else {
        return;
    };
    let names: Vec<String> = obj
        .programs()
        .filter(|p| p.prog_type().is_none())
        .map(|p| p.name().to_string())
        .collect();
    assert!(!names.is_empty(), "relocs-el has unknown-section programs");
    for name in &names {
        let l = Loader::new()
            .only_programs([name])
            .keep_going(true)
            .load(&obj)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let p = l.program(name).unwrap();
        let e = p.result().unwrap_err();
        assert_eq!(e.errno(), Errno::EINVAL, "{name}: {e}");
        assert!(e.to_string().contains("missing BPF prog type"), "{e}");
        let insns = l.program_insns(name).unwrap();
        let orig = obj.programs().find(|p| p.name() == name).unwrap();
        assert!(
            insns.len() >= orig.insns().len() && !insns.is_empty(),
            "{name}: relocated instructions kept"
        );
    }
}

/// libbpf fills a prog-array slot with `bpf_program__fd()` of a program that is not loaded
/// (-ENOENT), and the kernel answers EBADF, failing the object after its programs loaded.
#[test]
fn tailcall_slot_of_unloaded_program_fails_with_ebadf() {
    if !require_root("tailcall slots") {
        return;
    }
    let _g = KERNEL_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let obj = Object::open_file(fixture("tailcall.bpf.o")).unwrap();
    for name in ["entry", "tail_0", "tail_1"] {
        // Fail-fast: the object-level error, as libbpf.
        let e = Loader::new().only_programs([name]).load(&obj).unwrap_err();
        assert_eq!(e.errno(), Errno::EBADF, "{name}: {e}");
        assert!(e.to_string().contains("jmp_table"), "{e}");
        // Keep-going: reported on the loaded program, instructions kept.
        let l = Loader::new()
            .only_programs([name])
            .keep_going(true)
            .load(&obj)
            .unwrap();
        let p = l.program(name).unwrap();
        assert_eq!(p.result().unwrap_err().errno(), Errno::EBADF, "{name}");
        assert!(!p.insns().is_empty(), "{name}: instructions kept");
    }
    // All three loaded: every slot filled, the load succeeds.
    Loader::new().load(&obj).unwrap();
}

/// libbpf lists `<obj>.kconfig` right after open: ARRAY, key 4, value = the kconfig image,
/// one entry, RDONLY_PROG | MMAPABLE, after global data and before struct_ops maps.
#[test]
fn kconfig_map_is_defined_at_open() {
    let obj = Object::open_file(fixture("ext_kconfig.bpf.o")).unwrap();
    let maps = obj.maps();
    let k = maps
        .iter()
        .position(|m| m.kind() == MapKind::Kconfig)
        .expect(".kconfig map at open");
    let m = &maps[k];
    assert!(m.name().ends_with(".kconfig"), "{}", m.name());
    assert_eq!(m.map_type(), 2); // BPF_MAP_TYPE_ARRAY
    assert_eq!(m.def().key_size, 4);
    assert_eq!(m.def().max_entries, 1);
    assert_eq!(m.def().map_flags, 1152);
    assert!(m.def().value_size > 0);
    // After every other non-struct_ops map.
    assert!(maps[k + 1..]
        .iter()
        .all(|m| m.map_type() == 26 /* STRUCT_OPS */));
}
