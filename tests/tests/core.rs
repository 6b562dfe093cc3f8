//! CO-RE relocation against real BTF: the fixtures in tests/bpf/core_*.bpf.c
//! against the running kernel, and cilium/ebpf's relocs* corpus objects.
//!
//! Expected values are derived here from the target BTF independently of the
//! engine (walking structs by member name, reading enumerators by name), and
//! programs that need no maps are loaded into the kernel and run with
//! BPF_PROG_TEST_RUN, where each returns 0 only if every relocation was right.

use std::ffi::CString;
use std::os::fd::AsFd;
use std::path::Path;

use bpfload_btf::core::{
    insns_from_bytes, program_relos_indexed, CoreError, CoreRelo, CoreReloKind, CoreReloResult,
    CoreRelocator, Outcome, PoisonReason, Targets, POISON_IMM,
};
use bpfload_btf::kernel;
use bpfload_btf::{Btf, BtfExt, Kind, Type};
use bpfload_syscall::uapi::bpf_insn;
use bpfload_syscall::{LogOptions, ProgLoadAttr};
use bpfload_tests::{corpus_dir, fixture, require_root, skip_or_panic};

// ---------------------------------------------------------------------------
// A minimal ELF64 little-endian reader: just enough to find sections, function
// symbols and the call relocations of these test objects.

struct Section<'a> {
    name: String,
    data: &'a [u8],
    kind: u32,
    info: u32,
}

struct Sym {
    name: String,
    value: u64,
    size: u64,
    shndx: u16,
    kind: u8,
}

struct Elf<'a> {
    sections: Vec<Section<'a>>,
    syms: Vec<Sym>,
}

fn u16le(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes(b[o..o + 2].try_into().unwrap())
}
fn u32le(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
fn u64le(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}
fn cstr(b: &[u8], o: usize) -> String {
    let end = b[o..]
        .iter()
        .position(|&c| c == 0)
        .map_or(b.len(), |p| o + p);
    String::from_utf8_lossy(&b[o..end]).into_owned()
}

impl<'a> Elf<'a> {
    fn parse(b: &'a [u8]) -> Elf<'a> {
        assert_eq!(&b[..4], b"\x7fELF");
        assert_eq!((b[4], b[5]), (2, 1), "ELF64 little-endian expected");
        let shoff = u64le(b, 0x28) as usize;
        let shentsize = u16le(b, 0x3a) as usize;
        let shnum = u16le(b, 0x3c) as usize;
        let shstrndx = u16le(b, 0x3e) as usize;
        let hdr = |i: usize| &b[shoff + i * shentsize..shoff + (i + 1) * shentsize];
        let sh_data = |h: &[u8]| {
            let (off, size) = (u64le(h, 0x18) as usize, u64le(h, 0x20) as usize);
            if u32le(h, 4) == 8 {
                &b[0..0] // NOBITS
            } else {
                &b[off..off + size]
            }
        };
        let shstr = sh_data(hdr(shstrndx));
        let mut sections = Vec::new();
        for i in 0..shnum {
            let h = hdr(i);
            sections.push(Section {
                name: cstr(shstr, u32le(h, 0) as usize),
                data: sh_data(h),
                kind: u32le(h, 4),
                info: u32le(h, 0x2c),
            });
        }
        let mut syms = Vec::new();
        if let Some(i) = sections.iter().position(|s| s.kind == 2) {
            let strtab_idx = u32le(hdr(i), 0x28) as usize;
            let strtab = sections[strtab_idx].data;
            for e in sections[i].data.chunks_exact(24) {
                syms.push(Sym {
                    name: cstr(strtab, u32le(e, 0) as usize),
                    kind: e[4] & 0xf,
                    shndx: u16le(e, 6),
                    value: u64le(e, 8),
                    size: u64le(e, 16),
                });
            }
        }
        Elf { sections, syms }
    }

    fn section(&self, name: &str) -> Option<(usize, &Section<'a>)> {
        self.sections
            .iter()
            .enumerate()
            .find(|(_, s)| s.name == name)
    }

    /// Function symbols: (name, section index, byte offset, byte size).
    fn functions(&self) -> Vec<(String, usize, usize, usize)> {
        self.syms
            .iter()
            .filter(|s| s.kind == 2 && s.size > 0)
            .map(|s| {
                (
                    s.name.clone(),
                    s.shndx as usize,
                    s.value as usize,
                    s.size as usize,
                )
            })
            .collect()
    }

    /// (offset, symbol) of the REL entries that apply to section `idx`.
    fn rels(&self, idx: usize) -> Vec<(usize, &Sym)> {
        let mut out = Vec::new();
        for s in &self.sections {
            if s.kind == 9 && s.info as usize == idx {
                for e in s.data.chunks_exact(16) {
                    let info = u64le(e, 8);
                    out.push((u64le(e, 0) as usize, &self.syms[(info >> 32) as usize]));
                }
            }
        }
        out
    }
}

/// One BPF object: its ELF, own BTF and BTF.ext bytes.
struct Obj {
    bytes: Vec<u8>,
}

/// A program ready for relocation: instructions (with `.text` appended if
/// it calls into it) and its core_relo records rebased onto them.
struct Prog {
    name: String,
    insns: Vec<bpf_insn>,
    /// Records with their index within their `.BTF.ext` section.
    relos: Vec<(usize, CoreRelo)>,
    /// ld_imm64 instructions that take the address of a `.bss` variable:
    /// (instruction index, variable offset in `.bss`).
    bss_refs: Vec<(usize, u64)>,
}

impl Obj {
    fn open(path: &Path) -> Obj {
        Obj {
            bytes: std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        }
    }
    fn elf(&self) -> Elf<'_> {
        Elf::parse(&self.bytes)
    }
    fn btf(&self) -> Btf<'_> {
        let elf = self.elf();
        let data = elf.section(".BTF").expect(".BTF").1.data;
        // re-borrow from self.bytes so the view outlives `elf`
        let off = data.as_ptr() as usize - self.bytes.as_ptr() as usize;
        Btf::parse(&self.bytes[off..off + data.len()]).expect("object BTF parses")
    }
    fn ext_bytes(&self) -> &[u8] {
        let elf = self.elf();
        let data = elf.section(".BTF.ext").expect(".BTF.ext").1.data;
        let off = data.as_ptr() as usize - self.bytes.as_ptr() as usize;
        &self.bytes[off..off + data.len()]
    }

    /// core_relo records of ELF section `sec`, for instructions in
    /// `[start, start+len)` bytes, rebased by `-start + shift`.
    fn relos(
        &self,
        btf: &Btf<'_>,
        sec: &str,
        start: usize,
        len: usize,
        shift: usize,
    ) -> Vec<(usize, CoreRelo)> {
        let ext = BtfExt::parse(self.ext_bytes()).expect("BTF.ext parses");
        let mut relos = program_relos_indexed(btf, &ext, sec, start, len);
        for (_, r) in &mut relos {
            r.insn_off += shift as u32;
        }
        relos
    }

    /// All programs (functions outside `.text`), each linked with `.text`
    /// when it calls into it.
    fn programs(&self) -> Vec<Prog> {
        let elf = self.elf();
        let btf = self.btf();
        let text = elf.section(".text").filter(|(_, s)| !s.data.is_empty());
        let mut out = Vec::new();
        for (name, shndx, off, size) in elf.functions() {
            let sec = &elf.sections[shndx];
            if sec.name == ".text" || sec.kind != 1 {
                continue;
            }
            let mut insns = insns_from_bytes(&sec.data[off..off + size]);
            let mut relos = self.relos(&btf, &sec.name, off, size, 0);
            // link bpf-to-bpf calls into .text (appended once, like libbpf)
            let calls: Vec<(usize, u64)> = elf
                .rels(shndx)
                .into_iter()
                .filter(|(r_off, sym)| {
                    *r_off >= off
                        && *r_off < off + size
                        && text.is_some_and(|(ti, _)| sym.shndx as usize == ti)
                        && sec.data[*r_off] == 0x85
                })
                .map(|(r_off, sym)| ((r_off - off) / 8, sym.value))
                .collect();
            if let (false, Some((_, t))) = (calls.is_empty(), text) {
                let base = insns.len();
                for (idx, sym_value) in calls {
                    let target = base as i64 + sym_value as i64 / 8 + insns[idx].imm as i64 + 1;
                    insns[idx].imm = (target - idx as i64 - 1) as i32;
                }
                relos.extend(self.relos(&btf, ".text", 0, t.data.len(), base * 8));
                insns.extend(insns_from_bytes(t.data));
            }
            let bss = elf.section(".bss").map(|(i, _)| i);
            let bss_refs = elf
                .rels(shndx)
                .into_iter()
                .filter(|(r_off, sym)| {
                    *r_off >= off && *r_off < off + size && Some(sym.shndx as usize) == bss
                })
                .map(|(r_off, sym)| ((r_off - off) / 8, sym.value))
                .collect();
            out.push(Prog {
                name,
                insns,
                relos,
                bss_refs,
            });
        }
        out
    }
}

fn corpus(name: &str) -> Option<Obj> {
    let Some(dir) = corpus_dir() else {
        skip_or_panic(name, "corpus not present");
        return None;
    };
    Some(Obj::open(&dir.join("cilium-ebpf/btf/testdata").join(name)))
}

// ---------------------------------------------------------------------------
// Independent derivations from target BTF.

/// Bit offset and bitfield size of member `name` of composite `id`,
/// searching anonymous members, plus the member's type id.
fn find_member(btf: &Btf<'_>, id: u32, name: &str) -> Option<(u32, u32, u32)> {
    let t = btf.type_by_id(btf.skip_mods_and_typedefs(id).ok()?).ok()?;
    let c = t.as_composite()?;
    for m in c.members() {
        let mname = btf.str_at(m.name_off).ok()?;
        if mname == name {
            return Some((m.bit_offset, m.bitfield_size as u32, m.type_id));
        }
        if mname.is_empty() {
            if let Some((off, bits, ty)) = find_member(btf, m.type_id, name) {
                return Some((m.bit_offset + off, bits, ty));
            }
        }
    }
    None
}

fn struct_id(btf: &Btf<'_>, name: &str) -> u32 {
    btf.find_by_name_kind(name, Kind::Struct)
        .unwrap_or_else(|| panic!("struct {name} in target BTF"))
}

fn enum_value(btf: &Btf<'_>, enum_name: &str, value: &str) -> Option<u64> {
    for kind in [Kind::Enum, Kind::Enum64] {
        for id in btf
            .candidates(enum_name.as_bytes(), kind)
            .collect::<Vec<_>>()
        {
            if btf.name(id).ok()? != enum_name {
                continue;
            }
            let t = btf.type_by_id(id).ok()?;
            let e = t.as_enum()?;
            for v in e.values() {
                if btf.str_at(v.name_off).ok()? == value {
                    return Some(v.val);
                }
            }
        }
    }
    None
}

/// libbpf's documented bitfield read recipe (bpf_core_read.h): the smallest
/// naturally aligned load that covers the field, and the shifts that
/// extract it from a u64. Returns (byte_off, byte_size, lshift, rshift).
fn bitfield_recipe(bit_off: u32, bits: u32, base_size: u32) -> (u32, u32, u32, u32) {
    let mut size = base_size;
    loop {
        let byte_off = bit_off / 8 / size * size;
        if bit_off + bits - byte_off * 8 <= size * 8 {
            return (
                byte_off,
                size,
                64 - (bit_off + bits - byte_off * 8),
                64 - bits,
            );
        }
        size *= 2;
    }
}

fn find<'r>(
    res: &'r [CoreReloResult],
    ty: &str,
    access: &str,
    kind: CoreReloKind,
) -> &'r CoreReloResult {
    res.iter()
        .find(|r| r.local_type_name == ty && r.access == access && r.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} relocation on {ty} {access} in {res:#?}"))
}

fn assert_val(r: &CoreReloResult, want: u64) {
    assert_eq!(r.new_val, want, "{r:#?}");
    assert!(matches!(r.outcome, Outcome::Patched { .. }), "{r:#?}");
}

fn assert_poisoned(r: &CoreReloResult, insns: &[bpf_insn]) {
    assert_eq!(
        r.outcome,
        Outcome::Poisoned(PoisonReason::NoTarget),
        "{r:#?}"
    );
    let i = &insns[r.insn_idx];
    assert_eq!(
        (i.code, i.imm, i.off, i.dst_reg(), i.src_reg()),
        (0x85, POISON_IMM, 0, 0, 0)
    );
}

// ---------------------------------------------------------------------------

#[test]
fn fixture_task_struct_against_running_kernel() {
    let vm = kernel::vmlinux().expect("vmlinux BTF");
    let targets = Targets::kernel(&vm);
    let kb = vm.btf();
    let obj = Obj::open(&fixture("core_task.bpf.o"));
    let local = obj.btf();
    let mut relocator = CoreRelocator::new(&local, &targets);
    let mut all = Vec::new();
    for mut p in obj.programs() {
        let res = relocator
            .relocate_indexed(p.relos.iter().copied(), &mut p.insns)
            .unwrap_or_else(|e| panic!("{}: {e}", p.name));
        all.push((p.name, p.insns, res));
    }
    let prog = |n: &str| {
        all.iter()
            .find(|(name, ..)| name == n)
            .unwrap_or_else(|| panic!("program {n}"))
    };
    let task = struct_id(&kb, "task_struct");
    let off = |f: &str| find_member(&kb, task, f).unwrap_or_else(|| panic!("task_struct.{f}"));
    use CoreReloKind::*;

    // task_fields: local task_struct is pid, tgid, flags, comm, real_parent, ...
    let (_, _, res) = prog("task_fields");
    assert_val(
        find(res, "task_struct", "0:0", FieldByteOffset),
        off("pid").0 as u64 / 8,
    );
    assert_val(
        find(res, "task_struct", "0:1", FieldByteOffset),
        off("tgid").0 as u64 / 8,
    );
    assert_val(
        find(res, "task_struct", "0:2", FieldByteOffset),
        off("flags").0 as u64 / 8,
    );
    assert_val(
        find(res, "task_struct", "0:4", FieldByteOffset),
        off("real_parent").0 as u64 / 8,
    );
    assert_val(
        find(res, "task_struct", "0:3:1", FieldByteOffset),
        off("comm").0 as u64 / 8 + 1,
    );
    let comm_size = kb.resolve_size(off("comm").2).unwrap() as u64;
    assert_val(find(res, "task_struct", "0:3", FieldByteSize), comm_size);
    assert_val(
        find(res, "task_struct", "0:3", FieldByteOffset),
        off("comm").0 as u64 / 8,
    );
    let pid_res = find(res, "task_struct", "0:0", FieldByteOffset);
    assert_eq!(pid_res.target.as_ref().unwrap().type_id, task);
    assert_eq!(pid_res.target.as_ref().unwrap().btf, "vmlinux");

    // task_bitfields: the kernel's bit layout drives size, offset and shifts
    let (_, _, res) = prog("task_bitfields");
    for (access, field) in [("0:5", "sched_reset_on_fork"), ("0:6", "in_execve")] {
        let (bit_off, bits, ty) = off(field);
        assert!(bits > 0, "{field} is a bitfield in this kernel");
        let base = kb.resolve_size(ty).unwrap();
        let (byte_off, size, lshift, rshift) = bitfield_recipe(bit_off, bits, base);
        assert_val(
            find(res, "task_struct", access, FieldByteOffset),
            byte_off as u64,
        );
        assert_val(find(res, "task_struct", access, FieldByteSize), size as u64);
        assert_val(
            find(res, "task_struct", access, FieldLShiftU64),
            lshift as u64,
        );
        assert_val(
            find(res, "task_struct", access, FieldRShiftU64),
            rshift as u64,
        );
    }

    // task_exists: flavors, existence, sizes and ids
    let (_, insns, res) = prog("task_exists");
    assert_val(find(res, "task_struct___old", "0:0", FieldExists), 1);
    assert_val(find(res, "task_struct___old", "0:1", FieldExists), 0);
    let gone = res
        .iter()
        .find(|r| {
            r.local_type_name == "task_struct___old"
                && r.access == "0:1"
                && r.kind == FieldByteOffset
        })
        .expect("the guarded read of the missing field");
    assert_poisoned(gone, insns);
    assert_val(
        find(res, "task_struct___flavor", "0:1", FieldByteOffset),
        off("tgid").0 as u64 / 8,
    );
    assert_val(find(res, "task_struct", "0", TypeExists), 1);
    assert_val(find(res, "bpfload_no_such_type", "0", TypeExists), 0);
    let task_size = kb.resolve_size(task).unwrap() as u64;
    assert_val(find(res, "task_struct", "0", TypeSize), task_size);
    assert_val(find(res, "task_struct", "0", TypeIdTarget), task as u64);
    assert_val(find(res, "list_head", "0", TypeExists), 1);
    assert_val(find(res, "rb_node", "0", TypeExists), 1);

    // clang 14 cannot emit TYPE_MATCHES: ask the same local types that way
    let list_head = local.find_by_name_kind("list_head", Kind::Struct).unwrap();
    let rb_node = local.find_by_name_kind("rb_node", Kind::Struct).unwrap();
    let access0 = {
        // the offset of "0" in the local string section, from an existing record
        let r = find(res, "list_head", "0", TypeExists);
        obj.relos(
            &local,
            "raw_tracepoint/sched_process_exec",
            0,
            usize::MAX / 2,
            0,
        )
        .into_iter()
        .find(|x| x.1.type_id == r.local_type_id)
        .unwrap()
        .1
        .access_str_off
    };
    let mut insns2 = vec![mov(1), mov(1)];
    let m = CoreRelocator::new(&local, &targets)
        .relocate(
            [
                CoreRelo {
                    insn_off: 0,
                    type_id: list_head,
                    access_str_off: access0,
                    kind: TypeMatches as u32,
                },
                CoreRelo {
                    insn_off: 8,
                    type_id: rb_node,
                    access_str_off: access0,
                    kind: TypeMatches as u32,
                },
            ],
            &mut insns2,
        )
        .unwrap();
    // list_head {next, prev} matches the kernel's; rb_node has an extra
    // member `nope` the kernel lacks
    assert!(find_member(&kb, struct_id(&kb, "rb_node"), "nope").is_none());
    assert_eq!((m[0].new_val, m[1].new_val), (1, 0));
    assert_eq!((insns2[0].imm, insns2[1].imm), (1, 0));

    // task_enums: enumerator values by name
    let (_, insns, res) = prog("task_enums");
    let sid = enum_value(&kb, "pid_type", "PIDTYPE_SID").expect("PIDTYPE_SID");
    assert_val(find(res, "pid_type", "3", EnumvalExists), 1);
    assert_val(find(res, "pid_type", "3", EnumvalValue), sid);
    assert!(enum_value(&kb, "pid_type", "PIDTYPE_BPFLOAD_MISSING").is_none());
    assert_val(find(res, "pid_type", "4", EnumvalExists), 0);
    assert_poisoned(find(res, "pid_type", "4", EnumvalValue), insns);
    let max =
        enum_value(&kb, "perf_callchain_context", "PERF_CONTEXT_MAX").expect("PERF_CONTEXT_MAX");
    let r = find(res, "perf_callchain_context", "1", EnumvalValue);
    assert_val(r, max);
    // a 64-bit value: ld_imm64 carries both halves
    let i = &insns[r.insn_idx];
    assert_eq!(i.code, 0x18);
    assert_eq!(
        (i.imm as u32 as u64) | ((insns[r.insn_idx + 1].imm as u32 as u64) << 32),
        max
    );
    assert_val(find(res, "perf_callchain_context", "0", EnumvalExists), 1);
}

fn mov(imm: i32) -> bpf_insn {
    let mut i = insns_from_bytes(&[0xb7, 0x01, 0, 0, 0, 0, 0, 0]).remove(0);
    i.imm = imm;
    i
}

#[test]
fn fixture_ambiguity_against_running_kernel() {
    let vm = kernel::vmlinux().expect("vmlinux BTF");
    let kb = vm.btf();
    let walks: Vec<u32> = kb.candidates(b"walk_control", Kind::Struct).collect();
    let irqs: Vec<u32> = kb.candidates(b"irq_info", Kind::Struct).collect();
    let descs: Vec<u32> = kb.candidates(b"bpf_map_desc", Kind::Struct).collect();
    if walks.len() != 2 || irqs.len() < 2 || descs.len() < 2 {
        skip_or_panic(
            "ambiguity fixture",
            "this kernel's BTF lacks the duplicate struct names the fixture uses",
        );
        return;
    }
    // derive what must happen from the kernel's types
    let stage: Vec<_> = walks
        .iter()
        .map(|&id| find_member(&kb, id, "stage").expect("stage"))
        .collect();
    assert_ne!(stage[0].0, stage[1].0, "stage offsets differ");
    let int_irq: Vec<(u32, u32)> = irqs
        .iter()
        .filter_map(|&id| {
            let (off, _, ty) = find_member(&kb, id, "irq")?;
            let t = kb.type_by_id(kb.skip_mods_and_typedefs(ty).ok()?).ok()?;
            matches!(t, Type::Int(_)).then_some((id, off))
        })
        .collect();
    assert_eq!(int_irq.len(), 1, "exactly one irq_info has an int irq");

    let targets = Targets::kernel(&vm);
    let obj = Obj::open(&fixture("core_ambiguous.bpf.o"));
    let local = obj.btf();
    let mut relocator = CoreRelocator::new(&local, &targets);
    let mut seen = 0;
    for mut p in obj.programs() {
        let r = relocator.relocate_indexed(p.relos.iter().copied(), &mut p.insns);
        seen += 1;
        match p.name.as_str() {
            "ambiguous_field" => {
                let e = r.unwrap_err();
                assert!(matches!(e, CoreError::OffsetAmbiguity { .. }), "{e}");
                assert!(e.to_string().contains("field offset ambiguity"), "{e}");
            }
            "ambiguous_type_id" => {
                let e = r.unwrap_err();
                assert!(matches!(e, CoreError::Ambiguity { .. }), "{e}");
                assert!(
                    e.to_string().contains("relocation decision ambiguity"),
                    "{e}"
                );
                // libbpf numbers records within their section: this is the
                // section's second record ("relo #1" in libbpf's message)
                assert_eq!(e.relo_index(), Some(1), "{e}");
            }
            "one_candidate_matches" => {
                let res = r.unwrap();
                assert_eq!(res[0].candidates, irqs.len());
                assert_eq!(res[0].target.as_ref().unwrap().type_id, int_irq[0].0);
                assert_val(&res[0], int_irq[0].1 as u64 / 8);
            }
            "agreeing" => {
                let res = r.unwrap();
                assert_eq!(res.len(), 1);
                assert_eq!(res[0].candidates, descs.len());
                assert_val(&res[0], 1);
            }
            other => panic!("unexpected program {other}"),
        }
    }
    assert_eq!(seen, 4);
}

/// Loads `insns` as a socket filter and runs it once; `None` when not root.
fn load_and_run(what: &str, insns: &[bpf_insn]) -> Option<Result<u32, String>> {
    if !require_root(what) {
        return None;
    }
    let license = CString::new("GPL").unwrap();
    let attr = ProgLoadAttr {
        prog_type: 1, // BPF_PROG_TYPE_SOCKET_FILTER
        insns,
        license: &license,
        ..Default::default()
    };
    let fd = match bpfload_syscall::prog::load(&attr, &LogOptions::default()) {
        Ok(fd) => fd,
        Err(e) => return Some(Err(format!("{}: {}", e.errno(), e.log()))),
    };
    let run = bpfload_syscall::prog::test_run(fd.as_fd(), &[0u8; 64], 1).expect("test_run");
    Some(Ok(run.retval))
}

/// Loads a relocated fixture program as a raw tracepoint program, with its
/// `.bss` references pointed at a fresh array map (what the loader will do
/// for real): proves the relocated instructions pass the verifier.
fn load_raw_tracepoint(what: &str, p: &Prog, bss_size: u32) -> Option<Result<(), String>> {
    if !require_root(what) {
        return None;
    }
    let map = bpfload_syscall::map::create(&bpfload_syscall::MapCreateAttr {
        map_type: 2, // BPF_MAP_TYPE_ARRAY
        key_size: 4,
        value_size: bss_size,
        max_entries: 1,
        ..Default::default()
    })
    .expect("array map for .bss");
    let mut insns = p.insns.clone();
    for &(idx, var_off) in &p.bss_refs {
        let add = insns[idx].imm as i64;
        insns[idx].set_src_reg(2); // BPF_PSEUDO_MAP_VALUE
        insns[idx].imm = std::os::fd::AsRawFd::as_raw_fd(&map);
        insns[idx + 1].imm = (var_off as i64 + add) as i32;
    }
    let license = CString::new("GPL").unwrap();
    let attr = ProgLoadAttr {
        prog_type: 17, // BPF_PROG_TYPE_RAW_TRACEPOINT
        insns: &insns,
        license: &license,
        ..Default::default()
    };
    Some(
        bpfload_syscall::prog::load(&attr, &LogOptions::default())
            .map(drop)
            .map_err(|e| format!("{}: {}", e.errno(), e.log())),
    )
}

#[test]
fn relocated_fixtures_load_into_the_kernel() {
    let vm = kernel::vmlinux().expect("vmlinux BTF");
    let targets = Targets::kernel(&vm);
    for (file, must_fail) in [
        ("core_task.bpf.o", &[][..]),
        (
            "core_ambiguous.bpf.o",
            &["ambiguous_field", "ambiguous_type_id"][..],
        ),
    ] {
        let obj = Obj::open(&fixture(file));
        let local = obj.btf();
        let bss_size = local
            .find_by_name_kind(".bss", Kind::DataSec)
            .and_then(|id| local.type_by_id(id).ok())
            .and_then(|t| match t {
                Type::DataSec(d) => d.vars().map(|v| v.offset + v.size).max(),
                _ => None,
            })
            .expect(".bss datasec");
        let mut relocator = CoreRelocator::new(&local, &targets);
        for mut p in obj.programs() {
            let r = relocator.relocate_indexed(p.relos.iter().copied(), &mut p.insns);
            if must_fail.contains(&p.name.as_str()) {
                assert!(r.is_err(), "{}", p.name);
                continue;
            }
            r.unwrap_or_else(|e| panic!("{}: {e}", p.name));
            if let Some(res) = load_raw_tracepoint(&p.name, &p, bss_size) {
                res.unwrap_or_else(|e| panic!("{file} {}: {e}", p.name));
            }
        }
    }
}

#[test]
fn cilium_relocs_against_their_own_btf() {
    let Some(obj) = corpus("relocs-el.elf") else {
        return;
    };
    let local = obj.btf();
    // cilium's test relocates these against the object's own types
    let own = obj.btf();
    let targets = Targets::new("relocs-el.elf", own);
    let progs = obj.programs();
    assert_eq!(progs.len(), 6);
    let mut kinds = std::collections::BTreeSet::new();
    for mut p in progs {
        let r = CoreRelocator::new(&local, &targets)
            .relocate_indexed(p.relos.iter().copied(), &mut p.insns);
        if p.name.starts_with("err_") {
            let e = r.expect_err(&p.name);
            assert!(e.is_ambiguity(), "{}: {e}", p.name);
            continue;
        }
        let res = r.unwrap_or_else(|e| panic!("{}: {e}", p.name));
        assert!(!res.is_empty());
        for r in &res {
            kinds.insert(r.kind as u32);
            // against itself every relocation keeps the compiler's value
            assert_eq!(r.new_val, r.orig_val, "{}: {r:#?}", p.name);
            assert!(
                matches!(r.outcome, Outcome::Patched { .. }),
                "{}: {r:#?}",
                p.name
            );
        }
        // the program returns __LINE__ of the first failed check, else 0.
        // Not for type_ids: this build of it returns __LINE__ when a target id *equals* the local
        // id (`r0 = 70; if r2 == r1 goto exit`: cilium relocates it against a copy with other ids),
        // and against the object's own BTF they are equal by construction.
        if p.name == "type_ids" {
            continue;
        }
        if let Some(run) = load_and_run(&p.name, &p.insns) {
            assert_eq!(run, Ok(0), "{}", p.name);
        }
    }
    // every kind clang 14 can emit is exercised
    let want: std::collections::BTreeSet<u32> = (0..12).filter(|k| ![4, 5].contains(k)).collect();
    assert!(kinds.is_superset(&want), "kinds seen: {kinds:?}");
}

#[test]
fn cilium_relocs_read_against_relocs_read_tgt() {
    let (Some(obj), Some(tgt)) = (
        corpus("relocs_read-el.elf"),
        corpus("relocs_read_tgt-el.elf"),
    ) else {
        return;
    };
    let local = obj.btf();
    let tb = tgt.btf();
    let targets = Targets::new("relocs_read_tgt", tgt.btf());
    let mut progs = obj.programs();
    assert_eq!(progs.len(), 1);
    let p = &mut progs[0];
    let res = CoreRelocator::new(&local, &targets)
        .relocate_indexed(p.relos.iter().copied(), &mut p.insns)
        .unwrap();
    use CoreReloKind::*;
    // struct s { char a; char b; } in the target: a at 0, b at 1
    let s = struct_id(&tb, "s");
    let a = res
        .iter()
        .find(|r| r.local_type_name == "s" && r.local_spec.contains(".a "))
        .unwrap();
    assert_val(a, find_member(&tb, s, "a").unwrap().0 as u64 / 8);
    let b = res
        .iter()
        .find(|r| r.local_type_name == "s" && r.local_spec.contains(".b "))
        .unwrap();
    assert_val(b, find_member(&tb, s, "b").unwrap().0 as u64 / 8);
    // bitfields of struct bits, by the recipe on the target layout
    let bits = struct_id(&tb, "bits");
    for field in ["a", "b", "c", "d", "e", "f", "g"] {
        let (bit_off, nbits, ty) = find_member(&tb, bits, field).unwrap();
        let base = tb.resolve_size(ty).unwrap();
        let nbits = if nbits == 0 { base * 8 } else { nbits };
        let (byte_off, size, lshift, rshift) = bitfield_recipe(bit_off, nbits, base);
        let of = |k: CoreReloKind| {
            res.iter()
                .filter(|r| {
                    r.local_type_name == "bits"
                        && r.kind == k
                        && r.local_spec.contains(&format!(".{field} "))
                })
                .collect::<Vec<_>>()
        };
        for r in of(FieldByteOffset) {
            assert_val(r, byte_off as u64);
        }
        for r in of(FieldByteSize) {
            assert_val(r, size as u64);
        }
        for r in of(FieldLShiftU64) {
            assert_val(r, lshift as u64);
        }
        for r in of(FieldRShiftU64) {
            assert_val(r, rshift as u64);
        }
        assert!(!of(FieldLShiftU64).is_empty(), "bits.{field} relocated");
    }
    assert_val(find(&res, "nonexist", "0", TypeExists), 0);
    assert_val(find(&res, "nonexist", "0:0", FieldExists), 0);
    assert_val(find(&res, "nonexist_enum", "0", EnumvalExists), 0);
    if let Some(run) = load_and_run("relocs_read", &p.insns) {
        assert_eq!(run, Ok(0), "reads returns the __LINE__ of a failed check");
    }
}

#[test]
fn cilium_relocs_enum_against_running_kernel() {
    let Some(obj) = corpus("relocs_enum-el.elf") else {
        return;
    };
    let vm = kernel::vmlinux().expect("vmlinux BTF");
    let kb = vm.btf();
    assert!(enum_value(&kb, "cgroup_subsys_id", "cpuset_cgrp_id_lublub").is_none());
    let local = obj.btf();
    let targets = Targets::kernel(&vm);
    let mut progs = obj.programs();
    let p = &mut progs[0];
    let res = CoreRelocator::new(&local, &targets)
        .relocate_indexed(p.relos.iter().copied(), &mut p.insns)
        .unwrap();
    let exists = res
        .iter()
        .find(|r| r.kind == CoreReloKind::EnumvalExists)
        .unwrap();
    assert_val(exists, 0);
    let value = res
        .iter()
        .find(|r| r.kind == CoreReloKind::EnumvalValue)
        .unwrap();
    assert_poisoned(value, &p.insns);
    // the value was loaded with ld_imm64: its second half is poisoned too
    let next = &p.insns[value.insn_idx + 1];
    assert_eq!((next.code, next.imm), (0x85, POISON_IMM));
    // the poisoned code is dead after relocation: the verifier accepts it
    if let Some(run) = load_and_run("core_ld64imm", &p.insns) {
        assert_eq!(run, Ok(0));
    }
}

#[test]
fn reachable_poison_is_named_by_the_verifier() {
    // struct s { int a; int gone; } locally; the kernel has no `struct s` with `gone`
    let mut m = bpfload_btf::BtfModel::new();
    let int = m.add_int("int", 4, 1);
    let s = m.add_struct(
        "bpfload_core_poison_probe",
        8,
        &[("a", int, 0), ("gone", int, 32)],
    );
    let access = m.add_string("0:1");
    let bytes = m.to_bytes().unwrap();
    let local = Btf::parse(&bytes).unwrap();
    let vm = kernel::vmlinux().expect("vmlinux BTF");
    let targets = Targets::kernel(&vm);
    // r0 = 4 (the field offset); exit
    let mut insns = insns_from_bytes(&[0xb7, 0, 0, 0, 4, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);
    let relo = CoreRelo {
        insn_off: 0,
        type_id: s,
        access_str_off: access,
        kind: CoreReloKind::FieldByteOffset as u32,
    };
    let res = CoreRelocator::new(&local, &targets)
        .relocate([relo], &mut insns)
        .unwrap();
    assert_eq!(res[0].outcome, Outcome::Poisoned(PoisonReason::NoTarget));
    if let Some(run) = load_and_run("poison", &insns) {
        let err = run.expect_err("a reachable poisoned insn must be rejected");
        assert!(err.contains("invalid func unknown#195896080"), "{err}");
    }
}

#[test]
fn index_candidates_equal_a_linear_scan_on_vmlinux() {
    // the engine looks candidates up through the name index; libbpf scans
    let vm = kernel::vmlinux().expect("vmlinux BTF");
    let kb = vm.btf();
    for (name, kind) in [
        ("task_struct", Kind::Struct),
        ("irq_info", Kind::Struct),
        ("pid_type", Kind::Enum),
        ("console", Kind::Struct),
    ] {
        let indexed: Vec<u32> = kb.candidates(name.as_bytes(), kind).collect();
        let scanned: Vec<u32> = kb
            .ids()
            .filter(|&id| {
                kb.kind(id).ok() == Some(kind)
                    && kb
                        .name(id)
                        .is_ok_and(|n| bpfload_btf::core::essential_name(n) == name)
            })
            .collect();
        assert_eq!(indexed, scanned, "{name}");
        assert!(!scanned.is_empty(), "{name}");
    }
}

/// vmlinux parsed without its name index (the process-wide one is indexed
/// during parsing), like a custom BTF or one read by an older path.
fn unindexed_vmlinux() -> bpfload_btf::BtfData {
    let bytes =
        kernel::read_btf_bytes(Path::new("/sys/kernel/btf/vmlinux"), false).expect("vmlinux BTF");
    bpfload_btf::BtfData::parse(bytes).expect("vmlinux parses")
}

/// The engine looks candidates up with one pass over vmlinux when it has no
/// name index yet (first load), and through the index afterwards: both must
/// give identical results for every fixture and corpus object.
#[test]
fn scan_and_index_paths_agree_on_vmlinux() {
    let indexed = unindexed_vmlinux();
    indexed.btf().build_index();
    let mut objects = vec![
        Obj::open(&fixture("core_task.bpf.o")),
        Obj::open(&fixture("core_ambiguous.bpf.o")),
    ];
    if let Some(o) = corpus("relocs_enum-el.elf") {
        objects.push(o);
    }
    for obj in &objects {
        // a BTF nobody scanned yet: the first pass over it scans
        let fresh = unindexed_vmlinux();
        let local = obj.btf();
        let run = |vm: &bpfload_btf::BtfData| {
            let targets = Targets::new("vmlinux", vm.btf());
            let mut relocator = CoreRelocator::new(&local, &targets);
            let progs = obj.programs();
            let all: Vec<(usize, CoreRelo)> =
                progs.iter().flat_map(|p| p.relos.iter().copied()).collect();
            relocator.prefetch(all.iter().map(|(_, r)| r));
            progs
                .into_iter()
                .map(|mut p| {
                    let r = relocator.relocate_indexed(p.relos.iter().copied(), &mut p.insns);
                    (p.name, r, bpfload_btf::core::insns_to_bytes(&p.insns))
                })
                .collect::<Vec<_>>()
        };
        let t = std::time::Instant::now();
        let a = run(&fresh);
        let scan_time = t.elapsed();
        let t = std::time::Instant::now();
        let b = run(&indexed);
        let index_time = t.elapsed();
        assert_eq!(a, b);
        eprintln!("relocation with one scan: {scan_time:?}, with the index: {index_time:?}");
    }
}

/// The first CO-RE pass over the kernel's BTF scans its keys and the second builds the name
/// index, single lookups before them or not (they share one count: a pass uses the budget of 8
/// lookups). BTF without keys walks all its types once and builds the index on its second pass.
#[test]
fn first_core_pass_scans_the_second_builds_the_index() {
    let obj = Obj::open(&fixture("core_task.bpf.o"));
    let local = obj.btf();
    let pass = |vm: &bpfload_btf::BtfData| {
        let targets = Targets::new("vmlinux", vm.btf());
        let mut relocator = CoreRelocator::new(&local, &targets);
        let all: Vec<(usize, CoreRelo)> = obj
            .programs()
            .iter()
            .flat_map(|p| p.relos.iter().copied())
            .collect();
        relocator.prefetch(all.iter().map(|(_, r)| r));
    };
    let bytes =
        kernel::read_btf_bytes(Path::new("/sys/kernel/btf/vmlinux"), false).expect("vmlinux BTF");
    for lookups in [0, 7] {
        let keyed = bpfload_btf::BtfData::parse_indexed(bytes.clone()).expect("vmlinux parses");
        for _ in 0..lookups {
            assert!(keyed
                .btf()
                .find_by_name_kind("task_struct", Kind::Struct)
                .is_some());
        }
        assert!(!keyed.btf().is_indexed(), "{lookups} lookups scan");
        pass(&keyed);
        assert!(
            !keyed.btf().is_indexed(),
            "{lookups} lookups: the first pass scans"
        );
        pass(&keyed);
        assert!(
            keyed.btf().is_indexed(),
            "{lookups} lookups: the second builds"
        );
    }
    let plain = bpfload_btf::BtfData::parse(bytes).expect("vmlinux parses");
    pass(&plain);
    assert!(
        !plain.btf().is_indexed(),
        "the first pass over BTF without keys scans"
    );
    pass(&plain);
    assert!(plain.btf().is_indexed(), "the second builds the index");
}

/// Loads a relocated tp_btf fixture program (attach target from vmlinux),
/// with `.bss` references pointed at a fresh array map.
fn load_tp_btf(what: &str, p: &Prog, bss_size: u32, attach: &str) -> Option<Result<(), String>> {
    if !require_root(what) {
        return None;
    }
    let vm = kernel::vmlinux().expect("vmlinux BTF");
    let attach_btf_id = vm
        .btf()
        .find_by_name_kind(&format!("btf_trace_{attach}"), Kind::Typedef)
        .expect("tracepoint typedef in vmlinux");
    let map = bpfload_syscall::map::create(&bpfload_syscall::MapCreateAttr {
        map_type: 2,
        key_size: 4,
        value_size: bss_size,
        max_entries: 1,
        ..Default::default()
    })
    .expect("array map for .bss");
    let mut insns = p.insns.clone();
    for &(idx, var_off) in &p.bss_refs {
        let add = insns[idx].imm as i64;
        insns[idx].set_src_reg(2);
        insns[idx].imm = std::os::fd::AsRawFd::as_raw_fd(&map);
        insns[idx + 1].imm = (var_off as i64 + add) as i32;
    }
    let license = CString::new("GPL").unwrap();
    let attr = ProgLoadAttr {
        prog_type: 26,            // BPF_PROG_TYPE_TRACING
        expected_attach_type: 23, // BPF_TRACE_RAW_TP
        attach_btf_id,
        insns: &insns,
        license: &license,
        ..Default::default()
    };
    Some(
        bpfload_syscall::prog::load(&attr, &LogOptions::default())
            .map(drop)
            .map_err(|e| format!("{}: {}", e.errno(), e.log())),
    )
}

#[test]
fn load_size_adjustment_against_running_kernel() {
    let vm = kernel::vmlinux().expect("vmlinux BTF");
    let kb = vm.btf();
    let task = struct_id(&kb, "task_struct");
    let int_of = |field: &str| {
        let (off, _, ty) = find_member(&kb, task, field).unwrap();
        let t = kb
            .type_by_id(kb.skip_mods_and_typedefs(ty).unwrap())
            .unwrap();
        match t {
            Type::Int(i) => (off / 8, i.size, i.is_signed()),
            other => panic!("task_struct.{field} is {:?}", other.kind()),
        }
    };
    let (flags_off, flags_size, flags_signed) = int_of("flags");
    let (pid_off, pid_size, pid_signed) = int_of("pid");
    // what the fixture relies on: both narrower than the local `long`s
    assert!(flags_size < 8 && !flags_signed && pid_size < 8 && pid_signed);

    let targets = Targets::kernel(&vm);
    let obj = Obj::open(&fixture("core_direct.bpf.o"));
    let local = obj.btf();
    let mut relocator = CoreRelocator::new(&local, &targets);
    for mut p in obj.programs() {
        let res = relocator
            .relocate_indexed(p.relos.iter().copied(), &mut p.insns)
            .unwrap();
        let r = res
            .iter()
            .find(|r| r.kind == CoreReloKind::FieldByteOffset && r.local_type_name == "task_struct")
            .unwrap();
        let i = &p.insns[r.insn_idx];
        match p.name.as_str() {
            "narrowed_load" => {
                assert_eq!(
                    r.outcome,
                    Outcome::Patched {
                        mem_size: Some((8, flags_size))
                    }
                );
                assert_eq!(i.off as u32, flags_off);
                let size_code = match flags_size {
                    4 => 0x00,
                    2 => 0x08,
                    1 => 0x10,
                    _ => unreachable!(),
                };
                assert_eq!(
                    i.code,
                    0x61 & !0x18 | size_code,
                    "LDX MEM with the kernel's width"
                );
                if let Some(load) = load_tp_btf(&p.name, &p, 16, "task_newtask") {
                    load.unwrap_or_else(|e| panic!("{}: {e}", p.name));
                }
            }
            "signed_load_poisoned" => {
                assert_eq!(r.new_val, pid_off as u64);
                assert_eq!(r.outcome, Outcome::Poisoned(PoisonReason::MemSizeAdjust));
                assert_eq!((i.code, i.imm), (0x85, POISON_IMM));
                // libbpf rewrites the verifier's complaint about this insn
                // into "failed to resolve CO-RE relocation <spec>": the spec
                // text is ours, in libbpf's format
                assert_eq!(
                    r.local_spec,
                    "<byte_off> [6] struct task_struct.pid (0:1 @ offset 8)"
                );
                if let Some(load) = load_tp_btf(&p.name, &p, 16, "task_newtask") {
                    let err = load.expect_err("reachable poisoned load");
                    assert!(err.contains("invalid func unknown#195896080"), "{err}");
                }
            }
            other => panic!("unexpected program {other}"),
        }
    }
}

/// The first CO-RE pass over a BTF scans it; the next pass builds the name
/// index (once per process), so repeated loads look names up in microseconds.
/// All three ways give the same answers.
#[test]
fn second_pass_builds_the_name_index() {
    let vm = unindexed_vmlinux();
    let obj = Obj::open(&fixture("core_task.bpf.o"));
    let local = obj.btf();
    let targets = Targets::new("vmlinux", vm.btf());
    let pass = || {
        let mut relocator = CoreRelocator::new(&local, &targets);
        obj.programs()
            .into_iter()
            .map(|mut p| {
                let r = relocator
                    .relocate_indexed(p.relos.iter().copied(), &mut p.insns)
                    .unwrap();
                (r, bpfload_btf::core::insns_to_bytes(&p.insns))
            })
            .collect::<Vec<_>>()
    };
    let first = pass();
    let second = pass();
    let third = pass();
    assert_eq!(first, second);
    assert_eq!(second, third);
}
