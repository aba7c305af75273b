"""Hypothesis strategies: trades and quotes clustered on the boundaries that break aggregators."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
from hypothesis import strategies as st

NS = 1_000_000_000


def _utc(text: str) -> int:
    return int(pd.Timestamp(text, tz="UTC").value)


# Second, minute and New York midnight boundaries on ordinary days, both 2024 DST days and a month end.
ANCHORS = [
    _utc("2024-01-31 23:59:59.999999999"),  # 18:59:59 ET, January
    _utc("2024-02-01 05:00:00"),  # New York midnight: February starts
    _utc("2024-03-10 05:00:00"),  # midnight EST on the spring-forward day
    _utc("2024-03-10 07:00:00"),  # 02:00 EST -> 03:00 EDT
    _utc("2024-03-11 04:00:00"),  # midnight EDT the day after
    _utc("2024-11-03 04:00:00"),  # midnight EDT on the fall-back day
    _utc("2024-11-03 06:00:00"),  # 01:00 EST, the repeated hour
    _utc("2024-11-04 05:00:00"),  # midnight EST the day after
    _utc("2024-11-29 18:00:00"),  # 13:00 ET early close
]

offsets = st.one_of(
    st.sampled_from([-NS - 1, -NS, -1, 0, 1, NS - 1, NS, 60 * NS - 1, 60 * NS, 3600 * NS]),
    st.integers(-120 * NS, 120 * NS),
    st.integers(-2 * NS, 2 * NS),
)
timestamps = st.builds(lambda a, o: a + o, st.sampled_from(ANCHORS), offsets)
prices = st.one_of(
    st.integers(1, 100_000).map(lambda c: c / 100),
    st.integers(1, 10_000_000).map(lambda c: c / 10_000),
)
sizes = st.one_of(st.integers(0, 500), st.integers(0, 2**40))
CODES = ["@", " ", "", "I", "T", "F", "4", "9", "Z", "G", "P", "B", "M", "Q", "W", "R", "X", "C", "U", "1", "AB"]
conditions = st.one_of(st.none(), st.lists(st.sampled_from(CODES), max_size=4))
tapes = st.sampled_from(["A", "B", "C", "O", "N", None])
updates = st.sampled_from([None, None, None, "canceled", "incorrect", "corrected"])
symbols = st.sampled_from(["AAPL", "BRK.B", "IBM"])


@st.composite
def trades(draw: st.DrawFn, *, with_symbol: bool | None = None, with_conditions: bool | None = None) -> pa.Table:
    n = draw(st.integers(0, 60))
    pool = draw(st.lists(timestamps, min_size=1, max_size=8))
    ts = draw(st.lists(st.one_of(st.sampled_from(pool), timestamps), min_size=n, max_size=n))
    if draw(st.booleans()):
        ts.sort()
    cols: dict[str, pa.Array] = {
        "timestamp": pa.array(ts, pa.timestamp("ns", tz="UTC")),
        "price": pa.array(draw(st.lists(prices, min_size=n, max_size=n)), pa.float64()),
        "size": pa.array(draw(st.lists(sizes, min_size=n, max_size=n)), pa.int64()),
    }
    if with_symbol if with_symbol is not None else draw(st.booleans()):
        cols["symbol"] = pa.array(draw(st.lists(symbols, min_size=n, max_size=n)), pa.string())
    if with_conditions if with_conditions is not None else draw(st.booleans()):
        cols["conditions"] = pa.array(draw(st.lists(conditions, min_size=n, max_size=n)), pa.list_(pa.string()))
        cols["tape"] = pa.array(draw(st.lists(tapes, min_size=n, max_size=n)), pa.string())
        if draw(st.booleans()):
            cols["update"] = pa.array(draw(st.lists(updates, min_size=n, max_size=n)), pa.string())
    return pa.table(cols)


quote_prices = st.one_of(
    st.sampled_from([0.0, 150.25, 150.26, 150.27, 150.28, 0.01]),
    st.integers(1, 20_000).map(lambda c: c / 100),
    st.integers(1, 2_000_000).map(lambda c: c / 10_000),
    st.just(float("nan")),
    # Around and above the $2e9 where the kernel leaves its fast micro-unit path for the exact one.
    st.sampled_from([1_999_999_999.99, 2e9, 2_000_000_000.01, 2_000_000_000.02, 5e9, 1e12]),
)
quote_sizes = st.one_of(st.sampled_from([0, 1, 100]), st.integers(0, 10**6))
exchanges = st.sampled_from(["Q", "P", "K", "V", " "])


@st.composite
def quotes(draw: st.DrawFn, *, with_symbol: bool | None = None) -> pa.Table:
    n = draw(st.integers(0, 60))
    pool = draw(st.lists(timestamps, min_size=1, max_size=6))
    ts = draw(st.lists(st.one_of(st.sampled_from(pool), timestamps), min_size=n, max_size=n))
    if draw(st.booleans()):
        ts.sort()

    def col(strategy: st.SearchStrategy[object]) -> list[object]:
        return draw(st.lists(strategy, min_size=n, max_size=n))

    cols: dict[str, pa.Array] = {
        "timestamp": pa.array(ts, pa.timestamp("ns", tz="UTC")),
        "bid_price": pa.array(col(quote_prices), pa.float64()),
        "bid_size": pa.array(col(quote_sizes), pa.int64()),
        "ask_price": pa.array(col(quote_prices), pa.float64()),
        "ask_size": pa.array(col(quote_sizes), pa.int64()),
        "bid_exchange": pa.array(col(exchanges), pa.string()),
        "ask_exchange": pa.array(col(exchanges), pa.string()),
    }
    if with_symbol if with_symbol is not None else draw(st.booleans()):
        cols["symbol"] = pa.array(col(symbols), pa.string())
    return pa.table(cols)


def to_reference_frame(table: pa.Table) -> pd.DataFrame:
    """The table as a pandas frame with int64 ns timestamps, lists kept as Python lists."""
    df = table.set_column(
        table.schema.get_field_index("timestamp"), "timestamp", table["timestamp"].cast(pa.int64())
    ).to_pandas()
    for name in ("conditions",):
        if name in df:
            df[name] = [None if v is None else list(v) for v in table[name].to_pylist()]
    for name in ("symbol", "tape", "update", "bid_exchange", "ask_exchange", "exchange"):
        if name in df:
            df[name] = pd.Series(table[name].to_pylist(), dtype=object)
    return df
