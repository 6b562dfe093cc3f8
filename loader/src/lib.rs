//! bpfload: pure-Rust BPF object loading with libbpf's behaviour and BPF token support.
//!
//! The pipeline: [`Object::open_file`] parses an ELF object (no kernel resources), and
//! [`Loader::load`] relocates it and creates its BTF, maps and programs in the kernel, returning a
//! [`Loaded`] that owns every file descriptor.
//!
//! ```no_run
//! let object = bpfload::Object::open_file("prog.bpf.o")?;
//! for p in object.programs() {
//!     println!("{} ({}): {} {} insns", p.name(), p.section(), p.prog_type_name(), p.insn_count());
//! }
//! let loaded = bpfload::Loader::new()
//!     .set_global("config_value", &42u32.to_ne_bytes())
//!     .keep_going(true) // report every program instead of stopping at the first failure
//!     .load(&object)?;
//! for p in loaded.programs() {
//!     match p.result() {
//!         Ok(fd) => println!("{}: loaded as {fd:?}", p.name()),
//!         Err(e) => println!("{}: {e}\n{}", p.name(), e.log_tail(10)),
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Parity with libbpf
//! Programs are relocated exactly as libbpf 1.7 relocates them: subprograms appended per main
//! program in first-use order, `.BTF.ext` info sliced and shifted, CO-RE, map and global data
//! references; the instructions passed to `BPF_PROG_LOAD` equal libbpf's byte for byte apart from
//! fd values (checked against libbpf for the fixtures and the corpus by the `libbpf_compare` test).
//! Internal map names, flags (`RDONLY_PROG`, `MMAPABLE`), the `.rodata` freeze, BTF sanitization,
//! the map creation retry without BTF and pinned-map reuse follow libbpf.
//!
//! # Accepted beyond libbpf
//! - Legacy `maps` section definitions (`struct bpf_map_def`, also iproute2's longer layout with
//!   `pinning`), as aya and cilium/ebpf accept them; libbpf ≥ 1.0 refuses the object.
//! - Static (`STB_LOCAL`) functions outside `.text` are programs, as in aya and cilium/ebpf;
//!   libbpf refuses them.
//! - Objects that libbpf opens but cannot load for one program (an unknown `SEC()` name, for
//!   example) open here too; the error comes at load, for that program, as in libbpf.
//! - Big-endian objects open for inspection; loading refuses any non-native byte order.
//!
//! # Arena
//! ARENA maps and `.addr_space.1` (`__arena`) globals load as in libbpf 1.7: the arena is mapped
//! at creation and keeps its initial data; see [`LoadedMap::arena`](crate::LoadedMap::arena).
//!
//! # Not supported yet
//! Features the object needs that the loader lacks make the load fail with
//! [`LoadError::Unsupported`] naming the part.

#![forbid(unsafe_code)]

mod arena;
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
mod sort;
pub mod struct_ops;
pub mod token;

pub use error::{LoadError, LoadFailure, OpenError, ProgramError};
pub use insn::Insn;
pub use loaded::{Loaded, LoadedMap, LoadedProgram};
pub use loader::{Loader, PARALLEL_MIN_INSNS};
pub use object::data::GlobalVar;
pub use object::elf::Endianness;
pub use object::externs::Extern;
pub use object::maps::{Map, MapDef, MapKind, Pinning, Slot};
pub use object::programs::Program;
pub use object::relocs::{Reloc, RelocKind};
pub use object::Object;

#[cfg(test)]
mod tests;
