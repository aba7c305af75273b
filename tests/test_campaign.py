"""The crash and fault campaign (``tests/campaign.py``): a few trials of each scenario in every run, the long form
(1,000 SIGKILLs) behind the ``campaign`` marker: ``python -m pytest -m campaign``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.campaign import concurrent_writers, imports_with_faults, single_writer


def test_one_writer_killed_at_random(tmp_path: Path) -> None:
    tally = single_writer(tmp_path, 12)
    assert tally.clean(), tally


def test_concurrent_writers_killed_at_random(tmp_path: Path) -> None:
    tally = concurrent_writers(tmp_path, 8)
    assert tally.clean(), tally


def test_imports_against_a_faulty_server_killed_at_random(tmp_path: Path) -> None:
    tally = imports_with_faults(tmp_path, 4)
    assert tally.clean(), tally


@pytest.mark.campaign
def test_campaign_a_thousand_sigkills(tmp_path: Path) -> None:
    tallies = [
        single_writer(tmp_path / "writer", 400, seed=11),
        concurrent_writers(tmp_path / "concurrent", 400, seed=12),
        imports_with_faults(tmp_path / "import", 200, seed=13),
    ]
    assert sum(t.trials for t in tallies) == 1000
    for tally in tallies:
        assert tally.clean(), tally
