"""The storage behind the lake's writes (SPEC §4): one Rust call per file that locks it, reads what is stored,
merges and publishes atomically (``src/store/``). Locks and temporary files live under the root's hidden
``.ticklake/`` folder, so the data folders hold data files only and any reader can be pointed at a folder or a
``*`` glob (SPEC §1).

Example:
    >>> storage = LocalStorage(Path("lake"))
    >>> storage.upsert(Path("lake/bars/1m/AAPL.2024-01.parquet"), kind="bars/1m", symbol="AAPL",
    ...                period="2024-01", incoming=table, replace=[], level=3, metadata={})["status"]
    'written'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from ticklake import _core
from ticklake.exceptions import CorruptFileError, LakeIOError

#: The lake's hidden folder at its root: locks and temporary files, never inside a data folder (SPEC §1).
HIDDEN = ".ticklake"


def _relative(root: Path, target: Path) -> Path:
    try:
        return target.relative_to(root)
    except ValueError:
        raise LakeIOError(f"{target}: not inside the lake at {root}") from None


def corrupt_file(path: Path, err: BaseException) -> CorruptFileError:
    """The error for any reader failure on ``path``: one message that names the file.

    Example:
        >>> raise corrupt_file(Path("x.parquet"), ValueError("bad footer")) from None
    """
    return CorruptFileError(f"{path}: corrupt or unreadable Parquet file: {err}")


class LocalStorage:
    """Lake files on a local filesystem (single host: advisory locks do not work over NFS). Everything that touches
    a file happens in Rust, in one call per file (:meth:`upsert`): the lock, the read of the stored file, the merge,
    the atomic publish and the removal of stale temporaries.

    Args:
        root: the lake's root; locks and temporary files live under ``<root>/.ticklake/``.
        lock_timeout: seconds to wait for another writer's lock before raising :class:`LakeLockedError`.
        threads: threads that encode row groups in parallel when writing.
    """

    def __init__(self, root: Path, *, lock_timeout: float = 60.0, threads: int | None = None) -> None:
        self.root = Path(root)
        self.lock_timeout = lock_timeout
        self.threads = threads if threads is not None else _core.default_threads()

    def upsert(
        self,
        path: Path,
        *,
        kind: str,
        symbol: str,
        period: str,
        incoming: pa.Table,
        replace: list[tuple[int, int]],
        level: int,
        metadata: dict[str, str],
        keep_provenance: bool = False,
    ) -> dict[str, Any]:
        """Merges ``incoming`` into the file at ``path`` and publishes it atomically, under the file's lock (stored
        rows in the ``replace`` windows dropped first; a stored file in an older form is rewritten even when no row
        changes; one left empty is deleted). ``keep_provenance`` keeps the stored file's own ``ticklake.*`` footer
        keys (``ticklake migrate``).

        Returns:
            ``{"status": "written" | "unchanged" | "removed", "rows": ..., "bytes": ..., "row_groups": ...}``.

        Raises:
            CorruptFileError: the stored file is damaged or breaks the lake's rules (it is left as it is).
            LakeLockedError: another writer held the file's lock longer than ``lock_timeout``.
            LakeIOError: the filesystem failed (the message names the file); nothing was changed.

        Example:
            >>> storage.upsert(path, kind="bars/1m", symbol="AAPL", period="2024-01", incoming=table, replace=[],
            ...                level=3, metadata={})["status"]
            'written'
        """
        return _core.lake_upsert(
            str(self.root),
            _relative(self.root, path).as_posix(),
            kind,
            symbol,
            period,
            incoming,
            replace,
            level,
            metadata,
            self.threads,
            self.lock_timeout,
            keep_provenance,
        )
