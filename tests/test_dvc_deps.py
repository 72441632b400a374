"""Every pipeline module a stage runs is one of its DVC dependencies, so changing the code re-runs the stage."""

from __future__ import annotations

import ast
import re

import pytest
import yaml

from tests.conftest import REPO


def run_time_nodes(tree: ast.AST):
    """Every node of `tree` but those under `if TYPE_CHECKING:`, imports for type hints that never run."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            continue
        yield node
        yield from run_time_nodes(node)


def pipeline_imports(module: str, seen: set[str] | None = None) -> set[str]:
    """`module` and every pipeline module it imports when it runs, directly or not (read from the source, not
    executed)."""
    seen = set() if seen is None else seen
    if module in seen:
        return seen
    seen.add(module)
    tree = ast.parse((REPO / "pipeline" / f"{module}.py").read_text())
    for node in run_time_nodes(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "pipeline":
                names = [a.name for a in node.names]
            elif node.module.startswith("pipeline."):
                names = [node.module.split(".")[1]]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".")[1] for a in node.names if a.name.startswith("pipeline.")]
        for name in names:
            if (REPO / "pipeline" / f"{name}.py").is_file():
                pipeline_imports(name, seen)
    return seen


def test_imports_for_type_hints_only_are_not_dependencies():
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import os\nimport sys\n")
    names = [a.name for node in run_time_nodes(tree) if isinstance(node, ast.Import) for a in node.names]
    assert names == ["sys"]


STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_depends_on_every_module_it_runs(stage):
    entry = re.search(r"python -m pipeline\.(\w+)", STAGES[stage]["cmd"]).group(1)
    deps = {d for d in STAGES[stage]["deps"] if isinstance(d, str)}
    missing = sorted(f"pipeline/{m}.py" for m in pipeline_imports(entry) if f"pipeline/{m}.py" not in deps)
    assert not missing, f"dvc.yaml stage {stage!r} runs but does not depend on {missing}"


def declared_paths(stage: dict) -> list[str]:
    """Every data path a stage declares (deps, outs, metrics), without the code it depends on."""
    entries = [e for key in ("deps", "outs", "metrics") for e in stage.get(key, [])]
    paths = [e if isinstance(e, str) else next(iter(e)) for e in entries]
    return [p for p in paths if not p.startswith("pipeline/")]


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_data_paths_come_from_params(stage):
    """conf/'s `paths` is the one place a folder is named: dvc.yaml templates every data path from it, so a
    changed `paths.*` moves the stage's declared inputs and outputs along with what the code reads and writes."""
    literal = [p for p in declared_paths(STAGES[stage]) if not p.startswith("${paths.")]
    assert not literal, f"dvc.yaml stage {stage!r} names data paths literally: {literal}; use ${{paths.…}}"


def test_top_level_plots_come_from_params():
    """A plot is named by its file or folder, or (a titled plot) draws files named in its `y`."""
    plots = yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]
    files = [
        f for p in plots for name, spec in p.items() for f in (spec["y"] if isinstance(spec["y"], dict) else [name])
    ]
    assert files and all(f.startswith("${paths.plots}/") for f in files), files
