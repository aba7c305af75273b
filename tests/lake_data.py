"""Synthetic lake rows for the lake tests: bars on a regular New York clock grid, best quotes, raw trades."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

NY = "America/New_York"


def ny_grid(day: dt.date, start: str, end: str, step: str) -> pd.DatetimeIndex:
    """UTC timestamps every ``step`` from ``start`` to ``end`` (exclusive) New York time on ``day``."""
    lo = pd.Timestamp(f"{day} {start}").tz_localize(NY)
    hi = pd.Timestamp(f"{day} {end}").tz_localize(NY)
    return pd.date_range(lo, hi, freq=step, inclusive="left").tz_convert("UTC").as_unit("ns")


def bars_table(symbol: str, stamps: pd.DatetimeIndex, *, seed: int = 0, vwap: bool = True) -> pa.Table:
    """Plausible bars (penny prices) at the given timestamps, in the SPEC §2 schema of 1m (or 1s without vwap)."""
    rng = np.random.default_rng(seed)
    n = len(stamps)
    close = np.round(100 + np.cumsum(rng.integers(-3, 4, n)) / 100, 2)
    open_ = np.round(close + rng.integers(-2, 3, n) / 100, 2)
    high = np.maximum(open_, close) + 0.01
    low = np.minimum(open_, close) - 0.01
    columns: dict[str, object] = {
        "symbol": pa.array([symbol] * n, pa.string()),
        "timestamp": pa.array(stamps.asi8, pa.timestamp("ns", tz="UTC")),
        "open": open_,
        "high": high,
        "low": low,
        "close": close,
        "volume": rng.integers(1, 10_000, n).astype(np.int64),
    }
    if vwap:
        columns["vwap"] = np.round((high + low) / 2, 4)
    columns["trade_count"] = rng.integers(1, 50, n).astype(np.int64)
    return pa.table(columns)


def minute_bars(symbol: str, days: list[dt.date], *, seed: int = 0) -> pa.Table:
    """1m bars for every minute 04:00-20:00 New York time on each day."""
    stamps = [ny_grid(d, "04:00", "20:00", "1min") for d in days]
    return bars_table(symbol, stamps[0].append(stamps[1:]) if len(stamps) > 1 else stamps[0], seed=seed)


def daily_bars(symbol: str, days: list[dt.date], *, seed: int = 0) -> pa.Table:
    """1d bars labelled at each date 00:00 UTC."""
    stamps = pd.DatetimeIndex([pd.Timestamp(d, tz="UTC") for d in days]).as_unit("ns")
    return bars_table(symbol, stamps, seed=seed)


def quotes_table(symbol: str, stamps: pd.DatetimeIndex, *, seed: int = 0) -> pa.Table:
    """Best quotes per second at the given timestamps, in the SPEC §2 schema."""
    rng = np.random.default_rng(seed)
    n = len(stamps)
    bid = np.round(100 + np.cumsum(rng.integers(-2, 3, n)) / 100, 2)
    spread = rng.integers(0, 4, n) / 100
    ask = np.round(bid + spread, 2)
    exchanges = np.array(list("QPVZ"))
    bx = exchanges[rng.integers(0, 4, n)]
    ax = np.where(rng.random(n) < 0.5, bx, exchanges[rng.integers(0, 4, n)])
    return pa.table(
        {
            "symbol": pa.array([symbol] * n, pa.string()),
            "timestamp": pa.array(stamps.asi8, pa.timestamp("ns", tz="UTC")),
            "bid_price": bid,
            "bid_size": rng.integers(1, 50, n).astype(np.int64) * 100,
            "ask_price": ask,
            "ask_size": rng.integers(1, 50, n).astype(np.int64) * 100,
            "spread": np.round(ask - bid, 6),
            "exchange": pa.array(np.where(bx == ax, bx, None), pa.string()),
            "bid_exchange": pa.array(bx, pa.string()),
            "ask_exchange": pa.array(ax, pa.string()),
        }
    )


def trades_table(symbol: str, stamps: pd.DatetimeIndex, *, seed: int = 0) -> pa.Table:
    """Raw trades in the SPEC §2 trades schema (timestamps may repeat)."""
    rng = np.random.default_rng(seed)
    n = len(stamps)
    conditions = pa.array([["@"] if i % 3 else ["@", "I"] for i in range(n)], pa.list_(pa.string()))
    return pa.table(
        {
            "symbol": pa.array([symbol] * n, pa.string()),
            "timestamp": pa.array(stamps.asi8, pa.timestamp("ns", tz="UTC")),
            "price": np.round(100 + rng.integers(-50, 50, n) / 100, 2),
            "size": rng.integers(1, 500, n).astype(np.int64),
            "exchange": pa.array(np.array(list("QPV"))[rng.integers(0, 3, n)], pa.string()),
            "id": pa.array(np.arange(n, dtype=np.int64) + 1000),
            "conditions": conditions,
            "tape": pa.array(["C"] * n, pa.string()),
            "update": pa.array([None] * n, pa.string()),
        }
    )


def write_two_symbols(lake: Any, days: list[dt.date], trade_step: str) -> Any:
    """Fills ``lake`` (a ``ticklake.Lake``) for AAPL and MSFT: 1m bars on every one of ``days``; on the first two
    days best quotes every second 09:25-16:05 New York and trades every ``trade_step`` 09:00-17:00. Returns it."""
    for seed, symbol in enumerate(["AAPL", "MSFT"]):
        lake.write_bars(minute_bars(symbol, days, seed=seed), "1m")
        stamps = ny_grid(days[0], "09:25", "16:05", "1s").append(ny_grid(days[1], "09:25", "16:05", "1s"))
        lake.write_quotes(quotes_table(symbol, stamps, seed=seed))
        ticks = ny_grid(days[0], "09:00", "17:00", trade_step).append(ny_grid(days[1], "09:00", "17:00", trade_step))
        lake.write_trades(trades_table(symbol, ticks, seed=seed))
    return lake
