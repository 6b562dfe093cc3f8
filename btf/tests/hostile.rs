//! Hostile inputs: every malformed blob is an error (never a panic, hang or stack overflow), and
//! parsing allocates in proportion to the input, not to counts the input claims.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bpfload_btf::raw::{info_enc, Kind};
use bpfload_btf::{Btf, BtfError, BtfExt, BtfModel};

/// Counts bytes requested from the allocator per thread (tests run in parallel), to bound what
/// parsing allocates.
struct Counting;
thread_local! {
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

fn allocated() -> usize {
    ALLOCATED.with(Cell::get)
}

fn count(n: usize) {
    // `try_with`: the thread-local may be gone while a thread is exiting.
    let _ = ALLOCATED.try_with(|c| c.set(c.get().wrapping_add(n)));
}

// SAFETY: forwards to the system allocator unchanged; only adds a thread-local counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

use common::{raw_blob as blob, Rng};

fn set_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_ne_bytes());
}

#[test]
fn huge_vlen_with_short_data_is_truncation_error_with_small_allocation() {
    // STRUCT claiming 65535 members (786 KB) with 12 bytes of member data.
    let b = blob(
        &[1, info_enc(Kind::Struct, false, 0xffff), 8, 0, 0, 0],
        b"\0s\0",
    );
    let before = allocated();
    let err = Btf::parse(&b).unwrap_err();
    let used = allocated() - before;
    assert!(
        matches!(err, BtfError::TypeTruncated { id: 1, .. }),
        "{err}"
    );
    assert!(used < 4096, "parsing a 50-byte blob allocated {used} bytes");
}

#[test]
fn header_problems_are_errors() {
    assert!(matches!(Btf::parse(&[]), Err(BtfError::ShortHeader { .. })));
    let good = blob(&[], b"\0");
    Btf::parse(&good).unwrap();

    let mut b = good.clone();
    b[0] = 0;
    assert!(matches!(Btf::parse(&b), Err(BtfError::BadMagic { .. })));
    let mut b = good.clone();
    b[2] = 2;
    assert!(matches!(
        Btf::parse(&b),
        Err(BtfError::BadVersion { version: 2 })
    ));
    for hdr_len in [0u32, 23, 1 << 20, u32::MAX] {
        let mut b = good.clone();
        set_u32(&mut b, 4, hdr_len);
        assert!(
            matches!(Btf::parse(&b), Err(BtfError::BadHeader { .. })),
            "hdr_len {hdr_len}"
        );
    }
    // Sections past the end, including 32-bit wrap-around attempts.
    for (off, v) in [(12, u32::MAX), (16, u32::MAX), (20, 1000), (20, u32::MAX)] {
        let mut b = good.clone();
        set_u32(&mut b, off, v);
        assert!(Btf::parse(&b).is_err(), "field at {off} = {v}");
    }
    // Unaligned type section.
    let mut b = good.clone();
    set_u32(&mut b, 8, 1);
    assert!(Btf::parse(&b).is_err());
}

#[test]
fn string_section_problems_are_errors() {
    // Not NUL-terminated.
    assert!(matches!(
        Btf::parse(&blob(&[], b"\0ab")),
        Err(BtfError::BadStrings { .. })
    ));
    // Base BTF must start with the empty string.
    assert!(matches!(
        Btf::parse(&blob(&[], b"a\0")),
        Err(BtfError::BadStrings { .. })
    ));
    // Empty string section.
    assert!(Btf::parse(&blob(&[], b"")).is_err());
}

#[test]
fn string_offset_past_end_is_an_error_when_used() {
    let b = blob(&[1000, info_enc(Kind::Int, false, 0), 4, 32], b"\0int\0");
    let btf = Btf::parse(&b).unwrap();
    assert!(matches!(
        btf.name(1),
        Err(BtfError::InvalidStringOffset { offset: 1000, .. })
    ));
    assert!(btf.str_at(u32::MAX).is_err());
    // The index skips unreadable names instead of failing lookups of others.
    assert_eq!(btf.find_by_name_kind("int", Kind::Int), None);
    assert!(BtfModel::from_btf(&btf).is_ok());
}

#[test]
fn unknown_kinds_and_bad_ids_are_errors() {
    let b = blob(&[0, 31 << 24, 0], b"\0");
    assert!(matches!(
        Btf::parse(&b),
        Err(BtfError::UnknownKind {
            id: 1,
            kind: 31,
            ..
        })
    ));
    // Kind 0 (UNKN) is only valid for the implicit void.
    assert!(Btf::parse(&blob(&[0, 0, 0], b"\0")).is_err());
    let b = blob(&[0, info_enc(Kind::Ptr, false, 0), 7], b"\0");
    let btf = Btf::parse(&b).unwrap();
    assert!(matches!(
        btf.type_by_id(2),
        Err(BtfError::InvalidTypeId { id: 2, .. })
    ));
    assert!(btf.type_by_id(u32::MAX).is_err());
    // PTR to a missing id: resolving through it fails cleanly.
    assert!(btf.skip_mods_and_typedefs(1).is_ok());
    assert!(
        btf.resolve_size(1).is_ok(),
        "pointers are 8 bytes without looking at the target"
    );
}

#[test]
fn type_loops_are_errors_not_hangs() {
    // [1] typedef a -> [2], [2] const -> [1]; [3] array of itself; [4] volatile -> [4].
    let b = blob(
        &[
            1,
            info_enc(Kind::Typedef, false, 0),
            2,
            0,
            info_enc(Kind::Const, false, 0),
            1,
            0,
            info_enc(Kind::Array, false, 0),
            0,
            3,
            3,
            2,
            0,
            info_enc(Kind::Volatile, false, 0),
            4,
        ],
        b"\0a\0",
    );
    let btf = Btf::parse(&b).unwrap();
    for id in 1..=4 {
        assert!(
            matches!(
                btf.resolve_size(id),
                Err(BtfError::TooDeep { .. }) | Err(BtfError::SizeOverflow { .. })
            ),
            "resolve_size({id}) = {:?}",
            btf.resolve_size(id)
        );
    }
    for id in [1, 2, 4] {
        assert!(matches!(
            btf.skip_mods_and_typedefs(id),
            Err(BtfError::TooDeep { .. })
        ));
    }
}

#[test]
fn array_size_overflow_is_an_error() {
    let mut m = BtfModel::new();
    let int = m.add_int("int", 4, 0);
    let a = m.add_array(int, int, u32::MAX);
    let aa = m.add_array(a, int, 2);
    let bytes = m.to_bytes().unwrap();
    let btf = Btf::parse(&bytes).unwrap();
    assert!(matches!(
        btf.resolve_size(a),
        Err(BtfError::SizeOverflow { .. })
    ));
    assert!(matches!(
        btf.resolve_size(aa),
        Err(BtfError::SizeOverflow { .. })
    ));
}

fn ext_blob(func_info: &[u32]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xeb9fu16.to_ne_bytes());
    out.extend_from_slice(&[1, 0]);
    let fl = (func_info.len() * 4) as u32;
    for w in [32u32, 0, fl, fl, 0, fl, 0] {
        out.extend_from_slice(&w.to_ne_bytes());
    }
    for w in func_info {
        out.extend_from_slice(&w.to_ne_bytes());
    }
    out
}

#[test]
fn ext_hostile_inputs_are_errors() {
    let good = ext_blob(&[8, 1, 1, 0, 5]);
    let ext = BtfExt::parse(&good).unwrap();
    let secs: Vec<_> = ext.func_info.sections().collect();
    assert_eq!(secs.len(), 1);
    assert_eq!(secs[0].get(0).unwrap().type_id, 5);

    for bad in [
        ext_blob(&[8, 1, u32::MAX, 0, 5]), // num_info huge
        ext_blob(&[8, 1, 0]),              // num_info 0
        ext_blob(&[0, 1, 1, 0, 5]),        // record size 0
        ext_blob(&[6, 1, 1, 0, 5]),        // below minimum
        ext_blob(&[10, 1, 1, 0, 5]),       // not a multiple of 4
        ext_blob(&[8]),                    // no records
        ext_blob(&[8, 1]),                 // truncated block header
    ] {
        let before = allocated();
        assert!(BtfExt::parse(&bad).is_err(), "{bad:?}");
        let used = allocated() - before;
        assert!(used < 4096, "allocated {used}");
    }
    let mut b = good.clone();
    set_u32(&mut b, 4, u32::MAX);
    assert!(BtfExt::parse(&b).is_err());
    let mut b = good.clone();
    set_u32(&mut b, 12, u32::MAX); // func_info_len
    assert!(BtfExt::parse(&b).is_err());
    let mut b = good.clone();
    set_u32(&mut b, 8, 2); // misaligned offset
    assert!(BtfExt::parse(&b).is_err());
    assert!(BtfExt::parse(&good[..10]).is_err());
    // A header and nothing else: libbpf's "BTF.ext has no data" (found by review).
    assert!(BtfExt::parse(&ext_blob(&[])).is_err());
}

/// Exercises every accessor; must never panic.
fn poke(btf: &Btf<'_>) {
    for id in 0..btf.len() + 2 {
        let _ = btf.name(id);
        let _ = btf.resolve_size(id);
        let _ = btf.skip_mods_and_typedefs(id);
        if let Ok(t) = btf.type_by_id(id) {
            if let Some(c) = t.as_composite() {
                for m in c.members() {
                    let _ = btf.str_at(m.name_off);
                    let _ = btf.resolve_size(m.type_id);
                }
            }
            if let Some(e) = t.as_enum() {
                e.values().for_each(|v| drop(btf.str_at(v.name_off)));
            }
        }
    }
    let _ = btf.find_by_name_kind("s", Kind::Struct);
    let _ = BtfModel::from_btf(btf).map(|m| m.to_bytes());
}

#[test]
fn random_mutations_never_panic() {
    let mut m = BtfModel::new();
    let int = m.add_int("int", 4, 1);
    let p = m.add_ptr(int);
    let arr = m.add_array(int, int, 4);
    let s = m.add_bitfield_composite(false, "s", 24, &[("a", int, 0, 3), ("b", p, 64, 0)]);
    m.add_union("u", 16, &[("x", arr, 0), ("y", s, 0)]);
    m.add_enum("e", true, &[("A", -1)]);
    m.add_enum64("e64", false, &[("B", 1 << 33)]);
    let proto = m.add_func_proto(int, &[("ctx", p)]);
    let f = m.add_func("f", proto, bpfload_btf::FuncLinkage::Global);
    m.add_decl_tag("arg:ctx", f, 0);
    let v = m.add_var("v", int, bpfload_btf::VarLinkage::GlobalAllocated);
    m.add_datasec(".data", 4, &[(v, 0, 4)]);
    m.add_type_tag("user", int);
    m.add_float("float", 4);
    m.add_fwd("fw", true);
    let bytes = m.to_bytes().unwrap();
    poke(&Btf::parse(&bytes).unwrap());

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut parsed = 0;
    for _ in 0..20_000 {
        let mut b = bytes.clone();
        for _ in 0..1 + rng.next() % 4 {
            let i = (rng.next() as usize) % b.len();
            b[i] = match rng.next() % 3 {
                0 => rng.next() as u8,
                1 => 0xff,
                _ => b[i] ^ (1 << (rng.next() % 8)),
            };
        }
        if rng.next().is_multiple_of(8) {
            let cut = (rng.next() as usize) % b.len();
            b.truncate(cut);
        }
        if let Ok(btf) = Btf::parse(&b) {
            parsed += 1;
            poke(&btf);
        }
        let _ = BtfExt::parse(&b);
    }
    assert!(
        parsed > 1000,
        "mutations too destructive to test decoding ({parsed})"
    );
}
