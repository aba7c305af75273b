"""The real IBM day (AlgoSeek via QuantConnect/Lean) in ../shared/data/real: read from there, never copied."""

from __future__ import annotations

import pathlib
import zipfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import ticklake

from tests.conftest import frame_records, records
from tests.reference import ref_bars, ref_best_quotes

DAY_START_UTC = pd.Timestamp("2013-10-07 04:00", tz="UTC").value  # New York midnight (EDT)


def _csv(path: pathlib.Path, names: list[str]) -> pd.DataFrame:
    with zipfile.ZipFile(path) as z:
        (name,) = z.namelist()
        with z.open(name) as f:
            return pd.read_csv(f, header=None, names=names)


@pytest.fixture(scope="module")
def ibm_trades(real_data: pathlib.Path) -> pd.DataFrame:
    df = _csv(
        real_data / "lean_algoseek_ibm_20131007" / "ibm_tick_20131007_trade.zip",
        ["ms", "price", "size", "exchange", "condition", "suspicious"],
    )
    return pd.DataFrame(
        {
            "timestamp": DAY_START_UTC + df["ms"].to_numpy(np.int64) * 1_000_000,
            "price": df["price"] / 10_000.0,
            "size": df["size"].astype(np.int64),
        }
    )


def _table(df: pd.DataFrame) -> pa.Table:
    t = pa.Table.from_pandas(df, preserve_index=False)
    return t.set_column(0, "timestamp", t["timestamp"].cast(pa.timestamp("ns", tz="UTC")))


@pytest.mark.parametrize("interval", ["1s", "1m", "1d"])
def test_ibm_trades_to_bars_equal_reference(ibm_trades: pd.DataFrame, interval: str) -> None:
    got = ticklake.bars(_table(ibm_trades), interval=interval, symbol="IBM")
    assert records(got) == frame_records(ref_bars(ibm_trades, interval, symbol="IBM"))
    # Every real print counts: the tick file's summed volume (3,960,352 shares, README) is in the bars.
    assert pa.compute.sum(got["volume"]).as_py() == 3_960_352
    if interval == "1m":
        # 04:00:30 to 19:26:07 ET; the busiest minutes are at the open and the close.
        assert got.num_rows > 400


def _exchange_quotes(real_data: pathlib.Path) -> pd.DataFrame:
    """Per-exchange one-sided messages -> each exchange's current two-sided quote after every message.

    A zero side means "not in this message", so each side carries forward within its exchange.
    """
    df = _csv(
        real_data / "lean_algoseek_ibm_20131007" / "ibm_tick_20131007_quote.zip",
        ["ms", "bid", "bid_size", "ask", "ask_size", "exchange", "condition", "suspicious"],
    )
    sides = df[["bid", "bid_size", "ask", "ask_size"]].astype(float)
    sides.loc[df["bid"] == 0, ["bid", "bid_size"]] = np.nan
    sides.loc[df["ask"] == 0, ["ask", "ask_size"]] = np.nan
    sides = sides.groupby(df["exchange"]).ffill().fillna(0.0)
    return pd.DataFrame(
        {
            "timestamp": DAY_START_UTC + df["ms"].to_numpy(np.int64) * 1_000_000,
            "bid_price": sides["bid"] / 10_000.0,
            "bid_size": sides["bid_size"].astype(np.int64),
            "ask_price": sides["ask"] / 10_000.0,
            "ask_size": sides["ask_size"].astype(np.int64),
            "exchange": df["exchange"].astype(str).to_numpy(),
        }
    )


def test_ibm_quotes_to_best_quotes_equal_reference(real_data: pathlib.Path) -> None:
    quotes = _exchange_quotes(real_data)
    got = ticklake.best_quotes(_table(quotes), symbol="IBM")
    want = ref_best_quotes(quotes, symbol="IBM")
    assert got.num_rows > 10_000
    assert records(got) == frame_records(want)
    # The raw per-exchange messages are all one-sided: alone they give no valid quote at all.
    raw = quotes.assign(ask_price=np.where(quotes["bid_price"] > 0, 0.0, quotes["ask_price"]))
    assert ticklake.best_quotes(_table(raw), symbol="IBM").num_rows == 0
