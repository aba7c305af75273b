"""Candle charts of lake bars (mplfinance on matplotlib): candles, volume beneath, optionally the best quote's spread.

- Candles are drawn side by side without the overnight and weekend gaps (mplfinance's ``show_nontrading=False``).
  Intraday charts shade the hours outside the regular session and draw a dashed line at each regular open and
  close (NYSE calendar, so early closes and DST are right), and a solid line where the New York date changes.
- When the range holds more bars than fit (about ``width_px / 3`` candles), bars are resampled for display into the
  smallest bucket that fits, aligned to the display zone's clock (1s bars: 2s, 5s, ...; minutes: 2, 5, 10, 15, 30
  minutes, 1 hour; then days, weeks, months). A bucket's candle is its bars' OHLC: open the first bar's open, high
  the highest high, low the lowest low, close the last close, volume the sum. The title says which bucket was used.
- The spread panel (``spread=True``) shows the mean best-quote spread of the quote seconds in each candle.

Needs the ``plot`` extra (``pip install 'ticklake[plot]'``).

Example:
    >>> fig = lake.plot("AAPL", "2024-01-10", "2024-01-10", kind="bars/1m", spread=True)
    >>> fig.savefig("aapl.png")
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from ticklake.coverage_chart import require
from ticklake.exceptions import InvalidInputError
from ticklake.lake import kinds
from ticklake.sessions import SESSIONS, session_windows

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


class LakeReads(Protocol):
    """What a candle chart reads from a lake (:class:`ticklake.Lake` is one)."""

    def read_bars(
        self, symbols: str, timeframe: Any, start: Any, end: Any, *, columns: list[str], tz: str, session: Any
    ) -> pd.DataFrame: ...

    def read_quotes(
        self, symbols: str, start: Any, end: Any, *, columns: list[str], tz: str, session: Any
    ) -> pd.DataFrame: ...


UP = "#26a69a"
DOWN = "#ef5350"
DPI = 100
#: Display buckets tried in order (seconds); after them whole days, weeks and months.
_INTRADAY_BUCKETS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
_CALENDAR_BUCKETS = (("1 day", "D"), ("1 week", "W-SUN"), ("1 month", "M"))
PX_PER_CANDLE = 3


@dataclass(frozen=True)
class Bucket:
    """A display bucket: ``seconds`` of wall clock (aligned to the display zone's midnight), or a calendar
    ``freq`` (``D``, ``W-SUN``, ``M``)."""

    name: str
    seconds: int = 0
    freq: str = ""

    def keys(self, local: pd.DatetimeIndex) -> np.ndarray:
        """Each wall-clock time's bucket start (naive datetime64[ns]).

        Example:
            >>> Bucket("5 min", seconds=300).keys(pd.DatetimeIndex(["2024-01-02 09:33"]))
            array(['2024-01-02T09:30:00.000000000'], dtype='datetime64[ns]')
        """
        ns = local.as_unit("ns").asi8
        if self.seconds:
            out: np.ndarray = (ns - ns % (self.seconds * 10**9)).astype("datetime64[ns]")
        else:
            out = local.to_period(self.freq).start_time.as_unit("ns").asi8.astype("datetime64[ns]")
        return out


def _label(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


def choose_bucket(local: pd.DatetimeIndex, base_seconds: int, max_candles: int) -> Bucket:
    """The smallest display bucket, no finer than the bars, that gives at most ``max_candles`` candles.

    Example:
        >>> choose_bucket(pd.date_range("2024-01-02 09:30", periods=390, freq="1min"), 60, 100).name
        '5 min'
    """
    candidates = [Bucket(_label(s), seconds=s) for s in _INTRADAY_BUCKETS if base_seconds <= s < 86_400]
    candidates += [Bucket(name, freq=freq) for name, freq in _CALENDAR_BUCKETS]
    for bucket in candidates:
        keys = bucket.keys(local)
        if int(np.count_nonzero(keys[1:] != keys[:-1])) + 1 <= max_candles:
            return bucket
    return candidates[-1]


def resample_ohlcv(frame: pd.DataFrame, keys: np.ndarray) -> pd.DataFrame:
    """OHLCV per display bucket: open first, high max, low min, close last, volume sum (rows in time order).

    Example:
        >>> resample_ohlcv(bars, keys)[["open", "close"]].head(1)
    """
    grouped = frame.groupby(keys, sort=False)
    out = pd.DataFrame(
        {
            "Open": grouped["open"].first(),
            "High": grouped["high"].max(),
            "Low": grouped["low"].min(),
            "Close": grouped["close"].last(),
            "Volume": grouped["volume"].sum(),
        }
    )
    out.index = pd.DatetimeIndex(out.index, name="time")
    return out


def candle_figure(
    lake: LakeReads,
    symbol: str,
    start: Any,
    end: Any,
    *,
    kind: str = "bars/1m",
    tz: str = "America/New_York",
    session: str = "all",
    spread: bool = False,
    width_px: int = 1600,
    height_px: int = 900,
) -> Figure:
    """See :meth:`ticklake.Lake.plot`.

    Example:
        >>> candle_figure(lake, "AAPL", "2024-01-10", "2024-01-10").savefig("aapl.png")
    """
    require("matplotlib")
    require("mplfinance")
    import matplotlib.pyplot as plt
    import mplfinance as mpf  # type: ignore[import-untyped]

    found = kinds.of(kind)
    kind = found.folder
    if found.bar_seconds is None:
        raise InvalidInputError(f"candles are drawn from bars (bars/1s, bars/1m, bars/1d), not {kind}")
    base_seconds = found.bar_seconds
    if session not in SESSIONS:
        raise InvalidInputError(f"unknown session {session!r}: use one of {', '.join(SESSIONS)}")
    if width_px < 300 or height_px < 300:
        raise InvalidInputError("the chart needs at least 300 x 300 pixels")
    daily = found.yearly
    timeframe = found.short
    # Daily bars are date labels at 00:00 UTC: their date is the trading date in any zone, and no session applies.
    bars = lake.read_bars(
        symbol,
        timeframe,
        start,
        end,
        columns=["timestamp", "open", "high", "low", "close", "volume"],
        tz="UTC" if daily else tz,
        session="all" if daily else session,
    )
    if bars.empty:
        raise InvalidInputError(f"no {kind} rows for {symbol} from {start} to {end} (session {session})")
    utc = pd.DatetimeIndex(bars["timestamp"]).tz_convert("UTC")
    local = pd.DatetimeIndex(bars["timestamp"]).tz_localize(None)
    max_candles = max(20, int(width_px * 0.85) // PX_PER_CANDLE)
    bucket = choose_bucket(local, base_seconds, max_candles)
    keys = bucket.keys(local)
    candles = resample_ohlcv(bars, keys)
    index = pd.DatetimeIndex(candles.index)
    bucket_utc = utc[np.r_[True, keys[1:] != keys[:-1]]]  # each candle's first bar, in UTC
    native = bucket.seconds == base_seconds or (found.yearly and bucket.name == "1 day")
    intraday = bool(bucket.seconds)

    panels: list[Any] = []
    ratios: tuple[float, ...] = (4, 1.3)
    if spread:
        spreads = _spreads(lake, symbol, start, end, tz, session, bucket, index)
        panels.append(mpf.make_addplot(spreads, panel=2, type="line", color="#5a5aa8", width=1, ylabel="spread"))
        ratios = (4, 1.3, 1.3)
    colours = mpf.make_marketcolors(up=UP, down=DOWN, inherit=True, alpha=1.0)
    style = mpf.make_mpf_style(
        base_mpf_style="default",
        marketcolors=colours,
        facecolor="white",
        gridstyle=":",
        gridcolor="#cccccc",
        # DejaVu Sans has no medium or semibold weight; asking for them only logs font warnings.
        rc={"font.weight": "normal", "axes.labelweight": "normal", "figure.titleweight": "normal", "font.size": 10},
    )
    extra: dict[str, Any] = {"addplot": panels} if panels else {}
    fig, axes = mpf.plot(
        candles,
        **extra,
        type="candle",
        volume=True,
        style=style,
        panel_ratios=ratios,
        figsize=(width_px / DPI, height_px / DPI),
        returnfig=True,
        warn_too_much_data=len(candles) + 1,
        datetime_format="%b %d %H:%M" if intraday else "%Y-%m-%d",
        xrotation=0,
        ylabel="price",
        ylabel_lower="volume",
        scale_padding={"left": 0.45, "right": 0.4, "top": 0.75, "bottom": 0.45},
    )
    plt.close(fig)  # returned to the caller, not kept by pyplot
    fig.set_dpi(DPI)
    price_axes: Axes = axes[0]
    axes[2].set_ylim(bottom=0)
    marked = []
    if intraday:
        marked = _mark_sessions(axes[::2], bucket_utc, index)
    how = (
        f"one candle = one {timeframe} bar"
        if native
        else f"resampled for display: one candle = {bucket.name} "
        "(open first, high max, low min, close last, volume sum)"
    )
    where = "" if daily else f" {tz}, session {session},"
    title = f"{symbol} {kind},{where} {candles.index[0]:%Y-%m-%d} to {candles.index[-1]:%Y-%m-%d}"
    notes = "; ".join([how, *marked])
    fig.suptitle(f"{title}\n{notes}", x=0.02, y=0.985, ha="left", fontsize=10)
    price_axes.set_xlim(-1, len(candles))
    figure: Figure = fig
    return figure


def _spreads(
    lake: LakeReads, symbol: str, start: Any, end: Any, tz: str, session: str, bucket: Bucket, index: pd.DatetimeIndex
) -> pd.Series:
    """Mean best-quote spread of the quote seconds in each candle's bucket (NaN where it has none)."""
    quotes = lake.read_quotes(symbol, start, end, columns=["timestamp", "spread"], tz=tz, session=session)
    if quotes.empty:
        raise InvalidInputError(f"no quotes for {symbol} from {start} to {end}: drop the spread panel or import them")
    keys = bucket.keys(pd.DatetimeIndex(quotes["timestamp"]).tz_localize(None))
    means = quotes["spread"].groupby(keys).mean()
    out: pd.Series = means.reindex(index).astype(float)
    return out


def _mark_sessions(axes: list[Axes], first_utc: pd.DatetimeIndex, index: pd.DatetimeIndex) -> list[str]:
    """Shades the time outside the regular session, dashes the opens and closes, and lines date changes."""
    starts = first_utc.as_unit("ns").asi8
    windows = session_windows("regular", int(starts[0]), int(starts[-1]))
    if len(windows) == 0:
        return ["no NYSE session in range"]
    pos_open = np.searchsorted(starts, windows[:, 0], side="left") - 0.5
    pos_close = np.searchsorted(starts, windows[:, 1], side="left") - 0.5
    n = len(index)
    dates = index.normalize()
    day_breaks = np.flatnonzero(dates[1:] != dates[:-1]) + 0.5
    # Outside the regular session: before the first open, between a close and the next open, after the last close.
    edges = np.concatenate([[-1.0], np.stack([pos_open, pos_close], axis=1).ravel(), [float(n)]])
    for ax in axes:
        for a, b in edges.reshape(-1, 2):
            if b > a:
                ax.axvspan(a, b, color="#ececec", zorder=0, linewidth=0)
        for x in np.unique(np.concatenate([pos_open, pos_close])):
            if 0 < x < n - 1:
                ax.axvline(x, color="#7a7a9a", linestyle="--", linewidth=0.8, zorder=1)
        for x in day_breaks:
            ax.axvline(x, color="#444444", linewidth=0.8, zorder=1)
    return ["shaded: outside the regular session", "dashed: regular open/close (NYSE calendar)"]
