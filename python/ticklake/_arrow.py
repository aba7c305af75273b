"""Turning whatever the user passes into something that speaks the Arrow PyCapsule interface."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa

from ticklake.exceptions import InvalidInputError


def arrow_input(data: Any, what: str) -> Any:
    """Returns `data` as an Arrow PyCapsule producer (pandas is converted once, everything else passes as is).

    Example:
        >>> arrow_input(pd.DataFrame({"x": [1]}), "trades").num_rows
        1
    """
    if isinstance(data, pd.DataFrame):
        # A RangeIndex is dropped; a meaningful index (e.g. alpaca-py's symbol/timestamp) becomes columns.
        return pa.Table.from_pandas(data, preserve_index=None)
    if hasattr(data, "__arrow_c_stream__") or hasattr(data, "__arrow_c_array__"):
        return data
    raise InvalidInputError(
        f"{what} must be a pyarrow Table/RecordBatch/RecordBatchReader, a polars or pandas DataFrame, "
        f"or a DuckDB result; got {type(data).__name__}"
    )
