"""The coverage picture and candle charts, rendered headless and checked pixel by pixel (issue 17)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
import ticklake
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from ticklake.candles import DOWN, UP, resample_ohlcv
from ticklake.coverage_chart import COLOURS, coverage_figure
from ticklake.lake.coverage import STATUSES

from tests.lake_data import bars_table, daily_bars, ny_grid, quotes_table

D = dt.date
SHADE = "#ececec"


def pixels(fig: Figure) -> np.ndarray:
    """The figure rendered by Agg, as an (height, width, 3) uint8 array."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def rgb(colour: str) -> np.ndarray:
    return np.round(np.array(to_rgb(colour)) * 255).astype(np.uint8)


def colour_at(image: np.ndarray, ax: Axes, x: float, y: float) -> np.ndarray:
    """The pixel under data coordinates (x, y) of ``ax``."""
    px, py = ax.transData.transform((x, y))
    return image[image.shape[0] - 1 - round(py), round(px)]


def count(image: np.ndarray, colour: str, box: tuple[float, float, float, float] | None = None) -> int:
    """Pixels of exactly ``colour`` (inside a display-coordinate box ``x0, y0, x1, y1`` when given)."""
    if box is not None:
        h = image.shape[0]
        x0, y0, x1, y1 = box
        image = image[h - int(y1) : h - int(y0), int(x0) : int(x1)]
    return int(np.all(image == rgb(colour), axis=-1).sum())


def grid(days: list[dt.date], start: str = "04:00", end: str = "20:00", step: str = "1min") -> pd.DatetimeIndex:
    parts = [ny_grid(d, start, end, step) for d in days]
    return parts[0].append(parts[1:]) if len(parts) > 1 else parts[0]


@pytest.fixture
def lake(tmp_path: Path) -> ticklake.Lake:
    """1m bars of AAPL and MSFT, 2024-11-18..2024-11-29; MSFT misses 11-21; AAPL's 11-26 stops at noon."""
    lake = ticklake.Lake(tmp_path)
    days = ticklake.sessions.trading_days(D(2024, 11, 18), D(2024, 11, 29))
    lake.write_bars(bars_table("MSFT", grid([d for d in days if d != D(2024, 11, 21)]), seed=1), "1m")
    aapl = grid([d for d in days if d != D(2024, 11, 26)]).append(grid([D(2024, 11, 26)], "04:00", "12:00"))
    lake.write_bars(bars_table("AAPL", aapl.sort_values(), seed=2), "1m")
    lake.write_quotes(quotes_table("AAPL", grid(days, "04:00", "20:00", "5s"), seed=3))
    return lake


# ------------------------------------------------------------------------------------------------ coverage


def test_coverage_picture_shows_the_known_gap_in_its_cell(lake: ticklake.Lake) -> None:
    fig = lake.coverage_figure("bars/1m")
    image = pixels(fig)
    assert image.shape[:2] == (round(fig.get_figheight() * 100), 1400)
    ax = fig.axes[0]
    days = ticklake.sessions.trading_days(D(2024, 11, 18), D(2024, 11, 29))
    assert len(days) == 9  # Thanksgiving has no column
    symbols = ["AAPL", "MSFT"]  # rows in the order the lake lists them
    assert [t.get_text() for t in ax.get_yticklabels()] == symbols
    # The known missing day (MSFT, 11-21) is red at its cell, the partial day (AAPL, 11-26) orange, others green.
    for symbol, day, status in [
        ("MSFT", D(2024, 11, 21), "missing"),
        ("AAPL", D(2024, 11, 26), "partial"),
        ("AAPL", D(2024, 11, 21), "full"),
        ("MSFT", D(2024, 11, 29), "full"),
    ]:
        got = colour_at(image, ax, days.index(day), symbols.index(symbol))
        assert np.abs(got.astype(int) - rgb(COLOURS[status])).max() <= 2, (symbol, day, status, got)
    # Exactly one cell is red: its area is about one cell's.
    cell_px = (ax.get_window_extent().width / len(days)) * (ax.get_window_extent().height / len(symbols))
    red = count(image, COLOURS["missing"])
    assert 0.7 * cell_px < red < 1.1 * cell_px + 200  # + the legend swatch
    assert "one cell = one trading day" in ax.get_title(loc="left")


def synthetic_coverage(
    n_symbols: int, first: dt.date, last: dt.date, gap: tuple[int, dt.date], *, late: int = 0
) -> pd.DataFrame:
    """A coverage frame: all full but one missing (symbol row, day); the first ``late`` symbols start a year late."""
    days = pd.DatetimeIndex(ticklake.sessions.trading_days(first, last))
    symbols = [f"S{i:03d}" for i in range(n_symbols)]
    frame = pd.DataFrame(
        {
            "symbol": np.repeat(symbols, len(days)),
            "date": np.tile(days.to_numpy(), n_symbols),
            "status": pd.Categorical(["full"] * (n_symbols * len(days)), categories=list(STATUSES)),
        }
    )
    early = frame["symbol"].isin(symbols[:late]) & (frame["date"] < pd.Timestamp(first) + pd.Timedelta(days=365))
    frame.loc[early, "status"] = "before_first"
    row, day = gap
    frame.loc[(frame["symbol"] == symbols[row]) & (frame["date"] == pd.Timestamp(day)), "status"] = "missing"
    return frame


def test_ten_years_of_500_symbols_aggregate_into_weeks_and_keep_a_single_missing_day(tmp_path: Path) -> None:
    frame = synthetic_coverage(500, D(2015, 1, 2), D(2024, 12, 31), (123, D(2019, 6, 12)), late=3)
    fig = coverage_figure(frame, kind="bars/1d")
    ax = fig.axes[0]
    title = ax.get_title(loc="left")
    assert "500 symbols x 2516 NYSE trading days" in title
    assert "days aggregated: one cell = one week, coloured by its worst trading day" in title
    image = pixels(fig)
    assert image.shape[1] == 1400 and 1400 <= image.shape[0] <= 1800
    weeks = pd.DatetimeIndex(frame["date"].unique()).to_period("W-SUN").unique()
    column = list(weeks).index(pd.Timestamp("2019-06-12").to_period("W-SUN"))
    assert 500 < len(weeks) <= 600
    got = colour_at(image, ax, column, 123)
    assert np.abs(got.astype(int) - rgb(COLOURS["missing"])).max() <= 2
    # The cell is about 2 x 3 pixels; the ring around it makes the gap stand out.
    px, py = ax.transData.transform((column, 123))
    box = (px - 12, py - 12, px + 12, py + 12)
    assert count(image, COLOURS["missing"], box) > 30
    assert "small gap cells are ringed" in title
    assert np.abs(colour_at(image, ax, 10, 1).astype(int) - rgb(COLOURS["before_first"])).max() <= 2
    assert np.abs(colour_at(image, ax, column, 110).astype(int) - rgb(COLOURS["full"])).max() <= 2
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert 40 <= len(labels) <= 200 and labels[0] == "S000"  # every k-th symbol is labelled
    assert "labelled" in ax.get_ylabel()
    assert [t.get_text() for t in ax.get_xticklabels()][:3] == ["2015", "2016", "2017"]  # years marked


def test_one_symbol_and_a_month_keep_days(tmp_path: Path) -> None:
    frame = synthetic_coverage(1, D(2024, 2, 1), D(2024, 2, 29), (0, D(2024, 2, 14)))
    fig = coverage_figure(frame)
    ax = fig.axes[0]
    assert "one cell = one trading day" in ax.get_title(loc="left")
    image = pixels(fig)
    assert image.shape[0] >= 300  # a readable strip, not a line
    days = ticklake.sessions.trading_days(D(2024, 2, 1), D(2024, 2, 29))
    got = colour_at(image, ax, days.index(D(2024, 2, 14)), 0)
    assert np.abs(got.astype(int) - rgb(COLOURS["missing"])).max() <= 2


def test_an_empty_coverage_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ticklake.InvalidInputError, match="nothing to draw"):
        ticklake.Lake(tmp_path).coverage_figure("bars/1m")


# ------------------------------------------------------------------------------------------------- candles


def test_candles_show_up_and_down_colours_and_the_session_shading(lake: ticklake.Lake) -> None:
    fig = lake.plot("AAPL", "2024-11-25", "2024-11-25", session="all")
    image = pixels(fig)
    assert image.shape[:2] == (900, 1600)
    price = fig.axes[0].get_window_extent().extents
    assert count(image, UP, tuple(price)) > 300
    assert count(image, DOWN, tuple(price)) > 300
    assert count(image, SHADE, tuple(price)) > 50_000  # pre- and post-market shaded
    title = fig.texts[0].get_text()
    assert "AAPL bars/1m, America/New_York, session all, 2024-11-25" in title
    assert "resampled for display: one candle = 5 min" in title  # 960 bars do not fit 1600 px
    regular = pixels(lake.plot("AAPL", "2024-11-25", "2024-11-25", session="regular"))
    assert count(regular, SHADE, tuple(price)) < 2_000  # nothing outside the session to shade
    assert count(regular, UP, tuple(price)) > 300


def test_resampling_is_the_ohlc_of_the_bucket() -> None:
    stamps = pd.date_range("2024-01-02 09:30", periods=6, freq="1min")
    bars = pd.DataFrame(
        {
            "open": [10.0, 11, 12, 13, 14, 15],
            "high": [10.5, 13, 12.5, 16, 14.5, 15.5],
            "low": [9.5, 10.8, 11, 12.5, 13, 14.8],
            "close": [11.0, 12, 11.5, 14, 14.2, 15.1],
            "volume": [100, 200, 300, 400, 500, 600],
        }
    )
    keys = np.asarray(stamps.floor("3min"))
    got = resample_ohlcv(bars, keys)
    assert got.to_dict("list") == {
        "Open": [10.0, 13.0],
        "High": [13.0, 16.0],
        "Low": [9.5, 12.5],
        "Close": [11.5, 15.1],
        "Volume": [600, 1500],
    }
    assert list(got.index) == [pd.Timestamp("2024-01-02 09:30"), pd.Timestamp("2024-01-02 09:33")]


def test_the_spread_panel_is_the_mean_spread_per_candle(lake: ticklake.Lake) -> None:
    fig = lake.plot("AAPL", "2024-11-25 09:30", "2024-11-25 10:30", session="regular", spread=True)
    line = fig.axes[4].get_lines()[0]  # price, volume and spread panels each have a twin axes
    quotes = lake.read_quotes("AAPL", "2024-11-25 09:30", "2024-11-25 10:30", tz="America/New_York")
    expected = quotes.groupby(quotes["timestamp"].dt.floor("1min"))["spread"].mean().to_numpy()
    assert len(expected) == 60
    np.testing.assert_allclose(np.asarray(line.get_ydata(), float), expected)
    assert "one candle = one 1m bar" in fig.texts[0].get_text()
    with pytest.raises(ticklake.InvalidInputError, match="no quotes for MSFT"):
        lake.plot("MSFT", "2024-11-25", "2024-11-25", spread=True)


def test_daily_candles_keep_their_trading_dates(tmp_path: Path) -> None:
    lake = ticklake.Lake(tmp_path)
    days = ticklake.sessions.trading_days(D(2024, 1, 2), D(2024, 3, 28))
    lake.write_bars(daily_bars("AAPL", days), "1d")
    fig = lake.plot("AAPL", "2024-01-01", "2024-03-31", kind="1d", session="regular")  # days have no session
    bodies = [c for c in fig.axes[0].collections if len(c.get_paths()) == len(days)]
    assert bodies, [len(c.get_paths()) for c in fig.axes[0].collections]  # one candle per trading day
    assert "AAPL bars/1d, 2024-01-02 to 2024-03-28" in fig.texts[0].get_text()  # 00:00 UTC labels, no shift
    image = pixels(fig)
    assert count(image, UP) > 200 and count(image, DOWN) > 200


def test_candle_errors_are_clear(lake: ticklake.Lake) -> None:
    with pytest.raises(ticklake.InvalidInputError, match="no bars/1m rows for AAPL"):
        lake.plot("AAPL", "2023-01-03", "2023-01-03")
    with pytest.raises(ticklake.InvalidInputError, match="candles are drawn from bars"):
        lake.plot("AAPL", "2024-11-25", "2024-11-25", kind="quotes")
    with pytest.raises(ticklake.InvalidInputError, match="unknown session"):
        lake.plot("AAPL", "2024-11-25", "2024-11-25", session="lunch")  # type: ignore[arg-type]
