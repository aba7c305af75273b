"""Streaming aggregators equal the one-shot functions for every way of splitting the input (SPEC §3.3)."""

from __future__ import annotations

import itertools

import pyarrow as pa
import pytest
import ticklake
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import records
from tests.strategies import quotes, trades


def _sorted_per_symbol(table: pa.Table) -> pa.Table:
    keys = [("timestamp", "ascending")]
    if "symbol" in table.column_names:
        keys.insert(0, ("symbol", "ascending"))
    # pyarrow's sort_by is stable: equal keys keep input order.
    return table.sort_by(keys)


def _split(table: pa.Table, cuts: list[int]) -> list[pa.Table]:
    points = sorted({0, table.num_rows, *(c % (table.num_rows + 1) for c in cuts)})
    return [table.slice(a, b - a) for a, b in itertools.pairwise(points)]


def _canonical(table: pa.Table) -> list[dict[str, object]]:
    rows = records(table)
    return sorted(rows, key=lambda r: (r["symbol"] or "", r["timestamp"]))


@settings(max_examples=200, deadline=None)
@given(
    table=trades(),
    interval=st.sampled_from(["1s", "1m", "1h", "1d"]),
    cuts=st.lists(st.integers(0, 100), max_size=6),
    time_major=st.booleans(),
)
def test_bar_aggregator_equals_one_shot(table: pa.Table, interval: str, cuts: list[int], time_major: bool) -> None:
    table = table.sort_by([("timestamp", "ascending")]) if time_major else _sorted_per_symbol(table)
    agg = ticklake.BarAggregator(interval, symbol="FILL")
    parts = [agg.push(part) for part in _split(table, cuts)] + [agg.finish()]
    for part in parts:
        assert records(part) == _canonical(part)  # each output is sorted by symbol then time
    streamed = pa.concat_tables(parts)
    assert _canonical(streamed) == records(ticklake.bars(table, interval=interval, symbol="FILL"))


@settings(max_examples=200, deadline=None)
@given(table=quotes(), cuts=st.lists(st.integers(0, 100), max_size=6))
def test_quote_sampler_equals_one_shot(table: pa.Table, cuts: list[int]) -> None:
    table = _sorted_per_symbol(table)
    sampler = ticklake.QuoteSampler(symbol="FILL")
    parts = [sampler.push(part) for part in _split(table, cuts)] + [sampler.finish()]
    assert _canonical(pa.concat_tables(parts)) == records(ticklake.best_quotes(table, symbol="FILL"))


def _t(seconds: list[float]) -> pa.Table:
    return pa.table(
        {
            "timestamp": pa.array([int(s * 1e9) for s in seconds], pa.timestamp("ns", tz="UTC")),
            "price": [1.0] * len(seconds),
            "size": [1] * len(seconds),
        }
    )


def test_bars_finish_as_soon_as_a_later_bar_starts() -> None:
    agg = ticklake.BarAggregator("1s")
    assert agg.push(_t([1.1, 1.5])).num_rows == 0
    assert agg.push(_t([2.0])).num_rows == 1
    assert agg.finish().num_rows == 1
    with pytest.raises(ticklake.TicklakeError):
        agg.finish()


def test_going_back_in_time_across_batches_is_an_error_and_consumes_nothing() -> None:
    agg = ticklake.BarAggregator("1s")
    agg.push(_t([5.0]))
    with pytest.raises(ticklake.InvalidInputError, match="time order") as info:
        agg.push(_t([5.5, 4.0]))
    assert info.value.row == 2
    agg.push(_t([6.0]))
    # The rejected batch left nothing behind: only the bars of 5.0 and 6.0 exist.
    assert agg.finish().column("trade_count").to_pylist() == [1]


def test_one_shot_sorts_batches_that_go_back_in_time() -> None:
    t = _t([5.0, 4.0])
    reader = pa.RecordBatchReader.from_batches(t.schema, t.to_batches(max_chunksize=1))
    assert ticklake.bars(reader).column("timestamp").cast(pa.int64()).to_pylist() == [4 * 10**9, 5 * 10**9]


def test_a_rejected_batch_leaves_the_stream_intact() -> None:
    agg = ticklake.BarAggregator("1s")
    agg.push(_t([1.0]))
    bad = _t([1.5]).set_column(1, "price", pa.array([float("nan")]))
    with pytest.raises(ticklake.InvalidInputError):
        agg.push(bad)
    agg.push(_t([1.7]))
    (bar,) = agg.finish().to_pylist()
    assert bar["trade_count"] == 2
