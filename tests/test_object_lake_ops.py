"""The lake's read-side operations on an S3 lake (issue 15 item 3, issue 16): SQL, inventory, validate, coverage,
gaps, migrate, rebuild and to_dask on a real S3 server on loopback (SeaweedFS) give what they give on a local lake
with the same data. Requests are counted at the wire by a forwarding proxy in front of the server."""

from __future__ import annotations

import datetime as dt
import http.client
import http.server
import pickle
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import ticklake
from ticklake.cli import main

from tests.lake_data import daily_bars, minute_bars, ny_grid, quotes_table, trades_table
from tests.s3_server import S3Endpoint
from tests.test_lake_upgrade import version_one
from tests.test_object_store import options

D = dt.date
DAYS = [D(2024, 1, 30), D(2024, 1, 31), D(2024, 2, 1)]
SYMBOLS = ["AAPL", "BRK.B", "MSFT"]


class _Counting(http.server.BaseHTTPRequestHandler):
    """Forwards every request to ``upstream`` unchanged (the Host header too, so SigV4 signatures still match) and
    records ``(method, path, query)``."""

    protocol_version = "HTTP/1.1"
    upstream: ClassVar[tuple[str, int]] = ("127.0.0.1", 0)
    seen: ClassVar[list[tuple[str, str, str]]] = []

    def log_message(self, *args: object) -> None:
        pass

    def _forward(self) -> None:
        split = urllib.parse.urlsplit(self.path)
        self.seen.append((self.command, split.path, split.query))
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("expect", "connection")}
        upstream = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
        finally:
            upstream.close()
        self.send_response_only(answer.status, answer.reason)
        for key, value in answer.getheaders():
            # A HEAD's length is the object's; otherwise the body is re-sent whole, with its own length.
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header(
            "Content-Length", answer.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(data))
        )
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward


@pytest.fixture
def counter(s3_endpoint: S3Endpoint) -> Iterator[tuple[S3Endpoint, list[tuple[str, str, str]]]]:
    """An endpoint in front of the session's server that records every request."""
    split = urllib.parse.urlsplit(s3_endpoint.endpoint_url)
    handler = type("Counting", (_Counting,), {"upstream": (split.hostname, split.port), "seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    proxied = s3_endpoint._replace(endpoint_url=f"http://127.0.0.1:{server.server_address[1]}")
    yield proxied, handler.seen
    server.shutdown()
    server.server_close()


def _lakes(endpoint: S3Endpoint, tmp_path: Path) -> tuple[ticklake.Lake, ticklake.Lake]:
    """An empty S3 lake under a fresh prefix and an empty local lake."""
    url = f"s3://{endpoint.bucket}/{uuid.uuid4().hex}"
    return ticklake.Lake(url, storage_options=options(endpoint)), ticklake.Lake(tmp_path / "local")


def _fill(lake: ticklake.Lake) -> None:
    for seed, symbol in enumerate(SYMBOLS):
        lake.write_bars(minute_bars(symbol, DAYS, seed=seed), "1m")
        lake.write_bars(daily_bars(symbol, DAYS, seed=seed), "1d")
        stamps = ny_grid(DAYS[1], "09:30", "16:00", "1s").append(ny_grid(DAYS[2], "09:30", "12:00", "1s"))
        lake.write_quotes(quotes_table(symbol, stamps, seed=seed))


@pytest.fixture(scope="module")
def filled(s3_endpoint: S3Endpoint, tmp_path_factory: pytest.TempPathFactory) -> tuple[ticklake.Lake, ticklake.Lake]:
    """The same data in an S3 lake and in a local lake (read-only for the tests that use it)."""
    remote, local = _lakes(s3_endpoint, tmp_path_factory.mktemp("filled"))
    _fill(remote)
    _fill(local)
    return remote, local


QUERIES = [
    "SELECT symbol, count(*) AS n, sum(volume) AS volume, min(timestamp) AS first FROM bars_1m GROUP BY symbol "
    "ORDER BY symbol",
    "SELECT * FROM bars_1m WHERE symbol = 'BRK.B' AND timestamp >= TIMESTAMPTZ '2024-01-31 15:00:00+00' "
    "AND timestamp < TIMESTAMPTZ '2024-01-31 15:10:00+00' ORDER BY timestamp",
    "SELECT * FROM bars_1d ORDER BY symbol, timestamp",
    "SELECT symbol, date_trunc('hour', timestamp) AS hour, avg(ask_price - bid_price) AS spread FROM quotes "
    "WHERE timestamp >= '2024-02-01' GROUP BY ALL ORDER BY ALL",
    "SELECT count(*) AS n FROM bars_1s",
]


@pytest.mark.parametrize("query", QUERIES)
def test_sql_on_s3_equals_sql_on_the_local_lake(filled: tuple[ticklake.Lake, ticklake.Lake], query: str) -> None:
    remote, local = filled
    got, want = remote.sql(query), local.sql(query)
    pd.testing.assert_frame_equal(got, want)
    assert len(want) > 0
    for column in ("first", "timestamp", "hour"):
        if column in got:
            assert str(got[column].dtype).endswith(", UTC]"), got[column].dtype


def test_connect_pushes_filters_into_the_object_scan(filled: tuple[ticklake.Lake, ticklake.Lake]) -> None:
    remote, local = filled
    con = remote.connect()
    query = "SELECT count(*) FROM bars_1m WHERE symbol = 'AAPL' AND timestamp >= TIMESTAMPTZ '2024-02-01 00:00+00'"
    got = con.execute(query).fetchone()
    assert got == local.connect().execute(query).fetchone()
    assert got is not None and 0 < got[0] < len(local.scan("1m", "AAPL").to_arrow())
    plan = "".join(row[1] for row in con.execute("EXPLAIN " + query).fetchall())
    assert "ARROW_SCAN" in plan and "Filters:" in plan and "TIMESTAMPTZ '2024-02-01" in plan, plan


def test_a_query_fetches_only_the_row_groups_its_filter_can_match(
    counter: tuple[S3Endpoint, list[tuple[str, str, str]]], tmp_path: Path
) -> None:
    endpoint, seen = counter
    remote, _ = _lakes(endpoint, tmp_path)
    remote.write_bars(minute_bars("AAPL", DAYS), "1m")  # January: 2 row groups (New York days)
    seen.clear()
    day = "timestamp >= TIMESTAMPTZ '2024-01-31 05:00+00' AND timestamp < TIMESTAMPTZ '2024-02-01 05:00+00'"
    assert remote.sql(f"SELECT count(*) AS n FROM bars_1m WHERE {day}")["n"][0] == 960
    one_day = [s for s in seen if s[0] == "GET" and "list-type" not in s[2]]
    seen.clear()
    assert remote.sql("SELECT count(*) AS n FROM bars_1m")["n"][0] == 3 * 960
    every_day = [s for s in seen if s[0] == "GET" and "list-type" not in s[2]]
    print(f"object GETs: a one-day query {len(one_day)}, the whole month {len(every_day)}")
    # Footers of both files, then one day's row group (February's file is skipped by its statistics).
    assert len(one_day) < len(every_day), (one_day, every_day)


def test_inventory_equals_local_and_a_second_one_reads_no_footer(
    counter: tuple[S3Endpoint, list[tuple[str, str, str]]], tmp_path: Path
) -> None:
    endpoint, seen = counter
    remote, local = _lakes(endpoint, tmp_path)
    _fill(remote)
    _fill(local)
    seen.clear()
    got = remote.inventory()
    want = local.inventory()
    columns = ["kind", "symbol", "period", "rows", "first", "last", "bytes"]
    pd.testing.assert_frame_equal(got[columns], want[columns])
    assert [Path(p).name for p in got["path"]] == [Path(p).name for p in want["path"]]
    lists = [s for s in seen if s[0] == "GET" and "list-type" in s[2]]
    assert len(lists) == 6, lists  # one listing per kind folder, and one of bars/ for other intervals' folders
    assert len(seen) - len(lists) == len(got)  # one footer request per object (the listing gave the sizes)
    first = len(seen)
    seen.clear()
    assert remote.inventory().equals(got)
    print(f"inventory of {len(got)} objects: {first} requests, then {len(seen)} for the second")
    assert all("list-type" in s[2] for s in seen) and len(seen) == 6, seen  # listings only: no footer read
    remote.write_bars(minute_bars("AAPL", DAYS[:1], seed=9), "1m")  # a new version of one object
    seen.clear()
    third = remote.inventory()
    assert len([s for s in seen if "list-type" not in s[2]]) == 1  # its footer only
    assert third["bytes"].sum() != 0


def test_validate_names_a_damaged_object_and_strays_as_on_disk(s3_endpoint: S3Endpoint, tmp_path: Path) -> None:
    remote, local = _lakes(s3_endpoint, tmp_path)
    for lake in (remote, local):
        lake.write_bars(minute_bars("AAPL", DAYS), "1m")
        assert lake.validate() == []
    garbage = b"PAR1 not really a parquet file " * 10
    fs = remote.storage.filesystem
    with fs.open_output_stream(f"{remote.root.as_posix()}/bars/1m/MSFT.2024-01.parquet") as f:
        f.write(garbage)
    with fs.open_output_stream(f"{remote.root.as_posix()}/bars/1m/notes.txt") as f:
        f.write(b"hello")
    (local.root / "bars/1m/MSFT.2024-01.parquet").write_bytes(garbage)
    (local.root / "bars/1m/notes.txt").write_bytes(b"hello")

    def relative(problems: list[ticklake.lake.inventory.Problem], root: Path) -> list[tuple[str, str]]:
        return [(p.path.relative_to(root).as_posix(), p.problem.replace(str(p.path), "<path>")) for p in problems]

    got, want = relative(remote.validate(), remote.root), relative(local.validate(), local.root)
    assert got == want
    assert [path for path, _ in got] == ["bars/1m/MSFT.2024-01.parquet", "bars/1m/notes.txt"]
    assert got[0][1].startswith("unreadable:") and "stray" in got[1][1]
    with pytest.raises(ticklake.CorruptFileError, match=r"MSFT\.2024-01\.parquet"):
        remote.inventory()
    with pytest.raises(ticklake.CorruptFileError, match=r"MSFT\.2024-01\.parquet"):
        remote.sql("SELECT count(*) FROM bars_1m")


def test_validate_reports_rows_of_another_symbol_in_an_object(s3_endpoint: S3Endpoint, tmp_path: Path) -> None:
    remote, _ = _lakes(s3_endpoint, tmp_path)
    remote.write_bars(minute_bars("AAPL", DAYS[:1]), "1m")
    path = tmp_path / "x.parquet"
    pq.write_table(minute_bars("AAPL", DAYS[:1]), path)
    fs = remote.storage.filesystem
    with fs.open_output_stream(f"{remote.root.as_posix()}/bars/1m/MSFT.2024-01.parquet") as f:
        f.write(path.read_bytes())
    problems = remote.validate()
    assert [p.path.name for p in problems] != [] and {p.path.name for p in problems} == {"MSFT.2024-01.parquet"}
    assert any("symbol" in p.problem for p in problems), problems


@pytest.mark.parametrize(
    ("kind", "deep"), [("bars/1m", False), ("bars/1d", False), ("quotes", False), ("quotes", True)]
)
def test_coverage_and_gaps_on_s3_equal_local(
    filled: tuple[ticklake.Lake, ticklake.Lake], kind: str, deep: bool
) -> None:
    remote, local = filled
    args = dict(symbols=[*SYMBOLS, "TSLA"], start="2024-01-29", end="2024-02-02", deep=deep)
    got, want = remote.coverage(kind, **args), local.coverage(kind, **args)  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(got, want)
    assert set(got["status"]) >= {"missing"} and len(got) == 4 * 5
    assert remote.gaps(kind, **args) == local.gaps(kind, **args)  # type: ignore[arg-type]


def test_migrate_on_s3_rewrites_a_version_one_object_once(s3_endpoint: S3Endpoint, tmp_path: Path) -> None:
    remote, local = _lakes(s3_endpoint, tmp_path)
    bars = minute_bars("AAPL", DAYS[:1])
    old = version_one(local, "bars/1m", bars)
    remote.write_bars(minute_bars("MSFT", DAYS[:1]), "1m")
    fs = remote.storage.filesystem
    with fs.open_output_stream(f"{remote.root.as_posix()}/bars/1m/AAPL.2024-01.parquet") as f:
        f.write(old.read_bytes())
    assert [p.problem.startswith("schema version 1") for p in remote.validate()] == [True]
    assert remote.sql("SELECT count(*) AS n FROM bars_1m")["n"][0] == 2 * 960  # readable before the migration
    report = remote.migrate()
    assert report.summary() == "1 file(s) rewritten, 1 already current, 0 stray file(s) removed, 0 failed"
    assert remote.validate() == []
    meta = ticklake.lake.reader.footer(report.rewritten[0], fs).metadata
    assert meta[b"ticklake.schema_version"] == b"2" and meta[b"ticklake.source"] == b"alpaca"
    assert remote.scan("1m", "AAPL").to_arrow()["close"].equals(bars["close"])
    assert remote.migrate().summary() == "0 file(s) rewritten, 2 already current, 0 stray file(s) removed, 0 failed"


def _trades(lake: ticklake.Lake) -> None:
    for seed, symbol in enumerate(SYMBOLS[:2]):
        rng = np.random.default_rng(seed)
        for day in (D(2024, 1, 31), D(2024, 2, 1)):
            lo = pd.Timestamp(f"{day} 04:00", tz="America/New_York").value
            hi = pd.Timestamp(f"{day} 20:00", tz="America/New_York").value
            stamps = pd.DatetimeIndex(np.sort(rng.integers(lo, hi, 400)), tz="UTC")
            lake.write_trades(trades_table(symbol, stamps, seed=seed))


def _bytes(lake: ticklake.Lake, kind: str) -> dict[str, bytes]:
    fs = lake.storage.filesystem
    if fs is None:
        return {p.name: p.read_bytes() for p in lake.files(kind)}
    out = {}
    for path in lake.files(kind):
        with fs.open_input_file(path.as_posix()) as f:
            out[path.name] = f.read()
    return out


@pytest.fixture(scope="module")
def trade_lakes(s3_endpoint: S3Endpoint, tmp_path_factory: pytest.TempPathFactory) -> tuple[ticklake.Lake, Path]:
    """Trades in an S3 lake, and the local lake's bars rebuilt from the same trades (the reference)."""
    remote, local = _lakes(s3_endpoint, tmp_path_factory.mktemp("trades"))
    _trades(remote)
    _trades(local)
    local.rebuild("1m", threads=1)
    local.rebuild("1d", threads=1)
    return remote, local.root


@pytest.mark.parametrize("threads", [1, 2])
def test_rebuild_on_s3_writes_the_local_rebuilds_bytes(trade_lakes: tuple[ticklake.Lake, Path], threads: int) -> None:
    remote, local_root = trade_lakes
    local = ticklake.Lake(local_root)
    for interval in ("1m", "1d"):
        report = remote.rebuild(interval, threads=threads)
        assert len(report.units) == 4 and report.trades == 4 * 400
        assert _bytes(remote, interval) == _bytes(local, interval) != {}


def test_to_dask_on_s3_equals_scan_and_the_storage_pickles_without_its_filesystem(
    trade_lakes: tuple[ticklake.Lake, Path],
) -> None:
    pytest.importorskip("dask.dataframe")
    remote, _ = trade_lakes
    for bounds in ((None, None), ("2024-01-31", "2024-02-01")):
        ddf = remote.to_dask("trades", "AAPL,BRK.B", *bounds)
        assert ddf.npartitions == 4
        got = ddf.compute().reset_index(drop=True)
        pd.testing.assert_frame_equal(got, remote.scan("trades", "AAPL,BRK.B", *bounds).to_pandas())
    state = remote.storage.__getstate__()
    assert "filesystem" not in state and "versions" not in state
    again = pickle.loads(pickle.dumps(remote))
    assert again.scan("trades", "AAPL").to_arrow().equals(remote.scan("trades", "AAPL").to_arrow())


@pytest.mark.slow
def test_rebuild_on_s3_on_a_dask_cluster(trade_lakes: tuple[ticklake.Lake, Path], dask_client: object) -> None:
    remote, local_root = trade_lakes
    report = remote.rebuild("1m", client=dask_client, max_tasks=4)
    assert report.tasks == 4 and len(report.units) == 4
    assert _bytes(remote, "1m") == _bytes(ticklake.Lake(local_root), "1m")


def test_a_scan_over_many_symbols_lists_the_folder_once(
    counter: tuple[S3Endpoint, list[tuple[str, str, str]]], tmp_path: Path
) -> None:
    endpoint, seen = counter
    remote, _ = _lakes(endpoint, tmp_path)
    for symbol in SYMBOLS:
        remote.write_bars(daily_bars(symbol, DAYS), "1d")
    seen.clear()
    assert remote.scan("1d", SYMBOLS).to_arrow().num_rows == 3 * 3
    assert len([s for s in seen if "list-type" in s[2]]) == 1, seen


def test_the_cli_works_on_an_s3_root(
    filled: tuple[ticklake.Lake, ticklake.Lake], s3_endpoint: S3Endpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    remote, _ = filled
    root = ["--root", remote.url, *[f"--storage-option={k}={v}" for k, v in options(s3_endpoint).items()]]
    assert main(["ls", *root, "--kind", "bars/1d"]) == 0
    out = capsys.readouterr().out
    assert "3 files, 9 rows" in out and s3_endpoint.secret_key not in out
    assert main(["validate", *root]) == 0
    files = sum(len(remote.files(kind)) for kind in ("bars/1m", "bars/1d", "quotes"))
    assert f"0 problem(s) in {files} lake file(s) under {remote.url}" in capsys.readouterr().out
    assert main(["sql", *root, "SELECT symbol, count(*) AS n FROM bars_1d GROUP BY symbol ORDER BY symbol"]) == 0
    assert "BRK.B" in capsys.readouterr().out
    assert main(["coverage", *root, "bars/1d", "--start", "2024-01-30", "--end", "2024-02-01"]) == 0
    assert "3 symbols x 3 NYSE trading days" in capsys.readouterr().out


def test_the_cli_rebuilds_an_s3_lake(
    trade_lakes: tuple[ticklake.Lake, Path], s3_endpoint: S3Endpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    remote, local_root = trade_lakes
    root = ["--root", remote.url, *[f"--storage-option={k}={v}" for k, v in options(s3_endpoint).items()]]
    assert main(["rebuild", "1d", *root, "--symbols", "AAPL", "--quiet"]) == 0
    assert "bars/1d: 2 unit(s) in 2 task(s), 800 trades ->" in capsys.readouterr().out
    assert _bytes(remote, "1d")["AAPL.2024.parquet"] == _bytes(ticklake.Lake(local_root), "1d")["AAPL.2024.parquet"]
