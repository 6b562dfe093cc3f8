//! A minimal read-only view of the object's `.BTF`, just what open needs: map definitions in
//! `.maps`, DATASEC lookups for global data, and member offsets for `values` initialisers.
//!
//! Every read is bounds-checked; type records are indexed once (offset per id) so lookups are O(1).

use super::elf::Endianness;

pub(crate) const KIND_INT: u32 = 1;
pub(crate) const KIND_PTR: u32 = 2;
pub(crate) const KIND_ARRAY: u32 = 3;
pub(crate) const KIND_STRUCT: u32 = 4;
pub(crate) const KIND_UNION: u32 = 5;
pub(crate) const KIND_ENUM: u32 = 6;
pub(crate) const KIND_TYPEDEF: u32 = 8;
pub(crate) const KIND_VOLATILE: u32 = 9;
pub(crate) const KIND_CONST: u32 = 10;
pub(crate) const KIND_RESTRICT: u32 = 11;
pub(crate) const KIND_FUNC_PROTO: u32 = 13;
pub(crate) const KIND_VAR: u32 = 14;
pub(crate) const KIND_DATASEC: u32 = 15;
pub(crate) const KIND_FLOAT: u32 = 16;
pub(crate) const KIND_TYPE_TAG: u32 = 18;
pub(crate) const KIND_ENUM64: u32 = 19;

/// `BTF_VAR_STATIC`.
pub(crate) const VAR_STATIC: u32 = 0;
/// `BTF_VAR_GLOBAL_ALLOCATED`.
pub(crate) const VAR_GLOBAL_ALLOCATED: u32 = 1;

/// A type header plus where its trailing data lives.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TypeRec {
    pub name_off: u32,
    pub kind: u32,
    pub vlen: u32,
    pub kflag: bool,
    /// `size` or `type`, depending on the kind.
    pub size_or_type: u32,
    /// Offset of the trailing data in `types`.
    extra: usize,
}

/// A struct/union member.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Member {
    pub name_off: u32,
    pub type_id: u32,
    pub bit_offset: u32,
}

pub(crate) struct BtfView {
    endian: Endianness,
    types: Vec<u8>,
    strings: Vec<u8>,
    /// `recs[id]`; id 0 is void.
    recs: Vec<TypeRec>,
}

fn extra_len(kind: u32, vlen: u32) -> Option<usize> {
    let v = vlen as usize;
    Some(match kind {
        KIND_INT => 4,
        KIND_ARRAY => 12,
        KIND_STRUCT | KIND_UNION => v * 12,
        KIND_ENUM => v * 8,
        KIND_FUNC_PROTO => v * 8,
        KIND_VAR => 4,
        KIND_DATASEC => v * 12,
        17 => 4, // DECL_TAG
        KIND_ENUM64 => v * 12,
        KIND_PTR | 7 | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | 12
        | KIND_FLOAT | KIND_TYPE_TAG => 0,
        _ => return None,
    })
}

impl BtfView {
    pub fn parse(raw: &[u8], endian: Endianness) -> Result<Self, String> {
        let magic = raw.get(..2).ok_or("truncated header")?;
        let e = match (magic[0], magic[1]) {
            (0x9f, 0xeb) => Endianness::Little,
            (0xeb, 0x9f) => Endianness::Big,
            _ => return Err("bad magic".into()),
        };
        if e != endian {
            log::debug!("BTF byte order differs from the ELF's");
        }
        let r = |off| {
            e.read_u32(raw, off)
                .ok_or_else(|| "truncated header".to_string())
        };
        let hdr_len = r(4)? as usize;
        let (type_off, type_len, str_off, str_len) = (
            r(8)? as usize,
            r(12)? as usize,
            r(16)? as usize,
            r(20)? as usize,
        );
        let body = raw.get(hdr_len..).ok_or("header length beyond data")?;
        let slice = |off: usize, len: usize, what: &str| {
            off.checked_add(len)
                .and_then(|end| body.get(off..end))
                .ok_or_else(|| format!("{what} section out of bounds"))
        };
        let types = slice(type_off, type_len, "type")?.to_vec();
        let strings = slice(str_off, str_len, "string")?.to_vec();
        let mut recs = vec![TypeRec {
            name_off: 0,
            kind: 0,
            vlen: 0,
            kflag: false,
            size_or_type: 0,
            extra: 0,
        }];
        let mut off = 0usize;
        while off < types.len() {
            let rd = |o: usize| {
                e.read_u32(&types, o)
                    .ok_or_else(|| format!("type [{}] truncated", recs.len()))
            };
            let (name_off, info, st) = (rd(off)?, rd(off + 4)?, rd(off + 8)?);
            let kind = (info >> 24) & 0x1f;
            let vlen = info & 0xffff;
            let len = extra_len(kind, vlen)
                .ok_or_else(|| format!("type [{}] has unknown kind {kind}", recs.len()))?;
            let extra = off + 12;
            if extra.checked_add(len).is_none_or(|end| end > types.len()) {
                return Err(format!("type [{}] truncated", recs.len()));
            }
            recs.push(TypeRec {
                name_off,
                kind,
                vlen,
                kflag: info >> 31 == 1,
                size_or_type: st,
                extra,
            });
            off = extra + len;
        }
        Ok(BtfView {
            endian: e,
            types,
            strings,
            recs,
        })
    }

    pub fn rec(&self, id: u32) -> Option<&TypeRec> {
        self.recs.get(id as usize)
    }

    pub fn type_count(&self) -> u32 {
        self.recs.len() as u32
    }

    pub fn str_at(&self, off: u32) -> Option<&str> {
        let s = self.strings.get(off as usize..)?;
        let end = s.iter().position(|&b| b == 0)?;
        std::str::from_utf8(&s[..end]).ok()
    }

    pub fn name(&self, id: u32) -> &str {
        self.rec(id)
            .and_then(|r| self.str_at(r.name_off))
            .unwrap_or("")
    }

    fn u32_at(&self, off: usize) -> u32 {
        // In bounds: record extents were checked at parse.
        self.endian_read(off)
    }

    fn endian_read(&self, off: usize) -> u32 {
        self.endian.read_u32(&self.types, off).unwrap_or(0)
    }

    /// `skip_mods_and_typedefs`.
    pub fn skip_mods(&self, mut id: u32) -> Option<(u32, &TypeRec)> {
        for _ in 0..64 {
            let r = self.rec(id)?;
            match r.kind {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    id = r.size_or_type
                }
                _ => return Some((id, r)),
            }
        }
        None
    }

    pub fn members(&self, r: &TypeRec) -> Vec<Member> {
        if r.kind != KIND_STRUCT && r.kind != KIND_UNION {
            return Vec::new();
        }
        (0..r.vlen as usize)
            .map(|i| {
                let o = r.extra + i * 12;
                let raw_off = self.u32_at(o + 8);
                let bit_offset = if r.kflag {
                    raw_off & 0xff_ffff
                } else {
                    raw_off
                };
                Member {
                    name_off: self.u32_at(o),
                    type_id: self.u32_at(o + 4),
                    bit_offset,
                }
            })
            .collect()
    }

    /// (elem type, nelems) of an ARRAY.
    pub fn array(&self, r: &TypeRec) -> Option<(u32, u32)> {
        (r.kind == KIND_ARRAY).then(|| (self.u32_at(r.extra), self.u32_at(r.extra + 8)))
    }

    /// Linkage of a VAR.
    pub fn var_linkage(&self, r: &TypeRec) -> Option<u32> {
        (r.kind == KIND_VAR).then(|| self.u32_at(r.extra))
    }

    /// (type, offset, size) entries of a DATASEC.
    pub fn datasec_vars(&self, r: &TypeRec) -> Vec<(u32, u32, u32)> {
        if r.kind != KIND_DATASEC {
            return Vec::new();
        }
        (0..r.vlen as usize)
            .map(|i| {
                let o = r.extra + i * 12;
                (self.u32_at(o), self.u32_at(o + 4), self.u32_at(o + 8))
            })
            .collect()
    }

    /// The single value of a one-entry ENUM/ENUM64 (`__ulong()` encoding of `map_extra`).
    pub fn single_enum_value(&self, r: &TypeRec) -> Option<u64> {
        if r.vlen != 1 {
            return None;
        }
        match r.kind {
            KIND_ENUM => Some(u64::from(self.u32_at(r.extra + 4))),
            KIND_ENUM64 => {
                let lo = u64::from(self.u32_at(r.extra + 4));
                let hi = u64::from(self.u32_at(r.extra + 8));
                Some(hi << 32 | lo)
            }
            _ => None,
        }
    }

    /// `btf__resolve_size`.
    pub fn resolve_size(&self, id: u32) -> Result<u32, String> {
        let mut id = id;
        let mut nelems: u64 = 1;
        for _ in 0..64 {
            let r = self
                .rec(id)
                .ok_or_else(|| format!("type [{id}] not found"))?;
            let size = match r.kind {
                KIND_INT | KIND_STRUCT | KIND_UNION | KIND_ENUM | KIND_ENUM64 | KIND_DATASEC
                | KIND_FLOAT => u64::from(r.size_or_type),
                KIND_PTR => 8,
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG
                | KIND_VAR => {
                    id = r.size_or_type;
                    continue;
                }
                KIND_ARRAY => {
                    let (elem, n) = self.array(r).unwrap_or((0, 0));
                    nelems = nelems.saturating_mul(u64::from(n));
                    id = elem;
                    continue;
                }
                k => return Err(format!("type [{id}] of kind {k} has no size")),
            };
            return u32::try_from(nelems.saturating_mul(size))
                .map_err(|_| format!("type [{id}] is too large"));
        }
        Err("type chain too deep".into())
    }

    /// `btf__find_by_name`: the first type with this name.
    pub fn find_by_name(&self, name: &str) -> Option<u32> {
        (1..self.type_count()).find(|&id| self.name(id) == name)
    }

    /// The DATASEC with this name.
    pub fn find_datasec(&self, name: &str) -> Option<u32> {
        (1..self.type_count()).find(|&id| {
            self.rec(id).is_some_and(|r| r.kind == KIND_DATASEC) && self.name(id) == name
        })
    }
}
