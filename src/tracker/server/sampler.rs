//! Which peers an announce gets back: `want` distinct positions out of `0..len`, in O(want) time
//! and with no allocation or set to remember what was drawn.
//!
//! A stratified draw: the positions are split into `want` windows of `len / want` consecutive
//! positions starting at a random offset (wrapping round), and one position is drawn from each
//! window. Windows do not overlap, so nothing is drawn twice, and every position is drawn with
//! the same probability `want / len` (the offset is uniform), which is what a swarm needs: no
//! peer is favoured, and repeated announces see different peers. Unlike a uniform subset,
//! two positions in the same window never come together; trackers need no more than this.

/// Up to `want` distinct positions out of `0..len`, each equally likely: all of them when
/// `len <= want`.
pub fn sample(len: usize, want: usize, rng: &mut fastrand::Rng) -> impl Iterator<Item = usize> {
    let (count, width, offset) = if len <= want {
        (len, 1, 0)
    } else if want == 0 {
        (0, 1, 0)
    } else {
        (want, len / want, rng.usize(..len))
    };
    (0..count).map(move |i| {
        let jitter = if width > 1 { rng.usize(..width) } else { 0 };
        (offset + i * width + jitter) % len.max(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn drawn(len: usize, want: usize, rng: &mut fastrand::Rng) -> Vec<usize> {
        sample(len, want, rng).collect()
    }

    #[test]
    fn small_sets_come_back_whole() {
        let mut rng = fastrand::Rng::with_seed(1);
        assert_eq!(drawn(0, 50, &mut rng), Vec::<usize>::new());
        assert_eq!(drawn(3, 50, &mut rng), vec![0, 1, 2]);
        assert_eq!(drawn(5, 5, &mut rng), vec![0, 1, 2, 3, 4]);
        assert!(drawn(100, 0, &mut rng).is_empty());
    }

    #[test]
    fn draws_are_distinct_in_range_and_as_many_as_wanted() {
        let mut rng = fastrand::Rng::with_seed(2);
        for len in [6, 7, 99, 100, 101, 1000, 50_000] {
            for want in [1, 5, 50, 200] {
                let got = drawn(len, want, &mut rng);
                let distinct: HashSet<_> = got.iter().copied().collect();
                assert_eq!(got.len(), want.min(len), "{len} {want}");
                assert_eq!(distinct.len(), got.len(), "duplicates in {len} {want}");
                assert!(got.iter().all(|&p| p < len));
            }
        }
    }

    #[test]
    fn every_position_is_about_equally_likely() {
        // 10 of 37 per draw, 37,000 draws: each position expects 10,000 hits.
        let mut rng = fastrand::Rng::with_seed(3);
        let mut hits = [0u32; 37];
        for _ in 0..37_000 {
            for p in sample(37, 10, &mut rng) {
                hits[p] += 1;
            }
        }
        for (p, &n) in hits.iter().enumerate() {
            assert!((9_000..11_000).contains(&n), "position {p}: {n} hits");
        }
    }
}
