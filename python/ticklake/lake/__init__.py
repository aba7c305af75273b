"""The lake: the files under one root and everything that reads or writes them.

Imports go one way (``tests/test_architecture.py`` fails on a cycle)::

    kinds -> layout -> reader -> storage -> scan, replay, inventory, migrate, sql, coverage -> gaps -> facade

- :mod:`~ticklake.lake.kinds`: the Kind table (every name of a kind).
- :mod:`~ticklake.lake.layout`: where a (kind, symbol, period) lives; the symbol rule.
- :mod:`~ticklake.lake.reader`: the one module that reads Parquet from Python (checked lake reads, footers).
- :mod:`~ticklake.lake.storage`: writes, one Rust call per file (lock, merge, atomic publish).
- :mod:`~ticklake.lake.scan`: the lazy read result of :meth:`Lake.scan`.
- :mod:`~ticklake.lake.facade`: :class:`Lake`, the public face of all of it.

Example:
    >>> from ticklake.lake import Lake
    >>> Lake("data/parquet").files("bars/1d")[:1]
    [PosixPath('data/parquet/bars/1d/AAPL.2024.parquet')]
"""

from ticklake.lake.facade import FileWrite, Lake
from ticklake.lake.scan import Scan

__all__ = ["FileWrite", "Lake", "Scan"]
