"""``ticklake coverage``, ``gaps`` and ``plot`` end to end, the demo's pictures, and the missing plot extra."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
import ticklake
from matplotlib.colors import to_rgb
from ticklake import cli
from ticklake.candles import UP
from ticklake.coverage_chart import COLOURS

from tests.lake_data import bars_table, ny_grid, quotes_table

REPO = Path(__file__).resolve().parents[1]
INSTALL = "pip install 'ticklake[plot]'"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ticklake.cli", *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )


def png_pixels(path: Path) -> np.ndarray:
    image = matplotlib.image.imread(path)
    out: np.ndarray = np.round(image[..., :3] * 255).astype(np.uint8)
    return out


def has_colour(image: np.ndarray, colour: str) -> int:
    target = np.round(np.array(to_rgb(colour)) * 255).astype(np.uint8)
    return int(np.all(image == target, axis=-1).sum())


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """1m bars and quotes of AAPL and MSFT over 2024-11-18..2024-11-29; MSFT lacks 11-20 and 11-21."""
    lake = ticklake.Lake(tmp_path / "lake")
    days = ticklake.sessions.trading_days(dt.date(2024, 11, 18), dt.date(2024, 11, 29))
    for symbol, skip in (("AAPL", set()), ("MSFT", {dt.date(2024, 11, 20), dt.date(2024, 11, 21)})):
        kept = [d for d in days if d not in skip]
        stamps = ny_grid(kept[0], "04:00", "20:00", "1min").append(
            [ny_grid(d, "04:00", "20:00", "1min") for d in kept[1:]]
        )
        lake.write_bars(bars_table(symbol, stamps), "1m")
    lake.write_quotes(quotes_table("AAPL", ny_grid(days[0], "09:30", "16:00", "1s")))
    return lake.root


def test_coverage_command_prints_the_summary_and_draws_the_png(root: Path, tmp_path: Path) -> None:
    out_png = tmp_path / "pics" / "coverage.png"
    done = run("coverage", "bars/1m", "--root", str(root), "--png", str(out_png), "--days")
    assert done.returncode == 0, done.stderr
    assert "bars/1m: 2 symbols x 9 NYSE trading days (2024-11-18..2024-11-29)" in done.stdout
    assert "16 full, 0 partial, 2 missing, 0 before first" in done.stdout
    lines = [line.split() for line in done.stdout.splitlines()]
    assert ["MSFT", "9", "7", "0", "2", "0", "2024-11-18", "2024-11-29"] in lines
    assert ["MSFT", "2024-11-20", "missing", "0", "no", "rows", "on", "this", "New", "York", "date"] in lines
    assert f"wrote {out_png}" in done.stdout
    image = png_pixels(out_png)
    assert image.shape[1] == 1400 and image.shape[0] >= 320
    cell = (1400 * 0.89 / 9) * ((image.shape[0] - 175) / 2)  # about two day cells of the map are red
    assert 1.5 * cell < has_colour(image, COLOURS["missing"]) < 2.3 * cell


def test_gaps_command_lists_ranges_and_json(root: Path) -> None:
    done = run("gaps", "1m", "--root", str(root))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "MSFT 2024-11-20..2024-11-21 missing (2 trading days)",
        "2 gap day(s) in 1 symbol(s)",
    ]
    as_json = run(
        "gaps", "bars/1m", "--root", str(root), "--json", "--symbols", "AAPL,MSFT,IBM", "--start", "2024-11-29"
    )
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == {"IBM": ["2024-11-29"]}  # IBM has no file: missing, not before_first
    assert ticklake.Lake(root).gaps("1m", ["IBM"], "2024-11-29", "2024-11-29") == {"IBM": [dt.date(2024, 11, 29)]}


def test_plot_command_writes_a_candle_png(root: Path, tmp_path: Path) -> None:
    out_png = tmp_path / "aapl.png"
    done = run("plot", "AAPL", "2024-11-18", "2024-11-18", "--root", str(root), "--spread", "--png", str(out_png))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wrote {out_png}"
    image = png_pixels(out_png)
    assert image.shape[:2] == (900, 1600)
    assert has_colour(image, UP) > 300
    small = tmp_path / "small.png"
    args = ["plot", "AAPL", "2024-11-18 09:30", "2024-11-18 12:00", "--root", str(root), "--png", str(small)]
    assert cli.main([*args, "--session", "regular", "--width", "800", "--height", "500"]) == 0
    assert png_pixels(small).shape[:2] == (500, 800)


def test_cli_errors_are_one_line(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for args, message in [
        (["plot", "AAPL", "2023-01-03", "2023-01-03", "--png", str(tmp_path / "x.png")], "no bars/1m rows for AAPL"),
        (["coverage", "bars/2d"], "unknown lake kind 'bars/2d'"),
        (["gaps", "1m", "--start", "2024-02-30"], "is not a date"),
        (["plot", "MSFT", "2024-11-18", "2024-11-18", "--spread", "--png", str(tmp_path / "y.png")], "no quotes"),
    ]:
        assert cli.main([*args, "--root", str(root)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("ticklake: error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "x.png").exists()


def test_missing_plot_extra_says_how_to_install(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "mplfinance", None)  # import mplfinance now raises ImportError
    assert cli.main(["plot", "AAPL", "2024-11-18", "2024-11-18", "--root", str(root), "--png", "a.png"]) == 2
    assert capsys.readouterr().err == f"ticklake: error: plotting needs the plot extra: {INSTALL}\n"
    with pytest.raises(ticklake.MissingExtraError, match=re.escape(INSTALL)):
        ticklake.Lake(root).plot("AAPL", "2024-11-18", "2024-11-18")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert cli.main(["coverage", "1m", "--root", str(root), "--png", str(tmp_path / "c.png")]) == 2
    assert INSTALL in capsys.readouterr().err
    assert not (tmp_path / "c.png").exists()
    assert cli.main(["coverage", "1m", "--root", str(root)]) == 0  # the table needs no extra
    assert "2 missing" in capsys.readouterr().out
    with pytest.raises(ImportError):  # MissingExtraError is an ImportError too
        ticklake.Lake(root).coverage_figure("1m")


def test_demo_leaves_holes_and_draws_both_pictures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pictures = tmp_path / "pics"
    assert cli.main(["demo", "--root", str(tmp_path / "lake"), "--trades", "40000", "--pictures", str(pictures)]) == 0
    out = capsys.readouterr().out
    assert "MSFT 2024-02-05..2024-02-07 missing (3 trading days)" in out
    assert f"pictures: {pictures / 'coverage.png'}, {pictures / 'candles.png'}" in out
    cov = ticklake.Lake(tmp_path / "lake").coverage("bars/1m")
    statuses = cov.set_index(["symbol", "date"])["status"]
    assert statuses[("MSFT", pd.Timestamp("2024-02-06"))] == "missing"
    assert statuses[("BRK.B", pd.Timestamp("2024-01-12"))] == "before_first"
    assert statuses[("SPY", pd.Timestamp("2024-01-25"))] == "partial"
    assert "rows end 11:59 ET" in cov.set_index(["symbol", "date"]).loc[("SPY", pd.Timestamp("2024-01-25")), "reason"]
    coverage_png, candles_png = png_pixels(pictures / "coverage.png"), png_pixels(pictures / "candles.png")
    assert coverage_png.shape[1] == 1400 and has_colour(coverage_png, COLOURS["missing"]) > 1000
    assert candles_png.shape[:2] == (900, 1600) and has_colour(candles_png, UP) > 300


def test_demo_without_the_plot_extra_says_how_to_get_the_pictures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert cli.main(["demo", "--root", str(tmp_path / "lake"), "--trades", "20000"]) == 0
    out = capsys.readouterr().out
    assert f"pictures: none (plotting needs the plot extra: {INSTALL}" in out
    assert not list((tmp_path / "lake").glob("*.png"))
