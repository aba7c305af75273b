"""A writer of an S3 lake SIGKILLed with its PUT in flight (issue 15), against SeaweedFS on loopback behind a proxy
that holds the PUT where the test wants it (``tests/s3_proxy.py``): before the body, halfway through it, or after
the store committed it but before the writer heard back. Afterwards the object is exactly the old version or
exactly the new one (byte for byte: the new one equals the same writes into a local lake), it reads with every page
checksum verified, and the next writer merges into it and loses nothing."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pyarrow as pa
import pytest
import ticklake

from tests.lake_data import minute_bars
from tests.s3_proxy import StallingProxy
from tests.s3_server import S3Endpoint
from tests.test_object_store import options

REPO = Path(__file__).resolve().parents[1]
D = dt.date
OLD, KILLED, NEXT = D(2024, 3, 4), D(2024, 3, 5), D(2024, 3, 6)

WRITER = """
import datetime as dt, json, sys
import ticklake
from tests.lake_data import minute_bars
url, opts = sys.argv[1], json.loads(sys.argv[2])
ticklake.Lake(url, storage_options=opts).write_bars(minute_bars("SPY", [dt.date(2024, 3, 5)], seed=2), "1m")
print("the write returned")
"""


def _object(lake: ticklake.Lake, path: Path) -> bytes:
    with lake.storage.filesystem.open_input_file(path.as_posix()) as f:
        return bytes(f.read())


def _rows(*days_and_seeds: tuple[dt.date, int]) -> pa.Table:
    return pa.concat_tables([minute_bars("SPY", [day], seed=seed) for day, seed in days_and_seeds])


@pytest.mark.parametrize(
    ("stall", "committed"),
    [("body:0", False), ("body:0.5", False), ("body:0.999", False), ("response", True)],
)
def test_a_writer_killed_mid_put_leaves_the_old_or_the_new_object_and_the_next_writer_loses_nothing(
    s3_endpoint: S3Endpoint, tmp_path: Path, stall: str, committed: bool
) -> None:
    url = f"s3://{s3_endpoint.bucket}/{uuid.uuid4().hex}"
    direct = options(s3_endpoint)
    lake = ticklake.Lake(url, storage_options=direct)
    (written,) = lake.write_bars(minute_bars("SPY", [OLD], seed=1), "1m")
    old = _object(lake, written.path)
    # The candidates, from the same writes into a local lake (the S3 objects equal local files byte for byte).
    local = ticklake.Lake(tmp_path / "local")
    local.write_bars(minute_bars("SPY", [OLD], seed=1), "1m")
    assert local.files("1m")[0].read_bytes() == old
    local.write_bars(minute_bars("SPY", [KILLED], seed=2), "1m")
    new = local.files("1m")[0].read_bytes()

    upstream = s3_endpoint.endpoint_url.removeprefix("http://")
    with StallingProxy(upstream, match="/bars/1m/SPY.2024-03.parquet", stall=stall) as proxy:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, url, json.dumps({**direct, "endpoint": proxy.url})],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        try:
            held = proxy.stalled.wait(timeout=120)
            alive = child.poll() is None
            child.send_signal(signal.SIGKILL)
            out, err = child.communicate(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
        assert held and alive, (proxy.errors, out, err)
        assert child.returncode == -signal.SIGKILL and "the write returned" not in out
        assert proxy.errors == [] and proxy.puts_seen >= 2  # the probe's PUTs went through, then the data PUT

    stored = _object(lake, written.path)
    assert stored == (new if committed else old), "the object is the old version or the new one, never a part"
    got = lake.scan("1m", "SPY").to_arrow()  # every page's CRC verified
    expected = _rows((OLD, 1), (KILLED, 2)) if committed else _rows((OLD, 1))
    assert got.num_rows == expected.num_rows
    assert got.column("close").equals(expected.column("close").cast(got.schema.field("close").type))

    # The next writer (a fresh process's view: a new Lake) merges into whatever is there and loses nothing.
    after = ticklake.Lake(url, storage_options=direct)
    assert [w.status for w in after.write_bars(minute_bars("SPY", [NEXT], seed=3), "1m")] == ["written"]
    final = after.scan("1m", "SPY").to_arrow()
    expected = _rows(*([(OLD, 1), (KILLED, 2)] if committed else [(OLD, 1)]), (NEXT, 3))
    assert final.num_rows == expected.num_rows
    assert final.column("close").equals(expected.column("close").cast(final.schema.field("close").type))
    local_next = ticklake.Lake(tmp_path / "next")
    for day, seed in [(OLD, 1), (KILLED, 2)] if committed else [(OLD, 1)]:
        local_next.write_bars(minute_bars("SPY", [day], seed=seed), "1m")
    local_next.write_bars(minute_bars("SPY", [NEXT], seed=3), "1m")
    assert _object(after, written.path) == local_next.files("1m")[0].read_bytes()
    assert [p.name for p in after.files("1m")] == ["SPY.2024-03.parquet"]
    print(
        f"killed at {stall}: the object is the {'new' if committed else 'old'} version ({len(stored):,} bytes), "
        f"the next writer wrote {final.num_rows:,} rows, none lost"
    )
