"""Backfills from Alpaca into the lake (SPEC §6): resumable, concurrent, rate-limited.

Work is split into units of (symbol, New York trading day) (daily bars from the API: (symbol, month)). Each unit's
pages are parsed in Rust and, for 1s bars and quotes, aggregated as they arrive, so memory is bounded by a page
plus one day's output. A finished unit is staged durably under ``<root>/.staging/``; when every unit of a
(symbol, month) file is staged, the month file is written once, replacing exactly the imported range, and the units
are marked done. An interrupted import resumes without downloading finished units again, and re-running a finished
import makes no request.

Example:
    >>> from ticklake.importer import import_api
    >>> report = import_api("1s", ["AAPL", "BRK.B"], "2024-01-02", "2024-01-31", feed="sip")
    >>> report.requests
    1234
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ticklake import _core, layout
from ticklake.client import AlpacaClient
from ticklake.exceptions import InvalidInputError
from ticklake.kernels import BarAggregator, QuoteSampler
from ticklake.lake import FileWrite, Lake
from ticklake.sessions import trading_days

ImportKind = Literal["1s", "1m", "1d", "quotes", "trades"]
IMPORT_KINDS: tuple[str, ...] = ("1s", "1m", "1d", "quotes", "trades")
FEEDS: tuple[str, ...] = ("sip", "iex", "boats", "otc")
ADJUSTMENTS: tuple[str, ...] = ("raw", "split", "dividend", "spin-off", "all")
NY = "America/New_York"


@dataclass(frozen=True)
class Unit:
    """One unit of work: one symbol over ``[start_ns, end_ns)`` (whole New York days)."""

    symbol: str
    label: str
    start_ns: int
    end_ns: int
    period: str


@dataclass
class ImportReport:
    """What an import did. ``downloaded`` units were fetched now, ``reused`` were staged by an earlier run,
    ``skipped`` were already in the lake from an earlier run."""

    kind: str
    symbols: list[str]
    units: int = 0
    downloaded: int = 0
    reused: int = 0
    skipped: int = 0
    requests: int = 0
    retries: int = 0
    pages: int = 0
    rows: int = 0
    seconds: float = 0.0
    files: list[FileWrite] = field(default_factory=list)

    def summary(self) -> str:
        rate = self.requests / self.seconds * 60 if self.seconds > 0 else 0.0
        return (
            f"{self.kind} {','.join(self.symbols)}: {self.units} units ({self.downloaded} downloaded, "
            f"{self.reused} resumed from staging, {self.skipped} already done), {self.requests} requests "
            f"({self.retries} retries, {rate:.0f}/min), {self.pages} pages, {self.rows:,} API rows, "
            f"{len(self.files)} files written in {self.seconds:.1f} s"
        )


def _date(value: Any, what: str) -> dt.date:
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as err:
        raise InvalidInputError(f"{what} {value!r} is not a date (YYYY-MM-DD)") from err
    if pd.isna(stamp) or stamp != stamp.normalize() or stamp.tzinfo is not None:
        raise InvalidInputError(f"{what} {value!r} must be a plain New York date (YYYY-MM-DD)")
    day: dt.date = stamp.date()
    return day


def _ny_midnight(day: dt.date) -> int:
    return int(pd.Timestamp(day).tz_localize(NY).as_unit("ns").value)


def lake_kind(kind: str) -> str:
    """The lake kind an import kind is stored as.

    Example:
        >>> lake_kind("1m")
        'bars/1m'
    """
    return kind if kind in ("quotes", "trades") else layout.bar_kind(kind)


def plan_units(kind: str, symbols: list[str], start: dt.date, end: dt.date, from_trades: bool) -> list[Unit]:
    """The units of an import, in symbol then time order.

    Example:
        >>> [u.label for u in plan_units("1s", ["AAPL"], dt.date(2024, 11, 27), dt.date(2024, 12, 2), False)]
        ['2024-11-27', '2024-11-29', '2024-12-02']
    """
    days = trading_days(start, end)
    target = lake_kind(kind)
    units = []
    for symbol in symbols:
        if kind == "1d" and not from_trades:
            by_month: dict[str, list[dt.date]] = defaultdict(list)
            for day in days:
                by_month[f"{day:%Y-%m}"].append(day)
            for month, month_days in by_month.items():
                lo = _ny_midnight(month_days[0])
                hi = _ny_midnight(month_days[-1] + dt.timedelta(days=1))
                units.append(Unit(symbol, month, lo, hi, f"{month_days[0]:%Y}"))
        else:
            for day in days:
                lo = _ny_midnight(day)
                hi = _ny_midnight(day + dt.timedelta(days=1))
                period = next(layout.periods(target, lo, lo + 1))
                units.append(Unit(symbol, day.isoformat(), lo, hi, period))
    return units


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durably(table: pa.Table, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    pq.write_table(table, temp, compression="zstd")
    with open(temp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(temp, target)
    _fsync_dir(target.parent)


class _Job:
    """One import's staging area: ``<root>/.staging/<job>/<SYMBOL>/<label>.parquet`` (staged) and ``.done``."""

    def __init__(self, root: Path, key: str) -> None:
        self.dir = root / ".staging" / key

    def staged(self, unit: Unit) -> Path:
        return self.dir / unit.symbol / f"{unit.label}.parquet"

    def done(self, unit: Unit) -> Path:
        return self.dir / unit.symbol / f"{unit.label}.done"

    def mark_done(self, units: Iterable[Unit]) -> None:
        units = list(units)
        for unit in units:
            marker = self.done(unit)
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        for directory in {self.done(u).parent for u in units}:
            _fsync_dir(directory)
        for unit in units:
            with contextlib.suppress(FileNotFoundError):
                self.staged(unit).unlink()


class _Fetcher:
    """Downloads one unit and reduces it to what the lake stores."""

    def __init__(
        self, client: AlpacaClient, kind: str, feed: str, adjustment: str, from_trades: bool, asof: str | None
    ):
        self.client, self.kind, self.feed = client, kind, feed
        self.adjustment, self.from_trades, self.asof = adjustment, from_trades, asof

    def __call__(self, unit: Unit) -> pa.Table:
        # The API's end is inclusive: stop 1 ns before the next day so a trade at midnight is never fetched twice.
        span = (unit.start_ns, unit.end_ns - 1)
        common: dict[str, Any] = {"feed": self.feed, "asof": self.asof}
        if self.kind in ("1m", "1d") and not self.from_trades:
            timeframe = "1Min" if self.kind == "1m" else "1Day"
            pages = self.client.pages(
                "bars",
                unit.symbol,
                *span,
                timeframe=timeframe,
                adjustment=self.adjustment,
                daily_labels=self.kind == "1d",
                **common,
            )
            tables = [t for t, _ in pages]
            return pa.concat_tables(tables) if tables else _core.lake_schema(lake_kind(self.kind)).empty_table()
        if self.kind == "quotes":
            sampler = QuoteSampler(symbol=unit.symbol)
            parts = [sampler.push(t) for t, _ in self.client.pages("quotes", unit.symbol, *span, **common)]
            return pa.concat_tables([*parts, sampler.finish()])
        pages = self.client.pages("trades", unit.symbol, *span, **common)
        if self.kind == "trades":
            tables = [t for t, _ in pages]
            return pa.concat_tables(tables) if tables else _core.lake_schema("trades").empty_table()
        aggregator = BarAggregator(self.kind, symbol=unit.symbol, conditions="alpaca")
        parts = [aggregator.push(t) for t, _ in pages]
        return pa.concat_tables([*parts, aggregator.finish()])


def _job_key(kind: str, feed: str, adjustment: str, from_trades: bool, asof: str | None) -> str:
    raw = f"{kind}-{feed}-{adjustment if kind in ('1m', '1d') and not from_trades else 'na'}"
    raw += f"-{'fromtrades' if from_trades else 'api'}-asof{asof or 'default'}"
    return re.sub(r"[^A-Za-z0-9.\-]", "_", raw)


def import_api(
    kind: ImportKind,
    symbols: str | Iterable[str],
    start: Any,
    end: Any,
    *,
    feed: str = "sip",
    adjustment: str = "raw",
    from_trades: bool = False,
    asof: str | None = None,
    root: str | os.PathLike[str] | None = None,
    workers: int = 4,
    rate: float = 200,
    quiet: bool = False,
    force: bool = False,
    client: AlpacaClient | None = None,
) -> ImportReport:
    """Imports Alpaca data for symbols and New York dates ``start``..``end`` (both inclusive) into the lake.

    Args:
        kind: ``1s`` (bars built from trades with Alpaca's rules), ``1m``/``1d`` (Alpaca's bars, daily ones
            relabelled to the date at 00:00 UTC; or built from trades with ``from_trades``), ``quotes`` (best quote
            per second, sizes in shares), ``trades`` (raw trades, ``trades/SYMBOL.YYYY-MM.parquet``).
        symbols: ``"AAPL,BRK.B"`` or a list.
        feed: ``sip``, ``iex``, ``boats`` or ``otc`` (sent explicitly and recorded in the files).
        adjustment: bars from the API only: ``raw``, ``split``, ``dividend``, ``spin-off``, ``all``.
        asof: the API's symbol-rename date (``YYYY-MM-DD`` or ``-``); default: the API's default.
        workers: units downloaded concurrently. ``rate``: requests per minute (the plan's limit).
        quiet: no progress bar. ``force``: download units an earlier run finished, again.
        client: an :class:`AlpacaClient` to use (default: one from the environment).

    Returns:
        An :class:`ImportReport`.

    Raises:
        InvalidInputError: bad kind, symbols, dates or options.
        AuthError, ApiError: the API refused (its message is quoted); staged units are kept for a resume.

    Example:
        >>> import_api("quotes", "AAPL", "2024-01-02", "2024-01-05", feed="iex", quiet=True).files[0].path.name
        'AAPL.2024-01.parquet'
    """
    started = time.perf_counter()
    if kind not in IMPORT_KINDS:
        raise InvalidInputError(f"unknown kind {kind!r}: use one of {', '.join(IMPORT_KINDS)}")
    if feed not in FEEDS:
        raise InvalidInputError(f"unknown feed {feed!r}: use one of {', '.join(FEEDS)}")
    if any(part not in ADJUSTMENTS for part in adjustment.split(",")):
        raise InvalidInputError(f"unknown adjustment {adjustment!r}: use {', '.join(ADJUSTMENTS)} (comma-joined)")
    if from_trades and kind not in ("1m", "1d"):
        raise InvalidInputError("--from-trades applies to 1m and 1d bars (1s bars always come from trades)")
    names = [s.strip() for s in symbols.split(",")] if isinstance(symbols, str) else [s.strip() for s in symbols]
    if not names or not all(names):
        raise InvalidInputError("no symbols given")
    for name in names:
        layout.check_symbol(name)
    first, last = _date(start, "START"), _date(end, "END")
    if last < first:
        raise InvalidInputError(f"END {last} is before START {first}")
    if workers < 1:
        raise InvalidInputError("workers must be at least 1")

    lake = Lake(root)
    job = _Job(lake.root, _job_key(kind, feed, adjustment, from_trades, asof))
    units = plan_units(kind, names, first, last, from_trades)
    report = ImportReport(kind, names, units=len(units))
    groups: dict[tuple[str, str], list[Unit]] = defaultdict(list)
    for unit in units:
        groups[(unit.symbol, unit.period)].append(unit)
    pending: dict[tuple[str, str], set[Unit]] = {}
    todo: list[Unit] = []
    for key, members in groups.items():
        waiting = set()
        for unit in members:
            if not force and job.done(unit).exists():
                report.skipped += 1
                continue
            waiting.add(unit)
            if not force and job.staged(unit).exists():
                report.reused += 1
            else:
                todo.append(unit)
        if waiting:
            pending[key] = waiting
    metadata = {
        "source": "alpaca",
        "feed": feed,
        "asof": asof or "api default",
        "size_unit": "shares",
    }
    if kind in ("1m", "1d") and not from_trades:
        metadata["adjustment"] = adjustment
        metadata["conditions"] = "alpaca bars"
    elif kind != "quotes":
        metadata["conditions"] = "alpaca" if kind != "trades" else "raw"
        metadata["adjustment"] = "raw"
    if kind == "quotes":
        metadata["size_note"] = "round lots converted to shares before 2025-11-03"

    def publish(key: tuple[str, str]) -> None:
        members = groups[key]
        waiting = pending.pop(key)
        tables = [pq.read_table(job.staged(u)) for u in members if u in waiting]
        table = pa.concat_tables(tables, promote_options="permissive")
        window = (
            pd.Timestamp(min(u.start_ns for u in waiting), tz="UTC"),
            pd.Timestamp(max(u.end_ns for u in waiting), tz="UTC"),
        )
        written = lake.write(lake_kind(kind), table, replace=window, symbol=key[0], metadata=metadata)
        report.files.extend(w for w in written if w.status != "unchanged")
        job.mark_done(waiting)

    # Groups whose units were all staged by an earlier run can be published at once.
    todo_keys = {(u.symbol, u.period) for u in todo}
    for key in [k for k in pending if k not in todo_keys]:
        publish(key)
    if not todo:
        report.seconds = time.perf_counter() - started
        return report

    own_client = client is None
    api = client if client is not None else AlpacaClient(rate=rate)
    fetch = _Fetcher(api, kind, feed, adjustment, from_trades, asof)
    remaining = {key: {u for u in todo if (u.symbol, u.period) == key} for key in todo_keys}
    progress = _progress(len(todo), quiet)
    base = (api.stats.requests, api.stats.retries, api.stats.pages, api.stats.rows)

    def work(unit: Unit) -> Unit:
        _write_durably(fetch(unit), job.staged(unit))
        return unit

    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ticklake-import") as pool:
            futures: set[Future[Unit]] = {pool.submit(work, u) for u in todo}
            try:
                while futures:
                    done, futures = wait(futures, return_when=FIRST_COMPLETED)
                    for future in done:
                        unit = future.result()
                        report.downloaded += 1
                        key = (unit.symbol, unit.period)
                        remaining[key].discard(unit)
                        if not remaining[key]:
                            publish(key)
                        progress.update(api, started)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    finally:
        progress.close()
        report.requests = api.stats.requests - base[0]
        report.retries = api.stats.retries - base[1]
        report.pages = api.stats.pages - base[2]
        report.rows = api.stats.rows - base[3]
        report.seconds = time.perf_counter() - started
        if own_client:
            api.close()
    return report


class _progress:
    """A tqdm bar of units with pages, rows and the request rate; nothing when quiet."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.bar: Any = None
        if not quiet:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="day", desc="import", file=sys.stderr, dynamic_ncols=True)

    def update(self, client: AlpacaClient, started: float) -> None:
        if self.bar is None:
            return
        elapsed = max(time.perf_counter() - started, 1e-9)
        stats = client.stats
        self.bar.set_postfix(
            pages=stats.pages, rows=f"{stats.rows:,}", req_per_min=f"{stats.requests / elapsed * 60:.0f}", refresh=False
        )
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
