"""Property test: any sequence of writes (upserts and replace ranges, several symbols, timestamps around month,
New York midnight and DST boundaries) leaves the lake equal to a plain dict-of-rows reference."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import ticklake
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

NY = "America/New_York"
ANCHORS = [
    pd.Timestamp("2024-01-31 23:59:59", tz=NY),  # last second of January in New York (Feb 1 04:59:59 UTC)
    pd.Timestamp("2024-02-01 00:00:00", tz=NY),
    pd.Timestamp("2024-01-31 19:00:00", tz=NY),  # already February in UTC
    pd.Timestamp("2024-03-10 01:59:59", tz=NY),  # spring forward
    pd.Timestamp("2024-03-10 03:00:00", tz=NY),
    pd.Timestamp("2024-03-31 23:59:59", tz=NY),
    pd.Timestamp("2024-04-01 00:00:00", tz=NY),
]
# One microsecond either side of each anchor: the finest step 1s bars are stored in (SPEC §2).
POOL = sorted({int((a + pd.Timedelta(nanoseconds=d)).value) for a in ANCHORS for d in (-1000, 0, 1000, 10**9)})
SYMBOLS = ["AAPL", "BRK.B"]

rows = st.lists(
    st.tuples(st.sampled_from(SYMBOLS), st.sampled_from(POOL), st.integers(1, 10_000)),
    max_size=25,
)
replace = st.one_of(
    st.none(),
    st.tuples(st.sampled_from(POOL), st.sampled_from(POOL)).map(lambda p: (min(p), max(p) + 1)),
)
writes = st.lists(st.tuples(rows, replace), min_size=1, max_size=5)


def table_of(batch: list[tuple[str, int, int]]) -> pa.Table:
    return pa.table(
        {
            "symbol": pa.array([s for s, _, _ in batch], pa.string()),
            "timestamp": pa.array([t for _, t, _ in batch], pa.timestamp("ns", tz="UTC")),
            "open": [float(v) for _, _, v in batch],
            "high": [float(v) + 1 for _, _, v in batch],
            "low": [float(v) for _, _, v in batch],
            "close": [float(v) for _, _, v in batch],
            "volume": pa.array([v for _, _, v in batch], pa.int64()),
            "trade_count": pa.array([1 for _ in batch], pa.int64()),
        }
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(writes)
def test_writes_match_a_dict_reference(
    sequence: list[tuple[list[tuple[str, int, int]], tuple[int, int] | None]],
) -> None:
    reference: dict[tuple[str, int], int] = {}
    with tempfile.TemporaryDirectory() as root:
        lake = ticklake.Lake(Path(root))
        for batch, window in sequence:
            # The lake needs unique timestamps per symbol in one write: keep the last of duplicates, sorted.
            dedup = {(s, t): v for s, t, v in batch}
            ordered = sorted(((s, t, v) for (s, t), v in dedup.items()), key=lambda r: r[1])
            if window is not None:
                bounds = (pd.Timestamp(window[0], tz="UTC"), pd.Timestamp(window[1], tz="UTC"))
                lake.write_bars(table_of(ordered), "1s", replace=bounds)
                for symbol in {s for s, _, _ in ordered}:
                    for key in [k for k in reference if k[0] == symbol and window[0] <= k[1] < window[1]]:
                        del reference[key]
            else:
                lake.write_bars(table_of(ordered), "1s")
            reference.update(dedup)
        got = lake.scan("1s", SYMBOLS).to_arrow()
        expected = sorted(reference.items(), key=lambda kv: (SYMBOLS.index(kv[0][0]), kv[0][1]))
        assert got["symbol"].to_pylist() == [k[0] for k, _ in expected]
        ns = got["timestamp"].cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64())
        assert ns.to_pylist() == [k[1] for k, _ in expected]
        assert got["volume"].to_pylist() == [v for _, v in expected]
        # Every file holds only its own New York month, sorted and unique.
        assert lake.validate() == []
