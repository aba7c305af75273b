"""Backfills from Alpaca into the lake (SPEC §6): the fewest requests, at the account's rate limit, resumable.

An import is planned by :mod:`ticklake.planner` (multi-symbol bar chains, trade windows cut from 1Min bar counts,
adaptive quote windows), run with as many requests in flight as the rate needs (:class:`ticklake.client.InFlight`),
and staged request by request in :class:`ticklake.staging.Job` (parsing, aggregation and staging run in Rust with
the GIL released, on the download threads). A lake file (symbol, period) is published once every wanted day of it
is staged, in one atomic write that replaces exactly those days: a day is only ever replaced by its own downloaded
rows, never by a wider range. A killed import resumes without downloading what is staged, and re-running a
finished import makes no request. Whatever the plan, the lake equals the one-symbol-per-day import
(``strategy="per-day"``) row for row and byte for byte.

Example:
    >>> from ticklake.importer import import_api
    >>> report = import_api("1s", ["AAPL", "BRK.B"], "2024-01-02", "2024-01-31", feed="sip")
    >>> report.requests
    1234
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ticklake import _core, _faults
from ticklake.client import AlpacaClient
from ticklake.exceptions import InvalidInputError
from ticklake.kernels import BarAggregator, QuoteSampler
from ticklake.lake import kinds, layout
from ticklake.lake.facade import FileWrite, Lake
from ticklake.lake.storage import ObjectStorage
from ticklake.planner import (
    PAGE_LIMIT,
    TRADE_FILL,
    MinuteCounts,
    Request,
    in_flight_needed,
    plan_bars,
    plan_per_day,
    plan_quotes,
    plan_trades,
    split_remaining,
)
from ticklake.sessions import trading_days
from ticklake.staging import Job, Piece, Spans, merge_spans, staging_folder, subtract_spans

ImportKind = Literal["1s", "1m", "1d", "quotes", "trades"]
Strategy = Literal["packed", "per-day"]
IMPORT_KINDS: tuple[str, ...] = tuple(k.short for k in kinds.ALL)
STRATEGIES: tuple[str, ...] = ("packed", "per-day")
FEEDS: tuple[str, ...] = ("sip", "iex", "boats", "otc")
ADJUSTMENTS: tuple[str, ...] = ("raw", "split", "dividend", "spin-off", "all")
NY = "America/New_York"
NS_PER_DAY = 86_400 * 10**9
PUBLISH_THREADS = 4


@dataclass
class ImportReport:
    """What an import did. ``requests`` counts every request sent (``by_purpose``: ``data``, ``counts`` for trade
    planning, ``probe``); ``rate`` is requests per minute from the first request to the last answer, against
    ``limit`` (the pace the client kept); ``skipped_days`` were published by an earlier run; ``reused`` pieces were
    staged by an earlier run."""

    kind: str
    symbols: list[str]
    days: int = 0
    skipped_days: int = 0
    reused: int = 0
    requests: int = 0
    by_purpose: dict[str, int] = field(default_factory=dict)
    planned: int = 0
    retries: int = 0
    rate_limited: int = 0
    pages: int = 0
    rows: int = 0
    duplicates: int = 0
    conflicts: int = 0
    rate: float = 0.0
    limit: float = 0.0
    peak_in_flight: int = 0
    seconds: float = 0.0
    files: list[FileWrite] = field(default_factory=list)

    def summary(self) -> str:
        """One paragraph for the CLI.

        Example:
            >>> print(report.summary())  # doctest: +ELLIPSIS
            1s AAPL: 3 symbol-days (0 already done), 12 requests ...
        """
        purposes = ", ".join(f"{n} {p}" for p, n in sorted(self.by_purpose.items()))
        text = (
            f"{self.kind} {','.join(self.symbols[:10])}{' ...' if len(self.symbols) > 10 else ''}: {self.days} "
            f"symbol-days ({self.skipped_days} already done), {self.requests} requests"
            f"{f' ({purposes})' if purposes else ''}, {self.retries} retries, {self.rate_limited} rate-limited; "
            f"{self.rate:,.0f}/min of {self.limit:,.0f}/min allowed, at most {self.peak_in_flight} in flight; "
            f"{self.pages} pages, {self.rows:,} API rows"
        )
        if self.duplicates or self.conflicts:
            text += f" ({self.duplicates} repeated trades dropped, {self.conflicts} reused trade ids kept)"
        return text + f"; {len(self.files)} files written in {self.seconds:.1f} s"


def _date(value: Any, what: str) -> dt.date:
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError) as err:
        raise InvalidInputError(f"{what} {value!r} is not a date (YYYY-MM-DD)") from err
    if pd.isna(stamp) or stamp != stamp.normalize() or stamp.tzinfo is not None:
        raise InvalidInputError(f"{what} {value!r} must be a plain New York date (YYYY-MM-DD)")
    day: dt.date = stamp.date()
    return day


def _ny_midnight(day: dt.date) -> int:
    return int(pd.Timestamp(day).tz_localize(NY).as_unit("ns").value)


def _utc_midnight(day: dt.date) -> int:
    return int(pd.Timestamp(day).tz_localize("UTC").as_unit("ns").value)


def _job_key(kind: str, feed: str, adjustment: str, from_trades: bool, asof: str | None) -> str:
    raw = f"{kind}-{feed}-{adjustment if kind in ('1m', '1d') and not from_trades else 'na'}"
    raw += f"-{'fromtrades' if from_trades else 'api'}-asof{asof or 'default'}"
    return re.sub(r"[^A-Za-z0-9.\-]", "_", raw)


def _symbols(symbols: str | Iterable[str]) -> list[str]:
    return sorted(layout.parse_symbols(symbols))


class _Days:
    """The trading days of an import: their New York bounds, their lake period, and the runs they form."""

    def __init__(self, days: Iterable[dt.date], target: str) -> None:
        self.days = sorted(set(days))
        self.index = {d: i for i, d in enumerate(self.days)}
        self.starts = np.array([_ny_midnight(d) for d in self.days], np.int64)
        self.ends = np.array([_ny_midnight(d + dt.timedelta(days=1)) for d in self.days], np.int64)
        self.target = target
        self._periods: dict[dt.date, str] = {}

    def bounds(self, day: dt.date) -> tuple[int, int]:
        i = self.index[day]
        return int(self.starts[i]), int(self.ends[i])

    def period(self, day: dt.date) -> str:
        if day not in self._periods:
            lo = _utc_midnight(day) if kinds.of(self.target).yearly else self.bounds(day)[0]
            self._periods[day] = next(layout.periods(self.target, lo, lo + 1))
        return self._periods[day]

    def meeting(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """Whole trading days that meet ``[lo, hi)`` (the planner's ``day_bounds``)."""
        a = int(np.searchsorted(self.ends, lo, side="right"))
        b = int(np.searchsorted(self.starts, hi, side="left"))
        return [(int(self.starts[i]), int(self.ends[i])) for i in range(a, b)]

    def count(self, lo: int, hi: int) -> int:
        return len(self.meeting(lo, hi))

    def runs(self, days: Iterable[dt.date]) -> list[tuple[str, list[dt.date]]]:
        """``days`` as (period, consecutive trading days within it) runs."""
        out: list[tuple[str, list[dt.date]]] = []
        for day in sorted(days):
            period = self.period(day)
            if out and out[-1][0] == period and self.index[out[-1][1][-1]] + 1 == self.index[day]:
                out[-1][1].append(day)
            else:
                out.append((period, [day]))
        return out

    def within(self, lo: int, hi: int) -> list[dt.date]:
        a = int(np.searchsorted(self.ends, lo, side="right"))
        b = int(np.searchsorted(self.starts, hi, side="left"))
        return self.days[a:b]


class _Reducer:
    """Turns a request's pages into what is staged: bars or counts as they come, raw trades without repeats, 1s/1m/1d
    bars built from trades (Alpaca's rules), best quotes per second. Streams: memory is one page plus the open
    bars."""

    def __init__(self, kind: str, purpose: str, from_trades: bool) -> None:
        self.parts: list[pa.Table] = []
        self.dedup: Any = None
        self.stream: BarAggregator | QuoteSampler | None = None
        self.counts = purpose == "counts"
        if self.counts or (kind in ("1m", "1d") and not from_trades):
            return
        if kind == "quotes":
            self.stream = QuoteSampler(threads=1)
            return
        self.dedup = _core.TradeDedup()
        if kind != "trades":
            self.stream = BarAggregator(kind, conditions="alpaca", threads=1)

    def push(self, table: pa.Table) -> None:
        if self.counts:
            table = table.select(["symbol", "timestamp", "trade_count"])
        if self.dedup is not None:
            table = self.dedup.push(table)
        self.parts.append(self.stream.push(table) if self.stream is not None else table)

    def finish(self) -> pa.Table:
        if self.stream is not None:
            self.parts.append(self.stream.finish())
        return pa.concat_tables(self.parts) if len(self.parts) > 1 else self.parts[0]


def _last_timestamp(table: pa.Table) -> int | None:
    if table.num_rows == 0:
        return None
    return int(table["timestamp"][-1].cast(pa.int64()).as_py())


def _clip(table: pa.Table, windows: Spans) -> pa.Table:
    """The rows of a time-sorted table inside ``windows``."""
    ts = table["timestamp"].cast(pa.int64()).to_numpy()
    keep = np.zeros(len(ts), dtype=bool)
    for lo, hi in windows:
        a, b = np.searchsorted(ts, [lo, hi], side="left")
        keep[a:b] = True
    return table if keep.all() else table.filter(pa.array(keep))


@dataclass(frozen=True)
class ImportPlan:
    """What :func:`plan_import` found: the requests of the plan and of the one-symbol-per-day plan.

    ``pages`` is the data pages expected (an upper bound for bars: 960 a symbol-day for 1m; for quotes the
    request count, since the adaptive plan grows with the data); ``seconds(rate)`` is the time at a rate, bounded
    below by the longest chain at the assumed latency."""

    kind: str
    symbols: int
    symbol_days: int
    count_requests: int
    data_requests: int
    pages: int
    per_day_requests: int
    longest_chain: int
    latency: float

    def seconds(self, requests: int, rate: float) -> float:
        """Seconds to make ``requests`` at ``rate`` per minute."""
        return max(requests / rate * 60, self.longest_chain * self.latency)

    def summary(self, rate: float) -> str:
        """The plan as the CLI prints it.

        Example:
            >>> print(plan.summary(200))  # doctest: +ELLIPSIS
            plan for 1m: 500 symbols, 126,000 symbol-days still to import ...
        """
        total = self.count_requests + self.pages
        lines = [
            f"plan for {self.kind}: {self.symbols} symbols, {self.symbol_days:,} symbol-days still to import",
            f"  requests: {self.data_requests:,} data request chains, about {self.pages:,} pages"
            f"{' (an upper bound: 960 bars a symbol-day)' if self.kind == '1m' else ''}"
            f"{' (at least; quote windows split while downloading)' if self.kind == 'quotes' else ''}"
            f"{f', plus {self.count_requests:,} counting requests (1Min bars)' if self.count_requests else ''}",
            f"  at {rate:,.0f}/min: {_duration(self.seconds(total, rate))}",
            f"  one symbol per day (the simple plan): {self.per_day_requests:,} requests, "
            f"{_duration(self.seconds(self.per_day_requests, rate))} at {rate:,.0f}/min "
            f"({self.per_day_requests / max(total, 1):.1f}x the requests)",
        ]
        return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class _Backfill:
    """One import run: what is wanted, what is staged, the plan, the downloads and the publishing."""

    def __init__(
        self,
        kind: str,
        names: list[str],
        wanted: Mapping[str, list[dt.date]],
        *,
        lake: Lake,
        job: Job,
        feed: str,
        adjustment: str,
        from_trades: bool,
        asof: str | None,
        strategy: str,
        force_days: bool,
    ) -> None:
        self.kind, self.names, self.lake, self.job = kind, names, lake, job
        self.feed, self.adjustment, self.from_trades, self.asof = feed, adjustment, from_trades, asof
        self.strategy = strategy
        self.target = kinds.of(kind).folder
        self.daily = kinds.of(self.target).yearly
        self.api_bars = kind in ("1m", "1d") and not from_trades
        self.days = _Days({d for days in wanted.values() for d in days}, self.target)
        self.wanted = {s: sorted(set(wanted[s])) for s in names}
        self.wanted_sets = {s: set(days) for s, days in self.wanted.items()}
        done = job.done
        self.needed = {
            s: [d for d in self.wanted[s] if force_days or d.isoformat() not in done.get(s, set())] for s in names
        }
        # (symbol, period) -> the needed days of that lake file
        self.files: dict[tuple[str, str], list[dt.date]] = {}
        for symbol in names:
            for period, run in self.days.runs(self.needed[symbol]):
                self.files.setdefault((symbol, period), []).extend(run)
        self.files_of: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for key in sorted(self.files):
            self.files_of[key[0]].append(key)
        self.queued: set[tuple[str, str]] = set()
        self.planned_trades: set[tuple[tuple[int, int], str]] = set()
        self.trade_gaps: dict[tuple[int, int], list[str]] | None = None
        self.metadata = self._metadata()

    def _metadata(self) -> dict[str, str]:
        metadata = {"source": "alpaca", "feed": self.feed, "asof": self.asof or "api default", "size_unit": "shares"}
        if self.api_bars:
            metadata["adjustment"] = self.adjustment
            metadata["conditions"] = "alpaca bars"
        elif self.kind != "quotes":
            metadata["conditions"] = "alpaca" if self.kind != "trades" else "raw"
            metadata["adjustment"] = "raw"
        if self.kind == "quotes":
            metadata["size_note"] = "round lots converted to shares before 2025-11-03"
        return metadata

    # ------------------------------------------------------------------------------------------------ spans

    def file_spans(self, key: tuple[str, str]) -> Spans:
        """The request-time spans (New York midnights) of a file's needed days."""
        return merge_spans(self.days.bounds(d) for d in self.files[key])

    def gaps(self, purpose: str) -> dict[tuple[int, int], list[str]]:
        """{span: symbols} of needed time that no piece of ``purpose`` covers, per run (never across a period)."""
        groups: dict[tuple[int, int], list[str]] = defaultdict(list)
        for (symbol, period), days in sorted(self.files.items()):
            if (symbol, period) in self.queued:
                continue  # published (or being published) by this run: its pieces may be gone already
            covered = self.job.coverage("data", symbol)
            if purpose == "counts":
                covered = merge_spans(covered + self.job.coverage("counts", symbol))
            for _, run in self.days.runs(days):
                for span in self._bridge(subtract_spans([self.days.bounds(d) for d in run], covered)):
                    groups[span].append(symbol)
        return dict(groups)

    def _bridge(self, parts: Spans) -> Spans:
        """Joins spans that only non-trading time (nights, weekends, holidays) separates: one request covers a
        run of trading days, not one per stretch of weekdays."""
        out: Spans = []
        for lo, hi in parts:
            if out and not self.days.meeting(out[-1][1], lo):
                out[-1] = (out[-1][0], hi)
            else:
                out.append((lo, hi))
        return out

    def ready(self, key: tuple[str, str]) -> bool:
        return not subtract_spans(self.file_spans(key), self.job.coverage("data", key[0]))

    # ------------------------------------------------------------------------------------------------ planning

    def parallel(self, client: AlpacaClient) -> int:
        return in_flight_needed(client.limiter.per_minute, client.in_flight.latency)

    def initial(self, client: AlpacaClient | None, *, probe: bool) -> list[Request]:
        """The requests that can start now (for trades: the counting requests; the windows follow the counts)."""
        gaps = self.gaps("data")
        if not gaps:
            return []
        if self.strategy == "per-day":
            return self.per_day(gaps)
        if probe and client is not None and client.rate_cap is None and client.server_limit is None:
            first = min(gaps)
            client.probe(feed=self.feed, symbol=gaps[first][0], start_ns=first[0])
        parallel = self.parallel(client) if client is not None else 1
        if self.api_bars:
            timeframe = kinds.api_timeframe(self.kind)
            return plan_bars(gaps, timeframe, days_in=self.days.count, parallel=parallel)
        if self.kind == "quotes":
            return plan_quotes(gaps)
        self.trade_gaps = gaps
        return self.counting(parallel)

    def counting(self, parallel: int) -> list[Request]:
        """The 1Min-bar requests whose ``n`` plans the trade windows: as many chains as the rate needs in flight
        (at least a page each), because every trade request waits for them."""
        return plan_bars(
            self.gaps("counts"),
            kinds.api_timeframe("1m"),
            days_in=self.days.count,
            parallel=parallel,
            purpose="counts",
            min_chain_pages=1,
        )

    def per_day(self, gaps: Mapping[tuple[int, int], list[str]]) -> list[Request]:
        """The simple plan over ``gaps``: one single-symbol request chain per trading day (daily bars from the
        API: per calendar month)."""
        spans: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for (lo, hi), symbols in gaps.items():
            if self.api_bars and self.daily:
                months: dict[str, list[tuple[int, int]]] = defaultdict(list)
                for a, b in self.days.meeting(lo, hi):
                    months[f"{self.days.within(a, b)[0]:%Y-%m}"].append((a, b))
                parts = [(max(lo, m[0][0]), min(hi, m[-1][1])) for m in months.values()]
            else:
                parts = [(max(a, lo), min(b, hi)) for a, b in self.days.meeting(lo, hi)]
            for symbol in symbols:
                spans[symbol].extend(parts)
        if self.api_bars:
            return plan_per_day("bars", spans, kinds.api_timeframe(self.kind))
        return plan_per_day("quotes" if self.kind == "quotes" else "trades", spans)

    def trade_groups(self) -> list[Request]:
        """Trade requests for what the counts staged so far allow (packed strategy): a busy symbol's windows as
        soon as its own counts are in; the quiet symbols of a run together, once every symbol of it is counted.
        Planned over the gaps as they were when this run started, so nothing is planned twice."""
        if self.trade_gaps is None:
            self.trade_gaps = self.gaps("data")
        capacity = PAGE_LIMIT * TRADE_FILL
        requests = []
        for span, symbols in sorted(self.trade_gaps.items()):
            todo = [s for s in symbols if (span, s) not in self.planned_trades]
            counted = [s for s in todo if not subtract_spans([span], self.job.coverage("counts", s))]
            if not counted:
                continue
            counts = self.minute_counts(set(counted))
            every = len(counted) == len(todo)
            chosen = [s for s in counted if every or counts.total(s, *span) > capacity]
            if chosen:
                self.planned_trades.update((span, s) for s in chosen)
                requests += plan_trades(
                    {span: chosen}, counts, day_bounds=self.days.meeting, whole_days=self.kind == "1d"
                )
        return requests

    def minute_counts(self, symbols: set[str]) -> MinuteCounts:
        minutes: dict[str, np.ndarray] = {}
        counts: dict[str, np.ndarray] = {}
        for symbol in symbols:
            parts = []
            for piece in self.job.covering("counts", symbol):
                table = Job.read(piece)
                parts.append(table.filter(pc.equal(table["symbol"], pa.scalar(symbol))))
            if not parts:
                continue
            table = pa.concat_tables(parts)
            ts = table["timestamp"].cast(pa.int64()).to_numpy()
            n = table["trade_count"].fill_null(pa.scalar(0, pa.int64())).to_numpy().astype(np.int64)
            order = np.argsort(ts, kind="stable")
            minutes[symbol], counts[symbol] = ts[order], n[order]
        return MinuteCounts(minutes, counts)

    def estimate_pages(self, requests: list[Request]) -> int:
        return sum(r.pages for r in requests)

    # ------------------------------------------------------------------------------------------------ downloads

    def fetch(self, client: AlpacaClient, request: Request) -> tuple[Request, Piece, list[Request], int, int]:
        """Downloads one request chain, reduces it and stages it (runs on a download thread)."""
        reducer = _Reducer(self.kind, request.purpose, self.from_trades)
        bars = request.endpoint == "bars"
        pages = client.pages(
            request.endpoint,
            request.symbols,
            request.start,
            request.end - 1,  # the API's end is inclusive
            feed=self.feed,
            timeframe=request.timeframe,
            adjustment=self.adjustment if bars and request.purpose == "data" else ("raw" if bars else None),
            asof=self.asof,
            daily_labels=request.timeframe == kinds.api_timeframe("1d") and request.purpose == "data",
            purpose=request.purpose,
        )
        end, rows = request.end, 0
        follow: list[Request] = []
        for table, token in pages:
            last = _last_timestamp(table)
            if token is not None and request.adaptive and last is not None:
                split = split_remaining(request, request.start, last, rows + table.num_rows, self.days.meeting)
                if split is not None:
                    end, follow = split
                    reducer.push(_clip(table, [(request.start, end)]))
                    break
            rows += table.num_rows
            reducer.push(table)
        piece = self.job.stage(request, reducer.finish(), end)
        dedup = reducer.dedup
        return request, piece, follow, dedup.duplicates if dedup else 0, dedup.conflicts if dedup else 0

    # ------------------------------------------------------------------------------------------------ publishing

    def _row_windows(self, spans: Spans) -> Spans:
        """Request-time spans (New York midnights) as the spans of the rows they hold: daily bars are labelled at
        their date's 00:00 UTC."""
        if not self.daily:
            return spans
        out = []
        for lo, hi in spans:
            days = self.days.within(lo, hi)
            if days:
                out.append((_utc_midnight(days[0]), _utc_midnight(days[-1] + dt.timedelta(days=1))))
        return merge_spans(out)

    def publish(self, key: tuple[str, str]) -> list[FileWrite]:
        """Writes one lake file from its staged pieces, replacing exactly the needed days; records them done."""
        symbol, _ = key
        parts = []
        used = []
        for piece, spans in self.job.pieces_for("data", symbol, self.file_spans(key)):
            table = Job.read(piece)
            if len(piece.symbols) > 1:
                table = table.filter(pc.equal(table["symbol"], pa.scalar(symbol)))
            parts.append(_clip(table, self._row_windows(spans)))
            used.append(piece)
        empty = _core.lake_schema(self.target).empty_table()
        table = pa.concat_tables(parts, promote_options="permissive") if parts else empty
        windows = self._row_windows(self.file_spans(key))
        written = self.lake.write(table, self.target, replace=windows, symbol=symbol, metadata=self.metadata)
        _faults.point("import.published")
        self.job.mark_done(symbol, [d.isoformat() for d in self.files[key]])
        _faults.point("import.done")
        for piece in used:
            self.release(piece)
        return [w for w in written if w.status != "unchanged"]

    def release_all(self) -> None:
        """Drops every staged piece (data and counts) whose wanted days are all published."""
        for piece in list(self.job.pieces.values()):
            self.release(piece)

    def release(self, piece: Piece) -> None:
        """Drops a piece once every wanted day it covers is published, for each of its symbols."""
        ours = False
        for symbol in piece.symbols:
            done = self.job.done.get(symbol, set())
            wanted = self.wanted_sets.get(symbol, set())
            days = [d for d in self.days.within(piece.start, piece.end) if d in wanted]
            if any(d.isoformat() not in done for d in days):
                return
            ours = ours or bool(days)
        if ours:  # a piece none of whose days this import wants is another range's: left for that one
            self.job.drop(piece)


def _wanted_days(
    names: list[str], first: dt.date, last: dt.date, only: Mapping[str, Iterable[Any]] | None
) -> dict[str, list[dt.date]]:
    if only is None:
        days = trading_days(first, last)
        return {s: days for s in names}
    out = {}
    for symbol in names:
        chosen = {_date(d, "day") for d in only.get(symbol, [])}
        valid = set(trading_days(min(chosen), max(chosen))) if chosen else set()
        out[symbol] = sorted(chosen & valid)
    return out


def _job(lake: Lake, staging: str | os.PathLike[str] | None, key: str) -> Job:
    """The staging job of an import into ``lake`` (local disk for every lake: see :func:`staging_folder`)."""
    if isinstance(lake.storage, ObjectStorage):
        options = lake.storage.options
        return Job(staging_folder(lake.root, url=lake.url, storage_options=options, staging=staging), key)
    return Job(staging_folder(lake.root, staging=staging), key, legacy=Path(lake.root, ".staging"))


def _check(kind: str, feed: str, adjustment: str, from_trades: bool, strategy: str) -> None:
    if kind not in IMPORT_KINDS:
        raise InvalidInputError(f"unknown kind {kind!r}: use one of {', '.join(IMPORT_KINDS)}")
    if feed not in FEEDS:
        raise InvalidInputError(f"unknown feed {feed!r}: use one of {', '.join(FEEDS)}")
    if any(part not in ADJUSTMENTS for part in adjustment.split(",")):
        raise InvalidInputError(f"unknown adjustment {adjustment!r}: use {', '.join(ADJUSTMENTS)} (comma-joined)")
    if from_trades and kind not in ("1m", "1d"):
        raise InvalidInputError("--from-trades applies to 1m and 1d bars (1s bars always come from trades)")
    if strategy not in STRATEGIES:
        raise InvalidInputError(f"unknown strategy {strategy!r}: use {' or '.join(STRATEGIES)}")


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
    storage_options: Mapping[str, str] | None = None,
    staging: str | os.PathLike[str] | None = None,
    rate: float | None = None,
    max_in_flight: int = 64,
    strategy: Strategy = "packed",
    quiet: bool = False,
    force: bool = False,
    fill_gaps: bool = False,
    days: Mapping[str, Iterable[Any]] | None = None,
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
        root: the lake: a folder or ``s3://bucket/prefix`` (default ``$TICKLAKE_ROOT``, else ``data/parquet``).
        storage_options: for ``s3://`` roots, as :class:`ticklake.Lake` takes them (credentials best from
            ``AWS_*``).
        staging: the local folder the import stages its downloads and journal in. Default: the lake's
            ``.ticklake/staging``; for an ``s3://`` lake one folder per lake under the user's cache folder
            (``~/.cache/ticklake/staging/<bucket>_<prefix>-<hash>``). A killed import resumes from it: rerun with
            the same staging.
        rate: requests per minute at most; default: the account's limit as the API reports it.
        max_in_flight: the most requests in flight (the client keeps about ``rate x latency``).
        strategy: ``packed`` (the fewest requests: multi-symbol chains, counted trade windows, adaptive quote
            windows) or ``per-day`` (one request chain per symbol and day: the simple reference plan).
        quiet: no progress bar. ``force``: download and publish again what an earlier run finished.
        fill_gaps: import only the days of ``start``..``end`` that the lake lacks or holds partly
            (:meth:`ticklake.Lake.gaps` against the NYSE calendar), with the same planner; each such day is replaced
            by its download.
        days: import exactly these New York days per symbol (``{"AAPL": [date, ...]}``, e.g. the gaps from
            ``Lake.gaps``), even where an earlier run published them; ``start``/``end`` are then ignored.
        client: an :class:`AlpacaClient` to use (default: one from the environment, at ``rate``).

    Returns:
        An :class:`ImportReport`.

    Raises:
        InvalidInputError: bad kind, symbols, dates or options.
        AuthError, ApiError, RateLimitError: the API refused (its message is quoted); staged pieces are kept for
            a resume.
        LakeLockedError: another import of the same data is running with this staging folder.

    Example:
        >>> import_api("quotes", "AAPL", "2024-01-02", "2024-01-05", feed="iex", quiet=True).files[0].path.name
        'AAPL.2024-01.parquet'
        >>> import_api("1m", "AAPL", "2024-01-02", "2024-01-05", root="s3://research/lake", quiet=True,
        ...            storage_options={"endpoint": "http://127.0.0.1:8333", "allow_http": "true"}).files[0].status
        'written'
    """
    started = time.perf_counter()
    _check(kind, feed, adjustment, from_trades, strategy)
    if fill_gaps:
        if days is not None:
            raise InvalidInputError("give fill_gaps or days, not both")
        first, last = _date(start, "START"), _date(end, "END")
        if last < first:
            raise InvalidInputError(f"END {last} is before START {first}")
        found = Lake(root, storage_options=storage_options).gaps(kinds.of(kind).folder, _symbols(symbols), first, last)
        if not found:
            return ImportReport(kind, _symbols(symbols), seconds=time.perf_counter() - started)
        days = dict(found)
    names = _symbols(days.keys() if days is not None else symbols)
    first = last = dt.date(2000, 1, 1)
    if days is None:
        first, last = _date(start, "START"), _date(end, "END")
        if last < first:
            raise InvalidInputError(f"END {last} is before START {first}")
    if max_in_flight < 1:
        raise InvalidInputError(f"max_in_flight must be at least 1, got {max_in_flight}")
    wanted = _wanted_days(names, first, last, days)
    lake = Lake(root, storage_options=storage_options)
    report = ImportReport(kind, names)
    with _job(lake, staging, _job_key(kind, feed, adjustment, from_trades, asof)) as job:
        if force:
            job.reset()
        backfill = _Backfill(
            kind, names, wanted, lake=lake, job=job, feed=feed, adjustment=adjustment, from_trades=from_trades,
            asof=asof, strategy=strategy, force_days=days is not None,
        )  # fmt: skip
        report.days = sum(len(d) for d in wanted.values())
        report.skipped_days = report.days - sum(len(d) for d in backfill.needed.values())
        report.reused = len(job.pieces)
        # Files whose days an earlier run staged completely are published before anything is downloaded.
        for key in sorted(backfill.files):
            if backfill.ready(key):
                backfill.queued.add(key)
                report.files.extend(backfill.publish(key))
        if not backfill.gaps("data"):
            backfill.release_all()
            report.seconds = time.perf_counter() - started
            return report
        own_client = client is None
        api = client if client is not None else AlpacaClient(rate=rate, max_in_flight=max_in_flight)
        # A client given by the caller may have served earlier imports: report this import's share only.
        stats = api.stats
        base = (stats.requests, stats.retries, stats.pages, stats.rows, stats.rate_limited, dict(stats.by_purpose))
        try:
            _run(backfill, api, report, quiet)
            backfill.release_all()
        finally:
            stats = api.stats
            report.requests, report.retries = stats.requests - base[0], stats.retries - base[1]
            report.pages, report.rows = stats.pages - base[2], stats.rows - base[3]
            report.rate_limited = stats.rate_limited - base[4]
            report.by_purpose = {
                p: n - base[5].get(p, 0) for p, n in stats.by_purpose.items() if n - base[5].get(p, 0) > 0
            }
            report.rate, report.limit = stats.rate(), api.limiter.per_minute
            report.peak_in_flight = api.in_flight.peak
            report.seconds = time.perf_counter() - started
            if own_client:
                api.close()
    return report


def _run(backfill: _Backfill, api: AlpacaClient, report: ImportReport, quiet: bool) -> None:
    """Runs the downloads on ``api.in_flight.maximum`` threads and publishes files as they complete."""
    base = api.stats.requests
    initial = backfill.initial(api, probe=True)
    waiting_counts = not backfill.api_bars and backfill.kind != "quotes" and backfill.strategy == "packed"
    progress = _Progress(quiet, api)
    outstanding: dict[Future[Any], Request] = {}
    publishing: list[Future[list[FileWrite]]] = []
    lock = threading.Lock()
    with (
        ThreadPoolExecutor(api.in_flight.maximum, thread_name_prefix="ticklake-import") as pool,
        # Publishing waits mostly on fsync: a few threads keep up with the downloads.
        ThreadPoolExecutor(PUBLISH_THREADS, thread_name_prefix="ticklake-publish") as publisher,
    ):

        def submit(requests: Iterable[Request]) -> None:
            for request in requests:
                outstanding[pool.submit(backfill.fetch, api, request)] = request
                report.planned += request.pages

        def publish_ready(symbols: Iterable[str]) -> None:
            for key in [k for s in symbols for k in backfill.files_of.get(s, [])]:
                if key not in backfill.queued and backfill.ready(key):
                    backfill.queued.add(key)
                    publishing.append(publisher.submit(backfill.publish, key))

        try:
            submit(initial)
            if waiting_counts:
                submit(backfill.trade_groups())
            while outstanding:
                done, _ = wait(list(outstanding), timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    request = outstanding.pop(future)
                    _, piece, follow, duplicates, conflicts = future.result()
                    with lock:
                        report.duplicates += duplicates
                        report.conflicts += conflicts
                    submit(follow)
                    if request.purpose == "counts":
                        submit(backfill.trade_groups())
                    else:
                        publish_ready(piece.symbols)
                for future in [f for f in publishing if f.done()]:
                    report.files.extend(future.result())
                    publishing.remove(future)
                progress.update(report.planned + base, sum(r.pages for r in outstanding.values()))
            for future in publishing:
                report.files.extend(future.result())
        except BaseException:
            for future in outstanding:
                future.cancel()
            raise
        finally:
            progress.close()


class _Progress:
    """A tqdm bar of requests (done / planned, growing as the plan does) with rows, the rate against the limit
    and requests in flight; nothing when quiet."""

    def __init__(self, quiet: bool, client: AlpacaClient) -> None:
        self.client = client
        self.bar: Any = None
        self.started = time.monotonic()
        if not quiet:
            from tqdm import tqdm

            self.bar = tqdm(total=0, unit="req", desc="import", file=sys.stderr, dynamic_ncols=True)

    def update(self, planned: int, outstanding_pages: int) -> None:
        if self.bar is None:
            return
        stats = self.client.stats
        self.bar.total = max(planned, stats.requests + outstanding_pages)
        self.bar.n = stats.requests
        self.bar.set_postfix(
            rows=f"{stats.rows:,}",
            rate=f"{stats.rate():,.0f}/{self.client.limiter.per_minute:,.0f} per min",
            in_flight=self.client.in_flight.active,
            refresh=False,
        )
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def plan_import(
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
    storage_options: Mapping[str, str] | None = None,
    staging: str | os.PathLike[str] | None = None,
    rate: float = 200.0,
    latency: float = 0.3,
    client: AlpacaClient | None = None,
) -> ImportPlan:
    """The plan of an import, without downloading data: requests per kind, pages expected, the time at a rate, and
    what the one-symbol-per-day plan would take. Days an earlier run published are left out, as the import would.

    Bars and quotes are planned offline (quotes split adaptively while downloading: the plan shows the requests
    they start with). Trades, and bars built from them, are planned from counts: the counting requests are made
    through ``client`` and staged, so the import that follows reuses them. ``root``, ``storage_options`` and
    ``staging`` as in :func:`import_api`.

    Raises:
        InvalidInputError: bad arguments, or a trades plan without a client.

    Example:
        >>> print(plan_import("1m", [f"S{i}" for i in range(500)], "2024-01-02", "2024-12-31").summary(200))
    """
    _check(kind, feed, adjustment, from_trades, "packed")
    names = _symbols(symbols)
    first, last = _date(start, "START"), _date(end, "END")
    if last < first:
        raise InvalidInputError(f"END {last} is before START {first}")
    lake = Lake(root, storage_options=storage_options)
    with _job(lake, staging, _job_key(kind, feed, adjustment, from_trades, asof)) as job:
        backfill = _Backfill(
            kind, names, _wanted_days(names, first, last, None), lake=lake, job=job, feed=feed,
            adjustment=adjustment, from_trades=from_trades, asof=asof, strategy="packed", force_days=False,
        )  # fmt: skip
        parallel = in_flight_needed(rate, latency)
        gaps = backfill.gaps("data")
        per_day = backfill.per_day(gaps)
        counting = 0
        if backfill.api_bars:
            timeframe = kinds.api_timeframe(kind)
            requests = plan_bars(gaps, timeframe, days_in=backfill.days.count, parallel=parallel)
            pages, per_day_pages = sum(r.pages for r in requests), len(per_day)
        elif kind == "quotes":
            requests = plan_quotes(gaps)
            pages, per_day_pages = len(requests), len(per_day)
        else:
            if client is None:
                raise InvalidInputError(
                    "a trades plan needs the trade counts: give Alpaca credentials (APCA_API_KEY_ID, "
                    "APCA_API_SECRET_KEY); the counting requests are staged and reused by the import"
                )
            before = client.stats.requests
            counting_requests = backfill.counting(parallel)
            with ThreadPoolExecutor(client.in_flight.maximum) as pool:
                list(pool.map(lambda r: backfill.fetch(client, r), counting_requests))
            counting = client.stats.requests - before
            requests = backfill.trade_groups()
            counts = backfill.minute_counts(set(names))
            pages = sum(r.pages for r in requests)
            per_day_pages = sum(
                max(1, -(-int(counts.between(r.symbols[0], r.start, r.end)[1].sum()) // PAGE_LIMIT)) for r in per_day
            )
        return ImportPlan(
            kind=kind,
            symbols=sum(1 for d in backfill.needed.values() if d),
            symbol_days=sum(len(d) for d in backfill.needed.values()),
            count_requests=counting,
            data_requests=len(requests),
            pages=pages,
            per_day_requests=per_day_pages,
            longest_chain=max((r.pages for r in requests), default=0),
            latency=latency,
        )


__all__ = ["IMPORT_KINDS", "ImportPlan", "ImportReport", "import_api", "plan_import"]
