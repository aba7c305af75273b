"""The storage behind the lake: read a file, hold a per-file lock, publish a file atomically (SPEC §4).

:class:`LocalStorage` is a local filesystem on one host. The write path is read -> merge (Rust) -> one atomic
publish, so an object store (a conditional PUT instead of rename + lock) can implement the same three operations.
Locks and temporary files live under the root's hidden ``.ticklake/`` folder, so the data folders hold data files
only and any reader can be pointed at a folder or a ``*`` glob (SPEC §1).

Example:
    >>> storage = LocalStorage(Path("lake"))
    >>> with storage.lock(Path("lake/bars/1m/AAPL.2024-01.parquet")):
    ...     table = storage.read(Path("lake/bars/1m/AAPL.2024-01.parquet"))
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ticklake import _core
from ticklake.exceptions import CorruptFileError, LakeFileNotFoundError, LakeIOError, LakeLockedError

#: The lake's hidden folder at its root: locks and temporary files, never inside a data folder (SPEC §1).
HIDDEN = ".ticklake"


def _relative(root: Path, target: Path) -> Path:
    try:
        return target.relative_to(root)
    except ValueError:
        raise LakeIOError(f"{target}: not inside the lake at {root}") from None


def lock_path(root: Path, target: Path) -> Path:
    """The lock file of a lake file: ``<root>/.ticklake/locks/<kind>/<NAME>.lock``, where no reader of the data
    folders looks.

    Example:
        >>> lock_path(Path("lake"), Path("lake/quotes/AAPL.2024-01.parquet")).as_posix()
        'lake/.ticklake/locks/quotes/AAPL.2024-01.parquet.lock'
    """
    rel = _relative(root, target)
    return root / HIDDEN / "locks" / rel.parent / f"{rel.name}.lock"


def temp_dir(root: Path, target: Path) -> Path:
    """Where the temporary files of a lake file are written: ``<root>/.ticklake/tmp/<kind>/``, on the lake's
    filesystem so that the final rename is atomic. Temporary names end in ``.tmp``, never ``.parquet``.

    Example:
        >>> temp_dir(Path("lake"), Path("lake/bars/1m/AAPL.2024-01.parquet")).as_posix()
        'lake/.ticklake/tmp/bars/1m'
    """
    return root / HIDDEN / "tmp" / _relative(root, target).parent


def legacy_files(target: Path) -> list[Path]:
    """What ticklake 0.1 left beside a lake file in its data folder: the lock ``.NAME.lock`` and temporaries
    ``.NAME.<id>.tmp``. The next write of the file (under its lock) removes them.

    Example:
        >>> legacy_files(Path("lake/quotes/AAPL.2024-01.parquet"))
        []
    """
    beside = [target.with_name(f".{target.name}.lock"), *sorted(target.parent.glob(f".{target.name}.*.tmp"))]
    return [p for p in beside if p.is_file() or p.is_symlink()]


def corrupt_file(path: Path, err: BaseException) -> CorruptFileError:
    """The error for any reader failure on ``path``: one message that names the file.

    Example:
        >>> raise corrupt_file(Path("x.parquet"), ValueError("bad footer")) from None
    """
    return CorruptFileError(f"{path}: corrupt or unreadable Parquet file: {err}")


def read_parquet(path: Path, *, columns: list[str] | None = None) -> pa.Table:
    """Reads a whole Parquet file (page checksums verified), turning every reader failure into an error that names
    the file.

    Example:
        >>> read_parquet(Path("lake/bars/1d/AAPL.2024.parquet")).num_rows
        252

    Raises:
        LakeFileNotFoundError: the file does not exist.
        CorruptFileError: the file is damaged, truncated or not Parquet.
    """
    try:
        file = pq.ParquetFile(path, page_checksum_verification=True)
        table = file.read(columns=columns)
        # The footer's key-value metadata (schema version, provenance) on the table's schema, where the merge
        # looks for it; pyarrow keeps only the embedded Arrow schema's own metadata.
        footer = {k: v for k, v in (file.metadata.metadata or {}).items() if k != b"ARROW:schema"}
        return table.replace_schema_metadata({**(table.schema.metadata or {}), **footer})
    except FileNotFoundError as err:
        raise LakeFileNotFoundError(f"{path}: no such file") from err
    except (pa.ArrowException, OSError, ValueError) as err:
        raise corrupt_file(path, err) from err


class LocalStorage:
    """Lake files on a local filesystem (single host: advisory locks do not work over NFS).

    Args:
        root: the lake's root; locks and temporary files live under ``<root>/.ticklake/``.
        lock_timeout: seconds to wait for another writer's lock before raising :class:`LakeLockedError`.
        threads: threads that encode row groups in parallel when writing.
    """

    def __init__(self, root: Path, *, lock_timeout: float = 60.0, threads: int | None = None) -> None:
        self.root = Path(root)
        self.lock_timeout = lock_timeout
        self.threads = threads if threads is not None else min(os.cpu_count() or 1, 8)

    def read(self, path: Path) -> pa.Table | None:
        """The stored rows of ``path``, or None when the file does not exist.

        Raises:
            CorruptFileError: the file is damaged.
        """
        if not path.exists():
            return None
        return read_parquet(path)

    @contextlib.contextmanager
    def lock(self, path: Path) -> Iterator[None]:
        """Holds the exclusive lock of ``path`` (waiting up to ``lock_timeout``); removes the stale temporary files
        a killed writer of this file left behind, and the lock and temporaries ticklake 0.1 kept beside it.

        The lock file is opened with ``O_NOFOLLOW``: a lock path that is a symbolic link is refused, never followed.

        Raises:
            LakeLockedError: another process held the lock for longer than ``lock_timeout``.
            LakeIOError: the lock file cannot be opened (or is a symbolic link).
        """
        lock = lock_path(self.root, path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            lock.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as err:
            if lock.is_symlink():
                raise LakeIOError(f"{lock}: the lock file is a symbolic link; refusing to follow it") from err
            raise LakeIOError(f"{lock}: cannot open lock file: {err}") from err
        try:
            deadline = time.monotonic() + self.lock_timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                        raise LakeLockedError(
                            f"{path}: locked by another writer (pid {holder}) for over {self.lock_timeout:g} s"
                        ) from None
                    time.sleep(0.005)
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            self._remove_stale_temps(path)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def _remove_stale_temps(self, path: Path) -> None:
        # Under the lock no live writer of this file exists, so any temporary of it is a dead writer's. The old
        # layout's lock beside the file goes too: writers of this version never take it.
        stale = sorted(temp_dir(self.root, path).glob(f"{glob.escape(path.name)}.*.tmp")) + legacy_files(path)
        for temp in stale:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()

    def publish(
        self,
        path: Path,
        *,
        kind: str,
        symbol: str,
        period: str,
        existing: pa.Table | None,
        incoming: pa.Table,
        replace: list[tuple[int, int]],
        level: int,
        metadata: dict[str, str],
    ) -> dict[str, Any]:
        """Merges ``incoming`` into ``existing`` in Rust and publishes the result atomically (temporary file in
        ``<root>/.ticklake/tmp/<kind>/``, fsync, footer check, rename, fsync of both directories). Call it while
        holding :meth:`lock`. A stored file in an older form (schema version, types) is rewritten even when no row
        changes.

        Example:
            >>> with storage.lock(path):
            ...     storage.publish(path, kind="bars/1m", symbol="AAPL", period="2024-01", existing=None,
            ...                     incoming=table, replace=[], level=3, metadata={})["status"]
            'written'
        """
        return _core.lake_publish(
            str(path),
            str(temp_dir(self.root, path)),
            kind,
            symbol,
            period,
            existing,
            incoming,
            replace,
            level,
            metadata,
            self.threads,
        )
