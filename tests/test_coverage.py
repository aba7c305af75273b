"""Coverage against the NYSE calendar and gaps as work, on hand-built lakes (issue 17)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import ticklake
from ticklake.lake.coverage import coverage, summary
from ticklake.lake.gaps import GapRange

from tests.lake_data import bars_table, daily_bars, ny_grid, quotes_table, trades_table

D = dt.date


def grid(days: list[dt.date], start: str = "04:00", end: str = "20:00", step: str = "1min") -> pd.DatetimeIndex:
    parts = [ny_grid(d, start, end, step) for d in days]
    return parts[0].append(parts[1:]) if len(parts) > 1 else parts[0]


def status_of(frame: pd.DataFrame, symbol: str = "AAPL") -> dict[dt.date, str]:
    part = frame[frame["symbol"] == symbol]
    return {d.date(): str(s) for d, s in zip(part["date"], part["status"], strict=True)}


def reason_of(frame: pd.DataFrame, day: dt.date, symbol: str = "AAPL") -> str:
    row = frame[(frame["symbol"] == symbol) & (frame["date"] == pd.Timestamp(day))]
    assert len(row) == 1
    return str(row["reason"].iloc[0])


# ------------------------------------------------------------------------------------------------ minute bars


@pytest.fixture
def minute_lake(tmp_path: Path) -> ticklake.Lake:
    """AAPL 1m bars, 2024-11-25..2024-12-03: 11-26 missing, 11-27 with an 11:00-12:00 hole, 11-29 (early close)
    04:00-17:00, 12-02 ending at 12:59 like an early close on a normal day. 11-28 is Thanksgiving."""
    lake = ticklake.Lake(tmp_path)
    stamps = grid([D(2024, 11, 25), D(2024, 12, 3)])
    stamps = stamps.append(grid([D(2024, 11, 27)], "04:00", "11:00")).append(grid([D(2024, 11, 27)], "12:00", "20:00"))
    stamps = stamps.append(grid([D(2024, 11, 29)], "04:00", "17:00"))
    stamps = stamps.append(grid([D(2024, 12, 2)], "04:00", "13:00"))
    lake.write_bars(bars_table("AAPL", stamps.sort_values()), "1m")
    return lake


def test_minute_bars_missing_partial_early_close_and_holiday(minute_lake: ticklake.Lake) -> None:
    cov = minute_lake.coverage("bars/1m", "AAPL", "2024-11-25", "2024-12-03")
    assert status_of(cov) == {
        D(2024, 11, 25): "full",
        D(2024, 11, 26): "missing",
        D(2024, 11, 27): "partial",  # 330 of 390 minutes
        # 2024-11-28 Thanksgiving and the weekend are not listed: they are not gaps.
        D(2024, 11, 29): "full",  # early close at 13:00: 210 of 210 minutes
        D(2024, 12, 2): "partial",  # the same hours on a normal day end three hours early
        D(2024, 12, 3): "full",
    }
    assert reason_of(cov, D(2024, 11, 27)) == "330 of 390 regular-session minutes"
    assert reason_of(cov, D(2024, 12, 2)) == "rows end 12:59 ET (close 16:00); 210 of 390 regular-session minutes"
    assert reason_of(cov, D(2024, 11, 26)) == "no rows on this New York date"
    day = cov[cov["date"] == pd.Timestamp("2024-11-29")].iloc[0]
    assert (day["session_minutes"], day["minutes"], day["rows"]) == (210, 210, 13 * 60)
    assert day["first"] == pd.Timestamp("2024-11-29 04:00", tz="America/New_York")
    assert day["last"] == pd.Timestamp("2024-11-29 16:59", tz="America/New_York")


def test_min_fraction_and_edge_are_the_definition(minute_lake: ticklake.Lake) -> None:
    # 330/390 = 0.846: full once 0.84 of the minutes are enough.
    loose = minute_lake.coverage("bars/1m", "AAPL", "2024-11-27", "2024-11-27", min_fraction=0.84)
    assert status_of(loose) == {D(2024, 11, 27): "full"}
    strict = minute_lake.coverage("bars/1m", "AAPL", "2024-11-27", "2024-11-27", min_fraction=0.85)
    assert status_of(strict) == {D(2024, 11, 27): "partial"}
    # 12-02 ends at 12:59: with min_fraction 0 only the span counts, and a 181-minute edge lets it pass.
    span = minute_lake.coverage("bars/1m", "AAPL", "2024-12-02", "2024-12-02", min_fraction=0, edge_minutes=180)
    assert status_of(span) == {D(2024, 12, 2): "partial"}
    wide = minute_lake.coverage("bars/1m", "AAPL", "2024-12-02", "2024-12-02", min_fraction=0, edge_minutes=182)
    assert status_of(wide) == {D(2024, 12, 2): "full"}


def test_dst_sessions_are_read_from_the_calendar(tmp_path: Path) -> None:
    lake = ticklake.Lake(tmp_path)
    days = [D(2024, 3, 8), D(2024, 3, 11), D(2024, 11, 1), D(2024, 11, 4)]
    # Regular-session bars only, placed by the New York clock: 13:30Z in EDT (03-11, 11-01), 14:30Z in EST.
    lake.write_bars(bars_table("GOOD", grid(days, "09:30", "16:00")), "1m")
    opens = {d: grid([d], "09:30", "09:31")[0] for d in days}
    assert [opens[d].strftime("%H:%M") for d in days] == ["14:30", "13:30", "13:30", "14:30"]
    # The same bars placed as if the offset never changed (14:30Z every day): wrong on the EDT days.
    utc_days = [pd.date_range(f"{d} 14:30", f"{d} 21:00", freq="1min", inclusive="left", tz="UTC") for d in days]
    est = utc_days[0].append(utc_days[1:])
    lake.write_bars(bars_table("FIXED", est.as_unit("ns")), "1m")
    cov = lake.coverage("1m", ["GOOD", "FIXED"], "2024-03-08", "2024-11-04")
    assert set(cov[cov["symbol"] == "GOOD"].set_index("date").loc[[pd.Timestamp(d) for d in days], "status"]) == {
        "full"
    }
    fixed = status_of(cov, "FIXED")
    assert {d: fixed[d] for d in days} == {
        D(2024, 3, 8): "full",
        D(2024, 3, 11): "partial",
        D(2024, 11, 1): "partial",
        D(2024, 11, 4): "full",
    }
    assert reason_of(cov, D(2024, 3, 11), "FIXED").startswith("rows start 10:30 ET (open 09:30)")


def test_month_files_follow_the_new_york_date(tmp_path: Path) -> None:
    lake = ticklake.Lake(tmp_path)
    # 2024-01-31 19:30 ET is 2024-02-01 00:30 UTC and lives in the January file; it counts for January 31.
    stamps = grid([D(2024, 1, 30), D(2024, 1, 31), D(2024, 2, 1)])
    lake.write_bars(bars_table("AAPL", stamps), "1m")
    assert [p.name for p in lake.files("bars/1m")] == ["AAPL.2024-01.parquet", "AAPL.2024-02.parquet"]
    cov = lake.coverage("bars/1m", "AAPL")
    assert status_of(cov) == {D(2024, 1, 30): "full", D(2024, 1, 31): "full", D(2024, 2, 1): "full"}
    assert cov.set_index("date").loc[pd.Timestamp("2024-01-31"), "last"] == pd.Timestamp("2024-02-01 00:59", tz="UTC")


# ------------------------------------------------------------------------------------------------- the other kinds


def test_daily_bars_in_year_files(tmp_path: Path) -> None:
    lake = ticklake.Lake(tmp_path)
    days = ticklake.sessions.trading_days(D(2023, 12, 20), D(2024, 1, 10))
    kept = [d for d in days if d not in (D(2023, 12, 28), D(2024, 1, 3))]
    lake.write_bars(daily_bars("AAPL", kept), "1d")
    assert [p.name for p in lake.files("bars/1d")] == ["AAPL.2023.parquet", "AAPL.2024.parquet"]
    cov = lake.coverage("bars/1d", "AAPL")
    statuses = status_of(cov)
    assert list(statuses) == days  # every trading day, no holiday (12-25, 01-01) or weekend
    assert {d for d, s in statuses.items() if s == "missing"} == {D(2023, 12, 28), D(2024, 1, 3)}
    assert {s for d, s in statuses.items() if d not in (D(2023, 12, 28), D(2024, 1, 3))} == {"full"}
    gaps = lake.gaps("1d", "AAPL")
    assert dict(gaps) == {"AAPL": [D(2023, 12, 28), D(2024, 1, 3)]}
    pd.testing.assert_frame_equal(lake.coverage("bars/1d", "AAPL", deep=True), cov)  # nothing deeper to read
    one_year = lake.coverage("bars/1d", "AAPL", "2024-01-02", "2024-01-10")
    assert status_of(one_year)[D(2024, 1, 3)] == "missing" and len(one_year) == 7


def _second_stamps(days: list[dt.date], cut: dt.date, hole: dt.date) -> pd.DatetimeIndex:
    stamps = grid([d for d in days if d not in (cut, hole)], "04:00", "20:00", "10s")
    stamps = stamps.append(grid([cut], "04:00", "12:00", "10s"))  # stops at noon
    stamps = stamps.append(grid([hole], "04:00", "10:00", "10s")).append(grid([hole], "15:00", "20:00", "10s"))
    return stamps.sort_values()


@pytest.fixture
def intraday_lake(tmp_path: Path) -> ticklake.Lake:
    """1s bars, quotes and trades of AAPL 2024-02-26..2024-03-01: 02-27 missing, 02-28 stops at noon, 02-29 has
    no rows 10:00-15:00 (its span reaches open and close)."""
    lake = ticklake.Lake(tmp_path)
    days = [D(2024, 2, 26), D(2024, 2, 28), D(2024, 2, 29), D(2024, 3, 1)]
    stamps = _second_stamps(days, D(2024, 2, 28), D(2024, 2, 29))
    lake.write_bars(bars_table("AAPL", stamps, vwap=False), "1s")
    lake.write_quotes(quotes_table("AAPL", stamps))
    trade_stamps = stamps.repeat(2)  # equal timestamps are allowed in trades
    lake.write_trades(trades_table("AAPL", trade_stamps))
    return lake


@pytest.mark.parametrize("kind", ["bars/1s", "quotes", "trades"])
def test_footer_kinds_are_judged_from_row_group_statistics(
    intraday_lake: ticklake.Lake, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_data(*args: object, **kwargs: object) -> None:
        raise AssertionError("coverage read data where the footer was enough")

    monkeypatch.setattr(pq.ParquetFile, "read", no_data)
    monkeypatch.setattr(pq.ParquetFile, "read_row_group", no_data)
    monkeypatch.setattr(pq.ParquetFile, "read_row_groups", no_data)
    cov = intraday_lake.coverage(kind, "AAPL", "2024-02-26", "2024-03-01")
    assert status_of(cov) == {
        D(2024, 2, 26): "full",
        D(2024, 2, 27): "missing",
        D(2024, 2, 28): "partial",
        D(2024, 2, 29): "full",  # the hole inside the day is invisible to statistics: deep=True sees it
        D(2024, 3, 1): "full",
    }
    assert reason_of(cov, D(2024, 2, 28)) == "rows end 11:59 ET (close 16:00)"
    per_row = 2 if kind == "trades" else 1
    assert cov.set_index("date").loc[pd.Timestamp("2024-02-28"), "rows"] == 8 * 360 * per_row
    assert cov["minutes"].isna().all()


@pytest.mark.parametrize("kind", ["bars/1s", "quotes", "trades"])
def test_deep_counts_minutes_from_the_timestamps(intraday_lake: ticklake.Lake, kind: str) -> None:
    cov = intraday_lake.coverage(kind, "AAPL", "2024-02-26", "2024-03-01", deep=True)
    statuses = status_of(cov)
    assert (statuses[D(2024, 2, 28)], statuses[D(2024, 2, 29)], statuses[D(2024, 3, 1)]) == (
        "partial",
        "partial",
        "full",
    )
    assert reason_of(cov, D(2024, 2, 29)) == "90 of 390 regular-session minutes"
    assert cov.set_index("date").loc[pd.Timestamp("2024-03-01"), "minutes"] == 390


def test_microsecond_footers_read_the_same(tmp_path: Path) -> None:
    """Statistics are compared in one unit, whatever unit a file stores (bars and quotes move to us)."""
    ns_lake = ticklake.Lake(tmp_path / "ns")
    days = [D(2024, 2, 26), D(2024, 2, 28), D(2024, 2, 29), D(2024, 3, 1)]
    table = bars_table("AAPL", _second_stamps(days, D(2024, 2, 28), D(2024, 2, 29)), vwap=False)
    ns_lake.write_bars(table, "1s")
    us_dir = tmp_path / "us" / "bars" / "1s"
    us_dir.mkdir(parents=True)
    stored = pq.read_table(ns_lake.files("bars/1s")[0])
    us = stored.set_column(1, "timestamp", stored["timestamp"].cast(pa.timestamp("us", tz="UTC")))
    local = pd.DatetimeIndex(us["timestamp"].to_pandas()).tz_convert("America/New_York").normalize()
    with pq.ParquetWriter(us_dir / "AAPL.2024-02.parquet", us.schema) as writer:
        for day in pd.unique(local):  # one row group per New York day, as the lake writes them
            writer.write_table(us.filter(pa.array(local == day)))
    us_meta = pq.read_metadata(us_dir / "AAPL.2024-02.parquet")
    assert us_meta.num_row_groups == 3 and us_meta.schema.to_arrow_schema().field("timestamp").type.unit == "us"
    expected = ns_lake.coverage("bars/1s", "AAPL", "2024-02-26", "2024-02-29")
    got = ticklake.Lake(tmp_path / "us").coverage("bars/1s", "AAPL", "2024-02-26", "2024-02-29")
    pd.testing.assert_frame_equal(got, expected)


def test_a_row_group_spanning_days_is_read_instead(tmp_path: Path) -> None:
    """A file written elsewhere with one row group for the month: its timestamps are read, the days still right."""
    folder = tmp_path / "quotes"
    folder.mkdir()
    days = [D(2024, 2, 26), D(2024, 2, 28), D(2024, 2, 29), D(2024, 3, 1)]
    table = quotes_table("AAPL", _second_stamps(days, D(2024, 2, 28), D(2024, 2, 29)))
    feb = table.filter(pc.less(table["timestamp"], pa.scalar(pd.Timestamp("2024-03-01 05:00", tz="UTC"))))
    pq.write_table(feb, folder / "AAPL.2024-02.parquet")
    assert pq.read_metadata(folder / "AAPL.2024-02.parquet").num_row_groups == 1
    cov = ticklake.Lake(tmp_path).coverage("quotes", "AAPL", "2024-02-26", "2024-02-29")
    assert status_of(cov) == {
        D(2024, 2, 26): "full",
        D(2024, 2, 27): "missing",
        D(2024, 2, 28): "partial",
        D(2024, 2, 29): "full",  # read, but judged like a footer-only file: by its span
    }
    deep = ticklake.Lake(tmp_path).coverage("quotes", "AAPL", "2024-02-29", "2024-02-29", deep=True)
    assert status_of(deep) == {D(2024, 2, 29): "partial"}


# --------------------------------------------------------------------------------------- symbols and ranges


@pytest.fixture
def listing_lake(tmp_path: Path) -> ticklake.Lake:
    """OLD trades every day of January 2024 (1m bars); NEW starts on 2024-01-17 and misses 01-24."""
    lake = ticklake.Lake(tmp_path)
    days = ticklake.sessions.trading_days(D(2024, 1, 2), D(2024, 1, 31))
    lake.write_bars(bars_table("OLD", grid(days)), "1m")
    new_days = [d for d in days if d >= D(2024, 1, 17) and d != D(2024, 1, 24)]
    lake.write_bars(bars_table("NEW", grid(new_days)), "1m")
    return lake


def test_days_before_a_symbols_first_data_are_reported_apart(listing_lake: ticklake.Lake) -> None:
    cov = listing_lake.coverage("bars/1m")
    assert (cov["date"].min(), cov["date"].max()) == (pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-31"))
    new = status_of(cov, "NEW")
    assert {d for d, s in new.items() if s == "before_first"} == {d for d in new if d < D(2024, 1, 17)}
    assert [d for d, s in new.items() if s == "missing"] == [D(2024, 1, 24)]
    assert set(status_of(cov, "OLD").values()) == {"full"}
    table = summary(cov).set_index("symbol")
    assert table.loc["NEW", ["days", "full", "missing", "before_first"]].tolist() == [21, 10, 1, 10]
    assert table.loc["NEW", "first_day"] == D(2024, 1, 17)
    # gaps() leaves before_first out unless asked.
    assert dict(listing_lake.gaps("bars/1m")) == {"NEW": [D(2024, 1, 24)]}
    everything = listing_lake.gaps("bars/1m", include_before_first=True)
    assert len(everything["NEW"]) == 11 and everything["NEW"][-1] == D(2024, 1, 24)


def test_before_first_is_known_even_when_the_first_file_is_outside_the_range(listing_lake: ticklake.Lake) -> None:
    # Start inside NEW's history: nothing is before_first, even though the scan starts later.
    cov = listing_lake.coverage("bars/1m", "NEW", "2024-01-18", "2024-01-25")
    assert set(status_of(cov, "NEW").values()) == {"full", "missing"}
    # Add a February file: a February-only range still knows NEW's first day was in January.
    listing_lake.write_bars(bars_table("NEW", grid([D(2024, 2, 2)])), "1m")
    feb = listing_lake.coverage("bars/1m", "NEW", "2024-02-01", "2024-02-02")
    assert status_of(feb, "NEW") == {D(2024, 2, 1): "missing", D(2024, 2, 2): "full"}


def test_a_symbol_without_files_is_missing_everywhere(listing_lake: ticklake.Lake) -> None:
    cov = listing_lake.coverage("bars/1m", ["OLD", "NONE"], "2024-01-29", "2024-01-31")
    assert status_of(cov, "NONE") == dict.fromkeys([D(2024, 1, 29), D(2024, 1, 30), D(2024, 1, 31)], "missing")
    gaps = listing_lake.gaps("bars/1m", ["OLD", "NONE"], "2024-01-29", "2024-01-31")
    assert list(gaps) == ["NONE"] and gaps.days == 3


def test_future_days_are_not_gaps(listing_lake: ticklake.Lake) -> None:
    today = pd.Timestamp.now(tz="America/New_York").date()
    cov = listing_lake.coverage("bars/1m", "OLD", "2024-01-30", today + dt.timedelta(days=40))
    assert cov["date"].max().date() <= today
    assert cov["date"].min().date() == D(2024, 1, 30)


def test_empty_lake_and_bad_arguments(tmp_path: Path) -> None:
    lake = ticklake.Lake(tmp_path)
    assert lake.coverage("bars/1m").empty
    assert dict(lake.gaps("quotes")) == {}
    for call, message in [
        (lambda: lake.coverage("bars/2d"), "unknown lake kind"),
        (lambda: lake.coverage("1m", "AAPL", "2024-13-01", "2024-12-31"), "is not a date"),
        (lambda: lake.coverage("1m", "AAPL", "2024-01-02 10:00", "2024-12-31"), "plain New York date"),
        (lambda: lake.coverage("1m", "AAPL", "2024-02-01", "2024-01-01"), "before start"),
        (lambda: lake.coverage("1m", "aapl", "2024-01-02", "2024-01-03"), "symbol"),
        (lambda: lake.coverage("1m", [], "2024-01-02", "2024-01-03"), "no symbols"),
        (lambda: lake.coverage("1m", "AAPL", min_fraction=1.5), "min_fraction"),
    ]:
        with pytest.raises(ticklake.InvalidInputError, match=message):
            call()


def test_a_damaged_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "bars" / "1s").mkdir(parents=True)
    (tmp_path / "bars" / "1s" / "AAPL.2024-01.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(ticklake.CorruptFileError, match=r"AAPL\.2024-01\.parquet"):
        ticklake.Lake(tmp_path).coverage("bars/1s")


# ---------------------------------------------------------------------------------------------------- gaps


def test_gaps_are_dates_per_symbol_and_ranges_skip_closed_days(minute_lake: ticklake.Lake) -> None:
    gaps = minute_lake.gaps("bars/1m", "AAPL", "2024-11-25", "2024-12-03")
    assert dict(gaps) == {"AAPL": [D(2024, 11, 26), D(2024, 11, 27), D(2024, 12, 2)]}
    assert all(isinstance(d, dt.date) for d in gaps["AAPL"])
    assert gaps.ranges() == [
        GapRange("AAPL", "missing", D(2024, 11, 26), D(2024, 11, 26), 1),
        GapRange("AAPL", "partial", D(2024, 11, 27), D(2024, 11, 27), 1),
        GapRange("AAPL", "partial", D(2024, 12, 2), D(2024, 12, 2), 1),
    ]
    assert list(minute_lake.gaps("bars/1m", "AAPL", "2024-11-25", "2024-12-03", include_partial=False)) == ["AAPL"]
    assert minute_lake.gaps("bars/1m", "AAPL", "2024-11-25", "2024-12-03", include_partial=False).days == 1
    assert set(gaps.table["status"]) == {"missing", "partial"}


def test_a_run_of_missing_days_spans_a_holiday_and_a_weekend(tmp_path: Path) -> None:
    lake = ticklake.Lake(tmp_path)
    days = ticklake.sessions.trading_days(D(2024, 11, 20), D(2024, 12, 6))
    missing = {D(2024, 11, 27), D(2024, 11, 29), D(2024, 12, 2), D(2024, 12, 4)}
    lake.write_bars(daily_bars("AAPL", [d for d in days if d not in missing]), "1d")
    gaps = lake.gaps("bars/1d", ["AAPL"], "2024-11-20", "2024-12-06")
    assert gaps["AAPL"] == sorted(missing)
    # 11-27, (Thanksgiving), 11-29, (weekend), 12-02 are consecutive trading days; 12-04 is not next to them.
    assert [str(r) for r in gaps.ranges()] == [
        "AAPL 2024-11-27..2024-12-02 missing (3 trading days)",
        "AAPL 2024-12-04 missing (1 trading day)",
    ]


def test_coverage_of_many_symbols_is_one_row_per_symbol_and_day(tmp_path: Path) -> None:
    lake = ticklake.Lake(tmp_path)
    days = ticklake.sessions.trading_days(D(2024, 1, 2), D(2024, 3, 28))
    rng = np.random.default_rng(3)
    expected = {}
    for i in range(12):
        symbol = f"S{i:02d}"
        kept = [d for d in days if rng.random() > 0.1]
        lake.write_bars(daily_bars(symbol, kept), "1d")
        expected[symbol] = [d for d in days if d not in kept and d > kept[0]]
    cov = coverage(lake.storage, "bars/1d", workers=3)
    assert len(cov) == 12 * len(days)
    gaps = lake.gaps("bars/1d")
    assert dict(gaps) == {s: v for s, v in expected.items() if v}


def test_a_day_in_several_row_groups_is_summed_from_statistics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Trades days past a million rows take several row groups: their counts add up and their spans join."""
    folder = tmp_path / "trades"
    folder.mkdir()
    stamps = grid([D(2024, 3, 4), D(2024, 3, 5)], "04:00", "20:00", "10s")
    table = trades_table("AAPL", stamps)
    local = pd.DatetimeIndex(stamps).tz_convert("America/New_York").normalize()
    with pq.ParquetWriter(folder / "AAPL.2024-03.parquet", table.schema) as writer:
        for day in pd.unique(local):
            writer.write_table(table.filter(pa.array(local == day)), row_group_size=1000)  # 6 groups a day
    assert pq.read_metadata(folder / "AAPL.2024-03.parquet").num_row_groups == 12

    def no_data(*args: object, **kwargs: object) -> None:
        raise AssertionError("coverage read data where the footer was enough")

    monkeypatch.setattr(pq.ParquetFile, "read", no_data)
    cov = ticklake.Lake(tmp_path).coverage("trades", "AAPL", "2024-03-04", "2024-03-05")
    assert status_of(cov) == {D(2024, 3, 4): "full", D(2024, 3, 5): "full"}
    assert cov["rows"].tolist() == [5760, 5760]
    assert cov["first"].tolist() == [stamps[0], stamps[5760]]
    assert cov["last"].tolist() == [stamps[5759], stamps[-1]]
