"""Findings of the adversarial pass (issue 18), one test each: timestamps the types allow but arithmetic cannot,
foreign files, bad arguments, full and read-only disks. Each failed on the importer and lake of 1dfab28."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import resource
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ticklake
from ticklake.exporter import export_to_parquet
from ticklake.sample import sample_quotes, sample_trades

from tests.campaign import child_pythonpath

REPO = Path(__file__).resolve().parents[1]
I64_MAX, I64_MIN = np.iinfo(np.int64).max, np.iinfo(np.int64).min


def run_python(code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Runs ``code`` in a fresh interpreter (so a regression that spins or allocates without bound fails this test
    by its timeout or memory cap instead of taking the whole run down)."""
    limit = 4 * 1024**3

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO, capture_output=True, text=True, timeout=timeout, preexec_fn=cap,
        env={**os.environ, "PYTHONPATH": child_pythonpath()},
    )  # fmt: skip


def trades_at(ts: list[int]) -> pa.Table:
    return pa.table(
        {
            "timestamp": pa.array(ts, pa.timestamp("ns", tz="UTC")),
            "price": pa.array([10.0] * len(ts)),
            "size": pa.array([100] * len(ts), pa.int64()),
        }
    )


def quotes_at(ts: list[int]) -> pa.Table:
    n = len(ts)
    return pa.table(
        {
            "timestamp": pa.array(ts, pa.timestamp("ns", tz="UTC")),
            "bid_price": [10.0] * n,
            "bid_size": pa.array([100] * n, pa.int64()),
            "ask_price": [10.01] * n,
            "ask_size": pa.array([100] * n, pa.int64()),
        }
    )


@pytest.mark.parametrize("bad", [I64_MAX, I64_MIN, I64_MAX - 1, -(2**62) * 2])
@pytest.mark.parametrize("interval", ["1s", "1m", "1h", "1d", "8760h"])
def test_sentinel_timestamps_are_refused_by_the_bar_kernels(bad: int, interval: str) -> None:
    table = trades_at([1_704_067_200 * 10**9, bad])
    with pytest.raises(ticklake.InvalidInputError, match="outside the supported range") as err:
        ticklake.bars(table, interval=interval)
    assert err.value.column == "timestamp" and err.value.row == 1
    aggregator = ticklake.BarAggregator(interval)
    with pytest.raises(ticklake.InvalidInputError, match="outside the supported range"):
        aggregator.push(table)


@pytest.mark.parametrize("bad", [I64_MAX, I64_MIN])
def test_sentinel_timestamps_are_refused_by_the_quote_kernels_without_spinning(bad: int) -> None:
    done = run_python(
        f"""
        import pyarrow as pa, ticklake
        from tests.test_adversarial import quotes_at
        for make in (ticklake.best_quotes, lambda t: ticklake.QuoteSampler().push(t)):
            try:
                make(quotes_at([1_704_067_200 * 10**9, {bad}]))
            except ticklake.InvalidInputError as err:
                assert "outside the supported range" in str(err) and err.row == 1, err
            else:
                raise SystemExit("accepted")
        print("ok")
        """,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


@pytest.mark.parametrize("kind", ["bars/1s", "bars/1m", "bars/1d", "quotes", "trades"])
def test_a_write_in_april_2262_is_refused_before_anything_is_allocated(tmp_path: Path, kind: str) -> None:
    # New York dates in April 2262: the month after has no nanosecond timestamp.
    done = run_python(
        f"""
        import pandas as pd, pyarrow as pa, ticklake
        from ticklake import _core
        schema = _core.lake_schema({kind!r})
        ts = pd.Timestamp("2262-04-10 12:00", tz="UTC").value
        row = {{f.name: None for f in schema}}
        row.update(symbol="AAPL", timestamp=ts, open=1.0, high=1.0, low=1.0, close=1.0, volume=1, trade_count=1,
                   price=1.0, size=1, bid_price=1.0, bid_size=1, ask_price=1.0, ask_size=1, spread=0.0,
                   bid_exchange="Q", ask_exchange="Q")
        if {kind!r} == "bars/1d":
            row["timestamp"] = pd.Timestamp("2262-04-10", tz="UTC").value
        table = pa.Table.from_pylist([{{k: v for k, v in row.items() if k in schema.names}}])
        table = table.set_column(1, "timestamp", table["timestamp"].cast(pa.timestamp("ns", tz="UTC")))
        try:
            ticklake.Lake({str(tmp_path)!r}).write(table, {kind!r})
        except ticklake.InvalidInputError as err:
            assert "outside the supported range" in str(err), err
            print("ok")
        """,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
    assert not list(tmp_path.rglob("*.parquet"))


def test_replay_refuses_a_foreign_file_out_of_time_order(tmp_path: Path) -> None:
    bars = ticklake.bars(sample_trades("AAPL", dt.date(2024, 1, 2), n=5_000, seed=1), interval="1m")
    folder = tmp_path / "bars" / "1m"
    folder.mkdir(parents=True)
    pq.write_table(bars.take(pa.array(np.arange(bars.num_rows)[::-1])), folder / "AAPL.2024-01.parquet")
    done = run_python(
        f"""
        import ticklake
        try:
            list(ticklake.Lake({str(tmp_path)!r}).replay(["AAPL", "MSFT"], "1m"))
        except ticklake.CorruptFileError as err:
            assert "AAPL.2024-01.parquet" in str(err) and "not sorted by time" in str(err), err
            print("ok")
        """,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_an_empty_symbol_stays_a_symbol_in_every_bar() -> None:
    trades = sample_trades("X", dt.date(2024, 1, 2), n=3_000, seed=2)
    trades = trades.set_column(0, "symbol", pa.array([""] * trades.num_rows, pa.string()))
    for out in (ticklake.bars(trades, interval="1m"), ticklake.best_quotes(_quotes_with_symbol(""))):
        assert out.num_rows > 1 and out["symbol"].null_count == 0
        assert set(out["symbol"].to_pylist()) == {""}
    aggregator = ticklake.BarAggregator("1m")
    parts = [aggregator.push(trades), aggregator.finish()]
    assert all(p["symbol"].null_count == 0 for p in parts) and parts[1].num_rows == 1


def _quotes_with_symbol(symbol: str) -> pa.Table:
    quotes = sample_quotes("X", dt.date(2024, 1, 2), n=3_000, seed=3)
    return quotes.set_column(0, "symbol", pa.array([symbol] * quotes.num_rows, pa.string()))


def test_a_pandas_column_mixing_aware_and_naive_timestamps_is_refused(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "timestamp": [pd.Timestamp("2024-01-02 15:00", tz="UTC"), pd.Timestamp("2024-01-02 15:00:01")],
            "price": [10.0, 10.1],
            "size": [100, 100],
        }
    )
    with pytest.raises(ticklake.InvalidInputError, match="mixes tz-aware and naive") as err:
        ticklake.bars(frame)
    assert err.value.column == "timestamp"
    # Aware values in different zones are fine: the instants are clear.
    frame["timestamp"] = [
        pd.Timestamp("2024-01-02 10:00", tz="America/New_York"),
        pd.Timestamp("2024-01-02 15:00:01", tz="UTC"),
    ]
    assert ticklake.bars(frame).num_rows == 2


def test_repeated_and_unconvertible_columns_are_refused(tmp_path: Path) -> None:
    table = trades_at([1_704_067_200 * 10**9])
    twice = pa.Table.from_arrays([*table.columns, pa.array([99.0])], names=[*table.column_names, "price"])
    lake = ticklake.Lake(tmp_path)
    for call in (
        lambda: ticklake.bars(twice),
        lambda: ticklake.BarAggregator("1s").push(twice),
        lambda: lake.write(twice, "trades", symbol="AAPL"),
    ):
        with pytest.raises(ticklake.InvalidInputError, match="more than one column named 'price'"):
            call()
    frame = pd.DataFrame([[1, 2.0, 3]], columns=["timestamp", "price", "price"])
    with pytest.raises(ticklake.InvalidInputError, match="more than one column named 'price'"):
        ticklake.bars(frame)
    objects = pd.DataFrame({"timestamp": [object()], "price": [1.0], "size": [1]})
    with pytest.raises(ticklake.InvalidInputError, match="column timestamp"):
        ticklake.bars(objects)


def test_bounds_and_zones_are_handled_or_refused_clearly(tmp_path: Path) -> None:
    lake = ticklake.Lake(tmp_path)
    lake.write_bars(ticklake.bars(sample_trades("AAPL", dt.date(2024, 1, 2), n=2_000, seed=4), interval="1m"), "1m")
    whole = lake.read_bars("AAPL", "1m")
    # Far bounds mean "from the start" / "to the end".
    assert len(lake.read_bars("AAPL", "1m", "1500-01-01", "2300-01-01")) == len(whole)
    assert len(lake.read_bars("AAPL", "1m", "2024-01-01", "2262-04-11")) == len(whole)
    with pytest.raises(ticklake.InvalidInputError, match="unknown time zone 'Mars/Olympus'"):
        lake.read_bars("AAPL", "1m", tz="Mars/Olympus")
    with pytest.raises(ticklake.InvalidInputError, match="unknown time zone"):
        list(lake.replay(["AAPL"], "1m", tz="Mars/Olympus"))
    # A replace over every representable day empties the stored range, and nothing escapes as a pandas error.
    written = lake.write_bars(whole.iloc[:0], "1m", replace=("1900", "2300"), symbol="AAPL")
    assert [w.status for w in written] == ["removed"]


def _sqlite(
    path: Path, rows: list[tuple[object, ...]], columns: str = "symbol, timestamp, open, high, low, close, volume"
) -> str:
    with contextlib.closing(sqlite3.connect(path)) as con:
        con.execute(f"CREATE TABLE bars_1m ({columns})")
        con.executemany(f"INSERT INTO bars_1m VALUES ({', '.join('?' * len(rows[0]))})", rows)
        con.commit()
    return f"sqlite:///{path}"


@pytest.mark.parametrize(("unit", "value"), [("s", 10**10 * 10**3), ("s", 10**10), ("ms", 9 * 10**17)])
def test_an_epoch_that_would_wrap_is_refused(tmp_path: Path, unit: str, value: int) -> None:
    url = _sqlite(tmp_path / "db.sqlite", [("AAPL", value, 1.0, 1.0, 1.0, 1.0, 10)])
    with pytest.raises(ticklake.InvalidInputError, match=f"read as epoch {unit}, is outside 1679-2261"):
        export_to_parquet(url, root=tmp_path / "lake", epoch_unit=unit)
    assert not list((tmp_path / "lake").rglob("*.parquet"))


def test_a_null_timestamp_is_refused_before_any_file_is_written(tmp_path: Path) -> None:
    day = 1_704_205_800  # 2024-01-02 14:30 UTC
    rows: list[tuple[object, ...]] = [("AAPL", (day + 60 * i) * 10**9, 1.0, 1.0, 1.0, 1.0, 10) for i in range(50)]
    rows += [("MSFT", None, 1.0, 1.0, 1.0, 1.0, 10)]
    url = _sqlite(tmp_path / "db.sqlite", rows)
    with pytest.raises(ticklake.InvalidInputError, match=r"1 row.* whose timestamp is NULL; nothing was written"):
        export_to_parquet(url, root=tmp_path / "lake")
    assert not list((tmp_path / "lake").rglob("*.parquet"))


def test_text_timestamps_with_mixed_offsets_export_in_time_order(tmp_path: Path) -> None:
    instants = pd.date_range("2024-01-02 14:30", periods=120, freq="1min", tz="UTC")
    rows: list[tuple[object, ...]] = []
    for i, t in enumerate(instants):
        # Alternate the offset the text is written in: text order is then not time order.
        text = t.tz_convert("America/New_York").isoformat() if i % 2 else t.isoformat()
        rows.append(("AAPL", text, 1.0 + i, 1.0 + i, 1.0 + i, 1.0 + i, 10 + i))
    url = _sqlite(tmp_path / "db.sqlite", rows)
    report = export_to_parquet(url, root=tmp_path / "lake")
    assert report.ok
    stored = ticklake.Lake(tmp_path / "lake").read_bars("AAPL", "1m")
    assert stored["timestamp"].tolist() == list(instants)
    assert stored["volume"].tolist() == [10 + i for i in range(120)]


def test_sql_survives_a_damaged_file_and_names_it(tmp_path: Path) -> None:
    lake = ticklake.Lake(tmp_path)
    lake.write_bars(ticklake.bars(sample_trades("AAPL", dt.date(2024, 1, 2), n=2_000, seed=5), interval="1m"), "1m")
    lake.write_bars(ticklake.bars(sample_trades("AAPL", dt.date(2024, 1, 2), n=2_000, seed=5), interval="1d"), "1d")
    damaged = tmp_path / "bars" / "1m" / "AAPL.2024-01.parquet"
    damaged.write_bytes(damaged.read_bytes()[:-20])
    assert lake.sql("SELECT 1 AS one")["one"].tolist() == [1]
    assert lake.sql("SELECT count(*) AS n FROM bars_1d")["n"].tolist() == [1]
    with pytest.raises(ticklake.CorruptFileError, match=r"AAPL\.2024-01\.parquet"):
        lake.sql("SELECT count(*) FROM bars_1m")
    done = subprocess.run(
        [sys.executable, "-m", "ticklake.cli", "sql", "SELECT * FROM bars_1m", "--root", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "AAPL.2024-01.parquet" in done.stderr and "Traceback" not in done.stderr


def test_validate_and_inventory_while_files_are_rewritten(tmp_path: Path) -> None:
    lake = ticklake.Lake(tmp_path)
    trades = sample_trades("AAPL", dt.date(2024, 1, 2), dt.date(2024, 1, 5), n=20_000, seed=6)
    bars = ticklake.bars(trades, interval="1s")
    lake.write_bars(bars, "1s")
    stop = threading.Event()
    errors: list[BaseException] = []

    def rewrite() -> None:
        days = pd.to_datetime(bars["timestamp"].to_pandas()).dt.tz_convert("America/New_York").dt.date
        try:
            for k in range(40):
                if stop.is_set():
                    return
                keep = np.asarray(days != dt.date(2024, 1, 2 + k % 4))
                lake.write_bars(bars.filter(pa.array(keep)), "1s", replace=("2024-01-02", "2024-01-06"))
                lake.write_bars(bars, "1s")
        except BaseException as err:  # handed to the test
            errors.append(err)

    writer = threading.Thread(target=rewrite)
    writer.start()
    try:
        for _ in range(30):
            assert lake.validate() == []
            assert len(lake.inventory()) == 1
    finally:
        stop.set()
        writer.join()
    assert not errors


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_full_disk_is_a_typed_error_that_names_the_file_and_tears_nothing(tmp_path: Path) -> None:
    trades = sample_trades("AAPL", dt.date(2024, 1, 2), dt.date(2024, 1, 31), n=400_000, seed=7)
    small = ticklake.bars(trades.slice(0, 20_000), interval="1s")
    month = ticklake.bars(trades, interval="1s")
    with tmpfs(tmp_path / "disk", "1m") as disk:
        lake = ticklake.Lake(disk)
        lake.write_bars(small, "1s")
        before = {p: p.read_bytes() for p in disk.rglob("*.parquet")}
        with pytest.raises(ticklake.LakeIOError, match="No space left on device") as err:
            lake.write_bars(month, "1s")
        assert str(disk) in str(err.value)
        assert {p: p.read_bytes() for p in disk.rglob("*.parquet")} == before  # the old file, untouched
        assert not [p for p in disk.rglob("*") if p.name.endswith(".tmp")]
        done = subprocess.run(
            [sys.executable, "-m", "ticklake.cli", "demo", "--root", str(disk / "demo"), "--trades", "200000"],
            cwd=REPO, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 2 and "No space left on device" in done.stderr and "Traceback" not in done.stderr
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        with pytest.raises(ticklake.LakeIOError, match="Read-only file system"):
            lake.write_bars(small.slice(0, 10), "1s")
        read_only = subprocess.run(
            [sys.executable, "-m", "ticklake.cli", "demo", "--root", str(disk / "demo2")],
            cwd=REPO, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert read_only.returncode == 2 and "Read-only file system" in read_only.stderr
        assert "Traceback" not in read_only.stderr
        assert len(lake.read_bars("AAPL", "1s")) == small.num_rows  # reads still work


def test_a_file_size_limit_is_a_typed_error_too(tmp_path: Path) -> None:
    done = run_python(
        f"""
        import resource, signal, datetime as dt, ticklake
        from ticklake.sample import sample_trades
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
        bars = ticklake.bars(sample_trades("AAPL", dt.date(2024, 1, 2), dt.date(2024, 1, 31), n=300_000), interval="1s")
        try:
            ticklake.Lake({str(tmp_path)!r}).write_bars(bars, "1s")
        except ticklake.LakeIOError as err:
            assert {str(tmp_path)!r} in str(err), err
            print("ok")
        """
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
    assert not list(tmp_path.rglob("*.parquet")) and not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
