//! `DELTA_BINARY_PACKED`: blocks of 128 deltas in 4 miniblocks of 32, each bit-packed at its own width.

use super::rle::put_uleb;

fn put_zigzag(out: &mut Vec<u8>, v: i64) {
    put_uleb(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Appends `values` as one `DELTA_BINARY_PACKED` stream (blocks of 128 deltas, 4 miniblocks of 32).
pub(super) fn put_delta(out: &mut Vec<u8>, values: &[i64]) {
    put_uleb(out, 128);
    put_uleb(out, 4);
    put_uleb(out, values.len() as u64);
    put_zigzag(out, values.first().copied().unwrap_or(0));
    let mut deltas = [0i64; 128];
    let mut packed = [0u64; 128];
    let mut next = 1;
    while next < values.len() {
        let m = (values.len() - next).min(128);
        let mut min = i64::MAX;
        for (d, pair) in deltas.iter_mut().zip(values[next - 1..next + m].windows(2)) {
            *d = pair[1].wrapping_sub(pair[0]);
            min = min.min(*d);
        }
        next += m;
        put_zigzag(out, min);
        let mut widths = [0u8; 4];
        for (b, width) in widths.iter_mut().enumerate().take(m.div_ceil(32)) {
            let mut any = 0u64;
            for t in b * 32..b * 32 + 32 {
                let u = if t < m {
                    deltas[t].wrapping_sub(min) as u64
                } else {
                    0
                };
                packed[t] = u;
                any |= u;
            }
            *width = (64 - any.leading_zeros()) as u8;
        }
        out.extend_from_slice(&widths);
        for (b, &width) in widths.iter().enumerate().take(m.div_ceil(32)) {
            put_miniblock(out, &packed[b * 32..b * 32 + 32], u32::from(width));
        }
    }
}

/// 32 values bit-packed at `width` (0-64) bits, LSB first: exactly `4 * width` bytes.
fn put_miniblock(out: &mut Vec<u8>, values: &[u64], width: u32) {
    if width == 0 {
        return;
    }
    let (mut acc, mut bits) = (0u128, 0u32);
    for &v in values {
        acc |= u128::from(v) << bits;
        bits += width;
        if bits >= 64 {
            out.extend_from_slice(&(acc as u64).to_le_bytes());
            acc >>= 64;
            bits -= 64;
        }
    }
    out.extend_from_slice(&acc.to_le_bytes()[..(bits / 8) as usize]);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int64Array, TimestampNanosecondArray};
    use parquet::basic::{Compression, Encoding};

    use crate::column_chunk::tests::{encodings, round_trip, LENGTHS};
    use crate::column_chunk::PAGE_ROWS;
    use crate::test_rng::Rng;

    #[test]
    fn delta_integers_round_trip_at_every_block_edge_and_extreme() {
        let mut rng = Rng(7);
        let extremes = [i64::MIN, i64::MAX, 0, -1, 1, i64::MIN + 1, i64::MAX - 1];
        for n in LENGTHS.into_iter().chain([PAGE_ROWS + 3, 2 * PAGE_ROWS]) {
            let sorted: Vec<i64> = (0..n as i64)
                .map(|i| 1_700_000_000_000_000_000 + i * 1_000_000_007)
                .collect();
            let wild = rng.pick(n, &extremes, 3);
            let small: Vec<i64> = (0..n).map(|_| rng.below(1000) as i64).collect();
            let ts: ArrayRef =
                Arc::new(TimestampNanosecondArray::from(sorted).with_timezone("UTC"));
            let (_, meta) = round_trip(
                vec![
                    ("timestamp", ts),
                    ("wild", Arc::new(Int64Array::from(wild))),
                    ("small", Arc::new(Int64Array::from(small))),
                ],
                &["timestamp", "wild", "small"],
            );
            for c in 0..3 {
                assert!(
                    encodings(&meta, c).contains(&Encoding::DELTA_BINARY_PACKED),
                    "n={n}"
                );
            }
            for c in 0..3 {
                // SPEC §2: every chunk is ZSTD, even random sizes that it barely shrinks.
                let codec = meta.row_group(0).column(c).compression();
                assert!(matches!(codec, Compression::ZSTD(_)), "n={n}");
            }
        }
    }
}
