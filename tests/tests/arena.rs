//! BPF arena support against the kernel: the corpus object (an arena at `map_extra`) loads whole,
//! and the `arena.bpf.o` fixture's `__arena` globals are in the mapping with their initial values,
//! where the programs' relocated addresses point (checked by running the programs).
//!
//! Placement: libbpf 1.7 puts the globals at the start of the arena unless the kernel has
//! LDIMM64_FULL_RANGE_OFF (then in its last pages); the expected offset is computed the same way
//! from the probe crate's answer.

use bpfload::{Loaded, Loader, Object, RelocKind};
use bpfload_probe::{Feature, Probes};
use bpfload_syscall::arena::page_size;
use bpfload_syscall::{info, prog};
use bpfload_tests::{corpus_dir, fixture, require_root, serial};

/// Initial values, from tests/bpf/arena.bpf.c (`.addr_space.1`: magic u64, answer u32, name[12]).
const MAGIC: u64 = 0x1122_3344_5566_7788;
const ANSWER: u32 = 42;
const NAME: &[u8; 12] = b"bpfload\0\0\0\0\0";
const ARENA_PAGES: usize = 4;
const DATA_LEN: usize = 24;

fn run(l: &Loaded, name: &str) -> u32 {
    let p = l
        .program(name)
        .unwrap_or_else(|| panic!("program {name} not loaded"));
    prog::test_run_syscall(p.fd(), &[]).expect("BPF_PROG_TEST_RUN")
}

fn data_offset() -> usize {
    if Probes::global().supported(Feature::Ldimm64FullRangeOff) {
        ARENA_PAGES * page_size() - DATA_LEN.div_ceil(page_size()) * page_size()
    } else {
        0
    }
}

#[test]
fn fixture_arena_globals_are_mapped_with_initial_values() {
    if !require_root("arena fixture load") {
        return;
    }
    let _g = serial();
    let obj = Object::open_file(fixture("arena.bpf.o")).expect("open arena.bpf.o");
    let m = obj.maps().iter().find(|m| m.name() == "arena").unwrap();
    assert_eq!(m.initial_data().map(<[u8]>::len), Some(DATA_LEN));
    let l = Loader::new().load(&obj).expect("load arena.bpf.o");
    let lm = l.map("arena").expect("arena map");
    let a = lm.arena().expect("arena mapping kept after load");
    assert_eq!(a.len(), ARENA_PAGES * page_size());
    // The kernel's view: the arena's user address is where we mapped it.
    let mi = info::map_info(lm.fd()).unwrap();
    assert_eq!(mi.map_extra, 0, "no map_extra in the fixture");

    let off = data_offset();
    let mut buf = [0u8; DATA_LEN];
    a.read(off, &mut buf).unwrap();
    assert_eq!(u64::from_ne_bytes(buf[0..8].try_into().unwrap()), MAGIC);
    assert_eq!(u32::from_ne_bytes(buf[8..12].try_into().unwrap()), ANSWER);
    assert_eq!(&buf[12..24], NAME);

    // The programs return the low 32 bits of the globals' addresses, as the kernel resolved them.
    let base = a.addr() + off as u64;
    assert_eq!(run(&l, "answer_addr"), (base + 8) as u32);
    assert_eq!(run(&l, "name_addr"), (base + 12) as u32);
    // A page allocated by the program is visible through the same mapping, inside the arena and
    // not over the globals' page, which the initial copy already populated.
    let page = run(&l, "alloc_page");
    assert_ne!(page, 0, "bpf_arena_alloc_pages failed");
    let page_off = page.wrapping_sub(a.addr() as u32) as usize;
    assert!(
        page_off < a.len() && page_off.is_multiple_of(page_size()),
        "{page_off:#x}"
    );
    assert_ne!(page_off / page_size(), off / page_size());
}

#[test]
fn corpus_arena_object_loads_whole() {
    if !require_root("corpus arena load") {
        return;
    }
    let Some(dir) = corpus_dir() else {
        eprintln!("SKIP corpus arena: no shared corpus");
        return;
    };
    let _g = serial();
    let obj = Object::open_file(dir.join("cilium-ebpf/testdata/arena-el.elf")).expect("open");
    let l = Loader::new()
        .load(&obj)
        .expect("arena-el.elf loads, as with libbpf");
    let lm = l.map("arena").expect("arena map");
    let def = lm.def();
    assert_eq!(def.map_extra, 1 << 44);
    let a = lm.arena().expect("arena mapping");
    // map_extra fixes the address: libbpf maps there with MAP_FIXED, we with MAP_FIXED_NOREPLACE.
    assert_eq!(a.addr(), 1 << 44);
    assert_eq!(a.len(), def.max_entries as usize * page_size());
    assert_eq!(info::map_info(lm.fd()).unwrap().map_extra, 1 << 44);
}

#[test]
fn arena_globals_relocate_against_the_arena_map() {
    let obj = Object::open_file(fixture("arena.bpf.o")).expect("open");
    let arena_idx = obj.maps().iter().position(|m| m.name() == "arena").unwrap();
    let p = obj.program("answer_addr").unwrap();
    assert!(p
        .relocations()
        .iter()
        .any(|r| r.kind == RelocKind::MapValue { map: arena_idx } && r.sym_off == 8));
}

/// The fixture with the arena map's `type` changed to ARRAY (2) in its BTF definition: the
/// `int (*type)[33]` member is a BTF ARRAY type with 33 elements.
fn fixture_without_arena_map() -> Vec<u8> {
    let mut bytes = std::fs::read(fixture("arena.bpf.o")).unwrap();
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
    let hits: Vec<usize> = (0..bytes.len().saturating_sub(24))
        .filter(|&i| i % 4 == 0)
        .filter(|&i| u32_at(&bytes, i) == 3 << 24 && u32_at(&bytes, i + 4) == 0)
        .filter(|&i| u32_at(&bytes, i + 16) == 33)
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "one BTF ARRAY with 33 elements in the fixture"
    );
    bytes[hits[0] + 16..hits[0] + 20].copy_from_slice(&2u32.to_le_bytes());
    bytes
}

#[test]
fn arena_data_needs_an_arena_map() {
    let bytes = fixture_without_arena_map();
    let e = Object::open_bytes("arena.bpf.o", &bytes).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(".addr_space.1") && msg.contains("ARENA map should be explicitly declared"),
        "{msg}"
    );
}
