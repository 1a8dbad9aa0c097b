"""samia's layers (docs/architecture.md): every import goes to a lower layer, no module imports
itself through others (no cycle, inside a package either), and the heavy optional frameworks stay
in the one module that needs each.

The check sees every import: module level, inside functions (a lazy import is still a dependency),
relative, and the module paths of lazy exports (``"samia.x.y"`` strings in a package's
``__init__``)."""

from __future__ import annotations

import ast
from pathlib import Path

import samia

LAYERS: list[set[str]] = [
    {"errors", "lazy", "version"},
    {"files", "settings", "settings_groups", "leases"},
    {"types", "request_bodies"},
    {"io", "transforms", "metrics"},
    {"data", "models"},
    {"embeddings"},
    {"predictor"},
    {"selection", "auto", "samplers"},
    {"prompts"},
    {"volume"},
    {"evaluation", "finetuning", "annotate", "segmentation"},
    {"serve"},
    {"study"},
    {"analysis"},
    {"cli"},
]
LAYER_OF = {unit: index for index, units in enumerate(LAYERS) for unit in units}
ROOT = Path(samia.__file__).parent

CONFINED = {
    "ray": {"samia.evaluation.ray_executor"},
    "fastapi": {
        "samia.annotate.app",
        "samia.serve.app",
        "samia.serve.nninteractive",
        "samia.serve.slicer",
        "samia.serve.monailabel",
    },
    "urllib3": {"samia.serve.monailabel"},
    "starlette": {"samia.annotate.app"},
    "uvicorn": {"samia.cli.listen"},
    "blosc2": {"samia.serve.arrays"},
}
"""Third-party frameworks -> the only modules that may import them."""


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_imports(root: Path) -> dict[str, set[str]]:
    """Every module of the package at ``root`` -> the names it imports (absolute dotted names;
    lazy-export strings included)."""
    found: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        name = module_name(path, root)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                targets.update(f"{module}.{alias.name}" for alias in node.names)  # a submodule, or a name of module
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                target = node.value.partition(":")[0]  # a lazy export: "module" or "module:attribute"
                if target.startswith(f"{root.name}.") and target.replace(".", "").replace("_", "").isalnum():
                    targets.add(target)
        found[name] = targets
    return found


def module_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports (``from pkg.x import name`` counts as
    ``pkg.x``, or ``pkg.x.name`` when that is a module)."""
    imports = module_imports(root)
    modules = set(imports)

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    return {
        module: {target for name in names if (target := owner(name)) is not None and target != module}
        for module, names in imports.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _unit(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def test_every_unit_has_a_layer() -> None:
    units = {p.relative_to(ROOT).with_suffix("").parts[0] for p in ROOT.rglob("*.py")} - {"__init__"}
    assert units <= set(LAYER_OF), sorted(units - set(LAYER_OF))


def test_imports_go_down_the_layers_only() -> None:
    upward = [
        f"{module} imports {target}"
        for module, targets in module_graph(ROOT).items()
        if module != "samia"
        for target in targets
        if _unit(target) and _unit(target) != _unit(module) and LAYER_OF[_unit(target)] >= LAYER_OF[_unit(module)]
    ]
    assert not upward, upward


def test_no_module_imports_itself_through_others() -> None:
    assert cycles(module_graph(ROOT)) == []


def test_the_check_sees_lazy_imports_and_finds_a_planted_cycle(tmp_path) -> None:
    graph = module_graph(ROOT)
    assert "samia.evaluation" in graph["samia.cli.evaluate"]  # imported inside the command
    assert "samia.evaluation.driver" in graph["samia.evaluation"]  # a lazy export's module path
    assert "samia.models.bundled" in graph["samia.models"]
    package = tmp_path / "planted"
    (package / "inner").mkdir(parents=True)
    (package / "__init__.py").write_text('EXPORTS = {"run": "planted.inner.b"}\n')
    (package / "inner" / "__init__.py").write_text("")
    (package / "inner" / "a.py").write_text("def f():\n    from .b import g\n    return g\n")
    (package / "inner" / "b.py").write_text("def g():\n    from planted.inner import a\n    return a\n")
    assert cycles(module_graph(package)) == [["planted.inner.a", "planted.inner.b"]]


def test_heavy_frameworks_stay_in_their_module() -> None:
    strays = [
        f"{module} imports {framework}"
        for module, names in module_imports(ROOT).items()
        for framework, allowed in CONFINED.items()
        if module not in allowed and any(name == framework or name.startswith(f"{framework}.") for name in names)
    ]
    assert not strays, strays
