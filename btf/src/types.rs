//! Lazily decoded, borrowed views of single BTF types.
//!
//! A [`Type`] is built on demand by [`Btf::type_by_id`](crate::Btf::type_by_id) from the raw
//! bytes; variable-length parts (members, enum values, params, datasec vars) stay as byte slices
//! that are decoded while iterating. Names are string offsets: resolve them with
//! [`Btf::str_at`](crate::Btf::str_at) (or use [`Btf::name`](crate::Btf::name) for a type's own
//! name).

use crate::raw::{Endian, FuncLinkage, Kind, VarLinkage, INT_BOOL, INT_CHAR, INT_SIGNED};

/// One decoded BTF type. The type's own name offset is in [`Btf::name_off`](crate::Btf::name_off).
#[derive(Debug, Clone, Copy)]
pub enum Type<'a> {
    /// Type id 0.
    Void,
    Int(Int),
    Ptr {
        target: u32,
    },
    Array(Array),
    Struct(Composite<'a>),
    Union(Composite<'a>),
    /// 32-bit enum (`BTF_KIND_ENUM`).
    Enum(Enum<'a>),
    Fwd {
        is_union: bool,
    },
    Typedef {
        target: u32,
    },
    Volatile {
        target: u32,
    },
    Const {
        target: u32,
    },
    Restrict {
        target: u32,
    },
    Func {
        proto: u32,
        linkage: FuncLinkage,
    },
    FuncProto(FuncProto<'a>),
    Var {
        target: u32,
        linkage: VarLinkage,
    },
    DataSec(DataSec<'a>),
    Float {
        size: u32,
    },
    /// `component_idx` is -1 for a tag on the type itself, else a member/param index.
    DeclTag {
        target: u32,
        component_idx: i32,
    },
    TypeTag {
        target: u32,
    },
    /// 64-bit enum (`BTF_KIND_ENUM64`).
    Enum64(Enum<'a>),
}

impl Type<'_> {
    /// The kind of this type.
    pub fn kind(&self) -> Kind {
        match self {
            Type::Void => Kind::Void,
            Type::Int(_) => Kind::Int,
            Type::Ptr { .. } => Kind::Ptr,
            Type::Array(_) => Kind::Array,
            Type::Struct(_) => Kind::Struct,
            Type::Union(_) => Kind::Union,
            Type::Enum(_) => Kind::Enum,
            Type::Fwd { .. } => Kind::Fwd,
            Type::Typedef { .. } => Kind::Typedef,
            Type::Volatile { .. } => Kind::Volatile,
            Type::Const { .. } => Kind::Const,
            Type::Restrict { .. } => Kind::Restrict,
            Type::Func { .. } => Kind::Func,
            Type::FuncProto(_) => Kind::FuncProto,
            Type::Var { .. } => Kind::Var,
            Type::DataSec(_) => Kind::DataSec,
            Type::Float { .. } => Kind::Float,
            Type::DeclTag { .. } => Kind::DeclTag,
            Type::TypeTag { .. } => Kind::TypeTag,
            Type::Enum64(_) => Kind::Enum64,
        }
    }

    /// The size stored in the header for sized kinds (INT, STRUCT, UNION, ENUM, ENUM64, DATASEC,
    /// FLOAT); `None` for the others (use [`Btf::resolve_size`](crate::Btf::resolve_size)).
    pub fn size(&self) -> Option<u32> {
        match self {
            Type::Int(i) => Some(i.size),
            Type::Struct(c) | Type::Union(c) => Some(c.size),
            Type::Enum(e) | Type::Enum64(e) => Some(e.size),
            Type::DataSec(d) => Some(d.size),
            Type::Float { size } => Some(*size),
            _ => None,
        }
    }

    /// The referenced type for PTR, TYPEDEF, the modifiers, VAR, DECL_TAG and TYPE_TAG, the
    /// prototype for FUNC.
    pub fn target(&self) -> Option<u32> {
        match *self {
            Type::Ptr { target }
            | Type::Typedef { target }
            | Type::Volatile { target }
            | Type::Const { target }
            | Type::Restrict { target }
            | Type::Var { target, .. }
            | Type::DeclTag { target, .. }
            | Type::TypeTag { target } => Some(target),
            Type::Func { proto, .. } => Some(proto),
            _ => None,
        }
    }

    /// Whether this is a CONST, VOLATILE, RESTRICT or TYPE_TAG (libbpf's `btf_is_mod`).
    pub fn is_mod(&self) -> bool {
        matches!(
            self,
            Type::Volatile { .. }
                | Type::Const { .. }
                | Type::Restrict { .. }
                | Type::TypeTag { .. }
        )
    }

    /// Whether this is a STRUCT or UNION.
    pub fn is_composite(&self) -> bool {
        matches!(self, Type::Struct(_) | Type::Union(_))
    }

    /// Members of a STRUCT or UNION, if it is one.
    pub fn as_composite(&self) -> Option<&Composite<'_>> {
        match self {
            Type::Struct(c) | Type::Union(c) => Some(c),
            _ => None,
        }
    }

    /// The ENUM or ENUM64 view, if it is one.
    pub fn as_enum(&self) -> Option<&Enum<'_>> {
        match self {
            Type::Enum(e) | Type::Enum64(e) => Some(e),
            _ => None,
        }
    }
}

/// An INT: size in bytes plus the encoding word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int {
    pub size: u32,
    /// `BTF_INT_ENCODING` bits: [`INT_SIGNED`], [`INT_CHAR`], [`INT_BOOL`].
    pub encoding: u8,
    /// `BTF_INT_OFFSET`: bit offset of the value inside the storage.
    pub offset: u8,
    /// `BTF_INT_BITS`: number of value bits.
    pub bits: u8,
}

impl Int {
    pub fn is_signed(&self) -> bool {
        self.encoding & INT_SIGNED != 0
    }
    pub fn is_char(&self) -> bool {
        self.encoding & INT_CHAR != 0
    }
    pub fn is_bool(&self) -> bool {
        self.encoding & INT_BOOL != 0
    }
}

/// An ARRAY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Array {
    pub elem: u32,
    pub index: u32,
    pub nelems: u32,
}

/// A STRUCT or UNION.
#[derive(Debug, Clone, Copy)]
pub struct Composite<'a> {
    pub size: u32,
    /// With kind_flag set, member offsets carry a bitfield size in their top 8 bits.
    pub kind_flag: bool,
    pub(crate) data: &'a [u8],
    pub(crate) endian: Endian,
}

impl<'a> Composite<'a> {
    /// Number of members.
    pub fn len(&self) -> usize {
        self.data.len() / 12
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    /// Member `i`, if it exists.
    pub fn member(&self, i: usize) -> Option<Member> {
        let off = i.checked_mul(12)?;
        if off + 12 > self.data.len() {
            return None;
        }
        let e = self.endian;
        let raw_off = e.u32_in(self.data, off + 8);
        let (bit_offset, bitfield_size) = if self.kind_flag {
            (raw_off & 0x00ff_ffff, (raw_off >> 24) as u8)
        } else {
            (raw_off, 0)
        };
        Some(Member {
            name_off: e.u32_in(self.data, off),
            type_id: e.u32_in(self.data, off + 4),
            bit_offset,
            bitfield_size,
        })
    }
    /// Iterates the members in order.
    pub fn members(&self) -> Members<'a> {
        Members { c: *self, next: 0 }
    }
}

/// One member of a STRUCT/UNION.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub name_off: u32,
    pub type_id: u32,
    /// Offset from the start of the composite, in bits.
    pub bit_offset: u32,
    /// Bitfield width in bits; 0 when the member is not a bitfield (or kind_flag is clear).
    pub bitfield_size: u8,
}

/// Iterator over [`Member`]s.
#[derive(Debug, Clone)]
pub struct Members<'a> {
    c: Composite<'a>,
    next: usize,
}

impl Iterator for Members<'_> {
    type Item = Member;
    fn next(&mut self) -> Option<Member> {
        let m = self.c.member(self.next)?;
        self.next += 1;
        Some(m)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.c.len() - self.next.min(self.c.len());
        (n, Some(n))
    }
}
impl ExactSizeIterator for Members<'_> {}

/// An ENUM or ENUM64.
#[derive(Debug, Clone, Copy)]
pub struct Enum<'a> {
    pub size: u32,
    /// kind_flag: values are signed.
    pub signed: bool,
    /// ENUM64 (12-byte entries) rather than ENUM (8-byte entries).
    pub is64: bool,
    pub(crate) data: &'a [u8],
    pub(crate) endian: Endian,
}

impl<'a> Enum<'a> {
    fn entry_len(&self) -> usize {
        if self.is64 {
            12
        } else {
            8
        }
    }
    /// Number of enumerators.
    pub fn len(&self) -> usize {
        self.data.len() / self.entry_len()
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    /// Enumerator `i`, if it exists.
    pub fn value(&self, i: usize) -> Option<EnumValue> {
        let el = self.entry_len();
        let off = i.checked_mul(el)?;
        if off + el > self.data.len() {
            return None;
        }
        let e = self.endian;
        let name_off = e.u32_in(self.data, off);
        let lo = e.u32_in(self.data, off + 4);
        let val = if self.is64 {
            ((e.u32_in(self.data, off + 8) as u64) << 32) | lo as u64
        } else if self.signed {
            lo as i32 as i64 as u64
        } else {
            lo as u64
        };
        Some(EnumValue { name_off, val })
    }
    /// Iterates the enumerators in order.
    pub fn values(&self) -> EnumValues<'a> {
        EnumValues { e: *self, next: 0 }
    }
}

/// One enumerator. `val` holds the 64-bit pattern: for a 32-bit ENUM it is sign-extended when
/// the enum is signed and zero-extended otherwise (as libbpf's `btf_enum_value`-style readers do);
/// read it as `i64` for signed enums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnumValue {
    pub name_off: u32,
    pub val: u64,
}

/// Iterator over [`EnumValue`]s.
#[derive(Debug, Clone)]
pub struct EnumValues<'a> {
    e: Enum<'a>,
    next: usize,
}

impl Iterator for EnumValues<'_> {
    type Item = EnumValue;
    fn next(&mut self) -> Option<EnumValue> {
        let v = self.e.value(self.next)?;
        self.next += 1;
        Some(v)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.e.len() - self.next.min(self.e.len());
        (n, Some(n))
    }
}
impl ExactSizeIterator for EnumValues<'_> {}

/// A FUNC_PROTO.
#[derive(Debug, Clone, Copy)]
pub struct FuncProto<'a> {
    /// Return type (0 = void).
    pub ret: u32,
    pub(crate) data: &'a [u8],
    pub(crate) endian: Endian,
}

impl<'a> FuncProto<'a> {
    /// Number of parameters (a trailing `{0, 0}` entry means variadic).
    pub fn len(&self) -> usize {
        self.data.len() / 8
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    /// Parameter `i`, if it exists.
    pub fn param(&self, i: usize) -> Option<Param> {
        let off = i.checked_mul(8)?;
        if off + 8 > self.data.len() {
            return None;
        }
        Some(Param {
            name_off: self.endian.u32_in(self.data, off),
            type_id: self.endian.u32_in(self.data, off + 4),
        })
    }
    /// Iterates the parameters in order.
    pub fn params(&self) -> Params<'a> {
        Params { p: *self, next: 0 }
    }
    /// Whether the last parameter is the variadic marker (`name_off == 0 && type_id == 0`).
    pub fn is_variadic(&self) -> bool {
        self.len()
            .checked_sub(1)
            .and_then(|i| self.param(i))
            .is_some_and(|p| p.name_off == 0 && p.type_id == 0)
    }
}

/// One FUNC_PROTO parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    pub name_off: u32,
    pub type_id: u32,
}

/// Iterator over [`Param`]s.
#[derive(Debug, Clone)]
pub struct Params<'a> {
    p: FuncProto<'a>,
    next: usize,
}

impl Iterator for Params<'_> {
    type Item = Param;
    fn next(&mut self) -> Option<Param> {
        let v = self.p.param(self.next)?;
        self.next += 1;
        Some(v)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.p.len() - self.next.min(self.p.len());
        (n, Some(n))
    }
}
impl ExactSizeIterator for Params<'_> {}

/// A DATASEC.
#[derive(Debug, Clone, Copy)]
pub struct DataSec<'a> {
    pub size: u32,
    pub(crate) data: &'a [u8],
    pub(crate) endian: Endian,
}

impl<'a> DataSec<'a> {
    /// Number of variables.
    pub fn len(&self) -> usize {
        self.data.len() / 12
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    /// Variable entry `i`, if it exists.
    pub fn var(&self, i: usize) -> Option<VarSecInfo> {
        let off = i.checked_mul(12)?;
        if off + 12 > self.data.len() {
            return None;
        }
        let e = self.endian;
        Some(VarSecInfo {
            type_id: e.u32_in(self.data, off),
            offset: e.u32_in(self.data, off + 4),
            size: e.u32_in(self.data, off + 8),
        })
    }
    /// Iterates the variable entries in order.
    pub fn vars(&self) -> VarSecInfos<'a> {
        VarSecInfos { d: *self, next: 0 }
    }
}

/// One DATASEC entry (`struct btf_var_secinfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VarSecInfo {
    /// A VAR (or, in `.ksyms`, a FUNC).
    pub type_id: u32,
    pub offset: u32,
    pub size: u32,
}

/// Iterator over [`VarSecInfo`]s.
#[derive(Debug, Clone)]
pub struct VarSecInfos<'a> {
    d: DataSec<'a>,
    next: usize,
}

impl Iterator for VarSecInfos<'_> {
    type Item = VarSecInfo;
    fn next(&mut self) -> Option<VarSecInfo> {
        let v = self.d.var(self.next)?;
        self.next += 1;
        Some(v)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.d.len() - self.next.min(self.d.len());
        (n, Some(n))
    }
}
impl ExactSizeIterator for VarSecInfos<'_> {}
