"""Import speed and request economy against a loopback Alpaca stand-in that waits like the real API.

    python benches/import_api.py [--repeat K] [--latency S] [--only CASE ...]

Cases (each against ``tests/alpaca_server.py`` running in its own process, full pages, answering every request
after ``--latency`` seconds, real API rate-limit windows enforced where a rate is given):

- ``parse``: one page of 10,000 trades in Alpaca's wire format: ticklake's Rust parser against ``json.loads`` +
  ``pandas.DataFrame`` (and + ``to_datetime``).
- ``bars1m``: 60 symbols x January 2024 of 1m bars; ``bars1d``: 100 symbols x 2024 of daily bars;
  ``trades``: 10 symbols x a week of trades (1.5M) at ``--rate 1200``. Each reports the requests made against the
  minimum (the pages one symbol-major chain over everything needs, ``ceil(items / 10,000)``), the rate reached
  while downloading against the limit, the 429s, and the same import with the one-symbol-per-day plan.
- ``plan``: ``--plan`` of a 500-symbol x one-year 1m import: requests and hours at 200/min and 10,000/min, next
  to the one-symbol-per-day plan.
- ``quotes``: a two-symbol month of quotes (short pages, so thousands of requests): rate reached and the
  importing process's peak memory (VmHWM).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness import best_of, machine_line, require_release  # noqa: E402
from ticklake import _core  # noqa: E402
from ticklake.sample import sample_trades  # noqa: E402

from tests.alpaca_server import encode_trades  # noqa: E402


def best(fn, repeat):  # type: ignore[no-untyped-def]
    return best_of(fn, repeat)[0]


def bench_parse(repeat: int) -> None:
    trades = sample_trades("AAPL", dt.date(2024, 4, 16), n=10_000, seed=5)
    _, items = encode_trades(trades)
    body = ('{"trades":{"AAPL":[' + ",".join(items) + ']},"next_page_token":"QUFQTHwyMDI0"}').encode()
    print(f"\n=== one page of 10,000 trades ({len(body) / 1e6:.2f} MB of JSON)")
    ours = best(lambda: _core.parse_page(body, "trades", False, False), repeat)

    def loads_frame() -> pd.DataFrame:
        return pd.DataFrame(json.loads(body)["trades"]["AAPL"])

    def loads_frame_time() -> pd.DataFrame:
        frame = pd.DataFrame(json.loads(body)["trades"]["AAPL"])
        frame["t"] = pd.to_datetime(frame["t"], format="ISO8601", utc=True)
        return frame

    plain = best(loads_frame, repeat)
    timed = best(loads_frame_time, repeat)
    print(f"  ticklake parse_page               {ours * 1e3:8.2f} ms")
    print(f"  json.loads + DataFrame            {plain * 1e3:8.2f} ms   {plain / ours:6.1f}x slower")
    print(f"  json.loads + DataFrame + to_datetime {timed * 1e3:5.2f} ms   {timed / ours:6.1f}x slower")


# The server process builds its data from seeds, prints its URL and the items it holds, serves until stdin closes,
# then prints its request count and 429s.
SERVER = """
import sys, json, datetime as dt
import numpy as np, pandas as pd, pyarrow as pa
sys.path.insert(0, sys.argv[1])
import ticklake
from tests.alpaca_server import AlpacaServer
from ticklake.sample import sample_quotes, sample_trades
case, latency, rate, limit = sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
trades, quotes, bars = {}, {}, {"1Min": {}, "1Day": {}}

def frame(table):
    out = table.to_pandas()
    out["timestamp"] = table["timestamp"].cast(pa.int64()).to_numpy()
    return out

items = 0
if case == "bars1m":
    for i in range(60):
        s = f"S{i:02d}"
        t = sample_trades(s, dt.date(2024, 1, 2), dt.date(2024, 1, 31), n=int(4000 + 9000 * (i % 7) / 6), seed=i)
        b = ticklake.bars(t, interval="1m", conditions="all")
        bars["1Min"][s] = frame(b)
        items += b.num_rows
elif case == "bars1d":
    for i in range(100):
        s = f"S{i:02d}"
        t = sample_trades(s, dt.date(2024, 1, 2), dt.date(2024, 12, 31), n=20_000, seed=i)
        b = ticklake.bars(t, interval="1d", conditions="all")
        bars["1Day"][s] = frame(b)
        items += b.num_rows
elif case == "trades":
    for i in range(10):
        s = f"S{i:02d}"
        t = sample_trades(s, dt.date(2024, 3, 4), dt.date(2024, 3, 8), n=150_000, seed=i)
        trades[s] = t
        items += t.num_rows
elif case == "quotes":
    for i, s in enumerate(["AAPL", "MSFT"]):
        q = sample_quotes(s, dt.date(2024, 4, 1), dt.date(2024, 4, 30), n=int(sys.argv[6]), seed=i)
        quotes[s] = q.set_column(0, "symbol", pa.array([s] * q.num_rows, pa.string()))
        items += q.num_rows
server = AlpacaServer(trades, quotes, api_bars=bars, latency=latency, short_pages=case == "quotes",
                      max_page=int(sys.argv[7]) if case == "quotes" else None, rate_limit=limit,
                      enforce_rate=rate > 0, seed=2)
for s in trades:
    server.bars("1Min", s)
server.__enter__()
print(server.url, items, flush=True)
sys.stdin.read()
print(len(server.requests), server.served_429, flush=True)
"""

IMPORT = """
import sys, json
sys.path.insert(0, sys.argv[1])
from ticklake.client import AlpacaClient
from ticklake.importer import import_api
from tests.alpaca_server import KEY_ID, SECRET
url, root, kind, start, end, symbols, strategy = sys.argv[2:9]
rate = float(sys.argv[9]) or None
client = AlpacaClient(KEY_ID, SECRET, base_url=url, rate=rate)
report = import_api(kind, symbols, start, end, root=root, client=client, quiet=True, strategy=strategy)
peak = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")][0] / 1024
print(json.dumps({"requests": report.requests, "by": report.by_purpose, "rate": report.rate, "limit": report.limit,
                  "seconds": report.seconds, "rows": report.rows, "peak": peak, "in_flight": report.peak_in_flight,
                  "files": len(report.files)}), flush=True)
"""


def _server(case: str, latency: float, rate: float, extra: list[str]) -> tuple[subprocess.Popen[str], str, int]:
    limit = int(rate) if rate else 10_000
    server = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SERVER), str(REPO), case, str(latency), str(rate), str(limit), *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    url, items = server.stdout.readline().split()
    return server, url, int(items)


def _import(url: str, kind: str, start: str, end: str, symbols: str, strategy: str, rate: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as root:
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(IMPORT), str(REPO), url, root, kind, start, end, symbols,
             strategy, str(rate)],
            capture_output=True, text=True, check=False, env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip
    if done.returncode:
        raise SystemExit(f"import failed:\n{done.stderr}")
    result: dict[str, object] = json.loads(done.stdout)
    return result


def bench_case(case: str, latency: float, per_day: bool) -> None:
    specs = {
        "bars1m": ("1m", "2024-01-02", "2024-01-31", [f"S{i:02d}" for i in range(60)], 0.0),
        "bars1d": ("1d", "2024-01-02", "2024-12-31", [f"S{i:02d}" for i in range(100)], 0.0),
        "trades": ("trades", "2024-03-04", "2024-03-08", [f"S{i:02d}" for i in range(10)], 1200.0),
    }
    kind, start, end, symbols, rate = specs[case]
    server, url, items = _server(case, latency, rate, [])
    minimum = math.ceil(items / 10_000)
    print(f"\n=== {case}: {kind} for {len(symbols)} symbols {start}..{end}, {items:,} items, latency {latency} s"
          f"{f', --rate {rate:.0f} (the server enforces it)' if rate else ''}")  # fmt: skip
    try:
        strategies = ["packed", "per-day"] if per_day else ["packed"]
        for strategy in strategies:
            r = _import(url, kind, start, end, ",".join(symbols), strategy, rate)
            by = r["by"]
            data = by.get("data", 0)  # type: ignore[attr-defined]
            counts = by.get("counts", 0)  # type: ignore[attr-defined]
            probe = by.get("probe", 0)  # type: ignore[attr-defined]
            print(
                f"  {strategy:8} {r['requests']:5} requests ({data} data, {counts} counting, {probe} probe); "
                f"minimum {minimum} -> data {data / minimum:.2f}x the minimum; "
                f"{r['rate']:,.0f}/min of {r['limit']:,.0f}/min = {r['rate'] / r['limit']:.0%}; "  # type: ignore[operator]
                f"at most {r['in_flight']} in flight; {r['seconds']:.1f} s; peak {r['peak']:.0f} MB"
            )
    finally:
        assert server.stdin is not None and server.stdout is not None
        server.stdin.close()
        total, rejected = server.stdout.read().split()
        server.wait(timeout=30)
    print(f"  server: {total} requests served, {rejected} answered 429")
    if kind in ("1m", "1d"):
        from ticklake.importer import plan_import

        with tempfile.TemporaryDirectory() as root:
            plan = plan_import(kind, symbols, start, end, root=root, rate=10_000, latency=latency)  # type: ignore[arg-type]
        bound = 1.2 * minimum + plan.data_requests
        print(
            f"  bound (issue 11): 1.2 x {minimum} + one partial page for each of {plan.data_requests} parallel "
            f"chains = {bound:.0f} requests"
        )


def bench_plan() -> None:
    from ticklake.importer import plan_import

    print("\n=== --plan: 500 symbols x 2024 of 1m bars (offline)")
    symbols = [f"S{i:03d}" for i in range(500)]
    with tempfile.TemporaryDirectory() as root:
        for rate in (200.0, 10_000.0):
            plan = plan_import("1m", symbols, "2024-01-02", "2024-12-31", root=root, rate=rate)
            print(textwrap.indent(plan.summary(rate), "  "))


def bench_quotes(quotes: int, rate: float, max_page: int, latency: float) -> None:
    print(f"\n=== import quotes, two symbols, April 2024 ({quotes:,} quotes each), --rate {rate:.0f}, short pages")
    server, url, _ = _server("quotes", latency, rate, [str(quotes), str(max_page)])
    try:
        r = _import(url, "quotes", "2024-04-01", "2024-04-30", "AAPL,MSFT", "packed", rate)
    finally:
        assert server.stdin is not None and server.stdout is not None
        server.stdin.close()
        _, rejected = server.stdout.read().split()
        server.wait(timeout=30)
    print(f"  {r['requests']} requests, {r['rows']:,} quotes in {r['seconds']:.1f} s, {rejected} answered 429")
    print(f"  {r['rate']:,.0f} requests/min of {r['limit']:,.0f} = {r['rate'] / r['limit']:.1%}")  # type: ignore[operator]
    print(f"  peak memory of the importing process: {r['peak']:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.4, help="seconds the server waits per request")
    parser.add_argument("--quotes", type=int, default=600_000, help="quotes per symbol in the month")
    parser.add_argument("--quote-rate", type=float, default=6000)
    parser.add_argument("--max-page", type=int, default=400, help="quote case: server page cap (many requests)")
    parser.add_argument("--no-per-day", action="store_true", help="skip the one-symbol-per-day comparison runs")
    parser.add_argument("--only", nargs="*", default=["parse", "bars1m", "bars1d", "trades", "plan", "quotes"])
    args = parser.parse_args()
    require_release()
    print(machine_line())
    for case in args.only:
        if case == "parse":
            bench_parse(args.repeat)
        elif case == "plan":
            bench_plan()
        elif case == "quotes":
            bench_quotes(args.quotes, args.quote_rate, args.max_page, 0.0)
        else:
            bench_case(case, args.latency, not args.no_per_day)


if __name__ == "__main__":
    main()
