//! UTC nanosecond arithmetic: bar intervals, flooring to an interval, and the New York calendar date that decides a
//! daily bar's label and the lake file (month or year) a row belongs to. This is the one place that rule lives.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone};
use chrono_tz::America::New_York;

use crate::error::{Error, Result};

/// Nanoseconds per second.
pub const NS_PER_SEC: i64 = 1_000_000_000;
/// Nanoseconds per day.
pub const NS_PER_DAY: i64 = 86_400 * NS_PER_SEC;

/// The first instant ticklake accepts: 1679-01-01T00:00:00Z. Nanosecond timestamps reach back to 1677-09-21, but a
/// bucket of up to 366 days, a New York day or a month must still be representable around every accepted value.
pub const MIN_TIMESTAMP: i64 = -9_183_024_000 * NS_PER_SEC;
/// The first instant ticklake refuses: 2261-01-01T00:00:00Z (nanosecond timestamps end at 2262-04-11, and the
/// month, day and bucket that hold an accepted value must end before that).
pub const MAX_TIMESTAMP: i64 = 9_183_110_400 * NS_PER_SEC;

/// True when `ts` lies in `[MIN_TIMESTAMP, MAX_TIMESTAMP)`, the range every kernel and lake write accepts. Values
/// outside (int64 sentinels such as `i64::MAX`, wrapped epoch conversions) are refused before any arithmetic
/// depends on them.
#[inline]
#[must_use]
pub fn in_range(ts: i64) -> bool {
    (MIN_TIMESTAMP..MAX_TIMESTAMP).contains(&ts)
}

/// The error for a timestamp outside [`in_range`].
#[must_use]
pub fn out_of_range(column: &str, row: u64, ts: i64) -> Error {
    Error::invalid(
        column,
        row,
        format!(
            "timestamp {ts} ns is outside the supported range 1679-01-01 to 2261-01-01 (UTC);              int64 sentinels and misread epoch units land here"
        ),
    )
}

/// A bar interval: a fixed length aligned to the UTC epoch, or the New York trading date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interval {
    /// Fixed-length buckets `[k*len, (k+1)*len)` in UTC nanoseconds.
    Fixed(i64),
    /// One bucket per New York calendar date, labelled with that date at 00:00 UTC.
    NyDay,
}

impl Interval {
    /// Parses `"1s"`, `"5s"`, `"1m"`, `"15min"`, `"1h"`, `"1d"` and the like.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the string when it is not a positive count followed by `s`, `m`/`min`,
    /// `h`, or the single daily interval `1d`.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || {
            Error::InvalidArgument(format!(
                "unknown interval {text:?}: use a positive count and a unit, e.g. \"1s\", \"5s\", \"1m\", \"15m\", \"1h\" or \"1d\""
            ))
        };
        let trimmed = text.trim();
        let split = trimmed
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(bad)?;
        let (count, unit) = trimmed.split_at(split);
        let count: i64 = count.parse().map_err(|_| bad())?;
        if count <= 0 {
            return Err(bad());
        }
        let unit_ns = match unit {
            "s" | "sec" => NS_PER_SEC,
            "m" | "min" => 60 * NS_PER_SEC,
            "h" => 3_600 * NS_PER_SEC,
            "d" if count == 1 => return Ok(Self::NyDay),
            "d" => {
                return Err(Error::InvalidArgument(format!(
                    "unknown interval {text:?}: only \"1d\" (the New York trading date) is supported for days"
                )))
            }
            _ => return Err(bad()),
        };
        count
            .checked_mul(unit_ns)
            .filter(|len| *len <= 366 * NS_PER_DAY)
            .map(Self::Fixed)
            .ok_or_else(bad)
    }

    /// The `(label, end)` of the bucket holding `ts`, where `prev_end` is the end of the bucket before it, when
    /// known. Stepping to the adjacent fixed bucket spares a division, the common case for busy symbols.
    #[inline]
    #[must_use]
    pub fn next_bucket(self, prev_end: Option<i64>, ts: i64) -> (i64, i64) {
        if let (Self::Fixed(len), Some(end)) = (self, prev_end) {
            if ts.checked_sub(end).is_some_and(|d| (0..len).contains(&d)) {
                return (end, end.saturating_add(len));
            }
        }
        let (label, _, end) = self.bucket(ts);
        (label, end)
    }

    /// How many buckets the (sorted) timestamps `ts` can fill, as a size hint for output: at most one per
    /// timestamp, and a bound from the span for fixed intervals (within a bucket or two for New York days).
    #[must_use]
    pub fn max_buckets(self, ts: &[i64]) -> usize {
        let (Some(&first), Some(&last)) = (ts.first(), ts.last()) else {
            return 0;
        };
        let len = match self {
            Self::Fixed(len) => len,
            Self::NyDay => NS_PER_DAY,
        };
        let span = i128::from(last) - i128::from(first);
        usize::try_from(span.max(0) / i128::from(len) + 2).map_or(ts.len(), |n| n.min(ts.len()))
    }

    /// True for intervals of at least one minute, whose bars carry `vwap` (SPEC §2).
    #[must_use]
    pub fn has_vwap(self) -> bool {
        match self {
            Self::Fixed(len) => len >= 60 * NS_PER_SEC,
            Self::NyDay => true,
        }
    }

    /// The bucket holding `ts`: `(label, start, end)` with `start <= ts < end`.
    #[must_use]
    pub fn bucket(self, ts: i64) -> (i64, i64, i64) {
        match self {
            Self::Fixed(len) => {
                let start = floor_to(ts, len);
                (start, start, start.saturating_add(len))
            }
            Self::NyDay => ny_day_bounds(ts),
        }
    }
}

/// Floors `ts` to a multiple of `len` (towards negative infinity).
#[inline]
#[must_use]
pub fn floor_to(ts: i64, len: i64) -> i64 {
    ts - ts.rem_euclid(len)
}

/// The New York calendar date of a UTC nanosecond timestamp.
#[must_use]
pub fn ny_date(ts: i64) -> NaiveDate {
    New_York
        .from_utc_datetime(&DateTime::from_timestamp_nanos(ts).naive_utc())
        .date_naive()
}

/// UTC nanoseconds of a date at 00:00 UTC.
#[must_use]
pub fn date_label(date: NaiveDate) -> i64 {
    i64::from(date.num_days_from_ce() - EPOCH_DAYS_FROM_CE) * NS_PER_DAY
}

const EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// UTC nanoseconds of New York midnight starting `date`.
fn ny_midnight(date: NaiveDate) -> i64 {
    // Midnight exists and is unambiguous in America/New_York (DST switches at 02:00).
    let local = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    New_York
        .from_local_datetime(&local)
        .earliest()
        .and_then(|dt| dt.timestamp_nanos_opt())
        .unwrap_or_else(|| date_label(date))
}

/// The New York day holding `ts`: `(label at 00:00 UTC, start, end)` as UTC nanoseconds.
#[must_use]
pub fn ny_day_bounds(ts: i64) -> (i64, i64, i64) {
    let date = ny_date(ts);
    let next = date.succ_opt().unwrap_or(date);
    (date_label(date), ny_midnight(date), ny_midnight(next))
}

/// The lake period a row belongs to (SPEC §1): its key (`YYYY-MM` of the New York date, or `YYYY` for daily bars
/// whose timestamp is already a date label) and the period's bounds `[start, end)` in UTC nanoseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Period {
    /// `YYYY-MM` or `YYYY`, as in the file name.
    pub key: String,
    /// First nanosecond of the period.
    pub start: i64,
    /// First nanosecond after the period.
    pub end: i64,
}

/// The period holding `ts`. Monthly periods run from New York midnight on the 1st to New York midnight on the 1st
/// of the next month; yearly periods (daily bars) from 1 January 00:00 UTC to the next 1 January 00:00 UTC.
#[must_use]
pub fn period_of(ts: i64, yearly_label: bool) -> Period {
    if yearly_label {
        let year = DateTime::from_timestamp_nanos(ts).date_naive().year();
        let first = |y: i32| NaiveDate::from_ymd_opt(y, 1, 1).map_or(i64::MAX, date_label);
        Period {
            key: format!("{year:04}"),
            start: first(year),
            end: first(year + 1),
        }
    } else {
        let date = ny_date(ts);
        let (year, month) = (date.year(), date.month());
        let (next_year, next_month) = if month == 12 {
            (year + 1, 1)
        } else {
            (year, month + 1)
        };
        let first = |y: i32, m: u32| NaiveDate::from_ymd_opt(y, m, 1).map_or(i64::MAX, ny_midnight);
        Period {
            key: format!("{year:04}-{month:02}"),
            start: first(year, month),
            end: first(next_year, next_month),
        }
    }
}

/// The period named by a file's key: `YYYY-MM` (monthly) or `YYYY` (yearly, daily bars).
///
/// # Errors
/// [`Error::InvalidArgument`] when the key does not match the kind.
pub fn period_from_key(key: &str, yearly_label: bool) -> Result<Period> {
    let bad = || {
        Error::InvalidArgument(format!(
            "bad period {key:?}: expected {}",
            if yearly_label { "YYYY" } else { "YYYY-MM" }
        ))
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let date = if yearly_label {
        let year: i32 = key.parse().map_err(|_| bad())?;
        if key.len() != 4 || !digits(key) {
            return Err(bad());
        }
        NaiveDate::from_ymd_opt(year, 1, 1).ok_or_else(bad)?
    } else {
        let (y, m) = key.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 || !digits(y) || !digits(m) {
            return Err(bad());
        }
        let (year, month): (i32, u32) =
            (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        NaiveDate::from_ymd_opt(year, month, 1).ok_or_else(bad)?
    };
    let probe = if yearly_label {
        date_label(date)
    } else {
        ny_midnight(date) + NS_PER_DAY / 2
    };
    let period = period_of(probe, yearly_label);
    if period.key == key {
        Ok(period)
    } else {
        Err(bad())
    }
}

/// The lake period key of a row; see [`period_of`].
#[must_use]
pub fn period_key(ts: i64, yearly_label: bool) -> String {
    period_of(ts, yearly_label).key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        chrono::Utc
            .with_ymd_and_hms(y, mo, d, h, mi, 0)
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap()
    }

    #[test]
    fn the_supported_range_is_1679_to_2261() {
        assert_eq!(MIN_TIMESTAMP, utc(1679, 1, 1, 0, 0));
        assert_eq!(MAX_TIMESTAMP, utc(2261, 1, 1, 0, 0));
        assert!(
            in_range(MIN_TIMESTAMP)
                && !in_range(MAX_TIMESTAMP)
                && !in_range(i64::MAX)
                && !in_range(i64::MIN)
        );
        // Everything around an accepted value stays representable: its month, its New York day, a 366-day bucket.
        for ts in [MIN_TIMESTAMP, MAX_TIMESTAMP - 1] {
            let month = period_of(ts, false);
            assert!(month.start <= ts && ts < month.end && month.end < i64::MAX / 2 * 2);
            let (_, start, end) = ny_day_bounds(ts);
            assert!(start <= ts && ts < end);
            let (_, lo, hi) = Interval::Fixed(366 * NS_PER_DAY).bucket(ts);
            assert!(lo <= ts && ts < hi && hi < i64::MAX);
        }
    }

    #[test]
    fn parses_intervals() {
        assert_eq!(Interval::parse("1s").unwrap(), Interval::Fixed(NS_PER_SEC));
        assert_eq!(
            Interval::parse("15m").unwrap(),
            Interval::Fixed(900 * NS_PER_SEC)
        );
        assert_eq!(
            Interval::parse("15min").unwrap(),
            Interval::Fixed(900 * NS_PER_SEC)
        );
        assert_eq!(
            Interval::parse("1h").unwrap(),
            Interval::Fixed(3600 * NS_PER_SEC)
        );
        assert_eq!(Interval::parse("1d").unwrap(), Interval::NyDay);
        for bad in ["", "s", "0s", "-1s", "1x", "2d", "1.5s", "99999999999999h"] {
            assert!(Interval::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn floors_negative_timestamps_down() {
        assert_eq!(floor_to(-1, NS_PER_SEC), -NS_PER_SEC);
        assert_eq!(floor_to(NS_PER_SEC, NS_PER_SEC), NS_PER_SEC);
    }

    #[test]
    fn ny_days_across_dst() {
        // 2024-03-10 is 23 hours long in New York, 2024-11-03 is 25.
        let (label, start, end) = ny_day_bounds(utc(2024, 3, 10, 12, 0));
        assert_eq!(label, utc(2024, 3, 10, 0, 0));
        assert_eq!(start, utc(2024, 3, 10, 5, 0));
        assert_eq!(end - start, 23 * 3600 * NS_PER_SEC);
        let (_, start, end) = ny_day_bounds(utc(2024, 11, 3, 12, 0));
        assert_eq!(end - start, 25 * 3600 * NS_PER_SEC);
    }

    #[test]
    fn month_boundary_follows_new_york() {
        // 2024-01-31 19:30 ET is 2024-02-01 00:30 UTC and belongs to January.
        assert_eq!(period_key(utc(2024, 2, 1, 0, 30), false), "2024-01");
        assert_eq!(period_key(utc(2024, 2, 1, 5, 0), false), "2024-02");
        assert_eq!(period_key(utc(2024, 12, 31, 0, 0), true), "2024");
        let jan = period_of(utc(2024, 1, 15, 12, 0), false);
        assert_eq!(
            (jan.start, jan.end),
            (utc(2024, 1, 1, 5, 0), utc(2024, 2, 1, 5, 0))
        );
        let mar = period_of(utc(2024, 3, 15, 12, 0), false);
        assert_eq!(mar.end, utc(2024, 4, 1, 4, 0));
        assert_eq!(period_from_key("2024-03", false).unwrap(), mar);
        assert!(period_from_key("2024-13", false).is_err() && period_from_key("24", true).is_err());
        let year = period_of(utc(2024, 7, 1, 0, 0), true);
        assert_eq!(
            (year.start, year.end),
            (utc(2024, 1, 1, 0, 0), utc(2025, 1, 1, 0, 0))
        );
    }
}
