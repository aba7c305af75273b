"""A small lake of every kind for the reader tests, built the way a user builds one: a first import, upserts (rows
replaced, a day's range replaced) and two processes writing into the same month files at once.

Every day's data is a function of (symbol, day), so the test can say exactly what the lake must hold.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import ticklake
from ticklake.sample import sample_quotes, sample_trades

KINDS = ("bars/1s", "bars/1m", "bars/1d", "quotes", "trades")
SYMBOLS = ("AAPL", "BRK.B")
FIRST_DAYS = [dt.date(2024, 1, d) for d in (2, 3, 4)]
CONCURRENT_DAYS = {0: [dt.date(2024, 1, 5), dt.date(2024, 1, 9)], 1: [dt.date(2024, 1, 8), dt.date(2024, 1, 10)]}
# Late evening of 2024-01-31 in New York is February 1st in UTC: it still belongs to the January files.
MONTH_END = dt.date(2024, 1, 31)
REPO = Path(__file__).resolve().parents[1]


def day_tables(symbol: str, day: dt.date) -> dict[str, pa.Table]:
    """Every kind's rows for one symbol and New York day (the kernels' output: timestamps in ns)."""
    seed = day.toordinal() * 7 + SYMBOLS.index(symbol)
    trades = sample_trades(symbol, day, n=4_000, seed=seed)
    quotes = sample_quotes(symbol, day, n=6_000, seed=seed)
    return {
        "bars/1s": ticklake.bars(trades, interval="1s", symbol=symbol),
        "bars/1m": ticklake.bars(trades, interval="1m", symbol=symbol),
        "bars/1d": ticklake.bars(trades, interval="1d", symbol=symbol),
        "quotes": ticklake.best_quotes(quotes, symbol=symbol),
        "trades": trades,
    }


def write_day(lake: ticklake.Lake, symbol: str, day: dt.date) -> None:
    for kind, table in day_tables(symbol, day).items():
        lake.write(table, kind)


def upserted(symbol: str, day: dt.date) -> dict[str, pa.Table]:
    """The replacement rows of the upsert step: every price of the day moved up by one cent."""
    out = {}
    for kind, table in day_tables(symbol, day).items():
        for name in ("open", "high", "low", "close", "price", "bid_price", "ask_price", "vwap"):
            if name in table.column_names:
                index = table.schema.get_field_index(name)
                table = table.set_column(index, name, pc.add(table.column(name), 0.01))
        if "ask_price" in table.column_names:
            table = table.set_column(
                table.schema.get_field_index("spread"),
                "spread",
                pc.round(pc.subtract(table.column("ask_price"), table.column("bid_price")), 6),
            )
        out[kind] = table
    return out


CHILD = """
import sys, datetime as dt
import ticklake
from tests.reader_lake import CONCURRENT_DAYS, SYMBOLS, write_day
lake = ticklake.Lake(sys.argv[1])
for day in CONCURRENT_DAYS[int(sys.argv[2])]:
    for symbol in SYMBOLS:
        write_day(lake, symbol, day)
"""


def build(root: Path) -> dict[str, pa.Table]:
    """Builds the lake at ``root`` and returns what each kind must hold (stored schema, sorted by symbol, time)."""
    lake = ticklake.Lake(root)
    expected: dict[tuple[str, str, dt.date], pa.Table] = {}
    for symbol in SYMBOLS:
        for day in [*FIRST_DAYS, MONTH_END]:
            write_day(lake, symbol, day)
            for kind, table in day_tables(symbol, day).items():
                expected[(kind, symbol, day)] = table
    # Upserts: AAPL's January 3rd rows replaced by new values; BRK.B's January 4th replaced by its first hour only.
    for kind, table in upserted("AAPL", FIRST_DAYS[1]).items():
        lake.write(table, kind)
        expected[(kind, "AAPL", FIRST_DAYS[1])] = table
    day = FIRST_DAYS[2]
    start = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC) + dt.timedelta(hours=5)  # NY midnight
    for kind, table in day_tables("BRK.B", day).items():
        ts = table.column("timestamp")
        cut = pc.less(ts, pa.scalar(start + dt.timedelta(hours=10), ts.type))
        head = table.filter(cut) if kind != "bars/1d" else table
        lake.write(head, kind, replace=(start, start + dt.timedelta(days=1)))
        expected[(kind, "BRK.B", day)] = head
    # Two processes writing other days into the same month files at the same time.
    children = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(CHILD), str(root), str(k)],
            cwd=REPO,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in CONCURRENT_DAYS
    ]
    for child in children:
        _, err = child.communicate(timeout=300)
        assert child.returncode == 0, err[-2000:]
    for days in CONCURRENT_DAYS.values():
        for day in days:
            for symbol in SYMBOLS:
                for kind, table in day_tables(symbol, day).items():
                    expected[(kind, symbol, day)] = table
    out = {}
    for kind in KINDS:
        schema = ticklake._core.lake_schema(kind)
        parts = [
            ticklake._core.lake_conform("expected", t, kind)
            for (k, s, d), t in sorted(expected.items(), key=lambda item: (item[0][1], item[0][2]))
            if k == kind
        ]
        out[kind] = pa.concat_tables(parts).cast(schema)
    return out
