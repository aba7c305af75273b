"""The kinds of lake data and every name each one goes by, in one table.

A kind is written ``bars/1m`` in the lake's folders and in :meth:`ticklake.Lake.files`; ``1m`` is its short name
(``import-api 1m``, ``read_bars(..., "1m")``); ``1Min`` is Alpaca's timeframe; ``bars_1m`` is its SQL view and the
default table name of ``export-to-parquet``. :func:`of` takes any of these names and returns the one
:class:`Kind`. What the files hold (the stored schema, the period rule) is Rust's (``_core.lake_schema``,
``_core.period_of_ns``): this table says which rule applies, not how.

Example:
    >>> from ticklake.lake import kinds
    >>> kinds.of("1m").folder, kinds.of("bars_1m").api_timeframe, kinds.of("bars/1d").yearly
    ('bars/1m', '1Min', True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ticklake.exceptions import InvalidInputError

#: A bar timeframe the lake stores.
Timeframe = Literal["1s", "1m", "1d"]


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


def of(name: str) -> Kind:
    """The kind any of its names stands for: folder, short name or SQL view (``bars/1m``, ``1m``, ``bars_1m``).

    Example:
        >>> of("quotes").folder
        'quotes'

    Raises:
        InvalidInputError: a name no kind has.
    """
    found = _BY_NAME.get(name) if isinstance(name, str) else None
    if found is None:
        raise InvalidInputError(
            f"unknown lake kind {name!r}: use one of {', '.join(FOLDERS)} (or 1s, 1m, 1d; build other bar "
            "intervals with ticklake.bars)"
        )
    return found


def bar_kind(timeframe: str) -> Kind:
    """The bar kind of a timeframe (``1s``, ``1m``, ``1d``, or the folder name).

    Example:
        >>> bar_kind("1d").folder
        'bars/1d'

    Raises:
        InvalidInputError: for anything but a bar kind.
    """
    found = _BY_NAME.get(timeframe) if isinstance(timeframe, str) else None
    if found is None or not found.is_bars:
        raise InvalidInputError(
            f"unknown timeframe {timeframe!r}: the lake stores 1s, 1m and 1d bars "
            "(build other intervals with ticklake.bars)"
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
