//! Where lake files live, and the one way a lake file changes (SPEC §4): read what is stored, compute the new
//! contents from it, publish them atomically. The [`Store`] trait is that contract; [`local::LocalStore`] keeps
//! the files on a local filesystem (a per-file lock, a temporary file, fsync, rename). An object store implements
//! the same trait with a conditional PUT instead of the lock and the rename, calling the update again when another
//! writer got there first, which is why the update is a function of the stored bytes and nothing else.
//!
//! Keys are the lake's relative paths (`bars/1m/AAPL.2024-01.parquet`), named by the Python layout; a store never
//! lets a key leave its root.

pub mod local;
pub mod object;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::parquet_io::{WriteOptions, Written};
use crate::rows::Rows;

/// What a rewrite does with a file, decided from its stored bytes.
#[derive(Debug)]
pub enum Change {
    /// Leave the file as it is (it holds `rows` rows).
    Keep {
        /// Rows in the file.
        rows: u64,
    },
    /// Replace the file with these rows (in the kind's stored schema), encoded with these options.
    Write(Rows, WriteOptions),
    /// Delete the file.
    Remove,
}

/// What a rewrite did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Published {
    /// The file was written (created or replaced).
    Written(Written),
    /// Nothing changed.
    Unchanged {
        /// Rows in the file.
        rows: u64,
    },
    /// The file was deleted (every row was replaced by none).
    Removed,
}

/// A place that holds lake files.
pub trait Store: Send + Sync {
    /// Where `key` lives, for messages (a path or a URL; never a credential).
    fn locate(&self, key: &str) -> String;

    /// Rewrites the file at `key`: `update` receives its stored bytes (None when there is no file) and says what
    /// to do. The store guarantees that the result is published only if the file still holds what `update` saw
    /// (a lock held across the call, or a conditional write retried from a fresh read), so no other writer's
    /// rows are ever lost.
    ///
    /// # Errors
    /// What `update` returns, and the store's own I/O errors naming the file.
    fn rewrite(
        &self,
        key: &str,
        update: &mut dyn FnMut(Option<&Bytes>) -> Result<Change>,
    ) -> Result<Published>;
}

/// Checks a key against the lake's layout: relative, `/`-separated, no empty, `.` or `..` component and no
/// component starting with a dot (those are the store's own).
///
/// # Errors
/// [`Error::InvalidArgument`] naming the key.
pub fn check_key(key: &str) -> Result<()> {
    let bad = key.is_empty()
        || key.starts_with('/')
        || key.contains('\\')
        || key.contains('\0')
        || key
            .split('/')
            .any(|part| part.is_empty() || part.starts_with('.'));
    if bad {
        return Err(Error::InvalidArgument(format!(
            "{key:?} is not a lake file key (expected e.g. \"bars/1m/AAPL.2024-01.parquet\")"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_inside_the_root() {
        assert!(check_key("bars/1m/AAPL.2024-01.parquet").is_ok());
        for bad in [
            "",
            "/etc/passwd",
            "../x.parquet",
            "bars/../../x",
            "bars//x",
            ".ticklake/locks/x",
            "bars/.hidden",
            "a\\b",
        ] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
    }
}
