"""Coverage of the lake against the NYSE calendar: per symbol and trading day, is the day there?

Each (symbol, NYSE trading day) gets one status; weekends and holidays are not listed, so they are never gaps:

- ``full``: the day is there. Daily bars: the day's bar exists. Intraday kinds (``bars/1s``, ``bars/1m``,
  ``quotes``, ``trades``): the day's rows reach the regular session's open and close (the first row at most
  ``edge_minutes`` after the open, the last at most ``edge_minutes`` before the close; early closes such as
  2024-11-29 13:00 ET and the DST switch come from the calendar), and, where minutes are counted, at least
  ``min_fraction`` of the regular session's minutes hold a row. Minutes are always counted for 1m bars (their files
  are small, so their timestamp column is read); for the other intraday kinds only with ``deep=True``, because
  their row-group statistics (one row group per New York day, with the first and last timestamp) already give the
  span without reading data.
- ``partial``: the day has rows but not enough of them; ``reason`` says what is short.
- ``missing``: no row on that New York date.
- ``before_first``: a day before the symbol's first row of this kind anywhere in the lake (it may not have been
  trading yet). :func:`gaps` leaves these out unless asked, so a symbol listed mid-range is not a gap forever.

Example:
    >>> lake = ticklake.Lake("data/parquet")
    >>> cov = lake.coverage("bars/1m", ["AAPL"], "2024-11-25", "2024-11-29")
    >>> cov[["date", "status"]].tail(1)
            date status
    3 2024-11-29   full
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from ticklake.exceptions import InvalidInputError, corrupt_file
from ticklake.lake import kinds, layout
from ticklake.lake.reader import FileMetaData, open_parquet, read_file
from ticklake.lake.storage import LocalStorage, ObjectStorage, Stored
from ticklake.sessions import NS_PER_DAY, session_windows, trading_days

Status = Literal["full", "partial", "missing", "before_first"]
STATUSES: tuple[str, ...] = ("full", "partial", "missing", "before_first")
NY = "America/New_York"
NS_PER_MINUTE = 60 * 10**9
DEFAULT_MIN_FRACTION = 0.95
DEFAULT_EDGE_MINUTES = 15.0
_NONE = np.iinfo(np.int64).min  # "no row" in the per-day first/last arrays


def ny_date(value: Any, what: str) -> dt.date:
    """A New York calendar date from a string, date or Timestamp (time of day not allowed).

    Example:
        >>> ny_date("2024-11-29", "start")
        datetime.date(2024, 11, 29)

    Raises:
        InvalidInputError: for anything that is not a plain date.
    """
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as err:
        raise InvalidInputError(f"{what} {value!r} is not a date (YYYY-MM-DD)") from err
    if pd.isna(stamp) or stamp.tzinfo is not None or stamp != stamp.normalize():
        raise InvalidInputError(f"{what} {value!r} must be a plain New York date (YYYY-MM-DD)")
    day: dt.date = stamp.date()
    return day


@dataclass
class _Axis:
    """Calendar days ``first .. first + n - 1`` with each day's New York midnight (UTC ns, n + 1 of them, so the
    last one closes the last day) and, on NYSE trading days, the regular session's open and close (UTC ns)."""

    first: dt.date
    midnights: np.ndarray
    opens: np.ndarray
    closes: np.ndarray
    trading: np.ndarray

    @property
    def n(self) -> int:
        return len(self.trading)

    def index(self, day: dt.date) -> int:
        return (day - self.first).days

    @classmethod
    def build(cls, first: dt.date, last: dt.date) -> _Axis:
        days = pd.date_range(first, last + dt.timedelta(days=1), freq="D")
        midnights = days.tz_localize(NY).as_unit("ns").asi8.astype(np.int64)
        n = len(days) - 1
        opens = np.zeros(n, np.int64)
        closes = np.zeros(n, np.int64)
        trading = np.zeros(n, bool)
        sessions = trading_days(first, last)
        if sessions:
            windows = session_windows("regular", int(midnights[0]), int(midnights[-1]))
            open_days = pd.to_datetime(windows[:, 0], utc=True).tz_convert(NY).normalize().tz_localize(None)
            index = (open_days - pd.Timestamp(first)).days.to_numpy()
            keep = (index >= 0) & (index < n)
            opens[index[keep]] = windows[keep, 0]
            closes[index[keep]] = windows[keep, 1]
            trading[index[keep]] = True
        return cls(first, midnights, opens, closes, trading)


@dataclass
class _FileDays:
    """Per-calendar-day facts of one file, over axis days ``[start, start + len(rows))``."""

    symbol: str
    start: int
    rows: np.ndarray
    first: np.ndarray
    last: np.ndarray
    minutes: np.ndarray | None  # regular-session minutes holding a row (None: not counted)
    reg_first: np.ndarray | None  # first / last row inside the regular session (_NONE: none)
    reg_last: np.ndarray | None


def _ns(values: pa.Array[Any] | pa.ChunkedArray[Any]) -> np.ndarray:
    """Timestamps of any unit as int64 UTC nanoseconds."""
    out: np.ndarray = values.cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64()).to_numpy()
    return out


def _unit_scale(field: pa.Field[Any]) -> int:
    unit = field.type.unit if pa.types.is_timestamp(field.type) else None
    scales = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
    if unit not in scales:
        raise InvalidInputError(f"column 'timestamp' is {field.type}, not a timestamp")
    return scales[unit]


def _days_from_timestamps(symbol: str, ts: np.ndarray, axis: _Axis, count_minutes: bool) -> _FileDays | None:
    """Per-day facts from sorted intraday timestamps (UTC ns)."""
    day = np.searchsorted(axis.midnights, ts, side="right") - 1
    inside = (day >= 0) & (day < axis.n)
    ts, day = ts[inside], day[inside]
    if len(ts) == 0:
        return None
    lo, hi = int(day[0]), int(day[-1]) + 1
    local = day - lo
    rows = np.bincount(local, minlength=hi - lo).astype(np.int64)
    starts = np.searchsorted(local, np.arange(hi - lo), side="left")
    ends = np.searchsorted(local, np.arange(hi - lo), side="right")
    has = ends > starts
    first = np.full(hi - lo, _NONE, np.int64)
    last = np.full(hi - lo, _NONE, np.int64)
    first[has] = ts[starts[has]]
    last[has] = ts[ends[has] - 1]
    result = _FileDays(symbol, lo, rows, first, last, None, None, None)
    if count_minutes:
        opens, closes = axis.opens[day], axis.closes[day]
        regular = axis.trading[day] & (ts >= opens) & (ts < closes)
        r_ts, r_day = ts[regular], local[regular]
        key = r_day * 1440 + (r_ts - opens[regular]) // NS_PER_MINUTE
        distinct = np.ones(len(key), bool)
        distinct[1:] = key[1:] != key[:-1]
        result.minutes = np.bincount(r_day[distinct], minlength=hi - lo).astype(np.int64)
        r_starts = np.searchsorted(r_day, np.arange(hi - lo), side="left")
        r_ends = np.searchsorted(r_day, np.arange(hi - lo), side="right")
        r_has = r_ends > r_starts
        result.reg_first = np.full(hi - lo, _NONE, np.int64)
        result.reg_last = np.full(hi - lo, _NONE, np.int64)
        result.reg_first[r_has] = r_ts[r_starts[r_has]]
        result.reg_last[r_has] = r_ts[r_ends[r_has] - 1]
    return result


def _scan_file(
    storage: LocalStorage | ObjectStorage, item: Stored, kind: str, axis: _Axis, deep: bool
) -> _FileDays | None:
    """One file's days, from its footer's row-group statistics where they are enough, else its timestamps."""
    path = item.path
    name = layout.parse_name(path.name)
    if name is None:
        return None
    try:
        meta = storage.footer(item)
        schema = meta.schema.to_arrow_schema()
        ts_col = schema.get_field_index("timestamp")
        scale = _unit_scale(schema.field("timestamp"))
        if kinds.of(kind).yearly:
            labels = _read_timestamps(path, meta, storage.filesystem)
            day0 = int(pd.Timestamp(axis.first).as_unit("ns").value)
            index = (labels - day0) // NS_PER_DAY
            index = index[(index >= 0) & (index < axis.n)]
            if len(index) == 0:
                return None
            lo = int(index.min())
            rows = np.bincount(index - lo).astype(np.int64)
            stamps = np.where(rows > 0, day0 + (np.arange(len(rows)) + lo) * NS_PER_DAY, _NONE)
            return _FileDays(name.symbol, lo, rows, stamps, stamps, None, None, None)
        # The rule never depends on how a file was written: minutes are counted for 1m bars or when deep, and a
        # file whose footer is not enough is read but judged like the others.
        count_minutes = deep or kind == "bars/1m"
        if not count_minutes:
            days = _days_from_statistics(meta, ts_col, scale, axis)
            if days is not None:
                day, mins, maxs, counts = days
                return _days_from_groups(name.symbol, day, mins, maxs, counts, axis)
        ts = _read_timestamps(path, meta, storage.filesystem)
    except (pa.ArrowException, OSError, ValueError, KeyError) as err:
        raise corrupt_file(path, err) from err
    return _days_from_timestamps(name.symbol, ts, axis, count_minutes)


def _read_timestamps(path: Path, meta: FileMetaData, filesystem: Any) -> np.ndarray:
    """The timestamp column of a file as UTC ns (the footer already parsed is reused)."""
    return _ns(read_file(path, ["timestamp"], meta, filesystem)["timestamp"])


def _days_from_statistics(
    meta: FileMetaData, ts_col: int, scale: int, axis: _Axis
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Each row group's New York day, first and last timestamp (UTC ns) and rows; None when the statistics are
    missing or a row group spans New York days (a file not written by ticklake)."""
    mins, maxs, counts = [], [], []
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        stats = group.column(ts_col).statistics
        if stats is None or not stats.has_min_max:
            return None
        mins.append(stats.min_raw)
        maxs.append(stats.max_raw)
        counts.append(group.num_rows)
    first = np.array(mins, np.int64) * scale
    last = np.array(maxs, np.int64) * scale
    day = np.searchsorted(axis.midnights, first, side="right") - 1
    if not np.array_equal(day, np.searchsorted(axis.midnights, last, side="right") - 1):
        return None
    return day, first, last, np.array(counts, np.int64)


def _days_from_groups(
    symbol: str, day: np.ndarray, mins: np.ndarray, maxs: np.ndarray, counts: np.ndarray, axis: _Axis
) -> _FileDays | None:
    """Per-day rows and span from row groups that each lie inside one New York day."""
    inside = (day >= 0) & (day < axis.n)
    if not inside.all():
        day, mins, maxs, counts = day[inside], mins[inside], maxs[inside], counts[inside]
    if len(day) == 0:
        return None
    lo, hi = int(day.min()), int(day.max()) + 1
    local = day - lo
    rows = np.zeros(hi - lo, np.int64)
    first = np.full(hi - lo, _NONE, np.int64)
    last = np.full(hi - lo, _NONE, np.int64)
    if len(local) == 1 or bool((local[1:] > local[:-1]).all()):  # one row group per day, in order: the usual
        rows[local], first[local], last[local] = counts, mins, maxs
    else:  # a day in several row groups (trades past a million a day): add them up
        first[:] = np.iinfo(np.int64).max
        np.add.at(rows, local, counts)
        np.minimum.at(first, local, mins)
        np.maximum.at(last, local, maxs)
        first[rows == 0] = _NONE
    return _FileDays(symbol, lo, rows, first, last, None, None, None)


def _files(storage: LocalStorage | ObjectStorage, kind: str, symbols: list[str] | None) -> dict[str, list[Stored]]:
    """The lake files of a kind by symbol, in period order (one listing of the folder)."""
    found: dict[str, list[Stored]] = {}
    for item in storage.stored(kind):
        name = layout.parse_name(item.path.name)
        if name is not None:
            found.setdefault(name.symbol, []).append(item)
    if symbols is None:
        return found
    return {s: found.get(s, []) for s in symbols}


def _period_dates(kind: str, path: Path) -> tuple[dt.date, dt.date]:
    """The first and last New York date a file can hold."""
    name = layout.parse_name(path.name)
    assert name is not None  # _files keeps parseable names only
    if kinds.of(kind).yearly:
        year = int(name.period)
        return dt.date(year, 1, 1), dt.date(year, 12, 31)
    year, month = (int(x) for x in name.period.split("-"))
    after = dt.date(year + month // 12, month % 12 + 1, 1)
    return dt.date(year, month, 1), after - dt.timedelta(days=1)


def coverage(
    storage: LocalStorage | ObjectStorage,
    kind: str,
    symbols: str | Iterable[str] | None = None,
    start: Any = None,
    end: Any = None,
    *,
    min_fraction: float = DEFAULT_MIN_FRACTION,
    edge_minutes: float = DEFAULT_EDGE_MINUTES,
    deep: bool = False,
    workers: int | None = None,
) -> pd.DataFrame:
    """See :meth:`ticklake.Lake.coverage`.

    Example:
        >>> coverage(Lake("data/parquet"), "bars/1d")["status"].value_counts()
    """
    kind = kinds.of(kind).folder
    if not 0.0 <= min_fraction <= 1.0:
        raise InvalidInputError(f"min_fraction {min_fraction} is outside 0..1")
    if edge_minutes < 0:
        raise InvalidInputError(f"edge_minutes {edge_minutes} is negative")
    names = None if symbols is None else ([symbols] if isinstance(symbols, str) else list(symbols))
    if names is not None:
        if not names:
            raise InvalidInputError("no symbols given")
        names = list(dict.fromkeys(layout.check_symbol(s) for s in names))
    lo = None if start is None else ny_date(start, "start")
    hi = None if end is None else ny_date(end, "end")
    if lo is not None and hi is not None and hi < lo:
        raise InvalidInputError(f"end {hi} is before start {lo}")
    today = pd.Timestamp.now(tz=NY).date()
    if hi is not None and hi > today:
        hi = today  # the future is not a gap
    by_symbol = _files(storage, kind, names)
    scan: list[Stored] = []
    spans: list[tuple[dt.date, dt.date]] = []
    for items in by_symbol.values():
        for item in items:
            first_day, last_day = _period_dates(kind, item.path)
            if (lo is None or last_day >= lo) and (hi is None or first_day <= hi):
                scan.append(item)
                spans.append((first_day, last_day))
    if (lo is None or hi is None) and not scan:
        return _empty()
    axis_lo = min([d for d, _ in spans] + ([lo] if lo else []))
    axis_hi = max([d for _, d in spans] + ([hi] if hi else []))
    axis = _Axis.build(axis_lo, axis_hi)
    # A symbol's first file decides before_first; it is scanned anyway unless it lies before the range.
    scanned_set = set(scan)
    early = [paths[0] for paths in by_symbol.values() if paths and lo is not None and paths[0] not in scanned_set]
    threads = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        scanned = list(pool.map(lambda item: _scan_file(storage, item, kind, axis, deep), scan))
        firsts = dict(
            zip(
                [item.path.name for item in early],
                pool.map(lambda item: _first_date(storage, item, kind), early),
                strict=True,
            )
        )
    counted = not kinds.of(kind).yearly and (deep or kind == "bars/1m")
    data = _Symbols.gather(list(by_symbol), scanned, axis, counted=counted)
    # Each symbol's first day with data on the axis (-1: none at all, so every day is missing, not before_first).
    first_index = np.full(len(by_symbol), -1, np.int64)
    for i, paths in enumerate(by_symbol.values()):
        in_axis = np.flatnonzero(data.rows[i] > 0)
        day = firsts.get(paths[0].path.name) if paths else None
        if day is not None:
            first_index[i] = axis.index(day)
        elif len(in_axis):
            first_index[i] = in_axis[0]
    if lo is None or hi is None:
        with_rows = np.flatnonzero(data.rows.sum(axis=0) > 0)
        if len(with_rows) == 0:
            return _empty()
        lo = lo or axis.first + dt.timedelta(days=int(with_rows[0]))
        hi = hi or min(today, axis.first + dt.timedelta(days=int(with_rows[-1])))
    if hi < lo:
        return _empty()
    return _frame(kind, data, first_index, axis, lo, hi, min_fraction, edge_minutes)


def _first_date(storage: LocalStorage | ObjectStorage, item: Stored, kind: str) -> dt.date | None:
    """The New York date of a file's first row (from its first row group's statistics when present)."""
    path = item.path
    try:
        meta = storage.footer(item)
        if meta.num_rows == 0:
            return None
        schema = meta.schema.to_arrow_schema()
        field = schema.field("timestamp")
        stats = meta.row_group(0).column(schema.get_field_index("timestamp")).statistics
        if stats is not None and stats.has_min_max:
            first = int(stats.min_raw) * _unit_scale(field)  # type: ignore[arg-type]
        else:
            file = open_parquet(path, storage.filesystem)
            first = int(_ns(file.read_row_group(0, columns=["timestamp"])["timestamp"]).min())
    except (pa.ArrowException, OSError, ValueError, KeyError) as err:
        raise corrupt_file(path, err) from err
    stamp = pd.Timestamp(first, tz="UTC")
    day: dt.date = (stamp if kinds.of(kind).yearly else stamp.tz_convert(NY)).date()
    return day


@dataclass
class _Symbols:
    """Per symbol x calendar day facts over the whole axis."""

    names: list[str]
    rows: np.ndarray
    first: np.ndarray
    last: np.ndarray
    minutes: np.ndarray | None
    reg_first: np.ndarray | None
    reg_last: np.ndarray | None

    @classmethod
    def gather(cls, names: list[str], files: list[_FileDays | None], axis: _Axis, counted: bool) -> _Symbols:
        index = {s: i for i, s in enumerate(names)}
        shape = (len(names), axis.n)
        rows = np.zeros(shape, np.int64)
        first = np.full(shape, _NONE, np.int64)
        last = np.full(shape, _NONE, np.int64)
        minutes = np.zeros(shape, np.int64) if counted else None
        reg_first = np.full(shape, _NONE, np.int64) if counted else None
        reg_last = np.full(shape, _NONE, np.int64) if counted else None
        for part in files:
            if part is None:
                continue
            row, span = index[part.symbol], slice(part.start, part.start + len(part.rows))
            rows[row, span] = part.rows
            first[row, span] = part.first
            last[row, span] = part.last
            if minutes is not None and reg_first is not None and reg_last is not None:
                if part.minutes is None or part.reg_first is None or part.reg_last is None:
                    # Counted kinds always count; a stats-only part cannot occur here.
                    raise AssertionError("minute counts missing for a counted kind")
                minutes[row, span] = part.minutes
                reg_first[row, span] = part.reg_first
                reg_last[row, span] = part.reg_last
        return cls(names, rows, first, last, minutes, reg_first, reg_last)


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "symbol": pd.Series([], dtype=object),
            "date": pd.Series([], dtype="datetime64[ns]"),
            "status": pd.Categorical([], categories=STATUSES),
            "rows": pd.Series([], dtype=np.int64),
            "first": pd.Series([], dtype="datetime64[ns, UTC]"),
            "last": pd.Series([], dtype="datetime64[ns, UTC]"),
            "minutes": pd.Series([], dtype="Int64"),
            "session_minutes": pd.Series([], dtype=np.int64),
            "reason": pd.Series([], dtype=object),
        }
    )


def _clock(ns: np.ndarray) -> np.ndarray:
    """New York wall-clock ``HH:MM`` of UTC ns values."""
    stamps = pd.to_datetime(ns, utc=True).tz_convert(NY)
    out: np.ndarray = np.asarray(stamps.strftime("%H:%M"), dtype=object)
    return out


def _frame(
    kind: str,
    data: _Symbols,
    first_index: np.ndarray,
    axis: _Axis,
    lo: dt.date,
    hi: dt.date,
    min_fraction: float,
    edge_minutes: float,
) -> pd.DataFrame:
    days = np.flatnonzero(axis.trading[axis.index(lo) : axis.index(hi) + 1]) + axis.index(lo)
    n_sym, n_day = len(data.names), len(days)
    if n_sym == 0 or n_day == 0:
        return _empty()
    rows = data.rows[:, days]
    first, last = data.first[:, days], data.last[:, days]
    opens = np.broadcast_to(axis.opens[days], rows.shape)
    closes = np.broadcast_to(axis.closes[days], rows.shape)
    session = ((closes - opens) // NS_PER_MINUTE).astype(np.int64)
    has = rows > 0
    reason = np.full(rows.shape, "", dtype=object)
    if kinds.of(kind).yearly:
        ok = has
        minutes = None
    else:
        edge = int(edge_minutes * NS_PER_MINUTE)
        if data.reg_first is not None and data.reg_last is not None:
            span_first, span_last = data.reg_first[:, days], data.reg_last[:, days]
        else:
            span_first, span_last = first, last
        no_regular = has & ((span_first == _NONE) | (span_last < opens) | (span_first >= closes))
        late = has & ~no_regular & (span_first > opens + edge)
        early = has & ~no_regular & (span_last < closes - edge)
        short = np.zeros(rows.shape, bool)
        minutes = None if data.minutes is None else data.minutes[:, days]
        if minutes is not None:
            need = np.ceil(min_fraction * session - 1e-9).astype(np.int64)
            short = has & ~no_regular & (minutes < need)
        ok = has & ~(no_regular | late | early | short)
        for mask, text in _reasons(no_regular, late, early, short, span_first, span_last, opens, closes, minutes):
            reason[mask] = np.where(reason[mask] == "", text, reason[mask] + "; " + text)
    status = np.where(ok, 0, np.where(has, 1, 2))
    # before_first: days before the symbol's first row of this kind anywhere in the lake.
    status = np.where(days[None, :] < first_index[:, None], 3, status)
    reason[status == 2] = "no rows on this New York date"
    reason[status == 3] = "before the symbol's first data"
    dates = pd.DatetimeIndex(pd.Timestamp(axis.first) + pd.to_timedelta(days, unit="D")).as_unit("ns")
    frame = pd.DataFrame(
        {
            "symbol": np.repeat(np.array(data.names, dtype=object), n_day),
            "date": np.tile(dates.to_numpy(), n_sym),
            "status": pd.Categorical.from_codes(status.ravel().astype(np.int64), categories=pd.Index(STATUSES)),
            "rows": rows.ravel(),
            "first": pd.to_datetime(np.where(has, first, 0).ravel(), utc=True).where(has.ravel()),
            "last": pd.to_datetime(np.where(has, last, 0).ravel(), utc=True).where(has.ravel()),
            "minutes": pd.arrays.IntegerArray(
                np.zeros(rows.size, np.int64) if minutes is None else minutes.ravel(),
                np.full(rows.size, minutes is None),
            ),
            "session_minutes": (np.ones_like(session) if kinds.of(kind).yearly else session).ravel(),
            "reason": reason.ravel(),
        }
    )
    return frame


def _reasons(
    no_regular: np.ndarray,
    late: np.ndarray,
    early: np.ndarray,
    short: np.ndarray,
    span_first: np.ndarray,
    span_last: np.ndarray,
    opens: np.ndarray,
    closes: np.ndarray,
    minutes: np.ndarray | None,
) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """Readable reasons for partial days (built only for those cells)."""
    if no_regular.any():
        yield no_regular, np.array(["no rows in the regular session"] * int(no_regular.sum()), dtype=object)
    if late.any():
        text = "rows start " + _clock(span_first[late]) + " ET (open " + _clock(opens[late]) + ")"
        yield late, text
    if early.any():
        text = "rows end " + _clock(span_last[early]) + " ET (close " + _clock(closes[early]) + ")"
        yield early, text
    if short.any() and minutes is not None:
        session = (closes[short] - opens[short]) // NS_PER_MINUTE
        counts = minutes[short]
        text = np.array(
            [f"{c} of {s} regular-session minutes" for c, s in zip(counts.tolist(), session.tolist(), strict=True)],
            dtype=object,
        )
        yield short, text


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per symbol: trading days in range, days per status, first and last day with data.

    Example:
        >>> summary(lake.coverage("bars/1m"))
    """
    if frame.empty:
        return pd.DataFrame(columns=["symbol", "days", *STATUSES, "first_day", "last_day"])
    counts = pd.crosstab(frame["symbol"], frame["status"]).reindex(columns=list(STATUSES), fill_value=0)
    counts.columns = list(STATUSES)
    present = frame[frame["rows"] > 0]
    out = counts.assign(
        days=counts.sum(axis=1),
        first_day=present.groupby("symbol")["date"].min().dt.date,
        last_day=present.groupby("symbol")["date"].max().dt.date,
    )
    out = out.reindex(list(dict.fromkeys(frame["symbol"]))).reset_index(names="symbol")
    return out[["symbol", "days", *STATUSES, "first_day", "last_day"]]
