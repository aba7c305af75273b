//! RFC-3339 timestamps (`2022-01-03T09:00:00.086175744Z`) to UTC nanoseconds, with a one-date cache: a page's
//! timestamps mostly share one date, so its day number is computed once.

/// Parses an RFC-3339 timestamp (`2022-01-03T09:00:00.086175744Z`, 0-9 fractional digits, `Z` or `±HH:MM`) to UTC
/// nanoseconds.
///
/// # Errors
/// A message describing what is wrong.
pub fn parse_rfc3339(text: &str) -> std::result::Result<i64, String> {
    parse_timestamp(text.as_bytes()).ok_or_else(|| format!("bad RFC-3339 timestamp {text:?}"))
}

/// Digits `b[at..at + n]` as a number, or None when one is not a digit.
#[inline]
fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let mut v = 0i64;
    for &c in b.get(at..at + n)? {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + i64::from(d);
    }
    Some(v)
}

#[inline]
pub(super) fn parse_timestamp(b: &[u8]) -> Option<i64> {
    parse_timestamp_with(b, &mut DayCache::default())
}

/// The last date parsed and its day number: a page's timestamps mostly share one date.
#[derive(Default)]
pub(super) struct DayCache {
    date: [u8; 10],
    days: i64,
    valid: bool,
}

/// Days in `month` (1-12) of the proleptic Gregorian `year`.
#[inline]
fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` prefix (Howard Hinnant's algorithm); None for a date that does not
/// exist (`2024-02-30`).
#[inline]
fn civil_days(b: &[u8]) -> Option<i64> {
    if b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (digits(b, 0, 4)?, digits(b, 5, 2)?, digits(b, 8, 2)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

#[inline]
pub(super) fn parse_timestamp_with(b: &[u8], cache: &mut DayCache) -> Option<i64> {
    if b.len() < 20 || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let days = if cache.valid && cache.date[..] == b[..10] {
        cache.days
    } else {
        let days = civil_days(b)?;
        cache.date.copy_from_slice(&b[..10]);
        cache.days = days;
        cache.valid = true;
        days
    };
    let (hour, minute, second) = (digits(b, 11, 2)?, digits(b, 14, 2)?, digits(b, 17, 2)?);
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut pos = 19;
    let mut nanos = 0i64;
    if b.get(pos) == Some(&b'.') {
        pos += 1;
        let start = pos;
        while pos < b.len() && b[pos].is_ascii_digit() {
            pos += 1;
        }
        let count = pos - start;
        if count == 0 || count > 9 {
            return None;
        }
        nanos = digits(b, start, count)? * POW10_I64[9 - count];
    }
    let offset = match b.get(pos) {
        Some(b'Z' | b'z') if pos + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if pos + 6 == b.len() && b[pos + 3] == b':' => {
            // RFC 3339 offsets are at most 23:59 (real zones stay within ±14:00).
            let (hours, mins) = (digits(b, pos + 1, 2)?, digits(b, pos + 4, 2)?);
            if hours > 23 || mins > 59 {
                return None;
            }
            let minutes = hours * 60 + mins;
            if sign == b'+' {
                minutes
            } else {
                -minutes
            }
        }
        _ => return None,
    };
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset * 60;
    seconds.checked_mul(1_000_000_000)?.checked_add(nanos)
}

const POW10_I64: [i64; 10] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_keep_nanoseconds_and_accept_any_fraction() {
        let base = parse_rfc3339("2022-01-03T09:00:00Z").unwrap();
        assert_eq!(base, 1_641_200_400_000_000_000);
        assert_eq!(
            parse_rfc3339("2022-01-03T09:00:00.086175744Z").unwrap(),
            base + 86_175_744
        );
        assert_eq!(
            parse_rfc3339("2022-01-03T09:00:00.24483968Z").unwrap(),
            base + 244_839_680
        );
        assert_eq!(
            parse_rfc3339("2022-01-03T09:00:00.9Z").unwrap(),
            base + 900_000_000
        );
        assert_eq!(parse_rfc3339("2022-01-03T04:00:00-05:00").unwrap(), base);
        for bad in [
            "",
            "2022-01-03",
            "2022-01-03T09:00:00",
            "2022-01-03T09:00:00.Z",
            "2022-13-03T09:00:00Z",
            "2022-01-03T09:00:00.1234567890Z",
            "2024-02-30T09:00:00Z",
            "2023-02-29T09:00:00Z",
            "2024-04-31T09:00:00Z",
            "2024-01-03T09:00:00+25:00",
            "2024-01-03T09:00:00-04:60",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
        // Leap days exist where the calendar has them.
        assert!(parse_rfc3339("2024-02-29T09:00:00Z").is_ok());
        assert!(parse_rfc3339("2000-02-29T09:00:00Z").is_ok());
        assert!(parse_rfc3339("1900-02-29T09:00:00Z").is_err());
        assert!(parse_rfc3339("2024-01-03T09:00:00+23:59").is_ok());
    }
}
