//! The one helper through which every long computation releases the GIL.

use pyo3::Python;

/// Runs `work` with the GIL released, so other Python threads make progress meanwhile.
pub fn detached<T: Send>(py: Python<'_>, work: impl FnOnce() -> T + Send) -> T {
    py.detach(work)
}
