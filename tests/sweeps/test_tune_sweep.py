"""The comparison a search of several variants ends with: the command it runs (the run itself:
tests/system/test_tune_sweep.py)."""

from __future__ import annotations

import sys

from pipeline.sweeps.tune_sweep import comparison_command


def test_the_comparison_trains_every_tuned_study_over_every_seed_with_the_searchs_other_settings():
    command = comparison_command(
        ["default-mnist-model_plain1", "default-mnist-model_plain3"],
        [42, 43, 44],
        ["model=plain1,plain3", "tune.worker=0,1", "seed=5", "data.train_limit=1000"],
        ["hydra/launcher=parallel", "hydra.launcher.n_jobs=3", "hydra.sweep.dir=elsewhere", "hydra/job_logging=stdout"],
        ["model", "tune.worker"],
    )
    assert command == [
        sys.executable,
        "-m",
        "pipeline.experiment",
        "-m",
        "tune.best_of=default-mnist-model_plain1,default-mnist-model_plain3",
        "seed=42,43,44",
        "data.train_limit=1000",  # kept; the swept keys and the search's own seed are the studies' and seeds' now
        "hydra/launcher=parallel",  # the same launcher, as the search was given it
        "hydra.launcher.n_jobs=3",
        "hydra/job_logging=stdout",
    ]
