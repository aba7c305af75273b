"""A table in chunks is written as it comes (no copy of the whole table into one buffer first): every file is byte
for byte the file written from the same rows in one chunk, whatever the chunk boundaries (inside a day, on a New
York midnight, at a month end, empty chunks), and errors name the row counted across the chunks."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
import ticklake
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

NY = "America/New_York"
# Seconds around a New York midnight, a month end and the spring-forward day.
ANCHORS = [
    pd.Timestamp("2024-01-30 23:59:58", tz=NY),
    pd.Timestamp("2024-01-31 19:00:00", tz=NY),  # February in UTC, January in New York
    pd.Timestamp("2024-01-31 23:59:59", tz=NY),
    pd.Timestamp("2024-03-10 01:59:58", tz=NY),
]
SECONDS = sorted({int(a.value) + k * 1_000_000_000 for a in ANCHORS for k in range(4)})
SYMBOLS = ["AAPL", "BRK.B", "SPY"]


def bars(rows: list[tuple[str, int]]) -> pa.Table:
    n = len(rows)
    return pa.table(
        {
            "symbol": pa.array([s for s, _ in rows], pa.string()),
            "timestamp": pa.array([t for _, t in rows], pa.timestamp("ns", tz="UTC")),
            "open": [float(i + 1) for i in range(n)],
            "high": [float(i + 2) for i in range(n)],
            "low": [float(i + 1) for i in range(n)],
            "close": [float(i + 1.5) for i in range(n)],
            "volume": pa.array(range(n), pa.int64()),
            "trade_count": pa.array([1] * n, pa.int64()),
        }
    )


@st.composite
def chunked_tables(draw: st.DrawFn) -> tuple[pa.Table, list[int]]:
    """Rows of several symbols (each sorted and unique), interleaved in runs, and cut points (repeats make empty
    chunks)."""
    per_symbol = {s: sorted(draw(st.sets(st.sampled_from(SECONDS), max_size=12))) for s in SYMBOLS}
    queues = {s: list(ts) for s, ts in per_symbol.items() if ts}
    rows: list[tuple[str, int]] = []
    while queues:
        symbol = draw(st.sampled_from(sorted(queues)))
        take = draw(st.integers(1, 5))
        for t in queues[symbol][:take]:
            rows.append((symbol, t))
        queues[symbol] = queues[symbol][take:]
        if not queues[symbol]:
            del queues[symbol]
    cuts = sorted(draw(st.lists(st.integers(0, len(rows)), max_size=6)))
    return bars(rows), cuts


def in_chunks(table: pa.Table, cuts: list[int]) -> pa.Table:
    bounds = [0, *cuts, table.num_rows]
    batches = [b for a, z in itertools.pairwise(bounds) for b in table.slice(a, z - a).to_batches()]
    if not batches:
        return table
    return pa.Table.from_batches(batches, schema=table.schema)


def lake_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.glob("bars/**/*.parquet"))}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunked_tables())
def test_any_chunking_writes_the_same_bytes(case: tuple[pa.Table, list[int]]) -> None:
    table, cuts = case
    chunked = in_chunks(table, cuts)
    with tempfile.TemporaryDirectory() as scratch:
        one, many = Path(scratch, "one"), Path(scratch, "many")
        ticklake.Lake(one).write_bars(table.combine_chunks(), "1s")
        ticklake.Lake(many).write_bars(chunked, "1s")
        assert lake_bytes(many) == lake_bytes(one)
        # And a second write of the chunked rows into the lake (a merge) changes nothing.
        ticklake.Lake(many).write_bars(chunked, "1s")
        assert lake_bytes(many) == lake_bytes(one)


def test_a_month_in_many_chunks_reads_back_every_row(tmp_path: Path) -> None:
    start = pd.Timestamp("2024-04-01 13:30", tz="UTC").value
    ts = [start + k * 1_000_000_000 for k in range(50_000)]
    table = bars([("SPY", t) for t in ts])
    chunked = pa.Table.from_batches(table.to_batches(max_chunksize=777))
    assert chunked.column(0).num_chunks > 60
    lake = ticklake.Lake(tmp_path)
    lake.write_bars(chunked, "1s")
    back = lake.scan("bars/1s", "SPY").to_arrow()
    assert back.num_rows == len(ts)
    assert back.column("volume").to_pylist() == list(range(len(ts)))


def test_an_error_names_the_row_counted_across_chunks(tmp_path: Path) -> None:
    start = pd.Timestamp("2024-04-01 13:30", tz="UTC").value
    table = bars([("SPY", start + k * 1_000_000_000) for k in range(30)])
    close = table.column("close").to_pylist()
    close[25] = -1.0
    table = table.set_column(table.schema.get_field_index("close"), "close", pa.array(close))
    chunked = pa.Table.from_batches(table.to_batches(max_chunksize=10))
    with pytest.raises(ticklake.InvalidInputError, match=r"column 'close', row 25\b"):
        ticklake.Lake(tmp_path).write_bars(chunked, "1s")
    assert not list(tmp_path.glob("bars/**/*.parquet"))


def test_rows_out_of_order_across_a_chunk_boundary_are_refused(tmp_path: Path) -> None:
    start = pd.Timestamp("2024-04-01 13:30", tz="UTC").value
    ts = [start + k * 1_000_000_000 for k in range(20)]
    ts[10], ts[9] = ts[9], ts[10]  # rows 9 and 10 swapped: the second chunk starts before the first ends
    table = bars([("SPY", t) for t in ts])
    chunked = pa.Table.from_batches(table.to_batches(max_chunksize=10))
    with pytest.raises(ticklake.InvalidInputError, match=r"row 10\b"):
        ticklake.Lake(tmp_path).write_bars(chunked, "1s")
