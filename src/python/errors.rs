//! Maps core errors to the exception classes of `ticklake.exceptions`, by meaning.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::error::Error;

/// Converts a core error into the matching `ticklake` exception.
pub fn to_py(py: Python<'_>, err: Error) -> PyErr {
    let (class, column, row) = match &err {
        Error::InvalidValue { column, row, .. } | Error::Overflow { column, row, .. } => {
            ("InvalidInputError", Some(column.clone()), Some(*row))
        }
        Error::OutOfOrder { row, .. } => (
            "InvalidInputError",
            Some("timestamp".to_owned()),
            Some(*row),
        ),
        Error::MissingColumn { column, .. } | Error::ColumnType { column, .. } => {
            ("InvalidInputError", Some(column.clone()), None)
        }
        Error::InvalidArgument(_) | Error::Arrow(_) => ("InvalidInputError", None, None),
        Error::Finished => ("TicklakeError", None, None),
        Error::CorruptFile { .. } => ("CorruptFileError", None, None),
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            ("LakeFileNotFoundError", None, None)
        }
        Error::Locked { .. } => ("LakeLockedError", None, None),
        Error::Io { .. } | Error::ParquetWrite { .. } => ("LakeIOError", None, None),
    };
    let message = err.to_string();
    let build = || -> PyResult<PyErr> {
        let module = py.import("ticklake.exceptions")?;
        let kwargs = PyDict::new(py);
        if column.is_some() {
            kwargs.set_item("column", column.clone())?;
        }
        if row.is_some() {
            kwargs.set_item("row", row)?;
        }
        let instance = module
            .getattr(class)?
            .call((message.clone(),), Some(&kwargs))?;
        Ok(PyErr::from_value(instance))
    };
    build().unwrap_or_else(|e| PyRuntimeError::new_err(format!("{message} (while raising: {e})")))
}

/// Extension trait: `.py_err(py)?` on core results.
pub trait IntoPyResult<T> {
    /// Converts the error side into a Python exception.
    fn py_err(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for crate::error::Result<T> {
    fn py_err(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, e))
    }
}
