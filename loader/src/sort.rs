//! Stable sorting by an integer key through one shared sort instantiation.
//!
//! `slice::sort_by_key` instantiates the whole stable sort (several KB of code) for every element
//! type; the object model sorts four different ones. Sorting (key, original index) pairs instead
//! gives exactly the stable order, with one copy of the sort in the binary (issue 8: the static
//! `bpfload` binary's size).

/// Sorts `v` by `key`, keeping equal elements in their order (the result of `sort_by_key`).
/// Only collecting the keys and swapping elements depend on `T`; the sort and the swap plan are
/// computed once for all element types ([`stable_swaps`]).
pub(crate) fn sort_by_key_stable<T>(v: &mut [T], key: impl Fn(&T) -> (u64, u64)) {
    if v.len() < 2 {
        return;
    }
    let keys: Vec<(u64, u64, usize)> = v
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let (a, b) = key(x);
            (a, b, i)
        })
        .collect();
    for (a, b) in stable_swaps(keys) {
        v.swap(a, b);
    }
}

/// The swaps that put the elements in the order of `keys` sorted, where `keys[i].2 == i`.
// Out of line: smaller code where it was inlined (issue 8: binary size).
#[inline(never)]
fn stable_swaps(mut keys: Vec<(u64, u64, usize)>) -> Vec<(usize, usize)> {
    sort_keys(&mut keys);
    let n = keys.len();
    // at[p]: the original index of the element now at position p; pos[i]: where original
    // element i is now.
    let mut at: Vec<usize> = (0..n).collect();
    let mut pos: Vec<usize> = (0..n).collect();
    let mut swaps = Vec::new();
    for (k, &(_, _, want)) in keys.iter().enumerate() {
        let p = pos[want];
        if p != k {
            swaps.push((k, p));
            let displaced = at[k];
            at[p] = displaced;
            pos[displaced] = p;
            at[k] = want;
            pos[want] = k;
        }
    }
    swaps
}

/// The original index makes every key unique, so any sort of the keys equals a stable sort by
/// the first two fields.
#[inline(never)]
pub(crate) fn sort_keys(keys: &mut [(u64, u64, usize)]) {
    sort_copied(keys);
}

/// Sorts `v` (unique elements, or equal ones indistinguishable) through the BTF crate's shared
/// index sort: no standard sort instance in the loader (issue 8: binary size).
pub(crate) use bpfload_btf::sort_copied;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equals_the_std_stable_sort() {
        // Many ties, so stability matters; a simple LCG for varied input.
        let mut x = 12345u64;
        let mut v: Vec<(u64, u64, u32)> = (0..5000)
            .map(|i| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 60) % 5, (x >> 50) % 3, i)
            })
            .collect();
        let mut expected = v.clone();
        expected.sort_by_key(|&(a, b, _)| (a, b));
        sort_by_key_stable(&mut v, |&(a, b, _)| (a, b));
        assert_eq!(v, expected);
        let mut one = vec![7];
        sort_by_key_stable(&mut one, |&x| (x, 0));
        assert_eq!(one, [7]);
        let mut empty: Vec<u8> = Vec::new();
        sort_by_key_stable(&mut empty, |&x| (x as u64, 0));
        assert!(empty.is_empty());
    }
}
