//! ticklake's core: trades -> OHLCV bars, quotes -> best quote per second, over Arrow buffers.
//!
//! Everything outside [`python`] is plain Rust (no pyo3), so `cargo test --no-default-features` and the
//! criterion benches never link libpython.

pub mod bars;
pub mod column_chunk;
pub mod conditions;
pub mod dedupe;
pub mod error;
pub mod fault;
pub mod huge_pages;
pub mod json;
pub mod lake;
pub mod pages;
pub mod parquet_io;
pub mod quotes;
pub mod rows;
pub mod schema;
pub mod store;
pub mod stream;
pub mod time;

#[cfg(test)]
mod test_rng;

#[cfg(feature = "python")]
pub mod python;

pub use error::{Error, Result};
