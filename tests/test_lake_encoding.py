"""Property test of the lake's Parquet encoders (``src/column_chunk.rs``): whatever the values (long runs, a few or
all distinct, extremes, -0.0, nulls, strings too long for the dictionary path, more rows than one data page holds),
pyarrow, polars and DuckDB read back exactly what was written, bit for bit."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ticklake
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

INT64_MAX = np.iinfo(np.int64).max
# 2024-04-01 04:00 New York: the start of a month's first New York day, in UTC ns.
APRIL = int(pd.Timestamp("2024-04-01 04:00", tz="America/New_York").value)
MIDNIGHT = int(pd.Timestamp("2024-04-02 00:00", tz="America/New_York").value)


def shaped(rng: np.random.Generator, n: int, pool: np.ndarray, run: int) -> np.ndarray:
    """``n`` values from ``pool`` in runs of 1..``run``."""
    runs = n // ((run + 1) // 2) + 1  # enough runs on average; topped up below
    lengths = rng.integers(1, run + 1, runs)
    while lengths.sum() < n:
        lengths = np.concatenate([lengths, rng.integers(1, run + 1, runs)])
    picks = pool[rng.integers(0, len(pool), len(lengths))]
    return np.repeat(picks, lengths)[:n]


def stamps(rng: np.random.Generator, n: int, spread_days: int) -> np.ndarray:
    """``n`` unique sorted UTC ns timestamps within the first ``spread_days`` New York days of April 2024, whole
    microseconds (the unit bars and quotes are stored in), half the time with a sub-second part."""
    seconds = rng.choice(spread_days * 86_400, size=n, replace=False)
    nanos = rng.integers(0, 1_000_000, n) * 1_000 if rng.random() < 0.5 else 0
    return np.sort(APRIL + seconds.astype(np.int64) * 1_000_000_000 + nanos)


def floats(rng: np.random.Generator, n: int, distinct: int, run: int, zero: bool) -> np.ndarray:
    """Positive prices (or >= 0 values with both zeros when ``zero``): a pool of ``distinct`` values rounded to 0-6
    decimals (on and off the encoder's 1/10,000 grid), a narrow or a wide range, sometimes with extremes."""
    width = [0.5, 20.0, 1000.0][int(rng.integers(0, 3))]
    pool = np.round(rng.uniform(1, 1 + width, distinct), int(rng.integers(0, 7)))
    if rng.random() < 0.3:
        pool = np.concatenate([pool, [5e-324, np.finfo(np.float64).tiny, np.finfo(np.float64).max, 0.01]])
    if rng.random() < 0.3:
        pool = np.concatenate([pool, pool[:1] + 1e-9])  # one value just off the grid among grid values
    if zero:
        pool = np.concatenate([pool, [0.0, -0.0]])
    return shaped(rng, n, pool, run)


def ints(rng: np.random.Generator, n: int, distinct: int, run: int) -> np.ndarray:
    pool = np.concatenate([rng.integers(0, 10**6, distinct), [0, 1, INT64_MAX, INT64_MAX - 1]]).astype(np.int64)
    return shaped(rng, n, pool, run)


def texts(rng: np.random.Generator, n: int, run: int, null_share: float) -> pa.Array[Any]:
    pool = np.array(["Q", "P", "V", "", "BRK.B", "FIFTEEN-BYTES-X", "SIXTEEN-BYTES-XX"], dtype=object)
    pool = pool[: int(rng.integers(1, len(pool) + 1))]
    values = shaped(rng, n, pool, run).tolist()
    mask = rng.random(n) < null_share
    return pa.array([None if m else v for v, m in zip(values, mask, strict=True)], pa.string())


def assert_same_everywhere(path: str, expected: pa.Table) -> None:
    """pyarrow, polars and DuckDB all read ``expected`` from ``path``; floats compared by their bits. Every column
    chunk is ZSTD (SPEC §2)."""
    meta = pq.read_metadata(path)
    codecs = {
        meta.row_group(g).column(c).compression for g in range(meta.num_row_groups) for c in range(meta.num_columns)
    }
    assert codecs == {"ZSTD"}, codecs
    relation = duckdb.sql(f"SELECT * FROM read_parquet('{path}')")
    assert relation is not None
    readers = {
        "pyarrow": pq.read_table(path),
        "pyarrow, page checksums verified": pq.read_table(path, page_checksum_verification=True),
        "polars": pl.read_parquet(path).to_arrow(),
        "duckdb": relation.arrow(),
    }
    for reader, table in readers.items():
        if hasattr(table, "read_all"):
            table = table.read_all()
        assert table.num_rows == expected.num_rows, reader
        for name in expected.column_names:
            want, got = expected[name], table[name]
            if pa.types.is_timestamp(want.type):
                want, got = want.cast(pa.int64()), got.cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64())
            if pa.types.is_floating(want.type):
                bits = [c.to_numpy(zero_copy_only=False).view(np.int64) for c in (want, got.cast(pa.float64()))]
                assert np.array_equal(bits[0], bits[1]), (reader, name)
            else:
                assert got.to_pylist() == want.to_pylist(), (reader, name)


cases = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**32 - 1),
        "n": st.one_of(st.integers(1, 300), st.integers(300, 5_000)),
        "distinct": st.sampled_from([1, 3, 40, 2_000, 100_000]),
        "run": st.sampled_from([1, 2, 9, 300]),
        "days": st.integers(1, 29),
        "nulls": st.sampled_from([0.0, 0.1, 1.0]),
    }
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases)
def test_quotes_read_back_bit_exact_by_every_reader(case: dict[str, float]) -> None:
    rng = np.random.default_rng(int(case["seed"]))
    n, distinct, run = int(case["n"]), int(case["distinct"]), int(case["run"])
    bid = floats(rng, n, distinct, run, zero=False)
    columns: dict[str, Any] = {
        "symbol": pa.array(["SPY"] * n, pa.string()),
        "timestamp": pa.array(stamps(rng, n, int(case["days"])), pa.timestamp("ns", tz="UTC")),
        "bid_price": bid,
        "bid_size": ints(rng, n, distinct, run),
        "ask_price": floats(rng, n, distinct, run, zero=False),
        "ask_size": ints(rng, n, distinct, run),
        "spread": floats(rng, n, distinct, run, zero=True),
        "exchange": texts(rng, n, run, case["nulls"]),
        "bid_exchange": texts(rng, n, run, 0.0),
        "ask_exchange": texts(rng, n, run, case["nulls"] / 2),
    }
    table = pa.table(columns)
    with tempfile.TemporaryDirectory() as root:
        (written,) = ticklake.Lake(root).write_quotes(table)
        assert_same_everywhere(str(written.path), table)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases)
def test_bars_read_back_bit_exact_by_every_reader(case: dict[str, float]) -> None:
    rng = np.random.default_rng(int(case["seed"]))
    n, distinct, run = int(case["n"]), int(case["distinct"]), int(case["run"])
    vwap = pa.array(floats(rng, n, distinct, run, zero=False), mask=rng.random(n) < case["nulls"] / 2)
    columns: dict[str, Any] = {
        "symbol": pa.array(["BRK.B"] * n, pa.string()),
        "timestamp": pa.array(stamps(rng, n, int(case["days"])), pa.timestamp("ns", tz="UTC")),
        "open": floats(rng, n, distinct, run, zero=False),
        "high": floats(rng, n, distinct, run, zero=False),
        "low": floats(rng, n, distinct, run, zero=False),
        "close": floats(rng, n, distinct, run, zero=False),
        "volume": ints(rng, n, distinct, run),
        "vwap": vwap,
        "trade_count": ints(rng, n, distinct, run),
    }
    table = pa.table(columns)
    with tempfile.TemporaryDirectory() as root:
        (written,) = ticklake.Lake(root).write_bars(table, "1m")
        assert_same_everywhere(str(written.path), table)


@pytest.mark.parametrize("run", [1, 70_000])
def test_a_day_longer_than_one_data_page(tmp_path: Path, run: int) -> None:
    """A full New York day of 1s bars (86,400 rows) is one row group of two data pages per column."""
    rng = np.random.default_rng(run)
    n = 86_400
    prices = shaped(rng, n, np.round(rng.uniform(50, 60, 3_000), 2), run)
    columns: dict[str, Any] = {
        "symbol": pa.array(["SPY"] * n, pa.string()),
        "timestamp": pa.array(MIDNIGHT + np.arange(n, dtype=np.int64) * 10**9, pa.timestamp("ns", tz="UTC")),
        "open": prices,
        "high": prices + 0.01,
        "low": prices - 0.01,
        "close": prices,
        "volume": ints(rng, n, 500, run),
        "trade_count": ints(rng, n, 50, 1),
    }
    table = pa.table(columns)
    (written,) = ticklake.Lake(tmp_path).write_bars(table, "1s")
    assert pq.ParquetFile(written.path).metadata.num_row_groups == 1
    assert_same_everywhere(str(written.path), table)
