"""Quotes -> best quote per second against the plain reference (SPEC §3.2)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import ticklake
from hypothesis import given, settings
from ticklake.sample import sample_quotes

from tests.conftest import frame_records, records
from tests.reference import ref_best_quotes
from tests.strategies import quotes, to_reference_frame


@settings(max_examples=300, deadline=None)
@given(table=quotes())
def test_best_quotes_equal_reference(table: pa.Table) -> None:
    got = ticklake.best_quotes(table, symbol="FILL")
    want = ref_best_quotes(to_reference_frame(table), symbol="FILL")
    assert records(got) == frame_records(want)


def _q(rows: list[tuple[str, float, int, float, int, str, str]]) -> pa.Table:
    return pa.table(
        {
            "timestamp": pa.array([pd.Timestamp(r[0], tz="UTC").value for r in rows], pa.timestamp("ns", tz="UTC")),
            "bid_price": [r[1] for r in rows],
            "bid_size": [r[2] for r in rows],
            "ask_price": [r[3] for r in rows],
            "ask_size": [r[4] for r in rows],
            "bid_exchange": [r[5] for r in rows],
            "ask_exchange": [r[6] for r in rows],
        }
    )


def test_float_noise_never_decides_a_tie() -> None:
    # 150.26 - 150.25 and 150.27 - 150.26 differ in float64 but are the same cent: the earliest wins.
    assert (150.26 - 150.25) != (150.27 - 150.26)
    t = _q(
        [
            ("2024-01-02 15:00:00.1", 150.25, 1, 150.26, 1, "Q", "Q"),
            ("2024-01-02 15:00:00.2", 150.26, 1, 150.27, 1, "P", "K"),
        ]
    )
    (row,) = ticklake.best_quotes(t).to_pylist()
    assert (row["bid_price"], row["spread"], row["exchange"]) == (150.25, 0.01, "Q")
    t = _q(
        [
            ("2024-01-02 15:00:00.1", 150.26, 1, 150.27, 1, "P", "K"),
            ("2024-01-02 15:00:00.2", 150.25, 1, 150.26, 1, "Q", "Q"),
        ]
    )
    (row,) = ticklake.best_quotes(t).to_pylist()
    assert (row["bid_price"], row["exchange"], row["bid_exchange"], row["ask_exchange"]) == (150.26, None, "P", "K")


def test_locked_valid_crossed_and_one_sided_not() -> None:
    t = _q(
        [
            ("2024-01-02 15:00:00.1", 10.0, 1, 0.0, 0, "Q", " "),  # one-sided
            ("2024-01-02 15:00:00.2", 10.02, 1, 10.01, 1, "Q", "Q"),  # crossed
            ("2024-01-02 15:00:00.3", 10.0, 1, 10.0, 1, "Q", "Q"),  # locked
            ("2024-01-02 15:00:01.0", 10.02, 1, 10.01, 1, "Q", "Q"),
        ]
    )  # crossed only: no row
    (row,) = ticklake.best_quotes(t).to_pylist()
    assert (row["bid_price"], row["ask_price"], row["spread"]) == (10.0, 10.0, 0.0)


def test_single_exchange_column() -> None:
    t = _q([("2024-01-02 15:00:00.1", 10.0, 1, 10.01, 1, "Q", "Q")]).drop(["bid_exchange", "ask_exchange"])
    t = t.append_column("exchange", pa.array(["V"]))
    (row,) = ticklake.best_quotes(t).to_pylist()
    assert (row["exchange"], row["bid_exchange"], row["ask_exchange"]) == ("V", "V", "V")


def test_threads_never_change_the_best_quotes() -> None:
    quotes = sample_quotes("SPY", dt.date(2024, 3, 8), dt.date(2024, 3, 11), n=700_000)
    one = ticklake.best_quotes(quotes, threads=1)
    assert one.num_rows > 0
    for threads in (2, 3):
        assert ticklake.best_quotes(quotes, threads=threads).equals(one)
    sampler = ticklake.QuoteSampler(threads=2)
    parts = [sampler.push(b) for b in quotes.to_batches(max_chunksize=300_000)] + [sampler.finish()]
    assert pa.concat_tables(parts).equals(one)
