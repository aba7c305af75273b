"""One rule for files ticklake did not write (issue 12): the reader and the writer take the same files, conform
them the same way, or refuse them with the same error naming the file and the column; ``validate`` says which.
And what the reader relies on (the file's own symbol, time order) is checked, never assumed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ticklake

from tests.lake_data import minute_bars

D = dt.date
DAYS = [D(2024, 1, 2), D(2024, 1, 3)]


@pytest.fixture
def lake(tmp_path: Path) -> ticklake.Lake:
    lake = ticklake.Lake(tmp_path)
    lake.write_bars(minute_bars("AAPL", DAYS), "1m")
    return lake


def path_of(lake: ticklake.Lake) -> Path:
    return lake.root / "bars/1m/AAPL.2024-01.parquet"


def test_a_pandas_written_month_is_read_and_written_consistently(lake: ticklake.Lake) -> None:
    before = lake.scan("1m", "AAPL").to_arrow()
    frame = lake.read_bars("AAPL", "1m")
    frame.to_parquet(path_of(lake))  # pandas' own choice of types (pandas 3: symbol as large_string)
    written = pq.read_schema(path_of(lake))
    assert written.field("symbol").type != pa.string() or written.field("timestamp").type.unit == "ns"
    # The reader conforms it: same rows, the stored schema.
    assert lake.scan("1m", "AAPL").to_arrow().equals(before)
    problems = [p.problem for p in lake.validate()]
    assert any("conformable" in p for p in problems), problems
    assert not any("cannot be read" in p or "unreadable" in p for p in problems), problems
    # The writer merges into it by the same rule, and the file comes back in the stored form.
    extra = minute_bars("AAPL", [D(2024, 1, 4)])
    (w,) = lake.write_bars(extra, "1m")
    assert w.status == "written" and w.rows == before.num_rows + extra.num_rows
    assert pq.read_schema(path_of(lake)).field("symbol").type == pa.string()
    assert lake.validate() == []


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t.set_column(0, "symbol", t["symbol"].cast(pa.string_view())),
        lambda t: t.set_column(0, "symbol", t["symbol"].dictionary_encode()),
        lambda t: t.set_column(t.schema.get_field_index("volume"), "volume", t["volume"].cast(pa.int32())),
        lambda t: t.set_column(t.schema.get_field_index("open"), "open", t["open"].cast(pa.float32())),
        lambda t: t.drop_columns(["vwap"]),
    ],
    ids=["string_view", "dictionary", "int32", "float32", "missing nullable"],
)
def test_conformable_foreign_types_are_taken_by_both(lake: ticklake.Lake, change: object) -> None:
    stored = pq.read_table(path_of(lake))
    foreign = change(stored)  # type: ignore[operator]
    pq.write_table(foreign, path_of(lake))
    expected = ticklake._core.lake_conform("x", foreign, "bars/1m")
    assert lake.scan("1m", "AAPL").to_arrow().equals(expected)
    (w,) = lake.write_bars(minute_bars("AAPL", [D(2024, 1, 4)]), "1m")
    assert w.status == "written"
    assert lake.validate() == []


def test_a_file_both_refuse_names_the_file_and_the_column(lake: ticklake.Lake) -> None:
    stored = pq.read_table(path_of(lake))
    bad = stored.set_column(stored.schema.get_field_index("volume"), "volume", stored["volume"].cast(pa.string()))
    pq.write_table(bad, path_of(lake))
    before = path_of(lake).read_bytes()
    with pytest.raises(ticklake.CorruptFileError, match=r"AAPL\.2024-01\.parquet.*'volume'") as read_err:
        lake.read_bars("AAPL", "1m")
    with pytest.raises(ticklake.CorruptFileError, match=r"AAPL\.2024-01\.parquet.*'volume'") as write_err:
        lake.write_bars(minute_bars("AAPL", [D(2024, 1, 4)]), "1m")
    assert str(read_err.value) == str(write_err.value)
    assert path_of(lake).read_bytes() == before
    (problem,) = lake.validate()
    assert "neither the reader nor the writer" in problem.problem and "'volume'" in problem.problem


def test_rows_of_another_symbol_never_come_back_under_the_files_name(lake: ticklake.Lake) -> None:
    stored = pq.read_table(path_of(lake))
    msft = stored.set_column(0, "symbol", pa.array(["MSFT"] * stored.num_rows, pa.string()))
    pq.write_table(msft, path_of(lake))
    with pytest.raises(ticklake.CorruptFileError, match=r"AAPL\.2024-01\.parquet.*symbol.*MSFT"):
        lake.read_bars("AAPL", "1m", columns=["timestamp", "close"])  # even without the symbol column asked for
    with pytest.raises(ticklake.CorruptFileError, match=r"AAPL\.2024-01\.parquet"):
        lake.write_bars(minute_bars("AAPL", [D(2024, 1, 4)]), "1m")
    with pytest.raises(ticklake.CorruptFileError, match="symbol"):
        list(lake.replay(["AAPL"], "1m"))
    # One wrong row in a file without usable statistics is found too.
    mixed = stored.set_column(0, "symbol", pa.array(["AAPL"] * (stored.num_rows - 1) + ["MSFT"], pa.string()))
    pq.write_table(mixed, path_of(lake), write_statistics=False)
    with pytest.raises(ticklake.CorruptFileError, match=rf"row {stored.num_rows - 1}.*MSFT"):
        lake.read_bars("AAPL", "1m")


@pytest.mark.parametrize("row_group_size", [None, 500])
def test_an_unsorted_file_is_never_a_silent_partial_read(lake: ticklake.Lake, row_group_size: int | None) -> None:
    stored = pq.read_table(path_of(lake))
    half = stored.num_rows // 2
    unsorted = pa.concat_tables([stored.slice(half), stored.slice(0, half)])
    pq.write_table(unsorted, path_of(lake), row_group_size=row_group_size)
    with pytest.raises(ticklake.CorruptFileError, match=r"AAPL\.2024-01\.parquet.*(sorted|unsorted)"):
        lake.read_bars("AAPL", "1m", "2024-01-02", "2024-01-02")
    with pytest.raises(ticklake.CorruptFileError, match=r"AAPL\.2024-01\.parquet"):
        lake.write_bars(minute_bars("AAPL", [D(2024, 1, 4)]), "1m")


def test_sql_results_are_utc_and_string_bounds_are_unambiguous(lake: ticklake.Lake) -> None:
    import duckdb

    frame = lake.sql("SELECT timestamp, close FROM bars_1m ORDER BY timestamp")
    assert isinstance(frame["timestamp"].dtype, pd.DatetimeTZDtype) and str(frame["timestamp"].dt.tz) == "UTC"
    explicit = "SELECT count(*) FROM bars_1m WHERE timestamp >= TIMESTAMPTZ '2024-01-02 14:30:00+00'"
    plain = "SELECT count(*) FROM bars_1m WHERE timestamp >= '2024-01-02 14:30:00'"
    con = lake.connect()
    utc = con.sql(explicit).fetchall()[0]
    assert con.sql(plain).fetchall()[0] == utc, "connect() sets the session's TimeZone to UTC"
    assert con.sql("SELECT timestamp FROM bars_1m LIMIT 1").arrow().read_all().schema.field(0).type.tz == "UTC"
    # The pitfall, in a session whose zone is New York: a plain string is read in that zone, TIMESTAMPTZ is not.
    pattern = str(lake.root / "bars/1m/*.parquet")
    other = duckdb.connect()
    other.execute("SET TimeZone = 'America/New_York'")
    other.execute(f"CREATE VIEW bars_1m AS SELECT * FROM read_parquet('{pattern}')")
    assert other.sql(explicit).fetchall()[0] == utc
    new_york = other.sql(plain).fetchall()[0]
    assert new_york is not None and utc is not None and new_york[0] < utc[0]  # 14:30 New York is 19:30 UTC
