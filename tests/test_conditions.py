"""Every row of Alpaca's bar-rule table (ALPACA.md §7.1), observed through the bars a trade produces."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest
import ticklake

from tests.reference import ALPACA_TABLE

ROWS = [
    (code, tape, kind, oc, hl, vol)
    for code, entries in ALPACA_TABLE.items()
    for tapes, kinds, oc, hl, vol in entries
    for tape in tapes
    for kind in kinds
]
REGULAR = {"A": " ", "B": " ", "C": "@", "O": "@"}


def _bars(kind: str, tape: str, trades: list[tuple[float, int, list[str]]]) -> list[dict[str, object]]:
    ts = pd.Timestamp("2024-01-02 15:00:00", tz="UTC").value
    t = pa.table(
        {
            "timestamp": pa.array([ts + i for i in range(len(trades))], pa.timestamp("ns", tz="UTC")),
            "price": [p for p, _, _ in trades],
            "size": [s for _, s, _ in trades],
            "conditions": pa.array([c for _, _, c in trades], pa.list_(pa.string())),
            "tape": [tape] * len(trades),
        }
    )
    return ticklake.bars(t, interval="1d" if kind == "D" else "1m").to_pylist()


@pytest.mark.parametrize(("code", "tape", "kind", "oc", "hl", "vol"), ROWS)
def test_table_row(code: str, tape: str, kind: str, oc: str, hl: str, vol: str) -> None:
    regular = [REGULAR[tape]]
    # A regular trade, then the trade under test at a higher price.
    (bar,) = _bars(kind, tape, [(100.0, 100, regular), (101.0, 7, [code])])
    assert bar["high"] == (101.0 if hl == "Y" else 100.0)
    assert bar["close"] == (101.0 if oc == "Y" else 100.0)
    assert bar["volume"] == (107 if vol == "Y" else 100)
    assert bar["trade_count"] == (2 if vol == "Y" else 1)
    assert bar["vwap"] == pytest.approx((100 * 100 + 101 * 7) / 107 if hl == vol == "Y" else 100.0)
    # The trade under test first: it may set the open ("Y" or "1st"); a later regular trade sets the close.
    (bar,) = _bars(kind, tape, [(101.0, 7, [code]), (100.0, 100, regular)])
    assert bar["open"] == (101.0 if oc in ("Y", "1") else 100.0)
    assert bar["low"] == 100.0 and bar["high"] == (101.0 if hl == "Y" else 100.0)
    # The trade alone: a bar only when it sets open, high, low, close and volume.
    alone = _bars(kind, tape, [(101.0, 7, [code])])
    assert len(alone) == (1 if oc in ("Y", "1") and hl == "Y" and vol == "Y" else 0)


def test_strictest_rule_wins_example_from_alpaca() -> None:
    # Nasdaq "@,4,I" on a daily bar updates volume only.
    (bar,) = _bars("D", "C", [(100.0, 100, ["@"]), (101.0, 7, ["@", "4", "I"])])
    assert (bar["high"], bar["close"], bar["volume"]) == (100.0, 100.0, 107)


def test_odd_lot_only_minute_gives_no_bar() -> None:
    assert _bars("M", "C", [(101.0, 7, ["@", "I"])]) == []


@pytest.mark.parametrize("update", ["canceled", "incorrect"])
def test_canceled_and_incorrect_trades_never_count(update: str) -> None:
    ts = pd.Timestamp("2024-01-02 15:00:00", tz="UTC").value
    t = pa.table(
        {
            "timestamp": pa.array([ts, ts + 1], pa.timestamp("ns", tz="UTC")),
            "price": [100.0, 500.0],
            "size": [10, 10],
            "update": [None, update],
        }
    )
    for policy in ("alpaca", "all"):
        (bar,) = ticklake.bars(t, conditions=policy).to_pylist()  # type: ignore[arg-type]
        assert (bar["high"], bar["volume"]) == (100.0, 10)


def test_policy_all_counts_every_trade() -> None:
    (bar,) = ticklake.bars(
        pa.table(
            {
                "timestamp": pa.array([1_700_000_000 * 10**9], pa.timestamp("ns", tz="UTC")),
                "price": [5.0],
                "size": [3],
                "conditions": pa.array([["@", "I"]]),
            }
        ),
        conditions="all",
    ).to_pylist()
    assert bar["volume"] == 3
