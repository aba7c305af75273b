//! A chunk's min and max (and its page bounds): NaN ignored, zeros signed as the format asks.

use parquet::file::statistics::Statistics;

pub(super) fn int_range(values: &[i64]) -> (i64, i64) {
    values
        .iter()
        .fold((i64::MAX, i64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)))
}

pub(super) fn int_statistics(min: i64, max: i64) -> Statistics {
    Statistics::int64(Some(min), Some(max), None, Some(0), false)
}

/// The smallest and largest value, NaN skipped (`(inf, -inf)` when there is none).
pub(super) fn float_range(values: &[f64]) -> (f64, f64) {
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    for &v in values {
        // NaN compares false both ways and is skipped, as the format asks.
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max)
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
}
