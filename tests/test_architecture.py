"""The architecture and the code's hygiene, checked as part of the test run.

* import-linter (contracts in pyproject.toml): imports point down the layers, no
  cycles between sibling modules, and each third-party library stays in the one
  module or package that owns it (networkx in network.py, OR-Tools in solver/,
  SQLAlchemy in ledger/, Dask in distributed.py, numba in splits/kernel.py...);
* ruff (lint rules in pyproject.toml) on the package, the tests, the benchmarks and scripts;
* mypy on the package.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str) -> str:
    exe = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if exe is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[dev]' installs it")
    return exe


def _run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_import_contracts_hold():
    res = _run(_tool("lint-imports"), "--no-cache")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "0 broken" in res.stdout


def test_ruff_finds_nothing():
    res = _run(_tool("ruff"), "check", "src", "tests", "benchmarks", "scripts")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]


@pytest.mark.slow
def test_mypy_finds_nothing():
    res = _run(_tool("mypy"))
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]


def test_a_layer_violation_is_caught(tmp_path):
    """The contracts bite: a low layer importing the engine breaks the layers contract."""
    import shutil as sh

    copy = tmp_path / "src"
    sh.copytree(ROOT / "src" / "router", copy / "router", ignore=sh.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
    (copy / "router" / "legs.py").write_text(
        (copy / "router" / "legs.py").read_text() + "\nfrom router.engine import Router  # noqa\n"
    )
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    res = subprocess.run(
        [_tool("lint-imports"), "--no-cache"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={"PYTHONPATH": str(copy), "PATH": str(Path(sys.executable).parent)},
    )
    assert res.returncode != 0
    assert "router.legs is not allowed to import router.engine" in res.stdout
