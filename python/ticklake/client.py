"""The Alpaca historical market-data client (ALPACA.md, SPEC §6): httpx for HTTP, Rust for the JSON.

Credentials come from ``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY`` (or the constructor) and only ever travel in
request headers: they are never printed, logged, written or put in an exception or a repr. The base URL comes
from ``APCA_API_DATA_URL`` (default ``https://data.alpaca.markets``).

Example:
    >>> client = AlpacaClient(rate=200)
    >>> for table, token in client.pages("trades", "AAPL", start_ns, end_ns, feed="sip"):
    ...     print(table.num_rows)
"""

from __future__ import annotations

import datetime as dt
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pyarrow as pa

from ticklake import _core
from ticklake.exceptions import ApiError, AuthError, InvalidInputError, RateLimitError

DEFAULT_BASE_URL = "https://data.alpaca.markets"
PAGE_LIMIT = 10_000
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
NO_RETRY_STATUS = frozenset({400, 401, 403, 404, 422})


def rfc3339(ns: int) -> str:
    """UTC nanoseconds as RFC-3339 with a ``Z`` and all nine fractional digits (no ``+`` to encode).

    Example:
        >>> rfc3339(1_641_200_400_000_000_001)
        '2022-01-03T09:00:00.000000001Z'
    """
    seconds, nanos = divmod(ns, 1_000_000_000)
    stamp = dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{nanos:09d}Z"


class RateLimiter:
    """Spaces requests evenly so that no more than ``per_minute`` start in any minute, across threads; a 429's
    ``X-RateLimit-Reset`` pauses every thread until then.

    Example:
        >>> limiter = RateLimiter(600)
        >>> limiter.acquire()   # returns at once, then every 0.1 s
    """

    def __init__(
        self,
        per_minute: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_minute <= 0:
            raise InvalidInputError(f"rate must be positive, got {per_minute}")
        self.interval = 60.0 / per_minute
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = clock()

    def acquire(self) -> None:
        """Blocks until this caller may send a request."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            self._sleep(start - now)

    def pause_until(self, monotonic_deadline: float) -> None:
        """No request starts before ``monotonic_deadline`` (from a 429's reset time)."""
        with self._lock:
            self._next = max(self._next, monotonic_deadline)


@dataclass
class Stats:
    """Counters of one client, safe to read while it works."""

    requests: int = 0
    retries: int = 0
    pages: int = 0
    rows: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


class Secret:
    """A credential that never shows itself: ``repr``, ``str`` and pickling reveal nothing.

    Example:
        >>> Secret("abc")
        Secret('***')
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The value, for the one place that sends it (a request header)."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")


def _message(response: httpx.Response) -> str:
    """The API's error message (JSON ``message``, else the text), without anything from the request."""
    try:
        body = response.json()
        if isinstance(body, dict) and body.get("message"):
            code = f" (code {body['code']})" if body.get("code") is not None else ""
            return f"{body['message']}{code}"
    except ValueError:
        pass
    return response.text.strip()[:300] or response.reason_phrase


class AlpacaClient:
    """A client for Alpaca's historical stock endpoints (multi-symbol paths only, ALPACA.md §11).

    Args:
        key_id, secret_key: credentials; default ``$APCA_API_KEY_ID`` / ``$APCA_API_SECRET_KEY``.
        base_url: default ``$APCA_API_DATA_URL``, else ``https://data.alpaca.markets``.
        rate: requests per minute the client stays under (the plan's limit: 200 free, 10,000 paid).
        timeout: seconds per request (connect and read).
        max_retries: retries of one request on 429, 5xx, timeouts and dropped connections.
        backoff: first retry delay in seconds; it doubles per retry (full jitter), capped at ``max_backoff``.

    Raises:
        AuthError: no credentials in the arguments or the environment.
    """

    def __init__(
        self,
        key_id: str | None = None,
        secret_key: str | None = None,
        *,
        base_url: str | None = None,
        rate: float = 200,
        timeout: float = 30.0,
        max_retries: int = 8,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        key_id = key_id or os.environ.get("APCA_API_KEY_ID")
        secret_key = secret_key or os.environ.get("APCA_API_SECRET_KEY")
        if not key_id or not secret_key:
            raise AuthError("no Alpaca credentials: set APCA_API_KEY_ID and APCA_API_SECRET_KEY")
        self.base_url = (base_url or os.environ.get("APCA_API_DATA_URL") or DEFAULT_BASE_URL).rstrip("/")
        self._key_id, self._secret = Secret(key_id), Secret(secret_key)
        self.limiter = RateLimiter(rate, sleep=sleep)
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.stats = Stats()
        self._sleep = sleep
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout),
            headers={"Accept-Encoding": "gzip", "User-Agent": f"ticklake/{_core.__version__}"},
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        )

    def __repr__(self) -> str:
        return f"AlpacaClient(base_url={self.base_url!r})"

    def close(self) -> None:
        """Closes the connection pool."""
        self._http.close()

    def __enter__(self) -> AlpacaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _retry_delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_backoff, self.backoff * 2**attempt))

    def get(self, path: str, params: dict[str, str]) -> bytes:
        """One GET with retries; returns the (decompressed) body.

        Raises:
            AuthError: 401 or 403 (the API's message is quoted).
            ApiError: 400, 404, 422, or retries exhausted.
            RateLimitError: still rate limited after every retry.
        """
        url = f"{self.base_url}{path}"
        last = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.stats.add(retries=1)
            self.limiter.acquire()
            self.stats.add(requests=1)
            try:
                headers = {"APCA-API-KEY-ID": self._key_id.reveal(), "APCA-API-SECRET-KEY": self._secret.reveal()}
                response = self._http.get(url, params=params, headers=headers)
            except (httpx.TimeoutException, httpx.TransportError) as err:
                last = f"{type(err).__name__}: {err}"
                self._sleep(self._retry_delay(attempt))
                continue
            status = response.status_code
            if status == 200:
                return response.content
            message = _message(response)
            if status in (401, 403):
                raise AuthError(f"{status} from {path}: {message}", status=status)
            if status in NO_RETRY_STATUS:
                raise ApiError(f"{status} from {path}: {message}", status=status)
            last = f"{status}: {message}"
            if status == 429:
                reset = response.headers.get("X-RateLimit-Reset")
                wait = self._retry_delay(attempt)
                if reset and reset.strip().isdigit():
                    wait = max(wait, int(reset) - time.time()) + random.uniform(0, 0.25)
                self.limiter.pause_until(time.monotonic() + wait)
                continue
            if status not in RETRY_STATUS and status < 500:
                raise ApiError(f"{status} from {path}: {message}", status=status)
            self._sleep(self._retry_delay(attempt))
        error = RateLimitError if last.startswith("429") else ApiError
        raise error(f"gave up on {path} after {self.max_retries + 1} attempts; last: {last}")

    def pages(
        self,
        kind: str,
        symbols: str | list[str],
        start_ns: int,
        end_ns: int,
        *,
        feed: str,
        timeframe: str | None = None,
        adjustment: str | None = None,
        asof: str | None = None,
        lots_to_shares: bool = True,
        daily_labels: bool = False,
    ) -> Iterator[tuple[pa.Table, str | None]]:
        """Pages of ``trades``, ``quotes`` or ``bars`` for ``[start_ns, end_ns]`` (both inclusive, as the API),
        each parsed straight from JSON to Arrow in Rust, following ``next_page_token`` until it is null.

        Only the parameters the endpoint knows are sent (unknown ones are a 400): ``symbols, start, end,
        limit=10000, sort=asc, feed``, ``asof`` when given, and for bars ``timeframe`` and ``adjustment``.

        Example:
            >>> for table, _ in client.pages("bars", ["AAPL"], lo, hi, feed="sip", timeframe="1Min"):
            ...     pass
        """
        if kind not in ("trades", "quotes", "bars"):
            raise InvalidInputError(f"unknown endpoint {kind!r}")
        names = [symbols] if isinstance(symbols, str) else list(symbols)
        params = {
            "symbols": ",".join(names),
            "start": rfc3339(start_ns),
            "end": rfc3339(end_ns),
            "limit": str(PAGE_LIMIT),
            "sort": "asc",
            "feed": feed,
        }
        if asof is not None:
            params["asof"] = asof
        if kind == "bars":
            if timeframe is None:
                raise InvalidInputError("bars need a timeframe")
            params["timeframe"] = timeframe
            params["adjustment"] = adjustment or "raw"
        token: str | None = None
        while True:
            query = dict(params, page_token=token) if token else params
            body = self.get(f"/v2/stocks/{kind}", query)
            try:
                table, token = _core.parse_page(body, kind, lots_to_shares and kind == "quotes", daily_labels)
            except InvalidInputError as err:
                raise ApiError(f"bad {kind} page from the API: {err}") from None
            self.stats.add(pages=1, rows=table.num_rows)
            yield table, token
            if token is None:
                return


__all__ = ["AlpacaClient", "RateLimiter", "Secret", "Stats", "rfc3339"]
