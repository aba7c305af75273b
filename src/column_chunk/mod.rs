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
//!   value order, with the few values just off the grid (sums of prices) hashed and their keys after those; other
//!   values through a hash table, in order of first appearance. A number column whose dictionary
//!   would not make it smaller is written `PLAIN` instead.
//! - Nullable columns carry their definition levels (RLE hybrid, width 1, 4-byte length prefix).
//! - Column chunk statistics: min, max and the null count (floats: NaN ignored, a zero minimum written as -0.0 and a
//!   zero maximum as +0.0, as the format asks).
//! - Every page header carries the CRC32 of the page, and every chunk its page index (column index: each page's min,
//!   max, nulls and the boundary order; offset index: where each page starts), see [`crate::pages`].
//!
//! The parts: `dictionary` builds dictionaries (direct table or hash), `rle` the RLE / bit-packed hybrid,
//! `delta` `DELTA_BINARY_PACKED`, `statistics` the chunk's min and max, and `writer` the pages and metadata.

mod delta;
mod dictionary;
mod rle;
mod statistics;
mod writer;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float64Type, Int64Type, TimestampMicrosecondType, TimestampNanosecondType,
};
use arrow_array::{Array, StringArray};
use arrow_schema::{DataType, TimeUnit};
use bytes::Bytes;
use parquet::column::writer::ColumnCloseResult;
use parquet::errors::{ParquetError, Result};
use parquet::file::statistics::Statistics;
use parquet::schema::types::ColumnDescPtr;

use crate::pages::PageBounds;
use dictionary::{float_slots, int_slots, number_body, text_body};
use statistics::{float_bounds, float_range, float_statistics, int_range, int_statistics};

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
    /// A data page's encoded values, reused from page to page.
    page: Vec<u8>,
    /// A page after ZSTD, reused from page to page.
    compressed: Vec<u8>,
}

/// The values of a column chunk, in the form they are encoded from.
#[derive(Clone, Copy)]
enum Values<'a> {
    Int(&'a [i64]),
    Float(&'a [f64]),
    Text(&'a StringArray),
}

/// A chunk's statistics (for its metadata) and its bounds (for a page that holds all of its values).
struct Summary {
    statistics: Statistics,
    bounds: PageBounds,
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
            page: Vec::new(),
            compressed: Vec::new(),
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
        let (body, statistics, bounds) = match values {
            Values::Int(v) => {
                let (min, max) = int_range(v);
                let body = if delta {
                    Body::Delta(v)
                } else {
                    number_body(v, |x| x as u64, int_slots(v, min, max), &mut self.table)
                };
                (body, int_statistics(min, max), PageBounds::Int(min, max))
            }
            Values::Float(v) => {
                let (min, max) = float_range(v);
                let slots = float_slots(v.len(), min, max);
                (
                    number_body(v, f64::to_bits, slots, &mut self.table),
                    float_statistics(min, max),
                    float_bounds(min, max),
                )
            }
            Values::Text(strings) => match text_body(strings) {
                Some((body, statistics)) => (body, statistics, PageBounds::None),
                None => return Ok(None),
            },
        };
        let levels: Option<Vec<u32>> = (descr.max_def_level() == 1).then(|| match array.nulls() {
            Some(valid) => valid.iter().map(u32::from).collect(),
            None => vec![1; rows],
        });
        let summary = Summary { statistics, bounds };
        self.write_chunk(descr, &values, rows, &body, levels.as_deref(), summary)
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch};
    use bytes::Bytes;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::basic::Encoding;
    use parquet::file::metadata::ParquetMetaData;

    use super::*;
    use crate::parquet_io::{encode, WriteOptions};

    /// Writes `columns` as one row group (no day split) and reads them back with arrow-rs.
    pub(super) fn round_trip(
        columns: Vec<(&str, ArrayRef)>,
        delta: &[&str],
    ) -> (RecordBatch, ParquetMetaData) {
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let options = WriteOptions {
            day_row_groups: false,
            delta_columns: delta.iter().map(|&d| d.to_owned()).collect(),
            ..WriteOptions::default()
        };
        let bytes = Bytes::from(
            encode(Vec::new(), &(&batch).into(), &options, "t.parquet".as_ref()).unwrap(),
        );
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

    pub(super) fn encodings(metadata: &ParquetMetaData, column: usize) -> Vec<Encoding> {
        metadata.row_group(0).column(column).encodings().collect()
    }

    pub(super) const LENGTHS: [usize; 12] = [1, 2, 7, 8, 9, 31, 32, 33, 127, 128, 129, 1000];

    #[test]
    fn page_index_bounds_are_each_pages_own_min_and_max() {
        use arrow_array::StringArray;
        use parquet::file::metadata::{PageIndexPolicy, ParquetMetaDataReader};
        use parquet::file::page_index::column_index::ColumnIndexMetaData;
        // One page (fewer rows than PAGE_ROWS, so the chunk's bounds are the page's) and three pages; floats on
        // the grid with sums just off it (hashed after the counted keys), integers in a dictionary and in delta,
        // strings with nulls.
        let mut rng = crate::test_rng::Rng(0x9E37_79B9_7F4A_7C15);
        for rows in [1000, 2 * PAGE_ROWS + 7] {
            let cents: Vec<f64> = (0..rows)
                .map(|_| (10_000 + rng.below(2000)) as f64 / 100.0)
                .collect();
            let price: Vec<f64> = cents
                .iter()
                .map(|&c| if rng.below(4) == 0 { c + 0.07 } else { c })
                .collect();
            let count: Vec<i64> = (0..rows).map(|_| rng.below(500) as i64 - 100).collect();
            let time: Vec<i64> = (0..rows as i64)
                .map(|i| i * 1000 + rng.below(900) as i64)
                .collect();
            let venue: Vec<Option<&str>> = (0..rows)
                .map(|_| [None, Some("P"), Some("Q"), Some("Z")][rng.below(4) as usize])
                .collect();
            let columns: Vec<(&str, ArrayRef)> = vec![
                ("price", Arc::new(Float64Array::from(price.clone()))),
                ("count", Arc::new(Int64Array::from(count.clone()))),
                ("time", Arc::new(Int64Array::from(time.clone()))),
                ("venue", Arc::new(StringArray::from(venue.clone()))),
            ];
            let batch = RecordBatch::try_from_iter(columns).unwrap();
            let options = WriteOptions {
                day_row_groups: false,
                delta_columns: vec!["time".to_owned()],
                ..WriteOptions::default()
            };
            let bytes = Bytes::from(
                encode(Vec::new(), &(&batch).into(), &options, "t.parquet".as_ref()).unwrap(),
            );
            let metadata = ParquetMetaDataReader::new()
                .with_page_index_policy(PageIndexPolicy::Required)
                .parse_and_finish(&bytes)
                .unwrap();
            let (column_index, offset_index) = (
                &metadata.column_index().unwrap()[0],
                &metadata.offset_index().unwrap()[0],
            );
            for column in 0..4 {
                let starts: Vec<usize> = offset_index[column]
                    .page_locations()
                    .iter()
                    .map(|p| p.first_row_index as usize)
                    .collect();
                assert_eq!(starts.len(), rows.div_ceil(PAGE_ROWS), "column {column}");
                for (page, &start) in starts.iter().enumerate() {
                    let end = starts.get(page + 1).copied().unwrap_or(rows);
                    match &column_index[column] {
                        ColumnIndexMetaData::DOUBLE(index) => {
                            let page_values = &price[start..end];
                            let lo = page_values.iter().copied().fold(f64::INFINITY, f64::min);
                            let hi = page_values
                                .iter()
                                .copied()
                                .fold(f64::NEG_INFINITY, f64::max);
                            assert_eq!(
                                index.min_value(page),
                                Some(&lo),
                                "{rows} rows, page {page}"
                            );
                            assert_eq!(
                                index.max_value(page),
                                Some(&hi),
                                "{rows} rows, page {page}"
                            );
                        }
                        ColumnIndexMetaData::INT64(index) => {
                            let page_values = if column == 1 {
                                &count[start..end]
                            } else {
                                &time[start..end]
                            };
                            let lo = page_values.iter().min();
                            let hi = page_values.iter().max();
                            assert_eq!(index.min_value(page), lo, "column {column}, page {page}");
                            assert_eq!(index.max_value(page), hi, "column {column}, page {page}");
                        }
                        ColumnIndexMetaData::BYTE_ARRAY(index) => {
                            let page_values = venue[start..end].iter().flatten();
                            let lo = page_values.clone().min().map(|s| s.as_bytes());
                            let hi = page_values.max().map(|s| s.as_bytes());
                            assert_eq!(index.min_value(page), lo, "venue, page {page}");
                            assert_eq!(index.max_value(page), hi, "venue, page {page}");
                        }
                        other => panic!("column {column}: unexpected index {other:?}"),
                    }
                }
            }
        }
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
