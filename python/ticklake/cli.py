"""The ``ticklake`` command line.

Example:
    $ ticklake demo
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import pyarrow as pa

from ticklake.exceptions import TicklakeError
from ticklake.kernels import bars, best_quotes
from ticklake.sample import sample_quotes, sample_trades


def _show(title: str, table: pa.Table, rows: int = 5) -> None:
    print(f"\n{title}: {table.num_rows:,} rows")
    frame = table.slice(0, rows).to_pandas()
    frame["timestamp"] = frame["timestamp"].dt.tz_convert("America/New_York")
    print(frame.to_string(index=False))


def demo(_: argparse.Namespace) -> int:
    """Aggregates a built-in sample day (offline) and prints what came out."""
    trades = sample_trades("AAPL", n=400_000)
    quotes = sample_quotes("AAPL", n=1_000_000)
    print(f"sample day 2024-03-08: {trades.num_rows:,} AAPL trades, {quotes.num_rows:,} quotes (seeded, offline)")
    started = time.perf_counter()
    one_s = bars(trades, interval="1s")
    one_m = bars(trades, interval="1m")
    one_d = bars(trades, interval="1d")
    best = best_quotes(quotes)
    elapsed = time.perf_counter() - started
    _show("1s bars (Alpaca condition rules)", one_s)
    _show("1m bars", one_m)
    _show("1d bar (regular-session prices, all-session volume)", one_d)
    _show("best quote per second", best)
    raw_volume = pa.compute.sum(trades["size"]).as_py()
    print(
        f"\nvolume: trades {raw_volume:,}; 1m bars {pa.compute.sum(one_m['volume']).as_py():,} "
        "(odd lots count in volume, canceled trades do not)"
    )
    print(f"aggregated {trades.num_rows + quotes.num_rows:,} rows in {elapsed * 1000:.0f} ms")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ticklake`` command.

    Example:
        >>> main(["demo"])
        0
    """
    parser = argparse.ArgumentParser(prog="ticklake", description="US market data on your own disk")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="aggregate a built-in offline sample day and print a summary").set_defaults(run=demo)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except TicklakeError as err:
        print(f"ticklake: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
