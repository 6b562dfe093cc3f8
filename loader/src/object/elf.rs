//! A thin, bounds-checked view of a BPF ELF relocatable object, on top of goblin.
//!
//! Everything the rest of `object/` needs is copied into plain structs indexed by section and symbol
//! index, so later passes can look things up in O(1) instead of scanning.

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::{header, section_header as sh, sym, Header, RelocSection, SectionHeader, Symtab};
use goblin::strtab::Strtab;

use crate::error::OpenError;

/// ELF data encoding of the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endianness {
    /// ELFDATA2LSB.
    Little,
    /// ELFDATA2MSB.
    Big,
}

impl Endianness {
    /// The byte order of the machine we run on.
    pub fn native() -> Self {
        if cfg!(target_endian = "little") {
            Endianness::Little
        } else {
            Endianness::Big
        }
    }

    /// "little-endian" / "big-endian".
    pub fn describe(self) -> &'static str {
        match self {
            Endianness::Little => "little-endian",
            Endianness::Big => "big-endian",
        }
    }

    pub(crate) fn u32(self, b: [u8; 4]) -> u32 {
        match self {
            Endianness::Little => u32::from_le_bytes(b),
            Endianness::Big => u32::from_be_bytes(b),
        }
    }

    /// Reads a u32 at `off`, or None when out of bounds.
    pub(crate) fn read_u32(self, data: &[u8], off: usize) -> Option<u32> {
        let b = data.get(off..off.checked_add(4)?)?;
        Some(self.u32(b.try_into().ok()?))
    }
}

pub(crate) const SHT_LLVM_ADDRSIG: u32 = 0x6FFF_4C03;

#[derive(Debug, Clone)]
pub(crate) struct Section<'a> {
    pub name: &'a str,
    pub sh_type: u32,
    pub flags: u64,
    pub size: u64,
    pub info: u32,
    /// The section bytes (empty for NOBITS).
    pub data: &'a [u8],
}

impl Section<'_> {
    pub fn is_exec(&self) -> bool {
        self.sh_type == sh::SHT_PROGBITS && self.flags & u64::from(sh::SHF_EXECINSTR) != 0
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Symbol<'a> {
    pub name: &'a str,
    pub shndx: usize,
    pub value: u64,
    pub size: u64,
    pub bind: u8,
    pub typ: u8,
    pub visibility: u8,
}

impl Symbol<'_> {
    pub fn is_func(&self) -> bool {
        self.typ == sym::STT_FUNC
    }
    pub fn is_local(&self) -> bool {
        self.bind == sym::STB_LOCAL
    }
    pub fn is_undefined(&self) -> bool {
        self.shndx == sh::SHN_UNDEF as usize
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Rel {
    pub offset: u64,
    pub sym: usize,
}

/// A REL section, read in place: its entries are decoded when iterated, not copied (a 1000-program
/// object has ~450 KB of them, most in sections that are never used).
pub(crate) struct RelSection<'a> {
    /// The section the relocations apply to (`sh_info`).
    pub target: usize,
    relocs: RelocSection<'a>,
}

impl RelSection<'_> {
    /// The entries, in file order. Their symbol indices were checked by [`ElfFile::parse`].
    pub fn rels(&self) -> impl Iterator<Item = Rel> + '_ {
        self.relocs.iter().map(|r| Rel {
            offset: r.r_offset,
            sym: r.r_sym,
        })
    }
}

pub(crate) struct ElfFile<'a> {
    pub endian: Endianness,
    pub sections: Vec<Section<'a>>,
    pub symbols: Vec<Symbol<'a>>,
    pub rel_sections: Vec<RelSection<'a>>,
}

fn fmt_err(msg: impl Into<String>) -> OpenError {
    OpenError::Format(msg.into())
}

impl<'a> ElfFile<'a> {
    /// `bpf_object__elf_init` + the generic part of `bpf_object__elf_collect`.
    pub fn parse(data: &'a [u8]) -> Result<Self, OpenError> {
        // Check the identification bytes ourselves first, so that the error names what is wrong.
        if data.len() < header::SIZEOF_IDENT || &data[..4] != header::ELFMAG {
            return Err(fmt_err("not an ELF file (bad magic)"));
        }
        if data[header::EI_CLASS] != header::ELFCLASS64 {
            return Err(fmt_err("not a 64-bit ELF object (ELFCLASS64 required)"));
        }
        let endian = match data[header::EI_DATA] {
            header::ELFDATA2LSB => Endianness::Little,
            header::ELFDATA2MSB => Endianness::Big,
            other => return Err(fmt_err(format!("unknown ELF data encoding {other}"))),
        };
        let elf = GoblinParts::parse(data).map_err(|e| fmt_err(format!("malformed ELF: {e}")))?;
        if elf.header.e_type != header::ET_REL {
            return Err(fmt_err(format!(
                "ELF type {} is not ET_REL (a relocatable .o is required)",
                elf.header.e_type
            )));
        }
        if elf.header.e_machine != header::EM_BPF && elf.header.e_machine != 0 {
            return Err(fmt_err(format!(
                "ELF machine {} is not EM_BPF ({})",
                elf.header.e_machine,
                header::EM_BPF
            )));
        }

        let mut sections = Vec::with_capacity(elf.section_headers.len());
        for (idx, shdr) in elf.section_headers.iter().enumerate() {
            let name = elf.shdr_strtab.get_at(shdr.sh_name).ok_or_else(|| {
                fmt_err(format!("section {idx}: bad name offset {}", shdr.sh_name))
            })?;
            let sec_data = if shdr.sh_type == sh::SHT_NOBITS || idx == 0 {
                &[][..]
            } else {
                let start = usize::try_from(shdr.sh_offset).ok();
                let end = start
                    .zip(usize::try_from(shdr.sh_size).ok())
                    .and_then(|(s, l)| s.checked_add(l));
                match (start, end) {
                    (Some(s), Some(e)) if e <= data.len() => &data[s..e],
                    _ => {
                        return Err(fmt_err(format!(
                            "section {idx} '{name}' lies outside the file"
                        )))
                    }
                }
            };
            sections.push(Section {
                name,
                sh_type: shdr.sh_type,
                flags: shdr.sh_flags,
                size: shdr.sh_size,
                info: shdr.sh_info,
                data: sec_data,
            });
        }

        // Section 0 is not counted: libbpf walks the sections with `elf_nextscn`, which skips it.
        let symtab_count = sections
            .iter()
            .skip(1)
            .filter(|s| s.sh_type == sh::SHT_SYMTAB)
            .count();
        if symtab_count > 1 {
            return Err(fmt_err("multiple SYMTAB sections"));
        }
        // `bpf_object__elf_collect` needs the symbol table for everything after (programs,
        // relocations, maps) and fails with -ENOENT without one, whatever the object holds,
        // before looking at any other section; an empty open would hide that it was stripped.
        if symtab_count == 0 {
            return Err(fmt_err(
                "couldn't find symbol table, stripped object file? (BPF objects must keep SYMTAB)",
            ));
        }
        let mut symbols = Vec::with_capacity(elf.syms.len());
        for s in elf.syms.iter() {
            let name = elf
                .strtab
                .get_at(s.st_name)
                .ok_or_else(|| fmt_err(format!("symbol name offset {} out of range", s.st_name)))?;
            symbols.push(Symbol {
                name,
                shndx: s.st_shndx,
                value: s.st_value,
                size: s.st_size,
                bind: s.st_bind(),
                typ: s.st_type(),
                visibility: s.st_visibility(),
            });
        }

        let mut rel_sections = Vec::new();
        for (idx, relocs) in elf.shdr_relocs {
            let shdr = &sections[idx];
            if shdr.sh_type != sh::SHT_REL || ignore_section(shdr) {
                // BPF objects only use SHT_REL; libbpf ignores RELA, so do we. Relocations of DWARF
                // and BTF sections are skipped unread, as libbpf's `ignore_elf_section` does.
                continue;
            }
            let target = shdr.info as usize;
            if target >= sections.len() {
                return Err(fmt_err(format!(
                    "relocation section '{}' targets section {target} which does not exist",
                    shdr.name
                )));
            }
            if let Some(r) = relocs.iter().find(|r| r.r_sym >= symbols.len()) {
                return Err(fmt_err(format!(
                    "relocation in '{}' refers to symbol {} (only {} symbols)",
                    shdr.name,
                    r.r_sym,
                    symbols.len()
                )));
            }
            rel_sections.push(RelSection { target, relocs });
        }

        Ok(ElfFile {
            endian,
            sections,
            symbols,
            rel_sections,
        })
    }
}

/// The parts of goblin's `Elf::parse` that a relocatable object needs: the header, section
/// headers and their names, the symbol table and the REL/RELA sections, parsed by the same goblin
/// functions `Elf::parse` calls, with the same checks and errors. Program headers, the dynamic
/// section and symbol versioning are not parsed: a relocatable BPF object has none, libbpf never
/// looks at them, and their parsers were ~10 KB of the static `bpfload` binary (issue 8).
struct GoblinParts<'a> {
    header: Header,
    section_headers: Vec<SectionHeader>,
    shdr_strtab: Strtab<'a>,
    syms: Symtab<'a>,
    strtab: Strtab<'a>,
    shdr_relocs: Vec<(usize, RelocSection<'a>)>,
}

impl<'a> GoblinParts<'a> {
    /// Mirrors `Elf::parse_with_opts` (strict mode) for a 64-bit object; the caller has checked
    /// the class and data encoding.
    fn parse(bytes: &'a [u8]) -> goblin::error::Result<Self> {
        // `Elf::parse_header` parses the 32- and 64-bit headers (~4 KB of code); the class is
        // known, so goblin's 64-bit header parser alone (the same reads and errors).
        let header = Header::from(goblin::elf64::header::Header::parse(bytes)?);
        let little = header.e_ident[header::EI_DATA] == header::ELFDATA2LSB;
        let ctx = Ctx::new(Container::Big, Endian::from(little));
        let section_headers =
            SectionHeader::parse(bytes, header.e_shoff as usize, header.e_shnum as usize, ctx)?;
        let get_strtab = |headers: &[SectionHeader], mut idx: usize| {
            if idx == sh::SHN_XINDEX as usize {
                if headers.is_empty() {
                    return Ok(Strtab::default());
                }
                idx = headers[0].sh_link as usize;
            }
            match headers.get(idx) {
                None => Ok(Strtab::default()),
                Some(shdr) => {
                    shdr.check_size(bytes.len())?;
                    Strtab::parse(bytes, shdr.sh_offset as usize, shdr.sh_size as usize, 0)
                }
            }
        };
        let shdr_strtab = get_strtab(&section_headers, header.e_shstrndx as usize)?;
        let mut syms = Symtab::default();
        let mut strtab = Strtab::default();
        if let Some(shdr) = section_headers
            .iter()
            .rfind(|shdr| shdr.sh_type == sh::SHT_SYMTAB)
        {
            let count = shdr.sh_size.checked_div(shdr.sh_entsize).unwrap_or(0);
            syms = Symtab::parse(bytes, shdr.sh_offset as usize, count as usize, ctx)?;
            strtab = get_strtab(&section_headers, shdr.sh_link as usize)?;
        }
        let mut shdr_relocs = Vec::new();
        for (idx, section) in section_headers.iter().enumerate() {
            let is_rela = section.sh_type == sh::SHT_RELA;
            if is_rela || section.sh_type == sh::SHT_REL {
                section.check_size(bytes.len())?;
                let relocs = RelocSection::parse(
                    bytes,
                    section.sh_offset as usize,
                    section.sh_size as usize,
                    is_rela,
                    ctx,
                )?;
                shdr_relocs.push((idx, relocs));
            }
        }
        Ok(GoblinParts {
            header,
            section_headers,
            shdr_strtab,
            syms,
            strtab,
            shdr_relocs,
        })
    }
}

/// `ignore_elf_section()`.
pub(crate) fn ignore_section(s: &Section<'_>) -> bool {
    if s.sh_type == sh::SHT_STRTAB || s.sh_type == SHT_LLVM_ADDRSIG {
        return true;
    }
    if s.sh_type == sh::SHT_PROGBITS && s.size == 0 && s.name == ".text" {
        return true;
    }
    ignored_by_name(s.name.as_bytes())
}

/// The part of `ignore_elf_section()` that goes by name alone: DWARF sections and the relocations
/// of DWARF and BTF sections. Nothing reads these; `file::read_object` does not even read them
/// from disk.
pub(crate) fn ignored_by_name(name: &[u8]) -> bool {
    if name.starts_with(b".debug_") {
        return true;
    }
    match name.strip_prefix(b".rel") {
        Some(rest) => rest.starts_with(b".debug_") || rest == b".BTF" || rest == b".BTF.ext",
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use goblin::elf::Elf;

    /// Every `.o` under `dir`, recursively.
    fn objects(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                objects(&p, out);
            } else if p.extension().is_some_and(|x| x == "o" || x == "elf") {
                out.push(p);
            }
        }
    }

    /// `GoblinParts` yields exactly what goblin's full `Elf::parse` yields for the parts the
    /// object model reads, on every fixture and corpus object.
    #[test]
    fn subset_parse_equals_goblins_full_parse() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = Vec::new();
        objects(&root.join("tests/bpf"), &mut files);
        objects(&root.join("../shared/corpus"), &mut files);
        objects(std::path::Path::new("/work/shared/corpus"), &mut files);
        assert!(files.len() > 20, "only {} objects found", files.len());
        let mut compared = 0;
        for f in &files {
            let data = std::fs::read(f).unwrap();
            let (Ok(full), parts) = (Elf::parse(&data), GoblinParts::parse(&data)) else {
                continue;
            };
            if !full.is_64 {
                continue;
            }
            let parts = parts.unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            let what = f.display();
            assert_eq!(parts.header, full.header, "{what}");
            assert_eq!(parts.section_headers, full.section_headers, "{what}");
            for s in &full.section_headers {
                assert_eq!(
                    parts.shdr_strtab.get_at(s.sh_name),
                    full.shdr_strtab.get_at(s.sh_name),
                    "{what}"
                );
            }
            assert_eq!(parts.syms.to_vec(), full.syms.to_vec(), "{what}");
            for s in full.syms.iter() {
                assert_eq!(
                    parts.strtab.get_at(s.st_name),
                    full.strtab.get_at(s.st_name),
                    "{what}"
                );
            }
            assert_eq!(parts.shdr_relocs.len(), full.shdr_relocs.len(), "{what}");
            for ((i, a), (j, b)) in parts.shdr_relocs.iter().zip(&full.shdr_relocs) {
                assert_eq!(i, j, "{what}");
                assert_eq!(a.to_vec(), b.to_vec(), "{what}");
            }
            compared += 1;
        }
        assert!(compared > 20, "only {compared} objects compared");
    }

    /// libbpf 1.7 refuses an object without a symbol table ("elf: couldn't find symbol table in
    /// %s, stripped object file?", -ENOENT) whatever else it holds; bpfload opened it with
    /// nothing in it. autoload.bpf.o has two programs and only DWARF/BTF relocations (skipped
    /// unread), so without its SYMTAB nothing else fails first.
    #[test]
    fn stripped_object_is_refused() {
        use crate::tests::elf_edit::*;
        let good = std::fs::read(crate::tests::fixtures::fixture("autoload.bpf.o")).unwrap();
        assert!(ElfFile::parse(&good).is_ok());
        let mut b = good.clone();
        let st = symtab_header(&b);
        put_u32(&mut b, st + SH_TYPE, sh::SHT_NULL);
        match ElfFile::parse(&b) {
            Err(OpenError::Format(msg)) => assert!(msg.contains("stripped"), "{msg}"),
            Err(e) => panic!("wrong error: {e}"),
            Ok(_) => panic!("a stripped object opened"),
        }
        assert!(crate::Object::open_bytes("stripped.o", &b).is_err());

        // A SYMTAB type on section 0 does not count (libbpf's `elf_nextscn` never visits section
        // 0): with the real table as well it is not "multiple symbol tables", and libbpf 1.7
        // opens both programs; alone it is still a stripped object.
        let mut sec0 = good.clone();
        let null_section = section_headers(&sec0)[0];
        put_u32(&mut sec0, null_section + SH_TYPE, sh::SHT_SYMTAB);
        let o = crate::Object::open_bytes("sec0.o", &sec0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(o.programs().count(), 2);
        put_u32(&mut sec0, st + SH_TYPE, sh::SHT_NULL);
        assert!(ElfFile::parse(&sec0).is_err());
    }

    /// The 64-bit header parser gives `Elf::parse_header`'s result and error for a 64-bit
    /// header of either byte order cut at every length (the class and encoding are checked
    /// before it runs).
    #[test]
    fn header_parse_equals_goblins_on_truncated_headers() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/bpf");
        let mut files = Vec::new();
        objects(&path, &mut files);
        let data = std::fs::read(files.first().expect("a fixture object")).unwrap();
        let mut swapped = data[..64].to_vec();
        swapped[header::EI_DATA] = header::ELFDATA2MSB;
        for full in [&data[..64], &swapped[..]] {
            for len in header::SIZEOF_IDENT..=64 {
                let cut = &full[..len];
                let ours = goblin::elf64::header::Header::parse(cut).map(Header::from);
                match (ours, Elf::parse_header(cut)) {
                    (Ok(a), Ok(b)) => assert_eq!(a, b, "len {len}"),
                    (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "len {len}"),
                    (a, b) => panic!("len {len}: {a:?} vs {b:?}"),
                }
            }
        }
    }
}
