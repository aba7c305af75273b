"""Moving an existing database into the lake (the design's migration phase 2, SPEC §7).

Tables are read with the Arrow-native ADBC drivers (SQLite, PostgreSQL; TimescaleDB speaks the same protocol) as a
stream of record batches. Rows are read in the table's own order when each symbol's rows already come in time
order (symbol-major or time-major tables), else again with ``ORDER BY symbol, timestamp``; they are split into lake
files by the lake's period rule and buffered until a symbol moves on to its next period (or the buffers pass
``MAX_BUFFERED_ROWS``, when the largest is written early and later rows merge into it), so memory stays bounded
however large the table. Writes go through the lake's validated atomic writes, and every file's row count is
checked against the rows read from the source.

Example:
    >>> from ticklake.exporter import export_to_parquet
    >>> report = export_to_parquet("sqlite:///market.db", symbol="AAPL", year=2024, root="data/parquet")
    >>> print(report.table())
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, Full, Queue
from typing import Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa

from ticklake import _core
from ticklake.exceptions import ExportError, InvalidInputError, LakeFileNotFoundError
from ticklake.lake import kinds, layout
from ticklake.lake.facade import Lake
from ticklake.lake.reader import footer
from ticklake.lake.storage import ObjectStorage

#: The default source table of each kind the export reads: the kind's SQL view name (``bars_1m``).
DEFAULT_TABLES: dict[str, str] = {kind.folder: view for view, kind in kinds.VIEWS.items()}
EPOCH_UNITS: tuple[str, ...] = ("s", "ms", "us", "ns")
# Rows buffered across files before the largest buffer is written early (about 200 MB of bars).
MAX_BUFFERED_ROWS = 2_000_000
WRITES_IN_FLIGHT = 2
PREFETCH = 2
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


@dataclass
class FileCheck:
    """One lake file after the export: rows read from the source for it and rows in the file."""

    kind: str
    symbol: str
    period: str
    source_rows: int
    file_rows: int

    @property
    def ok(self) -> bool:
        return self.source_rows == self.file_rows


@dataclass
class ExportReport:
    """What an export read, wrote and checked. ``notes`` lists assumptions (naive timestamps taken as UTC,
    ignored columns, ...)."""

    files: list[FileCheck] = field(default_factory=list)
    source_rows: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.files)

    def table(self) -> str:
        """The verification table: one line per file."""
        lines = [f"{'kind':8} {'symbol':10} {'period':8} {'source':>10} {'file':>10}  check"]
        for f in self.files:
            check = "ok" if f.ok else "MISMATCH"
            lines.append(f"{f.kind:8} {f.symbol:10} {f.period:8} {f.source_rows:>10,} {f.file_rows:>10,}  {check}")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ connections


@dataclass
class _Source:
    dialect: str  # "sqlite" or "postgresql"
    connection: Any

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.connection.close()


def _connect(url: str) -> _Source:
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :])
        if not path.is_file():
            raise LakeFileNotFoundError(f"no SQLite database at {path}")
        with open(path, "rb") as handle:
            if handle.read(16) != b"SQLite format 3\x00":
                raise ExportError(f"{path} is not a SQLite database")
        import adbc_driver_sqlite.dbapi as sqlite

        return _Source("sqlite", sqlite.connect(f"file:{path.resolve()}?mode=ro"))
    if url.startswith(("postgresql://", "postgres://")):
        import adbc_driver_manager
        import adbc_driver_postgresql.dbapi as postgresql

        try:
            return _Source("postgresql", postgresql.connect(url))
        except adbc_driver_manager.Error as err:
            raise ExportError(f"cannot connect to PostgreSQL: {_clean(str(err), url)}") from None
    raise ExportError(f"unsupported database URL {_clean(url, url)!r}: use sqlite:///path.db or postgresql://...")


def _clean(text: str, url: str) -> str:
    """Removes a password that a URL may carry from a message."""
    match = re.match(r"^[a-z]+://[^:/@]+:([^@]+)@", url)
    if match:
        text = text.replace(match[1], "***")
    return text


def _query(
    source: _Source, sql: str, params: tuple[Any, ...] = (), batch_rows: int = 262_144
) -> Iterator[pa.RecordBatch]:
    """The query's record batches, read ahead by one thread (at most ``PREFETCH`` batches waiting), so the database
    driver reads while the caller converts and writes."""
    cursor = source.connection.cursor()
    done = object()
    queue: Queue[object] = Queue(maxsize=PREFETCH)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in reader:
                while not stop.is_set():
                    try:
                        queue.put(batch, timeout=0.1)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put(done)
        except BaseException as err:  # handed to the consumer, raised there
            queue.put(err)

    try:
        if source.dialect == "sqlite":
            cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(batch_rows)})
        cursor.execute(sql, params or None)
        reader = cursor.fetch_record_batch()
        thread = threading.Thread(target=produce, name="ticklake-export-read", daemon=True)
        thread.start()
        try:
            while True:
                item = queue.get()
                if item is done:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield cast(pa.RecordBatch, item)
        finally:
            stop.set()
            while thread.is_alive():
                with contextlib.suppress(Empty):
                    queue.get(timeout=0.1)
            thread.join()
    finally:
        cursor.close()


def _scalar(source: _Source, sql: str, params: tuple[Any, ...] = ()) -> Any:
    cursor = source.connection.cursor()
    try:
        cursor.execute(sql, params or None)
        row = cursor.fetchone()
        return None if row is None else row[0]
    finally:
        cursor.close()


def _quote(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise InvalidInputError(f"invalid table name {name!r}: letters, digits and _ (optionally schema.table)")
    return ".".join(f'"{part}"' for part in name.split("."))


def _table_exists(source: _Source, name: str) -> bool:
    if source.dialect == "sqlite":
        found = _scalar(
            source, "SELECT count(*) FROM sqlite_master WHERE type IN ('table', 'view') AND name = ?", (name,)
        )
        return bool(found)
    return _scalar(source, "SELECT to_regclass($1)::text", (name,)) is not None


def _columns(source: _Source, name: str) -> list[str]:
    cursor = source.connection.cursor()
    try:
        cursor.execute(f"SELECT * FROM {_quote(name)} LIMIT 0")
        return list(cursor.fetch_arrow_table().column_names)
    finally:
        cursor.close()


# ------------------------------------------------------------------------------------------------ timestamps


def _epoch_unit(values: np.ndarray) -> str:
    """s / ms / us / ns from the magnitude of epoch integers (dates 1973-2200 are unambiguous)."""
    probe = np.abs(values[:1000]).max(initial=0)
    if probe < 10**11:
        return "s"
    if probe < 10**14:
        return "ms"
    if probe < 10**17:
        return "us"
    return "ns"


def _timestamps(column: Any, epoch_unit: str | None, notes: set[str]) -> pa.Array:  # type: ignore[type-arg]
    """A source timestamp column as timestamp[ns, UTC], whatever form the database kept it in."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    kind = array.type
    if pa.types.is_timestamp(kind):
        if kind.tz is None:
            notes.add("naive timestamps were taken as UTC")
            return array.cast(pa.timestamp("ns")).cast(pa.timestamp("ns", tz="UTC"))
        return array.cast(pa.timestamp("ns", tz="UTC"))
    if array.null_count:
        row = int(np.flatnonzero(~np.asarray(array.is_valid()))[0])
        raise InvalidInputError(f"timestamp is NULL at row {row} of the batch", column="timestamp", row=row)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        values = array.to_numpy(zero_copy_only=False)
        if pa.types.is_floating(kind):
            if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
                raise InvalidInputError("timestamp column holds non-integer epoch values")
            if np.any(np.abs(values) >= 2.0**63):
                raise InvalidInputError("timestamp column holds epoch values beyond int64")
            values = values.astype(np.int64)
        unit = epoch_unit or _epoch_unit(values)
        notes.add(f"integer timestamps read as epoch {unit}" + ("" if epoch_unit else " (detected from magnitude)"))
        scale = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[unit]
        values = values.astype(np.int64)
        # Refuse what would wrap: the result must stay inside the range the lake stores (checked again there).
        lo, hi = -(_core.MIN_TIMESTAMP // -scale), _core.MAX_TIMESTAMP // scale
        outside = np.flatnonzero((values < lo) | (values >= hi))
        if len(outside):
            row = int(outside[0])
            raise InvalidInputError(
                f"timestamp {int(values[row])} at row {row} of the batch, read as epoch {unit}, is outside "
                "1679-2261: wrong --epoch-unit?",
                column="timestamp",
                row=row,
            )
        return pa.array(values * scale, pa.timestamp("ns", tz="UTC"))
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        try:
            parsed_table, naive = _core.parse_timestamp_text(pa.table({"timestamp": array}))
        except InvalidInputError:
            pass  # not the usual ISO forms: let pandas try every format it knows
        else:
            if naive:
                notes.add("timestamp text without an offset was taken as UTC")
            return parsed_table["timestamp"].combine_chunks()
        text = pd.Series(array.to_numpy(zero_copy_only=False))
        try:
            parsed = pd.to_datetime(text, format="ISO8601")
        except (ValueError, TypeError) as err:
            raise InvalidInputError(f"timestamp text is not ISO 8601: {err}") from None
        if parsed.dt.tz is None:
            notes.add("timestamp text without an offset was taken as UTC")
            parsed = parsed.dt.tz_localize("UTC")
        return pa.array(parsed.dt.tz_convert("UTC").astype("datetime64[ns, UTC]"), pa.timestamp("ns", tz="UTC"))
    raise InvalidInputError(f"cannot read timestamps of type {kind}")


# ------------------------------------------------------------------------------------------------ the export


def _export_kind(name: str) -> str:
    """The folder of the kind a ``--table`` key names (``bars_1m`` or ``bars/1m``), or the key as given."""
    try:
        return kinds.of(name).folder
    except InvalidInputError:
        return name


def _tables_for(options: Mapping[str, str] | None) -> dict[str, str]:
    tables = dict(DEFAULT_TABLES)
    for key, name in (options or {}).items():
        kind = _export_kind(key)
        if kind not in DEFAULT_TABLES:
            raise InvalidInputError(f"unknown kind {key!r} in --table: use bars_1s, bars_1m, bars_1d or quotes")
        _quote(name)
        tables[kind] = name
    return tables


def export_to_parquet(
    db: str,
    *,
    symbol: str | None = None,
    year: int | None = None,
    root: str | os.PathLike[str] | None = None,
    storage_options: Mapping[str, str] | None = None,
    tables: Mapping[str, str] | None = None,
    epoch_unit: str | None = None,
    batch_rows: int = 262_144,
    client: Any = None,
    max_tasks: int | None = None,
) -> ExportReport:
    """Exports bars and quotes tables from SQLite or PostgreSQL into the lake and verifies the row counts.

    With a Dask ``client`` the symbols are split into contiguous groups of about equal row counts, one task per
    group: each task opens its own connection and writes its symbols' files (every write an atomic upsert, so a
    task that reruns after a lost worker gives the same files). The verification table is built at the end from the
    files, as in-process. The workers must reach the database and the lake (a shared disk, or the same bucket).

    Args:
        db: ``sqlite:///path.db`` or ``postgresql://user@host:port/dbname``.
        symbol: only this symbol (filtered by the database); default: every symbol (``--all``).
        year: only rows whose lake period falls in this year (the New York date's year; daily bars: the label's).
        root: the lake: a folder or ``s3://bucket/prefix`` (default ``$TICKLAKE_ROOT``, else ``data/parquet``).
            Into an ``s3://`` lake every file is one conditional PUT (buffered in memory, as for a local lake);
            the check reads each object's footer back from the store.
        storage_options: for ``s3://`` roots, as :class:`ticklake.Lake` takes them.
        tables: other table names, e.g. ``{"bars_1m": "minute_bars"}``; default tables that are absent are skipped.
        epoch_unit: ``s``, ``ms``, ``us`` or ``ns`` for integer timestamps (default: detected from magnitude).
        batch_rows: rows per batch read from the database.
        client: a ``distributed.Client`` to run on (needs ``ticklake[dask]``); default: in-process.
        max_tasks: with ``client``, at most this many tasks per table (default: 4 per worker thread).

    Returns:
        An :class:`ExportReport`; ``report.ok`` is False when a file's rows differ from the source's.

    Raises:
        ExportError: bad URL, unreachable database, no table to export, a count mismatch with the source.
        LakeFileNotFoundError: the SQLite file does not exist.
        InvalidInputError: bad arguments, or rows the lake rejects (duplicate timestamps, bad prices: the
            message names the column and row).

    Example:
        >>> export_to_parquet("sqlite:///market.db", root="lake").ok
        True
        >>> from distributed import Client
        >>> export_to_parquet("postgresql://app@db/market", root="/shared/lake", client=Client("tcp://10.0.0.5:8786")).ok
        True
        >>> export_to_parquet("sqlite:///market.db", root="s3://research/lake",
        ...                   storage_options={"endpoint": "http://127.0.0.1:8333", "allow_http": "true"}).ok
        True
    """
    if symbol is not None:
        layout.check_symbol(symbol)
    if epoch_unit is not None and epoch_unit not in EPOCH_UNITS:
        raise InvalidInputError(f"epoch unit {epoch_unit!r}: use s, ms, us or ns")
    if client is not None:
        from ticklake.lake.rebuild import require_dask

        require_dask()
    if max_tasks is not None and max_tasks < 1:
        raise InvalidInputError(f"max_tasks must be at least 1, got {max_tasks}")
    chosen = _tables_for(tables)
    explicit = {_export_kind(k) for k in (tables or {})}
    lake = Lake(root, storage_options=storage_options)
    # Files are encoded on the export's own writer threads: one encoding thread each keeps memory down.
    lake.storage.threads = 1
    report = ExportReport()
    source = _connect(db)
    try:
        found_any = False
        for kind, name in chosen.items():
            if not _table_exists(source, name):
                if kind in explicit:
                    raise ExportError(f"table {name!r} not found in the database")
                continue
            found_any = True
            where = lake.storage.url if isinstance(lake.storage, ObjectStorage) else str(lake.root)
            job = _Job(db, where, dict(storage_options or {}), kind, name, year, epoch_unit, batch_rows)
            _export_table(source, lake, job, symbol, report, client, max_tasks)
        if not found_any:
            raise ExportError(f"none of the tables {', '.join(chosen.values())} is in the database (use --table)")
    finally:
        source.close()
    if not report.ok:
        bad = [f for f in report.files if not f.ok]
        raise ExportError(f"row counts differ from the source for {len(bad)} file(s):\n{report.table()}")
    return report


@dataclass(frozen=True)
class _Job:
    """One table's export, as every task of it needs it (picklable: a Dask task carries it)."""

    db: str
    root: str
    # For an s3:// root (credentials included: they travel to the workers inside the task, never to disk).
    storage_options: dict[str, str]
    kind: str
    name: str
    year: int | None
    epoch_unit: str | None
    batch_rows: int


def _where(dialect: str, symbols: list[str] | None) -> tuple[str, tuple[Any, ...]]:
    """The WHERE clause (and its parameters) that keeps only ``symbols`` (all rows for None)."""
    if symbols is None:
        return "", ()
    marks = ", ".join("?" if dialect == "sqlite" else f"${i}" for i in range(1, len(symbols) + 1))
    return f" WHERE symbol IN ({marks})", tuple(symbols)


def _export_table(
    source: _Source,
    lake: Lake,
    job: _Job,
    symbol: str | None,
    report: ExportReport,
    client: Any,
    max_tasks: int | None,
) -> None:
    kind, name = job.kind, job.name
    schema = _core.lake_schema(kind)
    columns = _columns(source, name)
    missing = [f.name for f in schema if f.name not in columns and not f.nullable and f.name != "symbol"]
    if "symbol" not in columns:
        missing.insert(0, "symbol")
    if "timestamp" not in columns:
        missing.insert(0, "timestamp")
    if missing:
        raise ExportError(
            f"table {name!r} lacks column(s) {', '.join(dict.fromkeys(missing))} (has {', '.join(columns)})"
        )
    used = [f.name for f in schema if f.name in columns]
    extra = [c for c in columns if c not in used]
    notes: set[str] = set()
    if extra:
        notes.add(f"ignored column(s) {', '.join(extra)}")
    absent = [f.name for f in schema if f.name not in columns]
    if absent:
        notes.add(f"absent optional column(s) {', '.join(absent)} written as nulls")
    where, params = _where(source.dialect, None if symbol is None else [symbol])
    # A NULL key would only surface in the middle of the export, after other files were written: look first.
    for column in ("timestamp", "symbol"):
        nulls = _scalar(
            source,
            f"SELECT count(*) FROM {_quote(name)}{where}{' AND' if where else ' WHERE'} {_quote(column)} IS NULL",
            params,
        )
        if int(nulls):
            raise InvalidInputError(
                f"table {name!r} has {int(nulls):,} row(s) whose {column} is NULL; nothing was written", column=column
            )
    if client is None:
        read, counts = _stream_table(source, lake, job, used, where, params, notes)
    else:
        read, counts = _fan_out(source, job, used, where, params, notes, client, max_tasks)
    report.source_rows[name] = read
    total = _scalar(source, f"SELECT count(*) FROM {_quote(name)}{where}", params)
    if int(total) != read:
        raise ExportError(f"read {read:,} rows from {name!r} but it holds {int(total):,}")
    report.notes.extend(f"{name}: {note}" for note in sorted(notes))
    for (sym, period), rows in sorted(counts.items()):
        path = layout.file_path(lake.root, kind, sym, period)
        file_rows = footer(path, lake.storage.filesystem).num_rows if lake.storage.exists(path) else 0
        report.files.append(FileCheck(kind, sym, period, rows, file_rows))


def _groups(sizes: list[tuple[str, int]], count: int) -> list[list[str]]:
    """Sorted symbols cut into at most ``count`` contiguous groups of about equal row counts (a symbol is never
    split): a group closes before the symbol that would take it further past its share than it stays short of it."""
    total = sum(n for _, n in sizes)
    groups: list[list[str]] = []
    current: list[str] = []
    done = 0
    for sym, n in sizes:
        # In units of 1/count rows: the running total against the end of the current group's share.
        share_end, at = total * (len(groups) + 1), done * count
        if current and len(groups) < count - 1 and (at >= share_end or at + n * count - share_end > share_end - at):
            groups.append(current)
            current = []
        current.append(sym)
        done += n
    if current:
        groups.append(current)
    return groups


def _fan_out(
    source: _Source,
    job: _Job,
    used: list[str],
    where: str,
    params: tuple[Any, ...],
    notes: set[str],
    client: Any,
    max_tasks: int | None,
) -> tuple[int, dict[tuple[str, str], int]]:
    """Runs one table's export as Dask tasks, one per group of symbols, and adds up what they read."""
    rows = _query(
        source, f"SELECT symbol, count(*) AS n FROM {_quote(job.name)}{where} GROUP BY symbol", params, job.batch_rows
    )
    sizes = sorted((str(s), int(n)) for batch in rows for s, n in zip(*batch.to_pydict().values(), strict=True))
    count = max_tasks or 4 * max(1, sum(client.nthreads().values()))
    futures = [
        client.submit(_export_group, job, used, group, key=f"ticklake-export-{job.name}-{i}-{group[0]}", pure=False)
        for i, group in enumerate(_groups(sizes, count))
    ]
    read = 0
    counts: dict[tuple[str, str], int] = {}
    for task_read, task_counts, task_notes in client.gather(futures):
        read += task_read
        for key, n in task_counts.items():
            counts[key] = counts.get(key, 0) + n
        notes.update(task_notes)
    return read, counts


def _export_group(job: _Job, used: list[str], symbols: list[str]) -> tuple[int, dict[tuple[str, str], int], set[str]]:
    """A Dask task: exports the rows of ``symbols`` through its own connection into the lake at ``job.root``."""
    source = _connect(job.db)
    try:
        lake = Lake(job.root, storage_options=job.storage_options or None)
        lake.storage.threads = 1
        notes: set[str] = set()
        where, params = _where(source.dialect, symbols)
        read, counts = _stream_table(source, lake, job, used, where, params, notes)
        return read, counts, notes
    finally:
        source.close()


def _stream_table(
    source: _Source,
    lake: Lake,
    job: _Job,
    used: list[str],
    where: str,
    params: tuple[Any, ...],
    notes: set[str],
) -> tuple[int, dict[tuple[str, str], int]]:
    """Reads the rows ``where`` selects and writes them into the lake's files; returns the rows read and the rows
    per (symbol, period)."""
    kind, name, year, epoch_unit, batch_rows = job.kind, job.name, job.year, job.epoch_unit, job.batch_rows
    select = ", ".join(_quote(c) for c in used)
    metadata = {"source": f"database export ({source.dialect})", "source_table": name}

    # Files are written on two threads while the next batches are read (the Rust writer releases the GIL); at
    # most WRITES_IN_FLIGHT tables wait, so memory stays bounded.
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ticklake-export")
    inflight: deque[Future[object]] = deque()

    def publish(sym: str, table: pa.Table) -> object:
        return lake.write(table, kind, symbol=sym, metadata=metadata)

    def drain(limit: int) -> None:
        while len(inflight) > limit:
            inflight.popleft().result()

    def write(sym: str, period: str, tables: list[pa.Table], counts: dict[tuple[str, str], int]) -> None:
        if year is not None and not period.startswith(str(year)):
            return
        table = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
        inflight.append(pool.submit(publish, sym, table))
        counts[(sym, period)] = counts.get((sym, period), 0) + table.num_rows
        drain(WRITES_IN_FLIGHT)

    def stream(ordered: bool) -> tuple[int, dict[tuple[str, str], int]] | None:
        """Reads the table once; None when rows of a symbol are out of time order (then read again, ordered)."""
        order = " ORDER BY symbol, timestamp" if ordered else ""
        counts: dict[tuple[str, str], int] = {}
        buffers: dict[tuple[str, str], list[pa.Table]] = {}
        buffered = 0
        last: dict[str, int] = {}
        read = 0
        seen: dict[str, int] = {}  # symbol -> number of the last batch it appeared in

        def flush(key: tuple[str, str]) -> None:
            nonlocal buffered
            rows = buffers.pop(key)
            buffered -= sum(t.num_rows for t in rows)
            write(*key, rows, counts)

        for number, batch in enumerate(
            _query(source, f"SELECT {select} FROM {_quote(name)}{where}{order}", params, batch_rows)
        ):
            if batch.num_rows == 0:
                continue
            read += batch.num_rows
            index = batch.schema.get_field_index("timestamp")
            batch = batch.set_column(index, "timestamp", _timestamps(batch.column(index), epoch_unit, notes))
            if ordered:
                # ORDER BY sorts text timestamps as text, which is not time order when offsets differ: sort the
                # instants here (a later batch that goes back in time merges into the files already written).
                in_order = pa.Table.from_batches([batch]).sort_by([("symbol", "ascending"), ("timestamp", "ascending")])
                batch = in_order.combine_chunks().to_batches()[0]
            try:
                parts = _core.lake_partition(batch, kind, None)
            except InvalidInputError as err:
                if not ordered and err.column == "timestamp":
                    return None
                raise
            for sym, period, table in parts:
                first = int(table["timestamp"][0].cast(pa.int64()).as_py())
                if sym in last and (first < last[sym] or (first == last[sym] and kind != "trades")):
                    if not ordered:
                        return None
                    if first == last[sym]:
                        raise InvalidInputError(
                            f"duplicate timestamp for symbol {sym} in table {name!r}", column="timestamp"
                        )
                last[sym] = max(last.get(sym, first), int(table["timestamp"][-1].cast(pa.int64()).as_py()))
                seen[sym] = number
                # Earlier periods of this symbol are complete: rows come in time order per symbol.
                for key in [k for k in buffers if k[0] == sym and k[1] != period]:
                    flush(key)
                # A copy, so the buffer does not keep the whole batch it was sliced from alive.
                buffers.setdefault((sym, period), []).append(table.take(np.arange(table.num_rows)))
                buffered += table.num_rows
            # Symbols absent from the last two batches are probably done (symbol-major tables): write them now.
            # If one comes back after all, its next write merges into the file.
            for key in [k for k in buffers if seen[k[0]] < number - 1]:
                flush(key)
            while buffered > MAX_BUFFERED_ROWS:
                # Bounded memory: write the largest buffer now; a later write of the same file merges into it.
                flush(max(buffers, key=lambda k: sum(t.num_rows for t in buffers[k])))
        for key in sorted(buffers):
            flush(key)
        drain(0)
        return read, counts

    try:
        result = stream(ordered=False)
        drain(0)
        if result is None:
            notes.add("rows were not in time order per symbol: read again with ORDER BY symbol, timestamp")
            result = stream(ordered=True)
    finally:
        for future in inflight:
            future.cancel()
        pool.shutdown(wait=True)
    if result is None:  # pragma: no cover - an ordered read never asks for another
        raise ExportError(f"could not read {name!r} in time order")
    return result
