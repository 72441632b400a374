"""The tool for one K-fold fold: train the configured model on the training set without fold `kfold.fold`, then
predict fold `kfold.fold`'s images, which it never saw — the out-of-sample probabilities label_issues needs for the
training set (docs/data.md#the-training-sets-labels-by-k-fold).

Run every fold as one Hydra sweep, `python -m pipeline.kfold -m 'kfold.fold=range(0,5)'`: each fold a sweep job
(pipeline/sweeps/jobs.py) with its own folder, where it writes out_of_fold.npz, and a child MLflow run under the
sweep's parent run; Hydra's launchers run the folds in parallel or on SLURM, and a fold run again resumes as any
training does, and a fold already done with the same settings in the same sweep folder is kept, not trained again.
`python -m pipeline.kfold_join <sweep folder>` then joins them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from omegaconf import DictConfig, OmegaConf

from pipeline.config.entrypoint import hydra_main
from pipeline.config.schema import validate
from pipeline.core.errors import UserError, failure_report, reports_user_errors
from pipeline.core.interrupt import job_stops_on_signals, stop_on_signals
from pipeline.core.shutdown import skip_final_collection
from pipeline.data.datasets import load_dataset, prepared_path
from pipeline.data.folds import fold_of
from pipeline.evaluate import load_trained_model, predict_probabilities
from pipeline.scoring.out_of_fold import FOLD_FILE, FoldPredictions, FoldsError, fold_settings, read_fold, write_fold
from pipeline.sweeps.jobs import SweepJob, start_job, with_job_outputs
from pipeline.tracking import runs
from pipeline.train import default_run_name, train


def held_out_positions(labels: np.ndarray, folds: int, seed: int, fold: int) -> np.ndarray:
    """The positions of fold `fold`'s images in the training set."""
    return np.flatnonzero(fold_of(labels, folds, seed) == fold)


def held_out_accuracy(p: FoldPredictions) -> float:
    return float(np.mean(p.probs.argmax(axis=1) == p.labels))


def finished_fold(path: Path, fold: int, settings: dict[str, Any]) -> float | None:
    """The held-out accuracy of the fold's file if this job already wrote it with the same settings (the sweep run
    again after an interruption: only the folds not done train), else None."""
    if not path.is_file():
        return None
    try:
        done = read_fold(path)
    except (FoldsError, OSError, ValueError):  # a file of another kind, or cut short: train the fold again
        return None
    return held_out_accuracy(done) if done.fold == fold and done.settings == settings else None


def run_fold(cfg: DictConfig, job_dir: Path, job: SweepJob) -> float:
    """Train without fold kfold.fold and write its images' probabilities to `job_dir`/out_of_fold.npz, logged to
    the fold's run; returns the accuracy on the held-out fold (NaN for a failed fold of a sweep)."""
    fold = cfg.kfold.fold
    if fold is None:
        raise UserError(
            f"kfold.fold is not set: run every fold as a sweep, `python -m pipeline.kfold -m "
            f"'kfold.fold=range(0,{cfg.kfold.folds})'`, or one with kfold.fold=<0 … {cfg.kfold.folds - 1}>"
        )
    cfg = with_job_outputs(cfg, job_dir)
    settings = fold_settings(runs.flatten(OmegaConf.to_container(cfg, resolve=True)))
    path = job_dir / FOLD_FILE
    if (done := finished_fold(path, fold, settings)) is not None:
        print(f"kfold: fold {fold} already done with these settings, kept: {path}", flush=True)
        return done
    with job_stops_on_signals("kfold"):
        try:
            ds = load_dataset(prepared_path(cfg.paths.prepared, cfg.data.name))
            labels = ds.y_train[: cfg.data.train_limit]
            held_out = held_out_positions(labels, cfg.kfold.folds, cfg.kfold.seed, fold)
            tags = {**job.tags(), "kfold.fold": str(fold)}
            train(cfg, job.name, job.parent, tags, without=held_out, register=False)  # a fold is no model to promote
            models_dir = Path(cfg.paths.models)
            with runs.reopen_run(models_dir / "run.json", cfg.tracking, "kfold"):
                model, _ = load_trained_model(models_dir, cfg.evaluate.fused_batch_norm)
                probs = predict_probabilities(model, ds.x_train[held_out], cfg.evaluate.batch_size)
                predicted = FoldPredictions(fold, cfg.kfold.folds, held_out, labels[held_out], probs, settings, "")
                write_fold(path, predicted)
                mlflow.log_artifact(str(path), "kfold")
                accuracy = held_out_accuracy(predicted)
                mlflow.log_metric("kfold.held_out_accuracy", accuracy)
        except Exception as err:
            if job.parent is None:
                raise
            # In a sweep, one failed fold must not stop the others: the join names it missing, and it can be run again.
            print(f"kfold: {job.name} failed:{failure_report(err)}", file=sys.stderr, flush=True)
            return float("nan")
    print(
        f"kfold: fold {fold} of {cfg.kfold.folds}: {len(held_out)} held-out images, accuracy {accuracy:.4f}; "
        f"wrote {path}",
        flush=True,
    )
    return accuracy


@hydra_main
@reports_user_errors
def main(cfg: DictConfig) -> float:
    validate(cfg)
    return run_fold(cfg, *start_job(f"kfold.fold={cfg.kfold.fold} {default_run_name(cfg)}"))


if __name__ == "__main__":
    skip_final_collection()
    stop_on_signals(main, "kfold")
