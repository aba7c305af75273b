"""``Lake.scan``: one read shape for every kind (issue 14), checked against a plain pandas filter of what was
written, and against the pandas shortcuts it stands behind."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
import ticklake

from tests.lake_data import minute_bars, write_two_symbols

D = dt.date
DAYS = [D(2024, 1, 31), D(2024, 2, 1), D(2024, 2, 2)]  # across a month boundary: two files per symbol


@pytest.fixture
def lake(tmp_path: Path) -> ticklake.Lake:
    lake: ticklake.Lake = write_two_symbols(ticklake.Lake(tmp_path), DAYS, "250ms")
    return lake


def _expected(lake: ticklake.Lake, kind: str, symbols: list[str], lo: str, hi: str, session: str) -> pd.DataFrame:
    """The plain reference: every file read whole with pyarrow, filtered with pandas."""
    import pyarrow.parquet as pq

    frames = [pq.read_table(p).to_pandas() for s in symbols for p in lake.files(kind, s)]
    frame = pd.concat(frames, ignore_index=True)
    ts = frame["timestamp"].dt.tz_convert("America/New_York")
    keep = (ts >= pd.Timestamp(lo, tz="America/New_York")) & (ts < pd.Timestamp(hi, tz="America/New_York"))
    if session == "regular":
        minutes = ts.dt.hour * 60 + ts.dt.minute
        keep &= (minutes >= 9 * 60 + 30) & (minutes < 16 * 60)
    order = {s: i for i, s in enumerate(symbols)}
    out = frame[keep].copy()
    out["_o"] = out["symbol"].map(order)
    return out.sort_values(["_o", "timestamp"], kind="stable").drop(columns="_o").reset_index(drop=True)


@pytest.mark.parametrize("kind", ["bars/1m", "quotes", "trades"])
@pytest.mark.parametrize("session", ["all", "regular"])
def test_every_kind_reads_the_same_rows_as_a_pandas_filter(lake: ticklake.Lake, kind: str, session: str) -> None:
    lo, hi = "2024-01-31 15:00", "2024-02-01 10:00"
    scan = lake.scan(kind, "MSFT,AAPL", lo, hi, tz="America/New_York", session=session)  # type: ignore[arg-type]
    got = scan.to_pandas()
    want = _expected(lake, kind, ["MSFT", "AAPL"], lo, hi, session)
    assert len(got) > 0
    assert got["symbol"].tolist() == want["symbol"].tolist()
    assert (got["timestamp"].dt.tz_convert("UTC") == want["timestamp"].dt.tz_convert("UTC")).all()
    assert str(got["timestamp"].dt.tz) == "America/New_York"
    numeric = [c for c in got.columns if c not in ("symbol", "timestamp") and pd.api.types.is_numeric_dtype(got[c])]
    pd.testing.assert_frame_equal(got[numeric], want[numeric], check_dtype=False)


def test_every_result_shape_holds_the_same_rows(lake: ticklake.Lake) -> None:
    scan = lake.scan("1m", ["AAPL", "MSFT"], "2024-01-31", "2024-02-01", columns=["timestamp", "close", "symbol"])
    table = scan.to_arrow()
    assert table.column_names == ["timestamp", "close", "symbol"]
    assert table.schema == scan.schema
    assert pa.Table.from_batches(list(scan.batches()), scan.schema).equals(table)
    assert pl.from_arrow(table).equals(scan.to_polars())
    assert pa.table(scan).equals(table)  # the PyCapsule stream, as any Arrow consumer takes it
    assert pl.DataFrame(scan).equals(scan.to_polars())
    n = duckdb.sql("SELECT count(*) FROM scan WHERE symbol = 'MSFT'").fetchall()[0]
    assert n == (table.filter(pa.compute.equal(table["symbol"], "MSFT")).num_rows,)
    frame = lake.read_bars(["AAPL", "MSFT"], "1m", "2024-01-31", "2024-02-01", columns=["timestamp", "close", "symbol"])
    pd.testing.assert_frame_equal(frame, scan.to_pandas())


def test_a_scan_reads_when_asked_and_sees_later_writes(lake: ticklake.Lake, tmp_path: Path) -> None:
    scan = lake.scan("1m", "IBM")
    assert scan.to_arrow().num_rows == 0
    lake.write_bars(minute_bars("IBM", DAYS[:1]), "1m")
    assert scan.to_arrow().num_rows == minute_bars("IBM", DAYS[:1]).num_rows


def test_bad_arguments_are_refused_before_any_read(lake: ticklake.Lake) -> None:
    with pytest.raises(ticklake.InvalidInputError, match="unknown lake kind 'bars/2d'"):
        lake.scan("bars/2d", "AAPL")
    with pytest.raises(ticklake.InvalidInputError, match="unknown column"):
        lake.scan("trades", "AAPL", columns=["timestamp", "spread"])
    with pytest.raises(ticklake.InvalidInputError, match="session"):
        lake.scan("trades", "AAPL", session="lunch")  # type: ignore[arg-type]
    with pytest.raises(ticklake.InvalidInputError, match="empty symbol"):
        lake.scan("quotes", "AAPL,,MSFT")
    with pytest.raises(ticklake.InvalidInputError, match="no symbols"):
        lake.scan("quotes", [])
    with pytest.raises(ticklake.InvalidInputError):
        lake.scan("quotes", "Mars/Olympus")


def test_symbols_are_parsed_by_one_rule_everywhere(lake: ticklake.Lake) -> None:
    by_list = lake.scan("1m", ["MSFT", "AAPL"]).to_arrow()
    assert lake.scan("1m", " MSFT , AAPL,MSFT").to_arrow().equals(by_list)
    assert lake.read_bars("MSFT,AAPL", "1m")["symbol"].unique().tolist() == ["MSFT", "AAPL"]


def test_data_comes_first_in_every_write(lake: ticklake.Lake) -> None:
    table = minute_bars("IBM", DAYS[:1])
    with pytest.raises(ticklake.InvalidInputError, match="data comes first"):
        lake.write("bars/1m", table)  # type: ignore[arg-type]
    (written,) = lake.write(table, "1m")
    assert written.path.name == "IBM.2024-01.parquet" and written.rows == table.num_rows


def test_the_exception_family_and_the_export_are_exported() -> None:
    for name in ("ExportError", "LakeLockedError", "CorruptFileError", "MissingExtraError", "RateLimitError"):
        assert issubclass(getattr(ticklake, name), ticklake.TicklakeError)
    assert callable(ticklake.export_to_parquet) and callable(ticklake.plan_import)
