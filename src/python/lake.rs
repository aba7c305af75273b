//! Bindings for the lake's Rust half: conforming and partitioning a table into files, the period rule, row checks
//! of a stored file, and read → merge → atomic publish of one file. Paths, locks and reads stay in Python.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use arrow_select::concat::concat_batches;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3_arrow::input::AnyRecordBatch;
use pyo3_arrow::{PySchema, PyTable};

use super::errors::IntoPyResult;
use super::gil::run_detached;
use super::kernels::table;
use crate::error::{Error, Result};
use crate::lake::{self, Kind};
use crate::parquet_io::WriteOptions;
use crate::rows::Rows;
use crate::store::local::LocalStore;
use crate::store::object::ObjectLakeStore;
use crate::store::{Published, Store};
use crate::time::{period_from_key, period_of};
use std::time::Duration;

/// Reads every batch of an Arrow stream into one batch.
fn one_batch(data: AnyRecordBatch) -> PyResult<(arrow_schema::SchemaRef, Vec<RecordBatch>)> {
    let reader = data.into_reader()?;
    let schema = reader.schema();
    let batches = reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| PyErr::from(pyo3_arrow::error::PyArrowError::from(e)))?;
    Ok((schema, batches))
}

fn concat(schema: &arrow_schema::SchemaRef, batches: &[RecordBatch]) -> Result<RecordBatch> {
    // The stream's schema, not the batches': it carries the file's footer metadata (the schema version).
    match batches {
        [one] => Ok(RecordBatch::try_new(
            Arc::clone(schema),
            one.columns().to_vec(),
        )?),
        _ => Ok(concat_batches(schema, batches)?),
    }
}

/// The stored schema of a kind (`bars/1s`, `bars/1m`, `bars/1d`, `quotes`, `trades`), SPEC §2.
#[pyfunction]
fn lake_schema<'py>(py: Python<'py>, kind: &str) -> PyResult<Bound<'py, PyAny>> {
    let kind = Kind::parse(kind).py_err(py)?;
    PySchema::new(kind.schema()).into_pyarrow(py)
}

/// Raises `InvalidInputError` unless `symbol` is a valid lake symbol.
#[pyfunction]
fn check_symbol(py: Python<'_>, symbol: &str) -> PyResult<()> {
    lake::check_symbol(symbol).py_err(py)
}

/// `(key, start_ns, end_ns)` of the period holding `ts` (the one period rule, SPEC §1).
#[pyfunction]
fn period_of_ns(ts: i64, yearly: bool) -> (String, i64, i64) {
    let p = period_of(ts, yearly);
    (p.key, p.start, p.end)
}

/// `(start_ns, end_ns)` of the period named by a file key.
#[pyfunction]
fn period_bounds(py: Python<'_>, key: &str, yearly: bool) -> PyResult<(i64, i64)> {
    let p = period_from_key(key, yearly).py_err(py)?;
    Ok((p.start, p.end))
}

/// Conforms a table to a kind's schema and splits it into `(symbol, period_key, table)` parts.
#[pyfunction]
#[pyo3(signature = (data, kind, symbol))]
fn lake_partition(
    py: Python<'_>,
    data: AnyRecordBatch,
    kind: &str,
    symbol: Option<String>,
) -> PyResult<Vec<(String, String, Py<PyAny>)>> {
    let kind = Kind::parse(kind).py_err(py)?;
    let (schema, batches) = one_batch(data)?;
    let parts = run_detached(py, || -> Result<Vec<lake::Part>> {
        // The caller's chunks stay as they are: no copy of the whole table into one buffer.
        let rows = lake::conform_rows(&Rows::new(schema, batches)?, kind, symbol.as_deref())?;
        lake::partition(&rows, kind)
    })?;
    parts
        .into_iter()
        .map(|p| {
            let chunks =
                PyTable::try_new(p.rows.chunks().to_vec(), SchemaRef::clone(p.rows.schema()))?;
            Ok((p.symbol, p.period.key, chunks.into_pyarrow(py)?.unbind()))
        })
        .collect()
}

/// Conforms a stored file's rows and checks them against the lake's rules for that file.
#[pyfunction]
fn check_file_rows(
    py: Python<'_>,
    data: AnyRecordBatch,
    kind: &str,
    symbol: &str,
    period: &str,
) -> PyResult<()> {
    let kind = Kind::parse(kind).py_err(py)?;
    let (schema, batches) = one_batch(data)?;
    run_detached(py, || -> Result<()> {
        let period = period_from_key(period, kind.yearly())?;
        let rows = lake::conform_rows(&Rows::new(schema, batches)?, kind, None)?;
        lake::check_file_rows(&rows, kind, symbol, &period)
    })
}

/// Conforms a stored file's rows (read by another writer's types, or an earlier schema version) to the kind's
/// stored schema, with the writer's rule; raises `CorruptFileError` naming `path` and the column otherwise.
#[pyfunction]
fn lake_conform<'py>(
    py: Python<'py>,
    path: PathBuf,
    data: AnyRecordBatch,
    kind: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let kind = Kind::parse(kind).py_err(py)?;
    let (schema, batches) = one_batch(data)?;
    let batch = run_detached(py, || -> Result<RecordBatch> {
        let batch = concat(&schema, &batches).map_err(|e| Error::CorruptFile {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        lake::to_stored(&lake::conform_stored(&path, &batch, kind)?, kind)
    })?;
    table(py, batch)
}

/// Upserts one lake file under `root` (see `lake::upsert`): lock, read, merge, atomic publish, all here; returns a
/// summary dict `{status, rows, bytes, row_groups}`.
#[pyfunction]
#[pyo3(signature = (root, key, kind, symbol, period, incoming, replace, level, metadata, threads, lock_timeout, keep_provenance=false, storage_options=None))]
#[allow(
    clippy::too_many_arguments,
    reason = "mirrors the keyword arguments of the Python call; the core takes them grouped"
)]
fn lake_upsert<'py>(
    py: Python<'py>,
    root: &str,
    key: &str,
    kind: &str,
    symbol: &str,
    period: &str,
    incoming: AnyRecordBatch,
    replace: Vec<(i64, i64)>,
    level: i32,
    metadata: HashMap<String, String>,
    threads: usize,
    lock_timeout: f64,
    keep_provenance: bool,
    storage_options: Option<HashMap<String, String>>,
) -> PyResult<Bound<'py, PyDict>> {
    let kind = Kind::parse(kind).py_err(py)?;
    let (schema, batches) = one_batch(incoming)?;
    let mut metadata: Vec<(String, String)> = metadata.into_iter().collect();
    metadata.sort();
    let options = WriteOptions {
        zstd_level: level,
        metadata,
        day_row_groups: true,
        threads,
        delta_columns: Vec::new(),
    };
    if !(lock_timeout >= 0.0 && lock_timeout.is_finite()) {
        return Err(Error::InvalidArgument(format!(
            "lock_timeout {lock_timeout} is not a number of seconds"
        )))
        .py_err(py);
    }
    let store: Arc<dyn Store> = if root.starts_with("s3://") {
        let options: Vec<(String, String)> =
            storage_options.unwrap_or_default().into_iter().collect();
        ObjectLakeStore::shared(root, &options).py_err(py)?
    } else {
        Arc::new(LocalStore::new(
            PathBuf::from(root),
            Duration::from_secs_f64(lock_timeout),
        ))
    };
    let outcome = run_detached(py, || -> Result<Published> {
        let period = period_from_key(period, kind.yearly())?;
        let incoming = Rows::new(schema, batches)?;
        // Parts from lake_partition are already conformed (and their values checked); anything else is conformed.
        let incoming = if incoming.schema().fields() == kind.working_schema().fields() {
            incoming
        } else {
            lake::conform_rows(&incoming, kind, Some(symbol))?
        };
        let file = lake::LakeFile {
            kind,
            symbol: symbol.to_owned(),
            period,
        };
        lake::upsert(
            store.as_ref(),
            key,
            &file,
            &incoming,
            &replace,
            &options,
            keep_provenance,
        )
    })?;
    let out = PyDict::new(py);
    let (status, rows, bytes, groups) = match outcome {
        Published::Written(w) => ("written", w.rows, w.bytes, w.row_groups),
        Published::Unchanged { rows } => ("unchanged", rows, 0, 0),
        Published::Removed => ("removed", 0, 0, 0),
    };
    out.set_item("status", status)?;
    out.set_item("rows", rows)?;
    out.set_item("bytes", bytes)?;
    out.set_item("row_groups", groups)?;
    Ok(out)
}

/// Checks that the object store at `root` (`s3://bucket/prefix`) honours conditional writes; raises
/// `InvalidInputError` when it ignores them.
#[pyfunction]
#[pyo3(signature = (root, storage_options=None))]
fn object_probe(
    py: Python<'_>,
    root: &str,
    storage_options: Option<HashMap<String, String>>,
) -> PyResult<()> {
    let options: Vec<(String, String)> = storage_options.unwrap_or_default().into_iter().collect();
    let store = ObjectLakeStore::shared(root, &options).py_err(py)?;
    run_detached(py, move || store.probe())
}

/// How many conditional writes this process lost to other writers and retried from a fresh read.
#[pyfunction]
fn object_conflicts() -> u64 {
    crate::store::object::conflicts()
}

/// The `(key, size, etag)` of every object under `folder` of the lake at `root` (`s3://bucket/prefix`), sorted.
#[pyfunction]
#[pyo3(signature = (root, folder, storage_options=None))]
fn object_list(
    py: Python<'_>,
    root: &str,
    folder: &str,
    storage_options: Option<HashMap<String, String>>,
) -> PyResult<Vec<(String, u64, String)>> {
    let options: Vec<(String, String)> = storage_options.unwrap_or_default().into_iter().collect();
    let store = ObjectLakeStore::shared(root, &options).py_err(py)?;
    let folder = folder.to_owned();
    run_detached(py, move || store.list(&folder))
}

/// Writes a table as one Parquet file, atomically (a temporary in the same directory, fsync, footer check, rename,
/// fsync of the directory), with the lake's writer: the importer stages its downloads this way. Returns
/// `(rows, bytes)`.
#[pyfunction]
#[pyo3(signature = (path, data, level))]
fn write_parquet(
    py: Python<'_>,
    path: PathBuf,
    data: AnyRecordBatch,
    level: i32,
) -> PyResult<(u64, u64)> {
    let (schema, batches) = one_batch(data)?;
    let options = WriteOptions {
        zstd_level: level,
        metadata: Vec::new(),
        day_row_groups: false,
        threads: 1,
        delta_columns: vec!["timestamp".to_owned()],
    };
    // The temporary goes beside the file: staging folders hold no data a reader looks at.
    let dir = path
        .parent()
        .map_or_else(|| PathBuf::from("."), std::path::Path::to_path_buf);
    let written = run_detached(py, || -> Result<crate::parquet_io::Written> {
        crate::parquet_io::write_atomic(&path, &dir, &Rows::new(schema, batches)?, &options)
    })?;
    Ok((written.rows, written.bytes))
}

/// Adds the lake functions to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(lake_schema, m)?)?;
    m.add_function(wrap_pyfunction!(check_symbol, m)?)?;
    m.add_function(wrap_pyfunction!(period_of_ns, m)?)?;
    m.add_function(wrap_pyfunction!(period_bounds, m)?)?;
    m.add_function(wrap_pyfunction!(lake_partition, m)?)?;
    m.add_function(wrap_pyfunction!(check_file_rows, m)?)?;
    m.add_function(wrap_pyfunction!(lake_upsert, m)?)?;
    m.add_function(wrap_pyfunction!(write_parquet, m)?)?;
    m.add_function(wrap_pyfunction!(object_probe, m)?)?;
    m.add_function(wrap_pyfunction!(object_list, m)?)?;
    m.add_function(wrap_pyfunction!(object_conflicts, m)?)?;
    m.add_function(wrap_pyfunction!(lake_conform, m)?)?;
    Ok(())
}
