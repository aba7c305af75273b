"""Coverage of a lake of 10,000 files: ``Lake.coverage`` against reading every timestamp with DuckDB.

Builds (once; reused when ``--root`` already holds it) a lake of ``--symbols`` x ``--months`` files per kind
(default 500 x 20 = 10,000) of 1s and 1m bars: every minute 04:00-20:00 New York time of each trading day
(21 row groups per 1s file, as the lake writes them; 1m files hold ~20,000 rows like real ones), with about 1% of
the (symbol, day)s missing and 1% cut at noon. Then it times, on a warm page cache:

- ``Lake.coverage("bars/1s")``: footers and row-group statistics only;
- ``Lake.coverage("bars/1s", deep=True)`` and ``Lake.coverage("bars/1m")``: the timestamp column of every file;
- DuckDB counting rows per (file, New York date) over the same files (what one would write without ticklake).

Example:
    $ python benches/coverage.py --root /tmp/coverage-lake
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import ticklake
from harness import machine_line, require_release
from ticklake.sessions import trading_days

NY = "America/New_York"


def month_days(months: int) -> list[dt.date]:
    last = (pd.Timestamp("2023-01-01") + pd.DateOffset(months=months) - pd.Timedelta(days=1)).date()
    return trading_days(dt.date(2023, 1, 1), last)


def symbol_bars(symbol: str, days: list[dt.date], seed: int, with_vwap: bool) -> tuple[pa.Table, int, int]:
    """Bars every minute 04:00-20:00 New York time; ~1% of days missing, ~1% stopping at 12:00."""
    rng = np.random.default_rng(seed)
    fate = rng.random(len(days))
    kept = [d for d, f in zip(days, fate, strict=True) if f >= 0.01]
    cut = {d for d, f in zip(days, fate, strict=True) if 0.01 <= f < 0.02}
    midnights = pd.DatetimeIndex([pd.Timestamp(d) for d in kept]).tz_localize(NY).as_unit("ns").asi8
    minutes = np.arange(4 * 60, 20 * 60, dtype=np.int64) * 60 * 10**9
    stamps = (midnights[:, None] + minutes[None, :]).ravel()
    noon_cut = np.repeat([d in cut for d in kept], len(minutes)) & np.tile(minutes >= 12 * 3600 * 10**9, len(kept))
    stamps = stamps[~noon_cut]
    n = len(stamps)
    close = np.round(100 + np.cumsum(rng.integers(-3, 4, n)) / 100, 2)
    columns: dict[str, object] = {
        "symbol": pa.array(np.full(n, symbol), pa.string()),
        "timestamp": pa.array(stamps, pa.timestamp("ns", tz="UTC")),
        "open": close,
        "high": close + 0.01,
        "low": close - 0.01,
        "close": close,
        "volume": rng.integers(1, 10_000, n).astype(np.int64),
    }
    if with_vwap:
        columns["vwap"] = close
    columns["trade_count"] = rng.integers(1, 50, n).astype(np.int64)
    return pa.table(columns), len(days) - len(kept), len(cut)


def build(root: Path, symbols: int, months: int) -> dict[str, tuple[int, int]]:
    lake = ticklake.Lake(root)
    days = month_days(months)
    holes: dict[str, tuple[int, int]] = {}
    for timeframe in ("1s", "1m"):
        expected = symbols * months
        if len(lake.files(f"bars/{timeframe}")) == expected:
            continue
        started = time.perf_counter()

        def write(i: int, timeframe: str = timeframe) -> tuple[int, int]:
            table, missing, cut = symbol_bars(f"S{i:04d}", days, seed=i, with_vwap=timeframe == "1m")
            lake.write_bars(table, timeframe)  # type: ignore[arg-type]
            return missing, cut

        with ThreadPoolExecutor(max_workers=2) as pool:
            counts = list(pool.map(write, range(symbols)))
        holes[timeframe] = (sum(c[0] for c in counts), sum(c[1] for c in counts))
        files = len(lake.files(f"bars/{timeframe}"))
        print(f"built bars/{timeframe}: {files:,} files in {time.perf_counter() - started:.0f} s")
    return holes


def timed(label: str, call: Callable[[], object], repeat: int) -> tuple[float, object]:
    """Best wall time of ``repeat`` runs, printed with that run's CPU time (this process, all threads) and the
    machine's load: on a shared machine the CPU time says more than the wall time."""
    best, cpu, result = float("inf"), 0.0, None
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        result = call()
        wall = time.perf_counter() - started
        if wall < best:
            best, cpu = wall, time.process_time() - started_cpu
    print(f"{label:62} {best:6.2f} s wall, {cpu:6.2f} s CPU ({machine_line()})")
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default="/tmp/ticklake-coverage-bench", help="lake to build or reuse")
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--months", type=int, default=20, help="months from 2023-01 (default 20)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clean", action="store_true", help="remove the lake afterwards")
    parser.add_argument("--no-duckdb", action="store_true", help="skip the DuckDB comparison (about a minute)")
    args = parser.parse_args()
    require_release()
    root = Path(args.root)
    build(root, args.symbols, args.months)
    lake = ticklake.Lake(root)
    lake.coverage("bars/1m", "S0000")  # the calendar's import and schedule (~0.5 s once per process), not timed
    for kind in ("bars/1s", "bars/1m"):
        files = lake.files(kind)
        size = sum(p.stat().st_size for p in files) / 1e9
        print(f"\n{kind}: {len(files):,} files, {size:.2f} GB, {args.symbols} symbols x {args.months} months")
        variants = [("footers only", False)] if kind == "bars/1s" else []
        variants.append(("timestamps read" + (" (deep=True)" if kind == "bars/1s" else ""), True))
        ours = {}
        for what, deep in variants:
            seconds, frame = timed(
                f"Lake.coverage({kind!r}{', deep=True' if deep and kind == 'bars/1s' else ''}): {what}",
                lambda kind=kind, deep=deep: lake.coverage(kind, deep=deep),
                args.repeat,
            )
            ours[what] = seconds
            assert isinstance(frame, pd.DataFrame)
            counts = frame["status"].value_counts()
            print(
                f"{'':4}{len(frame):,} (symbol, day)s: "
                + ", ".join(f"{int(counts.get(s, 0)):,} {s}" for s in ("full", "partial", "missing"))
                + f"; {len(files) / seconds:,.0f} files/s"
            )
        if args.no_duckdb:
            continue
        import duckdb

        pattern = str(root / kind / "*.parquet")
        query = (
            "SELECT filename, (timestamp AT TIME ZONE 'America/New_York')::DATE AS day, count(*), min(timestamp), "
            f"max(timestamp) FROM read_parquet('{pattern}', filename=true) GROUP BY ALL"
        )
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        duck, _ = timed(
            "DuckDB: rows, first, last per (file, New York date)",
            lambda con=con, query=query: con.execute(query).fetchall(),
            1,
        )
        for what, seconds in ours.items():
            print(f"{'':4}ticklake {what}: {duck / seconds:.1f}x DuckDB's read of every timestamp")
    if args.clean:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
