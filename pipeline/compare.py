"""A sweep's comparison: its runs grouped by variant over their seeds, each variant set against the best one, and
how sure each difference is.

- Per variant and test set: the mean accuracy over its seeds, their standard deviation and the 95% Student-t
  interval of the mean (not available with one seed: none is invented), and the interval that the test set's size
  alone allows at that accuracy (Wilson).
- The best variant: the highest mean of the configured metric (lowest, for a loss) on the configured test set.
- Each other variant against it: McNemar's exact test on the same test images, run seed against seed (seed 1 of
  one against seed 1 of the other, …). A variant is called worse (or better) only when every paired seed says so
  at the level `alpha`: the p-value shown is the largest of the seeds' (an intersection-union test, which needs no
  correction for the number of seeds). Otherwise it is "not distinguishable" from the best.
- A variant that failed in some seeds is compared on the seeds it has.

`python -m pipeline.compare PARENT_RUN_ID` writes the comparison of any finished sweep again (the sweep's end does
the same by itself).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from mlflow.exceptions import MlflowException

from pipeline.core.files import atomic_path
from pipeline.core.paths import CONF
from pipeline.stats import Spread, mcnemar_exact, spread, wilson_interval
from pipeline.tables import to_csv

REPEAT_KEY = "seed"  # swept, it repeats every variant: `seed=1,2,3` makes three runs of each
VARIANT_TAG = "sweep.variant"  # on each child run: its swept values but the seed, what runs are grouped by
LOWER_IS_BETTER = ("loss", "ece")  # every other score (accuracy, macro_f1, top5_accuracy…) is better higher

BEST, NOT_DISTINGUISHABLE, WORSE, BETTER = "best", "not distinguishable", "worse", "better"
UNPAIRED, FAILED = "no paired data", "failed"  # no seed in common with the best; no finished run


@dataclass(frozen=True)
class Run:
    """A child run of a sweep, as the comparison needs it."""

    run_id: str
    name: str
    variant: str  # what it is grouped by: its swept values but the seed
    seed: int | None
    status: str
    metrics: Mapping[str, float]
    tags: Mapping[str, str]


@dataclass(frozen=True)
class Settings:
    """How the best variant is chosen and what counts as a difference (conf/config.yaml's `compare`)."""

    metric: str
    test_set: str
    alpha: float


@dataclass(frozen=True)
class VariantResult:
    """One variant on one test set."""

    variant: str
    test_set: str
    seeds: tuple[int | None, ...]  # of its finished runs, which the numbers are of
    failed: int  # runs that did not finish
    accuracy: Spread  # over the seeds
    values: tuple[float, ...]  # each seed's accuracy
    test_interval: tuple[float, float] | None  # what the test images alone allow at the mean accuracy
    difference: float | None  # mean accuracy minus the best variant's
    p_value: float | None  # McNemar against the best: the largest over the paired seeds
    verdict: str
    train_flops: float | None = None  # what it cost, the mean over its finished runs (None where none logged it)
    train_seconds: float | None = None


@dataclass(frozen=True)
class Comparison:
    settings: Settings
    best: str | None  # the best variant
    champion: str | None  # its run with the best value of the metric: the one to deploy
    results: list[VariantResult]  # grouped by test set, the configured one first; best first within each
    runs: list[Run]

    def of(self, test_set: str) -> list[VariantResult]:
        return [r for r in self.results if r.test_set == test_set]

    @property
    def test_sets(self) -> list[str]:
        return list(dict.fromkeys(r.test_set for r in self.results))


Correctness = Callable[[Run, str], "np.ndarray | None"]  # per test image, right or wrong; None when not available


def by_variant(runs: Sequence[Run]) -> dict[str, list[Run]]:
    """The runs of each variant, in the sweep's order."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.variant, []).append(run)
    return groups


def finished(runs: Sequence[Run], key: str) -> list[Run]:
    return [r for r in runs if r.status == "FINISHED" and key in r.metrics]


def best_variant(groups: Mapping[str, Sequence[Run]], settings: Settings) -> str | None:
    """The variant with the best mean of the configured metric; None when no run has it."""
    key = settings_key(settings)
    means = {v: np.mean([r.metrics[key] for r in done]) for v, runs in groups.items() if (done := finished(runs, key))}
    if not means:
        return None
    pick = min if settings.metric in LOWER_IS_BETTER else max
    return pick(means, key=means.__getitem__)


def best_run(runs: Sequence[Run], settings: Settings) -> str | None:
    """Of one variant's runs, the one with the best value of the metric (the first of equals)."""
    key = settings_key(settings)
    done = finished(runs, key)
    if not done:
        return None
    pick = min if settings.metric in LOWER_IS_BETTER else max
    return pick(done, key=lambda r: r.metrics[key]).run_id


def settings_key(settings: Settings) -> str:
    return f"test.{settings.test_set}.{settings.metric}"


def paired_test(
    runs: Sequence[Run], best_runs: Sequence[Run], test_set: str, correct: Correctness
) -> tuple[float, int] | None:
    """(largest McNemar p-value over the seeds both have, the direction all of them agree on: -1 worse, +1 better,
    0 mixed); None when no seed can be paired."""
    best_by_seed = {r.seed: r for r in best_runs}
    p_values, signs = [], set()
    for run in runs:
        other = best_by_seed.get(run.seed)
        if other is None:
            continue
        a, b = correct(run, test_set), correct(other, test_set)
        if a is None or b is None or a.shape != b.shape:
            continue
        p_values.append(mcnemar_exact(a, b))
        signs.add(int(np.sign(int(a.sum()) - int(b.sum()))))
    if not p_values:
        return None
    return max(p_values), (signs.pop() if len(signs) == 1 else 0)


def verdict(paired: tuple[float, int] | None, alpha: float) -> str:
    if paired is None:
        return UNPAIRED
    p, direction = paired
    if p >= alpha or direction == 0:
        return NOT_DISTINGUISHABLE
    return WORSE if direction < 0 else BETTER


def variant_result(
    variant: str, runs: Sequence[Run], best_runs: Sequence[Run], test_set: str, settings: Settings, correct: Correctness
) -> VariantResult:
    """A variant's accuracy on a test set over its finished seeds, and how it stands against the best's."""
    key = f"test.{test_set}.accuracy"
    done = finished(runs, key)
    accuracy = spread([r.metrics[key] for r in done])
    if accuracy.low is not None:  # an accuracy's mean lies in [0, 1], whatever few seeds' t interval says
        accuracy = replace(accuracy, low=max(0.0, accuracy.low), high=min(1.0, accuracy.high))
    best_mean = spread([r.metrics[key] for r in finished(best_runs, key)]).mean
    images = next((len(c) for r in done if (c := correct(r, test_set)) is not None), None)
    test_interval = None
    if done and images:
        test_interval = wilson_interval(round(accuracy.mean * images), images)
    is_best = runs is best_runs
    paired = None if is_best else paired_test(done, finished(best_runs, key), test_set, correct)
    return VariantResult(
        variant=variant,
        test_set=test_set,
        seeds=tuple(r.seed for r in done),
        failed=len(runs) - len(done),
        accuracy=accuracy,
        values=tuple(r.metrics[key] for r in done),
        test_interval=test_interval,
        difference=None if is_best or not done else accuracy.mean - best_mean,
        p_value=None if paired is None else paired[0],
        verdict=BEST if is_best else (verdict(paired, settings.alpha) if done else FAILED),
        train_flops=mean_metric(done, "train.flops"),
        train_seconds=mean_metric(done, "train.train_seconds"),
    )


def mean_metric(runs: Sequence[Run], key: str) -> float | None:
    """The mean of a metric over the runs that logged it (runs from before it was logged have none)."""
    values = [r.metrics[key] for r in runs if key in r.metrics]
    return float(np.mean(values)) if values else None


def compare(runs: Sequence[Run], test_sets: Sequence[str], settings: Settings, correct: Correctness) -> Comparison:
    """Every variant on every test set against the best one (by the configured metric and test set)."""
    groups = by_variant(runs)
    best = best_variant(groups, settings)
    if best is None:
        return Comparison(settings, None, None, [], list(runs))
    results = []
    for test_set in [settings.test_set, *(t for t in test_sets if t != settings.test_set)]:
        rows = [variant_result(v, rs, groups[best], test_set, settings, correct) for v, rs in groups.items()]
        rows.sort(key=lambda r: (r.verdict != BEST, -np.nan_to_num(r.accuracy.mean, nan=-1.0)))
        results += rows
    return Comparison(settings, best, best_run(groups[best], settings), results, list(runs))


# What it looks like: markdown for people, CSV and MLflow metrics for tools.


def percent(value: float | None, digits: int = 2) -> str:
    return "–" if value is None or np.isnan(value) else f"{100 * value:.{digits}f}%"


def interval(bounds: tuple[float | None, float | None] | None) -> str:
    if bounds is None or bounds[0] is None:
        return "n/a"
    return f"[{100 * bounds[0]:.2f}, {100 * bounds[1]:.2f}]"


def seeds_text(r: VariantResult) -> str:
    text = str(len(r.seeds))
    return f"{text} ({r.failed} failed)" if r.failed else text


def cost_text(value: float | None, scale: float, digits: int) -> str:
    return "–" if value is None else f"{value / scale:,.{digits}f}"


def p_text(p: float | None) -> str:
    if p is None:
        return "–"
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}" if p < 0.01 else f"{p:.3f}"


def to_markdown(comparison: Comparison) -> str:
    """One table per test set, the configured one first: which variant is best, by how much and how sure."""
    s = comparison.settings
    if comparison.best is None:
        return "(no finished variants to compare)\n"
    explained = (
        f"Best variant by mean test.{s.test_set}.{s.metric}: **{comparison.best}**. Intervals are 95%: over seeds "
        "(Student t; n/a with one seed) and over the test images (Wilson, at the mean). p: McNemar's exact test "
        "against the best on the same images, seed against seed, the largest over the seeds; a variant is worse "
        f"or better only when p < {s.alpha} in every seed. Cost: a training's FLOPs (3 x forward x images x "
        "epochs) and seconds, means over the seeds."
    )
    lines = [*textwrap.wrap(explained, 110), ""]  # one paragraph in markdown, lines that fit a terminal
    for test_set in comparison.test_sets:
        lines += [
            f"**{test_set}**",
            "",
            (
                "| variant | seeds | accuracy, mean ± sd | 95% CI, seeds | 95% CI, test images | vs best | p | verdict "
                "| TFLOP | train s |"
            ),
            "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|",
        ]
        for r in comparison.of(test_set):
            sd = "" if r.accuracy.sd is None else f" ± {100 * r.accuracy.sd:.2f}"
            diff = "–" if r.difference is None else f"{100 * r.difference:+.2f}"
            lines.append(
                f"| {r.variant} | {seeds_text(r)} | {percent(r.accuracy.mean)}{sd} | "
                f"{interval((r.accuracy.low, r.accuracy.high))} | {interval(r.test_interval)} | {diff} | "
                f"{p_text(r.p_value)} | {r.verdict} | {cost_text(r.train_flops, 1e12, 1)} | "
                f"{cost_text(r.train_seconds, 1, 0)} |"
            )
        lines.append("")
    return "\n".join(lines)


def to_rows(comparison: Comparison) -> list[dict[str, Any]]:
    """One row per variant and test set, every number in full (comparison.csv)."""
    return [
        {
            "test_set": r.test_set,
            "variant": r.variant,
            "seeds": len(r.seeds),
            "failed": r.failed,
            "accuracy_mean": r.accuracy.mean,
            "accuracy_sd": r.accuracy.sd,
            "accuracy_ci_low": r.accuracy.low,
            "accuracy_ci_high": r.accuracy.high,
            "test_ci_low": None if r.test_interval is None else r.test_interval[0],
            "test_ci_high": None if r.test_interval is None else r.test_interval[1],
            "difference_to_best": r.difference,
            "p_vs_best": r.p_value,
            "verdict": r.verdict,
            "train_flops": r.train_flops,
            "train_seconds": r.train_seconds,
        }
        for r in comparison.results
    ]


def run_rows(runs: Sequence[Run], test_sets: Sequence[str]) -> list[dict[str, Any]]:
    """One row per run: what it varied, its size and cost, accuracy per test set, and the MNIST -> EMNIST-digits
    generalisation gap where both were measured (runs.csv, and the last table of comparison.md)."""
    rows = []
    for r in runs:
        epochs = r.metrics.get("train.epochs_run")
        row = {
            "run": r.name,
            "status": r.status,
            "parameters": r.tags.get("model.parameters", ""),
            "mflop_per_image": scaled(r.metrics, "model.forward_flops", 1e6),
            "epochs": None if epochs is None else int(epochs),
            "train_tflop": scaled(r.metrics, "train.flops", 1e12),
            "train_seconds": r.metrics.get("train.train_seconds"),
        }
        for name in test_sets:
            row[f"{name}_accuracy"] = r.metrics.get(f"test.{name}.accuracy")
        if "mnist" in test_sets and "emnist_digits" in test_sets:
            m, e = row["mnist_accuracy"], row["emnist_digits_accuracy"]
            row["generalisation_gap"] = None if m is None or e is None else m - e
        rows.append(row)
    return rows


def scaled(metrics: Mapping[str, float], key: str, unit: float) -> float | None:
    """A metric in `unit`s (1e6: millions), None where the run did not log it."""
    return metrics[key] / unit if key in metrics else None


def _cell(column: str, value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}" if column.endswith(("accuracy", "gap")) else f"{value:.1f}"
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return "(no runs)\n"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_cell(c, r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def metric_name(variant: str) -> str:
    """A variant as part of an MLflow metric name, which allows letters, digits, _ - . / and spaces."""
    return re.sub(r"[^\w\-./ ]", "_", variant)


def parent_metrics(comparison: Comparison) -> dict[str, float]:
    """The comparison as the parent run's metrics: `compare.<test set>.<variant>.<statistic>`."""
    out: dict[str, float] = {}
    for row in to_rows(comparison):
        prefix = f"compare.{row['test_set']}.{metric_name(row['variant'])}"
        stats = ("seeds", "accuracy_mean", "accuracy_sd", "accuracy_ci_low", "accuracy_ci_high", "p_vs_best")
        for stat in (*stats, "train_flops", "train_seconds"):
            if row[stat] is not None:
                out[f"{prefix}.{stat}"] = float(row[stat])
    return out


# Reading a sweep back from MLflow.


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
    """The children of a sweep's parent run, in the order they started."""
    parent = client.get_run(parent_run_id)
    found = client.search_runs(
        [parent.info.experiment_id],
        f"tags.mlflow.parentRunId = '{parent_run_id}'",
        order_by=["attributes.start_time ASC"],
        max_results=10_000,
    )
    return [from_mlflow(r) for r in found]


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
    client: Any, parent_run_id: str, cfg: Mapping[str, Any], preferred: Sequence[str], folder: Path
) -> Comparison:
    """A sweep's comparison as comparison.md (the variants, then every run), comparison.csv, runs.csv and
    comparison.png in `folder`, and as its parent run's artifacts (comparison/), metrics and `compare.best` tag."""
    from mlflow.entities import Metric

    from pipeline import plots

    comparison = compare_sweep(client, parent_run_id, cfg, preferred)
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
    return comparison


def main(argv: Sequence[str] | None = None) -> int:
    """Compare a finished sweep again, e.g. with another metric or level."""
    import mlflow
    from omegaconf import OmegaConf

    from pipeline.tracking import connect_default

    defaults = OmegaConf.load(CONF / "config.yaml").compare
    parser = argparse.ArgumentParser(prog="python -m pipeline.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("parent", help="the sweep's parent run id (the sweep prints it when it starts)")
    parser.add_argument("--out", type=Path, default=Path("comparison"), help="folder to write the comparison to")
    parser.add_argument("--metric", default=defaults.metric, help=f"picks the best variant (default {defaults.metric})")
    parser.add_argument("--test-set", default=defaults.test_set, help="the metric's test set (default: the first)")
    parser.add_argument("--alpha", type=float, default=defaults.alpha, help=f"test level (default {defaults.alpha})")
    args = parser.parse_args(argv)
    connect_default()
    client = mlflow.MlflowClient()
    try:
        runs = sweep_runs(client, args.parent)
    except MlflowException as err:
        print(f"error: run {args.parent}: {str(err).splitlines()[0]} — pass a sweep's parent run id", file=sys.stderr)
        return 2
    test_sets = test_sets_of(runs, [args.test_set] if args.test_set else [])
    if not test_sets:
        print(f"error: run {args.parent} has no evaluated child runs to compare", file=sys.stderr)
        return 2
    cfg = {"metric": args.metric, "test_set": args.test_set, "alpha": args.alpha}
    comparison = write_comparison(client, args.parent, cfg, test_sets, args.out)
    print(to_markdown(comparison))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
