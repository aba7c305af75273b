"""One read shape for every kind: :meth:`ticklake.Lake.scan` returns a lazy :class:`Scan` that reads nothing until
asked, then as Arrow, pandas, polars, a stream of record batches, or through the Arrow C stream interface (so
``duckdb.sql("SELECT ... FROM scan")`` and ``polars.from_arrow(scan)`` take it directly).

Example:
    >>> scan = lake.scan("1m", ["AAPL", "MSFT"], "2024-01-02", "2024-01-31", tz="America/New_York")
    >>> scan.to_polars().height
    15600
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from ticklake import _core
from ticklake.exceptions import InvalidInputError
from ticklake.lake import kinds, layout
from ticklake.lake.reader import read_range
from ticklake.lake.storage import LocalStorage, ObjectStorage
from ticklake.sessions import SESSIONS, check_tz, overlaps, utc_range

if TYPE_CHECKING:
    import polars as pl


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
        schema = _core.lake_schema(self.kind)
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
        read_cols = wanted if "timestamp" in wanted else [*wanted, "timestamp"]
        self._read_cols = read_cols
        fields = [schema.field(c) for c in wanted]
        if tz != "UTC" and "timestamp" in wanted:
            i = wanted.index("timestamp")
            fields[i] = pa.field("timestamp", pa.timestamp(fields[i].type.unit, tz=tz), nullable=fields[i].nullable)
        #: The schema of every batch and of :meth:`to_arrow`.
        self.schema = pa.schema(fields)

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

    def _shape(self, table: pa.Table) -> pa.Table:
        if "timestamp" not in self.columns:
            table = table.drop_columns(["timestamp"])
        return table.select(self.columns).cast(self.schema)

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
        if table is None or not table.num_rows:
            return self.schema.empty_table()
        return self._shape(table)

    def _read(self, symbol: str, path: Path) -> pa.Table | None:
        storage = self.storage
        return read_range(
            path,
            self.kind,
            symbol,
            self._read_cols,
            self.lo,
            self.hi,
            self.session,
            storage.footers,
            storage.filesystem,
        )

    def tables(self) -> Iterator[pa.Table]:
        """The rows one file at a time (symbol by symbol in the order given, each in time order): memory stays at
        about one file's rows in the range, however many files the scan spans.

        Example:
            >>> sum(t.num_rows for t in lake.scan("1s", "AAPL").tables())
            881819
        """
        for symbol, path in self._plan():
            table = self._read(symbol, path)
            if table is not None and table.num_rows:
                yield self._shape(table)

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
        # pandas gets its default unit, nanoseconds (lossless from the stored microseconds), so code that worked
        # with the frames of schema version 1 (e.g. ``astype("int64")`` as epoch nanoseconds) keeps working.
        frame: pd.DataFrame = self.to_arrow().to_pandas(coerce_temporal_nanoseconds=True)
        return frame

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
