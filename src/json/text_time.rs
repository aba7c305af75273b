//! Timestamps that databases and `pandas.to_sql` store as text (offset optional, or a bare date).

use arrow_array::{Array, TimestampNanosecondArray};

use super::timestamp::{parse_timestamp_with, DayCache};
use crate::error::{Error, Result};

/// Parses timestamps stored as text by databases and `pandas.to_sql`: `YYYY-MM-DD[ T]HH:MM:SS[.f]` with an optional
/// `Z` or `±HH:MM` offset, or a bare date. Text without an offset is taken as UTC; the flag says whether any was.
///
/// # Errors
/// [`Error::InvalidValue`] naming the first row that is not such a timestamp (nulls included).
pub fn text_timestamps(
    values: &arrow_array::StringArray,
    column: &str,
) -> Result<(TimestampNanosecondArray, bool)> {
    let mut out = Vec::with_capacity(values.len());
    let mut naive = false;
    let mut cache = DayCache::default();
    for row in 0..values.len() {
        let bad = || {
            Error::invalid(
                column,
                row as u64,
                format!(
                    "{:?} is not an ISO 8601 timestamp",
                    values.is_valid(row).then(|| values.value(row))
                ),
            )
        };
        if values.is_null(row) {
            return Err(bad());
        }
        let text = values.value(row).as_bytes();
        let ts = if let Some(ts) = parse_timestamp_with(text, &mut cache) {
            ts
        } else {
            // No offset (or a bare date): read as UTC.
            let mut padded = [0u8; 40];
            let with_zone: &[u8] = if text.len() == 10 && text.len() + 10 <= padded.len() {
                padded[..10].copy_from_slice(text);
                padded[10..20].copy_from_slice(b"T00:00:00Z");
                &padded[..20]
            } else if text.len() < padded.len() {
                padded[..text.len()].copy_from_slice(text);
                padded[text.len()] = b'Z';
                &padded[..=text.len()]
            } else {
                return Err(bad());
            };
            naive = true;
            parse_timestamp_with(with_zone, &mut cache).ok_or_else(bad)?
        };
        out.push(ts);
    }
    Ok((
        TimestampNanosecondArray::from(out).with_timezone("UTC"),
        naive,
    ))
}
