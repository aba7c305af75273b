"""What every bench script shares: the best-of-k timer, the ratio table, memory readings and the machine line.

Each script runs ticklake and what a user would use instead in the same process and the same run, and prints
ratios (the other tool's time over ticklake's: above 1.0x ticklake is faster). Release builds only: a debug build
of the extension refuses to be timed.

Example:
    >>> from harness import best_of, ratio_table
    >>> seconds, _ = best_of(lambda: sum(range(10**6)), repeat=3)
    >>> ratio_table("sum", {"ticklake": seconds, "python": seconds * 2})
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable
from typing import Any

import ticklake
from ticklake import _core


def require_release() -> None:
    """Stops a bench run on a debug build of the extension (its timings mean nothing)."""
    if _core.DEBUG_BUILD:
        raise SystemExit("benches need a release build of ticklake (make develop)")


def best_of(
    fn: Callable[[], Any],
    repeat: int,
    setup: Callable[[], None] | None = None,
    stop_after: float | None = None,
) -> tuple[float, Any]:
    """The best wall time of ``repeat`` runs of ``fn`` (``setup`` untimed before each) and the last result; a first
    run slower than ``stop_after`` seconds is not repeated."""
    best, out = float("inf"), None
    for i in range(repeat):
        if setup is not None:
            setup()
        out = None
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        elapsed = time.perf_counter() - t0
        best = min(best, elapsed)
        if i == 0 and stop_after is not None and elapsed > stop_after:
            break
    return best, out


def best_of_each(
    fns: dict[str, Callable[[], Any]], repeat: int, setups: dict[str, Callable[[], None]] | None = None
) -> tuple[dict[str, float], dict[str, Any]]:
    """The best wall time of ``repeat`` rounds for each of ``fns``, run in turn within each round (so a busy spell of
    the machine slows every tool alike), and each one's last result; ``setups[name]``, if given, runs untimed
    before each run of ``fns[name]``."""
    best = dict.fromkeys(fns, float("inf"))
    out: dict[str, Any] = {}
    for _ in range(repeat):
        for name, fn in fns.items():
            out[name] = None
            if setups and name in setups:
                setups[name]()
            gc.collect()
            t0 = time.perf_counter()
            out[name] = fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best, out


def ratio_table(title: str, results: dict[str, float], sizes: dict[str, int] | None = None) -> None:
    """Prints each tool's time and its ratio to ticklake's (``results`` must hold ``"ticklake"``), optionally
    file sizes, and the ratio to the fastest other tool."""
    print(f"\n{title}")
    ours = results["ticklake"]
    for tool, seconds in results.items():
        ratio = "" if tool == "ticklake" else f"{seconds / ours:6.2f}x"
        size = ""
        if sizes:
            size = f"{sizes[tool] / 1e6:8.2f} MB"
            if tool != "ticklake":
                size += f"  (ticklake/{tool} size {sizes['ticklake'] / sizes[tool]:.2f})"
        print(f"  {tool:<10} {seconds:8.4f} s  {ratio:>8}  {size}")
    others = [(s, t) for t, s in results.items() if t != "ticklake"]
    if others:
        fastest = min(others)
        print(f"  -> ticklake vs fastest other ({fastest[1]}): {fastest[0] / ours:.2f}x")


def rss_mb(field: str = "VmRSS") -> float:
    """``VmRSS`` (current) or ``VmHWM`` (peak since start or the last clear_refs reset) of this process in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def machine_line() -> str:
    """One line on what the numbers were measured on: ticklake's version, cores and the load at this moment."""
    load = os.getloadavg()
    return (
        f"ticklake {ticklake.__version__}, {os.cpu_count()} cores, load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} "
        "(timings on a shared machine vary with the load)"
    )
