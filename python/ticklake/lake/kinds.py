"""The kinds of lake data and every name each one goes by, in one table.

A kind is written ``bars/1m`` in the lake's folders and in :meth:`ticklake.Lake.files`; ``1m`` is its short name
(``import-api 1m``, ``read_bars(..., "1m")``); ``1Min`` is Alpaca's timeframe; ``bars_1m`` is its SQL view and the
default table name of ``export-to-parquet``. :func:`of` takes any of these names and returns the one
:class:`Kind`. Bars of other intervals of whole seconds under a day (``5s``, ``15m``, ``1h``) are kinds too, made on
demand: ``bars/5s`` holds them (monthly files, the 1s bars' schema; ``vwap`` from one minute up), written by
``Lake.write_bars``/``Lake.rebuild`` and read by ``scan``/``read_bars``; the importer and the SQL views keep to the
table below. What the files hold (the stored schema, the period rule) is Rust's (``_core.lake_schema``,
``_core.period_of_ns``): this table says which rule applies, not how.

Example:
    >>> from ticklake.lake import kinds
    >>> kinds.of("1m").folder, kinds.of("bars_1m").api_timeframe, kinds.of("bars/1d").yearly
    ('bars/1m', '1Min', True)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from ticklake.exceptions import InvalidInputError

#: A bar timeframe the lake stores in its table of kinds (any other interval such as ``"5s"`` is a ``str``).
Timeframe = Literal["1s", "1m", "1d"] | str


@dataclass(frozen=True)
class Kind:
    """One kind of lake data.

    Attributes:
        folder: the folder under the lake root and the kind's canonical name (``bars/1m``).
        short: the short name (``1m``, ``quotes``): ``import-api``'s kind and the ``timeframe`` of bar reads.
        view: the DuckDB view of :meth:`ticklake.Lake.sql` and the default table of ``export-to-parquet`` (None:
            the kind has none).
        api_timeframe: Alpaca's bar timeframe (None: not a bar kind fetched as bars).
        bar_seconds: the bar interval in seconds (None: not bars).
        yearly: one file per year (daily bars) instead of per month.
    """

    folder: str
    short: str
    view: str | None
    api_timeframe: str | None
    bar_seconds: int | None
    yearly: bool

    @property
    def is_bars(self) -> bool:
        """True for the bar kinds."""
        return self.bar_seconds is not None

    @property
    def bars_per_day(self) -> int | None:
        """The most bars one symbol has in a day: one daily bar, or one per interval of the 04:00-20:00 ET
        extended session (960 minute bars). None: not bars.

        Example:
            >>> of("1m").bars_per_day
            960
        """
        if self.bar_seconds is None:
            return None
        return 1 if self.yearly else 16 * 3600 // self.bar_seconds


#: Every kind, in the lake's order.
ALL: tuple[Kind, ...] = (
    Kind("bars/1s", "1s", "bars_1s", None, 1, yearly=False),  # built from trades: Alpaca has no 1s bars
    Kind("bars/1m", "1m", "bars_1m", "1Min", 60, yearly=False),
    Kind("bars/1d", "1d", "bars_1d", "1Day", 86_400, yearly=True),
    Kind("quotes", "quotes", "quotes", None, None, yearly=False),
    Kind("trades", "trades", None, None, None, yearly=False),
)

#: The folder names (``bars/1s`` ... ``trades``).
FOLDERS: tuple[str, ...] = tuple(k.folder for k in ALL)
#: The bar timeframes (``1s``, ``1m``, ``1d``).
TIMEFRAMES: tuple[str, ...] = tuple(k.short for k in ALL if k.is_bars)
#: The SQL views, by view name.
VIEWS: dict[str, Kind] = {k.view: k for k in ALL if k.view is not None}

_BY_NAME: dict[str, Kind] = {}
for _k in ALL:
    for _name in (_k.folder, _k.short, _k.view):
        if _name is not None:
            _BY_NAME[_name] = _k


_INTERVAL = re.compile(r"^(?:bars/)?([1-9][0-9]*)(s|m|h)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}


def interval_name(seconds: int) -> str:
    """The one name of a bar interval of ``seconds``: the largest whole unit (the folder is ``bars/<name>``).

    Example:
        >>> interval_name(300), interval_name(5), interval_name(7200)
        ('5m', '5s', '2h')
    """
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


@lru_cache(maxsize=256)
def _interval_kind(name: str) -> Kind | None:
    """The kind of bars of another interval (``5s``, ``bars/15m``); None when ``name`` is not one."""
    match = _INTERVAL.match(name)
    if match is None:
        return None
    seconds = int(match[1]) * _UNIT_SECONDS[match[2]]
    if seconds >= 86_400:
        return None
    short = interval_name(seconds)
    if short != f"{match[1]}{match[2]}":
        raise InvalidInputError(f"bar interval {name!r}: its lake name is {short} (folder bars/{short})")
    if short in _BY_NAME:
        return _BY_NAME[short]
    return Kind(f"bars/{short}", short, None, None, seconds, yearly=False)


def of(name: str) -> Kind:
    """The kind any of its names stands for: folder, short name or SQL view (``bars/1m``, ``1m``, ``bars_1m``), or
    bars of another interval under a day (``5s``, ``bars/15m``).

    Example:
        >>> of("quotes").folder
        'quotes'
        >>> of("5s").folder, of("bars/15m").bar_seconds
        ('bars/5s', 900)

    Raises:
        InvalidInputError: a name no kind has, or another spelling of an interval (``60s``: use ``1m``).
    """
    found = _BY_NAME.get(name) if isinstance(name, str) else None
    if found is None and isinstance(name, str):
        found = _interval_kind(name)
    if found is None:
        raise InvalidInputError(
            f"unknown lake kind {name!r}: use one of {', '.join(FOLDERS)} (or 1s, 1m, 1d), or bars/<interval> for "
            "bars of another interval under a day (bars/5s, bars/15m, bars/1h)"
        )
    return found


def with_intervals(bar_folders: Iterable[str]) -> tuple[str, ...]:
    """The kind folders of a lake: the table's (:data:`FOLDERS`), then the ``bars/<interval>`` folders among
    ``bar_folders`` (names found under ``bars/``, e.g. ``5s``) that hold another interval, sorted by interval.

    Example:
        >>> with_intervals(["1m", "15m", "5s", "notes"])[-2:]
        ('bars/5s', 'bars/15m')
    """
    extra: dict[str, Kind] = {}
    for name in bar_folders:
        try:
            found = _interval_kind(name)
        except InvalidInputError:
            continue
        if found is not None and found.folder not in FOLDERS:
            extra[found.folder] = found
    return FOLDERS + tuple(sorted(extra, key=lambda f: extra[f].bar_seconds or 0))


def bar_kind(timeframe: str) -> Kind:
    """The bar kind of a timeframe (``1s``, ``1m``, ``1d``, another interval under a day such as ``5s``, or the
    folder name).

    Example:
        >>> bar_kind("1d").folder, bar_kind("15m").folder
        ('bars/1d', 'bars/15m')

    Raises:
        InvalidInputError: for anything but a bar kind.
    """
    found = _BY_NAME.get(timeframe) if isinstance(timeframe, str) else None
    if found is None and isinstance(timeframe, str):
        found = _interval_kind(timeframe)
    if found is None or not found.is_bars:
        raise InvalidInputError(
            f"unknown timeframe {timeframe!r}: the lake stores 1s, 1m and 1d bars and bars of any interval of "
            "whole seconds under a day (5s, 15m, 1h)"
        )
    return found


def api_timeframe(name: str) -> str:
    """Alpaca's bar timeframe of a kind fetched as bars (``1m`` -> ``1Min``, ``1d`` -> ``1Day``).

    Example:
        >>> api_timeframe("1d")
        '1Day'

    Raises:
        InvalidInputError: the kind is not fetched from Alpaca's bars endpoint.
    """
    found = of(name)
    if found.api_timeframe is None:
        raise InvalidInputError(f"{found.folder} is not fetched as bars from the API")
    return found.api_timeframe
