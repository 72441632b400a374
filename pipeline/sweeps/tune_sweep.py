"""A search as a Hydra multirun, `python -m pipeline.tune -m …`: the callback that makes a study and its parent run
per variant before any job, so that parallel workers (`tune.worker=0,1`, any launcher) share them; summarises each
study after the last job; and, for several variants, compares their tuned versions over seeds.

    python -m pipeline.tune -m hydra/launcher=parallel tune.worker=0,1                # one study, two workers
    python -m pipeline.tune -m model=compact,plain3 tune.trials=8                     # tune each, then compare

The comparison is an ordinary sweep of `pipeline.experiment` in a process of its own, one variant per study
(`tune.best_of=<study>`) times `tune.compare_seeds`, on the same launcher: the project's seed-aware table.
"""

from __future__ import annotations

import atexit
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import mlflow
import optuna
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from pipeline.config.schema import plain_settings
from pipeline.core.errors import UserError, exit_on_user_error
from pipeline.core.files import read_json, write_json
from pipeline.sweeps import study as studies
from pipeline.sweeps.callback import (
    SEARCH_JOB,
    SWEEP_FILE,
    check_sweep,
    child_name,
    close_if_unfinished,
    parse,
    variant_configs,
    varied_keys,
)
from pipeline.sweeps.search_space import as_overrides, parse_space
from pipeline.tracking import store
from pipeline.tracking.runs import flatten

WORKER_KEY = "tune.worker"  # swept, it adds workers to a study rather than variants
SEARCHES = "tune"  # sweep.json: each variant's study and parent run
# What the comparison's sweep takes of the search's command line: the launcher and the logs (not its folders).
PASSED_ON = ("hydra/launcher", "hydra.launcher.", "hydra/job_logging", "hydra/hydra_logging", "hydra.output_subdir")


def variant_of(job_overrides: Sequence[str], varied: Sequence[str]) -> str | None:
    """The job's swept values but its worker number (`model=plain3`); None when only workers are swept."""
    keys = [k for k in varied if k != WORKER_KEY]
    return child_name(job_overrides, keys) if keys else None


def open_searches(config: DictConfig, sweep_overrides: Sequence[str], varied: Sequence[str]) -> dict[str, Any]:
    """Each variant's study (made or resumed) and parent run, keyed by variant ("" for a single search); every
    space and storage is checked first, so that a bad one stops the search before any study or run is made."""
    variants: dict[str, dict[str, Any]] = {}
    for job, job_config in variant_configs(config, sweep_overrides):
        variants.setdefault(variant_of(job, varied) or "", plain_settings(job_config))
    if len(variants) > 1 and config.tune.study:
        raise UserError(f"tune.study={config.tune.study}: one name for {len(variants)} variants — leave it null")
    spaces = {variant: parse_space(settings["search"]["params"], settings) for variant, settings in variants.items()}
    urls = {
        variant: studies.storage_url(settings["tune"], settings["tracking"]) for variant, settings in variants.items()
    }
    store.connect(config.tracking)
    searches = {}
    for variant, settings in variants.items():
        url = urls[variant]
        name = studies.study_name(settings, variant)
        study = studies.open_study(settings, [d.key for d in spaces[variant]], url, name)
        space_text = " ".join(as_overrides(flatten(settings["search"]["params"])))
        parent = studies.parent_run(study, settings["tracking"]["experiment"], space_text, url)
        searches[variant] = {"study": name, "storage": url, "parent_run_id": parent}
        print(f"tune: study {name}, {studies.trials_done(study)} trials done; parent MLflow run {parent}", flush=True)
    return searches


def job_search() -> dict[str, Any] | None:
    """In a job of a search's multirun, its variant's study and parent run; None outside one (or Hydra)."""
    if not HydraConfig.initialized():
        return None
    hc = HydraConfig.get()
    path = Path(hc.sweep.dir) / SWEEP_FILE
    if hc.mode.name != "MULTIRUN" or not path.is_file():
        return None
    sweep = read_json(path)
    return sweep[SEARCHES][variant_of(list(hc.overrides.task), sweep["varied"]) or ""]


def comparison_command(
    studies_compared: Sequence[str],
    seeds: Sequence[int],
    task: Sequence[str],
    hydra: Sequence[str],
    varied: Sequence[str],
) -> list[str]:
    """`pipeline.experiment -m tune.best_of=<each study> seed=<each seed>` with the rest of the search's command
    line: its other settings (the swept ones now come from each study) and its launcher."""
    kept = [o for o, parsed in zip(task, parse(task)) if parsed.key_or_group not in (*varied, "seed")]
    passed = [o for o in hydra if o.startswith(PASSED_ON)]
    return [
        sys.executable,
        "-m",
        "pipeline.experiment",
        "-m",
        f"tune.best_of={','.join(studies_compared)}",
        f"seed={','.join(str(s) for s in seeds)}",
        *kept,
        *passed,
    ]


class TuneTracking(Callback):
    """A search's multirun: studies and parent runs before the jobs; summaries and the comparison after."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.hydra.job.name != SEARCH_JOB:
            return
        sweep_overrides = list(config.hydra.overrides.task)
        varied = varied_keys(sweep_overrides)
        check_sweep(config, sweep_overrides, varied)
        try:
            searches = open_searches(config, sweep_overrides, varied)
        except UserError as err:
            exit_on_user_error(str(err))
        write_json(Path(config.hydra.sweep.dir) / SWEEP_FILE, {"varied": varied, SEARCHES: searches})
        for search in searches.values():  # on_multirun_end is not called when the search stops early
            atexit.register(close_if_unfinished, mlflow.get_tracking_uri(), search["parent_run_id"])

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if config.hydra.job.name != SEARCH_JOB:
            return
        sweep = read_json(Path(config.hydra.sweep.dir) / SWEEP_FILE)
        store.connect(config.tracking)
        completed = close_searches(sweep[SEARCHES], Path(config.paths.tune))
        seeds = list(config.tune.compare_seeds)
        if len(completed) < 2 or not seeds:
            return
        command = comparison_command(
            completed, seeds, list(config.hydra.overrides.task), list(config.hydra.overrides.hydra), sweep["varied"]
        )
        print(f"tune: comparing the tuned variants: {' '.join(command[1:])}", flush=True)
        status = subprocess.run(command, check=False).returncode
        if status:
            raise SystemExit(status)  # Hydra turns a callback's exception into a warning


def close_searches(searches: Mapping[str, Mapping[str, Any]], folder: Path) -> list[str]:
    """Each study's summary on its parent run, which ends FINISHED, or FAILED without a completed trial; returns
    the studies with one."""
    completed = []
    for variant, search in searches.items():
        study = optuna.load_study(study_name=search["study"], storage=search["storage"])
        print(f"tune: {variant or search['study']}:", flush=True)
        best = studies.summarise(study, search["parent_run_id"], folder / search["study"])
        studies.close_parent(search["parent_run_id"], "FINISHED" if best else "FAILED")
        if best:
            completed.append(search["study"])
    return completed
