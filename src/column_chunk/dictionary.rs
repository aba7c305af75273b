//! Dictionaries for a chunk: numbers in a narrow range through a direct table (keys in value order), other
//! values through an open-addressing hash table (keys in order of first appearance), strings as packed keys.

use arrow_array::{Array, StringArray};
use parquet::data_type::ByteArray;
use parquet::file::statistics::Statistics;

use super::{Body, MAX_DICT_ENTRIES, MAX_KEY_BYTES};

/// Dictionary-encodes 8-byte numbers by their bits, or stores them PLAIN when the dictionary does not pay. When
/// `slots` maps values into `0..range` (see [`int_slots`], [`float_slots`]), entries are found by a direct table
/// lookup and the values without a slot of their own through a hash table; without slots, or when most values lack
/// one, all of them through the hash table.
pub(super) fn number_body<'a, T: Copy + arrow_buffer::ArrowNativeType>(
    values: &'a [T],
    bits: impl Fn(T) -> u64,
    slots: Option<impl Slots<T>>,
    table: &mut Vec<u32>,
) -> Body<'a> {
    let found = slots
        .and_then(|slots| counted_dictionary(values, &bits, &slots, table))
        // By bits, so the shortcut for a repeated value never takes -0.0 for 0.0.
        .or_else(|| hashed_dictionary(values.iter().map(|&v| bits(v)), values.len(), Some));
    let Some((keys, indices)) = found.filter(|(keys, _)| keys.len() <= MAX_DICT_ENTRIES) else {
        return Body::Plain(arrow_buffer::ToByteSlice::to_byte_slice(values));
    };
    let width = index_width(keys.len());
    let dictionary_bits = keys.len() * 64 + values.len() * usize::from(width);
    if dictionary_bits >= values.len() * 64 {
        return Body::Plain(arrow_buffer::ToByteSlice::to_byte_slice(values));
    }
    let page = keys.iter().flat_map(|k| k.to_le_bytes()).collect();
    Body::Dictionary {
        indices,
        width,
        page,
        entries: keys.len(),
    }
}

/// A dictionary from a counting pass instead of hashing: mark each value's slot, number the marked slots in value
/// order, then look every value's number up. No branch depends on the table, so the lookups overlap. A value without
/// a slot of its own (a float just off the grid, such as a sum of two prices) goes through a hash table instead and
/// its key follows the slots' keys (in order of first appearance). `None` when most of the first values have no slot
/// of their own (the caller then hashes them all) or there are more than [`MAX_DICT_ENTRIES`] of those. `table` is the
/// encoder's, all zeros between uses.
fn counted_dictionary<T: Copy, S: Slots<T>>(
    values: &[T],
    bits: impl Fn(T) -> u64,
    slots: &S,
    table: &mut Vec<u32>,
) -> Option<(Vec<u64>, Vec<u32>)> {
    /// Of the first this many values, at most half may lack a slot of their own.
    const PROBE: usize = 1024;
    let range = slots.range();
    // One spare slot past the range takes the marks of values without a slot, so the marking loop has no branch.
    if table.len() <= range {
        table.resize(range + 1, 0);
    }
    let table = &mut table[..=range];
    let n = values.len();
    // Slots first (range <= 2^20, so they fit the index type), replaced by entry numbers below.
    let mut indices = vec![0u32; n];
    // The rows without a slot of their own, gathered without a branch (a write past the last one is overwritten);
    // none where every value has its own slot (integers).
    let mut off_rows = if S::ALWAYS_OWN {
        Vec::new()
    } else {
        vec![0u32; n + 1]
    };
    let mut off_grid = 0;
    let mut start = 0;
    while start < n {
        let end = (start + PROBE).min(n);
        // The slots first, in a loop of arithmetic alone (it vectorises: the float slots divide, and two divisions
        // at a time halve that cost), then the marks from them.
        for (index, &v) in indices[start..end].iter_mut().zip(&values[start..end]) {
            let (at, own) = slots.slot(v);
            *index = if own { at as u32 } else { range as u32 };
        }
        if S::ALWAYS_OWN {
            for &at in &indices[start..end] {
                table[at as usize] = 1;
            }
        } else {
            for (row, &at) in (start..end).zip(&indices[start..end]) {
                let at = at as usize;
                table[at] = 1;
                off_rows[off_grid] = row as u32;
                off_grid += usize::from(at == range);
            }
        }
        if start == 0 && off_grid > end / 2 {
            table.fill(0);
            return None;
        }
        start = end;
    }
    let off_rows = &off_rows[..off_grid];
    let mut others = Dictionary::<u64>::new();
    let mut off_entries = Vec::with_capacity(off_grid);
    for &row in off_rows {
        off_entries.push(others.index(bits(values[row as usize])));
        if others.keys.len() > MAX_DICT_ENTRIES {
            table.fill(0);
            return None;
        }
    }
    table[range] = 0;
    let mut keys = Vec::new();
    // Blocks of 16 slots tested at once (an OR the compiler vectorises): most blocks of a sparse table are empty.
    for (block, entries) in table[..range].chunks_mut(16).enumerate() {
        if entries.iter().fold(0, |any, &e| any | e) == 0 {
            continue;
        }
        for (k, entry) in entries.iter_mut().enumerate() {
            if *entry != 0 {
                *entry = keys.len() as u32;
                keys.push(slots.key(block * 16 + k));
            }
        }
    }
    for index in &mut indices {
        *index = table[*index as usize];
    }
    // The hashed values' entries follow the counted ones.
    let first_other = keys.len() as u32;
    for (&row, &entry) in off_rows.iter().zip(&off_entries) {
        indices[row as usize] = first_other + entry;
    }
    keys.extend(others.keys);
    table.fill(0);
    Some((keys, indices))
}

/// A dictionary (keys in order of first appearance, one entry number per value) of the `count` values through a
/// hash table; a value equal to the one before skips the lookup. `None` when `key` declines a value or there are more than
/// [`MAX_DICT_ENTRIES`] distinct keys.
fn hashed_dictionary<V: Copy + PartialEq, K: Key + Default>(
    values: impl Iterator<Item = V>,
    count: usize,
    key: impl Fn(V) -> Option<K>,
) -> Option<(Vec<K>, Vec<u32>)> {
    let mut dict = Dictionary::<K>::new();
    let mut indices = Vec::with_capacity(count);
    let mut previous: Option<(V, u32)> = None;
    for v in values {
        let index = match previous {
            Some((p, i)) if p == v => i,
            _ => {
                let i = dict.index(key(v)?);
                if dict.keys.len() > MAX_DICT_ENTRIES {
                    return None;
                }
                previous = Some((v, i));
                i
            }
        };
        indices.push(index);
    }
    Some((dict.keys, indices))
}

/// A one-to-one, order-preserving map of a chunk's values onto `0..range()` (see [`int_slots`], [`float_slots`]).
pub(super) trait Slots<T> {
    /// Every value has a slot of its own (nothing is hashed).
    const ALWAYS_OWN: bool;
    fn range(&self) -> usize;
    /// A value's slot, and whether the slot is the value's own (false: the value is hashed instead).
    fn slot(&self, value: T) -> (usize, bool);
    /// The key (bits) of the value in a marked slot.
    fn key(&self, at: usize) -> u64;
}

/// Integers by their offset from the chunk's minimum.
pub(super) struct IntSlots {
    min: i64,
    range: usize,
}

impl Slots<i64> for IntSlots {
    const ALWAYS_OWN: bool = true;

    fn range(&self) -> usize {
        self.range
    }

    #[inline]
    fn slot(&self, v: i64) -> (usize, bool) {
        (v.wrapping_sub(self.min) as usize, true)
    }

    fn key(&self, at: usize) -> u64 {
        self.min.wrapping_add(at as i64) as u64
    }
}

/// Floats by their step on the 1/10,000 grid above the chunk's lowest step.
pub(super) struct FloatSlots {
    lo: f64,
    /// The bits of `lo + MAGIC`: a value's slot is the difference of its shifted step's bits from these.
    lo_bits: u64,
    range: usize,
}

impl Slots<f64> for FloatSlots {
    const ALWAYS_OWN: bool = false;

    fn range(&self) -> usize {
        self.range
    }

    #[inline]
    fn slot(&self, v: f64) -> (usize, bool) {
        // Steps below 2^51 in magnitude shifted by MAGIC lie in [2^52, 2^53), where a step more is one more in the
        // bits: the slot comes from an integer subtraction, not a float-to-integer conversion.
        let shifted = shifted_step(v);
        let at = shifted.to_bits().wrapping_sub(self.lo_bits) as usize;
        // Own only when the grid point converts back to the very same bits. A quiet NaN converts back to itself,
        // and its slot is out of range: never its own.
        (
            at,
            ((shifted - MAGIC) / GRID).to_bits() == v.to_bits() && !v.is_nan(),
        )
    }

    fn key(&self, at: usize) -> u64 {
        // Only marked slots are asked for, and a value marks its slot only when it is this very grid point.
        ((self.lo + at as f64) / GRID).to_bits()
    }
}

/// Steps per unit of the grid floats are tried on: 1/10,000 (sub-penny prices).
const GRID: f64 = 10_000.0;

/// Largest direct table (entries) for `rows` values: a few per row, at most 1M (4 MB).
fn table_limit(rows: usize) -> usize {
    (rows * 4).clamp(1 << 16, 1 << 20)
}

/// Integers in a narrow range index a direct table by their offset from the minimum.
pub(super) fn int_slots(values: &[i64], min: i64, max: i64) -> Option<IntSlots> {
    let range = usize::try_from(i128::from(max) - i128::from(min) + 1).ok()?;
    (range <= table_limit(values.len())).then_some(IntSlots { min, range })
}

/// Floats index a direct table by their step on the 1/10,000 grid when `min..=max` spans few steps. A value has a
/// slot of its own only when its grid point converts back to the very same bits (so -0.0, NaN, infinities and
/// off-grid values never share a slot with another value); grid steps are monotonic, so every slot is in range.
pub(super) fn float_slots(rows: usize, min: f64, max: f64) -> Option<FloatSlots> {
    let (lo, hi) = (grid_step(min), grid_step(max));
    // Bounded well inside f64's exact integers, so the conversions below are exact.
    if !(lo.abs() < 1e15 && hi.abs() < 1e15) {
        return None;
    }
    let range = (hi - lo) as usize + 1;
    let lo_bits = (lo + MAGIC).to_bits();
    (range <= table_limit(rows)).then_some(FloatSlots { lo, lo_bits, range })
}

/// 1.5 * 2^52: added to a float below 2^51 in magnitude, leaves it rounded to an integer (ties to even).
const MAGIC: f64 = 6_755_399_441_055_744.0;

/// `v * GRID` rounded to the nearest integer (ties to even) with plain adds, exact below 2^51 in magnitude (beyond,
/// the result is off the grid and [`float_slots`] declines); `f64::round` is a libm call on baseline x86-64.
#[inline]
fn grid_step(v: f64) -> f64 {
    shifted_step(v) - MAGIC
}

/// `v * GRID` rounded and shifted by [`MAGIC`] (the step's integer sits in the low bits).
#[inline]
fn shifted_step(v: f64) -> f64 {
    v * GRID + MAGIC
}

/// Dictionary-encodes the non-null strings; `None` when a string is longer than [`MAX_KEY_BYTES`] or there are too
/// many distinct ones (arrow-rs then writes the column).
pub(super) fn text_body(strings: &StringArray) -> Option<(Body<'static>, Statistics)> {
    let count = strings.len() - strings.null_count();
    let (keys, indices) =
        if strings.null_count() == 0 && crate::schema::run_end(strings, 0) == count {
            // One value throughout (a lake file's symbol): found by comparing blocks of bytes, not row by row.
            (vec![text_key(strings.value(0))?], vec![0; count])
        } else {
            hashed_dictionary(strings.iter().flatten(), count, text_key)?
        };
    let keys: Vec<[u8; 16]> = keys.iter().map(|k| k.to_le_bytes()).collect();
    // The top byte of a key is the string's length.
    let entries: Vec<&[u8]> = keys.iter().map(|k| &k[..usize::from(k[15])]).collect();
    let mut page = Vec::new();
    for bytes in &entries {
        page.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        page.extend_from_slice(bytes);
    }
    let min = entries.iter().min().map(|b| ByteArray::from(b.to_vec()));
    let max = entries.iter().max().map(|b| ByteArray::from(b.to_vec()));
    let nulls = strings.null_count() as u64;
    let statistics = Statistics::byte_array(min, max, None, Some(nulls), false);
    let body = Body::Dictionary {
        indices,
        width: index_width(entries.len()),
        page,
        entries: entries.len(),
    };
    Some((body, statistics))
}

/// A string of at most [`MAX_KEY_BYTES`] bytes packed with its length (top byte) into one `u128`.
fn text_key(s: &str) -> Option<u128> {
    let bytes = s.as_bytes();
    if bytes.len() > MAX_KEY_BYTES {
        return None;
    }
    let mut raw = [0u8; 16];
    raw[..bytes.len()].copy_from_slice(bytes);
    raw[15] = bytes.len() as u8;
    Some(u128::from_le_bytes(raw))
}

/// Bits per dictionary index (at least 1).
fn index_width(entries: usize) -> u8 {
    let max = entries.saturating_sub(1) as u64;
    (64 - max.leading_zeros()).max(1) as u8
}

/// A key that can be hashed into the dictionary's table.
trait Key: Copy + Eq {
    fn hash(self) -> u64;
}

impl Key for u64 {
    fn hash(self) -> u64 {
        self.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

impl Key for u128 {
    fn hash(self) -> u64 {
        ((self as u64) ^ ((self >> 64) as u64).rotate_left(29)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

/// An insertion-ordered set of keys with an open-addressing index (linear probing, at most half full). A slot's key
/// and entry number sit in parallel arrays, so a probe's two loads do not wait on each other.
struct Dictionary<K: Key> {
    keys: Vec<K>,
    slot_keys: Vec<K>,
    /// Entry number per slot; `u32::MAX` is empty.
    slot_entries: Vec<u32>,
    shift: u32,
}

impl<K: Key + Default> Dictionary<K> {
    fn new() -> Self {
        let mut dict = Self {
            keys: Vec::new(),
            slot_keys: Vec::new(),
            slot_entries: Vec::new(),
            shift: 0,
        };
        dict.resize(1 << 10);
        dict
    }

    /// The entry number of `key`, added at the end when new.
    #[inline]
    fn index(&mut self, key: K) -> u32 {
        let mask = self.slot_entries.len() - 1;
        let mut slot = (key.hash() >> self.shift) as usize;
        loop {
            let entry = self.slot_entries[slot];
            if self.slot_keys[slot] == key && entry != u32::MAX {
                return entry;
            }
            if entry == u32::MAX {
                let entry = self.keys.len() as u32;
                self.keys.push(key);
                self.slot_keys[slot] = key;
                self.slot_entries[slot] = entry;
                if self.keys.len() * 2 > self.slot_entries.len() {
                    self.resize(self.slot_entries.len() * 2);
                }
                return entry;
            }
            slot = (slot + 1) & mask;
        }
    }

    fn resize(&mut self, size: usize) {
        self.slot_keys = vec![K::default(); size];
        self.slot_entries = vec![u32::MAX; size];
        self.shift = 64 - size.trailing_zeros();
        let mask = size - 1;
        for (i, &key) in self.keys.iter().enumerate() {
            let mut slot = (key.hash() >> self.shift) as usize;
            while self.slot_entries[slot] != u32::MAX {
                slot = (slot + 1) & mask;
            }
            self.slot_keys[slot] = key;
            self.slot_entries[slot] = i as u32;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Float64Array, Int64Array, StringArray};
    use parquet::basic::Encoding;

    use super::{counted_dictionary, float_slots, grid_step, GRID};
    use crate::column_chunk::statistics::float_range;
    use crate::column_chunk::tests::{encodings, round_trip, LENGTHS};
    use crate::column_chunk::PAGE_ROWS;
    use crate::test_rng::Rng;

    #[test]
    fn dictionary_numbers_round_trip_with_runs_zeros_and_fallback_to_plain() {
        let mut rng = Rng(11);
        let specials = [
            0.0,
            -0.0,
            f64::MIN_POSITIVE,
            5e-324,
            f64::MAX,
            1.5,
            100.01,
            100.02,
        ];
        for n in LENGTHS
            .into_iter()
            .chain([PAGE_ROWS + 1, 3 * PAGE_ROWS / 2])
        {
            let pool: Vec<f64> = specials
                .iter()
                .copied()
                .chain((0..300).map(|i| 100.0 + f64::from(i) / 100.0))
                .collect();
            let prices = rng.pick(n, &pool, 20);
            let distinct: Vec<f64> = (0..n).map(|i| 1.0 + i as f64 / 3.0).collect();
            let sizes = rng.pick(n, &[0, 100, 200, i64::MAX, i64::MIN], 12);
            // Narrow ranges take the direct-table path: on the 1/10,000 grid, with both zeros, or one value just off.
            let grid: Vec<f64> = (0..400).map(|i| 170.0 + f64::from(i) / 10_000.0).collect();
            let on_grid = rng.pick(n, &grid, 5);
            let mut zeros = rng.pick(n, &[0.0, -0.0, 0.01, 0.02, 0.0001], 5);
            let mut off = on_grid.clone();
            off[rng.below(n as u64) as usize] = 170.0 + 1e-9;
            zeros[0] = -0.0;
            let narrow_sizes = rng.pick(n, &[100, 200, 300, 5000], 6);
            // NaNs of every kind among grid values (a quiet NaN's grid point is itself, its slot out of range).
            let nans = [
                f64::NAN,
                -f64::NAN,
                f64::from_bits(0x7ff8_0000_0000_0001),
                f64::from_bits(0x7ff0_0000_0000_0001),
            ];
            let mut with_nan = on_grid.clone();
            for (k, nan) in nans.into_iter().enumerate() {
                with_nan[(k * 7) % n] = nan;
            }
            let (_, meta) = round_trip(
                vec![
                    ("price", Arc::new(Float64Array::from(prices)) as ArrayRef),
                    ("distinct", Arc::new(Float64Array::from(distinct))),
                    ("size", Arc::new(Int64Array::from(sizes))),
                    ("on_grid", Arc::new(Float64Array::from(on_grid))),
                    ("zeros", Arc::new(Float64Array::from(zeros))),
                    ("off_grid", Arc::new(Float64Array::from(off))),
                    ("narrow_sizes", Arc::new(Int64Array::from(narrow_sizes))),
                    ("with_nan", Arc::new(Float64Array::from(with_nan))),
                ],
                &[],
            );
            // A dictionary pays once values repeat (for one row, plain is smaller).
            let dictionary = encodings(&meta, 0).contains(&Encoding::RLE_DICTIONARY);
            assert!(dictionary || n < 100, "n={n}");
            assert!(!dictionary || n > 1, "n={n}");
            if n > 8 {
                assert!(
                    !encodings(&meta, 1).contains(&Encoding::RLE_DICTIONARY),
                    "n={n}: all distinct is plain"
                );
            }
        }
    }

    /// Whether `v` is its own grid point.
    fn slots_own(v: f64) -> bool {
        (grid_step(v) / GRID).to_bits() == v.to_bits()
    }

    #[test]
    fn values_just_off_the_grid_are_hashed_beside_the_counted_ones() {
        // Highs as a close plus a spread: about a quarter of the sums miss the grid point's bits by an ulp.
        let mut rng = Rng(9);
        for n in LENGTHS.into_iter().chain([PAGE_ROWS + 5]) {
            let close: Vec<f64> = (0..n)
                .map(|_| 500.0 + rng.below(200) as f64 / 100.0)
                .collect();
            let high: Vec<f64> = close
                .iter()
                .map(|c| c + rng.below(9) as f64 / 100.0)
                .collect();
            if n >= 1000 {
                let off = high.iter().filter(|&&v| !slots_own(v)).count();
                assert!(off > n / 10 && off < n / 2, "n={n}: {off} off the grid");
            }
            let (lo, hi) = float_range(&high);
            let slots = float_slots(n, lo, hi).unwrap();
            let mut table = Vec::new();
            let (keys, indices) =
                counted_dictionary(&high, f64::to_bits, &slots, &mut table).unwrap();
            assert!(
                table.iter().all(|&t| t == 0),
                "n={n}: the table is left zeroed"
            );
            // One entry per distinct bit pattern, and every row's entry holds its own bits.
            let distinct: std::collections::HashSet<u64> =
                high.iter().map(|v| v.to_bits()).collect();
            assert_eq!(keys.len(), distinct.len(), "n={n}");
            for (v, &i) in high.iter().zip(&indices) {
                assert_eq!(keys[i as usize], v.to_bits(), "n={n}");
            }
            let (_, meta) = round_trip(
                vec![("high", Arc::new(Float64Array::from(high)) as ArrayRef)],
                &[],
            );
            if n >= 1000 {
                assert!(encodings(&meta, 0).contains(&Encoding::RLE_DICTIONARY));
            }
        }
        // Mostly off the grid: declined, so the caller hashes every value.
        let off: Vec<f64> = (0..4000)
            .map(|i| 10.0 + f64::from(i % 50) / 100.0 + 1e-9)
            .collect();
        let (lo, hi) = float_range(&off);
        let mut table = Vec::new();
        let slots = float_slots(off.len(), lo, hi).unwrap();
        assert!(counted_dictionary(&off, f64::to_bits, &slots, &mut table).is_none());
        assert!(table.iter().all(|&t| t == 0));
    }

    #[test]
    fn wide_dictionaries_round_trip() {
        // 70,000 distinct values in 200,000 rows: a 17-bit dictionary over four pages, on and off the grid.
        let mut rng = Rng(5);
        let n = 200_000;
        let grid: Vec<f64> = (0..70_000)
            .map(|i| 10.0 + f64::from(i) / 10_000.0)
            .collect();
        let on = rng.pick(n, &grid, 3);
        let off: Vec<f64> = on.iter().map(|v| v + 1e-9).collect();
        let (_, meta) = round_trip(
            vec![
                ("on", Arc::new(Float64Array::from(on)) as ArrayRef),
                ("off", Arc::new(Float64Array::from(off))),
            ],
            &[],
        );
        for c in 0..2 {
            assert!(encodings(&meta, c).contains(&Encoding::RLE_DICTIONARY));
        }
    }

    #[test]
    fn strings_round_trip_with_nulls_runs_and_long_values() {
        let mut rng = Rng(3);
        for n in LENGTHS.into_iter().chain([PAGE_ROWS + 9]) {
            let codes = [
                Some("A"),
                None,
                Some("N"),
                Some(""),
                Some("BRK.B"),
                Some("FIFTEEN-BYTES-X"),
            ];
            let exchange: StringArray = rng.pick(n, &codes, 10).into_iter().collect();
            let symbol = StringArray::from(vec!["SPY"; n]);
            let long: StringArray = rng
                .pick(n, &[Some("SIXTEEN-BYTES-XX"), None, Some("Q")], 4)
                .into_iter()
                .collect();
            let (_, meta) = round_trip(
                vec![
                    ("symbol", Arc::new(symbol) as ArrayRef),
                    ("exchange", Arc::new(exchange)),
                    ("long", Arc::new(long)),
                ],
                &[],
            );
            assert!(
                encodings(&meta, 0).contains(&Encoding::RLE_DICTIONARY),
                "n={n}"
            );
            let stats = meta.row_group(0).column(0).statistics().unwrap();
            assert_eq!(stats.min_bytes_opt(), Some(&b"SPY"[..]));
        }
    }
}
