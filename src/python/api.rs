//! Bindings for the API side: an Alpaca JSON page -> a pyarrow Table, parsed with the GIL released.

use pyo3::prelude::*;

use super::errors::IntoPyResult;
use super::gil::detached;
use super::kernels::table;
use crate::json::{parse_page as parse, PageKind, PageOptions};

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
    };
    let page = detached(py, || parse(data, kind, options)).py_err(py)?;
    Ok((table(py, page.batch)?, page.next_page_token))
}

/// Adds the API functions to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(parse_page, m)?)?;
    Ok(())
}
