"""Gaps as work: the New York trading days a lake lacks, per symbol, in the form an importer consumes.

:func:`gaps` turns :func:`ticklake.lake.coverage.coverage` into ``{symbol: [date, ...]}`` (a :class:`Gaps`, which is a
``dict``): the missing days and, by default, the partial ones (a partial day is re-imported whole, replacing it).
Days before a symbol's first data are left out unless ``include_before_first=True``. :meth:`Gaps.ranges` groups
consecutive trading days of one status into :class:`GapRange` rows for printing (a weekend or holiday inside a run
does not split it).

For an importer (``import-api --fill-gaps``): each date is one (symbol, New York trading day) unit to download
whole and write with ``replace`` of that day, so a partial day is replaced exactly; ``kind`` accepts the import
kinds ``1s``, ``1m``, ``1d`` as well as ``quotes`` and ``trades``. A day the source has no data for (a halted
symbol) stays missing, so a second fill asks for it again unless the importer remembers it.

Example:
    >>> gaps = lake.gaps("bars/1m", ["AAPL", "MSFT"], "2024-01-02", "2024-02-29")
    >>> dict(gaps)
    {'MSFT': [datetime.date(2024, 2, 5), datetime.date(2024, 2, 6), datetime.date(2024, 2, 7)]}
    >>> [str(r) for r in gaps.ranges()]
    ['MSFT 2024-02-05..2024-02-07 missing (3 trading days)']
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ticklake.lake import kinds
from ticklake.lake.coverage import DEFAULT_EDGE_MINUTES, DEFAULT_MIN_FRACTION, coverage
from ticklake.lake.storage import LocalStorage, ObjectStorage


@dataclass(frozen=True)
class GapRange:
    """A run of consecutive NYSE trading days of one symbol with one status, both ends inclusive."""

    symbol: str
    status: str
    first: dt.date
    last: dt.date
    days: int

    def __str__(self) -> str:
        span = str(self.first) if self.first == self.last else f"{self.first}..{self.last}"
        plural = "day" if self.days == 1 else "days"
        return f"{self.symbol} {span} {self.status} ({self.days} trading {plural})"


class Gaps(dict[str, list[dt.date]]):
    """``{symbol: sorted New York trading dates to import}``, only symbols with at least one gap.

    Attributes:
        kind: the lake kind (``bars/1m``, ...).
        table: the coverage rows behind it (``symbol, date, status, reason, ...``), one per gap day.
    """

    def __init__(self, kind: str, table: pd.DataFrame) -> None:
        super().__init__()
        self.kind = kind
        self.table = table.reset_index(drop=True)
        for symbol, part in self.table.groupby("symbol", sort=False):
            self[str(symbol)] = [d.date() for d in part["date"]]

    @property
    def days(self) -> int:
        """The number of (symbol, day) gaps.

        Example:
            >>> lake.gaps("bars/1d").days
            3
        """
        return sum(len(v) for v in self.values())

    def ranges(self) -> list[GapRange]:
        """The gaps as runs of consecutive trading days with one status, in symbol then date order.

        Example:
            >>> [str(r) for r in lake.gaps("bars/1d").ranges()]
            ['MSFT 2024-02-05..2024-02-07 missing (3 trading days)']
        """
        if self.table.empty:
            return []
        table = self.table
        sym = table["symbol"].to_numpy()
        status = table["status"].astype(str).to_numpy()
        index = table["day_index"].to_numpy()
        # A run breaks where the symbol or the status changes or a trading day is skipped.
        breaks = np.ones(len(table), bool)
        breaks[1:] = (sym[1:] != sym[:-1]) | (status[1:] != status[:-1]) | (index[1:] != index[:-1] + 1)
        starts = np.flatnonzero(breaks)
        ends = np.append(starts[1:], len(table)) - 1
        dates = table["date"]
        return [
            GapRange(str(sym[a]), str(status[a]), dates.iloc[a].date(), dates.iloc[b].date(), int(b - a + 1))
            for a, b in zip(starts.tolist(), ends.tolist(), strict=True)
        ]


def gaps(
    storage: LocalStorage | ObjectStorage,
    kind: str,
    symbols: str | Iterable[str] | None = None,
    start: Any = None,
    end: Any = None,
    *,
    include_partial: bool = True,
    include_before_first: bool = False,
    min_fraction: float = DEFAULT_MIN_FRACTION,
    edge_minutes: float = DEFAULT_EDGE_MINUTES,
    deep: bool = False,
) -> Gaps:
    """See :meth:`ticklake.Lake.gaps`.

    Example:
        >>> gaps(Lake("data/parquet"), "bars/1m", "AAPL", "2024-01-02", "2024-01-31")
        {}
    """
    kind = kinds.of(kind).folder
    frame = coverage(
        storage, kind, symbols, start, end, min_fraction=min_fraction, edge_minutes=edge_minutes, deep=deep
    )
    # Position of each day in the trading calendar, so that runs can skip weekends and holidays.
    trading = pd.DatetimeIndex(frame["date"].unique()).sort_values()
    frame = frame.assign(day_index=trading.get_indexer(pd.DatetimeIndex(frame["date"])))
    wanted = ["missing"] + (["partial"] if include_partial else []) + (["before_first"] if include_before_first else [])
    chosen = frame[frame["status"].isin(wanted)]
    return Gaps(kind, chosen)
