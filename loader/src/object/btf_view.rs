//! The few BTF questions open asks (map definitions in `.maps`, DATASEC lookups for global data,
//! member offsets for `values` initialisers), answered from `bpfload_btf::Btf` in the shape the
//! map parser wants: a kind number plus the header's size-or-type word.

use bpfload_btf::{Btf, Kind, Type};

pub(crate) const KIND_PTR: u32 = Kind::Ptr as u32;
pub(crate) const KIND_STRUCT: u32 = Kind::Struct as u32;
pub(crate) const KIND_ENUM: u32 = Kind::Enum as u32;
pub(crate) const KIND_FUNC_PROTO: u32 = Kind::FuncProto as u32;
pub(crate) const KIND_VAR: u32 = Kind::Var as u32;
pub(crate) const KIND_DATASEC: u32 = Kind::DataSec as u32;
pub(crate) const KIND_ENUM64: u32 = Kind::Enum64 as u32;

/// `BTF_VAR_STATIC`.
pub(crate) const VAR_STATIC: u32 = 0;
/// `BTF_VAR_GLOBAL_ALLOCATED`.
pub(crate) const VAR_GLOBAL_ALLOCATED: u32 = 1;

/// A type's id, kind and `size`/`type` header word.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TypeRec {
    pub id: u32,
    pub kind: u32,
    /// `size` (STRUCT, UNION, ENUM, DATASEC, ...) or `type` (PTR, VAR, TYPEDEF, modifiers).
    pub size_or_type: u32,
}

impl AsRef<TypeRec> for TypeRec {
    fn as_ref(&self) -> &TypeRec {
        self
    }
}

/// A struct/union member.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Member {
    pub name_off: u32,
    pub type_id: u32,
    pub bit_offset: u32,
}

pub(crate) struct BtfView<'a> {
    btf: Btf<'a>,
}

impl<'a> BtfView<'a> {
    pub fn parse(raw: &'a [u8]) -> Result<Self, String> {
        Btf::parse(raw)
            .map(|btf| BtfView { btf })
            .map_err(|e| e.to_string())
    }

    fn ty(&self, id: u32) -> Option<Type<'a>> {
        self.btf.type_by_id(id).ok()
    }

    pub fn rec(&self, id: u32) -> Option<TypeRec> {
        let t = self.ty(id)?;
        Some(TypeRec {
            id,
            kind: t.kind() as u32,
            size_or_type: t.size().or(t.target()).unwrap_or(0),
        })
    }

    pub fn str_at(&self, off: u32) -> Option<&'a str> {
        self.btf.str_at(off).ok()
    }

    pub fn name(&self, id: u32) -> &'a str {
        self.btf.name(id).unwrap_or("")
    }

    /// `skip_mods_and_typedefs`.
    pub fn skip_mods(&self, id: u32) -> Option<(u32, TypeRec)> {
        let id = self.btf.skip_mods_and_typedefs(id).ok()?;
        Some((id, self.rec(id)?))
    }

    pub fn members(&self, r: impl AsRef<TypeRec>) -> Vec<Member> {
        match self.ty(r.as_ref().id) {
            Some(Type::Struct(c) | Type::Union(c)) => c
                .members()
                .map(|m| Member {
                    name_off: m.name_off,
                    type_id: m.type_id,
                    bit_offset: m.bit_offset,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// (element type, nelems) of an ARRAY.
    pub fn array(&self, r: impl AsRef<TypeRec>) -> Option<(u32, u32)> {
        match self.ty(r.as_ref().id)? {
            Type::Array(a) => Some((a.elem, a.nelems)),
            _ => None,
        }
    }

    /// Linkage of a VAR.
    pub fn var_linkage(&self, r: impl AsRef<TypeRec>) -> Option<u32> {
        match self.ty(r.as_ref().id)? {
            Type::Var { linkage, .. } => Some(linkage.to_raw()),
            _ => None,
        }
    }

    /// (type, offset, size) entries of a DATASEC.
    pub fn datasec_vars(&self, r: impl AsRef<TypeRec>) -> Vec<(u32, u32, u32)> {
        match self.ty(r.as_ref().id) {
            Some(Type::DataSec(d)) => d.vars().map(|v| (v.type_id, v.offset, v.size)).collect(),
            _ => Vec::new(),
        }
    }

    /// The single value of a one-entry ENUM/ENUM64 (`__ulong()` encoding of `map_extra`).
    pub fn single_enum_value(&self, r: impl AsRef<TypeRec>) -> Option<u64> {
        match self.ty(r.as_ref().id)? {
            Type::Enum(e) | Type::Enum64(e) if e.len() == 1 => e.value(0).map(|v| v.val),
            _ => None,
        }
    }

    /// `btf__resolve_size`.
    pub fn resolve_size(&self, id: u32) -> Result<u32, String> {
        self.btf.resolve_size(id).map_err(|e| e.to_string())
    }

    /// The DATASEC with this name.
    pub fn find_datasec(&self, name: &str) -> Option<u32> {
        self.btf.find_by_name_kind(name, Kind::DataSec)
    }
}
