"""The allowed range of every setting, checked first thing in each entrypoint: before any data is read or any MLflow
run is made, so that `train.epochs=0` stops in a second with `train.epochs=0: must be an integer ≥ 1` rather than
after the fit, and a negative limit no longer silently drops the last images.

`problems(config)` is pure: the composed config (plain dicts and lists) in, one message per bad setting out, every
one of them at once. Plain code rather than Hydra structured configs: DVC composes params.yaml in its own process,
which would not see a schema registered in ours; the model and augment options each have keys of their own; and
OmegaConf checks types, not ranges, and stops at the first error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pipeline.core.errors import UserError
from pipeline.data.sources import parse_source
from pipeline.modeling import augment, models, precision  # the registries, for their names (Keras comes later)

SCHEDULES = ("one_cycle", "plateau")  # pipeline/modeling/fitting.py
MONITORS = ("val_loss", "val_accuracy", "loss", "accuracy")  # what the training history records
INTERPOLATIONS = ("nearest", "bilinear")  # Keras's RandomRotation, RandomZoom and RandomTranslation
HEADS = ("flatten", "average")  # pipeline/modeling/models.py's compact: what follows the last convolution
PRUNERS = ("median", "hyperband", "none")  # pipeline/sweeps/study.py
SCORES = ("accuracy", "loss", "macro_f1", "macro_precision", "macro_recall", "ece", "top5_accuracy")  # metrics.py


class ConfigError(UserError):
    """Settings out of their allowed range; the message lists each one."""

    def __init__(self, problems: Sequence[str]):
        super().__init__("; ".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class Allowed:
    """What a setting may be: a test, and the words for it after `must be`."""

    test: Callable[[Any], bool]
    text: str


def is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def integer(low: int, high: int | None = None) -> Allowed:
    text = f"an integer ≥ {low}" if high is None else f"an integer in [{low}, {high}]"
    return Allowed(lambda v: is_integer(v) and v >= low and (high is None or v <= high), text)


def above(low: float) -> Allowed:
    return Allowed(lambda v: is_number(v) and v > low, f"a number > {low}")


def at_least(low: float) -> Allowed:
    return Allowed(lambda v: is_number(v) and v >= low, f"a number ≥ {low}")


def between(low: float, high: float, brackets: str) -> Allowed:
    """A number in an interval written as in mathematics: "()" open, "[]" closed, "[)" closed below."""
    low_ok = (lambda v: v >= low) if brackets[0] == "[" else (lambda v: v > low)
    high_ok = (lambda v: v <= high) if brackets[1] == "]" else (lambda v: v < high)
    text = f"a number in {brackets[0]}{low}, {high}{brackets[1]}"
    return Allowed(lambda v: is_number(v) and low_ok(v) and high_ok(v), text)


def one_of(values: Sequence[str]) -> Allowed:
    return Allowed(lambda v: v in values, f"one of {', '.join(values)}")


def null_or(allowed: Allowed) -> Allowed:
    return Allowed(lambda v: v is None or allowed.test(v), f"null or {allowed.text}")


def integers(low: int, non_empty: bool) -> Allowed:
    def test(v: Any) -> bool:
        return isinstance(v, list) and (bool(v) or not non_empty) and all(is_integer(x) and x >= low for x in v)

    return Allowed(test, f"a {'non-empty ' if non_empty else ''}list of integers ≥ {low}")


def stages(low: int, most: int) -> Allowed:
    """Lists of filter counts, one list per stage; each stage but the last halves a 28x28 image's side."""

    def test(v: Any) -> bool:
        return isinstance(v, list) and 0 < len(v) <= most and all(integers(low, non_empty=True).test(s) for s in v)

    return Allowed(test, f"1 to {most} non-empty lists of integers ≥ {low}, one per stage, e.g. [[32], [64]]")


BOOLEAN = Allowed(lambda v: isinstance(v, bool), "true or false")
FRACTION = between(0, 1, "[]")
DROPOUT = between(0, 1, "[)")

RULES: dict[str, Allowed] = {
    "seed": integer(0, 2**32 - 1),  # NumPy's legacy seed, which keras.utils.set_random_seed sets, is 32 bits
    "data.train_limit": null_or(integer(1)),
    "data.exclude_label_issues": null_or(Allowed(lambda v: isinstance(v, str) and v != "", "a path to a CSV")),
    "model.name": one_of(sorted(models.ARCHITECTURES)),
    "model.filters": integers(1, non_empty=True),
    "model.dense_units": integers(1, non_empty=False),  # none: the softmax straight after the convolutions
    "model.conv_dropout": DROPOUT,
    "model.dense_dropout": DROPOUT,
    "model.stages": stages(1, most=4),  # compact: filters stage by stage; 28 -> 14 -> 7 -> 3, a fifth has no pixels
    "model.head": one_of(HEADS),
    "model.dropout": DROPOUT,
    "model.stage_dropout": DROPOUT,
    "augment.name": one_of(sorted(augment.POLICIES)),
    "augment.rotation_degrees": at_least(0),
    "augment.zoom": between(0, 1, "[)"),  # Keras zooms by a factor in (-1, 1]: ±zoom
    "augment.shift": between(0, 1, "[)"),  # a fraction of the image's size
    "augment.interpolation": one_of(INTERPOLATIONS),
    "augment.erase": FRACTION,  # the share of images erased in
    "train.epochs": integer(1),
    "train.batch_size": integer(1),
    "train.learning_rate": above(0),
    "train.schedule": one_of(SCHEDULES),
    "train.warmup_epochs": at_least(0),  # and at most train.epochs: see related_problems
    "train.final_learning_rate_fraction": FRACTION,
    "train.validation_split": between(0, 1, "()"),  # the best epoch is chosen on the held-out images
    "train.monitor": one_of(MONITORS),
    "train.early_stopping_patience": integer(0),  # Keras's own default: stop at the first epoch without progress
    "train.reduce_lr_factor": between(0, 1, "()"),
    "train.reduce_lr_patience": integer(0),
    "train.min_learning_rate": above(0),
    "train.precision": one_of(sorted(precision.PRECISIONS)),
    "train.steps_per_execution": integer(1),
    "train.fused_batch_norm": BOOLEAN,
    "fetch.timeout": above(0),
    "evaluate.batch_size": integer(1),
    "evaluate.fused_batch_norm": BOOLEAN,
    "evaluate.limit": null_or(integer(1)),
    "label_issues.review": integer(0),  # 0: cleanlab's flagged images alone
    "label_issues.max_shown": integer(0),  # 0: the PDF gives only the count of flagged images
    "label_issues.per_page": integer(1),
    "kfold.folds": integer(2),  # one fold trains on nothing else
    "kfold.fold": null_or(integer(0)),  # and below kfold.folds: see related_problems
    "kfold.seed": integer(0, 2**32 - 1),  # NumPy's seeds for scikit-learn's shuffle
    "report.max_misclassified": integer(0),  # 0: the PDF gives only the count of mistakes
    "report.per_page": integer(1),
    "report.grid_size": integer(1),
    "report.confused_pairs": integer(1),  # 0 would draw "No misclassified images." whatever the mistakes
    "compare.metric": one_of(SCORES),
    "compare.alpha": between(0, 1, "()"),
    "tune.trials": null_or(integer(1)),  # with tune.minutes, at least one set: see related_problems
    "tune.minutes": null_or(above(0)),
    "tune.pruner": one_of(PRUNERS),
    "tune.startup_trials": integer(0),
    "tune.prune_after": integer(1),
    "tune.storage": null_or(Allowed(lambda v: isinstance(v, str) and "://" in v, "an SQLAlchemy URL")),
    "tune.study": null_or(Allowed(lambda v: isinstance(v, str) and v != "", "a name")),
    "tune.worker": integer(0),
    "tune.compare_seeds": integers(0, non_empty=False),
    "tune.best_of": null_or(Allowed(lambda v: isinstance(v, str) and v != "", "a study's name")),
}

# Settings of the chosen architecture or augmentation policy: checked where its config file has them.
PER_OPTION = ("model.", "augment.")


def problems(cfg: Mapping[str, Any]) -> list[str]:
    """Every setting of `cfg` out of its allowed range, as `<key>=<value>: must be <range>`; empty when all are
    in range."""
    found = {key: message for key, allowed in RULES.items() if (message := problem(cfg, key, allowed))}
    return list(found.values()) + related_problems(cfg, set(found))


def problem(cfg: Mapping[str, Any], key: str, allowed: Allowed) -> str | None:
    value = lookup(cfg, key)
    if value is MISSING:
        optional = key.startswith(PER_OPTION) and not key.endswith(".name")
        return None if optional else f"{key}: missing; must be {allowed.text}"
    return None if allowed.test(value) else f"{key}={shown(value)}: must be {allowed.text}"


def related_problems(cfg: Mapping[str, Any], bad: set[str]) -> list[str]:
    """The settings whose range depends on other settings (`bad`: those already found out of range): the
    warm-up's length, and the names of the datasets."""
    found = []
    train = cfg.get("train", {})
    warmup_known = not {"train.epochs", "train.warmup_epochs", "train.schedule"} & bad
    # one_cycle's warm-up may last the whole training (the decay then keeps one step); the plateau schedule has none
    if warmup_known and train["schedule"] == "one_cycle" and train["warmup_epochs"] > train["epochs"]:
        found.append(
            f"train.warmup_epochs={shown(train['warmup_epochs'])}: must be a number in [0, {train['epochs']}] "
            "(at most train.epochs)"
        )
    kfold = cfg.get("kfold", {})
    if not {"kfold.folds", "kfold.fold"} & bad and kfold["fold"] is not None and kfold["fold"] >= kfold["folds"]:
        found.append(
            f"kfold.fold={kfold['fold']}: must be null or an integer in [0, {kfold['folds'] - 1}] (below kfold.folds)"
        )
    tune = cfg.get("tune", {})
    if not {"tune.trials", "tune.minutes"} & bad and tune["trials"] is None and tune["minutes"] is None:
        found.append("tune.trials=null, tune.minutes=null: must not both be null (a search needs a budget)")
    datasets, trainable, dataset_problems = prepared_datasets(cfg.get("ingest", {}).get("datasets", {}))
    data = cfg.get("data", {})
    if data.get("name") not in trainable:
        found.append(
            f"data.name={shown(data.get('name'))}: must be one of {', '.join(trainable)} "
            "(a prepared dataset with training images: mnist or one of ingest.datasets)"
        )
    test_sets = data.get("test_sets")
    if not (isinstance(test_sets, list) and test_sets and all(name in datasets for name in test_sets)):
        found.append(
            f"data.test_sets={shown(test_sets)}: must be a non-empty list of {', '.join(datasets)} "
            "(the prepared datasets: mnist and ingest.datasets)"
        )
    chosen = cfg.get("compare", {}).get("test_set")
    if chosen is not None and isinstance(test_sets, list) and chosen not in test_sets:
        found.append(f"compare.test_set={shown(chosen)}: must be null or one of data.test_sets ({shown(test_sets)})")
    return found + dataset_problems


def prepared_datasets(specs: Mapping[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """The prepared datasets' names, those with training images (every source has a train part or a holdout),
    and what is wrong with `ingest.datasets`."""
    names, trainable, found = ["mnist"], ["mnist"], []
    for name, spec in specs.items():
        names.append(name)
        try:
            sources = [parse_source(raw, name) for raw in spec["sources"]]
        except ValueError as err:
            found.append(str(err))
            continue
        except (KeyError, TypeError):
            found.append(f"ingest.datasets.{name}: must have `sources`, each with a split and parts")
            continue
        if sources and all("train" in s.parts or s.holdout for s in sources):
            trainable.append(name)
    return names, trainable, found


MISSING = object()


def lookup(cfg: Mapping[str, Any], key: str) -> Any:
    """The value at a dotted key, or MISSING."""
    value: Any = cfg
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return MISSING
        value = value[part]
    return value


def shown(value: Any) -> str:
    """A value as it would be written in an override: null, true, [32, 64], plain strings."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(shown(v) for v in value) + "]"
    return str(value)


def plain_settings(cfg: DictConfig) -> dict[str, Any]:
    """A composed config as plain values, without its `hydra` node (where it has one: Hydra's own)."""
    return OmegaConf.to_container(OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"]), resolve=True)


def config_problems(cfg: DictConfig) -> list[str]:
    """`problems` of a composed config."""
    return problems(plain_settings(cfg))


def validate(cfg: DictConfig) -> None:
    """Raise a ConfigError listing every setting out of range; for each entrypoint, before it does anything."""
    found = config_problems(cfg)
    if found:
        raise ConfigError(found)
