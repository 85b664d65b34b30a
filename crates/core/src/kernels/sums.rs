//! Long sums in `f64` over eight running partial sums.
//!
//! One running sum is a chain of dependent additions, one add latency (~4 cycles) per
//! term; eight independent ones let the compiler keep them in vector registers. The
//! gradient norm every training step takes (`optim::clip`, 8 % of a VQA step over 12 M
//! weights with one sum) and the MSE loss (`loss::mse`, ~10 % of a simple-RNN S2 step)
//! both sum this way.

/// Terms per group: partial sums kept.
pub(crate) const LANES: usize = 8;

/// Σ of every term: term `l` of each group of `groups` goes to partial sum `l`; the
/// partial sums are then added in order, and the `rest` (fewer than a group, as a
/// slice's tail) one by one after them.
#[inline(always)]
pub(crate) fn sum_in_lanes(
    groups: impl Iterator<Item = [f64; LANES]>,
    rest: impl Iterator<Item = f64>,
) -> f64 {
    let mut sums = [0.0_f64; LANES];
    for group in groups {
        for (sum, term) in sums.iter_mut().zip(group) {
            *sum += term;
        }
    }
    rest.fold(sums.iter().sum(), |total, term| total + term)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exactly the documented order (terms of mixed magnitudes, so another order rounds differently).
    #[test]
    fn adds_each_lane_in_order_then_the_lanes_then_the_rest() {
        let terms: Vec<f64> = (0..43)
            .map(|i| (f64::from(i) * 0.618_033_988_749_894_9).fract() * 2f64.powi(i * 13 % 60 - 30))
            .collect();
        let (groups, rest) = terms.as_chunks::<LANES>();
        let mut expected = 0.0;
        for lane in 0..LANES {
            expected += groups.iter().fold(0.0, |sum, group| sum + group[lane]);
        }
        for &term in rest {
            expected += term;
        }
        let sum = sum_in_lanes(groups.iter().copied(), rest.iter().copied());
        assert_eq!(sum.to_bits(), expected.to_bits());
        let one_running_sum: f64 = terms.iter().sum();
        assert_ne!(
            sum.to_bits(),
            one_running_sum.to_bits(),
            "a test that cannot tell orders apart"
        );
    }
}
