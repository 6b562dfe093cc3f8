//! bpfload: pure-Rust BPF object loading with libbpf's behaviour and BPF token support.
//!
//! The pipeline: [`Object::open_file`] parses an ELF object (no kernel resources), and
//! [`Loader::load`] relocates it and creates its BTF, maps and programs in the kernel, returning a
//! [`Loaded`] that owns every file descriptor.

pub mod attach;
pub mod diagnose;
pub mod error;
pub mod externs;
mod features;
pub mod insn;
mod load;
pub mod loaded;
mod loader;
mod maps_create;
pub mod names;
pub mod object;
mod prepare;
pub mod reloc;
pub mod struct_ops;
pub mod token;

pub use error::{LoadError, OpenError, ProgramError};
pub use insn::Insn;
pub use loaded::{Loaded, LoadedMap, LoadedProgram};
pub use loader::Loader;
pub use object::data::GlobalVar;
pub use object::elf::Endianness;
pub use object::externs::Extern;
pub use object::maps::{Map, MapDef, MapKind, Pinning, Slot};
pub use object::programs::Program;
pub use object::relocs::{Reloc, RelocKind};
pub use object::Object;

#[cfg(test)]
mod tests;
