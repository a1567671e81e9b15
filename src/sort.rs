//! Stable sorting with one copy of the sort algorithm in the binary.
//!
//! Every `slice::sort_by_key` call site with its own element type or key
//! closure gets its own copy of the standard library's driftsort, about
//! 5 KB of code each. These helpers sort a list of positions instead
//! (always `usize`, one comparator type: a `&mut dyn FnMut`), then put the
//! elements in that order; only the small permutation step is generic. The
//! result is the same as `slice::sort_by`: stable, equal elements keep
//! their order. Use them wherever the lists are small (names, paths,
//! sessions, tool calls); the extra cost is one `Vec<usize>` per call.

use std::cmp::Ordering;

/// Sorts `v` stably by `compare`, like `slice::sort_by`.
pub fn sort_by<T>(v: &mut [T], mut compare: impl FnMut(&T, &T) -> Ordering) {
    if v.len() < 2 {
        return;
    }
    let order = {
        let items: &[T] = v;
        sorted_positions(
            items.len(),
            &mut |a, b| match (items.get(a), items.get(b)) {
                (Some(x), Some(y)) => compare(x, y),
                _ => Ordering::Equal,
            },
        )
    };
    permute(v, order);
}

/// Sorts `v` stably by the key `key` returns, like `slice::sort_by_key`.
pub fn sort_by_key<T, K: Ord>(v: &mut [T], mut key: impl FnMut(&T) -> K) {
    sort_by(v, |a, b| key(a).cmp(&key(b)));
}

/// Sorts `v` into ascending order, like `slice::sort`.
pub fn sort<T: Ord>(v: &mut [T]) {
    sort_by(v, T::cmp);
}

/// The positions `0..len` stably sorted by `compare` over positions: the
/// only instantiation of the standard sort these helpers use.
#[inline(never)]
fn sorted_positions(len: usize, compare: &mut dyn FnMut(usize, usize) -> Ordering) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    order.sort_by(|&a, &b| compare(a, b));
    order
}

/// Reorders `v` so that the element at `order[i]` ends up at `i`, by
/// following each cycle of the permutation with swaps (no copies of `T`).
/// `order` must be a permutation of `0..v.len()` (it is: `sorted_positions`
/// sorts exactly those numbers); anything else leaves `v` partly reordered
/// but never reads out of bounds.
fn permute<T>(v: &mut [T], mut order: Vec<usize>) {
    let len = v.len().min(order.len());
    for start in 0..len {
        // `order[i] == i` marks a position already in place.
        let mut current = start;
        loop {
            let source = order.get(current).copied().unwrap_or(current);
            if source == start || source >= len {
                if let Some(slot) = order.get_mut(current) {
                    *slot = current;
                }
                break;
            }
            v.swap(current, source);
            if let Some(slot) = order.get_mut(current) {
                *slot = current;
            }
            current = source;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A xorshift stream: deterministic inputs for comparing with std's sort.
    fn numbers(seed: u64, n: usize, modulo: u64) -> Vec<u64> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| crate::util::xorshift(&mut x) % modulo)
            .collect()
    }

    #[test]
    fn matches_std_stable_sort_on_many_inputs() {
        for n in [0usize, 1, 2, 3, 7, 20, 33, 100, 1000] {
            for seed in 1..20u64 {
                // Pairs (key, original position): stability shows in the position.
                let keys = numbers(seed, n, 8);
                let mut ours: Vec<(u64, usize)> = keys.iter().copied().zip(0..).collect();
                let mut std_sorted = ours.clone();
                sort_by_key(&mut ours, |p| p.0);
                std_sorted.sort_by_key(|p| p.0);
                assert_eq!(ours, std_sorted, "n={n} seed={seed}");
            }
        }
    }

    #[test]
    fn sorts_strings_and_descending_comparators() {
        let mut names = vec![
            "pear".to_string(),
            "apple".into(),
            "fig".into(),
            "apple".into(),
        ];
        sort(&mut names);
        assert_eq!(names, ["apple", "apple", "fig", "pear"]);
        let mut times = vec![(3u64, 'a'), (9, 'b'), (3, 'c'), (1, 'd')];
        sort_by(&mut times, |a, b| b.0.cmp(&a.0));
        assert_eq!(times, [(9, 'b'), (3, 'a'), (3, 'c'), (1, 'd')]);
    }

    #[test]
    fn permute_follows_cycles() {
        let mut v = vec!['a', 'b', 'c', 'd', 'e'];
        // Position i takes the element at order[i].
        permute(&mut v, vec![2, 0, 1, 4, 3]);
        assert_eq!(v, ['c', 'a', 'b', 'e', 'd']);
    }
}
