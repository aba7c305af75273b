"""Kill-at-every-step tests of the Rust lake write (RELIABILITY.md §2, ``src/fault.rs``).

A child process started with ``TICKLAKE_FAULT=<point>:<k>`` dies (``_exit(137)``) the ``k``-th time the write path
passes ``point``: ``write.temp`` (temporary written, not synced), ``write.synced`` (synced and checked, not
renamed), ``write.renamed`` (renamed over the target, directory not synced), ``write.done``, and
``remove.unlinked`` (a file ``replace`` emptied is unlinked). For every point and every ``k`` from 1 to the number
of passes the operation makes, and once more past it (the child must then finish), each scenario below runs on a
copy of one existing lake, and afterwards:

* every lake file is exactly its old bytes or exactly the bytes of the uninterrupted run (so readable by pyarrow
  with page checksums verified), and exactly the files written before the kill are new: a write spanning several
  files publishes them one at a time, in order;
* no temporary or partial file is visible in a data folder (a temporary lives only under ``.ticklake/tmp/``);
* the same write run again in a clean process (this one) succeeds, gives the lake of the uninterrupted run, and
  leaves no stale temporary.

``write.fsync-eio`` (the temporary's fsync fails with EIO) must surface as a typed :class:`ticklake.TicklakeError`
naming the file, leave the stored file untouched and no temporary anywhere, and not be retried into a success.

Children are forked from one zygote process that imported ticklake once and never wrote (so the Rust side has not
read ``TICKLAKE_FAULT`` yet): a fork costs milliseconds where a fresh interpreter costs a second, which keeps the
seventy-odd children of the default run to seconds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import select
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ticklake

from tests.lake_data import minute_bars, ny_grid, quotes_table, trades_table

REPO = Path(__file__).resolve().parents[1]
D = dt.date
KINDS = ("bars/1s", "bars/1m", "bars/1d", "quotes", "trades")
WRITE_POINTS = ("write.temp", "write.synced", "write.renamed", "write.done")
POINTS = (*WRITE_POINTS, "remove.unlinked")
#: The status of a file whose publish passes the point (``write_atomic`` or ``remove_atomic``).
PASSED_BY = {**dict.fromkeys(WRITE_POINTS, "written"), "remove.unlinked": "removed"}
#: Points at which the file of the pass is already in its new state (renamed over, or unlinked).
VISIBLE = frozenset({"write.renamed", "write.done", "remove.unlinked"})
KILLED = 137

# ------------------------------------------------------------------------------------------------ the scenarios


def existing_lake(root: Path) -> None:
    """The lake every trial starts from: SPY 1m bars in January (two days), February and March, QQQ in January,
    and an hour of SPY trades and quotes in January."""
    lake = ticklake.Lake(root)
    lake.write_bars(minute_bars("SPY", [D(2024, 1, 2), D(2024, 1, 3), D(2024, 2, 1), D(2024, 3, 1)]), "1m")
    lake.write_bars(minute_bars("QQQ", [D(2024, 1, 2)], seed=5), "1m")
    lake.write_trades(trades_table("SPY", ny_grid(D(2024, 1, 2), "09:30", "10:30", "2s"), seed=1))
    lake.write_quotes(quotes_table("SPY", ny_grid(D(2024, 1, 2), "09:30", "10:30", "1s"), seed=2))


def bars_over_several_months(lake: ticklake.Lake) -> list[ticklake.FileWrite]:
    """One ``write_bars`` onto four files: QQQ January, SPY January (a stored day rewritten) and February (a day
    added) merged, SPY April new; SPY March is not touched."""
    table = pa.concat_tables(
        [
            minute_bars("QQQ", [D(2024, 1, 3)], seed=6),
            minute_bars("SPY", [D(2024, 1, 3)], seed=7),
            minute_bars("SPY", [D(2024, 2, 2)], seed=8),
            minute_bars("SPY", [D(2024, 4, 1)], seed=9),
        ]
    )
    return lake.write_bars(table, "1m")


def replace_emptying_a_month(lake: ticklake.Lake) -> list[ticklake.FileWrite]:
    """A ``replace`` over January to March with new rows in January and March only: January and March are
    rewritten, February is emptied and removed between them."""
    table = pa.concat_tables(
        [minute_bars("SPY", [D(2024, 1, 4)], seed=10), minute_bars("SPY", [D(2024, 3, 4)], seed=11)]
    )
    return lake.write_bars(table, "1m", replace=("2024-01-01", "2024-04-01"))


def trades_and_quotes(lake: ticklake.Lake) -> list[ticklake.FileWrite]:
    """Trades, then quotes, each over January (overlapping the stored hour) and February (new)."""
    days = [D(2024, 1, 2), D(2024, 2, 1)]
    trade_stamps = pd.DatetimeIndex(
        ny_grid(days[0], "10:00", "11:00", "2s").append(ny_grid(days[1], "10:00", "10:30", "2s"))
    )
    quote_stamps = pd.DatetimeIndex(
        ny_grid(days[0], "10:00", "11:00", "1s").append(ny_grid(days[1], "10:00", "10:30", "1s"))
    )
    return [
        *lake.write_trades(trades_table("SPY", trade_stamps, seed=3)),
        *lake.write_quotes(quotes_table("SPY", quote_stamps, seed=4)),
    ]


SCENARIOS: dict[str, Callable[[ticklake.Lake], list[ticklake.FileWrite]]] = {
    "bars": bars_over_several_months,
    "replace": replace_emptying_a_month,
    "ticks": trades_and_quotes,
}

# ----------------------------------------------------------------------------------------------------- helpers


def lake_files(root: Path) -> dict[str, bytes]:
    """Every file in the lake's data folders, by path relative to the root."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for kind in KINDS
        if (root / kind).is_dir()
        for path in sorted((root / kind).iterdir())
        if path.is_file()
    }


def strays(root: Path) -> list[str]:
    """Anything in a data folder that is not a published lake file (a temporary, a partial or hidden file, a
    folder), and any temporary outside ``.ticklake/tmp/``."""
    found = [
        path.relative_to(root).as_posix()
        for kind in KINDS
        if (root / kind).is_dir()
        for path in (root / kind).iterdir()
        if not path.is_file() or path.name.startswith(".") or not path.name.endswith(".parquet")
    ]
    tmp = root / ".ticklake/tmp"
    found += [p.relative_to(root).as_posix() for p in root.rglob("*.tmp") if not p.is_relative_to(tmp)]
    return found


def temporaries(root: Path) -> list[Path]:
    """Files under the lake's temporary folder."""
    return sorted(p for p in (root / ".ticklake/tmp").rglob("*") if p.is_file())


@dataclasses.dataclass(frozen=True)
class Reference:
    """A scenario run without faults on a copy of the existing lake."""

    #: The data files before and after.
    old: dict[str, bytes]
    new: dict[str, bytes]
    #: The files the write touched, in the order it published them, with their status.
    steps: list[tuple[str, str]]

    def passes(self, point: str) -> int:
        """How many times the write passes ``point``."""
        return sum(status == PASSED_BY[point] for _, status in self.steps)

    def after(self, done: int, partial: str | None = None) -> dict[str, bytes]:
        """The files once the first ``done`` steps are published; ``partial``, when given, is the point at which
        step ``done + 1`` was stopped (its file counts as published when the point is in :data:`VISIBLE`)."""
        files = dict(self.old)
        published = self.steps[: done + (partial in VISIBLE)]
        for name, status in published:
            if status == "removed":
                files.pop(name, None)
            else:
                files[name] = self.new[name]
        return files

    def label(self, files: dict[str, bytes]) -> dict[str, str]:
        """Each file of ``files`` (or of the old or new lake) as ``old``, ``new``, ``absent`` or ``NEITHER``."""
        names = sorted(self.old.keys() | self.new.keys() | files.keys())
        labels = {}
        for name in names:
            data = files.get(name)
            if data is None:
                labels[name] = "absent"
            elif data == self.old.get(name):
                labels[name] = "old"
            elif data == self.new.get(name):
                labels[name] = "new"
            else:
                labels[name] = "NEITHER"
        return labels


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The existing lake every trial copies."""
    root = tmp_path_factory.mktemp("write-faults") / "template"
    existing_lake(root)
    return root


@pytest.fixture(scope="module")
def references(template: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Reference]:
    """Each scenario's uninterrupted run."""
    out = {}
    for name, scenario in SCENARIOS.items():
        root = tmp_path_factory.mktemp("reference") / name
        shutil.copytree(template, root)
        writes = scenario(ticklake.Lake(root))
        steps = [(w.path.relative_to(root).as_posix(), w.status) for w in writes if w.status != "unchanged"]
        out[name] = Reference(lake_files(template), lake_files(root), steps)
        assert temporaries(root) == [] and strays(root) == []
    return out


# The zygote reads one JSON order per line, forks a child that sets TICKLAKE_FAULT and runs the scenario (writing
# the error it caught, if any, to the order's outcome file), and answers with the child's exit code.
ZYGOTE = """
import json, os, sys, traceback
import ticklake
from tests.test_write_faults import SCENARIOS
print("ready", flush=True)
for line in sys.stdin:
    order = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.environ["TICKLAKE_FAULT"] = order["fault"]
            try:
                SCENARIOS[order["scenario"]](ticklake.Lake(order["root"]))
                outcome = {"error": None}
            except Exception as err:
                outcome = {"error": type(err).__name__, "module": type(err).__module__, "message": str(err)}
            with open(order["outcome"], "w") as f:
                json.dump(outcome, f)
        except BaseException:
            traceback.print_exc()
            code = 3
        finally:
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), flush=True)
"""


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How a faulted child ended: its exit code, whether its write returned (it was not killed first), and the
    exception the write raised, if any (class name, module, message)."""

    code: int
    returned: bool
    error: str | None = None
    module: str = ""
    message: str = ""


@dataclasses.dataclass
class Zygote:
    """A process that forks the faulted children."""

    process: subprocess.Popen[str]
    log: Path

    def _line(self, timeout: float) -> str:
        out = self.process.stdout
        assert out is not None
        ready, _, _ = select.select([out], [], [], timeout)
        line = out.readline() if ready else ""
        if not line:
            self.process.kill()
            pytest.fail(f"the zygote did not answer within {timeout} s:\n{self.log.read_text()[-3000:]}")
        return line.strip()

    def run(self, scenario: str, root: Path, fault: str, timeout: float = 60) -> Outcome:
        """Runs ``scenario`` on the lake at ``root`` in a child with ``TICKLAKE_FAULT=fault``."""
        outcome = root.with_name(root.name + ".outcome.json")
        stdin: IO[str] | None = self.process.stdin
        assert stdin is not None
        order = {"scenario": scenario, "root": str(root), "fault": fault, "outcome": str(outcome)}
        stdin.write(json.dumps(order) + "\n")
        stdin.flush()
        code = int(self._line(timeout))
        assert code in (0, KILLED), f"{fault}: child exited {code}:\n{self.log.read_text()[-3000:]}"
        if not outcome.exists():
            return Outcome(code, returned=False)
        return Outcome(code, returned=True, **json.loads(outcome.read_text()))


@pytest.fixture(scope="module")
def zygote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zygote]:
    log = tmp_path_factory.mktemp("zygote") / "stderr.txt"
    paths = [str(REPO), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {k: v for k, v in os.environ.items() if k != "TICKLAKE_FAULT"}
    with log.open("w") as err:
        process = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(ZYGOTE)],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env={**env, "PYTHONPATH": os.pathsep.join(paths)},
        )
    z = Zygote(process, log)
    assert z._line(60) == "ready"
    yield z
    assert process.stdin is not None and process.stdout is not None
    process.stdin.close()
    process.wait(timeout=30)
    process.stdout.close()


def rerun_converges(root: Path, scenario: str, ref: Reference, what: str) -> None:
    """The same write in this (clean) process succeeds, gives the uninterrupted lake and removes stale
    temporaries."""
    SCENARIOS[scenario](ticklake.Lake(root))
    assert ref.label(lake_files(root)) == ref.label(ref.new), f"{what}: the rerun did not converge"
    assert temporaries(root) == [], f"{what}: stale temporaries left after the rerun"
    assert strays(root) == [], what
    assert ticklake.Lake(root).validate() == [], what


def readable(root: Path, names: list[str], what: str) -> None:
    """Each file reads back with pyarrow, page checksums verified."""
    for name in names:
        try:
            pq.read_table(root / name, page_checksum_verification=True)
        except Exception as err:  # pragma: no cover - reported as the failure
            pytest.fail(f"{what}: {name} is not readable: {err}")


# ------------------------------------------------------------------------------------------------------- tests


def test_the_scenarios_touch_what_they_say(references: dict[str, Reference]) -> None:
    """Guards the harness: several files per write, a removal between two writes, trades and quotes."""
    assert [s for _, s in references["bars"].steps] == ["written"] * 4
    assert [Path(n).name for n, _ in references["bars"].steps] == [
        "QQQ.2024-01.parquet",
        "SPY.2024-01.parquet",
        "SPY.2024-02.parquet",
        "SPY.2024-04.parquet",
    ]
    assert references["replace"].steps == [
        ("bars/1m/SPY.2024-01.parquet", "written"),
        ("bars/1m/SPY.2024-02.parquet", "removed"),
        ("bars/1m/SPY.2024-03.parquet", "written"),
    ]
    assert references["ticks"].steps == [
        ("trades/SPY.2024-01.parquet", "written"),
        ("trades/SPY.2024-02.parquet", "written"),
        ("quotes/SPY.2024-01.parquet", "written"),
        ("quotes/SPY.2024-02.parquet", "written"),
    ]


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_a_kill_at_every_pass_of_every_point_leaves_whole_files_and_a_rerun_converges(
    tmp_path: Path, template: Path, references: dict[str, Reference], zygote: Zygote, scenario: str, point: str
) -> None:
    ref = references[scenario]
    passes = ref.passes(point)
    passing = [i for i, (_, status) in enumerate(ref.steps) if status == PASSED_BY[point]]
    for k in range(1, passes + 2):
        what = f"{scenario}, TICKLAKE_FAULT={point}:{k}"
        root = tmp_path / f"k{k}"
        shutil.copytree(template, root)
        outcome = zygote.run(scenario, root, f"{point}:{k}")
        if k > passes:
            # Past the last pass the point never fires: the child finishes, which proves the count exact.
            assert outcome == Outcome(0, returned=True), what
            assert ref.label(lake_files(root)) == ref.label(ref.new), what
            assert temporaries(root) == [] and strays(root) == [], what
            continue
        assert outcome == Outcome(KILLED, returned=False), f"{what}: the child was not killed: {outcome}"
        files = lake_files(root)
        labels = ref.label(files)
        assert "NEITHER" not in labels.values(), f"{what}: torn or foreign file: {labels}"
        # Exactly the steps before the k-th pass are published (and that pass's own file when already renamed or
        # unlinked); everything after it is still old.
        assert labels == ref.label(ref.after(passing[k - 1], point)), what
        readable(root, list(files), what)
        assert strays(root) == [], f"{what}: visible in a data folder"
        temps = temporaries(root)
        if point in VISIBLE:
            assert temps == [], what
        else:
            target = Path(ref.steps[passing[k - 1]][0]).name
            assert len(temps) == 1 and temps[0].name.startswith(target + "."), (what, temps)
            assert not temps[0].name.endswith(".parquet"), what
        rerun_converges(root, scenario, ref, what)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_an_fsync_eio_is_a_typed_error_naming_the_file_and_changes_nothing(
    tmp_path: Path, template: Path, references: dict[str, Reference], zygote: Zygote, scenario: str
) -> None:
    ref = references[scenario]
    written = [i for i, (_, status) in enumerate(ref.steps) if status == "written"]
    for k in range(1, len(written) + 2):
        what = f"{scenario}, TICKLAKE_FAULT=write.fsync-eio:{k}"
        root = tmp_path / f"k{k}"
        shutil.copytree(template, root)
        outcome = zygote.run(scenario, root, f"write.fsync-eio:{k}")
        assert outcome.code == 0 and outcome.returned, (what, outcome)
        if k > len(written):
            assert outcome.error is None, (what, outcome)
            continue
        # The error surfaces (no retry-and-trust): a ticklake error, not a bare OSError or a panic.
        assert outcome.module == "ticklake.exceptions" and outcome.error is not None, (what, outcome)
        cls = getattr(ticklake, outcome.error)
        assert issubclass(cls, ticklake.LakeIOError) and issubclass(cls, ticklake.TicklakeError), (what, outcome)
        step = written[k - 1]
        target = ref.steps[step][0]
        assert Path(target).name in outcome.message and "os error 5" in outcome.message, (what, outcome)
        # The write stopped at the failing file: it and everything after it are untouched.
        assert ref.label(lake_files(root)) == ref.label(ref.after(step)), what
        assert temporaries(root) == [] and strays(root) == [], what
        rerun_converges(root, scenario, ref, what)


def test_an_fsync_eio_names_the_lake_file_not_only_its_temporary(
    tmp_path: Path, template: Path, zygote: Zygote
) -> None:
    root = tmp_path / "lake"
    shutil.copytree(template, root)
    outcome = zygote.run("bars", root, "write.fsync-eio:1")
    assert outcome.error == "LakeIOError", outcome
    # The message should name the lake file being written (the write's first), not only the temporary under
    # .ticklake/tmp/, which no longer exists when the error surfaces.
    assert str(root / "bars/1m/QQQ.2024-01.parquet") in outcome.message, outcome.message
