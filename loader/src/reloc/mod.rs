//! Relocation of main programs: subprogram calls and callbacks (`calls.rs`), `.BTF.ext` info
//! (`ext_info.rs`), then map and global data references (`data.rs`).

pub mod calls;
pub mod data;
pub(crate) mod exc_cb;
pub mod ext_info;
pub(crate) mod helpers;

use crate::insn::Insn;
use crate::object::relocs::Reloc;
pub use ext_info::ExtOut;

/// A main program with its subprograms appended and call offsets fixed.
#[derive(Debug, Clone)]
pub(crate) struct Linked {
    /// Index into the object's functions.
    pub prog: usize,
    pub insns: Vec<Insn>,
    /// Every relocation of every included function, at its absolute instruction index.
    pub relos: Vec<(usize, Reloc)>,
    pub func_info: Option<ExtOut>,
    pub line_info: Option<ExtOut>,
    /// The functions included, in placement order (main first).
    pub funcs: Vec<usize>,
}

/// Linking a program failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("program '{program}': {msg}")]
pub struct LinkError {
    /// The program (or subprogram) at fault.
    pub program: String,
    /// What went wrong.
    pub msg: String,
}
