//! [`BtfExt`]: zero-copy `.BTF.ext` reader (func_info, line_info and CO-RE relocation records).
//!
//! Layout (`struct btf_ext_header`): magic, version, flags, hdr_len, then (offset, length) pairs
//! for func_info, line_info and — when hdr_len covers it — core_relo, all relative to the end of
//! the header. Each subsection is `u32 record_size` followed by per-ELF-section blocks
//! `{u32 sec_name_off, u32 num_info, num_info * record_size bytes}`. The checks follow libbpf's
//! `btf_ext_setup_info`.

use std::marker::PhantomData;

use crate::error::BtfError;
use crate::raw::{Endian, BTF_MAGIC, BTF_VERSION};

/// Header bytes up to and including `line_info_len`.
const EXT_HDR_MIN: usize = 24;
/// Header bytes up to and including `core_relo_len`.
const EXT_HDR_CORE: usize = 32;

/// A record kind stored in a `.BTF.ext` subsection.
pub trait ExtRecord: Sized + Copy {
    /// Smallest record size the format allows (what libbpf requires at least).
    const MIN_SIZE: usize;
    /// Subsection name for error messages.
    const WHAT: &'static str;
    /// Decodes a record from its first `MIN_SIZE` bytes (`rec.len() >= MIN_SIZE`).
    fn decode(rec: &[u8], e: Endian) -> Self;
}

/// `struct bpf_func_info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FuncInfo {
    /// Offset of the function's first instruction in its ELF section, in **bytes** as stored in
    /// the object (the kernel wants instruction units: divide by 8).
    pub insn_off: u32,
    /// BTF id of the FUNC.
    pub type_id: u32,
}

impl ExtRecord for FuncInfo {
    const MIN_SIZE: usize = 8;
    const WHAT: &'static str = "func_info";
    fn decode(rec: &[u8], e: Endian) -> Self {
        FuncInfo {
            insn_off: e.u32_in(rec, 0),
            type_id: e.u32_in(rec, 4),
        }
    }
}

/// `struct bpf_line_info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineInfo {
    /// Instruction offset in bytes within the ELF section.
    pub insn_off: u32,
    pub file_name_off: u32,
    pub line_off: u32,
    /// `line << 10 | column`.
    pub line_col: u32,
}

impl LineInfo {
    /// Source line number.
    pub fn line(&self) -> u32 {
        self.line_col >> 10
    }
    /// Source column.
    pub fn column(&self) -> u32 {
        self.line_col & 0x3ff
    }
}

impl ExtRecord for LineInfo {
    const MIN_SIZE: usize = 16;
    const WHAT: &'static str = "line_info";
    fn decode(rec: &[u8], e: Endian) -> Self {
        LineInfo {
            insn_off: e.u32_in(rec, 0),
            file_name_off: e.u32_in(rec, 4),
            line_off: e.u32_in(rec, 8),
            line_col: e.u32_in(rec, 12),
        }
    }
}

/// `enum bpf_core_relo_kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoreReloKind {
    FieldByteOffset = 0,
    FieldByteSize = 1,
    FieldExists = 2,
    FieldSigned = 3,
    FieldLShiftU64 = 4,
    FieldRShiftU64 = 5,
    TypeIdLocal = 6,
    TypeIdTarget = 7,
    TypeExists = 8,
    TypeSize = 9,
    EnumvalExists = 10,
    EnumvalValue = 11,
    TypeMatches = 12,
}

impl CoreReloKind {
    /// The kind for a raw value, `None` if unknown.
    pub fn from_u32(v: u32) -> Option<Self> {
        use CoreReloKind::*;
        Some(match v {
            0 => FieldByteOffset,
            1 => FieldByteSize,
            2 => FieldExists,
            3 => FieldSigned,
            4 => FieldLShiftU64,
            5 => FieldRShiftU64,
            6 => TypeIdLocal,
            7 => TypeIdTarget,
            8 => TypeExists,
            9 => TypeSize,
            10 => EnumvalExists,
            11 => EnumvalValue,
            12 => TypeMatches,
            _ => return None,
        })
    }

    /// libbpf's `core_relo_kind_str`.
    pub fn as_str(self) -> &'static str {
        use CoreReloKind::*;
        match self {
            FieldByteOffset => "byte_off",
            FieldByteSize => "byte_sz",
            FieldExists => "field_exists",
            FieldSigned => "signed",
            FieldLShiftU64 => "lshift_u64",
            FieldRShiftU64 => "rshift_u64",
            TypeIdLocal => "local_type_id",
            TypeIdTarget => "target_type_id",
            TypeExists => "type_exists",
            TypeMatches => "type_matches",
            TypeSize => "type_size",
            EnumvalExists => "enumval_exists",
            EnumvalValue => "enumval_value",
        }
    }
}

/// `struct bpf_core_relo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreRelo {
    /// Instruction offset in bytes within the ELF section.
    pub insn_off: u32,
    /// Local (object) BTF type id of the root type.
    pub type_id: u32,
    /// String offset of the access spec (`"0:1:2"`).
    pub access_str_off: u32,
    /// Raw kind; decode with [`CoreReloKind::from_u32`] (unknown kinds are the CO-RE engine's
    /// error to report, with this record's position).
    pub kind: u32,
}

impl ExtRecord for CoreRelo {
    const MIN_SIZE: usize = 16;
    const WHAT: &'static str = "core_relo";
    fn decode(rec: &[u8], e: Endian) -> Self {
        CoreRelo {
            insn_off: e.u32_in(rec, 0),
            type_id: e.u32_in(rec, 4),
            access_str_off: e.u32_in(rec, 8),
            kind: e.u32_in(rec, 12),
        }
    }
}

/// One subsection (func_info, line_info or core_relo), validated.
#[derive(Debug, Clone, Copy)]
pub struct ExtInfo<'a, R> {
    /// Everything after the `record_size` word.
    data: &'a [u8],
    record_size: usize,
    endian: Endian,
    _r: PhantomData<R>,
}

/// [`ExtInfo::parse`]'s checks, once for all record types: the records and their size.
fn validate<'a>(
    sub: &'a [u8],
    endian: Endian,
    what: &str,
    min_size: usize,
) -> Result<(&'a [u8], usize), BtfError> {
    let bad = |reason: String| BtfError::BadExt {
        reason: format!("{}: {reason}", what),
    };
    let record_size = endian
        .u32_at(sub, 0)
        .ok_or_else(|| bad("too short for the record size".into()))? as usize;
    if record_size < min_size || !record_size.is_multiple_of(4) {
        return Err(bad(format!("bad record size {record_size}")));
    }
    if endian != Endian::NATIVE && record_size != min_size {
        return Err(bad(format!(
            "record size {record_size} in non-native byte order (must be {})",
            min_size
        )));
    }
    let data = &sub[4..];
    if data.is_empty() {
        return Err(bad("no records".into()));
    }
    let mut off = 0usize;
    while off < data.len() {
        let left = data.len() - off;
        if left < 8 {
            return Err(bad(format!("truncated block header at offset {off}")));
        }
        let num = endian.u32_in(data, off + 4) as u64;
        if num == 0 {
            return Err(bad(format!("block at offset {off} has no records")));
        }
        let total = 8 + num * record_size as u64;
        if (left as u64) < total {
            return Err(bad(format!(
                    "block at offset {off}: {num} records of {record_size} bytes exceed the {left} bytes left"
                )));
        }
        off += total as usize;
    }
    Ok((data, record_size))
}

impl<'a, R: ExtRecord> ExtInfo<'a, R> {
    fn empty(endian: Endian) -> Self {
        ExtInfo {
            data: &[],
            record_size: R::MIN_SIZE,
            endian,
            _r: PhantomData,
        }
    }

    /// Validates a subsection as libbpf does: record size at least the minimum and a multiple of
    /// 4 (exactly the minimum for non-native byte order, so records can be swapped), at least
    /// one block, each block with `num_info > 0` and fitting in the data.
    fn parse(sub: &'a [u8], endian: Endian) -> Result<Self, BtfError> {
        let (data, record_size) = validate(sub, endian, R::WHAT, R::MIN_SIZE)?;
        Ok(ExtInfo {
            data,
            record_size,
            endian,
            _r: PhantomData,
        })
    }

    /// Record size as stored (may exceed `R::MIN_SIZE` for newer formats; the kernel gets it).
    pub fn record_size(&self) -> usize {
        self.record_size
    }

    /// Per-ELF-section blocks in file order.
    pub fn sections(&self) -> ExtSections<'a, R> {
        ExtSections {
            data: self.data,
            record_size: self.record_size,
            endian: self.endian,
            _r: PhantomData,
        }
    }

    /// Whether the subsection is absent.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// Iterator over the per-section blocks of a subsection.
#[derive(Debug, Clone)]
pub struct ExtSections<'a, R> {
    data: &'a [u8],
    record_size: usize,
    endian: Endian,
    _r: PhantomData<R>,
}

impl<'a, R: ExtRecord> Iterator for ExtSections<'a, R> {
    type Item = ExtSection<'a, R>;
    fn next(&mut self) -> Option<Self::Item> {
        // Validated in `ExtInfo::parse`; the checks here only keep the iterator panic-free.
        let e = self.endian;
        let name_off = e.u32_at(self.data, 0)?;
        let num = e.u32_at(self.data, 4)? as usize;
        let len = num.checked_mul(self.record_size)?;
        let records = self.data.get(8..8usize.checked_add(len)?)?;
        self.data = &self.data[8 + len..];
        Some(ExtSection {
            sec_name_off: name_off,
            records,
            record_size: self.record_size,
            endian: e,
            _r: PhantomData,
        })
    }
}

/// The records of one ELF section.
#[derive(Debug, Clone, Copy)]
pub struct ExtSection<'a, R> {
    /// Offset of the ELF section name in the `.BTF` string table.
    pub sec_name_off: u32,
    records: &'a [u8],
    record_size: usize,
    endian: Endian,
    _r: PhantomData<R>,
}

impl<'a, R: ExtRecord> ExtSection<'a, R> {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len() / self.record_size
    }
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
    /// Record size in bytes.
    pub fn record_size(&self) -> usize {
        self.record_size
    }
    /// The raw records (`len() * record_size()` bytes, in the object's byte order).
    pub fn raw(&self) -> &'a [u8] {
        self.records
    }
    /// Record `i`.
    pub fn get(&self, i: usize) -> Option<R> {
        let off = i.checked_mul(self.record_size)?;
        let rec = self.records.get(off..off.checked_add(self.record_size)?)?;
        Some(R::decode(rec, self.endian))
    }
    /// Iterates the decoded records.
    pub fn records(&self) -> impl ExactSizeIterator<Item = R> + 'a {
        let e = self.endian;
        self.records
            .chunks_exact(self.record_size)
            .map(move |r| R::decode(r, e))
    }
}

/// A parsed `.BTF.ext` section, borrowing the object's bytes.
#[derive(Debug, Clone, Copy)]
pub struct BtfExt<'a> {
    pub endian: Endian,
    pub func_info: ExtInfo<'a, FuncInfo>,
    pub line_info: ExtInfo<'a, LineInfo>,
    /// Empty when the header predates CO-RE relocations.
    pub core_relos: ExtInfo<'a, CoreRelo>,
}

impl<'a> BtfExt<'a> {
    /// Parses `.BTF.ext` bytes (either byte order).
    // Out of line: smaller code in the load pipeline's one big function (issue 8).
    #[inline(never)]
    pub fn parse(data: &'a [u8]) -> Result<BtfExt<'a>, BtfError> {
        let bad = |reason: String| BtfError::BadExt { reason };
        if data.len() < 8 {
            return Err(bad(format!(
                "{} bytes is shorter than the header",
                data.len()
            )));
        }
        let le = Endian::Little.u16_at(data, 0).unwrap_or(0);
        let endian = if le == BTF_MAGIC {
            Endian::Little
        } else if le.swap_bytes() == BTF_MAGIC {
            Endian::Big
        } else {
            return Err(bad(format!("bad magic {le:#06x}")));
        };
        if data[2] != BTF_VERSION {
            return Err(bad(format!("unsupported version {}", data[2])));
        }
        if data[3] != 0 {
            return Err(bad(format!("unsupported flags {:#x}", data[3])));
        }
        let hdr_len = endian.u32_in(data, 4) as usize;
        if hdr_len < EXT_HDR_MIN || hdr_len > data.len() {
            return Err(bad(format!(
                "hdr_len {hdr_len} not within [{EXT_HDR_MIN}, {}]",
                data.len()
            )));
        }
        // libbpf's btf_ext_parse_hdr: a header alone is no .BTF.ext.
        if hdr_len == data.len() {
            return Err(bad("no data after the header".into()));
        }
        let body = &data[hdr_len..];
        let sub = |off_at: usize, what: &str| -> Result<&'a [u8], BtfError> {
            let off = endian.u32_in(data, off_at) as usize;
            let len = endian.u32_in(data, off_at + 4) as usize;
            if len == 0 {
                return Ok(&[]);
            }
            if !off.is_multiple_of(4) {
                return Err(bad(format!("{what} offset {off} is not 4-byte aligned")));
            }
            body.get(off..off.saturating_add(len))
                .filter(|_| off.checked_add(len).is_some())
                .ok_or_else(|| {
                    bad(format!(
                        "{what} [{off}, +{len}) exceeds the {} bytes after the header",
                        body.len()
                    ))
                })
        };
        let fi = sub(8, "func_info")?;
        let li = sub(16, "line_info")?;
        let cr = if hdr_len >= EXT_HDR_CORE {
            sub(24, "core_relo")?
        } else {
            &[]
        };
        Ok(BtfExt {
            endian,
            func_info: if fi.is_empty() {
                ExtInfo::empty(endian)
            } else {
                ExtInfo::parse(fi, endian)?
            },
            line_info: if li.is_empty() {
                ExtInfo::empty(endian)
            } else {
                ExtInfo::parse(li, endian)?
            },
            core_relos: if cr.is_empty() {
                ExtInfo::empty(endian)
            } else {
                ExtInfo::parse(cr, endian)?
            },
        })
    }
}
