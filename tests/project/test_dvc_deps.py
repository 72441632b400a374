"""A stage's DVC dependencies are the pipeline modules it runs: changing its code re-runs it, changing other code
does not."""

from __future__ import annotations

import ast
import re

import pytest
import yaml

from tests.helpers.imports import imported_modules, pipeline_imports, run_time_nodes
from tests.helpers.repos import REPO


def test_imports_for_type_hints_only_are_not_dependencies():
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import os\nimport sys\n")
    names = [a.name for node in run_time_nodes(tree) if isinstance(node, ast.Import) for a in node.names]
    assert names == ["sys"]


STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_depends_on_every_module_it_runs(stage):
    entry = re.search(r"python -m (pipeline\.\w+)", STAGES[stage]["cmd"]).group(1)
    deps = {d for d in STAGES[stage]["deps"] if isinstance(d, str)}
    runs = {path.relative_to(REPO).as_posix() for path in pipeline_imports(entry)}
    missing = sorted(runs - deps)
    assert not missing, f"dvc.yaml stage {stage!r} runs but does not depend on {missing}"
    # And nothing more: a module the stage never imports would rerun it for nothing.
    extra = sorted(d for d in deps - runs if d.startswith("pipeline/"))
    assert not extra, f"dvc.yaml stage {stage!r} depends on {extra}, which it does not run"


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_code_deps_exist(stage):
    """A module moved or deleted leaves no stale path behind, which DVC would only report when the stage runs."""
    code = [d for d in STAGES[stage]["deps"] if isinstance(d, str) and d.startswith("pipeline/")]
    absent = [d for d in code if not (REPO / d).is_file()]
    assert not absent, f"dvc.yaml stage {stage!r} depends on files that do not exist: {absent}"


def test_imports_name_the_modules_they_load():
    """`from pipeline.core import errors` loads pipeline/core/errors.py, and so does `from pipeline.core.errors
    import first_line`."""
    tree = ast.parse("from pipeline.core import errors\nfrom pipeline.core.errors import first_line\nimport os\n")
    assert [m for node in tree.body for m in imported_modules(node)] == ["pipeline.core.errors", "pipeline.core.errors"]


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
