"""samia's layers (docs/architecture.md): every import goes to a lower layer, so there is no cycle.

Imports inside functions count too (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

import samia

LAYERS: list[set[str]] = [
    {"errors", "lazy"},
    {"files", "settings", "leases"},
    {"types"},
    {"io", "transforms", "metrics"},
    {"data", "models"},
    {"embeddings"},
    {"predictor"},
    {"selection", "auto"},
    {"prompts"},
    {"volume"},
    {"evaluate", "finetune", "annotate"},
    {"study"},
    {"analysis"},
    {"cli"},
]
LAYER_OF = {unit: index for index, units in enumerate(LAYERS) for unit in units}
ROOT = Path(samia.__file__).parent


def _imports() -> list[tuple[str, str, str]]:
    """``(importing unit, imported unit, file)`` for every import between two units of samia."""
    found = []
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts == ("__init__",):
            continue
        source = parts[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            for module in modules:
                if module.startswith("samia.") and module.split(".")[1] != source:
                    found.append((source, module.split(".")[1], str(path.relative_to(ROOT))))
    return found


def test_every_unit_has_a_layer() -> None:
    units = {p.relative_to(ROOT).with_suffix("").parts[0] for p in ROOT.rglob("*.py")} - {"__init__"}
    assert units <= set(LAYER_OF), sorted(units - set(LAYER_OF))


def test_imports_go_down_the_layers_only() -> None:
    upward = [
        f"{file}: {source} imports {target}"
        for source, target, file in _imports()
        if LAYER_OF[target] >= LAYER_OF[source]
    ]
    assert not upward, upward


def test_the_check_sees_lazy_imports() -> None:
    assert ("cli", "evaluate") in {(s, t) for s, t, _ in _imports()}  # the CLI imports lazily
