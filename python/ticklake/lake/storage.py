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

import os
import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa

from ticklake import _core
from ticklake.exceptions import InvalidInputError, LakeIOError
from ticklake.lake import kinds, layout
from ticklake.lake.reader import FileMetaData, FooterCache, footer

#: The lake's hidden folder at its root: locks and temporary files, never inside a data folder (SPEC §1).
HIDDEN = ".ticklake"
#: The footer's ``ticklake.schema_version`` (SPEC §2). 1: every timestamp in ns; 2: bars and quotes in us.
SCHEMA_VERSION = "2"


def file_metadata(kind: str, symbol: str, period: str, extra: Mapping[str, str] | None) -> dict[str, str]:
    """The ``ticklake.*`` footer keys of one lake file (SPEC §2), plus the caller's ``extra`` keys.

    Example:
        >>> file_metadata("bars/1d", "AAPL", "2024", None)["ticklake.period_rule"]
        'year of the trading-date label'

    Raises:
        InvalidInputError: a key or value of ``extra`` is not a string.
    """
    meta = {
        "ticklake.version": _core.__version__,
        "ticklake.schema_version": SCHEMA_VERSION,
        "ticklake.kind": kind,
        "ticklake.symbol": symbol,
        "ticklake.period": period,
        "ticklake.period_rule": (
            "year of the trading-date label" if kinds.of(kind).yearly else "America/New_York calendar month"
        ),
        "ticklake.size_unit": "shares",
        "ticklake.source": "user",
    }
    for key, value in (extra or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidInputError("metadata keys and values must be strings")
        meta[key if key.startswith("ticklake.") else f"ticklake.{key}"] = value
    return meta


class Stored(NamedTuple):
    """One file or object in a data folder: where, its size, and its version (the ETag on object storage; inode,
    size and mtime on disk). Two listings with the same version saw the same bytes."""

    path: Path
    size: int
    version: str


class FooterVersions:
    """Plain (unchecked) footers of listed files, by path and version, for the lake's own tools (inventory,
    coverage): a second inventory of an unchanged lake reads no footer. Bounded (least recently used dropped) and
    thread-safe; each storage owns one.

    Example:
        >>> cache = FooterVersions(kept=16)
        >>> cache.reads
        0
    """

    def __init__(self, kept: int = 100_000) -> None:
        self.kept = kept
        #: Footers read from the store (cache misses), for tests and reports.
        self.reads = 0
        self._entries: OrderedDict[tuple[str, str], FileMetaData] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, item: Stored, filesystem: Any) -> FileMetaData:
        """The footer of ``item``: cached for its version, else read (through ``filesystem``) and cached.

        Raises:
            pyarrow.ArrowException, OSError: the file is missing or not Parquet (callers name the file).
        """
        if not item.version:  # a store that sends no ETag: nothing tells two versions apart
            return footer(item.path, filesystem, item.size)
        key = (item.path.as_posix(), item.version)
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
                return hit
        meta = footer(item.path, filesystem, item.size)
        with self._lock:
            self.reads += 1
            self._entries[key] = meta
            while len(self._entries) > self.kept:
                self._entries.popitem(last=False)
        return meta


def _relative(root: Path, target: Path) -> Path:
    try:
        return target.relative_to(root)
    except ValueError:
        raise LakeIOError(f"{target}: not inside the lake at {root}") from None


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
        #: Checked footers of recently read files (see :class:`ticklake.lake.reader.FooterCache`).
        self.footers: FooterCache | None = FooterCache()
        #: The filesystem the reader opens files through (None: the local one).
        self.filesystem: Any = None
        #: Plain footers of listed files (inventory, coverage), by version.
        self.versions = FooterVersions()

    def exists(self, path: Path) -> bool:
        """True when a lake file is stored at ``path``.

        Example:
            >>> storage.exists(Path("lake/bars/1d/AAPL.2024.parquet"))
            True
        """
        return path.exists()

    def __getstate__(self) -> dict[str, Any]:
        # Pickled for another process (a Dask worker): the footer caches, with their locks, stay behind.
        state = dict(self.__dict__)
        del state["footers"], state["versions"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.footers = FooterCache()
        self.versions = FooterVersions()

    def folders(self) -> tuple[str, ...]:
        """The kind folders to walk: the lake's table of kinds, then any ``bars/<interval>`` folder present.

        Example:
            >>> storage.folders()[-1]
            'bars/5s'
        """
        bars = Path(self.root, "bars")
        return kinds.with_intervals(p.name for p in bars.iterdir() if p.is_dir()) if bars.is_dir() else kinds.FOLDERS

    def stored(self, kind: str) -> list[Stored]:
        """The lake files of a kind with their sizes and versions (files removed meanwhile left out), sorted.

        Example:
            >>> [s.path.name for s in storage.stored("bars/1d")]
            ['AAPL.2024.parquet']
        """
        found = []
        for path in self.files(kind):
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue  # removed by a writer (``replace`` emptied it) since the listing
            found.append(Stored(path, st.st_size, f"{st.st_ino}-{st.st_size}-{st.st_mtime_ns}"))
        return found

    def footer(self, item: Stored) -> FileMetaData:
        """The plain footer of a listed file, read once per version (see :class:`FooterVersions`).

        Raises:
            pyarrow.ArrowException, OSError: the file is missing or not Parquet (callers name the file).

        Example:
            >>> storage.footer(storage.stored("bars/1d")[0]).num_rows
            252
        """
        return self.versions.get(item, self.filesystem)

    def files(self, kind: str, symbol: str | None = None) -> list[Path]:
        """The lake files of a kind (any of its names), sorted; of one symbol when ``symbol`` is given.

        Example:
            >>> [p.name for p in storage.files("bars/1m", "AAPL")]
            ['AAPL.2024-01.parquet', 'AAPL.2024-02.parquet']
        """
        folder = kinds.of(kind).folder
        pattern = f"{layout.check_symbol(symbol)}.*.parquet" if symbol else "*.parquet"
        found = []
        for path in sorted(Path(self.root, folder).glob(pattern)):
            name = layout.parse_name(path.name)
            if name is not None and (symbol is None or name.symbol == symbol):
                found.append(path)
        return found

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


#: ``storage_options`` keys (object_store's AWS names, long or short) -> pyarrow ``S3FileSystem`` arguments.
_PYARROW_KEYS = {
    "aws_endpoint": "endpoint_override",
    "aws_endpoint_url": "endpoint_override",
    "endpoint": "endpoint_override",
    "endpoint_url": "endpoint_override",
    "aws_region": "region",
    "region": "region",
    "aws_access_key_id": "access_key",
    "access_key_id": "access_key",
    "aws_secret_access_key": "secret_key",
    "secret_access_key": "secret_key",
    "aws_session_token": "session_token",
    "session_token": "session_token",
    "token": "session_token",
}


class ObjectStorage:
    """Lake files in a bucket of an S3-compatible store (``s3://bucket/prefix``), same keys as the local layout.

    Writes go through Rust (``src/store/object.rs``): GET with the ETag, merge, one conditional PUT, retried from a
    fresh read when another writer won; the store is probed once, before the first write, and refused when it
    ignores conditional requests. Reads use pyarrow's S3 filesystem: the footer and the row groups a read needs,
    by range requests. A listing (one per folder, through Rust) gives each object's size and ETag: the plain
    footers the lake's tools read (inventory, coverage) are cached by ETag, so a second inventory reads none.
    Checked reads (:meth:`ticklake.Lake.scan`) open each object fresh: pyarrow cannot pin a read to an ETag.

    Pickled (for Dask workers), a storage carries its ``storage_options``, credentials included, in the pickle
    sent over the wire, but neither the filesystem nor any cache; nothing of it is written to disk.

    Args:
        url: ``s3://bucket`` or ``s3://bucket/prefix``.
        storage_options: object_store's AWS keys (``endpoint``, ``region``, ``access_key_id``,
            ``secret_access_key``, ``allow_http``, ...); what is not given comes from the ``AWS_*`` environment.
        threads: threads that encode row groups in parallel when writing.

    Example:
        >>> storage = ObjectStorage("s3://research/lake", storage_options={"endpoint": "http://127.0.0.1:8333",
        ...                         "allow_http": "true", "region": "us-east-1"})
    """

    def __init__(self, url: str, *, storage_options: Mapping[str, str] | None = None, threads: int | None = None):
        if not url.startswith("s3://") or len(url) <= len("s3://"):
            raise InvalidInputError(f"{url!r} is not an s3://bucket/prefix URL")
        self.url = url.rstrip("/")
        bucket_and_prefix = self.url[len("s3://") :].strip("/")
        self.options = {str(k): str(v) for k, v in (storage_options or {}).items()}
        self.threads = threads if threads is not None else _core.default_threads()
        #: The path the reader opens through :attr:`filesystem`: ``bucket/prefix``.
        self.root = Path(bucket_and_prefix)
        self.footers: FooterCache | None = None
        self.filesystem = _s3_filesystem(self.options)
        #: Plain footers of listed objects (inventory, coverage), by ETag.
        self.versions = FooterVersions()
        self._probed = False

    def __repr__(self) -> str:
        return f"ObjectStorage({self.url!r})"  # never the options: they hold credentials

    def __getstate__(self) -> dict[str, Any]:
        # For another process (a Dask worker): the options travel (the worker needs the credentials), the
        # filesystem and the cache are rebuilt there.
        state = dict(self.__dict__)
        del state["filesystem"], state["versions"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.filesystem = _s3_filesystem(self.options)
        self.versions = FooterVersions()

    def folders(self) -> tuple[str, ...]:
        """The kind folders to walk: the lake's table of kinds, then any ``bars/<interval>`` folder present (one
        listing of ``bars/``).

        Example:
            >>> storage.folders()[-1]
            'bars/5s'
        """
        keys = (key for key, _, _ in _core.object_list(self.url, "bars", self.options))
        return kinds.with_intervals(parts[1] for parts in (k.split("/") for k in keys) if len(parts) > 2)

    def listing(self, kind: str) -> list[Stored]:
        """Every object under a kind's folder (lake files and anything else, nested ones too), sorted: one listing.

        Example:
            >>> [s.path.name for s in storage.listing("bars/1m")]
            ['AAPL.2024-01.parquet', 'notes.txt']
        """
        folder = kinds.of(kind).folder
        return [
            Stored(Path(self.root, key), size, etag)
            for key, size, etag in _core.object_list(self.url, folder, self.options)
        ]

    def stored(self, kind: str) -> list[Stored]:
        """The lake files of a kind (``SYMBOL.PERIOD.parquet`` directly in its folder) with sizes and ETags, sorted.

        Example:
            >>> [s.path.name for s in storage.stored("bars/1d")]
            ['AAPL.2024.parquet']
        """
        folder = Path(self.root, kinds.of(kind).folder)
        return [s for s in self.listing(kind) if s.path.parent == folder and layout.parse_name(s.path.name)]

    def files(self, kind: str, symbol: str | None = None) -> list[Path]:
        """The lake files of a kind (one listing of its folder), sorted; of one symbol when ``symbol`` is given.

        Example:
            >>> [p.name for p in storage.files("bars/1m", "AAPL")]
            ['AAPL.2024-01.parquet']
        """
        if symbol is not None:
            layout.check_symbol(symbol)
        found = []
        for item in self.stored(kind):
            name = layout.parse_name(item.path.name)
            if name is not None and (symbol is None or name.symbol == symbol):
                found.append(item.path)
        return found

    def footer(self, item: Stored) -> FileMetaData:
        """The plain footer of a listed object, read once per ETag (see :class:`FooterVersions`).

        Raises:
            pyarrow.ArrowException, OSError: the object is missing or not Parquet (callers name it).

        Example:
            >>> storage.footer(storage.stored("bars/1d")[0]).num_rows
            252
        """
        return self.versions.get(item, self.filesystem)

    def exists(self, path: Path) -> bool:
        """True when an object is stored at ``path`` (``bucket/prefix/<key>``).

        Example:
            >>> storage.exists(Path("research/lake/bars/1d/AAPL.2024.parquet"))
            True
        """
        import pyarrow.fs as pafs

        return bool(self.filesystem.get_file_info(path.as_posix()).type == pafs.FileType.File)

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
        """As :meth:`LocalStorage.upsert`, by conditional PUT (no lock).

        Raises:
            InvalidInputError: the store ignores conditional writes (found by the probe before the first write).
            LakeIOError: the store failed, or other writers kept winning (the message names the object).

        Example:
            >>> storage.upsert(Path("research/lake/bars/1m/AAPL.2024-01.parquet"), kind="bars/1m", symbol="AAPL",
            ...                period="2024-01", incoming=table, replace=[], level=3, metadata={})["status"]
            'written'
        """
        if not self._probed:
            _core.object_probe(self.url, self.options)
            self._probed = True
        return _core.lake_upsert(
            self.url,
            _relative(self.root, path).as_posix(),
            kind,
            symbol,
            period,
            incoming,
            replace,
            level,
            metadata,
            self.threads,
            0.0,
            keep_provenance,
            self.options,
        )


def _s3_filesystem(options: Mapping[str, str]) -> Any:
    """pyarrow's S3 filesystem for the same store and credentials (keys it does not know are Rust's only)."""
    import pyarrow.fs as pafs

    kwargs: dict[str, Any] = {}
    for key, value in options.items():
        target = _PYARROW_KEYS.get(key.lower())
        if target is not None:
            kwargs[target] = value
    allow_http = options.get("allow_http", options.get("aws_allow_http", "false")).lower() == "true"
    endpoint = kwargs.get("endpoint_override")
    if endpoint is not None and "://" not in endpoint:
        kwargs["scheme"] = "http" if allow_http else "https"
    return pafs.S3FileSystem(**kwargs)
