"""``export-to-parquet`` fanned out on a 2-worker Dask ``LocalCluster``: symbol groups as tasks, one connection
per task, the same lake (file by file, byte for byte) and the same verification table as the in-process export,
from SQLite and from PostgreSQL."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pyarrow as pa
import pytest
import ticklake
from ticklake import cli
from ticklake.exporter import _groups, export_to_parquet

from tests.lake_data import minute_bars

SYMBOLS = [f"S{i:02d}" for i in range(20)] + ["BRK.B"]
DAYS = [dt.date(2024, 1, 31), dt.date(2024, 2, 1)]


def source() -> pa.Table:
    """1m bars of 21 symbols over a month end, symbols interleaved in time order as a time-major table holds them."""
    tables = [minute_bars(s, DAYS[: 1 + i % 2], seed=i) for i, s in enumerate(SYMBOLS)]
    return pa.concat_tables(tables).sort_by([("timestamp", "ascending"), ("symbol", "ascending")])


def lake_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.glob("bars/**/*.parquet"))}


def rows(report: ticklake.ExportReport) -> list[tuple[str, str, str, int, int]]:
    return [(f.kind, f.symbol, f.period, f.source_rows, f.file_rows) for f in report.files]


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("db") / "market.db"
    con = sqlite3.connect(path)
    source().to_pandas().to_sql("bars_1m", con, index=False)
    con.close()
    return f"sqlite:///{path}"


def test_groups_are_contiguous_balanced_and_cover_every_symbol() -> None:
    sizes = [(f"S{i:02d}", n) for i, n in enumerate([5, 1, 1, 1, 9, 2, 2, 2, 2, 1])]
    for count in range(1, 13):
        groups = _groups(sizes, count)
        assert [s for g in groups for s in g] == [s for s, _ in sizes]
        assert 1 <= len(groups) <= count and all(groups)
    assert _groups(sizes, 3) == [["S00", "S01", "S02", "S03"], ["S04"], ["S05", "S06", "S07", "S08", "S09"]]
    assert _groups([], 4) == []


def test_export_on_dask_equals_the_in_process_export(tmp_path: Path, sqlite_db: str, dask_client: object) -> None:
    local = export_to_parquet(sqlite_db, root=tmp_path / "local")
    fanned = export_to_parquet(sqlite_db, root=tmp_path / "dask", client=dask_client, max_tasks=5)
    assert fanned.ok and local.ok
    assert rows(fanned) == rows(local)
    assert fanned.source_rows == local.source_rows == {"bars_1m": source().num_rows}
    files = lake_bytes(tmp_path / "local")
    assert len(files) == 21 + 10  # every symbol has January, the odd-numbered ten February too
    assert lake_bytes(tmp_path / "dask") == files


def test_one_symbol_on_dask(tmp_path: Path, sqlite_db: str, dask_client: object) -> None:
    report = export_to_parquet(sqlite_db, symbol="S01", root=tmp_path / "one", client=dask_client)
    assert {f.symbol for f in report.files} == {"S01"}
    assert list(lake_bytes(tmp_path / "one")) == ["bars/1m/S01.2024-01.parquet", "bars/1m/S01.2024-02.parquet"]


def test_postgresql_export_on_dask(tmp_path: Path, postgres_url: str, dask_client: object) -> None:
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(postgres_url) as con, con.cursor() as cur:
        cur.execute('DROP TABLE IF EXISTS "bars_1m"')
        cur.adbc_ingest("bars_1m", source(), mode="create")
        con.commit()
    local = export_to_parquet(postgres_url, root=tmp_path / "local", tables={"bars_1m": "bars_1m"})
    fanned = export_to_parquet(postgres_url, root=tmp_path / "dask", tables={"bars_1m": "bars_1m"}, client=dask_client)
    assert rows(fanned) == rows(local) and fanned.ok
    assert lake_bytes(tmp_path / "dask") == lake_bytes(tmp_path / "local")


def test_cli_scheduler(tmp_path: Path, sqlite_db: str, dask_client: object, capsys: pytest.CaptureFixture[str]) -> None:
    address = dask_client.scheduler.address  # type: ignore[attr-defined]
    code = cli.main(
        ["export-to-parquet", "--root", str(tmp_path / "cli"), "--db", sqlite_db, "--all", "--scheduler", address]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "MISMATCH" not in out and "bars_1m: " in out
    assert lake_bytes(tmp_path / "cli") == lake_bytes(_in_process(sqlite_db, tmp_path / "ref"))


def test_a_bad_max_tasks_is_refused(tmp_path: Path, sqlite_db: str, dask_client: object) -> None:
    with pytest.raises(ticklake.InvalidInputError, match="max_tasks"):
        export_to_parquet(sqlite_db, root=tmp_path / "x", client=dask_client, max_tasks=0)


def _in_process(db: str, root: Path) -> Path:
    export_to_parquet(db, root=root)
    return root
