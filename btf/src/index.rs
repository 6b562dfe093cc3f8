//! Name index: (essential name, kind) → ids, built once per blob (lazily, or for the kernel's
//! BTF in the same pass as parsing).
//!
//! Layout, chosen because building it for vmlinux's ~70k names is bound by memory latency:
//! an open-addressing table of `u32` slots (linear probing, load ≤ 75%), each slot holding the
//! lowest id of a key in its low 20 bits (BTF ids are < 2^20) and 12 more hash bits as a tag,
//! so mismatches almost never decode a name. That is 4 bytes per slot, half of what a
//! `hashbrown::HashTable<(tag, id)>` needs, which keeps the table in L2 while the type and string
//! sections stream past. Further ids with the same key (rare: a few hundred in vmlinux) are
//! chained through a small `next` map. Keys are compared by decoding the stored id's name, so no strings are copied. Hashing
//! is hashbrown's default (foldhash).

use hashbrown::DefaultHashBuilder;
use std::hash::BuildHasher;

use crate::btf::Btf;
use crate::raw::{info_kind, Kind};

/// libbpf's `bpf_core_essential_name_len`: the name without its last `X___Y` flavor suffix
/// (`task_struct___old` → `task_struct`). Not idempotent for names with two flavor separators,
/// exactly like libbpf, so apply it once to the original name.
pub fn essential_name(name: &[u8]) -> &[u8] {
    // Fast path: almost no name contains "___" at all.
    let mut run = 0u32;
    let mut any = false;
    for &b in name {
        run = if b == b'_' { run + 1 } else { 0 };
        if run == 3 {
            any = true;
            break;
        }
    }
    if !any {
        return name;
    }
    let n = name.len();
    if n >= 5 {
        for i in (0..=n - 5).rev() {
            let s = &name[i..i + 5];
            if s[0] != b'_' && s[1] == b'_' && s[2] == b'_' && s[3] == b'_' && s[4] != b'_' {
                return &name[..i + 1];
            }
        }
    }
    name
}

/// Bits of a slot holding the type id (`MAX_TYPE_ID` is 2^20 - 1).
const ID_BITS: u32 = 20;
const ID_MASK: u32 = (1 << ID_BITS) - 1;

/// Bucket and tag for a hash: the bucket from the low bits, the tag from bits 20..32.
#[inline]
fn place(h: u64, mask: usize) -> (usize, u32) {
    let h = h as u32;
    (h as usize & mask, h >> ID_BITS)
}

#[derive(Debug)]
pub(crate) struct NameIndex {
    /// 0 = empty, else `tag << 20 | lowest id`.
    slots: Vec<u32>,
    mask: usize,
    /// id → the next higher id with the same key (absent: end of chain).
    next: hashbrown::HashMap<u32, u32>,
    hasher: DefaultHashBuilder,
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// The NUL-terminated string at the start of `s` (without the NUL) and whether it may contain
/// `"___"` (exact: true only if it does). Eight bytes per step, since this runs once per named
/// type when the index is built. `None` if there is no NUL.
fn scan_name(s: &[u8]) -> Option<(&[u8], bool)> {
    let mut i = 0usize;
    // Underscores ending the previous word (only whether there are 0, 1 or ≥2 matters).
    let mut run = 0u32;
    let mut triple = false;
    while let Some(chunk) = s.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().ok()?);
        // Lowest set 0x80 bit marks the first zero byte exactly.
        let z = w.wrapping_sub(LO) & !w & HI;
        // Exact per-byte "is '_'" flags in the 0x80 bits.
        let t = w ^ (LO * b'_' as u64);
        let mut u = !(((t & !HI).wrapping_add(!HI)) | t | !HI);
        let nul = (z != 0).then(|| z.trailing_zeros() / 8);
        if let Some(pos) = nul {
            u &= (1u64 << (pos * 8)).wrapping_sub(1);
        }
        if !triple {
            triple = u & (u >> 8) & (u >> 16) != 0
                || (run >= 2 && u & 0x80 != 0)
                || (run >= 1 && u & 0x8080 == 0x8080);
        }
        if let Some(pos) = nul {
            let end = i + pos as usize;
            return Some((&s[..end], triple));
        }
        let top = (!u & HI).leading_zeros() / 8;
        run = if top == 8 { run + 8 } else { top };
        i += 8;
    }
    // Fewer than 8 bytes left: byte by byte.
    let tail = &s[i..];
    let end = tail.iter().position(|&b| b == 0)?;
    let name = &s[..i + end];
    if !triple {
        triple = name.windows(3).any(|w| w == b"___");
    }
    Some((name, triple))
}

/// Reads the own strings directly (the index is built over own types, whose names are almost
/// always own strings; base strings go through the checked path).
fn name_bytes<'a>(
    btf: &Btf<'a>,
    strs: &'a [u8],
    start_str: u32,
    off: u32,
) -> Option<(&'a [u8], bool)> {
    if off < start_str {
        let n = btf.str_bytes_at(off).ok()?;
        return Some((n, n.windows(3).any(|w| w == b"___")));
    }
    scan_name(strs.get((off - start_str) as usize..)?)
}

/// Which kinds an index covers: FUNCs (attach targets, kfuncs) or all other kinds (CO-RE
/// candidates, struct_ops, ksyms). Kept apart because most names in vmlinux are FUNCs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Types = 0,
    Funcs = 1,
}

impl Part {
    #[inline]
    pub(crate) fn of(kind: u32) -> Part {
        if kind == Kind::Func as u32 {
            Part::Funcs
        } else {
            Part::Types
        }
    }
}

/// Phase 1 of building the index: (hash of (essential name, kind), index of own type) for every
/// named type, in type order. Fed either by [`NameIndex::build`] or, for vmlinux, directly by the
/// parse scan so the type section is streamed only once.
pub(crate) struct KeyCollector {
    hasher: DefaultHashBuilder,
    /// (low 32 bits of the key hash, own type index).
    keys: Vec<(u32, u32)>,
    part: Part,
}

impl KeyCollector {
    pub(crate) fn new(capacity: usize, part: Part) -> Self {
        KeyCollector {
            hasher: DefaultHashBuilder::default(),
            keys: Vec::with_capacity(capacity),
            part,
        }
    }

    /// Whether a type with this info word belongs to the collected part.
    #[inline]
    pub(crate) fn wants(&self, info: u32) -> bool {
        Part::of(info_kind(info)) == self.part
    }

    /// Records own type number `idx` with the name found at its name offset (`None`: unreadable)
    /// and its info word.
    #[inline]
    pub(crate) fn push(&mut self, idx: usize, name: Option<(&[u8], bool)>, info: u32) {
        if !self.wants(info) {
            return;
        }
        let Some((name, triple)) = name else { return };
        if name.is_empty() {
            return;
        }
        let name = if triple { essential_name(name) } else { name };
        let h = NameIndex::hash(&self.hasher, name, info_kind(info));
        self.keys.push((h as u32, idx as u32));
    }

    /// The own-string fast path of [`name_bytes`] for base BTF.
    #[inline]
    pub(crate) fn name_in(strs: &[u8], off: u32) -> Option<(&[u8], bool)> {
        scan_name(strs.get(off as usize..)?)
    }
}

impl NameIndex {
    fn hash(hasher: &DefaultHashBuilder, name: &[u8], kind: u32) -> u64 {
        hasher.hash_one(name) ^ (kind as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    /// (essential name, kind) of own type `id`.
    fn key<'a>(btf: &Btf<'a>, id: u32) -> Option<(&'a [u8], u32)> {
        let rec = btf.raw_type(id).ok()?;
        let e = btf.endian();
        let name_off = e.u32_in(rec, 0);
        if name_off == 0 {
            return None;
        }
        let name = btf.str_bytes_at(name_off).ok()?;
        if name.is_empty() {
            return None;
        }
        Some((essential_name(name), info_kind(e.u32_in(rec, 4))))
    }

    pub(crate) fn build(btf: &Btf<'_>, part: Part) -> NameIndex {
        let types = btf.type_section();
        let e = btf.endian();
        let offsets = &btf.layout().offsets;
        let mut keys = KeyCollector::new(offsets.len() / 4, part);
        for (idx, off) in offsets.iter().enumerate() {
            let off = off as usize;
            let name_off = e.u32_in(types, off);
            let info = e.u32_in(types, off + 4);
            if name_off != 0 && keys.wants(info) {
                let name = name_bytes(btf, btf.string_section(), btf.start_str_off(), name_off);
                keys.push(idx, name, info);
            }
        }
        Self::from_keys(btf, keys)
    }

    /// Phase 2: inserts the collected keys. (Phase 1 streams through types and strings; doing
    /// the random-access inserts afterwards keeps the table in cache.)
    pub(crate) fn from_keys(btf: &Btf<'_>, keys: KeyCollector) -> NameIndex {
        let start = btf.start_id();
        let KeyCollector { hasher, keys, .. } = keys;
        // Load factor at most 3/4; at least one empty slot always exists, so probes end.
        let buckets = (keys.len() + keys.len() / 3 + 1).next_power_of_two().max(8);
        let mask = buckets - 1;
        let mut slots = vec![0u32; buckets];
        let mut next = hashbrown::HashMap::new();
        // Downwards, so each chain ends up in ascending id order.
        for &(h, idx) in keys.iter().rev() {
            let id = start + idx;
            let (mut b, tag) = place(h as u64, mask);
            let mut mine = None;
            loop {
                let e = slots[b];
                if e == 0 {
                    slots[b] = tag << ID_BITS | id;
                    break;
                }
                if e >> ID_BITS == tag {
                    let other = e & ID_MASK;
                    let mine = *mine.get_or_insert_with(|| Self::key(btf, id));
                    if Self::key(btf, other) == mine {
                        next.insert(id, other);
                        slots[b] = tag << ID_BITS | id;
                        break;
                    }
                }
                b = (b + 1) & mask;
            }
        }
        NameIndex {
            slots,
            mask,
            next,
            hasher,
        }
    }

    fn head(&self, btf: &Btf<'_>, essential: &[u8], kind: Kind) -> u32 {
        let kind = kind as u32;
        let (mut b, tag) = place(Self::hash(&self.hasher, essential, kind), self.mask);
        loop {
            let e = self.slots[b];
            if e == 0 {
                return 0;
            }
            if e >> ID_BITS == tag && Self::key(btf, e & ID_MASK) == Some((essential, kind)) {
                return e & ID_MASK;
            }
            b = (b + 1) & self.mask;
        }
    }

    /// Own ids with this essential name and kind, ascending.
    pub(crate) fn candidates<'s>(
        &'s self,
        btf: &Btf<'_>,
        essential: &[u8],
        kind: Kind,
    ) -> impl Iterator<Item = u32> + 's {
        let mut cur = self.head(btf, essential, kind);
        std::iter::from_fn(move || {
            if cur == 0 {
                return None;
            }
            let id = cur;
            cur = self.next.get(&id).copied().unwrap_or(0);
            Some(id)
        })
    }

    /// Lowest own id whose full name is `name` and kind is `kind`.
    pub(crate) fn find_exact(&self, btf: &Btf<'_>, name: &[u8], kind: Kind) -> Option<u32> {
        self.candidates(btf, essential_name(name), kind)
            .find(|&id| btf.str_bytes_at(btf.name_off(id).unwrap_or(0)).ok() == Some(name))
    }
}

#[cfg(test)]
mod tests {
    use super::essential_name;

    #[test]
    fn essential_names_match_libbpf_rule() {
        assert_eq!(essential_name(b"task_struct___old"), b"task_struct");
        assert_eq!(essential_name(b"task_struct"), b"task_struct");
        // X and Y must not be underscores.
        assert_eq!(essential_name(b"a____b"), b"a____b".as_slice());
        assert_eq!(essential_name(b"_____x"), b"_____x".as_slice());
        // The last separator wins.
        assert_eq!(essential_name(b"a___b___c"), b"a___b");
        assert_eq!(essential_name(b"a___"), b"a___");
        assert_eq!(essential_name(b""), b"");
    }

    #[test]
    fn collectors_keep_only_their_part() {
        use super::{KeyCollector, Part};
        use crate::raw::{info_enc, Kind};
        let mut types = KeyCollector::new(4, Part::Types);
        let mut funcs = KeyCollector::new(4, Part::Funcs);
        for c in [&mut types, &mut funcs] {
            c.push(0, Some((b"f", false)), info_enc(Kind::Func, false, 1));
            c.push(1, Some((b"s", false)), info_enc(Kind::Struct, false, 0));
            c.push(2, Some((b"", false)), info_enc(Kind::Struct, false, 0));
            c.push(3, None, info_enc(Kind::Typedef, false, 0));
        }
        let ids = |c: &KeyCollector| c.keys.iter().map(|k| k.1).collect::<Vec<_>>();
        assert_eq!(ids(&types), vec![1]);
        assert_eq!(ids(&funcs), vec![0]);
    }

    #[test]
    fn word_scan_finds_names_and_triple_underscores_exactly() {
        let cases: &[&[u8]] = &[
            b"",
            b"a",
            b"task_struct",
            b"__u32",
            b"___",
            b"a___b",
            b"abcdef_",
            b"abcdef__",
            b"abcdef__x",
            b"abcdef__\x00",
            b"abcdefg___",
            b"abcdefg_",
            b"abcdef_g__",
            b"abcdefgh_______",
            b"0123456_",
            b"0123456__",
            b"01234567___",
            b"0123456_x__",
            b"012345__________________x",
            b"x_y_z_w_a_b_c_d_e__f__g",
        ];
        for &c in cases {
            for pad in 0..9 {
                let mut buf = c.to_vec();
                buf.push(0);
                buf.extend(std::iter::repeat_n(b'_', pad));
                let (name, triple) = super::scan_name(&buf).unwrap();
                let want = &c[..c.iter().position(|&b| b == 0).unwrap_or(c.len())];
                assert_eq!(name, want, "{c:?} pad {pad}");
                assert_eq!(triple, want.windows(3).any(|w| w == b"___"), "{c:?}");
            }
        }
        assert!(super::scan_name(b"no terminator").is_none());
    }
}
