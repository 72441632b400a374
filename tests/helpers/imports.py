"""Which pipeline modules a module imports, read from its source (never executed): for the tests of the code's
layout, of dvc.yaml's dependencies (tests/project/) and of the config schema's imports (tests/config/)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.helpers.repos import REPO


def run_time_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node of `tree` but those under `if TYPE_CHECKING:`, imports for type hints that never run."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            continue
        yield node
        yield from run_time_nodes(node)


def module_file(module: str) -> Path | None:
    """The file of a dotted pipeline module (`pipeline.data.idx` -> pipeline/data/idx.py, a package -> its
    __init__.py); None for anything that is not one of ours."""
    parts = module.split(".")
    if parts[0] != "pipeline":
        return None
    for path in (REPO.joinpath(*parts).with_suffix(".py"), REPO.joinpath(*parts, "__init__.py")):
        if path.is_file():
            return path
    return None


def imported_modules(node: ast.AST) -> list[str]:
    """The pipeline modules an import statement names: `from pipeline.data import idx` names pipeline.data.idx,
    `from pipeline.data.idx import read_bytes` names pipeline.data.idx."""
    if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "pipeline":
        submodules = [f"{node.module}.{a.name}" for a in node.names]
        return [m if module_file(m) else node.module for m in submodules]
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "pipeline"]
    return []


def imported_packages(node: ast.AST) -> list[str]:
    """The top-level packages an import statement names: `matplotlib` for `from matplotlib.figure import Figure`."""
    if isinstance(node, ast.Import):
        return [a.name.split(".")[0] for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.module:
        return [node.module.split(".")[0]]
    return []


def pipeline_imports(module: str, seen: set[Path] | None = None) -> set[Path]:
    """The file of `module` and of every pipeline module it imports when it runs, directly or not (read from the
    source, not executed)."""
    seen = set() if seen is None else seen
    path = module_file(module)
    if path is None or path in seen:
        return seen
    seen.add(path)
    for node in run_time_nodes(ast.parse(path.read_text())):
        for name in imported_modules(node):
            pipeline_imports(name, seen)
    return seen


def pipeline_modules() -> dict[str, Path]:
    """Every module of the pipeline by its dotted name (`pipeline.data.idx`), packages by their __init__.py's."""
    modules = {}
    for path in sorted((REPO / "pipeline").rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules
