"""Where the code is (ROOT) and where the user's project is (project_root): the same folder only when a command runs
in the repository."""

from __future__ import annotations

from pipeline.core.paths import ROOT, project_root
from tests.helpers.repos import REPO


def test_the_project_is_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert project_root({}) == tmp_path.resolve() != ROOT


def test_a_queued_dvc_experiment_runs_in_a_copy_but_its_project_is_the_original(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert project_root({"DVC_ROOT": str(REPO)}) == REPO
    assert project_root({"DVC_ROOT": ""}) == tmp_path.resolve()  # set but empty: the current folder
