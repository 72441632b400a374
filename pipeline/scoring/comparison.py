"""A sweep's comparison: its variants over their seeds, each against the best one, and how sure each difference is.

- Per variant and test set: the mean accuracy over its seeds, their standard deviation and the 95% Student-t
  interval of the mean (not available with one seed: none is invented), and the interval that the test set's size
  alone allows at that accuracy (Wilson).
- The best variant: the highest mean of the configured metric (lowest, for a loss) on the configured test set.
- Each other variant against it: McNemar's exact test on the same test images, run seed against seed (seed 1 of
  one against seed 1 of the other, …). A variant is called worse (or better) only when every paired seed says so
  at the level `alpha`: the p-value shown is the largest of the seeds' (an intersection-union test, which needs no
  correction for the number of seeds). When seeds differ significantly in opposite directions (one seed's better,
  another's worse), the seeds disagree: neither a verdict nor "not distinguishable", since each of those seeds did
  tell the variants apart. Otherwise it is "not distinguishable" from the best.
- A variant that failed in some seeds is compared on the seeds it has.

Plain values in and out: the runs are read from MLflow, and the comparison written, where a sweep ends and by
`python -m pipeline.compare`; pipeline/scoring/comparison_tables.py shows it as tables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from pipeline.core.metric_direction import higher_is_better
from pipeline.scoring.stats import Spread, mcnemar_exact, spread, wilson_interval

BEST, NOT_DISTINGUISHABLE, WORSE, BETTER = "best", "not distinguishable", "worse", "better"
SEEDS_DISAGREE = "seeds disagree"  # significant in opposite directions, seed against seed
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
    loss: float | None = None  # the mean of its finished runs' test loss


@dataclass(frozen=True)
class EnsembleResult:
    """A sweep's finished runs with their probabilities averaged, on one test set: a row beside the variants', marked
    as an ensemble and never the best (it is not one model)."""

    test_set: str
    runs: int
    accuracy: float  # of the averaged probabilities' argmax
    loss: float
    test_interval: tuple[float, float]  # Wilson's, over the test images
    single_accuracy: float | None  # the members' own, their mean: what averaging them buys
    single_loss: float | None


@dataclass(frozen=True)
class Comparison:
    settings: Settings
    best: str | None  # the best variant
    champion: str | None  # its run with the best value of the metric: the one to deploy
    results: list[VariantResult]  # grouped by test set, the configured one first; best first within each
    runs: list[Run]
    ensembles: tuple[EnsembleResult, ...] = ()  # the runs averaged, per test set, where a sweep has them

    def of(self, test_set: str) -> list[VariantResult]:
        return [r for r in self.results if r.test_set == test_set]

    def ensemble_of(self, test_set: str) -> EnsembleResult | None:
        return next((e for e in self.ensembles if e.test_set == test_set), None)

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
    pick = max if higher_is_better(key) else min
    return pick(means, key=means.__getitem__)


def best_run(runs: Sequence[Run], settings: Settings) -> str | None:
    """Of one variant's runs, the one with the best value of the metric (the first of equals)."""
    key = settings_key(settings)
    done = finished(runs, key)
    if not done:
        return None
    pick = max if higher_is_better(key) else min
    return pick(done, key=lambda r: r.metrics[key]).run_id


def settings_key(settings: Settings) -> str:
    return f"test.{settings.test_set}.{settings.metric}"


def paired_test(
    runs: Sequence[Run], best_runs: Sequence[Run], test_set: str, correct: Correctness
) -> list[tuple[float, int]]:
    """Per seed both have: McNemar's p-value and the direction (-1 worse than the best, +1 better, 0 as many right);
    empty when no seed can be paired."""
    best_by_seed = {r.seed: r for r in best_runs}
    paired = []
    for run in runs:
        other = best_by_seed.get(run.seed)
        if other is None:
            continue
        a, b = correct(run, test_set), correct(other, test_set)
        if a is None or b is None or a.shape != b.shape:
            continue
        paired.append((mcnemar_exact(a, b), int(np.sign(int(a.sum()) - int(b.sum())))))
    return paired


def verdict(paired: Sequence[tuple[float, int]], alpha: float) -> str:
    """Worse or better when every seed says so at `alpha`; the seeds disagree when one says better and another
    worse; else not distinguishable."""
    if not paired:
        return UNPAIRED
    significant = [direction for p, direction in paired if p < alpha]
    if -1 in significant and 1 in significant:
        return SEEDS_DISAGREE
    if len(significant) == len(paired) and set(significant) in ({-1}, {1}):
        return WORSE if significant[0] < 0 else BETTER
    return NOT_DISTINGUISHABLE


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
    paired = [] if is_best else paired_test(done, finished(best_runs, key), test_set, correct)
    return VariantResult(
        variant=variant,
        test_set=test_set,
        seeds=tuple(r.seed for r in done),
        failed=len(runs) - len(done),
        accuracy=accuracy,
        values=tuple(r.metrics[key] for r in done),
        test_interval=test_interval,
        difference=None if is_best or not done else accuracy.mean - best_mean,
        p_value=max((p for p, _ in paired), default=None),
        verdict=BEST if is_best else (verdict(paired, settings.alpha) if done else FAILED),
        train_flops=mean_metric(done, "train.flops"),
        train_seconds=mean_metric(done, "train.train_seconds"),
        loss=mean_metric(done, f"test.{test_set}.loss"),
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
