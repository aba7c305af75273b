//! A chunk's min and max (and its page bounds): NaN ignored, zeros signed as the format asks.

use parquet::file::statistics::Statistics;

use crate::pages::PageBounds;

/// Independent minimums and maximums kept side by side, so no value waits on the one before it (and the float
/// comparisons vectorise); the lanes are combined at the end.
const LANES: usize = 8;

/// The fold of `values` by `lower` and `upper` from `(none_lo, none_hi)`, in [`LANES`] lanes.
#[inline]
fn range_in_lanes<T: Copy>(
    values: &[T],
    (none_lo, none_hi): (T, T),
    lower: impl Fn(T, T) -> T,
    upper: impl Fn(T, T) -> T,
) -> (T, T) {
    let (mut lo, mut hi) = ([none_lo; LANES], [none_hi; LANES]);
    let mut blocks = values.chunks_exact(LANES);
    for block in &mut blocks {
        for k in 0..LANES {
            lo[k] = lower(lo[k], block[k]);
            hi[k] = upper(hi[k], block[k]);
        }
    }
    let tail = blocks.remainder().iter().copied();
    let lo = lo.into_iter().chain(tail.clone()).fold(none_lo, &lower);
    let hi = hi.into_iter().chain(tail).fold(none_hi, &upper);
    (lo, hi)
}

/// The smallest and largest value (`(i64::MAX, i64::MIN)` when there is none).
pub(super) fn int_range(values: &[i64]) -> (i64, i64) {
    range_in_lanes(values, (i64::MAX, i64::MIN), i64::min, i64::max)
}

pub(super) fn int_statistics(min: i64, max: i64) -> Statistics {
    Statistics::int64(Some(min), Some(max), None, Some(0), false)
}

/// The smallest and largest value, NaN skipped (`(inf, -inf)` when there is none).
pub(super) fn float_range(values: &[f64]) -> (f64, f64) {
    // NaN compares false both ways and is skipped, as the format asks. Of equal values (0.0 and -0.0) either may
    // come out: `float_statistics` signs a zero bound itself.
    range_in_lanes(
        values,
        (f64::INFINITY, f64::NEG_INFINITY),
        |m, v| if v < m { v } else { m },
        |m, v| if v > m { v } else { m },
    )
}

/// The column index bounds of values whose [`float_range`] is `(min, max)` (none when every value is NaN).
pub(super) fn float_bounds(min: f64, max: f64) -> PageBounds {
    if min > max {
        PageBounds::None
    } else {
        PageBounds::Float(min, max)
    }
}

pub(super) fn float_statistics(min: f64, max: f64) -> Statistics {
    if min > max {
        return Statistics::double(None, None, None, Some(0), false);
    }
    let min = if min == 0.0 { -0.0 } else { min };
    let max = if max == 0.0 { 0.0 } else { max };
    Statistics::double(Some(min), Some(max), None, Some(0), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_statistics_ignore_nan_and_sign_zeros() {
        let stats = |v: &[f64]| {
            let (min, max) = float_range(v);
            match float_statistics(min, max) {
                Statistics::Double(s) => (s.min_opt().copied(), s.max_opt().copied()),
                _ => unreachable!(),
            }
        };
        let (min, max) = stats(&[0.0, 2.0, f64::NAN]);
        assert!(min.unwrap() == 0.0 && min.unwrap().is_sign_negative());
        assert_eq!(max, Some(2.0));
        let (_, max) = stats(&[-0.0, -1.0]);
        assert!(max.unwrap() == 0.0 && max.unwrap().is_sign_positive());
        assert_eq!(stats(&[f64::NAN]), (None, None));
    }

    #[test]
    fn ranges_in_lanes_equal_a_value_by_value_scan() {
        // Every length around the lane count, the extremes in the tail and in the lanes, NaN and signed zeros.
        let mut rng = crate::test_rng::Rng(0x2545_F491_4F6C_DD1D);
        let floats = [
            f64::NAN,
            0.0,
            -0.0,
            1.5,
            -2.25,
            1e300,
            -1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        for len in 0..50 {
            for _ in 0..20 {
                let ints: Vec<i64> = (0..len)
                    .map(|_| {
                        [i64::MIN, i64::MAX, -1, 0, 7][rng.below(5) as usize]
                            .wrapping_add(rng.below(3) as i64)
                    })
                    .collect();
                let want = ints
                    .iter()
                    .fold((i64::MAX, i64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
                assert_eq!(int_range(&ints), want);
                let values: Vec<f64> = (0..len).map(|_| floats[rng.below(9) as usize]).collect();
                let present = values.iter().copied().filter(|v| !v.is_nan());
                let lo = present.clone().fold(f64::INFINITY, f64::min);
                let hi = present.fold(f64::NEG_INFINITY, f64::max);
                let (got_lo, got_hi) = float_range(&values);
                // Equal values (0.0 and -0.0) may come out either way: compared as numbers.
                assert!(
                    got_lo == lo && got_hi == hi,
                    "{values:?}: {got_lo} {got_hi}"
                );
            }
        }
    }
}
