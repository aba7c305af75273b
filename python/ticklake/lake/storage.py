"""The storage behind the lake's writes (SPEC §4): one Rust call per file that locks it, reads what is stored,
merges and publishes atomically (``src/store/``). Locks and temporary files live under the root's hidden
``.ticklake/`` folder, so the data folders hold data files only and any reader can be pointed at a folder or a
``*`` glob (SPEC §1).

Example:
    >>> storage = LocalStorage(Path("lake"))
    >>> storage.upsert(Path("lake/bars/1m/AAPL.2024-01.parquet"), kind="bars/1m", symbol="AAPL",
    ...                period="2024-01", incoming=table, replace=[], level=3, metadata={})["status"]
    'written'
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from ticklake import _core
from ticklake.exceptions import InvalidInputError, LakeIOError
from ticklake.lake import kinds, layout
from ticklake.lake.reader import FooterCache

#: The lake's hidden folder at its root: locks and temporary files, never inside a data folder (SPEC §1).
HIDDEN = ".ticklake"
#: The footer's ``ticklake.schema_version`` (SPEC §2). 1: every timestamp in ns; 2: bars and quotes in us.
SCHEMA_VERSION = "2"


def file_metadata(kind: str, symbol: str, period: str, extra: Mapping[str, str] | None) -> dict[str, str]:
    """The ``ticklake.*`` footer keys of one lake file (SPEC §2), plus the caller's ``extra`` keys.

    Example:
        >>> file_metadata("bars/1d", "AAPL", "2024", None)["ticklake.period_rule"]
        'year of the trading-date label'

    Raises:
        InvalidInputError: a key or value of ``extra`` is not a string.
    """
    meta = {
        "ticklake.version": _core.__version__,
        "ticklake.schema_version": SCHEMA_VERSION,
        "ticklake.kind": kind,
        "ticklake.symbol": symbol,
        "ticklake.period": period,
        "ticklake.period_rule": (
            "year of the trading-date label" if kinds.of(kind).yearly else "America/New_York calendar month"
        ),
        "ticklake.size_unit": "shares",
        "ticklake.source": "user",
    }
    for key, value in (extra or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidInputError("metadata keys and values must be strings")
        meta[key if key.startswith("ticklake.") else f"ticklake.{key}"] = value
    return meta


def _relative(root: Path, target: Path) -> Path:
    try:
        return target.relative_to(root)
    except ValueError:
        raise LakeIOError(f"{target}: not inside the lake at {root}") from None


class LocalStorage:
    """Lake files on a local filesystem (single host: advisory locks do not work over NFS). Everything that touches
    a file happens in Rust, in one call per file (:meth:`upsert`): the lock, the read of the stored file, the merge,
    the atomic publish and the removal of stale temporaries.

    Args:
        root: the lake's root; locks and temporary files live under ``<root>/.ticklake/``.
        lock_timeout: seconds to wait for another writer's lock before raising :class:`LakeLockedError`.
        threads: threads that encode row groups in parallel when writing.
    """

    def __init__(self, root: Path, *, lock_timeout: float = 60.0, threads: int | None = None) -> None:
        self.root = Path(root)
        self.lock_timeout = lock_timeout
        self.threads = threads if threads is not None else _core.default_threads()
        #: Checked footers of recently read files (see :class:`ticklake.lake.reader.FooterCache`).
        self.footers = FooterCache()

    def __getstate__(self) -> dict[str, Any]:
        # Pickled for another process (a Dask worker): the footer cache, with its lock, stays behind.
        state = dict(self.__dict__)
        del state["footers"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.footers = FooterCache()

    def files(self, kind: str, symbol: str | None = None) -> list[Path]:
        """The lake files of a kind (any of its names), sorted; of one symbol when ``symbol`` is given.

        Example:
            >>> [p.name for p in storage.files("bars/1m", "AAPL")]
            ['AAPL.2024-01.parquet', 'AAPL.2024-02.parquet']
        """
        folder = kinds.of(kind).folder
        pattern = f"{layout.check_symbol(symbol)}.*.parquet" if symbol else "*.parquet"
        found = []
        for path in sorted(Path(self.root, folder).glob(pattern)):
            name = layout.parse_name(path.name)
            if name is not None and (symbol is None or name.symbol == symbol):
                found.append(path)
        return found

    def upsert(
        self,
        path: Path,
        *,
        kind: str,
        symbol: str,
        period: str,
        incoming: pa.Table,
        replace: list[tuple[int, int]],
        level: int,
        metadata: dict[str, str],
        keep_provenance: bool = False,
    ) -> dict[str, Any]:
        """Merges ``incoming`` into the file at ``path`` and publishes it atomically, under the file's lock (stored
        rows in the ``replace`` windows dropped first; a stored file in an older form is rewritten even when no row
        changes; one left empty is deleted). ``keep_provenance`` keeps the stored file's own ``ticklake.*`` footer
        keys (``ticklake migrate``).

        Returns:
            ``{"status": "written" | "unchanged" | "removed", "rows": ..., "bytes": ..., "row_groups": ...}``.

        Raises:
            CorruptFileError: the stored file is damaged or breaks the lake's rules (it is left as it is).
            LakeLockedError: another writer held the file's lock longer than ``lock_timeout``.
            LakeIOError: the filesystem failed (the message names the file); nothing was changed.

        Example:
            >>> storage.upsert(path, kind="bars/1m", symbol="AAPL", period="2024-01", incoming=table, replace=[],
            ...                level=3, metadata={})["status"]
            'written'
        """
        return _core.lake_upsert(
            str(self.root),
            _relative(self.root, path).as_posix(),
            kind,
            symbol,
            period,
            incoming,
            replace,
            level,
            metadata,
            self.threads,
            self.lock_timeout,
            keep_provenance,
        )
