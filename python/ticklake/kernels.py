"""Trades -> OHLCV bars and quotes -> best quote per second (SPEC §3), one-shot and streaming.

The work happens in Rust over the Arrow buffers with the GIL released; these wrappers only convert pandas input
and document the API.
"""

from __future__ import annotations

from typing import Any, Literal

import pyarrow as pa

from ticklake import _core
from ticklake._arrow import arrow_input
from ticklake.exceptions import InvalidInputError

ConditionPolicy = Literal["alpaca", "all"]


def check_threads(threads: int | None) -> int | None:
    """``threads`` as given when it is ``None`` or a positive int.

    Raises:
        InvalidInputError: anything else.

    Example:
        >>> check_threads(2)
        2
    """
    if threads is None or (isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1):
        return threads
    raise InvalidInputError(f"threads must be a positive int or None, got {threads!r}")


def bars(
    trades: Any,
    /,
    *,
    interval: str = "1s",
    symbol: str | None = None,
    conditions: ConditionPolicy = "alpaca",
    assume_utc: bool = False,
    threads: int | None = None,
) -> pa.Table:
    """Aggregates trades into OHLCV bars.

    Buckets are ``[start, start + interval)`` aligned to the UTC epoch and labelled by ``start``; ``"1d"`` buckets
    are New York trading dates labelled at that date 00:00 UTC. Sub-minute bars have ``trade_count``; bars of a
    minute and longer also have ``vwap`` (SPEC §2). Unsorted input gives the result of stably sorting it first.

    Args:
        trades: columns ``timestamp`` (tz-aware, any unit), ``price``, ``size``, and optionally ``symbol``
            (bars are then per symbol, sorted by symbol then time), ``conditions`` (list of strings), ``tape``
            and ``update``. Any Arrow producer (pyarrow, polars, DuckDB) or a pandas DataFrame.
        interval: ``"1s"``, ``"5s"``, ``"1m"``, ``"15m"``, ``"1h"``, ``"1d"``, ... (a count and ``s``/``m``/``h``,
            or ``1d``).
        symbol: the symbol to put in the output when the input has no ``symbol`` column.
        conditions: ``"alpaca"`` applies Alpaca's bar rules to the ``conditions`` column (minute column for
            intraday intervals, daily column for ``1d``); ``"all"`` counts every trade. Trades whose ``update`` is
            ``canceled`` or ``incorrect`` never count.
        assume_utc: accept tz-naive timestamps as UTC.
        threads: threads for long runs of one symbol (cut at bar boundaries, so the result never depends on it);
            default: the cores this process may use, at most 8. Pass 1 when running many processes side by side.

    Returns:
        A ``pyarrow.Table``: symbol, timestamp (``timestamp[ns, UTC]``), open, high, low, close, volume,
        [vwap,] trade_count.

    Raises:
        InvalidInputError: a missing or mistyped column, a tz-naive timestamp, a NaN/inf/zero/negative price,
            a negative size, an unknown interval or ``threads`` below 1; the message names the column and the
            first bad row.

    Example:
        >>> import pandas as pd, ticklake
        >>> trades = pd.DataFrame({
        ...     "timestamp": pd.to_datetime(["2024-01-02 14:30:00.1", "2024-01-02 14:30:00.7"], utc=True),
        ...     "price": [150.25, 150.30], "size": [100, 50]})
        >>> ticklake.bars(trades, interval="1s", symbol="AAPL").to_pandas()[["open", "close", "volume"]]
             open   close  volume
        0  150.25  150.30     150
    """
    data = arrow_input(trades, "trades")
    return _core.bars(data, interval, symbol, conditions, assume_utc, check_threads(threads))


def best_quotes(
    quotes: Any, /, *, symbol: str | None = None, assume_utc: bool = False, threads: int | None = None
) -> pa.Table:
    """Keeps the best (tightest-spread) valid quote of every UTC second.

    A quote is valid when both prices and both sizes are > 0 and ask >= bid (locked quotes count, crossed and
    one-sided ones do not). Spreads are compared in exact decimal at 1e-6, so float noise never decides; the
    earliest quote wins a tie. Seconds without a valid quote give no row.

    Args:
        quotes: columns ``timestamp``, ``bid_price``, ``bid_size``, ``ask_price``, ``ask_size``; optionally
            ``symbol``, ``bid_exchange`` and ``ask_exchange`` (or one ``exchange``).
        symbol: the symbol to put in the output when the input has no ``symbol`` column.
        assume_utc: accept tz-naive timestamps as UTC.
        threads: as :func:`bars` (runs are cut at second boundaries).

    Returns:
        A ``pyarrow.Table``: symbol, timestamp (the second), bid_price, bid_size, ask_price, ask_size, spread
        (rounded to 6 decimals), exchange (when both sides agree), bid_exchange, ask_exchange.

    Raises:
        InvalidInputError: missing or mistyped columns, negative or infinite prices, negative sizes, ``threads``
            below 1.

    Example:
        >>> import pandas as pd, ticklake
        >>> quotes = pd.DataFrame({
        ...     "timestamp": pd.to_datetime(["2024-01-02 14:30:00.1", "2024-01-02 14:30:00.5"], utc=True),
        ...     "bid_price": [150.25, 150.26], "bid_size": [100, 200],
        ...     "ask_price": [150.28, 150.27], "ask_size": [100, 300]})
        >>> ticklake.best_quotes(quotes, symbol="AAPL").to_pandas()[["bid_price", "ask_price", "spread"]]
           bid_price  ask_price  spread
        0     150.26     150.27    0.01
    """
    data = arrow_input(quotes, "quotes")
    return _core.best_quotes(data, symbol, assume_utc, check_threads(threads))


class BarAggregator:
    """Streaming :func:`bars`: push batches one at a time, get back the bars they finished.

    A bar is finished once a later bar of the same symbol has started; :meth:`finish` flushes the rest. Memory
    is bounded by the batch, not the month. Each symbol's batches must arrive in time order (rows inside one
    batch may be unsorted). Concatenating every output and sorting by (symbol, timestamp) equals
    :func:`bars` on the whole input.

    Args:
        interval: as :func:`bars`.
        symbol: as :func:`bars`.
        conditions: as :func:`bars`.
        assume_utc: as :func:`bars`.
        threads: as :func:`bars`.

    Example:
        >>> agg = ticklake.BarAggregator("1m", symbol="AAPL")
        >>> for batch in reader:            # e.g. pyarrow.parquet.ParquetFile(...).iter_batches()
        ...     finished = agg.push(batch)  # a pyarrow.Table of finished bars
        >>> last = agg.finish()
    """

    def __init__(
        self,
        interval: str = "1s",
        *,
        symbol: str | None = None,
        conditions: ConditionPolicy = "alpaca",
        assume_utc: bool = False,
        threads: int | None = None,
    ) -> None:
        self._inner = _core.BarAggregator(interval, symbol, conditions, assume_utc, check_threads(threads))

    def push(self, trades: Any) -> pa.Table:
        """Consumes a batch of trades and returns the bars it finished (possibly none).

        Raises:
            InvalidInputError: bad data (nothing of the batch is consumed), or rows older than a symbol's
                previous batch.
        """
        return self._inner.push(arrow_input(trades, "trades"))

    def finish(self) -> pa.Table:
        """Returns the bars still open and ends the stream (further calls raise ``TicklakeError``)."""
        return self._inner.finish()


class QuoteSampler:
    """Streaming :func:`best_quotes`: push batches, get back the seconds they finished; :meth:`finish` flushes.

    Args:
        symbol: as :func:`best_quotes`.
        assume_utc: as :func:`best_quotes`.
        threads: as :func:`best_quotes`.

    Example:
        >>> sampler = ticklake.QuoteSampler(symbol="AAPL")
        >>> parts = [sampler.push(batch) for batch in batches] + [sampler.finish()]
    """

    def __init__(self, *, symbol: str | None = None, assume_utc: bool = False, threads: int | None = None) -> None:
        self._inner = _core.QuoteSampler(symbol, assume_utc, check_threads(threads))

    def push(self, quotes: Any) -> pa.Table:
        """Consumes a batch of quotes and returns the best quotes of the seconds it finished."""
        return self._inner.push(arrow_input(quotes, "quotes"))

    def finish(self) -> pa.Table:
        """Returns the best quotes of the seconds still open and ends the stream."""
        return self._inner.finish()
