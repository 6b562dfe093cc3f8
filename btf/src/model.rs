//! [`BtfModel`]: an owned, mutable BTF for the object's own (small) BTF and for probe blobs.
//!
//! Built from a parsed [`Btf`] (or empty), changed by the fix-ups, sanitization or the builder
//! methods, and written back with [`BtfModel::to_bytes`] in native byte order. The kernel's BTF is
//! never copied into this form.

use hashbrown::HashMap;

use crate::btf::Btf;
use crate::error::BtfError;
use crate::raw::{
    info_enc, int_enc, FuncLinkage, Kind, VarLinkage, BTF_MAGIC, BTF_VERSION, HEADER_LEN,
    MAX_NAME_OFFSET, MAX_TYPE_ID,
};
use crate::types::{Member, Param, Type, VarSecInfo};

/// One owned type: its name offset, kind_flag bit and kind-specific body.
///
/// `kind_flag` is kept as stored: it marks bitfield member offsets (STRUCT/UNION), signedness
/// (ENUM/ENUM64), a union forward (FWD) and attribute tags (DECL_TAG/TYPE_TAG).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BtfType {
    pub name_off: u32,
    pub kind_flag: bool,
    pub body: TypeBody,
}

/// The kind-specific part of a [`BtfType`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeBody {
    Int {
        size: u32,
        encoding: u8,
        offset: u8,
        bits: u8,
    },
    Ptr {
        target: u32,
    },
    Array {
        elem: u32,
        index: u32,
        nelems: u32,
    },
    Struct {
        size: u32,
        members: Vec<Member>,
    },
    Union {
        size: u32,
        members: Vec<Member>,
    },
    /// 32-bit values as stored (interpret with `kind_flag` for signedness).
    Enum {
        size: u32,
        values: Vec<(u32, u32)>,
    },
    Fwd,
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
    FuncProto {
        ret: u32,
        params: Vec<Param>,
    },
    Var {
        target: u32,
        linkage: VarLinkage,
    },
    DataSec {
        size: u32,
        vars: Vec<VarSecInfo>,
    },
    Float {
        size: u32,
    },
    DeclTag {
        target: u32,
        component_idx: i32,
    },
    TypeTag {
        target: u32,
    },
    Enum64 {
        size: u32,
        values: Vec<(u32, u64)>,
    },
}

impl TypeBody {
    /// The kind this body encodes as.
    pub fn kind(&self) -> Kind {
        match self {
            TypeBody::Int { .. } => Kind::Int,
            TypeBody::Ptr { .. } => Kind::Ptr,
            TypeBody::Array { .. } => Kind::Array,
            TypeBody::Struct { .. } => Kind::Struct,
            TypeBody::Union { .. } => Kind::Union,
            TypeBody::Enum { .. } => Kind::Enum,
            TypeBody::Fwd => Kind::Fwd,
            TypeBody::Typedef { .. } => Kind::Typedef,
            TypeBody::Volatile { .. } => Kind::Volatile,
            TypeBody::Const { .. } => Kind::Const,
            TypeBody::Restrict { .. } => Kind::Restrict,
            TypeBody::Func { .. } => Kind::Func,
            TypeBody::FuncProto { .. } => Kind::FuncProto,
            TypeBody::Var { .. } => Kind::Var,
            TypeBody::DataSec { .. } => Kind::DataSec,
            TypeBody::Float { .. } => Kind::Float,
            TypeBody::DeclTag { .. } => Kind::DeclTag,
            TypeBody::TypeTag { .. } => Kind::TypeTag,
            TypeBody::Enum64 { .. } => Kind::Enum64,
        }
    }

    /// Number of vlen entries (FUNC stores its linkage in vlen instead).
    fn vlen(&self) -> usize {
        match self {
            TypeBody::Struct { members, .. } | TypeBody::Union { members, .. } => members.len(),
            TypeBody::Enum { values, .. } => values.len(),
            TypeBody::Enum64 { values, .. } => values.len(),
            TypeBody::FuncProto { params, .. } => params.len(),
            TypeBody::DataSec { vars, .. } => vars.len(),
            TypeBody::Func { linkage, .. } => linkage.to_raw() as usize,
            _ => 0,
        }
    }

    /// The third header word: a size or a type id.
    fn size_or_type(&self) -> u32 {
        match *self {
            TypeBody::Int { size, .. }
            | TypeBody::Struct { size, .. }
            | TypeBody::Union { size, .. }
            | TypeBody::Enum { size, .. }
            | TypeBody::DataSec { size, .. }
            | TypeBody::Float { size }
            | TypeBody::Enum64 { size, .. } => size,
            TypeBody::Ptr { target }
            | TypeBody::Typedef { target }
            | TypeBody::Volatile { target }
            | TypeBody::Const { target }
            | TypeBody::Restrict { target }
            | TypeBody::Var { target, .. }
            | TypeBody::DeclTag { target, .. }
            | TypeBody::TypeTag { target } => target,
            TypeBody::Func { proto, .. } => proto,
            TypeBody::FuncProto { ret, .. } => ret,
            TypeBody::Array { .. } | TypeBody::Fwd => 0,
        }
    }
}

impl BtfType {
    /// The kind of this type.
    pub fn kind(&self) -> Kind {
        self.body.kind()
    }

    /// Encoded size of this record in bytes.
    pub fn encoded_len(&self) -> usize {
        let vlen = match self.body {
            TypeBody::Func { .. } => 0,
            _ => self.body.vlen(),
        };
        12 + match self.kind() {
            Kind::Int | Kind::Var | Kind::DeclTag => 4,
            Kind::Array => 12,
            Kind::Struct | Kind::Union | Kind::DataSec | Kind::Enum64 => 12 * vlen,
            Kind::Enum | Kind::FuncProto => 8 * vlen,
            _ => 0,
        }
    }

    fn from_view(name_off: u32, kind_flag: bool, t: Type<'_>) -> Option<BtfType> {
        let body = match t {
            Type::Void => return None,
            Type::Int(i) => TypeBody::Int {
                size: i.size,
                encoding: i.encoding,
                offset: i.offset,
                bits: i.bits,
            },
            Type::Ptr { target } => TypeBody::Ptr { target },
            Type::Array(a) => TypeBody::Array {
                elem: a.elem,
                index: a.index,
                nelems: a.nelems,
            },
            Type::Struct(c) => TypeBody::Struct {
                size: c.size,
                members: c.members().collect(),
            },
            Type::Union(c) => TypeBody::Union {
                size: c.size,
                members: c.members().collect(),
            },
            Type::Enum(e) => TypeBody::Enum {
                size: e.size,
                values: e.values().map(|v| (v.name_off, v.val as u32)).collect(),
            },
            Type::Enum64(e) => TypeBody::Enum64 {
                size: e.size,
                values: e.values().map(|v| (v.name_off, v.val)).collect(),
            },
            Type::Fwd { .. } => TypeBody::Fwd,
            Type::Typedef { target } => TypeBody::Typedef { target },
            Type::Volatile { target } => TypeBody::Volatile { target },
            Type::Const { target } => TypeBody::Const { target },
            Type::Restrict { target } => TypeBody::Restrict { target },
            Type::Func { proto, linkage } => TypeBody::Func { proto, linkage },
            Type::FuncProto(p) => TypeBody::FuncProto {
                ret: p.ret,
                params: p.params().collect(),
            },
            Type::Var { target, linkage } => TypeBody::Var { target, linkage },
            Type::DataSec(d) => TypeBody::DataSec {
                size: d.size,
                vars: d.vars().collect(),
            },
            Type::Float { size } => TypeBody::Float { size },
            Type::DeclTag {
                target,
                component_idx,
            } => TypeBody::DeclTag {
                target,
                component_idx,
            },
            Type::TypeTag { target } => TypeBody::TypeTag { target },
        };
        Some(BtfType {
            name_off,
            kind_flag,
            body,
        })
    }
}

/// An owned, mutable base BTF. Type id `n` is `types()[n - 1]`; id 0 is void.
#[derive(Debug, Clone, Default)]
pub struct BtfModel {
    types: Vec<BtfType>,
    strings: Vec<u8>,
    /// string → offset, built on the first `add_string`.
    dedup: Option<HashMap<Vec<u8>, u32>>,
}

impl PartialEq for BtfModel {
    fn eq(&self, other: &Self) -> bool {
        self.types == other.types && self.strings == other.strings
    }
}

fn write_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_ne_bytes());
}

impl BtfModel {
    /// An empty BTF: no types, the string table holding only "".
    pub fn new() -> Self {
        BtfModel {
            types: Vec::new(),
            strings: vec![0],
            dedup: None,
        }
    }

    /// Copies every type and the string table out of a parsed base BTF.
    // Out of line: smaller code where it was inlined (issue 8: binary size).
    #[inline(never)]
    pub fn from_btf(btf: &Btf<'_>) -> Result<Self, BtfError> {
        if btf.base().is_some() {
            return Err(BtfError::BadHeader {
                reason: "split BTF cannot be turned into an owned model (only object BTF is)"
                    .into(),
            });
        }
        let mut types = Vec::with_capacity(btf.len() as usize);
        for id in btf.ids() {
            let t = btf.type_by_id(id)?;
            let ty = BtfType::from_view(btf.name_off(id)?, btf.kind_flag(id)?, t).ok_or(
                BtfError::InvalidTypeId {
                    id,
                    count: btf.len(),
                },
            )?;
            types.push(ty);
        }
        Ok(BtfModel {
            types,
            strings: btf.string_section().to_vec(),
            dedup: None,
        })
    }

    /// Number of type ids including void (valid ids are `0..len()`).
    pub fn len(&self) -> u32 {
        self.types.len() as u32 + 1
    }

    /// True when there are no types besides void.
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// Type `id` (`None` for void and out-of-range ids).
    pub fn get(&self, id: u32) -> Option<&BtfType> {
        self.types.get((id as usize).checked_sub(1)?)
    }

    /// Mutable type `id`.
    pub fn get_mut(&mut self, id: u32) -> Option<&mut BtfType> {
        self.types.get_mut((id as usize).checked_sub(1)?)
    }

    /// All types with their ids.
    pub fn types(&self) -> impl ExactSizeIterator<Item = (u32, &BtfType)> {
        self.types
            .iter()
            .enumerate()
            .map(|(i, t)| (i as u32 + 1, t))
    }

    /// Kind of type `id` (void for 0).
    pub fn kind(&self, id: u32) -> Option<Kind> {
        if id == 0 {
            return Some(Kind::Void);
        }
        self.get(id).map(BtfType::kind)
    }

    /// The raw string table.
    pub fn strings(&self) -> &[u8] {
        &self.strings
    }

    /// The string at `off`.
    pub fn str_at(&self, off: u32) -> Result<&str, BtfError> {
        let end = self.strings.len() as u32;
        let tail = self
            .strings
            .get(off as usize..)
            .filter(|t| !t.is_empty())
            .ok_or(BtfError::InvalidStringOffset { offset: off, end })?;
        let s = std::ffi::CStr::from_bytes_until_nul(tail)
            .map_err(|_| BtfError::UnterminatedString { offset: off })?;
        s.to_str()
            .map_err(|_| BtfError::InvalidUtf8 { offset: off })
    }

    /// Name of type `id` ("" for void/anonymous or an unreadable name).
    pub fn name(&self, id: u32) -> &str {
        self.get(id)
            .and_then(|t| self.str_at(t.name_off).ok())
            .unwrap_or("")
    }

    /// Overwrites bytes of an existing string in place (same length; libbpf's sanitizer rewrites
    /// names like this, which also changes every other user of that string offset).
    pub(crate) fn rewrite_string_in_place(&mut self, off: u32, f: impl Fn(usize, u8) -> u8) {
        let start = off as usize;
        let mut i = start;
        while i < self.strings.len() && self.strings[i] != 0 {
            self.strings[i] = f(i - start, self.strings[i]);
            i += 1;
        }
        self.dedup = None;
    }

    /// Adds `s` to the string table (reusing an identical existing string) and returns its
    /// offset. "" is always offset 0.
    pub fn add_string(&mut self, s: &str) -> u32 {
        if s.is_empty() {
            return 0;
        }
        let strings = &self.strings;
        let dedup = self.dedup.get_or_insert_with(|| {
            let mut m = HashMap::new();
            let mut off = 0usize;
            for part in strings.split(|&b| b == 0) {
                m.entry(part.to_vec()).or_insert(off as u32);
                off += part.len() + 1;
            }
            m
        });
        if let Some(&off) = dedup.get(s.as_bytes()) {
            return off;
        }
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        dedup.insert(s.as_bytes().to_vec(), off);
        off
    }

    /// Appends a type and returns its id.
    pub fn add_type(&mut self, t: BtfType) -> u32 {
        self.types.push(t);
        self.types.len() as u32
    }

    fn add(&mut self, name: &str, kind_flag: bool, body: TypeBody) -> u32 {
        let name_off = self.add_string(name);
        self.add_type(BtfType {
            name_off,
            kind_flag,
            body,
        })
    }

    /// Lowest id with this exact name and kind (linear: models are small).
    pub fn find_by_name_kind(&self, name: &str, kind: Kind) -> Option<u32> {
        self.types()
            .find(|(_, t)| t.kind() == kind && self.str_at(t.name_off).ok() == Some(name))
            .map(|(id, _)| id)
    }

    // ---- builder helpers (names are added to the string table) ----

    /// INT with `encoding` bits from [`raw::INT_SIGNED`](crate::raw::INT_SIGNED) etc.; `bits` is
    /// `size * 8`.
    pub fn add_int(&mut self, name: &str, size: u32, encoding: u8) -> u32 {
        self.add(
            name,
            false,
            TypeBody::Int {
                size,
                encoding,
                offset: 0,
                bits: (size * 8).min(255) as u8,
            },
        )
    }
    pub fn add_ptr(&mut self, target: u32) -> u32 {
        self.add("", false, TypeBody::Ptr { target })
    }
    pub fn add_array(&mut self, elem: u32, index: u32, nelems: u32) -> u32 {
        self.add(
            "",
            false,
            TypeBody::Array {
                elem,
                index,
                nelems,
            },
        )
    }
    /// STRUCT with `(name, type, bit_offset)` members (no bitfields).
    pub fn add_struct(&mut self, name: &str, size: u32, members: &[(&str, u32, u32)]) -> u32 {
        let members = self.members(members);
        self.add(name, false, TypeBody::Struct { size, members })
    }
    /// UNION with `(name, type, bit_offset)` members.
    pub fn add_union(&mut self, name: &str, size: u32, members: &[(&str, u32, u32)]) -> u32 {
        let members = self.members(members);
        self.add(name, false, TypeBody::Union { size, members })
    }
    /// STRUCT or UNION with bitfield members `(name, type, bit_offset, bitfield_size)`
    /// (kind_flag set).
    pub fn add_bitfield_composite(
        &mut self,
        union: bool,
        name: &str,
        size: u32,
        members: &[(&str, u32, u32, u8)],
    ) -> u32 {
        let members = members
            .iter()
            .map(|&(n, t, off, bits)| Member {
                name_off: self.add_string(n),
                type_id: t,
                bit_offset: off,
                bitfield_size: bits,
            })
            .collect();
        let body = if union {
            TypeBody::Union { size, members }
        } else {
            TypeBody::Struct { size, members }
        };
        self.add(name, true, body)
    }
    fn members(&mut self, members: &[(&str, u32, u32)]) -> Vec<Member> {
        members
            .iter()
            .map(|&(n, t, off)| Member {
                name_off: self.add_string(n),
                type_id: t,
                bit_offset: off,
                bitfield_size: 0,
            })
            .collect()
    }
    /// ENUM (size 4) with 32-bit values.
    pub fn add_enum(&mut self, name: &str, signed: bool, values: &[(&str, i64)]) -> u32 {
        let values = values
            .iter()
            .map(|&(n, v)| (self.add_string(n), v as u32))
            .collect();
        self.add(name, signed, TypeBody::Enum { size: 4, values })
    }
    /// ENUM64 (size 8).
    pub fn add_enum64(&mut self, name: &str, signed: bool, values: &[(&str, u64)]) -> u32 {
        let values = values
            .iter()
            .map(|&(n, v)| (self.add_string(n), v))
            .collect();
        self.add(name, signed, TypeBody::Enum64 { size: 8, values })
    }
    pub fn add_fwd(&mut self, name: &str, is_union: bool) -> u32 {
        self.add(name, is_union, TypeBody::Fwd)
    }
    pub fn add_typedef(&mut self, name: &str, target: u32) -> u32 {
        self.add(name, false, TypeBody::Typedef { target })
    }
    pub fn add_volatile(&mut self, target: u32) -> u32 {
        self.add("", false, TypeBody::Volatile { target })
    }
    pub fn add_const(&mut self, target: u32) -> u32 {
        self.add("", false, TypeBody::Const { target })
    }
    pub fn add_restrict(&mut self, target: u32) -> u32 {
        self.add("", false, TypeBody::Restrict { target })
    }
    pub fn add_func(&mut self, name: &str, proto: u32, linkage: FuncLinkage) -> u32 {
        self.add(name, false, TypeBody::Func { proto, linkage })
    }
    /// FUNC_PROTO with `(name, type)` params.
    pub fn add_func_proto(&mut self, ret: u32, params: &[(&str, u32)]) -> u32 {
        let params = params
            .iter()
            .map(|&(n, t)| Param {
                name_off: self.add_string(n),
                type_id: t,
            })
            .collect();
        self.add("", false, TypeBody::FuncProto { ret, params })
    }
    pub fn add_var(&mut self, name: &str, target: u32, linkage: VarLinkage) -> u32 {
        self.add(name, false, TypeBody::Var { target, linkage })
    }
    /// DATASEC with `(type, offset, size)` entries; the name may start with '?'.
    pub fn add_datasec(&mut self, name: &str, size: u32, vars: &[(u32, u32, u32)]) -> u32 {
        let vars = vars
            .iter()
            .map(|&(type_id, offset, size)| VarSecInfo {
                type_id,
                offset,
                size,
            })
            .collect();
        self.add(name, false, TypeBody::DataSec { size, vars })
    }
    pub fn add_float(&mut self, name: &str, size: u32) -> u32 {
        self.add(name, false, TypeBody::Float { size })
    }
    /// DECL_TAG `value` (e.g. "arg:ctx") on `target`, `component_idx` -1 for the type itself.
    pub fn add_decl_tag(&mut self, value: &str, target: u32, component_idx: i32) -> u32 {
        self.add(
            value,
            false,
            TypeBody::DeclTag {
                target,
                component_idx,
            },
        )
    }
    pub fn add_type_tag(&mut self, value: &str, target: u32) -> u32 {
        self.add(value, false, TypeBody::TypeTag { target })
    }

    /// Encodes to a BTF blob in native byte order: 24-byte header, types, strings.
    // Out of line: smaller code where it was inlined (issue 8: binary size).
    #[inline(never)]
    pub fn to_bytes(&self) -> Result<Vec<u8>, BtfError> {
        if self.types.len() as u64 > MAX_TYPE_ID as u64 {
            return Err(BtfError::EncodeLimit {
                reason: "more than BTF_MAX_TYPE types",
            });
        }
        if self.strings.is_empty() || self.strings.len() as u64 - 1 > MAX_NAME_OFFSET as u64 {
            return Err(BtfError::EncodeLimit {
                reason: "string table empty or larger than BTF_MAX_NAME_OFFSET",
            });
        }
        let type_len: usize = self.types.iter().map(BtfType::encoded_len).sum();
        let type_len32 = u32::try_from(type_len).map_err(|_| BtfError::EncodeLimit {
            reason: "type section larger than 4 GiB",
        })?;
        let mut out = Vec::with_capacity(HEADER_LEN + type_len + self.strings.len());
        out.extend_from_slice(&BTF_MAGIC.to_ne_bytes());
        out.push(BTF_VERSION);
        out.push(0);
        write_u32(&mut out, HEADER_LEN as u32);
        write_u32(&mut out, 0);
        write_u32(&mut out, type_len32);
        write_u32(&mut out, type_len32);
        write_u32(&mut out, self.strings.len() as u32);
        for t in &self.types {
            let vlen = t.body.vlen();
            if vlen > u16::MAX as usize {
                return Err(BtfError::EncodeLimit {
                    reason: "a type has more than 65535 members/values/params/vars",
                });
            }
            write_u32(&mut out, t.name_off);
            write_u32(&mut out, info_enc(t.kind(), t.kind_flag, vlen as u16));
            write_u32(&mut out, t.body.size_or_type());
            match &t.body {
                TypeBody::Int {
                    encoding,
                    offset,
                    bits,
                    ..
                } => write_u32(&mut out, int_enc(*encoding, *offset, *bits)),
                TypeBody::Array {
                    elem,
                    index,
                    nelems,
                } => {
                    write_u32(&mut out, *elem);
                    write_u32(&mut out, *index);
                    write_u32(&mut out, *nelems);
                }
                TypeBody::Struct { members, .. } | TypeBody::Union { members, .. } => {
                    for m in members {
                        write_u32(&mut out, m.name_off);
                        write_u32(&mut out, m.type_id);
                        let off = if t.kind_flag {
                            ((m.bitfield_size as u32) << 24) | (m.bit_offset & 0x00ff_ffff)
                        } else {
                            m.bit_offset
                        };
                        write_u32(&mut out, off);
                    }
                }
                TypeBody::Enum { values, .. } => {
                    for &(n, v) in values {
                        write_u32(&mut out, n);
                        write_u32(&mut out, v);
                    }
                }
                TypeBody::Enum64 { values, .. } => {
                    for &(n, v) in values {
                        write_u32(&mut out, n);
                        write_u32(&mut out, v as u32);
                        write_u32(&mut out, (v >> 32) as u32);
                    }
                }
                TypeBody::FuncProto { params, .. } => {
                    for p in params {
                        write_u32(&mut out, p.name_off);
                        write_u32(&mut out, p.type_id);
                    }
                }
                TypeBody::Var { linkage, .. } => write_u32(&mut out, linkage.to_raw()),
                TypeBody::DataSec { vars, .. } => {
                    for v in vars {
                        write_u32(&mut out, v.type_id);
                        write_u32(&mut out, v.offset);
                        write_u32(&mut out, v.size);
                    }
                }
                TypeBody::DeclTag { component_idx, .. } => {
                    write_u32(&mut out, *component_idx as u32)
                }
                TypeBody::Ptr { .. }
                | TypeBody::Fwd
                | TypeBody::Typedef { .. }
                | TypeBody::Volatile { .. }
                | TypeBody::Const { .. }
                | TypeBody::Restrict { .. }
                | TypeBody::Func { .. }
                | TypeBody::Float { .. }
                | TypeBody::TypeTag { .. } => {}
            }
        }
        out.extend_from_slice(&self.strings);
        Ok(out)
    }
}
