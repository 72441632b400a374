"""The DVC remote: after a run, `make push` stores data, model and reports; a new clone on another machine gets
them with `make pull`, and `dvc repro` has nothing to do: the trained model without training."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers.repos import run, stage_env


def make(target: str, path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`make <target>` as documented, with the environment running the tests (`-o`: never rebuilt here)."""
    venv = Path(sys.prefix)
    return run(["make", "-s", f"VENV={venv}", "-o", f"{venv}/.installed", target], path, env)


def test_push_then_a_new_clone_pulls_and_needs_no_training(served_repo):
    s = served_repo
    pushed = make("push", s.path, s.env)
    assert "Running stage" not in pushed.stdout  # the run was complete: push only pushed
    # The default remote, from .dvc/config: the folder beside the repository, shared by clones beside it.
    remote = s.path.parent / "handwriting-lab-dvc-remote"
    assert any((remote / "files" / "md5").iterdir())

    clone = s.path.parent / "second_clone"  # beside the first: the same default remote
    env = stage_env(None)  # as on another machine: no data mirror, no tracking server
    run(["git", "clone", "-q", str(s.path), str(clone)], s.path.parent, env)
    make("pull", clone, env)
    assert "Running stage" not in run(["dvc", "repro"], clone, env).stdout
    assert "up to date" in run(["dvc", "status"], clone, env).stdout
    for name in ("models/model.keras", "models/run.json", "data/prepared/mnist.npz", "reports/summary.pdf"):
        assert (clone / name).read_bytes() == (s.path / name).read_bytes(), name
