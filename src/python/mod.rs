//! All pyo3 glue, behind the `python` feature: the `ticklake._core` module. Each function converts its Arrow
//! input, calls one core function through [`gil::run_detached`] (GIL released, the core error raised as the
//! matching `ticklake` exception) and converts back.

// pyo3 glue names the GIL lifetime `'py` throughout, as pyo3 does, and a `#[pyfunction]` receives its arguments
// as owned values extracted from Python.
#![allow(clippy::elidable_lifetime_names, clippy::needless_pass_by_value)]

mod api;
mod errors;
mod gil;
mod kernels;
mod lake;

use pyo3::prelude::*;

/// The extension's allocator: glibc maps every buffer past 32 MB afresh and the kernel zeroes it on first touch,
/// which for a dense output (a bar per trade, 5M rows) took more time than the kernel; mimalloc reuses freed memory.
/// Measured on 500 symbols at one trade per bar (5M trades, `threads=1`): 1.5 s -> 0.85-0.95 s.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Threads a long job uses when the caller does not say: the cores the process may use, at most 8 (the one
/// default thread count of the package).
#[pyfunction]
fn default_threads() -> usize {
    crate::stream::default_threads()
}

/// The extension module `ticklake._core`.
#[pymodule]
#[pyo3(name = "_core")]
fn core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("DEBUG_BUILD", cfg!(debug_assertions))?;
    m.add("MIN_TIMESTAMP", crate::time::MIN_TIMESTAMP)?;
    m.add("MAX_TIMESTAMP", crate::time::MAX_TIMESTAMP)?;
    m.add_function(wrap_pyfunction!(default_threads, m)?)?;
    kernels::register(m)?;
    lake::register(m)?;
    api::register(m)?;
    Ok(())
}
