"""The tool a sweep runs: train, evaluate, find label issues and report one configuration, in one process.

`python -m pipeline.experiment model=plain3` does it once. With `-m` (a Hydra multirun),
`python -m pipeline.experiment -m model=cnn3_bn,plain3 augment=none,standard` does it for every combination, each a
sweep job (pipeline/sweeps/jobs.py) with its own folder under multirun/ and a child MLflow run under the sweep's
parent run. The name is this tool's alone: not a Hydra `experiment=` file, a DVC experiment or an MLflow experiment
(docs/configuration.md says which is which).
"""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import DictConfig

from pipeline.config.entrypoint import hydra_main
from pipeline.config.schema import validate
from pipeline.core.errors import failure_report, reports_user_errors
from pipeline.core.interrupt import job_stops_on_signals, stop_on_signals
from pipeline.core.shutdown import skip_final_collection
from pipeline.evaluate import evaluate
from pipeline.label_issues import find_issues
from pipeline.report import report
from pipeline.sweeps.jobs import SweepJob, finished_run, start_job, with_job_outputs, with_settings
from pipeline.sweeps.results import kept_line
from pipeline.sweeps.study import best_settings
from pipeline.train import default_run_name, train


def run_experiment(cfg: DictConfig, job_dir: Path, job: SweepJob) -> float:
    """Train, evaluate, find label issues and report one configuration with every output in `job_dir`; returns the accuracy on
    the first test set (what a sweeper optimises), NaN for a failed variant of a sweep."""
    cfg = with_job_outputs(tuned(cfg), job_dir)
    name, parent = job.name, job.parent
    with job_stops_on_signals("experiment"):
        try:
            if (kept := finished_run(job, cfg.tracking)) is not None:  # the sweep run again: it finished the first time
                print(f"experiment: {kept_line(kept)}")
                return kept.metrics.get(f"test.{cfg.data.test_sets[0]}.accuracy", float("nan"))
            train(cfg, name, parent, job.tags())
            results = evaluate(cfg)
            find_issues(cfg)
            report(cfg)
        except Exception as err:
            if parent is None:
                raise
            # In a sweep, one failed variant must not lose the others' comparison: its run is already marked
            # FAILED, the sweep's end lists it and exits non-zero.
            print(f"experiment: {name} failed:{failure_report(err)}", file=sys.stderr, flush=True)
            return float("nan")
    return results[cfg.data.test_sets[0]]["accuracy"]


def tuned(cfg: DictConfig) -> DictConfig:
    """With `tune.best_of=<study>`, the config with the study's training settings and best values (the seed stays
    this run's); else the config as it is."""
    if not cfg.tune.best_of:
        return cfg
    tuned_cfg = with_settings(cfg, best_settings(cfg.tune, cfg.tracking))
    validate(tuned_cfg)
    return tuned_cfg


@hydra_main
@reports_user_errors
def main(cfg: DictConfig) -> float:
    validate(cfg)
    return run_experiment(cfg, *start_job(default_run_name(cfg)))


if __name__ == "__main__":
    skip_final_collection()
    stop_on_signals(main, "experiment")
