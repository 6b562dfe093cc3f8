//! [`TypeOffsets`]: where each type record starts in the type section, in about 2.25 bytes per
//! type instead of 4.
//!
//! The kernel's BTF has ~127k types, so a plain `Vec<u32>` of offsets is ~500 KiB, most of the
//! memory a CO-RE load needs. Records are small (12 bytes plus a few entries), so the offsets
//! inside a block of [`BLOCK`] consecutive types almost always span less than 64 KiB: each block
//! stores its first offset as a `u32` and every type a `u16` delta from it. A block that spans more
//! (a huge struct or enum) keeps full `u32` offsets in `wide` instead. Lookups stay O(1): two
//! loads and a branch.

/// Types per block.
const BLOCK: usize = 16;
/// Set in a block entry whose offsets live in `wide` (the low bits index `wide`).
const WIDE: u32 = 1 << 31;

#[derive(Debug, Default)]
pub(crate) struct TypeOffsets {
    /// Per block: its first type's offset, or `WIDE | start` of its entries in `wide`.
    blocks: Vec<u32>,
    /// Per type: offset minus its block's first offset (unused, 0, in wide blocks).
    deltas: Vec<u16>,
    /// Full offsets of the types in wide blocks, `BLOCK` per block (the last may be shorter).
    wide: Vec<u32>,
}

impl TypeOffsets {
    /// Room for about `types` types (a hint; pushing more grows the storage).
    pub(crate) fn with_capacity(types: usize) -> Self {
        TypeOffsets {
            blocks: Vec::with_capacity(types.div_ceil(BLOCK)),
            deltas: Vec::with_capacity(types),
            wide: Vec::new(),
        }
    }

    /// Number of types recorded.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.deltas.len()
    }

    /// Appends the next type's offset (offsets must be pushed in increasing order).
    #[inline]
    pub(crate) fn push(&mut self, off: u32) {
        let idx = self.deltas.len();
        if idx.is_multiple_of(BLOCK) {
            if off & WIDE == 0 {
                self.blocks.push(off);
            } else {
                self.blocks.push(WIDE | self.wide.len() as u32);
            }
        }
        let b = idx / BLOCK;
        let entry = self.blocks[b];
        if entry & WIDE == 0 {
            match u16::try_from(off - entry) {
                Ok(d) => {
                    self.deltas.push(d);
                    return;
                }
                // This block spans 64 KiB or more: move its offsets so far to `wide`.
                Err(_) => {
                    self.blocks[b] = WIDE | self.wide.len() as u32;
                    for d in &mut self.deltas[b * BLOCK..] {
                        self.wide.push(entry + u32::from(*d));
                        *d = 0;
                    }
                }
            }
        }
        self.wide.push(off);
        self.deltas.push(0);
    }

    /// Releases the unused capacity once every type is pushed.
    pub(crate) fn finish(&mut self) {
        self.blocks.shrink_to_fit();
        self.deltas.shrink_to_fit();
        self.wide.shrink_to_fit();
    }

    /// Offset of type number `idx` (0-based), `None` past the end.
    #[inline]
    pub(crate) fn get(&self, idx: usize) -> Option<u32> {
        let d = *self.deltas.get(idx)?;
        let entry = self.blocks[idx / BLOCK];
        Some(if entry & WIDE == 0 {
            entry + u32::from(d)
        } else {
            self.wide[(entry & !WIDE) as usize + idx % BLOCK]
        })
    }

    /// Every offset, in type order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len()).map(|i| self.get(i).unwrap_or(0))
    }

    /// Heap bytes in use (for tests and reports).
    #[cfg(test)]
    pub(crate) fn heap_bytes(&self) -> usize {
        self.blocks.capacity() * 4 + self.deltas.capacity() * 2 + self.wide.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::TypeOffsets;

    fn check(offs: &[u32]) {
        let mut t = TypeOffsets::with_capacity(1);
        for &o in offs {
            t.push(o);
        }
        t.finish();
        assert_eq!(t.len(), offs.len());
        for (i, &o) in offs.iter().enumerate() {
            assert_eq!(t.get(i), Some(o), "index {i}");
        }
        assert_eq!(t.get(offs.len()), None);
        assert_eq!(t.iter().collect::<Vec<_>>(), offs);
    }

    #[test]
    fn small_records_use_deltas() {
        let offs: Vec<u32> = (0..1000).map(|i| i * 24).collect();
        check(&offs);
        let mut t = TypeOffsets::with_capacity(0);
        offs.iter().for_each(|&o| t.push(o));
        t.finish();
        assert!(t.heap_bytes() < offs.len() * 3, "{}", t.heap_bytes());
    }

    #[test]
    fn big_records_fall_back_to_wide_blocks() {
        // Jumps of 64 KiB and more at every position inside a block, and offsets with bit 31 set.
        for jump_at in 0..20u32 {
            let mut offs = Vec::new();
            let mut o = 0u32;
            for i in 0..40u32 {
                offs.push(o);
                o += if i == jump_at { 0x1_0000 } else { 12 };
            }
            check(&offs);
        }
        let offs: Vec<u32> = (0..50).map(|i| 0x7fff_fff0 + i * 0x4000).collect();
        check(&offs);
        check(&[]);
        check(&[0]);
        check(&[0, 0xffff, 0x1_0000, 0x1_000c]);
    }
}
