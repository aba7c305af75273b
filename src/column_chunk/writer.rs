//! One column chunk written out: the dictionary page, data pages of at most [`PAGE_ROWS`] rows (levels, values,
//! ZSTD, CRC), the page index and the chunk's metadata.

use bytes::Bytes;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::column::writer::ColumnCloseResult;
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::ColumnChunkMetaData;
use parquet::schema::types::ColumnDescPtr;

use super::delta::put_delta;
use super::rle::put_hybrid;
use super::statistics::{float_bounds, float_range, int_range};
use super::{Body, ChunkEncoder, EncodedChunk, Summary, Values, PAGE_ROWS};
use crate::pages::{put_page, ChunkIndex, DictionaryRanks, PageBounds, PageKind};

impl ChunkEncoder {
    /// Compresses `body` into the encoder's reused buffer (a fresh buffer per page cost a page fault per 4 KiB).
    fn compress(&mut self, body: &[u8]) -> Result<()> {
        self.compressed.clear();
        self.compressed
            .reserve(zstd::zstd_safe::compress_bound(body.len()));
        self.zstd
            .compress_to_buffer(body, &mut self.compressed)
            .map(drop)
            .map_err(|e| ParquetError::General(format!("ZSTD compression failed: {e}")))
    }

    #[allow(
        clippy::too_many_lines,
        reason = "one pass over the pages: dictionary page, then levels, bounds, values and ZSTD per data page"
    )]
    pub(super) fn write_chunk(
        &mut self,
        descr: &ColumnDescPtr,
        values: &Values<'_>,
        rows: usize,
        body: &Body<'_>,
        levels: Option<&[u32]>,
        summary: Summary,
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
            self.compress(page)?;
            let kind = PageKind::Dictionary {
                entries: u32::try_from(*entries).unwrap_or(u32::MAX),
            };
            dictionary_offset = Some(bytes.len());
            let size = put_page(&mut bytes, kind, page.len(), &self.compressed)?;
            compressed += size;
            uncompressed += size - self.compressed.len() + page.len();
            ranks = Some(DictionaryRanks::new(page, *entries, descr.physical_type())?);
        }
        let mut index = ChunkIndex::new(descr.physical_type());
        let mut data_offset = None;
        let mut value = 0;
        let mut out = std::mem::take(&mut self.page);
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
                    ranks.bounds(&indices[range.clone()], range.len() == indices.len())
                }
                // One page holds the whole chunk (a day of 1s bars): its bounds are the chunk's.
                (_, _, Values::Int(_) | Values::Float(_)) if range.len() == rows => {
                    summary.bounds.clone()
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
                    float_bounds(min, max)
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
            self.compress(&out)?;
            let kind = PageKind::Data {
                num_values: u32::try_from(end - start).unwrap_or(u32::MAX),
                encoding,
            };
            let offset = bytes.len();
            let size = put_page(&mut bytes, kind, out.len(), &self.compressed)?;
            data_offset.get_or_insert(offset);
            index.add(offset, size, end - start, end - start - count, bounds);
            compressed += size;
            uncompressed += size - self.compressed.len() + out.len();
        }
        self.page = out;
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
            .set_statistics(summary.statistics)
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
