//! The lake's rules for data (SPEC §1, §2, §4): the kinds of file and their schemas, symbol validation, conforming
//! an incoming table to a kind's schema, splitting it into one part per (symbol, period) file, checking the rows of
//! a file, and merging incoming rows into a stored file before it is published through [`crate::parquet_io`].

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampNanosecondType};
use arrow_array::{
    new_null_array, Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampNanosecondArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow_select::interleave::interleave;
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{Error, Result};
use crate::parquet_io::WriteOptions;
use crate::rows::Rows;
use crate::schema::{self, bar_schema, quote_schema, trade_schema};
use crate::store::{Change, Published, Store};
use crate::time::{self, period_of, Interval, Period, NS_PER_DAY, NS_PER_SEC};

/// A kind of lake file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `bars/1s`: one file per symbol per month.
    Bars1s,
    /// `bars/1m`: one file per symbol per month.
    Bars1m,
    /// `bars/1d`: one file per symbol per year; timestamps are date labels.
    Bars1d,
    /// `quotes`: best quote per second, one file per symbol per month.
    Quotes,
    /// `trades`: raw trades, equal timestamps allowed, one file per symbol per month.
    Trades,
    /// `bars/<interval>` for another interval of whole seconds under a day (`bars/5s`, `bars/15m`, `bars/1h`):
    /// one file per symbol per month, the schema of 1s bars (`vwap` from one minute up). The count is the
    /// interval in seconds (never 1 or 60: those are [`Kind::Bars1s`] and [`Kind::Bars1m`]).
    Bars(u32),
}

/// The canonical name of an interval of `seconds` (`5s`, `15m`, `1h`): the largest whole unit.
#[must_use]
pub fn interval_name(seconds: u32) -> String {
    if seconds % 3600 == 0 {
        format!("{}h", seconds / 3600)
    } else if seconds % 60 == 0 {
        format!("{}m", seconds / 60)
    } else {
        format!("{seconds}s")
    }
}

impl Kind {
    /// Parses `bars/1s`, `bars/1m`, `bars/1d`, `quotes` or `trades` (the directory under the root).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for anything else.
    pub fn parse(text: &str) -> Result<Self> {
        let unknown = || {
            Error::InvalidArgument(format!(
                "unknown lake kind {text:?}: use bars/1s, bars/1m, bars/1d, quotes, trades or bars/<interval> \
                 (an interval of whole seconds under a day, e.g. bars/5s, bars/15m, bars/1h)"
            ))
        };
        match text {
            "bars/1s" => Ok(Self::Bars1s),
            "bars/1m" => Ok(Self::Bars1m),
            "bars/1d" => Ok(Self::Bars1d),
            "quotes" => Ok(Self::Quotes),
            "trades" => Ok(Self::Trades),
            _ => {
                let interval = text.strip_prefix("bars/").ok_or_else(unknown)?;
                let Ok(Interval::Fixed(len)) = Interval::parse(interval) else {
                    return Err(unknown());
                };
                let seconds = u32::try_from(len / NS_PER_SEC)
                    .ok()
                    .filter(|&s| {
                        len % NS_PER_SEC == 0 && s > 0 && i64::from(s) * NS_PER_SEC < NS_PER_DAY
                    })
                    .ok_or_else(unknown)?;
                let canonical = interval_name(seconds);
                if canonical != interval {
                    return Err(Error::InvalidArgument(format!(
                        "lake kind {text:?}: the folder of that interval is bars/{canonical}"
                    )));
                }
                Ok(match seconds {
                    1 => Self::Bars1s,
                    60 => Self::Bars1m,
                    s => Self::Bars(s),
                })
            }
        }
    }

    /// The directory of this kind under the lake root.
    #[must_use]
    pub fn dir(self) -> String {
        match self {
            Self::Bars1s => "bars/1s".into(),
            Self::Bars1m => "bars/1m".into(),
            Self::Bars1d => "bars/1d".into(),
            Self::Quotes => "quotes".into(),
            Self::Trades => "trades".into(),
            Self::Bars(seconds) => format!("bars/{}", interval_name(seconds)),
        }
    }

    /// True for daily bars, whose files hold a year and whose timestamps are date labels.
    #[must_use]
    pub fn yearly(self) -> bool {
        self == Self::Bars1d
    }

    /// True when timestamps must be unique within a file (everything except raw trades).
    #[must_use]
    pub fn unique_timestamps(self) -> bool {
        self != Self::Trades
    }

    /// Columns written with delta encoding (measured: smaller and faster than a dictionary for these).
    #[must_use]
    pub fn delta_columns(self) -> Vec<String> {
        let names: &[&str] = match self {
            Self::Bars1s | Self::Bars1m | Self::Bars1d | Self::Bars(_) => {
                &["timestamp", "volume", "trade_count"]
            }
            Self::Quotes => &["timestamp"],
            Self::Trades => &["timestamp", "id"],
        };
        names.iter().map(|&n| n.to_owned()).collect()
    }

    /// The unit timestamps are stored in (SPEC §2): bars and best quotes are labelled at whole seconds, so
    /// microseconds lose nothing and every reader (Spark with default settings too) takes them; raw trades keep
    /// nanoseconds.
    #[must_use]
    pub fn timestamp_unit(self) -> TimeUnit {
        match self {
            Self::Trades => TimeUnit::Nanosecond,
            _ => TimeUnit::Microsecond,
        }
    }

    /// The stored schema (SPEC §2): the kernels' output schema with a non-null symbol and timestamps in
    /// [`Kind::timestamp_unit`].
    #[must_use]
    pub fn schema(self) -> SchemaRef {
        let unit = self.timestamp_unit();
        let fields: Vec<Field> = self
            .working_schema()
            .fields()
            .iter()
            .map(|f| {
                let f = f.as_ref().clone();
                if f.name() == "timestamp" {
                    f.with_data_type(DataType::Timestamp(unit, Some("UTC".into())))
                } else {
                    f
                }
            })
            .collect();
        Arc::new(Schema::new(fields))
    }

    /// The schema rows are checked, split and merged in: the stored schema with `timestamp[ns, UTC]` for every
    /// kind, so the period rule and the checks work in one unit. [`to_stored`] converts a batch to
    /// [`Kind::schema`] just before it is encoded.
    #[must_use]
    pub fn working_schema(self) -> SchemaRef {
        let base = match self {
            Self::Bars1s => bar_schema(false),
            Self::Bars1m | Self::Bars1d => bar_schema(true),
            Self::Bars(seconds) => bar_schema(seconds >= 60),
            Self::Quotes => quote_schema(),
            Self::Trades => trade_schema(),
        };
        let fields: Vec<Field> = base
            .fields()
            .iter()
            .map(|f| {
                let f = f.as_ref().clone();
                if f.name() == "symbol" {
                    f.with_nullable(false)
                } else {
                    f
                }
            })
            .collect();
        Arc::new(Schema::new(fields))
    }
}

/// The footer key that records the schema version a file was written with (SPEC §2).
pub const SCHEMA_VERSION_KEY: &str = "ticklake.schema_version";

/// True when `schema` (a stored file's, as read) is exactly `kind`'s stored schema: same column names and types
/// in the same order (nullability and metadata aside).
#[must_use]
pub fn has_stored_types(schema: &Schema, kind: Kind) -> bool {
    let target = kind.schema();
    schema.fields().len() == target.fields().len()
        && schema
            .fields()
            .iter()
            .zip(target.fields())
            .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type())
}

/// Converts a batch in [`Kind::working_schema`] to [`Kind::schema`] (timestamps to the stored unit). Exact:
/// [`conform`] refuses timestamps finer than the stored unit.
///
/// # Errors
/// Arrow cast errors (none for a conformed batch).
pub fn to_stored(batch: &RecordBatch, kind: Kind) -> Result<RecordBatch> {
    let target = kind.schema();
    if batch.schema_ref().fields() == target.fields() {
        return Ok(batch.clone());
    }
    let columns = batch
        .columns()
        .iter()
        .zip(target.fields())
        .map(|(column, field)| {
            if column.data_type() == field.data_type() {
                Ok(Arc::clone(column))
            } else {
                arrow_cast::cast(column, field.data_type())
            }
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(target, columns)?)
}

/// Checks a symbol against SPEC §1: 1-10 characters of `A-Z 0-9 . -`, starting with a letter or digit.
///
/// # Errors
/// [`Error::InvalidArgument`] explaining what is wrong.
pub fn check_symbol(symbol: &str) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '.' || c == '-';
    let first_ok = symbol
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if (1..=10).contains(&symbol.len())
        && first_ok
        && symbol.chars().all(ok_char)
        && !symbol.contains("..")
    {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "invalid symbol {symbol:?}: symbols are 1-10 characters of A-Z, 0-9, '.' and '-', starting with a \
             letter or digit (e.g. \"AAPL\", \"BRK.B\")"
        )))
    }
}

/// Rows checked per block by [`first_where`] and [`first_unordered`]: each block is one branch-free pass the
/// compiler vectorizes; only a block with a hit is searched for the exact row.
const CHECK_BLOCK: usize = 1024;

/// The first index whose value is `bad`.
fn first_where<T: Copy>(values: &[T], bad: impl Fn(T) -> bool) -> Option<usize> {
    values
        .chunks(CHECK_BLOCK)
        .enumerate()
        .find_map(|(k, block)| {
            let hit = block.iter().fold(false, |hit, &v| hit | bad(v));
            hit.then(|| block.iter().position(|&v| bad(v)))
                .flatten()
                .map(|i| k * CHECK_BLOCK + i)
        })
}

/// The first index `i >= 1` with `ts[i]` not after `ts[i - 1]` (`strict`) or before it.
fn first_unordered(ts: &[i64], strict: bool) -> Option<usize> {
    let bad = |a: i64, b: i64| if strict { b <= a } else { b < a };
    (1..ts.len()).step_by(CHECK_BLOCK).find_map(|start| {
        let end = (start + CHECK_BLOCK).min(ts.len());
        let pairs = || ts[start - 1..end - 1].iter().zip(&ts[start..end]);
        let hit = pairs().fold(false, |hit, (&a, &b)| hit | bad(a, b));
        hit.then(|| pairs().position(|(&a, &b)| bad(a, b)))
            .flatten()
            .map(|i| start + i)
    })
}

fn is_price(name: &str) -> bool {
    matches!(
        name,
        "open" | "high" | "low" | "close" | "price" | "bid_price" | "ask_price"
    )
}

fn float_column(array: &ArrayRef, field: &Field) -> Result<ArrayRef> {
    let name = field.name();
    let values: Float64Array = if field.is_nullable() {
        if !array.data_type().is_numeric() {
            return Err(Error::ColumnType {
                column: name.clone(),
                expected: "a number (float64)".into(),
                found: array.data_type().to_string(),
            });
        }
        arrow_cast::cast(array, &DataType::Float64)?
            .as_primitive::<Float64Type>()
            .clone()
    } else {
        Float64Array::new(schema::f64_values(array, name, 0)?, None)
    };
    let price = is_price(name);
    // NaN fails both comparisons; `&` keeps the check branch-free.
    let ok = |v: f64| (if price { v > 0.0 } else { v >= 0.0 }) & (v < f64::INFINITY);
    let raw = values.values();
    // A plain pass over the buffer first (null slots may hold anything); validity is consulted only on a hit.
    if first_where(raw, |v| !ok(v)).is_some() {
        if let Some(row) = (0..raw.len()).find(|&i| values.is_valid(i) && !ok(raw[i])) {
            let what = if price {
                "a finite price > 0"
            } else {
                "a finite value >= 0"
            };
            return Err(Error::invalid(
                name,
                row as u64,
                format!("{} is not {what}", raw[row]),
            ));
        }
    }
    Ok(Arc::new(values))
}

fn int_column(array: &ArrayRef, field: &Field) -> Result<ArrayRef> {
    let name = field.name();
    let values: Int64Array = if field.is_nullable() && array.null_count() > 0 {
        if !array.data_type().is_integer() {
            return Err(Error::ColumnType {
                column: name.clone(),
                expected: "an integer (int64)".into(),
                found: array.data_type().to_string(),
            });
        }
        arrow_cast::cast(array, &DataType::Int64)?
            .as_primitive::<Int64Type>()
            .clone()
    } else {
        Int64Array::new(schema::i64_values(array, name, 0)?, None)
    };
    if name != "id" && first_where(values.values(), |v| v < 0).is_some() {
        if let Some(row) = (0..values.len()).find(|&i| values.is_valid(i) && values.value(i) < 0) {
            return Err(Error::invalid(name, row as u64, "negative value"));
        }
    }
    Ok(Arc::new(values))
}

fn timestamp_column(array: &ArrayRef, name: &str, kind: Kind) -> Result<ArrayRef> {
    let values = schema::timestamps_ns(array, name, false, 0)?;
    // Period and day arithmetic needs every value inside the supported range.
    if let Some(row) = first_where(&values, |t| !time::in_range(t)) {
        return Err(time::out_of_range(name, row as u64, values[row]));
    }
    if kind.timestamp_unit() == TimeUnit::Microsecond {
        if let Some(row) = first_where(&values, |t| t % 1000 != 0) {
            return Err(Error::invalid(
                name,
                row as u64,
                format!(
                    "{} ns is not a whole microsecond; {} stores timestamps in microseconds (rows are labelled \
                     at whole seconds)",
                    values[row],
                    kind.dir()
                ),
            ));
        }
    }
    Ok(Arc::new(
        TimestampNanosecondArray::new(values, None).with_timezone("UTC"),
    ))
}

fn list_column(array: &ArrayRef, field: &Field) -> Result<ArrayRef> {
    let ok = match array.data_type() {
        DataType::List(inner) | DataType::LargeList(inner) | DataType::ListView(inner) => matches!(
            inner.data_type(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(_, _)
        ),
        DataType::Null => true,
        _ => false,
    };
    if !ok {
        return Err(Error::ColumnType {
            column: field.name().clone(),
            expected: "a list of strings".into(),
            found: array.data_type().to_string(),
        });
    }
    Ok(arrow_cast::cast(array, field.data_type())?)
}

/// Converts `batch` to `kind`'s working schema ([`Kind::working_schema`]): columns in order, canonical types (any
/// timestamp unit with a time zone becomes ns UTC; other integer and float widths, large and view strings,
/// dictionaries are converted), and values checked (prices finite and > 0, sizes and counts >= 0, no nulls in
/// required columns, timestamps exact in the kind's stored unit). Missing nullable columns become nulls; a missing
/// `symbol` is filled from `fill_symbol`. Columns pandas adds for an index (`__index_level_N__`) are dropped; any
/// other unknown column is an error, so nothing is silently lost. This is the one rule for what the lake accepts,
/// from a caller and from a stored file alike (the reader conforms foreign files with it too).
///
/// # Errors
/// [`Error::MissingColumn`], [`Error::ColumnType`] or [`Error::InvalidValue`] naming the column (and row).
pub fn conform(batch: &RecordBatch, kind: Kind, fill_symbol: Option<&str>) -> Result<RecordBatch> {
    schema::unique_columns(batch)?;
    let target = kind.working_schema();
    for field in batch.schema_ref().fields() {
        let name = field.name();
        if target.column_with_name(name).is_none() && !name.starts_with("__index_level_") {
            let expected: Vec<&str> = target.fields().iter().map(|f| f.name().as_str()).collect();
            return Err(Error::InvalidArgument(format!(
                "column '{name}' is not part of the {} schema ({}); drop it before writing",
                kind.dir(),
                expected.join(", ")
            )));
        }
    }
    let n = batch.num_rows();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(target.fields().len());
    for field in target.fields() {
        let name = field.name().as_str();
        let Some(array) = batch.column_by_name(name) else {
            if name == "symbol" {
                if let Some(symbol) = fill_symbol {
                    columns.push(Arc::new(StringArray::from(vec![symbol; n])));
                    continue;
                }
            }
            if field.is_nullable() {
                columns.push(new_null_array(field.data_type(), n));
                continue;
            }
            return Err(schema::required(batch, name).err().unwrap_or_else(|| {
                Error::InvalidArgument(format!("missing required column '{name}'"))
            }));
        };
        if array.data_type() == &DataType::Null {
            // An all-null column (e.g. pyarrow's type for an empty list): fine when empty or nullable.
            if n > 0 && !field.is_nullable() {
                return Err(Error::invalid(name, 0, "null value"));
            }
            columns.push(new_null_array(field.data_type(), n));
            continue;
        }
        let converted: ArrayRef = match field.data_type() {
            DataType::Timestamp(_, _) => timestamp_column(array, name, kind)?,
            DataType::Float64 => float_column(array, field)?,
            DataType::Int64 => int_column(array, field)?,
            DataType::Utf8 if field.is_nullable() => Arc::new(schema::strings(array, name)?),
            DataType::Utf8 => Arc::new(schema::strings_not_null(array, name, 0)?),
            _ => list_column(array, field)?,
        };
        columns.push(converted);
    }
    Ok(RecordBatch::try_new(target, columns)?)
}

/// [`conform`] for a table in chunks, each conformed on its own (zero-copy where the types already fit); rows in
/// errors are counted across the chunks.
///
/// # Errors
/// As [`conform`].
pub fn conform_rows(rows: &Rows, kind: Kind, fill_symbol: Option<&str>) -> Result<Rows> {
    if rows.chunks().is_empty() {
        let empty = RecordBatch::new_empty(SchemaRef::clone(rows.schema()));
        return Ok(Rows::from(conform(&empty, kind, fill_symbol)?));
    }
    rows.map(|chunk, start| {
        conform(chunk, kind, fill_symbol).map_err(|e| e.rows_from(start as u64))
    })
}

fn timestamps(batch: &RecordBatch) -> &[i64] {
    batch
        .column(1)
        .as_primitive::<TimestampNanosecondType>()
        .values()
}

fn symbols(batch: &RecordBatch) -> &StringArray {
    batch.column(0).as_string::<i32>()
}

fn order_error(kind: Kind, row: usize, symbol: &str, ts: i64, previous: i64) -> Error {
    let what = if ts == previous && kind.unique_timestamps() {
        "duplicate timestamp"
    } else {
        "timestamp earlier than the previous row"
    };
    Error::invalid(
        "timestamp",
        row as u64,
        format!(
            "{what} for symbol {symbol} ({ts} ns after {previous} ns); lake files are sorted by time{}",
            if kind.unique_timestamps() { " with unique timestamps" } else { "" }
        ),
    )
}

/// A symbol's newest timestamp so far and the row ranges it occupies in the input.
type SymbolRows = (i64, Vec<(usize, usize)>);

/// One file's worth of incoming rows.
#[derive(Debug)]
pub struct Part {
    /// The symbol.
    pub symbol: String,
    /// The file's period.
    pub period: Period,
    /// The rows, in the working schema, sorted: slices of the caller's chunks (rows of interleaved symbols are
    /// gathered into one batch).
    pub rows: Rows,
}

/// Splits conformed rows into one part per (symbol, period), checking symbols, order and uniqueness per symbol
/// (rows of different symbols may interleave), and that daily bars are labelled at 00:00 UTC. Parts come sorted by
/// symbol, then period. A symbol's rows in one run stay zero-copy slices of the input's chunks.
///
/// # Errors
/// [`Error::InvalidValue`] naming the column and the first offending row; [`Error::InvalidArgument`] for a bad
/// symbol.
pub fn partition(input: &Rows, kind: Kind) -> Result<Vec<Part>> {
    let ts = input.values::<TimestampNanosecondType>(1);
    let ts = ts.as_ref();
    let syms = input.column(0)?;
    let syms = syms.as_string::<i32>();
    // symbol -> (last timestamp, row ranges)
    let mut seen: HashMap<&str, SymbolRows> = HashMap::new();
    let mut row = 0;
    while row < ts.len() {
        let symbol = syms.value(row);
        let end = schema::run_end(syms, row);
        if !seen.contains_key(symbol) {
            check_symbol(symbol)
                .map_err(|e| Error::invalid("symbol", row as u64, e.to_string()))?;
        }
        let entry = seen.entry(symbol).or_insert((i64::MIN, Vec::new()));
        let run = &ts[row..end];
        // The run's first row against the symbol's previous run (none yet: anything goes), then within the run.
        let strict = kind.unique_timestamps();
        let follows = entry.1.is_empty()
            || if strict {
                run[0] > entry.0
            } else {
                run[0] >= entry.0
            };
        if !follows {
            return Err(order_error(kind, row, symbol, run[0], entry.0));
        }
        // Whichever problem comes first is the one reported.
        let unordered = first_unordered(run, strict).unwrap_or(usize::MAX);
        let unlabelled = kind
            .yearly()
            .then(|| first_where(run, |t| t.rem_euclid(NS_PER_DAY) != 0))
            .flatten()
            .unwrap_or(usize::MAX);
        if unlabelled < unordered {
            return Err(Error::invalid(
                "timestamp",
                (row + unlabelled) as u64,
                "daily bars are labelled with their trading date at 00:00 UTC",
            ));
        }
        if let Some(&t) = run.get(unordered) {
            return Err(order_error(
                kind,
                row + unordered,
                symbol,
                t,
                run[unordered - 1],
            ));
        }
        entry.0 = run[run.len() - 1];
        entry.1.push((row, end));
        row = end;
    }
    let mut names: Vec<&str> = seen.keys().copied().collect();
    names.sort_unstable();
    let mut parts = Vec::new();
    for name in names {
        let ranges = &seen[name].1;
        let rows = if let [(a, b)] = ranges.as_slice() {
            input.sub(*a, b - a)
        } else {
            Rows::from(input.gather(ranges)?)
        };
        let values = rows.values::<TimestampNanosecondType>(1);
        let ts = values.as_ref();
        let mut start = 0;
        while start < ts.len() {
            let period = period_of(ts[start], kind.yearly());
            let end = start + ts[start..].partition_point(|&t| t < period.end);
            parts.push(Part {
                symbol: name.to_owned(),
                period,
                rows: rows.sub(start, end - start),
            });
            start = end;
        }
    }
    Ok(parts)
}

/// Checks the rows of one stored file: every row has the file's symbol, timestamps are sorted (and unique unless
/// raw trades), and every row belongs to the file's period.
///
/// # Errors
/// [`Error::InvalidValue`] naming the column and the first offending row.
pub fn check_file_rows(rows: &Rows, kind: Kind, symbol: &str, period: &Period) -> Result<()> {
    let mut previous: Option<i64> = None;
    for (i, chunk) in rows.chunks().iter().enumerate() {
        let start = rows.chunk_start(i);
        check_chunk_rows(chunk, kind, symbol, period, previous)
            .map_err(|e| e.rows_from(start as u64))?;
        previous = timestamps(chunk).last().copied();
    }
    Ok(())
}

/// [`check_file_rows`] for one chunk, whose first row follows a row at `previous` (if any).
fn check_chunk_rows(
    batch: &RecordBatch,
    kind: Kind,
    symbol: &str,
    period: &Period,
    previous: Option<i64>,
) -> Result<()> {
    let syms = symbols(batch);
    let wrong = |i: usize| syms.is_null(i) || syms.value(i) != symbol;
    let first_wrong = match syms.len() {
        0 => None,
        _ if wrong(0) => Some(0),
        n => Some(schema::run_end(syms, 0)).filter(|&end| end < n),
    };
    if let Some(row) = first_wrong {
        return Err(Error::invalid(
            "symbol",
            row as u64,
            format!(
                "{:?} in the file of {symbol}",
                syms.is_valid(row).then(|| syms.value(row))
            ),
        ));
    }
    let ts = timestamps(batch);
    let strict = kind.unique_timestamps();
    if let (Some(p), Some(&first)) = (previous, ts.first()) {
        if first < p || (strict && first == p) {
            return Err(order_error(kind, 0, symbol, first, p));
        }
    }
    if let Some(i) = first_unordered(ts, strict) {
        return Err(order_error(kind, i, symbol, ts[i], ts[i - 1]));
    }
    if let Some(row) = first_where(ts, |t| (t < period.start) | (t >= period.end)) {
        return Err(Error::invalid(
            "timestamp",
            row as u64,
            format!(
                "{} ns is outside the file's period {} (New York dates; daily bars: the label's year)",
                ts[row], period.key
            ),
        ));
    }
    Ok(())
}

/// Merges `incoming` into `existing` (both in the stored schema, sorted): stored rows inside any of the `replace`
/// ranges `[start, end)` are dropped first, then stored rows whose timestamp appears in `incoming` are replaced by the
/// incoming ones (all of them, for raw trades with equal timestamps).
///
/// # Errors
/// Arrow errors from the interleave (mismatched schemas).
pub fn merge(
    existing: &RecordBatch,
    incoming: &RecordBatch,
    replace: &[(i64, i64)],
) -> Result<RecordBatch> {
    let (old, new) = (timestamps(existing), timestamps(incoming));
    let dropped = |t: i64| replace.iter().any(|&(a, b)| a <= t && t < b);
    let mut picks: Vec<(usize, usize)> = Vec::with_capacity(old.len() + new.len());
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        if j == new.len() || (i < old.len() && old[i] < new[j]) {
            if !dropped(old[i]) {
                picks.push((0, i));
            }
            i += 1;
        } else if i < old.len() && old[i] == new[j] {
            let t = old[i];
            while i < old.len() && old[i] == t {
                i += 1;
            }
            while j < new.len() && new[j] == t {
                picks.push((1, j));
                j += 1;
            }
        } else {
            picks.push((1, j));
            j += 1;
        }
    }
    let columns = (0..existing.num_columns())
        .map(|c| {
            let sources: [&dyn Array; 2] =
                [existing.column(c).as_ref(), incoming.column(c).as_ref()];
            interleave(&sources, &picks)
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(existing.schema(), columns)?)
}

/// Which lake file: its kind, symbol and period.
#[derive(Clone, Debug)]
pub struct LakeFile {
    /// The kind of file.
    pub kind: Kind,
    /// The symbol.
    pub symbol: String,
    /// The file's period.
    pub period: Period,
}

/// Reads the stored bytes of a lake file (page checksums verified) into one batch, the footer's key-value
/// metadata on its schema.
///
/// # Errors
/// [`Error::CorruptFile`] naming `location` when the bytes are not a readable Parquet file.
pub fn read_stored(location: &str, bytes: &Bytes) -> Result<RecordBatch> {
    let corrupt = |e: &dyn std::fmt::Display| Error::CorruptFile {
        path: location.into(),
        reason: e.to_string(),
    };
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).map_err(|e| corrupt(&e))?;
    let mut schema = builder.schema().as_ref().clone();
    if let Some(pairs) = builder.metadata().file_metadata().key_value_metadata() {
        for pair in pairs {
            if pair.key != "ARROW:schema" {
                if let Some(value) = &pair.value {
                    schema.metadata.insert(pair.key.clone(), value.clone());
                }
            }
        }
    }
    let schema = Arc::new(schema);
    let reader = builder
        .with_batch_size(1 << 20)
        .build()
        .map_err(|e| corrupt(&e))?;
    let batches = reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| corrupt(&e))?;
    let batches: Vec<RecordBatch> = batches
        .into_iter()
        .map(|b| b.with_schema(schema.clone()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| corrupt(&e))?;
    Ok(arrow_select::concat::concat_batches(&schema, &batches)?)
}

/// Upserts one lake file through `store`: under the store's guarantee (a lock, or a conditional write retried on
/// conflict), the stored rows are read and checked, `incoming` (one [`Part`]'s rows) is merged in (stored rows in
/// the `replace` ranges dropped first) and the result published atomically. A stored file that is not in the
/// current form (an earlier schema version, e.g. nanosecond bars, or another writer's types) is rewritten even when
/// no row changes, so the next write brings every file across; one emptied by `replace` is deleted.
///
/// # Errors
/// [`Error::CorruptFile`] when the stored file is damaged or breaks the lake's rules, the store's write errors.
pub fn upsert(
    store: &dyn Store,
    key: &str,
    file: &LakeFile,
    incoming: &Rows,
    replace: &[(i64, i64)],
    options: &WriteOptions,
    keep_provenance: bool,
) -> Result<Published> {
    let (kind, symbol, period) = (file.kind, file.symbol.as_str(), &file.period);
    check_symbol(symbol)?;
    check_file_rows(incoming, kind, symbol, period)?;
    let location = store.locate(key);
    let base = WriteOptions {
        // A row group per New York day where days are long (1s, 5s bars); minute bars and coarser fill a month's
        // row groups by size.
        day_row_groups: match kind {
            Kind::Bars1m | Kind::Bars1d => false,
            Kind::Bars(seconds) => seconds < 60,
            Kind::Bars1s | Kind::Quotes | Kind::Trades => true,
        },
        delta_columns: kind.delta_columns(),
        ..options.clone()
    };
    store.rewrite(key, &mut |stored: Option<&Bytes>| {
        let mut options = base.clone();
        let merged = match stored {
            Some(bytes) => {
                let stored = read_stored(&location, bytes)?;
                let current = is_current(stored.schema_ref(), kind, &options);
                if keep_provenance {
                    // `ticklake migrate`: the file's own provenance (source, feed, ...) over the defaults given.
                    let mut metadata = options.metadata.clone();
                    for (k, v) in stored.schema_ref().metadata() {
                        if k.starts_with("ticklake.") && !RECOMPUTED.contains(&k.as_str()) {
                            metadata.retain(|(key, _)| key != k);
                            metadata.push((k.clone(), v.clone()));
                        }
                    }
                    metadata.sort();
                    options.metadata = metadata;
                }
                let stored = conform_stored(Path::new(&location), &stored, kind)?;
                check_file_rows(&Rows::from(&stored), kind, symbol, period)
                    .map_err(|e| stored_error(Path::new(&location), &e))?;
                let merged = merge(&stored, &incoming.to_batch()?, replace)?;
                if merged == stored && current {
                    return Ok(Change::Keep {
                        rows: merged.num_rows() as u64,
                    });
                }
                if merged.num_rows() == 0 {
                    return Ok(Change::Remove);
                }
                merged
            }
            None if incoming.num_rows() == 0 => return Ok(Change::Keep { rows: 0 }),
            // A new file: the caller's chunks are encoded as they are, one row group at a time.
            None => {
                return Ok(Change::Write(
                    incoming.map(|chunk, _| to_stored(chunk, kind))?,
                    options,
                ))
            }
        };
        Ok(Change::Write(
            Rows::from(to_stored(&merged, kind)?),
            options,
        ))
    })
}

/// Footer keys every write computes itself; `keep_provenance` keeps every other `ticklake.*` key of a stored file.
const RECOMPUTED: [&str; 6] = [
    "ticklake.version",
    SCHEMA_VERSION_KEY,
    "ticklake.kind",
    "ticklake.symbol",
    "ticklake.period",
    "ticklake.period_rule",
];

/// The error for a stored file whose rows the lake cannot take: one message for the reader and the writer alike.
fn stored_error(path: &Path, err: &Error) -> Error {
    Error::CorruptFile {
        path: path.to_owned(),
        reason: format!("stored rows break the lake's rules: {err}"),
    }
}

/// Conforms the rows of a stored file at `path` to the working schema with the one rule of [`conform`], so the
/// reader and the writer accept (and refuse) the same files: another writer's string, integer, float and
/// timestamp types are converted; anything else is [`Error::CorruptFile`] naming the file and the column.
///
/// # Errors
/// [`Error::CorruptFile`].
pub fn conform_stored(path: &Path, batch: &RecordBatch, kind: Kind) -> Result<RecordBatch> {
    conform(batch, kind, None).map_err(|e| stored_error(path, &e))
}

/// True when a stored file (its schema as read, footer metadata included) is in the form this write produces:
/// the kind's stored types and the schema version being written.
fn is_current(stored: &Schema, kind: Kind, options: &WriteOptions) -> bool {
    let writing = options
        .metadata
        .iter()
        .find(|(k, _)| k == SCHEMA_VERSION_KEY)
        .map(|(_, v)| v.as_str());
    has_stored_types(stored, kind)
        && stored
            .metadata()
            .get(SCHEMA_VERSION_KEY)
            .map(String::as_str)
            == writing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_bar_intervals_are_kinds_with_one_folder_name_each() {
        for (text, kind) in [
            ("bars/5s", Kind::Bars(5)),
            ("bars/15m", Kind::Bars(900)),
            ("bars/1h", Kind::Bars(3600)),
            ("bars/90s", Kind::Bars(90)),
            ("bars/1s", Kind::Bars1s),
            ("bars/1m", Kind::Bars1m),
        ] {
            assert_eq!(Kind::parse(text).unwrap(), kind, "{text}");
            assert_eq!(kind.dir(), text);
        }
        for (text, hint) in [
            ("bars/60s", "bars/1m"),
            ("bars/5min", "bars/5m"),
            ("bars/120m", "bars/2h"),
        ] {
            let err = Kind::parse(text).unwrap_err().to_string();
            assert!(err.contains(hint), "{text}: {err}");
        }
        for text in ["bars/24h", "bars/0s", "bars/2d", "bars/x", "bars/", "5s"] {
            assert!(Kind::parse(text).is_err(), "{text}");
        }
        assert!(!Kind::Bars(5)
            .schema()
            .fields()
            .iter()
            .any(|f| f.name() == "vwap"));
        assert!(Kind::Bars(300)
            .schema()
            .fields()
            .iter()
            .any(|f| f.name() == "vwap"));
        assert_eq!(Kind::Bars(5).timestamp_unit(), TimeUnit::Microsecond);
    }

    fn bars(symbols: &[&str], ts: &[i64]) -> RecordBatch {
        let n = ts.len();
        let sym: ArrayRef = Arc::new(StringArray::from(symbols.to_vec()));
        let t: ArrayRef =
            Arc::new(TimestampNanosecondArray::from(ts.to_vec()).with_timezone("UTC"));
        let p: ArrayRef = Arc::new(Float64Array::from(vec![1.0; n]));
        let v: ArrayRef = Arc::new(Int64Array::from(vec![1; n]));
        let b = RecordBatch::try_from_iter(vec![
            ("symbol", sym),
            ("timestamp", t),
            ("open", p.clone()),
            ("high", p.clone()),
            ("low", p.clone()),
            ("close", p),
            ("volume", v.clone()),
            ("trade_count", v),
        ])
        .unwrap();
        conform(&b, Kind::Bars1s, None).unwrap()
    }

    // 2024-01-31 19:30 New York = 2024-02-01 00:30 UTC.
    const JAN_31_EVENING: i64 = 1_706_747_400_000_000_000;

    #[test]
    fn symbols_follow_the_spec() {
        for good in ["AAPL", "BRK.B", "BF-B", "A", "0123456789"] {
            assert!(check_symbol(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "../x",
            "A/B",
            "aapl",
            "A B",
            ".A",
            "A..B",
            "ABCDEFGHIJK",
            "A\\B",
            "A\0",
        ] {
            assert!(check_symbol(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn partition_splits_by_new_york_month_and_symbol() {
        let b = bars(
            &["MSFT", "AAPL", "MSFT", "AAPL"],
            &[
                1_000,
                JAN_31_EVENING,
                2_000,
                JAN_31_EVENING + 5 * 3_600_000_000_000,
            ],
        );
        let parts = partition(&Rows::from(&b), Kind::Bars1s).unwrap();
        let keys: Vec<(String, String, usize)> = parts
            .iter()
            .map(|p| (p.symbol.clone(), p.period.key.clone(), p.rows.num_rows()))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("AAPL".into(), "2024-01".into(), 1),
                ("AAPL".into(), "2024-02".into(), 1),
                ("MSFT".into(), "1969-12".into(), 2),
            ]
        );
    }

    #[test]
    fn partition_names_the_duplicate_row() {
        let b = bars(&["A", "B", "A"], &[5_000, 1_000, 5_000]);
        let err = partition(&Rows::from(&b), Kind::Bars1s)
            .unwrap_err()
            .to_string();
        assert!(err.contains("row 2") && err.contains("duplicate"), "{err}");
    }

    #[test]
    fn partition_names_the_first_bad_row_like_a_row_by_row_scan() {
        let mut rng = crate::test_rng::Rng(42);
        for case in 0..400 {
            let n = 1 + rng.below(3000) as usize;
            let mut t = 0i64;
            let mut ts = Vec::with_capacity(n);
            for _ in 0..n {
                t += match rng.below(2000) {
                    0 => 0,
                    1 => -NS_PER_DAY,
                    2 => 5_000,
                    _ => NS_PER_DAY,
                };
                ts.push(t);
            }
            // Every third case alternates two symbols in runs of 700 rows.
            let symbols: Vec<&str> = (0..n)
                .map(|i| {
                    if case % 3 == 0 && (i / 700) % 2 == 1 {
                        "B"
                    } else {
                        "A"
                    }
                })
                .collect();
            let b = bars(&symbols, &ts);
            for kind in [Kind::Bars1s, Kind::Bars1d, Kind::Trades] {
                let mut last: HashMap<&str, i64> = HashMap::new();
                let naive = (0..n).find(|&i| {
                    let previous = last.insert(symbols[i], ts[i]);
                    let unordered = previous.is_some_and(|p| {
                        if kind.unique_timestamps() {
                            ts[i] <= p
                        } else {
                            ts[i] < p
                        }
                    });
                    unordered || (kind.yearly() && ts[i].rem_euclid(NS_PER_DAY) != 0)
                });
                let got = partition(&Rows::from(&b), kind)
                    .err()
                    .map(|e| e.to_string());
                match naive {
                    None => assert!(got.is_none(), "case {case}: {got:?}"),
                    Some(row) => {
                        let got = got.unwrap_or_default();
                        assert!(
                            got.contains(&format!("row {row}:")),
                            "case {case}, row {row}: {got}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn bars_are_stored_in_microseconds_and_finer_timestamps_are_refused() {
        assert_eq!(Kind::Bars1s.timestamp_unit(), TimeUnit::Microsecond);
        assert_eq!(Kind::Quotes.timestamp_unit(), TimeUnit::Microsecond);
        assert_eq!(Kind::Trades.timestamp_unit(), TimeUnit::Nanosecond);
        let b = bars(&["A", "A"], &[JAN_31_EVENING, JAN_31_EVENING + 1_000]);
        let stored = to_stored(&b, Kind::Bars1s).unwrap();
        assert!(has_stored_types(stored.schema_ref(), Kind::Bars1s));
        assert!(!has_stored_types(b.schema_ref(), Kind::Bars1s));
        let back = conform(&stored, Kind::Bars1s, None).unwrap();
        assert_eq!(back, b);
        let t: ArrayRef = Arc::new(
            TimestampNanosecondArray::from(vec![JAN_31_EVENING, JAN_31_EVENING + 1])
                .with_timezone("UTC"),
        );
        let fine = RecordBatch::try_new(
            b.schema(),
            b.columns()
                .iter()
                .enumerate()
                .map(|(i, c)| if i == 1 { t.clone() } else { c.clone() })
                .collect(),
        )
        .unwrap();
        let err = conform(&fine, Kind::Bars1s, None).unwrap_err().to_string();
        assert!(
            err.contains("row 1") && err.contains("microsecond"),
            "{err}"
        );
        assert!(conform(&fine, Kind::Trades, None)
            .is_err_and(|e| !e.to_string().contains("microsecond")));
    }

    #[test]
    fn merge_replaces_equal_timestamps_and_ranges() {
        let old = bars(&["A"; 4], &[1_000, 2_000, 3_000, 4_000]);
        let mut new = bars(&["A"; 2], &[2_000, 6_000]);
        new = RecordBatch::try_new(
            new.schema(),
            new.columns()
                .iter()
                .enumerate()
                .map(|(c, col)| {
                    if c == 2 {
                        Arc::new(Float64Array::from(vec![9.0, 9.0])) as ArrayRef
                    } else {
                        col.clone()
                    }
                })
                .collect(),
        )
        .unwrap();
        let merged = merge(&old, &new, &[]).unwrap();
        assert_eq!(timestamps(&merged), &[1_000, 2_000, 3_000, 4_000, 6_000]);
        assert_eq!(merged.column(2).as_primitive::<Float64Type>().value(1), 9.0);
        let merged = merge(&old, &new, &[(3_000, 5_000)]).unwrap();
        assert_eq!(timestamps(&merged), &[1_000, 2_000, 6_000]);
        // Several ranges: each drops only its own stored rows.
        let merged = merge(&old, &new, &[(1_000, 2_000), (4_000, 5_000)]).unwrap();
        assert_eq!(timestamps(&merged), &[2_000, 3_000, 6_000]);
    }
}
