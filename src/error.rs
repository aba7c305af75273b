//! The one error type of the core. Every variant carries enough context (column, row, file) for a user to find
//! the problem without a debugger; the Python glue maps variants to `ticklake` exception classes by meaning.

use std::path::PathBuf;

/// Result alias used throughout the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value in a column is not acceptable (NaN price, negative size, null timestamp, ...).
    #[error("column '{column}', row {row}: {reason}")]
    InvalidValue {
        /// Column name.
        column: String,
        /// Zero-based row index within the input (counted across batches).
        row: u64,
        /// What is wrong with the value.
        reason: String,
    },
    /// A required column is absent.
    #[error("missing required column '{column}' (input has: {present})")]
    MissingColumn {
        /// Column name.
        column: String,
        /// Comma-separated list of the columns that are present.
        present: String,
    },
    /// A column has a type the kernel cannot use.
    #[error("column '{column}' has type {found}; expected {expected}")]
    ColumnType {
        /// Column name.
        column: String,
        /// What would have been accepted.
        expected: String,
        /// The Arrow type that was found.
        found: String,
    },
    /// A streaming aggregator received rows older than rows it has already seen for the same symbol.
    #[error(
        "symbol {symbol}: row {row} has timestamp {found} ns, earlier than {previous} ns seen in an earlier batch; \
         streaming aggregators need each symbol's batches in time order (sort the input, or use the one-shot function)"
    )]
    OutOfOrder {
        /// The symbol ("" when the input has none).
        symbol: String,
        /// Zero-based row index within the input.
        row: u64,
        /// The offending timestamp.
        found: i64,
        /// The newest timestamp already consumed.
        previous: i64,
    },
    /// A bad argument (unknown interval, unknown policy, ...).
    #[error("{0}")]
    InvalidArgument(String),
    /// An integer sum left the int64 range.
    #[error("column '{column}': {what} overflows int64 at row {row}")]
    Overflow {
        /// Column name.
        column: String,
        /// What overflowed (e.g. "bar volume").
        what: String,
        /// Row at which the overflow was detected.
        row: u64,
    },
    /// The aggregator was used after `finish()`.
    #[error("this aggregator is finished; create a new one")]
    Finished,
    /// A Parquet file could not be read because it is damaged or not Parquet at all.
    #[error("{path}: corrupt or unreadable Parquet file: {reason}")]
    CorruptFile {
        /// The file.
        path: PathBuf,
        /// What the reader said.
        reason: String,
    },
    /// A Parquet file could not be encoded or failed the check after writing.
    #[error("{path}: could not write Parquet: {reason}")]
    ParquetWrite {
        /// The target file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Another writer held a lake file's lock for longer than the timeout.
    #[error(
        "{path}: locked by another writer (pid {}) for over {seconds} s",
        holder.as_deref().unwrap_or("unknown")
    )]
    Locked {
        /// The lake file.
        path: PathBuf,
        /// The holder's pid, as it wrote it into the lock.
        holder: Option<String>,
        /// How long this writer waited.
        seconds: f64,
    },
    /// A filesystem operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// An Arrow compute error that has no better description.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}

impl Error {
    /// The same error with its row counted from `offset` rows earlier (for an error found in one chunk of a
    /// table, so the row is the table's).
    #[must_use]
    pub fn rows_from(self, offset: u64) -> Self {
        match self {
            Self::InvalidValue {
                column,
                row,
                reason,
            } => Self::InvalidValue {
                column,
                row: row + offset,
                reason,
            },
            Self::Overflow { column, what, row } => Self::Overflow {
                column,
                what,
                row: row + offset,
            },
            other => other,
        }
    }

    /// Shorthand for [`Error::InvalidValue`].
    pub fn invalid(column: &str, row: u64, reason: impl Into<String>) -> Self {
        Self::InvalidValue {
            column: column.to_owned(),
            row,
            reason: reason.into(),
        }
    }
}
