"""A sweep's comparison over seeds, on cases whose numbers are worked by hand: grouping, the best variant, the
paired tests seed against seed, and what the tables say."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.config.schema import SCORES
from pipeline.core.metric_direction import higher_is_better
from pipeline.scoring.comparison import (
    BEST,
    BETTER,
    NOT_DISTINGUISHABLE,
    SEEDS_DISAGREE,
    UNPAIRED,
    WORSE,
    Run,
    Settings,
    compare,
    verdict,
)
from pipeline.scoring.comparison_tables import run_rows, to_markdown, to_rows
from pipeline.sweeps.results import metric_name, parent_metrics

IMAGES = 100
SETTINGS = Settings(metric="accuracy", test_set="mnist", alpha=0.05)


def correct_on(wrong: list[int]) -> np.ndarray:
    """Right on every one of the IMAGES test images but those listed."""
    c = np.ones(IMAGES, dtype=bool)
    c[wrong] = False
    return c


def make_run(variant: str, seed: int, wrong: list[int] | None, extra: dict | None = None) -> tuple[Run, np.ndarray]:
    """A run of `variant` with `seed`, wrong on the images `wrong` (None: a run that failed)."""
    metrics = {} if wrong is None else {"test.mnist.accuracy": 1 - len(wrong) / IMAGES, **(extra or {})}
    run = Run(
        run_id=f"{variant}/{seed}",
        name=f"{variant},seed={seed}",
        variant=variant,
        seed=seed,
        status="FAILED" if wrong is None else "FINISHED",
        metrics=metrics,
        tags={},
    )
    return run, (None if wrong is None else correct_on(wrong))


def sweep(*runs: tuple[Run, np.ndarray | None], settings: Settings = SETTINGS):
    answers = {r.run_id: c for r, c in runs}
    return compare([r for r, _ in runs], ["mnist"], settings, lambda run, test_set: answers[run.run_id])


def test_seeds_are_grouped_and_a_variant_wrong_more_often_in_every_seed_is_worse():
    # a: 1 and 2 wrong. b, seed 1: wrong on 10 images a gets right, and right on none a gets wrong:
    # McNemar's exact p = 2 * 0.5**10 = 0.001953. Seed 2: wrong on 8 more: p = 2 * 0.5**8 = 0.0078125.
    comparison = sweep(
        make_run("a", 1, [0]),
        make_run("a", 2, [0, 1]),
        make_run("b", 1, [0, *range(10, 20)]),
        make_run("b", 2, [0, 1, *range(10, 18)]),
    )
    assert comparison.best == "a" and comparison.champion == "a/1"  # a's best seed: 99% against 98%
    a, b = comparison.of("mnist")
    assert (a.variant, a.verdict, a.seeds, a.p_value) == ("a", BEST, (1, 2), None)
    assert a.accuracy.mean == pytest.approx(0.985) and a.accuracy.sd == pytest.approx(0.0070711, abs=1e-6)
    # t(0.975, 1) = 12.7062: half-width 12.7062 * 0.0070711 / sqrt(2) = 0.063531
    # 0.921469 to 1.048531, the top cut at 1: a mean accuracy cannot be above it
    assert (a.accuracy.low, a.accuracy.high) == (pytest.approx(0.921469, abs=1e-6), 1.0)
    assert (b.verdict, b.p_value) == (WORSE, pytest.approx(0.0078125))  # the larger of the two seeds' p-values
    assert b.difference == pytest.approx(0.895 - 0.985)


def test_a_variant_not_worse_in_every_seed_cannot_be_told_from_the_best():
    # seed 2 of b: wrong on 3 images a gets right, right on 1 that a gets wrong: p = (1 + 4 + 4 + 1) / 16 = 0.625
    comparison = sweep(
        make_run("a", 1, [0]),
        make_run("a", 2, [0]),
        make_run("b", 1, [0, *range(10, 20)]),
        make_run("b", 2, [10, 11, 12]),
    )
    assert comparison.best == "a"
    b = comparison.of("mnist")[1]
    assert (b.verdict, b.p_value) == (NOT_DISTINGUISHABLE, pytest.approx(0.625))


def test_significant_differences_in_opposite_directions_are_seeds_that_disagree():
    comparison = sweep(
        make_run("a", 1, list(range(20, 32))),  # seed 1: a wrong on 12 that b gets right
        make_run("a", 2, []),
        make_run("b", 1, []),
        make_run("b", 2, list(range(20, 33))),  # seed 2: b wrong on 13 that a gets right; a's mean is higher
    )
    assert comparison.best == "a"
    b = comparison.of("mnist")[1]
    assert b.p_value == pytest.approx(2 * 0.5**12) and b.verdict == SEEDS_DISAGREE


@pytest.mark.parametrize(
    "paired, expected",
    [
        ([(0.01, -1), (0.02, -1)], WORSE),
        ([(0.01, 1), (0.02, 1)], BETTER),
        ([(0.01, -1), (0.30, -1)], NOT_DISTINGUISHABLE),  # one seed alone does not make it worse
        ([(0.01, -1), (0.02, 1)], SEEDS_DISAGREE),
        ([(0.01, -1), (0.60, 1), (0.03, 1)], SEEDS_DISAGREE),  # two seeds each sure, the other way round
        ([(0.30, -1), (0.40, 1)], NOT_DISTINGUISHABLE),
        ([(1.0, 0)], NOT_DISTINGUISHABLE),
        ([], UNPAIRED),
    ],
)
def test_the_verdict_of_the_seeds_paired_tests(paired, expected):
    assert verdict(paired, alpha=0.05) == expected


def test_one_seed_has_no_seed_interval_but_keeps_the_test_images_interval():
    comparison = sweep(make_run("a", 1, [0, 1]), make_run("b", 1, [0, 1, 2]))
    a, b = comparison.of("mnist")
    assert a.accuracy.sd is None and a.accuracy.low is None
    # Wilson for 98 of 100: (0.98 + 1.92073/100 ± 1.95996 * sqrt(0.98*0.02/100 + 3.84146/40000)) / 1.0384146
    assert a.test_interval == (pytest.approx(0.929988, abs=1e-5), pytest.approx(0.994498, abs=1e-5))
    assert (b.p_value, b.verdict) == (1.0, NOT_DISTINGUISHABLE)  # one discordant image: p = 1
    table = to_markdown(comparison)
    assert "| a | 1 | 98.00% | n/a | [93.00, 99.45] | – | – | best | – | – |" in table
    assert "| b | 1 | 97.00% | n/a | [91.55, 98.97] | -1.00 | 1.000 | not distinguishable | – | – |" in table


def test_each_variant_shows_what_its_training_cost_beside_its_accuracy():
    cost = {"train.flops": 2.0e13, "train.train_seconds": 100.0}
    comparison = sweep(
        make_run("a", 1, [0], cost),
        make_run("a", 2, [0, 1], {"train.flops": 2.0e13, "train.train_seconds": 110.0}),
        make_run("b", 1, [0, 1, 2]),  # logged before FLOPs were: no cost, not a zero
    )
    a, b = comparison.of("mnist")
    assert (a.train_flops, a.train_seconds) == (2.0e13, 105.0)
    assert (b.train_flops, b.train_seconds) == (None, None)
    table = to_markdown(comparison)
    assert "| best | 20.0 | 105 |" in table and "| not distinguishable | – | – |" in table
    assert to_rows(comparison)[0]["train_flops"] == 2.0e13


def test_a_variant_that_failed_in_a_seed_is_compared_on_the_seeds_it_has():
    comparison = sweep(
        make_run("a", 1, [0]),
        make_run("a", 2, [0]),
        make_run("b", 1, [0, *range(10, 29)]),
        make_run("b", 2, None),
    )
    b = comparison.of("mnist")[1]
    assert (b.seeds, b.failed, b.verdict) == ((1,), 1, WORSE)
    assert b.p_value == pytest.approx(2 * 0.5**19)  # 19 of a's right answers are b's wrong ones; none the other way
    assert "| b | 1 (1 failed) | 80.00% |" in to_markdown(comparison)


def test_unpaired_seeds_give_no_p_value_rather_than_a_wrong_one():
    comparison = sweep(make_run("a", 1, [0]), make_run("b", 2, list(range(10, 30))))
    b = comparison.of("mnist")[1]
    assert (b.p_value, b.verdict) == (None, UNPAIRED)


def test_the_best_by_a_loss_is_the_lowest():
    loss = Settings(metric="loss", test_set="mnist", alpha=0.05)
    comparison = sweep(
        make_run("a", 1, [0], {"test.mnist.loss": 0.30}),
        make_run("b", 1, [0, 1], {"test.mnist.loss": 0.20}),
        settings=loss,
    )
    assert comparison.best == "b" and [r.variant for r in comparison.of("mnist")] == ["b", "a"]


@pytest.mark.parametrize("score", SCORES)
def test_the_best_variant_and_champion_follow_the_scores_direction(score):
    """b's seed 2 has the highest value of the score and a's seed 1 the lowest; the means rank b above a too."""
    values = {("a", 1): 0.1, ("a", 2): 0.3, ("b", 1): 0.4, ("b", 2): 0.6}
    comparison = sweep(
        *(make_run(v, seed, [0], {f"test.mnist.{score}": x}) for (v, seed), x in values.items()),
        settings=Settings(metric=score, test_set="mnist", alpha=0.05),
    )
    higher = higher_is_better(score)
    assert (comparison.best, comparison.champion) == (("b", "b/2") if higher else ("a", "a/1"))


def test_no_finished_run_is_said_so():
    comparison = sweep(make_run("a", 1, None))
    assert comparison.best is None and comparison.results == []
    assert to_markdown(comparison) == "(no finished variants to compare)\n"


def test_the_parent_run_gets_each_variants_statistics_as_metrics():
    comparison = sweep(make_run("model=a,augment=none", 1, [0]), make_run("model=a,augment=none", 2, [0, 1]))
    assert metric_name("model=a,augment=none") == "model_a_augment_none"
    metrics = parent_metrics(comparison)
    assert metrics["compare.mnist.model_a_augment_none.accuracy_mean"] == pytest.approx(0.985)
    assert metrics["compare.mnist.model_a_augment_none.seeds"] == 2
    assert "compare.mnist.model_a_augment_none.p_vs_best" not in metrics  # the best is not tested against itself
    assert to_rows(comparison)[0]["verdict"] == BEST


def test_every_run_has_a_row_with_its_generalisation_gap():
    run = Run(
        "r1",
        "model=a,seed=1",
        "model=a",
        1,
        "FINISHED",
        {
            "train.epochs_run": 3.0,
            "test.mnist.accuracy": 0.99,
            "test.emnist_digits.accuracy": 0.9,
            "model.forward_flops": 8.5e6,
            "train.flops": 4.1e12,
        },
        {"model.parameters": "10"},
    )
    (row,) = run_rows([run], ["mnist", "emnist_digits"])
    assert row["epochs"] == 3 and row["generalisation_gap"] == pytest.approx(0.09)
    assert (row["mflop_per_image"], row["train_tflop"]) == (8.5, 4.1)
