"""The Alpaca historical market-data client (ALPACA.md, SPEC §6): httpx for HTTP, Rust for the JSON.

Credentials come from ``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY`` (or the constructor) and only ever travel in
request headers: they are never printed, logged, written or put in an exception or a repr, and any text a server
sends back is scrubbed of them before it reaches a message. The base URL comes from ``APCA_API_DATA_URL`` (default
``https://data.alpaca.markets``).

The client paces requests to the account's rate (``rate``; by default the plan's limit as the server's
``X-RateLimit-Limit`` header tells it, starting at the free plan's 200/min), keeps as many requests in flight as
that rate needs at the latency it observes (:class:`InFlight`), pauses when ``X-RateLimit-Remaining`` runs out or a
429 asks it to, and bounds every wait: a whole-request deadline, a cap on a 429's pause, an error on a page token
that repeats.

Example:
    >>> client = AlpacaClient()
    >>> for table, token in client.pages("trades", "AAPL", start_ns, end_ns, feed="sip"):
    ...     print(table.num_rows)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
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
from ticklake.lake import kinds

DEFAULT_BASE_URL = "https://data.alpaca.markets"
PAGE_LIMIT = 10_000
#: The free plan's limit: the pace before the server has said what the account's limit is.
FREE_PLAN_RATE = 200.0
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
    """Spaces requests evenly so that no more than ``per_minute`` start in any minute, across threads; a pause
    (a 429's reset, an exhausted ``X-RateLimit-Remaining``) holds every thread until then.

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
        if not per_minute > 0:
            raise InvalidInputError(f"rate must be positive, got {per_minute}")
        self.per_minute = float(per_minute)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = clock()
        self.paused = 0.0

    @property
    def interval(self) -> float:
        """Seconds between two request starts."""
        return 60.0 / self.per_minute

    def set_rate(self, per_minute: float) -> None:
        """Paces at ``per_minute`` from now on."""
        with self._lock:
            self.per_minute = float(per_minute)

    def acquire(self) -> None:
        """Blocks until this caller may send a request."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            self._sleep(start - now)

    def pause_until(self, monotonic_deadline: float) -> None:
        """No request starts before ``monotonic_deadline``."""
        with self._lock:
            if monotonic_deadline > self._next:
                self.paused += monotonic_deadline - max(self._next, self._clock())
                self._next = monotonic_deadline


class InFlight:
    """Bounds the requests in flight to what the rate needs at the observed latency: ``ceil(rate/60 x latency x
    1.5) + 1``, between 1 and ``maximum`` (latency: the mean of the last requests, 0.4 s before the first).

    Example:
        >>> gate = InFlight(lambda: 1200, maximum=64)
        >>> gate.target()
        13
    """

    def __init__(self, rate: Callable[[], float], *, maximum: int = 64, latency: float = 0.4) -> None:
        if maximum < 1:
            raise InvalidInputError(f"max_in_flight must be at least 1, got {maximum}")
        self._rate = rate
        self.maximum = maximum
        self.latency = latency
        self.active = 0
        self.peak = 0
        self._cond = threading.Condition()

    def target(self) -> int:
        """Requests allowed in flight now."""
        wanted = math.ceil(self._rate() / 60 * self.latency * 1.5) + 1
        return max(1, min(self.maximum, wanted))

    def record(self, seconds: float) -> None:
        """One request took ``seconds`` (an exponential mean of the last ~10)."""
        with self._cond:
            self.latency += (seconds - self.latency) * 0.1
            self._cond.notify_all()

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Holds one of the in-flight places while a request runs."""
        with self._cond:
            while self.active >= self.target():
                self._cond.wait(0.5)
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            yield
        finally:
            with self._cond:
                self.active -= 1
                self._cond.notify_all()


@dataclass
class Stats:
    """Counters of one client, safe to read while it works. ``by_purpose`` counts requests by what they were for
    (``data``, ``counts``, ``probe``)."""

    requests: int = 0
    retries: int = 0
    pages: int = 0
    rows: int = 0
    rate_limited: int = 0
    by_purpose: dict[str, int] = field(default_factory=dict)
    first_sent: float | None = None
    last_done: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def sent(self, purpose: str) -> None:
        with self._lock:
            self.requests += 1
            self.by_purpose[purpose] = self.by_purpose.get(purpose, 0) + 1
            if self.first_sent is None:
                self.first_sent = time.monotonic()

    def finished(self) -> None:
        with self._lock:
            self.last_done = time.monotonic()

    def rate(self) -> float:
        """Requests per minute from the first request sent to the last one answered."""
        if self.first_sent is None or self.last_done is None or self.last_done <= self.first_sent:
            return 0.0
        return self.requests / (self.last_done - self.first_sent) * 60


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


def _message(response: httpx.Response, body: bytes) -> str:
    """The API's error message (JSON ``message``, else the text)."""
    try:
        decoded = json.loads(body)
        if isinstance(decoded, dict) and decoded.get("message"):
            code = f" (code {decoded['code']})" if decoded.get("code") is not None else ""
            return f"{decoded['message']}{code}"
    except ValueError:
        pass
    return body.decode(errors="replace").strip()[:300] or response.reason_phrase


class _Deadline(Exception):
    """A request ran past its whole-request deadline."""


def _header_int(response: httpx.Response, name: str) -> int | None:
    value = response.headers.get(name, "").strip()
    return int(value) if value.isdigit() else None


class AlpacaClient:
    """A client for Alpaca's historical stock endpoints (multi-symbol paths only, ALPACA.md §11).

    Args:
        key_id, secret_key: credentials; default ``$APCA_API_KEY_ID`` / ``$APCA_API_SECRET_KEY``.
        base_url: default ``$APCA_API_DATA_URL``, else ``https://data.alpaca.markets``.
        rate: requests per minute at most. None (the default): the account's limit as the server reports it in
            ``X-RateLimit-Limit`` (200/min until it has). A number: that pace, or the server's limit if lower.
        max_in_flight: the most requests in flight at once (the client keeps about ``rate x latency``).
        timeout: seconds per connect and per read; ``deadline``: seconds for a whole request, however slowly the
            server sends.
        max_retries: retries of one request on 429, 5xx, timeouts and dropped connections.
        backoff: first retry delay in seconds; it doubles per retry (full jitter), capped at ``max_backoff``.
        max_rate_wait: the longest a 429 or an exhausted quota may pause the client (then :class:`RateLimitError`).

    Raises:
        AuthError: no credentials in the arguments or the environment.

    Example:
        >>> AlpacaClient(rate=10_000).limiter.per_minute
        10000.0
    """

    def __init__(
        self,
        key_id: str | None = None,
        secret_key: str | None = None,
        *,
        base_url: str | None = None,
        rate: float | None = None,
        max_in_flight: int = 64,
        timeout: float = 30.0,
        deadline: float = 120.0,
        max_retries: int = 8,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_rate_wait: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        key_id = key_id or os.environ.get("APCA_API_KEY_ID")
        secret_key = secret_key or os.environ.get("APCA_API_SECRET_KEY")
        if not key_id or not secret_key:
            raise AuthError("no Alpaca credentials: set APCA_API_KEY_ID and APCA_API_SECRET_KEY")
        if rate is not None and not rate > 0:
            raise InvalidInputError(f"rate must be positive, got {rate}")
        self.base_url = (base_url or os.environ.get("APCA_API_DATA_URL") or DEFAULT_BASE_URL).rstrip("/")
        self._key_id, self._secret = Secret(key_id), Secret(secret_key)
        self.rate_cap = rate
        self.server_limit: int | None = None
        self.limiter = RateLimiter(rate if rate is not None else FREE_PLAN_RATE, sleep=sleep)
        self.in_flight = InFlight(lambda: self.limiter.per_minute, maximum=max_in_flight)
        self.deadline = deadline
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_rate_wait = max_rate_wait
        self.stats = Stats()
        self._sleep = sleep
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout),
            headers={"Accept-Encoding": "gzip", "User-Agent": f"ticklake/{_core.__version__}"},
            limits=httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight),
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

    def scrub(self, text: str) -> str:
        """``text`` with the credentials replaced by ``***`` (for anything built from a server's reply).

        Example:
            >>> client.scrub("echo: " + os.environ["APCA_API_SECRET_KEY"])
            'echo: ***'
        """
        for secret in (self._secret.reveal(), self._key_id.reveal()):
            if secret:
                text = text.replace(secret, "***")
        return text

    def _retry_delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_backoff, self.backoff * 2**attempt))

    def _observe(self, response: httpx.Response) -> None:
        """Follows the account's limit and pauses when the quota of the current window is used up."""
        limit = _header_int(response, "X-RateLimit-Limit")
        if limit and limit != self.server_limit:
            self.server_limit = limit
            pace = float(limit) if self.rate_cap is None else min(self.rate_cap, float(limit))
            self.limiter.set_rate(pace)
        remaining = _header_int(response, "X-RateLimit-Remaining")
        reset = _header_int(response, "X-RateLimit-Reset")
        # Requests already in flight will spend quota too: stop early enough that none of them gets a 429.
        if remaining is not None and reset is not None and remaining <= self.in_flight.active:
            wait = reset - time.time()
            if 0 < wait <= self.max_rate_wait:
                self.limiter.pause_until(time.monotonic() + wait + random.uniform(0, 0.05))

    def _send(self, url: str, params: dict[str, str]) -> tuple[httpx.Response, bytes]:
        """One GET, whole body read within the deadline."""
        headers = {"APCA-API-KEY-ID": self._key_id.reveal(), "APCA-API-SECRET-KEY": self._secret.reveal()}
        started = time.monotonic()
        with self._http.stream("GET", url, params=params, headers=headers) as response:
            chunks = []
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                if time.monotonic() - started > self.deadline:
                    raise _Deadline
        self.in_flight.record(time.monotonic() - started)
        return response, b"".join(chunks)

    def get(self, path: str, params: dict[str, str], *, purpose: str = "data") -> bytes:
        """One GET with retries; returns the (decompressed) body.

        Raises:
            AuthError: 401 or 403 (the API's message is quoted).
            ApiError: 400, 404, 422, or retries exhausted.
            RateLimitError: still rate limited after every retry, or told to wait longer than ``max_rate_wait``.
        """
        url = f"{self.base_url}{path}"
        last = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.stats.add(retries=1)
            with self.in_flight.slot():
                self.limiter.acquire()
                self.stats.sent(purpose)
                try:
                    response, body = self._send(url, params)
                except _Deadline:
                    last = f"no complete answer within the {self.deadline:g} s deadline"
                    self._sleep(self._retry_delay(attempt))
                    continue
                except (httpx.TimeoutException, httpx.TransportError) as err:
                    last = self.scrub(f"{type(err).__name__}: {err}")
                    self._sleep(self._retry_delay(attempt))
                    continue
                finally:
                    self.stats.finished()
            self._observe(response)
            status = response.status_code
            if status == 200:
                return body
            message = self.scrub(_message(response, body))
            if status in (401, 403):
                raise AuthError(f"{status} from {path}: {message}", status=status)
            if status in NO_RETRY_STATUS:
                raise ApiError(f"{status} from {path}: {message}", status=status)
            last = f"{status}: {message}"
            if status == 429:
                self.stats.add(rate_limited=1)
                reset = _header_int(response, "X-RateLimit-Reset")
                wait = self._retry_delay(attempt)
                if reset is not None:
                    wait = max(wait, reset - time.time()) + random.uniform(0, 0.25)
                if wait > self.max_rate_wait:
                    raise RateLimitError(
                        f"{path}: rate limited, and the API asks to wait {wait:,.0f} s, longer than the "
                        f"{self.max_rate_wait:g} s ticklake waits (max_rate_wait); try again later",
                        status=429,
                    )
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
        symbols: str | list[str] | tuple[str, ...],
        start_ns: int,
        end_ns: int,
        *,
        feed: str,
        timeframe: str | None = None,
        adjustment: str | None = None,
        asof: str | None = None,
        lots_to_shares: bool = True,
        daily_labels: bool = False,
        purpose: str = "data",
        limit: int = PAGE_LIMIT,
    ) -> Iterator[tuple[pa.Table, str | None]]:
        """Pages of ``trades``, ``quotes`` or ``bars`` for ``[start_ns, end_ns]`` (both inclusive, as the API),
        each parsed straight from JSON to Arrow in Rust, following ``next_page_token`` until it is null.

        Only the parameters the endpoint knows are sent (unknown ones are a 400): ``symbols, start, end,
        limit=10000, sort=asc, feed``, ``asof`` when given, and for bars ``timeframe`` and ``adjustment``.

        Raises:
            ApiError: a malformed page, or a page token the API already gave in this chain (it would loop).

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
            "limit": str(limit),
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
        seen: set[str] = set()
        while True:
            query = dict(params, page_token=token) if token else params
            body = self.get(f"/v2/stocks/{kind}", query, purpose=purpose)
            try:
                table, token = _core.parse_page(body, kind, lots_to_shares and kind == "quotes", daily_labels)
            except InvalidInputError as err:
                raise ApiError(self.scrub(f"bad {kind} page from the API: {err}")) from None
            self.stats.add(pages=1, rows=table.num_rows)
            if token is not None:
                if token in seen:
                    raise ApiError(
                        f"the API sent the same next_page_token twice for {kind} of {params['symbols'][:60]} "
                        f"{params['start']}..{params['end']}; stopping instead of looping"
                    )
                seen.add(token)
            yield table, token
            if token is None:
                return

    def probe(self, *, feed: str, symbol: str, start_ns: int) -> None:
        """One small request (a daily bar) that checks the credentials early and lets the client learn the
        account's rate limit and the latency before a large import is planned.

        Example:
            >>> client.probe(feed="sip", symbol="AAPL", start_ns=lo); client.limiter.per_minute
            10000.0
        """
        end = start_ns + 86_400 * 10**9 - 1
        for _ in self.pages(
            "bars", [symbol], start_ns, end, feed=feed, timeframe=kinds.api_timeframe("1d"), purpose="probe", limit=1
        ):
            break


__all__ = ["AlpacaClient", "InFlight", "RateLimiter", "Secret", "Stats", "rfc3339"]
