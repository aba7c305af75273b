//! Crash points for the kill-at-every-step tests (RELIABILITY.md §2): a process started with
//! `TICKLAKE_FAULT=<point>[:<n>]` dies at once (`_exit(137)`, no cleanup, as a SIGKILL would leave it) the `n`-th
//! time (default the first) it reaches [`point`] with that name, or sees [`fail`] report an injected failure there.
//! The Python half of the importer reads the same variable (`ticklake/_faults.py`). Without the variable each call
//! is one comparison.
//!
//! Points of a lake write (`parquet_io::write_atomic`): `write.temp` (the temporary file is written, not yet
//! synced), `write.synced` (synced and checked, not yet renamed), `write.renamed` (renamed over the target, its
//! directory not yet synced), `write.done`; `remove.unlinked` (a file emptied by `replace` is unlinked, its directory
//! not yet synced). Injected failures: `write.fsync-eio` (the temporary file's fsync fails with EIO).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

fn spec() -> Option<&'static (String, u64)> {
    static SPEC: OnceLock<Option<(String, u64)>> = OnceLock::new();
    SPEC.get_or_init(|| {
        let text = std::env::var("TICKLAKE_FAULT").ok()?;
        let (name, nth) = match text.split_once(':') {
            Some((name, nth)) => (name.to_owned(), nth.parse().unwrap_or(1)),
            None => (text, 1),
        };
        Some((name, nth))
    })
    .as_ref()
}

/// True on the `n`-th pass of the point `TICKLAKE_FAULT` names.
fn due(name: &str) -> bool {
    static SEEN: AtomicU64 = AtomicU64::new(0);
    match spec() {
        Some((point, nth)) if point == name => SEEN.fetch_add(1, Ordering::SeqCst) + 1 == *nth,
        _ => false,
    }
}

/// Dies here when `TICKLAKE_FAULT` names this point.
pub fn point(name: &str) {
    if due(name) {
        // SAFETY: `_exit` ends the process at once; nothing is left to be memory-safe about.
        unsafe { libc::_exit(137) }
    }
}

/// True when `TICKLAKE_FAULT` asks for an injected failure at this point (the caller fails as the OS would).
#[must_use]
pub fn fail(name: &str) -> bool {
    due(name)
}
