"""Turning whatever the user passes into something that speaks the Arrow PyCapsule interface."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pyarrow as pa

from ticklake.exceptions import InvalidInputError


def _check_frame(data: pd.DataFrame, what: str) -> None:
    """Refuses what pyarrow would convert silently wrong: repeated column names, and object columns that mix
    tz-aware and naive timestamps (pyarrow would read the naive ones as UTC)."""
    repeated = sorted({str(c) for c in data.columns[data.columns.duplicated()]})
    if repeated:
        raise InvalidInputError(f"{what} has more than one column named {', '.join(map(repr, repeated))}")
    for name in data.columns[[dtype == object for dtype in data.dtypes]]:  # noqa: E721 (numpy dtype compare)
        column = data[name]
        if pd.api.types.infer_dtype(column, skipna=True) not in ("datetime", "mixed"):
            continue
        awareness = {v.tzinfo is not None for v in column if isinstance(v, dt.datetime)}
        if len(awareness) > 1:
            raise InvalidInputError(
                f"column {name!r} of {what} mixes tz-aware and naive timestamps; make them all tz-aware "
                "(e.g. Series.dt.tz_localize) so that no value is guessed to be UTC",
                column=str(name),
            )


def arrow_input(data: Any, what: str) -> Any:
    """Returns `data` as an Arrow PyCapsule producer (pandas is converted once, everything else passes as is).

    Raises:
        InvalidInputError: not a table; a pandas frame with repeated column names, columns that mix tz-aware and
            naive timestamps, or values pyarrow cannot convert (the message names the column).

    Example:
        >>> arrow_input(pd.DataFrame({"x": [1]}), "trades").num_rows
        1
    """
    if isinstance(data, pd.DataFrame):
        _check_frame(data, what)
        try:
            # A RangeIndex is dropped; a meaningful index (e.g. alpaca-py's symbol/timestamp) becomes columns.
            return pa.Table.from_pandas(data, preserve_index=None)
        except (pa.ArrowException, TypeError, ValueError) as err:
            raise InvalidInputError(f"{what} cannot be converted to Arrow: {err}") from None
    if hasattr(data, "__arrow_c_stream__") or hasattr(data, "__arrow_c_array__"):
        return data
    raise InvalidInputError(
        f"{what} must be a pyarrow Table/RecordBatch/RecordBatchReader, a polars or pandas DataFrame, "
        f"or a DuckDB result; got {type(data).__name__}"
    )
