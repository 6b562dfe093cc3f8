//! Stable sorting by an integer key through one shared sort instantiation.
//!
//! `slice::sort_by_key` instantiates the whole stable sort (several KB of code) for every element
//! type; the object model sorts four different ones. Sorting (key, original index) pairs instead
//! gives exactly the stable order, with one copy of the sort in the binary (issue 8: the static
//! `bpfload` binary's size).

/// Sorts `v` by `key`, keeping equal elements in their order (the result of `sort_by_key`).
pub(crate) fn sort_by_key_stable<T>(v: &mut Vec<T>, key: impl Fn(&T) -> (u64, u64)) {
    if v.len() < 2 {
        return;
    }
    let mut order: Vec<(u64, u64, usize)> = v
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let (a, b) = key(x);
            (a, b, i)
        })
        .collect();
    sort_keys(&mut order);
    let mut slots: Vec<Option<T>> = v.drain(..).map(Some).collect();
    // Every index occurs exactly once in `order`, so each slot is taken once.
    v.extend(order.iter().filter_map(|&(_, _, i)| slots[i].take()));
}

/// The one sort instantiation. The original index makes every key unique, so the unstable sort
/// is deterministic and equals a stable sort by the first two fields.
#[inline(never)]
pub(crate) fn sort_keys(keys: &mut [(u64, u64, usize)]) {
    keys.sort_unstable();
}

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
