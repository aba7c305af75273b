"""Bringing an existing lake to the current file form (schema version 2, SPEC §1-2), in place and atomically.

Each lake file not in the current form (an earlier schema version with nanosecond bars and quotes, or a file
another writer made with other types) is rewritten under its lock through the ordinary publish path: same rows,
current schema, page index and checksums, its provenance metadata kept. The locks and temporary files ticklake 0.1
left in the data folders are removed. Running it again changes nothing.

Example:
    >>> report = Lake("data/parquet").migrate()
    >>> print(report.summary())
    2 file(s) rewritten, 14 already current, 4 stray file(s) removed, 0 failed
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from ticklake import _core
from ticklake.exceptions import TicklakeError
from ticklake.lake import layout
from ticklake.lake.storage import LocalStorage, ObjectStorage, file_metadata


@dataclass
class MigrationReport:
    """What :meth:`ticklake.Lake.migrate` did: files rewritten, files already current, stray files of ticklake 0.1
    removed from the data folders, and files that could not be migrated (with the reason)."""

    rewritten: list[Path] = field(default_factory=list)
    current: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    def summary(self) -> str:
        """One line: counts of each outcome.

        Example:
            >>> MigrationReport().summary()
            '0 file(s) rewritten, 0 already current, 0 stray file(s) removed, 0 failed'
        """
        return (
            f"{len(self.rewritten)} file(s) rewritten, {len(self.current)} already current, "
            f"{len(self.removed)} stray file(s) removed, {len(self.failed)} failed"
        )


def migrate(storage: LocalStorage | ObjectStorage, level: int = 3) -> MigrationReport:
    """See :meth:`ticklake.Lake.migrate`. On object storage each file is rewritten by the same conditional PUT as
    any write; there are no 0.1 locks or temporaries to remove there.

    Example:
        >>> migrate(Lake("data/parquet")).failed
        []
    """
    report = MigrationReport()
    for kind in storage.folders():
        if isinstance(storage, LocalStorage):
            directory = Path(storage.root, kind)
            if not directory.is_dir():
                continue
            # What ticklake 0.1 kept beside the data: its locks (never taken by this version) and temporaries.
            for stray in sorted(directory.glob(".*.parquet.lock")) + sorted(directory.glob(".*.tmp")):
                with contextlib.suppress(FileNotFoundError):
                    stray.unlink()
                    report.removed.append(stray)
        empty = _core.lake_schema(kind).empty_table()
        for path in storage.files(kind):
            name = layout.parse_name(path.name)
            if name is None:
                continue
            try:
                summary = storage.upsert(
                    path,
                    kind=kind,
                    symbol=name.symbol,
                    period=name.period,
                    incoming=empty,
                    replace=[],
                    level=level,
                    metadata=file_metadata(kind, name.symbol, name.period, None),
                    keep_provenance=True,
                )
            except TicklakeError as err:
                report.failed.append((path, str(err)))
                continue
            if summary["status"] == "written":
                report.rewritten.append(path)
            else:
                report.current.append(path)
    return report
