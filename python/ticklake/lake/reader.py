"""Reading one lake file safely: what the lake reader relies on is checked, cheaply, before rows are returned.

A lake file is trusted only as far as its footer shows it: the ``symbol`` statistics of every row group must say
the file's own symbol (min == max == the name's symbol, no nulls), the row groups' timestamp statistics must be in
order and inside the file's period, and the decoded timestamps of every row group read must be sorted and inside
its statistics. Every page's CRC32 is verified as it is read. Files ticklake did not write are taken by the
writer's one rule (``_core.lake_conform``: other string, integer, float and timestamp types converted) or refused
with the same error as the writer's, naming the file and the column. Earlier schema versions (nanosecond bars and
quotes) are read as the current stored schema.

Example:
    >>> from ticklake.lake.reader import read_range
    >>> read_range(Path("lake/bars/1m/AAPL.2024-01.parquet"), "bars/1m", "AAPL", ["timestamp", "close"],
    ...            None, None, "all").num_rows
    7800
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ticklake import _core
from ticklake.exceptions import CorruptFileError, InvalidInputError, corrupt_file
from ticklake.lake import layout
from ticklake.sessions import overlaps, range_slice, session_windows, window_indices

#: A Parquet footer, as :func:`footer` returns it.
FileMetaData = pq.FileMetaData

#: Nanoseconds per stored unit.
_NS_PER = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


@dataclass(frozen=True)
class FileInfo:
    """What the footer of one lake file says, checked once per version of the file.

    ``form`` is ``"stored"`` (the kind's stored types, or an earlier version's that differ only in the timestamp
    unit) or ``"foreign"`` (another writer's types: read through the writer's conform rule). ``spans`` are each
    row group's ``[first, last + 1)`` timestamps in UTC ns (None without statistics). ``symbols_checked`` is True
    when every row group's statistics prove the symbol column holds the file's symbol only.
    """

    form: str
    unit_ns: int
    spans: list[tuple[int, int] | None]
    symbols_checked: bool


def _fail(path: Path, reason: str) -> CorruptFileError:
    return CorruptFileError(f"{path}: not a sound lake file: {reason}")


def _same_types(stored: pa.Schema, expected: pa.Schema) -> bool:
    """Same columns in the same order with the same types, timestamps of any unit in UTC."""
    if stored.names != expected.names:
        return False
    for field in expected:
        found = stored.field(field.name).type
        if pa.types.is_timestamp(field.type):
            if not (pa.types.is_timestamp(found) and found.tz in ("UTC", "+00:00") and found.unit in ("us", "ns")):
                return False
        elif found != field.type:
            return False
    return True


def inspect(path: Path, file: pq.ParquetFile, kind: str, symbol: str, period: str | None) -> FileInfo:
    """Checks the footer of ``file`` (see the module docs) and describes it.

    Raises:
        CorruptFileError: the statistics show rows of another symbol, out of order or outside the period.

    Example:
        >>> inspect(path, pq.ParquetFile(path), "bars/1m", "AAPL", "2024-01").form
        'stored'
    """
    expected = _core.lake_schema(kind)
    stored = file.schema_arrow
    form = "stored" if _same_types(stored, expected) else "foreign"
    ts_index = stored.get_field_index("timestamp")
    ts_type = stored.field(ts_index).type if ts_index >= 0 else None
    unit_ns = _NS_PER.get(ts_type.unit, 1) if ts_type is not None and pa.types.is_timestamp(ts_type) else 1
    meta = file.metadata
    # Leaf column positions (lists have one leaf: the element).
    leaves = {meta.schema.column(i).path.split(".")[0]: i for i in range(meta.num_columns)}
    spans: list[tuple[int, int] | None] = []
    symbols_checked = "symbol" in leaves
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        if group.num_rows == 0:
            spans.append(None)
            continue
        stats = group.column(leaves["timestamp"]).statistics if "timestamp" in leaves else None
        if stats is not None and stats.has_min_max and isinstance(stats.min_raw, int):
            spans.append((int(stats.min_raw) * unit_ns, int(stats.max_raw) * unit_ns + 1))  # type: ignore[arg-type]
        else:
            spans.append(None)
        if symbols_checked:
            sym = group.column(leaves["symbol"]).statistics
            if sym is None or not sym.has_min_max or sym.null_count not in (0, None):
                symbols_checked = False
            elif sym.min != symbol or sym.max != symbol:
                raise _fail(
                    path,
                    f"column 'symbol' of row group {g} holds {sym.min!r}..{sym.max!r}, not only {symbol!r} "
                    "(the file name's symbol)",
                )
    strict = kind != "trades"
    previous: tuple[int, int] | None = None
    bounds = layout.period_bounds(kind, period) if period is not None else None
    for g, span in enumerate(spans):
        if span is None:
            continue
        if bounds is not None and (span[0] < bounds[0] or span[1] > bounds[1]):
            raise _fail(path, f"row group {g} has timestamps outside the file's period {period}")
        if previous is not None and (span[0] < previous[1] - 1 or (strict and span[0] == previous[1] - 1)):
            raise _fail(path, f"column 'timestamp': row group {g} starts before row group {g - 1} ends (unsorted)")
        previous = span
    return FileInfo(form, unit_ns, spans, symbols_checked)


# A cached footer: the file's (inode, size, mtime), its metadata, and what inspect() found.
_FooterEntry = tuple[tuple[int, int, int], pq.FileMetaData, FileInfo]


class FooterCache:
    """Parsed and checked footers of recently read lake files, by path, reused while a file is unchanged (lake files
    are replaced by rename, never rewritten in place, so a changed file has another inode). Thread-safe; each
    :class:`~ticklake.lake.storage.LocalStorage` owns one.

    Example:
        >>> cache = FooterCache(kept=16)
        >>> len(cache)
        0
    """

    def __init__(self, kept: int = 256) -> None:
        self.kept = kept
        self._entries: OrderedDict[str, _FooterEntry] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, name: str, key: tuple[int, int, int]) -> _FooterEntry | None:
        """The entry of ``name`` when it was cached for the same ``key`` (inode, size, mtime), else None."""
        with self._lock:
            hit = self._entries.get(name)
            if hit is None or hit[0] != key:
                return None
            self._entries.move_to_end(name)
            return hit

    def put(self, name: str, entry: _FooterEntry) -> None:
        """Caches ``entry`` for ``name``, dropping the least recently used beyond ``kept``."""
        with self._lock:
            self._entries[name] = entry
            self._entries.move_to_end(name)
            while len(self._entries) > self.kept:
                self._entries.popitem(last=False)


def _file_key(path: Path) -> tuple[int, int, int]:
    st = os.stat(path)
    return st.st_ino, st.st_size, st.st_mtime_ns


def open_file(
    path: Path, kind: str, symbol: str, footers: FooterCache | None = None, filesystem: Any = None
) -> tuple[pq.ParquetFile, FileInfo] | None:
    """Opens a lake file and checks its footer, reusing both while the file is unchanged (None: no such file).

    Lake files are replaced by rename, never rewritten in place, so a changed file has another inode. The file is
    stat'ed again after opening: one swapped in meanwhile is reopened and its own footer read, never another's.

    Raises:
        CorruptFileError: the file is damaged or its footer breaks the rules the reader relies on.

    Example:
        >>> open_file(Path("lake/bars/1d/AAPL.2024.parquet"), "bars/1d", "AAPL")[1].form
        'stored'
    """
    if filesystem is not None:
        # An object store: opened fresh every time (see ObjectStorage), through the store's filesystem.
        try:
            # No separate existence check: opening asks the store for the size once (a missing object raises).
            source = filesystem.open_input_file(path.as_posix())
            file = pq.ParquetFile(source, page_checksum_verification=True)
            parsed = layout.parse_name(path.name)
            return file, inspect(path, file, kind, symbol, parsed.period if parsed is not None else None)
        except CorruptFileError:
            raise
        except FileNotFoundError:
            return None
        except (pa.ArrowException, OSError, ValueError, KeyError, IndexError, TypeError) as err:
            raise corrupt_file(path, err) from err
    try:
        key = _file_key(path)
    except FileNotFoundError:
        return None
    name = str(path)
    parsed = layout.parse_name(path.name)
    period = parsed.period if parsed is not None else None
    try:
        hit = footers.get(name, key) if footers is not None else None
        if hit is not None:
            file = pq.ParquetFile(path, metadata=hit[1], page_checksum_verification=True)
            if _file_key(path) == key:
                return file, hit[2]
        # Every page's CRC32 is checked as it is read (files without checksums read as before).
        file = pq.ParquetFile(path, page_checksum_verification=True)
        info = inspect(path, file, kind, symbol, period)
        if footers is not None and _file_key(path) == key:
            footers.put(name, (key, file.metadata, info))
        return file, info
    except FileNotFoundError:
        return None
    except CorruptFileError:
        raise
    except (pa.ArrowException, OSError, ValueError, KeyError, IndexError, TypeError) as err:
        raise corrupt_file(path, err) from err


def _stored_table(
    path: Path, file: pq.ParquetFile, info: FileInfo, kind: str, symbol: str, groups: list[int], columns: list[str]
) -> pa.Table:
    """The rows of ``groups`` in the kind's stored schema, ``columns`` of it (timestamp always included)."""
    expected = _core.lake_schema(kind)
    if info.form == "foreign":
        table = _core.lake_conform(str(path), file.read_row_groups(groups), kind)
    else:
        wanted = [c for c in expected.names if c in columns or c == "timestamp"]
        if info.symbols_checked:
            wanted = [c for c in wanted if c != "symbol"]
        elif "symbol" not in wanted:
            wanted = ["symbol", *wanted]
        table = file.read_row_groups(groups, columns=wanted)
        ts = expected.field("timestamp").type
        index = table.schema.get_field_index("timestamp")
        if table.schema.field(index).type != ts:
            # An earlier version's nanoseconds: exact for whole-second labels, else the safe cast fails.
            table = table.set_column(index, expected.field("timestamp"), table.column(index).cast(ts))
    if "symbol" in table.column_names:
        names = table.column("symbol")
        differs: pa.BooleanArray = pc.not_equal(names, pa.scalar(symbol, names.type))
        wrong = np.asarray(pc.fill_null(differs, pa.scalar(True)))
        if wrong.any():
            first = int(np.flatnonzero(wrong)[0])
            raise _fail(path, f"column 'symbol', row {first}: {names[first].as_py()!r} in the file of {symbol}")
        if not info.symbols_checked and "symbol" not in columns:
            table = table.drop_columns(["symbol"])
    return table


def _timestamps_ns(path: Path, table: pa.Table, kind: str, spans: list[tuple[int, int] | None]) -> np.ndarray:
    """The rows' timestamps as int64 UTC ns, checked sorted (unique unless trades) and inside each group's span."""
    column = table.column("timestamp")
    unit = _NS_PER[column.type.unit]
    ts = column.cast(pa.int64()).to_numpy() * unit
    steps = np.diff(ts)
    bad = np.flatnonzero(steps <= 0 if kind != "trades" else steps < 0)
    if len(bad):
        raise _fail(path, f"column 'timestamp', row {int(bad[0]) + 1}: not sorted by time")
    known = [s for s in spans if s is not None]
    if len(ts) and len(known) == len(spans) and (ts[0] < known[0][0] or ts[-1] >= known[-1][1]):
        raise _fail(path, "column 'timestamp': values outside the footer's statistics")
    return ts


def read_range(
    path: Path,
    kind: str,
    symbol: str,
    columns: list[str],
    lo: int | None,
    hi: int | None,
    session: str,
    footers: FooterCache | None = None,
    filesystem: Any = None,
) -> pa.Table | None:
    """The checked rows of one file in ``[lo, hi)`` (UTC ns), ``columns`` of the kind's stored schema in its order
    (``timestamp`` always), within ``session``; only the row groups whose statistics overlap are read.

    Raises:
        CorruptFileError: the file is damaged, holds another symbol, is unsorted, or cannot be conformed.

    Example:
        >>> read_range(path, "bars/1d", "AAPL", ["timestamp", "close"], None, None, "all").num_rows
        252
    """
    opened = open_file(path, kind, symbol, footers, filesystem)
    if opened is None:
        return None
    file, info = opened
    groups = [i for i, span in enumerate(info.spans) if span is None or overlaps(span, lo, hi)]
    if not groups:
        return None
    try:
        table = _stored_table(path, file, info, kind, symbol, groups, columns)
        ts = _timestamps_ns(path, table, kind, [info.spans[g] for g in groups])
    except (CorruptFileError, InvalidInputError):
        raise
    except (pa.ArrowException, OSError, ValueError, KeyError, IndexError, TypeError) as err:
        raise corrupt_file(path, err) from err
    a, b = range_slice(ts, lo, hi)
    table = table.slice(a, b - a)
    if session != "all" and table.num_rows:
        ts = ts[a:b]
        rows = window_indices(ts, session_windows(session, int(ts[0]), int(ts[-1])))
        table = table.take(pa.array(rows, type=pa.int64()))
    return _select(table, kind, symbol, columns)


def _select(table: pa.Table, kind: str, symbol: str, columns: list[str]) -> pa.Table:
    """``columns`` of ``table`` with the stored schema's fields, the symbol column rebuilt when it was not read."""
    expected = _core.lake_schema(kind)
    if "symbol" in columns and "symbol" not in table.column_names:
        # Proven by the statistics: every row is the file's symbol, so the column need not be decoded.
        table = table.append_column("symbol", pa.repeat(pa.scalar(symbol, pa.string()), table.num_rows))
    fields = [expected.field(c) for c in columns]
    return pa.Table.from_arrays([table.column(c) for c in columns], schema=pa.schema(fields))


def iter_row_groups(
    path: Path,
    kind: str,
    symbol: str,
    lo: int | None,
    hi: int | None,
    footers: FooterCache | None = None,
    filesystem: Any = None,
) -> Iterator[pa.Table]:
    """The checked rows of one file in ``[lo, hi)``, one row group at a time (every column, stored schema).

    Example:
        >>> sum(t.num_rows for t in iter_row_groups(path, "bars/1s", "AAPL", None, None))
        881819
    """
    opened = open_file(path, kind, symbol, footers, filesystem)
    if opened is None:
        return
    file, info = opened
    names = list(_core.lake_schema(kind).names)
    for g, span in enumerate(info.spans):
        if span is not None and not overlaps(span, lo, hi):
            continue
        try:
            table = _stored_table(path, file, info, kind, symbol, [g], names)
            ts = _timestamps_ns(path, table, kind, [span])
        except (CorruptFileError, InvalidInputError):
            raise
        except (pa.ArrowException, OSError, ValueError, KeyError, IndexError, TypeError) as err:
            raise corrupt_file(path, err) from err
        a, b = range_slice(ts, lo, hi)
        if b > a:
            yield _select(table.slice(a, b - a), kind, symbol, names)


def first_unreadable(paths: Iterable[Path]) -> CorruptFileError | None:
    """The error for the first of ``paths`` whose footer does not read, or None when every one reads.

    Example:
        >>> first_unreadable(lake.files("bars/1m")) is None
        True
    """
    for path in paths:
        try:
            pq.read_metadata(path)
        except (pa.ArrowException, OSError, ValueError) as err:
            return corrupt_file(path, err)
    return None


# --------------------------------------------------------------------------- plain reads for the lake's own tools


def footer(path: Path, filesystem: Any = None) -> pq.FileMetaData:
    """The Parquet footer of any file (unchecked: for inventories, coverage and counts), through ``filesystem``
    when given (an object store's).

    Raises:
        pyarrow.ArrowException, OSError: the file is missing or not Parquet (callers name the file).

    Example:
        >>> footer(Path("lake/bars/1d/AAPL.2024.parquet")).num_rows
        252
    """
    if filesystem is None:
        return pq.read_metadata(path)
    return pq.read_metadata(filesystem.open_input_file(path.as_posix()))


def read_file(path: Path, columns: list[str] | None = None, metadata: pq.FileMetaData | None = None) -> pa.Table:
    """Every row of a Parquet file (``columns`` of it), unchecked: for staged pieces and validation, which check
    what they read themselves. Page checksums are verified.

    Raises:
        pyarrow.ArrowException, OSError: the file is missing or damaged (callers name the file).

    Example:
        >>> read_file(Path("lake/bars/1d/AAPL.2024.parquet"), ["timestamp"]).num_rows
        252
    """
    return pq.ParquetFile(path, metadata=metadata, page_checksum_verification=True).read(columns=columns)


def open_parquet(path: Path) -> pq.ParquetFile:
    """An open Parquet file for row-group-level reads (coverage reads one row group's timestamps).

    Example:
        >>> open_parquet(Path("lake/bars/1d/AAPL.2024.parquet")).metadata.num_row_groups
        1
    """
    return pq.ParquetFile(path, page_checksum_verification=True)
