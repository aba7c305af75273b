"""Time ranges and trading sessions for reads (SPEC §5).

``start``/``end`` accept strings, dates, datetimes and pandas Timestamps. Naive values are read in the ``tz`` zone;
a bare date as ``end`` means through the end of that day. Sessions come from the NYSE calendar of the maintained
``exchange_calendars`` library (holidays, early closes such as 2024-11-29 13:00 ET):

- ``regular``: the session's open to its close (09:30-16:00 ET, 13:00 on early-close days);
- ``pre``: 04:00 ET to the open;
- ``post``: the close to 20:00 ET, or to four hours after an early close (17:00 ET), as the extended-hours
  venues do;
- ``extended``: pre + regular + post; ``all``: every row, including non-trading days.

Example:
    >>> utc_range("2024-01-02", "2024-01-02", "America/New_York")
    (1704171600000000000, 1704258000000000000)
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import warnings
import zoneinfo
from typing import Any, Literal

import numpy as np
import pandas as pd

from ticklake import _core
from ticklake.exceptions import InvalidInputError

Session = Literal["regular", "pre", "post", "extended", "all"]
SESSIONS: tuple[str, ...] = ("regular", "pre", "post", "extended", "all")
_BARE_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
NS_PER_DAY = 86_400 * 10**9


def _is_bare_date(value: Any) -> bool:
    if isinstance(value, str):
        return bool(_BARE_DATE.match(value.strip()))
    return isinstance(value, dt.date) and not isinstance(value, dt.datetime)


_UNIT_NS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


@functools.lru_cache(maxsize=64)
def check_tz(tz: str) -> str:
    """``tz`` when it is a time zone the tz database knows (``UTC``, ``America/New_York``, ...).

    Example:
        >>> check_tz("America/New_York")
        'America/New_York'

    Raises:
        InvalidInputError: for anything else (``Mars/Olympus``, ``""``).
    """
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidInputError(
            f"unknown time zone {tz!r}: use a tz database name such as 'America/New_York'"
        ) from None
    return tz


def to_utc_ns(value: Any, tz: str, *, end: bool = False) -> int:
    """UTC nanoseconds of a range bound. Naive values are in ``tz``; a bare date as an ``end`` is the next midnight.
    Bounds beyond the range ticklake stores (1679-2261) are clamped to it, so ``end="2300"`` means "to the end".

    Example:
        >>> to_utc_ns("2024-01-02", "UTC", end=True)
        1704240000000000000

    Raises:
        InvalidInputError: for a value that is not a date or time, an unknown zone, or a local time the zone skips
            or repeats.
    """
    check_tz(tz)
    if isinstance(value, (dt.date, np.datetime64)) or (isinstance(value, str) and value[:1].isdigit()):
        # A fixed instant (unlike "now" or "today"): the same bound every time, so computed once.
        kind: object = type(value)
        return _cached_utc_ns(kind, value, tz, end)
    return _utc_ns(value, tz, end)


@functools.lru_cache(maxsize=1024)
def _cached_utc_ns(kind: Any, value: Any, tz: str, end: bool) -> int:
    # ``kind`` keeps values that compare equal across types apart (a bare date and a datetime64 of its midnight).
    return _utc_ns(value, tz, end)


def _utc_ns(value: Any, tz: str, end: bool) -> int:
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError) as err:
        raise InvalidInputError(f"cannot read {value!r} as a date or time: {err}") from None
    if pd.isna(stamp):
        raise InvalidInputError(f"{value!r} is not a date or time")
    try:
        if _is_bare_date(value) and end:
            stamp = stamp + pd.Timedelta(days=1)
        if stamp.tzinfo is None:
            stamp = stamp.tz_localize(tz, ambiguous="raise", nonexistent="raise")
        stamp = stamp.tz_convert("UTC")
    except Exception as err:  # pandas/zoneinfo errors: ambiguous or missing local times, values out of bounds
        raise InvalidInputError(f"{value!r} in {tz}: {err}") from None
    ns = int(stamp.asm8.view("i8")) * _UNIT_NS[stamp.unit]
    return min(max(ns, _core.MIN_TIMESTAMP), _core.MAX_TIMESTAMP)


def utc_range(start: Any, end: Any, tz: str) -> tuple[int | None, int | None]:
    """``[start, end)`` as UTC nanoseconds (None = open).

    Example:
        >>> utc_range(None, "2024-01-02", "UTC")
        (None, 1704240000000000000)

    Raises:
        InvalidInputError: for unreadable bounds or ``end`` before ``start``.
    """
    check_tz(tz)
    lo = None if start is None else to_utc_ns(start, tz)
    hi = None if end is None else to_utc_ns(end, tz, end=True)
    if lo is not None and hi is not None and hi < lo:
        raise InvalidInputError(f"end {end!r} is before start {start!r}")
    return lo, hi


def overlaps(bounds: tuple[int, int], lo: int | None, hi: int | None) -> bool:
    """Whether ``[start, end)`` meets ``[lo, hi)`` (None = open).

    Example:
        >>> overlaps((0, 10), 10, None)
        False
    """
    start, end = bounds
    return (lo is None or end > lo) and (hi is None or start < hi)


def range_slice(timestamps: np.ndarray, lo: int | None, hi: int | None) -> tuple[int, int]:
    """``(a, b)`` such that sorted ``timestamps[a:b]`` are the ones in ``[lo, hi)``.

    Example:
        >>> range_slice(np.array([1, 5, 9]), 2, 9)
        (1, 2)
    """
    a = 0 if lo is None else int(np.searchsorted(timestamps, lo, side="left"))
    b = len(timestamps) if hi is None else int(np.searchsorted(timestamps, hi, side="left"))
    return a, b


@functools.lru_cache(maxsize=8)
def _schedule(first_year: int, last_year: int) -> pd.DataFrame:
    import exchange_calendars as xcals  # type: ignore[import-untyped]  # imported on first use: ~0.4 s

    with warnings.catch_warnings():
        # exchange_calendars 4.x still calls Series.values on tz-aware data, which pandas 3.1 deprecates.
        warnings.filterwarnings("ignore", message=".*Series.values.*", category=Warning)
        calendar = xcals.get_calendar("XNYS", start=f"{first_year}-01-01", end=f"{last_year}-12-31")
        schedule: pd.DataFrame = calendar.schedule[["open", "close"]]
    return schedule


def trading_days(start: dt.date, end: dt.date) -> list[dt.date]:
    """The NYSE trading days from ``start`` to ``end``, both inclusive.

    Example:
        >>> trading_days(dt.date(2024, 11, 27), dt.date(2024, 12, 2))
        [datetime.date(2024, 11, 27), datetime.date(2024, 11, 29), datetime.date(2024, 12, 2)]
    """
    if end < start:
        return []
    schedule = _schedule(start.year, end.year)
    index = pd.DatetimeIndex(schedule.index)
    chosen = index[(index >= pd.Timestamp(start)) & (index <= pd.Timestamp(end))]
    return [d.date() for d in chosen]


def session_windows(session: str, first_ns: int, last_ns: int) -> np.ndarray:
    """Sorted, disjoint ``[start, end)`` windows (UTC ns, shape ``(k, 2)``) of ``session`` on the NYSE sessions
    between two instants.

    Example:
        >>> w = session_windows("regular", 1732838400 * 10**9, 1732924800 * 10**9)  # 2024-11-29 (early close)
        >>> pd.to_datetime(w[0], utc=True).tz_convert("America/New_York").strftime("%H:%M").tolist()
        ['09:30', '13:00']

    Raises:
        InvalidInputError: for an unknown session or dates outside the calendar.
    """
    if session not in SESSIONS or session == "all":
        raise InvalidInputError(f"unknown session {session!r}: use one of {', '.join(SESSIONS)}")
    lo = pd.Timestamp(first_ns - NS_PER_DAY, tz="UTC")
    hi = pd.Timestamp(last_ns + NS_PER_DAY, tz="UTC")
    try:
        schedule = _schedule(lo.year, hi.year)
    except Exception as err:  # exchange_calendars raises its own errors for dates it does not cover
        raise InvalidInputError(f"no NYSE calendar for {lo.date()}..{hi.date()}: {err}") from err
    schedule = schedule[(schedule.index >= lo.tz_localize(None).normalize()) & (schedule.index <= hi.tz_localize(None))]
    opens = schedule["open"].array.asi8
    closes = schedule["close"].array.asi8
    days = pd.DatetimeIndex(schedule.index).tz_localize("America/New_York")
    pre_start = (days + pd.Timedelta(hours=4)).as_unit("ns").asi8
    post_cap = (days + pd.Timedelta(hours=20)).as_unit("ns").asi8
    post_end = np.minimum(closes + 4 * 3600 * 10**9, post_cap)
    starts, ends = {
        "regular": (opens, closes),
        "pre": (pre_start, opens),
        "post": (closes, post_end),
        "extended": (pre_start, post_end),
    }[session]
    return np.stack([starts, ends], axis=1).astype(np.int64)
