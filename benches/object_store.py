"""The lake on a local S3 server (SeaweedFS on loopback) against the local disk and against pyarrow's own S3 route
(``pyarrow.fs.S3FileSystem`` + ``pq.write_table`` / a filtered ``pq.read_table``), in the same run.

    python benches/object_store.py [--trades N] [--repeat K]

Data: a month (April 2024) of SPY 1s bars built from ``ticklake.sample`` trades. ticklake's write is the whole
``Lake.write_bars`` (validation, merge with what is stored, encoding, one conditional PUT); pyarrow's is one
``pq.write_table`` of the same table. The one-day read is 2024-04-10 New York time. Requests are counted by a TCP
proxy in front of the server (every HTTP request line the client sends). Loopback has no network latency: on real
S3 each request costs tens of milliseconds, so the request counts say more than the times.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import re
import socket
import sys
import tempfile
import threading
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import ticklake  # noqa: E402
from harness import best_of, machine_line, ratio_table, require_release  # noqa: E402
from ticklake.sample import sample_trades  # noqa: E402

from tests.s3_server import S3Server  # noqa: E402

REQUEST = re.compile(rb"(?:^|\r\n)(GET|HEAD|PUT|POST|DELETE) /")


class CountingProxy:
    """A TCP proxy that counts the HTTP requests passing through it (the Host header is passed on unchanged, so
    signatures made for the proxy's address still verify)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.requests = 0
        self._lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            client, _ = self.sock.accept()
            server = socket.create_connection(self.upstream)
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, count: bool) -> None:
        try:
            while data := src.recv(1 << 16):
                if count:
                    with self._lock:
                        self.requests += len(REQUEST.findall(data))
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trades", type=int, default=20_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    require_release()
    print(machine_line())
    start, end = dt.date(2024, 4, 1), dt.date(2024, 4, 30)
    bars = ticklake.bars(sample_trades("SPY", start, end, n=args.trades, seed=1), interval="1s")
    print(f"a month of SPY 1s bars: {bars.num_rows:,} rows")
    server = S3Server(bucket="bench")
    endpoint = server.start()
    try:
        host, port = endpoint.endpoint_url.removeprefix("http://").split(":")
        proxy = CountingProxy((host, int(port)))
        url = f"http://127.0.0.1:{proxy.port}"
        opts = {
            "endpoint": url,
            "region": "us-east-1",
            "access_key_id": endpoint.access_key,
            "secret_access_key": endpoint.secret_key,
            "allow_http": "true",
        }
        fs = pafs.S3FileSystem(
            endpoint_override=url, access_key=endpoint.access_key, secret_key=endpoint.secret_key, region="us-east-1"
        )
        with tempfile.TemporaryDirectory() as scratch:
            local_root = Path(scratch)
            lakes: dict[str, ticklake.Lake] = {}

            def fresh_s3() -> None:
                lakes["s3"] = ticklake.Lake(f"s3://bench/{uuid.uuid4().hex}", storage_options=opts)

            def fresh_local() -> None:
                lakes["local"] = ticklake.Lake(local_root / uuid.uuid4().hex)

            pa_key = f"bench/pyarrow-{uuid.uuid4().hex}/SPY.2024-04.parquet"
            fresh_s3()
            lakes["s3"].write_bars(bars.slice(0, 10), "1s")  # the probe and the connection, outside the timing
            write = {
                "ticklake": best_of(lambda: lakes["s3"].write_bars(bars, "1s"), args.repeat, setup=fresh_s3)[0],
                "local disk": best_of(lambda: lakes["local"].write_bars(bars, "1s"), args.repeat, setup=fresh_local)[0],
                "pyarrow S3": best_of(
                    lambda: pq.write_table(bars, pa_key, filesystem=fs, compression="zstd"), args.repeat
                )[0],
            }
            ratio_table("write a month of 1s bars (ticklake = Lake on S3)", write)

            lo = pa.scalar(dt.datetime(2024, 4, 10, 4, tzinfo=dt.UTC), pa.timestamp("ns", tz="UTC"))
            hi = pa.scalar(dt.datetime(2024, 4, 11, 4, tzinfo=dt.UTC), pa.timestamp("ns", tz="UTC"))
            day = ("2024-04-10", "2024-04-10")
            s3, local = lakes["s3"], lakes["local"]
            rows = s3.scan("1s", "SPY", *day, tz="America/New_York").to_arrow().num_rows
            assert rows == local.scan("1s", "SPY", *day, tz="America/New_York").to_arrow().num_rows
            before = proxy.requests
            s3.scan("1s", "SPY", *day, tz="America/New_York").to_arrow()
            ticklake_requests = proxy.requests - before
            before = proxy.requests
            got = pq.read_table(pa_key, filesystem=fs, filters=[("timestamp", ">=", lo), ("timestamp", "<", hi)])
            pyarrow_requests = proxy.requests - before
            assert got.num_rows == rows, (got.num_rows, rows)
            read = {
                "ticklake": best_of(lambda: s3.scan("1s", "SPY", *day, tz="America/New_York").to_arrow(), args.repeat)[
                    0
                ],
                "local disk": best_of(
                    lambda: local.scan("1s", "SPY", *day, tz="America/New_York").to_arrow(), args.repeat
                )[0],
                "pyarrow S3": best_of(
                    lambda: pq.read_table(
                        pa_key, filesystem=fs, filters=[("timestamp", ">=", lo), ("timestamp", "<", hi)]
                    ),
                    args.repeat,
                )[0],
            }
            ratio_table(f"read one New York day ({rows:,} rows) of the month (ticklake = Lake on S3)", read)
            print(
                f"\nrequests for the one-day read: ticklake {ticklake_requests} (info, footer, row group), "
                f"pyarrow filtered read {pyarrow_requests}"
            )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
