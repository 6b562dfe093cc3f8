//! Programs: one per `STT_FUNC` symbol in each executable section (`bpf_object__add_programs`).

use super::elf::{ElfFile, Endianness};
use super::relocs::Reloc;
use super::sec_def::{self, SecDef};
use crate::error::OpenError;
use crate::insn::{self, Insn};
use crate::names;

use goblin::elf::sym;

/// A BPF program (or a `.text` subprogram) as found in the object.
#[derive(Debug, Clone)]
pub struct Program {
    pub(crate) name: String,
    /// Section name as written (may start with '?').
    pub(crate) section: String,
    pub(crate) sec_idx: usize,
    /// First instruction of this function inside its section.
    pub(crate) sec_insn_off: usize,
    /// Shared: a load's private copy of the object does not copy instructions.
    pub(crate) insns: std::sync::Arc<[Insn]>,
    pub(crate) sec_def: Option<&'static SecDef>,
    pub(crate) autoload: bool,
    pub(crate) is_subprog: bool,
    /// A STB_LOCAL function outside `.text` (libbpf refuses these; aya and cilium accept them).
    pub(crate) is_static: bool,
    /// Not STB_LOCAL (libbpf's `sym_global`).
    pub(crate) global: bool,
    /// STV_HIDDEN/INTERNAL global: its BTF FUNC is made static before BTF load, as libbpf does.
    pub(crate) mark_btf_static: bool,
    /// Relocations, sorted by instruction index relative to this program.
    /// Shared like `insns` (built at open, where the object is not shared yet).
    pub(crate) relocs: std::sync::Arc<Vec<Reloc>>,
}

impl Program {
    /// The function name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The ELF section name, as written (a leading `?` means autoload off).
    pub fn section(&self) -> &str {
        &self.section
    }
    /// The section name without the `?` marker, as matched against the SEC() table.
    pub fn sec_name(&self) -> &str {
        self.section.strip_prefix('?').unwrap_or(&self.section)
    }
    /// `enum bpf_prog_type`, or `None` when libbpf's SEC() table does not know the section name
    /// (loading such a program fails, as in libbpf).
    pub fn prog_type(&self) -> Option<u32> {
        self.sec_def.map(|d| d.prog_type)
    }
    /// The program type's name ("xdp", "socket_filter", ...), or "unspec" for an unknown section.
    pub fn prog_type_name(&self) -> &'static str {
        self.prog_type()
            .map(names::prog_type_name)
            .unwrap_or("unspec")
    }
    /// `enum bpf_attach_type` from the SEC() table (0 when none).
    pub fn expected_attach_type(&self) -> u32 {
        self.sec_def.map(|d| d.expected_attach_type).unwrap_or(0)
    }
    /// `SEC_*` flags from the SEC() table.
    pub fn sec_flags(&self) -> u32 {
        self.sec_def.map(|d| d.flags).unwrap_or(0)
    }
    /// Index of this function's first instruction within its ELF section (what `.BTF.ext` records
    /// and relocations are relative to).
    pub fn section_insn_offset(&self) -> usize {
        self.sec_insn_off
    }
    /// Instruction count of this function alone (before subprograms are appended).
    pub fn insn_count(&self) -> usize {
        self.insns.len()
    }
    /// The function's own instructions as found in the ELF (host byte order, not relocated).
    pub fn insns(&self) -> &[Insn] {
        &self.insns
    }
    /// Whether the program is loaded by default (`false` for `SEC("?...")`).
    pub fn autoload(&self) -> bool {
        self.autoload
    }
    /// Whether this is a static (STB_LOCAL) function outside `.text`, which libbpf refuses.
    pub fn is_static(&self) -> bool {
        self.is_static
    }
    /// Relocations recorded against this function.
    pub fn relocations(&self) -> &[Reloc] {
        &self.relocs
    }
}

/// Adds the programs of executable section `sec_idx` (`bpf_object__add_programs`).
pub(crate) fn add_programs(
    elf: &ElfFile<'_>,
    sec_idx: usize,
    func_syms: &[usize],
    is_text: bool,
    out: &mut Vec<Program>,
) -> Result<(), OpenError> {
    let sec = &elf.sections[sec_idx];
    let sec_err = |msg: String| OpenError::Section {
        section: sec.name.to_string(),
        msg,
    };
    // No check that the section is whole instructions: like libbpf, only each function's own
    // offset and size are checked, so a 17-byte section holding one 16-byte function opens.
    let big_endian = elf.endian == Endianness::Big;
    let (autoload, stripped) = match sec.name.strip_prefix('?') {
        Some(rest) => (false, rest),
        None => (true, sec.name),
    };
    let def = sec_def::find(stripped);
    for s in func_syms.iter().map(|&i| &elf.symbols[i]) {
        let (off, size) = (s.value, s.size);
        // The checks follow `bpf_object__add_programs` + `bpf_object__init_prog` in order: the
        // name (libbpf only needs it readable; an empty one is refused here too), the section
        // bounds, then non-empty whole instructions. Any failure refuses the whole open, as there.
        if s.name.is_empty() {
            return Err(sec_err(format!(
                "function symbol at offset {off} has no name"
            )));
        }
        let end = off
            .checked_add(size)
            .filter(|e| *e <= sec.data.len() as u64)
            .ok_or_else(|| OpenError::Program {
                program: s.name.to_string(),
                msg: format!(
                    "[{off}, +{size}) exceeds section '{}' of {} bytes",
                    sec.name,
                    sec.data.len()
                ),
            })?;
        // A zero-size function would be a program with no instructions; libbpf calls it
        // corrupted (-EINVAL), as it does a misaligned one.
        if size == 0 || off % Insn::SIZE as u64 != 0 || size % Insn::SIZE as u64 != 0 {
            return Err(OpenError::Program {
                program: s.name.to_string(),
                msg: format!(
                    "corrupted program in section '{}': offset {off}, size {size} \
                     (must be a non-empty, whole number of {}-byte instructions)",
                    sec.name,
                    Insn::SIZE
                ),
            });
        }
        let (start, end) = ((off / 8) as usize, (end / 8) as usize);
        let hidden = matches!(s.visibility, sym::STV_HIDDEN | sym::STV_INTERNAL);
        out.push(Program {
            name: s.name.to_string(),
            section: sec.name.to_string(),
            sec_idx,
            sec_insn_off: start,
            // Decoded straight into the program's own allocation: no section-wide copy (which
            // doubled the instructions' memory while a large object was opened).
            insns: insn::decode_range(&sec.data[start * Insn::SIZE..end * Insn::SIZE], big_endian),
            sec_def: if is_text { None } else { def },
            autoload,
            is_subprog: is_text,
            is_static: !is_text && s.is_local(),
            global: !s.is_local(),
            mark_btf_static: !s.is_local() && hidden,
            relocs: Default::default(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::error::OpenError;
    use crate::tests::elf_edit::*;
    use crate::tests::fixtures::fixture;
    use crate::Object;

    /// demo.bpf.o: section `xdp` holds exactly one function, `xdp_count`; `.text` holds
    /// `len_bucket`.
    fn demo() -> Vec<u8> {
        std::fs::read(fixture("demo.bpf.o")).unwrap()
    }

    /// libbpf 1.7 refuses the whole open for a zero-size function symbol ("sec 'xdp': corrupted
    /// program 'xdp_count', offset 0, size 0", -EINVAL), in a program section or in `.text`;
    /// bpfload made it a program with no instructions.
    #[test]
    fn zero_size_function_refuses_the_open() {
        for name in ["xdp_count", "len_bucket"] {
            let mut b = demo();
            let sym = symbol(&b, name);
            put_u64(&mut b, sym + ST_SIZE, 0);
            match Object::open_bytes("zero.o", &b) {
                Err(OpenError::Program { program, msg }) => {
                    assert_eq!(program, name);
                    assert!(msg.contains("corrupted program"), "{msg}");
                    assert!(msg.contains("offset 0, size 0"), "{msg}");
                }
                Err(e) => panic!("{name}: wrong error: {e}"),
                Ok(o) => panic!(
                    "{name}: opened with {} programs",
                    o.programs().count() + o.subprograms().count()
                ),
            }
        }
    }

    /// libbpf checks each function's offset and size, not the section's size: a section one byte
    /// longer than its only function opens there (the byte is never used), while a function
    /// covering that byte is corrupted.
    #[test]
    fn section_size_need_not_be_whole_instructions() {
        let mut b = demo();
        let xdp = section_header(&b, "xdp");
        let size = u64_at(&b, xdp + SH_SIZE);
        put_u64(&mut b, xdp + SH_SIZE, size + 1);
        let o = Object::open_bytes("odd.o", &b).unwrap_or_else(|e| panic!("{e}"));
        let p = o.programs().find(|p| p.name() == "xdp_count").unwrap();
        assert_eq!(p.insn_count() as u64, size / 8);

        let sym = symbol(&b, "xdp_count");
        put_u64(&mut b, sym + ST_SIZE, size + 1);
        match Object::open_bytes("odd.o", &b) {
            Err(OpenError::Program { program, msg }) => {
                assert_eq!(program, "xdp_count");
                assert!(
                    msg.contains(&format!("offset 0, size {}", size + 1)),
                    "{msg}"
                );
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
    }
}
