//! bpfload: pure-Rust BPF object loading with libbpf's behaviour and BPF token support.
//!
//! The pipeline: [`Object::open_file`] parses an ELF object (no kernel resources), and
//! [`Loader::load`] relocates it and creates its BTF, maps and programs in the kernel, returning a
//! [`Loaded`] that owns every file descriptor.

pub mod diagnose;
pub mod error;
pub mod insn;
pub mod names;
pub mod object;
pub mod token;

pub use error::OpenError;
pub use insn::Insn;
pub use object::data::GlobalVar;
pub use object::elf::Endianness;
pub use object::externs::Extern;
pub use object::maps::{Map, MapDef, MapKind, Pinning, Slot};
pub use object::programs::Program;
pub use object::relocs::{Reloc, RelocKind};
pub use object::Object;
