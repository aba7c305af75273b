//! Bindings for the API side: an Alpaca JSON page -> a pyarrow Table, parsed with the GIL released.

use pyo3::prelude::*;

use super::errors::IntoPyResult;
use super::gil::run_detached;
use super::kernels::table;
use crate::json::{parse_page as parse, text_timestamps, PageKind, PageOptions};
use crate::stream::default_threads;
use arrow_array::RecordBatch;
use pyo3_arrow::input::AnyRecordBatch;

/// Parses one market-data page; returns `(table, next_page_token)`.
#[pyfunction]
#[pyo3(signature = (data, kind, lots_to_shares, daily_labels))]
fn parse_page<'py>(
    py: Python<'py>,
    data: &[u8],
    kind: &str,
    lots_to_shares: bool,
    daily_labels: bool,
) -> PyResult<(Bound<'py, PyAny>, Option<String>)> {
    let kind = PageKind::parse(kind).py_err(py)?;
    let options = PageOptions {
        lots_to_shares,
        daily_labels,
        threads: default_threads(),
    };
    let page = run_detached(py, || parse(data, kind, options))?;
    Ok((table(py, page.batch)?, page.next_page_token))
}

/// Text timestamps (database exports) -> a one-column table `timestamp` (ns, UTC) and whether any lacked an offset.
#[pyfunction]
fn parse_timestamp_text<'py>(
    py: Python<'py>,
    data: AnyRecordBatch,
) -> PyResult<(Bound<'py, PyAny>, bool)> {
    let reader = data.into_reader()?;
    let batches: Vec<RecordBatch> = reader
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| PyErr::from(pyo3_arrow::error::PyArrowError::from(e)))?;
    let (ts, naive) = run_detached(py, || -> crate::error::Result<_> {
        let mut parts = Vec::new();
        let mut naive = false;
        for batch in &batches {
            let column = crate::schema::required(batch, "timestamp")?;
            let strings = crate::schema::strings(column, "timestamp")?;
            let (ts, n) = text_timestamps(&strings, "timestamp")?;
            naive |= n;
            parts.push(ts);
        }
        let refs: Vec<&dyn arrow_array::Array> =
            parts.iter().map(|a| a as &dyn arrow_array::Array).collect();
        let joined = if refs.is_empty() {
            std::sync::Arc::new(
                arrow_array::TimestampNanosecondArray::from(Vec::<i64>::new()).with_timezone("UTC"),
            ) as arrow_array::ArrayRef
        } else {
            arrow_select::concat::concat(&refs)?
        };
        Ok((joined, naive))
    })?;
    let batch = RecordBatch::try_from_iter(vec![("timestamp", ts)])
        .map_err(|e| PyErr::from(pyo3_arrow::error::PyArrowError::from(e)))?;
    Ok((table(py, batch)?, naive))
}

/// Drops repeated trades of a download (same symbol, exchange and id with the same payload), across batches.
#[pyclass(module = "ticklake._core")]
struct TradeDedup {
    inner: crate::dedupe::TradeDedup,
}

#[pymethods]
impl TradeDedup {
    #[new]
    fn new() -> Self {
        Self {
            inner: crate::dedupe::TradeDedup::new(),
        }
    }

    /// The rows of `data` that repeat no trade seen before.
    fn push<'py>(&mut self, py: Python<'py>, data: AnyRecordBatch) -> PyResult<Bound<'py, PyAny>> {
        let reader = data.into_reader()?;
        let schema = reader.schema();
        let batches: Vec<RecordBatch> = reader
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| PyErr::from(pyo3_arrow::error::PyArrowError::from(e)))?;
        let inner = &mut self.inner;
        let out = run_detached(py, || -> crate::error::Result<RecordBatch> {
            let kept = batches
                .iter()
                .map(|b| inner.push(b))
                .collect::<crate::error::Result<Vec<_>>>()?;
            Ok(arrow_select::concat::concat_batches(&schema, &kept)?)
        })?;
        table(py, out)
    }

    /// Trades dropped as repeats so far.
    #[getter]
    fn duplicates(&self) -> u64 {
        self.inner.duplicates
    }

    /// Trades kept although their key had been seen with another payload.
    #[getter]
    fn conflicts(&self) -> u64 {
        self.inner.conflicts
    }
}

/// Adds the API functions to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(parse_page, m)?)?;
    m.add_function(wrap_pyfunction!(parse_timestamp_text, m)?)?;
    m.add_class::<TradeDedup>()?;
    Ok(())
}
