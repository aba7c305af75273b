//! Quotes -> the best (tightest-spread) quote per UTC second (SPEC §3.2), as a streaming kernel.
//!
//! Spreads are compared in exact integer micro-units: each price is rounded to 1e-6 before subtracting, so float
//! noise never decides (150.26-150.25 ties 150.27-150.26), and the earliest quote wins a tie.

use std::ops::Range;
use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::{
    Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray,
};
use arrow_buffer::ScalarBuffer;
use arrow_schema::SchemaRef;

use crate::error::{Error, Result};
use crate::schema;
use crate::stream::{Kernel, RunStatus, Stream};
use crate::time::{floor_to, NS_PER_SEC};

const NO_QUOTE: i64 = i64::MAX;

/// Price in integer micro-units, rounded half up (prices are positive when this matters).
#[inline]
#[allow(clippy::cast_possible_truncation)]
fn micros(price: f64) -> i64 {
    (price * 1e6 + 0.5) as i64
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

/// Best quotes being built, column by column.
#[derive(Default)]
pub struct QuoteOut {
    symbol: StringBuilder,
    ts: Vec<i64>,
    bid: Vec<f64>,
    bid_size: Vec<i64>,
    ask: Vec<f64>,
    ask_size: Vec<i64>,
    spread: Vec<f64>,
    exchange: StringBuilder,
    bid_exchange: StringBuilder,
    ask_exchange: StringBuilder,
}

impl QuoteOut {
    #[inline(never)]
    fn push(&mut self, symbol: Option<&str>, label: i64, key: i64, best: &Best) {
        self.push_parts(
            symbol,
            label,
            key,
            (best.bid, best.bid_size, best.ask, best.ask_size),
            best.bid_exchange.as_deref(),
            best.ask_exchange.as_deref(),
        );
    }

    #[inline(never)]
    fn push_at(&mut self, symbol: Option<&str>, label: i64, key: i64, c: &QuoteCols, i: usize) {
        self.push_parts(
            symbol,
            label,
            key,
            (c.bid[i], c.bid_size[i], c.ask[i], c.ask_size[i]),
            str_at(c.bid_exchange.as_ref(), i),
            str_at(c.ask_exchange.as_ref(), i),
        );
    }

    fn push_parts(
        &mut self,
        symbol: Option<&str>,
        label: i64,
        key: i64,
        (bid, bid_size, ask, ask_size): (f64, i64, f64, i64),
        bid_exchange: Option<&str>,
        ask_exchange: Option<&str>,
    ) {
        self.symbol.append_option(symbol);
        self.ts.push(label);
        self.bid.push(bid);
        self.bid_size.push(bid_size);
        self.ask.push(ask);
        self.ask_size.push(ask_size);
        #[allow(clippy::cast_precision_loss)]
        self.spread.push(key as f64 / 1e6);
        self.exchange
            .append_option(if bid_exchange == ask_exchange {
                bid_exchange
            } else {
                None
            });
        self.bid_exchange.append_option(bid_exchange);
        self.ask_exchange.append_option(ask_exchange);
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

impl Kernel for QuoteKernel {
    type Cols = QuoteCols;
    type State = OpenSecond;
    type Out = QuoteOut;

    fn extract(&self, batch: &RecordBatch, off: u64) -> Result<QuoteCols> {
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
        let (mut bad, mut unsorted) = (false, false);
        for (i, ((((&t, &bp), &ap), &bs), &az)) in
            ts.iter().zip(bid).zip(ask).zip(bsz).zip(asz).enumerate()
        {
            bad |= (bp < 0.0)
                | (ap < 0.0)
                | (bp == f64::INFINITY)
                | (ap == f64::INFINITY)
                | (bs < 0)
                | (az < 0);
            unsorted |= t < prev;
            prev = t;
            if t >= end {
                if best_key != NO_QUOTE {
                    if best_idx == usize::MAX {
                        out.push(
                            symbol,
                            label,
                            best_key,
                            &state.best.take().unwrap_or_default(),
                        );
                    } else {
                        out.push_at(symbol, label, best_key, c, base + best_idx);
                    }
                }
                label = floor_to(t, NS_PER_SEC);
                end = label + NS_PER_SEC;
                best_key = NO_QUOTE;
                best_idx = usize::MAX;
                state.best = None;
            }
            let spread = micros(ap) - micros(bp);
            let valid = (bp > 0.0) & (ap > 0.0) & (bs > 0) & (az > 0) & (spread >= 0);
            let key = if valid { spread } else { NO_QUOTE };
            if key < best_key {
                best_key = key;
                best_idx = i;
            }
        }
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

    fn flush(&self, state: &OpenSecond, symbol: Option<&str>, out: &mut QuoteOut) {
        if let (true, Some(best)) = (state.key != NO_QUOTE, &state.best) {
            out.push(symbol, state.label, state.key, best);
        }
    }

    fn last_ts(state: &OpenSecond) -> Option<i64> {
        state.last_ts
    }

    fn new_out(&self) -> QuoteOut {
        QuoteOut::default()
    }

    fn finish_out(&self, mut out: QuoteOut) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(out.symbol.finish()),
            Arc::new(TimestampNanosecondArray::from(out.ts).with_timezone("UTC")),
            Arc::new(Float64Array::from(out.bid)),
            Arc::new(Int64Array::from(out.bid_size)),
            Arc::new(Float64Array::from(out.ask)),
            Arc::new(Int64Array::from(out.ask_size)),
            Arc::new(Float64Array::from(out.spread)),
            Arc::new(out.exchange.finish()),
            Arc::new(out.bid_exchange.finish()),
            Arc::new(out.ask_exchange.finish()),
        ];
        Ok(RecordBatch::try_new(self.schema(), columns)?)
    }

    fn schema(&self) -> SchemaRef {
        schema::quote_schema()
    }

    fn overflow_column(&self) -> &'static str {
        "bid_size"
    }
}

/// A streaming quotes -> best quote per second sampler.
pub type QuoteSampler = Stream<QuoteKernel>;

/// A new streaming best-quote sampler.
#[must_use]
pub fn quote_sampler(symbol: Option<String>, assume_utc: bool) -> QuoteSampler {
    Stream::new(QuoteKernel { assume_utc }, symbol)
}

/// Quotes -> best quote per second in one call (unsorted input is sorted stably first).
///
/// # Errors
/// As [`Stream::push`].
pub fn best_quotes(
    batches: impl IntoIterator<Item = Result<RecordBatch>>,
    symbol: Option<String>,
    assume_utc: bool,
) -> Result<RecordBatch> {
    crate::stream::one_shot(QuoteKernel { assume_utc }, symbol, batches)
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
        let out = best_quotes([Ok(b)], None, false).unwrap();
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
