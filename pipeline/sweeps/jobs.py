"""A sweep job: one configuration of a Hydra multirun, as `python -m pipeline.experiment -m` runs it. What it is
told here: its run's name (every swept value) and variant (the same but the seed), its sweep's parent MLflow run (from
the sweep folder's sweep.json), its own output folders, and its share of the machine's cores."""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from pipeline.core.files import read_json
from pipeline.scoring.comparison import Run
from pipeline.sweeps.callback import SWEEP_FILE, child_name
from pipeline.sweeps.results import REPEAT_KEY, VARIANT_TAG, finished_runs

SHARED_INPUTS = ("raw", "downloads", "prepared")  # the data stages' folders: jobs only read them


@dataclass(frozen=True)
class SweepJob:
    name: str  # the run's: every swept value (`model=plain3,seed=2`)
    parent: str | None  # the sweep's parent run; None outside a sweep
    variant: str  # the swept values but the seed (`model=plain3`): what the comparison groups runs by

    def tags(self) -> dict[str, str]:
        return {VARIANT_TAG: self.variant} if self.parent else {}


def sweep_job(default_name: str) -> SweepJob:
    """In a multirun job, its name, variant and the sweep's parent run; else the name as given, alone."""
    hc = HydraConfig.get()
    path = Path(hc.sweep.dir) / SWEEP_FILE
    if hc.mode.name != "MULTIRUN" or not path.is_file():
        return SweepJob(default_name, None, default_name)
    sweep = read_json(path)
    job = list(hc.overrides.task)
    variant = child_name(job, [k for k in sweep["varied"] if k != REPEAT_KEY])
    return SweepJob(child_name(job, sweep["varied"]), sweep["parent_run_id"], variant)


def finished_run(job: SweepJob, tracking_cfg: Mapping[str, Any]) -> Run | None:
    """The job's run under its sweep's parent, if it finished: the same sweep run again keeps it, not trained again."""
    if job.parent is None:
        return None
    import mlflow

    from pipeline.tracking import store

    store.connect(tracking_cfg)
    return finished_runs(mlflow.MlflowClient(), job.parent).get(job.name)


def with_job_outputs(cfg: DictConfig, job_dir: Path) -> DictConfig:
    """The same config with every other path in the job's own folder, so parallel jobs never share a file (a
    path added to `paths` later is a job's own unless listed in SHARED_INPUTS)."""
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    for name in cfg.paths:
        if name not in SHARED_INPUTS:
            cfg.paths[name] = str(job_dir / name)
    return cfg


def with_settings(cfg: DictConfig, values: Mapping[str, Any]) -> DictConfig:
    """A copy of the config with these settings (`{"train.learning_rate": 0.004}`) set; their interpolations
    follow them."""
    cfg = copy.deepcopy(cfg)
    for key, value in values.items():
        OmegaConf.update(cfg, key, value, merge=False)
    return cfg


def threads_per_job(n_jobs: int | None, cores: int) -> int | None:
    """Cores shared out among parallel jobs; None (TensorFlow's default, all cores) for one job at a time."""
    return max(1, cores // n_jobs) if n_jobs and n_jobs > 1 else None


def launcher_threads(launcher: Mapping[str, Any], cores: int) -> int | None:
    """The threads a job's launcher gives it: a cluster launcher's reservation (submitit's `cpus_per_task`: on a
    shared node TensorFlow would otherwise take every core it sees), else the joblib launcher's share."""
    if launcher.get("cpus_per_task"):
        return int(launcher["cpus_per_task"])
    return threads_per_job(launcher.get("n_jobs"), cores)


def limit_threads(threads: int | None) -> None:
    """TensorFlow's compute threads, said in the job's log (a cluster job's log shows it used what it reserved)."""
    if threads is None:
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # a reused worker process: TensorFlow keeps the threads it was given for its first job
    print(f"sweep job: {tf.config.threading.get_intra_op_parallelism_threads()} TensorFlow threads", flush=True)


def start_job(default_name: str) -> tuple[Path, SweepJob]:
    """The Hydra job now starting: its folder and what `sweep_job` tells it, with TensorFlow held to the threads
    its launcher gives it (before anything builds a model)."""
    take_job_share()
    return Path(HydraConfig.get().runtime.output_dir), sweep_job(default_name)


def take_job_share() -> None:
    """TensorFlow held to the threads the job's launcher gives it, before anything builds a model."""
    limit_threads(launcher_threads(HydraConfig.get().launcher, os.cpu_count() or 1))
