"""An import's staging area: downloaded pieces waiting to be published, and a journal of what is done.

One import job (kind, feed, adjustment, source, ``asof``) keeps ``<staging>/<job>/``, where ``<staging>`` is
:func:`staging_folder`: ``<root>/.ticklake/staging`` for a local lake; for a lake on object storage a local
folder (``--staging DIR``, default one per lake under the user's cache folder, see :func:`default_staging`), so
pieces and the journal stay on local disk and only finished lake files go to the store:

- ``pieces/<request id>.parquet``: the reduced rows of one finished request chain (raw trades, 1s bars, best
  quotes, bars, or trade counts for planning), written atomically by the lake's own Parquet writer;
- ``journal.jsonl``: one JSON line per event, appended and fsync'ed: ``piece`` (a piece file is complete: its
  symbols and the span ``[start, end)`` it covers), ``done`` (days of a symbol are published in the lake), ``drop``
  (a piece file is no longer needed). A kill can only leave a torn last line, which is ignored; a piece file
  without its journal line is a dead writer's and is removed;
- ``lock``: held (``flock``) for the whole import, so two imports of the same job cannot interleave.

Resuming is exact: a span counts as downloaded only when a ``piece`` line covers it, and a day counts as
published only when its ``done`` line is there, so a rerun downloads only what no piece covers and publishes only
days that are not done; a finished import makes no request.

Example:
    >>> with Job(Path("lake/.ticklake/staging"), "1s-sip-na-api-asofdefault") as job:
    ...     job.done.get("AAPL", set())
    set()
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import pyarrow as pa

from ticklake import _core, _faults
from ticklake.exceptions import LakeIOError, LakeLockedError, corrupt_file
from ticklake.lake.reader import read_file
from ticklake.planner import Request

Spans = list[tuple[int, int]]
#: ``storage_options`` keys that name the store's endpoint (object_store's long and short AWS names).
_ENDPOINT_KEYS = ("aws_endpoint", "aws_endpoint_url", "endpoint", "endpoint_url")


def user_cache() -> Path:
    """The user's cache folder: ``$XDG_CACHE_HOME``, else ``~/Library/Caches`` on macOS, else ``~/.cache``.

    Example:
        >>> user_cache()
        PosixPath('/home/me/.cache')
    """
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"])
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches"
    return Path.home() / ".cache"


def default_staging(url: str, storage_options: Mapping[str, str] | None = None) -> Path:
    """The local staging folder of a lake on object storage: ``<user cache>/ticklake/staging/<name>``, one per
    lake. ``<name>`` is the bucket and prefix (made safe for a file name) and a hash of the URL and the endpoint,
    so two stores with the same bucket name never share a journal. Credentials never enter it: only the endpoint
    is read from ``storage_options`` (or ``$AWS_ENDPOINT_URL``).

    Example:
        >>> default_staging("s3://research/lake", {"endpoint": "http://127.0.0.1:8333"}).name
        'research_lake-5ac52376ae46'
    """
    options = {str(k).lower(): str(v) for k, v in (storage_options or {}).items()}
    endpoint = next((options[k] for k in _ENDPOINT_KEYS if k in options), os.environ.get("AWS_ENDPOINT_URL", ""))
    where = url.rstrip("/").split("://", 1)[-1]
    digest = hashlib.sha256(f"{url.rstrip('/')}\n{endpoint.rstrip('/')}".encode()).hexdigest()[:12]
    readable = re.sub(r"[^A-Za-z0-9.\-]+", "_", where.rsplit("@", 1)[-1]).strip("_.")[:80] or "lake"
    return user_cache() / "ticklake" / "staging" / f"{readable}-{digest}"


def staging_folder(
    root: Path,
    *,
    url: str | None = None,
    storage_options: Mapping[str, str] | None = None,
    staging: str | os.PathLike[str] | None = None,
) -> Path:
    """Where the jobs of a lake stage: ``staging`` when given; else ``<root>/.ticklake/staging`` for a local lake
    (``url`` None), :func:`default_staging` for a lake on object storage.

    Example:
        >>> staging_folder(Path("lake"))
        PosixPath('lake/.ticklake/staging')
    """
    if staging is not None:
        return Path(staging)
    if url is None:
        return Path(root, ".ticklake", "staging")
    return default_staging(url, storage_options)


def merge_spans(spans: Iterable[tuple[int, int]]) -> Spans:
    """Sorted, disjoint union of ``[start, end)`` spans.

    Example:
        >>> merge_spans([(5, 9), (0, 2), (2, 4)])
        [(0, 4), (5, 9)]
    """
    out: Spans = []
    for lo, hi in sorted(spans):
        if hi <= lo:
            continue
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def subtract_spans(spans: Iterable[tuple[int, int]], remove: Iterable[tuple[int, int]]) -> Spans:
    """The parts of ``spans`` that ``remove`` does not cover.

    Example:
        >>> subtract_spans([(0, 10)], [(2, 3), (5, 12)])
        [(0, 2), (3, 5)]
    """
    cuts = merge_spans(remove)
    out: Spans = []
    for lo, hi in merge_spans(spans):
        at = lo
        for a, b in cuts:
            if b <= at or a >= hi:
                continue
            if a > at:
                out.append((at, a))
            at = max(at, b)
        if at < hi:
            out.append((at, hi))
    return out


def intersect_spans(spans: Iterable[tuple[int, int]], other: Iterable[tuple[int, int]]) -> Spans:
    """The parts of ``spans`` that ``other`` also covers.

    Example:
        >>> intersect_spans([(0, 10)], [(2, 3), (5, 12)])
        [(2, 3), (5, 10)]
    """
    spans = merge_spans(spans)
    return subtract_spans(spans, subtract_spans(spans, other))


@dataclass(frozen=True)
class Piece:
    """A staged download: ``symbols`` over ``[start, end)``, ``rows`` rows in ``path``."""

    id: str
    purpose: str
    symbols: tuple[str, ...]
    start: int
    end: int
    rows: int
    path: Path


@dataclass
class Job:
    """The staging area of one import job in ``folder`` (see :func:`staging_folder`); use as a context manager
    (it holds the job's lock). ``legacy``: the staging folder of earlier versions (``<root>/.staging``), removed.

    Raises:
        LakeLockedError: another import of the same job is running.
        LakeIOError: the staging folder cannot be created or written.
    """

    folder: Path
    key: str
    legacy: Path | None = None
    pieces: dict[str, Piece] = field(default_factory=dict)
    done: dict[str, set[str]] = field(default_factory=dict)
    #: (purpose, symbol) -> {piece id: piece}
    _index: dict[tuple[str, str], dict[str, Piece]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.dir = Path(self.folder, self.key)
        # Download threads stage pieces while the publishing thread marks days done: one lock for the state.
        self._mutex = threading.RLock()
        self._lock_fd: int | None = None
        self._journal_fd: int | None = None

    # ------------------------------------------------------------------------------------------------ lifetime

    def __enter__(self) -> Job:
        try:
            (self.dir / "pieces").mkdir(parents=True, exist_ok=True)
            fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as err:
            raise LakeIOError(f"{self.dir}: cannot create the import's staging folder: {err.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise LakeLockedError(
                f"another import of the same data ({self.key}) is running with the staging folder {self.dir} "
                f"(pid {holder}); wait for it to finish, or stop it and run this command again to resume"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd
        try:
            self._load()
            self._journal_fd = os.open(self.dir / "journal.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._remove_orphans()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        if self.legacy is not None:
            # The staging layout of earlier versions (``<root>/.staging/<job>``) cannot be resumed from: remove it.
            shutil.rmtree(Path(self.legacy, self.key), ignore_errors=True)
            with contextlib.suppress(OSError):
                self.legacy.rmdir()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        for fd in (self._journal_fd, self._lock_fd):
            if fd is not None:
                os.close(fd)
        self._journal_fd = self._lock_fd = None

    def reset(self) -> None:
        """Forgets every staged piece and every ``done`` day (``--force``)."""
        for piece in list(self.pieces.values()):
            self.drop(piece)
        self._append({"t": "reset"})
        self.done.clear()

    # ------------------------------------------------------------------------------------------------ journal

    def _load(self) -> None:
        path = self.dir / "journal.jsonl"
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return
        complete = raw[: raw.rfind(b"\n") + 1]
        if len(complete) != len(raw):
            # A kill mid-append left a torn last line: cut it off so the next line starts clean.
            with open(path, "r+b") as handle:
                handle.truncate(len(complete))
                os.fsync(handle.fileno())
        for line in complete.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            self._apply(event)

    def _add(self, piece: Piece) -> None:
        with self._mutex:
            self.pieces[piece.id] = piece
            for symbol in piece.symbols:
                self._index.setdefault((piece.purpose, symbol), {})[piece.id] = piece

    def _remove(self, piece_id: str) -> None:
        with self._mutex:
            piece = self.pieces.pop(piece_id, None)
            if piece is not None:
                for symbol in piece.symbols:
                    self._index.get((piece.purpose, symbol), {}).pop(piece_id, None)

    def _apply(self, event: dict[str, object]) -> None:
        kind = event.get("t")
        if kind == "piece":
            piece = Piece(
                str(event["id"]),
                str(event["purpose"]),
                tuple(event["symbols"]),  # type: ignore[arg-type]
                int(event["start"]),  # type: ignore[call-overload]
                int(event["end"]),  # type: ignore[call-overload]
                int(event["rows"]),  # type: ignore[call-overload]
                self.dir / "pieces" / f"{event['id']}.parquet",
            )
            self._add(piece)
        elif kind == "drop":
            self._remove(str(event["id"]))
        elif kind == "done":
            self.done.setdefault(str(event["symbol"]), set()).update(str(d) for d in event["days"])  # type: ignore[attr-defined]
        elif kind == "reset":
            self.pieces.clear()
            self._index.clear()
            self.done.clear()

    def _append(self, event: dict[str, object]) -> None:
        if self._journal_fd is None:
            raise RuntimeError("the job is not open")
        line = (json.dumps(event, separators=(",", ":")) + "\n").encode()
        try:
            with self._mutex:
                os.write(self._journal_fd, line)
                os.fsync(self._journal_fd)
        except OSError as err:
            raise LakeIOError(f"{self.dir / 'journal.jsonl'}: cannot record the import's progress: {err}") from None

    def _remove_orphans(self) -> None:
        known = {p.path.name for p in self.pieces.values()}
        for path in (self.dir / "pieces").iterdir():
            if path.name not in known:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        for piece in [p for p in self.pieces.values() if not p.path.exists()]:
            self._remove(piece.id)

    # ------------------------------------------------------------------------------------------------ pieces

    def stage(self, request: Request, table: pa.Table, end: int) -> Piece:
        """Writes a finished request's rows (covering ``[request.start, end)``) and records the piece.

        Example:
            >>> job.stage(request, table, request.end).rows
            9873
        """
        path = self.dir / "pieces" / f"{request.id}.parquet"
        rows, _ = _core.write_parquet(str(path), table, 1)
        _faults.point("import.staged")
        piece = Piece(request.id, request.purpose, request.symbols, request.start, end, rows, path)
        self._append(
            {
                "t": "piece",
                "id": piece.id,
                "purpose": piece.purpose,
                "symbols": list(piece.symbols),
                "start": piece.start,
                "end": piece.end,
                "rows": rows,
            }
        )
        self._add(piece)
        _faults.point("import.recorded")
        return piece

    def drop(self, piece: Piece) -> None:
        """Forgets a piece and removes its file."""
        with self._mutex:
            self._append({"t": "drop", "id": piece.id})
            self._remove(piece.id)
        with contextlib.suppress(FileNotFoundError):
            piece.path.unlink()

    def mark_done(self, symbol: str, days: Sequence[str]) -> None:
        """Records that these New York days of ``symbol`` are published in the lake (one journal line)."""
        with self._mutex:
            self._append({"t": "done", "symbol": symbol, "days": sorted(days)})
            self.done.setdefault(symbol, set()).update(days)

    def covering(self, purpose: str, symbol: str) -> list[Piece]:
        """The pieces of ``purpose`` that hold ``symbol``, by start.

        Example:
            >>> [p.start for p in job.covering("data", "AAPL")]
            [1706590800000000000]
        """
        with self._mutex:
            found = list(self._index.get((purpose, symbol), {}).values())
        return sorted(found, key=lambda p: (p.start, p.end, p.id))

    def coverage(self, purpose: str, symbol: str) -> Spans:
        """The union of what the pieces of ``purpose`` cover for ``symbol``."""
        return merge_spans((p.start, p.end) for p in self.covering(purpose, symbol))

    @staticmethod
    def read(piece: Piece) -> pa.Table:
        """A piece's rows.

        Raises:
            CorruptFileError: the piece file is damaged.
        """
        try:
            return read_file(piece.path)
        except (pa.ArrowException, OSError) as err:
            if isinstance(err, OSError) and err.errno == errno.ENOENT:
                raise corrupt_file(piece.path, FileNotFoundError("the staged file vanished")) from None
            raise corrupt_file(piece.path, err) from err

    def pieces_for(self, purpose: str, symbol: str, spans: Spans) -> Iterator[tuple[Piece, Spans]]:
        """The pieces to take each part of ``spans`` from, each with the parts it supplies (no part twice: where
        pieces overlap, the earlier-starting one supplies it)."""
        left = merge_spans(spans)
        for piece in self.covering(purpose, symbol):
            mine = intersect_spans(left, [(piece.start, piece.end)])
            if mine:
                yield piece, mine
                left = subtract_spans(left, mine)
            if not left:
                return


__all__ = [
    "Job",
    "Piece",
    "default_staging",
    "intersect_spans",
    "merge_spans",
    "staging_folder",
    "subtract_spans",
    "user_cache",
]
