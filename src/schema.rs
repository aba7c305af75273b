//! The canonical Arrow schemas (SPEC §2) and the input checks that turn an arbitrary Arrow column into the
//! plain buffers the kernels read. Every error names the column and the first offending row.

use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampNanosecondType};
use arrow_array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow_buffer::{BooleanBufferBuilder, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::error::{Error, Result};

/// The Arrow type of every stored timestamp: nanoseconds, UTC.
#[must_use]
pub fn utc_ns() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

/// Schema of bars: `symbol, timestamp, open, high, low, close, volume`, then `trade_count` for sub-minute bars
/// or `vwap, trade_count` (both nullable) for bars of a minute and longer.
#[must_use]
pub fn bar_schema(with_vwap: bool) -> SchemaRef {
    let mut fields = vec![
        Field::new("symbol", DataType::Utf8, true),
        Field::new("timestamp", utc_ns(), false),
        Field::new("open", DataType::Float64, false),
        Field::new("high", DataType::Float64, false),
        Field::new("low", DataType::Float64, false),
        Field::new("close", DataType::Float64, false),
        Field::new("volume", DataType::Int64, false),
    ];
    if with_vwap {
        fields.push(Field::new("vwap", DataType::Float64, true));
        fields.push(Field::new("trade_count", DataType::Int64, true));
    } else {
        fields.push(Field::new("trade_count", DataType::Int64, false));
    }
    Arc::new(Schema::new(fields))
}

/// Schema of best quotes per second (SPEC §2).
#[must_use]
pub fn quote_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("symbol", DataType::Utf8, true),
        Field::new("timestamp", utc_ns(), false),
        Field::new("bid_price", DataType::Float64, false),
        Field::new("bid_size", DataType::Int64, false),
        Field::new("ask_price", DataType::Float64, false),
        Field::new("ask_size", DataType::Int64, false),
        Field::new("spread", DataType::Float64, false),
        Field::new("exchange", DataType::Utf8, true),
        Field::new("bid_exchange", DataType::Utf8, true),
        Field::new("ask_exchange", DataType::Utf8, true),
    ]))
}

/// Schema of raw trades (SPEC §2 trades; also what an API trades page parses to).
#[must_use]
pub fn trade_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("symbol", DataType::Utf8, false),
        Field::new("timestamp", utc_ns(), false),
        Field::new("price", DataType::Float64, false),
        Field::new("size", DataType::Int64, false),
        Field::new("exchange", DataType::Utf8, true),
        Field::new("id", DataType::Int64, true),
        Field::new("conditions", conditions_type(), true),
        Field::new("tape", DataType::Utf8, true),
        Field::new("update", DataType::Utf8, true),
    ]))
}

/// The type of a condition-code column: a list of strings.
#[must_use]
pub fn conditions_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
}

fn present(batch: &RecordBatch) -> String {
    let names: Vec<&str> = batch
        .schema_ref()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    names.join(", ")
}

/// Refuses a batch with two columns of the same name: every lookup by name would silently take the first.
///
/// # Errors
/// [`Error::InvalidArgument`] naming the repeated column.
pub fn unique_columns(batch: &RecordBatch) -> Result<()> {
    let fields = batch.schema_ref().fields();
    for (i, field) in fields.iter().enumerate() {
        if fields[..i].iter().any(|f| f.name() == field.name()) {
            return Err(Error::InvalidArgument(format!(
                "the input has more than one column named '{}'",
                field.name()
            )));
        }
    }
    Ok(())
}

/// The column called `name`, or [`Error::MissingColumn`].
///
/// # Errors
/// When the batch has no such column.
pub fn required<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| Error::MissingColumn {
            column: name.to_owned(),
            present: present(batch),
        })
}

fn first_null(array: &dyn Array, column: &str, row_offset: u64) -> Result<()> {
    if array.null_count() == 0 {
        return Ok(());
    }
    let row = (0..array.len()).find(|&i| array.is_null(i)).unwrap_or(0);
    Err(Error::invalid(
        column,
        row_offset + row as u64,
        "null value",
    ))
}

fn type_error(column: &str, expected: &str, found: &DataType) -> Error {
    Error::ColumnType {
        column: column.to_owned(),
        expected: expected.to_owned(),
        found: found.to_string(),
    }
}

/// Timestamps as UTC nanoseconds. Any unit is accepted; tz-naive input only with `assume_utc`.
///
/// # Errors
/// Wrong type, naive timestamps without `assume_utc`, nulls, or values outside the nanosecond range.
pub fn timestamps_ns(
    array: &ArrayRef,
    column: &str,
    assume_utc: bool,
    row_offset: u64,
) -> Result<ScalarBuffer<i64>> {
    let DataType::Timestamp(unit, tz) = array.data_type() else {
        return Err(type_error(
            column,
            "a timestamp with a time zone",
            array.data_type(),
        ));
    };
    if tz.is_none() && !assume_utc {
        return Err(Error::ColumnType {
            column: column.to_owned(),
            expected:
                "a time-zone-aware timestamp (pass assume_utc=True if these naive values are UTC)"
                    .to_owned(),
            found: array.data_type().to_string(),
        });
    }
    first_null(array.as_ref(), column, row_offset)?;
    let factor: i64 = match unit {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => {
            return Ok(array
                .as_primitive::<TimestampNanosecondType>()
                .values()
                .clone());
        }
    };
    let raw = array.to_data();
    let values: &[i64] = raw.buffer::<i64>(0);
    let values = &values[..array.len()];
    let mut out = Vec::with_capacity(values.len());
    for (i, v) in values.iter().enumerate() {
        let ns = v.checked_mul(factor).ok_or_else(|| {
            Error::invalid(
                column,
                row_offset + i as u64,
                "timestamp outside the nanosecond range (1677-2262)",
            )
        })?;
        out.push(ns);
    }
    Ok(out.into())
}

/// A float64 view of a numeric column (floats, integers and decimals are converted).
///
/// # Errors
/// Non-numeric types and nulls.
pub fn f64_values(array: &ArrayRef, column: &str, row_offset: u64) -> Result<ScalarBuffer<f64>> {
    let dt = array.data_type();
    if !(dt.is_numeric()) {
        return Err(type_error(column, "a number (float64)", dt));
    }
    first_null(array.as_ref(), column, row_offset)?;
    if dt == &DataType::Float64 {
        return Ok(array.as_primitive::<Float64Type>().values().clone());
    }
    let cast = arrow_cast::cast(array, &DataType::Float64)?;
    first_null(cast.as_ref(), column, row_offset)?;
    Ok(cast.as_primitive::<Float64Type>().values().clone())
}

/// An int64 view of an integer column. Floats are accepted when every value is a whole number.
///
/// # Errors
/// Non-numeric types, nulls, fractional or non-finite floats, unsigned values above the int64 range.
pub fn i64_values(array: &ArrayRef, column: &str, row_offset: u64) -> Result<ScalarBuffer<i64>> {
    let dt = array.data_type();
    first_null(array.as_ref(), column, row_offset)?;
    if dt == &DataType::Int64 {
        return Ok(array.as_primitive::<Int64Type>().values().clone());
    }
    if dt.is_integer() {
        let cast = arrow_cast::cast(array, &DataType::Int64)?;
        if let Some(row) = (0..cast.len()).find(|&i| cast.is_null(i)) {
            return Err(Error::invalid(
                column,
                row_offset + row as u64,
                "value above the int64 range",
            ));
        }
        return Ok(cast.as_primitive::<Int64Type>().values().clone());
    }
    if dt.is_floating() {
        let floats = f64_values(array, column, row_offset)?;
        let mut out = Vec::with_capacity(floats.len());
        for (i, &v) in floats.iter().enumerate() {
            if !(v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e18) {
                return Err(Error::invalid(
                    column,
                    row_offset + i as u64,
                    format!("{v} is not a whole number"),
                ));
            }
            out.push(v as i64);
        }
        return Ok(out.into());
    }
    Err(type_error(column, "an integer (int64)", dt))
}

/// A UTF-8 view of a string-like column (string, large string, string view, dictionary of strings).
/// Nulls are kept; callers decide whether they are allowed.
///
/// # Errors
/// Non-string types.
pub fn strings(array: &ArrayRef, column: &str) -> Result<StringArray> {
    let dt = array.data_type();
    let is_text =
        |t: &DataType| matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
    let ok = is_text(dt) || matches!(dt, DataType::Dictionary(_, v) if is_text(v));
    if !ok {
        return Err(type_error(column, "strings", dt));
    }
    if dt == &DataType::Utf8 {
        return Ok(array.as_string::<i32>().clone());
    }
    Ok(arrow_cast::cast(array, &DataType::Utf8)?
        .as_string::<i32>()
        .clone())
}

/// The end of the run of equal values starting at row `start` (the first row after it that differs, or the
/// length): nulls equal only nulls. Long runs are compared 256 rows at a time (value lengths from the offsets,
/// bytes against the value repeated), so a constant symbol column costs a fraction of a nanosecond per row.
#[must_use]
pub fn run_end(strings: &StringArray, start: usize) -> usize {
    const BLOCK: usize = 256;
    let n = strings.len();
    if start >= n {
        return n;
    }
    let same = |i: usize| match (strings.is_valid(start), strings.is_valid(i)) {
        (true, true) => strings.value(i) == strings.value(start),
        (a, b) => a == b,
    };
    let mut end = start + 1;
    // Row by row first: interleaved symbols make short runs, not worth a block.
    while end < n && end < start + 8 {
        if !same(end) {
            return end;
        }
        end += 1;
    }
    if strings.null_count() == 0 {
        let first = strings.value(start).as_bytes();
        let len = first.len();
        let pattern = first.repeat(BLOCK);
        let offsets = strings.value_offsets();
        let bytes = strings.value_data();
        while end + BLOCK <= n {
            let block = &offsets[end..=end + BLOCK];
            let lengths_ok = block
                .windows(2)
                .fold(true, |ok, w| ok & (w[1] - w[0] == len as i32));
            let from = block[0] as usize;
            if !lengths_ok || bytes[from..from + BLOCK * len] != pattern[..] {
                break;
            }
            end += BLOCK;
        }
    }
    while end < n && same(end) {
        end += 1;
    }
    end
}

/// The symbol column of kernel output, kept as runs of equal values (`None`: a run of nulls) while rows are
/// emitted, since a run of one symbol emits many rows.
#[derive(Default, Debug)]
pub struct SymbolRuns(Vec<(Option<String>, usize)>);

impl SymbolRuns {
    /// Adds `rows` rows of `symbol`.
    pub fn add(&mut self, symbol: Option<&str>, rows: usize) {
        if rows == 0 {
            return;
        }
        match self.0.last_mut() {
            Some((last, n)) if last.as_deref() == symbol => *n += rows,
            _ => self.0.push((symbol.map(str::to_owned), rows)),
        }
    }

    /// Appends the rows of `more`.
    pub fn append(&mut self, more: &Self) {
        for (symbol, rows) in &more.0 {
            self.add(symbol.as_deref(), *rows);
        }
    }

    /// The column.
    #[must_use]
    pub fn finish(&self) -> StringArray {
        let rows = self.0.iter().map(|r| r.1).sum();
        let bytes: usize = self
            .0
            .iter()
            .map(|(s, n)| s.as_ref().map_or(0, String::len) * n)
            .sum();
        if i32::try_from(bytes).is_err() {
            // Past 32-bit offsets: the builder reports it.
            let mut builder = StringBuilder::with_capacity(rows, bytes);
            for (value, n) in &self.0 {
                for _ in 0..*n {
                    builder.append_option(value.as_deref());
                }
            }
            return builder.finish();
        }
        // Runs of one value: offsets and bytes written directly (a builder call per row is most of the cost of
        // a dense output's symbol column).
        let mut offsets: Vec<i32> = crate::huge_pages::with_capacity(rows + 1);
        let mut values: Vec<u8> = crate::huge_pages::with_capacity(bytes);
        let mut end = 0i32;
        offsets.push(end);
        for (value, n) in &self.0 {
            let text = value.as_deref().unwrap_or("").as_bytes();
            let len = text.len() as i32;
            for _ in 0..*n {
                values.extend_from_slice(text);
                end += len;
                offsets.push(end);
            }
        }
        let nulls = self.0.iter().any(|r| r.0.is_none()).then(|| {
            let mut valid = BooleanBufferBuilder::new(rows);
            for (value, n) in &self.0 {
                valid.append_n(*n, value.is_some());
            }
            NullBuffer::new(valid.finish())
        });
        StringArray::new(
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            values.into(),
            nulls,
        )
    }
}

/// Like [`strings`], but nulls are an error.
///
/// # Errors
/// Non-string types and nulls.
pub fn strings_not_null(array: &ArrayRef, column: &str, row_offset: u64) -> Result<StringArray> {
    let out = strings(array, column)?;
    first_null(&out, column, row_offset)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Float32Array, Int32Array, TimestampMillisecondArray, UInt64Array};

    fn batch(cols: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(cols).unwrap()
    }

    #[test]
    fn run_end_matches_a_row_by_row_scan() {
        // Runs of every length around the 8-row and 256-row steps, a different value at every offset of a block,
        // values that differ only in length or only in bytes, nulls.
        let mut rng = crate::test_rng::Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..300 {
            let mut values: Vec<Option<&str>> = Vec::new();
            while values.len() < 1500 {
                let v = [Some("SPY"), Some("SPX"), Some("SP"), Some("SPYY"), None]
                    [rng.below(5) as usize];
                let len = [1, 7, 8, 9, 255, 256, 257, 600][rng.below(8) as usize];
                values.extend(std::iter::repeat_n(v, len));
            }
            let strings = StringArray::from(values.clone());
            for start in [0, 1, 100, 777, 1499] {
                let naive = (start + 1..values.len())
                    .find(|&i| values[i] != values[start])
                    .unwrap_or(values.len());
                assert_eq!(run_end(&strings, start), naive, "start {start}");
                // A slice (offsets not starting at zero) gives the same answer, shifted.
                let (cut, sliced) = (3, strings.slice(3, strings.len() - 6));
                let at = start.min(sliced.len() - 1);
                let naive = (at + 1..sliced.len())
                    .find(|&i| values[i + cut] != values[at + cut])
                    .unwrap_or(sliced.len());
                assert_eq!(run_end(&sliced, at), naive, "sliced, start {at}");
            }
        }
    }

    #[test]
    fn converts_units_and_rejects_naive() {
        let ms: ArrayRef =
            Arc::new(TimestampMillisecondArray::from(vec![1, 2]).with_timezone("UTC"));
        assert_eq!(
            timestamps_ns(&ms, "timestamp", false, 0).unwrap().to_vec(),
            vec![1_000_000, 2_000_000]
        );
        let naive: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![1]));
        let err = timestamps_ns(&naive, "timestamp", false, 0)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("timestamp") && err.contains("assume_utc"),
            "{err}"
        );
        assert!(timestamps_ns(&naive, "timestamp", true, 0).is_ok());
    }

    #[test]
    fn numeric_conversions_name_column_and_row() {
        let f: ArrayRef = Arc::new(Float32Array::from(vec![1.5, 2.0]));
        assert_eq!(f64_values(&f, "price", 0).unwrap().to_vec(), vec![1.5, 2.0]);
        let i: ArrayRef = Arc::new(Int32Array::from(vec![Some(1), None]));
        let err = i64_values(&i, "size", 10).unwrap_err().to_string();
        assert!(err.contains("'size'") && err.contains("row 11"), "{err}");
        let big: ArrayRef = Arc::new(UInt64Array::from(vec![1, u64::MAX]));
        let err = i64_values(&big, "size", 0).unwrap_err().to_string();
        assert!(err.contains("row 1"), "{err}");
        let frac: ArrayRef = Arc::new(arrow_array::Float64Array::from(vec![1.0, 1.5]));
        assert!(i64_values(&frac, "size", 0)
            .unwrap_err()
            .to_string()
            .contains("row 1"));
    }

    #[test]
    fn missing_column_lists_what_is_there() {
        let b = batch(vec![(
            "price",
            Arc::new(Float32Array::from(vec![1.0])) as ArrayRef,
        )]);
        let err = required(&b, "timestamp").unwrap_err().to_string();
        assert!(
            err.contains("'timestamp'") && err.contains("price"),
            "{err}"
        );
    }
}
