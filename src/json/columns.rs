//! The column buffers a page's items are appended to, and the batch they become.

use std::sync::Arc;

use arrow_array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray,
};
use arrow_schema::{DataType, Field, SchemaRef};

use super::{api_bar_schema, raw_quote_schema, PageKind, PageOptions};
use crate::error::{Error, Result};
use crate::schema::trade_schema;

/// A string column built by hand: for these short values (exchange codes, tapes, conditions) this is cheaper per
/// value than arrow's builders.
pub(super) struct StrCol {
    offsets: Vec<i32>,
    values: Vec<u8>,
    validity: Vec<bool>,
    nulls: usize,
}

impl StrCol {
    fn with_capacity(rows: usize, bytes: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        Self {
            offsets,
            values: Vec::with_capacity(bytes),
            validity: Vec::with_capacity(rows),
            nulls: 0,
        }
    }

    #[inline]
    pub(super) fn push(&mut self, value: Option<&str>) {
        match value {
            Some(text) => {
                self.values.extend_from_slice(text.as_bytes());
                self.validity.push(true);
            }
            None => {
                self.validity.push(false);
                self.nulls += 1;
            }
        }
        // Checked once in `finish`: if the total fits in i32, every prefix does.
        self.offsets.push(self.values.len() as i32);
    }

    fn len(&self) -> usize {
        self.validity.len()
    }

    /// Appends the rows of `more`.
    fn append(&mut self, more: &Self) {
        let shift = self.values.len() as i32;
        self.offsets
            .extend(more.offsets[1..].iter().map(|o| o.wrapping_add(shift)));
        self.values.extend_from_slice(&more.values);
        self.validity.extend_from_slice(&more.validity);
        self.nulls += more.nulls;
    }

    fn nulls(validity: Vec<bool>, count: usize) -> Option<arrow_buffer::NullBuffer> {
        (count > 0).then(|| arrow_buffer::NullBuffer::from(validity))
    }

    fn finish(self) -> Result<StringArray> {
        if i32::try_from(self.values.len()).is_err() {
            return Err(Error::InvalidArgument("page strings exceed 2 GiB".into()));
        }
        let offsets = arrow_buffer::OffsetBuffer::new(self.offsets.into());
        let nulls = Self::nulls(self.validity, self.nulls);
        Ok(StringArray::try_new(offsets, self.values.into(), nulls)?)
    }
}

/// A list-of-strings column built by hand (condition codes).
pub(super) struct ListCol {
    offsets: Vec<i32>,
    pub(super) items: StrCol,
    validity: Vec<bool>,
    nulls: usize,
}

impl ListCol {
    fn with_capacity(rows: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        Self {
            offsets,
            items: StrCol::with_capacity(rows * 2, rows * 2),
            validity: Vec::with_capacity(rows),
            nulls: 0,
        }
    }

    #[inline]
    pub(super) fn end_row(&mut self, valid: bool) {
        self.validity.push(valid);
        self.nulls += usize::from(!valid);
        self.offsets.push(self.items.len() as i32);
    }

    /// Appends the rows of `more`.
    fn append(&mut self, more: &Self) {
        let shift = self.items.len() as i32;
        self.offsets
            .extend(more.offsets[1..].iter().map(|o| o.wrapping_add(shift)));
        self.items.append(&more.items);
        self.validity.extend_from_slice(&more.validity);
        self.nulls += more.nulls;
    }

    fn finish(self) -> Result<arrow_array::ListArray> {
        if i32::try_from(self.items.len()).is_err() {
            return Err(Error::InvalidArgument(
                "page condition lists exceed 2^31 items".into(),
            ));
        }
        let field = Arc::new(Field::new_list_field(DataType::Utf8, true));
        let offsets = arrow_buffer::OffsetBuffer::new(self.offsets.into());
        let nulls = StrCol::nulls(self.validity, self.nulls);
        Ok(arrow_array::ListArray::try_new(
            field,
            offsets,
            Arc::new(self.items.finish()?),
            nulls,
        )?)
    }
}

/// Column buffers the items are appended to.
pub(super) struct Columns {
    pub(super) kind: PageKind,
    pub(super) options: PageOptions,
    symbols: StrCol,
    /// Rows whose symbol is not known yet (single-symbol shape, `"symbol"` after the data).
    pending: usize,
    pub(super) ts: Vec<i64>,
    pub(super) f: [Vec<f64>; 4],
    pub(super) i: [Vec<i64>; 2],
    pub(super) nullable_i: Vec<Option<i64>>,
    pub(super) nullable_f: Vec<Option<f64>>,
    pub(super) s: [StrCol; 3],
    pub(super) conditions: ListCol,
}

impl Columns {
    /// Buffers sized for about `rows` items (an estimate from the page size).
    pub(super) fn new(kind: PageKind, options: PageOptions, rows: usize) -> Self {
        let rows = rows.min(1 << 16);
        let strings = || StrCol::with_capacity(rows, rows * 2);
        Self {
            kind,
            options,
            symbols: StrCol::with_capacity(rows, rows * 5),
            pending: 0,
            ts: Vec::with_capacity(rows),
            f: std::array::from_fn(|_| Vec::with_capacity(rows)),
            i: std::array::from_fn(|_| Vec::with_capacity(rows)),
            nullable_i: Vec::with_capacity(rows),
            nullable_f: Vec::with_capacity(rows),
            s: [strings(), strings(), strings()],
            conditions: ListCol::with_capacity(rows),
        }
    }

    /// Appends the rows of `more` (parsed from the same array, further on).
    pub(super) fn append(&mut self, more: &Self) {
        self.symbols.append(&more.symbols);
        self.pending += more.pending;
        self.ts.extend_from_slice(&more.ts);
        for (to, from) in self.f.iter_mut().zip(&more.f) {
            to.extend_from_slice(from);
        }
        for (to, from) in self.i.iter_mut().zip(&more.i) {
            to.extend_from_slice(from);
        }
        self.nullable_i.extend_from_slice(&more.nullable_i);
        self.nullable_f.extend_from_slice(&more.nullable_f);
        for (to, from) in self.s.iter_mut().zip(&more.s) {
            to.append(from);
        }
        self.conditions.append(&more.conditions);
    }

    pub(super) fn push_symbol(&mut self, symbol: Option<&str>) {
        match symbol {
            Some(s) => self.symbols.push(Some(s)),
            None => self.pending += 1,
        }
    }

    pub(super) fn finish(mut self, single_symbol: Option<&str>) -> Result<RecordBatch> {
        if self.pending > 0 {
            let symbol = single_symbol.ok_or_else(|| {
                Error::InvalidArgument("page has a bare array of items but no \"symbol\"".into())
            })?;
            for _ in 0..self.pending {
                self.symbols.push(Some(symbol));
            }
        }
        let ts: ArrayRef = Arc::new(
            TimestampNanosecondArray::from(std::mem::take(&mut self.ts)).with_timezone("UTC"),
        );
        let symbols: ArrayRef = Arc::new(self.symbols.finish()?);
        let [f0, f1, f2, f3] = self.f;
        let [i0, i1] = self.i;
        let [s0, s1, s2] = self.s;
        let f = |v: Vec<f64>| -> ArrayRef { Arc::new(Float64Array::from(v)) };
        let i = |v: Vec<i64>| -> ArrayRef { Arc::new(Int64Array::from(v)) };
        let s = |b: StrCol| -> Result<ArrayRef> { Ok(Arc::new(b.finish()?) as ArrayRef) };
        let (schema, columns): (SchemaRef, Vec<ArrayRef>) = match self.kind {
            PageKind::Trades => (
                trade_schema(),
                vec![
                    symbols,
                    ts,
                    f(f0),
                    i(i0),
                    s(s0)?,
                    Arc::new(Int64Array::from(self.nullable_i)),
                    Arc::new(self.conditions.finish()?),
                    s(s1)?,
                    s(s2)?,
                ],
            ),
            PageKind::Quotes => (
                raw_quote_schema(),
                vec![
                    symbols,
                    ts,
                    f(f0),
                    i(i0),
                    f(f1),
                    i(i1),
                    s(s0)?,
                    s(s1)?,
                    Arc::new(self.conditions.finish()?),
                    s(s2)?,
                ],
            ),
            PageKind::Bars => (
                api_bar_schema(),
                vec![
                    symbols,
                    ts,
                    f(f0),
                    f(f1),
                    f(f2),
                    f(f3),
                    i(i0),
                    Arc::new(Float64Array::from(self.nullable_f)),
                    Arc::new(Int64Array::from(self.nullable_i)),
                ],
            ),
        };
        Ok(RecordBatch::try_new(schema, columns)?)
    }
}
