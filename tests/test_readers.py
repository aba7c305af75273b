"""The lake opens in every reader users have, with default settings (SPEC §1, §2; issue 12).

One lake of every kind is built as a user builds one (writes, upserts, a replaced day, two processes writing the
same month files at once); then pyarrow, pandas, polars, DuckDB, DataFusion, chDB and Spark read each kind's
folder and must return the same instants and values as pyarrow, which must return what was written. Spark reads
bars and quotes with its default settings and raw trades (nanoseconds) with the one documented setting,
``spark.sql.legacy.parquet.nanosAsLong``. The reader x kind table is printed at the end of the module.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import chdb
import datafusion
import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import ticklake

from tests.reader_lake import KINDS, build

RESULTS: dict[tuple[str, str], str] = {}


@pytest.fixture(scope="module")
def lake_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, pa.Table]]:
    root = tmp_path_factory.mktemp("readers") / "lake"
    return root, build(root)


def canon(table: pa.Table | pa.RecordBatchReader, kind: str) -> pd.DataFrame:
    """A reader's table in one comparable form: stored column order, timestamps as int64 UTC ns (a reader that
    gives raw int64 gives ns, Spark's nanosAsLong), strings as str, lists joined, rows sorted by every column."""
    if isinstance(table, pa.RecordBatchReader):
        table = table.read_all()
    names = list(ticklake._core.lake_schema(kind).names)
    columns = {}
    for name in names:
        column = table.column(name)
        if name == "timestamp":
            if pa.types.is_timestamp(column.type):
                assert column.type.tz is not None, f"{kind}: timestamps came back without a time zone"
                column = column.cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64())
            values: Any = np.asarray(column.cast(pa.int64()))
        elif pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
            values = ["|".join(v) if v is not None else None for v in column.to_pylist()]
        elif (
            pa.types.is_string(column.type)
            or pa.types.is_large_string(column.type)
            or pa.types.is_string_view(column.type)
        ):
            values = column.to_pylist()
        else:
            values = column.to_pandas()
        columns[name] = values
    frame = pd.DataFrame(columns)
    key = [c for c in names if c != "conditions"]
    return frame.sort_values(key, kind="stable").reset_index(drop=True)


def folder(root: Path, kind: str) -> Path:
    return root / kind


# ----------------------------------------------------------------------------------------------------- readers


def by_pyarrow(root: Path, kind: str) -> pa.Table:
    return pq.read_table(folder(root, kind), page_checksum_verification=True)


def by_pandas(root: Path, kind: str) -> pa.Table:
    frame = pd.read_parquet(folder(root, kind))
    return pa.Table.from_pandas(frame, preserve_index=False)


def by_polars_folder(root: Path, kind: str) -> pa.Table:
    return pl.scan_parquet(folder(root, kind)).collect().to_arrow()


def by_polars_star(root: Path, kind: str) -> pa.Table:
    return pl.scan_parquet(f"{folder(root, kind)}/*").collect().to_arrow()


def by_polars_glob(root: Path, kind: str) -> pa.Table:
    return pl.scan_parquet(f"{folder(root, kind)}/*.parquet").collect().to_arrow()


def duckdb_arrow(query: str) -> pa.Table:
    with duckdb.connect() as con:
        out = con.sql(query).arrow()
        # DuckDB 1.4+ returns a RecordBatchReader, earlier versions a Table.
        return out.read_all() if isinstance(out, pa.RecordBatchReader) else out


def by_duckdb_glob(root: Path, kind: str) -> pa.Table:
    return duckdb_arrow(f"SELECT * FROM read_parquet('{folder(root, kind)}/*.parquet')")


def by_duckdb_star(root: Path, kind: str) -> pa.Table:
    return duckdb_arrow(f"SELECT * FROM read_parquet('{folder(root, kind)}/*')")


def by_datafusion(root: Path, kind: str) -> pa.Table:
    return datafusion.SessionContext().read_parquet(str(folder(root, kind))).to_arrow_table()


def by_chdb(root: Path, kind: str) -> pa.Table:
    table: pa.Table = chdb.query(f"SELECT * FROM file('{folder(root, kind)}/*', Parquet)", "ArrowTable")
    return table


READERS: dict[str, Callable[[Path, str], pa.Table]] = {
    "pyarrow": by_pyarrow,
    "pandas": by_pandas,
    "polars folder": by_polars_folder,
    "polars dir/*": by_polars_star,
    "polars dir/*.parquet": by_polars_glob,
    "duckdb dir/*.parquet": by_duckdb_glob,
    "duckdb dir/*": by_duckdb_star,
    "datafusion": by_datafusion,
    "chdb dir/*": by_chdb,
}


@pytest.mark.parametrize("kind", KINDS)
def test_pyarrow_reads_what_was_written_and_every_page_checksum(
    lake_data: tuple[Path, dict[str, pa.Table]], kind: str
) -> None:
    root, expected = lake_data
    files = sorted(folder(root, kind).iterdir())
    assert files and all(p.suffix == ".parquet" for p in files), files
    for path in files:
        pq.ParquetFile(path, page_checksum_verification=True).read()  # raises on any CRC mismatch
        meta = pq.read_metadata(path)
        assert meta.created_by.startswith(f"ticklake version {ticklake.__version__} (build ")
        for g in range(meta.num_row_groups):
            for c in range(meta.num_columns):
                chunk = meta.row_group(g).column(c)
                assert chunk.has_column_index and chunk.has_offset_index, (path.name, g, c)
    got = by_pyarrow(root, kind)
    assert got.schema.field("timestamp").type == ticklake._core.lake_schema(kind).field("timestamp").type
    pd.testing.assert_frame_equal(canon(got, kind), canon(expected[kind], kind), check_exact=True)
    lake = ticklake.Lake(root)
    ours = pa.concat_tables(
        [lake.scan(kind, s).to_arrow() for s in ("AAPL", "BRK.B")]  # the lake's own reader
    )
    assert ours.schema.equals(ticklake._core.lake_schema(kind))
    pd.testing.assert_frame_equal(canon(ours, kind), canon(expected[kind], kind), check_exact=True)
    RESULTS[("pyarrow", kind)] = "pass"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reader", [r for r in READERS if r != "pyarrow"])
def test_reader_returns_what_pyarrow_returns(
    lake_data: tuple[Path, dict[str, pa.Table]], reader: str, kind: str
) -> None:
    root, _ = lake_data
    reference = canon(by_pyarrow(root, kind), kind)
    got = canon(READERS[reader](root, kind), kind)
    pd.testing.assert_frame_equal(got, reference, check_exact=True)
    RESULTS[(reader, kind)] = "pass"


@pytest.mark.parametrize("kind", KINDS)
def test_polars_pushes_a_timestamp_filter_down(lake_data: tuple[Path, dict[str, pa.Table]], kind: str) -> None:
    root, _ = lake_data
    bound = dt.datetime(2024, 1, 8, 14, 30, tzinfo=dt.UTC)
    scan = pl.scan_parquet(folder(root, kind)).filter(pl.col("timestamp") >= bound)
    plan = scan.explain()
    # The predicate sits in the Parquet scan itself (no FILTER node above it): polars skips by statistics.
    assert "SELECTION" in plan and "timestamp" in plan and "FILTER" not in plan, plan
    table = by_pyarrow(root, kind)
    wanted = table.filter(pc.greater_equal(table["timestamp"], pa.scalar(bound, table["timestamp"].type)))
    assert wanted.num_rows and wanted.num_rows < table.num_rows
    pd.testing.assert_frame_equal(canon(scan.collect().to_arrow(), kind), canon(wanted, kind), check_exact=True)
    RESULTS[("polars filter", kind)] = "pass"


# ------------------------------------------------------------------------------------------------------- Spark


def _java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and Path(home, "bin", "java").exists():
        return str(Path(home, "bin", "java"))
    return shutil.which("java")


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    if _java() is None:
        if os.environ.get("TICKLAKE_REQUIRE_SPARK"):
            pytest.fail("no java on PATH: Spark cannot start (.ci/run installs openjdk-17-jre-headless)")
        pytest.skip("no java on PATH: Spark cannot start")
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("ticklake-readers")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("OFF")
    yield session
    session.stop()


@pytest.mark.parametrize("kind", KINDS)
def test_spark_reads_every_kind(spark: Any, lake_data: tuple[Path, dict[str, pa.Table]], kind: str) -> None:
    root, _ = lake_data
    path = str(folder(root, kind))
    if kind == "trades":
        # Spark has no nanosecond timestamp: by default it refuses INT64 TIMESTAMP(NANOS); the documented setting
        # reads the column as epoch nanoseconds (bigint).
        with pytest.raises(Exception, match=r"PARQUET_TYPE_ILLEGAL|Illegal Parquet type"):
            spark.read.parquet(path).collect()
        spark.conf.set("spark.sql.legacy.parquet.nanosAsLong", "true")
        try:
            frame = spark.read.parquet(path)
            got = frame.toArrow()
            # The README's recipe for a Spark timestamp (microseconds) from the epoch nanoseconds.
            micros = frame.selectExpr("unix_micros(timestamp_micros(div(timestamp, 1000))) AS us").toArrow()
        finally:
            spark.conf.unset("spark.sql.legacy.parquet.nanosAsLong")
        assert pa.types.is_integer(got.schema.field("timestamp").type)
        want = np.sort(np.asarray(by_pyarrow(root, kind)["timestamp"].cast(pa.int64())) // 1000)
        assert np.array_equal(np.sort(np.asarray(micros["us"])), want)
    else:
        # Default settings: microseconds are Spark's TimestampType.
        frame = spark.read.parquet(path)
        assert frame.schema["timestamp"].dataType.typeName() == "timestamp"
        got = frame.toArrow()
    pd.testing.assert_frame_equal(canon(got, kind), canon(by_pyarrow(root, kind), kind), check_exact=True)
    RESULTS[("spark", kind)] = "pass (nanosAsLong)" if kind == "trades" else "pass (defaults)"


def test_zz_reader_table(capsys: pytest.CaptureFixture[str]) -> None:
    """Prints the reader x kind table of this run (and fails when a cell is missing: a reader was not run)."""
    readers = [*READERS, "polars filter", "spark"]
    lines = ["| reader | " + " | ".join(KINDS) + " |", "|---" * (len(KINDS) + 1) + "|"]
    for reader in readers:
        lines.append(f"| {reader} | " + " | ".join(RESULTS.get((reader, k), "not run") for k in KINDS) + " |")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    if _java() is None and not os.environ.get("TICKLAKE_REQUIRE_SPARK"):
        readers.remove("spark")  # skipped above, with the reason
    missing = [(r, k) for r in readers for k in KINDS if (r, k) not in RESULTS]
    assert not missing, missing


def test_created_by_is_what_parquet_javas_version_parser_reads(lake_data: tuple[Path, dict[str, pa.Table]]) -> None:
    import re

    root, _ = lake_data
    created_by = pq.read_metadata(next(folder(root, "bars/1m").iterdir())).created_by
    # org.apache.parquet.VersionParser's pattern: "<application> version <semver> (build <hash>)".
    parsed = re.fullmatch(r"(.*?)\s+version\s*(?:([^(]*?)\s*(?:\(\s*build\s*([^)]*?)\s*\))?)?", created_by)
    assert parsed is not None and parsed.group(1) == "ticklake" and parsed.group(2) == ticklake.__version__
    assert re.fullmatch(r"[0-9a-f]{12}|unknown", parsed.group(3)), created_by
