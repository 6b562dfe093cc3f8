//! Name index: (essential name, kind) → ids, built lazily once per blob.
//!
//! The table stores only the lowest id of each key (4 bytes per distinct key); further ids with
//! the same key are chained through `next`, one `u32` per type. Keys are compared by decoding the
//! stored id's name, so no strings are copied.

use hashbrown::hash_table::Entry;
use hashbrown::{DefaultHashBuilder, HashTable};
use std::hash::BuildHasher;

use crate::btf::Btf;
use crate::raw::{info_kind, Kind};

/// libbpf's `bpf_core_essential_name_len`: the name without its last `X___Y` flavor suffix
/// (`task_struct___old` → `task_struct`). Not idempotent for names with two flavor separators,
/// exactly like libbpf, so apply it once to the original name.
pub fn essential_name(name: &[u8]) -> &[u8] {
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

#[derive(Debug)]
pub(crate) struct NameIndex {
    table: HashTable<u32>,
    /// `next[id - start_id]`: the next higher id with the same key, or 0.
    next: Vec<u32>,
    hasher: DefaultHashBuilder,
}

impl NameIndex {
    fn hash(hasher: &DefaultHashBuilder, name: &[u8], kind: u32) -> u64 {
        hasher.hash_one((name, kind as u8))
    }

    /// (essential name, kind) of own type `id`, reading the raw record directly.
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

    pub(crate) fn build(btf: &Btf<'_>) -> NameIndex {
        let start = btf.start_id();
        let count = (btf.len() - start) as usize;
        let hasher = DefaultHashBuilder::default();
        let mut table: HashTable<u32> = HashTable::with_capacity(count);
        let mut next = vec![0u32; count];
        // Walk downwards so each chain ends up in ascending id order.
        for id in (start..btf.len()).rev() {
            let Some((name, kind)) = Self::key(btf, id) else {
                continue;
            };
            let h = Self::hash(&hasher, name, kind);
            let entry = table.entry(
                h,
                |&other| Self::key(btf, other) == Some((name, kind)),
                |&other| match Self::key(btf, other) {
                    Some((n, k)) => Self::hash(&hasher, n, k),
                    None => 0,
                },
            );
            match entry {
                Entry::Occupied(mut o) => {
                    next[(id - start) as usize] = *o.get();
                    *o.get_mut() = id;
                }
                Entry::Vacant(v) => {
                    v.insert(id);
                }
            }
        }
        NameIndex {
            table,
            next,
            hasher,
        }
    }

    fn head(&self, btf: &Btf<'_>, essential: &[u8], kind: Kind) -> u32 {
        let kind = kind as u32;
        let h = Self::hash(&self.hasher, essential, kind);
        self.table
            .find(h, |&other| Self::key(btf, other) == Some((essential, kind)))
            .copied()
            .unwrap_or(0)
    }

    /// Own ids with this essential name and kind, ascending.
    pub(crate) fn candidates<'s>(
        &'s self,
        btf: &Btf<'_>,
        essential: &[u8],
        kind: Kind,
    ) -> impl Iterator<Item = u32> + 's {
        let start = btf.start_id();
        let mut cur = self.head(btf, essential, kind);
        std::iter::from_fn(move || {
            if cur == 0 {
                return None;
            }
            let id = cur;
            cur = self.next.get((id - start) as usize).copied().unwrap_or(0);
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
}
