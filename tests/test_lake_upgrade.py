"""Lakes written by earlier versions keep working (SPEC §1, §2): lock files beside the data are cleaned, files of
schema version 1 (nanosecond bars and quotes) read the same instants, the next write or ``migrate`` brings them to
version 2; and locks refuse symbolic links."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ticklake
from ticklake.cli import main

from tests.lake_data import minute_bars, quotes_table

D = dt.date


def version_one(lake: ticklake.Lake, kind: str, table: pa.Table) -> Path:
    """Writes ``table`` through the lake, then rewrites the file as ticklake 0.1 did: ns timestamps, version 1."""
    (written,) = lake.write(table, kind)
    stored = pq.read_table(written.path)
    meta = dict(pq.read_metadata(written.path).metadata or {})
    meta.pop(b"ARROW:schema", None)
    meta[b"ticklake.schema_version"] = b"1"
    meta[b"ticklake.source"] = b"alpaca"
    index = stored.schema.get_field_index("timestamp")
    old = stored.set_column(
        index,
        stored.schema.field(index).with_type(pa.timestamp("ns", tz="UTC")),
        stored.column(index).cast(pa.timestamp("ns", tz="UTC")),
    )
    pq.write_table(old.replace_schema_metadata(meta), written.path)
    # And the lock file 0.1 kept beside it.
    written.path.with_name(f".{written.path.name}.lock").write_text("123")
    return written.path


def test_data_folders_hold_data_files_only(tmp_path: Path) -> None:
    lake = ticklake.Lake(tmp_path)
    lake.write_bars(minute_bars("AAPL", [D(2024, 1, 2)]), "1m")
    lake.write_quotes(quotes_table("AAPL", pd.date_range("2024-01-02 14:30", periods=1, tz="UTC").as_unit("ns")))
    assert sorted(p.name for p in (tmp_path / "bars/1m").iterdir()) == ["AAPL.2024-01.parquet"]
    assert sorted(p.name for p in (tmp_path / "quotes").iterdir()) == ["AAPL.2024-01.parquet"]
    assert (tmp_path / ".ticklake/locks/bars/1m/AAPL.2024-01.parquet.lock").is_file()
    assert list((tmp_path / ".ticklake/tmp/bars/1m").iterdir()) == []


def test_a_lock_path_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    lake = ticklake.Lake(tmp_path)
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep me")
    lock = tmp_path / ".ticklake/locks/bars/1m/AAPL.2024-01.parquet.lock"
    lock.parent.mkdir(parents=True)
    lock.symlink_to(target)
    with pytest.raises(ticklake.LakeIOError, match="symbolic link"):
        lake.write_bars(minute_bars("AAPL", [D(2024, 1, 2)]), "1m")
    assert target.read_text() == "keep me"
    assert not (tmp_path / "bars/1m/AAPL.2024-01.parquet").exists()


def test_version_one_files_read_the_same_instants_and_the_next_write_migrates(tmp_path: Path) -> None:
    lake = ticklake.Lake(tmp_path)
    table = minute_bars("AAPL", [D(2024, 1, 2), D(2024, 1, 3)])
    path = version_one(lake, "bars/1m", table)
    assert pq.read_schema(path).field("timestamp").type == pa.timestamp("ns", tz="UTC")
    back = lake.scan("1m", "AAPL").to_arrow()
    assert back.schema.equals(ticklake._core.lake_schema("bars/1m"))
    assert back["timestamp"].cast(pa.timestamp("ns", tz="UTC")).equals(table["timestamp"])
    assert lake.sql("SELECT count(*) AS n FROM bars_1m")["n"].iloc[0] == table.num_rows
    assert str(lake.sql("SELECT timestamp FROM bars_1m LIMIT 1")["timestamp"].dtype).endswith("UTC]")
    problems = {p.path.name: p.problem for p in lake.validate()}
    assert "schema version 1" in problems["AAPL.2024-01.parquet"]
    assert "stray" in problems[".AAPL.2024-01.parquet.lock"]
    # Writing rows that are already stored still rewrites a version-1 file: the merge conforms it.
    (again,) = lake.write_bars(table.slice(0, 3), "1m")
    assert again.status == "written"
    assert pq.read_schema(path).field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert pq.read_metadata(path).metadata[b"ticklake.schema_version"] == b"2"
    assert not path.with_name(f".{path.name}.lock").exists(), "the old lock beside the file is cleaned"
    assert lake.validate() == []
    (third,) = lake.write_bars(table.slice(0, 3), "1m")
    assert third.status == "unchanged"


def test_migrate_rewrites_old_files_in_place_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lake = ticklake.Lake(tmp_path)
    bars = minute_bars("AAPL", [D(2024, 1, 2)])
    old = version_one(lake, "bars/1m", bars)
    stamps = pd.date_range("2024-01-02 14:30", periods=30, freq="s", tz="UTC").as_unit("ns")
    old_quotes = version_one(lake, "quotes", quotes_table("MSFT", stamps))
    lake.write_bars(minute_bars("MSFT", [D(2024, 1, 2)]), "1m")
    current = tmp_path / "bars/1m/MSFT.2024-01.parquet"
    before = current.read_bytes()
    (tmp_path / "bars/1m/.GONE.2024-01.parquet.lock").write_text("1")
    assert main(["migrate", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "2 file(s) rewritten, 1 already current, 3 stray file(s) removed, 0 failed" in out
    for path in (old, old_quotes):
        assert pq.read_metadata(path).metadata[b"ticklake.schema_version"] == b"2"
        assert pq.read_metadata(path).metadata[b"ticklake.source"] == b"alpaca", "provenance kept"
        pq.read_table(path, page_checksum_verification=True)
    assert current.read_bytes() == before, "a current file is not touched"
    assert lake.scan("1m", "AAPL").to_arrow()["close"].equals(bars["close"])
    assert lake.validate() == []
    again = lake.migrate()
    assert (len(again.rewritten), len(again.current), len(again.removed)) == (0, 3, 0)


def test_stale_temporaries_are_removed_under_the_files_lock_only(tmp_path: Path) -> None:
    lake = ticklake.Lake(tmp_path)
    temps = tmp_path / ".ticklake/tmp/bars/1m"
    temps.mkdir(parents=True)
    mine = temps / "AAPL.2024-01.parquet.999-0-00000000.tmp"
    other = temps / "MSFT.2024-01.parquet.999-0-00000000.tmp"
    for path in (mine, other):
        path.write_bytes(b"half a file")
    old = time_ago = os.stat(mine).st_mtime - 7200
    os.utime(other, (old, time_ago))
    lake.write_bars(minute_bars("AAPL", [D(2024, 1, 2)]), "1m")
    assert not mine.exists() and other.exists()
    assert [p.problem for p in lake.validate() if p.path == other] == [
        "stale temporary file (a killed writer's); the next write removes it"
    ]
