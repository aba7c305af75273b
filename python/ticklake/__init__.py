"""ticklake: US market data on your own disk.

Trades -> OHLCV bars and quotes -> best quote per second in Rust over Arrow buffers.

Example:
    >>> import ticklake
    >>> bars = ticklake.bars(trades, interval="1m")
    >>> quotes = ticklake.best_quotes(raw_quotes, symbol="AAPL")
    >>> lake = ticklake.Lake("data/parquet")
    >>> lake.write_bars(bars, "1m")
    >>> lake.read_bars("AAPL", "1m", "2024-01-02", "2024-01-02", tz="America/New_York", session="regular")
"""

from __future__ import annotations

import warnings

from ticklake import _core
from ticklake.client import AlpacaClient
from ticklake.exceptions import (
    ApiError,
    AuthError,
    CorruptFileError,
    ExportError,
    InvalidInputError,
    LakeFileNotFoundError,
    LakeIOError,
    LakeLockedError,
    MissingExtraError,
    RateLimitError,
    TicklakeError,
)
from ticklake.exporter import ExportReport, export_to_parquet
from ticklake.importer import ImportPlan, ImportReport, import_api, plan_import
from ticklake.kernels import BarAggregator, QuoteSampler, bars, best_quotes
from ticklake.lake.facade import FileWrite, Lake
from ticklake.lake.gaps import GapRange, Gaps
from ticklake.lake.inventory import Problem
from ticklake.lake.kinds import Kind
from ticklake.lake.migrate import MigrationReport
from ticklake.lake.rebuild import RebuildReport
from ticklake.lake.scan import Scan

__version__: str = _core.__version__

if _core.DEBUG_BUILD:
    warnings.warn(
        "ticklake's Rust extension is a debug build: it is many times slower than a release build "
        "(pip install . or maturin develop --release)",
        RuntimeWarning,
        stacklevel=2,
    )

__all__ = [
    "AlpacaClient",
    "ApiError",
    "AuthError",
    "BarAggregator",
    "CorruptFileError",
    "ExportError",
    "ExportReport",
    "FileWrite",
    "GapRange",
    "Gaps",
    "ImportPlan",
    "ImportReport",
    "InvalidInputError",
    "Kind",
    "Lake",
    "LakeFileNotFoundError",
    "LakeIOError",
    "LakeLockedError",
    "MigrationReport",
    "MissingExtraError",
    "Problem",
    "QuoteSampler",
    "RateLimitError",
    "RebuildReport",
    "Scan",
    "TicklakeError",
    "__version__",
    "bars",
    "best_quotes",
    "export_to_parquet",
    "import_api",
    "plan_import",
]
