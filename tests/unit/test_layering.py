"""The layers import downwards only: schemas <- models <- connectors <- jobs, and the pure
logic (schemas/, models/) never imports pyflink. Read from the source with `ast`, so a lazy
import inside a function counts as much as one at the top of a module. Command modules
(`cli.py`, the typer entry points of each area) wire the layers together and are exempt."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# package -> top-level packages it must never import
FORBIDDEN = {
    "schemas": {"models", "connectors", "jobs", "bench", "deploy", "pyflink"},
    "models": {"connectors", "jobs", "bench", "deploy", "pyflink"},
    "connectors": {"jobs", "bench"},
}


def _imported_tops(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    tops: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            tops.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            tops.add(node.module.split(".")[0])
    return tops


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_point_down(package):
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imported_tops(path) & FORBIDDEN[package])
        for path in sorted((ROOT / package).rglob("*.py"))
        if path.name != "cli.py"
    }
    offenders = {name: bad for name, bad in offenders.items() if bad}
    assert offenders == {}


def test_the_checker_sees_lazy_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from jobs.config import JobConfig\n    import pyflink\n")
    assert _imported_tops(module) == {"jobs", "pyflink"}
