from typing import Literal, Protocol, TypeAlias, final, type_check_only

import pyarrow as pa

__all__ = [
    "DEBUG_BUILD",
    "MAX_TIMESTAMP",
    "MIN_TIMESTAMP",
    "BarAggregator",
    "QuoteSampler",
    "TradeDedup",
    "__version__",
    "bars",
    "best_quotes",
    "check_file_rows",
    "check_symbol",
    "default_threads",
    "lake_conform",
    "lake_partition",
    "lake_schema",
    "lake_upsert",
    "object_conflicts",
    "object_list",
    "object_probe",
    "parse_page",
    "parse_timestamp_text",
    "period_bounds",
    "period_of_ns",
    "write_parquet",
]

@type_check_only
class ArrowStreamExportable(Protocol):
    """An Arrow PyCapsule stream producer: pyarrow Table / RecordBatchReader, polars, DuckDB, arro3..."""

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...

@type_check_only
class ArrowArrayExportable(Protocol):
    """An Arrow PyCapsule array producer (a pyarrow RecordBatch, a struct array): one batch."""

    def __arrow_c_array__(self, requested_schema: object | None = None) -> tuple[object, object]: ...

# What every Arrow argument accepts (pyo3-arrow's `AnyRecordBatch`).
_ArrowInput: TypeAlias = ArrowStreamExportable | ArrowArrayExportable
# Which trades a bar counts (`conditions::Policy::parse`).
_ConditionPolicy: TypeAlias = Literal["alpaca", "all"]

__version__: str
DEBUG_BUILD: bool
MIN_TIMESTAMP: int
MAX_TIMESTAMP: int

def bars(
    data: _ArrowInput,
    interval: str,
    symbol: str | None,
    conditions: _ConditionPolicy,
    assume_utc: bool,
    threads: int | None,
) -> pa.Table: ...
def best_quotes(data: _ArrowInput, symbol: str | None, assume_utc: bool, threads: int | None) -> pa.Table: ...
def lake_schema(kind: str) -> pa.Schema: ...
def parse_page(data: bytes, kind: str, lots_to_shares: bool, daily_labels: bool) -> tuple[pa.Table, str | None]: ...
def parse_timestamp_text(data: _ArrowInput) -> tuple[pa.Table, bool]: ...
def check_symbol(symbol: str) -> None: ...
def period_of_ns(ts: int, yearly: bool) -> tuple[str, int, int]: ...
def period_bounds(key: str, yearly: bool) -> tuple[int, int]: ...
def lake_partition(data: _ArrowInput, kind: str, symbol: str | None) -> list[tuple[str, str, pa.Table]]: ...
def check_file_rows(data: _ArrowInput, kind: str, symbol: str, period: str) -> None: ...
def lake_conform(path: str, data: _ArrowInput, kind: str) -> pa.Table: ...
def lake_upsert(
    root: str,
    key: str,
    kind: str,
    symbol: str,
    period: str,
    incoming: _ArrowInput,
    replace: list[tuple[int, int]],
    level: int,
    metadata: dict[str, str],
    threads: int,
    lock_timeout: float,
    keep_provenance: bool = False,
    storage_options: dict[str, str] | None = None,
) -> dict[str, str | int]: ...
def object_probe(root: str, storage_options: dict[str, str] | None = None) -> None: ...
def object_conflicts() -> int: ...
def object_list(
    root: str, folder: str, storage_options: dict[str, str] | None = None
) -> list[tuple[str, int, str]]: ...
def default_threads() -> int: ...
def write_parquet(path: str, data: _ArrowInput, level: int) -> tuple[int, int]: ...

@final
class BarAggregator:
    def __new__(
        cls, interval: str, symbol: str | None, conditions: _ConditionPolicy, assume_utc: bool, threads: int | None
    ) -> BarAggregator: ...
    def push(self, data: _ArrowInput) -> pa.Table: ...
    def finish(self) -> pa.Table: ...

@final
class QuoteSampler:
    def __new__(cls, symbol: str | None, assume_utc: bool, threads: int | None) -> QuoteSampler: ...
    def push(self, data: _ArrowInput) -> pa.Table: ...
    def finish(self) -> pa.Table: ...

@final
class TradeDedup:
    def __new__(cls) -> TradeDedup: ...
    def push(self, data: _ArrowInput) -> pa.Table: ...
    @property
    def duplicates(self) -> int: ...
    @property
    def conflicts(self) -> int: ...
