"""SQL over the lake: DuckDB views ``bars_1s``, ``bars_1m``, ``bars_1d`` and ``quotes`` (the Kind table's views).

On disk a view reads ``<kind>/*.parquet`` with DuckDB's own Parquet reader. On object storage (DuckDB's ``httpfs``
extension is downloaded at run time, so it is not there offline) a view is a ``pyarrow.dataset`` over the objects
of one listing, read through pyarrow's S3 filesystem: DuckDB pushes the query's columns and filters into that scan,
so only the row groups whose statistics can match are fetched. Both give the same rows and types (timestamps
``TIMESTAMPTZ`` in UTC).

Example:
    >>> from ticklake.lake.sql import sql
    >>> sql(storage, "SELECT count(*) AS n FROM bars_1d")["n"][0]
    504
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ticklake import _core
from ticklake.exceptions import CorruptFileError, InvalidInputError
from ticklake.lake import kinds
from ticklake.lake.reader import dataset, first_unreadable
from ticklake.lake.storage import LocalStorage, ObjectStorage

if TYPE_CHECKING:
    import duckdb


def connect(storage: LocalStorage | ObjectStorage, views: Iterable[str] | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the lake's views (all of them, or only ``views``); see :meth:`ticklake.Lake.connect`.

    Raises:
        CorruptFileError: DuckDB cannot open a kind's files (the message names the damaged one).

    Example:
        >>> connect(storage, ["quotes"]).execute("SELECT count(*) FROM quotes").fetchone()
        (917524,)
    """
    import duckdb

    wanted = set(kinds.VIEWS) if views is None else set(views)
    con = duckdb.connect()
    # Daily bars are labelled at 00:00 UTC: show and group timestamps in UTC whatever the machine's zone.
    con.execute("SET TimeZone = 'UTC'")
    for view, kind in kinds.VIEWS.items():
        if view not in wanted:
            continue
        if isinstance(storage, ObjectStorage):
            listed = storage.stored(kind.folder)
            # The stored schema: files of schema version 1 (ns) and conformable foreign types are cast to it.
            con.register(
                f"_{view}_objects",
                dataset([(s.path, s.size) for s in listed], _core.lake_schema(kind.folder), storage.filesystem),
            )
            con.execute(f"CREATE VIEW {view} AS SELECT * FROM _{view}_objects")
            continue
        files = storage.files(kind.folder)
        if files:
            pattern = str(Path(storage.root, kind.folder, "*.parquet")).replace("'", "''")
            # TIMESTAMPTZ (us, UTC) whatever the file's version: schema version 1 stored nanoseconds, which
            # DuckDB reads as a naive TIMESTAMP_NS.
            try:
                con.execute(
                    f"CREATE VIEW {view} AS SELECT * REPLACE (CAST(timestamp AS TIMESTAMPTZ) AS timestamp) "
                    f"FROM read_parquet('{pattern}', union_by_name = true)"
                )
            except duckdb.Error as err:
                con.close()
                raise _damaged(files, err) from None
        else:
            con.register(f"_{view}_empty", _core.lake_schema(kind.folder).empty_table())
            con.execute(f"CREATE VIEW {view} AS SELECT * FROM _{view}_empty")
    return con


def sql(storage: LocalStorage | ObjectStorage, query: str) -> pd.DataFrame:
    """Runs a DuckDB query over the lake's views; see :meth:`ticklake.Lake.sql`.

    Raises:
        CorruptFileError: a file the query reads is damaged.
        InvalidInputError: DuckDB refused the query.

    Example:
        >>> sql(storage, "SELECT symbol FROM bars_1d GROUP BY symbol ORDER BY symbol")["symbol"].tolist()
        ['AAPL', 'MSFT']
    """
    import duckdb

    # Only the views the query names: a damaged file of one kind never stops queries of the others.
    named = [v for v in kinds.VIEWS if re.search(rf"\b{v}\b", query, re.IGNORECASE)]
    con = connect(storage, named)
    try:
        frame: pd.DataFrame = con.sql(query).df()
    except duckdb.IOException as err:
        raise CorruptFileError(f"a lake file could not be read: {err} (run ticklake validate)") from None
    except duckdb.Error as err:
        if isinstance(storage, ObjectStorage) and not isinstance(err, _query_errors()):
            raise _damaged_object(storage, named, err) from None
        raise InvalidInputError(f"SQL error: {err}") from err
    finally:
        con.close()
    return frame


def _query_errors() -> tuple[type[Exception], ...]:
    import duckdb

    return (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException)


def _damaged(files: list[Path], err: Exception) -> CorruptFileError:
    """DuckDB could not open a kind's files: name the first whose footer does not read."""
    return first_unreadable(files) or CorruptFileError(
        f"DuckDB cannot read the lake's files ({files[0].parent}): {err}"
    )


def _damaged_object(storage: ObjectStorage, views: list[str], err: Exception) -> Exception:
    """pyarrow's scan of an object failed under DuckDB (DuckDB says InvalidInput): the error naming the first
    object whose footer does not read, a :class:`CorruptFileError` when the scan says Parquet, else the SQL error."""
    paths = [s.path for view in views for s in storage.stored(kind=kinds.VIEWS[view].folder)]
    damaged = first_unreadable(paths, storage.filesystem)
    if damaged is not None:
        return damaged
    if "parquet" in str(err).lower():
        return CorruptFileError(f"a lake object could not be read: {err} (run ticklake validate)")
    return InvalidInputError(f"SQL error: {err}")
