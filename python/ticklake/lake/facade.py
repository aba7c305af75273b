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

from ticklake import _core
from ticklake._arrow import arrow_input
from ticklake.exceptions import InvalidInputError
from ticklake.lake import kinds, layout
from ticklake.lake import sql as lake_sql
from ticklake.lake.coverage import DEFAULT_EDGE_MINUTES, DEFAULT_MIN_FRACTION
from ticklake.lake.inventory import Problem
from ticklake.lake.migrate import MigrationReport
from ticklake.lake.scan import Scan
from ticklake.lake.storage import LocalStorage, ObjectStorage, file_metadata
from ticklake.sessions import (
    Session,
    utc_range,
)

if TYPE_CHECKING:
    import duckdb
    from matplotlib.figure import Figure

    from ticklake.lake.gaps import Gaps
    from ticklake.lake.rebuild import RebuildReport

DEFAULT_ROOT = "data/parquet"


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


class Lake:
    """A market-data lake rooted at a directory.

    Args:
        root: the lake's directory, or ``s3://bucket/prefix`` for a lake on S3-compatible storage; default
            ``$TICKLAKE_ROOT``, else ``data/parquet``.
        compression_level: ZSTD level for writes, 1-22 (default 3).
        lock_timeout: seconds a writer waits for another writer of the same file (local lakes).
        storage_options: for ``s3://`` roots: object_store's AWS keys (``endpoint``, ``region``,
            ``access_key_id``, ``secret_access_key``, ``allow_http``); missing ones come from ``AWS_*``.

    Example:
        >>> lake = Lake("/tmp/lake")
        >>> lake.root
        PosixPath('/tmp/lake')
        >>> Lake("s3://research/lake", storage_options={"endpoint": "http://127.0.0.1:8333", "allow_http": "true"})
        Lake('s3://research/lake')
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        compression_level: int = 3,
        lock_timeout: float = 60.0,
        storage_options: Mapping[str, str] | None = None,
    ) -> None:
        if root is None:
            root = os.environ.get("TICKLAKE_ROOT") or DEFAULT_ROOT
        if not 1 <= compression_level <= 22:
            raise InvalidInputError(f"compression_level {compression_level} is outside ZSTD's 1-22")
        self.compression_level = compression_level
        self.storage: LocalStorage | ObjectStorage
        if isinstance(root, str) and root.startswith("s3://"):
            self.storage = ObjectStorage(root, storage_options=storage_options)
            self.url = self.storage.url
        else:
            if storage_options:
                raise InvalidInputError("storage_options are for s3:// lakes; a local lake takes none")
            self.storage = LocalStorage(Path(root), lock_timeout=lock_timeout)
            self.url = str(self.storage.root)
        #: The lake's root: its directory, or ``bucket/prefix`` of an object-store lake (see :attr:`url`).
        self.root = self.storage.root

    def __repr__(self) -> str:
        return f"Lake({self.url!r})"

    # ----------------------------------------------------------------------------------------------- writing

    def write_bars(
        self,
        bars: Any,
        timeframe: kinds.Timeframe,
        *,
        replace: tuple[Any, Any] | Sequence[tuple[Any, Any]] | None = None,
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
            replace: ``(start, end)``, or a list of such pairs: stored rows of these symbols in ``[start, end)``
                are dropped first, so a re-downloaded range replaces the old one exactly (also where a bar
                disappeared). Naive values are UTC; a bare date as ``end`` means through that day.
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
        return self.write(bars, kinds.bar_kind(timeframe).folder, replace=replace, symbol=symbol, metadata=metadata)

    def write_quotes(
        self,
        quotes: Any,
        *,
        replace: tuple[Any, Any] | Sequence[tuple[Any, Any]] | None = None,
        symbol: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> list[FileWrite]:
        """Writes best quotes per second (the output of :func:`ticklake.best_quotes`; sizes in shares).

        Same rules and arguments as :meth:`write_bars`.

        Example:
            >>> lake.write_quotes(ticklake.best_quotes(raw_quotes, symbol="AAPL"))[0].status
            'written'
        """
        return self.write(quotes, "quotes", replace=replace, symbol=symbol, metadata=metadata)

    def write_trades(
        self,
        trades: Any,
        *,
        replace: tuple[Any, Any] | Sequence[tuple[Any, Any]] | None = None,
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
        return self.write(trades, "trades", replace=replace, symbol=symbol, metadata=metadata)

    def write(
        self,
        data: Any,
        kind: str,
        *,
        replace: tuple[Any, Any] | Sequence[tuple[Any, Any]] | None = None,
        symbol: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> list[FileWrite]:
        """Writes a table of any lake kind (``bars/1s``, ``bars/1m``, ``bars/1d``, ``quotes``, ``trades``, or a
        short name): the one write path behind :meth:`write_bars`, :meth:`write_quotes` and :meth:`write_trades`,
        same arguments. Data comes first, as in every write.

        Example:
            >>> lake.write(ticklake.bars(trades, interval="1m"), "bars/1m")[0].path.name
            'AAPL.2024-03.parquet'
        """
        if isinstance(data, str) and not isinstance(kind, str):
            raise InvalidInputError(
                f"write(data, kind): the data comes first, then the kind (got the kind {data!r} first; the order "
                "changed in ticklake 0.2)"
            )
        kind = kinds.of(kind).folder
        if symbol is not None:
            layout.check_symbol(symbol)
        windows = _replace_windows(replace)
        parts = _core.lake_partition(arrow_input(data, "the table to write"), kind, symbol)
        jobs: dict[tuple[str, str], pa.Table | None] = {(s, p): t for s, p, t in parts}
        if windows:
            names = {s for s, _ in jobs} | ({symbol} if symbol else set())
            for name in names:
                for window in windows:
                    for period in layout.periods(kind, *window):
                        if (name, period) not in jobs and self.storage.exists(
                            layout.file_path(self.root, kind, name, period)
                        ):
                            jobs[(name, period)] = None
        empty = _core.lake_schema(kind).empty_table()
        results = []
        for (name, period), incoming in sorted(jobs.items(), key=lambda item: item[0]):
            path = layout.file_path(self.root, kind, name, period)
            summary = self.storage.upsert(
                path,
                kind=kind,
                symbol=name,
                period=period,
                incoming=empty if incoming is None else incoming,
                replace=windows,
                level=self.compression_level,
                metadata=file_metadata(kind, name, period, metadata),
            )
            results.append(FileWrite(path, name, period, summary["status"], summary["rows"], summary["bytes"]))
        return results

    # ----------------------------------------------------------------------------------------------- reading

    def files(self, kind: str, symbol: str | None = None) -> list[Path]:
        """The lake files of a kind (``bars/1s``, ``bars/1m``, ``bars/1d``, ``quotes``, ``trades``, or a short
        name), sorted.

        Example:
            >>> [p.name for p in lake.files("bars/1m", "AAPL")]
            ['AAPL.2024-01.parquet', 'AAPL.2024-02.parquet']
        """
        return self.storage.files(kind, symbol)

    def scan(
        self,
        kind: str,
        symbols: str | Iterable[str],
        start: Any = None,
        end: Any = None,
        *,
        columns: Sequence[str] | None = None,
        tz: str = "UTC",
        session: Session = "all",
    ) -> Scan:
        """The rows of one kind for some symbols over a time range, as a lazy :class:`~ticklake.lake.scan.Scan`:
        ``.to_arrow()``, ``.to_pandas()``, ``.to_polars()``, ``.batches()``, or hand it to DuckDB or polars as is
        (``__arrow_c_stream__``). The same options for every kind, trades included.

        Only the files that can hold the range are opened, and within them only the row groups (one per New York
        day for 1s bars and quotes) whose statistics overlap it. Every file read is checked (symbol, order, page
        checksums).

        Args:
            kind: ``bars/1s``, ``bars/1m``, ``bars/1d``, ``quotes``, ``trades`` (or ``1s``, ``1m``, ``1d``).
            symbols: a symbol, several separated by commas, or an iterable; rows come symbol by symbol in the
                order given, each sorted by time.
            start: inclusive; ``end``: exclusive, but a bare date as ``end`` means through that day. Strings, dates,
                datetimes or Timestamps; naive values are in ``tz``. None reads from the first / to the last row.
            columns: a subset of the SPEC §2 columns, in the order wanted.
            tz: the zone of naive bounds and of the returned timestamps (``"America/New_York"`` for display).
            session: ``"regular"`` (09:30-16:00 ET, early closes honoured), ``"pre"`` (04:00-open), ``"post"``
                (close-20:00), ``"extended"`` or ``"all"``, on the NYSE calendar.

        Raises:
            InvalidInputError: bad kind, symbols, columns, bounds, zone or session (raised here, before any read).
            CorruptFileError: a file in the range is damaged (raised when the rows are read; the message names it).

        Example:
            >>> lake.scan("1m", "AAPL,MSFT", "2024-01-02", "2024-01-02", session="regular").to_arrow().num_rows
            780
            >>> import duckdb
            >>> trades = lake.scan("trades", "AAPL", "2024-01-02", "2024-01-02")
            >>> duckdb.sql("SELECT count(*) FROM trades").fetchall()[0]
            (120000,)
        """
        return Scan(self.storage, kind, layout.parse_symbols(symbols), start, end, columns, tz, session)

    def to_dask(
        self,
        kind: str,
        symbols: str | Iterable[str],
        start: Any = None,
        end: Any = None,
        *,
        columns: Sequence[str] | None = None,
        tz: str = "UTC",
        session: Session = "all",
    ) -> Any:
        """The rows of :meth:`scan` as a lazy Dask DataFrame with one partition per lake file (needs the ``dask``
        extra). Computed, it equals ``scan(...).to_pandas()`` up to the index (each partition counts from 0:
        ``.reset_index(drop=True)`` gives the same frame).

        Args:
            kind, symbols, start, end, columns, tz, session: as :meth:`scan`.

        Returns:
            A ``dask.dataframe.DataFrame`` whose ``meta`` is the kind's schema (tz-aware ns timestamps).

        Raises:
            MissingExtraError: dask is not installed (``pip install 'ticklake[dask]'``).
            InvalidInputError: as :meth:`scan`.

        Example:
            >>> ddf = lake.to_dask("1m", "AAPL,MSFT", "2024-01-01", "2024-02-29")
            >>> ddf.npartitions, int(ddf["volume"].sum().compute())
            (4, 123456789)
        """
        from ticklake.lake.rebuild import to_dask

        return to_dask(self.scan(kind, symbols, start, end, columns=columns, tz=tz, session=session))

    def rebuild(
        self,
        interval: str,
        symbols: str | Iterable[str] | None = None,
        start: Any = None,
        end: Any = None,
        *,
        client: Any = None,
        threads: int | None = None,
        max_tasks: int = 2_000,
        progress: bool | None = None,
    ) -> RebuildReport:
        """Rebuilds bars from the raw trades archive (``trades/``), one (symbol, month) trades file at a time.

        Each trades file streams through :class:`ticklake.BarAggregator` batch by batch and its bars are written
        to ``bars/<interval>/`` replacing exactly the bars of that month (for ``1d``: the month's trading dates in
        the yearly file), one atomic upsert per file. A rerun gives the same files, so a killed job (or worker)
        is finished by running it again; on Dask a task lost with its worker is rerun by the scheduler.

        Args:
            interval: ``"1s"``, ``"1m"`` or ``"1d"`` (the lake's bar kinds; other intervals have no lake kind).
            symbols: the symbols to rebuild (default: every symbol under ``trades/``).
            start, end: New York dates; every month overlapping them is rebuilt whole (default: all months).
            client: a ``distributed.Client``: run the tasks on its cluster (needs the ``dask`` extra); default:
                in-process.
            threads: in-process worker threads (default: the cores this process may use, at most 8).
            max_tasks: the (symbol, month) units are grouped into at most this many tasks.
            progress: a tqdm bar of tasks done, trades, bars and throughput (default: when stderr is a terminal).

        Returns:
            A :class:`~ticklake.lake.rebuild.RebuildReport` (units, trades, bars, seconds, ``summary()``).

        Raises:
            InvalidInputError: an interval without a lake kind, bad symbols or bounds.
            MissingExtraError: ``client`` given without the ``dask`` extra.
            CorruptFileError: a trades file or a bar file to merge into is damaged.

        Example:
            >>> lake.rebuild("1m", "AAPL,MSFT", "2024-01-01", "2024-03-31").summary()
            'bars/1m: 6 unit(s) in 6 task(s), 4,200,000 trades -> 97,440 bars in 3.10 s (1,354,839 trades/s)'
            >>> from distributed import Client
            >>> lake.rebuild("1d", client=Client("tcp://scheduler:8786")).bars
            25200
        """
        from ticklake.lake.rebuild import rebuild

        return rebuild(
            self,
            self.storage,
            interval,
            symbols,
            start,
            end,
            client=client,
            threads=threads,
            max_tasks=max_tasks,
            progress=progress,
        )

    def read_bars(
        self,
        symbols: str | Iterable[str],
        timeframe: kinds.Timeframe,
        start: Any = None,
        end: Any = None,
        *,
        columns: Sequence[str] | None = None,
        tz: str = "UTC",
        session: Session = "all",
    ) -> pd.DataFrame:
        """Reads bars into pandas: the shortcut for ``scan(timeframe, ...).to_pandas()`` (arguments as
        :meth:`scan`; ``timeframe`` is ``"1s"``, ``"1m"`` or ``"1d"``).

        Returns:
            A DataFrame with tz-aware timestamps.

        Example:
            >>> lake.read_bars("AAPL", "1m", "2024-01-02", "2024-01-02", tz="America/New_York",
            ...                session="regular").shape
            (390, 10)
        """
        kind = kinds.bar_kind(timeframe).folder
        return self.scan(kind, symbols, start, end, columns=columns, tz=tz, session=session).to_pandas()

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
        """Reads best quotes per second into pandas: the shortcut for ``scan("quotes", ...).to_pandas()``.

        Example:
            >>> lake.read_quotes("AAPL", "2024-01-02 09:30", "2024-01-02 09:31", tz="America/New_York").shape[0]
            60
        """
        return self.scan("quotes", symbols, start, end, columns=columns, tz=tz, session=session).to_pandas()

    # ------------------------------------------------------------------------------------------------- SQL

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with views ``bars_1s``, ``bars_1m``, ``bars_1d`` and ``quotes`` over the lake.

        Use it for Arrow (``.arrow()``) or polars (``.pl()``) results. The views' timestamps are ``TIMESTAMPTZ``
        (microseconds, UTC) and the session's ``TimeZone`` is UTC, so a plain string bound such as
        ``timestamp >= '2024-01-16 14:30:00'`` means UTC here (in another DuckDB session it means the session's
        zone: write ``TIMESTAMPTZ '2024-01-16 14:30:00+00'`` to be unambiguous anywhere). On an ``s3://`` lake each
        view is a ``pyarrow.dataset`` over one listing of the kind's objects (DuckDB pushes filters into it), with the
        same rows and types.

        Raises:
            CorruptFileError: DuckDB cannot open a kind's files (the message names the damaged one).

        Example:
            >>> lake.connect().execute("SELECT count(*) FROM quotes").fetchone()
            (917524,)
        """
        return lake_sql.connect(self.storage)

    def sql(self, query: str) -> pd.DataFrame:
        """Runs a DuckDB query over the lake (views ``bars_1s``, ``bars_1m``, ``bars_1d``, ``quotes``); timestamps
        come back tz-aware in UTC.

        Example:
            >>> lake.sql("SELECT symbol, sum(volume) AS volume FROM bars_1d GROUP BY symbol ORDER BY symbol")
        """
        return lake_sql.sql(self.storage, query)

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
        from ticklake.lake.replay import replay

        return replay(self.storage, symbols, timeframe, start, end, tz=tz, batch_rows=batch_rows)

    # ----------------------------------------------------------------------------------------------- checks

    def inventory(self) -> pd.DataFrame:
        """One row per lake file, from the Parquet footers only: kind, symbol, period, rows, first and last
        timestamp, bytes, path. One listing per folder; each footer is read once per version of its file (the ETag
        on S3), so a second inventory of an unchanged lake reads no footer.

        Raises:
            CorruptFileError: a file's footer cannot be read (run :meth:`validate` for a full report).

        Example:
            >>> lake.inventory()[["kind", "symbol", "period", "rows"]].head(1)
        """
        from ticklake.lake.inventory import inventory

        return inventory(self.storage)

    def migrate(self) -> MigrationReport:
        """Rewrites, in place and atomically, every file not in the current form: files of schema version 1
        (nanosecond bars and quotes) and conformable files other writers made. Rows and provenance metadata are
        kept; each file is rewritten under its lock like any write. The locks and temporary files ticklake 0.1
        left in the data folders are removed. Idempotent: a second run rewrites nothing.

        Without it, the next write of a file brings that file across (the merge conforms the stored rows).

        Returns:
            A :class:`~ticklake.lake.migrate.MigrationReport` (rewritten, current, removed, failed).

        Example:
            >>> lake.migrate().summary()
            '2 file(s) rewritten, 14 already current, 4 stray file(s) removed, 0 failed'
        """
        from ticklake.lake.migrate import migrate

        return migrate(self.storage, self.compression_level)

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
        from ticklake.lake.inventory import validate

        return validate(self.storage)

    # ---------------------------------------------------------------------------------- coverage and charts

    def coverage(
        self,
        kind: str,
        symbols: str | Iterable[str] | None = None,
        start: Any = None,
        end: Any = None,
        *,
        min_fraction: float = DEFAULT_MIN_FRACTION,
        edge_minutes: float = DEFAULT_EDGE_MINUTES,
        deep: bool = False,
    ) -> pd.DataFrame:
        """Per symbol and NYSE trading day, whether the lake holds the day: ``full``, ``partial``, ``missing`` or
        ``before_first`` (before the symbol's first data of this kind). Weekends and holidays are not listed.

        Daily bars: full when the day's bar exists. Intraday kinds: full when the day's rows reach from the regular
        open to the close (first row at most ``edge_minutes`` after the open, last at most ``edge_minutes`` before
        the close, early closes included) and, for 1m bars (or any intraday kind with ``deep=True``), at least
        ``min_fraction`` of the regular session's minutes hold a row. 1s bars, quotes and trades are judged from
        their footers' row-group statistics (one row group per New York day) unless ``deep=True`` reads their
        timestamps; 1m and 1d files have their timestamp column read (they are small).

        Args:
            kind: ``bars/1s``, ``bars/1m``, ``bars/1d``, ``quotes``, ``trades`` (or ``1s``, ``1m``, ``1d``).
            symbols: a symbol or several; default every symbol with files of this kind. A symbol without any file
                has every day ``missing``.
            start, end: New York dates, both inclusive; default the first and last day with data among the
                symbols. Days after today are not listed.
            min_fraction: share of regular-session minutes that must hold a row (0 to judge by the span alone,
                e.g. for illiquid symbols).
            edge_minutes: how far from the open and the close the first and last rows may be.
            deep: count minutes for 1s bars, quotes and trades too (reads their timestamp columns).

        Returns:
            One row per (symbol, trading day): ``symbol, date, status, rows`` (rows on that New York date, all
            sessions), ``first, last`` (UTC), ``minutes`` (regular minutes with a row, when counted),
            ``session_minutes`` (390, or 210 on an early close) and ``reason`` (why a day is not full).

        Raises:
            InvalidInputError: bad kind, symbols, dates or thresholds.
            CorruptFileError: a file's footer or timestamps cannot be read.

        Example:
            >>> lake.coverage("bars/1m", ["AAPL"], "2024-11-27", "2024-11-29")["status"].tolist()
            ['full', 'full']
        """
        from ticklake.lake.coverage import coverage

        return coverage(
            self.storage,
            kind,
            symbols,
            start,
            end,
            min_fraction=min_fraction,
            edge_minutes=edge_minutes,
            deep=deep,
        )

    def gaps(
        self,
        kind: str,
        symbols: str | Iterable[str] | None = None,
        start: Any = None,
        end: Any = None,
        *,
        include_partial: bool = True,
        include_before_first: bool = False,
        min_fraction: float = DEFAULT_MIN_FRACTION,
        edge_minutes: float = DEFAULT_EDGE_MINUTES,
        deep: bool = False,
    ) -> Gaps:
        """The New York trading days to import, per symbol: ``{symbol: [date, ...]}`` of the days
        :meth:`coverage` calls ``missing`` and (by default) ``partial``. Days before a symbol's first data are
        left out unless ``include_before_first``. Arguments as :meth:`coverage`.

        Returns:
            A :class:`ticklake.lake.gaps.Gaps`: a ``dict`` of sorted ``datetime.date`` lists (symbols without gaps are
            absent), with ``.ranges()`` (runs of consecutive trading days per status, for printing) and
            ``.table`` (the coverage rows behind it).

        Example:
            >>> gaps = lake.gaps("bars/1m", ["AAPL", "MSFT"], "2024-01-02", "2024-02-29")
            >>> {symbol: len(days) for symbol, days in gaps.items()}
            {'MSFT': 3}
        """
        from ticklake.lake.gaps import gaps

        return gaps(
            self.storage,
            kind,
            symbols,
            start,
            end,
            include_partial=include_partial,
            include_before_first=include_before_first,
            min_fraction=min_fraction,
            edge_minutes=edge_minutes,
            deep=deep,
        )

    def coverage_figure(
        self,
        kind: str,
        symbols: str | Iterable[str] | None = None,
        start: Any = None,
        end: Any = None,
        *,
        min_fraction: float = DEFAULT_MIN_FRACTION,
        edge_minutes: float = DEFAULT_EDGE_MINUTES,
        deep: bool = False,
    ) -> Figure:
        """:meth:`coverage` as a symbol x trading day heat map (matplotlib; needs ``pip install 'ticklake[plot]'``).

        Gaps are red, partial days orange, full days pale green, days before a symbol's first data grey; months are
        marked. Days that do not fit are aggregated into weeks or months (the chart says so; a cell shows its
        worst day).

        Raises:
            MissingExtraError: matplotlib is not installed.
            InvalidInputError: as :meth:`coverage`, or nothing to draw.

        Example:
            >>> lake.coverage_figure("bars/1m").savefig("coverage.png")
        """
        from ticklake.coverage_chart import coverage_figure

        frame = self.coverage(
            kind, symbols, start, end, min_fraction=min_fraction, edge_minutes=edge_minutes, deep=deep
        )
        return coverage_figure(frame, kind=kinds.of(kind).folder)

    def plot(
        self,
        symbol: str,
        start: Any,
        end: Any,
        *,
        kind: str = "bars/1m",
        tz: str = "America/New_York",
        session: Session = "all",
        spread: bool = False,
        width_px: int = 1600,
        height_px: int = 900,
    ) -> Figure:
        """A candlestick chart of one symbol's bars with volume beneath (mplfinance; needs
        ``pip install 'ticklake[plot]'``).

        Hours outside the regular session are shaded and each regular open and close is dashed (NYSE calendar).
        When the range holds more bars than fit (about ``width_px / 3``), bars are resampled for display into the
        smallest bucket that fits (2 s .. 1 h, then days, weeks, months): open first, high max, low min, close
        last, volume sum; the title says so.

        Args:
            symbol: the symbol.
            start, end: as :meth:`read_bars` (a bare date as ``end`` means through that day), in ``tz``.
            kind: ``bars/1s``, ``bars/1m`` or ``bars/1d`` (or ``1s``, ``1m``, ``1d``).
            tz: the zone of the bounds and of the time axis.
            session: ``regular``, ``pre``, ``post``, ``extended`` or ``all`` (intraday bars; daily bars are
                whole days).
            spread: add a panel with the mean best-quote spread per candle (from the ``quotes`` kind).
            width_px, height_px: the figure's size in pixels (100 dpi).

        Returns:
            A ``matplotlib.figure.Figure`` (not kept by pyplot; shows in a notebook, saves with ``savefig``).

        Raises:
            MissingExtraError: matplotlib or mplfinance is not installed.
            InvalidInputError: no bars (or, with ``spread``, no quotes) in the range; bad arguments.

        Example:
            >>> lake.plot("AAPL", "2024-01-10", "2024-01-10", spread=True).savefig("aapl.png")
        """
        from ticklake.candles import candle_figure

        return candle_figure(
            self,
            symbol,
            start,
            end,
            kind=kind,
            tz=tz,
            session=session,
            spread=spread,
            width_px=width_px,
            height_px=height_px,
        )


def _replace_windows(replace: Any) -> list[tuple[int, int]]:
    """``replace`` as UTC-nanosecond windows: None, one ``(start, end)`` pair, or a sequence of pairs."""
    if replace is None:
        return []
    pairs = (
        [replace] if isinstance(replace, tuple) and len(replace) == 2 and not isinstance(replace[0], tuple) else replace
    )
    windows = []
    try:
        items = list(pairs)
    except TypeError:
        raise InvalidInputError("replace takes (start, end) or a list of (start, end) pairs") from None
    for pair in items:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise InvalidInputError(f"replace takes (start, end) pairs, got {pair!r}")
        lo, hi = utc_range(pair[0], pair[1], "UTC")
        if lo is None or hi is None:
            raise InvalidInputError("replace needs both a start and an end")
        windows.append((lo, hi))
    return windows
