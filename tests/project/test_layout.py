"""The shape of pipeline/: what runs is on top (the stages and the tools, `python -m pipeline.<name>`), everything
they use is in a few packages by concern, and the imports between modules and between packages go one way."""

from __future__ import annotations

import ast
from collections.abc import Collection, Mapping

import pytest

from tests.helpers.imports import imported_modules, imported_packages, pipeline_modules, run_time_nodes

MODULES = pipeline_modules()
PACKAGES = sorted(m for m, path in MODULES.items() if path.name == "__init__.py" and m != "pipeline")
ENTRYPOINTS = sorted(m for m, path in MODULES.items() if path.parent.name == "pipeline" and path.name != "__init__.py")
LIBRARY = sorted(m for m in MODULES if m.count(".") >= 2)  # pipeline.<package>.<module>


def tree(module: str) -> ast.Module:
    return ast.parse(MODULES[module].read_text(encoding="utf-8"))


def imports(module: str) -> set[str]:
    """The pipeline modules `module` imports anywhere: at the top, in a function, for type hints only."""
    return {n for node in ast.walk(tree(module)) for n in imported_modules(node) if n in MODULES and n != module}


def cycles(graph: Mapping[str, Collection[str]]) -> list[list[str]]:
    """The groups of nodes that reach each other (the strongly connected components of more than one node, by
    Tarjan's algorithm), each sorted; [] for a graph whose edges all go one way."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while not group or group[-1] != node:
                group.append(stack.pop())
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def package(module: str) -> str:
    """`pipeline.data` for `pipeline.data.idx`; `pipeline` for a stage or a tool."""
    return module.rpartition(".")[0] if MODULES[module].name != "__init__.py" else module


def test_cycles_are_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_modules():
    """Every import counts, one made inside a function or for type hints only too: two modules that need each
    other are one concern in two files, or a third thing both need that belongs elsewhere."""
    found = cycles({m: imports(m) for m in MODULES})
    assert not found, f"modules that import each other, directly or not: {found}"


def test_no_import_cycle_between_packages():
    """The packages form layers (core at the bottom, sweeps at the top): none uses one that uses it."""
    graph: dict[str, set[str]] = {p: set() for p in PACKAGES}
    for module in LIBRARY:
        graph[package(module)] |= {package(m) for m in imports(module) if package(m) in graph} - {package(module)}
    found = cycles(graph)
    assert not found, f"packages that import each other, directly or not: {found}"


@pytest.mark.parametrize("module", LIBRARY)
def test_library_code_does_not_import_a_stage_or_a_tool(module):
    """What the stages and tools share lives in the packages; an entrypoint is a shell that nothing else needs."""
    entrypoints = sorted(imports(module) & set(ENTRYPOINTS))
    assert not entrypoints, f"{module} imports {entrypoints}: move what it needs from there into a package"


def runs_as_a_script(module: str) -> bool:
    """Whether `module` has an `if __name__ == "__main__":` block."""
    return any(
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
        and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in node.test.comparators)
        for node in ast.walk(tree(module))
    )


@pytest.mark.parametrize("module", ENTRYPOINTS)
def test_what_is_on_top_runs(module):
    """`ls pipeline/` shows what runs: every module on top is a `python -m pipeline.<name>` entrypoint."""
    assert runs_as_a_script(module), f"{module} is not a command: library code belongs in a package"


@pytest.mark.parametrize("module", LIBRARY)
def test_what_is_in_a_package_does_not_run_as_a_script(module):
    assert not runs_as_a_script(module), f"{module} is a command: commands belong on top, in pipeline/"


@pytest.mark.parametrize("name", PACKAGES)
def test_a_package_says_its_concern_in_one_line_and_holds_nothing_else(name):
    """Its __init__.py is its docstring alone: importing one module of a package runs nothing else (which is also
    why dvc.yaml need not list the __init__.py files)."""
    body = tree(name).body
    docstring = ast.get_docstring(tree(name))
    assert docstring and "\n" not in docstring, f"{MODULES[name]}: a one-line docstring saying what the package is for"
    assert len(body) == 1, f"{MODULES[name]}: nothing but the docstring"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_only_the_figures_draw(module):
    """matplotlib is imported (when the code runs: type hints aside) in pipeline/figures/ alone."""
    drawing = any("matplotlib" in imported_packages(node) for node in run_time_nodes(tree(module)))
    assert not drawing or package(module) == "pipeline.figures", f"{module} imports matplotlib: draw in figures/"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_only_paths_knows_where_the_project_is(module):
    """The repository and conf/ are found from pipeline/core/paths.py's own file, and nowhere else."""
    uses_file = any(isinstance(n, ast.Name) and n.id == "__file__" for n in ast.walk(tree(module)))
    assert not uses_file or module == "pipeline.core.paths", f"{module}: use pipeline.core.paths (ROOT, CONF)"
