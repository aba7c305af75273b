//! Parquet pages as the lake writes them (SPEC §2): page headers in Thrift's compact protocol carrying a CRC32 of
//! the page's bytes, the page index (column index and offset index) of a column chunk, and the re-framing of the
//! chunks arrow-rs's column writer encodes (it writes no checksums), so that every data and dictionary page of a
//! lake file carries one whichever encoder wrote it.
//!
//! The checksum is the standard CRC-32 (zlib's polynomial) of the page's bytes as stored, after compression and
//! excluding the header, as the format specifies; pyarrow (`page_checksum_verification=True`), parquet-rs (the
//! `crc` feature) and parquet-java verify it.

use std::cmp::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use parquet::basic::{BoundaryOrder, Encoding, Type as PhysicalType};
use parquet::column::page_store::{PageKey, PageStore, PageStoreArgs, PageStoreFactory};
use parquet::column::writer::ColumnCloseResult;
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::{ColumnIndexBuilder, OffsetIndexBuilder};
use parquet::file::page_index::column_index::ColumnIndexMetaData;
use parquet::file::page_index::offset_index::OffsetIndexMetaData;

/// Thrift compact type codes.
const I32: u8 = 5;
const STRUCT: u8 = 12;
const BOOL_FALSE: u8 = 2;

/// Page type codes of the format.
const DATA_PAGE: i32 = 0;
const DICTIONARY_PAGE: i32 = 2;

/// A page this crate frames: a data page (v1) or a dictionary page.
#[derive(Clone, Copy, Debug)]
pub enum PageKind {
    /// A data page: its value count (nulls included) and the encoding of its values.
    Data {
        /// Values in the page, nulls included.
        num_values: u32,
        /// The encoding of the values.
        encoding: Encoding,
    },
    /// A PLAIN dictionary page of `entries` values.
    Dictionary {
        /// Values in the dictionary.
        entries: u32,
    },
}

fn encoding_id(encoding: Encoding) -> Result<i32> {
    Ok(match encoding {
        Encoding::PLAIN => 0,
        Encoding::RLE => 3,
        Encoding::DELTA_BINARY_PACKED => 5,
        Encoding::RLE_DICTIONARY => 8,
        other => {
            return Err(ParquetError::General(format!(
                "page headers for {other} pages are not written by this crate"
            )))
        }
    })
}

fn put_uleb(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_i32(out: &mut Vec<u8>, v: i32) {
    put_uleb(out, u64::from(((v << 1) ^ (v >> 31)) as u32));
}

/// A field header (short form: field ids here grow by 1-15).
fn put_field(out: &mut Vec<u8>, last: &mut i16, id: i16, kind: u8) {
    out.push((((id - *last) as u8) << 4) | kind);
    *last = id;
}

fn to_i32(v: usize, what: &str) -> Result<i32> {
    i32::try_from(v)
        .map_err(|_| ParquetError::General(format!("{what} of {v} bytes overflows a page header")))
}

/// Appends one page (header, then `data`, its stored bytes) to `out`; `uncompressed` is the page's size before
/// compression. Returns the bytes written (header and data).
///
/// # Errors
/// A size past `i32` or an encoding this crate does not write.
pub fn put_page(
    out: &mut Vec<u8>,
    kind: PageKind,
    uncompressed: usize,
    data: &[u8],
) -> Result<usize> {
    let start = out.len();
    let mut last = 0;
    let page_type = match kind {
        PageKind::Data { .. } => DATA_PAGE,
        PageKind::Dictionary { .. } => DICTIONARY_PAGE,
    };
    put_field(out, &mut last, 1, I32);
    put_i32(out, page_type);
    put_field(out, &mut last, 2, I32);
    put_i32(out, to_i32(uncompressed, "an uncompressed page")?);
    put_field(out, &mut last, 3, I32);
    put_i32(out, to_i32(data.len(), "a compressed page")?);
    put_field(out, &mut last, 4, I32);
    put_i32(out, crc32fast::hash(data) as i32);
    let mut inner = 0;
    match kind {
        PageKind::Data {
            num_values,
            encoding,
        } => {
            put_field(out, &mut last, 5, STRUCT);
            put_field(out, &mut inner, 1, I32);
            put_i32(out, i32::try_from(num_values).unwrap_or(i32::MAX));
            put_field(out, &mut inner, 2, I32);
            put_i32(out, encoding_id(encoding)?);
            // Definition and repetition levels: RLE.
            put_field(out, &mut inner, 3, I32);
            put_i32(out, 3);
            put_field(out, &mut inner, 4, I32);
            put_i32(out, 3);
        }
        PageKind::Dictionary { entries } => {
            put_field(out, &mut last, 7, STRUCT);
            put_field(out, &mut inner, 1, I32);
            put_i32(out, i32::try_from(entries).unwrap_or(i32::MAX));
            put_field(out, &mut inner, 2, I32);
            put_i32(out, encoding_id(Encoding::PLAIN)?);
            put_field(out, &mut inner, 3, BOOL_FALSE);
        }
    }
    out.push(0); // end of the inner struct
    out.push(0); // end of the page header
    out.extend_from_slice(data);
    Ok(out.len() - start)
}

fn read_uleb(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn header_error() -> ParquetError {
    ParquetError::General("unexpected page header layout from the column writer".into())
}

/// A page header written by arrow-rs (fields 1-3 first, no CRC), with the CRC of `data` inserted as field 4.
/// Returns the new header and whether the page is a dictionary page.
///
/// # Errors
/// A header that does not start with the three size fields.
pub fn with_crc(header: &[u8], data: &[u8]) -> Result<(Vec<u8>, bool)> {
    let mut at = 0;
    let mut page_type = None;
    for _ in 0..3 {
        if header.get(at) != Some(&((1 << 4) | I32)) {
            return Err(header_error());
        }
        at += 1;
        let v = read_uleb(header, &mut at).ok_or_else(header_error)?;
        page_type.get_or_insert(v);
    }
    let next = *header.get(at).ok_or_else(header_error)?;
    let delta = next >> 4;
    // The field after the sizes (5, 7 or 8) follows field 3; after the inserted field 4 its delta is one less.
    if next != 0 && delta < 2 {
        return Err(header_error());
    }
    let mut out = Vec::with_capacity(header.len() + 6);
    out.extend_from_slice(&header[..at]);
    out.push((1 << 4) | I32);
    put_i32(&mut out, crc32fast::hash(data) as i32);
    if next == 0 {
        out.push(0);
    } else {
        out.push(next - (1 << 4));
    }
    out.extend_from_slice(&header[at + 1..]);
    // Zigzag: 4 is the dictionary page's code.
    Ok((
        out,
        page_type == Some(u64::from((DICTIONARY_PAGE as u32) << 1)),
    ))
}

/// A page store for arrow-rs's column writers that keeps the pages where this crate can take them back, to
/// re-frame them with checksums ([`reframe`]). One per worker thread: the stores it made since the last
/// [`PageCollector::take`] are the current row group's leaf columns, in order.
#[derive(Debug, Default)]
pub struct PageCollector {
    stores: Mutex<Vec<Arc<Mutex<Vec<Bytes>>>>>,
}

impl PageCollector {
    /// The stores made since the last call, one per leaf column in order.
    pub fn take(&self) -> Vec<CollectedPages> {
        std::mem::take(&mut *self.stores.lock().unwrap_or_else(PoisonError::into_inner))
            .into_iter()
            .map(|blobs| CollectedPages { blobs })
            .collect()
    }
}

impl PageStoreFactory for PageCollector {
    fn create(&self, _args: &PageStoreArgs<'_>) -> Result<Box<dyn PageStore>> {
        let blobs = Arc::new(Mutex::new(Vec::new()));
        self.stores
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::clone(&blobs));
        Ok(Box::new(CollectedPages { blobs }))
    }
}

/// The pages one arrow-rs column writer wrote: each page's header, then its bytes.
pub struct CollectedPages {
    blobs: Arc<Mutex<Vec<Bytes>>>,
}

impl CollectedPages {
    /// Takes the pages out (once the column writer is closed).
    #[must_use]
    pub fn take_pages(&self) -> Vec<Bytes> {
        std::mem::take(&mut *self.blobs.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl PageStore for CollectedPages {
    fn put(&mut self, value: Bytes) -> Result<PageKey> {
        let mut blobs = self.blobs.lock().unwrap_or_else(PoisonError::into_inner);
        blobs.push(value);
        Ok(PageKey::new(blobs.len() as u64 - 1))
    }

    fn take(&mut self, key: PageKey) -> Result<Bytes> {
        let blobs = self.blobs.lock().unwrap_or_else(PoisonError::into_inner);
        usize::try_from(key.get())
            .ok()
            .and_then(|i| blobs.get(i).cloned())
            .ok_or_else(|| ParquetError::General(format!("no page {}", key.get())))
    }

    fn memory_size(&self) -> usize {
        let blobs = self.blobs.lock().unwrap_or_else(PoisonError::into_inner);
        blobs.iter().map(Bytes::len).sum()
    }
}

/// Re-frames a chunk arrow-rs encoded (`blobs`: each page's header then its bytes, in the order written, the
/// dictionary page last) with a CRC in every page header: the dictionary page first, offsets, sizes and the
/// offset index recomputed. Returns the chunk's bytes and its close result.
///
/// # Errors
/// A header this crate cannot extend, or pages that do not match the offset index.
pub fn reframe(blobs: &[Bytes], close: &ColumnCloseResult) -> Result<(Bytes, ColumnCloseResult)> {
    if blobs.len() % 2 != 0 {
        return Err(header_error());
    }
    let mut dictionary = None;
    let mut data = Vec::new();
    for pair in blobs.chunks(2) {
        let (header, is_dictionary) = with_crc(&pair[0], &pair[1])?;
        if is_dictionary {
            dictionary = Some((header, &pair[1]));
        } else {
            data.push((header, &pair[1]));
        }
    }
    let mut out = Vec::new();
    let mut grown = 0;
    let dictionary_offset = dictionary.as_ref().map(|_| 0i64);
    for (header, page) in dictionary.iter().chain(&data) {
        grown += header.len();
        out.extend_from_slice(header);
        out.extend_from_slice(page);
    }
    let original: usize = blobs.iter().step_by(2).map(Bytes::len).sum();
    let grown = grown - original;
    let mut locations = Vec::with_capacity(data.len());
    let mut offset = dictionary.as_ref().map_or(0, |(h, p)| h.len() + p.len());
    let data_offset = offset;
    for (header, page) in &data {
        let size = header.len() + page.len();
        locations.push((offset, size));
        offset += size;
    }
    let mut close = close.clone();
    let metadata = &close.metadata;
    let size = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
    close.metadata = metadata
        .clone()
        .into_builder()
        .set_dictionary_page_offset(dictionary_offset)
        .set_data_page_offset(size(data_offset))
        .set_total_compressed_size(size(out.len()))
        .set_total_uncompressed_size(metadata.uncompressed_size() + size(grown))
        .build()?;
    if let Some(index) = close.offset_index.as_mut() {
        if index.page_locations.len() != locations.len() {
            return Err(ParquetError::General(format!(
                "{} data pages but {} offset index entries",
                locations.len(),
                index.page_locations.len()
            )));
        }
        for (location, &(offset, size)) in index.page_locations.iter_mut().zip(&locations) {
            location.offset = i64::try_from(offset).unwrap_or(i64::MAX);
            location.compressed_page_size = to_i32(size, "a page")?;
        }
    }
    close.bytes_written = out.len() as u64;
    Ok((Bytes::from(out), close))
}

/// A page's smallest and largest value, for the column index.
#[derive(Clone, Debug, PartialEq)]
pub enum PageBounds {
    /// INT64 values (timestamps included).
    Int(i64, i64),
    /// DOUBLE values (NaN skipped).
    Float(f64, f64),
    /// `BYTE_ARRAY` values, compared as unsigned bytes.
    Bytes(Vec<u8>, Vec<u8>),
    /// No value to bound: every value is null (or, for floats, NaN).
    None,
}

impl PageBounds {
    fn compare(&self, other: &Self) -> Option<(Ordering, Ordering)> {
        match (self, other) {
            (Self::Int(a, b), Self::Int(c, d)) => Some((a.cmp(c), b.cmp(d))),
            (Self::Float(a, b), Self::Float(c, d)) => Some((a.partial_cmp(c)?, b.partial_cmp(d)?)),
            (Self::Bytes(a, b), Self::Bytes(c, d)) => Some((a.cmp(c), b.cmp(d))),
            _ => None,
        }
    }

    /// The min and max as the column index stores them (plain encoding; a zero float minimum as -0.0 and a zero
    /// maximum as +0.0, as the format asks).
    fn encoded(&self) -> (Vec<u8>, Vec<u8>) {
        match self {
            Self::Int(a, b) => (a.to_le_bytes().to_vec(), b.to_le_bytes().to_vec()),
            Self::Float(a, b) => {
                let a = if *a == 0.0 { -0.0 } else { *a };
                let b = if *b == 0.0 { 0.0 } else { *b };
                (a.to_le_bytes().to_vec(), b.to_le_bytes().to_vec())
            }
            Self::Bytes(a, b) => (a.clone(), b.clone()),
            Self::None => (Vec::new(), Vec::new()),
        }
    }
}

/// An integer that orders doubles as [`f64::total_cmp`] does (negative values with all but the sign bit flipped).
fn total_order_key(v: f64) -> i64 {
    let bits = v.to_bits() as i64;
    bits ^ (((bits >> 63) as u64) >> 1) as i64
}

/// The values of a PLAIN dictionary page in value order, so a data page's bounds come from its indices alone: the
/// smallest and largest rank among them.
pub struct DictionaryRanks<'a> {
    entries: Vec<&'a [u8]>,
    physical: PhysicalType,
    /// Rank of each entry (0 = smallest value).
    rank: Vec<u32>,
    /// The entry of each rank.
    by_rank: Vec<u32>,
    /// A DOUBLE dictionary holding NaN: no bound is valid (the column index is left out).
    has_nan: bool,
}

impl<'a> DictionaryRanks<'a> {
    /// Ranks the `count` entries of the PLAIN dictionary page `page` of a column of `physical` type.
    ///
    /// # Errors
    /// A page that does not hold `count` values of that type.
    pub fn new(page: &'a [u8], count: usize, physical: PhysicalType) -> Result<Self> {
        let bad = || ParquetError::General("dictionary page does not match its entry count".into());
        let entries: Vec<&[u8]> = match physical {
            PhysicalType::INT64 | PhysicalType::DOUBLE => page.chunks_exact(8).collect(),
            PhysicalType::BYTE_ARRAY => {
                let mut entries = Vec::with_capacity(count);
                let mut at = 0;
                while at < page.len() {
                    let len = page
                        .get(at..at + 4)
                        .and_then(|b| <[u8; 4]>::try_from(b).ok())
                        .map(u32::from_le_bytes)
                        .ok_or_else(bad)? as usize;
                    entries.push(page.get(at + 4..at + 4 + len).ok_or_else(bad)?);
                    at += 4 + len;
                }
                entries
            }
            other => {
                return Err(ParquetError::General(format!(
                    "no page bounds for {other} dictionaries"
                )))
            }
        };
        if entries.len() != count {
            return Err(bad());
        }
        let float_of = |e: &[u8]| f64::from_le_bytes(e.try_into().unwrap_or([0; 8]));
        let int_of = |e: &[u8]| i64::from_le_bytes(e.try_into().unwrap_or([0; 8]));
        let has_nan =
            physical == PhysicalType::DOUBLE && entries.iter().any(|e| float_of(e).is_nan());
        let by_rank: Vec<u32> = match physical {
            PhysicalType::INT64 | PhysicalType::DOUBLE => {
                // Numbers sort by an integer of their bits (for doubles, in `total_cmp`'s order), computed once.
                let mut keyed: Vec<(i64, u32)> = entries
                    .iter()
                    .zip(0..)
                    .map(|(&e, i)| match physical {
                        PhysicalType::INT64 => (int_of(e), i),
                        _ => (total_order_key(float_of(e)), i),
                    })
                    .collect();
                // Counted dictionaries come sorted, or sorted but for the few values hashed after them: a stable
                // sort finds that run and only sorts and merges in the rest (keys are distinct, so any stable
                // order is the order).
                if !keyed.windows(2).all(|w| w[0].0 <= w[1].0) {
                    keyed.sort_by_key(|&(key, _)| key);
                }
                keyed.into_iter().map(|(_, i)| i).collect()
            }
            _ => {
                let mut by_rank: Vec<u32> = (0..count as u32).collect();
                by_rank.sort_by(|&a, &b| entries[a as usize].cmp(entries[b as usize]));
                by_rank
            }
        };
        let mut rank = vec![0; count];
        for (r, &entry) in by_rank.iter().enumerate() {
            rank[entry as usize] = r as u32;
        }
        Ok(Self {
            entries,
            physical,
            rank,
            by_rank,
            has_nan,
        })
    }

    /// The bounds of a page holding these dictionary indices; `whole`: they are the chunk's every value (the
    /// dictionary's own), so the bounds are its smallest and largest entries without a look at the indices.
    #[must_use]
    pub fn bounds(&self, indices: &[u32], whole: bool) -> PageBounds {
        if indices.is_empty() || self.has_nan {
            return PageBounds::None;
        }
        let (lo, hi) = if whole {
            (0, (self.rank.len() - 1) as u32)
        } else {
            indices.iter().fold((u32::MAX, 0), |(lo, hi), &i| {
                let r = self.rank.get(i as usize).copied().unwrap_or(0);
                (lo.min(r), hi.max(r))
            })
        };
        let value = |r: u32| self.entries[self.by_rank[r as usize] as usize];
        let (min, max) = (value(lo), value(hi));
        let num = |e: &[u8]| <[u8; 8]>::try_from(e).unwrap_or([0; 8]);
        match self.physical {
            PhysicalType::INT64 => {
                PageBounds::Int(i64::from_le_bytes(num(min)), i64::from_le_bytes(num(max)))
            }
            PhysicalType::DOUBLE => {
                PageBounds::Float(f64::from_le_bytes(num(min)), f64::from_le_bytes(num(max)))
            }
            _ => PageBounds::Bytes(min.to_vec(), max.to_vec()),
        }
    }
}

/// The page index of one column chunk, built page by page as the pages are written.
pub struct ChunkIndex {
    column: ColumnIndexBuilder,
    offsets: OffsetIndexBuilder,
    previous: Option<PageBounds>,
    ascending: bool,
    descending: bool,
}

impl ChunkIndex {
    /// An empty index for a column of `physical` type.
    #[must_use]
    pub fn new(physical: PhysicalType) -> Self {
        Self {
            column: ColumnIndexBuilder::new(physical),
            offsets: OffsetIndexBuilder::new(),
            previous: None,
            ascending: true,
            descending: true,
        }
    }

    /// Records a data page: where it starts in the chunk, its size with the header, its rows, nulls and bounds.
    pub fn add(
        &mut self,
        offset: usize,
        size: usize,
        rows: usize,
        nulls: usize,
        bounds: PageBounds,
    ) {
        let all_null = bounds == PageBounds::None;
        if all_null && nulls < rows {
            // Only NaN in a float page: no valid bound, so no column index for this chunk.
            self.column.to_invalid();
        }
        let (min, max) = bounds.encoded();
        self.column
            .append(all_null, min, max, i64::try_from(nulls).unwrap_or(i64::MAX));
        self.offsets.append_offset_and_size(
            i64::try_from(offset).unwrap_or(i64::MAX),
            i32::try_from(size).unwrap_or(i32::MAX),
        );
        self.offsets
            .append_row_count(i64::try_from(rows).unwrap_or(i64::MAX));
        if !all_null {
            if let Some(previous) = &self.previous {
                match previous.compare(&bounds) {
                    Some((min, max)) => {
                        self.ascending &= min.is_le() && max.is_le();
                        self.descending &= min.is_ge() && max.is_ge();
                    }
                    None => {
                        self.ascending = false;
                        self.descending = false;
                    }
                }
            }
            self.previous = Some(bounds);
        }
    }

    /// The column index (None when a page had no valid bound) and the offset index.
    ///
    /// # Errors
    /// Metadata errors from the parquet crate.
    pub fn finish(mut self) -> Result<(Option<ColumnIndexMetaData>, OffsetIndexMetaData)> {
        self.column.set_boundary_order(if self.ascending {
            BoundaryOrder::ASCENDING
        } else if self.descending {
            BoundaryOrder::DESCENDING
        } else {
            BoundaryOrder::UNORDERED
        });
        let column = if self.column.valid() {
            Some(self.column.build()?)
        } else {
            None
        };
        Ok((column, self.offsets.build()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_is_inserted_as_field_four_and_the_next_field_delta_shrinks() {
        // type 0, sizes 10 and 7, then field 5 (data page header) with num_values 1, and the end markers.
        let header = [
            0x15, 0x00, 0x15, 0x14, 0x15, 0x0e, 0x2c, 0x15, 0x02, 0x00, 0x00,
        ];
        let data = b"abcdefg";
        let (out, dictionary) = with_crc(&header, data).unwrap();
        assert!(!dictionary);
        let mut expected = header[..6].to_vec();
        expected.push(0x15);
        put_i32(&mut expected, crc32fast::hash(data) as i32);
        expected.push(0x1c);
        expected.extend_from_slice(&header[7..]);
        assert_eq!(out, expected);
        // The same header written by this crate's own framing.
        let mut own = Vec::new();
        put_page(
            &mut own,
            PageKind::Data {
                num_values: 1,
                encoding: Encoding::PLAIN,
            },
            10,
            data,
        )
        .unwrap();
        assert_eq!(&own[..out.len() - 2], &out[..out.len() - 2]);
        assert!(with_crc(&[0x16, 0x00], data).is_err());
    }

    #[test]
    fn boundary_order_follows_the_pages() {
        let mut index = ChunkIndex::new(PhysicalType::INT64);
        index.add(0, 10, 5, 0, PageBounds::Int(1, 4));
        index.add(10, 10, 5, 0, PageBounds::Int(4, 9));
        let (column, offsets) = index.finish().unwrap();
        assert!(matches!(column, Some(ColumnIndexMetaData::INT64(_))));
        assert_eq!(
            column.and_then(|c| c.get_boundary_order()),
            Some(BoundaryOrder::ASCENDING)
        );
        assert_eq!(offsets.page_locations[1].first_row_index, 5);
        let mut index = ChunkIndex::new(PhysicalType::DOUBLE);
        index.add(0, 10, 5, 0, PageBounds::Float(3.0, 4.0));
        index.add(10, 10, 5, 0, PageBounds::Float(1.0, 9.0));
        let (column, _) = index.finish().unwrap();
        assert_eq!(
            column.and_then(|c| c.get_boundary_order()),
            Some(BoundaryOrder::UNORDERED)
        );
    }
}
