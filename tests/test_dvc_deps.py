"""Every pipeline module a stage runs is one of its DVC dependencies, so changing the code re-runs the stage."""

from __future__ import annotations

import ast
import re

import pytest
import yaml

from tests.conftest import REPO


def pipeline_imports(module: str, seen: set[str] | None = None) -> set[str]:
    """`module` and every pipeline module it imports, directly or not (read from the source, not executed)."""
    seen = set() if seen is None else seen
    if module in seen:
        return seen
    seen.add(module)
    tree = ast.parse((REPO / "pipeline" / f"{module}.py").read_text())
    for node in ast.walk(tree):
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


STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_depends_on_every_module_it_runs(stage):
    entry = re.search(r"python -m pipeline\.(\w+)", STAGES[stage]["cmd"]).group(1)
    deps = {d for d in STAGES[stage]["deps"] if isinstance(d, str)}
    missing = sorted(f"pipeline/{m}.py" for m in pipeline_imports(entry) if f"pipeline/{m}.py" not in deps)
    assert not missing, f"dvc.yaml stage {stage!r} runs but does not depend on {missing}"
