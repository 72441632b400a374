"""How `make test` shares the tests among its processes (tests/conftest.py): files that share a costly session
fixture run on one worker, and the workers take the longest groups first."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import GROUP_OF, TOGETHER, LoadFileTogether, check_together, run_order

ROOT = Path("/repo")


def item(path: str, *fixtures: str) -> SimpleNamespace:
    return SimpleNamespace(path=ROOT / path, fixturenames=["tmp_path", *fixtures])


def test_files_sharing_a_costly_session_fixture_must_be_one_group():
    together = [item(path, "team_server") for path in TOGETHER["slurm, team_server"]]
    check_together(together, ROOT)
    check_together([item("tests/test_alone.py", "served_repo")], ROOT)  # one file makes it once anyway
    with pytest.raises(pytest.UsageError, match=r"tests/system/test_new.py.* share the session fixture fast_repo"):
        check_together(
            [item("tests/system/test_e2e.py", "fast_repo"), item("tests/system/test_new.py", "fast_repo")], ROOT
        )
    with pytest.raises(pytest.UsageError, match="share the session fixture slurm"):
        check_together([item("tests/system/test_slurm.py", "slurm"), item("tests/test_predict.py", "slurm")], ROOT)


def test_a_group_is_one_work_unit_and_every_other_file_its_own():
    scheduler = LoadFileTogether.__new__(LoadFileTogether)  # _split_scope reads nothing of its state
    for path, group in GROUP_OF.items():
        assert scheduler._split_scope(f"{path}::test_x[a-b]") == group
    assert scheduler._split_scope("tests/test_train.py::test_x") == "tests/test_train.py"


def test_the_groups_go_first_then_the_system_tests_then_the_rest_as_collected():
    items = [
        item("tests/config/test_schema.py"),
        item("tests/system/test_sweep.py"),
        item("tests/system/test_e2e.py", "fast_repo"),
        item("tests/test_train.py"),
        item("tests/system/test_slurm.py", "slurm"),
        item("tests/system/test_interrupt.py"),
    ]
    order = [i.path.relative_to(ROOT).as_posix() for i in sorted(items, key=run_order(items, ROOT))]
    assert order == [
        "tests/system/test_slurm.py",
        "tests/system/test_e2e.py",
        "tests/system/test_sweep.py",
        "tests/system/test_interrupt.py",
        "tests/config/test_schema.py",
        "tests/test_train.py",
    ]
