//! On-disk BTF layout: header, kinds, record sizes and bit encodings (`include/uapi/linux/btf.h`).
//!
//! Everything here is plain data; readers take an explicit byte order because object files may be
//! big-endian while the running kernel's BTF is always native.

/// `BTF_MAGIC` as stored in the header (0xeB9F, either byte order).
pub const BTF_MAGIC: u16 = 0xeb9f;
/// The only BTF version that exists.
pub const BTF_VERSION: u8 = 1;
/// Size of `struct btf_header` up to and including `str_len`.
pub const HEADER_LEN: usize = 24;
/// Size of the common `struct btf_type` prefix (name_off, info, size/type).
pub const TYPE_HEADER_LEN: usize = 12;
/// Largest type id the kernel accepts (`BTF_MAX_TYPE`).
pub const MAX_TYPE_ID: u32 = 0x000f_ffff;
/// Largest string offset the kernel accepts (`BTF_MAX_NAME_OFFSET`).
pub const MAX_NAME_OFFSET: u32 = 0x00ff_ffff;
/// Depth limit when following type chains (libbpf and the kernel use 32).
pub const MAX_RESOLVE_DEPTH: usize = 32;

/// `BTF_INT_SIGNED` bit of an INT's encoding.
pub const INT_SIGNED: u8 = 1 << 0;
/// `BTF_INT_CHAR` bit of an INT's encoding.
pub const INT_CHAR: u8 = 1 << 1;
/// `BTF_INT_BOOL` bit of an INT's encoding.
pub const INT_BOOL: u8 = 1 << 2;

/// A BTF kind (`BTF_KIND_*`), the 5-bit field in bits 24..28 of `info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Kind {
    /// `BTF_KIND_UNKN`: only type id 0 (void) has it.
    Void = 0,
    Int = 1,
    Ptr = 2,
    Array = 3,
    Struct = 4,
    Union = 5,
    Enum = 6,
    Fwd = 7,
    Typedef = 8,
    Volatile = 9,
    Const = 10,
    Restrict = 11,
    Func = 12,
    FuncProto = 13,
    Var = 14,
    DataSec = 15,
    Float = 16,
    DeclTag = 17,
    TypeTag = 18,
    Enum64 = 19,
}

impl Kind {
    /// All kinds, indexed by their numeric value.
    pub const ALL: [Kind; 20] = [
        Kind::Void,
        Kind::Int,
        Kind::Ptr,
        Kind::Array,
        Kind::Struct,
        Kind::Union,
        Kind::Enum,
        Kind::Fwd,
        Kind::Typedef,
        Kind::Volatile,
        Kind::Const,
        Kind::Restrict,
        Kind::Func,
        Kind::FuncProto,
        Kind::Var,
        Kind::DataSec,
        Kind::Float,
        Kind::DeclTag,
        Kind::TypeTag,
        Kind::Enum64,
    ];

    /// Kind from its numeric value, `None` for values the format does not define.
    pub fn from_u32(v: u32) -> Option<Kind> {
        Kind::ALL.get(v as usize).copied()
    }

    /// Bytes that follow the 12-byte common header for a type of this kind with `vlen` entries.
    pub fn extra_len(self, vlen: u16) -> usize {
        let vlen = vlen as usize;
        match self {
            Kind::Int | Kind::Var | Kind::DeclTag => 4,
            Kind::Array => 12,
            Kind::Struct | Kind::Union | Kind::DataSec | Kind::Enum64 => 12 * vlen,
            Kind::Enum | Kind::FuncProto => 8 * vlen,
            Kind::Void
            | Kind::Ptr
            | Kind::Fwd
            | Kind::Typedef
            | Kind::Volatile
            | Kind::Const
            | Kind::Restrict
            | Kind::Func
            | Kind::Float
            | Kind::TypeTag => 0,
        }
    }

    /// Whether the third header word is a size (as opposed to a type id).
    pub fn has_size(self) -> bool {
        matches!(
            self,
            Kind::Int
                | Kind::Struct
                | Kind::Union
                | Kind::Enum
                | Kind::DataSec
                | Kind::Float
                | Kind::Enum64
        )
    }

    /// libbpf's upper-case name (`btf_kind_str`), e.g. `"STRUCT"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Void => "UNKN",
            Kind::Int => "INT",
            Kind::Ptr => "PTR",
            Kind::Array => "ARRAY",
            Kind::Struct => "STRUCT",
            Kind::Union => "UNION",
            Kind::Enum => "ENUM",
            Kind::Fwd => "FWD",
            Kind::Typedef => "TYPEDEF",
            Kind::Volatile => "VOLATILE",
            Kind::Const => "CONST",
            Kind::Restrict => "RESTRICT",
            Kind::Func => "FUNC",
            Kind::FuncProto => "FUNC_PROTO",
            Kind::Var => "VAR",
            Kind::DataSec => "DATASEC",
            Kind::Float => "FLOAT",
            Kind::DeclTag => "DECL_TAG",
            Kind::TypeTag => "TYPE_TAG",
            Kind::Enum64 => "ENUM64",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `BTF_INFO_KIND`.
#[inline]
pub fn info_kind(info: u32) -> u32 {
    (info >> 24) & 0x1f
}
/// `BTF_INFO_VLEN`.
#[inline]
pub fn info_vlen(info: u32) -> u16 {
    (info & 0xffff) as u16
}
/// `BTF_INFO_KFLAG`.
#[inline]
pub fn info_kflag(info: u32) -> bool {
    info >> 31 != 0
}
/// `BTF_INFO_ENC(kind, kind_flag, vlen)`.
#[inline]
pub fn info_enc(kind: Kind, kind_flag: bool, vlen: u16) -> u32 {
    ((kind_flag as u32) << 31) | ((kind as u32) << 24) | vlen as u32
}
/// `BTF_INT_ENC(encoding, offset, bits)`: the 32-bit word after an INT's header.
#[inline]
pub fn int_enc(encoding: u8, offset: u8, bits: u8) -> u32 {
    ((encoding as u32) << 24) | ((offset as u32) << 16) | bits as u32
}

/// `BTF_FUNC_STATIC`/`GLOBAL`/`EXTERN`, stored in a FUNC's vlen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FuncLinkage {
    Static,
    Global,
    Extern,
    /// A value the format does not define (the kernel rejects it; inspection still shows it).
    Unknown(u16),
}

impl FuncLinkage {
    pub fn from_raw(v: u16) -> Self {
        match v {
            0 => Self::Static,
            1 => Self::Global,
            2 => Self::Extern,
            v => Self::Unknown(v),
        }
    }
    pub fn to_raw(self) -> u16 {
        match self {
            Self::Static => 0,
            Self::Global => 1,
            Self::Extern => 2,
            Self::Unknown(v) => v,
        }
    }
}

/// `BTF_VAR_STATIC`/`GLOBAL_ALLOCATED`/`GLOBAL_EXTERN`, the word after a VAR's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VarLinkage {
    Static,
    GlobalAllocated,
    GlobalExtern,
    Unknown(u32),
}

impl VarLinkage {
    pub fn from_raw(v: u32) -> Self {
        match v {
            0 => Self::Static,
            1 => Self::GlobalAllocated,
            2 => Self::GlobalExtern,
            v => Self::Unknown(v),
        }
    }
    pub fn to_raw(self) -> u32 {
        match self {
            Self::Static => 0,
            Self::GlobalAllocated => 1,
            Self::GlobalExtern => 2,
            Self::Unknown(v) => v,
        }
    }
}

/// Byte order of a BTF blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endian {
    Little,
    Big,
}

impl Endian {
    /// The byte order of the machine we run on (and of the running kernel's BTF).
    pub const NATIVE: Endian = if cfg!(target_endian = "big") {
        Endian::Big
    } else {
        Endian::Little
    };

    /// Reads a u32 at `off`; `None` if it does not fit.
    #[inline]
    pub fn u32_at(self, data: &[u8], off: usize) -> Option<u32> {
        let b: [u8; 4] = data.get(off..off.checked_add(4)?)?.try_into().ok()?;
        Some(match self {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        })
    }

    /// Reads a u16 at `off`; `None` if it does not fit.
    #[inline]
    pub fn u16_at(self, data: &[u8], off: usize) -> Option<u16> {
        let b: [u8; 2] = data.get(off..off.checked_add(2)?)?.try_into().ok()?;
        Some(match self {
            Endian::Little => u16::from_le_bytes(b),
            Endian::Big => u16::from_be_bytes(b),
        })
    }

    /// Reads a u32 from a slice known to hold at least `off + 4` bytes (callers bounds-check the
    /// whole record once); falls back to 0 rather than panicking if that promise is broken.
    #[inline]
    pub(crate) fn u32_in(self, data: &[u8], off: usize) -> u32 {
        self.u32_at(data, off).unwrap_or(0)
    }
}

/// The fixed part of `struct btf_header`, decoded to native values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub magic: u16,
    pub version: u8,
    pub flags: u8,
    pub hdr_len: u32,
    pub type_off: u32,
    pub type_len: u32,
    pub str_off: u32,
    pub str_len: u32,
    /// Byte order the blob was written in.
    pub endian: Endian,
}
