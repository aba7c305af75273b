//! Repeated trades in a download: the same print delivered twice (an overlapping page, a server retry) must be
//! counted once (RELIABILITY.md §3 #2). Trades are keyed by (symbol, exchange, id), and only when the id exists;
//! never by content alone, because byte-identical prints without an id are legitimate separate trades.
//!
//! Policy: a trade whose key was already seen with the same payload (timestamp, price, size, conditions, tape,
//! update) is dropped and counted as a duplicate; a trade whose key was seen with a *different* payload is kept
//! (ids are only unique per venue and day, and corrections carry their own id) and counted as a conflict, so that
//! the caller can report it. The filter streams: its memory is one entry per distinct keyed trade seen.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampNanosecondType};
use arrow_array::{Array, BooleanArray, RecordBatch};
use arrow_select::filter::filter_record_batch;

use crate::error::{Error, Result};
use crate::schema::{required, trade_schema};

/// Streaming duplicate filter for raw trades (the columns of [`crate::schema::trade_schema`]).
#[derive(Debug, Default)]
pub struct TradeDedup {
    /// (symbol, exchange, id) -> payload hash of the first trade seen with that key.
    seen: HashMap<(String, String, i64), u64>,
    /// Trades dropped because an identical one was seen before.
    pub duplicates: u64,
    /// Trades kept although their key was seen before with another payload.
    pub conflicts: u64,
}

fn payload_hash(batch: &RecordBatch, row: usize) -> Result<u64> {
    let mut h = DefaultHasher::new();
    let ts = required(batch, "timestamp")?.as_primitive::<TimestampNanosecondType>();
    ts.value(row).hash(&mut h);
    let price = required(batch, "price")?.as_primitive::<Float64Type>();
    price.value(row).to_bits().hash(&mut h);
    required(batch, "size")?
        .as_primitive::<Int64Type>()
        .value(row)
        .hash(&mut h);
    for name in ["tape", "update"] {
        if let Some(col) = batch.column_by_name(name) {
            let col = col.as_string::<i32>();
            col.is_valid(row).then(|| col.value(row)).hash(&mut h);
        }
    }
    if let Some(col) = batch.column_by_name("conditions") {
        let list = col.as_list::<i32>();
        if list.is_valid(row) {
            let codes = list.value(row);
            let codes = codes.as_string::<i32>();
            for i in 0..codes.len() {
                codes.is_valid(i).then(|| codes.value(i)).hash(&mut h);
            }
        }
        list.is_valid(row).hash(&mut h);
    }
    Ok(h.finish())
}

impl TradeDedup {
    /// A filter that has seen nothing.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The rows of `batch` that are not repeats of a trade seen before (in this batch or an earlier one).
    ///
    /// # Errors
    /// A missing column ([`Error::MissingColumn`]) or one of another type than raw trades have ([`Error::ColumnType`]).
    pub fn push(&mut self, batch: &RecordBatch) -> Result<RecordBatch> {
        // The typed accessors below rely on the raw-trade column types.
        for field in trade_schema().fields() {
            if let Some(col) = batch.column_by_name(field.name()) {
                if col.data_type() != field.data_type() {
                    return Err(Error::ColumnType {
                        column: field.name().clone(),
                        expected: field.data_type().to_string(),
                        found: col.data_type().to_string(),
                    });
                }
            }
        }
        let symbol = required(batch, "symbol")?.as_string::<i32>();
        let exchange = required(batch, "exchange")?.as_string::<i32>();
        let id = required(batch, "id")?.as_primitive::<Int64Type>();
        let mut keep = Vec::with_capacity(batch.num_rows());
        let mut dropped = 0u64;
        for row in 0..batch.num_rows() {
            if id.is_null(row) {
                keep.push(true);
                continue;
            }
            let venue = if exchange.is_valid(row) {
                exchange.value(row)
            } else {
                ""
            };
            let key = (
                symbol.value(row).to_owned(),
                venue.to_owned(),
                id.value(row),
            );
            let payload = payload_hash(batch, row)?;
            match self.seen.get(&key) {
                None => {
                    self.seen.insert(key, payload);
                    keep.push(true);
                }
                Some(&first) if first == payload => {
                    dropped += 1;
                    keep.push(false);
                }
                Some(_) => {
                    self.conflicts += 1;
                    keep.push(true);
                }
            }
        }
        self.duplicates += dropped;
        if dropped == 0 {
            return Ok(batch.clone());
        }
        Ok(filter_record_batch(batch, &BooleanArray::from(keep))?)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::builder::{ListBuilder, StringBuilder};
    use arrow_array::{ArrayRef, Float64Array, Int64Array, StringArray, TimestampNanosecondArray};

    use super::*;

    fn trades(rows: &[(&str, &str, Option<i64>, i64, f64)]) -> RecordBatch {
        let mut conditions = ListBuilder::new(StringBuilder::new());
        for _ in rows {
            conditions.values().append_value("@");
            conditions.append(true);
        }
        let cols: Vec<(&str, ArrayRef)> = vec![
            (
                "symbol",
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            ),
            (
                "timestamp",
                Arc::new(
                    TimestampNanosecondArray::from_iter_values(rows.iter().map(|r| r.3))
                        .with_timezone("UTC"),
                ),
            ),
            (
                "price",
                Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.4))),
            ),
            (
                "size",
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|_| 100))),
            ),
            (
                "exchange",
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
            ),
            (
                "id",
                Arc::new(rows.iter().map(|r| r.2).collect::<Int64Array>()),
            ),
            ("conditions", Arc::new(conditions.finish())),
            (
                "tape",
                Arc::new(StringArray::from_iter_values(rows.iter().map(|_| "C"))),
            ),
            (
                "update",
                Arc::new(rows.iter().map(|_| None::<&str>).collect::<StringArray>()),
            ),
        ];
        RecordBatch::try_from_iter(cols).unwrap()
    }

    #[test]
    fn repeats_across_batches_are_dropped_once() {
        let mut dedup = TradeDedup::new();
        let first = trades(&[("A", "Q", Some(1), 10, 1.0), ("A", "Q", Some(2), 11, 1.0)]);
        assert_eq!(dedup.push(&first).unwrap().num_rows(), 2);
        // The second page repeats id 2 (same payload), brings id 3, and id 2 on another venue.
        let second = trades(&[
            ("A", "Q", Some(2), 11, 1.0),
            ("A", "Q", Some(3), 12, 1.0),
            ("A", "D", Some(2), 12, 1.0),
        ]);
        let out = dedup.push(&second).unwrap();
        let ids = out.column(5).as_primitive::<Int64Type>();
        assert_eq!(ids.values(), &[3, 2]);
        assert_eq!((dedup.duplicates, dedup.conflicts), (1, 0));
    }

    #[test]
    fn no_id_is_never_deduplicated_and_other_payloads_are_kept() {
        let mut dedup = TradeDedup::new();
        let batch = trades(&[
            ("A", "Q", None, 10, 1.0),
            ("A", "Q", None, 10, 1.0),
            ("A", "Q", Some(7), 10, 1.0),
            ("A", "Q", Some(7), 10, 1.01),
            ("B", "Q", Some(7), 10, 1.0),
        ]);
        assert_eq!(dedup.push(&batch).unwrap().num_rows(), 5);
        assert_eq!((dedup.duplicates, dedup.conflicts), (0, 1));
    }
}
