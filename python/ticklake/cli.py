"""The ``ticklake`` command line.

Example:
    $ ticklake demo
    $ ticklake ls --root data/parquet
    $ ticklake sql "SELECT symbol, count(*) FROM bars_1m GROUP BY symbol"
    $ ticklake validate
    $ ticklake migrate
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Sequence

import pandas as pd

from ticklake.exceptions import TicklakeError
from ticklake.kernels import bars, best_quotes
from ticklake.lake import Lake
from ticklake.sample import sample_quotes, sample_trades

DEMO_SYMBOLS = {"AAPL": 185.0, "MSFT": 375.0, "SPY": 475.0, "BRK.B": 360.0}
DEMO_START, DEMO_END = dt.date(2024, 1, 2), dt.date(2024, 2, 29)


def _print_frame(frame: pd.DataFrame, max_rows: int = 20) -> None:
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(frame.to_string(index=False, max_rows=max_rows))


def demo(args: argparse.Namespace) -> int:
    """Builds a two-month offline sample lake (several symbols, pre/regular/after hours) and queries it."""
    lake = Lake(args.root)
    print(
        f"building a sample lake in {lake.root}: {', '.join(DEMO_SYMBOLS)}, {DEMO_START} to {DEMO_END} "
        "(seeded synthetic trades and quotes, offline)"
    )
    started = time.perf_counter()
    totals = {"trades": 0, "quotes": 0, "files": 0}
    for seed, (symbol, price) in enumerate(DEMO_SYMBOLS.items()):
        trades = sample_trades(symbol, DEMO_START, DEMO_END, n=args.trades, seed=seed, start_price=price)
        quotes = sample_quotes(symbol, DEMO_START, DEMO_END, n=args.trades * 2, seed=100 + seed, start_price=price)
        totals["trades"] += trades.num_rows
        totals["quotes"] += quotes.num_rows
        provenance = {"source": "ticklake.sample", "conditions": "alpaca"}
        for interval in ("1s", "1m", "1d"):
            written = lake.write_bars(bars(trades, interval=interval), interval, metadata=provenance)
            totals["files"] += len(written)
        totals["files"] += len(lake.write_quotes(best_quotes(quotes), metadata={"source": "ticklake.sample"}))
    elapsed = time.perf_counter() - started
    print(
        f"aggregated {totals['trades']:,} trades and {totals['quotes']:,} quotes into {totals['files']} files "
        f"in {elapsed:.1f} s"
    )

    inventory = lake.inventory()
    print("\n$ ticklake ls   (summary per kind)")
    _print_frame(
        inventory.groupby("kind")
        .agg(files=("path", "size"), rows=("rows", "sum"), bytes=("bytes", "sum"))
        .reset_index()
    )

    print("\n1. a month read: lake.read_bars('AAPL', '1m', '2024-01-01', '2024-01-31', tz='America/New_York')")
    month = lake.read_bars("AAPL", "1m", "2024-01-01", "2024-01-31", tz="America/New_York")
    print(f"{len(month):,} bars from {month['timestamp'].iloc[0]} to {month['timestamp'].iloc[-1]}")
    _print_frame(month.head(3))

    print(
        "\n2. one day in New York time, regular session: "
        "lake.read_bars('MSFT', '1m', '2024-02-15', '2024-02-15', tz='America/New_York', session='regular')"
    )
    day = lake.read_bars("MSFT", "1m", "2024-02-15", "2024-02-15", tz="America/New_York", session="regular")
    print(f"{len(day)} bars, {day['timestamp'].iloc[0].time()} to {day['timestamp'].iloc[-1].time()}")
    _print_frame(day.tail(3))

    query = (
        "SELECT symbol, strftime(timestamp, '%Y-%m') AS month, count(*) AS days, "
        "sum(volume)::BIGINT AS volume, round(max(high) - min(low), 2) AS range "
        "FROM bars_1d GROUP BY ALL ORDER BY symbol, month"
    )
    print(f"\n3. DuckDB over both months: lake.sql({query!r})")
    _print_frame(lake.sql(query))
    spreads = lake.sql(
        "SELECT symbol, round(avg(spread), 4) AS avg_spread, count(*) AS seconds FROM quotes GROUP BY symbol "
        "ORDER BY symbol"
    )
    print("\nbest-quote seconds and average spread per symbol (DuckDB):")
    _print_frame(spreads)
    problems = lake.validate()
    print(f"\nvalidate: {'ok' if not problems else f'{len(problems)} problem(s)'} ({len(inventory)} files)")
    return 0 if not problems else 1


def ls(args: argparse.Namespace) -> int:
    """Lists the lake's files from their Parquet footers."""
    inventory = Lake(args.root).inventory()
    if args.kind:
        inventory = inventory[inventory["kind"] == args.kind]
    if args.symbol:
        inventory = inventory[inventory["symbol"] == args.symbol]
    if inventory.empty:
        print(f"no lake files under {Lake(args.root).root}")
        return 0
    _print_frame(inventory.drop(columns=["path"]), max_rows=args.max_rows)
    print(f"{len(inventory)} files, {inventory['rows'].sum():,} rows, {inventory['bytes'].sum() / 1e6:.1f} MB")
    return 0


def sql(args: argparse.Namespace) -> int:
    """Runs a DuckDB query over the lake's views."""
    _print_frame(Lake(args.root).sql(args.query), max_rows=args.max_rows)
    return 0


def validate(args: argparse.Namespace) -> int:
    """Checks every file; exit status 1 when a problem is found."""
    lake = Lake(args.root)
    problems = lake.validate()
    for problem in problems:
        print(problem)
    files = sum(len(lake.files(kind)) for kind in ("bars/1s", "bars/1m", "bars/1d", "quotes", "trades"))
    print(f"{len(problems)} problem(s) in {files} lake file(s) under {lake.root}")
    return 1 if problems else 0


def migrate(args: argparse.Namespace) -> int:
    """Rewrites old-form files in place; exit status 1 when a file could not be migrated."""
    report = Lake(args.root).migrate()
    for path in report.rewritten:
        print(f"rewritten  {path}")
    for path in report.removed:
        print(f"removed    {path}")
    for path, reason in report.failed:
        print(f"failed     {path}: {reason}")
    print(report.summary())
    return 1 if report.failed else 0


def import_api_command(args: argparse.Namespace) -> int:
    """Backfills from Alpaca into the lake."""
    from ticklake.importer import import_api

    report = import_api(
        args.kind,
        args.symbols,
        args.start,
        args.end,
        feed=args.feed,
        adjustment=args.adjustment,
        from_trades=args.from_trades,
        asof=args.asof,
        root=args.root,
        workers=args.workers,
        rate=args.rate,
        quiet=args.quiet,
        force=args.force,
    )
    print(report.summary())
    for written in report.files:
        print(f"  {written.status:9} {written.path} ({written.rows:,} rows)")
    return 0


def export_command(args: argparse.Namespace) -> int:
    """Exports a database's bars and quotes tables into the lake and verifies the row counts."""
    from ticklake.exporter import export_to_parquet

    if not args.all and not args.symbol:
        print("ticklake: error: give --all or --symbol SYMBOL", file=sys.stderr)
        return 2
    if args.year is not None and not args.symbol:
        print("ticklake: error: --year needs --symbol (or drop it to export everything)", file=sys.stderr)
        return 2
    tables = {}
    for item in args.table or []:
        kind, _, name = item.partition("=")
        if not name:
            print(f"ticklake: error: --table takes KIND=NAME, got {item!r}", file=sys.stderr)
            return 2
        tables[kind] = name
    report = export_to_parquet(
        args.db, symbol=args.symbol, year=args.year, root=args.root, tables=tables, epoch_unit=args.epoch_unit
    )
    print(report.table())
    for table, rows in report.source_rows.items():
        print(f"{table}: {rows:,} rows read")
    for note in report.notes:
        print(f"note: {note}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ticklake", description="US market data on your own disk")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--root", default=None, help="lake root (default: $TICKLAKE_ROOT, else data/parquet)")
        return p

    p = command("demo", "build a two-month offline sample lake and query it")
    p.add_argument("--trades", type=int, default=400_000, help="sample trades per symbol (default 400000)")
    p.set_defaults(run=demo)
    p = command("ls", "list lake files (from Parquet footers)")
    p.add_argument("--kind", choices=["bars/1s", "bars/1m", "bars/1d", "quotes", "trades"])
    p.add_argument("--symbol")
    p.add_argument("--max-rows", type=int, default=200)
    p.set_defaults(run=ls)
    p = command("sql", "run a DuckDB query over views bars_1s, bars_1m, bars_1d, quotes")
    p.add_argument("query")
    p.add_argument("--max-rows", type=int, default=50)
    p.set_defaults(run=sql)
    command("validate", "check every lake file against the spec").set_defaults(run=validate)
    command(
        "migrate", "rewrite files of earlier schema versions (and other writers' files) in place, atomically"
    ).set_defaults(run=migrate)
    p = command("import-api", "backfill from Alpaca (APCA_API_KEY_ID, APCA_API_SECRET_KEY, APCA_API_DATA_URL)")
    p.add_argument("kind", choices=["1s", "1m", "1d", "quotes", "trades"])
    p.add_argument("symbols", help="SYMBOL[,SYMBOL...]")
    p.add_argument("start", help="first New York date, YYYY-MM-DD (inclusive)")
    p.add_argument("end", help="last New York date, YYYY-MM-DD (inclusive)")
    p.add_argument("--feed", default="sip", choices=["sip", "iex", "boats", "otc"])
    p.add_argument("--adjustment", default="raw", help="bars: raw, split, dividend, spin-off, all (comma-joined)")
    p.add_argument("--from-trades", action="store_true", help="build 1m/1d bars from trades instead")
    p.add_argument("--asof", default=None, help="symbol-rename date YYYY-MM-DD, or - for as traded")
    p.add_argument("--workers", type=int, default=4, help="units downloaded concurrently (default 4)")
    p.add_argument("--rate", type=float, default=200, help="requests per minute (default 200, the free plan)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--force", action="store_true", help="download units an earlier run finished again")
    p.set_defaults(run=import_api_command)
    p = command("export-to-parquet", "export bars/quotes tables from SQLite or PostgreSQL into the lake")
    p.add_argument("--db", required=True, help="sqlite:///path.db or postgresql://user@host:port/db")
    p.add_argument("--all", action="store_true", help="every symbol")
    p.add_argument("--symbol", help="one symbol")
    p.add_argument("--year", type=int, help="only this year (New York dates; with --symbol)")
    p.add_argument("--table", action="append", metavar="KIND=NAME", help="e.g. bars_1m=minute_bars (repeatable)")
    p.add_argument("--epoch-unit", choices=["s", "ms", "us", "ns"], help="unit of integer timestamps")
    p.set_defaults(run=export_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ticklake`` command. Errors print one line and exit with status 2, no traceback.

    Example:
        >>> main(["ls", "--root", "data/parquet"])
        0
    """
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except TicklakeError as err:
        print(f"ticklake: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ticklake: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

__all__ = ["main"]
