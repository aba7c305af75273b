"""The pure-Rust build (``make test-rust``, ``--no-default-features``) and the wheel's build (the ``python``
feature) ask for the same features of every crate they share, so CI compiles arrow, parquet and object_store once
and the Rust tests reuse the wheel's build (see ``Cargo.toml``'s comment at ``[dependencies]``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _features(edges: str, *flags: str) -> dict[str, str]:
    """Each crate of the build's graph (``cargo tree``) and the features it is built with."""
    out = subprocess.run(
        ["cargo", "tree", "--locked", "-e", edges, "-f", "{p}|{f}", "--prefix", "none", *flags],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    crates: dict[str, str] = {}
    for line in out.splitlines():
        package, _, features = line.removesuffix(" (*)").partition("|")
        if package and not package.startswith("ticklake "):
            crates[package] = features
    return crates


@pytest.mark.skipif(shutil.which("cargo") is None, reason="needs cargo (the Rust toolchain) on PATH")
def test_the_pure_build_and_the_wheel_share_every_crates_features() -> None:
    wheel = _features("normal")  # what maturin builds: the default features, no dev-dependencies
    pure = _features("normal,dev", "--no-default-features")  # what `cargo test --no-default-features` builds
    shared = wheel.keys() & pure.keys()
    assert {"parquet", "arrow-array", "object_store"} <= {p.split()[0] for p in shared}
    differ = {p: (wheel[p], pure[p]) for p in shared if wheel[p] != pure[p]}
    assert differ == {}, f"crates CI would compile twice (the wheel's features, the pure build's): {differ}"
