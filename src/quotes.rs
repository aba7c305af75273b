//! Quotes -> the best (tightest-spread) quote per UTC second (SPEC §3.2), as a streaming kernel.
//!
//! Spreads are compared in exact integer micro-units: each price is rounded to 1e-6 before subtracting, so float
//! noise never decides (150.26-150.25 ties 150.27-150.26), and the earliest quote wins a tie.

use std::ops::Range;
use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::{
    new_null_array, Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampNanosecondArray,
};
use arrow_buffer::ScalarBuffer;
use arrow_schema::{DataType, SchemaRef};

use crate::error::{Error, Result};
use crate::huge_pages;
use crate::schema;
use crate::stream::{Kernel, RunStatus, Stream};
use crate::time::{self, floor_to, Interval, NS_PER_SEC};

const NO_QUOTE: i64 = i64::MAX;

/// 2^52: adding it to a float in `[0, 2^52)` leaves that float rounded to an integer in the mantissa bits.
const TWO_52: f64 = 4_503_599_627_370_496.0;
/// Prices at or above this many dollars take the slow exact path (their micro-units leave the range above).
const MAX_FAST_PRICE: f64 = 2e9;

/// Price in integer micro-units, rounded half up (prices are positive when this matters).
#[inline]
fn micros(price: f64) -> i64 {
    (price * 1e6 + 0.5) as i64
}

/// [`micros`] for prices in `[0, MAX_FAST_PRICE)` without float-to-int conversion: the floor of `price * 1e6 + 0.5`
/// read from the mantissa of `y + 2^52`, minus one where that rounded up. Garbage outside the range, where the
/// caller does not use it.
#[inline]
fn micros_fast(price: f64) -> i64 {
    let y = price * 1e6 + 0.5;
    let shifted = y + TWO_52;
    let nearest = shifted.to_bits() as i64 - TWO_52.to_bits() as i64;
    nearest - i64::from(shifted - TWO_52 > y)
}

/// The best `(key, index)` among one second's quotes, from `best` on, with exact [`micros`]: the path for prices
/// too large for [`micros_fast`]. `offset` is the index of the first quote.
fn exact_best(
    (bid, ask, bsz, asz): (&[f64], &[f64], &[i64], &[i64]),
    offset: usize,
    mut best: (i64, usize),
) -> (i64, usize) {
    for (k, (((&bp, &ap), &bs), &az)) in bid.iter().zip(ask).zip(bsz).zip(asz).enumerate() {
        let spread = micros(ap).saturating_sub(micros(bp));
        let valid = (bp > 0.0) & (ap > 0.0) & (bs > 0) & (az > 0) & (spread >= 0);
        if valid && spread < best.0 {
            best = (spread, offset + k);
        }
    }
    best
}

/// The best-quote kernel.
#[derive(Clone)]
pub struct QuoteKernel {
    /// Accept tz-naive timestamps as UTC.
    pub assume_utc: bool,
}

/// The validated quote columns of one batch.
pub struct QuoteCols {
    ts: ScalarBuffer<i64>,
    bid: ScalarBuffer<f64>,
    ask: ScalarBuffer<f64>,
    bid_size: ScalarBuffer<i64>,
    ask_size: ScalarBuffer<i64>,
    bid_exchange: Option<StringArray>,
    ask_exchange: Option<StringArray>,
}

/// The best quote so far in one second, copied out of its batch.
#[derive(Clone, Debug, Default)]
pub struct Best {
    bid: f64,
    ask: f64,
    bid_size: i64,
    ask_size: i64,
    bid_exchange: Option<String>,
    ask_exchange: Option<String>,
}

/// The open second of one symbol.
#[derive(Clone, Debug)]
pub struct OpenSecond {
    label: i64,
    end: i64,
    key: i64,
    best: Option<Best>,
    last_ts: Option<i64>,
}

impl Default for OpenSecond {
    fn default() -> Self {
        Self {
            label: 0,
            end: i64::MIN,
            key: NO_QUOTE,
            best: None,
            last_ts: None,
        }
    }
}

/// Best quotes being built, column by column; the symbol column as runs of equal values.
#[derive(Default)]
pub struct QuoteOut {
    symbols: schema::SymbolRuns,
    ts: Vec<i64>,
    bid: Vec<f64>,
    bid_size: Vec<i64>,
    ask: Vec<f64>,
    ask_size: Vec<i64>,
    spread: Vec<f64>,
    /// Built from the first row that names an exchange on; all null until then.
    exchanges: Option<Exchanges>,
}

/// The exchange columns of the output.
#[derive(Default)]
struct Exchanges {
    exchange: StringBuilder,
    bid: StringBuilder,
    ask: StringBuilder,
}

impl Exchanges {
    fn push(&mut self, bid: Option<&str>, ask: Option<&str>) {
        self.exchange
            .append_option(if bid == ask { bid } else { None });
        self.bid.append_option(bid);
        self.ask.append_option(ask);
    }

    fn push_nulls(&mut self, n: usize) {
        self.exchange.append_nulls(n);
        self.bid.append_nulls(n);
        self.ask.append_nulls(n);
    }

    fn finish(mut self) -> [ArrayRef; 3] {
        [
            Arc::new(self.exchange.finish()),
            Arc::new(self.bid.finish()),
            Arc::new(self.ask.finish()),
        ]
    }
}

impl QuoteOut {
    #[inline(never)]
    fn push(&mut self, label: i64, key: i64, best: &Best) {
        self.push_parts(
            label,
            key,
            (best.bid, best.bid_size, best.ask, best.ask_size),
            best.bid_exchange.as_deref(),
            best.ask_exchange.as_deref(),
        );
    }

    #[inline(never)]
    fn push_at(&mut self, label: i64, key: i64, c: &QuoteCols, i: usize) {
        self.push_parts(
            label,
            key,
            (c.bid[i], c.bid_size[i], c.ask[i], c.ask_size[i]),
            str_at(c.bid_exchange.as_ref(), i),
            str_at(c.ask_exchange.as_ref(), i),
        );
    }

    fn push_parts(
        &mut self,
        label: i64,
        key: i64,
        (bid, bid_size, ask, ask_size): (f64, i64, f64, i64),
        bid_exchange: Option<&str>,
        ask_exchange: Option<&str>,
    ) {
        if bid_exchange.is_some() || ask_exchange.is_some() {
            self.exchanges_mut().push(bid_exchange, ask_exchange);
        } else if let Some(exchanges) = &mut self.exchanges {
            exchanges.push_nulls(1);
        }
        self.ts.push(label);
        self.bid.push(bid);
        self.bid_size.push(bid_size);
        self.ask.push(ask);
        self.ask_size.push(ask_size);
        self.spread.push(key as f64 / 1e6);
    }

    /// Room for `rows` more rows.
    fn reserve(&mut self, rows: usize) {
        huge_pages::reserve(&mut self.ts, rows);
        huge_pages::reserve(&mut self.bid, rows);
        huge_pages::reserve(&mut self.bid_size, rows);
        huge_pages::reserve(&mut self.ask, rows);
        huge_pages::reserve(&mut self.ask_size, rows);
        huge_pages::reserve(&mut self.spread, rows);
    }

    /// The exchange columns, created (null so far) on first use.
    fn exchanges_mut(&mut self) -> &mut Exchanges {
        let rows = self.ts.len();
        self.exchanges.get_or_insert_with(|| {
            let mut exchanges = Exchanges::default();
            exchanges.push_nulls(rows);
            exchanges
        })
    }

    /// Names the symbol of the rows pushed since the output had `before` rows.
    fn add_symbol_since(&mut self, symbol: Option<&str>, before: usize) {
        self.symbols.add(symbol, self.ts.len() - before);
    }

    fn append(&mut self, more: Self) {
        if self.ts.is_empty() {
            *self = more;
            return;
        }
        let rows = more.ts.len();
        match more.exchanges {
            Some(mut theirs) => {
                let ours = self.exchanges_mut();
                for (to, from) in [
                    (&mut ours.exchange, &mut theirs.exchange),
                    (&mut ours.bid, &mut theirs.bid),
                    (&mut ours.ask, &mut theirs.ask),
                ] {
                    for value in &from.finish() {
                        to.append_option(value);
                    }
                }
            }
            None => {
                if let Some(ours) = &mut self.exchanges {
                    ours.push_nulls(rows);
                }
            }
        }
        self.symbols.append(&more.symbols);
        self.ts.extend(more.ts);
        self.bid.extend(more.bid);
        self.bid_size.extend(more.bid_size);
        self.ask.extend(more.ask);
        self.ask_size.extend(more.ask_size);
        self.spread.extend(more.spread);
    }
}

fn str_at(column: Option<&StringArray>, i: usize) -> Option<&str> {
    column.and_then(|c| c.is_valid(i).then(|| c.value(i)))
}

impl QuoteCols {
    fn best_at(&self, i: usize) -> Best {
        Best {
            bid: self.bid[i],
            ask: self.ask[i],
            bid_size: self.bid_size[i],
            ask_size: self.ask_size[i],
            bid_exchange: str_at(self.bid_exchange.as_ref(), i).map(str::to_owned),
            ask_exchange: str_at(self.ask_exchange.as_ref(), i).map(str::to_owned),
        }
    }
}

impl QuoteKernel {
    /// The best quote of each second in `rows` (one symbol's, time-ordered): seconds finished here go to `out`,
    /// the open one stays in `state`. The loop over one second does nothing but reduce; validity is checked from
    /// the extremes once per run.
    fn seconds(
        c: &QuoteCols,
        rows: Range<usize>,
        state: &mut OpenSecond,
        out: &mut QuoteOut,
    ) -> RunStatus {
        let base = rows.start;
        let ts = &c.ts[rows.clone()];
        let bid = &c.bid[rows.clone()];
        let ask = &c.ask[rows.clone()];
        let bsz = &c.bid_size[rows.clone()];
        let asz = &c.ask_size[rows];
        let mut prev = state.last_ts.unwrap_or(i64::MIN);
        let mut end = state.end;
        let mut label = state.label;
        let mut best_key = state.key;
        // Index (within the run) of the best quote when it is in this batch; usize::MAX when carried in `state`.
        let mut best_idx = usize::MAX;
        let mut unsorted = false;
        // Extremes of the prices and sizes, for the validity check once per run (NaN never wins a comparison,
        // and NaN prices are allowed: they mean "this side is absent").
        let (mut low_price, mut high_price, mut low_size) = (0.0f64, 0.0f64, 0i64);
        let mut i = 0;
        while i < ts.len() {
            if ts[i] >= end {
                if !time::in_range(ts[i]) {
                    // No second arithmetic on a value outside the range: the stream reports the row.
                    return RunStatus {
                        bad: true,
                        ..RunStatus::default()
                    };
                }
                if best_key != NO_QUOTE {
                    if best_idx == usize::MAX {
                        out.push(label, best_key, &state.best.take().unwrap_or_default());
                    } else {
                        out.push_at(label, best_key, c, base + best_idx);
                    }
                }
                label = if ts[i].checked_sub(end).is_some_and(|d| d < NS_PER_SEC) {
                    end
                } else {
                    floor_to(ts[i], NS_PER_SEC)
                };
                end = label.saturating_add(NS_PER_SEC);
                best_key = NO_QUOTE;
                best_idx = usize::MAX;
                state.best = None;
            }
            // One second: nothing but the reductions.
            let (key_before, idx_before) = (best_key, best_idx);
            let mut j = ts.len();
            let quotes = ts[i..]
                .iter()
                .zip(&bid[i..])
                .zip(&ask[i..])
                .zip(&bsz[i..])
                .zip(&asz[i..]);
            for (k, ((((&t, &bp), &ap), &bs), &az)) in quotes.enumerate() {
                if t >= end {
                    j = i + k;
                    break;
                }
                unsorted |= t < prev;
                prev = t;
                low_price = if bp < low_price { bp } else { low_price };
                low_price = if ap < low_price { ap } else { low_price };
                high_price = if bp > high_price { bp } else { high_price };
                high_price = if ap > high_price { ap } else { high_price };
                low_size = low_size.min(bs).min(az);
                let spread = micros_fast(ap).wrapping_sub(micros_fast(bp));
                let valid = (bp > 0.0) & (ap > 0.0) & (bs > 0) & (az > 0) & (spread >= 0);
                let key = if valid { spread } else { NO_QUOTE };
                best_idx = if key < best_key { i + k } else { best_idx };
                best_key = best_key.min(key);
            }
            if high_price >= MAX_FAST_PRICE {
                (best_key, best_idx) = exact_best(
                    (&bid[i..j], &ask[i..j], &bsz[i..j], &asz[i..j]),
                    i,
                    (key_before, idx_before),
                );
            }
            i = j;
        }
        let bad = (low_price < 0.0) | (high_price == f64::INFINITY) | (low_size < 0);
        if best_idx != usize::MAX {
            state.best = Some(c.best_at(base + best_idx));
        }
        state.label = label;
        state.end = end;
        state.key = best_key;
        if !ts.is_empty() {
            state.last_ts = Some(prev);
        }
        RunStatus {
            bad,
            unsorted,
            overflow: None,
        }
    }
}

impl Kernel for QuoteKernel {
    type Cols = QuoteCols;
    type State = OpenSecond;
    type Out = QuoteOut;

    fn extract(&self, batch: &RecordBatch, off: u64, _threads: usize) -> Result<QuoteCols> {
        let col = |name: &str| schema::required(batch, name);
        let exchange = |name: &str| {
            batch
                .column_by_name(name)
                .map(|c| schema::strings(c, name))
                .transpose()
        };
        let single = exchange("exchange")?;
        let bid_exchange = exchange("bid_exchange")?.or_else(|| single.clone());
        let ask_exchange = exchange("ask_exchange")?.or(single);
        Ok(QuoteCols {
            ts: schema::timestamps_ns(col("timestamp")?, "timestamp", self.assume_utc, off)?,
            bid: schema::f64_values(col("bid_price")?, "bid_price", off)?,
            ask: schema::f64_values(col("ask_price")?, "ask_price", off)?,
            bid_size: schema::i64_values(col("bid_size")?, "bid_size", off)?,
            ask_size: schema::i64_values(col("ask_size")?, "ask_size", off)?,
            bid_exchange,
            ask_exchange,
        })
    }

    fn timestamps(cols: &QuoteCols) -> &[i64] {
        &cols.ts
    }

    fn first_invalid(&self, c: &QuoteCols, off: u64) -> Option<Error> {
        if let Some(i) = c.ts.iter().position(|&t| !time::in_range(t)) {
            return Some(time::out_of_range("timestamp", off + i as u64, c.ts[i]));
        }
        // NaN and 0 mean "this side is absent" (vendor sentinels); negative or infinite prices are errors.
        for (name, prices) in [("bid_price", &c.bid), ("ask_price", &c.ask)] {
            if let Some(i) = prices.iter().position(|p| *p < 0.0 || p.is_infinite()) {
                return Some(Error::invalid(
                    name,
                    off + i as u64,
                    format!("{} is not a valid price", prices[i]),
                ));
            }
        }
        for (name, sizes) in [("bid_size", &c.bid_size), ("ask_size", &c.ask_size)] {
            if let Some(i) = sizes.iter().position(|s| *s < 0) {
                return Some(Error::invalid(
                    name,
                    off + i as u64,
                    format!("{} is a negative size", sizes[i]),
                ));
            }
        }
        None
    }

    fn run(
        &self,
        c: &QuoteCols,
        rows: Range<usize>,
        state: &mut OpenSecond,
        symbol: Option<&str>,
        out: &mut QuoteOut,
    ) -> RunStatus {
        let before = out.ts.len();
        out.reserve(Interval::Fixed(NS_PER_SEC).max_buckets(&c.ts[rows.clone()]));
        let status = Self::seconds(c, rows, state, out);
        out.add_symbol_since(symbol, before);
        status
    }

    fn flush(&self, state: &OpenSecond, symbol: Option<&str>, out: &mut QuoteOut) {
        if let (true, Some(best)) = (state.key != NO_QUOTE, &state.best) {
            let before = out.ts.len();
            out.push(state.label, state.key, best);
            out.add_symbol_since(symbol, before);
        }
    }

    fn last_ts(state: &OpenSecond) -> Option<i64> {
        state.last_ts
    }

    fn max_out(&self, ts: &[i64]) -> usize {
        Interval::Fixed(NS_PER_SEC).max_buckets(ts)
    }

    fn new_out(&self) -> QuoteOut {
        QuoteOut::default()
    }

    fn finish_out(&self, out: QuoteOut) -> Result<RecordBatch> {
        let rows = out.ts.len();
        let exchanges = out.exchanges.map_or_else(
            || std::array::from_fn(|_| new_null_array(&DataType::Utf8, rows)),
            Exchanges::finish,
        );
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(out.symbols.finish()),
            Arc::new(TimestampNanosecondArray::from(out.ts).with_timezone("UTC")),
            Arc::new(Float64Array::from(out.bid)),
            Arc::new(Int64Array::from(out.bid_size)),
            Arc::new(Float64Array::from(out.ask)),
            Arc::new(Int64Array::from(out.ask_size)),
            Arc::new(Float64Array::from(out.spread)),
        ];
        columns.extend(exchanges);
        Ok(RecordBatch::try_new(self.schema(), columns)?)
    }

    fn schema(&self) -> SchemaRef {
        schema::quote_schema()
    }

    fn overflow_column(&self) -> &'static str {
        "bid_size"
    }

    fn interval_end(&self, ts: i64) -> i64 {
        floor_to(ts, NS_PER_SEC).saturating_add(NS_PER_SEC)
    }

    fn resume(last_ts: i64) -> OpenSecond {
        OpenSecond {
            last_ts: Some(last_ts),
            ..OpenSecond::default()
        }
    }

    fn append(&self, out: &mut QuoteOut, more: QuoteOut) {
        out.append(more);
    }
}

/// A streaming quotes -> best quote per second sampler.
pub type QuoteSampler = Stream<QuoteKernel>;

/// A new streaming best-quote sampler.
#[must_use]
pub fn quote_sampler(symbol: Option<String>, assume_utc: bool, threads: usize) -> QuoteSampler {
    Stream::new(QuoteKernel { assume_utc }, symbol).with_threads(threads)
}

/// Quotes -> best quote per second in one call (unsorted input is sorted stably first).
///
/// # Errors
/// As [`Stream::push`].
pub fn best_quotes(
    batches: impl IntoIterator<Item = Result<RecordBatch>>,
    symbol: Option<String>,
    assume_utc: bool,
    threads: usize,
) -> Result<RecordBatch> {
    crate::stream::one_shot(QuoteKernel { assume_utc }, symbol, threads, batches)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;

    #[test]
    fn tightest_spread_wins_and_float_noise_ties() {
        let s = 1_000_000_000;
        let b = RecordBatch::try_from_iter([
            (
                "timestamp",
                Arc::new(
                    TimestampNanosecondArray::from(vec![s, s + 1, s + 2, 2 * s])
                        .with_timezone("UTC"),
                ) as ArrayRef,
            ),
            (
                "bid_price",
                Arc::new(Float64Array::from(vec![150.25, 150.26, 150.0, 10.0])) as ArrayRef,
            ),
            (
                "bid_size",
                Arc::new(Int64Array::from(vec![1, 1, 1, 1])) as ArrayRef,
            ),
            (
                "ask_price",
                Arc::new(Float64Array::from(vec![150.26, 150.27, 150.5, 0.0])) as ArrayRef,
            ),
            (
                "ask_size",
                Arc::new(Int64Array::from(vec![1, 1, 1, 0])) as ArrayRef,
            ),
        ])
        .unwrap();
        let out = best_quotes([Ok(b)], None, false, 2).unwrap();
        assert_eq!(out.num_rows(), 1);
        let bid = out.column_by_name("bid_price").unwrap();
        let bid = bid.as_any().downcast_ref::<Float64Array>().unwrap();
        assert!((bid.value(0) - 150.25).abs() < f64::EPSILON);
        let spread = out.column_by_name("spread").unwrap();
        let spread = spread.as_any().downcast_ref::<Float64Array>().unwrap();
        assert!((spread.value(0) - 0.01).abs() < f64::EPSILON);
        assert!(out.column_by_name("exchange").unwrap().is_null(0));
    }
}
