//! Relocation collection (`bpf_object__collect_prog_relos` + `bpf_program__record_reloc`).
//!
//! Each `.rel<sec>` entry is classified once, at open, and stored on the program that owns the
//! instruction, with the instruction index relative to that program. Lookups go through per-section
//! indexes (programs by offset, maps by section/offset), so collection is linear in the relocations.

use std::collections::HashMap;

use super::elf::{ElfFile, Symbol};
use super::maps::MapKind;
use super::Object;
use crate::error::OpenError;
use crate::insn::Insn;

use goblin::elf::{section_header as sh, sym};

/// What a relocation does (libbpf's `enum reloc_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelocKind {
    /// `ld_imm64` of a map: becomes `BPF_PSEUDO_MAP_FD` (`RELO_LD64`). Index into the object's maps.
    MapFd {
        /// Map index.
        map: usize,
    },
    /// `ld_imm64` of an address in a global data section: `BPF_PSEUDO_MAP_VALUE` + offset (`RELO_DATA`).
    MapValue {
        /// Map index.
        map: usize,
    },
    /// bpf-to-bpf call to a `.text` function (`RELO_CALL`).
    Call,
    /// `ld_imm64` of a `.text` function address, i.e. a callback (`RELO_SUBPROG_ADDR`).
    SubprogAddr,
    /// `ld_imm64` of an extern variable (`RELO_EXTERN_LD64`). Index into the object's externs.
    ExternLd64 {
        /// Extern index.
        ext: usize,
    },
    /// Call to an extern function, i.e. a kfunc (`RELO_EXTERN_CALL`).
    ExternCall {
        /// Extern index.
        ext: usize,
    },
}

/// One relocation of a program instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloc {
    /// Instruction index, relative to the start of the function.
    pub insn_idx: usize,
    /// What to patch.
    pub kind: RelocKind,
    /// The symbol's value (`sym_off`): a byte offset in the symbol's section.
    pub sym_off: u64,
    /// The symbol name (may be empty for section symbols).
    pub sym_name: String,
    /// The section the symbol lives in.
    pub(crate) sym_shndx: usize,
}

fn sym_is_extern(s: &Symbol<'_>) -> bool {
    s.is_undefined()
        && matches!(s.bind, sym::STB_GLOBAL | sym::STB_WEAK)
        && s.typ == sym::STT_NOTYPE
}

/// `sym_is_subprog()`.
fn sym_is_subprog(s: &Symbol<'_>, text_shndx: Option<usize>) -> bool {
    if Some(s.shndx) != text_shndx {
        return false;
    }
    if s.bind == sym::STB_LOCAL && s.typ == sym::STT_SECTION {
        return true;
    }
    // Weak functions too: a weak (often hidden) callback's address is an ld_imm64 of its own
    // symbol, and libbpf 1.7 accepts STB_WEAK here just as STB_GLOBAL.
    matches!(s.bind, sym::STB_GLOBAL | sym::STB_WEAK) && s.typ == sym::STT_FUNC
}

/// Indexes built once for the whole collection.
struct Index {
    /// Programs per section, as (first insn, end insn, program index), sorted.
    progs_by_sec: HashMap<usize, Vec<(usize, usize, usize)>>,
    /// Maps per section, as (offset, 0, map index), sorted, for `.maps` and legacy `maps`: the
    /// table and sort types of `progs_by_sec`, so neither has code of its own (issue 8:
    /// binary size).
    maps_by_def: HashMap<usize, Vec<(usize, usize, usize)>>,
    /// section → map index, for global data.
    data_by_sec: HashMap<usize, usize>,
    /// symbol index → extern index.
    extern_by_sym: HashMap<usize, usize>,
}

impl Index {
    /// The map defined at `off` in section `sec`; if several are, the first in map order, as
    /// libbpf's loop over the maps takes (entries with one offset are sorted by map index).
    fn find_map(&self, sec: usize, off: u64) -> Option<usize> {
        let off = usize::try_from(off).ok()?;
        let v = self.maps_by_def.get(&sec)?;
        let first = v.partition_point(|&(o, _, _)| o < off);
        let &(o, _, i) = v.get(first)?;
        (o == off).then_some(i)
    }

    fn find_prog(&self, sec: usize, insn: usize) -> Option<usize> {
        let v = self.progs_by_sec.get(&sec)?;
        let pos = v.partition_point(|&(start, _, _)| start <= insn);
        let &(start, end, idx) = v.get(pos.checked_sub(1)?)?;
        (insn >= start && insn < end).then_some(idx)
    }
}

/// Collects the relocations of every executable section onto its programs.
pub(crate) fn collect(obj: &mut Object, elf: &ElfFile<'_>) -> Result<(), OpenError> {
    let mut index = Index {
        progs_by_sec: HashMap::new(),
        maps_by_def: HashMap::new(),
        data_by_sec: HashMap::new(),
        extern_by_sym: HashMap::new(),
    };
    for (i, p) in obj.programs.iter().enumerate() {
        index.progs_by_sec.entry(p.sec_idx).or_default().push((
            p.sec_insn_off,
            p.sec_insn_off + p.insns.len(),
            i,
        ));
    }
    for (i, m) in obj.maps.iter().enumerate() {
        match m.kind {
            MapKind::Btf | MapKind::Legacy => {
                // An offset beyond the address space is in no section: never referenced.
                if let Ok(off) = usize::try_from(m.sec_offset) {
                    index
                        .maps_by_def
                        .entry(m.sec_idx)
                        .or_default()
                        .push((off, 0, i));
                }
            }
            MapKind::Data | MapKind::Rodata | MapKind::Bss => {
                index.data_by_sec.insert(m.sec_idx, i);
            }
            // Added at load time, never referenced by a relocation.
            MapKind::Kconfig | MapKind::StructOps => {}
        }
    }
    for v in index
        .progs_by_sec
        .values_mut()
        .chain(index.maps_by_def.values_mut())
    {
        crate::sort::sort_copied(v);
    }
    for (i, e) in obj.externs.iter().enumerate() {
        index.extern_by_sym.insert(e.sym_idx, i);
    }

    for rs in &elf.rel_sections {
        let target = &elf.sections[rs.target];
        if !target.is_exec() {
            // `.rel.maps` (map-in-map / prog array initialisers) is handled by the maps code;
            // anything else is skipped, as libbpf does.
            continue;
        }
        for rel in rs.rels() {
            let sec_err = |msg: String| OpenError::Section {
                section: target.name.to_string(),
                msg,
            };
            if rel.offset % Insn::SIZE as u64 != 0 {
                return Err(sec_err(format!(
                    "relocation at offset {} is not instruction-aligned",
                    rel.offset
                )));
            }
            // Past the section's end the file is corrupt (libbpf: "invalid offset", the object
            // is refused); only an offset inside the section may be a gap between programs
            // (an overridden weak function), skipped below.
            if rel.offset >= target.data.len() as u64 {
                return Err(sec_err(format!(
                    "relocation at offset {} is past the section's end ({} bytes)",
                    rel.offset,
                    target.data.len()
                )));
            }
            let sec_insn = (rel.offset / Insn::SIZE as u64) as usize;
            let Some(pidx) = index.find_prog(rs.target, sec_insn) else {
                // libbpf: "probably overridden weak function, skipping".
                log::debug!(
                    "sec '{}': no program for relocated insn #{sec_insn}, skipping",
                    target.name
                );
                continue;
            };
            let sym = &elf.symbols[rel.sym];
            let prog = &obj.programs[pidx];
            let insn_idx = sec_insn - prog.sec_insn_off;
            let relo = record(obj, elf, &index, pidx, insn_idx, rel.sym, sym)?;
            std::sync::Arc::make_mut(&mut obj.programs[pidx].relocs).push(relo);
        }
    }
    for p in &mut obj.programs {
        let relocs: &mut Vec<Reloc> = std::sync::Arc::make_mut(&mut p.relocs);
        crate::sort::sort_by_key_stable(relocs, |r| (r.insn_idx as u64, 0));
    }
    Ok(())
}

/// `bpf_program__record_reloc()`: classifies one relocation.
fn record(
    obj: &Object,
    elf: &ElfFile<'_>,
    index: &Index,
    pidx: usize,
    insn_idx: usize,
    sym_idx: usize,
    sym: &Symbol<'_>,
) -> Result<Reloc, OpenError> {
    let prog = &obj.programs[pidx];
    let insn = &prog.insns[insn_idx];
    let sym_name = if sym.typ == sym::STT_SECTION {
        elf.sections.get(sym.shndx).map(|s| s.name).unwrap_or("")
    } else {
        sym.name
    };
    let err = |msg: String| OpenError::Program {
        program: prog.name.clone(),
        msg,
    };
    let mk = |kind, sym_off| Reloc {
        insn_idx,
        kind,
        sym_off,
        sym_name: sym_name.to_string(),
        sym_shndx: sym.shndx,
    };

    if !insn.is_call() && !insn.is_ld_imm64() {
        return Err(err(format!(
            "invalid relocation against '{sym_name}' for insn #{insn_idx} (code {:#x})",
            insn.code
        )));
    }
    if insn.is_ld_imm64() && insn_idx + 1 >= prog.insns.len() {
        return Err(err(format!("ld_imm64 at insn #{insn_idx} is truncated")));
    }
    if sym_is_extern(sym) {
        let ext = *index.extern_by_sym.get(&sym_idx).ok_or_else(|| {
            err(format!(
                "extern relocation failed to find extern for '{sym_name}'"
            ))
        })?;
        let kind = if insn.is_call() {
            RelocKind::ExternCall { ext }
        } else {
            RelocKind::ExternLd64 { ext }
        };
        return Ok(mk(kind, 0));
    }
    if insn.is_call() {
        if insn.src() != crate::insn::PSEUDO_CALL {
            return Err(err(format!(
                "incorrect bpf_call opcode at insn #{insn_idx}"
            )));
        }
        if sym.shndx == 0 || Some(sym.shndx) != obj.text_shndx {
            // Static programs (aya/cilium style) may call static functions in their own section.
            if !(prog.is_static || obj.allows_same_section_call(sym.shndx, prog.sec_idx)) {
                let sec = elf.sections.get(sym.shndx).map(|s| s.name).unwrap_or("?");
                return Err(err(format!(
                    "bad call relocation against '{sym_name}' in section '{sec}'"
                )));
            }
        }
        if !sym.value.is_multiple_of(Insn::SIZE as u64) {
            return Err(err(format!(
                "bad call relocation offset {} against '{sym_name}'",
                sym.value
            )));
        }
        return Ok(mk(RelocKind::Call, sym.value));
    }
    if sym.shndx == 0 || sym.shndx >= sh::SHN_LORESERVE as usize || sym.shndx >= elf.sections.len()
    {
        return Err(err(format!(
            "invalid relocation against '{sym_name}' in special section {:#x}",
            sym.shndx
        )));
    }
    if sym_is_subprog(sym, obj.text_shndx) {
        if !sym.value.is_multiple_of(8) || insn.imm % 8 != 0 {
            return Err(err(format!(
                "bad subprog address relocation against '{sym_name}'"
            )));
        }
        return Ok(mk(RelocKind::SubprogAddr, sym.value));
    }
    if let Some(map) = crate::arena::reloc_map(obj, sym.shndx) {
        return Ok(mk(
            RelocKind::MapValue {
                map: map.map_err(err)?,
            },
            sym.value,
        ));
    }
    if let Some(&map) = index.data_by_sec.get(&sym.shndx) {
        return Ok(mk(RelocKind::MapValue { map }, sym.value));
    }
    let sec_name = elf.sections[sym.shndx].name;
    if obj.is_maps_section(sym.shndx) {
        let map = index.find_map(sym.shndx, sym.value).ok_or_else(|| {
            err(format!(
                "map relocation failed to find map for section '{sec_name}', offset {}",
                sym.value
            ))
        })?;
        return Ok(mk(RelocKind::MapFd { map }, 0));
    }
    if obj.is_data_section(sym.shndx) {
        return Err(err(format!(
            "data relocation failed to find map for section '{sec_name}'"
        )));
    }
    Err(err(format!(
        "bad relocation against '{sym_name}' in section '{sec_name}'"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two maps at one offset of a maps section (aliases): the first, as libbpf finds it.
    #[test]
    fn find_map_takes_the_first_at_an_offset() {
        let mut maps_by_def = HashMap::new();
        maps_by_def.insert(5, vec![(0, 0, 0), (8, 0, 1), (8, 0, 2), (16, 0, 3)]);
        let index = Index {
            progs_by_sec: HashMap::new(),
            maps_by_def,
            data_by_sec: HashMap::new(),
            extern_by_sym: HashMap::new(),
        };
        assert_eq!(index.find_map(5, 8), Some(1));
        assert_eq!(index.find_map(5, 16), Some(3));
        assert_eq!(index.find_map(5, 0), Some(0));
        assert_eq!(index.find_map(5, 4), None);
        assert_eq!(index.find_map(5, 24), None);
        assert_eq!(index.find_map(6, 0), None);
    }

    /// Sections sharing a name: `.BTF.ext` records naming it go to the first, as libbpf's
    /// `elf_sec_by_name` finds it.
    #[test]
    fn sections_by_name_takes_the_first() {
        let path =
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/bpf/weak_cb.bpf.o");
        let mut obj = Object::open_file(path).unwrap();
        let socket = obj
            .section_names
            .iter()
            .position(|n| n == "socket")
            .unwrap();
        obj.section_names.push("socket".into());
        obj.section_names.push(".text".into());
        let by_name = obj.sections_by_name();
        assert_eq!(by_name["socket"], socket);
        assert_eq!(by_name[".text"], obj.text_shndx.unwrap());
    }

    /// `data` with the first relocation of `.rel<sec>` moved to `r_offset` `off`.
    fn with_rel_offset(data: &[u8], sec: &str, off: u64) -> Vec<u8> {
        let elf = goblin::elf::Elf::parse(data).unwrap();
        let rel = elf
            .section_headers
            .iter()
            .find(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(&format!(".rel{sec}")))
            .unwrap();
        let mut out = data.to_vec();
        // Elf64_Rel: r_offset first.
        let at = rel.sh_offset as usize;
        out[at..at + 8].copy_from_slice(&off.to_le_bytes());
        out
    }

    /// A relocation past the end of its section is a corrupt object, which libbpf refuses
    /// ("invalid offset"), not a gap between programs to skip; at the last instruction it is
    /// still inside (and still skipped when no program is there).
    #[test]
    fn relocation_past_section_end_is_refused() {
        let path =
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/bpf/weak_cb.bpf.o");
        let raw = std::fs::read(path).unwrap();
        let obj = Object::open_bytes("weak_cb", &raw).unwrap();
        let size = obj
            .programs
            .iter()
            .filter(|p| p.section == "socket")
            .map(|p| (p.sec_insn_off + p.insns.len()) * Insn::SIZE)
            .max()
            .unwrap() as u64;
        for off in [size, size + 8, u64::MAX - 7] {
            let e =
                Object::open_bytes("weak_cb", &with_rel_offset(&raw, "socket", off)).unwrap_err();
            assert!(
                e.to_string().contains("past the section's end"),
                "{off}: {e}"
            );
        }
        // The last instruction (`exit`, not a call or ld_imm64): inside, so it is the program's
        // and refused as a bad relocation target, as libbpf does.
        let e =
            Object::open_bytes("weak_cb", &with_rel_offset(&raw, "socket", size - 8)).unwrap_err();
        assert!(e.to_string().contains("invalid relocation"), "{e}");
    }
}
