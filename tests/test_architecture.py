"""Layering of DESIGN.md, checked on the source with ast: imports point down only,
and each third-party library stays in its one place."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "router"

# module (or package) -> layer; a module may import only from layers <= its own
LAYERS = {
    "errors": 0,
    "domain": 0,
    "params": 0,
    "scenario": 1,
    "network": 1,
    "state": 1,
    "demand": 1,
    "candidates": 2,
    "kernels": 2,
    "features": 2,
    "risk": 3,
    "scoring": 3,
    "solver": 4,
    "strategies": 5,
    "rationale": 5,
    "engine": 5,
    "ledger": 6,
    "simulation": 6,
    "distributed": 6,
    "service": 6,
    "cli": 6,
    "__init__": 6,
}

# third-party library -> the only router modules/packages allowed to import it
CONFINED = {
    "networkx": {"network"},
    "ortools": {"solver"},
    "sklearn": {"risk"},
    "sqlalchemy": {"ledger"},
    "alembic": {"ledger"},
    "fastapi": {"service"},
    "dask": {"distributed"},
    "distributed": {"distributed"},
    "matplotlib": {"simulation"},
    "typer": {"cli"},
    "rich": {"cli", "simulation"},
    "numba": {"kernels"},
    "highspy": set(),  # cannot share a process with ortools: HiGHS goes through MathOpt
}


def _modules():
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        if "migrations" in rel.parts:
            continue
        yield rel.parts[0].removesuffix(".py"), path


def _imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno


def test_every_module_has_a_layer():
    unknown = {top for top, _ in _modules()} - set(LAYERS)
    assert not unknown, f"add these to LAYERS in {__file__}: {sorted(unknown)}"


@pytest.mark.parametrize("top, path", list(_modules()), ids=lambda x: str(x) if isinstance(x, str) else x.name)
def test_imports_point_down_and_libraries_stay_home(top, path):
    bad = []
    for name, line in _imports(path):
        parts = name.split(".")
        if parts[0] == "router" and len(parts) > 1:
            target = parts[1]
            if target in LAYERS and target != top and LAYERS[target] > LAYERS[top]:
                bad.append(f"{path.name}:{line} imports router.{target} (layer {LAYERS[target]}) from layer {LAYERS[top]}")
        elif parts[0] in CONFINED and top not in CONFINED[parts[0]]:
            bad.append(f"{path.name}:{line} imports {parts[0]}, which belongs in {sorted(CONFINED[parts[0]])}")
    assert not bad, "\n".join(bad)


def test_the_checker_catches_a_violation(tmp_path):
    # guard against a checker that passes everything
    f = tmp_path / "x.py"
    f.write_text("from router.engine import Router\nimport sqlalchemy\n")
    names = [n for n, _ in _imports(f)]
    assert names == ["router.engine", "sqlalchemy"]
    assert LAYERS["engine"] > LAYERS["candidates"] and "candidates" not in CONFINED["sqlalchemy"]
