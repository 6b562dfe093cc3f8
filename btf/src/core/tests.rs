//! Unit tests on hand-built local and target BTF. Expected values are
//! derived in the comments from the types each test builds.

use aya_obj::generated::bpf_insn;

use super::testbtf::{insn, B};
use super::*;
use crate::Btf;

const LDX_W: u8 = 0x61;
const LDX_DW: u8 = 0x79;
const MOV_K: u8 = 0xb7;
const LSH_K: u8 = 0x67;
const RSH_K: u8 = 0x77;
const LD_IMM64: u8 = 0x18;
const CALL: u8 = 0x85;

struct Case {
    local: B,
    relos: Vec<CoreRelo>,
}

impl Case {
    fn new(local: B) -> Self {
        Case {
            local,
            relos: Vec::new(),
        }
    }
    fn relo(&mut self, insn_idx: u32, type_id: u32, access: &str, kind: CoreReloKind) {
        let access_str_off = self.local.s(access);
        self.relos.push(CoreRelo {
            insn_off: insn_idx * 8,
            type_id,
            access_str_off,
            kind: kind as u32,
        });
    }
    /// Relocates twice, once with the one-pass candidate scan (fresh target,
    /// no name index) and once through the name index, and checks that both
    /// give the same results and instructions.
    fn run(&self, target: &B, insns: &mut [bpf_insn]) -> Result<Vec<CoreReloResult>, CoreError> {
        let lb = self.local.finish();
        let tb = target.finish();
        let local = Btf::parse(&lb).expect("local BTF parses");
        let scanned = Btf::parse(&tb).expect("target BTF parses");
        let indexed = Btf::parse(&tb).expect("target BTF parses");
        indexed.build_index();
        let mut insns2 = insns.to_vec();
        let r1 = relocate_program(
            &local,
            self.relos.iter().copied(),
            insns,
            &Targets::new("target", scanned),
        );
        let r2 = relocate_program(
            &local,
            self.relos.iter().copied(),
            &mut insns2,
            &Targets::new("target", indexed),
        );
        assert_eq!(r1, r2, "scan and index paths differ");
        assert_eq!(
            insns_to_bytes(insns),
            insns_to_bytes(&insns2),
            "scan and index paths patch differently"
        );
        r1
    }
}

fn mov(imm: i32) -> bpf_insn {
    insn(MOV_K, 1, 0, 0, imm)
}

fn assert_poisoned(i: &bpf_insn) {
    assert_eq!(
        (i.code, i.dst_reg(), i.src_reg(), i.off, i.imm),
        (CALL, 0, 0, 0, POISON_IMM)
    );
}

/// local: [1] int, [2] unsigned int, [3] struct s { int a; unsigned int b; } (size 8)
fn local_s() -> B {
    let mut l = B::new();
    let int = l.int("int", 4, true);
    let uint = l.int("unsigned int", 4, false);
    l.st("s", 8, &[("a", int, 0, 0), ("b", uint, 32, 0)]);
    l
}

/// target: [1] int, [2] unsigned int, [3] long,
/// [4] struct s { long x; unsigned int b; int a; } (size 24): b at 8, a at 16
fn target_s() -> B {
    let mut t = B::new();
    let int = t.int("int", 4, true);
    let uint = t.int("unsigned int", 4, false);
    let long = t.int("long", 8, true);
    t.st(
        "s",
        24,
        &[("x", long, 0, 0), ("b", uint, 64, 0), ("a", int, 128, 0)],
    );
    t
}

#[test]
fn field_offset_size_exists_signed() {
    let mut c = Case::new(local_s());
    c.relo(0, 3, "0:1", CoreReloKind::FieldByteOffset);
    c.relo(1, 3, "0:0", CoreReloKind::FieldByteOffset);
    c.relo(2, 3, "0:1", CoreReloKind::FieldByteSize);
    c.relo(3, 3, "0:0", CoreReloKind::FieldExists);
    c.relo(4, 3, "0:0", CoreReloKind::FieldSigned);
    c.relo(5, 3, "0:1", CoreReloKind::FieldSigned);
    let mut insns = [
        insn(LDX_W, 1, 2, 4, 0),
        mov(0),
        mov(4),
        mov(1),
        mov(1),
        mov(0),
    ];
    let res = c.run(&target_s(), &mut insns).unwrap();
    assert_eq!(insns[0].off, 8);
    assert_eq!(insns[0].code, LDX_W);
    assert_eq!(insns[1].imm, 16);
    assert_eq!(insns[2].imm, 4);
    assert_eq!(insns[3].imm, 1);
    assert_eq!(insns[4].imm, 1);
    assert_eq!(insns[5].imm, 0);
    assert_eq!(res.len(), 6);
    assert_eq!(res[0].target.as_ref().unwrap().type_id, 4);
    assert_eq!((res[0].orig_val, res[0].new_val), (4, 8));
    assert_eq!(res[0].outcome, Outcome::Patched { mem_size: None });
    assert_eq!(
        res[0].local_spec,
        "<byte_off> [3] struct s.b (0:1 @ offset 4)"
    );
    assert_eq!(
        res[0].target.as_ref().unwrap().spec,
        "<byte_off> [4] struct s.b (0:1 @ offset 8)"
    );
    assert_eq!(
        res[0].to_string(),
        "#0 insn 0 byte_off: <byte_off> [3] struct s.b (0:1 @ offset 4) => target <byte_off> [4] struct s.b (0:1 @ offset 8): 4 -> 8"
    );
}

#[test]
fn missing_field_exists_zero_and_poison() {
    let mut l = B::new();
    let int = l.int("int", 4, true);
    l.st("s", 8, &[("a", int, 0, 0), ("gone", int, 32, 0)]);
    let mut t = B::new();
    let tint = t.int("int", 4, true);
    t.st("s", 4, &[("a", tint, 0, 0)]);
    let mut c = Case::new(l);
    c.relo(0, 2, "0:1", CoreReloKind::FieldExists);
    c.relo(1, 2, "0:1", CoreReloKind::FieldByteOffset);
    c.relo(2, 2, "0:1", CoreReloKind::FieldByteSize);
    let mut insns = [mov(1), insn(LDX_W, 3, 4, 4, 0), mov(4)];
    let res = c.run(&t, &mut insns).unwrap();
    assert_eq!(insns[0].imm, 0);
    assert_eq!(res[0].outcome, Outcome::Patched { mem_size: None });
    assert_poisoned(&insns[1]);
    assert_poisoned(&insns[2]);
    assert_eq!(res[1].outcome, Outcome::Poisoned(PoisonReason::NoTarget));
    assert!(res[1].target.is_none());
    assert_eq!(res[1].candidates, 1);
}

#[test]
fn load_size_adjustment() {
    // local: struct s { unsigned int u; int i; }; target: struct s { long pad;
    // unsigned long u; long i; }: u grows to 8 bytes at 8 (unsigned: the load
    // widens to DW), i grows to 8 bytes signed (cannot: poisoned).
    let mut l = B::new();
    let int = l.int("int", 4, true);
    let uint = l.int("unsigned int", 4, false);
    l.st("s", 8, &[("u", uint, 0, 0), ("i", int, 32, 0)]);
    let mut t = B::new();
    let long = t.int("long", 8, true);
    let ulong = t.int("unsigned long", 8, false);
    t.st(
        "s",
        24,
        &[
            ("pad", long, 0, 0),
            ("u", ulong, 64, 0),
            ("i", long, 128, 0),
        ],
    );
    let mut c = Case::new(l);
    c.relo(0, 3, "0:0", CoreReloKind::FieldByteOffset);
    c.relo(1, 3, "0:1", CoreReloKind::FieldByteOffset);
    let mut insns = [insn(LDX_W, 1, 2, 0, 0), insn(LDX_W, 1, 2, 4, 0)];
    let res = c.run(&t, &mut insns).unwrap();
    assert_eq!(
        (
            insns[0].code,
            insns[0].off,
            insns[0].dst_reg(),
            insns[0].src_reg()
        ),
        (LDX_DW, 8, 1, 2)
    );
    assert_eq!(
        res[0].outcome,
        Outcome::Patched {
            mem_size: Some((4, 8))
        }
    );
    assert_poisoned(&insns[1]);
    assert_eq!(
        res[1].outcome,
        Outcome::Poisoned(PoisonReason::MemSizeAdjust)
    );
}

#[test]
fn bitfields() {
    // local: struct bits { int x; u8 a:4 (bit 32); u8 b:2 (bit 36); u64 w:10 (bit 60) }
    // target: struct bits { u8 b:2 (bit 0); u8 a:4 (bit 2); u8 c:4 (bit 6); u64 w:10 (bit 60) }
    let mut l = B::new();
    let int = l.int("int", 4, true);
    let u8_ = l.int("u8", 1, false);
    let u64_ = l.int("u64", 8, false);
    let bits = l.st(
        "bits",
        16,
        &[
            ("x", int, 0, 0),
            ("a", u8_, 32, 4),
            ("b", u8_, 36, 2),
            ("w", u64_, 60, 10),
            ("c", u8_, 40, 4),
        ],
    );
    let mut t = B::new();
    let tu8 = t.int("u8", 1, false);
    let tu64 = t.int("u64", 8, false);
    t.st(
        "bits",
        16,
        &[
            ("b", tu8, 0, 2),
            ("a", tu8, 2, 4),
            ("c", tu8, 6, 4),
            ("w", tu64, 60, 10),
        ],
    );
    let mut c = Case::new(l);
    // a: local bit_off 32, 4 bits, u8: byte_off 4, size 1, lshift 64-4 = 60, rshift 60.
    //    target bit_off 2: byte_off 0, size 1, lshift 64-(2+4) = 58, rshift 60.
    c.relo(0, bits, "0:1", CoreReloKind::FieldByteOffset);
    c.relo(1, bits, "0:1", CoreReloKind::FieldByteSize);
    c.relo(2, bits, "0:1", CoreReloKind::FieldLShiftU64);
    c.relo(3, bits, "0:1", CoreReloKind::FieldRShiftU64);
    // c: local bit 40, 4 bits: byte_off 5, size 1, lshift 64-(40+4-40) = 60.
    //    target bit 6, 4 bits: crosses a byte, so the load widens to 2 bytes at 0,
    //    lshift 64-(6+4) = 54.
    c.relo(4, bits, "0:4", CoreReloKind::FieldByteSize);
    c.relo(5, bits, "0:4", CoreReloKind::FieldLShiftU64);
    c.relo(6, bits, "0:4", CoreReloKind::FieldSigned);
    let mut insns = [
        mov(4),
        mov(1),
        insn(LSH_K, 1, 0, 0, 60),
        insn(RSH_K, 1, 0, 0, 60),
        mov(1),
        insn(LSH_K, 1, 0, 0, 60),
        mov(0),
    ];
    let res = c.run(&t, &mut insns).unwrap();
    let got: Vec<i32> = insns.iter().map(|i| i.imm).collect();
    assert_eq!(got, vec![0, 1, 58, 60, 2, 54, 0]);
    assert_eq!(res[0].orig_val, 4);

    // w: target bit 60 with 10 bits in a u64 needs bytes 7..9: no 64-bit load
    // covers it, which libbpf reports as an error (not a poison).
    let mut c2 = Case::new(c.local);
    c2.relo(0, bits, "0:3", CoreReloKind::FieldByteOffset);
    let mut insns = [mov(0)];
    // the local side already fails the same way
    assert!(matches!(
        c2.run(&t, &mut insns),
        Err(CoreError::Calc {
            source: CalcError::Bitfield,
            ..
        })
    ));
}

#[test]
fn type_relocations() {
    // local: [1] int, [2] struct s (size 4), [3] typedef s_t -> s, [4] struct nope
    let mut l = B::new();
    let int = l.int("int", 4, true);
    let s = l.st("s", 4, &[("a", int, 0, 0)]);
    let s_t = l.typedef("s_t", s);
    let nope = l.st("nope", 4, &[("a", int, 0, 0)]);
    // target: [1] long, [2] int, [3] struct s (size 16), [4] typedef s_t -> s
    let mut t = B::new();
    let long = t.int("long", 8, true);
    let tint = t.int("int", 4, true);
    let ts = t.st("s", 16, &[("pad", long, 0, 0), ("a", tint, 64, 0)]);
    let ts_t = t.typedef("s_t", ts);
    let mut c = Case::new(l);
    c.relo(0, s, "0", CoreReloKind::TypeIdLocal);
    c.relo(1, s, "0", CoreReloKind::TypeIdTarget);
    c.relo(2, s_t, "0", CoreReloKind::TypeExists);
    c.relo(3, s, "0", CoreReloKind::TypeSize);
    c.relo(4, s_t, "0", CoreReloKind::TypeSize);
    c.relo(5, nope, "0", CoreReloKind::TypeExists);
    c.relo(6, nope, "0", CoreReloKind::TypeSize);
    c.relo(7, nope, "0", CoreReloKind::TypeIdTarget);
    let mut insns = [
        mov(s as i32),
        mov(s as i32),
        mov(1),
        mov(4),
        mov(4),
        mov(1),
        mov(4),
        mov(nope as i32),
    ];
    let res = c.run(&t, &mut insns).unwrap();
    let got: Vec<i32> = insns.iter().map(|i| i.imm).collect();
    assert_eq!(got, vec![s as i32, ts as i32, 1, 16, 16, 0, 0, 0]);
    assert_eq!(res[2].target.as_ref().unwrap().type_id, ts_t);
    assert!(res[5].target.is_none());
    // missing types give 0, they are not poisoned
    assert_eq!(res[6].outcome, Outcome::Patched { mem_size: None });
}

#[test]
fn type_matches() {
    // local struct m { int a; struct m *next; }
    let mut l = B::new();
    let int = l.int("int", 4, true);
    let m_id = l.next_id() + 1;
    let p = l.ptr(m_id);
    let m = l.st("m", 16, &[("a", int, 0, 0), ("next", p, 64, 0)]);
    assert_eq!(m, m_id);
    // target 1: struct m { long z; struct m *next; int a; } -> members match by name
    let mut t1 = B::new();
    let tint = t1.int("int", 4, true);
    let tlong = t1.int("long", 8, true);
    let tm_id = t1.next_id() + 1;
    let tp = t1.ptr(tm_id);
    t1.st(
        "m",
        24,
        &[("z", tlong, 0, 0), ("next", tp, 64, 0), ("a", tint, 128, 0)],
    );
    // target 2: struct m { long a; struct m *next; } -> 'a' has another size: no match
    let mut t2 = B::new();
    let t2long = t2.int("long", 8, true);
    let t2m = t2.next_id() + 1;
    let t2p = t2.ptr(t2m);
    t2.st("m", 16, &[("a", t2long, 0, 0), ("next", t2p, 64, 0)]);
    let mut c = Case::new(l);
    c.relo(0, m, "0", CoreReloKind::TypeMatches);
    c.relo(1, m, "0", CoreReloKind::TypeExists);
    let mut insns = [mov(1), mov(1)];
    c.run(&t1, &mut insns).unwrap();
    assert_eq!((insns[0].imm, insns[1].imm), (1, 1));
    let mut insns = [mov(1), mov(1)];
    c.run(&t2, &mut insns).unwrap();
    // compatible (any two structs are) but not matching
    assert_eq!((insns[0].imm, insns[1].imm), (0, 1));
}

#[test]
fn enum_values() {
    // local: enum e { A = 0, B = 1, C = 2 }, enum64 big { L = 0x1ffffffff }, enum e2 { X___v1 = 1 }
    let mut l = B::new();
    let e = l.enum32("e", 4, false, &[("A", 0), ("B", 1), ("C", 2)]);
    let big = l.enum64("big", false, &[("L", 0x1_ffff_ffff)]);
    let e2 = l.enum32("e2", 4, false, &[("X___v1", 1)]);
    // target: enum e { C = 7, B = 5 }, enum64 big { L = 0x300000000 }, enum64 e2 { X = 5 }
    let mut t = B::new();
    t.enum32("e", 4, false, &[("C", 7), ("B", 5)]);
    t.enum64("big", false, &[("L", 0x3_0000_0000)]);
    t.enum64("e2", false, &[("X", 5)]);
    let mut c = Case::new(l);
    c.relo(0, e, "0", CoreReloKind::EnumvalExists);
    c.relo(1, e, "2", CoreReloKind::EnumvalValue);
    c.relo(2, e, "0", CoreReloKind::EnumvalValue);
    c.relo(3, big, "0", CoreReloKind::EnumvalValue);
    c.relo(5, e2, "0", CoreReloKind::EnumvalValue);
    c.relo(6, e, "1", CoreReloKind::EnumvalExists);
    let mut insns = [
        mov(1),
        mov(2),
        mov(0),
        insn(LD_IMM64, 1, 0, 0, -1),
        insn(0, 0, 0, 0, 1),
        mov(1),
        mov(1),
    ];
    let res = c.run(&t, &mut insns).unwrap();
    assert_eq!(insns[0].imm, 0);
    assert_eq!(insns[1].imm, 7);
    // A is missing from the target: poisoned
    assert_poisoned(&insns[2]);
    assert_eq!(res[2].outcome, Outcome::Poisoned(PoisonReason::NoTarget));
    assert_eq!((insns[3].imm, insns[4].imm), (0, 3));
    assert_eq!(insns[5].imm, 5);
    assert_eq!(insns[6].imm, 1);
    assert_eq!(res[3].orig_val, 0x1_ffff_ffff);
    assert_eq!(res[3].new_val, 0x3_0000_0000);

    // a missing enumerator loaded by ld_imm64: both halves poisoned
    let mut c = Case::new(c.local);
    c.relo(0, e, "0", CoreReloKind::EnumvalValue);
    let mut insns = [insn(LD_IMM64, 1, 0, 0, 0), insn(0, 0, 0, 0, 0), mov(0)];
    c.run(&t, &mut insns).unwrap();
    assert_poisoned(&insns[0]);
    assert_poisoned(&insns[1]);
    assert_eq!(insns[2].code, MOV_K);
}

#[test]
fn negative_enum_value_is_sign_extended() {
    // libbpf reads 32-bit enumerators as __s32, so -4095 compares equal to the
    // compiler's 64-bit ld_imm64 value 0xfffffffffffff001
    let mut l = B::new();
    let e = l.enum32("neg", 8, false, &[("M", 0xffff_f001)]);
    let mut t = B::new();
    t.enum64("neg", false, &[("M", 0xffff_ffff_ffff_f001)]);
    let mut c = Case::new(l);
    c.relo(0, e, "0", CoreReloKind::EnumvalValue);
    let mut insns = [insn(LD_IMM64, 1, 0, 0, -4095), insn(0, 0, 0, 0, -1)];
    let res = c.run(&t, &mut insns).unwrap();
    assert_eq!(res[0].orig_val, 0xffff_ffff_ffff_f001);
    assert_eq!((insns[0].imm, insns[1].imm), (-4095, -1));
}

/// local: struct s___mine { int a; } at [2]
fn local_flavor() -> (B, u32) {
    let mut l = B::new();
    let int = l.int("int", 4, true);
    let s = l.st("s___mine", 4, &[("a", int, 0, 0)]);
    (l, s)
}

#[test]
fn flavors_agreeing_candidates() {
    let (l, s) = local_flavor();
    // target: s and s___x, both with a at 4: candidates agree
    let mut t = B::new();
    let int = t.int("int", 4, true);
    t.st("s", 8, &[("b", int, 0, 0), ("a", int, 32, 0)]);
    t.st("s___x", 8, &[("b", int, 0, 0), ("a", int, 32, 0)]);
    t.st("s_", 8, &[("a", int, 0, 0)]); // not a candidate
    let mut c = Case::new(l);
    c.relo(0, s, "0:0", CoreReloKind::FieldByteOffset);
    let mut insns = [mov(0)];
    let res = c.run(&t, &mut insns).unwrap();
    assert_eq!(insns[0].imm, 4);
    assert_eq!(res[0].candidates, 2);
}

#[test]
fn ambiguity_is_an_error() {
    let (l, s) = local_flavor();
    let mut t = B::new();
    let int = t.int("int", 4, true);
    t.st("s", 8, &[("b", int, 0, 0), ("a", int, 32, 0)]);
    t.st("s___y", 4, &[("a", int, 0, 0)]);
    let mut c = Case::new(l);
    c.relo(0, s, "0:0", CoreReloKind::FieldByteOffset);
    let err = c.run(&t, &mut [mov(0)]).unwrap_err();
    assert!(
        matches!(err, CoreError::OffsetAmbiguity { a: 0, b: 32, .. }),
        "{err}"
    );
    assert!(err.is_ambiguity());

    // two candidates, same offsets, different ids: TYPE_ID_TARGET differs
    let (l, s) = local_flavor();
    let mut c = Case::new(l);
    c.relo(0, s, "0", CoreReloKind::TypeIdTarget);
    let err = c.run(&t, &mut [mov(0)]).unwrap_err();
    assert!(matches!(err, CoreError::Ambiguity { .. }), "{err}");
    assert!(err.to_string().contains("relocation decision ambiguity"));

    // ... but TYPE_EXISTS agrees (1 == 1)
    let (l, s) = local_flavor();
    let mut c = Case::new(l);
    c.relo(0, s, "0", CoreReloKind::TypeExists);
    let mut insns = [mov(1)];
    c.run(&t, &mut insns).unwrap();
    assert_eq!(insns[0].imm, 1);
}

#[test]
fn candidates_are_pruned_within_a_pass() {
    // local s { int a; int b; }; target s (a only) and s___2 (b only).
    let mut l = B::new();
    let int = l.int("int", 4, true);
    let s = l.st("s", 8, &[("a", int, 0, 0), ("b", int, 32, 0)]);
    let mut t = B::new();
    let tint = t.int("int", 4, true);
    t.st("s", 4, &[("a", tint, 0, 0)]);
    t.st("s___2", 8, &[("x", tint, 0, 0), ("b", tint, 32, 0)]);
    let mut c = Case::new(l);
    c.relo(0, s, "0:0", CoreReloKind::FieldExists);
    c.relo(1, s, "0:1", CoreReloKind::FieldExists);
    // the first relocation keeps only `s`, so `b` is not found afterwards,
    // exactly as libbpf's shared candidate cache behaves
    let mut insns = [mov(1), mov(1)];
    c.run(&t, &mut insns).unwrap();
    assert_eq!((insns[0].imm, insns[1].imm), (1, 0));
    // alone, the second relocation finds `b` in s___2
    let mut c2 = Case::new(c.local);
    c2.relo(0, s, "0:1", CoreReloKind::FieldExists);
    let mut insns = [mov(1)];
    c2.run(&t, &mut insns).unwrap();
    assert_eq!(insns[0].imm, 1);
}

#[test]
fn anonymous_members() {
    // local: struct s { int a; }; target: struct s { int x; struct { int pad; int a; }; }
    let mut l = B::new();
    let int = l.int("int", 4, true);
    let s = l.st("s", 4, &[("a", int, 0, 0)]);
    let mut t = B::new();
    let tint = t.int("int", 4, true);
    let anon = t.st("", 8, &[("pad", tint, 0, 0), ("a", tint, 32, 0)]);
    t.st("s", 12, &[("x", tint, 0, 0), ("", anon, 32, 0)]);
    let mut c = Case::new(l);
    c.relo(0, s, "0:0", CoreReloKind::FieldByteOffset);
    let mut insns = [mov(0)];
    let res = c.run(&t, &mut insns).unwrap();
    assert_eq!(insns[0].imm, 8); // 32 + 32 bits
    assert!(
        res[0]
            .target
            .as_ref()
            .unwrap()
            .spec
            .ends_with("(0:1:1 @ offset 8)"),
        "{}",
        res[0].target.as_ref().unwrap().spec
    );

    // an anonymous local type cannot be relocated (except TYPE_ID_LOCAL)
    let mut l = B::new();
    let int = l.int("int", 4, true);
    let anon = l.st("", 4, &[("a", int, 0, 0)]);
    let mut c = Case::new(l);
    c.relo(0, anon, "0", CoreReloKind::TypeIdLocal);
    let mut insns = [mov(anon as i32)];
    c.run(&t, &mut insns).unwrap();
    c.relo(0, anon, "0:0", CoreReloKind::FieldByteOffset);
    let err = c.run(&t, &mut [mov(anon as i32)]).unwrap_err();
    assert!(matches!(err, CoreError::Anonymous { relo: 1, .. }), "{err}");
}

#[test]
fn arrays_and_flexible_arrays() {
    // local: struct s { int n; int arr[]; } (size 4); access s->arr[3] = "0:1:3"
    let mut l = B::new();
    let int = l.int("int", 4, true);
    let idx = l.int("__ARRAY_SIZE_TYPE__", 4, false);
    let flex = l.array(int, idx, 0);
    let s = l.st("s", 4, &[("n", int, 0, 0), ("arr", flex, 32, 0)]);
    // target: struct s { long n; long pad; int arr[]; }
    let mut t = B::new();
    let tint = t.int("int", 4, true);
    let tlong = t.int("long", 8, true);
    let tidx = t.int("__ARRAY_SIZE_TYPE__", 4, false);
    let tflex = t.array(tint, tidx, 0);
    t.st(
        "s",
        16,
        &[
            ("n", tlong, 0, 0),
            ("pad", tlong, 64, 0),
            ("arr", tflex, 128, 0),
        ],
    );
    let mut c = Case::new(l);
    c.relo(0, s, "0:1:3", CoreReloKind::FieldByteOffset); // 4 + 3*4 = 16 -> 16 + 12 = 28
    c.relo(1, s, "0:1:3", CoreReloKind::FieldByteSize); // 4
    c.relo(2, s, "1:0", CoreReloKind::FieldByteOffset); // s[1].n: 4 -> 16
    c.relo(3, s, "0:1:3", CoreReloKind::FieldExists);
    let mut insns = [insn(LDX_W, 1, 2, 16, 0), mov(4), mov(4), mov(1)];
    let res = c.run(&t, &mut insns).unwrap();
    assert_eq!(
        (insns[0].off, insns[1].imm, insns[2].imm, insns[3].imm),
        (28, 4, 16, 1)
    );
    assert_eq!(res[0].outcome, Outcome::Patched { mem_size: None });

    // FIELD_SIGNED on an array element is an error in libbpf
    let mut c2 = Case::new(c.local);
    c2.relo(0, s, "0:1:3", CoreReloKind::FieldSigned);
    let err = c2.run(&t, &mut [mov(1)]).unwrap_err();
    assert!(
        matches!(
            err,
            CoreError::Calc {
                source: CalcError::ArrayAccess(_),
                ..
            }
        ),
        "{err}"
    );

    // a fixed-size target array that is too short: no match, poisoned
    let mut t2 = B::new();
    let tint = t2.int("int", 4, true);
    let tidx = t2.int("__ARRAY_SIZE_TYPE__", 4, false);
    let short = t2.array(tint, tidx, 2);
    t2.st("s", 12, &[("n", tint, 0, 0), ("arr", short, 32, 0)]);
    let mut c3 = Case::new(c2.local);
    c3.relo(0, s, "0:1:3", CoreReloKind::FieldByteOffset);
    c3.relo(1, s, "0:1:1", CoreReloKind::FieldByteOffset);
    let mut insns = [mov(16), mov(8)];
    c3.run(&t2, &mut insns).unwrap();
    assert_poisoned(&insns[0]);
    assert_eq!(insns[1].imm, 8);
}

#[test]
fn patch_errors_are_load_errors() {
    let mut c = Case::new(local_s());
    c.relo(0, 3, "0:1", CoreReloKind::FieldByteOffset);
    // the instruction does not hold the value the compiler would have put there
    let err = c.run(&target_s(), &mut [mov(99)]).unwrap_err();
    assert!(
        matches!(
            err,
            CoreError::Patch {
                source: PatchError::Unexpected {
                    got: 99,
                    exp: 4,
                    ..
                },
                ..
            }
        ),
        "{err}"
    );
    // a jump cannot carry a CO-RE value
    let err = c
        .run(&target_s(), &mut [insn(0x05, 0, 0, 4, 0)])
        .unwrap_err();
    assert!(
        matches!(
            err,
            CoreError::Patch {
                source: PatchError::Unrecognized { .. },
                ..
            }
        ),
        "{err}"
    );
    // ALU with a register source
    let err = c
        .run(&target_s(), &mut [insn(0x0f, 1, 2, 0, 4)])
        .unwrap_err();
    assert!(
        matches!(
            err,
            CoreError::Patch {
                source: PatchError::AluNotImm { .. },
                ..
            }
        ),
        "{err}"
    );
    // ld_imm64 without its second half
    let err = c
        .run(&target_s(), &mut [insn(LD_IMM64, 1, 0, 0, 4)])
        .unwrap_err();
    assert!(
        matches!(
            err,
            CoreError::Patch {
                source: PatchError::LdImm64Form { .. },
                ..
            }
        ),
        "{err}"
    );
    // misplaced records
    let mut c2 = Case::new(local_s());
    c2.relos.push(CoreRelo {
        insn_off: 4,
        type_id: 3,
        access_str_off: 0,
        kind: 0,
    });
    assert!(matches!(
        c2.run(&target_s(), &mut [mov(0)]),
        Err(CoreError::Misaligned { .. })
    ));
    c2.relos[0].insn_off = 8;
    assert!(matches!(
        c2.run(&target_s(), &mut [mov(0)]),
        Err(CoreError::OutOfRange { .. })
    ));
    c2.relos[0].insn_off = 0;
    c2.relos[0].kind = 13;
    assert!(matches!(
        c2.run(&target_s(), &mut [mov(0)]),
        Err(CoreError::UnknownKind { kind: 13, .. })
    ));
}

#[test]
fn offset_too_big_for_ldx() {
    let mut t = B::new();
    let int = t.int("int", 4, true);
    let uint = t.int("unsigned int", 4, false);
    t.st("s", 40008, &[("a", int, 0, 0), ("b", uint, 40000 * 8, 0)]);
    let mut c = Case::new(local_s());
    c.relo(0, 3, "0:1", CoreReloKind::FieldByteOffset);
    let err = c.run(&t, &mut [insn(LDX_W, 1, 2, 4, 0)]).unwrap_err();
    assert!(
        matches!(
            err,
            CoreError::Patch {
                source: PatchError::TooBig { new: 40000, .. },
                ..
            }
        ),
        "{err}"
    );
    // as an ALU immediate it is fine
    let mut insns = [mov(4)];
    c.run(&t, &mut insns).unwrap();
    assert_eq!(insns[0].imm, 40000);
}

#[test]
fn bad_access_strings() {
    let mut c = Case::new(local_s());
    c.relo(0, 3, "0:x", CoreReloKind::FieldByteOffset);
    assert!(matches!(
        c.run(&target_s(), &mut [mov(0)]),
        Err(CoreError::Spec { .. })
    ));
    let mut c = Case::new(local_s());
    c.relo(0, 3, "0:7", CoreReloKind::FieldByteOffset);
    assert!(matches!(
        c.run(&target_s(), &mut [mov(0)]),
        Err(CoreError::Spec { .. })
    ));
    let mut c = Case::new(local_s());
    c.relo(0, 3, "0:0", CoreReloKind::TypeSize);
    assert!(matches!(
        c.run(&target_s(), &mut [mov(0)]),
        Err(CoreError::Spec { .. })
    ));
    let mut c = Case::new(local_s());
    c.relo(0, 99, "0", CoreReloKind::TypeSize);
    assert!(matches!(
        c.run(&target_s(), &mut [mov(0)]),
        Err(CoreError::LocalType { .. })
    ));
}

#[test]
fn hostile_targets_error_without_panic() {
    // member of a bogus type id
    let mut t = B::new();
    t.st("s", 8, &[("a", 999, 0, 0), ("b", 999, 32, 0)]);
    let mut c = Case::new(local_s());
    c.relo(0, 3, "0:1", CoreReloKind::FieldByteOffset);
    let err = c.run(&t, &mut [mov(4)]).unwrap_err();
    assert!(matches!(err, CoreError::Match { .. }), "{err}");

    // a typedef loop: t1 -> t2 -> t1
    let mut t = B::new();
    let t1 = t.next_id();
    t.typedef("t1", t1 + 1);
    t.typedef("t2", t1);
    t.st("s", 8, &[("a", t1, 0, 0), ("b", t1, 32, 0)]);
    let err = c.run(&t, &mut [mov(4)]).unwrap_err();
    assert!(matches!(err, CoreError::Match { .. }), "{err}");

    // anonymous members nested into themselves
    let mut t = B::new();
    let me = t.next_id();
    t.st("s", 8, &[("", me, 0, 0), ("", me, 0, 0)]);
    let err = c.run(&t, &mut [mov(4)]).unwrap_err();
    assert!(matches!(err, CoreError::Match { .. }), "{err}");
}

/// Random byte flips of a valid target: parse may fail, relocation may fail
/// or succeed, nothing may panic.
#[test]
fn mutated_targets_never_panic() {
    let mut base = target_s();
    let tint = 1;
    let e = base.enum32("e", 4, false, &[("A", 0), ("B", 1), ("C", 2)]);
    let _ = (tint, e);
    let good = base.finish();
    let mut l = local_s();
    let e_local = l.enum32("e", 4, false, &[("A", 0), ("B", 1), ("C", 2)]);
    let mut c = Case::new(l);
    c.relo(0, 3, "0:1", CoreReloKind::FieldByteOffset);
    c.relo(1, 3, "0:0", CoreReloKind::FieldLShiftU64);
    c.relo(2, 3, "0", CoreReloKind::TypeMatches);
    c.relo(3, 3, "0", CoreReloKind::TypeSize);
    c.relo(4, e_local, "2", CoreReloKind::EnumvalValue);
    let lb = c.local.finish();
    let local = Btf::parse(&lb).unwrap();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut parsed, mut relocated) = (0, 0);
    for _ in 0..3000 {
        let mut bytes = good.clone();
        for _ in 0..(1 + next() % 4) {
            let at = 24 + (next() as usize % (bytes.len() - 24));
            bytes[at] = next() as u8;
        }
        let Ok(targ) = Btf::parse(&bytes) else {
            continue;
        };
        parsed += 1;
        let targets = Targets::new("fuzz", targ);
        let mut insns = [
            insn(LDX_W, 1, 2, 4, 0),
            insn(LSH_K, 1, 0, 0, 32),
            mov(1),
            mov(8),
            mov(2),
        ];
        relocated +=
            relocate_program(&local, c.relos.iter().copied(), &mut insns, &targets).is_ok() as u32;
    }
    // the test must actually exercise the engine on damaged input
    assert!(
        parsed > 1000 && relocated > 100,
        "parsed {parsed}, relocated {relocated}"
    );
}

fn module_targets(
    base: &B,
    modules: &[(&str, Vec<u8>)],
) -> (
    std::sync::Arc<crate::BtfData>,
    Vec<std::sync::Arc<crate::kernel::ModuleBtf>>,
) {
    let base = std::sync::Arc::new(crate::BtfData::parse(base.finish()).unwrap());
    let mods = modules
        .iter()
        .map(|(name, bytes)| {
            std::sync::Arc::new(crate::kernel::ModuleBtf {
                name: name.to_string(),
                data: crate::BtfData::parse_split(bytes.clone(), base.clone()).unwrap(),
            })
        })
        .collect();
    (base, mods)
}

#[test]
fn module_btf_only_when_vmlinux_has_no_candidate() {
    use super::testbtf::Split;
    // local: struct modstruct { int a; int b; } and struct s { int a; }
    let mut l = B::new();
    let int = l.int("int", 4, true);
    let ms = l.st("modstruct", 8, &[("a", int, 0, 0), ("b", int, 32, 0)]);
    let s = l.st("s", 4, &[("a", int, 0, 0)]);
    // "vmlinux": int, struct s { long pad; int a; }
    let mut v = B::new();
    let vint = v.int("int", 4, true);
    let vlong = v.int("long", 8, true);
    v.st("s", 16, &[("pad", vlong, 0, 0), ("a", vint, 64, 0)]);
    let vbytes = v.finish();
    let vbtf = Btf::parse(&vbytes).unwrap();
    // module "m1": struct modstruct { int b; int a; } and its own struct s { int a; }
    let mut m1 = Split::new(&vbtf);
    let m1_ms = m1.st("modstruct", 8, &[("b", vint, 0), ("a", vint, 32)]);
    m1.st("s", 4, &[("a", vint, 0)]);
    // module "m2": nothing relevant
    let mut m2 = Split::new(&vbtf);
    m2.int("u8", 1);
    let (base, mods) = module_targets(&v, &[("m1", m1.finish()), ("m2", m2.finish())]);
    let targets = Targets::with_modules("vmlinux", base.btf(), &mods);

    let mut c = Case::new(l);
    c.relo(0, ms, "0:1", CoreReloKind::FieldByteOffset);
    c.relo(1, s, "0:0", CoreReloKind::FieldByteOffset);
    c.relo(2, ms, "0", CoreReloKind::TypeIdTarget);
    let lb = c.local.finish();
    let local = Btf::parse(&lb).unwrap();
    let mut insns = [mov(4), mov(0), mov(ms as i32)];
    let res = relocate_program(&local, c.relos.iter().copied(), &mut insns, &targets).unwrap();
    // modstruct: only module m1 has it; b is at 0 there
    assert_eq!(insns[0].imm, 0);
    assert_eq!(res[0].target.as_ref().unwrap().btf, "m1");
    assert_eq!(res[0].target.as_ref().unwrap().type_id, m1_ms);
    assert_eq!(insns[2].imm, m1_ms as i32);
    // s: vmlinux has it, so the module's s is never considered
    assert_eq!(insns[1].imm, 8);
    assert_eq!(res[1].target.as_ref().unwrap().btf, "vmlinux");
    assert_eq!(res[1].candidates, 1);
}

#[test]
fn huge_indices_and_sizes_do_not_overflow() {
    // local struct big of size u32::MAX accessed as big[2147483647].a: the
    // bit offset exceeds 64 bits; libbpf's arithmetic wraps, ours must not panic
    let local = || {
        let mut l = B::new();
        let int = l.int("int", 4, true);
        let big = l.st("big", u32::MAX, &[("a", int, 0, 0)]);
        (l, big)
    };
    let mut t = B::new();
    let tint = t.int("int", 4, true);
    t.st(
        "big",
        u32::MAX,
        &[("x", tint, 0, 0), ("a", tint, u32::MAX, 0)],
    );
    let mut ran = 0;
    for access in ["2147483647:0", "0:0", "1:0"] {
        for kind in [
            CoreReloKind::FieldByteOffset,
            CoreReloKind::FieldLShiftU64,
            CoreReloKind::FieldByteSize,
        ] {
            let (l, big) = local();
            let mut c = Case::new(l);
            c.relo(0, big, access, kind);
            // the instruction may not hold what the compiler would have put
            // there (a patch error): only the absence of a panic matters
            let _ = c.run(&t, &mut [mov(0)]);
            ran += 1;
        }
    }
    assert_eq!(ran, 9);
}

/// Random records (type ids, kinds, access strings) on a damaged local BTF
/// against a valid target: errors or poison, never a panic.
#[test]
fn random_records_and_local_never_panic() {
    let mut l = local_s();
    let e = l.enum32("e", 4, false, &[("A", 0), ("B", 1)]);
    let accesses: Vec<u32> = ["0", "0:0", "0:1", "1", "0:1:2", "5:0", "0:0:0:0", "x", ""]
        .iter()
        .map(|a| l.s(a))
        .collect();
    let good = l.finish();
    let _ = e;
    let tb = target_s().finish();
    let targ = Btf::parse(&tb).unwrap();
    let targets = Targets::new("t", targ);
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut ok = 0;
    for round in 0..3000 {
        let mut bytes = good.clone();
        if round % 2 == 1 {
            let at = 24 + (next() as usize % (bytes.len() - 24));
            bytes[at] = next() as u8;
        }
        let Ok(local) = Btf::parse(&bytes) else {
            continue;
        };
        for _ in 0..4 {
            let relo = CoreRelo {
                insn_off: (next() % 4) as u32 * 8,
                type_id: (next() % 8) as u32,
                access_str_off: accesses[next() as usize % accesses.len()],
                kind: (next() % 14) as u32,
            };
            let mut insns = [
                insn(LDX_W, 1, 2, 4, 0),
                mov(0),
                insn(LD_IMM64, 1, 0, 0, 0),
                insn(0, 0, 0, 0, 0),
            ];
            ok += relocate_program(&local, [relo], &mut insns, &targets).is_ok() as u32;
        }
    }
    assert!(ok > 10, "some random record sets must relocate ({ok})");
}

/// A loader's own instruction type works the same as the UAPI `bpf_insn`.
#[test]
fn custom_instruction_type() {
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Raw {
        code: u8,
        dst: u8,
        src: u8,
        off: i16,
        imm: i32,
    }
    impl CoreInsn for Raw {
        fn code(&self) -> u8 {
            self.code
        }
        fn set_code(&mut self, code: u8) {
            self.code = code;
        }
        fn dst_reg(&self) -> u8 {
            self.dst
        }
        fn set_dst_reg(&mut self, reg: u8) {
            self.dst = reg;
        }
        fn src_reg(&self) -> u8 {
            self.src
        }
        fn set_src_reg(&mut self, reg: u8) {
            self.src = reg;
        }
        fn off(&self) -> i16 {
            self.off
        }
        fn set_off(&mut self, off: i16) {
            self.off = off;
        }
        fn imm(&self) -> i32 {
            self.imm
        }
        fn set_imm(&mut self, imm: i32) {
            self.imm = imm;
        }
    }
    let mut c = Case::new(local_s());
    c.relo(0, 3, "0:1", CoreReloKind::FieldByteOffset);
    c.relo(1, 3, "0:1", CoreReloKind::FieldByteOffset);
    let lb = c.local.finish();
    let tb = target_s().finish();
    let local = Btf::parse(&lb).unwrap();
    let targets = Targets::new("t", Btf::parse(&tb).unwrap());
    let mut insns = [
        Raw {
            code: LDX_W,
            dst: 1,
            src: 2,
            off: 4,
            imm: 0,
        },
        Raw {
            code: MOV_K,
            dst: 3,
            src: 0,
            off: 0,
            imm: 4,
        },
    ];
    relocate_program(&local, c.relos.iter().copied(), &mut insns, &targets).unwrap();
    assert_eq!(
        insns[0],
        Raw {
            code: LDX_W,
            dst: 1,
            src: 2,
            off: 8,
            imm: 0
        }
    );
    assert_eq!(
        insns[1],
        Raw {
            code: MOV_K,
            dst: 3,
            src: 0,
            off: 0,
            imm: 8
        }
    );
}

#[test]
fn func_proto_compatibility() {
    // local: int (*)(struct s *, long); target variants
    let mut l = B::new();
    let int = l.int("int", 4, true);
    let long = l.int("long", 8, true);
    let s = l.st("s", 4, &[("a", int, 0, 0)]);
    let ps = l.ptr(s);
    let proto = l.proto(int, &[ps, long]);
    let lb = l.finish();
    let local = Btf::parse(&lb).unwrap();

    let mut t = B::new();
    let tint = t.int("int", 4, true);
    let tlong = t.int("long", 8, true);
    let ts = t.st("s", 64, &[("zzz", tint, 0, 0)]);
    let tps = t.ptr(ts);
    let tconst = t.konst(tlong);
    let same = t.proto(tint, &[tps, tconst]); // modifiers are skipped, struct contents ignored
    let fewer = t.proto(tint, &[tps]);
    let wrong = t.proto(tint, &[tlong, tlong]); // pointer vs int
    let bad_ret = t.proto(tps, &[tps, tlong]);
    let tb = t.finish();
    let targ = Btf::parse(&tb).unwrap();
    assert_eq!(types_are_compat(&local, proto, &targ, same), Ok(true));
    assert_eq!(types_are_compat(&local, proto, &targ, fewer), Ok(false));
    assert_eq!(types_are_compat(&local, proto, &targ, wrong), Ok(false));
    assert_eq!(types_are_compat(&local, proto, &targ, bad_ret), Ok(false));
    // a bogus target id is an error, not a panic
    assert!(types_are_compat(&local, proto, &targ, 9999).is_err());
}

/// The first CO-RE pass over the kernel's BTF scans its keys (no index yet): for names of every
/// non-FUNC kind, flavored and absent ones too, in one pass, the scan must give exactly what the
/// index built afterwards gives (ENUM and ENUM64 answer each other, as in libbpf).
#[test]
fn kernel_key_scan_equals_the_index() {
    use super::view::{k, View};
    use crate::raw::Kind;
    let Ok(fresh) = crate::kernel::load_vmlinux_uncached() else {
        eprintln!("SKIP: no vmlinux BTF");
        return;
    };
    let btf = fresh.btf();
    assert!(!btf.is_indexed());
    let mut wanted: Vec<(String, u8)> = Vec::new();
    for id in btf.ids().step_by(211) {
        let (Ok(name), Ok(kind)) = (btf.name(id), btf.kind(id)) else {
            continue;
        };
        if !name.is_empty() && kind != Kind::Func {
            wanted.push((
                crate::essential_name(name.as_bytes())
                    .escape_ascii()
                    .to_string(),
                kind as u8,
            ));
        }
    }
    assert!(wanted.len() > 50, "{}", wanted.len());
    wanted.push(("task_struct".into(), k::STRUCT));
    wanted.push(("no_such_struct_in_any_kernel".into(), k::STRUCT));
    wanted.push(("pid_type".into(), k::ENUM64));
    let w: Vec<(&str, u8)> = wanted.iter().map(|(n, kd)| (n.as_str(), *kd)).collect();
    let scanned = View::scan_candidates(&btf, &w).expect("scan");
    assert!(!btf.is_indexed(), "the scan builds no index");
    btf.build_type_index();
    let kind_of = |kd: u8| Kind::from_u32(u32::from(kd)).expect("kind");
    for ((name, kd), got) in w.iter().zip(&scanned) {
        let mut expect: Vec<u32> = btf.candidates(name.as_bytes(), kind_of(*kd)).collect();
        if *kd == k::ENUM || *kd == k::ENUM64 {
            let other = if *kd == k::ENUM { k::ENUM64 } else { k::ENUM };
            expect.extend(btf.candidates(name.as_bytes(), kind_of(other)));
            expect.sort_unstable();
        }
        assert_eq!(got, &expect, "{name} kind {kd}");
    }
    assert!(!scanned[w.len() - 3].is_empty(), "task_struct found");
    assert!(scanned[w.len() - 2].is_empty());
    assert!(
        !scanned[w.len() - 1].is_empty(),
        "ENUM64 asks find the ENUM pid_type"
    );
}

/// The reviewer's case: a relocation that fails (offset ambiguity) after
/// one candidate matched must not leave the shared candidate list damaged
/// for the next relocations of the same relocator.
#[test]
fn failed_relocation_leaves_candidates_intact() {
    // local: struct s { int a; int b; }
    let mut l = B::new();
    let int = l.int("int", 4, true);
    let s = l.st("s", 8, &[("a", int, 0, 0), ("b", int, 32, 0)]);
    let b_access = l.s("0:1");
    let a_access = l.s("0:0");
    // target: s { a }, s___b { b@0, c@4 }, s___c { c@0, b@4 }
    let mut t = B::new();
    let tint = t.int("int", 4, true);
    let ts = t.st("s", 4, &[("a", tint, 0, 0)]);
    t.st("s___b", 8, &[("b", tint, 0, 0), ("c", tint, 32, 0)]);
    t.st("s___c", 8, &[("c", tint, 0, 0), ("b", tint, 32, 0)]);
    let (lb, tb) = (l.finish(), t.finish());
    let local = Btf::parse(&lb).unwrap();
    let targets = Targets::new("target", Btf::parse(&tb).unwrap());
    let rec = |access_str_off| CoreRelo {
        insn_off: 0,
        type_id: s,
        access_str_off,
        kind: CoreReloKind::FieldByteOffset as u32,
    };
    let mut r = CoreRelocator::new(&local, &targets);
    // b: s___b says 0, s___c says 4
    let err = r.relocate([rec(b_access)], &mut [mov(4)]).unwrap_err();
    assert!(
        matches!(err, CoreError::OffsetAmbiguity { a: 32, b: 0, .. }),
        "{err}"
    );
    // a: the failed relocation pruned nothing, so s is still a candidate
    let mut insns = [mov(0)];
    let res = r.relocate([rec(a_access)], &mut insns).unwrap();
    assert_eq!(res[0].candidates, 3);
    assert_eq!(res[0].target.as_ref().map(|t| t.type_id), Some(ts));
    assert_eq!(insns[0].imm, 0);
    assert_eq!(res[0].outcome, Outcome::Patched { mem_size: None });

    // A relocation that resolves but cannot be patched (the instruction
    // does not hold the local value) fails too, and must not prune either.
    // target: s { a } and s___2 { x, b }: a matches only s, which would hide
    // b (only in s___2) from the next relocation
    let mut t = B::new();
    let tint = t.int("int", 4, true);
    t.st("s", 4, &[("a", tint, 0, 0)]);
    t.st("s___2", 8, &[("x", tint, 0, 0), ("b", tint, 32, 0)]);
    let tb = t.finish();
    let targets = Targets::new("target", Btf::parse(&tb).unwrap());
    let mut r = CoreRelocator::new(&local, &targets);
    let err = r.relocate([rec(a_access)], &mut [mov(99)]).unwrap_err();
    assert!(matches!(err, CoreError::Patch { .. }), "{err}");
    let exists = CoreRelo {
        kind: CoreReloKind::FieldExists as u32,
        ..rec(b_access)
    };
    let mut insns = [mov(1)];
    let res = r.relocate([exists], &mut insns).unwrap();
    assert_eq!((res[0].candidates, insns[0].imm), (2, 1));
    // ... while a successful one prunes, as libbpf's does
    let mut r = CoreRelocator::new(&local, &targets);
    r.relocate([rec(a_access)], &mut [mov(0)]).unwrap();
    let mut insns = [mov(1)];
    let res = r.relocate([exists], &mut insns).unwrap();
    assert_eq!((res[0].candidates, insns[0].imm), (1, 0));
}

/// A target built for a 32-bit kernel: `long` is 4 bytes, so pointers are
/// (libbpf's `btf_ptr_sz`), unlike the 64-bit local BTF.
#[test]
fn pointer_size_comes_from_the_targets_long() {
    // local (64-bit): [1] long (8), [2] int, [3] int *, [4] int *[4],
    // [5] struct s { int *p; int x; int *arr[4]; } (p@0, x@8, arr@16),
    // [6] typedef intptr -> int *
    let mut l = B::new();
    l.int("long", 8, true);
    let int = l.int("int", 4, true);
    let ip = l.ptr(int);
    let arr = l.array(ip, int, 4);
    let s = l.st(
        "s",
        48,
        &[("p", ip, 0, 0), ("x", int, 64, 0), ("arr", arr, 128, 0)],
    );
    let intptr = l.typedef("intptr", ip);
    // target (32-bit): same types with 4-byte pointers: p@0, x@4, arr@8
    let mut t = B::new();
    t.int("long int", 4, true);
    let tint = t.int("int", 4, true);
    let tip = t.ptr(tint);
    let tarr = t.array(tip, tint, 4);
    t.st(
        "s",
        24,
        &[("p", tip, 0, 0), ("x", tint, 32, 0), ("arr", tarr, 64, 0)],
    );
    t.typedef("intptr", tip);
    let mut c = Case::new(l);
    c.relo(0, s, "0:0", CoreReloKind::FieldByteSize);
    c.relo(1, s, "0:0", CoreReloKind::FieldByteOffset);
    c.relo(2, s, "0:1", CoreReloKind::FieldByteOffset);
    c.relo(3, s, "0:2:3", CoreReloKind::FieldByteOffset);
    c.relo(4, s, "0:2:3", CoreReloKind::FieldByteSize);
    c.relo(5, intptr, "0", CoreReloKind::TypeSize);
    let mut insns = [
        mov(8),
        // a 64-bit load of the pointer becomes a 32-bit one
        insn(LDX_DW, 1, 2, 0, 0),
        insn(LDX_W, 1, 2, 8, 0),
        // arr[3]: 16 + 3 * 8 locally, 8 + 3 * 4 in the target
        insn(LDX_DW, 1, 2, 40, 0),
        mov(8),
        mov(8),
    ];
    let res = c.run(&t, &mut insns).unwrap();
    assert_eq!(insns[0].imm, 4);
    assert_eq!((insns[1].code, insns[1].off), (LDX_W, 0));
    assert_eq!(
        res[1].outcome,
        Outcome::Patched {
            mem_size: Some((8, 4))
        }
    );
    assert_eq!((insns[2].code, insns[2].off), (LDX_W, 4));
    assert_eq!((insns[3].code, insns[3].off), (LDX_W, 20));
    assert_eq!(insns[4].imm, 4);
    assert_eq!(insns[5].imm, 4);
}

/// libbpf's `determine_ptr_size`: the first INT of size 4 or 8 with one of
/// the spellings of `long`; the host's pointer size without one; for split
/// BTF, the base's answer first.
#[test]
fn pointer_size_rules() {
    use super::testbtf::Split;
    use super::view::View;
    let ptr_size = |b: &B| {
        let bytes = b.finish();
        View::ptr_size(&Btf::parse(&bytes).unwrap())
    };
    // no long at all: the host's pointer size
    let mut b = B::new();
    b.int("int", 4, true);
    assert_eq!(ptr_size(&b), std::mem::size_of::<usize>() as u32);
    // a 2-byte "long" and a "longer" name are skipped; the first fitting
    // alias decides, even if a later one disagrees
    let mut b = B::new();
    b.int("long", 2, true);
    b.int("longer", 4, true);
    b.int("int unsigned long", 4, false);
    b.int("long", 8, true);
    assert_eq!(ptr_size(&b), 4);
    for alias in [
        "long",
        "long int",
        "int long",
        "unsigned long",
        "long unsigned",
        "unsigned long int",
        "unsigned int long",
        "long unsigned int",
        "long int unsigned",
        "int unsigned long",
        "int long unsigned",
    ] {
        let mut b = B::new();
        b.int("int", 8, true);
        b.int(alias, 4, true);
        assert_eq!(ptr_size(&b), 4, "{alias}");
    }

    // split BTF: the base's long wins over the module's
    let mut base = B::new();
    let bint = base.int("int", 4, true);
    base.int("long", 4, true);
    let bb = base.finish();
    let bbtf = Btf::parse(&bb).unwrap();
    let mut m = Split::new(&bbtf);
    m.int("long", 8);
    let mb = m.finish();
    assert_eq!(View::ptr_size(&Btf::parse_split(&mb, &bbtf).unwrap()), 4);
    // a base without long: the module's own
    let mut base = B::new();
    base.int("int", 4, true);
    let bb2 = base.finish();
    let bbtf2 = Btf::parse(&bb2).unwrap();
    let mut m = Split::new(&bbtf2);
    m.int("unsigned long", 4);
    let mb2 = m.finish();
    assert_eq!(View::ptr_size(&Btf::parse_split(&mb2, &bbtf2).unwrap()), 4);

    // through a module target (the view the engine uses for modules): a
    // pointer member of a module struct on a 32-bit base is 4 bytes
    let mut l = B::new();
    let int = l.int("int", 4, true);
    let ip = l.ptr(int);
    let ls = l.st("modstruct", 16, &[("p", ip, 0, 0), ("x", int, 64, 0)]);
    let mut m = Split::new(&bbtf);
    let mp = m.ptr(bint);
    m.st("modstruct", 8, &[("p", mp, 0), ("x", bint, 32)]);
    let (vb, mods) = module_targets(&base_32(), &[("m", m.finish())]);
    let targets = Targets::with_modules("vmlinux", vb.btf(), &mods);
    let mut c = Case::new(l);
    c.relo(0, ls, "0:0", CoreReloKind::FieldByteSize);
    c.relo(1, ls, "0:1", CoreReloKind::FieldByteOffset);
    let lb = c.local.finish();
    let local = Btf::parse(&lb).unwrap();
    let mut insns = [mov(8), mov(8)];
    let res = relocate_program(&local, c.relos.iter().copied(), &mut insns, &targets).unwrap();
    assert_eq!(res[0].target.as_ref().unwrap().btf, "m");
    assert_eq!((insns[0].imm, insns[1].imm), (4, 4));

    // the running kernel (64-bit here): 8, as its `long` says
    if let Ok(v) = crate::kernel::vmlinux() {
        assert_eq!(View::ptr_size(&v.btf()), 8);
    }
}

/// [1] int, [2] long (4 bytes): the base of the module in
/// [`pointer_size_rules`].
fn base_32() -> B {
    let mut base = B::new();
    base.int("int", 4, true);
    base.int("long", 4, true);
    base
}

/// libbpf compares candidate offsets as its __u32 `bit_offset`: offsets
/// that differ only above bit 31 (hostile sizes) are not ambiguous.
#[test]
fn offset_ambiguity_is_compared_in_32_bits() {
    // local: struct s { int a; } accessed as (&s)[1].a: bit offset 32
    let mut l = B::new();
    let int = l.int("int", 4, true);
    let s = l.st("s", 4, &[("a", int, 0, 0)]);
    // target: s of 2^29 bytes and s___x of 2^30 bytes: (&s)[1] is at bit
    // 2^32 in one and 2^33 in the other, both 0 in 32 bits
    let mut t = B::new();
    let tint = t.int("int", 4, true);
    t.st("s", 1 << 29, &[("a", tint, 0, 0)]);
    t.st("s___x", 1 << 30, &[("a", tint, 0, 0)]);
    let mut c = Case::new(l);
    c.relo(0, s, "1:0", CoreReloKind::FieldByteOffset);
    let mut insns = [mov(4)];
    let res = c.run(&t, &mut insns).unwrap();
    assert_eq!(insns[0].imm, 0);
    assert_eq!(res[0].target.as_ref().unwrap().bit_offset, 0);
}

/// A bitfield whose base type is 2^29 bytes or more: libbpf's __u32
/// `byte_sz * 8` wraps, and it reports the bitfield as unreadable.
#[test]
fn huge_bitfield_base_type_is_an_error() {
    // local: struct bits { u8 a:4; }
    let local = || {
        let mut l = B::new();
        let u8_ = l.int("u8", 1, false);
        let bits = l.st("bits", 1, &[("a", u8_, 0, 4)]);
        (l, bits)
    };
    // `size * 8` wraps to 0 for the first three (a 4-bit field then looks
    // wider than the load: -E2BIG), to a large value for the others (fine)
    for (size, ok) in [
        (1u32 << 29, false),
        (1 << 30, false),
        (3 << 29, false),
        ((1 << 29) + 1, true),
        (u32::MAX, true),
    ] {
        // target: struct bits { huge a:4; } with an INT of `size` bytes
        let mut t = B::new();
        let huge = t.int_any_size("huge", size);
        t.st("bits", 8, &[("a", huge, 0, 4)]);
        let (l, bits) = local();
        let mut c = Case::new(l);
        c.relo(0, bits, "0:0", CoreReloKind::FieldByteSize);
        let r = c.run(&t, &mut [mov(1)]);
        if ok {
            // no wider load needed: libbpf keeps the base type's size
            assert_eq!(r.unwrap()[0].new_val, size as u64, "size {size}");
        } else {
            assert!(
                matches!(
                    r,
                    Err(CoreError::Calc {
                        source: CalcError::Bitfield,
                        ..
                    })
                ),
                "size {size}: {r:?}"
            );
        }
    }
}

/// libbpf's `bpf_core_match_member` on a named member of the right name but
/// an incompatible type inside an anonymous member: it pops the accessor
/// only, so that member's offset and raw index stay in the spec while the
/// enclosing struct is searched further (duplicate member names: hostile
/// BTF only).
#[test]
fn match_member_keeps_libbpf_offsets_after_an_incompatible_name() {
    // local: struct s { int a; }
    let mut l = B::new();
    let int = l.int("int", 4, true);
    let s = l.st("s", 4, &[("a", int, 0, 0)]);
    // target: struct s { struct { int *a @32 } @0; int a @64 }
    let mut t = B::new();
    let tint = t.int("int", 4, true);
    let tip = t.ptr(tint);
    let anon = t.st("", 16, &[("pad", tint, 0, 0), ("a", tip, 32, 0)]);
    t.st("s", 16, &[("", anon, 0, 0), ("a", tint, 64, 0)]);
    let mut c = Case::new(l);
    c.relo(0, s, "0:0", CoreReloKind::FieldByteOffset);
    let mut insns = [mov(0)];
    let res = c.run(&t, &mut insns).unwrap();
    // libbpf: 32 (left over from the anonymous member's a) + 64 bits
    assert_eq!(insns[0].imm, 12);
    let spec = &res[0].target.as_ref().unwrap().spec;
    assert!(spec.ends_with("(0:0:1 @ offset 12)"), "{spec}");
}
