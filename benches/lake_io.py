"""Lake writes and reads against pyarrow, polars and DuckDB on the same month of data, in the same run.

    python benches/lake_io.py [--trades N] [--quotes N] [--repeat K] [--dir DIR]

Data: a month (April 2024) of SPY 1s bars built from ``ticklake.sample`` trades (about 0.9M bars for the default
20M trades), a second month shape (1s bars on 44,000 random seconds of each weekday, random-walk prices, random
volumes: about 0.97M bars in one chunk) and a month of best quotes per second. Every writer uses ZSTD level 3 and
writes a fresh file each repetition. ticklake's write is the whole ``Lake.write_bars`` / ``write_quotes`` call
(validation, split by month, lock, encode, fsync, footer check, rename, fsync of the directory); the others write one
file without fsync.
Reads go into pandas for ticklake and pyarrow, into a polars DataFrame for polars (and, on a second row, on into
pandas with polars' ``to_pandas``). In writes and reads alike the tools take turns within each repetition, so a busy
spell slows them alike.
The ratio column is the other tool's time divided by ticklake's (above 1.0x: ticklake is faster). The day read of
quotes is held to issue 13's bound: ticklake's pandas frame within 1.2x of polars' filtered scan.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import ticklake
from harness import best_of_each, machine_line, ratio_table, require_release
from ticklake.sample import sample_quotes, sample_trades


def busy_month(seconds_per_day: int = 44_000, seed: int = 3) -> pa.Table:
    """A second month shape: 1s bars of SPY on 44,000 random seconds of each April 2024 weekday (04:00-20:00 New York,
    so a bar most seconds of the extended session), a random-walk price and random volumes and trade counts."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2024-04-01", "2024-04-30", tz="America/New_York")
    stamps = []
    for day in days:
        first = (day + pd.Timedelta(hours=4)).tz_convert("UTC").value
        picks = np.sort(rng.choice(16 * 3600, size=seconds_per_day, replace=False)).astype(np.int64)
        stamps.append(first + picks * 1_000_000_000)
    ts = np.concatenate(stamps)
    n = len(ts)
    close = np.round(500 + np.cumsum(rng.normal(0, 0.02, n)), 2)
    spread = np.round(np.abs(rng.normal(0, 0.03, n)), 2)
    return pa.table(
        {
            "symbol": pa.array(["SPY"] * n, pa.string()),
            "timestamp": pa.array(ts, pa.timestamp("ns", tz="UTC")),
            "open": close - spread / 2,
            "high": close + spread,
            "low": close - spread,
            "close": close,
            "volume": rng.lognormal(5, 1.5, n).astype(np.int64) + 1,
            "trade_count": rng.integers(1, 60, n),
        }
    )


def bench_kind(name: str, table: pa.Table, base: Path, repeat: int) -> None:
    kind = "quotes" if name == "quotes" else "bars/1s"
    print(f"\n=== {name}: {table.num_rows:,} rows, one month ===")
    lake_root = base / f"lake-{name}"

    def fresh() -> None:
        shutil.rmtree(lake_root, ignore_errors=True)

    lake = ticklake.Lake(lake_root)

    def ours() -> Any:
        if kind == "quotes":
            return lake.write_quotes(table)
        return lake.write_bars(table, "1s")

    out = {k: base / f"{name}.{k}.parquet" for k in ("pyarrow", "polars", "duckdb")}
    frame = pl.from_arrow(table)
    con = duckdb.connect()
    con.register("t", table)
    writes = {
        "ticklake": ours,
        "pyarrow": lambda: pq.write_table(table, out["pyarrow"], compression="zstd", compression_level=3),
        "polars": lambda: frame.write_parquet(out["polars"], compression="zstd", compression_level=3),  # type: ignore[union-attr]
        "duckdb": lambda: con.execute(
            f"COPY t TO '{out['duckdb']}' (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 3)"
        ),
    }
    # The writers take turns within each round (as the reads do), so a busy spell slows them alike.
    times, results = best_of_each(writes, repeat, {"ticklake": fresh})
    assert len(results["ticklake"]) == 1, results["ticklake"]
    ours_path = results["ticklake"][0].path
    sizes = {"ticklake": ours_path.stat().st_size, **{k: p.stat().st_size for k, p in out.items()}}
    ratio_table(f"write (ZSTD 3) {name}", times, sizes)

    # One New York day in the middle of the month.
    day = dt.date(2024, 4, 16)
    lo = pd.Timestamp(day, tz="America/New_York").tz_convert("UTC")
    hi = lo + pd.Timedelta(days=1)
    symbol = "SPY"
    read_day: dict[str, Callable[[], Any]] = {
        "ticklake": lambda: (
            lake.read_quotes(symbol, day, day, tz="America/New_York")
            if kind == "quotes"
            else lake.read_bars(symbol, "1s", day, day, tz="America/New_York")
        ),
        "pyarrow": lambda: pq.read_table(
            ours_path, filters=[("timestamp", ">=", lo), ("timestamp", "<", hi)]
        ).to_pandas(),
        "polars": lambda: (
            pl.scan_parquet(ours_path).filter((pl.col("timestamp") >= lo) & (pl.col("timestamp") < hi)).collect()
        ),
    }
    read_day["polars -> pandas"] = lambda: read_day["polars"]().to_pandas()
    times, results = best_of_each(read_day, repeat * 3)
    counts = {tool: len(result) for tool, result in results.items()}
    if len(set(counts.values())) != 1:
        print(f"  WARNING: row counts differ: {counts}")
    ratio_table(f"read one New York day ({counts['ticklake']:,} rows) of {name}", times)
    # Issue 13: the one-day read into pandas within 1.2x of polars' filtered scan into its own frame.
    slower = times["ticklake"] / times["polars"]
    bound = "  (issue 13 bound for quotes: <= 1.20x)" if kind == "quotes" else ""
    print(f"  -> ticklake into pandas / polars filtered scan: {slower:.2f}x the time{bound}")

    read_month: dict[str, Callable[[], Any]] = {
        "ticklake": lambda: lake.read_quotes(symbol) if kind == "quotes" else lake.read_bars(symbol, "1s"),
        "pyarrow": lambda: pq.read_table(ours_path).to_pandas(),
        "polars": lambda: pl.read_parquet(ours_path),
    }
    read_month["polars -> pandas"] = lambda: read_month["polars"]().to_pandas()
    times, results = best_of_each(read_month, repeat)
    for tool, result in results.items():
        assert len(result) == table.num_rows, (tool, len(result))
    ratio_table(f"read the whole month of {name} into pandas (polars: its own frame, then pandas)", times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trades", type=int, default=20_000_000)
    parser.add_argument("--quotes", type=int, default=20_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", default=None, help="scratch directory (default: a temporary one)")
    args = parser.parse_args()
    require_release()
    print(machine_line())
    print(
        f"ticklake {ticklake.__version__}, pyarrow {pa.__version__}, polars {pl.__version__}, "
        f"duckdb {duckdb.__version__}, {os.cpu_count()} cpus"
    )
    start, end = dt.date(2024, 4, 1), dt.date(2024, 4, 30)
    bars = ticklake.bars(sample_trades("SPY", start, end, n=args.trades, seed=1), interval="1s")
    quotes = ticklake.best_quotes(sample_quotes("SPY", start, end, n=args.quotes, seed=2))
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        bench_kind("1s bars", bars, Path(scratch), args.repeat)
        bench_kind("1s bars, 44k random seconds a day", busy_month(), Path(scratch), args.repeat)
        bench_kind("quotes", quotes, Path(scratch), args.repeat)


if __name__ == "__main__":
    main()
