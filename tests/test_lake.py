"""The lake: round trips through every API and every reader, boundaries, sessions, upserts, bad input."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ticklake
import ticklake.sample

from tests.lake_data import daily_bars, minute_bars, ny_grid, quotes_table, trades_table

D = dt.date


@pytest.fixture
def lake(tmp_path: Path) -> ticklake.Lake:
    return ticklake.Lake(tmp_path / "lake")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def all_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------------------------ layout & round trip


def test_root_from_argument_env_or_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert ticklake.Lake(tmp_path).root == tmp_path
    monkeypatch.setenv("TICKLAKE_ROOT", str(tmp_path / "env"))
    assert ticklake.Lake().root == tmp_path / "env"
    monkeypatch.delenv("TICKLAKE_ROOT")
    assert ticklake.Lake().root == Path("data/parquet")


def test_files_land_where_spec_says(lake: ticklake.Lake) -> None:
    days = [D(2024, 1, 30), D(2024, 2, 1)]
    lake.write_bars(minute_bars("AAPL", days), "1m")
    lake.write_bars(daily_bars("AAPL", [D(2023, 12, 29), D(2024, 1, 2)]), "1d")
    lake.write_quotes(quotes_table("BRK.B", ny_grid(D(2024, 1, 2), "09:30", "09:31", "1s")))
    lake.write_trades(trades_table("AAPL", ny_grid(D(2024, 1, 2), "09:30", "09:31", "1s")))
    lake.write_bars(minute_bars("AAPL", [D(2024, 1, 2)]).drop_columns(["vwap"]).slice(0, 10), "1s")
    data = [f for f in all_files(lake.root) if f.endswith(".parquet")]
    assert data == [
        "bars/1d/AAPL.2023.parquet",
        "bars/1d/AAPL.2024.parquet",
        "bars/1m/AAPL.2024-01.parquet",
        "bars/1m/AAPL.2024-02.parquet",
        "bars/1s/AAPL.2024-01.parquet",
        "quotes/BRK.B.2024-01.parquet",
        "trades/AAPL.2024-01.parquet",
    ]
    # Nothing else in the data folders: locks (and, for a moment, temporaries) live under the hidden .ticklake/.
    others = [f for f in all_files(lake.root) if not f.endswith(".parquet")]
    assert others, "the locks should exist"
    assert all(f.startswith(".ticklake/locks/") and f.endswith(".parquet.lock") for f in others), others
    for kind in ("bars/1s", "bars/1m", "bars/1d", "quotes", "trades"):
        assert all(p.suffix == ".parquet" for p in (lake.root / kind).iterdir()), kind


@pytest.mark.parametrize("kind", ["1s", "1m", "1d", "quotes", "trades"])
def test_every_reader_sees_the_same_values(lake: ticklake.Lake, kind: str) -> None:
    days = [D(2024, 3, 8), D(2024, 3, 11)]
    if kind == "1d":
        table = daily_bars("MSFT", days)
    elif kind == "quotes":
        table = quotes_table("MSFT", ny_grid(days[0], "09:30", "10:30", "1s"))
    elif kind == "trades":
        stamps = ny_grid(days[0], "09:30", "09:40", "1s")
        table = trades_table("MSFT", stamps.repeat(2))  # equal timestamps are allowed in trades
    else:
        table = minute_bars("MSFT", days)
        if kind == "1s":
            table = table.drop_columns(["vwap"])
    if kind in ("1s", "1m", "1d"):
        written = lake.write_bars(table, kind)  # type: ignore[arg-type]
        back = lake.scan(kind, "MSFT").to_arrow()  # type: ignore[arg-type]
    elif kind == "quotes":
        written = lake.write_quotes(table)
        back = lake.scan("quotes", "MSFT").to_arrow()
    else:
        written = lake.write_trades(table)
        back = lake.scan("trades", "MSFT").to_arrow()
    assert sum(w.rows for w in written) == table.num_rows
    expected = table.cast(back.schema)
    assert back.equals(expected)
    paths = [str(w.path) for w in written]
    by_pyarrow = pa.concat_tables([pq.read_table(p) for p in paths])
    assert by_pyarrow.equals(expected)
    stored_kind = {"1s": "bars/1s", "1m": "bars/1m", "1d": "bars/1d"}.get(kind, kind)
    unit = "ns" if kind == "trades" else "us"  # SPEC §2: bars and quotes in us, raw trades in ns
    assert by_pyarrow.schema.field("timestamp").type == pa.timestamp(unit, tz="UTC")
    assert back.schema.equals(ticklake._core.lake_schema(stored_kind))
    assert by_pyarrow.schema.field("symbol").type == pa.string()
    by_pandas = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    pd.testing.assert_frame_equal(by_pandas, expected.to_pandas())
    by_polars = pl.concat([pl.read_parquet(p) for p in paths])
    assert by_polars.to_arrow().cast(expected.schema).equals(expected)
    by_duckdb = duckdb.sql(f"SELECT * FROM read_parquet({paths!r}) ORDER BY timestamp").arrow()
    if hasattr(by_duckdb, "read_all"):
        by_duckdb = by_duckdb.read_all()
    # DuckDB reads microseconds as TIMESTAMPTZ and trades' nanoseconds as TIMESTAMPTZ_NS: the same instants.
    as_ns = pa.timestamp("ns", tz="UTC")
    assert (
        by_duckdb["timestamp"].cast(as_ns).cast(pa.int64()).equals(expected["timestamp"].cast(as_ns).cast(pa.int64()))
    )
    for name in expected.column_names:
        if name != "timestamp":
            assert by_duckdb[name].to_pylist() == expected[name].to_pylist(), name


def test_pandas_and_polars_input(lake: ticklake.Lake) -> None:
    table = minute_bars("AAPL", [D(2024, 5, 1)])
    lake.write_bars(table.to_pandas(), "1m")
    lake.write_bars(pl.from_arrow(table), "1m")
    frame = lake.read_bars("AAPL", "1m")
    assert isinstance(frame, pd.DataFrame)
    assert str(frame["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert len(frame) == table.num_rows
    assert lake.scan("1m", "AAPL").to_polars().height == table.num_rows
    assert lake.scan("quotes", "AAPL").to_polars().height == 0


def test_kernel_output_goes_straight_in(lake: ticklake.Lake) -> None:
    trades = ticklake.sample.sample_trades("AAPL", D(2024, 3, 8), D(2024, 3, 11), n=20_000, seed=3)
    for interval in ("1s", "1m", "1d"):
        bars = ticklake.bars(trades, interval=interval)
        lake.write_bars(bars, interval)  # type: ignore[arg-type]
        assert lake.scan(interval, "AAPL").to_arrow().equals(bars.cast(lake.scan(interval, "AAPL").to_arrow().schema))  # type: ignore[arg-type]
    quotes = ticklake.best_quotes(ticklake.sample.sample_quotes("AAPL", D(2024, 3, 8), n=20_000, seed=4))
    lake.write_quotes(quotes)
    assert lake.scan("quotes", "AAPL").to_arrow().num_rows == quotes.num_rows


def test_file_metadata_records_provenance(lake: ticklake.Lake) -> None:
    (written,) = lake.write_bars(
        minute_bars("AAPL", [D(2024, 1, 2)]), "1m", metadata={"source": "alpaca", "feed": "sip", "adjustment": "raw"}
    )
    meta = {k.decode(): v.decode() for k, v in pq.read_metadata(written.path).metadata.items()}
    assert meta["ticklake.source"] == "alpaca"
    assert meta["ticklake.feed"] == "sip"
    assert meta["ticklake.adjustment"] == "raw"
    assert meta["ticklake.size_unit"] == "shares"
    assert meta["ticklake.version"] == ticklake.__version__
    assert meta["ticklake.period"] == "2024-01"
    assert "ARROW:schema" in meta
    md = pq.read_metadata(written.path)
    column = md.row_group(0).column(1)
    assert column.compression == "ZSTD"
    assert column.statistics.has_min_max
    assert "DELTA_BINARY_PACKED" in column.encodings


def test_one_row_group_per_new_york_day_for_1s_bars(lake: ticklake.Lake) -> None:
    days = [D(2024, 3, 8), D(2024, 3, 11), D(2024, 3, 12)]
    stamps = [ny_grid(d, "04:00", "20:00", "1s") for d in days]
    table = minute_bars("AAPL", [days[0]]).drop_columns(["vwap"])
    from tests.lake_data import bars_table

    table = bars_table("AAPL", stamps[0].append(stamps[1:]), vwap=False)
    (written,) = lake.write_bars(table, "1s")
    md = pq.read_metadata(written.path)
    assert md.num_row_groups == 3
    assert [md.row_group(i).num_rows for i in range(3)] == [57_600] * 3


# ------------------------------------------------------------------------------------------------ periods & ranges


def test_month_boundary_follows_new_york_date(lake: ticklake.Lake) -> None:
    # 2024-01-31 19:30 ET = 2024-02-01 00:30 UTC belongs to January.
    stamps = pd.DatetimeIndex(
        [
            pd.Timestamp("2024-01-31 19:30", tz="America/New_York"),
            pd.Timestamp("2024-02-01 04:00", tz="America/New_York"),
        ]
    ).tz_convert("UTC")
    from tests.lake_data import bars_table

    written = lake.write_bars(bars_table("AAPL", stamps.as_unit("ns")), "1m")
    assert [(w.path.name, w.rows) for w in written] == [("AAPL.2024-01.parquet", 1), ("AAPL.2024-02.parquet", 1)]
    jan = pq.read_table(written[0].path)
    assert jan["timestamp"][0].as_py() == pd.Timestamp("2024-02-01 00:30", tz="UTC")
    # Reading "January" in New York time finds it; in UTC it is a February row.
    assert len(lake.read_bars("AAPL", "1m", "2024-01-01", "2024-01-31", tz="America/New_York")) == 1
    assert len(lake.read_bars("AAPL", "1m", "2024-01-01", "2024-01-31")) == 0


@pytest.mark.parametrize(
    "day", [D(2024, 3, 8), D(2024, 3, 10), D(2024, 3, 11), D(2024, 11, 1), D(2024, 11, 3), D(2024, 11, 4)]
)
def test_one_new_york_day_across_dst(lake: ticklake.Lake, day: dt.date) -> None:
    days = [day - dt.timedelta(days=1), day, day + dt.timedelta(days=1)]
    lake.write_bars(minute_bars("SPY", days), "1m")
    frame = lake.read_bars("SPY", "1m", day, day, tz="America/New_York")
    assert len(frame) == 16 * 60
    local = frame["timestamp"]
    assert str(local.dt.tz) == "America/New_York"
    assert (local.dt.date == day).all()
    assert local.iloc[0].strftime("%H:%M") == "04:00"
    regular = lake.read_bars("SPY", "1m", day, day, tz="America/New_York", session="regular")
    if day.weekday() < 5:
        assert len(regular) == 390
        assert regular["timestamp"].iloc[0].strftime("%H:%M") == "09:30"
        assert regular["timestamp"].iloc[-1].strftime("%H:%M") == "15:59"
        open_utc = regular["timestamp"].iloc[0].tz_convert("UTC").hour
        assert open_utc == (14 if day in (D(2024, 3, 8), D(2024, 11, 4)) else 13)
        assert len(lake.read_bars("SPY", "1m", day, day, tz="America/New_York", session="pre")) == 330
        assert len(lake.read_bars("SPY", "1m", day, day, tz="America/New_York", session="post")) == 240
        assert len(lake.read_bars("SPY", "1m", day, day, tz="America/New_York", session="extended")) == 960
    else:
        assert len(regular) == 0


def test_early_close_and_holiday(lake: ticklake.Lake) -> None:
    days = [D(2024, 11, 27), D(2024, 11, 28), D(2024, 11, 29)]
    lake.write_bars(minute_bars("SPY", days), "1m")
    thanksgiving = lake.read_bars("SPY", "1m", days[1], days[1], tz="America/New_York", session="extended")
    assert len(thanksgiving) == 0
    friday = lake.read_bars("SPY", "1m", days[2], days[2], tz="America/New_York", session="regular")
    assert len(friday) == 210
    assert friday["timestamp"].iloc[-1].strftime("%H:%M") == "12:59"
    post = lake.read_bars("SPY", "1m", days[2], days[2], tz="America/New_York", session="post")
    assert (post["timestamp"].iloc[0].strftime("%H:%M"), post["timestamp"].iloc[-1].strftime("%H:%M")) == (
        "13:00",
        "16:59",
    )
    # all = every stored row, trading day or not
    assert len(lake.read_bars("SPY", "1m", days[0], days[2], tz="America/New_York")) == 3 * 960


def test_range_bounds(lake: ticklake.Lake) -> None:
    lake.write_bars(minute_bars("AAPL", [D(2024, 1, 2)]), "1m")
    ny = "America/New_York"
    # start inclusive, end exclusive
    frame = lake.read_bars("AAPL", "1m", "2024-01-02 09:30", "2024-01-02 09:35", tz=ny)
    assert [t.strftime("%H:%M") for t in frame["timestamp"]] == ["09:30", "09:31", "09:32", "09:33", "09:34"]
    # aware bounds are taken as they are, whatever tz says
    aware = lake.read_bars(
        "AAPL", "1m", pd.Timestamp("2024-01-02 14:30", tz="UTC"), pd.Timestamp("2024-01-02 14:32", tz="UTC"), tz=ny
    )
    assert len(aware) == 2
    # a bare date as end means through that day; a datetime at midnight does not
    assert len(lake.read_bars("AAPL", "1m", D(2024, 1, 2), D(2024, 1, 2), tz=ny)) == 960
    assert len(lake.read_bars("AAPL", "1m", D(2024, 1, 2), dt.datetime(2024, 1, 2), tz=ny)) == 0
    assert len(lake.read_bars("AAPL", "1m", None, None)) == 960
    assert len(lake.read_bars("AAPL", "1m", "2024-01-02 20:00", None, tz=ny)) == 0
    with pytest.raises(ticklake.InvalidInputError, match="before start"):
        lake.read_bars("AAPL", "1m", "2024-01-04", "2024-01-02")
    with pytest.raises(ticklake.InvalidInputError):
        lake.read_bars("AAPL", "1m", "yesterday-ish", None)
    with pytest.raises(ticklake.InvalidInputError, match="session"):
        lake.read_bars("AAPL", "1m", session="lunch")  # type: ignore[arg-type]
    with pytest.raises(ticklake.InvalidInputError, match="timeframe"):
        lake.read_bars("AAPL", "2d")
    with pytest.raises(ticklake.InvalidInputError, match="its lake name is 1m"):
        lake.read_bars("AAPL", "60s")
    # Another interval is a kind of its own (bars/5m), empty until written.
    assert len(lake.read_bars("AAPL", "5m")) == 0


def test_columns_and_several_symbols(lake: ticklake.Lake) -> None:
    lake.write_bars(minute_bars("MSFT", [D(2024, 1, 2)], seed=1), "1m")
    lake.write_bars(minute_bars("AAPL", [D(2024, 1, 2)], seed=2), "1m")
    frame = lake.read_bars(
        ["MSFT", "AAPL", "NVDA"], "1m", "2024-01-02", "2024-01-02", columns=["close", "symbol"], tz="America/New_York"
    )
    assert list(frame.columns) == ["close", "symbol"]
    assert frame["symbol"].tolist() == ["MSFT"] * 960 + ["AAPL"] * 960
    with pytest.raises(ticklake.InvalidInputError, match="bid_price"):
        lake.read_bars("AAPL", "1m", columns=["bid_price"])


def test_reads_open_only_the_files_that_can_hold_the_range(lake: ticklake.Lake) -> None:
    lake.write_bars(minute_bars("AAPL", [D(2024, 1, 2), D(2024, 2, 1), D(2024, 3, 1)]), "1m")
    february = lake.root / "bars/1m/AAPL.2024-02.parquet"
    february.write_bytes(b"garbage")
    assert len(lake.read_bars("AAPL", "1m", "2024-01-01", "2024-01-31")) == 960
    # In UTC, 2024-03-01 00:00-05:00 is still February in New York: that read would need the February file.
    assert len(lake.read_bars("AAPL", "1m", "2024-03-01", "2024-03-01", tz="America/New_York")) == 960
    with pytest.raises(ticklake.CorruptFileError, match=r"AAPL\.2024-02\.parquet"):
        lake.read_bars("AAPL", "1m", "2024-01-01", "2024-03-31")


def test_daily_bars_go_by_the_label_year(lake: ticklake.Lake) -> None:
    written = lake.write_bars(daily_bars("AAPL", [D(2023, 12, 29), D(2024, 1, 2), D(2024, 12, 31)]), "1d")
    assert [(w.path.name, w.rows) for w in written] == [("AAPL.2023.parquet", 1), ("AAPL.2024.parquet", 2)]
    frame = lake.read_bars("AAPL", "1d", "2024-01-01", "2024-12-31")
    assert len(frame) == 2
    from tests.lake_data import bars_table

    not_midnight = bars_table("AAPL", pd.DatetimeIndex([pd.Timestamp("2024-01-02 05:00", tz="UTC")]).as_unit("ns"))
    with pytest.raises(ticklake.InvalidInputError, match="00:00 UTC"):
        lake.write_bars(not_midnight, "1d")


# ------------------------------------------------------------------------------------------------ merge semantics


def test_same_write_twice_changes_nothing(lake: ticklake.Lake) -> None:
    table = minute_bars("AAPL", [D(2024, 1, 2), D(2024, 1, 3)])
    (first,) = lake.write_bars(table, "1m")
    before = digest(first.path)
    mtime = first.path.stat().st_mtime_ns
    (again,) = lake.write_bars(table, "1m")
    assert again.status == "unchanged" and again.rows == first.rows
    assert digest(first.path) == before and first.path.stat().st_mtime_ns == mtime
    # Writing the same rows from scratch gives the same bytes: files are deterministic.
    first.path.unlink()
    lake.write_bars(table, "1m")
    assert digest(first.path) == before


def test_upsert_incoming_rows_win(lake: ticklake.Lake) -> None:
    table = minute_bars("AAPL", [D(2024, 1, 2)])
    lake.write_bars(table, "1m")
    patch = table.slice(100, 5)
    patch = patch.set_column(patch.schema.get_field_index("close"), "close", pa.array([555.55] * 5))
    extra = minute_bars("AAPL", [D(2024, 1, 3)]).slice(0, 3)
    (written,) = lake.write_bars(pa.concat_tables([patch, extra]), "1m")
    assert written.rows == 963
    frame = lake.read_bars("AAPL", "1m")
    assert frame["timestamp"].is_monotonic_increasing and frame["timestamp"].is_unique
    assert (frame["close"].iloc[100:105] == 555.55).all()
    assert frame["close"].iloc[99] == table["close"][99].as_py()


def test_repeated_reads_follow_every_change_of_the_file(lake: ticklake.Lake) -> None:
    """Reads reuse a file's parsed footer only while the file is the same one (inode, size, mtime)."""
    table = minute_bars("AAPL", [D(2024, 1, 2), D(2024, 1, 3)])
    lake.write_bars(table, "1m")
    path = lake.root / "bars/1m/AAPL.2024-01.parquet"
    day = ("AAPL", "1m", "2024-01-03", "2024-01-03")
    ny = "America/New_York"
    before = lake.read_bars(*day, tz=ny)
    assert len(before) == 960 and lake.read_bars(*day, tz=ny).equals(before)
    patch = table.slice(960 + 10, 1)
    patch = patch.set_column(patch.schema.get_field_index("close"), "close", pa.array([777.0]))
    lake.write_bars(patch, "1m")  # a new file renamed over the old one
    after = lake.read_bars(*day, tz=ny)
    assert after["close"].iloc[10] == 777.0 and after.drop(index=10).equals(before.drop(index=10))
    lake.write_bars(minute_bars("AAPL", [D(2024, 1, 4)]), "1m")
    assert len(lake.read_bars("AAPL", "1m")) == 3 * 960
    data = path.read_bytes()
    with open(path, "r+b") as handle:  # damaged in place: same inode, other size
        handle.truncate(len(data) // 2)
    with pytest.raises(ticklake.CorruptFileError, match=r"AAPL\.2024-01\.parquet"):
        lake.read_bars(*day, tz=ny)
    path.unlink()
    assert lake.read_bars(*day, tz=ny).empty


def test_replace_range_drops_bars_that_disappeared(lake: ticklake.Lake) -> None:
    days = [D(2024, 1, 2), D(2024, 1, 3), D(2024, 1, 4)]
    lake.write_bars(minute_bars("AAPL", days), "1m")
    redownload = minute_bars("AAPL", [days[1]], seed=9).slice(0, 100)  # the day now has fewer bars
    start = pd.Timestamp(days[1], tz="America/New_York")
    (written,) = lake.write_bars(redownload, "1m", replace=(start, start + pd.Timedelta(days=1)))
    assert written.rows == 960 + 100 + 960
    day = lake.scan("1m", "AAPL", days[1], days[1], tz="America/New_York").to_arrow()
    assert day.cast(redownload.schema).equals(redownload.cast(redownload.schema))
    # Replacing a whole month with nothing removes the file.
    empty = minute_bars("AAPL", [days[0]]).slice(0, 0)
    (removed,) = lake.write_bars(empty, "1m", symbol="AAPL", replace=("2024-01-01", "2024-02-01"))
    assert removed.status == "removed" and not removed.path.exists()


def test_trades_keep_equal_timestamps_and_order(lake: ticklake.Lake) -> None:
    stamps = ny_grid(D(2024, 1, 2), "09:30", "09:31", "1s").repeat(3)
    trades = trades_table("AAPL", stamps)
    lake.write_trades(trades)
    back = lake.scan("trades", "AAPL").to_arrow()
    assert back["id"].to_pylist() == trades["id"].to_pylist()
    # A re-download of one second replaces all of that second's trades.
    again = trades_table("AAPL", stamps[3:5], seed=5)
    lake.write_trades(again)
    back = lake.scan("trades", "AAPL").to_arrow()
    assert back.num_rows == trades.num_rows - 3 + 2
    assert ticklake.bars(back, interval="1m").num_rows == 1


# ------------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("symbol", ["../x", "A/B", "", "aapl", "A B", "..", ".A", "TOOLONGSYMBOL", "A\\B", "A\x00"])
def test_hostile_symbols_are_rejected_before_any_path(lake: ticklake.Lake, symbol: str) -> None:
    table = minute_bars("AAPL", [D(2024, 1, 2)]).slice(0, 2)
    hostile = table.set_column(0, "symbol", pa.array([symbol] * 2, pa.string()))
    with pytest.raises(ticklake.InvalidInputError, match="symbol"):
        lake.write_bars(hostile, "1m")
    with pytest.raises(ticklake.InvalidInputError, match="symbol"):
        lake.write_bars(table.drop_columns(["symbol"]), "1m", symbol=symbol)
    with pytest.raises(ticklake.InvalidInputError, match="symbol"):
        lake.read_bars(symbol, "1m")
    assert not lake.root.exists()


def test_bad_writes_name_the_problem_and_write_nothing(lake: ticklake.Lake) -> None:
    table = minute_bars("AAPL", [D(2024, 1, 2)])
    dup = pa.concat_tables([table.slice(0, 10), table.slice(9, 1)])
    with pytest.raises(ticklake.InvalidInputError, match="duplicate") as err:
        lake.write_bars(dup, "1m")
    assert err.value.column == "timestamp" and err.value.row == 10
    unsorted = pa.concat_tables([table.slice(5, 5), table.slice(0, 5)])
    with pytest.raises(ticklake.InvalidInputError, match="earlier") as err:
        lake.write_bars(unsorted, "1m")
    assert err.value.row == 5
    nan_price = table.set_column(2, "open", pa.array([float("nan")] + [1.0] * (table.num_rows - 1)))
    with pytest.raises(ticklake.InvalidInputError, match="open") as err:
        lake.write_bars(nan_price, "1m")
    assert err.value.row == 0
    wrong_type = table.set_column(6, "volume", pa.array(["1"] * table.num_rows))
    with pytest.raises(ticklake.InvalidInputError, match="volume"):
        lake.write_bars(wrong_type, "1m")
    naive = table.set_column(1, "timestamp", table["timestamp"].cast(pa.timestamp("ns")))
    with pytest.raises(ticklake.InvalidInputError, match="timestamp"):
        lake.write_bars(naive, "1m")
    with pytest.raises(ticklake.InvalidInputError, match="close"):
        lake.write_bars(table.drop_columns(["close"]), "1m")
    with pytest.raises(ticklake.InvalidInputError, match="extra"):
        lake.write_bars(table.append_column("extra", pa.array([1] * table.num_rows)), "1m")
    with pytest.raises(ticklake.InvalidInputError, match="vwap"):
        lake.write_bars(table, "1s")  # 1s bars have no vwap
    assert not lake.root.exists()
    # One bad symbol among good ones: nothing at all is written.
    other = minute_bars("MSFT", [D(2024, 1, 2)]).slice(0, 2)
    bad = pa.concat_tables([other, table.slice(0, 1).set_column(0, "symbol", pa.array(["a/b"], pa.string()))])
    with pytest.raises(ticklake.InvalidInputError):
        lake.write_bars(bad, "1m")
    assert not lake.root.exists()


def test_other_units_and_widths_are_converted(lake: ticklake.Lake) -> None:
    table = minute_bars("AAPL", [D(2024, 1, 2)]).slice(0, 5)
    loose = pa.table(
        {
            "symbol": table["symbol"].cast(pa.large_string()),
            "timestamp": table["timestamp"].cast(pa.timestamp("us", tz="America/New_York")),
            "open": table["open"].cast(pa.float32()),
            "high": table["high"],
            "low": table["low"],
            "close": table["close"],
            "volume": table["volume"].cast(pa.int32()),
        }
    )
    lake.write_bars(loose, "1m")
    back = lake.scan("1m", "AAPL").to_arrow()
    # The same instants, in the stored unit (us).
    assert back["timestamp"].equals(table["timestamp"].cast(back.schema.field("timestamp").type))
    assert back["vwap"].null_count == 5 and back["trade_count"].null_count == 5


def test_compression_level(tmp_path: Path) -> None:
    table = minute_bars("AAPL", [D(2024, 1, 2), D(2024, 1, 3)])
    sizes = {}
    for level in (1, 19):
        (w,) = ticklake.Lake(tmp_path / str(level), compression_level=level).write_bars(table, "1m")
        sizes[level] = w.bytes
        assert pq.read_table(w.path).num_rows == table.num_rows
    assert sizes[19] <= sizes[1]
    with pytest.raises(ticklake.InvalidInputError, match="1-22"):
        ticklake.Lake(tmp_path, compression_level=23)


# ------------------------------------------------------------------------------------------------ SQL & inventory


def test_sql_views_over_the_lake(lake: ticklake.Lake) -> None:
    empty = lake.sql("SELECT count(*) AS n FROM bars_1s")
    assert empty["n"].tolist() == [0]
    lake.write_bars(minute_bars("AAPL", [D(2024, 1, 31), D(2024, 2, 1)]), "1m")
    lake.write_bars(minute_bars("MSFT", [D(2024, 2, 1)]), "1m")
    lake.write_quotes(quotes_table("AAPL", ny_grid(D(2024, 1, 2), "09:30", "09:31", "1s")))
    frame = lake.sql("SELECT symbol, count(*) AS n, sum(volume) AS v FROM bars_1m GROUP BY symbol ORDER BY symbol")
    expected = pd.concat([lake.read_bars("AAPL", "1m"), lake.read_bars("MSFT", "1m")])
    assert frame["n"].tolist() == [1920, 960]
    assert frame["v"].sum() == expected["volume"].sum()
    assert lake.sql("SELECT count(*) AS n FROM quotes")["n"].tolist() == [60]
    assert lake.connect().execute("SELECT count(*) FROM bars_1d").fetchone() == (0,)
    with pytest.raises(ticklake.InvalidInputError, match="SQL"):
        lake.sql("SELECT * FROM nowhere")


def test_inventory_from_footers(lake: ticklake.Lake) -> None:
    lake.write_bars(minute_bars("AAPL", [D(2024, 1, 31), D(2024, 2, 1)]), "1m")
    lake.write_quotes(quotes_table("BRK.B", ny_grid(D(2024, 1, 2), "09:30", "09:31", "1s")))
    inv = lake.inventory()
    assert inv[["kind", "symbol", "period", "rows"]].values.tolist() == [
        ["bars/1m", "AAPL", "2024-01", 960],
        ["bars/1m", "AAPL", "2024-02", 960],
        ["quotes", "BRK.B", "2024-01", 60],
    ]
    first = lake.read_bars("AAPL", "1m", "2024-01-01", "2024-01-31", tz="America/New_York")
    assert inv["first"].iloc[0] == first["timestamp"].iloc[0]
    assert inv["last"].iloc[0] == first["timestamp"].iloc[-1]
    assert inv["bytes"].tolist() == [Path(p).stat().st_size for p in inv["path"]]
    assert ticklake.Lake(lake.root / "nothing").inventory().empty


def test_validate_reports_problems(lake: ticklake.Lake) -> None:
    lake.write_bars(minute_bars("AAPL", [D(2024, 1, 2)]), "1m")
    assert lake.validate() == []
    directory = lake.root / "bars/1m"
    # a file whose rows belong to another month, written behind the lake's back
    pq.write_table(minute_bars("AAPL", [D(2024, 2, 1)]), directory / "AAPL.2024-03.parquet")
    (directory / "notes.txt").write_text("hi")
    (directory / "MSFT.2024-01.parquet").write_bytes(b"PAR1 truncated")
    unsorted = minute_bars("IBM", [D(2024, 1, 2)])
    pq.write_table(pa.concat_tables([unsorted.slice(1), unsorted.slice(0, 1)]), directory / "IBM.2024-01.parquet")
    problems = {p.path.name: p.problem for p in lake.validate()}
    assert "AAPL.2024-01.parquet" not in problems
    assert "outside the file's period" in problems["AAPL.2024-03.parquet"]
    assert "not a lake file" in problems["notes.txt"]
    assert "unreadable" in problems["MSFT.2024-01.parquet"]
    assert "earlier" in problems["IBM.2024-01.parquet"]
    with pytest.raises(ticklake.CorruptFileError, match="MSFT"):
        lake.inventory()


def test_large_random_month_round_trip(lake: ticklake.Lake) -> None:
    rng = np.random.default_rng(1)
    seconds = np.sort(rng.choice(np.arange(0, 30 * 86400), size=200_000, replace=False))
    stamps = pd.DatetimeIndex(
        pd.Timestamp("2024-04-01 04:00", tz="America/New_York").as_unit("ns") + pd.to_timedelta(seconds, unit="s")
    ).tz_convert("UTC")
    from tests.lake_data import bars_table

    table = bars_table("SPY", stamps, vwap=False)
    written = lake.write_bars(table, "1s")
    assert sum(w.rows for w in written) == table.num_rows
    back = lake.scan("1s", "SPY").to_arrow()
    assert back.equals(table.cast(back.schema))
