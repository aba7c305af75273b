//! Criterion benches of the pure-Rust kernels (no pyo3):
//!
//! ```text
//! CARGO_TARGET_DIR=/tmp/tl-target cargo bench --no-default-features --bench kernels
//! ```
//!
//! Input is 4M synthetic, time-sorted trades and quotes of one symbol over eight sessions' worth of seconds (about
//! 20 per second, like SPY over a month), built with a tiny xorshift PRNG so the bench needs no extra dependency
//! and is identical run to run. Each kernel runs on one thread and on all cores; 1s bars also with Alpaca's rules
//! (six condition lists in realistic shares on tape C).

// `criterion_group!` defines the bench's entry function without a doc comment.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray,
};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const N_TRADES: usize = 4_000_000;
const N_QUOTES: usize = 4_000_000;
/// 2024-04-01 13:30:00 UTC (09:30 New York).
const SESSION_START_NS: i64 = 1_711_978_200_000_000_000;
/// Eight 6.5-hour sessions back to back.
const SESSION_NS: i64 = 8 * 23_400 * 1_000_000_000;

/// xorshift64* — deterministic, good enough for synthetic market data.
struct XorShift(u64);

impl XorShift {
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[0, n)`.
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Sorted timestamps spread over `SESSION_NS`, with ~10% repeating the previous one (bursts).
fn timestamps(rng: &mut XorShift, n: usize) -> Vec<i64> {
    let mean_gap = (SESSION_NS / n as i64).max(1) as u64;
    let mut ts = Vec::with_capacity(n);
    let mut t = SESSION_START_NS;
    for _ in 0..n {
        if rng.below(10) != 0 {
            t += rng.below(2 * mean_gap) as i64;
        }
        ts.push(t);
    }
    ts
}

/// A penny random walk in integer cents, starting at $500.
fn cents_path(rng: &mut XorShift, n: usize) -> Vec<i64> {
    let mut cents = 50_000_i64;
    (0..n)
        .map(|_| {
            cents = (cents + rng.below(5) as i64 - 2).max(100);
            cents
        })
        .collect()
}

fn utc(ts: Vec<i64>) -> ArrayRef {
    Arc::new(TimestampNanosecondArray::from(ts).with_timezone("UTC"))
}

fn trades_batch(n: usize) -> RecordBatch {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let ts = timestamps(&mut rng, n);
    let price: Vec<f64> = cents_path(&mut rng, n)
        .into_iter()
        .map(|c| c as f64 / 100.0)
        .collect();
    let size: Vec<i64> = (0..n)
        .map(|_| {
            if rng.unit() < 0.4 {
                1 + rng.below(99) as i64
            } else {
                100 * (1 + rng.below(5) as i64)
            }
        })
        .collect();
    RecordBatch::try_from_iter([
        ("timestamp", utc(ts)),
        ("price", Arc::new(Float64Array::from(price)) as ArrayRef),
        ("size", Arc::new(Int64Array::from(size)) as ArrayRef),
    ])
    .expect("valid trades batch")
}

/// The trades with Alpaca's columns: a few condition lists in realistic shares, tape C, no updates.
fn with_conditions(trades: &RecordBatch) -> RecordBatch {
    let mut rng = XorShift(0x0DDB_A11C_0DE5_0013);
    let lists: [&[&str]; 6] = [
        &["@"],
        &["@", "I"],
        &["@", "F"],
        &["@", "T"],
        &["@", "F", "I"],
        &["@", "T", "I"],
    ];
    let mut conditions = ListBuilder::new(StringBuilder::new());
    for _ in 0..trades.num_rows() {
        let pick = match rng.below(100) {
            0..=44 => 0,
            45..=77 => 1,
            78..=85 => 2,
            86..=90 => 3,
            91..=95 => 4,
            _ => 5,
        };
        for code in lists[pick] {
            conditions.values().append_value(code);
        }
        conditions.append(true);
    }
    let tape: StringArray = std::iter::repeat_n(Some("C"), trades.num_rows()).collect();
    let schema = trades.schema();
    let mut columns: Vec<(&str, ArrayRef)> = schema
        .fields()
        .iter()
        .zip(trades.columns())
        .map(|(f, c)| (f.name().as_str(), Arc::clone(c)))
        .collect();
    columns.push(("conditions", Arc::new(conditions.finish())));
    columns.push(("tape", Arc::new(tape)));
    RecordBatch::try_from_iter(columns).expect("valid trades batch")
}

fn quotes_batch(n: usize) -> RecordBatch {
    let mut rng = XorShift(0xD1B5_4A32_D192_ED03);
    let ts = timestamps(&mut rng, n);
    let mid = cents_path(&mut rng, n);
    let mut bid = Vec::with_capacity(n);
    let mut ask = Vec::with_capacity(n);
    let mut bid_size = Vec::with_capacity(n);
    let mut ask_size = Vec::with_capacity(n);
    for m in mid {
        let spread = [0, 1, 1, 1, 2, 2, 3, 5][rng.below(8) as usize];
        let b = m - spread / 2;
        let r = rng.unit();
        // ~0.5% crossed, ~2% one-sided: invalid quotes the kernel must skip.
        let a = if r < 0.005 {
            b - 1
        } else if r < 0.025 {
            0
        } else {
            b + spread
        };
        bid.push(b as f64 / 100.0);
        ask.push(a as f64 / 100.0);
        bid_size.push(100 * (1 + rng.below(19) as i64));
        ask_size.push(if a == 0 {
            0
        } else {
            100 * (1 + rng.below(19) as i64)
        });
    }
    RecordBatch::try_from_iter([
        ("timestamp", utc(ts)),
        ("bid_price", Arc::new(Float64Array::from(bid)) as ArrayRef),
        ("bid_size", Arc::new(Int64Array::from(bid_size)) as ArrayRef),
        ("ask_price", Arc::new(Float64Array::from(ask)) as ArrayRef),
        ("ask_size", Arc::new(Int64Array::from(ask_size)) as ArrayRef),
    ])
    .expect("valid quotes batch")
}

fn kernels(c: &mut Criterion) {
    let trades = trades_batch(N_TRADES);
    let alpaca = with_conditions(&trades);
    let quotes = quotes_batch(N_QUOTES);

    let mut group = c.benchmark_group("kernels");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));

    let threads = ticklake_core::stream::default_threads();
    group.throughput(Throughput::Elements(trades.num_rows() as u64));
    for interval in ["1s", "1m"] {
        for t in [1, threads] {
            group.bench_function(format!("bars_{interval}_threads{t}"), |b| {
                b.iter(|| {
                    let out = ticklake_core::bars::bars(
                        std::iter::once(Ok(trades.clone())),
                        black_box(interval),
                        "all",
                        Some("SPY".into()),
                        false,
                        t,
                    )
                    .expect("bars");
                    black_box(out.num_rows())
                });
            });
        }
    }

    for t in [1, threads] {
        group.bench_function(format!("bars_1s_alpaca_threads{t}"), |b| {
            b.iter(|| {
                let out = ticklake_core::bars::bars(
                    std::iter::once(Ok(alpaca.clone())),
                    "1s",
                    black_box("alpaca"),
                    Some("SPY".into()),
                    false,
                    t,
                )
                .expect("bars");
                black_box(out.num_rows())
            });
        });
    }

    group.throughput(Throughput::Elements(quotes.num_rows() as u64));
    for t in [1, threads] {
        group.bench_function(format!("best_quotes_threads{t}"), |b| {
            b.iter(|| {
                let out = ticklake_core::quotes::best_quotes(
                    std::iter::once(Ok(quotes.clone())),
                    Some("SPY".into()),
                    false,
                    t,
                )
                .expect("best_quotes");
                black_box(out.num_rows())
            });
        });
    }
    group.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
