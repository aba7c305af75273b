"""Where lake files live (SPEC §1): the kinds, file names, and which files can hold a time range.

The period rule itself (New York date decides the month; daily bars: the label's year) lives in Rust; this module
asks it through ``_core.period_of_ns`` so the rule exists in exactly one place.

Example:
    >>> from ticklake.lake.layout import file_path
    >>> file_path("data/parquet", "bars/1m", "AAPL", "2024-01").as_posix()
    'data/parquet/bars/1m/AAPL.2024-01.parquet'
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ticklake import _core
from ticklake.exceptions import InvalidInputError
from ticklake.lake import kinds

_NAME = re.compile(r"^(?P<symbol>[A-Z0-9][A-Z0-9.\-]{0,9})\.(?P<period>\d{4}(?:-\d{2})?)\.parquet$")


def check_symbol(symbol: str) -> str:
    """Returns ``symbol`` when it is a valid lake symbol (SPEC §1), else raises before any path is built.

    Example:
        >>> check_symbol("BRK.B")
        'BRK.B'

    Raises:
        InvalidInputError: for anything but 1-10 characters of ``A-Z 0-9 . -`` (``../x``, ``A/B``, ``aapl``, ...).
    """
    if not isinstance(symbol, str):
        raise InvalidInputError(f"symbol must be a string, got {type(symbol).__name__}")
    _core.check_symbol(symbol)
    return symbol


def parse_symbols(symbols: str | Iterable[str]) -> list[str]:
    """The symbols a caller gave, checked: a string is one symbol or several separated by commas; an iterable gives
    one symbol per item. Blanks around names are dropped, repeats kept once, the order kept.

    Example:
        >>> parse_symbols("AAPL, MSFT,AAPL")
        ['AAPL', 'MSFT']

    Raises:
        InvalidInputError: no symbols, an empty name (``"AAPL,,MSFT"``), or a name that is not a lake symbol.
    """
    if isinstance(symbols, str):
        names = [s.strip() for s in symbols.split(",")]
    else:
        try:
            names = [s.strip() if isinstance(s, str) else s for s in symbols]
        except TypeError:
            raise InvalidInputError(f"symbols must be a string or an iterable of strings, got {symbols!r}") from None
    if not names or (len(names) == 1 and names[0] == ""):
        raise InvalidInputError("no symbols given")
    if "" in names:
        raise InvalidInputError(f"an empty symbol name in {symbols!r}")
    return [check_symbol(s) for s in dict.fromkeys(names)]


def file_path(root: str | os.PathLike[str], kind: str, symbol: str, period: str) -> Path:
    """The path of one lake file.

    Example:
        >>> file_path("lake", "bars/1d", "AAPL", "2024").as_posix()
        'lake/bars/1d/AAPL.2024.parquet'
    """
    check_symbol(symbol)
    kinds.of(kind)
    return Path(root, kind, f"{symbol}.{period}.parquet")


@dataclass(frozen=True)
class FileName:
    """A lake file name taken apart: ``AAPL.2024-01.parquet`` -> symbol ``AAPL``, period ``2024-01``."""

    symbol: str
    period: str


def parse_name(name: str) -> FileName | None:
    """Parses a lake file name, or returns None when it is not one (anchored, so ``BRK.B.2024-01`` works).

    Example:
        >>> parse_name("BRK.B.2024-01.parquet")
        FileName(symbol='BRK.B', period='2024-01')
    """
    match = _NAME.match(name)
    if match is None:
        return None
    return FileName(match["symbol"], match["period"])


def periods(kind: str, start_ns: int, end_ns: int) -> Iterator[str]:
    """The period keys of the files that can hold rows in ``[start_ns, end_ns)``.

    Example:
        >>> list(periods("bars/1m", 1704067200 * 10**9, 1709251200 * 10**9))
        ['2023-12', '2024-01', '2024-02']
    """
    yearly = kinds.of(kind).yearly
    if end_ns <= start_ns:
        return
    key, _, end = _core.period_of_ns(start_ns, yearly)
    while True:
        yield key
        if end >= end_ns:
            return
        key, _, end = _core.period_of_ns(end, yearly)


def period_bounds(kind: str, period: str) -> tuple[int, int]:
    """``[start, end)`` of a period in UTC nanoseconds.

    Example:
        >>> period_bounds("bars/1d", "2024")
        (1704067200000000000, 1735689600000000000)
    """
    return _core.period_bounds(period, kinds.of(kind).yearly)
