//! Comparisons of bpfload against C libbpf (through libbpf-rs) and aya-obj.
//!
//! This crate links C (libbpf, libelf, zlib) and is therefore outside the default workspace.

pub mod bench;
pub mod bpfload_side;
pub mod corpus;
pub mod insn;
pub mod kernel;
pub mod libbpf_side;

/// Generated benchmark objects, shared with `benches/benches/load.rs`.
#[path = "../../benches/benches/genobj/mod.rs"]
pub mod genobj;
