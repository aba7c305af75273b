"""The lake on S3-compatible storage (issue 15), against a real S3 server on loopback (SeaweedFS, ``s3_endpoint``):
round trips equal the local lake byte for byte, range reads equal local reads, concurrent writers of one month lose
nothing, a store that ignores conditional writes is refused, and credentials never show."""

from __future__ import annotations

import datetime as dt
import http.server
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pyarrow as pa
import pytest
import ticklake

from tests.lake_data import daily_bars, minute_bars, ny_grid, quotes_table, trades_table
from tests.s3_server import S3Endpoint

REPO = Path(__file__).resolve().parents[1]
D = dt.date
DAYS = [D(2024, 1, 30), D(2024, 1, 31), D(2024, 2, 1)]


def options(endpoint: S3Endpoint) -> dict[str, str]:
    return {
        "endpoint": endpoint.endpoint_url,
        "region": "us-east-1",
        "access_key_id": endpoint.access_key,
        "secret_access_key": endpoint.secret_key,
        "allow_http": "true",
    }


@pytest.fixture
def s3_lake(s3_endpoint: S3Endpoint) -> ticklake.Lake:
    """An empty lake under a fresh prefix of the session's bucket."""
    return ticklake.Lake(f"s3://{s3_endpoint.bucket}/{uuid.uuid4().hex}", storage_options=options(s3_endpoint))


def _write_everything(lake: ticklake.Lake) -> None:
    for seed, symbol in enumerate(["AAPL", "BRK.B"]):
        lake.write_bars(minute_bars(symbol, DAYS, seed=seed), "1m")
        lake.write_bars(daily_bars(symbol, DAYS, seed=seed), "1d")
        stamps = ny_grid(DAYS[1], "09:30", "16:00", "1s").append(ny_grid(DAYS[2], "09:30", "16:00", "1s"))
        lake.write_quotes(quotes_table(symbol, stamps, seed=seed))
        lake.write_trades(trades_table(symbol, ny_grid(DAYS[1], "09:30", "16:00", "100ms"), seed=seed))


def test_every_kind_round_trips_and_the_objects_equal_the_local_files(s3_lake: ticklake.Lake, tmp_path: Path) -> None:
    local = ticklake.Lake(tmp_path)
    _write_everything(s3_lake)
    _write_everything(local)
    for kind in ("bars/1m", "bars/1d", "quotes", "trades"):
        remote_files = s3_lake.files(kind)
        assert [p.name for p in remote_files] == [p.name for p in local.files(kind)] != []
        for remote, here in zip(remote_files, local.files(kind), strict=True):
            with s3_lake.storage.filesystem.open_input_file(remote.as_posix()) as f:
                assert f.read() == here.read_bytes(), remote
        for symbols in ("AAPL", "BRK.B,AAPL"):
            assert s3_lake.scan(kind, symbols).to_arrow().equals(local.scan(kind, symbols).to_arrow())


@pytest.mark.parametrize(
    ("start", "end", "session", "columns"),
    [
        (None, None, "all", None),
        ("2024-01-31", "2024-01-31", "all", None),
        ("2024-01-31 10:00", "2024-02-01 10:00", "regular", ["timestamp", "close"]),
        ("2024-02-01", None, "all", ["symbol", "volume"]),
        ("2023-01-01", "2023-12-31", "all", None),
    ],
)
def test_range_reads_equal_the_local_reads(
    s3_lake: ticklake.Lake, tmp_path: Path, start: str | None, end: str | None, session: str, columns: list[str] | None
) -> None:
    local = ticklake.Lake(tmp_path)
    for lake in (s3_lake, local):
        lake.write_bars(minute_bars("AAPL", DAYS), "1m")
    args = dict(columns=columns, tz="America/New_York", session=session)
    remote = s3_lake.scan("1m", "AAPL", start, end, **args).to_arrow()  # type: ignore[arg-type]
    assert remote.equals(local.scan("1m", "AAPL", start, end, **args).to_arrow())  # type: ignore[arg-type]


def test_a_merge_replace_and_removal_behave_as_on_disk(s3_lake: ticklake.Lake, tmp_path: Path) -> None:
    local = ticklake.Lake(tmp_path)
    outcomes = []
    for lake in (s3_lake, local):
        lake.write_bars(minute_bars("AAPL", DAYS), "1m")
        lake.write_bars(minute_bars("AAPL", DAYS[1:2], seed=7), "1m")  # the 31st replaced row by row
        # UTC 2024-02-01: the evening of January 31 in New York (January's file) and February's file, emptied.
        out = lake.write_bars(
            minute_bars("AAPL", DAYS[:1]).slice(0, 0), "1m", replace=("2024-02-01", "2024-02-02"), symbol="AAPL"
        )
        outcomes.append([(w.period, w.status, w.rows) for w in out])
    assert outcomes[0] == outcomes[1] and [s for _, s, _ in outcomes[0]] == ["written", "removed"]
    assert [p.name for p in s3_lake.files("1m")] == ["AAPL.2024-01.parquet"]
    assert s3_lake.scan("1m", "AAPL").to_arrow().equals(local.scan("1m", "AAPL").to_arrow())
    again = s3_lake.write_bars(minute_bars("AAPL", DAYS[:2]), "1m")
    assert [w.status for w in again] == ["written"]


UPSERTER = """
import json, os, sys
import pandas as pd, pyarrow as pa, ticklake
from ticklake import _core
from tests.lake_data import minute_bars
url, opts, writer, rounds = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
lake = ticklake.Lake(url, storage_options=opts)
day = pd.Timestamp("2024-03-01") + pd.Timedelta(days=writer)
for r in range(rounds):
    # Each writer owns one day of March; every round rewrites that day with the round's prices.
    table = minute_bars("SPY", [day.date()], seed=1000 * writer + r)
    # The New York day exactly (a bare end date would mean "through that day" and reach the next writer's day).
    lo = day.tz_localize("America/New_York")
    lake.write_bars(table, "1m", replace=(lo, lo + pd.Timedelta(days=1)))
print(json.dumps({"conflicts": _core.object_conflicts()}))
"""


def test_eight_concurrent_writers_of_one_month_lose_nothing(s3_endpoint: S3Endpoint) -> None:
    import json

    url = f"s3://{s3_endpoint.bucket}/{uuid.uuid4().hex}"
    writers, rounds = 8, 4
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", UPSERTER, url, json.dumps(options(s3_endpoint)), str(w), str(rounds)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for w in range(writers)
    ]
    conflicts = 0
    for child in children:
        out, err = child.communicate(timeout=600)
        assert child.returncode == 0, err
        conflicts += json.loads(out.splitlines()[-1])["conflicts"]
    lake = ticklake.Lake(url, storage_options=options(s3_endpoint))
    got = lake.scan("1m", "SPY").to_arrow()
    # Every writer's last round is there, whole, and nothing else.
    expected = [
        minute_bars("SPY", [D(2024, 3, 1) + dt.timedelta(days=w)], seed=1000 * w + rounds - 1) for w in range(writers)
    ]
    want = pa.concat_tables(expected).sort_by("timestamp")
    assert got.num_rows == want.num_rows
    assert got.column("close").equals(want.column("close").cast(got.schema.field("close").type))
    print(f"{writers} writers x {rounds} rounds: {conflicts} conflicts retried, 0 rows lost")
    assert conflicts > 0, "the writers never raced: the test did not test concurrency"


class _Careless(http.server.BaseHTTPRequestHandler):
    """An S3 stand-in that stores whatever it is sent and ignores every condition (and signature)."""

    objects: ClassVar[dict[str, bytes]] = {}

    def log_message(self, *args: object) -> None:
        pass

    def do_PUT(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        self.objects[self.path] = self.rfile.read(n)
        self.send_response(200)
        self.send_header("ETag", f'"{len(self.objects[self.path])}"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_DELETE(self) -> None:
        self.objects.pop(self.path, None)
        self.send_response(204)
        self.end_headers()


@pytest.fixture
def careless_store() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Careless)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_store_that_ignores_conditional_writes_is_refused_before_any_write(careless_store: str) -> None:
    secret = "s3cr3t-" + uuid.uuid4().hex
    lake = ticklake.Lake(
        "s3://bucket/lake",
        storage_options={
            "endpoint": careless_store,
            "region": "us-east-1",
            "access_key_id": "AKIDEXAMPLE",
            "secret_access_key": secret,
            "allow_http": "true",
        },
    )
    with pytest.raises(ticklake.InvalidInputError, match="ignores conditional writes") as info:
        lake.write_bars(minute_bars("AAPL", DAYS[:1]), "1m")
    assert secret not in str(info.value)
    assert not any("bars/" in key for key in _Careless.objects), "nothing was written"


def test_credentials_never_show(s3_endpoint: S3Endpoint) -> None:
    opts = options(s3_endpoint)
    lake = ticklake.Lake(f"s3://{s3_endpoint.bucket}/x", storage_options=opts)
    assert s3_endpoint.secret_key not in repr(lake) and s3_endpoint.secret_key not in repr(lake.storage)
    wrong = {**opts, "secret_access_key": "wrong-" + uuid.uuid4().hex}
    bad = ticklake.Lake(f"s3://{s3_endpoint.bucket}/y", storage_options=wrong)
    with pytest.raises(ticklake.TicklakeError) as info:
        bad.write_bars(minute_bars("AAPL", DAYS[:1]), "1m")
    assert wrong["secret_access_key"] not in str(info.value)
    with pytest.raises(ticklake.InvalidInputError, match="unknown storage option") as info2:
        ticklake.Lake("s3://b/p", storage_options={"colour": "hunter2-secret"}).write_bars(
            minute_bars("AAPL", DAYS[:1]), "1m"
        )
    assert "hunter2" not in str(info2.value)
