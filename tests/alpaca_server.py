"""A loopback server that speaks Alpaca's historical market-data wire format (ALPACA.md §3-6), for tests and
benches. Never reachable from outside 127.0.0.1.

It serves trades and quotes from tables it is given, and 1Min/1Day bars it builds from those trades with the
plain pandas reference of Alpaca's rules (``tests/reference.py``), so bars from the API and bars built locally
are computed independently. It pages symbol-major with random short pages and opaque tokens, gzips only when asked
and the body exceeds 256 bytes, sends ``X-RateLimit-*`` headers, rejects unknown parameters and bad credentials
like the real API, and injects faults on demand: 429, 500, dropped connections, error bodies.

Example:
    >>> with AlpacaServer({"AAPL": trades}, {"AAPL": quotes}) as server:
    ...     client = AlpacaClient("key", "secret", base_url=server.url)
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import pyarrow as pa

KEY_ID = "PKTESTKEY0000000"
SECRET = "s3cr3t-DO-NOT-LEAK-9f8e7d6c"
COMMON = {"symbols", "start", "end", "limit", "page_token", "sort", "feed", "asof", "currency"}
ALLOWED = {"trades": COMMON, "quotes": COMMON, "bars": COMMON | {"timeframe", "adjustment"}}


def rfc3339_nano(ns: np.ndarray) -> list[str]:
    """Go's RFC3339Nano: UTC, ``Z``, fractional digits with trailing zeros trimmed (none when zero)."""
    text = np.datetime_as_string(ns.astype("datetime64[ns]"), unit="ns")
    out = []
    for t in text:
        head, frac = t.split(".")
        frac = frac.rstrip("0")
        out.append(f"{head}.{frac}Z" if frac else f"{head}Z")
    return out


def number(x: float) -> str:
    """Integral prices go out without a decimal point, like the API (``"p": 833``)."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def encode_trades(table: pa.Table) -> tuple[np.ndarray, list[str]]:
    ts = table["timestamp"].cast(pa.int64()).to_numpy()
    stamps = rfc3339_nano(ts)
    cols = {name: table[name].to_pylist() for name in ("price", "size", "exchange", "id", "conditions", "tape")}
    update = table["update"].to_pylist() if "update" in table.column_names else [None] * len(ts)
    items = []
    for i, t in enumerate(stamps):
        item = (
            f'{{"t":"{t}","x":{json.dumps(cols["exchange"][i])},"p":{number(cols["price"][i])},'
            f'"s":{cols["size"][i]},"c":{json.dumps(cols["conditions"][i] or [])},"i":{cols["id"][i]},'
            f'"z":{json.dumps(cols["tape"][i])}'
        )
        if update[i] is not None:
            item += f',"u":{json.dumps(update[i])}'
        items.append(item + "}")
    return ts, items


def encode_quotes(table: pa.Table) -> tuple[np.ndarray, list[str]]:
    """Quote sizes go out in round lots before 2025-11-03, as the API reported them (sizes must be multiples
    of 100 there)."""
    ts = table["timestamp"].cast(pa.int64()).to_numpy()
    stamps = rfc3339_nano(ts)
    c = {
        n: table[n].to_pylist()
        for n in ("bid_price", "bid_size", "ask_price", "ask_size", "bid_exchange", "ask_exchange")
    }
    cutoff = pd.Timestamp("2025-11-03", tz="America/New_York").value
    items = []
    for i, t in enumerate(stamps):
        lots = 100 if ts[i] < cutoff else 1
        bs, as_ = c["bid_size"][i], c["ask_size"][i]
        assert bs % lots == 0 and as_ % lots == 0, "quote sizes before 2025-11-03 must be round lots"
        items.append(
            f'{{"t":"{t}","ax":{json.dumps(c["ask_exchange"][i] or " ")},"ap":{number(c["ask_price"][i])},'
            f'"as":{as_ // lots},"bx":{json.dumps(c["bid_exchange"][i] or " ")},"bp":{number(c["bid_price"][i])},'
            f'"bs":{bs // lots},"c":["R"],"z":"C"}}'
        )
    return ts, items


def encode_bars(frame: pd.DataFrame, daily: bool) -> tuple[np.ndarray, list[str]]:
    ts = frame["timestamp"].to_numpy(dtype=np.int64)
    if daily:
        # Alpaca stamps daily bars at New York midnight in UTC (04:00Z or 05:00Z).
        labels = pd.to_datetime(ts, utc=True).tz_localize(None).tz_localize("America/New_York")
        ts = labels.tz_convert("UTC").as_unit("ns").asi8
    stamps = rfc3339_nano(ts)
    items = []
    for i, row in enumerate(frame.itertuples(index=False)):
        items.append(
            f'{{"t":"{stamps[i]}","o":{number(row.open)},"h":{number(row.high)},"l":{number(row.low)},'
            f'"c":{number(row.close)},"v":{int(row.volume)},"n":{int(row.trade_count)},'
            f'"vw":{number(round(row.vwap, 6) if pd.notna(row.vwap) else 0)}}}'
        )
    return ts, items


class _Quiet(ThreadingHTTPServer):
    """A threading server that does not print a traceback when a client goes away mid-request (tests kill
    clients on purpose)."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


@dataclass
class Faults:
    """Faults to inject. ``script`` is consumed first, one entry per request (``None`` = serve normally); then each
    request fails with the given probabilities (seeded)."""

    p429: float = 0.0
    p500: float = 0.0
    pdrop: float = 0.0
    script: list[str | None] = field(default_factory=list)
    seed: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.lock = threading.Lock()

    def next(self) -> str | None:
        with self.lock:
            if self.script:
                return self.script.pop(0)
            roll = self.rng.random()
            if roll < self.p429:
                return "429"
            if roll < self.p429 + self.p500:
                return "500"
            if roll < self.p429 + self.p500 + self.pdrop:
                return "drop"
            return None


class AlpacaServer:
    """The server; use as a context manager. ``requests`` logs every request as ``(path, params)``.

    ``latency``: seconds every answer waits (a number, or ``(low, high)`` drawn per request), like the real API's
    100-400 ms. ``short_pages``: half the pages are randomly short ("the API may return less"); with False every
    page is full up to ``limit`` (or ``max_page``). ``rate_limit``: the ``X-RateLimit-Limit`` it reports and, with
    ``enforce_rate``, a fixed window of ``window`` seconds in which only that many requests (scaled to the window)
    are served: more get a 429, as the real API does. ``api_bars``: ``{"1Min"|"1Day": {symbol: frame}}`` bars to
    serve as they are (frames as :func:`encode_bars` takes them) instead of building them from the trades.
    """

    def __init__(
        self,
        trades: dict[str, pa.Table] | None = None,
        quotes: dict[str, pa.Table] | None = None,
        *,
        faults: Faults | None = None,
        max_page: int | None = None,
        seed: int = 1,
        fixture: dict[str, str] | None = None,
        rate_limit: int = 10_000,
        latency: float | tuple[float, float] = 0.0,
        short_pages: bool = True,
        enforce_rate: bool = False,
        window: float = 60.0,
        api_bars: dict[str, dict[str, pd.DataFrame]] | None = None,
    ) -> None:
        self.faults = faults or Faults()
        self.max_page = max_page
        self.rng = random.Random(seed)
        self.fixture = fixture or {}
        self.rate_limit = rate_limit
        self.latency = latency
        self.short_pages = short_pages
        self.enforce_rate = enforce_rate
        self.window = window
        self.window_start = 0.0
        self.window_used = 0
        self.served_429 = 0
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.times: list[float] = []
        self.lock = threading.Lock()
        self.data: dict[str, dict[str, tuple[np.ndarray, list[str]]]] = {
            "trades": {},
            "quotes": {},
            "1Min": {},
            "1Day": {},
        }
        self.trade_tables = dict(trades or {})
        for symbol, table in self.trade_tables.items():
            self.data["trades"][symbol] = encode_trades(table)
        for timeframe, frames in (api_bars or {}).items():
            for symbol, frame in frames.items():
                self.data[timeframe][symbol] = encode_bars(frame, daily=timeframe == "1Day")
        for symbol, table in (quotes or {}).items():
            self.data["quotes"][symbol] = encode_quotes(table)
        self.server = _Quiet(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> AlpacaServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def bars(self, timeframe: str, symbol: str) -> tuple[np.ndarray, list[str]]:
        """Bars built on first use from the symbol's trades with the pandas reference of Alpaca's rules."""
        from tests.reference import ref_bars

        with self.lock:
            if symbol not in self.data[timeframe]:
                table = self.trade_tables.get(symbol)
                if table is None:
                    self.data[timeframe][symbol] = (np.empty(0, np.int64), [])
                else:
                    frame = table.to_pandas()
                    frame["timestamp"] = table["timestamp"].cast(pa.int64()).to_numpy()
                    bars = ref_bars(frame, "1m" if timeframe == "1Min" else "1d", "alpaca")
                    self.data[timeframe][symbol] = encode_bars(bars, daily=timeframe == "1Day")
            return self.data[timeframe][symbol]

    def count(self, path_part: str = "") -> int:
        with self.lock:
            return sum(1 for path, _ in self.requests if path_part in path)

    # ------------------------------------------------------------------------------------------------ serving

    def page(self, endpoint: str, params: dict[str, str], fault: str | None = None) -> tuple[int, dict[str, Any] | str]:
        """One page. Faults: ``same-token`` answers with the token it was asked for (a server stuck in a loop),
        ``repeat-item`` starts the page with the previous page's last item again (an overlapping cursor)."""
        extra = set(params) - ALLOWED[endpoint]
        if extra:
            return 400, {"message": f"unexpected query parameter(s): {', '.join(sorted(extra))}"}
        for required in ("symbols", "start", "end"):
            if required not in params:
                return 400, {"code": 40010001, "message": f"{required} is required"}
        limit = int(params.get("limit", "1000"))
        if not 1 <= limit <= 10_000:
            return 400, {"code": 40010001, "message": "invalid limit"}
        if params.get("sort", "asc") != "asc":
            return 400, {"code": 40010001, "message": "this server only sorts asc"}
        key = endpoint
        if endpoint == "bars":
            key = params.get("timeframe", "")
            if key not in ("1Min", "1Day"):
                return 422, {"code": 42210000, "message": "invalid timeframe"}
        start = pd.Timestamp(params["start"]).value
        end = pd.Timestamp(params["end"]).value
        if end < start:
            return 422, {"code": 42210000, "message": "end should not be before start"}
        symbols = params["symbols"].split(",")
        # Token = base64 of "symbol index|row offset": opaque to the client.
        symbol_index, offset = 0, 0
        if "page_token" in params:
            symbol_index, offset = map(int, base64.b64decode(params["page_token"]).decode().split("|"))
        if fault == "repeat-item" and offset > 0:
            offset -= 1
        size = self.rng.randint(1, limit) if self.short_pages and self.rng.random() < 0.5 else limit
        if self.max_page is not None:
            size = min(size, self.max_page)
        out: dict[str, list[str]] = {}
        taken = 0
        token = None
        while symbol_index < len(symbols):
            symbol = symbols[symbol_index]
            if key in ("1Min", "1Day"):
                ts, items = self.bars(key, symbol)
            else:
                ts, items = self.data[key].get(symbol, (np.empty(0, np.int64), []))
            lo = int(np.searchsorted(ts, start, side="left"))
            hi = int(np.searchsorted(ts, end, side="right"))
            a = lo + offset
            b = min(hi, a + size - taken)
            if b > a:
                out.setdefault(symbol, []).extend(items[a:b])
                taken += b - a
            if b < hi:
                token = base64.b64encode(f"{symbol_index}|{b - lo}".encode()).decode()
                break
            symbol_index, offset = symbol_index + 1, 0
            if taken >= size and symbol_index < len(symbols):
                token = base64.b64encode(f"{symbol_index}|0".encode()).decode()
                break
        if fault == "same-token" and "page_token" in params:
            token = params["page_token"]
        name = "bars" if endpoint == "bars" else endpoint
        body = (
            f'{{"{name}":{{'
            + ",".join(f'"{s}":[{",".join(v)}]' for s, v in out.items())
            + f'}},"next_page_token":{json.dumps(token)}}}'
        )
        return 200, body

    def quota(self) -> tuple[int, int, bool]:
        """Counts one request against the current window: (remaining, reset epoch, allowed)."""
        allowed_per_window = max(1, round(self.rate_limit * self.window / 60))
        with self.lock:
            now = time.time()
            if now >= self.window_start + self.window:
                self.window_start, self.window_used = now, 0
            self.window_used += 1
            remaining = allowed_per_window - self.window_used
            reset = math.ceil(self.window_start + self.window)
            allowed = not self.enforce_rate or remaining >= 0
            if not allowed:
                self.served_429 += 1
            return max(remaining, 0), reset, allowed

    def wait(self) -> None:
        latency = self.latency
        delay = self.rng.uniform(*latency) if isinstance(latency, tuple) else latency
        if delay > 0:
            time.sleep(delay)

    def _handler(self) -> Callable[..., BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                return

            def send_body(self, status: int, body: dict[str, Any] | str, quota: tuple[int, int] | None = None) -> None:
                raw = (body if isinstance(body, str) else json.dumps(body)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                remaining, reset = quota if quota is not None else (server.rate_limit - 1, int(time.time()) + 1)
                if status == 429 and quota is None:
                    reset = int(time.time()) + 2  # after a scripted 429: at least a second from now
                self.send_header("X-RateLimit-Limit", str(server.rate_limit))
                self.send_header("X-RateLimit-Remaining", str(remaining))
                self.send_header("X-RateLimit-Reset", str(reset))
                if "gzip" in self.headers.get("Accept-Encoding", "") and len(raw) > 256:
                    raw = gzip.compress(raw, 1)
                    self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def echo(self, status: int) -> None:
                """An error body that echoes the request's headers (some proxies do): secrets included."""
                headers = "; ".join(f"{k}: {v}" for k, v in self.headers.items())
                self.send_body(status, {"code": status * 100000, "message": f"bad request headers: {headers}"})

            def drip(self) -> None:
                """Headers, then one byte of the body every 0.2 s: each read is quick, the whole never ends."""
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "100000")
                self.end_headers()
                try:
                    for _ in range(100000):
                        self.wfile.write(b" ")
                        self.wfile.flush()
                        time.sleep(0.2)
                except OSError:
                    return

            def do_GET(self) -> None:
                split = urlsplit(self.path)
                params = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
                with server.lock:
                    server.requests.append((split.path, params))
                    server.times.append(time.monotonic())
                server.wait()
                if self.headers.get("APCA-API-KEY-ID") != KEY_ID or self.headers.get("APCA-API-SECRET-KEY") != SECRET:
                    self.send_body(401, {"code": 40110000, "message": "access key verification failed"})
                    return
                fault = server.faults.next()
                if fault == "drop":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if fault == "429":
                    self.send_body(429, "Too Many Requests")
                    return
                if fault == "429-far":
                    self.send_body(429, "Too Many Requests", (0, int(time.time()) + 10 * 365 * 86400))
                    return
                if fault == "500":
                    self.send_body(500, {"code": 50010000, "message": "internal server error occurred"})
                    return
                if fault is not None and fault.startswith("echo:"):
                    self.echo(int(fault.split(":")[1]))
                    return
                if fault == "drip":
                    self.drip()
                    return
                if fault is not None and fault.startswith("status:"):
                    _, status, message = fault.split(":", 2)
                    self.send_body(int(status), {"code": 42210000, "message": message})
                    return
                remaining, reset, allowed = server.quota()
                if not allowed:
                    self.send_body(429, "Too Many Requests", (0, reset))
                    return
                endpoint = split.path.rsplit("/", 1)[-1]
                if split.path in server.fixture:
                    self.send_body(200, server.fixture[split.path], (remaining, reset))
                    return
                if not split.path.startswith("/v2/stocks/") or endpoint not in ALLOWED:
                    self.send_body(404, {"message": "not found"})
                    return
                status, body = server.page(endpoint, params, fault)
                self.send_body(status, body, (remaining, reset))

        return Handler
