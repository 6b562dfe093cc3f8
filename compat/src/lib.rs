//! Comparisons of bpfload against C libbpf (through libbpf-rs) and aya-obj.
//!
//! This crate links C (libbpf, libelf, zlib) and is therefore outside the default workspace.

pub mod corpus;
pub mod insn;
pub mod kernel;
pub mod libbpf_side;
