//! A small stable sort of indices by a comparison, shared by the BTF crate and the loader.
//!
//! The standard sorts are instantiated (~2-3 KB of code each) for every element type and
//! comparator; these sorts are few and short (candidate ids, DATASEC variables, module
//! names, externs), so one plain merge sort serves them all (issue 8: the static `bpfload`
//! binary's size).

use std::cmp::Ordering;

/// Sorts indices by a comparison, keeping equal ones in their order: a plain bottom-up merge
/// sort (O(n log n), a few hundred bytes of code) for the rare sorts whose order is not an
/// integer key, instead of instantiating the standard sort (~3 KB each) for each comparator.
pub fn sort_indices_by(v: &mut [usize], cmp: &mut dyn FnMut(usize, usize) -> Ordering) {
    let n = v.len();
    // Input already in order (relocations, symbols and sections mostly are): one pass.
    if v.windows(2).all(|w| cmp(w[0], w[1]) != Ordering::Greater) {
        return;
    }
    let mut buf = v.to_vec();
    let mut width = 1;
    while width < n {
        let mut i = 0;
        while i < n {
            let mid = (i + width).min(n);
            let end = (i + 2 * width).min(n);
            let (mut a, mut b, mut k) = (i, mid, i);
            while a < mid && b < end {
                // Ties take the left run's element first: stable.
                if cmp(v[b], v[a]) == Ordering::Less {
                    buf[k] = v[b];
                    b += 1;
                } else {
                    buf[k] = v[a];
                    a += 1;
                }
                k += 1;
            }
            buf[k..k + (mid - a)].copy_from_slice(&v[a..mid]);
            k += mid - a;
            buf[k..k + (end - b)].copy_from_slice(&v[b..end]);
            i = end;
        }
        v.copy_from_slice(&buf);
        width *= 2;
    }
}

/// Sorts `v` (elements unique, or equal ones indistinguishable) through [`sort_indices_by`].
pub fn sort_copied<T: Ord + Clone>(v: &mut [T]) {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    sort_indices_by(&mut idx, &mut |a, b| v[a].cmp(&v[b]));
    let sorted: Vec<T> = idx.iter().map(|&i| v[i].clone()).collect();
    v.clone_from_slice(&sorted);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_sort_equals_the_std_stable_sort() {
        let mut x = 99u64;
        for n in [0usize, 1, 2, 3, 5, 8, 13, 64, 100, 1000, 4097] {
            let keys: Vec<u64> = (0..n)
                .map(|_| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (x >> 58) % 7
                })
                .collect();
            let mut expected: Vec<usize> = (0..n).collect();
            expected.sort_by_key(|&i| keys[i]);
            let mut v: Vec<usize> = (0..n).collect();
            sort_indices_by(&mut v, &mut |a, b| keys[a].cmp(&keys[b]));
            assert_eq!(v, expected, "n {n}");
        }
    }

    #[test]
    fn copied_sort_sorts() {
        let mut v = vec!["b".to_string(), "a".into(), "c".into(), "ab".into()];
        sort_copied(&mut v);
        assert_eq!(v, ["a", "ab", "b", "c"]);
        let mut ids = vec![5u32, 1, 4, 2];
        sort_copied(&mut ids);
        assert_eq!(ids, [1, 2, 4, 5]);
    }
}
