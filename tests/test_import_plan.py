"""The request planner (SPEC §6): fewest requests, exact parameters, and a lake identical to the simple plan's."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import os
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import ticklake
from hypothesis import given, settings
from hypothesis import strategies as st
from ticklake.client import AlpacaClient
from ticklake.importer import import_api, plan_import
from ticklake.planner import (
    MAX_URL_BYTES,
    PAGE_LIMIT,
    TRADE_FILL,
    MinuteCounts,
    Request,
    plan_bars,
    plan_trades,
    split_remaining,
)
from ticklake.sample import sample_quotes, sample_trades

from tests.alpaca_server import KEY_ID, SECRET, AlpacaServer, Faults
from tests.test_import import file_bytes

REPO = Path(__file__).resolve().parents[1]
START, END = dt.date(2024, 1, 30), dt.date(2024, 2, 1)  # crosses a month boundary
MINUTE = 60 * 10**9
STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$")


def _trades(symbol: str, n: int, seed: int) -> pa.Table:
    """Sample trades where a fifth sit exactly on a minute start: every window cut has equal timestamps on it."""
    table = sample_trades(symbol, START, END, n=n, seed=seed)
    ts = table["timestamp"].cast(pa.int64()).to_numpy().copy()
    on_minute = np.random.default_rng(seed).random(len(ts)) < 0.2
    ts[on_minute] = ts[on_minute] // MINUTE * MINUTE
    ts = np.maximum.accumulate(ts)
    return table.set_column(1, "timestamp", pa.array(ts, pa.timestamp("ns", tz="UTC")))


@pytest.fixture(scope="module")
def market() -> dict[str, dict[str, pa.Table]]:
    """A busy symbol (windows), two quiet ones (packed together) and one that is listed but never traded."""
    trades = {"AAPL": _trades("AAPL", 30_000, 1), "BRK.B": _trades("BRK.B", 3_000, 2), "MSFT": _trades("MSFT", 500, 3)}
    quotes = {}
    for seed, (symbol, n) in enumerate({"AAPL": 40_000, "BRK.B": 4_000}.items()):
        table = sample_quotes(symbol, START, END, n=n, seed=10 + seed)
        quotes[symbol] = table.set_column(0, "symbol", pa.array([symbol] * table.num_rows, pa.string()))
    return {"trades": trades, "quotes": quotes}


SYMBOLS = "AAPL,BRK.B,MSFT,ZZZ"


@pytest.fixture(scope="module")
def server(market: dict[str, dict[str, pa.Table]]) -> Iterator[AlpacaServer]:
    # Short random pages capped at 700 items: chains cross symbols in the middle of pages.
    with AlpacaServer(market["trades"], market["quotes"], max_page=700, seed=4) as running:
        yield running


def client_for(server: AlpacaServer, **kwargs: object) -> AlpacaClient:
    options: dict[str, object] = {"rate": 100_000, "backoff": 0.001, **kwargs}
    return AlpacaClient(KEY_ID, SECRET, base_url=server.url, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "from_trades"),
    [("1m", False), ("1d", False), ("trades", False), ("1s", False), ("quotes", False), ("1m", True), ("1d", True)],
)
def test_every_plan_gives_the_lake_of_the_one_symbol_per_day_plan(
    tmp_path: Path, server: AlpacaServer, kind: str, from_trades: bool
) -> None:
    lakes = {}
    for strategy in ("per-day", "packed"):
        with client_for(server) as client:
            report = import_api(
                kind, SYMBOLS, START, END, root=tmp_path / strategy, client=client, quiet=True,  # type: ignore[arg-type]
                strategy=strategy, from_trades=from_trades,  # type: ignore[arg-type]
            )  # fmt: skip
        assert report.days == 12
        lakes[strategy] = file_bytes(tmp_path / strategy)
    assert lakes["packed"] and lakes["packed"] == lakes["per-day"]
    assert not any("ZZZ" in name for name in lakes["packed"])  # a symbol with no data makes no file
    assert ticklake.Lake(tmp_path / "packed").validate() == []


def _first_pages(requests: list[tuple[str, dict[str, str]]]) -> list[tuple[str, dict[str, str]]]:
    return [(path, params) for path, params in requests if "page_token" not in params]


def test_requests_carry_exactly_the_plans_parameters_and_never_overlap(tmp_path: Path, server: AlpacaServer) -> None:
    before = len(server.requests)
    with client_for(server) as client:
        report = import_api("1s", SYMBOLS, START, END, root=tmp_path, client=client, quiet=True, feed="iex", asof="-")
    sent = server.requests[before:]
    assert report.requests == len(sent) and report.by_purpose["counts"] >= 1
    chains: dict[tuple[str, str, str, str], dict[str, str]] = {}
    for path, params in sent:
        assert path in ("/v2/stocks/bars", "/v2/stocks/trades")
        assert STAMP.match(params["start"]) and STAMP.match(params["end"])
        assert params["limit"] == "10000" and params["sort"] == "asc"
        assert params["feed"] == "iex" and params["asof"] == "-"
        if path.endswith("bars"):
            assert params["timeframe"] == "1Min" and params["adjustment"] == "raw"
        else:
            assert "timeframe" not in params and "adjustment" not in params
        key = (path, params["symbols"], params["start"], params["end"])
        if "page_token" in params:
            # A chain's later pages repeat its first request's parameters exactly.
            assert {k: v for k, v in params.items() if k != "page_token"} == chains[key]
        else:
            chains[key] = params
    # Trade requests: per symbol, their spans [start, end + 1 ns) are disjoint and cover every trading day.
    spans: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for path, params in _first_pages(sent):
        if path.endswith("trades"):
            lo, hi = pd.Timestamp(params["start"]).value, pd.Timestamp(params["end"]).value + 1
            for symbol in params["symbols"].split(","):
                spans[symbol].append((lo, hi))
    for symbol in SYMBOLS.split(","):
        ordered = sorted(spans[symbol])
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(ordered)), symbol
        for day in ("2024-01-30", "2024-01-31", "2024-02-01"):
            lo = pd.Timestamp(day, tz="America/New_York").value
            hi = pd.Timestamp(day, tz="America/New_York").value + 86_400 * 10**9
            inside = sum(min(b, hi) - max(a, lo) for a, b in ordered if a < hi and lo < b)
            assert inside == hi - lo, (symbol, day)
    # The busy symbol was cut into several windows; the quiet ones share requests.
    assert len(spans["AAPL"]) > 2
    assert any("BRK.B" in p["symbols"] and "MSFT" in p["symbols"] for _, p in _first_pages(sent))


def test_bar_chains_group_symbols_and_keep_every_url_short() -> None:
    symbols = [f"{chr(65 + i % 26)}{i:09d}"[:10] for i in range(900)]
    requests = plan_bars({(0, 10**15): symbols}, "1Day", days_in=lambda a, b: 252, parallel=2)
    assert sorted(s for r in requests for s in r.symbols) == sorted(symbols)  # each symbol once
    assert len(requests) > 1  # 900 ten-character symbols do not fit one URL
    token = "Q" * 200
    for request in requests:
        url = httpx.URL(
            "https://data.alpaca.markets/v2/stocks/bars",
            params={
                "symbols": ",".join(request.symbols), "start": "2024-01-02T05:00:00.000000000Z",
                "end": "2024-12-31T04:59:59.999999999Z", "limit": "10000", "sort": "asc", "feed": "sip",
                "asof": "2024-12-31", "timeframe": "1Day", "adjustment": "split,spin-off", "page_token": token,
            },
        )  # fmt: skip
        assert len(str(url)) <= MAX_URL_BYTES
    # Few symbols of daily bars: one chain, whatever the rate asks for.
    assert len(plan_bars({(0, 10): [f"S{i}" for i in range(100)]}, "1Day", days_in=lambda a, b: 252, parallel=64)) == 1


@settings(max_examples=200, deadline=None)
@given(
    counts=st.lists(st.integers(0, 4000), min_size=1, max_size=300),
    quiet=st.lists(st.integers(0, 3000), max_size=8),
)
def test_trade_windows_cut_at_counted_minutes_and_quiet_symbols_are_packed(counts: list[int], quiet: list[int]) -> None:
    start, end = 0, (len(counts) + 5) * MINUTE
    minutes = {"BUSY": np.arange(len(counts), dtype=np.int64) * MINUTE + 2 * MINUTE}
    n = {"BUSY": np.array(counts, dtype=np.int64)}
    for i, total in enumerate(quiet):
        minutes[f"Q{i}"], n[f"Q{i}"] = np.array([3 * MINUTE]), np.array([total])
    requests = plan_trades({(start, end): list(minutes)}, MinuteCounts(minutes, n), day_bounds=lambda a, b: [(a, b)])
    busy = sorted((r.start, r.end) for r in requests if r.symbols == ("BUSY",))
    total = sum(counts)
    capacity = PAGE_LIMIT * TRADE_FILL
    if total > capacity:
        # Contiguous windows over the whole span, cut only at minute starts, about ceil(total / fill) of them.
        assert busy[0][0] == start and busy[-1][1] == end
        assert all(a[1] == b[0] for a, b in itertools.pairwise(busy))
        assert all(lo in set(minutes["BUSY"].tolist()) for lo, _ in busy[1:])
        assert len(busy) <= math.ceil(total / capacity)
        estimates = [r.estimate for r in requests if r.symbols == ("BUSY",)]
        assert sum(estimates) == total
        # Equal shares: no window holds more than its share plus the largest minute.
        assert max(estimates) <= total / len(busy) + max(counts)
    packed = [r for r in requests if r.symbols != ("BUSY",) or total <= capacity]
    names = [s for r in packed for s in r.symbols]
    expected = [f"Q{i}" for i in range(len(quiet))] + (["BUSY"] if total <= capacity else [])
    assert sorted(names) == sorted(expected)  # every quiet symbol exactly once
    for request in packed:
        assert (request.start, request.end) == (start, end)
        assert request.estimate <= capacity or len(request.symbols) == 1


@settings(max_examples=300, deadline=None)
@given(
    span=st.integers(10, 200_000),
    covered=st.floats(0.001, 0.999),
    rows=st.integers(1, 10_000),
    days=st.integers(1, 5),
)
def test_quote_windows_split_at_whole_seconds_and_cover_the_rest(
    span: int, covered: float, rows: int, days: int
) -> None:
    second = 10**9
    start, end = 1_700_000_000 * second, 1_700_000_000 * second + span * second
    bounds = [(start + (end - start) * i // days, start + (end - start) * (i + 1) // days) for i in range(days)]

    def day_bounds(lo: int, hi: int) -> list[tuple[int, int]]:
        return [(a, b) for a, b in bounds if a < hi and lo < b]

    last = start + int((end - start) * covered)
    split = split_remaining(Request("quotes", ("A",), start, end, adaptive=True), start, last, rows, day_bounds)
    if split is None:
        return
    cut, windows = split
    assert cut % second == 0 and start < cut <= last
    assert windows[0].start == cut and windows[-1].end == end
    assert all(a.end == b.start for a, b in itertools.pairwise(windows))
    assert all(w.start < w.end and w.start % second == 0 and w.adaptive for w in windows)


def test_bar_chains_stay_within_the_minimum_plus_a_partial_page_each(tmp_path: Path) -> None:
    frames: dict[str, pd.DataFrame] = {}
    items = 0
    for i in range(12):
        symbol = f"S{i:02d}"
        bars = ticklake.bars(
            sample_trades(symbol, dt.date(2024, 1, 2), dt.date(2024, 1, 31), n=20_000, seed=i), interval="1m"
        )
        frame = bars.to_pandas()
        frame["timestamp"] = bars["timestamp"].cast(pa.int64()).to_numpy()
        frames[symbol] = frame
        items += bars.num_rows
    with AlpacaServer(api_bars={"1Min": frames}, short_pages=False) as server, client_for(server) as client:
        report = import_api("1m", list(frames), "2024-01-02", "2024-01-31", root=tmp_path, client=client, quiet=True)
        chains = len(_first_pages(server.requests))
    minimum = math.ceil(items / PAGE_LIMIT)
    assert report.by_purpose == {"data": report.requests}
    assert report.requests <= 1.2 * minimum + chains, (report.requests, minimum, chains)
    assert chains < len(frames)  # symbols share chains
    assert sum(ticklake.Lake(tmp_path).inventory()["rows"]) == items


def test_plan_prints_requests_and_time_without_credentials(tmp_path: Path) -> None:
    symbols = ",".join(f"S{i:03d}" for i in range(500))
    env = {k: v for k, v in os.environ.items() if not k.startswith("APCA_")}
    done = subprocess.run(
        [sys.executable, "-m", "ticklake.cli", "import-api", "1m", symbols, "2024-01-02", "2024-12-31", "--plan",
         "--rate", "10000", "--root", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "126,000 symbol-days" in done.stdout and "126,000 requests" in done.stdout
    plan = plan_import("1m", symbols, "2024-01-02", "2024-12-31", root=tmp_path, rate=200)
    assert plan.per_day_requests == 126_000 and plan.pages <= math.ceil(126_000 * 960 / PAGE_LIMIT) + plan.data_requests
    assert plan.seconds(plan.pages, 200) > 3600 > plan.seconds(plan.pages, 10_000)
    assert not list(tmp_path.rglob("*.parquet"))


def test_a_trades_plan_counts_once_and_the_import_reuses_the_counts(tmp_path: Path, server: AlpacaServer) -> None:
    with client_for(server) as client:
        plan = plan_import("trades", SYMBOLS, START, END, root=tmp_path, client=client)
        assert plan.count_requests == client.stats.requests > 0
        assert client.stats.by_purpose == {"counts": plan.count_requests}
    assert plan.data_requests >= 2 and plan.per_day_requests >= 12
    with client_for(server) as client:
        report = import_api("trades", SYMBOLS, START, END, root=tmp_path, client=client, quiet=True)
    assert "counts" not in report.by_purpose and report.by_purpose["data"] >= plan.data_requests
    with pytest.raises(ticklake.InvalidInputError, match="credentials"):
        plan_import("trades", "AAPL", START, END, root=tmp_path / "other")


def test_a_faulty_server_still_gives_the_reference_lake(tmp_path: Path, market: dict[str, dict[str, pa.Table]]) -> None:
    faults = Faults(p429=0.01, p500=0.05, pdrop=0.05, seed=9)
    retries = 0
    with AlpacaServer(market["trades"], market["quotes"], faults=faults, max_page=500, seed=5) as server:
        for strategy in ("per-day", "packed"):
            with client_for(server) as client:
                import_api("quotes", SYMBOLS, START, END, root=tmp_path / strategy, client=client, quiet=True,
                           strategy=strategy)  # type: ignore[arg-type]  # fmt: skip
                retries += client.stats.retries
    assert retries > 0, "the faults never fired"
    assert file_bytes(tmp_path / "packed") == file_bytes(tmp_path / "per-day")
