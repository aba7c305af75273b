//! Lake columns encoded straight into Parquet column chunks, without arrow-rs's generic column writer.
//!
//! The lake's columns are few and simple: non-null int64, timestamp and float64 columns and short strings (a
//! constant symbol, one-letter exchange codes with nulls). arrow-rs's generic encoders (hash-map dictionaries,
//! value interning, a per-value RLE state machine) took about two thirds of a lake write; these encoders do the same
//! job for exactly these columns with flat loops. Anything else (nulls in a numeric column, lists, strings longer
//! than 15 bytes, many distinct strings, empty chunks) is declined (`Ok(None)`) and written by arrow-rs as before.
//!
//! What is written (Parquet format specification, data page v1, ZSTD per page):
//! - `DELTA_BINARY_PACKED` for integer columns asked for delta (sorted timestamps, volumes, counts): blocks of 128
//!   deltas in 4 miniblocks of 32, each miniblock bit-packed at its own width.
//! - `RLE_DICTIONARY` otherwise: a `PLAIN` dictionary page, then data pages of one bit-width byte and the indices in
//!   the RLE / bit-packed hybrid (a group of 8 equal indices starts an RLE run). Numbers in a narrow range (integers,
//!   floats exactly on the 1/10,000 grid: prices) get their dictionary from a counting pass over a direct table, in
//!   value order; other values through a hash table, in order of first appearance. A number column whose dictionary
//!   would not make it smaller is written `PLAIN` instead.
//! - Nullable columns carry their definition levels (RLE hybrid, width 1, 4-byte length prefix).
//! - Column chunk statistics: min, max and the null count (floats: NaN ignored, a zero minimum written as -0.0 and a
//!   zero maximum as +0.0, as the format asks).
//! - Every page header carries the CRC32 of the page, and every chunk its page index (column index: each page's min,
//!   max, nulls and the boundary order; offset index: where each page starts), see [`crate::pages`].

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float64Type, Int64Type, TimestampMicrosecondType, TimestampNanosecondType,
};
use arrow_array::{Array, StringArray};
use arrow_schema::{DataType, TimeUnit};
use bytes::Bytes;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::column::writer::ColumnCloseResult;
use parquet::data_type::ByteArray;
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::ColumnChunkMetaData;
use parquet::file::statistics::Statistics;
use parquet::schema::types::ColumnDescPtr;

use crate::pages::{put_page, ChunkIndex, DictionaryRanks, PageBounds, PageKind};

/// Rows per data page (a one-day row group of 1s bars is one page per column).
const PAGE_ROWS: usize = 1 << 16;
/// Largest dictionary kept (arrow-rs's default dictionary page limit: 1 MB of 8-byte values).
const MAX_DICT_ENTRIES: usize = 1 << 17;
/// Longest string a dictionary key holds (packed with its length into a `u128`).
const MAX_KEY_BYTES: usize = 15;

/// A column chunk encoded into memory, ready for `SerializedRowGroupWriter::append_column`.
pub struct EncodedChunk {
    /// The chunk's pages (dictionary page first), offsets relative to the start of this buffer.
    pub bytes: Bytes,
    /// The chunk's metadata, as a column writer would have returned it.
    pub close: ColumnCloseResult,
}

/// Encodes column chunks with one reusable ZSTD context (one encoder per thread).
pub struct ChunkEncoder {
    zstd: zstd::bulk::Compressor<'static>,
    level: i32,
    /// The direct dictionary table of [`number_body`], kept between chunks (all zeros between uses).
    table: Vec<u32>,
}

/// The values of a column chunk, in the form they are encoded from.
#[derive(Clone, Copy)]
enum Values<'a> {
    Int(&'a [i64]),
    Float(&'a [f64]),
    Text(&'a StringArray),
}

/// How the values of a chunk are stored.
enum Body<'a> {
    Delta(&'a [i64]),
    /// Little-endian 8-byte values.
    Plain(&'a [u8]),
    Dictionary {
        /// One index per non-null value.
        indices: Vec<u32>,
        width: u8,
        /// The PLAIN-encoded dictionary page.
        page: Vec<u8>,
        entries: usize,
    },
}

impl ChunkEncoder {
    /// An encoder compressing pages at ZSTD `level`.
    ///
    /// # Errors
    /// The level is outside ZSTD's range or the context cannot be created.
    pub fn new(level: i32) -> Result<Self> {
        let zstd = zstd::bulk::Compressor::new(level)
            .map_err(|e| ParquetError::General(format!("ZSTD level {level}: {e}")))?;
        Ok(Self {
            zstd,
            level,
            table: Vec::new(),
        })
    }

    /// Encodes `array` as one column chunk of the leaf column `descr`; `delta` asks for `DELTA_BINARY_PACKED` on an
    /// integer column. Returns `Ok(None)` for a column this encoder does not handle (see the module docs).
    ///
    /// # Errors
    /// Compression or metadata failures from the parquet crate.
    pub fn encode(
        &mut self,
        array: &dyn Array,
        descr: &ColumnDescPtr,
        delta: bool,
    ) -> Result<Option<EncodedChunk>> {
        let rows = array.len();
        if rows == 0 || descr.max_rep_level() > 0 || descr.max_def_level() > 1 {
            return Ok(None);
        }
        let values = match array.data_type() {
            DataType::Int64 => Values::Int(array.as_primitive::<Int64Type>().values()),
            DataType::Timestamp(TimeUnit::Nanosecond, _) => {
                Values::Int(array.as_primitive::<TimestampNanosecondType>().values())
            }
            DataType::Timestamp(TimeUnit::Microsecond, _) => {
                Values::Int(array.as_primitive::<TimestampMicrosecondType>().values())
            }
            DataType::Float64 => Values::Float(array.as_primitive::<Float64Type>().values()),
            DataType::Utf8 => Values::Text(array.as_string::<i32>()),
            _ => return Ok(None),
        };
        let nulls = array.null_count();
        if nulls > 0 && (!matches!(values, Values::Text(_)) || descr.max_def_level() == 0) {
            return Ok(None);
        }
        let (body, statistics) = match values {
            Values::Int(v) if delta => {
                let (min, max) = int_range(v);
                (Body::Delta(v), int_statistics(min, max))
            }
            Values::Int(v) => {
                let (min, max) = int_range(v);
                let slots = int_slots(v, min, max);
                (
                    number_body(v, |x| x as u64, slots, &mut self.table),
                    int_statistics(min, max),
                )
            }
            Values::Float(v) => {
                let (min, max) = float_range(v);
                let slots = float_slots(v.len(), min, max);
                (
                    number_body(v, f64::to_bits, slots, &mut self.table),
                    float_statistics(min, max),
                )
            }
            Values::Text(strings) => match text_body(strings) {
                Some(found) => found,
                None => return Ok(None),
            },
        };
        let levels: Option<Vec<u32>> = (descr.max_def_level() == 1).then(|| match array.nulls() {
            Some(valid) => valid.iter().map(u32::from).collect(),
            None => vec![1; rows],
        });
        self.write_chunk(descr, &values, rows, &body, levels.as_deref(), statistics)
            .map(Some)
    }

    fn compress(&mut self, body: &[u8]) -> Result<Bytes> {
        self.zstd
            .compress(body)
            .map(Bytes::from)
            .map_err(|e| ParquetError::General(format!("ZSTD compression failed: {e}")))
    }

    #[allow(clippy::too_many_lines)]
    fn write_chunk(
        &mut self,
        descr: &ColumnDescPtr,
        values: &Values<'_>,
        rows: usize,
        body: &Body<'_>,
        levels: Option<&[u32]>,
        statistics: Statistics,
    ) -> Result<EncodedChunk> {
        let mut bytes = Vec::new();
        let (mut compressed, mut uncompressed) = (0usize, 0usize);
        let mut dictionary_offset = None;
        let (encoding, mut encodings) = match body {
            Body::Delta(_) => (
                Encoding::DELTA_BINARY_PACKED,
                vec![Encoding::DELTA_BINARY_PACKED],
            ),
            Body::Plain(_) => (Encoding::PLAIN, vec![Encoding::PLAIN]),
            Body::Dictionary { .. } => (
                Encoding::RLE_DICTIONARY,
                vec![Encoding::PLAIN, Encoding::RLE_DICTIONARY],
            ),
        };
        encodings.push(Encoding::RLE);
        let mut ranks = None;
        if let Body::Dictionary { page, entries, .. } = body {
            let buf = self.compress(page)?;
            let kind = PageKind::Dictionary {
                entries: u32::try_from(*entries).unwrap_or(u32::MAX),
            };
            dictionary_offset = Some(bytes.len());
            let size = put_page(&mut bytes, kind, page.len(), &buf)?;
            compressed += size;
            uncompressed += size - buf.len() + page.len();
            ranks = Some(DictionaryRanks::new(page, *entries, descr.physical_type())?);
        }
        let mut index = ChunkIndex::new(descr.physical_type());
        let mut data_offset = None;
        let mut value = 0;
        let mut out = Vec::new();
        for start in (0..rows).step_by(PAGE_ROWS) {
            let end = (start + PAGE_ROWS).min(rows);
            out.clear();
            let mut count = end - start;
            if let Some(levels) = levels {
                let levels = &levels[start..end];
                out.extend_from_slice(&[0; 4]);
                put_hybrid(&mut out, levels, 1);
                let len = u32::try_from(out.len() - 4).unwrap_or(u32::MAX);
                out[..4].copy_from_slice(&len.to_le_bytes());
                count = levels.iter().filter(|&&l| l == 1).count();
            }
            let range = value..value + count;
            value += count;
            let bounds = match (body, &ranks, values) {
                (Body::Dictionary { indices, .. }, Some(ranks), _) => {
                    ranks.bounds(&indices[range.clone()])
                }
                (_, _, Values::Int(v)) => {
                    let (min, max) = int_range(&v[range.clone()]);
                    if range.is_empty() {
                        PageBounds::None
                    } else {
                        PageBounds::Int(min, max)
                    }
                }
                (_, _, Values::Float(v)) => {
                    let (min, max) = float_range(&v[range.clone()]);
                    if min > max {
                        PageBounds::None
                    } else {
                        PageBounds::Float(min, max)
                    }
                }
                _ => PageBounds::None,
            };
            match body {
                Body::Delta(v) => put_delta(&mut out, &v[range]),
                Body::Plain(plain) => out.extend_from_slice(&plain[range.start * 8..range.end * 8]),
                Body::Dictionary { indices, width, .. } => {
                    out.push(*width);
                    put_hybrid(&mut out, &indices[range], *width);
                }
            }
            let buf = self.compress(&out)?;
            let kind = PageKind::Data {
                num_values: u32::try_from(end - start).unwrap_or(u32::MAX),
                encoding,
            };
            let offset = bytes.len();
            let size = put_page(&mut bytes, kind, out.len(), &buf)?;
            data_offset.get_or_insert(offset);
            index.add(offset, size, end - start, end - start - count, bounds);
            compressed += size;
            uncompressed += size - buf.len() + out.len();
        }
        let bytes = Bytes::from(bytes);
        let level = ZstdLevel::try_new(self.level)?;
        let as_i64 = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        let metadata = ColumnChunkMetaData::builder(descr.clone())
            .set_compression(Compression::ZSTD(level))
            .set_encodings(encodings)
            .set_num_values(as_i64(rows))
            .set_total_compressed_size(as_i64(compressed))
            .set_total_uncompressed_size(as_i64(uncompressed))
            .set_data_page_offset(data_offset.map_or(0, as_i64))
            .set_dictionary_page_offset(dictionary_offset.map(as_i64))
            .set_statistics(statistics)
            .build()?;
        let (column_index, offset_index) = index.finish()?;
        Ok(EncodedChunk {
            close: ColumnCloseResult {
                bytes_written: bytes.len() as u64,
                rows_written: rows as u64,
                metadata,
                bloom_filter: None,
                column_index,
                offset_index: Some(offset_index),
            },
            bytes,
        })
    }
}

fn int_range(values: &[i64]) -> (i64, i64) {
    values
        .iter()
        .fold((i64::MAX, i64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)))
}

fn int_statistics(min: i64, max: i64) -> Statistics {
    Statistics::int64(Some(min), Some(max), None, Some(0), false)
}

/// The smallest and largest value, NaN skipped (`(inf, -inf)` when there is none).
fn float_range(values: &[f64]) -> (f64, f64) {
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    for &v in values {
        // NaN compares false both ways and is skipped, as the format asks.
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max)
}

fn float_statistics(min: f64, max: f64) -> Statistics {
    if min > max {
        return Statistics::double(None, None, None, Some(0), false);
    }
    let min = if min == 0.0 { -0.0 } else { min };
    let max = if max == 0.0 { 0.0 } else { max };
    Statistics::double(Some(min), Some(max), None, Some(0), false)
}

/// Dictionary-encodes 8-byte numbers by their bits, or stores them PLAIN when the dictionary does not pay. When
/// `slots` maps values into `0..range` (see [`int_slots`], [`float_slots`]), entries are found by a direct table
/// lookup; if a value turns out not to have a slot of its own, or there are none, through a hash table.
fn number_body<'a, T: Copy + arrow_buffer::ArrowNativeType>(
    values: &'a [T],
    bits: impl Fn(T) -> u64,
    slots: Option<impl Slots<T>>,
    table: &mut Vec<u32>,
) -> Body<'a> {
    let found = slots
        .and_then(|slots| counted_dictionary(values, &slots, table))
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

/// A dictionary (keys in value order, one entry number per value) from a counting pass instead of hashing: mark
/// each value's slot, number the marked slots in order, then look every value's number up. No branch depends on the
/// table, so the lookups overlap. `None` when a value has no slot of its own. `table` is the encoder's, all zeros
/// between uses.
fn counted_dictionary<T: Copy>(
    values: &[T],
    slots: &impl Slots<T>,
    table: &mut Vec<u32>,
) -> Option<(Vec<u64>, Vec<u32>)> {
    let range = slots.range();
    if table.len() < range {
        table.resize(range, 0);
    }
    let table = &mut table[..range];
    let mut exact = true;
    // Slots first (range <= 2^20, so they fit the index type), replaced by entry numbers below.
    let mut indices: Vec<u32> = values
        .iter()
        .map(|&v| {
            let (at, own) = slots.slot(v);
            exact &= own;
            table[at] = 1;
            at as u32
        })
        .collect();
    let mut keys = Vec::new();
    if exact {
        for (at, entry) in table.iter_mut().enumerate() {
            if *entry != 0 {
                *entry = keys.len() as u32;
                keys.push(slots.key(at));
            }
        }
        for index in &mut indices {
            *index = table[*index as usize];
        }
    }
    table.fill(0);
    exact.then_some((keys, indices))
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
trait Slots<T> {
    fn range(&self) -> usize;
    /// A value's slot, and whether the slot is the value's own (false: the chunk falls back to hashing).
    fn slot(&self, value: T) -> (usize, bool);
    /// The key (bits) of the value in a marked slot.
    fn key(&self, at: usize) -> u64;
}

/// Integers by their offset from the chunk's minimum.
struct IntSlots {
    min: i64,
    range: usize,
}

impl Slots<i64> for IntSlots {
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
struct FloatSlots {
    lo: f64,
    range: usize,
}

impl Slots<f64> for FloatSlots {
    fn range(&self) -> usize {
        self.range
    }

    #[inline]
    fn slot(&self, v: f64) -> (usize, bool) {
        let step = grid_step(v);
        // Own only when the grid point converts back to the very same bits.
        (
            (step - self.lo) as usize,
            (step / GRID).to_bits() == v.to_bits(),
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
fn int_slots(values: &[i64], min: i64, max: i64) -> Option<IntSlots> {
    let range = usize::try_from(i128::from(max) - i128::from(min) + 1).ok()?;
    (range <= table_limit(values.len())).then_some(IntSlots { min, range })
}

/// Floats index a direct table by their step on the 1/10,000 grid when `min..=max` spans few steps. A value has a
/// slot of its own only when its grid point converts back to the very same bits (so -0.0, NaN, infinities and
/// off-grid values never share a slot with another value); grid steps are monotonic, so every slot is in range.
fn float_slots(rows: usize, min: f64, max: f64) -> Option<FloatSlots> {
    let (lo, hi) = (grid_step(min), grid_step(max));
    // Bounded well inside f64's exact integers, so the conversions below are exact.
    if !(lo.abs() < 1e15 && hi.abs() < 1e15) {
        return None;
    }
    let range = (hi - lo) as usize + 1;
    (range <= table_limit(rows)).then_some(FloatSlots { lo, range })
}

/// `v * GRID` rounded to the nearest integer (ties to even) with plain adds, exact below 2^51 in magnitude (beyond,
/// the result is off the grid and [`float_slots`] declines); `f64::round` is a libm call on baseline x86-64.
#[inline]
fn grid_step(v: f64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 * 2^52
    (v * GRID + MAGIC) - MAGIC
}

/// Dictionary-encodes the non-null strings; `None` when a string is longer than [`MAX_KEY_BYTES`] or there are too
/// many distinct ones (arrow-rs then writes the column).
fn text_body(strings: &StringArray) -> Option<(Body<'static>, Statistics)> {
    let present = strings.iter().flatten();
    let count = strings.len() - strings.null_count();
    let (keys, indices) = hashed_dictionary(present, count, text_key)?;
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

fn put_uleb(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_zigzag(out: &mut Vec<u8>, v: i64) {
    put_uleb(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Appends `values` (each below `2^width`, `width` <= 32) in the RLE / bit-packed hybrid, without a length prefix:
/// values go in groups of 8, a group of 8 equal values starts an RLE run (as long as the value repeats), the rest is
/// bit-packed (the last group padded with zeros, which readers ignore past the page's value count). Looking at whole
/// groups keeps the scan branch-free per value; runs of 15 or more are always caught.
fn put_hybrid(out: &mut Vec<u8>, values: &[u32], width: u8) {
    let n = values.len();
    let mut literal = 0;
    let mut i = 0;
    while i + 8 <= n {
        let v = values[i];
        if values[i..i + 8]
            .iter()
            .fold(true, |same, &x| same & (x == v))
        {
            let mut end = i + 8;
            while end < n && values[end] == v {
                end += 1;
            }
            put_packed(out, &values[literal..i], width);
            put_uleb(out, ((end - i) as u64) << 1);
            out.extend_from_slice(&v.to_le_bytes()[..usize::from(width).div_ceil(8)]);
            literal = end;
            i = end;
        } else {
            i += 8;
        }
    }
    put_packed(out, &values[literal..], width);
}

/// One bit-packed run of `values` (zero-padded to a multiple of 8), LSB first.
fn put_packed(out: &mut Vec<u8>, values: &[u32], width: u8) {
    if values.is_empty() {
        return;
    }
    let groups = values.len().div_ceil(8);
    put_uleb(out, ((groups as u64) << 1) | 1);
    let mut tail = [0u32; 8];
    let rest = values.len() % 8;
    tail[..rest].copy_from_slice(&values[values.len() - rest..]);
    let padded = (rest > 0).then_some(&tail[..]);
    let groups = values.chunks_exact(8).chain(padded);
    if width <= 16 {
        // A group of 8 values of `w` bits is `w` bytes: assembled in one register, written at once.
        let w = usize::from(width);
        out.reserve(values.len().div_ceil(8) * w);
        for group in groups {
            let mut acc = 0u128;
            for (k, &v) in group.iter().enumerate() {
                acc |= u128::from(v) << (k * w);
            }
            out.extend_from_slice(&acc.to_le_bytes()[..w]);
        }
        return;
    }
    let width = u32::from(width);
    let (mut acc, mut bits) = (0u64, 0u32);
    for &v in groups.flatten() {
        acc |= u64::from(v) << bits;
        bits += width;
        if bits >= 32 {
            out.extend_from_slice(&(acc as u32).to_le_bytes());
            acc >>= 32;
            bits -= 32;
        }
    }
    // 8 values per group make whole bytes.
    out.extend_from_slice(&acc.to_le_bytes()[..(bits / 8) as usize]);
}

/// Appends `values` as one `DELTA_BINARY_PACKED` stream (blocks of 128 deltas, 4 miniblocks of 32).
fn put_delta(out: &mut Vec<u8>, values: &[i64]) {
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

    use arrow_array::{
        ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray,
    };
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::metadata::ParquetMetaData;

    use super::*;
    use crate::parquet_io::{encode, WriteOptions};

    use crate::test_rng::Rng;

    /// Writes `columns` as one row group (no day split) and reads them back with arrow-rs.
    fn round_trip(
        columns: Vec<(&str, ArrayRef)>,
        delta: &[&str],
    ) -> (RecordBatch, ParquetMetaData) {
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let options = WriteOptions {
            day_row_groups: false,
            delta_columns: delta.iter().map(|&d| d.to_owned()).collect(),
            ..WriteOptions::default()
        };
        let bytes =
            Bytes::from(encode(Vec::new(), &batch, &options, "t.parquet".as_ref()).unwrap());
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
        let metadata = reader.metadata().as_ref().clone();
        let back: Vec<RecordBatch> = reader.build().unwrap().map(Result::unwrap).collect();
        let back = arrow_select::concat::concat_batches(&batch.schema(), &back).unwrap();
        for (i, (want, got)) in batch.columns().iter().zip(back.columns()).enumerate() {
            if let (Some(w), Some(g)) = (
                want.as_primitive_opt::<Float64Type>(),
                got.as_primitive_opt::<Float64Type>(),
            ) {
                // Bits, so -0.0 and NaN payloads count.
                let bits =
                    |a: &Float64Array| a.values().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(w), bits(g), "column {i}");
            } else {
                assert_eq!(want.as_ref(), got.as_ref(), "column {i}");
            }
        }
        (batch, metadata)
    }

    fn encodings(metadata: &ParquetMetaData, column: usize) -> Vec<Encoding> {
        metadata.row_group(0).column(column).encodings().collect()
    }

    const LENGTHS: [usize; 12] = [1, 2, 7, 8, 9, 31, 32, 33, 127, 128, 129, 1000];

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
            let (_, meta) = round_trip(
                vec![
                    ("price", Arc::new(Float64Array::from(prices)) as ArrayRef),
                    ("distinct", Arc::new(Float64Array::from(distinct))),
                    ("size", Arc::new(Int64Array::from(sizes))),
                    ("on_grid", Arc::new(Float64Array::from(on_grid))),
                    ("zeros", Arc::new(Float64Array::from(zeros))),
                    ("off_grid", Arc::new(Float64Array::from(off))),
                    ("narrow_sizes", Arc::new(Int64Array::from(narrow_sizes))),
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

    #[test]
    fn float_statistics_ignore_nan_and_sign_zeros() {
        let stats = |v: &[f64]| {
            let (min, max) = float_range(v);
            match float_statistics(min, max) {
                Statistics::Double(s) => (s.min_opt().copied(), s.max_opt().copied()),
                _ => unreachable!(),
            }
        };
        let (min, max) = stats(&[0.0, 2.0, f64::NAN]);
        assert!(min.unwrap() == 0.0 && min.unwrap().is_sign_negative());
        assert_eq!(max, Some(2.0));
        let (_, max) = stats(&[-0.0, -1.0]);
        assert!(max.unwrap() == 0.0 && max.unwrap().is_sign_positive());
        assert_eq!(stats(&[f64::NAN]), (None, None));
    }

    #[test]
    fn columns_the_encoder_declines_are_written_by_arrow_rs() {
        let mut encoder = ChunkEncoder::new(3).unwrap();
        let batch = RecordBatch::try_from_iter(vec![(
            "x",
            Arc::new(Int64Array::from(vec![Some(1), None])) as ArrayRef,
        )])
        .unwrap();
        let schema = parquet::arrow::ArrowSchemaConverter::new()
            .convert(&batch.schema())
            .unwrap();
        let nulls = batch.column(0);
        assert!(encoder
            .encode(nulls.as_ref(), &schema.column(0), false)
            .unwrap()
            .is_none());
        assert!(encoder
            .encode(&nulls.slice(0, 0), &schema.column(0), false)
            .unwrap()
            .is_none());
        // ... and the file is still right.
        round_trip(vec![("x", Arc::clone(batch.column(0)))], &["x"]);
    }
}
