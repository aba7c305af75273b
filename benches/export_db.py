"""Exporting a large ``bars_1m`` table: ticklake against ``pandas.read_sql`` + ``to_parquet``, in the same run.

    python benches/export_db.py [--rows N] [--symbols K] [--postgres URL] [--skip-pandas]

The table has the design's columns, timestamps as the text ``pandas.to_sql`` writes (``2024-01-02 14:30:00+00:00``),
ordered as inserted (symbol, then time). ticklake's export runs in a subprocess so its peak memory (VmHWM) is its
own; it writes one file per symbol per month with verification. pandas reads the whole table (``read_sql``),
parses the timestamps and writes one ZSTD Parquet file. With ``--postgres`` the same table is loaded into that
server and exported from there too (rows/s).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

REPO = Path(__file__).resolve().parents[1]

EXPORT = """
import sys, time
from ticklake.exporter import export_to_parquet
t0 = time.perf_counter()
report = export_to_parquet(sys.argv[1], root=sys.argv[2])
elapsed = time.perf_counter() - t0
peak = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")][0] / 1024
print(sum(report.source_rows.values()), len(report.files), elapsed, peak, report.ok)
"""


def make_table(rows: int, symbols: int) -> pa.Table:
    per = rows // symbols
    rng = np.random.default_rng(0)
    # Every minute 04:00-20:00 New York time (EST), weekdays from 2024-01-02.
    days = pd.bdate_range("2024-01-02", periods=per // 960 + 1)
    minutes = pd.DatetimeIndex(np.repeat(days.values, 960)) + pd.to_timedelta(
        np.tile(np.arange(960), len(days)) + 240, "min"
    )
    stamps = minutes.tz_localize("America/New_York").tz_convert("UTC")[:per]
    text = pa.array(stamps.strftime("%Y-%m-%d %H:%M:%S+00:00"), pa.string())
    parts = []
    for k in range(symbols):
        close = np.round(100 + np.cumsum(rng.integers(-3, 4, per)) / 100, 2)
        parts.append(
            pa.table(
                {
                    "symbol": pa.array([f"S{k:03d}"] * per, pa.string()),
                    "timestamp": text,
                    "open": close,
                    "high": close + 0.01,
                    "low": close - 0.01,
                    "close": close,
                    "volume": rng.integers(1, 10_000, per),
                    "vwap": close,
                    "trade_count": rng.integers(1, 50, per),
                }
            )
        )
    return pa.concat_tables(parts)


def run_export(url: str, root: str) -> tuple[int, int, float, float]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(EXPORT), url, root],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    rows, files, elapsed, peak, ok = done.stdout.split()
    assert ok == "True"
    return int(rows), int(files), float(elapsed), float(peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--postgres", default=None, help="postgresql://... to also export from PostgreSQL")
    parser.add_argument("--skip-pandas", action="store_true")
    args = parser.parse_args()
    table = make_table(args.rows, args.symbols)
    print(f"bars_1m: {table.num_rows:,} rows, {args.symbols} symbols")
    with tempfile.TemporaryDirectory() as scratch:
        db = Path(scratch, "market.db")
        import adbc_driver_sqlite.dbapi as sqlite

        t0 = time.perf_counter()
        with sqlite.connect(str(db)) as con, con.cursor() as cur:
            cur.adbc_ingest("bars_1m", table, mode="create")
            con.commit()
        print(f"  (built the SQLite table in {time.perf_counter() - t0:.1f} s, {db.stat().st_size / 1e9:.2f} GB)")

        rows, files, ours, peak = run_export(f"sqlite:///{db}", str(Path(scratch, "lake")))
        print(f"  ticklake export-to-parquet       {ours:7.1f} s  {rows / ours / 1e6:5.2f} M rows/s  "
              f"{files} files, peak memory {peak:.0f} MB")  # fmt: skip
        if not args.skip_pandas:
            t0 = time.perf_counter()
            with sqlite3.connect(db) as con:
                frame = pd.read_sql("SELECT * FROM bars_1m", con)
            frame["timestamp"] = pd.to_datetime(frame["timestamp"], format="ISO8601", utc=True)
            frame.to_parquet(Path(scratch, "pandas.parquet"), compression="zstd", index=False)
            theirs = time.perf_counter() - t0
            print(f"  pandas read_sql + to_parquet     {theirs:7.1f} s  {rows / theirs / 1e6:5.2f} M rows/s  "
                  f"({theirs / ours:.1f}x ticklake's time)")  # fmt: skip
            del frame
        if args.postgres:
            import adbc_driver_postgresql.dbapi as pg

            typed = table.set_column(1, "timestamp", pc.strptime(table["timestamp"], "%Y-%m-%d %H:%M:%S%z", "ns"))
            with pg.connect(args.postgres) as con, con.cursor() as cur:
                cur.execute("DROP TABLE IF EXISTS bars_1m")
                cur.adbc_ingest("bars_1m", typed, mode="create")
                con.commit()
            rows, files, seconds, peak = run_export(args.postgres, str(Path(scratch, "lake-pg")))
            print(f"  ticklake from PostgreSQL         {seconds:7.1f} s  {rows / seconds / 1e6:5.2f} M rows/s  "
                  f"peak memory {peak:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
