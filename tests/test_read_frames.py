"""The pandas frames of every read (issue 13): one set of dtypes for every kind and every way in (``read_bars``,
``read_quotes``, ``scan(...).to_pandas()``, ``to_dask``), string columns Arrow-backed (pandas' ``str``), no Python
object per row, frames that behave as pandas frames (equality, groupby, concat, in-place assignment), and the
reader's own decoding of dictionary strings."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ticklake
from ticklake.lake.reader import _decode, _repeat
from ticklake.lake.scan import STR_DTYPE, to_frame
from ticklake.sessions import to_utc_ns

from tests.lake_data import minute_bars, write_two_symbols

D = dt.date
DAYS = [D(2024, 1, 31), D(2024, 2, 1)]  # across a month boundary: two files per symbol
STRINGS = {
    "bars/1m": ["symbol"],
    "quotes": ["symbol", "exchange", "bid_exchange", "ask_exchange"],
    "trades": ["symbol", "exchange", "tape", "update"],
}


@pytest.fixture
def lake(tmp_path: Path) -> ticklake.Lake:
    lake: ticklake.Lake = write_two_symbols(ticklake.Lake(tmp_path), DAYS, "1s")
    return lake


@pytest.mark.parametrize("kind", list(STRINGS))
def test_every_way_in_gives_the_same_dtypes(lake: ticklake.Lake, kind: str) -> None:
    scan = lake.scan(kind, "AAPL,MSFT", tz="America/New_York")
    frame = scan.to_pandas()
    expected = frame.dtypes
    if kind == "quotes":
        assert lake.read_quotes("AAPL,MSFT", tz="America/New_York").dtypes.equals(expected)
    elif kind == "bars/1m":
        assert lake.read_bars("AAPL,MSFT", "1m", tz="America/New_York").dtypes.equals(expected)
    # One file's part, an empty read and a one-column read have the same dtypes.
    assert scan.read_part_pandas(*scan.parts()[0]).dtypes.equals(expected)
    empty = lake.scan(kind, "AAPL", "2030-01-02", "2030-01-02", tz="America/New_York").to_pandas()
    assert len(empty) == 0 and empty.dtypes.equals(expected)
    assert lake.scan(kind, "AAPL", columns=["symbol"]).to_pandas().dtypes["symbol"] == STR_DTYPE
    for name in STRINGS[kind]:
        assert expected[name] == STR_DTYPE, name
        assert isinstance(frame[name].array, pd.arrays.ArrowStringArray), name
    assert expected["timestamp"] == pd.DatetimeTZDtype("ns", "America/New_York")
    # No Python object per row: strings are Arrow-backed, trades' conditions an Arrow list.
    assert all(dtype != np.dtype(object) for dtype in expected), expected
    if kind == "trades":
        assert expected["conditions"] == pd.ArrowDtype(pa.list_(pa.string()))
        assert frame["conditions"].iloc[0] in (["@"], ["@", "I"])
        assert frame["conditions"].list.len().max() == 2


def test_the_string_dtype_is_pandas_own_str(lake: ticklake.Lake) -> None:
    frame = lake.read_quotes("AAPL", DAYS[0], DAYS[0])
    # The dtype pandas 3 gives any string column by default (NaN for missing values).
    assert frame["symbol"].dtype == pd.Series(["x"]).dtype
    assert frame["exchange"].isna().any() and frame["exchange"].isna().equals(pd.isna(frame["exchange"]))
    assert frame["exchange"].dropna().isin(list("QPVZ")).all()


@pytest.mark.parametrize("kind", ["quotes", "trades"])
@pytest.mark.parametrize("session", ["all", "regular", "pre"])
def test_strings_read_as_pyarrow_reads_them(lake: ticklake.Lake, kind: str, session: str) -> None:
    scan = lake.scan(
        kind, "MSFT,AAPL", "2024-01-31 09:41:07", "2024-02-01 15:00", tz="America/New_York", session=session
    )  # type: ignore[arg-type]
    table, frame = scan.to_arrow(), scan.to_pandas()
    files = pa.concat_tables([pq.read_table(p) for s in ("MSFT", "AAPL") for p in lake.files(kind, s)])
    plain = files.to_pandas().set_index(["symbol", "timestamp"])
    assert len(frame) > 0
    for name in STRINGS[kind]:
        table.column(name).validate(full=True)
        assert [None if pd.isna(v) else v for v in frame[name]] == table.column(name).to_pylist(), name
        if name != "symbol":
            stamps = frame["timestamp"].dt.tz_convert("UTC")
            expected = plain.loc[list(zip(frame["symbol"], stamps, strict=True)), name]
            assert frame[name].isna().tolist() == expected.isna().tolist(), name
            assert frame[name].dropna().tolist() == expected.dropna().tolist(), name


def test_frames_behave_as_pandas_frames(lake: ticklake.Lake) -> None:
    both = lake.read_quotes(["AAPL", "MSFT"], tz="America/New_York")
    aapl = lake.read_quotes("AAPL", tz="America/New_York")
    msft = lake.read_quotes("MSFT", tz="America/New_York")
    # Equality and selection by symbol.
    assert (both.symbol == "AAPL").sum() == len(aapl)
    pd.testing.assert_frame_equal(both[both.symbol == "AAPL"].reset_index(drop=True), aapl)
    # groupby("symbol"): one group per symbol, the same rows.
    sizes = both.groupby("symbol").size()
    assert sizes.to_dict() == {"AAPL": len(aapl), "MSFT": len(msft)}
    assert both.groupby("symbol")["spread"].mean()["MSFT"] == pytest.approx(msft["spread"].mean())
    assert both.groupby(["symbol", "bid_exchange"]).size().sum() == len(both)
    # Concatenating two reads keeps the dtypes and equals the read of both.
    joined = pd.concat([aapl, msft], ignore_index=True)
    assert joined.dtypes.equals(both.dtypes)
    pd.testing.assert_frame_equal(joined, both)
    # .str methods, sorting, merging, timestamps in the zone asked for.
    assert both["bid_exchange"].str.lower().isin(list("qpvz")).all()
    assert both.sort_values(["symbol", "timestamp"]).index.equals(both.index)
    assert str(both["timestamp"].dt.tz) == "America/New_York"
    assert both["timestamp"].dt.tz_convert("UTC").iloc[0] == aapl["timestamp"].iloc[0]
    assert both["timestamp"].dt.hour.min() == 9
    merged = aapl.merge(msft, on="timestamp", suffixes=("", "_m"))
    assert (merged["symbol_m"] == "MSFT").all() and len(merged) == len(aapl)


def test_frames_can_be_changed_in_place_and_never_change_the_next_read(lake: ticklake.Lake) -> None:
    first = lake.read_quotes("AAPL", DAYS[0], DAYS[0])
    before = first.copy()
    first.iloc[0, first.columns.get_loc("bid_price")] = -1.0
    first.loc[1, "bid_size"] = -7
    first.loc[first["ask_size"] > 0, "ask_size"] = 0
    first.loc[2, "symbol"] = "ZZZ"
    first["spread"] *= 2
    assert first.loc[0, "bid_price"] == -1.0 and first.loc[1, "bid_size"] == -7 and first["ask_size"].max() == 0
    again = lake.read_quotes("AAPL", DAYS[0], DAYS[0])
    pd.testing.assert_frame_equal(again, before)


def test_nullable_numbers_become_floats_with_nan_as_before(tmp_path: Path) -> None:
    lake = ticklake.Lake(tmp_path)
    bars = minute_bars("AAPL", DAYS)
    vwap = bars["vwap"].to_pylist()
    vwap[3] = None
    lake.write_bars(bars.set_column(bars.schema.get_field_index("vwap"), "vwap", pa.array(vwap, pa.float64())), "1m")
    frame = lake.read_bars("AAPL", "1m")
    assert frame["vwap"].dtype == np.float64 and frame["vwap"].isna().sum() == 1
    table = lake.scan("1m", "AAPL").to_arrow()
    reference = table.to_pandas(coerce_temporal_nanoseconds=True, types_mapper={pa.string(): STR_DTYPE}.get)
    pd.testing.assert_frame_equal(frame, reference)
    pd.testing.assert_frame_equal(to_frame(table), reference)


def test_to_dask_partitions_have_the_frames_dtypes(lake: ticklake.Lake) -> None:
    pytest.importorskip("dask.dataframe")
    ddf = lake.to_dask("quotes", "AAPL,MSFT", tz="America/New_York")
    frame = lake.scan("quotes", "AAPL,MSFT", tz="America/New_York").to_pandas()
    assert ddf.dtypes.equals(frame.dtypes)
    pd.testing.assert_frame_equal(ddf.compute().reset_index(drop=True), frame)


def test_a_null_timestamp_in_a_file_of_the_stored_types_is_refused(lake: ticklake.Lake) -> None:
    path = lake.files("1m", "AAPL")[0]
    stored = pq.read_table(path)
    stamps = stored["timestamp"].to_pylist()
    stamps[5] = None
    index = stored.schema.get_field_index("timestamp")
    broken = stored.set_column(index, pa.field("timestamp", stored.schema.field(index).type), pa.array(stamps))
    pq.write_table(broken, path)
    with pytest.raises(ticklake.CorruptFileError, match=r"AAPL\.2024-01\.parquet.*'timestamp'.*null"):
        lake.read_bars("AAPL", "1m")


@pytest.mark.parametrize("strings", [pa.string(), pa.large_string()])
def test_dictionary_strings_decode_as_arrow_does(strings: pa.DataType) -> None:
    rng = np.random.default_rng(7)
    for values in (["Q", "P", "V"], ["AB", "CD"], ["A", "BC"], [""], ["", "X"], ["BRK.B"], ["é", "ü"]):
        for share_null in (0.0, 0.4, 1.0):
            rows = [None if rng.random() < share_null else values[rng.integers(len(values))] for _ in range(300)]
            encoded = pa.array(rows, pa.string()).dictionary_encode()
            for start, length in ((0, None), (1, None), (3, 17), (8, 100), (9, 0), (299, None)):
                chunk = encoded.slice(start, length)
                got = _decode(chunk, strings)
                got.validate(full=True)
                assert got.type == strings and got.equals(chunk.cast(strings)), (values, share_null, start, length)
    # A sliced dictionary, and indices of another width, are decoded too.
    dictionary = pa.array(["XX", "AB", "CD"]).slice(1)
    chunk = pa.DictionaryArray.from_arrays(pa.array([0, 1, None, 1], pa.int32()), dictionary)
    assert _decode(chunk, strings).equals(chunk.cast(strings))
    narrow = pa.DictionaryArray.from_arrays(pa.array([0, 1, 1], pa.int8()), pa.array(["Q", "P"]))
    assert _decode(narrow, strings).equals(narrow.cast(strings))


@pytest.mark.parametrize("strings", [pa.string(), pa.large_string()])
def test_the_symbol_column_is_rebuilt_as_arrow_repeats_it(strings: pa.DataType) -> None:
    for value in ("SPY", "BRK.B", "", "é"):
        for n in (0, 1, 5):
            got = _repeat(value, n, strings)
            got.validate(full=True)
            assert got.equals(pa.repeat(pa.scalar(value, strings), n)), (value, n)


def test_bounds_are_computed_once_but_now_is_always_now() -> None:
    # Values that compare equal across types stay apart: a bare date as an end means through that day.
    assert to_utc_ns(D(2024, 1, 2), "UTC", end=True) == to_utc_ns("2024-01-03", "UTC")
    assert to_utc_ns(np.datetime64("2024-01-02"), "UTC", end=True) == to_utc_ns("2024-01-02", "UTC")
    assert to_utc_ns(D(2024, 1, 2), "UTC", end=True) == to_utc_ns(D(2024, 1, 2), "UTC", end=True)
    first = to_utc_ns("now", "UTC")
    time.sleep(0.01)
    assert to_utc_ns("now", "UTC") > first
    with pytest.raises(ticklake.InvalidInputError):
        to_utc_ns("2024-03-10 02:30", "America/New_York")  # skipped by the zone: refused every time
    with pytest.raises(ticklake.InvalidInputError):
        to_utc_ns("2024-03-10 02:30", "America/New_York")
