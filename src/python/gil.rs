//! The one helper through which every long computation releases the GIL.

use pyo3::{PyResult, Python};

use super::errors::to_py;

/// Runs `work` with the GIL released, so other Python threads make progress meanwhile, and raises its error as the
/// matching `ticklake` exception (see [`to_py`]) once the GIL is held again.
///
/// # Errors
/// The core error `work` returns, converted.
pub fn run_detached<T: Send>(
    py: Python<'_>,
    work: impl FnOnce() -> crate::Result<T> + Send,
) -> PyResult<T> {
    py.detach(work).map_err(|e| to_py(py, e))
}
