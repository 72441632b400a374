"""Which way a metric is better, by every name it goes by: the training's monitor and a comparison's score."""

from __future__ import annotations

import pytest

from pipeline.config.schema import MONITORS, SCORES
from pipeline.core.metric_direction import higher_is_better, keras_mode

HIGHER = ["accuracy", "val_accuracy", "top5_accuracy", "macro_f1", "macro_precision", "macro_recall"]
LOWER = ["loss", "val_loss", "ece"]
# As a comparison reads them from a run: `test.<test set>.<score>`.
LOGGED = {f"test.{test_set}.{score}": score in HIGHER for test_set in ("mnist", "emnist_digits") for score in SCORES}


@pytest.mark.parametrize("metric", HIGHER)
def test_scores_are_better_higher(metric):
    assert higher_is_better(metric) and keras_mode(metric) == "max"


@pytest.mark.parametrize("metric", LOWER)
def test_losses_and_the_calibration_error_are_better_lower(metric):
    assert not higher_is_better(metric) and keras_mode(metric) == "min"


@pytest.mark.parametrize("metric", LOGGED)
def test_a_runs_metric_on_a_test_set_goes_the_way_of_its_score(metric):
    assert higher_is_better(metric) is LOGGED[metric]


def test_every_monitor_and_score_the_config_allows_is_one_of_the_cases():
    assert set(MONITORS) | set(SCORES) <= set(HIGHER) | set(LOWER)
