"""The exceptions ticklake raises. Catch :class:`TicklakeError` to catch them all.

Example:
    >>> import ticklake
    >>> try:
    ...     ticklake.bars(trades, interval="7x")
    ... except ticklake.InvalidInputError as err:
    ...     print(err)
"""

from __future__ import annotations


class TicklakeError(Exception):
    """Base class of every ticklake error."""


class InvalidInputError(TicklakeError, ValueError):
    """Bad input data or a bad argument.

    Attributes:
        column: the offending column, when one is to blame.
        row: the zero-based row of the first offending value, when known.
    """

    def __init__(self, message: str, *, column: str | None = None, row: int | None = None) -> None:
        super().__init__(message)
        self.column = column
        self.row = row


class CorruptFileError(TicklakeError, OSError):
    """A lake file is damaged, truncated or not Parquet at all. The message names the file."""


class LakeFileNotFoundError(TicklakeError, FileNotFoundError):
    """A file the operation needs does not exist."""


class LakeIOError(TicklakeError, OSError):
    """Any other filesystem failure."""


class LakeLockedError(LakeIOError):
    """Another writer held a lake file's lock for longer than the timeout. The message names the file and pid."""


class MissingExtraError(TicklakeError, ImportError):
    """An optional feature's packages are not installed; the message gives the ``pip install`` line
    (e.g. ``pip install 'ticklake[plot]'`` for charts)."""


class ExportError(TicklakeError):
    """``export-to-parquet`` could not run (bad URL, missing database or table) or its verification failed."""


class ApiError(TicklakeError):
    """The market-data API refused a request or kept failing. The message quotes the API's own ``message``.

    Attributes:
        status: the HTTP status, when there was one.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthError(ApiError):
    """Missing, wrong or insufficient credentials (HTTP 401/403, e.g. a plan without SIP data)."""


class RateLimitError(ApiError):
    """Still rate limited (HTTP 429) after every retry."""


def corrupt_file(path: object, err: BaseException) -> CorruptFileError:
    """The error for any reader failure on ``path``: one message that names the file.

    Example:
        >>> raise corrupt_file("x.parquet", ValueError("bad footer")) from None
    """
    return CorruptFileError(f"{path}: corrupt or unreadable Parquet file: {err}")


__all__ = [
    "ApiError",
    "AuthError",
    "CorruptFileError",
    "ExportError",
    "InvalidInputError",
    "LakeFileNotFoundError",
    "LakeIOError",
    "LakeLockedError",
    "MissingExtraError",
    "RateLimitError",
    "TicklakeError",
    "corrupt_file",
]
