"""The config schema: each setting's allowed range, the settings that depend on others, every config in conf/
within range, the registries it names, and the entrypoints stopping on a bad value before doing anything."""

from __future__ import annotations

import ast
import copy
import importlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from pipeline.config import schema
from pipeline.config.schema import ConfigError, problems, shown
from pipeline.modeling import augment, models, precision
from tests.helpers.configs import tiny_config
from tests.helpers.imports import imported_packages, pipeline_imports, run_time_nodes
from tests.helpers.repos import REPO


def composed(overrides: list[str] = ()) -> dict[str, Any]:
    """conf/ composed with these overrides, as plain containers (what `problems` reads)."""
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        return OmegaConf.to_container(compose("config", overrides=list(overrides)), resolve=True)


DEFAULT = composed()


def with_value(key: str, value: Any, cfg: dict[str, Any] = DEFAULT) -> dict[str, Any]:
    """A copy of `cfg` with the setting at the dotted `key` set to `value`."""
    cfg = copy.deepcopy(cfg)
    *parents, last = key.split(".")
    node = cfg
    for part in parents:
        node = node[part]
    node[last] = value
    return cfg


# Each rule: values at the edges of the range that pass, values just outside (or of the wrong type) that do not,
# and the range as the message says it.
RANGES = {
    "seed": ([0, 2**32 - 1], [-1, 2**32, 4.5, "42"], "an integer in [0, 4294967295]"),
    "data.train_limit": ([None, 1], [0, -5, 2.5], "null or an integer ≥ 1"),
    "data.exclude_label_issues": (
        [None, "multirun/kfold-mnist/label_issues/mnist_train.csv"],
        ["", 3],
        "null or a path to a CSV",
    ),
    "model.name": (["cnn2_bn", "compact"], ["nope", None], f"one of {', '.join(sorted(models.ARCHITECTURES))}"),
    "model.filters": ([[1], [32, 64, 128]], [[], [32, 0], [32.5], 32], "a non-empty list of integers ≥ 1"),
    "model.dense_units": ([[], [1, 256]], [[0], 128, [True]], "a list of integers ≥ 1"),
    "model.conv_dropout": ([0, 0.99], [1, -0.1, "0.25"], "a number in [0, 1)"),
    "model.dense_dropout": ([0, 0.99], [1, -0.1], "a number in [0, 1)"),
    "model.stages": (
        [[[1]], [[32], [48, 48], [96], [8]]],
        [[], [[]], [[32], []], [[0]], [32, 64], [[1]] * 5],
        "1 to 4 non-empty lists of integers ≥ 1, one per stage, e.g. [[32], [64]]",
    ),
    "model.head": (["flatten", "average"], ["max", None], "one of flatten, average"),
    "model.dropout": ([0, 0.5], [1, -0.1], "a number in [0, 1)"),
    "model.stage_dropout": ([0, 0.5], [1, -0.1], "a number in [0, 1)"),
    "augment.name": (["none", "strong"], ["wild"], f"one of {', '.join(sorted(augment.POLICIES))}"),
    "augment.rotation_degrees": ([0, 180], [-1, float("nan")], "a number ≥ 0"),
    "augment.zoom": ([0, 0.99], [1, -0.1], "a number in [0, 1)"),
    "augment.shift": ([0, 0.99], [1, -0.1], "a number in [0, 1)"),
    "augment.interpolation": (["nearest", "bilinear"], ["bicubic"], "one of nearest, bilinear"),
    "augment.erase": ([0, 1], [1.5, -0.1], "a number in [0, 1]"),
    "train.epochs": ([1, 100], [0, -1, 1.5, True], "an integer ≥ 1"),
    "train.batch_size": ([1, 4096], [0, 32.0], "an integer ≥ 1"),
    "train.learning_rate": ([1e-9, 1], [0, -0.001, float("inf")], "a number > 0"),
    "train.schedule": (["one_cycle", "plateau"], ["cosine"], "one of one_cycle, plateau"),
    "train.warmup_epochs": ([0, 0.5], [-1], "a number ≥ 0"),
    "train.final_learning_rate_fraction": ([0, 1], [-0.1, 1.1], "a number in [0, 1]"),
    "train.validation_split": ([0.01, 0.99], [0, 1, -0.1], "a number in (0, 1)"),
    "train.monitor": (["val_loss", "accuracy"], ["val_acc"], "one of val_loss, val_accuracy, loss, accuracy"),
    "train.early_stopping_patience": ([0, 10], [-1, 1.5], "an integer ≥ 0"),
    "train.reduce_lr_factor": ([0.01, 0.99], [0, 1, 2], "a number in (0, 1)"),
    "train.reduce_lr_patience": ([0, 10], [-1], "an integer ≥ 0"),
    "train.min_learning_rate": ([1e-9], [0, -1e-5], "a number > 0"),
    "train.precision": (
        ["auto", "float32", "mixed_bfloat16"],
        ["float16"],
        f"one of {', '.join(sorted(precision.PRECISIONS))}",
    ),
    "train.steps_per_execution": ([1, 64], [0], "an integer ≥ 1"),
    "train.fused_batch_norm": ([True, False], ["yes", 1], "true or false"),
    "fetch.timeout": ([0.5, 30], [0, -1], "a number > 0"),
    "evaluate.batch_size": ([1, 1024], [0, -1], "an integer ≥ 1"),
    "evaluate.fused_batch_norm": ([True, False], [0], "true or false"),
    "evaluate.limit": ([None, 1], [0, -5], "null or an integer ≥ 1"),
    "label_issues.review": ([0, 100], [-1, 1.5, None], "an integer ≥ 0"),
    "label_issues.max_shown": ([0, 400], [-1, 2.5], "an integer ≥ 0"),
    "label_issues.per_page": ([1, 12], [0], "an integer ≥ 1"),
    "kfold.folds": ([2, 10], [1, 0, 2.5], "an integer ≥ 2"),
    "kfold.fold": ([None, 0, 4], [-1, 1.5], "null or an integer ≥ 0"),
    "kfold.seed": ([0, 2**32 - 1], [-1, 2**32, 0.5], "an integer in [0, 4294967295]"),
    "report.max_misclassified": ([0, 400], [-1], "an integer ≥ 0"),
    "report.per_page": ([1, 12], [0], "an integer ≥ 1"),
    "report.grid_size": ([1, 40], [0], "an integer ≥ 1"),
    "report.confused_pairs": ([1, 6], [0], "an integer ≥ 1"),
    "compare.metric": (["accuracy", "loss", "top5_accuracy"], ["acc", None], f"one of {', '.join(schema.SCORES)}"),
    "compare.alpha": ([0.001, 0.5], [0, 1, -0.05], "a number in (0, 1)"),
    "tune.trials": ([1, 50], [0, 2.5], "null or an integer ≥ 1"),  # null: only with tune.minutes (below)
    "tune.minutes": ([None, 0.5, 60], [0, -1], "null or a number > 0"),
    "tune.pruner": (["median", "hyperband", "none"], ["successive"], "one of median, hyperband, none"),
    "tune.startup_trials": ([0, 5], [-1, 1.5], "an integer ≥ 0"),
    "tune.storage": ([None, "sqlite:///mlruns/optuna.db"], ["", "mlruns/optuna.db"], "null or an SQLAlchemy URL"),
    "tune.study": ([None, "lr"], [""], "null or a name"),
    "tune.worker": ([0, 3], [-1, 0.5], "an integer ≥ 0"),
    "tune.prune_after": ([1, 4], [0, 2.5], "an integer ≥ 1"),
    "tune.compare_seeds": ([[], [42, 43, 44]], [[-1], 42, [1.5]], "a list of integers ≥ 0"),
    "tune.best_of": ([None, "default-mnist-model_plain3"], ["", 3], "null or a study's name"),
}


def test_every_rule_has_its_test():
    assert set(RANGES) == set(schema.RULES)


@pytest.mark.parametrize("key", RANGES)
def test_a_setting_out_of_range_is_named_with_its_value_and_range(key):
    good, bad, allowed = RANGES[key]
    for value in good:
        assert problems(with_value(key, value)) == [], f"{key}={value!r}"
    for value in bad:
        assert problems(with_value(key, value)) == [f"{key}={shown(value)}: must be {allowed}"], f"{key}={value!r}"


def test_the_message_reads_like_the_override_that_caused_it():
    assert problems(with_value("train.epochs", 0)) == ["train.epochs=0: must be an integer ≥ 1"]
    assert problems(with_value("data.train_limit", -5)) == ["data.train_limit=-5: must be null or an integer ≥ 1"]
    assert problems(with_value("model.filters", [32, 0])) == [
        "model.filters=[32, 0]: must be a non-empty list of integers ≥ 1"
    ]
    assert problems(with_value("train.fused_batch_norm", None)) == [
        "train.fused_batch_norm=null: must be true or false"
    ]


def test_the_kfold_fold_is_one_of_the_folds():
    three = with_value("kfold.folds", 3)
    assert problems(with_value("kfold.fold", 2, three)) == []
    assert problems(with_value("kfold.fold", 3, three)) == [
        "kfold.fold=3: must be null or an integer in [0, 2] (below kfold.folds)"
    ]


def test_a_missing_setting_is_named_but_an_options_own_settings_may_be_absent():
    cfg = copy.deepcopy(DEFAULT)
    del cfg["train"]["epochs"], cfg["model"]["dropout"], cfg["augment"]["zoom"]
    assert problems(cfg) == ["train.epochs: missing; must be an integer ≥ 1"]


def test_a_search_needs_a_budget_of_trials_or_minutes():
    assert problems(with_value("tune.trials", None, with_value("tune.minutes", 5))) == []
    assert problems(with_value("tune.trials", None)) == [
        "tune.trials=null, tune.minutes=null: must not both be null (a search needs a budget)"
    ]


def test_one_cycles_warm_up_lasts_at_most_the_training():
    one_cycle = with_value("train.epochs", 2)
    assert problems(with_value("train.warmup_epochs", 2, one_cycle)) == []  # the decay then keeps one step
    assert problems(with_value("train.warmup_epochs", 2.5, one_cycle)) == [
        "train.warmup_epochs=2.5: must be a number in [0, 2] (at most train.epochs)"
    ]
    plateau = with_value("train.schedule", "plateau", one_cycle)
    assert problems(with_value("train.warmup_epochs", 3, plateau)) == []  # no warm-up: the value is not used


def test_the_warm_up_is_not_compared_with_epochs_out_of_range():
    cfg = with_value("train.warmup_epochs", 3, with_value("train.epochs", 0))
    assert problems(cfg) == ["train.epochs=0: must be an integer ≥ 1"]


def test_training_needs_a_prepared_dataset_with_training_images():
    assert problems(with_value("data.name", "emnist_balanced")) == []
    expected = (
        "must be one of mnist, emnist_balanced (a prepared dataset with training images: mnist or one of "
        "ingest.datasets)"
    )
    assert problems(with_value("data.name", "emnist_digits")) == [f"data.name=emnist_digits: {expected}"]  # tests only
    assert problems(with_value("data.name", "emnist")) == [f"data.name=emnist: {expected}"]


@pytest.mark.parametrize("test_sets", [[], ["mnist", "emnist"], "mnist", None])
def test_the_test_sets_are_a_non_empty_list_of_prepared_datasets(test_sets):
    (found,) = problems(with_value("data.test_sets", test_sets))
    assert found == (
        f"data.test_sets={shown(test_sets)}: must be a non-empty list of mnist, emnist_digits, emnist_balanced "
        "(the prepared datasets: mnist and ingest.datasets)"
    )


def test_the_comparisons_test_set_is_one_of_the_test_sets():
    assert problems(with_value("compare.test_set", "emnist_digits")) == []
    assert problems(with_value("compare.test_set", "emnist_balanced")) == [
        "compare.test_set=emnist_balanced: must be null or one of data.test_sets ([mnist, emnist_digits])"
    ]


def test_a_dataset_added_to_ingest_can_be_trained_on_and_tested_on():
    letters = {"sources": [{"split": "letters", "parts": ["train", "test"], "digits_only": False}]}
    cfg = with_value("ingest.datasets.emnist_letters", letters)
    cfg = with_value("data.test_sets", ["emnist_letters"], with_value("data.name", "emnist_letters", cfg))
    assert problems(cfg) == []


def test_the_sources_of_ingest_datasets_are_checked():
    cfg = with_value("ingest.datasets.emnist_digits.sources", [{"split": "digitz", "parts": ["test"]}])
    (found,) = problems(cfg)
    assert found == (
        "ingest.datasets.emnist_digits: unknown EMNIST split 'digitz'; choose one of "
        "('digits', 'balanced', 'byclass', 'bymerge', 'letters', 'mnist')"
    )
    assert problems(with_value("ingest.datasets.emnist_digits", {"source": []})) == [
        "ingest.datasets.emnist_digits: must have `sources`, each with a split and parts"
    ]


def test_several_bad_values_are_all_listed_on_one_line():
    cfg = with_value("train.epochs", 0, with_value("evaluate.limit", -1, with_value("augment.zoom", 1.5)))
    found = problems(cfg)
    assert found == [
        "augment.zoom=1.5: must be a number in [0, 1)",
        "train.epochs=0: must be an integer ≥ 1",
        "evaluate.limit=-1: must be null or an integer ≥ 1",
    ]
    assert str(ConfigError(found)) == "; ".join(found) and "\n" not in str(ConfigError(found))


# conf/ and the schema agree: every composition the project ships is in range.

EXPERIMENTS = sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml"))
OPTIONS = [
    f"{group}={p.stem}"
    for group in ("data", "model", "augment", "train")
    for p in (REPO / "conf" / group).glob("*.yaml")
]


@pytest.mark.parametrize(
    "overrides", [[], *([f"experiment={e}"] for e in EXPERIMENTS), *([o] for o in OPTIONS)], ids=" ".join
)
def test_every_shipped_config_is_in_range(overrides):
    assert problems(composed(overrides)) == []


def test_params_yaml_is_in_range():
    assert problems(yaml.safe_load((REPO / "params.yaml").read_text())) == []


REGISTRIES = {
    "model.name": models.ARCHITECTURES,
    "augment.name": augment.POLICIES,
    "train.precision": precision.PRECISIONS,
}


@pytest.mark.parametrize("key", REGISTRIES)
def test_the_allowed_names_are_the_registrys(key):
    """Every name the registry builds passes, and nothing else: the message lists the registry's names."""
    names = REGISTRIES[key]
    for name in names:
        assert problems(with_value(key, name)) == [], name
    assert problems(with_value(key, "unregistered")) == [
        f"{key}=unregistered: must be one of {', '.join(sorted(names))}"
    ]


def import_time_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """The nodes of `tree` that run when the module is imported: not those in a function, nor type hints' imports."""
    for node in run_time_nodes(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield node
            yield from import_time_nodes(node)


def test_checking_a_config_imports_no_tensorflow():
    """Every entrypoint checks its config first, fetch and ingest too, which never use Keras: the registries the
    schema reads import it when they first build (pipeline/core/lazy.py), not when they are imported."""
    for path in pipeline_imports("pipeline.config.schema"):
        nodes = import_time_nodes(ast.parse(path.read_text()))
        heavy = {p for node in nodes for p in imported_packages(node)} & {"keras", "tensorflow"}
        assert not heavy, f"{path.relative_to(REPO)} imports {sorted(heavy)} when it is imported"


# The entrypoints: a bad value stops them before any work.

ENTRYPOINTS = ["fetch", "ingest", "train", "evaluate", "report", "experiment", "tune"]


@pytest.mark.parametrize("name", ENTRYPOINTS)
def test_an_entrypoint_with_a_bad_value_exits_1_before_any_work(name, tmp_path, monkeypatch, capsys):
    """Nothing is read or written: no MLflow store, no outputs (the folder stays empty)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    main = importlib.import_module(f"pipeline.{name}").main
    with pytest.raises(SystemExit) as exit_:
        main(tiny_config(["train.epochs=0", "evaluate.limit=-1"]))
    assert exit_.value.code == 1
    assert capsys.readouterr().err == (
        "error: train.epochs=0: must be an integer ≥ 1; evaluate.limit=-1: must be null or an integer ≥ 1\n"
    )
    assert os.listdir(tmp_path) == []
    assert not Path("mlruns").exists()
