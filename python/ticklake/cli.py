"""The ``ticklake`` command line.

Example:
    $ ticklake demo
    $ ticklake ls --root data/parquet
    $ ticklake sql "SELECT symbol, count(*) FROM bars_1m GROUP BY symbol"
    $ ticklake validate
    $ ticklake coverage bars/1m --png coverage.png
    $ ticklake gaps bars/1m --symbols AAPL,MSFT --start 2024-01-02 --end 2024-12-31
    $ ticklake plot AAPL 2024-01-10 2024-01-10 --spread --png aapl.png
    $ ticklake migrate
    $ ticklake rebuild 1m --symbols AAPL,MSFT --start 2024-01-01 --end 2024-12-31 --scheduler tcp://10.0.0.5:8786
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ticklake.exceptions import InvalidInputError, TicklakeError
from ticklake.kernels import bars, best_quotes
from ticklake.lake import kinds, layout
from ticklake.lake.coverage import STATUSES
from ticklake.lake.coverage import summary as coverage_summary
from ticklake.lake.facade import Lake
from ticklake.sample import sample_quotes, sample_trades

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DEMO_SYMBOLS = {"AAPL": 185.0, "MSFT": 375.0, "SPY": 475.0, "BRK.B": 360.0}
DEMO_START, DEMO_END = dt.date(2024, 1, 2), dt.date(2024, 2, 29)
#: Holes the demo leaves on purpose, so that its coverage picture has something to show: MSFT lacks three days
#: (as after a failed import), SPY's 2024-01-25 stops at noon New York time (as after a killed import), and
#: BRK.B's history starts later (as for a symbol listed mid-range).
DEMO_MISSING = {"MSFT": (dt.date(2024, 2, 5), dt.date(2024, 2, 7))}
DEMO_CUT = {"SPY": (dt.date(2024, 1, 25), "12:00")}
DEMO_FIRST = {"BRK.B": dt.date(2024, 1, 16)}
DEMO_HOLES = "MSFT lacks 2024-02-05..2024-02-07, SPY's 2024-01-25 stops at 12:00 ET, BRK.B starts on 2024-01-16"


def _print_frame(frame: pd.DataFrame, max_rows: int = 20) -> None:
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(frame.to_string(index=False, max_rows=max_rows))


def _demo_holes(symbol: str, table: pa.Table) -> pa.Table:
    """Drops the sample rows that :data:`DEMO_MISSING`, :data:`DEMO_CUT` and :data:`DEMO_FIRST` leave out."""
    stamps = pd.DatetimeIndex(pd.to_datetime(table["timestamp"].cast(pa.int64()).to_numpy(), utc=True))
    local = stamps.tz_convert("America/New_York").tz_localize(None)
    days = local.normalize()
    drop = np.zeros(len(local), bool)
    if symbol in DEMO_MISSING:
        first, last = (pd.Timestamp(d) for d in DEMO_MISSING[symbol])
        drop |= (days >= first) & (days <= last)
    if symbol in DEMO_CUT:
        day, clock = DEMO_CUT[symbol]
        drop |= (days == pd.Timestamp(day)) & (local >= pd.Timestamp(f"{day} {clock}"))
    if symbol in DEMO_FIRST:
        drop |= days < pd.Timestamp(DEMO_FIRST[symbol])
    return table.filter(pa.array(~drop))


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


def _demo_pictures(lake: Lake, folder: Path) -> list[Path]:
    """The demo's coverage picture and candle chart (docs/coverage.png and docs/candles.png come from here)."""
    _headless()
    coverage = _save(lake.coverage_figure("bars/1m"), folder / "coverage.png")
    candles = _save(lake.plot("AAPL", "2024-01-10", "2024-01-10", spread=True), folder / "candles.png")
    return [coverage, candles]


def demo(args: argparse.Namespace) -> int:
    """Builds a two-month offline sample lake (several symbols, pre/regular/after hours) and queries it."""
    lake = _lake(args)
    print(
        f"building a sample lake in {lake.root}: {', '.join(DEMO_SYMBOLS)}, {DEMO_START} to {DEMO_END} "
        "(seeded synthetic trades and quotes, offline)"
    )
    started = time.perf_counter()
    totals = {"trades": 0, "quotes": 0, "files": 0}
    for seed, (symbol, price) in enumerate(DEMO_SYMBOLS.items()):
        trades = sample_trades(symbol, DEMO_START, DEMO_END, n=args.trades, seed=seed, start_price=price)
        quotes = sample_quotes(symbol, DEMO_START, DEMO_END, n=args.trades * 2, seed=100 + seed, start_price=price)
        trades, quotes = _demo_holes(symbol, trades), _demo_holes(symbol, quotes)
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

    print(f"\n4. coverage against the NYSE calendar: lake.coverage('bars/1m')  (the sample has holes: {DEMO_HOLES})")
    cover = lake.coverage("bars/1m")
    _print_frame(coverage_summary(cover))
    print("\n$ ticklake gaps bars/1m")
    for gap in lake.gaps("bars/1m").ranges():
        print(f"  {gap}")
    from ticklake.exceptions import MissingExtraError

    try:
        pictures = _demo_pictures(lake, Path(args.pictures) if args.pictures else lake.root)
    except MissingExtraError as err:
        print(f"\npictures: none ({err}, then run the demo again for a coverage picture and a candle chart)")
    else:
        print(f"\npictures: {', '.join(str(p) for p in pictures)}")
    return 0 if not problems else 1


def ls(args: argparse.Namespace) -> int:
    """Lists the lake's files from their Parquet footers."""
    inventory = _lake(args).inventory()
    if args.kind:
        inventory = inventory[inventory["kind"] == args.kind]
    if args.symbol:
        inventory = inventory[inventory["symbol"] == args.symbol]
    if inventory.empty:
        print(f"no lake files under {_lake(args).url}")
        return 0
    _print_frame(inventory.drop(columns=["path"]), max_rows=args.max_rows)
    print(f"{len(inventory)} files, {inventory['rows'].sum():,} rows, {inventory['bytes'].sum() / 1e6:.1f} MB")
    return 0


def sql(args: argparse.Namespace) -> int:
    """Runs a DuckDB query over the lake's views."""
    _print_frame(_lake(args).sql(args.query), max_rows=args.max_rows)
    return 0


def validate(args: argparse.Namespace) -> int:
    """Checks every file; exit status 1 when a problem is found."""
    lake = _lake(args)
    problems = lake.validate()
    for problem in problems:
        print(problem)
    files = sum(len(lake.files(kind)) for kind in ("bars/1s", "bars/1m", "bars/1d", "quotes", "trades"))
    print(f"{len(problems)} problem(s) in {files} lake file(s) under {lake.url}")
    return 1 if problems else 0


def migrate(args: argparse.Namespace) -> int:
    """Rewrites old-form files in place; exit status 1 when a file could not be migrated."""
    report = _lake(args).migrate()
    for path in report.rewritten:
        print(f"rewritten  {path}")
    for path in report.removed:
        print(f"removed    {path}")
    for path, reason in report.failed:
        print(f"failed     {path}: {reason}")
    print(report.summary())
    return 1 if report.failed else 0


def _dask_client(stack: contextlib.ExitStack[Any], scheduler: str | None) -> Any:
    """A ``distributed.Client`` for ``--scheduler`` (closed with ``stack``), or None to run in-process."""
    if not scheduler:
        return None
    from ticklake.lake.rebuild import require_dask

    require_dask()
    from distributed import Client

    return stack.enter_context(Client(scheduler))  # type: ignore[no-untyped-call]


def rebuild_command(args: argparse.Namespace) -> int:
    """Rebuilds bars of one interval from the trades archive, in-process or on a Dask scheduler."""
    lake = _lake(args)
    with contextlib.ExitStack() as stack:
        client = _dask_client(stack, args.scheduler)
        report = lake.rebuild(
            args.interval,
            _symbol_list(args.symbols),
            args.start,
            args.end,
            client=client,
            threads=args.threads,
            max_tasks=args.max_tasks,
            progress=not args.quiet,
        )
    if not report.units:
        print(f"no trades files under {lake.url}/trades match")
        return 0
    print(report.summary())
    return 0


def import_api_command(args: argparse.Namespace) -> int:
    """Backfills from Alpaca into the lake (or, with ``--plan``, prints the plan)."""
    from ticklake.client import AlpacaClient
    from ticklake.importer import import_api, plan_import

    options = {"feed": args.feed, "adjustment": args.adjustment, "from_trades": args.from_trades, "asof": args.asof}
    lake = {"root": args.root, "storage_options": _storage_options(args), "staging": args.staging}
    if args.plan:
        counted = args.kind in ("1s", "trades") or args.from_trades
        with contextlib.ExitStack() as stack:
            client = stack.enter_context(AlpacaClient(rate=args.rate)) if counted else None
            plan = plan_import(
                args.kind, args.symbols, args.start, args.end, rate=args.rate or 200.0, client=client, **lake,
                **options,
            )  # fmt: skip
        print(plan.summary(args.rate or 200.0))
        return 0
    report = import_api(
        args.kind,
        args.symbols,
        args.start,
        args.end,
        rate=args.rate,
        max_in_flight=args.max_in_flight,
        strategy=args.strategy,
        quiet=args.quiet,
        force=args.force,
        fill_gaps=args.fill_gaps,
        **lake,
        **options,
    )
    if args.fill_gaps and not report.days:
        print(f"no gaps: the lake holds every {args.kind} trading day of {args.symbols} in {args.start}..{args.end}")
        return 0
    print(report.summary())
    remote = str(args.root or os.environ.get("TICKLAKE_ROOT") or "").startswith("s3://")
    for written in report.files:
        where = f"s3://{written.path.as_posix()}" if remote else written.path
        print(f"  {written.status:9} {where} ({written.rows:,} rows)")
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
    with contextlib.ExitStack() as stack:
        report = export_to_parquet(
            args.db,
            symbol=args.symbol,
            year=args.year,
            root=args.root,
            storage_options=_storage_options(args),
            tables=tables,
            epoch_unit=args.epoch_unit,
            client=_dask_client(stack, args.scheduler),
            max_tasks=args.max_tasks,
        )
    print(report.table())
    for table, rows in report.source_rows.items():
        print(f"{table}: {rows:,} rows read")
    for note in report.notes:
        print(f"note: {note}")
    return 0


def _headless() -> None:
    """Selects matplotlib's file-only backend (no display needed); raises MissingExtraError without matplotlib."""
    from ticklake.coverage_chart import require

    require("matplotlib")
    import matplotlib

    matplotlib.use("Agg")


def _storage_options(args: argparse.Namespace) -> dict[str, str] | None:
    """The ``--storage-option KEY=VALUE`` items (None when there are none)."""
    options = {}
    for item in getattr(args, "storage_option", []) or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"--storage-option takes KEY=VALUE, got {key or item!r}")
        options[key] = value
    return options or None


def _lake(args: argparse.Namespace) -> Lake:
    """The lake ``--root`` and ``--storage-option`` name."""
    return Lake(args.root, storage_options=_storage_options(args))


def _symbol_list(text: str | None) -> list[str] | None:
    return None if not text else layout.parse_symbols(text)


def coverage_command(args: argparse.Namespace) -> int:
    """Per symbol, the trading days that are full, partial, missing or before the first data; optionally a PNG."""
    lake = _lake(args)
    if args.png:
        _headless()  # before the work: a missing extra is reported at once
    started = time.perf_counter()
    frame = lake.coverage(
        args.kind,
        _symbol_list(args.symbols),
        args.start,
        args.end,
        min_fraction=args.min_fraction,
        edge_minutes=args.edge_minutes,
        deep=args.deep,
    )
    elapsed = time.perf_counter() - started
    if frame.empty:
        print(f"no {args.kind} data under {lake.url} in that range")
        return 0
    counts = frame["status"].value_counts()
    days, symbols = frame["date"].nunique(), frame["symbol"].nunique()
    print(
        f"{args.kind}: {symbols} symbol{'s' if symbols != 1 else ''} x {days} NYSE trading days "
        f"({frame['date'].min().date()}..{frame['date'].max().date()}) in {elapsed:.2f} s: "
        + ", ".join(f"{int(counts.get(s, 0)):,} {s.replace('_', ' ')}" for s in STATUSES)
    )
    _print_frame(coverage_summary(frame), max_rows=args.max_rows)
    if args.days:
        print()
        _print_frame(
            frame.loc[frame["status"] != "full", ["symbol", "date", "status", "rows", "reason"]], max_rows=10**6
        )
    if args.png:
        from ticklake.coverage_chart import coverage_figure

        print(f"wrote {_save(coverage_figure(frame, kind=kinds.of(args.kind).folder), Path(args.png))}")
    return 0


def gaps_command(args: argparse.Namespace) -> int:
    """Lists the missing (and partial) (symbol, day range)s, as text or JSON ({symbol: [dates]})."""
    gaps = _lake(args).gaps(
        args.kind,
        _symbol_list(args.symbols),
        args.start,
        args.end,
        include_partial=not args.missing_only,
        include_before_first=args.include_before_first,
        min_fraction=args.min_fraction,
        edge_minutes=args.edge_minutes,
        deep=args.deep,
    )
    if args.json:
        print(json.dumps({symbol: [d.isoformat() for d in days] for symbol, days in gaps.items()}, indent=1))
        return 0
    for gap in gaps.ranges():
        print(gap)
    print(f"{gaps.days} gap day(s) in {len(gaps)} symbol(s)")
    return 0


def plot_command(args: argparse.Namespace) -> int:
    """Writes a candle chart (volume beneath, optionally the spread) of one symbol to a PNG."""
    _headless()
    figure = _lake(args).plot(
        args.symbol,
        args.start,
        args.end,
        kind=args.kind,
        tz=args.tz,
        session=args.session,
        spread=args.spread,
        width_px=args.width,
        height_px=args.height,
    )
    print(f"wrote {_save(figure, Path(args.png))}")
    return 0


def _coverage_options(p: argparse.ArgumentParser) -> None:
    from ticklake.lake.coverage import DEFAULT_EDGE_MINUTES, DEFAULT_MIN_FRACTION

    p.add_argument("kind", help="bars/1s, bars/1m, bars/1d, quotes, trades (or 1s, 1m, 1d)")
    p.add_argument("--symbols", help="SYMBOL[,SYMBOL...] (default: every symbol with files of this kind)")
    p.add_argument("--start", help="first New York date (default: the first day with data)")
    p.add_argument("--end", help="last New York date, inclusive (default: the last day with data)")
    p.add_argument(
        "--min-fraction",
        type=float,
        default=DEFAULT_MIN_FRACTION,
        help=f"share of regular-session minutes a full day needs (1m bars, or --deep; default {DEFAULT_MIN_FRACTION})",
    )
    p.add_argument(
        "--edge-minutes",
        type=float,
        default=DEFAULT_EDGE_MINUTES,
        help=f"minutes a full day's first/last rows may be from the open/close (default {DEFAULT_EDGE_MINUTES:g})",
    )
    p.add_argument("--deep", action="store_true", help="count minutes for 1s bars, quotes, trades (reads timestamps)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ticklake", description="US market data on your own disk")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument(
            "--root",
            default=None,
            help="lake root: a folder or s3://bucket/prefix (default: $TICKLAKE_ROOT, else data/parquet)",
        )
        p.add_argument(
            "--storage-option",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="for s3:// roots: an object_store AWS option, e.g. endpoint=http://127.0.0.1:8333 (repeatable; "
            "credentials best from AWS_* variables)",
        )
        return p

    p = command("demo", "build a two-month offline sample lake and query it")
    p.add_argument("--trades", type=int, default=400_000, help="sample trades per symbol (default 400000)")
    p.add_argument("--pictures", help="folder for coverage.png and candles.png (default: the lake root)")
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
    p.add_argument(
        "--rate",
        type=float,
        default=None,
        help="requests per minute at most (default: the account's limit as the API reports it; 200 until then)",
    )
    p.add_argument("--max-in-flight", type=int, default=64, help="requests in flight at most (default 64)")
    p.add_argument(
        "--strategy",
        choices=["packed", "per-day"],
        default="packed",
        help="packed: the fewest requests (default); per-day: one request chain per symbol and day",
    )
    p.add_argument("--plan", action="store_true", help="print the plan and what it costs; download nothing")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--force", action="store_true", help="download and publish again what an earlier run finished")
    p.add_argument(
        "--fill-gaps",
        action="store_true",
        help="import only the trading days the lake lacks or holds partly (see ticklake gaps)",
    )
    p.add_argument(
        "--staging",
        metavar="DIR",
        help="local folder for the downloads and the journal a killed import resumes from (default: the lake's "
        ".ticklake/staging; for s3:// lakes ~/.cache/ticklake/staging/<bucket>_<prefix>-<hash>)",
    )
    p.set_defaults(run=import_api_command)
    p = command("rebuild", "rebuild bars of an interval from the trades archive, (symbol, month) by (symbol, month)")
    p.add_argument(
        "interval", help=f"the bar interval to rebuild: {', '.join(kinds.TIMEFRAMES)} or any under a day (5s, 15m)"
    )
    p.add_argument("--symbols", help="SYMBOL[,SYMBOL...] (default: every symbol with trades files)")
    p.add_argument("--start", help="first New York date (its whole month is rebuilt; default: the first month)")
    p.add_argument("--end", help="last New York date, inclusive (its whole month is rebuilt; default: the last)")
    p.add_argument("--scheduler", help="run on this Dask scheduler (tcp://HOST:8786; needs ticklake[dask])")
    p.add_argument("--threads", type=int, help="in-process threads (default: the cores this process may use, max 8)")
    p.add_argument("--max-tasks", type=int, default=2000, help="(symbol, month) units grouped into at most N tasks")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=rebuild_command)
    p = command("export-to-parquet", "export bars/quotes tables from SQLite or PostgreSQL into the lake")
    p.add_argument("--db", required=True, help="sqlite:///path.db or postgresql://user@host:port/db")
    p.add_argument("--all", action="store_true", help="every symbol")
    p.add_argument("--symbol", help="one symbol")
    p.add_argument("--year", type=int, help="only this year (New York dates; with --symbol)")
    p.add_argument("--table", action="append", metavar="KIND=NAME", help="e.g. bars_1m=minute_bars (repeatable)")
    p.add_argument("--epoch-unit", choices=["s", "ms", "us", "ns"], help="unit of integer timestamps")
    p.add_argument("--scheduler", help="fan out on this Dask scheduler (tcp://HOST:8786; needs ticklake[dask])")
    p.add_argument("--max-tasks", type=int, help="with --scheduler: symbol groups per table (default 4 per thread)")
    p.set_defaults(run=export_command)
    p = command("coverage", "per symbol and NYSE trading day: full, partial, missing (from footers where possible)")
    _coverage_options(p)
    p.add_argument("--png", help="also draw the symbol x day heat map into this PNG")
    p.add_argument("--days", action="store_true", help="list every day that is not full")
    p.add_argument("--max-rows", type=int, default=60)
    p.set_defaults(run=coverage_command)
    p = command("gaps", "list the missing and partial (symbol, day range)s to import")
    _coverage_options(p)
    p.add_argument("--missing-only", action="store_true", help="leave partial days out")
    p.add_argument("--include-before-first", action="store_true", help="also days before a symbol's first data")
    p.add_argument("--json", action="store_true", help='print {"SYMBOL": ["YYYY-MM-DD", ...]} instead')
    p.set_defaults(run=gaps_command)
    p = command("plot", "draw a candle chart with volume (and the spread) of one symbol into a PNG")
    p.add_argument("symbol")
    p.add_argument("start", help="start (a date or time in --tz)")
    p.add_argument("end", help="end (a bare date means through that day)")
    p.add_argument("--kind", default="bars/1m", choices=["bars/1s", "bars/1m", "bars/1d", "1s", "1m", "1d"])
    p.add_argument("--tz", default="America/New_York", help="zone of the bounds and the time axis")
    p.add_argument("--session", default="all", choices=["regular", "pre", "post", "extended", "all"])
    p.add_argument("--spread", action="store_true", help="add the best quote's spread (from quotes) as a panel")
    p.add_argument("--png", required=True, help="the PNG file to write")
    p.add_argument("--width", type=int, default=1600, help="pixels (default 1600)")
    p.add_argument("--height", type=int, default=900, help="pixels (default 900)")
    p.set_defaults(run=plot_command)
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
    except OSError as err:
        # A filesystem failure outside the lake's own typed errors (a read-only or full disk, a file where a folder
        # belongs): one line that names the path, no traceback.
        where = f"{err.filename}: " if err.filename else ""
        print(f"ticklake: error: {where}{err.strerror or err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ticklake: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

__all__ = ["main"]
