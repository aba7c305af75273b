"""The ``ticklake`` command end to end, in a subprocess as a user runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import ticklake

REPO = Path(__file__).resolve().parents[1]


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ticklake.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def test_demo_builds_a_lake_and_queries_it(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    done = cli("demo", "--root", str(root), "--trades", "40000")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    match = re.search(r"(\d+) bars, (\S+) to (\S+)", out)  # the regular-session day read
    assert match is not None, out
    assert 200 < int(match[1]) <= 390 and match[2] >= "09:30:00" and match[3] <= "15:59:00"
    assert "validate: ok" in out
    lake = ticklake.Lake(root)
    inventory = lake.inventory()
    assert set(inventory["kind"]) == {"bars/1s", "bars/1m", "bars/1d", "quotes"}
    assert set(inventory["symbol"]) == {"AAPL", "MSFT", "SPY", "BRK.B"}
    assert set(inventory["period"]) == {"2024-01", "2024-02", "2024"}
    # Pre-market, regular and after-hours rows are all there.
    day = lake.read_bars("AAPL", "1m", "2024-01-10", "2024-01-10", tz="America/New_York")
    for session in ("pre", "regular", "post"):
        part = lake.read_bars("AAPL", "1m", "2024-01-10", "2024-01-10", tz="America/New_York", session=session)
        assert 0 < len(part) < len(day), session
    # A second run changes nothing.
    before = {p: pq.read_metadata(p).num_rows for p in inventory["path"]}
    assert cli("demo", "--root", str(root), "--trades", "40000").returncode == 0
    assert {p: pq.read_metadata(p).num_rows for p in ticklake.Lake(root).inventory()["path"]} == before


def test_ls_sql_validate(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    assert "no lake files" in cli("ls", "--root", str(root)).stdout
    assert cli("demo", "--root", str(root), "--trades", "20000").returncode == 0
    listing = cli("ls", "--root", str(root), "--kind", "bars/1m", "--symbol", "SPY")
    assert listing.returncode == 0
    assert "SPY 2024-01" in listing.stdout.replace("  ", " ") or "2024-01" in listing.stdout
    assert "2 files" in listing.stdout
    query = cli("sql", "SELECT count(DISTINCT symbol) AS n FROM bars_1s", env={"TICKLAKE_ROOT": str(root)})
    assert query.returncode == 0 and query.stdout.split()[-1] == "4"
    ok = cli("validate", "--root", str(root))
    assert ok.returncode == 0 and "0 problem(s) in 28 lake file(s)" in ok.stdout
    (root / "quotes" / "SPY.2024-01.parquet").write_bytes(b"oops")
    bad = cli("validate", "--root", str(root))
    assert bad.returncode == 1 and "SPY.2024-01.parquet" in bad.stdout


def test_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    done = cli("sql", "SELECT * FROM nowhere", "--root", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.startswith("ticklake: error: SQL error") and "Traceback" not in done.stderr
    (tmp_path / "bars" / "1m").mkdir(parents=True)
    (tmp_path / "bars" / "1m" / "AAPL.2024-01.parquet").write_bytes(b"")
    done = cli("ls", "--root", str(tmp_path))
    assert done.returncode == 2 and "AAPL.2024-01.parquet" in done.stderr and "Traceback" not in done.stderr
