//! The driver shared by the streaming kernels: it splits each batch into runs of one symbol, keeps one open
//! interval per symbol across batches, makes a batch all-or-nothing (state changes are committed only when the
//! whole batch succeeded), and falls back to a stable sort when a batch is not in time order.

use std::collections::HashMap;
use std::ops::Range;

use arrow_array::{Array, RecordBatch, StringArray, UInt32Array};
use arrow_schema::SchemaRef;
use arrow_select::concat::concat_batches;
use arrow_select::take::take_record_batch;

use crate::error::{Error, Result};
use crate::schema;

/// What one pass over a run found besides the rows it emitted.
#[derive(Default, Debug, Clone, Copy)]
pub struct RunStatus {
    /// Some value was invalid: the caller asks the kernel which row.
    pub bad: bool,
    /// A timestamp was lower than the one before it.
    pub unsorted: bool,
    /// First row (within the batch) where an int64 sum overflowed.
    pub overflow: Option<usize>,
}

/// A kernel that aggregates runs of one symbol's time-ordered rows.
pub trait Kernel: Clone {
    /// The checked columns of one batch.
    type Cols;
    /// The open interval of one symbol.
    type State: Clone + Default;
    /// Output being built.
    type Out;

    /// Checks types and nulls and converts the batch's columns.
    ///
    /// # Errors
    /// Missing or mistyped columns, nulls.
    fn extract(&self, batch: &RecordBatch, row_offset: u64) -> Result<Self::Cols>;
    /// The timestamps (UTC ns) of the extracted batch.
    fn timestamps(cols: &Self::Cols) -> &[i64];
    /// The first row with an invalid value, as an error, if any.
    fn first_invalid(&self, cols: &Self::Cols, row_offset: u64) -> Option<Error>;
    /// Aggregates `rows` (all of one symbol) into `state`, emitting finished intervals into `out`.
    fn run(
        &self,
        cols: &Self::Cols,
        rows: Range<usize>,
        state: &mut Self::State,
        symbol: Option<&str>,
        out: &mut Self::Out,
    ) -> RunStatus;
    /// Emits the open interval of `state`, if it makes a row.
    fn flush(&self, state: &Self::State, symbol: Option<&str>, out: &mut Self::Out);
    /// The newest timestamp `state` has consumed.
    fn last_ts(state: &Self::State) -> Option<i64>;
    /// An empty output.
    fn new_out(&self) -> Self::Out;
    /// The output as a record batch (rows in emission order).
    ///
    /// # Errors
    /// Only if Arrow rejects the columns (a bug).
    fn finish_out(&self, out: Self::Out) -> Result<RecordBatch>;
    /// The output schema.
    fn schema(&self) -> SchemaRef;
    /// Name of the overflowing column for error messages.
    fn overflow_column(&self) -> &'static str;
}

enum Attempt<S, O> {
    Done(HashMap<String, S>, O),
    NeedSort,
}

/// A streaming aggregator: push batches, get finished rows back, `finish()` flushes the rest.
pub struct Stream<K: Kernel> {
    kernel: K,
    states: HashMap<String, K::State>,
    fill_symbol: Option<String>,
    rows_seen: u64,
    finished: bool,
}

impl<K: Kernel> Stream<K> {
    /// A new stream. `fill_symbol` names the symbol when batches have no `symbol` column.
    pub fn new(kernel: K, fill_symbol: Option<String>) -> Self {
        Self {
            kernel,
            states: HashMap::new(),
            fill_symbol,
            rows_seen: 0,
            finished: false,
        }
    }

    /// The output schema.
    #[must_use]
    pub fn schema(&self) -> SchemaRef {
        self.kernel.schema()
    }

    /// Consumes one batch and returns the rows it finished, sorted by symbol then time. On error nothing of the
    /// batch is consumed.
    ///
    /// # Errors
    /// Bad columns or values (naming column and row), [`Error::OutOfOrder`] when a symbol's rows go back in time
    /// across batches, [`Error::Finished`] after `finish`.
    pub fn push(&mut self, batch: &RecordBatch) -> Result<RecordBatch> {
        if self.finished {
            return Err(Error::Finished);
        }
        let offset = self.rows_seen;
        let symbols = symbol_column(batch, offset)?;
        let cols = self.kernel.extract(batch, offset)?;
        let (work, out) = match self.attempt(&cols, symbols.as_ref(), offset, None)? {
            Attempt::Done(work, out) => (work, out),
            Attempt::NeedSort => {
                if let Some(err) = self.kernel.first_invalid(&cols, offset) {
                    return Err(err);
                }
                let perm = sort_permutation(symbols.as_ref(), K::timestamps(&cols))?;
                let sorted = take_record_batch(batch, &perm)?;
                let symbols = symbol_column(&sorted, offset)?;
                let cols = self.kernel.extract(&sorted, offset)?;
                match self.attempt(&cols, symbols.as_ref(), offset, Some(&perm))? {
                    Attempt::Done(work, out) => (work, out),
                    Attempt::NeedSort => {
                        return Err(Error::InvalidArgument(
                            "internal error: sorted batch reported unsorted".into(),
                        ))
                    }
                }
            }
        };
        self.states.extend(work);
        self.rows_seen += batch.num_rows() as u64;
        sort_output(&self.kernel.finish_out(out)?)
    }

    /// Flushes every open interval and ends the stream.
    ///
    /// # Errors
    /// [`Error::Finished`] when called twice.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        if self.finished {
            return Err(Error::Finished);
        }
        self.finished = true;
        let mut out = self.kernel.new_out();
        let mut keys: Vec<&String> = self.states.keys().collect();
        keys.sort();
        for key in keys {
            let symbol = (!key.is_empty())
                .then_some(key.as_str())
                .or(self.fill_symbol.as_deref());
            self.kernel.flush(&self.states[key], symbol, &mut out);
        }
        self.states.clear();
        self.kernel.finish_out(out)
    }

    fn attempt(
        &self,
        cols: &K::Cols,
        symbols: Option<&StringArray>,
        offset: u64,
        perm: Option<&UInt32Array>,
    ) -> Result<Attempt<K::State, K::Out>> {
        let ts = K::timestamps(cols);
        let mut work: HashMap<String, K::State> = HashMap::new();
        let mut out = self.kernel.new_out();
        let mut start = 0;
        while start < ts.len() {
            let end = symbols.map_or(ts.len(), |s| run_end(s, start));
            let key = symbols.map_or("", |s| s.value(start));
            let symbol = symbols
                .map(|s| s.value(start))
                .or(self.fill_symbol.as_deref());
            if !work.contains_key(key) {
                let state = self.states.get(key).cloned().unwrap_or_default();
                work.insert(key.to_owned(), state);
            }
            let Some(state) = work.get_mut(key) else {
                unreachable!("inserted above")
            };
            if let Some(last) = K::last_ts(state) {
                if ts[start] < last {
                    let Some(perm) = perm else {
                        return Ok(Attempt::NeedSort);
                    };
                    return Err(Error::OutOfOrder {
                        symbol: key.to_owned(),
                        row: offset + u64::from(perm.value(start)),
                        found: ts[start],
                        previous: last,
                    });
                }
            }
            let status = self.kernel.run(cols, start..end, state, symbol, &mut out);
            if status.bad {
                return Err(self.kernel.first_invalid(cols, offset).unwrap_or_else(|| {
                    Error::InvalidArgument("internal error: invalid row not found".into())
                }));
            }
            if status.unsorted {
                return Ok(Attempt::NeedSort);
            }
            if let Some(row) = status.overflow {
                let row = perm.map_or(row as u64, |p| u64::from(p.value(row)));
                return Err(Error::Overflow {
                    column: self.kernel.overflow_column().into(),
                    what: "the interval's sum".into(),
                    row: offset + row,
                });
            }
            start = end;
        }
        Ok(Attempt::Done(work, out))
    }
}

/// Runs a whole input through a fresh stream: the one-shot form of a kernel. Input that goes back in time across
/// batches is concatenated and sorted first, so the result always equals stably sorting the input.
///
/// # Errors
/// As [`Stream::push`], minus [`Error::OutOfOrder`].
pub fn one_shot<K: Kernel>(
    kernel: K,
    fill_symbol: Option<String>,
    batches: impl IntoIterator<Item = Result<RecordBatch>>,
) -> Result<RecordBatch> {
    let mut stream = Stream::new(kernel.clone(), fill_symbol.clone());
    let schema = stream.schema();
    let mut kept: Vec<RecordBatch> = Vec::new();
    let mut outs: Vec<RecordBatch> = Vec::new();
    let mut batches = batches.into_iter();
    let mut out_of_order = false;
    for batch in batches.by_ref() {
        let batch = batch?;
        match stream.push(&batch) {
            Ok(out) => outs.push(out),
            Err(Error::OutOfOrder { .. }) => out_of_order = true,
            Err(err) => return Err(err),
        }
        kept.push(batch);
        if out_of_order {
            break;
        }
    }
    if out_of_order {
        for batch in batches {
            kept.push(batch?);
        }
        let whole = concat_batches(kept[0].schema_ref(), &kept)?;
        let mut stream = Stream::new(kernel, fill_symbol);
        let first = stream.push(&whole)?;
        let rest = stream.finish()?;
        return sort_output(&concat_batches(&schema, &[first, rest])?);
    }
    drop(kept);
    outs.push(stream.finish()?);
    sort_output(&concat_batches(&schema, &outs)?)
}

fn symbol_column(batch: &RecordBatch, offset: u64) -> Result<Option<StringArray>> {
    batch
        .column_by_name("symbol")
        .map(|c| schema::strings_not_null(c, "symbol", offset))
        .transpose()
}

/// End of the run of equal symbols starting at `start`.
fn run_end(symbols: &StringArray, start: usize) -> usize {
    let first = symbols.value(start).as_bytes();
    let offsets = symbols.value_offsets();
    let values = symbols.value_data();
    let len = first.len();
    let mut i = start + 1;
    while i < symbols.len() {
        let lo = offsets[i].unsigned_abs() as usize;
        let hi = offsets[i + 1].unsigned_abs() as usize;
        if hi - lo != len || &values[lo..hi] != first {
            break;
        }
        i += 1;
    }
    i
}

/// A stable permutation sorting rows by (symbol, timestamp).
fn sort_permutation(symbols: Option<&StringArray>, ts: &[i64]) -> Result<UInt32Array> {
    let n = u32::try_from(ts.len()).map_err(|_| {
        Error::InvalidArgument("a single batch may hold at most 2^32-1 rows".into())
    })?;
    let mut keys: Vec<(u32, i64, u32)> = match symbols {
        None => (0..n).map(|i| (0, ts[i as usize], i)).collect(),
        Some(symbols) => {
            let mut names: Vec<&str> = symbols.iter().flatten().collect();
            names.sort_unstable();
            names.dedup();
            let rank: HashMap<&str, u32> = names.iter().zip(0u32..).map(|(n, r)| (*n, r)).collect();
            (0..n)
                .map(|i| (rank[symbols.value(i as usize)], ts[i as usize], i))
                .collect()
        }
    };
    // The row index is the last key, so an unstable sort gives the stable order.
    keys.sort_unstable();
    Ok(keys.into_iter().map(|k| k.2).collect())
}

/// Sorts an output batch by (symbol, timestamp) unless it already is.
fn sort_output(batch: &RecordBatch) -> Result<RecordBatch> {
    let symbols = schema::strings(schema::required(batch, "symbol")?, "symbol")?;
    let ts = schema::timestamps_ns(schema::required(batch, "timestamp")?, "timestamp", true, 0)?;
    let key = |i: usize| (symbols.is_valid(i).then(|| symbols.value(i)), ts[i]);
    if (1..batch.num_rows()).all(|i| key(i - 1) <= key(i)) {
        return Ok(batch.clone());
    }
    let perm = sort_permutation(Some(&fill_nulls(&symbols)), &ts)?;
    Ok(take_record_batch(batch, &perm)?)
}

fn fill_nulls(symbols: &StringArray) -> StringArray {
    symbols.iter().map(|s| Some(s.unwrap_or(""))).collect()
}
