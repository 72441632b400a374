"""The label_issues stage on the tests' tiny setup: labels flipped on purpose in a prepared test set come first in
the review queue, flagged, named by their official rows, written and logged; bad input is one line and exit 1, and nothing is written."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
from omegaconf import DictConfig

from pipeline.core.errors import reports_user_errors
from pipeline.core.files import read_json, write_npz
from pipeline.data.datasets import load_dataset, prepared_path, save_dataset
from pipeline.label_issues import find_issues
from tests.helpers.configs import tiny_config
from tests.helpers.repos import REPO
from tests.helpers.stage_outputs import start_run_ref
from tests.helpers.synthetic import tiny_workdir

FLIPPED = {"mnist": [3, 40, 77], "emnist_digits": [5, 50, 95]}  # positions in each 100-image test set


def official_rows(n: int) -> np.ndarray:
    """Rows as a stand-in's test side has them: not 0..n-1 of its file."""
    return 5000 + 7 * np.arange(n, dtype=np.int64)


def flip_and_predict(cfg: DictConfig, name: str) -> None:
    """Test set `name` with the labels at FLIPPED[name] changed to another class in the prepared file and official
    rows that are not its positions; and the confident probabilities of the true classes that evaluate would
    write for it (predictions/<name>.npz)."""
    path = prepared_path(cfg.paths.prepared, name)
    ds = load_dataset(path)
    true = ds.y_test
    given = true.copy()
    given[FLIPPED[name]] = (true[FLIPPED[name]] + 1) % 10
    save_dataset(path, ds.__class__(**{**ds.__dict__, "y_test": given, "test_rows": official_rows(len(true))}))
    probs = np.full((len(true), 10), 0.02)
    probs[np.arange(len(true)), true] = 0.82
    write_npz(Path(cfg.paths.predictions) / f"{name}.npz", probs=probs, y_true=given)


@pytest.fixture
def predicted(tmp_path, empty_store) -> tuple[DictConfig, str]:
    """A working folder as evaluate leaves it, with FLIPPED labels in both test sets; the config and the run's id."""
    with pytest.MonkeyPatch.context() as mp, tiny_workdir(tmp_path, mp, empty_store):
        cfg = tiny_config(["label_issues.max_shown=2", "label_issues.review=10"])
        run_id = start_run_ref(Path(cfg.paths.models), cfg)
        for name in cfg.data.test_sets:
            flip_and_predict(cfg, name)
        yield cfg, run_id


def test_finds_the_flipped_labels_by_their_official_rows_and_logs_them(predicted):
    cfg, run_id = predicted
    results = find_issues(cfg)
    assert set(results) == set(cfg.data.test_sets) == set(FLIPPED)
    for name, positions in FLIPPED.items():
        rows = list(csv.DictReader((Path("label_issues") / f"{name}.csv").open()))
        assert len(rows) == 10  # label_issues.review, whatever cleanlab's filter flags: the flipped first
        assert sorted(int(r["index"]) for r in rows[:3]) == official_rows(100)[positions].tolist()
        assert [r["flagged"] for r in rows] == ["true"] * 3 + ["false"] * 7
        columns = ["index", "given_label", "suggested_label", "score", "flagged"] + [f"p_{d}" for d in range(10)]
        assert list(rows[0]) == columns
        assert all(int(r["given_label"]) == (int(r["suggested_label"]) + 1) % 10 for r in rows[:3])
        assert (Path("label_issues") / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"
        assert results[name] == {
            "images": 100,
            "flagged": 3,
            "errors": 3,
            "flagged_errors": 3,
            "accuracy_excluding_flagged": 1.0,
            "queue": 10,
            "queue_errors": 3,
        }
    assert read_json(Path("metrics/label_issues.json")) == results
    run = mlflow.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["label_issues.mnist.flagged"] == 3
    assert run.data.metrics["label_issues.emnist_digits.accuracy_excluding_flagged"] == 1.0
    logged = {f.path for f in mlflow.MlflowClient().list_artifacts(run_id, "label_issues")}
    assert logged == {f"label_issues/{name}.{ext}" for name in FLIPPED for ext in ("csv", "pdf")}


def test_the_same_input_gives_the_same_csv_and_metrics_bytes(predicted):
    cfg, _ = predicted
    find_issues(cfg)
    first = {p: p.read_bytes() for p in (Path("label_issues/mnist.csv"), Path("metrics/label_issues.json"))}
    find_issues(cfg)
    assert {p: p.read_bytes() for p in first} == first


def ends_as_user_error(cfg: DictConfig, user_error) -> str:
    _, err = user_error(lambda: reports_user_errors(find_issues)(cfg))
    assert err.count("\n") == 1, err  # one line
    assert not Path("label_issues").exists() and not Path("metrics/label_issues.json").exists()
    return err


def test_probabilities_of_the_wrong_shape_are_one_line_and_nothing_written(predicted, user_error):
    cfg, run_id = predicted
    write_npz(Path("predictions/emnist_digits.npz"), probs=np.full((100, 9), 1 / 9), y_true=np.zeros(100, np.uint8))
    err = ends_as_user_error(cfg, user_error)
    assert "predictions/emnist_digits.npz: probabilities of shape [100, 9], expected [100, 10]" in err
    assert mlflow.get_run(run_id).info.status == "FAILED"


def test_a_missing_predictions_file_is_one_line_and_nothing_written(predicted, user_error):
    cfg, _ = predicted
    Path("predictions/emnist_digits.npz").unlink()
    err = ends_as_user_error(cfg, user_error)
    assert "no predictions for test set emnist_digits — run the evaluate stage first" in err


def test_labels_that_are_not_the_test_set_s_are_refused(predicted, user_error):
    cfg, _ = predicted
    probs = np.full((100, 10), 0.1)
    write_npz(Path("predictions/mnist.npz"), probs=probs, y_true=np.zeros(100, np.uint8))
    assert "the prepared data changed since evaluate ran" in ends_as_user_error(cfg, user_error)


@pytest.mark.slow  # a real entrypoint process
def test_stage_process_on_a_wrong_shape_exits_1_with_one_line(predicted):
    write_npz(Path("predictions/mnist.npz"), probs=np.full((100, 3), 1 / 3), y_true=np.zeros(100, np.uint8))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.label_issues",
            "experiment=fast",
            "evaluate.limit=null",
            "hydra.run.dir=.",
            "hydra.output_subdir=null",
            "hydra/job_logging=stdout",
        ],
        cwd=Path.cwd(),  # the working folder: its relative paths, its store
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": "0"},
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: predictions/mnist.npz: probabilities of shape [100, 3]"), result.stderr
    assert not Path("label_issues").exists()
