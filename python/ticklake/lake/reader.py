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

import functools
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
from ticklake.sessions import overlaps, range_slice, session_windows

#: A Parquet footer, as :func:`footer` returns it.
FileMetaData = pq.FileMetaData

#: Nanoseconds per stored unit.
_NS_PER = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


@functools.cache
def stored_schema(kind: str) -> pa.Schema:
    """The kind's stored schema (``_core.lake_schema``), built once per kind: every read asks for it.

    Example:
        >>> stored_schema("bars/1d").names[:2]
        ['symbol', 'timestamp']
    """
    return _core.lake_schema(kind)


@functools.cache
def _string_columns(kind: str) -> tuple[str, ...]:
    """The stored schema's top-level string columns (symbol, exchange codes, tape, ...): all of low cardinality,
    dictionary-encoded in the files, so they are decoded as Arrow dictionaries (indices into the few distinct
    values) and turned into plain strings only for the rows a read returns (:func:`_select`)."""
    return tuple(f.name for f in stored_schema(kind) if pa.types.is_string(f.type))


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
    expected = stored_schema(kind)
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
    name = str(path)
    parsed = layout.parse_name(path.name)
    period = parsed.period if parsed is not None else None
    try:
        if filesystem is not None:
            # An object store: opened fresh every time (see ObjectStorage), through the store's filesystem. No
            # separate existence check: opening asks the store for the size once (a missing object raises).
            source = filesystem.open_input_file(path.as_posix())
            file = pq.ParquetFile(source, page_checksum_verification=True)
            info = inspect(path, file, kind, symbol, period)
            return _for_reading(source, file, info, kind, remote=True), info
        key = _file_key(path)
        hit = footers.get(name, key) if footers is not None else None
        if hit is not None:
            file = _parquet_file(pa.OSFile(name, "r"), hit[1], hit[2], kind)
            if _file_key(path) == key:
                return file, hit[2]
        # Every page's CRC32 is checked as it is read (files without checksums read as before).
        source = pa.OSFile(name, "r")
        file = pq.ParquetFile(source, page_checksum_verification=True)
        info = inspect(path, file, kind, symbol, period)
        if footers is not None and _file_key(path) == key:
            footers.put(name, (key, file.metadata, info))
        return _for_reading(source, file, info, kind), info
    except FileNotFoundError:
        return None
    except CorruptFileError:
        raise
    except (pa.ArrowException, OSError, ValueError, KeyError, IndexError, TypeError) as err:
        raise corrupt_file(path, err) from err


def _parquet_file(
    source: Any, metadata: pq.FileMetaData, info: FileInfo, kind: str, remote: bool = False
) -> pq.ParquetFile:
    """A reader of an open file whose footer is known, page checksums verified. A file in the stored form reads its
    string columns as Arrow dictionaries (see :func:`_string_columns`); another writer's file reads as it is, for
    the conform rule. A local file's columns are read and decoded in parallel (pyarrow's ``pre_buffer`` would
    serialise them); an object's are fetched in one coalesced request per row group (``pre_buffer``)."""
    strings = _string_columns(kind) if info.form == "stored" else ()
    return pq.ParquetFile(
        source,
        metadata=metadata,
        read_dictionary=list(strings) or None,
        pre_buffer=remote,
        page_checksum_verification=True,
    )


def _for_reading(source: Any, file: pq.ParquetFile, info: FileInfo, kind: str, remote: bool = False) -> pq.ParquetFile:
    """``file`` (just opened on ``source`` and inspected) as :func:`_parquet_file` reads it: the same open file, so
    never another version of it, with the footer already parsed."""
    return _parquet_file(source, file.metadata, info, kind, remote)


def _stored_table(
    path: Path, file: pq.ParquetFile, info: FileInfo, kind: str, symbol: str, groups: list[int], columns: list[str]
) -> pa.Table:
    """The rows of ``groups`` in the kind's stored schema, ``columns`` of it (timestamp always included); string
    columns of a stored-form file are Arrow dictionaries (:func:`_select` decodes them)."""
    expected = stored_schema(kind)
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
        if pa.types.is_dictionary(names.type):
            names = names.cast(names.type.value_type)
        differs: pa.BooleanArray = pc.not_equal(names, pa.scalar(symbol, names.type))
        wrong = np.asarray(pc.fill_null(differs, pa.scalar(True)))
        if wrong.any():
            first = int(np.flatnonzero(wrong)[0])
            raise _fail(path, f"column 'symbol', row {first}: {names[first].as_py()!r} in the file of {symbol}")
        if not info.symbols_checked and "symbol" not in columns:
            table = table.drop_columns(["symbol"])
    return table


def _timestamps(path: Path, table: pa.Table, kind: str, spans: list[tuple[int, int] | None]) -> tuple[np.ndarray, int]:
    """The rows' timestamps as int64 UTC in the stored unit and the nanoseconds per unit, checked sorted (unique
    unless trades) and inside each group's span. One row group's are not copied."""
    column = table.column("timestamp")
    unit = _NS_PER[column.type.unit]
    if column.null_count:
        raise _fail(path, "column 'timestamp' holds nulls")
    chunks = [c.to_numpy().view(np.int64) for c in column.chunks if len(c)]
    ts = chunks[0] if len(chunks) == 1 else np.concatenate(chunks) if chunks else np.empty(0, np.int64)
    if len(ts) > 1:
        bad = ts[1:] <= ts[:-1] if kind != "trades" else ts[1:] < ts[:-1]
        if bad.any():
            raise _fail(path, f"column 'timestamp', row {int(np.argmax(bad)) + 1}: not sorted by time")
    known = [s for s in spans if s is not None]
    if len(ts) and len(known) == len(spans) and (int(ts[0]) * unit < known[0][0] or int(ts[-1]) * unit >= known[-1][1]):
        raise _fail(path, "column 'timestamp': values outside the footer's statistics")
    return ts, unit


def _in_unit(bound: int | None, unit: int) -> int | None:
    """A ``[lo, hi)`` bound in UTC ns as the same bound on timestamps in ``unit`` ns (``t * unit >= bound`` exactly
    when ``t >= ceil(bound / unit)``, and likewise for ``<``)."""
    return None if bound is None else -(-bound // unit)


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
    *,
    tz: str = "UTC",
    strings: pa.DataType | None = None,
) -> pa.Table | None:
    """The checked rows of one file in ``[lo, hi)`` (UTC ns), ``columns`` of the kind's stored schema in the order
    given, within ``session``, as :func:`read_schema` (``tz``, ``strings``) describes them; only the row groups
    whose statistics overlap are read.

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
        ts, unit = _timestamps(path, table, kind, [info.spans[g] for g in groups])
    except (CorruptFileError, InvalidInputError):
        raise
    except (pa.ArrowException, OSError, ValueError, KeyError, IndexError, TypeError) as err:
        raise corrupt_file(path, err) from err
    a, b = range_slice(ts, _in_unit(lo, unit), _in_unit(hi, unit))
    table = table.slice(a, b - a)
    if session != "all" and table.num_rows:
        ts = ts[a:b]
        windows = session_windows(session, int(ts[0]) * unit, int(ts[-1]) * unit)
        # Each session is a run of consecutive rows: the table's slices, not a copy of the rows.
        starts = np.searchsorted(ts, -(-windows[:, 0] // unit), side="left")
        ends = np.searchsorted(ts, -(-windows[:, 1] // unit), side="left")
        runs = [table.slice(int(x), int(y - x)) for x, y in zip(starts, ends, strict=True) if y > x]
        table = pa.concat_tables(runs) if runs else table.slice(0, 0)
    try:
        return _select(table, symbol, read_schema(kind, columns, tz, strings))
    except (pa.ArrowException, ValueError, IndexError, TypeError) as err:  # a dictionary index out of range
        raise corrupt_file(path, err) from err


def read_schema(kind: str, columns: list[str], tz: str = "UTC", strings: pa.DataType | None = None) -> pa.Schema:
    """The schema of what :func:`read_range` returns: ``columns`` of the kind's stored schema, with the timestamps
    in ``tz`` and the string columns of type ``strings`` (default: the stored ``string``; ``large_string`` is what
    pandas' Arrow-backed ``str`` dtype holds).

    Example:
        >>> read_schema("bars/1d", ["timestamp", "symbol"], "America/New_York", pa.large_string()).types
        [TimestampType(timestamp[us, tz=America/New_York]), DataType(large_string)]
    """
    return _read_schema(kind, tuple(columns), tz, strings if strings is not None else pa.string())


@functools.lru_cache(maxsize=256)
def _read_schema(kind: str, columns: tuple[str, ...], tz: str, strings: pa.DataType) -> pa.Schema:
    expected = stored_schema(kind)
    fields = []
    for name in columns:
        field = expected.field(name)
        if name == "timestamp" and tz not in ("UTC", field.type.tz):
            field = field.with_type(pa.timestamp(field.type.unit, tz=tz))
        elif pa.types.is_string(field.type):
            field = field.with_type(strings)
        fields.append(field)
    return pa.schema(fields)


def _select(table: pa.Table, symbol: str, schema: pa.Schema) -> pa.Table:
    """``table`` as ``schema`` (see :func:`read_schema`): the symbol column rebuilt when it was not read, string
    columns read as dictionaries decoded for these rows only, the timestamps relabelled with the zone (no copy)."""
    arrays: list[Any] = []
    offsets: dict[tuple[int, int, pa.DataType], Any] = {}  # the columns decoded here share their offsets (see _decode)
    for field in schema:
        if field.name == "symbol" and "symbol" not in table.column_names:
            # Proven by the statistics: every row is the file's symbol, so the column need not be decoded.
            arrays.append(_repeat(symbol, table.num_rows, field.type))
            continue
        column = table.column(field.name)
        if column.type == field.type:
            pass
        elif pa.types.is_dictionary(column.type):
            column = pa.chunked_array([_decode(c, field.type, offsets) for c in column.chunks], field.type)
        elif pa.types.is_timestamp(column.type) and column.type.unit == field.type.unit:
            # The same UTC values under the scan's zone: a view of the buffers, not a cast.
            column = pa.chunked_array([c.view(field.type) for c in column.chunks], field.type)
        else:
            column = column.cast(field.type)
        arrays.append(column)
    return pa.Table.from_arrays(arrays, schema=schema)


def _offsets_type(strings: pa.DataType) -> Any:
    return np.int64 if pa.types.is_large_string(strings) else np.int32


def _repeat(value: str, n: int, strings: pa.DataType) -> pa.Array[Any]:
    """``n`` times ``value`` as a ``strings`` (string or large_string) array."""
    data = value.encode()
    if not data or (pa.types.is_string(strings) and (n + 1) * len(data) >= 2**31):
        scalar: Any = pa.scalar(value, strings)
        repeated: pa.Array[Any] = pa.repeat(scalar, n)
        return repeated
    offsets: Any = np.arange(0, (n + 1) * len(data), len(data), dtype=_offsets_type(strings))
    return pa.Array.from_buffers(strings, n, [None, pa.py_buffer(offsets), pa.py_buffer(data * n)])


#: The numpy type a code of so many bytes is gathered as (one machine word: faster than numpy's void copies).
_CODE_TYPES: dict[int, Any] = {
    1: np.dtype(np.uint8),
    2: np.dtype(np.uint16),
    4: np.dtype(np.uint32),
    8: np.dtype(np.uint64),
}


def _decode(
    chunk: Any, strings: pa.DataType, shared: dict[tuple[int, int, pa.DataType], Any] | None = None
) -> pa.Array[Any]:
    """A dictionary-encoded string chunk as a plain ``strings`` (string or large_string) array.

    The lake's string columns hold codes of one width (exchange and tape letters, the file's symbol): then the rows'
    bytes are one gather from the dictionary, the offsets a multiple of the row number and the validity the
    indices' own (a null row keeps a code's width of bytes, which Arrow allows and every reader ignores): much
    less work than Arrow's take, which anything else goes through. ``shared`` holds offsets buffers by (rows,
    width, type) for the next column of the same rows (Arrow buffers are immutable, so arrays may share them).
    """
    dictionary, indices, n = chunk.dictionary, chunk.indices, len(chunk)
    if (
        not len(dictionary)
        or dictionary.null_count
        or indices.type != pa.int32()
        or not (pa.types.is_string(dictionary.type) or pa.types.is_large_string(dictionary.type))
    ):
        return chunk.cast(strings)  # type: ignore[no-any-return]
    value_offsets, value_data = dictionary.buffers()[1:3]
    wide = pa.types.is_large_string(dictionary.type)
    bounds = np.frombuffer(
        value_offsets, np.int64 if wide else np.int32, len(dictionary) + 1, dictionary.offset * (8 if wide else 4)
    )
    width = int(bounds[1] - bounds[0])
    # The rows from the byte holding the first one's validity bit, so the indices' validity serves as it is.
    shift = indices.offset % 8 if chunk.null_count else 0
    total = n + shift
    if width == 0 or (np.diff(bounds) != width).any() or (pa.types.is_string(strings) and (total + 1) * width >= 2**31):
        return chunk.cast(strings)  # type: ignore[no-any-return]
    code_type = _CODE_TYPES.get(width, np.dtype((np.void, width)))
    codes = np.frombuffer(value_data, code_type, len(dictionary), int(bounds[0]))
    validity, index_data = indices.buffers()
    rows = np.frombuffer(index_data, np.int32, total, (indices.offset - shift) * 4)
    bitmap = validity.slice((indices.offset - shift) // 8) if chunk.null_count else None
    # A null row's index may be anything: clipped into the dictionary, its bytes are a code's, never out of bounds.
    data: Any = np.take(codes, rows, mode="clip") if chunk.null_count else np.take(codes, rows)
    offsets = shared.get((total, width, strings)) if shared is not None else None
    if offsets is None:
        values: Any = np.arange(0, (total + 1) * width, width, dtype=_offsets_type(strings))
        offsets = pa.py_buffer(values)
        if shared is not None:
            shared[(total, width, strings)] = offsets
    return pa.Array.from_buffers(strings, n, [bitmap, offsets, pa.py_buffer(data)], chunk.null_count, shift)


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
    names = list(stored_schema(kind).names)
    schema = read_schema(kind, names)
    for g, span in enumerate(info.spans):
        if span is not None and not overlaps(span, lo, hi):
            continue
        try:
            table = _stored_table(path, file, info, kind, symbol, [g], names)
            ts, unit = _timestamps(path, table, kind, [span])
        except (CorruptFileError, InvalidInputError):
            raise
        except (pa.ArrowException, OSError, ValueError, KeyError, IndexError, TypeError) as err:
            raise corrupt_file(path, err) from err
        a, b = range_slice(ts, _in_unit(lo, unit), _in_unit(hi, unit))
        if b > a:
            yield _select(table.slice(a, b - a), symbol, schema)


def first_unreadable(paths: Iterable[Path], filesystem: Any = None) -> CorruptFileError | None:
    """The error for the first of ``paths`` whose footer does not read (through ``filesystem``: an object store's),
    or None when every one reads.

    Example:
        >>> first_unreadable(lake.files("bars/1m")) is None
        True
    """
    for path in paths:
        try:
            footer(path, filesystem)
        except (pa.ArrowException, OSError, ValueError) as err:
            return corrupt_file(path, err)
    return None


# --------------------------------------------------------------------------- plain reads for the lake's own tools


def _source(path: Path, filesystem: Any) -> Any:
    """What pyarrow opens: the local path, or the object opened through the store's filesystem."""
    return path if filesystem is None else filesystem.open_input_file(path.as_posix())


def footer(path: Path, filesystem: Any = None, size: int | None = None) -> pq.FileMetaData:
    """The Parquet footer of any file (unchecked: for inventories, coverage and counts), through ``filesystem``
    when given (an object store's; with the listed ``size`` the footer takes one range request, no size request).

    Raises:
        pyarrow.ArrowException, OSError: the file is missing or not Parquet (callers name the file).

    Example:
        >>> footer(Path("lake/bars/1d/AAPL.2024.parquet")).num_rows
        252
    """
    if filesystem is None:
        return pq.read_metadata(path)
    if size is not None:
        import pyarrow.dataset as ds

        fragment = ds.ParquetFileFormat().make_fragment(path.as_posix(), filesystem, file_size=size)
        meta: pq.FileMetaData = fragment.metadata  # type: ignore[attr-defined]
        return meta
    return pq.read_metadata(_source(path, filesystem))


def read_file(
    path: Path, columns: list[str] | None = None, metadata: pq.FileMetaData | None = None, filesystem: Any = None
) -> pa.Table:
    """Every row of a Parquet file (``columns`` of it), unchecked: for staged pieces and validation, which check
    what they read themselves. Page checksums are verified.

    Raises:
        pyarrow.ArrowException, OSError: the file is missing or damaged (callers name the file).

    Example:
        >>> read_file(Path("lake/bars/1d/AAPL.2024.parquet"), ["timestamp"]).num_rows
        252
    """
    file = pq.ParquetFile(_source(path, filesystem), metadata=metadata, page_checksum_verification=True)
    return file.read(columns=columns)


def open_parquet(path: Path, filesystem: Any = None) -> pq.ParquetFile:
    """An open Parquet file for row-group-level reads (coverage reads one row group's timestamps).

    Example:
        >>> open_parquet(Path("lake/bars/1d/AAPL.2024.parquet")).metadata.num_row_groups
        1
    """
    return pq.ParquetFile(_source(path, filesystem), page_checksum_verification=True)


def dataset(files: Iterable[tuple[Path, int]], schema: pa.Schema, filesystem: Any) -> Any:
    """A ``pyarrow.dataset`` over listed ``(path, size)`` files of a store, read as ``schema``: what DuckDB queries
    on an object-store lake (it pushes projections and filters into the scan, so row groups whose statistics miss
    a filter are not fetched). Nothing is read until it is scanned.

    Example:
        >>> dataset([(Path("bucket/lake/bars/1d/AAPL.2024.parquet"), 20480)], schema, fs).count_rows()
        252
    """
    import pyarrow.dataset as ds

    fmt = ds.ParquetFileFormat()
    fragments = [fmt.make_fragment(path.as_posix(), filesystem, file_size=size) for path, size in files]
    return ds.FileSystemDataset(fragments, schema, fmt, filesystem)
