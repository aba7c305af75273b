"""Shared helpers for the tests."""

from __future__ import annotations

import math
import os
import pathlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pytest

if TYPE_CHECKING:
    from tests.s3_server import S3Endpoint

REAL_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


def records(table: pa.Table) -> list[dict[str, Any]]:
    """Rows of a kernel output with timestamps as int64 ns, for exact comparison."""
    idx = table.schema.get_field_index("timestamp")
    table = table.set_column(idx, "timestamp", table["timestamp"].cast(pa.int64()))
    return [_normalize(r) for r in table.to_pylist()]


def frame_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a reference DataFrame, normalized like :func:`records`."""
    return [_normalize(r) for r in df.to_dict("records")]


def _normalize(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out[k] = None
        elif hasattr(v, "item"):
            out[k] = v.item()
        else:
            out[k] = v
    return out


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A loopback PostgreSQL server for the session. Skips only when none can be started here; CI sets
    TICKLAKE_REQUIRE_POSTGRES=1 so that it fails instead."""
    from tests.pg_server import PostgresServer

    server = PostgresServer()
    try:
        url = server.start()
    except RuntimeError as err:
        server.stop()
        if os.environ.get("TICKLAKE_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL is required here but could not start: {err}")
        pytest.skip(f"no PostgreSQL server could be started: {err}")
    yield url
    server.stop()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[S3Endpoint]:
    """A loopback SeaweedFS S3 server for the session, with an empty bucket: ``(endpoint_url, bucket, access_key,
    secret_key)``. Skips only when none can be started here; CI sets TICKLAKE_REQUIRE_S3=1 so that it fails
    instead."""
    from tests.s3_server import S3Server

    server = S3Server()
    try:
        endpoint = server.start()
    except RuntimeError as err:
        server.stop()
        if os.environ.get("TICKLAKE_REQUIRE_S3"):
            pytest.fail(f"an S3 server is required here but could not start: {err}")
        pytest.skip(f"no S3 server could be started: {err}")
    yield endpoint
    server.stop()


@pytest.fixture(scope="module")
def dask_client() -> Iterator[object]:
    """A ``distributed.Client`` of a 2-worker ``LocalCluster`` (one thread and one process per worker, a free
    dashboard port), one per test module: a test that kills a worker leaves the next module a whole cluster."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=50
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="session")
def real_data() -> pathlib.Path:
    if not REAL_DATA.is_dir():
        pytest.skip(f"shared real data not found at {REAL_DATA}")
    return REAL_DATA
