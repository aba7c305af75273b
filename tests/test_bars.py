"""Trades -> bars against the plain reference, on hostile input (SPEC §3.1)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import ticklake
from hypothesis import given, settings
from hypothesis import strategies as st
from ticklake.sample import sample_trades

from tests.conftest import frame_records, records
from tests.reference import ref_bars
from tests.strategies import to_reference_frame, trades

INTERVALS = ["1s", "5s", "1m", "15m", "1h", "1d"]


@settings(max_examples=300, deadline=None)
@given(table=trades(), interval=st.sampled_from(INTERVALS), policy=st.sampled_from(["alpaca", "all"]))
def test_bars_equal_reference(table: pa.Table, interval: str, policy: str) -> None:
    got = ticklake.bars(table, interval=interval, conditions=policy, symbol="FILL")  # type: ignore[arg-type]
    want = ref_bars(to_reference_frame(table), interval, policy, symbol="FILL")
    assert records(got) == frame_records(want)


@settings(max_examples=100, deadline=None)
@given(table=trades(with_symbol=True), interval=st.sampled_from(INTERVALS))
def test_multi_symbol_output_is_sorted_by_symbol_then_time(table: pa.Table, interval: str) -> None:
    got = records(ticklake.bars(table, interval=interval))
    keys = [(r["symbol"], r["timestamp"]) for r in got]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)


def _ts(*texts: str) -> pa.Array:
    return pa.array([pd.Timestamp(t, tz="UTC").value for t in texts], pa.timestamp("ns", tz="UTC"))


def test_design_example() -> None:
    """The worked example of the design document."""
    t = pa.table(
        {
            "timestamp": _ts(
                "2024-01-15 14:30:00.123456",
                "2024-01-15 14:30:00.234567",
                "2024-01-15 14:30:00.876543",
                "2024-01-15 14:30:01.123456",
            ),
            "price": [150.25, 150.26, 150.24, 150.27],
            "size": [100, 50, 75, 200],
        }
    )
    got = ticklake.bars(t, interval="1s", symbol="AAPL").to_pylist()
    assert [(r["open"], r["high"], r["low"], r["close"], r["volume"], r["trade_count"]) for r in got] == [
        (150.25, 150.26, 150.24, 150.24, 225, 3),
        (150.27, 150.27, 150.27, 150.27, 200, 1),
    ]
    assert str(got[0]["timestamp"]) == "2024-01-15 14:30:00+00:00"
    assert ticklake.bars(t, interval="1s").schema.names == [
        "symbol",
        "timestamp",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "trade_count",
    ]
    assert ticklake.bars(t, interval="1m").schema.names == [
        "symbol",
        "timestamp",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "vwap",
        "trade_count",
    ]
    assert ticklake.bars(t, interval="1s").schema.field("timestamp").type == pa.timestamp("ns", tz="UTC")


def test_volume_beyond_int32() -> None:
    t = pa.table(
        {
            "timestamp": _ts("2024-01-02 15:00:00", "2024-01-02 15:00:00"),
            "price": [1.0, 2.0],
            "size": pa.array([2**31, 2**31], pa.int64()),
        }
    )
    assert ticklake.bars(t).column("volume").to_pylist() == [2**32]


def test_volume_overflowing_int64_is_an_error() -> None:
    t = pa.table(
        {
            "timestamp": _ts("2024-01-02 15:00:00", "2024-01-02 15:00:00"),
            "price": [1.0, 2.0],
            "size": pa.array([2**62, 2**62], pa.int64()),
        }
    )
    with pytest.raises(ticklake.InvalidInputError, match="overflows") as info:
        ticklake.bars(t)
    assert info.value.row == 1


def test_equal_timestamps_keep_input_order_for_open_and_close() -> None:
    t = pa.table({"timestamp": _ts(*["2024-01-02 15:00:00.5"] * 3), "price": [3.0, 1.0, 2.0], "size": [1, 1, 1]})
    (bar,) = ticklake.bars(t).to_pylist()
    assert (bar["open"], bar["close"]) == (3.0, 2.0)


def test_unsorted_equals_stably_sorted() -> None:
    rng = np.random.default_rng(3)
    n = 5000
    ts = rng.integers(0, 50, n) * 250_000_000 + 1_700_000_000 * 10**9
    t = pa.table(
        {
            "timestamp": pa.array(ts, pa.timestamp("ns", tz="UTC")),
            "price": rng.integers(100, 200, n) / 1.0,
            "size": rng.integers(1, 100, n),
        }
    )
    order = np.argsort(ts, kind="stable")
    assert ticklake.bars(t).equals(ticklake.bars(t.take(order)))


def test_empty_and_single_row() -> None:
    empty = pa.table(
        {
            "timestamp": pa.array([], pa.timestamp("ns", tz="UTC")),
            "price": pa.array([], pa.float64()),
            "size": pa.array([], pa.int64()),
        }
    )
    assert ticklake.bars(empty).num_rows == 0
    one = pa.table({"timestamp": _ts("2024-03-10 06:59:59.999999999"), "price": [10.0], "size": [5]})
    (bar,) = ticklake.bars(one, interval="1d").to_pylist()
    assert str(bar["timestamp"]) == "2024-03-10 00:00:00+00:00"


def test_daily_bar_uses_new_york_date() -> None:
    # 2024-01-31 19:30 ET is 2024-02-01 00:30 UTC: still January 31 in New York.
    t = pa.table({"timestamp": _ts("2024-02-01 00:30"), "price": [10.0], "size": [5]})
    (bar,) = ticklake.bars(t, interval="1d").to_pylist()
    assert str(bar["timestamp"]) == "2024-01-31 00:00:00+00:00"


def test_inputs_from_pandas_polars_duckdb_and_batches() -> None:
    import duckdb
    import polars as pl

    t = pa.table(
        {"timestamp": _ts("2024-01-02 15:00:00.1", "2024-01-02 15:00:01.2"), "price": [1.0, 2.0], "size": [3, 4]}
    )
    want = ticklake.bars(t, symbol="X")
    assert ticklake.bars(t.to_pandas(), symbol="X").equals(want)
    assert ticklake.bars(pl.from_arrow(t), symbol="X").equals(want)
    assert ticklake.bars(t.to_batches()[0], symbol="X").equals(want)
    assert ticklake.bars(pa.RecordBatchReader.from_batches(t.schema, t.to_batches()), symbol="X").equals(want)
    con = duckdb.connect()
    con.register("t", t)
    assert ticklake.bars(con.sql("SELECT * FROM t"), symbol="X").equals(want)


def test_threads_never_change_the_bars() -> None:
    """Long runs are cut at bar boundaries across threads (Rust tests cut tiny random inputs the same way)."""
    trades = sample_trades("SPY", dt.date(2024, 3, 8), dt.date(2024, 3, 11), n=700_000)  # spans the DST switch
    for interval, policy in (("1s", "all"), ("1m", "alpaca"), ("1d", "alpaca")):
        one = ticklake.bars(trades, interval=interval, conditions=policy, threads=1)  # type: ignore[arg-type]
        assert one.num_rows > 0
        for threads in (2, 3):
            got = ticklake.bars(trades, interval=interval, conditions=policy, threads=threads)  # type: ignore[arg-type]
            assert got.equals(one), (interval, policy, threads)
    broken = trades.set_column(
        trades.schema.get_field_index("price"),
        "price",
        pa.array(np.where(np.arange(trades.num_rows) == 600_000, -1.0, trades["price"].to_numpy())),
    )
    for threads in (1, 2):
        with pytest.raises(ticklake.InvalidInputError, match="price") as info:
            ticklake.bars(broken, threads=threads)
        assert info.value.row == 600_000


@pytest.mark.parametrize("threads", [0, -1, 1.5, True])
def test_threads_must_be_a_positive_int(threads: object) -> None:
    t = pa.table({"timestamp": _ts("2024-01-02 15:00:00"), "price": [1.0], "size": [1]})
    with pytest.raises(ticklake.InvalidInputError, match="threads"):
        ticklake.bars(t, threads=threads)  # type: ignore[arg-type]


def _interleaved(symbols: int, n: int) -> pa.Table:
    """Sample trades of several symbols merged in time order (each symbol's runs are a row or two long)."""
    parts = [
        sample_trades(f"S{k}", dt.date(2024, 3, 8), dt.date(2024, 3, 11), n=n // symbols, seed=k, tape="CACB"[k % 4])
        for k in range(symbols)
    ]
    table = pa.concat_tables(parts)
    order = np.argsort(table["timestamp"].cast(pa.int64()).to_numpy(), kind="stable")
    return table.take(pa.array(order))


@pytest.mark.parametrize("interval", ["1s", "1m", "1d"])
def test_interleaved_symbols_with_rules_equal_reference(interval: str) -> None:
    """Batches of interleaved symbols are regrouped by symbol before aggregation (rule bytes included): the bars,
    their order and the effect of every condition list still match the reference, on any thread count."""
    table = _interleaved(5, 4_000)
    want = frame_records(ref_bars(to_reference_frame(table), interval, "alpaca"))
    for threads in (1, 2):
        got = ticklake.bars(table, interval=interval, threads=threads)
        assert records(got) == want, threads
    # Streamed in batches: the open bar of every symbol is carried from one batch to the next.
    agg = ticklake.BarAggregator(interval=interval)
    streamed = pa.concat_tables([agg.push(b) for b in table.to_batches(max_chunksize=700)] + [agg.finish()])
    assert sorted(records(streamed), key=lambda r: (r["symbol"], r["timestamp"])) == want


def test_interleaved_symbols_report_the_first_bad_row() -> None:
    table = _interleaved(4, 2_000)
    price = table["price"].to_numpy().copy()
    price[1_234] = -1.0
    broken = table.set_column(table.schema.get_field_index("price"), "price", pa.array(price))
    for threads in (1, 2):
        with pytest.raises(ticklake.InvalidInputError, match="price") as info:
            ticklake.bars(broken, threads=threads)
        assert info.value.row == 1_234
