//! A thin, bounds-checked view of a BPF ELF relocatable object, on top of goblin.
//!
//! Everything the rest of `object/` needs is copied into plain structs indexed by section and symbol
//! index, so later passes can look things up in O(1) instead of scanning.

use goblin::elf::{header, section_header as sh, sym};

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

#[derive(Debug)]
pub(crate) struct RelSection {
    /// The section the relocations apply to (`sh_info`).
    pub target: usize,
    pub rels: Vec<Rel>,
}

pub(crate) struct ElfFile<'a> {
    pub endian: Endianness,
    pub sections: Vec<Section<'a>>,
    pub symbols: Vec<Symbol<'a>>,
    pub rel_sections: Vec<RelSection>,
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
        let elf = RawElf::parse(data).map_err(|e| fmt_err(format!("malformed ELF: {e}")))?;
        if elf.e_type != header::ET_REL {
            return Err(fmt_err(format!(
                "ELF type {} is not ET_REL (a relocatable .o is required)",
                elf.e_type
            )));
        }
        if elf.e_machine != header::EM_BPF && elf.e_machine != 0 {
            return Err(fmt_err(format!(
                "ELF machine {} is not EM_BPF ({})",
                elf.e_machine,
                header::EM_BPF
            )));
        }

        let mut sections = Vec::with_capacity(elf.shdrs.len());
        for (idx, shdr) in elf.shdrs.iter().enumerate() {
            let name = elf
                .shstrtab
                .get_at(shdr.name as usize)
                .ok_or_else(|| fmt_err(format!("section {idx}: bad name offset {}", shdr.name)))?;
            let sec_data = if shdr.sh_type == sh::SHT_NOBITS || idx == 0 {
                &[][..]
            } else {
                let start = usize::try_from(shdr.offset).ok();
                let end = start
                    .zip(usize::try_from(shdr.size).ok())
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
                flags: shdr.flags,
                size: shdr.size,
                info: shdr.info,
                data: sec_data,
            });
        }

        let symtab_count = sections
            .iter()
            .filter(|s| s.sh_type == sh::SHT_SYMTAB)
            .count();
        if symtab_count > 1 {
            return Err(fmt_err("multiple SYMTAB sections"));
        }
        let mut symbols = Vec::with_capacity(elf.sym_count());
        for i in 0..elf.sym_count() {
            let [st_name, info, other, shndx, value, size] = elf.sym(i);
            let name = elf
                .strtab
                .get_at(st_name as usize)
                .ok_or_else(|| fmt_err(format!("symbol name offset {st_name} out of range")))?;
            symbols.push(Symbol {
                name,
                shndx: shndx as usize,
                value,
                size,
                bind: (info >> 4) as u8,
                typ: (info & 0xf) as u8,
                visibility: (other & 0x3) as u8,
            });
        }

        let mut rel_sections = Vec::new();
        for &(idx, relocs) in &elf.relocs {
            let shdr = &sections[idx];
            if shdr.sh_type != sh::SHT_REL {
                // BPF objects only use SHT_REL; libbpf ignores RELA, so do we.
                continue;
            }
            let target = shdr.info as usize;
            if target >= sections.len() {
                return Err(fmt_err(format!(
                    "relocation section '{}' targets section {target} which does not exist",
                    shdr.name
                )));
            }
            let count = relocs.len() / REL_SIZE;
            let mut rels = Vec::with_capacity(count);
            for i in 0..count {
                let (offset, sym) = elf.rel(relocs, i);
                if sym >= symbols.len() {
                    return Err(fmt_err(format!(
                        "relocation in '{}' refers to symbol {} (only {} symbols)",
                        shdr.name,
                        sym,
                        symbols.len()
                    )));
                }
                rels.push(Rel { offset, sym });
            }
            rel_sections.push(RelSection { target, rels });
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
/// headers and their names, the symbol table and the REL/RELA sections, read with the checks
/// and errors (texts included) of the goblin 0.10 functions `Elf::parse` calls. Program headers,
/// the dynamic section and symbol versioning are not read: a relocatable BPF object has none, and
/// libbpf never looks at them. Reading the fields here rather than through goblin's scroll-derived
/// parsers saves ~10 KB of the static `bpfload` binary (issue 8); the tests check that both give
/// the same results and the same errors.
struct RawElf<'a> {
    e_type: u16,
    e_machine: u16,
    shdrs: Vec<Shdr>,
    shstrtab: StrTab<'a>,
    /// The symbol table's bytes (24 per symbol) and its byte order.
    syms: &'a [u8],
    strtab: StrTab<'a>,
    /// REL and RELA sections by section index, with their bytes.
    relocs: Vec<(usize, &'a [u8])>,
    little: bool,
}

/// An ELF64 section header (`Elf64_Shdr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shdr {
    name: u32,
    sh_type: u32,
    flags: u64,
    addr: u64,
    offset: u64,
    size: u64,
    link: u32,
    info: u32,
    entsize: u64,
}

const SHDR_SIZE: usize = 64;
const SYM_SIZE: usize = 24;
const REL_SIZE: usize = 16;

/// goblin's `Error::Malformed` text.
#[cold]
fn malformed(msg: String) -> String {
    format!("Malformed entity: {msg}")
}

/// An unsigned field of `n` bytes at `off` (scroll's checks and error texts).
fn field(b: &[u8], off: usize, n: usize, little: bool) -> Result<u64, String> {
    let Some(rest) = b.get(off..) else {
        return Err(format!("bad offset {off}"));
    };
    let Some(bytes) = rest.get(..n) else {
        return Err(format!("type is too big ({n}) for {}", rest.len()));
    };
    let mut v = 0u64;
    for (i, &x) in bytes.iter().enumerate() {
        let shift = if little { i } else { n - 1 - i };
        v |= u64::from(x) << (8 * shift);
    }
    Ok(v)
}

/// Reads consecutive fields of the given sizes from `b` at `off`, as scroll-derived structs do.
fn fields<const N: usize>(
    b: &[u8],
    off: usize,
    sizes: [u8; N],
    little: bool,
) -> Result<[u64; N], String> {
    // The outer read checks the struct's offset, the fields are read from the rest.
    let Some(rest) = b.get(off..) else {
        return Err(format!("bad offset {off}"));
    };
    let mut out = [0u64; N];
    let mut at = 0;
    for (o, &n) in out.iter_mut().zip(&sizes) {
        *o = field(rest, at, n as usize, little)?;
        at += n as usize;
    }
    Ok(out)
}

fn read_shdr(b: &[u8], off: usize, little: bool) -> Result<Shdr, String> {
    let [name, sh_type, flags, addr, offset, size, link, info, _align, entsize] =
        fields(b, off, [4, 4, 8, 8, 8, 8, 4, 4, 8, 8], little)?;
    Ok(Shdr {
        name: name as u32,
        sh_type: sh_type as u32,
        flags,
        addr,
        offset,
        size,
        link: link as u32,
        info: info as u32,
        entsize,
    })
}

impl Shdr {
    /// goblin's `SectionHeader::check_size`.
    fn check_size(&self, size: usize) -> Result<(), String> {
        if self.sh_type == sh::SHT_NOBITS || self.size == 0 {
            return Ok(());
        }
        let (end, overflow) = self.offset.overflowing_add(self.size);
        if overflow || end > size as u64 {
            return Err(malformed(format!(
                "Section {} size ({}) + offset ({}) is out of bounds. Overflowed: {}",
                self.name, self.offset, self.size, overflow
            )));
        }
        let (_, overflow) = self.addr.overflowing_add(self.size);
        if overflow {
            return Err(malformed(format!(
                "Section {} size ({}) + addr ({}) is out of bounds. Overflowed: {}",
                self.name, self.addr, self.size, overflow
            )));
        }
        Ok(())
    }
}

/// A string table: NUL-separated UTF-8 strings (goblin's `Strtab`).
#[derive(Default)]
struct StrTab<'a>(&'a str);

impl<'a> StrTab<'a> {
    /// goblin's `Strtab::parse` with delimiter 0: in bounds and UTF-8 throughout.
    fn parse(b: &'a [u8], offset: usize, len: usize) -> Result<Self, String> {
        if offset > b.len() {
            return Err(malformed(format!(
                "String table offset ({offset}) is beyond file boundary ({})",
                b.len()
            )));
        }
        let (end, overflow) = offset.overflowing_add(len);
        if overflow || end > b.len() {
            return Err(malformed(format!(
                "Strtable size ({len}) + offset ({offset}) is out of bounds for {} #bytes. Overflowed: {overflow}",
                b.len()
            )));
        }
        let bytes = &b[offset..end];
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(StrTab(s)),
            Err(e) => {
                // goblin reads the strings one by one and reports the bytes from the start of
                // the first invalid one to the end (a NUL never splits a valid character).
                let bad = bytes[..e.valid_up_to()]
                    .iter()
                    .rposition(|&c| c == 0)
                    .map_or(0, |p| p + 1);
                Err(format!("bad input invalid utf8 ({})", bytes.len() - bad))
            }
        }
    }

    /// goblin's `Strtab::get_at`: the string at `off`, or the rest of the string `off` points
    /// into; `None` past the table (one past an unterminated last string gives "") or inside a
    /// character.
    fn get_at(&self, off: usize) -> Option<&'a str> {
        let s = self.0;
        if off >= s.len() {
            return (off == s.len() && !s.is_empty() && !s.ends_with('\0')).then_some("");
        }
        let rest = s.get(off..)?;
        Some(rest.split('\0').next().unwrap_or(""))
    }
}

impl<'a> RawElf<'a> {
    /// Mirrors `Elf::parse_with_opts` (strict mode) for a 64-bit object; the caller has checked
    /// the identification bytes (magic, class, data encoding).
    fn parse(bytes: &'a [u8]) -> Result<Self, String> {
        let little = bytes[header::EI_DATA] == header::ELFDATA2LSB;
        // Elf64_Ehdr after e_ident: e_type, e_machine, e_version, e_entry, e_phoff, e_shoff,
        // e_flags, e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx.
        let [e_type, e_machine, _, _, _, e_shoff, _, _, _, _, _, e_shnum, e_shstrndx] = fields(
            bytes,
            header::SIZEOF_IDENT,
            [2, 2, 4, 8, 8, 8, 4, 2, 2, 2, 2, 2, 2],
            little,
        )?;
        // SectionHeader::parse: no headers at offset 0; a count of 0 is in the first header.
        let mut shdrs = Vec::new();
        let mut off = e_shoff as usize;
        if off != 0 {
            let first = read_shdr(bytes, off, little)?;
            let mut count = e_shnum as usize;
            if count == 0 {
                count = first.size as usize;
            }
            if count > bytes.len() / SHDR_SIZE {
                return Err(format!("Buffer is too short for {count} section headers"));
            }
            shdrs.reserve_exact(count);
            shdrs.push(first);
            for _ in 1..count {
                off += SHDR_SIZE;
                shdrs.push(read_shdr(bytes, off, little)?);
            }
        }
        let strtab_at = |mut idx: usize| -> Result<StrTab<'a>, String> {
            if idx == sh::SHN_XINDEX as usize {
                match shdrs.first() {
                    None => return Ok(StrTab::default()),
                    Some(s) => idx = s.link as usize,
                }
            }
            match shdrs.get(idx) {
                None => Ok(StrTab::default()),
                Some(s) => {
                    s.check_size(bytes.len())?;
                    StrTab::parse(bytes, s.offset as usize, s.size as usize)
                }
            }
        };
        let shstrtab = strtab_at(e_shstrndx as usize)?;
        let mut syms: &[u8] = &[];
        let mut strtab = StrTab::default();
        if let Some(s) = shdrs.iter().rfind(|s| s.sh_type == sh::SHT_SYMTAB) {
            // Symtab::parse
            let count = s.size.checked_div(s.entsize).unwrap_or(0) as usize;
            let offset = s.offset as usize;
            if offset >= bytes.len() {
                return Err(malformed(format!(
                    "Symbol table offset ({offset}) is beyond file boundary ({})",
                    bytes.len()
                )));
            }
            let size = count.checked_mul(SYM_SIZE).ok_or_else(|| {
                malformed(format!(
                    "Too many ELF symbols (offset {offset:#x}, count {count})"
                ))
            })?;
            let available = bytes.len() - offset;
            if size > available {
                return Err(malformed(format!(
                    "Symbol table extends beyond file boundary (requested: {size}, available: {available})"
                )));
            }
            syms = &bytes[offset..offset + size];
            strtab = strtab_at(s.link as usize)?;
        }
        let mut relocs = Vec::new();
        for (idx, s) in shdrs.iter().enumerate() {
            if s.sh_type == sh::SHT_RELA || s.sh_type == sh::SHT_REL {
                s.check_size(bytes.len())?;
                // In bounds after check_size (which passes an empty section at any offset).
                let data = if s.size == 0 {
                    &[][..]
                } else {
                    &bytes[s.offset as usize..(s.offset + s.size) as usize]
                };
                relocs.push((idx, data));
            }
        }
        Ok(RawElf {
            e_type: e_type as u16,
            e_machine: e_machine as u16,
            shdrs,
            shstrtab,
            syms,
            strtab,
            relocs,
            little,
        })
    }

    /// Symbol `i` of the symbol table: (st_name, st_info, st_other, st_shndx, st_value,
    /// st_size).
    fn sym(&self, i: usize) -> [u64; 6] {
        fields(self.syms, i * SYM_SIZE, [4, 1, 1, 2, 8, 8], self.little)
            .expect("in the symbol table")
    }

    fn sym_count(&self) -> usize {
        self.syms.len() / SYM_SIZE
    }

    /// Relocation `i` of a REL section's bytes: (r_offset, r_sym).
    fn rel(&self, data: &[u8], i: usize) -> (u64, usize) {
        let [offset, info] =
            fields(data, i * REL_SIZE, [8, 8], self.little).expect("in the section");
        (offset, (info >> 32) as usize)
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
    if s.name.starts_with(".debug_") {
        return true;
    }
    if let Some(rest) = s.name.strip_prefix(".rel") {
        if rest.starts_with(".debug_") || rest == ".BTF" || rest == ".BTF.ext" {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod goblin_ref {
    use goblin::container::{Container, Ctx, Endian};
    use goblin::elf::{
        header, section_header as sh, Elf, Header, RelocSection, SectionHeader, Symtab,
    };
    use goblin::strtab::Strtab;

    /// The former reader, through goblin's own parsers: the reference for [`RawElf`]'s errors.
    /// The parts of goblin's `Elf::parse` that a relocatable object needs: the header, section
    /// headers and their names, the symbol table and the REL/RELA sections, parsed by the same goblin
    /// functions `Elf::parse` calls, with the same checks and errors. Program headers, the dynamic
    /// section and symbol versioning are not parsed: a relocatable BPF object has none, libbpf never
    /// looks at them, and their parsers were ~10 KB of the static `bpfload` binary (issue 8).
    pub(super) struct GoblinParts<'a> {
        pub(super) header: Header,
        pub(super) section_headers: Vec<SectionHeader>,
        pub(super) shdr_strtab: Strtab<'a>,
        pub(super) syms: Symtab<'a>,
        pub(super) strtab: Strtab<'a>,
        pub(super) shdr_relocs: Vec<(usize, RelocSection<'a>)>,
    }

    impl<'a> GoblinParts<'a> {
        /// Mirrors `Elf::parse_with_opts` (strict mode) for a 64-bit object; the caller has checked
        /// the class and data encoding.
        pub(super) fn parse(bytes: &'a [u8]) -> goblin::error::Result<Self> {
            let header = Elf::parse_header(bytes)?;
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

    fn corpus() -> Vec<std::path::PathBuf> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = Vec::new();
        objects(&root.join("tests/bpf"), &mut files);
        objects(&root.join("../shared/corpus"), &mut files);
        objects(std::path::Path::new("/work/shared/corpus"), &mut files);
        assert!(files.len() > 20, "only {} objects found", files.len());
        files
    }

    /// `RawElf` yields exactly what goblin's full `Elf::parse` yields for the parts the object
    /// model reads, on every fixture and corpus object.
    #[test]
    fn raw_parse_equals_goblins_full_parse() {
        let mut compared = 0;
        for f in &corpus() {
            let data = std::fs::read(f).unwrap();
            let Ok(full) = Elf::parse(&data) else {
                continue;
            };
            if !full.is_64 {
                continue;
            }
            let raw = RawElf::parse(&data).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            let what = f.display();
            assert_eq!(raw.e_type, full.header.e_type, "{what}");
            assert_eq!(raw.e_machine, full.header.e_machine, "{what}");
            let shdrs: Vec<Shdr> = full
                .section_headers
                .iter()
                .map(|s| Shdr {
                    name: s.sh_name as u32,
                    sh_type: s.sh_type,
                    flags: s.sh_flags,
                    addr: s.sh_addr,
                    offset: s.sh_offset,
                    size: s.sh_size,
                    link: s.sh_link,
                    info: s.sh_info,
                    entsize: s.sh_entsize,
                })
                .collect();
            assert_eq!(raw.shdrs, shdrs, "{what}");
            for s in &full.section_headers {
                assert_eq!(
                    raw.shstrtab.get_at(s.sh_name),
                    full.shdr_strtab.get_at(s.sh_name),
                    "{what}"
                );
            }
            assert_eq!(raw.sym_count(), full.syms.len(), "{what}");
            for (i, s) in full.syms.iter().enumerate() {
                let [name, info, other, shndx, value, size] = raw.sym(i);
                assert_eq!(
                    (
                        name as usize,
                        info as u8,
                        other as u8,
                        shndx as usize,
                        value,
                        size
                    ),
                    (s.st_name, s.st_info, s.st_other, s.st_shndx, s.st_value, s.st_size),
                    "{what}"
                );
                assert_eq!(raw.strtab.get_at(s.st_name), full.strtab.get_at(s.st_name));
            }
            assert_eq!(raw.relocs.len(), full.shdr_relocs.len(), "{what}");
            for (&(i, data), (j, b)) in raw.relocs.iter().zip(&full.shdr_relocs) {
                assert_eq!(i, *j, "{what}");
                if full.section_headers[i].sh_type == sh::SHT_REL {
                    let rels: Vec<(u64, usize)> = (0..data.len() / REL_SIZE)
                        .map(|k| raw.rel(data, k))
                        .collect();
                    let want: Vec<(u64, usize)> = b.iter().map(|r| (r.r_offset, r.r_sym)).collect();
                    assert_eq!(rels, want, "{what}");
                }
            }
            compared += 1;
        }
        assert!(compared > 20, "only {compared} objects compared");
    }

    /// What both readers make of an object, for comparing them on damaged ones.
    fn summary(data: &[u8]) -> Result<String, String> {
        let raw = RawElf::parse(data)?;
        let mut out = format!("{} {} {:?}\n", raw.e_type, raw.e_machine, raw.shdrs);
        for s in &raw.shdrs {
            out += &format!("{:?} ", raw.shstrtab.get_at(s.name as usize));
        }
        for i in 0..raw.sym_count() {
            let s = raw.sym(i);
            out += &format!("{s:?} {:?}\n", raw.strtab.get_at(s[0] as usize));
        }
        for &(i, data) in &raw.relocs {
            let entry = if raw.shdrs[i].sh_type == sh::SHT_RELA {
                24
            } else {
                REL_SIZE
            };
            out += &format!("{i} {}\n", data.len() / entry * entry);
            if raw.shdrs[i].sh_type == sh::SHT_REL {
                for k in 0..data.len() / REL_SIZE {
                    out += &format!("{:?}", raw.rel(data, k));
                }
            }
        }
        Ok(out)
    }

    fn goblin_summary(data: &[u8]) -> Result<String, String> {
        let g = super::goblin_ref::GoblinParts::parse(data).map_err(|e| e.to_string())?;
        let shdrs: Vec<Shdr> = g
            .section_headers
            .iter()
            .map(|s| Shdr {
                name: s.sh_name as u32,
                sh_type: s.sh_type,
                flags: s.sh_flags,
                addr: s.sh_addr,
                offset: s.sh_offset,
                size: s.sh_size,
                link: s.sh_link,
                info: s.sh_info,
                entsize: s.sh_entsize,
            })
            .collect();
        let mut out = format!("{} {} {:?}\n", g.header.e_type, g.header.e_machine, shdrs);
        for s in &g.section_headers {
            out += &format!("{:?} ", g.shdr_strtab.get_at(s.sh_name));
        }
        for s in g.syms.iter() {
            let f = [
                s.st_name as u64,
                u64::from(s.st_info),
                u64::from(s.st_other),
                s.st_shndx as u64,
                s.st_value,
                s.st_size,
            ];
            out += &format!("{f:?} {:?}\n", g.strtab.get_at(s.st_name));
        }
        for (i, r) in &g.shdr_relocs {
            let rela = g.section_headers[*i].sh_type == sh::SHT_RELA;
            out += &format!("{i} {}\n", r.len() * if rela { 24 } else { 16 });
            if !rela {
                for x in r.iter() {
                    out += &format!("{:?}", (x.r_offset, x.r_sym));
                }
            }
        }
        Ok(out)
    }

    /// On damaged objects (bytes flipped in the header, the section headers, the string and
    /// symbol tables, truncation), `RawElf` accepts and refuses what goblin's parsers do, with
    /// the same data and the same error texts.
    #[test]
    fn raw_parse_agrees_with_goblin_on_damaged_objects() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut files = corpus();
        files.sort();
        let mut errors = 0;
        for f in files.iter().step_by(5) {
            let data = std::fs::read(f).unwrap();
            if data.len() < 64 || data[header::EI_CLASS] != header::ELFCLASS64 {
                continue;
            }
            let little = data[header::EI_DATA] == header::ELFDATA2LSB;
            let rd = |o: usize, n: usize| field(&data, o, n, little).unwrap_or(0) as usize;
            let (shoff, shnum) = (rd(40, 8), rd(60, 2));
            for round in 0..60 {
                let mut c = data.clone();
                match round % 4 {
                    // The header's fields.
                    0 => c[16 + (rnd() as usize) % 48] ^= 1 << (rnd() % 8),
                    // A section header.
                    1 if shnum > 0 => {
                        let at = shoff + (rnd() as usize % shnum) * 64 + (rnd() as usize % 64);
                        if at < c.len() {
                            c[at] ^= 1 << (rnd() % 8);
                        }
                    }
                    // Anywhere (string tables, symbols, relocations).
                    2 => {
                        // (The identification bytes are checked before, by ElfFile::parse.)
                        let at = 16 + (rnd() as usize) % (c.len() - 16);
                        c[at] = rnd() as u8;
                    }
                    // Truncated.
                    _ => c.truncate(16 + (rnd() as usize) % (c.len() - 16)),
                }
                let (ours, theirs) = (summary(&c), goblin_summary(&c));
                errors += usize::from(theirs.is_err());
                if ours != theirs {
                    let (a, b) = (format!("{ours:?}"), format!("{theirs:?}"));
                    let at = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
                    let from = at.saturating_sub(200);
                    panic!(
                        "{} round {round}: ours ...{} / goblin ...{}",
                        f.display(),
                        &a[from..(at + 100).min(a.len())],
                        &b[from..(at + 100).min(b.len())]
                    );
                }
            }
        }
        assert!(errors > 20, "only {errors} damaged objects refused");
    }
}
