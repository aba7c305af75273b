//! Rows in chunks: a table as the caller handed it over (pyarrow tables, streams and the kernels' outputs come in
//! batches), kept that way through validation, partitioning and encoding. A write never copies a whole month into
//! one buffer first: a row range comes out as one batch, zero-copy inside a chunk and copied only where it spans
//! chunks (a row group, a day, is small beside a month).

use std::borrow::Cow;

use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;
use arrow_select::concat::{concat, concat_batches};
use arrow_select::interleave::interleave;

use crate::error::Result;

/// A table as a list of batches with one schema.
#[derive(Clone, Debug)]
pub struct Rows {
    schema: SchemaRef,
    chunks: Vec<RecordBatch>,
    /// `ends[i]`: the row after chunk `i`, counted across chunks.
    ends: Vec<usize>,
}

impl Rows {
    /// The batches as one table with `schema` (the stream's: it carries footer metadata the batches may lack).
    /// Empty batches are dropped.
    ///
    /// # Errors
    /// Arrow's error when a batch's columns do not fit `schema`.
    pub fn new(schema: SchemaRef, batches: impl IntoIterator<Item = RecordBatch>) -> Result<Self> {
        let mut chunks = Vec::new();
        let mut ends = Vec::new();
        let mut total = 0;
        for batch in batches {
            if batch.num_rows() == 0 {
                continue;
            }
            total += batch.num_rows();
            chunks.push(RecordBatch::try_new(
                SchemaRef::clone(&schema),
                batch.columns().to_vec(),
            )?);
            ends.push(total);
        }
        Ok(Self {
            schema,
            chunks,
            ends,
        })
    }

    /// The schema.
    #[must_use]
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Rows across all chunks.
    #[must_use]
    pub fn num_rows(&self) -> usize {
        self.ends.last().copied().unwrap_or(0)
    }

    /// The chunks (none empty), in order.
    #[must_use]
    pub fn chunks(&self) -> &[RecordBatch] {
        &self.chunks
    }

    /// The row where chunk `i` starts.
    #[must_use]
    pub fn chunk_start(&self, i: usize) -> usize {
        if i == 0 {
            0
        } else {
            self.ends[i - 1]
        }
    }

    /// The chunk holding `row` (`row < num_rows()`) and the row's index inside it.
    #[must_use]
    pub fn locate(&self, row: usize) -> (usize, usize) {
        let chunk = self.ends.partition_point(|&end| end <= row);
        (chunk, row - self.chunk_start(chunk))
    }

    /// Rows `offset..offset + len` as chunks (zero-copy slices).
    ///
    /// # Panics
    /// Never for a range inside the table; a range past its end is cut at the end.
    #[must_use]
    pub fn sub(&self, offset: usize, len: usize) -> Self {
        let end = (offset + len).min(self.num_rows());
        let mut pieces = Vec::new();
        let mut ends = Vec::new();
        let mut at = offset;
        while at < end {
            let (chunk, inside) = self.locate(at);
            let take = (self.chunks[chunk].num_rows() - inside).min(end - at);
            pieces.push(self.chunks[chunk].slice(inside, take));
            at += take;
            ends.push(at - offset);
        }
        Self {
            schema: SchemaRef::clone(&self.schema),
            chunks: pieces,
            ends,
        }
    }

    /// Rows `offset..offset + len` as one batch: zero-copy inside one chunk, else the pieces copied together.
    ///
    /// # Errors
    /// Arrow's concat error (none for chunks of one schema).
    pub fn slice(&self, offset: usize, len: usize) -> Result<RecordBatch> {
        self.sub(offset, len).to_batch()
    }

    /// All rows as one batch (copied only when there is more than one chunk).
    ///
    /// # Errors
    /// Arrow's concat error (none for chunks of one schema).
    pub fn to_batch(&self) -> Result<RecordBatch> {
        match self.chunks.as_slice() {
            [] => Ok(RecordBatch::new_empty(SchemaRef::clone(&self.schema))),
            [one] => Ok(one.clone()),
            many => Ok(concat_batches(&self.schema, many)?),
        }
    }

    /// The rows of `ranges` (`[start, end)` each, in the order given) gathered into one batch.
    ///
    /// # Errors
    /// Arrow's interleave error (none for chunks of one schema).
    pub fn gather(&self, ranges: &[(usize, usize)]) -> Result<RecordBatch> {
        let mut picks = Vec::with_capacity(ranges.iter().map(|(a, b)| b - a).sum());
        for &(start, end) in ranges {
            let mut at = start;
            while at < end {
                let (chunk, inside) = self.locate(at);
                let take = (self.chunks[chunk].num_rows() - inside).min(end - at);
                picks.extend((inside..inside + take).map(|i| (chunk, i)));
                at += take;
            }
        }
        let columns = (0..self.schema.fields().len())
            .map(|c| {
                let sources: Vec<&dyn Array> =
                    self.chunks.iter().map(|b| b.column(c).as_ref()).collect();
                interleave(&sources, &picks)
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(RecordBatch::try_new(
            SchemaRef::clone(&self.schema),
            columns,
        )?)
    }

    /// Column `index` as one array (copied only when there is more than one chunk).
    ///
    /// # Errors
    /// Arrow's concat error.
    pub fn column(&self, index: usize) -> Result<ArrayRef> {
        match self.chunks.as_slice() {
            [] => Ok(arrow_array::new_empty_array(
                self.schema.field(index).data_type(),
            )),
            [one] => Ok(ArrayRef::clone(one.column(index))),
            many => {
                let parts: Vec<&dyn Array> =
                    many.iter().map(|c| c.column(index).as_ref()).collect();
                Ok(concat(&parts)?)
            }
        }
    }

    /// The values of a primitive column (an int64 or timestamp column) across chunks: borrowed from a single
    /// chunk, collected otherwise.
    #[must_use]
    pub fn values<T: arrow_array::ArrowPrimitiveType>(&self, index: usize) -> Cow<'_, [T::Native]> {
        use arrow_array::cast::AsArray;
        match self.chunks.as_slice() {
            [] => Cow::Owned(Vec::new()),
            [one] => Cow::Borrowed(one.column(index).as_primitive::<T>().values().as_ref()),
            many => Cow::Owned(
                many.iter()
                    .flat_map(|c| c.column(index).as_primitive::<T>().values().iter().copied())
                    .collect(),
            ),
        }
    }

    /// Applies `f` to every chunk (with the row where the chunk starts), giving a table of the results.
    ///
    /// # Errors
    /// The first error of `f`, or Arrow's when the results' schemas differ from the first one.
    pub fn map(
        &self,
        mut f: impl FnMut(&RecordBatch, usize) -> Result<RecordBatch>,
    ) -> Result<Self> {
        let mut out = Vec::with_capacity(self.chunks.len());
        for (i, chunk) in self.chunks.iter().enumerate() {
            out.push(f(chunk, self.chunk_start(i))?);
        }
        let schema = out
            .first()
            .map_or_else(|| SchemaRef::clone(&self.schema), RecordBatch::schema);
        Self::new(schema, out)
    }
}

impl From<RecordBatch> for Rows {
    fn from(batch: RecordBatch) -> Self {
        let n = batch.num_rows();
        let schema = batch.schema();
        Self {
            schema,
            ends: if n == 0 { Vec::new() } else { vec![n] },
            chunks: if n == 0 { Vec::new() } else { vec![batch] },
        }
    }
}

impl From<&RecordBatch> for Rows {
    fn from(batch: &RecordBatch) -> Self {
        Self::from(batch.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use arrow_array::Int64Array;

    use super::*;

    fn table(sizes: &[usize]) -> Rows {
        let mut next = 0i64;
        let batches: Vec<RecordBatch> = sizes
            .iter()
            .map(|&n| {
                let values: Vec<i64> = (next..next + n as i64).collect();
                next += n as i64;
                RecordBatch::try_from_iter([("v", Arc::new(Int64Array::from(values)) as ArrayRef)])
                    .unwrap()
            })
            .collect();
        let schema = batches[0].schema();
        Rows::new(schema, batches).unwrap()
    }

    #[test]
    fn every_range_of_every_chunking_reads_the_same_rows() {
        for sizes in [vec![10], vec![3, 0, 7], vec![1, 1, 1, 1, 6], vec![4, 6]] {
            let rows = table(&sizes);
            assert_eq!(rows.num_rows(), 10);
            assert!(rows.chunks().iter().all(|c| c.num_rows() > 0));
            assert_eq!(
                rows.values::<Int64Type>(0).as_ref(),
                (0..10).collect::<Vec<i64>>()
            );
            for a in 0..=10 {
                for len in 0..=(10 - a) {
                    let got = rows.slice(a, len).unwrap();
                    let got: Vec<i64> = got.column(0).as_primitive::<Int64Type>().values().to_vec();
                    assert_eq!(got, (a as i64..(a + len) as i64).collect::<Vec<_>>());
                    assert_eq!(rows.sub(a, len).num_rows(), len);
                    let gathered = rows.gather(&[(a, a + len), (0, a)]).unwrap();
                    let gathered = gathered
                        .column(0)
                        .as_primitive::<Int64Type>()
                        .values()
                        .to_vec();
                    let expected: Vec<i64> = (a..a + len).chain(0..a).map(|v| v as i64).collect();
                    assert_eq!(gathered, expected);
                }
            }
        }
    }

    #[test]
    fn a_range_inside_one_chunk_is_not_copied() {
        let rows = table(&[4, 6]);
        let inside = rows.slice(5, 3).unwrap();
        let source = rows.chunks()[1]
            .column(0)
            .as_primitive::<Int64Type>()
            .values()
            .as_ptr();
        let got = inside
            .column(0)
            .as_primitive::<Int64Type>()
            .values()
            .as_ptr();
        assert_eq!(got, source.wrapping_add(1));
    }
}
