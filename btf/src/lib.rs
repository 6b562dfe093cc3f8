//! bpfload-btf: zero-copy BTF and BTF.ext parsing, the kernel's BTF shared process-wide, an owned
//! model for the object's own BTF (fix-ups, sanitization, encoding) and a builder for small BTF.
//!
//! This crate makes no bpf(2) calls; kernel feature answers come in through callbacks.
//!
//! Start points:
//! - [`Btf::parse`] / [`Btf::parse_split`]: a borrowed, lazily decoded view; [`Btf::type_by_id`]
//!   gives a [`Type`] view, [`Btf::name`]/[`Btf::str_at`] give names.
//! - [`BtfData`]: the same, owning its bytes, for sharing behind an `Arc`.
//! - [`kernel::vmlinux`]: the running kernel's BTF, memory-mapped and parsed once per process.
//! - [`core::relocate_program`] / [`core::CoreRelocator`]: CO-RE relocation against [`core::Targets`].
//! - [`Btf::find_by_name_kind`] / [`Btf::candidates`]: name lookups through a lazily built index.

// `unsafe` only in `mmap` (the kernel BTF mapping), which allows it for itself.
#![deny(unsafe_code)]

mod btf;
pub mod core;
mod data;
mod error;
pub mod ext;
pub mod fixup;
mod index;
pub mod kernel;
mod mmap;
mod model;
mod offsets;
pub mod raw;
pub mod sanitize;
mod scan;
mod sort;
pub mod types;

pub use btf::Btf;
pub use data::BtfData;
pub use error::BtfError;
pub use ext::{BtfExt, CoreRelo, CoreReloKind, FuncInfo, LineInfo};
pub use index::essential_name;
pub use model::{BtfModel, BtfType, TypeBody};
pub use raw::{Endian, FuncLinkage, Kind, VarLinkage};
pub use sanitize::{sanitize, BtfFeature};
#[doc(hidden)]
pub use sort::{sort_copied, sort_indices_by};
pub use types::{
    Array, Composite, DataSec, Enum, EnumValue, FuncProto, Int, Member, Param, Type, VarSecInfo,
};
