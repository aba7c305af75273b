"""Crash safety, concurrent writers and damaged files (RELIABILITY.md §2)."""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ticklake

from tests.campaign import child_pythonpath
from tests.lake_data import minute_bars

REPO = Path(__file__).resolve().parents[1]
D = dt.date


def run_python(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": child_pythonpath()},
    )


# The child rewrites January's 1m file forever: version k has 1000 + 37 * (k % 11) rows, all with close == k + 1.
# It prints k after each write returns, so the parent knows which versions were acknowledged.
WRITER = """
import sys, datetime as dt
import pyarrow as pa, pyarrow.parquet as pq
import ticklake
from tests.lake_data import minute_bars
root, first = sys.argv[1], int(sys.argv[2])
lake = ticklake.Lake(root)
base = minute_bars("SPY", [dt.date(2024, 1, d) for d in range(2, 32) if dt.date(2024, 1, d).weekday() < 5])
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


def read_version(path: Path) -> int:
    table = pq.read_table(path)
    closes = set(table["close"].to_pylist())
    assert len(closes) == 1, f"torn file: {len(closes)} versions mixed"
    version = int(closes.pop()) - 1
    assert table.num_rows == 1000 + 37 * (version % 11), "row count does not match the version"
    return version


def test_sigkill_never_leaves_a_torn_file_or_a_stray_parquet(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    target = root / "bars/1m/SPY.2024-01.parquet"
    temps = root / ".ticklake/tmp/bars/1m"
    rng = random.Random(7)
    acknowledged = -1
    kills_mid_write = 0
    for _ in range(50):
        first = acknowledged + 1
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(root), str(first)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": child_pythonpath()},
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.15))
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate(timeout=30)
        acked = [int(line) for line in out.split()]
        if acked:
            acknowledged = acked[-1]
        if target.exists():
            version = read_version(target)
            # A kill is not a power loss: the last acknowledged version (or the one in flight) is on disk.
            assert acknowledged <= version <= acknowledged + 1
            if version == acknowledged + 1:
                acknowledged = version
        else:
            assert acknowledged == -1
        leftovers = list(temps.glob("*.tmp"))
        kills_mid_write += bool(leftovers)
        assert all(not p.name.endswith(".parquet") for p in leftovers)
        # The data folder holds the data file and nothing else, even right after a kill.
        assert sorted(p.name for p in target.parent.iterdir()) == (["SPY.2024-01.parquet"] if target.exists() else [])
    assert acknowledged > 0, "the child never finished a write: the kills came too early to test anything"
    # The next write under the lock removes what killed writers left behind.
    ticklake.Lake(root).write_bars(minute_bars("SPY", [D(2024, 1, 2)]).slice(0, 5), "1m")
    assert list(temps.glob("*.tmp")) == []
    print(f"{kills_mid_write} of 50 kills left a temporary file behind")


CONCURRENT = """
import sys, datetime as dt
import ticklake
from tests.lake_data import minute_bars
root, parity = sys.argv[1], int(sys.argv[2])
lake = ticklake.Lake(root)
days = [dt.date(2024, 1, d) for d in range(1, 32) if dt.date(2024, 1, d).weekday() < 5 and d % 2 == parity]
for day in days:
    lake.write_bars(minute_bars("SPY", [day], seed=day.day), "1m")
print(len(days))
"""


def test_two_processes_merging_into_the_same_month_lose_nothing(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT, str(root), str(parity)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": child_pythonpath()},
        )
        for parity in (0, 1)
    ]
    counts = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        counts.append(int(out))
    frame = ticklake.Lake(root).read_bars("SPY", "1m")
    days = frame["timestamp"].dt.tz_convert("America/New_York").dt.date
    assert days.nunique() == sum(counts) == 23
    assert len(frame) == 23 * 960


HOLDER = """
import fcntl, os, sys, time
lock = sys.argv[1]
os.makedirs(os.path.dirname(lock), exist_ok=True)
fd = os.open(lock, os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.pwrite(fd, str(os.getpid()).encode(), 0)
print("held", flush=True)
time.sleep(60)
"""


def test_a_held_lock_times_out_with_the_holders_pid(tmp_path: Path) -> None:
    lake = ticklake.Lake(tmp_path, lock_timeout=0.2)
    table = minute_bars("SPY", [D(2024, 1, 2)])
    path = tmp_path / "bars/1m/SPY.2024-01.parquet"
    # Another process holds the file's lock, the way a writer does (flock on the lock under .ticklake/locks).
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / ".ticklake/locks/bars/1m/SPY.2024-01.parquet.lock")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(ticklake.LakeLockedError, match=rf"SPY\.2024-01\.parquet: locked .*pid {holder.pid}"):
            lake.write_bars(table, "1m")
        assert not path.exists()
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    lake.write_bars(table, "1m")
    assert path.exists()


# --------------------------------------------------------------------------------------------------- damaged files


@pytest.fixture
def written(tmp_path: Path) -> tuple[ticklake.Lake, Path]:
    lake = ticklake.Lake(tmp_path / "lake")
    (w,) = lake.write_bars(minute_bars("SPY", [D(2024, 1, 2), D(2024, 1, 3)]), "1m")
    return lake, w.path


def damaged_variants(data: bytes) -> dict[str, bytes]:
    footer_len = int.from_bytes(data[-8:-4], "little")
    variants = {
        "empty": b"",
        "4 bytes": data[:4],
        "8 bytes": data[:8],
        "12 bytes": data[:12],
        "mid row group": data[: len(data) // 2],
        "inside the footer": data[: len(data) - footer_len // 2 - 8],
        "no magic": data[:-4],
        "footer length too big": data[:-8] + (footer_len * 50).to_bytes(4, "little") + b"PAR1",
        "footer length zero": data[:-8] + (0).to_bytes(4, "little") + b"PAR1",
        "zeroed footer": data[: -8 - footer_len] + bytes(footer_len) + data[-8:],
        "not parquet": b"symbol,timestamp\nAAPL,2024\n",
    }
    return variants


def test_truncated_and_corrupted_files_raise_corrupt_file_error(written: tuple[ticklake.Lake, Path]) -> None:
    lake, path = written
    good = path.read_bytes()
    for name, data in damaged_variants(good).items():
        path.write_bytes(data)
        with pytest.raises(ticklake.CorruptFileError, match=r"SPY\.2024-01\.parquet") as err:
            lake.read_bars("SPY", "1m")
        assert isinstance(err.value, Exception), name
        with pytest.raises(ticklake.CorruptFileError, match=r"SPY\.2024-01\.parquet"):
            lake.write_bars(minute_bars("SPY", [D(2024, 1, 4)]), "1m")
        assert path.read_bytes() == data, f"{name}: a write replaced a damaged file"
        problems = lake.validate()
        assert [p.path for p in problems] == [path], name
    path.write_bytes(good)
    assert lake.validate() == []


BITFLIPS = """
import sys, random, pathlib
import ticklake
root, count = sys.argv[1], int(sys.argv[2])
lake = ticklake.Lake(root)
path = pathlib.Path(root, "bars/1m/SPY.2024-01.parquet")
good = path.read_bytes()
expected = lake.read_bars("SPY", "1m")
rng = random.Random(11)
outcomes = {"corrupt": 0, "read": 0, "changed": 0}
for _ in range(count):
    data = bytearray(good)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(data))
        data[i] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(data))
    try:
        got = lake.read_bars("SPY", "1m")
        outcomes["read"] += 1
        outcomes["changed"] += not got.equals(expected)
    except ticklake.CorruptFileError as err:
        assert "SPY.2024-01.parquet" in str(err)
        outcomes["corrupt"] += 1
    except ticklake.TicklakeError as err:
        outcomes["corrupt"] += 1
print(outcomes["corrupt"], outcomes["read"], outcomes["changed"])
"""


def test_random_bit_flips_never_crash_the_interpreter(written: tuple[ticklake.Lake, Path]) -> None:
    lake, _ = written
    # In a subprocess with a timeout, so a segfault or a hang would fail the test instead of the run.
    done = run_python(BITFLIPS, str(lake.root), "300", timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    corrupt, read, changed = map(int, done.stdout.split())
    assert corrupt + read == 300
    # Every page carries a CRC32 that the reader verifies: a flip inside a page is caught, and the flips that read
    # back clean (in footer bytes no reader uses, e.g. the page index or created_by) return the very same rows.
    # (Before page checksums, 247 of these 300 flips changed values and read back clean.)
    assert corrupt > 100, (corrupt, read)
    assert changed == 0, (corrupt, read, changed)


def test_a_write_into_a_file_with_wrong_rows_is_refused(written: tuple[ticklake.Lake, Path]) -> None:
    lake, path = written
    stored = pq.read_table(path)
    pq.write_table(pa.concat_tables([stored.slice(1), stored.slice(0, 1)]), path)
    before = path.read_bytes()
    with pytest.raises(ticklake.CorruptFileError, match="stored rows"):
        lake.write_bars(minute_bars("SPY", [D(2024, 1, 4)]), "1m")
    assert path.read_bytes() == before
