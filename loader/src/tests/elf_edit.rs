//! Edits a little-endian fixture's ELF bytes in place, to make the hostile objects that unit tests
//! need from a real clang-built object (every other byte stays as clang wrote it).

use goblin::elf::section_header as sh;

/// `Elf64_Shdr` / `Elf64_Sym` sizes.
const SHDR_SIZE: usize = 64;
const SYM_SIZE: usize = 24;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}
pub(crate) fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
pub(crate) fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// File offsets of the section headers, by section index.
pub(crate) fn section_headers(b: &[u8]) -> Vec<usize> {
    let shoff = u64_at(b, 0x28) as usize;
    (0..u16_at(b, 0x3c) as usize)
        .map(|i| shoff + i * SHDR_SIZE)
        .collect()
}

fn c_str(b: &[u8], at: usize) -> &[u8] {
    let len = b[at..].iter().position(|&c| c == 0).unwrap();
    &b[at..at + len]
}

/// File offset of the header of the section called `name`.
pub(crate) fn section_header(b: &[u8], name: &str) -> usize {
    let hs = section_headers(b);
    let names = u64_at(b, hs[u16_at(b, 0x3e) as usize] + 0x18) as usize;
    *hs.iter()
        .find(|&&h| c_str(b, names + u32_at(b, h) as usize) == name.as_bytes())
        .unwrap_or_else(|| panic!("no section '{name}'"))
}

/// File offset of the header of the (only) SHT_SYMTAB section.
pub(crate) fn symtab_header(b: &[u8]) -> usize {
    *section_headers(b)
        .iter()
        .find(|&&h| u32_at(b, h + 4) == sh::SHT_SYMTAB)
        .expect("a symbol table")
}

/// File offset of the symbol table entry of `name`.
pub(crate) fn symbol(b: &[u8], name: &str) -> usize {
    let st = symtab_header(b);
    let (off, size) = (u64_at(b, st + 0x18) as usize, u64_at(b, st + 0x20) as usize);
    let strings = u64_at(b, section_headers(b)[u32_at(b, st + 0x28) as usize] + 0x18) as usize;
    (off..off + size)
        .step_by(SYM_SIZE)
        .find(|&e| c_str(b, strings + u32_at(b, e) as usize) == name.as_bytes())
        .unwrap_or_else(|| panic!("no symbol '{name}'"))
}

/// `sh_type`, `sh_size` and `st_size` field offsets within their headers.
pub(crate) const SH_TYPE: usize = 4;
pub(crate) const SH_SIZE: usize = 0x20;
pub(crate) const ST_SIZE: usize = 16;
