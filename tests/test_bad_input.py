"""Bad input gets a typed ticklake error naming the column and the first offending row; never a panic."""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import ticklake


def _trades(price: list[float] | None = None, size: list[int] | None = None) -> pa.Table:
    price = price if price is not None else [1.0, 2.0, 3.0]
    size = size if size is not None else [1, 1, 1]
    return pa.table(
        {
            "timestamp": pa.array([10**18, 10**18 + 1, 10**18 + 2], pa.timestamp("ns", tz="UTC")),
            "price": price,
            "size": size,
        }
    )


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 0.0, -1.5])
def test_bad_prices_name_column_and_row(bad: float) -> None:
    with pytest.raises(ticklake.InvalidInputError, match="'price', row 1") as info:
        ticklake.bars(_trades(price=[1.0, bad, bad]))
    assert (info.value.column, info.value.row) == ("price", 1)
    assert isinstance(info.value, ValueError)


def test_negative_size() -> None:
    with pytest.raises(ticklake.InvalidInputError, match="'size', row 2"):
        ticklake.bars(_trades(size=[1, 0, -5]))


def test_row_numbers_count_across_batches() -> None:
    t = _trades(price=[1.0, 2.0, -1.0])
    reader = pa.RecordBatchReader.from_batches(t.schema, t.to_batches(max_chunksize=1))
    with pytest.raises(ticklake.InvalidInputError) as info:
        ticklake.bars(reader)
    assert info.value.row == 2


def test_row_number_of_unsorted_input_is_the_input_row() -> None:
    t = pa.table(
        {"timestamp": pa.array([3, 1, 2], pa.timestamp("s", tz="UTC")), "price": [1.0, 1.0, -1.0], "size": [1, 1, 1]}
    )
    with pytest.raises(ticklake.InvalidInputError) as info:
        ticklake.bars(t)
    assert info.value.row == 2


def test_naive_timestamps_need_assume_utc() -> None:
    df = pd.DataFrame({"timestamp": pd.to_datetime(["2024-01-02 15:00"]), "price": [1.0], "size": [1]})
    with pytest.raises(ticklake.InvalidInputError, match="assume_utc") as info:
        ticklake.bars(df)
    assert info.value.column == "timestamp"
    (bar,) = ticklake.bars(df, assume_utc=True).to_pylist()
    assert str(bar["timestamp"]) == "2024-01-02 15:00:00+00:00"


def test_missing_and_mistyped_columns() -> None:
    with pytest.raises(ticklake.InvalidInputError, match="missing required column 'size'"):
        ticklake.bars(_trades().drop(["size"]))
    with pytest.raises(ticklake.InvalidInputError, match="'price' has type"):
        ticklake.bars(_trades().set_column(1, "price", pa.array(["a", "b", "c"])))
    with pytest.raises(ticklake.InvalidInputError, match="'timestamp' has type"):
        ticklake.bars(_trades().set_column(0, "timestamp", pa.array([1, 2, 3])))
    with pytest.raises(ticklake.InvalidInputError, match="'conditions' has type"):
        ticklake.bars(_trades().append_column("conditions", pa.array([1, 2, 3])))
    with pytest.raises(ticklake.InvalidInputError, match="'price', row 1: null"):
        ticklake.bars(_trades().set_column(1, "price", pa.array([1.0, None, 2.0])))
    with pytest.raises(ticklake.InvalidInputError, match="'bid_price'"):
        ticklake.best_quotes(_trades())
    with pytest.raises(ticklake.InvalidInputError, match="must be a pyarrow"):
        ticklake.bars([1, 2, 3])


@pytest.mark.parametrize("interval", ["", "7x", "0s", "-1m", "2d", "1.5s", "m"])
def test_unknown_intervals(interval: str) -> None:
    with pytest.raises(ticklake.InvalidInputError, match="interval"):
        ticklake.bars(_trades(), interval=interval)


def test_unknown_policy() -> None:
    with pytest.raises(ticklake.InvalidInputError, match="policy"):
        ticklake.bars(_trades(), conditions="strict")  # type: ignore[arg-type]


def test_quote_errors() -> None:
    q = pa.table(
        {
            "timestamp": pa.array([1, 2], pa.timestamp("ns", tz="UTC")),
            "bid_price": [1.0, 1.0],
            "bid_size": [1, -1],
            "ask_price": [1.1, 1.1],
            "ask_size": [1, 1],
        }
    )
    with pytest.raises(ticklake.InvalidInputError, match="'bid_size', row 1"):
        ticklake.best_quotes(q)
    q = q.set_column(2, "bid_size", pa.array([1, 1])).set_column(3, "ask_price", pa.array([1.1, -2.0]))
    with pytest.raises(ticklake.InvalidInputError, match="'ask_price', row 1"):
        ticklake.best_quotes(q)


def test_gil_is_released_during_the_computation() -> None:
    n = 3_000_000
    t = pa.table(
        {
            "timestamp": pa.array(np.arange(n, dtype=np.int64) * 1000, pa.timestamp("ns", tz="UTC")),
            "price": np.full(n, 1.0),
            "size": np.ones(n, np.int64),
        }
    )
    old = sys.getswitchinterval()
    # With a huge switch interval the interpreter never forces a GIL hand-over: the main thread can only run
    # while the worker is inside ticklake if ticklake released the GIL itself.
    sys.setswitchinterval(100.0)
    started, done = threading.Event(), threading.Event()
    ticks = 0

    def work() -> None:
        started.set()
        for _ in range(5):
            ticklake.bars(t, interval="1m")
        done.set()

    try:
        worker = threading.Thread(target=work)
        worker.start()
        started.wait()
        while not done.is_set():
            ticks += 1
            time.sleep(0)
        worker.join()
    finally:
        sys.setswitchinterval(old)
    assert ticks > 10
