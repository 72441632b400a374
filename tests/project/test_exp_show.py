"""What `dvc exp show` shows on a user's first screen: the headline figures of the committed reference run."""

from __future__ import annotations

import os
import re
import shutil

import pytest

from tests.helpers.repos import copy_repo, run

HEADLINE = ["emnist_digits.accuracy", "emnist_digits.loss", "mnist.accuracy", "mnist.loss"]
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@pytest.mark.slow  # starts git and DVC
@pytest.mark.skipif(shutil.which("script") is None, reason="needs util-linux's `script` for a terminal")
def test_the_first_screen_of_dvc_exp_show_is_the_headline(tmp_path):
    """In a terminal `dvc exp show` renders the whole table into `less -S`, which opens on its left 120 columns:
    there, after the experiment's name and date, accuracy and loss per test set, and no other score anywhere (the
    intervals, macro scores and calibration are in metrics/test_details.json, which is not a DVC metric)."""
    repo = copy_repo(tmp_path / "repo")
    env = {**os.environ, "COLUMNS": "120", "DVC_PAGER": "cat"}  # cat: the whole table, as less receives it
    run(["git", "init", "-q"], repo, env)
    run(["git", "add", "-A"], repo, env)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "clone"], repo, env)
    out = ANSI.sub("", run(["script", "-qec", "dvc exp show", "/dev/null"], repo, env).stdout)
    header = next(line for line in out.splitlines() if "Experiment" in line)
    first_screen = header[:120]
    assert [name for name in HEADLINE if name in first_screen] == HEADLINE, first_screen
    assert "…" not in first_screen
    assert "accuracy_ci" not in out and "macro_f1" not in out and "ece" not in header.split()
