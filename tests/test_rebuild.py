"""Lake.rebuild (bars from the trades archive) in-process and on Dask, and Lake.to_dask (issue 16)."""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import ticklake
from ticklake.lake import kinds, layout
from ticklake.lake.rebuild import REBUILD_METADATA, batches, replace_window

from tests.lake_data import trades_table

SYMBOLS = [f"S{i:02d}" for i in range(20)]
MONTHS = ["2024-01", "2024-02", "2024-03"]
#: Trades per (symbol, month): a few trading days, so the whole module stays well under 30 s on two shared cores.
DAYS = {"2024-01": [2, 31], "2024-02": [1, 29], "2024-03": [1, 28]}


def _trades(symbol: str, month: str, seed: int) -> pa.Table:
    stamps = []
    rng = np.random.default_rng(seed)
    for day in DAYS[month]:
        date = dt.date.fromisoformat(f"{month}-{day:02d}")
        lo = pd.Timestamp(f"{date} 04:00", tz="America/New_York").value
        hi = pd.Timestamp(f"{date} 20:00", tz="America/New_York").value
        stamps.append(np.sort(rng.integers(lo, hi, 300)))
    return trades_table(symbol, pd.DatetimeIndex(np.concatenate(stamps), tz="UTC"), seed=seed)


@pytest.fixture(scope="module")
def trades_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("trades")
    lake = ticklake.Lake(root)
    for i, symbol in enumerate(SYMBOLS):
        lake.write_trades(pa.concat_tables([_trades(symbol, m, i * 10 + j) for j, m in enumerate(MONTHS)]))
    return root


def _copy(src: Path, dst: Path) -> ticklake.Lake:
    for path in (src / "trades").glob("*.parquet"):
        (dst / "trades").mkdir(parents=True, exist_ok=True)
        (dst / "trades" / path.name).write_bytes(path.read_bytes())
    return ticklake.Lake(dst)


def _reference(src: Path, dst: Path, interval: str, symbol: str | None = None) -> ticklake.Lake:
    """The simple path: each trades file read whole, ticklake.bars, one write per month."""
    lake = _copy(src, dst)
    for path in lake.files("trades", symbol):
        symbol, month = path.name.split(".")[:2]
        lo, hi = (pd.Timestamp(t, unit="ns", tz="UTC") for t in layout.period_bounds("trades", month))
        bars = ticklake.bars(lake.scan("trades", symbol, lo, hi).to_arrow(), interval=interval)
        kind = kinds.bar_kind(interval)
        lake.write(bars, kind.folder, replace=replace_window(kind, month), symbol=symbol, metadata=REBUILD_METADATA)
    return lake


def _files(lake: ticklake.Lake, interval: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in lake.files(interval)}


@pytest.mark.parametrize("interval", ["1m", "1d", "5s"])
def test_rebuild_in_process_equals_bars_file_by_file(trades_lake: Path, tmp_path: Path, interval: str) -> None:
    lake = _copy(trades_lake, tmp_path / "lake")
    report = lake.rebuild(interval, threads=2, max_tasks=7)
    assert len(report.units) == len(SYMBOLS) * len(MONTHS)
    assert report.tasks == 7
    assert report.trades == len(SYMBOLS) * len(MONTHS) * 600
    expected = _files(_reference(trades_lake, tmp_path / "ref", interval), interval)
    got = _files(lake, interval)
    assert got.keys() == expected.keys()
    assert len(got) == len(SYMBOLS) * (1 if interval == "1d" else len(MONTHS))
    assert all(got[name] == expected[name] for name in expected)
    # Idempotent: a second run changes nothing.
    again = lake.rebuild(interval, threads=1)
    assert {s for u in again.units for s in u.statuses} == {"unchanged"}
    assert _files(lake, interval) == expected


def test_rebuild_replaces_exactly_the_month(trades_lake: Path, tmp_path: Path) -> None:
    lake = _copy(trades_lake, tmp_path / "lake")
    lake.rebuild("1m", threads=1)
    before = _files(lake, "1m")
    # A stray bar in January (no trade makes it) goes; February and other symbols are untouched.
    stray = ticklake.bars(lake.scan("trades", "S00", "2024-01-02", "2024-01-02").to_arrow(), interval="1m")
    stray = stray.slice(0, 1).set_column(1, "timestamp", pa.array([pd.Timestamp("2024-01-03 15:00", tz="UTC")]))
    lake.write_bars(stray, "1m")
    assert _files(lake, "1m") != before
    report = lake.rebuild("1m", "S00", "2024-01-01", "2024-01-31")
    assert [(u.symbol, u.period) for u in report.units] == [("S00", "2024-01")]
    assert _files(lake, "1m") == before


def test_rebuild_refuses_an_interval_without_a_lake_kind(trades_lake: Path, tmp_path: Path) -> None:
    lake = _copy(trades_lake, tmp_path / "lake")
    with pytest.raises(ticklake.InvalidInputError, match="cannot rebuild '2d'"):
        lake.rebuild("2d")
    with pytest.raises(ticklake.InvalidInputError, match="its lake name is 1m"):
        lake.rebuild("60s")
    assert not list((tmp_path / "lake" / "bars").glob("*"))


def test_other_intervals_have_their_own_folder(trades_lake: Path, tmp_path: Path) -> None:
    lake = _copy(trades_lake, tmp_path / "lake")
    lake.rebuild("15m", "S00", threads=1)
    files = sorted(p.relative_to(lake.root).as_posix() for p in lake.files("15m"))
    assert files == [f"bars/15m/S00.{m}.parquet" for m in MONTHS]
    got = lake.read_bars("S00", "15m")
    trades = lake.scan("trades", "S00").to_arrow()
    expected = ticklake.bars(trades, interval="15m").to_pandas()
    assert len(got) == len(expected) and "vwap" in got.columns
    assert (got["volume"].to_numpy() == expected["volume"].to_numpy()).all()
    assert (got["timestamp"].astype("int64").to_numpy() == expected["timestamp"].astype("int64").to_numpy()).all()
    # The folder is part of the lake: inventory lists it, validate checks it.
    listed = lake.inventory()
    assert sorted(listed[listed["kind"] == "bars/15m"]["period"]) == MONTHS
    assert lake.validate() == []
    damaged = lake.files("15m")[0]
    damaged.write_bytes(damaged.read_bytes()[:-100])
    assert [p.path for p in lake.validate()] == [damaged]


def test_batches_cover_the_units_in_order() -> None:
    units = [(f"S{i}", "2024-01") for i in range(120)]
    groups = batches(units, 50)
    assert [u for g in groups for u in g] == units
    assert len(groups) <= 50
    assert len(batches(units * 1000, 2000)) == 2000


def test_to_dask_equals_scan(trades_lake: Path, tmp_path: Path) -> None:
    pytest.importorskip("dask.dataframe")
    lake = _copy(trades_lake, tmp_path / "lake")
    lake.rebuild("1m", threads=1)
    for kind, cols in (("1m", None), ("trades", ["timestamp", "price", "size"])):
        ddf = lake.to_dask(kind, "S03,S01", "2024-01-15", "2024-03-01", columns=cols)
        assert ddf.npartitions == 6
        expected = lake.scan(kind, "S03,S01", "2024-01-15", "2024-03-01", columns=cols).to_pandas()
        got = ddf.compute(scheduler="sync").reset_index(drop=True)
        pd.testing.assert_frame_equal(got, expected)
        assert list(ddf.dtypes) == list(expected.dtypes)


@pytest.mark.slow
@pytest.mark.parametrize("interval", ["1m", "5s"])
def test_rebuild_on_dask_equals_in_process(
    trades_lake: Path, tmp_path: Path, dask_client: object, interval: str
) -> None:
    expected = _copy(trades_lake, tmp_path / "inproc")
    expected.rebuild(interval, threads=1)
    lake = _copy(trades_lake, tmp_path / "dask")
    report = lake.rebuild(interval, client=dask_client, max_tasks=12)
    assert report.tasks == 12 and len(report.units) == 60
    assert _files(lake, interval) == _files(expected, interval)


@pytest.mark.slow
def test_rebuild_survives_a_killed_worker(trades_lake: Path, tmp_path: Path, dask_client: object) -> None:
    import distributed

    expected = _copy(trades_lake, tmp_path / "inproc")
    expected.rebuild("1m", threads=1)
    lake = _copy(trades_lake, tmp_path / "dask")
    client: distributed.Client = dask_client  # type: ignore[assignment]
    victim = sorted(client.scheduler_info()["workers"])[0]
    pid = client.run(os.getpid, workers=[victim])[victim]

    files_at_kill: list[int] = []

    def kill_when_busy() -> None:
        # Kill the worker once the first bar file exists, so tasks are in flight on it.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not list((lake.root / "bars" / "1m").glob("*.parquet")):
            time.sleep(0.005)
        os.kill(pid, 9)
        files_at_kill.append(len(list((lake.root / "bars" / "1m").glob("*.parquet"))))

    killer = threading.Thread(target=kill_when_busy)
    killer.start()
    report = lake.rebuild("1m", client=client, max_tasks=60)
    killer.join()
    assert files_at_kill and 0 < files_at_kill[0] < 60, files_at_kill  # killed mid-job
    assert len(report.units) == 60
    assert _files(lake, "1m") == _files(expected, "1m")
    client.wait_for_workers(2, timeout=30)  # the nanny restarts it


def test_cli_rebuild(trades_lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ticklake.cli import main

    lake = _copy(trades_lake, tmp_path / "lake")
    args = ["rebuild", "1m", "--root", str(lake.root), "--symbols", "S01,S02", "--start", "2024-02-01", "--quiet"]
    assert main([*args, "--end", "2024-03-31"]) == 0
    assert "bars/1m: 4 unit(s) in 4 task(s), 2,400 trades ->" in capsys.readouterr().out
    assert [p.name for p in lake.files("1m")] == [f"S0{i}.2024-0{m}.parquet" for i in (1, 2) for m in (2, 3)]
    assert main(["rebuild", "2d", "--root", str(lake.root)]) == 2
    assert "cannot rebuild '2d'" in capsys.readouterr().err


def test_without_the_dask_extra_to_dask_and_client_name_the_install_line(
    trades_lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed now raises ImportError
    lake = _copy(trades_lake, tmp_path / "lake")
    with pytest.raises(ticklake.MissingExtraError, match=r"pip install 'ticklake\[dask\]'"):
        lake.to_dask("trades", "S01")
    with pytest.raises(ticklake.MissingExtraError, match=r"pip install 'ticklake\[dask\]'"):
        lake.rebuild("1m", client=object())
    assert not (lake.root / "bars").exists()
    assert len(lake.rebuild("1m", "S01", threads=1).units) == 3  # in-process needs no extra


@pytest.mark.slow
def test_a_damaged_trades_file_stops_the_job_with_its_name(
    trades_lake: Path, tmp_path: Path, dask_client: object
) -> None:
    lake = _copy(trades_lake, tmp_path / "lake")
    damaged = lake.root / "trades" / "S05.2024-02.parquet"
    damaged.write_bytes(damaged.read_bytes()[:-100])
    with pytest.raises(ticklake.CorruptFileError, match=r"S05\.2024-02"):
        lake.rebuild("1m", threads=1)
    with pytest.raises(ticklake.CorruptFileError, match=r"S05\.2024-02"):
        lake.rebuild("1m", client=dask_client, max_tasks=60)


def test_rebuild_1s_equals_bars(trades_lake: Path, tmp_path: Path) -> None:
    lake = _copy(trades_lake, tmp_path / "lake")
    report = lake.rebuild("1s", "S07", threads=1)
    assert [u.period for u in report.units] == MONTHS
    expected = _files(_reference(trades_lake, tmp_path / "ref", "1s", "S07"), "1s")
    assert len(expected) == 3
    assert _files(lake, "1s") == expected
