"""The request planner of an import (SPEC §6, ALPACA.md §2-4): which requests fetch the wanted data with the fewest
pages and enough independent work to reach the account's rate limit.

Alpaca's multi-symbol endpoints page symbol-major through up to 10,000 items, whatever the number of symbols, so
the fewest requests for a set of symbols and days is one chain over all of them: ``ceil(items / 10,000)`` pages. One
chain is sequential, though (each page needs the previous page's token), so the planner cuts the work into
*independent* requests that can be in flight together, each as full as it can be:

- **Bars from the API** (``1Min``, ``1Day``): one request chain per group of symbols over a run of wanted days in
  one lake file's period (a month for 1m, a year for 1d). The number of chains is what the rate needs in flight
  (``rate x latency``), and never more than one chain per :data:`MIN_CHAIN_PAGES` estimated pages, since every chain
  ends with one partial page.
- **Trades** (and bars built from them): planned with counts. Alpaca's 1Min bars carry ``n``, the trades of the
  minute, so a counting pass (1Min bars, themselves planned as above) tells how many trades each minute holds. A
  symbol whose whole run fits in a page is packed with other quiet symbols into one multi-symbol request; a busier
  symbol's run is cut at minute boundaries into windows of about :data:`TRADE_FILL` of a page of counted trades, each
  an independent one-page request. ``n`` leaves some trades out (odd-lot-only minutes produce no bar; canceled prints
  and conditions that do not update volume are not counted), so a window may need a second page: the token chain
  then continues as usual and nothing is lost.
- **Quotes**: no count exists. A request covers a symbol's whole run; when its first page comes back with a token,
  the rest of the window is split (:func:`split_remaining`) into independent windows sized from the density that
  page showed, first by trading days, then by time within a day, and each of those may split again.

Every request covers ``[start, end)``; the API's ``end`` is inclusive, so requests send ``end - 1 ns`` and a trade
stamped exactly at a cut belongs to the later window only. Cuts are whole minutes (trades, bars built from them) or
whole seconds (quotes), so no bar or best-quote second is ever split between requests.

Example:
    >>> groups = {(START, END): ["AAPL", "MSFT"]}
    >>> [r.symbols for r in plan_bars(groups, "1Min", days_in=lambda a, b: 21, parallel=4)]
    [('AAPL', 'MSFT')]
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

import numpy as np

from ticklake.lake import kinds

PAGE_LIMIT = 10_000
#: Longest request URL the planner builds: RFC 9110 §4.1 asks every HTTP party to accept at least 8,000 octets, and
#: Alpaca documents no symbol limit (ALPACA.md §12), so this is the bound that is safe everywhere.
MAX_URL_BYTES = 8_000
#: Room kept in a URL for the base URL, the other parameters and a page token.
URL_RESERVE = 1_000
#: Upper bounds of bars per symbol and trading day: 04:00-20:00 New York time has 960 minutes.
BARS_PER_DAY: dict[str, int] = {
    k.api_timeframe: k.bars_per_day for k in kinds.ALL if k.api_timeframe and k.bars_per_day
}
#: A bar chain is planned to hold at least this many full pages (each chain ends with one partial page).
MIN_CHAIN_PAGES = 4
#: ... and at most this many, so a killed import re-downloads little (a chain is staged when it completes).
MAX_CHAIN_PAGES = 50
#: A trade window aims at this share of a page of *counted* trades, leaving room for trades ``n`` leaves out.
TRADE_FILL = 0.97
#: Quote windows split from a page's density aim at this share of a page.
QUOTE_FILL = 0.9
NS_PER_MINUTE = 60 * 10**9
NS_PER_SECOND = 10**9

Endpoint = Literal["bars", "trades", "quotes"]
Purpose = Literal["data", "counts", "probe"]


@dataclass(frozen=True)
class Request:
    """One request chain: ``endpoint`` for ``symbols`` over ``[start, end)`` (UTC ns), following page tokens to the
    end. ``estimate`` is the items expected (an upper bound for bars); ``adaptive`` lets a quote window split its
    remainder from its first page's density (:func:`split_remaining`)."""

    endpoint: Endpoint
    symbols: tuple[str, ...]
    start: int
    end: int
    timeframe: str | None = None
    purpose: Purpose = "data"
    estimate: int = 0
    adaptive: bool = False

    @property
    def id(self) -> str:
        """A stable name for the request (its staged file is named after it)."""
        text = f"{self.endpoint}|{self.timeframe}|{self.purpose}|{','.join(self.symbols)}|{self.start}|{self.end}"
        return hashlib.sha1(text.encode()).hexdigest()[:20]

    @property
    def pages(self) -> int:
        """Pages expected (at least one)."""
        return max(1, math.ceil(self.estimate / PAGE_LIMIT))


def symbols_fit(symbols: Sequence[str]) -> bool:
    """Whether a request for these symbols stays within :data:`MAX_URL_BYTES` (with room for the rest of the URL).

    Example:
        >>> symbols_fit(["AAPL"] * 10), symbols_fit(["ABCDEFGHIJ"] * 800)
        (True, False)
    """
    return len("symbols=" + quote(",".join(symbols), safe="")) <= MAX_URL_BYTES - URL_RESERVE


def _chunks(symbols: Sequence[str], weights: Sequence[float], parts: int) -> list[list[str]]:
    """``symbols`` (in order) cut into at most ``parts`` runs of about equal weight, each short enough for a URL."""
    total = float(sum(weights)) or 1.0
    target = total / max(1, parts)
    out: list[list[str]] = [[]]
    load = 0.0
    for symbol, weight in zip(symbols, weights, strict=True):
        current = out[-1]
        if current and (load + weight > target * 1.0001 or not symbols_fit([*current, symbol])):
            out.append([])
            load = 0.0
        out[-1].append(symbol)
        load += weight
    return [c for c in out if c]


def _pack(items: Sequence[tuple[str, float]], capacity: float) -> list[list[str]]:
    """First-fit decreasing bin packing of (symbol, load) into bins of ``capacity`` whose URLs fit; bins and their
    symbols come out sorted, so the same input always gives the same requests."""
    bins: list[tuple[float, list[str]]] = []
    for symbol, load in sorted(items, key=lambda item: (-item[1], item[0])):
        for index, (used, members) in enumerate(bins):
            if used + load <= capacity and symbols_fit([*members, symbol]):
                bins[index] = (used + load, [*members, symbol])
                break
        else:
            bins.append((load, [symbol]))
    return sorted(sorted(members) for _, members in bins)


def in_flight_needed(rate_per_minute: float, latency: float) -> int:
    """Requests that must be in flight to reach ``rate_per_minute`` when each takes ``latency`` seconds.

    Example:
        >>> in_flight_needed(1200, 0.4)
        8
    """
    return max(1, math.ceil(rate_per_minute / 60 * latency))


def plan_bars(
    groups: Mapping[tuple[int, int], Sequence[str]],
    timeframe: str,
    *,
    days_in: Callable[[int, int], int],
    parallel: int,
    purpose: Purpose = "data",
    min_chain_pages: float = MIN_CHAIN_PAGES,
) -> list[Request]:
    """Multi-symbol bar chains for ``groups`` ({(start, end) of a run of wanted days within one period: symbols}).

    Chains are spread over the groups in proportion to their estimated pages, ``parallel`` of them in all (what the
    rate needs in flight), at least one per group, at most one per ``min_chain_pages`` estimated pages of a group
    (:data:`MIN_CHAIN_PAGES`; counting requests, which the trade plan waits for, take 1) and at least one per
    :data:`MAX_CHAIN_PAGES`.

    Example:
        >>> reqs = plan_bars({(0, 10): ["A", "B", "C"]}, "1Day", days_in=lambda a, b: 252, parallel=8)
        >>> [r.symbols for r in reqs]
        [('A', 'B', 'C')]
    """
    per_day = BARS_PER_DAY[timeframe]
    estimates = {span: len(symbols) * days_in(*span) * per_day for span, symbols in groups.items()}
    total_pages = sum(estimates.values()) / PAGE_LIMIT
    chains_total = max(parallel, math.ceil(total_pages / MAX_CHAIN_PAGES))
    requests = []
    for span, symbols in sorted(groups.items()):
        names = sorted(symbols)
        pages = estimates[span] / PAGE_LIMIT
        share = chains_total * pages / total_pages if total_pages else 1
        chains = max(1, min(len(names), math.floor(pages / min_chain_pages), round(share)))
        chains = max(chains, math.ceil(pages / MAX_CHAIN_PAGES))
        each = days_in(*span) * per_day
        for chunk in _chunks(names, [each] * len(names), chains):
            requests.append(
                Request("bars", tuple(chunk), span[0], span[1], timeframe, purpose, estimate=each * len(chunk))
            )
    return requests


@dataclass(frozen=True)
class MinuteCounts:
    """Trades per minute of each symbol (from 1Min bars' ``n``): sorted minute starts and their counts."""

    minutes: dict[str, np.ndarray]
    counts: dict[str, np.ndarray]

    def between(self, symbol: str, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        """The symbol's minutes in ``[start, end)`` and their counts."""
        minutes = self.minutes.get(symbol)
        if minutes is None:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        a, b = np.searchsorted(minutes, [start, end], side="left")
        return minutes[a:b], self.counts[symbol][a:b]

    def total(self, symbol: str, start: int, end: int) -> int:
        """The symbol's counted trades in ``[start, end)``."""
        return int(self.between(symbol, start, end)[1].sum())


def _windows(start: int, end: int, minutes: np.ndarray, counts: np.ndarray, k: int) -> list[tuple[int, int]]:
    """``[start, end)`` cut at minute starts into ``k`` windows of about equal counted trades."""
    if k <= 1 or len(minutes) < 2:
        return [(start, end)]
    before = np.concatenate([[0], np.cumsum(counts)[:-1]])  # trades in earlier minutes
    total = float(counts.sum())
    cuts: list[int] = []
    for j in range(1, k):
        index = int(np.searchsorted(before, j * total / k, side="left"))
        if 0 < index < len(minutes) and (not cuts or minutes[index] > cuts[-1]):
            cuts.append(int(minutes[index]))
    bounds = [start, *cuts, end]
    return list(itertools.pairwise(bounds))


def plan_trades(
    groups: Mapping[tuple[int, int], Sequence[str]],
    counts: MinuteCounts,
    *,
    day_bounds: Callable[[int, int], list[tuple[int, int]]],
    whole_days: bool = False,
) -> list[Request]:
    """Trade requests for ``groups`` from the minute counts.

    A symbol whose run holds at most :data:`TRADE_FILL` of a page of counted trades is packed with other such
    symbols into one multi-symbol request over the run; a busier one gets ``ceil(count / fill)`` windows of about
    equal counts. With ``whole_days`` (daily bars built from trades need each day in one request) a busy symbol
    gets one request per day instead, which follows its token chain.

    Example:
        >>> counts = MinuteCounts({"A": np.array([0, 60_000_000_000])}, {"A": np.array([6000, 6000])})
        >>> [(r.start, r.end) for r in plan_trades({(0, 120_000_000_000): ["A"]}, counts, day_bounds=None)]
        [(0, 60000000000), (60000000000, 120000000000)]
    """
    capacity = PAGE_LIMIT * TRADE_FILL
    requests = []
    for (start, end), symbols in sorted(groups.items()):
        quiet: list[tuple[str, float]] = []
        for symbol in sorted(symbols):
            minutes, n = counts.between(symbol, start, end)
            total = int(n.sum())
            if total <= capacity:
                quiet.append((symbol, float(total)))
            elif whole_days:
                for lo, hi in day_bounds(start, end):
                    lo, hi = max(lo, start), min(hi, end)
                    requests.append(Request("trades", (symbol,), lo, hi, estimate=counts.total(symbol, lo, hi)))
            else:
                k = math.ceil(total / capacity)
                for lo, hi in _windows(start, end, minutes, n, k):
                    requests.append(Request("trades", (symbol,), lo, hi, estimate=counts.total(symbol, lo, hi)))
        for members in _pack(quiet, capacity):
            load = sum(counts.total(s, start, end) for s in members)
            requests.append(Request("trades", tuple(members), start, end, estimate=load))
    return requests


def plan_quotes(groups: Mapping[tuple[int, int], Sequence[str]]) -> list[Request]:
    """One adaptive quote request per symbol and run; each splits after its first page (:func:`split_remaining`).

    Example:
        >>> [r.symbols for r in plan_quotes({(0, 10): ["B", "A"]})]
        [('A',), ('B',)]
    """
    return [
        Request("quotes", (symbol,), start, end, adaptive=True)
        for (start, end), symbols in sorted(groups.items())
        for symbol in sorted(symbols)
    ]


def _day_fraction(lo: int, hi: int, day_bounds: Callable[[int, int], list[tuple[int, int]]]) -> float:
    """How many trading days ``[lo, hi)`` covers (fractions of the days it cuts)."""
    return sum((min(hi, b) - max(lo, a)) / (b - a) for a, b in day_bounds(lo, hi) if min(hi, b) > max(lo, a))


def split_remaining(
    request: Request,
    covered_from: int,
    last_ts: int,
    rows: int,
    day_bounds: Callable[[int, int], list[tuple[int, int]]],
) -> tuple[int, list[Request]] | None:
    """How to continue an adaptive quote window whose page, covering ``[covered_from, last_ts]`` with ``rows``
    quotes, came back with a token: ``(cut, windows)`` means "keep this page's rows before ``cut`` (a whole second,
    so no second is split) and fetch ``[cut, end)`` as these independent windows"; None means "follow the token".

    ``day_bounds(lo, hi)`` gives the whole trading days (New York midnight to midnight) that meet ``[lo, hi)``. The
    rest of the window is estimated from the page's quotes per trading day and cut into windows of about
    :data:`QUOTE_FILL` of a page: at day starts while it spans several days, in equal times within one day. The
    windows stay adaptive, so a busy part splits again after its own first page.

    Example:
        >>> day = lambda lo, hi: [(0, 100 * 10**9)]
        >>> cut, windows = split_remaining(Request("quotes", ("A",), 0, 100 * 10**9, adaptive=True), 0,
        ...                                10 * 10**9, 10_000, day)
        >>> cut, len(windows)
        (10000000000, 10)
    """
    cut = last_ts - last_ts % NS_PER_SECOND
    if not request.adaptive or cut <= max(request.start, covered_from):
        return None
    covered = _day_fraction(covered_from, last_ts + 1, day_bounds)
    estimate = rows / max(covered, 1e-6) * _day_fraction(cut, request.end, day_bounds)
    capacity = PAGE_LIMIT * QUOTE_FILL
    if estimate <= capacity:
        return None
    k = math.ceil(estimate / capacity)
    starts = [max(lo - lo % NS_PER_SECOND, cut) for lo, _ in day_bounds(cut, request.end)]
    if len(starts) > 1:
        k = min(k, len(starts))
        bounds = [starts[round(j * len(starts) / k)] for j in range(k)]
    else:
        step = (request.end - cut) / k
        bounds = [cut + round(j * step) // NS_PER_SECOND * NS_PER_SECOND for j in range(k)]
    edges = sorted({cut, *bounds, request.end})
    windows = [
        Request("quotes", request.symbols, lo, hi, purpose=request.purpose, adaptive=True)
        for lo, hi in itertools.pairwise(edges)
    ]
    return cut, windows


def plan_per_day(
    endpoint: Endpoint,
    spans: Mapping[str, Sequence[tuple[int, int]]],
    timeframe: str | None = None,
) -> list[Request]:
    """The simple plan: one single-symbol request chain per given span (a day; for daily bars a month), in symbol
    then time order. It is the reference every faster plan must equal.

    Example:
        >>> [r.symbols for r in plan_per_day("trades", {"A": [(0, 5), (5, 9)]})]
        [('A',), ('A',)]
    """
    return [
        Request(endpoint, (symbol,), lo, hi, timeframe) for symbol in sorted(spans) for lo, hi in sorted(spans[symbol])
    ]


__all__ = [
    "BARS_PER_DAY",
    "MAX_URL_BYTES",
    "PAGE_LIMIT",
    "MinuteCounts",
    "Request",
    "in_flight_needed",
    "plan_bars",
    "plan_per_day",
    "plan_quotes",
    "plan_trades",
    "split_remaining",
    "symbols_fit",
]
