"""The storage behind the lake: read a file, hold a per-file lock, publish a file atomically (SPEC §4).

:class:`LocalStorage` is a local filesystem on one host. The write path is read -> merge (Rust) -> one atomic
publish, so an object store (a conditional PUT instead of rename + lock) can implement the same three operations.

Example:
    >>> storage = LocalStorage()
    >>> with storage.lock(Path("lake/bars/1m/AAPL.2024-01.parquet")):
    ...     table = storage.read(Path("lake/bars/1m/AAPL.2024-01.parquet"))
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ticklake import _core
from ticklake.exceptions import CorruptFileError, LakeFileNotFoundError, LakeIOError, LakeLockedError


def lock_path(target: Path) -> Path:
    """The lock file of a lake file: hidden, beside it (``.AAPL.2024-01.parquet.lock``).

    Example:
        >>> lock_path(Path("lake/quotes/AAPL.2024-01.parquet")).name
        '.AAPL.2024-01.parquet.lock'
    """
    return target.with_name(f".{target.name}.lock")


def corrupt_file(path: Path, err: BaseException) -> CorruptFileError:
    """The error for any reader failure on ``path``: one message that names the file.

    Example:
        >>> raise corrupt_file(Path("x.parquet"), ValueError("bad footer")) from None
    """
    return CorruptFileError(f"{path}: corrupt or unreadable Parquet file: {err}")


def read_parquet(path: Path, *, columns: list[str] | None = None) -> pa.Table:
    """Reads a whole Parquet file, turning every reader failure into an error that names the file.

    Example:
        >>> read_parquet(Path("lake/bars/1d/AAPL.2024.parquet")).num_rows
        252

    Raises:
        LakeFileNotFoundError: the file does not exist.
        CorruptFileError: the file is damaged, truncated or not Parquet.
    """
    try:
        return pq.read_table(path, columns=columns)
    except FileNotFoundError as err:
        raise LakeFileNotFoundError(f"{path}: no such file") from err
    except (pa.ArrowException, OSError, ValueError) as err:
        raise corrupt_file(path, err) from err


class LocalStorage:
    """Lake files on a local filesystem (single host: advisory locks do not work over NFS).

    Args:
        lock_timeout: seconds to wait for another writer's lock before raising :class:`LakeLockedError`.
        threads: threads that encode row groups in parallel when writing.
    """

    def __init__(self, *, lock_timeout: float = 60.0, threads: int | None = None) -> None:
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
        a killed writer of this file left behind.

        Raises:
            LakeLockedError: another process held the lock for longer than ``lock_timeout``.
        """
        lock = lock_path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
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

    @staticmethod
    def _remove_stale_temps(path: Path) -> None:
        # Under the lock no live writer of this file exists, so any temporary of it is a dead writer's.
        for temp in path.parent.glob(f".{path.name}.*.tmp"):
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
        """Merges ``incoming`` into ``existing`` in Rust and publishes the result atomically (temporary file,
        fsync, footer check, rename, fsync of the directory). Call it while holding :meth:`lock`.
        """
        return _core.lake_publish(
            str(path), kind, symbol, period, existing, incoming, replace, level, metadata, self.threads
        )
