"""One read shape for every kind: :meth:`ticklake.Lake.scan` returns a lazy :class:`Scan` that reads nothing until
asked, then as Arrow, pandas, polars, a stream of record batches, or through the Arrow C stream interface (so
``duckdb.sql("SELECT ... FROM scan")`` and ``polars.from_arrow(scan)`` take it directly).

Example:
    >>> scan = lake.scan("1m", ["AAPL", "MSFT"], "2024-01-02", "2024-01-31", tz="America/New_York")
    >>> scan.to_polars().height
    15600
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ticklake.exceptions import InvalidInputError
from ticklake.lake import kinds, layout
from ticklake.lake.reader import read_range, read_schema, stored_schema
from ticklake.lake.storage import LocalStorage, ObjectStorage
from ticklake.sessions import SESSIONS, check_tz, overlaps, utc_range

if TYPE_CHECKING:
    import polars as pl


def _str_dtype() -> Any:
    """pandas' default string dtype of pandas 3 (``str``: Arrow-backed, missing values NaN), on pandas 2 too."""
    try:
        return pd.StringDtype("pyarrow", na_value=np.nan)
    except TypeError:  # pandas < 2.3 names the same dtype "pyarrow_numpy"
        return pd.StringDtype("pyarrow_numpy")


#: The dtype of every string column of a frame ticklake reads (symbol, exchange codes, tape, ...).
STR_DTYPE = _str_dtype()


def _pandas_type(arrow_type: pa.DataType) -> Any:
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return STR_DTYPE
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return pd.ArrowDtype(arrow_type)
    return None


try:  # pandas >= 3: blocks taken as they are (what pyarrow's own to_pandas uses on pandas 3)
    from pandas.api.internals import create_dataframe_from_blocks  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - pandas 2
    create_dataframe_from_blocks = None

#: Nanoseconds per timestamp unit.
_NS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


@functools.lru_cache(maxsize=256)
def _column_index(names: tuple[str, ...]) -> pd.Index:
    # Building an Index of strings costs more than converting a day of quotes; each frame gets a shallow copy.
    return pd.Index(list(names))


@functools.lru_cache(maxsize=64)
def _datetime_dtype(tz: str) -> pd.DatetimeTZDtype:
    return pd.DatetimeTZDtype("ns", tz)


def _numbers(column: pa.ChunkedArray[Any], n: int) -> np.ndarray:
    """A numeric column as a writable numpy array: a view of the buffer just decoded for one chunk without nulls,
    else a copy (with nulls: float64 with NaN, as pyarrow converts them)."""
    if column.null_count:
        return column.to_numpy()
    chunks = [c for c in column.chunks if len(c)]
    dtype = np.dtype(column.type.to_pandas_dtype())
    if len(chunks) == 1:
        chunk = chunks[0]
        data = chunk.buffers()[1]
        if data is not None and data.is_mutable:
            view: np.ndarray = np.frombuffer(memoryview(data), dtype, len(chunk), chunk.offset * dtype.itemsize)
            return view
    out = np.empty(n, dtype)
    at = 0
    for chunk in chunks:
        out[at : at + len(chunk)] = chunk.to_numpy()
        at += len(chunk)
    return out


def to_frame(table: pa.Table) -> pd.DataFrame:
    """A table just read (a scan's rows) as the pandas DataFrame every ticklake read returns: timestamps tz-aware in
    nanoseconds, string columns of pandas' Arrow-backed ``str`` dtype (:data:`STR_DTYPE`), list columns (trades'
    ``conditions``) Arrow-backed too (``pd.ArrowDtype``), numbers as writable numpy arrays. No Python object per
    row; the numbers of a file's one read are not even copied (the frame takes the decoded buffers over, so
    ``table`` must not be used afterwards).

    Example:
        >>> to_frame(lake.scan("1d", "AAPL").to_arrow()).dtypes["symbol"]
        <StringDtype(na_value=nan)>
    """
    if create_dataframe_from_blocks is None:  # pragma: no cover - pandas 2: the same dtypes through pyarrow
        frame: pd.DataFrame = table.to_pandas(coerce_temporal_nanoseconds=True, types_mapper=_pandas_type)
        return frame
    n = table.num_rows
    blocks: list[tuple[Any, np.ndarray]] = []
    for i, (field, column) in enumerate(zip(table.schema, table.columns, strict=True)):
        kind = field.type
        values: Any
        if pa.types.is_timestamp(kind):
            # pandas gets its default unit, nanoseconds (lossless from the stored microseconds), so code that
            # worked with the frames of schema version 1 (``astype("int64")`` as epoch ns) keeps working.
            if column.null_count:
                return _fallback(table)
            ints = _numbers(pa.chunked_array([c.view(pa.int64()) for c in column.chunks], pa.int64()), n)
            ns = ints * _NS[kind.unit] if kind.unit != "ns" else ints
            if kind.tz is None:
                values = ns.view("M8[ns]").reshape(1, -1)
            else:
                values = pd.array(ns, dtype=_datetime_dtype(kind.tz), copy=False)
        elif pa.types.is_integer(kind) or pa.types.is_floating(kind):
            values = _numbers(column, n).reshape(1, -1)
        else:
            dtype = _pandas_type(kind)
            if dtype is None:
                return _fallback(table)
            values = dtype.__from_arrow__(column)
        blocks.append((values, np.array([i])))
    columns = _column_index(tuple(table.column_names)).copy()
    result: pd.DataFrame = create_dataframe_from_blocks(blocks, index=pd.RangeIndex(n), columns=columns)
    return result


def _fallback(table: pa.Table) -> pd.DataFrame:
    """Columns :func:`to_frame` does not build itself (none of the lake's kinds has any): pyarrow's conversion."""
    frame: pd.DataFrame = table.to_pandas(coerce_temporal_nanoseconds=True, types_mapper=_pandas_type)
    return frame


class Scan:
    """The rows of one kind, some symbols and a time range, read when asked (see :meth:`ticklake.Lake.scan`).

    Each ``to_*`` call reads the files again, so a scan kept around sees later writes.

    Example:
        >>> lake.scan("quotes", "AAPL", columns=["timestamp", "spread"]).to_arrow().column_names
        ['timestamp', 'spread']
    """

    def __init__(
        self,
        storage: LocalStorage | ObjectStorage,
        kind: str,
        symbols: list[str],
        start: Any,
        end: Any,
        columns: Sequence[str] | None,
        tz: str,
        session: str,
    ) -> None:
        if session not in SESSIONS:
            raise InvalidInputError(f"unknown session {session!r}: use one of {', '.join(SESSIONS)}")
        check_tz(tz)
        self.kind = kinds.of(kind).folder
        schema = stored_schema(self.kind)
        wanted = list(schema.names) if columns is None else list(columns)
        unknown = [c for c in wanted if c not in schema.names]
        if unknown:
            raise InvalidInputError(f"unknown column(s) {unknown} for {self.kind}: the columns are {schema.names}")
        self.storage = storage
        self.symbols = symbols
        self.columns = wanted
        self.tz = tz
        self.session = session
        self.lo, self.hi = utc_range(start, end, tz)
        self._read_cols = wanted if "timestamp" in wanted else [*wanted, "timestamp"]
        #: The schema of every batch and of :meth:`to_arrow`.
        self.schema = read_schema(self.kind, wanted, tz)

    def __repr__(self) -> str:
        return f"Scan({self.kind!r}, {self.symbols!r}, columns={self.columns!r}, tz={self.tz!r})"

    def _plan(self) -> list[tuple[str, Path]]:
        """The (symbol, file) pairs that can hold the range, in read order: from the period rule when the range is
        bounded (nothing listed), else from one listing of the folder (per symbol when there is one)."""
        kind, lo, hi = self.kind, self.lo, self.hi
        if lo is not None and hi is not None:
            periods = list(layout.periods(kind, lo, hi))
            return [(s, layout.file_path(self.storage.root, kind, s, p)) for s in self.symbols for p in periods]
        listed = self.storage.files(kind, self.symbols[0] if len(self.symbols) == 1 else None)
        by_symbol: dict[str, list[Path]] = {}
        for path in listed:
            name = layout.parse_name(path.name)
            if name is not None and overlaps(layout.period_bounds(kind, name.period), lo, hi):
                by_symbol.setdefault(name.symbol, []).append(path)
        return [(s, path) for s in self.symbols for path in by_symbol.get(s, [])]

    def _read(self, symbol: str, path: Path, strings: pa.DataType | None = None) -> pa.Table | None:
        """The scan's rows of one file (``strings``: the type of the string columns, see ``read_schema``)."""
        table = read_range(
            path,
            self.kind,
            symbol,
            self._read_cols,
            self.lo,
            self.hi,
            self.session,
            self.storage.footers,
            self.storage.filesystem,
            tz=self.tz,
            strings=strings,
        )
        if table is None or not table.num_rows:
            return None
        return table if "timestamp" in self.columns else table.drop_columns(["timestamp"])

    def parts(self) -> list[tuple[str, Path]]:
        """The (symbol, file) pairs this scan reads, in the order it reads them (one per lake file that exists and
        can hold the range): the partitions of :meth:`ticklake.Lake.to_dask`.

        Example:
            >>> [p.name for _, p in lake.scan("1m", "AAPL,MSFT", "2024-01-02", "2024-02-29").parts()]
            ['AAPL.2024-01.parquet', 'AAPL.2024-02.parquet', 'MSFT.2024-01.parquet', 'MSFT.2024-02.parquet']
        """
        planned = self._plan()
        if self.lo is None or self.hi is None:
            return planned  # from a listing: every file exists
        listed = set(self.storage.files(self.kind, self.symbols[0] if len(self.symbols) == 1 else None))
        return [(symbol, path) for symbol, path in planned if path in listed]

    def read_part(self, symbol: str, path: Path) -> pa.Table:
        """The rows of one of :meth:`parts` (the scan's columns, range, session and schema; possibly empty).

        Example:
            >>> scan = lake.scan("1m", "AAPL")
            >>> scan.read_part(*scan.parts()[0]).num_rows
            18720
        """
        table = self._read(symbol, path)
        return self.schema.empty_table() if table is None else table

    def read_part_pandas(self, symbol: str, path: Path) -> pd.DataFrame:
        """:meth:`read_part` as the pandas DataFrame :meth:`to_pandas` would give for it (a partition of
        :meth:`ticklake.Lake.to_dask`).

        Example:
            >>> scan = lake.scan("1m", "AAPL")
            >>> scan.read_part_pandas(*scan.parts()[0]).dtypes["symbol"]
            <StringDtype(na_value=nan)>
        """
        table = self._read(symbol, path, pa.large_string())
        return to_frame(self._pandas_schema().empty_table() if table is None else table)

    def _pandas_schema(self) -> pa.Schema:
        return read_schema(self.kind, self.columns, self.tz, pa.large_string())

    def tables(self) -> Iterator[pa.Table]:
        """The rows one file at a time (symbol by symbol in the order given, each in time order): memory stays at
        about one file's rows in the range, however many files the scan spans.

        Example:
            >>> sum(t.num_rows for t in lake.scan("1s", "AAPL").tables())
            881819
        """
        yield from self._tables()

    def _tables(self, strings: pa.DataType | None = None) -> Iterator[pa.Table]:
        for symbol, path in self._plan():
            table = self._read(symbol, path, strings)
            if table is not None:
                yield table

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The rows as Arrow record batches, read one file at a time (see :meth:`tables`).

        Example:
            >>> next(lake.scan("1m", "AAPL").batches()).schema.names[:2]
            ['timestamp', 'symbol']
        """
        for table in self.tables():
            yield from table.to_batches()

    def to_arrow(self) -> pa.Table:
        """Every row as one ``pyarrow.Table``.

        Example:
            >>> lake.scan("1d", ["AAPL", "MSFT"], "2024-01-01", "2024-12-31").to_arrow().num_rows
            504
        """
        tables = list(self.tables())
        return pa.concat_tables(tables) if tables else self.schema.empty_table()

    def to_pandas(self) -> pd.DataFrame:
        """Every row as a pandas DataFrame with tz-aware nanosecond timestamps (as :meth:`ticklake.Lake.read_bars`).

        Example:
            >>> lake.scan("1m", "AAPL", "2024-01-02", "2024-01-02", session="regular").to_pandas().shape
            (390, 10)
        """
        # The string columns go straight from the files' dictionaries to the large_string buffers that pandas' str
        # dtype holds: to_frame then wraps them without a copy.
        tables = list(self._tables(pa.large_string()))
        return to_frame(pa.concat_tables(tables) if tables else self._pandas_schema().empty_table())

    def to_polars(self) -> pl.DataFrame:
        """Every row as a ``polars.DataFrame`` (needs polars installed).

        Example:
            >>> lake.scan("1m", "AAPL", "2024-01-02", "2024-01-02").to_polars()["volume"].sum()
            1234567
        """
        import polars as pl

        frame: pl.DataFrame = pl.from_arrow(self.to_arrow())  # type: ignore[assignment]
        return frame

    def to_reader(self) -> pa.RecordBatchReader:
        """The rows as a ``pyarrow.RecordBatchReader`` that reads one file at a time as it is consumed.

        Example:
            >>> lake.scan("quotes", "AAPL").to_reader().schema.names[0]
            'timestamp'
        """
        return pa.RecordBatchReader.from_batches(self.schema, self.batches())

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """The Arrow PyCapsule stream interface: DuckDB, polars, pyarrow and others consume the scan directly.

        Example:
            >>> import duckdb
            >>> scan = lake.scan("1d", "AAPL")
            >>> duckdb.sql("SELECT count(*) FROM scan").fetchall()[0]
            (252,)
        """
        capsule: object = self.to_reader().__arrow_c_stream__(requested_schema)  # type: ignore[no-untyped-call]
        return capsule
