"""The crash and fault campaign (RELIABILITY.md §2): random SIGKILLs across one writer, concurrent writers and
``import-api`` against a faulty server, each trial checked for torn files, lost rows, untyped errors, hangs,
crashes and leaked secrets.

    python -m tests.campaign [--trials N] [--root DIR]     # the table for the closing note (N per scenario)

``tests/test_campaign.py`` runs a few trials of each scenario in the default test run and the long form
(``python -m pytest -m campaign``) with hundreds.

Every scenario returns a :class:`Tally`: ``torn`` counts files that were not a complete version (mixed versions,
unreadable, wrong row count), ``lost`` counts acknowledged rows missing afterwards, ``untyped`` errors that were not
a ``TicklakeError`` (or a traceback on the CLI), ``hangs`` children that did not answer in time, ``crashes`` exits by
a signal we did not send, ``leaks`` secrets in any output or file and leftovers (temporary or staged files) that
the next run did not clean.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
DAYS = [dt.date(2024, 1, d) for d in range(2, 32) if dt.date(2024, 1, d).weekday() < 5]


@dataclasses.dataclass
class Tally:
    """Outcomes of one scenario's trials (all but ``trials`` must stay 0)."""

    scenario: str
    trials: int = 0
    torn: int = 0
    lost: int = 0
    untyped: int = 0
    hangs: int = 0
    crashes: int = 0
    leaks: int = 0
    seconds: float = 0.0

    def clean(self) -> bool:
        return not (self.torn or self.lost or self.untyped or self.hangs or self.crashes or self.leaks)

    def row(self) -> str:
        return (
            f"| {self.scenario} | {self.trials} | {self.torn} | {self.lost} | {self.untyped} | {self.hangs} | "
            f"{self.crashes} | {self.leaks} | {self.seconds:.0f} s |"
        )


HEADER = (
    "| scenario | trials | torn files | lost rows | untyped errors | hangs | crashes | leaks | time |\n"
    "|---|---|---|---|---|---|---|---|---|"
)


def _spawn(code: str, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": child_pythonpath(), **env},
    )


def child_pythonpath() -> str:
    """The repository first, then the parent's own ``PYTHONPATH`` (which may name the ticklake under test: without
    it a child would import whatever ticklake the environment's ``.pth`` points at)."""
    return os.pathsep.join([str(REPO), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])


def _finish(child: subprocess.Popen[str], tally: Tally, killed: bool, timeout: float = 60) -> tuple[str, str]:
    """Waits for a child; counts a hang, a crash (a signal we did not send) or an untyped error (a traceback)."""
    try:
        out, err = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        out, err = child.communicate()
        tally.hangs += 1
        return out, err
    if child.returncode < 0 and not (killed and child.returncode == -signal.SIGKILL):
        tally.crashes += 1
    if "Traceback" in err:
        tally.untyped += 1
    return out, err


def _leftovers(root: Path) -> list[Path]:
    """Temporary files anywhere, and anything in a data folder that is not a lake file."""
    found = [p for p in root.rglob("*") if p.is_file() and p.name.endswith(".tmp")]
    for kind in ("bars/1s", "bars/1m", "bars/1d", "quotes", "trades"):
        folder = root / kind
        if folder.is_dir():
            found += [p for p in folder.iterdir() if not p.name.endswith(".parquet") or p.name.startswith(".")]
    return found


# ---------------------------------------------------------------------------------------------------- one writer

WRITER = """
import sys
import pyarrow as pa
import ticklake
from tests.campaign import DAYS
from tests.lake_data import minute_bars
root, first = sys.argv[1], int(sys.argv[2])
lake = ticklake.Lake(root)
base = minute_bars("SPY", DAYS)
print("ready", flush=True)
k = first
while True:
    rows = 1000 + 37 * (k % 11)
    table = base.slice(0, rows)
    table = table.set_column(table.schema.get_field_index("close"), "close", pa.array([float(k + 1)] * rows))
    lake.write_bars(table, "1m", replace=("2024-01-01", "2024-02-01"))
    print(k, flush=True)
    k += 1
"""


def _version(path: Path) -> int | None:
    """The version a writer's file holds, or None when it is not one complete version."""
    try:
        table = pq.read_table(path)
    except Exception:
        return None
    closes = set(table["close"].to_pylist())
    if len(closes) != 1:
        return None
    version = int(closes.pop()) - 1
    return version if table.num_rows == 1000 + 37 * (version % 11) else None


def single_writer(root: Path, trials: int, seed: int = 1) -> Tally:
    """One process rewrites a month file in a loop and is SIGKILLed at a random moment, ``trials`` times."""
    tally = Tally("one writer, SIGKILL at random", trials)
    started = time.monotonic()
    rng = random.Random(seed)
    target = root / "bars/1m/SPY.2024-01.parquet"
    acknowledged = -1
    for _ in range(trials):
        child = _spawn(WRITER, str(root), str(acknowledged + 1))
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            _finish(child, tally, killed=False)
            continue
        time.sleep(rng.uniform(0.0, 0.2))
        child.send_signal(signal.SIGKILL)
        out, _ = _finish(child, tally, killed=True)
        acked = [int(line) for line in out.split() if line.isdigit()]
        if acked:
            acknowledged = acked[-1]
        if target.exists():
            version = _version(target)
            if version is None:
                tally.torn += 1
            elif version < acknowledged:
                tally.lost += 1000 + 37 * (acknowledged % 11)  # an acknowledged version was overwritten by an older
            else:
                acknowledged = max(acknowledged, version)
        elif acknowledged >= 0:
            tally.lost += 1
    # The next write cleans up what killed writers left.
    import ticklake

    from tests.lake_data import minute_bars

    ticklake.Lake(root).write_bars(minute_bars("SPY", DAYS[:1]).slice(0, 5), "1m")
    tally.leaks += len(_leftovers(root))
    tally.seconds = time.monotonic() - started
    return tally


# ------------------------------------------------------------------------------------------- concurrent writers

UPSERTER = """
import sys
import pyarrow as pa
import ticklake
from tests.campaign import DAYS
from tests.lake_data import minute_bars
root, index, writers, start = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
lake = ticklake.Lake(root, lock_timeout=120)
mine = [d for i, d in enumerate(DAYS) if i % writers == index]
k = start
while True:
    day = mine[k % len(mine)]
    # Version k of this writer's day: a volume that encodes (writer, k).
    table = minute_bars("SPY", [day], seed=day.day)
    volume = pa.array([k * 100 + index] * table.num_rows, pa.int64())
    table = table.set_column(table.schema.get_field_index("volume"), "volume", volume)
    lake.write_bars(table, "1m")
    print(day.isoformat(), k, flush=True)
    k += 1
"""


def concurrent_writers(root: Path, trials: int, writers: int = 4, seed: int = 2) -> Tally:
    """``writers`` processes upsert their own days of one month file concurrently and are all SIGKILLed at a random
    moment, in rounds, ``trials`` kills in all. Every acknowledged (day, version) must be in the file afterwards
    (or a newer version of that day)."""
    import ticklake

    rounds = max(1, trials // writers)
    tally = Tally(f"{writers} concurrent writers, SIGKILL at random", rounds * writers)
    started = time.monotonic()
    rng = random.Random(seed)
    acked: dict[str, int] = {}
    counter = 0
    for _ in range(rounds):
        children = [_spawn(UPSERTER, str(root), str(i), str(writers), str(counter)) for i in range(writers)]
        time.sleep(rng.uniform(0.5, 2.0))
        for child in children:
            child.send_signal(signal.SIGKILL)
        for child in children:
            out, _ = _finish(child, tally, killed=True)
            for line in out.splitlines():
                day, k = line.split()
                acked[day] = max(acked.get(day, -1), int(k))
        counter += 1000
        path = root / "bars/1m/SPY.2024-01.parquet"
        if not path.exists():
            tally.lost += sum(1 for v in acked.values() if v >= 0)
            continue
        try:
            frame = ticklake.Lake(root).read_bars("SPY", "1m")
        except ticklake.TicklakeError:
            tally.torn += 1
            continue
        days = frame["timestamp"].dt.tz_convert("America/New_York").dt.date.astype(str)
        versions = (frame["volume"] // 100).groupby(days).agg(["min", "max"])
        for day, k in acked.items():
            if day not in versions.index or versions.loc[day, "min"] < k:
                tally.lost += 1  # the day is missing, or older than its last acknowledged write
            elif versions.loc[day, "min"] != versions.loc[day, "max"]:
                tally.torn += 1  # two versions of one day mixed
    ticklake.Lake(root).write_bars(ticklake.Lake(root).scan("1m", "SPY").to_arrow().slice(0, 1), "1m")
    tally.leaks += len(_leftovers(root))
    tally.seconds = time.monotonic() - started
    return tally


# ----------------------------------------------------------------------------------------- imports with faults

IMPORTER = """
import sys
from ticklake.client import AlpacaClient
from ticklake.importer import import_api
from tests.alpaca_server import KEY_ID, SECRET
url, root, kind, strategy = sys.argv[1:5]
client = AlpacaClient(KEY_ID, SECRET, base_url=url, rate=100000, backoff=0.001, max_in_flight=4)
print("start", flush=True)
import_api(kind, "AAPL,MSFT", "2024-01-29", "2024-01-31", root=root, client=client, quiet=True, strategy=strategy)
print("finished", flush=True)
"""


def imports_with_faults(root: Path, trials: int, seed: int = 3) -> Tally:
    """``import-api`` against a server that drops, 500s and 429s, SIGKILLed at a random moment and resumed,
    ``trials`` times (kinds and plans in turn); each resumed lake must equal the one-symbol-per-day reference."""
    import pyarrow as pa
    import ticklake
    from ticklake.client import AlpacaClient
    from ticklake.importer import import_api
    from ticklake.sample import sample_quotes, sample_trades

    from tests.alpaca_server import KEY_ID, SECRET, AlpacaServer, Faults

    tally = Tally("import-api with faults, SIGKILL at random", trials)
    started = time.monotonic()
    rng = random.Random(seed)
    start, end = dt.date(2024, 1, 29), dt.date(2024, 1, 31)
    trades = {s: sample_trades(s, start, end, n=12_000, seed=i) for i, s in enumerate(["AAPL", "MSFT"])}
    quotes = {}
    for i, s in enumerate(["AAPL", "MSFT"]):
        table = sample_quotes(s, start, end, n=9_000, seed=20 + i)
        quotes[s] = table.set_column(0, "symbol", pa.array([s] * table.num_rows, pa.string()))
    kinds = ["1s", "quotes", "trades", "1m"]
    faults = Faults(p429=0.01, p500=0.04, pdrop=0.04, seed=seed)
    with AlpacaServer(trades, quotes, faults=faults, max_page=900) as server:
        references = {}
        for kind in kinds:
            with AlpacaClient(KEY_ID, SECRET, base_url=server.url, rate=100_000, backoff=0.001) as client:
                import_api(kind, "AAPL,MSFT", start, end, root=root / f"ref-{kind}", client=client, quiet=True,  # type: ignore[arg-type]
                           strategy="per-day")  # fmt: skip
            references[kind] = _bytes(root / f"ref-{kind}")
        for trial in range(trials):
            kind = kinds[trial % len(kinds)]
            strategy = "per-day" if trial % 3 == 2 else "packed"
            lake = root / f"trial-{trial}"
            child = _spawn(IMPORTER, server.url, str(lake), kind, strategy)
            assert child.stdout is not None
            child.stdout.readline()
            time.sleep(rng.uniform(0.0, 1.5))
            child.send_signal(signal.SIGKILL)
            out, err = _finish(child, tally, killed=True)
            if KEY_ID in out + err or SECRET in out + err:
                tally.leaks += 1
            try:
                with AlpacaClient(KEY_ID, SECRET, base_url=server.url, rate=100_000, backoff=0.001) as client:
                    import_api(kind, "AAPL,MSFT", start, end, root=lake, client=client, quiet=True)  # type: ignore[arg-type]
            except ticklake.TicklakeError:
                tally.lost += 1  # a resume that could not finish loses the import
                continue
            except Exception:
                tally.untyped += 1
                continue
            got = _bytes(lake)
            expected = references[kind]
            tally.lost += sum(1 for name in expected if name not in got)
            tally.torn += sum(1 for name in expected if name in got and got[name] != expected[name])
            tally.leaks += len(_leftovers(lake)) + len(list(lake.glob(".ticklake/staging/*/pieces/*")))
            tally.leaks += sum(SECRET.encode() in p.read_bytes() for p in lake.rglob("*") if p.is_file())
    tally.seconds = time.monotonic() - started
    return tally


def _bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*.parquet"))
        if ".ticklake" not in p.relative_to(root).parts
    }


SCENARIOS = {"writer": single_writer, "concurrent": concurrent_writers, "import": imports_with_faults}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=100, help="trials per scenario")
    parser.add_argument("--only", nargs="*", default=list(SCENARIOS))
    args = parser.parse_args()
    rows = []
    for name in args.only:
        with tempfile.TemporaryDirectory() as root:
            tally = SCENARIOS[name](Path(root), args.trials)  # type: ignore[operator]
            rows.append(tally)
            print(tally.row(), flush=True)
    print(HEADER)
    for tally in rows:
        print(tally.row())


if __name__ == "__main__":
    main()
