//! Bindings for the aggregation kernels: `bars`, `best_quotes` and the streaming `BarAggregator` and
//! `QuoteSampler`. The Python package wraps these with docstrings and pandas conversion.

use arrow_array::RecordBatch;
use arrow_schema::ArrowError;
use pyo3::prelude::*;
use pyo3_arrow::input::AnyRecordBatch;
use pyo3_arrow::PyTable;

use super::errors::IntoPyResult;
use super::gil::run_detached;
use crate::bars as bar_kernel;
use crate::error::{Error, Result};
use crate::quotes as quote_kernel;
use crate::stream::{default_threads, Kernel, Stream};

pub(super) fn table<'py>(py: Python<'py>, batch: RecordBatch) -> PyResult<Bound<'py, PyAny>> {
    let schema = batch.schema();
    PyTable::try_new(vec![batch], schema)?.into_pyarrow(py)
}

type Batches = Box<dyn Iterator<Item = Result<RecordBatch>> + Send>;

fn batches(data: AnyRecordBatch) -> PyResult<Batches> {
    let reader = data.into_reader()?;
    Ok(Box::new(reader.map(
        |b: std::result::Result<RecordBatch, ArrowError>| b.map_err(Error::from),
    )))
}

/// Trades -> OHLCV bars.
#[pyfunction]
#[pyo3(signature = (data, interval, symbol, conditions, assume_utc, threads))]
fn bars<'py>(
    py: Python<'py>,
    data: AnyRecordBatch,
    interval: &str,
    symbol: Option<String>,
    conditions: &str,
    assume_utc: bool,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let input = batches(data)?;
    let threads = threads.unwrap_or_else(default_threads);
    let out = run_detached(py, || {
        bar_kernel::bars(input, interval, conditions, symbol, assume_utc, threads)
    })?;
    table(py, out)
}

/// Quotes -> best quote per second.
#[pyfunction]
#[pyo3(signature = (data, symbol, assume_utc, threads))]
fn best_quotes<'py>(
    py: Python<'py>,
    data: AnyRecordBatch,
    symbol: Option<String>,
    assume_utc: bool,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let input = batches(data)?;
    let threads = threads.unwrap_or_else(default_threads);
    let out = run_detached(py, || {
        quote_kernel::best_quotes(input, symbol, assume_utc, threads)
    })?;
    table(py, out)
}

/// `Stream::push` for every batch of `data`, GIL released; the finished rows as one `pyarrow.Table`.
fn stream_push<'py, K: Kernel + Send>(
    py: Python<'py>,
    stream: &mut Stream<K>,
    data: AnyRecordBatch,
) -> PyResult<Bound<'py, PyAny>>
where
    K::State: Send,
{
    let input = batches(data)?;
    let out = run_detached(py, || -> Result<RecordBatch> {
        let mut outs = Vec::new();
        for batch in input {
            outs.push(stream.push(&batch?)?);
        }
        Ok(arrow_select::concat::concat_batches(
            &stream.schema(),
            &outs,
        )?)
    })?;
    table(py, out)
}

/// `Stream::finish`, GIL released.
fn stream_finish<'py, K: Kernel + Send>(
    py: Python<'py>,
    stream: &mut Stream<K>,
) -> PyResult<Bound<'py, PyAny>>
where
    K::State: Send,
{
    let out = run_detached(py, || stream.finish())?;
    table(py, out)
}

/// Streaming trades -> bars.
#[pyclass(module = "ticklake._core")]
struct BarAggregator {
    inner: bar_kernel::BarAggregator,
}

#[pymethods]
impl BarAggregator {
    #[new]
    #[pyo3(signature = (interval, symbol, conditions, assume_utc, threads))]
    fn new(
        py: Python<'_>,
        interval: &str,
        symbol: Option<String>,
        conditions: &str,
        assume_utc: bool,
        threads: Option<usize>,
    ) -> PyResult<Self> {
        let threads = threads.unwrap_or_else(default_threads);
        let inner = bar_kernel::bar_aggregator(interval, conditions, symbol, assume_utc, threads)
            .py_err(py)?;
        Ok(Self { inner })
    }

    fn push<'py>(&mut self, py: Python<'py>, data: AnyRecordBatch) -> PyResult<Bound<'py, PyAny>> {
        stream_push(py, &mut self.inner, data)
    }

    fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        stream_finish(py, &mut self.inner)
    }
}

/// Streaming quotes -> best quote per second.
#[pyclass(module = "ticklake._core")]
struct QuoteSampler {
    inner: quote_kernel::QuoteSampler,
}

#[pymethods]
impl QuoteSampler {
    #[new]
    #[pyo3(signature = (symbol, assume_utc, threads))]
    fn new(symbol: Option<String>, assume_utc: bool, threads: Option<usize>) -> Self {
        let threads = threads.unwrap_or_else(default_threads);
        Self {
            inner: quote_kernel::quote_sampler(symbol, assume_utc, threads),
        }
    }

    fn push<'py>(&mut self, py: Python<'py>, data: AnyRecordBatch) -> PyResult<Bound<'py, PyAny>> {
        stream_push(py, &mut self.inner, data)
    }

    fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        stream_finish(py, &mut self.inner)
    }
}

/// Adds the kernel functions and classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(bars, m)?)?;
    m.add_function(wrap_pyfunction!(best_quotes, m)?)?;
    m.add_class::<BarAggregator>()?;
    m.add_class::<QuoteSampler>()?;
    Ok(())
}
