//! Trades -> OHLCV bars of any interval (SPEC §3.1), as a streaming kernel: one pass over the Arrow buffers,
//! validation and the sortedness check fused into the aggregation loop, the open bar carried across batches.

use std::ops::Range;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, TimestampNanosecondArray};
use arrow_buffer::{NullBuffer, ScalarBuffer};
use arrow_schema::SchemaRef;

use crate::conditions::{
    BarKind, Policy, Rules, ALL, HIGH_LOW, OC_ALWAYS, OC_MASK, OC_NONE, VOLUME,
};
use crate::error::{Error, Result};
use crate::huge_pages;
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
    /// Whether bars carry `vwap` (else `vwap` stays empty).
    with_vwap: bool,
    symbols: schema::SymbolRuns,
    ts: Vec<i64>,
    open: Vec<f64>,
    high: Vec<f64>,
    low: Vec<f64>,
    close: Vec<f64>,
    volume: Vec<i64>,
    /// NaN for a null vwap (a real vwap of positive finite prices is never NaN).
    vwap: Vec<f64>,
    count: Vec<i64>,
}

impl BarOut {
    #[allow(
        clippy::inline_always,
        reason = "a bar per trade spends a fifth of its time in calls to this otherwise (measured: 238 -> 191 ms for 5M bars)"
    )]
    #[inline(always)]
    fn push(&mut self, bar: &OpenBar, vwap: Option<f64>) {
        self.ts.push(bar.label);
        self.open.push(bar.open);
        self.high.push(bar.high);
        self.low.push(bar.low);
        self.close.push(bar.close);
        self.volume.push(bar.volume);
        if self.with_vwap {
            self.vwap.push(vwap.unwrap_or(f64::NAN));
        }
        self.count.push(bar.count);
    }

    /// Room for `bars` more bars.
    fn reserve(&mut self, bars: usize) {
        huge_pages::reserve(&mut self.ts, bars);
        huge_pages::reserve(&mut self.open, bars);
        huge_pages::reserve(&mut self.high, bars);
        huge_pages::reserve(&mut self.low, bars);
        huge_pages::reserve(&mut self.close, bars);
        huge_pages::reserve(&mut self.volume, bars);
        if self.with_vwap {
            huge_pages::reserve(&mut self.vwap, bars);
        }
        huge_pages::reserve(&mut self.count, bars);
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

/// A price's bits as a signed integer. On positive prices this order is the order of the floats, and every value
/// that is not a positive finite price lands outside `bits(0.0)..bits(inf)`: NaN above infinity, a negative
/// value or zero below the smallest positive one.
#[inline]
fn price_bits(p: f64) -> i64 {
    i64::from_ne_bytes(p.to_bits().to_ne_bytes())
}

/// The inverse of [`price_bits`].
#[inline]
fn bits_price(bits: i64) -> f64 {
    f64::from_bits(u64::from_ne_bytes(bits.to_ne_bytes()))
}

/// Whether trades whose price bits (see [`price_bits`]) lie in `low..=high` and whose smallest size is `min_size`
/// are all valid: every price positive and finite (a NaN or a price not above zero takes the extreme of the bit
/// order, above infinity or at or below zero, so the extremes check every price) and no size negative.
#[inline]
fn all_valid(low: i64, high: i64, min_size: i64) -> bool {
    bits_price(low) > 0.0 && bits_price(high) < f64::INFINITY && min_size >= 0
}

/// `volume` plus `sizes` (wrapping), and the index of the size whose addition first overflowed int64, if any.
fn checked_sum(volume: i64, sizes: &[i64]) -> (i64, Option<usize>) {
    checked_sum_iter(volume, sizes.iter().copied())
}

/// [`checked_sum`] over any sizes.
fn checked_sum_iter(mut volume: i64, sizes: impl Iterator<Item = i64>) -> (i64, Option<usize>) {
    let mut first = None;
    for (k, s) in sizes.enumerate() {
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
            // High and low as the integers of their bits (see `price_bits`): a max of integers is a
            // one-cycle dependency from trade to trade, a max of floats four.
            let (mut high, mut low, mut pv) = (price_bits(b.high), price_bits(b.low), b.pv);
            let (mut sum, mut max_size, mut min_size) = (0i64, 0i64, 0i64);
            let mut unsorted = false;
            let mut j = ts.len();
            for (k, ((&t, &p), &s)) in ts[i..].iter().zip(&px[i..]).zip(&sz[i..]).enumerate() {
                if t >= end {
                    j = i + k;
                    break;
                }
                unsorted |= t < prev;
                prev = t;
                let bits = price_bits(p);
                high = high.max(bits);
                low = low.min(bits);
                sum = sum.wrapping_add(s);
                max_size = max_size.max(s);
                min_size = min_size.min(s);
                if VWAP {
                    let size = s as f64;
                    pv += p * size;
                }
            }
            // ts[i] < end, so the bar got at least one trade: the extremes are of real prices.
            status.bad |= !all_valid(low, high, min_size);
            let (high, low) = (bits_price(high), bits_price(low));
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

    /// Alpaca's rules: each trade of `rows` carries its rule byte (`rules[k]` for row `rows.start + k`). Shaped
    /// like [`Self::run_plain`]: the outer loop starts bars, the inner one applies each trade's rule without a
    /// branch (a trade that does not count for a field leaves it as it was) and folds validity, order and int64
    /// overflow into flags looked at once per bar.
    ///
    /// Open is the first trade with an open/close rule; close is the last [`OC_ALWAYS`] trade, or the first
    /// [`OC_FIRST`] one while none came before it.
    #[allow(
        clippy::too_many_lines,
        reason = "one hot loop: split up, the per-bar locals would go through memory"
    )]
    fn run_rules<const VWAP: bool>(
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
        let sz = &c.size[rows];
        let mut b = *state;
        if b.active && b.plain {
            // A bar begun by a batch without rules: all its trades counted for everything.
            b.plain = false;
            b.set = SET_ALL;
            b.pv_volume = b.volume;
        }
        let mut prev = b.last_ts.unwrap_or(i64::MIN);
        let mut status = RunStatus::default();
        let mut i = 0;
        while i < ts.len() {
            if !b.active || ts[i] >= b.end {
                if !time::in_range(ts[i]) {
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
                    high: f64::NEG_INFINITY,
                    low: f64::INFINITY,
                    ..OpenBar::default()
                };
            }
            let end = b.end;
            // High and low as in `run_plain`, unset as the extremes of the integers. Open and close are not
            // in the loop: they are found once the bar's rows are known (a select from trade to trade on
            // whether they are set yet was the loop's longest dependency).
            let (mut high, mut low) = if b.set & SET_HIGH_LOW != 0 {
                (price_bits(b.high), price_bits(b.low))
            } else {
                (i64::MIN, i64::MAX)
            };
            let (mut pv, mut pv_volume) = (b.pv, b.pv_volume);
            let (mut volume, mut overflowed, mut count) = (b.volume, false, 0i64);
            // Validity as in `run_plain`: the extremes of every trade's price bits and size, looked at per bar.
            let (mut unsorted, mut top, mut bottom, mut min_size) = (false, 0i64, i64::MAX, 0i64);
            let mut j = ts.len();
            for (k, (((&t, &p), &s), &rule)) in ts[i..]
                .iter()
                .zip(&px[i..])
                .zip(&sz[i..])
                .zip(&rules[i..])
                .enumerate()
            {
                if t >= end {
                    j = i + k;
                    break;
                }
                unsorted |= t < prev;
                prev = t;
                let hl = rule & HIGH_LOW != 0;
                let bits = price_bits(p);
                top = top.max(bits);
                bottom = bottom.min(bits);
                min_size = min_size.min(s);
                high = high.max(if hl { bits } else { i64::MIN });
                low = low.min(if hl { bits } else { i64::MAX });
                let counted = i64::from((rule & VOLUME) >> 3);
                let s = s & -counted;
                let (v, o) = volume.overflowing_add(s);
                volume = v;
                overflowed |= o;
                count += counted;
                if VWAP {
                    let weighted = hl & (counted != 0);
                    pv += if weighted { p * s as f64 } else { 0.0 };
                    pv_volume = pv_volume.saturating_add(if weighted { s } else { 0 });
                }
            }
            // An invalid value is reported as disorder: the stream looks for invalid values before it sorts.
            status.unsorted |= unsorted | !all_valid(bottom, top, min_size);
            let bar_rules = &rules[i..j];
            // Open and close are set together, by the bar's first trade that may set them; close then moves to
            // its last trade that always sets it.
            if b.set & SET_OPEN == 0 {
                if let Some(k) = bar_rules.iter().position(|&r| r & OC_MASK != OC_NONE) {
                    b.open = px[i + k];
                    b.close = px[i + k];
                    b.set |= SET_OPEN | SET_CLOSE;
                }
            }
            if let Some(k) = bar_rules.iter().rposition(|&r| r & OC_MASK == OC_ALWAYS) {
                b.close = px[i + k];
            }
            if high != i64::MIN {
                b.high = bits_price(high);
                b.low = bits_price(low);
                b.set |= SET_HIGH_LOW;
            }
            b.pv = pv;
            b.pv_volume = pv_volume;
            b.count += count;
            b.volume = if overflowed {
                let counted =
                    sz[i..j]
                        .iter()
                        .zip(&rules[i..j])
                        .map(|(&s, &rule)| if rule & VOLUME != 0 { s } else { 0 });
                let (v, at) = checked_sum_iter(b.volume, counted);
                if status.overflow.is_none() {
                    status.overflow = at.map(|k| base + i + k);
                }
                v
            } else {
                volume
            };
            i = j;
        }
        if !ts.is_empty() {
            b.last_ts = Some(prev);
        }
        *state = b;
        status
    }
}

impl BarKernel {
    fn rules_loop(
        &self,
        vwap: bool,
        c: &TradeCols,
        rules: &[u8],
        rows: Range<usize>,
        state: &mut OpenBar,
        out: &mut BarOut,
    ) -> RunStatus {
        if vwap {
            self.run_rules::<true>(c, rules, rows, state, out)
        } else {
            self.run_rules::<false>(c, rules, rows, state, out)
        }
    }

    fn plain_loop(
        &self,
        vwap: bool,
        c: &TradeCols,
        rows: Range<usize>,
        state: &mut OpenBar,
        out: &mut BarOut,
    ) -> RunStatus {
        if vwap {
            self.run_plain::<true>(c, rows, state, out)
        } else {
            self.run_plain::<false>(c, rows, state, out)
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
        let vwap = self.spec.interval.has_vwap();
        let status = match &cols.rules {
            Some(rules) => self.rules_loop(vwap, cols, &rules[rows.clone()], rows, state, out),
            None if state.active && !state.plain => {
                // The open bar was begun by a batch with rules: it ends under them (these trades count for
                // everything), the rest of the run takes the plain loop.
                let split = rows.start + cols.ts[rows.clone()].partition_point(|&t| t < state.end);
                let all = vec![ALL; split - rows.start];
                let head = self.rules_loop(vwap, cols, &all, rows.start..split, state, out);
                let tail = self.plain_loop(vwap, cols, split..rows.end, state, out);
                RunStatus {
                    bad: head.bad | tail.bad,
                    unsorted: head.unsorted | tail.unsorted,
                    overflow: head.overflow.or(tail.overflow),
                }
            }
            None => self.plain_loop(vwap, cols, rows, state, out),
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
        BarOut {
            with_vwap: self.spec.interval.has_vwap(),
            ..BarOut::default()
        }
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
            let nulls = out
                .vwap
                .iter()
                .any(|v| v.is_nan())
                .then(|| out.vwap.iter().map(|v| !v.is_nan()).collect::<NullBuffer>());
            columns.push(Arc::new(Float64Array::new(out.vwap.into(), nulls)));
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

    fn max_out(&self, ts: &[i64]) -> usize {
        self.spec.interval.max_buckets(ts)
    }

    fn reserve(&self, out: &mut BarOut, ts: &[i64]) {
        out.reserve(self.spec.interval.max_buckets(ts));
    }

    fn scatter(&self, c: &TradeCols, dest: &[u32]) -> Option<TradeCols> {
        fn place<T: Copy + Default>(values: &[T], dest: &[u32]) -> Vec<T> {
            let mut out = vec![T::default(); values.len()];
            for (&v, &d) in values.iter().zip(dest) {
                out[d as usize] = v;
            }
            out
        }
        Some(TradeCols {
            ts: place(&c.ts, dest).into(),
            price: place(&c.price, dest).into(),
            size: place(&c.size, dest).into(),
            rules: c.rules.as_ref().map(|r| place(r, dest)),
        })
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

#[cfg(test)]
mod rule_tests {
    //! The rule-aware loop and the per-list rule cache against a trade-by-trade reference written from the
    //! rule table's definition (SPEC §3.1), on random lists, tapes, updates, bursts and interval edges.

    use super::*;
    use crate::conditions::{strictest, OC_FIRST};
    use crate::test_rng::Rng;
    use arrow_array::builder::{ListBuilder, StringBuilder};
    use arrow_array::{Array, Float64Array, Int64Array, StringArray, TimestampNanosecondArray};

    const CODES: &[&str] = &[
        "@", " ", "", "I", "F", "T", "4", "B", "G", "P", "Z", "9", "W", "M", "Q", "C", "XY", "1",
    ];

    #[derive(Clone)]
    struct Case {
        ts: Vec<i64>,
        price: Vec<f64>,
        size: Vec<i64>,
        lists: Vec<Option<Vec<&'static str>>>,
        tapes: Vec<Option<&'static str>>,
        updates: Vec<Option<&'static str>>,
    }

    fn case(rng: &mut Rng) -> Case {
        let n = 1 + rng.below(300) as usize;
        // 2024-03-10 04:59:58 UTC: New York midnight before the spring-forward day, then minutes and seconds.
        let mut t: i64 = 1_710_046_798_000_000_000;
        let (mut ts, mut price, mut size) = (vec![], vec![], vec![]);
        let (mut lists, mut tapes, mut updates) = (vec![], vec![], vec![]);
        // A few distinct lists, as in real data, plus now and then a random one.
        let pool: Vec<Vec<&str>> = (0..=rng.below(6))
            .map(|_| {
                (0..rng.below(4))
                    .map(|_| CODES[rng.below(CODES.len() as u64) as usize])
                    .collect()
            })
            .collect();
        for _ in 0..n {
            t += match rng.below(8) {
                0..=2 => 0,
                3 => 1_000_000_000 - t.rem_euclid(1_000_000_000),
                4 => 61_000_000_000,
                _ => rng.below(300_000_000) as i64,
            };
            ts.push(t);
            price.push(100.0 + rng.below(300) as f64 / 100.0);
            size.push(if rng.below(200) == 0 {
                i64::MAX / 2
            } else {
                rng.below(500) as i64
            });
            lists.push(match rng.below(12) {
                0 => None,
                1 => Some(
                    (0..rng.below(5))
                        .map(|_| CODES[rng.below(CODES.len() as u64) as usize])
                        .collect(),
                ),
                _ => Some(pool[rng.below(pool.len() as u64) as usize].clone()),
            });
            tapes.push(
                [
                    Some("A"),
                    Some("B"),
                    Some("C"),
                    Some("O"),
                    Some("N"),
                    None,
                    Some("CC"),
                ][rng.below(7) as usize],
            );
            updates.push(match rng.below(30) {
                0 => Some("canceled"),
                1 => Some("incorrect"),
                2 => Some("corrected"),
                _ => None,
            });
        }
        Case {
            ts,
            price,
            size,
            lists,
            tapes,
            updates,
        }
    }

    fn batch(c: &Case) -> RecordBatch {
        let mut lists = ListBuilder::new(StringBuilder::new());
        for list in &c.lists {
            match list {
                Some(codes) => {
                    for code in codes {
                        lists.values().append_value(code);
                    }
                    lists.append(true);
                }
                None => lists.append(false),
            }
        }
        RecordBatch::try_from_iter([
            (
                "timestamp",
                Arc::new(TimestampNanosecondArray::from(c.ts.clone()).with_timezone("UTC"))
                    as ArrayRef,
            ),
            (
                "price",
                Arc::new(Float64Array::from(c.price.clone())) as ArrayRef,
            ),
            (
                "size",
                Arc::new(Int64Array::from(c.size.clone())) as ArrayRef,
            ),
            ("conditions", Arc::new(lists.finish()) as ArrayRef),
            (
                "tape",
                Arc::new(StringArray::from(c.tapes.clone())) as ArrayRef,
            ),
            (
                "update",
                Arc::new(StringArray::from(c.updates.clone())) as ArrayRef,
            ),
        ])
        .unwrap()
    }

    /// Bars trade by trade, straight from the rule definitions; `Err` on an int64 volume overflow.
    fn reference(
        c: &Case,
        interval: Interval,
        rules: &Rules,
    ) -> std::result::Result<Vec<String>, String> {
        let mut order: Vec<usize> = (0..c.ts.len()).collect();
        order.sort_by_key(|&i| c.ts[i]);
        let mut bars = Vec::new();
        let mut k = 0;
        while k < order.len() {
            let (label, _, end) = interval.bucket(c.ts[order[k]]);
            let (mut open, mut high, mut low, mut close) = (None, None::<f64>, None::<f64>, None);
            let (mut volume, mut count, mut pv, mut pv_volume) = (0i64, 0i64, 0.0, 0i64);
            while k < order.len() && c.ts[order[k]] < end {
                let i = order[k];
                let p = c.price[i];
                let rule = if matches!(c.updates[i], Some("canceled" | "incorrect")) {
                    0
                } else {
                    c.lists[i].as_ref().map_or(ALL, |codes| {
                        codes
                            .iter()
                            .map(|code| rules.rule(code, c.tapes[i]))
                            .fold(ALL, strictest)
                    })
                };
                let oc = rule & OC_MASK;
                if oc == OC_ALWAYS || oc == OC_FIRST {
                    open = open.or(Some(p));
                }
                if oc == OC_ALWAYS || (oc == OC_FIRST && close.is_none()) {
                    close = Some(p);
                }
                if rule & HIGH_LOW != 0 {
                    high = Some(high.map_or(p, |h| h.max(p)));
                    low = Some(low.map_or(p, |l| l.min(p)));
                }
                if rule & VOLUME != 0 {
                    volume = volume
                        .checked_add(c.size[i])
                        .ok_or_else(|| format!("overflow at row {i}"))?;
                    count += 1;
                    if rule & HIGH_LOW != 0 {
                        pv += p * c.size[i] as f64;
                        pv_volume = pv_volume.saturating_add(c.size[i]);
                    }
                }
                k += 1;
            }
            if let (Some(o), Some(h), Some(l), Some(cl)) = (open, high, low, close) {
                if volume > 0 {
                    let vwap = if interval.has_vwap() && pv_volume > 0 {
                        format!(" {:?}", pv / pv_volume as f64)
                    } else {
                        String::new()
                    };
                    bars.push(format!(
                        "{label} {o:?} {h:?} {l:?} {cl:?} {volume} {count}{vwap}"
                    ));
                }
            }
        }
        Ok(bars)
    }

    fn rows(out: &RecordBatch) -> Vec<String> {
        let f = |name: &str| {
            out.column_by_name(name)
                .unwrap()
                .as_any()
                .downcast_ref::<Float64Array>()
                .unwrap()
                .clone()
        };
        let i = |name: &str| {
            out.column_by_name(name)
                .unwrap()
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .clone()
        };
        let ts = out
            .column_by_name("timestamp")
            .unwrap()
            .as_any()
            .downcast_ref::<TimestampNanosecondArray>()
            .unwrap()
            .clone();
        let (open, high, low, close) = (f("open"), f("high"), f("low"), f("close"));
        let (volume, count) = (i("volume"), i("trade_count"));
        let vwap = out
            .column_by_name("vwap")
            .map(|v| v.as_any().downcast_ref::<Float64Array>().unwrap().clone());
        (0..out.num_rows())
            .map(|r| {
                let v = vwap.as_ref().map_or(String::new(), |v| {
                    if v.is_valid(r) {
                        format!(" {:?}", v.value(r))
                    } else {
                        String::new()
                    }
                });
                format!(
                    "{} {:?} {:?} {:?} {:?} {} {}{v}",
                    ts.value(r),
                    open.value(r),
                    high.value(r),
                    low.value(r),
                    close.value(r),
                    volume.value(r),
                    count.value(r)
                )
            })
            .collect()
    }

    #[test]
    fn rule_loop_equals_trade_by_trade_reference() {
        let mut rng = Rng(0xA1FA_CA00_0000_0013);
        for round in 0..400 {
            let c = case(&mut rng);
            let interval = ["1s", "1m", "1d"][round % 3];
            let spec = BarSpec::parse(interval, "alpaca").unwrap();
            let want = reference(&c, spec.interval(), &spec.rules);
            let b = batch(&c);
            for threads in [1, 3] {
                // One shot, and streamed in random slices (the open bar crosses batches).
                let one = bars([Ok(b.clone())], interval, "alpaca", None, false, threads);
                let mut agg = bar_aggregator(interval, "alpaca", None, false, threads)
                    .unwrap()
                    .with_min_rows_per_thread(1)
                    .with_min_rows_per_output_row(0);
                let mut start = 0;
                let mut parts = Vec::new();
                let mut failed = None;
                while start < b.num_rows() {
                    let len = 1 + rng.below(40) as usize;
                    let len = len.min(b.num_rows() - start);
                    match agg.push(&b.slice(start, len)) {
                        Ok(out) => parts.extend(rows(&out)),
                        Err(err) => {
                            failed = Some(err.to_string());
                            break;
                        }
                    }
                    start += len;
                }
                match &want {
                    Ok(want) => {
                        assert_eq!(&rows(&one.unwrap()), want, "round {round} {interval}");
                        // Streaming sorts within a batch only; these cases are mostly sorted, so compare when the
                        // stream accepted every slice.
                        if failed.is_none() {
                            parts.extend(rows(&agg.finish().unwrap()));
                            assert_eq!(&parts, want, "round {round} {interval} streamed");
                        }
                    }
                    Err(_) => {
                        let err = one.unwrap_err().to_string();
                        assert!(err.contains("size"), "round {round}: {err}");
                    }
                }
            }
        }
    }

    #[test]
    fn invalid_values_are_named_under_the_rules_whatever_the_trade_counts_for() {
        // The rule loop checks validity on the extremes of every trade, also trades whose rule leaves high, low and
        // volume alone (an odd lot, "I", or a canceled trade).
        let s = 1_000_000_000;
        let bad_prices = [
            f64::NAN,
            -f64::NAN,
            0.0,
            -0.0,
            -1.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        for (list, update) in [
            (vec!["@"], None),
            (vec!["@", "I"], None),
            (vec!["@"], Some("canceled")),
        ] {
            for at in 0..4 {
                let base = Case {
                    ts: vec![s, s + 1, s + 2, 2 * s],
                    price: vec![10.0, 11.0, 12.0, 13.0],
                    size: vec![100, 5, 100, 100],
                    lists: vec![Some(vec!["@"]); 4],
                    tapes: vec![Some("C"); 4],
                    updates: vec![None; 4],
                };
                let with = |edit: &dyn Fn(&mut Case)| {
                    let mut c = base.clone();
                    c.lists[at] = Some(list.clone());
                    c.updates[at] = update;
                    edit(&mut c);
                    bars([Ok(batch(&c))], "1s", "alpaca", Some("X".into()), false, 1)
                        .unwrap_err()
                        .to_string()
                };
                for bad in bad_prices {
                    let err = with(&|c| c.price[at] = bad);
                    assert!(
                        err.contains(&format!("'price', row {at}")),
                        "{bad} at {at}: {err}"
                    );
                }
                let err = with(&|c| c.size[at] = -1);
                assert!(
                    err.contains(&format!("'size', row {at}")),
                    "size at {at}: {err}"
                );
            }
        }
    }

    #[test]
    fn a_bar_begun_under_rules_ends_right_without_them() {
        let mut rng = Rng(0x0B0B_2222_3333_4444);
        for round in 0..200 {
            let mut c = case(&mut rng);
            c.ts.sort_unstable();
            // Sizes above 0: a bar wholly of trades without rules is emitted even with volume 0, one with rules is not.
            c.size.iter_mut().for_each(|s| *s = *s % 1000 + 1);
            let n = c.ts.len();
            let cut = rng.below(n as u64 + 1) as usize;
            let interval = ["1s", "1m", "1d"][round % 3];
            let spec = BarSpec::parse(interval, "alpaca").unwrap();
            let b = batch(&c);
            // One part has no conditions, tape or update columns: its trades count for everything.
            let (head, tail) = (b.slice(0, cut), b.slice(cut, n - cut));
            let plain = |part: &RecordBatch| part.project(&[0, 1, 2]).unwrap();
            for (first, second, plain_rows) in [
                (head.clone(), plain(&tail), cut..n),
                (plain(&head), tail.clone(), 0..cut),
            ] {
                let mut agg = bar_aggregator(interval, "alpaca", None, false, 1).unwrap();
                let mut got = rows(&agg.push(&first).unwrap());
                got.extend(rows(&agg.push(&second).unwrap()));
                got.extend(rows(&agg.finish().unwrap()));
                let mut want = c.clone();
                for i in plain_rows {
                    want.lists[i] = None;
                    want.updates[i] = None;
                }
                let want = reference(&want, spec.interval(), &spec.rules).unwrap();
                assert_eq!(got, want, "round {round} {interval} cut {cut}");
            }
        }
    }
}
