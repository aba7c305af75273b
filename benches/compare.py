"""ticklake vs numpy / polars / pandas / DuckDB on a realistic month of one liquid symbol.

    python benches/compare.py [--trades N] [--quotes N] [--repeat K]
    python benches/compare.py --quote-memory [--quotes N]     # peak RSS of streaming quotes (run as a subprocess)
    python benches/compare.py --sweep [--sweep-trades N]      # 1s bars over trades per bar x symbols (see below)

Input: ``ticklake.sample`` trades and quotes for SPY, April 2024 (seeded). Only the columns a job needs are kept
before timing; conversions to each tool's native frame (pandas DataFrame, numpy arrays, DuckDB registration) happen
outside the timed region, while every tool's own output construction is inside it. Each timing is the best of
``--repeat`` runs (a tool whose first run takes over ``SLOW_S`` seconds runs once). Every alternative's result is
checked against ticklake (row count, plus column sums for bars) and a warning is printed on any mismatch.

``--sweep`` runs only the shape sweep: 1s bars at 1 to 1,000 trades per bar, of one symbol and of 500 interleaved
symbols, ticklake on 1 and 2 threads and its default, plain and with Alpaca's rules, against numpy ``reduceat`` and
polars doing plain bars on the same trades; the variants alternate within each round and the best round counts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import harness
import numpy as np
import pyarrow as pa
import ticklake
from harness import rss_mb
from ticklake.sample import sample_quotes, sample_trades

try:
    import polars as pl
except ImportError:  # pragma: no cover - optional
    pl = None
try:
    import duckdb
except ImportError:  # pragma: no cover - optional
    duckdb = None
try:
    import pandas as pd
except ImportError:  # pragma: no cover - optional
    pd = None

NS = 1_000_000_000


SLOW_S = 15.0
START, END = dt.date(2024, 4, 1), dt.date(2024, 4, 30)

ROWS: list[dict[str, Any]] = []
NOTES: list[str] = []


# --------------------------------------------------------------------------------------------------------- helpers
def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    return harness.best_of(fn, repeat, stop_after=SLOW_S)


def record(job: str, tool: str, seconds: float, n_in: int, n_out: int | None, note: str = "") -> None:
    ROWS.append({"job": job, "tool": tool, "s": seconds, "n": n_in, "out": n_out, "note": note})
    print(f"  {job:<22} {tool:<28} {seconds:8.3f} s  {n_in / seconds / 1e6:8.1f} M rows/s  out={n_out}", flush=True)


def warn(msg: str) -> None:
    print(f"  WARNING: {msg}", flush=True)
    NOTES.append("WARNING: " + msg)


def int64_view(col: pa.ChunkedArray) -> np.ndarray:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_timestamp(arr.type):
        arr = arr.cast(pa.int64())
    return arr.to_numpy(zero_copy_only=False)


def np_col(tbl: pa.Table, name: str) -> np.ndarray:
    return int64_view(tbl.column(name)) if name == "timestamp" else tbl.column(name).combine_chunks().to_numpy()


def starts_of(bucket: np.ndarray) -> np.ndarray:
    """Start index of each run of equal values (input sorted)."""
    return np.concatenate(([0], np.flatnonzero(np.diff(bucket)) + 1))


def machine_info() -> None:
    print("=== machine ===")
    print(f"nproc            {os.cpu_count()} (affinity {len(os.sched_getaffinity(0))})")
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"cpu              {cpu}")
    try:
        with open("/proc/meminfo") as f:
            print(f"memory           {int(f.readline().split()[1]) / 1024**2:.1f} GiB")
    except OSError:
        pass
    print(f"python           {platform.python_version()}  ({platform.platform()})")
    print(f"ticklake         {ticklake.__version__}")
    print(f"pyarrow          {pa.__version__}")
    print(f"numpy            {np.__version__}")
    print(f"pandas           {pd.__version__ if pd else 'not installed'}")
    print(f"polars           {pl.__version__ if pl else 'not installed'}")
    print(f"duckdb           {duckdb.__version__ if duckdb else 'not installed'}")
    for lib, mod in (("polars", pl), ("duckdb", duckdb), ("pandas", pd)):
        if mod is None:
            NOTES.append(f"{lib} is not importable: its rows are skipped")


def measured_bandwidth() -> float:
    """Single-threaded read bandwidth: best of 5 ``arr.sum()`` over a 1 GB float64 array (GB/s)."""
    a = np.ones(1_000_000_000 // 8, dtype=np.float64)
    a.sum()
    best = min(_timed(a.sum) for _ in range(5))
    read = a.nbytes / best / 1e9
    b = np.empty_like(a)
    copy = min(_timed(lambda a=a, b=b: np.copyto(b, a)) for _ in range(3))
    del a, b
    gc.collect()
    print(
        f"measured memory bandwidth: read (arr.sum, 1 GB) {read:.1f} GB/s; "
        f"np.copyto 1 GB {2 * 1e9 / copy / 1e9:.1f} GB/s (read+write)"
    )
    return read


def _timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# ------------------------------------------------------------------------------------------------------------ bars
def np_bars(ts: np.ndarray, price: np.ndarray, size: np.ndarray, length_ns: int, vwap: bool) -> dict[str, np.ndarray]:
    bucket = ts // length_ns
    starts = starts_of(bucket)
    n = len(ts)
    ends = np.append(starts[1:], n)
    out = {
        "timestamp": bucket[starts] * length_ns,
        "open": price[starts],
        "high": np.maximum.reduceat(price, starts),
        "low": np.minimum.reduceat(price, starts),
        "close": price[ends - 1],
        "volume": np.add.reduceat(size, starts),
    }
    if vwap:
        out["vwap"] = np.add.reduceat(price * size, starts) / out["volume"]
    out["trade_count"] = ends - starts
    return out


def bars_aggs(vwap: bool) -> list:
    p, s = pl.col("price"), pl.col("size")
    aggs = [
        p.first().alias("open"),
        p.max().alias("high"),
        p.min().alias("low"),
        p.last().alias("close"),
        s.sum().alias("volume"),
    ]
    if vwap:
        aggs.append(((p * s).sum() / s.sum()).alias("vwap"))
    aggs.append(pl.len().alias("trade_count"))
    return aggs


def polars_bars_candidates(df: Any, every: str, vwap: bool) -> dict[str, Callable[[], Any]]:
    length_ns = {"1s": NS, "1m": 60 * NS}[every]
    aggs = bars_aggs(vwap)
    return {
        "group_by_dynamic": lambda: df.group_by_dynamic("timestamp", every=every).agg(aggs),
        "truncate+group_by(maintain_order)": lambda: df.group_by(
            pl.col("timestamp").dt.truncate(every), maintain_order=True
        ).agg(aggs),
        "int bucket+group_by(maintain_order)": lambda: df.group_by(
            (pl.col("timestamp").cast(pl.Int64) // length_ns).alias("bucket"), maintain_order=True
        ).agg(aggs),
    }


def pandas_bars(df: Any, every: str, vwap: bool) -> Any:
    key = df["timestamp"].dt.floor(every.replace("m", "min"))
    if vwap:
        df = df.assign(pv=df["price"] * df["size"])
    g = df.groupby(key, sort=False)
    out = g.agg(
        open=("price", "first"),
        high=("price", "max"),
        low=("price", "min"),
        close=("price", "last"),
        volume=("size", "sum"),
        trade_count=("size", "size"),
    )
    if vwap:
        out["vwap"] = g["pv"].sum() / out["volume"]
    return out


def duckdb_bars_sql(every: str, vwap: bool) -> str:
    unit = {"1s": "second", "1m": "minute"}[every]
    v = ", sum(price * size) / sum(size) AS vwap" if vwap else ""
    # Bursts share one timestamp, so open/close are decided by row position (column i), not the timestamp.
    return f"""
        SELECT date_trunc('{unit}', timestamp) AS ts,
               arg_min(price, i) AS open, max(price) AS high, min(price) AS low, arg_max(price, i) AS close,
               sum(size) AS volume{v}, count(*) AS trade_count
        FROM trades GROUP BY 1 ORDER BY 1"""


def check_bars(tool: str, got: dict[str, np.ndarray], ref: pa.Table) -> None:
    if len(got["open"]) != ref.num_rows:
        warn(f"{tool}: {len(got['open'])} bars vs ticklake {ref.num_rows}")
        return
    for name in ("open", "high", "low", "close", "volume", "trade_count", "vwap"):
        if name not in got or name not in ref.column_names:
            continue
        a = np.asarray(got[name], dtype=np.float64)
        b = ref.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
        if not np.allclose(a, b, rtol=1e-9, atol=1e-9, equal_nan=True):
            bad = int(np.sum(~np.isclose(a, b, rtol=1e-9, atol=1e-9, equal_nan=True)))
            warn(f"{tool}: column {name} differs from ticklake in {bad} bars")


def frame_cols(obj: Any) -> dict[str, np.ndarray]:
    if pl is not None and isinstance(obj, pl.DataFrame):
        return {c: obj[c].to_numpy() for c in obj.columns}
    if pd is not None and isinstance(obj, pd.DataFrame):
        return {c: obj[c].to_numpy() for c in obj.columns}
    if isinstance(obj, pa.Table):
        return {c: obj.column(c).to_numpy(zero_copy_only=False) for c in obj.column_names}
    return obj


def bench_bars(args: argparse.Namespace) -> None:
    print(f"\n=== trades: generating {args.trades:,} SPY trades, {START} .. {END} ===", flush=True)
    t0 = time.perf_counter()
    full = sample_trades("SPY", START, END, n=args.trades, seed=1, start_price=500.0)
    full = full.combine_chunks()
    print(f"generated in {time.perf_counter() - t0:.1f} s; {full.nbytes / 1e9:.2f} GB in Arrow", flush=True)
    n = full.num_rows

    # Extra row: Alpaca condition rules applied on the full table (conditions, tape, update, symbol, ...).
    job = "bars 1s alpaca (full)"
    secs, out = best_of(lambda full=full: ticklake.bars(full, interval="1s", conditions="alpaca"), args.repeat)
    record(job, "ticklake", secs, n, out.num_rows, "all 9 columns; conditions/tape/update rules applied")
    del out

    tbl = full.select(["timestamp", "price", "size"])
    del full
    gc.collect()
    in_bytes = tbl.nbytes
    ts, price, size = np_col(tbl, "timestamp"), np_col(tbl, "price"), np_col(tbl, "size")
    pdf = tbl.to_pandas() if pd is not None else None
    pldf = pl.from_arrow(tbl) if pl is not None else None
    con = None
    if duckdb is not None:
        con = duckdb.connect()
        con.execute("SET TimeZone='UTC'")
        dtbl = tbl.append_column("i", pa.array(np.arange(n, dtype=np.int64)))
        con.register("trades", dtbl)

    for every, vwap in (("1s", False), ("1m", True)):
        job = f"bars {every}" + (" +vwap" if vwap else "")
        secs, ref = best_of(lambda tbl=tbl, every=every: ticklake.bars(tbl, interval=every, symbol="SPY"), args.repeat)
        record(job, "ticklake", secs, n, ref.num_rows, f"reads {in_bytes / 1e9:.2f} GB")
        ROWS[-1]["bytes"] = in_bytes
        # Same result as conditions="all" (no conditions column): a cheap sanity check.
        if every == "1s":
            alt = ticklake.bars(tbl, interval=every, symbol="SPY", conditions="all")
            if not alt.equals(ref):
                warn("ticklake conditions='alpaca' without a conditions column differs from conditions='all'")
            del alt
        length_ns = {"1s": NS, "1m": 60 * NS}[every]
        secs, got = best_of(
            lambda ts=ts, price=price, size=size, ns=length_ns, vwap=vwap: np_bars(ts, price, size, ns, vwap),
            args.repeat,
        )
        record(job, "numpy (reduceat)", secs, n, len(got["open"]))
        check_bars("numpy " + job, got, ref)
        del got

        if pldf is not None:
            best = None
            for name, fn in polars_bars_candidates(pldf, every, vwap).items():
                try:
                    secs, got = best_of(fn, args.repeat)
                except Exception as exc:
                    print(f"  polars {name}: failed ({type(exc).__name__}: {exc})")
                    continue
                ok = got.height == ref.num_rows
                print(f"    polars candidate {name:<38} {secs:7.3f} s rows={got.height}{'' if ok else ' (MISMATCH)'}")
                if ok and (best is None or secs < best[1]):
                    best = (name, secs, got)
            if best is None:
                warn(f"polars {job}: no formulation matched ticklake's row count")
            else:
                name, secs, got = best
                record(job, f"polars ({name})", secs, n, got.height)
                check_bars("polars " + job, frame_cols(got), ref)
            del best, got

        if pdf is not None and (True):
            secs, got = best_of(lambda pdf=pdf, every=every, vwap=vwap: pandas_bars(pdf, every, vwap), args.repeat)
            record(job, "pandas (groupby floor)", secs, n, len(got))
            check_bars("pandas " + job, frame_cols(got), ref)
            del got

        if con is not None:
            sql = duckdb_bars_sql(every, vwap)
            secs, got = best_of(lambda con=con, sql=sql: con.sql(sql).to_arrow_table(), args.repeat)
            record(job, "duckdb (date_trunc, arg_min)", secs, n, got.num_rows)
            check_bars("duckdb " + job, frame_cols(got), ref)
            del got
        del ref
        gc.collect()

    del tbl, ts, price, size, pdf, pldf
    if con is not None:
        con.close()
    gc.collect()
    pa.default_memory_pool().release_unused()


# ----------------------------------------------------------------------------------------------------- best quotes
def micros(x: np.ndarray) -> np.ndarray:
    return (x * 1e6 + 0.5).astype(np.int64)


def np_best_quotes(
    ts: np.ndarray, bid: np.ndarray, bsz: np.ndarray, ask: np.ndarray, asz: np.ndarray
) -> dict[str, np.ndarray]:
    """Per-second argmin of the spread via one ``np.minimum.reduceat`` over ``spread << bits | row``.

    The row index in the low bits breaks ties towards the earliest quote; invalid quotes get a key above any spread.
    """
    n = len(ts)
    bits = max(int(n).bit_length(), 1)
    spread = micros(ask) - micros(bid)
    valid = (bid > 0) & (ask > 0) & (bsz > 0) & (asz > 0) & (spread >= 0)
    big = np.int64(1) << (62 - bits)
    key = np.where(valid, spread, big)
    key <<= bits
    key |= np.arange(n, dtype=np.int64)
    sec = ts // NS
    starts = starts_of(sec)
    best = np.minimum.reduceat(key, starts)
    keep = (best >> bits) < big
    best = best[keep]
    idx = best & ((np.int64(1) << bits) - 1)
    return {
        "timestamp": sec[starts[keep]] * NS,
        "bid_price": bid[idx],
        "bid_size": bsz[idx],
        "ask_price": ask[idx],
        "ask_size": asz[idx],
        "spread": (best >> bits) / 1e6,
    }


def polars_quotes_candidates(df: Any) -> dict[str, Callable[[], Any]]:
    def prepared() -> Any:
        key = (pl.col("ask_price") * 1e6 + 0.5).cast(pl.Int64) - (pl.col("bid_price") * 1e6 + 0.5).cast(pl.Int64)
        return (
            df.lazy()
            .with_columns(key.alias("key"), pl.col("timestamp").dt.truncate("1s").alias("second"))
            .filter(
                (pl.col("bid_price") > 0)
                & (pl.col("ask_price") > 0)
                & (pl.col("bid_size") > 0)
                & (pl.col("ask_size") > 0)
                & (pl.col("key") >= 0)
            )
        )

    cols = ["bid_price", "bid_size", "ask_price", "ask_size", "key"]
    return {
        "group_by(maintain_order).get(arg_min)": lambda: (
            prepared().group_by("second", maintain_order=True).agg(pl.col(cols).get(pl.col("key").arg_min())).collect()
        ),
        "sort(second,key; stable)+unique(first)": lambda: (
            prepared()
            .sort(["second", "key"], maintain_order=True)
            .unique(subset="second", keep="first", maintain_order=True)
            .collect()
        ),
        "filter(key==min.over)+unique(first)": lambda: (
            prepared()
            .filter(pl.col("key") == pl.col("key").min().over("second"))
            .unique(subset="second", keep="first", maintain_order=True)
            .collect()
        ),
    }


def pandas_best_quotes(df: Any) -> Any:
    bid, ask = df["bid_price"].to_numpy(), df["ask_price"].to_numpy()
    key = pd.Series(micros(ask) - micros(bid), index=df.index)
    valid = (bid > 0) & (ask > 0) & (df["bid_size"].to_numpy() > 0) & (df["ask_size"].to_numpy() > 0) & (key >= 0)
    v = key[valid]
    idx = v.groupby(df["timestamp"][valid].dt.floor("1s"), sort=False).idxmin()
    out = df.loc[idx.to_numpy()]
    return out.assign(timestamp=idx.index, spread=key[idx.to_numpy()].to_numpy() / 1e6)


DUCKDB_QUOTES = {
    "arg_min(spread<<26|row)": """
        WITH v AS (
            SELECT date_trunc('second', timestamp) AS s, bid_price, bid_size, ask_price, ask_size,
                   CAST(floor(ask_price * 1e6 + 0.5) AS BIGINT) - CAST(floor(bid_price * 1e6 + 0.5) AS BIGINT) AS key,
                   i
            FROM quotes WHERE bid_price > 0 AND ask_price > 0 AND bid_size > 0 AND ask_size > 0)
        SELECT s AS timestamp, arg_min(bid_price, ck) AS bid_price, arg_min(bid_size, ck) AS bid_size,
               arg_min(ask_price, ck) AS ask_price, arg_min(ask_size, ck) AS ask_size, min(key) / 1e6 AS spread
        FROM (SELECT *, key * {shift} + i AS ck FROM v WHERE key >= 0)
        GROUP BY s ORDER BY s""",
    "QUALIFY row_number()": """
        SELECT date_trunc('second', timestamp) AS timestamp, bid_price, bid_size, ask_price, ask_size,
               (CAST(floor(ask_price * 1e6 + 0.5) AS BIGINT) - CAST(floor(bid_price * 1e6 + 0.5) AS BIGINT)) / 1e6
                   AS spread
        FROM quotes
        WHERE bid_price > 0 AND ask_price > 0 AND bid_size > 0 AND ask_size > 0
          AND CAST(floor(ask_price * 1e6 + 0.5) AS BIGINT) >= CAST(floor(bid_price * 1e6 + 0.5) AS BIGINT)
        QUALIFY row_number() OVER (PARTITION BY date_trunc('second', timestamp)
                                   ORDER BY CAST(floor(ask_price * 1e6 + 0.5) AS BIGINT)
                                            - CAST(floor(bid_price * 1e6 + 0.5) AS BIGINT), i) = 1
        ORDER BY 1""",
}


def check_quotes(tool: str, got: dict[str, np.ndarray], ref: pa.Table) -> None:
    rows = len(next(iter(got.values())))
    if rows != ref.num_rows:
        warn(f"{tool}: {rows} best quotes vs ticklake {ref.num_rows}")
        return
    for name in ("bid_price", "ask_price", "bid_size", "ask_size", "spread"):
        if name in got:
            a = np.asarray(got[name], dtype=np.float64)
            b = ref.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
            if not np.allclose(a, b, rtol=0, atol=1e-9):
                warn(f"{tool}: column {name} differs from ticklake in {int(np.sum(~np.isclose(a, b)))} seconds")


def bench_quotes(args: argparse.Namespace) -> None:
    print(f"\n=== quotes: generating {args.quotes:,} SPY quotes, {START} .. {END} ===", flush=True)
    t0 = time.perf_counter()
    q = sample_quotes("SPY", START, END, n=args.quotes, seed=1, start_price=500.0)
    q = q.select(["timestamp", "bid_price", "bid_size", "ask_price", "ask_size"]).combine_chunks()
    gc.collect()
    print(f"generated in {time.perf_counter() - t0:.1f} s; {q.nbytes / 1e9:.2f} GB in Arrow (5 columns)", flush=True)
    n = q.num_rows
    in_bytes = q.nbytes
    job = "best quotes 1s"

    secs, ref = best_of(lambda q=q: ticklake.best_quotes(q, symbol="SPY"), args.repeat)
    record(job, "ticklake", secs, n, ref.num_rows, f"reads {in_bytes / 1e9:.2f} GB")
    ROWS[-1]["bytes"] = in_bytes

    arrays = [np_col(q, c) for c in ("timestamp", "bid_price", "bid_size", "ask_price", "ask_size")]
    secs, got = best_of(lambda arrays=arrays: np_best_quotes(*arrays), args.repeat)
    record(job, "numpy (reduceat argmin)", secs, n, len(got["spread"]))
    check_quotes("numpy", got, ref)
    del got, arrays

    if pl is not None:
        df = pl.from_arrow(q)
        best = None
        for name, fn in polars_quotes_candidates(df).items():
            try:
                secs, got = best_of(fn, args.repeat)
            except Exception as exc:
                print(f"  polars {name}: failed ({type(exc).__name__}: {exc})")
                continue
            ok = got.height == ref.num_rows
            print(f"    polars candidate {name:<38} {secs:7.3f} s rows={got.height}{'' if ok else ' (MISMATCH)'}")
            if ok and (best is None or secs < best[1]):
                best = (name, secs, got)
            del got
        if best is None:
            warn("polars best quotes: no formulation matched ticklake's row count")
        else:
            name, secs, got = best
            record(job, f"polars ({name})", secs, n, got.height)
            check_quotes("polars", frame_cols(got), ref)
        del best, df
        gc.collect()

    if pd is not None:
        pdf = q.to_pandas()
        secs, got = best_of(lambda: pandas_best_quotes(pdf), args.repeat)
        record(job, "pandas (groupby idxmin)", secs, n, len(got))
        check_quotes("pandas", frame_cols(got), ref)
        del got, pdf
        gc.collect()

    if duckdb is not None:
        con = duckdb.connect()
        con.execute("SET TimeZone='UTC'")
        con.register("quotes", q.append_column("i", pa.array(np.arange(n, dtype=np.int64))))
        best = None
        for name, sql in DUCKDB_QUOTES.items():
            sql = sql.format(shift=1 << max(n.bit_length(), 1))
            secs, got = best_of(lambda con=con, sql=sql: con.sql(sql).to_arrow_table(), args.repeat)
            ok = got.num_rows == ref.num_rows
            print(f"    duckdb candidate {name:<38} {secs:7.3f} s rows={got.num_rows}{'' if ok else ' (MISMATCH)'}")
            if ok and (best is None or secs < best[1]):
                best = (name, secs, got)
            del got
        if best is None:
            warn("duckdb best quotes: no formulation matched ticklake's row count")
        else:
            name, secs, got = best
            record(job, f"duckdb ({name})", secs, n, got.num_rows)
            check_quotes("duckdb", frame_cols(got), ref)
        del best
        con.close()
    del q, ref
    gc.collect()


# ----------------------------------------------------------------------------------------------------- shape sweep
SWEEP_PER_BAR = (1, 3, 10, 30, 100, 1000)
SWEEP_SYMBOLS = (1, 500)
# The condition lists of a liquid Nasdaq-listed symbol (tape C) and their rough shares: regular, odd lot, sweep,
# extended hours, and their combinations.
SWEEP_LISTS = [["@"], ["@", "I"], ["@", "F"], ["@", "T"], ["@", "F", "I"], ["@", "T", "I"]]
SWEEP_WEIGHTS = [0.45, 0.33, 0.08, 0.05, 0.05, 0.04]
SWEEP_START_NS = 1_712_000_000 * NS


def sweep_trades(n: int, per_bar: int, symbols: int, seed: int) -> pa.Table:
    """``n`` time-sorted trades of ``symbols`` interleaved symbols, ``per_bar`` trades per (symbol, second) on
    average (every bar has at least one), with Alpaca condition lists, tape and update columns."""
    rng = np.random.default_rng(seed)
    counts = 1 + rng.poisson(per_bar - 1, 2 * (n // per_bar) + 10)
    bar = np.repeat(np.arange(len(counts)), counts)[:n]
    # Bar b belongs to symbol b % symbols in second b // symbols; trades fall anywhere in their second.
    ts = SWEEP_START_NS + (bar // symbols) * NS + rng.integers(0, NS, n)
    # Some trades share a timestamp with the one before (bursts).
    order = np.argsort(ts, kind="stable")
    ts, bar = ts[order], bar[order]
    same = rng.random(n) < 0.05
    same[0] = False
    same &= np.concatenate(([False], bar[1:] // symbols == bar[:-1] // symbols))
    ts = np.where(same, np.concatenate(([0], ts[:-1])), ts)
    ts = np.maximum.accumulate(ts)
    cents = 50_000 + np.cumsum(rng.integers(-1, 2, n))
    odd = rng.random(n) < 0.4
    size = np.where(odd, rng.integers(1, 100, n), 100 * rng.geometric(0.5, n)).astype(np.int64)
    lists = pa.array(SWEEP_LISTS, pa.list_(pa.string()))
    which = rng.choice(len(SWEEP_LISTS), size=n, p=SWEEP_WEIGHTS)
    cols: dict[str, Any] = {}
    if symbols > 1:
        names = np.array([f"S{i:03d}" for i in range(symbols)])
        cols["symbol"] = pa.array(names[bar % symbols], pa.string())
    canceled = rng.random(n) < 0.0005
    cols |= {
        "timestamp": pa.array(ts, pa.timestamp("ns", tz="UTC")),
        "price": pa.array(cents / 100.0, pa.float64()),
        "size": pa.array(size, pa.int64()),
        "conditions": lists.take(pa.array(which)),
        "tape": pa.repeat(pa.scalar("C"), n),
        "update": pa.array(np.full(n, "canceled"), pa.string(), mask=~canceled),
    }
    return pa.table(cols)


def np_bars_symbols(
    sym: np.ndarray, ts: np.ndarray, price: np.ndarray, size: np.ndarray, length_ns: int
) -> dict[str, np.ndarray]:
    """Bars per (symbol, interval) with numpy: one stable argsort on a packed (symbol, bucket) key, then
    ``reduceat`` as for one symbol (the symbol codes are given, as a numpy user would have them)."""
    bucket = ts // length_ns
    key = (sym.astype(np.int64) << 40) | (bucket - bucket[0])
    order = np.argsort(key, kind="stable")
    key, price, size = key[order], price[order], size[order]
    starts = starts_of(key)
    ends = np.append(starts[1:], len(key))
    return {
        "symbol": key[starts] >> 40,
        "timestamp": ((key[starts] & ((1 << 40) - 1)) + bucket[0]) * length_ns,
        "open": price[starts],
        "high": np.maximum.reduceat(price, starts),
        "low": np.minimum.reduceat(price, starts),
        "close": price[ends - 1],
        "volume": np.add.reduceat(size, starts),
        "trade_count": ends - starts,
    }


def polars_sweep_candidates(df: Any, symbols: int) -> dict[str, Callable[[], Any]]:
    aggs = bars_aggs(vwap=False)
    if symbols == 1:
        return {
            "group_by_dynamic": lambda: df.group_by_dynamic("timestamp", every="1s").agg(aggs),
            "truncate+group_by": lambda: df.group_by(pl.col("timestamp").dt.truncate("1s"), maintain_order=True).agg(
                aggs
            ),
        }
    return {
        "group_by_dynamic": lambda: (
            df.group_by_dynamic("timestamp", every="1s", group_by="symbol")
            .agg(aggs)
            .sort("symbol", maintain_order=True)
        ),
        "truncate+group_by": lambda: (
            df.group_by("symbol", pl.col("timestamp").dt.truncate("1s")).agg(aggs).sort("symbol", "timestamp")
        ),
    }


def alternating_best(fns: dict[str, Callable[[], Any]], repeat: int) -> tuple[dict[str, float], dict[str, Any]]:
    """Best wall time of each function over ``repeat`` rounds, the functions alternating within a round (so a
    load spike on the shared machine hits all of them alike), and each one's last result."""
    best = dict.fromkeys(fns, float("inf"))
    last: dict[str, Any] = {}
    for _ in range(repeat):
        for name, fn in fns.items():
            last[name] = None
            gc.collect()
            t0 = time.perf_counter()
            last[name] = fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best, last


def sweep_shape(n: int, per_bar: int, symbols: int, repeat: int) -> dict[str, Any]:
    """One shape of the sweep: every variant timed on the same trades, results checked against threads=1."""
    full = sweep_trades(n, per_bar, symbols, seed=per_bar * 7 + symbols)
    plain = full.select([c for c in ("symbol", "timestamp", "price", "size") if c in full.column_names])
    fill = None if symbols > 1 else "SPY"
    ts, price, size = np_col(plain, "timestamp"), np_col(plain, "price"), np_col(plain, "size")
    fns: dict[str, Callable[[], Any]] = {}
    for threads in (1, 2, None):
        tag = {1: "t1", 2: "t2", None: "default"}[threads]
        fns[f"plain {tag}"] = lambda t=threads: ticklake.bars(
            plain, interval="1s", symbol=fill, conditions="all", threads=t
        )
        fns[f"alpaca {tag}"] = lambda t=threads: ticklake.bars(
            full, interval="1s", symbol=fill, conditions="alpaca", threads=t
        )
    if symbols == 1:
        fns["numpy"] = lambda: np_bars(ts, price, size, NS, vwap=False)
    else:
        codes = plain.column("symbol").combine_chunks().dictionary_encode().indices.to_numpy()
        fns["numpy"] = lambda: np_bars_symbols(codes, ts, price, size, NS)
    polars_names = []
    if pl is not None:
        df = pl.from_arrow(plain)
        for name, fn in polars_sweep_candidates(df, symbols).items():
            fns[f"polars {name}"] = fn
            polars_names.append(f"polars {name}")
    best, last = alternating_best(fns, repeat)
    shape = f"sweep {symbols} symbols x {per_bar}/bar"
    bars_out = last["plain t1"].num_rows
    for kind in ("plain", "alpaca"):
        for tag in ("t2", "default"):
            if not last[f"{kind} {tag}"].equals(last[f"{kind} t1"]):
                warn(f"{shape}: ticklake {kind} {tag} differs from threads=1")
    got = last["numpy"]
    if len(got["open"]) != bars_out:
        warn(f"{shape}: numpy gives {len(got['open'])} bars vs ticklake {bars_out}")
    elif symbols == 1 and not np.array_equal(got["close"], np_col(last["plain t1"], "close")):
        warn(f"{shape}: numpy closes differ from ticklake's")
    for name in polars_names:
        if last[name].height != bars_out:
            warn(f"{shape}: {name} gives {last[name].height} bars vs ticklake {bars_out}")
    alts = {"numpy": best["numpy"]} | {name: best[name] for name in polars_names}
    fastest = min(alts, key=alts.__getitem__)
    return {
        "symbols": symbols,
        "per_bar": n / bars_out,
        "bars": bars_out,
        **best,
        "alt": alts[fastest],
        "fastest": fastest,
    }


def bench_sweep(args: argparse.Namespace) -> None:
    """1s bars over a grid of shapes (trades per bar x symbols), ticklake on 1 and 2 threads and its default, plain
    and with Alpaca's rules, against numpy reduceat and polars doing plain bars on the same trades."""
    n = args.sweep_trades
    print(f"\n=== shape sweep: {n:,} trades per shape, 1s bars, best of {args.repeat} alternating rounds ===")
    lines = []
    for symbols in SWEEP_SYMBOLS:
        for per_bar in SWEEP_PER_BAR:
            r = sweep_shape(n, per_bar, symbols, args.repeat)
            lines.append(r)
            print(
                f"  {symbols:>3} sym x {per_bar:>4}/bar: plain t1 {r['plain t1'] * 1e3:7.1f} ms t2 "
                f"{r['plain t2'] * 1e3:7.1f} default {r['plain default'] * 1e3:7.1f} | alpaca t1 "
                f"{r['alpaca t1'] * 1e3:7.1f} t2 {r['alpaca t2'] * 1e3:7.1f} default "
                f"{r['alpaca default'] * 1e3:7.1f} | {r['fastest']} {r['alt'] * 1e3:7.1f} ms",
                flush=True,
            )
            gc.collect()
    print(
        "\n=== shape sweep (ms; ratio = fastest alternative's plain bars / ticklake's default; t2/t1 = 2 threads over"
        " 1, above 1.05 is a loss) ==="
    )
    header = (
        f"{'sym':>4} {'tr/bar':>7} {'bars':>9} | {'plain t1':>8} {'t2':>7} {'dflt':>7} | {'alpaca t1':>9} {'t2':>7} "
        f"{'dflt':>7} | {'numpy':>7} {'polars':>7} | {'plain x':>7} {'alpaca x':>8} | {'t2/t1 p':>7} {'t2/t1 a':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in lines:
        polars_best = min((v for k, v in r.items() if k.startswith("polars ")), default=float("nan"))
        print(
            f"{r['symbols']:>4} {r['per_bar']:>7.1f} {r['bars']:>9,} | {r['plain t1'] * 1e3:8.1f} "
            f"{r['plain t2'] * 1e3:7.1f} {r['plain default'] * 1e3:7.1f} | {r['alpaca t1'] * 1e3:9.1f} "
            f"{r['alpaca t2'] * 1e3:7.1f} {r['alpaca default'] * 1e3:7.1f} | {r['numpy'] * 1e3:7.1f} "
            f"{polars_best * 1e3:7.1f} | {r['alt'] / r['plain default']:7.2f} {r['alt'] / r['alpaca default']:8.2f} | "
            f"{r['plain t2'] / r['plain t1']:7.2f} {r['alpaca t2'] / r['alpaca t1']:7.2f}"
        )
    worst = max(
        r[f"{kind} {tag}"] / r[f"{kind} t1"] for r in lines for kind in ("plain", "alpaca") for tag in ("t2", "default")
    )
    print(
        f"min plain ratio {min(r['alt'] / r['plain default'] for r in lines):.2f}x, min alpaca ratio "
        f"{min(r['alt'] / r['alpaca default'] for r in lines):.2f}x, worst (t2 or default) / t1 {worst:.2f}"
    )


# ---------------------------------------------------------------------------------------------- streaming memory
def quote_memory(args: argparse.Namespace) -> None:
    """Generates a month of quotes, then streams it through QuoteSampler in 1M-row batches; reports peak RSS."""
    batch = 1_000_000
    q = sample_quotes("SPY", START, END, n=args.quotes, seed=1, start_price=500.0).combine_chunks()
    gc.collect()
    base = rss_mb()
    maxrss_gen = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # Reset the VmHWM watermark so the generator's temporaries do not count (ru_maxrss cannot be reset: it keeps
    # the lifetime peak, which includes generation).
    reset = True
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        reset = False
    peak_sampled = base
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak_sampled
        while not stop.is_set():
            peak_sampled = max(peak_sampled, rss_mb())
            time.sleep(0.002)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    t0 = time.perf_counter()
    sampler = ticklake.QuoteSampler(symbol="SPY")
    outs = [sampler.push(q.slice(i, batch)) for i in range(0, q.num_rows, batch)]
    outs.append(sampler.finish())
    elapsed = time.perf_counter() - t0
    stop.set()
    watcher.join()
    peak_sampled = max(peak_sampled, rss_mb())
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    hwm = rss_mb("VmHWM")
    rows = sum(o.num_rows for o in outs)
    out_mb = sum(o.nbytes for o in outs) / 2**20
    print(
        f"quotes: {q.num_rows:,} rows, {q.nbytes / 2**20:.0f} MB in Arrow (all 8 columns); "
        f"RSS after generation {base:.0f} MB"
    )
    print(
        f"streamed in {elapsed:.2f} s ({q.num_rows / elapsed / 1e6:.1f} M rows/s) in {batch:,}-row batches; "
        f"{rows:,} best quotes kept ({out_mb:.1f} MB of output held)"
    )
    # ru_maxrss is max(hiwater of this mm, signal maxrss); the latter is inherited over fork+exec from the parent,
    # so it can be stuck at the parent's peak. VmHWM (reset above) is the reliable peak for the streaming phase.
    usable = maxrss != maxrss_gen
    note = (
        "reset with VmHWM"
        if maxrss < maxrss_gen
        else "raised by streaming"
        if maxrss > maxrss_gen
        else "unchanged: a lifetime/inherited peak (generator or parent process), so not used"
    )
    print(f"ru_maxrss {maxrss_gen:.0f} MB after generation, {maxrss:.0f} MB after streaming ({note})")
    print(
        f"VmHWM during streaming {hwm:.0f} MB ({'reset after generation' if reset else 'NOT reset: lifetime peak'}); "
        f"sampled VmRSS peak (2 ms) {peak_sampled:.0f} MB"
    )
    peak = max(peak_sampled, hwm if reset else 0.0, maxrss if usable else 0.0)
    print(f"peak above input: {peak - base:.0f} MB")


# --------------------------------------------------------------------------------------------------------- report
def report(bw_read: float) -> None:
    print("\n=== results (best of repeat; ratio = tool time / ticklake time for the same job) ===")
    header = f"{'job':<22} {'tool':<42} {'seconds':>9} {'M rows/s':>9} {'ratio':>7}"
    print(header)
    print("-" * len(header))
    ref: dict[str, float] = {}
    for r in ROWS:
        if r["tool"] == "ticklake":
            ref[r["job"]] = r["s"]
    last_job = None
    for r in ROWS:
        if last_job is not None and r["job"] != last_job:
            print()
        last_job = r["job"]
        ratio = r["s"] / ref[r["job"]] if r["job"] in ref else float("nan")
        print(f"{r['job']:<22} {r['tool']:<42} {r['s']:9.3f} {r['n'] / r['s'] / 1e6:9.1f} {ratio:7.2f}")
    print("\n=== ticklake memory bandwidth (input column bytes / time; on all cores, the default) ===")
    for r in ROWS:
        if r["tool"] == "ticklake" and "bytes" in r:
            gbs = r["bytes"] / r["s"] / 1e9
            print(
                f"{r['job']:<22} {r['bytes'] / 1e9:6.2f} GB read in {r['s']:.3f} s = {gbs:5.1f} GB/s "
                f"({100 * gbs / bw_read:.0f}% of measured {bw_read:.1f} GB/s arr.sum read bandwidth)"
            )
    if NOTES:
        print("\nnotes:")
        for note in NOTES:
            print(f"  {note}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trades", type=int, default=20_000_000)
    ap.add_argument("--quotes", type=int, default=50_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quote-memory", action="store_true", help="only run the streaming memory measurement")
    ap.add_argument("--skip-quote-memory", action="store_true")
    ap.add_argument(
        "--sweep", action="store_true", help="only run the shape sweep (1s bars over trades per bar x symbols)"
    )
    ap.add_argument("--sweep-trades", type=int, default=5_000_000, help="trades per shape of the sweep")
    args = ap.parse_args()
    harness.require_release()
    if args.quote_memory:
        quote_memory(args)
        return
    if args.sweep:
        print(harness.machine_line())
        bench_sweep(args)
        return

    t_start = time.perf_counter()
    machine_info()
    bw = measured_bandwidth()
    print(f"sizes: {args.trades:,} trades, {args.quotes:,} quotes; repeat {args.repeat} (keep best)")
    memory_report = ""
    if not args.skip_quote_memory:
        # Run first, while this process is small: generating the month of quotes has a large transient peak.
        print("running the QuoteSampler memory subprocess ...", flush=True)
        cmd = [sys.executable, os.path.abspath(__file__), "--quote-memory", "--quotes", str(args.quotes)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        failed = f"\n(subprocess exit {done.returncode}) {done.stderr}" if done.returncode else ""
        memory_report = done.stdout + failed
        print(memory_report.rstrip(), flush=True)
    bench_bars(args)
    bench_quotes(args)
    report(bw)
    if memory_report:
        print(f"\n=== QuoteSampler streaming memory (subprocess, {args.quotes:,} quotes, 1M-row batches) ===")
        print(memory_report.rstrip())
    print(f"\ntotal wall time {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
