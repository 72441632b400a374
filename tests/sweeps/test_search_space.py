"""A search space: read in Hydra's sweep grammar, checked against the composed config (one line per bad space), and
a trial's values as overrides, a run's name and a config; then Optuna's TPE over a parsed space finding a toy
objective's known optimum."""

from __future__ import annotations

import optuna
import pytest
from omegaconf import OmegaConf

from pipeline.sweeps.search_space import (
    Dimension,
    SearchSpaceError,
    as_overrides,
    parse_dimension,
    parse_space,
    suggest,
    trial_name,
    with_values,
)
from tests.helpers.configs import tiny_config

CONFIG = OmegaConf.to_container(tiny_config(), resolve=True)


def test_the_default_space_is_the_default_networks_learning_rate_dropout_and_batch_size():
    assert parse_space(CONFIG["search"]["params"], CONFIG) == [
        Dimension("train.learning_rate", 1e-3, 1e-2, log=True),
        Dimension("train.batch_size", choices=(64, 128, 256)),
        Dimension("model.dropout", 0.0, 0.5),
    ]


@pytest.mark.parametrize(
    ("text", "dimension"),
    [
        ("interval(0, 1)", Dimension("x", 0.0, 1.0)),
        ("tag(log, interval(1e-4, 1e-2))", Dimension("x", 1e-4, 1e-2, log=True)),
        ("int(interval(1, 4))", Dimension("x", 1, 4, integer=True)),
        ("tag(log, int(interval(8, 512)))", Dimension("x", 8, 512, log=True, integer=True)),
        ("range(1, 5)", Dimension("x", 1, 4, integer=True, step=1)),
        ("range(8, 65, step=8)", Dimension("x", 8, 64, integer=True, step=8)),
        ("range(8, 64, step=8)", Dimension("x", 8, 56, integer=True, step=8)),
        ("choice(a, b)", Dimension("x", choices=("a", "b"))),
    ],
)
def test_hydras_sweep_grammar_is_read_as_optunas_distributions(text, dimension):
    assert parse_dimension("x", text) == dimension


def bad(space: dict) -> str:
    with pytest.raises(SearchSpaceError) as err:
        parse_space(space, CONFIG)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_an_unknown_setting_is_named_with_the_closest_real_one():
    assert bad({"train": {"learning_rat": "interval(0.1, 1)"}}) == (
        "search.params.train.learning_rat: no such setting in the composed config — did you mean train.learning_rate?"
    )
    assert bad({"model": "choice(a, b)"}) == (
        "search.params.model: a section, not a setting — search its settings, e.g. model.<name>"
    )


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("interval(0.5, 0.1)", "an empty range (low must be below high)"),
        ("interval(0.1, 0.1)", "an empty range (low must be below high)"),
        ("range(5, 5)", "an empty range (range's stop is not included)"),
        ("choice()", None),  # Hydra's own words
        ("tag(log, interval(0, 0.1))", "a log scale needs bounds above 0"),
        ("tag(log, interval(-1, 0.1))", "a log scale needs bounds above 0"),
        ("tag(log, choice(1, 2))", "a log scale needs an interval, not a choice"),
        ("0.003", "must be one of choice(…), interval(…), tag(log, interval(…)), int(interval(…)) or range(…)"),
    ],
)
def test_a_bad_range_is_one_line_naming_the_setting(text, why):
    message = bad({"train": {"learning_rate": text}})
    assert message.startswith(f"search.params.train.learning_rate={text}: ")
    assert why is None or message.endswith(why)


def test_an_edge_outside_the_settings_allowed_range_is_refused_before_any_trial():
    assert bad({"model": {"dropout": "interval(0.0, 1.0)"}}) == (
        "search.params.model.dropout: at 1.0, model.dropout=1.0: must be a number in [0, 1)"
    )
    assert bad({"train": {"batch_size": "choice(0, 32)"}}) == (
        "search.params.train.batch_size: at 0, train.batch_size=0: must be an integer ≥ 1"
    )


def test_every_problem_is_listed_at_once():
    message = bad({"train": {"learning_rate": "interval(1, 0)", "epoks": "range(1, 3)"}})
    assert message.count("; ") == 1 and "learning_rate" in message and "epoks" in message
    assert bad({}) == "search.params: empty — name at least one setting to search"


def test_a_trials_values_become_overrides_a_name_and_a_config():
    values = {"train.learning_rate": 0.0012345678, "model.dropout": 0.25, "train.batch_size": 128}
    assert as_overrides(values) == ["train.learning_rate=0.0012345678", "model.dropout=0.25", "train.batch_size=128"]
    assert trial_name(3, values) == "trial 3: train.learning_rate=0.00123,model.dropout=0.25,train.batch_size=128"
    changed = with_values(CONFIG, values)
    assert changed["train"]["batch_size"] == 128 and changed["model"]["dropout"] == 0.25
    assert CONFIG["train"]["batch_size"] == 32  # the original is left alone


def test_tpe_over_a_parsed_space_finds_a_toy_objectives_known_optimum():
    """(x - 2)² + (log10 lr + 3)² + [n ≠ 4]: the optimum at x = 2, lr = 1e-3, n = 4, value 0."""
    toy = {"x": "interval(-10, 10)", "lr": "tag(log, interval(1e-6, 1))", "n": "choice(1, 4, 16)"}
    dimensions = [parse_dimension(k, v) for k, v in toy.items()]
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: optuna.Trial) -> float:
        import math

        v = suggest(trial, dimensions)
        return (v["x"] - 2) ** 2 + (math.log10(v["lr"]) + 3) ** 2 + (v["n"] != 4)

    study.optimize(objective, n_trials=150)
    best = study.best_params
    assert best["n"] == 4
    assert best["x"] == pytest.approx(2, abs=0.5)
    assert best["lr"] == pytest.approx(1e-3, rel=2)  # within a factor of 3 on the log scale
    assert study.best_value < 0.5
