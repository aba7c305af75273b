"""The coverage picture: a symbol x trading day heat map of :func:`ticklake.lake.coverage.coverage` (matplotlib).

Cells are NYSE trading days only (weekends and holidays have no column). Full days are pale green, partial days
orange, missing days red, days before a symbol's first data light grey. When the days do not fit the width (more
than ``max_columns``, about two pixels each), they are aggregated into weeks, then months, and the chart says so;
an aggregated cell shows its worst day, so a single missing day never disappears, and where cells are smaller
than 8 pixels each missing or partial cell is also ringed in its colour. Month (or year) starts are
marked by lines and ticks. Up to a few hundred symbols get a label each; beyond that every k-th is labelled.

Needs the ``plot`` extra (``pip install 'ticklake[plot]'``).

Example:
    >>> fig = lake.coverage_figure("bars/1m")
    >>> fig.savefig("coverage.png")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ticklake.exceptions import InvalidInputError, MissingExtraError
from ticklake.lake.coverage import STATUSES

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Colour of each status, in :data:`ticklake.lake.coverage.STATUSES` order.
COLOURS: dict[str, str] = {
    "full": "#cfe8cf",
    "partial": "#ff9f1c",
    "missing": "#e31a1c",
    "before_first": "#ececec",
}
LABELS = {"full": "full", "partial": "partial", "missing": "missing", "before_first": "before first data"}
PLOT_EXTRA = "plotting needs the plot extra: pip install 'ticklake[plot]'"
DPI = 100
WIDTH_IN = 14.0
RING_BELOW_PX = 8.0
MAX_RINGS = 20_000
_SEVERITY = np.array([0, 1, 2, -1])  # full, partial, missing, before_first (ignored next to real days)


def require(module: str) -> None:
    """Raises :class:`MissingExtraError` with the install line when a plotting module cannot be imported.

    Example:
        >>> require("matplotlib")
    """
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as err:
        raise MissingExtraError(PLOT_EXTRA) from err


def _buckets(dates: pd.DatetimeIndex, max_columns: int) -> tuple[str, np.ndarray, pd.DatetimeIndex]:
    """The coarsest-needed grouping of trading days (day, week, month) that fits ``max_columns``.

    Returns the unit, each day's column, and each column's first day.
    """
    for unit, keys in (
        ("day", dates),
        ("week", dates.to_period("W-SUN").start_time),
        ("month", dates.to_period("M").start_time),
        ("year", dates.to_period("Y").start_time),
    ):
        starts = pd.DatetimeIndex(keys).unique()
        if len(starts) <= max_columns or unit == "year":
            column = starts.get_indexer(pd.DatetimeIndex(keys))
            first_days = pd.DatetimeIndex(dates[np.unique(column, return_index=True)[1]])
            return unit, column, first_days
    raise AssertionError("unreachable")


def coverage_figure(frame: pd.DataFrame, *, kind: str = "", max_columns: int = 600, title: str | None = None) -> Figure:
    """A symbol x trading day heat map of a coverage frame (:meth:`ticklake.Lake.coverage`).

    Args:
        frame: the coverage rows (``symbol``, ``date``, ``status``).
        kind: shown in the title.
        max_columns: most day columns drawn before days are aggregated into weeks, then months.
        title: replaces the first title line.

    Returns:
        A ``matplotlib.figure.Figure`` (not registered with pyplot; it shows in a notebook and saves with
        ``fig.savefig(path)``).

    Raises:
        MissingExtraError: matplotlib is not installed.
        InvalidInputError: the frame is empty.

    Example:
        >>> coverage_figure(lake.coverage("bars/1m"), kind="bars/1m").savefig("coverage.png")
    """
    require("matplotlib")
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    if frame.empty:
        raise InvalidInputError("nothing to draw: the coverage is empty (no files of this kind in the range)")
    symbols = list(dict.fromkeys(frame["symbol"]))
    dates = pd.DatetimeIndex(pd.unique(frame["date"])).sort_values()
    codes = np.full((len(symbols), len(dates)), 3, np.int64)
    rows = pd.Index(symbols).get_indexer(frame["symbol"])
    cols = dates.get_indexer(pd.DatetimeIndex(frame["date"]))
    codes[rows, cols] = pd.Categorical(frame["status"], categories=list(STATUSES)).codes
    unit, column, firsts = _buckets(dates, max_columns)
    cells = _aggregate(codes, column, len(firsts))

    n_sym = cells.shape[0]
    row_px = max(3.0, min(22.0, 1100.0 / n_sym))
    height = max(3.2, (n_sym * row_px) / DPI + 1.9)
    fig = Figure(figsize=(WIDTH_IN, height), dpi=DPI)
    ax = fig.add_axes((0.09, 1.05 / height, 0.89, 1 - 1.75 / height))
    cmap = ListedColormap([COLOURS[s] for s in STATUSES])
    ax.imshow(cells, aspect="auto", interpolation="nearest", cmap=cmap, norm=BoundaryNorm(np.arange(-0.5, 4), cmap.N))
    _mark_months(ax, firsts, n_sym)
    # Thin white separators where cells are wide enough to count them.
    plot_px = WIDTH_IN * DPI * 0.89
    col_px = plot_px / len(firsts)
    ringed = min(col_px, row_px) < RING_BELOW_PX
    if ringed:
        _ring_gaps(ax, cells)
    if col_px >= 6:
        ax.set_xticks(np.arange(0.5, len(firsts) - 1), minor=True)
        ax.grid(which="minor", axis="x", color="white", linewidth=0.6)
    if row_px >= 8:
        ax.set_yticks(np.arange(0.5, n_sym - 1), minor=True)
        ax.grid(which="minor", axis="y", color="white", linewidth=0.6)
    ax.tick_params(which="minor", length=0)
    every = max(1, int(np.ceil(n_sym * 11 / (n_sym * row_px))))  # about 11 px per label
    ax.set_yticks(np.arange(0, n_sym, every), [symbols[i] for i in range(0, n_sym, every)])
    ax.tick_params(axis="y", labelsize=8 if row_px >= 11 else 7, length=0)
    if every > 1:
        ax.set_ylabel(f"{n_sym} symbols (every {every}th labelled)", fontsize=8)
    counts = pd.Series(codes.ravel()).value_counts()
    handles = [
        Patch(facecolor=COLOURS[s], edgecolor="#888888", label=f"{LABELS[s]} ({int(counts.get(i, 0)):,})")
        for i, s in enumerate(STATUSES)
    ]
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(0, -0.5 / (height - 1.75)),
        ncol=4,
        fontsize=8,
        frameon=False,
        borderaxespad=0,
    )
    span = f"{dates[0].date()}..{dates[-1].date()}"
    plural = "s" if n_sym != 1 else ""
    what = f"{kind} coverage" if kind else "coverage"
    head = title or f"{what}: {n_sym} symbol{plural} x {len(dates)} NYSE trading days, {span}"
    cell = (
        "one cell = one trading day (weekends and holidays have no column)"
        if unit == "day"
        else f"days aggregated: one cell = one {unit}, coloured by its worst trading day"
    )
    if ringed:
        cell += "; small gap cells are ringed"
    ax.set_title(f"{head}\n{cell}", fontsize=10, loc="left")
    return fig


def _ring_gaps(ax: Axes, cells: np.ndarray) -> None:
    """Rings missing and partial cells that are too small to see on their own (at most :data:`MAX_RINGS`)."""
    for status in ("partial", "missing"):
        rows, cols = np.nonzero(cells == STATUSES.index(status))
        if 0 < len(rows) <= MAX_RINGS:
            ax.scatter(cols, rows, s=60, marker="o", facecolors="none", edgecolors=COLOURS[status], linewidths=1.4)


def _aggregate(codes: np.ndarray, column: np.ndarray, n_col: int) -> np.ndarray:
    """Per cell the worst status of its days; a cell whose days are all before_first stays before_first."""
    worst = np.full((codes.shape[0], n_col), -1, np.int64)
    np.maximum.at(worst.T, column, _SEVERITY[codes].T)
    out: np.ndarray = np.where(worst < 0, 3, worst)
    return out


def _mark_months(ax: Axes, firsts: pd.DatetimeIndex, n_sym: int) -> None:
    """Lines at month starts (year starts when there are many months) and ticks labelling them."""
    month = pd.DatetimeIndex(firsts.to_period("M").start_time)
    starts = np.flatnonzero(np.r_[True, month[1:] != month[:-1]])
    if len(starts) > 24:
        year = firsts.year
        starts = np.flatnonzero(np.r_[True, year[1:] != year[:-1]])
        labels = [str(firsts[int(i)].year) for i in starts]
    else:
        labels = [firsts[int(i)].strftime("%b\n%Y" if i == 0 or firsts[int(i)].month == 1 else "%b") for i in starts]
    for x in starts[1:]:
        ax.axvline(x - 0.5, color="#333333", linewidth=0.8, alpha=0.7)
    ax.set_xticks(starts - 0.5, labels, fontsize=8, ha="left")
    ax.set_xlim(-0.5, len(firsts) - 0.5)
    ax.set_ylim(n_sym - 0.5, -0.5)
