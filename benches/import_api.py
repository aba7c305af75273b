"""Import speed: page parsing against json.loads + pandas, and a two-symbol month against the loopback server.

    python benches/import_api.py [--repeat K] [--quotes N] [--rate R] [--max-page P]

1. One page of 10,000 trades in Alpaca's wire format (built by ``tests/alpaca_server.py``): ticklake's Rust parser
   (to a pyarrow Table with ns timestamps) against ``json.loads`` + ``pandas.DataFrame`` (and + ``to_datetime``).
2. ``import_api("quotes", "AAPL,MSFT", <a month>)`` against the loopback server running in another process,
   with the client-side limiter at ``--rate`` requests/min and short pages so the month takes thousands of
   requests: the achieved request rate against the limit, and the importing process's peak memory (VmHWM).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ticklake import _core  # noqa: E402
from ticklake.sample import sample_trades  # noqa: E402

from tests.alpaca_server import encode_trades  # noqa: E402


def best(fn, repeat):  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


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


SERVER = """
import sys, datetime as dt
import pyarrow as pa
sys.path.insert(0, sys.argv[1])
from tests.alpaca_server import AlpacaServer
from ticklake.sample import sample_quotes
n, max_page = int(sys.argv[2]), int(sys.argv[3])
quotes = {}
for i, symbol in enumerate(["AAPL", "MSFT"]):
    table = sample_quotes(symbol, dt.date(2024, 4, 1), dt.date(2024, 4, 30), n=n, seed=i)
    quotes[symbol] = table.set_column(0, "symbol", pa.array([symbol] * table.num_rows, pa.string()))
server = AlpacaServer({}, quotes, max_page=max_page, seed=2, rate_limit=10_000)
server.__enter__()
print(server.url, flush=True)
sys.stdin.read()
print(len(server.requests), flush=True)
"""

IMPORT = """
import sys, time
from ticklake.client import AlpacaClient
from ticklake.importer import import_api
sys.path.insert(0, sys.argv[1])
from tests.alpaca_server import KEY_ID, SECRET
url, root, rate = sys.argv[2], sys.argv[3], float(sys.argv[4])
client = AlpacaClient(KEY_ID, SECRET, base_url=url, rate=rate)
report = import_api("quotes", "AAPL,MSFT", "2024-04-01", "2024-04-30", root=root, client=client, quiet=True,
                    workers=8)
peak = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")][0] / 1024
print(report.requests, report.seconds, report.rows, peak, flush=True)
"""


def bench_import(quotes: int, rate: float, max_page: int) -> None:
    print(f"\n=== import quotes, two symbols, April 2024 ({quotes:,} quotes each), limiter {rate:.0f}/min")
    server = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SERVER), str(REPO), str(quotes), str(max_page)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None and server.stdin is not None
    url = server.stdout.readline().strip()
    try:
        with tempfile.TemporaryDirectory() as root:
            done = subprocess.run(
                [sys.executable, "-c", textwrap.dedent(IMPORT), str(REPO), url, root, str(rate)],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )
        requests, seconds, rows, peak = done.stdout.split()
    finally:
        server.stdin.close()
        server.wait(timeout=30)
    achieved = int(requests) / float(seconds) * 60
    print(f"  {int(requests):,} requests, {int(rows):,} quotes in {float(seconds):.1f} s")
    print(f"  achieved {achieved:,.0f} requests/min = {achieved / rate:.1%} of the limit")
    print(f"  peak memory of the importing process: {float(peak):.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--quotes", type=int, default=600_000, help="quotes per symbol in the month")
    parser.add_argument("--rate", type=float, default=6000)
    parser.add_argument("--max-page", type=int, default=400, help="server page size cap (forces many requests)")
    args = parser.parse_args()
    bench_parse(args.repeat)
    bench_import(args.quotes, args.rate, args.max_page)


if __name__ == "__main__":
    main()
