from typing import Any, final

import pyarrow as pa

__all__ = [
    "DEBUG_BUILD",
    "BarAggregator",
    "QuoteSampler",
    "__version__",
    "bars",
    "best_quotes",
    "check_file_rows",
    "check_symbol",
    "lake_conform",
    "lake_partition",
    "lake_publish",
    "lake_schema",
    "parse_page",
    "parse_timestamp_text",
    "period_bounds",
    "period_of_ns",
]

__version__: str
DEBUG_BUILD: bool

def bars(
    data: Any, interval: str, symbol: str | None, conditions: str, assume_utc: bool, threads: int | None
) -> pa.Table: ...
def best_quotes(data: Any, symbol: str | None, assume_utc: bool, threads: int | None) -> pa.Table: ...
def lake_schema(kind: str) -> pa.Schema: ...
def parse_page(data: bytes, kind: str, lots_to_shares: bool, daily_labels: bool) -> tuple[pa.Table, str | None]: ...
def parse_timestamp_text(data: Any) -> tuple[pa.Table, bool]: ...
def check_symbol(symbol: str) -> None: ...
def period_of_ns(ts: int, yearly: bool) -> tuple[str, int, int]: ...
def period_bounds(key: str, yearly: bool) -> tuple[int, int]: ...
def lake_partition(data: Any, kind: str, symbol: str | None) -> list[tuple[str, str, pa.Table]]: ...
def check_file_rows(data: Any, kind: str, symbol: str, period: str) -> None: ...
def lake_conform(path: str, data: Any, kind: str) -> pa.Table: ...
def lake_publish(
    path: str,
    temp_dir: str,
    kind: str,
    symbol: str,
    period: str,
    existing: Any | None,
    incoming: Any,
    replace: tuple[int, int] | None,
    level: int,
    metadata: dict[str, str],
    threads: int,
) -> dict[str, Any]: ...

@final
class BarAggregator:
    def __new__(
        cls, interval: str, symbol: str | None, conditions: str, assume_utc: bool, threads: int | None
    ) -> BarAggregator: ...
    def push(self, data: Any) -> pa.Table: ...
    def finish(self) -> pa.Table: ...

@final
class QuoteSampler:
    def __new__(cls, symbol: str | None, assume_utc: bool, threads: int | None) -> QuoteSampler: ...
    def push(self, data: Any) -> pa.Table: ...
    def finish(self) -> pa.Table: ...
