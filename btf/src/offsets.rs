//! [`TypeOffsets`]: where type records start, stored sparsely — the offset of every
//! [`STRIDE`]-th type only.
//!
//! The kernel's BTF has ~127k types; an offset per type (even as 16-bit deltas) is ~290 KiB of
//! fresh memory to fault in and write on first use, the largest private allocation of a CO-RE
//! load. Records are small and contiguous, so the offset of any other type is found by walking
//! at most `STRIDE - 1` records forward from the stored one: a few ns each, on bytes that are
//! then in cache for the caller anyway. With `STRIDE` = 16 the table is 2 bits per type.
//!
//! A table may consist of several consecutive segments, each with its own stride grid, because a
//! parallel scan (see `scan.rs`) walks parts of the type section from points whose type index is
//! only known when the walk of the part before reaches them.

use crate::raw::{Endian, Kind, TYPE_HEADER_LEN};

/// Types per stored offset.
pub(crate) const STRIDE: usize = 16;

/// Per kind value: 2-bit fields packed into words, so a record's length costs shifts instead of a
/// table load on the scan's latency chain. Bit `k` of `VALID` is set for kinds 1..=19 (kind 0 is
/// only the implicit void; > 19 are undefined).
const VALID: u32 = {
    let mut v = 0u32;
    let mut k = 1;
    while k < Kind::ALL.len() {
        v |= 1 << k;
        k += 1;
    }
    v
};

/// Bytes after the 12-byte header, divided by 4, for each kind: the fixed part (`FIXED4`) and the
/// part per vlen entry (`PER4`), two bits per kind.
const FIXED4: u64 = {
    let mut t = 0u64;
    let mut k = 1;
    while k < Kind::ALL.len() {
        let f: u64 = match Kind::ALL[k] {
            Kind::Int | Kind::Var | Kind::DeclTag => 1,
            Kind::Array => 3,
            _ => 0,
        };
        t |= f << (2 * k);
        k += 1;
    }
    t
};
const PER4: u64 = {
    let mut t = 0u64;
    let mut k = 1;
    while k < Kind::ALL.len() {
        let p: u64 = match Kind::ALL[k] {
            Kind::Struct | Kind::Union | Kind::DataSec | Kind::Enum64 => 3,
            Kind::Enum | Kind::FuncProto => 2,
            _ => 0,
        };
        t |= p << (2 * k);
        k += 1;
    }
    t
};

/// Length in bytes of a record with this info word (header plus extra data); `None` for kinds
/// the format does not define (or void, which has no record).
#[inline(always)]
pub(crate) fn record_len(info: u32) -> Option<usize> {
    let kind = (info >> 24) & 0x1f;
    if (VALID >> kind) & 1 == 0 {
        return None;
    }
    let sh = 2 * kind;
    let fixed = ((FIXED4 >> sh) & 3) as usize;
    let per = ((PER4 >> sh) & 3) as usize;
    Some(TYPE_HEADER_LEN + 4 * (fixed + per * (info & 0xffff) as usize))
}

/// The u32 at `off` in the given byte order (`None` past the end).
#[inline(always)]
pub(crate) fn word<const BIG: bool>(data: &[u8], off: usize) -> Option<u32> {
    let b: [u8; 4] = data.get(off..off.checked_add(4)?)?.try_into().ok()?;
    Some(if BIG {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    })
}

/// Offset of the record after the one at `off`, for a type section already validated by a scan
/// (still checked: `None` instead of a panic if it is not).
#[inline(always)]
fn next_record<const BIG: bool>(types: &[u8], off: usize) -> Option<usize> {
    Some(off + record_len(word::<BIG>(types, off + 4)?)?)
}

#[derive(Debug, Default)]
pub(crate) struct TypeOffsets {
    /// Number of types.
    len: usize,
    /// Segments in type order: (first type, offsets of types `first, first + STRIDE, ...`).
    segs: Vec<(usize, Vec<u32>)>,
}

impl TypeOffsets {
    /// One segment: `starts[i]` is the offset of type `i * STRIDE`, `len` types in all.
    pub(crate) fn new(len: usize, starts: Vec<u32>) -> Self {
        Self::from_segments(vec![(len, starts)])
    }

    /// Consecutive segments of (number of types, grid): each grid's entry `i` is the offset of the
    /// segment's type `i * STRIDE`.
    pub(crate) fn from_segments(parts: Vec<(usize, Vec<u32>)>) -> Self {
        let mut len = 0;
        let mut segs = Vec::with_capacity(parts.len());
        for (n, mut grid) in parts {
            grid.shrink_to_fit();
            segs.push((len, grid));
            len += n;
        }
        TypeOffsets { len, segs }
    }

    /// Number of types recorded.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Offset of type number `idx` (0-based) in `types` (the section the offsets were taken
    /// from), `None` past the end.
    #[inline]
    pub(crate) fn get(&self, idx: usize, types: &[u8], endian: Endian) -> Option<u32> {
        match endian {
            Endian::Little => self.get_impl::<false>(idx, types),
            Endian::Big => self.get_impl::<true>(idx, types),
        }
    }

    #[inline]
    fn get_impl<const BIG: bool>(&self, idx: usize, types: &[u8]) -> Option<u32> {
        if idx >= self.len {
            return None;
        }
        let seg = match self.segs.len() {
            1 => &self.segs[0],
            _ => self
                .segs
                .get(self.segs.partition_point(|s| s.0 <= idx).checked_sub(1)?)?,
        };
        let (grid, rel) = (&seg.1, idx - seg.0);
        let mut off = *grid.get(rel / STRIDE)? as usize;
        for _ in 0..rel % STRIDE {
            off = next_record::<BIG>(types, off)?;
        }
        Some(off as u32)
    }

    /// Every offset, in type order (a sequential walk).
    pub(crate) fn iter<'t>(
        &self,
        types: &'t [u8],
        endian: Endian,
    ) -> impl Iterator<Item = u32> + 't {
        let mut off = 0usize;
        let big = endian == Endian::Big;
        (0..self.len).map_while(move |_| {
            let cur = off;
            off = if big {
                next_record::<true>(types, cur)?
            } else {
                next_record::<false>(types, cur)?
            };
            Some(cur as u32)
        })
    }

    /// Number of segments (more than one after a parallel scan).
    #[cfg(test)]
    pub(crate) fn segments(&self) -> usize {
        self.segs.len()
    }

    /// Heap bytes in use (for tests and reports).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.segs.iter().map(|s| s.1.capacity() * 4).sum::<usize>()
            + self.segs.capacity() * std::mem::size_of::<(usize, Vec<u32>)>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::{info_enc, Endian};

    /// A type section of `kinds` (with vlens), little- or big-endian, and its record offsets.
    fn section(recs: &[(Kind, u16)], big: bool) -> (Vec<u8>, Vec<u32>) {
        let mut out = Vec::new();
        let mut offs = Vec::new();
        for &(k, vlen) in recs {
            offs.push(out.len() as u32);
            let info = info_enc(k, false, vlen);
            let len = record_len(info).unwrap();
            let mut words = vec![0u32; len / 4];
            words[1] = info;
            for w in words {
                out.extend(if big {
                    w.to_be_bytes()
                } else {
                    w.to_le_bytes()
                });
            }
        }
        (out, offs)
    }

    #[test]
    fn record_lengths_follow_the_format() {
        let len = |k, v| record_len(info_enc(k, false, v)).unwrap();
        assert_eq!(len(Kind::Int, 0), 16);
        assert_eq!(len(Kind::Ptr, 0), 12);
        assert_eq!(len(Kind::Array, 0), 24);
        assert_eq!(len(Kind::Struct, 3), 12 + 36);
        assert_eq!(len(Kind::Union, 0xffff), 12 + 12 * 0xffff);
        assert_eq!(len(Kind::Enum, 2), 28);
        assert_eq!(len(Kind::Enum64, 2), 36);
        assert_eq!(len(Kind::FuncProto, 1), 20);
        assert_eq!(len(Kind::Func, 7), 12);
        assert_eq!(len(Kind::Var, 0), 16);
        assert_eq!(len(Kind::DataSec, 2), 36);
        assert_eq!(len(Kind::DeclTag, 0), 16);
        assert_eq!(len(Kind::TypeTag, 0), 12);
        assert_eq!(record_len(0), None);
        for k in 20..32u32 {
            assert_eq!(record_len(k << 24), None);
        }
    }

    #[test]
    fn sparse_lookups_walk_to_every_type() {
        let kinds = [
            (Kind::Int, 0),
            (Kind::Struct, 5),
            (Kind::Ptr, 0),
            (Kind::Enum, 3),
            (Kind::FuncProto, 2),
            (Kind::Array, 0),
        ];
        for big in [false, true] {
            let endian = if big { Endian::Big } else { Endian::Little };
            for n in [0usize, 1, 15, 16, 17, 100] {
                let recs: Vec<_> = (0..n).map(|i| kinds[i % kinds.len()]).collect();
                let (types, offs) = section(&recs, big);
                let grid: Vec<u32> = offs.iter().copied().step_by(STRIDE).collect();
                let t = TypeOffsets::new(n, grid);
                for (i, &o) in offs.iter().enumerate() {
                    assert_eq!(t.get(i, &types, endian), Some(o), "n {n} idx {i}");
                }
                assert_eq!(t.get(n, &types, endian), None);
                assert_eq!(t.iter(&types, endian).collect::<Vec<_>>(), offs);
                // The same types as two segments split at every position.
                for split in 0..=n {
                    let a: Vec<u32> = offs[..split].iter().copied().step_by(STRIDE).collect();
                    let b: Vec<u32> = offs[split..].iter().copied().step_by(STRIDE).collect();
                    let t = TypeOffsets::from_segments(vec![(split, a), (n - split, b)]);
                    for (i, &o) in offs.iter().enumerate() {
                        assert_eq!(t.get(i, &types, endian), Some(o), "split {split} idx {i}");
                    }
                    assert_eq!(t.get(n, &types, endian), None);
                    // Four segments (two of them possibly empty).
                    let mid = (split + n) / 2;
                    let g = |r: std::ops::Range<usize>| -> (usize, Vec<u32>) {
                        (r.len(), offs[r].iter().copied().step_by(STRIDE).collect())
                    };
                    let t = TypeOffsets::from_segments(vec![
                        g(0..split / 2),
                        g(split / 2..split),
                        g(split..mid),
                        g(mid..n),
                    ]);
                    for (i, &o) in offs.iter().enumerate() {
                        assert_eq!(t.get(i, &types, endian), Some(o), "4 segs, idx {i}");
                    }
                }
            }
        }
    }

    #[test]
    fn damaged_sections_give_none_not_panics() {
        let (types, offs) = section(&[(Kind::Int, 0); 20], false);
        let t = TypeOffsets::new(20, offs.iter().copied().step_by(STRIDE).collect());
        // Lookups against a shorter or corrupted section than the one scanned.
        assert_eq!(t.get(3, &types[..20], Endian::Little), None);
        let mut bad = types.clone();
        bad[4..8].copy_from_slice(&(31u32 << 24).to_le_bytes());
        assert_eq!(t.get(3, &bad, Endian::Little), None);
    }
}
