//! Trades -> OHLCV bars of any interval (SPEC §3.1), as a streaming kernel: one pass over the Arrow buffers,
//! validation and the sortedness check fused into the aggregation loop, the open bar carried across batches.

use std::ops::Range;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, TimestampNanosecondArray};
use arrow_buffer::ScalarBuffer;
use arrow_schema::SchemaRef;

use crate::conditions::{BarKind, Policy, Rules, HIGH_LOW, OC_ALWAYS, OC_FIRST, OC_MASK, VOLUME};
use crate::error::{Error, Result};
use crate::schema;
use crate::stream::{Kernel, RunStatus, Stream};
use crate::time::{self, Interval};

const SET_OPEN: u8 = 1;
const SET_HIGH_LOW: u8 = 2;
const SET_CLOSE: u8 = 4;
const SET_ALL: u8 = SET_OPEN | SET_HIGH_LOW | SET_CLOSE;

/// Configuration of the bars kernel.
#[derive(Clone)]
pub struct BarSpec {
    interval: Interval,
    policy: Policy,
    rules: Arc<Rules>,
}

impl BarSpec {
    /// A kernel for `interval` with the given condition policy.
    #[must_use]
    pub fn new(interval: Interval, policy: Policy) -> Self {
        let kind = match interval {
            Interval::NyDay => BarKind::Daily,
            Interval::Fixed(_) => BarKind::Minute,
        };
        Self {
            interval,
            policy,
            rules: Arc::new(Rules::new(kind)),
        }
    }

    /// Parses the interval and policy strings of the public API.
    ///
    /// # Errors
    /// Unknown interval or policy.
    pub fn parse(interval: &str, policy: &str) -> Result<Self> {
        Ok(Self::new(
            Interval::parse(interval)?,
            Policy::parse(policy)?,
        ))
    }

    /// The bar interval.
    #[must_use]
    pub fn interval(&self) -> Interval {
        self.interval
    }
}

/// The validated trade columns of one batch.
pub struct TradeCols {
    ts: ScalarBuffer<i64>,
    price: ScalarBuffer<f64>,
    size: ScalarBuffer<i64>,
    /// Per-trade rule bytes (see [`crate::conditions`]); `None` when every trade counts for everything.
    rules: Option<Vec<u8>>,
}

/// The bar being built for one symbol.
#[derive(Clone, Copy, Default, Debug)]
pub struct OpenBar {
    active: bool,
    label: i64,
    end: i64,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: i64,
    count: i64,
    pv: f64,
    pv_volume: i64,
    set: u8,
    /// Every trade of this bar counted for everything (no rule bytes): emitted whenever it has a trade.
    plain: bool,
    last_ts: Option<i64>,
}

/// Bars being built, column by column; the symbol column as runs of equal values.
#[derive(Default)]
pub struct BarOut {
    symbols: schema::SymbolRuns,
    ts: Vec<i64>,
    open: Vec<f64>,
    high: Vec<f64>,
    low: Vec<f64>,
    close: Vec<f64>,
    volume: Vec<i64>,
    vwap: Vec<Option<f64>>,
    count: Vec<i64>,
}

impl BarOut {
    #[inline(never)]
    fn push(&mut self, bar: &OpenBar, vwap: Option<f64>) {
        self.ts.push(bar.label);
        self.open.push(bar.open);
        self.high.push(bar.high);
        self.low.push(bar.low);
        self.close.push(bar.close);
        self.volume.push(bar.volume);
        self.vwap.push(vwap);
        self.count.push(bar.count);
    }

    /// Room for `bars` more bars.
    fn reserve(&mut self, bars: usize) {
        self.ts.reserve(bars);
        self.open.reserve(bars);
        self.high.reserve(bars);
        self.low.reserve(bars);
        self.close.reserve(bars);
        self.volume.reserve(bars);
        self.vwap.reserve(bars);
        self.count.reserve(bars);
    }

    /// Names the symbol of the bars pushed since the output had `before` rows.
    fn add_symbol_since(&mut self, symbol: Option<&str>, before: usize) {
        self.symbols.add(symbol, self.ts.len() - before);
    }

    fn append(&mut self, more: Self) {
        if self.ts.is_empty() {
            *self = more;
            return;
        }
        self.symbols.append(&more.symbols);
        self.ts.extend(more.ts);
        self.open.extend(more.open);
        self.high.extend(more.high);
        self.low.extend(more.low);
        self.close.extend(more.close);
        self.volume.extend(more.volume);
        self.vwap.extend(more.vwap);
        self.count.extend(more.count);
    }
}

/// `volume` plus `sizes` (wrapping), and the index of the size whose addition first overflowed int64, if any.
fn checked_sum(mut volume: i64, sizes: &[i64]) -> (i64, Option<usize>) {
    let mut first = None;
    for (k, &s) in sizes.iter().enumerate() {
        let (v, o) = volume.overflowing_add(s);
        if o && first.is_none() {
            first = Some(k);
        }
        volume = v;
    }
    (volume, first)
}

/// Settings for the trade columns, carried with the kernel.
#[derive(Clone)]
pub struct BarKernel {
    /// Interval and rules.
    pub spec: BarSpec,
    /// Accept tz-naive timestamps as UTC.
    pub assume_utc: bool,
}

impl BarKernel {
    #[inline]
    fn emit(bar: &OpenBar, out: &mut BarOut) {
        if !bar.active {
            return;
        }
        if bar.plain {
            let vwap = (bar.volume > 0).then(|| bar.pv / bar.volume as f64);
            out.push(bar, vwap);
        } else if bar.set == SET_ALL && bar.volume > 0 {
            let vwap = (bar.pv_volume > 0).then(|| bar.pv / bar.pv_volume as f64);
            out.push(bar, vwap);
        }
    }

    /// All trades count for everything: the hot path. The outer loop starts bars, the inner one runs over the
    /// trades of one bar with nothing but the reductions (validity, order and the int64 overflow bound are
    /// folded in and looked at once per bar).
    fn run_plain<const VWAP: bool>(
        &self,
        c: &TradeCols,
        rows: Range<usize>,
        state: &mut OpenBar,
        out: &mut BarOut,
    ) -> RunStatus {
        let base = rows.start;
        let ts = &c.ts[rows.clone()];
        let px = &c.price[rows.clone()];
        let sz = &c.size[rows];
        let mut b = *state;
        let mut prev = b.last_ts.unwrap_or(i64::MIN);
        let mut status = RunStatus::default();
        let mut i = 0;
        while i < ts.len() {
            if !b.active || ts[i] >= b.end {
                if !time::in_range(ts[i]) {
                    // No bucket arithmetic on a value outside the range: the stream reports the row.
                    status.bad = true;
                    break;
                }
                Self::emit(&b, out);
                let (label, end) = self
                    .spec
                    .interval
                    .next_bucket(b.active.then_some(b.end), ts[i]);
                b = OpenBar {
                    active: true,
                    label,
                    end,
                    open: px[i],
                    high: px[i],
                    low: px[i],
                    set: SET_ALL,
                    plain: true,
                    ..OpenBar::default()
                };
            }
            let end = b.end;
            let (mut high, mut low, mut pv) = (b.high, b.low, b.pv);
            let (mut sum, mut max_size, mut min_size) = (0i64, 0i64, 0i64);
            let (mut nan, mut unsorted) = (false, false);
            let mut j = ts.len();
            for (k, ((&t, &p), &s)) in ts[i..].iter().zip(&px[i..]).zip(&sz[i..]).enumerate() {
                if t >= end {
                    j = i + k;
                    break;
                }
                unsorted |= t < prev;
                prev = t;
                nan |= p.is_nan();
                high = if p > high { p } else { high };
                low = if p < low { p } else { low };
                sum = sum.wrapping_add(s);
                max_size = max_size.max(s);
                min_size = min_size.min(s);
                if VWAP {
                    let size = s as f64;
                    pv += p * size;
                }
            }
            // ts[i] < end, so the bar got at least one trade.
            // NaN never wins a comparison, so it is caught separately; the extremes check the rest.
            let in_range = low > 0.0 && high < f64::INFINITY;
            status.bad |= nan | !in_range | (min_size < 0);
            status.unsorted |= unsorted;
            b.high = high;
            b.low = low;
            b.pv = pv;
            b.close = px[j - 1];
            b.count += (j - i) as i64;
            let bound = i128::from(max_size) * (j - i) as i128 + i128::from(b.volume);
            b.volume = if bound <= i128::from(i64::MAX) {
                b.volume.wrapping_add(sum)
            } else {
                let (v, at) = checked_sum(b.volume, &sz[i..j]);
                if status.overflow.is_none() {
                    status.overflow = at.map(|k| base + i + k);
                }
                v
            };
            i = j;
        }
        if !ts.is_empty() {
            b.last_ts = Some(prev);
        }
        *state = b;
        status
    }

    /// Alpaca's rules: each trade carries its rule byte.
    fn run_rules(
        &self,
        c: &TradeCols,
        rules: &[u8],
        rows: Range<usize>,
        state: &mut OpenBar,
        out: &mut BarOut,
    ) -> RunStatus {
        let base = rows.start;
        let ts = &c.ts[rows.clone()];
        let px = &c.price[rows.clone()];
        let sz = &c.size[rows.clone()];
        let rules = &rules[rows];
        let mut b = *state;
        let mut prev = b.last_ts.unwrap_or(i64::MIN);
        let mut end = if b.active { b.end } else { i64::MIN };
        let (mut bad, mut unsorted, mut overflow) = (false, false, None);
        for (i, (((&t, &p), &s), &rule)) in ts.iter().zip(px).zip(sz).zip(rules).enumerate() {
            bad |= !(p > 0.0 && p < f64::INFINITY) | (s < 0);
            unsorted |= t < prev;
            prev = t;
            if t >= end {
                if !time::in_range(t) {
                    bad = true;
                    break;
                }
                Self::emit(&b, out);
                let (label, _, e) = self.spec.interval.bucket(t);
                end = e;
                b = OpenBar {
                    active: true,
                    label,
                    end,
                    ..OpenBar::default()
                };
            }
            let oc = rule & OC_MASK;
            if oc == OC_ALWAYS || (oc == OC_FIRST && b.set & SET_OPEN == 0) {
                if b.set & SET_OPEN == 0 {
                    b.open = p;
                }
                b.set |= SET_OPEN;
            }
            if oc == OC_ALWAYS || (oc == OC_FIRST && b.set & SET_CLOSE == 0) {
                b.close = p;
                b.set |= SET_CLOSE;
            }
            if rule & HIGH_LOW != 0 {
                if b.set & SET_HIGH_LOW == 0 {
                    b.high = p;
                    b.low = p;
                    b.set |= SET_HIGH_LOW;
                } else {
                    b.high = b.high.max(p);
                    b.low = b.low.min(p);
                }
            }
            if rule & VOLUME != 0 {
                let (v, o) = b.volume.overflowing_add(s);
                b.volume = v;
                if o && overflow.is_none() {
                    overflow = Some(base + i);
                }
                b.count += 1;
                if rule & HIGH_LOW != 0 {
                    let size = s as f64;
                    b.pv += p * size;
                    b.pv_volume = b.pv_volume.saturating_add(s);
                }
            }
        }
        if !ts.is_empty() {
            b.last_ts = Some(prev);
        }
        *state = b;
        RunStatus {
            bad,
            unsorted,
            overflow,
        }
    }
}

impl Kernel for BarKernel {
    type Cols = TradeCols;
    type State = OpenBar;
    type Out = BarOut;

    fn extract(&self, batch: &RecordBatch, row_offset: u64, threads: usize) -> Result<TradeCols> {
        let ts = schema::timestamps_ns(
            schema::required(batch, "timestamp")?,
            "timestamp",
            self.assume_utc,
            row_offset,
        )?;
        let price = schema::f64_values(schema::required(batch, "price")?, "price", row_offset)?;
        let size = schema::i64_values(schema::required(batch, "size")?, "size", row_offset)?;
        let conditions = match self.spec.policy {
            Policy::Alpaca => batch.column_by_name("conditions"),
            Policy::All => None,
        };
        let update = batch.column_by_name("update");
        let rules = if conditions.is_some() || update.is_some() {
            Some(self.spec.rules.trade_rules(
                batch.num_rows(),
                conditions,
                batch.column_by_name("tape"),
                update,
                threads,
            )?)
        } else {
            None
        };
        Ok(TradeCols {
            ts,
            price,
            size,
            rules,
        })
    }

    fn timestamps(cols: &TradeCols) -> &[i64] {
        &cols.ts
    }

    fn first_invalid(&self, c: &TradeCols, row_offset: u64) -> Option<Error> {
        if let Some(i) = c.ts.iter().position(|&t| !time::in_range(t)) {
            return Some(time::out_of_range(
                "timestamp",
                row_offset + i as u64,
                c.ts[i],
            ));
        }
        if let Some(i) = c.price.iter().position(|p| !(*p > 0.0 && p.is_finite())) {
            return Some(Error::invalid(
                "price",
                row_offset + i as u64,
                format!("{} is not a positive finite price", c.price[i]),
            ));
        }
        c.size.iter().position(|s| *s < 0).map(|i| {
            Error::invalid(
                "size",
                row_offset + i as u64,
                format!("{} is a negative size", c.size[i]),
            )
        })
    }

    fn run(
        &self,
        cols: &TradeCols,
        rows: Range<usize>,
        state: &mut OpenBar,
        symbol: Option<&str>,
        out: &mut BarOut,
    ) -> RunStatus {
        let before = out.ts.len();
        out.reserve(self.spec.interval.max_buckets(&cols.ts[rows.clone()]));
        let status = match (&cols.rules, self.spec.interval.has_vwap()) {
            (Some(rules), _) => self.run_rules(cols, rules, rows, state, out),
            (None, true) => self.run_plain::<true>(cols, rows, state, out),
            (None, false) => self.run_plain::<false>(cols, rows, state, out),
        };
        out.add_symbol_since(symbol, before);
        status
    }

    fn flush(&self, state: &OpenBar, symbol: Option<&str>, out: &mut BarOut) {
        let before = out.ts.len();
        Self::emit(state, out);
        out.add_symbol_since(symbol, before);
    }

    fn last_ts(state: &OpenBar) -> Option<i64> {
        state.last_ts
    }

    fn new_out(&self) -> BarOut {
        BarOut::default()
    }

    fn finish_out(&self, out: BarOut) -> Result<RecordBatch> {
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(out.symbols.finish()),
            Arc::new(TimestampNanosecondArray::from(out.ts).with_timezone("UTC")),
            Arc::new(Float64Array::from(out.open)),
            Arc::new(Float64Array::from(out.high)),
            Arc::new(Float64Array::from(out.low)),
            Arc::new(Float64Array::from(out.close)),
            Arc::new(Int64Array::from(out.volume)),
        ];
        if self.spec.interval.has_vwap() {
            columns.push(Arc::new(Float64Array::from(out.vwap)));
        }
        columns.push(Arc::new(Int64Array::from(out.count)));
        Ok(RecordBatch::try_new(self.schema(), columns)?)
    }

    fn schema(&self) -> SchemaRef {
        schema::bar_schema(self.spec.interval.has_vwap())
    }

    fn overflow_column(&self) -> &'static str {
        "size"
    }

    fn interval_end(&self, ts: i64) -> i64 {
        // Outside the range there is no bucket: any cut will do, the run reports the row.
        if time::in_range(ts) {
            self.spec.interval.bucket(ts).2
        } else {
            ts
        }
    }

    fn resume(last_ts: i64) -> OpenBar {
        OpenBar {
            last_ts: Some(last_ts),
            ..OpenBar::default()
        }
    }

    fn append(&self, out: &mut BarOut, more: BarOut) {
        out.append(more);
    }
}

/// A streaming trades -> bars aggregator.
pub type BarAggregator = Stream<BarKernel>;

/// A new streaming bars aggregator.
///
/// # Errors
/// Unknown interval or condition policy.
pub fn bar_aggregator(
    interval: &str,
    policy: &str,
    symbol: Option<String>,
    assume_utc: bool,
    threads: usize,
) -> Result<BarAggregator> {
    let spec = BarSpec::parse(interval, policy)?;
    Ok(Stream::new(BarKernel { spec, assume_utc }, symbol).with_threads(threads))
}

/// Trades -> bars in one call over any number of batches (unsorted input is sorted stably first).
///
/// # Errors
/// As [`Stream::push`].
pub fn bars(
    batches: impl IntoIterator<Item = Result<RecordBatch>>,
    interval: &str,
    policy: &str,
    symbol: Option<String>,
    assume_utc: bool,
    threads: usize,
) -> Result<RecordBatch> {
    let spec = BarSpec::parse(interval, policy)?;
    crate::stream::one_shot(BarKernel { spec, assume_utc }, symbol, threads, batches)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, Float64Array, Int64Array, TimestampNanosecondArray};

    fn batch(ts: &[i64], price: &[f64], size: &[i64]) -> RecordBatch {
        RecordBatch::try_from_iter([
            (
                "timestamp",
                Arc::new(TimestampNanosecondArray::from(ts.to_vec()).with_timezone("UTC"))
                    as ArrayRef,
            ),
            (
                "price",
                Arc::new(Float64Array::from(price.to_vec())) as ArrayRef,
            ),
            (
                "size",
                Arc::new(Int64Array::from(size.to_vec())) as ArrayRef,
            ),
        ])
        .unwrap()
    }

    fn col<'a>(b: &'a RecordBatch, name: &str) -> &'a dyn Array {
        b.column_by_name(name).unwrap().as_ref()
    }

    #[test]
    fn one_second_bars() {
        let s = 1_000_000_000;
        let b = batch(
            &[s, s + 5, 2 * s - 1, 2 * s],
            &[2.0, 3.0, 1.0, 4.0],
            &[1, 2, 3, 4],
        );
        let out = bars([Ok(b)], "1s", "all", Some("X".into()), false, 2).unwrap();
        assert_eq!(out.num_rows(), 2);
        let close = col(&out, "close")
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        let volume = col(&out, "volume")
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(close.values().to_vec(), vec![1.0, 4.0]);
        assert_eq!(volume.values().to_vec(), vec![6, 4]);
        assert!(out.column_by_name("vwap").is_none());
    }

    #[test]
    fn streaming_equals_one_shot_and_errors_name_rows() {
        let ts: Vec<i64> = (0..100).map(|i| i * 300_000_000).collect();
        let price: Vec<f64> = (0..100).map(|i| f64::from(i % 7 + 1)).collect();
        let size: Vec<i64> = (0..100).collect();
        let whole = batch(&ts, &price, &size);
        let one = bars([Ok(whole.clone())], "1m", "all", None, false, 2).unwrap();
        let mut agg = bar_aggregator("1m", "all", None, false, 2).unwrap();
        let mut parts = vec![];
        for start in [0, 13, 50, 51] {
            let end = match start {
                0 => 13,
                13 => 50,
                50 => 51,
                _ => 100,
            };
            parts.push(agg.push(&whole.slice(start, end - start)).unwrap());
        }
        parts.push(agg.finish().unwrap());
        let streamed = arrow_select::concat::concat_batches(&one.schema(), &parts).unwrap();
        assert_eq!(streamed, one);

        let bad = batch(&[1, 2], &[1.0, f64::NAN], &[1, 1]);
        let err = bars([Ok(bad)], "1s", "all", None, false, 2)
            .unwrap_err()
            .to_string();
        assert!(err.contains("'price', row 1"), "{err}");
    }
}
