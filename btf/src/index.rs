//! Name index: (essential name, kind) → ids, built once per blob (lazily, or for the kernel's
//! BTF in the same pass as parsing).
//!
//! Layout, chosen because building it for vmlinux's ~70k names is bound by memory latency:
//! open-addressing tables of `u32` slots (linear probing, sized exactly for load 7/8), each slot holding the
//! lowest type of a key (its index in the shard + 1) in its low 20 bits (BTF ids are < 2^20) and
//! 12 more hash bits as a tag, so mismatches almost never decode a name. That is 4 bytes per
//! slot, half of what a `hashbrown::HashTable<(tag, id)>` needs, which keeps the table in L2.
//! Further ids with the same key (rare: a few hundred in vmlinux) are chained through a small
//! `next` map. Keys are compared by decoding the stored type's name, so no strings are copied.
//!
//! The hash ([`KeyHasher`]) is a folded multiply per 8 bytes of name with a random per-index
//! seed, so the index build hashes a name in the same word-at-a-time pass that finds its NUL.

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

/// Bits of a slot holding the stored value (own type index + 1; `MAX_TYPE_ID` is 2^20 - 1).
const ID_BITS: u32 = 20;
const ID_MASK: u32 = (1 << ID_BITS) - 1;

/// Slots per key, at most: the load factor is at least 7/8 minus rounding. Linear probing at
/// 7/8 costs ~4.5 probes per hit and ~32 per miss, all on the same one or two cache lines (a tag
/// mismatch is one compare), and the table is exactly sized, with no power-of-two rounding.
pub(crate) fn slots_for(keys: usize) -> usize {
    // At least one empty slot always exists, so probes end.
    keys + keys / 7 + 1
}

/// Home bucket and tag for a hash: the bucket from the low 20 bits scaled to the table size
/// (multiply-shift, so any size works), the tag from bits 20..32.
#[inline]
fn place(h: u64, buckets: usize) -> (usize, u32) {
    let h = h as u32;
    let b = ((u64::from(h & ID_MASK) * buckets as u64) >> ID_BITS) as usize;
    (b, h >> ID_BITS)
}

/// The table of a [`NameIndex`] over a blob's own types.
#[derive(Debug)]
pub(crate) struct Shard {
    /// 0 = empty, else `tag << 20 | (index in the shard + 1)` of the lowest id with the key.
    /// Exactly [`slots_for`] the shard's key count.
    slots: Box<[u32]>,
    /// stored value → the next higher stored value with the same key (absent: end of chain).
    next: hashbrown::HashMap<u32, u32>,
    /// Type id of the shard's first type (stored value 1).
    id_base: u32,
}

/// Name index: one table over a blob's own types and the hasher it was built with.
#[derive(Debug)]
pub(crate) struct NameIndex {
    shard: Shard,
    hasher: KeyHasher,
}

/// The hash of index keys: one folded multiply per 8 bytes of name, seeded per index (randomly,
/// so crafted BTF cannot aim collisions at it). Word-at-a-time so the index build can hash a name
/// in the same pass that finds its end ([`scan_name`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyHasher {
    seed: u64,
}

const MUL: u64 = 0x9e37_79b9_7f4a_7c15;
const MUL2: u64 = 0xd6e8_feb8_6659_fd93;

#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let p = a as u128 * b as u128;
    (p as u64) ^ ((p >> 64) as u64)
}

impl KeyHasher {
    /// A hasher with a fresh random seed.
    pub(crate) fn new() -> KeyHasher {
        // hashbrown's default hasher is randomly seeded per process (and per instance).
        KeyHasher {
            seed: hashbrown::DefaultHashBuilder::default().hash_one(0x5eed_u64),
        }
    }

    #[inline(always)]
    fn word(h: u64, w: u64) -> u64 {
        fold(h ^ w, MUL)
    }

    #[inline(always)]
    fn finish(h: u64, len: usize, kind: u32) -> u64 {
        fold(h ^ len as u64 ^ (u64::from(kind) << 56), MUL2)
    }

    /// Hash of the key (`name`, `kind`): the name's full 8-byte words, then its remaining 0..=7
    /// bytes zero-padded to a word, then length and kind.
    pub(crate) fn hash(&self, name: &[u8], kind: u32) -> u64 {
        let mut h = self.seed;
        let mut words = name.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            h = Self::word(h, u64::from_le_bytes(b));
        }
        let rest = words.remainder();
        let mut b = [0u8; 8];
        b[..rest.len()].copy_from_slice(rest);
        h = Self::word(h, u64::from_le_bytes(b));
        Self::finish(h, name.len(), kind)
    }
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// The NUL-terminated string at the start of `s` (without the NUL) and whether it may contain
/// `"___"` (exact: true only if it does). `None` if there is no NUL.
pub(crate) fn scan_name(s: &[u8]) -> Option<(&[u8], bool)> {
    scan_name_hash(s, &KeyHasher { seed: 0 }, 0).map(|(n, t, _)| (n, t))
}

/// [`scan_name`] that also computes `hasher.hash(name, kind)` on the way, eight bytes per step
/// (this runs once per named type when the index is built).
#[inline]
pub(crate) fn scan_name_hash<'s>(
    s: &'s [u8],
    hasher: &KeyHasher,
    kind: u32,
) -> Option<(&'s [u8], bool, u64)> {
    let mut i = 0usize;
    let mut h = hasher.seed;
    // Underscores ending the previous word (only whether there are 0, 1 or ≥2 matters).
    let mut run = 0u32;
    let mut triple = false;
    while let Some(chunk) = s.get(i..i + 8) {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        let w = u64::from_le_bytes(b);
        // Lowest set 0x80 bit marks the first zero byte exactly.
        let z = w.wrapping_sub(LO) & !w & HI;
        // Exact per-byte "is '_'" flags in the 0x80 bits.
        let t = w ^ (LO * b'_' as u64);
        let mut u = !(((t & !HI).wrapping_add(!HI)) | t | !HI);
        if z != 0 {
            let pos = z.trailing_zeros() / 8;
            let keep = (1u64 << (pos * 8)).wrapping_sub(1);
            u &= keep;
            if !triple {
                triple = u & (u >> 8) & (u >> 16) != 0
                    || (run >= 2 && u & 0x80 != 0)
                    || (run >= 1 && u & 0x8080 == 0x8080);
            }
            let end = i + pos as usize;
            h = KeyHasher::word(h, w & keep);
            return Some((&s[..end], triple, KeyHasher::finish(h, end, kind)));
        }
        if !triple {
            triple = u & (u >> 8) & (u >> 16) != 0
                || (run >= 2 && u & 0x80 != 0)
                || (run >= 1 && u & 0x8080 == 0x8080);
        }
        h = KeyHasher::word(h, w);
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
    let mut b = [0u8; 8];
    b[..end].copy_from_slice(&tail[..end]);
    h = KeyHasher::word(h, u64::from_le_bytes(b));
    Some((name, triple, KeyHasher::finish(h, i + end, kind)))
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

    /// Whether a type with this info word belongs to the part.
    #[inline]
    pub(crate) fn wants(self, info: u32) -> bool {
        Part::of(info_kind(info)) == self
    }
}

/// A base BTF's named non-FUNC types, as the parse scan found them: per walked segment, a bit
/// per record and each marked record's name offset and kind (5 bytes per key; 75 KB for vmlinux's
/// 15k). Until the name index is built, non-FUNC name lookups scan these (libbpf's way, but over
/// 15k names instead of 127k records, and without touching the type section), and the index is
/// built from them without another walk.
#[derive(Debug)]
pub(crate) struct Keys {
    segs: Vec<KeySeg>,
}

/// One walked segment's keys.
#[derive(Debug)]
pub(crate) struct KeySeg {
    /// Record number (type id minus the first id) of the segment's first record.
    first: usize,
    /// Bit `i`: record `first + i` is a key.
    marks: Vec<u64>,
    /// The name offsets and kinds of the marked records, in order.
    names: Vec<u32>,
    kinds: Vec<u8>,
}

impl KeySeg {
    pub(crate) fn new(first: usize, marks: Vec<u64>, names: Vec<u32>, kinds: Vec<u8>) -> KeySeg {
        KeySeg {
            first,
            marks,
            names,
            kinds,
        }
    }

    /// Record number of the segment's `i`th key (the position of its `i`th mark).
    fn number(&self, i: usize) -> Option<usize> {
        let mut left = i;
        for (w, &word) in self.marks.iter().enumerate() {
            let ones = word.count_ones() as usize;
            if left < ones {
                let mut bits = word;
                for _ in 0..left {
                    bits &= bits - 1;
                }
                return Some(self.first + w * 64 + bits.trailing_zeros() as usize);
            }
            left -= ones;
        }
        None
    }

    /// The same keys, numbered from `base` more.
    pub(crate) fn renumbered(mut self, base: usize) -> KeySeg {
        self.first += base;
        self
    }
}

impl Keys {
    pub(crate) fn from_segs(segs: Vec<KeySeg>) -> Keys {
        Keys { segs }
    }

    /// Number of keys.
    pub(crate) fn len(&self) -> usize {
        self.segs
            .iter()
            .map(|s| s.names.len().min(s.kinds.len()))
            .sum()
    }

    /// Heap bytes (for reports).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.segs
            .iter()
            .map(|s| s.marks.capacity() * 8 + s.names.capacity() * 4 + s.kinds.capacity())
            .sum()
    }

    /// (record number, name offset, kind) of every key, ascending.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, u32, u32)> + '_ {
        self.segs.iter().flat_map(|s| {
            let numbers = s.marks.iter().enumerate().flat_map(|(w, &word)| {
                let mut bits = word;
                std::iter::from_fn(move || {
                    (bits != 0).then(|| {
                        let r = bits.trailing_zeros() as usize;
                        bits &= bits - 1;
                        w * 64 + r
                    })
                })
            });
            numbers
                .zip(s.names.iter().zip(&s.kinds))
                .map(move |(n, (&name, &kind))| ((s.first + n) as u32, name, u32::from(kind)))
        })
    }

    /// Own ids of kind `kind` whose name is `name` (`exact`) or whose essential name is `name`,
    /// ascending: what the index answers, found by reading every key of that kind (kind first,
    /// so most names are never touched).
    pub(crate) fn find(&self, btf: &Btf<'_>, name: &[u8], kind: Kind, exact: bool) -> Vec<u32> {
        let strs = btf.string_section();
        let start = btf.start_id();
        let mut out = Vec::new();
        for s in &self.segs {
            // A tight loop over the kinds and names (independent reads, so the names' cache
            // misses overlap); the record number is worked out only for a match.
            for (i, (&k, &name_off)) in s.kinds.iter().zip(&s.names).enumerate() {
                if u32::from(k) != kind as u32 {
                    continue;
                }
                // Keys are of base BTF: every name is an own string.
                let tail = strs.get(name_off as usize..).unwrap_or(&[]);
                if let Some(n) = name_matches(tail, name, exact)
                    .then(|| s.number(i))
                    .flatten()
                {
                    out.push(start + n as u32);
                }
            }
        }
        out
    }
}

/// Whether the name at the start of `tail` (up to its NUL, or the end of `tail`) is `name`
/// (`exact`) or has `name` as its essential name. Most names differ in their first bytes, so
/// the name's end is looked for only after a prefix match.
pub(crate) fn name_matches(tail: &[u8], name: &[u8], exact: bool) -> bool {
    if name.is_empty() || !tail.starts_with(name) {
        return false;
    }
    // A name with a NUL in it names no type (the index compares whole NUL-terminated strings);
    // without this, "foo\0bar" would match "foo" followed by the string "bar". Checked only
    // after a prefix match, which is rare.
    if name.contains(&0) {
        return false;
    }
    let full = match tail.get(name.len()) {
        Some(0) | None => &tail[..name.len()],
        Some(_) => &tail[..tail.iter().position(|&c| c == 0).unwrap_or(tail.len())],
    };
    if exact {
        full == name
    } else {
        essential_name(full) == name
    }
}

/// Builds one [`Shard`] from `count` keys `(hash, index in the shard)` given in ascending index
/// order (the scan collects them while streaming through types and strings; inserting afterwards,
/// into a table sized exactly for `count`, keeps the table in cache). Keys past `count` are
/// ignored. Keys are compared through `key_of` (essential name and kind of a type of the shard),
/// so no strings are copied. (The scan and [`NameIndex::build`] insert as they hash, with a
/// [`ShardBuilder`]; this is for tests.)
#[cfg(test)]
pub(crate) fn build_shard<'k>(
    count: usize,
    keys: impl IntoIterator<Item = (u32, u32)>,
    id_base: u32,
    key_of: impl Fn(u32) -> Option<(&'k [u8], u32)>,
) -> Shard {
    let mut b = ShardBuilder::new(count, id_base);
    for (h, idx) in keys.into_iter().take(count) {
        b.insert(h, idx, None, &key_of);
    }
    b.finish()
}

/// A [`Shard`] being filled with keys in ascending index order.
pub(crate) struct ShardBuilder {
    shard: Shard,
    /// Keys inserted, at most the count the table was sized for.
    room: usize,
    /// Head stored value → last stored value of its chain (duplicate keys only; build time
    /// only), so appending to a chain does not walk it.
    tails: hashbrown::HashMap<u32, u32>,
}

impl ShardBuilder {
    /// A table with room for exactly `count` keys.
    pub(crate) fn new(count: usize, id_base: u32) -> ShardBuilder {
        ShardBuilder {
            shard: Shard {
                slots: vec![0u32; slots_for(count)].into_boxed_slice(),
                next: hashbrown::HashMap::new(),
                id_base,
            },
            room: count,
            tails: hashbrown::HashMap::new(),
        }
    }

    /// Inserts the key of own type `idx` (higher than every index inserted before) with hash
    /// `h`; `mine` is its (essential name, kind) if the caller has it at hand, else `key_of` is
    /// asked when a tag matches. Ignored past the count the table was sized for.
    #[inline]
    pub(crate) fn insert<'k>(
        &mut self,
        h: u32,
        idx: u32,
        mut mine: Option<Option<(&'k [u8], u32)>>,
        key_of: &impl Fn(u32) -> Option<(&'k [u8], u32)>,
    ) {
        if self.room == 0 {
            return;
        }
        let Some(v) = idx.checked_add(1).filter(|&v| v <= ID_MASK) else {
            // More types than BTF allows: the parse fails with `TooManyTypes` anyway.
            return;
        };
        self.room -= 1;
        let slots = &mut self.shard.slots;
        let n = slots.len();
        let (mut b, tag) = place(u64::from(h), n);
        loop {
            let e = slots[b];
            if e == 0 {
                slots[b] = tag << ID_BITS | v;
                return;
            }
            if e >> ID_BITS == tag {
                let head = e & ID_MASK;
                let mine = *mine.get_or_insert_with(|| key_of(idx));
                if key_of(head - 1) == mine {
                    // Ascending insertion: the head stays the lowest id; append to the chain.
                    let last = self.tails.insert(head, v).unwrap_or(head);
                    self.shard.next.insert(last, v);
                    return;
                }
            }
            b += 1;
            if b == n {
                b = 0;
            }
        }
    }

    pub(crate) fn finish(self) -> Shard {
        self.shard
    }
}

impl NameIndex {
    /// Hash of a key; the same for building and lookup.
    #[inline]
    pub(crate) fn hash(hasher: &KeyHasher, essential: &[u8], kind: u32) -> u64 {
        hasher.hash(essential, kind)
    }

    /// A hasher for a new index.
    pub(crate) fn new_hasher() -> KeyHasher {
        KeyHasher::new()
    }

    /// (essential name, kind) of type `id`.
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

    /// Builds the index of `part` over the own types of `btf` (one sequential walk).
    pub(crate) fn build(btf: &Btf<'_>, part: Part) -> NameIndex {
        let types = btf.type_section();
        let e = btf.endian();
        let offsets = &btf.layout().offsets;
        // The keys are not collected (for vmlinux's 56k FUNCs that would be 450 KB besides the
        // table): a first walk counts them, so the table is allocated once, at its final size,
        // and the second walk hashes and inserts each key as it meets it.
        let wanted = |off: u32| {
            let off = off as usize;
            let name_off = e.u32_in(types, off);
            let info = e.u32_in(types, off + 4);
            (name_off != 0 && part.wants(info)).then_some((name_off, info))
        };
        let count = offsets
            .iter(types, e)
            .filter(|&off| wanted(off).is_some())
            .count();
        let recs = offsets
            .iter(types, e)
            .enumerate()
            .filter_map(|(idx, off)| wanted(off).map(|(n, i)| (idx as u32, n, i)));
        Self::build_over(btf, count, recs)
    }

    /// Builds the index of non-FUNC types from the scan's [`Keys`]: no walk, and the type section
    /// is not read.
    pub(crate) fn from_keys(btf: &Btf<'_>, keys: &Keys) -> NameIndex {
        // (`build_over` only needs the kind bits of the info word.)
        let recs = keys.iter().map(|(idx, name, kind)| (idx, name, kind << 24));
        Self::build_over(btf, keys.len(), recs)
    }

    /// An index of `count` keys from own records `(number, name offset, info)`, ascending.
    fn build_over(
        btf: &Btf<'_>,
        count: usize,
        recs: impl Iterator<Item = (u32, u32, u32)>,
    ) -> NameIndex {
        let strs = btf.string_section();
        let start = btf.start_id();
        let hasher = Self::new_hasher();
        let key_of = |idx: u32| Self::key(btf, start + idx);
        let mut shard = ShardBuilder::new(count, start);
        let start_str = btf.start_str_off();
        // Names are touched `AHEAD` keys before they are hashed, so their cache misses overlap
        // the walk; each is hashed in the same pass that finds its end.
        const AHEAD: usize = 32;
        let mut batch = [(0u32, 0u32, 0u32); AHEAD];
        let mut queued = 0;
        let mut touched = 0u8;
        let flush = |batch: &[(u32, u32, u32)], shard: &mut ShardBuilder| {
            for &(idx, name_off, info) in batch {
                let kind = info_kind(info);
                let key = if name_off < start_str {
                    name_bytes(btf, strs, start_str, name_off).map(|(n, t)| {
                        let n = if t { essential_name(n) } else { n };
                        (n, Self::hash(&hasher, n, kind))
                    })
                } else {
                    strs.get((name_off - start_str) as usize..)
                        .and_then(|s| scan_name_hash(s, &hasher, kind))
                        .map(|(n, t, h)| {
                            if t {
                                let n = essential_name(n);
                                (n, Self::hash(&hasher, n, kind))
                            } else {
                                (n, h)
                            }
                        })
                };
                let Some((name, h)) = key.filter(|k| !k.0.is_empty()) else {
                    continue;
                };
                shard.insert(h as u32, idx, Some(Some((name, kind))), &key_of);
            }
        };
        for (idx, name_off, info) in recs {
            let at = name_off.saturating_sub(start_str) as usize;
            touched ^= strs.get(at).copied().unwrap_or(0);
            batch[queued] = (idx, name_off, info);
            queued += 1;
            if queued == AHEAD {
                flush(&batch, &mut shard);
                queued = 0;
            }
        }
        flush(&batch[..queued], &mut shard);
        std::hint::black_box(touched);
        NameIndex {
            shard: shard.finish(),
            hasher,
        }
    }

    /// Own ids with this essential name and kind, ascending.
    pub(crate) fn candidates<'s>(
        &'s self,
        btf: &Btf<'_>,
        essential: &[u8],
        kind: Kind,
    ) -> impl Iterator<Item = u32> + 's {
        let kind = kind as u32;
        let h = Self::hash(&self.hasher, essential, kind);
        // The head is found now (it needs `btf` and `essential`), the chain is walked lazily.
        let s = &self.shard;
        let mut cur = s.head(btf, h, essential, kind);
        std::iter::from_fn(move || {
            if cur == 0 {
                return None;
            }
            let id = s.id_base + (cur - 1);
            cur = s.next.get(&cur).copied().unwrap_or(0);
            Some(id)
        })
    }

    /// Lowest own id whose full name is `name` and kind is `kind`.
    pub(crate) fn find_exact(&self, btf: &Btf<'_>, name: &[u8], kind: Kind) -> Option<u32> {
        self.candidates(btf, essential_name(name), kind)
            .find(|&id| btf.str_bytes_at(btf.name_off(id).unwrap_or(0)).ok() == Some(name))
    }

    /// Heap bytes of the tables (for reports and tests; chains excluded).
    pub(crate) fn table_bytes(&self) -> usize {
        self.shard.slots.len() * 4
    }
}

impl Shard {
    /// Stored value of the lowest type with this key, 0 if none.
    fn head(&self, btf: &Btf<'_>, h: u64, essential: &[u8], kind: u32) -> u32 {
        let n = self.slots.len();
        let (mut b, tag) = place(h, n);
        loop {
            let e = self.slots[b];
            if e == 0 {
                return 0;
            }
            if e >> ID_BITS == tag {
                let id = self.id_base + ((e & ID_MASK) - 1);
                if NameIndex::key(btf, id) == Some((essential, kind)) {
                    return e & ID_MASK;
                }
            }
            b += 1;
            if b == n {
                b = 0;
            }
        }
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
    fn parts_split_funcs_from_other_kinds() {
        use super::Part;
        use crate::raw::{info_enc, Kind};
        assert!(Part::Funcs.wants(info_enc(Kind::Func, false, 1)));
        assert!(!Part::Types.wants(info_enc(Kind::Func, false, 1)));
        for k in [Kind::Struct, Kind::Typedef, Kind::Enum64, Kind::Var] {
            assert!(Part::Types.wants(info_enc(k, false, 0)));
            assert!(!Part::Funcs.wants(info_enc(k, false, 0)));
        }
    }

    #[test]
    fn shards_chain_duplicates_in_ascending_order() {
        use super::{build_shard, NameIndex};
        // Keys: name i % 50 for 400 types, all STRUCT (kind 4).
        let names: Vec<Vec<u8>> = (0..400)
            .map(|i| format!("n{}", i % 50).into_bytes())
            .collect();
        let key_of = |idx: u32| Some((names[idx as usize].as_slice(), 4u32));
        let hasher = NameIndex::new_hasher();
        let keys: Vec<(u32, u32)> = (0..400u32)
            .map(|i| (NameIndex::hash(&hasher, &names[i as usize], 4) as u32, i))
            .collect();
        let sh = build_shard(keys.len(), keys.iter().copied(), 10, key_of);
        assert_eq!(sh.slots.len(), super::slots_for(400));
        for k in 0..50u32 {
            let name = format!("n{k}").into_bytes();
            let h = NameIndex::hash(&hasher, &name, 4);
            let (mut b, tag) = super::place(h, sh.slots.len());
            let head = loop {
                let e = sh.slots[b];
                assert_ne!(e, 0, "key {k} missing");
                if e >> super::ID_BITS == tag && key_of((e & super::ID_MASK) - 1).unwrap().0 == name
                {
                    break e & super::ID_MASK;
                }
                b = (b + 1) % sh.slots.len();
            };
            let mut ids = vec![];
            let mut cur = head;
            while cur != 0 {
                ids.push(sh.id_base + cur - 1);
                cur = sh.next.get(&cur).copied().unwrap_or(0);
            }
            let want: Vec<u32> = (0..8).map(|j| 10 + k + 50 * j).collect();
            assert_eq!(ids, want);
        }
    }

    #[test]
    fn tables_are_exact_and_never_take_more_keys_than_sized_for() {
        use super::{slots_for, ShardBuilder};
        let names: Vec<Vec<u8>> = (0..100).map(|i| format!("k{i}").into_bytes()).collect();
        let key_of = |idx: u32| Some((names[idx as usize].as_slice(), 4u32));
        let hasher = super::NameIndex::new_hasher();
        for n in [0usize, 1, 7, 8, 50] {
            let mut b = ShardBuilder::new(n, 1);
            // More keys than the table was sized for (a miscount would mean damaged input):
            // the extra ones are dropped, the table never grows and probes still end.
            for i in 0..100u32 {
                let h = super::NameIndex::hash(&hasher, &names[i as usize], 4) as u32;
                b.insert(h, i, None, &key_of);
            }
            let sh = b.finish();
            assert_eq!(sh.slots.len(), slots_for(n));
            assert_eq!(sh.slots.iter().filter(|&&e| e != 0).count(), n);
            assert!(sh.slots.contains(&0), "an empty slot ends every probe");
        }
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
                let kh = super::KeyHasher::new();
                let (_, _, h) = super::scan_name_hash(&buf, &kh, 7).unwrap();
                assert_eq!(h, kh.hash(want, 7), "{c:?} pad {pad}");
                assert_ne!(h, kh.hash(want, 6));
            }
        }
        assert!(super::scan_name(b"no terminator").is_none());
    }
}
