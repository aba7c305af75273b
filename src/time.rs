//! UTC nanosecond arithmetic: bar intervals, flooring to an interval, and the New York calendar date that decides a
//! daily bar's label and the lake file (month or year) a row belongs to. This is the one place that rule lives.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone};
use chrono_tz::America::New_York;

use crate::error::{Error, Result};

/// Nanoseconds per second.
pub const NS_PER_SEC: i64 = 1_000_000_000;
/// Nanoseconds per day.
pub const NS_PER_DAY: i64 = 86_400 * NS_PER_SEC;

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

/// The lake period key of a row: `YYYY-MM` of its New York date, or `YYYY` for daily bars whose timestamp is
/// already a date label (SPEC §1).
#[must_use]
pub fn period_key(ts: i64, yearly_label: bool) -> String {
    if yearly_label {
        let date = DateTime::from_timestamp_nanos(ts).date_naive();
        format!("{:04}", date.year())
    } else {
        let date = ny_date(ts);
        format!("{:04}-{:02}", date.year(), date.month())
    }
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
    }
}
