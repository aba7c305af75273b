"""Imports and exports into a lake on S3-compatible storage (issue 15), against SeaweedFS on loopback and the
loopback Alpaca server: an import stages on local disk (``staging``, by default one folder per lake under the user's
cache folder) and publishes each finished file by conditional PUT; the lake it gives equals the same import into a
local lake byte for byte; a killed import resumes from its staging without downloading what is staged; an export
from SQLite gives the same objects as the export into a local lake; the command line takes ``--storage-option``
and ``--staging`` and never prints a credential."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
import ticklake
from ticklake.importer import import_api, plan_import
from ticklake.lake import kinds
from ticklake.sample import sample_quotes, sample_trades
from ticklake.staging import default_staging

from tests.alpaca_server import KEY_ID, SECRET, AlpacaServer
from tests.s3_server import S3Endpoint
from tests.test_export import make_sqlite, source_frames
from tests.test_import import file_bytes, staged_spans
from tests.test_import_faults import CHILD_PATH, POINTS, client_for
from tests.test_object_store import options

REPO = Path(__file__).resolve().parents[1]
START, END = dt.date(2024, 1, 29), dt.date(2024, 2, 1)  # across a month boundary
SYMBOLS = "AAPL,MSFT"


@pytest.fixture(scope="module")
def market() -> dict[str, dict[str, pa.Table]]:
    trades, quotes = {}, {}
    for seed, symbol in enumerate(SYMBOLS.split(",")):
        trades[symbol] = sample_trades(symbol, START, END, n=12_000, seed=seed)
        q = sample_quotes(symbol, START, END, n=9_000, seed=20 + seed)
        quotes[symbol] = q.set_column(0, "symbol", pa.array([symbol] * q.num_rows, pa.string()))
    return {"trades": trades, "quotes": quotes}


@pytest.fixture(scope="module")
def server(market: dict[str, dict[str, pa.Table]]) -> Iterator[AlpacaServer]:
    """One server for the module: it builds its bars (for 1m and for trade counts) once."""
    with AlpacaServer(market["trades"], market["quotes"], max_page=900) as running:
        yield running


def s3_url(endpoint: S3Endpoint) -> str:
    return f"s3://{endpoint.bucket}/{uuid.uuid4().hex}"


def object_bytes(lake: ticklake.Lake) -> dict[str, bytes]:
    """The lake files of an object-store lake, by key relative to its root (as :func:`file_bytes` gives them)."""
    out = {}
    for kind in kinds.ALL:
        for path in lake.files(kind.folder):
            with lake.storage.filesystem.open_input_file(path.as_posix()) as f:
                out[str(path.relative_to(lake.root))] = bytes(f.read())
    return out


@pytest.mark.parametrize("kind", ["1s", "1m", "quotes", "trades"])
def test_an_import_into_s3_equals_the_same_import_into_a_local_lake(
    s3_endpoint: S3Endpoint, tmp_path: Path, server: AlpacaServer, kind: str
) -> None:
    url = s3_url(s3_endpoint)
    with client_for(server) as client:
        local = import_api(kind, SYMBOLS, START, END, root=tmp_path / "local", client=client, quiet=True)  # type: ignore[arg-type]
    requests = len(server.requests)
    with client_for(server) as client:
        remote = import_api(
            kind, SYMBOLS, START, END, root=url, storage_options=options(s3_endpoint),  # type: ignore[arg-type]
            staging=tmp_path / "staging", client=client, quiet=True,
        )  # fmt: skip
    # (The packed plan of trades depends on which counts arrive first: the request counts may differ.)
    assert len(server.requests) - requests == remote.requests > 0
    lake = ticklake.Lake(url, storage_options=options(s3_endpoint))
    expected = file_bytes(tmp_path / "local")
    assert object_bytes(lake) == expected != {}
    assert sorted((w.path.name, w.status, w.rows) for w in remote.files) == sorted(
        (w.path.name, w.status, w.rows) for w in local.files
    )
    folder = kinds.of(kind).folder
    here = ticklake.Lake(tmp_path / "local").scan(folder, SYMBOLS).to_arrow()
    assert lake.scan(folder, SYMBOLS).to_arrow().equals(here)
    # Staged on local disk, nothing of the staging in the bucket; the finished import leaves no piece behind.
    assert list((tmp_path / "staging").glob("*/journal.jsonl")) and not list((tmp_path / "staging").glob("*/pieces/*"))
    assert all(not key.startswith(".ticklake/staging") for key in object_bytes(lake))
    before = server.count()
    with client_for(server) as client:
        again = import_api(
            kind, SYMBOLS, START, END, root=url, storage_options=options(s3_endpoint), staging=tmp_path / "staging",  # type: ignore[arg-type]
            client=client, quiet=True,
        )  # fmt: skip
    assert again.requests == 0 and again.skipped_days == again.days == 8 and server.count() == before


KILLED = """
import json, sys
from ticklake.client import AlpacaClient
from ticklake.importer import import_api, plan_import
from tests.alpaca_server import KEY_ID, SECRET
url, root, opts, staging, strategy = sys.argv[1:6]
client = AlpacaClient(KEY_ID, SECRET, base_url=url, rate=100000, backoff=0.001)
import_api("1s", "AAPL,MSFT", "2024-01-29", "2024-02-01", root=root, storage_options=json.loads(opts), staging=staging,
           client=client, quiet=True, strategy=strategy)
"""


@pytest.mark.slow
def test_an_import_into_s3_killed_at_every_step_resumes_from_its_staging(
    s3_endpoint: S3Endpoint, tmp_path: Path, server: AlpacaServer
) -> None:
    opts = options(s3_endpoint)
    with client_for(server) as client:
        full = import_api("1s", SYMBOLS, START, END, root=tmp_path / "reference", client=client, quiet=True).requests
    expected = file_bytes(tmp_path / "reference")
    trials, resumed = 0, 0
    for point in POINTS:
        for nth in (1, 2):
            url, staging = s3_url(s3_endpoint), tmp_path / f"{point}-{nth}"
            strategy = "per-day" if nth % 2 == 0 else "packed"
            killed = subprocess.run(
                [sys.executable, "-c", KILLED, server.url, url, json.dumps(opts), str(staging), strategy],
                cwd=REPO, capture_output=True, text=True, timeout=180,
                env={**os.environ, "PYTHONPATH": CHILD_PATH, "TICKLAKE_FAULT": f"{point}:{nth}"},
            )  # fmt: skip
            if killed.returncode == 0:
                continue  # the import passed that point fewer than nth times
            assert killed.returncode == 137, killed.stderr
            trials += 1
            # The staging survived the kill; the resume downloads nothing a staged piece holds.
            staged, before = staged_spans(staging.parent, staging.name), len(server.requests)
            with client_for(server) as client:
                import_api(
                    "1s", SYMBOLS, START, END, root=url, storage_options=opts, staging=staging, client=client,
                    quiet=True,
                )  # fmt: skip
                resumed += len(server.requests) - before
                lake = ticklake.Lake(url, storage_options=opts)
                assert object_bytes(lake) == expected, (point, nth)
                for _, params in server.requests[before:]:
                    lo, hi = pd.Timestamp(params["start"]).value, pd.Timestamp(params["end"]).value + 1
                    for symbol in params["symbols"].split(","):
                        overlap = [s for s in staged if s[0] == symbol and s[1] < hi and lo < s[2]]
                        assert not overlap, (point, nth, symbol, overlap)
                again = import_api(
                    "1s", SYMBOLS, START, END, root=url, storage_options=opts, staging=staging, client=client,
                    quiet=True,
                )  # fmt: skip
            assert again.requests == 0 and again.skipped_days == 8, (point, nth)
            assert not list(staging.glob("*/pieces/*")), (point, nth)
    assert trials >= len(POINTS)
    print(f"{trials} kills, each resumed: {resumed / trials:.1f} requests a resume on average, {full} for the import")


def test_the_default_staging_is_one_local_folder_per_lake_under_the_user_cache(
    s3_endpoint: S3Endpoint, tmp_path: Path, server: AlpacaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    url, opts = s3_url(s3_endpoint), options(s3_endpoint)
    folder = default_staging(url, opts)
    prefix = url.rsplit("/", 1)[1]
    assert folder.parent == tmp_path / "cache" / "ticklake" / "staging"
    assert folder.name.startswith(f"{s3_endpoint.bucket}_{prefix}-")
    # One folder per lake: the same lake with other credentials stages in the same place, another prefix or
    # another endpoint elsewhere; no credential is part of the name.
    assert default_staging(url, {**opts, "secret_access_key": "other", "access_key_id": "other"}) == folder
    assert default_staging(url + "x", opts) != folder
    assert default_staging(url, {**opts, "endpoint": "http://127.0.0.1:1"}) != folder
    assert s3_endpoint.secret_key not in str(folder) and s3_endpoint.access_key not in str(folder)
    with client_for(server) as client:
        report = import_api(
            "quotes", SYMBOLS, START, END, root=url, storage_options=opts, client=client, quiet=True, strategy="per-day"
        )
    assert [w.status for w in report.files] == ["written"] * 4
    (journal,) = folder.glob("*/journal.jsonl")
    assert journal.parent.name.startswith("quotes-sip-")
    # The plan of another kind reads the same staging folder (its own job in it) and makes no request.
    plan = plan_import("1m", SYMBOLS, START, END, root=url, storage_options=opts)
    assert plan.symbol_days == 8 and plan.data_requests > 0 and plan.count_requests == 0
    assert {p.name.split("-")[0] for p in folder.iterdir()} == {"quotes", "1m"}
    assert not (tmp_path / ".ticklake").exists() and not (tmp_path / "data").exists()


def test_the_cli_imports_into_s3_with_storage_options_and_staging(
    s3_endpoint: S3Endpoint, tmp_path: Path, server: AlpacaServer
) -> None:
    url = s3_url(s3_endpoint)
    with client_for(server) as client:
        import_api("1s", SYMBOLS, START, END, root=tmp_path / "local", client=client, quiet=True)
    env = {
        **os.environ, "PYTHONPATH": CHILD_PATH, "APCA_API_KEY_ID": KEY_ID, "APCA_API_SECRET_KEY": SECRET,
        "APCA_API_DATA_URL": server.url, "AWS_ACCESS_KEY_ID": s3_endpoint.access_key,
        "AWS_SECRET_ACCESS_KEY": s3_endpoint.secret_key,
    }  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "ticklake.cli", "import-api", "1s", SYMBOLS, str(START), str(END), "--root", url,
         "--storage-option", f"endpoint={s3_endpoint.endpoint_url}", "--storage-option", "allow_http=true",
         "--storage-option", "region=us-east-1", "--staging", str(tmp_path / "staging"), "--quiet"],
        cwd=REPO, capture_output=True, text=True, timeout=180, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for secret in (s3_endpoint.secret_key, SECRET):
        assert secret not in done.stdout + done.stderr
    assert f"written   {url}/bars/1s/AAPL.2024-01.parquet" in done.stdout
    lake = ticklake.Lake(url, storage_options=options(s3_endpoint))
    assert object_bytes(lake) == file_bytes(tmp_path / "local") != {}
    assert list((tmp_path / "staging").glob("1s-sip-*/journal.jsonl"))


def test_an_export_into_s3_equals_the_export_into_a_local_lake(s3_endpoint: S3Endpoint, tmp_path: Path) -> None:
    from ticklake.exporter import export_to_parquet

    db = tmp_path / "market.db"
    make_sqlite(db, source_frames())
    url, opts = s3_url(s3_endpoint), options(s3_endpoint)
    local = export_to_parquet(f"sqlite:///{db}", root=tmp_path / "local", batch_rows=700)
    remote = export_to_parquet(f"sqlite:///{db}", root=url, storage_options=opts, batch_rows=700)
    assert remote.ok and remote.files == local.files and remote.source_rows == local.source_rows
    lake = ticklake.Lake(url, storage_options=opts)
    assert object_bytes(lake) == file_bytes(tmp_path / "local") != {}
    # Again: every object is read, merged and found unchanged; the check still passes.
    assert export_to_parquet(f"sqlite:///{db}", root=url, storage_options=opts).ok
    assert object_bytes(lake) == file_bytes(tmp_path / "local")
    done = subprocess.run(
        [sys.executable, "-m", "ticklake.cli", "export-to-parquet", "--db", f"sqlite:///{db}", "--all",
         "--root", s3_url(s3_endpoint), *[a for k, v in opts.items() for a in ("--storage-option", f"{k}={v}")]],
        cwd=REPO, capture_output=True, text=True, timeout=180, env={**os.environ, "PYTHONPATH": CHILD_PATH},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "bars/1m  AAPL       2024-01       1,920      1,920  ok" in done.stdout
    assert s3_endpoint.secret_key not in done.stdout + done.stderr
