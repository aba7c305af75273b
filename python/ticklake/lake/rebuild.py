"""Rebuilding bars from the raw trades archive: one (symbol, month) trades file at a time, in-process or on Dask.

A *unit* is one trades file (``trades/AAPL.2024-01.parquet``). Its trades stream through
:class:`ticklake.BarAggregator` one record batch at a time (memory stays at one batch plus the month's bars) and
the bars are written with ``lake.write(bars, kind, replace=<the unit's window>, symbol=...)``: one atomic upsert
per bar file, replacing exactly the bars that month's trades can make. Running a unit twice gives the same files,
so a job killed anywhere (a worker, the client) converges when run again.

Units are grouped into at most ``max_tasks`` tasks (10,000 symbols x 10 years = 1.2M units become 2,000 tasks of
600), so a Dask graph stays small. Any bar interval can be rebuilt: ``1s``, ``1m`` and ``1d`` into their folders,
any other interval of whole seconds under a day (``5s``, ``15m``, ``1h``) into ``bars/<interval>/`` (monthly files,
the 1s bars' schema, ``vwap`` from one minute up).

Example:
    >>> report = lake.rebuild("1m", "AAPL,MSFT", "2024-01-01", "2024-03-31")
    >>> report.summary()
    'bars/1m: 6 unit(s) in 1 task(s), 4,200,000 trades -> 97,440 bars in 3.10 s (1,354,839 trades/s)'
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import pyarrow as pa

from ticklake import _core
from ticklake.exceptions import InvalidInputError, MissingExtraError
from ticklake.kernels import BarAggregator
from ticklake.lake import kinds, layout
from ticklake.lake.scan import Scan, to_frame
from ticklake.lake.storage import LocalStorage, ObjectStorage
from ticklake.sessions import overlaps, utc_range

#: The install line of the Dask extra.
DASK_EXTRA = "Dask needs the dask extra: pip install 'ticklake[dask]'"
#: Tasks a job is cut into at most (units are grouped evenly).
DEFAULT_MAX_TASKS = 2_000
#: The trades columns the bar kernel reads.
TRADE_COLUMNS = ["symbol", "timestamp", "price", "size", "conditions", "tape", "update"]
#: Footer provenance of rebuilt bar files.
REBUILD_METADATA = {"source": "trades"}


class LakeLike(Protocol):
    """What a rebuild needs of a :class:`ticklake.Lake` (kept as a protocol: this module sits below the facade)."""

    def scan(
        self,
        kind: str,
        symbols: str | Iterable[str],
        start: Any = ...,
        end: Any = ...,
        *,
        columns: Sequence[str] | None = ...,
        tz: str = ...,
        session: Any = ...,
    ) -> Scan: ...

    def write(
        self,
        data: Any,
        kind: str,
        *,
        replace: Any = ...,
        symbol: str | None = ...,
        metadata: Mapping[str, str] | None = ...,
    ) -> Sequence[Any]: ...


def require_dask() -> None:
    """Raises :class:`MissingExtraError` with the install line when ``dask.dataframe`` or ``distributed`` is missing.

    Example:
        >>> require_dask()
    """
    import importlib

    for module in ("dask.dataframe", "distributed"):
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise MissingExtraError(DASK_EXTRA) from err


@dataclass(frozen=True)
class UnitResult:
    """What rebuilding one (symbol, month) trades file did: ``trades`` read, ``bars`` written, and the status of
    each bar file written (``written``, ``unchanged`` or ``removed``).

    Example:
        >>> lake.rebuild("1m", "AAPL", "2024-01-01", "2024-01-31").units[0]
        UnitResult(symbol='AAPL', period='2024-01', trades=350000, bars=16240, statuses=('written',))
    """

    symbol: str
    period: str
    trades: int
    bars: int
    statuses: tuple[str, ...]


@dataclass
class RebuildReport:
    """The outcome of :meth:`ticklake.Lake.rebuild`.

    Example:
        >>> report = lake.rebuild("1d")
        >>> report.trades, report.bars
        (4200000, 120)
    """

    interval: str
    kind: str
    tasks: int
    seconds: float
    units: list[UnitResult] = field(default_factory=list)

    @property
    def trades(self) -> int:
        """Trades read, over every unit."""
        return sum(u.trades for u in self.units)

    @property
    def bars(self) -> int:
        """Bars written, over every unit."""
        return sum(u.bars for u in self.units)

    def summary(self) -> str:
        """One line: units, tasks, trades, bars, time and throughput.

        Example:
            >>> lake.rebuild("1m").summary()
            'bars/1m: 6 unit(s) in 1 task(s), 4,200,000 trades -> 97,440 bars in 3.10 s (1,354,839 trades/s)'
        """
        rate = self.trades / self.seconds if self.seconds > 0 else 0.0
        return (
            f"{self.kind}: {len(self.units)} unit(s) in {self.tasks} task(s), {self.trades:,} trades -> "
            f"{self.bars:,} bars in {self.seconds:.2f} s ({rate:,.0f} trades/s)"
        )


def bar_kind(interval: str) -> kinds.Kind:
    """The lake kind rebuilt for ``interval``: ``1s``, ``1m``, ``1d``, any other interval of whole seconds under a
    day (``5s``, ``15m``, ``1h``: folder ``bars/<interval>``), or a folder name.

    Example:
        >>> bar_kind("1m").folder, bar_kind("5s").folder
        ('bars/1m', 'bars/5s')

    Raises:
        InvalidInputError: an interval the lake has no kind for (``2d``), or another spelling of one (``60s``).
    """
    try:
        return kinds.bar_kind(interval)
    except InvalidInputError as err:
        raise InvalidInputError(f"cannot rebuild {interval!r} bars: {err}") from None


def plan(
    storage: LocalStorage | ObjectStorage,
    symbols: str | Iterable[str] | None = None,
    start: Any = None,
    end: Any = None,
) -> list[tuple[str, str]]:
    """The (symbol, month) trades files a rebuild reads, sorted: every file under ``trades/``, or those of
    ``symbols`` whose month overlaps New York dates ``start``..``end`` (a bare date as ``end`` means through it).

    Example:
        >>> plan(lake.storage, "AAPL", "2024-01-01", "2024-02-29")
        [('AAPL', '2024-01'), ('AAPL', '2024-02')]
    """
    wanted = None if symbols is None else set(layout.parse_symbols(symbols))
    lo, hi = utc_range(start, end, "America/New_York")
    units = []
    for path in storage.files("trades"):
        name = layout.parse_name(path.name)
        if name is None or (wanted is not None and name.symbol not in wanted):
            continue
        if overlaps(layout.period_bounds("trades", name.period), lo, hi):
            units.append((name.symbol, name.period))
    return sorted(units)


def batches(units: Sequence[tuple[str, str]], max_tasks: int) -> list[list[tuple[str, str]]]:
    """``units`` cut into at most ``max_tasks`` consecutive groups of near-equal size.

    Example:
        >>> [len(b) for b in batches([("A", "2024-01")] * 7, 3)]
        [3, 3, 1]
    """
    if max_tasks < 1:
        raise InvalidInputError(f"max_tasks must be at least 1, got {max_tasks}")
    size = max(1, math.ceil(len(units) / max_tasks))
    return [list(units[i : i + size]) for i in range(0, len(units), size)]


def replace_window(kind: kinds.Kind, period: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The bars one month of trades can make, as a ``replace`` window: the month's New York dates for intraday
    bars, and their labels (each date 00:00 UTC) for daily bars.

    Example:
        >>> replace_window(kinds.of("1d"), "2024-01")
        (Timestamp('2024-01-01 00:00:00+0000', tz='UTC'), Timestamp('2024-02-01 00:00:00+0000', tz='UTC'))
    """
    if kind.yearly:
        first = pd.Timestamp(f"{period}-01", tz="UTC")
        return first, first + pd.offsets.MonthBegin(1)
    lo, hi = layout.period_bounds("trades", period)
    return pd.Timestamp(lo, unit="ns", tz="UTC"), pd.Timestamp(hi, unit="ns", tz="UTC")


def rebuild_unit(lake: LakeLike, interval: str, symbol: str, period: str) -> UnitResult:
    """Rebuilds the ``interval`` bars of one trades file: streams its record batches through the bar kernel and
    writes the bars, replacing that month's stored bars of the symbol (one atomic upsert per bar file).

    Example:
        >>> rebuild_unit(lake, "1m", "AAPL", "2024-01").statuses
        ('written',)
    """
    kind = bar_kind(interval)
    lo, hi = layout.period_bounds("trades", period)
    start, end = pd.Timestamp(lo, unit="ns", tz="UTC"), pd.Timestamp(hi, unit="ns", tz="UTC")
    aggregator = BarAggregator(kind.short, symbol=symbol, threads=1)
    parts, trades = [], 0
    for batch in lake.scan("trades", symbol, start, end, columns=TRADE_COLUMNS).batches():
        trades += batch.num_rows
        parts.append(aggregator.push(batch))
    parts.append(aggregator.finish())
    bars = pa.concat_tables(parts)
    written = lake.write(
        bars, kind.folder, replace=replace_window(kind, period), symbol=symbol, metadata=REBUILD_METADATA
    )
    return UnitResult(symbol, period, trades, bars.num_rows, tuple(w.status for w in written))


def run_batch(lake: LakeLike, interval: str, units: Sequence[tuple[str, str]]) -> list[UnitResult]:
    """One task: :func:`rebuild_unit` on each (symbol, month) of ``units``, in order.

    Example:
        >>> [r.period for r in run_batch(lake, "1m", [("AAPL", "2024-01"), ("AAPL", "2024-02")])]
        ['2024-01', '2024-02']
    """
    return [rebuild_unit(lake, interval, symbol, period) for symbol, period in units]


def _progress(total: int, show: bool | None) -> Any:
    from tqdm import tqdm

    disable = not sys.stderr.isatty() if show is None else not show
    return tqdm(total=total, unit="task", desc="rebuild", disable=disable, dynamic_ncols=True)


def rebuild(
    lake: LakeLike,
    storage: LocalStorage | ObjectStorage,
    interval: str,
    symbols: str | Iterable[str] | None = None,
    start: Any = None,
    end: Any = None,
    *,
    client: Any = None,
    threads: int | None = None,
    max_tasks: int = DEFAULT_MAX_TASKS,
    progress: bool | None = None,
) -> RebuildReport:
    """The job behind :meth:`ticklake.Lake.rebuild` (see there): plan, batch, run in-process or on ``client``.

    Example:
        >>> rebuild(lake, lake.storage, "1m", "AAPL").summary()
        'bars/1m: 2 unit(s) in 2 task(s), 700,000 trades -> 32,480 bars in 0.61 s (1,147,541 trades/s)'
    """
    kind = bar_kind(interval)
    if client is not None:
        require_dask()
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise InvalidInputError(f"threads must be a positive int or None, got {threads!r}")
    started = time.perf_counter()
    groups = batches(plan(storage, symbols, start, end), max_tasks)
    report = RebuildReport(interval=kind.short, kind=kind.folder, tasks=len(groups), seconds=0.0)
    with _progress(len(groups), progress) as bar:
        totals = [0, 0]  # trades, bars: running sums (the report's properties re-add every unit)

        def done(results: list[UnitResult]) -> None:
            report.units.extend(results)
            totals[0] += sum(u.trades for u in results)
            totals[1] += sum(u.bars for u in results)
            elapsed = max(time.perf_counter() - started, 1e-9)
            bar.set_postfix_str(f"{totals[0]:,} trades, {totals[1]:,} bars, {totals[0] / elapsed:,.0f} trades/s")
            bar.update(1)

        if client is not None:
            from distributed import as_completed

            futures = client.map(run_batch, [lake] * len(groups), [kind.short] * len(groups), groups, pure=False)
            try:
                for future in as_completed(futures):  # type: ignore[no-untyped-call]
                    done(future.result())
            except BaseException:
                # A task that raised (a damaged file, say) or an interrupt: stop the rest; what was published
                # stays, and a rerun finishes the job.
                client.cancel(futures)
                raise
        else:
            workers = min(threads or _core.default_threads(), max(1, len(groups)))
            if workers == 1:
                for group in groups:
                    done(run_batch(lake, kind.short, group))
            else:
                with ThreadPoolExecutor(workers) as pool:
                    for results in pool.map(lambda g: run_batch(lake, kind.short, g), groups):
                        done(results)
    report.units.sort(key=lambda u: (u.symbol, u.period))
    report.seconds = time.perf_counter() - started
    return report


def to_dask(scan: Scan) -> Any:
    """A Dask DataFrame of a :class:`~ticklake.lake.scan.Scan`, one partition per lake file (the job behind
    :meth:`ticklake.Lake.to_dask`).

    Example:
        >>> to_dask(lake.scan("1m", "AAPL")).npartitions
        2
    """
    require_dask()
    import dask
    import dask.dataframe as dd

    meta = to_frame(scan.schema.empty_table())
    parts = scan.parts()
    # Dask would turn the string columns into ``string[pyarrow]``; the partitions keep the dtypes of ``to_frame``, so
    # the computed frame is the one ``Scan.to_pandas`` gives.
    with dask.config.set({"dataframe.convert-string": False}):
        if not parts:
            return dd.from_pandas(meta, npartitions=1)  # type: ignore[no-untyped-call]
        return dd.from_map(_ReadPart(scan), parts, meta=meta, enforce_metadata=False)  # type: ignore[no-untyped-call]


class _ReadPart:
    """One partition of :func:`to_dask`: a lake file's rows of the scan, as pandas (picklable for workers)."""

    def __init__(self, scan: Scan) -> None:
        self.scan = scan

    def __call__(self, part: tuple[str, Path]) -> pd.DataFrame:
        return self.scan.read_part_pandas(*part)
