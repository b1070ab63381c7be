"""The layers' import rules (ARCHITECTURE.md): arrows point inward, and schema and resolvers do
not import each other in a circle. Every import of every module counts, those inside functions
too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = {"domain", "services", "adapters", "schema", "resolvers", "gateway", "migrations"}
# What each layer may import of the project, besides itself.
ALLOWED: dict[str, set[str]] = {
    "domain": set(),
    "services": {"domain"},
    "adapters": {"domain", "services"},
    "schema": {"domain", "services"},
    "resolvers": {"domain", "services", "schema"},
}


def imported_packages(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & PROJECT


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_a_layer_imports_only_the_layers_inside_it(layer: str) -> None:
    wrong = {
        str(path.relative_to(ROOT)): sorted(imported_packages(path) - ALLOWED[layer] - {layer})
        for path in sorted((ROOT / layer).rglob("*.py"))
    }
    assert {module: bad for module, bad in wrong.items() if bad} == {}
