"""ticklake: US market data on your own disk.

Trades -> OHLCV bars and quotes -> best quote per second in Rust over Arrow buffers.

Example:
    >>> import ticklake
    >>> bars = ticklake.bars(trades, interval="1m")
    >>> quotes = ticklake.best_quotes(raw_quotes, symbol="AAPL")
"""

from __future__ import annotations

import warnings

from ticklake import _core
from ticklake.exceptions import (
    CorruptFileError,
    InvalidInputError,
    LakeFileNotFoundError,
    LakeIOError,
    TicklakeError,
)
from ticklake.kernels import BarAggregator, QuoteSampler, bars, best_quotes

__version__: str = _core.__version__

if _core.DEBUG_BUILD:
    warnings.warn(
        "ticklake's Rust extension is a debug build: it is many times slower than a release build "
        "(pip install . or maturin develop --release)",
        RuntimeWarning,
        stacklevel=2,
    )

__all__ = [
    "BarAggregator",
    "CorruptFileError",
    "InvalidInputError",
    "LakeFileNotFoundError",
    "LakeIOError",
    "QuoteSampler",
    "TicklakeError",
    "__version__",
    "bars",
    "best_quotes",
]
