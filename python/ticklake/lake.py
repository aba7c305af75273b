"""The lake: monthly ZSTD Parquet files of bars and quotes under one root (SPEC §1, §4, §5).

Example:
    >>> import ticklake
    >>> lake = ticklake.Lake("data/parquet")
    >>> lake.write_bars(ticklake.bars(trades, interval="1m"), "1m")
    >>> df = lake.read_bars("AAPL", "1m", "2024-01-02", "2024-01-02", tz="America/New_York", session="regular")
    >>> lake.sql("SELECT symbol, count(*) FROM bars_1m GROUP BY symbol")
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from ticklake import _core, layout
from ticklake._arrow import arrow_input
from ticklake.exceptions import InvalidInputError
from ticklake.inventory import Problem
from ticklake.migrate import MigrationReport
from ticklake.reader import read_range
from ticklake.sessions import (
    SESSIONS,
    Session,
    overlaps,
    utc_range,
)
from ticklake.storage import LocalStorage

if TYPE_CHECKING:
    import duckdb
    import polars as pl

#: The footer's ``ticklake.schema_version`` (SPEC §2). 1: every timestamp in ns; 2: bars and quotes in us.
SCHEMA_VERSION = "2"
DEFAULT_ROOT = "data/parquet"
VIEWS: dict[str, str] = {"bars_1s": "bars/1s", "bars_1m": "bars/1m", "bars_1d": "bars/1d", "quotes": "quotes"}


@dataclass(frozen=True)
class FileWrite:
    """What a write did to one file: ``status`` is ``written``, ``unchanged`` (same rows already stored) or
    ``removed`` (``replace`` emptied it); ``rows`` is the file's row count afterwards."""

    path: Path
    symbol: str
    period: str
    status: str
    rows: int
    bytes: int


def _symbols(symbols: str | Iterable[str]) -> list[str]:
    names = [symbols] if isinstance(symbols, str) else list(symbols)
    if not names:
        raise InvalidInputError("no symbols given")
    return [layout.check_symbol(s) for s in names]


class Lake:
    """A market-data lake rooted at a directory.

    Args:
        root: the lake's directory; default ``$TICKLAKE_ROOT``, else ``data/parquet``.
        compression_level: ZSTD level for writes, 1-22 (default 3).
        lock_timeout: seconds a writer waits for another writer of the same file.

    Example:
        >>> lake = Lake("/tmp/lake")
        >>> lake.root
        PosixPath('/tmp/lake')
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        compression_level: int = 3,
        lock_timeout: float = 60.0,
    ) -> None:
        if root is None:
            root = os.environ.get("TICKLAKE_ROOT") or DEFAULT_ROOT
        self.root = Path(root)
        if not 1 <= compression_level <= 22:
            raise InvalidInputError(f"compression_level {compression_level} is outside ZSTD's 1-22")
        self.compression_level = compression_level
        self.storage = LocalStorage(self.root, lock_timeout=lock_timeout)

    def __repr__(self) -> str:
        return f"Lake({str(self.root)!r})"

    # ----------------------------------------------------------------------------------------------- writing

    def write_bars(
        self,
        bars: Any,
        timeframe: layout.Timeframe,
        *,
        replace: tuple[Any, Any] | None = None,
        symbol: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> list[FileWrite]:
        """Writes bars into the lake, merging into existing files.

        Rows are split by symbol and period (the New York date decides the month; daily bars go by the label's
        year), validated (SPEC §4), merged (an incoming row replaces a stored row with the same timestamp) and each
        file is published atomically under a per-file lock. Writing the same rows twice changes nothing.

        Args:
            bars: a table in the SPEC §2 schema of ``timeframe`` (e.g. the output of :func:`ticklake.bars`):
                any Arrow producer or a pandas DataFrame. ``symbol`` fills a missing symbol column.
            timeframe: ``"1s"``, ``"1m"`` or ``"1d"``.
            replace: ``(start, end)``: stored rows of these symbols in ``[start, end)`` are dropped first, so a
                re-downloaded range replaces the old one exactly (also where a bar disappeared). Naive values are
                UTC; a bare date as ``end`` means through that day.
            metadata: provenance stored in each file's footer as ``ticklake.<key>`` (e.g. ``source``, ``feed``,
                ``adjustment``, ``conditions``).

        Returns:
            One :class:`FileWrite` per file touched.

        Raises:
            InvalidInputError: bad schema, types or values, unsorted or duplicate timestamps, bad symbols
                (naming column and row); nothing is written.
            CorruptFileError: a stored file that must be merged into is damaged.
            LakeLockedError: another writer held a file's lock too long.

        Example:
            >>> lake.write_bars(ticklake.bars(trades, interval="1s"), "1s")[0].path.name
            'AAPL.2024-03.parquet'
        """
        return self.write(layout.bar_kind(timeframe), bars, replace=replace, symbol=symbol, metadata=metadata)

    def write_quotes(
        self,
        quotes: Any,
        *,
        replace: tuple[Any, Any] | None = None,
        symbol: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> list[FileWrite]:
        """Writes best quotes per second (the output of :func:`ticklake.best_quotes`; sizes in shares).

        Same rules and arguments as :meth:`write_bars`.

        Example:
            >>> lake.write_quotes(ticklake.best_quotes(raw_quotes, symbol="AAPL"))[0].status
            'written'
        """
        return self.write("quotes", quotes, replace=replace, symbol=symbol, metadata=metadata)

    def write_trades(
        self,
        trades: Any,
        *,
        replace: tuple[Any, Any] | None = None,
        symbol: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> list[FileWrite]:
        """Archives raw trades (``trades/SYMBOL.YYYY-MM.parquet``; equal timestamps allowed, input order kept).

        Stored trades whose timestamp appears in the incoming rows are replaced by all incoming trades of that
        timestamp. Same arguments as :meth:`write_bars`.

        Example:
            >>> lake.write_trades(trades)[0].rows
            200000
        """
        return self.write("trades", trades, replace=replace, symbol=symbol, metadata=metadata)

    def _metadata(self, kind: str, symbol: str, period: str, extra: Mapping[str, str] | None) -> dict[str, str]:
        meta = {
            "ticklake.version": _core.__version__,
            "ticklake.schema_version": SCHEMA_VERSION,
            "ticklake.kind": kind,
            "ticklake.symbol": symbol,
            "ticklake.period": period,
            "ticklake.period_rule": (
                "year of the trading-date label" if layout.is_yearly(kind) else "America/New_York calendar month"
            ),
            "ticklake.size_unit": "shares",
            "ticklake.source": "user",
        }
        for key, value in (extra or {}).items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise InvalidInputError("metadata keys and values must be strings")
            meta[key if key.startswith("ticklake.") else f"ticklake.{key}"] = value
        return meta

    def write(
        self,
        kind: str,
        data: Any,
        *,
        replace: tuple[Any, Any] | None = None,
        symbol: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> list[FileWrite]:
        """Writes a table of any lake kind (``bars/1s``, ``bars/1m``, ``bars/1d``, ``quotes``, ``trades``): the one
        write path behind :meth:`write_bars`, :meth:`write_quotes` and :meth:`write_trades`, same arguments.

        Example:
            >>> lake.write("bars/1m", ticklake.bars(trades, interval="1m"))[0].path.name
            'AAPL.2024-03.parquet'
        """
        if kind not in layout.KINDS:
            raise InvalidInputError(f"unknown lake kind {kind!r}: use one of {', '.join(layout.KINDS)}")
        if symbol is not None:
            layout.check_symbol(symbol)
        window: tuple[int, int] | None = None
        if replace is not None:
            lo, hi = utc_range(*replace, "UTC")
            if lo is None or hi is None:
                raise InvalidInputError("replace needs both a start and an end")
            window = (lo, hi)
        parts = _core.lake_partition(arrow_input(data, "the table to write"), kind, symbol)
        jobs: dict[tuple[str, str], pa.Table | None] = {(s, p): t for s, p, t in parts}
        if window is not None:
            names = {s for s, _ in jobs} | ({symbol} if symbol else set())
            for name in names:
                for period in layout.periods(kind, *window):
                    if (name, period) not in jobs and layout.file_path(self.root, kind, name, period).exists():
                        jobs[(name, period)] = None
        empty = _core.lake_schema(kind).empty_table()
        results = []
        for (name, period), incoming in sorted(jobs.items(), key=lambda item: item[0]):
            path = layout.file_path(self.root, kind, name, period)
            with self.storage.lock(path):
                summary = self.storage.publish(
                    path,
                    kind=kind,
                    symbol=name,
                    period=period,
                    existing=self.storage.read(path),
                    incoming=empty if incoming is None else incoming,
                    replace=window,
                    level=self.compression_level,
                    metadata=self._metadata(kind, name, period, metadata),
                )
            results.append(FileWrite(path, name, period, summary["status"], summary["rows"], summary["bytes"]))
        return results

    # ----------------------------------------------------------------------------------------------- reading

    def files(self, kind: str, symbol: str | None = None) -> list[Path]:
        """The lake files of a kind (``bars/1s``, ``bars/1m``, ``bars/1d``, ``quotes``, ``trades``), sorted.

        Example:
            >>> [p.name for p in lake.files("bars/1m", "AAPL")]
            ['AAPL.2024-01.parquet', 'AAPL.2024-02.parquet']
        """
        if kind not in layout.KINDS:
            raise InvalidInputError(f"unknown lake kind {kind!r}: use one of {', '.join(layout.KINDS)}")
        pattern = f"{layout.check_symbol(symbol)}.*.parquet" if symbol else "*.parquet"
        found = []
        for path in sorted(Path(self.root, kind).glob(pattern)):
            name = layout.parse_name(path.name)
            if name is not None and (symbol is None or name.symbol == symbol):
                found.append(path)
        return found

    def _read(
        self,
        kind: str,
        symbols: str | Iterable[str],
        start: Any,
        end: Any,
        columns: Sequence[str] | None,
        tz: str,
        session: str,
    ) -> pa.Table:
        if session not in SESSIONS:
            raise InvalidInputError(f"unknown session {session!r}: use one of {', '.join(SESSIONS)}")
        schema = _core.lake_schema(kind)
        wanted = list(schema.names) if columns is None else list(columns)
        unknown = [c for c in wanted if c not in schema.names]
        if unknown:
            raise InvalidInputError(f"unknown column(s) {unknown} for {kind}: the columns are {schema.names}")
        read_cols = wanted if "timestamp" in wanted else [*wanted, "timestamp"]
        lo, hi = utc_range(start, end, tz)
        tables = []
        for name in _symbols(symbols):
            if lo is None or hi is None:
                paths = [
                    p
                    for p in self.files(kind, name)
                    if overlaps(layout.period_bounds(kind, layout.parse_name(p.name).period), lo, hi)  # type: ignore[union-attr]
                ]
            else:
                paths = [layout.file_path(self.root, kind, name, p) for p in layout.periods(kind, lo, hi)]
            for path in paths:
                table = read_range(path, kind, name, read_cols, lo, hi, session)
                if table is not None and table.num_rows:
                    tables.append(table)
        target = pa.schema([schema.field(c) for c in read_cols])
        out = pa.concat_tables(tables) if tables else target.empty_table()
        if "timestamp" not in wanted:
            out = out.drop_columns(["timestamp"])
        if tz != "UTC" and "timestamp" in wanted:
            index = out.schema.get_field_index("timestamp")
            unit = out.schema.field(index).type.unit
            out = out.set_column(index, "timestamp", out.column(index).cast(pa.timestamp(unit, tz=tz)))
        return out.select(wanted)

    def read_bars(
        self,
        symbols: str | Iterable[str],
        timeframe: layout.Timeframe,
        start: Any = None,
        end: Any = None,
        *,
        columns: Sequence[str] | None = None,
        tz: str = "UTC",
        session: Session = "all",
    ) -> pd.DataFrame:
        """Reads bars of one or more symbols over a time range into pandas.

        Only the files that can hold the range are opened, and within them only the row groups (one per New York
        day for 1s bars) whose statistics overlap it.

        Args:
            symbols: a symbol or several; rows come symbol by symbol in the order given, each sorted by time.
            timeframe: ``"1s"``, ``"1m"`` or ``"1d"``.
            start: inclusive; ``end``: exclusive, but a bare date as ``end`` means through that day. Strings, dates,
                datetimes or Timestamps; naive values are in ``tz``. None reads from the first / to the last row.
            columns: a subset of the SPEC §2 columns, in the order wanted.
            tz: the zone of naive bounds and of the returned timestamps (``"America/New_York"`` for display).
            session: ``"regular"`` (09:30-16:00 ET, early closes honoured), ``"pre"`` (04:00-open), ``"post"``
                (close-20:00), ``"extended"`` or ``"all"``, on the NYSE calendar.

        Returns:
            A DataFrame with tz-aware timestamps.

        Raises:
            InvalidInputError: bad symbols, columns, bounds or session.
            CorruptFileError: a file in the range is damaged (the message names it).

        Example:
            >>> lake.read_bars("AAPL", "1m", "2024-01-02", "2024-01-02", tz="America/New_York",
            ...                session="regular").shape
            (390, 10)
        """
        return _to_pandas(self.read_bars_arrow(symbols, timeframe, start, end, columns=columns, tz=tz, session=session))

    def read_bars_arrow(
        self,
        symbols: str | Iterable[str],
        timeframe: layout.Timeframe,
        start: Any = None,
        end: Any = None,
        *,
        columns: Sequence[str] | None = None,
        tz: str = "UTC",
        session: Session = "all",
    ) -> pa.Table:
        """:meth:`read_bars` as a ``pyarrow.Table`` (same arguments).

        Example:
            >>> lake.read_bars_arrow(["AAPL", "MSFT"], "1d", "2024-01-01", "2024-12-31").num_rows
            504
        """
        return self._read(layout.bar_kind(timeframe), symbols, start, end, columns, tz, session)

    def read_bars_polars(
        self,
        symbols: str | Iterable[str],
        timeframe: layout.Timeframe,
        start: Any = None,
        end: Any = None,
        *,
        columns: Sequence[str] | None = None,
        tz: str = "UTC",
        session: Session = "all",
    ) -> pl.DataFrame:
        """:meth:`read_bars` as a ``polars.DataFrame`` (needs polars installed).

        Example:
            >>> lake.read_bars_polars("AAPL", "1m", "2024-01-02", "2024-01-02")["volume"].sum()
            1234567
        """
        import polars as pl

        frame: pl.DataFrame = pl.from_arrow(  # type: ignore[assignment]
            self.read_bars_arrow(symbols, timeframe, start, end, columns=columns, tz=tz, session=session)
        )
        return frame

    def read_quotes(
        self,
        symbols: str | Iterable[str],
        start: Any = None,
        end: Any = None,
        *,
        columns: Sequence[str] | None = None,
        tz: str = "UTC",
        session: Session = "all",
    ) -> pd.DataFrame:
        """Reads best quotes per second into pandas; arguments as :meth:`read_bars`.

        Example:
            >>> lake.read_quotes("AAPL", "2024-01-02 09:30", "2024-01-02 09:31", tz="America/New_York").shape[0]
            60
        """
        return _to_pandas(self.read_quotes_arrow(symbols, start, end, columns=columns, tz=tz, session=session))

    def read_quotes_arrow(
        self,
        symbols: str | Iterable[str],
        start: Any = None,
        end: Any = None,
        *,
        columns: Sequence[str] | None = None,
        tz: str = "UTC",
        session: Session = "all",
    ) -> pa.Table:
        """:meth:`read_quotes` as a ``pyarrow.Table``.

        Example:
            >>> lake.read_quotes_arrow("AAPL", columns=["timestamp", "spread"]).column_names
            ['timestamp', 'spread']
        """
        return self._read("quotes", symbols, start, end, columns, tz, session)

    def read_quotes_polars(
        self,
        symbols: str | Iterable[str],
        start: Any = None,
        end: Any = None,
        *,
        columns: Sequence[str] | None = None,
        tz: str = "UTC",
        session: Session = "all",
    ) -> pl.DataFrame:
        """:meth:`read_quotes` as a ``polars.DataFrame`` (needs polars installed).

        Example:
            >>> lake.read_quotes_polars("AAPL", "2024-01-02", "2024-01-02").height
            52000
        """
        import polars as pl

        frame: pl.DataFrame = pl.from_arrow(  # type: ignore[assignment]
            self.read_quotes_arrow(symbols, start, end, columns=columns, tz=tz, session=session)
        )
        return frame

    def read_trades_arrow(self, symbols: str | Iterable[str], start: Any = None, end: Any = None) -> pa.Table:
        """Archived raw trades as a ``pyarrow.Table`` (input for :func:`ticklake.bars`).

        Example:
            >>> ticklake.bars(lake.read_trades_arrow("AAPL", "2024-01-02", "2024-01-02"), interval="1m")
        """
        return self._read("trades", symbols, start, end, None, "UTC", "all")

    # ------------------------------------------------------------------------------------------------- SQL

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with views ``bars_1s``, ``bars_1m``, ``bars_1d`` and ``quotes`` over the lake.

        Use it for Arrow (``.arrow()``) or polars (``.pl()``) results. The views' timestamps are ``TIMESTAMPTZ``
        (microseconds, UTC) and the session's ``TimeZone`` is UTC, so a plain string bound such as
        ``timestamp >= '2024-01-16 14:30:00'`` means UTC here (in another DuckDB session it means the session's
        zone: write ``TIMESTAMPTZ '2024-01-16 14:30:00+00'`` to be unambiguous anywhere).

        Example:
            >>> lake.connect().execute("SELECT count(*) FROM quotes").fetchone()
            (917524,)
        """
        import duckdb

        con = duckdb.connect()
        # Daily bars are labelled at 00:00 UTC: show and group timestamps in UTC whatever the machine's zone.
        con.execute("SET TimeZone = 'UTC'")
        for view, kind in VIEWS.items():
            if self.files(kind):
                pattern = str(Path(self.root, kind, "*.parquet")).replace("'", "''")
                # TIMESTAMPTZ (us, UTC) whatever the file's version: schema version 1 stored nanoseconds, which
                # DuckDB reads as a naive TIMESTAMP_NS.
                con.execute(
                    f"CREATE VIEW {view} AS SELECT * REPLACE (CAST(timestamp AS TIMESTAMPTZ) AS timestamp) "
                    f"FROM read_parquet('{pattern}', union_by_name = true)"
                )
            else:
                con.register(f"_{view}_empty", _core.lake_schema(kind).empty_table())
                con.execute(f"CREATE VIEW {view} AS SELECT * FROM _{view}_empty")
        return con

    def sql(self, query: str) -> pd.DataFrame:
        """Runs a DuckDB query over the lake (views ``bars_1s``, ``bars_1m``, ``bars_1d``, ``quotes``); timestamps
        come back tz-aware in UTC.

        Example:
            >>> lake.sql("SELECT symbol, sum(volume) AS volume FROM bars_1d GROUP BY symbol ORDER BY symbol")
        """
        import duckdb

        con = self.connect()
        try:
            frame: pd.DataFrame = con.sql(query).df()
        except duckdb.Error as err:
            raise InvalidInputError(f"SQL error: {err}") from err
        finally:
            con.close()
        return frame

    def replay(
        self,
        symbols: str | Iterable[str],
        timeframe: str,
        start: Any = None,
        end: Any = None,
        *,
        tz: str = "UTC",
        batch_rows: int = 65_536,
    ) -> Iterator[pa.RecordBatch]:
        """Yields the bars (``"1s"``, ``"1m"``, ``"1d"``) or ``"quotes"`` of several symbols as one stream of
        Arrow record batches ordered by timestamp, ties broken by symbol, for backtests.

        Memory stays bounded by about one row group (a New York day of 1s bars) per symbol, however long the
        range. Bounds as in :meth:`read_bars`.

        Example:
            >>> for batch in lake.replay(["AAPL", "MSFT"], "1m", "2024-01-02", "2024-03-28"):
            ...     for row in batch.to_pandas().itertuples():
            ...         strategy.on_bar(row)
        """
        from ticklake.replay import replay

        return replay(self, symbols, timeframe, start, end, tz=tz, batch_rows=batch_rows)

    # ----------------------------------------------------------------------------------------------- checks

    def inventory(self) -> pd.DataFrame:
        """One row per lake file, from the Parquet footers only: kind, symbol, period, rows, first and last
        timestamp, bytes, path.

        Raises:
            CorruptFileError: a file's footer cannot be read (run :meth:`validate` for a full report).

        Example:
            >>> lake.inventory()[["kind", "symbol", "period", "rows"]].head(1)
        """
        from ticklake.inventory import inventory

        return inventory(self)

    def migrate(self) -> MigrationReport:
        """Rewrites, in place and atomically, every file not in the current form: files of schema version 1
        (nanosecond bars and quotes) and conformable files other writers made. Rows and provenance metadata are
        kept; each file is rewritten under its lock like any write. The locks and temporary files ticklake 0.1
        left in the data folders are removed. Idempotent: a second run rewrites nothing.

        Without it, the next write of a file brings that file across (the merge conforms the stored rows).

        Returns:
            A :class:`~ticklake.migrate.MigrationReport` (rewritten, current, removed, failed).

        Example:
            >>> lake.migrate().summary()
            '2 file(s) rewritten, 14 already current, 4 stray file(s) removed, 0 failed'
        """
        from ticklake.migrate import migrate

        return migrate(self)

    def validate(self) -> list[Problem]:
        """Checks every file against SPEC §1-2: name, schema, footer metadata, sorted unique timestamps, the
        symbol column and the period of every row; also reports strays (anything in a data folder that is not a lake
        file, e.g. the locks ticklake 0.1 kept there) and stale temporary files. A file of schema version 1 or
        another writer's conformable file is reported as such (readable and writable; ``migrate`` rewrites it),
        apart from files that neither the reader nor the writer takes.

        Returns:
            The problems found (empty when the lake is sound).

        Example:
            >>> lake.validate()
            []
        """
        from ticklake.inventory import validate

        return validate(self)


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    # pandas gets its default unit, nanoseconds (lossless from the stored microseconds), so code that worked with
    # the frames of schema version 1 (e.g. ``astype("int64")`` as epoch nanoseconds) keeps working.
    frame: pd.DataFrame = table.to_pandas(coerce_temporal_nanoseconds=True)
    return frame
