"""Lake.rebuild throughput in-process and on 1 and 2 Dask workers, on the same trades archive in the same run.

    python benches/rebuild.py [--symbols N] [--trades N] [--repeat K] [--max-tasks N] [--dir DIR]

Data: ``--symbols`` symbols x 3 months (January-March 2024) of ``ticklake.sample`` trades, ``--trades`` per
symbol-month, archived under ``trades/``. Each run rebuilds ``bars/1m`` from nothing (the bars folder is removed
untimed before each repetition): read every trades file batch by batch, stream it through the bar kernel, write
each month with its replace window (lock, encode, fsync, rename). The Dask clusters are ``LocalCluster(processes=True,
threads_per_worker=1)`` started before the timings. Scheduler overhead is a ``client.map`` of a no-op over 500
items, gathered with ``as_completed`` as rebuild does. Every mode must produce the same bytes as the in-process run.
The estimate for 10,000 symbols x 10 years scales the measured trades/s to a whole-market trades count
(``--market-trades-per-day``) and adds the per-task scheduler cost of 2,000 tasks.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import ticklake
from distributed import Client, LocalCluster, as_completed
from harness import best_of, machine_line, require_release
from ticklake.sample import sample_trades

MONTHS = [(dt.date(2024, 1, 2), dt.date(2024, 1, 31)), (dt.date(2024, 2, 1), dt.date(2024, 2, 29))]
MONTHS.append((dt.date(2024, 3, 1), dt.date(2024, 3, 28)))


def build_archive(root: Path, symbols: int, trades: int) -> int:
    lake = ticklake.Lake(root)
    total = 0
    for i in range(symbols):
        parts = [
            sample_trades(f"S{i:03d}", lo, hi, n=trades, seed=i * 3 + j, start_price=50.0 + i)
            for j, (lo, hi) in enumerate(MONTHS)
        ]
        table = pa.concat_tables(parts)
        lake.write_trades(table)
        total += table.num_rows
    return total


def snapshot(lake: ticklake.Lake) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in lake.files("1m")}


def noop(x: int) -> int:
    return x


def scheduler_overhead(client: Client, n: int = 500) -> float:
    """Seconds per task of a no-op map gathered with as_completed (best of 3)."""

    def run() -> None:
        futures = client.map(noop, range(n), pure=False)
        for future in as_completed(futures):
            future.result()

    seconds, _ = best_of(run, repeat=3)
    return seconds / n


def main() -> None:
    require_release()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", type=int, default=8)
    parser.add_argument("--trades", type=int, default=200_000, help="trades per symbol-month")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--max-tasks", type=int, default=2_000)
    parser.add_argument("--market-trades-per-day", type=float, default=50e6, help="US trades per day, all symbols")
    parser.add_argument("--dir", default=None)
    args = parser.parse_args()
    print(machine_line())
    base = Path(args.dir or tempfile.mkdtemp(prefix="ticklake-rebuild-"))
    lake = ticklake.Lake(base / "lake")
    t0 = time.perf_counter()
    total = build_archive(lake.root, args.symbols, args.trades)
    units = len(lake.files("trades"))
    built = time.perf_counter() - t0
    print(
        f"archive: {args.symbols} symbols x 3 months = {units} trades files, {total:,} trades ({built:.1f} s to build)"
    )

    def fresh() -> None:
        shutil.rmtree(lake.root / "bars", ignore_errors=True)

    results: dict[str, tuple[float, Any]] = {}
    reference: dict[str, bytes] | None = None

    def measure(name: str, **options: Any) -> None:
        nonlocal reference
        seconds, report = best_of(
            lambda: lake.rebuild("1m", max_tasks=args.max_tasks, progress=False, **options), args.repeat, setup=fresh
        )
        files = snapshot(lake)
        if reference is None:
            reference = files
        assert files == reference, f"{name}: files differ from the in-process run"
        results[name] = (seconds, report)
        print(
            f"  {name:<22} {seconds:7.3f} s  {report.trades / seconds / 1e6:6.2f} M trades/s  "
            f"{len(files) / seconds:7.1f} files/s  ({report.tasks} tasks, {report.bars:,} bars)"
        )

    print(f"\nrebuild 1m (best of {args.repeat})")
    measure("in-process, 1 thread", threads=1)
    measure("in-process, 2 threads", threads=2)
    overhead = {}
    for workers in (1, 2):
        with (
            LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=50
            ) as cluster,
            Client(cluster) as client,
        ):
            client.run(importlib.import_module, "ticklake.lake.rebuild")  # workers import ticklake untimed
            measure(f"dask, {workers} worker(s)", client=client)
            overhead[workers] = scheduler_overhead(client)
    print("\nscheduler overhead (no-op client.map of 500 tasks + as_completed, best of 3)")
    for workers, seconds in overhead.items():
        print(f"  {workers} worker(s): {seconds * 1e3:.2f} ms per task")

    best = min(results.items(), key=lambda item: item[1][0])
    rate = total / best[1][0]
    per_worker = total / results["dask, 1 worker(s)"][0]
    market = args.market_trades_per_day * 252 * 10
    tasks = 2_000
    print(
        f"\nestimate for 10,000 symbols x 10 years (120,000 units in {tasks:,} tasks), assuming "
        f"{args.market_trades_per_day / 1e6:.0f}M trades/day over 2,520 trading days = {market / 1e9:.0f}B trades:"
    )
    for workers in (2, 16, 64):
        hours = market / (per_worker * workers) / 3600 + tasks * overhead[2] / 3600
        print(f"  {workers:>3} Dask workers at {per_worker / 1e6:.2f} M trades/s each (measured): {hours:7.1f} h")
    print(f"  this machine's best mode ({best[0]}, {rate / 1e6:.2f} M trades/s): {market / rate / 3600:8.1f} h")
    print(f"  scheduler share: {tasks:,} tasks x {overhead[2] * 1e3:.2f} ms = {tasks * overhead[2]:.1f} s")
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
