//! [`Btf`]: a zero-copy, lazily decoded view of one BTF blob (optionally split on a base).

use std::ffi::CStr;
use std::ops::Range;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::error::BtfError;
use crate::index::{Keys, NameIndex, Part};
use crate::offsets::{record_len, TypeOffsets};
use crate::raw::{
    info_kflag, info_kind, info_vlen, Endian, FuncLinkage, Header, Kind, VarLinkage, BTF_MAGIC,
    BTF_VERSION, HEADER_LEN, MAX_NAME_OFFSET, MAX_RESOLVE_DEPTH, TYPE_HEADER_LEN,
};
use crate::scan::{scan_keyed, scan_types};
use crate::types::{Array, Composite, DataSec, Enum, FuncProto, Int, Type};

/// Everything [`Btf::parse`] computes about a blob, independent of the borrow of its bytes, so an
/// owner of the bytes (see [`BtfData`](crate::BtfData)) can keep it and hand out views cheaply.
#[derive(Debug)]
pub(crate) struct Layout {
    pub(crate) header: Header,
    /// Byte range of the type section in the blob.
    pub(crate) types: Range<usize>,
    /// Byte range of the string section in the blob.
    pub(crate) strs: Range<usize>,
    /// Where each own type starts in the type section (type `start_id + i` is number `i`).
    pub(crate) offsets: TypeOffsets,
    /// First own type id: 1 for base BTF, the base's type count for split BTF.
    pub(crate) start_id: u32,
    /// String offsets below this belong to the base.
    pub(crate) start_str_off: u32,
    /// Name indexes over the own types, one per [`index::Part`](crate::index::Part) (FUNCs apart
    /// from everything else: 56k of vmlinux's 71k names are FUNCs, which CO-RE never looks
    /// up), each built on first use, or for the kernel's BTF once scans or walks have been
    /// repeated (`own_lookup`).
    pub(crate) index: [OnceLock<NameIndex>; 2],
    /// For the kernel's BTF (parsed with [`Layout::new_keyed`]): where its named non-FUNC types
    /// are. Non-FUNC lookups scan them until the index is built from them (then they are
    /// dropped).
    pub(crate) keys: Mutex<Option<Arc<Keys>>>,
    /// Scans of the own types made instead of a name index so far: single non-FUNC lookups
    /// answered from `keys`, and CO-RE candidate passes (see [`Btf::core_pass_builds_index`]).
    pub(crate) scans: AtomicU32,
    /// For the kernel's BTF: FUNC lookups answered by walking the type section so far (see
    /// [`FUNC_SCANS_BEFORE_INDEX`]). `None` for other BTF, whose FUNC index is built at once.
    pub(crate) func_scans: Option<AtomicU32>,
    /// The size of `long` in this BTF (libbpf's `determine_ptr_size`), found on first use by
    /// [`Btf::long_size`]; `None` inside when the BTF has no 4- or 8-byte `long`.
    pub(crate) long_size: OnceLock<Option<u32>>,
}

/// FUNC lookups of the kernel's BTF (attach targets of fentry/fexit/fmod_ret/lsm/iter programs,
/// kfuncs, `__ksym` functions) answered by walking its type section, as libbpf answers every
/// lookup: ~0.8-1.1 ms a walk here, and a load asks for all its FUNCs in one
/// ([`Btf::find_funcs`]). Building the FUNC name index takes ~3.5-5 ms (56k FUNCs) and keeps
/// ~260 KB. So the first walk is made and the next lookup builds the index, as the first CO-RE
/// load scans and the second builds the other index: a process that loads one object never
/// pays for it. (Four walks before the index, tried: loads 2-4 of an object with kfuncs paid a
/// walk each, ~1.3 ms, and the 5th the build; in all ~4 ms more over six loads.)
const FUNC_SCANS_BEFORE_INDEX: u32 = 1;

/// How a lookup of own types is answered now (see [`Btf::own_lookup`]).
enum OwnLookup<'a> {
    /// Through the name index.
    Index(&'a NameIndex),
    /// By scanning the kernel's keys (non-FUNC kinds).
    Keys(Arc<Keys>),
    /// By walking every type record (FUNCs of the kernel's BTF).
    Walk,
}

/// Single non-FUNC lookups of a blob answered by scanning its keys (~0.1 ms each on vmlinux)
/// before its name index is built (~0.6-0.9 ms once, then ~0.2 µs a lookup): about what the
/// index costs, so repeated lookups never cost much more than twice the cheaper of the two.
const SCANS_BEFORE_INDEX: u32 = 8;
/// A CO-RE load's one candidate pass for all its local types (`core::engine::prefetch`), counted
/// in single lookups. The pass compares every key with the wanted names: ~0.25-0.3 ms for a
/// 20-type object against ~0.65-0.8 ms more to build the index (`vmlinux_ready coreloads`). It
/// counts as the whole budget, so the first CO-RE load scans and the second builds the index.
/// Deferring the index to the 4th load (a count of 3) made the 2nd and 3rd loads 0.3 ms cheaper
/// but every process with more loads 0.6 ms dearer in all, and the 4th load paid the same build.
const CORE_PASS_SCANS: u32 = SCANS_BEFORE_INDEX;

/// The keys' lock (poisoning ignored: nothing is left half-done under it).
fn lock(m: &Mutex<Option<Arc<Keys>>>) -> MutexGuard<'_, Option<Arc<Keys>>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A parsed BTF blob borrowed from `'a` bytes.
///
/// Parsing checks the header and records where each type starts (one pass, bounds-checked);
/// types are decoded only when asked for. Cloning is cheap (a slice, an `Arc` and, for split
/// BTF, the base's view), and the name index built through any clone is shared by all of them.
///
/// Type ids are global: for split BTF, ids below [`start_id`](Self::start_id) and string offsets
/// below the base's string size resolve in the base, as in the kernel and libbpf.
#[derive(Clone, Debug)]
pub struct Btf<'a> {
    data: &'a [u8],
    layout: Arc<Layout>,
    base: Option<Box<Btf<'a>>>,
}

pub(crate) fn parse_header(data: &[u8]) -> Result<Header, BtfError> {
    if data.len() < HEADER_LEN {
        return Err(BtfError::ShortHeader {
            len: data.len(),
            need: HEADER_LEN,
        });
    }
    let le = Endian::Little.u16_at(data, 0).unwrap_or(0);
    let endian = if le == BTF_MAGIC {
        Endian::Little
    } else if le.swap_bytes() == BTF_MAGIC {
        Endian::Big
    } else {
        return Err(BtfError::BadMagic { magic: le });
    };
    let w = |off| endian.u32_in(data, off);
    let h = Header {
        magic: BTF_MAGIC,
        version: data[2],
        flags: data[3],
        hdr_len: w(4),
        type_off: w(8),
        type_len: w(12),
        str_off: w(16),
        str_len: w(20),
        endian,
    };
    if h.version != BTF_VERSION {
        return Err(BtfError::BadVersion { version: h.version });
    }
    if (h.hdr_len as usize) < HEADER_LEN || h.hdr_len as usize > data.len() {
        return Err(BtfError::BadHeader {
            reason: format!(
                "hdr_len {} not within [{HEADER_LEN}, {}]",
                h.hdr_len,
                data.len()
            ),
        });
    }
    if !h.type_off.is_multiple_of(4) {
        return Err(BtfError::BadHeader {
            reason: format!("type section offset {} is not 4-byte aligned", h.type_off),
        });
    }
    let meta_left = (data.len() - h.hdr_len as usize) as u64;
    for (section, off, len) in [
        ("type", h.type_off, h.type_len),
        ("string", h.str_off, h.str_len),
    ] {
        if off as u64 + len as u64 > meta_left {
            return Err(BtfError::SectionOutOfBounds {
                section,
                start: h.hdr_len as u64 + off as u64,
                len: len as u64,
                data_len: data.len(),
            });
        }
    }
    // libbpf requires the types to come before the strings.
    if h.type_off as u64 + h.type_len as u64 > h.str_off as u64 {
        return Err(BtfError::BadHeader {
            reason: format!(
                "type data at {}+{} overlaps or follows string data at {}+{}",
                h.type_off, h.type_len, h.str_off, h.str_len
            ),
        });
    }
    Ok(h)
}

impl<'a> Btf<'a> {
    /// Parses base BTF (as found in `.BTF` or `/sys/kernel/btf/vmlinux`), in either byte order.
    pub fn parse(data: &'a [u8]) -> Result<Btf<'a>, BtfError> {
        let layout = Layout::new(data, None)?;
        Ok(Btf {
            data,
            layout: Arc::new(layout),
            base: None,
        })
    }

    /// Parses split BTF (as in `/sys/kernel/btf/<module>`) on top of `base`: its ids continue after
    /// the base's and its string offsets continue after the base's strings.
    pub fn parse_split(data: &'a [u8], base: &Btf<'a>) -> Result<Btf<'a>, BtfError> {
        let layout = Layout::new(data, Some(base))?;
        Ok(Btf {
            data,
            layout: Arc::new(layout),
            base: Some(Box::new(base.clone())),
        })
    }

    pub(crate) fn from_parts(
        data: &'a [u8],
        layout: Arc<Layout>,
        base: Option<Box<Btf<'a>>>,
    ) -> Self {
        Btf { data, layout, base }
    }

    pub(crate) fn layout(&self) -> &Arc<Layout> {
        &self.layout
    }

    /// The whole blob this view reads from.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The decoded header.
    pub fn header(&self) -> &Header {
        &self.layout.header
    }

    /// Byte order of the blob.
    pub fn endian(&self) -> Endian {
        self.layout.header.endian
    }

    /// The base this split BTF sits on, if any.
    pub fn base(&self) -> Option<&Btf<'a>> {
        self.base.as_deref()
    }

    /// Number of type ids, including void (id 0) and, for split BTF, all base types
    /// (libbpf's `btf__type_cnt`). Valid ids are `0..len()`.
    pub fn len(&self) -> u32 {
        self.layout.start_id + self.layout.offsets.len() as u32
    }

    /// Always false: void exists in every BTF.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// First id defined by this blob (1 for base BTF).
    pub fn start_id(&self) -> u32 {
        self.layout.start_id
    }

    /// Ids of the types this blob defines (excludes void and base types).
    pub fn own_ids(&self) -> Range<u32> {
        self.layout.start_id..self.len()
    }

    /// All valid non-void ids, base types first.
    pub fn ids(&self) -> Range<u32> {
        1..self.len()
    }

    /// First string offset defined by this blob (0 for base BTF).
    pub fn start_str_off(&self) -> u32 {
        self.layout.start_str_off
    }

    /// This blob's raw type section.
    pub fn type_section(&self) -> &'a [u8] {
        &self.data[self.layout.types.clone()]
    }

    /// This blob's raw string section.
    pub fn string_section(&self) -> &'a [u8] {
        &self.data[self.layout.strs.clone()]
    }

    /// Total string bytes including the base's (where the next split blob's offsets start).
    pub fn strings_end(&self) -> u32 {
        self.layout.start_str_off + self.layout.strs.len() as u32
    }

    /// Raw bytes of one type record (12-byte header plus its extra data), in the blob's byte
    /// order. Fails for id 0 (void has no record) and for ids out of range.
    pub fn raw_type(&self, id: u32) -> Result<&'a [u8], BtfError> {
        if id < self.layout.start_id {
            return match &self.base {
                Some(b) if id != 0 => b.raw_type(id),
                _ => Err(BtfError::InvalidTypeId {
                    id,
                    count: self.len(),
                }),
            };
        }
        let idx = (id - self.layout.start_id) as usize;
        let types = self.type_section();
        let e = self.endian();
        let rec = self.layout.offsets.get(idx, types, e).and_then(|start| {
            let start = start as usize;
            let len = record_len(e.u32_at(types, start + 4)?)?;
            types.get(start..start.checked_add(len)?)
        });
        rec.ok_or(BtfError::InvalidTypeId {
            id,
            count: self.len(),
        })
    }

    /// The (name_off, info, size_or_type) words of a type; (0, 0, 0) for void.
    fn header_words(&self, id: u32) -> Result<(u32, u32, u32, Endian), BtfError> {
        if id == 0 {
            return Ok((0, 0, 0, self.endian()));
        }
        let (rec, e) = self.raw_type_with_endian(id)?;
        Ok((e.u32_in(rec, 0), e.u32_in(rec, 4), e.u32_in(rec, 8), e))
    }

    fn raw_type_with_endian(&self, id: u32) -> Result<(&'a [u8], Endian), BtfError> {
        if id < self.layout.start_id {
            if let Some(b) = &self.base {
                return b.raw_type_with_endian(id);
            }
        }
        Ok((self.raw_type(id)?, self.endian()))
    }

    /// The kind of type `id` (void for 0).
    pub fn kind(&self, id: u32) -> Result<Kind, BtfError> {
        let (_, info, _, _) = self.header_words(id)?;
        // Validated by the scan, so the fallback is unreachable for ids that exist.
        Ok(Kind::from_u32(info_kind(info)).unwrap_or(Kind::Void))
    }

    /// The kind_flag bit of type `id`.
    pub fn kind_flag(&self, id: u32) -> Result<bool, BtfError> {
        Ok(info_kflag(self.header_words(id)?.1))
    }

    /// The vlen field of type `id`.
    pub fn vlen(&self, id: u32) -> Result<u16, BtfError> {
        Ok(info_vlen(self.header_words(id)?.1))
    }

    /// The name offset of type `id` (0 for void and anonymous types).
    pub fn name_off(&self, id: u32) -> Result<u32, BtfError> {
        Ok(self.header_words(id)?.0)
    }

    /// The name of type `id` ("" for void and anonymous types).
    pub fn name(&self, id: u32) -> Result<&'a str, BtfError> {
        self.str_at(self.name_off(id)?)
    }

    /// The NUL-terminated string at `off` in the string section (base strings for small offsets
    /// of split BTF), without the NUL, as raw bytes.
    pub fn str_bytes_at(&self, off: u32) -> Result<&'a [u8], BtfError> {
        if off < self.layout.start_str_off {
            if let Some(b) = &self.base {
                return b.str_bytes_at(off);
            }
        }
        let rel = (off - self.layout.start_str_off) as usize;
        let strs = self.string_section();
        let Some(tail) = strs.get(rel..).filter(|t| !t.is_empty()) else {
            return Err(BtfError::InvalidStringOffset {
                offset: off,
                end: self.strings_end(),
            });
        };
        match CStr::from_bytes_until_nul(tail) {
            Ok(c) => Ok(c.to_bytes()),
            // The section is checked to end in NUL, so this cannot happen for parsed BTF.
            Err(_) => Err(BtfError::UnterminatedString { offset: off }),
        }
    }

    /// The string at `off` as UTF-8 (BTF names are C identifiers, section names or tag values).
    pub fn str_at(&self, off: u32) -> Result<&'a str, BtfError> {
        std::str::from_utf8(self.str_bytes_at(off)?)
            .map_err(|_| BtfError::InvalidUtf8 { offset: off })
    }

    /// Decodes type `id` into a borrowed view.
    pub fn type_by_id(&self, id: u32) -> Result<Type<'a>, BtfError> {
        if id == 0 {
            return Ok(Type::Void);
        }
        let (rec, e) = self.raw_type_with_endian(id)?;
        let info = e.u32_in(rec, 4);
        let st = e.u32_in(rec, 8);
        let kflag = info_kflag(info);
        let extra = &rec[TYPE_HEADER_LEN.min(rec.len())..];
        let w = |off: usize| e.u32_in(extra, off);
        let kind = Kind::from_u32(info_kind(info)).unwrap_or(Kind::Void);
        Ok(match kind {
            Kind::Void => Type::Void,
            Kind::Int => {
                let enc = w(0);
                Type::Int(Int {
                    size: st,
                    encoding: ((enc >> 24) & 0x0f) as u8,
                    offset: ((enc >> 16) & 0xff) as u8,
                    bits: (enc & 0xff) as u8,
                })
            }
            Kind::Ptr => Type::Ptr { target: st },
            Kind::Array => Type::Array(Array {
                elem: w(0),
                index: w(4),
                nelems: w(8),
            }),
            Kind::Struct | Kind::Union => {
                let c = Composite {
                    size: st,
                    kind_flag: kflag,
                    data: extra,
                    endian: e,
                };
                if kind == Kind::Struct {
                    Type::Struct(c)
                } else {
                    Type::Union(c)
                }
            }
            Kind::Enum | Kind::Enum64 => {
                let en = Enum {
                    size: st,
                    signed: kflag,
                    is64: kind == Kind::Enum64,
                    data: extra,
                    endian: e,
                };
                if kind == Kind::Enum {
                    Type::Enum(en)
                } else {
                    Type::Enum64(en)
                }
            }
            Kind::Fwd => Type::Fwd { is_union: kflag },
            Kind::Typedef => Type::Typedef { target: st },
            Kind::Volatile => Type::Volatile { target: st },
            Kind::Const => Type::Const { target: st },
            Kind::Restrict => Type::Restrict { target: st },
            Kind::Func => Type::Func {
                proto: st,
                linkage: FuncLinkage::from_raw(info_vlen(info)),
            },
            Kind::FuncProto => Type::FuncProto(FuncProto {
                ret: st,
                data: extra,
                endian: e,
            }),
            Kind::Var => Type::Var {
                target: st,
                linkage: VarLinkage::from_raw(w(0)),
            },
            Kind::DataSec => Type::DataSec(DataSec {
                size: st,
                data: extra,
                endian: e,
            }),
            Kind::Float => Type::Float { size: st },
            Kind::DeclTag => Type::DeclTag {
                target: st,
                component_idx: w(0) as i32,
            },
            Kind::TypeTag => Type::TypeTag { target: st },
        })
    }

    /// Size in bytes of type `id` after following typedefs, modifiers, VARs and tags and
    /// multiplying out arrays (libbpf's `btf__resolve_size`; pointers are 8 bytes).
    pub fn resolve_size(&self, id: u32) -> Result<u32, BtfError> {
        let mut cur = id;
        let mut nelems: u32 = 1;
        for _ in 0..MAX_RESOLVE_DEPTH {
            let t = self.type_by_id(cur)?;
            let size = match t {
                Type::Int(_)
                | Type::Struct(_)
                | Type::Union(_)
                | Type::Enum(_)
                | Type::Enum64(_)
                | Type::DataSec(_)
                | Type::Float { .. } => t.size().unwrap_or(0),
                Type::Ptr { .. } => 8,
                Type::Typedef { target }
                | Type::Volatile { target }
                | Type::Const { target }
                | Type::Restrict { target }
                | Type::Var { target, .. }
                | Type::DeclTag { target, .. }
                | Type::TypeTag { target } => {
                    cur = target;
                    continue;
                }
                Type::Array(a) => {
                    nelems = nelems
                        .checked_mul(a.nelems)
                        .ok_or(BtfError::SizeOverflow { id })?;
                    cur = a.elem;
                    continue;
                }
                other => {
                    return Err(BtfError::NoSize {
                        id: cur,
                        kind: other.kind(),
                    })
                }
            };
            return size
                .checked_mul(nelems)
                .ok_or(BtfError::SizeOverflow { id });
        }
        Err(BtfError::TooDeep {
            id,
            depth: MAX_RESOLVE_DEPTH,
        })
    }

    /// Follows CONST/VOLATILE/RESTRICT/TYPE_TAG and TYPEDEF from `id` to the first other type
    /// (libbpf's `skip_mods_and_typedefs`), with a depth limit so loops are errors.
    pub fn skip_mods_and_typedefs(&self, id: u32) -> Result<u32, BtfError> {
        self.skip_while(id, |t| t.is_mod() || matches!(t, Type::Typedef { .. }))
    }

    /// Follows CONST/VOLATILE/RESTRICT/TYPE_TAG only (libbpf's `skip_mods`).
    pub fn skip_mods(&self, id: u32) -> Result<u32, BtfError> {
        self.skip_while(id, |t| t.is_mod())
    }

    fn skip_while(&self, id: u32, skip: impl Fn(&Type<'_>) -> bool) -> Result<u32, BtfError> {
        let mut cur = id;
        for _ in 0..=MAX_RESOLVE_DEPTH {
            let t = self.type_by_id(cur)?;
            if !skip(&t) {
                return Ok(cur);
            }
            cur = t.target().unwrap_or(0);
        }
        Err(BtfError::TooDeep {
            id,
            depth: MAX_RESOLVE_DEPTH,
        })
    }

    /// The name index over this blob's own types, built on first use (shared by all clones).
    pub(crate) fn own_index(&self, kind: Kind) -> &NameIndex {
        let part = Part::of(kind as u32);
        self.layout.index[part as usize].get_or_init(|| {
            let keys = match part {
                Part::Types => lock(&self.layout.keys).take(),
                Part::Funcs => None,
            };
            match keys {
                Some(k) => NameIndex::from_keys(self, &k),
                None => NameIndex::build(self, part),
            }
        })
    }

    /// How a lookup of own types is answered now: by the index, or, for the kernel's BTF before
    /// the index of that part exists, by scanning its keys (non-FUNC kinds, the first
    /// [`SCANS_BEFORE_INDEX`] times) or by walking its records (FUNCs, the first
    /// [`FUNC_SCANS_BEFORE_INDEX`] times).
    fn own_lookup(&self, kind: Kind) -> OwnLookup<'_> {
        let part = Part::of(kind as u32);
        if self.layout.index[part as usize].get().is_none() {
            match part {
                Part::Types => {
                    let keys = lock(&self.layout.keys).clone();
                    if let Some(k) = keys {
                        if self.layout.scans.fetch_add(1, Ordering::Relaxed) < SCANS_BEFORE_INDEX {
                            return OwnLookup::Keys(k);
                        }
                    }
                }
                Part::Funcs => {
                    if let Some(n) = &self.layout.func_scans {
                        if n.fetch_add(1, Ordering::Relaxed) < FUNC_SCANS_BEFORE_INDEX {
                            return OwnLookup::Walk;
                        }
                    }
                }
            }
        }
        OwnLookup::Index(self.own_index(kind))
    }

    /// Own ids of kind `kind` named `name` (`exact`) or with `name` as their essential name,
    /// ascending, found by walking every type record (libbpf's `btf__find_by_name_kind`).
    fn walk_find(&self, name: &[u8], kind: Kind, exact: bool) -> Vec<u32> {
        self.walk_names(kind, &[name], exact, false)
            .pop()
            .unwrap_or_default()
    }

    /// One walk over every type record for several names: per name, the own ids of kind `kind`
    /// named so (`exact`) or with it as their essential name, ascending (only the lowest with
    /// `first_only`, and the walk stops once each name has one). Kind first, so other kinds'
    /// names are never read; each name is compared only with the wanted ones of the same first
    /// byte.
    fn walk_names(
        &self,
        kind: Kind,
        names: &[&[u8]],
        exact: bool,
        first_only: bool,
    ) -> Vec<Vec<u32>> {
        let mut out = vec![Vec::new(); names.len()];
        let mut by_first: Vec<Vec<usize>> = vec![Vec::new(); 256];
        for (i, n) in names.iter().enumerate() {
            if let Some(&b) = n.first() {
                by_first[b as usize].push(i);
            }
        }
        let types = self.type_section();
        let e = self.endian();
        let strs = self.string_section();
        let start_str = self.start_str_off();
        let mut left = names.iter().filter(|n| !n.is_empty()).count();
        for (idx, off) in self.layout().offsets.iter(types, e).enumerate() {
            if first_only && left == 0 {
                break;
            }
            let off = off as usize;
            if info_kind(e.u32_in(types, off + 4)) != kind as u32 {
                continue;
            }
            let name_off = e.u32_in(types, off);
            let tail: &[u8] = if name_off >= start_str {
                strs.get((name_off - start_str) as usize..).unwrap_or(&[])
            } else {
                self.str_bytes_at(name_off).unwrap_or(&[])
            };
            let Some(&first) = tail.first() else {
                continue;
            };
            for &i in &by_first[first as usize] {
                if first_only && !out[i].is_empty() {
                    continue;
                }
                if crate::index::name_matches(tail, names[i], exact) {
                    out[i].push(self.start_id() + idx as u32);
                    left -= usize::from(first_only);
                }
            }
        }
        out
    }

    /// For a CO-RE candidate pass over this blob, which has no name index yet: whether the pass
    /// should build the index now rather than scan (and counts the pass). The kernel's BTF scans
    /// its keys, within [`SCANS_BEFORE_INDEX`] shared with single lookups. Other BTF (module BTF,
    /// a custom vmlinux) has no keys: its first pass walks all its types, and its second builds
    /// the index.
    pub(crate) fn core_pass_builds_index(&self) -> bool {
        if lock(&self.layout.keys).is_some() {
            let before = self
                .layout
                .scans
                .fetch_add(CORE_PASS_SCANS, Ordering::Relaxed);
            before >= SCANS_BEFORE_INDEX
        } else {
            self.layout.scans.fetch_add(1, Ordering::Relaxed) >= 1
        }
    }

    /// The size of `long` in this BTF, which libbpf takes as the pointer size (`btf_ptr_sz`:
    /// 4 in the BTF of a 32-bit kernel): the size of the lowest-id INT of size 4 or 8 named
    /// `long`, `unsigned long` or another spelling of them (libbpf's `determine_ptr_size`).
    /// `None` if there is none (libbpf then uses the host's pointer size). Found once per blob.
    pub(crate) fn long_size(&self) -> Option<u32> {
        const LONG_ALIASES: [&str; 11] = [
            "long",
            "long int",
            "int long",
            "unsigned long",
            "long unsigned",
            "unsigned long int",
            "unsigned int long",
            "long unsigned int",
            "long int unsigned",
            "int unsigned long",
            "int long unsigned",
        ];
        *self.layout.long_size.get_or_init(|| {
            // libbpf scans all ids from 1, base types first, unless the base already knows
            // its size: the base's answer if it has one is the same as the scan's
            if let Some(sz) = self.base.as_ref().and_then(|b| b.long_size()) {
                return Some(sz);
            }
            self.own_ids().find_map(|id| {
                // a type or name that cannot be read is skipped, as libbpf skips names it
                // cannot read: the scan is a guess, never an error. The kind first: decoding
                // every type of a BTF without `long` would cost more.
                if !matches!(self.kind(id), Ok(Kind::Int)) {
                    return None;
                }
                let Ok(Type::Int(i)) = self.type_by_id(id) else {
                    return None;
                };
                if i.size != 4 && i.size != 8 {
                    return None;
                }
                let name = self.name(id).ok()?;
                LONG_ALIASES.contains(&name).then_some(i.size)
            })
        })
    }

    /// The kernel's keys while no index is built (CO-RE passes scan them).
    pub(crate) fn pending_keys(&self) -> Option<Arc<Keys>> {
        lock(&self.layout.keys).clone()
    }

    /// Whether the name index of non-FUNC types (what CO-RE candidate lookup uses) exists, so
    /// lookups need no scan. True from the start for the kernel's BTF.
    pub fn is_indexed(&self) -> bool {
        self.base.as_ref().is_none_or(|b| b.is_indexed())
            && self.layout.index[Part::Types as usize].get().is_some()
    }

    /// Heap bytes held by this blob's parse tables: the sparse type offsets, the kernel's keys
    /// while they are kept and the name index tables built so far (duplicate-name chains
    /// excluded). For memory reports.
    pub fn table_bytes(&self) -> usize {
        self.layout.offsets.heap_bytes()
            + lock(&self.layout.keys)
                .as_ref()
                .map_or(0, |k| k.heap_bytes())
            + self
                .layout
                .index
                .iter()
                .filter_map(|i| i.get())
                .map(NameIndex::table_bytes)
                .sum::<usize>()
    }

    /// Builds the name index of non-FUNC types (CO-RE candidates) now.
    pub fn build_type_index(&self) {
        if let Some(b) = &self.base {
            b.build_type_index();
        }
        self.own_index(Kind::Struct);
    }

    /// Builds all name indexes now (otherwise each part is built by its first lookup).
    pub fn build_index(&self) {
        if let Some(b) = &self.base {
            b.build_index();
        }
        self.own_index(Kind::Func);
        self.own_index(Kind::Struct);
    }

    /// The lowest id whose name is exactly `name` and whose kind is `kind`, searching the base
    /// first (libbpf's `btf__find_by_name_kind`; `"void"` or [`Kind::Void`] give 0).
    pub fn find_by_name_kind(&self, name: &str, kind: Kind) -> Option<u32> {
        if kind == Kind::Void || name == "void" {
            return Some(0);
        }
        if let Some(id) = self
            .base
            .as_ref()
            .and_then(|b| b.find_by_name_kind(name, kind))
        {
            return Some(id);
        }
        match self.own_lookup(kind) {
            OwnLookup::Index(index) => index.find_exact(self, name.as_bytes(), kind),
            OwnLookup::Keys(keys) => keys
                .find(self, name.as_bytes(), kind, true)
                .first()
                .copied(),
            OwnLookup::Walk => self.walk_find(name.as_bytes(), kind, true).first().copied(),
        }
    }

    /// `find_by_name_kind(name, Kind::Func)` for several names at once. For the kernel's BTF
    /// before its FUNC index exists, one walk of the type section answers them all (and counts
    /// as one of the walks made before the index is built): a load asks for all its attach
    /// targets and kfuncs together.
    pub fn find_funcs(&self, names: &[&str]) -> Vec<Option<u32>> {
        if self.base.is_some() || names.len() < 2 {
            return names
                .iter()
                .map(|n| self.find_by_name_kind(n, Kind::Func))
                .collect();
        }
        let mut found: Vec<Option<u32>> = match self.own_lookup(Kind::Func) {
            OwnLookup::Walk => {
                let names: Vec<&[u8]> = names.iter().map(|n| n.as_bytes()).collect();
                self.walk_names(Kind::Func, &names, true, true)
                    .into_iter()
                    .map(|ids| ids.first().copied())
                    .collect()
            }
            OwnLookup::Index(index) => names
                .iter()
                .map(|n| index.find_exact(self, n.as_bytes(), Kind::Func))
                .collect(),
            // FUNCs are never in the keys.
            OwnLookup::Keys(_) => names
                .iter()
                .map(|n| {
                    self.walk_find(n.as_bytes(), Kind::Func, true)
                        .first()
                        .copied()
                })
                .collect(),
        };
        // As in `find_by_name_kind`: "void" is type 0 whatever the kind.
        for (f, n) in found.iter_mut().zip(names) {
            if *n == "void" {
                *f = Some(0);
            }
        }
        found
    }

    /// Ids whose *essential* name (`___flavor` suffix removed, see
    /// [`essential_name`](crate::essential_name)) equals `essential` and whose kind is `kind`, in
    /// ascending order, base types first. `essential` must already be essential: CO-RE passes
    /// `essential_name(local_name)`.
    pub fn candidates<'s>(
        &'s self,
        essential: &'s [u8],
        kind: Kind,
    ) -> impl Iterator<Item = u32> + 's {
        let base: Box<dyn Iterator<Item = u32> + 's> = match &self.base {
            Some(b) => Box::new(b.candidates(essential, kind)),
            None => Box::new(std::iter::empty()),
        };
        base.chain(self.own_candidates(essential, kind))
    }

    /// Like [`candidates`](Self::candidates) but only this blob's own types (for split BTF: only
    /// the module's types, not the base's).
    pub fn own_candidates<'s>(
        &'s self,
        essential: &'s [u8],
        kind: Kind,
    ) -> impl Iterator<Item = u32> + 's {
        let (index, scanned) = match self.own_lookup(kind) {
            OwnLookup::Index(index) => (Some(index), Vec::new()),
            OwnLookup::Keys(keys) => (None, keys.find(self, essential, kind, false)),
            OwnLookup::Walk => (None, self.walk_find(essential, kind, false)),
        };
        index
            .into_iter()
            .flat_map(move |i| i.candidates(self, essential, kind))
            .chain(scanned)
    }
}

/// libbpf's `btf_parse_str_sec`: non-empty (may be empty for split BTF), within the name-offset
/// limit, NUL-terminated, and starting with "" for base BTF.
fn check_strings(s: &[u8], split: bool) -> Result<(), BtfError> {
    if split && s.is_empty() {
        return Ok(());
    }
    if s.is_empty() || s.len() as u64 - 1 > MAX_NAME_OFFSET as u64 {
        return Err(BtfError::BadStrings {
            reason: "empty or larger than the maximum name offset",
        });
    }
    if s[s.len() - 1] != 0 {
        return Err(BtfError::BadStrings {
            reason: "last byte is not NUL",
        });
    }
    if !split && s[0] != 0 {
        return Err(BtfError::BadStrings {
            reason: "first byte is not NUL (split BTF without its base?)",
        });
    }
    Ok(())
}

impl Layout {
    /// Parses base BTF and records where its named non-FUNC types are (what CO-RE looks up) in
    /// the same pass over the types: what the kernel's BTF gets, since it is always looked up
    /// by name. The name indexes are built on use (non-FUNC: after a few lookups, from the keys).
    pub(crate) fn new_keyed(data: &bytes::Bytes) -> Result<Arc<Layout>, BtfError> {
        // Validate header and strings exactly as `new` does, on an empty scan of no types.
        let header = parse_header(data)?;
        let hdr_len = header.hdr_len as usize;
        let types = hdr_len + header.type_off as usize
            ..hdr_len + header.type_off as usize + header.type_len as usize;
        let strs = hdr_len + header.str_off as usize
            ..hdr_len + header.str_off as usize + header.str_len as usize;
        check_strings(&data[strs.clone()], false)?;
        let (offsets, keys) = scan_keyed(data, types.clone(), strs.clone(), header.endian)?;
        let layout = Arc::new(Layout {
            header,
            types,
            strs,
            offsets,
            start_id: 1,
            start_str_off: 0,
            index: [OnceLock::new(), OnceLock::new()],
            keys: Mutex::new(Some(Arc::new(keys))),
            scans: AtomicU32::new(0),
            func_scans: Some(AtomicU32::new(0)),
            long_size: OnceLock::new(),
        });
        Ok(layout)
    }

    pub(crate) fn new(data: &[u8], base: Option<&Btf<'_>>) -> Result<Layout, BtfError> {
        let header = parse_header(data)?;
        let hdr_len = header.hdr_len as usize;
        let types = hdr_len + header.type_off as usize
            ..hdr_len + header.type_off as usize + header.type_len as usize;
        let strs = hdr_len + header.str_off as usize
            ..hdr_len + header.str_off as usize + header.str_len as usize;
        let s = &data[strs.clone()];
        let (start_id, start_str_off) = match base {
            Some(b) => {
                if b.endian() != header.endian {
                    return Err(BtfError::SplitEndianMismatch);
                }
                (b.len(), b.strings_end())
            }
            None => (1, 0),
        };
        check_strings(s, base.is_some())?;
        if start_str_off as u64 + s.len() as u64 > u32::MAX as u64 {
            return Err(BtfError::BadStrings {
                reason: "split string offsets overflow 32 bits",
            });
        }
        let offsets = scan_types(&data[types.clone()], header.endian, start_id)?;
        Ok(Layout {
            header,
            types,
            strs,
            offsets,
            start_id,
            start_str_off,
            index: [OnceLock::new(), OnceLock::new()],
            keys: Mutex::new(None),
            scans: AtomicU32::new(0),
            func_scans: None,
            long_size: OnceLock::new(),
        })
    }
}
