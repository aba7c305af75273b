"""Alpaca JSON pages -> Arrow in Rust, against the literal examples of ALPACA.md §5.4 and a json.loads reference."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pytest
import ticklake
from hypothesis import given, settings
from hypothesis import strategies as st
from ticklake import _core


def ns(text: str) -> int:
    return int(pd.Timestamp(text).value)


def parse(body: str | bytes, kind: str, lots: bool = False, daily: bool = False) -> tuple[pa.Table, str | None]:
    raw = body.encode() if isinstance(body, str) else body
    return _core.parse_page(raw, kind, lots, daily)


def test_literal_single_symbol_trades() -> None:
    body = """{
      "trades": [
        {"t": "2022-01-03T17:00:00.029591476Z", "x": "Q", "p": 181.47, "s": 1, "c": ["@", "I"], "i": 73833, "z": "C"},
        {"t": "2022-01-03T17:00:00.029591476Z", "x": "Q", "p": 181.47, "s": 1, "c": ["@", "I"], "i": 73834, "z": "C"}
      ],
      "symbol": "AAPL",
      "next_page_token": "QUFQTHwyMDIyLTAxLTAzVDE3OjAwOjAwLjAyOTU5MTQ3Nlp8UXwwOTIyMzM3MjAzNjg1NDg0OTY0Mg=="
    }"""
    table, token = parse(body, "trades")
    assert token == "QUFQTHwyMDIyLTAxLTAzVDE3OjAwOjAwLjAyOTU5MTQ3Nlp8UXwwOTIyMzM3MjAzNjg1NDg0OTY0Mg=="
    assert table["symbol"].to_pylist() == ["AAPL", "AAPL"]
    assert table["timestamp"].cast(pa.int64()).to_pylist() == [ns("2022-01-03T17:00:00.029591476Z")] * 2
    assert table["id"].to_pylist() == [73833, 73834]
    assert table["conditions"].to_pylist() == [["@", "I"], ["@", "I"]]
    assert table["update"].null_count == 2
    # Straight into the kernels and the lake's trades schema.
    assert ticklake.bars(table, interval="1m").num_rows == 0  # odd lots only: no bar (ALPACA.md §7.1)
    assert table.column_names == _core.lake_schema("trades").names


def test_literal_multi_symbol_trades_tape_a_and_integral_prices() -> None:
    multi = """{"trades": {"AAPL": [{"t": "2022-03-09T05:00:02.183Z", "x": "D", "p": 159.07, "s": 1,
      "c": ["@", "T", "I"], "i": 151, "z": "C"}], "TSLA": [{"t": "2022-03-09T05:08:03.035Z", "x": "D", "p": 833,
      "s": 1, "c": ["@", "T", "I"], "i": 145, "z": "C"}]}, "next_page_token": null}"""
    table, token = parse(multi, "trades")
    assert token is None
    assert table["symbol"].to_pylist() == ["AAPL", "TSLA"]
    assert table["price"].to_pylist() == [159.07, 833.0]
    assert table["timestamp"].cast(pa.int64()).to_pylist() == [
        ns("2022-03-09T05:00:02.183Z"),
        ns("2022-03-09T05:08:03.035Z"),
    ]
    tape_a = (
        '{"trades":{"F":[{"t":"2018-06-04T19:18:17.4392Z","x":"D","p":11.715,"s":5,"c":[" ","I"],"i":442254,"z":"A"},'
        '{"t":"2018-06-04T19:18:18.7453Z","x":"D","p":11.71,"s":200,"c":[" "],"i":442258,"z":"A"}],'
        '"GE":[{"t":"2018-06-04T19:18:18.2305Z","x":"D","p":13.74,"s":100,"c":[" "],"i":933063,"z":"A"},'
        '{"t":"2018-06-04T19:18:18.6206Z","x":"D","p":13.7317,"s":100,"c":[" ","4","B"],"i":933066,"z":"A"}]},'
        '"next_page_token":null}'
    )
    table, _ = parse(tape_a, "trades")
    assert table["symbol"].to_pylist() == ["F", "F", "GE", "GE"]
    assert table["conditions"].to_pylist()[3] == [" ", "4", "B"]
    assert table["tape"].to_pylist() == ["A"] * 4


def test_literal_quotes_in_round_lots() -> None:
    body = """{"quotes": [
        {"t": "2022-01-03T09:00:00.028160898Z", "ax": " ", "ap": 0, "as": 0, "bx": "Q", "bp": 177.92, "bs": 4,
         "c": ["Y"], "z": "C"},
        {"t": "2022-01-03T09:00:00.028294451Z", "ax": "Q", "ap": 178.8, "as": 4, "bx": "Q", "bp": 177.92, "bs": 4,
         "c": ["R"], "z": "C"}
      ], "symbol": "AAPL", "next_page_token": "QUFQTHwyMDIyLTAxLTAzVDA5OjAwOjAwLjAyODI5NDQ1MVp8MjM3NjQ0Qzg="}"""
    table, _ = parse(body, "quotes", lots=True)
    assert table["bid_size"].to_pylist() == [400, 400]
    assert table["ask_size"].to_pylist() == [0, 400]
    assert table["ask_price"].to_pylist() == [0.0, 178.8]
    assert table["ask_exchange"].to_pylist() == [" ", "Q"]
    best = ticklake.best_quotes(table)
    assert best.num_rows == 1 and best["ask_size"].to_pylist() == [400]
    unconverted, _ = parse(body, "quotes", lots=False)
    assert unconverted["bid_size"].to_pylist() == [4, 4]


def test_literal_bars_single_multi_and_daily_labels() -> None:
    single = """{"bars": [{"t": "2023-09-29T04:00:00Z", "o": 172.02, "h": 173.07, "l": 170.341, "c": 171.21,
      "v": 51861083, "n": 535134, "vw": 171.599691}], "symbol": "AAPL",
      "next_page_token": "QUFQTHxEfDIwMjMtMDktMjlUMDQ6MDA6MDAuMDAwMDAwMDAwWg=="}"""
    table, token = parse(single, "bars", daily=True)
    assert token is not None
    assert table["timestamp"].cast(pa.int64()).to_pylist() == [ns("2023-09-29T00:00:00Z")]
    assert table.column_names == [
        "symbol",
        "timestamp",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "vwap",
        "trade_count",
    ]
    assert table.slice(0, 1).to_pylist()[0]["vwap"] == 171.599691
    multi = """{"bars": {"AAPL": [{"t": "2022-03-09T05:00:00Z", "o": 161.51, "h": 163.41, "l": 159.41, "c": 162.95,
      "v": 88496480, "n": 700291, "vw": 161.942117}], "TSLA": [{"t": "2022-03-09T05:00:00Z", "o": 839, "h": 860.56,
      "l": 832.01, "c": 858.97, "v": 19227323, "n": 528531, "vw": 850.616587}]}, "next_page_token": null}"""
    table, _ = parse(multi, "bars", daily=True)
    assert table["open"].to_pylist() == [161.51, 839.0]
    assert table["timestamp"].cast(pa.int64()).to_pylist() == [ns("2022-03-09T00:00:00Z")] * 2
    minute, _ = parse(multi, "bars")
    assert minute["timestamp"].cast(pa.int64()).to_pylist() == [ns("2022-03-09T05:00:00Z")] * 2


@pytest.mark.parametrize(
    "body",
    [
        '{"trades": {}, "next_page_token": null}',
        '{"trades": null, "symbol": "AAPL", "next_page_token": null}',
        '{"trades": [], "symbol": "AAPL", "next_page_token": null}',
        '{"next_page_token": null}',
        '{"trades": {"AAPL": null}, "next_page_token": null, "currency": "USD"}',
    ],
)
def test_empty_pages(body: str) -> None:
    table, token = parse(body, "trades")
    assert table.num_rows == 0 and token is None
    assert table.column_names == _core.lake_schema("trades").names


@pytest.mark.parametrize(
    "body",
    [
        "",
        "{",
        "[]",
        '{"trades": 5}',
        '{"trades": {"A": [{"t": "yesterday", "p": 1, "s": 1}]}}',
        '{"trades": {"A": [{"t": "2022-01-03T09:00:00Z", "p": "1", "s": 1}]}}',
        '{"trades": {"A": [{"t": "2022-01-03T09:00:00Z", "p": 1, "s": 1.5}]}}',
        '{"trades": {"A": [{"t": "2022-01-03T09:00:00.1234567891Z", "p": 1, "s": 1}]}}',
        '{"trades": [{"t": "2022-01-03T09:00:00Z", "p": 1, "s": 1}]}',
        '{"trades": {}} trailing',
        "\xff\xfe",
    ],
)
def test_malformed_pages_raise_a_typed_error(body: str) -> None:
    with pytest.raises(ticklake.InvalidInputError):
        parse(body.encode("latin-1"), "trades")


def rfc3339(ns_value: int, digits: int) -> str:
    seconds, nanos = divmod(ns_value, 10**9)
    head = pd.Timestamp(seconds, unit="s").strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{nanos:09d}"[:digits]
    return f"{head}.{frac}Z" if digits else f"{head}Z"


trade_items = st.lists(
    st.tuples(
        st.integers(1_500_000_000 * 10**9, 1_900_000_000 * 10**9),
        st.integers(0, 9),
        st.one_of(st.integers(1, 5000), st.floats(0.0001, 5000, allow_nan=False).map(lambda x: round(x, 4))),
        st.integers(1, 2**31),
        st.lists(st.sampled_from(["@", " ", "I", "T", "F", "4", 'q"\\']), max_size=4),
        st.one_of(st.none(), st.sampled_from(["canceled", "incorrect", "corrected"])),
    ),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(trade_items, st.booleans())
def test_random_trade_pages_match_json_loads(
    items: list[tuple[int, int, float, int, list[str], str | None]], multi: bool
) -> None:
    records = []
    for i, (t, digits, price, size, conditions, update) in enumerate(items):
        record = {"t": rfc3339(t, digits), "x": "Q", "p": price, "s": size, "c": conditions, "i": i, "z": "C"}
        if update is not None:
            record["u"] = update
        records.append(record)
    page = {"trades": {"BRK.B": records} if multi else records, "next_page_token": None}
    if not multi:
        page["symbol"] = "BRK.B"
    table, _ = parse(json.dumps(page), "trades")
    # Reference: json.loads and plain Python.
    expected_ts = []
    for t, digits, *_ in items:
        seconds, nanos = divmod(t, 10**9)
        expected_ts.append(seconds * 10**9 + int(f"{nanos:09d}"[:digits].ljust(9, "0")))
    assert table["timestamp"].cast(pa.int64()).to_pylist() == expected_ts
    back = json.loads(json.dumps(page))
    source = back["trades"]["BRK.B"] if multi else back["trades"]
    assert table["price"].to_pylist() == [float(r["p"]) for r in source]
    assert table["size"].to_pylist() == [r["s"] for r in source]
    assert table["conditions"].to_pylist() == [r["c"] for r in source]
    assert table["update"].to_pylist() == [r.get("u") for r in source]
    assert set(table["symbol"].to_pylist()) <= {"BRK.B"}
