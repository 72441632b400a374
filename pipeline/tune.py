"""The tool that tunes: `python -m pipeline.tune` searches the space of conf/search/<name>.yaml with Optuna (TPE,
pruning after each epoch), each trial a training (pipeline/train.py) whose best validation metric (`train.monitor`)
is the objective — never a test set. The budget is `tune.trials` (completed or pruned) and/or `tune.minutes`.

The study lives in a database beside the MLflow store (`tune.storage`), so the same command resumes an interrupted
search: a trial cut by Ctrl-C or SIGTERM ends KILLED in MLflow and failed in the study, and is not counted. In
MLflow, a parent run per search holds a child run per trial (named by its values; pruned ones say so), the best
trial and Optuna's figures.

With `-m` the search is a Hydra multirun (pipeline/sweeps/tune_sweep.py): `tune.worker=0,1` runs parallel workers
on one study, any other swept setting (`model=compact,plain3`) a study each, then their tuned versions compared.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
from omegaconf import DictConfig

from pipeline.config.entrypoint import hydra_main
from pipeline.config.schema import plain_settings, validate
from pipeline.core import interrupt
from pipeline.core.errors import reports_user_errors
from pipeline.core.files import read_json
from pipeline.core.interrupt import Interrupted, job_stops_on_signals, stop_on_signals
from pipeline.core.metric_direction import higher_is_better
from pipeline.core.shutdown import skip_final_collection
from pipeline.modeling.pruning import PruneUnpromising
from pipeline.sweeps import study as studies
from pipeline.sweeps.jobs import take_job_share, with_job_outputs, with_settings
from pipeline.sweeps.search_space import Dimension, as_overrides, parse_space, suggest, trial_name
from pipeline.sweeps.tune_sweep import job_search
from pipeline.tracking import store
from pipeline.tracking.runs import flatten
from pipeline.train import train


def tune(cfg: DictConfig, search_in_sweep: Mapping[str, Any] | None = None) -> optuna.Study:
    """Check the space, open the study and its parent run, run trials until the budget is spent, and record the
    best trial and the figures on the parent run. In a search's multirun (`search_in_sweep`: the study and parent
    its callback made), a worker: the callback records the best and closes the parent after the last job."""
    config = plain_settings(cfg)
    dimensions = parse_space(config["search"]["params"], config)  # a bad space stops here, before any training
    url = studies.storage_url(cfg.tune, cfg.tracking)
    store.connect(cfg.tracking)
    name = search_in_sweep["study"] if search_in_sweep else studies.study_name(config)
    study = studies.open_study(config, [d.key for d in dimensions], url, name)
    if search_in_sweep:
        parent = search_in_sweep["parent_run_id"]
        search(study, cfg, dimensions, parent)
        return study
    space_text = " ".join(as_overrides(flatten(config["search"]["params"])))
    parent = studies.parent_run(study, cfg.tracking.experiment, space_text, url)
    print(f"tune: study {study.study_name}, {studies.trials_done(study)} trials done; parent MLflow run {parent}")
    try:
        search(study, cfg, dimensions, parent)
    except Interrupted as stop:
        studies.close_parent(parent, "KILLED", f"tune: {stop}")
        raise
    except BaseException as err:
        studies.close_parent(parent, "FAILED", f"tune: {type(err).__name__}")
        raise
    studies.summarise(study, parent, Path(cfg.paths.tune) / study.study_name)
    studies.close_parent(parent, "FINISHED")
    return study


def search(study: optuna.Study, cfg: DictConfig, dimensions: Sequence[Dimension], parent: str) -> None:
    """Trials, one after another, until `tune.trials` are done (completed or pruned, over every command of this
    search) or `tune.minutes` of this command have passed. A trial that raises is failed in the study and ends the
    search (an interruption too: its run is KILLED by then)."""
    started = time.monotonic()
    budget, minutes = cfg.tune.trials, cfg.tune.minutes
    while budget is None or studies.trials_done(study) < budget:
        if minutes is not None and time.monotonic() - started >= minutes * 60:
            print(f"tune: {minutes} minutes spent; the same command goes on with the search", flush=True)
            return
        trial = study.ask()
        try:
            value = run_trial(trial, cfg, dimensions, parent)
        except optuna.TrialPruned:
            tell(study, trial, state=optuna.trial.TrialState.PRUNED)
        except BaseException:
            tell(study, trial, state=optuna.trial.TrialState.FAIL)
            print(f"tune: trial {trial.number} failed; the same command resumes the search", file=sys.stderr)
            raise
        else:
            tell(study, trial, value)


def tell(study: optuna.Study, trial: optuna.Trial, *args: Any, **kwargs: Any) -> None:
    """The trial's end, told to the study whole: a signal meanwhile waits until it is written."""
    with interrupt.held():
        study.tell(trial, *args, **kwargs)


def run_trial(trial: optuna.Trial, cfg: DictConfig, dimensions: Sequence[Dimension], parent: str) -> float:
    """One training with the trial's values, in its own folder, as a child run of `parent`, pruned when the study's
    pruner says so after an epoch; returns the best epoch's `train.monitor`."""
    values = suggest(trial, dimensions)
    folder = Path(cfg.paths.tune) / trial.study.study_name / str(trial.number)
    trial_cfg = with_job_outputs(with_settings(cfg, values), folder)
    validate(trial_cfg)
    pruning = PruneUnpromising(trial, cfg.train.monitor)
    tags = {
        "tune.study": trial.study.study_name,
        "tune.trial": str(trial.number),
        "tune.worker": str(cfg.tune.worker),
        "tune.overrides": " ".join(as_overrides(values)),
    }
    # A trial's model is logged to its run, not registered: the tuned training (`tune.best_of`) is what one promotes.
    run_id = train(trial_cfg, trial_name(trial.number, values), parent, tags, callbacks=[pruning], register=False)
    trial.set_user_attr(studies.RUN_ATTR, run_id)
    history = read_json(Path(trial_cfg.paths.models) / "history.json")["history"][cfg.train.monitor]
    if pruning.pruned_after is not None:
        studies.mark_run(
            run_id, "PRUNED", f"{trial_name(trial.number, values)} (pruned after epoch {pruning.pruned_after})"
        )
        raise optuna.TrialPruned(f"pruned after epoch {pruning.pruned_after}")
    studies.mark_run(run_id, "COMPLETE")
    return (max if higher_is_better(cfg.train.monitor) else min)(history)


AFTERMATH = (
    "its trial's MLflow run is marked KILLED and the trial failed in the study. Run the same command again: the "
    "search goes on to its budget."
)


@hydra_main
@reports_user_errors
def main(cfg: DictConfig) -> None:
    validate(cfg)
    in_sweep = job_search()
    if not in_sweep:
        tune(cfg)
        return
    take_job_share()  # a worker's share of the cores
    with job_stops_on_signals("tune", AFTERMATH):
        tune(cfg, in_sweep)


if __name__ == "__main__":
    skip_final_collection()
    stop_on_signals(main, "tune", AFTERMATH)
