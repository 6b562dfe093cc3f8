//! Extern symbols (`__kconfig`, `__ksym`, kfuncs): undefined GLOBAL/WEAK NOTYPE symbols.
//!
//! They are recorded at open so that `inspect` can show them and so that a load can refuse an
//! object needing them with an error naming the extern, until extern resolution lands.

use super::elf::ElfFile;
use goblin::elf::sym;

/// One extern symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extern {
    /// Symbol name.
    pub name: String,
    /// Declared `__weak`.
    pub weak: bool,
    /// ELF symbol index (relocations refer to it).
    pub(crate) sym_idx: usize,
}

/// `bpf_object__collect_externs()`, the ELF half: every undefined GLOBAL/WEAK NOTYPE symbol.
pub(crate) fn collect(elf: &ElfFile<'_>) -> Vec<Extern> {
    elf.symbols
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            s.is_undefined()
                && !s.name.is_empty()
                && matches!(s.bind, sym::STB_GLOBAL | sym::STB_WEAK)
                && s.typ == sym::STT_NOTYPE
        })
        .map(|(i, s)| Extern {
            name: s.name.to_string(),
            weak: s.bind == sym::STB_WEAK,
            sym_idx: i,
        })
        .collect()
}
