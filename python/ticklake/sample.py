"""A built-in, seeded, realistic sample of US trades and quotes, for the demo, tests and benchmarks.

Nothing is downloaded: prices follow a penny random walk, activity follows the intraday U shape with thin pre-
and post-market sessions (04:00-09:30 and 16:00-20:00 New York time), sizes mix round and odd lots, trades carry
Alpaca-style condition codes (``@``/``" "`` regular, ``I`` odd lot, ``F`` intermarket sweep, ``T`` extended
hours) on the listing tape, bursts share one timestamp, and quotes include one-sided, locked and crossed ones.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa

from ticklake.exceptions import InvalidInputError
from ticklake.sessions import trading_days

NS = 1_000_000_000
_EXCHANGES = np.array(list("QDPKZVNJYXUAH"))
_EXCHANGE_WEIGHTS = np.array([22, 30, 8, 8, 6, 3, 6, 3, 3, 3, 4, 2, 2], dtype=float)


def _utc_midnight_offsets(days: list[dt.date]) -> np.ndarray:
    """UTC ns of each day's New York local midnight as if the day's noon offset held all day.

    Trading starts at 04:00 local, after any DST switch (02:00), so local time = midnight + offset holds.
    """
    noon = pd.DatetimeIndex([pd.Timestamp(d) + pd.Timedelta(hours=12) for d in days])
    utc_noon = noon.tz_localize("America/New_York").tz_convert("UTC")
    out: np.ndarray = (utc_noon.as_unit("ns").asi8 - 12 * 3600 * NS).astype(np.int64)
    return out


def _session_times(rng: np.random.Generator, n: int) -> np.ndarray:
    """Nanoseconds since local midnight: 3% pre-market, 92% regular (U-shaped), 5% after hours; sorted."""
    part = rng.choice(3, size=n, p=[0.03, 0.92, 0.05])
    pre = rng.uniform(4 * 3600, 9.5 * 3600, n)
    # U shape: a Beta(0.6, 0.6) puts mass at the open and the close.
    regular = 9.5 * 3600 + rng.beta(0.6, 0.6, n) * 6.5 * 3600
    post = 16 * 3600 + rng.exponential(1800, n).clip(0, 4 * 3600 - 1)
    secs = np.where(part == 0, pre, np.where(part == 1, regular, post))
    return np.sort((secs * NS).astype(np.int64))


def _trading_days(start: dt.date, end: dt.date) -> list[dt.date]:
    days = trading_days(start, end)
    if not days:
        raise InvalidInputError(f"no NYSE trading day between {start} and {end}")
    return days


def _timestamps(rng: np.random.Generator, days: list[dt.date], n: int, burst: float) -> np.ndarray:
    per_day = np.bincount(rng.integers(0, len(days), n), minlength=len(days))
    midnights = _utc_midnight_offsets(days)
    parts = [midnights[i] + _session_times(rng, int(k)) for i, k in enumerate(per_day)]
    ts = np.concatenate(parts) if parts else np.empty(0, np.int64)
    # Bursts: a share of events repeat the previous timestamp exactly (sweeps, split fills).
    same = rng.random(n) < burst
    same[0:1] = False
    idx = np.arange(n)
    idx[same] = 0
    np.maximum.accumulate(idx, out=idx)
    return ts[idx]


def _price_path(rng: np.random.Generator, n: int, start_price: float) -> np.ndarray:
    steps = rng.choice([-1, 0, 0, 0, 1], size=n).astype(np.int64)
    cents = np.round(start_price * 100) + np.cumsum(steps)
    path: np.ndarray = np.maximum(cents, 100) / 100.0
    return path


def _condition_lists(regular: str, iso: np.ndarray, extended: np.ndarray, odd: np.ndarray) -> pa.ListArray:  # type: ignore[type-arg]
    """Per-trade code lists ``[regular, F?, T?, I?]`` built without a Python loop."""
    flags = np.stack([np.ones_like(iso), iso, extended, odd], axis=1)
    which = np.broadcast_to(np.arange(4), flags.shape)[flags]
    values = pa.array([regular, "F", "T", "I"], pa.string()).take(pa.array(which))
    offsets = np.concatenate([[0], np.cumsum(flags.sum(axis=1))]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)


def sample_trades(
    symbol: str = "AAPL",
    start: dt.date = dt.date(2024, 3, 8),
    end: dt.date | None = None,
    *,
    n: int = 200_000,
    seed: int = 7,
    start_price: float = 170.0,
    tape: str = "C",
) -> pa.Table:
    """Seeded synthetic trades over the NYSE trading days from ``start`` to ``end`` (inclusive; default one day).

    Example:
        >>> t = sample_trades("AAPL", n=1000)
        >>> t.column_names
        ['symbol', 'timestamp', 'price', 'size', 'exchange', 'id', 'conditions', 'tape', 'update']
    """
    rng = np.random.default_rng(seed)
    days = _trading_days(start, end or start)
    ts = _timestamps(rng, days, n, burst=0.08)
    price = _price_path(rng, n, start_price)
    exchange = rng.choice(_EXCHANGES, size=n, p=_EXCHANGE_WEIGHTS / _EXCHANGE_WEIGHTS.sum())
    # FINRA TRF prints (exchange D) often carry sub-penny prices.
    subpenny = (exchange == "D") & (rng.random(n) < 0.3)
    price = np.where(subpenny, np.round(price + rng.integers(1, 99, n) / 10_000, 4), price)
    odd = rng.random(n) < 0.4
    size = np.where(odd, rng.integers(1, 100, n), 100 * rng.geometric(0.5, n)).astype(np.int64)
    regular_code = "@" if tape in ("C", "O") else " "
    iso = rng.random(n) < 0.1
    local = pd.DatetimeIndex(pd.to_datetime(ts, unit="ns", utc=True)).tz_convert("America/New_York")
    minutes = np.asarray(local.hour * 60 + local.minute)
    extended = (minutes < 9 * 60 + 30) | (minutes >= 16 * 60)
    conditions = _condition_lists(regular_code, iso, extended, odd)
    canceled = rng.random(n) < 0.0005
    return pa.table(
        {
            "symbol": pa.array([symbol] * n, pa.string()),
            "timestamp": pa.array(ts, pa.timestamp("ns", tz="UTC")),
            "price": pa.array(price, pa.float64()),
            "size": pa.array(size, pa.int64()),
            "exchange": pa.array(exchange, pa.string()),
            "id": pa.array(np.arange(1, n + 1), pa.int64()),
            "conditions": conditions,
            "tape": pa.array([tape] * n, pa.string()),
            "update": pa.array(np.full(n, "canceled"), pa.string(), mask=~canceled),
        }
    )


def sample_quotes(
    symbol: str = "AAPL",
    start: dt.date = dt.date(2024, 3, 8),
    end: dt.date | None = None,
    *,
    n: int = 500_000,
    seed: int = 11,
    start_price: float = 170.0,
) -> pa.Table:
    """Seeded synthetic quotes (about 2% one-sided, 0.5% crossed, some locked) with bid and ask exchanges.

    Example:
        >>> q = sample_quotes("AAPL", n=1000)
        >>> q.column_names[:6]
        ['symbol', 'timestamp', 'bid_price', 'bid_size', 'ask_price', 'ask_size']
    """
    rng = np.random.default_rng(seed)
    days = _trading_days(start, end or start)
    ts = _timestamps(rng, days, n, burst=0.3)
    mid_cents = np.round(_price_path(rng, n, start_price) * 100)
    spread = rng.choice([0, 1, 1, 1, 2, 2, 3, 5], size=n)
    bid = (mid_cents - spread // 2) / 100.0
    ask = bid + spread / 100.0
    crossed = rng.random(n) < 0.005
    ask = np.where(crossed, bid - 0.01, ask)
    one_sided = rng.random(n) < 0.02
    ask = np.where(one_sided, 0.0, ask)
    bid_size = (100 * rng.integers(1, 20, n)).astype(np.int64)
    ask_size = np.where(one_sided, 0, 100 * rng.integers(1, 20, n)).astype(np.int64)
    weights = _EXCHANGE_WEIGHTS / _EXCHANGE_WEIGHTS.sum()
    return pa.table(
        {
            "symbol": pa.array([symbol] * n, pa.string()),
            "timestamp": pa.array(ts, pa.timestamp("ns", tz="UTC")),
            "bid_price": pa.array(bid, pa.float64()),
            "bid_size": pa.array(bid_size, pa.int64()),
            "ask_price": pa.array(np.round(ask, 2), pa.float64()),
            "ask_size": pa.array(ask_size, pa.int64()),
            "bid_exchange": pa.array(rng.choice(_EXCHANGES, size=n, p=weights), pa.string()),
            "ask_exchange": pa.array(rng.choice(_EXCHANGES, size=n, p=weights), pa.string()),
        }
    )
