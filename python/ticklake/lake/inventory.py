"""What is in a lake (from Parquet footers only) and whether every file keeps the lake's rules (SPEC §1-2).

Example:
    >>> from ticklake import Lake
    >>> Lake("data/parquet").inventory().groupby("kind")["rows"].sum()
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

from ticklake import _core
from ticklake.exceptions import CorruptFileError, TicklakeError, corrupt_file
from ticklake.lake import kinds, layout
from ticklake.lake.reader import FileMetaData, footer, read_file
from ticklake.lake.storage import HIDDEN, LocalStorage, ObjectStorage, Stored

STALE_TEMP_SECONDS = 3600.0
REQUIRED_METADATA = ("ticklake.version", "ticklake.schema_version", "ticklake.kind", "ticklake.size_unit")


@dataclass(frozen=True)
class Problem:
    """One problem found by :meth:`ticklake.Lake.validate`: the file and what is wrong with it."""

    path: Path
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


def _footer(path: Path, filesystem: object = None) -> FileMetaData:
    try:
        return footer(path, filesystem)
    except (pa.ArrowException, OSError, ValueError) as err:
        raise corrupt_file(path, err) from err


def _listed_footer(storage: LocalStorage | ObjectStorage, item: Stored) -> FileMetaData | None:
    """The footer of a listed file (cached by its version), None when a writer removed it since the listing."""
    try:
        return storage.footer(item)
    except (pa.ArrowException, OSError, ValueError) as err:
        if isinstance(err, FileNotFoundError) or not storage.exists(item.path):
            return None  # removed by a writer (``replace`` emptied it) since the listing
        raise corrupt_file(item.path, err) from err


def inventory(storage: LocalStorage | ObjectStorage) -> pd.DataFrame:
    """See :meth:`ticklake.Lake.inventory`: one listing per folder, then each file's footer, read once per version
    of the file (a second inventory of an unchanged lake reads no footer).

    Example:
        >>> inventory(Lake("data/parquet")).columns.tolist()[:4]
        ['kind', 'symbol', 'period', 'rows']
    """
    rows = []
    for kind in storage.folders():
        for item in storage.stored(kind):
            path, size = item.path, item.size
            name = layout.parse_name(path.name)
            if name is None:  # stored() only returns parseable names
                continue
            meta = _listed_footer(storage, item)
            if meta is None:
                continue
            first = last = None
            arrow = meta.schema.to_arrow_schema()
            ts_index = arrow.get_field_index("timestamp")
            if meta.num_row_groups and ts_index >= 0:
                ts_type = arrow.field(ts_index).type
                # Statistics are in the file's unit: us for bars and quotes (schema version 2), ns for trades and
                # for files of version 1.
                scale = {"s": 10**9, "ms": 10**6, "us": 10**3}.get(getattr(ts_type, "unit", "ns"), 1)
                head = meta.row_group(0).column(ts_index).statistics
                tail = meta.row_group(meta.num_row_groups - 1).column(ts_index).statistics
                if head is not None and head.has_min_max:
                    first = int(head.min_raw) * scale  # type: ignore[arg-type]
                if tail is not None and tail.has_min_max:
                    last = int(tail.max_raw) * scale  # type: ignore[arg-type]
            rows.append(
                {
                    "kind": kind,
                    "symbol": name.symbol,
                    "period": name.period,
                    "rows": meta.num_rows,
                    "first": first,
                    "last": last,
                    "bytes": size,
                    "path": str(path),
                }
            )
    frame = pd.DataFrame(rows, columns=["kind", "symbol", "period", "rows", "first", "last", "bytes", "path"])
    for column in ("first", "last"):
        frame[column] = pd.to_datetime(frame[column].astype("Int64"), unit="ns", utc=True)
    return frame


def _check_file(kind: str, path: Path, filesystem: object = None) -> list[str]:
    name = layout.parse_name(path.name)
    if name is None:
        return [f"not a lake file name (expected SYMBOL.{'YYYY' if kinds.of(kind).yearly else 'YYYY-MM'}.parquet)"]
    problems = []
    try:
        layout.check_symbol(name.symbol)
        layout.period_bounds(kind, name.period)
    except TicklakeError as err:
        return [str(err)]
    try:
        meta = _footer(path, filesystem)
        table = read_file(path, filesystem=filesystem)
    except (CorruptFileError, pa.ArrowException, OSError, ValueError) as err:
        return [f"unreadable: {err}"]
    expected = _core.lake_schema(kind)
    kv = {k.decode(): v.decode() for k, v in (meta.metadata or {}).items()}
    try:
        # The reader's and the writer's one rule: conformable files are read and merged into, the rest refused.
        _core.lake_conform(str(path), table, kind)
    except CorruptFileError as err:
        return [f"cannot be read or written (neither the reader nor the writer takes it): {err}"]
    if not table.schema.equals(expected):
        found = table.schema.to_string(show_schema_metadata=False, show_field_metadata=False)
        if _version_one(table.schema, expected):
            problems.append(
                "schema version 1 (timestamps in ns): readable and writable; the next write of the file or "
                "`ticklake migrate` rewrites it as version " + lake_schema_version()
            )
        else:
            problems.append(
                "not the SPEC §2 schema, but conformable (read and written by the lake's one rule; the next write "
                f"or `ticklake migrate` rewrites it): found {found}"
            )
    missing = [k for k in REQUIRED_METADATA if k not in kv]
    if missing:
        problems.append(f"footer metadata lacks {', '.join(missing)}")
    elif kv["ticklake.kind"] != kind:
        problems.append(f"footer says kind {kv['ticklake.kind']!r}, directory says {kind!r}")
    try:
        _core.check_file_rows(table, kind, name.symbol, name.period)
    except TicklakeError as err:
        problems.append(str(err))
    return problems


def lake_schema_version() -> str:
    """The schema version this ticklake writes (the footer's ``ticklake.schema_version``).

    Example:
        >>> lake_schema_version()
        '2'
    """
    from ticklake.lake.storage import SCHEMA_VERSION

    return SCHEMA_VERSION


def _version_one(found: pa.Schema, expected: pa.Schema) -> bool:
    """The stored schema of version 1: the same columns, timestamps in ns."""
    ns = expected.set(
        expected.get_field_index("timestamp"), expected.field("timestamp").with_type(pa.timestamp("ns", tz="UTC"))
    )
    return found.equals(ns)


def validate(storage: LocalStorage | ObjectStorage) -> list[Problem]:
    """See :meth:`ticklake.Lake.validate`.

    Example:
        >>> validate(Lake("data/parquet"))
        []
    """
    if isinstance(storage, ObjectStorage):
        return _validate_objects(storage)
    problems: list[Problem] = []
    now = time.time()
    for kind in storage.folders():
        directory = Path(storage.root, kind)
        if directory.is_dir():
            for path in sorted(directory.iterdir()):
                if path.name.startswith(".") and path.name.endswith((".parquet.lock", ".tmp")):
                    problems.append(
                        Problem(
                            path,
                            "stray: a lock or temporary file of ticklake 0.1 in a data folder (readers of "
                            "the folder trip over it); the next write of its file or `ticklake migrate` removes it",
                        )
                    )
                    continue
                if not path.name.endswith(".parquet") or not path.is_file() or path.is_symlink():
                    problems.append(
                        Problem(path, "stray: not a lake file (only SYMBOL.PERIOD.parquet files belong here)")
                    )
                    continue
                problems.extend(Problem(path, p) for p in _check_steady(kind, path))
        temps = Path(storage.root, HIDDEN, "tmp", kind)
        if temps.is_dir():
            for path in sorted(temps.glob("*.tmp")):
                # A writer's temporary may vanish while we look: only a lasting, old one is a problem.
                with contextlib.suppress(FileNotFoundError):
                    if now - path.stat().st_mtime > STALE_TEMP_SECONDS:
                        problems.append(
                            Problem(path, "stale temporary file (a killed writer's); the next write removes it")
                        )
    return problems


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _check_steady(kind: str, path: Path, attempts: int = 3) -> list[str]:
    """:func:`_check_file` on a file that a writer may replace or remove meanwhile: a file is only reported when the
    same version of it fails twice; a removed one is no problem."""
    problems: list[str] = []
    for _ in range(attempts):
        before = _identity(path)
        if before is None:
            return []
        problems = _check_file(kind, path)
        if not problems or _identity(path) == before:
            return problems
    return problems


def _validate_objects(storage: ObjectStorage) -> list[Problem]:
    """:func:`validate` on object storage: one listing per folder; anything there that is not a lake file (nested
    objects included) is a stray; every lake object is read whole and checked. There are no locks or temporaries
    (a write is one conditional PUT). An object that fails is checked once more, and reported only when it still
    fails (a writer may have replaced it between the two reads of the first check) and is still there."""
    problems: list[Problem] = []
    for kind in storage.folders():
        folder = Path(storage.root, kind)
        for item in storage.listing(kind):
            path = item.path
            if path.parent != folder or not path.name.endswith(".parquet"):
                problems.append(Problem(path, "stray: not a lake file (only SYMBOL.PERIOD.parquet files belong here)"))
                continue
            found = _check_file(kind, path, storage.filesystem)
            if found:
                found = _check_file(kind, path, storage.filesystem)
            if found and storage.exists(path):
                problems.extend(Problem(path, p) for p in found)
    return problems
