"""The package's import graph (ARCHITECTURE.md): layers import only from below, and no cycle exists.

The graph is read from the source with `ast`, every import counted wherever it stands (module level or
inside a function), so an import moved into a function to dodge a cycle still shows up here.
"""

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "optimbench"

# Bottom to top. A module may import modules of its own layer (acyclically) and of the layers below.
LAYERS = {
    "helpers": {"errors", "io", "stats", "compare", "metrics", "labels", "files", "cli", "hardware", "provenance",
                "store", "memory", "events", "tables"},
    "domain": {"functions", "problems", "resnet", "paper_models", "optim", "demon", "yellowfin", "split", "formats",
               "formats.common", "formats.canonical", "formats.cifar10", "formats.cifar100", "formats.stl10",
               "formats.idx", "formats.ptb", "formats.__main__", "deepobs_models", "formats.quadratic", "published"},
    "plan": {"config", "specs", "search", "runs", "plan"},
    "stages": {"train", "device_data", "checkpoints", "descent", "tune", "aggregate", "claims", "performance",
               "focus", "cost", "plots", "report", "render", "sections", "status", "calibrate"},
}
LEVEL = {module: i for i, names in enumerate(LAYERS.values()) for module in names}
# Imports of optimbench modules inside a function that are kept there on purpose, each with its reason.
# None today: resnet and paper_models no longer import torchvision (their few torchvision building blocks
# are written out, checked against torchvision in their tests: importing torchvision imports torch._dynamo,
# 1.2 s of every job's start-up, issue 31), so problems and config import them at module level.
# tests/test_startup.py checks what a training or descent job's entry point imports.
LAZY: set[tuple[str, str]] = set()


def module_name(path: Path) -> str:
    name = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    return "" if name == "__init__" else name.removesuffix(".__init__")


def imports(path: Path) -> list[tuple[str, bool]]:
    """(imported optimbench module, inside a function?) for every import statement of the file."""
    tree = ast.parse(path.read_text())
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                found.extend((a.name, nested) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                for alias in child.names:
                    full = f"{child.module}.{alias.name}"
                    # `from optimbench import plan` names a module; `from optimbench.plan import Plan` a member.
                    path = PACKAGE / full.replace("optimbench.", "", 1).replace(".", "/")
                    found.append((full if path.with_suffix(".py").exists() or path.is_dir()
                                  else child.module, nested))
            visit(child, nested)

    visit(tree, False)
    return [(name.removeprefix("optimbench."), nested) for name, nested in found
            if name.startswith("optimbench.") and name != "optimbench"]


def graph() -> dict[str, list[tuple[str, bool]]]:
    return {module_name(path): [(target, nested) for target, nested in imports(path) if target != module_name(path)]
            for path in sorted(PACKAGE.rglob("*.py")) if module_name(path) != ""}


def test_every_module_has_a_layer():
    assert sorted(set(graph()) - set(LEVEL)) == [], "add the new module to LAYERS (and ARCHITECTURE.md)"


def test_no_import_goes_up_a_layer():
    upward = [f"{source} ({layer(source)}) imports {target} ({layer(target)})"
              for source, targets in graph().items() for target, _ in targets
              if LEVEL.get(target, -1) > LEVEL.get(source, 99)]
    assert upward == []


def layer(module: str) -> str:
    return list(LAYERS)[LEVEL[module]]


def test_the_import_graph_has_no_cycle():
    edges = {source: {target for target, _ in targets} for source, targets in graph().items()}
    state, cycles = {}, []

    def walk(node, path):
        state[node] = "open"
        for target in sorted(edges.get(node, ())):
            if state.get(target) == "open":
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                walk(target, path + [target])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            walk(node, [node])
    assert cycles == []


def test_function_level_imports_are_only_the_documented_lazy_ones():
    nested = sorted((source, target) for source, targets in graph().items() for target, inside in targets if inside)
    assert set(nested) <= LAZY, f"move these imports to module level: {sorted(set(nested) - LAZY)}"


@pytest.mark.parametrize("cycle", [{"a": ["b"], "b": ["a"]}])
def test_the_cycle_check_finds_a_planted_cycle(tmp_path, monkeypatch, cycle):
    """The checker itself: a package whose two modules import each other inside functions fails it."""
    pkg = tmp_path / "optimbench"
    pkg.mkdir()
    for name, targets in cycle.items():
        (pkg / f"{name}.py").write_text("".join(f"def f():\n    from optimbench import {t}\n" for t in targets))
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", pkg)
    monkeypatch.setitem(LEVEL, "a", 0)
    monkeypatch.setitem(LEVEL, "b", 0)
    with pytest.raises(AssertionError):
        test_the_import_graph_has_no_cycle()
    with pytest.raises(AssertionError):
        test_function_level_imports_are_only_the_documented_lazy_ones()
