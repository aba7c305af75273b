"""``export-to-parquet`` from real SQLite and PostgreSQL databases, and backtest replay from the lake."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import ticklake
from ticklake.exporter import ExportError, export_to_parquet

from tests.lake_data import daily_bars, minute_bars, ny_grid, quotes_table

REPO = Path(__file__).resolve().parents[1]
D = dt.date
DAYS = [D(2024, 1, 30), D(2024, 1, 31), D(2024, 2, 1)]


def source_frames() -> dict[str, pd.DataFrame]:
    """The design's tables, as a database would hold them."""
    minute = pa.concat_tables([minute_bars("AAPL", DAYS, seed=1), minute_bars("BRK.B", DAYS, seed=2)]).to_pandas()
    second = minute_bars("AAPL", [D(2024, 1, 31)], seed=3).drop_columns(["vwap"]).to_pandas()
    daily = pa.concat_tables(
        [daily_bars("AAPL", [D(2023, 12, 29), *DAYS], seed=4), daily_bars("BRK.B", DAYS, seed=5)]
    ).to_pandas()
    quotes = quotes_table("AAPL", ny_grid(D(2024, 1, 31), "19:00", "21:00", "1s"), seed=6).to_pandas()
    return {
        "bars_1m": minute,
        "bars_1s": second,
        "bars_1d": daily.drop(columns=["vwap", "trade_count"]),
        "quotes": quotes,
    }


def make_sqlite(path: Path, frames: dict[str, pd.DataFrame]) -> None:
    """Timestamps in four real-world forms: pandas.to_sql text with an offset (1m), epoch milliseconds (1s),
    naive text (1d), epoch seconds (quotes); plus an extra column and a missing optional one."""
    con = sqlite3.connect(path)
    frames["bars_1m"].to_sql("bars_1m", con, index=False)
    second = frames["bars_1s"].copy()
    second["timestamp"] = second["timestamp"].astype("int64") // 10**6
    second["source_id"] = np.arange(len(second))
    second.to_sql("bars_1s", con, index=False)
    daily = frames["bars_1d"].copy()
    daily["timestamp"] = daily["timestamp"].dt.tz_localize(None).dt.strftime("%Y-%m-%d %H:%M:%S")
    daily.to_sql("bars_1d", con, index=False)
    quotes = frames["quotes"].copy()
    quotes["timestamp"] = quotes["timestamp"].astype("int64") // 10**9
    quotes.to_sql("quotes", con, index=False)
    con.close()


def assert_lake_matches(lake: ticklake.Lake, frames: dict[str, pd.DataFrame], only: tuple[str, ...] = ()) -> None:
    for table, timeframe in (("bars_1m", "1m"), ("bars_1s", "1s"), ("bars_1d", "1d"), ("quotes", None)):
        if only and table not in only:
            continue
        source = frames[table].sort_values(["symbol", "timestamp"], kind="stable").reset_index(drop=True)
        symbols = list(dict.fromkeys(source["symbol"]))
        got = lake.read_quotes(symbols) if timeframe is None else lake.read_bars(symbols, timeframe)  # type: ignore[arg-type]
        assert len(got) == len(source), table
        for column in source.columns:
            left, right = got[column].reset_index(drop=True), source[column]
            if column == "timestamp":
                assert (left.astype("int64") == right.astype("int64")).all(), table
            else:
                pd.testing.assert_series_equal(
                    left, right, check_dtype=False, check_names=False, obj=f"{table}.{column}"
                )


def test_sqlite_export_all_forms_and_verify(tmp_path: Path) -> None:
    frames = source_frames()
    db = tmp_path / "market.db"
    make_sqlite(db, frames)
    report = export_to_parquet(f"sqlite:///{db}", root=tmp_path / "lake", batch_rows=700)
    assert report.ok and report.source_rows == {"bars_1s": 960, "bars_1m": 5760, "bars_1d": 7, "quotes": 7200}
    lake = ticklake.Lake(tmp_path / "lake")
    assert_lake_matches(lake, frames)
    notes = "\n".join(report.notes)
    assert "bars_1s: ignored column(s) source_id" in notes
    assert "epoch ms (detected from magnitude)" in notes and "epoch s (detected" in notes
    assert "bars_1d: timestamp text without an offset was taken as UTC" in notes
    assert "vwap, trade_count written as nulls" in notes
    # The month boundary: 2024-01-31 19:30 ET is in the January file.
    periods = {(f.kind, f.symbol, f.period): f.source_rows for f in report.files}
    assert periods[("bars/1m", "AAPL", "2024-01")] == 2 * 960 and periods[("bars/1m", "AAPL", "2024-02")] == 960
    assert periods[("quotes", "AAPL", "2024-01")] == 7200
    assert periods[("bars/1d", "AAPL", "2023")] == 1
    assert lake.validate() == []
    # Re-running changes nothing.
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "lake").rglob("*.parquet")}
    assert export_to_parquet(f"sqlite:///{db}", root=tmp_path / "lake").ok
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "lake").rglob("*.parquet")} == before


@pytest.mark.parametrize("order", ["time-major", "shuffled"])
def test_any_row_order_in_the_source(tmp_path: Path, order: str) -> None:
    frame = source_frames()["bars_1m"]
    if order == "time-major":
        frame = frame.sort_values(["timestamp", "symbol"], kind="stable")
    else:
        frame = frame.sample(frac=1.0, random_state=1)
    db = tmp_path / "market.db"
    con = sqlite3.connect(db)
    frame.to_sql("bars_1m", con, index=False)
    con.close()
    report = export_to_parquet(f"sqlite:///{db}", root=tmp_path / "lake", batch_rows=500)
    assert report.ok and report.source_rows == {"bars_1m": len(frame)}
    assert ("ORDER BY" in "\n".join(report.notes)) == (order == "shuffled")
    assert_lake_matches(ticklake.Lake(tmp_path / "lake"), source_frames(), only=("bars_1m",))


def test_symbol_and_year(tmp_path: Path) -> None:
    frames = source_frames()
    db = tmp_path / "market.db"
    make_sqlite(db, frames)
    report = export_to_parquet(f"sqlite:///{db}", symbol="AAPL", year=2023, root=tmp_path / "lake")
    assert [(f.kind, f.symbol, f.period) for f in report.files] == [("bars/1d", "AAPL", "2023")]
    files = sorted(p.relative_to(tmp_path / "lake").as_posix() for p in (tmp_path / "lake").rglob("*.parquet"))
    assert files == ["bars/1d/AAPL.2023.parquet"]


def test_other_table_names_and_errors(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    con = sqlite3.connect(db)
    source_frames()["bars_1m"].to_sql("minute_bars", con, index=False)
    con.close()
    with pytest.raises(ExportError, match="none of the tables"):
        export_to_parquet(f"sqlite:///{db}", root=tmp_path / "lake")
    report = export_to_parquet(f"sqlite:///{db}", root=tmp_path / "lake", tables={"bars_1m": "minute_bars"})
    assert report.source_rows == {"minute_bars": 5760}
    with pytest.raises(ExportError, match="'nope' not found"):
        export_to_parquet(f"sqlite:///{db}", root=tmp_path / "lake", tables={"bars_1m": "nope"})
    with pytest.raises(ticklake.LakeFileNotFoundError, match="no SQLite database"):
        export_to_parquet(f"sqlite:///{tmp_path / 'missing.db'}", root=tmp_path / "lake")
    with pytest.raises(ExportError, match="unsupported database URL"):
        export_to_parquet("mysql://localhost/db", root=tmp_path / "lake")
    (tmp_path / "text.db").write_text("not a database")
    with pytest.raises(ExportError, match="not a SQLite database"):
        export_to_parquet(f"sqlite:///{tmp_path / 'text.db'}", root=tmp_path / "lake")
    with pytest.raises(ticklake.InvalidInputError, match="table name"):
        export_to_parquet(f"sqlite:///{db}", root=tmp_path / "lake", tables={"bars_1m": "x; drop table y"})


def test_duplicates_in_the_source_are_reported_with_the_row(tmp_path: Path) -> None:
    frame = source_frames()["bars_1m"]
    db = tmp_path / "dup.db"
    con = sqlite3.connect(db)
    pd.concat([frame, frame.iloc[[5]]]).to_sql("bars_1m", con, index=False)
    con.close()
    with pytest.raises(ticklake.InvalidInputError, match="duplicate timestamp"):
        export_to_parquet(f"sqlite:///{db}", root=tmp_path / "lake")


def test_a_count_mismatch_is_an_error(tmp_path: Path) -> None:
    frames = source_frames()
    db = tmp_path / "market.db"
    make_sqlite(db, frames)
    lake = ticklake.Lake(tmp_path / "lake")
    # The lake already holds a bar the database does not have: the file ends up with more rows than the source.
    extra = minute_bars("AAPL", [D(2024, 1, 2)]).slice(0, 1)
    lake.write_bars(extra, "1m")
    with pytest.raises(ExportError, match=r"MISMATCH") as err:
        export_to_parquet(f"sqlite:///{db}", root=tmp_path / "lake")
    assert "AAPL" in str(err.value) and "2024-01" in str(err.value)


def test_cli(tmp_path: Path) -> None:
    frames = source_frames()
    db = tmp_path / "market.db"
    make_sqlite(db, frames)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ticklake.cli", "export-to-parquet", *args, "--root", str(tmp_path / "lake")],
            cwd=REPO, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    done = run("--db", f"sqlite:///{db}", "--all")
    assert done.returncode == 0, done.stderr
    assert "bars/1m  AAPL       2024-01       1,920      1,920  ok" in done.stdout
    assert "note: bars_1s: ignored column(s) source_id" in done.stdout
    missing = run("--db", f"sqlite:///{tmp_path / 'nope.db'}", "--all")
    assert missing.returncode == 2 and "no SQLite database" in missing.stderr and "Traceback" not in missing.stderr
    assert run("--db", f"sqlite:///{db}").returncode == 2  # neither --all nor --symbol


def test_postgresql_export(tmp_path: Path, postgres_url: str) -> None:
    import adbc_driver_postgresql.dbapi as pg

    frames = source_frames()
    minute = pa.Table.from_pandas(frames["bars_1m"], preserve_index=False)  # timestamptz
    second = pa.Table.from_pandas(frames["bars_1s"], preserve_index=False)
    second = second.set_column(1, "timestamp", second["timestamp"].cast(pa.timestamp("us")))  # naive timestamp
    daily = pa.Table.from_pandas(frames["bars_1d"], preserve_index=False)
    daily = daily.set_column(1, "timestamp", daily["timestamp"].cast(pa.int64()))  # bigint epoch ns
    quotes = pa.Table.from_pandas(frames["quotes"], preserve_index=False)
    with pg.connect(postgres_url) as con, con.cursor() as cur:
        for name, table in (("bars_1m", minute), ("bars_1s", second), ("bars_1d", daily), ("quotes", quotes)):
            cur.execute(f'DROP TABLE IF EXISTS "{name}"')
            cur.adbc_ingest(name, table, mode="create")
        con.commit()
    report = export_to_parquet(postgres_url, root=tmp_path / "lake", batch_rows=500)
    assert report.ok and sum(report.source_rows.values()) == 960 + 5760 + 7 + 7200
    notes = "\n".join(report.notes)
    assert "bars_1s: naive timestamps were taken as UTC" in notes
    assert "bars_1d: integer timestamps read as epoch ns" in notes
    assert_lake_matches(ticklake.Lake(tmp_path / "lake"), frames)
    only = export_to_parquet(postgres_url, symbol="BRK.B", root=tmp_path / "brk")
    assert {f.symbol for f in only.files} == {"BRK.B"}
    with pytest.raises(ExportError, match="cannot connect"):
        export_to_parquet(postgres_url.replace("/postgres", "/no_such_db"), root=tmp_path / "x")


def test_replay_merges_symbols_in_time_order(tmp_path: Path) -> None:
    lake = ticklake.Lake(tmp_path)
    rng = np.random.default_rng(0)
    frames = []
    for i, symbol in enumerate(["MSFT", "AAPL", "BRK.B"]):
        # Irregular 1s bars with many timestamps shared across symbols.
        seconds = np.sort(rng.choice(np.arange(0, 5 * 86_400), size=3000 + 500 * i, replace=False))
        base = pd.Timestamp("2024-01-29", tz="America/New_York").value
        stamps = pd.DatetimeIndex(base + seconds * 10**9, tz="UTC").as_unit("ns")
        from tests.lake_data import bars_table

        table = bars_table(symbol, stamps, seed=i, vwap=False)
        lake.write_bars(table, "1s")
        frames.append(table.to_pandas())
    expected = pd.concat(frames).sort_values(["timestamp", "symbol"], kind="stable").reset_index(drop=True)
    batches = list(lake.replay(["MSFT", "AAPL", "BRK.B"], "1s", batch_rows=1000))
    assert all(b.num_rows <= 1000 for b in batches) and len(batches) > 5
    got = pa.Table.from_batches(batches).to_pandas()
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    # A range in New York time.
    day = list(lake.replay(["AAPL", "MSFT"], "1s", "2024-01-31", "2024-01-31", tz="America/New_York"))
    frame = pa.Table.from_batches(day).to_pandas()
    local = frame["timestamp"].dt.tz_convert("America/New_York")
    assert (local.dt.date == D(2024, 1, 31)).all()
    assert len(frame) == len(lake.read_bars(["AAPL", "MSFT"], "1s", "2024-01-31", "2024-01-31", tz="America/New_York"))
    assert list(lake.replay("NVDA", "1s")) == []
    assert os.path.isdir(tmp_path)
