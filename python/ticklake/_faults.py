"""Crash points for the kill-at-every-step tests (RELIABILITY.md §2): a process started with
``TICKLAKE_FAULT=<point>[:<n>]`` dies (``os._exit(137)``, as a SIGKILL would leave it) the ``n``-th time (default
the first) it passes ``point``. Without the variable every call is a dictionary lookup that finds nothing.

Points: ``import.staged`` (a piece file is written, its journal line is not), ``import.recorded`` (the journal
line is written), ``import.published`` (a lake file is written, its days are not recorded done), ``import.done``
(the days are recorded done, the pieces are not dropped).

Example:
    >>> point("import.staged")   # returns at once unless TICKLAKE_FAULT names it
"""

from __future__ import annotations

import os
import threading

_SPEC = os.environ.get("TICKLAKE_FAULT", "")
_NAME, _, _COUNT = _SPEC.partition(":")
_WHEN = int(_COUNT) if _COUNT.isdigit() else 1
_seen = 0
_lock = threading.Lock()


def point(name: str) -> None:
    """Dies here when ``TICKLAKE_FAULT`` names this point (on its ``n``-th pass)."""
    global _seen
    if name != _NAME:
        return
    with _lock:
        _seen += 1
        if _seen == _WHEN:
            os._exit(137)
