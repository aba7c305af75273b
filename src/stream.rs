//! The driver shared by the streaming kernels: it splits each batch into runs of one symbol, keeps one open
//! interval per symbol across batches, makes a batch all-or-nothing (state changes are committed only when the
//! whole batch succeeded), and falls back to a stable sort when a batch is not in time order. Long runs are cut at
//! interval boundaries and aggregated on several threads; the output does not depend on the thread count.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::thread;

use arrow_array::{Array, RecordBatch, StringArray, UInt32Array};
use arrow_schema::SchemaRef;
use arrow_select::concat::concat_batches;
use arrow_select::take::take_record_batch;

use crate::error::{Error, Result};
use crate::huge_pages;
use crate::schema;

/// What one pass over a run found besides the rows it emitted.
#[derive(Default, Debug, Clone, Copy)]
pub struct RunStatus {
    /// Some value was invalid: the caller asks the kernel which row.
    pub bad: bool,
    /// A timestamp was lower than the one before it. A kernel may also set it for an invalid value instead of
    /// `bad`: the stream looks for invalid values before it sorts, so either way the error names the first one.
    pub unsorted: bool,
    /// First row (within the batch) where an int64 sum overflowed.
    pub overflow: Option<usize>,
}

/// A run shorter than this many rows per thread stays on one thread.
const MIN_ROWS_PER_THREAD: usize = 1 << 18;

/// Runs expected to emit a row per fewer input rows than this stay on one thread: the threads' outputs are copied
/// into one (into memory touched for the first time), which for dense output costs more than the second thread
/// saves (issue 13: 8 trades per bar ran 2.2x slower on two threads).
const MIN_ROWS_PER_OUTPUT_ROW: usize = 32;

/// Threads the kernels use unless told otherwise: the cores this process may run on, at most 8.
#[must_use]
pub fn default_threads() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// Runs `work(first, chunk)` over `out` cut into up to `threads` contiguous chunks, each on its own thread
/// (`first` is the chunk's index in `out`); short slices stay on the calling thread.
pub fn for_chunks<T: Send>(out: &mut [T], threads: usize, work: impl Fn(usize, &mut [T]) + Sync) {
    let parts = threads.min(out.len() / MIN_ROWS_PER_THREAD).max(1);
    on_chunks(out, out.len().div_ceil(parts).max(1), work);
}

/// A kernel that aggregates runs of one symbol's time-ordered rows.
pub trait Kernel: Clone + Send + Sync {
    /// The checked columns of one batch.
    type Cols: Sync;
    /// The open interval of one symbol.
    type State: Clone + Default + Send;
    /// Output being built.
    type Out: Send;

    /// Checks types and nulls and converts the batch's columns (on up to `threads` threads where that helps).
    ///
    /// # Errors
    /// Missing or mistyped columns, nulls.
    fn extract(&self, batch: &RecordBatch, row_offset: u64, threads: usize) -> Result<Self::Cols>;
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
    /// The end (exclusive, UTC ns) of the interval holding `ts`: rows from there on may go to another thread.
    fn interval_end(&self, ts: i64) -> i64;
    /// A state with no open interval that has consumed rows up to `last_ts`.
    fn resume(last_ts: i64) -> Self::State;
    /// Appends `more`, emitted after everything in `out`, to `out`.
    fn append(&self, out: &mut Self::Out, more: Self::Out);
    /// Makes room in `out` for what the sorted timestamps `ts` can emit (a hint: output past it still fits).
    fn reserve(&self, _out: &mut Self::Out, _ts: &[i64]) {}
    /// At most how many rows the sorted timestamps `ts` emit (a bound, for choosing the thread count).
    fn max_out(&self, ts: &[i64]) -> usize {
        ts.len()
    }
    /// The columns with row `i` moved to row `dest[i]` (`dest` is a permutation), if the kernel can regroup its
    /// columns; then batches of interleaved symbols are regrouped by symbol before aggregation.
    fn scatter(&self, _cols: &Self::Cols, _dest: &[u32]) -> Option<Self::Cols> {
        None
    }
}

/// New states and the output of a batch.
type Committed<K> = (HashMap<String, <K as Kernel>::State>, <K as Kernel>::Out);

enum Attempt<S, O> {
    /// New states, output, and whether the output is already sorted by (symbol, time).
    Done(HashMap<String, S>, O, bool),
    NeedSort,
}

/// A streaming aggregator: push batches, get finished rows back, `finish()` flushes the rest.
pub struct Stream<K: Kernel> {
    kernel: K,
    states: HashMap<String, K::State>,
    fill_symbol: Option<String>,
    /// Whether the batches carry a `symbol` column (then `""` is a symbol like any other, not "no symbol").
    symbol_column: bool,
    rows_seen: u64,
    finished: bool,
    threads: usize,
    min_rows_per_thread: usize,
    min_rows_per_output_row: usize,
    /// Regroup batches of interleaved symbols by symbol first (see [`Stream::with_grouping`]).
    grouping: bool,
}

impl<K: Kernel> Stream<K> {
    /// A new stream. `fill_symbol` names the symbol when batches have no `symbol` column.
    pub fn new(kernel: K, fill_symbol: Option<String>) -> Self {
        Self {
            kernel,
            states: HashMap::new(),
            fill_symbol,
            symbol_column: false,
            rows_seen: 0,
            finished: false,
            threads: default_threads(),
            min_rows_per_thread: MIN_ROWS_PER_THREAD,
            min_rows_per_output_row: MIN_ROWS_PER_OUTPUT_ROW,
            grouping: true,
        }
    }

    /// Splits a run over threads only when it is expected to emit at most one row per `rows` input rows (default
    /// 32; 0 lets tests cut dense tiny inputs).
    #[must_use]
    pub fn with_min_rows_per_output_row(mut self, rows: usize) -> Self {
        self.min_rows_per_output_row = rows;
        self
    }

    /// Whether batches whose symbols are interleaved are regrouped by symbol before aggregation (the default;
    /// results never depend on it, tests turn it off to compare).
    #[must_use]
    pub fn with_grouping(mut self, grouping: bool) -> Self {
        self.grouping = grouping;
        self
    }

    /// Aggregates long runs on up to `threads` threads (at least 1).
    #[must_use]
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Gives each thread at least `rows` rows of a run (default 2^18; tiny values let tests cut tiny inputs).
    #[must_use]
    pub fn with_min_rows_per_thread(mut self, rows: usize) -> Self {
        self.min_rows_per_thread = rows.max(1);
        self
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
        let (out, sorted, _) = self.push_out(batch, false)?;
        let out = self.kernel.finish_out(out)?;
        if sorted {
            Ok(out)
        } else {
            sort_output(&out)
        }
    }

    /// [`Stream::push`] before the output becomes a batch: the rows in emission order, whether that order is
    /// already (symbol, time), and whether the open intervals were already flushed in place (asked for with
    /// `flush` by the one-shot form on its last batch; done only when the batch was regrouped by symbol, so each
    /// symbol's last interval lands right after its other rows).
    fn push_out(&mut self, batch: &RecordBatch, flush: bool) -> Result<(K::Out, bool, bool)> {
        if self.finished {
            return Err(Error::Finished);
        }
        let offset = self.rows_seen;
        schema::unique_columns(batch)?;
        let symbols = symbol_column(batch, offset)?;
        let cols = self.kernel.extract(batch, offset, self.threads)?;
        if let Some((work, out)) = symbols
            .as_ref()
            .and_then(|s| self.attempt_grouped(&cols, s, flush))
        {
            self.states.extend(work);
            self.symbol_column = true;
            self.rows_seen += batch.num_rows() as u64;
            return Ok((out, true, flush));
        }
        let (work, out, sorted) = match self.attempt(&cols, symbols.as_ref(), offset, None)? {
            Attempt::Done(work, out, sorted) => (work, out, sorted),
            Attempt::NeedSort => {
                if let Some(err) = self.kernel.first_invalid(&cols, offset) {
                    return Err(err);
                }
                let perm = sort_permutation(symbols.as_ref(), K::timestamps(&cols))?;
                let sorted = take_record_batch(batch, &perm)?;
                let symbols = symbol_column(&sorted, offset)?;
                let cols = self.kernel.extract(&sorted, offset, self.threads)?;
                match self.attempt(&cols, symbols.as_ref(), offset, Some(&perm))? {
                    Attempt::Done(work, out, sorted) => (work, out, sorted),
                    Attempt::NeedSort => {
                        return Err(Error::InvalidArgument(
                            "internal error: sorted batch reported unsorted".into(),
                        ))
                    }
                }
            }
        };
        self.states.extend(work);
        self.symbol_column |= symbols.is_some();
        self.rows_seen += batch.num_rows() as u64;
        Ok((out, sorted, false))
    }

    /// Flushes every open interval and ends the stream.
    ///
    /// # Errors
    /// [`Error::Finished`] when called twice.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let mut out = self.kernel.new_out();
        self.finish_into(&mut out)?;
        self.kernel.finish_out(out)
    }

    /// Emits every open interval into `out` (symbols in order) and ends the stream.
    fn finish_into(&mut self, out: &mut K::Out) -> Result<()> {
        if self.finished {
            return Err(Error::Finished);
        }
        self.finished = true;
        let mut keys: Vec<&String> = self.states.keys().collect();
        keys.sort();
        for key in keys {
            let symbol = if self.symbol_column {
                Some(key.as_str())
            } else {
                self.fill_symbol.as_deref()
            };
            self.kernel.flush(&self.states[key], symbol, out);
        }
        self.states.clear();
        Ok(())
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
        // Runs in increasing symbol order emit rows already sorted by (symbol, time).
        let mut sorted = true;
        let mut last_key: Option<&str> = None;
        while start < ts.len() {
            let end = symbols.map_or(ts.len(), |s| run_end(s, start));
            let key = symbols.map_or("", |s| s.value(start));
            sorted &= last_key.is_none_or(|last| last < key);
            last_key = Some(key);
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
            let status = self.run_split(cols, start..end, state, symbol, &mut out);
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
        Ok(Attempt::Done(work, out, sorted))
    }

    /// The batch regrouped by symbol (in symbol order, each symbol's rows in input order) and aggregated, when its
    /// symbols are interleaved and the kernel can regroup its columns. `None` whenever the batch needs anything
    /// but the plain path (rows out of time order, an invalid value, an overflow): the caller then starts over on
    /// the ungrouped batch, so errors and the sorting fallback are exactly those of the ungrouped path, and a clean
    /// result equals the ungrouped one (each symbol sees the same rows in the same order).
    fn attempt_grouped(
        &self,
        cols: &K::Cols,
        symbols: &StringArray,
        flush: bool,
    ) -> Option<Committed<K>> {
        if !self.grouping || !interleaved(symbols) {
            return None;
        }
        let groups = group_by_symbol(symbols, self.threads)?;
        let grouped = self.kernel.scatter(cols, &groups.dest)?;
        let ts = K::timestamps(&grouped);
        // Each symbol with its state so far; the runs are independent, so several threads take a share each.
        let mut runs = Vec::with_capacity(groups.runs.len());
        for (rows, key) in groups.runs {
            let state = self.states.get(key).cloned().unwrap_or_default();
            if K::last_ts(&state).is_some_and(|last| ts[rows.start] < last) {
                return None;
            }
            runs.push((rows, key, state));
        }
        let out_rows: usize = runs
            .iter()
            .map(|(rows, _, _)| self.kernel.max_out(&ts[rows.clone()]))
            .sum();
        let parts = if out_rows * self.min_rows_per_output_row > ts.len() {
            1
        } else {
            self.threads.min(ts.len() / self.min_rows_per_thread).max(1)
        };
        let kernel = &self.kernel;
        let grouped = &grouped;
        let work_on = move |share: Vec<(Range<usize>, &str, K::State)>| {
            let mut out = kernel.new_out();
            let mut done = Vec::with_capacity(share.len());
            for (rows, key, mut state) in share {
                let end = rows.end;
                let status = kernel.run(grouped, rows, &mut state, Some(key), &mut out);
                if status.bad || status.unsorted || status.overflow.is_some() {
                    return None;
                }
                if flush {
                    kernel.flush(&state, Some(key), &mut out);
                    state = K::resume(ts[end - 1]);
                }
                done.push((key.to_owned(), state));
            }
            Some((done, out))
        };
        let results = if parts == 1 {
            vec![work_on(runs)]
        } else {
            // Contiguous shares of similar row counts, so the outputs concatenate in symbol order.
            let mut shares: Vec<Vec<_>> = Vec::with_capacity(parts);
            let mut share = Vec::new();
            let mut taken = 0;
            for run in runs {
                taken += run.0.len();
                share.push(run);
                if taken * parts >= ts.len() * (shares.len() + 1) {
                    shares.push(std::mem::take(&mut share));
                }
            }
            if !share.is_empty() {
                shares.push(share);
            }
            on_threads(shares, work_on)
        };
        let mut work: HashMap<String, K::State> = HashMap::new();
        let mut out = kernel.new_out();
        for result in results {
            let (done, more) = result?;
            work.extend(done);
            kernel.append(&mut out, more);
        }
        Some((work, out))
    }

    /// [`Kernel::run`] over one symbol's run, cut at interval boundaries into parts aggregated on their own
    /// threads. Every part after the first starts from [`Kernel::resume`] with the timestamp before it, so each
    /// adjacent pair of rows is still compared once and unsorted input is still noticed.
    fn run_split(
        &self,
        cols: &K::Cols,
        rows: Range<usize>,
        state: &mut K::State,
        symbol: Option<&str>,
        out: &mut K::Out,
    ) -> RunStatus {
        // Most runs (interleaved symbols, small batches) are far too short to cut: no planning for them.
        if self.threads < 2 || rows.len() < 2 * self.min_rows_per_thread {
            return self.kernel.run(cols, rows, state, symbol, out);
        }
        let ts = K::timestamps(cols);
        let parts = split_at_intervals(
            ts,
            rows.clone(),
            self.threads,
            self.min_rows_per_thread,
            |t| self.kernel.interval_end(t),
        );
        let Some((first, rest)) = parts.split_first() else {
            return RunStatus::default();
        };
        if rest.is_empty() {
            return self.kernel.run(cols, first.clone(), state, symbol, out);
        }
        let kernel = &self.kernel;
        // Room for every part up front: the first part writes in place and the others are copied in once,
        // without growing (and copying) the output again.
        kernel.reserve(out, &ts[rows]);
        let (mut status, results) = thread::scope(|scope| {
            let handles: Vec<_> = rest
                .iter()
                .map(|part| {
                    scope.spawn(move || {
                        let mut part_state = K::resume(ts[part.start - 1]);
                        let mut part_out = kernel.new_out();
                        let status =
                            kernel.run(cols, part.clone(), &mut part_state, symbol, &mut part_out);
                        (part_state, part_out, status)
                    })
                })
                .collect();
            let status = kernel.run(cols, first.clone(), state, symbol, out);
            // The next part starts a new interval, so this part's last one is complete.
            kernel.flush(state, symbol, out);
            let results: Vec<_> = handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect();
            (status, results)
        });
        let last = results.len() - 1;
        for (k, (part_state, mut part_out, part_status)) in results.into_iter().enumerate() {
            status.bad |= part_status.bad;
            status.unsorted |= part_status.unsorted;
            status.overflow = status.overflow.or(part_status.overflow);
            if k < last {
                kernel.flush(&part_state, symbol, &mut part_out);
            }
            kernel.append(out, part_out);
            *state = part_state;
        }
        status
    }
}

/// Cuts `rows` into at most `threads` parts of similar size, each starting where an interval starts (for sorted
/// `ts`; on unsorted input the cuts are merely somewhere, which is harmless as that input is redone sorted).
fn split_at_intervals(
    ts: &[i64],
    rows: Range<usize>,
    threads: usize,
    min_rows: usize,
    interval_end: impl Fn(i64) -> i64,
) -> Vec<Range<usize>> {
    let parts = threads.min(rows.len() / min_rows).max(1);
    let mut cuts = vec![rows.start];
    for p in 1..parts {
        let target = rows.start + rows.len() * p / parts;
        let last = cuts[cuts.len() - 1];
        if target <= last {
            continue;
        }
        let end = interval_end(ts[target - 1]);
        let cut = target + ts[target..rows.end].partition_point(|&t| t < end);
        if cut > last && cut < rows.end {
            cuts.push(cut);
        }
    }
    cuts.push(rows.end);
    cuts.windows(2).map(|w| w[0]..w[1]).collect()
}

/// Whether the symbols of a batch change often enough that regrouping pays: judged on its first rows.
fn interleaved(symbols: &StringArray) -> bool {
    let sample = symbols.len().min(4096);
    if sample < 64 {
        return false;
    }
    let mut runs = 0;
    let mut start = 0;
    while start < sample {
        start = run_end(symbols, start);
        runs += 1;
    }
    // Runs shorter than 16 rows on average.
    runs * 16 > sample
}

/// A batch's rows grouped by symbol.
struct Groups<'a> {
    /// Row `i` goes to row `dest[i]` of the grouped batch.
    dest: Vec<u32>,
    /// Each symbol's rows of the grouped batch, in symbol order.
    runs: Vec<(Range<usize>, &'a str)>,
}

/// Each row's symbol as its rank among the batch's distinct symbols in byte order (a null before every name), and
/// those symbols: one hash lookup per change of symbol, and a sort of the distinct names only.
struct SymbolRanks<'a> {
    rank: Vec<u32>,
    names: Vec<Option<&'a str>>,
}

fn symbol_ranks(symbols: &StringArray, threads: usize) -> SymbolRanks<'_> {
    let n = symbols.len();
    let mut rank: Vec<u32> = huge_pages::with_capacity(n);
    rank.resize(n, 0);
    let parts = threads.min(n / MIN_ROWS_PER_THREAD).max(1);
    let size = n.div_ceil(parts).max(1);
    // Contiguous shares, each on its own thread when there are several: a share numbers its names as it meets
    // them, and the ranks then come from all the shares' names together.
    let names: Vec<Vec<Option<&str>>> = on_chunks(&mut rank, size, |first, ids| {
        first_seen_ids(symbols, first, ids)
    });
    let mut all: Vec<Option<&str>> = names.iter().flatten().copied().collect();
    all.sort_unstable();
    all.dedup();
    on_chunks(&mut rank, size, |first, ids| {
        let rank_of: Vec<u32> = names[first / size]
            .iter()
            .map(|name| all.binary_search(name).map_or(0, |r| r as u32))
            .collect();
        for r in ids {
            *r = rank_of[*r as usize];
        }
    });
    SymbolRanks { rank, names: all }
}

/// `work(first, chunk)` on each chunk of `size` rows of `out` (the first row's index given), each chunk on its own
/// thread when there are several; the results in chunk order.
fn on_chunks<T: Send, R: Send>(
    out: &mut [T],
    size: usize,
    work: impl Fn(usize, &mut [T]) -> R + Sync,
) -> Vec<R> {
    if out.len() <= size {
        return vec![work(0, out)];
    }
    on_threads(out.chunks_mut(size).enumerate(), |(k, chunk)| {
        work(k * size, chunk)
    })
}

/// `work(item)` for each item on its own thread; the results in the items' order (a panic in one is resumed here).
fn on_threads<I: Send, R: Send>(
    items: impl IntoIterator<Item = I>,
    work: impl Fn(I) -> R + Sync,
) -> Vec<R> {
    let work = &work;
    thread::scope(|scope| {
        let handles: Vec<_> = items
            .into_iter()
            .map(|item| scope.spawn(move || work(item)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// Numbers each row from `first` (`out[k]` for row `first + k`) by the order in which its symbol first appears
/// among them; returns those symbols.
fn first_seen_ids<'a>(
    symbols: &'a StringArray,
    first: usize,
    out: &mut [u32],
) -> Vec<Option<&'a str>> {
    // Names of up to 7 bytes (nearly every ticker) are looked up as one integer: their bytes and their length
    // packed into a u64, so a lookup is a multiply and an integer compare. Longer names and nulls go by text.
    let mut short: HashMap<u64, u32, FastHash> = HashMap::default();
    let mut long: HashMap<Option<&str>, u32, FastHash> = HashMap::default();
    let mut names: Vec<Option<&str>> = Vec::new();
    let offsets = &symbols.value_offsets()[first..=first + out.len()];
    let bytes = symbols.values().as_slice();
    let nulls = symbols.nulls().filter(|n| n.null_count() > 0);
    let mut last: Option<(u64, u32)> = None;
    for ((i, pair), slot) in (first..).zip(offsets.windows(2)).zip(out) {
        let (start, end) = (
            pair[0].unsigned_abs() as usize,
            pair[1].unsigned_abs() as usize,
        );
        let valid = nulls.is_none_or(|n| n.is_valid(i));
        let id = if end - start < 8 && valid {
            let key = pack_short(bytes, start, end - start) | ((end - start) as u64) << 56;
            match last {
                Some((prev, id)) if prev == key => id,
                _ => {
                    // A lookup first: the entry API costs more on the hit every row but the first takes.
                    let id = match short.get(&key) {
                        Some(&id) => id,
                        None => {
                            names.push(Some(symbols.value(i)));
                            let id = (names.len() - 1) as u32;
                            short.insert(key, id);
                            id
                        }
                    };
                    last = Some((key, id));
                    id
                }
            }
        } else {
            last = None;
            let name = valid.then(|| symbols.value(i));
            *long.entry(name).or_insert_with(|| {
                names.push(name);
                (names.len() - 1) as u32
            })
        };
        *slot = id;
    }
    names
}

/// `len` (at most 7) bytes of `bytes` from `start`, little-endian in the low bytes of a `u64` (the top byte stays
/// zero for the caller's tag): one 8-byte load and a mask where the buffer allows, not a copy of a variable length.
#[inline]
#[must_use]
pub fn pack_short(bytes: &[u8], start: usize, len: usize) -> u64 {
    let mut word = [0u8; 8];
    match bytes.get(start..start + 8) {
        Some(window) => {
            word.copy_from_slice(window);
            u64::from_le_bytes(word) & ((1u64 << (8 * len)) - 1)
        }
        None => {
            word[..len].copy_from_slice(&bytes[start..start + len]);
            u64::from_le_bytes(word)
        }
    }
}

/// Where each row goes in a stable counting sort by `rank` (of `groups` distinct values), and each group's rows.
fn counting_sort(rank: &[u32], groups: usize) -> (Vec<u32>, Vec<Range<usize>>) {
    let mut counts = vec![0usize; groups];
    for &r in rank {
        counts[r as usize] += 1;
    }
    let mut next = Vec::with_capacity(groups);
    let mut ranges = Vec::with_capacity(groups);
    let mut at = 0usize;
    for &count in &counts {
        next.push(at as u32);
        ranges.push(at..at + count);
        at += count;
    }
    let mut dest = huge_pages::with_capacity(rank.len());
    dest.extend(rank.iter().map(|&r| {
        let d = next[r as usize];
        next[r as usize] += 1;
        d
    }));
    (dest, ranges)
}

/// A stable counting sort of the rows by symbol (`None` past 2^32-1 rows).
fn group_by_symbol(symbols: &StringArray, threads: usize) -> Option<Groups<'_>> {
    u32::try_from(symbols.len()).ok()?;
    let ranks = symbol_ranks(symbols, threads);
    let (dest, ranges) = counting_sort(&ranks.rank, ranks.names.len());
    let runs = ranges
        .into_iter()
        .zip(ranks.names)
        .map(|(rows, name)| (rows, name.unwrap_or_default()))
        .collect();
    Some(Groups { dest, runs })
}

/// A multiply-rotate hasher for short keys (symbols): far cheaper per row than `SipHash`, and the keys come from the
/// caller's own batch.
#[derive(Default, Clone, Copy)]
struct FastHasher(u64);

impl std::hash::Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x517C_C1B7_2722_0A95);
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(byte)).wrapping_mul(0x517C_C1B7_2722_0A95);
    }

    fn write_usize(&mut self, value: usize) {
        self.0 = (self.0.rotate_left(5) ^ value as u64).wrapping_mul(0x517C_C1B7_2722_0A95);
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0.rotate_left(5) ^ value).wrapping_mul(0x517C_C1B7_2722_0A95);
    }

    fn finish(&self) -> u64 {
        // A product's low bits depend only on the key's low bits (tickers share their first letters), and the
        // table picks buckets by the low bits: fold the well-mixed high half down.
        self.0 ^ (self.0 >> 32)
    }
}

type FastHash = std::hash::BuildHasherDefault<FastHasher>;

/// Runs a whole input through a fresh stream: the one-shot form of a kernel. Input that goes back in time across
/// batches is concatenated and sorted first, so the result always equals stably sorting the input.
///
/// # Errors
/// As [`Stream::push`], minus [`Error::OutOfOrder`].
#[allow(
    clippy::needless_pass_by_value,
    reason = "takes the kernel as Stream::new does; callers build it for this one call"
)]
pub fn one_shot<K: Kernel>(
    kernel: K,
    fill_symbol: Option<String>,
    threads: usize,
    batches: impl IntoIterator<Item = Result<RecordBatch>>,
) -> Result<RecordBatch> {
    let mut stream = Stream::new(kernel.clone(), fill_symbol.clone()).with_threads(threads);
    let mut kept: Vec<RecordBatch> = Vec::new();
    let mut out = kernel.new_out();
    let batches = whole_if_dense(&kernel, batches.into_iter().collect::<Result<Vec<_>>>()?);
    let mut batches = batches.into_iter().map(Ok::<_, Error>).peekable();
    let mut out_of_order = false;
    // Output already in final order: one batch whose rows came out sorted with the open intervals in place.
    let mut in_order = false;
    let mut pushed = 0;
    while let Some(batch) = batches.next() {
        let batch = batch?;
        let last = batches.peek().is_none();
        match stream.push_out(&batch, last) {
            Ok((more, sorted, flushed)) => {
                in_order = pushed == 0 && sorted && flushed;
                kernel.append(&mut out, more);
            }
            Err(Error::OutOfOrder { .. }) => out_of_order = true,
            Err(err) => return Err(err),
        }
        pushed += 1;
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
        kept.clear();
        stream = Stream::new(kernel.clone(), fill_symbol).with_threads(threads);
        let (more, sorted, flushed) = stream.push_out(&whole, true)?;
        in_order = sorted && flushed;
        out = more;
    }
    drop(kept);
    // One symbol's rows come out in time order; several symbols' final intervals come out last.
    let one_symbol = stream.states.len() <= 1;
    stream.finish_into(&mut out)?;
    let out = kernel.finish_out(out)?;
    if one_symbol || in_order {
        Ok(out)
    } else {
        sort_output(&out)
    }
}

/// Several batches of interleaved symbols as one, when their output is dense. Each batch's output is grouped by
/// symbol on its own, and putting the outputs together copies and sorts them; with a row out per few rows in (a bar
/// per trade), that costs several times one copy of the input, and one batch comes out in order. The batches are
/// all kept anyway (for the out-of-order fallback), so this adds one copy of the input, not a bound on memory.
fn whole_if_dense<K: Kernel>(kernel: &K, batches: Vec<RecordBatch>) -> Vec<RecordBatch> {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    if batches.len() < 2 || u32::try_from(rows).is_err() {
        return batches;
    }
    let Some(symbols) = symbol_column(&batches[0], 0).ok().flatten() else {
        return batches;
    };
    if !interleaved(&symbols) {
        return batches;
    }
    // The input's span in intervals times the symbols its first rows hold: about how many rows come out when
    // every symbol trades in every interval.
    let sample: HashSet<&str> = (0..symbols.len().min(4096))
        .map(|i| symbols.value(i))
        .collect();
    let edge = |batch: &RecordBatch, row: usize| {
        let column = batch.column_by_name("timestamp")?.slice(row, 1);
        schema::timestamps_ns(&column, "timestamp", true, 0)
            .ok()
            .map(|t| t[0])
    };
    let first = batches.iter().find(|b| b.num_rows() > 0);
    let last = batches.iter().rev().find(|b| b.num_rows() > 0);
    let (Some(first), Some(last)) = (
        first.and_then(|b| edge(b, 0)),
        last.and_then(|b| edge(b, b.num_rows() - 1)),
    ) else {
        return batches;
    };
    let start = kernel.interval_end(first);
    let length = kernel.interval_end(start).saturating_sub(start).max(1);
    let intervals =
        usize::try_from(last.saturating_sub(first).max(0) / length).unwrap_or(usize::MAX);
    let out_rows = intervals.saturating_add(2).saturating_mul(sample.len());
    if out_rows.saturating_mul(4) < rows {
        return batches;
    }
    match concat_batches(batches[0].schema_ref(), &batches) {
        Ok(whole) => vec![whole],
        // Batches whose schemas differ go one by one (each is checked on its own).
        Err(_) => batches,
    }
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
        // Symbols are short: a byte loop beats a `memcmp` call per row.
        if hi - lo != len || !values[lo..hi].iter().zip(first).all(|(a, b)| a == b) {
            break;
        }
        i += 1;
    }
    i
}

/// A stable permutation sorting rows by (symbol, timestamp).
fn sort_permutation(symbols: Option<&StringArray>, ts: &[i64]) -> Result<UInt32Array> {
    let rank = symbols.map(|s| symbol_ranks(s, 1).rank);
    sort_by_rank_then_time(rank.as_deref(), ts)
}

/// A stable permutation sorting rows by (`rank`, timestamp); every row has rank 0 without `rank`.
fn sort_by_rank_then_time(rank: Option<&[u32]>, ts: &[i64]) -> Result<UInt32Array> {
    let n = rows_u32(ts.len())?;
    let mut keys: Vec<(u32, i64, u32)> = (0..n)
        .map(|i| (rank.map_or(0, |r| r[i as usize]), ts[i as usize], i))
        .collect();
    // The row index is the last key, so an unstable sort gives the stable order.
    keys.sort_unstable();
    Ok(keys.into_iter().map(|k| k.2).collect())
}

fn rows_u32(rows: usize) -> Result<u32> {
    u32::try_from(rows)
        .map_err(|_| Error::InvalidArgument("a single batch may hold at most 2^32-1 rows".into()))
}

/// Sorts an output batch by (symbol, timestamp) unless it already is. The kernels emit each symbol's rows in time
/// order (several batches' outputs and the final intervals are what interleave them), so a stable counting sort by
/// symbol is the whole sort; a full sort is the fallback should a symbol's rows not be in time order.
fn sort_output(batch: &RecordBatch) -> Result<RecordBatch> {
    let symbols = schema::strings(schema::required(batch, "symbol")?, "symbol")?;
    let ts = schema::timestamps_ns(schema::required(batch, "timestamp")?, "timestamp", true, 0)?;
    let key = |i: usize| (symbols.is_valid(i).then(|| symbols.value(i)), ts[i]);
    if (1..batch.num_rows()).all(|i| key(i - 1) <= key(i)) {
        return Ok(batch.clone());
    }
    rows_u32(ts.len())?;
    let ranks = symbol_ranks(&symbols, 1);
    let (dest, _) = counting_sort(&ranks.rank, ranks.names.len());
    let mut perm = vec![0u32; dest.len()];
    for (row, &d) in dest.iter().enumerate() {
        perm[d as usize] = row as u32;
    }
    let in_time_order = perm.windows(2).all(|w| {
        ranks.rank[w[0] as usize] != ranks.rank[w[1] as usize]
            || ts[w[0] as usize] <= ts[w[1] as usize]
    });
    let perm = if in_time_order {
        UInt32Array::from(perm)
    } else {
        sort_by_rank_then_time(Some(&ranks.rank), &ts)?
    };
    Ok(take_record_batch(batch, &perm)?)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Float64Array, Int64Array, StringArray, TimestampNanosecondArray};

    use super::*;
    use crate::bars::bar_aggregator;
    use crate::quotes::quote_sampler;

    use crate::test_rng::Rng;

    /// Timestamps that repeat, sit on and next to second boundaries, cross minutes and New York midnight, and now
    /// and then go back in time; one or two symbols, in runs or interleaved.
    fn case(rng: &mut Rng, quotes: bool) -> RecordBatch {
        let n = 1 + rng.below(240) as usize;
        // 2024-03-10 04:59:58 UTC: New York midnight before the spring-forward day is two seconds away.
        let mut t: i64 = 1_710_046_798_000_000_000;
        let mut ts = Vec::with_capacity(n);
        for _ in 0..n {
            t += match rng.below(10) {
                0..=2 => 0,
                3 => 1,
                4 => 1_000_000_000 - t.rem_euclid(1_000_000_000),
                5 => 61_000_000_000,
                6 if rng.below(8) == 0 => -2_000_000_000,
                _ => rng.below(400_000_000) as i64,
            };
            ts.push(t);
        }
        let value = |rng: &mut Rng| {
            if rng.below(60) == 0 {
                [-1.0, f64::NAN, 0.0, f64::INFINITY][rng.below(4) as usize]
            } else {
                100.0 + rng.below(300) as f64 / 100.0
            }
        };
        // Some cases overflow int64 volume in several bars, to check which row the error names.
        let huge = if rng.below(4) == 0 { 3 } else { 80 };
        let size = |rng: &mut Rng| match rng.below(huge) {
            0 => i64::MAX / 3,
            1 if rng.below(20) == 0 => -5,
            _ => rng.below(500) as i64,
        };
        let interleave = rng.below(3) == 0;
        let symbols: Vec<&str> = (0..n)
            .map(|i| {
                if interleave {
                    ["A", "B", "", "BRK.B"][rng.below(4) as usize]
                } else if i < n / 2 {
                    "A"
                } else {
                    "B"
                }
            })
            .collect();
        let ts: ArrayRef = Arc::new(TimestampNanosecondArray::from(ts).with_timezone("UTC"));
        let symbol: ArrayRef = Arc::new(StringArray::from(symbols));
        let mut f = |_| -> ArrayRef {
            Arc::new(Float64Array::from(
                (0..n).map(|_| value(rng)).collect::<Vec<_>>(),
            ))
        };
        if quotes {
            let bid = f(0);
            let ask = f(0);
            let sizes = |rng: &mut Rng| -> ArrayRef {
                Arc::new(Int64Array::from(
                    (0..n).map(|_| size(rng).min(1000)).collect::<Vec<_>>(),
                ))
            };
            let (bid_size, ask_size) = (sizes(rng), sizes(rng));
            RecordBatch::try_from_iter([
                ("symbol", symbol),
                ("timestamp", ts),
                ("bid_price", bid),
                ("bid_size", bid_size),
                ("ask_price", ask),
                ("ask_size", ask_size),
            ])
        } else {
            let price = f(0);
            let sizes: ArrayRef = Arc::new(Int64Array::from(
                (0..n).map(|_| size(rng)).collect::<Vec<_>>(),
            ));
            // Half the cases carry updates: the rule-aware loop, and its rule bytes regrouped with the rows.
            let update: ArrayRef = Arc::new(StringArray::from(
                (0..n)
                    .map(|_| (rng.below(6) == 0).then_some("canceled"))
                    .collect::<Vec<_>>(),
            ));
            let mut cols = vec![
                ("symbol", symbol),
                ("timestamp", ts),
                ("price", price),
                ("size", sizes),
            ];
            if rng.below(2) == 0 {
                cols.push(("update", update));
            }
            RecordBatch::try_from_iter(cols)
        }
        .unwrap()
    }

    /// Every pushed output and the final one, or the first error as text.
    fn outputs<K: Kernel>(
        mut stream: Stream<K>,
        batch: &RecordBatch,
        cuts: &[usize],
    ) -> Vec<String> {
        let mut seen = Vec::new();
        let mut start = 0;
        for &end in cuts.iter().chain([&batch.num_rows()]) {
            match stream.push(&batch.slice(start, end - start)) {
                Ok(out) => seen.push(format!("{out:?}")),
                Err(err) => {
                    seen.push(format!("error: {err}"));
                    return seen;
                }
            }
            start = end;
        }
        seen.push(format!("{:?}", stream.finish()));
        seen
    }

    #[test]
    fn threads_never_change_results_or_errors() {
        let mut rng = Rng(0x5EED_1234_ABCD_0001);
        for round in 0..600 {
            let quotes = round % 3 == 0;
            let batch = case(&mut rng, quotes);
            let n = batch.num_rows();
            let mut cuts: Vec<usize> = (0..rng.below(3))
                .map(|_| rng.below(n as u64) as usize)
                .collect();
            cuts.sort_unstable();
            let interval = ["1s", "1m", "1d"][rng.below(3) as usize];
            let run = |threads: usize, min_rows: usize, grouping: bool| {
                if quotes {
                    let s = quote_sampler(None, false, threads)
                        .with_min_rows_per_thread(min_rows)
                        .with_min_rows_per_output_row(0)
                        .with_grouping(grouping);
                    outputs(s, &batch, &cuts)
                } else {
                    let s = bar_aggregator(interval, "all", None, false, threads)
                        .unwrap()
                        .with_min_rows_per_thread(min_rows)
                        .with_min_rows_per_output_row(0)
                        .with_grouping(grouping);
                    outputs(s, &batch, &cuts)
                }
            };
            // Without regrouping interleaved symbols, on one thread: the plain path everything else must equal.
            let want = run(1, 1, false);
            for (threads, min_rows, grouping) in [
                (1, 1, true),
                (2, 1, true),
                (3, 2, false),
                (5, 1, true),
                (8, 3, true),
            ] {
                assert_eq!(
                    run(threads, min_rows, grouping),
                    want,
                    "round {round}, {threads} threads, grouping {grouping}, {interval}, quotes={quotes}"
                );
            }
        }
    }

    /// Ranks from shares on two threads equal one thread's, and every rank names the row's symbol among the
    /// symbols in byte order (nulls first; names of 7 and 8 bytes, an empty name, a sliced column).
    #[test]
    fn symbol_ranks_on_threads_equal_one_thread() {
        let mut rng = Rng(9);
        let pool = [
            Some("AAPL"),
            Some("SPY"),
            Some(""),
            Some("ABCDEFG"),
            Some("ABCDEFGH"),
            Some("BRK.B"),
            None,
            Some("Z"),
        ];
        let n = 2 * MIN_ROWS_PER_THREAD + 1_000;
        let column = StringArray::from(rng.pick(n, &pool, 3));
        for symbols in [column.clone(), column.slice(7, n - 7)] {
            let one = symbol_ranks(&symbols, 1);
            let two = symbol_ranks(&symbols, 2);
            assert_eq!(one.rank, two.rank);
            assert_eq!(one.names, two.names);
            assert!(one.names.windows(2).all(|w| w[0] < w[1]));
            for (i, &r) in one.rank.iter().enumerate() {
                let name = symbols.is_valid(i).then(|| symbols.value(i));
                assert_eq!(one.names[r as usize], name, "row {i}");
            }
        }
    }

    #[test]
    fn output_sort_equals_a_stable_sort_by_symbol_then_time() {
        let mut rng = Rng(0x5EED_0BAD_50E7_0001);
        for round in 0..300 {
            let n = 1 + rng.below(200) as usize;
            // Each symbol's rows in time order (the kernels' output) in even rounds, anywhere in odd ones.
            let ordered = round % 2 == 0;
            let mut clock = [0i64; 7];
            let mut symbols = Vec::with_capacity(n);
            let mut ts = Vec::with_capacity(n);
            for _ in 0..n {
                let k = rng.below(7) as usize;
                // Names of up to 7 bytes are looked up packed into an integer, longer ones by text.
                symbols.push(
                    [
                        Some("B"),
                        Some("A"),
                        Some(""),
                        None,
                        Some("BRK.B"),
                        Some("ABCDEFG"),
                        Some("ABCDEFGH"),
                    ][k],
                );
                clock[k] += rng.below(3) as i64;
                ts.push(if ordered {
                    clock[k]
                } else {
                    rng.below(6) as i64
                });
            }
            let row: Vec<i64> = (0..n as i64).collect();
            let batch = RecordBatch::try_from_iter([
                (
                    "symbol",
                    Arc::new(StringArray::from(symbols.clone())) as ArrayRef,
                ),
                (
                    "timestamp",
                    Arc::new(TimestampNanosecondArray::from(ts.clone()).with_timezone("UTC")),
                ),
                ("row", Arc::new(Int64Array::from(row))),
            ])
            .unwrap();
            let mut want: Vec<usize> = (0..n).collect();
            want.sort_by_key(|&i| (symbols[i], ts[i]));
            let got = sort_output(&batch).unwrap();
            let rows = got.column(2).as_any().downcast_ref::<Int64Array>().unwrap();
            let got: Vec<usize> = rows.values().iter().map(|&r| r as usize).collect();
            assert_eq!(got, want, "round {round}");
        }
    }

    #[test]
    fn cuts_fall_on_interval_starts() {
        let ts: Vec<i64> = vec![0, 5, 9, 10, 10, 12, 19, 20, 21, 35, 36, 40];
        let parts = split_at_intervals(&ts, 0..ts.len(), 4, 1, |t| t - t.rem_euclid(10) + 10);
        assert_eq!(parts.first().map(|p| p.start), Some(0));
        assert_eq!(parts.last().map(|p| p.end), Some(ts.len()));
        for pair in parts.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
            let cut = pair[1].start;
            assert_ne!(
                ts[cut - 1] / 10,
                ts[cut] / 10,
                "cut inside an interval: {parts:?}"
            );
        }
        assert!(parts.len() > 1);
        // Fewer rows than the minimum per thread: one part.
        assert_eq!(
            split_at_intervals(&ts, 0..ts.len(), 4, 100, |t| t + 1).len(),
            1
        );
    }
}
