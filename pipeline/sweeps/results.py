"""A sweep's results: its child runs read back from MLflow and compared (pipeline/scoring/comparison.py), and the
comparison written as files, as the parent run's artifacts and metrics, and as its tag `compare.best`."""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from mlflow.exceptions import MlflowException

from pipeline.core.files import atomic_path
from pipeline.scoring.comparison import (
    SEEDS_DISAGREE,
    Comparison,
    Correctness,
    EnsembleResult,
    Run,
    Settings,
    compare,
)
from pipeline.scoring.comparison_tables import ENSEMBLE_VERDICT, markdown_table, run_rows, to_markdown, to_rows
from pipeline.scoring.tables import to_csv

REPEAT_KEY = "seed"  # swept, it repeats every variant: `seed=1,2,3` makes three runs of each
VARIANT_TAG = "sweep.variant"  # on each child run: its swept values but the seed, what runs are grouped by


def metric_name(variant: str) -> str:
    """A variant as part of an MLflow metric name, which allows letters, digits, _ - . / and spaces."""
    return re.sub(r"[^\w\-./ ]", "_", variant)


def parent_metrics(comparison: Comparison) -> dict[str, float]:
    """The comparison as the parent run's metrics: `compare.<test set>.<variant>.<statistic>` (the ensemble has its
    own, `ensemble.<test set>.<score>`: pipeline/sweeps/ensemble.py)."""
    out: dict[str, float] = {}
    for row in to_rows(comparison):
        if row["verdict"] == ENSEMBLE_VERDICT:
            continue
        prefix = f"compare.{row['test_set']}.{metric_name(row['variant'])}"
        stats = ("seeds", "accuracy_mean", "accuracy_sd", "accuracy_ci_low", "accuracy_ci_high", "p_vs_best")
        for stat in (*stats, "train_flops", "train_seconds", "loss_mean"):
            if row[stat] is not None:
                out[f"{prefix}.{stat}"] = float(row[stat])
    return out


def from_mlflow(found: Any) -> Run:
    """A run as `MlflowClient.search_runs` returns it."""
    seed = found.data.params.get("seed")
    return Run(
        run_id=found.info.run_id,
        name=found.info.run_name,
        variant=found.data.tags.get(VARIANT_TAG, found.info.run_name),
        seed=None if seed is None else int(seed),
        status=found.info.status,
        metrics=found.data.metrics,
        tags=found.data.tags,
    )


def logged_correctness(client: Any, folder: Path) -> Correctness:
    """Per-image correctness from each run's logged predictions (evaluate's `predictions/<test set>.npz`), read
    once per run and test set."""
    cache: dict[tuple[str, str], np.ndarray | None] = {}

    def correct(run: Run, test_set: str) -> np.ndarray | None:
        key = (run.run_id, test_set)
        if key not in cache:
            try:
                path = client.download_artifacts(run.run_id, f"predictions/{test_set}.npz", str(folder))
            except (MlflowException, OSError):  # an older run, or one that failed before evaluate: no paired test
                cache[key] = None
            else:
                with np.load(path) as npz:
                    cache[key] = npz["probs"].argmax(axis=1) == npz["y_true"]
        return cache[key]

    return correct


def settings_from(cfg: Mapping[str, Any], test_sets: Sequence[str]) -> Settings:
    """conf/config.yaml's `compare`, its test set defaulting to the first of `test_sets`."""
    return Settings(cfg["metric"], cfg.get("test_set") or test_sets[0], float(cfg["alpha"]))


def sweep_runs(client: Any, parent_run_id: str) -> list[Run]:
    """The children of a sweep's parent run, in the order they started, each job's last attempt only."""
    parent = client.get_run(parent_run_id)
    found = client.search_runs(
        [parent.info.experiment_id],
        f"tags.mlflow.parentRunId = '{parent_run_id}'",
        order_by=["attributes.start_time ASC"],
        max_results=10_000,
    )
    return last_attempts([from_mlflow(r) for r in found])


def finished_runs(client: Any, parent_run_id: str) -> dict[str, Run]:
    """A sweep's finished runs by name: what the same sweep, run again, keeps rather than trains again."""
    return {r.name: r for r in sweep_runs(client, parent_run_id) if r.status == "FINISHED"}


def kept_line(run: Run) -> str:
    return f"{run.name} finished before, in MLflow run {run.run_id}: kept, not trained again"


def last_attempts(runs: Sequence[Run]) -> list[Run]:
    """The runs but those that did not finish and whose job ran again: a run of the same name started later (the
    sweep's command run again, a new run where the job could not resume its own)."""
    last = {run.name: i for i, run in enumerate(runs)}
    return [r for i, r in enumerate(runs) if r.status == "FINISHED" or last[r.name] == i]


def test_sets_of(runs: Sequence[Run], preferred: Sequence[str]) -> list[str]:
    """The test sets the runs were scored on: those of `preferred` first, in its order, then any other."""
    found = {k.split(".")[1] for r in runs for k in r.metrics if k.startswith("test.") and k.endswith(".accuracy")}
    return [t for t in preferred if t in found] + sorted(found - set(preferred))


def compare_sweep(client: Any, parent_run_id: str, cfg: Mapping[str, Any], preferred: Sequence[str]) -> Comparison:
    """The comparison of a sweep's children, read from the tracking store, on the test sets they were scored on
    (a sweep may vary them)."""
    runs = sweep_runs(client, parent_run_id)
    test_sets = test_sets_of(runs, preferred)
    settings = settings_from(cfg, test_sets or preferred)
    with tempfile.TemporaryDirectory() as folder, without_download_bars():
        return compare(runs, test_sets, settings, logged_correctness(client, Path(folder)))


@contextmanager
def without_download_bars() -> Iterator[None]:
    """MLflow draws a progress bar for every file it downloads: a line per run and test set, here of files read in
    milliseconds."""
    saved = os.environ.get(PROGRESS_BAR)
    os.environ[PROGRESS_BAR] = "false"
    try:
        yield
    finally:
        if saved is None:
            del os.environ[PROGRESS_BAR]
        else:
            os.environ[PROGRESS_BAR] = saved


PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


def write_comparison(
    client: Any,
    parent_run_id: str,
    cfg: Mapping[str, Any],
    preferred: Sequence[str],
    folder: Path,
    ensembles: Sequence[EnsembleResult] = (),
) -> Comparison:
    """A sweep's comparison as comparison.md (the variants, any ensemble's row under them, then every run),
    comparison.csv, runs.csv and comparison.png in `folder`, and as its parent run's artifacts (comparison/),
    metrics, `compare.best` tag and, if any variant's seeds disagree, `compare.seeds_disagree` (those variants)."""
    from mlflow.entities import Metric

    from pipeline.figures import plots

    comparison = replace(compare_sweep(client, parent_run_id, cfg, preferred), ensembles=tuple(ensembles))
    runs = run_rows(comparison.runs, test_sets_of(comparison.runs, preferred))
    files = {
        "comparison.md": f"{to_markdown(comparison)}\n**Every run**\n\n{markdown_table(runs)}",
        "comparison.csv": to_csv(to_rows(comparison)),
        "runs.csv": to_csv(runs),
    }
    for name, text in files.items():
        with atomic_path(folder / name) as tmp:
            tmp.write_text(text, encoding="utf-8")
    plots.save_figure(plots.sweep_comparison(comparison), folder / "comparison.png")
    for name in [*files, "comparison.png"]:
        client.log_artifact(parent_run_id, str(folder / name), "comparison")
    now = int(time.time() * 1000)
    metrics = [Metric(k, v, now, 0) for k, v in parent_metrics(comparison).items()]
    for start in range(0, len(metrics), 1000):  # MLflow's limit per batch
        client.log_batch(parent_run_id, metrics=metrics[start : start + 1000])
    if comparison.best is not None:
        client.set_tag(parent_run_id, "compare.best", comparison.best)
    disagreeing = [r.variant for r in comparison.of(comparison.settings.test_set) if r.verdict == SEEDS_DISAGREE]
    if disagreeing:  # a result to look at before trusting the best: its seeds point both ways against another
        client.set_tag(parent_run_id, "compare.seeds_disagree", ", ".join(disagreeing))
    return comparison
